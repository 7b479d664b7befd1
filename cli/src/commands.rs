//! What each command does.

use dynamic_waas::{BackupLocation, Client, RetryPolicy};
use dynamic_waas_sandbox::{Sandbox, Seed};

use crate::args::{
    BackupLocationsCommand, Command, CreateArgs, GlobalArgs, SandboxCommand, WalletCommand,
    WalletIds,
};
use crate::exit::CliError;
use crate::output::Printer;
use crate::serve;

/// Runs `command`; the result is printed by `printer`, errors are returned.
pub async fn run(global: &GlobalArgs, command: Command, printer: Printer) -> Result<(), CliError> {
    match command {
        Command::BackupLocations(BackupLocationsCommand::Create(args)) => {
            create(global, args, printer).await
        }
        Command::Wallet(WalletCommand::Get(ids)) => get_wallet(global, ids, printer).await,
        Command::Sandbox(SandboxCommand::Serve(args)) => serve::serve(args, printer).await,
    }
}

async fn create(global: &GlobalArgs, args: CreateArgs, printer: Printer) -> Result<(), CliError> {
    if !args.allow_unknown_location {
        if let Some(unknown) = args.locations.iter().find(|l| l.location.is_unknown()) {
            return Err(CliError::InvalidInput(format!(
                "unknown location {:?}: known locations are {} (pass --allow-unknown-location \
                 to send it anyway)",
                unknown.location.as_str(),
                BackupLocation::KNOWN.join(", ")
            )));
        }
    }
    let target = Target::new(global).await;
    let seed = target.seed();
    let environment_id = required(
        args.ids.environment_id,
        seed.map(|s| s.environment_id.as_str()),
        "--environment-id",
    )?;
    let wallet_id = required(
        args.ids.wallet_id,
        seed.map(|s| s.wallet_id.as_str()),
        "--wallet-id",
    )?;
    let user_id = required(
        args.user_id,
        seed.map(|s| s.user_id.to_string()).as_deref(),
        "--user-id",
    )?;
    let client = target.client(global)?;
    let mut call = client.create_backup_locations(
        environment_id,
        wallet_id,
        user_id,
        args.locations.into_iter().map(|l| l.request),
    );
    if let Some(share_set_id) = args.share_set_id {
        call = call.share_set_id(share_set_id);
    }
    let created = call.await?;
    printer.created(&created).map_err(|err| {
        // The ids must reach someone: the server will refuse to create them again.
        crate::output::created_to_stderr(&created);
        CliError::ResultOnStderr(err.to_string())
    })
}

async fn get_wallet(global: &GlobalArgs, ids: WalletIds, printer: Printer) -> Result<(), CliError> {
    let target = Target::new(global).await;
    let seed = target.seed();
    let environment_id = required(
        ids.environment_id,
        seed.map(|s| s.environment_id.as_str()),
        "--environment-id",
    )?;
    let wallet_id = required(
        ids.wallet_id,
        seed.map(|s| s.wallet_id.as_str()),
        "--wallet-id",
    )?;
    let client = target.client(global)?;
    let (wallet, raw) = client
        .get_wallet(environment_id, wallet_id)
        .with_raw_body()
        .await?;
    printer.wallet(&wallet, &raw).map_err(stdout_error)
}

/// The given id, else the sandbox's seeded one.
fn required(given: Option<String>, seeded: Option<&str>, flag: &str) -> Result<String, CliError> {
    given
        .or_else(|| seeded.map(str::to_owned))
        .ok_or_else(|| CliError::InvalidInput(format!("{flag} is required (or use --sandbox)")))
}

fn stdout_error(err: std::io::Error) -> CliError {
    CliError::Other(format!("could not write the result to stdout: {err}"))
}

/// Where calls go: the configured API, or a sandbox started for this command.
enum Target {
    Api,
    Sandbox(Sandbox, Seed),
}

impl Target {
    async fn new(global: &GlobalArgs) -> Self {
        if global.sandbox {
            let (sandbox, seed) = Sandbox::seeded().await;
            tracing::debug!(uri = %sandbox.uri(), "sandbox started");
            Target::Sandbox(sandbox, seed)
        } else {
            Target::Api
        }
    }

    fn seed(&self) -> Option<&Seed> {
        match self {
            Target::Api => None,
            Target::Sandbox(_, seed) => Some(seed),
        }
    }

    /// A client for the target; the configuration is checked, nothing is sent.
    fn client(&self, global: &GlobalArgs) -> Result<Client, CliError> {
        let builder = match self {
            Target::Api => Client::builder()
                .base_url(global.base_url.as_str())
                .token_from_env()?,
            Target::Sandbox(sandbox, seed) => Client::builder()
                .base_url(sandbox.uri())
                .token(seed.token.clone()),
        };
        let mut policy = RetryPolicy::default();
        if let Some(attempts) = global.max_attempts {
            policy = policy.max_attempts(attempts);
        }
        let mut builder = builder;
        if let Some(timeout) = global.timeout {
            // The whole call gets room for every attempt, and never less than the default.
            let all_attempts = timeout.saturating_mul(policy.get_max_attempts());
            let total = all_attempts.max(policy.get_total_timeout());
            policy = policy.attempt_timeout(timeout).total_timeout(total);
            builder = builder.connect_timeout(timeout.min(dynamic_waas::DEFAULT_CONNECT_TIMEOUT));
        }
        let client = builder.retry_policy(policy).build()?;
        tracing::debug!(base_url = client.base_url(), "client configured");
        Ok(client)
    }
}
