//! Bulk imports: batches gathered into large segments.
//!
//! [`Store::write`] makes each batch a segment, and merges rewrite small segments into larger
//! ones: a bulk load of 1M calls in batches of 100k rewrote 800k of them once. An import holds
//! the calls of its batches until it has [`DEFAULT_IMPORT_SEGMENT_ROWS`] of them and writes
//! them as one segment, in one durable commit, so that a load writes fewer, larger segments
//! and merges rewrite less of it.

use crate::error::{Error, Result, StoreError};
use crate::model::Call;
use crate::store::{Store, WriteSummary, last_of_each, last_of_each_mask, normalize_batch};

/// The calls an import writes as one segment by default: 8⁶, the smallest size of a merge
/// tier with the default merge factor, so that 1M calls make four segments and no merge, and
/// eight segments merge into one of at least 2M. Holding them takes about 1.3 KiB a call
/// (a `Call` is 712 bytes before its strings): about 340 MB.
pub const DEFAULT_IMPORT_SEGMENT_ROWS: usize = 262_144;

/// A bulk import into a [`Store`] (see [`Store::import`]): batches are checked as they are
/// given and written in segments of many batches; [`Import::finish`] writes the rest.
#[must_use = "an import writes the calls it holds in `finish`"]
pub struct Import<'s> {
    store: &'s Store,
    /// Normalized calls not written yet, in the order given.
    held: Vec<Call>,
    /// Where each batch held starts in `held`.
    starts: Vec<usize>,
    /// Batches given to `write` and accepted.
    batches: usize,
    /// Of those, batches written.
    batches_written: usize,
    segment_rows: usize,
    summary: WriteSummary,
    /// Whether an error ended the import.
    ended: bool,
}

impl Store {
    /// Starts a bulk import: the fastest way to load many calls.
    ///
    /// - [`Import::write`] checks a batch at once (an invalid record is refused, naming it, and
    ///   nothing of that batch is kept) and holds its calls. Once it holds
    ///   [`DEFAULT_IMPORT_SEGMENT_ROWS`] calls (see [`Import::with_segment_rows`]), it writes
    ///   them as one segment, in one atomic, durable commit.
    /// - [`Import::finish`] writes the calls still held, and returns what the import wrote.
    ///   The calls held are not visible before they are written.
    /// - A segment is written as one [`Store::write`] of its batches' calls would write it: the
    ///   last call of a CallSid wins, and a call replaces a stored call with its CallSid.
    ///
    /// A crash loses the calls held, and keeps the segments written; since writes are upserts by
    /// CallSid, running the import again completes it. When the store refuses a segment (a
    /// property bound to another account), the import writes its batches one by one, as
    /// [`Store::write`] would, up to the first one refused: that one and the batches after it
    /// are dropped, the error names the call, and the import ends
    /// ([`Import::batches_written`] tells how many batches are in). Any other error (I/O) drops
    /// the calls held and ends the import. An `Import` dropped without `finish` drops the calls
    /// it holds.
    ///
    /// Each segment allocates and frees hundreds of MB. The allocator matters: the `callstore`
    /// command uses mimalloc set never to hand freed memory back, and imports 1M calls from JSON
    /// Lines in 5.4 to 6.8 s, against 7.2 to 8.1 s with glibc's allocator (see ARCHITECTURE.md).
    ///
    /// ```
    /// # fn main() -> callstore::Result<()> {
    /// use callstore::{Call, Disposition, Store};
    ///
    /// let store = Store::in_memory()?;
    /// let mut import = store.import();
    /// for hour in 0..3u32 {
    ///     let batch = (0..10u32)
    ///         .map(|i| {
    ///             let sid = format!("CA{hour}-{i}");
    ///             let date = 1_700_000_000 + hour * 3600 + i;
    ///             Call::new("AC1", "PR1", sid, date, "+1 555 0100", Disposition::Answered)
    ///         })
    ///         .collect();
    ///     import.write(batch)?;
    /// }
    /// assert_eq!(store.stats()?.calls, 0); // held, not written yet
    /// let summary = import.finish()?;
    /// assert_eq!((summary.written, summary.replaced), (30, 0));
    /// assert_eq!(store.stats()?.calls, 30);
    /// # Ok(())
    /// # }
    /// ```
    pub fn import(&self) -> Import<'_> {
        Import {
            store: self,
            held: Vec::new(),
            starts: Vec::new(),
            batches: 0,
            batches_written: 0,
            segment_rows: DEFAULT_IMPORT_SEGMENT_ROWS,
            summary: WriteSummary::default(),
            ended: false,
        }
    }
}

impl Import<'_> {
    /// Sets how many calls the import holds before writing them as one segment (at least 1;
    /// default [`DEFAULT_IMPORT_SEGMENT_ROWS`]). Fewer use less memory and make more
    /// segments, which merges rewrite.
    pub fn with_segment_rows(mut self, rows: usize) -> Self {
        self.segment_rows = rows.max(1);
        self
    }

    /// The calls held, not written yet (0 right after a segment is written).
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// How many of the batches given to [`Import::write`] (and accepted) are written: the
    /// first ones, in order.
    pub fn batches_written(&self) -> usize {
        self.batches_written
    }

    /// Checks and normalizes a batch and holds its calls; writes the calls held as one
    /// segment once there are enough of them. An invalid record refuses the batch, naming it
    /// (by its index in this batch), and leaves the import as it was.
    ///
    /// Once an earlier call returned another error, returns [`StoreError::ImportEnded`].
    pub fn write(&mut self, calls: Vec<Call>) -> Result<()> {
        if self.ended {
            return Err(StoreError::ImportEnded.into());
        }
        let calls = normalize_batch(calls)?;
        self.batches += 1;
        if calls.is_empty() && self.held.is_empty() {
            // Nothing to hold: written, as far as anyone can tell.
            self.batches_written = self.batches;
            return Ok(());
        }
        self.starts.push(self.held.len());
        if self.held.is_empty() {
            self.held = calls;
        } else {
            // Room for the segment at once (it ends within this batch's size of
            // `segment_rows`), instead of growing by doubling and copying the calls held each
            // time; at most double, as growing would.
            let len = self.held.len() + calls.len();
            let room = (self.segment_rows + calls.len()).min(2 * len);
            self.held.reserve(room.saturating_sub(self.held.len()));
            self.held.extend(calls);
        }
        if self.held.len() >= self.segment_rows {
            self.write_held()?;
        }
        Ok(())
    }

    /// Writes the calls held and returns what the import wrote in all: calls written (the
    /// last of each CallSid) and, of those, calls that replaced a stored one.
    pub fn finish(mut self) -> Result<WriteSummary> {
        self.flush()?;
        Ok(self.summary)
    }

    /// Writes the calls held now, as one segment (as [`Import::finish`] does, but the import
    /// goes on): for a caller that pauses, or that must know what is written before it stops.
    pub fn flush(&mut self) -> Result<()> {
        if self.ended {
            return Err(StoreError::ImportEnded.into());
        }
        if !self.held.is_empty() {
            self.write_held()?;
        }
        Ok(())
    }

    /// Writes the calls held as one segment, or, if the store refuses it, their batches one by
    /// one up to the one refused; on an error, drops the calls held and ends the import.
    fn write_held(&mut self) -> Result<()> {
        let held = std::mem::take(&mut self.held);
        let starts = std::mem::take(&mut self.starts);
        let written = match last_of_each_mask(&held) {
            None => self.store.write_prepared(&held),
            Some(keep) => {
                let last: Vec<Call> = held
                    .iter()
                    .zip(keep)
                    .filter(|&(_, k)| k)
                    .map(|(c, _)| c.clone())
                    .collect();
                self.store.write_prepared(&last)
            }
        };
        let result = match written {
            Ok(done) => {
                self.add(done);
                self.batches_written = self.batches;
                Ok(())
            }
            Err(Error::Store(StoreError::PropertyBound { .. })) => {
                self.write_one_by_one(&held, &starts)
            }
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.ended = true;
        }
        result
    }

    /// Writes each batch of `held` (starting at `starts`) alone, until one is refused.
    fn write_one_by_one(&mut self, held: &[Call], starts: &[usize]) -> Result<()> {
        let ends = starts.iter().skip(1).copied().chain([held.len()]);
        for (&start, end) in starts.iter().zip(ends) {
            let batch = last_of_each(held[start..end].to_vec());
            let done = self.store.write_prepared(&batch)?;
            self.add(done);
            self.batches_written += 1;
        }
        // Every batch went in alone. A segment is refused only when the state its batches reach
        // binds a property to two accounts, so one of them is refused before this; should none
        // be, the import goes on with everything written.
        Ok(())
    }

    fn add(&mut self, done: WriteSummary) {
        self.summary.written += done.written;
        self.summary.replaced += done.replaced;
    }
}
