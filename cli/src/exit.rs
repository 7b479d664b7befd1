//! Exit codes, and the errors the CLI reports.
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
//! | 8 | the create succeeded, but its result could not be written to stdout: the key share ids are on stderr, in one JSON line |

use std::fmt;

use dynamic_waas::{Error, ErrorKind};

/// The exit codes, for `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  any other failure (the sandbox could not start, stdout is closed, ...)
  2  invalid input or configuration; nothing was sent
  3  the API refused the request (400, 401, 403, 404, 422 already backed up, other 4xx but 429)
  4  rate limited or server error after every allowed attempt; retry later
  5  outcome unknown: the create may have happened; read the wallet before creating again
  6  transport failure or timeout
  7  the API's response could not be read
  8  the create succeeded, but stdout could not take the result: the key share ids
     are on stderr, in one JSON line {\"created\": {...}}; do not create again

Environment:
  DYNAMIC_API_TOKEN  the API token (else DYN_API_TOKEN); never taken from a flag, never printed
  DYNAMIC_BASE_URL   the default of --base-url";

pub const FAILURE: u8 = 1;
pub const INVALID_INPUT: u8 = 2;
pub const REFUSED: u8 = 3;
pub const RETRIES_EXHAUSTED: u8 = 4;
pub const OUTCOME_UNKNOWN: u8 = 5;
pub const TRANSPORT: u8 = 6;
pub const INVALID_RESPONSE: u8 = 7;
pub const RESULT_ON_STDERR: u8 = 8;

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
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Api(err) => code_of(err.kind()),
            CliError::InvalidInput(_) => INVALID_INPUT,
            CliError::ResultOnStderr(_) => RESULT_ON_STDERR,
            CliError::Other(_) => FAILURE,
        }
    }

    /// A stable snake_case name, for `{"error": {"kind": ...}}`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            CliError::Api(err) => kind_name(err.kind()),
            CliError::InvalidInput(_) => "invalid_input",
            CliError::ResultOnStderr(_) => "result_on_stderr",
            CliError::Other(_) => "failure",
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Api(err) => err.fmt(f),
            CliError::InvalidInput(message) => write!(f, "{message}; nothing was sent"),
            CliError::ResultOnStderr(message) => write!(
                f,
                "the create succeeded, but its result could not be written to stdout \
                 ({message}); the key share ids are on stderr; do not create again"
            ),
            CliError::Other(message) => f.write_str(message),
        }
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
        ErrorKind::RateLimited { .. } | ErrorKind::ServerError => RETRIES_EXHAUSTED,
        ErrorKind::OutcomeUnknown { .. } => OUTCOME_UNKNOWN,
        ErrorKind::Transport | ErrorKind::Timeout => TRANSPORT,
        ErrorKind::InvalidResponse => INVALID_RESPONSE,
        _ => FAILURE,
    }
}

pub fn kind_name(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidInput { .. } => "invalid_input",
        ErrorKind::TokenUnavailable => "token_unavailable",
        ErrorKind::BadRequest => "bad_request",
        ErrorKind::Unauthorized => "unauthorized",
        ErrorKind::Forbidden => "forbidden",
        ErrorKind::NotFound => "not_found",
        ErrorKind::AlreadyBackedUp => "already_backed_up",
        ErrorKind::Rejected => "rejected",
        ErrorKind::RateLimited { .. } => "rate_limited",
        ErrorKind::ServerError => "server_error",
        ErrorKind::OutcomeUnknown { .. } => "outcome_unknown",
        ErrorKind::Transport => "transport",
        ErrorKind::Timeout => "timeout",
        ErrorKind::InvalidResponse => "invalid_response",
        _ => "failure",
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
        assert_eq!(
            kind_name(&ErrorKind::OutcomeUnknown {
                reason: String::new()
            }),
            "outcome_unknown"
        );
    }
}
