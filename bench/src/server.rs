//! The loopback server every client talks to: hyper's HTTP/1.1 server with nothing on top,
//! so that it costs the same for every client and as little as possible.

use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The API's documented 201 answer, the same fixture the sdk's tests use.
const SEED_201: &str = include_str!("../../tests/fixtures/seed_response_201.json");

pub const TOKEN: &str = "dyn_bench";
const EXPECTED_AUTHORIZATION: &str = "Bearer dyn_bench";

/// Binds an ephemeral loopback port, serves on the current runtime, and returns the base URL.
pub async fn start() -> std::io::Result<String> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            // Latency at concurrency 1 is what is measured: no Nagle delay on small answers.
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                // A connection the client drops at the end of a run ends here; nothing to report.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), hyper::service::service_fn(answer))
                    .await;
            });
        }
    });
    Ok(format!("http://{addr}"))
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let authorized = request
        .headers()
        .get(AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == EXPECTED_AUTHORIZATION.as_bytes());
    let route = request.method() == Method::POST
        && request
            .uri()
            .path()
            .ends_with("/keyShares/backup/locations");
    // Read the whole body, as a real server would, so the connection stays reusable.
    let body_ok = request.into_body().collect().await.is_ok();
    let (status, body) = match (route, authorized, body_ok) {
        (true, true, true) => (StatusCode::CREATED, Bytes::from_static(SEED_201.as_bytes())),
        (false, _, _) => (StatusCode::NOT_FOUND, Bytes::new()),
        (_, false, _) => (StatusCode::UNAUTHORIZED, Bytes::new()),
        (_, _, false) => (StatusCode::BAD_REQUEST, Bytes::new()),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}
