//! What the sandbox answers, kept as plain data until the end so that the status can be
//! recorded before it becomes a wiremock `ResponseTemplate`.

use std::fmt;
use std::time::Duration;

use serde_json::{json, Value};
use wiremock::http::{HeaderName, HeaderValue};
use wiremock::ResponseTemplate;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Body {
    Json(Value),
    Raw {
        bytes: Vec<u8>,
        content_type: HeaderValue,
    },
    Empty,
}

/// A response the sandbox will send. Every field is valid by construction, so turning it into
/// a `ResponseTemplate` cannot panic inside wiremock's server thread.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Reply {
    /// Always a valid status code (checked where a caller gives one).
    pub(crate) status: u16,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Body,
    pub(crate) delay: Option<Duration>,
}

impl Reply {
    /// `status` must be a status code the sandbox itself chose (100..=999).
    pub(crate) fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Body::Json(body),
            delay: None,
        }
    }

    /// Upstream's usual error shape: `{"error": "..."}`.
    pub(crate) fn error(status: u16, message: impl Into<String>) -> Self {
        Self::json(status, json!({ "error": message.into() }))
    }

    /// Upstream's error shape with a machine-readable code: `{"error": "...", "code": "..."}`.
    pub(crate) fn coded(status: u16, message: &str, code: &str) -> Self {
        Self::json(status, json!({ "error": message, "code": code }))
    }

    /// Upstream's 404 body, the same whatever was not found (it does not say which).
    pub(crate) fn not_found() -> Self {
        Self::coded(404, "Not Found", "not_found")
    }

    pub(crate) fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.retain(|(existing, _)| *existing != name);
        self.headers.push((name, value));
        self
    }

    pub(crate) fn into_template(self) -> ResponseTemplate {
        let mut template = ResponseTemplate::new(self.status);
        for (name, value) in self.headers {
            template = template.append_header(name, value);
        }
        template = match self.body {
            Body::Json(value) => template.set_body_json(value),
            // `set_body_raw` takes the type as text and wiremock parses it again later; it
            // came from a valid `HeaderValue`, so that parse cannot fail.
            Body::Raw {
                bytes,
                content_type,
            } => match content_type.to_str() {
                Ok(mime) => template.set_body_raw(bytes, mime),
                Err(_) => template.set_body_bytes(bytes),
            },
            Body::Empty => template,
        };
        match self.delay {
            Some(delay) => template.set_delay(delay),
            None => template,
        }
    }
}

/// A reply and why the sandbox chose it (kept in the request log).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Answer {
    // Boxed: an `Answer` is the error type of every check, and should be cheap to return.
    pub(crate) reply: Box<Reply>,
    pub(crate) outcome: String,
}

impl Answer {
    pub(crate) fn new(reply: Reply, outcome: impl Into<String>) -> Self {
        Self {
            reply: Box::new(reply),
            outcome: outcome.into(),
        }
    }

    /// An error reply `{"error": message}` whose outcome is `"<status>: <message>"`.
    pub(crate) fn error(status: u16, message: impl Into<String>) -> Self {
        let message = message.into();
        let outcome = format!("{status}: {message}");
        Self::new(Reply::error(status, message), outcome)
    }

    /// Upstream's 404; `why` is only logged, as upstream's body does not say.
    pub(crate) fn not_found(why: impl fmt::Display) -> Self {
        Self::new(Reply::not_found(), format!("404: {why}"))
    }
}
