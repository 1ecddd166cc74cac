//! The engine against the naive model: random operation sequences (batches with out-of-order
//! times and ties, upserts, duplicates within a batch, deletes of first calls, merges, reopen of
//! the file), each followed by random queries of every parameter; every answer must equal the
//! model's.
//!
//! `PROPTEST_CASES` sets the number of sequences (default 1,000 here; run 100,000 locally with
//! `PROPTEST_CASES=100000 cargo test --release --test model_equivalence`).

use callstore::reference::Reference;
use callstore::{
    Call, DEFAULT_SMALL_SEGMENT_ROWS, Disposition, Error, Query, Scope, Store, StoreError,
    TrafficType, UniqueFilter,
};
use proptest::prelude::*;
use proptest::sample::select;

const ACCOUNTS: [&str; 3] = ["AC1", "AC2", "AC3"];
// Properties and the account each normally belongs to; PR9 is unbound.
const PROPERTIES: [(&str, &str); 4] = [
    ("PR1", "AC1"),
    ("PR2", "AC1"),
    ("PR3", "AC2"),
    ("PR4", "AC3"),
];
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
const ENDPOINTS: [Option<&str>; 4] = [None, Some("+1 555 0200"), Some("5550201"), Some("desk-7")];
const ATTRS: [Option<&str>; 5] = [
    None,
    Some("google"),
    Some("bing"),
    Some(" google "),
    Some("Google"),
];
// Paths deeper than the indexed depth (16 keys) are matched through the records.
const DEEP: &str = "1,2,3,1,2,3,1,2,3,1,2,3,1,2,3,1,2,3,1,2";
const PROMPTS: [Option<&str>; 8] = [
    None,
    Some(DEEP),
    Some("1"),
    Some("1,2"),
    Some("12"),
    Some("1, 2 ,3"),
    Some("2"),
    Some("2,1"),
];

fn call_strategy() -> impl Strategy<Value = Call> {
    (
        (0usize..40, select(&PROPERTIES[..]), any::<bool>(), 0u32..12),
        (select(&FROMS[..]), select(&TOS[..]), select(&ENDPOINTS[..])),
        (
            select(&Disposition::ALL[..]),
            select(&ATTRS[..]),
            select(&ATTRS[..]),
            select(&PROMPTS[..]),
        ),
        (
            0u64..5000,
            proptest::option::of(select(&TrafficType::ALL[..])),
        ),
        prop_oneof![9 => Just(None), 1 => select(&[0u32, u32::MAX][..]).prop_map(Some)],
    )
        .prop_map(
            |(
                (sid, (property, account), stray, date),
                (from, to, endpoint),
                (d, source, campaign, prompts),
                (duration, traffic),
                extreme,
            )| {
                // Now and then a call names its property with another account.
                let account = if stray && sid % 13 == 0 {
                    "AC2"
                } else {
                    account
                };
                let mut call = Call::new(
                    account,
                    property,
                    format!("CA{sid:02}"),
                    extreme.unwrap_or(date * 10),
                    to,
                    d,
                );
                call.from = from.to_string();
                call.endpoint = endpoint.map(str::to_string);
                call.attribution_source = source.map(str::to_string);
                call.attribution_campaign = campaign.map(str::to_string);
                call.attribution_medium = campaign.map(|c| format!("{c}-medium"));
                call.prompts_keys = prompts.map(str::to_string);
                call.duration = duration;
                call.session_traffic_type = traffic;
                call
            },
        )
}

#[derive(Clone, Debug)]
enum Op {
    Write(Vec<Call>),
    /// A bulk import of these batches, holding this many calls before it writes a segment.
    Import(Vec<Vec<Call>>, usize),
    Delete(Vec<String>),
    Reopen,
    Compact,
    Check(Vec<Query>, Vec<String>),
}

fn list<T: Clone + std::fmt::Debug + 'static>(
    pool: &'static [T],
    max: usize,
) -> impl Strategy<Value = Vec<T>> {
    proptest::collection::vec(select(pool), 0..=max)
}

fn query_strategy() -> impl Strategy<Value = Query> {
    let scope = prop_oneof![
        select(&ACCOUNTS[..]).prop_map(|a| Scope::Account(a.to_string())),
        select(&["PR1", "PR2", "PR3", "PR4", "PR9"][..])
            .prop_map(|p| Scope::Property(p.to_string())),
    ];
    (
        scope,
        (
            proptest::option::of(0u32..130),
            proptest::option::of(0u32..130),
        ),
        list(&Disposition::ALL[..], 2),
        (
            list(&["+1 555 0100", "5550101", "+15550102", "999"][..], 2),
            list(&["+15550200", "desk-7", "555 0201"][..], 2),
        ),
        (
            list(&["google", "bing", " Google ", "none"][..], 2),
            list(&["google-medium", "bing-medium"][..], 1),
            list(&["google", "bing"][..], 1),
        ),
        list(
            &[
                "1",
                "1,2",
                "2",
                "12",
                " 1 , 2 ",
                "1,2,3",
                "3",
                "1,2,3,1,2,3,1,2,3,1,2,3,1,2,3,1",
                "1,2,3,1,2,3,1,2,3,1,2,3,1,2,3,1,2",
                "1,2,3,1,2,3,1,2,3,1,2,3,1,2,3,1,2,9",
            ][..],
            2,
        ),
        select(
            &[
                UniqueFilter::All,
                UniqueFilter::Unique,
                UniqueFilter::Repeat,
            ][..],
        ),
        (
            prop_oneof![1 => Just(200u32), 3 => 0u32..12],
            prop_oneof![1 => Just(0u32), 3 => 0u32..30],
        ),
    )
        .prop_map(
            |(
                scope,
                (from, to),
                dispositions,
                (tos, endpoints),
                (sources, mediums, campaigns),
                prompts,
                unique,
                (count, skip),
            )| {
                let mut q = Query::new(scope);
                q.date_from = from;
                q.date_to = to;
                q.dispositions = dispositions;
                q.to = tos.into_iter().map(str::to_string).collect();
                q.endpoint = endpoints.into_iter().map(str::to_string).collect();
                q.attribution_source = sources.into_iter().map(str::to_string).collect();
                q.attribution_medium = mediums.into_iter().map(str::to_string).collect();
                q.attribution_campaign = campaigns.into_iter().map(str::to_string).collect();
                q.prompts_keys = prompts.into_iter().map(str::to_string).collect();
                q.unique = unique;
                q.results_count = count;
                q.results_skip = skip;
                q
            },
        )
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec(call_strategy(), 1..10).prop_map(Op::Write),
        2 => (
            proptest::collection::vec(proptest::collection::vec(call_strategy(), 0..8), 1..5),
            1usize..20,
        )
            .prop_map(|(batches, rows)| Op::Import(batches, rows)),
        2 => proptest::collection::vec((0usize..42).prop_map(|i| format!("CA{i:02}")), 1..5).prop_map(Op::Delete),
        1 => Just(Op::Reopen),
        1 => Just(Op::Compact),
        4 => (
            proptest::collection::vec(query_strategy(), 1..6),
            proptest::collection::vec((0usize..42).prop_map(|i| format!("CA{i:02}")), 0..3),
        )
            .prop_map(|(q, g)| Op::Check(q, g)),
    ]
}

/// What a write error says, in a form both sides produce.
fn write_error_kind(e: &StoreError) -> String {
    match e {
        StoreError::InvalidRecord { index, .. } => format!("invalid record {index}"),
        StoreError::PropertyBound {
            call_sid, bound_to, ..
        } => format!("{call_sid} bound to {bound_to}"),
        other => format!("unexpected: {other}"),
    }
}

fn check_queries(
    store: &Store,
    model: &Reference,
    queries: &[Query],
    gets: &[String],
) -> Result<(), TestCaseError> {
    for q in queries {
        let expected = model.query(q);
        match (store.query(q), expected) {
            (Ok(got), Ok(want)) => {
                let got: Vec<&str> = got.iter().map(|c| c.call_sid.as_str()).collect();
                let want_sids: Vec<&str> = want.iter().map(|c| c.call_sid.as_str()).collect();
                prop_assert_eq!(got, want_sids, "query {:?}", q);
            }
            (Err(Error::Api(got)), Err(want)) => {
                prop_assert_eq!(got.code, want.code, "query {:?}", q)
            }
            (got, want) => prop_assert!(false, "query {:?}: store {:?}, model {:?}", q, got, want),
        }
        match (store.count(q), model.count(q)) {
            (Ok(got), Ok(want)) => prop_assert_eq!(got, want, "count {:?}", q),
            (Err(Error::Api(_)), Err(_)) => {}
            (got, want) => prop_assert!(false, "count {:?}: store {:?}, model {:?}", q, got, want),
        }
    }
    // Whole records, through every field, on an unfiltered page of each scope.
    for account in ACCOUNTS {
        let q = Query::account(account).count(1000);
        prop_assert_eq!(
            store
                .query(&q)
                .map_err(|e| TestCaseError::fail(e.to_string()))?,
            model
                .query(&q)
                .map_err(|e| TestCaseError::fail(e.to_string()))?
        );
    }
    for sid in gets {
        prop_assert_eq!(
            store
                .get(sid)
                .map_err(|e| TestCaseError::fail(e.to_string()))?,
            model.get(sid),
            "get {}",
            sid
        );
    }
    Ok(())
}

/// The store's counts of calls, and of accounts and properties with calls, and its date
/// range, against the model's calls.
fn check_stats(store: &Store, model: &Reference) -> Result<(), TestCaseError> {
    let stats = store
        .stats()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let distinct = |field: fn(&Call) -> &str| {
        model
            .calls()
            .iter()
            .map(field)
            .collect::<std::collections::HashSet<_>>()
            .len() as u64
    };
    prop_assert_eq!(stats.calls, model.calls().len() as u64, "calls");
    prop_assert_eq!(stats.accounts, distinct(|c| &c.account_sid), "accounts");
    let dates = model.calls().iter().map(|c| c.date_start);
    let range = dates.clone().min().zip(dates.max());
    prop_assert_eq!(stats.date_range, range, "date range");
    prop_assert_eq!(
        stats.properties,
        distinct(|c| &c.property_sid),
        "properties"
    );
    Ok(())
}

/// Runs an import of `batches` and checks each answer against the model: a batch with an
/// invalid record is refused alone, as the model refuses it; the batches held are written
/// (once `rows` calls are held, and by `finish`) as the model writes them in one batch, or, if
/// that is refused, one by one as the model does, up to the first refused, after which the
/// import writes nothing more.
fn check_import(
    store: &Store,
    model: &mut Reference,
    batches: Vec<Vec<Call>>,
    rows: usize,
) -> Result<(), TestCaseError> {
    let mut import = store.import().with_segment_rows(rows);
    // Batches accepted and not written yet.
    let mut held: Vec<Vec<Call>> = Vec::new();
    let mut accepted = 0;
    let mut last = None;
    for batch in batches {
        let got = import.write(batch.clone());
        if let Err(Error::Store(e @ StoreError::InvalidRecord { .. })) = &got {
            let want = model.clone().write(batch);
            prop_assert!(want.is_err(), "import refused {:?}; the model did not", e);
            prop_assert_eq!(write_error_kind(e), write_error_kind(&want.unwrap_err()));
            continue;
        }
        accepted += 1;
        if batch.is_empty() && held.is_empty() && got.is_ok() {
            // Nothing to hold: counted as written at once.
            prop_assert_eq!(import.batches_written(), accepted);
            continue;
        }
        held.push(batch);
        match got {
            Ok(()) if import.held() == 0 => {
                prop_assert!(model.write_segment(std::mem::take(&mut held)).is_ok());
                prop_assert_eq!(import.batches_written(), accepted);
            }
            Ok(()) => {
                prop_assert_eq!(import.held(), held.iter().map(Vec::len).sum::<usize>());
                prop_assert_eq!(import.batches_written(), accepted - held.len());
            }
            Err(got) => {
                last = Some((got, std::mem::take(&mut held)));
                break;
            }
        }
    }
    let Some((got, held)) = last else {
        // Finish writes the rest.
        let got = import.finish();
        match (got, model.write_segment(held)) {
            (Ok(_), Ok(())) => {}
            (Err(Error::Store(got)), Err((want, _))) => {
                prop_assert_eq!(write_error_kind(&got), write_error_kind(&want))
            }
            (got, want) => prop_assert!(false, "finish: store {:?}, model {:?}", got, want),
        }
        return Ok(());
    };
    let before = accepted - held.len();
    match (got, model.write_segment(held)) {
        (Error::Store(got), Err((want, written))) => {
            prop_assert_eq!(write_error_kind(&got), write_error_kind(&want));
            prop_assert_eq!(import.batches_written(), before + written);
        }
        (got, want) => prop_assert!(false, "import: store {:?}, model {:?}", got, want),
    }
    // The import has ended.
    let call = Call::new("AC1", "PR1", "CA00", 1, "", Disposition::Answered);
    let after = import.write(vec![call]);
    prop_assert!(
        matches!(after, Err(Error::Store(StoreError::ImportEnded))),
        "{:?}",
        after
    );
    let after = import.finish();
    prop_assert!(
        matches!(after, Err(Error::Store(StoreError::ImportEnded))),
        "{:?}",
        after
    );
    Ok(())
}

/// Runs a sequence on a file store (`on_file`, where `Reopen` closes and reopens the file) or on
/// an in-memory store (faster: no fsync; `Reopen` does nothing), whose segments of at most
/// `small_rows` rows are small (their indexes built from their records by the queries and
/// merges that read them).
fn run(
    ops: Vec<Op>,
    merge_factor: usize,
    small_rows: usize,
    on_file: bool,
) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let path = dir.path().join("calls.redb");
    let open = |path: &std::path::Path| -> Result<Store, TestCaseError> {
        let opened = if on_file {
            Store::open_or_create(path)
        } else {
            Store::in_memory()
        };
        let mut s = opened.map_err(|e| TestCaseError::fail(e.to_string()))?;
        s.set_merge_factor(merge_factor);
        s.set_small_segment_rows(small_rows);
        Ok(s)
    };
    let mut store = open(&path)?;
    let mut model = Reference::new();
    for op in ops {
        match op {
            Op::Write(batch) => {
                let got = store.write(batch.clone());
                let want = model.write(batch);
                match (got, want) {
                    (Ok(_), Ok(())) => {}
                    (Err(Error::Store(got)), Err(want)) => {
                        prop_assert_eq!(write_error_kind(&got), write_error_kind(&want))
                    }
                    (got, want) => prop_assert!(false, "write: store {:?}, model {:?}", got, want),
                }
            }
            Op::Import(batches, rows) => check_import(&store, &mut model, batches, rows)?,
            Op::Delete(sids) => {
                let got = store
                    .delete(&sids)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(got, model.delete(&sids));
            }
            Op::Reopen if on_file => {
                drop(store);
                store = open(&path)?;
            }
            Op::Reopen => {}
            Op::Compact => store
                .compact()
                .map_err(|e| TestCaseError::fail(e.to_string()))?,
            Op::Check(queries, gets) => {
                check_queries(&store, &model, &queries, &gets)?;
                check_stats(&store, &model)?;
            }
        }
        // Merges, compaction and deletes leave no entry of a segment they removed.
        store
            .verify()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    check_stats(&store, &model)?;
    // A final full check of every scope and unique mode.
    let mut finals = Vec::new();
    for unique in [
        UniqueFilter::All,
        UniqueFilter::Unique,
        UniqueFilter::Repeat,
    ] {
        for a in ACCOUNTS {
            finals.push(Query::account(a).unique(unique).count(1000));
        }
        for (p, _) in PROPERTIES {
            finals.push(Query::property(p).unique(unique).count(1000));
        }
    }
    let all: Vec<String> = (0..42).map(|i| format!("CA{i:02}")).collect();
    check_queries(&store, &model, &finals, &all)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000),
        max_shrink_iters: 2000,
        .. ProptestConfig::default()
    })]

    #[test]
    fn engine_matches_model(
        ops in proptest::collection::vec(op_strategy(), 1..25),
        factor in 2usize..5,
        // No small segment, some (batches and merges on both sides of the limit), or all.
        small_rows in prop_oneof![Just(0usize), 1usize..40, Just(DEFAULT_SMALL_SEGMENT_ROWS)],
        on_file in proptest::bool::weighted(0.25),
    ) {
        run(ops, factor, small_rows, on_file)?;
    }
}

/// `stats` gives the date range of the calls stored, leaving out deleted and replaced ones, in
/// a segment that stores its `dates` entries and in a small one (which does not).
#[test]
fn stats_date_range_leaves_removed_calls_out() {
    for small_rows in [0, 1_000] {
        let mut store = Store::in_memory().unwrap();
        store.set_small_segment_rows(small_rows);
        let call = |account: &str, sid: &str, date: u32| {
            let property = format!("PR{account}");
            Call::new(
                account,
                property,
                sid,
                date,
                "+15550100",
                Disposition::Answered,
            )
        };
        let range = |store: &Store| store.stats().unwrap().date_range;
        store
            .write(vec![
                call("AC1", "CA1", 10),
                call("AC2", "CA2", 20),
                call("AC1", "CA3", 30),
            ])
            .unwrap();
        assert_eq!(range(&store), Some((10, 30)), "small_rows {small_rows}");
        store.delete(&["CA3"]).unwrap();
        assert_eq!(range(&store), Some((10, 20)), "small_rows {small_rows}");
        store.write(vec![call("AC1", "CA1", 15)]).unwrap();
        assert_eq!(range(&store), Some((15, 20)), "small_rows {small_rows}");
        store.delete(&["CA1", "CA2"]).unwrap();
        assert_eq!(range(&store), None, "small_rows {small_rows}");
    }
}
