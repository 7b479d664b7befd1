//! The client: what users hold, and every call it makes.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dynamic_waas_api::ids::{EnvironmentId, UserId, WalletId};
use futures_util::Stream;

use crate::auth::TokenSource;
use crate::budget::RetryBudget;
use crate::bulk::{BackupJob, BulkRun};
use crate::call::{CreateBackupLocations, GetWallet, Settle};
use crate::config::ClientBuilder;
use crate::engine::classify::OpKind;
use crate::engine::wire::{checked_locations, CreateRequest};
use crate::error::Error;
use crate::metrics::{Event, Metrics};
use crate::model::{IdArg, LocationRequest};
use crate::pace::Pacer;
use crate::retry::RetryPolicy;
#[cfg(doc)]
use crate::{ErrorKind, DEFAULT_BASE_URL};

/// A client of Dynamic's WaaS key-share backup API.
///
/// Cheap to clone: clones share one connection pool, one token source, one pacer and one
/// retry budget. `Send + Sync`; its `Debug` never shows the token. The calls it returns hold
/// a clone, so their futures are `Send + 'static` and can be spawned.
///
/// ```no_run
/// use dynamic_waas::{BackupLocation, Client};
///
/// # async fn demo() -> Result<(), dynamic_waas::Error> {
/// let client = Client::from_env()?; // DYNAMIC_API_TOKEN, else DYN_API_TOKEN
/// let created = client
///     .create_backup_locations(
///         "0b1c2d3e-4f50-4617-8899-aabbccddeeff", // environment
///         "95b11417-f18f-457f-8804-68e361f9164f", // wallet
///         "3c90c3cc-0d44-4b50-8888-8dd25736052a", // user
///         [BackupLocation::GoogleDrive.into()],
///     )
///     .await?;
/// for share in created.locations_with_key_shares() {
///     println!("{}: {}", share.location, share.key_share_id);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// The generated client, built once: per-request settings go through `hooks::Attempt`.
    pub(crate) api: dynamic_waas_api::Client,
    pub(crate) base_url: String,
    /// `server.address` and `server.port` of the attempts' spans.
    pub(crate) server: (String, u16),
    pub(crate) tokens: TokenSource,
    pub(crate) policy: RetryPolicy,
    pub(crate) budget: RetryBudget,
    /// `None` when pacing is off.
    pub(crate) pacer: Option<Pacer>,
    pub(crate) stats: Stats,
    pub(crate) max_response_bytes: usize,
    pub(crate) metrics: Option<Box<dyn Metrics>>,
}

impl Inner {
    pub(crate) fn metric(&self, event: Event) {
        if let Some(metrics) = &self.metrics {
            metrics.record(&event);
        }
    }

    pub(crate) fn record_request(&self, op: OpKind, retry: bool) {
        self.stats.requests_sent.fetch_add(1, Ordering::Relaxed);
        self.metric(Event::Request {
            operation: op.name(),
            retry,
        });
    }
}

/// Counters shared by a client and its clones.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) requests_sent: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
}

/// What a client and its clones have sent so far (see [`Client::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ClientStats {
    /// HTTP requests sent: first attempts, retries and settling reads.
    pub requests_sent: u64,
    /// Answers that said "too many requests" (429, or 503 with `Retry-After`).
    pub rate_limited: u64,
    /// The share of the configured pace in use now (1 at full pace; lower after 429s, see
    /// [`Pacing`](crate::Pacing)); `None` when the client is not paced.
    pub pace: Option<f64>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url)
            .field("token", &"[redacted]")
            .field("policy", &self.inner.policy)
            .finish()
    }
}

impl Client {
    /// A builder with the defaults ([`DEFAULT_BASE_URL`], [`RetryPolicy::default`]).
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client configured from the environment (see [`ClientBuilder::from_env`]) with the
    /// defaults otherwise.
    pub fn from_env() -> Result<Self, Error> {
        ClientBuilder::from_env()?.build()
    }

    /// Counts of what this client and its clones have sent, for progress and summaries.
    ///
    /// ```
    /// let client = dynamic_waas::Client::builder().token("dyn_example").build()?;
    /// assert_eq!(client.stats().requests_sent, 0);
    /// # Ok::<(), dynamic_waas::Error>(())
    /// ```
    pub fn stats(&self) -> ClientStats {
        ClientStats {
            requests_sent: self.inner.stats.requests_sent.load(Ordering::Relaxed),
            rate_limited: self.inner.stats.rate_limited.load(Ordering::Relaxed),
            pace: self.inner.pacer.as_ref().map(Pacer::factor),
        }
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The retry policy calls use unless they set their own.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.policy
    }

    /// Creates backup locations for a wallet's key shares (one per location).
    ///
    /// Ids may be typed ids, [`uuid::Uuid`]s or text; all input is checked before anything
    /// is sent.
    ///
    /// # The create is not idempotent
    ///
    /// The server refuses a second create for a wallet, so an answer lost after the server
    /// applied the create cannot be recovered by sending it again. The call follows these
    /// rules:
    ///
    /// - **May have been applied**: a timeout or reset after sending, 500, 502, 503 (with or
    ///   without `Retry-After`), 504 and other 5xx, 422 `wallet_service_connection_error`, and **any
    ///   2xx** the call cannot use (200, 202, 204, a 201 whose body is cut off, over the size
    ///   bound, late or malformed, a 201 without a requested location, any answer after a
    ///   redirect). Once an attempt may have been applied, the call ends only with the key
    ///   shares (created or [reconciled](crate::CreatedBackup::is_reconciled)), with
    ///   [`ErrorKind::OutcomeUnknown`], or with [`ErrorKind::AlreadyBackedUp`] when the
    ///   wallet holds a backup this create cannot have made (at other locations); never with
    ///   an error that says nothing was created.
    /// - **Settling**: the wallet is read. It matches when, at each requested location, it
    ///   holds exactly as many key shares as were asked for there, each location asked with
    ///   an `externalKeyShareId` taking the share that carries it; shares at locations the
    ///   request did not name are left out. A match is returned as reconciled.
    /// - **No resend on an early read**: reads may lag behind writes by up to
    ///   [`settle_after`](RetryPolicy::settle_after) (2 s). The create is sent again only
    ///   when a wallet read that started at least that long after the attempt ended shows
    ///   no key shares. Once the create is known to be applied (a 2xx, a 422 already backed
    ///   up after a doubt, its shares partly visible), reads go on, paced and with backoff,
    ///   until the deadline.
    /// - **Time**: a create attempt starts only when the time left covers it, the
    ///   `settle_after` wait and a read: it gets at most half of what is left once
    ///   `settle_after` is set aside; no attempt starts with less than
    ///   [`MIN_ATTEMPT_TIME`](crate::MIN_ATTEMPT_TIME).
    ///
    /// Await it directly, or set a policy for this call first:
    ///
    /// ```no_run
    /// # async fn demo(client: dynamic_waas::Client) -> Result<(), dynamic_waas::Error> {
    /// use dynamic_waas::{BackupLocation, LocationRequest, RetryPolicy};
    ///
    /// let created = client
    ///     .create_backup_locations(
    ///         uuid::Uuid::new_v4(),
    ///         "95b11417-f18f-457f-8804-68e361f9164f",
    ///         "3c90c3cc-0d44-4b50-8888-8dd25736052a",
    ///         [
    ///             LocationRequest::from(BackupLocation::GoogleDrive),
    ///             LocationRequest::new(BackupLocation::Dynamic).with_keygen_id("primary"),
    ///         ],
    ///     )
    ///     .retry_policy(RetryPolicy::no_retries())
    ///     .await?;
    /// # let _ = created;
    /// # Ok(())
    /// # }
    /// ```
    pub fn create_backup_locations(
        &self,
        environment_id: impl IdArg<EnvironmentId>,
        wallet_id: impl IdArg<WalletId>,
        user_id: impl IdArg<UserId>,
        locations: impl IntoIterator<Item = LocationRequest>,
    ) -> CreateBackupLocations {
        CreateBackupLocations {
            client: self.clone(),
            input: CreateRequest::new(environment_id, wallet_id, user_id, locations),
            policy: None,
            accept_existing: false,
        }
    }

    /// Reads a wallet with its key shares. Safe to retry: every transient failure is
    /// retried within the policy.
    pub fn get_wallet(
        &self,
        environment_id: impl IdArg<EnvironmentId>,
        wallet_id: impl IdArg<WalletId>,
    ) -> GetWallet {
        let input = environment_id
            .into_id()
            .and_then(|env| Ok((env, wallet_id.into_id()?)));
        GetWallet {
            client: self.clone(),
            input,
            policy: None,
        }
    }

    /// Settles a create whose outcome is unknown ([`ErrorKind::OutcomeUnknown`]): reads the
    /// wallet with the same patience rules as the create itself, and says whether the
    /// backup `locations` asked for exists.
    ///
    /// A read right away may find the key shares; a read that says they are not there is
    /// made [`settle_after`](RetryPolicy::settle_after) after the create was last sent (by
    /// default, after this call starts; see [`Settle::last_sent`]), so that a read lagging
    /// behind the write is not taken for "not there".
    ///
    /// ```no_run
    /// use dynamic_waas::{BackupLocation, Settlement};
    ///
    /// # async fn demo(client: dynamic_waas::Client) -> Result<(), dynamic_waas::Error> {
    /// let (env, wallet) = ("0b1c2d3e-4f50-4617-8899-aabbccddeeff", "95b11417-f18f-457f-8804-68e361f9164f");
    /// match client.settle(env, wallet, [BackupLocation::GoogleDrive.into()]).await? {
    ///     Settlement::BackedUp(backup) => println!("created after all: {:?}", backup.locations_with_key_shares()),
    ///     Settlement::NotBackedUp => println!("not created: safe to create again"),
    ///     Settlement::BackedUpOtherwise(existing) => println!("another backup: {:?}", existing.locations_with_key_shares()),
    ///     _ => {}
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn settle(
        &self,
        environment_id: impl IdArg<EnvironmentId>,
        wallet_id: impl IdArg<WalletId>,
        locations: impl IntoIterator<Item = LocationRequest>,
    ) -> Settle {
        let input = (|| {
            let env = environment_id.into_id()?;
            let wallet = wallet_id.into_id()?;
            Ok((env, wallet, checked_locations(locations)?))
        })();
        Settle {
            client: self.clone(),
            input,
            policy: None,
            last_sent: None,
        }
    }

    /// Backs up many wallets: at most `concurrency` jobs in flight, every request paced by the
    /// client's [`Pacing`](crate::Pacing), one [`BackupOutcome`](crate::BackupOutcome) per job
    /// as each finishes (not in input order). Jobs are pulled from `jobs` only as slots free
    /// up, so memory stays flat however long the input is. [`BulkRun::handle`] gives the
    /// progress and a graceful stop (no new job; those in flight finish).
    ///
    /// Each job follows [`create_backup_locations`](Self::create_backup_locations)'s rules,
    /// with [`accept_existing`](crate::CreateBackupLocations::accept_existing): a wallet backed
    /// up before is read, and its key shares are in the outcome. A job's waits for the pacer
    /// and for a rate limit's `Retry-After` do not count against its deadline
    /// ([`RetryPolicy::total_timeout`]), so a long queue or pause neither times jobs out nor
    /// leaves lost creates unsettled. Two jobs for one wallet never run at once: the later
    /// waits for the earlier's outcome, and is then reported as a
    /// [`Duplicate`](crate::BackupStatus::Duplicate) when that settled the wallet, or run.
    ///
    /// The stream holds a clone of the client: it is `Send + 'static`, so it can be spawned.
    ///
    /// ```no_run
    /// use dynamic_waas::{BackupJob, BackupLocation, Client};
    /// use futures_util::StreamExt;
    ///
    /// # async fn demo(client: Client, rows: Vec<(String, String)>) -> Result<(), dynamic_waas::Error> {
    /// let env = "0b1c2d3e-4f50-4617-8899-aabbccddeeff";
    /// let mut jobs = Vec::new();
    /// for (wallet, user) in &rows {
    ///     jobs.push(BackupJob::new(env, wallet, user, [BackupLocation::GoogleDrive.into()])?);
    /// }
    /// let mut outcomes = client.create_many(futures_util::stream::iter(jobs), 16);
    /// let handle = outcomes.handle();
    /// tokio::spawn(async move {
    ///     tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    ///     handle.stop(); // no new job; those in flight finish, then the stream ends
    /// });
    /// while let Some(outcome) = outcomes.next().await {
    ///     println!("{}", serde_json::to_string(&outcome).expect("serializable"));
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn create_many<J>(&self, jobs: J, concurrency: usize) -> BulkRun
    where
        J: Stream<Item = BackupJob> + Send + 'static,
    {
        BulkRun::new(self.clone(), Box::pin(jobs), concurrency)
    }
}
