//! `sandbox serve`: a seeded sandbox on loopback until Ctrl-C.

use std::net::{Ipv4Addr, SocketAddr};

use dynamic_waas::testing::Sandbox;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use crate::args::ServeArgs;
use crate::exit::CliError;
use crate::output::Printer;

pub async fn serve(args: ServeArgs, printer: Printer) -> Result<(), CliError> {
    let (sandbox, seed) = Sandbox::seeded().await;
    // The sandbox picks a free port; a requested one is forwarded to it.
    let url = match args.port {
        None => sandbox.uri(),
        Some(port) => {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                .await
                .map_err(|e| CliError::Other(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
            let upstream = sandbox_addr(&sandbox.uri())?;
            tokio::spawn(forward(listener, upstream));
            format!("http://127.0.0.1:{port}")
        }
    };
    let document = json!({
        "url": url,
        "token": seed.token,
        "environmentId": seed.environment_id,
        "walletId": seed.wallet_id,
        "userId": seed.user_id,
    });
    let text = format!(
        "Sandbox listening on {url}\n\
         \x20 export DYNAMIC_BASE_URL={url}\n\
         \x20 export DYNAMIC_API_TOKEN={}\n\
         \x20 environment id {}\n\
         \x20 wallet id      {}\n\
         \x20 user id        {}\n",
        seed.token, seed.environment_id, seed.wallet_id, seed.user_id
    );
    printer
        .value(&document, &text)
        .map_err(|e| CliError::Other(format!("could not write to stdout: {e}")))?;
    eprintln!("The sandbox runs until Ctrl-C.");
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| CliError::Other(format!("cannot wait for Ctrl-C: {e}")))?;
    eprintln!("stopped");
    Ok(())
}

fn sandbox_addr(uri: &str) -> Result<SocketAddr, CliError> {
    uri.strip_prefix("http://")
        .and_then(|rest| rest.trim_end_matches('/').parse().ok())
        .ok_or_else(|| CliError::Other(format!("unexpected sandbox address {uri}")))
}

async fn forward(listener: TcpListener, upstream: SocketAddr) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            match TcpStream::connect(upstream).await {
                Ok(mut outbound) => {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
                Err(e) => tracing::warn!(error = %e, "cannot reach the sandbox"),
            }
        });
    }
}
