//! The sandbox (`dynamic_waas_sandbox`) over real HTTP: each rule of the real service, each
//! fault, the rate limit and the request log. Run with `cargo test --test sandbox`.

use std::time::{Duration, Instant};

use dynamic_waas_api::error::{ErrorResponse, DEFAULT_ERROR_BODY_LIMIT};
use dynamic_waas_api::ids::{EnvironmentId, UserId, WalletId};
use dynamic_waas_api::types::{
    BackupKeySharesToLocationsResponse, BackupKeySharesToLocationsWithUserIdRequest as CreateBody,
    WaasWallet,
};
use dynamic_waas_api::{ByteStream, Client, Error, RequestOptions, ResponseValue};
use dynamic_waas_sandbox::{
    Fault, FaultResponse, Operation, Rate, RateLimit, RecordedBody, Sandbox, Seed, Target, Wallet,
    MAX_BODY_BYTES,
};
use serde_json::{json, Value};
use uuid::Uuid;

mod support;

// ---- helpers ----

fn client(sandbox: &Sandbox, token: &str) -> Client {
    Client::new(
        &sandbox.uri(),
        RequestOptions::new().bearer_token(token).unwrap(),
    )
}

// From JSON, so that optional fields upstream adds later need no edit here.
fn body(user: impl Into<UserId>, locations: &[&str]) -> CreateBody {
    serde_json::from_value(
        serde_json::json!({ "userId": user.into(), "locations": locations
        .iter()
        .map(|name| serde_json::json!({ "location": name }))
        .collect::<Vec<_>>() }),
    )
    .unwrap()
}

async fn create(
    client: &Client,
    environment: &EnvironmentId,
    wallet: &WalletId,
    body: &CreateBody,
) -> Result<ResponseValue<BackupKeySharesToLocationsResponse>, Error<ByteStream>> {
    client
        .backup_key_shares_to_locations_for_pregen(environment, wallet, body)
        .await
}

async fn create_seeded(
    sandbox: &Sandbox,
    seed: &Seed,
) -> Result<ResponseValue<BackupKeySharesToLocationsResponse>, Error<ByteStream>> {
    let body = body(&seed.user_id, &["googleDrive"]);
    create(
        &client(sandbox, &seed.token),
        &seed.environment_id,
        &seed.wallet_id,
        &body,
    )
    .await
}

async fn read(client: &Client, seed: &Seed) -> Result<WaasWallet, Error<ByteStream>> {
    client
        .get_waas_wallet_by_wallet_id(&seed.environment_id, &seed.wallet_id)
        .await
        .map(|response| response.into_inner().wallet)
}

/// The error response a call ended with; fails the test on a success or a transport error.
async fn refusal<T: std::fmt::Debug>(result: Result<T, Error<ByteStream>>) -> ErrorResponse {
    let err = result.expect_err("the sandbox should refuse this request");
    ErrorResponse::from_error(err, DEFAULT_ERROR_BODY_LIMIT)
        .await
        .expect("an HTTP response")
}

/// What the sandbox refused `client`'s create (with `request`) and read of the seed's wallet
/// with.
async fn refusals(
    client: &Client,
    seed: &Seed,
    request: &CreateBody,
) -> (ErrorResponse, ErrorResponse) {
    let created = create(client, &seed.environment_id, &seed.wallet_id, request).await;
    (
        refusal(created).await,
        refusal(read(client, seed).await).await,
    )
}

fn json_of(response: &ErrorResponse) -> Value {
    serde_json::from_slice(response.body()).expect("a JSON body")
}

fn wallet_url(sandbox: &Sandbox, environment: &str, wallet: &str) -> String {
    format!("{}/environments/{environment}/waas/{wallet}", sandbox.uri())
}

fn create_url(sandbox: &Sandbox, environment: &str, wallet: &str) -> String {
    wallet_url(sandbox, environment, wallet) + "/keyShares/backup/locations"
}

/// A raw GET of the seed's wallet, for requests the generated client cannot send.
fn raw_read(sandbox: &Sandbox, seed: &Seed) -> reqwest::RequestBuilder {
    let url = wallet_url(
        sandbox,
        seed.environment_id.as_str(),
        seed.wallet_id.as_str(),
    );
    reqwest::Client::new().get(url)
}

/// The status `request` is answered with.
async fn status_of(request: reqwest::RequestBuilder) -> u16 {
    request.send().await.unwrap().status().as_u16()
}

/// A raw POST to a create, for requests the generated client cannot send.
fn raw_create(sandbox: &Sandbox, environment: &str, wallet: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new().post(create_url(sandbox, environment, wallet))
}

/// A raw POST, for requests the generated client cannot send.
async fn post_raw(
    sandbox: &Sandbox,
    seed: &Seed,
    wallet: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let mut request = raw_create(sandbox, seed.environment_id.as_str(), wallet)
        .bearer_auth(&seed.token)
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn post_json(sandbox: &Sandbox, seed: &Seed, body: &Value) -> (u16, Value) {
    post_raw(
        sandbox,
        seed,
        seed.wallet_id.as_str(),
        Some("application/json"),
        body.to_string(),
    )
    .await
}

fn is_lower_uuid(id: &str) -> bool {
    dynamic_waas_api::ids::validate("id", id).is_ok()
}

// ---- 201 and the recorded state ----

#[tokio::test]
async fn create_answers_201_and_records_the_key_shares_the_read_returns() {
    let (sandbox, seed) = Sandbox::seeded().await;
    let client = client(&sandbox, &seed.token);
    let mut request = body(&seed.user_id, &["googleDrive", "iCloud"]);
    request.locations[1].external_key_share_id = Some("backup 7: vault/one".parse().unwrap());
    request.locations[1].keygen_id = Some("Schlüssel 1".parse().unwrap());

    let created = create(&client, &seed.environment_id, &seed.wallet_id, &request)
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let created = created.into_inner();
    assert_eq!(
        created.message,
        "Backup action and event created successfully"
    );
    assert_eq!(created.wallet_id.as_str(), seed.wallet_id.as_str());
    let shares = &created.locations_with_key_shares;
    assert_eq!(shares.len(), 2);
    assert_eq!(shares[0].location.as_str(), "googleDrive");
    assert_eq!(shares[1].location.as_str(), "iCloud");
    assert!(shares
        .iter()
        .all(|s| is_lower_uuid(s.key_share_id.as_str())));
    assert_ne!(shares[0].key_share_id, shares[1].key_share_id);
    // Without an externalKeyShareId the server makes one up; with one, it echoes it.
    assert!(is_lower_uuid(shares[0].external_key_share_id.as_str()));
    assert_eq!(
        shares[1].external_key_share_id.as_str(),
        "backup 7: vault/one"
    );

    let recorded = sandbox.key_shares(&seed.wallet_id).unwrap();
    assert_eq!(recorded.len(), 2);
    for (share, info) in shares.iter().zip(&recorded) {
        assert_eq!(info.id, share.key_share_id);
        assert_eq!(info.backup_location, share.location.as_str());
        assert!(!info.password_encrypted);
        assert_eq!(
            info.external_key_share_id.as_deref(),
            Some(share.external_key_share_id.as_str())
        );
    }
    let wallet = read(&client, &seed).await.unwrap();
    assert_eq!(wallet.key_shares, recorded);
    assert_eq!(sandbox.creates_applied(), 1);
    assert_eq!(sandbox.creates_applied_to(&seed.wallet_id), 1);
}

#[tokio::test]
async fn read_of_a_wallet_without_key_shares_leaves_them_out() {
    let (sandbox, seed) = support::seeded_with(
        support::example_wallet()
            .chain("SVM".into())
            .threshold_signature_scheme("TWO_OF_THREE".into())
            .account_address("So1ana")
            .derivation_path("m/44'/501'/0'/0'"),
    )
    .await;
    let response = raw_read(&sandbox, &seed)
        .bearer_auth(&seed.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"wallet": {
            "accountAddress": "So1ana",
            "chainName": "SVM",
            "walletId": seed.wallet_id.as_str(),
            "thresholdSignatureScheme": "TWO_OF_THREE",
            "derivationPath": "m/44'/501'/0'/0'",
        }})
    );
}

// ---- 422 ----

#[tokio::test]
async fn a_second_create_is_refused_with_422_and_changes_nothing() {
    let (sandbox, seed) = Sandbox::seeded().await;
    create_seeded(&sandbox, &seed).await.unwrap();
    let before = sandbox.key_shares(&seed.wallet_id).unwrap();

    let response = refusal(create_seeded(&sandbox, &seed).await).await;
    assert_eq!(response.status().as_u16(), 422);
    assert_eq!(response.code(), Some("key_share_already_backed_up"));
    assert!(response.error_text().is_some_and(|text| !text.is_empty()));
    assert_eq!(sandbox.key_shares(&seed.wallet_id).unwrap(), before);
    assert_eq!(sandbox.creates_applied(), 1);
}

#[tokio::test]
async fn seeded_key_shares_refuse_a_create() {
    let (sandbox, seed) =
        support::seeded_with(support::example_wallet().backed_up_to("dynamic")).await;
    assert_eq!(sandbox.key_shares(&seed.wallet_id).unwrap().len(), 1);
    let response = refusal(create_seeded(&sandbox, &seed).await).await;
    assert_eq!(response.status().as_u16(), 422);
    assert_eq!(sandbox.creates_applied(), 0);
}

// ---- 401 and 403 ----

#[tokio::test]
async fn no_token_or_an_unknown_one_is_401() {
    let (sandbox, seed) = Sandbox::seeded().await;
    let anonymous = Client::new(&sandbox.uri(), RequestOptions::new());
    let request = body(&seed.user_id, &["googleDrive"]);

    let (created, read) = refusals(&anonymous, &seed, &request).await;
    assert_eq!(created.status().as_u16(), 401);
    assert_eq!(json_of(&created), json!({"error": "No jwt provided!"}));
    assert_eq!(read.status().as_u16(), 401);

    let stranger = client(&sandbox, "dyn_not_a_known_token");
    let (created, read) = refusals(&stranger, &seed, &request).await;
    assert_eq!(created.status().as_u16(), 401);
    assert_eq!(json_of(&created), json!({"error": "Invalid token"}));
    assert_eq!(json_of(&read), json!({"error": "Invalid token"}));

    // Authentication comes before validation: a bad body with no token is still a 401.
    let (env, wallet) = (seed.environment_id.as_str(), seed.wallet_id.as_str());
    let no_token = raw_create(&sandbox, env, wallet).body("{not json");
    assert_eq!(status_of(no_token).await, 401);
    assert_eq!(sandbox.creates_applied(), 0);
}

#[tokio::test]
async fn a_token_for_another_environment_is_403() {
    let seed = Seed::example();
    let other_environment = EnvironmentId::from(Uuid::new_v4());
    let sandbox = seed
        .builder()
        .token("dyn_other_environment", other_environment.clone())
        .start()
        .await;
    let other = client(&sandbox, "dyn_other_environment");
    let request = body(&seed.user_id, &["googleDrive"]);

    let (created, read) = refusals(&other, &seed, &request).await;
    assert_eq!(created.status().as_u16(), 403);
    assert_eq!(json_of(&created), json!({"error": "Access Forbidden"}));
    assert_eq!(read.status().as_u16(), 403);

    // The seed's token may use its own environment only, too.
    let own = client(&sandbox, &seed.token);
    let response = refusal(create(&own, &other_environment, &seed.wallet_id, &request).await).await;
    assert_eq!(response.status().as_u16(), 403);
    // A malformed environment id is no environment the token may use.
    let upper = seed.environment_id.as_str().to_uppercase();
    let malformed = raw_create(&sandbox, &upper, seed.wallet_id.as_str())
        .bearer_auth(&seed.token)
        .json(&json!({}));
    assert_eq!(status_of(malformed).await, 403);
    assert_eq!(sandbox.creates_applied(), 0);
}

// ---- 400 ----

#[tokio::test]
async fn an_invalid_request_is_400_naming_the_field() {
    let (sandbox, seed) = Sandbox::seeded().await;
    let user = seed.user_id.to_string();
    let cases = [
        (json!({"locations": [{"location": "dynamic"}]}), "userId is required"),
        (
            json!({"userId": user.to_uppercase(), "locations": []}),
            "userId must be a lower-case hyphenated UUID",
        ),
        (json!({"userId": "3c90c3cc", "locations": []}), "userId must be"),
        (json!({"userId": user}), "locations is required"),
        (
            json!({"userId": user, "locations": [{"location": "floppyDisk"}]}),
            "locations[0].location must be one of googleDrive, iCloud, dynamic, external, delegated",
        ),
        (
            json!({"userId": user, "locations": [{"location": "dynamic"}, {"location": "dynamic", "keygenId": "tab\there"}]}),
            "locations[1].keygenId is invalid",
        ),
        (
            json!({"userId": user, "locations": [{"location": "dynamic", "keygenId": "k".repeat(256)}]}),
            "locations[0].keygenId is invalid: it is 256 characters long",
        ),
        (
            json!({"userId": user, "locations": [{"location": "dynamic", "thresholdSignatureScheme": "ONE_OF_ONE"}]}),
            "locations[0].thresholdSignatureScheme must be one of",
        ),
        (
            json!({"userId": user, "locations": [{"location": "dynamic", "externalKeyShareId": "ends with space "}]}),
            "locations[0].externalKeyShareId is invalid",
        ),
    ];
    for (request, expected) in cases {
        let (status, body) = post_json(&sandbox, &seed, &request).await;
        assert_eq!(status, 400, "{request}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(expected), "{request}: {error}");
    }

    // What the generated client cannot send.
    let upper_wallet = seed.wallet_id.as_str().to_uppercase();
    let valid = json!({"userId": user, "locations": [{"location": "dynamic"}]}).to_string();
    let (wallet, as_json) = (seed.wallet_id.as_str(), Some("application/json"));
    for (wallet, content_type, request, expected) in [
        (
            wallet,
            as_json,
            "{\"userId\": ",
            "request body is not valid JSON",
        ),
        (wallet, None, "{}", "Content-Type must be application/json"),
        (
            &upper_wallet,
            as_json,
            &valid,
            "walletId must be a lower-case",
        ),
    ] {
        let (status, body) =
            post_raw(&sandbox, &seed, wallet, content_type, request.to_owned()).await;
        assert_eq!(status, 400, "{request}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.starts_with(expected), "{request}: {error}");
        assert_eq!(body, json!({ "error": error }), "{request}");
    }

    assert_eq!(sandbox.creates_applied(), 0);
    assert_eq!(sandbox.key_shares(&seed.wallet_id).unwrap(), vec![]);
}

// ---- 404 ----

/// The 404 body never says what was not found; the request log does.
async fn assert_not_found(sandbox: &Sandbox, response: ErrorResponse, reason: &str) {
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(
        json_of(&response),
        json!({"error": "Not Found", "code": "not_found"})
    );
    let last = sandbox.requests().pop().unwrap();
    assert!(last.outcome.contains(reason), "{}", last.outcome);
}

#[tokio::test]
async fn not_found_for_each_reason() {
    let seed = Seed::example();
    let other_environment = EnvironmentId::from(Uuid::new_v4());
    let outsider = Uuid::new_v4();
    let neighbour = Uuid::new_v4();
    let foreign_wallet = WalletId::from(Uuid::new_v4());
    let neighbours_wallet = WalletId::from(Uuid::new_v4());
    let sandbox = seed
        .builder()
        .user(outsider, other_environment.clone())
        .wallet(Wallet::new(
            foreign_wallet.clone(),
            other_environment.clone(),
            outsider,
        ))
        .wallet(Wallet::new(
            neighbours_wallet.clone(),
            seed.environment_id.clone(),
            neighbour,
        ))
        .start()
        .await;
    let client = client(&sandbox, &seed.token);
    let env = &seed.environment_id;

    let cases = [
        (
            WalletId::from(Uuid::new_v4()),
            seed.user_id.clone(),
            "is not in environment".to_owned(),
        ),
        (
            foreign_wallet.clone(),
            seed.user_id.clone(),
            format!("wallet {foreign_wallet} is not in environment"),
        ),
        (
            seed.wallet_id.clone(),
            UserId::from(outsider),
            format!("user {outsider} is not in environment"),
        ),
        (
            seed.wallet_id.clone(),
            UserId::random(),
            "is not in environment".to_owned(),
        ),
        (
            neighbours_wallet.clone(),
            seed.user_id.clone(),
            format!("is owned by user {neighbour}, not {}", seed.user_id),
        ),
    ];
    for (wallet, user, reason) in cases {
        let result = create(&client, env, &wallet, &body(user, &["dynamic"])).await;
        assert_not_found(&sandbox, refusal(result).await, &reason).await;
    }

    let result = client
        .get_waas_wallet_by_wallet_id(env, &foreign_wallet)
        .await;
    assert_not_found(&sandbox, refusal(result).await, "is not in environment").await;

    assert_eq!(sandbox.creates_applied(), 0);
    // The neighbour may back up their own wallet: the refusal above was about ownership.
    create(
        &client,
        env,
        &neighbours_wallet,
        &body(neighbour, &["dynamic"]),
    )
    .await
    .unwrap();
}

// ---- locations upstream may add ----

#[tokio::test]
async fn an_unknown_location_is_400_until_the_sandbox_accepts_it() {
    let (sandbox, seed) = Sandbox::seeded().await;
    let request = body(&seed.user_id, &["paperWallet"]);
    let client = client(&sandbox, &seed.token);
    let response =
        refusal(create(&client, &seed.environment_id, &seed.wallet_id, &request).await).await;
    assert_eq!(response.status().as_u16(), 400);
    assert!(response
        .error_text()
        .unwrap()
        .contains("locations[0].location"));

    sandbox.accept_location("paperWallet");
    let created = create(&client, &seed.environment_id, &seed.wallet_id, &request)
        .await
        .unwrap()
        .into_inner();
    let location = &created.locations_with_key_shares[0].location;
    assert!(location.is_unknown());
    assert_eq!(location.as_str(), "paperWallet");
}

#[tokio::test]
async fn a_sandbox_can_refuse_a_location_the_client_knows() {
    let seed = Seed::example();
    let sandbox = seed.builder().accepted_locations(["dynamic"]).start().await;
    let response = refusal(create_seeded(&sandbox, &seed).await).await;
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        response.error_text().unwrap(),
        "locations[0].location must be one of dynamic; got \"googleDrive\""
    );
}

// ---- unknown routes ----

#[tokio::test]
async fn unknown_routes_are_loud_404s() {
    let (sandbox, seed) = Sandbox::seeded().await;
    let http = reqwest::Client::new();
    let (env, wallet) = (seed.environment_id.as_str(), seed.wallet_id.as_str());
    let wallet_url = wallet_url(&sandbox, env, wallet);
    for (method, url) in [
        (reqwest::Method::GET, format!("{}/", sandbox.uri())),
        (reqwest::Method::POST, wallet_url.clone()),
        (reqwest::Method::DELETE, wallet_url.clone()),
        (
            reqwest::Method::GET,
            format!("{wallet_url}/keyShares/backup/locations"),
        ),
        (
            reqwest::Method::GET,
            format!(
                "{}/api/v0/environments/{}/waas/{}",
                sandbox.uri(),
                seed.environment_id,
                seed.wallet_id
            ),
        ),
    ] {
        let response = http
            .request(method.clone(), &url)
            .bearer_auth(&seed.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 404, "{method} {url}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "unknown_route");
        let path = url.trim_start_matches(&sandbox.uri());
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains(&format!("no route {method} {path};")),
            "{error}"
        );
    }
    assert!(sandbox.requests().iter().all(|r| r.operation.is_none()));
}

// ---- faults ----

#[tokio::test]
async fn a_rejecting_fault_answers_without_applying_the_create() {
    let (sandbox, seed) = Sandbox::seeded().await;
    sandbox.fail_next(Operation::Create, 2, FaultResponse::new(503).retry_after(7));

    for _ in 0..2 {
        let response = refusal(create_seeded(&sandbox, &seed).await).await;
        assert_eq!(response.status().as_u16(), 503);
        assert_eq!(response.headers()["retry-after"], "7");
        assert_eq!(json_of(&response), json!({"error": "Service Unavailable"}));
    }
    assert_eq!(sandbox.creates_applied(), 0);
    assert_eq!(sandbox.key_shares(&seed.wallet_id).unwrap(), vec![]);
    // The queue is used up: the third request reaches the service.
    create_seeded(&sandbox, &seed).await.unwrap();
    assert_eq!(sandbox.creates_applied(), 1);
}

#[tokio::test]
async fn fault_bodies_can_be_html_text_or_empty() {
    let (sandbox, seed) = Sandbox::seeded().await;
    let page = "<html><body><h1>502 Bad Gateway</h1></body></html>";
    sandbox.fail_next(Target::Any, 1, FaultResponse::new(502).html(page));
    sandbox.fail_next(Target::Any, 1, FaultResponse::new(500).empty());
    sandbox.fail_next(
        Target::Any,
        1,
        FaultResponse::new(429)
            .text("slow down")
            .header("retry-after", "Wed, 21 Oct 2065 07:28:00 GMT"),
    );
    let client = client(&sandbox, &seed.token);

    let response = refusal(read(&client, &seed).await).await;
    assert_eq!(response.status().as_u16(), 502);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    assert_eq!(response.body().as_ref(), page.as_bytes());

    let response = refusal(read(&client, &seed).await).await;
    assert_eq!(response.status().as_u16(), 500);
    assert!(response.body().is_empty());
    assert!(response.headers().get("content-type").is_none());

    let response = refusal(read(&client, &seed).await).await;
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.body().as_ref(), b"slow down");
    assert_eq!(
        response.headers()["retry-after"],
        "Wed, 21 Oct 2065 07:28:00 GMT"
    );

    read(&client, &seed).await.unwrap();
}

#[tokio::test]
async fn a_fault_hits_only_the_operation_it_targets() {
    let (sandbox, seed) = Sandbox::seeded().await;
    sandbox.fail_next(Operation::Read, 1, FaultResponse::new(500));
    create_seeded(&sandbox, &seed).await.unwrap();
    let client = client(&sandbox, &seed.token);
    let response = refusal(read(&client, &seed).await).await;
    assert_eq!(response.status().as_u16(), 500);
    assert_eq!(read(&client, &seed).await.unwrap().key_shares.len(), 1);
}

#[tokio::test]
async fn a_delayed_fault_answers_late() {
    let (sandbox, seed) = Sandbox::seeded().await;
    let delay = Duration::from_millis(150);
    sandbox.fail_next(Operation::Read, 1, FaultResponse::new(504).delay(delay));
    let client = client(&sandbox, &seed.token);

    let started = Instant::now();
    let response = refusal(read(&client, &seed).await).await;
    assert_eq!(response.status().as_u16(), 504);
    assert!(started.elapsed() >= delay, "{:?}", started.elapsed());

    // Only the queued request was slowed.
    read(&client, &seed).await.unwrap();
    assert_eq!(
        sandbox.requests()[1].outcome,
        format!("200: wallet {} with 0 key share(s)", seed.wallet_id)
    );
}

#[tokio::test]
async fn apply_then_500_loses_the_response_but_not_the_create() {
    let (sandbox, seed) = Sandbox::seeded().await;
    let lost = Fault::ApplyThenRespond(FaultResponse::new(500));
    sandbox.fail_next(Operation::Create, 1, lost);
    let response = refusal(create_seeded(&sandbox, &seed).await).await;
    assert_eq!(response.status().as_u16(), 500);
    assert_eq!(
        json_of(&response),
        json!({"error": "Internal Server Error"})
    );

    assert_eq!(sandbox.creates_applied(), 1);
    assert_eq!(sandbox.key_shares(&seed.wallet_id).unwrap().len(), 1);
    let response = refusal(create_seeded(&sandbox, &seed).await).await;
    assert_eq!(response.code(), Some("key_share_already_backed_up"));
    let outcomes: Vec<String> = sandbox.requests().into_iter().map(|r| r.outcome).collect();
    assert!(
        outcomes[0].starts_with("201: created 1 key share(s)"),
        "{outcomes:?}"
    );
    assert!(
        outcomes[0].ends_with("fault: answered 500 instead"),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn apply_then_delay_loses_the_response_to_a_client_timeout() {
    let (sandbox, seed) = Sandbox::seeded().await;
    let late = Fault::ApplyThenDelay(Duration::from_millis(300));
    sandbox.fail_next(Operation::Create, 1, late);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(80))
        .build()
        .unwrap();
    let impatient = Client::new_with_client(
        &sandbox.uri(),
        http,
        RequestOptions::new().bearer_token(&seed.token).unwrap(),
    );
    let request = body(&seed.user_id, &["googleDrive"]);
    let err = create(&impatient, &seed.environment_id, &seed.wallet_id, &request)
        .await
        .unwrap_err();
    match err {
        Error::CommunicationError(e) => assert!(e.is_timeout(), "{e}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(sandbox.creates_applied_to(&seed.wallet_id), 1);
    assert_eq!(sandbox.key_shares(&seed.wallet_id).unwrap().len(), 1);
    assert_eq!(sandbox.requests()[0].status, 201);
}

#[tokio::test]
async fn every_nth_fault_is_deterministic() {
    let (sandbox, seed) = Sandbox::seeded().await;
    sandbox.fail_at_rate(Operation::Read, Rate::every(3), FaultResponse::new(502));
    let client = client(&sandbox, &seed.token);
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(match read(&client, &seed).await {
            Ok(_) => 200,
            Err(err) => refusal::<()>(Err(err)).await.status().as_u16(),
        });
    }
    assert_eq!(statuses, [200, 200, 502, 200, 200, 502, 200]);

    sandbox.clear_faults();
    read(&client, &seed).await.unwrap();
    read(&client, &seed).await.unwrap();
}

async fn read_statuses(rate: Rate, count: usize) -> Vec<u16> {
    let (sandbox, seed) = Sandbox::seeded().await;
    sandbox.fail_at_rate(Target::Any, rate, FaultResponse::new(503));
    let mut statuses = Vec::new();
    for _ in 0..count {
        statuses.push(status_of(raw_read(&sandbox, &seed).bearer_auth(&seed.token)).await);
    }
    statuses
}

#[tokio::test]
async fn a_random_fault_rate_is_reproducible_from_its_seed() {
    let first = read_statuses(Rate::random(0.5, 42), 24).await;
    let again = read_statuses(Rate::random(0.5, 42), 24).await;
    assert_eq!(first, again);
    assert!(first.contains(&200) && first.contains(&503), "{first:?}");
    assert!(read_statuses(Rate::random(0.0, 42), 8)
        .await
        .iter()
        .all(|s| *s == 200));
    assert!(read_statuses(Rate::random(1.0, 42), 8)
        .await
        .iter()
        .all(|s| *s == 503));
}

#[tokio::test]
async fn queued_faults_come_before_rules() {
    let (sandbox, seed) = Sandbox::seeded().await;
    sandbox.fail_at_rate(Operation::Read, Rate::every(1), FaultResponse::new(500));
    sandbox.fail_next(Operation::Read, 1, FaultResponse::new(418));
    let client = client(&sandbox, &seed.token);
    assert_eq!(
        refusal(read(&client, &seed).await).await.status().as_u16(),
        418
    );
    assert_eq!(
        refusal(read(&client, &seed).await).await.status().as_u16(),
        500
    );
}

// ---- rate limit ----

#[tokio::test]
async fn over_the_rate_limit_is_429_with_retry_after_until_the_window_frees() {
    let seed = Seed::example();
    let window = Duration::from_millis(300);
    let sandbox = seed
        .builder()
        .rate_limit(RateLimit::new(2, window))
        .start()
        .await;
    let client = client(&sandbox, &seed.token);
    let started = Instant::now();
    read(&client, &seed).await.unwrap();
    read(&client, &seed).await.unwrap();

    let response = refusal(read(&client, &seed).await).await;
    assert!(
        started.elapsed() < window,
        "the test machine is too slow for this window"
    );
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        json_of(&response),
        json!({"error": "Too many requests. Please try again later."})
    );
    // A refused create is not applied.
    assert_eq!(
        refusal(create_seeded(&sandbox, &seed).await)
            .await
            .status()
            .as_u16(),
        429
    );
    assert_eq!(sandbox.creates_applied(), 0);

    tokio::time::sleep(window).await;
    create_seeded(&sandbox, &seed).await.unwrap();
}

#[tokio::test]
async fn retry_after_counts_the_seconds_until_the_window_frees() {
    let (sandbox, seed) = Sandbox::seeded().await;
    sandbox.set_rate_limit(Some(RateLimit::new(1, Duration::from_millis(2500))));
    let client = client(&sandbox, &seed.token);
    read(&client, &seed).await.unwrap();
    let response = refusal(read(&client, &seed).await).await;
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "3");

    sandbox.set_rate_limit(None);
    read(&client, &seed).await.unwrap();
}

// ---- inspection ----

#[tokio::test]
async fn the_log_records_each_request_with_the_token_redacted() {
    let (sandbox, seed) = Sandbox::seeded().await;
    create_seeded(&sandbox, &seed).await.unwrap();
    let client = client(&sandbox, &seed.token);
    read(&client, &seed).await.unwrap();
    reqwest::Client::new()
        .post(format!(
            "{}?verbose=1",
            create_url(
                &sandbox,
                seed.environment_id.as_str(),
                seed.wallet_id.as_str()
            )
        ))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .header("content-type", "text/plain")
        .body("not json")
        .send()
        .await
        .unwrap();

    let requests = sandbox.requests();
    assert_eq!(requests.len(), 3);
    let (created, read_back, raw) = (&requests[0], &requests[1], &requests[2]);

    assert_eq!(created.method, "POST");
    assert_eq!(
        created.path,
        format!(
            "/environments/{}/waas/{}/keyShares/backup/locations",
            seed.environment_id, seed.wallet_id
        )
    );
    assert_eq!(created.operation, Some(Operation::Create));
    assert_eq!(created.status, 201);
    assert_eq!(created.header("Authorization"), Some("Bearer [redacted]"));
    assert_eq!(created.header("content-type"), Some("application/json"));
    assert_eq!(
        created.body_json(),
        Some(&json!({"userId": &seed.user_id, "locations": [{"location": "googleDrive"}]}))
    );

    assert_eq!(read_back.method, "GET");
    assert_eq!(read_back.operation, Some(Operation::Read));
    assert_eq!(
        (read_back.status, &read_back.body, read_back.body_len),
        (200, &RecordedBody::Empty, 0)
    );

    assert_eq!(raw.query.as_deref(), Some("verbose=1"));
    assert_eq!(raw.header("authorization"), Some("[redacted]"));
    assert_eq!(raw.body, RecordedBody::Text("not json".into()));
    assert_eq!(raw.status, 401);

    // The token appears nowhere in what a failing test would print.
    let printed = format!("{requests:?}");
    assert!(!printed.contains(&seed.token));
    assert!(!printed.contains("dXNlcjpwYXNz"));

    sandbox.clear_requests();
    assert!(sandbox.requests().is_empty());
}

// ---- what a client can send ----

#[tokio::test]
async fn hostile_input_gets_answers_and_leaves_the_sandbox_working() {
    let (sandbox, seed) = Sandbox::seeded().await;
    let wallet = seed.wallet_id.as_str();
    let json = Some("application/json");

    let (status, body) = post_raw(
        &sandbox,
        &seed,
        wallet,
        json,
        vec![b'['; MAX_BODY_BYTES + 1],
    )
    .await;
    assert_eq!(
        (status, body),
        (413, json!({"error": "request entity too large"}))
    );
    let (status, _) = post_raw(&sandbox, &seed, wallet, json, "[".repeat(100_000)).await;
    assert_eq!(status, 400);
    let (status, _) = post_raw(&sandbox, &seed, wallet, json, vec![0xff, 0x00, 0xfe]).await;
    assert_eq!(status, 400);
    let (status, _) = post_raw(&sandbox, &seed, wallet, json, "").await;
    assert_eq!(status, 400);
    let (status, _) = post_raw(&sandbox, &seed, wallet, json, "null").await;
    assert_eq!(status, 400);

    let weird = reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap();
    let odd = reqwest::header::HeaderValue::from_bytes(b"\x80\x81").unwrap();
    let weird_read = raw_read(&sandbox, &seed)
        .header("authorization", weird)
        .header("x-odd", odd);
    assert_eq!(status_of(weird_read).await, 401);

    let recorded = sandbox.requests();
    assert_eq!(recorded[0].body_len, MAX_BODY_BYTES + 1);
    assert!(
        matches!(&recorded[0].body, RecordedBody::Text(t) if t.len() == dynamic_waas_sandbox::RECORDED_BODY_LIMIT)
    );
    assert_eq!(
        recorded.last().unwrap().header("authorization"),
        Some("Bearer [redacted]")
    );

    // Still serving normally.
    create_seeded(&sandbox, &seed).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_on_one_wallet_apply_exactly_once() {
    let (sandbox, seed) = Sandbox::seeded().await;
    let client = client(&sandbox, &seed.token);
    let request = body(&seed.user_id, &["googleDrive"]);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (client, seed, request) = (client.clone(), seed.clone(), request.clone());
            tokio::spawn(async move {
                create(&client, &seed.environment_id, &seed.wallet_id, &request).await
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(match task.await.unwrap() {
            Ok(created) => created.status().as_u16(),
            Err(err) => refusal::<()>(Err(err)).await.status().as_u16(),
        });
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 422, 422, 422, 422, 422, 422, 422]);
    assert_eq!(sandbox.creates_applied(), 1);
    assert_eq!(sandbox.key_shares(&seed.wallet_id).unwrap().len(), 1);
}
