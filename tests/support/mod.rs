//! What the facade's tests share: the example ids, the fixtures, a fast policy, a client for a
//! URI, a wiremock server that fails on any unexpected request, a route answering in order,
//! log capture, and the fault proxy.

#![allow(dead_code)] // each test binary uses part of it

pub mod fault_proxy;
pub mod hostile;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use dynamic_waas::{
    BackupLocation, Client, CreatedBackup, Error, LocationRequest, Pacing, RetryPolicy,
};
use dynamic_waas_sandbox::{Sandbox, Seed};
use serde_json::Value;
use wiremock::matchers::{any, method};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

#[allow(unused_imports)] // each test binary uses part of it
pub use fault_proxy::{Answer, Fault, FaultProxy};

// The example ids and paths, shared with the generated client's tests.
#[path = "../../sdk/tests/support/example.rs"]
mod example;
#[allow(unused_imports)] // each test binary uses part of it
pub use example::{create_path, wallet_path, ENV, USER, WALLET};

/// The path of `tests/fixtures/{name}`.
pub fn fixture_path(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `tests/fixtures/{name}` as JSON.
pub fn fixture(name: &str) -> Value {
    let path = fixture_path(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect(&path)
}

/// A `status` answer with `tests/fixtures/{name}` as its JSON body.
pub fn answer(status: u16, name: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(fixture(name))
}

/// The example create's 201.
pub fn created_201() -> ResponseTemplate {
    answer(201, "seed_response_201.json")
}

/// A wiremock server whose catch-all fails the test (when the server drops) on any request no
/// other mock takes.
pub async fn server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(599).set_body_string("unexpected request"))
        .with_priority(u8::MAX)
        .expect(0)
        .named("catch-all: no unexpected request")
        .mount(&server)
        .await;
    server
}

/// A wiremock server answering every request with `response`; with `expect`, it checks when
/// it drops that it took that many.
pub async fn answering(response: ResponseTemplate, expect: Option<u64>) -> MockServer {
    let server = MockServer::start().await;
    expecting(Mock::given(any()).respond_with(response), expect)
        .mount(&server)
        .await;
    server
}

/// A client of a wiremock server with `token` and `policy`.
pub fn mock_client(server: &MockServer, token: &str, policy: RetryPolicy) -> Client {
    client_at(&server.uri(), token, policy)
}

/// The example wallet's create, with one googleDrive location.
pub async fn create_example(client: &Client) -> Result<CreatedBackup, Error> {
    client
        .create_backup_locations(ENV, WALLET, USER, [google_drive()])
        .await
}

/// Every request the server received.
pub async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.expect("recording is on")
}

/// How many `verb` requests the server received.
pub async fn count(server: &MockServer, verb: &str) -> usize {
    requests(server)
        .await
        .iter()
        .filter(|r| r.method.as_str() == verb)
        .count()
}

/// Answers with the given responses in order, then with the last one again.
pub struct InOrder(Mutex<VecDeque<ResponseTemplate>>);

impl InOrder {
    pub fn new(responses: impl IntoIterator<Item = ResponseTemplate>) -> Self {
        let responses: VecDeque<_> = responses.into_iter().collect();
        assert!(!responses.is_empty(), "at least one response");
        Self(Mutex::new(responses))
    }
}

impl Respond for InOrder {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut responses = self.0.lock().unwrap();
        if responses.len() > 1 {
            responses.pop_front().unwrap()
        } else {
            responses[0].clone()
        }
    }
}

/// Mounts a route for `verb` (any path) answering with `responses` in order, the last one
/// again after that. With `expect`, the server checks, when it drops, that the route took that
/// many requests.
pub async fn in_order(
    server: &MockServer,
    verb: &str,
    responses: impl IntoIterator<Item = ResponseTemplate>,
    expect: Option<u64>,
) {
    expecting(
        Mock::given(method(verb)).respond_with(InOrder::new(responses)),
        expect,
    )
    .mount(server)
    .await;
}

/// Mounts a route for `verb` (any path) answering `response`; with `expect`, checked as for
/// [`in_order`].
pub async fn route(
    server: &MockServer,
    verb: &str,
    response: ResponseTemplate,
    expect: Option<u64>,
) {
    in_order(server, verb, [response], expect).await;
}

/// Mounts a route for `verb` requests to `at` (a path) answering `response`.
pub async fn on(
    server: &MockServer,
    verb: &str,
    at: impl Into<String>,
    response: ResponseTemplate,
) {
    Mock::given(method(verb))
        .and(wiremock::matchers::path(at.into()))
        .respond_with(response)
        .mount(server)
        .await;
}

/// `mock`, expecting `expect` requests if given.
pub fn expecting(mock: Mock, expect: Option<u64>) -> Mock {
    match expect {
        Some(n) => mock.expect(n),
        None => mock,
    }
}

/// What this test binary's global subscriber wrote.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The captured output of this test binary's global subscriber, at `level` and above (the
/// first call's level holds for the binary). A global one, not `set_default`: tracing caches
/// each callsite's interest process-wide, and a thread-local subscriber can miss events whose
/// callsites another test's thread registered first. Other tests' events land here too.
pub fn captured_logs(level: tracing::Level) -> Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        logs
    })
    .clone()
}

/// Short waits so the suite stays fast; the rules are the same as the defaults'.
pub fn fast() -> RetryPolicy {
    RetryPolicy::default()
        .with_initial_backoff(Duration::from_millis(10))
        .with_max_backoff(Duration::from_millis(50))
        .with_max_retry_after(Duration::from_secs(5))
        .with_attempt_timeout(Duration::from_secs(5))
        .with_total_timeout(Duration::from_secs(20))
        // The sandbox's reads are current unless a test sets a lag (and a settle_after).
        .with_settle_after(Duration::from_millis(100))
}

/// A client of `uri` with `token` and `policy`.
pub fn client_at(uri: &str, token: &str, policy: RetryPolicy) -> Client {
    Client::builder()
        .base_url(uri)
        .token(token.to_owned())
        .retry_policy(policy)
        // Loopback servers have no limits to respect; the pacing tests set their own.
        .pacing(Pacing::unlimited())
        .build()
        .unwrap()
}

/// A client of `uri` whose tokens come from `provider`, with `policy`.
pub fn provider_client_at(
    uri: &str,
    provider: impl dynamic_waas::TokenProvider,
    policy: RetryPolicy,
) -> Client {
    Client::builder()
        .base_url(uri)
        .token_provider(provider)
        .retry_policy(policy)
        .pacing(Pacing::unlimited())
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
                &self.seed.user_id,
                locations.to_vec(),
            )
            .await
    }

    /// Backs up a pregenerated wallet (see [`with_wallets`]) to Google Drive.
    pub async fn create_for(
        &self,
        row: &dynamic_waas_sandbox::Pregenerated,
    ) -> Result<CreatedBackup, Error> {
        create_pregenerated(&self.client, row).await
    }

    /// The key share ids the sandbox holds for the example wallet.
    pub fn stored_ids(&self) -> Vec<String> {
        self.stored_ids_of(&self.seed.wallet_id)
    }

    /// The key share ids the sandbox holds for `wallet`.
    pub fn stored_ids_of(&self, wallet: &dynamic_waas::WalletId) -> Vec<String> {
        self.sandbox
            .key_shares(wallet)
            .unwrap()
            .iter()
            .map(|s| s.id.to_string())
            .collect()
    }

    pub fn applied(&self) -> usize {
        self.sandbox.creates_applied_to(&self.seed.wallet_id)
    }
}

/// The example wallet (of `Seed::example()`), to change before seeding it.
pub fn example_wallet() -> dynamic_waas_sandbox::Wallet {
    let seed = Seed::example();
    dynamic_waas_sandbox::Wallet::new(seed.wallet_id, seed.environment_id, &seed.user_id)
}

/// The example sandbox with its wallet replaced by `wallet`, and its seed.
pub async fn seeded_with(wallet: dynamic_waas_sandbox::Wallet) -> (Sandbox, Seed) {
    let seed = Seed::example();
    let sandbox = seed.builder().wallet(wallet).start().await;
    (sandbox, seed)
}

/// The example seed with `count` pregenerated wallets, each of its own user, in its
/// environment (see `SandboxBuilder::pregenerated`).
pub fn with_wallets(
    count: usize,
) -> (
    dynamic_waas_sandbox::SandboxBuilder,
    Vec<dynamic_waas_sandbox::Pregenerated>,
) {
    let seed = Seed::example();
    seed.builder().pregenerated(&seed.environment_id, count)
}

/// `client` backs up a pregenerated wallet (see [`with_wallets`]) to Google Drive, for the
/// user who owns it.
pub async fn create_pregenerated(
    client: &Client,
    row: &dynamic_waas_sandbox::Pregenerated,
) -> Result<CreatedBackup, Error> {
    client
        .create_backup_locations(
            &row.environment_id,
            &row.wallet_id,
            &row.user_id,
            [google_drive()],
        )
        .await
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

/// A bulk job backing up a pregenerated wallet (see [`with_wallets`]) to Google Drive.
pub fn job(row: &dynamic_waas_sandbox::Pregenerated) -> dynamic_waas::BackupJob {
    dynamic_waas::BackupJob::new(
        &row.environment_id,
        &row.wallet_id,
        &row.user_id,
        [google_drive()],
    )
    .unwrap()
}

/// The key share ids the sandbox holds for `row`'s wallet.
pub fn held(sandbox: &Sandbox, row: &dynamic_waas_sandbox::Pregenerated) -> Vec<String> {
    let shares = sandbox.key_shares(&row.wallet_id).unwrap();
    shares.iter().map(|s| s.id.to_string()).collect()
}

/// The key share ids of a bulk outcome.
pub fn outcome_ids(outcome: &dynamic_waas::BackupOutcome) -> Vec<String> {
    outcome
        .key_shares
        .iter()
        .map(|s| s.key_share_id.to_string())
        .collect()
}
