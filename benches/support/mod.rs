//! Code shared by the benchmarks (`benches/queries.rs`, `benches/ingest.rs`) and by
//! `tests/sqlite_equivalence.rs`: the benchmark data (callstore and SQLite side by side), the
//! SQLite schema and loaders, the query suite and its SQL translation, and small helpers (sizes,
//! paths, peak RSS, side files).
//!
//! The SQLite side is what a careful user would build for the same API:
//!
//! - one `calls` table holding every field as its own column, with the values the store keeps
//!   (normalized by [`Call::normalize`]), so that a row turns back into the same [`Call`];
//! - the indexes `(account_sid, date_start, call_sid)`, `(property_sid, date_start, call_sid)`,
//!   `call_sid` UNIQUE and one per filter column (disposition, to, endpoint, source, medium,
//!   campaign, content, prompts_keys);
//! - Unique/Repeat (SPEC §3) as precomputed columns `unique_account` and `unique_property`
//!   (1 = Unique, 0 = Repeat, NULL = anonymous caller), kept up to date on insert through the
//!   caller column and two indexes `(account_sid | property_sid, caller, date_start, call_sid)`.
//!
//! Case-insensitive parts of the API (disposition names, `Unique` values, `anonymous`) are
//! resolved before SQL sees them: the parser turns them into enums, and the caller identity
//! column is NULL for any spelling of `anonymous`; every other comparison is exact, as in the
//! spec. Both sides return decoded calls (`Vec<Call>`); neither renders JSON, which would be the
//! same work on both.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use callstore::generate::{GenerateOptions, Generator, call_to_ingest_json, write_jsonl};
use callstore::{
    Call, Disposition, Field, FieldValue, OLDEST_FORMAT_VERSION, Query, Request, Response, Scope,
    Store, TrafficType, UniqueFilter, caller_identity, parse_request,
};
use rusqlite::types::{Type, Value, ValueRef};
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The generator seed of every benchmark data set.
pub const SEED: u64 = 20_240_101;

/// Calls per write in bulk loads.
pub const BULK_BATCH: usize = 100_000;

/// Calls per durable commit in the live feed.
pub const LIVE_BATCH: usize = 100;

/// The environment variable that overrides the number of calls (quick runs).
pub const CALLS_ENV: &str = "CALLSTORE_BENCH_CALLS";

/// The environment variable that selects the 10M size.
pub const TEN_M_ENV: &str = "CALLSTORE_BENCH_10M";

// ---------------------------------------------------------------------------------------------
// Sizes, paths, side files
// ---------------------------------------------------------------------------------------------

/// The number of calls of this run: `CALLSTORE_BENCH_CALLS=N`, else 10M with
/// `CALLSTORE_BENCH_10M=1`, else 1M.
pub fn bench_calls() -> u64 {
    if let Ok(text) = std::env::var(CALLS_ENV) {
        let text = text.trim().replace('_', "");
        return text
            .parse()
            .unwrap_or_else(|_| panic!("{CALLS_ENV} must be a whole number, not {text:?}"));
    }
    if std::env::var(TEN_M_ENV).is_ok_and(|v| v.trim() == "1") {
        10_000_000
    } else {
        1_000_000
    }
}

/// A short label for a size: `1M`, `10M`, `100k`, or the number.
pub fn size_label(calls: u64) -> String {
    if calls >= 1_000_000 && calls % 1_000_000 == 0 {
        format!("{}M", calls / 1_000_000)
    } else if calls >= 1_000 && calls % 1_000 == 0 {
        format!("{}k", calls / 1_000)
    } else {
        calls.to_string()
    }
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the crate when relative), else
/// the crate's `target/`.
pub fn target_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => manifest.join(dir),
        _ => manifest.join("target"),
    }
}

/// Where benchmark data lives: `<target>/bench-data` (never committed).
pub fn data_root() -> PathBuf {
    target_dir().join("bench-data")
}

/// The folder of the data set of `calls` calls.
pub fn dataset_dir(calls: u64) -> PathBuf {
    data_root().join(format!("calls-{calls}"))
}

/// Seconds since the epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The crate's git commit (short), with `+dirty` when tracked files have uncommitted changes;
/// `None` outside a git checkout. Side files record it so a figure names the code it measured.
pub fn git_commit() -> Option<String> {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = run(&["rev-parse", "--short", "HEAD"])?;
    let dirty =
        run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty {
        format!("{commit}+dirty")
    } else {
        commit
    })
}

/// The peak resident set size of this process (`VmHWM`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_kib("VmHWM:").map(|k| k * 1024)
}

/// The current resident set size of this process (`VmRSS`), in bytes.
pub fn rss_bytes() -> Option<u64> {
    proc_status_kib("VmRSS:").map(|k| k * 1024)
}

fn proc_status_kib(key: &str) -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// Writes a JSON side file atomically (write then rename).
pub fn write_json(path: &Path, value: &serde_json::Value) {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(value).expect("JSON");
    fs::write(&tmp, text).expect("write side file");
    fs::rename(&tmp, path).expect("rename side file");
}

/// Reads a JSON side file, if present and valid.
pub fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
}

/// The size of a file, or 0.
pub fn file_bytes(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Calls per second.
pub fn rate(calls: u64, elapsed: Duration) -> f64 {
    calls as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// A deterministic 64-bit mix (SplitMix64's finalizer).
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator options of a data set of `calls` calls.
pub fn options(calls: u64) -> GenerateOptions {
    GenerateOptions {
        calls,
        seed: SEED,
        ..GenerateOptions::default()
    }
}

/// The generated calls in batches of `batch` (each normalized, as the store keeps them).
pub fn batches(calls: u64, batch: usize) -> impl Iterator<Item = Vec<Call>> {
    let mut generator = Generator::new(&options(calls));
    std::iter::from_fn(move || {
        let mut out = Vec::with_capacity(batch);
        for mut call in generator.by_ref().take(batch) {
            call.normalize().expect("generated calls are valid");
            out.push(call);
        }
        (!out.is_empty()).then_some(out)
    })
}

// ---------------------------------------------------------------------------------------------
// SQLite: schema, loaders, row decoding
// ---------------------------------------------------------------------------------------------

/// The record columns, in the order [`call_from_row`] reads them.
pub const COLUMNS: &str = "call_sid, account_sid, property_sid, date_start, from_number, \
     from_country_code, from_region, from_city, to_number, to_friendly, duration, disposition, \
     recording_uri, endpoint, attribution_source, attribution_medium, attribution_campaign, \
     attribution_content, session_traffic_type, session_keywords, session_conversion_uri, \
     session_landing_uri, survey_type, survey_value, survey_custom1, survey_custom2, \
     survey_custom3, survey_unique_code, prompts_keys, notes, call_type, \
     google_analytics_client_id, google_adwords_click_id";

const CREATE_TABLE: &str = "CREATE TABLE calls (
    call_sid TEXT NOT NULL,
    account_sid TEXT NOT NULL,
    property_sid TEXT NOT NULL,
    date_start INTEGER NOT NULL,
    from_number TEXT NOT NULL,
    from_country_code TEXT,
    from_region TEXT,
    from_city TEXT,
    to_number TEXT NOT NULL,
    to_friendly TEXT,
    duration INTEGER NOT NULL,
    disposition TEXT NOT NULL,
    recording_uri TEXT,
    endpoint TEXT,
    attribution_source TEXT,
    attribution_medium TEXT,
    attribution_campaign TEXT,
    attribution_content TEXT,
    session_traffic_type TEXT,
    session_keywords TEXT,
    session_conversion_uri TEXT,
    session_landing_uri TEXT,
    survey_type TEXT,
    survey_value TEXT,
    survey_custom1 TEXT,
    survey_custom2 TEXT,
    survey_custom3 TEXT,
    survey_unique_code TEXT,
    prompts_keys TEXT,
    notes TEXT,
    call_type TEXT,
    google_analytics_client_id TEXT,
    google_adwords_click_id TEXT,
    -- the caller identity (SPEC §3): the normalized From, NULL for an anonymous caller
    caller TEXT,
    -- 1 = Unique, 0 = Repeat, NULL = no caller identity; in the account and in the property
    unique_account INTEGER,
    unique_property INTEGER
)";

const CREATE_INDEXES: &str = "
CREATE UNIQUE INDEX calls_call_sid ON calls(call_sid);
CREATE INDEX calls_account ON calls(account_sid, date_start, call_sid);
CREATE INDEX calls_property ON calls(property_sid, date_start, call_sid);
CREATE INDEX calls_disposition ON calls(disposition);
CREATE INDEX calls_to ON calls(to_number);
CREATE INDEX calls_endpoint ON calls(endpoint);
CREATE INDEX calls_source ON calls(attribution_source);
CREATE INDEX calls_medium ON calls(attribution_medium);
CREATE INDEX calls_campaign ON calls(attribution_campaign);
CREATE INDEX calls_content ON calls(attribution_content);
CREATE INDEX calls_prompts ON calls(prompts_keys);
CREATE INDEX calls_account_caller ON calls(account_sid, caller, date_start, call_sid);
CREATE INDEX calls_property_caller ON calls(property_sid, caller, date_start, call_sid);
";

const INSERT: &str = "INSERT INTO calls (call_sid, account_sid, property_sid, date_start, \
     from_number, from_country_code, from_region, from_city, to_number, to_friendly, duration, \
     disposition, recording_uri, endpoint, attribution_source, attribution_medium, \
     attribution_campaign, attribution_content, session_traffic_type, session_keywords, \
     session_conversion_uri, session_landing_uri, survey_type, survey_value, survey_custom1, \
     survey_custom2, survey_custom3, survey_unique_code, prompts_keys, notes, call_type, \
     google_analytics_client_id, google_adwords_click_id, caller, unique_account, \
     unique_property) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
     ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, \
     ?34, ?35, ?36)";

/// Precomputes Unique/Repeat for every row at once (bulk loads), in (date_start, call_sid) order
/// per caller and scope.
const BULK_UNIQUE: &str =
    "UPDATE calls SET unique_account = (r.ra = 1), unique_property = (r.rp = 1)
FROM (SELECT rowid AS id,
        row_number() OVER (PARTITION BY account_sid, caller ORDER BY date_start, call_sid) AS ra,
        row_number() OVER (PARTITION BY property_sid, caller ORDER BY date_start, call_sid) AS rp
      FROM calls WHERE caller IS NOT NULL) AS r
WHERE calls.rowid = r.id";

const FIRST_IN_ACCOUNT: &str = "SELECT rowid, date_start, call_sid FROM calls \
     WHERE account_sid = ?1 AND caller = ?2 ORDER BY date_start, call_sid LIMIT 1";
const FIRST_IN_PROPERTY: &str = "SELECT rowid, date_start, call_sid FROM calls \
     WHERE property_sid = ?1 AND caller = ?2 ORDER BY date_start, call_sid LIMIT 1";
const DEMOTE_IN_ACCOUNT: &str = "UPDATE calls SET unique_account = 0 WHERE rowid = ?1";
const DEMOTE_IN_PROPERTY: &str = "UPDATE calls SET unique_property = 0 WHERE rowid = ?1";

/// Opens a SQLite database for queries, with the settings a careful user would pick for a
/// read-mostly database of this size (a 128 MiB page cache, memory-mapped reads).
pub fn open_sqlite(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("open SQLite");
    conn.execute_batch(
        "PRAGMA cache_size = -131072; PRAGMA mmap_size = 1073741824; PRAGMA temp_store = MEMORY;",
    )
    .expect("pragmas");
    conn.set_prepared_statement_cache_capacity(64);
    conn
}

/// Creates an empty SQLite database with the table and every index, ready for incremental
/// loads (`synchronous = FULL` in WAL mode when `durable`, so that each commit is on disk).
pub fn create_sqlite_incremental(path: &Path, durable: bool) -> Connection {
    remove_sqlite(path);
    let conn = open_sqlite(path);
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("WAL");
    conn.pragma_update(None, "synchronous", if durable { "FULL" } else { "OFF" })
        .expect("synchronous");
    conn.execute_batch(CREATE_TABLE).expect("create table");
    conn.execute_batch(CREATE_INDEXES).expect("create indexes");
    conn
}

/// Removes a SQLite database and its side files.
pub fn remove_sqlite(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = fs::remove_file(PathBuf::from(p));
    }
}

/// Inserts one call row with its Unique/Repeat flags.
fn insert_row(
    stmt: &mut rusqlite::CachedStatement<'_>,
    c: &Call,
    unique_account: Option<i64>,
    unique_property: Option<i64>,
) -> rusqlite::Result<()> {
    stmt.execute(params![
        c.call_sid,
        c.account_sid,
        c.property_sid,
        i64::from(c.date_start),
        c.from,
        c.from_country_code,
        c.from_region,
        c.from_city,
        c.to,
        c.to_friendly,
        c.duration as i64,
        c.disposition.as_str(),
        c.recording_uri,
        c.endpoint,
        c.attribution_source,
        c.attribution_medium,
        c.attribution_campaign,
        c.attribution_content,
        c.session_traffic_type.map(|t| t.as_str()),
        c.session_keywords,
        c.session_conversion_uri,
        c.session_landing_uri,
        c.survey_type,
        c.survey_value,
        c.survey_custom1,
        c.survey_custom2,
        c.survey_custom3,
        c.survey_unique_code,
        c.prompts_keys,
        c.notes,
        c.call_type,
        c.google_analytics_client_id,
        c.google_adwords_click_id,
        caller_identity(&c.from),
        unique_account,
        unique_property,
    ])?;
    Ok(())
}

/// Inserts a batch in one transaction, keeping the Unique/Repeat columns right by SQL look-ups:
/// a call is Unique in a scope when no stored call of its caller comes before it, and then the
/// former first call of that caller (if any) becomes Repeat. Calls must be new CallSids and
/// normalized.
pub fn insert_incremental(conn: &mut Connection, batch: &[Call]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(INSERT)?;
        for call in batch {
            let (ua, up) = match caller_identity(&call.from) {
                None => (None, None),
                Some(caller) => (
                    Some(first_flag(
                        &tx,
                        FIRST_IN_ACCOUNT,
                        DEMOTE_IN_ACCOUNT,
                        &call.account_sid,
                        caller,
                        call,
                    )?),
                    Some(first_flag(
                        &tx,
                        FIRST_IN_PROPERTY,
                        DEMOTE_IN_PROPERTY,
                        &call.property_sid,
                        caller,
                        call,
                    )?),
                ),
            };
            insert_row(&mut insert, call, ua, up)?;
        }
    }
    tx.commit()
}

/// 1 when `call` becomes the first of `caller` in the scope (demoting the former first), else 0.
fn first_flag(
    conn: &Connection,
    first_sql: &str,
    demote_sql: &str,
    scope: &str,
    caller: &str,
    call: &Call,
) -> rusqlite::Result<i64> {
    let first: Option<(i64, i64, String)> = conn
        .prepare_cached(first_sql)?
        .query_row(params![scope, caller], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    Ok(match first {
        None => 1,
        Some((rowid, date, sid)) => {
            if (date, sid.as_bytes()) < (i64::from(call.date_start), call.call_sid.as_bytes()) {
                0
            } else {
                conn.prepare_cached(demote_sql)?.execute([rowid])?;
                1
            }
        }
    })
}

/// A bulk SQLite load as a careful user does it: rows first (transactions of [`BULK_BATCH`]),
/// then the indexes, the Unique/Repeat columns in one window-function pass, and `ANALYZE`.
pub struct SqliteBulk {
    conn: Connection,
    /// Time spent inserting rows.
    pub insert_time: Duration,
}

impl SqliteBulk {
    /// Starts a bulk load into a new file (any old one is removed).
    pub fn create(path: &Path) -> SqliteBulk {
        remove_sqlite(path);
        let conn = Connection::open(path).expect("open SQLite");
        conn.execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;",
        )
        .expect("pragmas");
        conn.execute_batch(CREATE_TABLE).expect("create table");
        SqliteBulk {
            conn,
            insert_time: Duration::ZERO,
        }
    }

    /// Inserts a batch of normalized calls in one transaction.
    pub fn insert(&mut self, batch: &[Call]) {
        let start = Instant::now();
        let tx = self.conn.transaction().expect("transaction");
        {
            let mut insert = tx.prepare_cached(INSERT).expect("prepare");
            for call in batch {
                insert_row(&mut insert, call, None, None).expect("insert");
            }
        }
        tx.commit().expect("commit");
        self.insert_time += start.elapsed();
    }

    /// Builds the indexes, the Unique/Repeat columns and the statistics; returns the time taken.
    pub fn finish(self) -> Duration {
        let start = Instant::now();
        self.conn.execute_batch(CREATE_INDEXES).expect("indexes");
        self.conn.execute(BULK_UNIQUE, []).expect("unique columns");
        self.conn.execute_batch("ANALYZE;").expect("analyze");
        self.conn
            .pragma_update(None, "journal_mode", "DELETE")
            .expect("journal mode");
        start.elapsed()
    }
}

/// Turns a row of [`COLUMNS`] back into a call.
pub fn call_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Call> {
    let bad = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(i, Type::Text, what.to_string().into())
    };
    let disposition: String = row.get(11)?;
    let traffic: Option<String> = row.get(18)?;
    Ok(Call {
        call_sid: row.get(0)?,
        account_sid: row.get(1)?,
        property_sid: row.get(2)?,
        date_start: row.get::<_, i64>(3)? as u32,
        from: row.get(4)?,
        from_country_code: row.get(5)?,
        from_region: row.get(6)?,
        from_city: row.get(7)?,
        to: row.get(8)?,
        to_friendly: row.get(9)?,
        duration: row.get::<_, i64>(10)? as u64,
        disposition: Disposition::parse(&disposition).ok_or_else(|| bad(11, "disposition"))?,
        recording_uri: row.get(12)?,
        endpoint: row.get(13)?,
        attribution_source: row.get(14)?,
        attribution_medium: row.get(15)?,
        attribution_campaign: row.get(16)?,
        attribution_content: row.get(17)?,
        session_traffic_type: match traffic {
            None => None,
            Some(t) => Some(TrafficType::parse(&t).ok_or_else(|| bad(18, "traffic type"))?),
        },
        session_keywords: row.get(19)?,
        session_conversion_uri: row.get(20)?,
        session_landing_uri: row.get(21)?,
        survey_type: row.get(22)?,
        survey_value: row.get(23)?,
        survey_custom1: row.get(24)?,
        survey_custom2: row.get(25)?,
        survey_custom3: row.get(26)?,
        survey_unique_code: row.get(27)?,
        prompts_keys: row.get(28)?,
        notes: row.get(29)?,
        call_type: row.get(30)?,
        google_analytics_client_id: row.get(31)?,
        google_adwords_click_id: row.get(32)?,
    })
}

// ---------------------------------------------------------------------------------------------
// Loaders of callstore
// ---------------------------------------------------------------------------------------------

/// Creates a new store file (any old one is removed).
pub fn create_store(path: &Path) -> Store {
    let _ = fs::remove_file(path);
    Store::create(path).expect("create store")
}

/// Reads a JSONL file of ingest records and imports them in batches of `batch` through one
/// [`Store::import`], finished (durable) at the end; returns how many calls were read.
pub fn import_jsonl_callstore(store: &Store, jsonl: &Path, batch: usize) -> u64 {
    let mut written = 0u64;
    let mut import = store.import();
    for_jsonl_batches(jsonl, batch, |calls| {
        written += calls.len() as u64;
        import.write(calls).expect("import");
    });
    import.finish().expect("finish the import");
    written
}

/// The same into SQLite, through [`insert_incremental`].
pub fn import_jsonl_sqlite(conn: &mut Connection, jsonl: &Path, batch: usize) -> u64 {
    let mut written = 0u64;
    for_jsonl_batches(jsonl, batch, |calls| {
        written += calls.len() as u64;
        insert_incremental(conn, &calls).expect("insert");
    });
    written
}

/// Parses a JSONL file with [`Call::from_json`] and hands it over in batches: the parsing runs
/// on a thread of its own, up to an import segment's worth of batches ahead of `f` (as
/// `callstore import` does), so that parsing and writing overlap on a machine with two cores.
/// Both sides of a comparison read through it.
pub fn for_jsonl_batches(jsonl: &Path, batch: usize, mut f: impl FnMut(Vec<Call>)) {
    let ahead = callstore::DEFAULT_IMPORT_SEGMENT_ROWS.div_ceil(batch.max(1));
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<Call>>(ahead);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let file = fs::File::open(jsonl).expect("open JSONL");
            let mut reader = BufReader::with_capacity(1 << 20, file);
            let mut line = String::new();
            let mut calls = Vec::with_capacity(batch);
            loop {
                line.clear();
                if reader.read_line(&mut line).expect("read JSONL") == 0 {
                    break;
                }
                if line.trim().is_empty() {
                    continue;
                }
                calls.push(Call::from_json(&line).expect("valid record"));
                if calls.len() == batch {
                    let full = std::mem::replace(&mut calls, Vec::with_capacity(batch));
                    if sender.send(full).is_err() {
                        return;
                    }
                }
            }
            if !calls.is_empty() {
                let _ = sender.send(calls);
            }
        });
        for calls in receiver {
            f(calls);
        }
    });
}

/// Writes the JSONL file of the data set of `calls` calls (the generator's ingest records, one a
/// line) to `path`, and syncs it: a load timed next would otherwise share the disk with the
/// write-back of the file it reads (1 GB at 1M calls), and its durable commits wait for it.
pub fn write_jsonl_file(calls: u64, path: &Path) {
    let file = fs::File::create(path).expect("create JSONL");
    let mut out = std::io::BufWriter::new(file);
    write_jsonl(&options(calls), &mut out).expect("write JSONL");
    let file = out.into_inner().expect("flush JSONL");
    file.sync_all().expect("sync JSONL");
}

/// Moves a WAL database's log into the file (after a timed load, before measuring its size).
pub fn checkpoint(conn: &Connection) {
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
}

// ---------------------------------------------------------------------------------------------
// Data sets
// ---------------------------------------------------------------------------------------------

/// A data set: the same generated calls in a callstore file and a SQLite file, with the suite
/// values picked from it.
pub struct Dataset {
    /// The folder holding the files.
    pub dir: PathBuf,
    /// How many calls.
    pub calls: u64,
    /// The callstore file.
    pub store_path: PathBuf,
    /// The SQLite file.
    pub sqlite_path: PathBuf,
    /// The suite values.
    pub picks: Picks,
}

/// What a data set depends on: the oldest store format version this build opens (a store
/// built by any format from it on is a valid store of this build, which marks it as its own
/// version when it opens it) and the generator's output (a hash of its first 1,000 records for
/// this size).
pub fn fingerprint(calls: u64) -> String {
    let mut hash = 0u64;
    for call in Generator::new(&options(calls)).take(1_000) {
        for b in call_to_ingest_json(&call).bytes() {
            hash = mix64(hash ^ u64::from(b));
        }
    }
    format!("format {OLDEST_FORMAT_VERSION}, generator {hash:016x}")
}

/// Writes the callstore file of a data set at `path`: `calls` generated calls through
/// [`Store::write`] in batches of [`BULK_BATCH`] (each batch handed to `also` first, untimed),
/// then [`Store::compact`] and [`Store::shrink_file`]. Returns its figures for `build.json`.
fn load_store(
    path: &Path,
    calls: u64,
    verbose: bool,
    mut also: impl FnMut(&[Call]),
) -> serde_json::Value {
    let mut store = create_store(path);
    let mut store_write = Duration::ZERO;
    let mut loaded = 0u64;
    for batch in batches(calls, BULK_BATCH) {
        also(&batch);
        loaded += batch.len() as u64;
        let start = Instant::now();
        store.write(batch).expect("write");
        store_write += start.elapsed();
        if verbose {
            eprintln!("bench data: {loaded} calls loaded");
        }
    }
    let start = Instant::now();
    store.compact().expect("compact");
    store.shrink_file().expect("shrink the file");
    let store_compact = start.elapsed();
    drop(store);
    let store_bytes = file_bytes(path);
    json!({
        "write_seconds": store_write.as_secs_f64(),
        "compact_seconds": store_compact.as_secs_f64(),
        "calls_per_second": rate(calls, store_write + store_compact),
        "file_bytes": store_bytes,
        "bytes_per_call": store_bytes as f64 / calls.max(1) as f64,
    })
}

/// The build report of a data set (`build.json`; its presence marks a complete build).
pub const BUILD_FILE: &str = "build.json";
const PICKS_FILE: &str = "picks.json";
/// The query bench's figures on a data set (see `benches/queries.rs`).
pub const QUERIES_FILE: &str = "queries.json";

impl Dataset {
    /// The benchmark data set of `calls` calls under `target/bench-data/`, built when missing or
    /// incomplete, reused otherwise.
    ///
    /// A data set is rebuilt when its `build.json` is missing (a build cut short), when it was
    /// built by another store format or from other generator output (see [`fingerprint`]), when
    /// its store does not open, or when `CALLSTORE_BENCH_REBUILD=1`.
    pub fn open_or_build(calls: u64) -> Dataset {
        let dir = dataset_dir(calls);
        let forced = std::env::var("CALLSTORE_BENCH_REBUILD").is_ok_and(|v| v.trim() == "1");
        let built = read_json(&dir.join(BUILD_FILE));
        let current = built
            .as_ref()
            .is_some_and(|b| b["fingerprint"].as_str() == Some(fingerprint(calls).as_str()));
        if !forced && current {
            if let Some(data) = Dataset::open(&dir, calls) {
                if Store::open(&data.store_path).is_ok() {
                    eprintln!("bench data: reusing {}", dir.display());
                    return data;
                }
            }
        }
        // Only the store format changed: the SQLite side (same generator output) stays.
        let generator = |f: &str| f.split_once(", generator").map(|(_, g)| g.to_string());
        let same_calls = built.as_ref().is_some_and(|b| {
            let old = b["fingerprint"].as_str().and_then(generator);
            old.is_some() && old == generator(&fingerprint(calls))
        });
        if !forced && same_calls {
            if let (Some(data), Some(built)) = (Dataset::open(&dir, calls), built) {
                if dir.join("sqlite.db").is_file() {
                    data.rebuild_store(built);
                    return data;
                }
            }
        }
        Dataset::build(&dir, calls, true)
    }

    /// Rebuilds the callstore file of a data set whose SQLite file is current (another store
    /// format), as [`Dataset::build`] writes it; `build.json` keeps the SQLite figures of the
    /// build that made them and records the new store's.
    fn rebuild_store(&self, mut built: serde_json::Value) {
        eprintln!(
            "bench data: rebuilding only the callstore file in {} (new store format)",
            self.dir.display()
        );
        let commit = git_commit();
        let total = Instant::now();
        built["fingerprint"] = json!(fingerprint(self.calls));
        built["callstore"] = load_store(&self.store_path, self.calls, true, |_| {});
        built["callstore_rebuilt"] = json!({
            "commit": commit,
            "built_at": unix_now(),
            "total_seconds": total.elapsed().as_secs_f64(),
        });
        write_json(&self.dir.join(BUILD_FILE), &built);
    }

    /// Opens a complete data set.
    pub fn open(dir: &Path, calls: u64) -> Option<Dataset> {
        let picks: Picks =
            serde_json::from_str(&fs::read_to_string(dir.join(PICKS_FILE)).ok()?).ok()?;
        Some(Dataset {
            dir: dir.to_path_buf(),
            calls,
            store_path: dir.join("callstore.redb"),
            sqlite_path: dir.join("sqlite.db"),
            picks,
        })
    }

    /// Builds a data set in `dir` (its files removed first): the callstore file through
    /// [`Store::write`] in batches of [`BULK_BATCH`] then [`Store::compact`], the SQLite file
    /// through [`SqliteBulk`]; then picks the suite values and writes `build.json` last.
    ///
    /// Only the data set's own files go: `ingest.json`, which `benches/ingest.rs` writes in the
    /// same directory, stays, so that building the query data does not lose the ingest figures
    /// (a 10M ingest run takes an hour).
    pub fn build(dir: &Path, calls: u64, verbose: bool) -> Dataset {
        let store_path = dir.join("callstore.redb");
        let sqlite_path = dir.join("sqlite.db");
        for file in [BUILD_FILE, PICKS_FILE, QUERIES_FILE] {
            let _ = fs::remove_file(dir.join(file));
        }
        let _ = fs::remove_file(&store_path);
        remove_sqlite(&sqlite_path);
        fs::create_dir_all(dir).expect("data dir");
        if verbose {
            eprintln!("bench data: building {} calls in {}", calls, dir.display());
        }
        let total = Instant::now();
        // The code that built the data: taken first, as a 10M build takes an hour.
        let commit = git_commit();
        let mut sqlite = SqliteBulk::create(&sqlite_path);
        let store_report = load_store(&store_path, calls, verbose, |batch| sqlite.insert(batch));
        let sqlite_insert = sqlite.insert_time;
        let sqlite_finish = sqlite.finish();
        if verbose {
            eprintln!("bench data: picking suite values");
        }
        let conn = open_sqlite(&sqlite_path);
        let picks = Picks::from_sqlite(&conn);
        drop(conn);
        fs::write(
            dir.join(PICKS_FILE),
            serde_json::to_string_pretty(&picks).expect("JSON"),
        )
        .expect("write picks");
        let sqlite_bytes = file_bytes(&sqlite_path);
        let report = json!({
            "calls": calls,
            "label": size_label(calls),
            "fingerprint": fingerprint(calls),
            "seed": SEED,
            "built_at": unix_now(),
            "commit": commit,
            "batch": BULK_BATCH,
            "callstore": store_report,
            "sqlite": {
                "insert_seconds": sqlite_insert.as_secs_f64(),
                "index_unique_analyze_seconds": sqlite_finish.as_secs_f64(),
                "calls_per_second": rate(calls, sqlite_insert + sqlite_finish),
                "file_bytes": sqlite_bytes,
                "bytes_per_call": sqlite_bytes as f64 / calls.max(1) as f64,
            },
            "total_seconds": total.elapsed().as_secs_f64(),
        });
        write_json(&dir.join(BUILD_FILE), &report);
        if verbose {
            eprintln!("bench data: built: {report}");
        }
        Dataset {
            dir: dir.to_path_buf(),
            calls,
            store_path,
            sqlite_path,
            picks,
        }
    }

    /// Opens the callstore file.
    pub fn store(&self) -> Store {
        Store::open(&self.store_path).expect("open store")
    }

    /// Opens the SQLite file.
    pub fn sqlite(&self) -> Connection {
        open_sqlite(&self.sqlite_path)
    }

    /// The query suite of this data set.
    pub fn suite(&self) -> Vec<SuiteRequest> {
        suite(&self.picks)
    }
}

// ---------------------------------------------------------------------------------------------
// The query suite
// ---------------------------------------------------------------------------------------------

/// 2025-06-01T00:00:00Z, the month of the date requests.
pub const MONTH_FROM: u32 = 1_748_736_000;
/// 2025-07-01T00:00:00Z.
pub const MONTH_TO: u32 = 1_751_328_000;

/// Values picked from a data set (deterministically: most frequent first, ties by value) to
/// build the suite with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Picks {
    /// The account with the most calls.
    pub account: String,
    /// Its number of calls.
    pub account_calls: u64,
    /// Its property with the most calls.
    pub property: String,
    /// The account with the fewest calls among those with at least 20 (else the smallest).
    pub small_account: String,
    /// The most common values in the account.
    pub to: String,
    /// The most common endpoint.
    pub endpoint: String,
    /// The most common source.
    pub source: String,
    /// The most common medium.
    pub medium: String,
    /// The most common campaign.
    pub campaign: String,
    /// The most common content.
    pub content: String,
    /// The most common first IVR key.
    pub ivr_key: String,
    /// IVR alternatives: a two-key path and another first key (`"a,b;c"`).
    pub ivr_alternatives: String,
    /// The most common (source, medium) of Answered calls.
    pub answered_source_medium: (String, String),
    /// The most common (source, medium, campaign) of Answered calls.
    pub answered_source_medium_campaign: (String, String, String),
    /// The most common (campaign, medium).
    pub campaign_medium: (String, String),
    /// How many calls of the account have that (campaign, medium).
    pub campaign_medium_calls: u64,
    /// 20 dialled numbers: the account's, most common first, then the store's.
    pub to_list: Vec<String>,
    /// A CallSid from the middle of the account.
    pub call_sid: String,
}

impl Picks {
    /// Picks the values from a SQLite database of the data set.
    pub fn from_sqlite(conn: &Connection) -> Picks {
        let one = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> (String, u64) {
            conn.query_row(sql, p, |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        };
        let (account, account_calls) = one(
            "SELECT account_sid, COUNT(*) c FROM calls GROUP BY account_sid \
             ORDER BY c DESC, account_sid LIMIT 1",
            &[],
        );
        let small_account = conn
            .query_row(
                "SELECT account_sid, COUNT(*) c FROM calls GROUP BY account_sid \
                 ORDER BY c < 20, c, account_sid LIMIT 1",
                [],
                |r| r.get(0),
            )
            .expect("small account");
        let a: &dyn rusqlite::ToSql = &account;
        let top = |col: &str| -> String {
            one(
                &format!(
                    "SELECT {col}, COUNT(*) c FROM calls WHERE account_sid = ?1 AND {col} IS NOT NULL \
                     GROUP BY {col} ORDER BY c DESC, {col} LIMIT 1"
                ),
                &[a],
            )
            .0
        };
        let property = top("property_sid");
        // IVR paths: count calls by first key and by first two keys.
        let mut by_first: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_two: BTreeMap<String, u64> = BTreeMap::new();
        {
            let mut stmt = conn
                .prepare(
                    "SELECT prompts_keys, COUNT(*) FROM calls WHERE account_sid = ?1 \
                     AND prompts_keys IS NOT NULL GROUP BY prompts_keys",
                )
                .expect("prepare");
            let rows = stmt
                .query_map([&account], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
                })
                .expect("query");
            for row in rows {
                let (path, n) = row.expect("row");
                let keys: Vec<&str> = path.split(',').collect();
                *by_first.entry(keys[0].to_string()).or_default() += n;
                if keys.len() >= 2 {
                    *by_two
                        .entry(format!("{},{}", keys[0], keys[1]))
                        .or_default() += n;
                }
            }
        }
        let ranked = |m: &BTreeMap<String, u64>| -> Vec<String> {
            let mut v: Vec<(&String, &u64)> = m.iter().collect();
            v.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
            v.into_iter().map(|(k, _)| k.clone()).collect()
        };
        let firsts = ranked(&by_first);
        let twos = ranked(&by_two);
        let ivr_key = firsts.first().cloned().expect("IVR paths in the data");
        let two = twos.first().cloned().unwrap_or_else(|| ivr_key.clone());
        let two_first = two.split(',').next().unwrap_or_default().to_string();
        let ivr_alternatives = match firsts.iter().find(|k| **k != two_first) {
            Some(other) => format!("{two};{other}"),
            None => two,
        };
        let pair = |sql: &str| -> (String, String, u64) {
            conn.query_row(sql, [&account], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
            })
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
        };
        let (s, m, _) = pair(
            "SELECT attribution_source, attribution_medium, COUNT(*) c FROM calls \
             WHERE account_sid = ?1 AND disposition = 'Answered' AND attribution_source IS NOT NULL \
             AND attribution_medium IS NOT NULL GROUP BY 1, 2 ORDER BY c DESC, 1, 2 LIMIT 1",
        );
        let answered_source_medium_campaign: (String, String, String) = conn
            .query_row(
                "SELECT attribution_source, attribution_medium, attribution_campaign, COUNT(*) c \
                 FROM calls WHERE account_sid = ?1 AND disposition = 'Answered' \
                 AND attribution_source IS NOT NULL AND attribution_medium IS NOT NULL \
                 AND attribution_campaign IS NOT NULL GROUP BY 1, 2, 3 \
                 ORDER BY c DESC, 1, 2, 3 LIMIT 1",
                [&account],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("source, medium, campaign");
        let (cc, cm, campaign_medium_calls) = pair(
            "SELECT attribution_campaign, attribution_medium, COUNT(*) c FROM calls \
             WHERE account_sid = ?1 AND attribution_campaign IS NOT NULL \
             AND attribution_medium IS NOT NULL GROUP BY 1, 2 ORDER BY c DESC, 1, 2 LIMIT 1",
        );
        let mut to_list: Vec<String> = Vec::new();
        for sql in [
            "SELECT to_number, COUNT(*) c FROM calls WHERE account_sid = ?1 \
             GROUP BY to_number ORDER BY c DESC, to_number",
            "SELECT to_number, COUNT(*) c FROM calls WHERE ?1 = ?1 \
             GROUP BY to_number ORDER BY c DESC, to_number",
        ] {
            let mut stmt = conn.prepare(sql).expect("prepare");
            let rows = stmt
                .query_map([&account], |r| r.get::<_, String>(0))
                .expect("query");
            for to in rows {
                let to = to.expect("row");
                if to_list.len() < 20 && !to_list.contains(&to) {
                    to_list.push(to);
                }
            }
        }
        let call_sid = conn
            .query_row(
                "SELECT call_sid FROM calls WHERE account_sid = ?1 \
                 ORDER BY date_start, call_sid LIMIT 1 OFFSET ?2",
                params![account, (account_calls / 2) as i64],
                |r| r.get(0),
            )
            .expect("call sid");
        Picks {
            to: top("to_number"),
            endpoint: top("endpoint"),
            source: top("attribution_source"),
            medium: top("attribution_medium"),
            campaign: top("attribution_campaign"),
            content: top("attribution_content"),
            account,
            account_calls,
            property,
            small_account,
            ivr_key,
            ivr_alternatives,
            answered_source_medium: (s, m),
            answered_source_medium_campaign,
            campaign_medium: (cc, cm),
            campaign_medium_calls,
            to_list,
            call_sid,
        }
    }
}

/// What a suite request measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A page of calls (decoded).
    Page,
    /// The number of matching calls (`Store::count`, `SELECT COUNT(*)`).
    Count,
    /// One call by CallSid.
    Get,
}

impl Kind {
    /// The kind's name in side files.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Page => "page",
            Kind::Count => "count",
            Kind::Get => "get",
        }
    }
}

/// One named request of the suite.
#[derive(Clone, Debug)]
pub struct SuiteRequest {
    /// A short name (criterion group names are built from it).
    pub name: String,
    /// The API request string.
    pub request: String,
    /// What is measured.
    pub kind: Kind,
    /// The parsed request.
    pub parsed: Request,
    /// The equivalent SQL.
    pub sql: SqlPlan,
}

/// Percent-encodes a query-string value (form encoding: everything but unreserved characters).
pub fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b',' | b';') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The suite built from picked values.
pub fn suite(p: &Picks) -> Vec<SuiteRequest> {
    let acct = format!("/v2/Accounts/{}/Calls", encode(&p.account));
    let prop = format!("/v2/Properties/{}/Calls", encode(&p.property));
    let e = encode;
    let skip_10k = 10_000.min(p.account_calls / 10);
    let skip_100k = 100_000.min(p.account_calls * 6 / 10);
    let skip_2000 = 2_000.min(p.campaign_medium_calls / 2);
    let (asm_s, asm_m) = &p.answered_source_medium;
    let (f_s, f_m, f_c) = &p.answered_source_medium_campaign;
    let (cm_c, cm_m) = &p.campaign_medium;
    let month = format!("Date_From={MONTH_FROM}&Date_To={MONTH_TO}");
    let to_list = p.to_list.iter().map(|t| e(t)).collect::<Vec<_>>().join(",");
    let three = format!(
        "Disposition=Answered&Attribution_Source={}&Attribution_Medium={}",
        e(asm_s),
        e(asm_m)
    );
    let four = format!(
        "Disposition=Answered&Attribution_Source={}&Attribution_Medium={}&Attribution_Campaign={}",
        e(f_s),
        e(f_m),
        e(f_c)
    );
    let ivr_alt = format!("Prompts_keys={}", e(&p.ivr_alternatives));
    let list: Vec<(&str, String, Kind)> = vec![
        ("account_page", acct.clone(), Kind::Page),
        ("property_page", prop.clone(), Kind::Page),
        ("date_month", format!("{acct}?{month}"), Kind::Page),
        (
            "disposition",
            format!("{acct}?Disposition=Answered"),
            Kind::Page,
        ),
        ("to", format!("{acct}?To={}", e(&p.to)), Kind::Page),
        (
            "endpoint",
            format!("{acct}?Endpoint={}", e(&p.endpoint)),
            Kind::Page,
        ),
        (
            "source",
            format!("{acct}?Attribution_Source={}", e(&p.source)),
            Kind::Page,
        ),
        (
            "medium",
            format!("{acct}?Attribution_Medium={}", e(&p.medium)),
            Kind::Page,
        ),
        (
            "campaign",
            format!("{acct}?Attribution_Campaign={}", e(&p.campaign)),
            Kind::Page,
        ),
        (
            "content",
            format!("{acct}?Attribution_Content={}", e(&p.content)),
            Kind::Page,
        ),
        (
            "prompts",
            format!("{acct}?Prompts_keys={}", e(&p.ivr_key)),
            Kind::Page,
        ),
        (
            "answered_source",
            format!(
                "{acct}?Disposition=Answered&Attribution_Source={}",
                e(asm_s)
            ),
            Kind::Page,
        ),
        ("three_filters", format!("{acct}?{three}"), Kind::Page),
        ("four_filters", format!("{acct}?{four}"), Kind::Page),
        (
            "campaign_medium_skip_2000",
            format!(
                "{acct}?Attribution_Campaign={}&Attribution_Medium={}&Results_Skip={skip_2000}",
                e(cm_c),
                e(cm_m)
            ),
            Kind::Page,
        ),
        ("ivr_alternatives", format!("{acct}?{ivr_alt}"), Kind::Page),
        ("unique", format!("{acct}?Unique=Unique"), Kind::Page),
        ("repeat", format!("{acct}?Unique=Repeat"), Kind::Page),
        (
            "property_unique_month",
            format!("{prop}?Unique=Unique&{month}"),
            Kind::Page,
        ),
        ("skip_0", format!("{acct}?Results_Skip=0"), Kind::Page),
        (
            "skip_10k",
            format!("{acct}?Results_Skip={skip_10k}"),
            Kind::Page,
        ),
        (
            "skip_100k",
            format!("{acct}?Results_Skip={skip_100k}"),
            Kind::Page,
        ),
        (
            "small_account",
            format!("/v2/Accounts/{}/Calls", e(&p.small_account)),
            Kind::Page,
        ),
        ("to_list_20", format!("{acct}?To={to_list}"), Kind::Page),
        (
            "get_call",
            format!("/v2/Calls/{}", e(&p.call_sid)),
            Kind::Get,
        ),
        ("count_account", acct.clone(), Kind::Count),
        (
            "count_answered",
            format!("{acct}?Disposition=Answered"),
            Kind::Count,
        ),
        (
            "count_three_filters",
            format!("{acct}?{three}"),
            Kind::Count,
        ),
        ("count_unique", format!("{acct}?Unique=Unique"), Kind::Count),
        ("count_date_month", format!("{acct}?{month}"), Kind::Count),
        (
            "count_ivr_alternatives",
            format!("{acct}?{ivr_alt}"),
            Kind::Count,
        ),
    ];
    list.into_iter()
        .map(|(name, request, kind)| {
            let parsed = parse_request(&request)
                .unwrap_or_else(|e| panic!("suite request {name} {request}: {e}"));
            let sql = sql_for(&parsed, kind);
            SuiteRequest {
                name: name.to_string(),
                request,
                kind,
                parsed,
                sql,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// SQL translation and running
// ---------------------------------------------------------------------------------------------

/// A SQL statement and its parameters.
#[derive(Clone, Debug)]
pub struct SqlPlan {
    /// The statement.
    pub sql: String,
    /// Its parameters, in order.
    pub params: Vec<Value>,
    /// What it returns.
    pub kind: Kind,
}

/// The SQL equivalent of a request: the same rows, in the same order (or the same count).
pub fn sql_for(request: &Request, kind: Kind) -> SqlPlan {
    let q: Query = match request {
        Request::Call(sid) => {
            return SqlPlan {
                sql: format!("SELECT {COLUMNS} FROM calls WHERE call_sid = ?"),
                params: vec![Value::Text(sid.clone())],
                kind: Kind::Get,
            };
        }
        Request::List(q) => q.normalized().expect("valid query"),
    };
    let mut conds: Vec<String> = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    let unique_col = match &q.scope {
        Scope::Account(sid) => {
            conds.push("account_sid = ?".into());
            params.push(Value::Text(sid.clone()));
            "unique_account"
        }
        Scope::Property(sid) => {
            conds.push("property_sid = ?".into());
            params.push(Value::Text(sid.clone()));
            "unique_property"
        }
    };
    if let Some(t) = q.date_from {
        conds.push("date_start >= ?".into());
        params.push(Value::Integer(i64::from(t)));
    }
    if let Some(t) = q.date_to {
        conds.push("date_start < ?".into());
        params.push(Value::Integer(i64::from(t)));
    }
    let dispositions: Vec<String> = q
        .dispositions
        .iter()
        .map(|d| d.as_str().to_string())
        .collect();
    for (col, values) in [
        ("disposition", &dispositions),
        ("to_number", &q.to),
        ("endpoint", &q.endpoint),
        ("attribution_source", &q.attribution_source),
        ("attribution_medium", &q.attribution_medium),
        ("attribution_campaign", &q.attribution_campaign),
        ("attribution_content", &q.attribution_content),
    ] {
        match values.len() {
            0 => {}
            1 => conds.push(format!("{col} = ?")),
            n => conds.push(format!("{col} IN ({})", vec!["?"; n].join(", "))),
        }
        params.extend(values.iter().map(|v| Value::Text(v.clone())));
    }
    if !q.prompts_keys.is_empty() {
        // A path p matches itself and every path below it: "p" or "p,..." (',' + 1 is '-').
        let alternatives: Vec<&str> = q
            .prompts_keys
            .iter()
            .map(|_| "prompts_keys = ? OR (prompts_keys >= ? AND prompts_keys < ?)")
            .collect();
        conds.push(format!("({})", alternatives.join(" OR ")));
        for p in &q.prompts_keys {
            params.push(Value::Text(p.clone()));
            params.push(Value::Text(format!("{p},")));
            params.push(Value::Text(format!("{p}-")));
        }
    }
    match q.unique {
        UniqueFilter::All => {}
        UniqueFilter::Unique => conds.push(format!("{unique_col} = 1")),
        UniqueFilter::Repeat => conds.push(format!("{unique_col} = 0")),
    }
    let wh = conds.join(" AND ");
    match kind {
        Kind::Count => SqlPlan {
            sql: format!("SELECT COUNT(*) FROM calls WHERE {wh}"),
            params,
            kind,
        },
        _ => {
            params.push(Value::Integer(i64::from(q.results_count)));
            params.push(Value::Integer(i64::from(q.results_skip)));
            SqlPlan {
                sql: format!(
                    "SELECT {COLUMNS} FROM calls WHERE {wh} \
                     ORDER BY date_start, call_sid LIMIT ? OFFSET ?"
                ),
                params,
                kind: Kind::Page,
            }
        }
    }
}

/// What a request returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Decoded calls (a page, or the one call of a get).
    Calls(Vec<Call>),
    /// A count.
    Count(u64),
}

impl Outcome {
    /// The CallSids, or the count, as text (for comparisons and messages).
    pub fn summary(&self) -> Vec<String> {
        match self {
            Outcome::Calls(calls) => calls.iter().map(|c| c.call_sid.clone()).collect(),
            Outcome::Count(n) => vec![n.to_string()],
        }
    }

    /// The number of rows (or the count).
    pub fn rows(&self) -> u64 {
        match self {
            Outcome::Calls(calls) => calls.len() as u64,
            Outcome::Count(n) => *n,
        }
    }
}

/// Runs a suite request on callstore.
pub fn run_callstore(store: &Store, r: &SuiteRequest) -> Outcome {
    match (r.kind, &r.parsed) {
        (Kind::Count, Request::List(q)) => Outcome::Count(store.count(q).expect("count")),
        _ => match store.execute(&r.parsed).expect("execute") {
            Response::Call(call) => Outcome::Calls(vec![*call]),
            Response::Calls(calls) => Outcome::Calls(calls),
        },
    }
}

/// Runs a suite request's SQL on SQLite, decoding the rows into calls.
pub fn run_sqlite(conn: &Connection, plan: &SqlPlan) -> Outcome {
    let mut stmt = conn.prepare_cached(&plan.sql).expect("prepare");
    match plan.kind {
        Kind::Count => Outcome::Count(
            stmt.query_row(params_from_iter(plan.params.iter()), |r| r.get::<_, i64>(0))
                .expect("count") as u64,
        ),
        _ => {
            let rows = stmt
                .query_map(params_from_iter(plan.params.iter()), call_from_row)
                .expect("query");
            Outcome::Calls(rows.collect::<rusqlite::Result<Vec<Call>>>().expect("rows"))
        }
    }
}

/// Runs a suite request on callstore the way the timed benches do: a page is read as a
/// [`Page`](callstore::Page) of borrowed calls and every field of every call is visited (see
/// [`visit_sqlite`] for the same work on SQLite); a count or a get as in [`run_callstore`].
/// Returns a checksum of the values visited: the bytes of every string plus every number.
pub fn visit_callstore(store: &Store, r: &SuiteRequest) -> u64 {
    match (r.kind, &r.parsed) {
        (Kind::Page, Request::List(q)) => {
            let page = store.query_page(q).expect("query");
            page.iter()
                .map(|call| {
                    visited()
                        .map(|field| match call.value(field) {
                            FieldValue::Str(s) => s.len() as u64,
                            FieldValue::Int(n) => n,
                            FieldValue::Null => 0,
                        })
                        .sum::<u64>()
                })
                .sum()
        }
        _ => run_callstore(store, r).rows(),
    }
}

/// The fields [`visit_callstore`] reads: every response field and `AccountSid`, the columns of
/// [`COLUMNS`] (the checksum does not depend on their order).
fn visited() -> impl Iterator<Item = Field> {
    std::iter::once(Field::AccountSid).chain(Field::RESPONSE)
}

/// Runs a suite request's SQL on SQLite the way the timed benches do: a page's rows are stepped
/// and every column read in place (no copy of its text), the same work as
/// [`visit_callstore`], with the same checksum; a count or a get as in [`run_sqlite`].
pub fn visit_sqlite(conn: &Connection, plan: &SqlPlan) -> u64 {
    if plan.kind != Kind::Page {
        return run_sqlite(conn, plan).rows();
    }
    let mut stmt = conn.prepare_cached(&plan.sql).expect("prepare");
    let mut rows = stmt
        .query(params_from_iter(plan.params.iter()))
        .expect("query");
    let mut sum = 0u64;
    while let Some(row) = rows.next().expect("row") {
        for i in 0..visited().count() {
            sum += match row.get_ref(i).expect("column") {
                ValueRef::Text(t) => t.len() as u64,
                ValueRef::Integer(n) => n as u64,
                _ => 0,
            };
        }
    }
    sum
}

/// Runs every suite request on both sides and panics on the first difference (CallSid lists in
/// order, or counts); returns the row counts.
pub fn check_equivalence(store: &Store, conn: &Connection, suite: &[SuiteRequest]) -> Vec<u64> {
    suite
        .iter()
        .map(|r| {
            let ours = run_callstore(store, r);
            let theirs = run_sqlite(conn, &r.sql);
            assert_eq!(
                ours.summary(),
                theirs.summary(),
                "suite request {} ({}) differs between callstore and SQLite\nSQL: {}",
                r.name,
                r.request,
                r.sql.sql
            );
            if let (Outcome::Calls(a), Outcome::Calls(b)) = (&ours, &theirs) {
                assert_eq!(a, b, "suite request {}: the decoded calls differ", r.name);
            }
            assert_eq!(
                visit_callstore(store, r),
                visit_sqlite(conn, &r.sql),
                "suite request {}: the timed runs read different values",
                r.name
            );
            ours.rows()
        })
        .collect()
}

/// The median time of `f` over up to `max_runs` runs (at least 3, until about `budget`).
pub fn median_time<T>(budget: Duration, max_runs: usize, mut f: impl FnMut() -> T) -> Duration {
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 3 || (times.len() < max_runs && start.elapsed() < budget) {
        let t = Instant::now();
        std::hint::black_box(f());
        times.push(t.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

// ---------------------------------------------------------------------------------------------
// The live feed
// ---------------------------------------------------------------------------------------------

/// The generated calls of `calls` reordered as a live feed: in the generator's arrival order,
/// except that 5% of them (chosen by a hash of their position) arrive up to an hour late. The
/// feed clock is the latest end time (`Date_Start + Duration`) seen so far; a late call is
/// delivered once the clock passes its own arrival time plus a delay of 1 s to 1 h.
pub fn live_feed(calls: u64) -> Vec<Call> {
    let mut keyed: Vec<(u64, usize, Call)> = Vec::with_capacity(calls as usize);
    let mut clock = 0u64;
    for (i, call) in batches(calls, BULK_BATCH).flatten().enumerate() {
        let end = u64::from(call.date_start) + call.duration;
        clock = clock.max(end);
        let h = mix64(SEED ^ (i as u64).wrapping_mul(0x9E37));
        let delay = if h % 100 < 5 { 1 + (h >> 32) % 3600 } else { 0 };
        keyed.push((clock + delay, i, call));
    }
    keyed.sort_by_key(|(key, i, _)| (*key, *i));
    keyed.into_iter().map(|(_, _, c)| c).collect()
}

/// How many calls of a feed arrive after a call that started later than they did (a measure of
/// how out of order the feed is).
pub fn out_of_order(feed: &[Call]) -> u64 {
    let mut latest = 0u32;
    let mut n = 0;
    for c in feed {
        if c.date_start < latest {
            n += 1;
        }
        latest = latest.max(c.date_start);
    }
    n
}
