//! An operator's review: attacks on the promises of bulk runs and the engine, against the
//! sandbox over real HTTP on loopback. Each test counts the creates the sandbox *received*
//! (what was sent), not only those it applied.

mod support;

use std::time::Duration;

use dynamic_waas::{BackupOutcome, BackupStatus, Client, Pacing, RetryPolicy};
use dynamic_waas_sandbox::{Fault, FaultResponse, Operation, Pregenerated, Sandbox, Seed};
use futures_util::{stream, StreamExt};
use support::{fast, held, job, outcome_ids};

fn client(sandbox: &Sandbox, policy: RetryPolicy) -> Client {
    Client::builder()
        .base_url(sandbox.uri())
        .token(Seed::example().token)
        .retry_policy(policy)
        .pacing(Pacing::unlimited())
        .build()
        .unwrap()
}

async fn one_job(client: &Client, row: &Pregenerated) -> BackupOutcome {
    let mut outcomes: Vec<_> = client
        .create_many(stream::iter([job(row)]), 1)
        .collect()
        .await;
    assert_eq!(outcomes.len(), 1);
    outcomes.remove(0)
}

fn rate_limited(seconds: u64) -> Fault {
    Fault::Reject(FaultResponse::new(429).retry_after(seconds))
}

/// A bulk job's 429s are counted for the whole call (create and reads), but subtracted from
/// the attempts of each read: two 429s on the create, then its answer lost, then one failed
/// read subtracted 2 from 1 (`tries - call.refused`): a panic in a debug build, a wrapped
/// count (the read given up at once, the wallet left unknown) in a release build.
#[tokio::test]
async fn a_bulk_jobs_429s_on_its_create_do_not_break_the_reads_that_settle_it() {
    let (builder, rows) = support::with_wallets(1);
    let sandbox = builder.start().await;
    sandbox.fail_next(Operation::Create, 2, rate_limited(0));
    sandbox.fail_next(
        Operation::Create,
        1,
        Fault::ApplyThenRespond(FaultResponse::new(502)),
    );
    sandbox.fail_next(Operation::Read, 1, FaultResponse::new(503).empty());
    let client = client(&sandbox, fast());
    let run = tokio::spawn(async move { one_job(&client, &rows[0]).await });
    let outcome = run.await.expect("the bulk run panicked");
    let (_, rows) = support::with_wallets(1);
    assert_eq!(outcome.status, BackupStatus::Reconciled, "{outcome:?}");
    assert_eq!(outcome_ids(&outcome), held(&sandbox, &rows[0]));
    // Two refused, one applied; none after it.
    assert_eq!(sandbox.creates_received(), 3);
    assert_eq!(sandbox.creates_applied_to(&rows[0].wallet_id), 1);
}

/// A proxy that times out on the service (which applied the create) and answers
/// `503 Service Unavailable` with `Retry-After` (what a gateway in maintenance or overload
/// mode sends) is taken for "not processed": the create is sent again at once. The server
/// refuses the second (422 already backed up) and a single call ends as `AlreadyBackedUp`
/// (CLI exit 3, "the API refused") while the backup on the wallet is its own: its key share
/// ids are not returned. Against a duplicate check that lags (`lagging_duplicate_check`),
/// the second create is applied too. README's table documents 503 + Retry-After as retried;
/// the promise "a response lost after the server applied it never leads to a second create
/// being sent" does not hold for it.
#[tokio::test]
async fn a_503_with_retry_after_after_the_create_was_applied_sends_no_second_create() {
    let (builder, rows) = support::with_wallets(1);
    let sandbox = builder.start().await;
    sandbox.fail_next(
        Operation::Create,
        1,
        Fault::ApplyThenRespond(FaultResponse::new(503).retry_after(0).html("<h1>busy</h1>")),
    );
    let client = client(&sandbox, fast());
    let result = support::create_pregenerated(&client, &rows[0]).await;
    let sent = sandbox.creates_received();
    let created = result.unwrap_or_else(|e| panic!("{e:#} (creates sent: {sent})"));
    assert_eq!(support::ids(&created), held(&sandbox, &rows[0]));
    assert_eq!(sent, 1, "the create was sent again");
}

/// The same in a bulk run against a lagging duplicate check: applied twice.
#[tokio::test]
async fn a_bulk_job_given_503_with_retry_after_after_its_create_was_applied_applies_it_once() {
    let (builder, rows) = support::with_wallets(1);
    let sandbox = builder
        .read_lag(Duration::from_millis(1500))
        .lagging_duplicate_check()
        .start()
        .await;
    sandbox.fail_next(
        Operation::Create,
        1,
        Fault::ApplyThenRespond(FaultResponse::new(503).retry_after(0)),
    );
    let client = client(&sandbox, fast().with_settle_after(Duration::from_secs(2)));
    let outcome = one_job(&client, &rows[0]).await;
    assert_eq!(
        sandbox.creates_applied_to(&rows[0].wallet_id),
        1,
        "applied twice: {outcome:?}"
    );
    assert_eq!(sandbox.creates_received(), 1, "sent twice: {outcome:?}");
}

/// A bulk run told twice the server's limit (a sliding window of 50 a second, the rest of
/// the allowance another client's), with the default policy: every wallet is created, once;
/// no job fails for the pacer's learning (its 429s, or the retry budget they drain).
#[tokio::test(flavor = "multi_thread")]
async fn a_bulk_run_over_a_shared_limit_creates_every_wallet_once_and_fails_none() {
    use dynamic_waas_sandbox::RateLimit;
    let (builder, rows) = support::with_wallets(400);
    let sandbox = builder
        .rate_limit(RateLimit::new(50, Duration::from_secs(1)))
        .start()
        .await;
    let client = Client::builder()
        .base_url(sandbox.uri())
        .token(Seed::example().token)
        .pacing(Pacing::unlimited().with_per_process(6_000))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let jobs: Vec<_> = rows.iter().map(job).collect();
    let outcomes: Vec<BackupOutcome> = client.create_many(stream::iter(jobs), 16).collect().await;
    let elapsed = started.elapsed();
    let failed: Vec<_> = outcomes
        .iter()
        .filter(|o| o.status != BackupStatus::Created)
        .collect();
    eprintln!(
        "400 wallets at 2x a 50/s window: {elapsed:?}, {} 429s, {} not created",
        sandbox.rate_limited(),
        failed.len()
    );
    assert!(failed.is_empty(), "{failed:?}");
    for row in &rows {
        assert_eq!(sandbox.creates_applied_to(&row.wallet_id), 1);
    }
    assert_eq!(sandbox.creates_received(), 400 + sandbox.rate_limited());
}
