//! Reading ingest records ([`Call::from_json`]): a fast path for the plain records that bulk
//! import sees, and `serde_json` for every other text and for every error.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de;

use super::{Call, Disposition, Field, TrafficType, parse_u32_digits};
use crate::error::RecordError;

/// The full parse of [`Call::from_json`], before [`Call::normalize`]: the text through
/// `serde_json`, each field read as it is parsed.
///
/// A field error only comes out once the whole text has parsed: a JSON syntax error anywhere in
/// the text wins over any field error; then the first field error in field order; then a missing
/// `Date_Start`, then a missing `Disposition`.
pub(super) fn from_serde_json(text: &str) -> Result<Call, RecordError> {
    let record: Record =
        serde_json::from_str(text).map_err(|e| RecordError::Json(e.to_string()))?;
    record.0
}

/// An ingest object read by [`Call::from_json`]: the call before [`Call::normalize`], or the
/// first error of its fields. The error is kept rather than returned so that `serde_json` goes on
/// parsing, and a later syntax error (which it returns itself) wins.
struct Record(Result<Call, RecordError>);

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Record;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
                let mut fields = Fields::new();
                let mut error = None;
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    let value = map.next_value::<Raw<'de>>()?;
                    if error.is_none() {
                        error = fields.set(key, value).err();
                    }
                }
                Ok(Record(match error {
                    Some(error) => Err(error),
                    None => fields.finish(),
                }))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// The fields of an ingest object as they are read, in their order.
struct Fields {
    call: Call,
    /// One bit per [`Field`] given so far.
    seen: u64,
    /// `Date_Start` was given a valid value.
    seen_date: bool,
    /// `Disposition` was given a non-empty valid value.
    seen_disposition: bool,
}

impl Fields {
    fn new() -> Fields {
        Fields {
            call: Call::empty(),
            seen: 0,
            seen_date: false,
            seen_disposition: false,
        }
    }

    /// Takes the next field of the object: an unknown or repeated name, a wrong JSON type or a
    /// value that is not allowed is an error naming the field.
    fn set(&mut self, key: Key<'_>, value: Raw<'_>) -> Result<(), RecordError> {
        let field = match key {
            Key::Field(field) => field,
            Key::Unknown(name) => {
                return Err(RecordError::UnknownField {
                    field: name.into_owned(),
                });
            }
        };
        let bit = 1u64 << field as u32;
        if self.seen & bit != 0 {
            return Err(RecordError::DuplicateField {
                field: field.name(),
            });
        }
        self.seen |= bit;
        let wrong_type = |expected: &'static str, value: &Raw<'_>| RecordError::WrongType {
            field: field.name(),
            expected,
            found: value.type_name(),
        };
        let call = &mut self.call;
        match field {
            Field::DateStart => {
                call.date_start = parse_date_start(value)?;
                self.seen_date = true;
            }
            Field::Duration => {
                call.duration = match value {
                    Raw::Null => 0,
                    Raw::Number(n) => n.as_u64().ok_or_else(|| RecordError::InvalidValue {
                        field: field.name(),
                        value: n.to_string(),
                        reason: "must be a whole number of seconds, 0 or more",
                    })?,
                    other => return Err(wrong_type("an integer", &other)),
                };
            }
            Field::Disposition | Field::SessionTrafficType => {
                let text = match &value {
                    Raw::Null => return Ok(()),
                    Raw::Str(s) => s.trim(),
                    other => return Err(wrong_type("a string", other)),
                };
                if text.is_empty() {
                    return Ok(());
                }
                let invalid = || RecordError::InvalidValue {
                    field: field.name(),
                    value: text.to_string(),
                    reason: if field == Field::Disposition {
                        "expected Answered, IVR, Busy, NoAnswer or Failed"
                    } else {
                        "expected Campaign, Direct, Organic, Referral or Unattributed"
                    },
                };
                if field == Field::Disposition {
                    call.disposition = Disposition::parse(text).ok_or_else(invalid)?;
                    self.seen_disposition = true;
                } else {
                    call.session_traffic_type = Some(TrafficType::parse(text).ok_or_else(invalid)?);
                }
            }
            _ => {
                let text = match value {
                    Raw::Null => None,
                    Raw::Str(s) => Some(s.into_owned()),
                    other => return Err(wrong_type("a string", &other)),
                };
                match field {
                    Field::AccountSid => call.account_sid = text.unwrap_or_default(),
                    Field::CallSid => call.call_sid = text.unwrap_or_default(),
                    Field::PropertySid => call.property_sid = text.unwrap_or_default(),
                    Field::To => call.to = text.unwrap_or_default(),
                    Field::From => call.from = text.unwrap_or_default(),
                    _ => {
                        if let Some(slot) = call.optional_str_mut(field) {
                            *slot = text;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The call once every field is read: `Date_Start`, then `Disposition`, must have been given.
    fn finish(self) -> Result<Call, RecordError> {
        if !self.seen_date {
            return Err(RecordError::MissingField {
                field: Field::DateStart.name(),
            });
        }
        if !self.seen_disposition {
            return Err(RecordError::MissingField {
                field: Field::Disposition.name(),
            });
        }
        Ok(self.call)
    }
}

/// The name of an ingest object's field: a [`Field`], or a name that is none (kept for the
/// error). Borrowed from the text unless it had escapes.
enum Key<'de> {
    Field(Field),
    Unknown(Cow<'de, str>),
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Key<'de>, E> {
                Ok(Field::from_name(name).map_or(Key::Unknown(Cow::Borrowed(name)), Key::Field))
            }
            fn visit_str<E>(self, name: &str) -> Result<Key<'de>, E> {
                Ok(Field::from_name(name)
                    .map_or_else(|| Key::Unknown(Cow::Owned(name.to_string())), Key::Field))
            }
            fn visit_string<E>(self, name: String) -> Result<Key<'de>, E> {
                Ok(Field::from_name(&name).map_or(Key::Unknown(Cow::Owned(name)), Key::Field))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// A field's JSON value, parsed exactly as [`serde_json::Value`] parses it (so that the same
/// texts are refused with the same errors) but keeping only what the field checks look at: a
/// string borrowed from the text unless it had escapes, and no more than the type of an array
/// or object.
enum Raw<'de> {
    Null,
    Bool,
    Number(serde_json::Number),
    Str(Cow<'de, str>),
    Array,
    Object,
}

impl Raw<'_> {
    /// The JSON type, as error messages name it.
    fn type_name(&self) -> &'static str {
        match self {
            Raw::Null => "null",
            Raw::Bool => "a boolean",
            Raw::Number(_) => "a number",
            Raw::Str(_) => "a string",
            Raw::Array => "an array",
            Raw::Object => "an object",
        }
    }
}

impl<'de> Deserialize<'de> for Raw<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        // Each method does what serde_json's own `Value` visitor does, keeping less.
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = Raw<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any valid JSON value")
            }
            fn visit_unit<E>(self) -> Result<Raw<'de>, E> {
                Ok(Raw::Null)
            }
            fn visit_none<E>(self) -> Result<Raw<'de>, E> {
                Ok(Raw::Null)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Raw<'de>, E> {
                Ok(Raw::Bool)
            }
            fn visit_u64<E>(self, value: u64) -> Result<Raw<'de>, E> {
                Ok(Raw::Number(value.into()))
            }
            fn visit_i64<E>(self, value: i64) -> Result<Raw<'de>, E> {
                Ok(Raw::Number(value.into()))
            }
            fn visit_u128<E: de::Error>(self, value: u128) -> Result<Raw<'de>, E> {
                serde_json::Number::deserialize(de::value::U128Deserializer::new(value))
                    .map(Raw::Number)
            }
            fn visit_i128<E: de::Error>(self, value: i128) -> Result<Raw<'de>, E> {
                serde_json::Number::deserialize(de::value::I128Deserializer::new(value))
                    .map(Raw::Number)
            }
            fn visit_f64<E>(self, value: f64) -> Result<Raw<'de>, E> {
                Ok(serde_json::Number::from_f64(value).map_or(Raw::Null, Raw::Number))
            }
            fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Raw<'de>, E> {
                Ok(Raw::Str(Cow::Borrowed(value)))
            }
            fn visit_str<E>(self, value: &str) -> Result<Raw<'de>, E> {
                Ok(Raw::Str(Cow::Owned(value.to_string())))
            }
            fn visit_string<E>(self, value: String) -> Result<Raw<'de>, E> {
                Ok(Raw::Str(Cow::Owned(value)))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Raw<'de>, A::Error> {
                // Elements parsed as `Value`s, not skipped: skipping checks less (a number out
                // of range, for one).
                while seq.next_element::<serde_json::Value>()?.is_some() {}
                Ok(Raw::Array)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Raw<'de>, A::Error> {
                while map.next_entry::<String, serde_json::Value>()?.is_some() {}
                Ok(Raw::Object)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The fast path of [`Call::from_json`], for the records that bulk import sees.
///
/// It takes only an object whose keys and strings have no escapes, whose numbers are plain whole
/// numbers that fit a `u64` (no sign, fraction, exponent or leading zero), and whose values are
/// only strings, numbers and `null`, with any JSON whitespace. Such a text parses with
/// `serde_json` to the same keys and values in the same order, and every field here is read as
/// [`Fields::set`] reads it, so the call is the one that the full parse would give.
///
/// `None` for any other text and for any record that the full parse would refuse (an unknown or
/// repeated field, a wrong type, a value not allowed, a missing `Date_Start` or `Disposition`):
/// the caller then parses it again with `serde_json`, which gives the error. The checks of
/// [`Call::normalize`] are left to the caller.
pub(super) fn from_plain_json(text: &str) -> Option<Call> {
    let mut values = [PlainValue::Absent; FIELD_COUNT];
    plain_values(text, &mut values)?;
    let value = |field: Field| {
        values
            .get(field as usize)
            .copied()
            .unwrap_or(PlainValue::Absent)
    };
    let required = |field: Field| match value(field) {
        PlainValue::Absent | PlainValue::Null => Some(String::new()),
        PlainValue::Str(s) => Some(s.to_string()),
        PlainValue::Number(_) => None,
    };
    let optional = |field: Field| match value(field) {
        PlainValue::Absent | PlainValue::Null => Some(None),
        PlainValue::Str(s) => Some(Some(s.to_string())),
        PlainValue::Number(_) => None,
    };
    Some(Call {
        account_sid: required(Field::AccountSid)?,
        call_sid: required(Field::CallSid)?,
        property_sid: required(Field::PropertySid)?,
        date_start: match value(Field::DateStart) {
            PlainValue::Number(n) => u32::try_from(n).ok()?,
            PlainValue::Str(s) => parse_u32_digits(s.trim())?,
            PlainValue::Absent | PlainValue::Null => return None,
        },
        from: required(Field::From)?,
        from_country_code: optional(Field::FromCountryCode)?,
        from_region: optional(Field::FromRegion)?,
        from_city: optional(Field::FromCity)?,
        to: required(Field::To)?,
        to_friendly: optional(Field::ToFriendly)?,
        duration: match value(Field::Duration) {
            PlainValue::Absent | PlainValue::Null => 0,
            PlainValue::Number(n) => n,
            PlainValue::Str(_) => return None,
        },
        disposition: match value(Field::Disposition) {
            PlainValue::Str(s) => Disposition::parse(s.trim())?,
            _ => return None,
        },
        recording_uri: optional(Field::RecordingUri)?,
        endpoint: optional(Field::Endpoint)?,
        attribution_source: optional(Field::AttributionSource)?,
        attribution_medium: optional(Field::AttributionMedium)?,
        attribution_campaign: optional(Field::AttributionCampaign)?,
        attribution_content: optional(Field::AttributionContent)?,
        session_traffic_type: match value(Field::SessionTrafficType) {
            PlainValue::Absent | PlainValue::Null => None,
            PlainValue::Str(s) if s.trim().is_empty() => None,
            PlainValue::Str(s) => Some(TrafficType::parse(s.trim())?),
            PlainValue::Number(_) => return None,
        },
        session_keywords: optional(Field::SessionKeywords)?,
        session_conversion_uri: optional(Field::SessionConversionUri)?,
        session_landing_uri: optional(Field::SessionLandingUri)?,
        survey_type: optional(Field::SurveyType)?,
        survey_value: optional(Field::SurveyValue)?,
        survey_custom1: optional(Field::SurveyCustom1)?,
        survey_custom2: optional(Field::SurveyCustom2)?,
        survey_custom3: optional(Field::SurveyCustom3)?,
        survey_unique_code: optional(Field::SurveyUniqueCode)?,
        prompts_keys: optional(Field::PromptsKeys)?,
        notes: optional(Field::Notes)?,
        call_type: optional(Field::CallType)?,
        google_analytics_client_id: optional(Field::GoogleAnalyticsClientId)?,
        google_adwords_click_id: optional(Field::GoogleAdwordsClickId)?,
    })
}

/// How many fields a record has: one [`Field`] each.
const FIELD_COUNT: usize = Field::RESPONSE.len() + 1;

/// A value that [`from_plain_json`] takes, borrowed from the text.
#[derive(Clone, Copy)]
enum PlainValue<'a> {
    /// The field is not in the object.
    Absent,
    Null,
    Str(&'a str),
    Number(u64),
}

/// Reads the values of an object of [`from_plain_json`]'s form into `values` (all absent
/// before), by [`Field`]; `None` for any other text, and for an unknown or repeated field.
fn plain_values<'a>(text: &'a str, values: &mut [PlainValue<'a>; FIELD_COUNT]) -> Option<()> {
    let mut scan = Plain {
        bytes: text.as_bytes(),
        text,
        pos: 0,
    };
    scan.skip_whitespace();
    scan.eat(b'{')?;
    scan.skip_whitespace();
    if scan.peek() == Some(b'}') {
        scan.pos += 1;
    } else {
        for index in 0.. {
            scan.eat(b'"')?;
            // Fields mostly come in the generator's order: the one expected here is tried first,
            // as the name followed by its closing quote (a name has no escapes).
            let field = match ingest_field(index) {
                Some(field) if scan.eat_name(field.name()) => field,
                _ => Field::from_name(scan.string()?)?,
            };
            let slot = values.get_mut(field as usize)?;
            if !matches!(slot, PlainValue::Absent) {
                return None;
            }
            scan.skip_whitespace();
            scan.eat(b':')?;
            scan.skip_whitespace();
            *slot = scan.value()?;
            scan.skip_whitespace();
            match scan.next()? {
                b',' => scan.skip_whitespace(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    scan.skip_whitespace();
    (scan.pos == scan.bytes.len()).then_some(())
}

/// How many bytes of `text` come before the first quote, backslash or control character (the
/// end of a JSON string without escapes, or where it is not one): all of them when there is none.
fn string_len(text: &[u8]) -> usize {
    const ONES: u64 = u64::MAX / 255;
    /// The high bit of each byte of `chunk` that is a quote, a backslash or below 0x20, and maybe
    /// of later bytes too (a borrow runs on past a hit, so the lowest bit is exact).
    fn stops(chunk: u64) -> u64 {
        let quote = chunk ^ (ONES * u64::from(b'"'));
        let backslash = chunk ^ (ONES * u64::from(b'\\'));
        let control = chunk.wrapping_sub(ONES * 0x20) & !chunk;
        (control
            | (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash))
            & (ONES << 7)
    }
    // Eight bytes at a time, then byte by byte.
    let mut len = 0;
    for chunk in text.chunks_exact(8) {
        let Ok(chunk) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let hits = stops(u64::from_le_bytes(chunk));
        if hits != 0 {
            return len + (hits.trailing_zeros() / 8) as usize;
        }
        len += 8;
    }
    while let Some(&b) = text.get(len) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            break;
        }
        len += 1;
    }
    len
}

/// The `index`-th field of an ingest record as [`generate`](crate::generate) writes it:
/// `AccountSid`, then the response fields in order.
fn ingest_field(index: usize) -> Option<Field> {
    match index.checked_sub(1) {
        None => Some(Field::AccountSid),
        Some(i) => Field::RESPONSE.get(i).copied(),
    }
}

/// A cursor over the text of [`plain_values`].
struct Plain<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Plain<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    /// Consumes `expected`; `None` when the next byte is anything else.
    #[inline]
    fn eat(&mut self, expected: u8) -> Option<()> {
        (self.next()? == expected).then_some(())
    }

    /// Consumes `name` and a closing quote when they come next; `false` (consuming nothing)
    /// otherwise.
    #[inline]
    fn eat_name(&mut self, name: &str) -> bool {
        let end = self.pos + name.len();
        let found = self.bytes.get(end) == Some(&b'"')
            && self.bytes.get(self.pos..end) == Some(name.as_bytes());
        if found {
            self.pos = end + 1;
        }
        found
    }

    /// Skips JSON whitespace, as `serde_json` does: spaces, tabs, line feeds, carriage returns.
    #[inline]
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// The rest of a string whose opening quote is consumed, up to and past its closing quote;
    /// `None` at an escape, a control character (which JSON does not allow in a string) or the
    /// end of the text.
    #[inline]
    fn string(&mut self) -> Option<&'a str> {
        let start = self.pos;
        let len = string_len(self.bytes.get(start..)?);
        if self.bytes.get(start + len) != Some(&b'"') {
            return None;
        }
        self.pos = start + len + 1;
        self.text.get(start..start + len)
    }

    /// A value: a string, `null`, or a whole number that fits a `u64` written without a
    /// fraction, an exponent or a leading zero.
    #[inline]
    fn value(&mut self) -> Option<PlainValue<'a>> {
        match self.next()? {
            b'"' => Some(PlainValue::Str(self.string()?)),
            b'n' => {
                let rest = self.bytes.get(self.pos..self.pos + 3)?;
                self.pos += 3;
                (rest == b"ull").then_some(PlainValue::Null)
            }
            first @ b'0'..=b'9' => {
                let mut value = u64::from(first - b'0');
                while let Some(b @ b'0'..=b'9') = self.peek() {
                    if first == b'0' {
                        return None;
                    }
                    value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
                    self.pos += 1;
                }
                match self.peek() {
                    Some(b'.' | b'e' | b'E') => None,
                    _ => Some(PlainValue::Number(value)),
                }
            }
            _ => None,
        }
    }
}

/// `Date_Start`: a JSON number or a string of digits, `0 <= t < 2^32`.
fn parse_date_start(value: Raw<'_>) -> Result<u32, RecordError> {
    let field = Field::DateStart.name();
    let invalid = |value: String| RecordError::InvalidValue {
        field,
        value,
        reason: "must be unix seconds, a whole number from 0 to 4294967295",
    };
    match value {
        Raw::Number(n) => n
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| invalid(n.to_string())),
        Raw::Str(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Err(RecordError::MissingField { field });
            }
            match parse_u32_digits(t) {
                Some(v) => Ok(v),
                None => Err(invalid(s.into_owned())),
            }
        }
        Raw::Null => Err(RecordError::MissingField { field }),
        other => Err(RecordError::WrongType {
            field,
            expected: "a number or a string of digits",
            found: other.type_name(),
        }),
    }
}

#[cfg(test)]
mod oracle;

#[cfg(test)]
mod tests;
