//! A hook for metrics: the client reports what it does as [`Event`]s to a [`Metrics`] of
//! yours, which counts them in whatever system you use (Prometheus, OpenTelemetry, StatsD).

use std::time::Duration;

/// Something the client did, for counting.
///
/// `#[non_exhaustive]`: later releases may report more; ignore what you do not count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An HTTP request was sent. `retry` is true for every attempt of an operation after its
    /// first.
    Request {
        /// `create_backup_locations` or `get_wallet`.
        operation: &'static str,
        /// Not the operation's first attempt.
        retry: bool,
    },
    /// An attempt failed and is tried again after a wait.
    Retry {
        /// `create_backup_locations` or `get_wallet`.
        operation: &'static str,
        /// Why: the failure's [`ErrorKind::name`](crate::ErrorKind::name) (`server_error`,
        /// `rate_limited`, `timeout`, `transport`, ...).
        reason: &'static str,
    },
    /// The server answered "too many requests" (429, or 503 with `Retry-After`).
    RateLimited,
    /// A request waited this long for the client's pacing (zero when it did not wait).
    PacerWait {
        /// The wait.
        waited: Duration,
    },
    /// A create whose answer was lost was settled from the wallet: its key shares were found.
    Reconciled,
    /// A call ended with an unknown outcome.
    OutcomeUnknown,
}

/// Receives the client's [`Event`]s (see
/// [`ClientBuilder::metrics`](crate::ClientBuilder::metrics)). Called on the request's task:
/// keep it cheap (an atomic add, a metrics crate's counter).
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use dynamic_waas::{Event, Metrics};
///
/// #[derive(Default)]
/// struct Counters {
///     requests: AtomicU64,
///     rate_limited: AtomicU64,
/// }
///
/// impl Metrics for Counters {
///     fn record(&self, event: &Event) {
///         match event {
///             Event::Request { .. } => self.requests.fetch_add(1, Ordering::Relaxed),
///             Event::RateLimited => self.rate_limited.fetch_add(1, Ordering::Relaxed),
///             _ => 0,
///         };
///     }
/// }
/// let client = dynamic_waas::Client::builder()
///     .token("dyn_example")
///     .metrics(std::sync::Arc::new(Counters::default()))
///     .build()?;
/// # let _ = client;
/// # Ok::<(), dynamic_waas::Error>(())
/// ```
pub trait Metrics: Send + Sync + 'static {
    /// One event.
    fn record(&self, event: &Event);
}

impl<M: Metrics + ?Sized> Metrics for std::sync::Arc<M> {
    fn record(&self, event: &Event) {
        (**self).record(event);
    }
}
