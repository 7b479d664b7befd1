//! What the CLI's tests share: the example ids and a token, the binary with and without API
//! settings, its JSON output, the example sandbox, and a wiremock server for what the sandbox
//! never sends.

#![allow(dead_code)] // each test binary uses part of it

use std::process::{Command, Output};

use assert_cmd::assert::OutputAssertExt;
use dynamic_waas_sandbox::{Operation, Sandbox, Seed, Wallet};
use serde_json::Value;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const ENVIRONMENT: &str = "0b1c2d3e-4f50-4617-8899-aabbccddeeff";
pub const WALLET: &str = "95b11417-f18f-457f-8804-68e361f9164f";
pub const USER: &str = "3c90c3cc-0d44-4b50-8888-8dd25736052a";
pub const TOKEN: &str = "dyn_canary_7Qx9zW2mLk4pR8vT";

pub const READ_PATH: &str = r"^/environments/[^/]+/waas/[^/]+$";
pub const CREATE_PATH: &str = r"^/environments/[^/]+/waas/[^/]+/keyShares/backup/locations$";

/// The binary, with none of the caller's API settings.
pub fn cli() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dynamic-waas"));
    for var in ["DYNAMIC_API_TOKEN", "DYN_API_TOKEN", "DYNAMIC_BASE_URL"] {
        cmd.env_remove(var);
    }
    cmd
}

/// `cli()` against `base_url` (through `DYNAMIC_BASE_URL`) with the test token and JSON
/// output; the command helpers below add short timeouts.
pub fn cli_at(base_url: &str) -> Command {
    let mut cmd = cli();
    cmd.env("DYNAMIC_API_TOKEN", TOKEN)
        .env("DYNAMIC_BASE_URL", base_url)
        .args(["--output", "json"]);
    cmd
}

/// `wallet get` of the example wallet.
pub fn wallet_get(cmd: &mut Command) -> &mut Command {
    wallet_get_of(cmd, WALLET)
}

/// `wallet get` of `wallet` in the example environment.
pub fn wallet_get_of<'c>(cmd: &'c mut Command, wallet: &str) -> &'c mut Command {
    cmd.args([
        "wallet",
        "get",
        "--timeout",
        "5",
        "--environment-id",
        ENVIRONMENT,
    ])
    .args(["--wallet-id", wallet])
}

pub fn create<'c>(cmd: &'c mut Command, locations: &[&str]) -> &'c mut Command {
    cmd.args([
        "backup-locations",
        "create",
        "--timeout",
        "5",
        "--environment-id",
        ENVIRONMENT,
        "--wallet-id",
        WALLET,
        "--user-id",
        USER,
    ]);
    for location in locations {
        cmd.args(["--location", location]);
    }
    cmd
}

/// Runs the binary off the test's runtime, so that servers in this process keep answering.
pub async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("the binary runs"))
        .await
        .expect("the runner thread")
}

/// Stdout as exactly one JSON document.
pub fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The message of a JSON error.
pub fn message(error: &Value) -> &str {
    error["message"].as_str().expect("a message")
}

/// Asserts the exit code and the JSON error's kind; returns the error object.
pub fn assert_error(output: &Output, code: i32, kind: &str) -> Value {
    output.clone().assert().code(code);
    let doc = json(output);
    let error = doc["error"].clone();
    assert_eq!(error["kind"], kind, "{doc}");
    for field in ["status", "message", "requestId", "attempts"] {
        assert!(error.get(field).is_some(), "no {field} in {doc}");
    }
    error
}

/// The example sandbox, with [`TOKEN`] also valid for its environment.
pub async fn sandbox() -> Sandbox {
    sandbox_with(Vec::new()).await
}

/// [`sandbox()`], with these wallets seeded.
pub async fn sandbox_with(wallets: Vec<Wallet>) -> Sandbox {
    let seed = Seed::example();
    let builder = seed.builder().token(TOKEN, seed.environment_id.clone());
    wallets
        .into_iter()
        .fold(builder, |builder, wallet| builder.wallet(wallet))
        .start()
        .await
}

/// The example wallet, to change before seeding it.
pub fn example_wallet() -> Wallet {
    let seed = Seed::example();
    Wallet::new(seed.wallet_id, seed.environment_id, seed.user_id)
}

/// How many `operation` requests `sandbox` received.
pub fn received(sandbox: &Sandbox, operation: Operation) -> usize {
    let requests = sandbox.requests();
    requests
        .iter()
        .filter(|r| r.operation == Some(operation))
        .count()
}

/// Asserts that nothing reached `sandbox`.
#[track_caller]
pub fn assert_nothing_sent(sandbox: &Sandbox) {
    let requests = sandbox.requests();
    assert!(requests.is_empty(), "sent: {requests:?}");
}

/// A wiremock server whose `verb` route at `at` (a path regex) answers `response`: for a
/// response the sandbox never sends. Check what reached it with [`assert_received_once`].
pub async fn answering(verb: &str, at: &str, response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method(verb))
        .and(path_regex(at))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

/// Asserts that `server` received exactly one request.
pub async fn assert_received_once(server: &MockServer) {
    let received = server.received_requests().await.expect("recording is on");
    assert_eq!(received.len(), 1, "{received:?}");
}

// ---- create-many ----

/// An empty directory for one test's files, under this test binary's name.
pub fn workdir(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{}-{name}", env!("CARGO_CRATE_NAME")));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The example seed, with the test token valid for its environment and `count` pregenerated
/// wallets in it.
pub fn with_wallets(
    count: usize,
) -> (
    dynamic_waas_sandbox::SandboxBuilder,
    Vec<dynamic_waas_sandbox::Pregenerated>,
) {
    let seed = Seed::example();
    seed.builder()
        .token(TOKEN, seed.environment_id.clone())
        .pregenerated(&seed.environment_id, count)
}

/// `rows` as a JSON-lines input.
pub fn jsonl(rows: &[dynamic_waas_sandbox::Pregenerated]) -> String {
    rows.iter()
        .map(|r| {
            serde_json::json!({"environmentId": r.environment_id, "walletId": r.wallet_id, "userId": r.user_id})
                .to_string()
                + "\n"
        })
        .collect()
}

/// `create-many` of `input` into `results`, to Google Drive, unpaced.
pub fn create_many(uri: &str, input: &std::path::Path, results: &std::path::Path) -> Command {
    create_many_at(uri, input, results, "600000")
}

/// `create-many` at `rate` requests a minute.
pub fn create_many_at(
    uri: &str,
    input: &std::path::Path,
    results: &std::path::Path,
    rate: &str,
) -> Command {
    let mut cmd = cli_at(uri);
    cmd.args([
        "backup-locations",
        "create-many",
        "--location",
        "googleDrive",
    ])
    .arg("--input")
    .arg(input)
    .arg("--results")
    .arg(results)
    .args(["--rate", rate, "--env-rate", "600000"]);
    cmd
}

/// The results file: the last line per wallet (a resumed run appends), and the bad rows.
pub fn results(path: &std::path::Path) -> (std::collections::HashMap<String, Value>, Vec<Value>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut last = std::collections::HashMap::new();
    let mut bad = Vec::new();
    for line in text.lines() {
        let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        match value["walletId"].as_str() {
            Some(wallet) => {
                last.insert(wallet.to_owned(), value);
            }
            None => bad.push(value),
        }
    }
    (last, bad)
}

/// The key share ids of a results line.
pub fn key_share_ids(outcome: &Value) -> Vec<String> {
    outcome["keyShares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["keyShareId"].as_str().unwrap().to_owned())
        .collect()
}

/// `cmd` started with its output piped.
pub fn spawn(mut cmd: Command) -> std::process::Child {
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// The output of a spawned child, once it ends.
pub async fn wait(child: std::process::Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().expect("the child ends"))
        .await
        .unwrap()
}

/// A file's permission bits.
#[cfg(unix)]
pub fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// [`create_many`] one wallet at a time, with a short `--settle-after` (the sandbox's reads
/// are current): faults scripted in order meet the wallets in order.
pub fn create_many_one_by_one(
    uri: &str,
    input: &std::path::Path,
    results: &std::path::Path,
) -> Command {
    let mut cmd = create_many(uri, input, results);
    cmd.args(["--concurrency", "1", "--settle-after", "0.1"]);
    cmd
}
