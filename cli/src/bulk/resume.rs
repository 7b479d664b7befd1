//! What earlier runs left, read for `--resume` in memory that stays small: two sorted lists of
//! wallet ids (16 bytes a wallet) instead of maps over the whole history.
//!
//! Every line about a wallet counts ([`NextRun::merge`]): its outcomes, and each journal
//! entry no outcome of the same wallet and input line answered after it (its create may have
//! been sent when the run died). Known ids win: a wallet with any settled outcome is skipped,
//! so the journal is matched only for the few that are not.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::SystemTime;

use dynamic_waas::NextRun;
use serde::Deserialize;

use super::results::journal_path;
use crate::exit::CliError;

/// Per wallet (a UUID as a number), what a resumed run does: skip it, read it first, or (absent
/// from both) create it.
#[derive(Debug, Default)]
pub struct Resume {
    skip: Vec<u128>,
    read_first: Vec<u128>,
    /// When the earlier runs had ended: nothing of theirs can be sent after it. Not their last
    /// write: a job in flight sends its create again after a 429's `Retry-After`, or after a
    /// settled doubt, without writing anything.
    earlier_ended: Option<SystemTime>,
}

impl Resume {
    /// What to do for `wallet`.
    pub fn decide(&self, wallet: u128) -> NextRun {
        if self.skip.binary_search(&wallet).is_ok() {
            NextRun::Skip
        } else if self.read_first.binary_search(&wallet).is_ok() {
            NextRun::ReadFirst
        } else {
            NextRun::Create
        }
    }

    /// When the earlier runs had ended (their creates were all sent before).
    pub fn earlier_ended(&self) -> Option<SystemTime> {
        self.earlier_ended
    }

    /// Wallets settled, and wallets to read first.
    pub fn counts(&self) -> (usize, usize) {
        (self.skip.len(), self.read_first.len())
    }

    #[cfg(test)]
    pub fn for_test(mut skip: Vec<u128>, mut read_first: Vec<u128>) -> Self {
        skip.sort_unstable();
        read_first.sort_unstable();
        Self {
            skip,
            read_first,
            earlier_ended: None,
        }
    }
}

/// Reads the results file at `results` and its journal: under the results file's lock (a
/// resumed run), or for a dry run, which sends nothing.
pub fn load(results: &Path) -> Result<Resume, CliError> {
    let loaded_at = SystemTime::now();
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
    let journal = journal_path(results);
    let mut skip: Vec<u128> = Vec::new();
    let mut read_first: Vec<u128> = Vec::new();
    // Outcomes that do not settle their wallet: (wallet, input line, offset), few in a healthy
    // run; kept to match journal entries against.
    let mut unsettled: Vec<(u128, u64, u64)> = Vec::new();
    each_line(results, |offset, text| {
        // Bad-row lines have no wallet: the row is read again, and reported again.
        match serde_json::from_str::<Outcome>(text) {
            Ok(outcome) => {
                let wallet = outcome.wallet_id.as_u128();
                match outcome.next_run {
                    NextRun::Skip => skip.push(wallet),
                    next => {
                        if next == NextRun::ReadFirst {
                            read_first.push(wallet);
                        }
                        unsettled.push((wallet, outcome.line.unwrap_or(u64::MAX), offset));
                    }
                }
            }
            Err(_) if serde_json::from_str::<serde_json::Value>(text).is_err() => {
                tracing::warn!(
                    "{}: ignoring a line that is not JSON at byte {offset}",
                    results.display()
                );
            }
            Err(_) => {}
        }
    })?;
    sorted(&mut skip);
    unsettled.retain(|(wallet, ..)| skip.binary_search(wallet).is_err());
    // The last outcome of each (wallet, line) last.
    unsettled.sort_unstable();
    each_line(&journal, |_, text| {
        let Ok(started) = serde_json::from_str::<Started>(text) else {
            return;
        };
        let wallet = started.wallet_id.as_u128();
        if skip.binary_search(&wallet).is_ok() {
            return;
        }
        let line = started.line.unwrap_or(u64::MAX);
        // The last outcome of this wallet and line, if any: answered only if written after
        // the entry.
        let end = unsettled.partition_point(|&(w, l, _)| (w, l) <= (wallet, line));
        let answered = end > 0 && {
            let (w, l, offset) = unsettled[end - 1];
            (w, l) == (wallet, line) && offset >= started.results_offset
        };
        if !answered {
            read_first.push(wallet);
        }
    })?;
    drop(unsettled);
    sorted(&mut read_first);
    read_first.retain(|wallet| skip.binary_search(wallet).is_err());
    read_first.shrink_to_fit();
    Ok(Resume {
        skip,
        read_first,
        // Read under the results file's lock, which a run holds until it can send nothing
        // more: every earlier run has ended by now. (The files' last write is no bound: a job
        // sends its create again after a 429's `Retry-After`, or after a settled doubt,
        // without writing a line.)
        earlier_ended: Some(loaded_at),
    })
}

fn sorted(ids: &mut Vec<u128>) {
    ids.sort_unstable();
    ids.dedup();
    ids.shrink_to_fit();
}

/// Calls `each(offset, line)` for every complete line of `path` (absent: none).
pub fn each_line(path: &Path, mut each: impl FnMut(u64, &str)) -> Result<(), CliError> {
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
    let mut reader = BufReader::with_capacity(256 * 1024, file);
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
    use std::path::PathBuf;

    use super::*;
    use serde_json::json;

    const W1: &str = "95b11417-f18f-457f-8804-68e361f9164f";
    const W2: &str = "3c90c3cc-0d44-4b50-8888-8dd25736052a";

    fn wallet(id: &str) -> u128 {
        uuid::Uuid::parse_str(id).unwrap().as_u128()
    }

    fn dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("dynamic-waas-load-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// `load` over a results file and journal with these lines (a journal entry's offset is
    /// the results file's length after its first `n` lines).
    fn load_from(name: &str, results: &[&str], journal: &[(&str, u64, usize)]) -> Resume {
        let dir = dir(name);
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
        assert_eq!(loaded.decide(wallet(W1)), NextRun::Skip);
        assert_eq!(loaded.decide(wallet(W2)), NextRun::ReadFirst);

        // An outcome written before the entry (an earlier run's) does not answer it.
        let failed = outcome(W2, 2, "create");
        let loaded = load_from("earlier", &[&failed], &[(W2, 2, 1)]);
        assert_eq!(loaded.decide(wallet(W2)), NextRun::ReadFirst);

        // Nor does an outcome of another line of the same wallet.
        let other_line = outcome(W2, 7, "create");
        let loaded = load_from("other-line", &[&other_line], &[(W2, 2, 0)]);
        assert_eq!(loaded.decide(wallet(W2)), NextRun::ReadFirst);

        // An outcome of the same line after the entry answers it.
        let loaded = load_from("answered", &[&failed], &[(W2, 2, 0)]);
        assert_eq!(loaded.decide(wallet(W2)), NextRun::Create);
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
        assert_eq!(loaded.decide(wallet(W1)), NextRun::ReadFirst);
        assert_eq!(loaded.decide(wallet(W2)), NextRun::Skip);
        // Wallets to create are not kept: that is what an absent wallet gets.
        let created = outcome(W1, 1, "create");
        assert_eq!(load_from("create", &[&created], &[]).counts(), (0, 0));
    }

    #[test]
    fn lines_cut_off_by_a_crash_and_bad_rows_are_not_outcomes() {
        let created = outcome(W1, 1, "skip");
        let bad = format!("{}\n", json!({"line": 2, "status": "invalid"}));
        let cut = &outcome(W2, 3, "skip")[..20];
        let loaded = load_from("cut", &[&created, &bad, cut], &[]);
        assert_eq!(loaded.counts(), (1, 0));
        assert_eq!(loaded.decide(wallet(W1)), NextRun::Skip);
    }
}
