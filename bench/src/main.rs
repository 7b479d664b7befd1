//! What the SDK costs over raw reqwest: the same create call made by raw reqwest, the
//! generated client and the facade, against one hyper server on loopback, in this process.
//!
//! Run it with `cargo xtask bench` (which builds it in release mode); `--quick` for a short
//! run. The last lines are the ratios to raw reqwest, `latency ratio facade/raw: 1.02`,
//! `throughput ratio facade/raw: 0.98`, and the same for generated/raw.

mod clients;
mod measure;
mod report;
mod server;
mod stats;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

use clients::{BoxError, Clients, Kind};
use measure::Plan;

// Every allocation in the process is counted. The counters cost a few atomic adds per
// allocation, paid alike by every client.
#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// Calls of a `--profile` run when no count is given.
const PROFILE_CALLS: usize = 50_000;

const USAGE: &str = "usage: dynamic-waas-bench [--quick | --profile CLIENT [CALLS]]

  (no option)        the full run (about a minute)
  --quick            a short run (a few seconds), to check that it works; noisier figures
  --profile CLIENT [CALLS]
                     only CLIENT's sequential calls (raw, raw+headers, generated, facade,
                     facade+pace or facade.send), 50000 or CALLS of them, to run under
                     perf or valgrind";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        [] => run(&Plan::FULL),
        ["--quick"] => run(&Plan::QUICK),
        ["--profile", kind] => with_kind(kind, |kind| profile(kind, PROFILE_CALLS)),
        ["--profile", kind, calls] => match calls.parse() {
            Ok(calls) => with_kind(kind, |kind| profile(kind, calls)),
            Err(_) => Err(format!("not a number of calls: `{calls}`").into()),
        },
        // Internal: the peak-memory run of one client (see `measure::peak_memory`).
        [measure::PEAK_CHILD, kind] => with_kind(kind, measure::peak_child),
        ["--help" | "-h"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn with_kind(name: &str, f: impl FnOnce(Kind) -> Result<(), BoxError>) -> Result<(), BoxError> {
    match Kind::parse(name) {
        Some(kind) => f(kind),
        None => Err(format!("unknown client `{name}` (raw, raw+headers, generated, facade, facade+pace or facade.send)").into()),
    }
}

/// The runtime every mode uses: multi-threaded, one worker per core (the default). The server
/// and the clients share the workers, as they would share a host's cores with the rest of an
/// application.
pub fn runtime() -> Result<tokio::runtime::Runtime, BoxError> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run(plan: &Plan) -> Result<(), BoxError> {
    report::machine();
    let measured = runtime()?.block_on(measure::all(plan))?;
    let peaks = measure::peak_memory()?;
    report::print(plan, &measured, &peaks);
    Ok(())
}

fn profile(kind: Kind, calls: usize) -> Result<(), BoxError> {
    // One thread: no work stealing or idle spinning, so that what a profiler or valgrind
    // counts is the calls' own work and repeats from run to run.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let clients = Arc::new(Clients::new(&server::start().await?)?);
        let start = Instant::now();
        measure::sequential(&clients, kind, calls).await?;
        let each = start.elapsed().as_secs_f64() * 1e6 / calls as f64;
        println!("{kind}: {calls} calls, {each:.1} µs each");
        Ok(())
    })
}
