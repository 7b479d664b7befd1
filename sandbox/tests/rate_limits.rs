//! The rate limits per client address and per environment, over real HTTP: clients told
//! apart by `X-Forwarded-For`, the environment by the path, answered as upstream answers.

use std::time::{Duration, Instant};

use dynamic_waas_sandbox::{RateLimit, RateLimits, Sandbox, Seed};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Client, Response};
use serde_json::{json, Value};

/// Long enough that no window frees during a test that does not wait for it.
const MINUTE: Duration = Duration::from_secs(60);

/// A client that says it is the machine at `address`, as upstream's load balancer would.
fn machine(address: &str) -> Client {
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-for", HeaderValue::from_str(address).unwrap());
    Client::builder().default_headers(headers).build().unwrap()
}

async fn start(limits: RateLimits) -> (Sandbox, Seed) {
    let seed = Seed::example();
    let sandbox = seed.builder().rate_limits(limits).start().await;
    (sandbox, seed)
}

/// A read of the seed's wallet.
async fn read(client: &Client, sandbox: &Sandbox, seed: &Seed) -> Response {
    let url = format!(
        "{}/environments/{}/waas/{}",
        sandbox.uri(),
        seed.environment_id,
        seed.wallet_id
    );
    client
        .get(url)
        .bearer_auth(&seed.token)
        .send()
        .await
        .unwrap()
}

/// A request on a route the sandbox does not know, and under no environment.
async fn unknown_route(client: &Client, sandbox: &Sandbox) -> Response {
    let url = format!("{}/no/such/route", sandbox.uri());
    client.get(url).send().await.unwrap()
}

async fn status(client: &Client, sandbox: &Sandbox, seed: &Seed) -> u16 {
    read(client, sandbox, seed).await.status().as_u16()
}

fn retry_after(response: &Response) -> &str {
    response.headers()[RETRY_AFTER].to_str().unwrap()
}

#[tokio::test]
async fn each_client_address_has_a_window_of_its_own() {
    let (sandbox, seed) = start(RateLimits::new().per_client(RateLimit::new(2, MINUTE))).await;
    let (a, b) = (machine("203.0.113.1"), machine("203.0.113.2"));
    // Without X-Forwarded-For: the one loopback client.
    let loopback = Client::new();
    for client in [&a, &b, &loopback] {
        assert_eq!(status(client, &sandbox, &seed).await, 200);
        assert_eq!(status(client, &sandbox, &seed).await, 200);
        assert_eq!(status(client, &sandbox, &seed).await, 429);
    }
    // Only the first address of a forwarded chain counts.
    let behind_a_proxy = machine("203.0.113.9, 203.0.113.1");
    assert_eq!(status(&behind_a_proxy, &sandbox, &seed).await, 200);
    assert_eq!(sandbox.rate_limited(), 3);
    assert_eq!(sandbox.requests_received(), 10);
}

#[tokio::test]
async fn the_environment_window_is_shared_by_every_client() {
    let limits = RateLimits::new()
        .per_client(RateLimit::new(2, MINUTE))
        .per_environment(RateLimit::new(3, MINUTE));
    let (sandbox, seed) = start(limits).await;
    let (a, b) = (machine("203.0.113.1"), machine("203.0.113.2"));
    assert_eq!(status(&a, &sandbox, &seed).await, 200);
    assert_eq!(status(&a, &sandbox, &seed).await, 200);
    assert_eq!(status(&b, &sandbox, &seed).await, 200);
    // b has room in its own window, but the environment's is full.
    assert_eq!(status(&b, &sandbox, &seed).await, 429);
    assert_eq!(status(&machine("203.0.113.3"), &sandbox, &seed).await, 429);
    // A request with no environment counts against its client only.
    let unknown = unknown_route(&b, &sandbox).await;
    assert_eq!(unknown.status().as_u16(), 404);
    assert_eq!(sandbox.rate_limited(), 2);
}

#[tokio::test]
async fn a_refused_request_is_counted_in_no_window() {
    let limits = RateLimits::new()
        .per_client(RateLimit::new(1, MINUTE))
        .per_environment(RateLimit::new(2, MINUTE));
    let (sandbox, seed) = start(limits).await;
    let a = machine("203.0.113.1");
    assert_eq!(status(&a, &sandbox, &seed).await, 200);
    for _ in 0..5 {
        assert_eq!(status(&a, &sandbox, &seed).await, 429);
    }
    // Had a's refusals counted in the environment's window, it would be full.
    assert_eq!(status(&machine("203.0.113.2"), &sandbox, &seed).await, 200);
    assert_eq!(sandbox.rate_limited(), 5);
    assert_eq!(sandbox.requests_received(), 7);
    // The log has every request, the refused ones with why.
    let log = sandbox.requests();
    assert_eq!(log.len(), 7);
    assert_eq!(log[1].status, 429);
    assert!(
        log[1].outcome.contains("client \"203.0.113.1\"'s window"),
        "{}",
        log[1].outcome
    );
}

#[tokio::test]
async fn retry_after_is_the_longer_wait_of_the_windows_that_refused() {
    let limits = RateLimits::new()
        .per_client(RateLimit::new(1, Duration::from_secs(2)))
        .per_environment(RateLimit::new(1, Duration::from_secs(5)));
    let (sandbox, seed) = start(limits).await;
    let a = machine("203.0.113.1");
    assert_eq!(status(&a, &sandbox, &seed).await, 200);
    // Both windows are full: the environment's frees last.
    assert_eq!(retry_after(&read(&a, &sandbox, &seed).await), "5");
    // Only the environment's is full for b.
    let b = machine("203.0.113.2");
    assert_eq!(retry_after(&read(&b, &sandbox, &seed).await), "5");
    // Only a's is full on a route with no environment.
    let unknown = unknown_route(&a, &sandbox).await;
    assert_eq!(unknown.status().as_u16(), 429);
    assert_eq!(retry_after(&unknown), "2");
}

#[tokio::test]
async fn the_time_scale_shrinks_the_windows() {
    // Two requests a minute, a minute lasting 200 ms.
    let limits = RateLimits::new()
        .per_client(RateLimit::new(2, MINUTE))
        .time_scale(300.0);
    let window = Duration::from_millis(200);
    assert_eq!(limits.client_limit().unwrap().window(), window);
    let (sandbox, seed) = start(limits).await;
    let a = machine("203.0.113.1");
    let started = Instant::now();
    assert_eq!(status(&a, &sandbox, &seed).await, 200);
    assert_eq!(status(&a, &sandbox, &seed).await, 200);
    let refused = read(&a, &sandbox, &seed).await;
    assert!(
        started.elapsed() < window,
        "the test machine is too slow for this window"
    );
    assert_eq!(refused.status().as_u16(), 429);
    // Less than a second to wait, said as 1.
    assert_eq!(retry_after(&refused), "1");
    tokio::time::sleep(window).await;
    assert_eq!(status(&a, &sandbox, &seed).await, 200);
}

#[tokio::test]
async fn the_429_is_upstreams() {
    let (sandbox, seed) = start(RateLimits::new().per_client(RateLimit::new(0, MINUTE))).await;
    // The limits stand in front of the service: even a request with no token is refused.
    let response = machine("203.0.113.1")
        .get(format!(
            "{}/environments/{}/waas/{}",
            sandbox.uri(),
            seed.environment_id,
            seed.wallet_id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(retry_after(&response), "60");
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "Too many requests. Please try again later."})
    );
}

#[tokio::test]
async fn limits_set_at_run_time_start_empty_and_keep_the_overall_limit_apart() {
    let (sandbox, seed) = Sandbox::seeded().await;
    let a = machine("203.0.113.1");
    sandbox.set_rate_limit(Some(RateLimit::new(3, MINUTE)));
    sandbox.set_rate_limits(Some(
        RateLimits::new().per_client(RateLimit::new(1, MINUTE)),
    ));
    assert_eq!(status(&a, &sandbox, &seed).await, 200);
    assert_eq!(status(&a, &sandbox, &seed).await, 429);
    // Fresh per-client windows; the overall one still holds a's first request.
    sandbox.set_rate_limits(Some(
        RateLimits::new().per_client(RateLimit::new(1, MINUTE)),
    ));
    assert_eq!(status(&a, &sandbox, &seed).await, 200);
    assert_eq!(status(&machine("203.0.113.2"), &sandbox, &seed).await, 200);
    // The overall window (3) is full, whoever asks.
    assert_eq!(status(&machine("203.0.113.3"), &sandbox, &seed).await, 429);
    sandbox.set_rate_limit(None);
    assert_eq!(status(&machine("203.0.113.3"), &sandbox, &seed).await, 200);
    sandbox.set_rate_limits(None);
    assert_eq!(status(&a, &sandbox, &seed).await, 200);
    assert_eq!(sandbox.rate_limited(), 2);
}

#[tokio::test]
async fn upstreams_limits_scaled_admit_a_clients_minute_in_a_fraction_of_a_second() {
    // 1,500 a minute per client, a minute lasting 60 s / 6 = 10 s: the 1,501st read from
    // one client in a burst is refused, and another client still has its own 1,500.
    let (sandbox, seed) = start(RateLimits::upstream().time_scale(6.0)).await;
    let a = machine("203.0.113.1");
    // Unknown routes: no environment, so only the client's window counts (and the
    // sandbox's work per request is least).
    for _ in 0..1500 {
        assert_eq!(unknown_route(&a, &sandbox).await.status().as_u16(), 404);
    }
    let refused = unknown_route(&a, &sandbox).await;
    assert_eq!(refused.status().as_u16(), 429);
    // 10 s less the time the burst took, rounded up.
    let seconds: u64 = retry_after(&refused).parse().unwrap();
    assert!((1..=10).contains(&seconds), "{seconds}");
    assert_eq!(status(&machine("203.0.113.2"), &sandbox, &seed).await, 200);
    assert_eq!(sandbox.rate_limited(), 1);
    assert_eq!(sandbox.requests_received(), 1502);
}
