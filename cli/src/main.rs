//! `dynamic-waas`: a command-line client of Dynamic's WaaS key-share backup API.
//!
//! ```text
//! dynamic-waas backup-locations create --environment-id UUID --wallet-id UUID --user-id UUID \
//!     --location googleDrive --location external,keygen-id=k1,scheme=TWO_OF_THREE
//! dynamic-waas wallet get --environment-id UUID --wallet-id UUID
//! dynamic-waas sandbox serve [--port PORT]
//! ```
//!
//! The token comes only from `DYNAMIC_API_TOKEN` (else `DYN_API_TOKEN`) and is never printed.
//! `--output json` prints exactly one JSON document on stdout, a result or
//! `{"error": {...}}`; logs go to stderr.
//!
//! Exit codes:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | any other failure (the sandbox could not start, stdout is closed, ...) |
//! | 2 | invalid input or configuration: nothing was sent (clap's usage errors too) |
//! | 3 | the API refused the request (4xx other than 429) |
//! | 4 | rate limited, or a server error, after every allowed attempt |
//! | 5 | outcome unknown: read the wallet before creating again |
//! | 6 | transport failure or timeout |
//! | 7 | the API's response could not be read |

#![forbid(unsafe_code)]

mod args;
mod commands;
mod exit;
mod output;
mod serve;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::filter::LevelFilter;

use crate::args::Cli;
use crate::output::Printer;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.global.verbose);
    let printer = Printer::new(cli.global.output);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            let err = exit::CliError::Other(format!("cannot start the async runtime: {e}"));
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

/// Logs go to stderr: warnings by default, `-v` debug, `-vv` trace.
fn init_logs(verbose: u8) {
    let level = match verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
