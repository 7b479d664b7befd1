//! The sandbox's rules, each through the facade: what a service that uses `dynamic-waas`
//! sees when it tests against `dynamic_waas_sandbox::Sandbox`.

use std::time::Duration;

use dynamic_waas::{BackupLocation, Client, ErrorKind, LocationRequest, RetryPolicy};
use dynamic_waas_sandbox::{
    Fault, FaultResponse, Operation, RateLimit, Sandbox, SandboxBuilder, Wallet,
};
use uuid::Uuid;

mod support;

const ENV_A: &str = "0a0a0a0a-0a0a-4a0a-8a0a-0a0a0a0a0a0a";
const ENV_B: &str = "0b0b0b0b-0b0b-4b0b-8b0b-0b0b0b0b0b0b";
const WALLET_A: &str = "1a1a1a1a-1a1a-4a1a-8a1a-1a1a1a1a1a1a";
const WALLET_B: &str = "1b1b1b1b-1b1b-4b1b-8b1b-1b1b1b1b1b1b";
const WALLET_OTHER_USER: &str = "1c1c1c1c-1c1c-4c1c-8c1c-1c1c1c1c1c1c";
const TOKEN_A: &str = "dyn_sandbox_env_a";
const TOKEN_B: &str = "dyn_sandbox_env_b";

fn user(n: u8) -> Uuid {
    Uuid::from_bytes([n; 16])
}

/// Two environments, a token and a user each; wallets of user 1 in A and B, and a wallet of
/// user 2 in A.
fn seeded() -> SandboxBuilder {
    let env = |id: &str| id.parse::<dynamic_waas::EnvironmentId>().unwrap();
    let wallet = |id: &str, in_env: &str, owner: Uuid| {
        Wallet::new(
            id.parse::<dynamic_waas::WalletId>().unwrap(),
            env(in_env),
            owner,
        )
    };
    Sandbox::builder()
        .token(TOKEN_A, env(ENV_A))
        .token(TOKEN_B, env(ENV_B))
        .user(user(1), env(ENV_A))
        .user(user(2), env(ENV_A))
        .user(user(3), env(ENV_B))
        .wallet(wallet(WALLET_A, ENV_A, user(1)))
        .wallet(wallet(WALLET_B, ENV_B, user(3)))
        .wallet(wallet(WALLET_OTHER_USER, ENV_A, user(2)))
}

async fn sandbox() -> Sandbox {
    seeded().start().await
}

fn client(sandbox: &Sandbox, token: &str) -> Client {
    support::client_at(&sandbox.uri(), token, support::fast())
}

async fn create_in_a(
    client: &Client,
    wallet: &str,
    user_id: Uuid,
) -> Result<dynamic_waas::CreatedBackup, dynamic_waas::Error> {
    client
        .create_backup_locations(ENV_A, wallet, user_id, [BackupLocation::GoogleDrive.into()])
        .await
}

#[tokio::test]
async fn an_unknown_token_is_unauthorized() {
    let sandbox = sandbox().await;
    let err = create_in_a(&client(&sandbox, "dyn_unknown"), WALLET_A, user(1))
        .await
        .unwrap_err();
    assert_eq!(*err.kind(), ErrorKind::Unauthorized);
    assert_eq!(sandbox.creates_applied(), 0);
}

#[tokio::test]
async fn a_token_for_another_environment_is_forbidden() {
    let sandbox = sandbox().await;
    let err = create_in_a(&client(&sandbox, TOKEN_B), WALLET_A, user(1))
        .await
        .unwrap_err();
    assert_eq!(*err.kind(), ErrorKind::Forbidden);
    assert_eq!(err.upstream_error(), Some("Access Forbidden"));
    let err = client(&sandbox, TOKEN_B)
        .get_wallet(ENV_A, WALLET_A)
        .await
        .unwrap_err();
    assert_eq!(*err.kind(), ErrorKind::Forbidden);
}

#[tokio::test]
async fn a_location_the_server_does_not_accept_is_a_bad_request_naming_the_field() {
    let sandbox = sandbox().await;
    let client = client(&sandbox, TOKEN_A);
    // A value this SDK passes through (forward compatible), but this server does not know.
    let pigeon = || {
        let location = BackupLocation::from("carrierPigeon");
        client.create_backup_locations(ENV_A, WALLET_A, user(1), [location.into()])
    };
    let err = pigeon().await.unwrap_err();
    assert_eq!(*err.kind(), ErrorKind::BadRequest);
    assert!(err.upstream_error().unwrap().contains("location"), "{err}");
    // Once the server knows it, the same call succeeds.
    sandbox.accept_location("carrierPigeon");
    let created = pigeon().await.unwrap();
    assert_eq!(
        created.locations_with_key_shares()[0].location.as_str(),
        "carrierPigeon"
    );
}

#[tokio::test]
async fn each_not_found_reason_is_not_found() {
    let sandbox = sandbox().await;
    let client = client(&sandbox, TOKEN_A);
    let unknown_wallet = Uuid::new_v4();
    for (wallet, user_id, why) in [
        (unknown_wallet.to_string(), user(1), "unknown wallet"),
        (
            WALLET_B.to_owned(),
            user(1),
            "wallet in another environment",
        ),
        (WALLET_A.to_owned(), user(3), "user not in the environment"),
        (
            WALLET_OTHER_USER.to_owned(),
            user(1),
            "wallet of another user",
        ),
    ] {
        let err = create_in_a(&client, &wallet, user_id).await.unwrap_err();
        assert_eq!(*err.kind(), ErrorKind::NotFound, "{why}: {err}");
        assert_eq!(err.upstream_code(), Some("not_found"), "{why}");
    }
    assert_eq!(sandbox.creates_applied(), 0);
}

#[tokio::test]
async fn a_second_create_is_already_backed_up_and_the_read_shows_the_first() {
    let sandbox = sandbox().await;
    let client = client(&sandbox, TOKEN_A);
    let created = client
        .create_backup_locations(
            ENV_A,
            WALLET_A,
            user(1),
            [
                LocationRequest::from(BackupLocation::GoogleDrive),
                LocationRequest::new(BackupLocation::External)
                    .with_external_key_share_id("vault/7"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(created.locations_with_key_shares().len(), 2);
    let err = create_in_a(&client, WALLET_A, user(1)).await.unwrap_err();
    assert_eq!(*err.kind(), ErrorKind::AlreadyBackedUp);
    assert_eq!(err.attempts(), 1);
    let wallet = client.get_wallet(ENV_A, WALLET_A).await.unwrap();
    let ids: Vec<_> = wallet.key_shares.iter().map(|s| s.id.clone()).collect();
    let created_ids: Vec<_> = created
        .locations_with_key_shares()
        .iter()
        .map(|s| s.key_share_id.clone())
        .collect();
    assert_eq!(ids, created_ids);
    assert_eq!(
        wallet.key_shares[1].external_key_share_id.as_deref(),
        Some("vault/7")
    );
    assert_eq!(sandbox.creates_applied(), 1);
}

#[tokio::test]
async fn a_lost_response_after_a_delay_is_reconciled_with_one_create() {
    let sandbox = sandbox().await;
    sandbox.fail_next(
        Operation::Create,
        1,
        Fault::ApplyThenDelay(Duration::from_millis(800)),
    );
    let created = client(&sandbox, TOKEN_A)
        .create_backup_locations(
            ENV_A,
            WALLET_A,
            user(1),
            [BackupLocation::GoogleDrive.into()],
        )
        .retry_policy(RetryPolicy::default().with_attempt_timeout(Duration::from_millis(200)))
        .await
        .unwrap();
    assert!(created.is_reconciled());
    assert_eq!(sandbox.creates_applied(), 1);
    // Sent once: a blind resend would be refused by the sandbox, and hidden by that count.
    assert_eq!(sandbox.creates_received(), 1);
    let recorded = sandbox.key_shares(&WALLET_A.parse().unwrap()).unwrap();
    assert_eq!(
        created.locations_with_key_shares()[0].key_share_id,
        recorded[0].id
    );
}

#[tokio::test]
async fn a_500_before_anything_was_applied_is_retried_after_a_late_read() {
    let sandbox = sandbox().await;
    sandbox.fail_next(
        Operation::Create,
        1,
        FaultResponse::new(500).json(serde_json::json!({"error": "boom"})),
    );
    let created = create_in_a(&client(&sandbox, TOKEN_A), WALLET_A, user(1))
        .await
        .unwrap();
    assert!(!created.is_reconciled());
    // A read at once (too early to license a resend), a read settle_after later, then the
    // create again.
    assert_eq!(created.attempts(), 4, "create, read, late read, create");
    assert_eq!(sandbox.creates_applied(), 1);
    assert_eq!(sandbox.creates_received(), 2);
}

#[tokio::test]
async fn the_rate_limit_is_waited_out() {
    let sandbox = seeded()
        .rate_limit(RateLimit::new(2, Duration::from_secs(1)))
        .start()
        .await;
    let client = client(&sandbox, TOKEN_A);
    client.get_wallet(ENV_A, WALLET_A).await.unwrap();
    client.get_wallet(ENV_A, WALLET_A).await.unwrap();
    // The third request in the window gets 429 with Retry-After; the client waits and wins.
    let created = create_in_a(&client, WALLET_A, user(1)).await.unwrap();
    assert_eq!(created.attempts(), 2);
    let statuses: Vec<u16> = sandbox.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 429, 201]);
}
