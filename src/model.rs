//! The call record (SPEC §1): its fields, enums, normalization and validation.
//!
//! A [`Call`] is the API's response object plus the account it belongs to. Records arrive as JSON
//! objects ([`Call::from_json`]) or are built in Rust and normalized by [`Call::normalize`]; either
//! way, a stored call always holds trimmed, normalized values.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::RecordError;

mod parse;

/// The resulting disposition of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Disposition {
    /// The call was answered.
    Answered,
    /// The call reached an interactive voice response.
    #[allow(clippy::upper_case_acronyms)]
    IVR,
    /// The call received a busy response.
    Busy,
    /// The call was not answered.
    NoAnswer,
    /// The call did not reach its endpoint.
    Failed,
}

impl Disposition {
    /// Every disposition, in the order of the API document.
    pub const ALL: [Disposition; 5] = [
        Disposition::Answered,
        Disposition::IVR,
        Disposition::Busy,
        Disposition::NoAnswer,
        Disposition::Failed,
    ];

    /// The canonical name, as written in responses.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Answered => "Answered",
            Disposition::IVR => "IVR",
            Disposition::Busy => "Busy",
            Disposition::NoAnswer => "NoAnswer",
            Disposition::Failed => "Failed",
        }
    }

    /// Parses a disposition name in any case (`"answered"`, `"IVR"`); `None` for anything else.
    pub fn parse(name: &str) -> Option<Disposition> {
        Disposition::ALL
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(name))
    }
}

impl AsRef<str> for Disposition {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The traffic type of the web session that led to a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TrafficType {
    /// A campaign source.
    Campaign,
    /// The site was accessed directly.
    Direct,
    /// General search or browsing.
    Organic,
    /// The session came from a referral.
    Referral,
    /// No attributable source.
    Unattributed,
}

impl TrafficType {
    /// Every traffic type, in the order of the API document.
    pub const ALL: [TrafficType; 5] = [
        TrafficType::Campaign,
        TrafficType::Direct,
        TrafficType::Organic,
        TrafficType::Referral,
        TrafficType::Unattributed,
    ];

    /// The canonical name, as written in responses.
    pub fn as_str(self) -> &'static str {
        match self {
            TrafficType::Campaign => "Campaign",
            TrafficType::Direct => "Direct",
            TrafficType::Organic => "Organic",
            TrafficType::Referral => "Referral",
            TrafficType::Unattributed => "Unattributed",
        }
    }

    /// Parses a traffic type name in any case; `None` for anything else.
    pub fn parse(name: &str) -> Option<TrafficType> {
        TrafficType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for TrafficType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The caller identity written when a call's `From` is missing, null or empty.
pub const ANONYMOUS: &str = "anonymous";

/// One stored call: every documented response field plus the account it belongs to.
///
/// Optional string fields are `None` when absent; a stored call never holds an empty or
/// untrimmed string (see [`Call::normalize`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    /// `AccountSid`: the account the call belongs to (not written in responses).
    pub account_sid: String,
    /// `CallSid`: the call's identity, unique over the store.
    pub call_sid: String,
    /// `PropertySid`: the property of the call; a property belongs to one account.
    pub property_sid: String,
    /// `Date_Start`: when the call started, in unix seconds.
    pub date_start: u32,
    /// `From`: the caller number, normalized; [`ANONYMOUS`] when unknown.
    pub from: String,
    /// `From_CountryCode`.
    pub from_country_code: Option<String>,
    /// `From_Region`.
    pub from_region: Option<String>,
    /// `From_City`.
    pub from_city: Option<String>,
    /// `To`: the dialled number, normalized.
    pub to: String,
    /// `To_Friendly`.
    pub to_friendly: Option<String>,
    /// `Duration`: the call's length in seconds.
    pub duration: u64,
    /// `Disposition`.
    pub disposition: Disposition,
    /// `Recording_Uri`.
    pub recording_uri: Option<String>,
    /// `Endpoint`: the endpoint reached, normalized.
    pub endpoint: Option<String>,
    /// `Attribution_Source`.
    pub attribution_source: Option<String>,
    /// `Attribution_Medium`.
    pub attribution_medium: Option<String>,
    /// `Attribution_Campaign`.
    pub attribution_campaign: Option<String>,
    /// `Attribution_Content`.
    pub attribution_content: Option<String>,
    /// `Session_Traffic_Type`.
    pub session_traffic_type: Option<TrafficType>,
    /// `Session_Keywords`.
    pub session_keywords: Option<String>,
    /// `Session_ConversionUri`.
    pub session_conversion_uri: Option<String>,
    /// `Session_LandingUri`.
    pub session_landing_uri: Option<String>,
    /// `Survey_Type`.
    pub survey_type: Option<String>,
    /// `Survey_Value`.
    pub survey_value: Option<String>,
    /// `Survey_Custom1`.
    pub survey_custom1: Option<String>,
    /// `Survey_Custom2`.
    pub survey_custom2: Option<String>,
    /// `Survey_Custom3`.
    pub survey_custom3: Option<String>,
    /// `Survey_UniqueCode`.
    pub survey_unique_code: Option<String>,
    /// `Prompts_Keys`: the IVR path, keys joined by a bare `,` (e.g. `"1,2"`).
    pub prompts_keys: Option<String>,
    /// `Notes`.
    pub notes: Option<String>,
    /// `CallType`.
    pub call_type: Option<String>,
    /// `Google_Analytics_ClientId`.
    pub google_analytics_client_id: Option<String>,
    /// `Google_Adwords_ClickId`.
    pub google_adwords_click_id: Option<String>,
}

/// A field of a call record, by its exact JSON name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Field {
    AccountSid,
    CallSid,
    PropertySid,
    DateStart,
    From,
    FromCountryCode,
    FromRegion,
    FromCity,
    To,
    ToFriendly,
    Duration,
    Disposition,
    RecordingUri,
    Endpoint,
    AttributionSource,
    AttributionMedium,
    AttributionCampaign,
    AttributionContent,
    SessionTrafficType,
    SessionKeywords,
    SessionConversionUri,
    SessionLandingUri,
    SurveyType,
    SurveyValue,
    SurveyCustom1,
    SurveyCustom2,
    SurveyCustom3,
    SurveyUniqueCode,
    PromptsKeys,
    Notes,
    CallType,
    GoogleAnalyticsClientId,
    GoogleAdwordsClickId,
}

impl Field {
    /// The fields written in a response, in the order of the API document (`AccountSid` is not).
    pub const RESPONSE: [Field; 32] = [
        Field::CallSid,
        Field::PropertySid,
        Field::DateStart,
        Field::From,
        Field::FromCountryCode,
        Field::FromRegion,
        Field::FromCity,
        Field::To,
        Field::ToFriendly,
        Field::Duration,
        Field::Disposition,
        Field::RecordingUri,
        Field::Endpoint,
        Field::AttributionSource,
        Field::AttributionMedium,
        Field::AttributionCampaign,
        Field::AttributionContent,
        Field::SessionTrafficType,
        Field::SessionKeywords,
        Field::SessionConversionUri,
        Field::SessionLandingUri,
        Field::SurveyType,
        Field::SurveyValue,
        Field::SurveyCustom1,
        Field::SurveyCustom2,
        Field::SurveyCustom3,
        Field::SurveyUniqueCode,
        Field::PromptsKeys,
        Field::Notes,
        Field::CallType,
        Field::GoogleAnalyticsClientId,
        Field::GoogleAdwordsClickId,
    ];

    /// The exact JSON name of the field.
    pub fn name(self) -> &'static str {
        match self {
            Field::AccountSid => "AccountSid",
            Field::CallSid => "CallSid",
            Field::PropertySid => "PropertySid",
            Field::DateStart => "Date_Start",
            Field::From => "From",
            Field::FromCountryCode => "From_CountryCode",
            Field::FromRegion => "From_Region",
            Field::FromCity => "From_City",
            Field::To => "To",
            Field::ToFriendly => "To_Friendly",
            Field::Duration => "Duration",
            Field::Disposition => "Disposition",
            Field::RecordingUri => "Recording_Uri",
            Field::Endpoint => "Endpoint",
            Field::AttributionSource => "Attribution_Source",
            Field::AttributionMedium => "Attribution_Medium",
            Field::AttributionCampaign => "Attribution_Campaign",
            Field::AttributionContent => "Attribution_Content",
            Field::SessionTrafficType => "Session_Traffic_Type",
            Field::SessionKeywords => "Session_Keywords",
            Field::SessionConversionUri => "Session_ConversionUri",
            Field::SessionLandingUri => "Session_LandingUri",
            Field::SurveyType => "Survey_Type",
            Field::SurveyValue => "Survey_Value",
            Field::SurveyCustom1 => "Survey_Custom1",
            Field::SurveyCustom2 => "Survey_Custom2",
            Field::SurveyCustom3 => "Survey_Custom3",
            Field::SurveyUniqueCode => "Survey_UniqueCode",
            Field::PromptsKeys => "Prompts_Keys",
            Field::Notes => "Notes",
            Field::CallType => "CallType",
            Field::GoogleAnalyticsClientId => "Google_Analytics_ClientId",
            Field::GoogleAdwordsClickId => "Google_Adwords_ClickId",
        }
    }

    /// The field with this exact (case-sensitive) JSON name.
    pub fn from_name(name: &str) -> Option<Field> {
        // One match on the whole name (compiled to length checks and short compares), not a
        // scan of the names: this runs for every field of every imported record.
        Some(match name {
            "AccountSid" => Field::AccountSid,
            "CallSid" => Field::CallSid,
            "PropertySid" => Field::PropertySid,
            "Date_Start" => Field::DateStart,
            "From" => Field::From,
            "From_CountryCode" => Field::FromCountryCode,
            "From_Region" => Field::FromRegion,
            "From_City" => Field::FromCity,
            "To" => Field::To,
            "To_Friendly" => Field::ToFriendly,
            "Duration" => Field::Duration,
            "Disposition" => Field::Disposition,
            "Recording_Uri" => Field::RecordingUri,
            "Endpoint" => Field::Endpoint,
            "Attribution_Source" => Field::AttributionSource,
            "Attribution_Medium" => Field::AttributionMedium,
            "Attribution_Campaign" => Field::AttributionCampaign,
            "Attribution_Content" => Field::AttributionContent,
            "Session_Traffic_Type" => Field::SessionTrafficType,
            "Session_Keywords" => Field::SessionKeywords,
            "Session_ConversionUri" => Field::SessionConversionUri,
            "Session_LandingUri" => Field::SessionLandingUri,
            "Survey_Type" => Field::SurveyType,
            "Survey_Value" => Field::SurveyValue,
            "Survey_Custom1" => Field::SurveyCustom1,
            "Survey_Custom2" => Field::SurveyCustom2,
            "Survey_Custom3" => Field::SurveyCustom3,
            "Survey_UniqueCode" => Field::SurveyUniqueCode,
            "Prompts_Keys" => Field::PromptsKeys,
            "Notes" => Field::Notes,
            "CallType" => Field::CallType,
            "Google_Analytics_ClientId" => Field::GoogleAnalyticsClientId,
            "Google_Adwords_ClickId" => Field::GoogleAdwordsClickId,
            _ => return None,
        })
    }
}

/// A field's value, borrowed from a [`Call`], as it is written in a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValue<'a> {
    /// A string value.
    Str(&'a str),
    /// A whole number (`Duration`).
    Int(u64),
    /// An absent value, written `null`.
    Null,
}

impl Call {
    /// A call with the required fields set and every optional field absent.
    ///
    /// The values are taken as given; [`Store::write`](crate::Store::write) normalizes them.
    pub fn new(
        account_sid: impl Into<String>,
        property_sid: impl Into<String>,
        call_sid: impl Into<String>,
        date_start: u32,
        to: impl Into<String>,
        disposition: Disposition,
    ) -> Call {
        Call {
            account_sid: account_sid.into(),
            call_sid: call_sid.into(),
            property_sid: property_sid.into(),
            date_start,
            from: ANONYMOUS.to_string(),
            to: to.into(),
            disposition,
            ..Call::empty()
        }
    }

    /// Every optional string field (those that [`Call::optional_str_mut`] gives).
    fn optional_strs_mut(&mut self) -> [&mut Option<String>; 24] {
        [
            &mut self.from_country_code,
            &mut self.from_region,
            &mut self.from_city,
            &mut self.to_friendly,
            &mut self.recording_uri,
            &mut self.endpoint,
            &mut self.attribution_source,
            &mut self.attribution_medium,
            &mut self.attribution_campaign,
            &mut self.attribution_content,
            &mut self.session_keywords,
            &mut self.session_conversion_uri,
            &mut self.session_landing_uri,
            &mut self.survey_type,
            &mut self.survey_value,
            &mut self.survey_custom1,
            &mut self.survey_custom2,
            &mut self.survey_custom3,
            &mut self.survey_unique_code,
            &mut self.prompts_keys,
            &mut self.notes,
            &mut self.call_type,
            &mut self.google_analytics_client_id,
            &mut self.google_adwords_click_id,
        ]
    }

    /// The optional string field behind `field`, or `None` when `field` is not one.
    fn optional_str_mut(&mut self, field: Field) -> Option<&mut Option<String>> {
        Some(match field {
            Field::FromCountryCode => &mut self.from_country_code,
            Field::FromRegion => &mut self.from_region,
            Field::FromCity => &mut self.from_city,
            Field::ToFriendly => &mut self.to_friendly,
            Field::RecordingUri => &mut self.recording_uri,
            Field::Endpoint => &mut self.endpoint,
            Field::AttributionSource => &mut self.attribution_source,
            Field::AttributionMedium => &mut self.attribution_medium,
            Field::AttributionCampaign => &mut self.attribution_campaign,
            Field::AttributionContent => &mut self.attribution_content,
            Field::SessionKeywords => &mut self.session_keywords,
            Field::SessionConversionUri => &mut self.session_conversion_uri,
            Field::SessionLandingUri => &mut self.session_landing_uri,
            Field::SurveyType => &mut self.survey_type,
            Field::SurveyValue => &mut self.survey_value,
            Field::SurveyCustom1 => &mut self.survey_custom1,
            Field::SurveyCustom2 => &mut self.survey_custom2,
            Field::SurveyCustom3 => &mut self.survey_custom3,
            Field::SurveyUniqueCode => &mut self.survey_unique_code,
            Field::PromptsKeys => &mut self.prompts_keys,
            Field::Notes => &mut self.notes,
            Field::CallType => &mut self.call_type,
            Field::GoogleAnalyticsClientId => &mut self.google_analytics_client_id,
            Field::GoogleAdwordsClickId => &mut self.google_adwords_click_id,
            _ => return None,
        })
    }

    /// The value of `field` as written in a response.
    pub fn value(&self, field: Field) -> FieldValue<'_> {
        self.view().value(field)
    }

    /// The caller identity used for Unique/Repeat (SPEC §3): the normalized `From`, or `None`
    /// for an anonymous caller.
    pub fn caller_identity(&self) -> Option<&str> {
        caller_identity(&self.from)
    }

    /// Brings a call built in Rust to its stored form (SPEC §1): trims every string, turns empty
    /// optional strings into `None`, normalizes phone numbers and the IVR path, and checks that
    /// the required strings are present.
    ///
    /// ```
    /// use callstore::{Call, Disposition};
    /// let mut call = Call::new(" AC1 ", "PR1", "CA1", 10, "61 2 9999-0000", Disposition::Answered);
    /// call.prompts_keys = Some(" 1 , 2 ".to_string());
    /// call.normalize().unwrap();
    /// assert_eq!(call.account_sid, "AC1");
    /// assert_eq!(call.to, "+61299990000");
    /// assert_eq!(call.prompts_keys.as_deref(), Some("1,2"));
    /// ```
    pub fn normalize(&mut self) -> Result<(), RecordError> {
        for (field, value) in [
            (Field::AccountSid, &mut self.account_sid),
            (Field::CallSid, &mut self.call_sid),
            (Field::PropertySid, &mut self.property_sid),
            (Field::To, &mut self.to),
        ] {
            let trimmed = trim(value);
            if trimmed.is_empty() {
                return Err(RecordError::MissingField {
                    field: field.name(),
                });
            }
            if trimmed.len() != value.len() {
                *value = trimmed.to_string();
            }
        }
        // Every step below leaves a value that is already in its stored form as it is, without
        // copying it: records from the generator or from an earlier normalize are, and bulk
        // import runs this for every record.
        normalize_phone_in_place(&mut self.to);
        if trim(&self.from).is_empty() {
            self.from = ANONYMOUS.to_string();
        } else {
            normalize_phone_in_place(&mut self.from);
        }
        for slot in self.optional_strs_mut() {
            trim_in_place(slot);
        }
        if let Some(endpoint) = &mut self.endpoint {
            normalize_phone_in_place(endpoint);
        }
        if let Some(keys) = &mut self.prompts_keys {
            if !is_normalized_prompt_path(keys) {
                match normalize_prompt_path(keys) {
                    Some(path) => *keys = path,
                    None => {
                        let value = std::mem::take(keys);
                        self.prompts_keys = None;
                        return Err(RecordError::InvalidValue {
                            field: Field::PromptsKeys.name(),
                            value,
                            reason: "an IVR path may not hold an empty key",
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Parses one ingest record: a JSON object with the exact field names of SPEC §1.
    ///
    /// An unknown or repeated field, a wrong JSON type or a missing required field is an error
    /// naming the field. The result is normalized.
    ///
    /// ```
    /// use callstore::Call;
    /// let call = Call::from_json(r#"{"AccountSid":"AC1","PropertySid":"PR1","CallSid":"CA1",
    ///     "Date_Start":"1700000000","To":"+1 (555) 010-0000","Disposition":"answered"}"#).unwrap();
    /// assert_eq!(call.to, "+15550100000");
    /// assert_eq!(call.from, "anonymous");
    /// assert!(Call::from_json(r#"{"CallSid":"CA1","Colour":"red"}"#).is_err());
    /// ```
    pub fn from_json(text: &str) -> Result<Call, RecordError> {
        // Most records take the fast path; any other text, and every record with an error, goes
        // through `serde_json`, which gives the error.
        let mut call = match parse::from_plain_json(text) {
            Some(call) => call,
            None => parse::from_serde_json(text)?,
        };
        call.normalize()?;
        Ok(call)
    }

    /// A call with every string empty, every optional field absent and every number 0.
    fn empty() -> Call {
        Call {
            account_sid: String::new(),
            call_sid: String::new(),
            property_sid: String::new(),
            date_start: 0,
            from: String::new(),
            from_country_code: None,
            from_region: None,
            from_city: None,
            to: String::new(),
            to_friendly: None,
            duration: 0,
            disposition: Disposition::Answered,
            recording_uri: None,
            endpoint: None,
            attribution_source: None,
            attribution_medium: None,
            attribution_campaign: None,
            attribution_content: None,
            session_traffic_type: None,
            session_keywords: None,
            session_conversion_uri: None,
            session_landing_uri: None,
            survey_type: None,
            survey_value: None,
            survey_custom1: None,
            survey_custom2: None,
            survey_custom3: None,
            survey_unique_code: None,
            prompts_keys: None,
            notes: None,
            call_type: None,
            google_analytics_client_id: None,
            google_adwords_click_id: None,
        }
    }
}

/// Parses a non-empty string of ASCII digits as a `u32`; `None` for anything else or overflow.
pub(crate) fn parse_u32_digits(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut value: u64 = 0;
    for b in text.bytes() {
        value = value * 10 + u64::from(b - b'0');
        if value > u64::from(u32::MAX) {
            return None;
        }
    }
    u32::try_from(value).ok()
}

/// `text.trim()`, quick when the first and last bytes are printable ASCII (no whitespace can be
/// trimmed then), as in most values.
#[inline]
fn trim(text: &str) -> &str {
    let printable = |b: Option<&u8>| b.is_some_and(|b| (0x21..=0x7e).contains(b));
    if printable(text.as_bytes().first()) && printable(text.as_bytes().last()) {
        text
    } else {
        text.trim()
    }
}

/// Trims an optional string in place, turning an empty one into `None`; copies only when there
/// is something to trim.
fn trim_in_place(slot: &mut Option<String>) {
    if let Some(text) = slot {
        let t = trim(text);
        if t.is_empty() {
            *slot = None;
        } else if t.len() != text.len() {
            *text = t.to_string();
        }
    }
}

/// [`normalize_phone`] in place: a value it would leave unchanged (a trimmed non-phone value, or
/// `+` followed by digits) is not copied.
fn normalize_phone_in_place(value: &mut String) {
    if let [b'+', digits @ ..] = value.as_bytes() {
        if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
            return;
        }
    }
    let t = trim(value);
    if is_phone_like(t) {
        *value = normalize_phone(t);
    } else if t.len() != value.len() {
        *value = t.to_string();
    }
}

/// Whether a trimmed value is a phone number to normalize: only digits, spaces and `+-().`,
/// with at least one digit.
fn is_phone_like(t: &str) -> bool {
    t.bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b' ' | b'+' | b'-' | b'(' | b')' | b'.'))
        && t.bytes().any(|b| b.is_ascii_digit())
}

/// Whether [`normalize_prompt_path`] would give back `path` unchanged: no key is empty or has
/// spaces around it.
fn is_normalized_prompt_path(path: &str) -> bool {
    path.split(',')
        .all(|key| !key.is_empty() && trim(key).len() == key.len())
}

/// Normalizes a phone number (SPEC §1): a value made only of digits, spaces and `+-().` with at
/// least one digit becomes `+` followed by its digits; any other value is only trimmed.
///
/// ```
/// use callstore::normalize_phone;
/// assert_eq!(normalize_phone("61 2 9999-0000"), "+61299990000");
/// assert_eq!(normalize_phone(" (02) 9999.0000 "), "+0299990000");
/// assert_eq!(normalize_phone(" anonymous "), "anonymous");
/// assert_eq!(normalize_phone("+-"), "+-");
/// ```
pub fn normalize_phone(value: &str) -> String {
    let t = value.trim();
    if is_phone_like(t) {
        let mut out = String::with_capacity(t.len() + 1);
        out.push('+');
        out.extend(t.chars().filter(char::is_ascii_digit));
        out
    } else {
        t.to_string()
    }
}

/// The caller identity of a normalized `From` value: `None` for an anonymous caller (any case).
pub fn caller_identity(from: &str) -> Option<&str> {
    (!from.eq_ignore_ascii_case(ANONYMOUS) && !from.is_empty()).then_some(from)
}

/// Normalizes an IVR path: keys split on `,`, trimmed, joined by a bare `,`. `None` when a key
/// is empty (`"1,,2"`, `"1,"`).
pub(crate) fn normalize_prompt_path(path: &str) -> Option<String> {
    let mut out = String::with_capacity(path.len());
    for (i, key) in path.split(',').enumerate() {
        let key = key.trim();
        if key.is_empty() {
            return None;
        }
        if i > 0 {
            out.push(',');
        }
        out.push_str(key);
    }
    Some(out)
}

/// How many leading keys of an IVR path are indexed: a call is posted under each of its path's
/// first prefixes, up to this depth, so that indexing stays linear in the path's length. A filter
/// path deeper than this is matched through its indexed prefix and checked against the records.
pub(crate) const INDEXED_PROMPT_DEPTH: usize = 16;

/// Whether an IVR path starts with `prefix`, key by key: `"1,2"` starts with `"1"` but `"12"`
/// does not.
pub(crate) fn prompt_path_starts_with(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(','))
}

/// Every prefix of a normalized IVR path, shortest first: `"1,2,3"` gives `"1"`, `"1,2"`,
/// `"1,2,3"`.
pub(crate) fn prompt_prefixes(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices(',')
        .map(move |(i, _)| &path[..i])
        .chain(std::iter::once(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_of_a_path() {
        assert_eq!(prompt_prefixes("1").collect::<Vec<_>>(), ["1"]);
        assert_eq!(
            prompt_prefixes("1,22,3").collect::<Vec<_>>(),
            ["1", "1,22", "1,22,3"]
        );
    }

    #[test]
    fn paths_start_with_prefixes_key_by_key() {
        assert!(prompt_path_starts_with("1,2", "1"));
        assert!(prompt_path_starts_with("1,2", "1,2"));
        assert!(!prompt_path_starts_with("12", "1"));
        assert!(!prompt_path_starts_with("1", "1,2"));
    }

    #[test]
    fn digits_parse_up_to_u32_max() {
        assert_eq!(parse_u32_digits("4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32_digits("4294967296"), None);
        assert_eq!(parse_u32_digits("007"), Some(7));
        assert_eq!(parse_u32_digits("-1"), None);
        assert_eq!(parse_u32_digits(""), None);
    }

    #[test]
    fn field_names_round_trip() {
        for f in Field::RESPONSE {
            assert_eq!(Field::from_name(f.name()), Some(f));
        }
        assert_eq!(Field::from_name("AccountSid"), Some(Field::AccountSid));
        assert_eq!(Field::from_name("Prompts_keys"), None);
    }
}
