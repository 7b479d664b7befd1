//! `sandbox serve`: a seeded sandbox on loopback until Ctrl-C.

use std::net::Ipv4Addr;

use std::io::Write;

use dynamic_waas::WalletId;
use dynamic_waas_sandbox::{
    Fault, FaultResponse, Operation, Pregenerated, Rate, RateLimits, Sandbox, Seed,
};
use serde_json::json;

use crate::args::ServeArgs;
use crate::exit::CliError;
use crate::output::Printer;

pub async fn serve(args: ServeArgs, printer: Printer) -> Result<(), CliError> {
    let seed = Seed::example();
    let (mut builder, wallets) = seed
        .builder()
        .pregenerated(&seed.environment_id, args.wallets as usize);
    if let Some(path) = &args.write_input {
        write_input(path, &wallets)?;
        eprintln!(
            "wrote {} rows of create-many input to {path}",
            wallets.len()
        );
    }
    // The environment the token is for, and the wallets seeded beyond the example's.
    let mut environment_id = seed.environment_id.clone();
    let mut seeded: Vec<WalletId> = wallets.into_iter().map(|w| w.wallet_id).collect();
    if let Some(path) = &args.seed_input {
        let named = crate::bulk::wallets_in(path, None, None)?;
        eprintln!("seeding {} wallets from {path}", named.len());
        if let Some(first) = named.first() {
            environment_id = first.environment_id.into();
        }
        seeded = named.iter().map(|w| WalletId::from(w.wallet_id)).collect();
        builder = crate::bulk::seed_from(builder, &seed, named)?;
    }
    if args.dump_state.is_none() {
        seeded = Vec::new();
    }
    if args.upstream_limits {
        builder = builder.rate_limits(RateLimits::upstream().time_scale(args.time_scale));
    }
    let sandbox = match args.port {
        None => Sandbox::start(builder).await,
        Some(port) => {
            let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                .map_err(|e| CliError::Other(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
            Sandbox::start_on(builder, listener).await
        }
    };
    if args.ambiguous_faults > 0.0 {
        sandbox.fail_at_rate(
            Operation::Create,
            Rate::random(args.ambiguous_faults, 0x5eed),
            Fault::ApplyThenRespond(FaultResponse::new(502).html("<h1>502 Bad Gateway</h1>")),
        );
    }
    let url = sandbox.uri();
    let document = json!({
        "url": url,
        "token": seed.token,
        "environmentId": environment_id,
        "walletId": seed.wallet_id,
        "userId": seed.user_id,
    });
    let text = format!(
        "Sandbox listening on {url}\n\
         \x20 export DYNAMIC_BASE_URL={url}\n\
         \x20 export DYNAMIC_API_TOKEN={}\n\
         \x20 environment id {}\n\
         \x20 wallet id      {}\n\
         \x20 user id        {}\n",
        seed.token, environment_id, seed.wallet_id, seed.user_id
    );
    // Listening before the URL is out: a signal sent as soon as it is read still counts.
    let mut signals = crate::signals::Signals::new()
        .map_err(|e| CliError::Other(format!("cannot wait for Ctrl-C: {e}")))?;
    printer
        .value(&document, &text)
        .map_err(|e| CliError::Other(format!("could not write to stdout: {e}")))?;
    eprintln!("The sandbox runs until Ctrl-C (or SIGTERM).");
    signals.next().await;
    if let Some(path) = &args.dump_state {
        dump_state(path, &sandbox, &seeded)?;
    }
    // What it saw, for benchmarks and soak runs: one JSON line.
    eprintln!(
        "stopped: {}",
        json!({
            "requestsReceived": sandbox.requests_received(),
            "createsReceived": sandbox.creates_received(),
            "createsApplied": sandbox.creates_applied(),
            "rateLimited": sandbox.rate_limited(),
        })
    );
    Ok(())
}

/// The pregenerated wallets as create-many input: CSV for `*.csv`, else JSON lines.
fn write_input(path: &str, wallets: &[Pregenerated]) -> Result<(), CliError> {
    let fail = |e: std::io::Error| CliError::Other(format!("cannot write {path}: {e}"));
    let file = crate::files::create_private(std::path::Path::new(path), "--write-input")?;
    let mut out = std::io::BufWriter::new(file);
    let csv = path.to_ascii_lowercase().ends_with(".csv");
    if csv {
        writeln!(out, "environmentId,walletId,userId").map_err(fail)?;
    }
    for w in wallets {
        if csv {
            writeln!(out, "{},{},{}", w.environment_id, w.wallet_id, w.user_id)
        } else {
            writeln!(
                out,
                "{}",
                json!({"environmentId": w.environment_id, "walletId": w.wallet_id, "userId": w.user_id})
            )
        }
        .map_err(fail)?;
    }
    out.flush().map_err(fail)
}

/// Each wallet's key share ids, one JSON line per wallet.
fn dump_state(path: &str, sandbox: &Sandbox, wallets: &[WalletId]) -> Result<(), CliError> {
    let fail = |e: std::io::Error| CliError::Other(format!("cannot write {path}: {e}"));
    let file = crate::files::create_private(std::path::Path::new(path), "--dump-state")?;
    let mut out = std::io::BufWriter::new(file);
    for wallet in wallets {
        let ids: Vec<String> = sandbox
            .key_shares(wallet)
            .unwrap_or_default()
            .iter()
            .map(|s| s.id.to_string())
            .collect();
        let applied = sandbox.creates_applied_to(wallet);
        writeln!(
            out,
            "{}",
            json!({"walletId": wallet, "keyShareIds": ids, "createsApplied": applied})
        )
        .map_err(fail)?;
    }
    out.flush().map_err(fail)
}
