//! `send()` and awaiting make the same calls; id text is judged the same whichever way it is
//! given; a result names its last request. From a review that tried to break them.

mod support;

use dynamic_waas::{BackupStatus, ErrorKind};
use dynamic_waas_sandbox::{Fault, FaultResponse, Target};
use support::{fast, google_drive};

/// `send()` and `.await` agree on what they send and what they answer, for accept_existing,
/// share_set_id and retry_policy; a result's request id is its last request's.
#[tokio::test]
async fn send_and_await_agree_and_request_ids_are_the_last_requests() {
    let wallet = support::example_wallet().backed_up_to("googleDrive");
    let (sandbox, seed) = support::seeded_with(wallet).await;
    let client = support::client_at(&sandbox.uri(), &seed.token, fast());
    let call = || {
        client.create_backup_locations(
            &seed.environment_id,
            &seed.wallet_id,
            &seed.user_id,
            [google_drive()],
        )
    };
    let last_request_id = || {
        let requests = sandbox.requests();
        requests
            .last()
            .and_then(|r| r.header("x-dyn-request-id").map(str::to_owned))
            .unwrap()
    };
    let sent = call().accept_existing().send().await.unwrap();
    assert_eq!(sent.status(), BackupStatus::AlreadyBackedUp);
    assert_eq!(sent.request_id(), last_request_id());
    let n = sandbox.requests().len();
    let awaited = call().accept_existing().await.unwrap();
    assert_eq!(awaited.request_id(), last_request_id());
    assert_eq!(sandbox.requests().len(), 2 * n);
    assert_eq!(
        support::ids(&sent),
        support::ids(&awaited),
        "{sent:?} {awaited:?}"
    );
    // A bad share set id: nothing sent either way.
    sandbox.clear_requests();
    for bad in ["not-a-uuid", " 95b11417-f18f-457f-8804-68e361f9164f"] {
        let err = call().share_set_id(bad).send().await.unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidInput { .. }),
            "{err:?}"
        );
        let err = call().share_set_id(bad).await.unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidInput { .. }),
            "{err:?}"
        );
    }
    assert_eq!(sandbox.requests().len(), 0);
    // retry_policy: one attempt, whichever way.
    for sent in [true, false] {
        sandbox.clear_requests();
        sandbox.fail_next(
            Target::Any,
            5,
            Fault::Reject(FaultResponse::new(429).header("retry-after", "0")),
        );
        let read = client
            .get_wallet(&seed.environment_id, &seed.wallet_id)
            .retry_policy(fast().with_max_attempts(1));
        let err = if sent {
            read.send().await.unwrap_err()
        } else {
            read.await.unwrap_err()
        };
        assert_eq!(sandbox.requests().len(), 1, "sent: {sent}");
        assert_eq!(err.request_id(), Some(&*last_request_id()));
        sandbox.clear_faults();
    }
    // A settle's result names its last read.
    let settled = client
        .settle(&seed.environment_id, &seed.wallet_id, [google_drive()])
        .send()
        .await
        .unwrap();
    match settled {
        dynamic_waas::Settlement::BackedUp(found)
        | dynamic_waas::Settlement::BackedUpOtherwise(found) => {
            assert_eq!(found.request_id(), last_request_id())
        }
        other => panic!("{other:?}"),
    }
}

/// Every id text is accepted or refused the same way as `&str`, `String` and `&String`
/// (checked without a copy now), and as the typed id's own parser.
#[tokio::test]
async fn id_texts_are_judged_alike_whichever_way_they_are_given() {
    let good = "95b11417-f18f-457f-8804-68e361f9164f";
    let candidates = [
        good.to_owned(),
        good.to_ascii_uppercase(),
        format!(" {good}"),
        format!("{good}\n"),
        good[..35].to_owned(),
        format!("{good}0"),
        good.replacen('9', "é", 1),
        format!("{}é", &good[..35]),
        good.replace('-', "_"),
        String::new(),
    ];
    let client = support::client_at("http://127.0.0.1:9", "dyn_calls_test", fast());
    for text in &candidates {
        let parsed = text.parse::<dynamic_waas::EnvironmentId>().is_ok();
        let by_str = client.get_wallet(text.as_str(), good).input_ok();
        let by_string = client.get_wallet(text.clone(), good).input_ok();
        let by_ref = client.get_wallet(text, good).input_ok();
        let user = client
            .create_backup_locations(good, good, text.as_str(), [google_drive()])
            .input_ok();
        assert_eq!([by_str, by_string, by_ref, user], [parsed; 4], "{text:?}");
    }
    let uuid = uuid::Uuid::parse_str(good).unwrap();
    assert!(client
        .create_backup_locations(good, good, uuid, [google_drive()])
        .input_ok());
    assert!(client
        .create_backup_locations(good, good, uuid::Uuid::nil(), [google_drive()])
        .input_ok());
}

/// Whether a call's input was accepted (its error, if any, is not InvalidInput), without a
/// server: a valid call fails to connect.
trait InputOk {
    fn input_ok(self) -> bool;
}

impl InputOk for dynamic_waas::GetWallet {
    fn input_ok(self) -> bool {
        let result = futures_block(self.retry_policy(fast().with_max_attempts(1)).send());
        !matches!(result, Err(e) if matches!(e.kind(), ErrorKind::InvalidInput { .. }))
    }
}

impl InputOk for dynamic_waas::CreateBackupLocations {
    fn input_ok(self) -> bool {
        let result = futures_block(self.retry_policy(fast().with_max_attempts(1)).send());
        !matches!(result, Err(e) if matches!(e.kind(), ErrorKind::InvalidInput { .. }))
    }
}

fn futures_block<F: std::future::Future + Send + 'static>(f: F) -> F::Output
where
    F::Output: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    })
    .join()
    .unwrap()
}
