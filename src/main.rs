//! The `callstore` command: import call records into a store file and answer Get Calls requests
//! from it.
//!
//! A thin layer over the library (as in ripgrep): it parses arguments, calls [`callstore`], and
//! maps errors to an exit status. Machine output (JSON, counts, the stats table) goes to stdout;
//! messages, summaries and the progress bar go to stderr.
//!
//! Exit status: 0 on success; 1 on a store, input or I/O error; 2 when a request got an API error
//! answer, or on a usage error (from clap).
//!
//! `generate` writes synthetic records (the library's [`callstore::generate`]) and `demo` builds a
//! store of them and shows what the engine answers, and how fast; the demo's report, its import
//! summary included, is its output and goes to stdout (its progress bar to stderr).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Display;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{self, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

use callstore::generate::{self, GenerateOptions, Generator};
use callstore::{
    ApiError, Call, Error, Query, Request, Response, Store, StoreError, StoreStats, parse_request,
};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use indicatif::{HumanBytes, HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};

mod allocator;

const EXAMPLES: &str = "\
Examples:
  callstore demo
  callstore generate --calls 100000 --seed 7 > calls.jsonl
  callstore import calls.jsonl
  callstore get '/v2/Accounts/AC1/Calls?Disposition=Answered&Unique=Unique'
  callstore count '/v2/Properties/PR1/Calls?Date_From=1700000000'
  callstore --db other.redb stats";

const IMPORT_EXAMPLES: &str = "\
Examples:
  callstore import calls.jsonl more.jsonl
  zcat calls.jsonl.gz | callstore --db calls.redb import --batch 50000 -
  callstore import --segment-rows 65536 calls.jsonl    # less memory, more segments";

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

const GENERATE_EXAMPLES: &str = "\
Examples:
  callstore generate --calls 100000 --seed 7 > calls.jsonl
  callstore generate --calls 1000000 --accounts 50 | callstore --db big.redb import -";

const DEMO_EXAMPLES: &str = "\
Examples:
  callstore demo
  callstore demo --calls 100000
  callstore --db demo.redb demo --calls 50000    # keeps the store in demo.redb";

const STATS_EXAMPLES: &str = "\
Example:
  callstore --db calls.redb stats";

const COMPACT_EXAMPLES: &str = "\
Example (after a bulk import):
  callstore --db calls.redb import calls.jsonl
  callstore --db calls.redb compact";

/// An embedded query engine over phone-call records, answering the Get Calls API from a local
/// store file.
#[derive(Parser)]
#[command(name = "callstore", version, after_help = EXAMPLES)]
struct Cli {
    /// The store file (`demo` without --db: a temporary one, removed at the end).
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
        /// Records checked at a time: a bad record stops the import, leaving its whole batch
        /// out and the batches before it stored.
        #[arg(long, value_name = "N", default_value_t = 100_000,
              value_parser = clap::value_parser!(u64).range(1..))]
        batch: u64,
        /// Calls written as one segment, in one durable commit. Fewer take less memory (the
        /// calls held and the batches read ahead) and make more segments, which merges
        /// rewrite: 1M calls took 1.6 GB at the default, 1.0 GB at 65536.
        #[arg(long, value_name = "N", default_value_t = callstore::DEFAULT_IMPORT_SEGMENT_ROWS as u64,
              value_parser = clap::value_parser!(u64).range(1..))]
        segment_rows: u64,
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
    /// Merge every segment into one (dropping deleted calls) and rewrite the file without its
    /// free pages; prints the file size before and after. Answers do not change.
    #[command(after_help = COMPACT_EXAMPLES)]
    Compact,
    /// Write synthetic call records as JSON Lines on stdout: the same options give the same
    /// bytes on every run.
    #[command(after_help = GENERATE_EXAMPLES)]
    Generate {
        /// How many records.
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        calls: u64,
        /// The seed of the data.
        #[arg(
            long,
            value_name = "S",
            default_value_t = 1,
            allow_negative_numbers = true
        )]
        seed: u64,
        /// How many accounts the calls are spread over.
        #[arg(long, value_name = "A", default_value_t = 200, allow_negative_numbers = true,
              value_parser = clap::value_parser!(u32).range(1..))]
        accounts: u32,
    },
    /// Build a store of generated calls and answer a showcase of requests from it, with their
    /// match counts and times. The store is made in a temporary folder and removed at the end,
    /// unless --db is given (then it must not exist yet, and is kept).
    #[command(after_help = DEMO_EXAMPLES)]
    Demo {
        /// How many calls to generate and import.
        #[arg(long, value_name = "N", default_value_t = 1_000_000, allow_negative_numbers = true,
              value_parser = clap::value_parser!(u64).range(1..))]
        calls: u64,
        /// The seed of the data.
        #[arg(
            long,
            value_name = "S",
            default_value_t = 1,
            allow_negative_numbers = true
        )]
        seed: u64,
    },
}

/// Why the command stopped: a message for stderr, and the exit status to leave with.
struct Failure {
    message: String,
}

impl Failure {
    /// The reader of stdout went away (`callstore demo | head`): stop without a message, and
    /// with success, once everything has been cleaned up.
    fn reader_gone() -> Failure {
        Failure {
            message: String::new(),
        }
    }
}

impl<E: Display> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure {
            message: e.to_string(),
        }
    }
}

fn main() -> ExitCode {
    allocator::tune();
    let matches = Cli::command().get_matches();
    let db_given = given_on_command_line(&matches, "db");
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Import {
            batch,
            segment_rows,
            files,
        } => import(&cli.db, &files, batch, segment_rows),
        Command::Get { pretty, requests } => get(&cli.db, &requests, pretty),
        Command::Delete { call_sids } => delete(&cli.db, &call_sids),
        Command::Count { request } => count(&cli.db, &request),
        Command::Stats => stats(&cli.db),
        Command::Compact => compact(&cli.db),
        Command::Generate {
            calls,
            seed,
            accounts,
        } => generate_jsonl(calls, seed, accounts),
        Command::Demo { calls, seed } => demo(db_given.then_some(cli.db.as_path()), calls, seed),
    };
    match result {
        Ok(code) => code,
        Err(failure) if failure.message.is_empty() => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("callstore: {}", failure.message);
            ExitCode::from(1)
        }
    }
}

/// Whether a (global) argument was given on the command line, before or after the subcommand,
/// rather than taken from its default.
fn given_on_command_line(matches: &ArgMatches, id: &str) -> bool {
    let here = matches.value_source(id) == Some(ValueSource::CommandLine);
    here || matches
        .subcommand()
        .is_some_and(|(_, sub)| given_on_command_line(sub, id))
}

// ---------------------------------------------------------------------------------------------
// import
//
// The main thread reads and parses lines into batches; a writing thread hands each batch to one
// `Store::import` (which checks it at once, and writes a segment every 262,144 calls) while the
// next ones are parsed, and finishes the import (durably) at the end. A bad line stops the
// reading before its batch is sent, so nothing of its batch is written; the batches sent before
// it are, and made durable.

/// Where a record came from: an input's index and a line number (from 1).
#[derive(Clone, Copy)]
struct Position {
    input: usize,
    line: u64,
}

/// Parsed records on their way to one atomic write, with where each came from.
struct Batch {
    calls: Vec<Call>,
    positions: Vec<Position>,
}

impl Batch {
    /// An empty batch with room for `size` records (at most a segment's worth), so that it does
    /// not grow by doubling: growing copied each batch's calls into fresh memory again and
    /// again, an eighth of a 1M import's samples.
    fn with_room(size: usize) -> Batch {
        let room = size.min(callstore::DEFAULT_IMPORT_SEGMENT_ROWS);
        Batch {
            calls: Vec::with_capacity(room),
            positions: Vec::with_capacity(room),
        }
    }
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

fn import(
    db: &Path,
    files: &[PathBuf],
    batch_size: u64,
    segment_rows: u64,
) -> Result<ExitCode, Failure> {
    let start = Instant::now();
    let names: Vec<String> = files.iter().map(|p| input_name(p)).collect();
    // Check every input before creating the store, so that a typo creates nothing.
    for (file, name) in files.iter().zip(&names) {
        if !is_stdin(file) {
            let opened = File::open(file).and_then(|f| f.metadata());
            match opened {
                Ok(meta) if meta.is_dir() => return Err(format!("{name}: is a directory").into()),
                Ok(_) => {}
                Err(e) => return Err(format!("{name}: {e}").into()),
            }
        }
    }
    let store = Store::open_or_create(db)?;
    let batch_rows = usize::try_from(batch_size).unwrap_or(usize::MAX);
    let mut reader = Reader {
        names: &names,
        batch_size: batch_rows,
        batch: Batch::with_room(batch_rows),
        records: 0,
        bytes: 0,
        progress: Progress::new(start),
    };
    let (sender, receiver) = mpsc::sync_channel::<Batch>(batches_ahead(batch_size, segment_rows));
    let segment_rows = usize::try_from(segment_rows).unwrap_or(usize::MAX);
    let (read, written) = thread::scope(|scope| {
        let writer = scope.spawn(|| write_batches(&store, receiver, segment_rows));
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

/// How many parsed batches may wait for the writer: about a segment's worth of calls, so that
/// parsing goes on while the import writes a segment.
fn batches_ahead(batch_size: u64, segment_rows: u64) -> usize {
    usize::try_from(segment_rows.div_ceil(batch_size.max(1)).clamp(1, 64)).unwrap_or(1)
}

/// Imports the batches received, and finishes the import when they end (the reading stopped
/// or completed); returns the records committed.
fn write_batches(
    store: &Store,
    batches: mpsc::Receiver<Batch>,
    segment_rows: usize,
) -> Result<u64, Box<WriteFailure>> {
    let mut import = store.import().with_segment_rows(segment_rows);
    let mut written = Written::default();
    for Batch { calls, positions } in batches {
        // Keep the CallSids, to map a refused record back to its line.
        let call_sids: Vec<String> = calls.iter().map(|c| c.call_sid.clone()).collect();
        match import.write(calls) {
            // This batch alone is refused: the ones before it are written.
            Err(error @ Error::Store(StoreError::InvalidRecord { .. })) => {
                let flushed = import.flush();
                written.update(&import);
                return Err(match flushed {
                    Ok(()) => Box::new(WriteFailure {
                        committed: written.records,
                        positions,
                        call_sids,
                        error,
                    }),
                    Err(error) => written.refused(error),
                });
            }
            result => {
                written.held.push_back((positions, call_sids));
                written.update(&import);
                result.map_err(|error| written.refused(error))?;
            }
        }
    }
    let flushed = import.flush();
    written.update(&import);
    flushed.map_err(|error| written.refused(error))?;
    Ok(written.records)
}

/// The batches an import was given: how many records are written, and the lines and CallSids of
/// the batches not written yet.
#[derive(Default)]
struct Written {
    records: u64,
    batches: usize,
    held: VecDeque<(Vec<Position>, Vec<String>)>,
}

impl Written {
    /// Counts the batches the import has written since.
    fn update(&mut self, import: &callstore::Import<'_>) {
        while self.batches < import.batches_written() {
            let Some((positions, _)) = self.held.pop_front() else {
                break;
            };
            self.records += positions.len() as u64;
            self.batches += 1;
        }
    }

    /// The failure of the first batch not written.
    fn refused(&mut self, error: Error) -> Box<WriteFailure> {
        let (positions, call_sids) = self.held.pop_front().unwrap_or_default();
        Box::new(WriteFailure {
            committed: self.records,
            positions,
            call_sids,
            error,
        })
    }
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
                self.progress.update(self.records, Some(self.bytes));
            }
        }
    }

    /// Sends the batch read so far to be written.
    fn send(&mut self, sender: &SyncSender<Batch>) -> Result<(), Stop> {
        if self.batch.calls.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Batch::with_room(self.batch_size));
        sender.send(batch).map_err(|_| Stop::WriterGone)?;
        self.progress.update(self.records, Some(self.bytes));
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
    /// How many records there will be, when known (a bar rather than a spinner).
    total: Option<u64>,
    bar: Option<ProgressBar>,
}

impl Progress {
    const DELAY: Duration = Duration::from_secs(1);

    fn new(start: Instant) -> Progress {
        Progress {
            start,
            interactive: io::stderr().is_terminal(),
            total: None,
            bar: None,
        }
    }

    fn with_total(start: Instant, total: u64) -> Progress {
        Progress {
            total: Some(total),
            ..Progress::new(start)
        }
    }

    /// Shows `records` done so far, and the bytes read when there are any.
    fn update(&mut self, records: u64, bytes: Option<u64>) {
        if !self.interactive {
            return;
        }
        if self.bar.is_none() && self.start.elapsed() > Self::DELAY {
            let bar = ProgressBar::with_draw_target(self.total, ProgressDrawTarget::stderr());
            let template = if self.total.is_some() {
                "{bar:40} {human_pos}/{human_len} calls  {msg}  {elapsed}"
            } else {
                "{spinner} {human_pos} records  {msg}  {elapsed}"
            };
            let style = ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(120));
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(records);
            let rate = per_second(records, self.start.elapsed().as_secs_f64());
            bar.set_message(match bytes {
                Some(bytes) => format!("{rate} records/s  {} read", HumanBytes(bytes)),
                None => format!("{rate} calls/s"),
            });
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

fn compact(db: &Path) -> Result<ExitCode, Failure> {
    let mut store = Store::open(db)?;
    let before = store.stats()?;
    let start = Instant::now();
    store.compact()?;
    store.shrink_file()?;
    let after = store.stats()?;
    let size = |s: &StoreStats| {
        s.file_bytes
            .map_or("in memory".to_string(), |b| HumanBytes(b).to_string())
    };
    eprintln!(
        "compacted {} in {:.1} s: segments {} -> {}, file {} -> {}",
        db.display(),
        start.elapsed().as_secs_f64(),
        HumanCount(before.segments),
        HumanCount(after.segments),
        size(&before),
        size(&after)
    );
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

/// A unix time in UTC to the second, `2024-03-01 09:30:00 UTC`.
fn utc_time(t: u32) -> String {
    match chrono::DateTime::from_timestamp(i64::from(t), 0) {
        Some(dt) => dt.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        None => t.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// generate, demo

fn generate_jsonl(calls: u64, seed: u64, accounts: u32) -> Result<ExitCode, Failure> {
    let options = GenerateOptions {
        calls,
        seed,
        accounts,
    };
    generate::write_jsonl(&options, io::stdout().lock()).map_err(stdout_error)?;
    Ok(ExitCode::SUCCESS)
}

/// Calls per batch the demo hands to its import, as `import`'s default batch.
const DEMO_BATCH: usize = 100_000;

/// A folder of the system's temporary folder, removed with everything in it when dropped.
struct TempFolder(PathBuf);

impl TempFolder {
    fn new() -> Result<TempFolder, Failure> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("callstore-demo-{}-{nanos}", std::process::id()));
        fs::create_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(TempFolder(path))
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes demo output to stdout at once (the showcase is read as it runs). Unlike
/// [`stdout_error`], a closed stdout returns, so that the temporary store is still removed.
fn emit(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    let written = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    written.map_err(|e| match e.kind() {
        io::ErrorKind::BrokenPipe => Failure::reader_gone(),
        _ => format!("standard output: {e}").into(),
    })
}

/// `callstore demo`: generate calls into a new store, then answer a showcase of requests.
fn demo(db: Option<&Path>, how_many: u64, seed: u64) -> Result<ExitCode, Failure> {
    let started = Instant::now();
    let options = GenerateOptions {
        calls: how_many,
        seed,
        ..GenerateOptions::default()
    };
    // Declared before the store, so that the store is closed before its folder is removed.
    let temp = match db {
        Some(_) => None,
        None => Some(TempFolder::new()?),
    };
    if let Some(temp) = &temp {
        // Ctrl-C ends the process without running `TempFolder`'s drop: remove the folder
        // then, and exit as an interrupted command does (128 + SIGINT). Without a handler
        // (one is set already), an interrupt leaves the folder behind, as before.
        let folder = temp.0.clone();
        let _ = ctrlc::set_handler(move || {
            let _ = fs::remove_dir_all(&folder);
            std::process::exit(130);
        });
    }
    let path = match (db, &temp) {
        (Some(db), _) => db.to_path_buf(),
        (None, Some(temp)) => temp.0.join("calls.redb"),
        (None, None) => return Err("no place for the store".into()),
    };
    let store = Store::create(&path)?;
    emit(&format!(
        "Generating {} (seed {seed}, {} accounts) into {}\n",
        calls(how_many),
        options.accounts,
        path.display()
    ))?;

    let imported = demo_import(&store, &options)?;
    emit(&format!(
        "imported {} in {:.1} s ({} calls/s)\n\n",
        calls(imported.calls),
        imported.secs,
        per_second(imported.calls, imported.secs)
    ))?;

    let Some(account) = imported.largest_account else {
        return Err("no calls were generated".into());
    };
    let showcase = Showcase::pick(&store, &account)?;
    emit(&showcase.heading())?;
    let mut ran = 0;
    for (kind, request) in showcase.requests(&store)? {
        emit(&run_request(&store, &kind, &request)?)?;
        ran += 1;
    }

    let stats = store.stats()?;
    let table: String = stats_table(&stats)
        .lines()
        .map(|line| format!("  {line}\n"))
        .collect();
    let kept = match db {
        Some(db) => format!(
            "The store is kept in {0}; try: callstore --db {0} get '/v2/Calls/{1}'\n",
            db.display(),
            showcase.call_sid
        ),
        None => "The store was in a temporary folder and is removed now; \
                 give --db PATH to keep it.\n"
            .to_string(),
    };
    emit(&format!(
        "\nThe store\n{table}\n\
         import    {} in {:.1} s: {} calls/s\n\
         requests  {ran}, answered above\n\
         total     {:.1} s\n\n{kept}",
        calls(imported.calls),
        imported.secs,
        per_second(imported.calls, imported.secs),
        started.elapsed().as_secs_f64(),
    ))?;
    drop(store);
    drop(temp);
    Ok(ExitCode::SUCCESS)
}

/// What the demo's import did.
struct Imported {
    calls: u64,
    secs: f64,
    /// The account with the most calls (the smallest AccountSid among equals).
    largest_account: Option<String>,
}

/// Generates the calls on this thread in batches, while a writing thread imports the batches
/// before (one `Store::import`, finished at the end).
fn demo_import(store: &Store, options: &GenerateOptions) -> Result<Imported, Failure> {
    let start = Instant::now();
    let mut progress = Progress::with_total(start, options.calls);
    let mut per_account: HashMap<String, u64> = HashMap::new();
    let (sender, receiver) = mpsc::sync_channel::<Vec<Call>>(batches_ahead(
        DEMO_BATCH as u64,
        callstore::DEFAULT_IMPORT_SEGMENT_ROWS as u64,
    ));
    let written = thread::scope(|scope| {
        let writer = scope.spawn(move || -> Result<u64, Error> {
            let mut import = store.import();
            for batch in receiver {
                import.write(batch)?;
            }
            Ok(import.finish()?.written as u64)
        });
        let mut generator = Generator::new(options);
        let mut generated = 0u64;
        loop {
            let batch: Vec<Call> = generator.by_ref().take(DEMO_BATCH).collect();
            if batch.is_empty() {
                break;
            }
            for call in &batch {
                match per_account.get_mut(&call.account_sid) {
                    Some(n) => *n += 1,
                    None => {
                        per_account.insert(call.account_sid.clone(), 1);
                    }
                }
            }
            generated += batch.len() as u64;
            // A closed channel means the writer stopped: its result says why.
            if sender.send(batch).is_err() {
                break;
            }
            progress.update(generated, None);
        }
        drop(sender);
        writer.join()
    });
    progress.finish();
    let committed = match written {
        Ok(Ok(committed)) => committed,
        Ok(Err(e)) => return Err(format!("writing the generated calls: {e}").into()),
        Err(_) => return Err("the writing thread panicked".into()),
    };
    let largest_account = per_account
        .into_iter()
        .max_by(|(a, m), (b, n)| m.cmp(n).then_with(|| b.cmp(a)))
        .map(|(account, _)| account);
    Ok(Imported {
        calls: committed,
        secs: start.elapsed().as_secs_f64(),
        largest_account,
    })
}

/// The values the showcase asks about, picked from the calls actually stored: the largest
/// account, its busiest property, and values common in a sample of its calls.
struct Showcase {
    account: String,
    account_calls: u64,
    property: String,
    property_calls: u64,
    to: Option<String>,
    endpoint: Option<String>,
    source_medium: Option<(String, String)>,
    campaign: Option<String>,
    call_sid: String,
    /// The month of the sample's middle call: its label and `[from, to)` in unix seconds.
    month: Option<(String, u32, u32)>,
}

impl Showcase {
    const SAMPLE: u32 = 2_000;

    fn pick(store: &Store, account: &str) -> Result<Showcase, Failure> {
        let account_calls = store.count(&Query::account(account))?;
        // A sample from the middle of the account's time line.
        let skip = u32::try_from(account_calls.saturating_sub(u64::from(Self::SAMPLE)) / 2)
            .unwrap_or(u32::MAX);
        let sample = store.query(&Query::account(account).skip(skip).count(Self::SAMPLE))?;
        let middle = sample
            .get(sample.len() / 2)
            .ok_or("the largest account has no calls")?;
        let property = mode(sample.iter().map(|c| c.property_sid.as_str()))
            .unwrap_or(middle.property_sid.as_str())
            .to_string();
        let of_property = || sample.iter().filter(|c| c.property_sid == property);
        Ok(Showcase {
            account: account.to_string(),
            account_calls,
            property_calls: store.count(&Query::property(&property))?,
            to: mode(of_property().map(|c| c.to.as_str())).map(str::to_string),
            endpoint: mode(sample.iter().filter_map(|c| c.endpoint.as_deref())).map(str::to_string),
            source_medium: mode(sample.iter().filter_map(|c| {
                Some((
                    c.attribution_source.as_deref()?,
                    c.attribution_medium.as_deref()?,
                ))
            }))
            .map(|(s, m)| (s.to_string(), m.to_string())),
            campaign: mode(
                sample
                    .iter()
                    .filter_map(|c| c.attribution_campaign.as_deref()),
            )
            .map(str::to_string),
            call_sid: middle.call_sid.clone(),
            month: month_of(middle.date_start),
            property,
        })
    }

    fn heading(&self) -> String {
        format!(
            "Requests on the largest account, {} ({}), and its busiest property, {} ({}):\n\n",
            self.account,
            calls(self.account_calls),
            self.property,
            calls(self.property_calls),
        )
    }

    /// The showcase: (kind, request) of every kind of request.
    fn requests(&self, store: &Store) -> Result<Vec<(String, String)>, Failure> {
        let account = format!("/v2/Accounts/{}/Calls", encode(&self.account));
        let property = format!("/v2/Properties/{}/Calls", encode(&self.property));
        // A value that matches nothing stands in for one the sample did not have.
        let or_none = |v: &Option<String>| encode(v.as_deref().unwrap_or("none"));
        let mut requests = vec![
            ("account page".to_string(), account.clone()),
            ("property page".to_string(), property.clone()),
        ];
        let month = match &self.month {
            Some((label, from, to)) => (
                format!("month {label}"),
                format!("{account}?Date_From={from}&Date_To={to}"),
            ),
            None => ("month".to_string(), format!("{account}?Date_From=0")),
        };
        requests.push(month);
        requests.push((
            "disposition".to_string(),
            format!("{account}?Disposition=Busy,NoAnswer"),
        ));
        requests.push((
            "to number".to_string(),
            format!("{property}?To={}", or_none(&self.to)),
        ));
        requests.push((
            "endpoint".to_string(),
            format!("{account}?Endpoint={}", or_none(&self.endpoint)),
        ));
        let (source, medium) = match &self.source_medium {
            Some((s, m)) => (encode(s), encode(m)),
            None => ("none".to_string(), "none".to_string()),
        };
        requests.push((
            "source + medium".to_string(),
            format!("{account}?Attribution_Source={source}&Attribution_Medium={medium}"),
        ));
        let campaign = format!("{account}?Attribution_Campaign={}", or_none(&self.campaign));
        let campaign_calls = match parse_request(&campaign) {
            Ok(Request::List(query)) => store.count(&query)?,
            _ => 0,
        };
        requests.push((
            "campaign, skipped".to_string(),
            format!(
                "{campaign}&Results_Skip={}&Results_Count=20",
                (campaign_calls / 2).min(100)
            ),
        ));
        requests.push((
            "prompts keys".to_string(),
            format!("{account}?Prompts_keys=1;2,1"),
        ));
        requests.push((
            "unique callers".to_string(),
            format!("{account}?Unique=Unique&Results_Count=50"),
        ));
        requests.push((
            "repeat callers".to_string(),
            format!("{property}?Unique=Repeat&Disposition=Answered"),
        ));
        requests.push((
            "deep skip".to_string(),
            format!(
                "{account}?Results_Skip={}&Results_Count=10",
                (self.account_calls / 2).min(10_000)
            ),
        ));
        requests.push((
            "one call".to_string(),
            format!("/v2/Calls/{}", encode(&self.call_sid)),
        ));
        requests.push((
            "invalid request".to_string(),
            format!("{account}?Disposition=Maybe"),
        ));
        Ok(requests)
    }
}

/// The most frequent item (the smallest among equals).
fn mode<T: Ord>(items: impl Iterator<Item = T>) -> Option<T> {
    let mut counts: BTreeMap<T, u64> = BTreeMap::new();
    for item in items {
        *counts.entry(item).or_default() += 1;
    }
    let mut best: Option<(T, u64)> = None;
    for (item, n) in counts {
        if best.as_ref().is_none_or(|(_, m)| n > *m) {
            best = Some((item, n));
        }
    }
    best.map(|(item, _)| item)
}

/// The UTC month of a unix time: its label (`2024-07`) and its `[start, end)` in unix seconds.
fn month_of(t: u32) -> Option<(String, u32, u32)> {
    use chrono::{Datelike, NaiveDate};
    let date = chrono::DateTime::from_timestamp(i64::from(t), 0)?.date_naive();
    let first = NaiveDate::from_ymd_opt(date.year(), date.month(), 1)?;
    let next = first.checked_add_months(chrono::Months::new(1))?;
    let unix = |d: NaiveDate| u32::try_from(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp()).ok();
    Some((first.format("%Y-%m").to_string(), unix(first)?, unix(next)?))
}

/// Percent-encodes a value for a request's path or query string (all but `A-Za-z0-9-._~`).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Answers one showcase request and describes it in two aligned lines: the kind and the
/// request; then the match count, the time of the answer and its first call (or the error).
fn run_request(store: &Store, kind: &str, request: &str) -> Result<String, Failure> {
    const KIND: usize = 18;
    let start = Instant::now();
    let answer = store.answer(request);
    let took = short_duration(start.elapsed());
    let indent = " ".repeat(2 + KIND + 2);
    let mut text = format!("  {kind:<KIND$}  GET {request}\n{indent}");
    match answer {
        Ok(response) => {
            let matches = match parse_request(request) {
                Ok(Request::List(query)) => store.count(&query)?,
                _ => 1,
            };
            let first = match &response {
                Response::Call(call) => Some(call.as_ref()),
                Response::Calls(calls) => calls.first(),
            };
            let first = first.map_or_else(|| "(none on this page)".to_string(), short_call);
            text.push_str(&format!(
                "{:>9} {:<7}  {took:>8}   {first}\n",
                HumanCount(matches).to_string(),
                if matches == 1 { "match" } else { "matches" },
            ));
        }
        Err(Error::Api(e)) => text.push_str(&api_error_line(&e, &took)),
        Err(e) => return Err(e.into()),
    }
    Ok(text)
}

fn api_error_line(e: &ApiError, took: &str) -> String {
    format!(
        "{:>9} {:<7}  {took:>8}   {}\n",
        "error",
        e.status(),
        e.to_json()
    )
}

/// A call in one line: CallSid, date, From → To, Disposition.
fn short_call(call: &Call) -> String {
    format!(
        "{}  {}  {:>13} → {:<13}  {}",
        call.call_sid,
        utc_time(call.date_start),
        call.from,
        call.to,
        call.disposition.as_str()
    )
}

/// A short time: `412 µs`, `3.1 ms`, `1.25 s`.
fn short_duration(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros < 1e3 {
        format!("{micros:.0} µs")
    } else if micros < 1e6 {
        format!("{:.1} ms", micros / 1e3)
    } else {
        format!("{:.2} s", micros / 1e6)
    }
}
