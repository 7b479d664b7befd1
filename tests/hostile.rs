//! Issue 18, "Nothing hostile gets through", at the library level: a server that echoes the
//! token, redirects a create or asks for an absurd `Retry-After`, over real HTTP on loopback
//! against the sandbox (and the fault proxy in front of it where a body must be cut).

mod support;

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use dynamic_waas::api::error::ErrorResponse;
use dynamic_waas::api::hooks::BodyCapture;
use dynamic_waas::api::RequestOptions;
use dynamic_waas::{BackupJob, BackupStatus, Client, CreatedBackup, ErrorKind, Pacing};
use dynamic_waas_sandbox::{Fault, FaultResponse, Operation, Rate, Sandbox, Seed, Target};
use futures_util::StreamExt;
use serde_json::Value;
use support::fast;
use support::hostile::{
    assert_clean, assert_error_clean, create, create_path, created_body, error_views, sandbox_for,
};

/// Distinctive, so that any trace of it anywhere is this client's token.
const TOKEN: &str = "dyn_hostile_canary_Zq8Wv3Kp5Rt7Yx2NmB4";

fn client_of(uri: &str, token: &str) -> Client {
    support::client_at(uri, token, fast())
}

/// What the token can leave as: itself, and the 8-byte start a cut copy keeps (what sdk
/// redact's tail rule removes).
fn traces(token: &str) -> [&str; 2] {
    [token, &token[..8]]
}

#[track_caller]
fn assert_created_clean(created: &CreatedBackup, secrets: &[&str]) {
    assert_clean("Debug", &format!("{created:?}"), secrets);
    assert_clean("JSON", &serde_json::to_string(created).unwrap(), secrets);
    assert_clean(
        "extra",
        &Value::Object(created.extra()).to_string(),
        secrets,
    );
    let raw = String::from_utf8_lossy(created.raw_body().unwrap_or_default()).into_owned();
    assert_clean("raw_body", &raw, secrets);
}

fn stored_ids(sandbox: &Sandbox, seed: &Seed) -> Vec<String> {
    sandbox
        .key_shares(&seed.wallet_id)
        .unwrap()
        .iter()
        .map(|s| s.id.to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------
// 1. The token never leaves through a server's echo.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_echoed_token_is_in_no_error_detail_nor_log_for_any_status() {
    let logs = support::captured_logs(tracing::Level::TRACE);
    for status in [401, 403, 404, 422, 500] {
        for op in [Operation::Read, Operation::Create] {
            let (sandbox, seed) = sandbox_for(TOKEN).await;
            // Every request, the settling reads of a create included, is answered so.
            let echo = FaultResponse::new(status).echo_token();
            sandbox.fail_next(Target::Any, 100, Fault::Reject(echo));
            let client = client_of(&sandbox.uri(), TOKEN);
            let err = match op {
                Operation::Read => client
                    .get_wallet(&seed.environment_id, &seed.wallet_id)
                    .await
                    .map(|_| ())
                    .unwrap_err(),
                _ => create(&client, &seed).await.map(|_| ()).unwrap_err(),
            };
            let case = format!("{status} to a {op:?}: {err:#}");
            assert_error_clean(&err, &traces(TOKEN));
            // The server did echo it, and what it echoed is kept redacted.
            assert!(format!("{err:#}").contains("[redacted]"), "{case}");
            if err.status().is_some() {
                assert_eq!(err.status().unwrap().as_u16(), status, "{case}");
                assert_eq!(err.upstream_code(), Some("[redacted]"), "{case}");
                assert_eq!(
                    err.upstream_error(),
                    Some("invalid credentials: Bearer [redacted]"),
                    "{case}"
                );
                assert_eq!(
                    err.headers().unwrap()["x-echo"],
                    "Bearer [redacted]",
                    "{case}"
                );
                let excerpt = String::from_utf8_lossy(err.body_excerpt().unwrap()).into_owned();
                assert!(excerpt.contains("[redacted]"), "{case}");
            } else {
                // A create that got a 500 ends unknown; the 500 is its cause.
                assert!(err.is_outcome_unknown(), "{case}");
            }
        }
    }
    let logged = logs.text();
    assert!(logged.contains("attempt failed"), "nothing was logged");
    assert_clean("the TRACE logs", &logged, &traces(TOKEN));
}

#[tokio::test]
async fn a_2xx_that_echoes_the_token_keeps_it_nowhere() {
    let logs = support::captured_logs(tracing::Level::TRACE);
    let (sandbox, seed) = sandbox_for(TOKEN).await;
    let client = client_of(&sandbox.uri(), TOKEN);

    // A 201 whose body echoes the token (in fields this release does not know).
    let echo = FaultResponse::new(201)
        .json(created_body("6d97c3f0-1b1e-4a57-9c1e-3dcef0a1b2c3"))
        .echo_token();
    sandbox.fail_next(Operation::Create, 1, Fault::ApplyThenRespond(echo));
    let created = create(&client, &seed).await.unwrap();
    assert_eq!(created.status(), BackupStatus::Created);
    assert_created_clean(&created, &traces(TOKEN));
    assert_eq!(created.extra()["code"], "[redacted]", "{created:?}");
    assert_eq!(
        created.extra()["error"],
        "invalid credentials: Bearer [redacted]"
    );

    // A 200 wallet read whose body echoes it, read with its raw body.
    let (_, plain) = client
        .get_wallet(&seed.environment_id, &seed.wallet_id)
        .with_raw_body()
        .await
        .unwrap();
    let wallet: Value = serde_json::from_slice(&plain).unwrap();
    let echo = FaultResponse::new(200).json(wallet).echo_token();
    sandbox.fail_next(Operation::Read, 1, Fault::Reject(echo));
    let (wallet, raw) = client
        .get_wallet(&seed.environment_id, &seed.wallet_id)
        .with_raw_body()
        .await
        .unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    assert!(raw.contains("Bearer [redacted]"), "{raw}");
    assert_clean("the wallet's raw body", &raw, &traces(TOKEN));
    assert_clean("the wallet", &format!("{wallet:?}"), &traces(TOKEN));
    assert_clean("the TRACE logs", &logs.text(), &traces(TOKEN));
}

/// A JSON serializer escapes a token's `"` and `\`, some also `/`, and a hostile one may
/// escape any character: the bytes then differ from the token, and the decoded text is it.
#[tokio::test]
async fn a_token_a_json_echo_escapes_is_redacted_from_the_decoded_text_too() {
    let logs = support::captured_logs(tracing::Level::TRACE);
    // A valid token (visible ASCII) that JSON must escape.
    let token = r#"dyn_esc"ape\canary_Q7wX2"#;
    let escaped = r#"dyn_esc\"ape\\canary_Q7wX2"#;
    let (sandbox, seed) = sandbox_for(token).await;
    let client = client_of(&sandbox.uri(), token);
    let echo = FaultResponse::new(401).echo_token();
    sandbox.fail_next(Target::Any, 1, Fault::Reject(echo));
    let err = client
        .get_wallet(&seed.environment_id, &seed.wallet_id)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unauthorized, "{err:#}");
    assert_error_clean(&err, &[token, escaped]);
    assert_eq!(err.upstream_code(), Some("[redacted]"));

    // The same echo in a 201 (a field this release does not know).
    let echo = FaultResponse::new(201)
        .json(created_body("7e08d4a1-2c2f-4b68-8d2f-4edf01b2c3d4"))
        .echo_token();
    sandbox.fail_next(Operation::Create, 1, Fault::ApplyThenRespond(echo));
    let created = create(&client, &seed).await.unwrap();
    assert_created_clean(&created, &[token, escaped]);
    assert_eq!(created.extra()["code"], "[redacted]");

    // Every character escaped (`\/` as PHP writes it, `\u0064` for `d`, ...).
    let token = "dyn_sl/ash_canary_M3nB8";
    let (sandbox, seed) = sandbox_for(token).await;
    let client = client_of(&sandbox.uri(), token);
    let all_escaped: String = token
        .chars()
        .enumerate()
        .map(|(i, c)| match c {
            '/' => "\\/".to_owned(),
            c if i % 2 == 0 => format!("\\u{:04x}", c as u32),
            c if i % 3 == 0 => format!("\\u{:04X}", c as u32),
            c => c.to_string(),
        })
        .collect();
    let slash_escaped = token.replace('/', "\\/");
    for echoed in [&slash_escaped, &all_escaped] {
        let body = format!(r#"{{"error":"invalid token {echoed}","code":"{echoed}"}}"#);
        let answer = FaultResponse::new(403).body(body, "application/json");
        sandbox.fail_next(Target::Any, 1, Fault::Reject(answer));
        let err = client
            .get_wallet(&seed.environment_id, &seed.wallet_id)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Forbidden, "{err:#}");
        assert_error_clean(&err, &[token, echoed]);
        assert_eq!(err.upstream_code(), Some("[redacted]"), "{echoed}");
    }
    let first = (r#"dyn_esc"ape\canary_Q7wX2"#, escaped);
    let secrets = [token, &slash_escaped, first.0, first.1];
    assert_clean("the TRACE logs", &logs.text(), &secrets);
}

/// A body cut in the middle of the echoed token (a connection closed mid-body) keeps no part
/// of it: the start left at the end of what was read is redacted too.
#[tokio::test]
async fn a_token_cut_off_mid_body_leaves_no_part_of_it() {
    use support::fault_proxy::Fault as ProxyFault;
    let (sandbox, seed) = sandbox_for(TOKEN).await;
    let proxy = support::FaultProxy::start(&sandbox.uri()).await;
    let client = client_of(proxy.uri(), TOKEN);
    // The sandbox appends " Bearer <token>" to a raw body; the proxy passes on the first
    // half of it. With this padding, that half ends 12 bytes into the token.
    let pad = "x".repeat(TOKEN.len() - 8 - 24);
    let echo = FaultResponse::new(401).text(pad.clone()).echo_token();
    sandbox.fail_next(Target::Any, 1, Fault::Reject(echo));
    proxy.next("GET", [ProxyFault::ApplyThenCutBody]);
    let err = client
        .get_wallet(&seed.environment_id, &seed.wallet_id)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unauthorized, "{err:#}");
    let excerpt = String::from_utf8_lossy(err.body_excerpt().unwrap()).into_owned();
    assert_eq!(excerpt, format!("{pad} Bearer [redacted]"));
    assert_error_clean(&err, &traces(TOKEN));
}

/// The sdk's error reader keeps a body up to a size bound; a bound in the middle of the
/// echoed token leaves its start at the end of the body, which `redact` takes out too.
#[tokio::test]
async fn a_token_cut_at_the_error_body_bound_is_redacted_by_its_tail() {
    let (sandbox, seed) = sandbox_for(TOKEN).await;
    let pad = "p".repeat(100);
    let echo = FaultResponse::new(401).text(pad.clone()).echo_token();
    sandbox.fail_next(Target::Any, 1, Fault::Reject(echo));
    let options = RequestOptions::new().bearer_token(TOKEN).unwrap();
    let api = dynamic_waas::api::Client::new(&sandbox.uri(), options);
    let err = api
        .get_waas_wallet_by_wallet_id(&seed.environment_id, &seed.wallet_id)
        .await
        .unwrap_err();
    // The bound falls 10 bytes into the token.
    let limit = pad.len() + " Bearer ".len() + 10;
    let mut response = ErrorResponse::from_error(err, limit).await.unwrap();
    assert!(response.is_truncated());
    response.redact(TOKEN.as_bytes());
    let body = String::from_utf8_lossy(response.body()).into_owned();
    assert_eq!(body, format!("{pad} Bearer [redacted]"));
}

/// The sdk used alone, its token set once in `RequestOptions`: a 2xx body it keeps (a body
/// capture) holds no echo of it either.
#[tokio::test]
async fn the_sdk_alone_redacts_its_options_token_from_a_2xx_body() {
    let (sandbox, seed) = sandbox_for(TOKEN).await;
    let capture = BodyCapture::new();
    let options = RequestOptions::new()
        .bearer_token(TOKEN)
        .unwrap()
        .capture_body(capture.clone());
    let api = dynamic_waas::api::Client::new(&sandbox.uri(), options);
    let wallet = api
        .get_waas_wallet_by_wallet_id(&seed.environment_id, &seed.wallet_id)
        .await
        .unwrap();
    let plain: Value = serde_json::from_slice(&capture.take().unwrap()).unwrap();
    let echo = FaultResponse::new(200).json(plain).echo_token();
    sandbox.fail_next(Operation::Read, 1, Fault::Reject(echo));
    let again = api
        .get_waas_wallet_by_wallet_id(&seed.environment_id, &seed.wallet_id)
        .await
        .unwrap();
    assert_eq!(again.into_inner().wallet, wallet.into_inner().wallet);
    let kept = String::from_utf8_lossy(&capture.take().unwrap()).into_owned();
    assert!(kept.contains("Bearer [redacted]"), "{kept}");
    assert_clean("the captured body", &kept, &traces(TOKEN));
}

/// A redirect whose `Location` carries the token (a server that echoes it into a URL): not
/// followed (another origin), or followed into a loop the client refuses, the error keeps no
/// trace of it, nor do the logs.
#[tokio::test]
async fn a_redirect_whose_location_echoes_the_token_leaves_no_trace_of_it() {
    let logs = support::captured_logs(tracing::Level::TRACE);
    let (sandbox, seed) = sandbox_for(TOKEN).await;
    let client = client_of(&sandbox.uri(), TOKEN);
    let once = fast().with_max_attempts(1);
    for location in [
        format!("http://elsewhere.invalid/?t={TOKEN}"),
        format!("/moved/{TOKEN}?t={TOKEN}"),
    ] {
        let echo = FaultResponse::redirect(307, &location);
        // The read, and the request that follows it (then its own redirect, to itself).
        sandbox.fail_next(Target::Any, 2, Fault::Reject(echo));
        let err = client
            .get_wallet(&seed.environment_id, &seed.wallet_id)
            .retry_policy(once.clone())
            .await
            .unwrap_err();
        assert_error_clean(&err, &traces(TOKEN));
        if location.starts_with("http") {
            // Not followed: the error says where it was sent, the token redacted.
            assert_eq!(err.kind(), &ErrorKind::InvalidResponse, "{err:#}");
            let shown = format!("{err:#}");
            assert!(shown.contains("elsewhere.invalid/?t=[redacted]"), "{shown}");
        } else {
            assert_eq!(err.kind(), &ErrorKind::Transport, "{err:#}");
        }
        sandbox.clear_faults();
    }
    assert_clean("the TRACE logs", &logs.text(), &traces(TOKEN));
}

// ---------------------------------------------------------------------------------------
// 3. Secrets in configuration: a `localhost` base URL is loopback, whatever resolves it.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_localhost_base_url_reaches_a_sandbox_on_127_0_0_1() {
    let (sandbox, seed) = sandbox_for(TOKEN).await;
    let port = sandbox.uri().rsplit(':').next().unwrap().to_owned();
    let client = client_of(&format!("http://localhost:{port}"), TOKEN);
    let wallet = client
        .get_wallet(&seed.environment_id, &seed.wallet_id)
        .await
        .unwrap();
    assert_eq!(wallet.wallet_id.as_str(), seed.wallet_id.as_str());
    assert_eq!(sandbox.requests_received(), 1);
}

#[test]
fn credentials_in_a_base_url_are_never_echoed_however_it_is_spelled() {
    for url in [
        "http://user:hunter2secret@127.0.0.1:99999/x",
        "http://user:hunter2secret@127.0.0.1:8080/x",
        "https://user:hunter2secret@app.dynamicauth.com/api/v0",
        // Reserved characters in a password end the authority early: the URL does not parse,
        // and the password must not be shown either.
        "http://user:hunter2/secret@127.0.0.1:99999/x",
        "http://user:hunter2?secret@127.0.0.1:99999/x",
        "http://user:hunter2#secret@127.0.0.1:99999/x",
        "http://user:hunter2@secret@127.0.0.1:99999/x",
        "http://hunter2secret@127.0.0.1:99999/x",
    ] {
        let err = Client::builder()
            .base_url(url)
            .token(TOKEN)
            .build()
            .unwrap_err();
        assert!(err.is_invalid_input(), "{url}: {err:#}");
        for (what, text) in error_views(&err) {
            assert_clean(&format!("{url}: {what}"), &text, &["hunter2", TOKEN]);
        }
    }
}

// ---------------------------------------------------------------------------------------
// 5. A redirect never stands in for a create's answer.
// ---------------------------------------------------------------------------------------

/// What a redirected create answered, faked: a 201 naming ids the sandbox never made.
const FAKE_ID: &str = "0badc0de-0bad-4bad-8bad-0badc0de0bad";

/// The create is applied, then answered `redirect`; the request that follows it (to any
/// route) is answered a 201 with fake ids. The result must come from the wallet.
async fn assert_settled_from_the_wallet(redirect: FaultResponse) {
    let (sandbox, seed) = sandbox_for(TOKEN).await;
    let client = client_of(&sandbox.uri(), TOKEN);
    // Queued in this order: the create takes the first, what follows the redirect the second.
    sandbox.fail_next(Operation::Create, 1, Fault::ApplyThenRespond(redirect));
    let fake = FaultResponse::new(201).json(created_body(FAKE_ID));
    sandbox.fail_next(Target::Any, 1, Fault::Reject(fake));
    let created = create(&client, &seed).await.unwrap();
    let ids: Vec<String> = support::ids(&created);
    assert!(created.is_reconciled(), "{created:?}");
    assert_eq!(ids, stored_ids(&sandbox, &seed), "{created:?}");
    assert!(!format!("{created:?}").contains(FAKE_ID), "{created:?}");
    assert_eq!(sandbox.creates_received(), 1, "{:#?}", sandbox.requests());
    assert_eq!(sandbox.creates_applied(), 1);
}

#[tokio::test]
async fn a_303_after_the_create_is_settled_from_the_wallet() {
    assert_settled_from_the_wallet(FaultResponse::redirect(303, "/elsewhere")).await;
}

#[tokio::test]
async fn a_same_origin_307_to_another_path_is_settled_from_the_wallet() {
    assert_settled_from_the_wallet(FaultResponse::redirect(307, "/elsewhere")).await;
}

/// A redirect back to the create's own URL: following a 307 would send the create again,
/// and a 303 would take a GET of it for its answer.
#[tokio::test]
async fn a_redirect_back_to_the_create_itself_sends_it_once_and_settles_it() {
    let seed = Seed::example();
    let create_path = create_path(&seed);
    for status in [307, 308, 303] {
        for to in [create_path.clone(), format!("{create_path}?again=1")] {
            let (sandbox, seed) = sandbox_for(TOKEN).await;
            let client = client_of(&sandbox.uri(), TOKEN);
            let redirect = FaultResponse::redirect(status, &to);
            sandbox.fail_next(Operation::Create, 1, Fault::ApplyThenRespond(redirect));
            let case = format!("{status} to {to}");
            let created = create(&client, &seed)
                .await
                .unwrap_or_else(|e| panic!("{case}: {e:#}"));
            assert!(created.is_reconciled(), "{case}: {created:?}");
            assert_eq!(
                support::ids(&created),
                stored_ids(&sandbox, &seed),
                "{case}"
            );
            assert_eq!(
                sandbox.creates_received(),
                1,
                "{case}: {:#?}",
                sandbox.requests()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// 6. A rate-limit pause respects each call's own patience.
// ---------------------------------------------------------------------------------------

/// What the client's policy accepts: the longest a pause of the whole client may last.
const CLIENT_MAX_RETRY_AFTER: Duration = Duration::from_secs(2);
const ABSURD: u64 = 99_999_999;

fn paced_client(uri: &str, token: &str) -> Client {
    Client::builder()
        .base_url(uri)
        .token(token.to_owned())
        .retry_policy(fast().with_max_retry_after(CLIENT_MAX_RETRY_AFTER))
        // The pause lives in the pacer: `Pacing::unlimited()` has none.
        .pacing(Pacing::upstream())
        .build()
        .unwrap()
}

/// Reads answered 429 with an absurd `Retry-After` until the client pauses: the first slows
/// the pace, and 429s for requests sent after that cut pause every request of the client for
/// at most the client policy's `max_retry_after`. Each read ends at once, rate limited with
/// the wait asked. A pause shows as a read that is not even sent: its policy accepts no
/// pause. Returns when the pause was seen (it began just before), the 429s lifted.
async fn pause(sandbox: &Sandbox, seed: &Seed, client: &Client) -> Instant {
    let absurd = FaultResponse::new(429).retry_after(ABSURD);
    sandbox.fail_at_rate(Target::Any, Rate::every(1), Fault::Reject(absurd));
    let probe = fast().with_max_retry_after(Duration::from_millis(1));
    let started = Instant::now();
    for sent in 0.. {
        let asked = Instant::now();
        let err = client
            .get_wallet(&seed.environment_id, &seed.wallet_id)
            .retry_policy(probe.clone())
            .await
            .unwrap_err();
        assert!(asked.elapsed() < Duration::from_secs(1), "{err:#}");
        assert!(
            matches!(err.kind(), ErrorKind::RateLimited { .. }),
            "{err:#}"
        );
        if err.attempts() == 0 {
            assert!(sent >= 2, "paused before two 429s: {err:#}");
            break;
        }
        assert_eq!(
            err.retry_after(),
            Some(Duration::from_secs(ABSURD)),
            "{err:#}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{sent} requests answered 429 for 5 s, and no pause"
        );
    }
    sandbox.clear_faults();
    Instant::now()
}

#[tokio::test]
async fn an_absurd_retry_after_holds_other_calls_no_longer_than_the_client_policy() {
    let (sandbox, seed) = Sandbox::seeded().await;
    let client = paced_client(&sandbox.uri(), &seed.token);
    let paused = pause(&sandbox, &seed, &client).await;
    let wallet = client
        .get_wallet(&seed.environment_id, &seed.wallet_id)
        .await
        .unwrap();
    let waited = paused.elapsed();
    assert_eq!(wallet.wallet_id.as_str(), seed.wallet_id.as_str());
    // It did wait for the pause, and for no more than the client policy accepts.
    assert!(
        waited >= CLIENT_MAX_RETRY_AFTER - Duration::from_millis(300),
        "{waited:?}"
    );
    assert!(
        waited < CLIENT_MAX_RETRY_AFTER + Duration::from_secs(1),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_call_that_accepts_a_shorter_pause_ends_at_once_as_rate_limited() {
    let (sandbox, seed) = Sandbox::seeded().await;
    let client = paced_client(&sandbox.uri(), &seed.token);
    pause(&sandbox, &seed, &client).await;
    let sent = sandbox.requests_received();
    let impatient = fast().with_max_retry_after(Duration::from_millis(500));
    let started = Instant::now();
    let err = client
        .get_wallet(&seed.environment_id, &seed.wallet_id)
        .retry_policy(impatient)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(400), "{err:#}");
    assert!(
        matches!(err.kind(), ErrorKind::RateLimited { .. }),
        "not rate limited: {err:#}"
    );
    let left = err.retry_after().expect("how long the pause lasts");
    assert!(
        left > Duration::from_millis(500) && left <= CLIENT_MAX_RETRY_AFTER,
        "{left:?}"
    );
    assert_eq!(err.attempts(), 0, "{err:#}");
    assert_eq!(sandbox.requests_received(), sent, "sent during the pause");
}

/// The same, while a patient call already waits out the pause in the pacer's queue: the
/// impatient one must not queue behind it.
#[tokio::test]
async fn a_call_that_accepts_a_shorter_pause_ends_at_once_behind_a_patient_one() {
    let (sandbox, seed) = Sandbox::seeded().await;
    let client = paced_client(&sandbox.uri(), &seed.token);
    pause(&sandbox, &seed, &client).await;
    let patient = client.get_wallet(&seed.environment_id, &seed.wallet_id);
    let patient = tokio::spawn(patient.into_future());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let impatient = fast().with_max_retry_after(Duration::from_millis(500));
    let started = Instant::now();
    let result = client
        .get_wallet(&seed.environment_id, &seed.wallet_id)
        .retry_policy(impatient)
        .await
        .map(|_| "sent once the pause was over");
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(400),
        "held {took:?} behind the patient call: {result:?}"
    );
    let err = result.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::RateLimited {
                retry_after: Some(_)
            }
        ),
        "{err:#}"
    );
    patient.await.unwrap().unwrap();
}

#[tokio::test]
async fn bulk_jobs_wait_out_the_pause_and_succeed() {
    let (builder, rows) = support::with_wallets(3);
    let seed = Seed::example();
    let sandbox = builder.start().await;
    let client = paced_client(&sandbox.uri(), &seed.token);
    let paused = pause(&sandbox, &seed, &client).await;
    let jobs: Vec<BackupJob> = rows.iter().map(support::job).collect();
    let outcomes: Vec<_> = client
        .create_many(futures_util::stream::iter(jobs), 3)
        .collect()
        .await;
    let waited = paused.elapsed();
    assert_eq!(outcomes.len(), 3);
    for outcome in &outcomes {
        assert_eq!(outcome.status, BackupStatus::Created, "{outcome:?}");
    }
    assert!(
        waited >= CLIENT_MAX_RETRY_AFTER - Duration::from_millis(300),
        "{waited:?}"
    );
    assert!(
        waited < CLIENT_MAX_RETRY_AFTER + Duration::from_secs(2),
        "{waited:?}"
    );
    assert_eq!(sandbox.creates_received(), 3);
}
