//! The attempt loop: the one place that sends requests. It owns token preparation, the 401
//! refresh, timeouts, the retry budget, `Retry-After`, backoff, tracing and the reasons a call
//! stops, for every operation. An operation says only how to send itself and, through the
//! classification, what an ambiguous outcome means for it.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use dynamic_waas_api::error::{ErrorResponse, DEFAULT_ERROR_BODY_LIMIT};
use dynamic_waas_api::hooks::{Attempt, BodyCapture};
use dynamic_waas_api::ids::EnvironmentId;
use dynamic_waas_api::{ByteStream, ResponseValue};
use reqwest::header::{HeaderValue, RETRY_AFTER};
use reqwest::StatusCode;
use tokio::time::Instant;

use crate::auth::Credential;
use crate::classify::{classify, Decision, Failure, OpKind, Verdict};
use crate::client::Client;
use crate::error::{Error, ErrorKind};
use crate::retry::{later, parse_retry_after, plan, RetryPolicy, Stop};

/// What a generated method returns.
pub(crate) type Sent<T> = Result<ResponseValue<T>, dynamic_waas_api::Error<ByteStream>>;

/// One operation of the API, as the loop sends it.
pub(crate) trait Operation: Sync {
    /// What a success carries.
    type Output: Send;
    const KIND: OpKind;
    /// The one status the generated method reads a body for.
    const SUCCESS: StatusCode;

    /// The environment the request goes to, for pacing.
    fn environment(&self) -> &EnvironmentId;

    /// One request through the generated client.
    fn send<'a>(
        &'a self,
        api: &'a dynamic_waas_api::Client,
    ) -> impl Future<Output = Sent<Self::Output>> + Send + 'a;

    /// Where the success body is copied to, if the caller asked for it.
    fn capture(&self) -> Option<&BodyCapture> {
        None
    }

    /// A success the operation cannot use (a 201 without a requested location, say).
    fn check(&self, _output: &Self::Output) -> Result<(), String> {
        Ok(())
    }
}

/// The bookkeeping of one call, across operations: a create and the reads that settle it
/// share one deadline and one count of requests.
pub(crate) struct Call {
    pub(crate) requests: u32,
    pub(crate) started: Instant,
    pub(crate) deadline: Instant,
    /// The request id of the last request sent.
    pub(crate) request_id: RequestId,
    /// The call waits in the pacer's queue outside its deadline (a bulk job): the deadline
    /// starts with the first permit and moves with every later wait. Otherwise every wait
    /// counts against the deadline.
    pub(crate) queued: bool,
}

impl Call {
    pub(crate) fn new(policy: &RetryPolicy) -> Self {
        let started = Instant::now();
        Self {
            requests: 0,
            started,
            deadline: later(started, policy.get_total_timeout()),
            request_id: RequestId::default(),
            queued: false,
        }
    }

    /// The call starts now: its first request was queued behind the pacer.
    fn restart(&mut self, policy: &RetryPolicy) {
        self.started = Instant::now();
        self.deadline = later(self.started, policy.get_total_timeout());
    }

    /// Time since the call started, for messages.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// How a run of attempts ended without a usable success.
pub(crate) enum Ended {
    /// The call should end with this error (no attempt of this run may have been applied).
    Failed(Error),
    /// A create that may have been applied: the caller settles it from the wallet.
    MayHaveApplied {
        /// What is reported if it cannot be settled.
        error: Error,
        /// The server certainly applied it (a 2xx, or 422 already backed up after an
        /// ambiguous attempt): it is never sent again.
        applied: bool,
    },
}

/// An `x-dyn-request-id`, kept inline (no allocation per attempt).
#[derive(Clone, Copy)]
pub(crate) struct RequestId([u8; uuid::fmt::Hyphenated::LENGTH]);

impl Default for RequestId {
    fn default() -> Self {
        Self([b'-'; uuid::fmt::Hyphenated::LENGTH])
    }
}

impl RequestId {
    /// A fresh id. It must be unique, not unpredictable: a UUID v4 from fastrand spares a
    /// getrandom syscall per attempt.
    fn fresh() -> Self {
        let id = uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid();
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        id.hyphenated().encode_lower(&mut text);
        Self(text)
    }

    pub(crate) fn as_str(&self) -> &str {
        // Always ASCII: written by `encode_lower`, or dashes before the first request.
        std::str::from_utf8(&self.0).unwrap_or("-")
    }

    fn header(&self) -> HeaderValue {
        HeaderValue::from_bytes(&self.0).unwrap_or(HeaderValue::from_static("-"))
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Client {
    /// Runs attempts of `op` until one succeeds, one fails for good, one may have applied a
    /// create, or the policy, the deadline or the budget stops the call. `made` counts the
    /// attempts of this operation so far (a create that was settled and is sent again keeps
    /// counting).
    pub(crate) async fn attempts<O: Operation>(
        &self,
        op: &O,
        policy: &RetryPolicy,
        call: &mut Call,
        made: &mut u32,
        may_have_applied: bool,
    ) -> Result<O::Output, Ended> {
        let mut refreshed = false;
        // The error of the last failed attempt: what the call reports if it stops here.
        let mut last: Option<Error> = None;
        loop {
            // The pacer's permit, then the token (fresh after a long wait in the queue): the
            // time an attempt gets is measured after waiting for both.
            if let Some(pacer) = &self.inner.pacer {
                if call.queued {
                    // A bulk job's waits for the pacer (its queue, a 429's pause) are not
                    // the job's time: its deadline starts with its first permit and moves
                    // with every wait after.
                    let waiting = Instant::now();
                    pacer.acquire(op.environment()).await;
                    if call.requests == 0 {
                        call.restart(policy);
                    } else {
                        call.deadline = later(call.deadline, waiting.elapsed());
                    }
                } else if tokio::time::timeout_at(call.deadline, pacer.acquire(op.environment()))
                    .await
                    .is_err()
                {
                    let error = last.take().unwrap_or_else(|| not_sent(Stop::Deadline));
                    return Err(Ended::Failed(stopped(error, Stop::Deadline, call)));
                }
            }
            let credential = match self.inner.tokens.cached() {
                Some(credential) => credential,
                // A provider that hangs is bounded by the call's deadline.
                None => self.fetch_credential(call).await.map_err(Ended::Failed)?,
            };
            let time = match self.admit(policy, call, O::KIND) {
                Ok(time) => time,
                Err(stop) => {
                    let error = last.take().unwrap_or_else(|| not_sent(stop));
                    return Err(Ended::Failed(stopped(error, stop, call)));
                }
            };
            *made += 1;
            call.requests += 1;
            self.inner
                .stats
                .requests_sent
                .fetch_add(1, Ordering::Relaxed);
            call.request_id = RequestId::fresh();
            let attempt = Attempt::new()
                .authorization(credential.header.clone())
                .request_id(call.request_id.header());
            let attempt = match op.capture() {
                Some(capture) => attempt.capture_body(capture.clone()),
                None => attempt,
            };
            let failure = match self.send(op, attempt, time).await {
                Ok(output) => {
                    self.healthy();
                    tracing::debug!(attempt = call.requests, request_id = %call.request_id, status = O::SUCCESS.as_u16(), "answered");
                    return Ok(output);
                }
                Err(failure) => failure,
            };
            let verdict = classify(O::KIND, &failure);
            if verdict.is_healthy_answer(&failure) {
                self.healthy();
            }
            if let ErrorKind::RateLimited { retry_after } = verdict.kind {
                self.inner
                    .stats
                    .rate_limited
                    .fetch_add(1, Ordering::Relaxed);
                if let Some(pacer) = &self.inner.pacer {
                    pacer.rate_limited(retry_after);
                }
            }
            let status = failure.status().map(|s| s.as_u16());
            tracing::debug!(attempt = call.requests, request_id = %call.request_id, status, reason = %failure.reason(), "attempt failed");
            let Verdict { decision, kind } = verdict;
            let error = into_error(failure, kind, call);
            match decision {
                Decision::Retry { retry_after } => {
                    // A bulk job leaves a rate limit's `Retry-After` to the pacer, which holds
                    // every request for it outside the job's deadline.
                    let paced = self.inner.pacer.is_some() && call.queued;
                    let retry_after = match error.kind() {
                        ErrorKind::RateLimited { .. } if paced => None,
                        _ => retry_after,
                    };
                    match plan(
                        policy,
                        *made,
                        retry_after,
                        Instant::now(),
                        call.deadline,
                        O::KIND == OpKind::Create,
                    ) {
                        Ok(wait) => {
                            tracing::debug!(wait_ms = wait.as_millis() as u64, "retrying");
                            tokio::time::sleep(wait).await;
                            last = Some(error);
                        }
                        Err(stop) => return Err(Ended::Failed(stopped(error, stop, call))),
                    }
                }
                Decision::Refresh => {
                    // Never sent again, by this call or another; a provider is asked anew.
                    self.inner.tokens.reject(&credential);
                    if refreshed || !self.inner.tokens.can_refresh() {
                        return Err(Ended::Failed(error));
                    }
                    tracing::debug!("refreshing the token and trying once more");
                    refreshed = true;
                    last = Some(error);
                }
                Decision::Reconcile { applied } => {
                    return Err(Ended::MayHaveApplied { error, applied })
                }
                Decision::AlreadyBackedUp if may_have_applied => {
                    return Err(Ended::MayHaveApplied {
                        error,
                        applied: true,
                    })
                }
                Decision::AlreadyBackedUp | Decision::Stop => return Err(Ended::Failed(error)),
            }
        }
    }

    /// A healthy answer refills the retry budget and lets the pace recover.
    fn healthy(&self) {
        self.inner.budget.refill();
        if let Some(pacer) = &self.inner.pacer {
            pacer.healthy();
        }
    }

    /// Asks the token source, within the call's deadline.
    async fn fetch_credential(&self, call: &Call) -> Result<Credential, Error> {
        match tokio::time::timeout_at(call.deadline, self.inner.tokens.credential()).await {
            Ok(Ok(credential)) => Ok(credential),
            Ok(Err(err)) => Err(err.with_attempts(call.requests)),
            Err(_) => Err(Error::new(ErrorKind::Timeout)
                .with_source("the token provider did not answer before the call's deadline")
                .with_attempts(call.requests)),
        }
    }

    /// Admits the next request of the call: the time it gets, or why it is not sent. Every
    /// request after the call's first is charged to the retry budget.
    fn admit(&self, policy: &RetryPolicy, call: &Call, op: OpKind) -> Result<Duration, Stop> {
        let left = call.deadline.saturating_duration_since(Instant::now());
        let time = policy
            .attempt_time(left, op == OpKind::Create)
            .ok_or(Stop::Deadline)?;
        if call.requests > 0 && !self.inner.budget.try_withdraw() {
            return Err(Stop::Budget);
        }
        Ok(time)
    }

    /// Sends one request and reads its answer, every byte of it within `time`.
    async fn send<O: Operation>(
        &self,
        op: &O,
        attempt: Attempt,
        time: Duration,
    ) -> Result<O::Output, Failure> {
        let deadline = later(Instant::now(), time);
        let mut scoped = pin!(attempt.scope(op.send(&self.inner.api)));
        let finished = tokio::time::timeout_at(deadline, scoped.as_mut()).await;
        // The status, if the answer's headers arrived: what the server said, whatever failed
        // after that.
        let seen = scoped.as_mut().take_value();
        let status = seen.as_ref().and_then(Attempt::response_status);
        if O::KIND == OpKind::Create && seen.is_some_and(|a| a.was_redirected()) {
            if let Ok(Ok(value)) = finished {
                if op.check(value.as_ref()).is_ok() {
                    return Ok(value.into_inner());
                }
            }
            // A create redirected (a 303 turned into a GET, say) was processed, and what
            // answered is not its answer: the wallet settles it.
            return Err(Failure::Unusable2xx {
                status: status.unwrap_or(O::SUCCESS),
                body: None,
                problem: "the answer came after a redirect".into(),
            });
        }
        let Ok(result) = finished else {
            return Err(Failure::TimedOut {
                after: time,
                status,
            });
        };
        use dynamic_waas_api::Error as E;
        let err = match result {
            Ok(value) => {
                let output = value.into_inner();
                return match op.check(&output) {
                    Ok(()) => Ok(output),
                    Err(problem) => Err(Failure::Unusable2xx {
                        status: O::SUCCESS,
                        body: op.capture().and_then(BodyCapture::take),
                        problem,
                    }),
                };
            }
            Err(err) => err,
        };
        match err {
            // The 2xx arrived and its body failed while being read: it was applied.
            E::CommunicationError(e) if status.is_some_and(|s| s.is_success()) => {
                Err(Failure::Unusable2xx {
                    status: status.unwrap_or(O::SUCCESS),
                    body: None,
                    problem: format!("the body could not be read: {e}"),
                })
            }
            E::CommunicationError(e) if e.is_connect() => Err(Failure::NotSent(e)),
            E::CommunicationError(e) => Err(Failure::Lost(e)),
            E::ResponseBodyError(e) => Err(Failure::Unusable2xx {
                status: O::SUCCESS,
                body: None,
                problem: format!("the body could not be read: {e}"),
            }),
            E::InvalidResponsePayload(body, e) => Err(Failure::Unusable2xx {
                status: O::SUCCESS,
                body: Some(body),
                problem: format!("the body is not the documented response: {e}"),
            }),
            E::InvalidRequest(message) => Err(Failure::Invalid(message)),
            err @ (E::ErrorResponse(_) | E::UnexpectedResponse(_)) => {
                // Far enough to find upstream's `code` in any error body a server sends.
                let limit = DEFAULT_ERROR_BODY_LIMIT.min(self.inner.max_response_bytes);
                let stop = tokio::time::sleep_until(deadline);
                match ErrorResponse::from_error_until(err, limit, stop).await {
                    Ok(response) if response.status().is_success() => Err(Failure::Unusable2xx {
                        status: response.status(),
                        problem: format!(
                            "status {} where {} was expected",
                            response.status().as_u16(),
                            O::SUCCESS.as_u16()
                        ),
                        body: Some(response.body().clone()),
                    }),
                    Ok(response) if response.stopped_early() => Err(Failure::TimedOut {
                        after: time,
                        status: Some(response.status()),
                    }),
                    Ok(response) => {
                        let retry_after = response
                            .headers()
                            .get(RETRY_AFTER)
                            .and_then(|v| parse_retry_after(v, SystemTime::now()));
                        Err(Failure::Http {
                            response,
                            retry_after,
                        })
                    }
                    Err(other) => Err(Failure::Invalid(other.to_string())),
                }
            }
            other => Err(Failure::Invalid(other.to_string())),
        }
    }
}

/// The error a failed attempt is reported as, with everything known about it.
fn into_error(failure: Failure, kind: ErrorKind, call: &Call) -> Error {
    let reason = failure.reason();
    let err = match failure {
        Failure::NotSent(e) | Failure::Lost(e) => Error::new(kind).with_source(e),
        Failure::TimedOut { status, .. } => {
            let err = Error::new(kind).with_source(reason);
            match status {
                Some(status) => err.with_status(status),
                None => err,
            }
        }
        Failure::Unusable2xx { status, body, .. } => {
            let err = Error::new(kind).with_status(status).with_source(reason);
            match body {
                Some(body) => err.with_body(&body),
                None => err,
            }
        }
        Failure::Invalid(_) => Error::new(kind),
        Failure::Http { response, .. } => Error::from_response(kind, &response),
    };
    err.with_request_id(Some(call.request_id.as_str().to_owned()))
        .with_attempts(call.requests)
}

/// What a call reports when it stops before its first request of a run was sent.
fn not_sent(stop: Stop) -> Error {
    match stop {
        Stop::Budget => Error::new(ErrorKind::ServerError)
            .with_source("the client's retry budget is spent, so the request was not sent"),
        _ => Error::new(ErrorKind::Timeout)
            .with_source("the call's deadline leaves no time for an attempt"),
    }
}

/// The error of a call that stops with `error` because of `stop`.
fn stopped(mut error: Error, stop: Stop, call: &Call) -> Error {
    tracing::debug!(attempts = call.requests, reason = %stop.describe(), "stopping");
    if let Stop::RetryAfterTooLong(asked) = stop {
        error.set_kind(ErrorKind::RateLimited {
            retry_after: Some(asked),
        });
    }
    error.with_attempts(call.requests)
}
