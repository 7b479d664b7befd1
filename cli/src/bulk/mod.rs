//! `backup-locations create-many`: many wallets from a file, through one client (one pool,
//! one pacer, one retry budget), with a results file that survives a crash.
//!
//! Rows are read on a thread ([`input`]), each job's start is journaled before its create may
//! be sent, outcomes are appended and synced by another thread ([`results`]), and the
//! library's [`Client::create_many`](dynamic_waas::Client::create_many) bounds what is in
//! flight, keeps two rows of one wallet from running at once, and stops gracefully through
//! its handle (Ctrl-C, failures in a row, a writer that failed).

mod input;
mod progress;
mod results;
mod resume;
mod tally;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dynamic_waas::{BackupStatus, BulkHandle, EnvironmentId, ErrorKind, Pacing};
use futures_util::{future, stream, StreamExt};
use serde_json::json;
use tokio::sync::watch;

#[cfg(feature = "sandbox")]
pub use input::{seed_from, wallets_in};
pub use progress::LogWriter;

use crate::args::{ApiArgs, CreateManyArgs, GlobalArgs, InputFormat};
use crate::exit::{CliError, INTERRUPTED, INVALID_INPUT, PARTIAL};
use crate::output::Printer;
use crate::signals::Signals;
use crate::target::Target;
use input::{Ended, Row, Rules};
use progress::Progress;
use resume::Resume;
use tally::Tally;

pub async fn create_many(
    _global: &GlobalArgs,
    api: &ApiArgs,
    args: CreateManyArgs,
    printer: Printer,
) -> Result<(), CliError> {
    let started = Instant::now();
    let mut problems = Vec::new();
    if let Err(problem) = args.location.check(&args.location.locations) {
        problems.push(problem);
    }
    if let Some(env) = &args.environment_id {
        if let Err(e) = env.parse::<EnvironmentId>() {
            problems.push(format!(
                "--environment-id must be a lower-case hyphenated UUID: {}",
                e.problem()
            ));
        }
    }
    if api.token_stdin && args.input == "-" {
        problems.push("--token-stdin and --input - cannot both read stdin".into());
    }
    let results_path = args.results.as_ref().map(PathBuf::from);
    let rules = |resume| Rules {
        environment_id: args.environment_id.clone(),
        flags: args.location.clone(),
        shard: args.shard,
        bad_rows: args.bad_rows,
        resume,
    };
    if args.dry_run {
        if args.resume && results_path.is_none() {
            problems.push("--dry-run --resume reads what --results holds: give --results".into());
        }
        if !problems.is_empty() {
            return Err(CliError::problems(problems));
        }
        let (reader, format) = input::open(&args.input, args.format)?;
        // Read as they are: a dry run changes nothing, and needs no lock.
        let resume = match &results_path {
            Some(path) if args.resume => resume::load(path)?,
            Some(path) => {
                results::refuse_existing(path)?;
                Resume::default()
            }
            None => Resume::default(),
        };
        return dry_run(reader, format, rules(resume), printer, started).await;
    }
    let Some(results_path) = results_path else {
        return Err(CliError::InvalidInput("--results is required".into()));
    };
    // Listened to before the results file is locked and trimmed: a Ctrl-C from now on is
    // not lost, and one before the intake starts sends nothing.
    let signals =
        Signals::new().map_err(|e| CliError::Other(format!("cannot watch for Ctrl-C: {e}")))?;
    let (stop_tx, stop_rx) = watch::channel(Stop::Running);
    let stop_tx = Arc::new(stop_tx);
    // Kept until the very end, so that a second Ctrl-C always exits at once.
    let signals = tokio::spawn(on_signals(signals, Arc::clone(&stop_tx)));
    // With --sandbox, the sandbox has the input's wallets.
    #[cfg(feature = "sandbox")]
    let target = Target::seeded(api, |builder, seed| {
        let wallets = wallets_in(&args.input, args.format, args.environment_id.as_deref())?;
        input::seed_from(builder, seed, wallets)
    })
    .await?;
    #[cfg(not(feature = "sandbox"))]
    let target = Target::new(api).await?;
    let pacing = Pacing::upstream()
        .with_per_process(args.rate)
        .with_per_environment(args.env_rate);
    let client = target.client(api, pacing, problems)?;
    let (reader, format) = input::open(&args.input, args.format)?;
    progress::eprint_line(&pace_line(&target, &args));
    let concurrency = usize::from(args.concurrency);
    let tally = Arc::new(Tally::default());
    let (sink, writer, resume) =
        results::start(&results_path, &args.input, args.resume, Arc::clone(&tally))?;
    if args.resume {
        let (settled, read_first) = resume.counts();
        progress::eprint_line(&format!(
            "resuming: {settled} wallets settled earlier are skipped; {read_first} are read \
             before anything is created"
        ));
    }
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

    let intake = intake(rows_rx, sink.clone(), Arc::clone(&stop_tx), concurrency);
    let mut outcomes = client.create_many(intake, concurrency);
    let handle = outcomes.handle();
    if *stop_rx.borrow() != Stop::Running {
        handle.stop();
    }
    let stopper = tokio::spawn(stop_when_asked(stop_rx.clone(), handle.clone()));
    let mut failures_in_a_row = 0u32;
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
            && *stop_rx.borrow() == Stop::Running
        {
            let cause = outcome
                .error
                .as_ref()
                .map_or("unknown", |e| e.kind().name());
            progress::eprint_line(&format!(
                "stopping: {failures_in_a_row} wallets in a row failed alike (the last: \
                 {cause}); fix the token or environment, then --resume"
            ));
            let _ = stop_tx.send(Stop::Failures);
        }
        sink.outcome(outcome);
    }
    // Dropped here, with the rows' receiver: a reader blocked on it ends.
    drop(outcomes);
    stopper.abort();
    let stop = *stop_rx.borrow();
    let ended = if stop != Stop::Running && !reader.is_finished() {
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
    let run = match (&ended, stop) {
        (_, Stop::Failures) => "stopped_after_failures",
        (_, Stop::Interrupted) | (Ended::Stopped, _) => "interrupted",
        (_, Stop::WriterGone) => "stopped_writer_failed",
        (Ended::BadRow, _) => "stopped_at_bad_row",
        (Ended::Complete, _) if tally.all_well() => "complete",
        (Ended::Complete, _) => "complete_with_failures",
    };
    let results_name = results_path.display().to_string();
    let elapsed = started.elapsed();
    let mut summary = json!({
        "run": run,
        "rows": rows,
        "elapsedSeconds": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        "requestsSent": stats.requests_sent,
        "rateLimited": stats.rate_limited,
        "results": results_name,
    });
    if let (Some(map), serde_json::Value::Object(counts)) =
        (summary.as_object_mut(), tally.counts())
    {
        map.extend(counts);
    }
    let text = format!(
        "{run}: {rows} rows in {} ({}); {} requests, {} rate-limited; outcomes in {results_name}\n",
        indicatif::HumanDuration(elapsed),
        tally.brief(),
        stats.requests_sent,
        stats.rate_limited,
    );
    print_summary(printer, &summary, &text)?;
    signals.abort();
    match run {
        "complete" => Ok(()),
        "interrupted" => Err(CliError::Reported(INTERRUPTED)),
        "stopped_at_bad_row" => Err(CliError::Reported(INVALID_INPUT)),
        _ => Err(CliError::Reported(PARTIAL)),
    }
}

/// Why the run stopped taking rows, if it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Running,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// Too many wallets in a row failed alike.
    Failures,
    /// The results writer failed: nothing more may be sent.
    WriterGone,
}

/// The jobs, in input order: each bad row reported (once, on stderr and in the results), each
/// job journaled (and synced, in groups) before it is handed on, so that its create is never
/// sent unrecorded. Several journal entries wait for one sync: the intake is not held to one
/// sync per job.
fn intake(
    rows_rx: tokio::sync::mpsc::Receiver<Row>,
    sink: results::Sink,
    stop_tx: Arc<watch::Sender<Stop>>,
    concurrency: usize,
) -> impl futures_util::Stream<Item = dynamic_waas::BackupJob> + Send + 'static {
    stream::unfold(rows_rx, |mut rx| async move {
        rx.recv().await.map(|row| (row, rx))
    })
    .map(move |row| {
        let (sink, stop_tx) = (sink.clone(), Arc::clone(&stop_tx));
        async move {
            match row {
                Row::Bad { line, message } => {
                    progress::eprint_line(&format!(
                        "line {line}: {}",
                        crate::output::escaped(&message)
                    ));
                    sink.bad_row(line, message);
                    None
                }
                Row::Job(job) => match job.tag() {
                    Some(line) if sink.started(job.wallet_id().as_str(), line).await => {
                        Some(Ok(job))
                    }
                    _ => {
                        let _ = stop_tx.send(Stop::WriterGone);
                        Some(Err(()))
                    }
                },
            }
        }
    })
    .buffered(concurrency)
    // Once the writer is gone, nothing more is handed on.
    .take_while(|row| future::ready(!matches!(row, Some(Err(())))))
    .filter_map(|row| future::ready(row.and_then(Result::ok)))
}

/// Stops the library's run gracefully (no new job; those in flight finish) once asked.
async fn stop_when_asked(mut stop: watch::Receiver<Stop>, handle: BulkHandle) {
    if stop.wait_for(|stop| *stop != Stop::Running).await.is_ok() {
        handle.stop();
    }
}

/// What pacing this run has, and which limit binds, for an operator planning a long run.
fn pace_line(target: &Target, args: &CreateManyArgs) -> String {
    if target.is_sandbox() {
        return "pace: none (the embedded sandbox has no rate limits)".into();
    }
    let pacing = Pacing::upstream()
        .with_per_process(args.rate)
        .with_per_environment(args.env_rate);
    let (binding, per_minute) = pacing.binding().unwrap_or(("per process", args.rate));
    let mut line = format!(
        "pace: at most {} requests a minute from this process (--rate) and {} to each \
         environment (--env-rate); Dynamic allows 1,500 per IP and 3,000 per environment. \
         The {binding} limit binds: {:.1} requests a second for one environment",
        args.rate,
        args.env_rate,
        f64::from(per_minute) / 60.0
    );
    if binding == "per environment" && args.rate > args.env_rate {
        line.push_str(&format!(
            " (--rate {} is not reached within one environment)",
            args.rate
        ));
    }
    line.push_str("; slowed, and then probed back up, when the server answers 429");
    line
}

/// `--dry-run`: every row read and checked as a run would (shards and `--resume` included),
/// bad rows reported; nothing is sent or written, and no token is needed.
async fn dry_run(
    reader: Box<dyn std::io::BufRead + Send>,
    format: InputFormat,
    rules: Rules,
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
                progress::eprint_line(&format!(
                    "line {line}: {}",
                    crate::output::escaped(&message)
                ));
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
         other shards; {invalid} bad rows\n",
        counts["skipped"], counts["otherShard"]
    );
    print_summary(printer, &summary, &text)?;
    if invalid > 0 {
        return Err(CliError::Reported(INVALID_INPUT));
    }
    Ok(())
}

/// The summary on stdout: JSON, or text (on a terminal, or with `--output text`).
fn print_summary(
    printer: Printer,
    summary: &serde_json::Value,
    text: &str,
) -> Result<(), CliError> {
    printer
        .value(summary, text)
        .map_err(|e| CliError::Other(format!("could not write the summary to stdout: {e}")))
}

/// The first Ctrl-C (or SIGTERM) stops the intake; the second exits at once.
async fn on_signals(mut signals: Signals, stop: Arc<watch::Sender<Stop>>) {
    signals.next().await;
    let _ = stop.send(Stop::Interrupted);
    progress::eprint_line(
        "stopping: no new wallets; writing the outcomes of those in flight (Ctrl-C again to \
         exit at once; --resume then settles them)",
    );
    signals.next().await;
    progress::eprint_line("exiting at once");
    std::process::exit(i32::from(INTERRUPTED));
}
