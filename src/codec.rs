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
