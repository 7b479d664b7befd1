//! The change report: what a new spec changes against the one the checked-in code was
//! generated from, each change classified for the facade's users and the sdk's, with the
//! version bump it implies.

use std::collections::{BTreeMap, BTreeSet};
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
    /// Component schema names.
    schemas: BTreeSet<String>,
    /// Every place a schema describes: `Schema`, `Schema.field`, `Schema.field[]`, ...; a
    /// field whose parent place is new belongs to a new type, not to an existing one.
    places: BTreeSet<String>,
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
    inv.places.insert(place.to_owned());
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
        inv.schemas.insert(name.clone());
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

/// The changes from `old` to `new`, classified against what `old` had: a new operation's
/// parameters and a new schema's fields are part of something new (additive); only a change
/// to something that existed can break.
pub fn compare(old: &Value, new: &Value) -> Vec<Change> {
    use Impact::*;
    // Upstream's OpenAPI 3.1 nullable types, read as generation reads them.
    let (mut old, mut new) = (old.clone(), new.clone());
    crate::transform::nullable_type_arrays(&mut old);
    crate::transform::nullable_type_arrays(&mut new);
    let (old, new) = (inventory(&old), inventory(&new));
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
    for name in new.schemas.difference(&old.schemas) {
        push(format!("schema {name} added"), Additive, Additive);
    }
    for name in old.schemas.difference(&new.schemas) {
        push(format!("schema {name} removed"), Breaking, Breaking);
    }
    let parent = |path: &str| {
        path.rsplit_once('.')
            .map_or(String::new(), |(p, _)| p.to_owned())
    };
    for (path, (kind, required, nullable, request)) in &new.fields {
        if !old.fields.contains_key(path) && !old.places.contains(&parent(path)) {
            continue; // a field of a new type
        }
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
        if !new.fields.contains_key(path) && new.places.contains(&parent(path)) {
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
        if !new.enums.contains_key(place) && new.places.contains(place) {
            push(format!("enum {place} removed"), Breaking, Breaking);
        }
    }
    let operation = |param: &str| param.split(' ').next().unwrap_or("").to_owned();
    for (param, required) in &new.parameters {
        if !old.operations.contains_key(&operation(param)) {
            continue; // a parameter of a new operation
        }
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
        if !new.parameters.contains_key(param) && new.operations.contains_key(&operation(param)) {
            push(format!("parameter {param} removed"), Breaking, Breaking);
        }
    }
    out
}

/// A public item of the generated code, as far as its users can see it.
#[derive(Debug, PartialEq, Eq)]
enum PublicItem {
    /// A struct with named fields: its derives, and each public field's type.
    Struct {
        derives: String,
        fields: BTreeMap<String, String>,
    },
    /// Anything else (an enum, a newtype, a method's signature), as its tokens.
    Other(String),
}

/// The public items of generated code: the types of `mod types` and the client's methods.
fn public_items(code: &str) -> anyhow::Result<BTreeMap<String, PublicItem>> {
    use quote::ToTokens;
    fn collect(items: &[syn::Item], prefix: &str, out: &mut BTreeMap<String, PublicItem>) {
        for item in items {
            match item {
                syn::Item::Struct(s) if matches!(s.vis, syn::Visibility::Public(_)) => {
                    let derives = s
                        .attrs
                        .iter()
                        .filter(|a| a.path().is_ident("derive"))
                        .map(|a| a.to_token_stream().to_string())
                        .collect();
                    let item = match &s.fields {
                        syn::Fields::Named(named) => PublicItem::Struct {
                            derives,
                            fields: named
                                .named
                                .iter()
                                .filter(|f| matches!(f.vis, syn::Visibility::Public(_)))
                                .filter_map(|f| {
                                    let name = f.ident.as_ref()?.to_string();
                                    Some((name, f.ty.to_token_stream().to_string()))
                                })
                                .collect(),
                        },
                        other => {
                            PublicItem::Other(format!("{derives} {}", other.to_token_stream()))
                        }
                    };
                    out.insert(format!("{prefix}{}", s.ident), item);
                }
                syn::Item::Enum(e) if matches!(e.vis, syn::Visibility::Public(_)) => {
                    let mut e = e.clone();
                    e.attrs.retain(|a| !a.path().is_ident("doc"));
                    for v in e.variants.iter_mut() {
                        v.attrs.retain(|a| !a.path().is_ident("doc"));
                    }
                    out.insert(
                        format!("{prefix}{}", e.ident),
                        PublicItem::Other(e.to_token_stream().to_string()),
                    );
                }
                syn::Item::Type(t) if matches!(t.vis, syn::Visibility::Public(_)) => {
                    out.insert(
                        format!("{prefix}{}", t.ident),
                        PublicItem::Other(t.ty.to_token_stream().to_string()),
                    );
                }
                syn::Item::Mod(m) if matches!(m.vis, syn::Visibility::Public(_)) => {
                    if let Some((_, items)) = &m.content {
                        collect(items, &format!("{prefix}{}::", m.ident), out);
                    }
                }
                syn::Item::Impl(block) if block.trait_.is_none() => {
                    let ty = block.self_ty.to_token_stream().to_string();
                    for item in &block.items {
                        if let syn::ImplItem::Fn(f) = item {
                            if matches!(f.vis, syn::Visibility::Public(_)) {
                                out.insert(
                                    format!("{prefix}{ty}::{}", f.sig.ident),
                                    PublicItem::Other(f.sig.to_token_stream().to_string()),
                                );
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let file = syn::parse_file(code)?;
    let mut out = BTreeMap::new();
    collect(&file.items, "", &mut out);
    Ok(out)
}

/// The existing public items of the generated code that a new spec changes or removes:
/// what the spec comparison cannot see (a transformation, typify's naming, a shared schema
/// read differently). New items are not listed (the spec comparison names what they are).
pub fn api_diff(old_code: &str, new_code: &str) -> anyhow::Result<Vec<Change>> {
    use Impact::*;
    let (old, new) = (public_items(old_code)?, public_items(new_code)?);
    let mut out = Vec::new();
    for (name, before) in &old {
        let Some(after) = new.get(name) else {
            out.push(Change {
                what: format!("public item {name} removed"),
                facade: Breaking,
                sdk: Breaking,
            });
            continue;
        };
        if before == after {
            continue;
        }
        let change = match (before, after) {
            (
                PublicItem::Struct {
                    derives: d0,
                    fields: f0,
                },
                PublicItem::Struct {
                    derives: d1,
                    fields: f1,
                },
            ) => {
                let added: Vec<&str> = f1
                    .keys()
                    .filter(|k| !f0.contains_key(*k))
                    .map(String::as_str)
                    .collect();
                let removed: Vec<&str> = f0
                    .keys()
                    .filter(|k| !f1.contains_key(*k))
                    .map(String::as_str)
                    .collect();
                let retyped: Vec<String> = f0
                    .iter()
                    .filter_map(|(k, t)| {
                        f1.get(k)
                            .filter(|t1| *t1 != t)
                            .map(|t1| format!("{k}: {t} -> {t1}"))
                    })
                    .collect();
                let mut parts = Vec::new();
                if !added.is_empty() {
                    parts.push(format!("gains {}", added.join(", ")));
                }
                if !removed.is_empty() {
                    parts.push(format!("loses {}", removed.join(", ")));
                }
                parts.extend(retyped.iter().cloned());
                if d0 != d1 {
                    parts.push(format!("derives {d0} -> {d1}"));
                }
                // New fields break only struct literals (sdk users); the facade's users
                // construct no generated type.
                let only_added = removed.is_empty() && retyped.is_empty() && d0 == d1;
                Change {
                    what: format!("public item {name} changed: {}", parts.join("; ")),
                    facade: if only_added { Additive } else { Breaking },
                    sdk: Breaking,
                }
            }
            _ => Change {
                what: format!("public item {name} changed"),
                facade: Breaking,
                sdk: Breaking,
            },
        };
        out.push(change);
    }
    Ok(out)
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

    /// The report misclassified a maintainer's import: a new operation's path parameters, a
    /// new request schema's required fields and every field of a new schema were breaking.
    #[test]
    fn what_a_new_operation_brings_is_additive() {
        let mut new = base();
        new["paths"]["/w/{id}/policies/{policyId}"] = json!({"put": {
            "operationId": "updatePolicy",
            "parameters": [
                {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                {"name": "policyId", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}
            ],
            "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/PolicyRequest"}}}},
            "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Policy"}}}}}}
        }});
        let schemas = &mut new["components"]["schemas"];
        schemas["PolicyRequest"] = json!({"type": "object", "required": ["rules", "limit"], "properties": {
            "rules": {"type": "array", "items": {"type": "object", "required": ["to"], "properties": {"to": {"type": "string"}}}},
            "limit": {"type": "integer"}
        }});
        schemas["Policy"] = json!({"type": "object", "properties": {
            "id": {"type": "string"}, "note": {"type": ["string", "null"]}, "state": {"type": "string", "enum": ["on", "off"]}
        }});
        assert_eq!(
            impacts(&new),
            [
                (
                    "operation updatePolicy added (PUT /w/{id}/policies/{policyId})".into(),
                    Impact::Additive,
                    Impact::Additive
                ),
                (
                    "schema Policy added".into(),
                    Impact::Additive,
                    Impact::Additive
                ),
                (
                    "schema PolicyRequest added".into(),
                    Impact::Additive,
                    Impact::Additive
                ),
            ]
        );
        let text = report(&compare(&base(), &new));
        assert!(text.ends_with("bump: dynamic-waas minor (patch while 0.x), dynamic-waas-api minor (patch while 0.x)\n"), "{text}");
    }

    #[test]
    fn a_new_field_in_an_existing_type_still_counts_its_nested_fields_once() {
        let mut new = base();
        new["components"]["schemas"]["Resp"]["properties"]["action"] = json!({"type": "object",
            "required": ["steps"], "properties": {"steps": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}});
        assert_eq!(
            impacts(&new),
            [(
                "field Resp.action added (object)".into(),
                Impact::Additive,
                Impact::Breaking
            )]
        );
    }

    const OLD_CODE: &str = "pub mod types {
        #[derive(Clone, Debug, Default)]
        pub struct ErrorBody { pub code: Option<String>, pub error: Option<String> }
        #[derive(Clone, Debug)]
        pub struct Item { pub location: String }
        pub enum Kind { A, B }
    }
    pub struct Client { baseurl: String }
    impl Client {
        pub async fn get(&self, id: &str) -> Result<(), ()> { todo!() }
    }";

    #[test]
    fn existing_public_items_that_change_are_named() {
        assert!(api_diff(OLD_CODE, OLD_CODE).unwrap().is_empty());
        let new = OLD_CODE
            .replace(
                "pub code: Option<String>",
                "pub code: Option<serde_json::Value>, pub payload: Option<String>",
            )
            .replace(
                "pub location: String }",
                "pub location: String, pub token_source: Option<String> }",
            )
            .replace("A, B", "A, B, C")
            .replace("id: &str", "id: &Id")
            + "pub mod more { pub struct New; }";
        let got: Vec<(String, Impact, Impact)> = api_diff(OLD_CODE, &new)
            .unwrap()
            .into_iter()
            .map(|c| (c.what, c.facade, c.sdk))
            .collect();
        assert_eq!(
            got,
            [
                ("public item Client::get changed".into(), Impact::Breaking, Impact::Breaking),
                (
                    "public item types::ErrorBody changed: gains payload; code: Option < String > -> Option < serde_json :: Value >".into(),
                    Impact::Breaking,
                    Impact::Breaking
                ),
                ("public item types::Item changed: gains token_source".into(), Impact::Additive, Impact::Breaking),
                ("public item types::Kind changed".into(), Impact::Breaking, Impact::Breaking),
            ]
        );
        let gone = OLD_CODE.replace("pub enum Kind { A, B }", "");
        assert_eq!(
            api_diff(OLD_CODE, &gone).unwrap()[0].what,
            "public item types::Kind removed"
        );
    }
}
