//! callstore: an embedded query engine over a local store of phone-call records.
//!
//! It answers the "Get Calls" API of a call-tracking service (one call by CallSid, or the calls
//! of a property or account, filtered and paged) from a local file, with the API's exact
//! semantics.
//!
//! ```
//! use callstore::{Call, Disposition, Query, Store};
//!
//! # fn main() -> callstore::Result<()> {
//! let store = Store::in_memory()?;
//! store.write(vec![
//!     Call::from_json(r#"{"AccountSid":"AC1","PropertySid":"PR1","CallSid":"CA2",
//!         "Date_Start":200,"From":"+1 555 0100","To":"+1 555 0199","Disposition":"Answered"}"#)?,
//!     Call::from_json(r#"{"AccountSid":"AC1","PropertySid":"PR1","CallSid":"CA1",
//!         "Date_Start":100,"From":"+1 555 0100","To":"+1 555 0199","Disposition":"Busy"}"#)?,
//! ])?;
//!
//! // Calls come back in time order; the first call of a caller is their Unique one.
//! let page = store.answer("/v2/Accounts/AC1/Calls?Unique=Unique")?;
//! assert!(page.to_json().starts_with(r#"[{"CallSid":"CA1""#));
//!
//! let answered = store.count(&Query::account("AC1").disposition(Disposition::Answered))?;
//! assert_eq!(answered, 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! - Three requests of the API: `/v2/Calls/{CallSid}`, `/v2/Properties/{PropertySid}/Calls`,
//!   `/v2/Accounts/{AccountSid}/Calls`, with every filter, `Unique`/`Repeat` caller
//!   classification and skip/count paging (see [`parse_request`] and [`Query`]).
//! - Atomic batch writes with upsert by CallSid, and deletes ([`Store::write`],
//!   [`Store::delete`]); readers see consistent snapshots. Bulk loads through
//!   [`Store::import`], which writes many batches as one large segment.
//! - One redb file holding the calls in segments with roaring-bitmap indexes, so that a page
//!   costs a few bitmap operations and the reads of its own records.
//! - A naive [`reference`](mod@reference) model of the same semantics, used by the tests.
//!
//! # What it is not
//!
//! Not a server (no HTTP), not a general database (no other queries), and not a multi-writer
//! store: one process writes at a time.
#![warn(missing_docs)]

mod codec;
mod counts;
mod dense;
mod error;
mod exec;
mod filter;
pub mod generate;
mod import;
mod index;
mod json;
mod model;
mod page;
mod query;
pub mod reference;
mod request;
mod runs;
mod small;
mod store;
mod view;

pub use error::{ApiError, Error, ErrorCode, RecordError, Result, StoreError};
pub use import::{DEFAULT_IMPORT_SEGMENT_ROWS, Import};
pub use json::{ApiCall, Response};
pub use model::{
    ANONYMOUS, Call, Disposition, Field, FieldValue, TrafficType, caller_identity, normalize_phone,
};
pub use page::Page;
pub use query::{DEFAULT_COUNT, Query, Scope, UniqueFilter};
pub use request::{Request, parse_request};
pub use store::{
    Counters, DEFAULT_MERGE_FACTOR, DEFAULT_SMALL_SEGMENT_ROWS, FORMAT_VERSION,
    OLDEST_FORMAT_VERSION, Store, StoreStats, WriteSummary,
};
pub use view::CallRef;
