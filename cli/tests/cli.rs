//! The built `dynamic-waas` binary, end to end: against the in-process sandbox, a
//! sandbox or wiremock server started by the test, or nothing at all.

use std::process::{Command, Output};

use assert_cmd::assert::Assert;
use assert_cmd::assert::OutputAssertExt;
use dynamic_waas_sandbox::{Fault, FaultResponse, Operation, Rate, Sandbox, Seed};
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;
use serde_json::Value;
use wiremock::ResponseTemplate;

mod support;
use support::{
    assert_error, assert_nothing_sent, cli, cli_at, create, json, received, run, sandbox,
    wallet_get, CREATE_PATH, READ_PATH, TOKEN, USER, WALLET,
};

/// `backup-locations create` on the built-in sandbox (`--sandbox`), printing `output`.
#[cfg(feature = "sandbox")]
fn sandbox_create(output: &str) -> Command {
    let mut cmd = cli();
    cmd.args([
        "--output",
        output,
        "backup-locations",
        "create",
        "--sandbox",
    ]);
    cmd
}

/// What the binary does with `args` (and none of the caller's API settings).
fn output_of(args: &[&str]) -> Output {
    cli().args(args).output().unwrap()
}

/// `--help`, asserted to succeed.
fn help() -> Assert {
    cli().arg("--help").assert().success()
}

#[cfg(feature = "sandbox")]
#[test]
fn sandbox_create_prints_the_key_share_of_each_location() {
    let output = sandbox_create("json")
        .args(["--location", "googleDrive", "--location", "dynamic"])
        .output()
        .unwrap();
    output.clone().assert().success();
    let doc = json(&output);
    assert_eq!(doc["walletId"], WALLET);
    let shares = doc["locationsWithKeyShares"].as_array().unwrap();
    assert_eq!(shares.len(), 2, "{doc}");
    assert_eq!(shares[0]["location"], "googleDrive");
    assert_eq!(shares[1]["location"], "dynamic");
    for share in shares {
        assert!(share["keyShareId"]
            .as_str()
            .is_some_and(|id| !id.is_empty()));
    }
    assert!(doc.get("reconciled").is_none());
}

#[cfg(feature = "sandbox")]
#[test]
fn sandbox_text_output_names_each_key_share() {
    sandbox_create("text")
        .args(["--location", "external,keygen-id=k1,scheme=TWO_OF_THREE"])
        .assert()
        .success()
        .stdout(contains("external").and(contains("keyShareId")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_response_is_reconciled_from_the_wallet() {
    let sandbox = sandbox().await;
    sandbox.fail_next(
        Operation::Create,
        1,
        Fault::ApplyThenRespond(FaultResponse::new(502).html("<h1>Bad Gateway</h1>")),
    );
    let mut cmd = cli_at(&sandbox.uri());
    create(&mut cmd, &["googleDrive"]);
    let output = run(cmd).await;
    output.clone().assert().success();
    let doc = json(&output);
    assert_eq!(doc["reconciled"], true, "{doc}");
    assert_eq!(doc["locationsWithKeyShares"][0]["location"], "googleDrive");
    assert_eq!(sandbox.creates_applied(), 1);
    // Sent once: the wallet read settled it (a blind resend would be refused, and hidden).
    assert_eq!(sandbox.creates_received(), 1);
}

/// Runs `cmd` with stdout (and, if `close_stderr`, stderr) a pipe whose reader is gone.
fn run_with_closed_pipes(mut cmd: Command, close_stderr: bool) -> (Option<i32>, String) {
    use std::process::Stdio;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take());
    let stderr = if close_stderr {
        drop(child.stderr.take());
        String::new()
    } else {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut text).unwrap();
        text
    };
    (child.wait().unwrap().code(), stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_result_stdout_cannot_take_goes_to_stderr_in_one_json_line() {
    for format in ["json", "text"] {
        let sandbox = sandbox().await;
        let mut cmd = cli_at(&sandbox.uri());
        create(&mut cmd, &["googleDrive"]).args(["--output", format]);
        let (code, stderr) = tokio::task::spawn_blocking(move || run_with_closed_pipes(cmd, false))
            .await
            .unwrap();
        assert_eq!(code, Some(8), "{format}: {stderr}");
        let line = stderr
            .lines()
            .find(|l| l.starts_with("{\"created\""))
            .unwrap_or_else(|| panic!("{format}: no result line in {stderr}"));
        let doc: Value = serde_json::from_str(line).unwrap();
        let stored = sandbox.key_shares(&Seed::example().wallet_id).unwrap();
        assert_eq!(
            doc["created"]["locationsWithKeyShares"][0]["keyShareId"],
            stored[0].id.to_string(),
            "{format}"
        );
        assert!(stderr.contains("do not create again"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_stdout_and_stderr_never_panic() {
    let sandbox = sandbox().await;
    let mut cmd = cli_at(&sandbox.uri());
    create(&mut cmd, &["googleDrive"]);
    let (code, _) = tokio::task::spawn_blocking(move || run_with_closed_pipes(cmd, true))
        .await
        .unwrap();
    // 101 would be a panic.
    assert_eq!(code, Some(8));
    let mut cmd = cli();
    cmd.args(["--output", "json"]);
    wallet_get(&mut cmd);
    let (code, _) = tokio::task::spawn_blocking(move || run_with_closed_pipes(cmd, true))
        .await
        .unwrap();
    assert_eq!(code, Some(2));
}

/// Rule: the token never travels in clear text. A proxy from the environment is bypassed for
/// plain-http loopback; the listener standing in for it must see nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_loopback_bypasses_every_environment_proxy() {
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    proxy.set_nonblocking(true).unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let sandbox = sandbox().await;
    let mut cmd = cli_at(&sandbox.uri());
    for var in [
        "http_proxy",
        "HTTP_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
    ] {
        cmd.env(var, &proxy_url);
    }
    cmd.env_remove("NO_PROXY").env_remove("no_proxy");
    create(&mut cmd, &["googleDrive"]);
    let output = run(cmd).await;
    output.clone().assert().success();
    assert!(proxy.accept().is_err(), "a connection reached the proxy");
    assert_eq!(sandbox.creates_received(), 1);
}

#[cfg(feature = "sandbox")]
#[test]
fn wallet_get_prints_the_wallet() {
    let output = output_of(&["--output", "json", "wallet", "get", "--sandbox"]);
    output.clone().assert().success();
    assert_eq!(json(&output)["wallet"]["walletId"], WALLET);
}

#[cfg(feature = "sandbox")]
#[test]
fn sandbox_serve_prints_what_to_connect_with() {
    serve_and_read_the_wallet(None);
}

#[cfg(feature = "sandbox")]
#[test]
fn sandbox_serve_listens_on_the_requested_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = serve_and_read_the_wallet(Some(port));
    assert_eq!(url, format!("http://127.0.0.1:{port}"));
}

#[cfg(feature = "sandbox")]
/// Starts `sandbox serve`, reads the seeded wallet through what it printed; returns its URL.
fn serve_and_read_the_wallet(port: Option<u16>) -> String {
    use std::io::BufReader;
    use std::process::Stdio;

    let mut serve = cli();
    serve.args(["sandbox", "serve", "--output", "json"]);
    if let Some(port) = port {
        serve.args(["--port", &port.to_string()]);
    }
    let mut child = serve
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let served: Result<Value, _> = serde_json::Deserializer::from_reader(stdout)
        .into_iter()
        .next()
        .unwrap();
    let served = served.unwrap();
    let mut cmd = cli();
    cmd.env("DYNAMIC_API_TOKEN", served["token"].as_str().unwrap())
        .env("DYNAMIC_BASE_URL", served["url"].as_str().unwrap())
        .args(["--output", "json"])
        .args(["wallet", "get", "--environment-id"])
        .arg(served["environmentId"].as_str().unwrap())
        .arg("--wallet-id")
        .arg(served["walletId"].as_str().unwrap());
    let output = cmd.output().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    output.clone().assert().success();
    assert_eq!(json(&output)["wallet"]["walletId"], served["walletId"]);
    assert_eq!(served["userId"], USER);
    served["url"].as_str().unwrap().to_owned()
}

#[test]
fn help_lists_the_exit_codes() {
    help().stdout(contains("Exit codes:").and(contains("5  outcome unknown")));
}

// Exit 2: invalid input, nothing sent.

#[test]
fn exit_2_without_a_token() {
    let mut cmd = cli();
    cmd.args(["--output", "json"]);
    let output = wallet_get(&mut cmd).output().unwrap();
    let error = assert_error(&output, 2, "invalid_input");
    assert!(support::message(&error).contains("DYNAMIC_API_TOKEN"));
    assert_eq!(error["attempts"], 0);
}

#[test]
fn exit_2_for_plain_http_to_another_host() {
    let mut cmd = cli_at("http://example.com/api/v0");
    let output = wallet_get(&mut cmd).output().unwrap();
    let error = assert_error(&output, 2, "invalid_input");
    assert!(support::message(&error).contains("https"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_2_for_an_unknown_location_unless_allowed() {
    let sandbox = sandbox().await;
    let mut cmd = cli_at(&sandbox.uri());
    create(&mut cmd, &["googleDrive", "paperWallet"]);
    let output = run(cmd).await;
    let error = assert_error(&output, 2, "invalid_input");
    let message = support::message(&error);
    assert!(message.contains("paperWallet") && message.contains("googleDrive, iCloud"));
    assert_nothing_sent(&sandbox);

    // Allowed, it is sent as it is: a sandbox that knows the value accepts it.
    sandbox.accept_location("paperWallet");
    let mut cmd = cli_at(&sandbox.uri());
    create(&mut cmd, &["paperWallet"]).arg("--allow-unknown-location");
    let output = run(cmd).await;
    output.clone().assert().success();
    assert_eq!(
        json(&output)["locationsWithKeyShares"][0]["location"],
        "paperWallet"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_2_for_a_malformed_id() {
    let sandbox = sandbox().await;
    let mut cmd = cli_at(&sandbox.uri());
    support::wallet_get_of(&mut cmd, "not-a-uuid");
    let output = run(cmd).await;
    let error = assert_error(&output, 2, "invalid_input");
    assert!(support::message(&error).contains("--wallet-id"));
    assert_nothing_sent(&sandbox);
}

#[test]
fn exit_2_for_usage_errors() {
    // No --location.
    cli().args(["backup-locations", "create"]).assert().code(2);
    // A scheme clap refuses.
    cli()
        .args(["backup-locations", "create"])
        .args(["--location", "dynamic,scheme=ONE_OF_ONE"])
        .assert()
        .code(2)
        .stderr(contains("TWO_OF_THREE"));
}

// Exit 3: the API refused.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_3_when_the_wallet_is_already_backed_up() {
    let sandbox =
        support::sandbox_with(vec![support::example_wallet().backed_up_to("dynamic")]).await;
    let mut cmd = cli_at(&sandbox.uri());
    create(&mut cmd, &["googleDrive"]);
    let output = run(cmd).await;
    let error = assert_error(&output, 3, "already_backed_up");
    assert_eq!(error["status"], 422);
    assert_eq!(error["attempts"], 1);
    assert!(error["requestId"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_3_when_the_token_is_refused() {
    let (sandbox, _) = Sandbox::seeded().await; // does not know TOKEN
    let mut cmd = cli_at(&sandbox.uri());
    let output = run({
        wallet_get(&mut cmd);
        cmd
    })
    .await;
    let error = assert_error(&output, 3, "unauthorized");
    assert_eq!(error["status"], 401);
}

// Exit 4: rate limited or server error after every attempt.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_4_after_a_server_error() {
    let sandbox = sandbox().await;
    let boom = FaultResponse::new(500).json(serde_json::json!({"error": "boom"}));
    sandbox.fail_next(Operation::Read, 1, boom);
    let mut cmd = cli_at(&sandbox.uri());
    wallet_get(&mut cmd).args(["--max-attempts", "1"]);
    let output = run(cmd).await;
    let error = assert_error(&output, 4, "server_error");
    assert_eq!(error["status"], 500);
    assert_eq!(error["attempts"], 1);
    assert_eq!(received(&sandbox, Operation::Read), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_4_when_rate_limited_beyond_the_cap() {
    let sandbox = sandbox().await;
    let limited = FaultResponse::new(429).retry_after(3600);
    sandbox.fail_next(Operation::Read, 1, limited);
    let mut cmd = cli_at(&sandbox.uri());
    wallet_get(&mut cmd);
    let output = run(cmd).await;
    let error = assert_error(&output, 4, "rate_limited");
    assert_eq!(error["status"], 429);
    assert_eq!(received(&sandbox, Operation::Read), 1);
}

// Exit 5: the create's outcome is unknown.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_5_when_the_create_failed_and_the_wallet_cannot_be_read() {
    let sandbox = sandbox().await;
    sandbox.fail_next(Operation::Create, 1, FaultResponse::new(500));
    sandbox.fail_at_rate(Operation::Read, Rate::every(1), FaultResponse::new(500));
    let mut cmd = cli_at(&sandbox.uri());
    create(&mut cmd, &["googleDrive"]).args(["--max-attempts", "1"]);
    let output = run(cmd).await;
    let error = assert_error(&output, 5, "outcome_unknown");
    assert!(support::message(&error).contains("settle it"));
    assert_eq!(error["attempts"], 3);
    // Sent once; the settling read gets twice the attempts: 2 with --max-attempts 1.
    assert_eq!(sandbox.creates_received(), 1);
    assert_eq!(received(&sandbox, Operation::Read), 2);
}

// Exit 6: transport.

#[test]
fn exit_6_when_nothing_listens() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut cmd = cli_at(&format!("http://127.0.0.1:{port}"));
    wallet_get(&mut cmd).args(["--max-attempts", "1"]);
    let output = cmd.output().unwrap();
    let error = assert_error(&output, 6, "transport");
    assert_eq!(error["status"], Value::Null);
}

// Exit 7: an unreadable response.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_7_when_the_wallet_is_not_json() {
    let sandbox = sandbox().await;
    // A proxy's page in place of the wallet, labelled JSON.
    let page = FaultResponse::new(200).body("<html>hello</html>", "application/json");
    sandbox.fail_next(Operation::Read, 1, page);
    let mut cmd = cli_at(&sandbox.uri());
    wallet_get(&mut cmd).args(["--max-attempts", "1"]);
    let output = run(cmd).await;
    assert_error(&output, 7, "invalid_response");
    assert_eq!(json(&output)["error"]["status"], 200);
}

// The token.

fn assert_no_token(output: &Output) {
    for (name, stream) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let text = String::from_utf8_lossy(stream);
        assert!(!text.contains(TOKEN), "the token is in {name}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_never_printed() {
    let sandbox = sandbox().await;
    let (failing, _) = Sandbox::seeded().await; // does not know TOKEN: 401

    for format in ["json", "text"] {
        // Success with trace logs, then (the wallet is backed up by then) a 422.
        let mut cmd = cli_at(&sandbox.uri());
        create(&mut cmd, &["googleDrive"]).args(["-vv", "--output", format]);
        let output = run(cmd).await;
        let expected = if format == "json" { 0 } else { 3 };
        output.clone().assert().code(expected);
        assert_no_token(&output);

        let mut cmd = cli_at(&sandbox.uri());
        wallet_get(&mut cmd).args(["-v", "--output", format]);
        let output = run(cmd).await;
        output.clone().assert().success();
        assert_no_token(&output);

        // Failures: refused, and invalid input after the token was read.
        let mut cmd = cli_at(&failing.uri());
        wallet_get(&mut cmd).args(["-vv", "--output", format]);
        let output = run(cmd).await;
        output.clone().assert().code(3);
        assert_no_token(&output);

        let mut cmd = cli_at(&sandbox.uri());
        create(&mut cmd, &["nowhere"]).args(["-v", "--output", format]);
        let output = run(cmd).await;
        output.clone().assert().code(2);
        assert_no_token(&output);
    }

    // DYN_API_TOKEN is the fallback, and is not printed either.
    let mut cmd = cli();
    cmd.env("DYN_API_TOKEN", TOKEN)
        .env("DYNAMIC_BASE_URL", sandbox.uri())
        .args(["-v", "--output", "json"]);
    wallet_get(&mut cmd);
    let output = run(cmd).await;
    output.clone().assert().success();
    assert_no_token(&output);
}

/// Runs `command` against a server whose `verb` route at `at` answers `status` with `body`,
/// and asserts stdout is that body as received.
async fn assert_printed_as_received(
    verb: &str,
    at: &str,
    status: u16,
    body: &str,
    command: impl FnOnce(&mut Command) -> &mut Command,
) {
    // On wiremock: the point is a body with fields the sandbox never sends, to the byte.
    let answer = ResponseTemplate::new(status).set_body_raw(body, "application/json");
    let server = support::answering(verb, at, answer).await;
    let mut cmd = cli_at(&server.uri());
    command(&mut cmd);
    let output = run(cmd).await;
    output.clone().assert().success();
    support::assert_received_once(&server).await;
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!("{body}\n")
    );
}

/// `--output json` prints the 201 body as received: fields the SDK does not know survive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_is_the_201_body_as_received() {
    let body = r#"{"message":"ok","walletId":"95b11417-f18f-457f-8804-68e361f9164f","backupActionId":"ba-1","locationsWithKeyShares":[{"location":"paperWallet","keyShareId":"0f0e0d0c-0b0a-4908-8706-050403020100","externalKeyShareId":"0f0e0d0c-0b0a-4908-8706-050403020101","createdAt":"2026-11-24T12:00:00Z"}]}"#;
    assert_printed_as_received("POST", CREATE_PATH, 201, body, |cmd| {
        create(cmd, &["paperWallet"]).arg("--allow-unknown-location")
    })
    .await;
}

#[cfg(feature = "sandbox")]
#[test]
fn share_set_id_is_sent_and_the_summary_shows_the_share_set() {
    sandbox_create("text")
        .args(["--location", "offlineRecovery"])
        .args(["--share-set-id", "5f0c6d9e-0d1b-4c3e-9a57-2f1f8f0b7a11"])
        .assert()
        .success()
        .stdout(
            contains("offlineRecovery")
                .and(contains("share set 5f0c6d9e-0d1b-4c3e-9a57-2f1f8f0b7a11"))
                .and(contains("type rootUser"))
                .and(contains("wallet active")),
        );
    let output = sandbox_create("json")
        .args(["--location", "googleDrive", "--share-set-id", "NOPE"])
        .output()
        .unwrap();
    assert_error(&output, 2, "invalid_input");
}

/// `wallet get --output json` echoes the wallet as received: fields the SDK does not know survive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_get_json_is_the_body_as_received() {
    let body = r#"{"wallet":{"walletId":"95b11417-f18f-457f-8804-68e361f9164f","accountAddress":"0xabc","chainName":"EVM","derivationPath":"m/0","thresholdSignatureScheme":"TWO_OF_TWO","keyShares":[{"id":"k-1","backupLocation":"googleDrive","passwordEncrypted":false,"createdAt":"2026-11-24T12:00:00Z"}],"shareSetId":"5f0c6d9e-0d1b-4c3e-9a57-2f1f8f0b7a11"}}"#;
    assert_printed_as_received("GET", READ_PATH, 200, body, wallet_get).await;
}

// The `sandbox` feature.

/// Without the `sandbox` feature (`--no-default-features`), the binary has no sandbox.
#[cfg(not(feature = "sandbox"))]
#[test]
fn without_the_sandbox_feature_there_is_no_sandbox() {
    for args in [
        &["--output", "json", "wallet", "get", "--sandbox"][..],
        &["--output", "json", "sandbox", "serve"],
    ] {
        assert_error(&output_of(args), 2, "invalid_input");
    }
    let output = output_of(&["backup-locations", "--help"]);
    output.assert().stdout(contains("--sandbox").not());
}

#[cfg(feature = "sandbox")]
#[test]
fn with_the_sandbox_feature_the_help_offers_it() {
    help().stdout(contains("sandbox "));
    let output = output_of(&["backup-locations", "create", "--help"]);
    output.assert().stdout(contains("--sandbox"));
}

// Logs.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_verbose_unless_rust_log_is_set() {
    let sandbox = sandbox().await;
    let stderr_of = |verbose: Option<&str>, rust_log: Option<&str>| {
        let mut cmd = cli_at(&sandbox.uri());
        cmd.env_remove("RUST_LOG").env("NO_COLOR", "1");
        if let Some(rust_log) = rust_log {
            cmd.env("RUST_LOG", rust_log);
        }
        wallet_get(&mut cmd);
        if let Some(verbose) = verbose {
            cmd.arg(verbose);
        }
        cmd
    };
    // "client configured" is this binary's debug log; "answered" the library's.
    for (verbose, rust_log, logged) in [
        (None, None, false),
        (Some("-v"), None, true),
        (Some("-vv"), None, true),
        (Some("-vv"), Some("off"), false),
        (None, Some("dynamic_waas=debug"), true),
        (None, Some(""), false),
    ] {
        let output = run(stderr_of(verbose, rust_log)).await;
        output.clone().assert().success();
        assert!(json(&output)["wallet"].is_object(), "logs went to stdout");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr.contains("client configured") && stderr.contains("answered"),
            logged,
            "{verbose:?} RUST_LOG={rust_log:?}: {stderr}"
        );
        assert!(!stderr.contains('\u{1b}'), "colour in {stderr}");
    }
}

// Usage errors: one JSON document when JSON was asked for.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_print_one_json_document_when_json_is_asked_for() {
    let sandbox = sandbox().await;
    let cases: [(&[&str], &str); 4] = [
        (&["wallet", "get", "--bogus"], "--bogus"),
        (
            &[
                "backup-locations",
                "create",
                "--location",
                "googleDrive,colour=red",
            ],
            "colour",
        ),
        (&["backup-locations", "create", "--location"], "--location"),
        (
            &["backup-locations", "create", "--user-id", USER],
            "--location",
        ),
    ];
    for (args, named) in cases {
        // Asked for explicitly, and by default (stdout is not a terminal here).
        for explicit in [true, false] {
            let mut cmd = cli();
            cmd.env("DYNAMIC_API_TOKEN", TOKEN)
                .env("DYNAMIC_BASE_URL", sandbox.uri());
            if explicit {
                cmd.arg("--output=json");
            }
            cmd.args(args);
            let output = run(cmd).await;
            let error = assert_error(&output, 2, "invalid_input");
            assert_eq!(error["status"], Value::Null);
            assert_eq!(error["requestId"], Value::Null);
            assert_eq!(error["attempts"], 0);
            let message = support::message(&error);
            assert!(message.contains(named), "{args:?}: {message}");
            assert!(!message.starts_with("error:"), "{message}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains("error:") && stderr.contains(named),
                "{stderr}"
            );
        }
        // Text output: clap's message only, nothing on stdout.
        let mut cmd = cli();
        cmd.args(["--output", "text"]).args(args);
        let output = run(cmd).await;
        output.clone().assert().code(2);
        assert!(output.stdout.is_empty(), "{args:?}");
    }
    // An invalid --output itself: JSON by default, since stdout is not a terminal.
    let output = output_of(&["--output", "yaml", "wallet", "get"]);
    assert_error(&output, 2, "invalid_input");
    // No command at all.
    assert_error(&output_of(&["--output", "json"]), 2, "invalid_input");
    assert_nothing_sent(&sandbox);
}

#[test]
fn help_and_version_stay_as_clap_prints_them() {
    for args in [
        &["--help"][..],
        &["--output", "json", "--help"],
        &["wallet", "--help"],
    ] {
        let output = output_of(args);
        output.clone().assert().success();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("Usage:"), "{args:?}: {stdout}");
        assert!(serde_json::from_slice::<Value>(&output.stdout).is_err());
    }
    cli()
        .args(["--output", "json", "--version"])
        .assert()
        .success()
        .stdout(format!("dynamic-waas {}\n", env!("CARGO_PKG_VERSION")));
}

// Completions.

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let output = output_of(&["completions", shell]);
        output.clone().assert().success();
        let script = String::from_utf8(output.stdout).unwrap();
        assert!(
            script.contains("dynamic-waas") && script.contains("location-json"),
            "{shell}: {script}"
        );
    }
    cli()
        .args(["--output", "json", "completions", "tcsh"])
        .assert()
        .code(2);
}

// --location-json.

fn created_locations(sandbox: &Sandbox) -> Vec<Value> {
    let creates: Vec<_> = sandbox
        .requests()
        .into_iter()
        .filter(|r| r.operation == Some(Operation::Create))
        .collect();
    assert_eq!(creates.len(), 1);
    creates[0].body_json().unwrap()["locations"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn location_json_sends_ids_with_commas_in_the_order_given() {
    let sandbox = sandbox().await;
    let mut cmd = cli_at(&sandbox.uri());
    create(&mut cmd, &["googleDrive"]).args([
        "--location-json",
        r#"{"location":"external","keygenId":"a,b","thresholdSignatureScheme":"TWO_OF_THREE","externalKeyShareId":"vault, 7"}"#,
        "--location",
        "dynamic,keygen-id=k1",
    ]);
    let output = run(cmd).await;
    output.clone().assert().success();
    let shares = json(&output)["locationsWithKeyShares"].clone();
    assert_eq!(shares.as_array().unwrap().len(), 3, "{shares}");
    let sent = created_locations(&sandbox);
    assert_eq!(
        sent,
        [
            serde_json::json!({"location": "googleDrive"}),
            serde_json::json!({
                "location": "external",
                "keygenId": "a,b",
                "thresholdSignatureScheme": "TWO_OF_THREE",
                "externalKeyShareId": "vault, 7",
            }),
            serde_json::json!({"location": "dynamic", "keygenId": "k1"}),
        ]
    );

    // Alone, without --location.
    let sandbox = self::sandbox().await;
    let mut cmd = cli_at(&sandbox.uri());
    create(&mut cmd, &[]).args([
        "--location-json",
        r#"{"location":"iCloud","keygenId":"x, y"}"#,
    ]);
    run(cmd).await.assert().success();
    assert_eq!(created_locations(&sandbox)[0]["keygenId"], "x, y");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_2_for_a_bad_location_json_naming_the_flag_and_the_field() {
    let sandbox = sandbox().await;
    for (value, field) in [
        (r#"{"keygenId":"k"}"#, "location"),
        (r#"{"location":"dynamic","keygenId":7}"#, "keygenId"),
        (r#"{"location":"dynamic","colour":"red"}"#, "colour"),
        (
            r#"{"location":"dynamic","thresholdSignatureScheme":"ONE_OF_ONE"}"#,
            "thresholdSignatureScheme",
        ),
        ("dynamic", "JSON"),
    ] {
        let mut cmd = cli_at(&sandbox.uri());
        create(&mut cmd, &["googleDrive"]).args(["--location-json", value]);
        let output = run(cmd).await;
        let error = assert_error(&output, 2, "invalid_input");
        let message = support::message(&error);
        assert!(
            message.contains("--location-json") && message.contains(field),
            "{value}: {message}"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--location-json"), "{stderr}");
    }
    // An id the API would refuse is refused before sending, as with --location.
    let mut cmd = cli_at(&sandbox.uri());
    create(&mut cmd, &[]).args([
        "--location-json",
        r#"{"location":"dynamic","keygenId":" lead"}"#,
    ]);
    let output = run(cmd).await;
    let error = assert_error(&output, 2, "invalid_input");
    assert!(support::message(&error).contains("keygenId"), "{error}");
    assert_nothing_sent(&sandbox);
}

// What an operator meets first: the help, the manual, the token, the configuration.

#[test]
fn the_help_shows_examples_and_no_maintainers_note() {
    let output = output_of(&["--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("Examples:"), "{help}");
    assert!(
        help.contains("backup-locations create-many --input"),
        "{help}"
    );
    assert!(!help.contains("at run time"), "{help}");
    assert!(!help.contains("EXIT_CODES"), "{help}");
}

#[cfg(feature = "sandbox")]
#[test]
fn commands_that_call_no_api_take_no_api_options() {
    let serve = output_of(&["sandbox", "serve", "--help"]);
    let help = String::from_utf8_lossy(&serve.stdout);
    for absent in ["--base-url", "--max-attempts", "--timeout", "--token-stdin"] {
        assert!(!help.contains(absent), "{absent}: {help}");
    }
    for args in [
        &["completions", "bash", "--sandbox"][..],
        &["completions", "bash", "--base-url", "x"],
        &["sandbox", "serve", "--base-url", "http://127.0.0.1:1"],
    ] {
        let output = output_of(args);
        assert_eq!(output.status.code(), Some(2), "{args:?} accepted");
    }
}

#[test]
fn the_manual_page_is_roff_and_one_page_per_command_can_be_written() {
    let output = output_of(&["man"]);
    output.clone().assert().success();
    let page = String::from_utf8_lossy(&output.stdout);
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    assert!(page.contains("dynamic\\-waas"), "{page}");
    let dir = std::env::temp_dir().join(format!("dynamic-waas-man-{}", std::process::id()));
    let output = output_of(&["man", "--dir", dir.to_str().unwrap()]);
    output.assert().success();
    let pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(pages.iter().any(|p| p.contains("create-many")), "{pages:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_configuration_problem_is_reported_at_once() {
    // No token, a bad id and a plain-http base URL: all three in one error, nothing sent.
    let mut cmd = cli();
    cmd.env("DYNAMIC_BASE_URL", "http://example.com/api/v0")
        .args(["--output", "json", "wallet", "get"])
        .args(["--environment-id", "not-an-id", "--wallet-id", WALLET]);
    let output = cmd.output().unwrap();
    let error = assert_error(&output, 2, "invalid_input");
    let message = support::message(&error);
    assert!(message.starts_with("3 problems"), "{message}");
    for says in ["DYNAMIC_API_TOKEN", "--environment-id", "plain http"] {
        assert!(message.contains(says), "{says}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_comes_from_a_file_or_stdin_never_a_flag() {
    let sandbox = sandbox().await;
    let dir = std::env::temp_dir().join(format!("dynamic-waas-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A mounted secret ends with a newline.
    let file = dir.join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let mut cmd = cli();
    cmd.env("DYNAMIC_API_TOKEN_FILE", &file)
        .env("DYNAMIC_BASE_URL", sandbox.uri())
        .args(["--output", "json"]);
    wallet_get(&mut cmd);
    let output = run(cmd).await;
    output.clone().assert().success();
    // From stdin.
    let mut cmd = cli();
    cmd.env("DYNAMIC_BASE_URL", sandbox.uri())
        .args(["--output", "json"]);
    wallet_get(&mut cmd).arg("--token-stdin");
    cmd.stdin(std::fs::File::open(&file).unwrap());
    let output = run(cmd).await;
    output.clone().assert().success();
    assert!(!String::from_utf8_lossy(&output.stdout).contains(TOKEN));
    // An empty file is reported, never its content.
    std::fs::write(&file, "").unwrap();
    let mut cmd = cli();
    cmd.env("DYNAMIC_API_TOKEN_FILE", &file)
        .env("DYNAMIC_BASE_URL", sandbox.uri())
        .args(["--output", "json"]);
    wallet_get(&mut cmd);
    let output = run(cmd).await;
    let error = assert_error(&output, 2, "invalid_input");
    assert!(support::message(&error).contains("is empty"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}
