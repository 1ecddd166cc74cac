//! The one place that knows how values are encoded in the file (bincode 2, through serde).
//!
//! Everything stored as bytes goes through [`encode`] and [`decode`], so the encoding can be
//! swapped without touching anything else.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// Encodes a value.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    bincode::serde::encode_to_vec(value, config())
        .map_err(|e| StoreError::Corrupt(format!("a value does not encode: {e}")))
}

/// Decodes a value written by [`encode`]; `what` names it in the error.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, StoreError> {
    match bincode::serde::decode_from_slice(bytes, config()) {
        Ok((value, used)) if used == bytes.len() => Ok(value),
        Ok((_, used)) => Err(StoreError::Corrupt(format!(
            "{what}: {} bytes left over after {used}",
            bytes.len() - used
        ))),
        Err(e) => Err(StoreError::Corrupt(format!("{what} does not decode: {e}"))),
    }
}

/// Encodes a value at the end of `out`.
pub(crate) fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), StoreError> {
    bincode::serde::encode_into_std_write(value, out, config())
        .map(|_| ())
        .map_err(|e| StoreError::Corrupt(format!("a value does not encode: {e}")))
}

/// Builds blocks of records: many encoded values in one stored value, so that a store keeps
/// one B-tree entry per block rather than per record.
///
/// Layout: the record count (u16, little-endian), the end offset of each record in the payload
/// (u32 each), then the records one after the other.
#[derive(Default)]
pub(crate) struct BlockWriter {
    ends: Vec<u32>,
    payload: Vec<u8>,
}

impl BlockWriter {
    /// Adds a record. When the block would grow past `limit` bytes (and already holds a
    /// record), the block so far is finished first and returned with its record count; the new
    /// record starts the next block.
    pub(crate) fn push<T: Serialize>(
        &mut self,
        value: &T,
        limit: usize,
    ) -> Result<Option<(u32, Vec<u8>)>, StoreError> {
        self.push_with(limit, |out| encode_into(value, out))
    }

    /// Adds a record already encoded (taken from another block), as [`BlockWriter::push`].
    pub(crate) fn push_encoded(
        &mut self,
        record: &[u8],
        limit: usize,
    ) -> Result<Option<(u32, Vec<u8>)>, StoreError> {
        self.push_with(limit, |out| {
            out.extend_from_slice(record);
            Ok(())
        })
    }

    fn push_with(
        &mut self,
        limit: usize,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), StoreError>,
    ) -> Result<Option<(u32, Vec<u8>)>, StoreError> {
        let start = self.payload.len();
        write(&mut self.payload)?;
        let full = !self.ends.is_empty()
            && (self.framed_len(self.ends.len() + 1) > limit || self.ends.len() >= MAX_BLOCK_ROWS);
        let finished = if full {
            let record = self.payload.split_off(start);
            let finished = self.take();
            self.payload = record;
            Some(finished)
        } else {
            None
        };
        let end = u32::try_from(self.payload.len()).map_err(|_| {
            StoreError::Corrupt(format!("a block grew past 4 GiB: {}", self.payload.len()))
        })?;
        self.ends.push(end);
        Ok(finished)
    }

    /// The framed size of a block of `records` records holding the current payload.
    fn framed_len(&self, records: usize) -> usize {
        2 + 4 * records + self.payload.len()
    }

    /// The block so far with its record count, if it holds any; the writer starts a new,
    /// empty block.
    pub(crate) fn finish(&mut self) -> Option<(u32, Vec<u8>)> {
        if self.ends.is_empty() {
            None
        } else {
            Some(self.take())
        }
    }

    fn take(&mut self) -> (u32, Vec<u8>) {
        let mut out = Vec::with_capacity(self.framed_len(self.ends.len()));
        out.extend_from_slice(&(self.ends.len() as u16).to_le_bytes());
        for end in &self.ends {
            out.extend_from_slice(&end.to_le_bytes());
        }
        out.extend_from_slice(&self.payload);
        let records = self.ends.len() as u32;
        self.ends.clear();
        self.payload.clear();
        (records, out)
    }
}

/// The most records a block holds (its count is a u16).
const MAX_BLOCK_ROWS: usize = 4096;

/// The records of a block written by [`BlockWriter`], as byte slices.
pub(crate) struct Block<'a> {
    ends: &'a [u8],
    payload: &'a [u8],
}

impl<'a> Block<'a> {
    /// Reads a block's framing; `what` names it in errors.
    pub(crate) fn parse(bytes: &'a [u8], what: &str) -> Result<Block<'a>, StoreError> {
        let bad = || StoreError::Corrupt(format!("{what} is cut short ({} bytes)", bytes.len()));
        let (count, rest) = bytes.split_at_checked(2).ok_or_else(bad)?;
        let count = usize::from(u16::from_le_bytes([count[0], count[1]]));
        let (ends, payload) = rest.split_at_checked(4 * count).ok_or_else(bad)?;
        Ok(Block { ends, payload })
    }

    /// How many records the block holds.
    pub(crate) fn len(&self) -> usize {
        self.ends.len() / 4
    }

    fn end(&self, i: usize) -> usize {
        let b = &self.ends[4 * i..4 * i + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
    }

    /// The encoded bytes of record `i`; `what` names it in errors.
    pub(crate) fn record(&self, i: usize, what: &str) -> Result<&'a [u8], StoreError> {
        if i >= self.len() {
            return Err(StoreError::Corrupt(format!(
                "{what}: record {i} of a block of {}",
                self.len()
            )));
        }
        let start = if i == 0 { 0 } else { self.end(i - 1) };
        let end = self.end(i);
        self.payload.get(start..end).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "{what}: record {i} spans bytes {start}..{end} of {}",
                self.payload.len()
            ))
        })
    }

    /// Decodes record `i`; `what` names it in errors.
    pub(crate) fn decode<T: DeserializeOwned>(
        &self,
        i: usize,
        what: &str,
    ) -> Result<T, StoreError> {
        decode(self.record(i, what)?, what)
    }
}

/// Decodes the leading fields of a value written by [`encode`] into `T`, a struct that lists
/// them in the same order with the same types (the rest of the bytes is not read).
pub(crate) fn decode_prefix<T: DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> Result<T, StoreError> {
    bincode::serde::decode_from_slice(bytes, config())
        .map(|(value, _)| value)
        .map_err(|e| StoreError::Corrupt(format!("{what} does not decode: {e}")))
}
