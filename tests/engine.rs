//! The attempt engine's rules, each against the sandbox behind a fault-injecting proxy over
//! real TCP on loopback. Every test counts the creates the client **sent** (at the proxy), not
//! only those the sandbox applied: a sandbox that refuses duplicates would hide a client that
//! resends blindly.

mod support;

use std::future::IntoFuture;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dynamic_waas::{
    BackupLocation, Client, ErrorKind, LocationRequest, RetryPolicy, Token, TokenError,
    TokenFuture, TokenProvider,
};
use dynamic_waas_sandbox::{Sandbox, Seed};
use support::{fast, google_drive, ids, Answer, Fault, Faulty};

fn lagging(lag: Duration) -> dynamic_waas_sandbox::SandboxBuilder {
    Seed::example().builder().read_lag(lag)
}

/// The example behind a proxy that stalls the body of a 502 for every request nothing is queued
/// for, with these attempt and total timeouts (in milliseconds).
async fn stalling(attempt_ms: u64, total_ms: u64) -> Faulty {
    let policy = fast()
        .with_attempt_timeout(Duration::from_millis(attempt_ms))
        .with_total_timeout(Duration::from_millis(total_ms));
    let f = Faulty::start(policy).await;
    f.proxy.rule(|_, _| Fault::StallErrorBody(502));
    f
}

fn unknown_reason(err: &dynamic_waas::Error) -> &str {
    match err.kind() {
        ErrorKind::OutcomeUnknown { reason } => reason,
        other => panic!("expected OutcomeUnknown, got {other:?}: {err}"),
    }
}

/// A policy whose deadline a read that lags a minute cannot beat quickly.
fn short() -> RetryPolicy {
    fast().with_total_timeout(Duration::from_millis(1500))
}

// Rule 3: every 2xx to a create means applied.

#[tokio::test]
async fn a_create_answered_200_202_or_204_is_reconciled_and_sent_once() {
    for status in [200, 202, 204] {
        let f = Faulty::start(fast()).await;
        f.proxy.next("POST", [Fault::ApplyThenStatus(status)]);
        let created = f.create(&[google_drive()]).await.unwrap();
        assert!(created.is_reconciled(), "{status}");
        assert_eq!(ids(&created), f.stored_ids(), "{status}");
        assert_eq!(f.proxy.sent("POST"), 1, "{status}");
        assert_eq!(f.applied(), 1);
    }
}

#[tokio::test]
async fn a_201_cut_off_mid_body_is_reconciled_and_sent_once() {
    let f = Faulty::start(fast()).await;
    f.proxy.next("POST", [Fault::ApplyThenCutBody]);
    let created = f.create(&[google_drive()]).await.unwrap();
    assert!(created.is_reconciled());
    assert_eq!(ids(&created), f.stored_ids());
    assert_eq!(f.proxy.sent("POST"), 1);
}

#[tokio::test]
async fn a_201_whose_body_stalls_is_reconciled_within_the_attempt_timeout_and_sent_once() {
    let policy = fast().with_attempt_timeout(Duration::from_millis(300));
    let f = Faulty::start(policy).await;
    f.proxy.next("POST", [Fault::ApplyThenStallBody]);
    let started = Instant::now();
    let created = f.create(&[google_drive()]).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(created.is_reconciled());
    assert_eq!(created.raw_body(), None);
    assert_eq!(ids(&created), f.stored_ids());
    assert_eq!(f.proxy.sent("POST"), 1);
}

#[tokio::test]
async fn a_201_over_the_size_bound_is_reconciled_and_sent_once() {
    let f = Faulty::start(fast()).await;
    let client = Client::builder()
        .base_url(f.proxy.uri())
        .token(f.seed.token.clone())
        .retry_policy(fast())
        .max_response_bytes(1024)
        .build()
        .unwrap();
    let oversized = serde_json::json!({
        "message": "x".repeat(4096),
        "walletId": f.seed.wallet_id.as_str(),
        "locationsWithKeyShares": [],
    });
    f.proxy.next(
        "POST",
        [Fault::ApplyThenAnswer(Answer::new(
            201,
            oversized.to_string(),
        ))],
    );
    let created = f.create_with(&client, &[google_drive()]).await.unwrap();
    assert!(created.is_reconciled());
    assert_eq!(ids(&created), f.stored_ids());
    assert_eq!(f.proxy.sent("POST"), 1);
}

#[tokio::test]
async fn a_201_without_a_requested_location_is_reconciled_from_the_wallet() {
    let f = Faulty::start(fast()).await;
    let partial = serde_json::json!({
        "message": "Backup action and event created successfully",
        "walletId": f.seed.wallet_id.as_str(),
        "locationsWithKeyShares": [{
            "location": "googleDrive",
            "keyShareId": "0f0e0d0c-0b0a-4908-8706-050403020100",
            "externalKeyShareId": "0f0e0d0c-0b0a-4908-8706-050403020101",
        }],
    });
    f.proxy.next(
        "POST",
        [Fault::ApplyThenAnswer(Answer::new(
            201,
            partial.to_string(),
        ))],
    );
    let asked = [google_drive(), BackupLocation::Dynamic.into()];
    let created = f.create(&asked).await.unwrap();
    assert!(created.is_reconciled());
    let locations: Vec<String> = created
        .locations_with_key_shares()
        .iter()
        .map(|s| s.location.to_string())
        .collect();
    assert_eq!(locations, ["googleDrive", "dynamic"]);
    let mut got = ids(&created);
    got.sort();
    let mut stored = f.stored_ids();
    stored.sort();
    assert_eq!(got, stored);
    assert_eq!(f.proxy.sent("POST"), 1);
}

#[tokio::test]
async fn a_create_redirected_with_303_is_reconciled_and_sent_once() {
    let f = Faulty::start(fast()).await;
    f.proxy.next(
        "POST",
        [Fault::ApplyThenAnswer(
            Answer::new(303, "").header("location", "/backups/action-1"),
        )],
    );
    let created = f.create(&[google_drive()]).await.unwrap();
    assert!(created.is_reconciled());
    assert_eq!(ids(&created), f.stored_ids());
    assert_eq!(f.proxy.sent("POST"), 1);
    // Followed as a GET (reqwest turns a POST into a GET on 303), which the sandbox answers
    // 404: that answer is not the create's, and does not end the call as NotFound.
    assert_eq!(f.proxy.sent("GET"), 2);
}

#[tokio::test]
async fn a_2xx_is_never_sent_again_even_when_the_wallet_read_lags() {
    for fault in [
        Fault::ApplyThenStatus(204),
        Fault::ApplyThenCutBody,
        Fault::ApplyThenStallBody,
    ] {
        let policy = short().with_attempt_timeout(Duration::from_millis(300));
        let f = Faulty::start_with(lagging(Duration::from_secs(60)), policy).await;
        f.proxy.next("POST", [fault.clone()]);
        let err = f.create(&[google_drive()]).await.unwrap_err();
        let reason = unknown_reason(&err);
        assert!(reason.contains("was applied"), "{fault:?}: {reason}");
        assert_eq!(f.proxy.sent("POST"), 1, "{fault:?}");
        assert_eq!(f.applied(), 1);
        // Read until the deadline, not until the attempts ran out (a margin over them: a
        // loaded machine reads less often in the same 1.5 s).
        assert!(
            f.proxy.sent("GET") > u64::from(short().max_attempts()) + 1,
            "{fault:?}: {} reads",
            f.proxy.sent("GET")
        );
    }
}

// Rule 1: once an attempt may have been applied, only created, reconciled or OutcomeUnknown.

#[tokio::test]
async fn applied_then_500_with_a_lagging_read_and_no_attempt_left_is_outcome_unknown() {
    // Reads lag far more than settle_after: the late read shows nothing, which would license
    // a resend, but no attempt is left.
    let f = Faulty::start_with(
        lagging(Duration::from_secs(60)),
        fast().with_max_attempts(1),
    )
    .await;
    f.proxy
        .next("POST", [Fault::ApplyThenAnswer(Answer::new(500, "{}"))]);
    let err = f.create(&[google_drive()]).await.unwrap_err();
    let reason = unknown_reason(&err);
    assert!(reason.contains("no attempt is left"), "{reason}");
    assert!(format!("{err:#}").contains("ms into the call"), "{err:#}");
    assert!(!err.is_retryable());
    assert_eq!(err.status(), None);
    assert_eq!(f.proxy.sent("POST"), 1);
    assert_eq!(f.applied(), 1);
}

#[tokio::test]
async fn a_definite_refusal_after_an_ambiguous_attempt_is_outcome_unknown() {
    for status in [401, 403, 404, 400] {
        let f = Faulty::start_with(lagging(Duration::from_secs(60)), fast()).await;
        f.proxy.next(
            "POST",
            [
                Fault::ApplyThenDrop,
                Fault::Answer(Answer::new(status, r#"{"error":"no"}"#)),
            ],
        );
        let err = f.create(&[google_drive()]).await.unwrap_err();
        unknown_reason(&err);
        let story = format!("{err:#}");
        assert!(story.contains("may have been applied"), "{status}: {story}");
        assert!(story.contains("sent again, and then"), "{status}: {story}");
        assert_eq!(f.proxy.sent("POST"), 2, "{status}");
        assert_eq!(f.applied(), 1);
    }
}

#[tokio::test]
async fn a_422_on_the_resend_with_a_read_that_keeps_lagging_is_outcome_unknown() {
    // Reads lag a minute, far past settle_after: the late read licenses one resend, whose
    // 422 says the first was applied; from then on, only reads, until the deadline.
    let f = Faulty::start_with(lagging(Duration::from_secs(60)), short()).await;
    f.proxy.next("POST", [Fault::ApplyThenDrop]);
    let err = f.create(&[google_drive()]).await.unwrap_err();
    let reason = unknown_reason(&err);
    assert!(reason.contains("was applied"), "{reason}");
    assert_eq!(f.proxy.sent("POST"), 2);
    assert_eq!(f.applied(), 1);
    assert!(f.proxy.sent("GET") > 4, "{} reads", f.proxy.sent("GET"));
}

#[tokio::test]
async fn a_422_on_the_resend_is_settled_by_reading_again_once_the_lag_has_passed() {
    let policy = fast()
        .with_initial_backoff(Duration::from_millis(400))
        .with_max_backoff(Duration::from_millis(400));
    let f = Faulty::start_with(lagging(Duration::from_millis(300)), policy).await;
    f.proxy.next("POST", [Fault::ApplyThenDrop]);
    let created = f.create(&[google_drive()]).await.unwrap();
    assert!(created.is_reconciled());
    assert_eq!(ids(&created), f.stored_ids());
    assert_eq!(f.applied(), 1);
}

#[tokio::test]
async fn an_ambiguous_attempt_whose_read_shows_the_shares_is_never_sent_again() {
    for fault in [
        Fault::ApplyThenDrop,
        Fault::ApplyThenAnswer(Answer::new(502, "<html>Bad Gateway</html>")),
        Fault::ApplyThenAnswer(Answer::new(504, "")),
        Fault::ApplyThenAnswer(Answer::new(503, "")),
        Fault::ApplyThenAnswer(Answer::new(
            422,
            r#"{"error":"x","code":"wallet_service_connection_error"}"#,
        )),
    ] {
        let f = Faulty::start(fast()).await;
        f.proxy.next("POST", [fault.clone()]);
        let created = f.create(&[google_drive()]).await.unwrap();
        assert!(created.is_reconciled(), "{fault:?}");
        assert_eq!(ids(&created), f.stored_ids());
        assert_eq!(f.proxy.sent("POST"), 1, "{fault:?}");
    }
}

#[tokio::test]
async fn a_lock_timeout_is_retried_and_reported_as_retryable() {
    let f = Faulty::start(fast().with_max_attempts(2)).await;
    let lock = || {
        Fault::Answer(Answer::new(
            422,
            r#"{"error":"busy","code":"lock_timeout"}"#,
        ))
    };
    f.proxy.next("POST", [lock(), lock()]);
    let err = f.create(&[google_drive()]).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.kind(), &ErrorKind::ServerError);
    assert_eq!(f.proxy.sent("POST"), 2);
    assert_eq!(f.applied(), 0);
}

/// A provider whose first token expires at once and which fails ever after.
struct FailsAfterFirst(AtomicU32);

impl TokenProvider for FailsAfterFirst {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                Ok(Token::new(Seed::example().token).expires_in(Duration::from_millis(1)))
            } else {
                Err(TokenError::new("the secret store is down"))
            }
        })
    }
}

#[tokio::test]
async fn a_token_provider_failing_after_an_ambiguous_attempt_is_outcome_unknown() {
    let f = Faulty::start(fast()).await;
    let client =
        support::provider_client_at(f.proxy.uri(), FailsAfterFirst(AtomicU32::new(0)), fast());
    f.proxy.next("POST", [Fault::ApplyThenDrop]);
    let err = f.create_with(&client, &[google_drive()]).await.unwrap_err();
    let reason = unknown_reason(&err);
    assert!(reason.contains("could not be read"), "{reason}");
    assert!(format!("{err:#}").contains("token"), "{err:#}");
    assert_eq!(f.proxy.sent("POST"), 1);
    assert_eq!(f.proxy.sent("GET"), 0);
}

#[tokio::test]
async fn a_deadline_spent_after_an_ambiguous_attempt_is_outcome_unknown() {
    // The create hangs after the server applied it; every read stalls its error body.
    let f = stalling(400, 900).await;
    f.proxy.next("POST", [Fault::ApplyThenHang]);
    let started = Instant::now();
    let err = f.create(&[google_drive()]).await.unwrap_err();
    unknown_reason(&err);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(f.proxy.sent("POST"), 1);
}

// Rule 4: reconciliation matches what was asked.

#[tokio::test]
async fn reconciliation_matches_external_ids_and_counts() {
    let f = Faulty::start(fast()).await;
    f.proxy.next("POST", [Fault::ApplyThenDrop]);
    let asked = [
        LocationRequest::new(BackupLocation::External).with_external_key_share_id("vault/b"),
        LocationRequest::new(BackupLocation::External).with_external_key_share_id("vault/a"),
    ];
    let created = f.create(&asked).await.unwrap();
    assert!(created.is_reconciled());
    let external: Vec<String> = created
        .locations_with_key_shares()
        .iter()
        .map(|s| s.external_key_share_id.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(external, ["vault/b", "vault/a"]);
    assert_eq!(f.proxy.sent("POST"), 1);
}

#[tokio::test]
async fn a_wallet_holding_more_shares_at_a_location_than_asked_is_not_claimed() {
    // Two shares at googleDrive already; the create's 502 hides the server's refusal.
    let wallet = support::example_wallet()
        .backed_up_to("googleDrive")
        .backed_up_to("googleDrive");
    let f = Faulty::start_with(Seed::example().builder().wallet(wallet), fast()).await;
    f.proxy.next("POST", [Fault::Answer(Answer::new(502, ""))]);
    let err = f.create(&[google_drive()]).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::AlreadyBackedUp, "{err:#}");
    assert!(
        format!("{err:#}").contains("2 key share(s) at googleDrive"),
        "{err:#}"
    );
    assert_eq!(f.proxy.sent("POST"), 1);
    // Asked to, the call returns the backup the wallet holds.
    let f = Faulty::start_with(
        Seed::example().builder().wallet(
            support::example_wallet()
                .backed_up_to("googleDrive")
                .backed_up_to("googleDrive"),
        ),
        fast(),
    )
    .await;
    f.proxy.next("POST", [Fault::Answer(Answer::new(502, ""))]);
    let existing = f
        .client
        .create_backup_locations(
            &f.seed.environment_id,
            &f.seed.wallet_id,
            &f.seed.user_id,
            [google_drive()],
        )
        .accept_existing()
        .await
        .unwrap();
    assert_eq!(
        existing.status(),
        dynamic_waas::BackupStatus::AlreadyBackedUp
    );
    assert_eq!(ids(&existing), f.stored_ids());
}

// Rule 5: every byte within the attempt's time; the call within its deadline.

#[tokio::test]
async fn a_stalled_error_body_cannot_hold_a_call_past_its_deadline() {
    let f = stalling(300, 1200).await;
    let started = Instant::now();
    let err = f
        .client
        .get_wallet(&f.seed.environment_id, &f.seed.wallet_id)
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "{took:?}");
    // The status decides what it was; the cause says the body never ended.
    assert_eq!(err.kind(), &ErrorKind::ServerError);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(502));
    assert!(format!("{err:#}").contains("body did not end"), "{err:#}");
    assert!(f.proxy.sent("GET") >= 2);
}

#[tokio::test]
async fn a_stalled_429_body_is_still_a_safe_retry() {
    let f = Faulty::start(fast().with_attempt_timeout(Duration::from_millis(300))).await;
    f.proxy.next("POST", [Fault::StallErrorBody(429)]);
    let created = f.create(&[google_drive()]).await.unwrap();
    assert!(!created.is_reconciled());
    assert_eq!(f.proxy.sent("POST"), 2);
    assert_eq!(f.proxy.sent("GET"), 0);
}

/// A provider that answers after a while.
struct Slow(Duration);

impl TokenProvider for Slow {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            tokio::time::sleep(self.0).await;
            Ok(Token::new(Seed::example().token))
        })
    }
}

#[tokio::test]
async fn time_spent_waiting_for_the_token_is_taken_from_the_attempt_not_added_to_the_call() {
    let f = Faulty::start(fast()).await;
    let client = support::provider_client_at(
        f.proxy.uri(),
        Slow(Duration::from_millis(300)),
        fast().with_total_timeout(Duration::from_millis(1200)),
    );
    f.proxy.next("POST", [Fault::ApplyThenHang]);
    let started = Instant::now();
    let created = f.create_with(&client, &[google_drive()]).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );
    assert!(created.is_reconciled());
    assert_eq!(f.proxy.sent("POST"), 1);
}

/// A provider that never answers.
struct Hangs;

impl TokenProvider for Hangs {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test]
async fn a_hanging_token_provider_is_bounded_by_each_calls_deadline() {
    let (sandbox, seed) = Sandbox::seeded().await;
    let client = support::provider_client_at(
        &sandbox.uri(),
        Hangs,
        fast().with_total_timeout(Duration::from_millis(300)),
    );
    let started = Instant::now();
    let clone = client.clone();
    let (a, b) = tokio::join!(
        client
            .get_wallet(&seed.environment_id, &seed.wallet_id)
            .into_future(),
        async {
            clone
                .get_wallet(&seed.environment_id, &seed.wallet_id)
                .await
        },
    );
    assert!(started.elapsed() < Duration::from_millis(600));
    for err in [a.unwrap_err(), b.unwrap_err()] {
        assert_eq!(err.kind(), &ErrorKind::Timeout, "{err}");
        assert_eq!(err.attempts(), 0);
    }
    assert!(sandbox.requests().is_empty());
}

// Rule 6: no time arithmetic panics, whatever the configuration or Retry-After.

#[tokio::test]
async fn extreme_retry_after_and_policies_end_cleanly() {
    let extreme = RetryPolicy::default()
        .with_max_retry_after(Duration::MAX)
        .with_total_timeout(Duration::MAX)
        .with_attempt_timeout(Duration::from_secs(5))
        .with_max_attempts(2);
    let f = Faulty::start(extreme).await;
    f.proxy.next(
        "POST",
        [Fault::Answer(
            Answer::new(429, "{}").header("retry-after", "18446744073709551615"),
        )],
    );
    let err = f.create(&[google_drive()]).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::RateLimited { .. }), "{err}");
    assert_eq!(f.proxy.sent("POST"), 1);
}

// Rule 8: error bodies are read far enough to find upstream's code.

#[tokio::test]
async fn a_5_kb_422_body_is_still_recognised() {
    let f = Faulty::start(fast()).await;
    let padding = "x".repeat(5 * 1024);
    let body = format!(
        r#"{{"error":"Key shares have already been backed up","payload":{{"note":"{padding}"}},"code":"key_share_already_backed_up"}}"#
    );
    f.proxy
        .next("POST", [Fault::Answer(Answer::new(422, body))]);
    let err = f.create(&[google_drive()]).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::AlreadyBackedUp, "{err}");
    assert_eq!(f.proxy.sent("POST"), 1);
}

// Rule 7: the budget does not starve the reads that prevent loss.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifth_of_creates_lost_after_apply_all_come_back_with_their_ids() {
    // More lost answers (60) than the budget's headroom (50): only refills keep reads going.
    const WALLETS: usize = 300;
    let (builder, wallets) = support::with_wallets(WALLETS);
    let f = Arc::new(Faulty::start_with(builder, fast()).await);
    // Every fifth create is applied and then its answer is lost, in turns of three kinds.
    f.proxy.rule(|method, n| match (method, n % 15) {
        ("POST", 0) => Fault::ApplyThenDrop,
        ("POST", 5) => Fault::ApplyThenAnswer(Answer::new(500, "{}")),
        ("POST", 10) => Fault::ApplyThenCutBody,
        _ => Fault::Pass,
    });
    let mut tasks = Vec::new();
    for wallet in wallets.clone() {
        let f = Arc::clone(&f);
        tasks.push(tokio::spawn(async move {
            f.create_for(&wallet)
                .await
                .map(|c| (ids(&c), c.is_reconciled()))
        }));
    }
    let mut reconciled = 0;
    for (task, wallet) in tasks.into_iter().zip(&wallets) {
        let (got, was_reconciled) = task.await.unwrap().unwrap();
        assert_eq!(got, f.stored_ids_of(&wallet.wallet_id));
        reconciled += usize::from(was_reconciled);
    }
    assert_eq!(reconciled, WALLETS / 5);
    assert_eq!(f.proxy.sent("POST"), WALLETS as u64, "no create sent twice");
    assert_eq!(f.sandbox.creates_applied(), WALLETS);
}
