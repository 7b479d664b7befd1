//! What the generated client's tests share: the example ids, the fixtures, a client, a
//! wiremock server that fails on any unexpected request, and a route answering once mounted.

#![allow(dead_code)] // each test binary uses part of it

use dynamic_waas_api::ids::{EnvironmentId, WalletId};
use dynamic_waas_api::types::{
    BackupKeySharesToLocationsResponse, BackupKeySharesToLocationsWithUserIdRequest,
    WaasWalletResponse,
};
use dynamic_waas_api::{ByteStream, Client, Error, RequestOptions, ResponseValue};
use serde_json::Value;
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod example;
#[allow(unused_imports)] // each test binary uses part of it
pub use example::{create_path, wallet_path, ENV, USER, WALLET};

pub const TOKEN: &str = "dyn_test_token_0123456789";

/// The example ids, typed.
pub fn ids() -> (EnvironmentId, WalletId) {
    (ENV.parse().unwrap(), WALLET.parse().unwrap())
}

/// `tests/fixtures/{name}` as JSON.
pub fn fixture(name: &str) -> Value {
    let file = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&file).expect(&file)).expect(&file)
}

/// The example create's body, from its fixture.
pub fn seed_body() -> BackupKeySharesToLocationsWithUserIdRequest {
    serde_json::from_value(fixture("seed_request.json")).unwrap()
}

/// The mock every server here starts with: the lowest priority, expected never, so that the
/// test fails on any request no other mock takes.
fn unexpected() -> Mock {
    let answer = ResponseTemplate::new(599).set_body_string("unexpected request");
    Mock::given(any())
        .respond_with(answer)
        .with_priority(u8::MAX)
        .expect(0)
        .named("catch-all: no unexpected request")
}

/// A wiremock server that fails the test (when it drops) on any unexpected request.
pub async fn server() -> MockServer {
    let server = MockServer::start().await;
    server.register(unexpected()).await;
    server
}

/// A client of `server` with [`TOKEN`] and these options.
pub fn client_with(server: &MockServer, options: RequestOptions) -> Client {
    Client::new(&server.uri(), options.bearer_token(TOKEN).unwrap())
}

/// A client of `server` with [`TOKEN`].
pub fn client(server: &MockServer) -> Client {
    client_with(server, RequestOptions::new())
}

/// A server (see [`server`]) whose `verb` route at `at` answers `response`.
pub async fn answering(verb: &str, at: String, response: ResponseTemplate) -> MockServer {
    let server = server().await;
    let route = Mock::given(method(verb))
        .and(path(at))
        .respond_with(response);
    server.register(route).await;
    server
}

pub type Created = Result<ResponseValue<BackupKeySharesToLocationsResponse>, Error<ByteStream>>;
pub type Read = Result<ResponseValue<WaasWalletResponse>, Error<ByteStream>>;

/// The example create, sent by `client`.
pub async fn create_with(client: &Client) -> Created {
    let (env, wallet) = ids();
    client
        .backup_key_shares_to_locations_for_pregen(&env, &wallet, &seed_body())
        .await
}

/// The example create, answered `response`; the server lives as long as the answer is read.
pub async fn create_answered(response: ResponseTemplate) -> (MockServer, Created) {
    let server = answering("POST", create_path(), response).await;
    let created = create_with(&client(&server)).await;
    (server, created)
}

/// The example wallet's read, sent by `client`.
pub async fn read_with(client: &Client) -> Read {
    let (env, wallet) = ids();
    client.get_waas_wallet_by_wallet_id(&env, &wallet).await
}

/// The example wallet's read, answered `response`.
pub async fn read_answered(response: ResponseTemplate) -> (MockServer, Read) {
    let server = answering("GET", wallet_path(), response).await;
    let read = read_with(&client(&server)).await;
    (server, read)
}
