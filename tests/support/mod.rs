//! What the facade's tests share: a fast policy, a client for a URI, and the fault proxy.

#![allow(dead_code)] // each test binary uses part of it

pub mod fault_proxy;

use std::time::Duration;

use dynamic_waas::{BackupLocation, Client, CreatedBackup, Error, LocationRequest, RetryPolicy};
use dynamic_waas_sandbox::{Sandbox, Seed};

#[allow(unused_imports)] // each test binary uses part of it
pub use fault_proxy::{Answer, Fault, FaultProxy};

/// Short waits so the suite stays fast; the rules are the same as the defaults'.
pub fn fast() -> RetryPolicy {
    RetryPolicy::default()
        .initial_backoff(Duration::from_millis(10))
        .max_backoff(Duration::from_millis(50))
        .max_retry_after(Duration::from_secs(5))
        .attempt_timeout(Duration::from_secs(5))
        .total_timeout(Duration::from_secs(20))
}

/// A client of `uri` with `token` and `policy`.
pub fn client_at(uri: &str, token: &str, policy: RetryPolicy) -> Client {
    Client::builder()
        .base_url(uri)
        .token(token.to_owned())
        .retry_policy(policy)
        .build()
        .unwrap()
}

/// The example sandbox behind a fault proxy, and a client of the proxy.
pub struct Faulty {
    pub sandbox: Sandbox,
    pub seed: Seed,
    pub proxy: FaultProxy,
    pub client: Client,
}

impl Faulty {
    pub async fn start(policy: RetryPolicy) -> Faulty {
        Self::start_with(Seed::example().builder(), policy).await
    }

    pub async fn start_with(
        builder: dynamic_waas_sandbox::SandboxBuilder,
        policy: RetryPolicy,
    ) -> Faulty {
        let seed = Seed::example();
        let sandbox = Sandbox::start(builder).await;
        let proxy = FaultProxy::start(&sandbox.uri()).await;
        let client = client_at(proxy.uri(), &seed.token, policy);
        Faulty {
            sandbox,
            seed,
            proxy,
            client,
        }
    }

    /// Creates the example wallet's backup at `locations`.
    pub async fn create(&self, locations: &[LocationRequest]) -> Result<CreatedBackup, Error> {
        self.create_with(&self.client, locations).await
    }

    pub async fn create_with(
        &self,
        client: &Client,
        locations: &[LocationRequest],
    ) -> Result<CreatedBackup, Error> {
        client
            .create_backup_locations(
                &self.seed.environment_id,
                &self.seed.wallet_id,
                self.seed.user_id,
                locations.to_vec(),
            )
            .await
    }

    /// The key share ids the sandbox holds for the example wallet.
    pub fn stored_ids(&self) -> Vec<String> {
        self.sandbox
            .key_shares(&self.seed.wallet_id)
            .unwrap()
            .iter()
            .map(|s| s.id.to_string())
            .collect()
    }

    pub fn applied(&self) -> usize {
        self.sandbox.creates_applied_to(&self.seed.wallet_id)
    }
}

/// The example seed with `count` more wallets of its user, and their ids (`first`, `first + 1`,
/// ... as UUIDs).
pub fn with_wallets(
    first: u128,
    count: u128,
) -> (
    dynamic_waas_sandbox::SandboxBuilder,
    Vec<dynamic_waas::WalletId>,
) {
    let seed = Seed::example();
    let ids: Vec<dynamic_waas::WalletId> = (first..first + count)
        .map(|i| uuid::Uuid::from_u128(i).into())
        .collect();
    let builder = ids.iter().fold(seed.builder(), |builder, id| {
        builder.wallet(dynamic_waas_sandbox::Wallet::new(
            id.clone(),
            seed.environment_id.clone(),
            seed.user_id,
        ))
    });
    (builder, ids)
}

/// The key share ids of a result.
pub fn ids(created: &CreatedBackup) -> Vec<String> {
    created
        .locations_with_key_shares()
        .iter()
        .map(|s| s.key_share_id.to_string())
        .collect()
}

pub fn google_drive() -> LocationRequest {
    BackupLocation::GoogleDrive.into()
}
