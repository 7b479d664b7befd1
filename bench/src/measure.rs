//! The measurements: rounds of latency and throughput, allocation counts, peak memory.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stats_alloc::Region;
use tokio::task::JoinSet;

use crate::clients::{BoxError, Clients, Kind};
use crate::{server, stats, GLOBAL};

/// In-flight calls for the throughput figure and the peak-memory run.
pub const CONCURRENCY: usize = 64;
/// Calls of the peak-memory run.
pub const PEAK_CALLS: usize = 10_000;
/// The argument that makes the binary a peak-memory child.
pub const PEAK_CHILD: &str = "--peak-child";

/// How much to measure. Each round measures every client in short blocks (tens of
/// milliseconds) that alternate between the clients, so that a noisy moment of the machine
/// (another build, say) hits all of them alike; ratios are taken within a round.
pub struct Plan {
    pub rounds: usize,
    pub blocks: usize,
    /// Sequential calls per block (latency at concurrency 1).
    pub latency_block: usize,
    /// Calls per block at concurrency 64 (throughput).
    pub throughput_block: usize,
    pub warmup_calls: usize,
    pub alloc_calls: usize,
}

impl Plan {
    pub const FULL: Plan = Plan {
        rounds: 15,
        blocks: 10,
        latency_block: 200,
        throughput_block: 1_000,
        warmup_calls: 1_000,
        alloc_calls: 2_000,
    };
    pub const QUICK: Plan = Plan {
        rounds: 3,
        blocks: 4,
        latency_block: 100,
        throughput_block: 500,
        warmup_calls: 200,
        alloc_calls: 300,
    };

    pub fn latency_calls(&self) -> usize {
        self.blocks * self.latency_block
    }

    pub fn throughput_calls(&self) -> usize {
        self.blocks * self.throughput_block
    }
}

/// One client's figures in one round.
#[derive(Clone, Copy, Default)]
pub struct Figures {
    pub p50: Duration,
    pub p99: Duration,
    pub per_second: f64,
    /// Process CPU time per call (server included), where the platform tells it.
    pub cpu_c1: Option<Duration>,
    pub cpu_c64: Option<Duration>,
}

/// A round: figures per client, indexed by [`Kind::index`].
pub type Round = [Figures; Kind::COUNT];

/// Allocations per call. The server runs in this process, so its share (the same for every
/// client) is included; the differences between clients are the clients' own.
#[derive(Clone, Copy, Default)]
pub struct Allocations {
    pub allocs: f64,
    pub reallocs: f64,
    pub bytes: f64,
}

pub struct Measured {
    pub rounds: Vec<Round>,
    pub allocations: [Allocations; Kind::COUNT],
}

pub async fn all(plan: &Plan) -> Result<Measured, BoxError> {
    let clients = Arc::new(Clients::new(&server::start().await?)?);

    // Warm-up: connections opened (as many as the concurrency), code and allocator caches hot.
    for kind in Kind::ALL {
        sequential(&clients, kind, plan.warmup_calls).await?;
        concurrent(&clients, kind, plan.warmup_calls.max(CONCURRENCY * 10)).await?;
    }

    let mut rounds = Vec::with_capacity(plan.rounds);
    for r in 0..plan.rounds {
        let round = round(&clients, plan, r).await?;
        eprintln!(
            "round {}/{}: {}",
            r + 1,
            plan.rounds,
            Kind::ALL
                .map(|kind| {
                    let f = &round[kind.index()];
                    format!(
                        "{kind} {:.1} µs {:.0}/s",
                        f.p50.as_secs_f64() * 1e6,
                        f.per_second
                    )
                })
                .join(", ")
        );
        rounds.push(round);
    }

    let mut allocations = [Allocations::default(); Kind::COUNT];
    for kind in Kind::ALL {
        allocations[kind.index()] = count_allocations(&clients, kind, plan.alloc_calls).await?;
    }
    Ok(Measured {
        rounds,
        allocations,
    })
}

async fn round(clients: &Arc<Clients>, plan: &Plan, r: usize) -> Result<Round, BoxError> {
    // Who goes first changes every round, so that no client always follows the same one.
    let order: [Kind; Kind::COUNT] = std::array::from_fn(|i| Kind::ALL[(i + r) % Kind::COUNT]);

    let mut samples: [Vec<Duration>; Kind::COUNT] = Default::default();
    let mut cpu_c1 = [Some(Duration::ZERO); Kind::COUNT];
    for _ in 0..plan.blocks {
        for kind in order {
            let cpu = CpuClock::start();
            samples[kind.index()].extend(sequential(clients, kind, plan.latency_block).await?);
            cpu.add_to(&mut cpu_c1[kind.index()]);
        }
    }

    let mut busy = [Duration::ZERO; Kind::COUNT];
    let mut cpu_c64 = [Some(Duration::ZERO); Kind::COUNT];
    for _ in 0..plan.blocks {
        for kind in order {
            let cpu = CpuClock::start();
            let start = Instant::now();
            concurrent(clients, kind, plan.throughput_block).await?;
            busy[kind.index()] += start.elapsed();
            cpu.add_to(&mut cpu_c64[kind.index()]);
        }
    }

    let c1 = plan.latency_calls() as u32;
    let c64 = plan.throughput_calls() as u32;
    Ok(std::array::from_fn(|k| {
        samples[k].sort_unstable();
        Figures {
            p50: stats::percentile(&samples[k], 50.0),
            p99: stats::percentile(&samples[k], 99.0),
            per_second: f64::from(c64) / busy[k].as_secs_f64(),
            cpu_c1: cpu_c1[k].map(|t| t / c1),
            cpu_c64: cpu_c64[k].map(|t| t / c64),
        }
    }))
}

/// `calls` calls one after the other; the latency of each.
pub async fn sequential(
    clients: &Clients,
    kind: Kind,
    calls: usize,
) -> Result<Vec<Duration>, BoxError> {
    let mut latencies = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        clients.call(kind).await?;
        latencies.push(start.elapsed());
    }
    Ok(latencies)
}

/// `calls` calls, `CONCURRENCY` at a time.
pub async fn concurrent(clients: &Arc<Clients>, kind: Kind, calls: usize) -> Result<(), BoxError> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..CONCURRENCY {
        let clients = Arc::clone(clients);
        let next = Arc::clone(&next);
        workers.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < calls {
                clients.call(kind).await?;
            }
            Ok::<(), BoxError>(())
        });
    }
    while let Some(worker) = workers.join_next().await {
        worker??;
    }
    Ok(())
}

async fn count_allocations(
    clients: &Clients,
    kind: Kind,
    calls: usize,
) -> Result<Allocations, BoxError> {
    let region = Region::new(GLOBAL);
    for _ in 0..calls {
        clients.call(kind).await?;
    }
    let change = region.change();
    let per_call = |n: usize| n as f64 / calls as f64;
    Ok(Allocations {
        allocs: per_call(change.allocations),
        reallocs: per_call(change.reallocations),
        bytes: per_call(change.bytes_allocated),
    })
}

/// The CPU time this process has used, read at the start of a block.
struct CpuClock(Option<Duration>);

impl CpuClock {
    fn start() -> Self {
        Self(process_cpu_time())
    }

    /// Adds the CPU time since `start` to `total`; `None` once any reading failed.
    fn add_to(self, total: &mut Option<Duration>) {
        *total = match (*total, self.0, process_cpu_time()) {
            // Saturating: a thread that exited in between takes its time with it.
            (Some(sum), Some(before), Some(after)) => Some(sum + after.saturating_sub(before)),
            _ => None,
        };
    }
}

/// CPU time of all this process's threads, in nanoseconds (Linux: the first field of
/// /proc/self/task/*/schedstat). Unlike wall-clock throughput, other processes on the
/// machine hardly change it.
fn process_cpu_time() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let schedstat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += schedstat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// Peak resident memory of a fresh process that makes `PEAK_CALLS` calls with one client,
/// `CONCURRENCY` at a time, and what it held before them (KiB).
pub struct Peak {
    pub before_kib: u64,
    pub peak_kib: u64,
}

/// One child process per client: a process's peak can be read, never reset, and memory one
/// client freed stays mapped for the next.
pub fn peak_memory() -> Result<[Option<Peak>; Kind::COUNT], BoxError> {
    let exe = std::env::current_exe()?;
    let mut peaks: [Option<Peak>; Kind::COUNT] = Default::default();
    for kind in Kind::ALL {
        let output = Command::new(&exe)
            .args([PEAK_CHILD, kind.name()])
            .output()?;
        if !output.status.success() {
            return Err(format!(
                "the peak-memory run of {kind} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )
            .into());
        }
        // The child prints `<before KiB> <peak KiB>`, or nothing without /proc.
        let text = String::from_utf8_lossy(&output.stdout);
        let mut numbers = text.split_whitespace().map(str::parse::<u64>);
        if let (Some(Ok(before_kib)), Some(Ok(peak_kib))) = (numbers.next(), numbers.next()) {
            peaks[kind.index()] = Some(Peak {
                before_kib,
                peak_kib,
            });
        }
    }
    Ok(peaks)
}

pub fn peak_child(kind: Kind) -> Result<(), BoxError> {
    crate::runtime()?.block_on(async {
        let clients = Arc::new(Clients::new(&server::start().await?)?);
        // Connections and lazily built state in place first, so that the growth is the calls'.
        concurrent(&clients, kind, CONCURRENCY * 2).await?;
        let before = proc_status_kib("VmRSS:");
        concurrent(&clients, kind, PEAK_CALLS).await?;
        if let (Some(before), Some(peak)) = (before, proc_status_kib("VmHWM:")) {
            println!("{before} {peak}");
        }
        Ok(())
    })
}

/// A `kB` field of /proc/self/status (Linux only).
fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}
