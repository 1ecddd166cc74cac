//! One example per rule of SPEC.md, run against the real store through request strings
//! (`Store::answer`) and checked against exact expected output: CallSids in order, exact JSON,
//! or the exact error code with a message naming the parameter and the value.

use callstore::{ApiError, Call, Error, ErrorCode, RecordError, Response, Store, StoreError};

const AC1: &str = "/v2/Accounts/AC1/Calls";
const PR1: &str = "/v2/Properties/PR1/Calls";

// ---- helpers ----

/// A call of AC1/PR1, dialling +15550000, answered, plus the fields of `extra` (a JSON fragment),
/// which replace those defaults when they name them.
fn rec(sid: &str, date: u32, extra: &str) -> Call {
    let mut fields = vec![
        format!(r#""CallSid":"{sid}""#),
        format!(r#""Date_Start":{date}"#),
    ];
    for (name, value) in [
        ("AccountSid", r#""AC1""#),
        ("PropertySid", r#""PR1""#),
        ("To", r#""+15550000""#),
        ("Disposition", r#""Answered""#),
    ] {
        if !extra.contains(&format!("\"{name}\"")) {
            fields.push(format!(r#""{name}":{value}"#));
        }
    }
    if !extra.is_empty() {
        fields.push(extra.to_string());
    }
    let text = format!("{{{}}}", fields.join(","));
    Call::from_json(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// A call of AC1/PR1 from `caller`.
fn from(sid: &str, date: u32, caller: &str) -> Call {
    rec(sid, date, &format!(r#""From":"{caller}""#))
}

fn store(calls: Vec<Call>) -> Store {
    let store = Store::in_memory().unwrap();
    store.write(calls).unwrap();
    store
}

/// The CallSids of a list request's answer, in order.
fn sids(store: &Store, request: &str) -> Vec<String> {
    match store.answer(request) {
        Ok(Response::Calls(calls)) => calls.into_iter().map(|c| c.call_sid).collect(),
        other => panic!("{request}: {other:?}"),
    }
}

/// The answer to `/v2/Calls/{sid}`, parsed.
fn one(store: &Store, sid: &str) -> serde_json::Value {
    let request = format!("/v2/Calls/{sid}");
    match store.answer(&request) {
        Ok(r @ Response::Call(_)) => serde_json::from_str(&r.to_json()).unwrap(),
        other => panic!("{request}: {other:?}"),
    }
}

fn api_error(store: &Store, request: &str) -> ApiError {
    match store.answer(request) {
        Err(Error::Api(e)) => e,
        other => panic!("{request}: {other:?}, not an API error"),
    }
}

/// Asserts an error with this code whose message names `parameter` and `value`.
fn assert_error(store: &Store, request: &str, code: ErrorCode, parameter: &str, value: &str) {
    let e = api_error(store, request);
    assert_eq!(e.code, code, "{request}: {e}");
    assert_eq!(
        e.status(),
        if code == ErrorCode::NotFound {
            404
        } else {
            400
        }
    );
    assert!(
        e.message.contains(parameter),
        "{request}: message {:?} does not name {parameter:?}",
        e.message
    );
    assert!(
        e.message.contains(value),
        "{request}: message {:?} does not name {value:?}",
        e.message
    );
}

fn assert_invalid(store: &Store, request: &str, parameter: &str, value: &str) {
    assert_error(
        store,
        request,
        ErrorCode::InvalidParameter,
        parameter,
        value,
    );
}

fn one_call() -> Store {
    store(vec![rec("CA1", 100, "")])
}

fn record_error(text: &str) -> RecordError {
    match Call::from_json(text) {
        Err(e) => e,
        Ok(c) => panic!("{text} was accepted: {c:?}"),
    }
}

/// The required fields of AC1/PR1/CA1, without braces.
const BASE: &str = r#""AccountSid":"AC1","PropertySid":"PR1","CallSid":"CA1","Date_Start":100,"To":"+15550000","Disposition":"Answered""#;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

// ---- §2 errors: InvalidParameter ----

#[test]
fn invalid_parameter_non_digits() {
    let st = one_call();
    assert_invalid(&st, &format!("{AC1}?Date_From=12a"), "Date_From", "12a");
    assert_invalid(&st, &format!("{AC1}?Date_To=1.5"), "Date_To", "1.5");
    assert_invalid(
        &st,
        &format!("{AC1}?Results_Count=ten"),
        "Results_Count",
        "ten",
    );
    assert_invalid(
        &st,
        &format!("{AC1}?Results_Skip=0x1"),
        "Results_Skip",
        "0x1",
    );
}

#[test]
fn invalid_parameter_negative() {
    let st = one_call();
    assert_invalid(&st, &format!("{AC1}?Date_From=-1"), "Date_From", "-1");
    assert_invalid(&st, &format!("{AC1}?Date_To=-5"), "Date_To", "-5");
    assert_invalid(
        &st,
        &format!("{AC1}?Results_Count=-1"),
        "Results_Count",
        "-1",
    );
    assert_invalid(&st, &format!("{AC1}?Results_Skip=-2"), "Results_Skip", "-2");
}

#[test]
fn invalid_parameter_beyond_u32_for_times_and_counts() {
    let st = one_call();
    for p in ["Date_From", "Date_To", "Results_Count", "Results_Skip"] {
        assert_invalid(&st, &format!("{AC1}?{p}=4294967296"), p, "4294967296");
        // 2^32-1 itself is allowed.
        st.answer(&format!("{AC1}?{p}=4294967295")).unwrap();
    }
}

#[test]
fn invalid_parameter_unknown_disposition() {
    let st = one_call();
    assert_invalid(
        &st,
        &format!("{AC1}?Disposition=Answered,Dropped"),
        "Disposition",
        "Dropped",
    );
}

#[test]
fn invalid_parameter_unknown_unique_value() {
    let st = one_call();
    assert_invalid(&st, &format!("{AC1}?Unique=Maybe"), "Unique", "Maybe");
}

#[test]
fn invalid_parameter_empty_key_inside_prompts_path() {
    let st = one_call();
    assert_invalid(
        &st,
        &format!("{AC1}?Prompts_keys=3;1,,2"),
        "Prompts_keys",
        "1,,2",
    );
}

#[test]
fn invalid_parameter_date_from_after_date_to() {
    let st = one_call();
    assert_invalid(
        &st,
        &format!("{AC1}?Date_From=200&Date_To=100"),
        "Date_From",
        "200",
    );
    // Equal bounds are allowed and match nothing.
    assert!(sids(&st, &format!("{AC1}?Date_From=100&Date_To=100")).is_empty());
}

#[test]
fn invalid_parameter_any_parameter_on_single_call() {
    let st = one_call();
    assert_invalid(&st, "/v2/Calls/CA1?Foo=bar", "Foo", "bar");
    assert_invalid(&st, "/v2/Calls/CA1?Date_From=1", "Date_From", "1");
}

// ---- §2 errors: UnknownParameter, DuplicateParameter, NotFound ----

#[test]
fn unknown_parameter() {
    let st = one_call();
    assert_error(
        &st,
        &format!("{AC1}?Colour=red"),
        ErrorCode::UnknownParameter,
        "Colour",
        "red",
    );
    // Not a parameter of the request, though it is a response field.
    assert_error(
        &st,
        &format!("{AC1}?Duration=5"),
        ErrorCode::UnknownParameter,
        "Duration",
        "5",
    );
}

#[test]
fn duplicate_parameter() {
    let st = one_call();
    assert_error(
        &st,
        &format!("{AC1}?Disposition=Busy&Disposition=IVR"),
        ErrorCode::DuplicateParameter,
        "Disposition",
        "IVR",
    );
}

#[test]
fn duplicate_parameter_in_different_case() {
    let st = one_call();
    assert_error(
        &st,
        &format!("{AC1}?Date_From=1&date_from=2"),
        ErrorCode::DuplicateParameter,
        "Date_From",
        "2",
    );
    assert_error(
        &st,
        &format!("{AC1}?Prompts_keys=1&Prompts_Keys=2"),
        ErrorCode::DuplicateParameter,
        "Prompts_",
        "2",
    );
}

#[test]
fn not_found_for_bad_paths() {
    let st = one_call();
    for path in [
        "/v3/Calls/CA1",
        "/v2/Calls",
        "/v2/Calls/",
        "/v2/Calls/CA1/Extra",
        "/v2/Properties/PR1",
        "/v2/Accounts/AC1/Call",
        "/v2/Accounts//Calls",
        "/v2/Things/AC1/Calls",
        "v2/Calls/CA1",
        "",
    ] {
        assert_eq!(api_error(&st, path).code, ErrorCode::NotFound, "{path}");
        assert_eq!(api_error(&st, path).status(), 404, "{path}");
    }
}

#[test]
fn not_found_for_unknown_call_sid() {
    let st = one_call();
    assert_error(
        &st,
        "/v2/Calls/CA404",
        ErrorCode::NotFound,
        "CA404",
        "CA404",
    );
}

#[test]
fn error_envelope_json() {
    let st = one_call();
    let e = api_error(&st, "/v2/Calls/CA404");
    let message = serde_json::to_string(&e.message).unwrap();
    assert_eq!(
        e.to_json(),
        format!(r#"{{"ResponseStatus":{{"ErrorCode":"NotFound","Message":{message}}}}}"#)
    );
    let e = api_error(&st, &format!("{AC1}?Unique=x"));
    let message = serde_json::to_string(&e.message).unwrap();
    assert_eq!(
        e.to_json(),
        format!(r#"{{"ResponseStatus":{{"ErrorCode":"InvalidParameter","Message":{message}}}}}"#)
    );
    for (request, code) in [
        (format!("{AC1}?Nope=1"), "UnknownParameter"),
        (format!("{AC1}?To=1&TO=2"), "DuplicateParameter"),
    ] {
        let json: serde_json::Value =
            serde_json::from_str(&api_error(&st, &request).to_json()).unwrap();
        assert_eq!(json["ResponseStatus"]["ErrorCode"], code);
        assert!(json["ResponseStatus"]["Message"].is_string());
    }
}

// ---- §1 normalization ----

#[test]
fn phone_numbers_in_records_are_normalized() {
    let st = store(vec![rec(
        "CA1",
        100,
        r#""From":"61 2 9999-0000","To":" (02) 9999.0000 ","Endpoint":"+1-555-0100""#,
    )]);
    let c = one(&st, "CA1");
    assert_eq!(c["From"], "+61299990000");
    assert_eq!(c["To"], "+0299990000");
    assert_eq!(c["Endpoint"], "+15550100");
}

#[test]
fn non_phone_values_are_only_trimmed() {
    let st = store(vec![rec(
        "CA1",
        100,
        r#""From":" 1800-FLOWERS ","To":" sip:desk@example.com ","Endpoint":" +- ""#,
    )]);
    let c = one(&st, "CA1");
    assert_eq!(c["From"], "1800-FLOWERS");
    assert_eq!(c["To"], "sip:desk@example.com");
    // No digit: not a phone number.
    assert_eq!(c["Endpoint"], "+-");
}

#[test]
fn to_filter_values_are_normalized() {
    let st = store(vec![
        rec("CA1", 100, r#""To":"61 2 9999-0000""#),
        rec("CA2", 200, r#""To":"+15550000""#),
    ]);
    assert_eq!(sids(&st, &format!("{AC1}?To=61+2+9999-0000")), ["CA1"]);
    assert_eq!(sids(&st, &format!("{AC1}?To=%2B61(2)9999.0000")), ["CA1"]);
    assert_eq!(
        sids(&st, &format!("{AC1}?To=%2B61299990000,+1+555+0000")),
        ["CA1", "CA2"]
    );
}

#[test]
fn endpoint_filter_values_are_normalized_and_null_never_matches() {
    let st = store(vec![
        rec("CA1", 100, r#""Endpoint":"+61 2 9999 0000""#),
        rec("CA2", 200, r#""Endpoint":"desk-7""#),
        rec("CA3", 300, ""),
    ]);
    assert_eq!(
        sids(&st, &format!("{AC1}?Endpoint=61-2-9999-0000")),
        ["CA1"]
    );
    assert_eq!(sids(&st, &format!("{AC1}?Endpoint=+desk-7+")), ["CA2"]);
    assert_eq!(
        sids(&st, &format!("{AC1}?Endpoint=61299990000,desk-7")),
        ["CA1", "CA2"]
    );
}

#[test]
fn strings_are_trimmed_and_empty_is_null() {
    let st = store(vec![rec(
        "CA1",
        100,
        r#""Notes":"  hello  ","From_City":"   ","Attribution_Source":" google ","CallType":"""#,
    )]);
    let c = one(&st, "CA1");
    assert_eq!(c["Notes"], "hello");
    assert!(c["From_City"].is_null());
    assert!(c["CallType"].is_null());
    assert_eq!(c["Attribution_Source"], "google");
    assert_eq!(
        sids(&st, &format!("{AC1}?Attribution_Source=google")),
        ["CA1"]
    );
}

#[test]
fn sids_in_records_are_trimmed() {
    let st = store(vec![Call::from_json(
        r#"{"AccountSid":" AC1 ","PropertySid":" PR1 ","CallSid":" CA1 ","Date_Start":1,"To":"1","Disposition":"Busy"}"#,
    )
    .unwrap()]);
    assert_eq!(sids(&st, AC1), ["CA1"]);
    assert_eq!(sids(&st, PR1), ["CA1"]);
}

#[test]
fn missing_null_or_empty_from_is_anonymous() {
    let st = store(vec![
        rec("CA1", 100, ""),
        rec("CA2", 200, r#""From":null"#),
        rec("CA3", 300, r#""From":"  ""#),
    ]);
    for sid in ["CA1", "CA2", "CA3"] {
        assert_eq!(one(&st, sid)["From"], "anonymous", "{sid}");
    }
}

#[test]
fn date_start_as_number_or_digit_string_written_as_string() {
    let st = store(vec![
        Call::from_json(
            r#"{"AccountSid":"AC1","PropertySid":"PR1","CallSid":"CA1","Date_Start":1700000000,"To":"1","Disposition":"Busy"}"#,
        )
        .unwrap(),
        Call::from_json(
            r#"{"AccountSid":"AC1","PropertySid":"PR1","CallSid":"CA2","Date_Start":"1700000001","To":"1","Disposition":"Busy"}"#,
        )
        .unwrap(),
        rec("CA3", u32::MAX, ""),
    ]);
    assert_eq!(one(&st, "CA1")["Date_Start"], "1700000000");
    assert_eq!(one(&st, "CA2")["Date_Start"], "1700000001");
    assert_eq!(one(&st, "CA3")["Date_Start"], "4294967295");
    assert_eq!(sids(&st, AC1), ["CA1", "CA2", "CA3"]);
}

#[test]
fn date_start_out_of_range_or_not_digits_is_rejected() {
    for value in [
        "4294967296",
        "-1",
        r#""12a""#,
        r#""-1""#,
        "1.5",
        r#""4294967296""#,
    ] {
        let text = format!(
            r#"{{"AccountSid":"AC1","PropertySid":"PR1","CallSid":"CA1","Date_Start":{value},"To":"1","Disposition":"Busy"}}"#
        );
        let e = record_error(&text);
        assert!(e.to_string().contains("Date_Start"), "{value}: {e}");
    }
}

#[test]
fn disposition_and_traffic_type_case_insensitive_written_canonically() {
    let st = store(vec![
        rec(
            "CA1",
            100,
            r#""Disposition":"noanswer","Session_Traffic_Type":"ORGANIC""#,
        ),
        rec(
            "CA2",
            200,
            r#""Disposition":"ivr","Session_Traffic_Type":"unattributed""#,
        ),
    ]);
    let c = one(&st, "CA1");
    assert_eq!(c["Disposition"], "NoAnswer");
    assert_eq!(c["Session_Traffic_Type"], "Organic");
    let c = one(&st, "CA2");
    assert_eq!(c["Disposition"], "IVR");
    assert_eq!(c["Session_Traffic_Type"], "Unattributed");
    // The filter reads dispositions in any case too.
    assert_eq!(sids(&st, &format!("{AC1}?Disposition=NOANSWER")), ["CA1"]);
    assert_eq!(sids(&st, &format!("{AC1}?Disposition=Ivr")), ["CA2"]);
}

#[test]
fn unknown_disposition_or_traffic_type_is_rejected() {
    let e = record_error(&format!(
        "{{{}}}",
        BASE.replace(r#""Disposition":"Answered""#, r#""Disposition":"Dropped""#)
    ));
    assert!(e.to_string().contains("Disposition") && e.to_string().contains("Dropped"));
    let e = record_error(&format!(r#"{{{BASE},"Session_Traffic_Type":"Paid"}}"#));
    assert!(e.to_string().contains("Session_Traffic_Type") && e.to_string().contains("Paid"));
}

#[test]
fn prompts_keys_trimmed_and_joined() {
    let st = store(vec![rec("CA1", 100, r#""Prompts_Keys":" 1 , 2 ,3""#)]);
    assert_eq!(one(&st, "CA1")["Prompts_Keys"], "1,2,3");
}

#[test]
fn prompts_keys_with_empty_key_is_rejected() {
    let e = record_error(&format!(r#"{{{BASE},"Prompts_Keys":"1,,2"}}"#));
    assert!(
        matches!(&e, RecordError::InvalidValue { field: "Prompts_Keys", value, .. } if value == "1,,2"),
        "{e:?}"
    );
}

#[test]
fn duration_missing_or_null_is_zero() {
    let st = store(vec![
        rec("CA1", 100, ""),
        rec("CA2", 200, r#""Duration":null"#),
        rec("CA3", 300, r#""Duration":42"#),
    ]);
    assert_eq!(one(&st, "CA1")["Duration"], 0);
    assert_eq!(one(&st, "CA2")["Duration"], 0);
    assert_eq!(one(&st, "CA3")["Duration"], 42);
}

#[test]
fn negative_duration_is_rejected() {
    let e = record_error(&format!(r#"{{{BASE},"Duration":-5}}"#));
    assert!(e.to_string().contains("Duration"), "{e}");
}

// ---- §1 record validation ----

#[test]
fn record_unknown_field_is_rejected() {
    let e = record_error(&format!(r#"{{{BASE},"Colour":"red"}}"#));
    assert_eq!(
        e,
        RecordError::UnknownField {
            field: "Colour".into()
        }
    );
}

#[test]
fn record_misspelled_field_is_rejected() {
    // The request parameter is `Prompts_keys`; the record field is `Prompts_Keys`, exactly.
    let e = record_error(&format!(r#"{{{BASE},"Prompts_keys":"1"}}"#));
    assert_eq!(
        e,
        RecordError::UnknownField {
            field: "Prompts_keys".into()
        }
    );
    let e = record_error(&format!(r#"{{{BASE},"callType":"x"}}"#));
    assert!(matches!(e, RecordError::UnknownField { field } if field == "callType"));
}

#[test]
fn record_wrong_json_type_is_rejected() {
    for (extra, field) in [
        (r#""Notes":5"#, "Notes"),
        (r#""From":15550100"#, "From"),
        (r#""Duration":"5""#, "Duration"),
        (r#""Session_Traffic_Type":true"#, "Session_Traffic_Type"),
        (r#""Survey_Custom1":["a"]"#, "Survey_Custom1"),
    ] {
        let e = record_error(&format!("{{{BASE},{extra}}}"));
        assert!(
            matches!(e, RecordError::WrongType { field: f, .. } if f == field),
            "{extra}: {e:?}"
        );
    }
    let e = record_error(
        r#"{"AccountSid":"AC1","PropertySid":"PR1","CallSid":"CA1","Date_Start":true,"To":"1","Disposition":"Busy"}"#,
    );
    assert!(
        matches!(
            e,
            RecordError::WrongType {
                field: "Date_Start",
                ..
            }
        ),
        "{e:?}"
    );
    let e = record_error(
        r#"{"AccountSid":"AC1","PropertySid":"PR1","CallSid":"CA1","Date_Start":1,"To":1,"Disposition":"Busy"}"#,
    );
    assert!(
        matches!(e, RecordError::WrongType { field: "To", .. }),
        "{e:?}"
    );
}

#[test]
fn record_missing_required_field_is_rejected() {
    let fields = [
        ("AccountSid", r#""AccountSid":"AC1""#),
        ("PropertySid", r#""PropertySid":"PR1""#),
        ("CallSid", r#""CallSid":"CA1""#),
        ("Date_Start", r#""Date_Start":100"#),
        ("To", r#""To":"+15550000""#),
        ("Disposition", r#""Disposition":"Answered""#),
    ];
    for (missing, _) in fields {
        let body: Vec<&str> = fields
            .iter()
            .filter(|(n, _)| *n != missing)
            .map(|(_, f)| *f)
            .collect();
        let e = record_error(&format!("{{{}}}", body.join(",")));
        assert!(
            matches!(e, RecordError::MissingField { field } if field == missing),
            "{missing}: {e:?}"
        );
        // Null or empty counts as missing too.
        let with_null: Vec<String> = fields
            .iter()
            .map(|(n, f)| {
                if *n == missing {
                    format!(r#""{n}":null"#)
                } else {
                    f.to_string()
                }
            })
            .collect();
        let e = record_error(&format!("{{{}}}", with_null.join(",")));
        assert!(
            matches!(e, RecordError::MissingField { field } if field == missing),
            "{missing} null: {e:?}"
        );
    }
    let e = record_error(&format!("{{{}}}", BASE.replace(r#""CA1""#, r#"" ""#)));
    assert!(
        matches!(e, RecordError::MissingField { field: "CallSid" }),
        "{e:?}"
    );
}

#[test]
fn record_duplicate_field_is_rejected() {
    let e = record_error(&format!(r#"{{{BASE},"To":"+15550001"}}"#));
    assert_eq!(e, RecordError::DuplicateField { field: "To" });
}

#[test]
fn invalid_record_in_batch_names_record_and_field() {
    let st = Store::in_memory().unwrap();
    let mut bad = rec("CA2", 200, "");
    bad.prompts_keys = Some("1,,2".into());
    let err = st.write(vec![rec("CA1", 100, ""), bad]).unwrap_err();
    match &err {
        Error::Store(StoreError::InvalidRecord {
            index: 1,
            call_sid: Some(sid),
            source:
                RecordError::InvalidValue {
                    field: "Prompts_Keys",
                    ..
                },
        }) if sid == "CA2" => {}
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("CA2") && text.contains("Prompts_Keys"),
        "{text}"
    );
}

// ---- §3 Unique and Repeat ----

#[test]
fn unique_in_property_scope_vs_account_scope() {
    let st = store(vec![
        from("CA1", 100, "+1 555 0100"),
        rec("CA2", 200, r#""From":"15550100","PropertySid":"PR2""#),
        rec("CA3", 300, r#""From":"+15550100","PropertySid":"PR2""#),
    ]);
    assert_eq!(sids(&st, &format!("{AC1}?Unique=Unique")), ["CA1"]);
    assert_eq!(sids(&st, &format!("{AC1}?Unique=Repeat")), ["CA2", "CA3"]);
    assert_eq!(sids(&st, "/v2/Properties/PR2/Calls?Unique=Unique"), ["CA2"]);
    assert_eq!(sids(&st, "/v2/Properties/PR2/Calls?Unique=Repeat"), ["CA3"]);
    assert_eq!(sids(&st, &format!("{PR1}?Unique=unique")), ["CA1"]);
    assert_eq!(
        sids(&st, &format!("{PR1}?Unique=REPEAT")),
        Vec::<String>::new()
    );
    assert_eq!(
        sids(&st, &format!("{AC1}?Unique=all")),
        ["CA1", "CA2", "CA3"]
    );
}

#[test]
fn unique_per_account_not_across_accounts() {
    let st = store(vec![
        from("CA1", 100, "+15550100"),
        rec(
            "CA2",
            200,
            r#""From":"+15550100","AccountSid":"AC2","PropertySid":"PR2""#,
        ),
    ]);
    assert_eq!(sids(&st, "/v2/Accounts/AC2/Calls?Unique=Unique"), ["CA2"]);
}

#[test]
fn anonymous_callers_any_case_are_neither_unique_nor_repeat() {
    let st = store(vec![
        rec("CA1", 100, ""),
        from("CA2", 200, "anonymous"),
        from("CA3", 300, "Anonymous"),
        from("CA4", 400, " ANONYMOUS "),
        from("CA5", 500, "+15550100"),
    ]);
    assert_eq!(sids(&st, &format!("{AC1}?Unique=Unique")), ["CA5"]);
    assert_eq!(
        sids(&st, &format!("{AC1}?Unique=Repeat")),
        Vec::<String>::new()
    );
    assert_eq!(
        sids(&st, &format!("{AC1}?Unique=All")),
        ["CA1", "CA2", "CA3", "CA4", "CA5"]
    );
    assert_eq!(sids(&st, &format!("{PR1}?Unique=Unique")), ["CA5"]);
}

#[test]
fn non_phone_callers_are_identities() {
    let st = store(vec![
        from("CA1", 100, "sip:alice"),
        from("CA2", 200, " sip:alice "),
        from("CA3", 300, "sip:Alice"),
    ]);
    assert_eq!(sids(&st, &format!("{AC1}?Unique=Unique")), ["CA1", "CA3"]);
    assert_eq!(sids(&st, &format!("{AC1}?Unique=Repeat")), ["CA2"]);
}

#[test]
fn classification_ignores_other_filters() {
    let st = store(vec![
        rec("CA1", 100, r#""From":"+15550100","Disposition":"Busy""#),
        rec("CA2", 200, r#""From":"+15550100""#),
        rec("CA3", 300, r#""From":"+15550100""#),
        rec("CA4", 250, r#""From":"+15550199""#),
    ]);
    assert_eq!(
        sids(&st, &format!("{AC1}?Date_From=150&Unique=Unique")),
        ["CA4"]
    );
    assert_eq!(
        sids(&st, &format!("{AC1}?Date_From=150&Unique=Repeat")),
        ["CA2", "CA3"]
    );
    assert_eq!(
        sids(&st, &format!("{AC1}?Disposition=Answered&Unique=Unique")),
        ["CA4"]
    );
    assert_eq!(
        sids(&st, &format!("{AC1}?Date_To=150&Unique=Unique")),
        ["CA1"]
    );
    assert_eq!(
        sids(&st, &format!("{AC1}?Results_Skip=1&Unique=Repeat")),
        ["CA3"]
    );
}

#[test]
fn unique_ties_on_date_break_by_call_sid() {
    let st = store(vec![
        from("CA2", 100, "+15550100"),
        from("CA1", 100, "+15550100"),
    ]);
    assert_eq!(sids(&st, &format!("{AC1}?Unique=Unique")), ["CA1"]);
    assert_eq!(sids(&st, &format!("{AC1}?Unique=Repeat")), ["CA2"]);
}

#[test]
fn earlier_call_arriving_late_makes_former_first_repeat() {
    let st = store(vec![
        from("CA5", 500, "+15550100"),
        from("CA6", 600, "+15550100"),
    ]);
    assert_eq!(sids(&st, &format!("{AC1}?Unique=Unique")), ["CA5"]);
    st.write(vec![from("CA1", 100, "+1 555 0100")]).unwrap();
    assert_eq!(sids(&st, &format!("{AC1}?Unique=Unique")), ["CA1"]);
    assert_eq!(sids(&st, &format!("{AC1}?Unique=Repeat")), ["CA5", "CA6"]);
    assert_eq!(sids(&st, &format!("{PR1}?Unique=Repeat")), ["CA5", "CA6"]);
}

#[test]
fn deleting_first_call_makes_next_unique() {
    let st = store(vec![
        from("CA1", 100, "+15550100"),
        from("CA2", 200, "+15550100"),
        from("CA3", 300, "+15550100"),
    ]);
    assert_eq!(st.delete(&["CA1"]).unwrap(), 1);
    assert_eq!(sids(&st, &format!("{AC1}?Unique=Unique")), ["CA2"]);
    assert_eq!(sids(&st, &format!("{PR1}?Unique=Unique")), ["CA2"]);
    assert_eq!(sids(&st, &format!("{AC1}?Unique=Repeat")), ["CA3"]);
}

#[test]
fn rewriting_first_call_to_another_caller_makes_next_unique() {
    let st = store(vec![
        from("CA1", 100, "+15550100"),
        from("CA2", 200, "+15550100"),
    ]);
    st.write(vec![from("CA1", 100, "+15550199")]).unwrap();
    assert_eq!(sids(&st, &format!("{AC1}?Unique=Unique")), ["CA1", "CA2"]);
    assert_eq!(
        sids(&st, &format!("{AC1}?Unique=Repeat")),
        Vec::<String>::new()
    );
}

// ---- §2 filters ----

#[test]
fn prompts_keys_match_by_key_prefix() {
    let st = store(vec![
        rec("CA1", 100, r#""Prompts_Keys":"1""#),
        rec("CA2", 200, r#""Prompts_Keys":"1,2""#),
        rec("CA3", 300, r#""Prompts_Keys":"12""#),
        rec("CA4", 400, r#""Prompts_Keys":"2,1""#),
        rec("CA5", 500, r#""Prompts_Keys":"3""#),
        rec("CA6", 600, ""),
        rec("CA7", 700, r#""Prompts_Keys":"1,2,3""#),
    ]);
    assert_eq!(
        sids(&st, &format!("{AC1}?Prompts_keys=1")),
        ["CA1", "CA2", "CA7"]
    );
    assert_eq!(
        sids(&st, &format!("{AC1}?Prompts_keys=1,2")),
        ["CA2", "CA7"]
    );
    assert_eq!(
        sids(&st, &format!("{AC1}?Prompts_keys=1,2,3,4")),
        Vec::<String>::new()
    );
    assert_eq!(sids(&st, &format!("{AC1}?Prompts_keys=12")), ["CA3"]);
}

#[test]
fn prompts_keys_alternatives_with_semicolons() {
    let st = store(vec![
        rec("CA1", 100, r#""Prompts_Keys":"1""#),
        rec("CA2", 200, r#""Prompts_Keys":"1,2""#),
        rec("CA3", 300, r#""Prompts_Keys":"3,5""#),
        rec("CA4", 400, r#""Prompts_Keys":"4""#),
    ]);
    assert_eq!(
        sids(&st, &format!("{AC1}?Prompts_keys=1,2;3")),
        ["CA2", "CA3"]
    );
    // Keys and paths are trimmed; `+` is a space; both spellings of the name work.
    assert_eq!(
        sids(&st, &format!("{AC1}?Prompts_Keys=+1+,+2+;+4")),
        ["CA2", "CA4"]
    );
}

#[test]
fn date_from_inclusive_date_to_exclusive() {
    let st = store(vec![
        rec("CA1", 100, ""),
        rec("CA2", 200, ""),
        rec("CA3", 300, ""),
    ]);
    assert_eq!(sids(&st, &format!("{AC1}?Date_From=200")), ["CA2", "CA3"]);
    assert_eq!(sids(&st, &format!("{AC1}?Date_To=300")), ["CA1", "CA2"]);
    assert_eq!(
        sids(&st, &format!("{AC1}?Date_From=200&Date_To=300")),
        ["CA2"]
    );
    assert_eq!(
        sids(&st, &format!("{AC1}?Date_From=201&Date_To=300")),
        Vec::<String>::new()
    );
}

#[test]
fn disposition_list_is_or_and_parameters_are_and() {
    let st = store(vec![
        rec("CA1", 100, r#""Disposition":"Busy""#),
        rec("CA2", 200, r#""Disposition":"IVR""#),
        rec("CA3", 300, r#""Disposition":"Failed","To":"+15550001""#),
        rec("CA4", 400, r#""Disposition":"Failed""#),
    ]);
    assert_eq!(
        sids(&st, &format!("{AC1}?Disposition=Busy,+Failed")),
        ["CA1", "CA3", "CA4"]
    );
    assert_eq!(
        sids(&st, &format!("{AC1}?Disposition=Busy,Failed&To=15550001")),
        ["CA3"]
    );
}

#[test]
fn attribution_filters_exact_case_sensitive_null_never_matches() {
    let st = store(vec![
        rec(
            "CA1",
            100,
            r#""Attribution_Source":"google","Attribution_Medium":"cpc","Attribution_Campaign":"spring","Attribution_Content":"ad1""#,
        ),
        rec("CA2", 200, r#""Attribution_Source":"Google""#),
        rec("CA3", 300, r#""Attribution_Source":"googleads""#),
        rec("CA4", 400, ""),
    ]);
    assert_eq!(
        sids(&st, &format!("{AC1}?Attribution_Source=google")),
        ["CA1"]
    );
    assert_eq!(
        sids(&st, &format!("{AC1}?Attribution_Source=Google,googleads")),
        ["CA2", "CA3"]
    );
    assert_eq!(sids(&st, &format!("{AC1}?Attribution_Medium=cpc")), ["CA1"]);
    assert_eq!(
        sids(&st, &format!("{AC1}?Attribution_Campaign=spring")),
        ["CA1"]
    );
    assert_eq!(
        sids(&st, &format!("{AC1}?Attribution_Content=ad1")),
        ["CA1"]
    );
    assert_eq!(
        sids(&st, &format!("{AC1}?Attribution_Medium=CPC")),
        Vec::<String>::new()
    );
}

#[test]
fn empty_values_and_empty_items_count_as_not_given() {
    let st = store(vec![
        rec("CA1", 100, r#""Disposition":"Busy""#),
        rec("CA2", 200, ""),
    ]);
    let all = ["CA1", "CA2"];
    for q in [
        "To=",
        "To=+",
        "To=,",
        "Endpoint=",
        "Disposition=,,",
        "Disposition=+,+",
        "Attribution_Source=,",
        "Prompts_keys=;",
        "Prompts_keys=",
        "Unique=",
        "Date_From=",
        "Date_To=",
        "Results_Count=",
        "Results_Skip=",
        "To",
        "&&",
    ] {
        assert_eq!(sids(&st, &format!("{AC1}?{q}")), all, "{q}");
    }
    assert_eq!(sids(&st, &format!("{AC1}?Disposition=,Busy,")), ["CA1"]);
}

// ---- §2 request syntax ----

#[test]
fn odd_case_parameter_names_and_path_words() {
    let st = store(vec![
        rec("CA1", 100, r#""Disposition":"Busy""#),
        rec("CA2", 200, r#""Disposition":"Busy""#),
        rec("CA3", 300, ""),
    ]);
    assert_eq!(
        sids(&st, "/V2/accounts/AC1/CALLS?date_from=200&DISPOSITION=busy"),
        ["CA2"]
    );
    assert_eq!(
        sids(
            &st,
            "/v2/pRoPeRtIeS/PR1/calls?RESULTS_COUNT=1&results_skip=1"
        ),
        ["CA2"]
    );
    assert_eq!(one(&st, "CA3")["CallSid"], "CA3");
    assert!(matches!(st.answer("/V2/cAlLs/CA3"), Ok(Response::Call(_))));
}

#[test]
fn sids_are_case_sensitive() {
    let st = store(vec![rec("CA1", 100, "")]);
    assert_eq!(sids(&st, "/v2/Accounts/ac1/Calls"), Vec::<String>::new());
    assert_eq!(sids(&st, "/v2/Properties/pr1/Calls"), Vec::<String>::new());
    assert_eq!(api_error(&st, "/v2/Calls/ca1").code, ErrorCode::NotFound);
}

#[test]
fn sids_are_percent_decoded_and_keep_plus() {
    let st = store(vec![
        rec("CA 1", 100, ""),
        rec("CA+2", 200, ""),
        rec("CA3", 300, r#""PropertySid":"P/R""#),
    ]);
    assert_eq!(one(&st, "CA%201")["CallSid"], "CA 1");
    assert_eq!(one(&st, "CA+2")["CallSid"], "CA+2");
    assert_eq!(one(&st, "CA%2B2")["CallSid"], "CA+2");
    assert_eq!(sids(&st, "/v2/Properties/P%2FR/Calls"), ["CA3"]);
}

#[test]
fn one_trailing_slash_is_ignored() {
    let st = store(vec![rec("CA1", 100, "")]);
    assert_eq!(sids(&st, "/v2/Accounts/AC1/Calls/"), ["CA1"]);
    assert_eq!(sids(&st, "/v2/Properties/PR1/Calls/?Unique=All"), ["CA1"]);
    assert_eq!(one(&st, "CA1/")["CallSid"], "CA1");
    assert_eq!(
        api_error(&st, "/v2/Accounts/AC1/Calls//").code,
        ErrorCode::NotFound
    );
    assert_eq!(api_error(&st, "/v2/Calls/CA1//").code, ErrorCode::NotFound);
}

#[test]
fn plus_is_space_and_percent_2b_is_plus_in_values() {
    let st = store(vec![
        rec("CA1", 100, r#""Attribution_Campaign":"spring sale""#),
        rec("CA2", 200, r#""Attribution_Campaign":"a+b""#),
        rec("CA3", 300, r#""Attribution_Campaign":"a b""#),
    ]);
    assert_eq!(
        sids(&st, &format!("{AC1}?Attribution_Campaign=spring+sale")),
        ["CA1"]
    );
    assert_eq!(
        sids(&st, &format!("{AC1}?Attribution_Campaign=a%2Bb")),
        ["CA2"]
    );
    assert_eq!(
        sids(&st, &format!("{AC1}?Attribution_Campaign=a+b")),
        ["CA3"]
    );
    assert_eq!(
        sids(&st, &format!("{AC1}?Attribution_Campaign=a%20b,a%2bb")),
        ["CA2", "CA3"]
    );
}

// ---- §4 order and slicing ----

#[test]
fn order_by_date_start_then_call_sid_bytes() {
    let st = store(vec![
        rec("CA1", 200, ""),
        rec("CA9", 100, ""),
        rec("Ca0", 100, ""),
        rec("CA10", 100, ""),
        rec("CB", 50, ""),
    ]);
    assert_eq!(sids(&st, AC1), ["CB", "CA10", "CA9", "Ca0", "CA1"]);
    assert_eq!(sids(&st, PR1), ["CB", "CA10", "CA9", "Ca0", "CA1"]);
}

#[test]
fn order_holds_across_batches() {
    let st = store(vec![rec("CA3", 300, ""), rec("CA1", 100, "")]);
    st.write(vec![rec("CA2", 200, ""), rec("CA0", 300, "")])
        .unwrap();
    assert_eq!(sids(&st, AC1), ["CA1", "CA2", "CA0", "CA3"]);
}

#[test]
fn results_skip_and_count_slice() {
    let st = store(
        (1..=5)
            .map(|i| rec(&format!("CA{i}"), i * 100, ""))
            .collect(),
    );
    assert_eq!(sids(&st, &format!("{AC1}?Results_Count=2")), ["CA1", "CA2"]);
    assert_eq!(
        sids(&st, &format!("{AC1}?Results_Skip=1&Results_Count=2")),
        ["CA2", "CA3"]
    );
    assert_eq!(sids(&st, &format!("{AC1}?Results_Skip=4")), ["CA5"]);
    assert_eq!(
        sids(&st, &format!("{AC1}?Results_Count=0")),
        Vec::<String>::new()
    );
    assert_eq!(
        sids(&st, &format!("{AC1}?Results_Skip=5")),
        Vec::<String>::new()
    );
    assert_eq!(
        sids(&st, &format!("{AC1}?Results_Skip=4294967295")),
        Vec::<String>::new()
    );
    assert_eq!(
        sids(
            &st,
            &format!("{AC1}?Date_From=200&Results_Skip=1&Results_Count=2")
        ),
        ["CA3", "CA4"]
    );
}

#[test]
fn results_count_defaults_to_200() {
    let st = store(
        (0..201)
            .map(|i| rec(&format!("CA{i:03}"), 1000 + i, ""))
            .collect(),
    );
    let page = sids(&st, AC1);
    assert_eq!(page.len(), 200);
    assert_eq!(page.first().map(String::as_str), Some("CA000"));
    assert_eq!(page.last().map(String::as_str), Some("CA199"));
    assert_eq!(sids(&st, &format!("{AC1}?Results_Skip=200")), ["CA200"]);
    assert_eq!(sids(&st, &format!("{AC1}?Results_Count=500")).len(), 201);
}

#[test]
fn property_or_account_without_calls_is_empty_array() {
    let st = store(vec![rec("CA1", 100, "")]);
    assert_eq!(st.answer("/v2/Accounts/AC9/Calls").unwrap().to_json(), "[]");
    assert_eq!(
        st.answer("/v2/Properties/PR9/Calls").unwrap().to_json(),
        "[]"
    );
    assert_eq!(
        st.answer(&format!("{AC1}?Disposition=Busy"))
            .unwrap()
            .to_json(),
        "[]"
    );
    assert_eq!(
        Store::in_memory().unwrap().answer(PR1).unwrap().to_json(),
        "[]"
    );
}

// ---- §5 writes ----

#[test]
fn upsert_replaces_call_whole() {
    let st = store(vec![rec(
        "CA1",
        100,
        r#""To":"+15550001","Disposition":"Busy","Attribution_Source":"google","Prompts_Keys":"1","Endpoint":"+15550200","From":"+15550100","Notes":"old""#,
    )]);
    let summary = st
        .write(vec![rec(
            "CA1",
            300,
            r#""To":"+15550002","PropertySid":"PR2","From":"+15550199""#,
        )])
        .unwrap();
    assert_eq!((summary.written, summary.replaced), (1, 1));
    for q in [
        "To=15550001",
        "Disposition=Busy",
        "Attribution_Source=google",
        "Prompts_keys=1",
        "Endpoint=15550200",
        "Date_To=200",
    ] {
        assert_eq!(
            sids(&st, &format!("{AC1}?{q}")),
            Vec::<String>::new(),
            "{q}"
        );
    }
    assert_eq!(sids(&st, PR1), Vec::<String>::new());
    assert_eq!(sids(&st, "/v2/Properties/PR2/Calls"), ["CA1"]);
    assert_eq!(
        sids(&st, &format!("{AC1}?To=15550002&Date_From=300")),
        ["CA1"]
    );
    let c = one(&st, "CA1");
    assert!(c["Notes"].is_null());
    assert!(c["Attribution_Source"].is_null());
    assert_eq!(c["From"], "+15550199");
}

#[test]
fn upsert_to_another_account_moves_the_call() {
    let st = store(vec![rec("CA1", 100, "")]);
    st.write(vec![rec(
        "CA1",
        100,
        r#""AccountSid":"AC2","PropertySid":"PR2""#,
    )])
    .unwrap();
    assert_eq!(sids(&st, AC1), Vec::<String>::new());
    assert_eq!(sids(&st, "/v2/Accounts/AC2/Calls"), ["CA1"]);
}

#[test]
fn last_record_with_a_call_sid_in_a_batch_wins() {
    let st = Store::in_memory().unwrap();
    let summary = st
        .write(vec![
            rec("CA1", 100, r#""To":"+15550001""#),
            rec("CA2", 150, ""),
            rec("CA1", 200, r#""To":"+15550002""#),
        ])
        .unwrap();
    assert_eq!(summary.written, 2);
    assert_eq!(
        sids(&st, &format!("{AC1}?To=15550001")),
        Vec::<String>::new()
    );
    assert_eq!(sids(&st, &format!("{AC1}?To=15550002")), ["CA1"]);
    assert_eq!(sids(&st, AC1), ["CA2", "CA1"]);
}

#[test]
fn batch_with_one_invalid_record_writes_nothing() {
    let st = store(vec![rec("CA0", 50, "")]);
    let mut bad = rec("CA3", 300, "");
    bad.to = "   ".into();
    let err = st
        .write(vec![rec("CA1", 100, ""), rec("CA0", 60, ""), bad])
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Store(StoreError::InvalidRecord {
                index: 2,
                source: RecordError::MissingField { field: "To" },
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(sids(&st, AC1), ["CA0"]);
    assert_eq!(one(&st, "CA0")["Date_Start"], "50");
}

#[test]
fn property_bound_to_another_account_is_rejected() {
    let st = store(vec![rec("CA1", 100, "")]);
    let err = st
        .write(vec![
            rec("CA2", 200, ""),
            rec("CA3", 300, r#""AccountSid":"AC2","PropertySid":"PR1""#),
        ])
        .unwrap_err();
    match &err {
        Error::Store(StoreError::PropertyBound {
            call_sid,
            property_sid,
            bound_to,
            account_sid,
        }) => {
            assert_eq!(
                (
                    call_sid.as_str(),
                    property_sid.as_str(),
                    bound_to.as_str(),
                    account_sid.as_str()
                ),
                ("CA3", "PR1", "AC1", "AC2")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sids(&st, AC1), ["CA1"]);
    assert_eq!(sids(&st, "/v2/Accounts/AC2/Calls"), Vec::<String>::new());
}

#[test]
fn property_bound_within_one_batch_is_rejected() {
    let st = Store::in_memory().unwrap();
    let err = st
        .write(vec![
            rec("CA1", 100, r#""PropertySid":"PR7""#),
            rec("CA2", 200, r#""AccountSid":"AC2","PropertySid":"PR7""#),
        ])
        .unwrap_err();
    assert!(
        matches!(err, Error::Store(StoreError::PropertyBound { .. })),
        "{err:?}"
    );
    assert_eq!(sids(&st, "/v2/Properties/PR7/Calls"), Vec::<String>::new());
}

#[test]
fn delete_removes_and_unknown_call_sid_is_not_an_error() {
    let st = store(vec![rec("CA1", 100, ""), rec("CA2", 200, "")]);
    assert_eq!(st.delete(&["CA404"]).unwrap(), 0);
    assert_eq!(st.delete(&["CA1", "CA404"]).unwrap(), 1);
    assert_eq!(sids(&st, AC1), ["CA2"]);
    assert_eq!(api_error(&st, "/v2/Calls/CA1").code, ErrorCode::NotFound);
    assert_eq!(st.delete(&["CA1"]).unwrap(), 0);
}

// ---- §6 responses ----

const MINIMAL_JSON: &str = r#"{"CallSid":"CA1","PropertySid":"PR1","Date_Start":"1700000000","From":"+15550100","From_CountryCode":null,"From_Region":null,"From_City":null,"To":"+15550000","To_Friendly":null,"Duration":0,"Disposition":"Answered","Recording_Uri":null,"Endpoint":null,"Attribution_Source":null,"Attribution_Medium":null,"Attribution_Campaign":null,"Attribution_Content":null,"Session_Traffic_Type":null,"Session_Keywords":null,"Session_ConversionUri":null,"Session_LandingUri":null,"Survey_Type":null,"Survey_Value":null,"Survey_Custom1":null,"Survey_Custom2":null,"Survey_Custom3":null,"Survey_UniqueCode":null,"Prompts_Keys":null,"Notes":null,"CallType":null,"Google_Analytics_ClientId":null,"Google_Adwords_ClickId":null}"#;

#[test]
fn response_lists_every_field_with_nulls_and_no_account_sid() {
    let st = store(vec![from("CA1", 1_700_000_000, "+1 555 0100")]);
    assert_eq!(st.answer("/v2/Calls/CA1").unwrap().to_json(), MINIMAL_JSON);
    assert_eq!(
        st.answer(AC1).unwrap().to_json(),
        format!("[{MINIMAL_JSON}]")
    );
    assert_eq!(
        st.answer(PR1).unwrap().to_json(),
        format!("[{MINIMAL_JSON}]")
    );
}

#[test]
fn response_fields_in_document_order_whatever_the_input_order() {
    let text = r#"{"Google_Adwords_ClickId":" gclid ","Google_Analytics_ClientId":"ga.1","CallType":"sales","Notes":"n","Prompts_Keys":"1, 2","Survey_UniqueCode":"u","Survey_Custom3":"c3","Survey_Custom2":"c2","Survey_Custom1":"c1","Survey_Value":"5","Survey_Type":"t","Session_LandingUri":"/l","Session_ConversionUri":"/c","Session_Keywords":"kw","Session_Traffic_Type":"campaign","Attribution_Content":"ct","Attribution_Campaign":"cp","Attribution_Medium":"cpc","Attribution_Source":"google","Endpoint":"(02) 9999 0001","Recording_Uri":"https://r/1","Disposition":"answered","Duration":61,"To_Friendly":"Sales","To":"61 2 9999-0000","From_City":"Sydney","From_Region":"NSW","From_CountryCode":"AU","From":"+61 400 000 000","Date_Start":"1700000000","PropertySid":"PR1","CallSid":"CA1","AccountSid":"AC1"}"#;
    let st = store(vec![Call::from_json(text).unwrap()]);
    let expected = r#"{"CallSid":"CA1","PropertySid":"PR1","Date_Start":"1700000000","From":"+61400000000","From_CountryCode":"AU","From_Region":"NSW","From_City":"Sydney","To":"+61299990000","To_Friendly":"Sales","Duration":61,"Disposition":"Answered","Recording_Uri":"https://r/1","Endpoint":"+0299990001","Attribution_Source":"google","Attribution_Medium":"cpc","Attribution_Campaign":"cp","Attribution_Content":"ct","Session_Traffic_Type":"Campaign","Session_Keywords":"kw","Session_ConversionUri":"/c","Session_LandingUri":"/l","Survey_Type":"t","Survey_Value":"5","Survey_Custom1":"c1","Survey_Custom2":"c2","Survey_Custom3":"c3","Survey_UniqueCode":"u","Prompts_Keys":"1,2","Notes":"n","CallType":"sales","Google_Analytics_ClientId":"ga.1","Google_Adwords_ClickId":"gclid"}"#;
    assert_eq!(st.answer("/v2/Calls/CA1").unwrap().to_json(), expected);
}

#[test]
fn list_response_is_a_json_array_in_order() {
    let st = store(vec![
        from("CA2", 1_700_000_001, "+15550100"),
        from("CA1", 1_700_000_000, "+15550100"),
    ]);
    let second = MINIMAL_JSON
        .replace(r#""CallSid":"CA1""#, r#""CallSid":"CA2""#)
        .replace("1700000000", "1700000001");
    assert_eq!(
        st.answer(AC1).unwrap().to_json(),
        format!("[{MINIMAL_JSON},{second}]")
    );
    assert_eq!(s(&["CA1", "CA2"]), sids(&st, AC1));
}
