//! Wire round trips for `cargo xtask evolve`: for each operation, its documented examples
//! (the media type's `example`, else one synthesized from the schema's own `example`s and
//! types) served by a loopback wiremock server, and a generated test that calls the
//! generated method and checks that it decodes each of them, and sends its request body as
//! documented.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{anyhow, bail, Context, Result};
use quote::ToTokens;
use serde_json::{json, Map, Value};

use crate::transform;

/// A uuid that every id pattern upstream uses accepts.
const UUID: &str = "95b11417-f18f-457f-8804-68e361f9164f";

/// Candidates for a string with a `pattern` and no `example`, tried in order.
const STRING_CANDIDATES: &[&str] = &[
    "example",
    "1",
    UUID,
    "0xbF394748301603f18d953C90F0b087CBEC0E1834",
    "US",
    "An example name",
];

/// One answer the server gives: a status and a JSON body (none for a 204).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Option<Value>,
}

/// An operation's round trips.
#[derive(Debug, Clone)]
pub struct Operation {
    pub id: String,
    pub method: String,
    /// The path with the example values of its parameters.
    pub path: String,
    /// Each path parameter's example, by name.
    pub path_values: Vec<(String, String)>,
    pub request: Option<Value>,
    pub successes: Vec<Answer>,
    pub errors: Vec<Answer>,
}

/// The round trips of the operations `ids` (every operation when empty) of `spec`, the spec
/// as the maintainer wrote it (before generation's transformations).
pub fn operations(spec: &Value, ids: &[String]) -> Result<Vec<Operation>> {
    let mut spec = spec.clone();
    // Upstream's OpenAPI 3.1 nullable types, read as generation reads them.
    transform::nullable_type_arrays(&mut spec);
    let mut out = Vec::new();
    for (path, method, op) in transform::operations(&spec) {
        let Some(id) = op.get("operationId").and_then(Value::as_str) else {
            continue;
        };
        if !ids.is_empty() && !ids.iter().any(|i| i == id) {
            continue;
        }
        let shared = spec["paths"][path]
            .get("parameters")
            .cloned()
            .unwrap_or(json!([]));
        out.push(
            operation(&spec, path, method, op, &shared)
                .with_context(|| format!("examples of {id}"))?,
        );
    }
    for id in ids {
        if !out.iter().any(|o| &o.id == id) {
            bail!("the spec has no operation `{id}`");
        }
    }
    Ok(out)
}

fn operation(
    spec: &Value,
    path: &str,
    method: &str,
    op: &Value,
    shared: &Value,
) -> Result<Operation> {
    let id = op["operationId"].as_str().unwrap_or_default().to_owned();
    let mut concrete = path.to_owned();
    let mut path_values = Vec::new();
    let params = shared.as_array().into_iter().flatten().chain(
        op.get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten(),
    );
    for param in params {
        let param = resolve(spec, param)?;
        if param.get("in").and_then(Value::as_str) != Some("path") {
            continue;
        }
        let name = param["name"]
            .as_str()
            .context("a path parameter has no name")?;
        let value = match param.get("example") {
            Some(Value::String(s)) => s.clone(),
            _ => {
                let schema = param.get("schema").unwrap_or(&Value::Null);
                match example(spec, schema, 0, 0, name)? {
                    Value::String(s) => s,
                    other => other.to_string(),
                }
            }
        };
        // Distinct values, so that two ids passed in each other's place fail the call.
        let mut value = value;
        if path_values.iter().any(|(_, v)| *v == value) && value.is_ascii() && !value.is_empty() {
            let last = b"abcdef"[path_values.len() % 6] as char;
            value = format!("{}{last}", &value[..value.len() - 1]);
        }
        concrete = concrete.replace(&format!("{{{name}}}"), &value);
        path_values.push((name.to_owned(), value));
    }
    let request = match op.get("requestBody") {
        None => None,
        Some(body) => {
            let body = resolve(spec, body)?;
            let media = body
                .pointer("/content/application~1json")
                .context("a request body that is not application/json")?;
            Some(match media.get("example") {
                Some(documented) => documented.clone(),
                None => example(
                    spec,
                    media.get("schema").unwrap_or(&Value::Null),
                    0,
                    0,
                    "body",
                )?,
            })
        }
    };
    let mut successes = Vec::new();
    let mut errors = Vec::new();
    for (status, response) in op
        .get("responses")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let Ok(code) = status.parse::<u16>() else {
            continue; // `default`
        };
        let response = resolve(spec, response)?;
        let media = response.pointer("/content/application~1json");
        let mut bodies = Vec::new();
        match media {
            None => bodies.push(None),
            Some(media) => {
                if let Some(documented) = media.get("example") {
                    bodies.push(Some(documented.clone()));
                }
                let schema = media.get("schema").unwrap_or(&Value::Null);
                let variants = if code < 300 {
                    variants(spec, schema)
                } else {
                    1
                };
                for variant in 0..variants {
                    let body = example(spec, schema, variant, 0, status)?;
                    if !bodies.contains(&Some(body.clone())) {
                        bodies.push(Some(body));
                    }
                }
            }
        }
        let answers = bodies.into_iter().map(|body| Answer { status: code, body });
        if (200..300).contains(&code) {
            successes.extend(answers);
        } else {
            errors.extend(answers);
        }
    }
    Ok(Operation {
        id,
        method: method.to_uppercase(),
        path: concrete,
        path_values,
        request,
        successes,
        errors,
    })
}

fn resolve<'a>(spec: &'a Value, mut value: &'a Value) -> Result<&'a Value> {
    for _ in 0..8 {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
            return Ok(value);
        };
        value = reference
            .strip_prefix('#')
            .and_then(|p| spec.pointer(p))
            .ok_or_else(|| anyhow!("reference `{reference}` points at nothing"))?;
    }
    bail!("reference chain too deep")
}

/// How many variants cover every branch of every union under `schema` (at least two: the
/// second sends `null` for nullable fields and `false` for booleans).
fn variants(spec: &Value, schema: &Value) -> usize {
    fn widest(spec: &Value, value: &Value, seen: &mut Vec<String>, depth: usize) -> usize {
        if depth > 40 {
            return 0;
        }
        match value {
            Value::Object(map) => {
                let mut n = ["anyOf", "oneOf"]
                    .iter()
                    .filter_map(|k| map.get(*k).and_then(Value::as_array))
                    .map(Vec::len)
                    .max()
                    .unwrap_or(0);
                if let Some(r) = map.get("$ref").and_then(Value::as_str) {
                    if !seen.iter().any(|s| s == r) {
                        seen.push(r.to_owned());
                        if let Some(target) = r.strip_prefix('#').and_then(|p| spec.pointer(p)) {
                            n = n.max(widest(spec, target, seen, depth + 1));
                        }
                    }
                }
                map.values()
                    .map(|v| widest(spec, v, seen, depth + 1))
                    .fold(n, usize::max)
            }
            Value::Array(items) => items
                .iter()
                .map(|v| widest(spec, v, seen, depth + 1))
                .max()
                .unwrap_or(0),
            _ => 0,
        }
    }
    widest(spec, schema, &mut Vec::new(), 0).clamp(2, 8)
}

/// An example of `schema`: its own `example` when it has one, else one built from its type.
/// `variant` picks union branches and enum values, so that the variants of an operation
/// cover every branch.
pub fn example(
    spec: &Value,
    schema: &Value,
    variant: usize,
    depth: usize,
    place: &str,
) -> Result<Value> {
    if depth > 24 {
        bail!("{place}: schema nested too deep for an example");
    }
    let schema = resolve(spec, schema)?;
    let kind = schema.get("type").and_then(Value::as_str);
    if let Some(documented) = schema.get("example") {
        // A JSON integer for a `number` would come back as a float.
        return Ok(match (kind, documented.as_f64()) {
            (Some("number"), Some(n)) => json!(n),
            _ => documented.clone(),
        });
    }
    if let Some(Value::Array(all)) = schema.get("allOf") {
        let mut merged = Map::new();
        let mut last = Value::Null;
        for part in all {
            match example(spec, part, variant, depth + 1, place)? {
                Value::Object(map) => merged.extend(map),
                other => last = other,
            }
        }
        let mut own = schema.clone();
        if let Some(obj) = own.as_object_mut() {
            obj.remove("allOf");
        }
        if own.get("properties").is_some() {
            if let Value::Object(map) = example(spec, &own, variant, depth + 1, place)? {
                merged.extend(map);
            }
        }
        return Ok(if merged.is_empty() {
            last
        } else {
            Value::Object(merged)
        });
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = schema.get(key) {
            if branches.is_empty() {
                bail!("{place}: empty {key}");
            }
            let branch = &branches[variant % branches.len()];
            return example(spec, branch, variant, depth + 1, place);
        }
    }
    if let Some(Value::Array(values)) = schema.get("enum") {
        let values: Vec<&Value> = values.iter().filter(|v| !v.is_null()).collect();
        if !values.is_empty() {
            return Ok(values[variant % values.len()].clone());
        }
    }
    if schema.get("properties").is_some() || kind == Some("object") {
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            // A free-form object.
            return Ok(json!({ "note": "example" }));
        };
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut out = Map::new();
        for (name, property) in properties {
            // Deep down, only what is required (recursive schemas end).
            if depth > 12 && !required.contains(&name.as_str()) {
                continue;
            }
            let resolved = resolve(spec, property)?;
            let nullable = resolved.get("nullable") == Some(&Value::Bool(true))
                || property.get("nullable") == Some(&Value::Bool(true));
            let value = if nullable && variant % 2 == 1 {
                Value::Null
            } else {
                example(
                    spec,
                    property,
                    variant,
                    depth + 1,
                    &format!("{place}.{name}"),
                )?
            };
            out.insert(name.clone(), value);
        }
        return Ok(Value::Object(out));
    }
    match kind {
        Some("array") => {
            let items = schema.get("items").unwrap_or(&Value::Null);
            let resolved = resolve(spec, items)?;
            let branches = ["anyOf", "oneOf"]
                .iter()
                .find_map(|k| resolved.get(*k).and_then(Value::as_array))
                .map_or(1, Vec::len);
            // One item per branch, so that one body carries every branch.
            (0..branches)
                .map(|i| example(spec, items, variant + i, depth + 1, &format!("{place}[]")))
                .collect::<Result<Vec<_>>>()
                .map(Value::Array)
        }
        Some("string") => string_example(schema, place),
        Some("integer") => {
            let minimum = schema.get("minimum").and_then(Value::as_i64).unwrap_or(1);
            Ok(json!(minimum.max(1)))
        }
        Some("number") => Ok(json!(1.5)),
        Some("boolean") => Ok(json!(variant.is_multiple_of(2))),
        _ => Ok(json!("example")), // any JSON value
    }
}

fn string_example(schema: &Value, place: &str) -> Result<Value> {
    let fixed = match schema.get("format").and_then(Value::as_str) {
        Some("uuid") => Some(UUID),
        Some("date-time") => Some("2024-05-01T12:00:00Z"),
        Some("date") => Some("2024-05-01"),
        Some("email") => Some("joe@example.com"),
        _ => None,
    };
    if let Some(value) = fixed {
        return Ok(json!(value));
    }
    let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let max = schema
        .get("maxLength")
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX) as usize;
    let pattern = schema.get("pattern").and_then(Value::as_str);
    let regex = match pattern {
        Some(p) if !transform::needs_hand_written_pattern(p) => regress::Regex::new(p).ok(),
        _ => None,
    };
    STRING_CANDIDATES
        .iter()
        .find(|c| {
            let n = c.chars().count();
            n >= min && n <= max && regex.as_ref().is_none_or(|r| r.find(c).is_some())
        })
        .map(|c| json!(c))
        .ok_or_else(|| {
            anyhow!(
                "{place}: no example string fits pattern {pattern:?} and lengths {min}..{max}; \
                 give the schema an `example`"
            )
        })
}

/// A generated method: its name and, for each argument after `&self`, its name and type.
struct Method {
    name: String,
    args: Vec<(String, String)>,
}

/// The generated methods, by `METHOD path` (read from the "Sends a `POST` request to
/// `/path`" line progenitor writes into each method's documentation).
fn methods(generated: &str) -> Result<BTreeMap<String, Method>> {
    let file = syn::parse_file(generated).context("the generated code does not parse")?;
    let mut out = BTreeMap::new();
    for item in &file.items {
        let syn::Item::Impl(block) = item else {
            continue;
        };
        for item in &block.items {
            let syn::ImplItem::Fn(f) = item else { continue };
            if f.sig.asyncness.is_none() {
                continue;
            }
            let doc: String = f
                .attrs
                .iter()
                .filter(|a| a.path().is_ident("doc"))
                .map(|a| a.to_token_stream().to_string())
                .collect();
            let Some(key) = sends_line(&doc) else {
                continue;
            };
            let args = f
                .sig
                .inputs
                .iter()
                .filter_map(|input| match input {
                    syn::FnArg::Typed(t) => Some((
                        t.pat.to_token_stream().to_string(),
                        t.ty.to_token_stream().to_string(),
                    )),
                    syn::FnArg::Receiver(_) => None,
                })
                .collect();
            out.insert(
                key,
                Method {
                    name: f.sig.ident.to_string(),
                    args,
                },
            );
        }
    }
    Ok(out)
}

fn sends_line(doc: &str) -> Option<String> {
    let rest = &doc[doc.find("Sends a `")? + "Sends a `".len()..];
    let (method, rest) = rest.split_once('`')?;
    let rest = &rest[rest.find('`')? + 1..];
    let (path, _) = rest.split_once('`')?;
    Some(format!("{method} {path}"))
}

/// The raw string literal of `text`.
fn raw(text: &str) -> Result<String> {
    if text.contains("\"###") {
        bail!("an example holds `\"###`");
    }
    Ok(format!("r###\"{text}\"###"))
}

fn body_literal(body: &Option<Value>) -> Result<String> {
    Ok(match body {
        None => "None".to_owned(),
        Some(b) => format!("Some({})", raw(&serde_json::to_string(b)?)?),
    })
}

/// The test file: one test per operation, one call per answer.
pub fn test_file(spec_path_of: &str, ops: &[Operation], generated: &str) -> Result<String> {
    let methods = methods(generated)?;
    let mut out = String::new();
    writeln!(
        out,
        "//! Generated by `cargo xtask evolve` from {spec_path_of}: each operation's documented \
         examples, served on loopback, must decode.\n\n{PRELUDE}"
    )?;
    for op in ops {
        let template = template_path(op);
        let method = methods
            .get(&format!("{} {template}", op.method))
            .ok_or_else(|| anyhow!("no generated method sends {} {template}", op.method))?;
        let mut call_args = Vec::new();
        for (name, ty) in &method.args {
            let arg = if name == "body" {
                let request = op
                    .request
                    .as_ref()
                    .context("a body argument without a request body")?;
                format!(
                    "&serde_json::from_str({}).unwrap()",
                    raw(&serde_json::to_string(request)?)?
                )
            } else {
                let key = name.replace('_', "").to_lowercase();
                let (_, value) = op
                    .path_values
                    .iter()
                    .find(|(n, _)| n.replace(['_', '-'], "").to_lowercase() == key)
                    .ok_or_else(|| anyhow!("{}: argument `{name}` is no path parameter", op.id))?;
                if ty.replace(' ', "") == "&'astr" {
                    format!("{value:?}")
                } else {
                    format!("&{value:?}.parse().unwrap()")
                }
            };
            call_args.push(arg);
        }
        let call = format!("client.{}({})", method.name, call_args.join(", "));
        let request = match &op.request {
            None => "None".to_owned(),
            Some(r) => format!("Some({})", raw(&serde_json::to_string(r)?)?),
        };
        let list = |answers: &[Answer]| -> Result<String> {
            answers
                .iter()
                .map(|a| Ok(format!("({}u16, {})", a.status, body_literal(&a.body)?)))
                .collect::<Result<Vec<_>>>()
                .map(|v| v.join(", "))
        };
        // An operation that declares no error has no error type to read (`Error<()>`).
        let errors = if op.errors.is_empty() {
            String::new()
        } else {
            format!(
                "    let errors: &[(u16, Option<&str>)] = &[{}];\n    \
                 for &(status, body) in errors {{\n        \
                 answer(&server, {method:?}, {path:?}, status, body).await;\n        \
                 let Err(err) = {call}.await else {{ panic!(\"{{id}}: {{status}} decoded as a success\") }};\n        \
                 error(id, status, err, body).await;\n    }}\n",
                list(&op.errors)?,
                method = op.method,
                path = op.path,
            )
        };
        writeln!(
            out,
            "#[tokio::test]\nasync fn {name}() {{\n    let server = MockServer::start().await;\n    \
             let client = client(&server);\n    let id = {id:?};\n    \
             for (status, body) in [{successes}] {{\n        \
             answer(&server, {method:?}, {path:?}, status, body).await;\n        \
             let value = {call}.await.unwrap_or_else(|e| panic!(\"{{id}} answered {{status}}: {{e}}\"));\n        \
             same(id, status, serde_json::to_value(value.into_inner()).unwrap(), body);\n        \
             sent(&server, id, {request}).await;\n    }}\n{errors}}}\n",
            name = method.name,
            id = op.id,
            successes = list(&op.successes)?,
            method = op.method,
            path = op.path,
        )?;
    }
    Ok(out)
}

/// The path template of an operation, from its concrete path and parameter values.
fn template_path(op: &Operation) -> String {
    let mut template = op.path.clone();
    for (name, value) in &op.path_values {
        template = template.replacen(value.as_str(), &format!("{{{name}}}"), 1);
    }
    template
}

const PRELUDE: &str = r#"#![allow(clippy::all)]

use dynamic_waas_api::error::{ErrorResponse, DEFAULT_ERROR_BODY_LIMIT};
use dynamic_waas_api::{ByteStream, Client, Error, RequestOptions};
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(server: &MockServer) -> Client {
    Client::new(&server.uri(), RequestOptions::new())
}

/// Answers the next request to `verb path` with `status` and `body`, and nothing else.
async fn answer(server: &MockServer, verb: &str, at: &str, status: u16, body: Option<&str>) {
    server.reset().await;
    let mut template = ResponseTemplate::new(status);
    if let Some(body) = body {
        template = template.set_body_raw(body.as_bytes().to_vec(), "application/json");
    }
    Mock::given(method(verb)).and(path(at)).respond_with(template).expect(1).mount(server).await;
}

/// JSON as compared: `null` members dropped (an absent optional field reads as `None` too),
/// numbers as floats.
fn normal(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, normal(v))).collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normal).collect()),
        Value::Number(n) => serde_json::json!(n.as_f64()),
        other => other,
    }
}

/// The decoded value, written back, is the example: nothing lost or misread.
fn same(id: &str, status: u16, decoded: Value, body: Option<&str>) {
    let expected = body.map_or(Value::Null, |b| serde_json::from_str(b).unwrap());
    assert_eq!(normal(decoded), normal(expected), "{id} {status}: decoded value differs from the example");
}

/// The request sent: the documented body (or none), no `api-version` header.
async fn sent(server: &MockServer, id: &str, body: Option<&str>) {
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "{id}");
    assert!(requests[0].headers.get("api-version").is_none(), "{id} sent api-version");
    match body {
        None => assert!(requests[0].body.is_empty(), "{id} sent a body"),
        Some(body) => {
            let got: Value = serde_json::from_slice(&requests[0].body).unwrap();
            let expected: Value = serde_json::from_str(body).unwrap();
            assert_eq!(normal(got), normal(expected), "{id}: request body differs from the example");
        }
    }
}

/// A documented error: read with its status and body kept; the shared error body reads the
/// `error` and `code` it carries as text.
async fn error(id: &str, status: u16, err: Error<ByteStream>, body: Option<&str>) {
    let response = ErrorResponse::from_error(err, DEFAULT_ERROR_BODY_LIMIT)
        .await
        .unwrap_or_else(|e| panic!("{id} {status}: no error response: {e}"));
    assert_eq!(response.status().as_u16(), status, "{id}");
    let Some(body) = body else { return };
    assert_eq!(response.body().as_ref(), body.as_bytes(), "{id} {status}: body not kept");
    let expected: Value = serde_json::from_str(body).unwrap();
    let text = |key: &str| expected.get(key).and_then(Value::as_str);
    let all_text = ["error", "code"].iter().all(|k| expected.get(*k).is_none_or(Value::is_string));
    if all_text && expected.is_object() {
        let parsed = response.parsed().unwrap_or_else(|| panic!("{id} {status}: ErrorBody does not read {body}"));
        assert_eq!(parsed.error.as_deref(), text("error"), "{id} {status}");
        assert_eq!(parsed.code.as_deref(), text("code"), "{id} {status}");
    }
    // The lenient code: text, or a number as text.
    let code = match expected.get("code") {
        Some(Value::String(code)) => Some(code.clone()),
        Some(Value::Number(code)) => Some(code.to_string()),
        _ => None,
    };
    assert_eq!(response.code(), code.as_deref(), "{id} {status}");
}

"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Value {
        json!({
            "paths": {"/w/{walletId}": {
                "parameters": [{"name": "walletId", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/uuid"}}],
                "delete": {"operationId": "drop", "responses": {"204": {"description": "gone"},
                    "422": {"description": "no", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/E"}}}}}},
                "post": {"operationId": "make",
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Req"}}}},
                    "responses": {"201": {"description": "ok", "content": {"application/json": {"schema": {
                        "type": "array", "items": {"$ref": "#/components/schemas/Policy"}}}}}}}
            }},
            "components": {"schemas": {
                "uuid": {"type": "string", "pattern": "^[0-9a-f-]{36}$", "example": UUID},
                "Evm": {"type": "string", "pattern": "^[A-Za-z0-9]{18,100}$", "example": "0xbF394748301603f18d953C90F0b087CBEC0E1834"},
                "Sol": {"type": "string", "example": "vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"},
                "Policy": {"type": "object", "required": ["to"], "properties": {
                    "to": {"type": "array", "items": {"anyOf": [{"$ref": "#/components/schemas/Evm"}, {"$ref": "#/components/schemas/Sol"}]}},
                    "note": {"type": ["string", "null"]},
                    "limit": {"type": "integer", "minimum": 1},
                    "amount": {"type": "string", "pattern": "^[0-9]+$"}
                }},
                "Req": {"type": "object", "properties": {"kind": {"type": "string", "enum": ["a", "b"]}, "at": {"type": "string", "format": "date-time"}}},
                "Codes": {"type": "string", "enum": ["lock_timeout", "too_many_requests"]},
                "E": {"allOf": [
                    {"type": "object", "required": ["error"], "properties": {"error": {"type": "string", "example": "Unprocessable"}}},
                    {"type": "object", "properties": {"code": {"anyOf": [{"$ref": "#/components/schemas/Codes"}, {"type": "string"}]}}}
                ]}
            }}
        })
    }

    #[test]
    fn examples_cover_every_branch_nulls_and_patterns() {
        let ops = operations(&spec(), &[]).unwrap();
        let make = ops.iter().find(|o| o.id == "make").unwrap();
        assert_eq!(make.path, format!("/w/{UUID}"));
        assert_eq!(
            make.request,
            Some(json!({"at": "2024-05-01T12:00:00Z", "kind": "a"}))
        );
        assert_eq!(make.successes.len(), 2);
        let first = make.successes[0].body.as_ref().unwrap();
        assert_eq!(
            first[0]["to"],
            json!([
                "0xbF394748301603f18d953C90F0b087CBEC0E1834",
                "vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"
            ])
        );
        assert_eq!(
            first[0]["amount"], "1",
            "the first candidate the pattern accepts"
        );
        assert_eq!(first[0]["note"], "example");
        let second = make.successes[1].body.as_ref().unwrap();
        assert_eq!(second[0]["note"], Value::Null);
        let drop = ops.iter().find(|o| o.id == "drop").unwrap();
        assert_eq!(
            drop.successes,
            [Answer {
                status: 204,
                body: None
            }]
        );
        assert_eq!(
            drop.errors,
            [Answer {
                status: 422,
                body: Some(json!({"error": "Unprocessable", "code": "lock_timeout"}))
            }]
        );
    }

    #[test]
    fn a_pattern_no_candidate_fits_asks_for_an_example() {
        let schema = json!({"type": "string", "pattern": "^z{3}$"});
        let err = example(&json!({}), &schema, 0, 0, "X.y")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("X.y: no example string fits pattern"),
            "{err}"
        );
    }

    #[test]
    fn finds_the_generated_method_of_each_operation() {
        let code = r#"impl Client {
            #[doc = "Drop\n\nSends a `DELETE` request to `/w/{walletId}`\n\nArguments:"]
            pub async fn drop<'a>(&'a self, wallet_id: &'a crate::ids::WalletId) -> Result<ResponseValue<()>, Error<ByteStream>> { todo!() }
        }"#;
        let found = methods(code).unwrap();
        let m = &found["DELETE /w/{walletId}"];
        assert_eq!(m.name, "drop");
        assert_eq!(m.args[0].0, "wallet_id");
        let ops = operations(&spec(), &["drop".into()]).unwrap();
        let file = test_file("spec.json", &ops, code).unwrap();
        assert!(
            file.contains(&format!("client.drop(&{UUID:?}.parse().unwrap())")),
            "{file}"
        );
        assert!(file.contains("(204u16, None)"), "{file}");
    }
}
