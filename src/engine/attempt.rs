//! The attempt loop: the one place that sends requests, for every operation. It owns the
//! pacer's permit, the token, the time an attempt gets, the retry budget, `Retry-After`,
//! backoff, the 401 refresh, the per-attempt span, metrics, and the reasons a call stops. An
//! operation says only how to make one attempt (see [`Operation`]); what a failed attempt
//! means comes from [`classify`].

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use dynamic_waas_api::ids::EnvironmentId;
use reqwest::header::HeaderValue;
use tokio::time::Instant;
use tracing::Instrument;

use super::classify::{classify, Applied, Decision, Failure, OpKind, Verdict};
use crate::auth::Credential;
use crate::client::Client;
use crate::error::{Error, ErrorKind};
use crate::metrics::Event;
use crate::pace::{Lane, Patience};
use crate::retry::{later, plan, RetryPolicy, Stop};

/// One operation of the API, as the loop sends it. The HTTP ones are in `wire.rs`; the unit
/// tests below answer scripted outcomes instead.
pub(crate) trait Operation: Sync {
    /// What a success carries.
    type Output: Send;
    const KIND: OpKind;
    /// `http.request.method`, for the attempt's span.
    const METHOD: &'static str;

    /// The environment the request goes to, for pacing.
    fn environment(&self) -> &EnvironmentId;

    /// One attempt: every byte of the answer read within `attempt.time`.
    fn attempt(
        &self,
        client: &Client,
        attempt: Attempt<'_>,
    ) -> impl Future<Output = Result<Self::Output, Failure>> + Send;
}

/// What the loop gives one attempt.
pub(crate) struct Attempt<'a> {
    pub(crate) credential: &'a Credential,
    pub(crate) request_id: RequestId,
    pub(crate) time: Duration,
}

/// How a call's waits count against its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waits {
    /// A single call: every wait counts, and a rate-limit pause longer than its policy's
    /// `max_retry_after` ends it at once as rate limited.
    Deadline,
    /// A bulk job: its waits for the pacer and for a rate limit's `Retry-After` are not its
    /// time. Its deadline starts with its first permit and moves with every such wait.
    Queued,
}

/// The bookkeeping of one call, across operations: a create and the reads that settle it
/// share one deadline and one count of requests.
pub(crate) struct Call {
    started: Instant,
    deadline: Instant,
    /// Requests sent by the call, every operation's.
    pub(crate) requests: u32,
    /// The request id of the last request sent.
    pub(crate) request_id: RequestId,
    waits: Waits,
    total: Duration,
    /// 429s a bulk job has waited out: not its attempts (the pacer's business), but bounded.
    refused: u32,
    /// The time a bulk job has waited for them, in all: bounded too.
    refused_waited: Duration,
}

impl Call {
    pub(crate) fn new(policy: &RetryPolicy, waits: Waits) -> Self {
        let started = Instant::now();
        Self {
            started,
            deadline: later(started, policy.total_timeout()),
            requests: 0,
            request_id: RequestId::default(),
            waits,
            total: policy.total_timeout(),
            refused: 0,
            refused_waited: Duration::ZERO,
        }
    }

    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Time since the call started, for messages.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The call waited `waited` for the pacer or a rate limit: the one place that decides
    /// whether that counts against its deadline.
    fn waited_for_rate_limit(&mut self, waited: Duration) {
        if self.waits != Waits::Queued {
            return;
        }
        if self.requests == 0 {
            // Its first permit: the call starts now.
            self.started = Instant::now();
            self.deadline = later(self.started, self.total);
        } else {
            self.deadline = later(self.deadline, waited);
        }
    }
}

/// How a run of attempts ended without a usable success.
pub(crate) enum Ended {
    /// The run should end with this error (no attempt of this run may have been applied).
    Failed(Error),
    /// A create that may have been applied: the caller settles it from the wallet.
    InDoubt { error: Error, applied: Applied },
}

/// An `x-dyn-request-id`, kept inline (no allocation per attempt, nor in a result).
#[derive(Clone, Copy, PartialEq, Eq)]
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

    pub(crate) fn header(&self) -> HeaderValue {
        // Owned by a shared buffer from the start: reqwest clones the request's headers, and
        // the first clone of a copied value allocates again to share it.
        HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(self.0))
            .unwrap_or(HeaderValue::from_static("-"))
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest a bulk job waits for rate limits' `Retry-After`s, in all (ten of Dynamic's
/// one-minute windows). A 429 that asks for longer than what is left of it ends the job at
/// once as rate limited (a later run creates it), instead of holding its slot of the run:
/// a server answering `Retry-After: 86400` to every request must not stall a run for ten
/// minutes a 429, ten 429s a job.
const MAX_QUEUED_RETRY_AFTER: Duration = Duration::from_secs(600);

/// The 429s a bulk job waits out before it fails as rate limited. A 429 is a request the
/// server did not process, and finding a limit shared with other clients costs a few while
/// the pacer slows down: they are not the job's attempts, or a job would fail (and need
/// another run) for the pacer's learning. More than this many, each with its
/// `Retry-After`, is a server that refuses the job whatever the pace.
const MAX_QUEUED_RATE_LIMITED: u32 = 10;

/// Runs attempts of `op` until one succeeds, one fails for good, one may have applied a
/// create, or the policy, the deadline or the budget stops the run. `tries` counts the
/// attempts of this operation so far (a create sent again after a settled doubt keeps
/// counting); `in_doubt`: an earlier create of the call may have been applied.
pub(crate) async fn run<O: Operation>(
    client: &Client,
    op: &O,
    policy: &RetryPolicy,
    call: &mut Call,
    tries: &mut u32,
    in_doubt: bool,
    lane: Lane,
) -> Result<O::Output, Ended> {
    let mut refreshed = false;
    // The 429s of this run that a bulk job waited out: not attempts of this run. `tries` may
    // count earlier runs of the operation (a create sent again), never another operation's,
    // so what is subtracted from it is counted here, not over the whole call.
    let mut refused_here = 0u32;
    // The error of the last failed attempt: what the run reports if it stops here.
    let mut last: Option<Error> = None;
    let stop = |last: &mut Option<Error>, stop: Stop, call: &Call| {
        let error = last.take().unwrap_or_else(|| not_sent(stop));
        Err(Ended::Failed(stopped(error, stop, call)))
    };
    loop {
        // The pacer's permit, then the token (fresh after a long wait in the queue): the
        // time an attempt gets is measured after waiting for both.
        if let Err(why) = permit(client, op.environment(), policy, call, lane).await {
            return stop(&mut last, why, call);
        }
        let credential = match client.inner.tokens.cached() {
            Some(credential) => credential,
            // A provider that hangs is bounded by the call's deadline.
            None => fetch_credential(client, call)
                .await
                .map_err(Ended::Failed)?,
        };
        let time = match admit(client, policy, call, O::KIND) {
            Ok(time) => time,
            Err(why) => return stop(&mut last, why, call),
        };
        *tries += 1;
        call.requests += 1;
        call.request_id = RequestId::fresh();
        client.inner.record_request(O::KIND, *tries > 1);
        let span = tracing::debug_span!(
            "dynamic_waas.attempt",
            "http.request.method" = O::METHOD,
            "server.address" = %client.inner.server.0,
            "server.port" = client.inner.server.1,
            "http.request.resend_count" = *tries - 1,
            "http.response.status_code" = tracing::field::Empty,
            "error.type" = tracing::field::Empty,
            request_id = %call.request_id,
        );
        let sent_at = Instant::now();
        let attempt = Attempt {
            credential: &credential,
            request_id: call.request_id,
            time,
        };
        let failure = match op.attempt(client, attempt).instrument(span.clone()).await {
            Ok(output) => {
                healthy(client);
                span.record("http.response.status_code", success_status(O::KIND));
                tracing::debug!(parent: &span, "answered");
                return Ok(output);
            }
            Err(failure) => failure,
        };
        let verdict = classify(O::KIND, &failure, in_doubt);
        record(client, &span, &failure, &verdict, sent_at);
        let Verdict { decision, kind } = verdict;
        let error = into_error(failure, kind, call);
        match decision {
            Decision::Retry { retry_after } => {
                let rate_limited = matches!(error.kind(), ErrorKind::RateLimited { .. });
                let made = Made {
                    tries: *tries,
                    refused_here: &mut refused_here,
                };
                match plan_retry(policy, call, made, retry_after, rate_limited, O::KIND) {
                    Ok(wait) => {
                        client.inner.metric(Event::Retry {
                            operation: O::KIND.name(),
                            reason: error.kind().name(),
                        });
                        tracing::debug!(parent: &span, wait_ms = wait.as_millis() as u64, "retrying");
                        tokio::time::sleep(wait).await;
                        if rate_limited {
                            call.waited_for_rate_limit(wait);
                        }
                        last = Some(error);
                    }
                    Err(why) => return Err(Ended::Failed(stopped(error, why, call))),
                }
            }
            Decision::Refresh => {
                // Never sent again, by this call or another; a provider is asked anew.
                client.inner.tokens.reject(&credential);
                if refreshed || !client.inner.tokens.can_refresh() {
                    return Err(Ended::Failed(error));
                }
                tracing::debug!(parent: &span, "refreshing the token and trying once more");
                refreshed = true;
                last = Some(error);
            }
            Decision::Settle(applied) => return Err(Ended::InDoubt { error, applied }),
            Decision::Stop => return Err(Ended::Failed(error)),
        }
    }
}

fn success_status(op: OpKind) -> u16 {
    match op {
        OpKind::Create => 201,
        OpKind::Read => 200,
    }
}

/// What a failed attempt tells the budget, the pacer, the counters and the span.
fn record(
    client: &Client,
    span: &tracing::Span,
    failure: &Failure,
    verdict: &Verdict,
    sent_at: Instant,
) {
    if verdict.is_healthy_answer(failure) {
        healthy(client);
    }
    let status = failure.status().map(|s| s.as_u16());
    if let Some(status) = status {
        span.record("http.response.status_code", status);
    }
    span.record("error.type", verdict.kind.name());
    if let ErrorKind::RateLimited { retry_after } = verdict.kind {
        client
            .inner
            .stats
            .rate_limited
            .fetch_add(1, Ordering::Relaxed);
        client.inner.metric(Event::RateLimited);
        if let Some(pacer) = &client.inner.pacer {
            pacer.rate_limited(sent_at, retry_after);
        }
    } else if status.is_some() {
        if let Some(pacer) = &client.inner.pacer {
            pacer.answered();
        }
    }
    tracing::debug!(parent: span, status, reason = %failure.reason(), "attempt failed");
}

/// A healthy answer refills the retry budget and counts as accepted by the server.
fn healthy(client: &Client) {
    client.inner.budget.refill();
    if let Some(pacer) = &client.inner.pacer {
        pacer.answered();
    }
}

/// Waits for the pacer's permit; a single call gives up when a rate-limit pause outlasts
/// what its policy accepts, or its deadline passes in the queue.
async fn permit(
    client: &Client,
    environment: &EnvironmentId,
    policy: &RetryPolicy,
    call: &mut Call,
    lane: Lane,
) -> Result<(), Stop> {
    let Some(pacer) = &client.inner.pacer else {
        return Ok(());
    };
    if pacer.try_now(environment, lane) {
        client.inner.metric(Event::PacerWait {
            waited: Duration::ZERO,
        });
        call.waited_for_rate_limit(Duration::ZERO);
        return Ok(());
    }
    let waiting = Instant::now();
    let result = match call.waits {
        Waits::Queued => pacer
            .queue(environment, lane, None)
            .await
            .map_err(Stop::Paused),
        Waits::Deadline => {
            let patience = Patience {
                max_pause: policy.max_retry_after(),
                deadline: call.deadline,
            };
            match tokio::time::timeout_at(
                call.deadline,
                pacer.queue(environment, lane, Some(patience)),
            )
            .await
            {
                Ok(Ok(())) => Ok(()),
                Ok(Err(left)) => Err(Stop::Paused(left)),
                Err(_) => Err(Stop::Paced),
            }
        }
    };
    let waited = waiting.elapsed();
    client.inner.metric(Event::PacerWait { waited });
    call.waited_for_rate_limit(waited);
    result
}

/// Asks the token source, within the call's deadline.
async fn fetch_credential(client: &Client, call: &Call) -> Result<Credential, Error> {
    match tokio::time::timeout_at(call.deadline, client.inner.tokens.credential()).await {
        Ok(Ok(credential)) => Ok(credential),
        Ok(Err(err)) => Err(err.with_attempts(call.requests)),
        Err(_) => Err(Error::new(ErrorKind::Timeout)
            .with_source("the token provider did not answer before the call's deadline")
            .with_attempts(call.requests)),
    }
}

/// Admits the next request of the call: the time it gets, or why it is not sent. Every
/// request after the call's first is charged to the retry budget.
fn admit(client: &Client, policy: &RetryPolicy, call: &Call, op: OpKind) -> Result<Duration, Stop> {
    let left = call.deadline.saturating_duration_since(Instant::now());
    let time = policy
        .attempt_time(left, op == OpKind::Create)
        .ok_or(Stop::Deadline)?;
    if call.requests > 0 && !client.inner.budget.try_withdraw() {
        return Err(Stop::Budget);
    }
    Ok(time)
}

/// The attempts a run has made: `tries` of the operation (see [`run`]), and the 429s among
/// them this run waited out as a bulk job.
struct Made<'a> {
    tries: u32,
    refused_here: &'a mut u32,
}

/// The wait before the next attempt. A bulk job waits out a rate limit's `Retry-After`
/// outside its deadline (up to [`MAX_QUEUED_RETRY_AFTER`] in all), and up to
/// [`MAX_QUEUED_RATE_LIMITED`] of them besides its attempts; anything else follows [`plan`].
fn plan_retry(
    policy: &RetryPolicy,
    call: &mut Call,
    made: Made<'_>,
    retry_after: Option<Duration>,
    rate_limited: bool,
    op: OpKind,
) -> Result<Duration, Stop> {
    let Made {
        tries,
        refused_here,
    } = made;
    if call.waits == Waits::Queued {
        // The job's own attempts: those the server did not refuse for the rate. The call's
        // count of 429s spans its create and every read that settles it; a read's `tries`
        // counts that read only, so only this run's 429s are taken off.
        let attempts = tries.saturating_sub(*refused_here);
        if rate_limited {
            if call.refused >= MAX_QUEUED_RATE_LIMITED {
                return Err(Stop::Attempts);
            }
            let wait = retry_after.unwrap_or_else(|| policy.backoff(call.refused + 1));
            let left = MAX_QUEUED_RETRY_AFTER.saturating_sub(call.refused_waited);
            if wait > left {
                return Err(match retry_after {
                    Some(asked) => Stop::RetryAfterTooLong(asked),
                    None => Stop::Attempts,
                });
            }
            call.refused += 1;
            call.refused_waited += wait;
            *refused_here += 1;
            return Ok(wait);
        }
        return plan(
            policy,
            attempts,
            retry_after,
            Instant::now(),
            call.deadline,
            op == OpKind::Create,
        );
    }
    plan(
        policy,
        tries,
        retry_after,
        Instant::now(),
        call.deadline,
        op == OpKind::Create,
    )
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

/// What a run reports when it stops before its first request was sent.
fn not_sent(stop: Stop) -> Error {
    match stop {
        Stop::Budget => Error::new(ErrorKind::RetryBudgetSpent),
        Stop::Paused(left) => Error::new(ErrorKind::RateLimited {
            retry_after: Some(left),
        })
        .with_source(stop.describe()),
        Stop::Paced => {
            Error::new(ErrorKind::RateLimited { retry_after: None }).with_source(stop.describe())
        }
        Stop::Attempts | Stop::Deadline | Stop::RetryAfterTooLong(_) => {
            Error::new(ErrorKind::Timeout).with_source(stop.describe())
        }
    }
}

/// The error of a run that stops with `error` because of `stop`.
fn stopped(mut error: Error, stop: Stop, call: &Call) -> Error {
    tracing::debug!(attempts = call.requests, reason = %stop.describe(), "stopping");
    match stop {
        Stop::RetryAfterTooLong(asked) => error.set_kind(ErrorKind::RateLimited {
            retry_after: Some(asked),
        }),
        Stop::Paused(left) => error.set_kind(ErrorKind::RateLimited {
            retry_after: Some(left),
        }),
        // Why the call ended is the budget; what the last attempt got stays in the details
        // (status, upstream's code) and the source.
        Stop::Budget => {
            let last = error.summary();
            error.set_kind(ErrorKind::RetryBudgetSpent);
            if std::error::Error::source(&error).is_none() {
                error = error.with_source(format!("the last attempt: {last}"));
            }
        }
        _ => {}
    }
    error.with_attempts(call.requests)
}

#[cfg(test)]
pub(crate) mod tests {
    //! One test per rule of the loop, without HTTP: an operation answering scripted outcomes
    //! under paused time.

    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;
    use crate::{Pacing, RetryPolicy};
    use dynamic_waas_api::error::ErrorResponse;
    use reqwest::StatusCode;

    /// An operation that answers from a script; each attempt takes `latency`.
    pub(crate) struct Scripted {
        pub(crate) env: EnvironmentId,
        pub(crate) answers: Mutex<VecDeque<Result<u16, Failure>>>,
        pub(crate) latency: Duration,
        pub(crate) times: Mutex<Vec<Duration>>,
    }

    impl Scripted {
        pub(crate) fn new(answers: Vec<Result<u16, Failure>>) -> Self {
            Self {
                env: EnvironmentId::from(uuid::Uuid::from_u128(1)),
                answers: Mutex::new(answers.into()),
                latency: Duration::from_millis(10),
                times: Mutex::new(Vec::new()),
            }
        }

        pub(crate) fn sent(&self) -> usize {
            self.times.lock().unwrap().len()
        }
    }

    impl Operation for Scripted {
        type Output = u16;
        const KIND: OpKind = OpKind::Read;
        const METHOD: &'static str = "GET";

        fn environment(&self) -> &EnvironmentId {
            &self.env
        }

        async fn attempt(&self, _client: &Client, attempt: Attempt<'_>) -> Result<u16, Failure> {
            self.times.lock().unwrap().push(attempt.time);
            tokio::time::sleep(self.latency).await;
            let answer = self.answers.lock().unwrap().pop_front();
            answer.unwrap_or(Ok(200))
        }
    }

    /// A scripted create.
    struct ScriptedCreate(Scripted);

    impl Operation for ScriptedCreate {
        type Output = u16;
        const KIND: OpKind = OpKind::Create;
        const METHOD: &'static str = "POST";

        fn environment(&self) -> &EnvironmentId {
            &self.0.env
        }

        async fn attempt(&self, client: &Client, attempt: Attempt<'_>) -> Result<u16, Failure> {
            self.0.attempt(client, attempt).await
        }
    }

    pub(crate) async fn http(status: u16, retry_after: Option<u64>) -> Failure {
        let mut response = ::http::Response::builder().status(status);
        if let Some(seconds) = retry_after {
            response = response.header("retry-after", seconds.to_string());
        }
        let response: reqwest::Response = response.body(String::new()).unwrap().into();
        let response = ErrorResponse::from_response(response, 1024).await;
        Failure::Http {
            response,
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    fn lost() -> Failure {
        Failure::TimedOut {
            after: Duration::from_secs(1),
            status: None,
        }
    }

    pub(crate) fn client(pacing: Pacing) -> Client {
        Client::builder()
            .base_url("http://127.0.0.1:9")
            .token("dyn_test")
            .pacing(pacing)
            .build()
            .unwrap()
    }

    fn policy() -> RetryPolicy {
        RetryPolicy::default()
            .with_initial_backoff(Duration::from_millis(100))
            .with_max_backoff(Duration::from_millis(400))
    }

    async fn go<O: Operation<Output = u16>>(
        client: &Client,
        op: &O,
        policy: &RetryPolicy,
        waits: Waits,
    ) -> (Result<u16, Ended>, Call, u32) {
        let mut call = Call::new(policy, waits);
        let mut tries = 0;
        let result = run(client, op, policy, &mut call, &mut tries, false, Lane::New).await;
        (result, call, tries)
    }

    fn failed(result: Result<u16, Ended>) -> Error {
        match result {
            Err(Ended::Failed(e)) => e,
            Err(Ended::InDoubt { error, .. }) => panic!("in doubt: {error}"),
            Ok(v) => panic!("succeeded: {v}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_retryable_failure_is_retried_until_the_attempts_run_out() {
        let client = client(Pacing::unlimited());
        let op = Scripted::new(vec![
            Err(http(503, None).await),
            Err(http(503, None).await),
            Err(http(503, None).await),
            Ok(200),
        ]);
        let (result, call, tries) = go(&client, &op, &policy(), Waits::Deadline).await;
        let err = failed(result);
        assert_eq!(err.kind(), &ErrorKind::ServerError);
        assert_eq!((tries, call.requests, err.attempts()), (3, 3, 3));
        assert_eq!(op.sent(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_definite_refusal_stops_at_once() {
        let client = client(Pacing::unlimited());
        let op = Scripted::new(vec![Err(http(404, None).await)]);
        let (result, _, tries) = go(&client, &op, &policy(), Waits::Deadline).await;
        assert_eq!(failed(result).kind(), &ErrorKind::NotFound);
        assert_eq!(tries, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_waited_and_a_longer_one_than_allowed_ends_the_call() {
        let client = client(Pacing::unlimited());
        let op = Scripted::new(vec![Err(http(429, Some(3)).await), Ok(200)]);
        let start = Instant::now();
        let (result, _, _) = go(&client, &op, &policy(), Waits::Deadline).await;
        assert_eq!(result.ok(), Some(200));
        assert!(start.elapsed() >= Duration::from_secs(3));

        let op = Scripted::new(vec![Err(http(429, Some(31)).await)]);
        let (result, _, _) = go(&client, &op, &policy(), Waits::Deadline).await;
        let err = failed(result);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(31)));
        assert_eq!(op.sent(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_bulk_job_waits_out_a_rate_limit_outside_its_deadline() {
        let client = client(Pacing::unlimited());
        let policy = policy().with_total_timeout(Duration::from_secs(5));
        let op = Scripted::new(vec![Err(http(429, Some(60)).await), Ok(200)]);
        let (result, call, _) = go(&client, &op, &policy, Waits::Queued).await;
        assert_eq!(result.ok(), Some(200));
        // The 60 s wait moved the deadline.
        assert!(call.deadline() > Instant::now() + Duration::from_secs(3));
        // A single call with the same policy stops: 60 s is more than it may wait.
        let op = Scripted::new(vec![Err(http(429, Some(60)).await), Ok(200)]);
        let (result, _, _) = go(&client, &op, &policy, Waits::Deadline).await;
        assert!(matches!(
            failed(result).kind(),
            ErrorKind::RateLimited { .. }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_bulk_jobs_429s_are_not_its_attempts_but_are_bounded() {
        let client = client(Pacing::unlimited());
        // Three attempts allowed; five 429s, a 503, and then an answer: a bulk job gets it.
        let mut script: Vec<_> = Vec::new();
        for _ in 0..5 {
            script.push(Err(http(429, Some(1)).await));
        }
        script.push(Err(http(503, None).await));
        script.push(Ok(200));
        let op = Scripted::new(script);
        let (result, _, tries) = go(&client, &op, &policy(), Waits::Queued).await;
        assert_eq!((result.ok(), tries), (Some(200), 7));
        // A single call stops at its three attempts.
        let op = Scripted::new(vec![
            Err(http(429, Some(1)).await),
            Err(http(429, Some(1)).await),
            Err(http(429, Some(1)).await),
            Ok(200),
        ]);
        let (result, _, _) = go(&client, &op, &policy(), Waits::Deadline).await;
        assert!(matches!(
            failed(result).kind(),
            ErrorKind::RateLimited { .. }
        ));
        // A server that refuses the job whatever the pace: it fails, after its allowance.
        let mut refusals = Vec::new();
        for _ in 0..MAX_QUEUED_RATE_LIMITED + 5 {
            refusals.push(Err(http(429, Some(1)).await));
        }
        let op = Scripted::new(refusals);
        let (result, _, tries) = go(&client, &op, &policy(), Waits::Queued).await;
        assert!(matches!(
            failed(result).kind(),
            ErrorKind::RateLimited { .. }
        ));
        assert_eq!(tries, MAX_QUEUED_RATE_LIMITED + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_bulk_jobs_429s_in_one_run_are_not_taken_off_the_attempts_of_the_next() {
        // A create refused twice, then a read of the same call that fails once: its one
        // attempt is not "1 - 2" attempts (an overflow), and it is retried.
        let client = client(Pacing::unlimited());
        let mut call = Call::new(&policy(), Waits::Queued);
        let create = ScriptedCreate(Scripted::new(vec![
            Err(http(429, Some(0)).await),
            Err(http(429, Some(0)).await),
            Ok(201),
        ]));
        let mut creates = 0;
        let created = run(
            &client,
            &create,
            &policy(),
            &mut call,
            &mut creates,
            false,
            Lane::New,
        )
        .await;
        assert_eq!((created.ok(), creates), (Some(201), 3));
        let read = Scripted::new(vec![Err(http(503, None).await), Ok(200)]);
        let mut reads = 0;
        let result = run(
            &client,
            &read,
            &policy(),
            &mut call,
            &mut reads,
            false,
            Lane::Settle,
        )
        .await;
        assert_eq!((result.ok(), reads), (Some(200), 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_bulk_job_waits_ten_minutes_of_retry_after_in_all_then_fails_as_rate_limited() {
        let client = client(Pacing::unlimited());
        // A day asked: not waited (ten minutes a 429, ten 429s, before): rate limited at once.
        let op = Scripted::new(vec![Err(http(429, Some(86_400)).await), Ok(200)]);
        let start = Instant::now();
        let (result, _, tries) = go(&client, &op, &policy(), Waits::Queued).await;
        let err = failed(result);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(86_400)));
        assert_eq!((tries, start.elapsed()), (1, op.latency));
        // Ten minutes at a time: one waited, the next refused.
        let mut script = Vec::new();
        for _ in 0..MAX_QUEUED_RATE_LIMITED + 1 {
            script.push(Err(http(429, Some(600)).await));
        }
        let op = Scripted::new(script);
        let start = Instant::now();
        let (result, _, tries) = go(&client, &op, &policy(), Waits::Queued).await;
        assert!(matches!(
            failed(result).kind(),
            ErrorKind::RateLimited { .. }
        ));
        assert_eq!(tries, 2);
        assert!(
            start.elapsed() < Duration::from_secs(601),
            "{:?}",
            start.elapsed()
        );
        // A minute at a time (a full one-minute window): all ten waited out.
        let mut script = Vec::new();
        for _ in 0..MAX_QUEUED_RATE_LIMITED {
            script.push(Err(http(429, Some(60)).await));
        }
        script.push(Ok(200));
        let op = Scripted::new(script);
        let (result, _, tries) = go(&client, &op, &policy(), Waits::Queued).await;
        assert_eq!(
            (result.ok(), tries),
            (Some(200), MAX_QUEUED_RATE_LIMITED + 1)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_attempt_starts_without_time_for_it() {
        let client = client(Pacing::unlimited());
        let policy = policy().with_total_timeout(Duration::from_millis(600));
        let mut op = Scripted::new(vec![Err(http(503, None).await), Ok(200)]);
        op.latency = Duration::from_millis(450);
        let (result, _, tries) = go(&client, &op, &policy, Waits::Deadline).await;
        // 150 ms left after the first: less than MIN_ATTEMPT_TIME, so no second attempt.
        assert_eq!(failed(result).kind(), &ErrorKind::ServerError);
        assert_eq!(tries, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_create_attempt_leaves_room_to_settle_it() {
        let client = client(Pacing::unlimited());
        let policy = policy()
            .with_total_timeout(Duration::from_secs(5))
            .with_settle_after(Duration::from_secs(2));
        let op = ScriptedCreate(Scripted::new(vec![Ok(201)]));
        let mut call = Call::new(&policy, Waits::Deadline);
        let mut tries = 0;
        run(
            &client,
            &op,
            &policy,
            &mut call,
            &mut tries,
            false,
            Lane::New,
        )
        .await
        .ok()
        .unwrap();
        // Half of what is left once settle_after is set aside.
        assert_eq!(op.0.times.lock().unwrap()[0], Duration::from_millis(1500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_create_is_in_doubt_and_a_lost_read_is_retried() {
        let client = client(Pacing::unlimited());
        let op = ScriptedCreate(Scripted::new(vec![Err(lost())]));
        let mut call = Call::new(&policy(), Waits::Deadline);
        let mut tries = 0;
        let result = run(
            &client,
            &op,
            &policy(),
            &mut call,
            &mut tries,
            false,
            Lane::New,
        )
        .await;
        assert!(matches!(
            result,
            Err(Ended::InDoubt {
                applied: Applied::Maybe,
                ..
            })
        ));
        let read = Scripted::new(vec![Err(lost()), Ok(200)]);
        let (result, _, tries) = go(&client, &read, &policy(), Waits::Deadline).await;
        assert_eq!((result.ok(), tries), (Some(200), 2));
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_refuses_extra_requests_once_spent() {
        let client = client(Pacing::unlimited());
        for _ in 0..50 {
            assert!(client.inner.budget.try_withdraw());
        }
        let op = Scripted::new(vec![Err(http(503, None).await), Ok(200)]);
        let (result, _, tries) = go(&client, &op, &policy(), Waits::Deadline).await;
        // The first request is free; the retry is refused: the budget is why the call ended,
        // and the 503 stays in the details.
        assert_eq!(tries, 1);
        let err = failed(result);
        assert_eq!(err.kind(), &ErrorKind::RetryBudgetSpent);
        assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert!(format!("{err:#}").contains("server error"), "{err:#}");
        // A run whose first request would be an extra one reports the budget.
        let op = Scripted::new(vec![Ok(200)]);
        let mut call = Call::new(&policy(), Waits::Deadline);
        call.requests = 1;
        let mut tries = 0;
        let result = run(
            &client,
            &op,
            &policy(),
            &mut call,
            &mut tries,
            false,
            Lane::New,
        )
        .await;
        assert_eq!(failed(result).kind(), &ErrorKind::RetryBudgetSpent);
    }

    #[tokio::test(start_paused = true)]
    async fn a_401_without_a_provider_is_final() {
        let client = client(Pacing::unlimited());
        let op = Scripted::new(vec![Err(http(401, None).await), Ok(200)]);
        let (result, _, tries) = go(&client, &op, &policy(), Waits::Deadline).await;
        assert_eq!(failed(result).kind(), &ErrorKind::Unauthorized);
        assert_eq!(tries, 1);
    }

    /// A provider that counts its calls and takes `delay` to answer each.
    struct Rotating {
        calls: std::sync::atomic::AtomicU32,
        delay: Duration,
    }

    impl crate::TokenProvider for std::sync::Arc<Rotating> {
        fn token(&self) -> crate::TokenFuture<'_> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(self.delay).await;
                Ok(crate::Token::new(format!("dyn_rotated_{n}")))
            })
        }
    }

    fn provider_client(delay: Duration) -> (Client, std::sync::Arc<Rotating>) {
        let provider = std::sync::Arc::new(Rotating {
            calls: 0.into(),
            delay,
        });
        let client = Client::builder()
            .base_url("http://127.0.0.1:9")
            .token_provider(provider.clone())
            .pacing(Pacing::unlimited())
            .build()
            .unwrap();
        (client, provider)
    }

    #[tokio::test(start_paused = true)]
    async fn a_401_with_a_provider_refreshes_once_and_a_second_401_is_final() {
        let (client, provider) = provider_client(Duration::ZERO);
        let op = Scripted::new(vec![Err(http(401, None).await), Ok(200)]);
        let (result, _, tries) = go(&client, &op, &policy(), Waits::Deadline).await;
        assert_eq!(result.ok(), Some(200));
        assert_eq!(tries, 2);
        // The first token, then a fresh one after the 401.
        assert_eq!(provider.calls.load(Ordering::SeqCst), 2);

        let (client, provider) = provider_client(Duration::ZERO);
        let op = Scripted::new(vec![
            Err(http(401, None).await),
            Err(http(401, None).await),
            Ok(200),
        ]);
        let (result, _, tries) = go(&client, &op, &policy(), Waits::Deadline).await;
        assert_eq!(failed(result).kind(), &ErrorKind::Unauthorized);
        assert_eq!((tries, op.sent()), (2, 2));
        assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_provider_that_hangs_is_bounded_by_the_calls_deadline() {
        let (client, _) = provider_client(Duration::from_secs(3600));
        let op = Scripted::new(vec![Ok(200)]);
        let policy = policy().with_total_timeout(Duration::from_secs(5));
        let started = Instant::now();
        let (result, _, tries) = go(&client, &op, &policy, Waits::Deadline).await;
        let err = failed(result);
        assert_eq!(err.kind(), &ErrorKind::Timeout);
        assert_eq!((tries, op.sent()), (0, 0));
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_longer_than_a_call_accepts_ends_it_as_rate_limited_not_timed_out() {
        let client = client(Pacing::upstream());
        let pacer = client.inner.pacer.as_ref().unwrap();
        crate::pace::tests::shut(pacer, Some(Duration::from_secs(25))).await;
        let op = Scripted::new(vec![Ok(200)]);
        let policy = policy().with_max_retry_after(Duration::from_secs(10));
        let start = Instant::now();
        let (result, _, _) = go(&client, &op, &policy, Waits::Deadline).await;
        let err = failed(result);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(25)));
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(op.sent(), 0);
        // A bulk job waits it out.
        let (result, _, _) = go(&client, &op, &policy, Waits::Queued).await;
        assert_eq!(result.ok(), Some(200));
        assert!(start.elapsed() >= Duration::from_secs(25));
    }

    #[tokio::test(start_paused = true)]
    async fn waits_in_the_pacer_count_for_a_call_but_not_for_a_bulk_job() {
        let client = client(Pacing::unlimited().with_per_process(6));
        let policy = policy().with_total_timeout(Duration::from_secs(5));
        // Spend the burst: the next permit is 10 s away.
        for _ in 0..4 {
            let op = Scripted::new(vec![Ok(200)]);
            go(&client, &op, &policy, Waits::Queued)
                .await
                .0
                .ok()
                .unwrap();
        }
        let op = Scripted::new(vec![Ok(200)]);
        let (result, _, _) = go(&client, &op, &policy, Waits::Deadline).await;
        assert!(matches!(
            failed(result).kind(),
            ErrorKind::RateLimited { retry_after: None }
        ));
        let (result, _, _) = go(&client, &op, &policy, Waits::Queued).await;
        assert_eq!(result.ok(), Some(200));
    }

    #[test]
    fn status_codes_of_the_span() {
        assert_eq!(success_status(OpKind::Create), 201);
        assert_eq!(StatusCode::OK.as_u16(), success_status(OpKind::Read));
    }
}
