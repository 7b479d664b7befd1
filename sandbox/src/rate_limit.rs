//! Limits of N requests per sliding time window, answered like upstream's: 429 with
//! `Retry-After` in seconds. One window for the whole sandbox ([`RateLimit`], from
//! `SandboxBuilder::rate_limit`) and, like upstream, one per client address and one per
//! environment ([`RateLimits`]).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// At most `max_requests` requests in any `window`; the others get 429 with `Retry-After`
/// set to the seconds until the oldest counted request leaves the window (rounded up, at
/// least 1). Refused requests are not counted.
///
/// Given to [`SandboxBuilder::rate_limit`](crate::SandboxBuilder::rate_limit), it is one
/// window for every request the sandbox receives, whoever sends it. Upstream limits per client
/// address and per environment instead: for that, give limits to [`RateLimits`].
///
/// ```
/// use dynamic_waas_sandbox::RateLimit;
/// use std::time::Duration;
///
/// let limit = RateLimit::new(100, Duration::from_secs(60));
/// assert_eq!(limit.max_requests(), 100);
/// assert_eq!(limit.window(), Duration::from_secs(60));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    max_requests: u32,
    window: Duration,
    bucket: bool,
}

impl RateLimit {
    /// `max_requests` per `window`. A limit of 0 refuses every request; a zero `window`
    /// admits every request (nothing stays in it).
    ///
    /// ```
    /// use dynamic_waas_sandbox::RateLimit;
    /// use std::time::Duration;
    ///
    /// let two_a_second = RateLimit::new(2, Duration::from_secs(1));
    /// # let _ = two_a_second;
    /// ```
    pub const fn new(max_requests: u32, window: Duration) -> Self {
        Self {
            max_requests,
            window,
            bucket: false,
        }
    }

    /// A token bucket instead of a sliding window: `max_requests` tokens, refilled evenly at
    /// `max_requests` per `window`; a request takes one, and is refused when none is left,
    /// with `Retry-After` the time until the next token (rounded up, at least 1 s). Many
    /// servers limit this way: a burst of up to `max_requests` passes at once, then the
    /// refill rate.
    ///
    /// ```
    /// use dynamic_waas_sandbox::RateLimit;
    /// use std::time::Duration;
    ///
    /// let bucket = RateLimit::token_bucket(100, Duration::from_secs(1));
    /// assert!(bucket.is_token_bucket());
    /// assert!(!RateLimit::new(100, Duration::from_secs(1)).is_token_bucket());
    /// ```
    pub const fn token_bucket(max_requests: u32, window: Duration) -> Self {
        Self {
            max_requests,
            window,
            bucket: true,
        }
    }

    /// Whether this is a [`token_bucket`](Self::token_bucket).
    pub fn is_token_bucket(&self) -> bool {
        self.bucket
    }

    /// How many requests a window admits.
    ///
    /// ```
    /// # use dynamic_waas_sandbox::RateLimit;
    /// # use std::time::Duration;
    /// assert_eq!(RateLimit::new(7, Duration::from_secs(1)).max_requests(), 7);
    /// ```
    pub fn max_requests(&self) -> u32 {
        self.max_requests
    }

    /// The window's length.
    ///
    /// ```
    /// # use dynamic_waas_sandbox::RateLimit;
    /// # use std::time::Duration;
    /// assert_eq!(RateLimit::new(7, Duration::from_secs(1)).window(), Duration::from_secs(1));
    /// ```
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The same number of requests in `window / scale` (see [`RateLimits::time_scale`]).
    fn scaled(self, scale: f64) -> Self {
        if scale == 1.0 {
            return self;
        }
        // `scale` is finite and above 0 (checked where it is set), so the quotient is a
        // non-negative number or +inf; +inf (a window too long to represent) saturates.
        let window =
            Duration::try_from_secs_f64(self.window.as_secs_f64() / scale).unwrap_or(Duration::MAX);
        Self { window, ..self }
    }
}

/// Upstream's limits for developer endpoints such as this API's, the ones a client sees
/// from one address and an environment sees from all of them: a request is admitted only
/// if **both** its client's window and its environment's window admit it, and a refused
/// request is counted in neither. The answer is upstream's: 429 with
/// `{"error": "Too many requests. Please try again later."}` and `Retry-After` in whole
/// seconds (rounded up, at least 1), the longer wait of the windows that refused.
///
/// # The client's address
///
/// The sandbox serves loopback, where every test is the same machine. As upstream sees its
/// clients behind its load balancer, the sandbox takes a request's client address from the
/// **first entry of its `X-Forwarded-For` header** (trimmed, as sent); a request without one
/// comes from the one client `loopback`. A test plays two machines by sending two
/// addresses, say with `reqwest::ClientBuilder::default_headers`:
///
/// ```
/// use dynamic_waas_sandbox::{RateLimit, RateLimits, Sandbox, Seed};
/// use reqwest::header::{HeaderMap, HeaderValue};
/// use std::time::Duration;
///
/// fn machine(address: &str) -> reqwest::Client {
///     let mut headers = HeaderMap::new();
///     headers.insert("x-forwarded-for", HeaderValue::from_str(address).unwrap());
///     reqwest::Client::builder().default_headers(headers).build().unwrap()
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), reqwest::Error> {
/// let seed = Seed::example();
/// let sandbox = seed
///     .builder()
///     .rate_limits(
///         RateLimits::new()
///             .per_client(RateLimit::new(1, Duration::from_secs(60)))
///             .per_environment(RateLimit::new(2, Duration::from_secs(60))),
///     )
///     .start()
///     .await;
/// let url = format!("{}/environments/{}/waas/{}", sandbox.uri(), seed.environment_id, seed.wallet_id);
/// let read = |client: reqwest::Client| {
///     let request = client.get(&url).bearer_auth(&seed.token);
///     async move { request.send().await.map(|response| response.status().as_u16()) }
/// };
///
/// // Each machine has a window of its own...
/// assert_eq!(read(machine("203.0.113.1")).await?, 200);
/// assert_eq!(read(machine("203.0.113.1")).await?, 429);
/// assert_eq!(read(machine("203.0.113.2")).await?, 200);
/// // ... and they share the environment's, now full.
/// assert_eq!(read(machine("203.0.113.3")).await?, 429);
/// assert_eq!(sandbox.rate_limited(), 2);
/// # Ok(())
/// # }
/// ```
///
/// # The environment
///
/// The `{environmentId}` segment of a path under `/environments/{environmentId}/`, when it
/// is a well-formed id (any route, known or not, and before the token is checked, as a
/// limiter in front of the service would). A request with no such segment counts against
/// its client's window only.
///
/// # Time scale
///
/// [`time_scale`](Self::time_scale) shortens every window so that a test runs upstream's
/// minute in a second: `RateLimits::upstream().time_scale(60.0)` admits 1,500 requests a
/// second per client and 3,000 per environment.
///
/// These windows are separate from the sandbox's overall [`RateLimit`]
/// ([`SandboxBuilder::rate_limit`](crate::SandboxBuilder::rate_limit)); when both are set, a
/// request must pass all three windows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimits {
    per_client: Option<RateLimit>,
    per_environment: Option<RateLimit>,
    scale: f64,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimits {
    /// Upstream's limit per client address: 1,500 requests a minute.
    ///
    /// ```
    /// # use dynamic_waas_sandbox::RateLimits;
    /// assert_eq!(RateLimits::UPSTREAM_PER_CLIENT.max_requests(), 1500);
    /// ```
    pub const UPSTREAM_PER_CLIENT: RateLimit = RateLimit::new(1500, Duration::from_secs(60));

    /// Upstream's limit per environment: 3,000 requests a minute.
    ///
    /// ```
    /// # use dynamic_waas_sandbox::RateLimits;
    /// assert_eq!(RateLimits::UPSTREAM_PER_ENVIRONMENT.max_requests(), 3000);
    /// ```
    pub const UPSTREAM_PER_ENVIRONMENT: RateLimit = RateLimit::new(3000, Duration::from_secs(60));

    /// No window at all (every request is admitted), at scale 1; add windows with
    /// [`per_client`](Self::per_client) and [`per_environment`](Self::per_environment).
    ///
    /// ```
    /// # use dynamic_waas_sandbox::RateLimits;
    /// let limits = RateLimits::new();
    /// assert_eq!(limits.client_limit(), None);
    /// assert_eq!(limits.environment_limit(), None);
    /// ```
    pub fn new() -> Self {
        Self {
            per_client: None,
            per_environment: None,
            scale: 1.0,
        }
    }

    /// Upstream's limits: [`UPSTREAM_PER_CLIENT`](Self::UPSTREAM_PER_CLIENT) and
    /// [`UPSTREAM_PER_ENVIRONMENT`](Self::UPSTREAM_PER_ENVIRONMENT).
    ///
    /// ```
    /// use dynamic_waas_sandbox::{RateLimit, RateLimits};
    /// use std::time::Duration;
    ///
    /// let limits = RateLimits::upstream();
    /// let minute = Duration::from_secs(60);
    /// assert_eq!(limits.client_limit(), Some(RateLimit::new(1500, minute)));
    /// assert_eq!(limits.environment_limit(), Some(RateLimit::new(3000, minute)));
    /// ```
    pub fn upstream() -> Self {
        Self::new()
            .per_client(Self::UPSTREAM_PER_CLIENT)
            .per_environment(Self::UPSTREAM_PER_ENVIRONMENT)
    }

    /// `limit` for each client address (see [the client's address](Self#the-clients-address)).
    ///
    /// ```
    /// use dynamic_waas_sandbox::{RateLimit, RateLimits};
    /// use std::time::Duration;
    ///
    /// let limits = RateLimits::new().per_client(RateLimit::new(10, Duration::from_secs(1)));
    /// assert_eq!(limits.client_limit().unwrap().max_requests(), 10);
    /// assert_eq!(limits.environment_limit(), None);
    /// ```
    pub fn per_client(mut self, limit: RateLimit) -> Self {
        self.per_client = Some(limit);
        self
    }

    /// `limit` for each environment, shared by every client (see
    /// [the environment](Self#the-environment)).
    ///
    /// ```
    /// use dynamic_waas_sandbox::{RateLimit, RateLimits};
    /// use std::time::Duration;
    ///
    /// let limits = RateLimits::new().per_environment(RateLimit::new(20, Duration::from_secs(1)));
    /// assert_eq!(limits.environment_limit().unwrap().max_requests(), 20);
    /// assert_eq!(limits.client_limit(), None);
    /// ```
    pub fn per_environment(mut self, limit: RateLimit) -> Self {
        self.per_environment = Some(limit);
        self
    }

    /// Runs time `scale` times faster: every window (set before or after this call) lasts
    /// `window / scale`, with the same number of requests. Setting a scale again replaces
    /// the previous one (scales do not multiply).
    ///
    /// A `scale` that is not a finite number above 0 (`NaN`, an infinity, 0 or a negative
    /// number) is ignored and leaves the scale as it was, since no window could be made
    /// from it; [`scale`](Self::scale) shows what is in effect. A window too long to
    /// represent saturates at [`Duration::MAX`]; one that rounds down to zero admits every
    /// request.
    ///
    /// ```
    /// use dynamic_waas_sandbox::RateLimits;
    /// use std::time::Duration;
    ///
    /// // Upstream's minute in a second.
    /// let limits = RateLimits::upstream().time_scale(60.0);
    /// assert_eq!(limits.client_limit().unwrap().window(), Duration::from_secs(1));
    /// assert_eq!(limits.client_limit().unwrap().max_requests(), 1500);
    ///
    /// // Not a scale: ignored.
    /// assert_eq!(limits.time_scale(0.0).scale(), 60.0);
    /// assert_eq!(limits.time_scale(f64::NAN).scale(), 60.0);
    /// ```
    pub fn time_scale(mut self, scale: f64) -> Self {
        if scale.is_finite() && scale > 0.0 {
            self.scale = scale;
        }
        self
    }

    /// The time scale in effect (1 unless [`time_scale`](Self::time_scale) set another).
    ///
    /// ```
    /// # use dynamic_waas_sandbox::RateLimits;
    /// assert_eq!(RateLimits::upstream().scale(), 1.0);
    /// assert_eq!(RateLimits::upstream().time_scale(6.0).scale(), 6.0);
    /// ```
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The limit per client address as the sandbox enforces it (its window scaled), if any.
    ///
    /// ```
    /// use dynamic_waas_sandbox::RateLimits;
    /// use std::time::Duration;
    ///
    /// let limits = RateLimits::upstream().time_scale(600.0);
    /// assert_eq!(limits.client_limit().unwrap().window(), Duration::from_millis(100));
    /// ```
    pub fn client_limit(&self) -> Option<RateLimit> {
        self.per_client.map(|limit| limit.scaled(self.scale))
    }

    /// The limit per environment as the sandbox enforces it (its window scaled), if any.
    ///
    /// ```
    /// use dynamic_waas_sandbox::RateLimits;
    /// use std::time::Duration;
    ///
    /// let limits = RateLimits::upstream().time_scale(120.0);
    /// assert_eq!(limits.environment_limit().unwrap().window(), Duration::from_millis(500));
    /// ```
    pub fn environment_limit(&self) -> Option<RateLimit> {
        self.per_environment.map(|limit| limit.scaled(self.scale))
    }
}

/// The client a request without `X-Forwarded-For` comes from.
pub(crate) const LOOPBACK_CLIENT: &str = "loopback";

/// Why a request was refused: the value of `Retry-After`, and which windows were full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) retry_after: u64,
    pub(crate) overall: bool,
    pub(crate) client: bool,
    pub(crate) environment: bool,
}

impl Refusal {
    /// For the request log: which windows refused, e.g. `the client "10.0.0.1"'s window`.
    pub(crate) fn windows(&self, client: &str, environment: Option<&str>) -> String {
        let mut full = Vec::new();
        if self.overall {
            full.push("the sandbox's window".to_owned());
        }
        if self.client {
            full.push(format!("client {client:?}'s window"));
        }
        if let (true, Some(environment)) = (self.environment, environment) {
            full.push(format!("environment {environment}'s window"));
        }
        full.join(" and ")
    }
}

/// Every window the sandbox keeps: the overall one and, per [`RateLimits`], one per client
/// and one per environment.
#[derive(Debug)]
pub(crate) struct Limiter {
    overall: Option<(RateLimit, Window)>,
    per_client: Option<(RateLimit, Windows)>,
    per_environment: Option<(RateLimit, Windows)>,
}

impl Limiter {
    pub(crate) fn new(overall: Option<RateLimit>, limits: Option<RateLimits>) -> Self {
        let mut limiter = Self {
            overall: None,
            per_client: None,
            per_environment: None,
        };
        limiter.set_overall(overall);
        limiter.set_limits(limits);
        limiter
    }

    /// Replaces the overall limit, with an empty window.
    pub(crate) fn set_overall(&mut self, limit: Option<RateLimit>) {
        self.overall = limit.map(|limit| (limit, Window::default()));
    }

    /// Replaces the limits per client and per environment, with empty windows.
    pub(crate) fn set_limits(&mut self, limits: Option<RateLimits>) {
        let limits = limits.unwrap_or_default();
        self.per_client = limits
            .client_limit()
            .map(|limit| (limit, Windows::default()));
        self.per_environment = limits
            .environment_limit()
            .map(|limit| (limit, Windows::default()));
    }

    /// Admits a request from `client` to `environment` arriving at `now`, counting it in each
    /// of its windows, or refuses it, counting it in none.
    pub(crate) fn admit(
        &mut self,
        client: &str,
        environment: Option<&str>,
        now: Instant,
    ) -> Result<(), Refusal> {
        let overall = match &mut self.overall {
            Some((limit, window)) => window.wait(*limit, now),
            None => None,
        };
        let client_wait = match &mut self.per_client {
            Some((limit, windows)) => windows.wait(*limit, client, now),
            None => None,
        };
        let environment_wait = match (&mut self.per_environment, environment) {
            (Some((limit, windows)), Some(environment)) => windows.wait(*limit, environment, now),
            _ => None,
        };
        let longest = [overall, client_wait, environment_wait]
            .into_iter()
            .flatten()
            .max();
        if let Some(wait) = longest {
            return Err(Refusal {
                retry_after: whole_seconds(wait),
                overall: overall.is_some(),
                client: client_wait.is_some(),
                environment: environment_wait.is_some(),
            });
        }
        if let Some((limit, window)) = &mut self.overall {
            window.record(*limit, now);
        }
        if let Some((limit, windows)) = &mut self.per_client {
            windows.record(*limit, client, now);
        }
        if let (Some((limit, windows)), Some(environment)) =
            (&mut self.per_environment, environment)
        {
            windows.record(*limit, environment, now);
        }
        Ok(())
    }

    #[cfg(test)]
    fn keys(&self) -> (usize, usize) {
        let count = |windows: &Option<(RateLimit, Windows)>| {
            windows.as_ref().map_or(0, |(_, windows)| windows.map.len())
        };
        (count(&self.per_client), count(&self.per_environment))
    }
}

/// The requests admitted within one window, oldest first: at most `max_requests` of them;
/// or, for a token bucket, the tokens left.
#[derive(Debug, Default)]
struct Window {
    admitted: VecDeque<Instant>,
    /// Tokens left and when they were counted (a token bucket); `None`: full.
    bucket: Option<(f64, Instant)>,
}

impl Window {
    /// Forgets the requests that have left the window; then `None` if one more fits, else
    /// how long until one does.
    fn wait(&mut self, limit: RateLimit, now: Instant) -> Option<Duration> {
        if limit.bucket {
            let tokens = self.tokens(limit, now);
            if tokens >= 1.0 {
                return None;
            }
            let per_token = limit.window.as_secs_f64() / f64::from(limit.max_requests.max(1));
            return Some(
                Duration::try_from_secs_f64((1.0 - tokens) * per_token).unwrap_or(limit.window),
            );
        }
        while let Some(&oldest) = self.admitted.front() {
            if now.saturating_duration_since(oldest) >= limit.window {
                self.admitted.pop_front();
            } else {
                break;
            }
        }
        if self.admitted.len() < limit.max_requests as usize {
            return None;
        }
        Some(match self.admitted.front() {
            // Still in the window, so the wait is above zero.
            Some(&oldest) => limit
                .window
                .saturating_sub(now.saturating_duration_since(oldest)),
            // A limit of 0 admits nothing; the wait is a whole window.
            None => limit.window,
        })
    }

    /// A token bucket's tokens at `now`, refilled since they were last counted.
    fn tokens(&mut self, limit: RateLimit, now: Instant) -> f64 {
        let capacity = f64::from(limit.max_requests);
        let (tokens, at) = self.bucket.unwrap_or((capacity, now));
        let rate = if limit.window.is_zero() {
            f64::INFINITY
        } else {
            capacity / limit.window.as_secs_f64()
        };
        let refilled =
            (tokens + now.saturating_duration_since(at).as_secs_f64() * rate).min(capacity);
        self.bucket = Some((refilled, now));
        refilled
    }

    /// Counts a request admitted at `now`.
    fn record(&mut self, limit: RateLimit, now: Instant) {
        if limit.bucket {
            let tokens = self.tokens(limit, now);
            self.bucket = Some((tokens - 1.0, now));
        } else {
            self.admitted.push_back(now);
        }
    }

    /// Whether every request counted has left the window: the window is as good as new.
    fn is_idle(&mut self, limit: RateLimit, now: Instant) -> bool {
        if limit.bucket {
            return self.tokens(limit, now) >= f64::from(limit.max_requests);
        }
        self.admitted
            .back()
            .is_none_or(|&newest| now.saturating_duration_since(newest) >= limit.window)
    }
}

/// One window per key (a client address, an environment), bounded: windows that have
/// emptied are dropped as the map grows, at an amortised O(1) cost per new key.
#[derive(Debug)]
struct Windows {
    map: HashMap<String, Window>,
    /// Sweep idle windows when a new key would take the map to this size.
    sweep_at: usize,
}

/// The smallest size at which [`Windows`] sweeps.
const SWEEP_FLOOR: usize = 64;

impl Default for Windows {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            sweep_at: SWEEP_FLOOR,
        }
    }
}

impl Windows {
    /// [`Window::wait`] for `key`'s window; a key with no window yet has an empty one.
    fn wait(&mut self, limit: RateLimit, key: &str, now: Instant) -> Option<Duration> {
        match self.map.get_mut(key) {
            Some(window) => window.wait(limit, now),
            None => Window::default().wait(limit, now),
        }
    }

    /// Counts a request admitted at `now` in `key`'s window. Allocates only for a new key.
    fn record(&mut self, limit: RateLimit, key: &str, now: Instant) {
        if let Some(window) = self.map.get_mut(key) {
            window.record(limit, now);
            return;
        }
        if self.map.len() >= self.sweep_at {
            self.map.retain(|_, window| !window.is_idle(limit, now));
            // The next sweep comes after at least as many new keys as survived this one.
            self.sweep_at = (self.map.len() * 2).max(SWEEP_FLOOR);
        }
        let mut window = Window::default();
        window.record(limit, now);
        self.map.insert(key.to_owned(), window);
    }
}

/// Rounded up, at least 1: `Retry-After: 0` would invite an immediate retry into a full window.
fn whole_seconds(wait: Duration) -> u64 {
    let seconds = wait
        .as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0));
    seconds.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn overall(limit: RateLimit) -> Limiter {
        Limiter::new(Some(limit), None)
    }

    fn limits(per_client: Option<RateLimit>, per_environment: Option<RateLimit>) -> Limiter {
        let mut limits = RateLimits::new();
        if let Some(limit) = per_client {
            limits = limits.per_client(limit);
        }
        if let Some(limit) = per_environment {
            limits = limits.per_environment(limit);
        }
        Limiter::new(None, Some(limits))
    }

    fn refused(retry_after: u64, client: bool, environment: bool) -> Result<(), Refusal> {
        Err(Refusal {
            retry_after,
            overall: false,
            client,
            environment,
        })
    }

    #[test]
    fn admits_up_to_the_limit_then_counts_down_to_the_oldest_leaving() {
        let start = Instant::now();
        let mut limiter = overall(RateLimit::new(2, Duration::from_secs(10)));
        let mut admit = |at: Duration| {
            limiter
                .admit(LOOPBACK_CLIENT, None, start + at)
                .map_err(|refusal| refusal.retry_after)
        };
        assert_eq!(admit(Duration::ZERO), Ok(()));
        assert_eq!(admit(3 * SECOND), Ok(()));
        assert_eq!(admit(Duration::from_millis(4500)), Err(6));
        // The first request leaves the window at 10 s; the second still counts.
        assert_eq!(admit(10 * SECOND), Ok(()));
        assert_eq!(admit(11 * SECOND), Err(2));
    }

    #[test]
    fn a_zero_limit_refuses_everything_for_a_window() {
        let now = Instant::now();
        let mut limiter = overall(RateLimit::new(0, Duration::from_millis(1500)));
        assert_eq!(
            limiter.admit("a", None, now).map_err(|r| r.retry_after),
            Err(2)
        );
        let mut limiter = limits(Some(RateLimit::new(0, SECOND)), None);
        assert_eq!(limiter.admit("a", None, now), refused(1, true, false));
    }

    #[test]
    fn each_client_has_a_window_of_its_own() {
        let now = Instant::now();
        let mut limiter = limits(Some(RateLimit::new(2, 10 * SECOND)), None);
        for client in ["10.0.0.1", "10.0.0.2"] {
            assert_eq!(limiter.admit(client, None, now), Ok(()));
            assert_eq!(limiter.admit(client, None, now), Ok(()));
            assert_eq!(limiter.admit(client, None, now), refused(10, true, false));
        }
        assert_eq!(limiter.admit(LOOPBACK_CLIENT, None, now), Ok(()));
    }

    #[test]
    fn the_environment_window_is_shared_by_every_client() {
        let now = Instant::now();
        let mut limiter = limits(
            Some(RateLimit::new(2, 10 * SECOND)),
            Some(RateLimit::new(3, 10 * SECOND)),
        );
        assert_eq!(limiter.admit("a", Some("env"), now), Ok(()));
        assert_eq!(limiter.admit("a", Some("env"), now), Ok(()));
        assert_eq!(limiter.admit("b", Some("env"), now), Ok(()));
        assert_eq!(
            limiter.admit("b", Some("env"), now),
            refused(10, false, true)
        );
        // Another environment, and requests with none, are not in that window.
        assert_eq!(limiter.admit("b", Some("other"), now), Ok(()));
        assert_eq!(limiter.admit("c", None, now), Ok(()));
    }

    #[test]
    fn a_refused_request_is_counted_in_no_window() {
        let start = Instant::now();
        let mut limiter = limits(
            Some(RateLimit::new(1, 10 * SECOND)),
            Some(RateLimit::new(2, 10 * SECOND)),
        );
        assert_eq!(limiter.admit("a", Some("env"), start), Ok(()));
        // Refused by a's window: not counted in the environment's, which admits b twice...
        for _ in 0..5 {
            assert!(limiter.admit("a", Some("env"), start).is_err());
        }
        let later = start + SECOND;
        assert_eq!(limiter.admit("b", Some("env"), later), Ok(()));
        // ... and refused by the environment's: not counted in c's, which still has room.
        assert_eq!(
            limiter.admit("c", Some("env"), later),
            refused(9, false, true)
        );
        assert_eq!(limiter.admit("c", Some("other"), later), Ok(()));
    }

    #[test]
    fn retry_after_is_the_longer_wait_of_the_windows_that_refused() {
        let start = Instant::now();
        let mut limiter = limits(
            Some(RateLimit::new(1, 3 * SECOND)),
            Some(RateLimit::new(1, 8 * SECOND)),
        );
        assert_eq!(limiter.admit("a", Some("env"), start), Ok(()));
        assert_eq!(
            limiter.admit("a", Some("env"), start),
            refused(8, true, true)
        );
        // The client's window frees first; the environment's still refuses.
        assert_eq!(
            limiter.admit("a", Some("env"), start + 4 * SECOND),
            refused(4, false, true)
        );
        // With the overall window too, the longest of the three.
        let mut limiter = Limiter::new(
            Some(RateLimit::new(1, 20 * SECOND)),
            Some(RateLimits::new().per_client(RateLimit::new(1, 3 * SECOND))),
        );
        assert_eq!(limiter.admit("a", None, start), Ok(()));
        let refusal = limiter.admit("a", None, start).unwrap_err();
        assert_eq!(refusal.retry_after, 20);
        assert!(refusal.overall && refusal.client && !refusal.environment);
    }

    #[test]
    fn the_time_scale_shrinks_every_window() {
        let limits = RateLimits::upstream().time_scale(60.0);
        assert_eq!(limits.client_limit(), Some(RateLimit::new(1500, SECOND)));
        assert_eq!(
            limits.environment_limit(),
            Some(RateLimit::new(3000, SECOND))
        );
        // The scale applies to windows set after it too, and replaces an earlier one.
        let limits = RateLimits::new()
            .time_scale(2.0)
            .per_client(RateLimit::new(1, SECOND))
            .time_scale(4.0);
        assert_eq!(
            limits.client_limit(),
            Some(RateLimit::new(1, Duration::from_millis(250)))
        );

        let start = Instant::now();
        let mut limiter = Limiter::new(None, Some(limits));
        assert_eq!(limiter.admit("a", None, start), Ok(()));
        assert!(limiter
            .admit("a", None, start + Duration::from_millis(200))
            .is_err());
        assert_eq!(
            limiter.admit("a", None, start + Duration::from_millis(250)),
            Ok(())
        );
    }

    #[test]
    fn a_scale_that_is_no_number_above_zero_is_ignored_and_none_panics() {
        for bad in [0.0, -0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let limits = RateLimits::upstream().time_scale(bad);
            assert_eq!(limits, RateLimits::upstream(), "{bad}");
            assert_eq!(limits.time_scale(3.0).time_scale(bad).scale(), 3.0);
        }
        // Extreme but valid scales saturate or vanish, without panicking.
        let huge = RateLimits::upstream().time_scale(f64::MIN_POSITIVE);
        assert_eq!(huge.client_limit().unwrap().window(), Duration::MAX);
        let tiny = RateLimits::upstream().time_scale(f64::MAX);
        assert_eq!(tiny.client_limit().unwrap().window(), Duration::ZERO);

        let now = Instant::now();
        let mut limiter = Limiter::new(None, Some(huge.per_client(RateLimit::new(1, SECOND))));
        assert_eq!(limiter.admit("a", None, now), Ok(()));
        assert_eq!(
            limiter.admit("a", None, now).map_err(|r| r.retry_after),
            Err(u64::MAX)
        );
        let mut limiter = Limiter::new(None, Some(tiny));
        for _ in 0..2000 {
            assert_eq!(limiter.admit("a", None, now), Ok(()));
        }
    }

    #[test]
    fn idle_windows_are_swept_as_new_keys_come() {
        let start = Instant::now();
        let mut limiter = limits(
            Some(RateLimit::new(5, SECOND)),
            Some(RateLimit::new(5, SECOND)),
        );
        for i in 0..10_000u64 {
            // A new client and environment every millisecond: at most ~1,000 are live.
            let at = start + Duration::from_millis(i);
            let key = i.to_string();
            assert_eq!(limiter.admit(&key, Some(&key), at), Ok(()));
        }
        let (clients, environments) = limiter.keys();
        assert!(clients <= 2_100 && environments <= 2_100, "{clients}");
    }

    #[test]
    fn setting_limits_starts_with_empty_windows() {
        let now = Instant::now();
        let limit = RateLimit::new(1, SECOND);
        let mut limiter = Limiter::new(Some(limit), Some(RateLimits::new().per_client(limit)));
        assert_eq!(limiter.admit("a", None, now), Ok(()));
        limiter.set_overall(Some(limit));
        let refusal = limiter.admit("a", None, now).unwrap_err();
        assert!(!refusal.overall && refusal.client);
        // The refusal was counted in no window: the overall one admits one more.
        limiter.set_limits(None);
        assert_eq!(limiter.admit("a", None, now), Ok(()));
        assert!(limiter.admit("a", None, now).unwrap_err().overall);
        limiter.set_overall(None);
        assert_eq!(limiter.admit("a", None, now), Ok(()));
    }

    #[test]
    fn never_says_zero_seconds() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
        assert_eq!(whole_seconds(Duration::MAX), u64::MAX);
    }
}
