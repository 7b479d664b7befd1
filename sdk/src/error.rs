//! Error responses, read from the generated client's raw error values.
//!
//! The generated methods hand every non-2xx response over raw (see CONTRIBUTING.md's list of
//! spec transformations): declared statuses as `Error::ErrorResponse(ResponseValue<ByteStream>)`,
//! others as `Error::UnexpectedResponse(reqwest::Response)`. [`ErrorResponse`] reads either one,
//! up to a size limit, and keeps status, headers and the body as received.

use std::future::{pending, poll_fn, Future};
use std::pin::pin;
use std::task::{ready, Context, Poll};

use http_body::Body as _;

use bytes::{Bytes, BytesMut};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use crate::{types, ByteStream, Error, ResponseValue};

/// How much of an error body is kept by default.
pub const DEFAULT_ERROR_BODY_LIMIT: usize = 64 * 1024;

/// An error response as the server sent it.
#[derive(Debug, Clone)]
pub struct ErrorResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    truncated: bool,
    read_error: Option<String>,
    stopped: bool,
    // Read from the body once, when it is read.
    error_text: Option<String>,
    code: Option<String>,
}

impl ErrorResponse {
    /// Reads the error response held by a generated-client error; gives the error back when
    /// it holds no response (a transport failure, an unreadable success body, ...).
    ///
    /// ```no_run
    /// # async fn demo(client: dynamic_waas_api::Client,
    /// #     env: dynamic_waas_api::ids::EnvironmentId, wallet: dynamic_waas_api::ids::WalletId) {
    /// use dynamic_waas_api::error::{ErrorResponse, DEFAULT_ERROR_BODY_LIMIT};
    ///
    /// if let Err(err) = client.get_waas_wallet_by_wallet_id(&env, &wallet).await {
    ///     match ErrorResponse::from_error(err, DEFAULT_ERROR_BODY_LIMIT).await {
    ///         Ok(response) => eprintln!("{} {:?}", response.status(), response.error_text()),
    ///         Err(other) => eprintln!("no response: {other}"),
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn from_error(
        err: Error<ByteStream>,
        limit: usize,
    ) -> Result<Self, Error<ByteStream>> {
        Self::from_error_until(err, limit, pending()).await
    }

    /// Like [`from_error`](Self::from_error), but reading the body stops when `stop`
    /// completes (a deadline, say): what arrived by then is kept, and
    /// [`stopped_early`](Self::stopped_early) says so. A server that sends the headers of an
    /// error and then stalls its body cannot hold the caller past `stop`.
    pub async fn from_error_until(
        err: Error<ByteStream>,
        limit: usize,
        stop: impl Future<Output = ()>,
    ) -> Result<Self, Error<ByteStream>> {
        let mut stop = pin!(stop);
        match err {
            Error::ErrorResponse(value) => {
                let status = value.status();
                let headers = value.headers().clone();
                let mut stream = value.into_inner().into_inner();
                let next = |cx: &mut Context<'_>| stream.as_mut().poll_next(cx);
                Ok(read(status, headers, limit, next, stop.as_mut()).await)
            }
            Error::UnexpectedResponse(mut response) => {
                let status = response.status();
                let headers = std::mem::take(response.headers_mut());
                Ok(read(status, headers, limit, body_chunks(response), stop.as_mut()).await)
            }
            other => Err(other),
        }
    }

    /// Reads a declared error response (status, headers, body up to `limit` bytes).
    pub async fn from_stream(value: ResponseValue<ByteStream>, limit: usize) -> Self {
        let status = value.status();
        let headers = value.headers().clone();
        let mut stream = value.into_inner().into_inner();
        let next = |cx: &mut Context<'_>| stream.as_mut().poll_next(cx);
        read(status, headers, limit, next, pending()).await
    }

    /// Reads any response as an error response (status, headers, body up to `limit` bytes).
    pub async fn from_response(mut response: reqwest::Response, limit: usize) -> Self {
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        read(status, headers, limit, body_chunks(response), pending()).await
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body as received, up to the limit.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Whether the body was longer than the limit (only its start is kept).
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// Why reading the body stopped early, if the connection failed while reading it.
    pub fn read_error(&self) -> Option<&str> {
        self.read_error.as_deref()
    }

    /// Whether reading the body was stopped before it ended (see
    /// [`from_error_until`](Self::from_error_until)).
    pub fn stopped_early(&self) -> bool {
        self.stopped
    }

    /// Whether the whole body was read: not truncated, not cut off, not stopped.
    pub fn is_complete(&self) -> bool {
        !self.truncated && !self.stopped && self.read_error.is_none()
    }

    /// The body as the spec's (folded) error schema, when it is JSON of that shape.
    pub fn parsed(&self) -> Option<types::ErrorBody> {
        serde_json::from_slice(&self.body).ok()
    }

    /// Upstream's error text: the `error` field, or `message` as rate-limit bodies use.
    pub fn error_text(&self) -> Option<&str> {
        self.error_text.as_deref()
    }

    /// Upstream's error code (`not_found`, `key_share_already_backed_up`, ...); a numeric
    /// code is given as text.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// Takes `secret` (the request's bearer token, say) out of the body and headers, so that
    /// a server that echoes it cannot get it stored or printed (see [`crate::redact`]).
    pub fn redact(&mut self, secret: &[u8]) {
        if let Some(clean) = crate::redact::redact(&self.body, secret) {
            self.body = Bytes::from(clean);
            (self.error_text, self.code) = upstream_fields(&self.body);
        }
        // The fields are decoded text: checked again, whatever form the body wrote them in.
        for field in [&mut self.error_text, &mut self.code].into_iter().flatten() {
            if let Some(clean) = crate::redact::redact(field.as_bytes(), secret) {
                *field = String::from_utf8_lossy(&clean).into_owned();
            }
        }
        crate::redact::redact_headers(&mut self.headers, secret);
    }
}

/// `(error text, code)` from a JSON error body, leniently: `error` or `message`; a string
/// or numeric `code`.
fn upstream_fields(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (None, None);
    };
    let text = ["error", "message"]
        .iter()
        .find_map(|key| value.get(key).and_then(|v| v.as_str()).map(str::to_owned));
    let code = match value.get("code") {
        Some(serde_json::Value::String(code)) => Some(code.clone()),
        Some(serde_json::Value::Number(code)) => Some(code.to_string()),
        _ => None,
    };
    (text, code)
}

/// Reads chunks from `next` into a bounded buffer until the body ends, the limit is reached,
/// reading fails or `stop` completes.
async fn read(
    status: StatusCode,
    headers: HeaderMap,
    limit: usize,
    mut next: impl FnMut(&mut Context<'_>) -> Poll<Option<reqwest::Result<Bytes>>>,
    stop: impl Future<Output = ()>,
) -> ErrorResponse {
    let mut reader = Reader::new(limit);
    let mut stop = pin!(stop);
    loop {
        let step = poll_fn(|cx| {
            if stop.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            next(cx).map(Some)
        })
        .await;
        match step {
            None => {
                reader.stopped = true;
                break;
            }
            Some(Some(Ok(chunk))) => {
                if !reader.push(&chunk) {
                    break;
                }
            }
            Some(Some(Err(e))) => {
                reader.failed(e);
                break;
            }
            Some(None) => break,
        }
    }
    reader.finish(status, headers)
}

/// The data chunks of a response body (trailers are skipped).
fn body_chunks(
    response: reqwest::Response,
) -> impl FnMut(&mut Context<'_>) -> Poll<Option<reqwest::Result<Bytes>>> {
    let response: http::Response<reqwest::Body> = response.into();
    let mut body = Box::pin(response.into_body());
    move |cx| loop {
        match ready!(body.as_mut().poll_frame(cx)) {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => return Poll::Ready(Some(Ok(data))),
                Err(_trailers) => continue,
            },
            Some(Err(e)) => return Poll::Ready(Some(Err(e))),
            None => return Poll::Ready(None),
        }
    }
}

struct Reader {
    buf: BytesMut,
    limit: usize,
    truncated: bool,
    read_error: Option<String>,
    stopped: bool,
}

impl Reader {
    fn new(limit: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            limit,
            truncated: false,
            read_error: None,
            stopped: false,
        }
    }

    /// Keeps what fits; `false` once the limit is reached (stop reading).
    fn push(&mut self, chunk: &[u8]) -> bool {
        let room = self.limit.saturating_sub(self.buf.len());
        if chunk.len() > room {
            self.buf.extend_from_slice(&chunk[..room]);
            self.truncated = true;
            return false;
        }
        self.buf.extend_from_slice(chunk);
        true
    }

    fn failed(&mut self, e: reqwest::Error) {
        self.read_error = Some(e.to_string());
    }

    fn finish(self, status: StatusCode, headers: HeaderMap) -> ErrorResponse {
        let body = self.buf.freeze();
        let (error_text, code) = upstream_fields(&body);
        ErrorResponse {
            status,
            headers,
            body,
            truncated: self.truncated,
            read_error: self.read_error,
            stopped: self.stopped,
            error_text,
            code,
        }
    }
}
