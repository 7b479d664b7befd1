//! `sandbox serve`: a seeded sandbox on loopback until Ctrl-C.

use std::net::Ipv4Addr;

use dynamic_waas_sandbox::{Sandbox, Seed};
use serde_json::json;

use crate::args::ServeArgs;
use crate::exit::CliError;
use crate::output::Printer;

pub async fn serve(args: ServeArgs, printer: Printer) -> Result<(), CliError> {
    let seed = Seed::example();
    let sandbox = match args.port {
        None => Sandbox::start(seed.builder()).await,
        Some(port) => {
            let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                .map_err(|e| CliError::Other(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
            Sandbox::start_on(seed.builder(), listener).await
        }
    };
    let url = sandbox.uri();
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
