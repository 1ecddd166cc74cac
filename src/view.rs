//! Calls read in place: [`CallRef`], the borrowed form of a [`Call`].
//!
//! A stored record decodes into a `CallRef` without an allocation per field; a page of them is a
//! [`Page`](crate::Page). [`CallRef::to_call`] makes the owned form when one is needed.

use crate::model::{Call, Disposition, Field, FieldValue, TrafficType};

/// A call whose strings are borrowed: the fields of [`Call`], in the same order and with the
/// same meaning, as `&str` instead of `String`.
///
/// ```
/// use callstore::{Call, Disposition};
///
/// let call = Call::new("AC1", "PR1", "CA1", 100, "+15550199", Disposition::Answered);
/// let view = call.view();
/// assert_eq!(view.call_sid, "CA1");
/// assert_eq!(view.to_call(), call);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallRef<'a> {
    /// `AccountSid`: the account the call belongs to (not written in responses).
    pub account_sid: &'a str,
    /// `CallSid`: the call's identity, unique over the store.
    pub call_sid: &'a str,
    /// `PropertySid`: the property of the call; a property belongs to one account.
    pub property_sid: &'a str,
    /// `Date_Start`: when the call started, in unix seconds.
    pub date_start: u32,
    /// `From`: the caller number, normalized; [`ANONYMOUS`](crate::ANONYMOUS) when unknown.
    pub from: &'a str,
    /// `From_CountryCode`.
    pub from_country_code: Option<&'a str>,
    /// `From_Region`.
    pub from_region: Option<&'a str>,
    /// `From_City`.
    pub from_city: Option<&'a str>,
    /// `To`: the dialled number, normalized.
    pub to: &'a str,
    /// `To_Friendly`.
    pub to_friendly: Option<&'a str>,
    /// `Duration`: the call's length in seconds.
    pub duration: u64,
    /// `Disposition`.
    pub disposition: Disposition,
    /// `Recording_Uri`.
    pub recording_uri: Option<&'a str>,
    /// `Endpoint`: the endpoint reached, normalized.
    pub endpoint: Option<&'a str>,
    /// `Attribution_Source`.
    pub attribution_source: Option<&'a str>,
    /// `Attribution_Medium`.
    pub attribution_medium: Option<&'a str>,
    /// `Attribution_Campaign`.
    pub attribution_campaign: Option<&'a str>,
    /// `Attribution_Content`.
    pub attribution_content: Option<&'a str>,
    /// `Session_Traffic_Type`.
    pub session_traffic_type: Option<TrafficType>,
    /// `Session_Keywords`.
    pub session_keywords: Option<&'a str>,
    /// `Session_ConversionUri`.
    pub session_conversion_uri: Option<&'a str>,
    /// `Session_LandingUri`.
    pub session_landing_uri: Option<&'a str>,
    /// `Survey_Type`.
    pub survey_type: Option<&'a str>,
    /// `Survey_Value`.
    pub survey_value: Option<&'a str>,
    /// `Survey_Custom1`.
    pub survey_custom1: Option<&'a str>,
    /// `Survey_Custom2`.
    pub survey_custom2: Option<&'a str>,
    /// `Survey_Custom3`.
    pub survey_custom3: Option<&'a str>,
    /// `Survey_UniqueCode`.
    pub survey_unique_code: Option<&'a str>,
    /// `Prompts_Keys`: the IVR path, keys joined by a bare `,` (e.g. `"1,2"`).
    pub prompts_keys: Option<&'a str>,
    /// `Notes`.
    pub notes: Option<&'a str>,
    /// `CallType`.
    pub call_type: Option<&'a str>,
    /// `Google_Analytics_ClientId`.
    pub google_analytics_client_id: Option<&'a str>,
    /// `Google_Adwords_ClickId`.
    pub google_adwords_click_id: Option<&'a str>,
}

impl<'a> CallRef<'a> {
    /// The owned form of the call.
    pub fn to_call(&self) -> Call {
        Call {
            account_sid: self.account_sid.to_owned(),
            call_sid: self.call_sid.to_owned(),
            property_sid: self.property_sid.to_owned(),
            date_start: self.date_start,
            from: self.from.to_owned(),
            from_country_code: self.from_country_code.map(str::to_owned),
            from_region: self.from_region.map(str::to_owned),
            from_city: self.from_city.map(str::to_owned),
            to: self.to.to_owned(),
            to_friendly: self.to_friendly.map(str::to_owned),
            duration: self.duration,
            disposition: self.disposition,
            recording_uri: self.recording_uri.map(str::to_owned),
            endpoint: self.endpoint.map(str::to_owned),
            attribution_source: self.attribution_source.map(str::to_owned),
            attribution_medium: self.attribution_medium.map(str::to_owned),
            attribution_campaign: self.attribution_campaign.map(str::to_owned),
            attribution_content: self.attribution_content.map(str::to_owned),
            session_traffic_type: self.session_traffic_type,
            session_keywords: self.session_keywords.map(str::to_owned),
            session_conversion_uri: self.session_conversion_uri.map(str::to_owned),
            session_landing_uri: self.session_landing_uri.map(str::to_owned),
            survey_type: self.survey_type.map(str::to_owned),
            survey_value: self.survey_value.map(str::to_owned),
            survey_custom1: self.survey_custom1.map(str::to_owned),
            survey_custom2: self.survey_custom2.map(str::to_owned),
            survey_custom3: self.survey_custom3.map(str::to_owned),
            survey_unique_code: self.survey_unique_code.map(str::to_owned),
            prompts_keys: self.prompts_keys.map(str::to_owned),
            notes: self.notes.map(str::to_owned),
            call_type: self.call_type.map(str::to_owned),
            google_analytics_client_id: self.google_analytics_client_id.map(str::to_owned),
            google_adwords_click_id: self.google_adwords_click_id.map(str::to_owned),
        }
    }

    /// The value of `field` as written in a response.
    pub fn value(&self, field: Field) -> FieldValue<'a> {
        fn opt(v: Option<&str>) -> FieldValue<'_> {
            match v {
                Some(s) => FieldValue::Str(s),
                None => FieldValue::Null,
            }
        }
        match field {
            Field::AccountSid => FieldValue::Str(self.account_sid),
            Field::CallSid => FieldValue::Str(self.call_sid),
            Field::PropertySid => FieldValue::Str(self.property_sid),
            // Date_Start is written as a string of digits; see `json`.
            Field::DateStart => FieldValue::Int(u64::from(self.date_start)),
            Field::From => FieldValue::Str(self.from),
            Field::To => FieldValue::Str(self.to),
            Field::Duration => FieldValue::Int(self.duration),
            Field::Disposition => FieldValue::Str(self.disposition.as_str()),
            Field::SessionTrafficType => match self.session_traffic_type {
                Some(t) => FieldValue::Str(t.as_str()),
                None => FieldValue::Null,
            },
            Field::FromCountryCode => opt(self.from_country_code),
            Field::FromRegion => opt(self.from_region),
            Field::FromCity => opt(self.from_city),
            Field::ToFriendly => opt(self.to_friendly),
            Field::RecordingUri => opt(self.recording_uri),
            Field::Endpoint => opt(self.endpoint),
            Field::AttributionSource => opt(self.attribution_source),
            Field::AttributionMedium => opt(self.attribution_medium),
            Field::AttributionCampaign => opt(self.attribution_campaign),
            Field::AttributionContent => opt(self.attribution_content),
            Field::SessionKeywords => opt(self.session_keywords),
            Field::SessionConversionUri => opt(self.session_conversion_uri),
            Field::SessionLandingUri => opt(self.session_landing_uri),
            Field::SurveyType => opt(self.survey_type),
            Field::SurveyValue => opt(self.survey_value),
            Field::SurveyCustom1 => opt(self.survey_custom1),
            Field::SurveyCustom2 => opt(self.survey_custom2),
            Field::SurveyCustom3 => opt(self.survey_custom3),
            Field::SurveyUniqueCode => opt(self.survey_unique_code),
            Field::PromptsKeys => opt(self.prompts_keys),
            Field::Notes => opt(self.notes),
            Field::CallType => opt(self.call_type),
            Field::GoogleAnalyticsClientId => opt(self.google_analytics_client_id),
            Field::GoogleAdwordsClickId => opt(self.google_adwords_click_id),
        }
    }
}

impl Call {
    /// The call with its strings borrowed.
    pub fn view(&self) -> CallRef<'_> {
        CallRef {
            account_sid: &self.account_sid,
            call_sid: &self.call_sid,
            property_sid: &self.property_sid,
            date_start: self.date_start,
            from: &self.from,
            from_country_code: self.from_country_code.as_deref(),
            from_region: self.from_region.as_deref(),
            from_city: self.from_city.as_deref(),
            to: &self.to,
            to_friendly: self.to_friendly.as_deref(),
            duration: self.duration,
            disposition: self.disposition,
            recording_uri: self.recording_uri.as_deref(),
            endpoint: self.endpoint.as_deref(),
            attribution_source: self.attribution_source.as_deref(),
            attribution_medium: self.attribution_medium.as_deref(),
            attribution_campaign: self.attribution_campaign.as_deref(),
            attribution_content: self.attribution_content.as_deref(),
            session_traffic_type: self.session_traffic_type,
            session_keywords: self.session_keywords.as_deref(),
            session_conversion_uri: self.session_conversion_uri.as_deref(),
            session_landing_uri: self.session_landing_uri.as_deref(),
            survey_type: self.survey_type.as_deref(),
            survey_value: self.survey_value.as_deref(),
            survey_custom1: self.survey_custom1.as_deref(),
            survey_custom2: self.survey_custom2.as_deref(),
            survey_custom3: self.survey_custom3.as_deref(),
            survey_unique_code: self.survey_unique_code.as_deref(),
            prompts_keys: self.prompts_keys.as_deref(),
            notes: self.notes.as_deref(),
            call_type: self.call_type.as_deref(),
            google_analytics_client_id: self.google_analytics_client_id.as_deref(),
            google_adwords_click_id: self.google_adwords_click_id.as_deref(),
        }
    }
}
