//! The typed query: what a list request asks for (SPEC §2), built from a request string by
//! [`parse_request`](crate::parse_request) or directly in Rust.

use crate::error::ApiError;
use crate::model::{Disposition, normalize_phone, normalize_prompt_path};

/// The calls a list request is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `/v2/Accounts/{AccountSid}/Calls`.
    Account(String),
    /// `/v2/Properties/{PropertySid}/Calls`.
    Property(String),
}

/// The `Unique` parameter (SPEC §3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum UniqueFilter {
    /// Every call (the default).
    #[default]
    All,
    /// Only calls that are the first of their caller in the request's scope.
    Unique,
    /// Only calls of a known caller that are not their first in the scope.
    Repeat,
}

impl UniqueFilter {
    /// Parses `All`, `Unique` or `Repeat` in any case.
    pub fn parse(text: &str) -> Option<UniqueFilter> {
        [
            UniqueFilter::All,
            UniqueFilter::Unique,
            UniqueFilter::Repeat,
        ]
        .into_iter()
        .find(|u| u.as_str().eq_ignore_ascii_case(text))
    }

    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            UniqueFilter::All => "All",
            UniqueFilter::Unique => "Unique",
            UniqueFilter::Repeat => "Repeat",
        }
    }
}

/// The default of `Results_Count`.
pub const DEFAULT_COUNT: u32 = 200;

/// A list request: a scope, filters, and a page (SPEC §2).
///
/// An empty list means the filter is not given. Values are normalized when the query runs
/// (phone numbers, trimming, IVR paths), so a query built in Rust means the same as the request
/// string it mirrors.
///
/// ```
/// use callstore::{Disposition, Query, UniqueFilter};
/// let q = Query::account("AC1")
///     .date_from(1_700_000_000)
///     .disposition(Disposition::Answered)
///     .unique(UniqueFilter::Unique)
///     .count(50);
/// assert_eq!(q.results_count, 50);
/// assert_eq!(q.results_skip, 0);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Query {
    /// Whose calls.
    pub scope: Scope,
    /// `Date_From`: keep calls with `Date_Start >= date_from`.
    pub date_from: Option<u32>,
    /// `Date_To`: keep calls with `Date_Start < date_to`.
    pub date_to: Option<u32>,
    /// `Disposition`: keep calls with one of these.
    pub dispositions: Vec<Disposition>,
    /// `To`: keep calls to one of these numbers.
    pub to: Vec<String>,
    /// `Endpoint`: keep calls routed to one of these endpoints.
    pub endpoint: Vec<String>,
    /// `Attribution_Source`.
    pub attribution_source: Vec<String>,
    /// `Attribution_Medium`.
    pub attribution_medium: Vec<String>,
    /// `Attribution_Campaign`.
    pub attribution_campaign: Vec<String>,
    /// `Attribution_Content`.
    pub attribution_content: Vec<String>,
    /// `Prompts_keys`: keep calls whose IVR path starts with one of these paths (`"1,2"`).
    pub prompts_keys: Vec<String>,
    /// `Unique`.
    pub unique: UniqueFilter,
    /// `Results_Count`: at most this many calls.
    pub results_count: u32,
    /// `Results_Skip`: leave out this many matching calls first.
    pub results_skip: u32,
}

impl Query {
    /// All calls of a scope, first page of 200.
    pub fn new(scope: Scope) -> Query {
        Query {
            scope,
            date_from: None,
            date_to: None,
            dispositions: Vec::new(),
            to: Vec::new(),
            endpoint: Vec::new(),
            attribution_source: Vec::new(),
            attribution_medium: Vec::new(),
            attribution_campaign: Vec::new(),
            attribution_content: Vec::new(),
            prompts_keys: Vec::new(),
            unique: UniqueFilter::All,
            results_count: DEFAULT_COUNT,
            results_skip: 0,
        }
    }

    /// The calls of an account.
    pub fn account(account_sid: impl Into<String>) -> Query {
        Query::new(Scope::Account(account_sid.into()))
    }

    /// The calls of a property.
    pub fn property(property_sid: impl Into<String>) -> Query {
        Query::new(Scope::Property(property_sid.into()))
    }

    /// Sets `Date_From` (inclusive).
    pub fn date_from(mut self, t: u32) -> Query {
        self.date_from = Some(t);
        self
    }

    /// Sets `Date_To` (exclusive).
    pub fn date_to(mut self, t: u32) -> Query {
        self.date_to = Some(t);
        self
    }

    /// Adds a disposition to the `Disposition` list.
    pub fn disposition(mut self, d: Disposition) -> Query {
        self.dispositions.push(d);
        self
    }

    /// Adds a number to the `To` list.
    pub fn to(mut self, number: impl Into<String>) -> Query {
        self.to.push(number.into());
        self
    }

    /// Adds a number to the `Endpoint` list.
    pub fn endpoint(mut self, number: impl Into<String>) -> Query {
        self.endpoint.push(number.into());
        self
    }

    /// Adds a value to the `Attribution_Source` list.
    pub fn source(mut self, value: impl Into<String>) -> Query {
        self.attribution_source.push(value.into());
        self
    }

    /// Adds a value to the `Attribution_Medium` list.
    pub fn medium(mut self, value: impl Into<String>) -> Query {
        self.attribution_medium.push(value.into());
        self
    }

    /// Adds a value to the `Attribution_Campaign` list.
    pub fn campaign(mut self, value: impl Into<String>) -> Query {
        self.attribution_campaign.push(value.into());
        self
    }

    /// Adds a value to the `Attribution_Content` list.
    pub fn content(mut self, value: impl Into<String>) -> Query {
        self.attribution_content.push(value.into());
        self
    }

    /// Adds an IVR path (keys joined by `,`) to the `Prompts_keys` list.
    pub fn prompts(mut self, path: impl Into<String>) -> Query {
        self.prompts_keys.push(path.into());
        self
    }

    /// Sets `Unique`.
    pub fn unique(mut self, unique: UniqueFilter) -> Query {
        self.unique = unique;
        self
    }

    /// Sets `Results_Count`.
    pub fn count(mut self, count: u32) -> Query {
        self.results_count = count;
        self
    }

    /// Sets `Results_Skip`.
    pub fn skip(mut self, skip: u32) -> Query {
        self.results_skip = skip;
        self
    }

    /// The query with every value in stored form: lists trimmed, emptied of empty items, sorted
    /// and deduplicated; phone numbers and IVR paths normalized. Errors name the bad value
    /// (`Date_From > Date_To`, an empty key inside an IVR path).
    pub fn normalized(&self) -> Result<Query, ApiError> {
        if let (Some(from), Some(to)) = (self.date_from, self.date_to) {
            if from > to {
                return Err(ApiError::invalid(
                    "Date_From",
                    &from.to_string(),
                    &format!("Date_From may not be later than Date_To ({to})"),
                ));
            }
        }
        let strings = |values: &[String], phone: bool| -> Vec<String> {
            let mut out: Vec<String> = values
                .iter()
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(|v| {
                    if phone {
                        normalize_phone(v)
                    } else {
                        v.to_string()
                    }
                })
                .collect();
            out.sort();
            out.dedup();
            out
        };
        let mut prompts_keys = Vec::with_capacity(self.prompts_keys.len());
        for path in &self.prompts_keys {
            if path.trim().is_empty() {
                continue;
            }
            let normalized = normalize_prompt_path(path).ok_or_else(|| {
                ApiError::invalid(
                    "Prompts_keys",
                    path,
                    "an IVR path may not hold an empty key",
                )
            })?;
            prompts_keys.push(normalized);
        }
        prompts_keys.sort();
        prompts_keys.dedup();
        let mut dispositions = self.dispositions.clone();
        dispositions.sort();
        dispositions.dedup();
        Ok(Query {
            scope: self.scope.clone(),
            date_from: self.date_from,
            date_to: self.date_to,
            dispositions,
            to: strings(&self.to, true),
            endpoint: strings(&self.endpoint, true),
            attribution_source: strings(&self.attribution_source, false),
            attribution_medium: strings(&self.attribution_medium, false),
            attribution_campaign: strings(&self.attribution_campaign, false),
            attribution_content: strings(&self.attribution_content, false),
            prompts_keys,
            unique: self.unique,
            results_count: self.results_count,
            results_skip: self.results_skip,
        })
    }
}
