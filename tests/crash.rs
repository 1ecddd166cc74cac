//! Crash safety (SPEC §5): a child process writes batch after batch to a store file and is killed
//! with SIGKILL at random moments; after each kill the store is reopened and must hold exactly
//! the batches reported committed, plus possibly the one in flight, never part of one (a bulk
//! import in flight may be in up to any of its segments, each written atomically). Every
//! query must then equal the naive model's answer over what is present, and the writing goes on
//! on the reopened file.
//!
//! The child is this test binary run again, in its ignored `child_writer` test, with
//! `CRASH_CHILD_DB` set. It prints `committed {n}` (flushed) after operation `n` returns.
//!
//! Each store file is created by the parent, and gets ~10 kills; one kill in five lands
//! anywhere from the child's start (so also during the open and its recovery), the others at a
//! random time after the child has opened the store. A kill during the create itself is the
//! subject of `a_kill_while_creating_leaves_a_file_that_opens` (ignored: a known bug).
//!
//! `CRASH_KILLS` sets the number of kills (default 50; run 1,000 locally with
//! `CRASH_KILLS=1000 cargo test --test crash -- --nocapture`), `CRASH_SEED` the seed.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use callstore::reference::Reference;
use callstore::{Call, Disposition, Query, Store, UniqueFilter};

/// Kills per fresh store file, so that the files (and their recovery) stay small.
const KILLS_PER_STORE: usize = 10;
/// Operations one child run writes at most before it stops by itself.
const OPS_PER_RUN: u64 = 60;

const ACCOUNTS: [&str; 2] = ["AC1", "AC2"];
const PROPERTIES: [(&str, &str); 3] = [("PR1", "AC1"), ("PR2", "AC1"), ("PR3", "AC2")];
const FROMS: [&str; 8] = [
    "+1 555 0001",
    "+15550001",
    "555-0002",
    "+1 (555) 0003",
    "5550004",
    "anonymous",
    "",
    "sip:alice",
];

mod common;
use common::Rng;

/// One operation of the writer; operation `n` of a store is a pure function of (seed, n).
#[derive(Clone, Debug)]
enum Op {
    /// New calls `B{n}-{i}` (the first is the batch's marker, never touched again) and upserts
    /// of calls of earlier batches.
    Write(Vec<Call>),
    /// Deletes of calls of earlier batches (some already gone).
    Delete(Vec<String>),
    /// A full merge; the contents do not change.
    Compact,
    /// New calls and upserts as `Write`'s, in batches of a bulk import that writes a segment,
    /// in one durable commit, every few calls, and the rest at its end.
    Import(Vec<Vec<Call>>),
}

fn call(rng: &mut Rng, sid: String, note: String) -> Call {
    let &(property, account) = rng.pick(&PROPERTIES);
    // Dates all over a small range: out of order across batches, with ties.
    let date = 1_000 + 10 * rng.below(300) as u32;
    let d = *rng.pick(&Disposition::ALL);
    let mut c = Call::new(account, property, sid, date, "+1 555 0100", d);
    c.from = rng.pick(&FROMS).to_string();
    c.duration = rng.below(600);
    c.attribution_source =
        [None, Some("google"), Some("bing")][rng.below(3) as usize].map(String::from);
    c.prompts_keys =
        [None, Some("1"), Some("1,2"), Some("2")][rng.below(4) as usize].map(String::from);
    c.notes = Some(note);
    c
}

fn op(seed: u64, n: u64) -> Op {
    let mut rng = Rng::new(seed ^ n.wrapping_mul(0xA076_1D64_78BD_642F));
    let roll = rng.below(10);
    if n >= 3 && roll == 0 {
        return Op::Compact;
    }
    if n >= 3 && roll <= 2 {
        let sids = (0..1 + rng.below(3))
            .map(|_| format!("B{}-{}", rng.below(n), 1 + rng.below(5)))
            .collect();
        return Op::Delete(sids);
    }
    let import = n >= 3 && roll == 3;
    let mut calls = Vec::new();
    for i in 0..2 + rng.below(if import { 16 } else { 6 }) {
        calls.push(call(&mut rng, format!("B{n}-{i}"), format!("batch {n}")));
    }
    if n >= 1 {
        for _ in 0..rng.below(3) {
            let sid = format!("B{}-{}", rng.below(n), 1 + rng.below(5));
            calls.push(call(&mut rng, sid, format!("upsert in batch {n}")));
        }
    }
    if import {
        let mut batches = Vec::new();
        while !calls.is_empty() {
            let rest = calls.split_off(calls.len().min(1 + rng.below(5) as usize));
            batches.push(std::mem::replace(&mut calls, rest));
        }
        return Op::Import(batches);
    }
    Op::Write(calls)
}

/// The calls an import in the child holds before it writes a segment.
const IMPORT_SEGMENT_ROWS: usize = 3;

fn apply(model: &mut Reference, op: &Op) {
    match op {
        Op::Write(calls) => model
            .write(calls.clone())
            .expect("the model refuses a batch"),
        Op::Delete(sids) => {
            model.delete(sids);
        }
        Op::Compact => {}
        Op::Import(batches) => {
            for batch in batches {
                model
                    .write(batch.clone())
                    .expect("the model refuses a batch");
            }
        }
    }
}

/// The states `op` may leave after `model`: its end, and for an import, also the state after
/// each of its segments but the last (a segment is written once the calls held reach
/// [`IMPORT_SEGMENT_ROWS`], the rest at its end).
fn states_after(model: &Reference, op: &Op) -> Vec<Reference> {
    let mut states = Vec::new();
    let mut state = model.clone();
    if let Op::Import(batches) = op {
        let mut held = 0;
        for (i, batch) in batches.iter().enumerate() {
            // Writing the batches of a segment one by one leaves what writing them together
            // does (upserts, the last call of a CallSid winning).
            apply(&mut state, &Op::Write(batch.clone()));
            held += batch.len();
            if held >= IMPORT_SEGMENT_ROWS && i + 1 < batches.len() {
                held = 0;
                states.push(state.clone());
            }
        }
    } else {
        apply(&mut state, op);
    }
    states.push(state);
    states
}

/// The child: opens the store, writes operations from `CRASH_CHILD_START` on, reporting each.
#[test]
#[ignore = "the child-process mode of the crash test; run by it"]
fn child_writer() {
    let Ok(db) = std::env::var("CRASH_CHILD_DB") else {
        return;
    };
    let seed: u64 = std::env::var("CRASH_CHILD_SEED").unwrap().parse().unwrap();
    let start: u64 = std::env::var("CRASH_CHILD_START").unwrap().parse().unwrap();
    let mut store = Store::open_or_create(&db).expect("the child cannot open the store");
    store.set_merge_factor(2);
    let mut out = std::io::stdout().lock();
    // After a new line: libtest has written "test child_writer ... " without one.
    writeln!(out, "\nready").unwrap();
    out.flush().unwrap();
    for n in start..start + OPS_PER_RUN {
        match op(seed, n) {
            Op::Write(calls) => {
                store.write(calls).expect("write");
            }
            Op::Delete(sids) => {
                store.delete(&sids).expect("delete");
            }
            Op::Compact => store.compact().expect("compact"),
            Op::Import(batches) => {
                let mut import = store.import().with_segment_rows(IMPORT_SEGMENT_ROWS);
                for batch in batches {
                    import.write(batch).expect("import");
                }
                import.finish().expect("finish the import");
            }
        }
        writeln!(out, "committed {n}").unwrap();
        out.flush().unwrap();
    }
    writeln!(out, "done").unwrap();
    out.flush().unwrap();
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the child said before it died: whether it got ready, and the last operation reported.
struct ChildRun {
    last_committed: Option<u64>,
    finished: bool,
}

/// When to kill the child.
#[derive(Clone, Copy)]
enum Kill {
    /// This many microseconds after it is spawned.
    AfterSpawn(u64),
    /// This many microseconds after it reports that it has opened the store.
    AfterReady(u64),
}

/// Runs the child from operation `start` and kills it at `kill`.
fn run_child(db: &Path, seed: u64, start: u64, kill: Kill) -> ChildRun {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_writer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("CRASH_CHILD_DB", db)
        .env("CRASH_CHILD_SEED", seed.to_string())
        .env("CRASH_CHILD_START", start.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    match kill {
        Kill::AfterSpawn(micros) => std::thread::sleep(Duration::from_micros(micros)),
        Kill::AfterReady(micros) => {
            let deadline = Instant::now() + Duration::from_secs(30);
            while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                let ready = line == "ready";
                lines.push(line);
                if ready {
                    break;
                }
            }
            std::thread::sleep(Duration::from_micros(micros));
        }
    }
    child.kill().expect("kill the child");
    let status = child.wait().unwrap();
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let finished = lines.iter().any(|l| l == "done");
    assert!(
        finished || !status.success(),
        "the child ended by itself without finishing: {status}\n{stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "the child panicked:\n{stderr}"
    );
    let last_committed = lines
        .iter()
        .filter_map(|l| l.strip_prefix("committed "))
        .map(|n| n.parse::<u64>().unwrap())
        .max();
    ChildRun {
        last_committed,
        finished,
    }
}

/// Every call of the store, in result order, through the account pages.
fn contents(store: &Store) -> Vec<Call> {
    let mut all = Vec::new();
    for a in ACCOUNTS {
        all.extend(store.query(&Query::account(a).count(u32::MAX)).unwrap());
    }
    all
}

fn model_contents(model: &Reference) -> Vec<Call> {
    let mut all = Vec::new();
    for a in ACCOUNTS {
        all.extend(model.query(&Query::account(a).count(u32::MAX)).unwrap());
    }
    all
}

fn sids(calls: &[Call]) -> Vec<&str> {
    calls.iter().map(|c| c.call_sid.as_str()).collect()
}

fn check_queries(store: &Store, model: &Reference, ops: u64, context: &str) {
    let mut queries = Vec::new();
    for unique in [
        UniqueFilter::All,
        UniqueFilter::Unique,
        UniqueFilter::Repeat,
    ] {
        for a in ACCOUNTS {
            queries.push(Query::account(a).unique(unique).count(100_000));
        }
        for (p, _) in PROPERTIES {
            queries.push(Query::property(p).unique(unique).count(100_000));
        }
    }
    queries.push(
        Query::account("AC1")
            .date_from(1_500)
            .date_to(2_800)
            .disposition(Disposition::Answered)
            .count(100_000),
    );
    let mut q = Query::property("PR1").unique(UniqueFilter::Unique);
    q.attribution_source = vec!["google".into()];
    q.prompts_keys = vec!["1".into()];
    queries.push(q);
    queries.push(Query::account("AC1").count(7).skip(5));
    queries.push(
        Query::account("AC2")
            .unique(UniqueFilter::Repeat)
            .count(3)
            .skip(2),
    );
    for q in &queries {
        let got = store.query(q).unwrap();
        let want = model.query(q).unwrap();
        assert_eq!(sids(&got), sids(&want), "{context}: query {q:?}");
        assert_eq!(got, want, "{context}: query {q:?}");
        assert_eq!(
            store.count(q).unwrap(),
            model.count(q).unwrap(),
            "{context}: count {q:?}"
        );
    }
    // Unique and Repeat split the calls with a caller identity, per scope.
    for scope in ACCOUNTS
        .iter()
        .map(|a| Query::account(*a))
        .chain(PROPERTIES.iter().map(|(p, _)| Query::property(*p)))
    {
        let all = store.query(&scope.clone().count(u32::MAX)).unwrap();
        let unique = store
            .query(&scope.clone().unique(UniqueFilter::Unique).count(u32::MAX))
            .unwrap();
        let repeat = store
            .query(&scope.clone().unique(UniqueFilter::Repeat).count(u32::MAX))
            .unwrap();
        let mut seen = std::collections::HashSet::new();
        for c in &all {
            let Some(caller) = callstore::caller_identity(&c.from) else {
                assert!(
                    !unique.contains(c) && !repeat.contains(c),
                    "{context}: anonymous {} classified",
                    c.call_sid
                );
                continue;
            };
            let first = seen.insert(caller.to_string());
            assert_eq!(
                unique.contains(c),
                first,
                "{context}: {} Unique",
                c.call_sid
            );
            assert_eq!(
                repeat.contains(c),
                !first,
                "{context}: {} Repeat",
                c.call_sid
            );
        }
    }
    // Every CallSid that any operation so far names.
    for n in 0..ops + 2 {
        for i in 0..8 {
            let sid = format!("B{n}-{i}");
            assert_eq!(
                store.get(&sid).unwrap(),
                model.get(&sid),
                "{context}: get {sid}"
            );
        }
    }
}

#[test]
fn committed_batches_survive_kills_and_others_leave_no_trace() {
    let kills = env_u64("CRASH_KILLS", 50) as usize;
    let seed = env_u64("CRASH_SEED", 0x5EED_CA11);
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (mut in_flight_applied, mut in_flight_absent, mut finished_runs) = (0, 0, 0);
    let mut import_segments_in = 0;
    let mut total_ops = 0;
    let mut kill = 0;
    let mut group = 0;
    while kill < kills {
        group += 1;
        let db = dir.path().join(format!("crash-{group}.redb"));
        // Created here: a kill during the create is another test's subject.
        drop(Store::create(&db).unwrap());
        let store_seed = rng.next();
        // The model as of operation `next - 1`: the state the store was last seen in.
        let mut model = Reference::new();
        let mut next = 0u64;
        for _ in 0..KILLS_PER_STORE.min(kills - kill) {
            kill += 1;
            // One kill in five lands anywhere from the start (during the open and its
            // recovery); the others a random time after the child is ready, among its commits.
            let when = if rng.below(5) == 0 {
                Kill::AfterSpawn(rng.below(30_000))
            } else {
                Kill::AfterReady(rng.below(80_000))
            };
            let run = run_child(&db, store_seed, next, when);
            if run.finished {
                finished_runs += 1;
            }
            let context = format!("store {group}, kill {kill}, seed {seed:#x}");
            let store = Store::open(&db)
                .unwrap_or_else(|e| panic!("{context}: the store does not reopen: {e}"));
            // Operations reported committed are in; the one after them may be.
            if let Some(last) = run.last_committed {
                assert!(last + 1 >= next, "{context}: reports {last} from {next}");
                for n in next..=last {
                    apply(&mut model, &op(store_seed, n));
                }
                next = last + 1;
            }
            let got = contents(&store);
            // What the store holds: the model, or the state after operation `next` (or, for an
            // import, after some of its segments: the child runs it again from its start).
            let mut partial = None;
            if got == model_contents(&model) {
                in_flight_absent += 1;
            } else {
                let mut states = states_after(&model, &op(store_seed, next));
                let found = states.iter().position(|s| model_contents(s) == got);
                let Some(found) = found else {
                    panic!(
                        "{context}: the store holds neither the state after operation {} nor \
                         after (part of) {next}\nstore: {:?}\nbefore: {:?}\nafter: {:?}",
                        next as i64 - 1,
                        sids(&got),
                        sids(&model_contents(&model)),
                        sids(&model_contents(&states[states.len() - 1]))
                    )
                };
                if found + 1 == states.len() {
                    model = states.swap_remove(found);
                    next += 1;
                    in_flight_applied += 1;
                } else {
                    partial = Some(states.swap_remove(found));
                    import_segments_in += 1;
                }
            }
            // Markers: every write batch up to `next` is there, none after it (but the one of
            // an import partly in, written with its first segment).
            for n in 0..next + 2 {
                if matches!(op(store_seed, n), Op::Write(_) | Op::Import(_)) {
                    assert_eq!(
                        store.get(&format!("B{n}-0")).unwrap().is_some(),
                        n < next || (n == next && partial.is_some()),
                        "{context}: marker of batch {n} with {next} operations in"
                    );
                }
            }
            let model = partial.as_ref().unwrap_or(&model);
            check_queries(&store, model, next, &context);
            total_ops = total_ops.max(next);
        }
    }
    eprintln!(
        "crash test: {kills} kills over {group} stores in {:.1} s; in-flight operation found \
         applied {in_flight_applied} times, absent {in_flight_absent} times, an import partly \
         in {import_segments_in} times; {finished_runs} runs ended before their kill; up to \
         {total_ops} operations per store",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_kill_while_creating_leaves_a_file_that_opens() {
    let tries = env_u64("CRASH_CREATE_KILLS", 40);
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(env_u64("CRASH_SEED", 0x5EED_CA11));
    // How long a child takes to create a store and say so: kills land within that.
    let probe = dir.path().join("probe.redb");
    let started = Instant::now();
    run_child(&probe, 1, 0, Kill::AfterReady(0));
    let ready = started.elapsed().as_micros() as u64;
    let mut refused = Vec::new();
    for t in 0..tries {
        let db = dir.path().join(format!("create-{t}.redb"));
        let run = run_child(&db, 1, 0, Kill::AfterSpawn(rng.below(ready + 1)));
        if !db.exists() {
            continue;
        }
        match Store::open_or_create(&db) {
            Ok(store) => {
                // The operations reported, and perhaps (some segments of) the next one.
                let mut model = Reference::new();
                let reported = run.last_committed.map_or(0, |last| last + 1);
                for n in 0..reported {
                    apply(&mut model, &op(1, n));
                }
                let got = contents(&store);
                if got != model_contents(&model) {
                    let states = states_after(&model, &op(1, reported));
                    assert!(
                        states.iter().any(|s| model_contents(s) == got),
                        "try {t}: the store holds {:?}, the state after {reported} operations \
                         is {:?}",
                        sids(&got),
                        sids(&model_contents(&states[states.len() - 1]))
                    );
                }
            }
            Err(e) => refused.push(format!(
                "try {t}: {} bytes: {e}",
                std::fs::metadata(&db).unwrap().len()
            )),
        }
    }
    assert!(
        refused.is_empty(),
        "{} of {tries} refused:\n{}",
        refused.len(),
        refused.join("\n")
    );
}
