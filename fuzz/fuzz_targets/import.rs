//! `import`: arbitrary bytes as JSON Lines.
//!
//! - Each line (split on `\n`, decoded as UTF-8 with invalid bytes replaced) goes through
//!   `Call::from_json`: never a panic; an accepted record is normalized (normalizing it again
//!   changes nothing); a rejection has a message.
//! - The accepted records are written as one batch with `Store::write` into an in-memory store and
//!   into the naive model; both accept or both refuse. When accepted, `store.get(sid)` gives back
//!   the normalized record of each CallSid (the last one of the batch wins), and
//!   `Store::answer("/v2/Calls/{sid}")` gives the same record and renders it as JSON.
//! - When the batch is refused (a property bound to two accounts), the records are written one by
//!   one instead, engine and model agreeing on each, and every CallSid reads back as in the model.
#![no_main]

use std::collections::HashMap;

use callstore::reference::Reference;
use callstore::{Call, Error, Response, Store, StoreError};
use libfuzzer_sys::fuzz_target;

/// Lines past this many are ignored: the point is the parser and small batches.
const MAX_LINES: usize = 64;

/// Percent-encodes every byte but the unreserved ones, for a SID in a request path.
fn encode(sid: &str) -> String {
    let mut out = String::with_capacity(sid.len() * 3);
    for b in sid.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn error_kind(e: &StoreError) -> String {
    match e {
        StoreError::InvalidRecord { index, .. } => format!("invalid record {index}"),
        StoreError::PropertyBound {
            call_sid, bound_to, ..
        } => format!("{call_sid} bound to {bound_to}"),
        other => format!("unexpected: {other}"),
    }
}

/// The stored call with this CallSid reads back as `want`, by `get` and by a request.
fn check_round_trip(store: &Store, sid: &str, want: Option<&Call>) {
    let got = store.get(sid).expect("get");
    assert_eq!(got.as_ref(), want, "get {sid:?}");
    let request = format!("/v2/Calls/{}", encode(sid));
    match (store.answer(&request), want) {
        (Ok(Response::Call(call)), Some(want)) => {
            assert_eq!(&*call, want, "{request}");
            let json: serde_json::Value =
                serde_json::from_str(&Response::Call(call).to_json()).expect("a call is JSON");
            assert_eq!(json["CallSid"].as_str(), Some(sid), "{request}");
            assert!(json.get("AccountSid").is_none(), "{request}");
        }
        (Err(Error::Api(e)), None) => assert_eq!(e.status(), 404, "{request}: {e}"),
        (got, want) => panic!("{request}: got {got:?}, want {want:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut accepted: Vec<Call> = Vec::new();
    for line in data.split(|&b| b == b'\n').take(MAX_LINES) {
        let text = String::from_utf8_lossy(line);
        match Call::from_json(&text) {
            Ok(call) => {
                let mut again = call.clone();
                again
                    .normalize()
                    .expect("an accepted record normalizes again");
                assert_eq!(again, call, "an accepted record is not in normal form");
                assert!(!call.call_sid.is_empty() && !call.account_sid.is_empty());
                accepted.push(call);
            }
            Err(e) => assert!(!e.to_string().is_empty(), "an empty record error"),
        }
    }
    if accepted.is_empty() {
        return;
    }
    let store = Store::in_memory().expect("an in-memory store");
    let mut model = Reference::new();
    let got = store.write(accepted.clone());
    let want = model.write(accepted.clone());
    match (got, want) {
        (Ok(summary), Ok(())) => {
            let mut last: HashMap<&str, &Call> = HashMap::new();
            for call in &accepted {
                last.insert(call.call_sid.as_str(), call);
            }
            assert_eq!(summary.written, last.len(), "written");
            assert_eq!(summary.replaced, 0, "replaced in an empty store");
            assert_eq!(store.stats().expect("stats").calls, last.len() as u64);
            for (sid, call) in last {
                check_round_trip(&store, sid, Some(call));
            }
        }
        (Err(Error::Store(got)), Err(want)) => {
            assert_eq!(error_kind(&got), error_kind(&want), "batch errors differ");
            assert!(
                store.stats().expect("stats").calls == 0,
                "a refused batch left calls"
            );
            // One record at a time instead.
            for call in &accepted {
                match (
                    store.write(vec![call.clone()]),
                    model.write(vec![call.clone()]),
                ) {
                    (Ok(s), Ok(())) => assert_eq!(s.written, 1),
                    (Err(Error::Store(got)), Err(want)) => {
                        assert_eq!(error_kind(&got), error_kind(&want), "record errors differ")
                    }
                    (got, want) => panic!("write {call:?}: engine {got:?}, model {want:?}"),
                }
            }
            for call in &accepted {
                let want = model.get(&call.call_sid);
                check_round_trip(&store, &call.call_sid, want.as_ref());
            }
        }
        (got, want) => panic!("batch: engine {got:?}, model {want:?}"),
    }
});
