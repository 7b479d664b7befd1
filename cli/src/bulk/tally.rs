//! What a create-many run has done so far: counted once an outcome is on disk, read by the
//! progress display and the summary.

use std::sync::atomic::{AtomicU64, Ordering};

use dynamic_waas::{BackupStatus, NextRun};
use serde_json::{json, Value};

/// Counters, shared by the reader, the writer and the progress display.
#[derive(Debug, Default)]
pub struct Tally {
    created: AtomicU64,
    reconciled: AtomicU64,
    already_backed_up: AtomicU64,
    duplicate: AtomicU64,
    failed: AtomicU64,
    unknown: AtomicU64,
    invalid: AtomicU64,
    skipped: AtomicU64,
    other_shard: AtomicU64,
    /// Outcomes a later run must take up again (anything but settled ids).
    needs_another_run: AtomicU64,
}

fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Tally {
    /// An outcome reached the disk.
    pub fn outcome(&self, status: BackupStatus, next: NextRun) {
        if next != NextRun::Skip {
            add(&self.needs_another_run);
        }
        add(match status {
            BackupStatus::Created => &self.created,
            BackupStatus::Reconciled => &self.reconciled,
            BackupStatus::AlreadyBackedUp => &self.already_backed_up,
            BackupStatus::Duplicate => &self.duplicate,
            BackupStatus::Unknown => &self.unknown,
            // Failed, and any status a later library adds.
            _ => &self.failed,
        });
    }

    /// A bad row was reported.
    pub fn invalid(&self) {
        add(&self.invalid);
    }

    /// A row a resumed run found settled.
    pub fn skipped(&self) {
        add(&self.skipped);
    }

    /// A row of another shard.
    pub fn other_shard(&self) {
        add(&self.other_shard);
    }

    /// Rows dealt with, whatever became of them.
    pub fn rows_done(&self) -> u64 {
        self.outcomes() + get(&self.invalid) + get(&self.skipped) + get(&self.other_shard)
    }

    /// Outcomes on disk.
    pub fn outcomes(&self) -> u64 {
        get(&self.created)
            + get(&self.reconciled)
            + get(&self.already_backed_up)
            + get(&self.duplicate)
            + get(&self.failed)
            + get(&self.unknown)
    }

    /// Whether anything needs attention: a bad row, or a wallet a later run must take up
    /// again (a failure, an unknown outcome, a backed-up wallet that could not be read).
    pub fn all_well(&self) -> bool {
        get(&self.needs_another_run) == 0 && get(&self.invalid) == 0
    }

    /// Each count: its name in the summary, in the progress line (`None`: not shown there),
    /// and its value. The one list both read.
    fn entries(&self) -> [(&'static str, Option<&'static str>, u64); 10] {
        [
            ("created", Some("created"), get(&self.created)),
            ("reconciled", Some("reconciled"), get(&self.reconciled)),
            (
                "alreadyBackedUp",
                Some("already backed up"),
                get(&self.already_backed_up),
            ),
            ("duplicate", Some("duplicate"), get(&self.duplicate)),
            ("failed", Some("failed"), get(&self.failed)),
            ("unknown", Some("unknown"), get(&self.unknown)),
            ("invalid", Some("invalid"), get(&self.invalid)),
            ("skipped", Some("skipped"), get(&self.skipped)),
            ("otherShard", Some("other shard"), get(&self.other_shard)),
            ("needsAnotherRun", None, get(&self.needs_another_run)),
        ]
    }

    /// The counts, as the summary shows them.
    pub fn counts(&self) -> Value {
        let counts: serde_json::Map<String, Value> = self
            .entries()
            .into_iter()
            .map(|(key, _, n)| (key.to_owned(), json!(n)))
            .collect();
        Value::Object(counts)
    }

    /// A short line: `created 10, reconciled 1, failed 2` (zeros left out).
    pub fn brief(&self) -> String {
        let parts: Vec<String> = self
            .entries()
            .into_iter()
            .filter_map(|(_, name, n)| Some(format!("{} {n}", name?)).filter(|_| n > 0))
            .collect();
        if parts.is_empty() {
            "nothing done yet".into()
        } else {
            parts.join(", ")
        }
    }
}
