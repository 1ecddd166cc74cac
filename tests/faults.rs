//! Injected storage faults (SPEC §5): the store runs over a redb `StorageBackend` that fails its
//! k-th call (`len`, `read`, `write`, `set_len` or `sync_data`, counted together), for every k
//! that a workload of writes, merges (merge factor 2), deletes, compactions and queries reaches.
//!
//! - The call that hits the fault returns an error: no panic, no silent success.
//! - Later writes on the same store return `NeedsReopen`, not panics; reads may answer from what
//!   was committed.
//! - Reopened over the same bytes on a healthy backend, the store holds exactly the model's
//!   calls as of the last successful commit, or as of the failed one (when the fault came after
//!   its commit point), and answers queries like the model.
//!
//! A power cut is modelled too: from the k-th call on every call fails, and what survives is the
//! bytes as of the last `sync_data` (or those plus any subset of the writes made since: a disk
//! that wrote back some of its cache).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use callstore::reference::Reference;
use callstore::{Call, Disposition, Error, Query, Store, StoreError, UniqueFilter};

const ACCOUNTS: [&str; 2] = ["AC1", "AC2"];
const PROPERTIES: [(&str, &str); 3] = [("PR1", "AC1"), ("PR2", "AC1"), ("PR3", "AC2")];
const FROMS: [&str; 6] = [
    "+1 555 0001",
    "+15550001",
    "555-0002",
    "+1 (555) 0003",
    "anonymous",
    "",
];

mod common;
use common::Rng;

// ---------------------------------------------------------------------------------------------
// The backend

/// What a write-back cache has not yet made durable.
#[derive(Clone, Debug)]
enum Pending {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

/// The medium: the bytes reads see, and what has been made durable by `sync_data`.
#[derive(Clone, Debug, Default)]
struct Disk {
    data: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Pending>,
}

impl Disk {
    fn apply(bytes: &mut Vec<u8>, op: &Pending) {
        match op {
            Pending::Write(offset, data) => {
                let end = *offset as usize + data.len();
                if bytes.len() < end {
                    bytes.resize(end, 0);
                }
                bytes[*offset as usize..end].copy_from_slice(data);
            }
            Pending::SetLen(len) => bytes.resize(*len as usize, 0),
        }
    }

    /// The bytes a restart finds after a power cut now: the durable ones, plus, when `rng` is
    /// given, a random subset of the writes since the last sync, in their order.
    fn after_power_cut(&self, rng: Option<&mut Rng>) -> Disk {
        let mut bytes = self.durable.clone();
        if let Some(rng) = rng {
            for op in &self.pending {
                if rng.below(2) == 0 {
                    Disk::apply(&mut bytes, op);
                }
            }
        }
        Disk {
            data: bytes.clone(),
            durable: bytes,
            pending: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Every call succeeds.
    Healthy,
    /// The k-th call fails; the others succeed.
    FailAt(u64),
    /// From the k-th call on, every call fails: the power is off.
    PowerCutAt(u64),
}

/// Counts calls and decides which fail.
#[derive(Debug)]
struct Plan {
    mode: Mode,
    calls: AtomicU64,
    /// The call number that failed first, and what it was.
    failed: Mutex<Option<(u64, &'static str)>>,
}

impl Plan {
    fn new(mode: Mode) -> Arc<Plan> {
        Arc::new(Plan {
            mode,
            calls: AtomicU64::new(0),
            failed: Mutex::new(None),
        })
    }

    fn step(&self, what: &'static str) -> std::io::Result<()> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let fail = match self.mode {
            Mode::Healthy => false,
            Mode::FailAt(k) => n == k,
            Mode::PowerCutAt(k) => n >= k,
        };
        if fail {
            self.failed.lock().unwrap().get_or_insert((n, what));
            return Err(std::io::Error::other(format!(
                "injected fault: {what} (call {n})"
            )));
        }
        Ok(())
    }

    fn fired(&self) -> bool {
        self.failed.lock().unwrap().is_some()
    }
}

#[derive(Debug)]
struct TestBackend {
    disk: Arc<Mutex<Disk>>,
    plan: Arc<Plan>,
}

impl redb::StorageBackend for TestBackend {
    fn len(&self) -> std::io::Result<u64> {
        self.plan.step("len")?;
        Ok(self.disk.lock().unwrap().data.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.plan.step("read")?;
        let disk = self.disk.lock().unwrap();
        let end = offset as usize + out.len();
        if end > disk.data.len() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "read past the end",
            ));
        }
        out.copy_from_slice(&disk.data[offset as usize..end]);
        Ok(())
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.plan.step("set_len")?;
        let mut disk = self.disk.lock().unwrap();
        let op = Pending::SetLen(len);
        Disk::apply(&mut disk.data, &op);
        disk.pending.push(op);
        Ok(())
    }

    fn sync_data(&self) -> std::io::Result<()> {
        self.plan.step("sync_data")?;
        let mut disk = self.disk.lock().unwrap();
        disk.durable = disk.data.clone();
        disk.pending.clear();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.plan.step("write")?;
        let mut disk = self.disk.lock().unwrap();
        let op = Pending::Write(offset, data.to_vec());
        Disk::apply(&mut disk.data, &op);
        disk.pending.push(op);
        Ok(())
    }
}

fn backend(disk: &Arc<Mutex<Disk>>, plan: &Arc<Plan>) -> TestBackend {
    TestBackend {
        disk: Arc::clone(disk),
        plan: Arc::clone(plan),
    }
}

// ---------------------------------------------------------------------------------------------
// The workload

#[derive(Clone, Debug)]
enum Op {
    Write(Vec<Call>),
    Delete(Vec<String>),
    Compact,
    /// Queries and gets, answered like the model.
    Check,
    /// Drops the store and opens it again on the same backend: later reads miss the cache.
    Reopen,
}

fn workload() -> Vec<Op> {
    let mut rng = Rng(0xFA17_0001);
    let mut ops = Vec::new();
    let mut next_sid = 0u64;
    for n in 0..14u64 {
        let mut calls = Vec::new();
        for _ in 0..2 + rng.below(5) {
            // One in four records rewrites an earlier call (an upsert).
            let sid = if next_sid > 0 && rng.below(4) == 0 {
                rng.below(next_sid)
            } else {
                next_sid += 1;
                next_sid - 1
            };
            let (property, account) = PROPERTIES[rng.below(3) as usize];
            let date = 100 + 10 * rng.below(60) as u32;
            let d = Disposition::ALL[rng.below(5) as usize];
            let mut c = Call::new(account, property, format!("CA{sid:03}"), date, "5550100", d);
            c.from = FROMS[rng.below(FROMS.len() as u64) as usize].to_string();
            c.attribution_source = [None, Some("google")][rng.below(2) as usize].map(String::from);
            c.notes = Some(format!("op {n}"));
            calls.push(c);
        }
        ops.push(Op::Write(calls));
        if n % 4 == 3 {
            let sids = (0..2).map(|_| format!("CA{:03}", rng.below(next_sid)));
            ops.push(Op::Delete(sids.collect()));
        }
        if n % 3 == 2 {
            ops.push(Op::Check);
        }
        if n == 9 {
            ops.push(Op::Compact);
        }
        if n % 5 == 4 {
            ops.push(Op::Reopen);
            ops.push(Op::Check);
        }
    }
    ops.push(Op::Check);
    ops
}

fn queries() -> Vec<Query> {
    let mut qs = Vec::new();
    for unique in [
        UniqueFilter::All,
        UniqueFilter::Unique,
        UniqueFilter::Repeat,
    ] {
        for a in ACCOUNTS {
            qs.push(Query::account(a).unique(unique).count(10_000));
        }
        for (p, _) in PROPERTIES {
            qs.push(Query::property(p).unique(unique).count(10_000));
        }
    }
    qs.push(
        Query::account("AC1")
            .date_from(200)
            .date_to(500)
            .source("google")
            .count(10_000),
    );
    qs.push(Query::account("AC1").count(4).skip(3));
    qs
}

fn all_sids() -> Vec<String> {
    (0..80).map(|i| format!("CA{i:03}")).collect()
}

/// Runs the queries of a check on the store; `Err` when the store fails, a panic when it answers
/// unlike the model.
fn check(store: &Store, model: &Reference, context: &str) -> callstore::Result<()> {
    for q in queries() {
        let got = store.query(&q)?;
        assert_eq!(got, model.query(&q).unwrap(), "{context}: query {q:?}");
        assert_eq!(
            store.count(&q)?,
            model.count(&q).unwrap(),
            "{context}: count {q:?}"
        );
    }
    for sid in all_sids() {
        assert_eq!(store.get(&sid)?, model.get(&sid), "{context}: get {sid}");
    }
    Ok(())
}

/// The whole contents, as the model renders it.
fn contents(model: &Reference) -> Vec<Call> {
    let mut calls = model.calls().to_vec();
    calls.sort_by(|a, b| a.call_sid.cmp(&b.call_sid));
    calls
}

fn store_contents(store: &Store) -> callstore::Result<Vec<Call>> {
    let mut calls = Vec::new();
    for a in ACCOUNTS {
        calls.extend(store.query(&Query::account(a).count(u32::MAX))?);
    }
    calls.sort_by(|a, b| a.call_sid.cmp(&b.call_sid));
    Ok(calls)
}

/// A disk holding a freshly created, empty store.
fn fresh_disk() -> Arc<Mutex<Disk>> {
    let disk = Arc::new(Mutex::new(Disk::default()));
    let store = Store::with_backend(backend(&disk, &Plan::new(Mode::Healthy))).unwrap();
    drop(store);
    disk
}

/// What one run of the workload saw.
struct Outcome {
    /// The model as of the last successful write, and as of the write that failed, if any.
    last_ok: Reference,
    failed_write: Option<Reference>,
    /// Whether some call returned an error.
    errored: bool,
}

fn is_reopen_error(e: &Error) -> bool {
    matches!(
        e,
        Error::Store(StoreError::NeedsReopen | StoreError::Storage(_) | StoreError::Io { .. })
    )
}

/// Opens the store over `disk` with `plan`, merge factor 2; a panic fails the test.
fn open(disk: &Arc<Mutex<Disk>>, plan: &Arc<Plan>, context: &str) -> callstore::Result<Store> {
    catch_unwind(AssertUnwindSafe(|| {
        Store::with_backend(backend(disk, plan)).map(|mut s| {
            s.set_merge_factor(2);
            s
        })
    }))
    .unwrap_or_else(|_| panic!("{context}: opening panicked"))
}

/// Runs the workload over `disk` with `plan`, until the first error (then checks that the store
/// keeps refusing), and drops the store. Panics (a failed test) on a panic, a silent success or a
/// wrong answer.
fn run(disk: &Arc<Mutex<Disk>>, plan: &Arc<Plan>, ops: &[Op], context: &str) -> Outcome {
    let mut model = Reference::new();
    let outcome = |model: Reference, failed: Option<Reference>| Outcome {
        last_ok: model,
        failed_write: failed,
        errored: true,
    };
    let mut store = match open(disk, plan, context) {
        Ok(store) => store,
        Err(e) => {
            assert!(plan.fired(), "{context}: open failed with no fault: {e}");
            assert!(is_reopen_error(&e), "{context}: open: unexpected {e:?}");
            return outcome(model, None);
        }
    };
    for (i, op) in ops.iter().enumerate() {
        let mut before = plan.fired();
        let result = match op {
            Op::Reopen => {
                catch_unwind(AssertUnwindSafe(|| drop(store)))
                    .unwrap_or_else(|_| panic!("{context}: op {i}: closing panicked"));
                // A fault in the close has nowhere to surface but the next open.
                before = plan.fired() && !matches!(plan.mode, Mode::PowerCutAt(_));
                match open(disk, plan, context) {
                    Ok(reopened) => {
                        store = reopened;
                        Ok(())
                    }
                    Err(e) => {
                        assert!(
                            plan.fired(),
                            "{context}: op {i}: reopen failed with no fault: {e}"
                        );
                        assert!(is_reopen_error(&e), "{context}: op {i}: unexpected {e:?}");
                        return outcome(model, None);
                    }
                }
            }
            _ => catch_unwind(AssertUnwindSafe(|| match op {
                Op::Write(calls) => store.write(calls.clone()).map(drop),
                Op::Delete(sids) => store.delete(sids).map(drop),
                Op::Compact => store.compact(),
                Op::Check => check(&store, &model, &format!("{context}, op {i}")),
                Op::Reopen => unreachable!(),
            }))
            .unwrap_or_else(|_| panic!("{context}: op {i} ({op:?}) panicked")),
        };
        let hit = plan.fired() && !before;
        let mut after = model.clone();
        match op {
            Op::Write(calls) => after.write(calls.clone()).unwrap(),
            Op::Delete(sids) => {
                after.delete(sids);
            }
            Op::Compact | Op::Check | Op::Reopen => {}
        }
        let e = match result {
            Ok(()) => {
                assert!(!hit, "{context}: op {i} hit the fault and succeeded");
                model = after;
                continue;
            }
            Err(e) => e,
        };
        assert!(hit, "{context}: op {i} failed with no fault: {e}");
        assert!(is_reopen_error(&e), "{context}: op {i}: unexpected {e:?}");
        // The store keeps refusing writes with NeedsReopen rather than a panic; a query may
        // fail too, or answer from what was committed.
        let write = catch_unwind(AssertUnwindSafe(|| {
            store.write(vec![Call::new(
                "AC1",
                "PR1",
                "CA999",
                1,
                "5550100",
                Disposition::Busy,
            )])
        }))
        .unwrap_or_else(|_| panic!("{context}: a write after the error panicked"));
        match write {
            Err(Error::Store(StoreError::NeedsReopen)) => {}
            Err(e) => panic!("{context}: a write after the error: {e:?}, not NeedsReopen"),
            Ok(_) => panic!("{context}: a write after an I/O error ({e}) succeeded"),
        }
        let query = catch_unwind(AssertUnwindSafe(|| {
            store.query(&Query::account("AC1").count(10_000))
        }))
        .unwrap_or_else(|_| panic!("{context}: a query after the error panicked"));
        match query {
            Err(e) => assert!(is_reopen_error(&e), "{context}: then {e:?}"),
            Ok(page) => {
                let q = Query::account("AC1").count(10_000);
                assert!(
                    page == model.query(&q).unwrap() || page == after.query(&q).unwrap(),
                    "{context}: a query after the error answers from no committed state"
                );
            }
        }
        catch_unwind(AssertUnwindSafe(|| drop(store)))
            .unwrap_or_else(|_| panic!("{context}: dropping the store panicked"));
        return outcome(model, Some(after));
    }
    catch_unwind(AssertUnwindSafe(|| drop(store)))
        .unwrap_or_else(|_| panic!("{context}: dropping the store panicked"));
    Outcome {
        last_ok: model,
        failed_write: None,
        errored: false,
    }
}

/// Reopens `disk` on a healthy backend and checks that it holds one of the allowed states;
/// returns whether it holds the failed write's state (and that differs from the last success).
fn check_reopened(disk: Disk, outcome: &Outcome, context: &str) -> bool {
    let disk = Arc::new(Mutex::new(disk));
    let store = catch_unwind(AssertUnwindSafe(|| {
        Store::with_backend(backend(&disk, &Plan::new(Mode::Healthy)))
    }))
    .unwrap_or_else(|_| panic!("{context}: reopening panicked"))
    .unwrap_or_else(|e| panic!("{context}: the store does not reopen: {e}"));
    let got = store_contents(&store).unwrap();
    let (model, kept_failed) = if got == contents(&outcome.last_ok) {
        (&outcome.last_ok, false)
    } else {
        match &outcome.failed_write {
            Some(after) if got == contents(after) => (after, true),
            _ => panic!(
                "{context}: after reopening the store holds {} calls, neither the last \
                 committed state ({} calls) nor the failed write's",
                got.len(),
                outcome.last_ok.calls().len()
            ),
        }
    };
    check(&store, model, &format!("{context}, reopened")).unwrap();
    // And it takes writes again.
    let mut model = model.clone();
    let extra = vec![Call::new(
        "AC2",
        "PR3",
        "CA998",
        150,
        "5550100",
        Disposition::Answered,
    )];
    store.write(extra.clone()).unwrap();
    model.write(extra).unwrap();
    check(
        &store,
        &model,
        &format!("{context}, written after reopening"),
    )
    .unwrap();
    kept_failed
}

/// The number of backend calls of a fault-free run of the workload, open and drop included.
fn calls_of_workload(ops: &[Op]) -> u64 {
    let disk = fresh_disk();
    let plan = Plan::new(Mode::Healthy);
    let outcome = run(&disk, &plan, ops, "fault-free run");
    assert!(!outcome.errored);
    let n = plan.calls.load(Ordering::SeqCst);
    check_reopened(disk.lock().unwrap().clone(), &outcome, "fault-free run");
    n
}

#[test]
fn every_single_fault_is_an_error_and_loses_no_commit() {
    let ops = workload();
    let total = calls_of_workload(&ops);
    let mut errors = 0;
    let mut by_kind = std::collections::BTreeMap::<&str, u64>::new();
    let mut failed_commit_kept = 0;
    for k in 1..=total {
        let context = format!("fault at call {k} of {total}");
        let disk = fresh_disk();
        let plan = Plan::new(Mode::FailAt(k));
        let outcome = run(&disk, &plan, &ops, &context);
        let failed = *plan.failed.lock().unwrap();
        let (_, what) = failed.unwrap_or_else(|| panic!("{context}: the fault was not reached"));
        *by_kind.entry(what).or_default() += 1;
        if outcome.errored {
            errors += 1;
        }
        let image = disk.lock().unwrap().clone();
        if check_reopened(image, &outcome, &context) {
            failed_commit_kept += 1;
        }
    }
    eprintln!(
        "faults: {total} fault points ({by_kind:?}); {errors} surfaced as errors, the others hit \
         a close (where nothing can report them); {failed_commit_kept} writes that returned an \
         error were durable anyway"
    );
    assert!(
        total > 100,
        "the workload reached only {total} backend calls"
    );
}

#[test]
fn a_power_cut_at_any_call_keeps_a_committed_state() {
    let ops = workload();
    let total = calls_of_workload(&ops);
    let mut rng = Rng(0xC07_0FF);
    // Every other call, and one torn image each, unless FAULTS_EXHAUSTIVE is set.
    let exhaustive = std::env::var_os("FAULTS_EXHAUSTIVE").is_some();
    let (stride, torn_rounds) = if exhaustive { (1, 4) } else { (2, 1) };
    let mut cuts = 0;
    for k in (1..=total).step_by(stride) {
        cuts += 1;
        let context = format!("power cut at call {k} of {total}");
        let disk = fresh_disk();
        let plan = Plan::new(Mode::PowerCutAt(k));
        let outcome = run(&disk, &plan, &ops, &context);
        let disk = disk.lock().unwrap().clone();
        check_reopened(disk.after_power_cut(None), &outcome, &context);
        // A disk that wrote back some of its cache before the cut (whole writes, in any
        // subset): redb's checksums must catch a commit whose pages are only partly there.
        for round in 0..torn_rounds {
            let image = disk.after_power_cut(Some(&mut rng));
            check_reopened(
                image,
                &outcome,
                &format!("{context}, torn write-back {round}"),
            );
        }
    }
    eprintln!(
        "power cuts: at {cuts} of {total} calls, each with {torn_rounds} torn write-back images"
    );
}

/// Creates a store over a fresh disk with a fault at call `k`; returns the disk and whether the
/// create returned an error. A panic or a silent success fails the test.
fn create_with_fault(k: u64, context: &str) -> (Disk, bool) {
    let disk = Arc::new(Mutex::new(Disk::default()));
    let plan = Plan::new(Mode::FailAt(k));
    let created = catch_unwind(AssertUnwindSafe(|| {
        let store = Store::with_backend(backend(&disk, &plan));
        let fired_in_create = plan.fired();
        (store.map(drop), fired_in_create)
    }))
    .unwrap_or_else(|_| panic!("{context}: creating panicked"));
    match &created {
        (Ok(()), fired) => assert!(!fired, "{context}: the create hit the fault and succeeded"),
        (Err(e), fired) => {
            assert!(*fired, "{context}: the create failed with no fault: {e}");
            assert!(is_reopen_error(e), "{context}: unexpected {e:?}");
        }
    }
    let image = disk.lock().unwrap().clone();
    (image, created.0.is_err())
}

fn calls_of_create() -> u64 {
    let disk = Arc::new(Mutex::new(Disk::default()));
    let plan = Plan::new(Mode::Healthy);
    drop(Store::with_backend(backend(&disk, &plan)).unwrap());
    plan.calls.load(Ordering::SeqCst)
}

#[test]
fn a_fault_while_creating_is_an_error() {
    let calls = calls_of_create();
    for k in 1..=calls {
        let context = format!("fault at call {k} of {calls} of creating");
        let (image, _) = create_with_fault(k, &context);
        // Reopening gives a store or an error, never a panic.
        catch_unwind(AssertUnwindSafe(|| {
            Store::with_backend(backend(
                &Arc::new(Mutex::new(image)),
                &Plan::new(Mode::Healthy),
            ))
            .map(drop)
        }))
        .unwrap_or_else(|_| panic!("{context}: reopening panicked"))
        .ok();
    }
}

#[test]
fn a_store_whose_create_failed_opens_as_an_empty_store() {
    let calls = calls_of_create();
    let mut refused = Vec::new();
    for k in 1..=calls {
        let context = format!("fault at call {k} of {calls} of creating");
        let (image, _) = create_with_fault(k, &context);
        let disk = Arc::new(Mutex::new(image));
        match Store::with_backend(backend(&disk, &Plan::new(Mode::Healthy))) {
            Ok(store) => {
                assert_eq!(store_contents(&store).unwrap(), vec![], "{context}");
                let call = Call::new("AC1", "PR1", "CA1", 1, "5550100", Disposition::Busy);
                store.write(vec![call]).unwrap();
                assert_eq!(store.count(&Query::account("AC1")).unwrap(), 1, "{context}");
            }
            Err(e) => refused.push(format!("{context}: {e}")),
        }
    }
    assert!(refused.is_empty(), "refused:\n{}", refused.join("\n"));
}
