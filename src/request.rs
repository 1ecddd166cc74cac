//! Request strings (SPEC §2) to typed requests. PLACEHOLDER: being written.

use crate::error::ApiError;
use crate::query::Query;

/// A parsed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `/v2/Calls/{CallSid}`: one call.
    Call(String),
    /// `/v2/Properties/{PropertySid}/Calls` or `/v2/Accounts/{AccountSid}/Calls`.
    List(Query),
}

/// Parses a request string: a path with an optional query string.
pub fn parse_request(text: &str) -> Result<Request, ApiError> {
    let _ = text;
    Err(ApiError::new(crate::ErrorCode::NotFound, "not yet"))
}
