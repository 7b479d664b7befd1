//! The log of requests the sandbox received, with credentials redacted.

use std::collections::VecDeque;

use serde_json::Value;
use wiremock::Request;

use super::faults::Operation;

/// At most this many bytes of a request body are kept in the log.
pub const RECORDED_BODY_LIMIT: usize = 64 * 1024;

/// At most this many requests are kept; older ones are dropped first.
pub const RECORDED_REQUESTS_LIMIT: usize = 10_000;

/// Headers whose values are credentials and never kept.
const SECRET_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie"];

/// A request body as received.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RecordedBody {
    /// No body.
    Empty,
    /// A body that is JSON (whatever its `Content-Type`).
    Json(Value),
    /// A UTF-8 body that is not JSON, or the start of one over [`RECORDED_BODY_LIMIT`].
    Text(String),
    /// A body that is not UTF-8 (at most [`RECORDED_BODY_LIMIT`] bytes of it).
    Binary(Vec<u8>),
}

/// One request the sandbox received, and what it answered.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string, if there was one.
    pub query: Option<String>,
    /// Every header in the order received; names lower-case. `Authorization` is kept as
    /// `Bearer [redacted]` (or `[redacted]` for another scheme), and so are
    /// `Proxy-Authorization` and `Cookie`.
    pub headers: Vec<(String, String)>,
    /// The body (see [`RecordedBody`]).
    pub body: RecordedBody,
    /// The body's full length in bytes.
    pub body_len: usize,
    /// The operation the route names; `None` for a route the sandbox does not know.
    pub operation: Option<Operation>,
    /// The status the sandbox answered (or will answer, after a delay).
    pub status: u16,
    /// Why it answered so, e.g. `404: user ... is not in environment ...` or
    /// `fault: rejected with 503`. For people reading a failed test, not a stable format.
    pub outcome: String,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive), as recorded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body, when it was JSON.
    pub fn body_json(&self) -> Option<&Value> {
        match &self.body {
            RecordedBody::Json(value) => Some(value),
            _ => None,
        }
    }

    pub(crate) fn new(request: &Request, operation: Option<Operation>) -> Self {
        Self {
            method: request.method.as_str().to_owned(),
            path: request.url.path().to_owned(),
            query: request.url.query().map(str::to_owned),
            headers: request
                .headers
                .iter()
                .map(|(name, value)| {
                    let name = name.as_str().to_owned();
                    let value = if SECRET_HEADERS.contains(&name.as_str()) {
                        redact(value.as_bytes())
                    } else {
                        String::from_utf8_lossy(value.as_bytes()).into_owned()
                    };
                    (name, value)
                })
                .collect(),
            body: record_body(&request.body),
            body_len: request.body.len(),
            operation,
            status: 0,
            outcome: String::new(),
        }
    }
}

/// Keeps the scheme (so a test can tell a bearer token was sent), never the credential.
fn redact(value: &[u8]) -> String {
    let bearer = value.len() > 7 && value[..7].eq_ignore_ascii_case(b"bearer ");
    if bearer {
        "Bearer [redacted]".to_owned()
    } else {
        "[redacted]".to_owned()
    }
}

fn record_body(body: &[u8]) -> RecordedBody {
    if body.is_empty() {
        return RecordedBody::Empty;
    }
    if body.len() <= RECORDED_BODY_LIMIT {
        if let Ok(value) = serde_json::from_slice(body) {
            return RecordedBody::Json(value);
        }
    }
    let kept = &body[..body.len().min(RECORDED_BODY_LIMIT)];
    match std::str::from_utf8(kept) {
        Ok(text) => RecordedBody::Text(text.to_owned()),
        // Cut in the middle of a character by the limit: keep the whole characters before it.
        Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => {
            RecordedBody::Text(String::from_utf8_lossy(&kept[..e.valid_up_to()]).into_owned())
        }
        Err(_) => RecordedBody::Binary(kept.to_vec()),
    }
}

/// The most recent requests, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Log {
    entries: VecDeque<RecordedRequest>,
}

impl Log {
    pub(crate) fn push(&mut self, entry: RecordedRequest) {
        if self.entries.len() == RECORDED_REQUESTS_LIMIT {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    pub(crate) fn snapshot(&self) -> Vec<RecordedRequest> {
        self.entries.iter().cloned().collect()
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_only_the_scheme() {
        assert_eq!(redact(b"Bearer dyn_secret"), "Bearer [redacted]");
        assert_eq!(redact(b"bearer dyn_secret"), "Bearer [redacted]");
        assert_eq!(redact(b"Basic dXNlcjpwYXNz"), "[redacted]");
        assert_eq!(redact(b"Bearer"), "[redacted]");
    }

    #[test]
    fn bodies_are_kept_as_json_text_or_bytes() {
        assert_eq!(record_body(b""), RecordedBody::Empty);
        assert_eq!(
            record_body(br#"{"a":1}"#),
            RecordedBody::Json(serde_json::json!({"a": 1}))
        );
        assert_eq!(record_body(b"{oops"), RecordedBody::Text("{oops".into()));
        assert_eq!(
            record_body(&[0xff, 0xfe]),
            RecordedBody::Binary(vec![0xff, 0xfe])
        );
    }

    #[test]
    fn a_large_body_keeps_its_start_and_whole_characters() {
        let mut body = vec![b'a'; RECORDED_BODY_LIMIT - 1];
        body.extend_from_slice("é and more".as_bytes());
        match record_body(&body) {
            RecordedBody::Text(text) => assert_eq!(text.len(), RECORDED_BODY_LIMIT - 1),
            other => panic!("expected text, got {other:?}"),
        }
    }
}
