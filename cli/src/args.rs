//! The command line, as clap reads it.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use dynamic_waas::{BackupLocation, LocationRequest, ThresholdSignatureScheme, DEFAULT_BASE_URL};

use crate::exit::EXIT_CODES_HELP;

/// A command-line client of Dynamic's WaaS key-share backup API.
///
/// The API token is read from DYNAMIC_API_TOKEN (else DYN_API_TOKEN), never from a flag,
/// and is never printed.
#[derive(Debug, Parser)]
#[command(name = "dynamic-waas", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// The API's base URL: https, or plain http to a loopback address only
    #[arg(
        long,
        global = true,
        env = "DYNAMIC_BASE_URL",
        default_value = DEFAULT_BASE_URL,
        value_name = "URL"
    )]
    pub base_url: String,

    /// Run against a freshly seeded in-process sandbox: no token or ids needed (the seeded
    /// ones are used unless given), nothing leaves this machine
    #[arg(long, global = true)]
    pub sandbox: bool,

    /// Attempts per call, retries included [default: 3]
    #[arg(
        long,
        global = true,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=100)
    )]
    pub max_attempts: Option<u32>,

    /// Timeout of each attempt, in seconds (fractions allowed) [default: 30]
    #[arg(long, global = true, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,

    /// Output format [default: text when stdout is a terminal, json otherwise]
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,

    /// More logs on stderr (-v: debug, -vv: trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// How results and errors are printed on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Exactly one JSON document
    Json,
    /// A short human summary
    Text,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Back up a wallet's key shares to locations
    #[command(subcommand)]
    BackupLocations(BackupLocationsCommand),
    /// Read wallets
    #[command(subcommand)]
    Wallet(WalletCommand),
    /// Run a local sandbox of the API
    #[command(subcommand)]
    Sandbox(SandboxCommand),
}

#[derive(Debug, Subcommand)]
pub enum BackupLocationsCommand {
    /// Create backup locations for a wallet's key shares (one key share per location).
    ///
    /// The create is not idempotent: after an ambiguous failure the wallet is read to find
    /// out whether it happened (exit 5 when that cannot be settled).
    Create(CreateArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub ids: WalletIds,

    /// The user who owns the wallet [required unless --sandbox]
    #[arg(long, value_name = "UUID")]
    pub user_id: Option<String>,

    /// A location to back up to, with optional settings (repeatable, at least one):
    /// LOCATION[,keygen-id=ID][,scheme=TWO_OF_TWO|TWO_OF_THREE|THREE_OF_FIVE][,external-key-share-id=ID]
    #[arg(
        long = "location",
        value_name = "LOCATION[,KEY=VALUE...]",
        required = true,
        value_parser = parse_location
    )]
    pub locations: Vec<LocationSpec>,

    /// Send location values this version does not know, as they are
    #[arg(long)]
    pub allow_unknown_location: bool,

    /// The share set this backup activates, as key generation gave it (default: the
    /// wallet's active root-user share set)
    #[arg(long, value_name = "UUID")]
    pub share_set_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Read a wallet and its backed-up key shares
    Get(WalletIds),
}

#[derive(Debug, Args)]
pub struct WalletIds {
    /// The environment [required unless --sandbox]
    #[arg(long, value_name = "UUID")]
    pub environment_id: Option<String>,

    /// The wallet [required unless --sandbox]
    #[arg(long, value_name = "UUID")]
    pub wallet_id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Serve a seeded sandbox on 127.0.0.1 until Ctrl-C; prints its URL, token and ids
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The port to listen on [default: a free one]
    #[arg(long)]
    pub port: Option<u16>,
}

/// One `--location` value.
#[derive(Clone, Debug)]
pub struct LocationSpec {
    pub location: BackupLocation,
    pub request: LocationRequest,
}

fn parse_location(value: &str) -> Result<LocationSpec, String> {
    let mut parts = value.split(',');
    let name = parts.next().unwrap_or_default().trim();
    if name.is_empty() {
        return Err("the location is empty".into());
    }
    let location = BackupLocation::from(name);
    let mut request = LocationRequest::new(location.clone());
    for part in parts {
        let (key, val) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not KEY=VALUE"))?;
        request = match key.trim() {
            "keygen-id" => request.keygen_id(val),
            "external-key-share-id" => request.external_key_share_id(val),
            "scheme" => {
                let scheme = ThresholdSignatureScheme::from(val.trim());
                if scheme.is_unknown() {
                    return Err(format!(
                        "unknown scheme {val:?}; expected one of {}",
                        ThresholdSignatureScheme::KNOWN.join(", ")
                    ));
                }
                request.threshold_signature_scheme(scheme)
            }
            other => {
                return Err(format!(
                    "unknown setting {other:?}; expected keygen-id, scheme or \
                     external-key-share-id"
                ))
            }
        };
    }
    Ok(LocationSpec { location, request })
}

fn parse_seconds(value: &str) -> Result<Duration, String> {
    let seconds: f64 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a number of seconds"))?;
    if !(seconds > 0.0 && seconds <= 86_400.0) {
        return Err("must be more than 0 and at most 86400".into());
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn location_specs() {
        let spec = parse_location("external,keygen-id=k 1,scheme=TWO_OF_THREE").unwrap();
        assert_eq!(spec.location, BackupLocation::External);
        assert!(parse_location("dynamic,scheme=ONE_OF_ONE").is_err());
        assert!(parse_location("dynamic,colour=red").is_err());
        assert!(parse_location("dynamic,keygen-id").is_err());
        assert!(parse_location("").is_err());
        assert!(parse_location("paperWallet").unwrap().location.is_unknown());
    }
}
