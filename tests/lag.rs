//! Reads that lag behind writes, against a sandbox whose own duplicate check sees the same
//! lagging replica (`lagging_duplicate_check`): a create sent again to a wallet whose create
//! was applied is applied a second time, so these tests count what was applied per wallet,
//! and what was sent, not only what the server refused.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use dynamic_waas::{BackupJob, BackupStatus, Client, Pacing, RetryPolicy, DEFAULT_SETTLE_AFTER};
use dynamic_waas_sandbox::{Fault, FaultResponse, Operation, Pregenerated, Rate, Sandbox, Seed};
use futures_util::{stream, StreamExt};
use support::{fast, ids};

/// Pregenerated wallets whose reads lag `lag` behind creates, harshly.
async fn lagging(count: usize, lag: Duration) -> (Sandbox, Vec<Pregenerated>) {
    let (builder, rows) = support::with_wallets(count);
    let sandbox = builder
        .read_lag(lag)
        .lagging_duplicate_check()
        .start()
        .await;
    (sandbox, rows)
}

fn client(sandbox: &Sandbox, policy: RetryPolicy, pacing: Pacing) -> Client {
    Client::builder()
        .base_url(sandbox.uri())
        .token(Seed::example().token)
        .retry_policy(policy)
        .pacing(pacing)
        .build()
        .unwrap()
}

/// Applied, then answered 502 (a tenth), and refused by a gateway, not applied (a tenth).
fn ambiguous_faults(sandbox: &Sandbox, applied: f64, rejected: f64) {
    sandbox.fail_at_rate(
        Operation::Create,
        Rate::random(applied, 11),
        Fault::ApplyThenRespond(FaultResponse::new(502).html("<h1>Bad Gateway</h1>")),
    );
    sandbox.fail_at_rate(
        Operation::Create,
        Rate::random(rejected, 12),
        Fault::Reject(FaultResponse::new(502).html("<h1>Bad Gateway</h1>")),
    );
}

/// The key share ids the sandbox holds for `row`'s wallet.
fn stored(sandbox: &Sandbox, row: &Pregenerated) -> Vec<String> {
    let shares = sandbox.key_shares(&row.wallet_id).unwrap();
    shares.iter().map(|s| s.id.to_string()).collect()
}

/// The creates the sandbox refused at its gateway: sent, never applied.
fn rejected(sandbox: &Sandbox) -> usize {
    sandbox
        .requests()
        .iter()
        .filter(|r| r.operation == Some(Operation::Create) && r.outcome.contains("rejected"))
        .count()
}

#[tokio::test]
async fn a_single_call_sends_no_create_again_while_a_lagging_read_shows_nothing() {
    let (sandbox, rows) = lagging(1, Duration::from_millis(1500)).await;
    sandbox.fail_next(
        Operation::Create,
        1,
        Fault::ApplyThenRespond(FaultResponse::new(502)),
    );
    let policy = fast().with_settle_after(DEFAULT_SETTLE_AFTER);
    let client = client(&sandbox, policy, Pacing::unlimited());
    let created = support::create_pregenerated(&client, &rows[0])
        .await
        .unwrap();
    assert!(created.is_reconciled());
    assert_eq!(ids(&created), stored(&sandbox, &rows[0]));
    assert_eq!(sandbox.creates_received(), 1, "a create was sent again");
    assert_eq!(sandbox.creates_applied_to(&rows[0].wallet_id), 1);
}

#[tokio::test]
async fn a_bulk_run_sends_no_create_again_to_a_wallet_whose_create_was_applied() {
    let (sandbox, rows) = lagging(120, Duration::from_millis(1500)).await;
    ambiguous_faults(&sandbox, 0.15, 0.1);
    let policy = fast().with_settle_after(DEFAULT_SETTLE_AFTER);
    let client = client(&sandbox, policy, Pacing::unlimited());
    let jobs: Vec<BackupJob> = rows.iter().map(support::job).collect();
    let outcomes: Vec<_> = client.create_many(stream::iter(jobs), 32).collect().await;
    let by_wallet: HashMap<_, _> = outcomes.iter().map(|o| (o.wallet_id.clone(), o)).collect();
    for row in &rows {
        let outcome = by_wallet[&row.wallet_id];
        assert!(
            matches!(
                outcome.status,
                BackupStatus::Created | BackupStatus::Reconciled
            ),
            "{outcome:?}"
        );
        assert_eq!(sandbox.creates_applied_to(&row.wallet_id), 1, "{outcome:?}");
    }
    // Sent again only where a gateway refused it before it reached the service.
    assert_eq!(sandbox.creates_received(), rows.len() + rejected(&sandbox));
}

/// Reads lag 500 ms (under settle_after), a tight policy (4 attempts, 5 s), a fifth of the
/// creates ambiguous, 16 calls at a time under the default pacing: no applied create ends
/// unknown, and none is sent again.
#[tokio::test]
async fn applied_creates_are_settled_within_a_tight_deadline_under_the_default_pacing() {
    let (sandbox, rows) = lagging(48, Duration::from_millis(500)).await;
    ambiguous_faults(&sandbox, 0.12, 0.08);
    let policy = RetryPolicy::default()
        .with_max_attempts(4)
        .with_total_timeout(Duration::from_secs(5));
    let client = client(&sandbox, policy, Pacing::upstream());
    let calls = stream::iter(rows.iter().cloned())
        .map(|row| {
            let client = client.clone();
            async move {
                let result = support::create_pregenerated(&client, &row).await;
                (row, result)
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    for (row, result) in &calls {
        let applied = sandbox.creates_applied_to(&row.wallet_id);
        assert!(applied <= 1, "{} applied twice", row.wallet_id);
        if applied == 1 {
            let created = result.as_ref().unwrap_or_else(|e| panic!("{e:#}"));
            assert_eq!(ids(created), stored(&sandbox, row));
        }
    }
    // Nothing sent twice but what a gateway refused (whose resend the tight deadline may
    // not leave room for: those end unknown, or failed, never applied twice).
    assert!(sandbox.creates_received() <= rows.len() + rejected(&sandbox));
}
