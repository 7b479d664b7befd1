//! `sandbox serve`: a seeded sandbox on loopback until Ctrl-C.

use std::net::Ipv4Addr;
use std::time::Duration;

use std::io::Write;

use dynamic_waas::WalletId;
use dynamic_waas_sandbox::{
    Fault, FaultResponse, Operation, Pregenerated, Rate, RateLimit, RateLimits, Sandbox, Seed,
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
    if let Some(lag) = args.read_lag {
        builder = builder.read_lag(lag);
        if args.lagging_duplicate_check {
            builder = builder.lagging_duplicate_check();
        }
    }
    let kind = args.limit_kind;
    let limit_of = move |per_second: f64| {
        let n = per_second.round().max(1.0) as u32;
        let limit = match kind {
            crate::args::LimitKind::SlidingWindow => RateLimit::new(n, Duration::from_secs(1)),
            crate::args::LimitKind::TokenBucket => {
                RateLimit::token_bucket(n, Duration::from_secs(1))
            }
        };
        RateLimits::new().per_client(limit)
    };
    if let Some(limit) = args.limit {
        builder = builder.rate_limits(limit_of(f64::from(limit)));
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
    let sandbox = std::sync::Arc::new(sandbox);
    let mut background = Vec::new();
    if let (Some(limit), Some(schedule)) = (args.limit, args.limit_schedule.clone()) {
        let sandbox = std::sync::Arc::clone(&sandbox);
        background.push(tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            for (at, share) in schedule.0 {
                tokio::time::sleep_until(start + Duration::from_secs_f64(at)).await;
                sandbox.set_rate_limits(Some(limit_of(f64::from(limit) * share)));
            }
        }));
    }
    if let Some(path) = &args.rate_log {
        let file = crate::files::create_private(std::path::Path::new(path), "--rate-log")?;
        let sandbox = std::sync::Arc::clone(&sandbox);
        background.push(tokio::spawn(rate_log(file, sandbox)));
    }
    signals.next().await;
    for task in background {
        task.abort();
    }
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

/// A JSON line a second: requests received and refused with 429 during that second.
async fn rate_log(file: std::fs::File, sandbox: std::sync::Arc<Sandbox>) {
    let mut out = std::io::LineWriter::new(file);
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.tick().await;
    let (mut received, mut refused) = (sandbox.requests_received(), sandbox.rate_limited());
    for second in 1u64.. {
        ticks.tick().await;
        let (now_received, now_refused) = (sandbox.requests_received(), sandbox.rate_limited());
        let line = json!({
            "second": second,
            "received": now_received - received,
            "rateLimited": now_refused - refused,
        });
        if writeln!(out, "{line}").is_err() {
            return;
        }
        (received, refused) = (now_received, now_refused);
    }
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
