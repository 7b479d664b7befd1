//! Counting what the client does, Prometheus style, without a metrics crate: a [`Metrics`]
//! that adds every [`Event`] to atomics and renders them in Prometheus' text format.
//!
//! It backs up a few wallets of a local sandbox that loses answers, rate limits and fails
//! reads, then prints the counters:
//!
//! ```text
//! cargo run --example metrics
//! ```
//!
//! In a service, serve `render()` on `/metrics` (or use your metrics crate's counters in
//! `record` instead).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

use dynamic_waas::{BackupJob, BackupLocation, Client, Event, Metrics};
use dynamic_waas_sandbox::{EnvironmentId, Fault, FaultResponse, Operation, Rate, SandboxBuilder};
use futures_util::{stream, StreamExt};

/// Counters labelled by `K`, each created on first use: a read lock and an atomic add after.
struct Family<K>(RwLock<BTreeMap<K, AtomicU64>>);

impl<K: Ord + Copy> Family<K> {
    fn inc(&self, labels: K) {
        if let Some(counter) = self.0.read().unwrap().get(&labels) {
            counter.fetch_add(1, Relaxed);
            return;
        }
        self.0
            .write()
            .unwrap()
            .entry(labels)
            .or_default()
            .fetch_add(1, Relaxed);
    }

    /// Each counter as `(labels, value)`, the labels written by `labels`.
    fn samples(&self, labels: impl Fn(K) -> String) -> Vec<(String, String)> {
        let counters = self.0.read().unwrap();
        counters
            .iter()
            .map(|(k, counter)| (labels(*k), counter.load(Relaxed).to_string()))
            .collect()
    }
}

impl<K> Default for Family<K> {
    fn default() -> Self {
        Self(RwLock::default())
    }
}

/// The client's counters. `record` runs on the request's task: it only adds.
#[derive(Default)]
struct Prometheus {
    /// By operation and whether the request was a retry.
    requests: Family<(&'static str, bool)>,
    /// By operation and reason (an `ErrorKind` name).
    retries: Family<(&'static str, &'static str)>,
    rate_limited: AtomicU64,
    pacer_wait_micros: AtomicU64,
    reconciled: AtomicU64,
    outcome_unknown: AtomicU64,
}

impl Metrics for Prometheus {
    fn record(&self, event: &Event) {
        match *event {
            Event::Request { operation, retry } => self.requests.inc((operation, retry)),
            Event::Retry { operation, reason } => self.retries.inc((operation, reason)),
            Event::RateLimited => {
                self.rate_limited.fetch_add(1, Relaxed);
            }
            Event::PacerWait { waited } => {
                self.pacer_wait_micros
                    .fetch_add(waited.as_micros() as u64, Relaxed);
            }
            Event::Reconciled => {
                self.reconciled.fetch_add(1, Relaxed);
            }
            Event::OutcomeUnknown => {
                self.outcome_unknown.fetch_add(1, Relaxed);
            }
            // `Event` is #[non_exhaustive]: later releases may report more.
            _ => {}
        }
    }
}

impl Prometheus {
    /// The counters in Prometheus' text exposition format.
    fn render(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, samples: Vec<(String, String)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let unlabelled = |value: String| vec![(String::new(), value)];
        counter(
            "dynamic_waas_requests_total",
            "HTTP requests sent, first attempts and retries.",
            self.requests.samples(|(operation, retry)| {
                format!("{{operation=\"{operation}\",retry=\"{retry}\"}}")
            }),
        );
        counter(
            "dynamic_waas_retries_total",
            "Failed attempts tried again, by reason.",
            self.retries.samples(|(operation, reason)| {
                format!("{{operation=\"{operation}\",reason=\"{reason}\"}}")
            }),
        );
        counter(
            "dynamic_waas_rate_limited_total",
            "Answers that said too many requests.",
            unlabelled(self.rate_limited.load(Relaxed).to_string()),
        );
        counter(
            "dynamic_waas_pacer_wait_seconds_total",
            "Time requests waited for the client's pacing.",
            unlabelled((self.pacer_wait_micros.load(Relaxed) as f64 / 1e6).to_string()),
        );
        counter(
            "dynamic_waas_reconciled_total",
            "Creates whose lost answer was recovered from the wallet.",
            unlabelled(self.reconciled.load(Relaxed).to_string()),
        );
        counter(
            "dynamic_waas_outcome_unknown_total",
            "Calls that ended with an unknown outcome.",
            unlabelled(self.outcome_unknown.load(Relaxed).to_string()),
        );
        out
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A sandbox with 20 wallets to back up, and trouble: every 5th create applied but its
    // answer lost, two 429s, and the first wallet read failing with a 503.
    let env = EnvironmentId::random();
    let (builder, rows) = SandboxBuilder::new()
        .token("dyn_example_token", &env)
        .pregenerated(&env, 20);
    let sandbox = builder.start().await;
    let lost = Fault::ApplyThenRespond(FaultResponse::new(502));
    sandbox.fail_at_rate(Operation::Create, Rate::every(5), lost);
    sandbox.fail_next(Operation::Create, 2, FaultResponse::new(429).retry_after(0));
    sandbox.fail_next(Operation::Read, 1, FaultResponse::new(503));

    let metrics = Arc::new(Prometheus::default());
    let client = Client::builder()
        .base_url(sandbox.uri())
        .token("dyn_example_token")
        .metrics(Arc::clone(&metrics))
        .build()?;

    let jobs = rows
        .iter()
        .map(|row| {
            BackupJob::new(
                &row.environment_id,
                &row.wallet_id,
                &row.user_id,
                [BackupLocation::GoogleDrive.into()],
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut outcomes = client.create_many(stream::iter(jobs), 8);
    let mut by_status = BTreeMap::new();
    while let Some(outcome) = outcomes.next().await {
        *by_status.entry(outcome.status.name()).or_insert(0) += 1;
    }
    eprintln!("outcomes: {by_status:?}");

    print!("{}", metrics.render());
    Ok(())
}
