//! `backup-locations create-many` as a child process against a sandbox in this process: both
//! input formats, bad rows, shards, a run killed with SIGKILL and resumed, Ctrl-C draining.
//! Every test compares the results file with what the sandbox holds, and counts the creates
//! the sandbox received, not only those it applied.

mod support;
use support::{
    create_many, create_many_at, jsonl, key_share_ids, results, spawn, wait, with_wallets, workdir,
};

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use dynamic_waas_sandbox::{Fault, Operation, Pregenerated, Rate, Sandbox};
use serde_json::Value;
use support::{json, run, TOKEN};

/// A sandbox with `count` pregenerated wallets; [`TOKEN`] is valid for their environment.
async fn sandbox_with_wallets(count: usize) -> (Sandbox, Vec<Pregenerated>) {
    let (builder, rows) = with_wallets(count);
    (builder.start().await, rows)
}

/// Every wallet has exactly one create applied, and its last outcome holds the ids the
/// sandbox recorded.
#[track_caller]
fn assert_every_wallet_settled(sandbox: &Sandbox, rows: &[Pregenerated], results_path: &Path) {
    let (outcomes, _) = results(results_path);
    for row in rows {
        let wallet = row.wallet_id.to_string();
        let outcome = outcomes
            .get(&wallet)
            .unwrap_or_else(|| panic!("no outcome for {wallet}"));
        assert_eq!(outcome["nextRun"], "skip", "{outcome}");
        let held: Vec<String> = sandbox
            .key_shares(&row.wallet_id)
            .unwrap()
            .iter()
            .map(|s| s.id.to_string())
            .collect();
        assert_eq!(key_share_ids(outcome), held, "{outcome}");
        assert_eq!(sandbox.creates_applied_to(&row.wallet_id), 1, "{wallet}");
    }
}

fn summary(output: &Output) -> Value {
    json(output)
}

#[tokio::test(flavor = "multi_thread")]
async fn json_lines_and_csv_are_both_read_and_every_wallet_gets_its_ids() {
    let (sandbox, rows) = sandbox_with_wallets(20).await;
    let dir = workdir("formats");
    let jsonl_input = dir.join("wallets.jsonl");
    std::fs::write(&jsonl_input, jsonl(&rows[..10])).unwrap();
    // CSV: columns in any order, a row naming its own locations.
    let mut csv = String::from("userId,walletId,environmentId,locations\n");
    for (i, r) in rows[10..].iter().enumerate() {
        let locations = if i == 0 { "googleDrive;dynamic" } else { "" };
        csv += &format!(
            "{},{},{},{locations}\n",
            r.user_id, r.wallet_id, r.environment_id
        );
    }
    let csv_input = dir.join("wallets.csv");
    std::fs::write(&csv_input, csv).unwrap();

    for (input, results_file) in [(&jsonl_input, "jsonl.out"), (&csv_input, "csv.out")] {
        let out = dir.join(results_file);
        let output = run(create_many(&sandbox.uri(), input, &out)).await;
        let doc = summary(&output);
        assert_eq!(output.status.code(), Some(0), "{doc}");
        assert_eq!(doc["run"], "complete");
        assert_eq!(doc["created"], 10, "{doc}");
        assert_eq!(doc["requestsSent"], 10, "{doc}");
        // The journal has every job, each before its create was sent.
        let journal = std::fs::read_to_string(dir.join(format!("{results_file}.inflight")));
        assert_eq!(journal.unwrap().lines().count(), 10);
    }
    assert_every_wallet_settled(&sandbox, &rows[..10], &dir.join("jsonl.out"));
    assert_every_wallet_settled(&sandbox, &rows[10..], &dir.join("csv.out"));
    let (csv_outcomes, _) = results(&dir.join("csv.out"));
    let first = &csv_outcomes[&rows[10].wallet_id.to_string()];
    assert_eq!(first["keyShares"].as_array().unwrap().len(), 2, "{first}");
    assert_eq!(sandbox.creates_received(), 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_rows_are_reported_with_their_line_and_skipped_or_stop_the_run() {
    let (sandbox, rows) = sandbox_with_wallets(3).await;
    let dir = workdir("bad-rows");
    let input = dir.join("wallets.jsonl");
    let good = jsonl(&rows);
    let good: Vec<&str> = good.lines().collect();
    let text = [
        good[0],
        "{\"walletId\": ",
        &good[1].replace("\"userId\"", "\"colour\":\"red\",\"userId\""),
        &good[1].replace(&rows[1].wallet_id.to_string(), "not-a-wallet"),
        good[2],
    ]
    .join("\n");
    std::fs::write(&input, text + "\n").unwrap();

    let skip = dir.join("skip.out");
    let output = run(create_many(&sandbox.uri(), &input, &skip)).await;
    let doc = summary(&output);
    assert_eq!(output.status.code(), Some(9), "{doc}");
    assert_eq!(
        (doc["created"].as_u64(), doc["invalid"].as_u64()),
        (Some(2), Some(3)),
        "{doc}"
    );
    let (_, bad) = results(&skip);
    let lines: Vec<u64> = bad.iter().map(|b| b["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [2, 3, 4]);
    let messages: Vec<&str> = bad
        .iter()
        .map(|b| b["error"]["message"].as_str().unwrap())
        .collect();
    assert!(messages[1].contains("colour"), "{messages:?}");
    assert!(messages[2].contains("walletId"), "{messages:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line=2") || stderr.contains("line 2"),
        "{stderr}"
    );

    // Stop: the first bad row ends the intake; the rows after it are not sent.
    let (sandbox, rows) = sandbox_with_wallets(3).await;
    let stop = dir.join("stop.out");
    let mut cmd = create_many(&sandbox.uri(), &input, &stop);
    cmd.args(["--bad-rows", "stop", "--concurrency", "1"]);
    let output = run(cmd).await;
    let doc = summary(&output);
    assert_eq!(output.status.code(), Some(2), "{doc}");
    assert_eq!(doc["run"], "stopped_at_bad_row");
    assert_eq!(sandbox.creates_applied_to(&rows[2].wallet_id), 0);

    // An unknown CSV column is refused before anything is sent.
    let csv = dir.join("bad.csv");
    std::fs::write(&csv, "walletId,userId,colour\n").unwrap();
    let output = run(create_many(&sandbox.uri(), &csv, &dir.join("csv.out"))).await;
    let error = support::assert_error(&output, 2, "invalid_input");
    assert!(
        support::message(&error).contains("line 1: unknown column \"colour\""),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shards_partition_the_input_without_overlap() {
    let (sandbox, rows) = sandbox_with_wallets(40).await;
    let dir = workdir("shards");
    let input = dir.join("wallets.jsonl");
    std::fs::write(&input, jsonl(&rows)).unwrap();
    let mut seen = HashSet::new();
    for k in 1..=3 {
        let out = dir.join(format!("shard{k}.out"));
        let mut cmd = create_many(&sandbox.uri(), &input, &out);
        cmd.args(["--shard", &format!("{k}/3")]);
        let output = run(cmd).await;
        let doc = summary(&output);
        assert_eq!(output.status.code(), Some(0), "{doc}");
        let (outcomes, _) = results(&out);
        assert_eq!(
            doc["otherShard"].as_u64().unwrap() + outcomes.len() as u64,
            40
        );
        for wallet in outcomes.keys() {
            assert!(seen.insert(wallet.clone()), "{wallet} in two shards");
        }
    }
    assert_eq!(seen.len(), 40);
    assert_eq!(sandbox.creates_received(), 40);
}

/// Waits until `results` (or a journal) holds at least `count` lines (however slow the machine), for a run
/// to be cut off mid-way.
async fn outcomes_written(results: &Path, count: usize) {
    for _ in 0..400 {
        let lines = std::fs::read_to_string(results).map_or(0, |text| text.lines().count());
        if lines >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the run wrote fewer than {count} outcomes in 10 s");
}

/// A run that is cut off: `count` wallets, one create in `every` applied and answered after
/// `delay` (so that some are in flight when it stops), the input written, and the paths of
/// the input and the results.
struct CutOff {
    sandbox: Sandbox,
    rows: Vec<Pregenerated>,
    input: PathBuf,
    out: PathBuf,
}

impl CutOff {
    async fn new(name: &str, count: usize, every: u32, delay: Duration) -> Self {
        Self::on(with_wallets(count), name, every, delay).await
    }

    async fn on(
        (builder, rows): (dynamic_waas_sandbox::SandboxBuilder, Vec<Pregenerated>),
        name: &str,
        every: u32,
        delay: Duration,
    ) -> Self {
        let sandbox = builder.start().await;
        sandbox.fail_at_rate(
            Operation::Create,
            Rate::every(every),
            Fault::ApplyThenDelay(delay),
        );
        let dir = workdir(name);
        let input = dir.join("wallets.jsonl");
        std::fs::write(&input, jsonl(&rows)).unwrap();
        let out = dir.join("results.jsonl");
        Self {
            sandbox,
            rows,
            input,
            out,
        }
    }

    /// `--resume` without faults: every wallet ends settled, each create sent once.
    async fn resume(&self) -> Value {
        self.sandbox.clear_faults();
        let mut resume = create_many(&self.sandbox.uri(), &self.input, &self.out);
        resume.arg("--resume");
        let output = run(resume).await;
        let doc = summary(&output);
        assert_eq!(output.status.code(), Some(0), "{doc}");
        assert_every_wallet_settled(&self.sandbox, &self.rows, &self.out);
        // Those in flight were read, not created again.
        assert_eq!(self.sandbox.creates_received(), self.rows.len(), "{doc}");
        doc
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_mid_way_resumes_with_every_id_and_no_create_sent_twice() {
    let cut = CutOff::new("kill", 300, 5, Duration::from_millis(1500)).await;
    // 100 a second: the run takes three seconds and is killed after one.
    let mut cmd = create_many_at(&cut.sandbox.uri(), &cut.input, &cut.out, "6000");
    cmd.args(["--concurrency", "16"]);
    let mut child = spawn(cmd);
    outcomes_written(&cut.out, 20).await;
    child.kill().unwrap(); // SIGKILL
    let killed = wait(child).await;
    assert_eq!(killed.status.code(), None, "killed by a signal");
    let sent_before = cut.sandbox.creates_received();
    let (before, _) = results(&cut.out);
    assert!(
        before.len() < cut.rows.len() && sent_before > before.len(),
        "nothing was in flight"
    );

    let doc = cut.resume().await;
    assert_eq!(doc["skipped"].as_u64(), Some(before.len() as u64), "{doc}");
}

/// Reads lag 1.5 s behind writes, and the server's own duplicate check sees the lagging
/// replica, so a create sent again to an applied wallet is applied twice: a resume at once
/// after SIGKILL must wait settle_after (2 s) from the journal's last write before reading.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_and_resumed_at_once_against_lagging_reads_sends_no_create_twice() {
    let (builder, rows) = with_wallets(120);
    let lagging = builder
        .read_lag(Duration::from_millis(1500))
        .lagging_duplicate_check();
    let cut = CutOff::on((lagging, rows), "kill-lag", 4, Duration::from_millis(800)).await;
    let mut cmd = create_many_at(&cut.sandbox.uri(), &cut.input, &cut.out, "6000");
    cmd.args(["--concurrency", "16"]);
    let mut child = spawn(cmd);
    outcomes_written(&cut.out, 10).await;
    child.kill().unwrap(); // SIGKILL
    wait(child).await;
    // Resumed at once: the wallets in flight were applied less than the lag ago.
    cut.resume().await;
    for row in &cut.rows {
        assert_eq!(cut.sandbox.creates_applied_to(&row.wallet_id), 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_the_intake_and_writes_every_outcome_in_flight() {
    let cut = CutOff::new("ctrl-c", 200, 1, Duration::from_millis(400)).await;
    let mut cmd = create_many(&cut.sandbox.uri(), &cut.input, &cut.out);
    cmd.args(["--concurrency", "8"]);
    let child = spawn(cmd);
    outcomes_written(&cut.out, 8).await;
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let output = wait(child).await;
    let doc = summary(&output);
    assert_eq!(output.status.code(), Some(130), "{doc}");
    assert_eq!(doc["run"], "interrupted");
    // Every create sent has its outcome on disk, and nothing more was sent.
    let (outcomes, _) = results(&cut.out);
    assert_eq!(outcomes.len(), cut.sandbox.creates_received(), "{doc}");
    assert!(outcomes.len() < cut.rows.len());
    assert!(outcomes.values().all(|o| o["status"] == "created"));

    cut.resume().await;
}

/// `--sandbox backup-locations create-many` of `input` into `results`.
#[cfg(feature = "sandbox")]
fn on_embedded_sandbox(input: &Path, results: &Path) -> Command {
    let mut cmd = support::cli();
    cmd.args(["--output", "json"])
        .args([
            "backup-locations",
            "create-many",
            "--sandbox",
            "--location",
            "googleDrive",
        ])
        .args(["--rate", "600000", "--input"])
        .arg(input)
        .arg("--results")
        .arg(results);
    cmd
}

#[cfg(feature = "sandbox")]
#[tokio::test(flavor = "multi_thread")]
async fn the_embedded_sandbox_is_seeded_with_the_inputs_wallets() {
    let dir = workdir("embedded");
    let environment = uuid::Uuid::new_v4();
    let rows: Vec<String> = (0..25)
        .map(|_| {
            serde_json::json!({
                "environmentId": environment,
                "walletId": uuid::Uuid::new_v4(),
                "userId": uuid::Uuid::new_v4(),
            })
            .to_string()
        })
        .collect();
    let input = dir.join("wallets.jsonl");
    std::fs::write(&input, rows.join("\n") + "\n").unwrap();
    let output = run(on_embedded_sandbox(&input, &dir.join("results.jsonl"))).await;
    let doc = summary(&output);
    assert_eq!(output.status.code(), Some(0), "{doc}");
    assert_eq!(doc["created"], 25, "{doc}");

    // One environment only: the sandbox has one token.
    let two = dir.join("two.jsonl");
    let other = rows[0].replace(&environment.to_string(), &uuid::Uuid::new_v4().to_string());
    std::fs::write(&two, format!("{}\n{other}\n", rows[1])).unwrap();
    let output = run(on_embedded_sandbox(&two, &dir.join("two.out"))).await;
    let error = support::assert_error(&output, 2, "invalid_input");
    assert!(
        support::message(&error).contains("one environment"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_ctrl_c_exits_at_once_and_progress_lines_come_without_a_terminal() {
    // Every create answered after 5 s: a drain would take that long.
    let cut = CutOff::new("ctrl-c-twice", 40, 1, Duration::from_secs(5)).await;
    let mut cmd = create_many(&cut.sandbox.uri(), &cut.input, &cut.out);
    cmd.args(["--concurrency", "4", "--progress-interval", "1"]);
    let child = spawn(cmd);
    // Four creates hang (the journal has them); the first progress line comes a second
    // after the start.
    outcomes_written(&PathBuf::from(format!("{}.inflight", cut.out.display())), 4).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let started = std::time::Instant::now();
    for _ in 0..2 {
        let sent = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let output = wait(child).await;
    assert!(started.elapsed() < Duration::from_secs(3), "it drained");
    assert_eq!(output.status.code(), Some(130));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("progress: "), "{stderr}");
    assert!(stderr.contains("exiting at once"), "{stderr}");
    // Nothing was written for the creates cut off; the journal has them.
    let (outcomes, _) = results(&cut.out);
    assert!(outcomes.is_empty());
    cut.resume().await;
}

/// create-many reading `--input -`, with `rows` written to its stdin, which is returned
/// open; and the results file.
fn on_stdin(
    sandbox: &Sandbox,
    rows: &[Pregenerated],
    name: &str,
) -> (std::process::Child, std::process::ChildStdin, PathBuf) {
    let out = workdir(name).join("results.jsonl");
    let mut cmd = create_many(&sandbox.uri(), Path::new("-"), &out);
    cmd.stdin(std::process::Stdio::piped());
    let mut child = spawn(cmd);
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, jsonl(rows).as_bytes()).unwrap();
    (child, stdin, out)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_input_may_come_on_stdin() {
    let (sandbox, rows) = sandbox_with_wallets(5).await;
    let (child, stdin, out) = on_stdin(&sandbox, &rows, "stdin");
    drop(stdin);
    let output = wait(child).await;
    let doc = summary(&output);
    assert_eq!(output.status.code(), Some(0), "{doc}");
    assert_eq!(doc["created"], 5, "{doc}");
    assert_every_wallet_settled(&sandbox, &rows, &out);
}

#[cfg(feature = "sandbox")]
#[tokio::test(flavor = "multi_thread")]
async fn sandbox_serve_seeds_the_wallets_of_an_input_file() {
    use std::io::BufRead;

    let dir = workdir("serve-seed");
    let environment = uuid::Uuid::new_v4();
    let csv: String = (0..6).fold(String::from("walletId,userId,environmentId\n"), |csv, _| {
        csv + &format!(
            "{},{},{environment}\n",
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4()
        )
    });
    let input = dir.join("wallets.csv");
    std::fs::write(&input, csv).unwrap();
    let mut serve = support::cli();
    serve
        .args(["--output", "json", "sandbox", "serve", "--seed-input"])
        .arg(&input);
    let mut serve = spawn(serve);
    let stdout = serve.stdout.take().unwrap();
    let document: String = std::io::BufReader::new(stdout)
        .lines()
        .map(Result::unwrap)
        .take_while(|line| line != "}")
        .collect::<String>()
        + "}";
    let document: Value = serde_json::from_str(&document).unwrap();

    let out = dir.join("results.jsonl");
    let mut cmd = support::cli();
    cmd.env("DYNAMIC_API_TOKEN", document["token"].as_str().unwrap())
        .env("DYNAMIC_BASE_URL", document["url"].as_str().unwrap())
        .args(["--output", "json"])
        .args([
            "backup-locations",
            "create-many",
            "--location",
            "googleDrive",
        ])
        .arg("--input")
        .arg(&input)
        .arg("--results")
        .arg(&out);
    let output = run(cmd).await;
    serve.kill().unwrap();
    serve.wait().unwrap();
    let doc = summary(&output);
    assert_eq!(output.status.code(), Some(0), "{doc}");
    assert_eq!(doc["created"], 6, "{doc}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_fifo_input_is_read_once_and_whole() {
    let (sandbox, rows) = sandbox_with_wallets(30).await;
    let dir = workdir("fifo");
    let fifo = dir.join("wallets.fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let writer = std::thread::spawn({
        let (fifo, text) = (fifo.clone(), jsonl(&rows));
        move || std::fs::write(fifo, text).unwrap()
    });
    let out = dir.join("results.jsonl");
    let output = run(create_many(&sandbox.uri(), &fifo, &out)).await;
    writer.join().unwrap();
    let doc = summary(&output);
    assert_eq!(output.status.code(), Some(0), "{doc}");
    // No row taken by a second reader (the progress count must not open a pipe).
    assert_eq!(doc["created"], 30, "{doc}");
    assert_every_wallet_settled(&sandbox, &rows, &out);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wallet_twice_in_the_input_waits_for_the_first_and_is_sent_once() {
    let (sandbox, rows) = sandbox_with_wallets(2).await;
    // The first create is slow: the second row of its wallet arrives while it is in flight.
    sandbox.fail_next(
        Operation::Create,
        1,
        Fault::ApplyThenDelay(Duration::from_millis(300)),
    );
    let dir = workdir("twice");
    let input = dir.join("wallets.jsonl");
    let text = jsonl(&rows);
    let lines: Vec<&str> = text.lines().collect();
    // Line 1 and line 3 name the same wallet; line 2 is not UTF-8.
    let mut bytes = format!("{}\n", lines[0]).into_bytes();
    bytes.extend_from_slice(b"{\"walletId\": \"\xff\xfe\"}\n");
    bytes.extend_from_slice(format!("{}\n{}\n", lines[0], lines[1]).as_bytes());
    std::fs::write(&input, bytes).unwrap();
    let out = dir.join("results.jsonl");
    let output = run(create_many(&sandbox.uri(), &input, &out)).await;
    let doc = summary(&output);
    assert_eq!(doc["invalid"], 1, "{doc}");
    let text = std::fs::read_to_string(&out).unwrap();
    let outcomes: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of_line = |n: u64| {
        outcomes
            .iter()
            .find(|o| o["line"] == n)
            .unwrap_or_else(|| panic!("no line {n} in {text}"))
    };
    assert_eq!(of_line(2)["status"], "invalid");
    assert!(of_line(2)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("UTF-8"));
    // The row after the bad line is not lost.
    assert_eq!(of_line(4)["walletId"], rows[1].wallet_id.to_string());
    let first = &rows[0].wallet_id.to_string();
    assert_eq!(of_line(1)["walletId"], *first);
    assert_eq!(of_line(3)["walletId"], *first);
    // The second row waited for the first's outcome: a duplicate, with its ids, never sent.
    assert_eq!(of_line(3)["status"], "duplicate", "{text}");
    assert_eq!(of_line(3)["keyShares"], of_line(1)["keyShares"]);
    assert_eq!(doc["duplicate"], 1, "{doc}");
    for n in [1, 3, 4] {
        assert_eq!(of_line(n)["nextRun"], "skip", "{}", of_line(n));
    }
    assert_eq!(sandbox.creates_applied_to(&rows[0].wallet_id), 1);
    assert_eq!(sandbox.creates_received(), 2, "one create per wallet sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stray_csv_quote_makes_its_own_line_bad_and_every_other_row_is_read() {
    let (sandbox, rows) = sandbox_with_wallets(200).await;
    let dir = workdir("stray-quote");
    let mut csv = String::from("environmentId,walletId,userId\n");
    for (i, r) in rows.iter().enumerate() {
        let quote = if i == 9 { "\"" } else { "" };
        csv += &format!(
            "{},{quote}{},{}\n",
            r.environment_id, r.wallet_id, r.user_id
        );
    }
    let input = dir.join("wallets.csv");
    std::fs::write(&input, csv).unwrap();
    let out = dir.join("results.jsonl");
    let output = run(create_many(&sandbox.uri(), &input, &out)).await;
    let doc = summary(&output);
    // Every data line is accounted for: 199 created, line 11 bad.
    assert_eq!(doc["rows"], 200, "{doc}");
    assert_eq!(
        (&doc["created"], &doc["invalid"]),
        (&Value::from(199), &Value::from(1)),
        "{doc}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 11: a quote is opened and never closed"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("line 11").count(),
        1,
        "reported once: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_input_that_is_not_lines_ends_with_an_error_in_bounded_time() {
    let (sandbox, _) = sandbox_with_wallets(1).await;
    let dir = workdir("dev-zero");
    for format in ["csv", "jsonl"] {
        let out = dir.join(format!("{format}.out"));
        let mut cmd = create_many(&sandbox.uri(), Path::new("/dev/zero"), &out);
        cmd.args(["--format", format]);
        let started = std::time::Instant::now();
        let output = run(cmd).await;
        assert!(started.elapsed() < Duration::from_secs(20), "{format}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{format}: {stderr}");
        assert!(stderr.contains("not a file of lines"), "{format}: {stderr}");
    }
    assert_eq!(sandbox.creates_received(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn results_that_are_the_input_by_another_name_are_refused_and_never_cut() {
    let (sandbox, rows) = sandbox_with_wallets(3).await;
    let dir = workdir("same-file");
    let input = dir.join("wallets.jsonl");
    // No last newline: a results file would have it cut as a torn line.
    let text = jsonl(&rows);
    std::fs::write(&input, text.trim_end()).unwrap();
    // A hard link, and stdin redirected from the results file.
    let link = dir.join("results.jsonl");
    std::fs::hard_link(&input, &link).unwrap();
    let mut by_link = create_many(&sandbox.uri(), &input, &link);
    by_link.arg("--resume");
    let output = run(by_link).await;
    let error = support::assert_error(&output, 2, "invalid_input");
    assert!(
        support::message(&error).contains("the same file"),
        "{error}"
    );
    let mut by_stdin = create_many(&sandbox.uri(), Path::new("-"), &link);
    by_stdin
        .arg("--resume")
        .stdin(std::fs::File::open(&input).unwrap());
    let output = run(by_stdin).await;
    let error = support::assert_error(&output, 2, "invalid_input");
    assert!(
        support::message(&error).contains("the same file"),
        "{error}"
    );
    // Another file that holds no outcomes is not resumed from either.
    let other = dir.join("other.csv");
    std::fs::write(&other, "environmentId,walletId,userId\n").unwrap();
    let mut foreign = create_many(&sandbox.uri(), &input, &other);
    foreign.arg("--resume");
    let output = run(foreign).await;
    let error = support::assert_error(&output, 2, "invalid_input");
    assert!(
        support::message(&error).contains("does not look like"),
        "{error}"
    );
    assert_eq!(std::fs::read_to_string(&input).unwrap(), text.trim_end());
    assert_eq!(
        std::fs::read_to_string(&other).unwrap(),
        "environmentId,walletId,userId\n"
    );
    assert_eq!(sandbox.creates_received(), 0);
}

/// A filesystem too small for the results: every outcome the disk did not take is on
/// stderr, whole, and no key share id is lost. Needs a tmpfs mount (root); skipped without.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_loses_no_id_every_outcome_not_on_disk_goes_to_stderr() {
    let dir = workdir("full-disk");
    let mount = dir.join("small");
    std::fs::create_dir_all(&mount).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
        .arg(&mount)
        .output()
        .is_ok_and(|o| o.status.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    let (sandbox, rows) = sandbox_with_wallets(200).await;
    let input = dir.join("wallets.jsonl");
    std::fs::write(&input, jsonl(&rows)).unwrap();
    let out = mount.join("results.jsonl");
    let output = run(create_many(&sandbox.uri(), &input, &out)).await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let on_disk = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = Command::new("umount").arg(&mount).status();
    assert_ne!(output.status.code(), Some(0), "the disk filled: {stderr}");
    // Every wallet that got a create has its ids in a whole line, on disk or on stderr.
    let mut recorded: HashMap<String, Value> = HashMap::new();
    let on_stderr = stderr
        .lines()
        .filter_map(|l| l.split_once("result not written to the results file: "))
        .map(|(_, line)| line.to_owned());
    for line in on_disk.lines().map(str::to_owned).chain(on_stderr) {
        if let Ok(value) = serde_json::from_str::<Value>(&line) {
            if let Some(wallet) = value["walletId"].as_str() {
                recorded.insert(wallet.to_owned(), value);
            }
        }
    }
    for row in &rows {
        if sandbox.creates_applied_to(&row.wallet_id) == 0 {
            continue;
        }
        let wallet = row.wallet_id.to_string();
        let outcome = recorded
            .get(&wallet)
            .unwrap_or_else(|| panic!("{wallet}'s ids are lost: {stderr}"));
        let held: Vec<String> = sandbox
            .key_shares(&row.wallet_id)
            .unwrap()
            .iter()
            .map(|s| s.id.to_string())
            .collect();
        assert_eq!(key_share_ids(outcome), held);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_run_says_its_pace_reports_bad_rows_once_and_ends_its_text_summary_with_a_newline() {
    let (sandbox, rows) = sandbox_with_wallets(2).await;
    let dir = workdir("operator-output");
    let input = dir.join("wallets.jsonl");
    let text =
        jsonl(&rows) + "{\"walletId\": \"w\", \"userId\": \"U\", \"colour\": 1}\nwalletId,userId\n";
    std::fs::write(&input, text).unwrap();
    let out = dir.join("results.jsonl");
    let mut cmd = support::cli();
    cmd.env("DYNAMIC_API_TOKEN", TOKEN)
        .env("DYNAMIC_BASE_URL", sandbox.uri())
        .args(["--output", "text", "backup-locations", "create-many"])
        .args(["--location", "googleDrive", "--rate", "60000", "--input"])
        .arg(&input)
        .arg("--results")
        .arg(&out);
    let output = run(cmd).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(9), "{stderr}");
    assert!(stdout.ends_with('\n'), "{stdout:?}");
    assert!(
        stdout.starts_with("complete_with_failures: 4 rows"),
        "{stdout}"
    );
    // The pace, and which limit binds: --rate 60000 is not reached within one environment.
    assert!(
        stderr.contains("The per environment limit binds"),
        "{stderr}"
    );
    assert!(stderr.contains("--rate 60000 is not reached"), "{stderr}");
    // Each bad row once, with every problem, in plain words.
    assert_eq!(stderr.matches("line 3:").count(), 1, "{stderr}");
    for says in ["colour", "environmentId: missing", "walletId", "userId"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with("line 3:") && l.contains(says)),
            "{says}: {stderr}"
        );
    }
    assert!(stderr.contains("line 4: not valid JSON"), "{stderr}");
    assert!(!stderr.contains("WARN"), "{stderr}");
    assert!(!stderr.contains("nothing was sent"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_run_at_a_time_per_results_file_and_never_onto_its_input() {
    let cut = CutOff::new("lock", 20, 1, Duration::from_secs(3)).await;
    let first = spawn(create_many(&cut.sandbox.uri(), &cut.input, &cut.out));
    outcomes_written(&PathBuf::from(format!("{}.inflight", cut.out.display())), 1).await;
    let mut second = create_many(&cut.sandbox.uri(), &cut.input, &cut.out);
    second.arg("--resume");
    let output = run(second).await;
    let error = support::assert_error(&output, 2, "invalid_input");
    assert!(
        support::message(&error).contains("another create-many"),
        "{error}"
    );
    let mut first = first;
    first.kill().unwrap();
    wait(first).await;

    // Onto its own input (one without a last newline, which a results file would have cut):
    // refused before anything is changed or created.
    let input = cut.input.with_file_name("no-newline.jsonl");
    let text = std::fs::read_to_string(&cut.input).unwrap();
    std::fs::write(&input, text.trim_end()).unwrap();
    let mut onto_input = create_many(&cut.sandbox.uri(), &input, &input);
    onto_input.arg("--resume");
    let output = run(onto_input).await;
    let error = support::assert_error(&output, 2, "invalid_input");
    assert!(
        support::message(&error).contains("the same file"),
        "{error}"
    );
    assert_eq!(std::fs::read_to_string(&input).unwrap(), text.trim_end());
    assert!(!PathBuf::from(format!("{}.inflight", input.display())).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_failures_in_a_row_stop_the_intake() {
    let (sandbox, rows) = sandbox_with_wallets(300).await;
    let dir = workdir("failures");
    // Every row names an environment the token may not use: 403 for each.
    let other = uuid::Uuid::new_v4().to_string();
    let text = jsonl(&rows).replace(&rows[0].environment_id.to_string(), &other);
    let input = dir.join("wallets.jsonl");
    std::fs::write(&input, text).unwrap();
    let out = dir.join("results.jsonl");
    let mut cmd = create_many(&sandbox.uri(), &input, &out);
    cmd.args(["--concurrency", "4"]);
    let output = run(cmd).await;
    let doc = summary(&output);
    assert_eq!(output.status.code(), Some(9), "{doc}");
    assert_eq!(doc["run"], "stopped_after_failures", "{doc}");
    let failed = doc["failed"].as_u64().unwrap();
    assert!((100..=110).contains(&failed), "{doc}");
    assert_eq!(doc["needsAnotherRun"], failed, "{doc}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("100 wallets in a row failed alike (the last: forbidden)"),
        "{stderr}"
    );

    // Wallets that fail one by one (404: not there) do not stop the run: a resume must get
    // past a block of them.
    let missing: String = (0..150)
        .map(|_| {
            serde_json::json!({
                "environmentId": rows[0].environment_id,
                "walletId": uuid::Uuid::new_v4(),
                "userId": uuid::Uuid::new_v4(),
            })
            .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(&input, missing).unwrap();
    let out = dir.join("missing.jsonl");
    let output = run(create_many(&sandbox.uri(), &input, &out)).await;
    let doc = summary(&output);
    assert_eq!(output.status.code(), Some(9), "{doc}");
    assert_eq!(doc["run"], "complete_with_failures", "{doc}");
    assert_eq!(doc["failed"], 150, "{doc}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_ends_a_run_whose_stdin_stays_open() {
    let (sandbox, rows) = sandbox_with_wallets(5).await;
    // The rows are written, and stdin stays open: the reader waits for more.
    let (child, stdin, out) = on_stdin(&sandbox, &rows, "stdin-open");
    outcomes_written(&out, 5).await;
    let started = std::time::Instant::now();
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let output = wait(child).await;
    drop(stdin);
    assert!(started.elapsed() < Duration::from_secs(5), "it hung");
    let doc = summary(&output);
    assert_eq!(output.status.code(), Some(130), "{doc}");
    assert_eq!(doc["created"], 5, "{doc}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_says_what_a_run_would_do_and_sends_and_writes_nothing() {
    let (sandbox, rows) = sandbox_with_wallets(3).await;
    let dir = workdir("dry-run");
    let input = dir.join("wallets.jsonl");
    let out = dir.join("results.jsonl");
    // An earlier run: the first wallet done, the second in flight when it died.
    std::fs::write(&input, jsonl(&rows[..1])).unwrap();
    assert!(run(create_many(&sandbox.uri(), &input, &out))
        .await
        .status
        .success());
    let journal = PathBuf::from(format!("{}.inflight", out.display()));
    let mut entries = std::fs::read_to_string(&journal).unwrap();
    let offset = std::fs::metadata(&out).unwrap().len();
    entries += &format!(
        "{}\n",
        serde_json::json!({"walletId": rows[1].wallet_id, "line": 2, "resultsOffset": offset})
    );
    std::fs::write(&journal, entries).unwrap();
    std::fs::write(&input, jsonl(&rows) + "{\"walletId\": 7}\n").unwrap();
    let before = (std::fs::read(&out).unwrap(), sandbox.requests_received());

    // No token is needed: nothing is sent.
    let mut cmd = support::cli();
    cmd.args([
        "--output",
        "json",
        "backup-locations",
        "create-many",
        "--dry-run",
    ])
    .args(["--resume", "--location", "googleDrive", "--input"])
    .arg(&input)
    .arg("--results")
    .arg(&out);
    let output = run(cmd).await;
    let doc = summary(&output);
    assert_eq!(output.status.code(), Some(2), "{doc}");
    assert_eq!(doc["run"], "dry_run");
    assert_eq!(
        (
            &doc["skipped"],
            &doc["wouldReadFirst"],
            &doc["wouldCreate"],
            &doc["invalid"]
        ),
        (
            &Value::from(1),
            &Value::from(1),
            &Value::from(1),
            &Value::from(1)
        ),
        "{doc}"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 4: "));
    assert_eq!(
        before,
        (std::fs::read(&out).unwrap(), sandbox.requests_received())
    );
}
