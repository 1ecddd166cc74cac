//! `request`: arbitrary strings into `callstore::parse_request`.
//!
//! - Never a panic.
//! - Every rejection is one of the four SPEC error codes, with the status that goes with it (404
//!   for `NotFound`, 400 otherwise), a non-empty message, and an error envelope that is JSON.
//! - Every accepted list request holds a query that is already normalized (normalizing it again
//!   changes nothing) and whose dates are in order.
//! - Every accepted request gets the same answer from the engine (`Store::answer`) as from the
//!   naive model (`Reference::answer`) over a small fixed store, and the answer renders as JSON.
#![no_main]

use std::sync::OnceLock;

use callstore::reference::Reference;
use callstore::{ApiError, Call, Disposition, Error, ErrorCode, Request, Store, parse_request};
use libfuzzer_sys::fuzz_target;

/// (account, property, CallSid, `Date_Start`, `From`, disposition, source, IVR path).
type Row<'a> = (
    &'a str,
    &'a str,
    &'a str,
    u32,
    &'a str,
    Disposition,
    Option<&'a str>,
    Option<&'a str>,
);

fn fixture() -> &'static (Store, Reference) {
    static FIXTURE: OnceLock<(Store, Reference)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rows: [Row; 9] = [
            (
                "AC1",
                "PR1",
                "CA1",
                100,
                "+1 555 0001",
                Disposition::Answered,
                Some("google"),
                Some("1,2"),
            ),
            (
                "AC1",
                "PR1",
                "CA2",
                100,
                "+15550001",
                Disposition::IVR,
                Some("bing"),
                Some("1"),
            ),
            (
                "AC1",
                "PR2",
                "CA3",
                50,
                "555-0002",
                Disposition::Busy,
                None,
                Some("12"),
            ),
            (
                "AC1",
                "PR2",
                "CA 4",
                200,
                "anonymous",
                Disposition::NoAnswer,
                Some("google"),
                None,
            ),
            (
                "AC2",
                "PR3",
                "CA/5",
                0,
                "+1 555 0001",
                Disposition::Failed,
                None,
                Some("2,1"),
            ),
            (
                "AC2",
                "PR3",
                "CA%6",
                4294967295,
                "sip:alice",
                Disposition::Answered,
                Some("Google"),
                None,
            ),
            (
                "AC2",
                "PR 4",
                "CA\u{e9}7",
                300,
                "",
                Disposition::IVR,
                None,
                Some("1,2,3"),
            ),
            (
                "AC 3",
                "PR5",
                "ca1",
                300,
                "+1 555 0003",
                Disposition::Busy,
                Some("google"),
                Some("3"),
            ),
            (
                "AC 3",
                "PR5",
                "CA+9",
                299,
                "+1 555 0003",
                Disposition::Answered,
                None,
                None,
            ),
        ];
        let calls: Vec<Call> = rows
            .iter()
            .map(
                |&(account, property, sid, date, from, disposition, source, prompts)| {
                    let mut call =
                        Call::new(account, property, sid, date, "+1 (555) 0100", disposition);
                    call.from = from.to_string();
                    call.endpoint =
                        Some(if date % 2 == 0 { "555 0200" } else { "desk-7" }.to_string());
                    call.attribution_source = source.map(str::to_string);
                    call.attribution_medium = source.map(|s| format!("{s}-medium"));
                    call.prompts_keys = prompts.map(str::to_string);
                    call.duration = u64::from(date);
                    call
                },
            )
            .collect();
        let store = Store::in_memory().expect("an in-memory store");
        store.write(calls.clone()).expect("the fixture writes");
        let mut model = Reference::new();
        model.write(calls).expect("the fixture writes to the model");
        (store, model)
    })
}

fn check_error(text: &str, e: &ApiError) {
    assert!(
        matches!(
            e.code,
            ErrorCode::InvalidParameter
                | ErrorCode::UnknownParameter
                | ErrorCode::DuplicateParameter
                | ErrorCode::NotFound
        ),
        "{text:?}: unexpected code {:?}",
        e.code
    );
    let want_status = if e.code == ErrorCode::NotFound {
        404
    } else {
        400
    };
    assert_eq!(e.status(), want_status, "{text:?}: {e:?}");
    assert!(
        !e.message.is_empty(),
        "{text:?}: empty message for {:?}",
        e.code
    );
    let envelope: serde_json::Value =
        serde_json::from_str(&e.to_json()).expect("the error envelope is JSON");
    assert_eq!(
        envelope["ResponseStatus"]["ErrorCode"].as_str(),
        Some(e.code.as_str()),
        "{text:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parsed = parse_request(&text);
    // The parser is a function of its input.
    assert_eq!(parsed, parse_request(&text), "{text:?}: two parses differ");
    let request = match parsed {
        Ok(request) => request,
        Err(e) => {
            check_error(&text, &e);
            return;
        }
    };
    if let Request::List(query) = &request {
        let again = query.normalized().expect("a parsed query normalizes");
        assert_eq!(&again, query, "{text:?}: a parsed query is not normalized");
        if let (Some(from), Some(to)) = (query.date_from, query.date_to) {
            assert!(from <= to, "{text:?}: Date_From > Date_To accepted");
        }
    }
    let (store, model) = fixture();
    let want = model.execute(&request);
    match (store.answer(&text), want) {
        (Ok(got), Ok(want)) => {
            assert_eq!(got, want, "{text:?}: engine and model differ");
            let json: serde_json::Value =
                serde_json::from_str(&got.to_json()).expect("a response is JSON");
            match &request {
                Request::Call(sid) => assert_eq!(json["CallSid"].as_str(), Some(sid.as_str())),
                Request::List(_) => assert!(json.is_array()),
            }
        }
        (Err(Error::Api(got)), Err(want)) => {
            check_error(&text, &got);
            assert_eq!(got, want, "{text:?}: engine and model fail differently");
        }
        (got, want) => panic!("{text:?}: engine {got:?}, model {want:?}"),
    }
});
