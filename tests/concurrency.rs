//! Concurrent readers and a second process (SPEC §5: readers see consistent snapshots).
//!
//! - Reader threads query and count while a writer commits append-only batches (merge factor
//!   2, so merges run under them, and now and then a compaction). Every answer equals the
//!   model's at some committed state (never half a batch), no earlier than the last commit
//!   that returned before the read began and no earlier than what that reader saw before.
//! - A second open of a store in use, in this process or from the `callstore` command in
//!   another, is refused with a clear error and leaves the file as it was.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use callstore::reference::Reference;
use callstore::{Call, Disposition, Error, Query, Store, StoreError, UniqueFilter};

const PROPERTIES: [(&str, &str); 3] = [("PR1", "AC1"), ("PR2", "AC1"), ("PR3", "AC2")];
const FROMS: [&str; 6] = [
    "+1 555 0001",
    "555-0002",
    "+1 (555) 0003",
    "5550004",
    "anonymous",
    "sip:alice",
];
const BATCHES: usize = 60;
const READERS: usize = 3;

mod common;
use common::Rng;

/// Append-only batches of new CallSids, with dates out of order across batches (so that a new
/// call can turn a caller's former first call into a Repeat) and repeated callers.
fn batches() -> Vec<Vec<Call>> {
    let mut rng = Rng(0xC0C0_0001);
    let mut out = Vec::new();
    for b in 0..BATCHES {
        let mut batch = Vec::new();
        for i in 0..1 + rng.below(12) {
            let (property, account) = PROPERTIES[rng.below(3) as usize];
            let date = 1_000 + 7 * rng.below(500) as u32;
            let d = Disposition::ALL[rng.below(5) as usize];
            let mut c = Call::new(
                account,
                property,
                format!("B{b:02}-{i:02}"),
                date,
                "5550100",
                d,
            );
            c.from = FROMS[rng.below(FROMS.len() as u64) as usize].to_string();
            c.attribution_source = [None, Some("google")][rng.below(2) as usize].map(String::from);
            batch.push(c);
        }
        out.push(batch);
    }
    out
}

fn queries() -> Vec<Query> {
    vec![
        Query::account("AC1").count(100_000),
        Query::account("AC2").count(100_000),
        Query::account("AC1")
            .unique(UniqueFilter::Unique)
            .count(100_000),
        Query::account("AC1")
            .unique(UniqueFilter::Repeat)
            .count(100_000),
        Query::property("PR1")
            .unique(UniqueFilter::Unique)
            .count(100_000),
        Query::property("PR3")
            .unique(UniqueFilter::Repeat)
            .count(100_000),
        Query::account("AC1")
            .date_from(1_500)
            .date_to(3_000)
            .source("google")
            .count(100_000),
        Query::account("AC1").count(10).skip(5),
        Query::property("PR2").count(3),
    ]
}

/// For each query, its answer (CallSids) and count at each committed state 0..=BATCHES.
struct Expected {
    pages: Vec<Vec<Vec<String>>>,
    counts: Vec<Vec<u64>>,
}

fn expected(batches: &[Vec<Call>], queries: &[Query]) -> Expected {
    let mut model = Reference::new();
    let mut pages = vec![Vec::new(); queries.len()];
    let mut counts = vec![Vec::new(); queries.len()];
    for state in 0..=batches.len() {
        if state > 0 {
            model.write(batches[state - 1].clone()).unwrap();
        }
        for (i, q) in queries.iter().enumerate() {
            let page = model.query(q).unwrap();
            pages[i].push(page.into_iter().map(|c| c.call_sid).collect());
            counts[i].push(model.count(q).unwrap());
        }
    }
    Expected { pages, counts }
}

/// The first state in `lo..=hi` for which `matches` holds.
fn first_state(lo: usize, hi: usize, matches: impl Fn(usize) -> bool) -> Option<usize> {
    (lo..=hi.min(BATCHES)).find(|&s| matches(s))
}

#[test]
fn readers_see_whole_committed_batches_while_a_writer_merges() {
    let batches = batches();
    let queries = queries();
    let expected = expected(&batches, &queries);
    // The count of all calls of an account is a prefix sum of the batch sizes.
    for (i, account) in ["AC1", "AC2"].iter().enumerate() {
        let mut sum = 0;
        for (s, batch) in batches.iter().enumerate() {
            sum += batch.iter().filter(|c| c.account_sid == *account).count() as u64;
            assert_eq!(expected.counts[i][s + 1], sum);
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create(dir.path().join("calls.redb")).unwrap();
    store.set_merge_factor(2);
    let store = Arc::new(store);
    // The number of batches whose write has returned.
    let committed = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));

    let reads = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..READERS)
            .map(|r| {
                let (store, committed, done) = (&store, &committed, &done);
                let (queries, expected, batches) = (&queries, &expected, &batches);
                scope.spawn(move || {
                    let mut rng = Rng(r as u64 + 1);
                    // No state a later read may show is older than this.
                    let mut floor = 0;
                    let mut reads = 0u64;
                    let mut states_seen = std::collections::BTreeSet::new();
                    while !done.load(Ordering::SeqCst) || reads < 50 {
                        let qi = rng.below(queries.len() as u64) as usize;
                        let q = &queries[qi];
                        let lo = floor.max(committed.load(Ordering::SeqCst));
                        let (what, state) = if rng.below(2) == 0 {
                            let page: Vec<String> = store
                                .query(q)
                                .unwrap()
                                .into_iter()
                                .map(|c| c.call_sid)
                                .collect();
                            let hi = committed.load(Ordering::SeqCst) + 1;
                            let state = first_state(lo, hi, |s| expected.pages[qi][s] == page);
                            (format!("page {page:?}"), state)
                        } else {
                            let n = store.count(q).unwrap();
                            let hi = committed.load(Ordering::SeqCst) + 1;
                            let state = first_state(lo, hi, |s| expected.counts[qi][s] == n);
                            (format!("count {n}"), state)
                        };
                        let Some(state) = state else {
                            panic!(
                                "reader {r}: query {q:?} gave {what}, the answer of no state \
                                 from {lo} on"
                            );
                        };
                        floor = state;
                        states_seen.insert(state);
                        // A single call: there once its batch is, for good.
                        let b = rng.below(BATCHES as u64) as usize;
                        let lo = floor.max(committed.load(Ordering::SeqCst));
                        let sid = format!("B{b:02}-00");
                        let got = store.get(&sid).unwrap();
                        let hi = committed.load(Ordering::SeqCst) + 1;
                        if let Some(got) = got {
                            assert!(b < hi, "reader {r}: {sid} seen before its commit");
                            let mut want = batches[b][0].clone();
                            want.normalize().unwrap();
                            assert_eq!(got, want);
                            floor = floor.max(b + 1);
                        } else {
                            assert!(b >= lo, "reader {r}: {sid} gone after state {lo}");
                        }
                        reads += 1;
                    }
                    (reads, states_seen.len())
                })
            })
            .collect();

        for (b, batch) in batches.iter().enumerate() {
            store.write(batch.clone()).unwrap();
            committed.store(b + 1, Ordering::SeqCst);
            if b % 20 == 19 {
                store.compact().unwrap();
            }
        }
        done.store(true, Ordering::SeqCst);
        readers
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });

    // The final state, through every query.
    for (qi, q) in queries.iter().enumerate() {
        let page: Vec<String> = store
            .query(q)
            .unwrap()
            .into_iter()
            .map(|c| c.call_sid)
            .collect();
        assert_eq!(page, expected.pages[qi][BATCHES], "{q:?}");
    }
    let merges = store.counters().merges;
    assert!(merges > 5, "only {merges} merges ran");
    eprintln!(
        "concurrency: {} batches, {merges} merges; readers' reads and distinct states seen: \
         {reads:?}",
        BATCHES
    );
}

fn sample(sid: &str, date: u32) -> Call {
    let mut c = Call::new("AC1", "PR1", sid, date, "+15550100", Disposition::Answered);
    c.from = "+15550001".to_string();
    c
}

#[test]
fn a_second_open_in_this_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.redb");
    let store = Store::create(&path).unwrap();
    store
        .write(vec![sample("CA1", 10), sample("CA2", 5)])
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    for second in [Store::open(&path), Store::open_or_create(&path)] {
        match second {
            Err(Error::Store(StoreError::InUse { path: p })) => {
                assert!(p.contains("calls.redb"), "{p}")
            }
            Err(other) => panic!("expected InUse, got {other:?}"),
            Ok(_) => panic!("a store in use opened twice"),
        }
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the refused open wrote"
    );
    assert_eq!(store.count(&Query::account("AC1")).unwrap(), 2);
    store.write(vec![sample("CA3", 1)]).unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    let sids: Vec<String> = store
        .query(&Query::account("AC1"))
        .unwrap()
        .into_iter()
        .map(|c| c.call_sid)
        .collect();
    assert_eq!(sids, ["CA3", "CA2", "CA1"]);
}

#[cfg(feature = "cli")]
#[test]
fn the_command_refuses_a_store_in_use_by_another_process() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.redb");
    let store = Store::create(&path).unwrap();
    store
        .write(vec![sample("CA1", 10), sample("CA2", 5)])
        .unwrap();
    let expected = store.query(&Query::account("AC1")).unwrap();
    let before = std::fs::read(&path).unwrap();

    let record = r#"{"AccountSid":"AC1","PropertySid":"PR1","CallSid":"CA9","Date_Start":1,"To":"5550100","Disposition":"Busy"}"#;
    let runs: [(&[&str], Option<&str>); 5] = [
        (&["get", "/v2/Accounts/AC1/Calls"], None),
        (&["count", "/v2/Accounts/AC1/Calls"], None),
        (&["stats"], None),
        (&["delete", "CA1"], None),
        (&["import", "-"], Some(record)),
    ];
    for (args, stdin) in runs {
        let mut child = Command::new(env!("CARGO_BIN_EXE_callstore"))
            .arg("--db")
            .arg(&path)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            // The command may refuse the store and exit before reading: a broken pipe is fine.
            let _ = writeln!(input, "{text}");
        }
        drop(input);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{args:?} succeeded on a store in use: {stderr}"
        );
        assert!(
            stderr.contains("calls.redb") && stderr.contains("open in another process"),
            "{args:?}: unclear message: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: wrote to stdout");
    }
    // Nothing touched the file, and the store holding it is as it was.
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "a refused command wrote"
    );
    assert_eq!(store.query(&Query::account("AC1")).unwrap(), expected);
    store.write(vec![sample("CA3", 1)]).unwrap();
    drop(store);
    let out = Command::new(env!("CARGO_BIN_EXE_callstore"))
        .arg("--db")
        .arg(&path)
        .args(["count", "/v2/Accounts/AC1/Calls"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");
}
