//! Validation of a create's body, with messages that name the field (`locations[0].keygenId`),
//! using the sdk's own checks of upstream's constraints.

use dynamic_waas_api::enums::ThresholdSignatureScheme;
use dynamic_waas_api::ids;
use dynamic_waas_api::labels::{ExternalKeyShareId, KeygenId};
use reqwest::header::CONTENT_TYPE;
use serde_json::{Map, Value};
use uuid::Uuid;
use wiremock::http::HeaderMap;

use super::reply::Answer;

/// The largest body the sandbox reads; a larger one gets 413, as from a JSON body parser.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A create request that passed validation.
#[derive(Debug, PartialEq)]
pub(crate) struct CreateRequest {
    pub(crate) user_id: Uuid,
    pub(crate) locations: Vec<LocationRequest>,
    pub(crate) share_set_id: Option<String>,
}

#[derive(Debug, PartialEq)]
pub(crate) struct LocationRequest {
    pub(crate) location: String,
    pub(crate) external_key_share_id: Option<String>,
}

/// Parses and validates a create's body; `accepted` are the `location` values allowed.
pub(crate) fn create_request(
    headers: &HeaderMap,
    body: &[u8],
    accepted: &[String],
) -> Result<CreateRequest, Answer> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Answer::error(413, "request entity too large"));
    }
    if !is_json(headers) {
        return Err(bad("Content-Type must be application/json"));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("request body is not valid JSON: {e}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| bad("request body must be a JSON object"))?;

    let user_id = required_str(object, "userId", "userId")?;
    ids::validate("userId", user_id).map_err(|e| bad(e.to_string()))?;
    let user_id = Uuid::try_parse(user_id).map_err(|e| bad(format!("userId is invalid: {e}")))?;

    let locations = match object.get("locations") {
        None => return Err(bad("locations is required")),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(bad("locations must be an array")),
    };
    let locations = locations
        .iter()
        .enumerate()
        .map(|(i, item)| location_request(i, item, accepted))
        .collect::<Result<_, _>>()?;
    let share_set_id = optional_str(object, "shareSetId", "shareSetId")?;
    if let Some(id) = share_set_id {
        ids::validate("shareSetId", id).map_err(|e| bad(e.to_string()))?;
    }
    Ok(CreateRequest {
        user_id,
        locations,
        share_set_id: share_set_id.map(str::to_owned),
    })
}

fn location_request(
    index: usize,
    item: &Value,
    accepted: &[String],
) -> Result<LocationRequest, Answer> {
    let path = format!("locations[{index}]");
    let object = item
        .as_object()
        .ok_or_else(|| bad(format!("{path} must be an object")))?;

    let field = format!("{path}.location");
    let location = required_str(object, "location", &field)?;
    if !accepted.iter().any(|known| known == location) {
        return Err(bad(format!(
            "{field} must be one of {}; got {}",
            accepted.join(", "),
            quoted(location)
        )));
    }

    if let Some(value) = optional_str(object, "keygenId", &path)? {
        KeygenId::parse(value)
            .map_err(|e| bad(format!("{path}.keygenId is invalid: {}", e.problem())))?;
    }
    if let Some(value) = optional_str(object, "thresholdSignatureScheme", &path)? {
        if !ThresholdSignatureScheme::KNOWN.contains(&value) {
            return Err(bad(format!(
                "{path}.thresholdSignatureScheme must be one of {}; got {}",
                ThresholdSignatureScheme::KNOWN.join(", "),
                quoted(value)
            )));
        }
    }
    let external_key_share_id = optional_str(object, "externalKeyShareId", &path)?;
    if let Some(value) = external_key_share_id {
        ExternalKeyShareId::parse(value).map_err(|e| {
            bad(format!(
                "{path}.externalKeyShareId is invalid: {}",
                e.problem()
            ))
        })?;
    }
    Ok(LocationRequest {
        location: location.to_owned(),
        external_key_share_id: external_key_share_id.map(str::to_owned),
    })
}

fn bad(message: impl Into<String>) -> Answer {
    Answer::error(400, message)
}

/// `application/json` or a `+json` type, with any parameters (`; charset=utf-8`).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(Ok(value)) = headers.get(CONTENT_TYPE).map(|v| v.to_str()) else {
        return false;
    };
    let media_type = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media_type == "application/json" || media_type.ends_with("+json")
}

fn required_str<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    field: &str,
) -> Result<&'a str, Answer> {
    match object.get(key) {
        None => Err(bad(format!("{field} is required"))),
        Some(Value::String(value)) => Ok(value),
        Some(_) => Err(bad(format!("{field} must be a string"))),
    }
}

/// An optional string field of the object at `path`; `null` is not a string.
fn optional_str<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, Answer> {
    match object.get(key) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(bad(format!("{path}.{key} must be a string"))),
    }
}

/// The value as a JSON string, cut short so that a huge value does not make a huge message.
fn quoted(value: &str) -> String {
    const MAX: usize = 64;
    if value.chars().count() <= MAX {
        format!("{value:?}")
    } else {
        let start: String = value.chars().take(MAX).collect();
        format!("{start:?}...")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wiremock::http::HeaderValue;

    fn json_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers
    }

    fn known() -> Vec<String> {
        super::super::seed::KNOWN_LOCATIONS
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn error_of(body: Value) -> String {
        let answer = create_request(&json_headers(), body.to_string().as_bytes(), &known())
            .expect_err("refused");
        assert_eq!(answer.reply.status, 400);
        answer.outcome
    }

    const USER: &str = "3c90c3cc-0d44-4b50-8888-8dd25736052a";

    #[test]
    fn accepts_the_documented_example() {
        let body = json!({"userId": USER, "locations": [{"location": "googleDrive",
            "keygenId": "An example name", "thresholdSignatureScheme": "TWO_OF_TWO",
            "externalKeyShareId": "An example name", "addedLater": 1}]});
        let parsed =
            create_request(&json_headers(), body.to_string().as_bytes(), &known()).unwrap();
        assert_eq!(parsed.user_id.to_string(), USER);
        assert_eq!(
            parsed.locations,
            vec![LocationRequest {
                location: "googleDrive".into(),
                external_key_share_id: Some("An example name".into())
            }]
        );
    }

    #[test]
    fn names_the_field_that_is_wrong() {
        let cases = [
            (json!({"locations": []}), "userId is required"),
            (
                json!({"userId": 7, "locations": []}),
                "userId must be a string",
            ),
            (
                json!({"userId": USER.to_uppercase(), "locations": []}),
                "userId must be a lower-case",
            ),
            (json!({"userId": USER}), "locations is required"),
            (
                json!({"userId": USER, "locations": {}}),
                "locations must be an array",
            ),
            (
                json!({"userId": USER, "locations": [1]}),
                "locations[0] must be an object",
            ),
            (
                json!({"userId": USER, "locations": [{}]}),
                "locations[0].location is required",
            ),
            (
                json!({"userId": USER, "locations": [{"location": "dynamic"}, {"location": "floppy"}]}),
                "locations[1].location must be one of googleDrive, iCloud",
            ),
            (
                json!({"userId": USER, "locations": [{"location": "icloud"}]}),
                "got \"icloud\"",
            ),
            (
                json!({"userId": USER, "locations": [{"location": "dynamic", "keygenId": " x"}]}),
                "locations[0].keygenId is invalid: it starts or ends with white space",
            ),
            (
                json!({"userId": USER, "locations": [{"location": "dynamic", "keygenId": "k".repeat(256)}]}),
                "locations[0].keygenId is invalid: it is 256 characters long",
            ),
            (
                json!({"userId": USER, "locations": [{"location": "dynamic", "keygenId": null}]}),
                "locations[0].keygenId must be a string",
            ),
            (
                json!({"userId": USER, "locations": [{"location": "dynamic", "thresholdSignatureScheme": "ONE"}]}),
                "locations[0].thresholdSignatureScheme must be one of TWO_OF_TWO",
            ),
            (
                json!({"userId": USER, "locations": [{"location": "dynamic", "externalKeyShareId": ""}]}),
                "locations[0].externalKeyShareId is invalid: it is empty",
            ),
            (json!([]), "request body must be a JSON object"),
        ];
        for (body, expected) in cases {
            let outcome = error_of(body.clone());
            assert!(outcome.contains(expected), "{body}: {outcome}");
        }
    }

    #[test]
    fn refuses_what_is_not_json() {
        let answer = create_request(&json_headers(), b"{\"userId\":", &known()).unwrap_err();
        assert!(answer
            .outcome
            .starts_with("400: request body is not valid JSON"));
        let answer = create_request(&HeaderMap::new(), b"{}", &known()).unwrap_err();
        assert_eq!(answer.outcome, "400: Content-Type must be application/json");
        let huge = vec![b' '; MAX_BODY_BYTES + 1];
        let answer = create_request(&json_headers(), &huge, &known()).unwrap_err();
        assert_eq!(answer.reply.status, 413);
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let outcome =
            error_of(json!({"userId": USER, "locations": [{"location": "x".repeat(10_000)}]}));
        assert!(outcome.len() < 300, "{outcome}");
    }
}
