//! A limit of N requests per sliding time window, answered like upstream's: 429 with
//! `Retry-After` in seconds.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// At most `max_requests` requests in any `window`; the others get 429 with `Retry-After`
/// set to the seconds until the oldest counted request leaves the window (rounded up, at
/// least 1). Refused requests are not counted.
///
/// Upstream limits per IP and per environment (1,500 and 3,000 requests a minute); the
/// sandbox counts every request that reaches it, which is the same for a test's one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    max_requests: u32,
    window: Duration,
}

impl RateLimit {
    /// `max_requests` per `window`.
    pub fn new(max_requests: u32, window: Duration) -> Self {
        Self {
            max_requests,
            window,
        }
    }

    /// How many requests a window admits.
    pub fn max_requests(&self) -> u32 {
        self.max_requests
    }

    /// The window's length.
    pub fn window(&self) -> Duration {
        self.window
    }
}

/// The requests admitted within the current window.
#[derive(Debug)]
pub(crate) struct Limiter {
    limit: RateLimit,
    admitted: VecDeque<Instant>,
}

impl Limiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            admitted: VecDeque::new(),
        }
    }

    /// Admits a request arriving at `now`, or says how many seconds to wait (the value of
    /// `Retry-After`).
    pub(crate) fn admit(&mut self, now: Instant) -> Result<(), u64> {
        while let Some(&oldest) = self.admitted.front() {
            if now.saturating_duration_since(oldest) >= self.limit.window {
                self.admitted.pop_front();
            } else {
                break;
            }
        }
        if self.admitted.len() < self.limit.max_requests as usize {
            self.admitted.push_back(now);
            return Ok(());
        }
        let frees_at = match self.admitted.front() {
            Some(&oldest) => oldest + self.limit.window,
            // A limit of 0 admits nothing; the wait is a whole window.
            None => now + self.limit.window,
        };
        Err(whole_seconds(frees_at.saturating_duration_since(now)))
    }
}

/// Rounded up, at least 1: `Retry-After: 0` would invite an immediate retry into a full window.
fn whole_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_then_counts_down_to_the_oldest_leaving() {
        let start = Instant::now();
        let mut limiter = Limiter::new(RateLimit::new(2, Duration::from_secs(10)));
        assert_eq!(limiter.admit(start), Ok(()));
        assert_eq!(limiter.admit(start + Duration::from_secs(3)), Ok(()));
        assert_eq!(limiter.admit(start + Duration::from_millis(4500)), Err(6));
        // The first request leaves the window at 10 s; the second still counts.
        assert_eq!(limiter.admit(start + Duration::from_secs(10)), Ok(()));
        assert_eq!(limiter.admit(start + Duration::from_secs(11)), Err(2));
    }

    #[test]
    fn a_zero_limit_refuses_everything_for_a_window() {
        let now = Instant::now();
        let mut limiter = Limiter::new(RateLimit::new(0, Duration::from_millis(1500)));
        assert_eq!(limiter.admit(now), Err(2));
    }

    #[test]
    fn never_says_zero_seconds() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
    }
}
