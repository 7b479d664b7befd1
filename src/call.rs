//! The calls a client makes, as values to configure and then await.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use dynamic_waas_api::hooks::BodyCapture;
use dynamic_waas_api::ids::{EnvironmentId, WalletId};
use dynamic_waas_api::types;
use tracing::Instrument;

use crate::client::Client;
use crate::create::{CreateRequest, Start};
use crate::error::Error;
use crate::model::{CreatedBackup, IdArg};
use crate::retry::RetryPolicy;

/// A create call, ready to be awaited (see [`Client::create_backup_locations`]).
#[must_use = "a call does nothing until it is awaited"]
pub struct CreateBackupLocations<'c> {
    pub(crate) client: &'c Client,
    pub(crate) input: Result<CreateRequest, Error>,
    pub(crate) policy: Option<RetryPolicy>,
}

impl CreateBackupLocations<'_> {
    /// Uses this policy for this call instead of the client's.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Kept for compatibility: the 201 body is now always kept ([`CreatedBackup::raw_body`],
    /// [`CreatedBackup::extra`]); it is shared with the parser, not copied.
    pub fn keep_raw_body(self) -> Self {
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
    pub fn share_set_id(mut self, share_set_id: impl IdArg) -> Self {
        if let Ok(request) = &mut self.input {
            if let Err(e) = request.set_share_set_id(share_set_id) {
                self.input = Err(e);
            }
        }
        self
    }
}

impl<'c> IntoFuture for CreateBackupLocations<'c> {
    type Output = Result<CreatedBackup, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'c>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let request = self.input?;
            let policy = self
                .policy
                .unwrap_or_else(|| self.client.inner.policy.clone());
            let span = tracing::info_span!(
                "dynamic_waas.create_backup_locations",
                environment_id = %request.env,
                wallet_id = %request.wallet,
                locations = request.body.locations.len(),
            );
            self.client
                .create(&request, &policy, Start::default())
                .instrument(span)
                .await
        })
    }
}

/// A wallet read, ready to be awaited (see [`Client::get_wallet`]).
#[must_use = "a call does nothing until it is awaited"]
pub struct GetWallet<'c> {
    pub(crate) client: &'c Client,
    pub(crate) input: Result<(EnvironmentId, WalletId), Error>,
    pub(crate) policy: Option<RetryPolicy>,
}

impl<'c> GetWallet<'c> {
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
    pub fn with_raw_body(self) -> GetWalletWithBody<'c> {
        GetWalletWithBody(self)
    }

    async fn run(self, capture: Option<BodyCapture>) -> Result<types::WaasWallet, Error> {
        let (env, wallet) = self.input?;
        let policy = self
            .policy
            .unwrap_or_else(|| self.client.inner.policy.clone());
        let span = tracing::info_span!(
            "dynamic_waas.get_wallet",
            environment_id = %env,
            wallet_id = %wallet,
        );
        self.client
            .read(&env, &wallet, &policy, capture, false)
            .instrument(span)
            .await
            .map(|(wallet, _)| wallet)
    }
}

/// A wallet read that also returns the body as received (see [`GetWallet::with_raw_body`]).
#[must_use = "a call does nothing until it is awaited"]
pub struct GetWalletWithBody<'c>(GetWallet<'c>);

impl<'c> IntoFuture for GetWalletWithBody<'c> {
    type Output = Result<(types::WaasWallet, bytes::Bytes), Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'c>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let capture = BodyCapture::new();
            let wallet = self.0.run(Some(capture.clone())).await?;
            Ok((wallet, capture.take().unwrap_or_default()))
        })
    }
}

impl<'c> IntoFuture for GetWallet<'c> {
    type Output = Result<types::WaasWallet, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'c>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run(None))
    }
}
