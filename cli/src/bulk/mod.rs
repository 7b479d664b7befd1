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

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dynamic_waas::{BackupStatus, ErrorKind, Pacing};
use futures_util::{future, stream, StreamExt};
use serde_json::json;
use tokio::sync::watch;

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
    let results_path = PathBuf::from(&args.results);
    let (reader, format) = input::open(&args.input, args.format)?;
    let concurrency = usize::from(args.concurrency);
    let rules = |resume| Rules {
        environment_id: args.environment_id.clone(),
        flags: args.location.clone(),
        shard: args.shard,
        bad_rows: args.bad_rows,
        resume,
    };
    if args.dry_run {
        // Read as they are: a dry run changes nothing, and needs no lock.
        let resume = if args.resume {
            results::load(&results_path)?
        } else {
            results::refuse_existing(&results_path)?;
            HashMap::new()
        };
        return dry_run(reader, format, rules(resume), global, printer, started).await;
    }
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
        .with_per_process(args.rate)
        .with_per_environment(args.env_rate);
    let client = target.client(global, pacing)?;
    let tally = Arc::new(Tally::default());
    let (sink, writer, resume) =
        results::start(&results_path, &args.input, args.resume, Arc::clone(&tally))?;
    let rules = rules(resume);

    let total = Arc::new(AtomicU64::new(0));
    if input::is_regular_file(&args.input) {
        let (total, path) = (Arc::clone(&total), args.input.clone());
        std::thread::spawn(move || {
            if let Some(rows) = input::count_rows(&path, format) {
                total.store(rows, Ordering::Relaxed);
            }
        });
    }
    let (reader, rows_rx) = input::spawn_reader(
        reader,
        format,
        rules,
        concurrency.saturating_mul(2),
        Arc::clone(&tally),
    )?;
    let progress = Progress::start(
        Arc::clone(&tally),
        Arc::clone(&total),
        client.clone(),
        Duration::from_secs(args.progress_interval),
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    // Kept until the very end, so that a second Ctrl-C always exits at once.
    let signals = tokio::spawn(on_signals(Arc::clone(&stop_tx)));

    let intake = stream::unfold(rows_rx, |mut rx| async move {
        rx.recv().await.map(|row| (row, rx))
    })
    .map({
        let (sink, stop_tx) = (sink.clone(), Arc::clone(&stop_tx));
        move |row| {
            let (sink, stop_tx) = (sink.clone(), Arc::clone(&stop_tx));
            async move {
                match row {
                    Row::Bad { line, message } => {
                        sink.bad_row(line, message);
                        Intake::Reported
                    }
                    // Journaled (and synced, in groups) before its create may be sent; if the
                    // writer is gone, nothing more is sent, and the run stops.
                    Row::Job(job) => match job.tag() {
                        Some(line) if sink.started(job.wallet_id().as_str(), line).await => {
                            Intake::Job(job)
                        }
                        _ => {
                            let _ = stop_tx.send(true);
                            Intake::WriterGone
                        }
                    },
                }
            }
        }
    })
    // Several journal entries wait for one sync: intake is not held to one sync per job.
    .buffered(concurrency)
    // After the buffer: once stopped, no journaled job is sent (a resume reads its wallet).
    .take_until(stopped(stop_rx.clone()))
    .take_while(|intake| future::ready(!matches!(intake, Intake::WriterGone)))
    .filter_map(|intake| {
        future::ready(match intake {
            Intake::Job(job) => Some(job),
            _ => None,
        })
    });

    let mut failures_in_a_row = 0u32;
    let mut stopped_by_failures = false;
    {
        let mut outcomes = std::pin::pin!(client.create_many(intake, concurrency));
        while let Some(outcome) = outcomes.next().await {
            // Only failures that say something of the whole run count: a wrong token or
            // environment fails every wallet alike; a block of deleted wallets does not.
            let run_wide = outcome.error.as_ref().is_some_and(|e| {
                matches!(
                    e.kind(),
                    ErrorKind::Unauthorized | ErrorKind::Forbidden | ErrorKind::TokenUnavailable
                )
            });
            failures_in_a_row = match outcome.status {
                BackupStatus::Failed if run_wide => failures_in_a_row + 1,
                _ => 0,
            };
            if args.max_failures_in_a_row > 0
                && failures_in_a_row == args.max_failures_in_a_row
                && !*stop_rx.borrow()
            {
                let cause = outcome
                    .error
                    .as_ref()
                    .map_or("unknown", |e| e.kind().name());
                progress::eprint_line(&format!(
                    "stopping: {failures_in_a_row} wallets in a row failed alike (the last: \
                     {cause}); fix the token or environment, then --resume"
                ));
                stopped_by_failures = true;
                let _ = stop_tx.send(true);
            }
            sink.outcome(outcome);
        }
        // Dropped here, with the rows' receiver: a reader blocked on it ends.
    }
    let interrupted = *stop_rx.borrow() && !stopped_by_failures;
    let ended = if *stop_rx.borrow() && !reader.is_finished() {
        // Perhaps blocked reading a terminal's stdin: left behind (it holds nothing the
        // writer waits for).
        Ok(Ended::Stopped)
    } else {
        reader
            .join()
            .unwrap_or_else(|_| Err(CliError::Other("the input reader panicked".into())))
    };
    // Whatever ended the run, every outcome reaches the disk (or stderr) first.
    drop(sink);
    let written = writer.finish();
    progress.finish().await;
    // The writer's failure first: it is what stopped the run.
    written?;
    let ended = ended?;

    let stats = client.stats();
    // Read once: a reader left behind may still be counting skipped rows.
    let rows = tally.rows_done();
    let run = match (&ended, interrupted) {
        _ if stopped_by_failures => "stopped_after_failures",
        (_, true) | (Ended::Stopped, _) => "interrupted",
        (Ended::BadRow, _) => "stopped_at_bad_row",
        (Ended::Complete, _) if tally.all_well() => "complete",
        (Ended::Complete, _) => "complete_with_failures",
    };
    let mut summary = json!({
        "run": run,
        "rows": rows,
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
        rows,
        started.elapsed().as_secs_f64(),
        tally.brief(),
        stats.requests_sent,
        stats.rate_limited,
        args.results
    );
    print_summary(global, printer, &summary, &text)?;
    signals.abort();
    match run {
        "complete" => Ok(()),
        "interrupted" => Err(CliError::Reported(INTERRUPTED)),
        "stopped_at_bad_row" => Err(CliError::Reported(INVALID_INPUT)),
        _ => Err(CliError::Reported(PARTIAL)),
    }
}

/// `--dry-run`: every row read and checked as a run would (shards and `--resume` included),
/// bad rows reported; nothing is sent or written, and no token is needed.
async fn dry_run(
    reader: Box<dyn std::io::BufRead + Send>,
    format: crate::args::InputFormat,
    rules: Rules,
    global: &GlobalArgs,
    printer: Printer,
    started: Instant,
) -> Result<(), CliError> {
    let tally = Arc::new(Tally::default());
    let (reader, mut rows_rx) =
        input::spawn_reader(reader, format, rules, 1024, Arc::clone(&tally))?;
    let (mut create, mut read_first, mut invalid) = (0u64, 0u64, 0u64);
    while let Some(row) = rows_rx.recv().await {
        match row {
            Row::Job(job) if job.is_resumed() => read_first += 1,
            Row::Job(_) => create += 1,
            Row::Bad { line, message } => {
                invalid += 1;
                progress::eprint_line(&format!("line {line}: {message}"));
            }
        }
    }
    let ended = reader
        .join()
        .unwrap_or_else(|_| Err(CliError::Other("the input reader panicked".into())))?;
    let counts = tally.counts();
    let summary = json!({
        "run": if matches!(ended, Ended::BadRow) { "dry_run_stopped_at_bad_row" } else { "dry_run" },
        "wouldCreate": create,
        "wouldReadFirst": read_first,
        "skipped": counts["skipped"],
        "otherShard": counts["otherShard"],
        "invalid": invalid,
        "elapsedSeconds": (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    });
    let text = format!(
        "dry run: would create {create}, read {read_first} wallets first, skip {}, leave {} to \
         other shards; {invalid} bad rows",
        counts["skipped"], counts["otherShard"]
    );
    print_summary(global, printer, &summary, &text)?;
    if invalid > 0 {
        return Err(CliError::Reported(INVALID_INPUT));
    }
    Ok(())
}

/// The summary on stdout: JSON unless text was asked for explicitly.
fn print_summary(
    global: &GlobalArgs,
    printer: Printer,
    summary: &serde_json::Value,
    text: &str,
) -> Result<(), CliError> {
    let printer = match global.output {
        None => Printer::new(Some(crate::args::OutputFormat::Json)),
        Some(_) => printer,
    };
    printer
        .value(summary, text)
        .map_err(|e| CliError::Other(format!("could not write the summary to stdout: {e}")))
}

/// What the intake made of a row.
enum Intake {
    Job(dynamic_waas::BackupJob),
    /// A bad row, reported.
    Reported,
    /// The results writer stopped: nothing more may be sent.
    WriterGone,
}

/// Resolves once the run is asked to stop (never, if no one can ask any more).
async fn stopped(mut stop: watch::Receiver<bool>) {
    if stop.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The first Ctrl-C (or SIGTERM) stops the intake; the second exits at once.
async fn on_signals(stop: Arc<watch::Sender<bool>>) {
    let mut signals = match crate::signals::Signals::new() {
        Ok(signals) => signals,
        Err(e) => {
            tracing::warn!("cannot watch for Ctrl-C: {e}");
            return;
        }
    };
    signals.next().await;
    let _ = stop.send(true);
    progress::eprint_line(
        "stopping: no new wallets; writing the outcomes of those in flight (Ctrl-C again to \
         exit at once; --resume then settles them)",
    );
    signals.next().await;
    progress::eprint_line("exiting at once");
    std::process::exit(i32::from(INTERRUPTED));
}
