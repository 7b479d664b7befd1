//! `sandbox serve`: a seeded sandbox on loopback until Ctrl-C.

use std::net::Ipv4Addr;

use std::io::Write;

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
        .pregenerated(&seed.environment_id, args.wallets);
    if let Some(path) = &args.seed_input {
        let named = crate::bulk::wallets_in(path, None, None)?;
        eprintln!("seeding {} wallets from {path}", named.len());
        builder = crate::bulk::seed_from(builder, &seed, named)?;
    }
    if args.upstream_limits {
        if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
            return Err(CliError::InvalidInput(format!(
                "--time-scale must be a number above 0, not {}",
                args.time_scale
            )));
        }
        builder = builder.rate_limits(RateLimits::upstream().time_scale(args.time_scale));
    }
    if let Some(path) = &args.write_input {
        write_input(path, &wallets)?;
        eprintln!(
            "wrote {} rows of create-many input to {path}",
            wallets.len()
        );
    }
    // Kept only to dump the state at the end.
    let wallets = if args.dump_state.is_some() {
        wallets
    } else {
        Vec::new()
    };
    let sandbox = match args.port {
        None => Sandbox::start(builder).await,
        Some(port) => {
            let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                .map_err(|e| CliError::Other(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
            Sandbox::start_on(builder, listener).await
        }
    };
    if !(0.0..=1.0).contains(&args.ambiguous_faults) {
        return Err(CliError::InvalidInput(format!(
            "--ambiguous-faults is a share of creates, from 0 to 1, not {}",
            args.ambiguous_faults
        )));
    }
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
        "environmentId": seed.environment_id,
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
        seed.token, seed.environment_id, seed.wallet_id, seed.user_id
    );
    printer
        .value(&document, &text)
        .map_err(|e| CliError::Other(format!("could not write to stdout: {e}")))?;
    eprintln!("The sandbox runs until Ctrl-C.");
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| CliError::Other(format!("cannot wait for Ctrl-C: {e}")))?;
    if let Some(path) = &args.dump_state {
        dump_state(path, &sandbox, &wallets)?;
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
    let file = std::fs::File::create(path).map_err(fail)?;
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
fn dump_state(path: &str, sandbox: &Sandbox, wallets: &[Pregenerated]) -> Result<(), CliError> {
    let fail = |e: std::io::Error| CliError::Other(format!("cannot write {path}: {e}"));
    let file = std::fs::File::create(path).map_err(fail)?;
    let mut out = std::io::BufWriter::new(file);
    for w in wallets {
        let ids: Vec<String> = sandbox
            .key_shares(&w.wallet_id)
            .unwrap_or_default()
            .iter()
            .map(|s| s.id.to_string())
            .collect();
        let applied = sandbox.creates_applied_to(&w.wallet_id);
        writeln!(
            out,
            "{}",
            json!({"walletId": w.wallet_id, "keyShareIds": ids, "createsApplied": applied})
        )
        .map_err(fail)?;
    }
    out.flush().map_err(fail)
}
