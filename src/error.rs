//! Errors, one enum per layer: [`RecordError`] (a record's fields), [`ApiError`] (a request, with
//! the API's error code), [`StoreError`] (the store and its file), and [`Error`] over them all.

use std::fmt;

/// What is wrong with one call record (SPEC §1).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// The text is not a JSON object.
    Json(String),
    /// A field name that SPEC §1 does not list (names are case-sensitive).
    UnknownField {
        /// The name as given.
        field: String,
    },
    /// A field given twice in one object.
    DuplicateField {
        /// The field's name.
        field: &'static str,
    },
    /// A field whose JSON type is wrong.
    WrongType {
        /// The field's name.
        field: &'static str,
        /// What the field takes.
        expected: &'static str,
        /// What it held.
        found: &'static str,
    },
    /// A required field that is missing, null or empty.
    MissingField {
        /// The field's name.
        field: &'static str,
    },
    /// A field whose value is of the right type but not allowed.
    InvalidValue {
        /// The field's name.
        field: &'static str,
        /// The value as given.
        value: String,
        /// What the field takes.
        reason: &'static str,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::Json(e) => write!(f, "not a JSON object: {e}"),
            RecordError::UnknownField { field } => write!(f, "unknown field {field:?}"),
            RecordError::DuplicateField { field } => write!(f, "field {field:?} is given twice"),
            RecordError::WrongType {
                field,
                expected,
                found,
            } => write!(f, "field {field:?} must be {expected}, not {found}"),
            RecordError::MissingField { field } => {
                write!(f, "required field {field:?} is missing, null or empty")
            }
            RecordError::InvalidValue {
                field,
                value,
                reason,
            } => write!(f, "field {field:?} has value {value:?}: {reason}"),
        }
    }
}

impl std::error::Error for RecordError {}

/// The API's error codes (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: a value that does not parse or is not allowed.
    InvalidParameter,
    /// 400: a parameter name the request does not take.
    UnknownParameter,
    /// 400: a parameter given twice.
    DuplicateParameter,
    /// 404: a path that is none of the three requests, or a CallSid that is not stored.
    NotFound,
}

impl ErrorCode {
    /// The code as written in the error envelope.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidParameter => "InvalidParameter",
            ErrorCode::UnknownParameter => "UnknownParameter",
            ErrorCode::DuplicateParameter => "DuplicateParameter",
            ErrorCode::NotFound => "NotFound",
        }
    }

    /// The HTTP status that travels with the code: 400 or 404.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::NotFound => 404,
            _ => 400,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answer to a request: the API's error code and a message naming the parameter and
/// value at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The error code.
    pub code: ErrorCode,
    /// A message naming what was wrong.
    pub message: String,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// A 400 `InvalidParameter` naming `parameter` and its `value`, with the reason.
    pub fn invalid(parameter: &str, value: &str, reason: &str) -> ApiError {
        ApiError::new(
            ErrorCode::InvalidParameter,
            format!("Invalid value {value:?} for parameter {parameter}: {reason}"),
        )
    }

    /// The HTTP status: 400 or 404.
    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The error envelope that the API's client libraries read:
    /// `{"ResponseStatus":{"ErrorCode":"...","Message":"..."}}`.
    pub fn to_json(&self) -> String {
        let body = serde_json::json!({
            "ResponseStatus": {"ErrorCode": self.code.as_str(), "Message": self.message}
        });
        body.to_string()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status(), self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// An error of the store: its file, its storage engine, or a write it refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// A record of a batch is invalid; nothing of the batch was written.
    InvalidRecord {
        /// The record's position in the batch, from 0.
        index: usize,
        /// The record's CallSid, when it has one.
        call_sid: Option<String>,
        /// What is wrong with it.
        source: RecordError,
    },
    /// A record names a property that belongs to another account; nothing of the batch was
    /// written.
    PropertyBound {
        /// The record's CallSid.
        call_sid: String,
        /// The property it names.
        property_sid: String,
        /// The account the property belongs to.
        bound_to: String,
        /// The account the record names.
        account_sid: String,
    },
    /// The file is not a callstore file (no format marker where one must be).
    NotAStore {
        /// The file.
        path: String,
        /// What was found instead.
        reason: String,
    },
    /// The file was written by a format version this build does not read.
    FormatVersion {
        /// The file.
        path: String,
        /// The version in the file.
        found: u32,
        /// The oldest version this build opens.
        oldest: u32,
        /// The version this build writes (the newest it opens).
        expected: u32,
    },
    /// The file is open in another process (one process opens a store at a time).
    InUse {
        /// The file.
        path: String,
    },
    /// The file (or its folder) could not be read or written.
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// An earlier I/O error left the open store unusable; reopen it (what was committed before
    /// that error is kept).
    NeedsReopen,
    /// The storage engine (redb) failed; after an I/O failure the store must be reopened.
    Storage(redb::Error),
    /// A stored value does not decode: the file is damaged or was written by other software.
    Corrupt(String),
    /// A bulk import met an error in writing a segment (returned then) and writes nothing
    /// more.
    ImportEnded,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::InvalidRecord {
                index,
                call_sid,
                source,
            } => match call_sid {
                Some(sid) => write!(f, "record {} (CallSid {sid:?}): {source}", index + 1),
                None => write!(f, "record {}: {source}", index + 1),
            },
            StoreError::PropertyBound {
                call_sid,
                property_sid,
                bound_to,
                account_sid,
            } => write!(
                f,
                "call {call_sid:?} names property {property_sid:?} with account {account_sid:?}, \
                 but that property belongs to account {bound_to:?}"
            ),
            StoreError::NotAStore { path, reason } => {
                write!(f, "{path} is not a callstore file: {reason}")
            }
            StoreError::FormatVersion {
                path,
                found,
                oldest,
                expected,
            } if oldest == expected => write!(
                f,
                "{path} has callstore format version {found}; this build reads version {expected}"
            ),
            StoreError::FormatVersion {
                path,
                found,
                oldest,
                expected,
            } => write!(
                f,
                "{path} has callstore format version {found}; this build reads versions \
                 {oldest} to {expected}"
            ),
            StoreError::InUse { path } => write!(
                f,
                "{path} is open in another process; one process opens a store at a time"
            ),
            StoreError::Io { path, source } => write!(f, "{path}: {source}"),
            StoreError::NeedsReopen => write!(
                f,
                "an earlier I/O error left the store unusable: reopen it (committed writes are kept)"
            ),
            StoreError::Storage(e) => write!(f, "storage error: {e}"),
            StoreError::Corrupt(what) => write!(f, "the store is damaged: {what}"),
            StoreError::ImportEnded => write!(
                f,
                "this import ended at an earlier error (returned then) and writes nothing more; \
                 start a new import"
            ),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::InvalidRecord { source, .. } => Some(source),
            StoreError::Io { source, .. } => Some(source),
            StoreError::Storage(e) => Some(e),
            _ => None,
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> StoreError {
                match e.into() {
                    redb::Error::PreviousIo => StoreError::NeedsReopen,
                    other => StoreError::Storage(other),
                }
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::CompactionError,
    redb::CursorError
);

/// Any error of callstore.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A call record is invalid.
    Record(RecordError),
    /// A request is invalid or names nothing stored.
    Api(ApiError),
    /// The store failed or refused a write.
    Store(StoreError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Record(e) => e.fmt(f),
            Error::Api(e) => e.fmt(f),
            Error::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Record(e) => Some(e),
            Error::Api(e) => Some(e),
            Error::Store(e) => Some(e),
        }
    }
}

impl From<RecordError> for Error {
    fn from(e: RecordError) -> Error {
        Error::Record(e)
    }
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Error {
        Error::Api(e)
    }
}

macro_rules! into_store_error {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                Error::Store(e.into())
            }
        }
    )*};
}
into_store_error!(
    StoreError,
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::CompactionError,
    redb::CursorError
);

/// The result of a callstore operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;
