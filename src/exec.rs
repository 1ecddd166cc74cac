//! Query execution, the read side of the storage shape: per segment, a match bitmap from row
//! ranges and postings; across segments, a merge in result order that skips by counting.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use redb::{ReadOnlyTable, ReadTransaction};
use roaring::RoaringBitmap;

use crate::error::StoreError;
use crate::index::{self, Posting, SegmentHeader, read_posting, row_lower_bound};
use crate::model::{Call, INDEXED_PROMPT_DEPTH, prompt_path_starts_with};
use crate::query::{Query, Scope, UniqueFilter};
use crate::store::{ACCOUNTS, CALLS, CounterCells, DATES, POSTINGS, PROPERTIES, SEGMENTS};

/// The last block of records a query read: its segment, its rows `first..end`, and its bytes
/// once a second row of it was read (empty before; the buffer is reused from block to block).
#[derive(Default)]
struct CachedBlock {
    seg: u32,
    first: u32,
    end: u32,
    bytes: Vec<u8>,
}

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
}

/// The cached postings of one (segment, kind), by value (`None`: no such posting).
type PostingsByValue = HashMap<Box<str>, Option<Arc<RoaringBitmap>>>;

#[derive(Default)]
struct CacheInner {
    /// (segment, kind) → value → posting: looked up by `&str`, so a hit allocates nothing.
    map: HashMap<(u32, u8), PostingsByValue>,
    bytes: usize,
    /// (segment, account id, whether the end) → the first row of the account in the segment,
    /// or the row after its last: the bounds of a query without dates. A segment's `dates`
    /// entries never change, so like the postings these hold in every snapshot.
    bounds: HashMap<(u32, u32, bool), u32>,
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
        }
    }

    fn lock(&self) -> MutexGuard<'_, CacheInner> {
        // The map stays consistent even if a holder panicked: take it as it is.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
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
    /// The last block of records read: a page's neighbouring rows share blocks.
    block: RefCell<CachedBlock>,
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
            block: RefCell::default(),
            cache,
        })
    }

    /// A posting of a segment (`None` when absent), from the cache when it can be.
    fn posting(
        &self,
        seg: u32,
        kind: Posting,
        value: &str,
    ) -> Result<Option<Arc<RoaringBitmap>>, StoreError> {
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
        if inner.bytes + size > self.cache.budget {
            inner.map.clear();
            inner.bytes = 0;
        }
        if size <= self.cache.budget {
            inner.bytes += size;
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
    fn lower_bound(&self, seg: u32, rows: u32, account: u32, date: u64) -> Result<u32, StoreError> {
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

    /// Reads and decodes the call at `loc`. A row of another block than the last one is
    /// decoded in place; the block is copied for the rows after it only when a second row of it
    /// is asked for, so that a sparse page does not copy a 16 KiB block per call and a dense one
    /// reads each block about twice.
    pub(crate) fn call(
        &self,
        loc: (u32, u32),
        counters: &CounterCells,
    ) -> Result<Call, StoreError> {
        counters.add_records_read(1);
        let mut cached = self.block.borrow_mut();
        let block = &mut *cached;
        if block.seg == loc.0 && block.first <= loc.1 && loc.1 < block.end {
            if block.bytes.is_empty() {
                block.first = index::find_block(&self.calls, loc, &mut block.bytes)?;
            }
            return index::call_in_block(&block.bytes, block.first, loc);
        }
        let (first, rows, call) = index::call_at(&self.calls, loc)?;
        block.seg = loc.0;
        block.first = first;
        block.end = first.saturating_add(rows);
        block.bytes.clear();
        Ok(call)
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
    rows: u32,
    /// The segment's earliest and latest `Date_Start`.
    dates: (u32, u32),
    bits: RoaringBitmap,
}

/// A planned query: the account id of its scope and the matches per segment.
pub(crate) struct Plan {
    account: u32,
    matches: Vec<SegmentMatch>,
}

impl Plan {
    /// All matches, ignoring skip and count.
    pub(crate) fn count(&self) -> u64 {
        self.matches.iter().map(|m| m.bits.len()).sum()
    }
}

/// Plans a normalized query: one match bitmap per segment.
pub(crate) fn plan(r: &ReadTables, q: &Query, counters: &CounterCells) -> Result<Plan, StoreError> {
    let mut matches = Vec::new();
    let Some(account) = for_each_segment(r, q, counters, |seg, header, narrowed| {
        let bits = narrowed.into_bitmap();
        if !bits.is_empty() {
            matches.push(SegmentMatch {
                seg,
                rows: header.rows,
                dates: (header.min_date, header.max_date),
                bits,
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
    for_each_segment(r, q, counters, |_, _, narrowed| total += narrowed.len())?;
    Ok(total)
}

/// Narrows the matches of a query in every segment and hands them to `each`; returns the
/// account id of the query's scope, or `None` when the scope is unknown (nothing matches).
fn for_each_segment(
    r: &ReadTables,
    q: &Query,
    counters: &CounterCells,
    mut each: impl FnMut(u32, &SegmentHeader, Narrowing),
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
        if let Some(narrowed) = match_segment(r, q, seg, &header, account, property, counters)? {
            each(seg, &header, narrowed);
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

/// Keeps the matches in the OR of the postings of `values` (a filter not given keeps them all).
fn and_any_of(
    r: &ReadTables,
    seg: u32,
    kind: Posting,
    values: &[impl AsRef<str>],
    matches: &mut Narrowing,
) -> Result<(), StoreError> {
    match values {
        [] => {}
        [one] => match r.posting(seg, kind, one.as_ref())? {
            Some(posting) => matches.and(&posting),
            None => matches.clear(),
        },
        many => {
            let mut any = RoaringBitmap::new();
            for v in many {
                if let Some(posting) = r.posting(seg, kind, v.as_ref())? {
                    any |= &*posting;
                }
            }
            matches.and_owned(any);
        }
    }
    Ok(())
}

/// A segment's matches while [`match_segment`] narrows them: the account's rows `lo..hi`,
/// then those rows of one posting (not yet copied), then a bitmap of their own.
///
/// The first posting is kept by reference: a count of one posting's rows in the range is a
/// `range_cardinality`, with nothing copied. A second AND, or a page, copies it and cuts the
/// copy to the range (a copy and two cuts per container) rather than building the range and
/// intersecting it with the posting's whole containers: a segment of the live feed holds a
/// small part of an account, and this keeps the work near the range's size.
struct Narrowing {
    lo: u32,
    hi: u32,
    /// The first posting ANDed, while `bits` is `None`.
    first: Option<Arc<RoaringBitmap>>,
    /// Exactly the matching rows, once they had to be built.
    bits: Option<RoaringBitmap>,
}

/// `posting` cut to `lo..hi`.
fn cut(mut posting: RoaringBitmap, lo: u32, hi: u32) -> RoaringBitmap {
    posting.remove_range(..lo);
    posting.remove_range(hi..);
    posting
}

impl Narrowing {
    fn new(lo: u32, hi: u32) -> Narrowing {
        Narrowing {
            lo,
            hi,
            first: None,
            bits: None,
        }
    }

    fn and(&mut self, posting: &Arc<RoaringBitmap>) {
        if self.bits.is_none() && self.first.is_none() {
            self.first = Some(Arc::clone(posting));
        } else {
            *self.bitmap_mut() &= &**posting;
        }
    }

    fn and_owned(&mut self, posting: RoaringBitmap) {
        if self.bits.is_none() && self.first.is_none() {
            self.bits = Some(cut(posting, self.lo, self.hi));
        } else {
            *self.bitmap_mut() &= &posting;
        }
    }

    fn clear(&mut self) {
        self.bits = Some(RoaringBitmap::new());
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many rows match.
    fn len(&self) -> u64 {
        match (&self.bits, &self.first) {
            (Some(bits), _) => bits.len(),
            (None, Some(first)) => first.range_cardinality(self.lo..self.hi),
            (None, None) => u64::from(self.hi.saturating_sub(self.lo)),
        }
    }

    /// The matches as a bitmap that later ANDs and AND NOTs work on.
    fn bitmap_mut(&mut self) -> &mut RoaringBitmap {
        let (lo, hi) = (self.lo, self.hi);
        let first = &mut self.first;
        self.bits.get_or_insert_with(|| match first.take() {
            Some(posting) => cut((*posting).clone(), lo, hi),
            None => {
                let mut bits = RoaringBitmap::new();
                bits.insert_range(lo..hi);
                // `insert_range` makes run containers, and roaring subtracts an array from runs
                // one split at a time: array and bitmap containers work over the range once.
                bits.remove_run_compression();
                bits
            }
        })
    }

    fn into_bitmap(self) -> RoaringBitmap {
        match (self.bits, self.first) {
            (Some(bits), _) => bits,
            (None, Some(first)) => cut((*first).clone(), self.lo, self.hi),
            (None, None) => {
                let mut bits = RoaringBitmap::new();
                bits.insert_range(self.lo..self.hi);
                bits
            }
        }
    }
}

fn match_segment(
    r: &ReadTables,
    q: &Query,
    seg: u32,
    header: &SegmentHeader,
    account: u32,
    property: Option<&str>,
    counters: &CounterCells,
) -> Result<Option<Narrowing>, StoreError> {
    let from = q.date_from.unwrap_or(0);
    if header.max_date < from || q.date_to.is_some_and(|to| header.min_date >= to) {
        return Ok(None);
    }
    let lo = r.lower_bound(seg, header.rows, account, u64::from(from))?;
    let to = q.date_to.map_or(u64::from(u32::MAX) + 1, u64::from);
    let hi = r.lower_bound(seg, header.rows, account, to)?;
    if lo >= hi {
        return Ok(None);
    }
    let mut matches = Narrowing::new(lo, hi);
    if let Some(p) = property {
        match r.posting(seg, Posting::Property, p)? {
            Some(posting) => matches.and(&posting),
            None => return Ok(None),
        }
    }
    // Filters straight from the query's lists (no per-segment copies); each stops the reads
    // as soon as the match is empty.
    let lists = [
        (Posting::To, &q.to),
        (Posting::Endpoint, &q.endpoint),
        (Posting::Source, &q.attribution_source),
        (Posting::Medium, &q.attribution_medium),
        (Posting::Campaign, &q.attribution_campaign),
        (Posting::Content, &q.attribution_content),
    ];
    and_any_of(r, seg, Posting::Disposition, &q.dispositions, &mut matches)?;
    for (kind, values) in lists {
        if matches.is_empty() {
            return Ok(Some(matches));
        }
        and_any_of(r, seg, kind, values, &mut matches)?;
    }
    if !q.prompts_keys.is_empty() {
        let found = prompt_matches(r, seg, matches.bitmap_mut(), &q.prompts_keys, counters)?;
        matches.and_owned(found);
    }
    // Every tombstone takes a row off `live` (and merges leave none), so a segment whose rows
    // are all live has no tombstone to read.
    if header.live < header.rows {
        if let Some(dead) = r.posting(seg, Posting::Tombstone, "")? {
            *matches.bitmap_mut() -= &*dead;
        }
    }
    if q.unique != UniqueFilter::All {
        let (base, flip) = match property {
            Some(_) => (Posting::UniqueProperty, Posting::UniquePropertyFlip),
            None => (Posting::UniqueAccount, Posting::UniqueAccountFlip),
        };
        // The rows first of their caller now: the segment's flags XOR the flips since.
        let base = r.posting(seg, base, "")?;
        let flip = r.posting(seg, flip, "")?;
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
            if let Some(anonymous) = r.posting(seg, Posting::Anonymous, "")? {
                *bits -= &*anonymous;
            }
        }
    }
    Ok(Some(matches))
}

/// The rows of `candidates` whose IVR path starts with one of `paths`. A path within the indexed
/// depth is one posting; a deeper one is its indexed prefix's posting, checked against the
/// records.
fn prompt_matches(
    r: &ReadTables,
    seg: u32,
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
        let Some(posting) = r.posting(seg, Posting::Prompt, indexed)? else {
            continue;
        };
        let hits = &*posting & candidates;
        if indexed.len() == path.len() {
            out |= hits;
            continue;
        }
        for row in &hits {
            let call = r.call((seg, row), counters)?;
            if call
                .prompts_keys
                .as_deref()
                .is_some_and(|p| prompt_path_starts_with(p, path))
            {
                out.insert(row);
            }
        }
    }
    Ok(out)
}

/// The page of a plan: `skip` matches left out, then at most `count`, in result order.
pub(crate) fn page(
    r: &ReadTables,
    plan: &Plan,
    skip: u64,
    count: u64,
    counters: &CounterCells,
) -> Result<Vec<Call>, StoreError> {
    let total = plan.count();
    if count == 0 || skip >= total {
        return Ok(Vec::new());
    }
    let want = count.min(total - skip) as usize;
    if let [only] = &plan.matches[..] {
        return read_rows(r, only, skip, want, counters);
    }
    // Cursors: for each segment, the rank of its first match on the page.
    let starts = start_ranks(r, plan, skip, counters)?;
    // A k-way merge on (Date_Start, CallSid), holding the next call of each segment. A plan
    // has few segments, so the next call is found by comparing the heads in place (no key is
    // copied per row).
    let mut heads: Vec<Option<Call>> = Vec::with_capacity(plan.matches.len());
    let mut iters = Vec::with_capacity(plan.matches.len());
    for (m, start) in plan.matches.iter().zip(starts) {
        let mut it = match u32::try_from(start).ok().and_then(|s| m.bits.select(s)) {
            Some(first) => m.bits.range(first..),
            None => m.bits.range(1..1),
        };
        heads.push(match it.next() {
            Some(row) => Some(r.call((m.seg, row), counters)?),
            None => None,
        });
        iters.push(it);
    }
    let mut out = Vec::with_capacity(want);
    while out.len() < want {
        let next = heads
            .iter()
            .enumerate()
            .filter_map(|(i, head)| {
                head.as_ref()
                    .map(|call| (i, (call.date_start, call.call_sid.as_str())))
            })
            .min_by(|a, b| a.1.cmp(&b.1))
            .map(|(i, _)| i);
        let Some(i) = next else {
            break;
        };
        let Some(call) = heads[i].take() else {
            break;
        };
        out.push(call);
        if out.len() == want {
            break;
        }
        if let Some(row) = iters[i].next() {
            heads[i] = Some(r.call((plan.matches[i].seg, row), counters)?);
        }
    }
    Ok(out)
}

/// Reads `want` matches of one segment from rank `skip` on.
fn read_rows(
    r: &ReadTables,
    m: &SegmentMatch,
    skip: u64,
    want: usize,
    counters: &CounterCells,
) -> Result<Vec<Call>, StoreError> {
    let Some(first) = u32::try_from(skip).ok().and_then(|s| m.bits.select(s)) else {
        return Ok(Vec::new());
    };
    m.bits
        .range(first..)
        .take(want)
        .map(|row| r.call((m.seg, row), counters))
        .collect()
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
                let row = r.lower_bound(m.seg, m.rows, plan.account, date)?;
                Ok(m.bits.range_cardinality(..row))
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
        for row in m.bits.range(first..).take((upper[i] - ranks[i]) as usize) {
            let call = r.call((m.seg, row), counters)?;
            tied.push((call.call_sid, i));
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
