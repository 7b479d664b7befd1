//! When to try again, how long to wait, and how much retrying a client may do in all.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderValue;

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
///
/// ```
/// use std::time::Duration;
/// use dynamic_waas::RetryPolicy;
///
/// let patient = RetryPolicy::default()
///     .max_attempts(5)
///     .max_retry_after(Duration::from_secs(60))
///     .total_timeout(Duration::from_secs(180));
/// assert_eq!(patient.get_max_attempts(), 5);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_retry_after: Duration,
    attempt_timeout: Duration,
    total_timeout: Duration,
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
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries (a 401 still gets its one refresh-and-retry).
    pub fn no_retries() -> Self {
        Self::default().max_attempts(1)
    }

    /// Attempts in all, at least 1.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The ceiling of the first backoff; it doubles per retry up to `max_backoff`.
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// The largest backoff ceiling.
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// The longest `Retry-After` the call waits for; past it the call fails with
    /// [`ErrorKind::RateLimited`](crate::ErrorKind::RateLimited) carrying the asked wait.
    pub fn max_retry_after(mut self, cap: Duration) -> Self {
        self.max_retry_after = cap;
        self
    }

    /// The timeout of one attempt, from sending to the end of the response body.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// The deadline of the whole call, attempts and waits included.
    pub fn total_timeout(mut self, timeout: Duration) -> Self {
        self.total_timeout = timeout;
        self
    }

    /// Attempts in all.
    pub fn get_max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// See [`attempt_timeout`](Self::attempt_timeout).
    pub fn get_attempt_timeout(&self) -> Duration {
        self.attempt_timeout
    }

    /// See [`total_timeout`](Self::total_timeout).
    pub fn get_total_timeout(&self) -> Duration {
        self.total_timeout
    }

    /// See [`max_retry_after`](Self::max_retry_after).
    pub fn get_max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// The wait before retry number `retry` (1 for the first retry): uniform in
    /// `[0, min(max_backoff, initial_backoff * 2^(retry-1)))` ("full jitter").
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20));
        let ceiling = exp.min(self.max_backoff);
        ceiling.mul_f64(fastrand::f64())
    }
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

/// A retry budget shared by a client and all its clones: every call deposits a tenth of a
/// retry, every retry withdraws one, and the balance starts at (and is capped to) 50
/// retries (AWS's standard budget allows as many retries of server errors). Against a server that fails everything, retries stop once the balance is
/// spent, and from then on the server sees at most about 10 % more requests than calls.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    /// In thousandths of a retry.
    balance: AtomicU64,
}

const RETRY_COST: u64 = 1000;
const DEPOSIT_PER_CALL: u64 = 100;
const MAX_BALANCE: u64 = 50 * RETRY_COST;

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            balance: AtomicU64::new(MAX_BALANCE),
        }
    }
}

impl RetryBudget {
    pub(crate) fn deposit(&self) {
        let _ = self
            .balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some((b + DEPOSIT_PER_CALL).min(MAX_BALANCE))
            });
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub(crate) fn try_withdraw(&self) -> bool {
        self.balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                b.checked_sub(RETRY_COST)
            })
            .is_ok()
    }
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
            .initial_backoff(Duration::from_millis(100))
            .max_backoff(Duration::from_millis(300));
        for _ in 0..200 {
            assert!(policy.backoff(1) < Duration::from_millis(100));
            assert!(policy.backoff(2) < Duration::from_millis(200));
            assert!(policy.backoff(9) < Duration::from_millis(300));
        }
        // Jitter: not all the same.
        let samples: std::collections::HashSet<_> = (0..50).map(|_| policy.backoff(3)).collect();
        assert!(samples.len() > 40);
    }

    #[test]
    fn budget_allows_fifty_retries_then_a_tenth_per_call() {
        let budget = RetryBudget::default();
        let mut retries = 0;
        for _ in 0..1000 {
            budget.deposit();
            if budget.try_withdraw() {
                retries += 1;
            }
        }
        // 50 up front, then one per ten calls.
        assert!((145..=151).contains(&retries), "{retries}");
    }
}
