//! What a sandbox starts with: tokens, users and wallets, and the ready-made example seed.

use std::fmt;

use dynamic_waas_api::enums::{ThresholdSignatureScheme, WaasChainEnum};
use dynamic_waas_api::ids::{EnvironmentId, UserId, WalletId};
use dynamic_waas_api::types::WalletKeyShareInfo;
use uuid::Uuid;

use super::rate_limit::{RateLimit, RateLimits};
use super::Sandbox;

/// The backup locations a sandbox accepts unless told otherwise: upstream's
/// `WaasBackupOptionsEnum` as its spec lists it.
pub const KNOWN_LOCATIONS: &[&str] = dynamic_waas_api::enums::WaasBackupOptionsEnum::KNOWN;

/// A WaaS wallet to seed: its id, environment and owner, and what a read returns about it.
///
/// Defaults: chain `EVM`, `TWO_OF_TWO`, derivation path `m/44'/60'/0'/0/0`, an example
/// account address, no key shares.
#[derive(Clone, Debug, PartialEq)]
pub struct Wallet {
    pub(crate) id: WalletId,
    pub(crate) environment: EnvironmentId,
    pub(crate) owner: UserId,
    pub(crate) account_address: String,
    pub(crate) chain: WaasChainEnum,
    pub(crate) threshold_signature_scheme: ThresholdSignatureScheme,
    pub(crate) derivation_path: String,
    pub(crate) key_shares: Vec<WalletKeyShareInfo>,
    pub(crate) share_set: ShareSet,
}

/// What a create's answer says about the wallet's share set (upstream's current revision).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ShareSet {
    /// The active share set, answered when a create does not name one (`null` if `None`).
    pub(crate) id: Option<String>,
    /// `passwordUpdateStatus` (left out if `None`).
    pub(crate) password_update_status: Option<String>,
    /// `shareSetType` (`null` if `None`).
    pub(crate) kind: Option<String>,
    /// `walletActive` (left out if `None`).
    pub(crate) wallet_active: Option<bool>,
}

impl Wallet {
    /// Wallet `id` in `environment`, owned by user `owner` (typed ids, or [`Uuid`]s).
    ///
    /// ```
    /// use dynamic_waas_sandbox::{EnvironmentId, UserId, Wallet, WalletId};
    ///
    /// let wallet = Wallet::new(WalletId::random(), EnvironmentId::random(), UserId::random());
    /// # let _ = wallet;
    /// ```
    pub fn new(
        id: impl Into<WalletId>,
        environment: impl Into<EnvironmentId>,
        owner: impl Into<UserId>,
    ) -> Self {
        let id: WalletId = id.into();
        // The active share set, derived from the wallet id so that answers are reproducible.
        let share_set_id = Uuid::parse_str(id.as_str())
            .map(|w| Uuid::from_u128(w.as_u128() ^ 0x5ea7_5e70).to_string())
            .ok();
        Self {
            id,
            environment: environment.into(),
            owner: owner.into(),
            account_address: "0x5cbF6b0bC3B6A5d2b9E1F6f2E3c4D5e6F7a8B9c0".to_owned(),
            chain: WaasChainEnum::Evm,
            threshold_signature_scheme: ThresholdSignatureScheme::TwoOfTwo,
            derivation_path: "m/44'/60'/0'/0/0".to_owned(),
            key_shares: Vec::new(),
            share_set: ShareSet {
                id: share_set_id,
                password_update_status: Some("activated".into()),
                kind: Some("rootUser".into()),
                wallet_active: Some(true),
            },
        }
    }

    /// The wallet's active share set: a create that names none answers with it (`None`:
    /// `"shareSetId": null`). Default: an id derived from the wallet's.
    pub fn share_set_id(mut self, id: Option<Uuid>) -> Self {
        self.share_set.id = id.map(|id| id.to_string());
        self
    }

    /// What a create answers as `passwordUpdateStatus` (`None`: left out). Default
    /// `activated`; any text, to play a value your client does not know.
    pub fn password_update_status(mut self, status: Option<&str>) -> Self {
        self.share_set.password_update_status = status.map(str::to_owned);
        self
    }

    /// What a create answers as `shareSetType` (`None`: `null`, as for a wallet with no
    /// active share set). Default `rootUser`.
    pub fn share_set_type(mut self, kind: Option<&str>) -> Self {
        self.share_set.kind = kind.map(str::to_owned);
        self
    }

    /// What a create answers as `walletActive` (`None`: left out). Default `true`.
    pub fn wallet_active(mut self, active: Option<bool>) -> Self {
        self.share_set.wallet_active = active;
        self
    }

    /// The wallet's id.
    pub fn id(&self) -> &WalletId {
        &self.id
    }

    /// The environment the wallet is in.
    pub fn environment(&self) -> &EnvironmentId {
        &self.environment
    }

    /// The user who owns the wallet (a create must name them).
    pub fn owner(&self) -> &UserId {
        &self.owner
    }

    /// Sets `accountAddress`.
    pub fn account_address(mut self, address: impl Into<String>) -> Self {
        self.account_address = address.into();
        self
    }

    /// Sets `chainName`.
    pub fn chain(mut self, chain: WaasChainEnum) -> Self {
        self.chain = chain;
        self
    }

    /// Sets `thresholdSignatureScheme`.
    pub fn threshold_signature_scheme(mut self, scheme: ThresholdSignatureScheme) -> Self {
        self.threshold_signature_scheme = scheme;
        self
    }

    /// Sets `derivationPath`.
    pub fn derivation_path(mut self, path: impl Into<String>) -> Self {
        self.derivation_path = path.into();
        self
    }

    /// Adds a key share that is already backed up: a create for this wallet is then refused
    /// with 422 `key_share_already_backed_up`.
    pub fn key_share(mut self, share: WalletKeyShareInfo) -> Self {
        self.key_shares.push(share);
        self
    }

    /// Adds a key share backed up to `location`, with a fresh id and no password.
    pub fn backed_up_to(self, location: &str) -> Self {
        self.key_share(key_share(&Uuid::new_v4().to_string(), location, None))
    }

    /// Adds a key share with any id and external id the server could send, valid or not:
    /// to play a hostile or careless server (escape sequences, line breaks, very long ids).
    ///
    /// ```
    /// use dynamic_waas_sandbox::{Seed, Wallet};
    ///
    /// let seed = Seed::example();
    /// let hostile = Wallet::new(seed.wallet_id.clone(), seed.environment_id.clone(), seed.user_id.clone())
    ///     .key_share_with_ids("googleDrive", "\u{1b}[2J\u{1b}]0;owned\u{7}", Some("\n\rspoof"));
    /// # let _ = hostile;
    /// ```
    pub fn key_share_with_ids(self, location: &str, id: &str, external: Option<&str>) -> Self {
        self.key_share(key_share(id, location, external))
    }
}

/// A pregenerated wallet and the user who owns it (see [`SandboxBuilder::pregenerated`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pregenerated {
    /// The environment the wallet is in.
    pub environment_id: EnvironmentId,
    /// The wallet, with no key shares.
    pub wallet_id: WalletId,
    /// The user who owns it.
    pub user_id: UserId,
}

/// A UUID v4 from a seeded generator: the same `n`, the same id.
fn deterministic_uuid(n: u64) -> Uuid {
    let mut rng = fastrand::Rng::with_seed(n ^ 0x005e_ed0f_ba11);
    uuid::Builder::from_random_bytes(rng.u128(..).to_le_bytes()).into_uuid()
}

/// A key share as a wallet read shows it, built from JSON so that fields upstream adds later
/// need no edit here.
pub(crate) fn key_share(id: &str, location: &str, external: Option<&str>) -> WalletKeyShareInfo {
    let mut share = serde_json::json!({
        "id": id,
        "backupLocation": location,
        "passwordEncrypted": false,
    });
    if let Some(external) = external {
        share["externalKeyShareId"] = serde_json::json!(external);
    }
    // Only a field upstream made required could fail this: a breaking change of the spec,
    // which fails this crate's own tests first.
    serde_json::from_value(share).expect("a key share of upstream's shape")
}

/// The seeded state of a sandbox, and how it behaves; [`start`](Self::start) it.
///
/// An environment exists as soon as a token, user or wallet names it. A wallet's owner is
/// added as a user of the wallet's environment unless [`user`](Self::user) put them
/// elsewhere (which seeds a wallet whose creates get 404, as upstream would).
///
/// ```
/// use dynamic_waas_sandbox::{EnvironmentId, RateLimit, SandboxBuilder, UserId, Wallet, WalletId};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let environment = EnvironmentId::random();
/// let alice = UserId::random();
/// let sandbox = SandboxBuilder::new()
///     .token("dyn_test_token", environment.clone())
///     .user(alice.clone(), environment.clone())
///     .wallet(Wallet::new(WalletId::random(), environment.clone(), alice.clone()))
///     .wallet(Wallet::new(WalletId::random(), environment, alice).backed_up_to("googleDrive"))
///     .accepted_locations(["googleDrive", "iCloud", "paperWallet"])
///     .rate_limit(RateLimit::new(100, Duration::from_secs(60)))
///     .start()
///     .await;
/// assert!(sandbox.uri().starts_with("http://127.0.0.1:"));
/// # }
/// ```
#[derive(Clone, Default)]
pub struct SandboxBuilder {
    pub(crate) tokens: Vec<(String, EnvironmentId)>,
    pub(crate) users: Vec<(UserId, EnvironmentId)>,
    pub(crate) wallets: Vec<Wallet>,
    pub(crate) accepted_locations: Option<Vec<String>>,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) rate_limits: Option<RateLimits>,
    pub(crate) read_lag: std::time::Duration,
    pub(crate) lagging_duplicate_check: bool,
}

impl SandboxBuilder {
    /// An empty sandbox: no tokens, users or wallets; the known locations; no rate limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// An API token that may use `environment` (and no other). Adding a token again moves it.
    pub fn token(
        mut self,
        token: impl Into<String>,
        environment: impl Into<EnvironmentId>,
    ) -> Self {
        self.tokens.push((token.into(), environment.into()));
        self
    }

    /// A user of `environment`. Adding a user again moves them.
    pub fn user(mut self, user: impl Into<UserId>, environment: impl Into<EnvironmentId>) -> Self {
        self.users.push((user.into(), environment.into()));
        self
    }

    /// A wallet (see [`Wallet`]). Adding a wallet id again replaces the wallet.
    pub fn wallet(mut self, wallet: Wallet) -> Self {
        self.wallets.push(wallet);
        self
    }

    /// The `location` values a create accepts; anything else is a 400 naming the field.
    ///
    /// Default: [`KNOWN_LOCATIONS`], what the real service accepts today. Add a value here
    /// (say `paperWallet`, a value no release knows yet) to play a server that has
    /// learnt a value your client has not; leave one out to play a server that refuses it.
    /// Values are compared exactly (`icloud` is not `iCloud`).
    pub fn accepted_locations<I, S>(mut self, locations: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.accepted_locations = Some(locations.into_iter().map(Into::into).collect());
        self
    }

    /// Answers requests over `limit` with 429 and `Retry-After` (see [`RateLimit`]): one
    /// window for every request the sandbox receives, from any client to any environment.
    /// It is kept apart from [`rate_limits`](Self::rate_limits); when both are set, a request
    /// must pass every window.
    ///
    /// ```
    /// use dynamic_waas_sandbox::{RateLimit, Sandbox};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let sandbox = Sandbox::builder()
    ///     .rate_limit(RateLimit::new(100, Duration::from_secs(60)))
    ///     .start()
    ///     .await;
    /// # let _ = sandbox;
    /// # }
    /// ```
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Limits requests per client address and per environment, as upstream does (see
    /// [`RateLimits`], which says how the sandbox tells clients apart). Replaces limits set
    /// by an earlier call; the overall [`rate_limit`](Self::rate_limit) is kept apart.
    ///
    /// ```
    /// use dynamic_waas_sandbox::{RateLimits, Seed};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// // Upstream's limits, a minute lasting a second.
    /// let sandbox = Seed::example()
    ///     .builder()
    ///     .rate_limits(RateLimits::upstream().time_scale(60.0))
    ///     .start()
    ///     .await;
    /// assert_eq!(sandbox.rate_limited(), 0);
    /// # }
    /// ```
    pub fn rate_limits(mut self, limits: RateLimits) -> Self {
        self.rate_limits = Some(limits);
        self
    }

    /// Makes wallet reads lag behind creates by `lag`, as a replicated store does: for
    /// `lag` after a create is applied, reads of its wallet do not show the new key shares.
    /// A second create is still refused at once (the service checks its own state), unless
    /// [`lagging_duplicate_check`](Self::lagging_duplicate_check) is set.
    pub fn read_lag(mut self, lag: std::time::Duration) -> Self {
        self.read_lag = lag;
        self
    }

    /// Makes the service's "already backed up" check read the same lagging replica as wallet
    /// reads (see [`read_lag`](Self::read_lag)): a second create sent within the lag of the
    /// first passes the check and is applied too, leaving the wallet with two sets of key
    /// shares. Upstream gives no guarantee against it: two creates in flight can both pass
    /// its "no key shares yet" check. A client test then counts
    /// [`creates_applied_to`](crate::Sandbox::creates_applied_to) a wallet, not only what the
    /// server refused.
    ///
    /// ```
    /// use dynamic_waas_sandbox::Seed;
    /// use std::time::Duration;
    ///
    /// let harsh = Seed::example()
    ///     .builder()
    ///     .read_lag(Duration::from_millis(1500))
    ///     .lagging_duplicate_check();
    /// # let _ = harsh;
    /// ```
    pub fn lagging_duplicate_check(mut self) -> Self {
        self.lagging_duplicate_check = true;
        self
    }

    /// `count` pregenerated wallets in `environment`, each owned by a user of its own with no
    /// key shares yet, as an integration that backs up wallets in bulk has them. The ids are
    /// deterministic (row `i` always has the same ids), so that an input file written once
    /// matches every run.
    ///
    /// ```
    /// use dynamic_waas_sandbox::{SandboxBuilder, Seed};
    ///
    /// let seed = Seed::example();
    /// let (builder, rows) = SandboxBuilder::new()
    ///     .token(seed.token.clone(), seed.environment_id.clone())
    ///     .pregenerated(seed.environment_id.clone(), 3);
    /// assert_eq!(rows.len(), 3);
    /// let (_, again) = SandboxBuilder::new().pregenerated(seed.environment_id.clone(), 3);
    /// assert_eq!(rows, again);
    /// # let _ = builder;
    /// ```
    pub fn pregenerated(
        mut self,
        environment: impl Into<EnvironmentId>,
        count: usize,
    ) -> (Self, Vec<Pregenerated>) {
        let environment = environment.into();
        let rows: Vec<Pregenerated> = (0..count as u64)
            .map(|i| Pregenerated {
                environment_id: environment.clone(),
                wallet_id: WalletId::from(deterministic_uuid(2 * i)),
                user_id: UserId::from(deterministic_uuid(2 * i + 1)),
            })
            .collect();
        for row in &rows {
            self = self
                .user(row.user_id.clone(), environment.clone())
                .wallet(Wallet::new(
                    row.wallet_id.clone(),
                    environment.clone(),
                    row.user_id.clone(),
                ));
        }
        (self, rows)
    }

    /// Starts the sandbox on a free loopback port.
    pub async fn start(self) -> Sandbox {
        Sandbox::start(self).await
    }
}

impl fmt::Debug for SandboxBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Tokens are credentials, even in a sandbox: only their environments are shown.
        let token_environments: Vec<&str> = self.tokens.iter().map(|(_, e)| e.as_str()).collect();
        f.debug_struct("SandboxBuilder")
            .field("token_environments", &token_environments)
            .field("users", &self.users)
            .field("wallets", &self.wallets)
            .field("accepted_locations", &self.accepted_locations)
            .field("rate_limit", &self.rate_limit)
            .field("rate_limits", &self.rate_limits)
            .field("read_lag", &self.read_lag)
            .field("lagging_duplicate_check", &self.lagging_duplicate_check)
            .finish()
    }
}

/// The ids and token of the example seed: one environment, one token for it, one user, and
/// one wallet of that user with no key shares. The ids are fixed, so that output is
/// reproducible; every sandbox is its own server, so sandboxes never share state.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Seed {
    /// The environment.
    pub environment_id: EnvironmentId,
    /// The wallet, owned by [`user_id`](Self::user_id), with no key shares.
    pub wallet_id: WalletId,
    /// The user.
    pub user_id: UserId,
    /// A token for the environment.
    pub token: String,
}

impl Seed {
    /// The example seed's ids (the user id is the one in upstream's documentation).
    pub fn example() -> Self {
        Self {
            environment_id: EnvironmentId::from(Uuid::from_u128(
                0x0b1c2d3e_4f50_4617_8899_aabbccddeeff,
            )),
            wallet_id: WalletId::from(Uuid::from_u128(0x95b11417_f18f_457f_8804_68e361f9164f)),
            user_id: UserId::from(Uuid::from_u128(0x3c90c3cc_0d44_4b50_8888_8dd25736052a)),
            token: "dyn_sandbox_token_0123456789".to_owned(),
        }
    }

    /// A builder holding this seed, to add more before starting.
    pub fn builder(&self) -> SandboxBuilder {
        SandboxBuilder::new()
            .token(self.token.clone(), self.environment_id.clone())
            .user(self.user_id.clone(), self.environment_id.clone())
            .wallet(Wallet::new(
                self.wallet_id.clone(),
                self.environment_id.clone(),
                self.user_id.clone(),
            ))
    }
}
