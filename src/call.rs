//! The calls a client makes, as values to configure and then await.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use dynamic_waas_api::ids::{EnvironmentId, WalletId};
use dynamic_waas_api::types;
use tracing::Instrument;

use crate::client::Client;
use crate::create::CreateRequest;
use crate::error::Error;
use crate::model::CreatedBackup;
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

    /// Keeps the 201 body exactly as received, for [`CreatedBackup::raw_body`] (fields this
    /// SDK does not know included). Off by default: it costs a copy of the response.
    pub fn keep_raw_body(mut self) -> Self {
        if let Ok(request) = &mut self.input {
            request.keep_raw_body = true;
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
            self.client.create(&request, &policy).instrument(span).await
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

impl GetWallet<'_> {
    /// Uses this policy for this call instead of the client's.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = Some(policy);
        self
    }
}

impl<'c> IntoFuture for GetWallet<'c> {
    type Output = Result<types::WaasWallet, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'c>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
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
                .read(&env, &wallet, &policy)
                .instrument(span)
                .await
        })
    }
}
