//! The change report: what a new spec changes against the one the checked-in code was
//! generated from, each change classified for the facade's users and the sdk's, with the
//! version bump it implies.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

/// How a change affects the users of a crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Impact {
    /// Nothing a user can see (a description, an optional parameter the sdk does not expose).
    Invisible,
    /// New things; existing code keeps compiling and working.
    Additive,
    /// Existing code may stop compiling or working.
    Breaking,
}

impl Impact {
    /// The semver bump (the crates are 0.x: a breaking change bumps the minor version).
    pub fn bump(self) -> &'static str {
        match self {
            Impact::Invisible => "patch",
            Impact::Additive => "minor (patch while 0.x)",
            Impact::Breaking => "major (minor while 0.x)",
        }
    }
}

impl fmt::Display for Impact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Impact::Invisible => "invisible",
            Impact::Additive => "additive",
            Impact::Breaking => "breaking",
        })
    }
}

/// One change, and what it means for each crate's users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub what: String,
    pub facade: Impact,
    pub sdk: Impact,
}

/// What a spec declares, flattened for comparison.
#[derive(Debug, Default)]
struct Inventory {
    operations: BTreeMap<String, String>,
    /// `Schema.path.to.field` -> (type, required, nullable, request side)
    fields: BTreeMap<String, (String, bool, bool, bool)>,
    enums: BTreeMap<String, Vec<String>>,
    /// `operationId param (in)` -> required
    parameters: BTreeMap<String, bool>,
}

fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return reference.rsplit('/').next().unwrap_or(reference).to_owned();
    }
    if let Some(Value::Array(all)) = schema.get("allOf") {
        if let [only] = all.as_slice() {
            return type_of(only);
        }
    }
    let base = schema.get("type").and_then(Value::as_str).unwrap_or("any");
    match (base, schema.get("format").and_then(Value::as_str)) {
        ("array", _) => format!(
            "array of {}",
            type_of(schema.get("items").unwrap_or(&Value::Null))
        ),
        (base, Some(format)) => format!("{base} ({format})"),
        (base, None) => base.to_owned(),
    }
}

fn walk(inv: &mut Inventory, place: &str, schema: &Value, request: bool) {
    if let Some(Value::Array(values)) = schema.get("enum") {
        let values = values
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        inv.enums.insert(place.to_owned(), values);
    }
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            let path = format!("{place}.{name}");
            let nullable = property.get("nullable") == Some(&Value::Bool(true));
            let entry = (
                type_of(property),
                required.contains(&name.as_str()),
                nullable,
                request,
            );
            inv.fields.insert(path.clone(), entry);
            walk(inv, &path, property, request);
        }
    }
    if let Some(items) = schema.get("items") {
        walk(inv, &format!("{place}[]"), items, request);
    }
}

/// Component schemas reachable from request bodies and parameters.
fn request_side(spec: &Value) -> Vec<String> {
    let mut names = Vec::new();
    let mut stack: Vec<&Value> = Vec::new();
    for item in spec
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        for operation in item.1.as_object().into_iter().flatten() {
            for part in ["requestBody", "parameters"] {
                if let Some(found) = operation.1.get(part) {
                    stack.push(found);
                }
            }
        }
    }
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                if let Some(name) = map
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                {
                    if !names.iter().any(|n| n == name) {
                        names.push(name.to_owned());
                        if let Some(target) = spec.pointer(&format!("/components/schemas/{name}")) {
                            stack.push(target);
                        }
                    }
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items.iter()),
            _ => {}
        }
    }
    names
}

fn inventory(spec: &Value) -> Inventory {
    let mut inv = Inventory::default();
    let requests = request_side(spec);
    for (name, schema) in spec
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        walk(&mut inv, name, schema, requests.contains(name));
    }
    let parameters = spec
        .pointer("/components/parameters")
        .cloned()
        .unwrap_or_default();
    for (path, item) in spec
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        for (method, operation) in item.as_object().into_iter().flatten() {
            let Some(id) = operation.get("operationId").and_then(Value::as_str) else {
                continue;
            };
            inv.operations
                .insert(id.to_owned(), format!("{} {path}", method.to_uppercase()));
            for param in operation
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let param = match param.get("$ref").and_then(Value::as_str) {
                    Some(r) => parameters
                        .get(r.rsplit('/').next().unwrap_or(""))
                        .unwrap_or(param),
                    None => param,
                };
                let name = param.get("name").and_then(Value::as_str).unwrap_or("?");
                let place = param.get("in").and_then(Value::as_str).unwrap_or("?");
                let required = param.get("required") == Some(&Value::Bool(true));
                inv.parameters
                    .insert(format!("{id} {place} {name}"), required);
            }
        }
    }
    inv
}

/// The changes from `old` to `new`.
pub fn compare(old: &Value, new: &Value) -> Vec<Change> {
    use Impact::*;
    let (old, new) = (inventory(old), inventory(new));
    let mut out = Vec::new();
    let mut push = |what: String, facade, sdk| out.push(Change { what, facade, sdk });
    for (id, place) in &new.operations {
        if !old.operations.contains_key(id) {
            push(
                format!("operation {id} added ({place})"),
                Additive,
                Additive,
            );
        }
    }
    for (id, place) in &old.operations {
        if !new.operations.contains_key(id) {
            push(
                format!("operation {id} removed ({place})"),
                Breaking,
                Breaking,
            );
        }
    }
    for (path, (kind, required, nullable, request)) in &new.fields {
        match old.fields.get(path) {
            // A required request field is breaking: callers do not send it. Any new field of
            // a generated struct breaks the sdk's users who write it as a struct literal.
            None if *required && *request => push(
                format!("field {path} added, required ({kind})"),
                Breaking,
                Breaking,
            ),
            None => push(
                format!(
                    "field {path} added ({kind}{})",
                    if *nullable { ", nullable" } else { "" }
                ),
                Additive,
                Breaking,
            ),
            Some((old_kind, old_required, old_nullable, _)) => {
                if old_kind != kind {
                    push(
                        format!("field {path}: type {old_kind} -> {kind}"),
                        Breaking,
                        Breaking,
                    );
                }
                if old_required != required {
                    let flip = if *required {
                        "optional -> required"
                    } else {
                        "required -> optional"
                    };
                    push(format!("field {path}: {flip}"), Breaking, Breaking);
                }
                if old_nullable != nullable {
                    let flip = if *nullable {
                        "not nullable -> nullable"
                    } else {
                        "nullable -> not nullable"
                    };
                    let facade = if *nullable && !*request {
                        Breaking
                    } else {
                        Additive
                    };
                    push(format!("field {path}: {flip}"), facade, Breaking);
                }
            }
        }
    }
    for path in old.fields.keys() {
        if !new.fields.contains_key(path) {
            push(format!("field {path} removed"), Breaking, Breaking);
        }
    }
    for (place, values) in &new.enums {
        let old_values = old.enums.get(place);
        for value in values {
            if old_values.is_some_and(|o| !o.contains(value)) {
                // Open enums: an unknown value was already kept; a named variant is new.
                push(
                    format!("enum {place}: value {value:?} added"),
                    Additive,
                    Additive,
                );
            }
        }
        for value in old_values.into_iter().flatten() {
            if !values.contains(value) {
                push(
                    format!("enum {place}: value {value:?} removed"),
                    Breaking,
                    Breaking,
                );
            }
        }
    }
    for place in old.enums.keys() {
        if !new.enums.contains_key(place) {
            push(format!("enum {place} removed"), Breaking, Breaking);
        }
    }
    for (param, required) in &new.parameters {
        match old.parameters.get(param) {
            None if *required => push(
                format!("parameter {param} added, required"),
                Breaking,
                Breaking,
            ),
            // Dropped before generation unless listed in KEPT_OPTIONAL_PARAMETERS.
            None => push(
                format!("parameter {param} added, optional (not exposed)"),
                Invisible,
                Invisible,
            ),
            Some(old_required) if old_required != required => push(
                format!("parameter {param}: required flipped"),
                Breaking,
                Breaking,
            ),
            Some(_) => {}
        }
    }
    for param in old.parameters.keys() {
        if !new.parameters.contains_key(param) {
            push(format!("parameter {param} removed"), Breaking, Breaking);
        }
    }
    out
}

/// The report, one line per change and the bump each crate needs; empty when nothing changed.
pub fn report(changes: &[Change]) -> String {
    if changes.is_empty() {
        return String::new();
    }
    let mut out = String::from("changes against the previously generated spec:\n");
    for c in changes {
        out.push_str(&format!(
            "  {}: facade {}, sdk {}\n",
            c.what, c.facade, c.sdk
        ));
    }
    let worst = |f: fn(&Change) -> Impact| changes.iter().map(f).max().unwrap_or(Impact::Invisible);
    out.push_str(&format!(
        "bump: dynamic-waas {}, dynamic-waas-api {}\n",
        worst(|c| c.facade).bump(),
        worst(|c| c.sdk).bump()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(response: Value, request: Value, params: Value) -> Value {
        json!({
            "paths": {"/w/{id}": {"post": {
                "operationId": "create",
                "parameters": params,
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Req"}}}},
                "responses": {"201": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Resp"}}}}}
            }}},
            "components": {"schemas": {
                "Req": request,
                "Resp": response,
                "Kind": {"type": "string", "enum": ["a", "b"]}
            }}
        })
    }

    fn base() -> Value {
        spec(
            json!({"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}, "kind": {"$ref": "#/components/schemas/Kind"}}}),
            json!({"type": "object", "required": ["user"], "properties": {"user": {"type": "string", "format": "uuid"}}}),
            json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]),
        )
    }

    fn impacts(new: &Value) -> Vec<(String, Impact, Impact)> {
        compare(&base(), new)
            .into_iter()
            .map(|c| (c.what, c.facade, c.sdk))
            .collect()
    }

    #[test]
    fn nothing_changed_is_an_empty_report() {
        assert!(compare(&base(), &base()).is_empty());
        assert_eq!(report(&[]), "");
    }

    #[test]
    fn an_optional_field_is_additive_for_the_facade_and_breaks_struct_literals() {
        let mut new = base();
        new["components"]["schemas"]["Resp"]["properties"]["note"] =
            json!({"type": "string", "nullable": true});
        assert_eq!(
            impacts(&new),
            [(
                "field Resp.note added (string, nullable)".into(),
                Impact::Additive,
                Impact::Breaking
            )]
        );
    }

    #[test]
    fn a_required_request_field_and_a_removed_field_are_breaking() {
        let mut new = base();
        new["components"]["schemas"]["Req"]["properties"]["shareSet"] = json!({"type": "string"});
        new["components"]["schemas"]["Req"]["required"] = json!(["user", "shareSet"]);
        new["components"]["schemas"]["Resp"]["properties"]
            .as_object_mut()
            .unwrap()
            .remove("kind");
        let got = impacts(&new);
        assert!(
            got.contains(&(
                "field Req.shareSet added, required (string)".into(),
                Impact::Breaking,
                Impact::Breaking
            )),
            "{got:?}"
        );
        assert!(
            got.contains(&(
                "field Resp.kind removed".into(),
                Impact::Breaking,
                Impact::Breaking
            )),
            "{got:?}"
        );
    }

    #[test]
    fn enum_values_flips_and_types() {
        let mut new = base();
        new["components"]["schemas"]["Kind"]["enum"] = json!(["a", "c"]);
        new["components"]["schemas"]["Resp"]["required"] = json!([]);
        new["components"]["schemas"]["Resp"]["properties"]["id"] = json!({"type": "integer"});
        let got = impacts(&new);
        assert!(
            got.contains(&(
                "enum Kind: value \"c\" added".into(),
                Impact::Additive,
                Impact::Additive
            )),
            "{got:?}"
        );
        assert!(
            got.contains(&(
                "enum Kind: value \"b\" removed".into(),
                Impact::Breaking,
                Impact::Breaking
            )),
            "{got:?}"
        );
        assert!(
            got.contains(&(
                "field Resp.id: type string -> integer".into(),
                Impact::Breaking,
                Impact::Breaking
            )),
            "{got:?}"
        );
        assert!(
            got.contains(&(
                "field Resp.id: required -> optional".into(),
                Impact::Breaking,
                Impact::Breaking
            )),
            "{got:?}"
        );
    }

    #[test]
    fn operations_and_parameters() {
        let mut new = base();
        new["paths"]["/w/{id}"]["post"]["parameters"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "dryRun", "in": "query", "schema": {"type": "boolean"}}));
        new["paths"]["/w/{id}"]["get"] =
            json!({"operationId": "read", "responses": {"200": {"description": "ok"}}});
        let got = impacts(&new);
        assert!(
            got.contains(&(
                "operation read added (GET /w/{id})".into(),
                Impact::Additive,
                Impact::Additive
            )),
            "{got:?}"
        );
        assert!(
            got.contains(&(
                "parameter create query dryRun added, optional (not exposed)".into(),
                Impact::Invisible,
                Impact::Invisible
            )),
            "{got:?}"
        );
        let text = report(&compare(&base(), &new));
        assert!(text.ends_with("bump: dynamic-waas minor (patch while 0.x), dynamic-waas-api minor (patch while 0.x)\n"), "{text}");
    }
}
