//! Bulk backups: many wallets through one client, a bounded number in flight, every request
//! paced, and one outcome per job that says what happened and carries the key share ids.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use dynamic_waas_api::ids::{EnvironmentId, ShareSetId, UserId, WalletId};
use futures_util::stream::{FuturesUnordered, Stream, StreamExt};
use futures_util::task::AtomicWaker;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::call::run_create;
use crate::client::Client;
use crate::engine::attempt::Waits;
use crate::engine::create::{count_outcome, Start};
use crate::engine::settle::instant_of;
use crate::engine::wire::CreateRequest;
use crate::error::{Error, ErrorKind};
use crate::model::{BackupStatus, CreatedKeyShare, IdArg, LocationRequest};

/// One wallet of a bulk run: what [`Client::create_many`] creates. Checked when built, so a
/// bad row is refused before anything is sent.
///
/// ```
/// use dynamic_waas::{BackupJob, BackupLocation};
///
/// let job = BackupJob::new(
///     "0b1c2d3e-4f50-4617-8899-aabbccddeeff",
///     "95b11417-f18f-457f-8804-68e361f9164f",
///     "3c90c3cc-0d44-4b50-8888-8dd25736052a",
///     [BackupLocation::GoogleDrive.into()],
/// )?
/// .with_tag(7);
/// assert_eq!(job.wallet_id().as_str(), "95b11417-f18f-457f-8804-68e361f9164f");
/// assert_eq!(job.tag(), Some(7));
///
/// let bad = BackupJob::new("env", "wallet", "user", [BackupLocation::Dynamic.into()]);
/// assert!(bad.unwrap_err().is_invalid_input());
/// # Ok::<(), dynamic_waas::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct BackupJob {
    request: CreateRequest,
    resumed: Option<Resumed>,
    tag: Option<u64>,
}

/// Since when a resumed job's create may have been sent.
#[derive(Clone, Copy, Debug)]
enum Resumed {
    /// Unknown: until the job starts.
    UntilStart,
    /// No later than this.
    Since(SystemTime),
    /// No later than this (a wallet's earlier row of the same run).
    At(Instant),
}

impl BackupJob {
    /// A job for one wallet, checked as [`Client::create_backup_locations`] checks its input.
    pub fn new(
        environment_id: impl IdArg<EnvironmentId>,
        wallet_id: impl IdArg<WalletId>,
        user_id: impl IdArg<UserId>,
        locations: impl IntoIterator<Item = LocationRequest>,
    ) -> Result<Self, Error> {
        Ok(Self {
            request: CreateRequest::new(environment_id, wallet_id, user_id, locations)?,
            resumed: None,
            tag: None,
        })
    }

    /// `shareSetId` for this wallet (see
    /// [`CreateBackupLocations::share_set_id`](crate::CreateBackupLocations::share_set_id)).
    pub fn with_share_set_id(
        mut self,
        share_set_id: impl IdArg<ShareSetId>,
    ) -> Result<Self, Error> {
        self.request.set_share_set_id(share_set_id)?;
        Ok(self)
    }

    /// An earlier run may have sent this wallet's create (it was in flight when that run
    /// died, or its outcome was unknown): the wallet is read first, and the create is sent
    /// only if a read made [`settle_after`](crate::RetryPolicy::settle_after) after the job
    /// starts shows no key shares. When you know when the earlier run last sent anything,
    /// [`resumed_since`](Self::resumed_since) spares that wait.
    pub fn resumed(mut self) -> Self {
        self.resumed = Some(Resumed::UntilStart);
        self
    }

    /// Like [`resumed`](Self::resumed), knowing that the earlier run sent nothing after
    /// `last_sent`: reads start no earlier than `settle_after` after it. Give a moment the
    /// earlier run had ended by (it exited, or let go of a lock it held while running), not
    /// the last write of its results: a job in flight sends its create again after a 429's
    /// `Retry-After`, or after a settled doubt, without writing anything.
    pub fn resumed_since(mut self, last_sent: SystemTime) -> Self {
        self.resumed = Some(Resumed::Since(last_sent));
        self
    }

    /// A number of the caller's (an input line, a row id) that comes back in the job's
    /// outcome: outcomes come as jobs finish, not in input order, and a wallet may be in
    /// the input twice.
    pub fn with_tag(mut self, tag: u64) -> Self {
        self.tag = Some(tag);
        self
    }

    /// Whether the job reads the wallet first (see [`resumed`](Self::resumed)).
    pub fn is_resumed(&self) -> bool {
        self.resumed.is_some()
    }

    /// The job's [`tag`](Self::with_tag), if it has one.
    pub fn tag(&self) -> Option<u64> {
        self.tag
    }

    /// The environment.
    pub fn environment_id(&self) -> &EnvironmentId {
        &self.request.env
    }

    /// The wallet.
    pub fn wallet_id(&self) -> &WalletId {
        &self.request.wallet
    }
}

/// What a later run does for a wallet, after [`BackupOutcome::next_run`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextRun {
    /// Nothing: the wallet is settled.
    Skip,
    /// Read the wallet first ([`BackupJob::resumed`]); create only if it shows nothing.
    ReadFirst,
    /// Create again.
    Create,
}

impl NextRun {
    /// Of two decisions for one wallet (two lines of a results file, say), the one that
    /// keeps every promise: known ids win (nothing more to do), then a read (a create may
    /// have been applied), then a create.
    pub fn merge(self, other: NextRun) -> NextRun {
        use NextRun::*;
        match (self, other) {
            (Skip, _) | (_, Skip) => Skip,
            (ReadFirst, _) | (_, ReadFirst) => ReadFirst,
            (Create, Create) => Create,
        }
    }
}

/// The outcome of one bulk job: serializes as one JSON object, with `status` and, when the
/// wallet has them, its `keyShares`; reads back from it (a program resuming from its own
/// JSON lines needs no types of its own).
///
/// ```
/// use dynamic_waas::{BackupOutcome, BackupStatus, NextRun};
///
/// let line = r#"{"environmentId":"0b1c2d3e-4f50-4617-8899-aabbccddeeff",
///   "walletId":"95b11417-f18f-457f-8804-68e361f9164f","tag":3,"status":"created",
///   "keyShares":[{"location":"googleDrive","keyShareId":"0f0e0d0c-0b0a-4908-8706-050403020100"}],
///   "requestId":"5f0c6d9e-0d1b-4c3e-9a57-2f1f8f0b7a11","attempts":1}"#;
/// let outcome: BackupOutcome = serde_json::from_str(line)?;
/// assert_eq!(outcome.status, BackupStatus::Created);
/// assert_eq!(outcome.next_run(), NextRun::Skip);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct BackupOutcome {
    /// The job's environment.
    pub environment_id: EnvironmentId,
    /// The job's wallet.
    pub wallet_id: WalletId,
    /// The job's [`tag`](BackupJob::with_tag), if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<u64>,
    /// How it ended.
    pub status: BackupStatus,
    /// The wallet's key shares for this backup: what to store.
    #[serde(default)]
    pub key_shares: Vec<CreatedKeyShare>,
    /// `shareSetId`, when the server said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_set_id: Option<String>,
    /// The `x-dyn-request-id` of the last request sent for the job.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Requests sent for the job (attempts, reads).
    #[serde(default)]
    pub attempts: u32,
    /// Why it failed or is unknown, or why an already backed-up wallet could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Error>,
}

impl BackupOutcome {
    /// What a later run should do for this wallet: the one rule a resumed run follows.
    ///
    /// - [`NextRun::Skip`]: settled; the key share ids are known (created, reconciled, a
    ///   duplicate of a settled row, or already backed up and read).
    /// - [`NextRun::ReadFirst`]: the create may have been applied ([`BackupStatus::Unknown`]),
    ///   or the wallet was backed up but could not be read: read the wallet before creating.
    /// - [`NextRun::Create`]: nothing was created ([`BackupStatus::Failed`], whatever the
    ///   reason: a token or environment fixed since, a wallet created since, a rate limit):
    ///   send the create again.
    pub fn next_run(&self) -> NextRun {
        match self.status {
            BackupStatus::Created | BackupStatus::Reconciled | BackupStatus::Duplicate => {
                NextRun::Skip
            }
            BackupStatus::AlreadyBackedUp if !self.key_shares.is_empty() => NextRun::Skip,
            BackupStatus::AlreadyBackedUp | BackupStatus::Unknown => NextRun::ReadFirst,
            BackupStatus::Failed => NextRun::Create,
        }
    }

    fn new(job: &BackupJob, status: BackupStatus) -> Self {
        Self {
            environment_id: job.request.env.clone(),
            wallet_id: job.request.wallet.clone(),
            tag: job.tag,
            status,
            key_shares: Vec::new(),
            share_set_id: None,
            request_id: None,
            attempts: 0,
            error: None,
        }
    }

    /// The outcome of a later row for a wallet an earlier row of the run settled.
    fn duplicate(job: &BackupJob, first: &BackupOutcome) -> Self {
        Self {
            key_shares: first.key_shares.clone(),
            share_set_id: first.share_set_id.clone(),
            ..Self::new(job, BackupStatus::Duplicate)
        }
    }
}

/// One job, start to end.
async fn run_job(client: Client, job: BackupJob) -> BackupOutcome {
    let policy = client.inner.policy.clone();
    let start = Start {
        waits: Waits::Queued,
        resumed: job.resumed.map(|resumed| match resumed {
            Resumed::UntilStart => Instant::now(),
            Resumed::Since(at) => instant_of(at),
            Resumed::At(at) => at,
        }),
        accept_existing: true,
    };
    let span = tracing::debug_span!("dynamic_waas.bulk_job", wallet_id = %job.request.wallet);
    let result =
        tracing::Instrument::instrument(run_create(&client, &job.request, &policy, start), span)
            .await;
    count_outcome(&client, &result);
    match result {
        Ok(created) => BackupOutcome {
            key_shares: created.locations_with_key_shares().to_vec(),
            share_set_id: created.share_set_id().map(str::to_owned),
            request_id: Some(created.request_id().to_owned()),
            attempts: created.attempts(),
            ..BackupOutcome::new(&job, created.status())
        },
        Err(error) => {
            let status = match error.kind() {
                ErrorKind::OutcomeUnknown { .. } => BackupStatus::Unknown,
                // Backed up, but its key shares could not be read: a later run reads them.
                ErrorKind::AlreadyBackedUp => BackupStatus::AlreadyBackedUp,
                _ => BackupStatus::Failed,
            };
            BackupOutcome {
                request_id: error.request_id().map(str::to_owned),
                attempts: error.attempts(),
                error: Some(error),
                ..BackupOutcome::new(&job, status)
            }
        }
    }
}

type Running = Pin<Box<dyn Future<Output = BackupOutcome> + Send>>;

/// A bulk run: a stream of [`BackupOutcome`]s, one per job as each finishes (see
/// [`Client::create_many`]). `Send + 'static`.
#[must_use = "a bulk run does nothing until its stream is polled"]
pub struct BulkRun {
    client: Client,
    jobs: Pin<Box<dyn Stream<Item = BackupJob> + Send>>,
    jobs_done: bool,
    running: FuturesUnordered<Running>,
    in_flight: HashSet<WalletId>,
    /// Later jobs of wallets in flight, waiting for the earlier's outcome.
    held: HashMap<WalletId, VecDeque<BackupJob>>,
    held_count: usize,
    ready: VecDeque<BackupOutcome>,
    concurrency: usize,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    waker: AtomicWaker,
    pulled: AtomicU64,
    finished: AtomicU64,
    in_flight: AtomicU64,
    waiting: AtomicU64,
}

/// Progress of a [`BulkRun`] (see [`BulkHandle::progress`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BulkProgress {
    /// Jobs taken from the input so far.
    pub pulled: u64,
    /// Jobs running now.
    pub in_flight: u64,
    /// Jobs waiting for an earlier job of the same wallet.
    pub waiting: u64,
    /// Outcomes yielded so far.
    pub finished: u64,
    /// Whether [`BulkHandle::stop`] was called.
    pub stopping: bool,
}

/// A handle on a [`BulkRun`], cheap to clone and usable from any task: progress, and a
/// graceful stop.
#[derive(Clone)]
pub struct BulkHandle(Arc<Shared>);

impl BulkHandle {
    /// Stops taking jobs: those in flight finish and yield their outcomes, then the stream
    /// ends. Jobs waiting for an earlier job of the same wallet are dropped without an
    /// outcome (a resumed run takes them up).
    pub fn stop(&self) {
        self.0.stop.store(true, Ordering::SeqCst);
        self.0.waker.wake();
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopping(&self) -> bool {
        self.0.stop.load(Ordering::SeqCst)
    }

    /// Counts so far.
    pub fn progress(&self) -> BulkProgress {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BulkProgress {
            pulled: get(&self.0.pulled),
            in_flight: get(&self.0.in_flight),
            waiting: get(&self.0.waiting),
            finished: get(&self.0.finished),
            stopping: self.is_stopping(),
        }
    }
}

impl BulkRun {
    pub(crate) fn new(
        client: Client,
        jobs: Pin<Box<dyn Stream<Item = BackupJob> + Send>>,
        concurrency: usize,
    ) -> Self {
        Self {
            client,
            jobs,
            jobs_done: false,
            running: FuturesUnordered::new(),
            in_flight: HashSet::new(),
            held: HashMap::new(),
            held_count: 0,
            ready: VecDeque::new(),
            concurrency: concurrency.max(1),
            shared: Arc::default(),
        }
    }

    /// A handle for progress and a graceful stop.
    pub fn handle(&self) -> BulkHandle {
        BulkHandle(Arc::clone(&self.shared))
    }

    fn admit(&mut self, job: BackupJob) {
        self.shared.pulled.fetch_add(1, Ordering::Relaxed);
        if self.in_flight.contains(&job.request.wallet) {
            self.held
                .entry(job.request.wallet.clone())
                .or_default()
                .push_back(job);
            self.held_count += 1;
            self.shared.waiting.fetch_add(1, Ordering::Relaxed);
        } else {
            self.start(job);
        }
    }

    fn start(&mut self, job: BackupJob) {
        self.in_flight.insert(job.request.wallet.clone());
        self.shared.in_flight.fetch_add(1, Ordering::Relaxed);
        self.running
            .push(Box::pin(run_job(self.client.clone(), job)));
    }

    /// A job ended: the next held job of its wallet is reported as a duplicate when this one
    /// settled the wallet, or run (reading first when this one may have created).
    fn finished(&mut self, outcome: &BackupOutcome) {
        self.in_flight.remove(&outcome.wallet_id);
        self.shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        let Some(queue) = self.held.get_mut(&outcome.wallet_id) else {
            return;
        };
        let next = queue.pop_front();
        if queue.is_empty() {
            self.held.remove(&outcome.wallet_id);
        }
        let Some(next) = next else { return };
        self.held_count -= 1;
        self.shared.waiting.fetch_sub(1, Ordering::Relaxed);
        if self.shared.stop.load(Ordering::SeqCst) {
            // Stopping: this one and the rest of the wallet's are dropped.
            if let Some(rest) = self.held.remove(&outcome.wallet_id) {
                self.held_count -= rest.len();
                self.shared
                    .waiting
                    .fetch_sub(rest.len() as u64, Ordering::Relaxed);
            }
            return;
        }
        match outcome.next_run() {
            NextRun::Skip => self
                .ready
                .push_back(BackupOutcome::duplicate(&next, outcome)),
            NextRun::ReadFirst => {
                let next = BackupJob {
                    resumed: Some(Resumed::At(Instant::now())),
                    ..next
                };
                self.start(next);
            }
            NextRun::Create => self.start(next),
        }
    }
}

impl Stream for BulkRun {
    type Item = BackupOutcome;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<BackupOutcome>> {
        let this = &mut *self;
        this.shared.waker.register(cx.waker());
        loop {
            if let Some(outcome) = this.ready.pop_front() {
                this.shared.finished.fetch_add(1, Ordering::Relaxed);
                return Poll::Ready(Some(outcome));
            }
            let stopping = this.shared.stop.load(Ordering::SeqCst);
            // Pulled only as slots free up (held jobs take slots too): memory stays flat.
            while !stopping
                && !this.jobs_done
                && this.running.len() + this.held_count < this.concurrency
            {
                match this.jobs.as_mut().poll_next(cx) {
                    Poll::Ready(Some(job)) => this.admit(job),
                    Poll::Ready(None) => this.jobs_done = true,
                    Poll::Pending => break,
                }
            }
            match this.running.poll_next_unpin(cx) {
                Poll::Ready(Some(outcome)) => {
                    this.finished(&outcome);
                    this.ready.push_front(outcome);
                }
                Poll::Ready(None) if this.jobs_done || stopping => return Poll::Ready(None),
                // Nothing runs: waiting for the next job (the input has our waker).
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}

// A bulk run is spawned and polled from other tasks.
const _: fn() = || {
    fn send_static<T: Send + 'static>() {}
    send_static::<BulkRun>();
    send_static::<BulkHandle>();
};

#[cfg(test)]
mod tests {
    use super::NextRun::{self, *};

    #[test]
    fn merged_decisions_keep_known_ids_then_reads() {
        let all = [Skip, ReadFirst, Create];
        for a in all {
            for b in all {
                let merged = a.merge(b);
                assert_eq!(merged, b.merge(a), "{a:?} {b:?}");
                let expected: NextRun = if a == Skip || b == Skip {
                    Skip
                } else if a == ReadFirst || b == ReadFirst {
                    ReadFirst
                } else {
                    Create
                };
                assert_eq!(merged, expected);
            }
        }
    }
}
