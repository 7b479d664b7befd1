//! create-many's input: JSON lines or CSV, read row by row on a thread of its own (memory stays
//! flat however long the file), each row checked into a job or reported as a bad row with its
//! line number. Rows of other shards and rows a resumed run has settled are counted, not sent.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use dynamic_waas::{BackupJob, LocationRequest, NextRun};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::tally::Tally;
use crate::args::{
    parse_location, parse_location_json, BadRows, InputFormat, LocationFlags, Shard,
};
use crate::exit::CliError;

/// A row as the reader hands it over, in input order: checked into a job (its tag is its
/// line), or bad. The reader holds no handle on the results: what it reports goes through
/// the same channel, so stopping the intake never waits on a reader stuck on its input.
pub enum Row {
    Job(BackupJob),
    Bad { line: u64, message: String },
}

/// The longest line read as a row (1 MiB): a file without newlines (binary, say) is reported
/// a line at a time instead of filling memory.
const MAX_LINE: usize = 1024 * 1024;

/// What every row shares, and what decides whether it is sent.
pub struct Rules {
    pub environment_id: Option<String>,
    /// The `--location` flags: the locations of rows that name none, and whether a row's
    /// unknown location is sent.
    pub flags: LocationFlags,
    pub shard: Option<Shard>,
    pub bad_rows: BadRows,
    /// From a resumed run's results: what to do per wallet (absent: create).
    pub resume: HashMap<u128, NextRun>,
}

/// How reading ended.
pub enum Ended {
    /// Every row was read.
    Complete,
    /// A bad row stopped the run (`--bad-rows stop`).
    BadRow,
    /// The run stopped taking rows (Ctrl-C).
    Stopped,
}

/// Opens `path` (`-` for stdin) and picks the format.
pub fn open(
    path: &str,
    format: Option<InputFormat>,
) -> Result<(Box<dyn BufRead + Send>, InputFormat), CliError> {
    let mut reader: Box<dyn BufRead + Send> = if path == "-" {
        Box::new(BufReader::new(io::stdin()))
    } else {
        let file = File::open(path)
            .map_err(|e| CliError::InvalidInput(format!("cannot open --input {path}: {e}")))?;
        Box::new(BufReader::with_capacity(64 * 1024, file))
    };
    // A UTF-8 byte order mark (some editors and exports write one) is not part of the data.
    let head = reader
        .fill_buf()
        .map_err(|e| CliError::InvalidInput(format!("cannot read --input {path}: {e}")))?;
    if head.starts_with(b"\xEF\xBB\xBF") {
        reader.consume(3);
    }
    let format = match format {
        Some(format) => format,
        None if path.to_ascii_lowercase().ends_with(".csv") => InputFormat::Csv,
        None => {
            let head = reader
                .fill_buf()
                .map_err(|e| CliError::InvalidInput(format!("cannot read --input {path}: {e}")))?;
            match head.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'{') | None => InputFormat::Jsonl,
                Some(_) => InputFormat::Csv,
            }
        }
    };
    Ok((reader, format))
}

/// Whether `path` is a regular file: one that can be read twice (a pipe, a FIFO or stdin
/// cannot: a second reader takes rows from the first).
pub fn is_regular_file(path: &str) -> bool {
    path != "-" && std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// Counts the data rows of a regular file, for progress: lines, less a CSV header. `None`
/// for anything else.
pub fn count_rows(path: &str, format: InputFormat) -> Option<u64> {
    if !is_regular_file(path) {
        return None;
    }
    let mut file = BufReader::with_capacity(256 * 1024, File::open(path).ok()?);
    let mut lines = 0u64;
    let mut last = b'\n';
    loop {
        let buf = file.fill_buf().ok()?;
        if buf.is_empty() {
            break;
        }
        lines += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        last = buf[buf.len() - 1];
        let n = buf.len();
        file.consume(n);
    }
    if last != b'\n' {
        lines += 1;
    }
    Some(match format {
        InputFormat::Csv => lines.saturating_sub(1),
        InputFormat::Jsonl => lines,
    })
}

/// Reads every row, sending jobs and bad rows to `rows` in input order and counting the rows
/// skipped in `tally`. Blocking: run it on a thread of its own.
pub fn read(
    reader: Box<dyn BufRead + Send>,
    format: InputFormat,
    rules: &Rules,
    rows: &mpsc::Sender<Row>,
    tally: &Tally,
) -> Result<Ended, CliError> {
    let mut each = |line: u64, fields: Result<Fields, String>| -> Step {
        let row = match fields.and_then(|f| rules.check(f)) {
            Ok(Checked::Send(job)) => Row::Job(job.with_tag(line)),
            Ok(Checked::Skip) => {
                tally.skipped();
                return Step::Next;
            }
            Ok(Checked::OtherShard) => {
                tally.other_shard();
                return Step::Next;
            }
            Err(message) => {
                tracing::warn!(line, "bad row: {message}");
                Row::Bad { line, message }
            }
        };
        let bad = matches!(row, Row::Bad { .. });
        if rows.blocking_send(row).is_err() {
            return Step::Stop(Ended::Stopped);
        }
        if bad && rules.bad_rows == BadRows::Stop {
            return Step::Stop(Ended::BadRow);
        }
        Step::Next
    };
    match format {
        InputFormat::Jsonl => read_jsonl(reader, &mut each),
        InputFormat::Csv => read_csv(reader, &mut each),
    }
}

/// The reader's thread, ending as the input did.
pub type Reading = std::thread::JoinHandle<Result<Ended, CliError>>;

/// Starts [`read`] on a thread of its own, handing rows over a channel of `capacity`.
pub fn spawn_reader(
    reader: Box<dyn BufRead + Send>,
    format: InputFormat,
    rules: Rules,
    capacity: usize,
    tally: std::sync::Arc<Tally>,
) -> Result<(Reading, mpsc::Receiver<Row>), CliError> {
    let (rows_tx, rows_rx) = mpsc::channel::<Row>(capacity.max(1));
    let thread = std::thread::Builder::new()
        .name("input-reader".into())
        .spawn(move || read(reader, format, &rules, &rows_tx, &tally))
        .map_err(|e| CliError::Other(format!("cannot start the input reader: {e}")))?;
    Ok((thread, rows_rx))
}

enum Step {
    Next,
    Stop(Ended),
}

/// A wallet an input names, to seed a sandbox with.
#[cfg(feature = "sandbox")]
pub struct Named {
    pub environment_id: uuid::Uuid,
    pub wallet_id: uuid::Uuid,
    pub user_id: uuid::Uuid,
}

#[cfg(feature = "sandbox")]
/// Seeds the wallets of a bulk input, each owned by its user. They must share one
/// environment: the seed's token is moved to it.
pub fn seed_from(
    mut builder: dynamic_waas_sandbox::SandboxBuilder,
    seed: &dynamic_waas_sandbox::Seed,
    wallets: Vec<Named>,
) -> Result<dynamic_waas_sandbox::SandboxBuilder, CliError> {
    let Some(first) = wallets.first() else {
        return Ok(builder);
    };
    let environment = dynamic_waas::EnvironmentId::from(first.environment_id);
    if let Some(other) = wallets
        .iter()
        .find(|w| w.environment_id != first.environment_id)
    {
        return Err(CliError::InvalidInput(format!(
            "a sandbox seeded from an input takes one environment; the input names {} and {}",
            first.environment_id, other.environment_id
        )));
    }
    builder = builder.token(seed.token.clone(), environment.clone());
    for w in wallets {
        builder =
            builder
                .user(w.user_id, environment.clone())
                .wallet(dynamic_waas_sandbox::Wallet::new(
                    dynamic_waas::WalletId::from(w.wallet_id),
                    environment.clone(),
                    w.user_id,
                ));
    }
    Ok(builder)
}

/// The wallets `path` names (rows whose ids are UUIDs; a run reports the others), to seed a
/// sandbox with the input of a bulk run.
#[cfg(feature = "sandbox")]
pub fn wallets_in(
    path: &str,
    format: Option<InputFormat>,
    environment_id: Option<&str>,
) -> Result<Vec<Named>, CliError> {
    if !is_regular_file(path) {
        return Err(CliError::InvalidInput(format!(
            "seeding a sandbox from the input reads it twice, so it must be a regular file \
             ({path} is not)"
        )));
    }
    let (reader, format) = open(path, format)?;
    let mut wallets = Vec::new();
    let mut each = |_: u64, fields: Result<Fields, String>| {
        let Ok(fields) = fields else {
            return Step::Next;
        };
        let environment = fields.environment_id.as_deref().or(environment_id);
        let parse = |id: Option<&str>| id.and_then(|id| uuid::Uuid::try_parse(id.trim()).ok());
        if let (Some(environment_id), Some(wallet_id), Some(user_id)) = (
            parse(environment),
            parse(Some(&fields.wallet_id)),
            parse(Some(&fields.user_id)),
        ) {
            wallets.push(Named {
                environment_id,
                wallet_id,
                user_id,
            });
        }
        Step::Next
    };
    match format {
        InputFormat::Jsonl => read_jsonl(reader, &mut each)?,
        InputFormat::Csv => read_csv(reader, &mut each)?,
    };
    Ok(wallets)
}

/// A row's fields, as the input names them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Fields {
    environment_id: Option<String>,
    wallet_id: String,
    user_id: String,
    share_set_id: Option<String>,
    locations: Option<Vec<Value>>,
}

const CSV_COLUMNS: [&str; 5] = [
    "environmentId",
    "walletId",
    "userId",
    "shareSetId",
    "locations",
];

fn read_jsonl(
    mut reader: Box<dyn BufRead + Send>,
    each: &mut dyn FnMut(u64, Result<Fields, String>) -> Step,
) -> Result<Ended, CliError> {
    let fail = |e: io::Error| CliError::Other(format!("cannot read the input: {e}"));
    let mut bytes = Vec::new();
    let mut line = 0u64;
    loop {
        bytes.clear();
        line += 1;
        // At most MAX_LINE bytes and the newline; a longer line is bad, and skipped whole.
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut bytes)
            .map_err(fail)?;
        if n == 0 {
            return Ok(Ended::Complete);
        }
        let fields = if bytes.last() != Some(&b'\n') && bytes.len() > MAX_LINE {
            let mut rest = Vec::new();
            while (&mut reader)
                .take(64 * 1024)
                .read_until(b'\n', &mut rest)
                .map_err(fail)?
                > 0
            {
                if rest.last() == Some(&b'\n') {
                    break;
                }
                rest.clear();
            }
            Err(format!("the line is longer than {MAX_LINE} bytes"))
        } else {
            match std::str::from_utf8(&bytes) {
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => serde_json::from_str::<Fields>(text)
                    .map_err(|e| format!("not a valid row: {e}")),
                Err(_) => Err("the line is not UTF-8".into()),
            }
        };
        if let Step::Stop(ended) = each(line, fields) {
            return Ok(ended);
        }
    }
}

fn read_csv(
    reader: Box<dyn BufRead + Send>,
    each: &mut dyn FnMut(u64, Result<Fields, String>) -> Step,
) -> Result<Ended, CliError> {
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let header = csv
        .headers()
        .map_err(|e| CliError::InvalidInput(format!("line 1: cannot read the CSV header: {e}")))?
        .clone();
    // An empty file is an empty run.
    if header.is_empty() {
        return Ok(Ended::Complete);
    }
    let mut column: HashMap<&str, usize> = HashMap::new();
    for (i, name) in header.iter().enumerate() {
        let known = CSV_COLUMNS.iter().find(|c| **c == name).ok_or_else(|| {
            CliError::InvalidInput(format!(
                "line 1: unknown column {name:?}; expected {}",
                CSV_COLUMNS.join(", ")
            ))
        })?;
        if column.insert(known, i).is_some() {
            return Err(CliError::InvalidInput(format!(
                "line 1: column {name:?} appears twice"
            )));
        }
    }
    for required in ["walletId", "userId"] {
        if !column.contains_key(required) {
            return Err(CliError::InvalidInput(format!(
                "line 1: the CSV header has no {required} column (expected {})",
                CSV_COLUMNS.join(", ")
            )));
        }
    }
    let mut record = csv::StringRecord::new();
    loop {
        let line_before = csv.position().line();
        let fields = match csv.read_record(&mut record) {
            Ok(false) => return Ok(Ended::Complete),
            Ok(true) => {
                let get = |name: &str| {
                    column
                        .get(name)
                        .and_then(|&i| record.get(i))
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                };
                Ok(Fields {
                    environment_id: get("environmentId"),
                    wallet_id: get("walletId").unwrap_or_default(),
                    user_id: get("userId").unwrap_or_default(),
                    share_set_id: get("shareSetId"),
                    locations: get("locations").map(|l| {
                        l.split(';')
                            .filter(|s| !s.trim().is_empty())
                            .map(|s| Value::String(s.trim().to_owned()))
                            .collect()
                    }),
                })
            }
            // The input itself failed (a disk, a network mount): no row to report, and the
            // same error would come back at every call.
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                return Err(CliError::Other(format!("cannot read the input: {e}")))
            }
            Err(e) => Err(format!("not a valid CSV row: {e}")),
        };
        let line = record.position().map(|p| p.line()).unwrap_or(line_before);
        if let Step::Stop(ended) = each(line, fields) {
            return Ok(ended);
        }
    }
}

enum Checked {
    Send(BackupJob),
    Skip,
    OtherShard,
}

impl Rules {
    fn check(&self, fields: Fields) -> Result<Checked, String> {
        // The shard first: a row of another shard is that shard's to report.
        let wallet = uuid::Uuid::try_parse(fields.wallet_id.trim()).ok();
        if let (Some(shard), Some(wallet)) = (self.shard, wallet) {
            if !shard.contains(wallet) {
                return Ok(Checked::OtherShard);
            }
        } else if let Some(shard) = self.shard {
            // A wallet id that is no UUID has no shard: the first reports it.
            if shard.index != 1 {
                return Ok(Checked::OtherShard);
            }
        }
        let next = wallet
            .and_then(|w| self.resume.get(&w.as_u128()).copied())
            .unwrap_or(NextRun::Create);
        if next == NextRun::Skip {
            return Ok(Checked::Skip);
        }
        let environment = fields
            .environment_id
            .or_else(|| self.environment_id.clone())
            .ok_or("no environmentId (give it in the row or with --environment-id)")?;
        let locations = match fields.locations {
            Some(locations) if !locations.is_empty() => locations
                .iter()
                .map(|value| {
                    match value {
                        Value::String(spec) => parse_location(spec),
                        Value::Object(_) => parse_location_json(&value.to_string()),
                        other => Err(format!("a location is a string or an object, not {other}")),
                    }
                    .map_err(|e| format!("locations: {e}"))
                })
                .collect::<Result<Vec<_>, String>>()?,
            _ if self.flags.locations.is_empty() => {
                return Err("no locations (give them in the row or with --location)".into())
            }
            _ => Vec::new(),
        };
        self.flags
            .check(&locations)
            .map_err(|e| format!("locations: {e}"))?;
        let requests: Vec<LocationRequest> = if locations.is_empty() {
            self.flags
                .locations
                .iter()
                .map(|l| l.request.clone())
                .collect()
        } else {
            locations.into_iter().map(|l| l.request).collect()
        };
        let mut job = BackupJob::new(
            environment.as_str(),
            fields.wallet_id.as_str(),
            fields.user_id.as_str(),
            requests,
        )
        .map_err(|e| e.to_string())?;
        if let Some(share_set) = fields.share_set_id {
            job = job
                .with_share_set_id(share_set.as_str())
                .map_err(|e| e.to_string())?;
        }
        if next == NextRun::ReadFirst {
            job = job.resumed();
        }
        Ok(Checked::Send(job))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: &str = "0b1c2d3e-4f50-4617-8899-aabbccddeeff";
    const WALLET: &str = "95b11417-f18f-457f-8804-68e361f9164f";
    const USER: &str = "3c90c3cc-0d44-4b50-8888-8dd25736052a";

    fn rules() -> Rules {
        Rules {
            environment_id: None,
            flags: LocationFlags {
                locations: vec![crate::args::parse_location("googleDrive").unwrap()],
                location_json: Vec::new(),
                allow_unknown_location: false,
            },
            shard: None,
            bad_rows: BadRows::Skip,
            resume: HashMap::new(),
        }
    }

    fn fields(json: Value) -> Fields {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn rows_are_checked_with_reasons() {
        let r = rules();
        let ok =
            fields(serde_json::json!({"environmentId": ENV, "walletId": WALLET, "userId": USER}));
        assert!(matches!(r.check(ok), Ok(Checked::Send(_))));
        for (row, says) in [
            (
                serde_json::json!({"walletId": WALLET, "userId": USER}),
                "environmentId",
            ),
            (
                serde_json::json!({"environmentId": ENV, "walletId": "w", "userId": USER}),
                "walletId",
            ),
            (
                serde_json::json!({"environmentId": ENV, "walletId": WALLET, "userId": "u"}),
                "userId",
            ),
            (
                serde_json::json!({"environmentId": ENV, "walletId": WALLET, "userId": USER, "locations": ["paper"]}),
                "unknown location",
            ),
            (
                serde_json::json!({"environmentId": ENV, "walletId": WALLET, "userId": USER, "shareSetId": "x"}),
                "shareSetId",
            ),
        ] {
            let err = r
                .check(fields(row.clone()))
                .err()
                .unwrap_or_else(|| panic!("{row}"));
            assert!(err.contains(says), "{row}: {err}");
        }
        let unknown = serde_json::from_str::<Fields>(&format!(
            r#"{{"walletId":"{WALLET}","userId":"{USER}","colour":"red"}}"#
        ));
        assert!(unknown.unwrap_err().to_string().contains("colour"));
    }

    #[test]
    fn resume_skips_settled_wallets_and_reads_first_for_the_others() {
        let mut r = rules();
        let wallet = uuid::Uuid::parse_str(WALLET).unwrap().as_u128();
        let row = || {
            fields(serde_json::json!({"environmentId": ENV, "walletId": WALLET, "userId": USER}))
        };
        r.resume.insert(wallet, NextRun::Skip);
        assert!(matches!(r.check(row()), Ok(Checked::Skip)));
        r.resume.insert(wallet, NextRun::ReadFirst);
        let Ok(Checked::Send(job)) = r.check(row()) else {
            panic!("not sent")
        };
        assert!(job.is_resumed());
    }
}
