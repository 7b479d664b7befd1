//! The command line, as clap reads it.

use std::time::Duration;

use clap::{ArgGroup, ArgMatches, Args, Parser, Subcommand, ValueEnum};
use dynamic_waas::{BackupLocation, LocationRequest, ThresholdSignatureScheme, DEFAULT_BASE_URL};
use serde_json::Value;

/// A command-line client of Dynamic's WaaS key-share backup API.
///
/// The API token is read from DYNAMIC_API_TOKEN (else DYN_API_TOKEN, else the file
/// DYNAMIC_API_TOKEN_FILE names) or from stdin with --token-stdin; never from a flag, and it
/// is never printed.
#[derive(Debug, Parser)]
#[command(name = "dynamic-waas", version)]
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
    /// Output format [default: text when stdout is a terminal, json otherwise]
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,

    /// More logs on stderr (-v: debug, -vv: trace; RUST_LOG, when set, wins)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Where calls go and how patiently: the options of the commands that call the API.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "API options")]
pub struct ApiArgs {
    /// The API's base URL: https, or plain http to a loopback address only
    #[arg(
        long,
        global = true,
        env = "DYNAMIC_BASE_URL",
        // Help must not print the variable: a URL may carry credentials.
        hide_env_values = true,
        default_value = DEFAULT_BASE_URL,
        value_name = "URL"
    )]
    pub base_url: String,

    /// Run against a freshly seeded in-process sandbox: no token or ids needed (the seeded
    /// ones are used unless given), nothing leaves this machine
    #[cfg(feature = "sandbox")]
    #[arg(long, global = true)]
    pub sandbox: bool,

    /// Read the API token from the first line of stdin (for a secret manager's pipe)
    #[arg(long, global = true)]
    pub token_stdin: bool,

    /// Attempts per call, retries included [default: 3]; create-many also waits out up to
    /// ten 429s per wallet besides them
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

    /// How far behind writes a wallet read may lag, in seconds: after a create whose answer
    /// was lost, it is sent again only if a read made this long after shows no key shares
    /// [default: 2]
    #[arg(long, global = true, value_name = "SECONDS", value_parser = parse_settle)]
    pub settle_after: Option<Duration>,
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
    BackupLocations(BackupLocations),
    /// Read wallets
    Wallet(WalletGroup),
    /// Run a local sandbox of the API
    #[cfg(feature = "sandbox")]
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Print a shell completion script on stdout, e.g.
    /// `dynamic-waas completions bash > ~/.local/share/bash-completion/completions/dynamic-waas`
    Completions(CompletionsArgs),
    /// Print the manual page (roff) on stdout, or write one per command into a directory,
    /// e.g. `dynamic-waas man > dynamic-waas.1`
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct BackupLocations {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub command: BackupLocationsCommand,
}

#[derive(Debug, Args)]
pub struct WalletGroup {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub command: WalletCommand,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write a page per command (dynamic-waas.1, dynamic-waas-backup-locations-create.1, ...)
    /// into DIR instead of the main page on stdout
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Subcommand)]
pub enum BackupLocationsCommand {
    /// Create backup locations for a wallet's key shares (one key share per location).
    ///
    /// The create is not idempotent: after an ambiguous failure the wallet is read to find
    /// out whether it happened (exit 5 when that cannot be settled).
    Create(CreateArgs),
    /// Back up many wallets from a file: paced under Dynamic's limits, resumable, one JSON
    /// line per wallet in --results.
    ///
    /// Input: JSON lines ({"environmentId", "walletId", "userId", "shareSetId"?,
    /// "locations"?}) or CSV with a header (environmentId,walletId,userId[,shareSetId]
    /// [,locations]; locations as --location values joined by ';'). Rows without locations
    /// take the --location flags. Prints a JSON summary on stdout; progress on stderr.
    CreateMany(CreateManyArgs),
}

#[derive(Debug, Args)]
pub struct CreateManyArgs {
    /// The input file, or - for stdin
    #[arg(long, value_name = "FILE")]
    pub input: String,

    /// The input's format [default: csv for *.csv, else from the first character: '{' is
    /// JSON lines]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<InputFormat>,

    /// Where outcomes go: one JSON line per wallet, appended, synced to disk as they come;
    /// FILE.inflight records the wallets whose create may have been sent. Created private
    /// (0600); a symbolic link is refused [required unless --dry-run]
    #[arg(long, value_name = "FILE", required_unless_present = "dry_run")]
    pub results: Option<String>,

    /// Continue an earlier run: skip wallets whose outcome in --results is settled; read the
    /// wallet first (never create blindly) for those that were in flight or unknown
    #[arg(long)]
    pub resume: bool,

    /// Rows without an environmentId use this one
    #[arg(long, value_name = "UUID")]
    pub environment_id: Option<String>,

    /// The locations of rows that name none
    #[command(flatten)]
    pub location: LocationFlags,

    /// Wallets in flight at once
    #[arg(long, default_value_t = 16, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,

    /// Requests a minute from this process (upstream allows 1,500 per IP)
    #[arg(long, default_value_t = 1_440, value_name = "PER_MINUTE",
          value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub rate: u32,

    /// Requests a minute to each environment (upstream allows 3,000); with several machines
    /// on one environment, give each its share
    #[arg(long, default_value_t = 2_880, value_name = "PER_MINUTE",
          value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub env_rate: u32,

    /// Only the wallets of shard K of N (by wallet id), so that N machines share one input
    /// without overlapping
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,

    /// What a bad row (invalid id, unknown field, broken JSON) does: skip it (it is reported
    /// on stderr and in --results with its line number) or stop the run (after draining)
    #[arg(long, value_enum, default_value_t = BadRows::Skip, value_name = "ACTION")]
    pub bad_rows: BadRows,

    /// Stop taking rows after this many wallets in a row failed alike for the whole run (401,
    /// 403: a wrong token or environment), rather than failing them all; 0: never
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max_failures_in_a_row: u32,

    /// Read and check every row as a run would (shards and --resume, which needs --results,
    /// included), report bad rows, print what would be created, read first or skipped; send
    /// and write nothing; no token needed
    #[arg(long)]
    pub dry_run: bool,

    /// Seconds between progress lines when stderr is not a terminal (0: none)
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub progress_interval: u64,
}

/// The format of create-many's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    /// One JSON object per line
    Jsonl,
    /// Comma-separated values with a header line
    Csv,
}

/// What create-many does with a bad row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BadRows {
    /// Report it and go on
    Skip,
    /// Report it, stop reading, drain what is in flight, exit 2
    Stop,
}

/// `--shard K/N`: 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether `wallet` is in this shard: its UUID as a number, modulo the count.
    pub fn contains(&self, wallet: uuid::Uuid) -> bool {
        wallet.as_u128() % u128::from(self.count) == u128::from(self.index - 1)
    }
}

fn parse_shard(value: &str) -> Result<Shard, String> {
    let (k, n) = value
        .split_once('/')
        .ok_or_else(|| format!("{value:?} is not K/N (e.g. 1/3)"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<u32>()
            .map_err(|_| format!("{v:?} is not a number"))
    };
    let (index, count) = (parse(k)?, parse(n)?);
    if count == 0 || index == 0 || index > count {
        return Err(format!("K/N needs 1 <= K <= N, got {value}"));
    }
    Ok(Shard { index, count })
}

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("any_location")
        .args(["locations", "location_json"])
        .required(true)
        .multiple(true)
))]
pub struct CreateArgs {
    #[command(flatten)]
    pub ids: WalletIds,

    /// The user who owns the wallet
    #[cfg_attr(feature = "sandbox", doc = "[required unless --sandbox]")]
    #[cfg_attr(not(feature = "sandbox"), doc = "[required]")]
    #[arg(long, value_name = "UUID")]
    pub user_id: Option<String>,

    #[command(flatten)]
    pub location: LocationFlags,

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
    /// The environment
    #[cfg_attr(feature = "sandbox", doc = "[required unless --sandbox]")]
    #[cfg_attr(not(feature = "sandbox"), doc = "[required]")]
    #[arg(long, value_name = "UUID")]
    pub environment_id: Option<String>,

    /// The wallet
    #[cfg_attr(feature = "sandbox", doc = "[required unless --sandbox]")]
    #[cfg_attr(not(feature = "sandbox"), doc = "[required]")]
    #[arg(long, value_name = "UUID")]
    pub wallet_id: Option<String>,
}

#[cfg(feature = "sandbox")]
#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Serve a seeded sandbox on 127.0.0.1 until Ctrl-C; prints its URL, token and ids
    Serve(ServeArgs),
}

#[cfg(feature = "sandbox")]
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The port to listen on [default: a free one]
    #[arg(long)]
    pub port: Option<u16>,

    /// Also seed N pregenerated wallets, each of its own user, in the example environment
    /// (deterministic ids; at most 10,000,000)
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=10_000_000))]
    pub wallets: u32,

    /// Also seed the wallets a create-many input names (JSON lines or CSV, one environment),
    /// each owned by its row's user; the token is then for that environment
    #[arg(long, value_name = "FILE", conflicts_with = "wallets")]
    pub seed_input: Option<String>,

    /// Write the pregenerated wallets as create-many input (JSON lines, or CSV for *.csv)
    #[arg(long, value_name = "FILE", requires = "wallets")]
    pub write_input: Option<String>,

    /// Enforce upstream's limits (1,500 requests a minute per client address, 3,000 per
    /// environment), answering 429 with Retry-After
    #[arg(long)]
    pub upstream_limits: bool,

    /// Run the limits' clock this many times faster (60: a minute lasts a second; more than
    /// 0)
    #[arg(
        long,
        value_name = "FACTOR",
        default_value_t = 1.0,
        requires = "upstream_limits",
        value_parser = parse_scale
    )]
    pub time_scale: f64,

    /// Apply this share of creates (0 to 1), then answer 502 as a proxy would: the create
    /// happened and its answer is lost
    #[arg(long, value_name = "RATE", default_value_t = 0.0, value_parser = parse_share)]
    pub ambiguous_faults: f64,

    /// On Ctrl-C, write the key share ids of every wallet seeded by --wallets or
    /// --seed-input to FILE (JSON lines), to check a bulk run's results against
    #[arg(long, value_name = "FILE")]
    pub dump_state: Option<String>,

    /// Make wallet reads lag this many seconds behind creates (fractions allowed)
    #[arg(long, value_name = "SECONDS", value_parser = parse_settle)]
    pub read_lag: Option<Duration>,

    /// With --read-lag: the service's own "already backed up" check sees the lagging
    /// replica too, so a create sent again within the lag is applied twice
    #[arg(long, requires = "read_lag")]
    pub lagging_duplicate_check: bool,

    /// Admit at most N requests a second from each client address (a limit shared with
    /// other traffic, or lower than published), answering 429 past it
    #[arg(long, value_name = "N", conflicts_with = "upstream_limits",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,

    /// How --limit counts: a sliding one-second window, or a token bucket of N tokens
    /// refilled at N a second
    #[arg(long, value_enum, default_value_t = LimitKind::SlidingWindow, requires = "limit")]
    pub limit_kind: LimitKind,

    /// Change --limit over time: "30=0.6,90=1" makes it 60 % of N from 30 s after the start
    /// and N again from 90 s
    #[arg(long, value_name = "SECONDS=SHARE,...", requires = "limit", value_parser = parse_schedule)]
    pub limit_schedule: Option<Schedule>,

    /// Append a JSON line a second to FILE: requests received and refused with 429 in that
    /// second (for benchmarks of pacing)
    #[arg(long, value_name = "FILE")]
    pub rate_log: Option<String>,
}

/// How `sandbox serve --limit` counts requests.
#[cfg(feature = "sandbox")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LimitKind {
    /// At most N requests in any second
    SlidingWindow,
    /// A bucket of N tokens, refilled at N a second
    TokenBucket,
}

/// `--limit-schedule`: from each number of seconds after the start, the share of `--limit`.
/// One value (a newtype: clap takes an `Option<Vec<_>>` for a repeated flag).
#[cfg(feature = "sandbox")]
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule(pub Vec<(f64, f64)>);

#[cfg(feature = "sandbox")]
fn parse_schedule(value: &str) -> Result<Schedule, String> {
    value
        .split(',')
        .map(|step| {
            let (at, share) = step
                .split_once('=')
                .ok_or_else(|| format!("{step:?} is not SECONDS=SHARE"))?;
            let number = |v: &str| {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n >= 0.0)
                    .ok_or_else(|| format!("{v:?} is not a number of 0 or more"))
            };
            Ok((number(at)?, number(share)?))
        })
        .collect::<Result<_, _>>()
        .map(Schedule)
}

/// `--location`, `--location-json` and `--allow-unknown-location`, shared by `create` and
/// `create-many`.
#[derive(Clone, Debug, Args)]
pub struct LocationFlags {
    /// A location to back up to, with optional settings (repeatable; for create-many, the
    /// locations of rows that name none):
    /// LOCATION[,keygen-id=ID][,scheme=TWO_OF_TWO|TWO_OF_THREE|THREE_OF_FIVE][,external-key-share-id=ID]
    /// (an id with a comma needs --location-json)
    #[arg(
        long = "location",
        value_name = "LOCATION[,KEY=VALUE...]",
        value_parser = parse_location
    )]
    pub locations: Vec<LocationSpec>,

    /// A location as a JSON object with upstream's field names, for ids with commas
    /// (repeatable, mixes with --location; the order given is kept):
    /// '{"location":"external","keygenId":"a,b","thresholdSignatureScheme":"TWO_OF_THREE","externalKeyShareId":"v,7"}'
    #[arg(long = "location-json", value_name = "JSON", value_parser = parse_location_json)]
    pub location_json: Vec<LocationSpec>,

    /// Send location values this version does not know, as they are
    #[arg(long)]
    pub allow_unknown_location: bool,
}

impl LocationFlags {
    /// Puts every location, `--location` and `--location-json` together, in `locations`, in
    /// the order given on the command line (`matches` are the subcommand's).
    pub fn order(&mut self, matches: Option<&ArgMatches>) {
        self.locations = in_given_order(&mut self.locations, &mut self.location_json, matches);
    }

    /// Refuses `locations` if one is unknown and unknown ones are not allowed.
    pub fn check<'l>(&self, locations: &'l [LocationSpec]) -> Result<&'l [LocationSpec], String> {
        if !self.allow_unknown_location {
            if let Some(unknown) = locations.iter().find(|l| l.location.is_unknown()) {
                return Err(format!(
                    "unknown location {:?}: known locations are {} (pass \
                     --allow-unknown-location to send it anyway)",
                    unknown.location.as_str(),
                    BackupLocation::KNOWN.join(", ")
                ));
            }
        }
        Ok(locations)
    }
}

/// One `--location` value.
#[derive(Clone, Debug)]
pub struct LocationSpec {
    pub location: BackupLocation,
    pub request: LocationRequest,
}

/// `--location` and `--location-json` values together, in command-line order.
fn in_given_order(
    flags: &mut Vec<LocationSpec>,
    json: &mut Vec<LocationSpec>,
    matches: Option<&ArgMatches>,
) -> Vec<LocationSpec> {
    let indices = |id: &str, count: usize| -> Vec<usize> {
        matches
            .and_then(|m| m.indices_of(id))
            .map(|i| i.collect())
            .filter(|i: &Vec<usize>| i.len() == count)
            // Without indices (never expected), --location values come first.
            .unwrap_or_else(|| (0..count).collect())
    };
    let flags = std::mem::take(flags);
    let json = std::mem::take(json);
    let mut all: Vec<(usize, usize, LocationSpec)> = indices("locations", flags.len())
        .into_iter()
        .zip(flags)
        .map(|(i, spec)| (i, 0, spec))
        .chain(
            indices("location_json", json.len())
                .into_iter()
                .zip(json)
                .map(|(i, spec)| (i, 1, spec)),
        )
        .collect();
    all.sort_by_key(|(index, flag, _)| (*index, *flag));
    all.into_iter().map(|(_, _, spec)| spec).collect()
}

/// The fields of a `--location-json` object.
const LOCATION_JSON_FIELDS: &str =
    "location, keygenId, thresholdSignatureScheme, externalKeyShareId";

pub fn parse_location_json(value: &str) -> Result<LocationSpec, String> {
    let object = match serde_json::from_str::<Value>(value) {
        Ok(Value::Object(object)) => object,
        Ok(_) => return Err("not a JSON object".into()),
        Err(e) => return Err(format!("not JSON: {e}")),
    };
    let field = |name: &str| -> Result<Option<&str>, String> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(format!("field {name:?}: expected a string, got {other}")),
        }
    };
    if let Some(unknown) = object
        .keys()
        .find(|key| !LOCATION_JSON_FIELDS.split(", ").any(|f| f == key.as_str()))
    {
        return Err(format!(
            "unknown field {unknown:?}; expected {LOCATION_JSON_FIELDS}"
        ));
    }
    let name = field("location")?
        .filter(|name| !name.trim().is_empty())
        .ok_or("field \"location\" is required (a non-empty string)")?;
    let location = BackupLocation::from(name);
    let mut request = LocationRequest::new(location.clone());
    if let Some(id) = field("keygenId")? {
        request = request.with_keygen_id(id);
    }
    if let Some(scheme) = field("thresholdSignatureScheme")? {
        request = request.with_threshold_signature_scheme(
            known_scheme(scheme).map_err(|e| format!("field \"thresholdSignatureScheme\": {e}"))?,
        );
    }
    if let Some(id) = field("externalKeyShareId")? {
        request = request.with_external_key_share_id(id);
    }
    Ok(LocationSpec { location, request })
}

fn known_scheme(value: &str) -> Result<ThresholdSignatureScheme, String> {
    let scheme = ThresholdSignatureScheme::from(value.trim());
    if scheme.is_unknown() {
        return Err(format!(
            "unknown scheme {value:?}; expected one of {}",
            ThresholdSignatureScheme::KNOWN.join(", ")
        ));
    }
    Ok(scheme)
}

pub fn parse_location(value: &str) -> Result<LocationSpec, String> {
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
            "keygen-id" => request.with_keygen_id(val),
            "external-key-share-id" => request.with_external_key_share_id(val),
            "scheme" => request.with_threshold_signature_scheme(known_scheme(val)?),
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

#[cfg(feature = "sandbox")]
fn parse_scale(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(scale) if scale.is_finite() && scale > 0.0 => Ok(scale),
        _ => Err(format!("{value:?} is not a number above 0")),
    }
}

#[cfg(feature = "sandbox")]
fn parse_share(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err(format!("{value:?} is not a share from 0 to 1")),
    }
}

fn parse_settle(value: &str) -> Result<Duration, String> {
    let seconds: f64 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a number of seconds"))?;
    if !(0.0..=3600.0).contains(&seconds) {
        return Err("must be from 0 to 3600".into());
    }
    Ok(Duration::from_secs_f64(seconds))
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
    use clap::{CommandFactory, FromArgMatches};

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every flag of `sandbox serve`, parsed into its field: a value parser whose type is not
    /// the field's panics at run time, which `debug_assert` does not see.
    #[cfg(feature = "sandbox")]
    #[test]
    fn every_serve_flag_parses_into_its_field() {
        let cli = Cli::try_parse_from([
            "dynamic-waas",
            "sandbox",
            "serve",
            "--wallets",
            "3",
            "--limit",
            "100",
            "--limit-kind",
            "token-bucket",
            "--limit-schedule",
            "60=0.6,120=1",
            "--read-lag",
            "0.3",
            "--lagging-duplicate-check",
            "--rate-log",
            "rates",
            "--ambiguous-faults",
            "0.1",
            "--write-input",
            "in.jsonl",
            "--dump-state",
            "state",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let debug = format!("{cli:?}");
        assert!(
            debug.contains("Schedule([(60.0, 0.6), (120.0, 1.0)])"),
            "{debug}"
        );
        let args = [
            "sandbox",
            "serve",
            "--upstream-limits",
            "--time-scale",
            "20",
        ];
        Cli::try_parse_from(std::iter::once("dynamic-waas").chain(args))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn shards_partition_wallets() {
        assert_eq!(parse_shard("2/3"), Ok(Shard { index: 2, count: 3 }));
        for bad in ["0/3", "4/3", "1/0", "1", "a/b", "1/-2"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
        let shards: Vec<Shard> = (1..=3).map(|k| Shard { index: k, count: 3 }).collect();
        for n in 0..300u128 {
            let wallet = uuid::Uuid::from_u128(n * 7919 + 11);
            assert_eq!(shards.iter().filter(|s| s.contains(wallet)).count(), 1);
        }
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

    #[test]
    fn location_json_specs() {
        let spec = parse_location_json(
            r#"{"location":"external","keygenId":"a,b","thresholdSignatureScheme":"TWO_OF_THREE","externalKeyShareId":"vault, 7"}"#,
        )
        .unwrap();
        assert_eq!(spec.location, BackupLocation::External);
        assert_eq!(
            spec.request,
            LocationRequest::new(BackupLocation::External)
                .with_keygen_id("a,b")
                .with_threshold_signature_scheme(ThresholdSignatureScheme::TwoOfThree)
                .with_external_key_share_id("vault, 7")
        );
        for (bad, names) in [
            (r#"{"keygenId":"k"}"#, "\"location\""),
            (r#"{"location":"dynamic","keygenID":"k"}"#, "\"keygenID\""),
            (r#"{"location":"dynamic","keygenId":7}"#, "\"keygenId\""),
            (
                r#"{"location":"dynamic","thresholdSignatureScheme":"ONE_OF_ONE"}"#,
                "\"thresholdSignatureScheme\"",
            ),
            (r#"["dynamic"]"#, "object"),
            ("{", "not JSON"),
        ] {
            let err = parse_location_json(bad).unwrap_err();
            assert!(err.contains(names), "{bad}: {err}");
        }
    }

    #[test]
    fn locations_keep_the_command_line_order() {
        let matches = Cli::command()
            .try_get_matches_from([
                "dynamic-waas",
                "backup-locations",
                "create",
                "--location-json",
                r#"{"location":"iCloud"}"#,
                "--location",
                "googleDrive",
                "--location-json",
                r#"{"location":"dynamic"}"#,
                "--location",
                "external",
            ])
            .unwrap();
        let cli = Cli::from_arg_matches(&matches).unwrap();
        let Command::BackupLocations(BackupLocations {
            command: BackupLocationsCommand::Create(mut args),
            ..
        }) = cli.command
        else {
            panic!("not a create");
        };
        let create = matches
            .subcommand_matches("backup-locations")
            .and_then(|m| m.subcommand_matches("create"));
        args.location.order(create);
        let order: Vec<String> = args
            .location
            .locations
            .iter()
            .map(|l| l.location.as_str().to_owned())
            .collect();
        assert_eq!(order, ["iCloud", "googleDrive", "dynamic", "external"]);
    }
}
