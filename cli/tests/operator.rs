//! An operator's review of `create-many`: attacks on resume, inputs written by other tools,
//! and the results file, with the CLI as a child process against a sandbox in this process.
//! Every test counts the creates the sandbox received (what was sent), not only those it
//! applied.

mod support;
use support::{create_many, jsonl, key_share_ids, results, spawn, wait, with_wallets, workdir};

use std::time::Duration;

use dynamic_waas_sandbox::{Fault, FaultResponse, Operation, Pregenerated, Sandbox};
use serde_json::Value;
use support::{json, run};

fn held(sandbox: &Sandbox, row: &Pregenerated) -> Vec<String> {
    let shares = sandbox.key_shares(&row.wallet_id).unwrap();
    shares.iter().map(|s| s.id.to_string()).collect()
}

/// Waits (up to 20 s) until the sandbox has received `count` creates.
async fn creates_received(sandbox: &Sandbox, count: usize) {
    for _ in 0..800 {
        if sandbox.creates_received() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("fewer than {count} creates in 20 s");
}

/// A resumed run must not read too early: the earlier run may have sent a create long after
/// its last write to the results file or the journal (a retry after a 429's Retry-After, a
/// resend after a settled doubt), and reads lag. Here the job's first create is refused with
/// `Retry-After: 4`; four seconds after the journal's last write, the retry is applied and
/// its answer held; the run is killed at once and resumed at once. Reading "settle_after
/// after the earlier run's last write" reads at once, sees nothing (reads lag 1.8 s, under
/// settle_after), and sends the create again.
#[tokio::test(flavor = "multi_thread")]
async fn a_resume_after_a_create_sent_long_after_the_last_write_sends_no_create_twice() {
    let (builder, rows) = with_wallets(1);
    let sandbox = builder
        .read_lag(Duration::from_millis(1800))
        .lagging_duplicate_check()
        .start()
        .await;
    sandbox.fail_next(
        Operation::Create,
        1,
        Fault::Reject(FaultResponse::new(429).retry_after(4)),
    );
    sandbox.fail_next(
        Operation::Create,
        1,
        Fault::ApplyThenDelay(Duration::from_secs(60)),
    );
    let dir = workdir("resume-after-late-send");
    let input = dir.join("wallets.jsonl");
    std::fs::write(&input, jsonl(&rows)).unwrap();
    let out = dir.join("results.jsonl");
    let mut cmd = create_many(&sandbox.uri(), &input, &out);
    cmd.args(["--concurrency", "1"]);
    let mut child = spawn(cmd);
    creates_received(&sandbox, 2).await;
    assert_eq!(sandbox.creates_applied_to(&rows[0].wallet_id), 1);
    child.kill().unwrap(); // SIGKILL
    wait(child).await;

    sandbox.clear_faults();
    let mut resume = create_many(&sandbox.uri(), &input, &out);
    resume.arg("--resume");
    let output = run(resume).await;
    let doc = json(&output);
    assert_eq!(output.status.code(), Some(0), "{doc}");
    let (outcomes, _) = results(&out);
    let outcome = &outcomes[&rows[0].wallet_id.to_string()];
    assert_eq!(outcome["nextRun"], "skip", "{outcome}");
    assert_eq!(
        sandbox.creates_applied_to(&rows[0].wallet_id),
        1,
        "applied twice: {outcome}"
    );
    assert_eq!(key_share_ids(outcome), held(&sandbox, &rows[0]));
    // The refused one and the applied one: nothing after it.
    assert_eq!(
        sandbox.creates_received(),
        2,
        "a create was sent again: {doc}"
    );
}

/// A CSV another tool wrote: a byte order mark, CRLF line ends, a quoted header and quoted
/// ids, a NUL byte, a lone carriage return joining two records, a duplicate wallet, a line
/// over 1 MiB, a blank line, a trailing comma, no newline at the end. Every row is accounted
/// for: created once, a duplicate, or a bad row with its line number; none is dropped
/// without a word (a lone `\r` used to end the line's first record and lose the second).
#[tokio::test(flavor = "multi_thread")]
async fn every_row_of_a_hostile_csv_is_accounted_for_and_no_wallet_created_twice() {
    let (builder, rows) = with_wallets(6);
    let sandbox = builder.start().await;
    let dir = workdir("hostile-csv");
    let row = |r: &Pregenerated| format!("{},{},{}", r.environment_id, r.wallet_id, r.user_id);
    let mut text: Vec<u8> = b"\xEF\xBB\xBF\"environmentId\",\"walletId\",\"userId\"\r\n".to_vec();
    // 2: quoted ids.
    text.extend(
        format!(
            "\"{}\",\"{}\",\"{}\"\r\n",
            rows[0].environment_id, rows[0].wallet_id, rows[0].user_id
        )
        .bytes(),
    );
    // 3: a NUL byte in the user id.
    text.extend(
        row(&rows[1])
            .replace(&rows[1].user_id.to_string()[..4], "\0\0\0\0")
            .bytes(),
    );
    text.extend(b"\r\n");
    // 4: two records joined by a lone carriage return.
    text.extend(format!("{}\r{}\r\n", row(&rows[2]), row(&rows[3])).bytes());
    // 5: the first wallet again.
    text.extend(format!("{}\r\n", row(&rows[0])).bytes());
    // 6: over 1 MiB.
    text.extend(std::iter::repeat_n(b'x', 2 << 20));
    text.extend(b"\r\n");
    // 7: blank (not a row).
    text.extend(b"   \r\n");
    // 8: a trailing comma (four fields).
    text.extend(format!("{},\r\n", row(&rows[4])).bytes());
    // 9: no newline at the end.
    text.extend(row(&rows[5]).bytes());
    let input = dir.join("wallets.csv");
    std::fs::write(&input, text).unwrap();
    let out = dir.join("results.jsonl");
    let output = run(create_many(&sandbox.uri(), &input, &out)).await;
    let doc = json(&output);
    assert_eq!(output.status.code(), Some(9), "{doc}");
    assert_eq!(doc["rows"], 7, "{doc}");
    assert_eq!(
        (&doc["created"], &doc["invalid"]),
        (&2.into(), &4.into()),
        "{doc}"
    );
    // Line 5 waited for line 2 (a duplicate), or came after it ended and read the wallet
    // first (reconciled): either way with its ids, nothing sent.
    let again = doc["duplicate"].as_u64().unwrap() + doc["reconciled"].as_u64().unwrap();
    assert_eq!(again, 1, "{doc}");
    let (outcomes, bad) = results(&out);
    let mut lines: Vec<u64> = bad.iter().map(|b| b["line"].as_u64().unwrap()).collect();
    lines.sort_unstable();
    assert_eq!(lines, [3, 4, 6, 8], "{bad:?}");
    for r in [&rows[0], &rows[5]] {
        let outcome = &outcomes[&r.wallet_id.to_string()];
        assert_eq!(key_share_ids(outcome), held(&sandbox, r), "{outcome}");
        assert_eq!(sandbox.creates_applied_to(&r.wallet_id), 1);
    }
    assert_eq!(sandbox.creates_received(), 2, "{doc}");
}

/// A CSV with old Mac line ends (`\r` alone) is one line to a reader of `\n`: its header was
/// read, every data row was dropped, and the run ended "complete", exit 0, with 0 rows.
#[tokio::test(flavor = "multi_thread")]
async fn a_csv_with_carriage_returns_only_is_refused_not_read_as_empty() {
    let (builder, rows) = with_wallets(2);
    let sandbox = builder.start().await;
    let dir = workdir("cr-only");
    let mut text = String::from("environmentId,walletId,userId\r");
    for r in &rows {
        text += &format!("{},{},{}\r", r.environment_id, r.wallet_id, r.user_id);
    }
    let input = dir.join("wallets.csv");
    std::fs::write(&input, text).unwrap();
    let out = dir.join("results.jsonl");
    let output = run(create_many(&sandbox.uri(), &input, &out)).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("carriage return"), "{stderr}");
    assert_eq!(sandbox.creates_received(), 0);
}

/// A wallet on two lines of the input, far enough apart that the first row's job has ended
/// when the second is read: the second was run as a new job and its create sent (README:
/// "`duplicate` (the wallet was on an earlier row of the run, which settled it: nothing was
/// sent)"). The server refused it (422) when its duplicate check was current; against one
/// that lags (`lagging_duplicate_check`, reads lagging 1.5 s) it was applied a second time.
#[tokio::test(flavor = "multi_thread")]
async fn a_wallet_on_two_distant_lines_is_created_once_and_sent_once() {
    let (builder, rows) = with_wallets(3);
    let sandbox = builder
        .read_lag(Duration::from_millis(1500))
        .lagging_duplicate_check()
        .start()
        .await;
    let dir = workdir("distant-duplicate");
    let input = dir.join("wallets.jsonl");
    let text = jsonl(&rows);
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(
        &input,
        format!("{}\n{}\n{}\n{}\n", lines[0], lines[1], lines[2], lines[0]),
    )
    .unwrap();
    let out = dir.join("results.jsonl");
    let mut cmd = create_many(&sandbox.uri(), &input, &out);
    cmd.args(["--concurrency", "1"]);
    let output = run(cmd).await;
    let doc = json(&output);
    assert_eq!(output.status.code(), Some(0), "{doc}");
    assert_eq!(doc["rows"], 4, "{doc}");
    let text = std::fs::read_to_string(&out).unwrap();
    let fourth: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|o| o["line"] == 4)
        .unwrap_or_else(|| panic!("no line 4 in {text}"));
    assert_eq!(fourth["nextRun"], "skip", "{fourth}");
    assert_eq!(
        sandbox.creates_applied_to(&rows[0].wallet_id),
        1,
        "applied twice: {text}"
    );
    assert_eq!(key_share_ids(&fourth), held(&sandbox, &rows[0]), "{fourth}");
    assert_eq!(sandbox.creates_received(), 3, "a create sent twice: {text}");
}
