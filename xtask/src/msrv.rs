//! `cargo xtask msrv`: the workspace's `rust-version` must be true of the lockfile.
//!
//! A member's `rust-version` promises that the workspace builds (tests included) on that
//! toolchain. Every package in `cargo metadata`'s resolve that a member reaches (normal, build
//! and dev dependencies, all platforms) must therefore declare a `rust_version` no newer than
//! the member's; packages that declare none are not checked. Versions compare as dotted
//! numbers, missing parts being zero (`1.88` is `1.88.0`, and `1.9` is older than `1.10`).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::generate::workspace_root;

pub fn run() -> Result<ExitCode> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["metadata", "--format-version", "1"])
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let metadata: Value =
        serde_json::from_slice(&output.stdout).context("reading cargo metadata's output")?;
    let report = check(&metadata)?;
    if report.too_new.is_empty() {
        eprintln!("msrv ok: {report}");
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("{report}");
    Ok(ExitCode::FAILURE)
}

/// A `rust-version`: one to three dot-separated numbers.
#[derive(Clone, Debug)]
struct RustVersion {
    parts: [u64; 3],
    text: String,
}

impl RustVersion {
    fn parse(text: &str) -> Result<Self> {
        let fields: Vec<&str> = text.split('.').collect();
        if fields.len() > 3 {
            bail!("rust-version `{text}` has more than three parts");
        }
        let mut parts = [0; 3];
        for (part, field) in parts.iter_mut().zip(&fields) {
            if field.is_empty() || !field.bytes().all(|b| b.is_ascii_digit()) {
                bail!("rust-version `{text}` is not dotted numbers (such as 1.88 or 1.88.0)");
            }
            *part = field
                .parse()
                .with_context(|| format!("rust-version `{text}` is out of range"))?;
        }
        Ok(Self {
            parts,
            text: text.to_owned(),
        })
    }

    /// The version as `rust-version` is usually written: `1.89`, or `1.89.1` with a patch.
    fn minor_form(&self) -> String {
        match self.parts {
            [major, minor, 0] => format!("{major}.{minor}"),
            [major, minor, patch] => format!("{major}.{minor}.{patch}"),
        }
    }
}

impl PartialEq for RustVersion {
    fn eq(&self, other: &Self) -> bool {
        self.parts == other.parts
    }
}

impl Eq for RustVersion {}

impl PartialOrd for RustVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RustVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts.cmp(&other.parts)
    }
}

impl fmt::Display for RustVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A dependency that needs a newer Rust than some member promises.
#[derive(Debug)]
struct TooNew {
    name: String,
    version: String,
    needs: RustVersion,
    /// The members whose promise it breaks, with what they promise.
    breaks: Vec<(String, RustVersion)>,
}

#[derive(Debug)]
struct Report {
    /// Every member that declares a `rust-version`, with it.
    members: Vec<(String, RustVersion)>,
    /// The dependency with the newest `rust_version`, if any declares one.
    newest: Option<(String, String, RustVersion)>,
    too_new: Vec<TooNew>,
}

impl Report {
    /// The lowest `rust-version` that keeps every promise: the newest need, or the newest
    /// member's declaration if that is higher.
    fn needed(&self) -> Option<&RustVersion> {
        let members = self.members.iter().map(|(_, v)| v);
        let newest = self.newest.iter().map(|(_, _, v)| v);
        members.chain(newest).max()
    }

    fn claims(members: &[(String, RustVersion)], all: usize) -> String {
        let versions: BTreeSet<&str> = members.iter().map(|(_, v)| v.text.as_str()).collect();
        if members.len() == all && versions.len() == 1 {
            let version = versions.into_iter().next().unwrap_or_default();
            return format!("rust-version {version} (every member)");
        }
        let named: Vec<String> = members.iter().map(|(n, v)| format!("{n} {v}")).collect();
        format!("rust-version of {}", named.join(", "))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all = self.members.len();
        if self.too_new.is_empty() {
            write!(
                f,
                "{} holds for the lockfile",
                Self::claims(&self.members, all)
            )?;
            if let Some((name, version, needs)) = &self.newest {
                write!(f, " (the newest need: {name} {version}, rust {needs})")?;
            }
            return Ok(());
        }
        writeln!(
            f,
            "error: these locked dependencies need a newer Rust than the workspace declares:"
        )?;
        for dep in &self.too_new {
            writeln!(
                f,
                "  {} {} needs rust {}, newer than {}",
                dep.name,
                dep.version,
                dep.needs,
                Self::claims(&dep.breaks, all)
            )?;
        }
        let needed = self
            .needed()
            .map(RustVersion::minor_form)
            .unwrap_or_default();
        write!(
            f,
            "fix: set `rust-version = \"{needed}\"` in Cargo.toml's [workspace.package] (and the \
             README's toolchain line), or hold a dependency back with \
             `cargo update -p <name> --precise <older version>`"
        )
    }
}

/// Compares every member's `rust-version` with the dependencies it reaches in `metadata`
/// (the output of `cargo metadata --format-version 1`).
fn check<'m>(metadata: &'m Value) -> Result<Report> {
    let packages = metadata["packages"]
        .as_array()
        .context("cargo metadata has no `packages`")?;
    let mut names: HashMap<&str, (&str, &str)> = HashMap::new();
    let mut needs: HashMap<&str, RustVersion> = HashMap::new();
    for package in packages {
        let id = package["id"].as_str().context("a package without `id`")?;
        let name = package["name"].as_str().unwrap_or(id);
        let version = package["version"].as_str().unwrap_or("?");
        names.insert(id, (name, version));
        if let Some(text) = package["rust_version"].as_str() {
            let parsed =
                RustVersion::parse(text).with_context(|| format!("package {name} {version}"))?;
            needs.insert(id, parsed);
        }
    }

    let member_ids: BTreeSet<&str> = metadata["workspace_members"]
        .as_array()
        .context("cargo metadata has no `workspace_members`")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut members = Vec::new();
    for id in &member_ids {
        if let Some(declared) = needs.get(id) {
            let name = names.get(id).map_or(*id, |(name, _)| name);
            members.push((*id, name.to_owned(), declared.clone()));
        }
    }
    if members.is_empty() {
        bail!("no workspace member declares a rust-version: set one in [workspace.package]");
    }

    let mut edges: HashMap<&str, Vec<&str>> = HashMap::new();
    for node in metadata["resolve"]["nodes"]
        .as_array()
        .context("cargo metadata has no `resolve` (was it run with --no-deps?)")?
    {
        let id = node["id"].as_str().context("a resolve node without `id`")?;
        let deps = node["dependencies"].as_array().into_iter().flatten();
        edges.insert(id, deps.filter_map(Value::as_str).collect());
    }

    // For each dependency too new for some member: the members whose promise it breaks.
    let mut too_new: BTreeMap<&str, Vec<(String, RustVersion)>> = BTreeMap::new();
    let mut newest: Option<&str> = None;
    for (member, name, declared) in &members {
        for dep in reachable(member, &edges) {
            if member_ids.contains(dep) {
                continue;
            }
            let Some(need) = needs.get(dep) else { continue };
            if newest.is_none_or(|n| needs[n] < *need) {
                newest = Some(dep);
            }
            if need > declared {
                too_new
                    .entry(dep)
                    .or_default()
                    .push((name.clone(), declared.clone()));
            }
        }
    }

    let describe = |id: &'m str| names.get(id).copied().unwrap_or((id, "?"));
    let mut too_new: Vec<TooNew> = too_new
        .into_iter()
        .map(|(id, breaks)| {
            let (name, version) = describe(id);
            TooNew {
                name: name.to_owned(),
                version: version.to_owned(),
                needs: needs[id].clone(),
                breaks,
            }
        })
        .collect();
    too_new.sort_by(|a, b| b.needs.cmp(&a.needs).then_with(|| a.name.cmp(&b.name)));
    Ok(Report {
        members: members.into_iter().map(|(_, n, v)| (n, v)).collect(),
        newest: newest.map(|id| {
            let (name, version) = describe(id);
            (name.to_owned(), version.to_owned(), needs[id].clone())
        }),
        too_new,
    })
}

/// Every package reachable from `root` in the resolve graph, `root` excluded.
fn reachable<'a>(root: &'a str, edges: &HashMap<&'a str, Vec<&'a str>>) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        for &dep in edges.get(id).into_iter().flatten() {
            if dep != root && seen.insert(dep) {
                stack.push(dep);
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(text: &str) -> RustVersion {
        RustVersion::parse(text).unwrap()
    }

    #[test]
    fn versions_compare_as_numbers() {
        assert_eq!(v("1.88"), v("1.88.0"));
        assert!(v("1.88") < v("1.89.0"));
        assert!(v("1.88.1") > v("1.88"));
        assert!(v("1.9") < v("1.10"));
        assert!(v("1") < v("1.0.1"));
        assert_eq!(v("1.89.0").minor_form(), "1.89");
        assert_eq!(v("1.89.1").minor_form(), "1.89.1");
    }

    #[test]
    fn versions_that_are_not_dotted_numbers_are_refused() {
        for text in [
            "",
            "1.",
            ".88",
            "1..88",
            "1.88.0.1",
            "1.88-beta",
            "v1.88",
            " 1.88",
        ] {
            assert!(RustVersion::parse(text).is_err(), "{text:?} was accepted");
        }
    }

    /// Metadata shaped like `cargo metadata`'s: (id, rust_version), member ids, edges.
    fn metadata(
        packages: &[(&str, Option<&str>)],
        members: &[&str],
        deps: &[(&str, &[&str])],
    ) -> Value {
        json!({
            "packages": packages.iter().map(|(id, rv)| json!({
                "id": id, "name": id, "version": "1.0.0", "rust_version": rv,
            })).collect::<Vec<_>>(),
            "workspace_members": members,
            "resolve": { "nodes": deps.iter().map(|(id, deps)| json!({
                "id": id, "dependencies": deps,
            })).collect::<Vec<_>>() },
        })
    }

    #[test]
    fn a_dependency_newer_than_the_declaration_is_listed() {
        let m = metadata(
            &[
                ("app", Some("1.88")),
                ("uuid", Some("1.89.0")),
                ("old", Some("1.60")),
                ("none", None),
                ("deep", Some("1.90")),
            ],
            &["app"],
            &[("app", &["uuid", "old", "none"]), ("none", &["deep"])],
        );
        let report = check(&m).unwrap();
        let listed: Vec<&str> = report.too_new.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(listed, ["deep", "uuid"]);
        assert_eq!(report.needed().unwrap().minor_form(), "1.90");
        let text = report.to_string();
        assert!(text.contains("uuid 1.0.0 needs rust 1.89.0"), "{text}");
        assert!(text.contains("rust-version = \"1.90\""), "{text}");
    }

    #[test]
    fn an_equal_declaration_passes() {
        let m = metadata(
            &[
                ("app", Some("1.89")),
                ("uuid", Some("1.89.0")),
                ("none", None),
            ],
            &["app"],
            &[("app", &["uuid", "none"])],
        );
        let report = check(&m).unwrap();
        assert!(report.too_new.is_empty());
        assert!(report.to_string().contains("uuid 1.0.0, rust 1.89.0"));
    }

    #[test]
    fn each_member_is_held_to_its_own_declaration() {
        let m = metadata(
            &[
                ("lib", Some("1.80")),
                ("tool", Some("1.89")),
                ("new", Some("1.89")),
                ("shared", Some("1.85")),
            ],
            &["lib", "tool"],
            &[("lib", &["shared"]), ("tool", &["new", "shared", "lib"])],
        );
        let report = check(&m).unwrap();
        assert_eq!(report.too_new.len(), 1);
        assert_eq!(report.too_new[0].name, "shared");
        assert_eq!(report.too_new[0].breaks, [("lib".to_owned(), v("1.80"))]);
    }

    #[test]
    fn a_workspace_without_a_declaration_is_an_error() {
        let m = metadata(&[("app", None)], &["app"], &[("app", &[])]);
        assert!(check(&m).is_err());
    }
}
