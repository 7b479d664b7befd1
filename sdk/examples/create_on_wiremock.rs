//! Creates backup locations through the generated client against an in-process wiremock
//! server that answers like the API (run: `cargo run -p dynamic-waas-api --example create_on_wiremock`).

use dynamic_waas_api::{types, Client, RequestOptions};
use wiremock::matchers::{header, method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(
            r"^/environments/[0-9a-f-]{36}/waas/[0-9a-f-]{36}/keyShares/backup/locations$",
        ))
        .and(header("authorization", "Bearer dyn_example"))
        .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({
            "message": "Backup action and event created successfully",
            "walletId": "95b11417-f18f-457f-8804-68e361f9164f",
            "locationsWithKeyShares": [
                {"location": "googleDrive", "keyShareId": "0f0e0d0c-0b0a-4908-8706-050403020100",
                 "externalKeyShareId": "0f0e0d0c-0b0a-4908-8706-050403020101"}
            ]
        })))
        .mount(&server)
        .await;

    let client = Client::new(
        &server.uri(),
        RequestOptions::new().bearer_token("dyn_example")?,
    );
    let environment = "0b1c2d3e-4f50-4617-8899-aabbccddeeff".parse()?;
    let wallet = "95b11417-f18f-457f-8804-68e361f9164f".parse()?;
    // Built from JSON, so that optional fields upstream adds later need no edit here.
    let body: types::BackupKeySharesToLocationsWithUserIdRequest =
        serde_json::from_value(serde_json::json!({
            "userId": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
            "locations": [{"location": "googleDrive"}],
        }))?;
    let created = client
        .backup_key_shares_to_locations_for_pregen(&environment, &wallet, &body)
        .await?
        .into_inner();
    for share in &created.locations_with_key_shares {
        println!("{}: keyShareId {}", share.location, share.key_share_id);
    }
    Ok(())
}
