//! The generated client against a real HTTP server on loopback (wiremock).

use dynamic_waas_api::enums::{ThresholdSignatureScheme, WaasBackupOptionsEnum, WaasChainEnum};
use dynamic_waas_api::error::{ErrorResponse, DEFAULT_ERROR_BODY_LIMIT};
use dynamic_waas_api::{types, Client, Error, RequestOptions};
use serde_json::Value;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, ResponseTemplate};

mod support;
use support::{
    client, create_answered, create_path, fixture, ids, read_answered, server, wallet_path, TOKEN,
    USER, WALLET,
};

/// The error response a failed call ended with.
async fn error_response(err: Error<dynamic_waas_api::ByteStream>, limit: usize) -> ErrorResponse {
    ErrorResponse::from_error(err, limit).await.unwrap()
}

#[tokio::test]
// The blank update sets no field today; it keeps fields upstream adds later unset.
#[allow(clippy::needless_update)]
async fn sends_exactly_the_request_the_spec_describes() {
    let server = server().await;
    Mock::given(method("POST"))
        .and(path(create_path()))
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
    let answer = ResponseTemplate::new(201).set_body_json(fixture("seed_response_201.json"));
    let (_server, response) = create_answered(answer).await;
    let response = response.unwrap();
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
        let (server, err) =
            create_answered(ResponseTemplate::new(status).set_body_json(&body)).await;
        let err = err.unwrap_err();
        assert!(matches!(err, Error::ErrorResponse(_)), "{status}: {err:?}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status));
        let response = error_response(err, DEFAULT_ERROR_BODY_LIMIT).await;
        assert_eq!(response.status().as_u16(), status);
        // Compared as JSON: the folded schema's field types follow the documented errors.
        let parsed = serde_json::to_value(response.parsed().expect("a JSON error body")).unwrap();
        assert_eq!(parsed["error"], body["error"]);
        assert_eq!(parsed["code"], body["code"]);
        assert_eq!(response.error_text(), body["error"].as_str());
        assert_eq!(response.code(), body["code"].as_str());
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
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
        let answer = ResponseTemplate::new(status)
            .insert_header("retry-after", "7")
            .set_body_raw(body, "application/json");
        let (_server, err) = create_answered(answer).await;
        let err = err.unwrap_err();
        assert!(
            matches!(err, Error::UnexpectedResponse(_)),
            "{status}: {err:?}"
        );
        let response = error_response(err, DEFAULT_ERROR_BODY_LIMIT).await;
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
        let answer = ResponseTemplate::new(status)
            .insert_header("x-proxy", "edge-1")
            .set_body_raw(body, content_type);
        let (_server, read) = read_answered(answer).await;
        let response = error_response(read.unwrap_err(), DEFAULT_ERROR_BODY_LIMIT).await;
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(response.headers()["x-proxy"], "edge-1");
        assert_eq!(response.body().as_ref(), body.as_bytes());
        assert!(response.parsed().is_none());
        assert_eq!(response.error_text(), None);
    }
}

#[tokio::test]
async fn a_long_error_body_is_cut_at_the_limit() {
    let body = "x".repeat(10_000);
    let (_server, read) = read_answered(ResponseTemplate::new(503).set_body_string(body)).await;
    let response = error_response(read.unwrap_err(), 100).await;
    assert_eq!(response.body().len(), 100);
    assert!(response.is_truncated());
}

#[tokio::test]
async fn unknown_location_and_unknown_fields_are_parsed_and_kept() {
    let answer =
        ResponseTemplate::new(201).set_body_json(fixture("response_201_unknown_location.json"));
    let (_server, created) = create_answered(answer).await;
    let created = created.unwrap().into_inner();
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
    let mut big = fixture("seed_response_201.json");
    big["message"] = Value::String("m".repeat(2 << 20));
    let answer = ResponseTemplate::new(201).set_body_json(big);
    let server = support::answering("POST", create_path(), answer).await;
    let options = RequestOptions::new().max_response_bytes(64 * 1024);
    let err = support::create_with(&support::client_with(&server, options))
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
            .and(path(wallet_path()))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(&expected))
            .expect(1)
            .mount(&server)
            .await;
        let read = support::read_with(&client(&server))
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
    let err = support::create_with(&client).await.unwrap_err();
    assert!(matches!(err, Error::ResponseBodyError(_)), "{err:?}");
    drop(client);
    let _ = server.await;
}
