//! A page of calls held in one buffer: what a query returns before any field is copied.

use std::fmt;

use crate::codec::{self, Layout};
use crate::error::StoreError;
use crate::model::Call;
use crate::view::CallRef;

/// A page of calls in result order, read through borrowed [`CallRef`]s.
///
/// A page keeps the strings of all its calls in one buffer, so reading one costs a copy of its
/// records rather than an allocation per field; [`Page::to_calls`] makes owned calls when they
/// are needed. [`Store::query_page`](crate::Store::query_page) returns one.
///
/// ```
/// use callstore::{Call, Disposition, Query, Store};
///
/// # fn main() -> callstore::Result<()> {
/// let store = Store::in_memory()?;
/// store.write(vec![
///     Call::new("AC1", "PR1", "CA2", 200, "+15550199", Disposition::Answered),
///     Call::new("AC1", "PR1", "CA1", 100, "+15550199", Disposition::Busy),
/// ])?;
/// let page = store.query_page(&Query::account("AC1"))?;
/// let sids: Vec<&str> = page.iter().map(|call| call.call_sid).collect();
/// assert_eq!(sids, ["CA1", "CA2"]);
/// assert_eq!(page.get(1).map(|call| call.disposition), Some(Disposition::Answered));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Page {
    text: String,
    rows: Vec<Layout>,
}

impl Page {
    /// An empty page with room for `rows` calls.
    pub(crate) fn with_capacity(rows: usize) -> Page {
        Page {
            text: String::with_capacity(rows * 512),
            rows: Vec::with_capacity(rows),
        }
    }

    /// Appends an encoded call record, checking it whole (a damaged record is an error here and
    /// never later).
    pub(crate) fn push_record(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let (layout, text) = codec::layout(bytes)?;
        self.push_layout(layout, text);
        Ok(())
    }

    /// Appends a record already checked by [`codec::layout`]: its layout and its strings.
    pub(crate) fn push_layout(&mut self, layout: Layout, text: &str) {
        self.rows.push(layout.shifted(self.text.len()));
        self.text.push_str(text);
    }

    /// How many calls the page holds.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the page holds no call.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The call at position `i` of the page, if there is one.
    pub fn get(&self, i: usize) -> Option<CallRef<'_>> {
        self.rows.get(i).map(|layout| layout.view(&self.text))
    }

    /// The calls of the page, in result order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = CallRef<'_>> + DoubleEndedIterator + '_ {
        self.rows.iter().map(|layout| layout.view(&self.text))
    }

    /// The calls of the page as owned [`Call`]s.
    pub fn to_calls(&self) -> Vec<Call> {
        self.iter().map(|call| call.to_call()).collect()
    }
}

impl fmt::Debug for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Page {
    fn eq(&self, other: &Page) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Page {}
