//! Progress on stderr: a bar on a terminal (`indicatif`), else a line every few seconds. Logs
//! written while the bar is shown go through [`LogWriter`], which lifts the bar first, so a
//! log line never tears it.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dynamic_waas::Client;
use indicatif::{HumanDuration, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::tally::Tally;

/// The bar being shown, if any: where logs must go around.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Runs `write` with the bar (if any) lifted off the terminal.
fn around_bar<R>(write: impl FnOnce() -> R) -> R {
    let bar = ACTIVE.lock().ok().and_then(|active| active.clone());
    match bar {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

/// One line on stderr, around the bar; a closed stderr is ignored.
pub fn eprint_line(line: &str) {
    around_bar(|| {
        let _ = writeln!(io::stderr().lock(), "{line}");
    });
}

/// Stderr for logs: each write lifts the progress bar first.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        around_bar(|| io::stderr().write_all(buf)).map(|()| buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// The rows in the input, once counted (0: not known).
pub type Total = Arc<AtomicU64>;

/// The display, refreshed by a task of its own until [`Progress::finish`].
pub struct Progress {
    task: tokio::task::JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Progress {
    /// A bar when stderr is a terminal; else a line every `interval` (none if zero).
    pub fn start(tally: Arc<Tally>, total: Total, client: Client, interval: Duration) -> Self {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let started = Instant::now();
        let bar = io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {human_pos}/{human_len} rows, {rate}, ETA {eta}\n  {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                // One decimal, not indicatif's four.
                .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.1}/s", state.per_sec());
                }),
            );
            if let Ok(mut active) = ACTIVE.lock() {
                *active = Some(bar.clone());
            }
            bar
        });
        let tick = match &bar {
            Some(_) => Duration::from_millis(200),
            None if interval.is_zero() => Duration::MAX,
            None => interval,
        };
        let task = tokio::spawn(async move {
            loop {
                let quit = tokio::select! {
                    _ = tokio::time::sleep(tick) => false,
                    _ = stopped.changed() => true,
                };
                // The counts, the position and the message from one reading.
                let snapshot = Snapshot::take(&tally, &client);
                let done = snapshot.done;
                let total = total.load(Ordering::Relaxed);
                match &bar {
                    Some(bar) => {
                        if total > 0 {
                            bar.set_length(total);
                        }
                        bar.set_message(snapshot.message());
                        bar.set_position(done);
                    }
                    None if !quit => eprint_line(&line(total, started, &snapshot)),
                    None => {}
                }
                if quit {
                    break;
                }
            }
            if let Some(bar) = bar {
                bar.finish();
                if let Ok(mut active) = ACTIVE.lock() {
                    *active = None;
                }
            }
        });
        Self { task, stop }
    }

    /// Shows the last counts and stops.
    pub async fn finish(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// What the progress shows, read at one moment.
struct Snapshot {
    done: u64,
    brief: String,
    stats: dynamic_waas::ClientStats,
}

impl Snapshot {
    fn take(tally: &Tally, client: &Client) -> Self {
        Self {
            done: tally.rows_done(),
            brief: tally.brief(),
            stats: client.stats(),
        }
    }

    fn message(&self) -> String {
        let pace = match self.stats.pace {
            Some(pace) if pace < 0.999 => format!(", pace {:.0} %", pace * 100.0),
            _ => String::new(),
        };
        format!(
            "{} | {} requests, {} rate-limited{pace}",
            self.brief, self.stats.requests_sent, self.stats.rate_limited
        )
    }
}

/// One progress line: `progress: 1200/5000 rows, 24.1/s, ETA 2 minutes; created 1100, ...`.
fn line(total: u64, started: Instant, snapshot: &Snapshot) -> String {
    let done = snapshot.done;
    let elapsed = started.elapsed().as_secs_f64().max(0.001);
    let rate = done as f64 / elapsed;
    let of = if total > 0 {
        format!("/{total}")
    } else {
        String::new()
    };
    let eta = if total > done && rate > 0.0 {
        let left = Duration::from_secs_f64((total - done) as f64 / rate);
        format!(", ETA {}", HumanDuration(left))
    } else {
        String::new()
    };
    format!(
        "progress: {done}{of} rows, {rate:.1}/s{eta}; {}",
        snapshot.message()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_reads_well() {
        let snapshot = Snapshot {
            done: 10,
            brief: "created 10".into(),
            stats: dynamic_waas::ClientStats::default(),
        };
        let text = line(100, Instant::now() - Duration::from_secs(10), &snapshot);
        assert!(
            text.starts_with("progress: 10/100 rows, 1.0/s, ETA "),
            "{text}"
        );
        assert!(text.contains("created 10 | 0 requests"), "{text}");
    }
}
