//! The client: what users hold, and the calls it makes.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dynamic_waas_api::ids::{EnvironmentId, WalletId};

use crate::auth::TokenSource;
use crate::budget::RetryBudget;
use crate::call::{CreateBackupLocations, GetWallet};
use crate::config::ClientBuilder;
use crate::create::CreateRequest;
use crate::error::Error;
use crate::model::{self, IdArg, LocationRequest};
use crate::pace::Pacer;
use crate::retry::RetryPolicy;
#[cfg(doc)]
use crate::{ErrorKind, DEFAULT_BASE_URL};

/// A client of Dynamic's WaaS key-share backup API.
///
/// Cheap to clone: clones share one connection pool, one token source and one retry
/// budget. `Send + Sync`; its `Debug` never shows the token.
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
    pub(crate) tokens: TokenSource,
    pub(crate) policy: RetryPolicy,
    pub(crate) budget: RetryBudget,
    /// `None` when pacing is off.
    pub(crate) pacer: Option<Pacer>,
    pub(crate) stats: Stats,
    pub(crate) max_response_bytes: usize,
}

/// Counters shared by a client and its clones.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) requests_sent: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
}

/// What a client and its clones have sent so far (see [`Client::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ClientStats {
    /// HTTP requests sent: first attempts, retries and settling reads.
    pub requests_sent: u64,
    /// Answers that said "too many requests" (429, or 503 with `Retry-After`).
    pub rate_limited: u64,
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

    /// A client with the token from `DYNAMIC_API_TOKEN` (else `DYN_API_TOKEN`), the base
    /// URL from `DYNAMIC_BASE_URL` if set, and the default policy.
    pub fn from_env() -> Result<Self, Error> {
        let mut builder = Self::builder().token_from_env()?;
        if let Ok(url) = std::env::var("DYNAMIC_BASE_URL") {
            builder = builder.base_url(url);
        }
        builder.build()
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
        }
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// Creates backup locations for a wallet's key shares (one per location).
    ///
    /// Ids may be [`uuid::Uuid`]s or text; all input is checked before anything is sent.
    ///
    /// # The create is not idempotent
    ///
    /// The server refuses a second create for a wallet, so an answer lost after the server
    /// applied the create cannot be recovered by sending it again. The call follows these
    /// rules:
    ///
    /// - **May have been applied**: a timeout or reset after sending, 500, 502, 503 without
    ///   `Retry-After`, 504 and other 5xx, 422 `wallet_service_connection_error`, and **any
    ///   2xx** the call cannot use (200, 202, 204, a 201 whose body is cut off, over the size
    ///   bound, late or malformed, a 201 without a requested location). Once an attempt may
    ///   have been applied, the call ends only with the key shares (created or
    ///   [reconciled](crate::CreatedBackup::is_reconciled)) or with
    ///   [`ErrorKind::OutcomeUnknown`], never with an error that says nothing was created.
    /// - **Reconciliation**: the wallet is read. It matches when, at each requested
    ///   location, it holds exactly as many key shares as were asked for there, each
    ///   location asked with an `externalKeyShareId` taking the share that carries it;
    ///   shares at locations the request did not name are left out. A match is returned as
    ///   reconciled. It lists the wallet's shares matching the request: a wallet backed up
    ///   before this call, whose `422` was lost on the way, reads the same (the server
    ///   applies at most one create per wallet, so they are the wallet's backup either way).
    /// - **An empty read is not proof**: reads may lag behind writes. After an ambiguous
    ///   failure, a wallet without the shares allows sending the create again (the server
    ///   refuses a duplicate); after a 2xx, or when no attempt is left, the wallet is read
    ///   once more after a short wait, and the call then ends with `OutcomeUnknown` whose
    ///   reason says when the wallet was read. A `422 key_share_already_backed_up` after an
    ///   ambiguous attempt is settled the same way.
    /// - **Time**: a create attempt gets at most half the time left before the call's
    ///   deadline, so that as much again remains to read the wallet; no attempt starts with
    ///   less than [`MIN_ATTEMPT_TIME`](crate::MIN_ATTEMPT_TIME).
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
    ///             LocationRequest::new(BackupLocation::Dynamic).keygen_id("primary"),
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
        environment_id: impl IdArg,
        wallet_id: impl IdArg,
        user_id: impl IdArg,
        locations: impl IntoIterator<Item = LocationRequest>,
    ) -> CreateBackupLocations<'_> {
        let input = CreateRequest::new(environment_id, wallet_id, user_id, locations);
        CreateBackupLocations {
            client: self,
            input,
            policy: None,
        }
    }

    /// Reads a wallet with its key shares. Safe to retry: every transient failure is
    /// retried within the policy.
    pub fn get_wallet(&self, environment_id: impl IdArg, wallet_id: impl IdArg) -> GetWallet<'_> {
        let input = model::path_id::<EnvironmentId>(environment_id)
            .and_then(|env| Ok((env, model::path_id::<WalletId>(wallet_id)?)));
        GetWallet {
            client: self,
            input,
            policy: None,
        }
    }
}
