//! Faults a test injects: what goes wrong, for which requests, and how often.

use std::collections::VecDeque;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use wiremock::http::{HeaderName, HeaderValue};

use super::reply::{Body, Reply};

/// One of the two API operations the sandbox serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `POST /environments/{environmentId}/waas/{walletId}/keyShares/backup/locations`.
    Create,
    /// `GET /environments/{environmentId}/waas/{walletId}`.
    Read,
}

/// Which requests a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Target {
    /// Every request, including ones to routes the sandbox does not know.
    Any,
    /// Only requests for this operation.
    Only(Operation),
}

impl Target {
    fn matches(self, operation: Option<Operation>) -> bool {
        match self {
            Target::Any => true,
            Target::Only(wanted) => operation == Some(wanted),
        }
    }
}

impl From<Operation> for Target {
    fn from(operation: Operation) -> Self {
        Target::Only(operation)
    }
}

/// A response a fault sends instead of (or after) the real one.
///
/// The default body is `{"error": "<the status's reason phrase>"}`; [`html`](Self::html),
/// [`text`](Self::text), [`empty`](Self::empty) and friends replace it with what a proxy or
/// load balancer might send.
///
/// ```
/// use std::time::Duration;
/// use dynamic_waas_sandbox::FaultResponse;
///
/// let gateway = FaultResponse::new(502).html("<html><body>Bad Gateway</body></html>");
/// let busy = FaultResponse::new(503).retry_after(2).empty();
/// let slow = FaultResponse::new(504).delay(Duration::from_millis(100));
/// assert_eq!(gateway.status(), 502);
/// # let _ = (busy, slow);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct FaultResponse {
    pub(crate) reply: Reply,
    echo_token: bool,
}

impl FaultResponse {
    /// A response with `status` and the default JSON body.
    ///
    /// # Panics
    ///
    /// If `status` is not a valid HTTP status code (100 to 999): a mistake in the test, reported
    /// where it is made rather than inside the server.
    pub fn new(status: u16) -> Self {
        let code = StatusCode::from_u16(status)
            .unwrap_or_else(|_| panic!("FaultResponse::new: {status} is not an HTTP status code"));
        let reason = code.canonical_reason().unwrap_or("Error");
        Self {
            reply: Reply::json(status, json!({ "error": reason })),
            echo_token: false,
        }
    }

    /// A redirect: `status` (301, 302, 303, 307, 308) with `Location: to` and no body.
    ///
    /// ```
    /// use dynamic_waas_sandbox::FaultResponse;
    ///
    /// let moved = FaultResponse::redirect(307, "/somewhere/else");
    /// assert_eq!(moved.status(), 307);
    /// ```
    pub fn redirect(status: u16, to: &str) -> Self {
        Self::new(status).header("location", to).empty()
    }

    /// Echoes the request's `Authorization` header back, as a careless or hostile server
    /// does: in a JSON body's `error` (`"invalid credentials: Bearer <token>"`) and `code`
    /// (the token), appended to any other body, and in a header `x-echo`. A client must not
    /// keep, print or log what it sent.
    ///
    /// ```
    /// use dynamic_waas_sandbox::FaultResponse;
    ///
    /// let leaky = FaultResponse::new(401).echo_token();
    /// # let _ = leaky;
    /// ```
    pub fn echo_token(mut self) -> Self {
        self.echo_token = true;
        self
    }

    /// The status this response is sent with.
    pub fn status(&self) -> u16 {
        self.reply.status
    }

    /// The reply for `request`, its token echoed if asked.
    pub(crate) fn into_reply(self, request: &wiremock::Request) -> Reply {
        if !self.echo_token {
            return self.reply;
        }
        let sent = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let token = sent.strip_prefix("Bearer ").unwrap_or(&sent).to_owned();
        let mut reply = self.reply;
        reply.body = match reply.body {
            Body::Json(mut body) => {
                if let Some(fields) = body.as_object_mut() {
                    fields.insert(
                        "error".into(),
                        json!(format!("invalid credentials: {sent}")),
                    );
                    fields.insert("code".into(), json!(token));
                }
                Body::Json(body)
            }
            Body::Raw {
                mut bytes,
                content_type,
            } => {
                bytes.extend_from_slice(format!(" {sent}").as_bytes());
                Body::Raw {
                    bytes,
                    content_type,
                }
            }
            Body::Empty => {
                Body::Json(json!({"error": format!("invalid credentials: {sent}"), "code": token}))
            }
        };
        match HeaderValue::try_from(sent.as_str()) {
            Ok(value) => reply.with_header(HeaderName::from_static("x-echo"), value),
            Err(_) => reply,
        }
    }

    /// Adds `Retry-After: <seconds>`.
    pub fn retry_after(self, seconds: u64) -> Self {
        self.header("retry-after", &seconds.to_string())
    }

    /// Adds (or replaces) a header, e.g. `Retry-After` as an HTTP date.
    ///
    /// # Panics
    ///
    /// If `name` or `value` cannot be an HTTP header.
    pub fn header(self, name: &str, value: &str) -> Self {
        let name = HeaderName::try_from(name)
            .unwrap_or_else(|_| panic!("FaultResponse::header: {name:?} is not a header name"));
        let value = HeaderValue::try_from(value)
            .unwrap_or_else(|_| panic!("FaultResponse::header: {value:?} is not a header value"));
        Self {
            reply: self.reply.with_header(name, value),
            ..self
        }
    }

    /// A JSON body.
    pub fn json(mut self, body: Value) -> Self {
        self.reply.body = Body::Json(body);
        self
    }

    /// A `text/plain` body.
    pub fn text(self, body: impl Into<String>) -> Self {
        self.body(body.into().into_bytes(), "text/plain; charset=utf-8")
    }

    /// A `text/html` body, as a proxy's error page.
    pub fn html(self, body: impl Into<String>) -> Self {
        self.body(body.into().into_bytes(), "text/html; charset=utf-8")
    }

    /// Any body with its `Content-Type`.
    ///
    /// # Panics
    ///
    /// If `content_type` cannot be a header value.
    pub fn body(mut self, bytes: impl Into<Vec<u8>>, content_type: &str) -> Self {
        let content_type = HeaderValue::try_from(content_type).unwrap_or_else(|_| {
            panic!("FaultResponse::body: {content_type:?} is not a header value")
        });
        self.reply.body = Body::Raw {
            bytes: bytes.into(),
            content_type,
        };
        self
    }

    /// No body at all (`Content-Length: 0`, no `Content-Type`).
    pub fn empty(mut self) -> Self {
        self.reply.body = Body::Empty;
        self
    }

    /// Waits this long before answering.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.reply.delay = Some(delay);
        self
    }
}

/// What goes wrong with a request.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Fault {
    /// Answers this response without the request reaching the service: nothing is applied,
    /// and the request does not count against the rate limit. What a proxy, load balancer or
    /// overloaded gateway does.
    Reject(FaultResponse),
    /// Handles the request normally (a create is applied at once) and sends the real answer
    /// after this delay. A client whose timeout is shorter has lost a response although the
    /// create happened.
    ApplyThenDelay(Duration),
    /// Handles the request normally (a create is applied), then sends this response instead
    /// of the real one: the server did the work, and the client saw, say, a 500.
    ApplyThenRespond(FaultResponse),
}

impl From<FaultResponse> for Fault {
    /// [`Fault::Reject`] with this response.
    fn from(response: FaultResponse) -> Self {
        Fault::Reject(response)
    }
}

/// How often a fault rule fires among the requests it targets.
#[derive(Clone, Debug)]
pub struct Rate(RateKind);

#[derive(Clone, Debug)]
enum RateKind {
    Every {
        n: u32,
        seen: u32,
    },
    Random {
        probability: f64,
        rng: fastrand::Rng,
    },
}

impl Rate {
    /// The `n`-th, `2n`-th, ... targeted request (deterministic). `every(1)` is every request.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    pub fn every(n: u32) -> Self {
        assert!(n > 0, "Rate::every: n must be at least 1");
        Rate(RateKind::Every { n, seen: 0 })
    }

    /// Each targeted request with `probability` (clamped to 0..=1; NaN is 0), drawn from a
    /// generator seeded with `seed`, so that a run is reproducible.
    pub fn random(probability: f64, seed: u64) -> Self {
        let probability = if probability.is_nan() {
            0.0
        } else {
            probability.clamp(0.0, 1.0)
        };
        Rate(RateKind::Random {
            probability,
            rng: fastrand::Rng::with_seed(seed),
        })
    }

    fn fires(&mut self) -> bool {
        match &mut self.0 {
            RateKind::Every { n, seen } => {
                *seen = seen.wrapping_add(1);
                *seen % *n == 0
            }
            RateKind::Random { probability, rng } => rng.f64() < *probability,
        }
    }
}

#[derive(Debug)]
struct Scripted {
    target: Target,
    remaining: usize,
    fault: Fault,
}

#[derive(Debug)]
struct Rule {
    target: Target,
    rate: Rate,
    fault: Fault,
}

/// The faults waiting for requests: scripted ones first (in the order queued), then rules.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    scripted: VecDeque<Scripted>,
    rules: Vec<Rule>,
}

impl Faults {
    pub(crate) fn push_next(&mut self, target: Target, count: usize, fault: Fault) {
        if count > 0 {
            self.scripted.push_back(Scripted {
                target,
                remaining: count,
                fault,
            });
        }
    }

    pub(crate) fn push_rule(&mut self, target: Target, rate: Rate, fault: Fault) {
        self.rules.push(Rule {
            target,
            rate,
            fault,
        });
    }

    pub(crate) fn clear(&mut self) {
        self.scripted.clear();
        self.rules.clear();
    }

    /// The fault for a request to `operation` (`None`: an unknown route), if any.
    ///
    /// A request taken by a scripted fault never reaches the rules: a rule counts only the
    /// requests it sees.
    pub(crate) fn take(&mut self, operation: Option<Operation>) -> Option<Fault> {
        if let Some(index) = self
            .scripted
            .iter()
            .position(|entry| entry.target.matches(operation))
        {
            let entry = &mut self.scripted[index];
            entry.remaining -= 1;
            let fault = entry.fault.clone();
            if entry.remaining == 0 {
                self.scripted.remove(index);
            }
            return Some(fault);
        }
        let mut chosen = None;
        for rule in &mut self.rules {
            // Every matching rule sees the request, so each rule's count stays independent
            // of the others; the first that fires wins.
            if rule.target.matches(operation) && rule.rate.fires() && chosen.is_none() {
                chosen = Some(rule.fault.clone());
            }
        }
        chosen
    }
}
