//! Authentication and transport safety of the facade, over real HTTP on loopback: tokens
//! from the environment, refused tokens, rotation through a `TokenProvider`, redaction in logs
//! and errors, request headers, plain-http refusal and redirects. On the sandbox
//! (`dynamic_waas_sandbox`) where it models the case; on wiremock where the point is which
//! token was sent (the sandbox's log redacts it) or a redirect to routes it does not serve.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use dynamic_waas::{
    Client, ClientBuilder, Error, ErrorKind, Token, TokenError, TokenFuture, TokenProvider,
    REFRESH_AHEAD,
};
use dynamic_waas_sandbox::{FaultResponse, Operation, Rate, RecordedRequest, Sandbox, Target};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

mod support;
use support::{
    answering, create_example as create, create_path, created_201, fast, requests, wallet_path,
    ENV, USER, WALLET,
};

fn wallet_200() -> ResponseTemplate {
    support::answer(200, "wallet_with_key_shares.json")
}

fn unauthorized_401() -> ResponseTemplate {
    ResponseTemplate::new(401).set_body_json(serde_json::json!({"error": "Unauthorized"}))
}

fn client(server: &MockServer, token: &str) -> Client {
    support::mock_client(server, token, fast())
}

/// A server answering every read of the example wallet with it.
async fn wallet_server() -> MockServer {
    let server = MockServer::start().await;
    support::on(&server, "GET", wallet_path(), wallet_200()).await;
    server
}

fn provider_client(server: &MockServer, provider: impl TokenProvider) -> Client {
    support::provider_client_at(&server.uri(), provider, fast())
}

/// The example sandbox. It knows none of this file's tokens but its seed's, and refuses
/// every other with 401.
async fn sandbox() -> Sandbox {
    Sandbox::seeded().await.0
}

/// A client of `sandbox` with `token`.
fn sandbox_client(sandbox: &Sandbox, token: &str) -> Client {
    support::client_at(&sandbox.uri(), token, fast())
}

/// The `Authorization` header wiremock received.
fn auth_of(request: &Request) -> Option<&str> {
    let value = request.headers.get("authorization")?;
    Some(value.to_str().expect("ASCII header"))
}

/// Asserts the server received exactly these tokens, in order.
async fn assert_tokens(server: &MockServer, tokens: &[&str]) {
    let seen: Vec<Option<String>> = requests(server)
        .await
        .iter()
        .map(|r| auth_of(r).map(str::to_owned))
        .collect();
    let expected: Vec<Option<String>> =
        tokens.iter().map(|t| Some(format!("Bearer {t}"))).collect();
    assert_eq!(seen, expected);
}

#[track_caller]
fn assert_invalid_input(err: &Error, expected_field: &str) -> String {
    match err.kind() {
        ErrorKind::InvalidInput { field, reason } => {
            assert_eq!(field, expected_field, "{err}");
            assert_eq!(err.attempts(), 0, "{err}");
            reason.clone()
        }
        other => panic!("expected InvalidInput({expected_field}), got {other:?}: {err}"),
    }
}

/// Hands out `dyn_token_1`, `dyn_token_2`, ... (call n gives token n), counting calls;
/// from call `fail_from` on it fails.
#[derive(Clone)]
struct Scripted {
    calls: Arc<AtomicUsize>,
    prefix: &'static str,
    ttl: Option<Duration>,
    fail_from: usize,
    delay: Duration,
}

impl Scripted {
    fn new() -> Self {
        Self {
            calls: Arc::new(AtomicUsize::new(0)),
            prefix: "dyn_token_",
            ttl: None,
            fail_from: usize::MAX,
            delay: Duration::ZERO,
        }
    }
    fn calls(&self) -> usize {
        self.calls.load(SeqCst)
    }
    fn fail_from(self, fail_from: usize) -> Self {
        Self { fail_from, ..self }
    }
    fn ttl(self, ttl: Duration) -> Self {
        Self {
            ttl: Some(ttl),
            ..self
        }
    }
    fn delay(self, delay: Duration) -> Self {
        Self { delay, ..self }
    }
}

impl TokenProvider for Scripted {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, SeqCst) + 1;
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            if n >= self.fail_from {
                return Err(TokenError::new(format!(
                    "the secret store is down (call {n})"
                )));
            }
            let token = Token::new(format!("{}{n}", self.prefix));
            Ok(match self.ttl {
                Some(ttl) => token.expires_in(ttl),
                None => token,
            })
        })
    }
}

// ---------------------------------------------------------------------------------------
// 1. Token from the environment
// ---------------------------------------------------------------------------------------

/// All environment cases in one function: the variables are process-global.
#[tokio::test]
async fn token_from_env_prefers_dynamic_api_token_then_dyn_api_token() {
    const PRIMARY: &str = "DYNAMIC_API_TOKEN";
    const FALLBACK: &str = "DYN_API_TOKEN";
    assert_eq!(dynamic_waas::TOKEN_ENV_VARS, [PRIMARY, FALLBACK]);
    let saved: Vec<_> = [PRIMARY, FALLBACK].map(|n| (n, std::env::var_os(n))).into();

    let server = wallet_server().await;
    let read_with_env_token = |expected: &'static str| {
        let uri = server.uri();
        let server = &server;
        async move {
            let client = Client::builder()
                .base_url(uri)
                .token_from_env()
                .expect("a token is set")
                .retry_policy(fast())
                .build()
                .expect("valid token");
            client.get_wallet(ENV, WALLET).await.expect("wallet read");
            let last = requests(server).await.pop().expect("a request");
            assert_eq!(auth_of(&last), Some(&*format!("Bearer {expected}")));
        }
    };

    // Neither set: the error names both.
    std::env::remove_var(PRIMARY);
    std::env::remove_var(FALLBACK);
    let err = ClientBuilder::default().token_from_env().unwrap_err();
    let reason = assert_invalid_input(&err, "token");
    let text = err.to_string();
    for name in [PRIMARY, FALLBACK] {
        assert!(reason.contains(name), "{reason}");
        assert!(text.contains(name), "{text}");
    }
    // Client::from_env goes the same way.
    let err = Client::from_env().unwrap_err();
    assert!(
        err.to_string().contains(PRIMARY) && err.to_string().contains(FALLBACK),
        "{err}"
    );

    // Only the fallback.
    std::env::set_var(FALLBACK, "dyn_env_fallback");
    read_with_env_token("dyn_env_fallback").await;

    // Both: DYNAMIC_API_TOKEN wins.
    std::env::set_var(PRIMARY, "dyn_env_primary");
    read_with_env_token("dyn_env_primary").await;

    // Only the primary.
    std::env::remove_var(FALLBACK);
    read_with_env_token("dyn_env_primary").await;

    // A token with a trailing newline (as `echo` leaves it) is refused at build.
    std::env::set_var(PRIMARY, "dyn_env_primary\n");
    let err = Client::builder()
        .base_url(server.uri())
        .token_from_env()
        .expect("read")
        .build()
        .unwrap_err();
    assert_invalid_input(&err, "token");
    assert!(
        !format!("{err} {err:?}").contains("dyn_env_primary"),
        "{err:?}"
    );

    for (name, value) in saved {
        match value {
            Some(v) => std::env::set_var(name, v),
            None => std::env::remove_var(name),
        }
    }
    assert_eq!(requests(&server).await.len(), 3);
}

// ---------------------------------------------------------------------------------------
// 2. Tokens that cannot go in a header
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn tokens_with_white_space_or_control_characters_are_refused_and_nothing_is_sent() {
    let server = answering(created_201(), Some(0)).await;

    for bad in [
        "dyn_abc\n",
        " dyn_abc",
        "dyn_abc ",
        "dyn abc",
        "dyn\tabc",
        "dyn_abc\r\n",
        "dyn_abc\u{0}",
        "dyn_abc\u{7f}",
        "dyn_abc\u{1b}[31m",
        "dyn_\u{a0}abc",
        "",
    ] {
        let err = Client::builder()
            .base_url(server.uri())
            .token(bad.to_owned())
            .build()
            .unwrap_err();
        let reason = assert_invalid_input(&err, "token");
        assert!(!reason.is_empty());
        let text = err.to_string();
        assert!(
            text.contains("token") && text.contains("nothing was sent"),
            "{text}"
        );
        assert!(
            !text.contains('\n') && !text.contains('\r'),
            "one line: {text:?}"
        );
        if !bad.trim().is_empty() {
            assert!(!text.contains(bad.trim()), "the token leaked: {text}");
        }
    }
    let err = Client::builder()
        .base_url(server.uri())
        .token("dyn_abc\n")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("white space"), "{err}");

    // The same from a provider: refused when the call needs it, nothing is sent.
    struct Bad;
    impl TokenProvider for Bad {
        fn token(&self) -> TokenFuture<'_> {
            Box::pin(async { Ok(Token::new("dyn_from_provider\n")) })
        }
    }
    let client = provider_client(&server, Bad);
    let err = create(&client).await.unwrap_err();
    assert_invalid_input(&err, "token");
    assert!(
        !format!("{err} {err:?}").contains("dyn_from_provider"),
        "{err:?}"
    );
    let err = client.get_wallet(ENV, WALLET).await.unwrap_err();
    assert_invalid_input(&err, "token");

    assert!(requests(&server).await.is_empty());
}

// ---------------------------------------------------------------------------------------
// 3. Rotation through a TokenProvider
// ---------------------------------------------------------------------------------------

async fn rotation_server() -> MockServer {
    let server = MockServer::start().await;
    for (verb, at, answer) in [
        ("POST", create_path(), created_201()),
        ("GET", wallet_path(), wallet_200()),
    ] {
        Mock::given(header("authorization", "Bearer dyn_token_1"))
            .and(path(at.clone()))
            .respond_with(unauthorized_401())
            .mount(&server)
            .await;
        Mock::given(method(verb))
            .and(path(at))
            .and(header("authorization", "Bearer dyn_token_2"))
            .respond_with(answer)
            .mount(&server)
            .await;
    }
    server
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_and_retries() {
    // The create.
    let server = rotation_server().await;
    let provider = Scripted::new();
    let client = provider_client(&server, provider.clone());
    let created = create(&client)
        .await
        .expect("created with the second token");
    assert_eq!(created.attempts(), 2);
    assert_eq!(
        provider.calls(),
        2,
        "the first fetch and exactly one refresh"
    );
    assert_tokens(&server, &["dyn_token_1", "dyn_token_2"]).await;

    // The refreshed token is cached: the next call asks nobody and succeeds at once.
    let created = create(&client).await.expect("created");
    assert_eq!(created.attempts(), 1);
    assert_eq!(provider.calls(), 2);

    // The wallet read, on a fresh client.
    let server = rotation_server().await;
    let provider = Scripted::new();
    let client = provider_client(&server, provider.clone());
    client
        .get_wallet(ENV, WALLET)
        .await
        .expect("read with the second token");
    assert_eq!(provider.calls(), 2);
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn a_server_refusing_every_token_gives_unauthorized_after_one_refresh() {
    let server = answering(unauthorized_401(), None).await;
    let provider = Scripted::new();
    let client = provider_client(&server, provider.clone());

    let err = create(&client).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unauthorized, "{err}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(401));
    assert_eq!(err.attempts(), 2);
    assert_eq!(provider.calls(), 2);
    assert_tokens(&server, &["dyn_token_1", "dyn_token_2"]).await;

    let err = client.get_wallet(ENV, WALLET).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unauthorized, "{err}");
    assert_eq!(err.attempts(), 2);
    // The refused token is not sent again: the second call starts with a new one, then
    // refreshes once more.
    assert_eq!(provider.calls(), 4);
    assert_tokens(
        &server,
        &["dyn_token_1", "dyn_token_2", "dyn_token_3", "dyn_token_4"],
    )
    .await;

    // A fixed token cannot be refreshed: one request.
    let refusing = sandbox().await;
    let err = create(&sandbox_client(&refusing, "dyn_fixed"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unauthorized);
    assert_eq!(err.attempts(), 1);
    assert_eq!(refusing.requests().len(), 1);
}

fn client_for(server: &MockServer) -> Client {
    client(server, "dyn_fixed")
}

#[tokio::test]
async fn a_failing_provider_with_no_cached_token_sends_nothing() {
    let server = answering(created_201(), Some(0)).await;
    let provider = Scripted::new().fail_from(1);
    let client = provider_client(&server, provider.clone());

    let err = create(&client).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::TokenUnavailable, "{err}");
    assert_eq!(err.attempts(), 0);
    assert!(
        format!("{err:#}").contains("the secret store is down"),
        "the cause is shown: {err}"
    );
    let err = client.get_wallet(ENV, WALLET).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::TokenUnavailable, "{err}");
    // A failure is not cached: each call asks again.
    assert_eq!(provider.calls(), 2);
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn a_token_expiring_within_refresh_ahead_is_refreshed_on_the_next_call() {
    let server = wallet_server().await;

    // Valid for less than REFRESH_AHEAD: asked again on every call.
    let short = Scripted::new().ttl(REFRESH_AHEAD - Duration::from_secs(20));
    let client = provider_client(&server, short.clone());
    client.get_wallet(ENV, WALLET).await.unwrap();
    assert_eq!(short.calls(), 1);
    client.get_wallet(ENV, WALLET).await.unwrap();
    assert_eq!(short.calls(), 2);
    assert_tokens(&server, &["dyn_token_1", "dyn_token_2"]).await;

    // Valid well beyond REFRESH_AHEAD: cached.
    let long = Scripted::new().ttl(REFRESH_AHEAD + Duration::from_secs(600));
    let client = provider_client(&server, long.clone());
    for _ in 0..3 {
        client.get_wallet(ENV, WALLET).await.unwrap();
    }
    assert_eq!(long.calls(), 1);
}

#[tokio::test]
async fn a_failed_refresh_keeps_a_still_valid_token_but_not_an_expired_or_refused_one() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(wallet_path()))
        .and(header("authorization", "Bearer dyn_token_1"))
        .respond_with(wallet_200())
        .mount(&server)
        .await;

    // Due for refresh (inside REFRESH_AHEAD) but still valid: the refresh fails, the call
    // goes on with the current token.
    let provider = Scripted::new().ttl(Duration::from_secs(10)).fail_from(2);
    let client = provider_client(&server, provider.clone());
    client.get_wallet(ENV, WALLET).await.expect("first token");
    client
        .get_wallet(ENV, WALLET)
        .await
        .expect("still the first token");
    assert_eq!(provider.calls(), 2, "a refresh was attempted");
    let seen = requests(&server).await;
    assert_eq!(seen.len(), 2);
    assert!(seen
        .iter()
        .all(|r| auth_of(r) == Some("Bearer dyn_token_1")));

    // Expired and the refresh fails: TokenUnavailable, nothing more is sent.
    let provider = Scripted::new().ttl(Duration::from_millis(30)).fail_from(2);
    let client = provider_client(&server, provider.clone());
    client.get_wallet(ENV, WALLET).await.expect("first token");
    tokio::time::sleep(Duration::from_millis(60)).await;
    let err = client.get_wallet(ENV, WALLET).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::TokenUnavailable, "{err}");
    assert_eq!(requests(&server).await.len(), 3);

    // Refused with 401 and the refresh fails: the refused token is not sent again.
    let refusing = sandbox().await;
    let provider = Scripted::new().fail_from(2);
    let client = support::provider_client_at(&refusing.uri(), provider.clone(), fast());
    let err = create(&client).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::TokenUnavailable, "{err}");
    assert_eq!(err.attempts(), 1);
    assert_eq!(refusing.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_on_clones_share_one_provider_call() {
    let server = wallet_server().await;
    let provider = Scripted::new().delay(Duration::from_millis(50));
    let client = provider_client(&server, provider.clone());

    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let client = client.clone();
        calls.spawn(async move { client.get_wallet(ENV, WALLET).await });
    }
    while let Some(result) = calls.join_next().await {
        result.expect("no panic").expect("wallet read");
    }
    assert_eq!(provider.calls(), 1);
    let seen = requests(&server).await;
    assert_eq!(seen.len(), 50);
    assert!(seen
        .iter()
        .all(|r| auth_of(r) == Some("Bearer dyn_token_1")));
}

// ---------------------------------------------------------------------------------------
// 4. The token is never printed
// ---------------------------------------------------------------------------------------

const SECRET: &str = "dyn_SECRET_never_print_me";

fn describe(err: &Error, out: &mut Vec<String>) {
    out.push(format!("{err}"));
    out.push(format!("{err:?}"));
    out.push(format!("{err:#?}"));
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        out.push(format!("{s} {s:?}"));
        source = s.source();
    }
}

/// Gives `SECRET` once (valid 10 s, so inside REFRESH_AHEAD), then fails.
struct SecretOnce(AtomicUsize);

impl TokenProvider for SecretOnce {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            match self.0.fetch_add(1, SeqCst) {
                0 => Ok(Token::new(SECRET).expires_in(Duration::from_secs(10))),
                _ => Err(TokenError::new("vault sealed")),
            }
        })
    }
}

fn redirect(status: u16, to: String) -> ResponseTemplate {
    ResponseTemplate::new(status).insert_header("Location", to)
}

/// `status` with `Retry-After: 0`.
fn retry_now(status: u16) -> FaultResponse {
    FaultResponse::new(status).retry_after(0)
}

#[tokio::test]
async fn the_token_never_appears_in_logs_errors_or_debug_output() {
    // Everything this test binary logs at TRACE; the other tests' events land here too,
    // which only widens the check.
    let logs = support::captured_logs(tracing::Level::TRACE);
    let mut printed: Vec<String> = Vec::new();

    // A full call with retries: two 429s with Retry-After 0, then 201 from a sandbox that
    // knows the token (and so shows it was sent).
    let (sandbox, _) = support::hostile::sandbox_for(SECRET).await;
    sandbox.fail_next(Operation::Create, 2, retry_now(429));
    let builder = Client::builder()
        .base_url(sandbox.uri())
        .token(SECRET)
        .retry_policy(fast());
    printed.push(format!("{builder:?} {builder:#?}"));
    let retrying = builder.build().unwrap();
    printed.push(format!("{retrying:?} {retrying:#?}"));
    let created = create(&retrying).await.expect("created after two retries");
    assert_eq!(created.attempts(), 3);
    printed.push(format!("{created:?}"));
    assert_eq!(sandbox.creates_received(), 3);

    // 401.
    let refusing = self::sandbox().await;
    let err = create(&sandbox_client(&refusing, SECRET))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unauthorized);
    describe(&err, &mut printed);

    // 500 on the create and on every wallet read: outcome unknown.
    let failing = self::sandbox().await;
    let boom = FaultResponse::new(500).json(serde_json::json!({"error": "boom"}));
    failing.fail_at_rate(Target::Any, Rate::every(1), boom);
    let err = sandbox_client(&failing, SECRET)
        .create_backup_locations(ENV, WALLET, USER, [support::google_drive()])
        .retry_policy(fast().with_max_attempts(2))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::OutcomeUnknown { .. }),
        "{err:?}"
    );
    describe(&err, &mut printed);

    // A provider: 401 with a refresh that fails, and a token refused at build.
    let rotating =
        support::provider_client_at(&refusing.uri(), SecretOnce(AtomicUsize::new(0)), fast());
    let err = rotating.get_wallet(ENV, WALLET).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::TokenUnavailable, "{err}");
    describe(&err, &mut printed);
    let sent = [sandbox.requests(), refusing.requests()].concat();
    assert_eq!(sent.len(), 5);
    assert!(
        sent.iter()
            .all(|r| r.header("authorization") == Some("Bearer [redacted]")),
        "{sent:?}"
    );

    // Invalid input.
    for bad in [
        format!("{SECRET}\n"),
        format!("{SECRET}\u{7}"),
        format!(" {SECRET}"),
    ] {
        let builder = Client::builder().base_url(sandbox.uri()).token(bad);
        printed.push(format!("{builder:?}"));
        describe(&builder.build().unwrap_err(), &mut printed);
    }
    let err = retrying.get_wallet(ENV, "not-a-wallet").await.unwrap_err();
    assert!(err.is_invalid_input());
    describe(&err, &mut printed);

    let logs = logs.text();
    // The capture works (so the next assertion can fail).
    assert!(logs.contains("retrying"), "logs: {logs}");
    assert!(logs.contains("refreshing the token"), "logs: {logs}");
    assert!(!logs.contains(SECRET), "the token is in the logs:\n{logs}");
    assert!(
        !logs.contains("SECRET_never"),
        "part of the token is in the logs:\n{logs}"
    );
    for text in &printed {
        assert!(
            !text.contains("SECRET_never"),
            "the token was printed: {text}"
        );
    }
    assert!(printed.len() > 15);
}

// ---------------------------------------------------------------------------------------
// 5. User-Agent and request ids
// ---------------------------------------------------------------------------------------

#[track_caller]
fn request_id_of(request: &RecordedRequest) -> String {
    let id = request
        .header("x-dyn-request-id")
        .expect("x-dyn-request-id is sent");
    let uuid = uuid::Uuid::parse_str(id).expect("a UUID");
    assert_eq!(uuid.get_version_num(), 4, "{id}");
    assert_eq!(uuid.hyphenated().to_string(), id, "canonical form");
    id.to_owned()
}

#[track_caller]
fn assert_user_agent(request: &RecordedRequest) {
    let ua = request.header("user-agent").expect("User-Agent is sent");
    assert!(ua.starts_with("dynamic-waas-rust/"), "{ua}");
    assert!(
        ua.len() > "dynamic-waas-rust/".len(),
        "with a version: {ua}"
    );
}

#[tokio::test]
async fn every_attempt_has_the_user_agent_and_its_own_request_id() {
    let (sandbox, seed) = Sandbox::seeded().await;
    sandbox.fail_next(Operation::Create, 1, retry_now(429));
    let created = create(&sandbox_client(&sandbox, &seed.token))
        .await
        .expect("created on the retry");
    let seen = sandbox.requests();
    assert_eq!(seen.len(), 2);
    seen.iter().for_each(assert_user_agent);
    let ids: Vec<String> = seen.iter().map(request_id_of).collect();
    assert_ne!(ids[0], ids[1]);
    assert_eq!(created.request_id(), ids[1]);

    // A final error carries the last attempt's id.
    let limited = self::sandbox().await;
    limited.fail_at_rate(Target::Any, Rate::every(1), retry_now(429));
    let client = sandbox_client(&limited, &seed.token);
    let err = create(&client).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::RateLimited { .. }),
        "{err:?}"
    );
    let seen = limited.requests();
    assert_eq!(seen.len(), 3);
    seen.iter().for_each(assert_user_agent);
    let ids: std::collections::HashSet<String> = seen.iter().map(request_id_of).collect();
    assert_eq!(ids.len(), 3, "one id per attempt");
    assert_eq!(err.request_id(), Some(&*request_id_of(&seen[2])));
    assert!(err.to_string().contains(&request_id_of(&seen[2])), "{err}");

    let err = client.get_wallet(ENV, WALLET).await.unwrap_err();
    let seen = limited.requests();
    assert_eq!(seen.len(), 6);
    seen.iter().for_each(assert_user_agent);
    assert_eq!(err.request_id(), Some(&*request_id_of(&seen[5])));
}

// ---------------------------------------------------------------------------------------
// 6. Plain http
// ---------------------------------------------------------------------------------------

#[test]
fn plain_http_is_refused_except_to_loopback() {
    for url in [
        "http://app.dynamicauth.com/api/v0",
        "http://10.0.0.1:8080",
        "http://example.com",
        "http://127.0.0.1.nip.io",
    ] {
        let err = Client::builder()
            .base_url(url)
            .token("dyn_x")
            .build()
            .unwrap_err();
        let reason = assert_invalid_input(&err, "base_url");
        assert!(reason.contains("https"), "{reason}");
        assert!(err.to_string().contains("https"), "{err}");
    }
    for url in [
        "http://127.0.0.1:8080",
        "http://localhost:8080/api/v0",
        "http://[::1]:8080",
        "https://app.dynamicauth.com/api/v0",
    ] {
        let client = Client::builder().base_url(url).token("dyn_x").build();
        assert!(client.is_ok(), "{url}: {:?}", client.err());
    }
}

// ---------------------------------------------------------------------------------------
// 7. Redirects
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_redirect_to_another_origin_is_not_followed() {
    let elsewhere = answering(created_201(), None).await;
    let api = MockServer::start().await;
    let (create_at, wallet_at) = (create_path(), wallet_path());
    let target = |at: &str| format!("{}{at}", elsewhere.uri());
    support::on(&api, "POST", &*create_at, redirect(307, target(&create_at))).await;
    support::on(&api, "GET", &*wallet_at, redirect(302, target(&wallet_at))).await;
    let client = client(&api, "dyn_redirected");

    let err = create(&client).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidResponse, "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(307));
    assert_eq!(err.attempts(), 1);
    assert!(
        format!("{err:#}").contains(&elsewhere.uri()),
        "says where: {err}"
    );

    let err = client.get_wallet(ENV, WALLET).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidResponse, "{err:?}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(302));

    let reached = requests(&elsewhere).await;
    assert!(
        reached.iter().all(|r| auth_of(r).is_none()),
        "the token went to another origin"
    );
    assert!(
        reached.is_empty(),
        "another origin was contacted: {reached:?}"
    );
    assert_eq!(requests(&api).await.len(), 2);

    // Same port, other host name: another origin too (`localhost` is not `127.0.0.1`).
    let same_port = MockServer::start().await;
    let port = same_port.address().port();
    Mock::given(method("POST"))
        .and(path(create_path()))
        .respond_with(redirect(307, format!("http://localhost:{port}/moved")))
        .expect(1)
        .mount(&same_port)
        .await;
    Mock::given(path("/moved"))
        .respond_with(created_201())
        .expect(0)
        .named("the redirect target on the same port, under another host name")
        .mount(&same_port)
        .await;
    let err = create(&client_for(&same_port)).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidResponse, "{err:?}");
    assert!(
        format!("{err:#}").contains(&format!("localhost:{port}")),
        "{err}"
    );
}

/// Same-origin redirects are followed (the token stays within the origin); a create's answer
/// after one is never taken as the create's: the wallet settles it.
#[tokio::test]
async fn a_same_origin_redirect_is_followed_and_the_create_is_settled_from_the_wallet() {
    let api = MockServer::start().await;
    let to_create = redirect(307, "/moved/create".into());
    support::on(&api, "POST", create_path(), to_create).await;
    support::on(&api, "POST", "/moved/create", created_201()).await;
    let to_wallet = format!("{}/moved/wallet", api.uri());
    support::on(&api, "GET", wallet_path(), redirect(302, to_wallet)).await;
    support::on(&api, "GET", "/moved/wallet", wallet_200()).await;
    let client = client(&api, "dyn_same_origin");

    let created = create(&client).await.expect("settled");
    assert!(created.is_reconciled(), "{created:?}");
    assert_eq!(created.locations_with_key_shares().len(), 1);
    let wallet = client.get_wallet(ENV, WALLET).await.expect("followed");
    assert!(!wallet.key_shares.is_empty());

    let seen = requests(&api).await;
    let paths: Vec<&str> = seen.iter().map(|r| r.url.path()).collect();
    let read = [&*wallet_path(), "/moved/wallet"];
    assert_eq!(
        paths,
        [
            &*create_path(),
            "/moved/create",
            read[0],
            read[1],
            read[0],
            read[1]
        ]
    );
    assert!(seen
        .iter()
        .all(|r| auth_of(r) == Some("Bearer dyn_same_origin")));
    // A 307 keeps the method and the body.
    assert_eq!(seen[1].method.as_str(), "POST");
    assert_eq!(seen[1].body, seen[0].body);
}

/// `http_client` shapes the reqwest client, but cannot undo the rules that keep the token safe:
/// the redirect policy and, for plain-http loopback, no proxy.
#[tokio::test]
async fn shaping_the_http_client_keeps_the_token_rules() {
    let elsewhere = answering(created_201(), Some(0)).await;
    let api = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(create_path()))
        .and(header("x-shaped", "yes"))
        .respond_with(redirect(307, format!("{}/moved", elsewhere.uri())))
        .expect(1)
        .mount(&api)
        .await;
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    proxy.set_nonblocking(true).unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let client = Client::builder()
        .base_url(api.uri())
        .token("dyn_shaped")
        .http_client(move |http| {
            let mut headers = dynamic_waas::reqwest::header::HeaderMap::new();
            headers.insert("x-shaped", "yes".parse().unwrap());
            http.default_headers(headers)
                .redirect(dynamic_waas::reqwest::redirect::Policy::limited(10))
                .proxy(dynamic_waas::reqwest::Proxy::all(proxy_url).unwrap())
        })
        .build()
        .unwrap();
    let err = create(&client).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidResponse, "{err:#}");
    assert!(
        proxy.accept().is_err(),
        "the request went through the shaped proxy"
    );
    assert!(requests(&elsewhere).await.is_empty());
}
