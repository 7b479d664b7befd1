//! What each command does.

use std::io::Write;

use dynamic_waas::{Client, Pacing, RetryPolicy};
#[cfg(feature = "sandbox")]
use dynamic_waas_sandbox::{Sandbox, Seed};

#[cfg(feature = "sandbox")]
use crate::args::SandboxCommand;
use crate::args::{
    BackupLocationsCommand, Command, CompletionsArgs, CreateArgs, GlobalArgs, WalletCommand,
    WalletIds,
};
use crate::exit::CliError;
use crate::output::Printer;
#[cfg(feature = "sandbox")]
use crate::serve;

/// The ids a sandbox was seeded with, the defaults of the id flags under `--sandbox`.
struct SeededIds {
    environment_id: String,
    wallet_id: String,
    user_id: String,
}

/// Runs `command`; the result is printed by `printer`, errors are returned.
pub async fn run(global: &GlobalArgs, command: Command, printer: Printer) -> Result<(), CliError> {
    match command {
        Command::BackupLocations(BackupLocationsCommand::Create(args)) => {
            create(global, args, printer).await
        }
        Command::BackupLocations(BackupLocationsCommand::CreateMany(args)) => {
            crate::bulk::create_many(global, args, printer).await
        }
        Command::Wallet(WalletCommand::Get(ids)) => get_wallet(global, ids, printer).await,
        #[cfg(feature = "sandbox")]
        Command::Sandbox(SandboxCommand::Serve(args)) => serve::serve(args, printer).await,
        Command::Completions(args) => completions(args),
    }
}

/// `completions SHELL`: the script on stdout.
fn completions(args: CompletionsArgs) -> Result<(), CliError> {
    let mut script = Vec::new();
    // Written to memory first: clap_complete panics when its writer fails.
    clap_complete::generate(
        args.shell,
        &mut crate::command(),
        "dynamic-waas",
        &mut script,
    );
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .map_err(stdout_error)
}

async fn create(global: &GlobalArgs, args: CreateArgs, printer: Printer) -> Result<(), CliError> {
    let locations = args
        .location
        .check(&args.location.locations)
        .map_err(CliError::InvalidInput)?;
    let locations: Vec<_> = locations.iter().map(|l| l.request.clone()).collect();
    let target = Target::new(global).await;
    let seed = target.seeded_ids();
    let (environment_id, wallet_id) = wallet_ids(args.ids, seed.as_ref())?;
    let user_id = required(
        args.user_id,
        seed.as_ref().map(|s| s.user_id.as_str()),
        "--user-id",
    )?;
    let client = target.client(global, Pacing::default())?;
    let mut call = client.create_backup_locations(environment_id, wallet_id, user_id, locations);
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
    let seed = target.seeded_ids();
    let (environment_id, wallet_id) = wallet_ids(ids, seed.as_ref())?;
    let client = target.client(global, Pacing::default())?;
    let (wallet, raw) = client
        .get_wallet(environment_id, wallet_id)
        .with_raw_body()
        .await?;
    printer.wallet(&wallet, &raw).map_err(stdout_error)
}

/// The environment and wallet ids given, else the sandbox's seeded ones.
fn wallet_ids(ids: WalletIds, seed: Option<&SeededIds>) -> Result<(String, String), CliError> {
    Ok((
        required(
            ids.environment_id,
            seed.map(|s| s.environment_id.as_str()),
            "--environment-id",
        )?,
        required(
            ids.wallet_id,
            seed.map(|s| s.wallet_id.as_str()),
            "--wallet-id",
        )?,
    ))
}

/// The given id, else the sandbox's seeded one.
fn required(given: Option<String>, seeded: Option<&str>, flag: &str) -> Result<String, CliError> {
    given.or_else(|| seeded.map(str::to_owned)).ok_or_else(|| {
        let hint = if cfg!(feature = "sandbox") {
            " (or use --sandbox)"
        } else {
            ""
        };
        CliError::InvalidInput(format!("{flag} is required{hint}"))
    })
}

fn stdout_error(err: std::io::Error) -> CliError {
    CliError::Other(format!("could not write the result to stdout: {err}"))
}

/// Where calls go: the configured API, or a sandbox started for this command.
pub enum Target {
    Api,
    #[cfg(feature = "sandbox")]
    Sandbox(Sandbox, Seed),
}

impl Target {
    pub async fn new(global: &GlobalArgs) -> Self {
        #[cfg(feature = "sandbox")]
        return Self::seeded(global, |builder, _| Ok(builder))
            .await
            .unwrap_or(Target::Api);
        #[cfg(not(feature = "sandbox"))]
        {
            let _ = global;
            Target::Api
        }
    }

    /// With `--sandbox`, a sandbox seeded with the example and whatever `more` adds (given the
    /// example seed); else the API.
    #[cfg(feature = "sandbox")]
    pub async fn seeded(
        global: &GlobalArgs,
        more: impl FnOnce(
            dynamic_waas_sandbox::SandboxBuilder,
            &Seed,
        ) -> Result<dynamic_waas_sandbox::SandboxBuilder, CliError>,
    ) -> Result<Self, CliError> {
        if !global.sandbox {
            return Ok(Target::Api);
        }
        let seed = Seed::example();
        let sandbox = Sandbox::start(more(seed.builder(), &seed)?).await;
        tracing::debug!(uri = %sandbox.uri(), "sandbox started");
        Ok(Target::Sandbox(sandbox, seed))
    }

    fn seeded_ids(&self) -> Option<SeededIds> {
        match self {
            Target::Api => None,
            #[cfg(feature = "sandbox")]
            Target::Sandbox(_, seed) => Some(SeededIds {
                environment_id: seed.environment_id.to_string(),
                wallet_id: seed.wallet_id.to_string(),
                user_id: seed.user_id.to_string(),
            }),
        }
    }

    /// A client for the target, paced by `pacing`; the configuration is checked, nothing is
    /// sent.
    pub fn client(&self, global: &GlobalArgs, pacing: Pacing) -> Result<Client, CliError> {
        let builder = match self {
            Target::Api => Client::builder()
                .base_url(global.base_url.as_str())
                .token_from_env()?,
            #[cfg(feature = "sandbox")]
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
        let client = builder.retry_policy(policy).pacing(pacing).build()?;
        tracing::debug!(base_url = client.base_url(), "client configured");
        Ok(client)
    }
}
