//! Sorted runs: per segment, (key bytes → row) entries in key order, packed into blocks of
//! about 16 KiB, keyed by (segment, first key of the block).
//!
//! Two tables hold runs: `sids` (CallSid → row) and `groups` (caller group, `Date_Start`,
//! CallSid → row). A segment's runs are written once, in key order, when the segment is written
//! (a batch's, or a merge's), and removed with it, so a write touches only the new segment's
//! keys instead of one random key of a store-wide B-tree per call. A run keeps the entries of
//! rows deleted since; readers check them against the segment's tombstones.

use std::ops::Bound;

use foldhash::HashMap;
use redb::{ReadableTable, Table};

use crate::codec::{Block, BlockWriter};
use crate::error::StoreError;

/// The key of a block of a run: (segment, the block's first key).
pub(crate) type RunKey = (u32, &'static [u8]);

/// The most bytes of a block of a run (as for record blocks: a 16 KiB page less redb's header).
const RUN_BLOCK_BYTES: usize = 16 * 1024 - 64;

/// What a run's block is called in errors.
const WHAT: &str = "a block of a sorted run";

/// The key and row of entry `i` of a block.
fn entry<'a>(block: &Block<'a>, i: usize) -> Result<(&'a [u8], u32), StoreError> {
    let bytes = block.record(i, WHAT)?;
    let (key, row) = bytes
        .split_last_chunk::<4>()
        .ok_or_else(|| StoreError::Corrupt(format!("{WHAT}: entry {i} has no row")))?;
    Ok((key, u32::from_le_bytes(*row)))
}

/// The index of the first entry of `block` whose key is not below `key`.
fn lower_bound(block: &Block<'_>, key: &[u8]) -> Result<usize, StoreError> {
    let (mut lo, mut hi) = (0, block.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if entry(block, mid)?.0 < key {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

/// Entries collected in any order, packed as one segment's run by [`RunBuilder::encode`].
#[derive(Default)]
pub(crate) struct RunBuilder {
    /// Every key, one after the other.
    keys: Vec<u8>,
    /// (start in `keys`, length, row) of each entry.
    entries: Vec<(u32, u32, u32)>,
}

impl RunBuilder {
    /// A builder with room for `entries` entries of `bytes` key bytes in all.
    pub(crate) fn with_capacity(entries: usize, bytes: usize) -> RunBuilder {
        RunBuilder {
            keys: Vec::with_capacity(bytes),
            entries: Vec::with_capacity(entries),
        }
    }

    /// Adds an entry whose key is the concatenation of `parts`.
    pub(crate) fn push(&mut self, parts: &[&[u8]], row: u32) -> Result<(), StoreError> {
        let start = self.keys.len();
        for part in parts {
            self.keys.extend_from_slice(part);
        }
        let len = self.keys.len() - start;
        let start = u32::try_from(start)
            .map_err(|_| StoreError::Corrupt(format!("a run's keys passed 4 GiB: {start}")))?;
        self.entries.push((start, len as u32, row));
        Ok(())
    }

    /// How many entries it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Sorts the entries and packs them into blocks: the run, ready to be written. Needs no
    /// table, so a large batch builds its runs on another thread than its records.
    pub(crate) fn encode(self) -> Result<EncodedRun, StoreError> {
        self.encode_bucketed(|_| 0)
    }

    /// As [`RunBuilder::encode`], for keys whose first `bucket(key)` bytes repeat over many
    /// entries (a caller group's scope and scope sid), where no bucket is a proper prefix of
    /// another. Entries sort by their bucket's rank among the buckets, then by the 16 bytes
    /// that follow it, and only then by what follows the bucket: comparing long shared prefixes
    /// byte by byte, scattered over the key buffer, was most of the cost of a large batch's
    /// runs.
    pub(crate) fn encode_bucketed(
        self,
        bucket: impl Fn(&[u8]) -> usize,
    ) -> Result<EncodedRun, StoreError> {
        let keys = &self.keys;
        let key =
            |&(start, len, _): &(u32, u32, u32)| &keys[start as usize..(start + len) as usize];
        let split = |k: &[u8]| bucket(k).min(k.len());
        let mut ranks: HashMap<&[u8], u32> = HashMap::default();
        for e in &self.entries {
            let k = key(e);
            ranks.entry(&k[..split(k)]).or_insert(0);
        }
        let mut distinct: Vec<&[u8]> = ranks.keys().copied().collect();
        distinct.sort_unstable();
        for (rank, b) in distinct.into_iter().enumerate() {
            ranks.insert(b, rank as u32);
        }
        let mut sorted: Vec<(u32, u128, usize)> = Vec::with_capacity(self.entries.len());
        for (i, e) in self.entries.iter().enumerate() {
            let k = key(e);
            let b = split(k);
            let mut next = [0u8; 16];
            let tail = &k[b..k.len().min(b + 16)];
            next[..tail.len()].copy_from_slice(tail);
            let rank = ranks.get(&k[..b]).copied().unwrap_or(0);
            sorted.push((rank, u128::from_be_bytes(next), i));
        }
        let entries = &self.entries;
        // Equal ranks mean equal buckets: what follows the bucket decides.
        let rest = |i: usize| {
            let k = key(&entries[i]);
            &k[split(k)..]
        };
        sorted.sort_unstable_by(|a, b| {
            (a.0, a.1)
                .cmp(&(b.0, b.1))
                .then_with(|| rest(a.2).cmp(rest(b.2)))
        });
        let mut writer = RunWriter::default();
        let mut blocks = Vec::new();
        for &(_, _, i) in &sorted {
            let e = &entries[i];
            blocks.extend(writer.push(key(e), e.2)?);
        }
        blocks.extend(writer.finish());
        Ok(EncodedRun { blocks })
    }
}

/// A block of a run, with its first key.
type RunBlock = (Vec<u8>, Vec<u8>);

/// A run packed into blocks by [`RunBuilder::encode`].
pub(crate) struct EncodedRun {
    blocks: Vec<RunBlock>,
}

impl EncodedRun {
    /// Writes it as the run of segment `seg`.
    pub(crate) fn write(
        self,
        table: &mut Table<'_, RunKey, &'static [u8]>,
        seg: u32,
    ) -> Result<(), StoreError> {
        // A new segment's run comes after every stored key (its id is the highest), in order:
        // appended through a cursor.
        let mut cursor = table.upper_bound_mut(Bound::<(u32, &[u8])>::Unbounded)?;
        for (first, bytes) in &self.blocks {
            cursor.insert_before((seg, first.as_slice()), bytes.as_slice())?;
        }
        cursor.close()?;
        Ok(())
    }
}

/// Packs a run's entries, given in key order, into blocks.
#[derive(Default)]
struct RunWriter {
    block: BlockWriter,
    /// The first key of the block being filled.
    first: Vec<u8>,
    record: Vec<u8>,
}

impl RunWriter {
    /// Adds an entry; returns the block it finished, if any, with that block's first key.
    fn push(&mut self, key: &[u8], row: u32) -> Result<Option<RunBlock>, StoreError> {
        self.record.clear();
        self.record.extend_from_slice(key);
        self.record.extend_from_slice(&row.to_le_bytes());
        let started = self.block.is_empty();
        if let Some((_, bytes)) = self.block.push_encoded(&self.record, RUN_BLOCK_BYTES)? {
            return Ok(Some((
                std::mem::replace(&mut self.first, key.to_vec()),
                bytes,
            )));
        }
        if started {
            self.first.clear();
            self.first.extend_from_slice(key);
        }
        Ok(None)
    }

    /// The last block, if it holds any entry.
    fn finish(mut self) -> Option<RunBlock> {
        let (_, bytes) = self.block.finish()?;
        Some((self.first, bytes))
    }
}

/// The row of `key` in segment `seg`'s run, if the run holds it.
pub(crate) fn get<T>(table: &T, seg: u32, key: &[u8]) -> Result<Option<u32>, StoreError>
where
    T: ReadableTable<RunKey, &'static [u8]>,
{
    let empty: &[u8] = &[];
    let Some(found) = table.range((seg, empty)..=(seg, key))?.next_back() else {
        return Ok(None);
    };
    let (_, value) = found?;
    let block = Block::parse(value.value(), WHAT)?;
    let i = lower_bound(&block, key)?;
    if i < block.len() {
        let (k, row) = entry(&block, i)?;
        if k == key {
            return Ok(Some(row));
        }
    }
    Ok(None)
}

/// Calls `visit` with each entry of segment `seg`'s run whose key starts with `prefix`, in key
/// order, until it returns `false`.
pub(crate) fn scan_prefix<T>(
    table: &T,
    seg: u32,
    prefix: &[u8],
    mut visit: impl FnMut(&[u8], u32) -> Result<bool, StoreError>,
) -> Result<(), StoreError>
where
    T: ReadableTable<RunKey, &'static [u8]>,
{
    let empty: &[u8] = &[];
    // The block that would hold the prefix's first key, read in the same descent that finds
    // it: the last block starting at or before the prefix.
    let after = match table.range((seg, empty)..=(seg, prefix))?.next_back() {
        Some(found) => {
            let (k, value) = found?;
            let block = Block::parse(value.value(), WHAT)?;
            for i in lower_bound(&block, prefix)?..block.len() {
                let (key, row) = entry(&block, i)?;
                if !key.starts_with(prefix) || !visit(key, row)? {
                    return Ok(());
                }
            }
            // Every key from there on matched: the next blocks may hold more.
            Some(k.value().1.to_vec())
        }
        // The prefix comes before the run's first key: its entries start the run.
        None => None,
    };
    let from: Bound<(u32, &[u8])> = match &after {
        Some(k) => Bound::Excluded((seg, k.as_slice())),
        None => Bound::Included((seg, empty)),
    };
    for found in table.range((from, Bound::Unbounded))? {
        let (k, value) = found?;
        if k.value().0 != seg {
            break;
        }
        let block = Block::parse(value.value(), WHAT)?;
        for i in 0..block.len() {
            let (key, row) = entry(&block, i)?;
            if !key.starts_with(prefix) || !visit(key, row)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Removes segment `seg`'s run.
pub(crate) fn remove(
    table: &mut Table<'_, RunKey, &'static [u8]>,
    seg: u32,
) -> Result<(), StoreError> {
    let empty: &[u8] = &[];
    match seg.checked_add(1) {
        Some(next) => table.retain_in((seg, empty)..(next, empty), |_, _| false)?,
        None => table.retain_in((seg, empty).., |_, _| false)?,
    }
    Ok(())
}

/// One input of [`merge`]: a copy of its current block and where it is in it.
struct Cursor {
    seg: u32,
    /// The current block's first key (where the next block is looked for) and bytes.
    first: Vec<u8>,
    bytes: Vec<u8>,
    len: usize,
    pos: usize,
    started: bool,
    done: bool,
}

impl Cursor {
    /// Moves to the next block of the run (or marks the run done).
    fn load(&mut self, table: &Table<'_, RunKey, &'static [u8]>) -> Result<(), StoreError> {
        let empty: &[u8] = &[];
        let lower: Bound<(u32, &[u8])> = if self.started {
            Bound::Excluded((self.seg, self.first.as_slice()))
        } else {
            Bound::Included((self.seg, empty))
        };
        self.started = true;
        let next = match table.range((lower, Bound::Unbounded))?.next() {
            Some(found) => {
                let (k, value) = found?;
                let (seg, first) = k.value();
                (seg == self.seg).then(|| (first.to_vec(), value.value().to_vec()))
            }
            None => None,
        };
        match next {
            Some((first, bytes)) => {
                self.len = Block::parse(&bytes, WHAT)?.len();
                self.first = first;
                self.bytes = bytes;
                self.pos = 0;
            }
            None => self.done = true,
        }
        Ok(())
    }

    /// The current entry, loading blocks as needed; `None` once the run is done.
    fn current(
        &mut self,
        table: &Table<'_, RunKey, &'static [u8]>,
    ) -> Result<Option<(&[u8], u32)>, StoreError> {
        while !self.done && self.pos >= self.len {
            self.load(table)?;
        }
        if self.done {
            return Ok(None);
        }
        self.peek().map(Some)
    }

    /// The current entry of a cursor that [`Cursor::current`] left on one (not done).
    fn peek(&self) -> Result<(&[u8], u32), StoreError> {
        let block = Block::parse(&self.bytes, WHAT)?;
        entry(&block, self.pos)
    }
}

/// Puts cursor `i` (on an entry) into `order`, which holds cursors by descending (current key,
/// index): the next entry of the merge is the last's.
fn place(order: &mut Vec<usize>, cursors: &[Cursor], i: usize) -> Result<(), StoreError> {
    let (key, _) = cursors[i].peek()?;
    let (mut lo, mut hi) = (0, order.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let (other, _) = cursors[order[mid]].peek()?;
        if (other, order[mid]) > (key, i) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    order.insert(lo, i);
    Ok(())
}

/// Writes the run of segment `out` from the runs of merged segments: each input is
/// (segment, old row → new row, `gone` for a row left out). Keys keep their order, so this is a
/// k-way merge that reads and writes a block at a time. `on_key` sees every key written.
pub(crate) fn merge(
    table: &mut Table<'_, RunKey, &'static [u8]>,
    inputs: &[(u32, &[u32])],
    gone: u32,
    out: u32,
    mut on_key: impl FnMut(&[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut cursors: Vec<Cursor> = inputs
        .iter()
        .map(|&(seg, _)| Cursor {
            seg,
            first: Vec::new(),
            bytes: Vec::new(),
            len: 0,
            pos: 0,
            started: false,
            done: false,
        })
        .collect();
    let mut writer = RunWriter::default();
    let mut key = Vec::new();
    // Cursors on an entry, by descending key: a binary search places a cursor that moved,
    // rather than comparing every input's key for every entry.
    let mut order = Vec::with_capacity(cursors.len());
    for i in 0..cursors.len() {
        if cursors[i].current(table)?.is_some() {
            place(&mut order, &cursors, i)?;
        }
    }
    while let Some(i) = order.pop() {
        let (k, row) = cursors[i].peek()?;
        key.clear();
        key.extend_from_slice(k);
        cursors[i].pos += 1;
        let moved = inputs[i].1.get(row as usize).copied().unwrap_or(gone);
        if moved != gone {
            on_key(&key)?;
            if let Some((first, bytes)) = writer.push(&key, moved)? {
                table.insert((out, first.as_slice()), bytes.as_slice())?;
            }
        }
        if cursors[i].current(table)?.is_some() {
            place(&mut order, &cursors, i)?;
        }
    }
    if let Some((first, bytes)) = writer.finish() {
        table.insert((out, first.as_slice()), bytes.as_slice())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use redb::backends::InMemoryBackend;
    use redb::{Database, TableDefinition};

    use super::*;

    const RUNS: TableDefinition<RunKey, &[u8]> = TableDefinition::new("runs");
    const GONE: u32 = u32::MAX;

    /// Keys long enough that a few hundred of them fill several blocks, sharing prefixes.
    fn key_strategy() -> impl Strategy<Value = Vec<u8>> {
        (0u8..4, 0u16..300, 0usize..120).prop_map(|(a, b, pad)| {
            let mut key = vec![a];
            key.extend_from_slice(&b.to_be_bytes());
            key.extend(std::iter::repeat_n(b'x', pad));
            key
        })
    }

    fn build(table: &mut Table<'_, RunKey, &'static [u8]>, seg: u32, run: &BTreeMap<Vec<u8>, u32>) {
        let mut builder = RunBuilder::default();
        // Pushed in reverse: the builder sorts.
        for (key, row) in run.iter().rev() {
            builder.push(&[&key[..1], &key[1..]], *row).unwrap();
        }
        assert_eq!(builder.len(), run.len());
        // Bucketed by the first byte, as caller keys are by their scope: ranks and the bytes
        // after the bucket must order them as whole keys do.
        builder
            .encode_bucketed(|_| 1)
            .unwrap()
            .write(table, seg)
            .unwrap();
    }

    fn scan(
        table: &Table<'_, RunKey, &'static [u8]>,
        seg: u32,
        prefix: &[u8],
    ) -> Vec<(Vec<u8>, u32)> {
        let mut out = Vec::new();
        scan_prefix(table, seg, prefix, |k, row| {
            out.push((k.to_vec(), row));
            Ok(true)
        })
        .unwrap();
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn runs_answer_as_a_sorted_map(
            runs in proptest::collection::vec(
                proptest::collection::btree_map(key_strategy(), 0u32..5000, 0..600), 1..4),
            probes in proptest::collection::vec(key_strategy(), 0..40),
            kept in proptest::collection::vec(any::<bool>(), 5000),
        ) {
            let db = Database::builder().create_with_backend(InMemoryBackend::new()).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut table = txn.open_table(RUNS).unwrap();
                // Segments 1..=n, with segment 0 and n + 1 empty around them.
                for (i, run) in runs.iter().enumerate() {
                    build(&mut table, i as u32 + 1, run);
                }
                for (i, run) in runs.iter().enumerate() {
                    let seg = i as u32 + 1;
                    for key in run.keys().chain(&probes) {
                        prop_assert_eq!(get(&table, seg, key).unwrap(), run.get(key).copied());
                    }
                    for prefix in probes.iter().map(|p| &p[..p.len().min(3)]).chain([&[][..]]) {
                        let naive: Vec<(Vec<u8>, u32)> = run
                            .iter()
                            .filter(|(k, _)| k.starts_with(prefix))
                            .map(|(k, r)| (k.clone(), *r))
                            .collect();
                        prop_assert_eq!(scan(&table, seg, prefix), naive);
                    }
                }
                // Merge every run into segment 100: rows renumbered, some left out.
                let moved: Vec<Vec<u32>> = (0..runs.len())
                    .map(|i| (0..5000u32).map(|r| if kept[r as usize] { r + 10_000 * i as u32 } else { GONE }).collect())
                    .collect();
                let inputs: Vec<(u32, &[u32])> =
                    moved.iter().enumerate().map(|(i, m)| (i as u32 + 1, m.as_slice())).collect();
                let mut seen = Vec::new();
                merge(&mut table, &inputs, GONE, 100, |k| {
                    seen.push(k.to_vec());
                    Ok(())
                })
                .unwrap();
                let mut naive: Vec<(Vec<u8>, u32)> = Vec::new();
                for (i, run) in runs.iter().enumerate() {
                    for (k, r) in run {
                        if kept[*r as usize] {
                            naive.push((k.clone(), r + 10_000 * i as u32));
                        }
                    }
                }
                naive.sort();
                let merged = scan(&table, 100, &[]);
                // Equal keys in two inputs may come out in either order; their rows differ.
                let mut sorted = merged.clone();
                sorted.sort();
                prop_assert_eq!(sorted, naive.clone());
                prop_assert!(merged.windows(2).all(|w| w[0].0 <= w[1].0));
                prop_assert_eq!(seen, merged.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>());
                for seg in 1..=runs.len() as u32 {
                    remove(&mut table, seg).unwrap();
                    prop_assert!(scan(&table, seg, &[]).is_empty());
                }
                prop_assert_eq!(scan(&table, 100, &[]), merged);
            }
            txn.abort().unwrap();
        }
    }
}
