//! The token never travels in clear text through a proxy from the environment. Its own test
//! binary: proxy variables are process-wide, and every client built here reads them.

use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

use dynamic_waas::{Client, RetryPolicy};
use dynamic_waas_sandbox::Sandbox;

const PROXY_VARS: [&str; 6] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
];

/// What one client sends to a proxy listener: the bytes of its first connection, or `None`
/// when nothing connected.
fn first_connection(listener: &TcpListener) -> Option<Vec<u8>> {
    let (mut socket, _) = listener.accept().ok()?;
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut seen = vec![0u8; 4096];
    let n = socket.read(&mut seen).unwrap_or(0);
    seen.truncate(n);
    Some(seen)
}

#[tokio::test]
async fn plain_http_bypasses_the_proxy_and_https_tunnels_through_it() {
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    for var in PROXY_VARS {
        std::env::set_var(var, &proxy_url);
    }
    std::env::remove_var("NO_PROXY");
    std::env::remove_var("no_proxy");
    let policy = RetryPolicy::no_retries().with_total_timeout(Duration::from_secs(3));

    // Plain http to loopback: straight to the server.
    let (sandbox, seed) = Sandbox::seeded().await;
    let client = Client::builder()
        .base_url(sandbox.uri())
        .token(seed.token.clone())
        .retry_policy(policy.clone())
        .build()
        .unwrap();
    client
        .get_wallet(&seed.environment_id, &seed.wallet_id)
        .await
        .unwrap();
    proxy.set_nonblocking(true).unwrap();
    assert!(
        first_connection(&proxy).is_none(),
        "plain http went to the proxy"
    );
    proxy.set_nonblocking(false).unwrap();

    // https: through the proxy, as a tunnel; the token is inside TLS, never in the clear.
    let client = Client::builder()
        .base_url("https://api.example.invalid/api/v0")
        .token("dyn_secret_never_in_clear")
        .retry_policy(policy)
        .build()
        .unwrap();
    let listener = proxy.try_clone().unwrap();
    let seen = std::thread::spawn(move || first_connection(&listener));
    let err = client
        .get_wallet(&seed.environment_id, &seed.wallet_id)
        .await
        .unwrap_err();
    let seen =
        String::from_utf8_lossy(&seen.join().unwrap().expect("https used the proxy")).into_owned();
    assert!(
        seen.starts_with("CONNECT api.example.invalid:443"),
        "{seen}"
    );
    assert!(!seen.contains("dyn_secret"), "{seen}");
    assert!(
        !seen.to_ascii_lowercase().contains("authorization"),
        "{seen}"
    );
    assert!(!err.to_string().contains("dyn_secret"));
}
