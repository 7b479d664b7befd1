//! What the tests of hostile servers share: the example sandbox with a distinctive token,
//! every view of an error, and the checks that no view holds a secret.

use dynamic_waas::{Client, CreatedBackup, Error};
use dynamic_waas_sandbox::{Sandbox, Seed};
use serde_json::{json, Value};

use super::google_drive;

/// The example sandbox, with `token` valid for its environment.
pub async fn sandbox_for(token: &str) -> (Sandbox, Seed) {
    let seed = Seed::example();
    let sandbox = seed
        .builder()
        .token(token, seed.environment_id.clone())
        .start()
        .await;
    (sandbox, seed)
}

#[track_caller]
pub fn assert_clean(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "{what} holds {secret:?}: {text:?}");
    }
}

/// Every way an error can be shown or kept: Display, `{:#}`, Debug, JSON, each cause, the
/// upstream text and code, the body excerpt and every header, name and value (its Debug
/// lists the names).
pub fn error_views(err: &Error) -> Vec<(String, String)> {
    let mut views = vec![
        ("Display".to_owned(), err.to_string()),
        ("{:#}".to_owned(), format!("{err:#}")),
        ("Debug".to_owned(), format!("{err:?}")),
        ("{:#?}".to_owned(), format!("{err:#?}")),
        ("JSON".to_owned(), serde_json::to_string(err).unwrap()),
    ];
    let mut cause = std::error::Error::source(err);
    while let Some(e) = cause {
        views.push(("cause".into(), format!("{e} / {e:?}")));
        cause = e.source();
    }
    if let Some(text) = err.upstream_error() {
        views.push(("upstream_error".into(), text.to_owned()));
    }
    if let Some(code) = err.upstream_code() {
        views.push(("upstream_code".into(), code.to_owned()));
    }
    if let Some(body) = err.body_excerpt() {
        views.push((
            "body_excerpt".into(),
            String::from_utf8_lossy(body).into_owned(),
        ));
    }
    for (name, value) in err.headers().into_iter().flatten() {
        views.push((
            "a header".into(),
            format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())),
        ));
    }
    views
}

#[track_caller]
pub fn assert_error_clean(err: &Error, secrets: &[&str]) {
    for (what, text) in error_views(err) {
        assert_clean(&what, &text, secrets);
    }
}

/// A create-shaped 201 body for the example wallet, at googleDrive, with `id`.
pub fn created_body(id: &str) -> Value {
    json!({
        "message": "Backup action and event created successfully",
        "walletId": Seed::example().wallet_id,
        "locationsWithKeyShares": [
            {"location": "googleDrive", "keyShareId": id, "externalKeyShareId": id}
        ],
    })
}

/// `client` backs up the example wallet to Google Drive.
pub async fn create(client: &Client, seed: &Seed) -> Result<CreatedBackup, Error> {
    client
        .create_backup_locations(
            &seed.environment_id,
            &seed.wallet_id,
            &seed.user_id,
            [google_drive()],
        )
        .await
}

/// The path of a create of the seed's wallet.
pub fn create_path(seed: &Seed) -> String {
    format!(
        "/environments/{}/waas/{}/keyShares/backup/locations",
        seed.environment_id, seed.wallet_id
    )
}
