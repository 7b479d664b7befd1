//! The bulk API against the sandbox over real HTTP: every wallet ends with its ids, no create
//! is sent to a wallet already applied, the pacer keeps a run under the server's limits, a
//! 429 pauses every job, and jobs are pulled only as slots free up.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dynamic_waas::{BackupJob, BackupOutcome, BackupStatus, Client, NextRun, Pacing};
use dynamic_waas_sandbox::{
    Fault, FaultResponse, Operation, Rate, RateLimit, RateLimits, Sandbox, Seed, Target,
};
use futures_util::{stream, StreamExt};
use support::{fast, google_drive, held, job, outcome_ids};

/// A client of `sandbox` with the fast policy and `pacing`.
fn client(sandbox: &Sandbox, pacing: Pacing) -> Client {
    Client::builder()
        .base_url(sandbox.uri())
        .token(Seed::example().token)
        .retry_policy(fast())
        .pacing(pacing)
        .build()
        .unwrap()
}

async fn run(client: &Client, jobs: Vec<BackupJob>, concurrency: usize) -> Vec<BackupOutcome> {
    client
        .create_many(stream::iter(jobs), concurrency)
        .collect()
        .await
}

/// The outcome for `wallet`.
fn of<'o>(outcomes: &'o [BackupOutcome], wallet: &dynamic_waas::WalletId) -> &'o BackupOutcome {
    let found = outcomes.iter().find(|o| &o.wallet_id == wallet);
    found.unwrap_or_else(|| panic!("no outcome for {wallet}"))
}

#[tokio::test]
async fn every_wallet_ends_with_its_ids_and_none_is_created_twice_under_ambiguous_faults() {
    let (builder, rows) = support::with_wallets(200);
    let sandbox = builder.start().await;
    // 10 % of creates are applied and then answered 502, a few more applied and cut off.
    sandbox.fail_at_rate(
        Operation::Create,
        Rate::random(0.1, 7),
        Fault::ApplyThenRespond(FaultResponse::new(502).html("<h1>Bad Gateway</h1>")),
    );
    sandbox.fail_at_rate(
        Operation::Create,
        Rate::every(23),
        Fault::ApplyThenDelay(Duration::from_secs(3)),
    );
    let client = Client::builder()
        .base_url(sandbox.uri())
        .token(Seed::example().token)
        .retry_policy(fast().with_attempt_timeout(Duration::from_secs(1)))
        .pacing(Pacing::unlimited())
        .build()
        .unwrap();
    let outcomes = run(&client, rows.iter().map(job).collect(), 16).await;

    assert_eq!(outcomes.len(), rows.len());
    let by_wallet: HashMap<String, &BackupOutcome> = outcomes
        .iter()
        .map(|o| (o.wallet_id.to_string(), o))
        .collect();
    let mut reconciled = 0;
    for row in &rows {
        let outcome = by_wallet[&row.wallet_id.to_string()];
        assert!(
            matches!(
                outcome.status,
                BackupStatus::Created | BackupStatus::Reconciled
            ),
            "{outcome:?}"
        );
        reconciled += usize::from(outcome.status == BackupStatus::Reconciled);
        assert_eq!(outcome_ids(outcome), held(&sandbox, row), "{outcome:?}");
        assert_eq!(outcome.next_run(), NextRun::Skip);
        assert_eq!(sandbox.creates_applied_to(&row.wallet_id), 1);
    }
    assert!(reconciled >= 10, "only {reconciled} faults fired");
    // Counted as sent, not only as applied: no wallet got a second create.
    assert_eq!(sandbox.creates_received(), rows.len());
}

#[tokio::test]
async fn a_wallet_backed_up_before_comes_back_with_the_key_shares_it_holds() {
    let (builder, rows) = support::with_wallets(2);
    // The first wallet was backed up by an earlier run.
    let first = &rows[0];
    let sandbox = builder.start().await;
    let client = client(&sandbox, Pacing::unlimited());
    run(&client, vec![job(first)], 1).await;
    let before = held(&sandbox, first);

    let outcomes = run(&client, rows.iter().map(job).collect(), 2).await;
    let again = of(&outcomes, &first.wallet_id);
    assert_eq!(again.status, BackupStatus::AlreadyBackedUp, "{again:?}");
    assert_eq!(outcome_ids(again), before);
    assert_eq!(again.next_run(), NextRun::Skip);
    assert!(again.error.is_none());
    let other = of(&outcomes, &rows[1].wallet_id);
    assert_eq!(other.status, BackupStatus::Created);
    assert_eq!(sandbox.creates_applied(), 2);
    // Counted as sent: the second run sent the backed-up wallet one create (refused with
    // 422 already backed up, then read), not one per attempt.
    assert_eq!(sandbox.creates_received(), 3);
}

#[tokio::test]
async fn a_resumed_job_reads_the_wallet_before_it_creates() {
    let (builder, rows) = support::with_wallets(2);
    let sandbox = builder.start().await;
    let client = client(&sandbox, Pacing::unlimited());
    // An earlier run applied the first wallet's create and died before writing its outcome.
    run(&client, vec![job(&rows[0])], 1).await;
    assert_eq!(sandbox.creates_received(), 1);

    let outcomes = run(
        &client,
        rows.iter().map(|row| job(row).resumed()).collect(),
        2,
    )
    .await;
    let applied = of(&outcomes, &rows[0].wallet_id);
    assert_eq!(applied.status, BackupStatus::Reconciled, "{applied:?}");
    assert_eq!(outcome_ids(applied), held(&sandbox, &rows[0]));
    assert_eq!(applied.attempts, 1, "one read, no create");
    let fresh = of(&outcomes, &rows[1].wallet_id);
    assert_eq!(fresh.status, BackupStatus::Created, "{fresh:?}");
    assert_eq!(
        fresh.attempts, 2,
        "a read that showed nothing, then the create"
    );
    assert_eq!(sandbox.creates_received(), 2);
}

#[tokio::test]
async fn a_resumed_job_for_a_wallet_backed_up_otherwise_reports_the_shares_it_holds() {
    let (builder, rows) = support::with_wallets(1);
    let sandbox = builder.start().await;
    let client = client(&sandbox, Pacing::unlimited());
    // Backed up to two locations by an earlier run; this run asks for one of them.
    let earlier = BackupJob::new(
        &rows[0].environment_id,
        &rows[0].wallet_id,
        &rows[0].user_id,
        [google_drive(), google_drive()],
    )
    .unwrap();
    run(&client, vec![earlier], 1).await;
    let outcomes = run(&client, vec![job(&rows[0]).resumed()], 1).await;
    let outcome = &outcomes[0];
    // Not unknown for ever: the wallet is backed up, with these shares.
    assert_eq!(outcome.status, BackupStatus::AlreadyBackedUp, "{outcome:?}");
    assert_eq!(outcome_ids(outcome), held(&sandbox, &rows[0]));
    assert_eq!(outcome.next_run(), NextRun::Skip);
    assert_eq!(sandbox.creates_received(), 1);
}

#[tokio::test]
async fn failures_say_what_a_later_run_does_and_serialize_as_one_object() {
    let (builder, rows) = support::with_wallets(1);
    let sandbox = builder.start().await;
    let client = client(&sandbox, Pacing::unlimited());
    // A wallet the sandbox does not have: 404. Nothing was created; a later run tries again
    // (the wallet, the token or the environment may have been fixed since).
    let missing = BackupJob::new(
        &rows[0].environment_id,
        uuid::Uuid::new_v4(),
        &rows[0].user_id,
        [google_drive()],
    )
    .unwrap()
    .with_tag(17);
    let outcomes = run(&client, vec![missing], 1).await;
    let not_found = &outcomes[0];
    assert_eq!(not_found.status, BackupStatus::Failed);
    assert_eq!(not_found.next_run(), NextRun::Create);
    assert_eq!(not_found.tag, Some(17));
    assert_eq!(serde_json::to_value(not_found).unwrap()["tag"], 17);
    // 429s, more than a job waits out besides its attempts (ten): nothing was applied,
    // create again next time.
    sandbox.fail_next(Operation::Create, 11, FaultResponse::new(429));
    let outcomes = run(&client, vec![job(&rows[0])], 1).await;
    let unavailable = &outcomes[0];
    assert_eq!(unavailable.status, BackupStatus::Failed, "{unavailable:?}");
    assert_eq!(unavailable.next_run(), NextRun::Create);

    let json = serde_json::to_value(unavailable).unwrap();
    assert_eq!(json["status"], "failed");
    assert_eq!(json["walletId"], rows[0].wallet_id.to_string());
    assert_eq!(json["error"]["kind"], "rate_limited");
    assert_eq!(json["keyShares"], serde_json::json!([]));
}

#[tokio::test]
async fn a_429_slows_the_pace_and_only_the_refused_job_waits_its_retry_after() {
    let (builder, rows) = support::with_wallets(20);
    let sandbox = builder.start().await;
    // Three 429s in the first wave: a limit (one alone would not be).
    sandbox.fail_next(
        Operation::Create,
        3,
        FaultResponse::new(429)
            .retry_after(1)
            .json(serde_json::json!({"error": "Too many requests. Please try again later."})),
    );
    // Fast enough that 20 wallets take a few tens of milliseconds unpaused.
    let client = client(&sandbox, Pacing::unlimited().with_per_process(60_000));
    let started = Instant::now();
    let running = tokio::spawn({
        let client = client.clone();
        let jobs: Vec<BackupJob> = rows.iter().map(job).collect();
        async move { run(&client, jobs, 4).await }
    });
    tokio::time::sleep(Duration::from_millis(600)).await;
    // The others went on, at a pace cut to just under what the server accepted.
    assert_eq!(sandbox.requests_received(), 20);
    assert!(client.stats().pace.unwrap() < 1.0);
    let outcomes = running.await.unwrap();
    // The refused ones waited their Retry-After, then were created.
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(outcomes.iter().all(|o| o.status == BackupStatus::Created));
    assert_eq!(client.stats().rate_limited, 3);
    assert_eq!(client.stats().requests_sent, 23);
}

#[tokio::test]
async fn a_429_soon_after_a_cut_pauses_every_job() {
    let (builder, rows) = support::with_wallets(8);
    let sandbox = builder.start().await;
    // Every request is refused for a while: the cut does not help, so everyone pauses.
    sandbox.fail_next(Target::Any, 2, FaultResponse::new(429).retry_after(1));
    let client = client(&sandbox, Pacing::unlimited().with_per_process(60_000));
    let started = Instant::now();
    let running = tokio::spawn({
        let client = client.clone();
        let jobs: Vec<BackupJob> = rows.iter().map(job).collect();
        async move { run(&client, jobs, 1).await }
    });
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // The first 429 cut the pace; its retry (sent after the cut) was refused too: paused.
    let during_pause = sandbox.requests_received();
    assert_eq!(during_pause, 2, "{during_pause} requests");
    let outcomes = running.await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(outcomes.iter().all(|o| o.status == BackupStatus::Created));
    assert_eq!(client.stats().rate_limited, 2);
}

#[tokio::test]
async fn the_pacer_keeps_a_run_under_the_servers_limits() {
    let (builder, rows) = support::with_wallets(120);
    let sandbox = builder
        .rate_limits(
            RateLimits::new()
                .per_client(RateLimit::new(100, Duration::from_secs(1)))
                .per_environment(RateLimit::new(200, Duration::from_secs(1))),
        )
        .start()
        .await;
    // 96 a second, 4 % under the client limit.
    let client = client(&sandbox, Pacing::unlimited().with_per_process(5_760));
    let started = Instant::now();
    let outcomes = run(&client, rows.iter().map(job).collect(), 32).await;
    let elapsed = started.elapsed();
    assert!(outcomes.iter().all(|o| o.status == BackupStatus::Created));
    assert_eq!(
        sandbox.rate_limited(),
        0,
        "the server refused some requests"
    );
    // Paced: 120 requests at 96 a second (less a burst of 4) take over a second.
    assert!(elapsed >= Duration::from_millis(1_150), "{elapsed:?}");

    // The same run unpaced meets the limit: the pacer is what kept it under.
    let (builder, rows) = support::with_wallets(120);
    let sandbox = builder
        .rate_limits(RateLimits::new().per_client(RateLimit::new(100, Duration::from_secs(1))))
        .start()
        .await;
    let unpaced = self::client(&sandbox, Pacing::unlimited());
    run(&unpaced, rows.iter().map(job).collect(), 32).await;
    assert!(sandbox.rate_limited() > 0);
}

#[tokio::test]
async fn jobs_are_pulled_only_as_slots_free_up() {
    let (builder, rows) = support::with_wallets(40);
    let sandbox = builder.start().await;
    sandbox.fail_at_rate(
        Operation::Create,
        Rate::every(1),
        Fault::ApplyThenDelay(Duration::from_millis(20)),
    );
    let client = client(&sandbox, Pacing::unlimited());
    let pulled = Arc::new(AtomicUsize::new(0));
    let jobs = stream::iter(rows.iter().map(job).collect::<Vec<_>>()).inspect({
        let pulled = Arc::clone(&pulled);
        move |_| {
            pulled.fetch_add(1, Ordering::SeqCst);
        }
    });
    let mut outcomes = std::pin::pin!(client.create_many(jobs, 4));
    let mut finished = 0;
    while let Some(outcome) = outcomes.next().await {
        assert_eq!(outcome.status, BackupStatus::Created);
        finished += 1;
        // In flight: at most the concurrency, whatever the input's length.
        assert!(pulled.load(Ordering::SeqCst) <= finished + 4);
    }
    assert_eq!(finished, rows.len());
}

#[tokio::test]
async fn retries_and_settling_reads_take_permits_too() {
    let (builder, rows) = support::with_wallets(3);
    let sandbox = builder.start().await;
    // Each create is answered 500 once: a read at once and a late read settle it (nothing
    // there), then it is sent again. Twelve requests in all.
    sandbox.fail_next(Operation::Create, 3, FaultResponse::new(500));
    // 10 a second, a burst of 4: the eight requests past the burst take 0.8 s.
    let client = client(&sandbox, Pacing::unlimited().with_per_process(600));
    let started = Instant::now();
    let outcomes = run(&client, rows.iter().map(job).collect(), 3).await;
    assert!(outcomes.iter().all(|o| o.status == BackupStatus::Created));
    assert_eq!(client.stats().requests_sent, 12);
    assert_eq!(sandbox.requests_received(), 12);
    assert!(
        started.elapsed() >= Duration::from_millis(750),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_jobs_waits_for_the_pacer_do_not_count_against_its_deadline() {
    let (builder, rows) = support::with_wallets(1);
    let sandbox = builder.start().await;
    // The create is applied and answered 502; the read that settles it is answered 429 with
    // a Retry-After twice the job's whole deadline.
    sandbox.fail_next(
        Operation::Create,
        1,
        Fault::ApplyThenRespond(FaultResponse::new(502)),
    );
    sandbox.fail_next(Operation::Read, 1, FaultResponse::new(429).retry_after(2));
    let client = Client::builder()
        .base_url(sandbox.uri())
        .token(Seed::example().token)
        .retry_policy(fast().with_total_timeout(Duration::from_secs(1)))
        .pacing(Pacing::unlimited().with_per_process(600_000))
        .build()
        .unwrap();
    let started = Instant::now();
    let outcomes = run(&client, vec![job(&rows[0])], 1).await;
    // Settled after the pause, not given up as unknown when the second ran out.
    assert_eq!(
        outcomes[0].status,
        BackupStatus::Reconciled,
        "{:?}",
        outcomes[0]
    );
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(sandbox.creates_received(), 1);
}
