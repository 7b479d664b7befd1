//! A security review's attacks on "a bearer token never leaks" and "what a hostile server
//! sends cannot corrupt the client's decisions", over real HTTP on loopback against the
//! sandbox. Each test is one attack; each must pass once the client holds.

mod support;

use std::time::{Duration, Instant};

use dynamic_waas::api::ids::{EnvironmentId, WalletId};
use dynamic_waas::api::redact::redact;
use dynamic_waas::api::RequestOptions;
use dynamic_waas::{BackupStatus, Client};
use dynamic_waas_sandbox::{Fault, FaultResponse, Operation, Seed, Target};
use serde_json::{json, Value};
use support::fast;
use support::hostile::{
    assert_clean, assert_error_clean, create, create_path, created_body, sandbox_for,
};

const TOKEN: &str = "dyn_review_canary_Hq3Zt8Wm2Np5Xk7";

fn client_of(uri: &str, token: &str) -> Client {
    support::client_at(uri, token, fast())
}

// ---------------------------------------------------------------------------------------
// 1. The URL fingerprint (sdk/src/hooks.rs) is FxHash-style: invertible, so a server that
//    knows the URL it was sent (it does) can choose a redirect URL that fingerprints the
//    same, with the token in it.
// ---------------------------------------------------------------------------------------

/// sdk/src/hooks.rs's `fingerprint`, as of commit d47f443, byte for byte.
fn fingerprint(url: &str) -> u64 {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let bytes = url.as_bytes();
    let mut hash = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().unwrap());
        hash = (hash.rotate_left(5) ^ word).wrapping_mul(K);
    }
    let mut last = [0; 8];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    (hash.rotate_left(5) ^ u64::from_le_bytes(last)).wrapping_mul(K)
}

/// The inverse of an odd number modulo 2^64 (Newton's iteration).
fn inverse(k: u64) -> u64 {
    let mut x = k;
    for _ in 0..6 {
        x = x.wrapping_mul(2u64.wrapping_sub(k.wrapping_mul(x)));
    }
    assert_eq!(k.wrapping_mul(x), 1);
    x
}

/// A URL starting with `prefix` (then padding and 16 chosen characters of a query) whose
/// fingerprint is `target`'s, and which a URL parser keeps exactly as written.
fn colliding_url(prefix: &str, target: &str) -> String {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    const SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
    let k_inv = inverse(K);
    let goal = fingerprint(target);
    let mut head = prefix.to_owned();
    while !head.len().is_multiple_of(8) {
        head.push('a');
    }
    let total = head.len() + 16;
    // The state after the prefix's chunks (its length is the total's).
    let mut state = total as u64;
    for chunk in head.as_bytes().chunks_exact(8) {
        state =
            (state.rotate_left(5) ^ u64::from_le_bytes(chunk.try_into().unwrap())).wrapping_mul(K);
    }
    // The last chunk's state, from the goal: no remainder, so the final step XORs zero.
    let last_state = goal.wrapping_mul(k_inv).rotate_right(5);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..50_000_000u64 {
        let mut free = [0u8; 8];
        for byte in &mut free {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *byte = SAFE[(seed % SAFE.len() as u64) as usize];
        }
        let mid = (state.rotate_left(5) ^ u64::from_le_bytes(free)).wrapping_mul(K);
        let word = last_state.wrapping_mul(k_inv) ^ mid.rotate_left(5);
        let solved = word.to_le_bytes();
        if solved.iter().all(|b| SAFE.contains(b)) {
            let url = format!(
                "{head}{}{}",
                std::str::from_utf8(&free).unwrap(),
                std::str::from_utf8(&solved).unwrap()
            );
            assert_eq!(fingerprint(&url), goal);
            let parsed = dynamic_waas::reqwest::Url::parse(&url).unwrap();
            assert_eq!(parsed.as_str(), url, "the parser rewrote it");
            return url;
        }
    }
    panic!("no collision found");
}

fn sent_url(base: &str, path: &str) -> String {
    dynamic_waas::reqwest::Url::parse(&format!("{base}{path}"))
        .unwrap()
        .as_str()
        .to_owned()
}

/// The read is redirected (same origin) to a URL holding the token that fingerprints as the
/// read's own URL; that URL redirects back to the read's path, which the client refuses.
/// reqwest's error names the URL that sent the refused redirect: the crafted one. The
/// client keeps a reqwest error's URL only when it "is" the URL it sent, by fingerprint.
#[tokio::test]
async fn a_redirect_url_that_fingerprints_as_the_sent_one_keeps_no_token() {
    let (sandbox, seed) = sandbox_for(TOKEN).await;
    let base = sandbox.uri();
    let read_path = format!(
        "/environments/{}/waas/{}",
        seed.environment_id, seed.wallet_id
    );
    let sent = sent_url(&base, &read_path);
    let crafted = colliding_url(&format!("{base}/moved/{TOKEN}?t={TOKEN}&p="), &sent);
    assert_ne!(crafted, sent);
    sandbox.fail_next(
        Target::Any,
        1,
        Fault::Reject(FaultResponse::redirect(307, &crafted)),
    );
    sandbox.fail_next(
        Target::Any,
        1,
        Fault::Reject(FaultResponse::redirect(307, &read_path)),
    );
    let client = client_of(&base, TOKEN);
    let err = client
        .get_wallet(&seed.environment_id, &seed.wallet_id)
        .retry_policy(fast().with_max_attempts(1))
        .await
        .unwrap_err();
    assert_error_clean(&err, &[TOKEN, &TOKEN[..8]]);
}

/// A create answered 303 to a URL that fingerprints as the create's own: the GET that
/// follows is answered a 201 with ids the server never stored. A redirected create must be
/// settled from the wallet, whatever answered it.
#[tokio::test]
async fn a_303_to_a_url_fingerprinting_as_the_create_is_still_settled_from_the_wallet() {
    const FAKE_ID: &str = "0badc0de-0bad-4bad-8bad-0badc0de0bad";
    let (sandbox, seed) = sandbox_for(TOKEN).await;
    let base = sandbox.uri();
    let create_path = create_path(&seed);
    let sent = sent_url(&base, &create_path);
    let crafted = colliding_url(&format!("{base}/elsewhere?p="), &sent);
    sandbox.fail_next(
        Operation::Create,
        1,
        Fault::ApplyThenRespond(FaultResponse::redirect(303, &crafted)),
    );
    let fake = FaultResponse::new(201).json(created_body(FAKE_ID));
    sandbox.fail_next(Target::Any, 1, Fault::Reject(fake));
    let client = client_of(&base, TOKEN);
    let created = create(&client, &seed).await.unwrap();
    assert!(
        !format!("{created:?}").contains(FAKE_ID),
        "a redirect's answer taken for the create's: {created:?}"
    );
    assert!(created.is_reconciled(), "{created:?}");
    assert_eq!(sandbox.creates_applied(), 1);
}

// ---------------------------------------------------------------------------------------
// 2. Header names: HTTP lower-cases them, and a token of lower-case letters, digits and `_`
//    is a valid header name. The facade's Error Debug lists every header name.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_header_named_after_the_token_leaves_no_trace_of_it() {
    // A lower-case token (a valid header name as it is), and the canary, lower-cased by
    // the HTTP stack on its way in.
    let lower = "dyn_review_lower_canary_q3zt8wm2np5x";
    for token in [lower, TOKEN] {
        let (sandbox, seed) = sandbox_for(token).await;
        let named = token.to_ascii_lowercase();
        let answer = FaultResponse::new(401)
            .header(&named, "1")
            .header("x-other", "fine");
        sandbox.fail_next(Target::Any, 1, Fault::Reject(answer));
        let client = client_of(&sandbox.uri(), token);
        let err = client
            .get_wallet(&seed.environment_id, &seed.wallet_id)
            .await
            .unwrap_err();
        assert_eq!(err.status().map(|s| s.as_u16()), Some(401), "{err:#}");
        assert_error_clean(&err, &[&named, &named[..8]]);
    }
}

// ---------------------------------------------------------------------------------------
// 3. The sdk used alone, its token in `RequestOptions`: what its own errors and answers
//    print.
// ---------------------------------------------------------------------------------------

fn sdk_alone(uri: &str) -> dynamic_waas::api::Client {
    let options = RequestOptions::new().bearer_token(TOKEN).unwrap();
    dynamic_waas::api::Client::new(uri, options)
}

fn ids(seed: &Seed) -> (EnvironmentId, WalletId) {
    (
        seed.environment_id.as_str().parse().unwrap(),
        seed.wallet_id.as_str().parse().unwrap(),
    )
}

/// A 401 (declared) and a 418 (undeclared) that echo the token in a header: the generated
/// error's Display and Debug print every response header.
#[tokio::test]
async fn the_sdk_alone_prints_no_echoed_header_in_its_errors() {
    for status in [401, 418] {
        let (sandbox, seed) = sandbox_for(TOKEN).await;
        let (env, wallet) = ids(&seed);
        let echo = FaultResponse::new(status).echo_token();
        sandbox.fail_next(Target::Any, 1, Fault::Reject(echo));
        let err = sdk_alone(&sandbox.uri())
            .get_waas_wallet_by_wallet_id(&env, &wallet)
            .await
            .unwrap_err();
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status));
        assert_clean(
            &format!("the sdk's {status} error"),
            &format!("{err} | {err:?} | {err:#}"),
            &[TOKEN],
        );
    }
}

/// A same-origin redirect to a URL holding the token (the generated client's reqwest client
/// follows it), answered with an undeclared status: the error prints the response's URL.
#[tokio::test]
async fn the_sdk_alone_prints_no_redirect_url_holding_the_token() {
    let (sandbox, seed) = sandbox_for(TOKEN).await;
    let (env, wallet) = ids(&seed);
    let moved = FaultResponse::redirect(307, &format!("/moved/{TOKEN}?t={TOKEN}"));
    sandbox.fail_next(Target::Any, 1, Fault::Reject(moved));
    sandbox.fail_next(Target::Any, 1, Fault::Reject(FaultResponse::new(418)));
    let err = sdk_alone(&sandbox.uri())
        .get_waas_wallet_by_wallet_id(&env, &wallet)
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(418), "{err}");
    assert_clean("the sdk's error", &format!("{err} | {err:?}"), &[TOKEN]);
}

/// A 200 that echoes the token in a header: the body is redacted, the headers handed on
/// (`ResponseValue::headers`) are not.
#[tokio::test]
async fn the_sdk_alone_hands_on_no_echoed_header_of_a_2xx() {
    let (sandbox, seed) = sandbox_for(TOKEN).await;
    let (env, wallet) = ids(&seed);
    let api = sdk_alone(&sandbox.uri());
    let plain = api
        .get_waas_wallet_by_wallet_id(&env, &wallet)
        .await
        .unwrap();
    let body = serde_json::to_value(plain.into_inner()).unwrap();
    let echo = FaultResponse::new(200)
        .json(body)
        .echo_token()
        .header(&TOKEN.to_ascii_lowercase(), "1");
    sandbox.fail_next(Operation::Read, 1, Fault::Reject(echo));
    let answer = api
        .get_waas_wallet_by_wallet_id(&env, &wallet)
        .await
        .unwrap();
    let headers = format!("{:?}", answer.headers());
    assert!(headers.contains("x-echo"), "{headers}");
    assert_clean(
        "the 2xx's headers",
        &headers,
        &[TOKEN, &TOKEN.to_ascii_lowercase()],
    );
}

// ---------------------------------------------------------------------------------------
// 4. `redact` itself: every JSON writing of a token, the fast path, hostile sizes.
// ---------------------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One character of a token as a JSON string may hold it: itself (where JSON allows), a
/// short escape, or `\u` with hex digits in any case.
fn write_char(c: u8, rng: &mut Rng) -> String {
    let short = matches!(c, b'"' | b'\\' | b'/');
    let must_escape = matches!(c, b'"' | b'\\');
    loop {
        match rng.below(3) {
            0 if !must_escape => return (c as char).to_string(),
            1 if short => return format!("\\{}", c as char),
            2 => {
                let hex: String = format!("{c:04x}")
                    .chars()
                    .map(|h| {
                        if rng.below(2) == 0 {
                            h.to_ascii_uppercase()
                        } else {
                            h
                        }
                    })
                    .collect();
                return format!("\\u{hex}");
            }
            _ => continue,
        }
    }
}

/// `text` as a JSON encoder writes it inside a string.
fn json_inner(text: &str) -> String {
    let quoted = json!(text).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// Noise around an echo: text whose JSON escapes are valid (backslashes, escaped quotes,
/// the token's first characters, its escapes).
fn noise(rng: &mut Rng, token: &[u8]) -> String {
    let pieces = [
        "\\\\".to_owned(),
        "\\\"".to_owned(),
        "\\/".to_owned(),
        "\\u005c".to_owned(),
        "\\u005C".to_owned(),
        " ".to_owned(),
        "x".to_owned(),
        json_inner(&(token[0] as char).to_string()),
        format!("\\u{:04x}", token[0]),
        // The token's first half, as a JSON encoder writes it.
        json_inner(std::str::from_utf8(&token[..token.len() / 2]).unwrap()),
    ];
    (0..rng.below(6))
        .map(|_| pieces[rng.below(pieces.len())].clone())
        .collect()
}

/// Every JSON string in `value`, decoded.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(fields) => fields.iter().for_each(|(k, v)| {
            out.push(k.clone());
            strings(v, out)
        }),
        _ => {}
    }
}

#[test]
fn no_json_writing_of_a_token_survives_redaction() {
    let tokens: [&[u8]; 5] = [
        TOKEN.as_bytes(),
        br#"dyn_q"b\s/0123abcd"#,
        br#"\\dyn\"x/\u005cyz9"#,
        br#"/\"/\\/"/abcdefg"#,
        br#"dyn_\u0064\\u0064yz"#,
    ];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for token in tokens {
        let text = std::str::from_utf8(token).unwrap();
        for round in 0..4_000 {
            let echoes = 1 + rng.below(3);
            let mut body = String::from("{\"e\":\"");
            for _ in 0..echoes {
                body.push_str(&noise(&mut rng, token));
                for &c in token {
                    body.push_str(&write_char(c, &mut rng));
                }
                body.push_str(&noise(&mut rng, token));
            }
            body.push_str("\"}");
            let decoded: Value = serde_json::from_str(&body).unwrap();
            assert!(
                decoded["e"].as_str().unwrap().contains(text),
                "the test wrote no echo: {body}"
            );
            let clean = redact(body.as_bytes(), token).unwrap_or_else(|| body.clone().into());
            let clean = String::from_utf8(clean).unwrap();
            let case = format!("round {round}, token {text:?}: {body} -> {clean}");
            assert!(!clean.contains(text), "raw: {case}");
            if let Ok(value) = serde_json::from_str::<Value>(&clean) {
                let mut found = Vec::new();
                strings(&value, &mut found);
                for s in found {
                    assert!(!s.contains(text), "decoded: {case}");
                }
            }
        }
    }
}

/// What a redaction leaves must not hold the secret again: `[redacted]` followed by the
/// rest of the text can spell a secret that starts with the end of `[redacted]`.
#[test]
fn a_redaction_does_not_spell_the_secret_anew() {
    for secret in ["]abcdefgh_canary", "d]abcdefgh_canary", "ted]canary_Q7wX"] {
        let tail = &secret[secret.find(']').unwrap() + 1..];
        let body = format!("echo {secret}{tail} end");
        let clean = redact(body.as_bytes(), secret.as_bytes()).unwrap();
        let clean = String::from_utf8(clean).unwrap();
        assert!(!clean.contains(secret), "{body:?} -> {clean:?}");
    }
}

/// Bodies built to make the matcher work hard, at the default response bound (1 MiB): each
/// redaction stays linear (about 0.5 µs a byte at worst in a debug build, so well under the
/// bound below even on a loaded machine).
#[test]
fn hostile_bodies_redact_in_linear_time() {
    let token = TOKEN.as_bytes();
    let size = dynamic_waas::DEFAULT_MAX_RESPONSE_BYTES;
    let near_miss = &TOKEN[..TOKEN.len() - 1];
    let shapes: Vec<(&str, Vec<u8>)> = vec![
        ("backslashes", vec![b'\\'; size]),
        ("first bytes", vec![b'd'; size]),
        ("two bytes", b"dy".repeat(size / 2)),
        ("escaped firsts", b"\\u0064".repeat(size / 6)),
        ("escaped pairs", b"\\u0064\\u0079".repeat(size / 12)),
        (
            "near misses",
            near_miss.as_bytes().repeat(size / near_miss.len()),
        ),
        ("cut escapes", b"dyn_\\u00".repeat(size / 8)),
    ];
    for (name, body) in shapes {
        let started = Instant::now();
        let _ = redact(&body, token);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "{name}: {took:?}");
    }
}

// ---------------------------------------------------------------------------------------
// 5. ids: every constructor stores the validated text.
// ---------------------------------------------------------------------------------------

#[test]
fn every_id_constructor_keeps_the_text_it_validated() {
    let text = "95b11417-f18f-457f-8804-68e361f9164f";
    let from_str: WalletId = text.parse().unwrap();
    let from_string = WalletId::try_from(text.to_owned()).unwrap();
    let from_json: WalletId = serde_json::from_value(json!(text)).unwrap();
    let from_uuid = WalletId::from(uuid::Uuid::parse_str(text).unwrap());
    for id in [&from_str, &from_string, &from_json, &from_uuid] {
        assert_eq!(id.as_str(), text);
        assert_eq!(id.to_string(), text);
        assert_eq!(id.to_uuid().unwrap().hyphenated().to_string(), text);
    }
    // 36 characters that are not 36 bytes, or not hex: refused, never truncated to fit.
    for bad in [
        "95b11417-f18f-457f-8804-68e361f9164é",
        "95b11417-f18f-457f-8804-68e361f9164f\u{0}",
        "95b11417-f18f-457f-8804-68e361f9164",
        "95b11417-f18f-457f-8804-68e361f9164f0",
        "95b11417/f18f-457f-8804-68e361f9164f",
        "../../../../../../../../../../../../",
    ] {
        assert!(WalletId::try_from(bad.to_owned()).is_err(), "{bad:?}");
        assert!(
            serde_json::from_value::<WalletId>(json!(bad)).is_err(),
            "{bad:?}"
        );
        assert!(bad.parse::<EnvironmentId>().is_err(), "{bad:?}");
    }
}

// A create that is answered normally still works with the review's token (a sanity check
// that the sandbox and token above are right).
#[tokio::test]
async fn sanity_a_plain_create_succeeds() {
    let (sandbox, seed) = sandbox_for(TOKEN).await;
    let created = create(&client_of(&sandbox.uri(), TOKEN), &seed)
        .await
        .unwrap();
    assert_eq!(created.status(), BackupStatus::Created);
}

/// Random bodies over a small alphabet of the secret's bytes and escape pieces: whatever
/// serde_json decodes to a text holding the secret must not survive redaction.
#[test]
fn random_escape_soup_never_decodes_to_the_secret() {
    let secrets: [&[u8]; 4] = [br#"d\y"#, br#"\\d"#, br#"d/"y"#, br#"dy\"#];
    let pieces: [&str; 12] = [
        "d", "y", "\\\\", "\\/", "\\\"", "\\u0064", "\\u0079", "\\u005c", "\\u005C", "\\u002f",
        "\\u0022", "u",
    ];
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let mut decoded_hits = 0;
    for secret in secrets {
        let text = std::str::from_utf8(secret).unwrap();
        for _ in 0..200_000 {
            let mut body = String::from("\"");
            for _ in 0..1 + rng.below(10) {
                body.push_str(pieces[rng.below(pieces.len())]);
            }
            body.push('"');
            let Ok(Value::String(decoded)) = serde_json::from_str::<Value>(&body) else {
                continue;
            };
            if !decoded.contains(text) {
                continue;
            }
            decoded_hits += 1;
            let clean = redact(body.as_bytes(), secret).expect("an echo found");
            let clean = String::from_utf8(clean).unwrap();
            if let Ok(Value::String(after)) = serde_json::from_str::<Value>(&clean) {
                assert!(
                    !after.contains(text),
                    "{body} -> {clean} decodes to {after:?}"
                );
            }
            assert!(!clean.contains(text), "{body} -> {clean}");
        }
    }
    assert!(decoded_hits > 1000, "{decoded_hits}");
}

// ---------------------------------------------------------------------------------------
// 6. "Never back to a path already requested" (src/config.rs) compares paths as strings;
//    servers route spellings of one path alike (a trailing slash, percent-encoded
//    characters, another case: Express's defaults), so a 307/308 to one of them sends
//    the create to its own route again.
// ---------------------------------------------------------------------------------------

/// `path` as a typical router reads it: percent-decoded, any case, no empty segments.
fn route_of(path: &str) -> String {
    let mut bytes = Vec::new();
    let raw = path.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' && i + 2 < raw.len() {
            if let Ok(b) = u8::from_str_radix(&path[i + 1..i + 3], 16) {
                bytes.push(b);
                i += 3;
                continue;
            }
        }
        bytes.push(raw[i]);
        i += 1;
    }
    String::from_utf8_lossy(&bytes)
        .to_ascii_lowercase()
        .split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn a_307_to_another_spelling_of_the_create_path_does_not_send_it_again() {
    let seed = Seed::example();
    let create_path = create_path(&seed);
    let variants = [
        format!("{create_path}/"),
        create_path.replacen('-', "%2D", 1),
        create_path.replace("keyShares", "%6BeyShares"),
        create_path.replace("keyShares", "KEYSHARES"),
        create_path.replace("/waas/", "/waas//"),
    ];
    for status in [307, 308] {
        for to in &variants {
            let (sandbox, seed) = sandbox_for(TOKEN).await;
            let client = client_of(&sandbox.uri(), TOKEN);
            let redirect = FaultResponse::redirect(status, to);
            sandbox.fail_next(Operation::Create, 1, Fault::ApplyThenRespond(redirect));
            let case = format!("{status} to {to}");
            let created = create(&client, &seed)
                .await
                .unwrap_or_else(|e| panic!("{case}: {e:#}"));
            assert!(created.is_reconciled(), "{case}: {created:?}");
            let posts: Vec<String> = sandbox
                .requests()
                .iter()
                .filter(|r| r.method == "POST" && route_of(&r.path) == route_of(&create_path))
                .map(|r| r.path.clone())
                .collect();
            assert_eq!(
                posts.len(),
                1,
                "{case}: the create was sent again: {posts:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// 7. An answer for another wallet (a proxy's mix-up, a hostile server): a 201 or 200 naming
//    another walletId than the one asked about is taken as this wallet's.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_answer_naming_another_wallet_is_not_taken_for_this_one() {
    const OTHER: &str = "0badc0de-0bad-4bad-8bad-0badc0de0bad";
    let (sandbox, seed) = sandbox_for(TOKEN).await;
    let client = client_of(&sandbox.uri(), TOKEN);
    let mut body = created_body("6d97c3f0-1b1e-4a57-9c1e-3dcef0a1b2c3");
    body["walletId"] = json!(OTHER);
    sandbox.fail_next(
        Operation::Create,
        1,
        Fault::ApplyThenRespond(FaultResponse::new(201).json(body)),
    );
    let created = create(&client, &seed).await.unwrap();
    let (_, raw) = client
        .get_wallet(&seed.environment_id, &seed.wallet_id)
        .with_raw_body()
        .await
        .unwrap();
    let mut wallet: Value = serde_json::from_slice(&raw).unwrap();
    wallet["wallet"]["walletId"] = json!(OTHER);
    sandbox.fail_next(
        Operation::Read,
        1,
        Fault::Reject(FaultResponse::new(200).json(wallet)),
    );
    let read = client
        .get_wallet(&seed.environment_id, &seed.wallet_id)
        .await;
    assert_eq!(
        created.wallet_id().as_str(),
        seed.wallet_id.as_str(),
        "a create's answer for another wallet: {created:?}"
    );
    if let Ok(read) = read {
        assert_eq!(read.wallet_id.as_str(), seed.wallet_id.as_str(), "{read:?}");
    }
}

// ---------------------------------------------------------------------------------------
// 8. Credentials in a base URL: never echoed, the builder's Debug included (a service that
//    logs its configuration).
// ---------------------------------------------------------------------------------------

#[test]
fn a_builder_with_credentials_in_its_base_url_debugs_without_them() {
    for url in [
        "https://user:hunter2secret@app.dynamicauth.com/api/v0",
        "http://user:hunter2/secret@127.0.0.1:99999/x",
        "http://hunter2secret@127.0.0.1:8080/x",
    ] {
        let builder = Client::builder().base_url(url).token(TOKEN);
        let shown = format!("{builder:?} {builder:#?}");
        assert_clean(url, &shown, &["hunter2", TOKEN]);
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}

/// The URL standard reads `https:/`, `https:` and `https:\\` as `https://` (any number of
/// slashes or backslashes): the credentials after them are credentials all the same.
#[test]
fn credentials_after_unusual_slashes_are_never_echoed() {
    for url in [
        "https:/user:hunter2secret@app.dynamicauth.com/api/v0",
        "https:user:hunter2secret@app.dynamicauth.com/api/v0",
        "https:\\\\user:hunter2secret@app.dynamicauth.com/api/v0",
        "https:///user:hunter2secret@app.dynamicauth.com",
        "http:/\\user:hunter2secret@127.0.0.1:8080/x",
        " https:/user:hunter2secret@app.dynamicauth.com",
    ] {
        let parsed = dynamic_waas::reqwest::Url::parse(url).map(|u| u.password().is_some());
        let builder = Client::builder().base_url(url).token(TOKEN);
        let debug = format!("{builder:?}");
        let err = builder.build().unwrap_err();
        assert!(err.is_invalid_input(), "{url}: {err:#}");
        let shown = format!("{err} {err:#} {err:?} {debug}");
        assert_clean(
            &format!("{url} (has a password: {parsed:?})"),
            &shown,
            &["hunter2"],
        );
    }
}
