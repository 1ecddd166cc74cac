//! The store: one redb file (or memory) holding calls in segments with roaring-bitmap indexes.
//!
//! Every table is declared here, once. See ARCHITECTURE.md for the storage shape.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use foldhash::{HashMap, HashMapExt};
use redb::backends::InMemoryBackend;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::counts::Pending;
use crate::error::{ApiError, ErrorCode, Result, StoreError};
use crate::exec::{self, PostingCache, ReadTables};
use crate::index::{self, Batch, MergePolicy, WriteCaches, WriteTables};
use crate::json::Response;
use crate::model::Call;
use crate::page::Page;
use crate::query::Query;
use crate::request::{Request, parse_request};

/// (segment, row) → encoded call.
pub(crate) const CALLS: TableDefinition<(u32, u32), &[u8]> = TableDefinition::new("calls");
/// (segment, first CallSid of a block) → a block of the segment's CallSids in order, each with
/// its row (see `runs`).
pub(crate) const SIDS: TableDefinition<(u32, &[u8]), &[u8]> = TableDefinition::new("sids");
/// PropertySid → (AccountSid, calls of the property not counted in `counts`, wrapping).
pub(crate) const PROPERTIES: TableDefinition<&str, (&str, u64)> =
    TableDefinition::new("properties");
/// AccountSid → (account id, calls of the account not counted in `counts`, wrapping). Ids order
/// rows inside segments.
pub(crate) const ACCOUNTS: TableDefinition<&str, (u32, u64)> = TableDefinition::new("accounts");
/// Segment id → the calls its batch added per account and property, not yet in `accounts` and
/// `properties` (see `counts`).
pub(crate) const COUNTS: TableDefinition<u32, &[u8]> = TableDefinition::new("counts");
/// Segment id → encoded segment header.
pub(crate) const SEGMENTS: TableDefinition<u32, &[u8]> = TableDefinition::new("segments");
/// (segment, posting kind, value) → serialized roaring bitmap of rows.
pub(crate) const POSTINGS: TableDefinition<(u32, u8, &str), &[u8]> =
    TableDefinition::new("postings");
/// (segment, account id, `Date_Start`) → the first row of that account and date.
pub(crate) const DATES: TableDefinition<(u32, u32, u32), u32> = TableDefinition::new("dates");
/// (segment, first key of a block) → a block of the segment's caller entries in order, each
/// (scope, scope sid, caller, `Date_Start`, CallSid) encoded as bytes that sort in that order
/// (see `index::group_key`), with its row: every call of every caller, per segment.
pub(crate) const GROUPS: TableDefinition<(u32, &[u8]), &[u8]> = TableDefinition::new("groups");
/// Segment id → the segment's membership filters over its CallSids and caller groups (see
/// `filter`).
pub(crate) const FILTERS: TableDefinition<u32, &[u8]> = TableDefinition::new("filters");
/// Name → value: the format version and id counters.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The format version this build writes.
pub const FORMAT_VERSION: u32 = 4;
/// The oldest format version this build opens. A version 3 file is a valid version 4 file
/// (version 4 stores less for small segments, and ignores what version 3 stored for them), so
/// it is opened and marked as version 4, after which older builds refuse it.
pub const OLDEST_FORMAT_VERSION: u32 = 3;
const FORMAT_KEY: &str = "callstore_format_version";
/// The first bytes of every redb file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// A store of calls in one redb file (or in memory).
///
/// Reads run on snapshots and may run from many threads at once; writes are serialized.
pub struct Store {
    db: Database,
    path: Option<PathBuf>,
    counters: CounterCells,
    merge: MergePolicy,
    /// Decoded postings shared by queries.
    postings: PostingCache,
    /// Decoded segment filters shared by writes and gets.
    caches: WriteCaches,
}

/// What a write did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Calls written (after the last-one-wins deduplication of the batch).
    pub written: usize,
    /// Of those, calls that replaced a stored call with the same CallSid.
    pub replaced: usize,
}

/// Work counters since the store was opened: what reads and writes touched.
///
/// They let tests and tools see the cost of an operation in records and postings rather than in
/// time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Call records read and decoded.
    pub records_read: u64,
    /// Call records written (new calls and calls rewritten by merges).
    pub records_written: u64,
    /// Posting bitmaps written.
    pub postings_written: u64,
    /// Bytes of posting bitmaps written.
    pub posting_bytes_written: u64,
    /// Segment merges run.
    pub merges: u64,
}

/// The live counters behind [`Counters`].
#[derive(Debug, Default)]
pub(crate) struct CounterCells {
    records_read: AtomicU64,
    records_written: AtomicU64,
    postings_written: AtomicU64,
    posting_bytes_written: AtomicU64,
    merges: AtomicU64,
}

impl CounterCells {
    pub(crate) fn add_records_read(&self, n: u64) {
        self.records_read.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_records_written(&self, n: u64) {
        self.records_written.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_postings_written(&self, n: u64, bytes: usize) {
        self.postings_written.fetch_add(n, Ordering::Relaxed);
        self.posting_bytes_written
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }
    pub(crate) fn add_merge(&self) {
        self.merges.fetch_add(1, Ordering::Relaxed);
    }
    fn snapshot(&self) -> Counters {
        Counters {
            records_read: self.records_read.load(Ordering::Relaxed),
            records_written: self.records_written.load(Ordering::Relaxed),
            postings_written: self.postings_written.load(Ordering::Relaxed),
            posting_bytes_written: self.posting_bytes_written.load(Ordering::Relaxed),
            merges: self.merges.load(Ordering::Relaxed),
        }
    }
}

/// A summary of a store's contents.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Calls stored.
    pub calls: u64,
    /// Accounts with at least one call.
    pub accounts: u64,
    /// Properties with at least one call.
    pub properties: u64,
    /// Segments.
    pub segments: u64,
    /// The format version of the file.
    pub format_version: u32,
    /// The earliest and latest `Date_Start` of the stored calls, when there are calls.
    pub date_range: Option<(u32, u32)>,
    /// The file's size in bytes (`None` in memory).
    pub file_bytes: Option<u64>,
}

/// The default merge factor: segments of a size class merge when this many exist.
pub const DEFAULT_MERGE_FACTOR: usize = 8;

/// The default most rows of a small segment (see [`Store::set_small_segment_rows`]): with
/// batches of 100 and the default merge factor, the segments of 100, 800, 6,400 and 51,200
/// calls are small, and a merge of eight of 51,200 writes a segment with every index stored.
/// Limits of 8,191 and 65,535 were measured on a live feed of 200k calls: 19.5k and 22k calls/s
/// (the merges into 51,200-call segments built and stored their indexes); reading a small
/// segment the first time costs about 6 µs a call here.
pub const DEFAULT_SMALL_SEGMENT_ROWS: usize = 65_535;

fn io_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn not_a_store(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::NotAStore {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

impl Store {
    fn from_db(db: Database, path: Option<PathBuf>) -> Store {
        Store {
            db,
            path,
            counters: CounterCells::default(),
            merge: MergePolicy {
                factor: DEFAULT_MERGE_FACTOR,
                small_rows: DEFAULT_SMALL_SEGMENT_ROWS,
            },
            postings: PostingCache::new(exec::POSTING_CACHE_BYTES),
            caches: WriteCaches::default(),
        }
    }

    /// Creates a new store file at `path`; an error if anything is there already.
    pub fn create(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        if fs::symlink_metadata(path).is_ok() {
            return Err(io_error(
                path,
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, "a file is already there"),
            )
            .into());
        }
        // Build the store under a temporary name and link it into place when it is complete,
        // so that a crash while creating leaves no half-made store at `path`.
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".creating");
        let temp = path.with_file_name(name);
        let _ = fs::remove_file(&temp); // left by a create that was killed
        let built = (|| -> Result<()> {
            let db = Database::create(&temp).map_err(|e| open_error(&temp, e))?;
            Store::from_db(db, None).initialize()?;
            fs::hard_link(&temp, path).map_err(|e| io_error(path, e))?;
            Ok(())
        })();
        let _ = fs::remove_file(&temp);
        built?;
        let db = Database::open(path).map_err(|e| open_error(path, e))?;
        Ok(Store::from_db(db, Some(path.to_path_buf())))
    }

    /// Opens an existing store file; an error if it is missing, is not a callstore file, or has
    /// another format version. The file is not changed when it is refused.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        check_header(path)?;
        // Check the marker and version read-only first, so that a refused file is not touched
        // (a writable open rewrites redb's header). A store that needs recovery after a crash
        // cannot be opened read-only; it is checked after the writable open repairs it.
        match guarded(path, || Database::builder().open_read_only(path))? {
            Ok(db) => {
                check_format(&db, path)?;
            }
            Err(redb::DatabaseError::RepairAborted) => {}
            Err(e) => return Err(open_error(path, e).into()),
        }
        let db = guarded(path, || Database::open(path))?.map_err(|e| open_error(path, e))?;
        let store = Store::from_db(db, Some(path.to_path_buf()));
        store.upgrade(check_format(&store.db, path)?)?;
        Ok(store)
    }

    /// Opens the store file at `path`, creating it when there is no file.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        match fs::symlink_metadata(path) {
            Ok(_) => Store::open(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Store::create(path),
            Err(e) => Err(io_error(path, e).into()),
        }
    }

    /// A store held in memory, gone when dropped.
    pub fn in_memory() -> Result<Store> {
        let db = Database::builder().create_with_backend(InMemoryBackend::new())?;
        let store = Store::from_db(db, None);
        store.initialize()?;
        Ok(store)
    }

    /// A store over any redb storage backend (a file wrapper that injects faults, a custom
    /// medium): created when the backend holds nothing (no bytes, a database redb never
    /// finished creating, or one without tables, as a create cut short leaves it), otherwise
    /// opened and its format checked.
    pub fn with_backend(backend: impl redb::StorageBackend) -> Result<Store> {
        let backend_error = |e: std::io::Error| {
            StoreError::Storage(redb::Error::Io(std::io::Error::other(format!(
                "the backend cannot be read: {e}"
            ))))
        };
        let len = backend.len().map_err(backend_error)?;
        if len > 0 && never_initialized(&backend, len).map_err(backend_error)? {
            backend.set_len(0).map_err(backend_error)?;
        }
        let db = Database::builder().create_with_backend(backend)?;
        let store = Store::from_db(db, None);
        let has_tables = store.db.begin_read()?.list_tables()?.next().is_some();
        if has_tables {
            store.upgrade(check_format(&store.db, Path::new("(backend)"))?)?;
        } else {
            store.initialize()?;
        }
        Ok(store)
    }

    /// Sets the merge factor: segments of one size class merge once `factor` of them exist
    /// (at least 2; default [`DEFAULT_MERGE_FACTOR`]). Larger factors make writes cheaper and
    /// queries visit more segments.
    pub fn set_merge_factor(&mut self, factor: usize) {
        self.merge.factor = factor.max(2);
    }

    /// Marks a store of an older format version that this build opens (`found`) as
    /// [`FORMAT_VERSION`], before anything is written to it.
    fn upgrade(&self, found: u32) -> Result<()> {
        if found == FORMAT_VERSION {
            return Ok(());
        }
        let txn = self.db.begin_write()?;
        {
            // Creates the tables that version 4 added (`counts`).
            drop(WriteTables::open(&txn)?);
            txn.open_table(META)?
                .insert(FORMAT_KEY, u64::from(FORMAT_VERSION))?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Sets the most calls a segment may hold and be *small* (default
    /// [`DEFAULT_SMALL_SEGMENT_ROWS`]; 0: none is). A small segment, written by a batch or a
    /// merge, stores its records, CallSids, callers and Unique flags, but not its secondary
    /// indexes: queries build those from its records when they first read it (and keep them in
    /// the posting cache), and the merge that makes a larger segment builds them to store them.
    /// Small batches (a live feed) write several times less per call; reading a small segment
    /// the first time decodes its records. Segments already written keep what they were
    /// written as.
    pub fn set_small_segment_rows(&mut self, rows: usize) {
        self.merge.small_rows = rows;
    }

    fn initialize(&self) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            drop(WriteTables::open(&txn)?);
            let mut meta = txn.open_table(META)?;
            meta.insert(FORMAT_KEY, u64::from(FORMAT_VERSION))?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Writes a batch atomically: every call inserted or replacing the stored call with its
    /// CallSid (the last of a CallSid in the batch wins), or, on any invalid record or a property
    /// bound to another account, nothing at all.
    ///
    /// Calls are normalized first ([`Call::normalize`]).
    pub fn write(&self, calls: Vec<Call>) -> Result<WriteSummary> {
        self.write_prepared(&prepare(calls)?)
    }

    /// Writes calls that [`prepare`] returned, in one durable commit.
    pub(crate) fn write_prepared(&self, upserts: &[Call]) -> Result<WriteSummary> {
        let applied = self.apply(Batch {
            upserts,
            deletes: &[],
        })?;
        Ok(WriteSummary {
            written: applied.written,
            replaced: applied.replaced,
        })
    }

    /// Deletes calls by CallSid, atomically; returns how many were stored. Unknown CallSids are
    /// not an error.
    pub fn delete<S: AsRef<str>>(&self, call_sids: &[S]) -> Result<usize> {
        let deletes: Vec<String> = call_sids.iter().map(|s| s.as_ref().to_string()).collect();
        let applied = self.apply(Batch {
            upserts: &[],
            deletes: &deletes,
        })?;
        Ok(applied.deleted)
    }

    fn apply(&self, batch: Batch<'_>) -> Result<index::Applied> {
        let txn = self.db.begin_write()?;
        let applied = {
            let mut tables = WriteTables::open(&txn)?;
            index::apply(&mut tables, batch, self.merge, &self.counters, &self.caches)?
        };
        txn.commit()?;
        Ok(applied)
    }

    /// Merges every segment into one, dropping deleted rows. Queries then visit one segment.
    pub fn compact(&self) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut tables = WriteTables::open(&txn)?;
            index::merge_all(&mut tables, self.merge, &self.counters)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Rewrites the file without the pages that writes and merges freed, so that it shrinks to
    /// about the size of its data (redb compaction: a bulk import of 1M calls leaves about a
    /// third of its file free). Needs the store to itself: no read may run meanwhile, which
    /// `&mut self` ensures. Nothing to do in memory.
    pub fn shrink_file(&mut self) -> Result<()> {
        if self.path.is_some() {
            self.db.compact()?;
        }
        Ok(())
    }

    /// The call with this CallSid, if stored.
    pub fn get(&self, call_sid: &str) -> Result<Option<Call>> {
        let txn = self.db.begin_read()?;
        // Segment ids, newest first (headers are decoded only where the CallSid is found).
        let segments = txn.open_table(SEGMENTS)?;
        let mut ids = Vec::new();
        for entry in segments.iter()?.rev() {
            ids.push(entry?.0.value());
        }
        // With one segment a filter saves nothing; with more, it skips the runs that cannot
        // hold the CallSid (segments of a snapshot are committed: their filters may be cached).
        if ids.len() > 1 {
            let mut filters = None;
            let read = |seg| -> Result<_, StoreError> {
                let filters = match &mut filters {
                    Some(f) => f,
                    None => filters.insert(txn.open_table(FILTERS)?),
                };
                index::read_filter(filters, seg)
            };
            ids = self.caches.filters.sids_may_hold(
                &ids,
                crate::filter::hash(call_sid.as_bytes()),
                read,
            )?;
        }
        // The postings table is opened only for a segment that has lost rows.
        let mut postings = None;
        let is_dead = |seg, row| -> Result<bool, StoreError> {
            let header = index::read_header(&segments, seg)?;
            if header.live == header.rows {
                return Ok(false);
            }
            let postings = match &mut postings {
                Some(p) => p,
                None => postings.insert(txn.open_table(POSTINGS)?),
            };
            Ok(index::tombstones(postings, seg, &header)?.contains(row))
        };
        let sids = txn.open_table(SIDS)?;
        let Some(loc) = index::locate(&sids, ids.into_iter(), is_dead, call_sid)? else {
            return Ok(None);
        };
        let calls = txn.open_table(CALLS)?;
        Ok(Some(index::read_call(&calls, loc, &self.counters)?))
    }

    /// A page of the calls that match a query, in (`Date_Start`, `CallSid`) order.
    ///
    /// [`Store::query_page`] returns the same calls without an allocation per field.
    pub fn query(&self, query: &Query) -> Result<Vec<Call>> {
        Ok(self.query_page(query)?.to_calls())
    }

    /// A page of the calls that match a query, in (`Date_Start`, `CallSid`) order, held in one
    /// buffer and read through borrowed [`CallRef`](crate::CallRef)s: the fastest way to read a
    /// page whose calls need not outlive it.
    pub fn query_page(&self, query: &Query) -> Result<Page> {
        let q = query.normalized()?;
        let txn = self.db.begin_read()?;
        let tables = ReadTables::open(&txn, &self.postings)?;
        let purpose = match q.results_skip {
            0 => exec::Purpose::FirstPage,
            _ => exec::Purpose::Exact,
        };
        let plan = exec::plan(&tables, &q, purpose, &self.counters)?;
        Ok(exec::page(
            &tables,
            plan,
            u64::from(q.results_skip),
            u64::from(q.results_count),
            &self.counters,
        )?)
    }

    /// The number of calls that match a query, ignoring `Results_Skip` and `Results_Count`.
    pub fn count(&self, query: &Query) -> Result<u64> {
        let q = query.normalized()?;
        let txn = self.db.begin_read()?;
        let tables = ReadTables::open(&txn, &self.postings)?;
        Ok(exec::count(&tables, &q, &self.counters)?)
    }

    /// Answers a typed request: one call (or 404 `NotFound`), or a page of calls.
    pub fn execute(&self, request: &Request) -> Result<Response> {
        match request {
            Request::Call(sid) => match self.get(sid)? {
                Some(call) => Ok(Response::Call(Box::new(call))),
                None => Err(ApiError::new(
                    ErrorCode::NotFound,
                    format!("No call with CallSid {sid:?}"),
                )
                .into()),
            },
            Request::List(query) => Ok(Response::Calls(self.query(query)?)),
        }
    }

    /// Answers a request string (path and query string), as the API would.
    ///
    /// ```
    /// # fn main() -> callstore::Result<()> {
    /// let store = callstore::Store::in_memory()?;
    /// assert_eq!(store.answer("/v2/Accounts/AC1/Calls")?.to_json(), "[]");
    /// match store.answer("/v2/Calls/CA404") {
    ///     Err(callstore::Error::Api(e)) => assert_eq!(e.status(), 404),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn answer(&self, request: &str) -> Result<Response> {
        self.execute(&parse_request(request)?)
    }

    /// Work counters since the store was opened.
    pub fn counters(&self) -> Counters {
        self.counters.snapshot()
    }

    /// Checks that every entry of the store's tables belongs to one of its segments: that merges,
    /// compaction and deletes left nothing of the segments they removed behind (such entries
    /// answer no request, but hold file space). Reads the whole store. An error names the table
    /// and the segment id of the first stray entry.
    ///
    /// ```
    /// use callstore::Store;
    /// use callstore::generate::{GenerateOptions, Generator};
    ///
    /// # fn main() -> callstore::Result<()> {
    /// let mut store = Store::in_memory()?;
    /// store.set_merge_factor(2); // two segments of a size merge into one
    /// let options = GenerateOptions { calls: 400, accounts: 3, seed: 1 };
    /// let calls: Vec<_> = Generator::new(&options).collect();
    /// for batch in calls.chunks(100) {
    ///     store.write(batch.to_vec())?;
    /// }
    /// store.verify()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn verify(&self) -> Result<()> {
        let txn = self.db.begin_read()?;
        let segments: std::collections::BTreeSet<u32> =
            index::list_segments(&txn.open_table(SEGMENTS)?)?
                .into_iter()
                .map(|(seg, _)| seg)
                .collect();
        let check = |table: &str, seg: u32| -> Result<()> {
            if segments.contains(&seg) {
                return Ok(());
            }
            Err(StoreError::Corrupt(format!(
                "table {table:?} holds an entry of segment {seg}, which the store does not list"
            ))
            .into())
        };
        for entry in txn.open_table(CALLS)?.iter()? {
            check("calls", entry?.0.value().0)?;
        }
        for (name, table) in [("sids", SIDS), ("groups", GROUPS)] {
            for entry in txn.open_table(table)?.iter()? {
                check(name, entry?.0.value().0)?;
            }
        }
        for entry in txn.open_table(POSTINGS)?.iter()? {
            check("postings", entry?.0.value().0)?;
        }
        for entry in txn.open_table(DATES)?.iter()? {
            check("dates", entry?.0.value().0)?;
        }
        for (name, table) in [("filters", FILTERS), ("counts", COUNTS)] {
            for entry in txn.open_table(table)?.iter()? {
                check(name, entry?.0.value())?;
            }
        }
        Ok(())
    }

    /// A summary of the store's contents.
    pub fn stats(&self) -> Result<StoreStats> {
        let txn = self.db.begin_read()?;
        let tables = ReadTables::open(&txn, &self.postings)?;
        // A count is the stored value plus the pending ones (see `counts`).
        let pending = Pending::read(&txn.open_table(COUNTS)?)?;
        let mut accounts = 0;
        for entry in tables.accounts.iter()? {
            let (sid, value) = entry?;
            if value.value().1.wrapping_add(pending.account(sid.value())) > 0 {
                accounts += 1;
            }
        }
        let mut properties = 0;
        for entry in tables.properties.iter()? {
            let (sid, value) = entry?;
            if value.value().1.wrapping_add(pending.property(sid.value())) > 0 {
                properties += 1;
            }
        }
        let segments = index::list_segments(&tables.segments)?;
        let mut date_range: Option<(u32, u32)> = None;
        for (seg, header) in &segments {
            let live = index::live_date_range(
                &tables.calls,
                &tables.dates,
                &tables.postings,
                *seg,
                header,
            )?;
            if let Some(live) = live {
                date_range = index::widen(date_range, live);
            }
        }
        let calls = segments.iter().map(|(_, h)| u64::from(h.live)).sum();
        let file_bytes = match &self.path {
            Some(p) => Some(fs::metadata(p).map_err(|e| io_error(p, e))?.len()),
            None => None,
        };
        Ok(StoreStats {
            calls,
            accounts,
            properties,
            segments: segments.len() as u64,
            format_version: FORMAT_VERSION,
            date_range: if calls == 0 { None } else { date_range },
            file_bytes,
        })
    }
}

/// Normalizes a batch and keeps the last record of each CallSid, in the order of those last
/// records. A large batch is normalized in two halves at once.
fn prepare(calls: Vec<Call>) -> Result<Vec<Call>, StoreError> {
    Ok(last_of_each(normalize_batch(calls)?))
}

/// Normalizes every call of a batch (its two halves at once when it is large); an error names
/// the first invalid one.
pub(crate) fn normalize_batch(calls: Vec<Call>) -> Result<Vec<Call>, StoreError> {
    let mut calls = calls;
    let half = if calls.len() >= index::PARALLEL_ROWS && index::parallel() {
        calls.len() / 2
    } else {
        0
    };
    if half == 0 {
        normalize_all(&mut calls, 0)?;
    } else {
        let (head, tail) = calls.split_at_mut(half);
        let (head, tail) = std::thread::scope(|scope| {
            let head = scope.spawn(|| normalize_all(head, 0));
            let tail = normalize_all(tail, half);
            (head.join(), tail)
        });
        // The first invalid record is reported: one of the head's, if any.
        head.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        tail?;
    }
    Ok(calls)
}

/// The last call of each CallSid, in order.
pub(crate) fn last_of_each(calls: Vec<Call>) -> Vec<Call> {
    match last_of_each_mask(&calls) {
        None => calls,
        Some(keep) => calls
            .into_iter()
            .zip(keep)
            .filter_map(|(c, k)| k.then_some(c))
            .collect(),
    }
}

/// Which calls are the last of their CallSid; `None` when no CallSid repeats.
pub(crate) fn last_of_each_mask(calls: &[Call]) -> Option<Vec<bool>> {
    let mut last: HashMap<&str, usize> = HashMap::with_capacity(calls.len());
    for (i, call) in calls.iter().enumerate() {
        last.insert(call.call_sid.as_str(), i);
    }
    if last.len() == calls.len() {
        return None;
    }
    Some(
        calls
            .iter()
            .enumerate()
            .map(|(i, c)| last.get(c.call_sid.as_str()) == Some(&i))
            .collect(),
    )
}

/// Normalizes `calls`, the batch's from index `first` on; stops at the first invalid one.
fn normalize_all(calls: &mut [Call], first: usize) -> Result<(), StoreError> {
    for (i, call) in calls.iter_mut().enumerate() {
        call.normalize()
            .map_err(|source| StoreError::InvalidRecord {
                index: first + i,
                call_sid: Some(call.call_sid.trim().to_string()).filter(|s| !s.is_empty()),
                source,
            })?;
    }
    Ok(())
}

/// Whether a backend of `len` bytes holds a database that redb never finished creating: redb
/// writes its magic number last, so a create cut short leaves it zero (and the storage small).
/// Such storage holds no commit and is created anew.
fn never_initialized(backend: &impl redb::StorageBackend, len: u64) -> std::io::Result<bool> {
    const LIMIT: u64 = 1 << 20;
    if len > LIMIT {
        return Ok(false);
    }
    let mut magic = [0u8; REDB_MAGIC.len()];
    let n = magic.len().min(len as usize);
    backend.read(0, &mut magic[..n])?;
    Ok(magic.iter().all(|&b| b == 0))
}

/// Runs a redb open, turning a panic on a damaged file into an error naming the file.
fn guarded<T>(path: &Path, open: impl FnOnce() -> T) -> Result<T, StoreError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(open)).map_err(|_| {
        StoreError::Corrupt(format!(
            "{} is damaged: redb could not read it",
            path.display()
        ))
    })
}

/// Checks callstore's format marker and version in an open database; the version found (one
/// this build opens).
fn check_format(db: &impl ReadableDatabase, path: &Path) -> Result<u32, StoreError> {
    // An I/O error is the medium's, not a sign of a damaged file: it stays an I/O error.
    let damaged = |e: redb::Error| match e {
        redb::Error::Io(_) => StoreError::Storage(e),
        e => StoreError::Corrupt(format!("{} is damaged or not a store: {e}", path.display())),
    };
    let txn = db.begin_read().map_err(|e| damaged(e.into()))?;
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        Err(redb::TableError::TableDoesNotExist(_)) => {
            return Err(not_a_store(path, "a redb file without callstore's tables"));
        }
        Err(redb::TableError::TableTypeMismatch { .. }) => {
            return Err(not_a_store(
                path,
                "a redb file whose meta table is not callstore's",
            ));
        }
        Err(e) => return Err(damaged(e.into())),
    };
    let version = meta.get(FORMAT_KEY).map_err(|e| damaged(e.into()))?;
    let Some(version) = version.map(|g| g.value()) else {
        return Err(not_a_store(
            path,
            "a redb file without callstore's format marker",
        ));
    };
    let found = u32::try_from(version).unwrap_or(u32::MAX);
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&found) {
        return Err(StoreError::FormatVersion {
            path: path.display().to_string(),
            found,
            oldest: OLDEST_FORMAT_VERSION,
            expected: FORMAT_VERSION,
        });
    }
    Ok(found)
}

/// Refuses, without opening it with redb, a path that is not a redb file.
fn check_header(path: &Path) -> Result<(), StoreError> {
    let meta = fs::metadata(path).map_err(|e| io_error(path, e))?;
    if meta.is_dir() {
        return Err(not_a_store(path, "it is a directory"));
    }
    let mut head = [0u8; REDB_MAGIC.len()];
    let mut file = fs::File::open(path).map_err(|e| io_error(path, e))?;
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(path, e)),
        }
    }
    if got == 0 {
        return Err(not_a_store(path, "the file is empty"));
    }
    if got < head.len() || head != REDB_MAGIC {
        return Err(not_a_store(path, "it does not start with a redb header"));
    }
    Ok(())
}

fn open_error(path: &Path, e: redb::DatabaseError) -> StoreError {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse {
            path: path.display().to_string(),
        },
        redb::DatabaseError::Storage(redb::StorageError::Io(source)) => io_error(path, source),
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(what)) => {
            StoreError::Corrupt(format!("{} is damaged: {what}", path.display()))
        }
        other => StoreError::from(other),
    }
}
