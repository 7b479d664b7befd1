//! A sandbox of Dynamic's WaaS key-share backup API on loopback, for tests: yours, this
//! crate's and the CLI's.
//!
//! [`Sandbox`] is a stateful fake of the two operations, served over real HTTP by
//! [wiremock](https://docs.rs/wiremock). It answers as the real service does, with upstream's
//! statuses and bodies, in upstream's order:
//!
//! | check | answer |
//! |---|---|
//! | over a [`RateLimit`] or [`RateLimits`] (per client address, per environment), if set | 429 `{"error": "Too many requests. Please try again later."}` with `Retry-After` in seconds |
//! | no bearer token / an unknown one | 401 `{"error": "No jwt provided!"}` / `{"error": "Invalid token"}` |
//! | a token for another environment | 403 `{"error": "Access Forbidden"}` |
//! | a malformed `walletId`, body, `userId`, `location`, `keygenId`, ... | 400 `{"error": "<message naming the field>"}` (a malformed `environmentId` is no environment the token may use: 403) |
//! | a body over [`MAX_BODY_BYTES`] | 413 |
//! | unknown wallet, user not in the environment, wallet of another user | 404 `{"error": "Not Found", "code": "not_found"}` |
//! | create on a wallet that has key shares | 422 `{"error": "...", "code": "key_share_already_backed_up"}` |
//! | create | 201 with one `{location, keyShareId, externalKeyShareId}` per location; the shares are recorded on the wallet |
//! | read | 200 `{"wallet": {...}}` with the wallet's key shares |
//! | any other method or path | 404 `{"error": "the sandbox has no route ...", "code": "unknown_route"}` |
//!
//! Which `location` values a create accepts is configurable
//! ([`SandboxBuilder::accepted_locations`], default [`KNOWN_LOCATIONS`]), to play a server
//! that knows a value your client does not.
//!
//! Tests script what goes wrong with [`Fault`]s, for the next requests
//! ([`Sandbox::fail_next`]) or at a [`Rate`] ([`Sandbox::fail_at_rate`]). They can set
//! upstream's rate limits ([`RateLimits::upstream`]: 1,500 requests a minute per client
//! address and 3,000 per environment, on a [time scale](RateLimits::time_scale) so that a
//! minute lasts a second; the client's address is the first `X-Forwarded-For` entry, so that
//! a test can play several machines) or one [`RateLimit`] for everything. They inspect every
//! request received ([`Sandbox::requests`], tokens redacted), how many there were and how
//! many the limits refused ([`Sandbox::requests_received`], [`Sandbox::rate_limited`]), the
//! creates applied and the key shares on a wallet.
//!
//! # Example: a consumer test
//!
//! A service's test, through the facade: a proxy loses the create's response after the
//! server applied it, and the client still returns the key share ids, having sent the create
//! exactly once.
//!
//! ```
//! use dynamic_waas_sandbox::{Fault, FaultResponse, Operation, Sandbox};
//! use dynamic_waas::{BackupLocation, Client};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (sandbox, seed) = Sandbox::seeded().await;
//! let client = Client::builder()
//!     .base_url(sandbox.uri())
//!     .token(seed.token.clone())
//!     .build()?;
//!
//! // The server applies the create, but a proxy answers 502.
//! sandbox.fail_next(
//!     Operation::Create,
//!     1,
//!     Fault::ApplyThenRespond(FaultResponse::new(502).html("<h1>Bad Gateway</h1>")),
//! );
//! let created = client
//!     .create_backup_locations(
//!         &seed.environment_id,
//!         &seed.wallet_id,
//!         seed.user_id,
//!         [BackupLocation::GoogleDrive.into()],
//!     )
//!     .await?;
//!
//! // Reconciled from a wallet read: the ids are the ones the server recorded.
//! assert!(created.is_reconciled());
//! let recorded = sandbox.key_shares(&seed.wallet_id).unwrap();
//! assert_eq!(created.locations_with_key_shares()[0].key_share_id, recorded[0].id);
//! assert_eq!(sandbox.creates_applied(), 1);
//!
//! // Every request was recorded (the create, then the read), the token redacted.
//! let requests = sandbox.requests();
//! assert_eq!(requests.len(), 2);
//! assert_eq!(requests[0].header("authorization"), Some("Bearer [redacted]"));
//! # Ok(())
//! # }
//! ```
//!
//! Start a sandbox from a Tokio runtime (`#[tokio::test]` is enough, current-thread or not):
//! wiremock serves it from a thread of its own, and the inspection methods are synchronous.
//! Each [`Sandbox`] is a separate server with separate state, so tests can run in parallel.

#![forbid(unsafe_code)]

mod access;
mod create;
mod faults;
mod rate_limit;
mod read;
mod record;
mod reply;
mod responder;
mod routes;
mod seed;
mod state;
mod validate;
mod world;

use std::fmt;
use std::sync::{Arc, Mutex};

use dynamic_waas_api::types::WalletKeyShareInfo;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer};

/// The id types the sandbox's seeds take (each also from a [`uuid::Uuid`]).
pub use dynamic_waas_api::ids::{EnvironmentId, UserId, WalletId};
pub use faults::{Fault, FaultResponse, Operation, Rate, Target};
pub use rate_limit::{RateLimit, RateLimits};
pub use record::{RecordedBody, RecordedRequest, RECORDED_BODY_LIMIT, RECORDED_REQUESTS_LIMIT};
pub use seed::{Pregenerated, SandboxBuilder, Seed, Wallet, KNOWN_LOCATIONS};
/// The `uuid` crate, whose `Uuid` every id converts from.
pub use uuid;
pub use validate::MAX_BODY_BYTES;

use responder::{lock, Responder};
use state::State;

/// A running sandbox: an HTTP server on `127.0.0.1` and the state it serves. Dropping it stops
/// the server.
pub struct Sandbox {
    server: MockServer,
    state: Arc<Mutex<State>>,
}

impl Sandbox {
    /// An empty [`SandboxBuilder`].
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::new()
    }

    /// Starts a sandbox seeded by `builder` on a free loopback port.
    pub async fn start(builder: SandboxBuilder) -> Sandbox {
        Self::start_with(builder, None).await
    }

    /// Starts a sandbox seeded by `builder` on `listener` (for a fixed port, say
    /// `TcpListener::bind("127.0.0.1:8080")`).
    pub async fn start_on(builder: SandboxBuilder, listener: std::net::TcpListener) -> Sandbox {
        Self::start_with(builder, Some(listener)).await
    }

    async fn start_with(
        builder: SandboxBuilder,
        listener: Option<std::net::TcpListener>,
    ) -> Sandbox {
        let state = Arc::new(Mutex::new(State::new(&builder)));
        // The sandbox keeps its own log (with tokens redacted and bodies bounded); wiremock's
        // would hold every body a second time.
        let mut server = MockServer::builder().disable_request_recording();
        if let Some(listener) = listener {
            server = server.listener(listener);
        }
        let server = server.start().await;
        Mock::given(any())
            .respond_with(Responder {
                state: Arc::clone(&state),
            })
            .named("dynamic_waas_sandbox::Sandbox")
            .mount(&server)
            .await;
        Sandbox { server, state }
    }

    /// Starts the example sandbox (see [`Seed::example`]): one environment, a token for it,
    /// one user, and their wallet with no key shares.
    pub async fn seeded() -> (Sandbox, Seed) {
        let seed = Seed::example();
        (Sandbox::start(seed.builder()).await, seed)
    }

    /// The base URL, like `http://127.0.0.1:PORT`; the API's paths are directly under it.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// Gives the next `count` requests that `target` matches `fault`. Queued faults are used
    /// in order, before any [`fail_at_rate`](Self::fail_at_rate) rule; a request taken by
    /// one is not seen by the rules.
    pub fn fail_next(&self, target: impl Into<Target>, count: usize, fault: impl Into<Fault>) {
        lock(&self.state)
            .faults
            .push_next(target.into(), count, fault.into());
    }

    /// Gives requests that `target` matches `fault` at `rate`, until
    /// [`clear_faults`](Self::clear_faults). Each rule counts the requests it sees; when
    /// several fire, the first added wins.
    pub fn fail_at_rate(&self, target: impl Into<Target>, rate: Rate, fault: impl Into<Fault>) {
        lock(&self.state)
            .faults
            .push_rule(target.into(), rate, fault.into());
    }

    /// Drops every queued fault and rule.
    pub fn clear_faults(&self) {
        lock(&self.state).faults.clear();
    }

    /// Sets (or, with `None`, lifts) the overall rate limit (see
    /// [`SandboxBuilder::rate_limit`]). Setting one starts with an empty window; the limits per
    /// client and per environment are left as they are.
    ///
    /// ```
    /// use dynamic_waas_sandbox::{RateLimit, Sandbox};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (sandbox, _seed) = Sandbox::seeded().await;
    /// sandbox.set_rate_limit(Some(RateLimit::new(1, Duration::from_secs(1))));
    /// sandbox.set_rate_limit(None);
    /// # }
    /// ```
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        lock(&self.state).limiter.set_overall(limit);
    }

    /// Sets (or, with `None`, lifts) the limits per client address and per environment (see
    /// [`RateLimits`]). Setting them starts with empty windows; the overall
    /// [`rate_limit`](SandboxBuilder::rate_limit) is left as it is.
    ///
    /// ```
    /// use dynamic_waas_sandbox::{RateLimits, Sandbox};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (sandbox, _seed) = Sandbox::seeded().await;
    /// sandbox.set_rate_limits(Some(RateLimits::upstream().time_scale(60.0)));
    /// sandbox.set_rate_limits(None);
    /// # }
    /// ```
    pub fn set_rate_limits(&self, limits: Option<RateLimits>) {
        lock(&self.state).limiter.set_limits(limits);
    }

    /// How many requests the rate limits refused, each with upstream's 429 (unless a
    /// [`Fault::ApplyThenRespond`] answered for it). A test that drives a client into the
    /// limits checks with it that the client backed off rather than hammered.
    ///
    /// ```
    /// use dynamic_waas_sandbox::{RateLimit, RateLimits, Sandbox};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), reqwest::Error> {
    /// let (sandbox, seed) = Sandbox::seeded().await;
    /// let one_a_minute = RateLimit::new(1, Duration::from_secs(60));
    /// sandbox.set_rate_limits(Some(RateLimits::new().per_client(one_a_minute)));
    /// let url = format!("{}/environments/{}/waas/{}", sandbox.uri(), seed.environment_id, seed.wallet_id);
    /// for _ in 0..3 {
    ///     reqwest::Client::new().get(&url).bearer_auth(&seed.token).send().await?;
    /// }
    /// assert_eq!(sandbox.requests_received(), 3);
    /// assert_eq!(sandbox.rate_limited(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn rate_limited(&self) -> usize {
        lock(&self.state).rate_limited
    }

    /// How many requests reached the sandbox: every one, on any route, refused or not (rate
    /// limited, faulted, unknown). Unlike [`requests`](Self::requests), it is never cleared
    /// or capped.
    ///
    /// ```
    /// use dynamic_waas_sandbox::Sandbox;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), reqwest::Error> {
    /// let (sandbox, _seed) = Sandbox::seeded().await;
    /// reqwest::get(format!("{}/no/such/route", sandbox.uri())).await?;
    /// sandbox.clear_requests();
    /// assert_eq!(sandbox.requests_received(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn requests_received(&self) -> usize {
        lock(&self.state).requests_received
    }

    /// Sets how long wallet reads lag behind creates (see [`SandboxBuilder::read_lag`]).
    pub fn set_read_lag(&self, lag: std::time::Duration) {
        lock(&self.state).read_lag = lag;
    }

    /// From now on, a create also accepts `location` (see
    /// [`SandboxBuilder::accepted_locations`]).
    pub fn accept_location(&self, location: &str) {
        let mut state = lock(&self.state);
        if !state
            .accepted_locations
            .iter()
            .any(|known| known == location)
        {
            state.accepted_locations.push(location.to_owned());
        }
    }

    /// Every request received so far (the last [`RECORDED_REQUESTS_LIMIT`]), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).log.snapshot()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        lock(&self.state).log.clear();
    }

    /// How many creates were applied, on all wallets; a create is applied even when a
    /// fault hides its answer.
    pub fn creates_applied(&self) -> usize {
        lock(&self.state).creates.values().sum()
    }

    /// How many creates the sandbox received, applied or not, faults included: what a client
    /// **sent**. A test that counts only the creates applied would pass for a client that
    /// resends blindly, since the sandbox refuses the duplicate.
    pub fn creates_received(&self) -> usize {
        lock(&self.state).creates_received
    }

    /// How many creates were applied to `wallet`.
    pub fn creates_applied_to(&self, wallet: &WalletId) -> usize {
        lock(&self.state).creates.get(wallet).copied().unwrap_or(0)
    }

    /// The key shares on `wallet` now (seeded and created), as a read returns them; `None`
    /// when the sandbox has no such wallet.
    pub fn key_shares(&self, wallet: &WalletId) -> Option<Vec<WalletKeyShareInfo>> {
        lock(&self.state)
            .world
            .wallets
            .get(wallet)
            .map(|found| found.key_shares.clone())
    }
}

// Tests share a sandbox between tasks and hold it across `.await`s.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Sandbox>();
};

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox")
            .field("uri", &self.uri())
            .finish_non_exhaustive()
    }
}

// The crate README's examples compile, as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
