//! Request strings to typed requests (SPEC §2): one example per rule and per error code, then
//! property tests against a plain model of the parameter rules.

use std::collections::BTreeSet;

use callstore::{
    ApiError, DEFAULT_COUNT, Disposition, ErrorCode, Query, Request, UniqueFilter, parse_request,
};
use proptest::prelude::*;

const ACCOUNT: &str = "/v2/Accounts/AC1/Calls";

fn list(text: &str) -> Query {
    match parse_request(text) {
        Ok(Request::List(q)) => q,
        other => panic!("{text:?} gave {other:?}, not a list request"),
    }
}

fn error(text: &str) -> ApiError {
    match parse_request(text) {
        Err(e) => e,
        Ok(r) => panic!("{text:?} gave {r:?}, not an error"),
    }
}

fn code(text: &str) -> ErrorCode {
    error(text).code
}

fn account() -> Query {
    Query::account("AC1")
}

// ---- paths ----

#[test]
fn the_three_paths() {
    assert_eq!(
        parse_request("/v2/Calls/CA1"),
        Ok(Request::Call("CA1".into()))
    );
    assert_eq!(list("/v2/Properties/PR1/Calls"), Query::property("PR1"));
    assert_eq!(list("/v2/Accounts/AC1/Calls"), Query::account("AC1"));
}

#[test]
fn path_words_match_in_any_case_and_sids_keep_theirs() {
    assert_eq!(
        parse_request("/V2/cALLS/caX"),
        Ok(Request::Call("caX".into()))
    );
    assert_eq!(list("/v2/PROPERTIES/pr1/calls"), Query::property("pr1"));
    assert_eq!(list("/V2/accounts/Ac1/CALLS"), Query::account("Ac1"));
}

#[test]
fn sids_are_percent_decoded_and_plus_stays_plus() {
    assert_eq!(
        parse_request("/v2/Calls/CA%2F1%20x+y"),
        Ok(Request::Call("CA/1 x+y".into()))
    );
    assert_eq!(
        list("/v2/Accounts/%C3%A9t%C3%A9/Calls"),
        Query::account("été")
    );
    assert_eq!(list("/v2/Accounts/été/Calls"), Query::account("été"));
    // A malformed escape is kept as it is.
    assert_eq!(
        parse_request("/v2/Calls/50%zz%"),
        Ok(Request::Call("50%zz%".into()))
    );
}

#[test]
fn one_trailing_slash_is_ignored_two_are_not() {
    assert_eq!(
        parse_request("/v2/Calls/CA1/"),
        Ok(Request::Call("CA1".into()))
    );
    assert_eq!(list("/v2/Accounts/AC1/Calls/"), account());
    assert_eq!(list("/v2/Accounts/AC1/Calls/?To=1"), account().to("+1"));
    assert_eq!(code("/v2/Calls/CA1//"), ErrorCode::NotFound);
    assert_eq!(code("/v2/Accounts/AC1/Calls//"), ErrorCode::NotFound);
}

#[test]
fn other_paths_are_not_found() {
    for path in [
        "",
        "/",
        "v2/Calls/CA1",
        " /v2/Calls/CA1",
        "//v2/Calls/CA1",
        "/v2",
        "/v2/Calls",
        "/v2/Calls/",
        "/v2/Calls//",
        "/v2//CA1",
        "/v2/Calls/CA1/Calls",
        "/v2/Calls/CA1/x",
        "/v3/Calls/CA1",
        "/v2/Call/CA1",
        "/v2/Accounts/AC1",
        "/v2/Accounts//Calls",
        "/v2/Accounts/AC1/Calls/x",
        "/v2/Properties/PR1/calls2",
        "/v2/Things/X1/Calls",
        "/v2/Calls/CA1/Calls",
        "/x/v2/Calls/CA1",
        "/v2/Calls/%FF",
        "/v2/Accounts/%C3/Calls",
    ] {
        let e = error(path);
        assert_eq!(e.code, ErrorCode::NotFound, "{path:?}");
        assert_eq!(e.status(), 404);
        assert!(e.message.contains(&format!("{path:?}")), "{e:?}");
    }
    // The path decides before the query string is looked at.
    assert_eq!(code("/v2/Nope?Foo=1&Foo=2"), ErrorCode::NotFound);
}

#[test]
fn the_path_ends_at_the_first_question_mark_and_a_fragment_is_plain_text() {
    assert_eq!(
        parse_request("/v2/Calls/CA1#top"),
        Ok(Request::Call("CA1#top".into()))
    );
    assert_eq!(code("/v2/Accounts/AC1/Calls#top"), ErrorCode::NotFound);
    assert_eq!(
        list("/v2/Accounts/AC1/Calls?Attribution_Source=a?b#c"),
        account().source("a?b#c")
    );
    assert_eq!(
        parse_request("/v2/Calls/CA1?"),
        Ok(Request::Call("CA1".into()))
    );
    assert_eq!(list("/v2/Accounts/AC1/Calls?"), account());
}

// ---- the query string ----

#[test]
fn empty_pairs_are_skipped_and_a_name_alone_has_an_empty_value() {
    assert_eq!(
        list(&format!("{ACCOUNT}?&&Results_Count=5&")),
        account().count(5)
    );
    assert_eq!(list(&format!("{ACCOUNT}?Results_Count")), account());
    assert_eq!(list(&format!("{ACCOUNT}?Unique&Date_From=")), account());
    // Everything after the first `=` is the value.
    assert_eq!(
        list(&format!("{ACCOUNT}?Attribution_Source=a=b")),
        account().source("a=b")
    );
}

#[test]
fn plus_is_a_space_and_escapes_are_decoded() {
    assert_eq!(
        list(&format!("{ACCOUNT}?Attribution_Source=a+b,c%2Bd,%41%c3%a9")),
        account().source("Aé").source("a b").source("c+d")
    );
}

#[test]
fn names_are_decoded_too() {
    assert_eq!(
        list(&format!("{ACCOUNT}?Date%5FFrom=5")),
        account().date_from(5)
    );
    let e = error(&format!("{ACCOUNT}?Results+Count=1"));
    assert_eq!(e.code, ErrorCode::UnknownParameter);
    assert!(e.message.contains("\"Results Count\""), "{e:?}");
}

#[test]
fn malformed_escapes_are_kept() {
    assert_eq!(
        list(&format!("{ACCOUNT}?Attribution_Campaign=50%zz,100%,%4")),
        account().campaign("%4").campaign("100%").campaign("50%zz")
    );
}

#[test]
fn invalid_utf8_in_a_value_is_an_invalid_parameter() {
    let e = error(&format!("{ACCOUNT}?Attribution_Source=a%FFb"));
    assert_eq!(e.code, ErrorCode::InvalidParameter);
    assert!(e.message.contains("Attribution_Source"), "{e:?}");
    assert!(e.message.contains("a%FFb"), "{e:?}");
    assert_eq!(
        code(&format!("{ACCOUNT}?To=%C3")),
        ErrorCode::InvalidParameter
    );
}

#[test]
fn invalid_utf8_in_a_name_is_an_unknown_parameter() {
    let e = error(&format!("{ACCOUNT}?To%FF=1"));
    assert_eq!(e.code, ErrorCode::UnknownParameter);
    assert!(e.message.contains("To%FF"), "{e:?}");
}

#[test]
fn names_match_in_any_case() {
    assert_eq!(
        list(&format!(
            "{ACCOUNT}?date_from=1&DATE_TO=9&disposition=Busy&tO=1&endPOINT=2\
             &attribution_source=s&ATTRIBUTION_MEDIUM=m&Attribution_campaign=c\
             &attribution_Content=t&PROMPTS_KEYS=1&uNiQuE=Unique\
             &results_count=3&RESULTS_SKIP=4"
        )),
        account()
            .date_from(1)
            .date_to(9)
            .disposition(Disposition::Busy)
            .to("+1")
            .endpoint("+2")
            .source("s")
            .medium("m")
            .campaign("c")
            .content("t")
            .prompts("1")
            .unique(UniqueFilter::Unique)
            .count(3)
            .skip(4)
    );
    // The API itself writes both spellings.
    assert_eq!(
        list(&format!("{ACCOUNT}?Prompts_Keys=1")),
        list(&format!("{ACCOUNT}?Prompts_keys=1"))
    );
}

#[test]
fn an_unknown_name_is_an_unknown_parameter() {
    for name in [
        "Foo",
        "Date",
        "CallSid",
        "Date_From ",
        " To",
        "",
        "Results_Counts",
    ] {
        let e = error(&format!("{ACCOUNT}?{name}=7"));
        assert_eq!(e.code, ErrorCode::UnknownParameter, "{name:?}");
        assert_eq!(e.status(), 400);
        assert!(e.message.contains(&format!("{name:?}")), "{e:?}");
        assert!(e.message.contains("\"7\""), "{e:?}");
    }
    assert_eq!(code(&format!("{ACCOUNT}?=")), ErrorCode::UnknownParameter);
    assert_eq!(code(&format!("{ACCOUNT}?Foo")), ErrorCode::UnknownParameter);
}

#[test]
fn a_name_given_twice_is_a_duplicate_parameter() {
    for qs in [
        "Date_From=1&Date_From=1",
        "Date_From=1&date_from=2",
        "To=&TO=",
        "Unique=All&Results_Count=1&UNIQUE=",
        "Prompts_keys=1&Prompts_Keys=2",
        "Disposition=Busy&Disposition=Busy",
    ] {
        let e = error(&format!("{ACCOUNT}?{qs}"));
        assert_eq!(e.code, ErrorCode::DuplicateParameter, "{qs:?}");
        assert_eq!(e.status(), 400);
    }
    let e = error(&format!("{ACCOUNT}?To=1&to=2"));
    assert!(
        e.message.contains("To") && e.message.contains("\"2\""),
        "{e:?}"
    );
}

#[test]
fn pairs_are_checked_left_to_right_and_the_first_problem_wins() {
    assert_eq!(
        code(&format!("{ACCOUNT}?Foo=1&Date_From=x")),
        ErrorCode::UnknownParameter
    );
    assert_eq!(
        code(&format!("{ACCOUNT}?Date_From=x&Foo=1")),
        ErrorCode::InvalidParameter
    );
    assert_eq!(
        code(&format!("{ACCOUNT}?To=1&Foo=1&To=2")),
        ErrorCode::UnknownParameter
    );
    assert_eq!(
        code(&format!("{ACCOUNT}?To=1&To=2&Foo=1")),
        ErrorCode::DuplicateParameter
    );
    // A duplicate is found before its value is read.
    assert_eq!(
        code(&format!("{ACCOUNT}?Date_From=1&Date_From=x")),
        ErrorCode::DuplicateParameter
    );
    assert_eq!(
        code(&format!("{ACCOUNT}?Prompts_keys=1,,2&Foo=1")),
        ErrorCode::InvalidParameter
    );
    // Date_From > Date_To is checked once every pair is read.
    assert_eq!(
        code(&format!("{ACCOUNT}?Date_From=5&Date_To=3&Foo=1")),
        ErrorCode::UnknownParameter
    );
}

#[test]
fn the_single_call_request_takes_no_parameters() {
    for qs in [
        "Foo=1",
        "Foo",
        "Date_From=1",
        "Date_From=",
        "Results_Count=x",
        "=",
        "%FF=%FF",
        "&&To=1&To=2",
    ] {
        let e = error(&format!("/v2/Calls/CA1?{qs}"));
        assert_eq!(e.code, ErrorCode::InvalidParameter, "{qs:?}");
        assert!(e.message.contains("no parameters"), "{e:?}");
    }
    let e = error("/v2/Calls/CA1?Disposition=Busy");
    assert!(e.message.contains("Disposition") && e.message.contains("\"Busy\""));
    assert_eq!(
        parse_request("/v2/Calls/CA1?&&"),
        Ok(Request::Call("CA1".into()))
    );
}

// ---- values ----

#[test]
fn values_are_trimmed_and_an_empty_value_is_not_given() {
    assert_eq!(
        list(&format!(
            "{ACCOUNT}?Date_From=+&Date_To=%20&Disposition=&To=+&Endpoint=%09\
             &Attribution_Source=&Attribution_Medium=&Attribution_Campaign=\
             &Attribution_Content=&Prompts_keys=&Unique=&Results_Count=&Results_Skip=+"
        )),
        account()
    );
    assert_eq!(
        list(&format!("{ACCOUNT}?Results_Count=+12+&Unique=%20repeat%0A")),
        account().count(12).unique(UniqueFilter::Repeat)
    );
    assert_eq!(account().results_count, DEFAULT_COUNT);
}

#[test]
fn list_items_are_trimmed_and_empty_items_dropped() {
    assert_eq!(
        list(&format!(
            "{ACCOUNT}?Attribution_Medium=,+cpc+,,email,&Disposition=,+,&To=+,"
        )),
        account().medium("cpc").medium("email")
    );
    assert_eq!(
        list(&format!("{ACCOUNT}?Prompts_keys=;+;;")),
        account(),
        "a Prompts_keys list with no path is not given"
    );
}

#[test]
fn times_are_digits_up_to_u32_max() {
    assert_eq!(
        list(&format!("{ACCOUNT}?Date_From=0&Date_To=4294967295")),
        account().date_from(0).date_to(u32::MAX)
    );
    assert_eq!(
        list(&format!("{ACCOUNT}?Date_From=007")),
        account().date_from(7)
    );
    // In a query string `+` is a space, so `+5` is ` 5`; a real plus is `%2B`.
    assert_eq!(list(&format!("{ACCOUNT}?Date_To=+5")), account().date_to(5));
    for bad in [
        "%2B5",
        "-1",
        "1.0",
        "1e3",
        "1+2",
        "1%202",
        "4294967296",
        "99999999999999999999",
        "x",
        "0x10",
        "%D9%A1",
        "1,2",
    ] {
        for name in ["Date_From", "Date_To"] {
            let e = error(&format!("{ACCOUNT}?{name}={bad}"));
            assert_eq!(e.code, ErrorCode::InvalidParameter, "{name}={bad}");
            assert!(e.message.contains(name), "{e:?}");
        }
    }
    let e = error(&format!("{ACCOUNT}?Date_From=1e3"));
    assert!(e.message.contains("\"1e3\""), "{e:?}");
}

#[test]
fn counts_are_digits_up_to_u32_max() {
    assert_eq!(
        list(&format!(
            "{ACCOUNT}?Results_Count=0&Results_Skip=4294967295"
        )),
        account().count(0).skip(u32::MAX)
    );
    assert_eq!(
        list(&format!("{ACCOUNT}?Results_Skip=0010")),
        account().skip(10)
    );
    for bad in [
        "%2B5",
        "-1",
        "1.0",
        "1e3",
        "1+2",
        "4294967296",
        "ten",
        "%EF%BC%91",
    ] {
        for name in ["Results_Count", "Results_Skip"] {
            let e = error(&format!("{ACCOUNT}?{name}={bad}"));
            assert_eq!(e.code, ErrorCode::InvalidParameter, "{name}={bad}");
            assert!(e.message.contains(name), "{e:?}");
        }
    }
}

#[test]
fn dispositions_in_any_case() {
    assert_eq!(
        list(&format!(
            "{ACCOUNT}?Disposition=answered,+ivr+,BUSY,noanswer,Failed,Busy"
        )),
        account()
            .disposition(Disposition::Answered)
            .disposition(Disposition::IVR)
            .disposition(Disposition::Busy)
            .disposition(Disposition::NoAnswer)
            .disposition(Disposition::Failed)
    );
    let e = error(&format!("{ACCOUNT}?Disposition=Busy,No+Answer"));
    assert_eq!(e.code, ErrorCode::InvalidParameter);
    assert!(e.message.contains("Disposition"), "{e:?}");
    assert!(e.message.contains("\"No Answer\""), "{e:?}");
}

#[test]
fn unique_values_in_any_case() {
    for (text, unique) in [
        ("all", UniqueFilter::All),
        ("UNIQUE", UniqueFilter::Unique),
        ("Repeat", UniqueFilter::Repeat),
    ] {
        assert_eq!(
            list(&format!("{ACCOUNT}?Unique={text}")),
            account().unique(unique)
        );
    }
    for bad in ["Sometimes", "All,Unique", "Repeats", "1"] {
        let e = error(&format!("{ACCOUNT}?Unique={bad}"));
        assert_eq!(e.code, ErrorCode::InvalidParameter, "{bad}");
        assert!(
            e.message.contains("Unique") && e.message.contains(&format!("{bad:?}")),
            "{e:?}"
        );
    }
}

#[test]
fn prompts_keys_are_paths_of_keys() {
    assert_eq!(
        list(&format!("{ACCOUNT}?Prompts_keys=1,2;3+,+5+;;+;1,2;%23,*")),
        account().prompts("#,*").prompts("1,2").prompts("3,5")
    );
    for bad in ["1,,2", "1,", ",1", "3;1,+,2", ","] {
        let e = error(&format!("{ACCOUNT}?Prompts_keys={bad}"));
        assert_eq!(e.code, ErrorCode::InvalidParameter, "{bad}");
        assert!(e.message.contains("Prompts_keys"), "{e:?}");
    }
    let e = error(&format!("{ACCOUNT}?Prompts_keys=4;1,,2"));
    assert!(e.message.contains("\"1,,2\""), "{e:?}");
}

#[test]
fn to_and_endpoint_are_phone_normalized() {
    let q = list(&format!(
        "{ACCOUNT}?To=61+2+9999-0000,+(02)+9999.0000,sip:desk&Endpoint=%2B1+555+0100,%2B15550100"
    ));
    assert_eq!(q.to, vec!["+0299990000", "+61299990000", "sip:desk"]);
    assert_eq!(q.endpoint, vec!["+15550100"]);
}

#[test]
fn attribution_values_are_exact_and_case_sensitive() {
    let q = list(&format!(
        "{ACCOUNT}?Attribution_Source=Google,google,+GOOGLE+&Attribution_Content=a+%2B+b"
    ));
    assert_eq!(q.attribution_source, vec!["GOOGLE", "Google", "google"]);
    assert_eq!(q.attribution_content, vec!["a + b"]);
}

#[test]
fn date_from_may_not_be_later_than_date_to() {
    assert_eq!(
        list(&format!("{ACCOUNT}?Date_From=5&Date_To=5")),
        account().date_from(5).date_to(5)
    );
    for qs in ["Date_From=6&Date_To=5", "Date_To=5&Date_From=6"] {
        let e = error(&format!("{ACCOUNT}?{qs}"));
        assert_eq!(e.code, ErrorCode::InvalidParameter, "{qs}");
        assert!(e.message.contains("Date_From") && e.message.contains("\"6\""));
    }
}

#[test]
fn the_parsed_query_is_already_normalized() {
    let q = list(&format!(
        "{ACCOUNT}?To=2,1,2&Disposition=Failed,Answered,failed&Prompts_keys=2;1+,+3;2"
    ));
    assert_eq!(q.normalized(), Ok(q.clone()));
    assert_eq!(q.to, vec!["+1", "+2"]);
    assert_eq!(
        q.dispositions,
        vec![Disposition::Answered, Disposition::Failed]
    );
    assert_eq!(q.prompts_keys, vec!["1,3", "2"]);
}

// ---- property tests ----

/// The table of SPEC §2, in a fixed order that the generators index.
const NAMES: [&str; 13] = [
    "Date_From",
    "Date_To",
    "Disposition",
    "To",
    "Endpoint",
    "Attribution_Source",
    "Attribution_Medium",
    "Attribution_Campaign",
    "Attribution_Content",
    "Prompts_keys",
    "Unique",
    "Results_Count",
    "Results_Skip",
];

/// What a valid parameter value means, in the form a normalized query holds it.
#[derive(Clone, Debug)]
enum Meaning {
    /// An empty value, or a list with no item: not given.
    Nothing,
    Number(u32),
    Dispositions(BTreeSet<Disposition>),
    /// To, Endpoint, the attribution lists and Prompts_keys: sorted, deduplicated strings.
    Strings(BTreeSet<String>),
    Unique(UniqueFilter),
}

/// One pair of a generated query string.
#[derive(Clone, Debug)]
enum Pair {
    /// A parameter of the table (by index) with a valid decoded value and its meaning.
    Valid(usize, String, Meaning),
    /// A name that is not in the table.
    Unknown(String, String),
    /// A parameter of the table with a value it refuses.
    Invalid(usize, String),
}

/// The expected outcome of a list request: the first problem's code, or the query.
fn model(mut query: Query, pairs: &[Pair]) -> Result<Query, ErrorCode> {
    let mut seen = [false; 13];
    for pair in pairs {
        match pair {
            Pair::Unknown(..) => return Err(ErrorCode::UnknownParameter),
            Pair::Invalid(i, _) | Pair::Valid(i, ..) if seen[*i] => {
                return Err(ErrorCode::DuplicateParameter);
            }
            Pair::Invalid(..) => return Err(ErrorCode::InvalidParameter),
            Pair::Valid(i, _, meaning) => {
                seen[*i] = true;
                set(&mut query, *i, meaning);
            }
        }
    }
    if let (Some(from), Some(to)) = (query.date_from, query.date_to) {
        if from > to {
            return Err(ErrorCode::InvalidParameter);
        }
    }
    Ok(query)
}

fn set(q: &mut Query, i: usize, meaning: &Meaning) {
    let strings = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>();
    match (i, meaning) {
        (_, Meaning::Nothing) => {}
        (0, Meaning::Number(n)) => q.date_from = Some(*n),
        (1, Meaning::Number(n)) => q.date_to = Some(*n),
        (2, Meaning::Dispositions(d)) => q.dispositions = d.iter().copied().collect(),
        (3, Meaning::Strings(s)) => q.to = strings(s),
        (4, Meaning::Strings(s)) => q.endpoint = strings(s),
        (5, Meaning::Strings(s)) => q.attribution_source = strings(s),
        (6, Meaning::Strings(s)) => q.attribution_medium = strings(s),
        (7, Meaning::Strings(s)) => q.attribution_campaign = strings(s),
        (8, Meaning::Strings(s)) => q.attribution_content = strings(s),
        (9, Meaning::Strings(s)) => q.prompts_keys = strings(s),
        (10, Meaning::Unique(u)) => q.unique = *u,
        (11, Meaning::Number(n)) => q.results_count = *n,
        (12, Meaning::Number(n)) => q.results_skip = *n,
        other => unreachable!("generator mismatch {other:?}"),
    }
}

/// White space that `str::trim` removes, as padding.
fn pad() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec![" ", "\t", "\n", "\u{a0}"]), 0..2)
        .prop_map(|v| v.concat())
}

/// Flips the ASCII case of some letters.
fn mangle_case(text: &str, seed: u64) -> String {
    text.chars()
        .enumerate()
        .map(|(i, c)| {
            if seed >> (i % 64) & 1 == 1 {
                if c.is_ascii_lowercase() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            } else {
                c
            }
        })
        .collect()
}

/// A list value: the items padded, joined by `sep`, with empty items here and there.
fn join_items(items: Vec<(String, String, String)>, sep: &str, empties: u8) -> String {
    let mut out = String::new();
    for (k, (before, item, after)) in items.into_iter().enumerate() {
        if k > 0 {
            out.push_str(sep);
        }
        if empties >> (k % 8) & 1 == 1 {
            out.push_str(sep);
            out.push(' ');
            out.push_str(sep);
        }
        out.push_str(&before);
        out.push_str(&item);
        out.push_str(&after);
    }
    out
}

/// A valid decoded value of parameter `i`, with its meaning.
fn valid_value(i: usize) -> BoxedStrategy<(String, Meaning)> {
    // A list with no item is not given too; a `,` inside a Prompts_keys path is not a list.
    let no_items = match i {
        2..=8 => " , ,",
        9 => " ; ;",
        _ => "",
    };
    let nothing = prop_oneof![
        pad().prop_map(|p| (p, Meaning::Nothing)),
        Just((no_items.to_string(), Meaning::Nothing)),
    ];
    let valid = match i {
        0 | 1 | 11 | 12 => (any::<u32>(), 0..3usize, pad(), pad())
            .prop_map(|(n, zeros, a, b)| {
                (
                    format!("{a}{}{n}{b}", "0".repeat(zeros)),
                    Meaning::Number(n),
                )
            })
            .boxed(),
        2 => (
            prop::collection::vec(
                (
                    pad(),
                    prop::sample::select(Disposition::ALL.to_vec()),
                    any::<u64>(),
                    pad(),
                ),
                1..4,
            ),
            any::<u8>(),
        )
            .prop_map(|(items, empties)| {
                let set = items.iter().map(|(_, d, ..)| *d).collect();
                let items = items
                    .into_iter()
                    .map(|(a, d, seed, b)| (a, mangle_case(d.as_str(), seed), b))
                    .collect();
                (join_items(items, ",", empties), Meaning::Dispositions(set))
            })
            .boxed(),
        3 | 4 => (
            prop::collection::vec(
                (
                    pad(),
                    prop_oneof![
                        // A number with the punctuation people type.
                        "[0-9]{1,4}([ .()+-]{0,2}[0-9]{1,4}){0,3}",
                        // Anything else stays as it is.
                        "[a-z]{1,4}:[a-z0-9@.]{1,6}",
                    ],
                    pad(),
                ),
                1..4,
            ),
            any::<u8>(),
        )
            .prop_map(|(items, empties)| {
                let set = items.iter().map(|(_, n, _)| phone(n)).collect();
                (join_items(items, ",", empties), Meaning::Strings(set))
            })
            .boxed(),
        5..=8 => (
            prop::collection::vec(
                (
                    pad(),
                    "[A-Za-z0-9_./?#=&+%é;-][A-Za-z0-9 _./?#=&+%é;-]{0,6}",
                    pad(),
                ),
                1..4,
            ),
            any::<u8>(),
        )
            .prop_map(|(items, empties)| {
                let set = items.iter().map(|(_, s, _)| s.trim().to_string()).collect();
                (join_items(items, ",", empties), Meaning::Strings(set))
            })
            .boxed(),
        9 => (
            prop::collection::vec(
                (
                    pad(),
                    prop::collection::vec((pad(), "[0-9*#]{1,2}", pad()), 1..4),
                    pad(),
                ),
                1..4,
            ),
            any::<u8>(),
        )
            .prop_map(|(paths, empties)| {
                let set = paths
                    .iter()
                    .map(|(_, keys, _)| {
                        keys.iter()
                            .map(|(_, k, _)| k.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .collect();
                let paths = paths
                    .into_iter()
                    .map(|(a, keys, b)| (a, join_items(keys, ",", 0), b))
                    .collect();
                (join_items(paths, ";", empties), Meaning::Strings(set))
            })
            .boxed(),
        10 => (
            pad(),
            prop::sample::select(vec![
                UniqueFilter::All,
                UniqueFilter::Unique,
                UniqueFilter::Repeat,
            ]),
            any::<u64>(),
            pad(),
        )
            .prop_map(|(a, u, seed, b)| {
                (
                    format!("{a}{}{b}", mangle_case(u.as_str(), seed)),
                    Meaning::Unique(u),
                )
            })
            .boxed(),
        _ => unreachable!(),
    };
    prop_oneof![1 => nothing, 6 => valid].boxed()
}

/// The expected normalized form of a generated number (digits and `+-(). `) or other string.
fn phone(text: &str) -> String {
    let t = text.trim();
    if t.contains(':') {
        t.to_string()
    } else {
        format!(
            "+{}",
            t.chars().filter(char::is_ascii_digit).collect::<String>()
        )
    }
}

/// A value parameter `i` refuses (already decoded, except for invalid UTF-8, given raw).
fn invalid_value(i: usize) -> BoxedStrategy<String> {
    let numbers = vec![
        "-1",
        "+5",
        "1.0",
        "1e3",
        "1 2",
        "4294967296",
        "18446744073709551616",
        "x",
        "1,2",
    ];
    let base: Vec<&str> = match i {
        0 | 1 | 11 | 12 => numbers,
        2 => vec!["Answered,Nope", "No Answer", "answered;busy", "Busy,1"],
        9 => vec!["1,,2", "1,", ",1", "2;3, ,4"],
        10 => vec!["Sometimes", "All,Unique", "uniques"],
        // To, Endpoint and the attributions take any text: only bad UTF-8 is refused.
        _ => vec![],
    };
    let base: Vec<String> = base.into_iter().map(String::from).collect();
    let utf8 = prop::sample::select(vec![RAW_FF.to_string(), RAW_C3.to_string()]);
    if base.is_empty() {
        utf8.boxed()
    } else {
        prop_oneof![4 => prop::sample::select(base), 1 => utf8].boxed()
    }
}

/// Markers for values whose encoding holds bytes that are not UTF-8.
const RAW_FF: &str = "\u{0}FF";
const RAW_C3: &str = "\u{0}C3";

/// Form-encodes `text`: bytes that must be escaped always are, others by the bits of `seed`;
/// a space is `+`, `%20` or itself.
fn encode(text: &str, seed: u64) -> String {
    if text == RAW_FF {
        return "a%FFb".to_string();
    }
    if text == RAW_C3 {
        return "%C3".to_string();
    }
    let mut out = String::new();
    for (k, c) in text.chars().enumerate() {
        let bit = seed >> (k % 64) & 1 == 1;
        let must = matches!(c, '&' | '=' | '+' | '%');
        if c == ' ' && !bit {
            out.push('+');
        } else if must || bit {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                if seed >> ((k + 7) % 64) & 1 == 1 {
                    out.push_str(&format!("%{b:02x}"));
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Percent-encodes a SID for a path: `/`, `?` and `%` always, others by the bits of `seed`.
fn encode_sid(sid: &str, seed: u64) -> String {
    let mut out = String::new();
    for (k, c) in sid.chars().enumerate() {
        if matches!(c, '/' | '?' | '%') || seed >> (k % 64) & 1 == 1 {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn pair_strategy() -> impl Strategy<Value = Pair> {
    let valid = (0..13usize).prop_flat_map(|i| {
        valid_value(i).prop_map(move |(text, meaning)| Pair::Valid(i, text, meaning))
    });
    let invalid =
        (0..13usize).prop_flat_map(|i| invalid_value(i).prop_map(move |v| Pair::Invalid(i, v)));
    let unknown = (
        "[A-Za-z_ ]{0,14}".prop_filter("a known name", |n| {
            !NAMES.iter().any(|k| k.eq_ignore_ascii_case(n))
        }),
        "[a-z0-9]{0,3}",
    )
        .prop_map(|(n, v)| Pair::Unknown(n, v));
    prop_oneof![8 => valid, 1 => invalid, 1 => unknown]
}

/// The text of one pair: the name in some case, both parts form-encoded.
fn pair_text(pair: &Pair, seed: u64) -> String {
    let (name, value) = match pair {
        Pair::Valid(i, v, _) => (mangle_case(NAMES[*i], seed), v.as_str()),
        Pair::Invalid(i, v) => (mangle_case(NAMES[*i], seed), v.as_str()),
        Pair::Unknown(n, v) => (n.clone(), v.as_str()),
    };
    let name = encode(&name, seed.rotate_left(17) & 0x0101_0101);
    let value = encode(value, seed.rotate_left(31));
    // A pair with neither name nor value would be an empty pair, skipped: keep its `=`.
    if value.is_empty() && !name.is_empty() && seed & 0x100 != 0 {
        name
    } else {
        format!("{name}={value}")
    }
}

/// The list path of a scope, its words in some case, maybe with a trailing `/`.
fn scope_path(property: bool, sid: &str, seed: u64) -> String {
    let kind = if property { "Properties" } else { "Accounts" };
    let slash = if seed & 1 == 1 { "/" } else { "" };
    format!(
        "/{}/{}/{}/{}{slash}",
        mangle_case("v2", seed >> 1),
        mangle_case(kind, seed >> 3),
        encode_sid(sid, seed >> 13),
        mangle_case("Calls", seed >> 40)
    )
}

fn query_text(path: &str, pairs: &[Pair], seeds: &[u64], extra_amps: u8) -> String {
    let mut text = path.to_string();
    text.push('?');
    for (k, pair) in pairs.iter().enumerate() {
        if k > 0 {
            text.push('&');
        }
        if extra_amps >> (k % 8) & 1 == 1 {
            text.push('&');
        }
        text.push_str(&pair_text(pair, seeds.get(k).copied().unwrap_or(0)));
    }
    text
}

const SID: &str = "[A-Za-z0-9 é%/?&#+=-]{1,10}";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any text: no panic, and any error is one of the four codes with a message.
    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check_outcome(&text);
    }

    /// Text assembled from the pieces the parser looks for.
    #[test]
    fn assembled_text_never_panics(pieces in prop::collection::vec(prop::sample::select(vec![
        "/", "v2", "V2", "Calls", "calls", "Accounts", "Properties", "AC1", "?", "&", "=", "%",
        "%2F", "%FF", "%C3", "%c3%a9", "+", "Date_From", "Date_To", "Results_Count", "Unique",
        "Prompts_keys", "Disposition", "To", "1", "4294967296", "é", " ", ";", ",", "#", "-",
        "\u{0}", "%%", "%2", "\u{10FFFF}",
    ]), 0..24)) {
        check_outcome(&pieces.concat());
    }

    /// Only valid parameters, each at most once, in any order: the query the model expects
    /// (or `Date_From > Date_To`).
    #[test]
    fn valid_parameters_give_the_expected_query(
        property in any::<bool>(),
        sid in SID,
        path_seed in any::<u64>(),
        chosen in prop::sample::subsequence((0..13usize).collect::<Vec<_>>(), 0..=13)
            .prop_shuffle()
            .prop_flat_map(|order| {
                order.into_iter()
                    .map(|i| valid_value(i).prop_map(move |(t, m)| Pair::Valid(i, t, m)))
                    .collect::<Vec<_>>()
            }),
        seeds in prop::collection::vec(any::<u64>(), 13),
        extra_amps in any::<u8>(),
    ) {
        let path = scope_path(property, &sid, path_seed);
        let text = query_text(&path, &chosen, &seeds, extra_amps);
        let base = if property { Query::property(sid) } else { Query::account(sid) };
        let expected = model(base, &chosen);
        let got = parse_request(&text);
        match (&expected, &got) {
            (Ok(q), Ok(Request::List(got))) => prop_assert_eq!(q, got, "{}", text),
            (Err(code), Err(e)) => prop_assert_eq!(*code, e.code, "{}: {:?}", text, e),
            _ => prop_assert!(false, "{text:?}: expected {expected:?}, got {got:?}"),
        }
    }

    /// Any mix of valid, invalid, unknown and repeated parameters: the first problem's code,
    /// or the expected query; on the single-call path, any parameter is refused.
    #[test]
    fn mixed_parameters_give_the_first_problem(
        property in any::<bool>(),
        single in prop::bool::weighted(0.15),
        sid in SID,
        path_seed in any::<u64>(),
        pairs in prop::collection::vec(pair_strategy(), 0..8),
        seeds in prop::collection::vec(any::<u64>(), 8),
        extra_amps in any::<u8>(),
    ) {
        let path = if single {
            format!("/v2/Calls/{}", encode_sid(&sid, path_seed))
        } else {
            scope_path(property, &sid, path_seed)
        };
        let text = query_text(&path, &pairs, &seeds, extra_amps);
        let got = parse_request(&text);
        if single {
            if pairs.is_empty() {
                prop_assert_eq!(got, Ok(Request::Call(sid)));
            } else {
                prop_assert_eq!(got.map_err(|e| e.code), Err(ErrorCode::InvalidParameter));
            }
            return Ok(());
        }
        let base = if property { Query::property(sid) } else { Query::account(sid) };
        let expected = model(base, &pairs);
        match (&expected, &got) {
            (Ok(q), Ok(Request::List(got))) => prop_assert_eq!(q, got, "{}", text),
            (Err(code), Err(e)) => prop_assert_eq!(*code, e.code, "{}: {:?}", text, e),
            _ => prop_assert!(false, "{text:?}: expected {expected:?}, got {got:?}"),
        }
    }
}

fn check_outcome(text: &str) {
    match parse_request(text) {
        Ok(Request::Call(sid)) => assert!(!sid.is_empty()),
        Ok(Request::List(q)) => assert_eq!(q.normalized().as_ref(), Ok(&q)),
        Err(e) => {
            assert!(
                matches!(
                    e.code,
                    ErrorCode::InvalidParameter
                        | ErrorCode::UnknownParameter
                        | ErrorCode::DuplicateParameter
                        | ErrorCode::NotFound
                ),
                "{e:?}"
            );
            assert!(!e.message.is_empty());
        }
    }
}
