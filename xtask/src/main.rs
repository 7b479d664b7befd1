//! Maintainer tasks: `cargo xtask generate`, `check`, `evolve`, `import`, `bench`, `soak`, `msrv`.

mod bench;
mod bulk;
mod changes;
mod evolve;
mod generate;
mod msrv;
mod rewrite;
mod spec;
mod transform;
mod upstream;
mod wire;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  generate   regenerate sdk/src/generated.rs from openapi/dynamic-waas.json, printing what
             changed against the committed spec (additive or breaking, and the version bump)
  check      fail (exit 1, with a diff) if sdk/src/generated.rs is stale
  bench      the SDK's overhead over raw reqwest on loopback, release build included
             (about two minutes from clean, then about one); the last lines are the ratios
               --quick        a few seconds of measuring, noisier figures
               --build-cost   instead: clean-build time and dependency count of the facade
                              beside a reqwest + serde_json + tokio crate (several minutes)
               --bulk         instead: create-many end to end against a sandbox process:
                              achieved rate and 429s under upstream's limits (scaled clock),
                              ids kept under 10 % ambiguous faults, peak memory with 100,000
                              rows, limits shared with other traffic (sliding window, token
                              bucket, a drop and recovery), --resume over 1,000,000 settled
                              wallets (about 20 minutes; --bulk --quick: about 4)
  soak       the fault-injection soak: 4 runs of 1,000 creates with a fifth of their answers
             lost after the server applied them, lagging reads and a tight policy (about 3
             minutes); fails on any lost backup or any create sent after apply
               --bulk [ROUNDS]  instead: create-many killed with SIGKILL at random moments
                                ROUNDS times (20), each run resuming the last, under 10 %
                                ambiguous faults and reads 300 ms behind; fails on any lost
                                key share id or create sent after apply (about 2 minutes)
  msrv       fail (exit 1) if a locked dependency needs a newer Rust than the workspace's
             rust-version, listing each one
  evolve [NAME]
             the evolution matrix: each kind of additive upstream change (and upstream's whole
             Waas tag, from xtask/fixtures/upstream/) applied to a copy of the spec and
             workspace, regenerated, checked, each operation called over loopback with its
             documented examples, and the change report's bump compared with the expected one,
             with no other edit; one line per kind, exit 1 if any breaks (a few minutes; run by
             CI). NAME: only the kinds whose name contains it
  import UPSTREAM.json [OPERATION_ID...]
             what copying operations of upstream's spec (converted to JSON) into ours takes:
             the operations (every one of the Waas tag ours lacks, when none is named) and
             each component they reach that ours lacks; writes the merged spec to
             target/import/dynamic-waas.json";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("generate") => cmd_generate(),
        Some("check") => cmd_check(),
        Some("bench") => bench::run(&args[1..]),
        Some("evolve") => evolve::run(args.get(1).map(String::as_str)),
        Some("import") => upstream::run(&args[1..]),
        Some("soak") => match args.get(1).map(String::as_str) {
            None => bench::soak(),
            Some("--bulk") => match args.get(2).map(|n| n.parse::<usize>()) {
                None => bulk::soak(20),
                Some(Ok(rounds)) => bulk::soak(rounds),
                Some(Err(_)) => Err(anyhow::anyhow!("usage: cargo xtask soak [--bulk [ROUNDS]]")),
            },
            Some(_) => Err(anyhow::anyhow!("usage: cargo xtask soak [--bulk [ROUNDS]]")),
        },
        Some("msrv") => msrv::run(),
        Some("help" | "--help" | "-h") | None => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("unknown command `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The change report against the spec and the generated code the checked-in code came from
/// (the committed ones), on stderr.
fn print_changes(root: &std::path::Path, generated_now: &str) {
    let committed = |path: &str| {
        std::process::Command::new("git")
            .current_dir(root)
            .args(["show", &format!("HEAD:{path}")])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| o.stdout)
    };
    let previous = committed(generate::SPEC_PATH)
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let current = std::fs::read(root.join(generate::SPEC_PATH))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let (Some(previous), Some(current)) = (previous, current) else {
        eprintln!("no previously generated spec to compare with (not a git checkout?)");
        return;
    };
    let mut changes = changes::compare(&previous, &current);
    match committed(generate::OUTPUT_PATH).map(String::from_utf8) {
        Some(Ok(code)) => match changes::api_diff(&code, generated_now) {
            Ok(items) => changes.extend(items),
            Err(e) => eprintln!("cannot compare the generated public items: {e}"),
        },
        _ => eprintln!("no previously generated code to compare public items with"),
    }
    eprint!("{}", changes::report(&changes));
}

fn cmd_generate() -> anyhow::Result<ExitCode> {
    let root = generate::workspace_root();
    let text = generate::render(&root.join(generate::SPEC_PATH))?;
    print_changes(&root, &text);
    let out = root.join(generate::OUTPUT_PATH);
    let unchanged = std::fs::read_to_string(&out).is_ok_and(|old| old == text);
    if !unchanged {
        std::fs::write(&out, text)?;
    }
    eprintln!(
        "{} {}",
        generate::OUTPUT_PATH,
        if unchanged {
            "is up to date"
        } else {
            "regenerated"
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn cmd_check() -> anyhow::Result<ExitCode> {
    match generate::stale_diff(&generate::workspace_root())? {
        None => {
            eprintln!("{} is up to date", generate::OUTPUT_PATH);
            Ok(ExitCode::SUCCESS)
        }
        Some(diff) => {
            println!("{diff}");
            let root = generate::workspace_root();
            print_changes(&root, &generate::render(&root.join(generate::SPEC_PATH))?);
            eprintln!(
                "{} is stale: run `cargo xtask generate` and commit the result",
                generate::OUTPUT_PATH
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
