//! The hooks the generated client runs around every request.

use std::cell::Cell;
use std::fmt;
use std::future::Future;

use progenitor_client::{ClientHooks, ClientInfo, Error, OperationInfo};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};

use crate::Client;

/// What the sdk adds to every request of a [`Client`]: headers (the bearer token, a request
/// id, ...) and a bound on the size of a response body.
///
/// ```
/// use dynamic_waas_api::{Client, RequestOptions};
///
/// let options = RequestOptions::new()
///     .bearer_token("dyn_example")
///     .expect("a token without white space")
///     .max_response_bytes(1 << 20);
/// let client = Client::new("https://app.dynamicauth.com/api/v0", options);
/// # let _ = client;
/// ```
#[derive(Clone, Default)]
pub struct RequestOptions {
    headers: HeaderMap,
    max_response_bytes: Option<usize>,
    timeout: Option<std::time::Duration>,
    capture: Option<BodyCapture>,
}

/// Keeps the bytes of a successful (2xx) response body as received, for a caller that must
/// pass the server's document on unchanged (fields this SDK does not know included).
///
/// ```
/// use dynamic_waas_api::hooks::BodyCapture;
/// use dynamic_waas_api::RequestOptions;
///
/// let capture = BodyCapture::new();
/// let options = RequestOptions::new().capture_body(capture.clone());
/// // ... make one request with a client built from `options`, then:
/// assert_eq!(capture.take(), None); // nothing was sent in this example
/// # let _ = options;
/// ```
#[derive(Clone, Debug, Default)]
pub struct BodyCapture(std::sync::Arc<std::sync::Mutex<Option<bytes::Bytes>>>);

impl BodyCapture {
    /// An empty capture, to share with [`RequestOptions::capture_body`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The body of the last successful response, once.
    pub fn take(&self) -> Option<bytes::Bytes> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn put(&self, body: bytes::Bytes) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(body);
    }
}

/// A bearer token that cannot be put in an HTTP header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidToken {
    reason: &'static str,
}

impl fmt::Display for InvalidToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token itself is never part of the message.
        write!(f, "invalid API token: {}", self.reason)
    }
}

impl std::error::Error for InvalidToken {}

impl RequestOptions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `Authorization: Bearer <token>`, marked sensitive so that it is never logged.
    /// A token that is empty or holds white space or control characters is refused.
    pub fn bearer_token(mut self, token: &str) -> Result<Self, InvalidToken> {
        self.headers.insert(AUTHORIZATION, bearer_header(token)?);
        Ok(self)
    }

    /// Adds (or replaces) a header sent with every request.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Refuses response bodies over `limit` bytes: reading one fails once the limit is
    /// passed, without reading the rest.
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = Some(limit);
        self
    }

    /// A timeout for each request, from sending it to the end of the response body; it
    /// overrides the `reqwest::Client`'s own.
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Keeps a copy of each successful response body in `capture`. The body is read before
    /// the generated code parses it (bounded by [`max_response_bytes`](Self::max_response_bytes));
    /// a failure while reading it is reported as a failure of the request.
    pub fn capture_body(mut self, capture: BodyCapture) -> Self {
        self.capture = Some(capture);
        self
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    pub fn response_limit(&self) -> Option<usize> {
        self.max_response_bytes
    }
}

impl fmt::Debug for RequestOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("RequestOptions")
            .field("headers", &names)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("timeout", &self.timeout)
            .field("capture_body", &self.capture.is_some())
            .finish()
    }
}

/// `Bearer <token>` as a sensitive header value; refuses what would corrupt the header.
pub fn bearer_header(token: &str) -> Result<HeaderValue, InvalidToken> {
    if token.is_empty() {
        return Err(InvalidToken {
            reason: "it is empty",
        });
    }
    if token.chars().any(char::is_whitespace) {
        return Err(InvalidToken {
            reason: "it contains white space (check for a trailing newline)",
        });
    }
    if token.chars().any(|c| c.is_control() || !c.is_ascii()) {
        return Err(InvalidToken {
            reason: "it contains control or non-ASCII characters",
        });
    }
    let mut value = HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| InvalidToken {
        reason: "it is not a valid header value",
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// What one request adds on top of the client's [`RequestOptions`]: its bearer token, its
/// request id, a body capture, and the caller's other tokens to take out of its answer
/// ([`Attempt::also_redact`]). Set around a generated call with [`Attempt::scope`], so one
/// shared [`Client`] serves every request: nothing is built per request but this value.
///
/// The scope also records the status of the response as soon as its headers arrive, so a
/// caller whose timeout fires while the body is still being read knows what the server said
/// ([`Attempt::response_status`]).
///
/// ```no_run
/// use dynamic_waas_api::hooks::{bearer_header, Attempt};
/// use reqwest::header::HeaderValue;
///
/// # async fn demo(client: dynamic_waas_api::Client,
/// #     env: dynamic_waas_api::ids::EnvironmentId, wallet: dynamic_waas_api::ids::WalletId) {
/// let attempt = Attempt::new()
///     .authorization(bearer_header("dyn_example").unwrap())
///     .request_id(HeaderValue::from_static("5f0c6d9e-0d1b-4c3e-9a57-2f1f8f0b7a11"));
/// let result = attempt.scope(client.get_waas_wallet_by_wallet_id(&env, &wallet)).await;
/// # let _ = result;
/// # }
/// ```
#[derive(Default)]
pub struct Attempt {
    authorization: Option<HeaderValue>,
    request_id: Option<HeaderValue>,
    capture: Option<BodyCapture>,
    /// The caller's other tokens (rotated out, or in while this request was in flight), read
    /// when the answer arrives and taken out of it too.
    also: Option<SentTokens>,
    keep_body: bool,
    kept: Cell<Option<bytes::Bytes>>,
    status: Cell<Option<reqwest::StatusCode>>,
    redirected: Cell<bool>,
}

/// The `Authorization` values a caller has sent (its current token and those it rotated
/// out, each as [`bearer_header`] makes it; a value that is not `Bearer <token>` is ignored),
/// to take out of answers with [`Attempt::also_redact`].
///
/// Cloning it shares it: a [`set`](SentTokens::set) after a rotation reaches every request
/// already in flight with a clone, and each answer is cleaned of the values as they are when
/// it arrives. Set the new token here before any request sends it, so that an answer already
/// on its way is cleaned of it too; keep the list short (the `dynamic-waas` facade keeps its
/// current token and the last 8 it replaced): every answer is scanned once per value.
///
/// ```
/// use dynamic_waas_api::hooks::{bearer_header, SentTokens};
///
/// let sent = SentTokens::new();
/// sent.set([bearer_header("dyn_a").unwrap()]);
/// let shared = sent.clone();
/// sent.set([bearer_header("dyn_b").unwrap(), bearer_header("dyn_a").unwrap()]);
/// assert_eq!(shared.get().len(), 2);
/// ```
#[derive(Clone, Default)]
pub struct SentTokens(std::sync::Arc<std::sync::RwLock<std::sync::Arc<[HeaderValue]>>>);

impl SentTokens {
    /// An empty set, to share with [`Attempt::also_redact`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces every value at once (after a rotation: the new token and those still to take
    /// out). Answers that arrive from now on, through any clone, are cleaned of these.
    pub fn set(&self, authorizations: impl IntoIterator<Item = HeaderValue>) {
        let values: std::sync::Arc<[HeaderValue]> = authorizations.into_iter().collect();
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = values;
    }

    /// The values now (a snapshot: a later [`set`](SentTokens::set) does not change it).
    pub fn get(&self) -> std::sync::Arc<[HeaderValue]> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl fmt::Debug for SentTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the tokens: how many.
        f.debug_tuple("SentTokens")
            .field(&self.get().len())
            .finish()
    }
}

tokio::task_local! {
    static ATTEMPT: Attempt;
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-dyn-request-id");

impl Attempt {
    pub fn new() -> Self {
        Self::default()
    }

    /// The `Authorization` header of this request (see [`bearer_header`]).
    pub fn authorization(mut self, value: HeaderValue) -> Self {
        self.authorization = Some(value);
        self
    }

    /// The `x-dyn-request-id` of this request.
    pub fn request_id(mut self, value: HeaderValue) -> Self {
        self.request_id = Some(value);
        self
    }

    /// Also takes the tokens `tokens` holds out of this request's answer: the caller's other
    /// tokens (those it rotated out, and one it rotated in while this request was in flight),
    /// which a server may echo too. It works with or without
    /// [`authorization`](Attempt::authorization).
    ///
    /// `tokens` is read when the answer's headers arrive, and its headers and a redirect's URL
    /// are cleaned then. With it set, a success (2xx) body is always read here, whole (within
    /// [`RequestOptions::max_response_bytes`] when set), before the generated code parses it,
    /// and `tokens` is read again once that body is in, so a rotation meanwhile counts.
    /// An error body is not read here: it comes back in an
    /// [`ErrorResponse`](crate::error::ErrorResponse), which the caller redacts with each
    /// token ([`ErrorResponse::redact`](crate::error::ErrorResponse::redact),
    /// [`redact::bearer_secret`](crate::redact::bearer_secret)).
    ///
    /// ```no_run
    /// use dynamic_waas_api::hooks::{bearer_header, Attempt, SentTokens};
    ///
    /// # async fn demo(client: dynamic_waas_api::Client,
    /// #     env: dynamic_waas_api::ids::EnvironmentId, wallet: dynamic_waas_api::ids::WalletId) {
    /// // Kept beside the caller's token, and set again at each rotation before the new token
    /// // is sent: the current token and those rotated out.
    /// let sent = SentTokens::new();
    /// sent.set([bearer_header("dyn_new").unwrap(), bearer_header("dyn_old").unwrap()]);
    /// let result = Attempt::new()
    ///     .authorization(bearer_header("dyn_new").unwrap())
    ///     .also_redact(sent.clone())
    ///     .scope(client.get_waas_wallet_by_wallet_id(&env, &wallet))
    ///     .await;
    /// # let _ = result;
    /// # }
    /// ```
    pub fn also_redact(mut self, tokens: SentTokens) -> Self {
        self.also = Some(tokens);
        self
    }

    /// Keeps a copy of this request's body when it is a success (as
    /// [`RequestOptions::capture_body`] does for every request).
    pub fn capture_body(mut self, capture: BodyCapture) -> Self {
        self.capture = Some(capture);
        self
    }

    /// Keeps this request's body when it is a success, for [`Attempt::take_body`] once the
    /// scope is done (`TaskLocalFuture::take_value`): a [`BodyCapture`] without its shared
    /// allocation.
    pub fn keep_body(mut self) -> Self {
        self.keep_body = true;
        self
    }

    /// The success body [`Attempt::keep_body`] kept, once.
    pub fn take_body(&self) -> Option<bytes::Bytes> {
        self.kept.take()
    }

    /// The status of the response, once its headers have arrived.
    pub fn response_status(&self) -> Option<reqwest::StatusCode> {
        self.status.get()
    }

    /// Whether the response came from another URL than the request was sent to (the client
    /// followed a redirect): it answers another request than the one made.
    pub fn was_redirected(&self) -> bool {
        self.redirected.get()
    }

    /// Runs `call` (a generated method's future) with this attempt's settings.
    pub fn scope<F: Future>(self, call: F) -> tokio::task::futures::TaskLocalFuture<Attempt, F> {
        ATTEMPT.scope(self, call)
    }
}

impl fmt::Debug for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attempt")
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "[redacted]"),
            )
            .field("request_id", &self.request_id)
            .field("capture_body", &self.capture.is_some())
            .field(
                "also_redact",
                &self.also.as_ref().map_or(0, |t| t.get().len()),
            )
            .field("keep_body", &self.keep_body)
            .field("status", &self.status.get())
            .field("redirected", &self.redirected.get())
            .finish()
    }
}

static API_VERSION: HeaderName = HeaderName::from_static("api-version");

impl ClientHooks<RequestOptions> for Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        _info: &OperationInfo,
    ) -> Result<(), Error<E>> {
        let headers = request.headers_mut();
        // progenitor always adds `api-version: <info.version>`; Dynamic's API and clients
        // know no such header, so it is not sent.
        headers.remove(&API_VERSION);
        for (name, value) in self.inner().headers.iter() {
            headers.insert(name.clone(), value.clone());
        }
        let _ = ATTEMPT.try_with(|attempt| {
            if let Some(value) = &attempt.authorization {
                headers.insert(AUTHORIZATION, value.clone());
            }
            if let Some(value) = &attempt.request_id {
                headers.insert(REQUEST_ID.clone(), value.clone());
            }
        });
        if let Some(timeout) = self.inner().timeout {
            *request.timeout_mut() = Some(timeout);
        }
        Ok(())
    }

    async fn exec(
        &self,
        request: reqwest::Request,
        _info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        // Where the request went, compared exactly: a redirect's URL is the server's choice,
        // and a server that knows the URL it was sent (it does) could choose one that a
        // cheap fingerprint takes for it, the token in it.
        let sent = request.url().clone();
        let mut response = self
            .client()
            .execute(request)
            .await
            .map_err(|e| own_url_only(e, &sent))?;
        let status = response.status();
        let (capture, keep, carried, also) = ATTEMPT
            .try_with(|attempt| {
                attempt.status.set(Some(status));
                attempt.redirected.set(response.url() != &sent);
                (
                    attempt.capture.clone(),
                    attempt.keep_body,
                    attempt.authorization.is_some(),
                    // With the attempt's own token, to skip it among them (it is taken out
                    // once, below).
                    attempt
                        .also
                        .clone()
                        .map(|tokens| (tokens, attempt.authorization.clone())),
                )
            })
            .unwrap_or_default();
        let capture = capture.or_else(|| self.inner().capture.clone());
        // The token this request carried: the attempt's (read where it is kept, not cloned),
        // else the one the options set for every request (the sdk used on its own).
        let authorization = if carried {
            None
        } else {
            self.inner().headers.get(AUTHORIZATION)
        };
        let secret = authorization.and_then(crate::redact::bearer_secret);
        // Whatever the status, the headers and (after a redirect) the URL go on to the
        // caller, and the generated errors print both: the token is taken out of them here.
        let moved = match secret {
            Some(secret) => scrub(&mut response, secret, &sent),
            None if carried => with_attempt_secret(|secret| scrub(&mut response, secret, &sent)),
            None => None,
        };
        let mut response = match moved {
            Some(url) => with_url(response, url),
            None => response,
        };
        // The caller's other tokens, as they are now the answer is here: a server may echo
        // those too.
        let own = also
            .as_ref()
            .and_then(|(_, own)| own.as_ref())
            .or(authorization);
        let others = also.as_ref().map(|(tokens, _)| tokens.get());
        for old in other_secrets(others.as_deref(), own) {
            if let Some(url) = scrub(&mut response, old, &sent) {
                response = with_url(response, url);
            }
        }
        let response = match self.inner().max_response_bytes {
            // A declared length within the limit needs no wrapper: hyper never yields more
            // than the declared Content-Length (HTTP/1), and h2 treats a longer body as a
            // protocol error.
            Some(limit) if response.content_length().is_some_and(|n| n <= limit as u64) => response,
            Some(limit) => limit_body(response, limit),
            None => response,
        };
        // A success body is read here, whole and bounded, so that the token a server echoes
        // is gone before anything parses, keeps or prints it. Error bodies are read by
        // `ErrorResponse`, which the caller redacts.
        let known = carried || secret.is_some() || also.is_some();
        if status.is_success() && (capture.is_some() || keep || known) {
            let also = also.as_ref().map(|(tokens, _)| tokens);
            let (response, body) = read_success(response, secret, also, own, sent).await;
            if let Some(body) = body {
                if let Some(capture) = &capture {
                    capture.put(body.clone());
                }
                if keep {
                    let _ = ATTEMPT.try_with(|attempt| attempt.kept.set(Some(body)));
                }
            }
            return Ok(response);
        }
        Ok(response)
    }
}

/// Takes `secret` out of `response`'s headers (values and names); when the response's URL is
/// not the one the request was sent to (a redirect's, the server's choice) and holds the
/// secret, returns the URL to answer from instead.
fn scrub(
    response: &mut reqwest::Response,
    secret: &[u8],
    sent: &reqwest::Url,
) -> Option<reqwest::Url> {
    crate::redact::redact_headers(response.headers_mut(), secret);
    if response.url() == sent {
        return None;
    }
    let clean = crate::redact::redact(response.url().as_str().as_bytes(), secret)?;
    // Where the answer came from, as far as it can be told without the token; else where
    // the request went.
    let url = std::str::from_utf8(&clean)
        .ok()
        .and_then(|clean| reqwest::Url::parse(clean).ok())
        .filter(|url| crate::redact::redact(url.as_str().as_bytes(), secret).is_none())
        .unwrap_or_else(|| sent.clone());
    Some(url)
}

/// Reads a success body and takes `secret` out of it; hands on an answer with the same
/// status, headers, URL and (redacted) body, and the body read (no copy when the secret is
/// absent). A body that cannot be read (over the limit, cut off) is handed on as a body that
/// fails the same way, so that the caller sees the same error as it would had the body not
/// been read here.
async fn read_success(
    mut response: reqwest::Response,
    secret: Option<&[u8]>,
    also: Option<&SentTokens>,
    own: Option<&HeaderValue>,
    sent: reqwest::Url,
) -> (reqwest::Response, Option<bytes::Bytes>) {
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());
    // Carried over (without it, the conversion back parses a placeholder URL): the sent URL
    // itself, unless a redirect answered.
    let moved = (response.url() != &sent).then(|| response.url().clone());
    let (body, read) = match response.bytes().await {
        Ok(mut body) => {
            let clean = match secret {
                Some(secret) => crate::redact::redact(&body, secret),
                None => with_attempt_secret(|secret| crate::redact::redact(&body, secret)),
            };
            if let Some(clean) = clean {
                body = bytes::Bytes::from(clean);
            }
            // As they are now the body is read (a rotation may have happened meanwhile).
            let others = also.map(SentTokens::get);
            for old in other_secrets(others.as_deref(), own) {
                body = crate::redact::redact_bytes(body, old);
            }
            (reqwest::Body::from(body.clone()), Some(body))
        }
        Err(e) => (
            reqwest::Body::wrap(Failed(Some(own_url_only(e, &sent)))),
            None,
        ),
    };
    let url = moved.unwrap_or(sent);
    let builder = reqwest::ResponseBuilderExt::url(http::Response::builder().status(status), url);
    let mut rebuilt = match builder.body(body) {
        Ok(rebuilt) => rebuilt,
        // Not reached: the status came from a response.
        Err(_) => http::Response::new(reqwest::Body::from(read.clone().unwrap_or_default())),
    };
    *rebuilt.headers_mut() = headers;
    (rebuilt.into(), read)
}

/// The tokens in the caller's other `Authorization` values (see [`Attempt::also_redact`]).
/// `own`, the token this request carried, is left out: it is taken out on its own.
fn other_secrets<'a>(
    others: Option<&'a [HeaderValue]>,
    own: Option<&'a HeaderValue>,
) -> impl Iterator<Item = &'a [u8]> {
    others
        .into_iter()
        .flatten()
        .filter(move |value| Some(*value) != own)
        .filter_map(crate::redact::bearer_secret)
}

/// `f` on the token of the attempt in scope (read where the scope keeps it, not cloned).
fn with_attempt_secret<R>(f: impl FnOnce(&[u8]) -> Option<R>) -> Option<R> {
    ATTEMPT
        .try_with(|attempt| {
            let secret = attempt.authorization.as_ref()?;
            crate::redact::bearer_secret(secret).and_then(f)
        })
        .ok()
        .flatten()
}

/// A body whose reading fails with this error.
struct Failed(Option<reqwest::Error>);

impl http_body::Body for Failed {
    type Data = bytes::Bytes;
    type Error = reqwest::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(self.0.take().map(Err))
    }
}

/// `e` without its URL when that is not the URL the request was sent to: a redirect's URL is
/// the server's choice, and may carry anything (the token it was sent, say) into messages
/// and logs.
fn own_url_only(e: reqwest::Error, sent: &reqwest::Url) -> reqwest::Error {
    match e.url() {
        Some(url) if url != sent => e.without_url(),
        _ => e,
    }
}

/// The conversion to `http::Response` drops the response URL; carry it over through a
/// builder's extensions.
fn carry_url(parts: &mut http::response::Parts, url: reqwest::Url) {
    if let Ok(carrier) = reqwest::ResponseBuilderExt::url(http::Response::builder(), url).body(()) {
        parts.extensions.extend(carrier.into_parts().0.extensions);
    }
}

/// `response` answering from `url`.
fn with_url(response: reqwest::Response, url: reqwest::Url) -> reqwest::Response {
    let response: http::Response<reqwest::Body> = response.into();
    let (mut parts, body) = response.into_parts();
    carry_url(&mut parts, url);
    http::Response::from_parts(parts, body).into()
}

/// Wraps the body so that reading more than `limit` bytes fails (with `LengthLimitError`).
fn limit_body(response: reqwest::Response, limit: usize) -> reqwest::Response {
    let url = response.url().clone();
    let response: http::Response<reqwest::Body> = response.into();
    let (mut parts, body) = response.into_parts();
    carry_url(&mut parts, url);
    let limited = http_body_util::Limited::new(body, limit);
    http::Response::from_parts(parts, reqwest::Body::wrap(limited)).into()
}
