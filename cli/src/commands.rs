//! What each command does.

use std::io::Write;

use dynamic_waas::Pacing;

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
use crate::target::{SeededIds, Target};

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
