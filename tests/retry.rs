//! Retries, `Retry-After`, the retry budget and reconciliation of lost creates, over real
//! HTTP on loopback: on the sandbox (`dynamic_waas_sandbox`) where it models the case, on raw
//! wiremock where the point is a wire detail scripted exactly.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use dynamic_waas::{BackupLocation, Client, ErrorKind, RetryPolicy};
use dynamic_waas_sandbox::{Fault, FaultResponse, Operation, Rate, Sandbox, Seed};
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

mod support;
use support::{
    create_example as create, created_201, fast, fixture, fixture_path, ids, in_order, server,
    wallet_path, ENV, USER, WALLET,
};

const TOKEN: &str = "dyn_retry_tests";

fn client(server: &MockServer, policy: RetryPolicy) -> Client {
    support::mock_client(server, TOKEN, policy)
}

/// The example sandbox (its wallet is `WALLET`, with no key shares).
async fn sandbox() -> Sandbox {
    Sandbox::seeded().await.0
}

/// A client of `sandbox` with the example seed's token and `policy`.
fn client_of(sandbox: &Sandbox, policy: RetryPolicy) -> Client {
    support::client_at(&sandbox.uri(), &Seed::example().token, policy)
}

/// How many wallet reads `sandbox` received.
fn reads(sandbox: &Sandbox) -> usize {
    sandbox
        .requests()
        .iter()
        .filter(|r| r.operation == Some(Operation::Read))
        .count()
}

/// The key share ids the sandbox recorded on the example wallet.
fn stored_ids(sandbox: &Sandbox) -> Vec<String> {
    sandbox
        .key_shares(&Seed::example().wallet_id)
        .unwrap()
        .iter()
        .map(|s| s.id.to_string())
        .collect()
}

/// A client of a port where nothing listens (yet).
fn client_of_port(port: u16, policy: RetryPolicy) -> Client {
    support::client_at(&format!("http://127.0.0.1:{port}"), TOKEN, policy)
}

/// A port nothing listens on.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn happy_path_sends_the_seed_request_and_reads_the_seed_response() {
    let server = server().await;
    Mock::given(method("POST"))
        .and(path(support::create_path()))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(body_json(fixture("seed_request.json")))
        .respond_with(created_201())
        .expect(1)
        .mount(&server)
        .await;
    let created = client(&server, fast())
        .create_backup_locations(
            ENV,
            WALLET,
            uuid::Uuid::parse_str(USER).unwrap(),
            [
                dynamic_waas::LocationRequest::new(BackupLocation::GoogleDrive)
                    .keygen_id("An example name")
                    .threshold_signature_scheme(dynamic_waas::ThresholdSignatureScheme::TwoOfTwo)
                    .external_key_share_id("An example name"),
            ],
        )
        .await
        .unwrap();
    assert!(!created.is_reconciled());
    assert_eq!(created.attempts(), 1);
    let share = &created.locations_with_key_shares()[0];
    assert_eq!(share.location, BackupLocation::GoogleDrive);
    assert_eq!(
        share.key_share_id.as_str(),
        "95b11417-f18f-457f-8804-68e361f9164f"
    );
    assert_eq!(
        serde_json::to_value(&created).unwrap(),
        fixture("seed_response_201.json")
    );
}

#[tokio::test]
async fn invalid_input_is_refused_before_anything_is_sent() {
    let server = server().await;
    let client = client(&server, fast());
    let cases = [
        (
            client.create_backup_locations(
                "95B11417-F18F-457F-8804-68E361F9164F",
                WALLET,
                USER,
                [BackupLocation::GoogleDrive.into()],
            ),
            "environmentId",
        ),
        (
            client.create_backup_locations(ENV, "", USER, [BackupLocation::GoogleDrive.into()]),
            "walletId",
        ),
        (
            client.create_backup_locations(
                ENV,
                WALLET,
                "not-a-uuid",
                [BackupLocation::GoogleDrive.into()],
            ),
            "userId",
        ),
        (
            client.create_backup_locations(ENV, WALLET, USER, Vec::new()),
            "locations",
        ),
        (
            client.create_backup_locations(
                ENV,
                WALLET,
                USER,
                [
                    dynamic_waas::LocationRequest::new(BackupLocation::GoogleDrive),
                    dynamic_waas::LocationRequest::new(BackupLocation::Dynamic)
                        .keygen_id("x".repeat(256)),
                ],
            ),
            "locations[1].keygenId",
        ),
    ];
    for (call, field) in cases {
        let err = call.await.unwrap_err();
        match err.kind() {
            ErrorKind::InvalidInput { field: f, .. } => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
        assert_eq!(err.attempts(), 0);
        assert!(err.to_string().contains("nothing was sent"), "{err}");
    }
}

#[tokio::test]
async fn each_error_status_maps_to_its_kind() {
    type IsKind = fn(&ErrorKind) -> bool;
    let cases: Vec<(u16, Value, IsKind)> = vec![
        (
            400,
            json!({"error": "locations[0].location is invalid"}),
            |k| *k == ErrorKind::BadRequest,
        ),
        (403, json!({"error": "Access Forbidden"}), |k| {
            *k == ErrorKind::Forbidden
        }),
        (
            404,
            json!({"error": "Not Found", "code": "not_found"}),
            |k| *k == ErrorKind::NotFound,
        ),
        (
            422,
            json!({"error": "already", "code": "key_share_already_backed_up"}),
            |k| *k == ErrorKind::AlreadyBackedUp,
        ),
        (
            422,
            json!({"error": "nope", "code": "something_else"}),
            |k| *k == ErrorKind::Rejected,
        ),
        (409, json!({"error": "conflict"}), |k| {
            *k == ErrorKind::Rejected
        }),
    ];
    for (status, body, is_kind) in cases {
        let server = server().await;
        let answer = ResponseTemplate::new(status).set_body_json(&body);
        support::route(&server, "POST", answer, Some(1)).await;
        let err = create(&client(&server, fast())).await.unwrap_err();
        assert!(is_kind(err.kind()), "{status}: {err:?}");
        assert_eq!(err.status().unwrap().as_u16(), status);
        assert_eq!(err.upstream_error(), body["error"].as_str());
        assert_eq!(err.upstream_code(), body["code"].as_str());
        assert_eq!(err.attempts(), 1);
        assert!(err.request_id().is_some());
        assert!(!err.is_retryable());
        assert_eq!(err.body_excerpt().unwrap(), body.to_string().as_bytes());
    }
}

#[tokio::test]
async fn a_proxys_html_error_keeps_status_and_body() {
    // Stays on wiremock: its point is a proxy's HTML page, byte for byte, with its exact headers.
    let server = server().await;
    let html = "<html><body><h1>502 Bad Gateway</h1></body></html>";
    Mock::given(method("GET"))
        .and(path(wallet_path()))
        .respond_with(ResponseTemplate::new(502).set_body_raw(html, "text/html"))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, RetryPolicy::no_retries())
        .get_wallet(ENV, WALLET)
        .await
        .unwrap_err();
    assert_eq!(*err.kind(), ErrorKind::ServerError);
    assert_eq!(err.status().unwrap().as_u16(), 502);
    assert_eq!(err.body_excerpt().unwrap(), html.as_bytes());
    assert!(err.is_retryable());
}

/// A create answered `first`, then 201 (wiremock): its attempts and how long it took.
async fn created_after(first: ResponseTemplate) -> (u32, Duration) {
    let server = server().await;
    in_order(&server, "POST", [first, created_201()], None).await;
    let started = Instant::now();
    let created = create(&client(&server, fast())).await.unwrap();
    (created.attempts(), started.elapsed())
}

#[tokio::test]
async fn rate_limited_then_created_waits_retry_after_seconds() {
    let sandbox = sandbox().await;
    sandbox.fail_next(
        Operation::Create,
        1,
        FaultResponse::new(429)
            .retry_after(1)
            .json(json!({"error": "Too many requests. Please try again later."})),
    );
    let started = Instant::now();
    let created = create(&client_of(&sandbox, fast())).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(created.attempts(), 2);
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    assert!(waited < Duration::from_millis(2500), "{waited:?}");
    assert_eq!(sandbox.creates_received(), 2);
    assert_eq!(sandbox.creates_applied(), 1);
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    // Stays on wiremock: its point is the HTTP-date form of Retry-After, scripted exactly.
    let at = httpdate_in(2);
    let (attempts, waited) =
        created_after(ResponseTemplate::new(429).insert_header("retry-after", at.as_str())).await;
    assert_eq!(attempts, 2);
    // The date has one-second resolution: the wait is between 1 and 2 seconds.
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_millis(3000), "{waited:?}");
}

fn httpdate_in(seconds: u64) -> String {
    // RFC 9110 IMF-fixdate, computed by hand to keep test dependencies small.
    let t = SystemTime::now() + Duration::from_secs(seconds);
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let days = secs / 86_400;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let names = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {day:02} {} {year} {h:02}:{m:02}:{s:02} GMT",
        names[(month - 1) as usize]
    )
}

#[tokio::test]
async fn retry_after_beyond_the_cap_stops_and_says_how_long() {
    let sandbox = sandbox().await;
    sandbox.fail_next(
        Operation::Create,
        1,
        FaultResponse::new(429).retry_after(3600),
    );
    let started = Instant::now();
    let err = create(&client_of(&sandbox, fast())).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        *err.kind(),
        ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(3600))
        }
    );
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
    assert_eq!(err.headers().unwrap()["retry-after"], "3600");
    assert!(err.to_string().contains("asked to wait 3600s"), "{err}");
    assert_eq!(err.attempts(), 1);
    assert_eq!(sandbox.creates_received(), 1);
    assert_eq!(sandbox.creates_applied(), 0);
}

#[tokio::test]
async fn a_503_burst_with_retry_after_is_ridden_out() {
    let busy = FaultResponse::new(503).retry_after(0);
    let sandbox = sandbox().await;
    sandbox.fail_next(Operation::Create, 3, busy.clone());
    let created = create(&client_of(&sandbox, fast().max_attempts(4)))
        .await
        .unwrap();
    assert_eq!(created.attempts(), 4);
    assert_eq!(sandbox.creates_received(), 4);
    assert_eq!(sandbox.creates_applied(), 1);
    drop(sandbox);
    // With fewer attempts than the burst, the caller gets the rate limit.
    let sandbox = self::sandbox().await;
    sandbox.fail_at_rate(Operation::Create, Rate::every(1), busy);
    let err = create(&client_of(&sandbox, fast())).await.unwrap_err();
    assert_eq!(
        *err.kind(),
        ErrorKind::RateLimited {
            retry_after: Some(Duration::ZERO)
        }
    );
    assert_eq!(err.attempts(), 3);
    assert_eq!(sandbox.creates_received(), 3);
    assert_eq!(sandbox.creates_applied(), 0);
}

#[tokio::test]
async fn the_retry_budget_caps_amplification_against_a_failing_server() {
    let sandbox = sandbox().await;
    sandbox.fail_at_rate(Operation::Read, Rate::every(1), FaultResponse::new(503));
    let client = client_of(
        &sandbox,
        fast().max_attempts(3).initial_backoff(Duration::ZERO),
    );
    let calls = 1000usize;
    for chunk in 0..(calls / 50) {
        let _ = chunk;
        let batch: Vec<_> = (0..50)
            .map(|_| {
                let c = client.clone();
                tokio::spawn(async move { c.get_wallet(ENV, WALLET).await })
            })
            .collect();
        for call in batch {
            let err = call.await.unwrap().unwrap_err();
            assert_eq!(*err.kind(), ErrorKind::ServerError);
        }
    }
    let requests = reads(&sandbox);
    let amplification = requests as f64 / calls as f64;
    eprintln!("{calls} calls -> {requests} requests (x{amplification:.3})");
    // Without a budget: 3 requests per call. With it: the 50 of headroom, and no more while
    // nothing answers well (x1.05 here, and towards x1.0 as the outage goes on).
    assert!(requests > calls, "some retries happened");
    assert!(requests <= calls + 50, "{requests}");
}

#[tokio::test]
async fn connection_refused_then_success() {
    // A port with nothing listening yet; the server starts there 300 ms later.
    let port = free_port();
    let started = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let server = MockServer::builder().listener(listener).start().await;
        support::route(&server, "POST", created_201(), Some(1)).await;
        server
    });
    let client = client_of_port(
        port,
        fast()
            .max_attempts(8)
            .initial_backoff(Duration::from_millis(200))
            .max_backoff(Duration::from_millis(200)),
    );
    let created = create(&client).await.unwrap();
    assert!(created.attempts() >= 2, "{}", created.attempts());
    assert!(!created.is_reconciled());
    drop(started.await.unwrap());
}

#[tokio::test]
async fn connection_refused_for_good_is_a_transport_error() {
    let client = client_of_port(free_port(), fast());
    let err = create(&client).await.unwrap_err();
    assert_eq!(*err.kind(), ErrorKind::Transport);
    assert_eq!(err.attempts(), 3);
    assert!(err.to_string().contains("3 attempts"), "{err}");
}

#[tokio::test]
async fn a_create_applied_but_answered_500_is_reconciled_from_the_wallet() {
    let sandbox = sandbox().await;
    // Applied, then answered `500 {"error": "Internal Server Error"}`.
    sandbox.fail_next(
        Operation::Create,
        1,
        Fault::ApplyThenRespond(FaultResponse::new(500)),
    );
    let created = create(&client_of(&sandbox, fast())).await.unwrap();
    assert!(created.is_reconciled());
    assert_eq!(created.attempts(), 2);
    let share = &created.locations_with_key_shares()[0];
    assert_eq!(vec![share.key_share_id.to_string()], stored_ids(&sandbox));
    assert_eq!(serde_json::to_value(&created).unwrap()["reconciled"], true);
    assert_eq!(
        sandbox.creates_received(),
        1,
        "the create was sent exactly once"
    );
    assert_eq!(sandbox.creates_applied(), 1);
    assert_eq!(reads(&sandbox), 1);
}

#[tokio::test]
async fn a_create_answered_after_the_timeout_is_reconciled_not_resent() {
    let sandbox = sandbox().await;
    sandbox.fail_next(
        Operation::Create,
        1,
        Fault::ApplyThenDelay(Duration::from_secs(2)),
    );
    let created = create(&client_of(
        &sandbox,
        fast().attempt_timeout(Duration::from_millis(300)),
    ))
    .await
    .unwrap();
    assert!(created.is_reconciled());
    assert_eq!(ids(&created), stored_ids(&sandbox));
    assert_eq!(sandbox.creates_received(), 1);
    assert_eq!(sandbox.creates_applied(), 1);
    assert_eq!(reads(&sandbox), 1);
}

#[tokio::test]
async fn a_lost_create_the_wallet_shows_no_shares_for_is_retried_once() {
    let sandbox = sandbox().await;
    // A gateway answers 502 and the create never reaches the service.
    sandbox.fail_next(
        Operation::Create,
        1,
        Fault::Reject(FaultResponse::new(502).html("<html>bad gateway</html>")),
    );
    let created = create(&client_of(&sandbox, fast())).await.unwrap();
    assert!(!created.is_reconciled());
    assert_eq!(created.attempts(), 3, "create, read, create");
    assert_eq!(sandbox.creates_received(), 2, "sent again exactly once");
    assert_eq!(sandbox.creates_applied(), 1);
    assert_eq!(reads(&sandbox), 1);
    assert_eq!(ids(&created), stored_ids(&sandbox));
}

#[tokio::test]
async fn a_lost_create_whose_wallet_cannot_be_read_is_outcome_unknown() {
    let sandbox = sandbox().await;
    sandbox.fail_next(Operation::Create, 1, FaultResponse::new(504));
    sandbox.fail_at_rate(Operation::Read, Rate::every(1), FaultResponse::new(500));
    let err = create(&client_of(&sandbox, fast().max_attempts(2)))
        .await
        .unwrap_err();
    // A settling read gets twice the policy's attempts: reads are what recover the ids.
    assert_eq!(reads(&sandbox), 4);
    assert_eq!(sandbox.creates_received(), 1, "never sent again");
    match err.kind() {
        ErrorKind::OutcomeUnknown { reason } => {
            assert!(reason.contains("wallet read failed"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.attempts(), 5);
    assert!(!err.is_retryable());
    let message = err.to_string();
    assert!(
        message.contains("read the wallet before creating again"),
        "{message}"
    );
    // The original failure is kept.
    let original = std::error::Error::source(&err).unwrap().to_string();
    assert!(original.contains("status 504"), "{original}");
}

#[tokio::test]
async fn an_unreadable_201_is_reconciled_because_the_create_happened() {
    let sandbox = sandbox().await;
    let cut = FaultResponse::new(201).body("{\"message\": \"cut off", "application/json");
    sandbox.fail_next(Operation::Create, 1, Fault::ApplyThenRespond(cut));
    let created = create(&client_of(&sandbox, fast())).await.unwrap();
    assert!(created.is_reconciled());
    assert_eq!(ids(&created), stored_ids(&sandbox));
    assert_eq!(sandbox.creates_received(), 1);
    assert_eq!(sandbox.creates_applied(), 1);
    assert_eq!(reads(&sandbox), 1);
}

/// A stateful fake for the concurrency test: it records creates per wallet and fails every
/// fifth request, half of those failures after applying the create (a lost response).
struct FlakyServer(Arc<Flaky>);

struct Flaky {
    requests: AtomicU32,
    shares: Mutex<HashMap<String, Vec<(String, String)>>>,
    applied: Mutex<HashMap<String, u32>>,
    /// Creates received for a wallet after one was applied: each one a blind resend, which
    /// the 422 below would otherwise hide.
    sent_after_applied: AtomicU32,
}

impl Respond for FlakyServer {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let this = &self.0;
        let n = this.requests.fetch_add(1, Ordering::SeqCst);
        let segments: Vec<&str> = request.url.path().split('/').collect();
        let wallet = segments.get(4).copied().unwrap_or_default().to_owned();
        let fail = n % 5 == 4;
        if request.method.as_str() == "GET" {
            if fail {
                return ResponseTemplate::new(500);
            }
            let shares = this
                .shares
                .lock()
                .unwrap()
                .get(&wallet)
                .cloned()
                .unwrap_or_default();
            let shares: Vec<Value> = shares
                .iter()
                .map(|(id, loc)| json!({"id": id, "backupLocation": loc, "passwordEncrypted": false}))
                .collect();
            return ResponseTemplate::new(200).set_body_json(wallet_json(&wallet, shares));
        }
        if this.applied.lock().unwrap().contains_key(&wallet) {
            this.sent_after_applied.fetch_add(1, Ordering::SeqCst);
        }
        if fail && n % 10 == 4 {
            return ResponseTemplate::new(500);
        }
        let mut all = this.shares.lock().unwrap();
        if all.get(&wallet).is_some_and(|s| !s.is_empty()) {
            return ResponseTemplate::new(422)
                .set_body_json(json!({"error": "already", "code": "key_share_already_backed_up"}));
        }
        let id = uuid::Uuid::new_v4().to_string();
        all.insert(wallet.clone(), vec![(id.clone(), "googleDrive".into())]);
        *this
            .applied
            .lock()
            .unwrap()
            .entry(wallet.clone())
            .or_default() += 1;
        if fail {
            return ResponseTemplate::new(500); // applied, response lost
        }
        ResponseTemplate::new(201).set_body_json(json!({
            "message": "ok", "walletId": wallet,
            "locationsWithKeyShares": [{"location": "googleDrive", "keyShareId": id, "externalKeyShareId": uuid::Uuid::new_v4().to_string()}]
        }))
    }
}

fn wallet_json(wallet: &str, shares: Vec<Value>) -> Value {
    json!({"wallet": {"accountAddress": "0xabc", "chainName": "EVM", "walletId": wallet,
        "thresholdSignatureScheme": "TWO_OF_TWO", "derivationPath": "m/0", "keyShares": shares}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_calls_each_end_with_one_definite_outcome() {
    let server = MockServer::start().await;
    let flaky = Arc::new(Flaky {
        requests: AtomicU32::new(0),
        shares: Mutex::new(HashMap::new()),
        applied: Mutex::new(HashMap::new()),
        sent_after_applied: AtomicU32::new(0),
    });
    Mock::given(path_regex(
        "^/environments/[^/]+/waas/[^/]+(/keyShares/backup/locations)?$",
    ))
    .respond_with(FlakyServer(flaky.clone()))
    .mount(&server)
    .await;
    let client = client(&server, fast().max_attempts(4));
    let calls: Vec<_> = (0..200)
        .map(|_| {
            let client = client.clone();
            let wallet = uuid::Uuid::new_v4();
            tokio::spawn(async move {
                let result = client
                    .create_backup_locations(
                        ENV,
                        wallet,
                        USER,
                        [BackupLocation::GoogleDrive.into()],
                    )
                    .await;
                (wallet.to_string(), result)
            })
        })
        .collect();
    let (mut ok, mut reconciled, mut unknown, mut failed) = (0, 0, 0, 0);
    for call in calls {
        let (wallet, result) = call.await.expect("no panic");
        let applied = flaky
            .applied
            .lock()
            .unwrap()
            .get(&wallet)
            .copied()
            .unwrap_or(0);
        assert!(
            applied <= 1,
            "{wallet}: the create was applied {applied} times"
        );
        match result {
            Ok(created) => {
                ok += 1;
                reconciled += usize::from(created.is_reconciled());
                assert_eq!(applied, 1, "{wallet}: success means exactly one create");
                let recorded = flaky.shares.lock().unwrap()[&wallet][0].0.clone();
                assert_eq!(
                    created.locations_with_key_shares()[0].key_share_id.as_str(),
                    recorded
                );
            }
            Err(err) if matches!(err.kind(), ErrorKind::OutcomeUnknown { .. }) => unknown += 1,
            Err(err) => {
                failed += 1;
                // A definite failure must never hide a create that happened.
                assert_eq!(applied, 0, "{wallet}: {err}");
            }
        }
    }
    eprintln!("ok {ok} (reconciled {reconciled}), outcome unknown {unknown}, failed {failed}");
    assert_eq!(ok + unknown + failed, 200);
    assert!(reconciled > 0, "some responses were lost and reconciled");
    assert_eq!(
        flaky.sent_after_applied.load(Ordering::SeqCst),
        0,
        "a create was sent again after one was applied"
    );
    // The budget refills from healthy answers: reads that recover lost creates are not refused.
    assert_eq!(unknown, 0);
    assert!(ok >= 190, "{ok}");
}

#[tokio::test]
async fn a_response_over_the_size_bound_is_refused_with_its_status() {
    // Stays on wiremock: its point is a body over the size bound, scripted to the byte.
    let server = server().await;
    let mut big = fixture("wallet_without_key_shares.json");
    big["wallet"]["accountAddress"] = Value::String("0".repeat(64 * 1024));
    let big = ResponseTemplate::new(200).set_body_json(big);
    support::route(&server, "GET", big, Some(1)).await;
    let client = Client::builder()
        .base_url(server.uri())
        .token(TOKEN)
        .max_response_bytes(4096)
        .retry_policy(RetryPolicy::no_retries())
        .build()
        .unwrap();
    let err = client.get_wallet(ENV, WALLET).await.unwrap_err();
    assert_eq!(*err.kind(), ErrorKind::InvalidResponse);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(200));
}

#[tokio::test]
async fn every_attempt_is_a_tracing_event_in_the_calls_span() {
    // A wallet no other test uses, to pick this call's events out of the shared output.
    const TRACED_WALLET: &str = "7e7e7e7e-7e7e-4e7e-8e7e-7e7e7e7e7e7e";
    let logs = support::captured_logs(tracing::Level::DEBUG);
    let server = server().await;
    let limited = ResponseTemplate::new(429).insert_header("retry-after", "0");
    in_order(
        &server,
        "POST",
        [limited.clone(), limited, created_201()],
        None,
    )
    .await;
    client(&server, fast())
        .create_backup_locations(
            ENV,
            TRACED_WALLET,
            USER,
            [BackupLocation::GoogleDrive.into()],
        )
        .await
        .unwrap();
    let text = logs.text();
    let events: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(&format!("wallet_id={TRACED_WALLET}")))
        .filter(|l| l.contains(" dynamic_waas::"))
        .collect();
    // Per failed attempt: what happened, then the decision; then the answer.
    assert_eq!(events.len(), 5, "{text}");
    for (i, pair) in events[..4].chunks(2).enumerate() {
        let (failed, retry) = (pair[0], pair[1]);
        assert!(failed.contains("attempt failed"), "{failed}");
        assert!(failed.contains(&format!("attempt={}", i + 1)), "{failed}");
        assert!(failed.contains("status=429"), "{failed}");
        assert!(
            retry.contains("retrying") && retry.contains("wait_ms=0"),
            "{retry}"
        );
        for line in pair {
            assert!(line.contains("DEBUG"), "{line}");
            assert!(
                line.contains("dynamic_waas.create_backup_locations"),
                "{line}"
            );
        }
    }
    assert!(
        events[4].contains("answered") && events[4].contains("attempt=3"),
        "{}",
        events[4]
    );
}

#[tokio::test]
async fn a_read_slower_than_every_attempt_is_a_timeout() {
    let sandbox = sandbox().await;
    let slow = Fault::ApplyThenDelay(Duration::from_millis(500));
    sandbox.fail_at_rate(Operation::Read, Rate::every(1), slow);
    let err = client_of(
        &sandbox,
        fast()
            .max_attempts(2)
            .attempt_timeout(Duration::from_millis(100)),
    )
    .get_wallet(ENV, WALLET)
    .await
    .unwrap_err();
    assert_eq!(*err.kind(), ErrorKind::Timeout);
    assert_eq!(err.attempts(), 2);
    assert!(err.is_retryable());
    assert_eq!(reads(&sandbox), 2);
}

#[test]
fn the_client_and_its_calls_can_be_shared_across_tasks() {
    fn shared<T: Clone + Send + Sync + 'static>() {}
    fn sendable<T: Send>(_: &T) {}
    shared::<Client>();
    let client = Client::builder().token(TOKEN).build().unwrap();
    let call = std::future::IntoFuture::into_future(client.get_wallet(ENV, WALLET));
    sendable(&call);
}

#[tokio::test]
async fn the_raw_201_body_is_kept_byte_for_byte_and_unknown_fields_are_typed_extras() {
    // Stays on wiremock: its point is raw 201 bytes with a field the sandbox never sends.
    let server = server().await;
    let raw = std::fs::read(fixture_path("response_201_unknown_location.json")).unwrap();
    let answer = ResponseTemplate::new(201).set_body_raw(raw.clone(), "application/json");
    support::route(&server, "POST", answer, Some(2)).await;
    let client = client(&server, fast());
    for created in [
        // `keep_raw_body` is kept for compatibility; the body is always kept.
        client
            .create_backup_locations(ENV, WALLET, USER, [paper_wallet()])
            .keep_raw_body()
            .await
            .unwrap(),
        client
            .create_backup_locations(ENV, WALLET, USER, [paper_wallet()])
            .await
            .unwrap(),
    ] {
        assert_eq!(created.raw_body(), Some(raw.as_slice()));
        assert!(created.locations_with_key_shares()[0].location.is_unknown());
        // A field this release does not know is reachable from the typed result.
        let extra = created.extra();
        assert_eq!(extra.len(), 1, "{extra:?}");
        assert_eq!(extra["backupActionId"], "a-field-this-sdk-has-never-seen");
        assert!(!serde_json::to_string(&created)
            .unwrap()
            .contains("backupActionId"));
    }
}

/// A location this release does not know, as the server in the fixture does.
fn paper_wallet() -> dynamic_waas::LocationRequest {
    BackupLocation::from("paperWallet").into()
}
