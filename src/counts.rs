//! Call counts of accounts and properties, kept so that a batch does not rewrite them.
//!
//! A property belongs to one account while it has calls, so the store counts the calls of each
//! property (and of each account, for [`crate::StoreStats`]). Rewriting those counts in
//! `accounts` and `properties` at every batch dirtied a page for about every second property a
//! batch named (a live feed's batch of 100 names about a hundred, spread over the table): a
//! fifth of the bytes a live feed wrote. Instead:
//!
//! - the calls a batch **adds** are counted in its segment's entry in `counts` ([`Pending`]),
//!   one value written with the segment;
//! - the calls a batch **removes** are taken off the stored count at once, which may leave it
//!   below zero (as a wrapping `u64`) while the calls it stands for are still pending;
//! - a segment's pending counts are added to the stored ones when the segment is merged away
//!   or dropped ([`fold`]), once for the many batches a merge takes.
//!
//! A count is the stored value plus every pending one (wrapping). A property whose count is 0
//! is free, whether or not its entry is still there (an entry is kept while calls of it are
//! pending); the entry names the account of the property's latest calls.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use foldhash::{HashMap, HashMapExt};
use redb::{ReadableTable, Table};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::StoreError;

/// The calls a segment's batch added, per account and per property, until they are folded into
/// the stored counts.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct PendingCounts {
    /// (AccountSid, calls added).
    pub accounts: Vec<(String, u64)>,
    /// (PropertySid, AccountSid, calls added).
    pub properties: Vec<(String, String, u64)>,
}

impl PendingCounts {
    /// Whether nothing is counted.
    pub(crate) fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.properties.is_empty()
    }
}

/// Every segment's pending counts, summed.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    accounts: HashMap<String, u64>,
    properties: HashMap<String, u64>,
}

impl Pending {
    /// Reads and sums the `counts` table.
    pub(crate) fn read<T>(counts: &T) -> Result<Pending, StoreError>
    where
        T: ReadableTable<u32, &'static [u8]>,
    {
        let mut sum = Pending::default();
        for entry in counts.iter()? {
            let (_, value) = entry?;
            sum.add(&codec::decode_counts(value.value())?, false);
        }
        Ok(sum)
    }

    /// Adds one segment's pending counts to the sums, or takes them off (`remove`).
    fn add(&mut self, one: &PendingCounts, remove: bool) {
        fn change(map: &mut HashMap<String, u64>, key: &str, n: u64, remove: bool) {
            let sum = map.get(key).copied().unwrap_or(0);
            let sum = if remove {
                sum.wrapping_sub(n)
            } else {
                sum.wrapping_add(n)
            };
            if sum == 0 {
                map.remove(key);
            } else {
                map.insert(key.to_string(), sum);
            }
        }
        for (account, n) in &one.accounts {
            change(&mut self.accounts, account, *n, remove);
        }
        for (property, _, n) in &one.properties {
            change(&mut self.properties, property, *n, remove);
        }
    }

    /// The calls of `account` pending.
    pub(crate) fn account(&self, account: &str) -> u64 {
        self.accounts.get(account).copied().unwrap_or(0)
    }

    /// The calls of `property` pending.
    pub(crate) fn property(&self, property: &str) -> u64 {
        self.properties.get(property).copied().unwrap_or(0)
    }
}

/// The summed pending counts of the committed state the last write started from, kept between
/// writes: a write reads the `counts` table's keys and decodes only the entries added since
/// (about one per write), instead of decoding and summing every entry.
///
/// It is brought up to date at the start of a write transaction, before the transaction
/// writes anything, so it always holds a committed state (a write that then fails changes
/// nothing here).
#[derive(Default)]
pub(crate) struct PendingCache {
    inner: Mutex<CachedPending>,
}

/// What [`PendingCache`] holds: each pending segment's counts, and their sums.
#[derive(Default)]
pub(crate) struct CachedPending {
    segments: BTreeMap<u32, PendingCounts>,
    sum: Pending,
}

impl CachedPending {
    /// The summed pending counts.
    pub(crate) fn sum(&self) -> &Pending {
        &self.sum
    }
}

impl PendingCache {
    /// The sums of the pending counts in `counts`, the table as a write transaction found it
    /// (committed). Held locked while the write uses them.
    pub(crate) fn read<T>(&self, counts: &T) -> Result<MutexGuard<'_, CachedPending>, StoreError>
    where
        T: ReadableTable<u32, &'static [u8]>,
    {
        let mut cached = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = Self::refresh(&mut cached, counts) {
            *cached = CachedPending::default();
            return Err(e);
        }
        Ok(cached)
    }

    fn refresh<T>(cached: &mut CachedPending, counts: &T) -> Result<(), StoreError>
    where
        T: ReadableTable<u32, &'static [u8]>,
    {
        let mut stored = Vec::new();
        for entry in counts.iter()? {
            let (key, value) = entry?;
            let seg = key.value();
            stored.push(seg);
            if !cached.segments.contains_key(&seg) {
                let one = codec::decode_counts(value.value())?;
                cached.sum.add(&one, false);
                cached.segments.insert(seg, one);
            }
        }
        // Folded since: no longer pending (`stored` is in key order).
        let gone: Vec<u32> = cached
            .segments
            .keys()
            .copied()
            .filter(|seg| stored.binary_search(seg).is_err())
            .collect();
        for seg in gone {
            if let Some(one) = cached.segments.remove(&seg) {
                cached.sum.add(&one, true);
            }
        }
        Ok(())
    }
}

/// Adds the pending counts of segments `segs` (those that have any) to the stored ones, and
/// removes them: each account and property once, however many of the segments count it.
pub(crate) fn fold(
    counts: &mut Table<'_, u32, &'static [u8]>,
    accounts: &mut Table<'_, &'static str, (u32, u64)>,
    properties: &mut Table<'_, &'static str, (&'static str, u64)>,
    segs: &[u32],
) -> Result<(), StoreError> {
    let mut account_sums: HashMap<String, u64> = HashMap::new();
    let mut property_sums: HashMap<String, (String, u64)> = HashMap::new();
    for &seg in segs {
        let Some(bytes) = counts.remove(seg)? else {
            continue;
        };
        let pending = codec::decode_counts(bytes.value())?;
        drop(bytes);
        for (account, n) in pending.accounts {
            let slot = account_sums.entry(account).or_default();
            *slot = slot.wrapping_add(n);
        }
        for (property, account, n) in pending.properties {
            let slot = property_sums.entry(property).or_insert((account, 0));
            slot.1 = slot.1.wrapping_add(n);
        }
    }
    for (account, n) in &account_sums {
        let Some((id, stored)) = accounts.get(account.as_str())?.map(|g| g.value()) else {
            return Err(StoreError::Corrupt(format!(
                "pending calls of account {account:?}, which has no id"
            )));
        };
        accounts.insert(account.as_str(), (id, stored.wrapping_add(*n)))?;
    }
    for (property, (account, n)) in &property_sums {
        let stored = properties
            .get(property.as_str())?
            .map(|g| (g.value().0.to_string(), g.value().1));
        // The entry stays while calls are pending, so it is there; it names the account of
        // the property's latest calls, which may be later than these segments'.
        let (bound, stored) = stored.unwrap_or_else(|| (account.clone(), 0));
        properties.insert(property.as_str(), (bound.as_str(), stored.wrapping_add(*n)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_counts_round_trip_through_the_codec() {
        let counts = PendingCounts {
            accounts: vec![("AC1".into(), 3), ("AC2".into(), 1)],
            properties: vec![("PR1".into(), "AC1".into(), 3)],
        };
        let bytes = codec::encode_counts(&counts).unwrap();
        let back = codec::decode_counts(&bytes).unwrap();
        assert_eq!(back.accounts, counts.accounts);
        assert_eq!(back.properties, counts.properties);
        assert!(codec::decode_counts(&bytes[..bytes.len() - 1]).is_err());
    }
}
