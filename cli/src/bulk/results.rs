//! The results file and its journal, written by one thread.
//!
//! - `--results FILE`: one JSON line per outcome, appended with a single `write` each (a
//!   line is never interleaved with another), and synced to disk (`fdatasync`) in groups: the
//!   writer syncs whenever it has written lines and no more are waiting, and an outcome is
//!   counted (progress, summary) only once its sync returned. A crash of the machine loses
//!   at most the outcomes not yet counted; a killed process loses nothing it wrote.
//! - `FILE.inflight`, the journal: a line per wallet, written **before** its create may be
//!   sent, with the results file's length at that moment. A resumed run reads the wallet of
//!   every journal entry that has no outcome after that offset, instead of creating again.
//!   It is written, not synced: it survives a killed process; after a machine crash, a lost
//!   entry costs a create the server refuses as a duplicate, whose ids are then read from
//!   the wallet (`already_backed_up`). It is removed when a run reads its whole input.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use dynamic_waas::{BackupOutcome, BackupStatus, NextRun};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::tally::Tally;
use crate::exit::CliError;

/// The journal next to `results`.
pub fn journal_path(results: &Path) -> PathBuf {
    let mut name = results.as_os_str().to_owned();
    name.push(".inflight");
    PathBuf::from(name)
}

enum Message {
    Started {
        wallet: String,
        written: oneshot::Sender<()>,
    },
    Outcome {
        line: u64,
        outcome: BackupOutcome,
    },
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
    /// Records that `wallet`'s create may be sent from now on; returns once the journal has
    /// it. `false` when the writer has stopped (a write failed): send nothing more.
    pub async fn started(&self, wallet: &str) -> bool {
        let (written, done) = oneshot::channel();
        let message = Message::Started {
            wallet: wallet.to_owned(),
            written,
        };
        self.tx.send(message).is_ok() && done.await.is_ok()
    }

    /// An outcome to append. If the writer has stopped, the line goes to stderr instead: an
    /// outcome is never dropped.
    pub fn outcome(&self, line: u64, outcome: BackupOutcome) {
        if let Err(mpsc::SendError(Message::Outcome { line, outcome })) =
            self.tx.send(Message::Outcome { line, outcome })
        {
            eprintln!("{}", outcome_line(line, &outcome));
        }
    }

    /// A bad row to report.
    pub fn bad_row(&self, line: u64, message: &str) {
        let message = message.to_owned();
        if let Err(mpsc::SendError(Message::BadRow { line, message })) =
            self.tx.send(Message::BadRow { line, message })
        {
            eprintln!("{}", bad_row_line(line, &message));
        }
    }
}

/// The writer's thread; [`Writer::finish`] waits for every line to be on disk.
pub struct Writer {
    thread: JoinHandle<Result<(), CliError>>,
    journal: PathBuf,
}

impl Writer {
    /// Waits for the writer to drain (every [`Sink`] must be dropped first). With
    /// `complete`, the journal is removed: every create it recorded has its outcome.
    pub fn finish(self, complete: bool) -> Result<(), CliError> {
        self.thread
            .join()
            .map_err(|_| CliError::Other("the results writer panicked".into()))??;
        if complete {
            if let Err(e) = std::fs::remove_file(&self.journal) {
                tracing::warn!("could not remove {}: {e}", self.journal.display());
            }
        }
        Ok(())
    }
}

/// Opens `results` (and its journal) for appending and starts the writer. Without
/// `resume`, both must be absent or empty: a second run over the same results is a resume.
pub fn start(results: &Path, resume: bool, tally: Arc<Tally>) -> Result<(Sink, Writer), CliError> {
    let journal = journal_path(results);
    if !resume {
        for path in [results, journal.as_path()] {
            if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
                return Err(CliError::InvalidInput(format!(
                    "{} already has outcomes: pass --resume to continue that run, or choose \
                     another --results file",
                    path.display()
                )));
            }
        }
    }
    let (mut results_file, offset) = open_append(results)?;
    let (mut journal_file, _) = open_append(&journal)?;
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("results-writer".into())
        .spawn(move || write_all(rx, &mut results_file, &mut journal_file, offset, &tally))
        .map_err(|e| CliError::Other(format!("cannot start the results writer: {e}")))?;
    Ok((Sink { tx }, Writer { thread, journal }))
}

/// Opens for appending; a last line cut off by a crash is ended, so that the next line
/// starts on a line of its own. Returns the file and its length.
fn open_append(path: &Path) -> Result<(File, u64), CliError> {
    let fail = |e: std::io::Error| CliError::Other(format!("cannot write {}: {e}", path.display()));
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(fail)?;
    let mut length = file.metadata().map_err(fail)?.len();
    if length > 0 {
        let mut last = [0u8];
        file.seek(SeekFrom::End(-1)).map_err(fail)?;
        file.read_exact(&mut last).map_err(fail)?;
        if last[0] != b'\n' {
            file.write_all(b"\n").map_err(fail)?;
            length += 1;
        }
    }
    Ok((file, length))
}

fn write_all(
    rx: mpsc::Receiver<Message>,
    results: &mut File,
    journal: &mut File,
    mut offset: u64,
    tally: &Tally,
) -> Result<(), CliError> {
    let fail = |e: std::io::Error| CliError::Other(format!("cannot write the results: {e}"));
    // Counted once synced.
    let mut unsynced: Vec<Option<BackupStatus>> = Vec::new();
    loop {
        let message = if unsynced.is_empty() {
            match rx.recv() {
                Ok(message) => message,
                Err(_) => return Ok(()),
            }
        } else {
            match rx.try_recv() {
                Ok(message) => message,
                Err(waiting) => {
                    results.sync_data().map_err(fail)?;
                    for status in unsynced.drain(..) {
                        match status {
                            Some(status) => tally.outcome(status),
                            None => tally.invalid(),
                        }
                    }
                    if waiting == mpsc::TryRecvError::Disconnected {
                        return Ok(());
                    }
                    continue;
                }
            }
        };
        match message {
            Message::Started { wallet, written } => {
                let line = format!("{}\n", json!({"walletId": wallet, "resultsOffset": offset}));
                journal.write_all(line.as_bytes()).map_err(fail)?;
                let _ = written.send(());
            }
            Message::Outcome { line, outcome } => {
                let text = format!("{}\n", outcome_line(line, &outcome));
                results.write_all(text.as_bytes()).map_err(fail)?;
                offset += text.len() as u64;
                unsynced.push(Some(outcome.status));
            }
            Message::BadRow { line, message } => {
                let text = format!("{}\n", bad_row_line(line, &message));
                results.write_all(text.as_bytes()).map_err(fail)?;
                offset += text.len() as u64;
                unsynced.push(None);
            }
        }
    }
}

/// An outcome as a results line: the library's outcome, its input line, and what a resumed
/// run does for the wallet.
pub fn outcome_line(line: u64, outcome: &BackupOutcome) -> String {
    let mut value =
        serde_json::to_value(outcome).unwrap_or_else(|e| json!({"error": e.to_string()}));
    if let Value::Object(map) = &mut value {
        map.insert("line".into(), json!(line));
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

/// What an earlier run left: per wallet, what this run does ([`NextRun`]); wallets absent
/// are created.
pub fn load(results: &Path) -> Result<HashMap<u128, NextRun>, CliError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Outcome {
        wallet_id: uuid::Uuid,
        next_run: NextRun,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Started {
        wallet_id: uuid::Uuid,
        results_offset: u64,
    }
    // Per wallet: what its last outcome says, and where that line starts.
    let mut last: HashMap<u128, (NextRun, u64)> = HashMap::new();
    each_line(results, |offset, text| {
        // Bad-row lines have no wallet: the row is read again, and reported again.
        if let Ok(outcome) = serde_json::from_str::<Outcome>(text) {
            last.insert(outcome.wallet_id.as_u128(), (outcome.next_run, offset));
        } else if serde_json::from_str::<Value>(text).is_err() {
            tracing::warn!(
                "{}: ignoring a line that is not JSON at byte {offset}",
                results.display()
            );
        }
    })?;
    each_line(&journal_path(results), |_, text| {
        let Ok(started) = serde_json::from_str::<Started>(text) else {
            return;
        };
        let wallet = started.wallet_id.as_u128();
        let answered = last
            .get(&wallet)
            .is_some_and(|(_, at)| *at >= started.results_offset);
        if !answered {
            // Sent, perhaps, and no outcome since: the wallet settles it.
            last.insert(wallet, (NextRun::ReadFirst, started.results_offset));
        }
    })?;
    Ok(last.into_iter().map(|(w, (next, _))| (w, next)).collect())
}

/// Calls `each(offset, line)` for every complete line of `path` (absent: none).
fn each_line(path: &Path, mut each: impl FnMut(u64, &str)) -> Result<(), CliError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(CliError::Other(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    let mut reader = BufReader::new(file);
    let mut bytes = Vec::new();
    let mut offset = 0u64;
    loop {
        bytes.clear();
        let n = reader
            .read_until(b'\n', &mut bytes)
            .map_err(|e| CliError::Other(format!("cannot read {}: {e}", path.display())))?;
        if n == 0 {
            return Ok(());
        }
        // A last line without its newline was cut off by a crash: not an outcome.
        if bytes.last() == Some(&b'\n') {
            each(offset, String::from_utf8_lossy(&bytes).trim());
        }
        offset += n as u64;
    }
}
