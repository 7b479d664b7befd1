//! `cargo xtask bench`: what the SDK costs over raw reqwest.
//!
//! The runtime part is the `dynamic-waas-bench` binary (bench/), built in release mode and
//! run through cargo: this crate must not depend on the sdk it generates. `--build-cost`
//! measures instead what depending on the facade costs a user's build, beside a crate that
//! depends only on reqwest, serde_json and tokio.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::generate::workspace_root;

const FACADE: &str = "dynamic-waas";
/// The facade's dependencies the baseline crate also has, with the facade's requirements
/// and features.
const BASELINE_DEPS: [&str; 3] = ["reqwest", "serde_json", "tokio"];

pub fn run(args: &[String]) -> Result<ExitCode> {
    match args {
        [] => runtime(false),
        [flag] if flag == "--quick" => runtime(true),
        [flag] if flag == "--build-cost" => build_cost(),
        [flag] if flag == "--bulk" => crate::bulk::run(false),
        [a, b]
            if [a, b]
                .iter()
                .all(|f| ["--bulk", "--quick"].contains(&f.as_str()))
                && a != b =>
        {
            crate::bulk::run(true)
        }
        _ => bail!("usage: cargo xtask bench [--quick | --build-cost | --bulk [--quick]]"),
    }
}

fn cargo() -> Command {
    // The cargo that runs this xtask, so that the toolchain is the same.
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// `cargo xtask soak`: the ignored soak test, with its report.
pub fn soak() -> Result<ExitCode> {
    let status = cargo()
        .current_dir(workspace_root())
        .args([
            "test",
            "--quiet",
            "-p",
            "dynamic-waas",
            "--all-features",
            "--test",
            "soak",
            "--",
            "--ignored",
            "--nocapture",
        ])
        .status()
        .context("running cargo")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn runtime(quick: bool) -> Result<ExitCode> {
    let mut command = cargo();
    command.current_dir(workspace_root()).args([
        "run",
        "--quiet",
        "--release",
        "-p",
        "dynamic-waas-bench",
    ]);
    if quick {
        command.args(["--", "--quick"]);
    }
    let status = command.status().context("running cargo")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One crate's build cost.
struct Cost {
    seconds: f64,
    packages: usize,
}

fn build_cost() -> Result<ExitCode> {
    let root = workspace_root();
    // Outside the workspace, so that the baseline crate is not taken for one of its members.
    let scratch = std::env::temp_dir().join("dynamic-waas-build-cost");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)
            .with_context(|| format!("removing {}", scratch.display()))?;
    }
    let baseline = scratch.join("baseline");
    write_baseline(&root, &baseline)?;

    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "clean dev-profile builds, one after the other, {jobs} jobs, target dirs under {}",
        scratch.display()
    );
    let manifest = baseline.join("Cargo.toml");
    let base = measure(
        "reqwest + serde_json + tokio",
        &["--manifest-path", path_str(&manifest)?],
        &scratch.join("target-baseline"),
        &root,
    )?;
    let facade = measure(
        FACADE,
        &["-p", FACADE, "--lib"],
        &scratch.join("target-facade"),
        &root,
    )?;
    // The target dirs hold a few GiB.
    let _ = std::fs::remove_dir_all(&scratch);

    println!("\nbuild cost (clean `cargo build`, dev profile, {jobs} jobs; packages: `cargo tree -e normal,build`, unique, the crate itself excluded)");
    for (name, cost) in [
        ("baseline (reqwest + serde_json + tokio)", &base),
        (FACADE, &facade),
    ] {
        println!(
            "  {name:<40} {:>6.1} s, {:>3} packages",
            cost.seconds, cost.packages
        );
    }
    println!(
        "build time ratio facade/baseline: {:.2}",
        facade.seconds / base.seconds
    );
    println!(
        "dependency ratio facade/baseline: {:.2}",
        facade.packages as f64 / base.packages as f64
    );
    Ok(ExitCode::SUCCESS)
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// Builds `what` from clean into `target_dir`, then counts its dependency tree.
fn measure(what: &str, selection: &[&str], target_dir: &Path, root: &Path) -> Result<Cost> {
    eprintln!("building {what} ...");
    let start = Instant::now();
    let built = run_cargo_maybe_offline(root, |cmd| {
        cmd.arg("build")
            .args(selection)
            .env("CARGO_TARGET_DIR", target_dir);
    })?;
    let seconds = start.elapsed().as_secs_f64();
    if !built.status.success() {
        bail!(
            "building {what} failed:\n{}",
            String::from_utf8_lossy(&built.stderr)
        );
    }
    let tree = run_cargo_maybe_offline(root, |cmd| {
        cmd.args(["tree", "-e", "normal,build", "--prefix", "none"])
            .args(selection.iter().filter(|a| **a != "--lib"));
    })?;
    if !tree.status.success() {
        bail!(
            "cargo tree for {what} failed:\n{}",
            String::from_utf8_lossy(&tree.stderr)
        );
    }
    Ok(Cost {
        seconds,
        packages: count_packages(&String::from_utf8_lossy(&tree.stdout)),
    })
}

/// Runs cargo `--offline` first (no index update, and the same crates for both builds), and
/// online only if something is missing from the local cache.
fn run_cargo_maybe_offline(
    root: &Path,
    configure: impl Fn(&mut Command),
) -> Result<std::process::Output> {
    let attempt = |offline: bool| -> Result<std::process::Output> {
        let mut cmd = cargo();
        cmd.current_dir(root);
        configure(&mut cmd);
        if offline {
            cmd.arg("--offline");
        }
        cmd.output().context("running cargo")
    };
    let output = attempt(true)?;
    if output.status.success() {
        return Ok(output);
    }
    eprintln!("  (not everything is in the local cache; trying online)");
    attempt(false)
}

/// Unique `name version` pairs of `cargo tree --prefix none` output, minus the root (the
/// first line).
fn count_packages(tree: &str) -> usize {
    let mut lines = tree.lines().filter(|l| !l.trim().is_empty());
    let root = lines.next().map(package_id);
    lines
        .map(package_id)
        .filter(|id| Some(id) != root.as_ref())
        .collect::<BTreeSet<_>>()
        .len()
}

fn package_id(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes the baseline crate: the facade's own requirements and features for reqwest,
/// serde_json and tokio, and the workspace's lock file, so that both builds compile the same
/// versions.
fn write_baseline(root: &Path, dir: &Path) -> Result<()> {
    let deps = facade_dependencies(root)?;
    let mut manifest = String::from(
        "# Written by `cargo xtask bench --build-cost`: what a user who calls the API with \
         reqwest by hand depends on.\n[package]\nname = \"reqwest-baseline\"\nversion = \
         \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[workspace]\n\n[dependencies]\n",
    );
    for name in BASELINE_DEPS {
        let dep = deps
            .iter()
            .find(|d| d["name"] == name)
            .with_context(|| format!("the facade does not depend on {name}"))?;
        let features: Vec<String> = dep["features"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|f| format!("{f:?}"))
            .collect();
        manifest += &format!(
            "{name} = {{ version = {:?}, default-features = {}, features = [{}] }}\n",
            dep["req"].as_str().unwrap_or("*"),
            dep["uses_default_features"].as_bool().unwrap_or(true),
            features.join(", "),
        );
    }
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(dir.join("Cargo.toml"), manifest)?;
    std::fs::write(
        dir.join("src/lib.rs"),
        "//! The create call by hand.\n\npub use tokio;\n\npub async fn create(\n    client: \
         &reqwest::Client,\n    url: &str,\n    body: &serde_json::Value,\n) -> \
         reqwest::Result<serde_json::Value> {\n    client.post(url).json(body).send().await?\
         .error_for_status()?.json().await\n}\n",
    )?;
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))
        .context("copying the workspace's Cargo.lock")?;
    Ok(())
}

/// The facade's normal (not dev) dependencies, as `cargo metadata` describes them.
fn facade_dependencies(root: &Path) -> Result<Vec<Value>> {
    let output = cargo()
        .current_dir(root)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: Value = serde_json::from_slice(&output.stdout)?;
    let facade = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == FACADE)
        .with_context(|| format!("no package {FACADE} in the workspace"))?;
    Ok(facade["dependencies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["kind"].is_null())
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_unique_packages_without_the_root() {
        let tree = "dynamic-waas v0.1.0 (/work)\nbytes v1.11.0\nreqwest v0.13.5\nbytes v1.11.0 \
                    (*)\nhttp v1.3.1\nbytes v1.11.0 (*)\n\n";
        assert_eq!(count_packages(tree), 3);
    }

    #[test]
    fn two_versions_of_a_crate_count_twice() {
        let tree = "root v0.0.0 (/x)\nsyn v1.0.109\nsyn v2.0.100\n";
        assert_eq!(count_packages(tree), 2);
    }
}
