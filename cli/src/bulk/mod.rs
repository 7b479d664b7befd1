//! `backup-locations create-many`: many wallets from a file, through one client (one pool,
//! one pacer, one retry budget), with a results file that survives a crash.
//!
//! Rows are read on a thread ([`input`]), each job's start is journaled before its create may
//! be sent, outcomes are appended and synced by another thread ([`results`]), and the library's
//! [`Client::create_many`] bounds what is in flight. Ctrl-C stops taking rows and drains.

mod input;
mod progress;
mod results;
mod tally;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dynamic_waas::Pacing;
use futures_util::{future, stream, StreamExt};
use serde_json::json;
use tokio::sync::{mpsc, watch};

#[cfg(feature = "sandbox")]
pub use input::{seed_from, wallets_in};
pub use progress::LogWriter;

use crate::args::{CreateManyArgs, GlobalArgs};
use crate::exit::{CliError, INTERRUPTED, INVALID_INPUT, PARTIAL};
use crate::output::Printer;
use crate::target::Target;
use input::{Ended, Row, Rules};
use progress::Progress;
use tally::Tally;

pub async fn create_many(
    global: &GlobalArgs,
    args: CreateManyArgs,
    printer: Printer,
) -> Result<(), CliError> {
    let started = Instant::now();
    args.location
        .check(&args.location.locations)
        .map_err(CliError::InvalidInput)?;
    // With --sandbox, the sandbox has the input's wallets.
    #[cfg(feature = "sandbox")]
    let target = Target::seeded(global, |builder, seed| {
        let wallets = wallets_in(&args.input, args.format, args.environment_id.as_deref())?;
        input::seed_from(builder, seed, wallets)
    })
    .await?;
    #[cfg(not(feature = "sandbox"))]
    let target = Target::new(global).await;
    let pacing = Pacing::upstream()
        .per_process(args.rate)
        .per_environment(args.env_rate);
    let client = target.client(global, pacing)?;
    let results_path = PathBuf::from(&args.results);
    let resume = if args.resume {
        results::load(&results_path)?
    } else {
        HashMap::new()
    };
    let (reader, format) = input::open(&args.input, args.format)?;
    let tally = Arc::new(Tally::default());
    let (sink, writer) = results::start(&results_path, args.resume, Arc::clone(&tally))?;

    let total = Arc::new(AtomicU64::new(0));
    if args.input != "-" {
        let (total, path) = (Arc::clone(&total), args.input.clone());
        std::thread::spawn(move || {
            if let Some(rows) = input::count_rows(&path, format) {
                total.store(rows, Ordering::Relaxed);
            }
        });
    }
    let concurrency = usize::from(args.concurrency);
    let rules = Rules {
        environment_id: args.environment_id.clone(),
        locations: args
            .location
            .locations
            .iter()
            .map(|l| l.request.clone())
            .collect(),
        flags: args.location,
        shard: args.shard,
        bad_rows: args.bad_rows,
        resume,
    };
    let (rows_tx, rows_rx) = mpsc::channel::<Row>(concurrency.saturating_mul(2));
    let reader = {
        let (sink, tally) = (sink.clone(), Arc::clone(&tally));
        std::thread::Builder::new()
            .name("input-reader".into())
            .spawn(move || input::read(reader, format, &rules, &rows_tx, &sink, &tally))
            .map_err(|e| CliError::Other(format!("cannot start the input reader: {e}")))?
    };
    let progress = Progress::start(
        Arc::clone(&tally),
        Arc::clone(&total),
        client.clone(),
        Duration::from_secs(args.progress_interval),
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let signals = tokio::spawn(on_signals(stop_tx));

    // The input lines of the jobs in flight, by wallet (a wallet may be in the input twice).
    let lines: Arc<Mutex<HashMap<String, VecDeque<u64>>>> = Arc::default();
    let intake = stream::unfold(rows_rx, |mut rx| async move {
        rx.recv().await.map(|row| (row, rx))
    })
    .take_until(stopped(stop_rx.clone()))
    .then(|row| {
        let (sink, lines) = (sink.clone(), Arc::clone(&lines));
        async move {
            let wallet = row.job.wallet_id().as_str().to_owned();
            // Journaled before its create may be sent; if the writer is gone, nothing more is.
            if !sink.started(&wallet).await {
                return None;
            }
            if let Ok(mut lines) = lines.lock() {
                lines.entry(wallet).or_default().push_back(row.line);
            }
            Some(row.job)
        }
    })
    .take_while(|job| future::ready(job.is_some()))
    .filter_map(future::ready);

    {
        let mut outcomes = std::pin::pin!(client.create_many(intake, concurrency));
        while let Some(outcome) = outcomes.next().await {
            let line = lines
                .lock()
                .ok()
                .and_then(|mut lines| {
                    let wallet = outcome.wallet_id.as_str();
                    let waiting = lines.get_mut(wallet)?;
                    let line = waiting.pop_front();
                    if waiting.is_empty() {
                        // Only what is in flight stays: memory does not grow with the input.
                        lines.remove(wallet);
                    }
                    line
                })
                .unwrap_or(0);
            sink.outcome(line, outcome);
        }
        // Dropped here, with the rows' receiver: a reader blocked on it ends.
    }
    let interrupted = *stop_rx.borrow();
    signals.abort();
    let ended = if interrupted && !reader.is_finished() {
        // Perhaps blocked reading a terminal's stdin: left behind.
        Ended::Stopped
    } else {
        reader
            .join()
            .map_err(|_| CliError::Other("the input reader panicked".into()))??
    };
    drop(sink);
    let complete = matches!(ended, Ended::Complete) && !interrupted;
    writer.finish(complete)?;
    progress.finish().await;

    let stats = client.stats();
    let run = match (&ended, interrupted) {
        (_, true) | (Ended::Stopped, _) => "interrupted",
        (Ended::BadRow, _) => "stopped_at_bad_row",
        (Ended::Complete, _) if tally.all_well() => "complete",
        (Ended::Complete, _) => "complete_with_failures",
    };
    let mut summary = json!({
        "run": run,
        "rows": tally.rows_done(),
        "elapsedSeconds": (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        "requestsSent": stats.requests_sent,
        "rateLimited": stats.rate_limited,
        "results": args.results,
    });
    if let (Some(map), serde_json::Value::Object(counts)) =
        (summary.as_object_mut(), tally.counts())
    {
        map.extend(counts);
    }
    let text = format!(
        "{run}: {} rows in {:.1} s ({}); {} requests, {} rate-limited; outcomes in {}",
        tally.rows_done(),
        started.elapsed().as_secs_f64(),
        tally.brief(),
        stats.requests_sent,
        stats.rate_limited,
        args.results
    );
    // The summary is JSON unless text was asked for explicitly.
    let printer = if global.output.is_none() {
        Printer::new(Some(crate::args::OutputFormat::Json))
    } else {
        printer
    };
    printer
        .value(&summary, &text)
        .map_err(|e| CliError::Other(format!("could not write the summary to stdout: {e}")))?;
    match run {
        "complete" => Ok(()),
        "interrupted" => Err(CliError::Reported(INTERRUPTED)),
        "stopped_at_bad_row" => Err(CliError::Reported(INVALID_INPUT)),
        _ => Err(CliError::Reported(PARTIAL)),
    }
}

/// Resolves once the run is asked to stop.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// The first Ctrl-C (or SIGTERM) stops the intake; the second exits at once.
async fn on_signals(stop: watch::Sender<bool>) {
    if signal().await.is_err() {
        return;
    }
    let _ = stop.send(true);
    eprintln!(
        "stopping: no new wallets; writing the outcomes of those in flight (Ctrl-C again to \
         exit at once; --resume then settles them)"
    );
    if signal().await.is_ok() {
        eprintln!("exiting at once");
        std::process::exit(i32::from(INTERRUPTED));
    }
}

async fn signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
