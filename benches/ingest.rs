//! Ingest, callstore and SQLite side by side (issue 4).
//!
//! `cargo bench --bench ingest` measures, at 1M calls by default (`CALLSTORE_BENCH_10M=1` for
//! 10M, `CALLSTORE_BENCH_CALLS=N` for any size):
//!
//! 1. **Live feed**: `min(N, 200k)` calls (`CALLSTORE_BENCH_LIVE_CALLS` to change) in batches of
//!    100, each batch committed durably (callstore: one [`Store::write`]; SQLite: one transaction
//!    in WAL mode with `synchronous = FULL`, Unique/Repeat kept by SQL look-ups), 5% of the
//!    calls arriving up to an hour late ([`support::live_feed`]).
//! 2. **Latency after the live feed**: every suite request, built from the live data, on the
//!    live-fed store, on a store bulk-loaded with the same calls (and compacted), and on the
//!    live-fed SQLite database; medians of repeated runs go to the side file, and a few requests
//!    also run as criterion groups `ingest-<size>-after_live-<request>`.
//! 3. **Bulk import** of N calls: from the JSONL file (read, [`Call::from_json`], batches of
//!    100k) and from typed records (`Vec<Call>` batches from the generator, generation not
//!    timed). callstore loads through [`Store::import`] (segments of 262,144 calls, each one
//!    durable commit); SQLite with every index present commits each batch
//!    durably; and SQLite loads the JSONL the fastest careful way (rows first, with neither
//!    journal nor sync, then indexes and the Unique/Repeat columns in one pass). One run each
//!    (`CALLSTORE_BENCH_INGEST_RUNS=R` for the median of R).
//!
//! The bench runs with the `callstore` command's allocator and its settings (`src/allocator.rs`:
//! mimalloc, keeping freed memory), so that imports are timed as the command runs them; both
//! sides run in this one process.
//!
//! These loads take seconds to minutes each, so they are timed with `Instant` (calls/s) rather
//! than sampled by criterion; the figures go to `target/bench-data/calls-<N>/ingest.json` for
//! `examples/bench_report.rs`. SQLite file sizes are measured after a WAL checkpoint. Scratch
//! files (the stores, the JSONL input) live in `target/bench-data/ingest-tmp-<N>/` and are
//! removed as soon as they are measured; at 10M the bench needs about 15 GB of free disk on top
//! of the query data set (about 17 GB).
//!
//! [`Store::write`]: callstore::Store::write
//! [`Store::import`]: callstore::Store::import
//! [`Call::from_json`]: callstore::Call::from_json

#[path = "../src/allocator.rs"]
mod allocator;
mod support;

use std::fs;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use callstore::Call;
use criterion::Criterion;
use serde_json::{Value as Json, json};
use support::{
    BULK_BATCH, LIVE_BATCH, SqliteBulk, bench_calls, check_equivalence, create_sqlite_incremental,
    create_store, file_bytes, median_time, rate, size_label, visit_callstore, visit_sqlite,
};

/// The suite requests that also run as criterion groups after the live feed.
const CRITERION_AFTER_LIVE: [&str; 6] = [
    "account_page",
    "three_filters",
    "ivr_alternatives",
    "unique",
    "skip_100k",
    "count_answered",
];

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()?
        .trim()
        .replace('_', "")
        .parse()
        .ok()
}

fn main() {
    allocator::tune();
    let calls = bench_calls();
    let label = size_label(calls);
    let live_calls = env_u64("CALLSTORE_BENCH_LIVE_CALLS").unwrap_or(calls.min(200_000));
    let runs = env_u64("CALLSTORE_BENCH_INGEST_RUNS").unwrap_or(1).max(1) as usize;
    let data_dir = support::dataset_dir(calls);
    fs::create_dir_all(&data_dir).expect("data dir");
    let tmp = support::data_root().join(format!("ingest-tmp-{calls}"));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).expect("scratch dir");
    let side_file = data_dir.join("ingest.json");
    let mut report = json!({
        "calls": calls,
        "label": label,
        "measured_at": support::unix_now(),
        "commit": support::git_commit(),
    });
    let save = |report: &Json| support::write_json(&side_file, report);
    let mut criterion = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();

    // 1. The live feed.
    eprintln!("ingest: live feed of {live_calls} calls in batches of {LIVE_BATCH}");
    let feed = support::live_feed(live_calls);
    let live_store_path = tmp.join("live.redb");
    let live_sqlite_path = tmp.join("live.db");
    let store = create_store(&live_store_path);
    let mut latencies = Vec::with_capacity(feed.len() / LIVE_BATCH + 1);
    for batch in feed.chunks(LIVE_BATCH) {
        let batch = batch.to_vec();
        let start = Instant::now();
        store.write(batch).expect("write");
        latencies.push(start.elapsed());
    }
    let callstore_live = live_summary(&latencies, live_calls, file_bytes(&live_store_path));
    eprintln!("ingest: callstore live feed {callstore_live}");
    let mut conn = create_sqlite_incremental(&live_sqlite_path, true);
    latencies.clear();
    for batch in feed.chunks(LIVE_BATCH) {
        let start = Instant::now();
        support::insert_incremental(&mut conn, batch).expect("insert");
        latencies.push(start.elapsed());
    }
    support::checkpoint(&conn);
    let sqlite_bytes = file_bytes(&live_sqlite_path);
    let sqlite_live = live_summary(&latencies, live_calls, sqlite_bytes);
    eprintln!("ingest: SQLite live feed {sqlite_live}");
    report["live_feed"] = json!({
        "calls": live_calls,
        "batch": LIVE_BATCH,
        "late_share": 0.05,
        "out_of_order_calls": support::out_of_order(&feed),
        "callstore": callstore_live,
        "sqlite": sqlite_live,
    });
    save(&report);
    drop(feed);

    // 2. Latency after the live feed, against the same calls bulk-loaded.
    eprintln!("ingest: bulk-loading the same {live_calls} calls for comparison");
    let bulk_store_path = tmp.join("bulk-same.redb");
    let bulk_store = create_store(&bulk_store_path);
    let start = Instant::now();
    for batch in support::batches(live_calls, BULK_BATCH) {
        bulk_store.write(batch).expect("write");
    }
    bulk_store.compact().expect("compact");
    let bulk_same_seconds = start.elapsed().as_secs_f64();
    let picks = support::Picks::from_sqlite(&conn);
    let suite = support::suite(&picks);
    let rows = check_equivalence(&store, &conn, &suite);
    check_equivalence(&bulk_store, &conn, &suite);
    let budget = Duration::from_millis(300);
    let mut after = Vec::new();
    for (r, n) in suite.iter().zip(&rows) {
        let live = median_time(budget, 300, || visit_callstore(&store, r));
        let bulk = median_time(budget, 300, || visit_callstore(&bulk_store, r));
        let sqlite = median_time(budget, 300, || visit_sqlite(&conn, &r.sql));
        after.push(json!({
            "name": r.name,
            "request": r.request,
            "kind": r.kind.as_str(),
            "rows": n,
            "callstore_live_ns": live.as_nanos() as u64,
            "callstore_bulk_ns": bulk.as_nanos() as u64,
            "sqlite_live_ns": sqlite.as_nanos() as u64,
        }));
    }
    report["after_live"] = json!({
        "calls": live_calls,
        "callstore_live_file_bytes": file_bytes(&live_store_path),
        "callstore_bulk_file_bytes": file_bytes(&bulk_store_path),
        "callstore_bulk_load_seconds": bulk_same_seconds,
        "requests": after,
    });
    save(&report);
    for r in suite
        .iter()
        .filter(|r| CRITERION_AFTER_LIVE.contains(&r.name.as_str()))
    {
        let mut group = criterion.benchmark_group(format!("ingest-{label}-after_live-{}", r.name));
        group.bench_function("callstore_live", |b| {
            b.iter(|| black_box(visit_callstore(&store, r)))
        });
        group.bench_function("callstore_bulk", |b| {
            b.iter(|| black_box(visit_callstore(&bulk_store, r)))
        });
        group.bench_function("sqlite_live", |b| {
            b.iter(|| black_box(visit_sqlite(&conn, &r.sql)))
        });
        group.finish();
    }
    drop((store, bulk_store, conn));
    let _ = fs::remove_file(&live_store_path);
    let _ = fs::remove_file(&bulk_store_path);
    support::remove_sqlite(&live_sqlite_path);

    // 3. Bulk import of N calls.
    // The JSONL input is scratch too (about 1 KB a call): written now, removed at the end.
    eprintln!("ingest: writing the JSONL file of {calls} calls");
    let jsonl = tmp.join("calls.jsonl");
    support::write_jsonl_file(calls, &jsonl);
    let mut variants: Vec<(&str, Vec<Json>)> = Vec::new();
    for run in 0..runs {
        eprintln!("ingest: bulk import run {} of {runs}", run + 1);
        let results = [
            ("callstore_jsonl", bulk_callstore(&tmp, calls, Some(&jsonl))),
            ("callstore_typed", bulk_callstore(&tmp, calls, None)),
            ("sqlite_jsonl", bulk_sqlite(&tmp, calls, Some(&jsonl))),
            ("sqlite_typed", bulk_sqlite(&tmp, calls, None)),
            (
                "sqlite_jsonl_deferred_indexes",
                bulk_sqlite_deferred(&tmp, &jsonl),
            ),
        ];
        for (name, result) in results {
            eprintln!("ingest: {name}: {result}");
            match variants.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.push(result),
                None => variants.push((name, vec![result])),
            }
        }
        let mut bulk = json!({ "calls": calls, "batch": BULK_BATCH, "runs": run + 1 });
        for (name, results) in &variants {
            bulk[*name] = median_run(results);
        }
        report["bulk"] = bulk;
        save(&report);
    }
    let _ = fs::remove_dir_all(&tmp);
    criterion.final_summary();
    eprintln!("ingest: figures in {}", side_file.display());
}

/// The rate and batch latencies of a live feed.
fn live_summary(latencies: &[Duration], calls: u64, file_bytes: u64) -> Json {
    let total: Duration = latencies.iter().sum();
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let at = |q: f64| {
        sorted
            .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
            .map(|d| d.as_secs_f64() * 1e3)
            .unwrap_or(0.0)
    };
    json!({
        "seconds": total.as_secs_f64(),
        "calls_per_second": rate(calls, total),
        "batch_ms_p50": at(0.5),
        "batch_ms_p99": at(0.99),
        "batch_ms_max": at(1.0),
        "file_bytes": file_bytes,
    })
}

/// The run with the median rate.
fn median_run(results: &[Json]) -> Json {
    let mut sorted = results.to_vec();
    sorted.sort_by(|a, b| {
        let r = |x: &Json| x["calls_per_second"].as_f64().unwrap_or(0.0);
        r(a).total_cmp(&r(b))
    });
    sorted[sorted.len() / 2].clone()
}

/// Bulk import into a new store through [`callstore::Store::import`]: from the JSONL file when
/// given, else from typed batches (their generation not timed); then a compaction (segments
/// merged, free pages given back), timed apart.
fn bulk_callstore(tmp: &Path, calls: u64, jsonl: Option<&Path>) -> Json {
    let path = tmp.join("bulk.redb");
    let store = create_store(&path);
    let (written, import) = match jsonl {
        Some(jsonl) => {
            let start = Instant::now();
            let n = support::import_jsonl_callstore(&store, jsonl, BULK_BATCH);
            (n, start.elapsed())
        }
        None => {
            let mut n = 0;
            let mut spent = Duration::ZERO;
            let mut import = store.import();
            for batch in support::batches(calls, BULK_BATCH) {
                n += batch.len() as u64;
                let start = Instant::now();
                import.write(batch).expect("import");
                spent += start.elapsed();
            }
            let start = Instant::now();
            import.finish().expect("finish the import");
            (n, spent + start.elapsed())
        }
    };
    // Measured closed: an open redb file keeps room it has reserved for growth.
    drop(store);
    let committed_bytes = file_bytes(&path);
    let mut store = callstore::Store::open(&path).expect("reopen the store");
    let start = Instant::now();
    store.compact().expect("compact");
    store.shrink_file().expect("shrink the file");
    let compact = start.elapsed();
    drop(store);
    let compacted_bytes = file_bytes(&path);
    let _ = fs::remove_file(&path);
    json!({
        "calls": written,
        "seconds": import.as_secs_f64(),
        "calls_per_second": rate(written, import),
        "file_bytes": committed_bytes,
        "compact_seconds": compact.as_secs_f64(),
        "compacted_file_bytes": compacted_bytes,
    })
}

/// Bulk import into a new SQLite database with every index present, Unique/Repeat kept by SQL
/// look-ups, one durable transaction per batch.
fn bulk_sqlite(tmp: &Path, calls: u64, jsonl: Option<&Path>) -> Json {
    let path = tmp.join("bulk.db");
    let mut conn = create_sqlite_incremental(&path, true);
    let (written, spent) = match jsonl {
        Some(jsonl) => {
            let start = Instant::now();
            let n = support::import_jsonl_sqlite(&mut conn, jsonl, BULK_BATCH);
            (n, start.elapsed())
        }
        None => {
            let mut n = 0;
            let mut spent = Duration::ZERO;
            for batch in support::batches(calls, BULK_BATCH) {
                n += batch.len() as u64;
                let start = Instant::now();
                support::insert_incremental(&mut conn, &batch).expect("insert");
                spent += start.elapsed();
            }
            (n, spent)
        }
    };
    support::checkpoint(&conn);
    let bytes = file_bytes(&path);
    drop(conn);
    support::remove_sqlite(&path);
    json!({
        "calls": written,
        "seconds": spent.as_secs_f64(),
        "calls_per_second": rate(written, spent),
        "file_bytes": bytes,
    })
}

/// SQLite loading the JSONL file the fastest careful way: rows first, then the indexes, the
/// Unique/Repeat columns and `ANALYZE` ([`SqliteBulk`]).
fn bulk_sqlite_deferred(tmp: &Path, jsonl: &Path) -> Json {
    let path = tmp.join("bulk-deferred.db");
    let start = Instant::now();
    let mut bulk = SqliteBulk::create(&path);
    let mut written = 0u64;
    support::for_jsonl_batches(jsonl, BULK_BATCH, |batch: Vec<Call>| {
        written += batch.len() as u64;
        bulk.insert(&batch);
    });
    bulk.finish();
    let spent = start.elapsed();
    let bytes = file_bytes(&path);
    support::remove_sqlite(&path);
    json!({
        "calls": written,
        "seconds": spent.as_secs_f64(),
        "calls_per_second": rate(written, spent),
        "file_bytes": bytes,
    })
}
