//! Maintainer tasks: `cargo xtask generate`, `cargo xtask check`, `cargo xtask bench`.

mod bench;
mod evolve;
mod generate;
mod msrv;
mod rewrite;
mod spec;
mod transform;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  generate   regenerate sdk/src/generated.rs from openapi/dynamic-waas.json
  check      fail (exit 1, with a diff) if sdk/src/generated.rs is stale
  bench      the SDK's overhead over raw reqwest on loopback, release build included
             (about two minutes from clean, then about one); the last lines are the ratios
               --quick        a few seconds of measuring, noisier figures
               --build-cost   instead: clean-build time and dependency count of the facade
                              beside a reqwest + serde_json + tokio crate (several minutes)
  soak       the fault-injection soak: 1,000 creates with a fifth of their answers lost
             after the server applied them, with and without lagging reads (about 30 s);
             fails on any lost backup
  msrv       fail (exit 1) if a locked dependency needs a newer Rust than the workspace's
             rust-version, listing each one
  evolve     the evolution matrix: each kind of additive upstream change applied to a copy
             of the spec and workspace, regenerated and checked with no other edit; one line
             per kind, exit 1 if any breaks (a few minutes; run by CI)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("generate") => cmd_generate(),
        Some("check") => cmd_check(),
        Some("bench") => bench::run(&args[1..]),
        Some("evolve") => evolve::run(),
        Some("soak") => bench::soak(),
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

fn cmd_generate() -> anyhow::Result<ExitCode> {
    let root = generate::workspace_root();
    let text = generate::render(&root.join(generate::SPEC_PATH))?;
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
            eprintln!(
                "{} is stale: run `cargo xtask generate` and commit the result",
                generate::OUTPUT_PATH
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
