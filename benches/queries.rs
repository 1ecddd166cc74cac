//! The query suite, callstore and SQLite side by side (issue 4).
//!
//! `cargo bench --bench queries` runs every suite request of `benches/support` at 1M calls
//! (`CALLSTORE_BENCH_10M=1` for 10M, `CALLSTORE_BENCH_CALLS=N` for any size), each as a
//! criterion group `q-<size>-<request>` with the functions `callstore` and `sqlite`, so that the
//! ratio comes from one run. The data is built once into `target/bench-data/` and reused.
//!
//! A page is timed as a user reading it: callstore returns a [`callstore::Page`] and every field
//! of every call is visited in place; SQLite steps the rows and reads every column in place. A
//! few pages are timed again as owned calls on both sides (`q-<size>-<request>-owned`).
//!
//! Before measuring, every request runs once on both sides and their answers are compared (the
//! same CallSids in the same order, the same decoded calls, the same checksum of the values the
//! timed runs visit, or the same count): this is the warm-up, and a difference stops the bench. At the end, the peak RSS of the suite on each engine alone is measured in a
//! child process (`CALLSTORE_BENCH_PROBE=callstore|sqlite`) and written with the suite to
//! `target/bench-data/calls-<N>/queries.json` for `examples/bench_report.rs`.

mod support;

use std::hint::black_box;
use std::process::Command;
use std::time::Duration;

use criterion::Criterion;
use serde_json::json;
use support::{
    Dataset, bench_calls, check_equivalence, run_callstore, run_sqlite, size_label,
    visit_callstore, visit_sqlite,
};

const PROBE_ENV: &str = "CALLSTORE_BENCH_PROBE";

/// `CALLSTORE_BENCH_SQLITE=reuse` measures callstore only and keeps SQLite's figures (criterion's
/// medians and the RSS probe) from the last full run on the same data, which the side file then
/// names: at 10M, SQLite's counts take seconds each and its side of the suite about half an
/// hour, while SQLite's code and data do not change between runs.
const SQLITE_ENV: &str = "CALLSTORE_BENCH_SQLITE";

/// The suite pages also measured as owned calls (`q-<size>-<request>-owned`).
const OWNED: [&str; 3] = ["account_page", "three_filters", "to_list_20"];

fn main() {
    if let Ok(engine) = std::env::var(PROBE_ENV) {
        probe(&engine);
        return;
    }
    let calls = bench_calls();
    let label = size_label(calls);
    let data = Dataset::open_or_build(calls);
    // Building the data may have grown the process; the peak RSS of this process should be the
    // suite's (Linux: writing 5 to clear_refs resets VmHWM to the current RSS).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let suite = data.suite();
    let store = data.store();
    let conn = data.sqlite();
    // Warm-up and check: both sides give the same answers.
    let rows = check_equivalence(&store, &conn, &suite);
    eprintln!(
        "queries: {} suite requests, callstore and SQLite agree",
        suite.len()
    );

    // The commit and time of the code measured: taken before the run, since the tree may move
    // on while it takes (half an hour at 10M).
    let (commit, started) = (support::git_commit(), support::unix_now());
    let reuse_sqlite = std::env::var(SQLITE_ENV).is_ok_and(|v| v.trim() == "reuse");
    let side_file = data.dir.join(support::QUERIES_FILE);
    let previous = support::read_json(&side_file);
    let sqlite_run = match (&previous, reuse_sqlite) {
        (Some(p), true) => p
            .get("sqlite_run")
            .cloned()
            .unwrap_or_else(|| json!({"measured_at": p["measured_at"], "commit": p["commit"]})),
        (None, true) => panic!("{SQLITE_ENV}=reuse needs an earlier full run of this size"),
        (_, false) => json!({"measured_at": started, "commit": commit}),
    };
    let mut criterion = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    // One criterion group a request: callstore, then SQLite unless its figures are reused.
    let mut side_by_side = |group: String, ours: &dyn Fn() -> u64, theirs: &dyn Fn() -> u64| {
        let mut group = criterion.benchmark_group(group);
        group.bench_function("callstore", |b| b.iter(|| black_box(ours())));
        if !reuse_sqlite {
            group.bench_function("sqlite", |b| b.iter(|| black_box(theirs())));
        }
        group.finish();
    };
    for r in &suite {
        side_by_side(
            format!("q-{label}-{}", r.name),
            &|| visit_callstore(&store, r),
            &|| visit_sqlite(&conn, &r.sql),
        );
    }
    // A few pages again as owned calls on both sides (a `String` per field), for scale.
    let owned: Vec<_> = suite
        .iter()
        .filter(|r| OWNED.contains(&r.name.as_str()))
        .collect();
    for r in &owned {
        side_by_side(
            format!("q-{label}-{}-owned", r.name),
            &|| run_callstore(&store, r).rows(),
            &|| run_sqlite(&conn, &r.sql).rows(),
        );
    }
    criterion.final_summary();

    let bench_process_peak = support::peak_rss_bytes();
    drop(store);
    drop(conn);
    let probe_rss = |engine: &str| -> Option<u64> {
        let exe = std::env::current_exe().ok()?;
        let out = Command::new(exe)
            .env(PROBE_ENV, engine)
            .env(support::CALLS_ENV, calls.to_string())
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "queries: the {engine} RSS probe failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    let callstore_peak = probe_rss("callstore");
    let sqlite_peak = match (&previous, reuse_sqlite) {
        (Some(p), true) => p["peak_rss_bytes"]["sqlite_suite"].as_u64(),
        _ => probe_rss("sqlite"),
    };
    let requests: Vec<_> = suite
        .iter()
        .zip(&rows)
        .map(|(r, n)| {
            json!({
                "name": r.name,
                "group": format!("q-{label}-{}", r.name),
                "request": r.request,
                "kind": r.kind.as_str(),
                "rows": n,
                "sql": r.sql.sql,
            })
        })
        .collect();
    let owned: Vec<_> = owned
        .iter()
        .map(|r| json!({"name": r.name, "group": format!("q-{label}-{}-owned", r.name)}))
        .collect();
    let report = json!({
        "calls": calls,
        "label": label,
        "owned": owned,
        "sqlite_run": sqlite_run,
        "measured_at": started,
        "commit": commit,
        "requests": requests,
        "peak_rss_bytes": {
            "callstore_suite": callstore_peak,
            "sqlite_suite": sqlite_peak,
            "bench_process": bench_process_peak,
        },
    });
    support::write_json(&side_file, &report);
    eprintln!(
        "queries: peak RSS callstore {:?} B, SQLite {:?} B, bench process {:?} B",
        callstore_peak, sqlite_peak, bench_process_peak
    );
}

/// In a child process: opens one engine only, runs the suite on it a few times, and prints the
/// process's peak RSS in bytes. `CALLSTORE_BENCH_PROBE=build` only builds the data set.
fn probe(engine: &str) {
    if engine == "build" {
        // Builds (or checks) the data set and stops: the 10M build takes long enough to be worth
        // running apart from the measurements.
        Dataset::open_or_build(bench_calls());
        return;
    }
    let data = Dataset::open(&support::dataset_dir(bench_calls()), bench_calls())
        .expect("the data set is built");
    let suite = data.suite();
    match engine {
        "callstore" => {
            let store = data.store();
            for _ in 0..5 {
                for r in &suite {
                    black_box(visit_callstore(&store, r));
                }
            }
        }
        "sqlite" => {
            let conn = data.sqlite();
            for _ in 0..5 {
                for r in &suite {
                    black_box(visit_sqlite(&conn, &r.sql));
                }
            }
        }
        other => panic!("unknown engine {other:?}"),
    }
    println!("{}", support::peak_rss_bytes().unwrap_or(0));
}
