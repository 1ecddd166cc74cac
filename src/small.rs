//! Small segments: the indexes of a segment of few rows (at most
//! [`Store::set_small_segment_rows`](crate::Store::set_small_segment_rows) when written, marked
//! in its header), built from its records when they are needed instead of stored.
//!
//! A live feed writes a segment of about a hundred calls per batch, and merges them eight at a
//! time. Storing such a segment's postings and `dates` entries took hundreds of B-tree inserts
//! per batch, and each merge level carried them over again, for indexes that are a few
//! microseconds of work to rebuild from a few hundred records. A small segment stores only its
//! records, its runs and filters, its header, and the postings that cannot be rebuilt from its
//! records: the Unique flags as of when it was written, its tombstones and flips. Everything
//! else (the postings of [`is_derived`] kinds, the rows of each account and date) is a
//! [`SmallIndex`], built by a query from the records and cached (a segment never changes and
//! its id is never used again); the merge that copies small segments into a large one posts
//! each record as it copies it.

use std::sync::Arc;

use foldhash::HashMap;
use redb::ReadableTable;
use roaring::RoaringBitmap;

use crate::codec;
use crate::error::StoreError;
use crate::index::{AccountIds, Posting, for_each_derived, for_each_record};
use crate::view::CallRef;

/// Whether postings of `kind` are rebuilt from the records of a small segment rather than
/// stored: every kind but the Unique flags, the flips and the tombstones.
pub(crate) fn is_derived(kind: Posting) -> bool {
    !matches!(
        kind,
        Posting::UniqueAccount
            | Posting::UniqueProperty
            | Posting::UniqueAccountFlip
            | Posting::UniquePropertyFlip
            | Posting::Tombstone
    )
}

/// The derived indexes of a small segment, built from its records.
#[derive(Debug, Default)]
pub(crate) struct SmallIndex {
    /// By kind (its `u8` as the index) → value → the rows that hold it.
    postings: Vec<HashMap<Box<str>, Arc<RoaringBitmap>>>,
    /// Each row's (account id, `Date_Start`), in row order (which is their order).
    keys: Vec<(u32, u32)>,
    /// Account id → its first row and the row after its last.
    accounts: HashMap<u32, (u32, u32)>,
}

/// A [`SmallIndex`] being built, row by row in row order.
#[derive(Default)]
struct SmallBuilder {
    /// By kind → value → its rows, in order (a `Vec` push is far cheaper than a roaring
    /// insert or push, which looks for the bitmap's last row each time).
    rows: Vec<HashMap<Box<str>, Vec<u32>>>,
    keys: Vec<(u32, u32)>,
    accounts: HashMap<u32, (u32, u32)>,
}

impl SmallBuilder {
    /// Adds the next row.
    fn add(&mut self, account: u32, call: &CallRef<'_>) {
        let row = self.keys.len() as u32;
        self.keys.push((account, call.date_start));
        self.accounts.entry(account).or_insert((row, row)).1 = row + 1;
        for_each_derived(call, |kind, value| {
            let kind = kind as usize;
            if self.rows.len() <= kind {
                self.rows.resize_with(kind + 1, HashMap::default);
            }
            let values = &mut self.rows[kind];
            match values.get_mut(value) {
                Some(rows) => rows.push(row),
                None => {
                    values.insert(Box::from(value), vec![row]);
                }
            }
        });
    }

    fn finish(self) -> SmallIndex {
        let postings = self
            .rows
            .into_iter()
            .map(|values| {
                values
                    .into_iter()
                    .map(|(value, rows)| {
                        // Rows were added in order, each once for a value.
                        let bits = RoaringBitmap::from_sorted_iter(rows.iter().copied())
                            .unwrap_or_else(|_| rows.into_iter().collect());
                        (value, Arc::new(bits))
                    })
                    .collect()
            })
            .collect();
        SmallIndex {
            postings,
            keys: self.keys,
            accounts: self.accounts,
        }
    }
}

impl SmallIndex {
    /// Builds the index of segment `seg` (`rows` rows) from its records in `calls`, with the
    /// account ids of `accounts`.
    pub(crate) fn build<C, A>(
        calls: &C,
        accounts: &A,
        seg: u32,
        rows: u32,
    ) -> Result<SmallIndex, StoreError>
    where
        C: ReadableTable<(u32, u32), &'static [u8]>,
        A: ReadableTable<&'static str, (u32, u64)>,
    {
        let mut index = SmallBuilder::default();
        index.keys.reserve(rows as usize);
        let mut ids = AccountIds::default();
        for_each_record(calls, seg, |row, record| {
            if row as usize != index.keys.len() {
                return Err(StoreError::Corrupt(format!(
                    "segment {seg} has a record at row {row} after {} rows",
                    index.keys.len()
                )));
            }
            let call = codec::decode_ref(record)?;
            let account = ids.get(accounts, call.account_sid)?;
            index.add(account, &call);
            Ok(())
        })?;
        if index.keys.len() != rows as usize {
            return Err(StoreError::Corrupt(format!(
                "segment {seg} has {} records for {rows} rows",
                index.keys.len()
            )));
        }
        Ok(index.finish())
    }

    /// The rows holding `value` of a derived `kind`, if any.
    pub(crate) fn posting(&self, kind: Posting, value: &str) -> Option<Arc<RoaringBitmap>> {
        self.postings
            .get(kind as usize)
            .and_then(|values| values.get(value))
            .cloned()
    }

    /// The first row at or after (`account`, `date`), as [`crate::index::row_lower_bound`]:
    /// the row count when there is none; `date` past `u32::MAX` means after every date of the
    /// account.
    pub(crate) fn lower_bound(&self, account: u32, date: u64) -> u32 {
        let Some(&(first, end)) = self.accounts.get(&account) else {
            return self
                .keys
                .partition_point(|&(a, d)| (a, u64::from(d)) < (account, date))
                as u32;
        };
        if date == 0 {
            return first;
        }
        if date > u64::from(u32::MAX) {
            return end;
        }
        let rows = self.keys.get(first as usize..end as usize).unwrap_or(&[]);
        first + rows.partition_point(|&(_, d)| u64::from(d) < date) as u32
    }

    /// About how many bytes the index holds, for the cache's budget.
    pub(crate) fn size(&self) -> usize {
        let postings: usize = self
            .postings
            .iter()
            .flat_map(HashMap::iter)
            .map(|(value, bits)| value.len() + bits.serialized_size() + 64)
            .sum();
        postings + self.keys.len() * 8 + self.accounts.len() * 16 + 64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_bound_orders_by_account_then_date() {
        let mut index = SmallBuilder::default();
        for (account, date) in [(1, 10), (1, 10), (1, 20), (3, 5)] {
            let mut call = crate::Call::new(
                "AC",
                "PR",
                "CA",
                date,
                "+15550100",
                crate::Disposition::Answered,
            );
            call.date_start = date;
            index.add(account, &call.view());
        }
        let index = index.finish();
        let answered = index.posting(Posting::Disposition, "Answered");
        assert_eq!(
            answered.map(|b| b.iter().collect::<Vec<_>>()),
            Some(vec![0, 1, 2, 3])
        );
        assert_eq!(index.posting(Posting::Disposition, "Missed"), None);
        assert_eq!(index.lower_bound(0, 0), 0);
        assert_eq!(index.lower_bound(1, 0), 0);
        assert_eq!(index.lower_bound(1, 11), 2);
        assert_eq!(index.lower_bound(1, u64::from(u32::MAX) + 1), 3);
        assert_eq!(index.lower_bound(2, 0), 3);
        assert_eq!(index.lower_bound(3, 6), 4);
        assert_eq!(index.lower_bound(4, 0), 4);
    }
}
