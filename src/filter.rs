//! Per-segment membership filters (blocked Bloom filters) over the keys of a segment's runs, so
//! that a write or a get by CallSid skips the segments that cannot hold a key without reading
//! their runs.
//!
//! Layout, stored in the `filters` table (segment → bytes): the byte length of the CallSid
//! filter (u32 LE), the CallSid filter, then the caller-group filter. A filter is its number of
//! 512-bit blocks (u32 LE) followed by the blocks' words (u64 LE). The hash is defined here
//! (FNV-1a, then a 64-bit finalizer) and must not change without a new format version.

use std::sync::{Arc, Mutex};

use foldhash::HashMap;

use crate::error::StoreError;

/// Bits per key (about 1 to 2% false positives with [`PROBES`] probes in 512-bit blocks).
const BITS_PER_KEY: usize = 10;
/// Bits set per key, all in one 512-bit block.
const PROBES: u32 = 7;

/// The stable 64-bit hash of a key: compute it once to probe many filters.
pub(crate) fn hash(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // The finalizer of MurmurHash3: FNV's low bits mix poorly on their own.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A blocked Bloom filter: a key sets [`PROBES`] bits of one 512-bit block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Bloom {
    words: Vec<u64>,
}

impl Bloom {
    /// An empty filter sized for `keys` keys.
    pub(crate) fn with_keys(keys: usize) -> Bloom {
        let blocks = (keys * BITS_PER_KEY).div_ceil(512).max(1);
        Bloom {
            words: vec![0; blocks * 8],
        }
    }

    fn probes(&self, h: u64) -> (usize, impl Iterator<Item = u32> + use<>) {
        let blocks = (self.words.len() / 8) as u64;
        let block = (((h >> 32) * blocks) >> 32) as usize;
        // Seven 9-bit bit positions from the low 63 bits.
        let bits = (0..PROBES).map(move |i| ((h >> (9 * i)) & 511) as u32);
        (block * 8, bits)
    }

    /// Adds a key.
    pub(crate) fn insert(&mut self, key: &[u8]) {
        self.insert_hash(hash(key));
    }

    /// Adds a key by its [`hash`].
    pub(crate) fn insert_hash(&mut self, h: u64) {
        let (base, bits) = self.probes(h);
        for bit in bits {
            self.words[base + (bit / 64) as usize] |= 1 << (bit % 64);
        }
    }

    /// Whether the key may have been added (`false`: it certainly was not).
    #[cfg(test)]
    pub(crate) fn may_contain(&self, key: &[u8]) -> bool {
        self.may_contain_hash(hash(key))
    }

    /// Whether a key of this [`hash`] may have been added.
    pub(crate) fn may_contain_hash(&self, h: u64) -> bool {
        let (base, mut bits) = self.probes(h);
        bits.all(|bit| {
            self.words
                .get(base + (bit / 64) as usize)
                .is_some_and(|w| w & (1 << (bit % 64)) != 0)
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&((self.words.len() / 8) as u32).to_le_bytes());
        for w in &self.words {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }

    fn read(bytes: &[u8]) -> Result<Bloom, StoreError> {
        let bad = || {
            StoreError::Corrupt(format!(
                "a segment filter is cut short ({} bytes)",
                bytes.len()
            ))
        };
        let (blocks, rest) = bytes.split_first_chunk::<4>().ok_or_else(bad)?;
        let blocks = u32::from_le_bytes(*blocks) as usize;
        if blocks == 0 || rest.len() != blocks * 64 {
            return Err(bad());
        }
        let words = rest
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]))
            .collect();
        Ok(Bloom { words })
    }
}

/// The filters of one segment: over its CallSids and over its caller groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SegmentFilter {
    pub sids: Bloom,
    pub groups: Bloom,
}

impl SegmentFilter {
    /// The bytes stored in the `filters` table.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut sids = Vec::with_capacity(4 + self.sids.words.len() * 8);
        self.sids.write(&mut sids);
        let mut out = Vec::with_capacity(4 + sids.len() + 4 + self.groups.words.len() * 8);
        out.extend_from_slice(&(sids.len() as u32).to_le_bytes());
        out.extend_from_slice(&sids);
        self.groups.write(&mut out);
        out
    }

    /// Reads what [`SegmentFilter::to_bytes`] wrote.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<SegmentFilter, StoreError> {
        let bad = || {
            StoreError::Corrupt(format!(
                "a segment filter is cut short ({} bytes)",
                bytes.len()
            ))
        };
        let (len, rest) = bytes.split_first_chunk::<4>().ok_or_else(bad)?;
        let (sids, groups) = rest
            .split_at_checked(u32::from_le_bytes(*len) as usize)
            .ok_or_else(bad)?;
        Ok(SegmentFilter {
            sids: Bloom::read(sids)?,
            groups: Bloom::read(groups)?,
        })
    }
}

/// Decoded filters of committed segments, shared by writes and gets. A segment's filter never
/// changes and segment ids are never reused once committed, so an entry stays valid; only
/// filters of segments read from a committed state are admitted (a segment written by a
/// transaction that then failed would leave its id to be used again).
#[derive(Default)]
pub(crate) struct FilterCache {
    inner: Mutex<HashMap<u32, Arc<SegmentFilter>>>,
}

impl FilterCache {
    /// The filter of committed segment `seg`, read with `read` on a miss.
    pub(crate) fn get(
        &self,
        seg: u32,
        read: impl FnOnce() -> Result<SegmentFilter, StoreError>,
    ) -> Result<Arc<SegmentFilter>, StoreError> {
        if let Some(found) = self.lock().get(&seg) {
            return Ok(Arc::clone(found));
        }
        let filter = Arc::new(read()?);
        self.lock().insert(seg, Arc::clone(&filter));
        Ok(filter)
    }

    /// The committed segments of `segs` whose CallSid filter may hold a key of hash `h`, in
    /// order; filters not cached yet are read with `read`. One lock for all of them.
    pub(crate) fn sids_may_hold(
        &self,
        segs: &[u32],
        h: u64,
        mut read: impl FnMut(u32) -> Result<SegmentFilter, StoreError>,
    ) -> Result<Vec<u32>, StoreError> {
        let mut cache = self.lock();
        let mut out = Vec::with_capacity(segs.len());
        for &seg in segs {
            let filter = match cache.get(&seg) {
                Some(filter) => filter,
                None => cache.entry(seg).or_insert(Arc::new(read(seg)?)),
            };
            if filter.sids.may_contain_hash(h) {
                out.push(seg);
            }
        }
        Ok(out)
    }

    /// Forgets the filters of segments not in `live` (merged away or dropped).
    pub(crate) fn retain(&self, live: &[u32]) {
        self.lock().retain(|seg, _| live.contains(seg));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Arc<SegmentFilter>>> {
        // A panic while holding the lock leaves a map of valid entries.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn no_false_negatives_and_bytes_round_trip(
            keys in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..300),
            probes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..50),
        ) {
            let mut sids = Bloom::with_keys(keys.len());
            let mut groups = Bloom::with_keys(keys.len() * 2);
            for k in &keys {
                sids.insert(k);
                groups.insert(k);
            }
            for k in &keys {
                prop_assert!(sids.may_contain(k));
                prop_assert!(groups.may_contain(k));
            }
            let filter = SegmentFilter { sids, groups };
            let back = SegmentFilter::from_bytes(&filter.to_bytes()).unwrap();
            prop_assert_eq!(&back, &filter);
            for p in &probes {
                prop_assert_eq!(back.sids.may_contain(p), filter.sids.may_contain(p));
            }
        }
    }

    #[test]
    fn false_positives_are_rare() {
        let mut bloom = Bloom::with_keys(10_000);
        for i in 0..10_000u32 {
            bloom.insert(format!("CA{i:032}").as_bytes());
        }
        let false_positives = (0..10_000u32)
            .filter(|i| bloom.may_contain(format!("CB{i:032}").as_bytes()))
            .count();
        assert!(
            false_positives < 300,
            "{false_positives} false positives in 10,000"
        );
    }

    #[test]
    fn a_cut_filter_is_an_error() {
        let filter = SegmentFilter {
            sids: Bloom::with_keys(5),
            groups: Bloom::with_keys(5),
        };
        let bytes = filter.to_bytes();
        for len in 0..bytes.len() {
            assert!(SegmentFilter::from_bytes(&bytes[..len]).is_err(), "{len}");
        }
    }
}
