//! What the run prints. The ratios to raw reqwest come last, for scripts and BENCHMARKS.md.

use std::time::Duration;

use crate::clients::Kind;
use crate::measure::{Figures, Measured, Peak, Plan, CONCURRENCY, PEAK_CALLS};
use crate::stats;

/// The machine the figures came from (Linux: /proc; elsewhere "unknown").
pub fn machine() {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("model name"))?;
            Some(line.split_once(':')?.1.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line["MemTotal:".len()..]
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            Some(format!("{:.1} GiB", kib as f64 / (1024.0 * 1024.0)))
        })
        .unwrap_or_else(|| "unknown memory".to_owned());
    println!("machine: {cores} cores, {model}, {memory}");
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub fn print(plan: &Plan, measured: &Measured, peaks: &[Option<Peak>; Kind::COUNT]) {
    let rounds = &measured.rounds;
    let column = |kind: Kind, f: fn(&Figures) -> f64| -> Vec<f64> {
        rounds.iter().map(|r| f(&r[kind.index()])).collect()
    };
    // `median ±spread`, or n/a where the platform gave no reading.
    let cell = |values: &[f64], width: usize, precision: usize| -> String {
        if values.iter().any(|v| v.is_nan()) {
            return format!("{:>w$}", "n/a", w = width + 9);
        }
        format!(
            "{:>width$.precision$} ±{:>4.1} %",
            stats::median(values),
            stats::spread_percent(values),
        )
    };

    println!(
        "\n{} rounds; per round and client {} sequential calls (c=1) and {} calls {CONCURRENCY} \
         at a time (c=64), in {} blocks alternating between the clients.\nMedians over the \
         rounds; ± is how far apart the rounds were, (max - min) / median. CPU is the whole \
         process's (server included) per call.",
        plan.rounds,
        plan.latency_calls(),
        plan.throughput_calls(),
        plan.blocks,
    );
    println!(
        "{:<11} {:>16} {:>16} {:>16} {:>16} {:>16}",
        "client", "p50 µs c=1", "p99 µs c=1", "calls/s c=64", "CPU µs c=1", "CPU µs c=64"
    );
    for kind in Kind::ALL {
        println!(
            "{kind:<11} {} {} {} {} {}",
            cell(&column(kind, |f| micros(f.p50)), 7, 1),
            cell(&column(kind, |f| micros(f.p99)), 7, 1),
            cell(&column(kind, |f| f.per_second), 7, 0),
            cell(&column(kind, |f| f.cpu_c1.map_or(f64::NAN, micros)), 7, 1),
            cell(&column(kind, |f| f.cpu_c64.map_or(f64::NAN, micros)), 7, 1),
        );
    }

    println!(
        "\nallocations per call, over {} sequential calls (the in-process server's share is \
         included, the same for all)",
        plan.alloc_calls
    );
    println!(
        "{:<11} {:>8} {:>9} {:>9} {:>14} {:>14}",
        "client", "allocs", "reallocs", "bytes", "allocs vs raw", "bytes vs raw"
    );
    let raw = measured.allocations[Kind::Raw.index()];
    for kind in Kind::ALL {
        let a = measured.allocations[kind.index()];
        println!(
            "{kind:<11} {:>8.1} {:>9.1} {:>9.0} {:>+14.1} {:>+14.0}",
            a.allocs,
            a.reallocs,
            a.bytes,
            a.allocs + a.reallocs - raw.allocs - raw.reallocs,
            a.bytes - raw.bytes,
        );
    }

    println!(
        "\npeak resident memory, {PEAK_CALLS} calls {CONCURRENCY} at a time (a fresh process per \
         client, server included)"
    );
    for kind in Kind::ALL {
        match &peaks[kind.index()] {
            Some(p) => println!(
                "{kind:<11} {:>6.1} MiB, {:>+5.1} MiB over the {:.1} MiB held before the calls",
                p.peak_kib as f64 / 1024.0,
                (p.peak_kib as f64 - p.before_kib as f64) / 1024.0,
                p.before_kib as f64 / 1024.0,
            ),
            None => println!("{kind:<11} n/a (needs /proc/self/status)"),
        }
    }

    let compared = [Kind::Facade, Kind::FacadePaced, Kind::Generated]
        .map(|kind| (kind, Ratios::new(rounds, kind)));
    println!("\nratios to raw, per round (min .. max over the rounds)");
    for (kind, r) in &compared {
        let (lat_lo, lat_hi) = stats::min_max(&r.latency);
        let (thr_lo, thr_hi) = stats::min_max(&r.throughput);
        let (cpu_lo, cpu_hi) = stats::min_max(&r.cpu);
        println!(
            "{kind:<11} latency {lat_lo:.2} .. {lat_hi:.2}, throughput {thr_lo:.2} .. {thr_hi:.2}, \
             CPU per call at c=64 {cpu_lo:.2} .. {cpu_hi:.2} (median {:.2})",
            stats::median(&r.cpu)
        );
    }
    // What the facade adds over a hand-written client that sends the same headers.
    let fair = Ratios::against(rounds, Kind::Facade, Kind::RawWithHeaders);
    for kind in [Kind::Facade, Kind::FacadePaced, Kind::FacadeSend] {
        let r = Ratios::against(rounds, kind, Kind::RawWithHeaders);
        println!(
            "{kind} over raw+headers: latency {:.2}, throughput {:.2}, CPU per call at c=64 {:.2}",
            stats::median(&r.latency),
            stats::median(&r.throughput),
            stats::median(&r.cpu)
        );
    }
    println!();
    for (kind, r) in &compared {
        for (figure, ratios) in r.named().into_iter().take(2) {
            println!("{figure} ratio {kind}/raw: {:.2}", stats::median(ratios));
        }
    }
    // Last, what the engine costs over raw reqwest sending the same headers (the targets:
    // latency <= 1.03, throughput >= 0.97, CPU per call at c=64 <= 1.05).
    for (figure, ratios) in fair.named() {
        println!(
            "{figure} ratio facade/raw+headers: {:.2}",
            stats::median(ratios)
        );
    }
}

/// A client's figures over raw reqwest's, one per round (the clients of a round saw the same
/// machine): p50 latency at c=1, calls per second at c=64, CPU per call at c=64 (NaN where
/// the platform gave no reading).
struct Ratios {
    latency: Vec<f64>,
    throughput: Vec<f64>,
    cpu: Vec<f64>,
}

impl Ratios {
    /// The ratios by the names the last lines give them: latency, throughput, cpu.
    fn named(&self) -> [(&'static str, &[f64]); 3] {
        [
            ("latency", &self.latency),
            ("throughput", &self.throughput),
            ("cpu", &self.cpu),
        ]
    }

    fn new(rounds: &[[Figures; Kind::COUNT]], kind: Kind) -> Self {
        Self::against(rounds, kind, Kind::Raw)
    }

    fn against(rounds: &[[Figures; Kind::COUNT]], kind: Kind, floor: Kind) -> Self {
        let pairs = || {
            rounds
                .iter()
                .map(move |r| (&r[kind.index()], &r[floor.index()]))
        };
        Self {
            latency: pairs()
                .map(|(k, raw)| k.p50.as_secs_f64() / raw.p50.as_secs_f64())
                .collect(),
            throughput: pairs()
                .map(|(k, raw)| k.per_second / raw.per_second)
                .collect(),
            cpu: pairs()
                .map(|(k, raw)| match (k.cpu_c64, raw.cpu_c64) {
                    (Some(k), Some(raw)) => k.as_secs_f64() / raw.as_secs_f64(),
                    _ => f64::NAN,
                })
                .collect(),
        }
    }
}
