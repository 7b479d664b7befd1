//! Bulk backups: many wallets through one client, a bounded number in flight, every request
//! paced, and one outcome per wallet that says what happened and carries the key share ids.

use dynamic_waas_api::ids::{EnvironmentId, WalletId};
use futures_util::stream::{Stream, StreamExt};
use serde::Serialize;

use crate::client::Client;
use crate::create::{CreateRequest, Start};
use crate::error::{Error, ErrorKind};
use crate::model::{CreatedBackup, CreatedKeyShare, IdArg, LocationRequest};
use crate::reconcile::{held_shares, match_request, Match};

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
/// )?;
/// assert_eq!(job.wallet_id().as_str(), "95b11417-f18f-457f-8804-68e361f9164f");
///
/// let bad = BackupJob::new("env", "wallet", "user", [BackupLocation::Dynamic.into()]);
/// assert!(bad.unwrap_err().is_invalid_input());
/// # Ok::<(), dynamic_waas::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct BackupJob {
    request: CreateRequest,
    resumed: bool,
    tag: Option<u64>,
}

impl BackupJob {
    /// A job for one wallet, checked as [`Client::create_backup_locations`] checks its input.
    pub fn new(
        environment_id: impl IdArg,
        wallet_id: impl IdArg,
        user_id: impl IdArg,
        locations: impl IntoIterator<Item = LocationRequest>,
    ) -> Result<Self, Error> {
        Ok(Self {
            request: CreateRequest::new(environment_id, wallet_id, user_id, locations)?,
            resumed: false,
            tag: None,
        })
    }

    /// `shareSetId` for this wallet (see
    /// [`CreateBackupLocations::share_set_id`](crate::CreateBackupLocations::share_set_id)).
    pub fn share_set_id(mut self, share_set_id: impl IdArg) -> Result<Self, Error> {
        self.request.set_share_set_id(share_set_id)?;
        Ok(self)
    }

    /// An earlier run may have sent this wallet's create (it was in flight when that run
    /// died, or its outcome was unknown): the wallet is read first, and the create is sent
    /// only if the wallet shows no key shares (the server refuses a duplicate).
    pub fn resumed(mut self) -> Self {
        self.resumed = true;
        self
    }

    /// A number of the caller's (an input line, a row id) that comes back in the job's
    /// outcome: outcomes come as jobs finish, not in input order, and a wallet may be in
    /// the input twice.
    pub fn tag(mut self, tag: u64) -> Self {
        self.tag = Some(tag);
        self
    }

    /// Whether the job reads the wallet first (see [`resumed`](Self::resumed)).
    pub fn is_resumed(&self) -> bool {
        self.resumed
    }

    /// The job's [`tag`](Self::tag), if it has one.
    pub fn get_tag(&self) -> Option<u64> {
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

/// How a bulk job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BackupStatus {
    /// The create answered 201 with the key shares.
    Created,
    /// The create's answer was lost after it was applied; the key shares were read from the
    /// wallet.
    Reconciled,
    /// The wallet was backed up before (by an earlier run, say): the key shares are the ones
    /// it holds, read from it. Empty when that read failed (see the outcome's error).
    AlreadyBackedUp,
    /// Nothing was created (see the outcome's error).
    Failed,
    /// The create may or may not have been applied and the wallet could not tell: read it
    /// later (a resumed run does) before creating again.
    Unknown,
}

/// What a later run does for a wallet, after [`BackupOutcome::next_run`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
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

impl BackupStatus {
    /// A stable snake_case name, as serialized.
    pub fn name(&self) -> &'static str {
        match self {
            BackupStatus::Created => "created",
            BackupStatus::Reconciled => "reconciled",
            BackupStatus::AlreadyBackedUp => "already_backed_up",
            BackupStatus::Failed => "failed",
            BackupStatus::Unknown => "unknown",
        }
    }
}

/// The outcome of one bulk job: serializes as one JSON object, with `status` and, when the
/// wallet has them, its `keyShares`.
///
/// ```json
/// {"environmentId":"…","walletId":"…","status":"created",
///  "keyShares":[{"location":"googleDrive","keyShareId":"…"}],
///  "requestId":"…","attempts":1}
/// ```
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct BackupOutcome {
    /// The job's environment.
    pub environment_id: EnvironmentId,
    /// The job's wallet.
    pub wallet_id: WalletId,
    /// The job's [`tag`](BackupJob::tag), if it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<u64>,
    /// How it ended.
    pub status: BackupStatus,
    /// The wallet's key shares for this backup: what to store.
    pub key_shares: Vec<CreatedKeyShare>,
    /// `shareSetId`, when the server said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_set_id: Option<String>,
    /// The `x-dyn-request-id` of the last request sent for the job.
    pub request_id: Option<String>,
    /// Requests sent for the job (attempts, reads).
    pub attempts: u32,
    /// Why it failed, is unknown, or why an already backed-up wallet could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Error>,
}

impl BackupOutcome {
    /// What a later run should do for this wallet: the one rule a resumed run follows.
    ///
    /// - [`NextRun::Skip`]: settled; the key share ids are known (created, reconciled, or
    ///   already backed up and read).
    /// - [`NextRun::ReadFirst`]: the create may have been applied ([`BackupStatus::Unknown`]),
    ///   or the wallet was backed up but could not be read: read the wallet before creating.
    /// - [`NextRun::Create`]: nothing was created ([`BackupStatus::Failed`], whatever the
    ///   reason: a token or environment fixed since, a wallet created since, a rate limit)
    ///   : send the create again.
    pub fn next_run(&self) -> NextRun {
        match self.status {
            BackupStatus::Created | BackupStatus::Reconciled => NextRun::Skip,
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

    fn from_error(job: &BackupJob, status: BackupStatus, error: Error) -> Self {
        Self {
            request_id: error.request_id().map(str::to_owned),
            attempts: error.attempts(),
            error: Some(error),
            ..Self::new(job, status)
        }
    }
}

impl Client {
    /// Backs up many wallets: at most `concurrency` jobs in flight, every request paced by the
    /// client's [`Pacing`](crate::Pacing), one [`BackupOutcome`] per job as each finishes (not
    /// in input order). Jobs are pulled from `jobs` only as slots free up, so memory stays flat
    /// however long the input is; stop pulling (end the stream) to drain.
    ///
    /// Each job follows [`create_backup_locations`](Self::create_backup_locations)'s rules;
    /// in addition, a wallet that was already backed up is read, and its key shares are in
    /// the outcome ([`BackupStatus::AlreadyBackedUp`]), so a rerun recovers the ids. A job's
    /// waits for the pacer (its place in the queue, a 429's pause, which stands for any
    /// `Retry-After`) do not count against its deadline ([`RetryPolicy::total_timeout`]), so
    /// a long queue or pause neither times jobs out nor leaves lost creates unsettled.
    ///
    /// [`RetryPolicy::total_timeout`]: crate::RetryPolicy::total_timeout
    ///
    /// ```no_run
    /// use dynamic_waas::{BackupJob, BackupLocation, Client};
    /// use futures_util::StreamExt;
    ///
    /// # async fn demo(client: Client, rows: Vec<(String, String, String)>) -> Result<(), dynamic_waas::Error> {
    /// let env = "0b1c2d3e-4f50-4617-8899-aabbccddeeff";
    /// let mut jobs = Vec::new();
    /// for (wallet, user, _) in &rows {
    ///     jobs.push(BackupJob::new(env, wallet.as_str(), user.as_str(), [BackupLocation::GoogleDrive.into()])?);
    /// }
    /// let mut outcomes = client.create_many(futures_util::stream::iter(jobs), 16);
    /// while let Some(outcome) = outcomes.next().await {
    ///     println!("{}", serde_json::to_string(&outcome).expect("serializable"));
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn create_many<'c, J>(
        &'c self,
        jobs: J,
        concurrency: usize,
    ) -> impl Stream<Item = BackupOutcome> + Send + 'c
    where
        J: Stream<Item = BackupJob> + Send + 'c,
    {
        jobs.map(move |job| self.run_job(job))
            .buffer_unordered(concurrency.max(1))
    }

    async fn run_job(&self, job: BackupJob) -> BackupOutcome {
        let policy = &self.inner.policy;
        let start = Start {
            queued: true,
            resumed: job.resumed,
        };
        let span = tracing::debug_span!("dynamic_waas.bulk_job", wallet_id = %job.request.wallet);
        let result =
            tracing::Instrument::instrument(self.create(&job.request, policy, start), span).await;
        match result {
            Ok(created) => created_outcome(&job, created),
            Err(error) => match error.kind() {
                ErrorKind::AlreadyBackedUp => self.already_backed_up(&job, error).await,
                ErrorKind::OutcomeUnknown { .. } => {
                    BackupOutcome::from_error(&job, BackupStatus::Unknown, error)
                }
                _ => BackupOutcome::from_error(&job, BackupStatus::Failed, error),
            },
        }
    }

    /// The server says the wallet has a backup: its key shares are read from it.
    async fn already_backed_up(&self, job: &BackupJob, refused: Error) -> BackupOutcome {
        let attempts = refused.attempts();
        let request_id = refused.request_id().map(str::to_owned);
        let request = &job.request;
        match self
            .read(
                &request.env,
                &request.wallet,
                &self.inner.policy,
                None,
                true,
            )
            .await
        {
            Ok((wallet, reads)) => {
                let key_shares = match match_request(&request.body.locations, &wallet) {
                    Match::Found(shares) => shares,
                    Match::Nothing | Match::Mismatch(_) => held_shares(&wallet),
                };
                BackupOutcome {
                    key_shares,
                    request_id,
                    attempts: attempts.saturating_add(reads),
                    ..BackupOutcome::new(job, BackupStatus::AlreadyBackedUp)
                }
            }
            Err(read) => BackupOutcome {
                attempts: attempts.saturating_add(read.attempts()),
                ..BackupOutcome::from_error(job, BackupStatus::AlreadyBackedUp, read)
            },
        }
    }
}

fn created_outcome(job: &BackupJob, created: CreatedBackup) -> BackupOutcome {
    let status = if created.is_reconciled() {
        BackupStatus::Reconciled
    } else {
        BackupStatus::Created
    };
    BackupOutcome {
        key_shares: created.locations_with_key_shares().to_vec(),
        share_set_id: created.share_set_id().map(str::to_owned),
        request_id: Some(created.request_id().to_owned()),
        attempts: created.attempts(),
        ..BackupOutcome::new(job, status)
    }
}

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
