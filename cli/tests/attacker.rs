//! A security review's attacks on the binary: the files it writes (0600, never through a
//! link, an existing one made private), its text output, and the token in what it prints.
//! Each run is the built binary against a sandbox in this process, over real HTTP on
//! loopback.

mod support;
use support::{create_many_one_by_one, jsonl, mode, with_wallets, workdir};

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

use dynamic_waas_sandbox::{Fault, FaultResponse, Target};
use support::{cli, cli_at, example_wallet, run, sandbox, sandbox_with, wallet_get, TOKEN};

fn is_root() -> bool {
    // The effective uid, read from the process status (no unsafe `geteuid`).
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------
// 1. "An existing file is made 0600": a device is not a file to make private. As root,
//    `--results /dev/null` would make /dev/null 0600 for the whole machine. Tried on a
//    device node of our own (same device numbers), never on the real one.
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_on_a_device_leave_the_device_mode_alone() {
    let dir = workdir("device");
    let null = dir.join("null");
    let made = Command::new("mknod")
        .arg(&null)
        .args(["c", "1", "3"])
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        eprintln!("skipped: mknod is not allowed here");
        return;
    }
    std::fs::set_permissions(&null, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (builder, rows) = with_wallets(1);
    let sandbox = builder.start().await;
    let input = dir.join("wallets.jsonl");
    std::fs::write(&input, jsonl(&rows)).unwrap();
    // Whether the run succeeds (syncing a device fails) is not the point: its mode is.
    let output = run(create_many_one_by_one(&sandbox.uri(), &input, &null)).await;
    assert_eq!(
        mode(&null),
        0o666,
        "the tool changed a device's mode (as /dev/null would be): {output:?}"
    );
}

// ---------------------------------------------------------------------------------------
// 2. A results file planted in a shared directory by another user, readable by all: the
//    tool cannot make it private (not its owner), and writes its key share ids into it.
//    Needs root (to plant as one user and run as another).
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_results_file_others_can_read_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root to run the tool as another user");
        return;
    }
    const PLANTER: u32 = 4242;
    const VICTIM: u32 = 65534;
    let dir = workdir("planted");
    // A shared directory, as /tmp.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let (builder, rows) = with_wallets(1);
    let sandbox = builder.start().await;
    let input = dir.join("wallets.jsonl");
    std::fs::write(&input, jsonl(&rows)).unwrap();
    std::fs::set_permissions(&input, std::fs::Permissions::from_mode(0o644)).unwrap();
    let results = dir.join("results.jsonl");
    std::fs::write(&results, b"").unwrap();
    std::os::unix::fs::chown(&results, Some(PLANTER), Some(PLANTER)).unwrap();
    std::fs::set_permissions(&results, std::fs::Permissions::from_mode(0o666)).unwrap();

    let mut cmd = create_many_one_by_one(&sandbox.uri(), &input, &results);
    cmd.uid(VICTIM).gid(VICTIM).env("HOME", &dir);
    let output = run(cmd).await;
    let written = std::fs::read_to_string(&results).unwrap();
    assert!(
        written.is_empty(),
        "key share ids written into a file its planter (and everyone) can read ({:o}): \
         {written}\n{output:?}",
        mode(&results)
    );
    assert_ne!(output.status.code(), Some(0), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("results.jsonl"), "{stderr}");
}

// ---------------------------------------------------------------------------------------
// 3. Text output: the marks that reorder or break text. `escaped` knows U+200E/U+200F and
//    the embeddings, but not the Arabic letter mark (U+061C, a bidi mark the facade's own
//    messages strip) nor the line and paragraph separators.
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_output_escapes_every_mark_that_reorders_or_breaks_a_line() {
    let marks = ['\u{061c}', '\u{2028}', '\u{2029}', '\u{2060}', '\u{206e}'];
    let hostile: String = marks.iter().map(|m| format!("x{m}")).collect();
    let wallet = example_wallet()
        .account_address(&hostile)
        .derivation_path(&hostile);
    let sandbox = sandbox_with(vec![wallet]).await;
    let mut cmd = cli_at(&sandbox.uri());
    wallet_get(&mut cmd).args(["--output", "text"]);
    let output = run(cmd).await;
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let shown = String::from_utf8_lossy(&output.stdout);
    for mark in marks {
        assert!(
            !shown.contains(mark),
            "raw U+{:04X} in text output: {shown:?}",
            mark as u32
        );
    }
}

// ---------------------------------------------------------------------------------------
// 4. The token in what the binary prints.
// ---------------------------------------------------------------------------------------

/// A header named after the token (HTTP lower-cases it): not in stdout, stderr, nor the
/// trace logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_named_after_the_token_is_printed_nowhere() {
    let named = TOKEN.to_ascii_lowercase();
    for format in ["json", "text"] {
        let sandbox = sandbox().await;
        let answer = FaultResponse::new(401).header(&named, "1").echo_token();
        sandbox.fail_next(Target::Any, 10, Fault::Reject(answer));
        let mut cmd = cli_at(&sandbox.uri());
        wallet_get(&mut cmd).args(["--output", format, "-vv"]);
        cmd.env("RUST_LOG", "trace");
        let output = run(cmd).await;
        assert_eq!(output.status.code(), Some(3), "{output:?}");
        for (name, stream) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            let text = String::from_utf8_lossy(stream);
            for trace in [TOKEN, named.as_str(), &TOKEN[..8]] {
                assert!(
                    !text.contains(trace),
                    "{format}: {trace:?} in {name}: {text}"
                );
            }
        }
    }
}

/// The token put where its file's path goes (a secret mounted as a variable under the
/// file variable's name, a common slip): the message about the unreadable "path" prints it.
/// Not fixed here (the message is `src/auth.rs`'s `token_from_file`, outside this review's
/// files): run with `--ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_given_as_the_token_file_path_is_not_printed() {
    let sandbox = sandbox().await;
    for format in ["json", "text"] {
        let mut cmd = cli();
        cmd.env("DYNAMIC_API_TOKEN_FILE", TOKEN)
            .env("DYNAMIC_BASE_URL", sandbox.uri())
            .args(["--output", format]);
        wallet_get(&mut cmd);
        let output = run(cmd).await;
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        for (name, stream) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            let text = String::from_utf8_lossy(stream);
            assert!(
                !text.contains(TOKEN),
                "{format}: the token in {name}: {text}"
            );
        }
    }
}
