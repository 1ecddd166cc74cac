//! The store: a redb file of calls in segments with roaring-bitmap indexes. SKELETON: being written.
#![allow(unused_variables, clippy::todo)]

use std::path::Path;

use crate::error::Result;
use crate::json::Response;
use crate::model::Call;
use crate::query::Query;
use crate::request::Request;

/// A store of calls in one redb file (or in memory).
pub struct Store {}

/// What a write did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Calls written (after the last-one-wins deduplication of the batch).
    pub written: usize,
    /// Of those, calls that replaced a stored call with the same CallSid.
    pub replaced: usize,
}

/// Work counters since the store was opened: what reads and writes touched.
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
    /// The earliest and latest `Date_Start`, when there are calls.
    pub date_range: Option<(u32, u32)>,
    /// The file's size in bytes (`None` in memory).
    pub file_bytes: Option<u64>,
}

impl Store {
    /// Creates a new store file at `path`; an error if a file is there.
    pub fn create(path: impl AsRef<Path>) -> Result<Store> {
        todo!()
    }
    /// Opens an existing store file; an error if it is missing or not a callstore file.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        todo!()
    }
    /// Opens the store file at `path`, creating it if there is no file.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Store> {
        todo!()
    }
    /// A store held in memory.
    pub fn in_memory() -> Result<Store> {
        todo!()
    }
    /// Writes a batch atomically.
    pub fn write(&self, calls: Vec<Call>) -> Result<WriteSummary> {
        todo!()
    }
    /// Deletes calls by CallSid; returns how many were stored.
    pub fn delete<S: AsRef<str>>(&self, call_sids: &[S]) -> Result<usize> {
        todo!()
    }
    /// One call by CallSid.
    pub fn get(&self, call_sid: &str) -> Result<Option<Call>> {
        todo!()
    }
    /// A page of calls.
    pub fn query(&self, query: &Query) -> Result<Vec<Call>> {
        todo!()
    }
    /// The number of calls that match, ignoring skip and count.
    pub fn count(&self, query: &Query) -> Result<u64> {
        todo!()
    }
    /// Answers a typed request.
    pub fn execute(&self, request: &Request) -> Result<Response> {
        todo!()
    }
    /// Answers a request string.
    pub fn answer(&self, request: &str) -> Result<Response> {
        todo!()
    }
    /// Work counters.
    pub fn counters(&self) -> Counters {
        todo!()
    }
    /// Contents summary.
    pub fn stats(&self) -> Result<StoreStats> {
        todo!()
    }
    /// Merges all segments into one.
    pub fn compact(&self) -> Result<()> {
        todo!()
    }
}
