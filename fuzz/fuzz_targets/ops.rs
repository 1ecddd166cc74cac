//! `ops`: a sequence of writes, bulk imports, deletes, queries, counts, gets and compactions,
//! applied to an in-memory store and to the naive model (`callstore::reference::Reference`), with
//! agreement checked after every step (the way redb's `fuzz_redb` checks its B-trees against a
//! `BTreeMap`).
//!
//! The model has only an atomic `write`, so an import (`Store::import`) is mirrored on it the
//! way `tests/model_equivalence.rs`'s `check_import` does: the accepted batches held are written
//! to the model when the import writes its segment, all in one write, or, if that is refused
//! (a property bound), one by one up to the first refused.
//!
//! Every value comes from a small pool, so that CallSids collide (upserts, duplicates within a
//! batch, deletes of first calls), dates tie, callers repeat across properties and accounts, and
//! a property now and then names a second account (a refused batch).
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use callstore::reference::Reference;
use callstore::{
    Call, Disposition, Error, Query, Scope, Store, StoreError, TrafficType, UniqueFilter,
};
use libfuzzer_sys::fuzz_target;

const MAX_OPS: usize = 10;
const MAX_BATCH: usize = 5;
/// The most batches of an import.
const MAX_IMPORT_BATCHES: u8 = 4;
/// The most calls an import holds before writing a segment: up to 4 batches of 5 calls, so
/// that segments are written at every batch, after some, or only by `finish`.
const MAX_SEGMENT_ROWS: u8 = 20;

const ACCOUNTS: [&str; 3] = ["AC1", "AC2", "AC3"];
/// Properties and the account each normally belongs to; PR9 is never written.
const PROPERTIES: [(&str, &str); 4] = [
    ("PR1", "AC1"),
    ("PR2", "AC1"),
    ("PR3", "AC2"),
    ("PR4", "AC3"),
];
const QUERY_PROPERTIES: [&str; 5] = ["PR1", "PR2", "PR3", "PR4", "PR9"];
/// CallSids: a few, with white space around one (it normalizes onto another) and one that
/// differs only in case.
const SIDS: [&str; 10] = [
    "CA0", "CA1", "CA2", "CA3", "CA4", "CA5", "CA6", " CA1 ", "ca1", "CA10",
];
const DATES: [u32; 8] = [0, 1, 10, 10, 20, 30, u32::MAX - 1, u32::MAX];
const QUERY_DATES: [u32; 7] = [0, 1, 10, 11, 20, 31, u32::MAX];
const FROMS: [&str; 8] = [
    "+1 555 0001",
    "+15550001",
    "555-0002",
    "+1 (555) 0003",
    "anonymous",
    "ANONYMOUS",
    "",
    "sip:alice",
];
const TOS: [&str; 4] = ["+1 (555) 0100", "+15550101", "555-0102", " 5550100 "];
const QUERY_TOS: [&str; 4] = ["+1 555 0100", "5550101", "+15550102", "999"];
const ENDPOINTS: [Option<&str>; 4] = [None, Some("+1 555 0200"), Some("5550201"), Some("desk-7")];
const QUERY_ENDPOINTS: [&str; 3] = ["+15550200", "desk-7", "555 0201"];
const ATTRS: [Option<&str>; 6] = [
    None,
    Some("google"),
    Some("bing"),
    Some(" google "),
    Some("Google"),
    Some("  "),
];
const QUERY_ATTRS: [&str; 5] = ["google", "bing", " Google ", "none", ""];
/// IVR paths; the last is invalid (an empty key) and refuses its batch.
const PROMPTS: [Option<&str>; 8] = [
    None,
    Some("1"),
    Some("1,2"),
    Some("12"),
    Some("1, 2 ,3"),
    Some("2"),
    Some("2,1"),
    Some("1,,2"),
];
const QUERY_PROMPTS: [&str; 7] = ["1", "1,2", "2", "12", " 1 , 2 ", "1,2,3", "3"];
const UNIQUES: [UniqueFilter; 3] = [
    UniqueFilter::All,
    UniqueFilter::Unique,
    UniqueFilter::Repeat,
];
const COUNTS: [u32; 6] = [0, 1, 2, 3, 200, u32::MAX];
const SKIPS: [u32; 6] = [0, 0, 1, 2, 5, u32::MAX];

fn pick<T: Copy>(pool: &[T], i: u8) -> T {
    pool[usize::from(i) % pool.len()]
}

/// Picks from `pool` by the bits of `mask` (at most 3 items, so lists stay short).
fn pick_set<T: Copy>(pool: &[T], mask: u8) -> Vec<T> {
    (0..8)
        .filter(|bit| mask & (1 << bit) != 0)
        .take(3)
        .map(|bit| pool[bit % pool.len()])
        .collect()
}

#[derive(Arbitrary, Debug)]
struct CallSpec {
    sid: u8,
    property: u8,
    /// Now and then the call names its property with another account.
    stray: u8,
    date: u8,
    from: u8,
    to: u8,
    endpoint: u8,
    disposition: u8,
    source: u8,
    medium: u8,
    campaign: u8,
    content: u8,
    prompts: u8,
    traffic: u8,
    duration: u16,
}

impl CallSpec {
    fn call(&self) -> Call {
        let (property, account) = pick(&PROPERTIES, self.property);
        let account = if self.stray.is_multiple_of(16) {
            pick(&ACCOUNTS, self.stray / 16)
        } else {
            account
        };
        let mut call = Call::new(
            account,
            property,
            pick(&SIDS, self.sid),
            pick(&DATES, self.date),
            pick(&TOS, self.to),
            pick(&Disposition::ALL, self.disposition),
        );
        call.from = pick(&FROMS, self.from).to_string();
        call.endpoint = pick(&ENDPOINTS, self.endpoint).map(str::to_string);
        call.attribution_source = pick(&ATTRS, self.source).map(str::to_string);
        call.attribution_medium = pick(&ATTRS, self.medium).map(|m| format!("{m}-medium"));
        call.attribution_campaign = pick(&ATTRS, self.campaign).map(str::to_string);
        call.attribution_content = pick(&ATTRS, self.content).map(str::to_string);
        // Invalid IVR paths only now and then, so that most batches go through.
        let prompts = if self.prompts % 32 == 7 {
            PROMPTS.len() - 1
        } else {
            usize::from(self.prompts) % (PROMPTS.len() - 1)
        };
        call.prompts_keys = PROMPTS[prompts].map(str::to_string);
        call.session_traffic_type = match self.traffic % 6 {
            5 => None,
            t => Some(TrafficType::ALL[usize::from(t)]),
        };
        call.duration = u64::from(self.duration);
        call
    }
}

#[derive(Arbitrary, Debug)]
struct QuerySpec {
    scope: u8,
    date_from: Option<u8>,
    date_to: Option<u8>,
    dispositions: u8,
    to: u8,
    endpoint: u8,
    source: u8,
    medium: u8,
    campaign: u8,
    content: u8,
    prompts: u8,
    unique: u8,
    count: u8,
    skip: u8,
}

impl QuerySpec {
    fn query(&self) -> Query {
        let scope = if self.scope.is_multiple_of(2) {
            Scope::Account(pick(&ACCOUNTS, self.scope / 2).to_string())
        } else {
            Scope::Property(pick(&QUERY_PROPERTIES, self.scope / 2).to_string())
        };
        let strings = |pool: &[&str], mask: u8| -> Vec<String> {
            pick_set(pool, mask)
                .into_iter()
                .map(str::to_string)
                .collect()
        };
        let mut q = Query::new(scope);
        q.date_from = self.date_from.map(|d| pick(&QUERY_DATES, d));
        q.date_to = self.date_to.map(|d| pick(&QUERY_DATES, d));
        q.dispositions = pick_set(&Disposition::ALL, self.dispositions);
        q.to = strings(&QUERY_TOS, self.to);
        q.endpoint = strings(&QUERY_ENDPOINTS, self.endpoint);
        q.attribution_source = strings(&QUERY_ATTRS, self.source);
        q.attribution_medium = pick_set(&QUERY_ATTRS, self.medium)
            .into_iter()
            .map(|m| format!("{m}-medium"))
            .collect();
        q.attribution_campaign = strings(&QUERY_ATTRS, self.campaign);
        q.attribution_content = strings(&QUERY_ATTRS, self.content);
        q.prompts_keys = strings(&QUERY_PROMPTS, self.prompts);
        // An invalid IVR path (an empty key) only now and then.
        if self.prompts == 0xff {
            q.prompts_keys.push("1,,2".to_string());
        }
        q.unique = pick(&UNIQUES, self.unique);
        q.results_count = pick(&COUNTS, self.count);
        q.results_skip = pick(&SKIPS, self.skip);
        q
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Write(Vec<CallSpec>),
    Delete(Vec<u8>),
    Query(QuerySpec),
    Count(QuerySpec),
    Get(u8),
    Compact,
    /// A bulk import of batches, holding `segment_rows` calls (1..=20) before writing them as a
    /// segment. Made in `Input::arbitrary`, for a modest share of the ops.
    #[arbitrary(skip)]
    Import(Vec<Vec<CallSpec>>, u8),
}

#[derive(Debug)]
struct Input {
    merge_factor: usize,
    /// The most rows of a small segment: 0 (none), a few (batches on both sides of it), or
    /// the default (all of them here).
    small_rows: usize,
    ops: Vec<Op>,
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let merge_factor = usize::from(u.int_in_range(2u8..=5)?);
        let small_rows = match u.int_in_range(0u8..=9)? {
            0 => 0,
            9 => callstore::DEFAULT_SMALL_SEGMENT_ROWS,
            n => usize::from(n) * 4,
        };
        let mut ops = Vec::new();
        while ops.len() < MAX_OPS && !u.is_empty() {
            // One op in eight is an import (none once the input runs out).
            if u.int_in_range(0u8..=7)? == 7 {
                let segment_rows = u.int_in_range(1..=MAX_SEGMENT_ROWS)?;
                let mut batches = Vec::new();
                for _ in 0..u.int_in_range(0..=MAX_IMPORT_BATCHES)? {
                    let mut batch: Vec<CallSpec> = u.arbitrary()?;
                    batch.truncate(MAX_BATCH);
                    batches.push(batch);
                }
                ops.push(Op::Import(batches, segment_rows));
                continue;
            }
            let mut op = Op::arbitrary(u)?;
            match &mut op {
                Op::Write(batch) => batch.truncate(MAX_BATCH),
                Op::Delete(sids) => sids.truncate(MAX_BATCH),
                _ => {}
            }
            ops.push(op);
        }
        Ok(Input {
            merge_factor,
            small_rows,
            ops,
        })
    }
}

/// What a write error says, in a form both sides produce.
fn error_kind(e: &StoreError) -> String {
    match e {
        StoreError::InvalidRecord { index, .. } => format!("invalid record {index}"),
        StoreError::PropertyBound {
            call_sid, bound_to, ..
        } => format!("{call_sid} bound to {bound_to}"),
        other => format!("unexpected: {other}"),
    }
}

/// Runs an import of `batches` on the store, holding `segment_rows` calls before writing a
/// segment, and mirrors it on the model (as `tests/model_equivalence.rs`'s `check_import`).
fn check_import(store: &Store, model: &mut Reference, batches: &[Vec<CallSpec>], segment_rows: u8) {
    let segment_rows = usize::from(segment_rows);
    let mut import = store.import().with_segment_rows(segment_rows);
    // Accepted batches not written yet.
    let mut held: Vec<Vec<Call>> = Vec::new();
    let mut accepted = 0;
    for specs in batches {
        let batch: Vec<Call> = specs.iter().map(CallSpec::call).collect();
        let got = import.write(batch.clone());
        if let Err(Error::Store(e @ StoreError::InvalidRecord { .. })) = &got {
            let want = model.clone().write(batch);
            let Err(want) = want else {
                panic!("import refused a batch ({e:?}); the model accepts it");
            };
            assert_eq!(
                error_kind(e),
                error_kind(&want),
                "import: refused batches differ"
            );
            // The import goes on as it was.
            let calls: usize = held.iter().map(Vec::len).sum();
            assert_eq!(import.held(), calls, "held after a refused batch");
            assert_eq!(import.batches_written(), accepted - held.len());
            continue;
        }
        accepted += 1;
        if batch.is_empty() && held.is_empty() && got.is_ok() {
            // Nothing to hold: counted as written at once.
            assert_eq!(import.batches_written(), accepted, "an empty batch");
            continue;
        }
        held.push(batch);
        // The import writes a segment once it holds `segment_rows` calls (an empty batch adds
        // none).
        let calls: usize = held.iter().map(Vec::len).sum();
        let full = calls >= segment_rows;
        match got {
            Ok(()) if full => {
                assert_eq!(import.held(), 0, "held after a segment");
                if let Err((want, written)) = model.write_segment(std::mem::take(&mut held)) {
                    panic!("import wrote a segment; the model refuses it ({want:?}, {written} in)");
                }
                assert_eq!(import.batches_written(), accepted, "batches written");
            }
            Ok(()) => {
                assert_eq!(import.held(), calls, "calls held");
                assert_eq!(
                    import.batches_written(),
                    accepted - held.len(),
                    "batches written"
                );
            }
            Err(Error::Store(got)) => {
                assert!(
                    full,
                    "import: {got:?} with no segment to write ({calls} calls held)"
                );
                let before = accepted - held.len();
                match model.write_segment(std::mem::take(&mut held)) {
                    Err((want, written)) => {
                        assert_eq!(error_kind(&got), error_kind(&want), "import errors differ");
                        assert_eq!(
                            import.batches_written(),
                            before + written,
                            "batches written"
                        );
                    }
                    Ok(()) => panic!("import: engine {got:?}; the model accepts the segment"),
                }
                // The import has ended.
                let call = Call::new("AC1", "PR1", "CA0", 1, "+15550100", Disposition::Answered);
                let after = import.write(vec![call]);
                assert!(
                    matches!(after, Err(Error::Store(StoreError::ImportEnded))),
                    "write after the import ended: {after:?}"
                );
                let after = import.flush();
                assert!(
                    matches!(after, Err(Error::Store(StoreError::ImportEnded))),
                    "flush after the import ended: {after:?}"
                );
                let after = import.finish();
                assert!(
                    matches!(after, Err(Error::Store(StoreError::ImportEnded))),
                    "finish after the import ended: {after:?}"
                );
                return;
            }
            Err(got) => panic!("import: unexpected error {got:?}"),
        }
    }
    // Finish writes the rest.
    match (import.finish(), model.write_segment(held)) {
        (Ok(_), Ok(())) => {}
        (Err(Error::Store(got)), Err((want, _))) => {
            assert_eq!(error_kind(&got), error_kind(&want), "finish errors differ")
        }
        (got, want) => panic!("finish: engine {got:?}, model {want:?}"),
    }
}

fn check_query(store: &Store, model: &Reference, q: &Query) {
    match (store.query(q), model.query(q)) {
        (Ok(got), Ok(want)) => assert_eq!(got, want, "query {q:?}"),
        (Err(Error::Api(got)), Err(want)) => assert_eq!(got.code, want.code, "query {q:?}"),
        (got, want) => panic!("query {q:?}: engine {got:?}, model {want:?}"),
    }
}

fn check_count(store: &Store, model: &Reference, q: &Query) {
    match (store.count(q), model.count(q)) {
        (Ok(got), Ok(want)) => assert_eq!(got, want, "count {q:?}"),
        (Err(Error::Api(got)), Err(want)) => assert_eq!(got.code, want.code, "count {q:?}"),
        (got, want) => panic!("count {q:?}: engine {got:?}, model {want:?}"),
    }
}

/// The cheap check after every change: how many calls are stored, and one whole scope (a
/// different scope and class at each step).
fn check_step(store: &Store, model: &Reference, step: usize) {
    let stats = store.stats().expect("stats");
    assert_eq!(stats.calls, model.calls().len() as u64, "stored calls");
    let scopes = ACCOUNTS.len() + PROPERTIES.len();
    let scope = match step % scopes {
        i if i < ACCOUNTS.len() => Scope::Account(ACCOUNTS[i].to_string()),
        i => Scope::Property(PROPERTIES[i - ACCOUNTS.len()].0.to_string()),
    };
    let unique = UNIQUES[(step / scopes) % UNIQUES.len()];
    check_query(
        store,
        model,
        &Query::new(scope).unique(unique).count(u32::MAX),
    );
}

/// The full check at the end: every account in every class, every property, whole records,
/// every CallSid.
fn check_all(store: &Store, model: &Reference) {
    for account in ACCOUNTS {
        for unique in UNIQUES {
            check_query(
                store,
                model,
                &Query::account(account).unique(unique).count(u32::MAX),
            );
        }
    }
    for property in QUERY_PROPERTIES {
        check_query(store, model, &Query::property(property).count(u32::MAX));
    }
    for sid in SIDS {
        assert_eq!(store.get(sid).expect("get"), model.get(sid), "get {sid:?}");
    }
}

fuzz_target!(|input: Input| {
    let mut store = Store::in_memory().expect("an in-memory store");
    store.set_merge_factor(input.merge_factor);
    store.set_small_segment_rows(input.small_rows);
    let mut model = Reference::new();
    for (step, op) in input.ops.iter().enumerate() {
        match op {
            Op::Write(specs) => {
                let batch: Vec<Call> = specs.iter().map(CallSpec::call).collect();
                match (store.write(batch.clone()), model.write(batch)) {
                    (Ok(_), Ok(())) => {}
                    (Err(Error::Store(got)), Err(want)) => {
                        assert_eq!(error_kind(&got), error_kind(&want), "write errors differ")
                    }
                    (got, want) => panic!("write: engine {got:?}, model {want:?}"),
                }
                check_step(&store, &model, step);
            }
            Op::Delete(sids) => {
                let sids: Vec<&str> = sids.iter().map(|&i| pick(&SIDS, i)).collect();
                let got = store.delete(&sids).expect("delete");
                assert_eq!(got, model.delete(&sids), "deleted of {sids:?}");
                check_step(&store, &model, step);
            }
            Op::Query(spec) => check_query(&store, &model, &spec.query()),
            Op::Count(spec) => check_count(&store, &model, &spec.query()),
            Op::Get(i) => {
                let sid = pick(&SIDS, *i);
                assert_eq!(store.get(sid).expect("get"), model.get(sid), "get {sid:?}");
            }
            Op::Compact => {
                store.compact().expect("compact");
                check_step(&store, &model, step);
            }
            Op::Import(batches, segment_rows) => {
                check_import(&store, &mut model, batches, *segment_rows);
                check_step(&store, &model, step);
            }
        }
    }
    check_all(&store, &model);
});
