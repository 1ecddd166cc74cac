//! Writes `BENCHMARKS.md` from measured figures, never typed by hand:
//!
//! ```text
//! cargo bench --bench queries && cargo bench --bench ingest     # 1M calls
//! CALLSTORE_BENCH_10M=1 cargo bench --bench queries             # 10M calls
//! CALLSTORE_BENCH_10M=1 cargo bench --bench ingest
//! cargo run --release --example bench_report [-- OUTPUT.md]
//! ```
//!
//! It reads criterion's medians (`<target>/criterion/<group>/<function>/new/estimates.json`) and
//! the side files the benches write next to their data (`<target>/bench-data/calls-<N>/`:
//! `build.json`, `queries.json`, `ingest.json`), and writes one section per size found, then the
//! issue's targets, each met or not, at the largest size measured.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

// Shared with the benches: size labels are the benches' own.
#[path = "../benches/support/mod.rs"]
mod support;

fn main() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => manifest.join(dir),
        _ => manifest.join("target"),
    };
    let criterion = match std::env::var_os("CRITERION_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => target.join("criterion"),
    };
    let output = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("BENCHMARKS.md"));
    let sizes = find_sizes(&target.join("bench-data"));
    if sizes.is_empty() {
        eprintln!(
            "bench_report: no figures under {}; run `cargo bench --bench queries` and \
             `cargo bench --bench ingest` first",
            target.join("bench-data").display()
        );
        std::process::exit(1);
    }
    let text = render(&manifest, &criterion, &sizes);
    fs::write(&output, text).unwrap_or_else(|e| panic!("write {}: {e}", output.display()));
    eprintln!("bench_report: wrote {}", output.display());
}

/// The figures of one size.
struct Size {
    calls: u64,
    label: String,
    build: Option<Value>,
    queries: Option<Value>,
    ingest: Option<Value>,
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
}

fn find_sizes(root: &Path) -> Vec<Size> {
    let mut sizes = Vec::new();
    let Ok(entries) = fs::read_dir(root) else {
        return sizes;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(calls) = name
            .strip_prefix("calls-")
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        let size = Size {
            calls,
            label: support::size_label(calls),
            build: read_json(&dir.join("build.json")),
            queries: read_json(&dir.join("queries.json")),
            ingest: read_json(&dir.join("ingest.json")),
        };
        if size.queries.is_some() || size.ingest.is_some() {
            sizes.push(size);
        }
    }
    sizes.sort_by_key(|s| s.calls);
    sizes
}

/// Criterion's median for a group and function, in nanoseconds.
fn median_ns(criterion: &Path, group: &str, function: &str) -> Option<f64> {
    let path = criterion
        .join(group)
        .join(function)
        .join("new")
        .join("estimates.json");
    read_json(&path)?["median"]["point_estimate"].as_f64()
}

fn fmt_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn fmt_rate(v: Option<f64>) -> String {
    match v {
        Some(r) if r >= 1e6 => format!("{:.2}M/s", r / 1e6),
        Some(r) if r >= 1e3 => format!("{:.1}k/s", r / 1e3),
        Some(r) => format!("{r:.0}/s"),
        None => "–".to_string(),
    }
}

fn fmt_mib(v: Option<f64>) -> String {
    v.map(|b| format!("{:.0} MiB", b / 1048576.0))
        .unwrap_or_else(|| "–".to_string())
}

fn fmt_ratio(v: Option<f64>) -> String {
    v.map(|r| format!("{r:.1}×"))
        .unwrap_or_else(|| "–".to_string())
}

fn geomean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some((values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp())
}

fn date(unix: Option<u64>) -> String {
    unix.and_then(|t| chrono::DateTime::from_timestamp(t as i64, 0))
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

/// " at commit X" when a side file recorded its commit.
fn at_commit(v: &Value) -> String {
    v["commit"]
        .as_str()
        .map(|c| format!(" at commit {c}"))
        .unwrap_or_default()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn machine() -> Vec<String> {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "unknown".to_string());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let ram = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .map(|k| format!("{:.1} GiB", k / 1048576.0))
        .unwrap_or_else(|| "unknown".to_string());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string());
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    vec![
        format!("- CPU: {cpu}"),
        format!("- Cores available: {cores}"),
        format!("- RAM: {ram}"),
        format!("- Linux {kernel}, {rustc}"),
    ]
}

fn git_commit(manifest: &Path) -> String {
    let run = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(manifest)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short", "HEAD"]) {
        Some(c) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{c} (with uncommitted changes)")
            } else {
                c
            }
        }
        None => "unknown".to_string(),
    }
}

/// A query row: request name, kind, callstore and SQLite medians.
struct QueryRow {
    name: String,
    kind: String,
    callstore: Option<f64>,
    sqlite: Option<f64>,
}

impl QueryRow {
    fn ratio(&self) -> Option<f64> {
        Some(self.sqlite? / self.callstore?)
    }
}

fn query_rows(criterion: &Path, queries: &Value) -> Vec<QueryRow> {
    queries["requests"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    let group = r["group"].as_str().unwrap_or_default();
                    QueryRow {
                        name: r["name"].as_str().unwrap_or_default().to_string(),
                        kind: r["kind"].as_str().unwrap_or_default().to_string(),
                        callstore: median_ns(criterion, group, "callstore"),
                        sqlite: median_ns(criterion, group, "sqlite"),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn render(manifest: &Path, criterion: &Path, sizes: &[Size]) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# Benchmarks: callstore and SQLite side by side\n");
    let _ = writeln!(
        w,
        "Generated by `cargo run --release --example bench_report` on {} from the figures the \
         benches recorded (criterion's medians under `target/criterion/`, side files under \
         `target/bench-data/`); not typed by hand. Report written at commit {}; each section names the commit it measured \
         when the bench recorded it.\n",
        date(Some(now())),
        git_commit(manifest)
    );
    let sizes_text: Vec<String> = sizes.iter().map(|s| s.label.clone()).collect();
    let _ = writeln!(w, "Sizes measured: {}.\n", sizes_text.join(", "));
    let _ = writeln!(w, "## Machine\n");
    for line in machine() {
        let _ = writeln!(w, "{line}");
    }
    let _ = writeln!(w, "\n## How to reproduce\n");
    let _ = writeln!(
        w,
        "```sh\n\
         cargo bench --bench queries                          # 1M calls: data built once into target/bench-data/\n\
         cargo bench --bench ingest                           # 1M calls (live feed: 200k)\n\
         CALLSTORE_BENCH_10M=1 cargo bench --bench queries    # 10M calls\n\
         CALLSTORE_BENCH_10M=1 cargo bench --bench ingest\n\
         CALLSTORE_BENCH_SQLITE=reuse cargo bench --bench queries  # callstore only, keeping SQLite's last figures\n\
         cargo run --release --example bench_report           # writes this file\n\
         ```\n\n\
         `CALLSTORE_BENCH_CALLS=N` runs any size (quick runs). Data: the project's generator, \
         seed fixed in `benches/support/mod.rs`. SQLite (bundled) has one `calls` table with a \
         column per field, the indexes `(account_sid, date_start, call_sid)`, \
         `(property_sid, date_start, call_sid)`, `call_sid` UNIQUE, one per filter column, \
         and Unique/Repeat as precomputed columns (kept by two `(scope, caller, date_start, \
         call_sid)` indexes); a 128 MiB page cache and memory-mapped reads. A page is timed as \
         a user reading it: callstore returns a `Page` and every field of every call is read in \
         place (`CallRef`); SQLite steps its rows and reads every column in place (`ValueRef`); \
         both compute the same checksum of the values. A few pages are timed again as owned \
         calls (a `String` per field) on both sides. `tests/sqlite_equivalence.rs` checks that \
         both return the same rows, and each bench checks it again on its own data (rows, \
         decoded calls and checksums) before measuring. Queries are warm medians."
    );

    for size in sizes {
        render_size(w, criterion, size);
    }
    render_targets(w, criterion, sizes);
    out
}

fn render_size(w: &mut String, criterion: &Path, size: &Size) {
    let _ = writeln!(w, "\n## {} calls\n", size.label);
    if let Some(build) = &size.build {
        let _ = writeln!(
            w,
            "Data built {}{}: callstore {:.0} bytes/call ({} in batches of {}, then compacted, {}), \
             SQLite {:.0} bytes/call (rows, then indexes, Unique/Repeat and ANALYZE, {}).\n",
            date(build["built_at"].as_u64()),
            at_commit(build),
            f(&build["callstore"]["bytes_per_call"]).unwrap_or(0.0),
            size.calls,
            build["batch"],
            fmt_rate(f(&build["callstore"]["calls_per_second"])),
            f(&build["sqlite"]["bytes_per_call"]).unwrap_or(0.0),
            fmt_rate(f(&build["sqlite"]["calls_per_second"])),
        );
        let rebuilt = &build["callstore_rebuilt"];
        if rebuilt.is_object() {
            let _ = writeln!(
                w,
                "The callstore file, and its figures in the sentence above, were rebuilt for a \
                 new store format {}{}; the SQLite file and its figures are from the first build.\n",
                date(rebuilt["built_at"].as_u64()),
                at_commit(rebuilt),
            );
        }
    }
    if let Some(queries) = &size.queries {
        let rows = query_rows(criterion, queries);
        let _ = writeln!(
            w,
            "### Queries (measured {}{})\n",
            date(queries["measured_at"].as_u64()),
            at_commit(queries)
        );
        let sqlite_run = &queries["sqlite_run"];
        if sqlite_run.is_object() && sqlite_run["measured_at"] != queries["measured_at"] {
            let _ = writeln!(
                w,
                "SQLite's medians and RSS are from the full run of {}{} on the same data \
                 (`CALLSTORE_BENCH_SQLITE=reuse` measured callstore only).\n",
                date(sqlite_run["measured_at"].as_u64()),
                at_commit(sqlite_run)
            );
        }
        let _ = writeln!(
            w,
            "| request | kind | rows | callstore | SQLite | SQLite / callstore |"
        );
        let _ = writeln!(w, "|---|---|---:|---:|---:|---:|");
        let requests = queries["requests"].as_array().cloned().unwrap_or_default();
        for (row, r) in rows.iter().zip(&requests) {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {} |",
                row.name,
                row.kind,
                r["rows"],
                row.callstore.map(fmt_ns).unwrap_or_else(|| "–".into()),
                row.sqlite.map(fmt_ns).unwrap_or_else(|| "–".into()),
                fmt_ratio(row.ratio()),
            );
        }
        let ratios: Vec<f64> = rows.iter().filter_map(QueryRow::ratio).collect();
        let _ = writeln!(
            w,
            "\nGeometric mean of the ratios: **{}** over {} requests; slowest relative to SQLite: {}.\n",
            fmt_ratio(geomean(&ratios)),
            ratios.len(),
            rows.iter()
                .filter_map(|r| Some((r.ratio()?, r.name.as_str())))
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(r, n)| format!("{n} ({r:.1}×)"))
                .unwrap_or_else(|| "–".into())
        );
        let rss = &queries["peak_rss_bytes"];
        let _ = writeln!(
            w,
            "Peak RSS while running the suite (each engine alone in a child process): callstore \
             {}, SQLite {}; the bench process running both under criterion: {}.\n",
            fmt_mib(f(&rss["callstore_suite"])),
            fmt_mib(f(&rss["sqlite_suite"])),
            fmt_mib(f(&rss["bench_process"])),
        );
        let _ = writeln!(
            w,
            "<details><summary>Request strings</summary>\n\n| request | API request |\n|---|---|"
        );
        for r in &requests {
            let _ = writeln!(
                w,
                "| {} | `{}` |",
                r["name"].as_str().unwrap_or_default(),
                r["request"].as_str().unwrap_or_default()
            );
        }
        let _ = writeln!(w, "\n</details>\n");
        let owned = queries["owned"].as_array().cloned().unwrap_or_default();
        if !owned.is_empty() {
            let _ = writeln!(
                w,
                "The same pages as owned calls (a `String` per field, both sides):\n\n\
                 | request | callstore | SQLite | SQLite / callstore |\n|---|---:|---:|---:|"
            );
            for r in &owned {
                let group = r["group"].as_str().unwrap_or_default();
                let row = QueryRow {
                    name: r["name"].as_str().unwrap_or_default().to_string(),
                    kind: "page".into(),
                    callstore: median_ns(criterion, group, "callstore"),
                    sqlite: median_ns(criterion, group, "sqlite"),
                };
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} |",
                    row.name,
                    row.callstore.map(fmt_ns).unwrap_or_else(|| "–".into()),
                    row.sqlite.map(fmt_ns).unwrap_or_else(|| "–".into()),
                    fmt_ratio(row.ratio()),
                );
            }
            let _ = writeln!(w);
        }
    }
    if let Some(ingest) = &size.ingest {
        let _ = writeln!(
            w,
            "### Ingest (measured {}{})\n",
            date(ingest["measured_at"].as_u64()),
            at_commit(ingest)
        );
        let _ = writeln!(
            w,
            "| load | calls | callstore | SQLite | callstore / SQLite |"
        );
        let _ = writeln!(w, "|---|---:|---:|---:|---:|");
        let bulk = &ingest["bulk"];
        let live = &ingest["live_feed"];
        let line = |w: &mut String, what: &str, calls: &Value, a: &Value, b: &Value| {
            let (a, b) = (f(&a["calls_per_second"]), f(&b["calls_per_second"]));
            let _ = writeln!(
                w,
                "| {what} | {calls} | {} | {} | {} |",
                fmt_rate(a),
                fmt_rate(b),
                fmt_ratio(a.zip(b).map(|(a, b)| a / b))
            );
        };
        if !bulk.is_null() {
            line(
                w,
                "bulk import from JSONL, batches of 100k (callstore: `Store::import`, durable segments of 262,144; SQLite: indexes present, each batch committed)",
                &bulk["calls"],
                &bulk["callstore_jsonl"],
                &bulk["sqlite_jsonl"],
            );
            line(
                w,
                "bulk import from JSONL (SQLite: rows first with neither journal nor sync, then indexes, Unique/Repeat, ANALYZE)",
                &bulk["calls"],
                &bulk["callstore_jsonl"],
                &bulk["sqlite_jsonl_deferred_indexes"],
            );
            line(
                w,
                "bulk import from typed records, batches of 100k (callstore: `Store::import`; SQLite: indexes present)",
                &bulk["calls"],
                &bulk["callstore_typed"],
                &bulk["sqlite_typed"],
            );
        }
        if !live.is_null() {
            line(
                w,
                "live feed: durable batches of 100, 5% up to 1 h late",
                &live["calls"],
                &live["callstore"],
                &live["sqlite"],
            );
            let _ = writeln!(
                w,
                "\nLive-feed batch commit latency (p50 / p99 / max): callstore {:.2} / {:.2} / {:.2} ms, \
                 SQLite {:.2} / {:.2} / {:.2} ms; {} calls arrived after a later-starting call.",
                f(&live["callstore"]["batch_ms_p50"]).unwrap_or(0.0),
                f(&live["callstore"]["batch_ms_p99"]).unwrap_or(0.0),
                f(&live["callstore"]["batch_ms_max"]).unwrap_or(0.0),
                f(&live["sqlite"]["batch_ms_p50"]).unwrap_or(0.0),
                f(&live["sqlite"]["batch_ms_p99"]).unwrap_or(0.0),
                f(&live["sqlite"]["batch_ms_max"]).unwrap_or(0.0),
                live["out_of_order_calls"],
            );
        }
        if !bulk.is_null() {
            let per_call = |v: &Value| {
                f(v).zip(f(&bulk["calls"]))
                    .map(|(b, n)| format!("{:.0}", b / n.max(1.0)))
                    .unwrap_or_else(|| "–".into())
            };
            let _ = writeln!(
                w,
                "\nStore bytes per call after the bulk import: callstore {} (after compaction {}), \
                 SQLite {} (indexes present) / {} (deferred indexes). Compaction after the JSONL \
                 import took {:.1} s.",
                per_call(&bulk["callstore_jsonl"]["file_bytes"]),
                per_call(&bulk["callstore_jsonl"]["compacted_file_bytes"]),
                per_call(&bulk["sqlite_jsonl"]["file_bytes"]),
                per_call(&bulk["sqlite_jsonl_deferred_indexes"]["file_bytes"]),
                f(&bulk["callstore_jsonl"]["compact_seconds"]).unwrap_or(0.0),
            );
        }
        let after = &ingest["after_live"];
        if let Some(requests) = after["requests"].as_array() {
            let _ = writeln!(
                w,
                "\n### Query latency after the live feed ({} calls)\n\n\
                 Medians of repeated runs: the live-fed store (as merged by its writes, not \
                 compacted), a store bulk-loaded with the same calls and compacted, and the \
                 live-fed SQLite database.\n",
                after["calls"]
            );
            let _ = writeln!(
                w,
                "| request | rows | callstore after live feed | callstore after bulk load | live / bulk | SQLite after live feed |"
            );
            let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|");
            for r in requests {
                let live = f(&r["callstore_live_ns"]);
                let bulk = f(&r["callstore_bulk_ns"]);
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {} | {} |",
                    r["name"].as_str().unwrap_or_default(),
                    r["rows"],
                    live.map(fmt_ns).unwrap_or_default(),
                    bulk.map(fmt_ns).unwrap_or_default(),
                    live.zip(bulk)
                        .map(|(l, b)| format!("{:.2}", l / b))
                        .unwrap_or_default(),
                    f(&r["sqlite_live_ns"]).map(fmt_ns).unwrap_or_default(),
                );
            }
            let (g, worst) = live_bulk(ingest);
            let _ = writeln!(
                w,
                "\nLive / bulk: geometric mean {}, worst {}.",
                g.map(|v| format!("{v:.2}")).unwrap_or_else(|| "–".into()),
                worst
                    .map(|(v, n)| format!("{v:.2} ({n})"))
                    .unwrap_or_else(|| "–".into())
            );
        }
    }
}

/// The geometric mean and the worst of the live/bulk latency ratios.
fn live_bulk(ingest: &Value) -> (Option<f64>, Option<(f64, String)>) {
    let ratios: Vec<(f64, String)> = ingest["after_live"]["requests"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| {
                    Some((
                        f(&r["callstore_live_ns"])? / f(&r["callstore_bulk_ns"])?,
                        r["name"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let g = geomean(&ratios.iter().map(|r| r.0).collect::<Vec<_>>());
    let worst = ratios.into_iter().max_by(|a, b| a.0.total_cmp(&b.0));
    (g, worst)
}

fn render_targets(w: &mut String, criterion: &Path, sizes: &[Size]) {
    let Some(size) = sizes
        .iter()
        .rev()
        .find(|s| s.queries.is_some())
        .or(sizes.last())
    else {
        return;
    };
    let ingest_size = sizes.iter().rev().find(|s| s.ingest.is_some());
    let _ = writeln!(w, "\n## Targets of issue 4\n");
    if size.calls != 10_000_000 {
        let _ = writeln!(
            w,
            "The targets are set at 10M calls, which this report does not hold: they are checked \
             here at the largest size measured ({} calls for queries, {} for ingest). Regenerate \
             after the 10M runs.\n",
            size.label,
            ingest_size.map(|s| s.label.as_str()).unwrap_or("no size")
        );
    }
    let _ = writeln!(w, "| target | measured | met |\n|---|---|---|");
    let mut row = |target: &str, measured: String, met: Option<bool>| {
        let verdict = match met {
            Some(true) => "met",
            Some(false) => "**not met**",
            None => "not measured",
        };
        let _ = writeln!(w, "| {target} | {measured} | {verdict} |");
    };
    let rows = size
        .queries
        .as_ref()
        .map(|q| query_rows(criterion, q))
        .unwrap_or_default();
    let ratios: Vec<f64> = rows.iter().filter_map(QueryRow::ratio).collect();
    let g = geomean(&ratios);
    let slowest = rows
        .iter()
        .filter_map(|r| Some((r.ratio()?, r.name.clone())))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    row(
        "every suite request ≥10× faster than SQLite on the geometric mean",
        format!("{} geometric mean", fmt_ratio(g)),
        g.map(|g| g >= 10.0),
    );
    row(
        "no suite request slower than SQLite",
        slowest
            .as_ref()
            .map(|(r, n)| format!("slowest relative: {n} at {r:.1}×"))
            .unwrap_or_else(|| "–".into()),
        slowest.as_ref().map(|(r, _)| *r >= 1.0),
    );
    let requests = size
        .queries
        .as_ref()
        .and_then(|q| q["requests"].as_array().cloned())
        .unwrap_or_default();
    let worst = |pred: &dyn Fn(&QueryRow, &Value) -> bool| -> Option<(f64, String)> {
        rows.iter()
            .zip(&requests)
            .filter(|(r, v)| pred(r, v))
            .filter_map(|(r, _)| Some((r.callstore?, r.name.clone())))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    };
    let page = worst(&|r, v| r.kind == "page" && v["rows"].as_u64() == Some(200));
    row(
        "a 200-call page ≤300 µs including decoding",
        page.as_ref()
            .map(|(t, n)| format!("slowest full page: {n} at {}", fmt_ns(*t)))
            .unwrap_or_else(|| "–".into()),
        page.as_ref().map(|(t, _)| *t <= 300e3),
    );
    let count = worst(&|r, _| r.kind == "count");
    row(
        "a count ≤50 µs",
        count
            .as_ref()
            .map(|(t, n)| format!("slowest count: {n} at {}", fmt_ns(*t)))
            .unwrap_or_else(|| "–".into()),
        count.as_ref().map(|(t, _)| *t <= 50e3),
    );
    let by_name = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .and_then(|r| r.callstore)
    };
    let skip = by_name("skip_100k").zip(by_name("skip_0"));
    row(
        "skip 100k within 2× of skip 0",
        skip.map(|(far, zero)| format!("{} vs {} ({:.2}×)", fmt_ns(far), fmt_ns(zero), far / zero))
            .unwrap_or_else(|| "–".into()),
        skip.map(|(far, zero)| far <= 2.0 * zero),
    );
    let ingest = ingest_size.and_then(|s| s.ingest.as_ref());
    let bulk = ingest.map(|i| &i["bulk"]);
    let rate_of = |v: Option<&Value>, key: &str| v.and_then(|b| f(&b[key]["calls_per_second"]));
    let jsonl = rate_of(bulk, "callstore_jsonl");
    row(
        "bulk import ≥300k calls/s from JSONL",
        fmt_rate(jsonl),
        jsonl.map(|r| r >= 300e3),
    );
    let sqlite_best = [
        rate_of(bulk, "sqlite_jsonl"),
        rate_of(bulk, "sqlite_jsonl_deferred_indexes"),
    ]
    .into_iter()
    .flatten()
    .reduce(f64::max);
    row(
        "bulk import ≥3× SQLite's rate (its faster JSONL load)",
        jsonl
            .zip(sqlite_best)
            .map(|(a, b)| {
                format!(
                    "{} vs {} ({:.1}×)",
                    fmt_rate(Some(a)),
                    fmt_rate(Some(b)),
                    a / b
                )
            })
            .unwrap_or_else(|| "–".into()),
        jsonl.zip(sqlite_best).map(|(a, b)| a >= 3.0 * b),
    );
    let live = ingest.and_then(|i| f(&i["live_feed"]["callstore"]["calls_per_second"]));
    row(
        "live feed ≥20k calls/s with durable batches of 100",
        fmt_rate(live),
        live.map(|r| r >= 20e3),
    );
    let (g_live, worst_live) = ingest.map(live_bulk).unwrap_or((None, None));
    row(
        "suite latency after the live feed within 1.5× of after a bulk load (geometric mean)",
        format!(
            "{} (worst {})",
            g_live
                .map(|v| format!("{v:.2}×"))
                .unwrap_or_else(|| "–".into()),
            worst_live
                .map(|(v, n)| format!("{n} {v:.2}×"))
                .unwrap_or_else(|| "–".into())
        ),
        g_live.map(|v| v <= 1.5),
    );
    let build = size.build.as_ref();
    let bytes = build.and_then(|b| {
        Some((
            f(&b["callstore"]["bytes_per_call"])?,
            f(&b["sqlite"]["bytes_per_call"])?,
        ))
    });
    row(
        "store file no larger than SQLite's",
        bytes
            .map(|(a, b)| format!("{a:.0} vs {b:.0} bytes/call"))
            .unwrap_or_else(|| "–".into()),
        bytes.map(|(a, b)| a <= b),
    );
    let rss = size
        .queries
        .as_ref()
        .and_then(|q| f(&q["peak_rss_bytes"]["callstore_suite"]));
    row(
        "RSS ≤300 MiB while running the suite",
        fmt_mib(rss),
        rss.map(|b| b <= 300.0 * 1048576.0),
    );
}
