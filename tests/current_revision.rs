//! Upstream's current revision of the create: `shareSetId` in the request; `shareSetId`,
//! `passwordUpdateStatus`, `shareSetType` and `walletActive` in the response; the
//! `offlineRecovery` and `user` locations. Through the facade, over real HTTP.

mod support;

use dynamic_waas::{
    BackupLocation, ErrorKind, LocationRequest, PasswordUpdateStatus, ShareSetType,
    ThresholdSignatureScheme,
};
use dynamic_waas_sandbox::{Sandbox, Seed, Wallet};
use serde_json::{json, Value};
use support::{
    client_at, fast, fixture, google_drive, ids, server, Fault, Faulty, ENV, USER, WALLET,
};
use wiremock::matchers::{body_json, method};
use wiremock::{Mock, ResponseTemplate};

const SHARE_SET: &str = "5f0c6d9e-0d1b-4c3e-9a57-2f1f8f0b7a11";

#[tokio::test]
async fn the_example_request_is_sent_and_the_example_response_read_with_its_new_fields() {
    let server = server().await;
    Mock::given(method("POST"))
        .and(body_json(fixture("current_request.json")))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(fixture("current_response_201.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let created = client_at(&server.uri(), "dyn_x", fast())
        .create_backup_locations(
            ENV,
            WALLET,
            USER,
            [LocationRequest::new(BackupLocation::GoogleDrive)
                .with_keygen_id("An example name")
                .with_threshold_signature_scheme(ThresholdSignatureScheme::TwoOfTwo)
                .with_external_key_share_id("An example name")],
        )
        .share_set_id(SHARE_SET)
        .await
        .unwrap();
    assert_eq!(created.share_set_id(), Some(SHARE_SET));
    assert_eq!(
        created.password_update_status(),
        Some(&PasswordUpdateStatus::Activated)
    );
    assert_eq!(created.share_set_type(), Some(&ShareSetType::RootUser));
    assert_eq!(created.wallet_active(), Some(true));
    assert!(created.extra().is_empty());
}

#[tokio::test]
async fn null_absent_and_unknown_values_of_the_new_fields_are_read() {
    let server = server().await;
    let mut body = fixture("current_response_201.json");
    body["shareSetId"] = Value::Null;
    body["shareSetType"] = Value::Null;
    body["passwordUpdateStatus"] = json!("rotating");
    body.as_object_mut().unwrap().remove("walletActive");
    body["shareSetVersion"] = json!(3);
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(body))
        .mount(&server)
        .await;
    let created = client_at(&server.uri(), "dyn_x", fast())
        .create_backup_locations(ENV, WALLET, USER, [google_drive()])
        .await
        .unwrap();
    assert_eq!(created.share_set_id(), None);
    assert_eq!(created.share_set_type(), None);
    assert_eq!(created.wallet_active(), None);
    let status = created.password_update_status().unwrap();
    assert!(status.is_unknown());
    assert_eq!(status.as_str(), "rotating");
    // The field this release does not know, typed as received; the nulls are not listed.
    assert_eq!(
        created.extra(),
        json!({"shareSetVersion": 3}).as_object().cloned().unwrap()
    );
}

#[tokio::test]
async fn an_invalid_share_set_id_is_refused_before_anything_is_sent() {
    let server = server().await;
    let client = client_at(&server.uri(), "dyn_x", fast());
    for bad in ["not-a-uuid", "5F0C6D9E-0D1B-4C3E-9A57-2F1F8F0B7A11", ""] {
        let err = client
            .create_backup_locations(ENV, WALLET, USER, [google_drive()])
            .share_set_id(bad)
            .await
            .unwrap_err();
        match err.kind() {
            ErrorKind::InvalidInput { field, .. } => assert_eq!(field, "shareSetId", "{bad}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_sandbox_answers_the_share_set_asked_for_else_the_wallets() {
    let seed = Seed::example();
    let other = dynamic_waas::WalletId::from(uuid::Uuid::from_u128(0xb0b));
    let builder = seed.builder().wallet(
        Wallet::new(other.clone(), seed.environment_id.clone(), &seed.user_id)
            .share_set_type(None)
            .wallet_active(Some(false))
            .password_update_status(Some("pending")),
    );
    let sandbox = Sandbox::start(builder).await;
    let client = client_at(&sandbox.uri(), &seed.token, fast());
    let asked = client
        .create_backup_locations(
            &seed.environment_id,
            &seed.wallet_id,
            &seed.user_id,
            [BackupLocation::OfflineRecovery.into()],
        )
        .share_set_id(uuid::Uuid::parse_str(SHARE_SET).unwrap())
        .await
        .unwrap();
    assert_eq!(asked.share_set_id(), Some(SHARE_SET));
    assert_eq!(asked.share_set_type(), Some(&ShareSetType::RootUser));
    let sent = sandbox.requests();
    assert_eq!(sent[0].body_json().unwrap()["shareSetId"], SHARE_SET);

    let default = client
        .create_backup_locations(
            &seed.environment_id,
            &other,
            &seed.user_id,
            [BackupLocation::User.into()],
        )
        .await
        .unwrap();
    assert!(default.share_set_id().is_some_and(|id| id != SHARE_SET));
    assert_eq!(default.share_set_type(), None);
    assert_eq!(default.wallet_active(), Some(false));
    assert_eq!(
        default.password_update_status(),
        Some(&PasswordUpdateStatus::Pending)
    );
    assert_eq!(
        default.locations_with_key_shares()[0].location,
        BackupLocation::User
    );
}

#[tokio::test]
async fn a_lost_create_with_a_share_set_is_reconciled_and_sent_once() {
    let f = Faulty::start(fast()).await;
    f.proxy.next("POST", [Fault::ApplyThenDrop]);
    let created = f
        .client
        .create_backup_locations(
            &f.seed.environment_id,
            &f.seed.wallet_id,
            &f.seed.user_id,
            [google_drive()],
        )
        .share_set_id(SHARE_SET)
        .await
        .unwrap();
    assert!(created.is_reconciled());
    assert_eq!(ids(&created), f.stored_ids());
    assert_eq!(f.proxy.sent("POST"), 1);
    let applied = f.sandbox.requests();
    assert_eq!(applied[0].body_json().unwrap()["shareSetId"], SHARE_SET);
}
