//! Opening, creating and refusing files: the format marker and version, files that are not
//! stores (left untouched), and data surviving a reopen.

use callstore::{Call, Disposition, Error, FORMAT_VERSION, Query, Store, StoreError, UniqueFilter};

fn sample(sid: &str, date: u32) -> Call {
    Call::new("AC1", "PR1", sid, date, "+15550100", Disposition::Answered)
}

fn open_err(path: &std::path::Path) -> StoreError {
    match Store::open(path) {
        Err(Error::Store(e)) => e,
        Err(other) => panic!("expected a store error, got {other}"),
        Ok(_) => panic!("{} opened", path.display()),
    }
}

#[test]
fn data_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.redb");
    {
        let store = Store::create(&path).unwrap();
        store
            .write(vec![sample("CA2", 20), sample("CA1", 10)])
            .unwrap();
        store.delete(&["CA2"]).unwrap();
    }
    let store = Store::open(&path).unwrap();
    let sids: Vec<String> = store
        .query(&Query::account("AC1"))
        .unwrap()
        .into_iter()
        .map(|c| c.call_sid)
        .collect();
    assert_eq!(sids, ["CA1"]);
    assert_eq!(store.stats().unwrap().format_version, FORMAT_VERSION);
}

#[test]
fn create_refuses_an_existing_file_and_open_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.redb");
    std::fs::write(&path, b"keep me").unwrap();
    assert!(matches!(
        Store::create(&path),
        Err(Error::Store(StoreError::Io { .. }))
    ));
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    let missing = dir.path().join("missing.redb");
    let e = open_err(&missing);
    assert!(e.to_string().contains("missing.redb"), "{e}");
    assert!(!missing.exists(), "open must not create a file");
}

#[test]
fn files_that_are_not_stores_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 3] = [
        ("empty.redb", b"", "empty"),
        ("text.redb", b"AccountSid,CallSid\nAC1,CA1\n", "redb header"),
        (
            "binary.redb",
            &[
                0xFF, 0x00, 0x13, 0x37, 0x42, 0x99, 0x01, 0x02, 0x03, 0x04, 0x05,
            ],
            "redb header",
        ),
    ];
    for (name, bytes, says) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let e = open_err(&path);
        assert!(matches!(e, StoreError::NotAStore { .. }), "{name}: {e}");
        assert!(
            e.to_string().contains(name) && e.to_string().contains(says),
            "{e}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name} was modified");
    }
    let e = open_err(dir.path());
    assert!(e.to_string().contains("directory"), "{e}");
}

#[test]
fn a_redb_file_of_another_program_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("stuff");
            txn.open_table(def).unwrap().insert("x", 1).unwrap();
        }
        txn.commit().unwrap();
    }
    let e = open_err(&path);
    assert!(matches!(e, StoreError::NotAStore { .. }), "{e}");
}

#[test]
fn a_store_of_a_future_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.redb");
    drop(Store::create(&path).unwrap());
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
            let mut table = txn.open_table(meta).unwrap();
            table
                .insert("callstore_format_version", u64::from(FORMAT_VERSION) + 1)
                .unwrap();
        }
        txn.commit().unwrap();
    }
    match open_err(&path) {
        StoreError::FormatVersion {
            found, expected, ..
        } => {
            assert_eq!((found, expected), (FORMAT_VERSION + 1, FORMAT_VERSION));
        }
        other => panic!("expected a format version error, got {other}"),
    }
}

#[test]
fn a_second_open_of_a_store_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.redb");
    let _first = Store::create(&path).unwrap();
    let e = open_err(&path);
    assert!(matches!(e, StoreError::InUse { .. }), "{e}");
}

#[test]
fn shrink_file_gives_back_freed_pages_and_keeps_every_answer() {
    use callstore::generate::{GenerateOptions, Generator};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.redb");
    let mut store = Store::create(&path).unwrap();
    let calls: Vec<Call> = Generator::new(&GenerateOptions {
        calls: 11_000,
        seed: 3,
        accounts: 4,
    })
    .collect();
    let mut model = callstore::reference::Reference::new();
    for batch in calls.chunks(1_100) {
        store.write(batch.to_vec()).unwrap();
        model.write(batch.to_vec()).unwrap();
    }
    let gone: Vec<&str> = calls
        .iter()
        .step_by(3)
        .map(|c| c.call_sid.as_str())
        .collect();
    store.delete(&gone).unwrap();
    model.delete(&gone);
    store.compact().unwrap();
    // Pages and counts as the naive model gives them, for an account, a property, and the
    // Unique/Repeat flags that the merge and the file rewrite carry.
    let queries = [
        Query::account(calls[0].account_sid.clone()).count(5_000),
        Query::property(calls[5].property_sid.clone()).skip(100),
        Query::account(calls[0].account_sid.clone())
            .unique(UniqueFilter::Unique)
            .count(300),
        Query::account(calls[0].account_sid.clone())
            .unique(UniqueFilter::Repeat)
            .skip(50),
    ];
    let same_as_model = |store: &Store| {
        for q in &queries {
            assert_eq!(store.query(q).unwrap(), model.query(q).unwrap(), "{q:?}");
            assert_eq!(store.count(q).unwrap(), model.count(q).unwrap(), "{q:?}");
        }
    };
    same_as_model(&store);
    let account = calls[0].account_sid.clone();
    let query = Query::account(account).count(1_000).skip(500);
    let before = store.query(&query).unwrap();
    let bytes_before = store.stats().unwrap().file_bytes.unwrap();
    store.shrink_file().unwrap();
    let bytes_after = store.stats().unwrap().file_bytes.unwrap();
    assert!(
        bytes_after < bytes_before,
        "{bytes_before} -> {bytes_after} bytes"
    );
    assert_eq!(store.query(&query).unwrap(), before);
    assert_eq!(before.len(), 1_000);
    same_as_model(&store);
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.query(&query).unwrap(), before);
    same_as_model(&store);
    assert_eq!(store.get(&calls[0].call_sid).unwrap(), None);
    assert_eq!(
        store.get(&calls[1].call_sid).unwrap().as_ref(),
        Some(&calls[1])
    );
}

/// A format 3 file (every segment's indexes stored, headers without the small-segment flag)
/// opens, is marked as the current version, answers as before, and takes writes that make
/// small segments next to its old ones.
#[test]
fn a_format_3_store_opens_and_is_marked_current() {
    use callstore::OLDEST_FORMAT_VERSION;
    use callstore::generate::{GenerateOptions, Generator};
    use callstore::reference::Reference;
    use redb::ReadableTable;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.redb");
    let calls: Vec<Call> = Generator::new(&GenerateOptions {
        calls: 1_200,
        seed: 3,
        accounts: 3,
    })
    .collect();
    let mut model = Reference::new();
    {
        // Format 3 stored every index: no segment small.
        let mut store = Store::create(&path).unwrap();
        store.set_small_segment_rows(0);
        for batch in calls[..900].chunks(100) {
            store.write(batch.to_vec()).unwrap();
            model.write(batch.to_vec()).unwrap();
        }
    }
    {
        // Make it a format 3 file: headers end before the flag (0 here), and the marker says 3.
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<u32, &[u8]> = redb::TableDefinition::new("segments");
            let mut segments = txn.open_table(def).unwrap();
            let old: Vec<(u32, Vec<u8>)> = segments
                .iter()
                .unwrap()
                .map(|e| {
                    let (k, v) = e.unwrap();
                    (k.value(), v.value().to_vec())
                })
                .collect();
            assert!(old.len() > 1, "several segments");
            for (seg, mut bytes) in old {
                assert_eq!(bytes.pop(), Some(0), "segment {seg} is not small");
                segments.insert(seg, bytes.as_slice()).unwrap();
            }
            let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
            txn.open_table(meta)
                .unwrap()
                .insert("callstore_format_version", u64::from(OLDEST_FORMAT_VERSION))
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let mut accounts: Vec<&str> = calls.iter().map(|c| c.account_sid.as_str()).collect();
    accounts.sort_unstable();
    accounts.dedup();
    let answers = |store: &Store, model: &Reference| {
        for &account in &accounts {
            for unique in [
                UniqueFilter::All,
                UniqueFilter::Unique,
                UniqueFilter::Repeat,
            ] {
                let mut q = Query::account(account).count(1_000);
                q.unique = unique;
                assert_eq!(
                    store.query(&q).unwrap(),
                    model.query(&q).unwrap(),
                    "{account} {unique:?}"
                );
            }
        }
    };
    let store = Store::open(&path).unwrap();
    assert_eq!(store.stats().unwrap().format_version, FORMAT_VERSION);
    answers(&store, &model);
    // Small segments next to the format 3 ones, and merges of both kinds.
    for batch in calls[900..].chunks(50) {
        store.write(batch.to_vec()).unwrap();
        model.write(batch.to_vec()).unwrap();
    }
    answers(&store, &model);
    drop(store);
    let store = Store::open(&path).unwrap();
    answers(&store, &model);
}
