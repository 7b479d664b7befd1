//! The results file and its journal, written by one thread.
//!
//! - `--results FILE`: one JSON line per outcome, appended with a single `write` each (a
//!   line is never interleaved with another; one a killed process left unfinished is cut away
//!   by the next run), and synced to disk (`fdatasync`) in groups: the writer syncs whenever
//!   it has written lines and no more are waiting, and an outcome is counted (progress,
//!   summary) only once its sync returned. If a write or a sync fails, every line not known
//!   to be on disk goes to stderr, whole, and the run stops taking rows.
//! - `FILE.inflight`, the journal: a line per job (wallet and input line), written and synced
//!   **before** its create may be sent, with the results file's length at that moment.
//! - Both are created private (0600) and never through a symbolic link; the results file is
//!   locked while a run writes it, and is never the input (compared by device and inode).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use dynamic_waas::{BackupOutcome, BackupStatus, NextRun};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::resume::{self, Resume};
use super::tally::Tally;
use crate::exit::CliError;
use crate::files;

/// The journal next to `results`.
pub fn journal_path(results: &Path) -> PathBuf {
    let mut name = results.as_os_str().to_owned();
    name.push(".inflight");
    PathBuf::from(name)
}

enum Message {
    Started {
        wallet: String,
        line: u64,
        written: oneshot::Sender<()>,
    },
    Outcome(BackupOutcome),
    BadRow {
        line: u64,
        message: String,
    },
}

/// Where outcomes go: cheap to clone, usable from any thread or task.
#[derive(Clone)]
pub struct Sink {
    tx: mpsc::Sender<Message>,
}

impl Sink {
    /// Records that the create of `wallet` (input `line`) may be sent from now on; returns
    /// once the journal has it on disk. `false` when the writer has stopped (a write failed):
    /// send nothing more.
    pub async fn started(&self, wallet: &str, line: u64) -> bool {
        let (written, done) = oneshot::channel();
        let message = Message::Started {
            wallet: wallet.to_owned(),
            line,
            written,
        };
        self.tx.send(message).is_ok() && done.await.is_ok()
    }

    /// An outcome to append. If the writer has stopped, the line goes to stderr instead: an
    /// outcome is never dropped.
    pub fn outcome(&self, outcome: BackupOutcome) {
        if let Err(mpsc::SendError(message)) = self.tx.send(Message::Outcome(outcome)) {
            to_stderr(&line_of(&message));
        }
    }

    /// A bad row to record (it was reported on stderr already).
    pub fn bad_row(&self, line: u64, message: String) {
        if let Err(mpsc::SendError(message)) = self.tx.send(Message::BadRow { line, message }) {
            to_stderr(&line_of(&message));
        }
    }
}

/// The results line of a message (none for a journal entry).
fn line_of(message: &Message) -> String {
    match message {
        Message::Outcome(outcome) => outcome_line(outcome),
        Message::BadRow { line, message } => bad_row_line(*line, message),
        Message::Started { .. } => String::new(),
    }
}

/// The last resort for a line the results file could not take: stderr, whole.
fn to_stderr(line: &str) {
    if !line.is_empty() {
        super::progress::eprint_line(&format!("result not written to the results file: {line}"));
    }
}

/// The writer's thread; [`Writer::finish`] waits for every line to be on disk.
pub struct Writer {
    thread: JoinHandle<Result<(), CliError>>,
}

impl Writer {
    /// Waits for the writer to drain; every [`Sink`] must be dropped first.
    pub fn finish(self) -> Result<(), CliError> {
        self.thread
            .join()
            .map_err(|_| CliError::Other("the results writer panicked".into()))?
    }
}

/// Refuses a results file (or journal) that already has outcomes: a second run over it is a
/// resume.
pub fn refuse_existing(results: &Path) -> Result<(), CliError> {
    for path in [results, journal_path(results).as_path()] {
        if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
            return Err(CliError::InvalidInput(format!(
                "{} already has outcomes: pass --resume to continue that run, or choose \
                 another --results file",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Refuses to resume from a file that holds no outcome lines (another tool's file, the
/// input): it would be cut and written to.
fn refuse_foreign(results: &Path) -> Result<(), CliError> {
    let Ok(file) = File::open(results) else {
        return Ok(());
    };
    let mut first = Vec::new();
    BufReader::new(file)
        .take(super::input::MAX_LINE as u64)
        .read_until(b'\n', &mut first)
        .map_err(|e| CliError::Other(format!("cannot read {}: {e}", results.display())))?;
    if first.is_empty() {
        return Ok(());
    }
    let is_outcome = serde_json::from_slice::<Value>(&first)
        .is_ok_and(|v| v.get("status").is_some_and(Value::is_string));
    if !is_outcome {
        return Err(CliError::InvalidInput(format!(
            "{} does not look like a create-many results file (its first line is not an \
             outcome); nothing was changed",
            results.display()
        )));
    }
    Ok(())
}

/// Takes `results` for this run and starts the writer; with `resume`, also returns what the
/// earlier runs left ([`resume::load`]). In this order, so that nothing is changed or read
/// while another run may still write: the paths are checked against the input, the results
/// file is opened without changing it and locked, it is checked to be a results file, the
/// earlier runs are read, and only then are lines a crash left unfinished cut away.
pub fn start(
    results: &Path,
    input: &str,
    resume: bool,
    tally: Arc<Tally>,
) -> Result<(Sink, Writer, Resume), CliError> {
    let journal = journal_path(results);
    for path in [results, journal.as_path()] {
        if files::is_input(input, path) {
            return Err(CliError::InvalidInput(format!(
                "--input and --results name the same file ({}): the results would be \
                 written onto the input",
                path.display()
            )));
        }
    }
    if !resume {
        refuse_existing(results)?;
    }
    let mut results_file = files::open_private(results, "--results")?;
    // One run per results file: a second would interleave lines and offsets.
    match results_file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(CliError::InvalidInput(format!(
                "another create-many is writing {}; wait for it, or choose another --results \
                 file",
                results.display()
            )))
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(CliError::Other(format!(
                "cannot lock {} for this run: {e}",
                results.display()
            )))
        }
    }
    let earlier = if resume {
        refuse_foreign(results)?;
        resume::load(results)?
    } else {
        Resume::default()
    };
    let offset = cut_unfinished_line(&mut results_file, results)?;
    let mut journal_file = files::open_private(&journal, "the journal (--results FILE.inflight)")?;
    cut_unfinished_line(&mut journal_file, &journal)?;
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("results-writer".into())
        .spawn(move || {
            let mut files = Files {
                results: results_file,
                journal: journal_file,
                offset,
            };
            let written = files.write_all(&rx, &tally);
            if written.is_err() {
                // Nothing is lost: what the file could not take goes to stderr, until the
                // last sink is dropped.
                for message in rx.iter() {
                    to_stderr(&line_of(&message));
                }
            }
            written
        })
        .map_err(|e| CliError::Other(format!("cannot start the results writer: {e}")))?;
    Ok((Sink { tx }, Writer { thread }, earlier))
}

/// Cuts away a last line a crash left unfinished (a process killed in the middle of a
/// `write`), so that the file never holds half a line once a run has it; what that line said,
/// the journal still says. Returns the file's length.
fn cut_unfinished_line(file: &mut File, path: &Path) -> Result<u64, CliError> {
    let fail = |e: std::io::Error| CliError::Other(format!("cannot write {}: {e}", path.display()));
    let length = file.metadata().map_err(fail)?.len();
    let whole = whole_lines(file, length).map_err(fail)?;
    if whole < length {
        tracing::warn!(
            "{}: cutting away {} bytes of a line a crash left unfinished",
            path.display(),
            length - whole
        );
        file.set_len(whole).map_err(fail)?;
        file.sync_data().map_err(fail)?;
    }
    Ok(whole)
}

/// The length of `file` up to and including its last newline.
fn whole_lines(file: &mut File, length: u64) -> std::io::Result<u64> {
    let mut end = length;
    let mut chunk = [0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(part)?;
        if let Some(i) = part.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Messages written before a group is synced, at most: a steady stream still syncs.
const GROUP: usize = 1024;

/// A file the writer appends to and syncs (a trait so that a test can make a sync fail).
pub trait Durable: Write {
    fn sync(&mut self) -> std::io::Result<()>;
}

impl Durable for File {
    fn sync(&mut self) -> std::io::Result<()> {
        self.sync_data()
    }
}

struct Files<F: Durable> {
    results: F,
    journal: F,
    /// The results file's length.
    offset: u64,
}

/// Results lines written since the last sync: counted once synced, or sent to stderr if the
/// sync fails.
struct Unsynced {
    lines: Vec<(String, Option<(BackupStatus, NextRun)>)>,
}

impl<F: Durable> Files<F> {
    /// Writes messages as they come, syncing in groups: a journal entry is acknowledged, and
    /// an outcome counted, once its file is synced.
    fn write_all(&mut self, rx: &mpsc::Receiver<Message>, tally: &Tally) -> Result<(), CliError> {
        let fail = |e: std::io::Error| CliError::Other(format!("cannot write the results: {e}"));
        let mut acks: Vec<oneshot::Sender<()>> = Vec::new();
        let mut unsynced = Unsynced { lines: Vec::new() };
        // Whatever fails, every line not known to be on disk goes to stderr first.
        let lost = |unsynced: &mut Unsynced, also: Option<&str>| {
            for (line, _) in unsynced.lines.drain(..) {
                to_stderr(&line);
            }
            if let Some(line) = also {
                to_stderr(line);
            }
        };
        loop {
            let pending = acks.len() + unsynced.lines.len();
            let message = if pending == 0 {
                match rx.recv() {
                    Ok(message) => Some(message),
                    Err(_) => return Ok(()),
                }
            } else if pending < GROUP {
                rx.try_recv().ok()
            } else {
                None
            };
            let Some(message) = message else {
                // Nothing more waiting (or a full group): sync, then acknowledge and count.
                if !acks.is_empty() {
                    if let Err(e) = self.journal.sync() {
                        lost(&mut unsynced, None);
                        return Err(fail(e));
                    }
                    for ack in acks.drain(..) {
                        let _ = ack.send(());
                    }
                }
                if !unsynced.lines.is_empty() {
                    if let Err(e) = self.results.sync() {
                        lost(&mut unsynced, None);
                        return Err(fail(e));
                    }
                    for (_, outcome) in unsynced.lines.drain(..) {
                        match outcome {
                            Some((status, next)) => tally.outcome(status, next),
                            None => tally.invalid(),
                        }
                    }
                }
                continue;
            };
            match message {
                Message::Started {
                    wallet,
                    line,
                    written,
                } => {
                    let entry =
                        json!({"walletId": wallet, "line": line, "resultsOffset": self.offset});
                    if let Err(e) = self.journal.write_all(format!("{entry}\n").as_bytes()) {
                        lost(&mut unsynced, None);
                        return Err(fail(e));
                    }
                    acks.push(written);
                }
                message => {
                    let counted = match &message {
                        Message::Outcome(outcome) => Some((outcome.status, outcome.next_run())),
                        _ => None,
                    };
                    let text = line_of(&message);
                    if let Err(e) = self.results.write_all(format!("{text}\n").as_bytes()) {
                        lost(&mut unsynced, Some(&text));
                        return Err(fail(e));
                    }
                    self.offset += text.len() as u64 + 1;
                    unsynced.lines.push((text, counted));
                }
            }
        }
    }
}

/// An outcome as a results line: the library's outcome, its input line (the job's tag), and
/// what a resumed run does for the wallet.
pub fn outcome_line(outcome: &BackupOutcome) -> String {
    let mut value = serde_json::to_value(outcome).unwrap_or_else(|e| {
        json!({"walletId": outcome.wallet_id, "status": outcome.status, "error": e.to_string()})
    });
    if let Value::Object(map) = &mut value {
        map.remove("tag");
        map.insert("line".into(), json!(outcome.tag));
        map.insert("nextRun".into(), json!(outcome.next_run()));
    }
    value.to_string()
}

fn bad_row_line(line: u64, message: &str) -> String {
    json!({
        "line": line,
        "status": "invalid",
        "error": {"kind": "invalid_input", "message": message},
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const W1: &str = "95b11417-f18f-457f-8804-68e361f9164f";

    fn outcome(w: &str, line: u64, next: &str) -> String {
        format!(
            "{}\n",
            json!({"walletId": w, "line": line, "status": "x", "nextRun": next})
        )
    }

    #[test]
    fn opening_cuts_away_a_line_a_crash_left_unfinished() {
        let dir = std::env::temp_dir().join(format!("dynamic-waas-torn-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.jsonl");
        let whole = outcome(W1, 1, "skip");
        std::fs::write(&path, format!("{whole}{}", &outcome(W1, 2, "skip")[..30])).unwrap();
        let mut file = files::open_private(&path, "--results").unwrap();
        let length = cut_unfinished_line(&mut file, &path).unwrap();
        assert_eq!(length, whole.len() as u64);
        file.write_all(outcome(W1, 2, "skip").as_bytes()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        // No newline at all: nothing whole.
        std::fs::write(&path, "{\"walletId\"").unwrap();
        let mut file = files::open_private(&path, "--results").unwrap();
        assert_eq!(cut_unfinished_line(&mut file, &path).unwrap(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A file whose sync fails after `syncs` good ones.
    struct Failing {
        written: Vec<u8>,
        syncs: usize,
    }

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Durable for Failing {
        fn sync(&mut self) -> std::io::Result<()> {
            if self.syncs == 0 {
                return Err(std::io::Error::other("the disk is gone"));
            }
            self.syncs -= 1;
            Ok(())
        }
    }

    #[test]
    fn lines_whose_sync_failed_are_not_counted() {
        let mut files = Files {
            results: Failing {
                written: Vec::new(),
                syncs: 0,
            },
            journal: Failing {
                written: Vec::new(),
                syncs: 10,
            },
            offset: 0,
        };
        let (tx, rx) = mpsc::channel();
        for line in 1..=3 {
            tx.send(Message::BadRow {
                line,
                message: "bad".into(),
            })
            .unwrap();
        }
        drop(tx);
        let tally = Tally::default();
        let err = files.write_all(&rx, &tally).unwrap_err();
        assert!(err.to_string().contains("the disk is gone"), "{err}");
        // Written, never known to be on disk: not counted (they went to stderr).
        assert_eq!(tally.rows_done(), 0);
        assert_eq!(
            files
                .results
                .written
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
            3
        );
    }
}
