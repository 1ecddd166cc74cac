//! The naive reference model: the semantics of SPEC.md written as plainly as possible over a
//! `Vec<Call>`, for the real engine to be tested against.
//!
//! Every operation scans the whole vector. Nothing here is meant to be fast; everything here is
//! meant to be read next to SPEC.md and seen to be right. It shares nothing with the engine but
//! the record and query types and their normalization helpers ([`Call::normalize`],
//! [`Query::normalized`], [`caller_identity`]).
//!
//! ```
//! use callstore::reference::Reference;
//! use callstore::{Call, Disposition, Query, UniqueFilter};
//!
//! let mut model = Reference::new();
//! let mut first = Call::new("AC1", "PR1", "CA1", 100, "+15550199", Disposition::Answered);
//! first.from = "+15550100".to_string();
//! let mut second = first.clone();
//! second.call_sid = "CA2".to_string();
//! second.date_start = 200;
//! model.write(vec![second, first]).unwrap();
//!
//! let unique = model.query(&Query::account("AC1").unique(UniqueFilter::Unique)).unwrap();
//! assert_eq!(unique.len(), 1);
//! assert_eq!(unique[0].call_sid, "CA1");
//! ```

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{ApiError, ErrorCode, StoreError};
use crate::json::Response;
use crate::model::{Call, caller_identity};
use crate::query::{Query, Scope, UniqueFilter};
use crate::request::{Request, parse_request};

/// The naive reference model of a store: every call in a plain vector.
#[derive(Clone, Debug, Default)]
pub struct Reference {
    /// The stored calls, normalized, in no particular order; CallSids are distinct.
    calls: Vec<Call>,
}

/// How a call counts in the Unique/Repeat classification of one scope (SPEC §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// The first call of its caller identity in the scope.
    Unique,
    /// A later call of a caller identity already seen in the scope.
    Repeat,
    /// A call with no caller identity (anonymous): neither Unique nor Repeat.
    Anonymous,
}

impl Reference {
    /// An empty model.
    pub fn new() -> Self {
        Reference { calls: Vec::new() }
    }

    /// The stored calls, normalized, in no particular order.
    pub fn calls(&self) -> &[Call] {
        &self.calls
    }

    /// Writes a batch atomically (SPEC §5): all of it, or on error none of it.
    ///
    /// 1. Each record is normalized with [`Call::normalize`]; the first that fails (in batch
    ///    order) gives [`StoreError::InvalidRecord`].
    /// 2. Within the batch, the last record with a CallSid wins, at the position of its last
    ///    occurrence.
    /// 3. A record naming a property that is used, with another account, by a stored call that
    ///    stays (its CallSid is not in the batch) or by an earlier record of the batch gives
    ///    [`StoreError::PropertyBound`].
    /// 4. Otherwise every record replaces (whole) or joins the stored calls.
    pub fn write(&mut self, batch: Vec<Call>) -> Result<(), StoreError> {
        // Rule 1: normalize every record; the first failure rejects the batch.
        let mut normalized: Vec<Call> = Vec::with_capacity(batch.len());
        for (index, mut call) in batch.into_iter().enumerate() {
            let trimmed_sid = call.call_sid.trim().to_string();
            if let Err(source) = call.normalize() {
                let call_sid = if trimmed_sid.is_empty() {
                    None
                } else {
                    Some(trimmed_sid)
                };
                return Err(StoreError::InvalidRecord {
                    index,
                    call_sid,
                    source,
                });
            }
            normalized.push(call);
        }

        // Rule 2: keep a record only if no later record of the batch has its CallSid.
        let mut deduplicated: Vec<Call> = Vec::new();
        for (i, call) in normalized.iter().enumerate() {
            let overridden_later = normalized[i + 1..]
                .iter()
                .any(|later| later.call_sid == call.call_sid);
            if !overridden_later {
                deduplicated.push(call.clone());
            }
        }

        // Rule 3: build the resulting store step by step, checking each property's account.
        let mut result: Vec<Call> = self
            .calls
            .iter()
            .filter(|stored| {
                !deduplicated
                    .iter()
                    .any(|record| record.call_sid == stored.call_sid)
            })
            .cloned()
            .collect();
        for record in deduplicated {
            let other_account = result.iter().find(|c| {
                c.property_sid == record.property_sid && c.account_sid != record.account_sid
            });
            if let Some(other) = other_account {
                return Err(StoreError::PropertyBound {
                    call_sid: record.call_sid.clone(),
                    property_sid: record.property_sid.clone(),
                    bound_to: other.account_sid.clone(),
                    account_sid: record.account_sid.clone(),
                });
            }
            result.push(record);
        }

        // Rule 4: commit.
        self.calls = result;
        Ok(())
    }

    /// Writes the batches of one segment of a bulk import ([`crate::Store::import`]) as the
    /// import does: all in one [`Reference::write`]; if that gives
    /// [`StoreError::PropertyBound`], each batch alone, in order, up to the first refused. On an
    /// error, returns it with how many batches went in before it.
    pub fn write_segment(&mut self, batches: Vec<Vec<Call>>) -> Result<(), (StoreError, usize)> {
        if batches.is_empty() {
            return Ok(());
        }
        let all: Vec<Call> = batches.iter().flatten().cloned().collect();
        match self.write(all) {
            Ok(()) => Ok(()),
            Err(StoreError::PropertyBound { .. }) => {
                for (i, batch) in batches.into_iter().enumerate() {
                    self.write(batch).map_err(|e| (e, i))?;
                }
                Ok(())
            }
            Err(e) => Err((e, 0)),
        }
    }

    /// Deletes calls by CallSid (exact, case-sensitive); returns how many of them were stored.
    /// An unknown CallSid is not an error.
    pub fn delete(&mut self, call_sids: &[impl AsRef<str>]) -> usize {
        let mut removed = 0;
        for sid in call_sids {
            let before = self.calls.len();
            self.calls.retain(|c| c.call_sid != sid.as_ref());
            removed += before - self.calls.len();
        }
        removed
    }

    /// The stored call with this CallSid (exact, case-sensitive), if any.
    pub fn get(&self, call_sid: &str) -> Option<Call> {
        self.calls.iter().find(|c| c.call_sid == call_sid).cloned()
    }

    /// A page of calls (SPEC §2-§4): every match in order of (`Date_Start`, CallSid bytes), after
    /// dropping `Results_Skip` of them, at most `Results_Count` of them.
    pub fn query(&self, q: &Query) -> Result<Vec<Call>, ApiError> {
        let matches = self.matches(q)?;
        let skip = usize::try_from(q.results_skip).unwrap_or(usize::MAX);
        let count = usize::try_from(q.results_count).unwrap_or(usize::MAX);
        Ok(matches.into_iter().skip(skip).take(count).collect())
    }

    /// The number of calls that match, ignoring `Results_Skip` and `Results_Count`.
    pub fn count(&self, q: &Query) -> Result<u64, ApiError> {
        let matches = self.matches(q)?;
        Ok(matches.len() as u64)
    }

    /// Answers a typed request: one call (404 `NotFound` naming the CallSid when it is not
    /// stored), or a page of calls.
    pub fn execute(&self, r: &Request) -> Result<Response, ApiError> {
        match r {
            Request::Call(call_sid) => match self.get(call_sid) {
                Some(call) => Ok(Response::Call(Box::new(call))),
                None => Err(ApiError::new(
                    ErrorCode::NotFound,
                    format!("No call with CallSid {call_sid:?}"),
                )),
            },
            Request::List(q) => Ok(Response::Calls(self.query(q)?)),
        }
    }

    /// Answers a request string: [`parse_request`] then [`Reference::execute`].
    pub fn answer(&self, request: &str) -> Result<Response, ApiError> {
        let parsed = parse_request(request)?;
        self.execute(&parsed)
    }

    /// Every call that matches the query, sorted, before skip and count.
    fn matches(&self, q: &Query) -> Result<Vec<Call>, ApiError> {
        let q = q.normalized()?;
        let classes = self.classify(&q.scope);
        let mut out: Vec<Call> = Vec::new();
        for call in &self.calls {
            if !in_scope(call, &q.scope) {
                continue;
            }
            if !passes_filters(call, &q) {
                continue;
            }
            let class = classes
                .get(call.call_sid.as_str())
                .copied()
                .unwrap_or(Class::Anonymous);
            let keep = match q.unique {
                UniqueFilter::All => true,
                UniqueFilter::Unique => class == Class::Unique,
                UniqueFilter::Repeat => class == Class::Repeat,
            };
            if keep {
                out.push(call.clone());
            }
        }
        out.sort_by(|a, b| {
            (a.date_start, a.call_sid.as_bytes()).cmp(&(b.date_start, b.call_sid.as_bytes()))
        });
        Ok(out)
    }

    /// The Unique/Repeat class of every call of a scope (SPEC §3), over all the scope's stored
    /// calls whatever a request's other filters: in order of (`Date_Start`, CallSid bytes), the
    /// first call of each caller identity is Unique, the later ones Repeat.
    fn classify(&self, scope: &Scope) -> BTreeMap<&str, Class> {
        let mut in_scope_calls: Vec<&Call> =
            self.calls.iter().filter(|c| in_scope(c, scope)).collect();
        in_scope_calls.sort_by(|a, b| {
            (a.date_start, a.call_sid.as_bytes()).cmp(&(b.date_start, b.call_sid.as_bytes()))
        });
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut classes = BTreeMap::new();
        for call in in_scope_calls {
            let class = match caller_identity(&call.from) {
                None => Class::Anonymous,
                Some(identity) => {
                    if seen.contains(identity) {
                        Class::Repeat
                    } else {
                        seen.insert(identity);
                        Class::Unique
                    }
                }
            };
            classes.insert(call.call_sid.as_str(), class);
        }
        classes
    }
}

/// Whether a call belongs to the scope: its account, or its property.
fn in_scope(call: &Call, scope: &Scope) -> bool {
    match scope {
        Scope::Account(sid) => call.account_sid == *sid,
        Scope::Property(sid) => call.property_sid == *sid,
    }
}

/// Whether a call passes every filter of a normalized query except `Unique` (an empty list is a
/// filter not given).
fn passes_filters(call: &Call, q: &Query) -> bool {
    if let Some(from) = q.date_from {
        if call.date_start < from {
            return false;
        }
    }
    if let Some(to) = q.date_to {
        if call.date_start >= to {
            return false;
        }
    }
    if !q.dispositions.is_empty() && !q.dispositions.contains(&call.disposition) {
        return false;
    }
    if !q.to.is_empty() && !q.to.contains(&call.to) {
        return false;
    }
    let optional_lists = [
        (&q.endpoint, &call.endpoint),
        (&q.attribution_source, &call.attribution_source),
        (&q.attribution_medium, &call.attribution_medium),
        (&q.attribution_campaign, &call.attribution_campaign),
        (&q.attribution_content, &call.attribution_content),
    ];
    for (wanted, value) in optional_lists {
        if wanted.is_empty() {
            continue;
        }
        match value {
            None => return false,
            Some(v) => {
                if !wanted.contains(v) {
                    return false;
                }
            }
        }
    }
    if !q.prompts_keys.is_empty() {
        match &call.prompts_keys {
            None => return false,
            Some(path) => {
                if !q.prompts_keys.iter().any(|p| path_starts_with(path, p)) {
                    return false;
                }
            }
        }
    }
    true
}

/// Whether the IVR path `path` starts with `prefix`, key by key: `"1,2"` starts with `"1"` and
/// with `"1,2"`, but `"12"` does not start with `"1"`.
fn path_starts_with(path: &str, prefix: &str) -> bool {
    let path_keys: Vec<&str> = path.split(',').collect();
    let prefix_keys: Vec<&str> = prefix.split(',').collect();
    if prefix_keys.len() > path_keys.len() {
        return false;
    }
    for i in 0..prefix_keys.len() {
        if path_keys[i] != prefix_keys[i] {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RecordError;
    use crate::model::Disposition;

    /// A call of account `acc`, property `prop`, from `from` at time `t`.
    fn call(acc: &str, prop: &str, sid: &str, t: u32, from: &str) -> Call {
        let mut c = Call::new(acc, prop, sid, t, "+15550199", Disposition::Answered);
        c.from = from.to_string();
        c
    }

    fn sids(calls: &[Call]) -> Vec<&str> {
        calls.iter().map(|c| c.call_sid.as_str()).collect()
    }

    fn model(calls: Vec<Call>) -> Reference {
        let mut m = Reference::new();
        m.write(calls).expect("valid batch");
        m
    }

    fn run(m: &Reference, q: Query) -> Vec<String> {
        m.query(&q)
            .expect("valid query")
            .into_iter()
            .map(|c| c.call_sid)
            .collect()
    }

    #[test]
    fn ivr_paths_match_key_by_key_prefixes() {
        let mut calls = Vec::new();
        for (sid, path) in [
            ("CA1", Some("1")),
            ("CA2", Some("1,2")),
            ("CA3", Some("12")),
            ("CA4", Some("1,2,3")),
            ("CA5", None),
            ("CA6", Some("3,5")),
            ("CA7", Some("2,1")),
        ] {
            let mut c = call("AC1", "PR1", sid, 10, "anonymous");
            c.prompts_keys = path.map(str::to_string);
            calls.push(c);
        }
        let m = model(calls);
        assert_eq!(
            run(&m, Query::account("AC1").prompts("1")),
            ["CA1", "CA2", "CA4"]
        );
        assert_eq!(
            run(&m, Query::account("AC1").prompts(" 1 , 2 ")),
            ["CA2", "CA4"]
        );
        assert_eq!(
            run(&m, Query::account("AC1").prompts("1,2").prompts("3,5")),
            ["CA2", "CA4", "CA6"]
        );
        assert_eq!(run(&m, Query::account("AC1").prompts("12")), ["CA3"]);
        assert!(run(&m, Query::account("AC1").prompts("1,2,3,4")).is_empty());
        assert_eq!(
            m.query(&Query::account("AC1").prompts("1,,2"))
                .expect_err("empty key")
                .code,
            ErrorCode::InvalidParameter
        );
        assert!(path_starts_with("1,2", "1"));
        assert!(!path_starts_with("12", "1"));
        assert!(!path_starts_with("1", "1,2"));
    }

    #[test]
    fn unique_depends_on_scope() {
        // The caller calls property PR1, then property PR2 of the same account.
        let m = model(vec![
            call("AC1", "PR1", "CA1", 100, "+15550100"),
            call("AC1", "PR2", "CA2", 200, "+15550100"),
            call("AC1", "PR2", "CA3", 300, "+15550100"),
            call("AC1", "PR2", "CA4", 400, "anonymous"),
            call("AC1", "PR2", "CA5", 500, "ANONYMOUS"),
        ]);
        let unique = |q: Query| run(&m, q.unique(UniqueFilter::Unique));
        let repeat = |q: Query| run(&m, q.unique(UniqueFilter::Repeat));
        assert_eq!(unique(Query::property("PR2")), ["CA2"]);
        assert_eq!(repeat(Query::property("PR2")), ["CA3"]);
        assert_eq!(unique(Query::account("AC1")), ["CA1"]);
        assert_eq!(repeat(Query::account("AC1")), ["CA2", "CA3"]);
        // Anonymous calls only come with All.
        assert_eq!(
            run(&m, Query::property("PR2")),
            ["CA2", "CA3", "CA4", "CA5"]
        );
    }

    #[test]
    fn unique_ignores_the_other_filters() {
        let m = model(vec![
            call("AC1", "PR1", "CA1", 100, "+15550100"),
            call("AC1", "PR1", "CA2", 200, "+15550100"),
        ]);
        // CA2 is Repeat even when the date range leaves CA1 out.
        let q = Query::account("AC1").date_from(150);
        assert!(run(&m, q.clone().unique(UniqueFilter::Unique)).is_empty());
        assert_eq!(run(&m, q.unique(UniqueFilter::Repeat)), ["CA2"]);
    }

    #[test]
    fn ties_on_date_break_by_call_sid_bytes() {
        let m = model(vec![
            call("AC1", "PR1", "CAb", 100, "+15550100"),
            call("AC1", "PR1", "CAB", 100, "+15550100"),
            call("AC1", "PR1", "CAa", 50, "+15550100"),
        ]);
        assert_eq!(run(&m, Query::account("AC1")), ["CAa", "CAB", "CAb"]);
        assert_eq!(
            run(&m, Query::account("AC1").unique(UniqueFilter::Repeat)),
            ["CAB", "CAb"]
        );
    }

    #[test]
    fn a_late_earlier_call_turns_unique_into_repeat() {
        let mut m = model(vec![call("AC1", "PR1", "CA5", 500, "+15550100")]);
        let unique = Query::account("AC1").unique(UniqueFilter::Unique);
        assert_eq!(run(&m, unique.clone()), ["CA5"]);
        m.write(vec![call("AC1", "PR1", "CA9", 100, "61 5550 100")])
            .expect("valid");
        // "61 5550 100" normalizes to "+615550100", another caller: both Unique.
        assert_eq!(run(&m, unique.clone()), ["CA9", "CA5"]);
        m.write(vec![call("AC1", "PR1", "CA7", 50, "+1 555 0100")])
            .expect("valid");
        assert_eq!(run(&m, unique.clone()), ["CA7", "CA9"]);
        assert_eq!(
            run(&m, Query::account("AC1").unique(UniqueFilter::Repeat)),
            ["CA5"]
        );
    }

    #[test]
    fn deleting_a_first_call_makes_the_next_unique() {
        let mut m = model(vec![
            call("AC1", "PR1", "CA1", 100, "+15550100"),
            call("AC1", "PR1", "CA2", 200, "+15550100"),
            call("AC1", "PR1", "CA3", 300, "+15550100"),
        ]);
        let unique = Query::account("AC1").unique(UniqueFilter::Unique);
        assert_eq!(run(&m, unique.clone()), ["CA1"]);
        assert_eq!(m.delete(&["CA1", "CA1", "nope"]), 1);
        assert_eq!(run(&m, unique.clone()), ["CA2"]);
        assert_eq!(
            run(&m, Query::account("AC1").unique(UniqueFilter::Repeat)),
            ["CA3"]
        );
        assert!(m.get("CA1").is_none());
        assert_eq!(m.delete(&[] as &[&str]), 0);
    }

    #[test]
    fn moving_a_first_call_later_by_replacing_it() {
        let mut m = model(vec![
            call("AC1", "PR1", "CA1", 100, "+15550100"),
            call("AC1", "PR1", "CA2", 200, "+15550100"),
        ]);
        m.write(vec![call("AC1", "PR1", "CA1", 300, "+15550100")])
            .expect("valid");
        assert_eq!(
            run(&m, Query::account("AC1").unique(UniqueFilter::Unique)),
            ["CA2"]
        );
        assert_eq!(m.calls().len(), 2);
    }

    #[test]
    fn date_from_inclusive_date_to_exclusive() {
        let m = model(vec![
            call("AC1", "PR1", "CA1", 99, "anonymous"),
            call("AC1", "PR1", "CA2", 100, "anonymous"),
            call("AC1", "PR1", "CA3", 199, "anonymous"),
            call("AC1", "PR1", "CA4", 200, "anonymous"),
        ]);
        assert_eq!(
            run(&m, Query::account("AC1").date_from(100).date_to(200)),
            ["CA2", "CA3"]
        );
        assert!(run(&m, Query::account("AC1").date_from(100).date_to(100)).is_empty());
        assert_eq!(run(&m, Query::account("AC1").date_to(100)), ["CA1"]);
        assert_eq!(
            m.query(&Query::account("AC1").date_from(201).date_to(200))
                .expect_err("from after to")
                .code,
            ErrorCode::InvalidParameter
        );
    }

    #[test]
    fn list_filters_are_ors_combined_with_and() {
        let mut a = call("AC1", "PR1", "CA1", 1, "anonymous");
        a.endpoint = Some("+61 2 9999 0000".to_string());
        a.attribution_source = Some("google".to_string());
        a.disposition = Disposition::Busy;
        let mut b = call("AC1", "PR1", "CA2", 2, "anonymous");
        b.to = "+61 3 1111 2222".to_string();
        b.attribution_source = Some("Google".to_string());
        let c = call("AC1", "PR1", "CA3", 3, "anonymous");
        let m = model(vec![a, b, c]);
        assert_eq!(
            run(&m, Query::account("AC1").endpoint("61299990000")),
            ["CA1"]
        );
        assert_eq!(
            run(
                &m,
                Query::account("AC1")
                    .to("(03) 1111-2222")
                    .to("61 3 1111 2222")
            ),
            ["CA2"]
        );
        assert_eq!(
            run(&m, Query::account("AC1").source(" google ").source("bing")),
            ["CA1"]
        );
        assert_eq!(
            run(
                &m,
                Query::account("AC1")
                    .disposition(Disposition::Busy)
                    .disposition(Disposition::Answered)
            ),
            ["CA1", "CA2", "CA3"]
        );
        assert!(
            run(
                &m,
                Query::account("AC1")
                    .disposition(Disposition::Answered)
                    .source("google")
            )
            .is_empty()
        );
        // An empty item is dropped; a list of only empty items is a filter not given.
        assert_eq!(run(&m, Query::account("AC1").medium(" ")).len(), 3);
    }

    #[test]
    fn skip_and_count_slice_the_sorted_matches() {
        let calls = (0..5)
            .map(|i| call("AC1", "PR1", &format!("CA{i}"), 100 - i, "anonymous"))
            .collect();
        let m = model(calls);
        assert_eq!(
            run(&m, Query::account("AC1").skip(1).count(2)),
            ["CA3", "CA2"]
        );
        assert!(run(&m, Query::account("AC1").skip(9)).is_empty());
        assert!(run(&m, Query::account("AC1").count(0)).is_empty());
        assert_eq!(m.count(&Query::account("AC1").skip(1).count(2)), Ok(5));
        assert_eq!(m.count(&Query::account("AC2")), Ok(0));
    }

    #[test]
    fn property_binding_is_rejected_and_freed_after_delete() {
        let mut m = model(vec![call("AC1", "PR1", "CA1", 1, "anonymous")]);
        let err = m
            .write(vec![
                call("AC2", "PR2", "CA2", 2, "anonymous"),
                call("AC2", "PR1", "CA3", 3, "anonymous"),
            ])
            .expect_err("PR1 belongs to AC1");
        match err {
            StoreError::PropertyBound {
                call_sid,
                property_sid,
                bound_to,
                account_sid,
            } => {
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
            other => panic!("unexpected error {other:?}"),
        }
        // Nothing of the batch was written.
        assert_eq!(sids(m.calls()), ["CA1"]);
        // Within a batch too.
        let err = m
            .write(vec![
                call("AC2", "PR2", "CA2", 2, "anonymous"),
                call("AC3", "PR2", "CA3", 3, "anonymous"),
            ])
            .expect_err("PR2 taken by AC2 earlier in the batch");
        assert!(matches!(err, StoreError::PropertyBound { ref bound_to, .. } if bound_to == "AC2"));
        assert_eq!(m.calls().len(), 1);
        // Once PR1 has no calls it is free again.
        assert_eq!(m.delete(&["CA1".to_string()]), 1);
        m.write(vec![call("AC2", "PR1", "CA3", 3, "anonymous")])
            .expect("PR1 is free");
        assert_eq!(run(&m, Query::account("AC2")), ["CA3"]);
    }

    #[test]
    fn binding_checks_the_store_as_it_will_be() {
        // Replacing the only call of PR1 by one of another account moves the property.
        let mut m = model(vec![call("AC1", "PR1", "CA1", 1, "anonymous")]);
        m.write(vec![call("AC2", "PR1", "CA1", 1, "anonymous")])
            .expect("CA1 is replaced, PR1 has no other call");
        assert_eq!(m.get("CA1").map(|c| c.account_sid), Some("AC2".to_string()));
        // The last record with a CallSid wins, so an overridden record does not bind.
        let mut m = Reference::new();
        m.write(vec![
            call("AC1", "PR9", "CA1", 1, "anonymous"),
            call("AC2", "PR9", "CA2", 2, "anonymous"),
            call("AC2", "PR9", "CA1", 3, "anonymous"),
        ])
        .expect("only AC2 names PR9 after deduplication");
        assert_eq!(m.calls().len(), 2);
        assert_eq!(m.get("CA1").map(|c| c.date_start), Some(3));
        // But two stored calls, one replaced: the other still binds.
        let mut m = model(vec![
            call("AC1", "PR1", "CA1", 1, "anonymous"),
            call("AC1", "PR1", "CA2", 1, "anonymous"),
        ]);
        assert!(m.write(vec![call("AC2", "PR1", "CA1", 1, "x")]).is_err());
        assert_eq!(m.get("CA1").map(|c| c.account_sid), Some("AC1".to_string()));
    }

    #[test]
    fn invalid_records_reject_the_batch() {
        let mut m = model(vec![call("AC1", "PR1", "CA1", 1, "anonymous")]);
        let mut bad = call("AC1", "PR1", " CA3 ", 3, "anonymous");
        bad.prompts_keys = Some("1,,2".to_string());
        let mut no_sid = call("AC1", "PR1", "  ", 4, "anonymous");
        no_sid.to = " ".to_string();
        let err = m
            .write(vec![call("AC1", "PR1", "CA2", 2, "anonymous"), bad, no_sid])
            .expect_err("bad IVR path");
        match err {
            StoreError::InvalidRecord {
                index,
                call_sid,
                source,
            } => {
                assert_eq!(index, 1);
                assert_eq!(call_sid.as_deref(), Some("CA3"));
                assert!(matches!(source, RecordError::InvalidValue { .. }));
            }
            other => panic!("unexpected error {other:?}"),
        }
        let err = m
            .write(vec![call("AC1", "PR1", "", 2, "anonymous")])
            .expect_err("no CallSid");
        assert!(matches!(
            err,
            StoreError::InvalidRecord {
                index: 0,
                call_sid: None,
                ..
            }
        ));
        assert_eq!(sids(m.calls()), ["CA1"]);
    }

    #[test]
    fn records_are_stored_normalized_and_replaced_whole() {
        let mut first = call(" AC1 ", "PR1", " CA1 ", 1, "");
        first.notes = Some("keep?".to_string());
        first.endpoint = Some(" ".to_string());
        let mut m = model(vec![first]);
        let stored = m.get("CA1").expect("stored under its trimmed CallSid");
        assert_eq!(stored.account_sid, "AC1");
        assert_eq!(stored.from, "anonymous");
        assert_eq!(stored.endpoint, None);
        m.write(vec![call("AC1", "PR1", "CA1", 2, "+1 555")])
            .expect("valid");
        let stored = m.get("CA1").expect("replaced");
        assert_eq!(stored.notes, None);
        assert_eq!(stored.from, "+1555");
        assert_eq!(m.get(" CA1 "), None);
    }

    #[test]
    fn execute_answers_one_call_or_a_page() {
        let m = model(vec![call("AC1", "PR1", "CA1", 1, "anonymous")]);
        match m.execute(&Request::Call("CA1".to_string())) {
            Ok(Response::Call(c)) => assert_eq!(c.call_sid, "CA1"),
            other => panic!("unexpected answer {other:?}"),
        }
        let err = m
            .execute(&Request::Call("CA404".to_string()))
            .expect_err("not stored");
        assert_eq!(err.code, ErrorCode::NotFound);
        assert!(err.message.contains("CA404"));
        assert_eq!(
            m.execute(&Request::List(Query::property("PR404"))),
            Ok(Response::Calls(vec![]))
        );
        match m.execute(&Request::List(Query::property("PR1"))) {
            Ok(Response::Calls(cs)) => assert_eq!(sids(&cs), ["CA1"]),
            other => panic!("unexpected answer {other:?}"),
        }
    }
}
