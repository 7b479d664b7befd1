//! The fault-injection soak (`cargo xtask soak`; ignored in the normal suite): 1,000 creates
//! on distinct wallets, 16 in flight, with a fifth of them applied and then answered badly
//! (500, a dropped connection, a stalled body), some 429s and some failed reads. Once as is,
//! once with reads lagging 500 ms behind writes. It prints one report line per run and fails
//! when a backup is lost, when an applied create is reported as a definite failure, or (without
//! lag) when a create is sent to a wallet already applied.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dynamic_waas::{ErrorKind, RetryPolicy};
use support::{ids, with_wallets, Answer, Fault, Faulty};
use tokio::sync::Semaphore;

const WALLETS: u128 = 1000;
const IN_FLIGHT: usize = 16;

struct Report {
    lost: usize,
    definite_although_applied: usize,
    sent_after_applied: u64,
    created: usize,
    reconciled: usize,
    unknown: usize,
    failed: usize,
    posts: u64,
    gets: u64,
    elapsed: Duration,
}

async fn soak(lag: Duration, seed: u64) -> Report {
    let (builder, wallets) = with_wallets(WALLETS as usize);
    let builder = builder.read_lag(lag);
    let policy = RetryPolicy::default()
        .with_attempt_timeout(Duration::from_secs(1))
        .with_total_timeout(Duration::from_secs(30));
    let f = Arc::new(Faulty::start_with(builder, policy).await);
    let rng = Mutex::new(fastrand::Rng::with_seed(seed));
    f.proxy.rule(move |method, _| {
        let roll = rng.lock().unwrap().f64();
        match method {
            "POST" if roll < 0.2 / 3.0 => Fault::ApplyThenAnswer(Answer::new(500, "{}")),
            "POST" if roll < 0.4 / 3.0 => Fault::ApplyThenDrop,
            "POST" if roll < 0.2 => Fault::ApplyThenStallBody,
            "POST" if roll < 0.25 => {
                Fault::Answer(Answer::new(429, "{}").header("retry-after", "0"))
            }
            "GET" if roll < 0.1 => Fault::Answer(Answer::new(500, "{}")),
            _ => Fault::Pass,
        }
    });
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tasks = Vec::new();
    for wallet in wallets.clone() {
        let (f, gate) = (Arc::clone(&f), Arc::clone(&gate));
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            f.create_for(&wallet).await
        }));
    }
    let mut report = Report {
        lost: 0,
        definite_although_applied: 0,
        sent_after_applied: 0,
        created: 0,
        reconciled: 0,
        unknown: 0,
        failed: 0,
        posts: 0,
        gets: 0,
        elapsed: Duration::ZERO,
    };
    for (task, wallet) in tasks.into_iter().zip(&wallets) {
        let result = task.await.unwrap();
        let applied = f.sandbox.creates_applied_to(&wallet.wallet_id) > 0;
        let stored = f.stored_ids_of(&wallet.wallet_id);
        match &result {
            Ok(created) => {
                if created.is_reconciled() {
                    report.reconciled += 1;
                } else {
                    report.created += 1;
                }
                if ids(created) != stored {
                    report.lost += 1;
                }
            }
            Err(err) if matches!(err.kind(), ErrorKind::OutcomeUnknown { .. }) => {
                report.unknown += 1;
                if applied {
                    report.lost += 1;
                    eprintln!("lost: {err}");
                }
            }
            Err(err) => {
                report.failed += 1;
                if applied {
                    report.definite_although_applied += 1;
                    eprintln!("definite although applied: {err}");
                }
            }
        }
    }
    report.elapsed = started.elapsed();
    report.sent_after_applied = f.proxy.sent_after_applied();
    report.posts = f.proxy.sent("POST");
    report.gets = f.proxy.sent("GET");
    report
}

fn print(name: &str, r: &Report) {
    println!(
        "soak {name}: {WALLETS} creates, {IN_FLIGHT} in flight, {:.1} s: lost {}, definite \
         although applied {}, creates sent after apply {}; created {}, reconciled {}, outcome \
         unknown {}, failed {}; requests: {} POST, {} GET",
        r.elapsed.as_secs_f64(),
        r.lost,
        r.definite_although_applied,
        r.sent_after_applied,
        r.created,
        r.reconciled,
        r.unknown,
        r.failed,
        r.posts,
        r.gets,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak: run it with `cargo xtask soak`"]
async fn soak_with_ambiguous_faults() {
    let plain = soak(Duration::ZERO, 1).await;
    print("without read lag", &plain);
    let lagging = soak(Duration::from_millis(500), 2).await;
    print("with reads 500 ms behind", &lagging);
    for r in [&plain, &lagging] {
        assert_eq!(r.lost, 0, "backups lost");
        assert_eq!(r.definite_although_applied, 0);
    }
    assert_eq!(
        plain.sent_after_applied, 0,
        "creates sent to applied wallets"
    );
}
