//! The calls a client makes, as values to configure and then await (or `send()`). Each holds
//! a clone of the client, so its future is `Send + 'static` (it can be spawned).

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::SystemTime;

use dynamic_waas_api::ids::{EnvironmentId, ShareSetId, WalletId};
use tokio::time::Instant;
use tracing::Instrument;

use crate::client::Client;
use crate::engine::attempt::{self, Call, Waits};
use crate::engine::classify::Applied;
use crate::engine::create::{self, Start};
use crate::engine::settle::{instant_of, settle, Doubt, Settled};
use crate::engine::wire::{Asked, CreateOp, CreateRequest, ReadOp};
use crate::error::Error;
use crate::matching::held_shares;
use crate::model::{BackupStatus, CreatedBackup, IdArg, Wallet};
use crate::pace::Lane;
use crate::retry::RetryPolicy;

/// The future of a call awaited (its `IntoFuture`): boxed, so that it has a name, and
/// `Send + 'static`. A call's `send()` makes the same call without the box.
pub type CallFuture<T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'static>>;

/// A create call, ready to be awaited (see [`Client::create_backup_locations`]).
#[must_use = "a call does nothing until it is awaited or sent"]
pub struct CreateBackupLocations {
    pub(crate) client: Client,
    pub(crate) input: Result<CreateRequest, Error>,
    pub(crate) policy: Option<RetryPolicy>,
    pub(crate) accept_existing: bool,
}

impl CreateBackupLocations {
    /// Uses this policy for this call instead of the client's.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// When the wallet was backed up before (the server answers 422 already backed up, or a
    /// settling read finds a backup this call cannot have made), read the wallet and return
    /// its key shares, with [`status`](CreatedBackup::status)
    /// [`AlreadyBackedUp`](crate::BackupStatus::AlreadyBackedUp), instead of the
    /// [`AlreadyBackedUp`](crate::ErrorKind::AlreadyBackedUp) error. Bulk jobs always do.
    ///
    /// ```no_run
    /// # async fn demo(client: dynamic_waas::Client) -> Result<(), dynamic_waas::Error> {
    /// use dynamic_waas::{BackupLocation, BackupStatus};
    ///
    /// let backup = client
    ///     .create_backup_locations(
    ///         "0b1c2d3e-4f50-4617-8899-aabbccddeeff",
    ///         "95b11417-f18f-457f-8804-68e361f9164f",
    ///         "3c90c3cc-0d44-4b50-8888-8dd25736052a",
    ///         [BackupLocation::GoogleDrive.into()],
    ///     )
    ///     .accept_existing()
    ///     .await?;
    /// if backup.status() == BackupStatus::AlreadyBackedUp {
    ///     println!("backed up before; its key shares: {:?}", backup.locations_with_key_shares());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn accept_existing(mut self) -> Self {
        self.accept_existing = true;
        self
    }

    /// `shareSetId`: the share set this backup activates, as the key-generation ceremony
    /// gave it (a [`uuid::Uuid`], or text checked like the other ids before anything is
    /// sent). Left out, the server uses the wallet's active root-user share set.
    ///
    /// ```no_run
    /// # async fn demo(client: dynamic_waas::Client, share_set: uuid::Uuid) -> Result<(), dynamic_waas::Error> {
    /// use dynamic_waas::BackupLocation;
    ///
    /// let created = client
    ///     .create_backup_locations(
    ///         "0b1c2d3e-4f50-4617-8899-aabbccddeeff",
    ///         "95b11417-f18f-457f-8804-68e361f9164f",
    ///         "3c90c3cc-0d44-4b50-8888-8dd25736052a",
    ///         [BackupLocation::GoogleDrive.into()],
    ///     )
    ///     .share_set_id(share_set)
    ///     .await?;
    /// println!("share set {:?} ({:?})", created.share_set_id(), created.share_set_type());
    /// # Ok(())
    /// # }
    /// ```
    pub fn share_set_id(mut self, share_set_id: impl IdArg<ShareSetId>) -> Self {
        if let Ok(request) = &mut self.input {
            if let Err(e) = request.set_share_set_id(share_set_id) {
                self.input = Err(e);
            }
        }
        self
    }
}

impl CreateBackupLocations {
    /// Sends the create: the same call as awaiting it (the same requests, rules and result),
    /// with its future not boxed. Awaiting a call boxes its future (one allocation of a few
    /// KB a call) to give it a nameable type, [`CallFuture`]; `send()` is an `async fn`, whose
    /// future has no name but is `Send + 'static` too (it can be spawned). For a loop that
    /// counts every allocation; otherwise `.await` is the same.
    ///
    /// ```no_run
    /// # async fn demo(client: dynamic_waas::Client) -> Result<(), dynamic_waas::Error> {
    /// use dynamic_waas::BackupLocation;
    ///
    /// let created = client
    ///     .create_backup_locations(
    ///         "0b1c2d3e-4f50-4617-8899-aabbccddeeff",
    ///         "95b11417-f18f-457f-8804-68e361f9164f",
    ///         "3c90c3cc-0d44-4b50-8888-8dd25736052a",
    ///         [BackupLocation::GoogleDrive.into()],
    ///     )
    ///     .send()
    ///     .await?;
    /// println!("{:?}", created.locations_with_key_shares());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn send(self) -> Result<CreatedBackup, Error> {
        let request = self.input?;
        let client = self.client;
        let policy = self.policy.unwrap_or_else(|| client.inner.policy.clone());
        let span = tracing::info_span!(
            "dynamic_waas.create_backup_locations",
            environment_id = %request.env,
            wallet_id = %request.wallet,
            locations = request.body.locations.len(),
        );
        let start = Start {
            accept_existing: self.accept_existing,
            ..Start::call()
        };
        let result = run_create(&client, &request, &policy, start)
            .instrument(span)
            .await;
        create::count_outcome(&client, &result);
        result
    }
}

impl IntoFuture for CreateBackupLocations {
    type Output = Result<CreatedBackup, Error>;
    type IntoFuture = CallFuture<CreatedBackup>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// A create over HTTP: the engine's flow with the wire operations.
pub(crate) async fn run_create(
    client: &Client,
    request: &CreateRequest,
    policy: &RetryPolicy,
    start: Start,
) -> Result<CreatedBackup, Error> {
    let create_op = CreateOp { request };
    let read_op = ReadOp {
        env: &request.env,
        wallet: &request.wallet,
        raw: false,
    };
    let asked = &request.body.locations;
    create::create(client, &create_op, &read_op, asked, policy, start).await
}

/// A wallet read, ready to be awaited (see [`Client::get_wallet`]).
#[must_use = "a call does nothing until it is awaited or sent"]
pub struct GetWallet {
    pub(crate) client: Client,
    pub(crate) input: Result<(EnvironmentId, WalletId), Error>,
    pub(crate) policy: Option<RetryPolicy>,
}

impl GetWallet {
    /// Uses this policy for this call instead of the client's.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Also returns the body exactly as received (`{"wallet": {...}}`, fields this release
    /// does not know included), to pass the server's document on unchanged.
    ///
    /// ```no_run
    /// # async fn demo(client: dynamic_waas::Client) -> Result<(), dynamic_waas::Error> {
    /// let (wallet, raw) = client
    ///     .get_wallet(
    ///         "0b1c2d3e-4f50-4617-8899-aabbccddeeff",
    ///         "95b11417-f18f-457f-8804-68e361f9164f",
    ///     )
    ///     .with_raw_body()
    ///     .await?;
    /// println!("{} key shares; as received: {}", wallet.key_shares.len(), String::from_utf8_lossy(&raw));
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_raw_body(self) -> GetWalletWithBody {
        GetWalletWithBody(self)
    }

    async fn run(self, raw: bool) -> Result<(Wallet, Option<bytes::Bytes>), Error> {
        let (env, wallet) = self.input?;
        let client = self.client;
        let policy = self.policy.unwrap_or_else(|| client.inner.policy.clone());
        let span = tracing::info_span!(
            "dynamic_waas.get_wallet",
            environment_id = %env,
            wallet_id = %wallet,
        );
        let op = ReadOp {
            env: &env,
            wallet: &wallet,
            raw,
        };
        let mut call = Call::new(&policy, Waits::Deadline);
        let mut tries = 0;
        match attempt::run(
            &client,
            &op,
            &policy,
            &mut call,
            &mut tries,
            false,
            Lane::New,
        )
        .instrument(span)
        .await
        {
            Ok(answer) => Ok((answer.wallet, answer.raw)),
            Err(attempt::Ended::Failed(e) | attempt::Ended::InDoubt { error: e, .. }) => Err(e),
        }
    }
}

impl GetWallet {
    /// Reads the wallet: the same as awaiting the call, with the future not boxed (see
    /// [`CreateBackupLocations::send`]).
    ///
    /// ```no_run
    /// # async fn demo(client: dynamic_waas::Client) -> Result<(), dynamic_waas::Error> {
    /// let wallet = client
    ///     .get_wallet(
    ///         "0b1c2d3e-4f50-4617-8899-aabbccddeeff",
    ///         "95b11417-f18f-457f-8804-68e361f9164f",
    ///     )
    ///     .send()
    ///     .await?;
    /// println!("{} key shares", wallet.key_shares.len());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn send(self) -> Result<Wallet, Error> {
        self.run(false).await.map(|(wallet, _)| wallet)
    }
}

impl IntoFuture for GetWallet {
    type Output = Result<Wallet, Error>;
    type IntoFuture = CallFuture<Wallet>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// A wallet read that also returns the body as received (see [`GetWallet::with_raw_body`]).
#[must_use = "a call does nothing until it is awaited or sent"]
pub struct GetWalletWithBody(GetWallet);

impl GetWalletWithBody {
    /// Reads the wallet and its body as received: the same as awaiting the call, with the
    /// future not boxed (see [`CreateBackupLocations::send`]).
    ///
    /// ```no_run
    /// # async fn demo(client: dynamic_waas::Client) -> Result<(), dynamic_waas::Error> {
    /// let (wallet, raw) = client
    ///     .get_wallet(
    ///         "0b1c2d3e-4f50-4617-8899-aabbccddeeff",
    ///         "95b11417-f18f-457f-8804-68e361f9164f",
    ///     )
    ///     .with_raw_body()
    ///     .send()
    ///     .await?;
    /// println!("{} key shares in {} bytes", wallet.key_shares.len(), raw.len());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn send(self) -> Result<(Wallet, bytes::Bytes), Error> {
        let (wallet, raw) = self.0.run(true).await?;
        Ok((wallet, raw.unwrap_or_default()))
    }
}

impl IntoFuture for GetWalletWithBody {
    type Output = Result<(Wallet, bytes::Bytes), Error>;
    type IntoFuture = CallFuture<(Wallet, bytes::Bytes)>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

/// What the wallet says about a create whose outcome was unknown (see [`Client::settle`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settlement {
    /// The wallet holds the key shares the request asked for: the create happened. Store
    /// them ([`status`](CreatedBackup::status) is `Reconciled`).
    BackedUp(CreatedBackup),
    /// A read made [`settle_after`](RetryPolicy::settle_after) after the create was last
    /// sent shows no key shares: it did not happen, and creating again is safe.
    NotBackedUp,
    /// The wallet holds key shares the request cannot have made: it was backed up otherwise.
    /// Its key shares ([`status`](CreatedBackup::status) is `AlreadyBackedUp`).
    BackedUpOtherwise(CreatedBackup),
}

/// A settle, ready to be awaited (see [`Client::settle`]). Still unknown at its deadline (the
/// reads failed, or show part of the key shares), it ends with
/// [`OutcomeUnknown`](crate::ErrorKind::OutcomeUnknown): settle again later.
#[must_use = "a call does nothing until it is awaited or sent"]
pub struct Settle {
    pub(crate) client: Client,
    pub(crate) input: Result<(EnvironmentId, WalletId, Vec<Asked>), Error>,
    pub(crate) policy: Option<RetryPolicy>,
    pub(crate) last_sent: Option<SystemTime>,
}

impl Settle {
    /// Uses this policy for this call instead of the client's.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// The create was last sent no later than `at` (when the call that failed ended, say):
    /// a read from `settle_after` after it may say "not backed up", without waiting from now.
    pub fn last_sent(mut self, at: SystemTime) -> Self {
        self.last_sent = Some(at);
        self
    }
}

impl Settle {
    /// Reads the wallet until the create is settled or the call's deadline passes (see
    /// [`Client::settle`]): the same as awaiting the call, with the future not boxed (see
    /// [`CreateBackupLocations::send`]).
    ///
    /// ```no_run
    /// # async fn demo(client: dynamic_waas::Client) -> Result<(), dynamic_waas::Error> {
    /// use dynamic_waas::{BackupLocation, Settlement};
    ///
    /// let settled = client
    ///     .settle(
    ///         "0b1c2d3e-4f50-4617-8899-aabbccddeeff",
    ///         "95b11417-f18f-457f-8804-68e361f9164f",
    ///         [BackupLocation::GoogleDrive.into()],
    ///     )
    ///     .send()
    ///     .await?;
    /// if let Settlement::NotBackedUp = settled {
    ///     println!("safe to create again");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn send(self) -> Result<Settlement, Error> {
        let (env, wallet, asked) = self.input?;
        let client = self.client;
        let policy = self.policy.unwrap_or_else(|| client.inner.policy.clone());
        let span = tracing::info_span!(
            "dynamic_waas.settle",
            environment_id = %env,
            wallet_id = %wallet,
        );
        let read = ReadOp {
            env: &env,
            wallet: &wallet,
            raw: false,
        };
        let doubt = Doubt {
            since: self.last_sent.map_or_else(Instant::now, instant_of),
            applied: Applied::Maybe,
            early_read: true,
            sent_again: false,
            story: "settling a create on request".into(),
            error: None,
        };
        let mut call = Call::new(&policy, Waits::Deadline);
        let settled = settle(&client, &read, &asked, &policy, &mut call, &doubt)
            .instrument(span)
            .await;
        let request_id = call.request_id;
        match settled {
            Settled::Found(shares, wallet) => Ok(Settlement::BackedUp(CreatedBackup::from_wallet(
                &wallet,
                shares,
                BackupStatus::Reconciled,
                request_id,
                call.requests,
            ))),
            Settled::Other(wallet, _) => {
                Ok(Settlement::BackedUpOtherwise(CreatedBackup::from_wallet(
                    &wallet,
                    held_shares(&wallet),
                    BackupStatus::AlreadyBackedUp,
                    request_id,
                    call.requests,
                )))
            }
            Settled::NotThere(_) => Ok(Settlement::NotBackedUp),
            Settled::Unknown { reason, seen } => Err(create::unknown(None, reason, seen, &call)),
        }
    }
}

impl IntoFuture for Settle {
    type Output = Result<Settlement, Error>;
    type IntoFuture = CallFuture<Settlement>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}
