//! `cargo xtask bench --bulk`: `create-many` end to end, as an operator runs it, against a
//! sandbox in another process (release builds of both, from the CLI binary).
//!
//! - **paced**: upstream's limits on a scaled clock, the CLI at its default share of them:
//!   achieved rate over the configured one, and 429s over requests.
//! - **faults**: 10 % of creates applied and then answered 502: every applied create's ids
//!   must be in the results file, and no create may reach a wallet already applied.
//! - **memory**: the CLI's peak RSS and CPU per wallet for a short and a long input, unpaced:
//!   flat memory means the long input's peak is no higher.
//! - **shared limit**: the server admits fewer requests than the CLI is told (1.3x and 2x
//!   over, a sliding window and a token bucket, and an allowance that drops to 60 % and comes
//!   back): the 429s it costs to find the limit in the first 10 s, then the rate achieved
//!   against the allowance and the share of 429s.
//! - **resume memory**: `--resume` over a results file of 1,000,000 settled wallets, with
//!   10,000 more to create: the CLI's peak RSS.
//!
//! The CLI's peak RSS and CPU are read from `/proc/<pid>` while it runs (Linux only).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::generate::workspace_root;

/// Upstream's limits a minute, and the CLI's defaults (4 % under).
const CLIENT_LIMIT: f64 = 1_500.0;
const CLI_RATE: f64 = 1_440.0;
const CLI_ENV_RATE: f64 = 2_880.0;

/// The release CLI, and a fresh folder for the runs' files.
fn build() -> Result<(PathBuf, PathBuf)> {
    let root = workspace_root();
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(&root)
        .args(["build", "--quiet", "--release", "-p", "dynamic-waas-cli"])
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("the CLI did not build");
    }
    let dir = root.join("target/bulk-bench");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok((root.join("target/release/dynamic-waas"), dir))
}

pub fn run(quick: bool) -> Result<ExitCode> {
    let (bin, dir) = build()?;
    let scale = 20.0;
    let mut ok = true;

    // Paced: at a scale of 20, a "minute" lasts 3 s.
    let wallets = if quick { 1_500 } else { 6_000 };
    let paced = Scenario::new(&bin, &dir, "paced", wallets)
        .serve_args(&["--upstream-limits", "--time-scale", &scale.to_string()])
        .run_args(&[
            "--rate",
            &(CLI_RATE * scale).to_string(),
            "--env-rate",
            &(CLI_ENV_RATE * scale).to_string(),
            "--concurrency",
            "32",
        ])
        .run()?;
    let requests = paced.summary["requestsSent"].as_f64().unwrap_or(0.0);
    let rate_limited = paced.summary["rateLimited"].as_f64().unwrap_or(0.0);
    let achieved = requests / paced.elapsed.as_secs_f64();
    let configured = CLI_RATE * scale / 60.0;
    let ratio = achieved / configured;
    let share_429 = rate_limited / requests.max(1.0);
    println!(
        "paced: {wallets} wallets, {requests} requests in {:.2} s: {achieved:.1}/s against {configured:.1}/s configured ({:.0}/s upstream), ratio {ratio:.3}; 429s {rate_limited} ({:.2} %); CPU {:.0} µs/wallet",
        paced.elapsed.as_secs_f64(),
        CLIENT_LIMIT * scale / 60.0,
        share_429 * 100.0,
        paced.cpu_per_wallet_us(wallets),
    );
    ok &= check("achieved rate / configured >= 0.95", ratio >= 0.95);
    ok &= check("429s <= 1 % of requests", share_429 <= 0.01);

    // Faults: 10 % applied then lost.
    let wallets = if quick { 1_000 } else { 5_000 };
    let faults = Scenario::new(&bin, &dir, "faults", wallets)
        .serve_args(&["--ambiguous-faults", "0.1"])
        .run()?;
    let (lost, duplicates, reconciled) = faults.verify()?;
    println!(
        "faults: {wallets} wallets, 10 % applied then answered 502: {reconciled} reconciled, {lost} applied creates without their ids in the results, {duplicates} creates sent to a wallet already applied; {:.2} s",
        faults.elapsed.as_secs_f64()
    );
    ok &= check("0 lost key share ids", lost == 0);
    ok &= check("0 creates sent to an applied wallet", duplicates == 0);

    // Memory: a short and a long input, unpaced.
    let (short, long) = if quick {
        (2_000, 20_000)
    } else {
        (10_000, 100_000)
    };
    let mut peaks = Vec::new();
    for wallets in [short, long] {
        let run = Scenario::new(&bin, &dir, &format!("memory-{wallets}"), wallets)
            .run_args(&["--concurrency", "64"])
            .run()?;
        println!(
            "memory: {wallets} rows: peak RSS {} KiB, CPU {:.0} µs/wallet, {:.0} wallets/s unpaced",
            run.peak_kib,
            run.cpu_per_wallet_us(wallets),
            wallets as f64 / run.elapsed.as_secs_f64()
        );
        peaks.push(run.peak_kib);
    }
    let growth = peaks[1] as f64 / peaks[0].max(1) as f64;
    println!("memory: peak with {long} rows / with {short} rows: {growth:.2}");
    ok &= check("flat memory (long / short peak <= 1.2)", growth <= 1.2);

    ok &= shared_limits(&bin, &dir, quick)?;
    ok &= resume_memory(&bin, &dir, quick)?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `cargo xtask soak --bulk`: `create-many` killed with SIGKILL at random moments, `rounds`
/// times, each run resuming the last, under 10 % ambiguous faults and paced, then resumed to
/// the end: no id may be lost, and the creates sent to a wallet already applied are counted.
pub fn soak(rounds: usize) -> Result<ExitCode> {
    let (bin, dir) = build()?;
    let wallets = 3_000;
    let run = Scenario::new(&bin, &dir, "soak", wallets)
        // Reads 300 ms behind, and the service's duplicate check behind as well: a resumed run
        // that read too early and created again would have the create applied twice.
        .serve_args(&[
            "--ambiguous-faults",
            "0.1",
            "--read-lag",
            "0.3",
            "--lagging-duplicate-check",
        ])
        .run_args(&[
            "--rate",
            "12000",
            "--env-rate",
            "60000",
            "--concurrency",
            "32",
        ])
        .killed(rounds)
        .run()?;
    let (lost, duplicates, reconciled) = run.verify()?;
    let settled = run.summary["skipped"].as_u64().unwrap_or(0);
    println!(
        "soak: {wallets} wallets at 200 requests/s, 10 % applied then answered 502, reads 300 ms behind writes, {rounds} runs killed with SIGKILL at random moments, each resumed at once: the last resume found {settled} settled and finished the rest ({reconciled} reconciled in the final results); {lost} applied creates without their ids; {duplicates} creates sent to a wallet already applied"
    );
    let mut ok = check("0 lost key share ids", lost == 0);
    ok &= check("0 creates sent to an applied wallet", duplicates == 0);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The server admits `LIMIT` requests a second from the CLI's address, while the CLI is told
/// more: the achieved rate of admitted requests over the allowance, and 429s over requests.
fn shared_limits(bin: &Path, dir: &Path, quick: bool) -> Result<bool> {
    const LIMIT: f64 = 100.0;
    const SETTLED: f64 = 10.0;
    let mut ok = true;
    let seconds = if quick { 40.0 } else { 90.0 };
    for kind in ["sliding-window", "token-bucket"] {
        for over in [1.3, 2.0] {
            let rate = (LIMIT * over * 60.0).round().to_string();
            let name = format!("limit-{kind}-{over}");
            let wallets = (LIMIT * seconds) as usize;
            let run = Scenario::new(bin, dir, &name, wallets)
                .serve_args(&["--limit", "100", "--limit-kind", kind])
                .run_args(&["--rate", &rate, "--env-rate", &rate, "--concurrency", "32"])
                .rate_log()
                .run()?;
            // The first seconds find the limit; after them the pace should sit at it.
            let startup = run.window(0.0, SETTLED, |_| LIMIT)?;
            let steady = run.window(SETTLED, f64::INFINITY, |_| LIMIT)?;
            println!(
                "shared limit: {kind}, told {over}x the {LIMIT} a second admitted: {} 429s in the first {SETTLED} s; after them achieved {:.3} of the allowance, 429s {:.2} % of requests ({} wallets, {:.1} s)",
                startup.refused,
                steady.achieved,
                steady.refused_share * 100.0,
                wallets,
                run.elapsed.as_secs_f64()
            );
            ok &= check(
                "finding the limit costs at most 3 seconds of allowance in 429s",
                startup.refused as f64 <= 3.0 * LIMIT,
            );
            ok &= check(
                "achieved >= 0.90 of the allowance after",
                steady.achieved >= 0.90,
            );
            ok &= check(
                "429s <= 1 % of requests after",
                steady.refused_share <= 0.01,
            );
        }
        if quick {
            continue;
        }
        // The allowance drops to 60 % at 60 s and comes back at 120 s; told 1.3x.
        let schedule = |t: f64| {
            if (60.0..120.0).contains(&t) {
                0.6 * LIMIT
            } else {
                LIMIT
            }
        };
        let name = format!("limit-{kind}-drop");
        let wallets = (LIMIT * 190.0) as usize;
        let rate = (LIMIT * 1.3 * 60.0).round().to_string();
        let run = Scenario::new(bin, dir, &name, wallets)
            .serve_args(&[
                "--limit",
                "100",
                "--limit-kind",
                kind,
                "--limit-schedule",
                "60=0.6,120=1",
            ])
            .run_args(&["--rate", &rate, "--env-rate", &rate, "--concurrency", "32"])
            .rate_log()
            .run()?;
        let during = run.window(70.0, 120.0, schedule)?.achieved;
        let after = run.window(180.0, 190.0, schedule)?.achieved;
        let refused = run.window(SETTLED, f64::INFINITY, schedule)?.refused_share;
        println!(
            "shared limit: {kind}, allowance down to 60 % at 60 s and back at 120 s, told 1.3x: achieved {during:.3} of the lowered allowance (70-120 s), {after:.3} of the restored one a minute after (180-190 s); 429s {:.2} % of requests",
            refused * 100.0
        );
        ok &= check("achieved >= 0.85 of the lowered allowance", during >= 0.85);
        ok &= check("recovered to >= 0.90 within a minute", after >= 0.90);
        ok &= check("429s <= 2 % of requests", refused <= 0.02);
    }
    Ok(ok)
}

/// `--resume` over 1,000,000 settled wallets (100,000 with --quick) and 10,000 to create.
fn resume_memory(bin: &Path, dir: &Path, quick: bool) -> Result<bool> {
    let settled: usize = if quick { 100_000 } else { 1_000_000 };
    let fresh = 10_000;
    let scenario = Scenario::new(bin, dir, "resume-memory", fresh).prepare_resume(settled);
    let run = scenario.run()?;
    let skipped = run.summary["skipped"].as_u64().unwrap_or(0);
    let created = run.summary["created"].as_u64().unwrap_or(0);
    println!(
        "resume memory: --resume over {settled} settled wallets and {fresh} to create: peak RSS {} KiB ({:.1} MiB); skipped {skipped}, created {created}; {:.1} s",
        run.peak_kib,
        run.peak_kib as f64 / 1024.0,
        run.elapsed.as_secs_f64()
    );
    let mut ok = check(
        "every settled wallet skipped, every fresh one created",
        skipped == settled as u64 && created == fresh as u64,
    );
    ok &= check("peak RSS <= 64 MiB", run.peak_kib <= 64 * 1024);
    Ok(ok)
}

fn check(what: &str, held: bool) -> bool {
    println!("  {} {what}", if held { "ok  " } else { "FAIL" });
    held
}

struct Scenario<'a> {
    bin: &'a Path,
    dir: &'a Path,
    name: String,
    wallets: usize,
    serve: Vec<String>,
    create: Vec<String>,
    /// Runs killed with SIGKILL at a random moment before the measured one, which resumes.
    kills: usize,
    /// The sandbox logs what it admits each second.
    rate_log: bool,
    /// Before the run, a results file of this many settled wallets (not in the sandbox) and
    /// an input that names them first; the run resumes.
    settled: usize,
}

/// What the sandbox admitted over some seconds of a run.
struct Window {
    /// Admitted requests over the allowance.
    achieved: f64,
    /// Refused requests over requests.
    refused_share: f64,
    refused: u64,
}

struct Outcome {
    summary: Value,
    elapsed: Duration,
    peak_kib: u64,
    cpu: Duration,
    results: PathBuf,
    state: PathBuf,
    sandbox: Value,
    rate_log: Option<PathBuf>,
}

impl<'a> Scenario<'a> {
    fn new(bin: &'a Path, dir: &'a Path, name: &str, wallets: usize) -> Self {
        Self {
            bin,
            dir,
            name: name.to_owned(),
            wallets,
            serve: Vec::new(),
            create: vec![
                "--rate".into(),
                "10000000".into(),
                "--env-rate".into(),
                "10000000".into(),
            ],
            kills: 0,
            rate_log: false,
            settled: 0,
        }
    }

    fn rate_log(mut self) -> Self {
        self.rate_log = true;
        self
    }

    fn prepare_resume(mut self, settled: usize) -> Self {
        self.settled = settled;
        self
    }

    fn killed(mut self, times: usize) -> Self {
        self.kills = times;
        self
    }

    fn serve_args(mut self, args: &[&str]) -> Self {
        self.serve.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Replaces the default (unpaced) rates when it names them.
    fn run_args(mut self, args: &[&str]) -> Self {
        if args.contains(&"--rate") {
            self.create.clear();
        }
        self.create.extend(args.iter().map(|a| a.to_string()));
        self
    }

    fn run(self) -> Result<Outcome> {
        let input = self.dir.join(format!("{}.jsonl", self.name));
        let results = self.dir.join(format!("{}.out", self.name));
        let state = self.dir.join(format!("{}.state", self.name));
        let rate_log = self
            .rate_log
            .then(|| self.dir.join(format!("{}.rates", self.name)));
        let mut serve = Command::new(self.bin)
            .args(["--output", "json", "sandbox", "serve", "--wallets"])
            .arg(self.wallets.to_string())
            .arg("--write-input")
            .arg(&input)
            .arg("--dump-state")
            .arg(&state)
            .args(&self.serve)
            .args(
                rate_log
                    .iter()
                    .flat_map(|path| [std::ffi::OsStr::new("--rate-log"), path.as_os_str()]),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting the sandbox")?;
        let document = read_document(&mut serve)?;
        let url = document["url"]
            .as_str()
            .context("the sandbox's URL")?
            .to_owned();
        let token = document["token"]
            .as_str()
            .context("the sandbox's token")?
            .to_owned();

        if self.settled > 0 {
            write_settled(&input, &results, self.settled)?;
        }
        let create_many = |resume: bool| {
            let mut create = Command::new(self.bin);
            create
                .env("DYNAMIC_API_TOKEN", &token)
                .env("DYNAMIC_BASE_URL", &url)
                // Each settled fault is a warning; the results file has them all.
                .env("RUST_LOG", "error")
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
                .arg(&results)
                .args(["--progress-interval", "0"])
                .args(&self.create)
                .stdout(Stdio::piped())
                .stderr(Stdio::null());
            if resume {
                create.arg("--resume");
            }
            create
        };
        let mut random = Random::new();
        for round in 0..self.kills {
            let mut killed = create_many(round > 0)
                .spawn()
                .context("starting create-many")?;
            std::thread::sleep(Duration::from_millis(100 + random.below(1_400)));
            killed.kill()?;
            killed.wait()?;
        }
        let started = Instant::now();
        let mut create = create_many(self.kills > 0 || self.settled > 0)
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting create-many")?;
        let (peak_kib, cpu) = watch(&mut create)?;
        let output = create.wait_with_output()?;
        let elapsed = started.elapsed();
        let summary: Value = serde_json::from_slice(&output.stdout)
            .with_context(|| format!("{}: the summary is not JSON", self.name))?;
        if !output.status.success() {
            bail!(
                "{}: create-many failed ({}): {summary}",
                self.name,
                output.status
            );
        }
        let sandbox = stop(serve)?;
        Ok(Outcome {
            summary,
            elapsed,
            peak_kib,
            cpu,
            results,
            state,
            sandbox,
            rate_log,
        })
    }
}

/// Prepends `count` rows of wallets the sandbox does not have to `input`, and writes a
/// results file in which each is settled (created, with a key share): a resumed run skips them.
fn write_settled(input: &Path, results: &Path, count: usize) -> Result<()> {
    use std::io::Write;
    let fresh = std::fs::read_to_string(input)?;
    let environment = fresh
        .lines()
        .next()
        .and_then(|l| serde_json::from_str::<Value>(l).ok())
        .and_then(|v| v["environmentId"].as_str().map(str::to_owned))
        .context("the input's environment")?;
    let mut rows = std::io::BufWriter::new(std::fs::File::create(input)?);
    let mut outcomes = std::io::BufWriter::new(std::fs::File::create(results)?);
    let mut random = Random::new();
    let mut uuid = || {
        let (a, b) = (random.below(u64::MAX), random.below(u64::MAX));
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0xfff,
            b & 0xffff_ffff_ffff
        )
    };
    for line in 1..=count {
        let (wallet, user, share) = (uuid(), uuid(), uuid());
        writeln!(
            rows,
            r#"{{"environmentId":"{environment}","walletId":"{wallet}","userId":"{user}"}}"#
        )?;
        writeln!(
            outcomes,
            r#"{{"environmentId":"{environment}","walletId":"{wallet}","status":"created","keyShares":[{{"location":"googleDrive","keyShareId":"{share}","externalKeyShareId":"{share}"}}],"requestId":"{share}","attempts":1,"line":{line},"nextRun":"skip"}}"#
        )?;
    }
    rows.write_all(fresh.as_bytes())?;
    rows.flush()?;
    outcomes.flush()?;
    Ok(())
}

impl Outcome {
    /// What the sandbox admitted in the seconds after `from` up to `to`, counted from the
    /// first second a request came in: admitted requests over what `allowed(t)` admits, and
    /// the requests refused then.
    fn window(&self, from: f64, to: f64, allowed: impl Fn(f64) -> f64) -> Result<Window> {
        let path = self.rate_log.as_ref().context("no rate log")?;
        let seconds: Vec<Value> = std::fs::read_to_string(path)?
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let count = |second: &Value, key: &str| second[key].as_f64().unwrap_or(0.0);
        let start = seconds
            .iter()
            .find(|s| count(s, "received") > 0.0)
            .map_or(0.0, |s| count(s, "second") - 1.0);
        // The last second is cut off by the end of the run.
        let last = seconds.len().saturating_sub(1);
        let (mut admitted, mut allowance, mut received, mut refused) = (0.0, 0.0, 0.0, 0.0);
        for second in &seconds[..last] {
            let t = count(second, "second") - start;
            if t > from && t <= to {
                let (got, no) = (count(second, "received"), count(second, "rateLimited"));
                received += got;
                refused += no;
                admitted += got - no;
                allowance += allowed(t - 0.5);
            }
        }
        Ok(Window {
            achieved: admitted / f64::max(allowance, 1.0),
            refused_share: refused / f64::max(received, 1.0),
            refused: refused as u64,
        })
    }

    fn cpu_per_wallet_us(&self, wallets: usize) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / wallets.max(1) as f64
    }

    /// Lost ids (a wallet with an applied create whose ids the results do not hold),
    /// creates sent to an applied wallet, and reconciled outcomes.
    fn verify(&self) -> Result<(usize, u64, usize)> {
        let mut last: HashMap<String, Value> = HashMap::new();
        for line in std::fs::read_to_string(&self.results)?.lines() {
            let value: Value = serde_json::from_str(line)?;
            if let Some(wallet) = value["walletId"].as_str() {
                last.insert(wallet.to_owned(), value);
            }
        }
        let reconciled = last
            .values()
            .filter(|v| v["status"] == "reconciled")
            .count();
        let mut lost = 0;
        for line in std::fs::read_to_string(&self.state)?.lines() {
            let state: Value = serde_json::from_str(line)?;
            if state["createsApplied"].as_u64() == Some(0) {
                continue;
            }
            let held: Vec<&str> = ids(&state["keyShareIds"], None);
            let recorded = state["walletId"]
                .as_str()
                .and_then(|w| last.get(w))
                .map(|o| ids(&o["keyShares"], Some("keyShareId")))
                .unwrap_or_default();
            if held != recorded {
                lost += 1;
            }
        }
        let received = self.sandbox["createsReceived"].as_u64().unwrap_or(0);
        let applied = self.sandbox["createsApplied"].as_u64().unwrap_or(0);
        Ok((lost, received.saturating_sub(applied), reconciled))
    }
}

fn ids<'v>(list: &'v Value, field: Option<&str>) -> Vec<&'v str> {
    let mut ids: Vec<&str> = list
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| match field {
                    Some(f) => v[f].as_str(),
                    None => v.as_str(),
                })
                .collect()
        })
        .unwrap_or_default();
    ids.sort_unstable();
    ids
}

/// The sandbox's first document on stdout (pretty-printed JSON, ending with `}`).
fn read_document(serve: &mut Child) -> Result<Value> {
    let stdout = serve.stdout.take().context("the sandbox's stdout")?;
    let mut text = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        text.push_str(&line);
        if line == "}" {
            break;
        }
    }
    serde_json::from_str(&text).with_context(|| format!("the sandbox printed {text:?}"))
}

/// Stops the sandbox with SIGINT and reads the counts it prints.
fn stop(mut serve: Child) -> Result<Value> {
    let status = Command::new("kill")
        .args(["-INT", &serve.id().to_string()])
        .status()?;
    if !status.success() {
        bail!("could not stop the sandbox");
    }
    serve.wait()?;
    let mut stderr = String::new();
    serve
        .stderr
        .take()
        .context("the sandbox's stderr")?
        .read_to_string(&mut stderr)?;
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("stopped: "))
        .with_context(|| format!("the sandbox said {stderr:?}"))?;
    Ok(serde_json::from_str(line)?)
}

/// Polls the child's peak RSS (`VmHWM`) and CPU time until it exits.
fn watch(child: &mut Child) -> Result<(u64, Duration)> {
    let pid = child.id();
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let (mut peak, mut cpu) = (0u64, Duration::ZERO);
    while child.try_wait()?.is_none() {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            {
                peak = peak.max(kib);
            }
        }
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // Fields after the command name, which is in parentheses: utime is the 12th.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            let tick = |i: usize| {
                fields
                    .get(i)
                    .and_then(|f| f.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let ticks = tick(11) + tick(12);
            cpu = cpu.max(Duration::from_secs_f64(ticks as f64 / ticks_per_second));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((peak, cpu))
}

/// A small generator for kill times (xtask has no `rand`): xorshift, seeded by the clock.
struct Random(u64);

impl Random {
    fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x5eed, |d| d.as_nanos() as u64);
        Self(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}
