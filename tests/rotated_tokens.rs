//! Tokens a client with a `TokenProvider` rotated out, or rotated in while an answer was on
//! its way: a server that saw them may echo them, and they are taken out of what the client
//! keeps and prints as its current token is. From a review that tried to break it.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dynamic_waas::{Client, Token, TokenError, TokenFuture};
use dynamic_waas_sandbox::{Fault, FaultResponse, Operation, Seed, Target};
use serde_json::{json, Value};
use support::hostile::{assert_clean, assert_error_clean, create, created_body, error_views};
use support::{fast, provider_client_at};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Hands out `tokens` in order (the last one again after that); each but the last expires at
/// once, so that the next call refreshes.
struct Sequence(Mutex<Vec<String>>);

impl Sequence {
    fn new(tokens: &[&str]) -> Self {
        Self(Mutex::new(tokens.iter().map(|t| t.to_string()).collect()))
    }
}

impl dynamic_waas::TokenProvider for Sequence {
    fn token(&self) -> TokenFuture<'_> {
        let (next, last) = {
            let mut left = self.0.lock().unwrap();
            if left.len() > 1 {
                (left.remove(0), false)
            } else {
                (left[0].clone(), true)
            }
        };
        Box::pin(async move {
            let token = Token::new(next);
            Ok(if last {
                token
            } else {
                token.expires_in(Duration::from_millis(1))
            })
        })
    }
}

/// A sandbox of the example seed in which every one of `tokens` is valid.
async fn sandbox_with(tokens: &[&str]) -> (dynamic_waas_sandbox::Sandbox, Seed) {
    let seed = Seed::example();
    let mut builder = seed.builder();
    for token in tokens {
        builder = builder.token(*token, seed.environment_id.clone());
    }
    (builder.start().await, seed)
}

fn canary(name: &str) -> String {
    format!("dyn_rotation_{name}_canary_Zq8Wm3Lp")
}

// ---------------------------------------------------------------------------------------
// The token rotated out (still valid, as rotations overlap) echoed in a later answer: an
// error, a 2xx body kept as received, a 201.
// ---------------------------------------------------------------------------------------

const OLD: &str = "dyn_review_old_canary_Pw4Lk9Jd2Rs6";
const NEW: &str = "dyn_review_new_canary_Mx7Cv1Bn5Tq3";

#[tokio::test]
async fn a_rotated_out_token_echoed_later_is_redacted_too() {
    let (sandbox, seed) = sandbox_with(&[OLD, NEW]).await;
    let client = provider_client_at(&sandbox.uri(), Sequence::new(&[OLD, NEW]), fast());
    client
        .get_wallet(&seed.environment_id, &seed.wallet_id)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let body = json!({"error": format!("you also sent Bearer {OLD}"), "code": OLD});
    sandbox.fail_next(
        Target::Any,
        1,
        Fault::Reject(FaultResponse::new(403).json(body).header("x-echo-old", OLD)),
    );
    let err = client
        .get_wallet(&seed.environment_id, &seed.wallet_id)
        .await
        .unwrap_err();
    let requests = sandbox.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    // The answer is there, without the token.
    let views = error_views(&err);
    assert!(
        views.iter().any(|(_, v)| v.contains("you also sent")),
        "{views:?}"
    );
    assert_error_clean(&err, &[OLD]);

    // In a success: its body (kept as received too) and the typed result.
    let (_, plain) = client
        .get_wallet(&seed.environment_id, &seed.wallet_id)
        .with_raw_body()
        .await
        .unwrap();
    let mut body: Value = serde_json::from_slice(&plain).unwrap();
    body["wallet"]["note"] = json!(format!("you also sent Bearer {OLD}"));
    let echo = FaultResponse::new(200).json(body);
    sandbox.fail_next(Target::Any, 1, Fault::Reject(echo));
    let (typed, raw) = client
        .get_wallet(&seed.environment_id, &seed.wallet_id)
        .with_raw_body()
        .await
        .unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.contains("you also sent Bearer"), "{raw}");
    assert_clean("the 2xx body", &raw, &[OLD]);
    assert_clean("the typed wallet", &format!("{typed:?}"), &[OLD]);
    // A create's 201 that echoes it.
    let mut body = created_body("2b4f9a51-5a2c-4e7e-9d3c-6f1e8a7b9c0d");
    body["message"] = json!(format!("created; you also sent {OLD}"));
    sandbox.fail_next(
        Operation::Create,
        1,
        Fault::ApplyThenRespond(FaultResponse::new(201).json(body)),
    );
    let created = create(&client, &seed).await.unwrap();
    assert_clean(
        "the 201",
        &format!(
            "{created:?} {}",
            String::from_utf8_lossy(created.raw_body().unwrap())
        ),
        &[OLD],
    );
}

// ---------------------------------------------------------------------------------------
// The last 8 tokens a refresh replaced are kept, a token that comes back counted as replaced
// again (it was in use more recently than the ones before it).
// ---------------------------------------------------------------------------------------

/// Rotates through the tokens `names` name (one call each), then has the server echo `echoed`
/// (in a 403's body and a header): the error.
async fn rotate_then_echo(names: &[&str], echoed: &str) -> dynamic_waas::Error {
    let tokens: Vec<String> = names.iter().map(|n| canary(n)).collect();
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let (sandbox, seed) = sandbox_with(&refs).await;
    let client = provider_client_at(&sandbox.uri(), Sequence::new(&refs), fast());
    for _ in 0..names.len() {
        client
            .get_wallet(&seed.environment_id, &seed.wallet_id)
            .await
            .unwrap();
    }
    let body = json!({"error": format!("you sent Bearer {echoed} a minute ago")});
    sandbox.fail_next(
        Target::Any,
        1,
        Fault::Reject(FaultResponse::new(403).json(body).header("x-echo", echoed)),
    );
    let err = client
        .get_wallet(&seed.environment_id, &seed.wallet_id)
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(403), "{err:#}");
    err
}

#[tokio::test]
async fn a_token_that_came_back_is_kept_as_the_newest_replaced() {
    // A secret store read that lags once: A, B, then A again (a stale read), then fresh
    // tokens. The refreshes replace, in order: A, B, A, C, D, E, F, G, H, I. The last 8
    // distinct ones are I H G F E D C A: B (replaced before A's second use) is dropped, not A.
    let a = canary("a");
    let names = ["a", "b", "a", "c", "d", "e", "f", "g", "h", "i", "j"];
    let err = rotate_then_echo(&names, &a).await;
    assert_error_clean(&err, &[&a]);
}

/// The control: the same rotations with another first token (A used once, at the same
/// place) keep A redacted.
#[tokio::test]
async fn control_a_token_replaced_eight_rotations_ago_is_redacted() {
    let a = canary("a");
    let names = ["x", "b", "a", "c", "d", "e", "f", "g", "h", "i", "j"];
    let err = rotate_then_echo(&names, &a).await;
    assert_error_clean(&err, &[&a]);
}

// ---------------------------------------------------------------------------------------
// An answer is cleaned of the client's tokens as they are when it arrives: a token rotated in
// while the attempt was in flight (another call's 401 refreshed it) is one the server has
// seen by then.
// ---------------------------------------------------------------------------------------

const FIRST: &str = "dyn_rotation_first_canary_Hs4Kd8Vn";
const SECOND: &str = "dyn_rotation_second_canary_Qt2Xc6Bm";

/// A server that records every bearer token it is sent and answers:
/// - the first request: held until a token other than [`FIRST`] has been seen, then 403
///   with the tokens seen so far (an echo of "what you sent recently");
/// - any other request with [`FIRST`]: 401 (so that the client rotates to [`SECOND`]);
/// - anything else: 403.
async fn echoing_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let state = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let seen = state.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let mut headers = [httparse::EMPTY_HEADER; 32];
                let mut request = httparse::Request::new(&mut headers);
                let _ = request.parse(&buf);
                let token = request
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("authorization"))
                    .and_then(|h| std::str::from_utf8(h.value).ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or_default()
                    .to_owned();
                let index = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(token.clone());
                    seen.len()
                };
                let (status, body) = if index == 1 {
                    loop {
                        let other = seen.lock().unwrap().iter().any(|t| t != FIRST);
                        if other {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    let recent = seen.lock().unwrap().join(", ");
                    (
                        "403 Forbidden",
                        json!({"error": format!("recent tokens: {recent}")}),
                    )
                } else if token == FIRST {
                    ("401 Unauthorized", json!({"error": "expired"}))
                } else {
                    ("403 Forbidden", json!({"error": "no"}))
                };
                let body = body.to_string();
                let head = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (uri, seen)
}

struct TwoTokens(Mutex<Vec<&'static str>>);

impl dynamic_waas::TokenProvider for TwoTokens {
    fn token(&self) -> TokenFuture<'_> {
        let next = {
            let mut left = self.0.lock().unwrap();
            if left.len() > 1 {
                left.remove(0)
            } else {
                left[0]
            }
        };
        Box::pin(async move { Ok(Token::new(next)) })
    }
}

#[tokio::test]
async fn a_token_rotated_in_while_an_attempt_was_in_flight_is_redacted_from_its_answer() {
    let (uri, seen) = echoing_server().await;
    let client = provider_client_at(
        &uri,
        TwoTokens(Mutex::new(vec![FIRST, SECOND])),
        fast().with_max_attempts(1),
    );
    let seed = Seed::example();
    // Call X is sent with FIRST and held by the server.
    let slow = tokio::spawn(
        client
            .get_wallet(&seed.environment_id, &seed.wallet_id)
            .send(),
    );
    while seen.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Call Y: 401 with FIRST, the client rotates to SECOND and sends it.
    let _ = client
        .get_wallet(&seed.environment_id, &seed.wallet_id)
        .await;
    assert!(seen.lock().unwrap().iter().any(|t| t == SECOND), "{seen:?}");
    // X's answer echoes what the server was sent recently: the client's live token too.
    let err = slow.await.unwrap().unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(403), "{err:#}");
    let views = error_views(&err);
    assert!(
        views.iter().any(|(_, v)| v.contains("recent tokens")),
        "{views:?}"
    );
    assert_error_clean(&err, &[FIRST, SECOND]);
}

// ---------------------------------------------------------------------------------------
// The sdk alone: `hooks::Attempt::also_redact` cleans a success body too, also when the hook
// knows no current token (it was sent another way).
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn also_redact_alone_cleans_a_2xx_body() {
    use dynamic_waas::api::hooks::{bearer_header, Attempt, SentTokens};
    use dynamic_waas::api::RequestOptions;
    let old = canary("sdk_old");
    let current = canary("sdk_current");
    let (sandbox, seed) = sandbox_with(&[&current]).await;
    let env: dynamic_waas::api::ids::EnvironmentId = seed.environment_id.as_str().parse().unwrap();
    let wallet: dynamic_waas::api::ids::WalletId = seed.wallet_id.as_str().parse().unwrap();
    // A wallet body, then the same with the old token echoed in it.
    let with_token = dynamic_waas::api::Client::new(
        &sandbox.uri(),
        RequestOptions::new().bearer_token(&current).unwrap(),
    );
    let plain = with_token
        .get_waas_wallet_by_wallet_id(&env, &wallet)
        .await
        .unwrap();
    let mut body = serde_json::to_value(plain.into_inner()).unwrap();
    body["wallet"]["derivationPath"] = json!(format!("echo {old}"));
    let rotated_out = SentTokens::new();
    rotated_out.set([bearer_header(&old).unwrap()]);

    // Control: with the current token in the attempt, the old one is taken out.
    sandbox.fail_next(Target::Any, 1, FaultResponse::new(200).json(body.clone()));
    let bare = dynamic_waas::api::Client::new(&sandbox.uri(), RequestOptions::new());
    let answer = Attempt::new()
        .authorization(bearer_header(&current).unwrap())
        .also_redact(rotated_out.clone())
        .scope(bare.get_waas_wallet_by_wallet_id(&env, &wallet))
        .await
        .unwrap();
    assert_clean(
        "with a token",
        &format!("{:?}", answer.into_inner()),
        &[&old],
    );

    // The token sent another way (here: none the hook knows), the old ones still given.
    sandbox.fail_next(Target::Any, 1, FaultResponse::new(200).json(body));
    let answer = Attempt::new()
        .also_redact(rotated_out)
        .scope(bare.get_waas_wallet_by_wallet_id(&env, &wallet))
        .await
        .unwrap();
    assert_clean(
        "also_redact alone",
        &format!("{:?}", answer.into_inner()),
        &[&old],
    );
}

// ---------------------------------------------------------------------------------------
// Other ways a server may echo an old token.
// ---------------------------------------------------------------------------------------

/// Two tokens alternating (A B A B ...): both stay redacted, however often they swap.
#[tokio::test]
async fn alternating_tokens_both_stay_redacted() {
    let (a, b) = (canary("alt_a"), canary("alt_b"));
    let order: Vec<&str> = [&a, &b, &a, &b, &a, &b, &a, &b, &a, &b, &a, &b]
        .iter()
        .map(|s| s.as_str())
        .collect();
    let (sandbox, seed) = sandbox_with(&[&a, &b]).await;
    let client = provider_client_at(&sandbox.uri(), Sequence::new(&order), fast());
    for _ in 0..order.len() {
        client
            .get_wallet(&seed.environment_id, &seed.wallet_id)
            .await
            .unwrap();
    }
    // JSON-escaped, in a header value, and as a header name (lower-case).
    let escaped_a = format!("\\u0064{}", &a[1..]);
    let body = format!(r#"{{"error":"you sent {escaped_a} and {b}","code":"{b}"}}"#);
    let lower = b.to_ascii_lowercase();
    sandbox.fail_next(
        Target::Any,
        1,
        Fault::Reject(
            FaultResponse::new(403)
                .body(body, "application/json")
                .header("x-echo", &a)
                .header(&lower, "1"),
        ),
    );
    let err = client
        .get_wallet(&seed.environment_id, &seed.wallet_id)
        .await
        .unwrap_err();
    assert_error_clean(&err, &[&a, &b, &lower]);
}

/// An old token cut off by the error body's size bound, and after a rotation the provider
/// fails (the current token, still valid, is kept): the old one is still redacted.
#[tokio::test]
async fn a_cut_old_token_and_a_provider_failing_after_rotation() {
    struct ThenFails(Mutex<u32>, String, String);
    impl dynamic_waas::TokenProvider for ThenFails {
        fn token(&self) -> TokenFuture<'_> {
            let n = {
                let mut n = self.0.lock().unwrap();
                *n += 1;
                *n
            };
            let (old, new) = (self.1.clone(), self.2.clone());
            Box::pin(async move {
                match n {
                    1 => Ok(Token::new(old).expires_in(Duration::from_millis(1))),
                    // Valid for a minute, so refreshed (REFRESH_AHEAD) and kept on failure.
                    2 => Ok(Token::new(new).expires_in(Duration::from_secs(60))),
                    _ => Err(TokenError::new("the secret store is down")),
                }
            })
        }
    }
    let (old, new) = (canary("cut_old"), canary("cut_new"));
    let (sandbox, seed) = sandbox_with(&[&old, &new]).await;
    let limit = 4096;
    let client = Client::builder()
        .base_url(sandbox.uri())
        .token_provider(ThenFails(Mutex::new(0), old.clone(), new.clone()))
        .retry_policy(fast())
        .max_response_bytes(limit)
        .pacing(dynamic_waas::Pacing::unlimited())
        .build()
        .unwrap();
    for _ in 0..3 {
        client
            .get_wallet(&seed.environment_id, &seed.wallet_id)
            .await
            .unwrap();
    }
    // The body's first `limit` bytes end with the old token's first 12 bytes.
    let head = format!("{{\"error\":\"{}", "x".repeat(limit - 10 - 12));
    let body = format!("{head}{old}\"}}");
    assert_eq!(&body[limit - 12..limit], &old[..12]);
    sandbox.fail_next(
        Target::Any,
        1,
        Fault::Reject(FaultResponse::new(403).body(body, "application/json")),
    );
    let err = client
        .get_wallet(&seed.environment_id, &seed.wallet_id)
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(403), "{err:#}");
    assert_error_clean(&err, &[&old, &old[..12], &new]);
}

/// A read redirected (same origin) to a path holding the old token, answered 403 there;
/// and a create's 201 after a redirect holding it: nothing keeps it.
#[tokio::test]
async fn an_old_token_in_a_redirect_url_is_kept_nowhere() {
    let (old, new) = (canary("redir_old"), canary("redir_new"));
    let (sandbox, seed) = sandbox_with(&[&old, &new]).await;
    let client = provider_client_at(&sandbox.uri(), Sequence::new(&[&old, &new]), fast());
    for _ in 0..2 {
        client
            .get_wallet(&seed.environment_id, &seed.wallet_id)
            .await
            .unwrap();
    }
    let moved = format!("/moved/{old}?t={old}");
    sandbox.fail_next(
        Target::Any,
        1,
        Fault::Reject(FaultResponse::redirect(307, &moved)),
    );
    sandbox.fail_next(
        Target::Any,
        1,
        Fault::Reject(FaultResponse::new(403).json(json!({"error": "no"}))),
    );
    let err = client
        .get_wallet(&seed.environment_id, &seed.wallet_id)
        .retry_policy(fast().with_max_attempts(1))
        .await
        .unwrap_err();
    assert_error_clean(&err, &[&old, &new]);

    sandbox.fail_next(
        Operation::Create,
        1,
        Fault::ApplyThenRespond(FaultResponse::redirect(303, &moved)),
    );
    let created = create(&client, &seed).await.unwrap();
    assert!(created.is_reconciled(), "{created:?}");
    assert_clean("the result", &format!("{created:?}"), &[&old, &new]);
}
