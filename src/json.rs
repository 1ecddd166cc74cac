//! Responses as JSON (SPEC §6): every documented field in the API document's order, `null` for
//! an absent value, `Date_Start` as a string of digits, `AccountSid` left out.

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::model::{Call, Field, FieldValue};

/// A call as the API writes it; serialize it with `serde_json`.
pub struct ApiCall<'a>(pub &'a Call);

impl Serialize for ApiCall<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Call", Field::RESPONSE.len())?;
        for field in Field::RESPONSE {
            let name = field.name();
            match (field, self.0.value(field)) {
                (Field::DateStart, _) => s.serialize_field(name, &self.0.date_start.to_string())?,
                (_, FieldValue::Str(v)) => s.serialize_field(name, v)?,
                (_, FieldValue::Int(v)) => s.serialize_field(name, &v)?,
                (_, FieldValue::Null) => s.serialize_field(name, &None::<&str>)?,
            }
        }
        s.end()
    }
}

/// The answer to a request: one call, or a page of calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// The answer to `/v2/Calls/{CallSid}`: a JSON object.
    Call(Box<Call>),
    /// The answer to a list request: a JSON array, possibly empty.
    Calls(Vec<Call>),
}

impl Response {
    /// The response as compact JSON.
    pub fn to_json(&self) -> String {
        self.render(false)
    }

    /// The response as indented JSON.
    pub fn to_json_pretty(&self) -> String {
        self.render(true)
    }

    fn render(&self, pretty: bool) -> String {
        let mut out = Vec::with_capacity(match self {
            Response::Call(_) => 1024,
            Response::Calls(calls) => 2 + calls.len() * 1024,
        });
        // Writing to a Vec cannot fail, and every value here is a string, a number or null.
        let _ = match (self, pretty) {
            (Response::Call(c), false) => serde_json::to_writer(&mut out, &ApiCall(c)),
            (Response::Call(c), true) => serde_json::to_writer_pretty(&mut out, &ApiCall(c)),
            (Response::Calls(cs), false) => {
                serde_json::to_writer(&mut out, &cs.iter().map(ApiCall).collect::<Vec<_>>())
            }
            (Response::Calls(cs), true) => {
                serde_json::to_writer_pretty(&mut out, &cs.iter().map(ApiCall).collect::<Vec<_>>())
            }
        };
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Disposition;

    #[test]
    fn fields_in_document_order_with_nulls() {
        let mut call = Call::new("AC1", "PR1", "CA1", 42, "+15550100", Disposition::IVR);
        call.duration = 7;
        let json = Response::Call(Box::new(call)).to_json();
        assert!(json.starts_with(
            r#"{"CallSid":"CA1","PropertySid":"PR1","Date_Start":"42","From":"anonymous","From_CountryCode":null"#
        ));
        assert!(json.contains(r#""Duration":7,"Disposition":"IVR""#));
        assert!(json.ends_with(r#""Google_Adwords_ClickId":null}"#));
        assert!(!json.contains("AccountSid"));
        assert_eq!(Response::Calls(vec![]).to_json(), "[]");
    }
}
