//! Spec transformations that generation needs.
//!
//! The checked-in spec says what upstream publishes; these steps adapt a copy of it to what
//! progenitor/typify can generate well. Each step is a small function over the JSON document,
//! tested below and listed (with the reason) in CONTRIBUTING.md. None of them touches the file.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value};

/// Name of the schema that [`fold_error_responses`] creates.
pub const ERROR_BODY: &str = "ErrorBody";

/// Optional query, header and cookie parameters the generated methods take. Any other is
/// dropped before generation (see [`drop_optional_parameters`]).
pub const KEPT_OPTIONAL_PARAMETERS: &[&str] = &[];

/// String formats the sdk carries a type for; any other is read as a plain string.
pub const KEPT_FORMATS: &[&str] = &["uuid", "int32", "int64", "float", "double"];

/// A schema that generation replaces with a hand-written type of the `sdk` crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    /// Pascal-case schema name, as typify looks it up.
    pub schema: String,
    /// Path of the hand-written type, from the generated module.
    pub rust_type: &'static str,
    /// Traits the hand-written type implements that generated code may use.
    pub impls: &'static [&'static str],
}

/// The hand-written types of the `sdk` crate, by the schema they stand for.
///
/// A closed enum, a look-around pattern or a path id in the spec that has no entry here stops
/// generation with a message naming the schema, so that a new enum upstream never silently
/// becomes a closed Rust enum again.
const HAND_WRITTEN: &[(&str, &str, &[&str])] = &[
    (
        "WaasBackupOptionsEnum",
        "crate::enums::WaasBackupOptionsEnum",
        &["FromStr", "Display"],
    ),
    (
        "ThresholdSignatureScheme",
        "crate::enums::ThresholdSignatureScheme",
        &["FromStr", "Display"],
    ),
    (
        "WaasChainEnum",
        "crate::enums::WaasChainEnum",
        &["FromStr", "Display"],
    ),
    (
        "PasswordUpdateStatus",
        "crate::enums::PasswordUpdateStatus",
        &["FromStr", "Display"],
    ),
    (
        "ShareSetType",
        "crate::enums::ShareSetType",
        &["FromStr", "Display"],
    ),
    (
        "EnvironmentId",
        "crate::ids::EnvironmentId",
        &["FromStr", "Display"],
    ),
    ("WalletId", "crate::ids::WalletId", &["FromStr", "Display"]),
    ("Uuid", "crate::ids::ResourceId", &["FromStr", "Display"]),
    (
        "KeygenId",
        "crate::labels::KeygenId",
        &["FromStr", "Display"],
    ),
    (
        "ExternalKeyShareId",
        "crate::labels::ExternalKeyShareId",
        &["FromStr", "Display"],
    ),
];

/// Applies every transformation in order and returns the replacements generation must use.
pub fn apply_all(spec: &mut Value) -> Result<Vec<Replacement>> {
    nullable_type_arrays(spec);
    drop_optional_parameters(spec)?;
    fold_error_responses(spec)?;
    scalar_unions(spec);
    lenient_responses(spec)?;
    let mut replaced = distinct_path_id_schemas(spec)?;
    replaced.extend(hoist_lookaround_patterns(spec)?);
    drop_misread_patterns(spec);
    open_string_enums(spec);
    replaced.extend(closed_string_enums(spec));
    strip_unsupported_formats(spec);
    // The shared id schema of responses is replaced too: it is lenient when reading, so a
    // response is never lost to an id the server spells differently.
    if schemas(spec)?.contains_key("uuid") {
        replaced.push("Uuid".to_string());
    }
    replaced.sort();
    replaced.dedup();
    replaced.iter().map(|name| replacement_for(name)).collect()
}

/// Rewrites OpenAPI 3.1's `type: [T, "null"]` as 3.0's `type: T, nullable: true` (several
/// non-null types become an `anyOf` of each).
///
/// Why: upstream publishes its spec as OpenAPI 3.1/3.2; a maintainer copies its schemas into
/// the 3.0 spec as they are, and the generator reads 3.0 only (a type array does not parse).
pub fn nullable_type_arrays(spec: &mut Value) -> Vec<String> {
    let mut rewritten = Vec::new();
    nullable_types_in(spec, "", &mut rewritten);
    rewritten
}

fn nullable_types_in(value: &mut Value, place: &str, rewritten: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get("type") {
                let nullable = types.iter().any(|t| t == "null");
                let rest: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                match rest.as_slice() {
                    [] => {
                        map.remove("type");
                    }
                    [only] => {
                        map.insert("type".into(), only.clone());
                    }
                    several => {
                        map.remove("type");
                        let branches = several.iter().map(|t| json!({ "type": t })).collect();
                        map.insert("anyOf".into(), Value::Array(branches));
                    }
                }
                if nullable {
                    map.insert("nullable".into(), Value::Bool(true));
                }
                rewritten.push(place.to_owned());
            }
            for (key, nested) in map.iter_mut() {
                nullable_types_in(nested, key, rewritten);
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| nullable_types_in(item, place, rewritten)),
        _ => {}
    }
}

/// Makes an `anyOf` / `oneOf` whose branches are all scalars of one type (two string
/// schemas, say) that scalar type itself; the branches' own constraints go.
///
/// Why: typify makes an `anyOf` of branches that can overlap a struct of optional flattened
/// members, which can never decode a plain string: upstream's own example of an address
/// (`anyOf` of `WalletPublicKey` and `SolanaPublicKey`) would fail the whole response. A
/// union of strings is a string; which branch a value matches is the server's to check.
/// Branches of different scalar types are left to typify, which makes an untagged enum that
/// decodes each of them.
pub fn scalar_unions(spec: &mut Value) -> Vec<String> {
    let snapshot = spec.clone();
    let mut merged = Vec::new();
    scalar_unions_in(&snapshot, spec, "", &mut merged);
    merged
}

fn scalar_unions_in(spec: &Value, value: &mut Value, place: &str, merged: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for key in ["anyOf", "oneOf"] {
                let Some(Value::Array(branches)) = map.get(key) else {
                    continue;
                };
                // Owned: a branch without `$ref` resolves to itself, inside `map`.
                let types: Option<Vec<String>> = branches
                    .iter()
                    .map(|branch| scalar_type(spec, branch).map(str::to_owned))
                    .collect();
                let Some(types) = types else { continue };
                let Some(first) = types.first().cloned() else {
                    continue;
                };
                let numeric = |t: &String| t == "integer" || t == "number";
                let same = if types.iter().all(|t| *t == first) {
                    Some(first)
                } else if types.iter().all(numeric) {
                    Some("number".to_owned())
                } else {
                    None
                };
                if let Some(scalar) = same {
                    map.remove(key);
                    map.insert("type".into(), json!(scalar));
                    merged.push(place.to_owned());
                }
            }
            for (key, nested) in map.iter_mut() {
                scalar_unions_in(spec, nested, key, merged);
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| scalar_unions_in(spec, item, place, merged)),
        _ => {}
    }
}

/// The scalar type a branch resolves to (`string`, `integer`, `number`, `boolean`), if it is
/// a plain scalar schema.
fn scalar_type<'a>(spec: &'a Value, branch: &'a Value) -> Option<&'a str> {
    let schema = resolve(spec, branch).ok()?;
    if ["anyOf", "oneOf", "allOf", "properties", "items"]
        .iter()
        .any(|k| schema.get(k).is_some())
    {
        return None;
    }
    match schema.get("type").and_then(Value::as_str)? {
        t @ ("string" | "integer" | "number" | "boolean") => Some(t),
        _ => None,
    }
}

/// Removes every `pattern` that typify's `regress` would misread or cannot compile, except
/// in the schemas a hand-written type replaces (see [`hoist_lookaround_patterns`]).
///
/// Why: a component schema of its own (`NonEmptyStringWith255MaxLength`) or an array item
/// can carry upstream's look-around pattern too; without a hand-written type to check it,
/// the length limits stay and the pattern is the server's to check.
pub fn drop_misread_patterns(spec: &mut Value) -> Vec<String> {
    let mut dropped = Vec::new();
    if let Some(schemas) = spec
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in schemas.iter_mut() {
            if !is_hand_written(&pascal_case(name)) {
                drop_patterns_in(schema, name, &mut dropped);
            }
        }
    }
    if let Some(paths) = spec.get_mut("paths") {
        drop_patterns_in(paths, "paths", &mut dropped);
    }
    dropped
}

fn drop_patterns_in(value: &mut Value, place: &str, dropped: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let misread = map
                .get("pattern")
                .and_then(Value::as_str)
                .is_some_and(|p| needs_hand_written_pattern(p) || regress::Regex::new(p).is_err());
            if misread {
                map.remove("pattern");
                dropped.push(place.to_owned());
            }
            for (key, nested) in map.iter_mut() {
                drop_patterns_in(nested, key, dropped);
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| drop_patterns_in(item, place, dropped)),
        _ => {}
    }
}

/// Looks up the hand-written type for a schema, or says what to write.
pub fn replacement_for(schema: &str) -> Result<Replacement> {
    let pascal = pascal_case(schema);
    HAND_WRITTEN
        .iter()
        .find(|(name, _, _)| *name == pascal)
        .map(|(name, rust_type, impls)| Replacement {
            schema: (*name).to_string(),
            rust_type,
            impls,
        })
        .ok_or_else(|| {
            anyhow!(
                "schema `{schema}` needs a hand-written type in the sdk crate (an open enum in \
                 sdk/src/enums.rs, an id in sdk/src/ids.rs or a label in sdk/src/labels.rs) \
                 and an entry in xtask/src/transform.rs HAND_WRITTEN"
            )
        })
}

/// Folds each operation's error responses into one raw response described by [`ERROR_BODY`].
///
/// Why: progenitor accepts one error body type per operation and panics on upstream's
/// distinct `BadRequest` / `NotFound` / ... schemas (progenitor #344, #950). The response is
/// declared as `*/*` so that progenitor hands it over raw (status, headers and bytes): a typed
/// JSON decode in generated code drops status and headers when the body is a proxy's HTML
/// page or empty. The sdk's hand-written `error` module decodes it into the generated
/// `ErrorBody`, whose shape is fixed here ([`error_body_schema`]) rather than derived from
/// the error schemas: an operation added later, with error schemas of its own (a 422 with a
/// `code` enum, an `allOf`), can never reshape a public type that existing code reads. Each
/// error schema is still generated as a type of its own, for reading the raw body.
pub fn fold_error_responses(spec: &mut Value) -> Result<()> {
    let mut folded_any = false;
    let snapshot = spec.clone();
    for (path, method, operation) in operations_mut(spec)? {
        let Some(responses) = operation
            .get_mut("responses")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        for (status, response) in responses.iter_mut() {
            if is_success(status) {
                continue;
            }
            let resolved = resolve(&snapshot, response)
                .with_context(|| format!("{method} {path}: response {status}"))?;
            if let Some(schema) = resolved.pointer("/content/application~1json/schema") {
                resolve(&snapshot, schema)
                    .with_context(|| format!("{method} {path}: response {status} schema"))?;
            }
            let description = resolved
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("Error")
                .to_string();
            *response = json!({
                "description": description,
                "content": {"*/*": {"schema": {
                    "$ref": format!("#/components/schemas/{ERROR_BODY}")
                }}}
            });
            folded_any = true;
        }
    }
    if folded_any {
        schemas_mut(spec)?.insert(ERROR_BODY.to_string(), error_body_schema());
    }
    Ok(())
}

/// The fixed schema of [`ERROR_BODY`]: the two fields Dynamic's error bodies share, both
/// optional, both text (a body that types them otherwise does not parse as it; the raw body
/// and the sdk's lenient `code()` still read it).
pub fn error_body_schema() -> Value {
    json!({
        "description": "The body of an error response: the `error` text and `code` that Dynamic's \
                        error schemas share (the HTTP status says which error it was; the raw \
                        body holds the rest).",
        "type": "object",
        "properties": {
            "code": {"type": "string"},
            "error": {"type": "string"}
        }
    })
}

/// Gives each path parameter that uses the shared `uuid` schema a schema of its own, named
/// after the parameter (`environmentId` becomes `EnvironmentId`).
///
/// Why: with one shared type an environment id and a wallet id can be swapped silently, and
/// a validation error cannot say which one was wrong. Returns the new schema names.
pub fn distinct_path_id_schemas(spec: &mut Value) -> Result<Vec<String>> {
    let uuid_ref = "#/components/schemas/uuid";
    let Some(uuid) = schemas(spec)?.get("uuid").cloned() else {
        return Ok(Vec::new());
    };
    let mut created = Vec::new();
    let mut visit = |param: &mut Value| -> Result<()> {
        if param.get("in").and_then(Value::as_str) != Some("path")
            || param.pointer("/schema/$ref").and_then(Value::as_str) != Some(uuid_ref)
        {
            return Ok(());
        }
        let name = param
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("a path parameter has no name"))?;
        let schema_name = pascal_case(name);
        if !is_hand_written(&schema_name) {
            // A path id this release has no type for keeps the shared, lenient id type.
            return Ok(());
        }
        let mut schema = uuid.clone();
        if let (Some(obj), Some(desc)) = (schema.as_object_mut(), param.get("description")) {
            obj.insert("description".into(), desc.clone());
        }
        param["schema"] = json!({ "$ref": format!("#/components/schemas/{schema_name}") });
        created.push((schema_name, schema));
        Ok(())
    };
    if let Some(params) = spec
        .pointer_mut("/components/parameters")
        .and_then(Value::as_object_mut)
    {
        for param in params.values_mut() {
            visit(param)?;
        }
    }
    for (_, _, operation) in operations_mut(spec)? {
        if let Some(params) = operation
            .get_mut("parameters")
            .and_then(Value::as_array_mut)
        {
            for param in params {
                visit(param)?;
            }
        }
    }
    let schemas = schemas_mut(spec)?;
    let mut names = Vec::new();
    for (name, schema) in created {
        schemas.insert(name.clone(), schema);
        names.push(name);
    }
    Ok(names)
}

/// Moves inline string schemas whose `pattern` uses look-around or Unicode classes into
/// named schemas (named after the property), so that a hand-written type validates them.
///
/// Why: typify compiles patterns with `regress` in ECMAScript mode without the `u` flag, so
/// upstream's `\p{L}` would not mean "any letter"; Rust's `regex` has no look-around. The
/// hand-written types check exactly what the pattern says, and say which field was wrong.
pub fn hoist_lookaround_patterns(spec: &mut Value) -> Result<Vec<String>> {
    let mut hoisted: Vec<(String, Value)> = Vec::new();
    for (path, method, operation) in operations_mut(spec)? {
        let Some(schema) = operation.pointer_mut("/requestBody/content/application~1json/schema")
        else {
            continue;
        };
        hoist_in(schema, &mut hoisted).with_context(|| format!("{method} {path}: request body"))?;
    }
    for schema in schemas_mut(spec)?.values_mut() {
        hoist_in(schema, &mut hoisted)?;
    }
    let schemas = schemas_mut(spec)?;
    let mut names = Vec::new();
    for (name, schema) in hoisted {
        if let Some(existing) = schemas.get(&name) {
            if *existing != schema {
                bail!("two different look-around schemas would both be named `{name}`");
            }
        }
        schemas.insert(name.clone(), schema);
        names.push(name);
    }
    names.dedup();
    Ok(names)
}

fn hoist_in(schema: &mut Value, hoisted: &mut Vec<(String, Value)>) -> Result<()> {
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, prop) in props.iter_mut() {
            let pattern = prop.get("pattern").and_then(Value::as_str).unwrap_or("");
            if needs_hand_written_pattern(pattern) && !is_hand_written(&pascal_case(name)) {
                // No hand-written type checks it: the length limits still do, the pattern
                // (which typify would misread) is left to the server.
                if let Some(obj) = prop.as_object_mut() {
                    obj.remove("pattern");
                }
            } else if needs_hand_written_pattern(pattern) {
                let schema_name = pascal_case(name);
                let moved = std::mem::replace(
                    prop,
                    json!({ "$ref": format!("#/components/schemas/{schema_name}") }),
                );
                hoisted.push((schema_name, moved));
            } else {
                hoist_in(prop, hoisted)?;
            }
        }
    }
    if let Some(items) = schema.get_mut("items") {
        hoist_in(items, hoisted)?;
    }
    Ok(())
}

/// Whether a pattern uses syntax that typify's `regress` (no `u` flag) would misread.
pub fn needs_hand_written_pattern(pattern: &str) -> bool {
    ["(?=", "(?!", "(?<=", "(?<!", "\\p{", "\\P{"]
        .iter()
        .any(|syntax| pattern.contains(syntax))
}

/// Names every closed string enum among the component schemas.
///
/// Why: typify makes closed Rust enums, so one value upstream adds would fail a whole
/// response. Each is replaced by a hand-written open enum that keeps unknown values.
pub fn closed_string_enums(spec: &Value) -> Vec<String> {
    let Some(schemas) = spec
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    schemas
        .iter()
        .filter(|(_, s)| {
            s.get("type").and_then(Value::as_str) == Some("string") && s.get("enum").is_some()
        })
        .map(|(name, _)| name.clone())
        .collect()
}

fn is_hand_written(schema: &str) -> bool {
    HAND_WRITTEN.iter().any(|(name, _, _)| *name == schema)
}

/// Drops the optional query, header and cookie parameters not listed in
/// [`KEPT_OPTIONAL_PARAMETERS`].
///
/// Why: the positional interface makes each parameter an argument, so a new optional one
/// upstream adds would change every call's signature and break the facade and its users. A
/// new optional parameter is listed by the change report; adding it to the list exposes it.
pub fn drop_optional_parameters(spec: &mut Value) -> Result<Vec<String>> {
    let snapshot = spec.clone();
    let mut dropped = Vec::new();
    let mut keep = |param: &Value| -> Result<bool> {
        let param = resolve(&snapshot, param)?;
        let optional = param.get("required") != Some(&Value::Bool(true));
        let place = param.get("in").and_then(Value::as_str).unwrap_or("");
        let name = param.get("name").and_then(Value::as_str).unwrap_or("");
        if optional && place != "path" && !KEPT_OPTIONAL_PARAMETERS.contains(&name) {
            dropped.push(format!("{place} {name}"));
            return Ok(false);
        }
        Ok(true)
    };
    let paths = spec
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| anyhow!("the spec has no `paths` object"))?;
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (key, value) in item.iter_mut() {
            let params = if key == "parameters" {
                value.as_array_mut()
            } else if METHODS.contains(&key.as_str()) {
                value.get_mut("parameters").and_then(Value::as_array_mut)
            } else {
                None
            };
            if let Some(params) = params {
                let mut kept = Vec::new();
                for param in params.drain(..) {
                    if keep(&param)? {
                        kept.push(param);
                    }
                }
                *params = kept;
            }
        }
    }
    Ok(dropped)
}

/// Reads responses leniently: string schemas reached only from responses lose `pattern`,
/// `minLength` and `maxLength`.
///
/// Why: typify turns constrained strings into validating types, so one value the server
/// spells differently (an id in another format, a longer label) would fail a whole response,
/// and with it the key share ids the caller must store. Requests stay validated.
pub fn lenient_responses(spec: &mut Value) -> Result<()> {
    let snapshot = spec.clone();
    let mut from_responses = Vec::new();
    let mut from_requests = Vec::new();
    if let Some(paths) = snapshot.get("paths").and_then(Value::as_object) {
        for item in paths.values() {
            for (key, value) in item.as_object().into_iter().flatten() {
                if key == "parameters" {
                    collect_refs(&snapshot, value, &mut from_requests);
                }
                if !METHODS.contains(&key.as_str()) {
                    continue;
                }
                for (part, found) in value.as_object().into_iter().flatten() {
                    match part.as_str() {
                        "responses" => collect_refs(&snapshot, found, &mut from_responses),
                        "parameters" | "requestBody" => {
                            collect_refs(&snapshot, found, &mut from_requests)
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    let response_only: Vec<String> = from_responses
        .into_iter()
        .filter(|name| !from_requests.contains(name))
        .collect();
    for name in &response_only {
        if let Some(schema) = schemas_mut(spec)?.get_mut(name) {
            loosen(schema);
        }
    }
    for (_, _, operation) in operations_mut(spec)? {
        if let Some(responses) = operation.get_mut("responses") {
            loosen(responses);
        }
    }
    Ok(())
}

/// The component schemas `value` refers to, directly or through others.
fn collect_refs(spec: &Value, value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                if let Some(name) = reference.strip_prefix("#/components/schemas/") {
                    if !found.iter().any(|f| f == name) {
                        found.push(name.to_owned());
                        if let Some(target) = spec.pointer(&format!("/components/schemas/{name}")) {
                            collect_refs(spec, target, found);
                        }
                    }
                } else if let Some(target) =
                    reference.strip_prefix('#').and_then(|p| spec.pointer(p))
                {
                    collect_refs(spec, target, found);
                }
            }
            for nested in map.values() {
                collect_refs(spec, nested, found);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect_refs(spec, item, found)),
        _ => {}
    }
}

/// Removes string constraints from a schema and every schema inside it (not through `$ref`).
fn loosen(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("string") {
                for constraint in ["pattern", "minLength", "maxLength"] {
                    map.remove(constraint);
                }
            }
            for nested in map.values_mut() {
                loosen(nested);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(loosen),
        _ => {}
    }
}

/// Makes every string enum without a hand-written open type a plain string, its known values
/// listed in its description.
///
/// Why: typify makes closed Rust enums, which fail a whole response on a value added upstream.
/// The enums the facade uses have hand-written open types (they keep unknown values); a new
/// one regenerates as a string, with zero hand edits, until a maintainer gives it a type.
pub fn open_string_enums(spec: &mut Value) -> Vec<String> {
    let mut opened = Vec::new();
    if let Some(schemas) = spec
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in schemas.iter_mut() {
            if is_hand_written(&pascal_case(name)) {
                // Its own `enum` stays (it is replaced); enums inside it do not.
                if let Some(obj) = schema.as_object_mut() {
                    for (key, nested) in obj.iter_mut() {
                        if key != "enum" {
                            open_enums_in(nested, name, &mut opened);
                        }
                    }
                }
            } else {
                open_enums_in(schema, name, &mut opened);
            }
        }
    }
    if let Some(paths) = spec.get_mut("paths") {
        open_enums_in(paths, "paths", &mut opened);
    }
    opened
}

fn open_enums_in(value: &mut Value, place: &str, opened: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let is_string_enum = map.get("type").and_then(Value::as_str) == Some("string")
                && map.get("enum").is_some_and(Value::is_array);
            if is_string_enum {
                if let Some(Value::Array(values)) = map.remove("enum") {
                    let known: Vec<String> = values
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|v| format!("`{v}`"))
                        .collect();
                    let note = format!("Known values: {}.", known.join(", "));
                    let description = match map.get("description").and_then(Value::as_str) {
                        Some(text) => format!("{text} {note}"),
                        None => note,
                    };
                    map.insert("description".into(), Value::String(description));
                    opened.push(place.to_owned());
                }
            }
            for (key, nested) in map.iter_mut() {
                open_enums_in(nested, key, opened);
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| open_enums_in(item, place, opened)),
        _ => {}
    }
}

/// Removes every string `format` the sdk has no type for ([`KEPT_FORMATS`]).
///
/// Why: typify maps `date-time`, `date` and others to crates the sdk does not depend on
/// (chrono, ...), so a new field of such a format would not compile; read as text it is also
/// lenient, as responses should be.
pub fn strip_unsupported_formats(spec: &mut Value) -> Vec<String> {
    let mut stripped = Vec::new();
    strip_formats_in(spec, &mut stripped);
    stripped
}

fn strip_formats_in(value: &mut Value, stripped: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let format = map.get("format").and_then(Value::as_str).map(str::to_owned);
            if let Some(format) = format {
                if !KEPT_FORMATS.contains(&format.as_str()) {
                    map.remove("format");
                    stripped.push(format);
                }
            }
            map.values_mut()
                .for_each(|nested| strip_formats_in(nested, stripped));
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| strip_formats_in(item, stripped)),
        _ => {}
    }
}

/// The keys of a path item that are operations (the others: `parameters`, `summary`, ...).
pub(crate) const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Every operation of `spec` as `(path, method, operation)`, the method as the spec writes
/// it; a spec without paths has none.
pub(crate) fn operations(spec: &Value) -> Vec<(&str, &str, &Value)> {
    let mut out = Vec::new();
    for (path, item) in spec
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        for (method, op) in item.as_object().into_iter().flatten() {
            if METHODS.contains(&method.as_str()) {
                out.push((path.as_str(), method.as_str(), op));
            }
        }
    }
    out
}

fn is_success(status: &str) -> bool {
    status.starts_with('2')
}

/// Every operation as `(path, METHOD, operation)`.
fn operations_mut(spec: &mut Value) -> Result<Vec<(String, String, &mut Value)>> {
    let paths = spec
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| anyhow!("the spec has no `paths` object"))?;
    let mut out = Vec::new();
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            bail!("path `{path}` is not an object");
        };
        for (method, operation) in item.iter_mut() {
            if METHODS.contains(&method.as_str()) {
                out.push((path.clone(), method.to_uppercase(), operation));
            }
        }
    }
    Ok(out)
}

fn schemas(spec: &Value) -> Result<&Map<String, Value>> {
    spec.pointer("/components/schemas")
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("the spec has no `components.schemas` object"))
}

fn schemas_mut(spec: &mut Value) -> Result<&mut Map<String, Value>> {
    if spec.pointer("/components/schemas").is_none() {
        let components = spec
            .as_object_mut()
            .ok_or_else(|| anyhow!("the spec is not a JSON object"))?
            .entry("components")
            .or_insert_with(|| json!({}));
        components
            .as_object_mut()
            .ok_or_else(|| anyhow!("`components` is not an object"))?
            .entry("schemas")
            .or_insert_with(|| json!({}));
    }
    spec.pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| anyhow!("`components.schemas` is not an object"))
}

/// Follows a local `$ref` (one level at a time, up to a small depth).
fn resolve<'a>(spec: &'a Value, mut value: &'a Value) -> Result<&'a Value> {
    for _ in 0..8 {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
            return Ok(value);
        };
        let pointer = reference
            .strip_prefix('#')
            .ok_or_else(|| anyhow!("only local references are supported, found `{reference}`"))?;
        value = spec
            .pointer(pointer)
            .ok_or_else(|| anyhow!("reference `{reference}` points at nothing"))?;
    }
    bail!("reference chain too deep")
}

/// `environmentId` -> `EnvironmentId`, `uuid` -> `Uuid`, `key_share` -> `KeyShare`.
pub fn pascal_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if c == '_' || c == '-' || c == ' ' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op_with_errors() -> Value {
        json!({
            "paths": {"/x/{id}": {"post": {
                "operationId": "x",
                "parameters": [{"$ref": "#/components/parameters/id"}],
                "responses": {
                    "201": {"description": "ok"},
                    "400": {"$ref": "#/components/responses/BadRequest"},
                    "404": {"description": "nf", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NotFound"}}}},
                    "500": {"description": "no body"}
                }
            }}},
            "components": {
                "parameters": {"id": {"name": "walletId", "in": "path", "required": true, "description": "UUID of the wallet", "schema": {"$ref": "#/components/schemas/uuid"}}},
                "responses": {"BadRequest": {"description": "Bad Request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BadRequest"}}}}},
                "schemas": {
                    "uuid": {"type": "string", "minLength": 36},
                    "BadRequest": {"type": "object", "properties": {"error": {"type": "string"}}},
                    "NotFound": {"type": "object", "required": ["error", "code"], "properties": {"error": {"type": "string"}, "code": {"type": "string", "example": "not_found"}}},
                    "Color": {"type": "string", "enum": ["red"]},
                    "Plain": {"type": "string"}
                }
            }
        })
    }

    #[test]
    fn folds_every_error_response_into_one_optional_body() {
        let mut spec = op_with_errors();
        fold_error_responses(&mut spec).unwrap();
        let responses = spec.pointer("/paths/~1x~1{id}/post/responses").unwrap();
        for status in ["400", "404", "500"] {
            assert_eq!(
                responses[status].pointer("/content/*~1*/schema/$ref"),
                Some(&json!("#/components/schemas/ErrorBody")),
                "{status}"
            );
        }
        assert_eq!(responses["400"]["description"], "Bad Request");
        assert_eq!(responses["201"], json!({"description": "ok"}));
        let body = &spec["components"]["schemas"][ERROR_BODY];
        assert!(body.get("required").is_none());
        assert_eq!(body["properties"]["code"], json!({"type": "string"}));
        assert_eq!(body["properties"]["error"], json!({"type": "string"}));
        // The folded schemas stay, as types for reading a raw body.
        assert!(spec["components"]["schemas"].get("NotFound").is_some());
    }

    /// Requirement: adding operations never reshapes the shared error body. Error schemas
    /// that type `code` as an enum, an object or through `allOf` leave it as it is.
    #[test]
    fn the_error_body_is_fixed_whatever_the_error_schemas_say() {
        let mut plain = op_with_errors();
        fold_error_responses(&mut plain).unwrap();
        let mut other = op_with_errors();
        let schemas = &mut other["components"]["schemas"];
        schemas["NotFound"]["properties"]["error"] = json!({"type": "object"});
        schemas["NotFound"]["properties"]["payload"] = json!({"type": "object"});
        schemas["Codes"] = json!({"type": "string", "enum": ["a", "b"]});
        schemas["Unprocessable"] = json!({"allOf": [
            {"$ref": "#/components/schemas/BadRequest"},
            {"type": "object", "properties": {"code": {"$ref": "#/components/schemas/Codes"}}}
        ]});
        other["paths"]["/x/{id}"]["post"]["responses"]["422"] = json!({"description": "u",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Unprocessable"}}}});
        fold_error_responses(&mut other).unwrap();
        assert_eq!(
            other["components"]["schemas"][ERROR_BODY],
            plain["components"]["schemas"][ERROR_BODY]
        );
        assert_eq!(
            other["components"]["schemas"][ERROR_BODY],
            error_body_schema()
        );
    }

    #[test]
    fn optional_parameters_are_dropped_and_required_ones_kept() {
        let mut spec = op_with_errors();
        spec["paths"]["/x/{id}"]["post"]["parameters"] = json!([
            {"$ref": "#/components/parameters/id"},
            {"name": "dryRun", "in": "query", "schema": {"type": "boolean"}},
            {"name": "x-trace", "in": "header", "required": false, "schema": {"type": "string"}},
            {"name": "page", "in": "query", "required": true, "schema": {"type": "integer"}}
        ]);
        let dropped = drop_optional_parameters(&mut spec).unwrap();
        assert_eq!(dropped, ["query dryRun", "header x-trace"]);
        let kept = spec["paths"]["/x/{id}"]["post"]["parameters"]
            .as_array()
            .unwrap();
        assert_eq!(kept.len(), 2);
    }

    #[test]
    fn responses_are_read_leniently_and_requests_stay_checked() {
        let mut spec = json!({
            "paths": {"/x": {"post": {
                "operationId": "x",
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Req"}}}},
                "responses": {"201": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Resp"}}}}}
            }}},
            "components": {"schemas": {
                "Shared": {"type": "string", "pattern": "^[a-f]+$"},
                "Req": {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/Shared"}, "b": {"type": "string", "maxLength": 3}}},
                "Resp": {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/Shared"}, "c": {"type": "string", "nullable": true, "pattern": "^[0-9]+$", "minLength": 1}}}
            }}
        });
        lenient_responses(&mut spec).unwrap();
        let schemas = &spec["components"]["schemas"];
        assert_eq!(
            schemas["Shared"]["pattern"], "^[a-f]+$",
            "shared with a request"
        );
        assert_eq!(schemas["Req"]["properties"]["b"]["maxLength"], 3);
        assert_eq!(
            schemas["Resp"]["properties"]["c"],
            json!({"type": "string", "nullable": true})
        );
    }

    #[test]
    fn unknown_string_enums_become_strings_and_hand_written_ones_stay() {
        let mut spec = op_with_errors();
        spec["components"]["schemas"]["ShareSetType"] =
            json!({"type": "string", "enum": ["rootUser"]});
        spec["components"]["schemas"]["NotFound"]["properties"]["kind"] =
            json!({"type": "string", "enum": ["a", "b"], "description": "The kind."});
        let opened = open_string_enums(&mut spec);
        assert_eq!(opened, ["Color", "kind"]);
        let schemas = &spec["components"]["schemas"];
        assert_eq!(schemas["ShareSetType"]["enum"], json!(["rootUser"]));
        assert_eq!(
            schemas["Color"],
            json!({"type": "string", "description": "Known values: `red`."})
        );
        assert_eq!(
            schemas["NotFound"]["properties"]["kind"]["description"],
            "The kind. Known values: `a`, `b`."
        );
        assert_eq!(closed_string_enums(&spec), ["ShareSetType"]);
    }

    #[test]
    fn formats_without_a_type_in_the_sdk_are_read_as_text() {
        let mut spec = json!({"a": {"type": "string", "format": "date-time"},
            "b": {"type": "string", "format": "uuid"},
            "c": {"type": "integer", "format": "int64"},
            "properties": {"format": {"type": "string", "format": "ipv4"}}});
        let stripped = strip_unsupported_formats(&mut spec);
        assert_eq!(stripped, ["date-time", "ipv4"]);
        assert_eq!(spec["a"], json!({"type": "string"}));
        assert_eq!(spec["b"]["format"], "uuid");
        assert_eq!(spec["c"]["format"], "int64");
        assert_eq!(spec["properties"]["format"], json!({"type": "string"}));
    }

    #[test]
    fn path_ids_without_a_hand_written_type_keep_the_shared_id() {
        let mut spec = op_with_errors();
        spec["components"]["parameters"]["id"]["name"] = json!("keyShareId");
        assert!(distinct_path_id_schemas(&mut spec).unwrap().is_empty());
        assert_eq!(
            spec["components"]["parameters"]["id"]["schema"],
            json!({"$ref": "#/components/schemas/uuid"})
        );
    }

    #[test]
    fn folding_reports_a_dangling_reference() {
        let mut spec = op_with_errors();
        spec["paths"]["/x/{id}"]["post"]["responses"]["400"] =
            json!({"$ref": "#/components/responses/Nope"});
        let err = format!("{:#}", fold_error_responses(&mut spec).unwrap_err());
        assert!(err.contains("POST /x/{id}: response 400"), "{err}");
        assert!(err.contains("points at nothing"), "{err}");
    }

    #[test]
    fn path_ids_get_their_own_schema() {
        let mut spec = op_with_errors();
        let names = distinct_path_id_schemas(&mut spec).unwrap();
        assert_eq!(names, ["WalletId"]);
        assert_eq!(
            spec["components"]["parameters"]["id"]["schema"],
            json!({"$ref": "#/components/schemas/WalletId"})
        );
        let schema = &spec["components"]["schemas"]["WalletId"];
        assert_eq!(schema["minLength"], 36);
        assert_eq!(schema["description"], "UUID of the wallet");
    }

    #[test]
    fn lookaround_patterns_are_hoisted_and_plain_ones_left_alone() {
        let mut spec = json!({
            "paths": {"/x": {"post": {"operationId": "x", "requestBody": {"content": {"application/json": {"schema": {
                "type": "object", "properties": {"items": {"type": "array", "items": {"type": "object", "properties": {
                    "keygenId": {"type": "string", "maxLength": 255, "pattern": "^(?=\\S)[\\p{L}]+$"},
                    "plain": {"type": "string", "pattern": "^[a-z]+$"}
                }}}}
            }}}}}}},
            "components": {"schemas": {}}
        });
        let names = hoist_lookaround_patterns(&mut spec).unwrap();
        assert_eq!(names, ["KeygenId"]);
        let props = spec
            .pointer("/paths/~1x/post/requestBody/content/application~1json/schema/properties/items/items/properties")
            .unwrap();
        assert_eq!(
            props["keygenId"],
            json!({"$ref": "#/components/schemas/KeygenId"})
        );
        assert_eq!(props["plain"]["pattern"], "^[a-z]+$");
        assert_eq!(spec["components"]["schemas"]["KeygenId"]["maxLength"], 255);
    }

    #[test]
    fn detects_patterns_regress_would_misread() {
        assert!(needs_hand_written_pattern(r"^(?=\S)[a-z]+(?<=\S)$"));
        assert!(needs_hand_written_pattern(r"^[\p{L}]+$"));
        assert!(!needs_hand_written_pattern(r"^[0-9a-f]{8}$"));
        assert!(!needs_hand_written_pattern(""));
    }

    #[test]
    fn finds_closed_string_enums_only() {
        assert_eq!(closed_string_enums(&op_with_errors()), ["Color"]);
    }

    #[test]
    fn a_schema_without_a_hand_written_type_is_named_in_the_error() {
        let err = replacement_for("Color").unwrap_err().to_string();
        assert!(
            err.contains("schema `Color` needs a hand-written type"),
            "{err}"
        );
        let found = replacement_for("uuid").unwrap();
        assert_eq!(found.rust_type, "crate::ids::ResourceId");
    }

    #[test]
    fn type_arrays_become_nullable_types() {
        let mut spec = json!({"components": {"schemas": {
            "A": {"type": ["string", "null"], "maxLength": 3},
            "B": {"type": "object", "properties": {
                "type": {"$ref": "#/components/schemas/A"},
                "flag": {"type": ["boolean", "null"]},
                "either": {"type": ["string", "integer"]}
            }}
        }}});
        let rewritten = nullable_type_arrays(&mut spec);
        assert_eq!(rewritten, ["A", "either", "flag"]);
        let schemas = &spec["components"]["schemas"];
        assert_eq!(
            schemas["A"],
            json!({"type": "string", "nullable": true, "maxLength": 3})
        );
        assert_eq!(
            schemas["B"]["properties"]["flag"],
            json!({"type": "boolean", "nullable": true})
        );
        assert_eq!(
            schemas["B"]["properties"]["either"],
            json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})
        );
        assert_eq!(
            schemas["B"]["properties"]["type"],
            json!({"$ref": "#/components/schemas/A"})
        );
    }

    #[test]
    fn unions_of_one_scalar_type_become_that_type() {
        let mut spec = json!({"components": {"schemas": {
            "Evm": {"type": "string", "pattern": "^0x[0-9a-f]+$", "example": "0x01"},
            "Sol": {"type": "string", "pattern": "^[1-9A-Z]+$"},
            "Obj": {"type": "object", "properties": {"a": {"type": "string"}}},
            "Rule": {"type": "object", "properties": {
                "address": {"description": "either", "anyOf": [{"$ref": "#/components/schemas/Evm"}, {"$ref": "#/components/schemas/Sol"}]},
                "addresses": {"type": "array", "items": {"oneOf": [{"$ref": "#/components/schemas/Evm"}, {"type": "string"}]}},
                "amount": {"anyOf": [{"type": "integer"}, {"type": "number"}]},
                "mixed": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "objects": {"anyOf": [{"$ref": "#/components/schemas/Obj"}, {"type": "string"}]}
            }}
        }}});
        let merged = scalar_unions(&mut spec);
        assert_eq!(merged, ["address", "items", "amount"]);
        let props = &spec["components"]["schemas"]["Rule"]["properties"];
        assert_eq!(
            props["address"],
            json!({"description": "either", "type": "string"})
        );
        assert_eq!(props["addresses"]["items"], json!({"type": "string"}));
        assert_eq!(props["amount"], json!({"type": "number"}));
        assert!(props["mixed"].get("anyOf").is_some(), "left to typify");
        assert!(props["objects"].get("anyOf").is_some());
    }

    #[test]
    fn misread_patterns_go_everywhere_but_in_hand_written_schemas() {
        let mut spec = json!({
            "paths": {"/x": {"post": {"requestBody": {"content": {"application/json": {"schema": {
                "type": "array", "items": {"type": "string", "pattern": "^(?=\\S)[a-z]+$"}
            }}}}}}},
            "components": {"schemas": {
                "NonEmpty": {"type": "string", "maxLength": 9, "pattern": "^[\\p{L}]+$"},
                "Broken": {"type": "string", "pattern": "^[a-z"},
                "Digits": {"type": "string", "pattern": "^[0-9]+$"},
                "KeygenId": {"type": "string", "pattern": "^(?=\\S)[\\p{L}]+$"}
            }}
        });
        let dropped = drop_misread_patterns(&mut spec);
        assert_eq!(dropped, ["Broken", "NonEmpty", "items"]);
        let schemas = &spec["components"]["schemas"];
        assert_eq!(
            schemas["NonEmpty"],
            json!({"type": "string", "maxLength": 9})
        );
        assert_eq!(schemas["Digits"]["pattern"], "^[0-9]+$");
        assert!(schemas["KeygenId"].get("pattern").is_some());
    }

    #[test]
    fn pascal_case_names() {
        assert_eq!(pascal_case("environmentId"), "EnvironmentId");
        assert_eq!(pascal_case("uuid"), "Uuid");
        assert_eq!(pascal_case("key_share-id"), "KeyShareId");
    }
}
