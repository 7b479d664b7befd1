//! Copying operations from upstream's published spec into ours, as a maintainer does: the
//! operation, and every component it reaches that ours lacks. Ours wins where both have a
//! component (the shipped spec is the reviewed one). `cargo xtask import` and the
//! upstream-tag fixture of `cargo xtask evolve` use it.

use std::collections::BTreeSet;
use std::path::Path;

use crate::transform::operations;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

/// Upstream's Waas tag as published (see `xtask/fixtures/upstream/README.md`).
pub const FIXTURE: &str = "xtask/fixtures/upstream/dynamic-xyz-waas-api-openapi.json";

/// The tag this SDK covers.
pub const TAG: &str = "Waas";

/// What [`import`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Imported {
    /// `operationId (METHOD path)` of each operation copied.
    pub operations: Vec<String>,
    /// Operations ours already has (by `operationId`), left as ours has them.
    pub present: Vec<String>,
    /// `kind/name` of each component copied.
    pub components: Vec<String>,
    /// Components both have, which upstream writes differently; ours is kept.
    pub kept_ours: Vec<String>,
}

/// Upstream's fixture document.
pub fn fixture(root: &Path) -> Result<Value> {
    let path = root.join(FIXTURE);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", path.display()))
}

/// Every `operationId` of `tag` in `upstream`, in document order.
pub fn tagged(upstream: &Value, tag: &str) -> Vec<String> {
    operations(upstream)
        .into_iter()
        .filter(|(_, _, op)| {
            op.get("tags")
                .and_then(Value::as_array)
                .is_some_and(|tags| tags.iter().any(|t| t == tag))
        })
        .filter_map(|(_, _, op)| op.get("operationId").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// Copies the operations `ids` of `upstream` into `spec`, with every component they reach
/// that `spec` lacks.
pub fn import(spec: &mut Value, upstream: &Value, ids: &[String]) -> Result<Imported> {
    let mut done = Imported::default();
    let ours: BTreeSet<String> = operations(spec)
        .iter()
        .filter_map(|(_, _, op)| op.get("operationId").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    let mut queue: Vec<String> = Vec::new();
    for id in ids {
        let (path, method, op) = operations(upstream)
            .into_iter()
            .find(|(_, _, op)| op.get("operationId").and_then(Value::as_str) == Some(id))
            .ok_or_else(|| anyhow!("upstream has no operation `{id}`"))?;
        let place = format!("{id} ({} {path})", method.to_uppercase());
        if ours.contains(id) {
            done.present.push(place);
            continue;
        }
        let mut op = op.clone();
        // Path-level parameters travel with the operation (ours may not have the path item).
        if let Some(shared) = upstream
            .pointer(&format!("/paths/{}/parameters", escape(path)))
            .and_then(Value::as_array)
        {
            let own = op
                .as_object_mut()
                .context("an operation is not an object")?
                .entry("parameters")
                .or_insert_with(|| json!([]));
            if let Some(own) = own.as_array_mut() {
                for (i, param) in shared.iter().enumerate() {
                    if !own.contains(param) {
                        own.insert(i, param.clone());
                    }
                }
            }
        }
        let item = spec
            .as_object_mut()
            .context("the spec is not an object")?
            .entry("paths")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .context("`paths` is not an object")?
            .entry(path.to_owned())
            .or_insert_with(|| json!({}));
        if item.get(method).is_some() {
            bail!(
                "{place}: ours has another operation at {} {path}",
                method.to_uppercase()
            );
        }
        collect_refs(&op, &mut queue);
        for requirement in op
            .get("security")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for scheme in requirement
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                queue.push(format!("#/components/securitySchemes/{scheme}"));
            }
        }
        item[method] = op;
        done.operations.push(place);
    }
    copy_components(spec, upstream, queue, &mut done)?;
    Ok(done)
}

/// Copies the components `refs` name (`#/components/schemas/X`, ...) and every one they reach
/// that `spec` lacks.
pub fn import_components(spec: &mut Value, upstream: &Value, refs: &[&str]) -> Result<Imported> {
    let mut done = Imported::default();
    let queue = refs.iter().map(|r| r.to_string()).collect();
    copy_components(spec, upstream, queue, &mut done)?;
    Ok(done)
}

fn copy_components(
    spec: &mut Value,
    upstream: &Value,
    mut queue: Vec<String>,
    done: &mut Imported,
) -> Result<()> {
    let mut seen = BTreeSet::new();
    while let Some(reference) = queue.pop() {
        if !seen.insert(reference.clone()) {
            continue;
        }
        let pointer = reference
            .strip_prefix('#')
            .filter(|p| p.starts_with("/components/"))
            .ok_or_else(|| {
                anyhow!("only local component references are supported: `{reference}`")
            })?;
        let name = pointer.trim_start_matches("/components/").to_owned();
        let theirs = upstream
            .pointer(pointer)
            .ok_or_else(|| anyhow!("upstream's `{reference}` points at nothing"))?;
        match spec.pointer(pointer) {
            Some(existing) => {
                if existing != theirs {
                    done.kept_ours.push(name);
                }
            }
            None => {
                insert(spec, pointer, theirs.clone())?;
                collect_refs(theirs, &mut queue);
                done.components.push(name);
            }
        }
    }
    done.components.sort();
    done.kept_ours.sort();
    Ok(())
}

/// Every operation of upstream's Waas tag, into `spec`.
pub fn import_tag(spec: &mut Value, upstream: &Value) -> Result<Imported> {
    import(spec, upstream, &tagged(upstream, TAG))
}

fn escape(path: &str) -> String {
    path.replace('~', "~0").replace('/', "~1")
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                out.push(reference.to_owned());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// Inserts `value` at a `/components/<kind>/<name>` pointer, creating the maps on the way.
fn insert(spec: &mut Value, pointer: &str, value: Value) -> Result<()> {
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let [components, kind, name] = parts[..] else {
        bail!("unexpected component reference `{pointer}`");
    };
    let name = name.replace("~1", "/").replace("~0", "~");
    let kinds = spec
        .as_object_mut()
        .context("the spec is not an object")?
        .entry(components)
        .or_insert_with(|| json!({}));
    let map = kinds
        .as_object_mut()
        .context("`components` is not an object")?
        .entry(kind)
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .with_context(|| format!("`components.{kind}` is not an object"))?;
    map.insert(name, value);
    Ok(())
}

/// `cargo xtask import UPSTREAM.json [OPERATION_ID...]`: merges into a copy of the spec
/// (every operation of the Waas tag ours lacks, when none is named) and says what it copied.
pub fn run(args: &[String]) -> Result<std::process::ExitCode> {
    let root = crate::generate::workspace_root();
    let Some(source) = args.first() else {
        bail!("usage: cargo xtask import UPSTREAM.json [OPERATION_ID...]");
    };
    let upstream: Value = serde_json::from_slice(
        &std::fs::read(source).with_context(|| format!("reading {source}"))?,
    )
    .with_context(|| format!("{source} is not JSON (convert upstream's YAML first)"))?;
    let spec_path = root.join(crate::generate::SPEC_PATH);
    let mut spec: Value = serde_json::from_slice(&std::fs::read(&spec_path)?)?;
    let ids = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        tagged(&upstream, TAG)
    };
    let done = import(&mut spec, &upstream, &ids)?;
    let out = root.join("target/import/dynamic-waas.json");
    std::fs::create_dir_all(out.parent().context("no parent")?)?;
    std::fs::write(&out, serde_json::to_string_pretty(&spec)? + "\n")?;
    for (what, list) in [
        ("operation to copy", &done.operations),
        ("operation ours already has", &done.present),
        ("component to copy", &done.components),
        ("component ours keeps (upstream differs)", &done.kept_ours),
    ] {
        for item in list {
            println!("{what}: {item}");
        }
    }
    println!("merged spec: {}", out.display());
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream() -> Value {
        json!({
            "paths": {
                "/e/{environmentId}/x": {
                    "parameters": [{"$ref": "#/components/parameters/environmentId"}],
                    "delete": {"operationId": "dropX", "tags": ["Waas"], "security": [{"bearerAuth": []}],
                        "responses": {"204": {"description": "gone"}, "404": {"$ref": "#/components/responses/NotFound"}}},
                    "get": {"operationId": "other", "tags": ["Users"], "responses": {}}
                },
                "/e/{environmentId}/y": {"get": {"operationId": "getY", "tags": ["Waas"],
                    "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Y"}}}}}}}
            },
            "components": {
                "parameters": {"environmentId": {"name": "environmentId", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/uuid"}}},
                "responses": {"NotFound": {"description": "nf", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NotFound"}}}}},
                "schemas": {
                    "uuid": {"type": "string", "maxLength": 36},
                    "NotFound": {"type": "object", "properties": {"error": {"type": "string"}}},
                    "Y": {"type": "object", "properties": {"z": {"$ref": "#/components/schemas/Z"}}},
                    "Z": {"type": "string"}
                },
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}
            }
        })
    }

    fn ours() -> Value {
        json!({
            "paths": {"/e/{environmentId}/y": {"get": {"operationId": "getY", "responses": {}}}},
            "components": {"schemas": {"uuid": {"type": "string", "minLength": 36, "maxLength": 36}}}
        })
    }

    #[test]
    fn copies_the_tag_with_what_it_reaches_and_keeps_ours() {
        assert_eq!(tagged(&upstream(), "Waas"), ["dropX", "getY"]);
        let mut spec = ours();
        let done = import_tag(&mut spec, &upstream()).unwrap();
        assert_eq!(done.operations, ["dropX (DELETE /e/{environmentId}/x)"]);
        assert_eq!(done.present, ["getY (GET /e/{environmentId}/y)"]);
        assert_eq!(
            done.components,
            [
                "parameters/environmentId",
                "responses/NotFound",
                "schemas/NotFound",
                "securitySchemes/bearerAuth"
            ]
        );
        assert_eq!(done.kept_ours, ["schemas/uuid"]);
        let op = &spec["paths"]["/e/{environmentId}/x"]["delete"];
        // The path-level parameter travels with the operation.
        assert_eq!(
            op["parameters"],
            json!([{"$ref": "#/components/parameters/environmentId"}])
        );
        assert_eq!(spec["components"]["schemas"]["uuid"]["minLength"], 36);
        assert!(
            spec["components"]["schemas"].get("Y").is_none(),
            "getY is ours"
        );
        // Importing twice changes nothing.
        let again = spec.clone();
        let mut twice = spec;
        import_tag(&mut twice, &upstream()).unwrap();
        assert_eq!(twice, again);
    }

    #[test]
    fn a_dangling_reference_or_unknown_operation_is_named() {
        let mut broken = upstream();
        broken["components"]["schemas"]
            .as_object_mut()
            .unwrap()
            .remove("Z");
        let err = import(&mut ours(), &broken, &["getZ".into()])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "upstream has no operation `getZ`");
        let mut spec = json!({"paths": {}});
        let err = import(&mut spec, &broken, &["getY".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`#/components/schemas/Z` points at nothing"),
            "{err}"
        );
    }

    #[test]
    fn the_fixture_is_upstreams_waas_tag() {
        let upstream = fixture(&crate::generate::workspace_root()).unwrap();
        assert_eq!(upstream["openapi"], "3.2.0");
        assert_eq!(tagged(&upstream, TAG).len(), 21);
        let codes = &upstream["components"]["schemas"]["UnprocessableEntityErrorCode"]["enum"];
        assert_eq!(codes.as_array().unwrap().len(), 119);
    }
}
