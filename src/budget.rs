//! The retry budget: how many extra requests a client and all its clones may make.

use std::sync::atomic::{AtomicU64, Ordering};

/// A token bucket shared by a client and all its clones, after gRPC's retry throttling (A6):
/// every request beyond a call's first (a retry, a 401 refresh-and-retry, a wallet read that
/// settles a lost create) takes one token, and every healthy response (2xx, or a definite 4xx
/// other than 429) puts one back. The bucket starts full at 50 tokens.
///
/// Against a server that fails everything, extra requests stop once the 50 are spent: the
/// server sees one request per call from then on. Against a server that answers most requests
/// well, the healthy answers keep the bucket full, so the reads that recover lost creates are
/// not refused: the budget bites only once failures outnumber healthy answers, where at a
/// failure rate `f` it holds the extra load to `(1 - f) / f` of the calls (0.11 at 90 %).
#[derive(Debug)]
pub(crate) struct RetryBudget {
    /// In thousandths of a token.
    balance: AtomicU64,
}

const COST: u64 = 1000;
const REFILL: u64 = 1000;
const CAPACITY: u64 = 50 * COST;

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            balance: AtomicU64::new(CAPACITY),
        }
    }
}

impl RetryBudget {
    /// A healthy response came back.
    pub(crate) fn refill(&self) {
        // Full (as nearly always): no write, so clients on several cores do not pass the
        // cache line back and forth on every answer.
        if self.balance.load(Ordering::Relaxed) >= CAPACITY {
            return;
        }
        let _ = self
            .balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_add(REFILL).min(CAPACITY))
            });
    }

    /// Takes a token for one extra request; `false` when the bucket is empty.
    pub(crate) fn try_withdraw(&self) -> bool {
        self.balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                b.checked_sub(COST)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests per call, by simulation: `fail` is the chance that a request fails, and a
    /// failed request is followed by one extra request while the budget allows.
    fn amplification(fail: f64, calls: u32, seed: u64) -> (f64, u32) {
        let budget = RetryBudget::default();
        let mut rng = fastrand::Rng::with_seed(seed);
        let (mut requests, mut refused) = (0u32, 0u32);
        for _ in 0..calls {
            let mut failed = true;
            let mut first = true;
            while failed {
                if !first && !budget.try_withdraw() {
                    refused += 1;
                    break;
                }
                first = false;
                requests += 1;
                failed = rng.f64() < fail;
                if !failed {
                    budget.refill();
                }
            }
        }
        (f64::from(requests) / f64::from(calls), refused)
    }

    #[test]
    fn a_total_outage_gets_the_headroom_and_then_one_request_per_call() {
        let (ratio, _) = amplification(1.0, 1000, 1);
        assert!((1.049..=1.051).contains(&ratio), "{ratio}");
    }

    #[test]
    fn a_fifth_of_requests_failing_never_empties_the_budget() {
        for seed in 0..20 {
            let (_, refused) = amplification(0.2, 10_000, seed);
            assert_eq!(refused, 0, "seed {seed}");
        }
    }

    #[test]
    fn healthy_responses_refill_up_to_the_capacity_only() {
        let budget = RetryBudget::default();
        for _ in 0..1000 {
            budget.refill();
        }
        let taken = (0..100).filter(|_| budget.try_withdraw()).count();
        assert_eq!(taken, 50);
    }
}
