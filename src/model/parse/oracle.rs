//! The parser of ingest records as it was before the fast path (commit 1793620), kept as the
//! oracle: `Call::from_json` must give the same call, or the same error, for every text.

use std::fmt;

use serde::Deserialize;

use crate::error::RecordError;
use crate::model::{
    ANONYMOUS, Call, Disposition, Field, TrafficType, normalize_prompt_path, parse_u32_digits,
};

/// The old `Call::from_json`.
pub(super) fn from_json(text: &str) -> Result<Call, RecordError> {
    let object: JsonObject =
        serde_json::from_str(text).map_err(|e| RecordError::Json(e.to_string()))?;
    from_fields(object.0)
}

/// Builds a call from an object's fields (in their order).
fn from_fields(fields: Vec<(String, serde_json::Value)>) -> Result<Call, RecordError> {
    use serde_json::Value;
    let mut call = Call::new("", "", "", 0, "", Disposition::Answered);
    let mut seen_date = false;
    let mut seen_disposition = false;
    let mut seen = Vec::with_capacity(fields.len());
    for (name, value) in fields {
        let field = field_from_name(&name).ok_or_else(|| RecordError::UnknownField {
            field: name.clone(),
        })?;
        if seen.contains(&field) {
            return Err(RecordError::DuplicateField {
                field: field.name(),
            });
        }
        seen.push(field);
        let wrong_type = |expected: &'static str, value: &Value| RecordError::WrongType {
            field: field.name(),
            expected,
            found: json_type_name(value),
        };
        match field {
            Field::DateStart => {
                call.date_start = parse_date_start(&value)?;
                seen_date = true;
            }
            Field::Duration => {
                call.duration = match &value {
                    Value::Null => 0,
                    Value::Number(n) => n.as_u64().ok_or_else(|| RecordError::InvalidValue {
                        field: field.name(),
                        value: n.to_string(),
                        reason: "must be a whole number of seconds, 0 or more",
                    })?,
                    other => return Err(wrong_type("an integer", other)),
                };
            }
            Field::Disposition | Field::SessionTrafficType => {
                let text = match &value {
                    Value::Null => None,
                    Value::String(s) => trim_to_option(s),
                    other => return Err(wrong_type("a string", other)),
                };
                let Some(text) = text else { continue };
                let invalid = || RecordError::InvalidValue {
                    field: field.name(),
                    value: text.clone(),
                    reason: if field == Field::Disposition {
                        "expected Answered, IVR, Busy, NoAnswer or Failed"
                    } else {
                        "expected Campaign, Direct, Organic, Referral or Unattributed"
                    },
                };
                if field == Field::Disposition {
                    call.disposition = Disposition::parse(&text).ok_or_else(invalid)?;
                    seen_disposition = true;
                } else {
                    call.session_traffic_type =
                        Some(TrafficType::parse(&text).ok_or_else(invalid)?);
                }
            }
            _ => {
                let text = match value {
                    Value::Null => None,
                    Value::String(s) => Some(s),
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
    }
    if !seen_date {
        return Err(RecordError::MissingField {
            field: Field::DateStart.name(),
        });
    }
    if !seen_disposition {
        return Err(RecordError::MissingField {
            field: Field::Disposition.name(),
        });
    }
    normalize(&mut call)?;
    Ok(call)
}

/// The old `Field::from_name`: a scan of the names.
fn field_from_name(name: &str) -> Option<Field> {
    if name == "AccountSid" {
        return Some(Field::AccountSid);
    }
    Field::RESPONSE.into_iter().find(|f| f.name() == name)
}

/// The old `Call::normalize`.
pub(super) fn normalize(call: &mut Call) -> Result<(), RecordError> {
    for (field, value) in [
        (Field::AccountSid, &mut call.account_sid),
        (Field::CallSid, &mut call.call_sid),
        (Field::PropertySid, &mut call.property_sid),
        (Field::To, &mut call.to),
    ] {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(RecordError::MissingField {
                field: field.name(),
            });
        }
        if trimmed.len() != value.len() {
            *value = trimmed.to_string();
        }
    }
    call.to = normalize_phone(&call.to);
    let from = call.from.trim();
    call.from = if from.is_empty() {
        ANONYMOUS.to_string()
    } else {
        normalize_phone(from)
    };
    for field in Field::RESPONSE {
        if let Some(slot) = call.optional_str_mut(field) {
            *slot = slot.take().and_then(|s| trim_to_option(&s));
        }
    }
    call.endpoint = call.endpoint.take().map(|e| normalize_phone(&e));
    if let Some(keys) = call.prompts_keys.take() {
        let path = normalize_prompt_path(&keys).ok_or_else(|| RecordError::InvalidValue {
            field: Field::PromptsKeys.name(),
            value: keys.clone(),
            reason: "an IVR path may not hold an empty key",
        })?;
        call.prompts_keys = Some(path);
    }
    Ok(())
}

/// The old `normalize_phone`.
pub(super) fn normalize_phone(value: &str) -> String {
    let t = value.trim();
    let phone_like = t
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b' ' | b'+' | b'-' | b'(' | b')' | b'.'));
    if phone_like && t.bytes().any(|b| b.is_ascii_digit()) {
        let mut out = String::with_capacity(t.len() + 1);
        out.push('+');
        out.extend(t.chars().filter(char::is_ascii_digit));
        out
    } else {
        t.to_string()
    }
}

/// Trims a string; `None` when nothing is left.
fn trim_to_option(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// A JSON object kept as its fields in order, rejecting nothing itself (duplicates are checked
/// by the caller, which knows the field names).
struct JsonObject(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for JsonObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = JsonObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<JsonObject, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    fields.push(entry);
                }
                Ok(JsonObject(fields))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

fn json_type_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// `Date_Start`: a JSON number or a string of digits, `0 <= t < 2^32`.
fn parse_date_start(value: &serde_json::Value) -> Result<u32, RecordError> {
    let field = Field::DateStart.name();
    let invalid = |value: String| RecordError::InvalidValue {
        field,
        value,
        reason: "must be unix seconds, a whole number from 0 to 4294967295",
    };
    match value {
        serde_json::Value::Number(n) => n
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| invalid(n.to_string())),
        serde_json::Value::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Err(RecordError::MissingField { field });
            }
            parse_u32_digits(t).ok_or_else(|| invalid(s.clone()))
        }
        serde_json::Value::Null => Err(RecordError::MissingField { field }),
        other => Err(RecordError::WrongType {
            field,
            expected: "a number or a string of digits",
            found: json_type_name(other),
        }),
    }
}
