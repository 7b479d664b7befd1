//! What goes to stdout: one JSON document, or a short human summary.

use std::io::{self, IsTerminal, Write};

use std::borrow::Cow;

use dynamic_waas::{BackupStatus, CreatedBackup, Wallet};
use serde_json::{json, Value};

use crate::args::OutputFormat;
use crate::exit::CliError;

/// Where results go, in which format.
#[derive(Clone, Copy, Debug)]
pub struct Printer {
    format: OutputFormat,
}

impl Printer {
    /// `format`, or text when stdout is a terminal and JSON otherwise.
    pub fn new(format: Option<OutputFormat>) -> Self {
        let format = format.unwrap_or(if io::stdout().is_terminal() {
            OutputFormat::Text
        } else {
            OutputFormat::Json
        });
        Self { format }
    }

    pub fn created(&self, created: &CreatedBackup) -> io::Result<()> {
        match self.format {
            // The 201 body as received (fields this SDK does not know included); a
            // reconciled result has none and is printed in the same shape.
            OutputFormat::Json => match created.raw_body() {
                Some(raw) if serde_json::from_slice::<Value>(raw).is_ok() => print_raw(raw),
                _ => print_json(&serde_json::to_value(created)?),
            },
            // Every string the server chose is escaped: a terminal must not run its controls.
            OutputFormat::Text => {
                let mut text =
                    format!("Backed up wallet {}", escaped(created.wallet_id().as_str()));
                match created.status() {
                    BackupStatus::Reconciled => {
                        text.push_str(" (reconciled from a wallet read after a lost response)")
                    }
                    BackupStatus::AlreadyBackedUp => {
                        text.push_str(" (backed up before; read from the wallet)")
                    }
                    _ => {}
                }
                text.push_str(":\n");
                for share in created.locations_with_key_shares() {
                    text.push_str(&format!(
                        "  {:<12} keyShareId {}",
                        escaped(share.location.as_str()),
                        escaped(share.key_share_id.as_str())
                    ));
                    if let Some(external) = &share.external_key_share_id {
                        text.push_str(&format!(
                            "  externalKeyShareId {}",
                            escaped(external.as_str())
                        ));
                    }
                    text.push('\n');
                }
                let share_set = [
                    created
                        .share_set_id()
                        .map(|id| format!("share set {}", escaped(id))),
                    created
                        .share_set_type()
                        .map(|t| format!("type {}", escaped(t.as_str()))),
                    created
                        .password_update_status()
                        .map(|s| format!("password update {}", escaped(s.as_str()))),
                    created
                        .wallet_active()
                        .map(|a| format!("wallet {}", if a { "active" } else { "inactive" })),
                ];
                let share_set: Vec<String> = share_set.into_iter().flatten().collect();
                if !share_set.is_empty() {
                    text.push_str(&format!("  {}\n", share_set.join(", ")));
                }
                print_text(&text)
            }
        }
    }

    /// A wallet: in JSON, the body exactly as received (fields this SDK does not know
    /// included).
    pub fn wallet(&self, wallet: &Wallet, raw: &[u8]) -> io::Result<()> {
        match self.format {
            OutputFormat::Json => match serde_json::from_slice::<Value>(raw) {
                Ok(_) => print_raw(raw),
                Err(_) => print_json(&json!({ "wallet": wallet })),
            },
            OutputFormat::Text => {
                let mut text = format!(
                    "Wallet {} ({}, {}, {})\n  account address {}\n",
                    escaped(wallet.wallet_id.as_str()),
                    escaped(wallet.chain_name.as_str()),
                    escaped(wallet.threshold_signature_scheme.as_str()),
                    escaped(&wallet.derivation_path),
                    escaped(&wallet.account_address),
                );
                if wallet.key_shares.is_empty() {
                    text.push_str("  no key shares backed up\n");
                }
                for share in &wallet.key_shares {
                    text.push_str(&format!(
                        "  {:<12} keyShareId {}",
                        escaped(share.location.as_str()),
                        escaped(share.id.as_str())
                    ));
                    if let Some(external) = &share.external_key_share_id {
                        text.push_str(&format!("  externalKeyShareId {}", escaped(external)));
                    }
                    text.push('\n');
                }
                print_text(&text)
            }
        }
    }

    /// Prints any JSON document, or `text` in text output (`sandbox serve`'s, create-many's
    /// summary).
    pub fn value(&self, value: &Value, text: &str) -> io::Result<()> {
        match self.format {
            OutputFormat::Json => print_json(value),
            OutputFormat::Text => print_text(text),
        }
    }

    /// Whether stdout gets JSON.
    pub fn is_json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    /// Prints the error document on stdout only (the message went to stderr already).
    pub fn json_error(&self, err: &CliError) {
        // Nothing more can be done if stdout is gone; the exit code still tells.
        let _ = print_json(&error_document(err));
    }

    /// Reports a failure: a one-line message on stderr, and in JSON mode the error document
    /// on stdout.
    pub fn error(&self, err: &CliError) {
        if matches!(err, CliError::Reported(_)) {
            return;
        }
        // A closed stderr must not panic (as `eprintln!` would): the exit code still tells.
        // The message may quote a server: its controls are escaped, its lines kept.
        let message = err.to_string();
        let message: Vec<Cow<'_, str>> = message.lines().map(escaped).collect();
        let _ = writeln!(io::stderr().lock(), "error: {}", message.join("\n"));
        if self.is_json() {
            self.json_error(err);
        }
    }
}

/// `text` as a terminal may show it: control characters (ANSI escapes, line breaks, bells,
/// C1 controls), line and paragraph separators, and the invisible characters that reorder or
/// reshape text (bidirectional overrides and marks, the deprecated shaping controls) are
/// written as `\u{..}` escapes, so that a string a server chose can neither clear the screen,
/// set the window title nor fake a line. JSON output and the results file keep strings exact.
pub fn escaped(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(
                c,
                // The Arabic letter mark and the invisible marks, bidirectional ones included.
                '\u{061c}'
                    | '\u{200b}'..='\u{200f}'
                    | '\u{202a}'..='\u{202e}'
                    | '\u{2060}'..='\u{2069}'
                    | '\u{206a}'..='\u{206f}'
                    | '\u{feff}'
                    | '\u{fff9}'..='\u{fffb}'
                    // Line and paragraph separators: a line break to some renderers.
                    | '\u{2028}'
                    | '\u{2029}'
            )
    };
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The last resort for a create's result when stdout cannot take it: one JSON line on stderr,
/// `{"created": {...}}`, so the key share ids are not lost. Never panics.
pub fn created_to_stderr(created: &CreatedBackup) {
    let line = match serde_json::to_string(&json!({ "created": created })) {
        Ok(line) => line,
        Err(_) => return,
    };
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{line}");
    let _ = err.flush();
}

/// `{"error": {"kind", "status", "message", "requestId", "attempts"}}`.
pub fn error_document(err: &CliError) -> Value {
    let (status, request_id, attempts) = match err {
        CliError::Api(api) => (
            api.status().map(|s| s.as_u16()),
            api.request_id().map(str::to_owned),
            api.attempts(),
        ),
        CliError::InvalidInput(_)
        | CliError::ResultOnStderr(_)
        | CliError::Other(_)
        | CliError::Reported(_) => (None, None, 0),
    };
    json!({
        "error": {
            "kind": err.kind_name(),
            "status": status,
            "message": err.to_string(),
            "requestId": request_id,
            "attempts": attempts,
        }
    })
}

fn print_json(value: &Value) -> io::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()
}

/// A JSON document as received, on one line of its own.
fn print_raw(raw: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(raw)?;
    if !raw.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    out.flush()
}

fn print_text(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_a_server_sends_are_escaped() {
        let hostile = "\u{1b}[2J\u{1b}[31mPWNED\u{1b}]0;owned\u{7}\n\rspoof\u{202e}txt\u{9b}1m";
        let shown = escaped(hostile);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown}");
        assert_eq!(
            shown,
            "\\u{1b}[2J\\u{1b}[31mPWNED\\u{1b}]0;owned\\u{7}\\u{a}\\u{d}spoof\\u{202e}txt\\u{9b}1m"
        );
        assert!(matches!(escaped("googleDrive 6d97-3dce"), Cow::Borrowed(_)));
    }
}
