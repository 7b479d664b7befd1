//! What issues 20 and 15 promise library users, proved as a service developer would after
//! reading the rustdoc and docs/crate.md: only `dynamic_waas::*` and `dynamic_waas_sandbox::*`,
//! real time against a sandbox, one test per promise.

use std::future::IntoFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use dynamic_waas::{
    BackupJob, BackupLocation, BackupOutcome, BackupStatus, Client, CreatedBackup, CreatedKeyShare,
    Error, ErrorKind, Event, LocationRequest, Metrics, NextRun, Pacing, RetryPolicy, Settlement,
};
use dynamic_waas_sandbox::{
    EnvironmentId, Fault, FaultResponse, Operation, Pregenerated, Rate, Sandbox, SandboxBuilder,
    Target, UserId, Wallet, WalletId,
};
use futures_util::{stream, StreamExt};

const TOKEN: &str = "dyn_user_guide_token_5f1c";

/// A sandbox with `count` wallets of their own users, none backed up, and a token for them.
fn wallets(count: usize) -> (SandboxBuilder, Vec<Pregenerated>) {
    let env = EnvironmentId::random();
    SandboxBuilder::new()
        .token(TOKEN, &env)
        .pregenerated(&env, count)
}

/// Short waits: a sandbox answers at once and its reads are current unless a test lags them.
fn quick() -> RetryPolicy {
    RetryPolicy::default()
        .with_initial_backoff(Duration::from_millis(10))
        .with_max_backoff(Duration::from_millis(50))
        .with_attempt_timeout(Duration::from_secs(5))
        .with_total_timeout(Duration::from_secs(20))
        .with_settle_after(Duration::from_millis(100))
}

/// A client of the sandbox. Unpaced: a loopback server has no limits to respect.
fn client_of(sandbox: &Sandbox) -> Client {
    Client::builder()
        .base_url(sandbox.uri())
        .token(TOKEN)
        .retry_policy(quick())
        .pacing(Pacing::unlimited())
        .build()
        .expect("a valid configuration")
}

fn google_drive() -> Vec<LocationRequest> {
    vec![BackupLocation::GoogleDrive.into()]
}

/// Key share ids, sorted, as text.
fn ids(shares: &[CreatedKeyShare]) -> Vec<String> {
    let mut ids: Vec<String> = shares.iter().map(|s| s.key_share_id.to_string()).collect();
    ids.sort();
    ids
}

/// The key share ids the sandbox holds for `wallet`, sorted.
fn held(sandbox: &Sandbox, wallet: &WalletId) -> Vec<String> {
    let shares = sandbox.key_shares(wallet).expect("a seeded wallet");
    let mut ids: Vec<String> = shares.iter().map(|s| s.id.to_string()).collect();
    ids.sort();
    ids
}

fn job(row: &Pregenerated) -> BackupJob {
    BackupJob::new(
        &row.environment_id,
        &row.wallet_id,
        &row.user_id,
        google_drive(),
    )
    .expect("valid ids")
}

// ---------------------------------------------------------------------------------------
// A service's back_up(), as docs/crate.md writes it.

/// What the service's backup of one wallet came to.
#[derive(Debug)]
enum Backup {
    /// The call said: created, reconciled or backed up before.
    Done(CreatedBackup),
    /// The call's outcome was unknown; `settle` then said what happened.
    Settled {
        unknown: Error,
        settlement: Settlement,
    },
}

/// The create with the service's own deadline (`call`), and, when its outcome is unknown, a
/// settle with the patience the service can afford later (`settling`).
async fn back_up(
    client: &Client,
    row: &Pregenerated,
    call: RetryPolicy,
    settling: RetryPolicy,
) -> Result<Backup, Error> {
    let (env, wallet, user) = (&row.environment_id, &row.wallet_id, &row.user_id);
    match client
        .create_backup_locations(env, wallet, user, google_drive())
        .accept_existing()
        .retry_policy(call)
        .await
    {
        Ok(backup) => Ok(Backup::Done(backup)),
        Err(err) if err.is_outcome_unknown() => {
            let settlement = client
                .settle(env, wallet, google_drive())
                .retry_policy(settling)
                .await?;
            Ok(Backup::Settled {
                unknown: err,
                settlement,
            })
        }
        Err(err) => Err(err),
    }
}

/// How far the sandbox's reads lag behind its writes in the settle tests.
const LAG: Duration = Duration::from_secs(2);

/// The service's deadline for the call. Its `settle_after` is below the real lag (the call
/// cannot see the create) and over half of (total - 2 × MIN_ATTEMPT_TIME): after the late
/// read shows nothing, no resend fits, so the call ends unknown having sent one create.
fn tight() -> RetryPolicy {
    quick()
        .with_total_timeout(Duration::from_millis(1500))
        .with_settle_after(Duration::from_millis(600))
}

/// Patient enough: a read that may say "not backed up" waits out the real lag.
fn patient() -> RetryPolicy {
    quick()
        .with_settle_after(LAG)
        .with_total_timeout(Duration::from_secs(10))
}

#[tokio::test]
async fn an_unknown_outcome_is_settled_as_backed_up_with_the_ids_the_server_holds() {
    let (builder, rows) = wallets(1);
    let sandbox = builder.read_lag(LAG).start().await;
    let client = client_of(&sandbox);
    // The server applies the create; a proxy loses its answer.
    sandbox.fail_next(
        Operation::Create,
        1,
        Fault::ApplyThenRespond(FaultResponse::new(502)),
    );

    let backup = back_up(&client, &rows[0], tight(), patient())
        .await
        .unwrap();
    let Backup::Settled {
        unknown,
        settlement,
    } = backup
    else {
        panic!("the call cannot see the create within its deadline: {backup:?}");
    };
    // The call's error: one short line, no status of its own; the story in `{:#}`.
    assert!(
        matches!(unknown.kind(), ErrorKind::OutcomeUnknown { .. }),
        "{unknown:?}"
    );
    assert_eq!(unknown.status(), None);
    assert!(!unknown.is_retryable());
    let short = unknown.to_string();
    let story = format!("{unknown:#}");
    assert!(short.starts_with("outcome unknown: "), "{short}");
    assert!(!short.contains('\n') && !story.contains('\n'), "{story}");
    assert!(!short.contains("status 502"), "{short}");
    assert!(story.starts_with(&short), "{story}");
    assert!(
        story.contains("create attempt 1 may have been applied") && story.contains("status 502"),
        "{story}"
    );
    assert!(std::error::Error::source(&unknown).is_some());

    // `settle` finds the key shares the server holds, once reads caught up.
    let Settlement::BackedUp(backup) = settlement else {
        panic!("the create was applied: {settlement:?}");
    };
    assert_eq!(backup.status(), BackupStatus::Reconciled);
    assert!(backup.is_reconciled());
    assert_eq!(
        ids(backup.locations_with_key_shares()),
        held(&sandbox, &rows[0].wallet_id)
    );
    assert_eq!(backup.wallet_id().as_str(), rows[0].wallet_id.as_str());
    // Nothing was sent twice.
    assert_eq!(sandbox.creates_received(), 1);
    assert_eq!(sandbox.creates_applied(), 1);
}

#[tokio::test]
async fn an_unknown_outcome_is_settled_as_not_backed_up_and_creating_again_works() {
    let (builder, rows) = wallets(1);
    let sandbox = builder.read_lag(LAG).start().await;
    let client = client_of(&sandbox);
    // A gateway refuses the create before it reaches the service: nothing is applied.
    sandbox.fail_next(Operation::Create, 1, Fault::Reject(FaultResponse::new(502)));

    let backup = back_up(&client, &rows[0], tight(), patient())
        .await
        .unwrap();
    let Backup::Settled {
        unknown,
        settlement,
    } = backup
    else {
        panic!("a 502 may have been applied: {backup:?}");
    };
    assert!(unknown.is_outcome_unknown(), "{unknown:?}");
    assert_eq!(settlement, Settlement::NotBackedUp);
    assert_eq!(sandbox.creates_applied(), 0);

    // Not created: safe to create again.
    let Backup::Done(created) = back_up(&client, &rows[0], tight(), patient())
        .await
        .unwrap()
    else {
        panic!("nothing is faulted now");
    };
    assert_eq!(created.status(), BackupStatus::Created);
    assert_eq!(
        ids(created.locations_with_key_shares()),
        held(&sandbox, &rows[0].wallet_id)
    );
    assert_eq!(sandbox.creates_received(), 2);
    assert_eq!(sandbox.creates_applied(), 1);
}

#[tokio::test]
async fn accept_existing_turns_a_wallet_backed_up_before_into_its_key_shares() {
    let env = EnvironmentId::random();
    let user = UserId::random();
    let wallet = Wallet::new(WalletId::random(), &env, &user).backed_up_to("googleDrive");
    let wallet_id = wallet.id().clone();
    let sandbox = SandboxBuilder::new()
        .token(TOKEN, &env)
        .wallet(wallet)
        .start()
        .await;
    let client = client_of(&sandbox);
    let create = || client.create_backup_locations(&env, &wallet_id, &user, google_drive());

    let err = create().await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::AlreadyBackedUp);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(422));
    assert!(err.to_string().contains("accept_existing()"), "{err}");

    let existing = create().accept_existing().await.unwrap();
    assert_eq!(existing.status(), BackupStatus::AlreadyBackedUp);
    assert!(!existing.is_reconciled());
    assert_eq!(
        ids(existing.locations_with_key_shares()),
        held(&sandbox, &wallet_id)
    );
    assert_eq!(sandbox.creates_applied(), 0);
}

#[tokio::test]
async fn send_makes_the_same_calls_as_await() {
    let (builder, rows) = wallets(2);
    let sandbox = builder.start().await;
    let client = client_of(&sandbox);
    let (first, second) = (&rows[0], &rows[1]);
    let created = client
        .create_backup_locations(
            &first.environment_id,
            &first.wallet_id,
            first.user_id.to_uuid().unwrap(),
            google_drive(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        ids(created.locations_with_key_shares()),
        held(&sandbox, &first.wallet_id)
    );
    let wallet = client
        .get_wallet(&first.environment_id, &first.wallet_id)
        .send()
        .await
        .unwrap();
    assert_eq!(wallet.key_shares.len(), 1);
    let (_, raw) = client
        .get_wallet(&first.environment_id, &first.wallet_id)
        .with_raw_body()
        .send()
        .await
        .unwrap();
    assert!(raw.starts_with(b"{"));
    let settled = client
        .settle(&second.environment_id, &second.wallet_id, google_drive())
        .last_sent(std::time::SystemTime::now() - Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    assert_eq!(settled, dynamic_waas::Settlement::NotBackedUp);
    // Bad input fails before anything is sent, as it does when awaited.
    let err = client
        .create_backup_locations(
            "not-an-id",
            &first.wallet_id,
            &first.user_id,
            google_drive(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::InvalidInput { .. }),
        "{err:?}"
    );
    assert_eq!(sandbox.creates_received(), 1);
}

#[tokio::test]
async fn get_wallet_returns_typed_locations() {
    let (builder, rows) = wallets(1);
    let sandbox = builder.start().await;
    // A location this release does not know, as the server may learn one first.
    sandbox.accept_location("paperWallet");
    let client = client_of(&sandbox);
    let row = &rows[0];
    client
        .create_backup_locations(
            &row.environment_id,
            &row.wallet_id,
            &row.user_id,
            [
                LocationRequest::new(BackupLocation::GoogleDrive),
                LocationRequest::new(BackupLocation::from("paperWallet")),
            ],
        )
        .await
        .unwrap();

    let wallet: dynamic_waas::Wallet = client
        .get_wallet(&row.environment_id, &row.wallet_id)
        .await
        .unwrap();
    assert_eq!(wallet.wallet_id.as_str(), row.wallet_id.as_str());
    let locations: Vec<&BackupLocation> = wallet.key_shares.iter().map(|s| &s.location).collect();
    assert_eq!(locations.len(), 2);
    assert!(locations.contains(&&BackupLocation::GoogleDrive));
    let newer = locations
        .iter()
        .find(|l| l.is_unknown())
        .expect("kept, not refused");
    assert_eq!(newer.as_str(), "paperWallet");
    let shares: Vec<CreatedKeyShare> = wallet.key_shares.iter().map(|s| s.to_created()).collect();
    assert_eq!(ids(&shares), held(&sandbox, &row.wallet_id));
}

#[tokio::test]
async fn calls_and_bulk_runs_spawn_and_outlive_the_client_handle() {
    let (builder, rows) = wallets(4);
    let sandbox = builder.start().await;
    // Slow answers, so that every future is still running when the client is dropped.
    let slow = Fault::ApplyThenDelay(Duration::from_millis(200));
    sandbox.fail_at_rate(Target::Any, Rate::every(1), slow);
    let client = client_of(&sandbox);
    let (first, second) = (&rows[0], &rows[1]);

    let create = tokio::spawn(
        client
            .create_backup_locations(
                &first.environment_id,
                &first.wallet_id,
                &first.user_id,
                google_drive(),
            )
            .into_future(),
    );
    let read = tokio::spawn(
        client
            .get_wallet(&second.environment_id, &second.wallet_id)
            .into_future(),
    );
    let outcomes = client.create_many(
        stream::iter(rows[2..].iter().map(job).collect::<Vec<_>>()),
        2,
    );
    let bulk = tokio::spawn(outcomes.collect::<Vec<BackupOutcome>>());
    drop(client);

    let created = create.await.unwrap().unwrap();
    assert_eq!(created.status(), BackupStatus::Created);
    let wallet = read.await.unwrap().unwrap();
    assert!(wallet.key_shares.is_empty());
    let outcomes = bulk.await.unwrap();
    assert_eq!(outcomes.len(), 2);
    assert!(outcomes.iter().all(|o| o.status == BackupStatus::Created));
    assert_eq!(sandbox.creates_applied(), 3);
}

#[tokio::test]
async fn a_stopped_bulk_run_yields_every_started_jobs_outcome_and_pulls_no_more() {
    const CONCURRENCY: usize = 3;
    let (builder, rows) = wallets(12);
    let sandbox = builder.start().await;
    // Creates take a while, so that jobs are in flight when the run is stopped.
    let slow = Fault::ApplyThenDelay(Duration::from_millis(100));
    sandbox.fail_at_rate(Operation::Create, Rate::every(1), slow);
    let client = client_of(&sandbox);
    // Counts what the run takes from the input.
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let jobs = stream::iter(rows.iter().map(job).collect::<Vec<_>>()).inspect(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });

    let mut outcomes = client.create_many(jobs, CONCURRENCY);
    let handle = outcomes.handle();
    assert_eq!(handle.progress().pulled, 0);
    let mut got = Vec::new();
    while let Some(outcome) = outcomes.next().await {
        got.push(outcome);
        let progress = handle.progress();
        assert_eq!(progress.finished, got.len() as u64);
        assert!(progress.in_flight <= CONCURRENCY as u64, "{progress:?}");
        if got.len() == 3 {
            handle.stop();
            assert!(handle.is_stopping());
        }
    }

    let progress = handle.progress();
    // Those in flight at the stop finished and were yielded; none was started after it.
    assert!(
        got.len() > 3 && got.len() < 3 + CONCURRENCY,
        "{}",
        got.len()
    );
    assert_eq!(pulled.load(Ordering::SeqCst), got.len());
    assert_eq!(progress.pulled, got.len() as u64);
    assert_eq!(progress.finished, got.len() as u64);
    assert_eq!((progress.in_flight, progress.waiting), (0, 0));
    assert!(progress.stopping);
    assert!(got.iter().all(|o| o.status == BackupStatus::Created));
    assert_eq!(sandbox.creates_received(), got.len());
    // The stream stays ended.
    assert!(outcomes.next().await.is_none());
}

#[tokio::test]
async fn two_jobs_for_one_wallet_never_run_at_once() {
    let (builder, rows) = wallets(2);
    let sandbox = builder.start().await;
    let slow = Fault::ApplyThenDelay(Duration::from_millis(100));
    sandbox.fail_at_rate(Operation::Create, Rate::every(1), slow);
    let client = client_of(&sandbox);
    let jobs = vec![
        job(&rows[0]).with_tag(1),
        job(&rows[0]).with_tag(2),
        job(&rows[1]).with_tag(3),
    ];

    let mut outcomes: Vec<BackupOutcome> =
        client.create_many(stream::iter(jobs), 4).collect().await;
    outcomes.sort_by_key(|o| o.tag);
    let status: Vec<(Option<u64>, BackupStatus)> =
        outcomes.iter().map(|o| (o.tag, o.status)).collect();
    assert_eq!(
        status,
        [
            (Some(1), BackupStatus::Created),
            (Some(2), BackupStatus::Duplicate),
            (Some(3), BackupStatus::Created),
        ]
    );
    assert_eq!(outcomes[1].key_shares, outcomes[0].key_shares);
    assert_eq!(
        ids(&outcomes[1].key_shares),
        held(&sandbox, &rows[0].wallet_id)
    );
    assert_eq!(
        outcomes[1].attempts, 0,
        "nothing was sent for the duplicate"
    );
    assert_eq!(outcomes[1].next_run(), NextRun::Skip);
    assert_eq!(sandbox.creates_applied_to(&rows[0].wallet_id), 1);
    assert_eq!(sandbox.creates_received(), 2);
}

/// One outcome that created and one that failed (a wallet the server does not know).
async fn created_and_failed_outcomes() -> Vec<BackupOutcome> {
    let (builder, rows) = wallets(1);
    let sandbox = builder.start().await;
    let client = client_of(&sandbox);
    let unknown_wallet = BackupJob::new(
        &rows[0].environment_id,
        WalletId::random(),
        &rows[0].user_id,
        google_drive(),
    )
    .unwrap();
    let jobs = vec![job(&rows[0]).with_tag(1), unknown_wallet.with_tag(2)];
    let mut outcomes: Vec<BackupOutcome> =
        client.create_many(stream::iter(jobs), 2).collect().await;
    outcomes.sort_by_key(|o| o.tag);
    assert_eq!(outcomes[0].status, BackupStatus::Created);
    assert_eq!(outcomes[1].status, BackupStatus::Failed);
    outcomes
}

#[tokio::test]
async fn bulk_outcomes_round_trip_through_json() {
    for outcome in created_and_failed_outcomes().await {
        let line = serde_json::to_string(&outcome).unwrap();
        assert!(!line.contains('\n'), "{line}");
        let back: BackupOutcome = serde_json::from_str(&line).unwrap();
        assert_eq!(back.environment_id, outcome.environment_id);
        assert_eq!(back.wallet_id, outcome.wallet_id);
        assert_eq!(back.tag, outcome.tag);
        assert_eq!(back.status, outcome.status);
        assert_eq!(back.key_shares, outcome.key_shares);
        assert_eq!(back.share_set_id, outcome.share_set_id);
        assert_eq!(back.request_id, outcome.request_id);
        assert_eq!(back.attempts, outcome.attempts);
        assert_eq!(back.next_run(), outcome.next_run());
        match (&back.error, &outcome.error) {
            (None, None) => {}
            (Some(back), Some(sent)) => {
                assert_eq!(back.kind(), sent.kind());
                assert_eq!(back.kind(), &ErrorKind::NotFound);
                assert_eq!(back.status(), sent.status());
                assert_eq!(back.request_id(), sent.request_id());
                assert_eq!(back.attempts(), sent.attempts());
                assert_eq!(back.upstream_code(), sent.upstream_code());
                assert_eq!(back.upstream_error(), sent.upstream_error());
                assert_eq!(format!("{back:#}"), format!("{sent:#}"));
            }
            other => panic!("the error did not round-trip: {other:?}"),
        }
    }
}

/// What a resumed run reads back is what it writes again (a results file merged, rewritten).
#[tokio::test]
async fn a_bulk_outcome_read_back_is_written_as_the_same_line() {
    for outcome in created_and_failed_outcomes().await {
        let line = serde_json::to_string(&outcome).unwrap();
        let back: BackupOutcome = serde_json::from_str(&line).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), line);
    }
}

// ---------------------------------------------------------------------------------------
// test_util: unit tests of a user's own code, without a server.

// The feature `test-util` is on in the workspace's `cargo test --all-features`.
#[cfg(feature = "test-util")]
mod unit {
    use super::*;
    use dynamic_waas::test_util;

    /// A user's CLI: the exit code (sysexits) and the one line it prints for a backup's result.
    fn report(result: &Result<CreatedBackup, Error>) -> (i32, String) {
        match result {
            Ok(backup) => {
                let ids: Vec<String> = backup
                    .locations_with_key_shares()
                    .iter()
                    .map(|s| format!("{}={}", s.location, s.key_share_id))
                    .collect();
                let how = match backup.status() {
                    BackupStatus::Reconciled => "backed up (reconciled)",
                    BackupStatus::AlreadyBackedUp => "backed up before",
                    _ => "backed up",
                };
                (0, format!("{how}: {}", ids.join(", ")))
            }
            Err(err) => match err.kind() {
                ErrorKind::InvalidInput { field, .. } => (64, format!("fix {field}: {err}")),
                ErrorKind::OutcomeUnknown { .. } => {
                    (75, format!("settle before retrying: {err:#}"))
                }
                ErrorKind::Unauthorized | ErrorKind::Forbidden => (77, err.to_string()),
                _ if err.is_retryable() => (75, format!("retry later: {err}")),
                _ => (1, err.to_string()),
            },
        }
    }

    #[test]
    fn a_users_error_mapping_is_unit_tested_with_test_util() {
        let wallet = "95b11417-f18f-457f-8804-68e361f9164f";
        let share = "0f0e0d0c-0b0a-4908-8706-050403020100";

        let created = test_util::created(wallet)
            .share(BackupLocation::GoogleDrive, share)
            .build();
        assert_eq!(
            report(&Ok(created)),
            (0, format!("backed up: googleDrive={share}"))
        );
        let reconciled = test_util::created(wallet)
            .share(BackupLocation::GoogleDrive, share)
            .status(BackupStatus::Reconciled)
            .build();
        assert!(reconciled.is_reconciled());
        assert_eq!(
            report(&Ok(reconciled)).1,
            format!("backed up (reconciled): googleDrive={share}")
        );

        let unknown = test_util::error(ErrorKind::OutcomeUnknown {
            reason: "the wallet could not be read".into(),
        })
        .attempts(4)
        .request_id("r-7")
        .source("create attempt 1 may have been applied")
        .build();
        let (code, line) = report(&Err(unknown));
        assert_eq!(code, 75);
        assert!(line.contains("the wallet could not be read"), "{line}");
        assert!(line.contains("4 attempts, request id r-7"), "{line}");
        assert!(
            line.ends_with(": create attempt 1 may have been applied"),
            "{line}"
        );

        let limited = test_util::error(ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(30)),
        })
        .status(429)
        .upstream_error("Too many requests. Please try again later.")
        .build();
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(30)));
        assert_eq!(report(&Err(limited)).0, 75);

        let refused = test_util::error(ErrorKind::Unauthorized)
            .status(401)
            .upstream_code("invalid_token")
            .attempts(2)
            .build();
        assert_eq!(refused.status().map(|s| s.as_u16()), Some(401));
        assert_eq!(refused.upstream_code(), Some("invalid_token"));
        assert_eq!(report(&Err(refused)).0, 77);

        let bad = test_util::error(ErrorKind::InvalidInput {
            field: "walletId".into(),
            reason: "it is empty".into(),
        })
        .build();
        assert!(report(&Err(bad)).1.starts_with("fix walletId: "));

        let backed_up = test_util::error(ErrorKind::AlreadyBackedUp)
            .status(422)
            .upstream_code("key_share_already_backed_up")
            .build();
        assert_eq!(report(&Err(backed_up)).0, 1);

        // A wallet as `get_wallet` returns it, for code that reads one.
        let read = test_util::wallet(wallet)
            .share(BackupLocation::GoogleDrive, share)
            .share(
                BackupLocation::ICloud,
                "1f0e0d0c-0b0a-4908-8706-050403020100",
            )
            .build();
        let in_drive = read
            .key_shares
            .iter()
            .filter(|s| s.location == BackupLocation::GoogleDrive)
            .count();
        assert_eq!((read.key_shares.len(), in_drive), (2, 1));
    }
}

// ---------------------------------------------------------------------------------------
// Ids.

#[tokio::test]
async fn typed_ids_fill_their_roles_and_bad_text_is_refused_before_anything_is_sent() {
    let env = EnvironmentId::random();
    let wallet = WalletId::parse(&dynamic_waas::uuid::Uuid::new_v4().to_string()).unwrap();
    let user: UserId = "3c90c3cc-0d44-4b50-8888-8dd25736052a".parse().unwrap();
    let sandbox = SandboxBuilder::new()
        .token(TOKEN, &env)
        .wallet(Wallet::new(&wallet, &env, &user))
        .start()
        .await;
    let client = client_of(&sandbox);

    // Typed ids, by reference and by value; a Uuid and text fill any role.
    let created = client
        .create_backup_locations(&env, &wallet, &user, google_drive())
        .await
        .unwrap();
    assert_eq!(created.status(), BackupStatus::Created);
    client
        .get_wallet(env.clone(), wallet.clone())
        .await
        .unwrap();
    let as_uuid = wallet.to_uuid().unwrap();
    client.get_wallet(env.as_str(), as_uuid).await.unwrap();
    // Borrowed text and a borrowed Uuid, as a caller holds them.
    #[allow(clippy::needless_borrows_for_generic_args)]
    let by_ref = client.get_wallet(&env.as_str().to_owned(), &as_uuid);
    by_ref.await.unwrap();
    let sent = sandbox.requests_received();

    // Bad text: refused with the field's name, nothing sent.
    let upper = wallet.as_str().to_uppercase();
    let refusals: Vec<(&str, Error)> = vec![
        (
            "walletId",
            client
                .create_backup_locations(&env, upper.as_str(), &user, google_drive())
                .await
                .unwrap_err(),
        ),
        (
            "userId",
            client
                .create_backup_locations(&env, &wallet, "", google_drive())
                .await
                .unwrap_err(),
        ),
        (
            "environmentId",
            client.get_wallet("env", &wallet).await.unwrap_err(),
        ),
        (
            "walletId",
            client
                .settle(&env, "95b11417", google_drive())
                .await
                .unwrap_err(),
        ),
        (
            "shareSetId",
            client
                .create_backup_locations(&env, &wallet, &user, google_drive())
                .share_set_id("set-1")
                .await
                .unwrap_err(),
        ),
        (
            "walletId",
            BackupJob::new(&env, "w", &user, google_drive()).unwrap_err(),
        ),
    ];
    for (field, err) in refusals {
        match err.kind() {
            ErrorKind::InvalidInput { field: named, .. } => assert_eq!(named, field, "{err}"),
            other => panic!("{field}: {other:?}"),
        }
        assert!(err.is_invalid_input());
        assert_eq!(err.attempts(), 0);
        assert!(err.to_string().contains("nothing was sent"), "{err}");
    }
    assert_eq!(sandbox.requests_received(), sent);
}

#[tokio::test]
async fn a_sandbox_is_seeded_from_rust_without_the_uuid_crate() {
    // The sandbox's id types are the client's: no conversion, no `uuid` dependency.
    let env: dynamic_waas::EnvironmentId = EnvironmentId::random();
    let (builder, rows) = SandboxBuilder::new()
        .token(TOKEN, &env)
        .pregenerated(&env, 2);
    let alice = UserId::random();
    let extra = Wallet::new(WalletId::random(), &env, &alice);
    let extra_id: dynamic_waas::WalletId = extra.id().clone();
    let sandbox = builder.wallet(extra).start().await;
    let client = client_of(&sandbox);

    // The rows of `pregenerated` are ready-made jobs.
    let jobs: Vec<BackupJob> = rows.iter().map(job).collect();
    let outcomes: Vec<BackupOutcome> = client.create_many(stream::iter(jobs), 2).collect().await;
    assert!(outcomes.iter().all(|o| o.status == BackupStatus::Created));
    for row in &rows {
        assert_eq!(row.environment_id, env);
        assert_eq!(held(&sandbox, &row.wallet_id).len(), 1);
    }
    // A wallet's owner is a user of its environment.
    let created = client
        .create_backup_locations(&env, &extra_id, &alice, google_drive())
        .await
        .unwrap();
    assert_eq!(
        ids(created.locations_with_key_shares()),
        held(&sandbox, &extra_id)
    );
    // The same rows every time: an input file written once matches every run.
    let (_, again) = SandboxBuilder::new().pregenerated(&env, 2);
    assert_eq!(rows, again);
}

// ---------------------------------------------------------------------------------------
// Observability.

/// Every event the client reported, in order.
#[derive(Default)]
struct Recorded(Mutex<Vec<Event>>);

impl Metrics for Recorded {
    fn record(&self, event: &Event) {
        self.0.lock().unwrap().push(*event);
    }
}

impl Recorded {
    fn count(&self, wanted: impl Fn(&Event) -> bool) -> usize {
        self.0.lock().unwrap().iter().filter(|e| wanted(e)).count()
    }
}

#[tokio::test]
async fn metrics_see_requests_retries_rate_limits_reconciliations_and_unknown_outcomes() {
    const CREATE: &str = "create_backup_locations";
    let (builder, rows) = wallets(3);
    let sandbox = builder.start().await;
    let events = Arc::new(Recorded::default());
    let client = Client::builder()
        .base_url(sandbox.uri())
        .token(TOKEN)
        .retry_policy(quick())
        .metrics(Arc::clone(&events))
        .build()
        .unwrap();
    let create = |row: &Pregenerated| {
        client.create_backup_locations(
            &row.environment_id,
            &row.wallet_id,
            &row.user_id,
            google_drive(),
        )
    };

    // A 429, then the create.
    sandbox.fail_next(Operation::Create, 1, FaultResponse::new(429).retry_after(0));
    assert_eq!(
        create(&rows[0]).await.unwrap().status(),
        BackupStatus::Created
    );
    // Applied, its answer lost: reconciled from the wallet.
    sandbox.fail_next(
        Operation::Create,
        1,
        Fault::ApplyThenRespond(FaultResponse::new(502)),
    );
    assert!(create(&rows[1]).await.unwrap().is_reconciled());
    // Every request fails: the create may have been applied and no read tells.
    sandbox.fail_at_rate(Target::Any, Rate::every(1), FaultResponse::new(500));
    let err = create(&rows[2])
        .retry_policy(quick().with_max_attempts(2))
        .await
        .unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");

    let requests = events.count(|e| matches!(e, Event::Request { .. }));
    assert_eq!(requests, sandbox.requests_received());
    assert_eq!(requests as u64, client.stats().requests_sent);
    let first_creates = events.count(|e| {
        matches!(
            e,
            Event::Request {
                operation: CREATE,
                retry: false
            }
        )
    });
    assert_eq!(first_creates, 3);
    assert!(
        events.count(|e| matches!(
            e,
            Event::Request {
                operation: CREATE,
                retry: true
            }
        )) >= 1
    );
    assert!(
        events.count(|e| matches!(
            e,
            Event::Request {
                operation: "get_wallet",
                ..
            }
        )) >= 2
    );
    let rate_limited_retries = events.count(|e| {
        matches!(
            e,
            Event::Retry {
                operation: CREATE,
                reason: "rate_limited"
            }
        )
    });
    assert_eq!(rate_limited_retries, 1);
    let server_error_retries = events.count(|e| {
        matches!(
            e,
            Event::Retry {
                reason: "server_error",
                ..
            }
        )
    });
    assert!(server_error_retries >= 1);
    assert_eq!(events.count(|e| *e == Event::RateLimited), 1);
    assert_eq!(client.stats().rate_limited, 1);
    assert_eq!(events.count(|e| *e == Event::Reconciled), 1);
    assert_eq!(events.count(|e| *e == Event::OutcomeUnknown), 1);
    // Paced by default: every request took a permit.
    assert_eq!(
        events.count(|e| matches!(e, Event::PacerWait { .. })),
        requests
    );
}

/// What the global subscriber wrote (see `traced`).
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything this test binary logs, at every level. A global subscriber, not a scoped one:
/// tracing caches each callsite's interest process-wide, so a thread-local subscriber can
/// miss events whose callsites another test's thread registered first.
fn traced() -> Buffer {
    static LOGS: OnceLock<Buffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Buffer::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        logs
    })
    .clone()
}

#[tokio::test]
async fn every_attempt_is_a_span_with_opentelemetrys_http_fields_and_no_token() {
    let logs = traced();
    let (builder, rows) = wallets(1);
    let sandbox = builder.start().await;
    let row = &rows[0];
    sandbox.fail_next(Operation::Create, 1, FaultResponse::new(503));
    client_of(&sandbox)
        .create_backup_locations(
            &row.environment_id,
            &row.wallet_id,
            &row.user_id,
            google_drive(),
        )
        .await
        .unwrap();

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    // Other tests' events land here too: this call's are those naming its wallet.
    let wallet = format!("wallet_id={}", row.wallet_id);
    // The lines that close an attempt: its span then carries the answer's status.
    let attempts: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(&wallet) && l.contains("dynamic_waas.attempt{"))
        .collect();
    let closing = |resend: u32| {
        let resend = format!("http.request.resend_count={resend}");
        attempts
            .iter()
            .find(|l| l.contains(&resend) && l.contains("http.response.status_code="))
            .copied()
            .unwrap_or_else(|| panic!("no {resend} with a status: {text}"))
    };
    for (line, status) in [(closing(0), 503), (closing(1), 201)] {
        assert!(line.contains("http.request.method=\"POST\""), "{line}");
        assert!(line.contains("server.address=127.0.0.1"), "{line}");
        assert!(
            line.contains(&format!("http.response.status_code={status}")),
            "{line}"
        );
    }
    // One span per attempt: no line is in two of them.
    assert!(attempts
        .iter()
        .all(|l| l.matches("dynamic_waas.attempt{").count() == 1));
    assert!(!text.contains(TOKEN), "the token was logged");
}
