//! The cost of paging and writing, counted (records read, records and postings written), never
//! timed: a deep page does not sort or read all matches, and a small write into a large store
//! rewrites a bounded amount.

use callstore::{Call, Disposition, Query, Store};

const CALLS: u32 = 200_000;

mod common;
use common::Rng;

fn call(rng: &mut Rng, i: u32) -> Call {
    // Four in five calls in one big account; dates with many ties, in no particular order.
    let account = if rng.below(5) == 0 { "AC2" } else { "AC1" };
    let property = if account == "AC1" { "PR1" } else { "PR2" };
    let date = 1_600_000_000 + rng.below(50_000) as u32;
    let mut c = Call::new(
        account,
        property,
        format!("CA{i:08}"),
        date,
        "+15550100",
        Disposition::ALL[rng.below(5) as usize],
    );
    c.from = format!("+1555{:07}", rng.below(60_000));
    c
}

/// A store of 200,000 calls written in 40 out-of-order batches, and the calls themselves.
fn build() -> (Store, Vec<Call>) {
    let store = Store::in_memory().expect("store");
    let mut rng = Rng(7);
    let calls: Vec<Call> = (0..CALLS).map(|i| call(&mut rng, i)).collect();
    for batch in calls.chunks(5_000) {
        store.write(batch.to_vec()).expect("write");
    }
    (store, calls)
}

#[test]
fn a_deep_page_reads_only_its_records() {
    let (store, calls) = build();
    let segments = store.stats().expect("stats").segments;
    assert!(
        segments >= 2,
        "the page must be merged across segments, got {segments}"
    );

    // The naive answer: filter, sort, slice.
    let mut expected: Vec<&Call> = calls.iter().filter(|c| c.account_sid == "AC1").collect();
    expected.sort_by(|a, b| (a.date_start, &a.call_sid).cmp(&(b.date_start, &b.call_sid)));
    assert!(expected.len() > 150_200);
    let want: Vec<&str> = expected[150_000..150_200]
        .iter()
        .map(|c| c.call_sid.as_str())
        .collect();

    let before = store.counters().records_read;
    let page = store
        .query(&Query::account("AC1").skip(150_000).count(200))
        .expect("query");
    let read = store.counters().records_read - before;
    let got: Vec<&str> = page.iter().map(|c| c.call_sid.as_str()).collect();
    assert_eq!(got, want);
    eprintln!("page of 200 at skip 150,000 over {segments} segments: {read} records read");
    // The page, one look-ahead record per segment, and the calls sharing the first call's second.
    assert!(
        read <= 200 + segments + 16,
        "a page of 200 at skip 150,000 read {read} records over {segments} segments"
    );

    // One segment: the page is a select and the page's own reads.
    store.compact().expect("compact");
    let before = store.counters().records_read;
    let page = store
        .query(&Query::account("AC1").skip(150_000).count(200))
        .expect("query");
    assert_eq!(store.counters().records_read - before, 200);
    let got: Vec<&str> = page.iter().map(|c| c.call_sid.as_str()).collect();
    assert_eq!(got, want);
}

#[test]
fn a_small_write_rewrites_a_bounded_amount() {
    let (mut store, _) = build();
    store.compact().expect("compact");
    let mut rng = Rng(99);
    // 100 calls: new ones, earlier calls of known callers (flipping Unique flags in the big
    // segment) and replacements of stored calls (tombstones in the big segment).
    let batch = |rng: &mut Rng, round: u32| -> Vec<Call> {
        (0..100)
            .map(|i| {
                let id = if i % 4 == 0 {
                    rng.below(u64::from(CALLS)) as u32
                } else {
                    CALLS + round * 100 + i
                };
                let mut c = call(rng, id);
                c.date_start -= 100_000;
                c
            })
            .collect()
    };
    let before = store.counters();
    store.write(batch(&mut rng, 0)).expect("write");
    let after = store.counters();
    assert_eq!(
        after.merges, before.merges,
        "no merge for one small segment"
    );
    assert_eq!(after.records_written - before.records_written, 100);
    let postings = after.postings_written - before.postings_written;
    let bytes = after.posting_bytes_written - before.posting_bytes_written;
    // The new segment's postings (a few per call) and the big segment's flip and tombstone sets.
    eprintln!("100 calls into {CALLS}: {postings} postings, {bytes} bytes of postings written");
    assert!(postings <= 100 * 8 + 8, "{postings} postings written");
    assert!(bytes <= 64 * 1024, "{bytes} posting bytes written");

    // Amortized over many writes, merges rewrite each call a logarithmic number of times.
    store.set_merge_factor(8);
    let before = store.counters();
    for round in 1..=64 {
        store.write(batch(&mut rng, round)).expect("write");
    }
    let after = store.counters();
    let written = after.records_written - before.records_written;
    eprintln!(
        "64 writes of 100 calls: {written} records written, {} merges",
        after.merges - before.merges
    );
    assert!(
        written <= 6_400 * 4,
        "64 writes of 100 calls rewrote {written} records (store of {CALLS})"
    );
    assert!(after.merges > before.merges, "merges ran");
}

/// A first page defers filters that keep most of the scope's rows and tests them on the rows it
/// reads. Two filters that each keep half of the rows but together keep only a few (dispositions
/// early, `To` numbers late) defeat the estimate: the page must give up within its budget of row
/// tests, apply the filters whole and still answer as the naive model does, reading few records
/// besides those it returns.
#[test]
fn a_first_page_with_correlated_filters_answers_exactly() {
    use callstore::reference::Reference;
    let store = Store::in_memory().expect("store");
    let mut model = Reference::new();
    let calls: Vec<Call> = (0..20_000u32)
        .map(|i| {
            let early = i < 10_000;
            let mut c = Call::new(
                "AC1",
                "PR1",
                format!("CA{i:08}"),
                1_600_000_000 + i,
                // Late calls go to the number asked for; a few early ones too.
                if early && i % 997 != 0 {
                    "+15550100"
                } else {
                    "+15550199"
                },
                // Early calls are Answered; a few late ones too.
                if early || i % 1_009 == 0 {
                    Disposition::Answered
                } else {
                    Disposition::Busy
                },
            );
            c.from = format!("+1555{:07}", i % 3_000);
            c
        })
        .collect();
    store.write(calls.clone()).expect("write");
    model.write(calls).expect("model write");
    for count in [1, 5, 200] {
        let q = Query::account("AC1")
            .disposition(Disposition::Answered)
            .to("+15550199")
            .count(count);
        let want = model.query(&q).expect("model");
        assert!(
            !want.is_empty() && want.len() < 40,
            "{} matches",
            want.len()
        );
        let before = store.counters().records_read;
        let got = store.query(&q).expect("query");
        assert_eq!(got, want, "count {count}");
        // The page's records, plus those of a first try that gave up (at most as many again).
        let read = store.counters().records_read - before;
        assert!(
            read <= 2 * got.len() as u64,
            "count {count}: {read} records read for {}",
            got.len()
        );
        assert_eq!(
            store.count(&q).expect("count"),
            model.count(&q).expect("model count")
        );
    }
}
