//! Progress on stderr: a bar on a terminal (`indicatif`), else a line every few seconds. Logs
//! written while the bar is shown go through [`LogWriter`], which lifts the bar first, so a
//! log line never tears it.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dynamic_waas::Client;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

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
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} rows, {per_sec}, ETA {eta}\n  {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
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
                let done = tally.rows_done();
                let total = total.load(Ordering::Relaxed);
                let stats = client.stats();
                match &bar {
                    Some(bar) => {
                        if total > 0 {
                            bar.set_length(total);
                        }
                        bar.set_position(done);
                        bar.set_message(format!(
                            "{} | {} requests, {} rate-limited",
                            tally.brief(),
                            stats.requests_sent,
                            stats.rate_limited
                        ));
                    }
                    None if !quit => eprint_line(&line(done, total, started, &tally, stats)),
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

/// One progress line: `progress: 1200/5000 rows, 24.1/s, ETA 2m38s; created 1100, ...`.
fn line(
    done: u64,
    total: u64,
    started: Instant,
    tally: &Tally,
    stats: dynamic_waas::ClientStats,
) -> String {
    let elapsed = started.elapsed().as_secs_f64().max(0.001);
    let rate = done as f64 / elapsed;
    let of = if total > 0 {
        format!("/{total}")
    } else {
        String::new()
    };
    let eta = if total > done && rate > 0.0 {
        let left = Duration::from_secs_f64((total - done) as f64 / rate);
        format!(", ETA {}", human(left))
    } else {
        String::new()
    };
    format!(
        "progress: {done}{of} rows, {rate:.1}/s{eta}; {}; {} requests, {} rate-limited",
        tally.brief(),
        stats.requests_sent,
        stats.rate_limited
    )
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_secs(42)), "42s");
        assert_eq!(human(Duration::from_secs(158)), "2m38s");
        assert_eq!(human(Duration::from_secs(40_000)), "11h06m");
    }
}
