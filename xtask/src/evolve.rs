//! `cargo xtask evolve`: the evolution matrix. Each kind of change upstream makes that is
//! additive for a client (and upstream's whole Waas tag, as published) is applied to a copy
//! of the spec; the copy of the workspace is regenerated and checked with no other edit, every
//! operation is called over loopback with its documented examples, and the change report must
//! give the kind's expected bump. One line per kind; exit 1 when any fails.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::changes::Impact::{self, Additive, Breaking, Invisible};
use crate::{changes, generate, upstream, wire};

const CREATE: &str =
    "/paths/~1environments~1{environmentId}~1waas~1{walletId}~1keyShares~1backup~1locations/post";

/// One kind of additive change: its name, how it edits the spec, and the bumps the change
/// report must give for it (facade, sdk).
pub struct Change {
    pub name: &'static str,
    pub apply: fn(&mut Value) -> Result<()>,
    pub bump: (Impact, Impact),
}

/// Imports operations of upstream's published Waas tag (the fixture), as a maintainer does.
fn import(spec: &mut Value, ids: &[&str]) -> Result<()> {
    let upstream = upstream::fixture(&generate::workspace_root())?;
    let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    upstream::import(spec, &upstream, &ids)?;
    Ok(())
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
        bump: (Additive, Breaking),
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
        bump: (Additive, Breaking),
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
        bump: (Additive, Breaking),
        apply: |spec| {
            let int64 = json!({"type": "integer", "format": "int64"});
            let at = [(RESPONSE, "sequence"), ("WaasWallet", "version")];
            add_everywhere(spec, &int64, &at)
        },
    },
    Change {
        name: "optional nested objects",
        bump: (Additive, Breaking),
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
        bump: (Additive, Breaking),
        apply: |spec| {
            let nullable = json!({"type": "string", "nullable": true});
            let at = [(RESPONSE, "retiredAt"), ("WalletKeyShareInfo", "note")];
            add_everywhere(spec, &nullable, &at)
        },
    },
    Change {
        name: "new enum values and enum fields",
        bump: (Additive, Breaking),
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
        bump: (Additive, Additive),
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
        bump: (Invisible, Invisible),
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
        bump: (Additive, Additive),
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
    Change {
        name: "DELETE answered 204, no body (upstream deleteDelegatedAccess)",
        bump: (Additive, Additive),
        apply: |spec| import(spec, &["deleteDelegatedAccess"]),
    },
    Change {
        name: "body-less POSTs (upstream authenticateWaas, verifyApiKey)",
        bump: (Additive, Additive),
        apply: |spec| import(spec, &["authenticateWaas", "verifyApiKey"]),
    },
    Change {
        name:
            "new operation with path ids and a new request schema (upstream delegatedSignMessage)",
        bump: (Additive, Additive),
        apply: |spec| import(spec, &["delegatedSignMessage"]),
    },
    Change {
        name: "top-level array response (upstream getWaasSignaturePolicies)",
        bump: (Additive, Additive),
        apply: |spec| import(spec, &["getWaasSignaturePolicies"]),
    },
    Change {
        name: "anyOf of strings in request and response (upstream createWaasSignaturePolicy)",
        bump: (Additive, Additive),
        apply: |spec| import(spec, &["createWaasSignaturePolicy"]),
    },
    Change {
        name: "422 of allOf/anyOf with upstream's 119-value error-code enum",
        bump: (Additive, Additive),
        apply: |spec| {
            let upstream = upstream::fixture(&generate::workspace_root())?;
            upstream::import_components(
                spec,
                &upstream,
                &[
                    "#/components/schemas/UnprocessableEntity",
                    "#/components/schemas/UnprocessableEntityErrorCode",
                ],
            )?;
            let responses = spec
                .pointer_mut(&format!("{CREATE}/responses"))
                .and_then(Value::as_object_mut)
                .context("the create has no responses")?;
            responses.insert(
                "422".into(),
                json!({
                    "description": "Unprocessable Entity",
                    "content": {"application/json": {"schema": {"allOf": [
                        {"$ref": "#/components/schemas/UnprocessableEntity"},
                        {"type": "object", "properties": {"code": {"anyOf": [
                            {"$ref": "#/components/schemas/UnprocessableEntityErrorCode"},
                            {"type": "string"}
                        ]}}}
                    ]}}}
                }),
            );
            Ok(())
        },
    },
    Change {
        name: "properties added to the create's request location items",
        // A new field of an existing struct: struct literals of it break (sdk users).
        bump: (Additive, Breaking),
        apply: |spec| {
            let items = spec
                .pointer_mut(&format!(
                    "/components/schemas/{REQUEST}/properties/locations/items/properties"
                ))
                .and_then(Value::as_object_mut)
                .context("the create's request has no location items")?;
            // What upstream's sibling /sdk/ and /server/ variants of the create take.
            items.insert("passwordEncrypted".into(), json!({"type": "boolean"}));
            items.insert(
                "tokenSource".into(),
                json!({"type": "string", "enum": ["external", "stored_oauth"]}),
            );
            Ok(())
        },
    },
    Change {
        name: "upstream's whole Waas tag, as published",
        bump: (Additive, Additive),
        apply: |spec| {
            let upstream = upstream::fixture(&generate::workspace_root())?;
            upstream::import_tag(spec, &upstream)?;
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

/// The worst facade and sdk impacts of the change report for `changed` against `spec`:
/// the spec comparison and the generated public items, as `cargo xtask generate` prints them.
pub fn report_bump(
    spec: &Value,
    generated: &str,
    changed: &Value,
    regenerated: &str,
) -> Result<(Impact, Impact, String)> {
    let mut found = changes::compare(spec, changed);
    found.extend(changes::api_diff(generated, regenerated)?);
    let worst = |f: fn(&changes::Change) -> Impact| found.iter().map(f).max().unwrap_or(Invisible);
    Ok((
        worst(|c| c.facade),
        worst(|c| c.sdk),
        changes::report(&found),
    ))
}

/// The generated wire test of the copy: every operation of the changed spec.
const WIRE_TEST: &str = "sdk/tests/evolve_wire.rs";

pub fn run(only: Option<&str>) -> Result<ExitCode> {
    let root = generate::workspace_root();
    let copy = root.join("target/evolve/workspace");
    copy_workspace(&root, &copy)?;
    let spec: Value = serde_json::from_slice(
        &std::fs::read(root.join(generate::SPEC_PATH)).context("reading the spec")?,
    )?;
    let generated = generate::render_json(&spec).context("generating the shipped spec")?;
    let mut failed = 0;
    let everything = Change {
        name: "all of them at once",
        apply: all,
        bump: (Additive, Breaking),
    };
    for change in CHANGES.iter().chain([&everything]) {
        if only.is_some_and(|o| !change.name.contains(o)) {
            continue;
        }
        let started = Instant::now();
        let outcome = row(&root, &copy, &spec, &generated, change);
        let secs = started.elapsed().as_secs_f64();
        match outcome {
            Ok(ops) => println!(
                "evolve: {}: ok, {ops} operations round-tripped ({secs:.0} s)",
                change.name
            ),
            Err(e) => {
                failed += 1;
                println!("evolve: {}: FAILED ({secs:.0} s)\n{e:#}", change.name);
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("{failed} kind(s) of additive change broke the build, the wire or the report");
        ExitCode::FAILURE
    })
}

/// One kind: applied, regenerated, the report's bump compared, checked, round-tripped.
/// Returns how many operations the wire test called.
fn row(root: &Path, copy: &Path, spec: &Value, generated: &str, change: &Change) -> Result<usize> {
    let mut changed = spec.clone();
    (change.apply)(&mut changed)?;
    let regenerated = regenerate(copy, &changed)?;
    let (facade, sdk, report) = report_bump(spec, generated, &changed, &regenerated)?;
    if (facade, sdk) != change.bump {
        bail!(
            "the change report gives facade {facade}, sdk {sdk}; expected facade {}, sdk {}\n{report}",
            change.bump.0,
            change.bump.1
        );
    }
    let ops = wire::operations(&changed, &[])?;
    let test = wire::test_file(generate::SPEC_PATH, &ops, &regenerated)?;
    std::fs::write(copy.join(WIRE_TEST), test)?;
    check(root, copy)?;
    wire_test(root, copy)?;
    Ok(ops.len())
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

fn regenerate(copy: &Path, spec: &Value) -> Result<String> {
    let spec_path = copy.join(generate::SPEC_PATH);
    std::fs::write(&spec_path, serde_json::to_vec_pretty(spec)?)?;
    let text = generate::render(&spec_path).context("generation")?;
    std::fs::write(copy.join(generate::OUTPUT_PATH), &text)?;
    Ok(text)
}

/// Runs the generated wire test (plain-http loopback: no TLS provider needed).
fn wire_test(root: &Path, copy: &Path) -> Result<()> {
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(copy)
        .env("CARGO_TARGET_DIR", root.join("target/evolve/target"))
        .env("RUST_BACKTRACE", "0")
        .args(["test", "--quiet", "--locked", "-p", "dynamic-waas-api"])
        .args(["--no-default-features", "--test", "evolve_wire"])
        .output()
        .context("running the wire test")?;
    if !output.status.success() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let tail: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(60)
            .collect();
        bail!("the wire test failed:\n{}", tail.join("\n"));
    }
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

    fn shipped() -> Value {
        let root = generate::workspace_root();
        serde_json::from_slice(&std::fs::read(root.join(generate::SPEC_PATH)).unwrap()).unwrap()
    }

    /// The change report's classification, on the spec pair of each kind: the shipped spec
    /// and the shipped spec with the kind applied. The build and the wire round trips are
    /// `cargo xtask evolve`'s part; here every kind also transforms, generates and yields
    /// examples for its wire test.
    #[test]
    fn each_kind_generates_and_the_report_gives_its_bump() {
        let spec = shipped();
        let generated = generate::render_json(&spec).unwrap();
        let everything = Change {
            name: "all",
            apply: all,
            bump: (Additive, Breaking),
        };
        for change in CHANGES.iter().chain([&everything]) {
            let mut changed = spec.clone();
            (change.apply)(&mut changed).unwrap();
            let regenerated = generate::render_json(&changed)
                .unwrap_or_else(|e| panic!("{}: {e:#}", change.name));
            let (facade, sdk, report) =
                report_bump(&spec, &generated, &changed, &regenerated).unwrap();
            assert_eq!((facade, sdk), change.bump, "{}:\n{report}", change.name);
            let ops = wire::operations(&changed, &[])
                .unwrap_or_else(|e| panic!("{}: {e:#}", change.name));
            wire::test_file("spec", &ops, &regenerated)
                .unwrap_or_else(|e| panic!("{}: {e:#}", change.name));
        }
    }

    /// Requirement: adding operations never changes an existing public item. Upstream's
    /// whole Waas tag, and each kind that adds operations, leave every item of today's
    /// generated code as it is (the shared error body included).
    #[test]
    fn adding_operations_changes_no_existing_public_item() {
        let spec = shipped();
        let generated = generate::render_json(&spec).unwrap();
        for change in CHANGES.iter().filter(|c| c.bump.1 != Breaking) {
            let mut changed = spec.clone();
            (change.apply)(&mut changed).unwrap();
            let regenerated = generate::render_json(&changed).unwrap();
            let items = changes::api_diff(&generated, &regenerated).unwrap();
            assert!(items.is_empty(), "{}: {items:?}", change.name);
        }
    }

    /// The upstream row reaches every operation of the tag and every schema they use.
    #[test]
    fn the_upstream_row_imports_the_whole_tag() {
        let mut spec = shipped();
        let upstream = upstream::fixture(&generate::workspace_root()).unwrap();
        let done = upstream::import_tag(&mut spec, &upstream).unwrap();
        assert_eq!(done.operations.len() + done.present.len(), 21);
        assert_eq!(done.present.len(), 2, "{:?}", done.present);
        let ops = wire::operations(&spec, &[]).unwrap();
        assert_eq!(ops.len(), 21);
        let report = changes::report(&changes::compare(&shipped(), &spec));
        assert!(!report.contains("breaking"), "{report}");
    }
}
