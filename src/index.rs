//! Segments, postings and merges: the write side of the storage shape (see ARCHITECTURE.md).
//!
//! A segment holds calls in rows numbered in (account id, `Date_Start`, `CallSid`) order, so
//! that the rows of one account are a contiguous range and iterate in result order. Each write
//! adds one segment; a tiered merge policy keeps the segment count logarithmic.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use redb::{AccessGuard, ReadableTable, Table, WriteTransaction};
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::counts::{self, Pending, PendingCache, PendingCounts};
use crate::error::StoreError;
use crate::filter::{self, Bloom, FilterCache, SegmentFilter};
use crate::model::{Call, INDEXED_PROMPT_DEPTH, caller_identity, prompt_prefixes};
use crate::runs::{self, EncodedRun, RunBuilder, RunKey};
use crate::small;
use crate::store::{
    ACCOUNTS, CALLS, COUNTS, CounterCells, DATES, FILTERS, GROUPS, META, POSTINGS, PROPERTIES,
    SEGMENTS, SIDS,
};
use crate::view::CallRef;

/// The kinds of posting bitmaps kept per segment (the `u8` in a `postings` key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub(crate) enum Posting {
    Property = 0,
    Disposition = 1,
    To = 2,
    Endpoint = 3,
    Source = 4,
    Medium = 5,
    Campaign = 6,
    Content = 7,
    /// Every prefix of the IVR path.
    Prompt = 8,
    /// Rows whose caller has no identity (value `""`).
    Anonymous = 9,
    /// Rows first of their caller in their account, as of when the segment was written.
    UniqueAccount = 10,
    /// Rows first of their caller in their property, as of when the segment was written.
    UniqueProperty = 11,
    /// Rows whose account-Unique flag flipped since (XOR with `UniqueAccount`).
    UniqueAccountFlip = 12,
    /// Rows whose property-Unique flag flipped since (XOR with `UniqueProperty`).
    UniquePropertyFlip = 13,
    /// Rows deleted or replaced since the segment was written.
    Tombstone = 14,
}

impl Posting {
    /// Every kind, in `u8` order.
    const ALL: [Posting; 15] = [
        Posting::Property,
        Posting::Disposition,
        Posting::To,
        Posting::Endpoint,
        Posting::Source,
        Posting::Medium,
        Posting::Campaign,
        Posting::Content,
        Posting::Prompt,
        Posting::Anonymous,
        Posting::UniqueAccount,
        Posting::UniqueProperty,
        Posting::UniqueAccountFlip,
        Posting::UniquePropertyFlip,
        Posting::Tombstone,
    ];

    /// The kind stored as `byte`.
    fn from_u8(byte: u8) -> Option<Posting> {
        Posting::ALL.get(usize::from(byte)).copied()
    }
}

/// Caller scopes in the `groups` runs.
pub(crate) const SCOPE_ACCOUNT: u8 = 0;
pub(crate) const SCOPE_PROPERTY: u8 = 1;

/// A segment's header, stored in `segments`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SegmentHeader {
    /// Rows in the segment, deleted ones included.
    pub rows: u32,
    /// Rows not deleted.
    pub live: u32,
    /// Earliest and latest `Date_Start` of its rows.
    pub min_date: u32,
    pub max_date: u32,
    /// Whether the segment is small (see [`crate::small`]): its derived postings and its
    /// account and date bounds are not stored but built from its records. Encoded after the
    /// other fields ([`codec::encode_header`]); a format 3 header, without it, is not small.
    #[serde(skip)]
    pub small: bool,
}

/// Where a call lives: (segment, row).
pub(crate) type Loc = (u32, u32);

/// The tables of a write transaction, opened once.
pub(crate) struct WriteTables<'txn> {
    pub calls: Table<'txn, (u32, u32), &'static [u8]>,
    pub sids: Table<'txn, RunKey, &'static [u8]>,
    pub properties: Table<'txn, &'static str, (&'static str, u64)>,
    pub accounts: Table<'txn, &'static str, (u32, u64)>,
    pub segments: Table<'txn, u32, &'static [u8]>,
    pub postings: Table<'txn, (u32, u8, &'static str), &'static [u8]>,
    pub dates: Table<'txn, (u32, u32, u32), u32>,
    pub groups: Table<'txn, RunKey, &'static [u8]>,
    pub filters: Table<'txn, u32, &'static [u8]>,
    pub counts: Table<'txn, u32, &'static [u8]>,
    pub meta: Table<'txn, &'static str, u64>,
}

impl<'txn> WriteTables<'txn> {
    pub(crate) fn open(txn: &'txn WriteTransaction) -> Result<WriteTables<'txn>, StoreError> {
        Ok(WriteTables {
            calls: txn.open_table(CALLS)?,
            sids: txn.open_table(SIDS)?,
            properties: txn.open_table(PROPERTIES)?,
            accounts: txn.open_table(ACCOUNTS)?,
            segments: txn.open_table(SEGMENTS)?,
            postings: txn.open_table(POSTINGS)?,
            dates: txn.open_table(DATES)?,
            groups: txn.open_table(GROUPS)?,
            filters: txn.open_table(FILTERS)?,
            counts: txn.open_table(COUNTS)?,
            meta: txn.open_table(META)?,
        })
    }
}

/// Serializes a bitmap for the `postings` table.
pub(crate) fn bitmap_bytes(bitmap: &RoaringBitmap) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(bitmap.serialized_size());
    bitmap
        .serialize_into(&mut out)
        .map_err(|e| StoreError::Corrupt(format!("a bitmap does not serialize: {e}")))?;
    Ok(out)
}

/// Reads a bitmap written by [`bitmap_bytes`].
pub(crate) fn bitmap_from(bytes: &[u8]) -> Result<RoaringBitmap, StoreError> {
    RoaringBitmap::deserialize_from(bytes)
        .map_err(|e| StoreError::Corrupt(format!("a posting bitmap does not decode: {e}")))
}

/// Reads one posting bitmap; an absent one is empty.
pub(crate) fn read_posting<T>(
    postings: &T,
    seg: u32,
    kind: Posting,
    value: &str,
) -> Result<Option<RoaringBitmap>, StoreError>
where
    T: ReadableTable<(u32, u8, &'static str), &'static [u8]>,
{
    match postings.get((seg, kind as u8, value))? {
        Some(guard) => Ok(Some(bitmap_from(guard.value())?)),
        None => Ok(None),
    }
}

/// A segment's deleted or replaced rows: read only when its header says it has lost rows since
/// it was written (each tombstone takes one off `live`).
pub(crate) fn tombstones<T>(
    postings: &T,
    seg: u32,
    header: &SegmentHeader,
) -> Result<RoaringBitmap, StoreError>
where
    T: ReadableTable<(u32, u8, &'static str), &'static [u8]>,
{
    if header.live == header.rows {
        return Ok(RoaringBitmap::new());
    }
    Ok(read_posting(postings, seg, Posting::Tombstone, "")?.unwrap_or_default())
}

/// Reads a segment header.
pub(crate) fn read_header<T>(segments: &T, seg: u32) -> Result<SegmentHeader, StoreError>
where
    T: ReadableTable<u32, &'static [u8]>,
{
    match segments.get(seg)? {
        Some(guard) => codec::decode_header(guard.value()),
        None => Err(StoreError::Corrupt(format!("segment {seg} has no header"))),
    }
}

/// The earliest and latest `Date_Start` of a segment's live rows, `None` when it has none.
/// The header's range covers rows deleted since the segment was written, so a segment that
/// has lost rows is read: a small one's records, a larger one's `dates` entries (each
/// account's first and last dates that keep a live row: a few entries an account).
pub(crate) fn live_date_range<C, D, P>(
    calls: &C,
    dates: &D,
    postings: &P,
    seg: u32,
    header: &SegmentHeader,
) -> Result<Option<(u32, u32)>, StoreError>
where
    C: ReadableTable<(u32, u32), &'static [u8]>,
    D: ReadableTable<(u32, u32, u32), u32>,
    P: ReadableTable<(u32, u8, &'static str), &'static [u8]>,
{
    if header.live == 0 {
        return Ok(None);
    }
    if header.live == header.rows {
        return Ok(Some((header.min_date, header.max_date)));
    }
    let dead = tombstones(postings, seg, header)?;
    let mut range: Option<(u32, u32)> = None;
    if header.small {
        for_each_record(calls, seg, |row, record| {
            if !dead.contains(row) {
                let date = codec::call_head(record)?.2;
                range = widen(range, (date, date));
            }
            Ok(())
        })?;
        return Ok(range);
    }
    let mut account = 0u32;
    // Each account of the segment in turn: the first entry at or after `account`'s names it.
    while let Some(first) = dates
        .range((seg, account, 0u32)..=(seg, u32::MAX, u32::MAX))?
        .next()
    {
        account = first?.0.value().1;
        // Whether the rows of a `dates` entry (up to the next entry's first row) hold a live one;
        // if so, its date widens the range.
        let mut live = |entry: Result<_, redb::StorageError>| -> Result<bool, StoreError> {
            let (key, row): (AccessGuard<'_, (u32, u32, u32)>, AccessGuard<'_, u32>) = entry?;
            let date = key.value().2;
            let from = row.value();
            let to = row_lower_bound(dates, seg, header.rows, account, u64::from(date) + 1)?;
            let live = u64::from(to.saturating_sub(from)) > dead.range_cardinality(from..to);
            if live {
                range = widen(range, (date, date));
            }
            Ok(live)
        };
        let entries = || dates.range((seg, account, 0u32)..=(seg, account, u32::MAX));
        // The account's earliest live date, then its latest.
        for entry in entries()? {
            if live(entry)? {
                break;
            }
        }
        for entry in entries()?.rev() {
            if live(entry)? {
                break;
            }
        }
        match account.checked_add(1) {
            Some(next) => account = next,
            None => break,
        }
    }
    Ok(range)
}

/// `range` widened to cover `(lo, hi)`.
pub(crate) fn widen(range: Option<(u32, u32)>, (lo, hi): (u32, u32)) -> Option<(u32, u32)> {
    Some(range.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))))
}

/// The most bytes of a block of records: blocks fill 16 KiB pages (less redb's leaf header)
/// rather than a fixed number of rows, because redb gives a value a power-of-two number of pages.
pub(crate) const BLOCK_BYTES: usize = 16 * 1024 - 64;

/// Calls `f` with each record of segment `seg`, in row order, with its row.
pub(crate) fn for_each_record<T>(
    calls: &T,
    seg: u32,
    mut f: impl FnMut(u32, &[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError>
where
    T: ReadableTable<(u32, u32), &'static [u8]>,
{
    for entry in calls.range((seg, 0u32)..=(seg, u32::MAX))? {
        let (key, bytes) = entry?;
        let first = key.value().1;
        let block = codec::Block::parse(bytes.value(), "a block of call records")?;
        for i in 0..block.len() {
            f(
                first.saturating_add(i as u32),
                block.record(i, "a call record")?,
            )?;
        }
    }
    Ok(())
}

/// The block that holds `loc`: its first row and its bytes, in place.
fn block_at<T>(calls: &T, loc: Loc) -> Result<(u32, AccessGuard<'_, &'static [u8]>), StoreError>
where
    T: ReadableTable<(u32, u32), &'static [u8]>,
{
    let Some(entry) = calls.range((loc.0, 0)..=loc)?.next_back() else {
        return Err(StoreError::Corrupt(format!(
            "no record at segment {} row {}",
            loc.0, loc.1
        )));
    };
    let (key, value) = entry?;
    Ok((key.value().1, value))
}

/// The encoded record at `loc` in the bytes of its block (which starts at row `first`), with the
/// block's row count, parsing the block once.
pub(crate) fn record_in_block(
    bytes: &[u8],
    first: u32,
    loc: Loc,
) -> Result<(&[u8], u32), StoreError> {
    let block = codec::Block::parse(bytes, "a block of call records")?;
    let i = loc.1.checked_sub(first).map(|i| i as usize);
    match i {
        Some(i) if i < block.len() => Ok((block.record(i, "a call record")?, block.len() as u32)),
        _ => Err(StoreError::Corrupt(format!(
            "no record at segment {} row {}",
            loc.0, loc.1
        ))),
    }
}

/// Reads and decodes the call at `loc`.
pub(crate) fn read_call<T>(calls: &T, loc: Loc, counters: &CounterCells) -> Result<Call, StoreError>
where
    T: ReadableTable<(u32, u32), &'static [u8]>,
{
    counters.add_records_read(1);
    let (first, bytes) = block_at(calls, loc)?;
    codec::decode_call(record_in_block(bytes.value(), first, loc)?.0)
}

/// The first row of segment `seg` at or after (`account`, `date`) in row order; `rows` when there
/// is none. `date` past `u32::MAX` means "after every date of the account".
pub(crate) fn row_lower_bound<T>(
    dates: &T,
    seg: u32,
    rows: u32,
    account: u32,
    date: u64,
) -> Result<u32, StoreError>
where
    T: ReadableTable<(u32, u32, u32), u32>,
{
    let start = match u32::try_from(date) {
        Ok(d) => (seg, account, d),
        Err(_) => match account.checked_add(1) {
            Some(next) => (seg, next, 0),
            None => return Ok(rows),
        },
    };
    let mut range = dates.range(start..)?;
    match range.next() {
        Some(entry) => {
            let (key, row) = entry?;
            Ok(if key.value().0 == seg {
                row.value()
            } else {
                rows
            })
        }
        None => Ok(rows),
    }
}

/// Reads a segment's filters from the `filters` table.
pub(crate) fn read_filter<T>(filters: &T, seg: u32) -> Result<SegmentFilter, StoreError>
where
    T: ReadableTable<u32, &'static [u8]>,
{
    match filters.get(seg)? {
        Some(bytes) => SegmentFilter::from_bytes(bytes.value()),
        None => Err(StoreError::Corrupt(format!("segment {seg} has no filter"))),
    }
}

/// The caller group (see [`push_group_key`]) at the start of a `groups` run key.
fn group_of(key: &[u8]) -> Result<&[u8], StoreError> {
    let bad = || StoreError::Corrupt(format!("a caller group key is cut short: {key:?}"));
    let mut len = 1;
    for _ in 0..2 {
        let part = key
            .get(len..len + 4)
            .and_then(|b| b.first_chunk::<4>())
            .ok_or_else(bad)?;
        len += 4 + u32::from_be_bytes(*part) as usize;
    }
    key.get(..len).ok_or_else(bad)
}

/// Where the live call with this CallSid is stored: the first of `segments` whose run holds it
/// at a row that `is_dead(segment, row)` (tombstoned) does not rule out. A CallSid has at most
/// one live row in the store.
pub(crate) fn locate<T>(
    sids: &T,
    segments: impl Iterator<Item = u32>,
    mut is_dead: impl FnMut(u32, u32) -> Result<bool, StoreError>,
    sid: &str,
) -> Result<Option<Loc>, StoreError>
where
    T: ReadableTable<RunKey, &'static [u8]>,
{
    for seg in segments {
        if let Some(row) = runs::get(sids, seg, sid.as_bytes())? {
            if !is_dead(seg, row)? {
                return Ok(Some((seg, row)));
            }
        }
    }
    Ok(None)
}

/// What a write reads of the segments stored before it: their ids, newest first, and their
/// tombstones (each segment's runs keep the entries of rows deleted since).
struct Stored {
    segments: Vec<StoredSegment>,
    /// Indexes into `segments`, by earliest `Date_Start`.
    by_date: Vec<usize>,
}

/// A segment as a write reads it.
struct StoredSegment {
    seg: u32,
    /// Its earliest `Date_Start` (of every row, deleted ones included).
    min_date: u32,
    tombstones: RoaringBitmap,
    filter: Arc<SegmentFilter>,
}

/// The first call of a caller group in a scope, in result order, and where it is stored.
#[derive(Clone)]
struct GroupFirst {
    date: u32,
    sid: String,
    loc: Loc,
}

impl Stored {
    /// Reads the segments at the start of a write transaction: all committed, so their
    /// filters may go into `cache`.
    fn read(t: &WriteTables<'_>, cache: &FilterCache) -> Result<Stored, StoreError> {
        let listed = list_segments(&t.segments)?;
        let ids: Vec<u32> = listed.iter().map(|(seg, _)| *seg).collect();
        cache.retain(&ids);
        let mut segments = Vec::with_capacity(listed.len());
        for (seg, header) in listed.into_iter().rev() {
            segments.push(StoredSegment {
                seg,
                min_date: header.min_date,
                tombstones: tombstones(&t.postings, seg, &header)?,
                filter: cache.get(seg, || read_filter(&t.filters, seg))?,
            });
        }
        let mut by_date: Vec<usize> = (0..segments.len()).collect();
        by_date.sort_by_key(|&i| segments[i].min_date);
        Ok(Stored { segments, by_date })
    }

    /// Where the live call with this CallSid is stored, if it is.
    fn locate(&self, t: &WriteTables<'_>, sid: &str, h: u64) -> Result<Option<Loc>, StoreError> {
        locate(
            &t.sids,
            self.segments
                .iter()
                .filter(|s| s.filter.sids.may_contain_hash(h))
                .map(|s| s.seg),
            |seg, row| {
                let dead = self
                    .segments
                    .iter()
                    .any(|s| s.seg == seg && s.tombstones.contains(row));
                Ok(dead)
            },
            sid,
        )
    }

    /// The first live call of a caller group (see [`push_group_key`]; `h` is its
    /// [`filter::hash`]) over every segment, leaving out the calls at `gone`. Segments are
    /// searched by earliest date, up to the first that starts after the call found so far: a
    /// live feed's segments mostly follow each other in time, so a repeat caller's first call
    /// is found in one segment, not in each that holds the caller.
    fn first_of_group(
        &self,
        t: &WriteTables<'_>,
        group: &[u8],
        h: u64,
        gone: &HashSet<Loc>,
    ) -> Result<Option<GroupFirst>, StoreError> {
        let mut first: Option<GroupFirst> = None;
        for &i in &self.by_date {
            let StoredSegment {
                seg,
                min_date,
                tombstones,
                filter,
            } = &self.segments[i];
            if first.as_ref().is_some_and(|f| *min_date > f.date) {
                break;
            }
            if !filter.groups.may_contain_hash(h) {
                continue;
            }
            runs::scan_prefix(&t.groups, *seg, group, |key, row| {
                if tombstones.contains(row) || gone.contains(&(*seg, row)) {
                    return Ok(true);
                }
                let rest = &key[group.len()..];
                let (date, sid) = rest.split_first_chunk::<4>().ok_or_else(|| {
                    StoreError::Corrupt(format!("a caller group key is too short: {key:?}"))
                })?;
                let date = u32::from_be_bytes(*date);
                let sid = std::str::from_utf8(sid).map_err(|_| {
                    StoreError::Corrupt(format!("a caller group key is not UTF-8: {key:?}"))
                })?;
                if first
                    .as_ref()
                    .is_none_or(|f| (date, sid) < (f.date, f.sid.as_str()))
                {
                    first = Some(GroupFirst {
                        date,
                        sid: sid.to_string(),
                        loc: (*seg, row),
                    });
                }
                Ok(false)
            })?;
        }
        Ok(first)
    }
}

/// The length of a caller group key's scope part (scope byte, scope sid with its length),
/// which the keys of one account or property share (see [`push_group_key`]).
fn group_scope_len(key: &[u8]) -> usize {
    match key.get(1..5) {
        Some(len) => 5 + u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize,
        None => key.len(),
    }
}

/// Appends a caller group, (scope, scope sid, caller identity), to `out`, as the byte prefix of
/// its `groups` keys. Keys are bytes so that B-tree comparisons are one `memcmp`: the scope
/// byte, then each string with a 4-byte length before it, so that a group's keys are exactly
/// the keys that start with its prefix; then `Date_Start` big-endian and the CallSid, so that
/// inside a group keys sort in result order.
fn push_group_key(out: &mut Vec<u8>, scope: u8, scope_sid: &str, caller: &str) {
    out.push(scope);
    for part in [scope_sid, caller] {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
}

/// The scopes of a call's caller groups (account, property), as (scope, scope sid).
fn group_scopes(call: &Call) -> [(u8, &str); 2] {
    [
        (SCOPE_ACCOUNT, &call.account_sid),
        (SCOPE_PROPERTY, &call.property_sid),
    ]
}

/// The merge policy: segments of the same tier (size class by powers of `factor`) are merged
/// once `factor` of them exist.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MergePolicy {
    pub factor: usize,
    /// A segment written with at most this many rows is small (see [`crate::small`]).
    pub small_rows: usize,
}

impl MergePolicy {
    fn tier(&self, rows: u32) -> u32 {
        let f = self.factor.max(2) as u64;
        let mut tier = 0;
        let mut size = u64::from(rows.max(1));
        while size >= f {
            size /= f;
            tier += 1;
        }
        tier
    }
}

/// What writes keep between transactions: decoded values of the committed state that a write
/// would otherwise read again.
#[derive(Default)]
pub(crate) struct WriteCaches {
    pub filters: FilterCache,
    pub pending: PendingCache,
}

/// A write: calls to insert or replace (normalized and deduplicated) and CallSids to delete.
pub(crate) struct Batch<'a> {
    pub upserts: &'a [Call],
    pub deletes: &'a [String],
}

/// What [`apply`] did.
pub(crate) struct Applied {
    pub written: usize,
    pub replaced: usize,
    pub deleted: usize,
}

/// Applies a batch inside a write transaction: removes the calls it replaces or deletes, adds its
/// calls as a new segment, keeps the Unique flags exact, and merges as the policy asks.
pub(crate) fn apply(
    t: &mut WriteTables<'_>,
    batch: Batch<'_>,
    policy: MergePolicy,
    counters: &CounterCells,
    caches: &WriteCaches,
) -> Result<Applied, StoreError> {
    let stored = Stored::read(t, &caches.filters)?;
    // 1. The stored versions that this batch removes. Upserts come deduplicated; a CallSid
    //    deleted more than once, or also upserted, counts once (as replaced when upserted).
    let mut removed: Vec<(Loc, Call)> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let dedupe = !batch.deletes.is_empty();
    let mut sid_filter = Bloom::with_keys(batch.upserts.len());
    let mut deleted = 0;
    let mut replaced = 0;
    for (i, sid) in batch
        .upserts
        .iter()
        .map(|c| c.call_sid.as_str())
        .chain(batch.deletes.iter().map(String::as_str))
        .enumerate()
    {
        // Its hash serves the look-up and, for an upsert, the new segment's filter.
        let h = filter::hash(sid.as_bytes());
        if i < batch.upserts.len() {
            sid_filter.insert_hash(h);
        }
        if dedupe && !seen.insert(sid) {
            continue;
        }
        if let Some(loc) = stored.locate(t, sid, h)? {
            removed.push((loc, read_call(&t.calls, loc, counters)?));
            if i < batch.upserts.len() {
                replaced += 1;
            } else {
                deleted += 1;
            }
        }
    }
    // 2. A property belongs to one account while it has calls.
    let pending = caches.pending.read(&t.counts)?;
    let pending = pending.sum();
    let stored_properties = check_bindings(t, pending, batch.upserts, &removed)?;
    // 3. Remove the old versions; register the new calls.
    let mut tombstones: BTreeMap<u32, RoaringBitmap> = BTreeMap::new();
    let mut counts = CountDeltas::default();
    for (loc, call) in &removed {
        tombstones.entry(loc.0).or_default().insert(loc.1);
        counts.add(call, false);
    }
    for call in batch.upserts {
        counts.add(call, true);
    }
    let (account_ids, added) = counts.apply(t, &stored_properties, pending)?;
    let mut rows: Vec<(u32, &Call)> = Vec::with_capacity(batch.upserts.len());
    for call in batch.upserts {
        let account = account_ids.get(&call.account_sid).copied().ok_or_else(|| {
            StoreError::Corrupt(format!("account {:?} has no id", call.account_sid))
        })?;
        rows.push((account, call));
    }
    // 4. The new segment's rows in order (sorting positions, not the large calls). Its records,
    //    runs and postings are built from the calls alone, on another thread for a large
    //    batch, while this one reads the caller groups the batch touches (their hashes and the
    //    CallSids' of step 1 fill the segment's filters).
    let mut order: Vec<(u32, u32, usize)> = rows
        .iter()
        .enumerate()
        .map(|(i, (account, call))| (*account, call.date_start, i))
        .collect();
    order.sort_unstable_by(|a, b| {
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then_with(|| rows[a.2].1.call_sid.cmp(&rows[b.2].1.call_sid))
    });
    let order: Vec<usize> = order.into_iter().map(|(_, _, i)| i).collect();
    let written = rows.len();
    let mut builder = if rows.is_empty() {
        None
    } else {
        let seg = next_id(t, "next_segment")?;
        Some(SegmentBuilder::new(seg, rows.len(), policy))
    };
    let small = builder.as_ref().is_some_and(|b| b.header.small);
    let threads = written >= PARALLEL_ROWS && parallel();
    let (parts, groups, group_run) = std::thread::scope(|scope| {
        let side = threads.then(|| scope.spawn(|| BatchParts::build(&rows, &order, small)));
        // Each upsert's row in the segment, as the rows are registered in order.
        let mut rows_of = vec![0u32; order.len()];
        for (row, &i) in order.iter().enumerate() {
            rows_of[i] = batch_row(row)?;
            if let Some(builder) = builder.as_mut() {
                let (account, call) = rows[i];
                builder.add_row(account, call.date_start);
            }
        }
        let (touches, run) = group_touches(&removed, batch.upserts, &rows_of)?;
        // A third thread sorts the run while this one looks the groups up: the two cores
        // share three tasks, which balance better than two.
        let (groups, group_run) = if threads {
            let encoding = scope.spawn(|| run.encode_bucketed(group_scope_len));
            let groups = caller_groups(t, &stored, &removed, written, touches)?;
            (groups, joined(encoding)?)
        } else {
            let groups = caller_groups(t, &stored, &removed, written, touches)?;
            (groups, run.encode_bucketed(group_scope_len)?)
        };
        let parts = match side {
            Some(side) => joined(side)?,
            None => BatchParts::build(&rows, &order, small)?,
        };
        Ok::<_, StoreError>((parts, groups, group_run))
    })?;
    // 5. The new segment.
    if let Some(mut builder) = builder {
        let seg = builder.seg;
        builder.postings = parts.postings;
        for (row, &i) in order.iter().enumerate() {
            let (unique_account, unique_property) = groups.firsts[i];
            if unique_account {
                builder.post(Posting::UniqueAccount, "", row as u32);
            }
            if unique_property {
                builder.post(Posting::UniqueProperty, "", row as u32);
            }
        }
        counters.add_records_written(written as u64);
        let mut cursor = t.calls.upper_bound_mut(Bound::<(u32, u32)>::Unbounded)?;
        let mut first = 0u32;
        for (records, bytes) in &parts.blocks {
            cursor.insert_before((seg, first), bytes.as_slice())?;
            first = first.saturating_add(*records);
        }
        cursor.close()?;
        builder.finish(t, counters)?;
        let filter = SegmentFilter {
            sids: sid_filter,
            groups: groups.filter,
        };
        t.filters.insert(seg, filter.to_bytes().as_slice())?;
        parts.sids.write(&mut t.sids, seg)?;
        group_run.write(&mut t.groups, seg)?;
        if !added.is_empty() {
            t.counts
                .insert(seg, codec::encode_counts(&added)?.as_slice())?;
        }
    }
    // 6. Flips and tombstones on older segments.
    for ((seg, kind), bits) in groups.flips {
        xor_posting(t, seg, kind, &bits, counters)?;
    }
    for (seg, bits) in tombstones {
        let mut header = read_header(&t.segments, seg)?;
        header.live = header.live.saturating_sub(bits.len() as u32);
        if header.live == 0 {
            drop_segment(t, seg)?;
            continue;
        }
        xor_posting(t, seg, Posting::Tombstone, &bits, counters)?;
        t.segments
            .insert(seg, codec::encode_header(&header)?.as_slice())?;
    }
    // 7. Merges.
    merge_by_policy(t, policy, counters)?;
    Ok(Applied {
        written,
        replaced,
        deleted,
    })
}

/// Batches of at least this many calls are normalized in two halves at once, and build their
/// segment's records, runs and postings on a second thread (a thread costs tens of
/// microseconds: a live feed's batches of 100 would lose).
pub(crate) const PARALLEL_ROWS: usize = 4096;

/// Whether a second thread can run at the same time.
pub(crate) fn parallel() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
}

/// What a scoped thread returned; its panic goes on in this thread.
fn joined<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Stored calls whose Unique flags flip, by (segment, flip kind).
type Flips = BTreeMap<(u32, Posting), RoaringBitmap>;

/// A caller group a batch touches: its key's place in a shared buffer (start, end), and the
/// earliest call the batch adds to it, as (`Date_Start`, CallSid, upsert index).
/// Its [`filter::hash`] comes first: groups sort by it, which is cheaper than by their keys.
type Touch<'a> = (u64, usize, usize, Option<(u32, &'a str, usize)>);

/// What [`caller_groups`] finds.
struct CallerGroups {
    /// The Unique flags of each upsert, by its index: first of its caller in its account, in
    /// its property.
    firsts: Vec<(bool, bool)>,
    /// The flags of stored calls that flip.
    flips: Flips,
    /// The new segment's filter over the caller groups it adds to.
    filter: Bloom,
}

/// The caller groups a batch touches, before their look-ups (see [`group_touches`]).
struct GroupTouches<'a> {
    /// Their keys, one after the other.
    keys: Vec<u8>,
    touched: Vec<Touch<'a>>,
}

/// Every caller group a batch touches (the groups of the calls it removes and of those it
/// adds); and the new segment's `groups` run, from the same keys (upsert `i` is the segment's
/// row `rows[i]`), to be sorted and encoded.
fn group_touches<'a>(
    removed: &'a [(Loc, Call)],
    upserts: &'a [Call],
    rows: &[u32],
) -> Result<(GroupTouches<'a>, RunBuilder), StoreError> {
    // The keys share one buffer: a batch touches two groups a call, of about 50 bytes each.
    let mut keys: Vec<u8> = Vec::with_capacity((removed.len() + upserts.len()) * 2 * 64);
    let mut touched: Vec<Touch<'_>> = Vec::with_capacity((removed.len() + upserts.len()) * 2);
    let mut run = RunBuilder::with_capacity(upserts.len() * 2, upserts.len() * 2 * 112);
    let calls = removed.iter().map(|(_, call)| (call, None)).chain(
        upserts
            .iter()
            .enumerate()
            .map(|(i, call)| (call, Some((call.date_start, call.call_sid.as_str(), i)))),
    );
    for (call, new) in calls {
        let Some(caller) = call.caller_identity() else {
            continue;
        };
        for (scope, scope_sid) in group_scopes(call) {
            let start = keys.len();
            push_group_key(&mut keys, scope, scope_sid, caller);
            let h = filter::hash(&keys[start..]);
            touched.push((h, start, keys.len(), new));
            if let Some((date, sid, i)) = new {
                let row = rows.get(i).copied().ok_or_else(|| {
                    StoreError::Corrupt(format!("upsert {i} has no row in its segment"))
                })?;
                run.push(&[&keys[start..], &date.to_be_bytes(), sid.as_bytes()], row)?;
            }
        }
    }
    Ok((GroupTouches { keys, touched }, run))
}

/// The first call of each caller group a batch touches, before and after the batch: the
/// Unique flags of its `upserts` new calls, the stored flags that flip.
fn caller_groups(
    t: &WriteTables<'_>,
    stored: &Stored,
    removed: &[(Loc, Call)],
    upserts: usize,
    GroupTouches { keys, mut touched }: GroupTouches<'_>,
) -> Result<CallerGroups, StoreError> {
    let removed_locs: HashSet<Loc> = removed.iter().map(|(loc, _)| *loc).collect();
    let key = |&(_, start, end, _): &Touch<'_>| &keys[start..end];
    // Each group once, with its earliest new call (a group's `Some`s sort before its `None`s).
    touched.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| key(a).cmp(key(b)))
            .then_with(|| (a.3.is_none(), a.3).cmp(&(b.3.is_none(), b.3)))
    });
    // The new segment's filter is sized, as a merge's, by its run's entries.
    let mut group_filter = Bloom::with_keys(touched.iter().filter(|e| e.3.is_some()).count());
    touched.dedup_by(|later, first| key(later) == key(first));
    let mut firsts = vec![(false, false); upserts];
    let mut flips = Flips::new();
    let no_locs = HashSet::new();
    for entry in &touched {
        let (h, group, earliest_new) = (entry.0, key(entry), &entry.3);
        if earliest_new.is_some() {
            group_filter.insert_hash(h);
        }
        let before = stored.first_of_group(t, group, h, &no_locs)?;
        // The first stored call after the batch: the same one, unless the batch removes it.
        let stored_after = match &before {
            Some(first) if removed_locs.contains(&first.loc) => {
                stored.first_of_group(t, group, h, &removed_locs)?
            }
            _ => before.clone(),
        };
        // The batch's earliest call takes first place when it comes before the stored one.
        let new_first = earliest_new.filter(|&(date, sid, _)| {
            stored_after
                .as_ref()
                .is_none_or(|s| (date, sid) < (s.date, s.sid.as_str()))
        });
        let account_scope = group.first() == Some(&SCOPE_ACCOUNT);
        if let Some((_, _, i)) = new_first {
            let flags = &mut firsts[i];
            if account_scope {
                flags.0 = true;
            } else {
                flags.1 = true;
            }
        }
        let after_sid = match new_first {
            Some((_, sid, _)) => Some(sid),
            None => stored_after.as_ref().map(|s| s.sid.as_str()),
        };
        let before_sid = before.as_ref().map(|b| b.sid.as_str());
        if before_sid == after_sid {
            continue;
        }
        let flip = if account_scope {
            Posting::UniqueAccountFlip
        } else {
            Posting::UniquePropertyFlip
        };
        // A stored call that stays where it is (neither replaced nor deleted) flips in place:
        // the one that was first, and the one that becomes first.
        let after_stored = stored_after.as_ref().filter(|_| new_first.is_none());
        for first in [before.as_ref(), after_stored].into_iter().flatten() {
            if removed_locs.contains(&first.loc) {
                continue;
            }
            let bits = flips.entry((first.loc.0, flip)).or_default();
            if !bits.remove(first.loc.1) {
                bits.insert(first.loc.1);
            }
        }
    }
    Ok(CallerGroups {
        firsts,
        flips,
        filter: group_filter,
    })
}

/// What a batch's new segment stores that is built from its calls alone: the record blocks,
/// the derived postings (none for a small segment) and the runs. (Its filters are filled with
/// the hashes its look-ups compute anyway.)
struct BatchParts {
    blocks: Vec<(u32, Vec<u8>)>,
    postings: BuilderPostings,
    sids: EncodedRun,
}

/// A batch's row number, which is a `u32`.
fn batch_row(row: usize) -> Result<u32, StoreError> {
    u32::try_from(row)
        .map_err(|_| StoreError::Corrupt(format!("a batch of more than {} calls", u32::MAX)))
}

impl BatchParts {
    /// Builds them for `rows` (account id, call) taken in `order`.
    fn build(
        rows: &[(u32, &Call)],
        order: &[usize],
        small: bool,
    ) -> Result<BatchParts, StoreError> {
        let mut block = codec::BlockWriter::default();
        let mut blocks = Vec::new();
        // Each posting's rows, gathered as plain lists (rows come in order) and made bitmaps
        // once at the end: a roaring insert a row and value, and a `String` a value, cost more.
        let mut rows_of: HashMap<(Posting, &str), Vec<u32>> = HashMap::new();
        let mut sids = RunBuilder::with_capacity(order.len(), order.len() * 40);
        let mut record = Vec::new();
        for (row, &i) in order.iter().enumerate() {
            let row = batch_row(row)?;
            let (_, call) = rows[i];
            record.clear();
            codec::encode_call(call, &mut record);
            blocks.extend(block.push_encoded(&record, BLOCK_BYTES)?);
            let sid = call.call_sid.as_bytes();
            sids.push(&[sid], row)?;
            if !small {
                for_each_derived(&call.view(), |kind, value| {
                    // Strictly increasing, as `from_sorted_iter` wants, should a call ever
                    // name a value twice.
                    let list = rows_of.entry((kind, value)).or_default();
                    if list.last() != Some(&row) {
                        list.push(row);
                    }
                });
            }
        }
        blocks.extend(block.finish());
        let mut postings = BuilderPostings::default();
        for ((kind, value), list) in rows_of {
            let bits = RoaringBitmap::from_sorted_iter(list).map_err(|_| {
                StoreError::Corrupt(format!("the rows of posting {value:?} are out of order"))
            })?;
            postings
                .entry(kind)
                .or_default()
                .insert(value.to_string(), bits);
        }
        Ok(BatchParts {
            blocks,
            postings,
            sids: sids.encode()?,
        })
    }
}

/// A property's stored (AccountSid, call count not pending), if it is stored.
fn stored_property(
    t: &WriteTables<'_>,
    property: &str,
) -> Result<Option<(String, u64)>, StoreError> {
    Ok(t.properties.get(property)?.map(|g| {
        let (account, n) = g.value();
        (account.to_string(), n)
    }))
}

/// A property's stored (AccountSid, call count not pending), as [`check_bindings`] read it
/// before the batch.
type StoredProperties<'a> = HashMap<&'a str, Option<(String, u64)>>;

/// Checks that every property of the batch stays in one account; returns what it read of the
/// batch's properties, so that the counts are updated without reading them again.
fn check_bindings<'a>(
    t: &WriteTables<'_>,
    pending: &Pending,
    upserts: &'a [Call],
    removed: &[(Loc, Call)],
) -> Result<StoredProperties<'a>, StoreError> {
    let mut leaving: HashMap<&str, u64> = HashMap::new();
    for (_, call) in removed {
        *leaving.entry(call.property_sid.as_str()).or_default() += 1;
    }
    let mut in_batch: HashMap<&str, &str> = HashMap::new();
    let mut stored_properties = StoredProperties::with_capacity(upserts.len());
    for call in upserts {
        let property = call.property_sid.as_str();
        let stored = match stored_properties.get(property) {
            Some(stored) => stored.clone(),
            None => {
                let stored = stored_property(t, property)?;
                stored_properties.insert(property, stored.clone());
                stored
            }
        };
        // The property's calls: the stored count and the pending ones (see `counts`).
        let bound_to = match stored {
            Some((account, n))
                if n.wrapping_add(pending.property(property))
                    > leaving.get(property).copied().unwrap_or(0) =>
            {
                Some(account)
            }
            _ => in_batch.get(property).map(|a| a.to_string()),
        };
        if let Some(bound_to) = bound_to {
            if bound_to != call.account_sid {
                return Err(StoreError::PropertyBound {
                    call_sid: call.call_sid.clone(),
                    property_sid: call.property_sid.clone(),
                    bound_to,
                    account_sid: call.account_sid.clone(),
                });
            }
        }
        in_batch
            .entry(property)
            .or_insert(call.account_sid.as_str());
    }
    Ok(stored_properties)
}

/// How a batch changes the call counts of accounts and properties: calls added, calls removed.
#[derive(Default)]
struct CountDeltas<'a> {
    accounts: HashMap<&'a str, (u64, u64)>,
    /// Property → (the account of its last added call, added, removed).
    properties: HashMap<&'a str, (Option<&'a str>, u64, u64)>,
}

impl<'a> CountDeltas<'a> {
    fn add(&mut self, call: &'a Call, added: bool) {
        let a = self.accounts.entry(call.account_sid.as_str()).or_default();
        let p = self
            .properties
            .entry(call.property_sid.as_str())
            .or_insert((None, 0, 0));
        if added {
            a.0 += 1;
            p.1 += 1;
            p.0 = Some(call.account_sid.as_str());
        } else {
            a.1 += 1;
            p.2 += 1;
        }
    }

    /// Takes the removed calls off the stored counts, registers new accounts and properties
    /// and rebinds properties (see [`crate::counts`]); returns the id of every account the
    /// batch names, and the added calls, to be stored as the new segment's pending counts.
    /// `known` holds properties as stored before the batch (read by [`check_bindings`]);
    /// others are read.
    fn apply(
        self,
        t: &mut WriteTables<'_>,
        known: &StoredProperties<'_>,
        pending: &Pending,
    ) -> Result<(HashMap<String, u32>, PendingCounts), StoreError> {
        let mut ids = HashMap::with_capacity(self.accounts.len());
        let mut added_counts = PendingCounts::default();
        // In AccountSid order, which gives new accounts their ids.
        let mut accounts: Vec<_> = self.accounts.into_iter().collect();
        accounts.sort_unstable_by_key(|&(account, _)| account);
        for (account, (added, removed)) in accounts {
            let stored = t.accounts.get(account)?.map(|g| g.value());
            let (id, n) = match stored {
                Some(v) => v,
                None => (next_id(t, "next_account")?, 0),
            };
            if stored.is_none() || removed > 0 {
                t.accounts.insert(account, (id, n.wrapping_sub(removed)))?;
            }
            ids.insert(account.to_string(), id);
            if added > 0 {
                added_counts.accounts.push((account.to_string(), added));
            }
        }
        let mut properties: Vec<_> = self.properties.into_iter().collect();
        properties.sort_unstable_by_key(|&(property, _)| property);
        for (property, (added_to, added, removed)) in properties {
            let stored = match known.get(property) {
                Some(stored) => stored.clone(),
                None => stored_property(t, property)?,
            };
            let after = match &stored {
                Some((_, n)) => n.wrapping_sub(removed),
                None => 0,
            };
            let pending_calls = pending.property(property);
            if after == 0 && pending_calls == 0 && added == 0 {
                // No call left, none pending: the property is free again.
                if stored.is_some() {
                    t.properties.remove(property)?;
                }
            } else {
                // One that gained calls is bound to their account (check_bindings made sure
                // they agree with any that stay).
                let account = match (&added_to, &stored) {
                    (Some(added_to), _) => added_to.to_string(),
                    (None, Some((account, _))) => account.clone(),
                    (None, None) => {
                        return Err(StoreError::Corrupt(format!(
                            "property {property:?} lost calls but is not stored"
                        )));
                    }
                };
                if stored.as_ref() != Some(&(account.clone(), after)) {
                    t.properties.insert(property, (account.as_str(), after))?;
                }
            }
            if let (Some(account), true) = (added_to, added > 0) {
                added_counts
                    .properties
                    .push((property.to_string(), account.to_string(), added));
            }
        }
        Ok((ids, added_counts))
    }
}

/// Takes the next value of a counter in `meta`.
fn next_id(t: &mut WriteTables<'_>, name: &str) -> Result<u32, StoreError> {
    let next = t.meta.get(name)?.map(|g| g.value()).unwrap_or(0);
    let id = u32::try_from(next)
        .map_err(|_| StoreError::Corrupt(format!("counter {name} is past its range: {next}")))?;
    t.meta.insert(name, next + 1)?;
    Ok(id)
}

/// XORs `bits` into a posting of a segment (deleting it when it becomes empty).
fn xor_posting(
    t: &mut WriteTables<'_>,
    seg: u32,
    kind: Posting,
    bits: &RoaringBitmap,
    counters: &CounterCells,
) -> Result<(), StoreError> {
    let mut current = read_posting(&t.postings, seg, kind, "")?.unwrap_or_default();
    current ^= bits;
    if current.is_empty() {
        t.postings.remove((seg, kind as u8, ""))?;
    } else {
        let bytes = bitmap_bytes(&current)?;
        counters.add_postings_written(1, bytes.len());
        t.postings.insert((seg, kind as u8, ""), bytes.as_slice())?;
    }
    Ok(())
}

/// Removes a segment and everything it holds (its calls are already elsewhere or deleted),
/// adding its pending counts to the stored ones.
fn drop_segment(t: &mut WriteTables<'_>, seg: u32) -> Result<(), StoreError> {
    replace_segments(t, &[seg], None).map(|_| ())
}

/// A merge's new segment once its records are written: the rest of it is written while the
/// merged segments are removed (see [`replace_segments`]).
struct Merged<'a> {
    builder: SegmentBuilder,
    inputs: &'a [MergeInput],
    counters: &'a CounterCells,
}

/// Removes segments `segs` from every table and writes the rest of the segment `merged` from
/// them in their place, if any (its runs, postings and header), returning its filter. Removing
/// reads every entry (redb has no range delete), and one write transaction lets threads write
/// different tables: the record blocks, each run and the rest go on four threads.
fn replace_segments(
    t: &mut WriteTables<'_>,
    segs: &[u32],
    merged: Option<Merged<'_>>,
) -> Result<Option<SegmentFilter>, StoreError> {
    counts::fold(&mut t.counts, &mut t.accounts, &mut t.properties, segs)?;
    let WriteTables {
        calls,
        sids,
        postings,
        dates,
        groups,
        filters,
        segments,
        ..
    } = &mut *t;
    let runs = merged.as_ref().map(|m| {
        let rows = m.builder.header.rows as usize;
        let moved: Vec<(u32, &[u32])> = m
            .inputs
            .iter()
            .map(|input| (input.seg, input.moved_to.as_slice()))
            .collect();
        (m.builder.seg, rows, moved)
    });
    let runs = runs.as_ref();
    std::thread::scope(|scope| {
        let records = scope.spawn(move || {
            for &seg in segs {
                calls.retain_in((seg, 0u32)..=(seg, u32::MAX), |_, _| false)?;
            }
            Ok::<_, StoreError>(())
        });
        // Each run: the merged segment's, from the runs of `segs`, then theirs removed.
        let run = |table: &'_ mut Table<'_, RunKey, &'static [u8]>, groups: bool| {
            let mut filter = None;
            if let Some((new_seg, rows, moved)) = runs {
                let mut bloom = Bloom::with_keys(if groups { 2 * rows } else { *rows });
                runs::merge(table, moved, GONE, *new_seg, |key| {
                    bloom.insert(if groups { group_of(key)? } else { key });
                    Ok(())
                })?;
                filter = Some(bloom);
            }
            for &seg in segs {
                runs::remove(table, seg)?;
            }
            Ok::<_, StoreError>(filter)
        };
        let sid_run = scope.spawn(move || run(sids, false));
        let group_run = scope.spawn(move || run(groups, true));
        let rest = (|| {
            if let Some(Merged {
                mut builder,
                inputs,
                counters,
            }) = merged
            {
                for input in inputs {
                    builder.carry_postings(postings, input)?;
                }
                let tables = SegmentTables {
                    postings,
                    dates,
                    segments,
                };
                builder.finish_into(tables, counters)?;
            }
            for &seg in segs {
                dates.retain_in((seg, 0u32, 0u32)..=(seg, u32::MAX, u32::MAX), |_, _| false)?;
                postings.retain_in((seg, 0u8, "")..(seg.saturating_add(1), 0u8, ""), |_, _| {
                    false
                })?;
                if seg == u32::MAX {
                    postings.retain_in((seg, 0u8, "").., |_, _| false)?;
                }
                filters.remove(seg)?;
                segments.remove(seg)?;
            }
            Ok::<_, StoreError>(())
        })();
        // Every thread is joined before any error returns: none outlives the transaction.
        let records = joined(records);
        let sids = joined(sid_run);
        let groups = joined(group_run);
        rest?;
        records?;
        Ok(match (sids?, groups?) {
            (Some(sids), Some(groups)) => Some(SegmentFilter { sids, groups }),
            _ => None,
        })
    })
}

/// The tables a [`SegmentBuilder`] finishes a segment in, once its last block is written: in a
/// merge, other threads meanwhile write the runs and remove the merged segments' records.
struct SegmentTables<'a, 'txn> {
    postings: &'a mut Table<'txn, (u32, u8, &'static str), &'static [u8]>,
    dates: &'a mut Table<'txn, (u32, u32, u32), u32>,
    segments: &'a mut Table<'txn, u32, &'static [u8]>,
}

/// Adds `row` to the posting of (`kind`, `value`).
fn post(postings: &mut BuilderPostings, kind: Posting, value: &str, row: u32) {
    let values = postings.entry(kind).or_default();
    match values.get_mut(value) {
        Some(bits) => {
            // Not `try_push`: it finds a dense container's maximum by scanning its words from
            // the top, up to 1,024 of them a row, where `insert` sets one bit.
            bits.insert(row);
        }
        None => {
            let mut bits = RoaringBitmap::new();
            bits.insert(row);
            values.insert(value.to_string(), bits);
        }
    }
}

/// Calls `f` with each derived posting (every kind rebuilt from the record alone, see
/// [`small::is_derived`]) that holds `call`.
pub(crate) fn for_each_derived<'a>(call: &CallRef<'a>, mut f: impl FnMut(Posting, &'a str)) {
    f(Posting::Property, call.property_sid);
    f(Posting::Disposition, call.disposition.as_str());
    f(Posting::To, call.to);
    for (kind, value) in [
        (Posting::Endpoint, call.endpoint),
        (Posting::Source, call.attribution_source),
        (Posting::Medium, call.attribution_medium),
        (Posting::Campaign, call.attribution_campaign),
        (Posting::Content, call.attribution_content),
    ] {
        if let Some(v) = value {
            f(kind, v);
        }
    }
    if let Some(path) = call.prompts_keys {
        for prefix in prompt_prefixes(path).take(INDEXED_PROMPT_DEPTH) {
            f(Posting::Prompt, prefix);
        }
    }
    if caller_identity(call.from).is_none() {
        f(Posting::Anonymous, "");
    }
}

/// A segment's postings while it is built: kind → value → rows.
type BuilderPostings = HashMap<Posting, HashMap<String, RoaringBitmap>>;

/// Writes one segment row by row, in row order.
struct SegmentBuilder {
    seg: u32,
    header: SegmentHeader,
    postings: BuilderPostings,
    last: Option<(u32, u32)>,
    /// The segment's `dates` entries, (account id, `Date_Start`, first row), in key order.
    dates: Vec<(u32, u32, u32)>,
    /// The records of the block being filled, and its first row.
    block: codec::BlockWriter,
    block_first: u32,
}

impl SegmentBuilder {
    /// A builder of segment `seg`, which will hold `rows` rows: small (storing no derived
    /// postings and no `dates` entries) when the policy says so.
    fn new(seg: u32, rows: usize, policy: MergePolicy) -> SegmentBuilder {
        SegmentBuilder {
            seg,
            header: SegmentHeader {
                rows: 0,
                live: 0,
                min_date: u32::MAX,
                max_date: 0,
                small: rows <= policy.small_rows,
            },
            postings: HashMap::new(),
            last: None,
            dates: Vec::new(),
            block: codec::BlockWriter::default(),
            block_first: 0,
        }
    }

    fn post(&mut self, kind: Posting, value: &str, row: u32) {
        post(&mut self.postings, kind, value, row);
    }

    /// Registers the next row (its place in `dates`, the header); the record is already in the
    /// block.
    fn add_row(&mut self, account: u32, date: u32) {
        let row = self.header.rows;
        if !self.header.small && self.last != Some((account, date)) {
            self.dates.push((account, date, row));
            self.last = Some((account, date));
        }
        self.header.rows += 1;
        self.header.live += 1;
        self.header.min_date = self.header.min_date.min(date);
        self.header.max_date = self.header.max_date.max(date);
    }

    /// Adds a row whose record is already encoded (a merge's); its postings come later from
    /// [`SegmentBuilder::carry_postings`]. Returns its row.
    fn push_encoded(
        &mut self,
        t: &mut WriteTables<'_>,
        record: &[u8],
        (account, date): (u32, u32),
        counters: &CounterCells,
    ) -> Result<u32, StoreError> {
        let new_row = self.header.rows;
        if let Some(finished) = self.block.push_encoded(record, BLOCK_BYTES)? {
            self.write_block(&mut t.calls, finished)?;
        }
        counters.add_records_written(1);
        self.add_row(account, date);
        Ok(new_row)
    }

    /// Adds the postings of a merge input, renumbered into this segment's rows; the Unique
    /// flags go in as they are now (base XOR flip), tombstones and flips are left behind. A
    /// small segment takes only the Unique flags.
    fn carry_postings(
        &mut self,
        postings: &Table<'_, (u32, u8, &'static str), &'static [u8]>,
        input: &MergeInput,
    ) -> Result<(), StoreError> {
        let seg = input.seg;
        // A small segment stores nothing derived, and a small input's rows were posted as
        // they were copied (see `merge`).
        if !self.header.small && !input.small {
            for entry in postings.range((seg, 0u8, "")..)? {
                let (key, value) = entry?;
                let (s, kind, name) = key.value();
                if s != seg {
                    break;
                }
                let kind = match Posting::from_u8(kind) {
                    Some(kind) if small::is_derived(kind) => kind,
                    Some(_) => continue,
                    None => {
                        return Err(StoreError::Corrupt(format!(
                            "segment {seg} has a posting of unknown kind {kind}"
                        )));
                    }
                };
                let bits = renumber(&bitmap_from(value.value())?, &input.moved_to)?;
                self.add_posting(kind, name, bits);
            }
        }
        let unique_account = renumber(&input.unique_account, &input.moved_to)?;
        self.add_posting(Posting::UniqueAccount, "", unique_account);
        let unique_property = renumber(&input.unique_property, &input.moved_to)?;
        self.add_posting(Posting::UniqueProperty, "", unique_property);
        Ok(())
    }

    fn add_posting(&mut self, kind: Posting, value: &str, bits: RoaringBitmap) {
        if bits.is_empty() {
            return;
        }
        let values = self.postings.entry(kind).or_default();
        match values.get_mut(value) {
            Some(existing) => *existing |= bits,
            None => {
                values.insert(value.to_string(), bits);
            }
        }
    }

    /// Writes a finished block of `records` rows from `block_first` on.
    fn write_block(
        &mut self,
        calls: &mut Table<'_, (u32, u32), &'static [u8]>,
        (records, bytes): (u32, Vec<u8>),
    ) -> Result<(), StoreError> {
        calls.insert((self.seg, self.block_first), bytes.as_slice())?;
        self.block_first = self.block_first.saturating_add(records);
        Ok(())
    }

    fn finish(
        mut self,
        t: &mut WriteTables<'_>,
        counters: &CounterCells,
    ) -> Result<(), StoreError> {
        self.write_last_block(&mut t.calls)?;
        let tables = SegmentTables {
            postings: &mut t.postings,
            dates: &mut t.dates,
            segments: &mut t.segments,
        };
        self.finish_into(tables, counters)
    }

    /// Writes the block being filled, if it holds any record.
    fn write_last_block(
        &mut self,
        calls: &mut Table<'_, (u32, u32), &'static [u8]>,
    ) -> Result<(), StoreError> {
        match self.block.finish() {
            Some(finished) => self.write_block(calls, finished),
            None => Ok(()),
        }
    }

    /// Writes the postings, the `dates` entries and the header (the last block is written).
    fn finish_into(
        self,
        t: SegmentTables<'_, '_>,
        counters: &CounterCells,
    ) -> Result<(), StoreError> {
        let mut postings: Vec<_> = self
            .postings
            .into_iter()
            .flat_map(|(kind, values)| values.into_iter().map(move |(v, b)| ((kind, v), b)))
            .collect();
        postings.sort_by(|a, b| a.0.cmp(&b.0));
        // The segment's keys come after every stored one (its id is the highest) and in
        // order: they are appended through cursors (a small segment has no `dates` entry).
        let mut cursor = t
            .postings
            .upper_bound_mut(Bound::<(u32, u8, &str)>::Unbounded)?;
        for ((kind, value), mut bits) in postings {
            bits.optimize();
            let bytes = bitmap_bytes(&bits)?;
            counters.add_postings_written(1, bytes.len());
            cursor.insert_before((self.seg, kind as u8, value.as_str()), bytes.as_slice())?;
        }
        cursor.close()?;
        if !self.dates.is_empty() {
            let mut cursor = t
                .dates
                .upper_bound_mut(Bound::<(u32, u32, u32)>::Unbounded)?;
            for &(account, date, row) in &self.dates {
                cursor.insert_before((self.seg, account, date), row)?;
            }
            cursor.close()?;
        }
        t.segments
            .insert(self.seg, codec::encode_header(&self.header)?.as_slice())?;
        Ok(())
    }
}

/// The segments and their headers, in id order.
pub(crate) fn list_segments<T>(segments: &T) -> Result<Vec<(u32, SegmentHeader)>, StoreError>
where
    T: ReadableTable<u32, &'static [u8]>,
{
    let mut out = Vec::new();
    for entry in segments.iter()? {
        let (key, value) = entry?;
        out.push((key.value(), codec::decode_header(value.value())?));
    }
    Ok(out)
}

/// Merges segments while some tier holds `factor` of them.
fn merge_by_policy(
    t: &mut WriteTables<'_>,
    policy: MergePolicy,
    counters: &CounterCells,
) -> Result<(), StoreError> {
    loop {
        let segments = list_segments(&t.segments)?;
        let mut tiers: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for (seg, header) in &segments {
            tiers
                .entry(policy.tier(header.live))
                .or_default()
                .push(*seg);
        }
        let Some(group) = tiers
            .into_values()
            .find(|segs| segs.len() >= policy.factor.max(2))
        else {
            return Ok(());
        };
        merge(t, &group, policy, counters)?;
    }
}

/// Merges every segment into one (nothing to do with fewer than two).
pub(crate) fn merge_all(
    t: &mut WriteTables<'_>,
    policy: MergePolicy,
    counters: &CounterCells,
) -> Result<(), StoreError> {
    let segments: Vec<u32> = list_segments(&t.segments)?
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    if segments.len() > 1 || has_tombstones(t, &segments)? {
        merge(t, &segments, policy, counters)?;
    }
    Ok(())
}

fn has_tombstones(t: &WriteTables<'_>, segments: &[u32]) -> Result<bool, StoreError> {
    for &seg in segments {
        if t.postings
            .get((seg, Posting::Tombstone as u8, ""))?
            .is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// One input of a merge: a segment read in chunks of encoded records, its deleted rows, its
/// Unique flags, and where each of its rows went.
struct MergeInput {
    seg: u32,
    rows: u32,
    live: u32,
    small: bool,
    next_row: u32,
    /// The live rows of the chunk read last, not yet merged.
    buffer: std::collections::VecDeque<MergeRow>,
    /// The chunk's records and CallSids, which the rows of `buffer` point into: one buffer a
    /// chunk rather than two allocations a row.
    chunk: Vec<u8>,
    tombstones: RoaringBitmap,
    unique_account: RoaringBitmap,
    unique_property: RoaringBitmap,
    /// Old row → new row, `u32::MAX` for a row left out.
    moved_to: Vec<u32>,
}

/// A live row read by a merge: its sort key and its record, still encoded (their places in
/// the input's `chunk`).
struct MergeRow {
    row: u32,
    account: u32,
    date: u32,
    sid: (usize, usize),
    record: (usize, usize),
}

/// Rows a merge reads from one input at a time (rounded up to whole blocks).
const MERGE_CHUNK: u32 = 2048;

/// A row a merge leaves out (`MergeInput::moved_to`).
const GONE: u32 = u32::MAX;

impl MergeInput {
    fn open(t: &WriteTables<'_>, seg: u32) -> Result<MergeInput, StoreError> {
        let header = read_header(&t.segments, seg)?;
        let get = |kind| -> Result<RoaringBitmap, StoreError> {
            Ok(read_posting(&t.postings, seg, kind, "")?.unwrap_or_default())
        };
        Ok(MergeInput {
            seg,
            rows: header.rows,
            live: header.live,
            small: header.small,
            next_row: 0,
            buffer: Default::default(),
            chunk: Vec::new(),
            tombstones: tombstones(&t.postings, seg, &header)?,
            unique_account: get(Posting::UniqueAccount)? ^ get(Posting::UniqueAccountFlip)?,
            unique_property: get(Posting::UniqueProperty)? ^ get(Posting::UniquePropertyFlip)?,
            moved_to: vec![GONE; header.rows as usize],
        })
    }

    /// The next live row, reading a chunk when the buffer is empty. Only the leading fields of
    /// each record are decoded.
    fn peek(
        &mut self,
        t: &WriteTables<'_>,
        accounts: &mut AccountIds,
        counters: &CounterCells,
    ) -> Result<Option<&MergeRow>, StoreError> {
        while self.buffer.is_empty() && self.next_row < self.rows {
            self.chunk.clear();
            let end = self.next_row.saturating_add(MERGE_CHUNK).min(self.rows);
            // The blocks that start in `next_row..end` (`next_row` is always a block's first
            // row); the last of them may reach past `end`.
            let mut last = self.next_row;
            for entry in t.calls.range((self.seg, self.next_row)..(self.seg, end))? {
                let (key, value) = entry?;
                let first = key.value().1;
                let block = codec::Block::parse(value.value(), "a block of call records")?;
                let mut read = 0;
                for i in 0..block.len() {
                    let row = first.saturating_add(i as u32);
                    if self.tombstones.contains(row) {
                        continue;
                    }
                    read += 1;
                    let record = block.record(i, "a call record")?;
                    let (account_sid, call_sid, date) = codec::call_head(record)?;
                    let at = self.chunk.len();
                    self.chunk.extend_from_slice(record);
                    let record_end = self.chunk.len();
                    self.chunk.extend_from_slice(call_sid.as_bytes());
                    self.buffer.push_back(MergeRow {
                        row,
                        account: accounts.get(&t.accounts, account_sid)?,
                        date,
                        sid: (record_end, self.chunk.len()),
                        record: (at, record_end),
                    });
                }
                counters.add_records_read(read);
                last = first.saturating_add(block.len() as u32);
            }
            if last <= self.next_row {
                return Err(StoreError::Corrupt(format!(
                    "segment {} has no block at row {} of {}",
                    self.seg, self.next_row, self.rows
                )));
            }
            self.next_row = last;
        }
        Ok(self.buffer.front())
    }
}

/// The sort key of an input's next row (rows sort by account id, date, CallSid).
fn merge_key(input: &MergeInput) -> Option<(u32, u32, &[u8])> {
    input
        .buffer
        .front()
        .map(|r| (r.account, r.date, &input.chunk[r.sid.0..r.sid.1]))
}

/// Account ids by AccountSid, read from `accounts` once each.
#[derive(Default)]
pub(crate) struct AccountIds(HashMap<String, u32>);

impl AccountIds {
    /// The id of `account_sid`, read from `accounts` the first time.
    pub(crate) fn get<A>(&mut self, accounts: &A, account_sid: &str) -> Result<u32, StoreError>
    where
        A: ReadableTable<&'static str, (u32, u64)>,
    {
        if let Some(&id) = self.0.get(account_sid) {
            return Ok(id);
        }
        let id = accounts
            .get(account_sid)?
            .map(|g| g.value().0)
            .ok_or_else(|| StoreError::Corrupt(format!("account {account_sid:?} has no id")))?;
        self.0.insert(account_sid.to_string(), id);
        Ok(id)
    }
}

/// Merges segments into a new one: a k-way merge of their live rows in row order that copies
/// the encoded records (decoding only their leading fields), then carries every posting over by
/// renumbering its rows. Records are read and written in chunks, so memory holds bitmaps and
/// row maps, not calls.
fn merge(
    t: &mut WriteTables<'_>,
    segs: &[u32],
    policy: MergePolicy,
    counters: &CounterCells,
) -> Result<(), StoreError> {
    counters.add_merge();
    let mut inputs = segs
        .iter()
        .map(|&seg| MergeInput::open(t, seg))
        .collect::<Result<Vec<_>, _>>()?;
    let mut accounts = AccountIds::default();
    let new_seg = next_id(t, "next_segment")?;
    let rows: usize = inputs.iter().map(|input| input.live as usize).sum();
    let mut builder = SegmentBuilder::new(new_seg, rows, policy);
    loop {
        // The input whose next row sorts first.
        let mut best: Option<usize> = None;
        for i in 0..inputs.len() {
            if inputs[i].peek(t, &mut accounts, counters)?.is_none() {
                continue;
            }
            if best.is_none_or(|b| merge_key(&inputs[i]) < merge_key(&inputs[b])) {
                best = Some(i);
            }
        }
        let Some(i) = best else {
            break;
        };
        let input = &mut inputs[i];
        let Some(row) = input.buffer.pop_front() else {
            break;
        };
        let record = &input.chunk[row.record.0..row.record.1];
        let new_row = builder.push_encoded(t, record, (row.account, row.date), counters)?;
        if let Some(slot) = input.moved_to.get_mut(row.row as usize) {
            *slot = new_row;
        }
        if !builder.header.small && input.small {
            // A small input stores no derived postings: they are built from its records.
            let call = codec::decode_ref(record)?;
            let postings = &mut builder.postings;
            for_each_derived(&call, |kind, value| post(postings, kind, value, new_row));
        }
    }
    let merged = if builder.header.rows > 0 {
        // The last block goes in first: the merged segments' blocks are removed meanwhile.
        builder.write_last_block(&mut t.calls)?;
        Some(Merged {
            builder,
            inputs: &inputs,
            counters,
        })
    } else {
        None
    };
    if let Some(filter) = replace_segments(t, segs, merged)? {
        t.filters.insert(new_seg, filter.to_bytes().as_slice())?;
    }
    Ok(())
}

/// Renumbers the rows of `bits` through `moved_to`, leaving out rows that went nowhere. Rows of
/// one input keep their order in a merge, so the result comes out sorted.
fn renumber(bits: &RoaringBitmap, moved_to: &[u32]) -> Result<RoaringBitmap, StoreError> {
    let rows = bits.iter().filter_map(|row| {
        moved_to
            .get(row as usize)
            .copied()
            .filter(|&new| new != GONE)
    });
    RoaringBitmap::from_sorted_iter(rows)
        .map_err(|e| StoreError::Corrupt(format!("a merge renumbered rows out of order: {e}")))
}
