//! The generated client against a real HTTP server on loopback (wiremock).

use dynamic_waas_api::enums::{ThresholdSignatureScheme, WaasBackupOptionsEnum, WaasChainEnum};
use dynamic_waas_api::error::{ErrorResponse, DEFAULT_ERROR_BODY_LIMIT};
use dynamic_waas_api::ids::{EnvironmentId, WalletId};
use dynamic_waas_api::{types, Client, Error, RequestOptions};
use serde_json::Value;
use wiremock::matchers::{any, body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ENV: &str = "0b1c2d3e-4f50-4617-8899-aabbccddeeff";
const WALLET: &str = "95b11417-f18f-457f-8804-68e361f9164f";
const USER: &str = "3c90c3cc-0d44-4b50-8888-8dd25736052a";
const TOKEN: &str = "dyn_test_token_0123456789";
const CREATE_PATH: &str =
    "/environments/0b1c2d3e-4f50-4617-8899-aabbccddeeff/waas/95b11417-f18f-457f-8804-68e361f9164f/keyShares/backup/locations";
const WALLET_PATH: &str =
    "/environments/0b1c2d3e-4f50-4617-8899-aabbccddeeff/waas/95b11417-f18f-457f-8804-68e361f9164f";

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect(&path)
}

/// A server whose catch-all mock fails the test on any request no other mock expects.
async fn server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(599).set_body_string("unexpected request"))
        .with_priority(u8::MAX)
        .expect(0)
        .named("catch-all: no unexpected request")
        .mount(&server)
        .await;
    server
}

fn client(server: &MockServer) -> Client {
    Client::new(
        &server.uri(),
        RequestOptions::new().bearer_token(TOKEN).unwrap(),
    )
}

fn ids() -> (EnvironmentId, WalletId) {
    (ENV.parse().unwrap(), WALLET.parse().unwrap())
}

fn seed_body() -> types::BackupKeySharesToLocationsWithUserIdRequest {
    serde_json::from_value(fixture("seed_request.json")).unwrap()
}

#[tokio::test]
// The blank update sets no field today; it keeps fields upstream adds later unset.
#[allow(clippy::needless_update)]
async fn sends_exactly_the_request_the_spec_describes() {
    let server = server().await;
    Mock::given(method("POST"))
        .and(path(CREATE_PATH))
        .and(header("content-type", "application/json"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(body_json(fixture("seed_request.json")))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("seed_response_201.json")))
        .expect(1)
        .mount(&server)
        .await;
    let (env, wallet) = ids();
    // Built field by field, not from the fixture, so the serializer itself is under test;
    // optional fields upstream adds later come unset from the blank values.
    let body = types::BackupKeySharesToLocationsWithUserIdRequest {
        user_id: "3c90c3cc-0d44-4b50-8888-8dd25736052a".parse().unwrap(),
        locations: vec![
            types::BackupKeySharesToLocationsWithUserIdRequestLocationsItem {
                location: WaasBackupOptionsEnum::GoogleDrive,
                keygen_id: Some("An example name".parse().unwrap()),
                threshold_signature_scheme: Some(ThresholdSignatureScheme::TwoOfTwo),
                external_key_share_id: Some("An example name".parse().unwrap()),
                ..serde_json::from_value(serde_json::json!({"location": "googleDrive"})).unwrap()
            },
        ],
        ..serde_json::from_value(serde_json::json!({"userId": USER, "locations": []})).unwrap()
    };
    client(&server)
        .backup_key_shares_to_locations_for_pregen(&env, &wallet, &body)
        .await
        .unwrap();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    // progenitor's `api-version` header is not part of Dynamic's API and is not sent.
    assert!(requests[0].headers.get("api-version").is_none());
}

#[tokio::test]
async fn parses_the_seed_201_response_into_typed_values() {
    let server = server().await;
    Mock::given(method("POST"))
        .and(path(CREATE_PATH))
        .respond_with(ResponseTemplate::new(201).set_body_json(fixture("seed_response_201.json")))
        .mount(&server)
        .await;
    let (env, wallet) = ids();
    let response = client(&server)
        .backup_key_shares_to_locations_for_pregen(&env, &wallet, &seed_body())
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created = response.into_inner();
    assert_eq!(created.message, "<string>");
    assert_eq!(created.wallet_id.as_str(), WALLET);
    assert_eq!(created.locations_with_key_shares.len(), 1);
    let share = &created.locations_with_key_shares[0];
    assert_eq!(share.location, WaasBackupOptionsEnum::GoogleDrive);
    assert_eq!(share.key_share_id.as_str(), WALLET);
    assert!(share.key_share_id.is_valid());
    assert_eq!(
        share.external_key_share_id.to_uuid(),
        Some(WALLET.parse().unwrap())
    );
}

#[tokio::test]
async fn each_documented_error_status_is_a_typed_error_with_status_and_body() {
    let cases = [
        (
            400,
            serde_json::json!({"error": "locations must be an array"}),
        ),
        (401, serde_json::json!({"error": "No jwt provided!"})),
        (403, serde_json::json!({"error": "Access Forbidden"})),
        (
            404,
            serde_json::json!({"error": "Not Found", "code": "not_found"}),
        ),
        (500, serde_json::json!({"error": "Internal Server Error"})),
    ];
    for (status, body) in cases {
        let server = server().await;
        Mock::given(method("POST"))
            .and(path(CREATE_PATH))
            .respond_with(ResponseTemplate::new(status).set_body_json(&body))
            .expect(1)
            .mount(&server)
            .await;
        let (env, wallet) = ids();
        let err = client(&server)
            .backup_key_shares_to_locations_for_pregen(&env, &wallet, &seed_body())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ErrorResponse(_)), "{status}: {err:?}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status));
        let response = ErrorResponse::from_error(err, DEFAULT_ERROR_BODY_LIMIT)
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status);
        // Compared as JSON: the folded schema's field types follow the documented errors.
        let parsed = serde_json::to_value(response.parsed().expect("a JSON error body")).unwrap();
        assert_eq!(parsed["error"], body["error"]);
        assert_eq!(parsed["code"], body["code"]);
        assert_eq!(response.error_text(), body["error"].as_str());
        assert_eq!(response.code(), body["code"].as_str());
    }
}

#[tokio::test]
async fn undocumented_statuses_keep_status_headers_and_raw_body() {
    let cases: [(u16, &str, Option<&str>); 3] = [
        (
            422,
            r#"{"error":"Key shares already backed up","code":"key_share_already_backed_up"}"#,
            Some("key_share_already_backed_up"),
        ),
        (
            429,
            r#"{"message": "Rate limit exceeded", "code": 429}"#,
            Some("429"),
        ),
        (502, "<html><body>502 Bad Gateway</body></html>", None),
    ];
    for (status, body, code) in cases {
        let server = server().await;
        Mock::given(method("POST"))
            .and(path(CREATE_PATH))
            .respond_with(
                ResponseTemplate::new(status)
                    .insert_header("retry-after", "7")
                    .set_body_raw(body, "application/json"),
            )
            .mount(&server)
            .await;
        let (env, wallet) = ids();
        let err = client(&server)
            .backup_key_shares_to_locations_for_pregen(&env, &wallet, &seed_body())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::UnexpectedResponse(_)),
            "{status}: {err:?}"
        );
        let response = ErrorResponse::from_error(err, DEFAULT_ERROR_BODY_LIMIT)
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(response.headers()["retry-after"], "7");
        assert_eq!(response.body().as_ref(), body.as_bytes());
        assert_eq!(response.code(), code);
    }
}

#[tokio::test]
async fn non_json_error_bodies_keep_status_headers_and_raw_body() {
    let html = "<!DOCTYPE html><html><body><h1>500 Internal Server Error</h1></body></html>";
    let cases: [(u16, &str, &str); 3] = [
        (500, html, "text/html"),
        (404, "", "text/plain"),
        (401, "not json {", "application/json"),
    ];
    for (status, body, content_type) in cases {
        let server = server().await;
        Mock::given(method("GET"))
            .and(path(WALLET_PATH))
            .respond_with(
                ResponseTemplate::new(status)
                    .insert_header("x-proxy", "edge-1")
                    .set_body_raw(body, content_type),
            )
            .mount(&server)
            .await;
        let (env, wallet) = ids();
        let err = client(&server)
            .get_waas_wallet_by_wallet_id(&env, &wallet)
            .await
            .unwrap_err();
        let response = ErrorResponse::from_error(err, DEFAULT_ERROR_BODY_LIMIT)
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(response.headers()["x-proxy"], "edge-1");
        assert_eq!(response.body().as_ref(), body.as_bytes());
        assert!(response.parsed().is_none());
        assert_eq!(response.error_text(), None);
    }
}

#[tokio::test]
async fn a_long_error_body_is_cut_at_the_limit() {
    let server = server().await;
    let body = "x".repeat(10_000);
    Mock::given(method("GET"))
        .and(path(WALLET_PATH))
        .respond_with(ResponseTemplate::new(503).set_body_string(body))
        .mount(&server)
        .await;
    let (env, wallet) = ids();
    let err = client(&server)
        .get_waas_wallet_by_wallet_id(&env, &wallet)
        .await
        .unwrap_err();
    let response = ErrorResponse::from_error(err, 100).await.unwrap();
    assert_eq!(response.body().len(), 100);
    assert!(response.is_truncated());
}

#[tokio::test]
async fn unknown_location_and_unknown_fields_are_parsed_and_kept() {
    let server = server().await;
    Mock::given(method("POST"))
        .and(path(CREATE_PATH))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(fixture("response_201_unknown_location.json")),
        )
        .mount(&server)
        .await;
    let (env, wallet) = ids();
    let created = client(&server)
        .backup_key_shares_to_locations_for_pregen(&env, &wallet, &seed_body())
        .await
        .unwrap()
        .into_inner();
    let share = &created.locations_with_key_shares[0];
    assert!(share.location.is_unknown());
    assert_eq!(share.location.as_str(), "paperWallet");
    assert_eq!(
        share.key_share_id.as_str(),
        "0f0e0d0c-0b0a-4908-8706-050403020100"
    );
    // Sent back unchanged.
    assert_eq!(
        serde_json::to_value(&share.location).unwrap(),
        serde_json::json!("paperWallet")
    );
}

#[tokio::test]
async fn a_success_body_over_the_limit_is_refused_without_reading_it_whole() {
    let server = server().await;
    let mut big = fixture("seed_response_201.json");
    big["message"] = Value::String("m".repeat(2 << 20));
    Mock::given(method("POST"))
        .and(path(CREATE_PATH))
        .respond_with(ResponseTemplate::new(201).set_body_json(big))
        .mount(&server)
        .await;
    let client = Client::new(
        &server.uri(),
        RequestOptions::new()
            .bearer_token(TOKEN)
            .unwrap()
            .max_response_bytes(64 * 1024),
    );
    let (env, wallet) = ids();
    let err = client
        .backup_key_shares_to_locations_for_pregen(&env, &wallet, &seed_body())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ResponseBodyError(_)), "{err:?}");
}

#[tokio::test]
async fn wallet_read_round_trips_with_and_without_key_shares() {
    for name in [
        "wallet_with_key_shares.json",
        "wallet_without_key_shares.json",
    ] {
        let server = server().await;
        let expected = fixture(name);
        Mock::given(method("GET"))
            .and(path(WALLET_PATH))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(&expected))
            .expect(1)
            .mount(&server)
            .await;
        let (env, wallet) = ids();
        let read = client(&server)
            .get_waas_wallet_by_wallet_id(&env, &wallet)
            .await
            .unwrap()
            .into_inner();
        assert_eq!(read.wallet.chain_name, WaasChainEnum::Evm);
        assert_eq!(read.wallet.wallet_id.as_str(), WALLET);
        let shares = &read.wallet.key_shares;
        if name.contains("without") {
            assert!(shares.is_empty(), "{name}");
            assert_eq!(
                read.wallet.threshold_signature_scheme,
                ThresholdSignatureScheme::TwoOfThree
            );
        } else {
            assert_eq!(shares.len(), 2);
            assert_eq!(shares[0].backup_location, "googleDrive");
            assert!(shares[1].password_encrypted);
            assert_eq!(shares[1].external_key_share_id, None);
        }
        // Serialized back, the typed value is the document that was received.
        assert_eq!(serde_json::to_value(&read).unwrap(), expected, "{name}");
    }
}

/// A body of undeclared length (chunked) is bounded too: reading stops at the limit.
#[tokio::test]
async fn a_chunked_body_over_the_limit_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = vec![0u8; 8192];
        let _ = socket.read(&mut request).await;
        let head = "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        socket.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![b' '; 16 * 1024];
        // Up to 1 MiB of white space; the client must give up long before the end.
        let mut sent = 0usize;
        for _ in 0..64 {
            let frame = format!("{:x}\r\n", chunk.len());
            if socket.write_all(frame.as_bytes()).await.is_err()
                || socket.write_all(&chunk).await.is_err()
                || socket.write_all(b"\r\n").await.is_err()
            {
                break;
            }
            sent += chunk.len();
        }
        let _ = socket.write_all(b"0\r\n\r\n").await;
        sent
    });
    let client = Client::new(
        &format!("http://{addr}"),
        RequestOptions::new()
            .bearer_token(TOKEN)
            .unwrap()
            .max_response_bytes(32 * 1024),
    );
    let (env, wallet) = ids();
    let err = client
        .backup_key_shares_to_locations_for_pregen(&env, &wallet, &seed_body())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ResponseBodyError(_)), "{err:?}");
    drop(client);
    let _ = server.await;
}
