//! `cargo xtask evolve`: the evolution matrix. Each kind of change upstream makes that is
//! additive for a client is applied to a copy of the spec; the copy of the workspace is
//! regenerated and checked with no other edit. One line per kind; exit 1 when any fails.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::generate;

const CREATE: &str =
    "/paths/~1environments~1{environmentId}~1waas~1{walletId}~1keyShares~1backup~1locations/post";

/// One kind of additive change: its name and how it edits the spec.
pub struct Change {
    pub name: &'static str,
    pub apply: fn(&mut Value) -> Result<()>,
}

fn schema<'a>(spec: &'a mut Value, name: &str) -> Result<&'a mut Value> {
    spec.pointer_mut(&format!("/components/schemas/{name}"))
        .with_context(|| format!("the spec has no schema {name}"))
}

fn add_property(spec: &mut Value, schema_name: &str, name: &str, property: Value) -> Result<()> {
    let properties = schema(spec, schema_name)?
        .get_mut("properties")
        .and_then(Value::as_object_mut)
        .with_context(|| format!("{schema_name} has no properties"))?;
    properties.insert(name.to_owned(), property);
    Ok(())
}

/// Adds `property` to each schema of `at` under its name: `(schema, name)`.
fn add_everywhere(spec: &mut Value, property: &Value, at: &[(&str, &str)]) -> Result<()> {
    for &(schema_name, name) in at {
        add_property(spec, schema_name, name, property.clone())?;
    }
    Ok(())
}

fn push_enum_value(spec: &mut Value, schema_name: &str, value: &str) -> Result<()> {
    schema(spec, schema_name)?
        .get_mut("enum")
        .and_then(Value::as_array_mut)
        .with_context(|| format!("{schema_name} is not an enum"))?
        .push(json!(value));
    Ok(())
}

const REQUEST: &str = "BackupKeySharesToLocationsWithUserIdRequest";
const RESPONSE: &str = "BackupKeySharesToLocationsResponse";

/// The matrix, in the order it runs.
pub const CHANGES: &[Change] = &[
    Change {
        name: "optional fields with patterns",
        apply: |spec| {
            let pattern = json!({"type": "string", "pattern": "^[a-z0-9-]+$", "maxLength": 64});
            let at = [
                (REQUEST, "labelHint"),
                (RESPONSE, "backupActionId"),
                ("WalletKeyShareInfo", "shareSetLabel"),
            ];
            add_everywhere(spec, &pattern, &at)
        },
    },
    Change {
        name: "optional date-time fields",
        apply: |spec| {
            let date = json!({"type": "string", "format": "date"});
            add_property(spec, "WaasWallet", "createdAt", date)?;
            let date_time = json!({"type": "string", "format": "date-time"});
            let at = [
                (REQUEST, "notBefore"),
                (RESPONSE, "createdAt"),
                ("WalletKeyShareInfo", "createdAt"),
            ];
            add_everywhere(spec, &date_time, &at)
        },
    },
    Change {
        name: "optional int64 fields",
        apply: |spec| {
            let int64 = json!({"type": "integer", "format": "int64"});
            let at = [(RESPONSE, "sequence"), ("WaasWallet", "version")];
            add_everywhere(spec, &int64, &at)
        },
    },
    Change {
        name: "optional nested objects",
        apply: |spec| {
            let nested = json!({"type": "object", "properties": {
                "id": {"type": "string"},
                "steps": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string"}, "done": {"type": "boolean"}
                }}}
            }});
            let at = [
                (RESPONSE, "backupAction"),
                ("WaasWallet", "metadata"),
                (REQUEST, "options"),
            ];
            add_everywhere(spec, &nested, &at)
        },
    },
    Change {
        name: "optional nullable fields",
        apply: |spec| {
            let nullable = json!({"type": "string", "nullable": true});
            let at = [(RESPONSE, "retiredAt"), ("WalletKeyShareInfo", "note")];
            add_everywhere(spec, &nullable, &at)
        },
    },
    Change {
        name: "new enum values and enum fields",
        apply: |spec| {
            push_enum_value(spec, "WaasBackupOptionsEnum", "paperWallet")?;
            push_enum_value(spec, "ThresholdSignatureScheme", "FOUR_OF_SEVEN")?;
            push_enum_value(spec, "ShareSetType", "guardian")?;
            let kind = json!({"type": "string", "enum": ["full", "partial"]});
            add_property(spec, RESPONSE, "backupKind", kind)?;
            spec["components"]["schemas"]["BackupStage"] =
                json!({"type": "string", "enum": ["queued", "done"]});
            add_property(
                spec,
                "WaasWallet",
                "stage",
                json!({"$ref": "#/components/schemas/BackupStage"}),
            )
        },
    },
    Change {
        name: "new error responses, same property typed differently",
        apply: |spec| {
            spec["components"]["schemas"]["UnprocessableEntity"] = json!({
                "type": "object", "required": ["error"],
                "properties": {
                    "error": {"type": "string"},
                    "code": {"type": "string", "enum": ["key_share_already_backed_up", "lock_timeout"]},
                    "payload": {"type": "object", "properties": {"walletId": {"type": "string"}}}
                }
            });
            spec["components"]["schemas"]["Conflict"] = json!({
                "type": "object",
                "properties": {"error": {"type": "object", "properties": {"message": {"type": "string"}}}, "code": {"type": "integer"}}
            });
            let responses = spec
                .pointer_mut(&format!("{CREATE}/responses"))
                .and_then(Value::as_object_mut)
                .context("the create has no responses")?;
            let of = |name: &str| json!({"description": name, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}});
            responses.insert("422".into(), of("UnprocessableEntity"));
            responses.insert("409".into(), of("Conflict"));
            Ok(())
        },
    },
    Change {
        name: "new optional query and header parameters",
        apply: |spec| {
            let params = spec
                .pointer_mut(&format!("{CREATE}/parameters"))
                .and_then(Value::as_array_mut)
                .context("the create has no parameters")?;
            params.push(json!({"name": "dryRun", "in": "query", "schema": {"type": "boolean"}}));
            params.push(json!({"name": "x-trace-id", "in": "header", "required": false, "schema": {"type": "string"}}));
            Ok(())
        },
    },
    Change {
        name: "new operations",
        apply: |spec| {
            spec["components"]["schemas"]["KeyShareDetail"] = json!({
                "type": "object", "required": ["id", "location"],
                "properties": {
                    "id": {"$ref": "#/components/schemas/uuid"},
                    "location": {"$ref": "#/components/schemas/WaasBackupOptionsEnum"},
                    "state": {"type": "string", "enum": ["active", "retired"]},
                    "createdAt": {"type": "string", "format": "date-time"}
                }
            });
            spec["paths"]["/environments/{environmentId}/waas/{walletId}/keyShares/{keyShareId}"] = json!({
                "get": {
                    "operationId": "getKeyShare",
                    "parameters": [
                        {"$ref": "#/components/parameters/environmentId"},
                        {"$ref": "#/components/parameters/walletId"},
                        {"name": "keyShareId", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/uuid"}},
                        {"name": "verbose", "in": "query", "schema": {"type": "boolean"}}
                    ],
                    "responses": {
                        "200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/KeyShareDetail"}}}},
                        "404": {"$ref": "#/components/responses/NotFound"}
                    }
                }
            });
            spec["paths"]["/environments/{environmentId}/users/{userId}/wallets"] = json!({
                "get": {
                    "operationId": "listUserWallets",
                    "parameters": [
                        {"$ref": "#/components/parameters/environmentId"},
                        {"name": "userId", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}
                    ],
                    "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {
                        "type": "object", "properties": {"wallets": {"type": "array", "items": {"$ref": "#/components/schemas/WaasWallet"}}}
                    }}}}}
                }
            });
            Ok(())
        },
    },
];

/// Every change at once.
fn all(spec: &mut Value) -> Result<()> {
    for change in CHANGES {
        (change.apply)(spec).with_context(|| change.name)?;
    }
    Ok(())
}

pub fn run() -> Result<ExitCode> {
    let root = generate::workspace_root();
    let copy = root.join("target/evolve/workspace");
    copy_workspace(&root, &copy)?;
    let spec: Value = serde_json::from_slice(
        &std::fs::read(root.join(generate::SPEC_PATH)).context("reading the spec")?,
    )?;
    let mut failed = 0;
    let everything = Change {
        name: "all of them at once",
        apply: all,
    };
    for &Change { name, apply } in CHANGES.iter().chain([&everything]) {
        let started = Instant::now();
        let mut changed = spec.clone();
        let outcome = apply(&mut changed)
            .and_then(|()| regenerate(&copy, &changed))
            .and_then(|()| check(&root, &copy));
        let secs = started.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => println!("evolve: {name}: ok ({secs:.0} s)"),
            Err(e) => {
                failed += 1;
                println!("evolve: {name}: FAILED ({secs:.0} s)\n{e:#}");
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("{failed} kind(s) of additive change broke the build");
        ExitCode::FAILURE
    })
}

/// The workspace's files (tracked, and new ones git does not ignore), copied (the generated file is rewritten per change).
fn copy_workspace(root: &Path, copy: &Path) -> Result<()> {
    let listed = Command::new("git")
        .current_dir(root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .context("running git ls-files")?;
    if !listed.status.success() {
        bail!("git ls-files failed");
    }
    for name in listed.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = PathBuf::from(String::from_utf8_lossy(name).into_owned());
        if !root.join(&name).is_file() {
            continue; // deleted in the working tree
        }
        let to = copy.join(&name);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Unchanged files are left alone, so that cargo's fingerprints stay valid.
        let from = std::fs::read(root.join(&name)).with_context(|| format!("{name:?}"))?;
        if std::fs::read(&to).ok().as_deref() != Some(from.as_slice()) {
            std::fs::write(&to, from)?;
        }
    }
    Ok(())
}

fn regenerate(copy: &Path, spec: &Value) -> Result<()> {
    let spec_path = copy.join(generate::SPEC_PATH);
    std::fs::write(&spec_path, serde_json::to_vec_pretty(spec)?)?;
    let text = generate::render(&spec_path).context("generation")?;
    std::fs::write(copy.join(generate::OUTPUT_PATH), text)?;
    Ok(())
}

/// Checks every target (tests, examples, benches) of every crate that uses the generated code.
fn check(root: &Path, copy: &Path) -> Result<()> {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(copy)
        .env("CARGO_TARGET_DIR", root.join("target/evolve/target"))
        // The xtask does not use the generated code.
        .args([
            "check",
            "--quiet",
            "--locked",
            "--workspace",
            "--exclude",
            "xtask",
        ])
        .args(["--all-features", "--all-targets"]);
    let output = command.output().context("running cargo check")?;
    if !output.status.success() {
        let errors = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = errors.lines().take(40).collect();
        bail!("cargo check failed:\n{}", tail.join("\n"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every change applies to the checked-in spec, and all of them transform and generate:
    /// the build is `cargo xtask evolve`'s part.
    #[test]
    fn every_change_applies_and_generates() {
        let root = generate::workspace_root();
        let spec: Value =
            serde_json::from_slice(&std::fs::read(root.join(generate::SPEC_PATH)).unwrap())
                .unwrap();
        let dir = std::env::temp_dir().join(format!("evolve-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("openapi")).unwrap();
        for change in CHANGES {
            let mut changed = spec.clone();
            (change.apply)(&mut changed).unwrap();
            let path = dir.join("openapi/spec.json");
            std::fs::write(&path, serde_json::to_vec(&changed).unwrap()).unwrap();
            generate::render(&path).unwrap_or_else(|e| panic!("{}: {e:#}", change.name));
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
