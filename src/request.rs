//! Request strings (SPEC §2) to typed requests: a path naming one call, a property or an account,
//! and an optional `application/x-www-form-urlencoded` query string of filters.
//!
//! The parser never panics: whatever the text, it returns a [`Request`] or an [`ApiError`] with one
//! of the codes `InvalidParameter`, `UnknownParameter`, `DuplicateParameter` or `NotFound`.

use crate::error::{ApiError, ErrorCode};
use crate::model::{Disposition, normalize_prompt_path, parse_u32_digits};
use crate::query::{Query, Scope, UniqueFilter};

/// A parsed request.
// A request is parsed once and consumed at once, so the size of `List` costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `/v2/Calls/{CallSid}`: one call.
    Call(String),
    /// `/v2/Properties/{PropertySid}/Calls` or `/v2/Accounts/{AccountSid}/Calls`.
    List(Query),
}

/// Parses a request string: a path with an optional query string.
///
/// The path ends at the first `?`. Its words (`v2`, `Calls`, `Properties`, `Accounts`) match in
/// any case, its SIDs are percent-decoded and case-sensitive, and one trailing `/` is ignored.
/// Parameter names match in any case; values are trimmed, and an empty value counts as not given.
/// The returned [`Query`] is already [normalized](Query::normalized).
///
/// # Errors
///
/// - `NotFound` (404): a path that is none of the three requests.
/// - `UnknownParameter`, `DuplicateParameter` (400): a name not in the table, or given twice.
/// - `InvalidParameter` (400): a value that does not parse, `Date_From > Date_To`, or any
///   parameter on `/v2/Calls/{CallSid}`.
///
/// Parameters are checked left to right and the first problem wins; `Date_From > Date_To` is
/// checked once every parameter has been read.
///
/// # Example
///
/// ```
/// use callstore::{Disposition, ErrorCode, Query, Request, UniqueFilter, parse_request};
///
/// let request = parse_request("/v2/accounts/AC1/calls?Disposition=answered,+Busy&Unique=repeat")?;
/// let expected = Query::account("AC1")
///     .disposition(Disposition::Answered)
///     .disposition(Disposition::Busy)
///     .unique(UniqueFilter::Repeat);
/// assert_eq!(request, Request::List(expected));
///
/// assert_eq!(parse_request("/v2/Calls/CA%201")?, Request::Call("CA 1".to_string()));
///
/// let error = parse_request("/v2/Properties/PR1/Calls?Results_Count=-1").unwrap_err();
/// assert_eq!(error.code, ErrorCode::InvalidParameter);
/// assert_eq!(error.status(), 400);
/// # Ok::<(), callstore::ApiError>(())
/// ```
pub fn parse_request(text: &str) -> Result<Request, ApiError> {
    let (path, query_string) = match text.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (text, None),
    };
    let target = parse_path(path)?;
    let pairs = query_string
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|pair| !pair.is_empty());
    match target {
        Target::Call(sid) => {
            if let Some(pair) = pairs.into_iter().next() {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                return Err(ApiError::invalid(
                    &lossy(name),
                    &lossy(value),
                    "the single-call request takes no parameters",
                ));
            }
            Ok(Request::Call(sid))
        }
        Target::List(scope) => {
            let mut builder = Builder::new(scope);
            for pair in pairs {
                builder.pair(pair)?;
            }
            Ok(Request::List(builder.query.normalized()?))
        }
    }
}

/// What a path names.
enum Target {
    Call(String),
    List(Scope),
}

/// Parses the path part of a request (before any `?`).
fn parse_path(path: &str) -> Result<Target, ApiError> {
    let not_found = || ApiError::new(ErrorCode::NotFound, format!("No such resource: {path:?}"));
    let rest = path.strip_prefix('/').ok_or_else(not_found)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let segments: Vec<&str> = rest.split('/').collect();
    let word = |i: usize, w: &str| segments.get(i).is_some_and(|s| s.eq_ignore_ascii_case(w));
    let sid = |raw: &str| -> Result<String, ApiError> {
        if raw.is_empty() {
            return Err(not_found());
        }
        String::from_utf8(percent_decode(raw, false)).map_err(|_| not_found())
    };
    match segments.as_slice() {
        [_, _, raw] if word(0, "v2") && word(1, "Calls") => Ok(Target::Call(sid(raw)?)),
        [_, _, raw, _] if word(0, "v2") && word(3, "Calls") => {
            if word(1, "Properties") {
                Ok(Target::List(Scope::Property(sid(raw)?)))
            } else if word(1, "Accounts") {
                Ok(Target::List(Scope::Account(sid(raw)?)))
            } else {
                Err(not_found())
            }
        }
        _ => Err(not_found()),
    }
}

/// The query parameters of a list request (SPEC §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Param {
    DateFrom,
    DateTo,
    Disposition,
    To,
    Endpoint,
    AttributionSource,
    AttributionMedium,
    AttributionCampaign,
    AttributionContent,
    PromptsKeys,
    Unique,
    ResultsCount,
    ResultsSkip,
}

impl Param {
    const ALL: [Param; 13] = [
        Param::DateFrom,
        Param::DateTo,
        Param::Disposition,
        Param::To,
        Param::Endpoint,
        Param::AttributionSource,
        Param::AttributionMedium,
        Param::AttributionCampaign,
        Param::AttributionContent,
        Param::PromptsKeys,
        Param::Unique,
        Param::ResultsCount,
        Param::ResultsSkip,
    ];

    /// The name as the API document writes it.
    fn name(self) -> &'static str {
        match self {
            Param::DateFrom => "Date_From",
            Param::DateTo => "Date_To",
            Param::Disposition => "Disposition",
            Param::To => "To",
            Param::Endpoint => "Endpoint",
            Param::AttributionSource => "Attribution_Source",
            Param::AttributionMedium => "Attribution_Medium",
            Param::AttributionCampaign => "Attribution_Campaign",
            Param::AttributionContent => "Attribution_Content",
            Param::PromptsKeys => "Prompts_keys",
            Param::Unique => "Unique",
            Param::ResultsCount => "Results_Count",
            Param::ResultsSkip => "Results_Skip",
        }
    }

    /// Finds a parameter by name, in any (ASCII) case.
    fn from_name(name: &str) -> Option<Param> {
        Param::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }
}

/// Builds a [`Query`] from the pairs of a query string, one at a time.
struct Builder {
    query: Query,
    seen: Vec<Param>,
}

impl Builder {
    fn new(scope: Scope) -> Builder {
        Builder {
            query: Query::new(scope),
            seen: Vec::new(),
        }
    }

    /// Reads one non-empty `name=value` pair.
    fn pair(&mut self, pair: &str) -> Result<(), ApiError> {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let Ok(name) = String::from_utf8(percent_decode(raw_name, true)) else {
            return Err(ApiError::new(
                ErrorCode::UnknownParameter,
                format!(
                    "Unknown parameter {:?} (value {:?}): the name is not valid UTF-8",
                    raw_name,
                    lossy(raw_value)
                ),
            ));
        };
        let Some(param) = Param::from_name(&name) else {
            return Err(ApiError::new(
                ErrorCode::UnknownParameter,
                format!(
                    "Unknown parameter {:?} (value {:?})",
                    name,
                    lossy(raw_value)
                ),
            ));
        };
        if self.seen.contains(&param) {
            return Err(ApiError::new(
                ErrorCode::DuplicateParameter,
                format!(
                    "Parameter {} is given twice (as {:?}, value {:?})",
                    param.name(),
                    name,
                    lossy(raw_value)
                ),
            ));
        }
        self.seen.push(param);
        let Ok(value) = String::from_utf8(percent_decode(raw_value, true)) else {
            return Err(ApiError::invalid(
                param.name(),
                raw_value,
                "the value is not valid UTF-8 once percent-decoded",
            ));
        };
        self.value(param, value.trim())
    }

    /// Sets one parameter from its trimmed, decoded value; an empty value is not given.
    fn value(&mut self, param: Param, value: &str) -> Result<(), ApiError> {
        if value.is_empty() {
            return Ok(());
        }
        let name = param.name();
        let q = &mut self.query;
        match param {
            Param::DateFrom => q.date_from = Some(number(name, value, "unix seconds")?),
            Param::DateTo => q.date_to = Some(number(name, value, "unix seconds")?),
            Param::ResultsCount => q.results_count = number(name, value, "a count")?,
            Param::ResultsSkip => q.results_skip = number(name, value, "a count")?,
            Param::Unique => {
                q.unique = UniqueFilter::parse(value).ok_or_else(|| {
                    ApiError::invalid(name, value, "expected All, Unique or Repeat")
                })?;
            }
            Param::Disposition => {
                for item in items(value, ',') {
                    let d = Disposition::parse(item).ok_or_else(|| {
                        ApiError::invalid(
                            name,
                            item,
                            "expected Answered, IVR, Busy, NoAnswer or Failed",
                        )
                    })?;
                    q.dispositions.push(d);
                }
            }
            Param::PromptsKeys => {
                for path in items(value, ';') {
                    let path = normalize_prompt_path(path).ok_or_else(|| {
                        ApiError::invalid(name, path, "an IVR path may not hold an empty key")
                    })?;
                    q.prompts_keys.push(path);
                }
            }
            Param::To => q.to.extend(items(value, ',').map(str::to_string)),
            Param::Endpoint => q.endpoint.extend(items(value, ',').map(str::to_string)),
            Param::AttributionSource => {
                q.attribution_source
                    .extend(items(value, ',').map(str::to_string));
            }
            Param::AttributionMedium => {
                q.attribution_medium
                    .extend(items(value, ',').map(str::to_string));
            }
            Param::AttributionCampaign => {
                q.attribution_campaign
                    .extend(items(value, ',').map(str::to_string));
            }
            Param::AttributionContent => {
                q.attribution_content
                    .extend(items(value, ',').map(str::to_string));
            }
        }
        Ok(())
    }
}

/// Parses a value of ASCII digits into `0..=2^32-1`.
fn number(name: &str, value: &str, what: &str) -> Result<u32, ApiError> {
    parse_u32_digits(value).ok_or_else(|| {
        ApiError::invalid(
            name,
            value,
            &format!("expected {what}: digits only, from 0 to 4294967295"),
        )
    })
}

/// The items of a list: split on `separator`, trimmed, empty items dropped.
fn items(value: &str, separator: char) -> impl Iterator<Item = &str> {
    value
        .split(separator)
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// Percent-decodes `text` into bytes; with `plus_is_space` (query strings), `+` becomes a space.
/// A `%` not followed by two hex digits is kept as it is, as WHATWG URL parsing does.
fn percent_decode(text: &str, plus_is_space: bool) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            if let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).and_then(|&h| hex(h)),
                bytes.get(i + 2).and_then(|&l| hex(l)),
            ) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(if plus_is_space && b == b'+' { b' ' } else { b });
        i += 1;
    }
    out
}

/// The value of an ASCII hex digit.
fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A query-string component decoded for an error message (invalid UTF-8 replaced).
fn lossy(raw: &str) -> String {
    String::from_utf8_lossy(&percent_decode(raw, true)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a+b%2B%41", true), b"a b+A");
        assert_eq!(percent_decode("a+b", false), b"a+b");
        assert_eq!(percent_decode("%zz%4", true), b"%zz%4");
        assert_eq!(percent_decode("%", true), b"%");
        assert_eq!(percent_decode("%%41", true), b"%A");
        assert_eq!(percent_decode("é%C3%A9", true), "éé".as_bytes());
        assert_eq!(percent_decode("%ff", true), [0xff]);
    }

    #[test]
    fn parameter_names_round_trip() {
        for p in Param::ALL {
            assert_eq!(Param::from_name(p.name()), Some(p));
            assert_eq!(Param::from_name(&p.name().to_uppercase()), Some(p));
        }
        assert_eq!(Param::from_name("Prompts_Keys"), Some(Param::PromptsKeys));
        assert_eq!(Param::from_name("Date_From "), None);
    }
}
