//! Client-side pacing: every request a client and its clones send takes a permit first, so a
//! bulk run stays under Dynamic's limits instead of learning them from 429s.
//!
//! Two GCRA limiters from `governor` (one for the client, one keyed by environment) run on
//! Tokio's clock, so tests drive them with paused time. A 429 pauses the whole pacer for its
//! `Retry-After`, and while 429s keep coming every request costs more cells: the pace drops
//! by steps to half, and climbs back as healthy answers return.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dynamic_waas_api::ids::EnvironmentId;
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{NotUntil, Quota, RateLimiter};
use tokio::time::Instant;

use crate::error::Error;

/// Upstream's published limit for developer endpoints, per IP address (requests a minute).
pub const UPSTREAM_LIMIT_PER_IP: u32 = 1_500;
/// Upstream's published limit for developer endpoints, per environment (requests a minute).
pub const UPSTREAM_LIMIT_PER_ENVIRONMENT: u32 = 3_000;

/// How a client paces its requests: at most so many a minute from this client (all its
/// clones together), and at most so many a minute to each environment.
///
/// The default, [`Pacing::upstream`], sits 4 % under Dynamic's published limits (1,500
/// requests a minute per IP, 3,000 per environment): 1,440 and 2,880. Every request takes a
/// permit: first attempts, retries and the wallet reads that settle a lost create.
///
/// A `429` (or a `503` with `Retry-After`) pauses every request of the client for the
/// `Retry-After` it carries (1 s without one, 10 minutes at most), and the pace drops a step
/// of a fifth per pause, to half the configured rate at most; every 50 healthy answers give
/// one step back.
///
/// A call's wait for its permits counts against its
/// [`total_timeout`](crate::RetryPolicy::total_timeout); a job of
/// [`Client::create_many`](crate::Client::create_many) waits outside its deadline instead.
///
/// One client per process stands for one IP address. Several processes on one machine share
/// its IP: give each a share of the limit. Several machines share an environment's limit:
/// give each a share of [`per_environment`](Self::per_environment). Requests are evenly
/// spaced with a burst of four, so a server counting any minute sees at most the limit and
/// four from each client: with many clients sharing a limit, leave at least four requests a
/// minute of margin per client.
///
/// ```
/// use dynamic_waas::{Client, Pacing};
///
/// // Two machines back up one environment: each takes half of its limit.
/// let client = Client::builder()
///     .token("dyn_example")
///     .pacing(Pacing::upstream().per_environment(1_440))
///     .build()?;
/// # let _ = client;
/// # Ok::<(), dynamic_waas::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pacing {
    per_process: Option<u32>,
    per_environment: Option<u32>,
}

impl Default for Pacing {
    fn default() -> Self {
        Self::upstream()
    }
}

impl Pacing {
    /// Just under upstream's published limits: 1,440 requests a minute from this client and
    /// 2,880 to each environment.
    pub fn upstream() -> Self {
        Self {
            per_process: Some(UPSTREAM_LIMIT_PER_IP / 25 * 24),
            per_environment: Some(UPSTREAM_LIMIT_PER_ENVIRONMENT / 25 * 24),
        }
    }

    /// No pacing at all: for tests against a local sandbox and for benchmarks. Against the
    /// real API, the server's 429s are then the only brake.
    pub fn unlimited() -> Self {
        Self {
            per_process: None,
            per_environment: None,
        }
    }

    /// At most `requests_per_minute` from this client and its clones (`0` is refused by
    /// [`ClientBuilder::build`](crate::ClientBuilder::build)).
    pub fn per_process(mut self, requests_per_minute: u32) -> Self {
        self.per_process = Some(requests_per_minute);
        self
    }

    /// At most `requests_per_minute` to each environment.
    pub fn per_environment(mut self, requests_per_minute: u32) -> Self {
        self.per_environment = Some(requests_per_minute);
        self
    }

    /// See [`per_process`](Self::per_process).
    pub fn get_per_process(&self) -> Option<u32> {
        self.per_process
    }

    /// See [`per_environment`](Self::per_environment).
    pub fn get_per_environment(&self) -> Option<u32> {
        self.per_environment
    }

    /// The pacer, or `None` when nothing is limited.
    pub(crate) fn build(self) -> Result<Option<Pacer>, Error> {
        if self.per_process.is_none() && self.per_environment.is_none() {
            return Ok(None);
        }
        let process = self
            .per_process
            .map(|n| quota("per_process", n))
            .transpose()?;
        let environment = self
            .per_environment
            .map(|n| quota("per_environment", n))
            .transpose()?;
        let clock = TokioClock {
            epoch: Instant::now(),
        };
        Ok(Some(Pacer {
            process: process.map(|q| RateLimiter::direct_with_clock(q, clock)),
            environment: environment
                .map(|q| RateLimiter::new(q, HashMapStateStore::default(), clock)),
            clock,
            queue: tokio::sync::Mutex::new(()),
            environment_queues: std::sync::Mutex::default(),
            paused_until: AtomicU64::new(0),
            next_step: AtomicU64::new(0),
            slowdown: AtomicU32::new(0),
            healthy: AtomicU32::new(0),
        }))
    }
}

/// Cells a request costs at full pace; it costs up to twice as many while 429s continue.
const CELLS: u32 = 4;
/// Healthy answers that give back one step of slowdown.
const RECOVERY: u32 = 50;
/// The longest a single 429 pauses the pacer, whatever its `Retry-After` says.
const MAX_PAUSE: Duration = Duration::from_secs(600);
/// 429s this close to the end of the last pause belong to its episode.
const EPISODE: Duration = Duration::from_secs(1);
/// The pause for a 429 without `Retry-After`.
const DEFAULT_PAUSE: Duration = Duration::from_secs(1);

/// A GCRA quota for `per_minute` requests, evenly spaced with a burst of four (two at the
/// slowest pace): a server that counts any window of a minute never sees more than the limit
/// and four, so the 4 % margin
/// of [`Pacing::upstream`] is never used up by a burst.
fn quota(field: &str, per_minute: u32) -> Result<Quota, Error> {
    let invalid = |reason: &str| Error::invalid_input(format!("pacing.{field}"), reason);
    if per_minute == 0 {
        return Err(invalid(
            "0 requests a minute would never send anything; use Pacing::unlimited() to turn \
             pacing off",
        ));
    }
    let cells = per_minute
        .checked_mul(CELLS)
        .and_then(NonZeroU32::new)
        .ok_or_else(|| invalid("too many requests a minute to pace; use Pacing::unlimited()"))?;
    // Two requests at the slowest pace's cost: every cost fits in the burst.
    let burst = NonZeroU32::new(2 * 2 * CELLS).unwrap_or(NonZeroU32::MIN);
    Ok(Quota::per_minute(cells).allow_burst(burst))
}

/// Tokio's clock, as `governor` reads time: so that paused time in tests paces too.
#[derive(Clone, Copy, Debug)]
struct TokioClock {
    epoch: Instant,
}

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }
}

type Direct = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;
type Keyed = RateLimiter<
    EnvironmentId,
    HashMapStateStore<EnvironmentId>,
    TokioClock,
    NoOpMiddleware<Duration>,
>;

/// The permits of a client and its clones.
pub(crate) struct Pacer {
    process: Option<Direct>,
    environment: Option<Keyed>,
    clock: TokioClock,
    /// Requests wait their turn in order (Tokio's mutex is fair): only the first in line
    /// watches a limiter, instead of every waiter waking for every permit. One line per
    /// environment, then one for the client: a request to an environment at its limit does
    /// not hold up the others.
    queue: tokio::sync::Mutex<()>,
    environment_queues: std::sync::Mutex<HashMap<EnvironmentId, Arc<tokio::sync::Mutex<()>>>>,
    /// Nanoseconds after the clock's epoch before which nothing is sent.
    paused_until: AtomicU64,
    /// Nanoseconds after the epoch before which a 429 belongs to the last episode.
    next_step: AtomicU64,
    /// Extra cells per request, `0..=CELLS`.
    slowdown: AtomicU32,
    /// Healthy answers since the last step back.
    healthy: AtomicU32,
}

impl Pacer {
    /// Waits until a request to `environment` may be sent.
    pub(crate) async fn acquire(&self, environment: &EnvironmentId) {
        let cost = self.cost();
        if let Some(limiter) = &self.environment {
            let line = self.environment_queue(environment);
            let _turn = line.lock().await;
            // Checked in turn: during a pause the line waits, taking no cells, so that the
            // end of a pause does not release everyone at once.
            self.wait_for_pause().await;
            self.wait_for(|| limiter.check_key_n(environment, cost))
                .await;
        }
        if let Some(limiter) = &self.process {
            let _turn = self.queue.lock().await;
            self.wait_for_pause().await;
            self.wait_for(|| limiter.check_n(cost)).await;
        }
        // A 429 seen by another request while this one waited holds it too.
        self.wait_for_pause().await;
    }

    fn environment_queue(&self, environment: &EnvironmentId) -> Arc<tokio::sync::Mutex<()>> {
        let mut queues = self
            .environment_queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(queues.entry(environment.clone()).or_default())
    }

    async fn wait_for<F>(&self, mut check: F)
    where
        F: FnMut() -> Result<Result<(), NotUntil<Duration>>, governor::InsufficientCapacity>,
    {
        loop {
            match check() {
                // Capacity is never short: every quota's burst is at least the highest cost.
                Ok(Ok(())) | Err(_) => return,
                Ok(Err(not_until)) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Until no pause holds, however often a later 429 extends it.
    async fn wait_for_pause(&self) {
        loop {
            let until = Duration::from_nanos(self.paused_until.load(Ordering::Relaxed));
            if until <= self.clock.now() {
                return;
            }
            tokio::time::sleep_until(self.clock.epoch + until).await;
        }
    }

    fn cost(&self) -> NonZeroU32 {
        let slowdown = self.slowdown.load(Ordering::Relaxed).min(CELLS);
        NonZeroU32::new(CELLS + slowdown).unwrap_or(NonZeroU32::MIN)
    }

    /// The server said "too many requests": everyone waits, and the pace drops a step, once
    /// per pause (the 429s of the requests that were in flight together are one episode).
    pub(crate) fn rate_limited(&self, retry_after: Option<Duration>) {
        let pause = retry_after.unwrap_or(DEFAULT_PAUSE).min(MAX_PAUSE);
        let now = self.clock.now();
        let until = u64::try_from(now.saturating_add(pause).as_nanos()).unwrap_or(u64::MAX);
        self.paused_until.fetch_max(until, Ordering::Relaxed);
        // One step per episode: not again before this pause ends, nor within a second (a
        // `Retry-After: 0` pauses for nothing).
        let now_nanos = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX);
        let episode_end = until.max(now_nanos.saturating_add(EPISODE.as_nanos() as u64));
        let new_episode = self
            .next_step
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |next| {
                (now_nanos >= next).then_some(episode_end)
            })
            .is_ok();
        if new_episode {
            let _ = self
                .slowdown
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                    Some((s + 1).min(CELLS))
                });
        }
        self.healthy.store(0, Ordering::Relaxed);
        tracing::warn!(
            pause_ms = pause.as_millis() as u64,
            "rate limited: pausing every request of this client"
        );
    }

    /// A healthy answer: after enough of them, the pace climbs back a step.
    pub(crate) fn healthy(&self) {
        if self.slowdown.load(Ordering::Relaxed) == 0 {
            return;
        }
        if self.healthy.fetch_add(1, Ordering::Relaxed) + 1 >= RECOVERY {
            self.healthy.store(0, Ordering::Relaxed);
            let _ = self
                .slowdown
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| s.checked_sub(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(pacing: Pacing) -> Pacer {
        pacing.build().unwrap().expect("a limit")
    }

    fn env(n: u8) -> EnvironmentId {
        EnvironmentId::from(uuid::Uuid::from_bytes([n; 16]))
    }

    /// How many requests `pacer` lets through in `window` of paused time, for one environment.
    async fn admitted_in(pacer: &Pacer, environment: &EnvironmentId, window: Duration) -> u32 {
        let end = Instant::now() + window;
        let mut admitted = 0;
        loop {
            pacer.acquire(environment).await;
            if Instant::now() >= end {
                return admitted;
            }
            admitted += 1;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stays_under_the_process_limit() {
        let pacer = built(Pacing::unlimited().per_process(600));
        // 600 a minute, and the burst of 2 (4 at full pace).
        let n = admitted_in(&pacer, &env(1), Duration::from_secs(60)).await;
        assert!((600..=604).contains(&n), "{n}");
    }

    #[tokio::test(start_paused = true)]
    async fn each_environment_has_its_own_limit_and_the_process_limit_caps_them_all() {
        let pacer = built(Pacing::unlimited().per_environment(120));
        let one = admitted_in(&pacer, &env(1), Duration::from_secs(30)).await;
        let other = admitted_in(&pacer, &env(2), Duration::from_secs(30)).await;
        // 2 a second each, the second environment's window starting fresh.
        assert!((60..=63).contains(&one), "{one}");
        assert!((60..=63).contains(&other), "{other}");

        let both = built(Pacing::unlimited().per_process(60).per_environment(120));
        let n = admitted_in(&both, &env(1), Duration::from_secs(30)).await;
        assert!((30..=33).contains(&n), "{n}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pauses_everyone_for_its_retry_after_and_slows_the_pace() {
        let pacer = built(Pacing::unlimited().per_process(600));
        let start = Instant::now();
        pacer.rate_limited(Some(Duration::from_secs(7)));
        pacer.acquire(&env(1)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(7));
        pacer.acquire(&env(2)).await; // a different environment waits too (within its burst)
        assert!(start.elapsed() < Duration::from_secs(8));

        // One step slower: 4/5 of the rate.
        let n = admitted_in(&pacer, &env(1), Duration::from_secs(60)).await;
        assert!((470..=492).contains(&n), "{n}");
        // Fifty healthy answers give it back.
        for _ in 0..RECOVERY {
            pacer.healthy();
        }
        assert_eq!(pacer.cost().get(), CELLS);
    }

    #[tokio::test(start_paused = true)]
    async fn the_slowdown_steps_once_per_pause_stops_at_half_and_pauses_are_bounded() {
        let pacer = built(Pacing::unlimited().per_process(600));
        // Sixteen 429s of requests that were in flight together: one step.
        for _ in 0..16 {
            pacer.rate_limited(None);
        }
        assert_eq!(pacer.cost().get(), CELLS + 1);
        for _ in 0..20 {
            pacer.acquire(&env(1)).await; // past the pause
            pacer.rate_limited(None);
        }
        assert_eq!(pacer.cost().get(), 2 * CELLS);
        let start = Instant::now();
        pacer.rate_limited(Some(Duration::MAX));
        pacer.acquire(&env(1)).await;
        assert_eq!(start.elapsed(), MAX_PAUSE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_extended_while_waiting_holds_the_waiter() {
        let pacer = Arc::new(built(Pacing::unlimited().per_process(600)));
        let start = Instant::now();
        pacer.rate_limited(Some(Duration::from_secs(2)));
        let waiting = tokio::spawn({
            let pacer = Arc::clone(&pacer);
            async move { pacer.acquire(&env(1)).await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        pacer.rate_limited(Some(Duration::from_secs(5)));
        waiting.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(6));
    }

    #[tokio::test(start_paused = true)]
    async fn an_environment_at_its_limit_does_not_hold_up_another() {
        let pacer = Arc::new(built(Pacing::unlimited().per_environment(60)));
        // Environment 1 spends its burst; its next request waits a second.
        for _ in 0..4 {
            pacer.acquire(&env(1)).await;
        }
        let start = Instant::now();
        let blocked = tokio::spawn({
            let pacer = Arc::clone(&pacer);
            async move { pacer.acquire(&env(1)).await }
        });
        tokio::task::yield_now().await;
        pacer.acquire(&env(2)).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        blocked.await.unwrap();
        assert!(start.elapsed() > Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn the_end_of_a_pause_does_not_release_every_waiter_at_once() {
        let pacer = Arc::new(built(Pacing::unlimited().per_process(600)));
        // Burst spent: the next permits come every 100 ms.
        for _ in 0..4 {
            pacer.acquire(&env(1)).await;
        }
        let sent = Arc::new(AtomicU32::new(0));
        let waiters: Vec<_> = (0..64)
            .map(|_| {
                let (pacer, sent) = (Arc::clone(&pacer), Arc::clone(&sent));
                tokio::spawn(async move {
                    pacer.acquire(&env(1)).await;
                    sent.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(250)).await;
        let before_pause = sent.load(Ordering::SeqCst);
        pacer.rate_limited(Some(Duration::from_secs(10)));
        tokio::time::sleep(Duration::from_millis(10_100)).await;
        // At the end of the pause: those that had their permit before it, and the limiter's
        // burst; not the 60-odd that waited through it.
        let released = sent.load(Ordering::SeqCst) - before_pause;
        assert!(
            released <= 8,
            "{released} sent in the first 100 ms after the pause"
        );
        for waiter in waiters {
            waiter.await.unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_zero_steps_the_pace_once_a_second_at_most() {
        let pacer = built(Pacing::unlimited().per_process(600));
        for _ in 0..10 {
            pacer.rate_limited(Some(Duration::ZERO));
        }
        assert_eq!(pacer.cost().get(), CELLS + 1);
        tokio::time::sleep(Duration::from_secs(2)).await;
        pacer.rate_limited(Some(Duration::ZERO));
        assert_eq!(pacer.cost().get(), CELLS + 2);
    }

    #[test]
    fn invalid_limits_are_refused_with_a_reason() {
        for pacing in [
            Pacing::upstream().per_process(0),
            Pacing::upstream().per_environment(0),
            Pacing::upstream().per_process(u32::MAX),
        ] {
            let err = pacing.build().err().expect("refused");
            assert!(err.is_invalid_input(), "{err}");
        }
        assert!(Pacing::unlimited().build().unwrap().is_none());
        assert_eq!(Pacing::default().get_per_process(), Some(1_440));
        assert_eq!(Pacing::default().get_per_environment(), Some(2_880));
    }
}
