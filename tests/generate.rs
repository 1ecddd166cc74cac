//! The synthetic data generator: deterministic bytes, records that parse back, and the shapes
//! it promises (anonymous and repeat callers, IVR paths, late arrivals, account sizes,
//! dispositions).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use callstore::generate::{
    DAYS, GenerateOptions, Generator, START_EPOCH, call_to_ingest_json, write_jsonl,
};
use callstore::{Call, Disposition, Response};

fn options(calls: u64) -> GenerateOptions {
    GenerateOptions {
        calls,
        seed: 1,
        ..GenerateOptions::default()
    }
}

fn jsonl(options: &GenerateOptions) -> Vec<u8> {
    let mut out = Vec::new();
    let written = write_jsonl(options, &mut out).unwrap();
    assert_eq!(written, options.calls);
    out
}

fn digest(bytes: &[u8]) -> (usize, u64) {
    // DefaultHasher::new() has fixed keys: fine for comparing two runs of one process.
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    (bytes.len(), h.finish())
}

#[test]
fn same_options_same_bytes() {
    let options = options(100_000);
    let first = digest(&jsonl(&options));
    let second = digest(&jsonl(&options));
    assert_eq!(first, second);

    let other_seed = GenerateOptions { seed: 2, ..options };
    assert_ne!(first, digest(&jsonl(&other_seed)));
}

#[test]
fn lines_are_ingest_records() {
    let out = jsonl(&options(50));
    let text = std::str::from_utf8(&out).unwrap();
    assert!(text.ends_with('\n'));
    for line in text.lines() {
        assert!(line.starts_with(r#"{"AccountSid":"AC"#), "{line}");
        assert!(line.contains(r#","CallSid":"CA"#));
        assert!(line.ends_with('}'));
    }
}

#[test]
fn every_line_parses_and_round_trips() {
    let options = options(100_000);
    let out = jsonl(&options);
    let text = std::str::from_utf8(&out).unwrap();
    let mut generated = Generator::new(&options);
    assert_eq!(generated.len(), 100_000);

    let mut sids = HashSet::new();
    let mut property_account: HashMap<String, String> = HashMap::new();
    let mut lines = 0;
    for line in text.lines() {
        let call = Call::from_json(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        // The iterator yields the very calls that were written, already normalized.
        assert_eq!(Some(&call), generated.next().as_ref());
        assert_eq!(call_to_ingest_json(&call), line);
        assert!(call.call_sid.len() == 34 && call.call_sid.starts_with("CA"));
        assert!(call.account_sid.starts_with("AC") && call.property_sid.starts_with("PR"));
        assert!(call.to.starts_with('+'));
        assert!(
            call.date_start >= START_EPOCH && call.date_start < START_EPOCH + DAYS * 86_400,
            "{}",
            call.date_start
        );
        assert!(
            sids.insert(call.call_sid.clone()),
            "{} twice",
            call.call_sid
        );
        let account = property_account
            .entry(call.property_sid.clone())
            .or_insert_with(|| call.account_sid.clone());
        assert_eq!(
            *account, call.account_sid,
            "{} in two accounts",
            call.property_sid
        );
        lines += 1;
    }
    assert_eq!(lines, 100_000);
    assert!(generated.next().is_none());
    assert!(property_account.len() > 200);
}

#[test]
fn ingest_json_is_the_response_with_account_first() {
    for call in Generator::new(&options(2_000)) {
        let ingest = call_to_ingest_json(&call);
        let response = Response::Call(Box::new(call.clone())).to_json();
        let prefix = format!(
            "{{\"AccountSid\":{},",
            serde_json::to_string(&call.account_sid).unwrap()
        );
        assert_eq!(ingest, format!("{prefix}{}", &response[1..]));
    }

    // Values that need escaping are escaped as serde_json escapes them, and read back.
    let mut call = Call::new("AC\"1", "PR\\1", "CA1", 7, "+15550100", Disposition::IVR);
    call.notes = Some("tab\there, newline\nthere, bell\u{7}, é, \u{1F600}".to_string());
    let response = Response::Call(Box::new(call.clone())).to_json();
    assert_eq!(
        call_to_ingest_json(&call),
        format!(r#"{{"AccountSid":"AC\"1",{}"#, &response[1..])
    );
    assert_eq!(Call::from_json(&call_to_ingest_json(&call)).unwrap(), call);
}

#[test]
fn zero_calls_and_one_account() {
    assert_eq!(jsonl(&options(0)), b"");
    let one = GenerateOptions {
        calls: 1_000,
        seed: 9,
        accounts: 0,
    };
    let accounts: BTreeSet<String> = Generator::new(&one).map(|c| c.account_sid).collect();
    assert_eq!(accounts.len(), 1);
}

fn share(count: usize, total: usize) -> f64 {
    count as f64 / total as f64
}

fn assert_between(what: &str, value: f64, low: f64, high: f64) {
    assert!(
        (low..=high).contains(&value),
        "{what}: {value:.4} is not within {low}..={high}"
    );
}

#[test]
fn distributions_are_realistic() {
    let calls: Vec<Call> = Generator::new(&options(100_000)).collect();
    let n = calls.len();

    let anonymous = calls
        .iter()
        .filter(|c| c.caller_identity().is_none())
        .count();
    assert_between("anonymous share", share(anonymous, n), 0.05, 0.15);

    // Repeat callers: seen before in the same account, in Date_Start (then CallSid) order.
    let mut by_start: Vec<&Call> = calls.iter().collect();
    by_start.sort_by(|a, b| (a.date_start, &a.call_sid).cmp(&(b.date_start, &b.call_sid)));
    let mut seen = HashSet::new();
    let repeats = by_start
        .iter()
        .filter_map(|c| c.caller_identity().map(|id| (&c.account_sid, id)))
        .filter(|key| !seen.insert(*key))
        .count();
    assert_between("repeat-caller share", share(repeats, n), 0.20, 0.45);

    let ivr = calls.iter().filter(|c| c.prompts_keys.is_some()).count();
    assert_between("IVR-path share", share(ivr, n), 0.30, 0.50);
    for keys in calls.iter().filter_map(|c| c.prompts_keys.as_deref()) {
        let depth = keys.split(',').count();
        assert!(
            depth <= 3 && keys.split(',').all(|k| !k.is_empty()),
            "{keys}"
        );
    }

    // Emitted in end-time order, except late records: those that come after a record ending
    // more than an hour after them.
    let mut latest_end = 0;
    let mut late = 0;
    let mut out_of_start_order = 0;
    let mut previous_start = 0;
    for c in &calls {
        let end = u64::from(c.date_start) + c.duration;
        if latest_end > end + 3600 {
            late += 1;
        }
        latest_end = latest_end.max(end);
        if c.date_start < previous_start {
            out_of_start_order += 1;
        }
        previous_start = c.date_start;
    }
    assert_between("late share", share(late, n), 0.003, 0.05);
    assert!(
        out_of_start_order > late,
        "long calls arrive after later short ones"
    );

    let mut per_account: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &calls {
        *per_account.entry(&c.account_sid).or_default() += 1;
    }
    let largest = per_account.values().copied().max().unwrap();
    assert_between("largest account share", share(largest, n), 0.10, 0.25);
    assert!(per_account.len() > 150, "{} accounts", per_account.len());
    let mut sizes: Vec<usize> = per_account.values().copied().collect();
    sizes.sort_unstable();
    assert!(sizes[sizes.len() / 2] < n / 200, "most accounts are small");

    for (disposition, target) in [
        (Disposition::Answered, 0.60),
        (Disposition::NoAnswer, 0.12),
        (Disposition::IVR, 0.15),
        (Disposition::Busy, 0.08),
        (Disposition::Failed, 0.05),
    ] {
        let count = calls
            .iter()
            .filter(|c| c.disposition == disposition)
            .count();
        assert_between(
            &format!("{disposition} share"),
            share(count, n),
            target - 0.04,
            target + 0.04,
        );
    }

    let unattributed = calls
        .iter()
        .filter(|c| {
            c.attribution_source.is_none()
                && c.attribution_medium.is_none()
                && c.attribution_campaign.is_none()
                && c.attribution_content.is_none()
        })
        .count();
    assert_between("unattributed share", share(unattributed, n), 0.15, 0.25);
    let distinct =
        |f: fn(&Call) -> Option<&str>| calls.iter().filter_map(f).collect::<BTreeSet<_>>().len();
    assert!(distinct(|c| c.attribution_source.as_deref()) >= 24);
    assert!((4..=10).contains(&distinct(|c| c.attribution_medium.as_deref())));
    assert!(distinct(|c| c.attribution_campaign.as_deref()) >= 100);
    assert!(distinct(|c| c.attribution_content.as_deref()) >= 10);

    // Answered calls have recordings (mostly), routed calls an endpoint, failed ones none.
    assert!(calls.iter().any(|c| c.recording_uri.is_some()));
    assert!(
        calls
            .iter()
            .filter(|c| c.recording_uri.is_some())
            .all(|c| c.disposition == Disposition::Answered)
    );
    assert!(
        calls
            .iter()
            .filter(|c| c.disposition == Disposition::Failed)
            .all(|c| c.endpoint.is_none())
    );

    // Big accounts have several calls in the same second.
    let mut per_second: HashMap<(&str, u32), usize> = HashMap::new();
    for c in &calls {
        *per_second
            .entry((&c.account_sid, c.date_start))
            .or_default() += 1;
    }
    let shared = per_second.values().filter(|&&k| k > 1).count();
    assert!(shared > 500, "{shared} account-seconds with several calls");

    // The two years are covered, weekdays busier than Sundays.
    let mut weekday = [0usize; 7];
    for c in &calls {
        weekday[((c.date_start - START_EPOCH) / 86_400 % 7) as usize] += 1;
    }
    assert!(weekday[1] > 2 * weekday[6], "{weekday:?}");
    let first = calls.iter().map(|c| c.date_start).min().unwrap();
    let last = calls.iter().map(|c| c.date_start).max().unwrap();
    assert!(first < START_EPOCH + 2 * 86_400 && last > START_EPOCH + (DAYS - 2) * 86_400);
}
