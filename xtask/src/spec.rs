//! Reading the checked-in spec and refusing, with a readable message, what generation cannot
//! handle (instead of letting the generator panic).

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

/// The spec's raw bytes (for the header's hash) and its parsed JSON.
pub struct Spec {
    pub bytes: Vec<u8>,
    pub json: Value,
}

pub fn load(path: &Path) -> Result<Spec> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read the spec {}", path.display()))?;
    let json: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    validate(&json).with_context(|| format!("{} cannot be generated", path.display()))?;
    Ok(Spec { bytes, json })
}

/// Checks what progenitor would otherwise panic on or silently get wrong.
pub fn validate(spec: &Value) -> Result<()> {
    let version = spec
        .get("openapi")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("no `openapi` version field"))?;
    if !version.starts_with("3.0.") {
        bail!("OpenAPI {version} is not supported: progenitor reads 3.0.x only");
    }
    let paths = spec
        .get("paths")
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("no `paths` object"))?;
    let mut problems = Vec::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            if ![
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ]
            .contains(&method.as_str())
            {
                continue;
            }
            let at = format!("{} {path}", method.to_uppercase());
            match op.get("operationId").and_then(Value::as_str) {
                Some(id) if !id.trim().is_empty() => {}
                _ => problems.push(format!("{at}: missing operationId")),
            }
            let success_types = success_body_types(op);
            if success_types.len() > 1 {
                problems.push(format!(
                    "{at}: {} different success body types ({}); progenitor supports one",
                    success_types.len(),
                    success_types.join(", ")
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("{}", problems.join("\n"))
    }
}

/// The distinct body schemas of an operation's 2xx (and `default`) responses, as text.
fn success_body_types(op: &Value) -> Vec<String> {
    let mut types: Vec<String> = op
        .get("responses")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(status, _)| status.starts_with('2'))
        .filter_map(|(status, r)| {
            r.pointer("/content/application~1json/schema")
                .map(|s| format!("{status}: {}", schema_label(s)))
        })
        .collect();
    types.sort();
    let mut labels: Vec<String> = types
        .iter()
        .map(|t| t.split_once(": ").map(|x| x.1).unwrap_or(t).to_string())
        .collect();
    labels.dedup();
    if labels.len() > 1 {
        types
    } else {
        labels
    }
}

fn schema_label(schema: &Value) -> String {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .map(|r| r.rsplit('/').next().unwrap_or(r).to_string())
        .unwrap_or_else(|| schema.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({"openapi": "3.0.3", "paths": {"/a": {"get": {"operationId": "a", "responses": {
            "200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}}
        }}}}})
    }

    #[test]
    fn accepts_a_minimal_spec() {
        validate(&minimal()).unwrap();
    }

    #[test]
    fn reports_a_missing_operation_id_with_its_place() {
        let mut spec = minimal();
        spec["paths"]["/a"]["get"]
            .as_object_mut()
            .unwrap()
            .remove("operationId");
        let err = validate(&spec).unwrap_err().to_string();
        assert_eq!(err, "GET /a: missing operationId");
    }

    #[test]
    fn reports_two_success_types() {
        let mut spec = minimal();
        spec["paths"]["/a"]["get"]["responses"]["201"] = json!({"description": "x",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/B"}}}});
        let err = validate(&spec).unwrap_err().to_string();
        assert!(
            err.starts_with("GET /a: 2 different success body types (200: A, 201: B)"),
            "{err}"
        );
    }

    #[test]
    fn refuses_openapi_3_1() {
        let mut spec = minimal();
        spec["openapi"] = json!("3.1.0");
        assert!(validate(&spec)
            .unwrap_err()
            .to_string()
            .contains("3.0.x only"));
    }

    #[test]
    fn reports_an_unreadable_file_and_bad_json() {
        let dir = std::env::temp_dir().join(format!("xtask-spec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.json");
        let err = format!("{:#}", load(&missing).err().unwrap());
        assert!(
            err.contains("cannot read the spec") && err.contains("missing.json"),
            "{err}"
        );
        let bad = dir.join("bad.json");
        std::fs::write(&bad, "{\"openapi\": ").unwrap();
        let err = format!("{:#}", load(&bad).err().unwrap());
        assert!(
            err.contains("is not valid JSON") && err.contains("line 1"),
            "{err}"
        );
    }
}
