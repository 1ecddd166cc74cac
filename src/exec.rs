//! Query execution, the read side of the storage shape: per segment, a match bitmap from row
//! ranges and postings; across segments, a merge in result order that skips by counting.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use foldhash::{HashMap, HashSet};
use redb::{AccessGuard, Range, ReadOnlyTable, ReadTransaction};
use roaring::{MultiOps, RoaringBitmap};

use crate::codec::{self, Layout};
use crate::dense::{DenseAnd, DenseRows};
use crate::error::StoreError;
use crate::index::{self, Posting, SegmentHeader, read_posting, row_lower_bound};
use crate::model::{INDEXED_PROMPT_DEPTH, prompt_path_starts_with};
use crate::page::Page;
use crate::query::{Query, Scope, UniqueFilter};
use crate::small::{self, SmallIndex};
use crate::store::{ACCOUNTS, CALLS, CounterCells, DATES, POSTINGS, PROPERTIES, SEGMENTS};

/// The last block of records a query read in a segment, held in place (a redb guard keeps its
/// page) or shared with the [`BlockCache`]: its segment, its rows `first..end` (none before the
/// first read), and a cursor on the blocks after it in the segment, opened at the first step
/// forward from a block read from redb.
#[derive(Default)]
struct CachedBlock {
    seg: u32,
    first: u32,
    end: u32,
    bytes: Option<Held>,
    after: Option<Range<'static, (u32, u32), &'static [u8]>>,
}

/// A block's bytes as a query holds them.
enum Held {
    /// In redb's page, for as long as the read transaction lives.
    Guard(AccessGuard<'static, &'static [u8]>),
    /// A copy kept by the [`BlockCache`].
    Copy(Arc<[u8]>),
}

impl Held {
    fn bytes(&self) -> &[u8] {
        match self {
            Held::Guard(guard) => guard.value(),
            Held::Copy(copy) => copy,
        }
    }
}

/// Blocks of call records copied out of redb, shared by the queries of a store.
///
/// A page of a sparse filter reads one row in each of a couple of hundred blocks, and reaching
/// a block through redb costs a few page lookups in its cache (about 0.6 µs, half such a
/// page's time); a block kept here is one ordered-map lookup. A segment's blocks never change
/// once written and segment ids are never reused, so a copy holds in every snapshot. A block is
/// copied the second time a query has to read it from redb, so that a one-off scan does not
/// fill the cache; past its budget the cache is emptied.
pub(crate) struct BlockCache {
    inner: Mutex<BlockCacheInner>,
    budget: usize,
}

/// A block in the [`BlockCache`]: the row after its last, and its bytes.
type CopiedBlock = (u32, Arc<[u8]>);

#[derive(Default)]
struct BlockCacheInner {
    /// (segment, first row) → (the row after its last, the block).
    blocks: BTreeMap<(u32, u32), CopiedBlock>,
    /// Blocks read from redb once, not yet copied.
    seen: HashSet<(u32, u32)>,
    bytes: usize,
}

/// What the block cache holds at most, in bytes of blocks.
pub(crate) const BLOCK_CACHE_BYTES: usize = 32 << 20;

/// How many blocks read once the block cache remembers before it forgets them all.
const BLOCKS_SEEN: usize = 1 << 16;

impl BlockCache {
    pub(crate) fn new(budget: usize) -> BlockCache {
        BlockCache {
            inner: Mutex::new(BlockCacheInner::default()),
            budget,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BlockCacheInner> {
        // The maps stay consistent even if a holder panicked: take them as they are.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached block holding row `loc.1` of segment `loc.0`: its first row, the row after
    /// its last, its bytes.
    fn get(&self, loc: (u32, u32)) -> Option<(u32, u32, Arc<[u8]>)> {
        let inner = self.lock();
        let (&(seg, first), (end, bytes)) = inner.blocks.range(..=loc).next_back()?;
        (seg == loc.0 && loc.1 < *end).then(|| (first, *end, Arc::clone(bytes)))
    }

    /// Tells the cache that a query read block `first..end` of segment `seg` from redb: it is
    /// copied if it was read before.
    fn offer(&self, seg: u32, first: u32, end: u32, bytes: &[u8]) {
        let mut inner = self.lock();
        if inner.seen.len() >= BLOCKS_SEEN {
            inner.seen.clear();
        }
        if inner.seen.insert((seg, first)) || bytes.len() > self.budget {
            return;
        }
        if inner.bytes + bytes.len() > self.budget {
            inner.blocks.clear();
            inner.bytes = 0;
        }
        inner.bytes += bytes.len();
        inner.seen.remove(&(seg, first));
        inner.blocks.insert((seg, first), (end, Arc::from(bytes)));
    }
}

/// How many segments a query keeps a block of at a time.
const CACHED_SEGMENTS: usize = 64;

/// How many blocks a read steps forward through the cursor before it looks the block up
/// afresh: stepping costs a leaf-page move, a lookup a descent from the root.
const BLOCK_STEPS: usize = 8;

/// Decoded posting bitmaps, shared by the queries of a store, so that a hot posting is read
/// and deserialized once rather than per query.
///
/// Only postings that never change once their segment is written are kept: a segment id is
/// never reused, so such a posting is the same in every snapshot that holds its segment.
/// Tombstones and Unique flips change in place and are always read from the snapshot. When the
/// cache grows past its budget it is emptied (postings of merged-away segments go with it).
pub(crate) struct PostingCache {
    inner: Mutex<CacheInner>,
    budget: usize,
    /// Blocks of call records copied out of redb (see [`BlockCache`]).
    blocks: BlockCache,
}

/// The cached postings of one (segment, kind), by value (`None`: no such posting).
type PostingsByValue = HashMap<Box<str>, Option<Arc<RoaringBitmap>>>;

/// The dense postings of one (segment, kind, account), by value.
type DenseByValue = HashMap<Box<str>, Arc<DenseRows>>;

#[derive(Default)]
struct CacheInner {
    /// (segment, kind) → value → posting: looked up by `&str`, so a hit allocates nothing.
    map: HashMap<(u32, u8), PostingsByValue>,
    bytes: usize,
    /// (segment, account id, whether the end) → the first row of the account in the segment,
    /// or the row after its last: the bounds of a query without dates. A segment's `dates`
    /// entries never change, so like the postings these hold in every snapshot.
    bounds: HashMap<(u32, u32, bool), u32>,
    /// (segment, kind, account id) → value → the posting's rows within the account's rows, as
    /// words (see [`crate::dense`]): kept for postings that hold a large share of a large
    /// account. Counted in `bytes` with the postings.
    dense: HashMap<(u32, u8, u32), DenseByValue>,
    /// Small segments' derived indexes (see [`crate::small`]), by segment. Counted in `bytes`.
    small: HashMap<u32, Arc<SmallIndex>>,
}

/// How many account bounds the cache holds before it empties them (16 bytes or so each).
const BOUND_CACHE_ENTRIES: usize = 1 << 18;

/// What the posting cache holds at most, in serialized bytes.
pub(crate) const POSTING_CACHE_BYTES: usize = 64 << 20;

impl PostingCache {
    pub(crate) fn new(budget: usize) -> PostingCache {
        PostingCache {
            inner: Mutex::new(CacheInner::default()),
            budget,
            blocks: BlockCache::new(BLOCK_CACHE_BYTES),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CacheInner> {
        // The map stays consistent even if a holder panicked: take it as it is.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CacheInner {
    /// Makes room for an entry of `size` bytes within `budget` (emptying the postings, dense
    /// or not, when it would pass it; the bounds are counted apart) and counts it; `false` when
    /// the entry alone is larger than the budget and is not to be kept.
    fn admit(&mut self, size: usize, budget: usize) -> bool {
        if self.bytes + size > budget {
            self.map.clear();
            self.dense.clear();
            self.small.clear();
            self.bytes = 0;
        }
        if size > budget {
            return false;
        }
        self.bytes += size;
        true
    }
}

/// The tables a query reads, opened once in a read transaction.
pub(crate) struct ReadTables<'c> {
    pub calls: ReadOnlyTable<(u32, u32), &'static [u8]>,
    pub accounts: ReadOnlyTable<&'static str, (u32, u64)>,
    pub properties: ReadOnlyTable<&'static str, (&'static str, u64)>,
    pub segments: ReadOnlyTable<u32, &'static [u8]>,
    pub postings: ReadOnlyTable<(u32, u8, &'static str), &'static [u8]>,
    pub dates: ReadOnlyTable<(u32, u32, u32), u32>,
    /// The last block of records read in each segment: a page's neighbouring rows share blocks,
    /// and a merge reads several segments in turn.
    blocks: RefCell<Vec<CachedBlock>>,
    /// The small segment index asked for last.
    last_small: RefCell<Option<(u32, Arc<SmallIndex>)>>,

    cache: &'c PostingCache,
}

impl<'c> ReadTables<'c> {
    pub(crate) fn open(
        txn: &ReadTransaction,
        cache: &'c PostingCache,
    ) -> Result<ReadTables<'c>, StoreError> {
        Ok(ReadTables {
            calls: txn.open_table(CALLS)?,
            accounts: txn.open_table(ACCOUNTS)?,
            properties: txn.open_table(PROPERTIES)?,
            segments: txn.open_table(SEGMENTS)?,
            postings: txn.open_table(POSTINGS)?,
            dates: txn.open_table(DATES)?,
            blocks: RefCell::default(),
            last_small: RefCell::default(),
            cache,
        })
    }

    /// A posting of segment `seg` (`None` when absent), from the cache when it can be; a small
    /// segment's derived postings come from its [`SmallIndex`].
    fn posting(
        &self,
        seg: u32,
        header: &SegmentHeader,
        kind: Posting,
        value: &str,
    ) -> Result<Option<Arc<RoaringBitmap>>, StoreError> {
        if header.small && small::is_derived(kind) {
            return Ok(self.small(seg, header.rows)?.posting(kind, value));
        }
        if matches!(
            kind,
            Posting::Tombstone | Posting::UniqueAccountFlip | Posting::UniquePropertyFlip
        ) {
            return Ok(read_posting(&self.postings, seg, kind, value)?
                .map(for_algebra)
                .map(Arc::new));
        }
        let key = (seg, kind as u8);
        if let Some(hit) = self.cache.lock().map.get(&key).and_then(|m| m.get(value)) {
            return Ok(hit.clone());
        }
        let read = read_posting(&self.postings, seg, kind, value)?
            .map(for_algebra)
            .map(Arc::new);
        let size = read.as_ref().map_or(0, |b| b.serialized_size()) + 64;
        let mut inner = self.cache.lock();
        if inner.admit(size, self.cache.budget) {
            inner
                .map
                .entry(key)
                .or_default()
                .insert(Box::from(value), read.clone());
        }
        Ok(read)
    }

    /// The first row of segment `seg` at or after (`account`, `date`), as
    /// [`row_lower_bound`]; the two bounds of a query without dates (the account's first row,
    /// the row after its last) come from the cache when they can.
    fn lower_bound(
        &self,
        seg: u32,
        header: &SegmentHeader,
        account: u32,
        date: u64,
    ) -> Result<u32, StoreError> {
        let rows = header.rows;
        if header.small {
            return Ok(self.small(seg, rows)?.lower_bound(account, date));
        }
        let key = match date {
            0 => (seg, account, false),
            d if d > u64::from(u32::MAX) => (seg, account, true),
            _ => return row_lower_bound(&self.dates, seg, rows, account, date),
        };
        if let Some(&row) = self.cache.lock().bounds.get(&key) {
            return Ok(row);
        }
        let row = row_lower_bound(&self.dates, seg, rows, account, date)?;
        let mut inner = self.cache.lock();
        if inner.bounds.len() >= BOUND_CACHE_ENTRIES {
            inner.bounds.clear();
        }
        inner.bounds.insert(key, row);
        Ok(row)
    }

    /// The derived indexes of small segment `seg` of `rows` rows, from the cache or built from
    /// its records and cached.
    fn small(&self, seg: u32, rows: u32) -> Result<Arc<SmallIndex>, StoreError> {
        // A query asks for the same segment's several times in a row: bounds, then postings.
        if let Some((last, index)) = &*self.last_small.borrow() {
            if *last == seg {
                return Ok(Arc::clone(index));
            }
        }
        let cached = self.cache.lock().small.get(&seg).cloned();
        let index = match cached {
            Some(hit) => hit,
            None => {
                let built = Arc::new(SmallIndex::build(&self.calls, &self.accounts, seg, rows)?);
                let mut inner = self.cache.lock();
                if inner.admit(built.size(), self.cache.budget) {
                    inner.small.insert(seg, Arc::clone(&built));
                }
                built
            }
        };
        *self.last_small.borrow_mut() = Some((seg, Arc::clone(&index)));
        Ok(index)
    }

    /// The postings of `term` as dense rows over the account's rows `rows` of segment `seg`
    /// (from the cache, or built and cached), or `None` when one of them holds too small a
    /// share of those rows to be worth it, or is not cached and the query's rows (`window`) are
    /// too few to be worth building it.
    fn dense_term(
        &self,
        seg: u32,
        account: u32,
        rows: (u32, u32),
        window: u32,
        term: &Term<'_>,
    ) -> Option<Vec<Arc<DenseRows>>> {
        let (lo, hi) = rows;
        let key = (seg, term.kind as u8, account);
        let mut out = Vec::with_capacity(term.postings.len());
        for (value, posting) in &term.postings {
            let hit = self
                .cache
                .lock()
                .dense
                .get(&key)
                .and_then(|m| m.get(*value))
                .cloned();
            let dense = match hit {
                Some(hit) => hit,
                None => {
                    if window < DENSE_MIN_ROWS
                        || posting.range_cardinality(lo..hi) * DENSE_MIN_SHARE < u64::from(hi - lo)
                    {
                        return None;
                    }
                    let built = Arc::new(DenseRows::new(posting, lo, hi));
                    let mut inner = self.cache.lock();
                    if inner.admit(built.size() + 64, self.cache.budget) {
                        inner
                            .dense
                            .entry(key)
                            .or_default()
                            .insert(Box::from(*value), Arc::clone(&built));
                    }
                    built
                }
            };
            out.push(dense);
        }
        Some(out)
    }

    /// Runs `f` on the encoded record at `loc`, in place. A page reads rows in order, so the
    /// block of the last row is kept, and a later block of the same segment is reached by
    /// stepping forward from it when it is near.
    fn with_record<T>(
        &self,
        loc: (u32, u32),
        counters: &CounterCells,
        f: impl FnOnce(&[u8]) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        counters.add_records_read(1);
        let mut blocks = self.blocks.borrow_mut();
        let i = match blocks.iter().position(|b| b.seg == loc.0) {
            Some(i) => i,
            None => {
                if blocks.len() >= CACHED_SEGMENTS {
                    blocks.clear();
                }
                blocks.push(CachedBlock {
                    seg: loc.0,
                    ..CachedBlock::default()
                });
                blocks.len() - 1
            }
        };
        let block = &mut blocks[i];
        if block.bytes.is_none() || !(block.first..block.end).contains(&loc.1) {
            if let Some((first, end, bytes)) = self.cache.blocks.get(loc) {
                block.first = first;
                block.end = end;
                block.bytes = Some(Held::Copy(bytes));
                block.after = None;
            } else {
                self.seek(block, loc)?;
                if let Some(held) = &block.bytes {
                    self.cache
                        .blocks
                        .offer(loc.0, block.first, block.end, held.bytes());
                }
            }
        }
        let bytes = block.bytes.as_ref().map_or(&[][..], Held::bytes);
        f(index::record_in_block(bytes, block.first, loc)?.0)
    }

    /// Makes `block` (of segment `loc.0`) the block that holds `loc`.
    fn seek(&self, block: &mut CachedBlock, loc: (u32, u32)) -> Result<(), StoreError> {
        let what = "a block of call records";
        if matches!(block.bytes, Some(Held::Guard(_))) && loc.1 >= block.end {
            if block.after.is_none() {
                block.after = Some(self.calls.range((loc.0, block.end)..=(loc.0, u32::MAX))?);
            }
            for _ in 0..BLOCK_STEPS {
                let Some(entry) = block.after.as_mut().and_then(Iterator::next) else {
                    break;
                };
                let (key, value) = entry?;
                let rows = codec::Block::parse(value.value(), what)?.len() as u32;
                block.first = key.value().1;
                block.end = block.first.saturating_add(rows);
                block.bytes = Some(Held::Guard(value));
                if loc.1 < block.end {
                    return Ok(());
                }
            }
        }
        let Some(entry) = self.calls.range((loc.0, 0)..=loc)?.next_back() else {
            return Err(StoreError::Corrupt(format!(
                "no record at segment {} row {}",
                loc.0, loc.1
            )));
        };
        let (key, value) = entry?;
        let rows = codec::Block::parse(value.value(), what)?.len() as u32;
        block.first = key.value().1;
        block.end = block.first.saturating_add(rows);
        block.bytes = Some(Held::Guard(value));
        block.after = None;
        Ok(())
    }
}

/// A posting as queries use it: run containers turned into array or bitmap ones.
///
/// Writers store postings optimized, so a dense posting of a segment under 65,536 rows is
/// usually runs. roaring ANDs runs with runs by inserting each overlap as a range, and runs with
/// an array by a binary search per element; array and bitmap containers AND by merging or word
/// by word, several times faster. Done once per posting read (the cache keeps the result).
fn for_algebra(mut bits: RoaringBitmap) -> RoaringBitmap {
    bits.remove_run_compression();
    bits
}

/// The matches of a query in one segment.
struct SegmentMatch {
    seg: u32,
    header: SegmentHeader,
    /// The segment's earliest and latest `Date_Start`.
    dates: (u32, u32),
    bits: Matches,
    /// Filters not yet applied to `bits`, tested row by row instead (see [`Deferred`]).
    deferred: Deferred,
}

/// The matching rows of a segment: a bitmap of their own, or the rows `lo..hi` of a posting
/// shared with the cache (a query of one filter pages through the posting itself, with
/// nothing copied or cut).
enum Matches {
    Own(RoaringBitmap),
    Within(Arc<RoaringBitmap>, u32, u32),
}

impl Matches {
    fn len(&self) -> u64 {
        match self {
            Matches::Own(bits) => bits.len(),
            Matches::Within(posting, lo, hi) => posting.range_cardinality(*lo..*hi),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Matches::Own(bits) => bits.is_empty(),
            Matches::Within(posting, lo, hi) => posting.range(*lo..*hi).next().is_none(),
        }
    }

    /// The `n`-th matching row (from 0).
    fn select(&self, n: u32) -> Option<u32> {
        match self {
            Matches::Own(bits) => bits.select(n),
            Matches::Within(posting, lo, hi) => {
                let before = posting.range_cardinality(..*lo);
                let row = posting.select(u32::try_from(before + u64::from(n)).ok()?)?;
                (row < *hi).then_some(row)
            }
        }
    }

    /// The matching rows from `from` on (none for `None`), in order.
    fn rows_from(&self, from: Option<u32>) -> roaring::bitmap::Iter<'_> {
        match (self, from) {
            (Matches::Own(bits), Some(from)) => bits.range(from..),
            (Matches::Within(posting, lo, hi), Some(from)) => posting.range(from.max(*lo)..*hi),
            (Matches::Own(bits), None) => bits.range(1..1),
            (Matches::Within(posting, ..), None) => posting.range(1..1),
        }
    }

    /// How many matching rows come before `row`.
    fn before(&self, row: u32) -> u64 {
        match self {
            Matches::Own(bits) => bits.range_cardinality(..row),
            Matches::Within(posting, lo, hi) if row > *lo => {
                posting.range_cardinality(*lo..row.min(*hi))
            }
            Matches::Within(..) => 0,
        }
    }

    /// Keeps only the rows of `other`.
    fn and(&mut self, other: &RoaringBitmap) {
        match self {
            Matches::Own(bits) => *bits &= other,
            Matches::Within(posting, lo, hi) => {
                *self = Matches::Own(cut(posting, *lo, *hi) & other);
            }
        }
    }
}

/// Filters of a first page left out of a segment's match bitmap and tested row by row: each
/// list is the postings of one filter's values, and a row passes when every list has a posting
/// that holds it.
///
/// A filter that keeps most of the scope's rows costs more to apply to the whole scope (a union
/// or an intersection over all its rows) than to test on the few rows a first page reads: on
/// 10M calls, a `To` list of 20 numbers is a union of about a million rows.
#[derive(Default)]
struct Deferred {
    lists: Vec<Vec<Arc<RoaringBitmap>>>,
    /// The estimated share of rows that pass every list (1 with none).
    share: f64,
}

/// A filter is deferred while the estimated share of the scope's rows that pass every deferred
/// filter stays at least this: a first page then tests about `count / share` rows.
const DEFER_MIN_SHARE: f64 = 0.25;

/// How many rows a first page may test, past `count` times this, before it gives up deferring
/// (the estimate was wrong, say for correlated filters) and applies the deferred filters whole.
const DEFER_ROWS_PER_CALL: usize = 16;

/// ... and this many rows on top.
const DEFER_ROWS_BASE: usize = 4096;

impl Deferred {
    fn new() -> Deferred {
        Deferred {
            lists: Vec::new(),
            share: 1.0,
        }
    }

    fn passes(&self, row: u32) -> bool {
        self.lists
            .iter()
            .all(|list| list.iter().any(|p| p.contains(row)))
    }
}

/// A planned query: the account id of its scope and the matches per segment.
pub(crate) struct Plan {
    account: u32,
    matches: Vec<SegmentMatch>,
}

impl Plan {
    /// All matches, ignoring skip and count (the plan of a count defers nothing).
    pub(crate) fn count(&self) -> u64 {
        self.matches.iter().map(|m| m.bits.len()).sum()
    }

    fn deferring(&self) -> bool {
        self.matches.iter().any(|m| !m.deferred.lists.is_empty())
    }

    /// Applies every deferred filter to its match bitmap.
    fn settle(&mut self) {
        for m in &mut self.matches {
            for list in m.deferred.lists.drain(..) {
                m.bits.and(&union(list.iter().map(|p| &**p)));
            }
        }
        self.matches.retain(|m| !m.bits.is_empty());
    }
}

/// The union of postings (empty for none).
fn union<'a>(postings: impl IntoIterator<Item = &'a RoaringBitmap>) -> RoaringBitmap {
    let postings: Vec<&RoaringBitmap> = postings.into_iter().collect();
    match &postings[..] {
        [] => RoaringBitmap::new(),
        [one] => (*one).clone(),
        many => many.iter().copied().union(),
    }
}

/// How a plan will be used.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Counting, or a page after skipped matches: every filter is applied to the bitmaps.
    Exact,
    /// A first page (nothing skipped): filters that keep most rows may be deferred.
    FirstPage,
}

/// Plans a normalized query: one match bitmap per segment.
pub(crate) fn plan(
    r: &ReadTables,
    q: &Query,
    purpose: Purpose,
    counters: &CounterCells,
) -> Result<Plan, StoreError> {
    let mut matches = Vec::new();
    let defer = purpose == Purpose::FirstPage;
    let Some(account) =
        for_each_segment(r, q, defer, counters, |seg, header, narrowed, deferred| {
            let bits = narrowed.into_matches();
            if !bits.is_empty() {
                matches.push(SegmentMatch {
                    seg,
                    header: *header,
                    dates: (header.min_date, header.max_date),
                    bits,
                    deferred,
                });
            }
        })?
    else {
        return Ok(empty_plan());
    };
    Ok(Plan { account, matches })
}

/// The number of matches of a normalized query, ignoring skip and count: as
/// `plan(..).count()`, without building the bitmaps that only a page needs (a segment whose
/// matches are its account rows in one posting is one `range_cardinality`).
pub(crate) fn count(r: &ReadTables, q: &Query, counters: &CounterCells) -> Result<u64, StoreError> {
    let mut total = 0;
    for_each_segment(r, q, false, counters, |_, _, narrowed, _| {
        total += narrowed.len()
    })?;
    Ok(total)
}

/// Narrows the matches of a query in every segment and hands them to `each`, with the filters
/// deferred to the rows a first page reads when `defer` allows it (see [`Deferred`]); returns
/// the account id of the query's scope, or `None` when the scope is unknown (nothing matches).
fn for_each_segment(
    r: &ReadTables,
    q: &Query,
    defer: bool,
    counters: &CounterCells,
    mut each: impl FnMut(u32, &SegmentHeader, Narrowing, Deferred),
) -> Result<Option<u32>, StoreError> {
    let (account_sid, property) = match &q.scope {
        Scope::Account(a) => (a.clone(), None),
        Scope::Property(p) => match r.properties.get(p.as_str())? {
            Some(g) => (g.value().0.to_string(), Some(p.as_str())),
            None => return Ok(None),
        },
    };
    let Some(account) = r.accounts.get(account_sid.as_str())?.map(|g| g.value().0) else {
        return Ok(None);
    };
    for (seg, header) in index::list_segments(&r.segments)? {
        let mut deferred = Deferred::new();
        let slot = defer.then_some(&mut deferred);
        if let Some(narrowed) =
            match_segment(r, q, seg, &header, account, property, slot, counters)?
        {
            each(seg, &header, narrowed, deferred);
        }
    }
    Ok(Some(account))
}

fn empty_plan() -> Plan {
    Plan {
        account: 0,
        matches: Vec::new(),
    }
}

/// One list filter of a query in one segment: the postings of its values (a row passes when
/// any of them holds it).
struct Term<'q> {
    kind: Posting,
    postings: Vec<(&'q str, Arc<RoaringBitmap>)>,
    /// How many of the scope's rows pass (the values' postings are disjoint, or, for IVR
    /// prefixes, this is an upper bound).
    kept: u64,
}

/// The postings of a filter's `values` in segment `seg`, as a [`Term`] over the rows
/// `lo..hi`; `None` for a filter not given.
fn term<'q>(
    r: &ReadTables,
    seg: u32,
    header: &SegmentHeader,
    kind: Posting,
    values: impl IntoIterator<Item = &'q str>,
    (lo, hi): (u32, u32),
) -> Result<Option<Term<'q>>, StoreError> {
    let mut given = false;
    let mut postings = Vec::new();
    for value in values {
        given = true;
        if let Some(posting) = r.posting(seg, header, kind, value)? {
            postings.push((value, posting));
        }
    }
    let kept = postings
        .iter()
        .map(|(_, p)| p.range_cardinality(lo..hi))
        .sum();
    Ok(given.then_some(Term {
        kind,
        postings,
        kept,
    }))
}

/// A dense posting is kept for an account's rows of a segment from this many rows on (a word):
/// even in a live feed's segments, where an account has a few hundred or thousand rows, words
/// AND faster than roaring's array containers (a 200k-call live-fed store's three-filter count
/// 92 → 33 µs, with 32,768 as the limit and with this) ...
const DENSE_MIN_ROWS: u32 = 64;

/// ... and only when the posting holds at least 1 in this many of them (a roaring bitmap
/// container holds 1 in 16 or more; sparser postings AND faster as roaring arrays).
const DENSE_MIN_SHARE: u64 = 32;

/// A segment's matches while [`match_segment`] narrows them: the rows `lo..hi` (an account's,
/// within the query's dates), then the rows of one posting among them (not yet copied), or of
/// dense postings (not yet ANDed), then a bitmap of their own.
///
/// The first posting is kept by reference: a count of one posting's rows in the range is a
/// `range_cardinality`, with nothing copied. Dense postings are ANDed in one pass when the
/// count or the bitmap is asked for (see [`crate::dense`]).
struct Narrowing {
    lo: u32,
    hi: u32,
    rows: Rows,
}

/// The states of a [`Narrowing`].
enum Rows {
    /// Every row of the range.
    All,
    /// The rows of this posting within the range, and how many they are when known.
    First(Arc<RoaringBitmap>, Option<u64>),
    /// The rows of the range in every term of dense postings.
    Dense(DenseAnd),
    /// Exactly these rows.
    Bits(RoaringBitmap),
}

/// `posting` cut to `lo..hi`: a copy trimmed at both ends when the posting lies mostly within
/// the range (a segment of the live feed); its rows one by one when they are few; else an
/// intersection with the range as bitmap containers, so that a compacted segment of millions
/// of rows does not copy the posting's containers outside an account's rows.
fn cut(posting: &RoaringBitmap, lo: u32, hi: u32) -> RoaringBitmap {
    let span = match (posting.min(), posting.max()) {
        (Some(min), Some(max)) => u64::from(max - min) + 1,
        _ => return RoaringBitmap::new(),
    };
    let rows = u64::from(hi.saturating_sub(lo));
    if span <= 2 * rows {
        let mut copy = posting.clone();
        copy.remove_range(..lo);
        copy.remove_range(hi..);
        return copy;
    }
    let containers = u64::from((hi.saturating_sub(1) >> 16) - (lo >> 16)) + 1;
    if posting.range_cardinality(lo..hi) <= CUT_ROWS_PER_CONTAINER * containers {
        return RoaringBitmap::from_sorted_iter(posting.range(lo..hi))
            .unwrap_or_else(|_| posting & &range_bitmap(lo, hi));
    }
    posting & &range_bitmap(lo, hi)
}

/// A posting with at most this many rows in a range per 65,536-row container of the range is
/// cut to it row by row (about 40 ns a row, iterating and pushing), rather than by
/// intersecting it with the range's containers (about 2 µs a container, building them).
const CUT_ROWS_PER_CONTAINER: u64 = 48;

/// The rows `lo..hi` as array and bitmap containers (roaring intersects and subtracts those
/// word by word; run containers one split or one binary search at a time).
fn range_bitmap(lo: u32, hi: u32) -> RoaringBitmap {
    let mut bits = RoaringBitmap::new();
    bits.insert_range(lo..hi);
    bits.remove_run_compression();
    bits
}

impl Narrowing {
    fn new(lo: u32, hi: u32) -> Narrowing {
        Narrowing {
            lo,
            hi,
            rows: Rows::All,
        }
    }

    fn and(&mut self, posting: &Arc<RoaringBitmap>) {
        match &self.rows {
            Rows::All => self.rows = Rows::First(Arc::clone(posting), None),
            _ => *self.bitmap_mut() &= &**posting,
        }
    }

    fn and_owned(&mut self, posting: RoaringBitmap) {
        match &self.rows {
            Rows::All => self.rows = Rows::Bits(cut(&posting, self.lo, self.hi)),
            _ => *self.bitmap_mut() &= &posting,
        }
    }

    /// Keeps the rows of `term`'s postings (any of them), as dense postings when `dense` gives
    /// them and nothing but dense postings has narrowed the rows yet.
    fn and_term(&mut self, term: &Term<'_>, dense: Option<Vec<Arc<DenseRows>>>) {
        if let Some(dense) = dense {
            match &mut self.rows {
                Rows::All => {
                    let mut and = DenseAnd::new(self.lo, self.hi);
                    if and.and(dense).is_ok() {
                        self.rows = Rows::Dense(and);
                        return;
                    }
                }
                Rows::Dense(and) => {
                    if and.and(dense).is_ok() {
                        return;
                    }
                }
                Rows::First(..) | Rows::Bits(_) => {}
            }
        }
        match &term.postings[..] {
            [] => self.clear(),
            // Its rows in the range are `kept`, counted already.
            [(_, one)] if matches!(self.rows, Rows::All) => {
                self.rows = Rows::First(Arc::clone(one), Some(term.kept));
            }
            [(_, one)] => self.and(one),
            many => self.and_owned(union(many.iter().map(|(_, p)| &**p))),
        }
    }

    /// Whether this state is one that the terms' order can still use: a term of dense
    /// postings is worth building only before anything else has narrowed the rows.
    fn takes_dense(&self) -> bool {
        matches!(self.rows, Rows::All | Rows::Dense(_))
    }

    fn clear(&mut self) {
        self.rows = Rows::Bits(RoaringBitmap::new());
    }

    /// Whether nothing matches, as far as it is known without counting dense postings.
    fn known_empty(&self) -> bool {
        match &self.rows {
            Rows::Bits(bits) => bits.is_empty(),
            Rows::All | Rows::First(..) | Rows::Dense(_) => false,
        }
    }

    /// How many rows match.
    fn len(&self) -> u64 {
        match &self.rows {
            Rows::All => u64::from(self.hi.saturating_sub(self.lo)),
            Rows::First(_, Some(len)) => *len,
            Rows::First(first, None) => first.range_cardinality(self.lo..self.hi),
            Rows::Dense(and) => and.len(),
            Rows::Bits(bits) => bits.len(),
        }
    }

    /// The matches as a bitmap that later ANDs and AND NOTs work on.
    fn bitmap_mut(&mut self) -> &mut RoaringBitmap {
        let (lo, hi) = (self.lo, self.hi);
        let bits = match &self.rows {
            Rows::Bits(_) => None,
            Rows::All => Some(range_bitmap(lo, hi)),
            Rows::First(posting, _) => Some(cut(posting, lo, hi)),
            Rows::Dense(and) => Some(and.to_bitmap()),
        };
        if let Some(bits) = bits {
            self.rows = Rows::Bits(bits);
        }
        match &mut self.rows {
            Rows::Bits(bits) => bits,
            // Set just above.
            _ => unreachable!("the rows were just made a bitmap"),
        }
    }

    /// The matches of a plan: the posting itself when one posting is all that narrowed them.
    fn into_matches(self) -> Matches {
        match self.rows {
            Rows::First(first, _) => Matches::Within(first, self.lo, self.hi),
            Rows::Bits(bits) => Matches::Own(bits),
            Rows::Dense(and) => Matches::Own(and.to_bitmap()),
            Rows::All => {
                let mut bits = RoaringBitmap::new();
                bits.insert_range(self.lo..self.hi);
                Matches::Own(bits)
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn match_segment(
    r: &ReadTables,
    q: &Query,
    seg: u32,
    header: &SegmentHeader,
    account: u32,
    property: Option<&str>,
    mut defer: Option<&mut Deferred>,
    counters: &CounterCells,
) -> Result<Option<Narrowing>, StoreError> {
    let from = q.date_from.unwrap_or(0);
    if header.max_date < from || q.date_to.is_some_and(|to| header.min_date >= to) {
        return Ok(None);
    }
    let first = r.lower_bound(seg, header, account, 0)?;
    let end = r.lower_bound(seg, header, account, u64::from(u32::MAX) + 1)?;
    let lo = match from {
        0 => first,
        _ => r.lower_bound(seg, header, account, u64::from(from))?,
    };
    let hi = match q.date_to {
        Some(to) => r.lower_bound(seg, header, account, u64::from(to))?,
        None => end,
    };
    if lo >= hi {
        return Ok(None);
    }
    let mut matches = Narrowing::new(lo, hi);
    let mut terms = Vec::new();
    if let Some(p) = property {
        match term(r, seg, header, Posting::Property, [p], (lo, hi))? {
            Some(t) if !t.postings.is_empty() => terms.push(t),
            _ => return Ok(None),
        }
    }
    // The list filters, in the query's order; those of a first page that keep most rows are
    // set aside for the rows the page reads.
    let lists = [
        (Posting::To, &q.to),
        (Posting::Endpoint, &q.endpoint),
        (Posting::Source, &q.attribution_source),
        (Posting::Medium, &q.attribution_medium),
        (Posting::Campaign, &q.attribution_campaign),
        (Posting::Content, &q.attribution_content),
    ];
    let dispositions = q.dispositions.iter().map(|d| d.as_ref());
    let lists = lists
        .into_iter()
        .map(|(kind, values)| (kind, values.iter().map(String::as_str)));
    let mut filters = Vec::new();
    if let Some(t) = term(r, seg, header, Posting::Disposition, dispositions, (lo, hi))? {
        filters.push(t);
    }
    for (kind, values) in lists {
        if let Some(t) = term(r, seg, header, kind, values, (lo, hi))? {
            filters.push(t);
        }
    }
    for t in filters {
        if t.kept == 0 {
            return Ok(Some(empty(lo, hi)));
        }
        if let Some(deferred) = defer.as_deref_mut() {
            let share = deferred.share * t.kept as f64 / f64::from(hi - lo).max(1.0);
            if share >= DEFER_MIN_SHARE {
                deferred.share = share;
                deferred
                    .lists
                    .push(t.postings.into_iter().map(|(_, p)| p).collect());
                continue;
            }
        }
        terms.push(t);
    }
    // IVR paths within the indexed depth are one posting each, a list filter like the others;
    // a deeper one is checked against the records, once the other filters have narrowed them.
    let deep = q
        .prompts_keys
        .iter()
        .any(|path| path.matches(',').count() >= INDEXED_PROMPT_DEPTH);
    if !deep {
        let paths = q.prompts_keys.iter().map(String::as_str);
        if let Some(t) = term(r, seg, header, Posting::Prompt, paths, (lo, hi))? {
            terms.push(t);
        }
    }
    // The fewest rows first: later ANDs then work on a smaller bitmap.
    terms.sort_by_key(|t| t.kept);
    for t in &terms {
        if matches.known_empty() {
            return Ok(Some(matches));
        }
        // One posting alone is cheaper kept by reference (a count is a `range_cardinality`).
        let alone = terms.len() == 1 && t.postings.len() == 1;
        let dense = match !alone && matches.takes_dense() && end - first >= DENSE_MIN_ROWS {
            true => r.dense_term(seg, account, (first, end), hi - lo, t),
            false => None,
        };
        matches.and_term(t, dense);
    }
    if deep {
        let found = prompt_matches(
            r,
            seg,
            header,
            matches.bitmap_mut(),
            &q.prompts_keys,
            counters,
        )?;
        matches.and_owned(found);
    }
    // Every tombstone takes a row off `live` (and merges leave none), so a segment whose rows
    // are all live has no tombstone to read.
    if header.live < header.rows {
        if let Some(dead) = r.posting(seg, header, Posting::Tombstone, "")? {
            *matches.bitmap_mut() -= &*dead;
        }
    }
    if q.unique != UniqueFilter::All {
        let (base, flip) = match property {
            Some(_) => (Posting::UniqueProperty, Posting::UniquePropertyFlip),
            None => (Posting::UniqueAccount, Posting::UniqueAccountFlip),
        };
        // The rows first of their caller now: the segment's flags XOR the flips since.
        let base = r.posting(seg, header, base, "")?;
        let flip = r.posting(seg, header, flip, "")?;
        let unique: Option<Arc<RoaringBitmap>> = match (&base, &flip) {
            (Some(b), Some(f)) => Some(Arc::new(&**b ^ &**f)),
            (Some(only), None) | (None, Some(only)) => Some(Arc::clone(only)),
            (None, None) => None,
        };
        if q.unique == UniqueFilter::Unique {
            match &unique {
                Some(unique) => matches.and(unique),
                None => matches.clear(),
            }
        } else {
            let bits = matches.bitmap_mut();
            if let Some(unique) = &unique {
                *bits -= &**unique;
            }
            if let Some(anonymous) = r.posting(seg, header, Posting::Anonymous, "")? {
                *bits -= &*anonymous;
            }
        }
    }
    Ok(Some(matches))
}

/// No match among the rows `lo..hi`.
fn empty(lo: u32, hi: u32) -> Narrowing {
    let mut none = Narrowing::new(lo, hi);
    none.clear();
    none
}

/// The rows of `candidates` whose IVR path starts with one of `paths`. A path within the indexed
/// depth is one posting; a deeper one is its indexed prefix's posting, checked against the
/// records.
fn prompt_matches(
    r: &ReadTables,
    seg: u32,
    header: &SegmentHeader,
    candidates: &RoaringBitmap,
    paths: &[String],
    counters: &CounterCells,
) -> Result<RoaringBitmap, StoreError> {
    let mut out = RoaringBitmap::new();
    for path in paths {
        let indexed = match path.match_indices(',').nth(INDEXED_PROMPT_DEPTH - 1) {
            Some((end, _)) => &path[..end],
            None => path.as_str(),
        };
        let Some(posting) = r.posting(seg, header, Posting::Prompt, indexed)? else {
            continue;
        };
        let hits = &*posting & candidates;
        if indexed.len() == path.len() {
            out |= hits;
            continue;
        }
        for row in &hits {
            let starts = r.with_record((seg, row), counters, |bytes| {
                Ok(codec::decode_ref(bytes)?
                    .prompts_keys
                    .is_some_and(|p| prompt_path_starts_with(p, path)))
            })?;
            if starts {
                out.insert(row);
            }
        }
    }
    Ok(out)
}

/// The page of a plan: `skip` matches left out, then at most `count`, in result order.
pub(crate) fn page(
    r: &ReadTables,
    mut plan: Plan,
    skip: u64,
    count: u64,
    counters: &CounterCells,
) -> Result<Page, StoreError> {
    if count == 0 {
        return Ok(Page::default());
    }
    if plan.deferring() {
        // Planned for a first page (`skip` is 0): test the deferred filters on the rows read,
        // within a budget of row tests; past it, apply them whole and page as usual.
        let want = usize::try_from(count).unwrap_or(usize::MAX);
        let budget = Cell::new(
            want.saturating_mul(DEFER_ROWS_PER_CALL)
                .saturating_add(DEFER_ROWS_BASE),
        );
        let spent = Cell::new(false);
        let rows = plan
            .matches
            .iter()
            .map(|m| {
                let (budget, spent) = (&budget, &spent);
                m.bits
                    .rows_from(Some(0))
                    .take_while(move |_| match budget.get().checked_sub(1) {
                        Some(left) => {
                            budget.set(left);
                            true
                        }
                        None => {
                            spent.set(true);
                            false
                        }
                    })
                    .filter(move |&row| m.deferred.passes(row))
            })
            .collect();
        let page = merge(r, &plan, rows, want, counters)?;
        if !spent.get() {
            return Ok(page);
        }
        plan.settle();
    }
    let total = plan.count();
    if skip >= total {
        return Ok(Page::default());
    }
    let want = count.min(total - skip) as usize;
    // Cursors: for each segment, the rank of its first match on the page (with one segment,
    // `skip` itself).
    let starts = match plan.matches.len() {
        1 => vec![skip],
        _ => start_ranks(r, &plan, skip, counters)?,
    };
    let rows = plan
        .matches
        .iter()
        .zip(starts)
        .map(|(m, start)| {
            let first = u32::try_from(start).ok().and_then(|s| m.bits.select(s));
            m.bits.rows_from(first)
        })
        .collect();
    merge(r, &plan, rows, want, counters)
}

/// Reads up to `want` calls in result order from the rows of each segment of the plan (`rows`,
/// one iterator per match, each in row order).
fn merge(
    r: &ReadTables,
    plan: &Plan,
    mut rows: Vec<impl Iterator<Item = u32>>,
    want: usize,
    counters: &CounterCells,
) -> Result<Page, StoreError> {
    let mut out = Page::with_capacity(want.min(plan.count() as usize));
    if let ([only], [m]) = (&mut rows[..], &plan.matches[..]) {
        for row in only.take(want) {
            r.with_record((m.seg, row), counters, |bytes| out.push_record(bytes))?;
        }
        return Ok(out);
    }
    // A k-way merge on (Date_Start, CallSid), holding the next call of each segment (its
    // layout and strings, a buffer per segment, reused), checked once when read and moved to
    // the page as it is. A plan has few segments, so the next call is found by comparing the
    // heads in place.
    //
    // A segment's first head is read only once the segment could hold the next call: when its
    // earliest date is not after the best head read so far. The live feed's segments mostly
    // follow each other in time, so a page reads the heads of the few segments it spans.
    let mut heads: Vec<Head> = (0..plan.matches.len()).map(|_| Head::default()).collect();
    let mut unread = vec![true; plan.matches.len()];
    while out.len() < want {
        let best: Option<(usize, u32)> = {
            let mut next: Option<(usize, (u32, &str))> = None;
            for (i, head) in heads.iter().enumerate() {
                let Some(key) = head.key() else {
                    continue;
                };
                if next.is_none_or(|(_, best)| key < best) {
                    next = Some((i, key));
                }
            }
            next.map(|(i, (date, _))| (i, date))
        };
        // The unread segments that could hold the next call (with none read yet, the earliest).
        let due: Vec<usize> = match best {
            Some((_, date)) => (0..unread.len())
                .filter(|&i| unread[i] && plan.matches[i].dates.0 <= date)
                .collect(),
            None => (0..unread.len())
                .filter(|&i| unread[i])
                .min_by_key(|&i| plan.matches[i].dates.0)
                .into_iter()
                .collect(),
        };
        if !due.is_empty() {
            for i in due {
                unread[i] = false;
                if let Some(row) = rows[i].next() {
                    heads[i].read(r, (plan.matches[i].seg, row), counters)?;
                }
            }
            continue;
        }
        let Some((i, _)) = best else {
            break;
        };
        let head = &mut heads[i];
        if let Some(layout) = head.layout.take() {
            out.push_layout(layout, &head.text);
        }
        if let Some(row) = rows[i].next() {
            head.read(r, (plan.matches[i].seg, row), counters)?;
        }
    }
    Ok(out)
}

/// The next call of a segment in a merge, checked once when read: its layout (`None` when the
/// segment is done) and its strings, which go to the page as they are.
#[derive(Default)]
struct Head {
    layout: Option<Layout>,
    text: String,
}

impl Head {
    fn read(
        &mut self,
        r: &ReadTables,
        loc: (u32, u32),
        counters: &CounterCells,
    ) -> Result<(), StoreError> {
        r.with_record(loc, counters, |bytes| {
            let (layout, text) = codec::layout(bytes)?;
            self.layout = Some(layout);
            self.text.clear();
            self.text.push_str(text);
            Ok(())
        })
    }

    /// The merge's sort key: (`Date_Start`, `CallSid`).
    fn key(&self) -> Option<(u32, &str)> {
        let layout = self.layout.as_ref()?;
        Some((layout.date_start(), layout.sid(&self.text)))
    }
}

/// For each segment of the plan, how many of its matches come before global position `skip`.
///
/// Finds the date of the `skip`-th match by bisection on dates (counting matches before a date is
/// a seek per segment and a rank), then orders the matches of that one date by CallSid.
fn start_ranks(
    r: &ReadTables,
    plan: &Plan,
    skip: u64,
    counters: &CounterCells,
) -> Result<Vec<u64>, StoreError> {
    let before = |date: u64| -> Result<Vec<u64>, StoreError> {
        plan.matches
            .iter()
            .map(|m| {
                // A segment wholly after or before `date` needs no seek: the live feed's
                // segments are mostly disjoint in time, so most probes of the bisection are
                // answered from the headers.
                if date <= u64::from(m.dates.0) {
                    return Ok(0);
                }
                if date > u64::from(m.dates.1) {
                    return Ok(m.bits.len());
                }
                let row = r.lower_bound(m.seg, &m.header, plan.account, date)?;
                Ok(m.bits.before(row))
            })
            .collect()
    };
    if skip == 0 {
        return Ok(vec![0; plan.matches.len()]);
    }
    let sum = |v: &[u64]| v.iter().sum::<u64>();
    // Invariant: matches before `lo` <= skip < matches before `hi` (none is dated before the
    // earliest segment date, all are before the day after the latest; skip < the total).
    let mut lo: u64 = plan
        .matches
        .iter()
        .map(|m| u64::from(m.dates.0))
        .min()
        .unwrap_or(0);
    let mut hi: u64 = plan
        .matches
        .iter()
        .map(|m| u64::from(m.dates.1) + 1)
        .max()
        .unwrap_or(u64::from(u32::MAX) + 1);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if sum(&before(mid)?) <= skip {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let mut ranks = before(lo)?;
    let mut left = skip - sum(&ranks);
    if left == 0 {
        return Ok(ranks);
    }
    // The matches dated `lo`, across segments, ordered by CallSid.
    let upper = before(lo + 1)?;
    let mut tied: Vec<(String, usize)> = Vec::new();
    for (i, m) in plan.matches.iter().enumerate() {
        let Some(first) = u32::try_from(ranks[i]).ok().and_then(|s| m.bits.select(s)) else {
            continue;
        };
        for row in m
            .bits
            .rows_from(Some(first))
            .take((upper[i] - ranks[i]) as usize)
        {
            let sid = r.with_record((m.seg, row), counters, |bytes| {
                Ok(codec::call_head(bytes)?.1.to_owned())
            })?;
            tied.push((sid, i));
        }
    }
    tied.sort();
    for (_, i) in tied {
        if left == 0 {
            break;
        }
        ranks[i] += 1;
        left -= 1;
    }
    Ok(ranks)
}
