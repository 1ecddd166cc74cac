//! The SQLite side of the benchmarks answers every suite request exactly as callstore does (the
//! same CallSids in the same order, the same decoded calls, the same counts), at a small size, so
//! that the side-by-side figures compare equal work. Each request must return something, so the
//! check cannot pass on empty answers.

#[path = "../benches/support/mod.rs"]
mod support;

use support::{Dataset, Kind, LIVE_BATCH, check_equivalence, create_sqlite_incremental};

const CALLS: u64 = 20_000;

#[test]
fn sqlite_returns_the_same_rows_as_callstore_for_every_suite_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = Dataset::build(dir.path(), CALLS, false);
    let suite = data.suite();
    assert!(suite.len() >= 14, "the suite has {} requests", suite.len());
    let store = data.store();
    let conn = data.sqlite();
    let rows = check_equivalence(&store, &conn, &suite);
    for (r, n) in suite.iter().zip(&rows) {
        eprintln!("{:<26} {:>6}  {}", r.name, n, r.request);
        assert!(
            *n > 0,
            "suite request {} ({}) returned nothing",
            r.name,
            r.request
        );
    }
    // The paged requests that the suite means to be full pages are.
    for (r, n) in suite.iter().zip(&rows) {
        if r.kind == Kind::Page && ["account_page", "skip_0", "skip_10k"].contains(&r.name.as_str())
        {
            assert_eq!(*n, 200, "{} should fill a page", r.name);
        }
    }
}

/// The incremental SQLite loader of the live-feed bench (Unique/Repeat kept up to date by SQL
/// look-ups, calls arriving out of order) ends in the same answers as callstore fed the same way.
#[test]
fn incremental_sqlite_load_of_a_late_feed_matches_callstore() {
    let dir = tempfile::tempdir().expect("temp dir");
    let feed = support::live_feed(CALLS);
    assert!(support::out_of_order(&feed) > 0, "the feed is in order");
    let store = support::create_store(&dir.path().join("live.redb"));
    let mut conn = create_sqlite_incremental(&dir.path().join("live.db"), false);
    for batch in feed.chunks(LIVE_BATCH * 10) {
        store.write(batch.to_vec()).expect("write");
        support::insert_incremental(&mut conn, batch).expect("insert");
    }
    let picks = support::Picks::from_sqlite(&conn);
    let suite = support::suite(&picks);
    let rows = check_equivalence(&store, &conn, &suite);
    for (r, n) in suite.iter().zip(&rows) {
        assert!(
            *n > 0,
            "suite request {} ({}) returned nothing",
            r.name,
            r.request
        );
    }
}
