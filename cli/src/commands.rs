//! What each command does.

use std::io::Write;

use dynamic_waas::{EnvironmentId, Pacing, ShareSetId, UserId, WalletId};

#[cfg(feature = "sandbox")]
use crate::args::SandboxCommand;
use crate::args::{
    ApiArgs, BackupLocationsCommand, Command, CompletionsArgs, CreateArgs, GlobalArgs, ManArgs,
    WalletCommand, WalletIds,
};
use crate::exit::CliError;
use crate::output::Printer;
#[cfg(feature = "sandbox")]
use crate::serve;
use crate::target::{SeededIds, Target};

/// Runs `command`; the result is printed by `printer`, errors are returned.
pub async fn run(global: &GlobalArgs, command: Command, printer: Printer) -> Result<(), CliError> {
    match command {
        Command::BackupLocations(group) => match group.command {
            BackupLocationsCommand::Create(args) => create(&group.api, args, printer).await,
            BackupLocationsCommand::CreateMany(args) => {
                crate::bulk::create_many(global, &group.api, args, printer).await
            }
        },
        Command::Wallet(group) => match group.command {
            WalletCommand::Get(ids) => get_wallet(&group.api, ids, printer).await,
        },
        #[cfg(feature = "sandbox")]
        Command::Sandbox(SandboxCommand::Serve(args)) => serve::serve(args, printer).await,
        Command::Completions(args) => completions(args),
        Command::Man(args) => man(args),
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

/// `man`: the main page on stdout, or a page per command into a directory.
fn man(args: ManArgs) -> Result<(), CliError> {
    let command = crate::command();
    match args.dir {
        Some(dir) => std::fs::create_dir_all(&dir)
            .and_then(|()| clap_mangen::generate_to(command, &dir))
            .map_err(|e| CliError::Other(format!("cannot write {}: {e}", dir.display()))),
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut page)
                .map_err(|e| CliError::Other(format!("cannot render the manual page: {e}")))?;
            let mut out = std::io::stdout().lock();
            out.write_all(&page)
                .and_then(|()| out.flush())
                .map_err(stdout_error)
        }
    }
}

async fn create(api: &ApiArgs, args: CreateArgs, printer: Printer) -> Result<(), CliError> {
    let mut problems = Vec::new();
    let locations = match args.location.check(&args.location.locations) {
        Ok(locations) => locations.iter().map(|l| l.request.clone()).collect(),
        Err(problem) => {
            problems.push(problem);
            Vec::new()
        }
    };
    let target = Target::new(api).await?;
    let seed = target.seeded_ids();
    let ids = WalletIds {
        environment_id: args.ids.environment_id,
        wallet_id: args.ids.wallet_id,
    };
    let (environment_id, wallet_id) = wallet_ids(ids, seed.as_ref(), &mut problems);
    let user_id = id::<UserId>(
        args.user_id,
        seed.as_ref().map(|s| s.user_id.as_str()),
        "--user-id",
        &mut problems,
    );
    let share_set_id = args
        .share_set_id
        .and_then(|id| parsed::<ShareSetId>(&id, "--share-set-id", &mut problems));
    let client = target.client(api, Pacing::default(), problems)?;
    let (Some(environment_id), Some(wallet_id), Some(user_id)) =
        (environment_id, wallet_id, user_id)
    else {
        return Err(CliError::Other("the ids were not checked".into()));
    };
    let mut call = client.create_backup_locations(environment_id, wallet_id, user_id, locations);
    if let Some(share_set_id) = share_set_id {
        call = call.share_set_id(share_set_id);
    }
    let created = call.await?;
    printer.created(&created).map_err(|err| {
        // The ids must reach someone: the server will refuse to create them again.
        crate::output::created_to_stderr(&created);
        CliError::ResultOnStderr(err.to_string())
    })
}

async fn get_wallet(api: &ApiArgs, ids: WalletIds, printer: Printer) -> Result<(), CliError> {
    let target = Target::new(api).await?;
    let seed = target.seeded_ids();
    let mut problems = Vec::new();
    let (environment_id, wallet_id) = wallet_ids(ids, seed.as_ref(), &mut problems);
    let client = target.client(api, Pacing::default(), problems)?;
    let (Some(environment_id), Some(wallet_id)) = (environment_id, wallet_id) else {
        return Err(CliError::Other("the ids were not checked".into()));
    };
    let (wallet, raw) = client
        .get_wallet(environment_id, wallet_id)
        .with_raw_body()
        .await?;
    printer.wallet(&wallet, &raw).map_err(stdout_error)
}

/// The environment and wallet ids given, else the sandbox's seeded ones; a missing or bad one
/// is a problem.
fn wallet_ids(
    ids: WalletIds,
    seed: Option<&SeededIds>,
    problems: &mut Vec<String>,
) -> (Option<EnvironmentId>, Option<WalletId>) {
    (
        id(
            ids.environment_id,
            seed.map(|s| s.environment_id.as_str()),
            "--environment-id",
            problems,
        ),
        id(
            ids.wallet_id,
            seed.map(|s| s.wallet_id.as_str()),
            "--wallet-id",
            problems,
        ),
    )
}

/// The given id, else the sandbox's seeded one, checked.
fn id<T: std::str::FromStr<Err = dynamic_waas::InvalidId>>(
    given: Option<String>,
    seeded: Option<&str>,
    flag: &str,
    problems: &mut Vec<String>,
) -> Option<T> {
    match given.or_else(|| seeded.map(str::to_owned)) {
        Some(text) => parsed(&text, flag, problems),
        None => {
            let hint = if cfg!(feature = "sandbox") {
                " (or use --sandbox)"
            } else {
                ""
            };
            problems.push(format!("{flag} is required{hint}"));
            None
        }
    }
}

fn parsed<T: std::str::FromStr<Err = dynamic_waas::InvalidId>>(
    text: &str,
    flag: &str,
    problems: &mut Vec<String>,
) -> Option<T> {
    match text.parse::<T>() {
        Ok(id) => Some(id),
        Err(e) => {
            problems.push(format!(
                "{flag} must be a lower-case hyphenated UUID: {}",
                e.problem()
            ));
            None
        }
    }
}

fn stdout_error(err: std::io::Error) -> CliError {
    CliError::Other(format!("could not write the result to stdout: {err}"))
}
