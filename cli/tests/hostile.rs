//! Issue 18, "Nothing hostile gets through", for the binary: a server that echoes the token,
//! sends terminal controls or an absurd `Retry-After`, credentials in the configuration, and
//! links planted where the tool writes. Each run is the built binary against a sandbox in this
//! process, over real HTTP on loopback.

mod support;
use support::{create_many_one_by_one, jsonl, mode, with_wallets, workdir};

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use dynamic_waas_sandbox::{Fault, FaultResponse, Operation, Target, Wallet};
use serde_json::{json, Value};
use support::{
    assert_error, cli, cli_at, create, example_wallet, json, run, sandbox, sandbox_with,
    wallet_get, TOKEN, WALLET,
};

/// Strings a hostile server chooses: a screen clear and colour, a window title with its bell,
/// a faked line, a C1 CSI and a bidi override.
const HOSTILE: [&str; 4] = [
    "\u{1b}[2J\u{1b}[31mPWNED\u{1b}]0;owned\u{7}",
    "\n\rspoof",
    "\u{9b}31mC1",
    "\u{202e}fdp.exe",
];

/// What a terminal must not get raw from a server: controls (a line's own `\n` aside), and
/// the invisible characters that reorder text.
fn unsafe_chars(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
        })
        .collect()
}

#[track_caller]
fn assert_terminal_safe(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let found = unsafe_chars(&text);
    assert!(found.is_empty(), "raw {found:?} in {what}: {text:?}");
    assert!(
        !text.contains("\nspoof"),
        "a faked line in {what}: {text:?}"
    );
}

/// What the token can leave as: itself, and the 8-byte start a cut copy keeps.
fn traces() -> [&'static str; 2] {
    [TOKEN, &TOKEN[..8]]
}

#[track_caller]
fn assert_no_token(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for trace in traces() {
        assert!(!text.contains(trace), "{trace:?} in {what}: {text}");
    }
}

#[track_caller]
fn assert_output_has_no_token(case: &str, output: &Output) {
    assert_no_token(&format!("{case}: stdout"), &output.stdout);
    assert_no_token(&format!("{case}: stderr"), &output.stderr);
}

/// A create-shaped 201 body for the example wallet at googleDrive.
fn created_body(id: &str) -> Value {
    json!({
        "message": "Backup action and event created successfully",
        "walletId": WALLET,
        "locationsWithKeyShares": [
            {"location": "googleDrive", "keyShareId": id, "externalKeyShareId": id}
        ],
    })
}

fn journal_of(results: &Path) -> PathBuf {
    PathBuf::from(format!("{}.inflight", results.display()))
}

// ---------------------------------------------------------------------------------------
// 1. The token never leaves through a server's echo.
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echoed_token_is_never_printed_nor_logged_for_any_status() {
    for status in [401, 403, 404, 422, 500] {
        for command in ["wallet get", "create"] {
            // Trace logs by -vv with JSON output, by RUST_LOG with text output.
            for (format, rust_log) in [("json", None), ("text", Some("trace"))] {
                let sandbox = sandbox().await;
                let echo = FaultResponse::new(status).echo_token();
                sandbox.fail_next(Target::Any, 100, Fault::Reject(echo));
                let mut cmd = cli_at(&sandbox.uri());
                if command == "create" {
                    create(&mut cmd, &["googleDrive"]);
                } else {
                    wallet_get(&mut cmd);
                }
                cmd.args(["--output", format, "--max-attempts", "1"]);
                cmd.args(["--settle-after", "0"]);
                match rust_log {
                    Some(filter) => cmd.env("RUST_LOG", filter),
                    None => cmd.arg("-vv"),
                };
                let output = run(cmd).await;
                let case = format!("{status} to {command}, {format}");
                assert!(!output.status.success(), "{case}");
                assert_output_has_no_token(&case, &output);
                // The echo arrived, and was shown redacted.
                let all = [&output.stdout[..], &output.stderr[..]].concat();
                let all = String::from_utf8_lossy(&all);
                assert!(all.contains("Bearer [redacted]"), "{case}: {all}");
                assert!(
                    all.contains("dynamic_waas.attempt"),
                    "{case}: no trace logs: {all}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_that_echoes_the_token_is_printed_redacted() {
    for format in ["json", "text"] {
        let sandbox = sandbox().await;
        let echo = FaultResponse::new(201)
            .json(created_body("6d97c3f0-1b1e-4a57-9c1e-3dcef0a1b2c3"))
            .echo_token();
        sandbox.fail_next(Operation::Create, 1, Fault::ApplyThenRespond(echo));
        let mut cmd = cli_at(&sandbox.uri());
        create(&mut cmd, &["googleDrive"]).args(["--output", format, "-vv"]);
        let output = run(cmd).await;
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        assert_output_has_no_token(&format!("201, {format}"), &output);
        if format == "json" {
            // The body as received, less the token.
            let doc = json(&output);
            assert_eq!(doc["code"], "[redacted]", "{doc}");
        }

        // A 200 wallet read that echoes it.
        let mut plain = cli_at(&sandbox.uri());
        wallet_get(&mut plain);
        let body = json(&run(plain).await);
        let echo = FaultResponse::new(200).json(body).echo_token();
        sandbox.fail_next(Operation::Read, 1, Fault::Reject(echo));
        let mut cmd = cli_at(&sandbox.uri());
        wallet_get(&mut cmd).args(["--output", format, "-vv"]);
        let output = run(cmd).await;
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        assert_output_has_no_token(&format!("200, {format}"), &output);
        if format == "json" {
            assert_eq!(
                json(&output)["error"],
                "invalid credentials: Bearer [redacted]"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_many_keeps_no_echoed_token_in_results_journal_or_output() {
    let (builder, rows) = with_wallets(5);
    let sandbox = builder.start().await;
    // One create each, in row order: refusals, an echoing 201, and a 500 that is settled.
    for fault in [
        Fault::Reject(FaultResponse::new(401).echo_token()),
        Fault::Reject(FaultResponse::new(403).echo_token()),
        Fault::Reject(FaultResponse::new(422).echo_token()),
        Fault::ApplyThenRespond(
            FaultResponse::new(201)
                .json(created_body("6d97c3f0-1b1e-4a57-9c1e-3dcef0a1b2c3"))
                .echo_token(),
        ),
        Fault::ApplyThenRespond(FaultResponse::new(500).echo_token()),
    ] {
        sandbox.fail_next(Operation::Create, 1, fault);
    }
    let dir = workdir("echo-bulk");
    let (input, results) = (dir.join("wallets.jsonl"), dir.join("results.jsonl"));
    std::fs::write(&input, jsonl(&rows)).unwrap();
    let mut cmd = create_many_one_by_one(&sandbox.uri(), &input, &results);
    cmd.arg("-vv");
    let output = run(cmd).await;
    assert_eq!(output.status.code(), Some(9), "{output:?}");
    assert_output_has_no_token("create-many", &output);
    let written = std::fs::read(&results).unwrap();
    assert_no_token("the results file", &written);
    assert_no_token("the journal", &std::fs::read(journal_of(&results)).unwrap());
    let written = String::from_utf8_lossy(&written);
    assert_eq!(written.lines().count(), 5, "{written}");
    // The refusals' echoes are there, redacted.
    assert!(
        written.contains(r#""upstreamCode":"[redacted]""#),
        "{written}"
    );
}

// ---------------------------------------------------------------------------------------
// 2. No raw control characters from a server on a terminal.
// ---------------------------------------------------------------------------------------

/// A 201 for `wallet` whose every other string is hostile (the wallet and the location
/// must be the ones asked for, or the answer is not the create's: the wallet settles it).
fn hostile_201(wallet: &str) -> Value {
    json!({
        "message": HOSTILE[3],
        "walletId": wallet,
        "locationsWithKeyShares": [
            {"location": "googleDrive", "keyShareId": HOSTILE[0], "externalKeyShareId": HOSTILE[1]}
        ],
        "shareSetId": HOSTILE[0],
        "shareSetType": HOSTILE[1],
        "passwordUpdateStatus": format!("{}{}", HOSTILE[3], HOSTILE[2]),
        "walletActive": true,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_text_output_escapes_server_controls_and_json_output_stays_exact() {
    for format in ["text", "json"] {
        let sandbox = sandbox().await;
        let hostile = FaultResponse::new(201).json(hostile_201(WALLET));
        sandbox.fail_next(Operation::Create, 1, Fault::ApplyThenRespond(hostile));
        let mut cmd = cli_at(&sandbox.uri());
        create(&mut cmd, &["googleDrive"]).args(["--output", format, "-vv"]);
        let output = run(cmd).await;
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        assert_terminal_safe("stderr", &output.stderr);
        if format == "json" {
            assert_eq!(json(&output), hostile_201(WALLET));
            continue;
        }
        assert_terminal_safe("stdout", &output.stdout);
        let shown = String::from_utf8_lossy(&output.stdout);
        for escaped in [
            r"\u{1b}[2J\u{1b}[31mPWNED\u{1b}]0;owned\u{7}",
            r"\u{a}\u{d}spoof",
            r"\u{9b}31mC1",
            r"\u{202e}fdp.exe",
        ] {
            assert!(shown.contains(escaped), "{escaped} not in {shown}");
        }
    }
}

/// The example wallet, its strings hostile.
fn hostile_wallet() -> Wallet {
    example_wallet()
        .account_address(HOSTILE[3])
        .derivation_path(HOSTILE[1])
        .key_share_with_ids("googleDrive", HOSTILE[0], Some(HOSTILE[1]))
        .key_share_with_ids(HOSTILE[2], HOSTILE[3], None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_text_output_escapes_server_controls_and_json_output_stays_exact() {
    let sandbox = sandbox_with(vec![hostile_wallet()]).await;
    let mut cmd = cli_at(&sandbox.uri());
    wallet_get(&mut cmd).args(["--output", "text", "-vv"]);
    let output = run(cmd).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_terminal_safe("stdout", &output.stdout);
    assert_terminal_safe("stderr", &output.stderr);
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(shown.contains(r"\u{1b}[2J\u{1b}[31mPWNED"), "{shown}");
    assert!(shown.contains(r"\u{9b}31mC1"), "{shown}");
    assert!(shown.contains(r"\u{202e}fdp.exe"), "{shown}");

    let mut cmd = cli_at(&sandbox.uri());
    wallet_get(&mut cmd);
    let output = run(cmd).await;
    let wallet = &json(&output)["wallet"];
    assert_eq!(wallet["accountAddress"], HOSTILE[3]);
    assert_eq!(wallet["derivationPath"], HOSTILE[1]);
    assert_eq!(wallet["keyShares"][0]["id"], HOSTILE[0]);
    assert_eq!(wallet["keyShares"][0]["externalKeyShareId"], HOSTILE[1]);
    assert_eq!(wallet["keyShares"][1]["backupLocation"], HOSTILE[2]);
    assert_eq!(wallet["keyShares"][1]["id"], HOSTILE[3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_messages_quoting_upstream_escape_its_controls() {
    let text = HOSTILE.join(" ");
    for (status, command) in [(400, "create"), (404, "wallet get"), (422, "create")] {
        for format in ["text", "json"] {
            let sandbox = sandbox().await;
            let answer =
                FaultResponse::new(status).json(json!({"error": text, "code": HOSTILE[0]}));
            sandbox.fail_next(Target::Any, 100, Fault::Reject(answer));
            let mut cmd = cli_at(&sandbox.uri());
            if command == "create" {
                create(&mut cmd, &["googleDrive"]);
            } else {
                wallet_get(&mut cmd);
            }
            cmd.args(["--output", format, "-vv"]);
            let output = run(cmd).await;
            let case = format!("{status} to {command}, {format}");
            assert_eq!(output.status.code(), Some(3), "{case}: {output:?}");
            assert_terminal_safe(&format!("{case}: stderr"), &output.stderr);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains("PWNED"),
                "{case}: the message lost it: {stderr}"
            );
            if format == "json" {
                let message = support::message(&json(&output)["error"]).to_owned();
                assert_terminal_safe(&format!("{case}: the JSON message"), message.as_bytes());
            } else {
                assert_terminal_safe(&format!("{case}: stdout"), &output.stdout);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_many_results_keep_a_hostile_201_exact_and_stderr_escapes_it() {
    let (builder, rows) = with_wallets(1);
    let sandbox = builder.start().await;
    let hostile = FaultResponse::new(201).json(hostile_201(rows[0].wallet_id.as_ref()));
    sandbox.fail_next(Operation::Create, 1, Fault::ApplyThenRespond(hostile));
    let dir = workdir("hostile-bulk");
    let (input, results) = (dir.join("wallets.jsonl"), dir.join("results.jsonl"));
    std::fs::write(&input, jsonl(&rows)).unwrap();
    let mut cmd = create_many_one_by_one(&sandbox.uri(), &input, &results);
    cmd.args(["--output", "text", "-vv"]);
    let output = run(cmd).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_terminal_safe("stdout", &output.stdout);
    assert_terminal_safe("stderr", &output.stderr);
    let line: Value = serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    assert_eq!(line["keyShares"][0]["keyShareId"], HOSTILE[0], "{line}");
    assert_eq!(
        line["keyShares"][0]["externalKeyShareId"], HOSTILE[1],
        "{line}"
    );
    assert_eq!(line["shareSetId"], HOSTILE[0], "{line}");
}

// ---------------------------------------------------------------------------------------
// 3. Secrets in configuration are never echoed.
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_base_url_are_never_printed() {
    let sandbox = sandbox().await;
    let port = sandbox.uri().rsplit(':').next().unwrap().to_owned();
    let cases = [
        ("pass", "http://user:pass@127.0.0.1:99999/x".to_owned()),
        ("pass", format!("http://user:pass@127.0.0.1:{port}/x")),
        ("hunter2", format!("http://user:hunter2@localhost:{port}")),
        // Reserved characters in a password end the authority early: it does not parse.
        (
            "hunter2",
            "http://user:hunter2/x@127.0.0.1:99999/x".to_owned(),
        ),
        (
            "hunter2",
            "http://user:hunter2#x@127.0.0.1:99999/x".to_owned(),
        ),
    ];
    for (secret, url) in cases {
        for format in ["json", "text"] {
            let mut cmd = cli_at(&url);
            wallet_get(&mut cmd).args(["--output", format, "-vv"]);
            let output = run(cmd).await;
            let case = format!("{url}, {format}");
            assert_eq!(output.status.code(), Some(2), "{case}: {output:?}");
            for (name, stream) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
                let text = String::from_utf8_lossy(stream);
                assert!(!text.contains(secret), "{case}: {secret} in {name}: {text}");
            }
            if format == "json" {
                let error = assert_error(&output, 2, "invalid_input");
                assert!(support::message(&error).contains("base_url"), "{error}");
            }
        }
    }
    assert!(sandbox.requests().is_empty(), "sent with credentials");
}

#[test]
fn help_never_shows_credentials_from_the_base_url_variable() {
    for args in [
        &["wallet", "get", "--help"][..],
        &["wallet", "get", "-h"],
        &["backup-locations", "create-many", "--help"],
    ] {
        let output = cli()
            .env("DYNAMIC_BASE_URL", "http://user:hunter2@127.0.0.1:99999/x")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.contains("DYNAMIC_BASE_URL"),
            "{args:?}: the help no longer names the variable"
        );
        assert!(!text.contains("hunter2"), "{args:?}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_localhost_base_url_reaches_a_sandbox_on_127_0_0_1() {
    let sandbox = sandbox().await;
    let port = sandbox.uri().rsplit(':').next().unwrap().to_owned();
    let mut cmd = cli_at(&format!("http://localhost:{port}"));
    wallet_get(&mut cmd);
    let output = run(cmd).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(json(&output)["wallet"]["walletId"], WALLET);
    assert_eq!(sandbox.requests().len(), 1);
}

// ---------------------------------------------------------------------------------------
// 4. Files the tool creates are private and not hijackable.
// ---------------------------------------------------------------------------------------

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_journal_or_results_link_is_refused_and_its_target_untouched() {
    let (builder, rows) = with_wallets(2);
    let sandbox = builder.start().await;
    let dir = workdir("links");
    let input = dir.join("wallets.jsonl");
    std::fs::write(&input, jsonl(&rows)).unwrap();
    let mut case = 0;
    for planted_journal in [true, false] {
        for target_holds in [None, Some(""), Some("someone else's file\n")] {
            for resume in [false, true] {
                case += 1;
                let results = dir.join(format!("results-{case}.jsonl"));
                let target = dir.join(format!("target-{case}"));
                if let Some(content) = target_holds {
                    std::fs::write(&target, content).unwrap();
                }
                let link = if planted_journal {
                    journal_of(&results)
                } else {
                    results.clone()
                };
                std::os::unix::fs::symlink(&target, &link).unwrap();
                let mut cmd = create_many_one_by_one(&sandbox.uri(), &input, &results);
                if resume {
                    cmd.arg("--resume");
                }
                let output = run(cmd).await;
                let what =
                    format!(
                    "case {case}: {} linked to a target holding {target_holds:?}, resume {resume}",
                    if planted_journal { "the journal" } else { "--results" },
                );
                assert_eq!(output.status.code(), Some(2), "{what}: {output:?}");
                match target_holds {
                    None => assert!(!target.exists(), "{what}: the target was created"),
                    Some(content) => assert_eq!(
                        std::fs::read_to_string(&target).unwrap(),
                        content,
                        "{what}: the target was written"
                    ),
                }
                assert!(
                    std::fs::symlink_metadata(&link).unwrap().is_symlink(),
                    "{what}: the link was replaced"
                );
            }
        }
    }
    assert_eq!(sandbox.creates_received(), 0, "a create was sent");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_results_and_journal_files_are_private() {
    let (builder, rows) = with_wallets(2);
    let sandbox = builder.start().await;
    let dir = workdir("private");
    let (input, results) = (dir.join("wallets.jsonl"), dir.join("results.jsonl"));
    std::fs::write(&input, jsonl(&rows)).unwrap();
    let output = run(create_many_one_by_one(&sandbox.uri(), &input, &results)).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(mode(&results), 0o600);
    assert_eq!(mode(&journal_of(&results)), 0o600);
}

#[cfg(unix)]
#[tokio::test]
async fn an_existing_results_file_readable_by_others_is_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let (builder, rows) = with_wallets(2);
    let sandbox = builder.start().await;
    let dir = workdir("made-private");
    let (input, results) = (dir.join("wallets.jsonl"), dir.join("results.jsonl"));
    std::fs::write(&input, jsonl(&rows)).unwrap();
    // Left by another tool: empty, readable by everyone.
    std::fs::write(&results, "").unwrap();
    std::fs::set_permissions(&results, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = run(create_many_one_by_one(&sandbox.uri(), &input, &results)).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(mode(&results), 0o600);
}

/// `sandbox serve` with `args` (`--write-input`, then `--dump-state`): its first stdout
/// document, and its output once stopped with SIGTERM (or failed).
#[cfg(all(unix, feature = "sandbox"))]
async fn serve_then_stop(args: &[&Path]) -> (Option<Value>, Output) {
    let mut serve = cli();
    serve.args(["--output", "json", "sandbox", "serve", "--wallets", "2"]);
    for (flag, path) in ["--write-input", "--dump-state"].iter().zip(args) {
        serve.arg(flag).arg(path);
    }
    let mut child = serve
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let first = tokio::task::spawn_blocking(move || {
        serde_json::Deserializer::from_reader(stdout)
            .into_iter::<Value>()
            .next()
            .and_then(Result::ok)
    })
    .await
    .unwrap();
    // Serving (not an error document): stop it as Ctrl-C would.
    if first.as_ref().is_some_and(|doc| doc.get("url").is_some()) {
        let stopped = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(stopped.success());
    }
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    (first, output)
}

#[cfg(all(unix, feature = "sandbox"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_serve_writes_its_files_privately_and_never_through_a_link() {
    let dir = workdir("serve");
    let (input, state) = (dir.join("input.jsonl"), dir.join("state.jsonl"));
    let (served, output) = serve_then_stop(&[&input, &state]).await;
    assert!(
        served.is_some_and(|doc| doc.get("url").is_some()),
        "{output:?}"
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(mode(&input), 0o600);
    assert_eq!(mode(&state), 0o600);
    for written in [&input, &state] {
        let lines = std::fs::read_to_string(written).unwrap().lines().count();
        assert_eq!(lines, 2, "{}", written.display());
    }

    // A link planted at either path: refused, its target neither created nor written.
    for planted in ["--write-input", "--dump-state"] {
        let (link, target) = (
            dir.join(format!("link{planted}")),
            dir.join(format!("target{planted}")),
        );
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let paths: Vec<&Path> = if planted == "--write-input" {
            vec![&link]
        } else {
            vec![&input, &link]
        };
        let (_, output) = serve_then_stop(&paths).await;
        assert_eq!(output.status.code(), Some(2), "{planted}: {output:?}");
        assert!(!target.exists(), "{planted}: written through the link");
    }
}

// ---------------------------------------------------------------------------------------
// 6. A rate-limit pause respects each call's own patience.
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_retry_after_ends_the_command_rate_limited_exit_4_not_6() {
    for command in ["wallet get", "create"] {
        for first_wait in [1, 99_999_999] {
            let sandbox = sandbox().await;
            // A first 429 the policy waits out (it slows the client's pace), then one sent
            // after that cut with an absurd wait (it pauses the client).
            let first = FaultResponse::new(429).retry_after(first_wait);
            let absurd = FaultResponse::new(429).retry_after(99_999_999);
            sandbox.fail_next(Target::Any, 1, Fault::Reject(first));
            sandbox.fail_next(Target::Any, 1, Fault::Reject(absurd));
            let mut cmd = cli_at(&sandbox.uri());
            if command == "create" {
                create(&mut cmd, &["googleDrive"]);
            } else {
                wallet_get(&mut cmd);
            }
            let started = Instant::now();
            let output = run(cmd).await;
            let case = format!("{command}, first Retry-After {first_wait}");
            let error = assert_error(&output, 4, "rate_limited");
            assert_eq!(error["status"], 429, "{case}");
            assert!(
                started.elapsed() < Duration::from_secs(first_wait.min(1) + 4),
                "{case}: took {:?}",
                started.elapsed()
            );
            assert!(
                support::message(&error).contains("99999999"),
                "{case}: {error}"
            );
        }
    }
}
