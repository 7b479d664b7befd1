//! The results file and its journal, written by one thread.
//!
//! - `--results FILE`: one JSON line per outcome, appended with a single `write` each (a
//!   line is never interleaved with another; one a killed process left unfinished is cut away
//!   by the next run), and synced to disk (`fdatasync`) in groups: the
//!   writer syncs whenever it has written lines and no more are waiting, and an outcome is
//!   counted (progress, summary) only once its sync returned. A crash of the machine loses
//!   at most the outcomes not yet counted; a killed process loses nothing it wrote.
//! - `FILE.inflight`, the journal: a line per job (wallet and input line), written and synced
//!   **before** its create may be sent, with the results file's length at that moment
//!   (entries are synced in groups too). A resumed run reads the wallet of every journal
//!   entry that no outcome of the same wallet and line answered after that offset, instead of
//!   creating again. It is kept: it is what a later resume needs, whatever input it is given.
//! - The results file is locked while a run writes it (a second run on it is refused), and
//!   a file just created is made durable in its directory.

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
            to_stderr(message);
        }
    }

    /// A bad row to report.
    pub fn bad_row(&self, line: u64, message: String) {
        if let Err(mpsc::SendError(message)) = self.tx.send(Message::BadRow { line, message }) {
            to_stderr(message);
        }
    }
}

/// The last resort for a line the results file could not take: stderr, whole.
fn to_stderr(message: Message) {
    let line = match message {
        Message::Outcome(outcome) => outcome_line(&outcome),
        Message::BadRow { line, message } => bad_row_line(line, &message),
        Message::Started { .. } => return,
    };
    super::progress::eprint_line(&format!("result not written to the results file: {line}"));
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

/// Takes `results` for this run and starts the writer; with `resume`, also returns what the
/// earlier runs left ([`load`]). In this order, so that nothing is changed or read while
/// another run may still write: the paths are checked against the input, the results file
/// is opened without changing it and locked, the earlier runs are read, and only then are
/// lines a crash left unfinished cut away.
pub fn start(
    results: &Path,
    input: &str,
    resume: bool,
    tally: Arc<Tally>,
) -> Result<(Sink, Writer, HashMap<u128, NextRun>), CliError> {
    let journal = journal_path(results);
    if let Ok(input) = std::fs::canonicalize(input) {
        for path in [results, journal.as_path()] {
            if std::fs::canonicalize(path).is_ok_and(|p| p == input) {
                return Err(CliError::InvalidInput(format!(
                    "--input and --results name the same file, {}",
                    path.display()
                )));
            }
        }
    }
    if !resume {
        refuse_existing(results)?;
    }
    let mut results_file = open_for_append(results)?;
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
        load(results)?
    } else {
        HashMap::new()
    };
    let offset = cut_unfinished_line(&mut results_file, results)?;
    let mut journal_file = open_for_append(&journal)?;
    cut_unfinished_line(&mut journal_file, &journal)?;
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("results-writer".into())
        .spawn(move || {
            let mut files = Files {
                results: &mut results_file,
                journal: &mut journal_file,
                offset,
            };
            let written = files.write_all(&rx, &tally);
            if written.is_err() {
                // Nothing is lost: what the file could not take goes to stderr, until the
                // last sink is dropped.
                for message in rx.iter() {
                    to_stderr(message);
                }
            }
            written
        })
        .map_err(|e| CliError::Other(format!("cannot start the results writer: {e}")))?;
    Ok((Sink { tx }, Writer { thread }, earlier))
}

/// Opens for appending, as it is; a file just created is made durable in its directory.
fn open_for_append(path: &Path) -> Result<File, CliError> {
    let existed = path.exists();
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(|e| CliError::Other(format!("cannot write {}: {e}", path.display())))?;
    if !existed {
        sync_directory_of(path);
    }
    Ok(file)
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

/// Syncs the directory holding `path`, so that a new file survives a power loss. Where a
/// directory cannot be opened (not every platform allows it), the file's own syncs are all.
fn sync_directory_of(path: &Path) {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
}

/// Messages written before a group is synced, at most: a steady stream still syncs.
const GROUP: usize = 1024;

struct Files<'f> {
    results: &'f mut File,
    journal: &'f mut File,
    /// The results file's length.
    offset: u64,
}

impl Files<'_> {
    /// Writes messages as they come, syncing in groups: a journal entry is acknowledged, and
    /// an outcome counted, once its file is synced.
    fn write_all(&mut self, rx: &mpsc::Receiver<Message>, tally: &Tally) -> Result<(), CliError> {
        let fail = |e: std::io::Error| CliError::Other(format!("cannot write the results: {e}"));
        let mut acks: Vec<oneshot::Sender<()>> = Vec::new();
        let mut counted: Vec<Option<(BackupStatus, NextRun)>> = Vec::new();
        loop {
            let pending = acks.len() + counted.len();
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
                    self.journal.sync_data().map_err(fail)?;
                    for ack in acks.drain(..) {
                        let _ = ack.send(());
                    }
                }
                if !counted.is_empty() {
                    self.results.sync_data().map_err(fail)?;
                    for outcome in counted.drain(..) {
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
                    self.journal
                        .write_all(format!("{entry}\n").as_bytes())
                        .map_err(fail)?;
                    acks.push(written);
                }
                Message::Outcome(outcome) => {
                    let text = format!("{}\n", outcome_line(&outcome));
                    if let Err(e) = self.results.write_all(text.as_bytes()) {
                        to_stderr(Message::Outcome(outcome));
                        return Err(fail(e));
                    }
                    self.offset += text.len() as u64;
                    counted.push(Some((outcome.status, outcome.next_run())));
                }
                Message::BadRow { line, message } => {
                    let text = format!("{}\n", bad_row_line(line, &message));
                    if let Err(e) = self.results.write_all(text.as_bytes()) {
                        to_stderr(Message::BadRow { line, message });
                        return Err(fail(e));
                    }
                    self.offset += text.len() as u64;
                    counted.push(None);
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

/// What earlier runs left, per wallet: what this run does ([`NextRun`]). Wallets absent are
/// created. Every line about a wallet counts ([`NextRun::merge`]): its outcomes, and each
/// journal entry no outcome of the same input line answered after it (the create may have
/// been sent when the run died).
pub fn load(results: &Path) -> Result<HashMap<u128, NextRun>, CliError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Outcome {
        wallet_id: uuid::Uuid,
        next_run: NextRun,
        line: Option<u64>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Started {
        wallet_id: uuid::Uuid,
        line: Option<u64>,
        results_offset: u64,
    }
    let mut decided: HashMap<u128, NextRun> = HashMap::new();
    // Where the last outcome of each (wallet, input line) starts.
    let mut answered: HashMap<(u128, Option<u64>), u64> = HashMap::new();
    each_line(results, |offset, text| {
        // Bad-row lines have no wallet: the row is read again, and reported again.
        if let Ok(outcome) = serde_json::from_str::<Outcome>(text) {
            let wallet = outcome.wallet_id.as_u128();
            merge(&mut decided, wallet, outcome.next_run);
            answered.insert((wallet, outcome.line), offset);
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
        let key = (wallet, started.line);
        if answered
            .get(&key)
            .is_none_or(|at| *at < started.results_offset)
        {
            merge(&mut decided, wallet, NextRun::ReadFirst);
        }
    })?;
    // A create is what a wallet without a decision gets anyway.
    decided.retain(|_, next| *next != NextRun::Create);
    Ok(decided)
}

fn merge(decided: &mut HashMap<u128, NextRun>, wallet: u128, next: NextRun) {
    let merged = decided
        .get(&wallet)
        .map_or(next, |before| before.merge(next));
    decided.insert(wallet, merged);
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

#[cfg(test)]
mod tests {
    use super::*;

    const W1: &str = "95b11417-f18f-457f-8804-68e361f9164f";
    const W2: &str = "3c90c3cc-0d44-4b50-8888-8dd25736052a";

    fn wallet(id: &str) -> u128 {
        uuid::Uuid::parse_str(id).unwrap().as_u128()
    }

    /// `load` over a results file and journal with these lines (`{offset}` in a journal line
    /// is replaced by the results file's length after its first `n` lines).
    fn load_from(
        name: &str,
        results: &[&str],
        journal: &[(&str, u64, usize)],
    ) -> HashMap<u128, NextRun> {
        let dir =
            std::env::temp_dir().join(format!("dynamic-waas-load-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.jsonl");
        let mut text = String::new();
        let mut offsets = vec![0u64];
        for line in results {
            text.push_str(line);
            offsets.push(text.len() as u64);
        }
        std::fs::write(&path, &text).unwrap();
        let journal: String = journal
            .iter()
            .map(|(w, line, after)| {
                format!(
                    "{}\n",
                    json!({"walletId": w, "line": line, "resultsOffset": offsets[*after]})
                )
            })
            .collect();
        std::fs::write(journal_path(&path), journal).unwrap();
        let loaded = load(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        loaded
    }

    fn outcome(w: &str, line: u64, next: &str) -> String {
        format!(
            "{}\n",
            json!({"walletId": w, "line": line, "status": "x", "nextRun": next})
        )
    }

    #[test]
    fn a_journal_entry_without_a_later_outcome_of_its_line_reads_first() {
        let created = outcome(W1, 1, "skip");
        // W1 answered after its entry; W2 started and never answered.
        let loaded = load_from("inflight", &[&created], &[(W1, 1, 0), (W2, 2, 1)]);
        assert_eq!(loaded.get(&wallet(W1)), Some(&NextRun::Skip));
        assert_eq!(loaded.get(&wallet(W2)), Some(&NextRun::ReadFirst));

        // An outcome written before the entry (an earlier run's) does not answer it.
        let failed = outcome(W2, 2, "create");
        let loaded = load_from("earlier", &[&failed], &[(W2, 2, 1)]);
        assert_eq!(loaded.get(&wallet(W2)), Some(&NextRun::ReadFirst));

        // Nor does an outcome of another line of the same wallet.
        let other_line = outcome(W2, 7, "create");
        let loaded = load_from("other-line", &[&other_line], &[(W2, 2, 0)]);
        assert_eq!(loaded.get(&wallet(W2)), Some(&NextRun::ReadFirst));
    }

    #[test]
    fn every_line_of_a_wallet_counts_known_ids_first() {
        let lines = [
            outcome(W1, 1, "read_first"),
            outcome(W1, 3, "create"),
            outcome(W2, 2, "skip"),
            outcome(W2, 4, "read_first"),
        ];
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let loaded = load_from("merge", &refs, &[]);
        assert_eq!(loaded.get(&wallet(W1)), Some(&NextRun::ReadFirst));
        assert_eq!(loaded.get(&wallet(W2)), Some(&NextRun::Skip));
        // Wallets to create are not kept: that is what an absent wallet gets.
        let created = outcome(W1, 1, "create");
        assert!(load_from("create", &[&created], &[]).is_empty());
    }

    #[test]
    fn opening_cuts_away_a_line_a_crash_left_unfinished() {
        let dir = std::env::temp_dir().join(format!("dynamic-waas-torn-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.jsonl");
        let whole = outcome(W1, 1, "skip");
        std::fs::write(&path, format!("{whole}{}", &outcome(W2, 2, "skip")[..30])).unwrap();
        let mut file = open_for_append(&path).unwrap();
        let length = cut_unfinished_line(&mut file, &path).unwrap();
        assert_eq!(length, whole.len() as u64);
        file.write_all(outcome(W2, 2, "skip").as_bytes()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(
            text.lines()
                .all(|l| serde_json::from_str::<Value>(l).is_ok()),
            "{text}"
        );
        // No newline at all: nothing whole.
        std::fs::write(&path, "{\"walletId\"").unwrap();
        let mut file = open_for_append(&path).unwrap();
        assert_eq!(cut_unfinished_line(&mut file, &path).unwrap(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn lines_cut_off_by_a_crash_and_bad_rows_are_not_outcomes() {
        let created = outcome(W1, 1, "skip");
        let bad = format!("{}\n", json!({"line": 2, "status": "invalid"}));
        let cut = &outcome(W2, 3, "skip")[..20];
        let loaded = load_from("cut", &[&created, &bad, cut], &[]);
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded.get(&wallet(W1)), Some(&NextRun::Skip));
    }
}
