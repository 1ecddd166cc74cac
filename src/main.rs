//! The `callstore` command: import call records into a store file and answer Get Calls requests
//! from it.
//!
//! A thin layer over the library (as in ripgrep): it parses arguments, calls [`callstore`], and
//! maps errors to an exit status. Machine output (JSON, counts, the stats table) goes to stdout;
//! messages, summaries and the progress bar go to stderr.
//!
//! Exit status: 0 on success; 1 on a store, input or I/O error; 2 when a request got an API error
//! answer, or on a usage error (from clap).

use std::fmt::Display;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{self, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

use callstore::{Call, Error, Request, Response, Store, StoreError, StoreStats, parse_request};
use clap::{Parser, Subcommand};
use indicatif::{HumanBytes, HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};

const EXAMPLES: &str = "\
Examples:
  callstore import calls.jsonl
  callstore get '/v2/Accounts/AC1/Calls?Disposition=Answered&Unique=Unique'
  callstore count '/v2/Properties/PR1/Calls?Date_From=1700000000'
  callstore --db other.redb stats";

const IMPORT_EXAMPLES: &str = "\
Examples:
  callstore import calls.jsonl more.jsonl
  zcat calls.jsonl.gz | callstore --db calls.redb import --batch 50000 -";

const GET_EXAMPLES: &str = "\
Examples:
  callstore get /v2/Calls/CA1
  callstore get --pretty '/v2/Accounts/AC1/Calls?Results_Count=10&Results_Skip=20'
  printf '%s\\n' /v2/Calls/CA1 /v2/Properties/PR1/Calls | callstore get -";

const DELETE_EXAMPLES: &str = "\
Example:
  callstore delete CA1 CA2";

const COUNT_EXAMPLES: &str = "\
Example:
  callstore count '/v2/Accounts/AC1/Calls?Unique=Repeat&Date_From=1700000000'";

const STATS_EXAMPLES: &str = "\
Example:
  callstore --db calls.redb stats";

/// An embedded query engine over phone-call records, answering the Get Calls API from a local
/// store file.
#[derive(Parser)]
#[command(name = "callstore", version, after_help = EXAMPLES)]
struct Cli {
    /// The store file.
    #[arg(long, global = true, value_name = "PATH", default_value = "calls.redb")]
    db: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import call records from JSON Lines files (one record per line) into the store, creating
    /// it if needed.
    #[command(after_help = IMPORT_EXAMPLES)]
    Import {
        /// Records per atomic write: a bad record leaves its whole batch out, and the batches
        /// before it stored.
        #[arg(long, value_name = "N", default_value_t = 10_000,
              value_parser = clap::value_parser!(u64).range(1..))]
        batch: u64,
        /// JSON Lines files to read; `-` reads standard input.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
    },
    /// Answer requests, printing one JSON document per line per request (exit 2 if any request
    /// got an error answer).
    #[command(after_help = GET_EXAMPLES)]
    Get {
        /// Indent the JSON.
        #[arg(long)]
        pretty: bool,
        /// Request paths with optional query strings; `-` reads requests from standard input,
        /// one per line.
        #[arg(value_name = "REQUEST", required = true)]
        requests: Vec<String>,
    },
    /// Delete calls by CallSid (an unknown CallSid is not an error).
    #[command(after_help = DELETE_EXAMPLES)]
    Delete {
        /// The CallSids to delete.
        #[arg(value_name = "CALLSID", required = true)]
        call_sids: Vec<String>,
    },
    /// Print how many calls match a request, ignoring Results_Count and Results_Skip.
    #[command(after_help = COUNT_EXAMPLES)]
    Count {
        /// A request path with an optional query string.
        #[arg(value_name = "REQUEST")]
        request: String,
    },
    /// Print a summary of the store: calls, accounts, properties, segments, size, dates.
    #[command(after_help = STATS_EXAMPLES)]
    Stats,
    // `generate` and `demo` come with the data generator.
}

/// Why the command stopped: a message for stderr, and the exit status to leave with.
struct Failure {
    message: String,
}

impl<E: Display> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure {
            message: e.to_string(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Import { batch, files } => import(&cli.db, &files, batch),
        Command::Get { pretty, requests } => get(&cli.db, &requests, pretty),
        Command::Delete { call_sids } => delete(&cli.db, &call_sids),
        Command::Count { request } => count(&cli.db, &request),
        Command::Stats => stats(&cli.db),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("callstore: {}", failure.message);
            ExitCode::from(1)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// import
//
// The main thread reads and parses lines into batches; a writing thread commits each batch with
// one `Store::write` while the next one is parsed. A bad line stops the reading before its batch
// is sent, so nothing of its batch is written; the batches sent before it are.

/// Where a record came from: an input's index and a line number (from 1).
#[derive(Clone, Copy)]
struct Position {
    input: usize,
    line: u64,
}

/// Parsed records on their way to one atomic write, with where each came from.
#[derive(Default)]
struct Batch {
    calls: Vec<Call>,
    positions: Vec<Position>,
}

/// Why the reading stopped early.
enum Stop {
    /// A line that is not a valid record.
    Record {
        at: Position,
        call_sid: Option<String>,
        error: String,
        /// The first line of the record's batch.
        batch_start: Position,
    },
    /// An input could not be read.
    Input(String),
    /// The writing thread stopped; its own result says why.
    WriterGone,
}

/// A batch that the store refused or failed to write, after `committed` records were.
struct WriteFailure {
    committed: u64,
    positions: Vec<Position>,
    call_sids: Vec<String>,
    error: Error,
}

fn import(db: &Path, files: &[PathBuf], batch_size: u64) -> Result<ExitCode, Failure> {
    let start = Instant::now();
    let names: Vec<String> = files.iter().map(|p| input_name(p)).collect();
    // Check every input before creating the store, so that a typo creates nothing.
    for (file, name) in files.iter().zip(&names) {
        if !is_stdin(file) {
            File::open(file).map_err(|e| format!("{name}: {e}"))?;
        }
    }
    let store = Store::open_or_create(db)?;
    let mut reader = Reader {
        names: &names,
        batch_size: usize::try_from(batch_size).unwrap_or(usize::MAX),
        batch: Batch::default(),
        records: 0,
        bytes: 0,
        progress: Progress::new(start),
    };
    let (sender, receiver) = mpsc::sync_channel::<Batch>(1);
    let (read, written) = thread::scope(|scope| {
        let writer = scope.spawn(|| write_batches(&store, receiver));
        let read = reader.read_all(files, &sender);
        drop(sender);
        (read, writer.join())
    });
    reader.progress.finish();
    let committed = match written {
        Ok(Ok(committed)) => committed,
        // A failed write comes before wherever the reading stopped.
        Ok(Err(failure)) => return Err(write_failed(&names, *failure)),
        Err(_) => return Err("the writing thread panicked".into()),
    };
    match read {
        Ok(()) => {
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "imported {} in {secs:.1} s ({} calls/s)",
                calls(committed),
                per_second(committed, secs)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(Stop::Record {
            at,
            call_sid,
            error,
            batch_start,
        }) => Err(bad_record(
            &names,
            committed,
            at,
            call_sid,
            &error,
            batch_start,
        )),
        Err(Stop::Input(message)) => {
            Err(format!("{message}; {} committed before it", calls_were(committed)).into())
        }
        Err(Stop::WriterGone) => {
            Err(format!("the import stopped; {} committed", calls_were(committed)).into())
        }
    }
}

/// Writes each batch received as one atomic write; returns the records committed.
fn write_batches(store: &Store, batches: mpsc::Receiver<Batch>) -> Result<u64, Box<WriteFailure>> {
    let mut committed = 0u64;
    for Batch { calls, positions } in batches {
        let n = calls.len() as u64;
        // Keep the CallSids, to map a refused record back to its line.
        let call_sids: Vec<String> = calls.iter().map(|c| c.call_sid.clone()).collect();
        match store.write(calls) {
            Ok(_) => committed += n,
            Err(error) => {
                return Err(Box::new(WriteFailure {
                    committed,
                    positions,
                    call_sids,
                    error,
                }));
            }
        }
    }
    Ok(committed)
}

/// Reads inputs into batches.
struct Reader<'a> {
    names: &'a [String],
    batch_size: usize,
    batch: Batch,
    /// Records parsed so far.
    records: u64,
    bytes: u64,
    progress: Progress,
}

impl Reader<'_> {
    /// Reads every input and sends its batches, the last one included.
    fn read_all(&mut self, files: &[PathBuf], sender: &SyncSender<Batch>) -> Result<(), Stop> {
        for (input, file) in files.iter().enumerate() {
            let name = &self.names[input];
            let reader: Box<dyn Read> = if is_stdin(file) {
                Box::new(io::stdin().lock())
            } else {
                Box::new(File::open(file).map_err(|e| Stop::Input(format!("{name}: {e}")))?)
            };
            self.read(input, BufReader::with_capacity(1 << 16, reader), sender)?;
        }
        self.send(sender)
    }

    /// Reads one input to its end, sending each full batch.
    fn read(
        &mut self,
        input: usize,
        mut reader: impl BufRead,
        sender: &SyncSender<Batch>,
    ) -> Result<(), Stop> {
        let mut buf = Vec::new();
        let mut line = 0u64;
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| Stop::Input(format!("{}: {e}", self.names[input])))?;
            if n == 0 {
                return Ok(());
            }
            line += 1;
            self.bytes += n as u64;
            let at = Position { input, line };
            let text = match std::str::from_utf8(&buf) {
                Ok(text) => text.trim(),
                Err(e) => return Err(self.bad_line(at, None, format!("not UTF-8 text: {e}"))),
            };
            if text.is_empty() {
                continue;
            }
            match Call::from_json(text) {
                Ok(call) => {
                    self.batch.calls.push(call);
                    self.batch.positions.push(at);
                    self.records += 1;
                }
                Err(e) => return Err(self.bad_line(at, call_sid_of(text), e.to_string())),
            }
            if self.batch.calls.len() >= self.batch_size {
                self.send(sender)?;
            }
            if self.records % 1024 == 0 {
                self.progress.update(self.records, self.bytes);
            }
        }
    }

    /// Sends the batch read so far to be written.
    fn send(&mut self, sender: &SyncSender<Batch>) -> Result<(), Stop> {
        if self.batch.calls.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        sender.send(batch).map_err(|_| Stop::WriterGone)?;
        self.progress.update(self.records, self.bytes);
        Ok(())
    }

    fn bad_line(&self, at: Position, call_sid: Option<String>, error: String) -> Stop {
        Stop::Record {
            at,
            call_sid,
            error,
            batch_start: self.batch.positions.first().copied().unwrap_or(at),
        }
    }
}

/// The message for a record that stops the import: where it is, its CallSid, what is wrong,
/// and what was committed before it.
fn bad_record(
    names: &[String],
    committed: u64,
    at: Position,
    call_sid: Option<String>,
    error: &dyn Display,
    batch_start: Position,
) -> Failure {
    let sid = call_sid
        .map(|s| format!(" (CallSid {s:?})"))
        .unwrap_or_default();
    let from = if batch_start.input == at.input {
        format!("line {}", batch_start.line)
    } else {
        format!("{} line {}", names[batch_start.input], batch_start.line)
    };
    Failure {
        message: format!(
            "{}: line {}{sid}: {error}; {} committed before it, nothing from {from} on",
            names[at.input],
            at.line,
            calls_were(committed),
        ),
    }
}

/// The message for a batch the store refused or failed to write: a refused record is named by
/// its line.
fn write_failed(names: &[String], failure: WriteFailure) -> Failure {
    let WriteFailure {
        committed,
        positions,
        call_sids,
        error,
    } = failure;
    let batch_start = positions.first().copied();
    let (at, call_sid, reason): (Option<Position>, Option<String>, String) = match error {
        Error::Store(StoreError::InvalidRecord {
            index,
            call_sid,
            source,
        }) => (positions.get(index).copied(), call_sid, source.to_string()),
        // Its message names the CallSid already. The last record with a CallSid is the one a
        // batch writes.
        Error::Store(e @ StoreError::PropertyBound { .. }) => {
            let at = match &e {
                StoreError::PropertyBound { call_sid, .. } => call_sids
                    .iter()
                    .rposition(|s| s == call_sid)
                    .and_then(|i| positions.get(i).copied()),
                _ => None,
            };
            (at, None, e.to_string())
        }
        e => (None, None, e.to_string()),
    };
    match (at, batch_start) {
        (Some(at), Some(start)) => bad_record(names, committed, at, call_sid, &reason, start),
        _ => Failure {
            message: format!(
                "{reason}; {} committed before it, nothing of the batch being written",
                calls_were(committed)
            ),
        },
    }
}

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

fn input_name(path: &Path) -> String {
    if is_stdin(path) {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}

/// The CallSid of a record that did not parse as a call, when it is JSON with a string CallSid.
fn call_sid_of(text: &str) -> Option<String> {
    let value = serde_json::from_str::<serde_json::Value>(text).ok()?;
    Some(value.get("CallSid")?.as_str()?.to_string())
}

/// `1 call`, `10,000 calls`.
fn calls(n: u64) -> String {
    match n {
        1 => "1 call".to_string(),
        n => format!("{} calls", HumanCount(n)),
    }
}

/// `1 call was`, `10,000 calls were`.
fn calls_were(n: u64) -> String {
    format!("{} {}", calls(n), if n == 1 { "was" } else { "were" })
}

/// A rate in short form: `950`, `345k`, `1.2M`.
fn per_second(n: u64, secs: f64) -> String {
    let rate = if secs > 0.0 { n as f64 / secs } else { 0.0 };
    if rate >= 1e6 {
        format!("{:.1}M", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.0}k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

/// A progress bar on stderr, shown only when stderr is a terminal and the import has run for
/// more than a second.
struct Progress {
    start: Instant,
    interactive: bool,
    bar: Option<ProgressBar>,
}

impl Progress {
    const DELAY: Duration = Duration::from_secs(1);

    fn new(start: Instant) -> Progress {
        Progress {
            start,
            interactive: io::stderr().is_terminal(),
            bar: None,
        }
    }

    fn update(&mut self, records: u64, bytes: u64) {
        if !self.interactive {
            return;
        }
        if self.bar.is_none() && self.start.elapsed() > Self::DELAY {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style =
                ProgressStyle::with_template("{spinner} {human_pos} records  {msg}  {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(120));
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(records);
            let secs = self.start.elapsed().as_secs_f64();
            bar.set_message(format!(
                "{} records/s  {} read",
                per_second(records, secs),
                HumanBytes(bytes)
            ));
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// get, count, delete, stats

fn get(db: &Path, requests: &[String], pretty: bool) -> Result<ExitCode, Failure> {
    let store = Store::open(db)?;
    let mut out = BufWriter::new(io::stdout().lock());
    let mut failed = false;
    let mut answer = |request: &str, out: &mut BufWriter<io::StdoutLock>| -> Result<(), Failure> {
        let json = match store.answer(request) {
            Ok(response) => render(&response, pretty),
            Err(Error::Api(e)) => {
                failed = true;
                envelope(&e.to_json(), pretty)
            }
            Err(e) => return Err(e.into()),
        };
        writeln!(out, "{json}").map_err(stdout_error)
    };
    for request in requests {
        if request == "-" {
            for line in io::stdin().lock().lines() {
                let line = line.map_err(|e| format!("<stdin>: {e}"))?;
                let line = line.trim();
                if !line.is_empty() {
                    answer(line, &mut out)?;
                }
            }
        } else {
            answer(request, &mut out)?;
        }
    }
    out.flush().map_err(stdout_error)?;
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn render(response: &Response, pretty: bool) -> String {
    if pretty {
        response.to_json_pretty()
    } else {
        response.to_json()
    }
}

/// The error envelope, indented when asked for.
fn envelope(json: &str, pretty: bool) -> String {
    if pretty {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(json) {
            if let Ok(text) = serde_json::to_string_pretty(&value) {
                return text;
            }
        }
    }
    json.to_string()
}

fn stdout_error(e: io::Error) -> Failure {
    if e.kind() == io::ErrorKind::BrokenPipe {
        // The reader went away (`callstore get ... | head`): nothing more to say.
        std::process::exit(0);
    }
    format!("standard output: {e}").into()
}

fn count(db: &Path, request: &str) -> Result<ExitCode, Failure> {
    let store = Store::open(db)?;
    let parsed = parse_request(request).map_err(Error::Api);
    let counted = parsed.and_then(|parsed| match parsed {
        Request::List(query) => store.count(&query),
        // One call: 1 if it is stored, else the API's NotFound answer.
        single @ Request::Call(_) => store.execute(&single).map(|_| 1),
    });
    match counted {
        Ok(n) => {
            println!("{n}");
            Ok(ExitCode::SUCCESS)
        }
        Err(Error::Api(e)) => {
            println!("{}", e.to_json());
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(e.into()),
    }
}

fn delete(db: &Path, call_sids: &[String]) -> Result<ExitCode, Failure> {
    let store = Store::open(db)?;
    let deleted = store.delete(call_sids)?;
    let missing = call_sids.len().saturating_sub(deleted);
    if missing == 0 {
        eprintln!("deleted {}", calls(deleted as u64));
    } else {
        eprintln!(
            "deleted {}; {missing} of the {} CallSids given {} not stored",
            calls(deleted as u64),
            call_sids.len(),
            if missing == 1 { "was" } else { "were" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn stats(db: &Path) -> Result<ExitCode, Failure> {
    let store = Store::open(db)?;
    let stats = store.stats()?;
    print!("{}", stats_table(&stats));
    Ok(ExitCode::SUCCESS)
}

fn stats_table(stats: &StoreStats) -> String {
    let file_size = match stats.file_bytes {
        Some(bytes) => format!("{} ({} bytes)", HumanBytes(bytes), HumanCount(bytes)),
        None => "in memory".to_string(),
    };
    let date_range = match stats.date_range {
        Some((first, last)) => format!(
            "{} .. {} (unix {first} .. {last})",
            utc_date(first),
            utc_date(last)
        ),
        None => "none (no calls)".to_string(),
    };
    let rows = [
        ("calls", HumanCount(stats.calls).to_string()),
        ("accounts", HumanCount(stats.accounts).to_string()),
        ("properties", HumanCount(stats.properties).to_string()),
        ("segments", HumanCount(stats.segments).to_string()),
        ("file size", file_size),
        ("format version", stats.format_version.to_string()),
        ("date range", date_range),
    ];
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect()
}

/// A unix time as a UTC date, `2024-03-01`.
fn utc_date(t: u32) -> String {
    match chrono::DateTime::from_timestamp(i64::from(t), 0) {
        Some(dt) => dt.format("%Y-%m-%d").to_string(),
        None => t.to_string(),
    }
}
