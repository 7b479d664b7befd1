//! When to try again, how long to wait, and how much retrying a client may do in all.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderValue;
use tokio::time::Instant;

/// How a call retries. The defaults follow the most trusted SDKs (AWS: 3 attempts, full
/// jitter; Stripe: 0.5 s first backoff) within what this API's per-minute rate limits allow:
///
/// | setting | default |
/// |---|---|
/// | [`max_attempts`](Self::max_attempts) | 3 (the first try and two retries) |
/// | [`initial_backoff`](Self::initial_backoff) | 500 ms, doubled per retry, full jitter |
/// | [`max_backoff`](Self::max_backoff) | 8 s |
/// | [`max_retry_after`](Self::max_retry_after) | 30 s: a longer `Retry-After` ends the call with `RateLimited` |
/// | [`attempt_timeout`](Self::attempt_timeout) | 30 s per attempt, from sending to the end of the body |
/// | [`total_timeout`](Self::total_timeout) | 90 s for the whole call, waits included |
/// | [`settle_after`](Self::settle_after) | 2 s: how far behind writes a wallet read may lag |
///
/// Setters are `with_*`, getters the bare name (the naming rule of every value type of this
/// crate; builders, such as [`ClientBuilder`](crate::ClientBuilder), have setters only).
///
/// ```
/// use std::time::Duration;
/// use dynamic_waas::RetryPolicy;
///
/// let patient = RetryPolicy::default()
///     .with_max_attempts(5)
///     .with_max_retry_after(Duration::from_secs(60))
///     .with_total_timeout(Duration::from_secs(180));
/// assert_eq!(patient.max_attempts(), 5);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_retry_after: Duration,
    attempt_timeout: Duration,
    total_timeout: Duration,
    settle_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(90),
            settle_after: DEFAULT_SETTLE_AFTER,
        }
    }
}

/// How far behind writes a wallet read is assumed to lag, by default (see
/// [`RetryPolicy::settle_after`]).
pub const DEFAULT_SETTLE_AFTER: Duration = Duration::from_secs(2);

impl RetryPolicy {
    /// One attempt, no retries (a 401 still gets its one refresh-and-retry).
    pub fn no_retries() -> Self {
        Self::default().with_max_attempts(1)
    }

    /// Attempts in all, at least 1. For a create, every create sent counts, a resend after
    /// a settled doubt included; wallet reads that settle a create have attempts of their own.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The ceiling of the first backoff; it doubles per retry up to `max_backoff`.
    pub fn with_initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// The largest backoff ceiling.
    pub fn with_max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// The longest `Retry-After` the call waits for; past it the call fails with
    /// [`ErrorKind::RateLimited`](crate::ErrorKind::RateLimited) carrying the asked wait. It
    /// also bounds how long a rate-limit pause of the whole client may hold this call.
    pub fn with_max_retry_after(mut self, cap: Duration) -> Self {
        self.max_retry_after = cap;
        self
    }

    /// The timeout of one attempt, from sending to the end of the response body.
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// The deadline of the whole call, attempts and waits included.
    pub fn with_total_timeout(mut self, timeout: Duration) -> Self {
        self.total_timeout = timeout;
        self
    }

    /// How far behind writes a wallet read may lag (default [`DEFAULT_SETTLE_AFTER`]).
    ///
    /// After a create attempt that may have been applied (its answer was lost), the create
    /// is sent again only when a wallet read that **started at least this long after the
    /// attempt ended** shows no key shares; an earlier read may settle the create (its
    /// shares are visible), never license a resend. A create attempt therefore starts only
    /// when the time left covers it, this wait and a read.
    ///
    /// It is a statement about the server: set below how far reads really lag, a read that
    /// lags may show nothing and license a second create of a wallet whose first was applied
    /// (the server usually refuses it, with no guarantee when both are in flight). Dynamic
    /// publishes no figure; the default leaves a margin over the lags this crate's tests and
    /// soaks model (up to 1.5 s).
    pub fn with_settle_after(mut self, lag: Duration) -> Self {
        self.settle_after = lag;
        self
    }

    /// Attempts in all. A bulk job ([`Client::create_many`](crate::Client::create_many))
    /// also waits out up to ten 429s besides them: finding a limit shared with other clients
    /// costs a few, and they are the pacer's business, not the job's.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// See [`with_initial_backoff`](Self::with_initial_backoff).
    pub fn initial_backoff(&self) -> Duration {
        self.initial_backoff
    }

    /// See [`with_max_backoff`](Self::with_max_backoff).
    pub fn max_backoff(&self) -> Duration {
        self.max_backoff
    }

    /// See [`with_attempt_timeout`](Self::with_attempt_timeout).
    pub fn attempt_timeout(&self) -> Duration {
        self.attempt_timeout
    }

    /// See [`with_total_timeout`](Self::with_total_timeout).
    pub fn total_timeout(&self) -> Duration {
        self.total_timeout
    }

    /// See [`with_max_retry_after`](Self::with_max_retry_after).
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// See [`with_settle_after`](Self::with_settle_after).
    pub fn settle_after(&self) -> Duration {
        self.settle_after
    }

    /// The wait before retry number `retry` (1 for the first retry): uniform in
    /// `[0, min(max_backoff, initial_backoff * 2^(retry-1)))` ("full jitter").
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self.backoff_ceiling(retry);
        // Checked: a ceiling near `Duration::MAX` must not overflow through f64 rounding.
        Duration::try_from_secs_f64(ceiling.as_secs_f64() * fastrand::f64())
            .unwrap_or(ceiling)
            .min(ceiling)
    }

    /// The ceiling of retry number `retry`'s backoff, without jitter: how long a wallet read
    /// waits before it is made again for a read that may lag behind a write.
    pub(crate) fn backoff_ceiling(&self, retry: u32) -> Duration {
        self.initial_backoff
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(self.max_backoff)
    }

    /// The time an attempt is given, or `None` when too little time is left to start one.
    ///
    /// An attempt gets the attempt timeout, or the time left if that is less. A create gets
    /// at most half of what is left once [`settle_after`](Self::settle_after) is set aside:
    /// if its answer is lost, the read that may license a resend (made `settle_after` after
    /// the attempt ends) still has at least as much time as the attempt had. No attempt
    /// starts with less than [`MIN_ATTEMPT_TIME`] (or the attempt timeout, when that is
    /// shorter).
    pub(crate) fn attempt_time(&self, left: Duration, is_create: bool) -> Option<Duration> {
        let share = if is_create {
            left.saturating_sub(self.settle_after) / 2
        } else {
            left
        };
        let time = share.min(self.attempt_timeout);
        (time >= MIN_ATTEMPT_TIME.min(self.attempt_timeout) && !time.is_zero()).then_some(time)
    }
}

/// The least time an attempt starts with (unless the attempt timeout is shorter): less than
/// this cannot get an answer from a real server, and a create that may be applied must leave
/// as much again to read the wallet.
pub const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(250);

/// `at + wait`, or far in the future when that cannot be represented: no configuration and no
/// `Retry-After` can make time arithmetic panic.
pub(crate) fn later(at: Instant, wait: Duration) -> Instant {
    at.checked_add(wait)
        .or_else(|| at.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(at)
}

/// Why no further attempt is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The policy's attempts are used up.
    Attempts,
    /// The server asked for a longer wait than the policy allows.
    RetryAfterTooLong(Duration),
    /// The wait and a minimal attempt do not fit before the call's deadline.
    Deadline,
    /// The retry budget refused the extra request.
    Budget,
    /// A rate-limit pause of the whole client lasts this much longer than the call may
    /// wait (its `max_retry_after`, or its deadline).
    Paused(Duration),
    /// The client's own pacing held the request until the call's deadline.
    Paced,
}

impl Stop {
    pub(crate) fn describe(self) -> String {
        match self {
            Stop::Attempts => "no attempts left".into(),
            Stop::RetryAfterTooLong(asked) => format!(
                "the server asked to wait {} s, more than the policy allows",
                asked.as_secs()
            ),
            Stop::Deadline => "the call's deadline leaves no time for another attempt".into(),
            Stop::Budget => "the client's retry budget is spent".into(),
            Stop::Paused(left) => format!(
                "the client is paused by a rate limit for {} s more, longer than this call \
                 may wait",
                left.as_secs_f64().ceil()
            ),
            Stop::Paced => "the client's pacing held the request until the call's deadline".into(),
        }
    }
}

/// Decides whether to try again after `made` attempts of one operation, and how long to wait
/// first: the server's `Retry-After` if it gave one, else the policy's backoff. Pure: the
/// clock is an argument.
pub(crate) fn plan(
    policy: &RetryPolicy,
    made: u32,
    retry_after: Option<Duration>,
    now: Instant,
    deadline: Instant,
    is_create: bool,
) -> Result<Duration, Stop> {
    if let Some(asked) = retry_after {
        if asked > policy.max_retry_after {
            return Err(Stop::RetryAfterTooLong(asked));
        }
    }
    if made >= policy.max_attempts {
        return Err(Stop::Attempts);
    }
    let wait = retry_after.unwrap_or_else(|| policy.backoff(made));
    let starts = later(now, wait);
    // The same rule that admits the attempt once the wait is over.
    let left = deadline.saturating_duration_since(starts);
    if policy.attempt_time(left, is_create).is_none() {
        return Err(Stop::Deadline);
    }
    Ok(wait)
}

/// Reads `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_and_as_an_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let secs = HeaderValue::from_static("7");
        assert_eq!(parse_retry_after(&secs, now), Some(Duration::from_secs(7)));
        let date =
            HeaderValue::from_str(&httpdate::fmt_http_date(now + Duration::from_secs(42))).unwrap();
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(42)));
        let past =
            HeaderValue::from_str(&httpdate::fmt_http_date(now - Duration::from_secs(5))).unwrap();
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        for bad in ["soon", "-1", "1.5", ""] {
            assert_eq!(
                parse_retry_after(&HeaderValue::from_static(bad), now),
                None,
                "{bad}"
            );
        }
    }

    #[test]
    fn backoff_is_full_jitter_under_an_exponential_ceiling() {
        let policy = RetryPolicy::default()
            .with_initial_backoff(Duration::from_millis(100))
            .with_max_backoff(Duration::from_millis(300));
        for _ in 0..200 {
            assert!(policy.backoff(1) < Duration::from_millis(100));
            assert!(policy.backoff(2) < Duration::from_millis(200));
            assert!(policy.backoff(9) < Duration::from_millis(300));
        }
        // Jitter: not all the same.
        let samples: std::collections::HashSet<_> = (0..50).map(|_| policy.backoff(3)).collect();
        assert!(samples.len() > 40);
    }

    fn policy() -> RetryPolicy {
        RetryPolicy::default()
            .with_initial_backoff(Duration::from_millis(100))
            .with_max_backoff(Duration::from_millis(400))
            .with_attempt_timeout(Duration::from_secs(2))
    }

    #[tokio::test(start_paused = true)]
    async fn plan_waits_the_backoff_or_the_servers_retry_after() {
        let now = Instant::now();
        let deadline = now + Duration::from_secs(60);
        let wait = plan(&policy(), 1, None, now, deadline, false).unwrap();
        assert!(wait < Duration::from_millis(100));
        let asked = Some(Duration::from_secs(3));
        assert_eq!(
            plan(&policy(), 1, asked, now, deadline, false),
            Ok(Duration::from_secs(3))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn plan_stops_for_attempts_retry_after_and_deadline_in_that_order() {
        let now = Instant::now();
        let deadline = now + Duration::from_secs(60);
        let p = policy().with_max_attempts(3);
        assert_eq!(plan(&p, 3, None, now, deadline, false), Err(Stop::Attempts));
        let long = Duration::from_secs(31);
        assert_eq!(
            plan(&p, 3, Some(long), now, deadline, false),
            Err(Stop::RetryAfterTooLong(long))
        );
        // 5 s asked, 5.1 s left: no room for a minimal attempt after the wait.
        let close = now + Duration::from_millis(5100);
        assert_eq!(
            plan(&p, 1, Some(Duration::from_secs(5)), now, close, false),
            Err(Stop::Deadline)
        );
        assert!(plan(
            &p,
            1,
            Some(Duration::from_secs(5)),
            now,
            close + MIN_ATTEMPT_TIME,
            false
        )
        .is_ok());
        // A create needs settle_after and twice the minimum left after the wait (the read
        // that may license a resend gets as much time as the attempt).
        let p = p.with_attempt_timeout(Duration::from_secs(2));
        let after_wait = now + Duration::from_secs(5);
        let just = after_wait + p.settle_after() + MIN_ATTEMPT_TIME * 2;
        assert!(plan(&p, 1, Some(Duration::from_secs(5)), now, just, true).is_ok());
        let short = just - Duration::from_millis(1);
        assert_eq!(
            plan(&p, 1, Some(Duration::from_secs(5)), now, short, true),
            Err(Stop::Deadline)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_configuration_or_retry_after_makes_time_arithmetic_panic() {
        let extreme = RetryPolicy::default()
            .with_max_attempts(u32::MAX)
            .with_initial_backoff(Duration::MAX)
            .with_max_backoff(Duration::MAX)
            .with_max_retry_after(Duration::MAX)
            .with_attempt_timeout(Duration::MAX)
            .with_total_timeout(Duration::MAX);
        let zero = RetryPolicy::default()
            .with_initial_backoff(Duration::ZERO)
            .with_max_backoff(Duration::ZERO)
            .with_max_retry_after(Duration::ZERO)
            .with_attempt_timeout(Duration::ZERO)
            .with_total_timeout(Duration::ZERO);
        let now = Instant::now();
        for p in [&extreme, &zero, &RetryPolicy::default()] {
            for made in [0, 1, 2, 31, 32, 64, u32::MAX] {
                for asked in [None, Some(Duration::ZERO), Some(Duration::MAX)] {
                    let deadline = later(now, p.total_timeout());
                    let _ = plan(p, made, asked, now, deadline, false);
                    let _ = p.backoff(made);
                    let _ = p.backoff_ceiling(made);
                }
            }
            for left in [Duration::ZERO, Duration::from_millis(1), Duration::MAX] {
                let _ = p.attempt_time(left, true);
                let _ = p.attempt_time(left, false);
            }
        }
        let huge = HeaderValue::from_static("18446744073709551615");
        let asked = parse_retry_after(&huge, SystemTime::now());
        assert_eq!(asked, Some(Duration::from_secs(u64::MAX)));
        assert!(later(now, Duration::MAX) > now);
        assert_eq!(zero.attempt_time(Duration::from_secs(1), false), None);
    }

    #[test]
    fn a_create_attempt_leaves_as_much_again_for_reconciliation() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.attempt_time(Duration::from_secs(90), true),
            Some(Duration::from_secs(30))
        );
        // (20 s - settle_after 2 s) / 2.
        assert_eq!(
            p.attempt_time(Duration::from_secs(20), true),
            Some(Duration::from_secs(9))
        );
        assert_eq!(
            p.attempt_time(Duration::from_secs(20), false),
            Some(Duration::from_secs(20))
        );
        assert_eq!(p.attempt_time(Duration::from_millis(2400), true), None);
        assert_eq!(
            p.attempt_time(Duration::from_millis(2500), true),
            Some(MIN_ATTEMPT_TIME)
        );
        assert_eq!(
            p.attempt_time(Duration::from_millis(400), false),
            Some(Duration::from_millis(400))
        );
    }
}
