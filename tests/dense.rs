//! Queries over one large account, whose postings are kept dense over tens of thousands of rows
//! in one segment, against the naive model: random combinations of filters, dates, Unique,
//! skip and count, on a compacted store, then after late calls, upserts and deletes have added
//! a segment and tombstones. Also a large batch's checks (its first invalid record, the last
//! record of a repeated CallSid) against the model's.

use callstore::generate::{GenerateOptions, Generator};
use callstore::reference::Reference;
use callstore::{Call, Disposition, Error, Query, Store, StoreError, UniqueFilter};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestRunner};

/// Values seen in the big account, per field, to build filters from.
struct Vocabulary {
    account: String,
    property: String,
    dates: (u32, u32),
    sources: Vec<String>,
    mediums: Vec<String>,
    campaigns: Vec<String>,
    contents: Vec<String>,
    tos: Vec<String>,
    prompts: Vec<String>,
}

fn vocabulary(calls: &[Call]) -> Vocabulary {
    let mut per_account = std::collections::HashMap::<&str, usize>::new();
    for c in calls {
        *per_account.entry(c.account_sid.as_str()).or_default() += 1;
    }
    let (account, _) = per_account
        .into_iter()
        .max_by_key(|&(a, n)| (n, a))
        .expect("calls");
    let mine: Vec<&Call> = calls.iter().filter(|c| c.account_sid == account).collect();
    let top = |values: &mut dyn Iterator<Item = String>| -> Vec<String> {
        let mut seen = std::collections::HashMap::<String, usize>::new();
        for v in values {
            *seen.entry(v).or_default() += 1;
        }
        let mut seen: Vec<(usize, String)> = seen.into_iter().map(|(v, n)| (n, v)).collect();
        seen.sort_by(|a, b| b.cmp(a));
        // Values on 1 call in 16 or more (kept dense), and the most frequent of the others.
        let dense = seen
            .iter()
            .take_while(|(n, _)| n * 16 >= mine.len())
            .count();
        seen.into_iter().take(dense + 1).map(|(_, v)| v).collect()
    };
    let set = |f: &dyn Fn(&Call) -> Option<String>| -> Vec<String> {
        top(&mut mine.iter().filter_map(|c| f(c)))
    };
    let prompts = top(&mut mine
        .iter()
        .filter_map(|c| c.prompts_keys.as_deref())
        .flat_map(|p| {
            let keys: Vec<&str> = p.split(',').collect();
            (1..=keys.len().min(2))
                .map(|n| keys[..n].join(","))
                .collect::<Vec<_>>()
        }));
    let dates = mine.iter().map(|c| c.date_start);
    Vocabulary {
        account: account.to_string(),
        property: mine[mine.len() / 2].property_sid.clone(),
        dates: (dates.clone().min().unwrap_or(0), dates.max().unwrap_or(0)),
        sources: set(&|c| c.attribution_source.clone()),
        mediums: set(&|c| c.attribution_medium.clone()),
        campaigns: set(&|c| c.attribution_campaign.clone()),
        contents: set(&|c| c.attribution_content.clone()),
        tos: set(&|c| Some(c.to.clone())),
        prompts,
    }
}

/// No value two times in three (most queries have a few filters, of frequent values).
fn some(values: &[String], max: usize) -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        2 => Just(Vec::new()),
        1 => proptest::collection::vec(select(values.to_vec()), 1..=max),
    ]
}

fn query_strategy(v: &Vocabulary) -> impl Strategy<Value = Query> {
    let (first, last) = v.dates;
    let span = last - first + 1;
    let account = v.account.clone();
    let property = v.property.clone();
    (
        any::<bool>(),
        (
            prop_oneof![2 => Just(None), 1 => (0..span).prop_map(Some)],
            prop_oneof![2 => Just(None), 1 => (0..span).prop_map(Some)],
        ),
        prop_oneof![
            1 => Just(Vec::new()),
            1 => proptest::collection::vec(select(&Disposition::ALL[..]), 1..=2),
        ],
        (
            some(&v.sources, 2),
            some(&v.mediums, 1),
            some(&v.campaigns, 1),
            some(&v.contents, 1),
        ),
        (some(&v.tos, 2), some(&v.prompts, 2)),
        select(
            &[
                UniqueFilter::All,
                UniqueFilter::Unique,
                UniqueFilter::Repeat,
            ][..],
        ),
        (
            prop_oneof![Just(200u32), 1u32..50],
            prop_oneof![2 => Just(0u32), 1 => 0u32..500, 1 => 0u32..20_000],
        ),
    )
        .prop_map(
            move |(
                by_property,
                (from, to),
                dispositions,
                (sources, mediums, campaigns, contents),
                (tos, prompts),
                unique,
                (count, skip),
            )| {
                let mut q = match by_property {
                    true => Query::property(property.clone()),
                    false => Query::account(account.clone()),
                };
                // Date_To after Date_From, when both are given.
                q.date_from = from.map(|d| first + d);
                q.date_to = to.map(|d| q.date_from.unwrap_or(first) + d + 1);
                q.dispositions = dispositions;
                q.attribution_source = sources;
                q.attribution_medium = mediums;
                q.attribution_campaign = campaigns;
                q.attribution_content = contents;
                q.to = tos;
                q.prompts_keys = prompts;
                q.unique = unique;
                q.results_count = count;
                q.results_skip = skip;
                q
            },
        )
}

/// Every random query answers as the model does: the count, and the page (whole calls).
fn check_queries(store: &Store, model: &Reference, v: &Vocabulary, cases: u32) {
    let mut runner = TestRunner::new(Config::with_cases(cases));
    runner
        .run(&query_strategy(v), |q| {
            prop_assert_eq!(
                store.count(&q).expect("count"),
                model.count(&q).expect("model")
            );
            let got = store.query(&q).expect("query");
            let want = model.query(&q).expect("model");
            prop_assert_eq!(got.len(), want.len());
            prop_assert!(got == want, "the pages differ");
            Ok(())
        })
        .expect("every query answers as the model");
}

#[test]
fn a_large_account_answers_as_the_model() {
    // Every index stored, and (the default) the segments' indexes built from their records.
    for small_rows in [0, callstore::DEFAULT_SMALL_SEGMENT_ROWS] {
        large_account(small_rows);
    }
}

fn large_account(small_rows: usize) {
    let options = GenerateOptions {
        calls: 24_000,
        seed: 11,
        accounts: 1,
    };
    let calls: Vec<Call> = Generator::new(&options).collect();
    let v = vocabulary(&calls);
    let mut store = Store::in_memory().expect("store");
    store.set_small_segment_rows(small_rows);
    let mut model = Reference::new();
    let (bulk, late) = calls.split_at(18_000);
    for batch in bulk.chunks(6_000) {
        store.write(batch.to_vec()).expect("write");
        model.write(batch.to_vec()).expect("model write");
    }
    store.compact().expect("compact");
    let big = calls.iter().filter(|c| c.account_sid == v.account).count();
    assert!(big > 16_384, "the big account has {big} calls");
    check_queries(&store, &model, &v, 40);

    // Late calls in a segment of their own, some of them replacing compacted calls (new
    // dispositions), and deletes: tombstones in the dense segment, Unique flags that flip. The
    // batch is large enough (over 4,096 calls) to be built on a second thread, as the bulk
    // batches above are.
    let mut replaced: Vec<Call> = bulk
        .iter()
        .step_by(97)
        .map(|c| {
            let mut c = c.clone();
            c.disposition = Disposition::ALL[(c.duration % 5) as usize];
            c
        })
        .collect();
    replaced.extend_from_slice(late);
    assert!(
        replaced.len() > 4_096,
        "the late batch has {} calls",
        replaced.len()
    );
    store.write(replaced.clone()).expect("write late");
    model.write(replaced).expect("model write late");
    let gone: Vec<&str> = bulk
        .iter()
        .skip(5)
        .step_by(89)
        .map(|c| c.call_sid.as_str())
        .collect();
    assert_eq!(store.delete(&gone).expect("delete"), model.delete(&gone));
    assert!(store.stats().expect("stats").segments >= 2);
    check_queries(&store, &model, &v, 40);
}

#[test]
fn a_large_batch_is_checked_and_deduplicated_as_the_model_does() {
    // Over 4,096 calls: normalized in two halves at once, and its segment built on a second
    // thread.
    let options = GenerateOptions {
        calls: 6_000,
        seed: 5,
        accounts: 1,
    };
    let calls: Vec<Call> = Generator::new(&options).collect();
    let v = vocabulary(&calls);
    let store = Store::in_memory().expect("store");
    let mut model = Reference::new();

    // An invalid record in each half: both refuse the batch naming the first, and keep nothing.
    let mut bad = calls.clone();
    bad[4_500].to = String::new();
    bad[1_200].account_sid = " ".into();
    let want = match model.write(bad.clone()) {
        Err(StoreError::InvalidRecord { index, .. }) => index,
        other => panic!("the model took the batch: {other:?}"),
    };
    assert_eq!(want, 1_200);
    match store.write(bad) {
        Err(Error::Store(StoreError::InvalidRecord { index, .. })) => assert_eq!(index, want),
        other => panic!("the store took the batch: {other:?}"),
    }
    assert_eq!(store.stats().expect("stats").calls, 0);

    // Repeated CallSids: the last record of each wins (new dispositions and durations).
    let mut repeated = calls.clone();
    for call in calls.iter().step_by(7) {
        let mut again = call.clone();
        again.disposition = Disposition::ALL[(call.duration % 5) as usize];
        again.duration += 1;
        repeated.push(again);
    }
    store.write(repeated.clone()).expect("write");
    model.write(repeated).expect("model write");
    for call in &calls {
        assert_eq!(
            store.get(&call.call_sid).expect("get"),
            model.get(&call.call_sid),
            "{}",
            call.call_sid
        );
    }
    check_queries(&store, &model, &v, 20);
}
