//! create-many's input: JSON lines or CSV, read a physical line at a time on a thread of its
//! own (memory stays flat however long the file), each line checked into a job or reported
//! as a bad row with every problem it has. A line never swallows the next: a CSV field may
//! not span lines, and a line is at most [`MAX_LINE`] bytes. Rows of other shards and rows a
//! resumed run has settled are counted, not sent.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use dynamic_waas::{BackupJob, LocationRequest, NextRun};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::resume::Resume;
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

/// The longest line read as a row (1 MiB).
pub const MAX_LINE: usize = 1024 * 1024;
/// How far past [`MAX_LINE`] a line's end is looked for before the input is refused as not
/// a file of lines (`/dev/zero`, a binary file): bounded time and memory, whatever it is.
const MAX_SKIP: u64 = 64 * 1024 * 1024;

/// What every row shares, and what decides whether it is sent.
pub struct Rules {
    pub environment_id: Option<String>,
    /// The `--location` flags: the locations of rows that name none, and whether a row's
    /// unknown location is sent.
    pub flags: LocationFlags,
    pub shard: Option<Shard>,
    pub bad_rows: BadRows,
    /// From a resumed run's results: what to do per wallet (absent: create).
    pub resume: Resume,
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

/// Counts the data rows of a regular file, for progress: non-blank lines, less a CSV header.
/// `None` for anything else.
pub fn count_rows(path: &str, format: InputFormat) -> Option<u64> {
    if !is_regular_file(path) {
        return None;
    }
    let mut lines = Lines::new(Box::new(BufReader::with_capacity(
        256 * 1024,
        File::open(path).ok()?,
    )));
    let mut rows = 0u64;
    while let Some(line) = lines.next_line().ok()? {
        if !matches!(&line.text, Text::Line(bytes) if bytes.iter().all(u8::is_ascii_whitespace)) {
            rows += 1;
        }
    }
    Some(match format {
        InputFormat::Csv => rows.saturating_sub(1),
        InputFormat::Jsonl => rows,
    })
}

/// One physical line of the input.
struct Line {
    number: u64,
    text: Text,
}

enum Text {
    /// The line's bytes, without its end (`\n` or `\r\n`).
    Line(Vec<u8>),
    /// Longer than [`MAX_LINE`]: skipped to its end.
    TooLong,
}

/// The input a physical line at a time, each bounded.
struct Lines {
    reader: Box<dyn BufRead + Send>,
    number: u64,
    buf: Vec<u8>,
}

impl Lines {
    fn new(reader: Box<dyn BufRead + Send>) -> Self {
        Self {
            reader,
            number: 0,
            buf: Vec::new(),
        }
    }

    fn next_line(&mut self) -> Result<Option<Line>, CliError> {
        let fail = |e: io::Error| CliError::Other(format!("cannot read the input: {e}"));
        self.buf.clear();
        let n = (&mut self.reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut self.buf)
            .map_err(fail)?;
        if n == 0 {
            return Ok(None);
        }
        self.number += 1;
        let number = self.number;
        if self.buf.last() != Some(&b'\n') && self.buf.len() > MAX_LINE {
            // Skip to the line's end, a bounded way.
            let mut skipped = 0u64;
            loop {
                self.buf.clear();
                let n = (&mut self.reader)
                    .take(64 * 1024)
                    .read_until(b'\n', &mut self.buf)
                    .map_err(fail)?;
                skipped += n as u64;
                if n == 0 || self.buf.last() == Some(&b'\n') {
                    break;
                }
                if skipped > MAX_SKIP {
                    return Err(CliError::InvalidInput(format!(
                        "line {number} runs on for over {} MiB without an end: --input is not \
                         a file of lines (JSON lines or CSV)",
                        (MAX_LINE as u64 + MAX_SKIP) >> 20
                    )));
                }
            }
            self.buf.clear();
            return Ok(Some(Line {
                number,
                text: Text::TooLong,
            }));
        }
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        }
        Ok(Some(Line {
            number,
            text: Text::Line(std::mem::take(&mut self.buf)),
        }))
    }
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
    let mut seen = Seen::new();
    let mut each = |line: u64, fields: Result<Fields, Vec<String>>| -> Step {
        let row = match fields.and_then(|f| rules.check(f)) {
            Ok(Checked::Send(job)) => {
                // A wallet an earlier row of this run sent: its job may have ended already
                // (the library holds a later job only while the earlier runs), and a create
                // sent again soon after one was applied may pass a duplicate check that
                // lags. Read first: its key shares, or a create only if it has none.
                let wallet = job.wallet_id().to_uuid().map_or(0, |w| w.as_u128());
                let job = if seen.insert(wallet) && !job.is_resumed() {
                    job.resumed()
                } else {
                    job
                };
                Row::Job(job.with_tag(line))
            }
            Ok(Checked::Skip) => {
                tally.skipped();
                return Step::Next;
            }
            Ok(Checked::OtherShard) => {
                tally.other_shard();
                return Step::Next;
            }
            Err(problems) => Row::Bad {
                line,
                message: problems.join("; "),
            },
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
    each_row(reader, format, &mut each)
}

/// The wallets a run has sent, in a fixed 8 MiB however long the input (a Bloom filter of
/// three hashes): a wallet seen before is always said to be; one not seen may be too, rarely
/// (about one row in 10,000 after a million wallets, one in 20 after ten million), which
/// costs that row a wallet read before its create, nothing more.
struct Seen {
    bits: Vec<u64>,
}

impl Seen {
    /// 2^26 bits.
    const BITS: u32 = 26;

    fn new() -> Self {
        Self {
            bits: vec![0; 1 << (Self::BITS - 6)],
        }
    }

    /// Records `wallet`; whether it may have been recorded before.
    fn insert(&mut self, wallet: u128) -> bool {
        let folded = (wallet as u64) ^ ((wallet >> 64) as u64).rotate_left(29);
        let mut seen = true;
        for salt in [
            0x9e37_79b9_7f4a_7c15_u64,
            0xc2b2_ae3d_27d4_eb4f,
            0x1656_67b1_9e37_79f9,
        ] {
            // splitmix64's finalizer: ids need not be random (v1, v7, sequential).
            let mut h = folded ^ salt;
            h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            h ^= h >> 31;
            let at = h & ((1 << Self::BITS) - 1);
            let (word, bit) = ((at >> 6) as usize, 1u64 << (at & 63));
            seen &= self.bits[word] & bit != 0;
            self.bits[word] |= bit;
        }
        seen
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

type Each<'e> = dyn FnMut(u64, Result<Fields, Vec<String>>) -> Step + 'e;

fn each_row(
    reader: Box<dyn BufRead + Send>,
    format: InputFormat,
    each: &mut Each<'_>,
) -> Result<Ended, CliError> {
    match format {
        InputFormat::Jsonl => read_jsonl(reader, each),
        InputFormat::Csv => read_csv(reader, each),
    }
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
                    w.wallet_id,
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
    let mut each = |_: u64, fields: Result<Fields, Vec<String>>| {
        let Ok(fields) = fields else {
            return Step::Next;
        };
        let environment = fields.environment_id.as_deref().or(environment_id);
        let parse = |id: Option<&str>| id.and_then(|id| uuid::Uuid::try_parse(id.trim()).ok());
        if let (Some(environment_id), Some(wallet_id), Some(user_id)) = (
            parse(environment),
            parse(fields.wallet_id.as_deref()),
            parse(fields.user_id.as_deref()),
        ) {
            wallets.push(Named {
                environment_id,
                wallet_id,
                user_id,
            });
        }
        Step::Next
    };
    each_row(reader, format, &mut each)?;
    Ok(wallets)
}

/// A row's fields, as the input names them (each checked later, all problems together).
#[derive(Debug, Default)]
struct Fields {
    environment_id: Option<String>,
    wallet_id: Option<String>,
    user_id: Option<String>,
    share_set_id: Option<String>,
    locations: Option<Vec<Value>>,
    /// What is wrong with the row's shape (unknown fields, wrong types), reported with the
    /// problems of its values.
    problems: Vec<String>,
}

const COLUMNS: [&str; 5] = [
    "environmentId",
    "walletId",
    "userId",
    "shareSetId",
    "locations",
];

/// What a line that is not a row says, in a sentence.
fn not_text() -> Vec<String> {
    vec!["the line is not UTF-8 text".into()]
}

fn too_long() -> Vec<String> {
    vec![format!("the line is longer than {} MiB", MAX_LINE >> 20)]
}

fn read_jsonl(reader: Box<dyn BufRead + Send>, each: &mut Each<'_>) -> Result<Ended, CliError> {
    let mut lines = Lines::new(reader);
    while let Some(line) = lines.next_line()? {
        let fields = match &line.text {
            Text::TooLong => Err(too_long()),
            Text::Line(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => json_fields(text),
                Err(_) => Err(not_text()),
            },
        };
        if let Step::Stop(ended) = each(line.number, fields) {
            return Ok(ended);
        }
    }
    Ok(Ended::Complete)
}

/// A JSON lines row: one object, every field checked for its type, every unknown field named.
fn json_fields(text: &str) -> Result<Fields, Vec<String>> {
    let object: Map<String, Value> = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => object,
        Ok(other) => {
            return Err(vec![format!(
                "not a JSON object but {}; each line is one object such as \
                 {{\"walletId\": \"...\", \"userId\": \"...\"}}",
                json_kind(&other)
            )])
        }
        Err(e) => {
            let reason = e.to_string();
            // serde's position says nothing a line number does not.
            let reason = reason
                .rsplit_once(" at line ")
                .map_or(reason.as_str(), |(head, _)| head);
            return Err(vec![format!("not valid JSON ({reason})")]);
        }
    };
    let mut problems = Vec::new();
    let mut fields = Fields::default();
    for (key, value) in object {
        let text = |value: Value, problems: &mut Vec<String>| match value {
            Value::String(s) => Some(s),
            Value::Null => None,
            other => {
                problems.push(format!(
                    "{key}: a string is expected, not {}",
                    json_kind(&other)
                ));
                None
            }
        };
        match key.as_str() {
            "environmentId" => fields.environment_id = text(value, &mut problems),
            "walletId" => fields.wallet_id = text(value, &mut problems),
            "userId" => fields.user_id = text(value, &mut problems),
            "shareSetId" => fields.share_set_id = text(value, &mut problems),
            "locations" => match value {
                Value::Array(items) => fields.locations = Some(items),
                Value::Null => {}
                other => problems.push(format!(
                    "locations: a list is expected, not {}",
                    json_kind(&other)
                )),
            },
            other => problems.push(format!(
                "unknown field {other:?} (the fields are {})",
                COLUMNS.join(", ")
            )),
        }
    }
    fields.problems = problems;
    Ok(fields)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn read_csv(reader: Box<dyn BufRead + Send>, each: &mut Each<'_>) -> Result<Ended, CliError> {
    let mut lines = Lines::new(reader);
    // The header: the first non-blank line.
    let header = loop {
        let Some(line) = lines.next_line()? else {
            // An empty file is an empty run.
            return Ok(Ended::Complete);
        };
        let bytes = match line.text {
            Text::Line(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => continue,
            Text::Line(bytes) => bytes,
            Text::TooLong => {
                return Err(CliError::InvalidInput(format!(
                    "line {}: the CSV header is longer than {} MiB",
                    line.number,
                    MAX_LINE >> 20
                )))
            }
        };
        let fields = csv_record(&bytes).map_err(|problem| {
            CliError::InvalidInput(format!(
                "line {}: cannot read the CSV header: {problem}",
                line.number
            ))
        })?;
        break (line.number, fields);
    };
    let (header_line, header) = header;
    let mut column: Vec<(&str, usize)> = Vec::new();
    for (i, name) in header.iter().enumerate() {
        let known = COLUMNS.iter().find(|c| **c == name).ok_or_else(|| {
            CliError::InvalidInput(format!(
                "line {header_line}: unknown column {name:?}; expected {}",
                COLUMNS.join(", ")
            ))
        })?;
        if column.iter().any(|(c, _)| c == known) {
            return Err(CliError::InvalidInput(format!(
                "line {header_line}: column {name:?} appears twice"
            )));
        }
        column.push((known, i));
    }
    for required in ["walletId", "userId"] {
        if !column.iter().any(|(c, _)| *c == required) {
            return Err(CliError::InvalidInput(format!(
                "line {header_line}: the CSV header has no {required} column (expected {})",
                COLUMNS.join(", ")
            )));
        }
    }
    while let Some(line) = lines.next_line()? {
        let fields = match &line.text {
            Text::TooLong => Err(too_long()),
            Text::Line(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => continue,
            Text::Line(bytes) => csv_record(bytes)
                .map_err(|problem| vec![problem])
                .and_then(|record| csv_fields(&record, &column, header.len())),
        };
        if let Step::Stop(ended) = each(line.number, fields) {
            return Ok(ended);
        }
    }
    Ok(Ended::Complete)
}

/// One CSV record from one line (a field may not span lines), its fields trimmed.
fn csv_record(bytes: &[u8]) -> Result<Vec<String>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the line is not UTF-8 text".to_owned())?;
    // Quotes come in pairs in a well-formed line (a quote inside a quoted field is doubled).
    if text.bytes().filter(|&b| b == b'"').count() % 2 == 1 {
        return Err(
            "a quote is opened and never closed on this line (a field may not span lines)".into(),
        );
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(bytes);
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => {}
        Ok(false) => return Ok(Vec::new()),
        Err(e) => return Err(format!("not a valid CSV line: {e}")),
    }
    // A carriage return outside quotes ends a record too: a file with old Mac line ends (`\r`
    // alone) is one line of many records, and the records after the first would be lost
    // without a word. Every record of the input is a row, or a reported bad one.
    let mut more = csv::StringRecord::new();
    if !matches!(reader.read_record(&mut more), Ok(false)) {
        return Err(
            "more than one CSV record on this line: a carriage return (\\r) ends a record; \
             save the file with \\n or \\r\\n line ends"
                .into(),
        );
    }
    Ok(record.iter().map(str::to_owned).collect())
}

fn csv_fields(
    record: &[String],
    column: &[(&str, usize)],
    width: usize,
) -> Result<Fields, Vec<String>> {
    if record.len() != width {
        return Err(vec![format!(
            "{} fields where the header has {width}",
            record.len()
        )]);
    }
    let get = |name: &str| {
        column
            .iter()
            .find(|(c, _)| *c == name)
            .and_then(|&(_, i)| record.get(i))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    Ok(Fields {
        environment_id: get("environmentId"),
        wallet_id: get("walletId"),
        user_id: get("userId"),
        share_set_id: get("shareSetId"),
        locations: get("locations").map(|l| {
            l.split(';')
                .filter(|s| !s.trim().is_empty())
                .map(|s| Value::String(s.trim().to_owned()))
                .collect()
        }),
        problems: Vec::new(),
    })
}

enum Checked {
    Send(BackupJob),
    Skip,
    OtherShard,
}

/// An SDK error of a row, as `field: what is wrong` (a row's problems are listed together).
fn problem(err: &dynamic_waas::Error) -> String {
    match err.kind() {
        dynamic_waas::ErrorKind::InvalidInput { field, reason } => format!("{field}: {reason}"),
        _ => err.to_string(),
    }
}

impl Rules {
    fn check(&self, mut fields: Fields) -> Result<Checked, Vec<String>> {
        let mut problems = std::mem::take(&mut fields.problems);
        // The shard first: a row of another shard is that shard's to report.
        let wallet = fields
            .wallet_id
            .as_deref()
            .and_then(|w| uuid::Uuid::try_parse(w.trim()).ok());
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
        let next = wallet.map_or(NextRun::Create, |w| self.resume.decide(w.as_u128()));
        if next == NextRun::Skip {
            return Ok(Checked::Skip);
        }
        let environment = fields
            .environment_id
            .or_else(|| self.environment_id.clone());
        if environment.is_none() {
            problems.push(
                "environmentId: missing (give it in the row or with --environment-id)".into(),
            );
        }
        if fields.wallet_id.is_none() {
            problems.push("walletId: missing".into());
        }
        if fields.user_id.is_none() {
            problems.push("userId: missing".into());
        }
        let mut requests: Vec<LocationRequest> = Vec::new();
        match fields.locations {
            Some(locations) if !locations.is_empty() => {
                let mut specs = Vec::new();
                for (i, value) in locations.iter().enumerate() {
                    let spec = match value {
                        Value::String(spec) => parse_location(spec),
                        Value::Object(_) => parse_location_json(&value.to_string()),
                        other => Err(format!(
                            "a location is a string or an object, not {}",
                            json_kind(other)
                        )),
                    };
                    match spec {
                        Ok(spec) => specs.push(spec),
                        Err(e) => problems.push(format!("locations[{i}]: {e}")),
                    }
                }
                if let Err(e) = self.flags.check(&specs) {
                    problems.push(format!("locations: {e}"));
                }
                requests = specs.into_iter().map(|l| l.request).collect();
            }
            _ if self.flags.locations.is_empty() => {
                problems.push("locations: none (give them in the row or with --location)".into())
            }
            _ => {
                requests = self
                    .flags
                    .locations
                    .iter()
                    .map(|l| l.request.clone())
                    .collect()
            }
        }
        // Each id on its own, so that every bad one is named.
        let env_id = environment
            .as_deref()
            .map(|e| dynamic_waas::EnvironmentId::parse(e.trim()));
        let wallet_id = fields
            .wallet_id
            .as_deref()
            .map(|w| dynamic_waas::WalletId::parse(w.trim()));
        let user_id = fields
            .user_id
            .as_deref()
            .map(|u| dynamic_waas::UserId::parse(u.trim()));
        let share_set = fields
            .share_set_id
            .as_deref()
            .map(|s| dynamic_waas::ShareSetId::parse(s.trim()));
        for invalid in [
            env_id.as_ref().and_then(|r| r.as_ref().err()),
            wallet_id.as_ref().and_then(|r| r.as_ref().err()),
            user_id.as_ref().and_then(|r| r.as_ref().err()),
            share_set.as_ref().and_then(|r| r.as_ref().err()),
        ]
        .into_iter()
        .flatten()
        {
            problems.push(format!("{}: {}", invalid.field(), invalid.problem()));
        }
        let (Some(Ok(env)), Some(Ok(wallet_id)), Some(Ok(user))) = (env_id, wallet_id, user_id)
        else {
            return Err(problems);
        };
        let job = BackupJob::new(env, wallet_id, user, requests);
        let mut job = match job {
            Ok(job) if problems.is_empty() => job,
            Ok(_) => return Err(problems),
            Err(e) => {
                problems.push(problem(&e));
                return Err(problems);
            }
        };
        if let Some(Ok(share_set)) = share_set {
            job = job
                .with_share_set_id(share_set)
                .map_err(|e| vec![problem(&e)])?;
        }
        if next == NextRun::ReadFirst {
            job = match self.resume.earlier_ended() {
                Some(at) => job.resumed_since(at),
                None => job.resumed(),
            };
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
            resume: Resume::default(),
        }
    }

    fn check(r: &Rules, row: Value) -> Result<Checked, Vec<String>> {
        json_fields(&row.to_string()).and_then(|f| r.check(f))
    }

    #[test]
    fn every_problem_of_a_row_is_reported() {
        let r = rules();
        let ok = serde_json::json!({"environmentId": ENV, "walletId": WALLET, "userId": USER});
        assert!(matches!(check(&r, ok), Ok(Checked::Send(_))));
        let bad = serde_json::json!({
            "walletId": "w", "userId": "U", "shareSetId": "x", "colour": "red",
            "locations": ["paper"],
        });
        let problems = check(&r, bad).err().unwrap();
        let all = problems.join("\n");
        for says in [
            "colour",
            "environmentId",
            "walletId",
            "userId",
            "shareSetId",
            "unknown location",
        ] {
            assert!(all.contains(says), "{says}: {all}");
        }
        assert!(!all.contains("nothing was sent"), "{all}");
    }

    #[test]
    fn a_line_that_is_not_an_object_says_so_plainly() {
        let err = json_fields("walletId,userId").unwrap_err().join("");
        assert!(err.starts_with("not valid JSON"), "{err}");
        assert!(!err.contains("line 1 column"), "{err}");
        let err = json_fields("[1]").unwrap_err().join("");
        assert!(err.contains("not a JSON object but a list"), "{err}");
    }

    #[test]
    fn a_csv_line_never_swallows_the_next() {
        assert_eq!(csv_record(b"a,\"b,c\" ,d").unwrap(), ["a", "b,c", "d"]);
        let err = csv_record(b"a,\"b,c").unwrap_err();
        assert!(err.contains("never closed"), "{err}");
        let input = format!(
            "walletId,userId,environmentId\n{WALLET},\"{USER},{ENV}\n{WALLET},{USER},{ENV}\n"
        );
        let mut seen = Vec::new();
        let mut each = |line: u64, fields: Result<Fields, Vec<String>>| {
            seen.push((line, fields.is_ok()));
            Step::Next
        };
        let reader: Box<dyn BufRead + Send> = Box::new(io::Cursor::new(input.into_bytes()));
        read_csv(reader, &mut each).unwrap();
        assert_eq!(seen, [(2, false), (3, true)]);
    }

    #[test]
    fn a_wallet_seen_before_is_always_known_and_others_seldom_taken_for_one() {
        let mut seen = Seen::new();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let wallets: Vec<u128> = (0..200_000)
            .map(|_| (u128::from(next()) << 64) | u128::from(next()))
            .collect();
        let taken = wallets.iter().filter(|&&w| seen.insert(w)).count();
        assert!(
            taken < 5,
            "{taken} of 200,000 new wallets taken for seen ones"
        );
        assert!(wallets.iter().all(|&w| seen.insert(w)));
        // Sequential ids too.
        let mut seen = Seen::new();
        assert!((0..100_000u128).filter(|&w| seen.insert(w)).count() < 5);
        assert!((0..100_000u128).all(|w| seen.insert(w)));
    }

    #[test]
    fn a_carriage_return_inside_a_line_loses_no_record() {
        let err = csv_record(b"a,b\rc,d").unwrap_err();
        assert!(err.contains("carriage return"), "{err}");
        // Inside quotes it is data; at the end of a line it ends nothing more.
        assert_eq!(csv_record(b"a,\"b\rc\"").unwrap(), ["a", "b\rc"]);
        assert_eq!(csv_record(b"a,b\r").unwrap(), ["a", "b"]);
        let input = format!("walletId,userId,environmentId\r{WALLET},{USER},{ENV}\r");
        let mut seen = 0;
        let mut each = |_: u64, _: Result<Fields, Vec<String>>| {
            seen += 1;
            Step::Next
        };
        let reader: Box<dyn BufRead + Send> = Box::new(io::Cursor::new(input.into_bytes()));
        let err = match read_csv(reader, &mut each) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("read a file of \\r line ends as an empty input"),
        };
        assert!(err.contains("carriage return"), "{err}");
        assert_eq!(seen, 0);
    }

    #[test]
    fn a_line_without_end_stops_in_bounded_time_and_memory() {
        let zeros: Box<dyn BufRead + Send> = Box::new(BufReader::new(io::repeat(0)));
        let mut lines = Lines::new(zeros);
        let err = match lines.next_line() {
            Err(e) => e.to_string(),
            Ok(_) => panic!("read a line of /dev/zero"),
        };
        assert!(err.contains("not a file of lines"), "{err}");
    }

    #[test]
    fn resume_skips_settled_wallets_and_reads_first_for_the_others() {
        let wallet = uuid::Uuid::parse_str(WALLET).unwrap().as_u128();
        let row = serde_json::json!({"environmentId": ENV, "walletId": WALLET, "userId": USER});
        let mut r = rules();
        r.resume = Resume::for_test(vec![wallet], vec![]);
        assert!(matches!(check(&r, row.clone()), Ok(Checked::Skip)));
        r.resume = Resume::for_test(vec![], vec![wallet]);
        let Ok(Checked::Send(job)) = check(&r, row) else {
            panic!("not sent")
        };
        assert!(job.is_resumed());
    }
}
