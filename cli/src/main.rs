//! `dynamic-waas`: a command-line client of Dynamic's WaaS key-share backup API.
//!
//! ```text
//! dynamic-waas backup-locations create --environment-id UUID --wallet-id UUID --user-id UUID \
//!     --location googleDrive --location external,keygen-id=k1,scheme=TWO_OF_THREE \
//!     --location-json '{"location":"external","keygenId":"a,b"}'
//! dynamic-waas wallet get --environment-id UUID --wallet-id UUID
//! dynamic-waas sandbox serve [--port PORT]      # with the default feature `sandbox`
//! dynamic-waas completions bash
//! ```
//!
//! The token comes from `DYNAMIC_API_TOKEN` (else `DYN_API_TOKEN`, else the file
//! `DYNAMIC_API_TOKEN_FILE` names) or `--token-stdin`, never from a flag, and is never printed.
//! `--output json` prints exactly one JSON document on stdout, a result or
//! `{"error": {...}}` (usage errors included); logs go to stderr (`RUST_LOG`, `-v`,
//! `NO_COLOR`).
//!
//! Exit codes: [`exit::EXIT_CODES`] is the table (`--help` prints it).

#![forbid(unsafe_code)]

mod args;
mod bulk;
mod commands;
mod exit;
mod files;
mod output;
#[cfg(feature = "sandbox")]
mod serve;
mod signals;
mod target;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::process::ExitCode;

use clap::error::ErrorKind as ClapErrorKind;
use clap::{CommandFactory, FromArgMatches};
use tracing_subscriber::EnvFilter;

use crate::args::{BackupLocationsCommand, Cli, Command, OutputFormat};
use crate::exit::CliError;
use crate::output::Printer;

fn main() -> ExitCode {
    let raw: Vec<OsString> = std::env::args_os().collect();
    let matches = match command().try_get_matches_from(&raw) {
        Ok(matches) => matches,
        Err(err) => return usage_error(err, &raw),
    };
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => return usage_error(err, &raw),
    };
    if let Command::BackupLocations(group) = &mut cli.command {
        let sub = |name| {
            matches
                .subcommand_matches("backup-locations")
                .and_then(|m| m.subcommand_matches(name))
        };
        match &mut group.command {
            BackupLocationsCommand::Create(args) => args.location.order(sub("create")),
            BackupLocationsCommand::CreateMany(args) => args.location.order(sub("create-many")),
        }
    }
    init_logs(cli.global.verbose);
    let printer = Printer::new(cli.global.output);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            let err = CliError::Other(format!("cannot start the async runtime: {e}"));
            printer.error(&err);
            return ExitCode::from(err.exit_code());
        }
    };
    match runtime.block_on(commands::run(&cli.global, cli.command, printer)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            printer.error(&err);
            ExitCode::from(err.exit_code())
        }
    }
}

/// Examples at the end of the root help, as `gh` shows them.
const EXAMPLES: &str = "Examples:
  # Try it on an in-process sandbox: no token, seeded ids
  dynamic-waas backup-locations create --sandbox --location googleDrive

  # Back up one wallet (the token from DYNAMIC_API_TOKEN)
  dynamic-waas backup-locations create --environment-id UUID --wallet-id UUID \\
      --user-id UUID --location googleDrive --location dynamic,keygen-id=primary

  # Back up many wallets from a file, resumably, paced under Dynamic's limits
  dynamic-waas backup-locations create-many --input wallets.csv --results out.jsonl \\
      --location googleDrive
  dynamic-waas backup-locations create-many --input wallets.csv --results out.jsonl \\
      --location googleDrive --resume

  # Read a wallet and its key shares, as JSON
  dynamic-waas wallet get --environment-id UUID --wallet-id UUID --output json";

/// The command line: examples after `-h`; the exit codes and environment (from
/// [`exit::EXIT_CODES`]) after `--help` too.
pub fn command() -> clap::Command {
    let width = clap_width();
    Cli::command()
        .after_help(format!(
            "{EXAMPLES}\n\nExit codes and environment variables: see --help."
        ))
        .after_long_help(format!("{EXAMPLES}\n\n{}", exit::exit_codes_help(width)))
}

/// The width clap wraps help to (its own default: the terminal's, at most 100).
fn clap_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .filter(|&c| c > 20)
        .unwrap_or(100)
        .min(100)
}

/// A usage error from clap. `--help` and `--version` are printed as clap prints them (exit
/// 0); any other is clap's message on stderr, and, when JSON output was asked for (or is the
/// default, stdout not being a terminal), one `{"error": {...}}` document on stdout; exit 2.
fn usage_error(err: clap::Error, raw: &[OsString]) -> ExitCode {
    if !err.use_stderr() {
        // --help, --version: clap prints them on stdout and exits 0.
        err.exit();
    }
    // Clap's message, coloured as clap decides (NO_COLOR included); a closed stderr is ignored.
    let _ = err.print();
    let printer = Printer::new(output_format_in(raw));
    if printer.is_json() {
        let message = if err.kind() == ClapErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            "a command is required (see --help)".to_owned()
        } else {
            usage_message(&err.render().to_string())
        };
        printer.json_error(&CliError::InvalidInput(message));
    }
    ExitCode::from(exit::INVALID_INPUT)
}

/// Clap's rendered error without its `error: ` prefix, usage and `--help` hint.
fn usage_message(rendered: &str) -> String {
    let message = rendered.trim_start_matches("error: ");
    let message = message.split("\n\n").next().unwrap_or(message);
    message.trim().to_owned()
}

/// The `--output` the command line asked for, read without clap (which refused it): the last
/// `--output FORMAT` or `--output=FORMAT` before `--`; `None` if absent or not a format.
fn output_format_in(raw: &[OsString]) -> Option<OutputFormat> {
    let mut format = None;
    let mut args = raw.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        let value = match arg.as_ref() {
            "--" => break,
            "--output" => args.next().map(|v| v.into_owned()),
            other => other.strip_prefix("--output=").map(str::to_owned),
        };
        if let Some(value) = value {
            format = <OutputFormat as clap::ValueEnum>::from_str(&value, false).ok();
        }
    }
    format
}

/// Logs go to stderr. `RUST_LOG` wins when set; otherwise warnings, and with `-v` debug
/// (`-vv` trace) for this project's crates. No colour when `NO_COLOR` is set and not empty, or
/// when stderr is not a terminal.
fn init_logs(verbose: u8) {
    let filter = EnvFilter::builder().parse_lossy(log_directives(
        std::env::var("RUST_LOG").ok().as_deref(),
        verbose,
    ));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Around create-many's progress bar, when one is shown.
        .with_writer(|| bulk::LogWriter)
        .with_ansi(use_ansi(
            std::env::var_os("NO_COLOR").as_deref(),
            std::io::stderr().is_terminal(),
        ))
        .with_target(false)
        .init();
}

/// The log filter: `RUST_LOG` when set (and not empty), else from the `-v` count.
///
/// The binary's own crate is named `dynamic_waas` (after the binary), like the library's,
/// so `dynamic_waas=...` covers both; `dynamic_waas_cli` is named too, for clarity.
fn log_directives(rust_log: Option<&str>, verbose: u8) -> String {
    match rust_log {
        Some(directives) if !directives.trim().is_empty() => directives.to_owned(),
        _ => match verbose {
            0 => "warn".to_owned(),
            1 => "warn,dynamic_waas=debug,dynamic_waas_cli=debug".to_owned(),
            _ => "warn,dynamic_waas=trace,dynamic_waas_cli=trace".to_owned(),
        },
    }
}

/// Colour only on a terminal, and never when `NO_COLOR` is set to a non-empty value.
fn use_ansi(no_color: Option<&std::ffi::OsStr>, stderr_is_terminal: bool) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        std::iter::once("dynamic-waas")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn the_output_format_is_found_without_clap() {
        assert_eq!(
            output_format_in(&os(&["--bogus", "--output", "json"])),
            Some(OutputFormat::Json)
        );
        assert_eq!(
            output_format_in(&os(&["--output=text", "x"])),
            Some(OutputFormat::Text)
        );
        assert_eq!(
            output_format_in(&os(&["--output", "json", "--output", "text"])),
            Some(OutputFormat::Text)
        );
        assert_eq!(output_format_in(&os(&["--output", "yaml"])), None);
        assert_eq!(output_format_in(&os(&["--", "--output", "json"])), None);
        assert_eq!(output_format_in(&os(&["--output"])), None);
    }

    #[test]
    fn rust_log_wins_over_verbose() {
        assert_eq!(log_directives(None, 0), "warn");
        assert_eq!(
            log_directives(None, 1),
            "warn,dynamic_waas=debug,dynamic_waas_cli=debug"
        );
        assert_eq!(
            log_directives(None, 5),
            "warn,dynamic_waas=trace,dynamic_waas_cli=trace"
        );
        assert_eq!(log_directives(Some("off"), 2), "off");
        assert_eq!(log_directives(Some(""), 1), log_directives(None, 1));
    }

    #[test]
    fn no_color_and_pipes_disable_ansi() {
        use std::ffi::OsStr;
        assert!(use_ansi(None, true));
        assert!(use_ansi(Some(OsStr::new("")), true));
        assert!(!use_ansi(Some(OsStr::new("1")), true));
        assert!(!use_ansi(None, false));
    }

    #[test]
    fn usage_messages_lose_clap_decorations() {
        let rendered = "error: unexpected argument '--bogus' found\n\n  tip: ...\n\nUsage: x\n";
        assert_eq!(
            usage_message(rendered),
            "unexpected argument '--bogus' found"
        );
    }

    #[test]
    fn the_help_is_consistent() {
        command().debug_assert();
    }
}
