//! Exit codes, and the errors the CLI reports.
//!
//! [`EXIT_CODES`] is the one table of exit codes: `--help` is rendered from it
//! ([`exit_codes_help`]), and a test compares the READMEs' tables with it.

use std::fmt;

use dynamic_waas::{Error, ErrorKind};

/// Every exit code and what it means: the source of `--help`'s table and the READMEs'.
pub const EXIT_CODES: &[(u8, &str)] = &[
    (0, "success"),
    (
        FAILURE,
        "any other failure (the sandbox could not start, stdout is closed, ...)",
    ),
    (
        INVALID_INPUT,
        "invalid input or configuration, usage errors included: nothing was sent",
    ),
    (
        REFUSED,
        "the API refused the request (400, 401, 403, 404, 422 already backed up, any other \
         4xx but 429)",
    ),
    (
        RETRIES_EXHAUSTED,
        "rate limited, or a server error, after every allowed attempt: retry later",
    ),
    (
        OUTCOME_UNKNOWN,
        "outcome unknown: the create may have happened; read the wallet before creating again",
    ),
    (TRANSPORT, "transport failure or timeout"),
    (INVALID_RESPONSE, "the API's response could not be read"),
    (
        RESULT_ON_STDERR,
        "the create succeeded, but stdout could not take the result: the key share ids are \
         on stderr, in one JSON line {\"created\": {...}}; do not create again",
    ),
    (
        PARTIAL,
        "create-many finished, but some wallets failed or are unknown, or some rows were \
         invalid: the results file says which; --resume retries what is not settled",
    ),
    (
        INTERRUPTED,
        "create-many was stopped by Ctrl-C (or SIGTERM) after writing the outcomes of the \
         wallets in flight; --resume continues",
    ),
];

/// The environment variables the CLI reads, for `--help`.
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "DYNAMIC_API_TOKEN",
        "the API token (else DYN_API_TOKEN, else DYNAMIC_API_TOKEN_FILE, or --token-stdin); \
         never taken from a flag, never printed",
    ),
    (
        "DYNAMIC_API_TOKEN_FILE",
        "a file holding the token (a mounted secret), read when neither variable is set",
    ),
    ("DYNAMIC_BASE_URL", "the default of --base-url"),
    (
        "RUST_LOG",
        "log filter (e.g. dynamic_waas=debug); when set, it wins over -v",
    ),
    ("NO_COLOR", "any non-empty value: no colour in logs"),
];

/// The long help's epilogue: [`EXIT_CODES`] and the environment, wrapped to `width` columns.
pub fn exit_codes_help(width: usize) -> String {
    let mut text = String::from("Exit codes:\n");
    for (code, meaning) in EXIT_CODES {
        text.push_str(&hanging(&format!("  {code}  "), meaning, width));
    }
    text.push_str("\nEnvironment:\n");
    for (name, meaning) in ENVIRONMENT {
        text.push_str(&hanging(&format!("  {name:<19}"), meaning, width));
    }
    text.truncate(text.trim_end().len());
    text
}

/// `head` then `body` word-wrapped to `width`, continuation lines indented under the body.
fn hanging(head: &str, body: &str, width: usize) -> String {
    let indent = head.len();
    let mut out = head.to_owned();
    let mut column = indent;
    for (i, word) in body.split_whitespace().enumerate() {
        if i > 0 {
            if column + 1 + word.len() > width {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                column = indent;
            } else {
                out.push(' ');
                column += 1;
            }
        }
        out.push_str(word);
        column += word.len();
    }
    out.push('\n');
    out
}

pub const FAILURE: u8 = 1;
pub const INVALID_INPUT: u8 = 2;
pub const REFUSED: u8 = 3;
pub const RETRIES_EXHAUSTED: u8 = 4;
pub const OUTCOME_UNKNOWN: u8 = 5;
pub const TRANSPORT: u8 = 6;
pub const INVALID_RESPONSE: u8 = 7;
pub const RESULT_ON_STDERR: u8 = 8;
pub const PARTIAL: u8 = 9;
/// As shells report a process stopped by SIGINT.
pub const INTERRUPTED: u8 = 130;

/// A failed command.
#[derive(Debug)]
pub enum CliError {
    /// The SDK's error, from a call or from configuring the client (boxed: it is large).
    Api(Box<Error>),
    /// Input the CLI itself refused; nothing was sent.
    InvalidInput(String),
    /// The create succeeded but stdout could not take its result (written to stderr).
    ResultOnStderr(String),
    /// Something else went wrong.
    Other(String),
    /// The command printed its own report (create-many's summary); only the exit code is
    /// left to give.
    Reported(u8),
}

impl CliError {
    /// Invalid input, every problem listed (one a line when there are several).
    pub fn problems(problems: Vec<String>) -> Self {
        match problems.len() {
            1 => CliError::InvalidInput(problems.into_iter().next().unwrap_or_default()),
            n => CliError::InvalidInput(format!("{n} problems:\n  - {}", problems.join("\n  - "))),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Api(err) => code_of(err.kind()),
            CliError::InvalidInput(_) => INVALID_INPUT,
            CliError::ResultOnStderr(_) => RESULT_ON_STDERR,
            CliError::Other(_) => FAILURE,
            CliError::Reported(code) => *code,
        }
    }

    /// A stable snake_case name, for `{"error": {"kind": ...}}`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            CliError::Api(err) => err.kind().name(),
            CliError::InvalidInput(_) => "invalid_input",
            CliError::ResultOnStderr(_) => "result_on_stderr",
            CliError::Other(_) => "failure",
            CliError::Reported(_) => "reported",
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // With its causes: a command line has nowhere else to show them.
            CliError::Api(err) => write!(f, "{err:#}"),
            CliError::InvalidInput(message) => write!(f, "{message}"),
            CliError::ResultOnStderr(message) => write!(
                f,
                "the create succeeded, but its result could not be written to stdout \
                 ({message}); the key share ids are on stderr; do not create again"
            ),
            CliError::Other(message) => f.write_str(message),
            CliError::Reported(code) => write!(f, "exit {code}: see the summary"),
        }
    }
}

/// An SDK error about input, as `field: what is wrong` (problems are listed together).
pub fn problem(err: &Error) -> String {
    match err.kind() {
        ErrorKind::InvalidInput { field, reason } => format!("{field}: {reason}"),
        _ => err.to_string(),
    }
}

impl From<Error> for CliError {
    fn from(err: Error) -> Self {
        CliError::Api(Box::new(err))
    }
}

pub fn code_of(kind: &ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidInput { .. } => INVALID_INPUT,
        ErrorKind::TokenUnavailable
        | ErrorKind::BadRequest
        | ErrorKind::Unauthorized
        | ErrorKind::Forbidden
        | ErrorKind::NotFound
        | ErrorKind::AlreadyBackedUp
        | ErrorKind::Rejected => REFUSED,
        ErrorKind::RateLimited { .. } | ErrorKind::ServerError | ErrorKind::RetryBudgetSpent => {
            RETRIES_EXHAUSTED
        }
        ErrorKind::OutcomeUnknown { .. } => OUTCOME_UNKNOWN,
        ErrorKind::Transport | ErrorKind::Timeout => TRANSPORT,
        ErrorKind::InvalidResponse => INVALID_RESPONSE,
        _ => FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_and_exhaustion_are_told_apart() {
        assert_eq!(code_of(&ErrorKind::AlreadyBackedUp), REFUSED);
        assert_eq!(code_of(&ErrorKind::TokenUnavailable), REFUSED);
        assert_eq!(
            code_of(&ErrorKind::RateLimited { retry_after: None }),
            RETRIES_EXHAUSTED
        );
        assert_eq!(code_of(&ErrorKind::Timeout), TRANSPORT);
        let unknown = CliError::from(
            dynamic_waas::test_util::error(ErrorKind::OutcomeUnknown {
                reason: String::new(),
            })
            .build(),
        );
        assert_eq!(unknown.kind_name(), "outcome_unknown");
    }

    #[test]
    fn every_exit_code_is_in_the_table_once() {
        let codes: Vec<u8> = EXIT_CODES.iter().map(|(code, _)| *code).collect();
        let mut expected: Vec<u8> = (0..=PARTIAL).collect();
        expected.push(INTERRUPTED);
        assert_eq!(codes, expected);
    }

    #[test]
    fn the_help_lists_every_code_wrapped() {
        let help = exit_codes_help(60);
        for (code, meaning) in EXIT_CODES {
            let first_words: String = meaning
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ");
            assert!(
                help.contains(&format!("\n  {code}  {first_words}")),
                "{help}"
            );
        }
        assert!(
            help.lines()
                .all(|l| l.len() <= 60 || !l.trim().contains(' ')),
            "{help}"
        );
        assert!(help.contains("NO_COLOR") && help.contains("RUST_LOG"));
    }

    /// The rows of the first markdown table after `after` in `readme`, as (code, meaning)
    /// with backticks removed.
    fn readme_table(readme: &str, after: &str) -> Vec<(u8, String)> {
        let start = readme
            .find(after)
            .unwrap_or_else(|| panic!("no {after:?} in the README"));
        readme[start..]
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .filter_map(|row| {
                let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
                let code = cells.first()?.parse().ok()?;
                Some((code, cells.get(1)?.replace('`', "")))
            })
            .collect()
    }

    /// The READMEs' exit-code tables are EXIT_CODES, row by row.
    #[test]
    fn the_readme_tables_are_exit_codes() {
        let expected: Vec<(u8, String)> = EXIT_CODES
            .iter()
            .map(|(code, meaning)| (*code, meaning.to_string()))
            .collect();
        let dir = env!("CARGO_MANIFEST_DIR");
        let workspace = format!("{dir}/../README.md");
        // The workspace's README is there in a checkout, not in the packaged crate.
        let in_checkout = std::path::Path::new(&format!("{dir}/../Cargo.toml")).exists();
        let paths = if in_checkout {
            vec![workspace, format!("{dir}/README.md")]
        } else {
            vec![format!("{dir}/README.md")]
        };
        for path in paths {
            let readme = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(
                readme_table(&readme, "CLI exit codes"),
                expected,
                "{path}'s exit-code table differs from EXIT_CODES (src/exit.rs)"
            );
        }
    }
}
