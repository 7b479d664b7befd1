//! The one error type of the facade.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use dynamic_waas_api::error::ErrorResponse;
use reqwest::StatusCode;

/// How many bytes of a response body an error keeps (see [`Error::body_excerpt`]).
pub const BODY_EXCERPT_LIMIT: usize = 2048;

/// What went wrong, for `match`. Details (status, request id, upstream's text, the raw
/// body) are on [`Error`].
///
/// ```
/// # fn handle(err: dynamic_waas::Error) {
/// use dynamic_waas::ErrorKind;
///
/// match err.kind() {
///     ErrorKind::InvalidInput { field, .. } => eprintln!("fix {field}; nothing was sent"),
///     ErrorKind::AlreadyBackedUp => eprintln!("this wallet already has key shares"),
///     ErrorKind::RateLimited { retry_after } => eprintln!("retry in {retry_after:?}"),
///     ErrorKind::OutcomeUnknown { .. } => eprintln!("settle it (Client::settle) before retrying"),
///     _ => eprintln!("{err}"),
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller's input or configuration is invalid; nothing was sent.
    InvalidInput {
        /// The field or setting, spelled as in the API where it is one (`walletId`,
        /// `locations[0].keygenId`, `token`, `base_url`).
        field: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The [`TokenProvider`](crate::TokenProvider) failed and no valid token was cached;
    /// nothing was sent.
    TokenUnavailable,
    /// 400: the server refused the request as malformed.
    BadRequest,
    /// 401: the token is missing, unknown or expired (after one refresh and retry).
    Unauthorized,
    /// 403: the token has no access to this environment.
    Forbidden,
    /// 404: no such wallet, or the user is not in the environment or does not own it.
    NotFound,
    /// 422 `key_share_already_backed_up`: the wallet already has client key shares.
    AlreadyBackedUp,
    /// Another 4xx the API does not document (a 409, a 422 with another code, ...).
    Rejected,
    /// 429 (or 503 with `Retry-After`) after every allowed attempt. `retry_after` is how long
    /// the server asked to wait, if it said.
    RateLimited {
        /// The wait the server asked for.
        retry_after: Option<Duration>,
    },
    /// 5xx after every allowed attempt.
    ServerError,
    /// The client's retry budget, shared by its clones, is spent: so many requests failed
    /// lately that this one was not sent (or not sent again). Retry later.
    RetryBudgetSpent,
    /// A create may or may not have happened: an answer was lost after the request was sent,
    /// and the wallet reads the call could make within its deadline did not tell (they failed,
    /// or showed no key shares, or only part of them, while reads may still lag behind the
    /// write). Settle it with [`Client::settle`](crate::Client::settle) before creating again.
    /// `{:#}` on the error tells what each attempt and read saw.
    OutcomeUnknown {
        /// Why the reads did not settle it, in one clause.
        reason: String,
    },
    /// The connection failed (refused, DNS, TLS, reset).
    Transport,
    /// An attempt or the whole call's deadline ran out.
    Timeout,
    /// The server answered something this client cannot read (see [`Error::body_excerpt`]).
    InvalidResponse,
}

impl ErrorKind {
    /// A stable snake_case name (`outcome_unknown`, `rate_limited`, ...), for logs, JSON and
    /// metrics.
    pub fn name(&self) -> &'static str {
        match self {
            ErrorKind::InvalidInput { .. } => "invalid_input",
            ErrorKind::TokenUnavailable => "token_unavailable",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyBackedUp => "already_backed_up",
            ErrorKind::Rejected => "rejected",
            ErrorKind::RateLimited { .. } => "rate_limited",
            ErrorKind::ServerError => "server_error",
            ErrorKind::RetryBudgetSpent => "retry_budget_spent",
            ErrorKind::OutcomeUnknown { .. } => "outcome_unknown",
            ErrorKind::Transport => "transport",
            ErrorKind::Timeout => "timeout",
            ErrorKind::InvalidResponse => "invalid_response",
        }
    }

    /// The kind [`name`](Self::name) names, with empty details (for errors read back from
    /// JSON).
    fn from_name(name: &str, reason: String, retry_after: Option<Duration>) -> Self {
        match name {
            "invalid_input" => ErrorKind::InvalidInput {
                field: String::new(),
                reason,
            },
            "token_unavailable" => ErrorKind::TokenUnavailable,
            "bad_request" => ErrorKind::BadRequest,
            "unauthorized" => ErrorKind::Unauthorized,
            "forbidden" => ErrorKind::Forbidden,
            "not_found" => ErrorKind::NotFound,
            "already_backed_up" => ErrorKind::AlreadyBackedUp,
            "rate_limited" => ErrorKind::RateLimited { retry_after },
            "server_error" => ErrorKind::ServerError,
            "retry_budget_spent" => ErrorKind::RetryBudgetSpent,
            "outcome_unknown" => ErrorKind::OutcomeUnknown { reason },
            "transport" => ErrorKind::Transport,
            "timeout" => ErrorKind::Timeout,
            "invalid_response" => ErrorKind::InvalidResponse,
            // A kind of a later release, or another 4xx.
            _ => ErrorKind::Rejected,
        }
    }
}

/// An error from the facade: what happened ([`kind`](Error::kind)), and everything known
/// about the failed request. The message is one line; it never contains the token.
///
/// `Display` says what happened and what to do; the cause is [`source()`](std::error::Error::source),
/// as the Rust API guidelines ask, so `anyhow`/`eyre` print it once. `{:#}` prints the whole
/// chain on one line:
///
/// ```
/// # fn demo(err: dynamic_waas::Error) {
/// eprintln!("{err:#}"); // "the API did not answer in time [...]: no answer within 30000 ms"
/// # }
/// ```
pub struct Error(Box<Inner>);

// Boxed so that `Result<T, Error>` stays one pointer wide on the happy path.
struct Inner {
    kind: ErrorKind,
    status: Option<StatusCode>,
    request_id: Option<String>,
    upstream_error: Option<String>,
    upstream_code: Option<String>,
    body: Option<Bytes>,
    headers: Option<reqwest::header::HeaderMap>,
    attempts: u32,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    /// For an error read back from JSON: the message it was written with, which it prints
    /// and writes again unchanged.
    recorded: Option<String>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Self(Box::new(Inner {
            kind,
            status: None,
            request_id: None,
            upstream_error: None,
            upstream_code: None,
            body: None,
            headers: None,
            attempts: 0,
            source: None,
            recorded: None,
        }))
    }

    pub(crate) fn invalid_input(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        })
    }

    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.0.status = Some(status);
        self
    }

    pub(crate) fn with_request_id(mut self, id: Option<String>) -> Self {
        self.0.request_id = id;
        self
    }

    pub(crate) fn with_upstream(mut self, error: Option<String>, code: Option<String>) -> Self {
        self.0.upstream_error = error;
        self.0.upstream_code = code;
        self
    }

    pub(crate) fn with_body(mut self, body: &[u8]) -> Self {
        if !body.is_empty() {
            let end = body.len().min(BODY_EXCERPT_LIMIT);
            self.0.body = Some(Bytes::copy_from_slice(&body[..end]));
        }
        self
    }

    pub(crate) fn with_headers(mut self, headers: reqwest::header::HeaderMap) -> Self {
        self.0.headers = Some(headers);
        self
    }

    pub(crate) fn with_attempts(mut self, attempts: u32) -> Self {
        self.0.attempts = attempts;
        self
    }

    pub(crate) fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        self.0.source = Some(source.into());
        self
    }

    /// An error built from an error response: status, headers, upstream's text and code,
    /// and an excerpt of the body.
    pub(crate) fn from_response(kind: ErrorKind, response: &ErrorResponse) -> Self {
        let status = response.status();
        let mut err = Error::new(kind)
            .with_status(status)
            .with_headers(response.headers().clone())
            .with_upstream(
                response.error_text().map(str::to_owned),
                response.code().map(str::to_owned),
            )
            .with_body(response.body());
        if status.is_redirection() {
            let to = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?");
            err = err.with_source(format!(
                "redirected to {to} ({}); not followed because it leaves the API's origin",
                status.as_u16()
            ));
        }
        err
    }

    pub(crate) fn set_kind(&mut self, kind: ErrorKind) {
        self.0.kind = kind;
    }

    /// What happened.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// The HTTP status of the last response, if there was one.
    pub fn status(&self) -> Option<StatusCode> {
        self.0.status
    }

    /// The `x-dyn-request-id` of the last attempt: give it to Dynamic's support.
    pub fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }

    /// Upstream's `error` text (or `message`), when the body had one.
    pub fn upstream_error(&self) -> Option<&str> {
        self.0.upstream_error.as_deref()
    }

    /// Upstream's `code` (`not_found`, `key_share_already_backed_up`, ...), when present.
    pub fn upstream_code(&self) -> Option<&str> {
        self.0.upstream_code.as_deref()
    }

    /// The start of the response body as received (at most [`BODY_EXCERPT_LIMIT`] bytes).
    pub fn body_excerpt(&self) -> Option<&[u8]> {
        self.0.body.as_deref()
    }

    /// The headers of the last response, when the error came from one (`Retry-After`,
    /// a proxy's headers, ...).
    pub fn headers(&self) -> Option<&reqwest::header::HeaderMap> {
        self.0.headers.as_ref()
    }

    /// How many HTTP requests the call made (0 when nothing was sent).
    pub fn attempts(&self) -> u32 {
        self.0.attempts
    }

    /// How long the server asked to wait, for a rate-limited call.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.0.kind {
            ErrorKind::RateLimited { retry_after } => retry_after,
            _ => None,
        }
    }

    /// Whether calling again later may succeed (rate limits, server errors, a spent retry
    /// budget, transport failures, timeouts). An unknown outcome is not: settle it first.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.0.kind,
            ErrorKind::RateLimited { .. }
                | ErrorKind::ServerError
                | ErrorKind::RetryBudgetSpent
                | ErrorKind::Transport
                | ErrorKind::Timeout
        )
    }

    /// Whether a create may have happened ([`ErrorKind::OutcomeUnknown`]): settle it with
    /// [`Client::settle`](crate::Client::settle) before creating again.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self.0.kind, ErrorKind::OutcomeUnknown { .. })
    }

    /// Whether the request was refused before anything was sent.
    pub fn is_invalid_input(&self) -> bool {
        matches!(self.0.kind, ErrorKind::InvalidInput { .. })
    }

    /// What happened and what to do, without the details `Display` adds in brackets.
    pub(crate) fn summary(&self) -> String {
        match &self.0.kind {
            ErrorKind::InvalidInput { field, reason } => {
                format!(
                    "invalid {}: {}; nothing was sent",
                    one_line(field, 100),
                    one_line(reason, 500)
                )
            }
            ErrorKind::TokenUnavailable => {
                "no API token: the token provider failed; nothing was sent".into()
            }
            ErrorKind::BadRequest => "the API refused the request as malformed (400)".into(),
            ErrorKind::Unauthorized => {
                "the API token was refused (401); check that it is current and \
                 meant for this environment"
                    .into()
            }
            ErrorKind::Forbidden => "the API token has no access to this environment (403)".into(),
            ErrorKind::NotFound => "not found (404): check the environment, wallet and user ids, \
                 and that the user owns the wallet"
                .into(),
            ErrorKind::AlreadyBackedUp => {
                "the wallet already has key shares backed up (422); `accept_existing()` on the \
                 call returns their ids"
                    .into()
            }
            ErrorKind::Rejected => "the API refused the request".into(),
            ErrorKind::RateLimited { retry_after } => match retry_after {
                Some(wait) => format!(
                    "rate limited: the server asked to wait {}s; retry after that",
                    wait.as_secs_f64().ceil()
                ),
                None => "rate limited after every allowed attempt; retry later".into(),
            },
            ErrorKind::ServerError => "the API failed with a server error; retry later".into(),
            ErrorKind::RetryBudgetSpent => {
                "not sent (again): so many requests failed lately that the client's retry \
                 budget is spent; retry later"
                    .into()
            }
            ErrorKind::OutcomeUnknown { reason } => {
                // The reason may quote what the server sent (a location's name).
                format!(
                    "outcome unknown: {}; settle it before creating again",
                    one_line(reason, 500)
                )
            }
            ErrorKind::Transport => "could not reach the API".into(),
            ErrorKind::Timeout => "the API did not answer in time".into(),
            ErrorKind::InvalidResponse => "the API's response could not be read".into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(recorded) = &self.0.recorded {
            // Whatever wrote the file: still one line, and bounded.
            return f.write_str(&one_line(recorded, 4_000));
        }
        f.write_str(&self.summary())?;
        let mut details = Vec::new();
        if let Some(status) = self.0.status {
            details.push(format!("status {}", status.as_u16()));
        }
        if let Some(text) = &self.0.upstream_error {
            details.push(format!("error {:?}", one_line(text, 200)));
        }
        if let Some(code) = &self.0.upstream_code {
            details.push(format!("code {:?}", one_line(code, 100)));
        }
        if self.0.attempts > 0 {
            let plural = if self.0.attempts == 1 { "" } else { "s" };
            details.push(format!("{} attempt{plural}", self.0.attempts));
        }
        if let Some(id) = &self.0.request_id {
            details.push(format!("request id {id}"));
        }
        if !details.is_empty() {
            write!(f, " [{}]", details.join(", "))?;
        }
        // `{:#}` adds the causes, as anyhow and eyre print a chain; plain `{}` leaves them to
        // `source()`, so that error reporters do not print each cause twice.
        if f.alternate() {
            let mut cause = std::error::Error::source(self);
            while let Some(e) = cause {
                write!(f, ": {}", one_line(&e.to_string(), 300))?;
                cause = e.source();
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("status", &self.0.status)
            .field("request_id", &self.0.request_id)
            .field("upstream_error", &self.0.upstream_error)
            .field("upstream_code", &self.0.upstream_code)
            .field(
                "body_excerpt",
                &self
                    .0
                    .body
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned()),
            )
            .field(
                "headers",
                &self
                    .0
                    .headers
                    .as_ref()
                    .map(|h| h.keys().map(|k| k.as_str()).collect::<Vec<_>>()),
            )
            .field("attempts", &self.0.attempts)
            .field("source", &self.0.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

/// `{"kind", "message", "status", "requestId", "attempts", "upstreamCode", "retryAfterSeconds"}`,
/// and when there is one `upstreamError`, the invalid `field` and the `reason` (of invalid
/// input or an unknown outcome): the message is `{:#}` (causes included), never the token.
/// An error read back from this form writes the same JSON again.
impl serde::Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let (field, reason) = match &self.0.kind {
            ErrorKind::InvalidInput { field, reason } => (Some(field), Some(reason)),
            ErrorKind::OutcomeUnknown { reason } => (None, Some(reason)),
            _ => (None, None),
        };
        let mut out = serializer.serialize_struct("Error", 10)?;
        out.serialize_field("kind", self.0.kind.name())?;
        match &self.0.recorded {
            Some(recorded) => out.serialize_field("message", recorded)?,
            None => out.serialize_field("message", &format!("{self:#}"))?,
        }
        out.serialize_field("status", &self.0.status.map(|s| s.as_u16()))?;
        out.serialize_field("requestId", &self.0.request_id)?;
        out.serialize_field("attempts", &self.0.attempts)?;
        out.serialize_field("upstreamCode", &self.0.upstream_code)?;
        out.serialize_field(
            "retryAfterSeconds",
            &self.retry_after().map(|d| d.as_secs_f64()),
        )?;
        optional(&mut out, "upstreamError", self.0.upstream_error.as_ref())?;
        optional(&mut out, "field", field)?;
        optional(&mut out, "reason", reason)?;
        out.end()
    }
}

fn optional<S: serde::ser::SerializeStruct>(
    out: &mut S,
    key: &'static str,
    value: Option<&String>,
) -> Result<(), S::Error> {
    match value {
        Some(value) => out.serialize_field(key, value),
        None => out.skip_field(key),
    }
}

/// An error read back from its JSON form (a results file, say): its kind and details,
/// status, request id, attempts, upstream error and code, and `Retry-After`. It prints its
/// recorded message as it was (causes included: it has no [`source`](std::error::Error::source)
/// of its own) and writes the same JSON again. Kinds of a later release read as
/// [`ErrorKind::Rejected`].
impl<'de> serde::Deserialize<'de> for Error {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Recorded {
            kind: String,
            #[serde(default)]
            message: String,
            status: Option<u16>,
            request_id: Option<String>,
            #[serde(default)]
            attempts: u32,
            upstream_code: Option<String>,
            upstream_error: Option<String>,
            retry_after_seconds: Option<f64>,
            field: Option<String>,
            reason: Option<String>,
        }
        let recorded = Recorded::deserialize(deserializer)?;
        let retry_after = recorded
            .retry_after_seconds
            .and_then(|s| Duration::try_from_secs_f64(s).ok());
        // Written by an earlier release, an error has no reason of its own: its message says.
        let reason = recorded.reason.unwrap_or_else(|| recorded.message.clone());
        let mut kind = ErrorKind::from_name(&recorded.kind, reason, retry_after);
        if let (ErrorKind::InvalidInput { field, .. }, Some(recorded)) = (&mut kind, recorded.field)
        {
            *field = recorded;
        }
        let mut err = Error::new(kind)
            .with_request_id(recorded.request_id)
            .with_attempts(recorded.attempts)
            .with_upstream(recorded.upstream_error, recorded.upstream_code);
        if let Some(status) = recorded.status.and_then(|s| StatusCode::from_u16(s).ok()) {
            err = err.with_status(status);
        }
        if !recorded.message.is_empty() {
            err.0.recorded = Some(recorded.message);
        }
        Ok(err)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// Keeps messages on one line and bounded, whatever a server sends: control characters,
/// and the marks that reorder text on a terminal (bidirectional overrides), are spaces.
fn one_line(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| {
            if c.is_control() || is_bidi_control(c) {
                ' '
            } else {
                c
            }
        })
        .take(max_chars)
        .collect();
    if text.chars().count() > max_chars {
        out.push('…');
    }
    out
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_read_back_from_json_keeps_its_details_and_writes_the_same_json() {
        let errors = [
            Error::invalid_input("wallet_id", "not a UUID").with_attempts(0),
            Error::new(ErrorKind::OutcomeUnknown {
                reason: "the wallet's reads failed".into(),
            })
            .with_attempts(3)
            .with_source("attempt 1: timed out"),
            Error::new(ErrorKind::NotFound)
                .with_status(StatusCode::NOT_FOUND)
                .with_upstream(Some("Wallet not found".into()), Some("not_found".into()))
                .with_request_id(Some("req-1".into())),
            Error::new(ErrorKind::RateLimited {
                retry_after: Some(Duration::from_secs(7)),
            }),
        ];
        for err in errors {
            let line = serde_json::to_string(&err).unwrap();
            let back: Error = serde_json::from_str(&line).unwrap();
            assert_eq!(back.kind(), err.kind(), "{line}");
            assert_eq!(back.upstream_error(), err.upstream_error());
            assert_eq!(format!("{back:#}"), format!("{err:#}"));
            assert!(std::error::Error::source(&back).is_none(), "printed once");
            // Read back and written again, any number of times: the same line.
            let again: Error =
                serde_json::from_str(&serde_json::to_string(&back).unwrap()).unwrap();
            assert_eq!(serde_json::to_string(&again).unwrap(), line);
        }
        // Written by an earlier release (no reason, no field): the message is the reason.
        let old = r#"{"kind":"outcome_unknown","message":"outcome unknown: lost","attempts":2}"#;
        let back: Error = serde_json::from_str(old).unwrap();
        assert!(back.is_outcome_unknown());
        assert_eq!(back.to_string(), "outcome unknown: lost");
        // A kind of a later release.
        let later: Error = serde_json::from_str(r#"{"kind":"quota_exceeded"}"#).unwrap();
        assert_eq!(later.kind(), &ErrorKind::Rejected);
    }

    #[test]
    fn messages_are_one_line_and_say_what_to_do() {
        let err = Error::new(ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(3600)),
        })
        .with_status(StatusCode::TOO_MANY_REQUESTS)
        .with_upstream(Some("Too many\nrequests".into()), None)
        .with_attempts(1)
        .with_request_id(Some("r-1".into()));
        let text = err.to_string();
        assert!(!text.contains('\n'));
        assert_eq!(
            text,
            "rate limited: the server asked to wait 3600s; retry after that [status 429, error \
             \"Too many requests\", 1 attempt, request id r-1]"
        );
        assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
        assert!(err.is_retryable());
        // What a server sends cannot reorder or restyle the line on a terminal.
        let err = Error::new(ErrorKind::OutcomeUnknown {
            reason: "held \u{202e}evil\u{1b}[31m".into(),
        })
        .with_upstream(Some("a\u{2066}b\u{9b}c".into()), None);
        let text = format!("{err:#}");
        assert!(
            !text.contains(['\u{202e}', '\u{2066}', '\u{1b}', '\u{9b}']),
            "{text:?}"
        );
    }

    #[test]
    fn display_leaves_the_cause_to_source_and_the_alternate_form_prints_the_chain() {
        let inner = Error::new(ErrorKind::Timeout).with_source("no answer within 30 ms");
        let err = Error::new(ErrorKind::OutcomeUnknown {
            reason: "read failed".into(),
        })
        .with_source(inner);
        let plain = err.to_string();
        assert!(!plain.contains("no answer"), "{plain}");
        assert!(!plain.contains("did not answer in time"), "{plain}");
        let chain = format!("{err:#}");
        assert!(
            chain.ends_with(": the API did not answer in time: no answer within 30 ms"),
            "{chain}"
        );
        // Each cause once, as an error reporter walking `source()` prints them.
        let mut causes = 0;
        let mut next = std::error::Error::source(&err);
        while let Some(e) = next {
            causes += 1;
            next = e.source();
        }
        assert_eq!(causes, 2);
    }

    #[test]
    fn errors_serialize_with_a_stable_kind_name() {
        let err = Error::new(ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        })
        .with_status(StatusCode::TOO_MANY_REQUESTS)
        .with_attempts(3)
        .with_request_id(Some("r-9".into()));
        let json = serde_json::to_value(&err).unwrap();
        assert_eq!(json["kind"], "rate_limited");
        assert_eq!(json["status"], 429);
        assert_eq!(json["attempts"], 3);
        assert_eq!(json["requestId"], "r-9");
        assert_eq!(json["retryAfterSeconds"], 2.0);
        assert!(json["message"]
            .as_str()
            .unwrap()
            .starts_with("rate limited"));
    }

    #[test]
    fn body_excerpt_is_bounded() {
        let err = Error::new(ErrorKind::ServerError).with_body(&[b'x'; 10_000]);
        assert_eq!(err.body_excerpt().unwrap().len(), BODY_EXCERPT_LIMIT);
    }
}
