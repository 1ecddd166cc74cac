//! `Call::from_json` and `Call::normalize` against the implementation they replaced
//! ([`oracle`]): the same call, or the same error (variant and text), for generator records and
//! for those records mutated every way that matters to a parser (fields dropped, repeated,
//! unknown, renamed, reordered; values of every JSON type and of edge values; whitespace; escapes;
//! truncation; trailing garbage; stray characters).
//!
//! `PROPTEST_CASES` sets the number of cases (default 5,000 for `from_json`, 2,000 for
//! `normalize`).

use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::sample::{Index, select};

use super::super::{Call, Disposition, Field, TrafficType};
use super::{from_plain_json, oracle, string_len};
use crate::generate::{GenerateOptions, Generator, call_to_ingest_json};

/// Generator records as (key, value) pairs of JSON text, in their order.
fn records() -> &'static [Vec<(String, String)>] {
    static RECORDS: OnceLock<Vec<Vec<(String, String)>>> = OnceLock::new();
    RECORDS.get_or_init(|| {
        let options = GenerateOptions {
            calls: 400,
            seed: 11,
            accounts: 30,
        };
        Generator::new(&options)
            .map(|call| {
                let line = call_to_ingest_json(&call);
                let object: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&line).expect("a generator record");
                // serde_json's Map keeps keys sorted (no preserve_order): put them back in the
                // record's order, AccountSid then the response fields.
                std::iter::once(Field::AccountSid)
                    .chain(Field::RESPONSE)
                    .map(|f| {
                        let value = object.get(f.name()).expect("every field is written");
                        (json(f.name()), value.to_string())
                    })
                    .collect()
            })
            .collect()
    })
}

/// `text` as a JSON string.
fn json(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// Values of every JSON type, edge values of each field, escapes, and texts that are not JSON.
const VALUES: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "7",
    "-1",
    "1.5",
    "1e3",
    "1E3",
    "0.0",
    "01",
    "-",
    "+1",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "1e999",
    "-1e999",
    "[]",
    "[1,\"a\",null]",
    "[1e999]",
    "[1,]",
    "{}",
    "{\"a\":1}",
    "{\"a\":[{}],\"a\":2}",
    "{\"a\"}",
    "\"\"",
    "\"  \"",
    "\" x \"",
    "\"\\u00e9\"",
    "\"é\"",
    "\"\\\"q\\\"\"",
    "\"\\n\"",
    "\"a\\tb\"",
    "\"a\tb\"",
    "\"\\ud800\"",
    "\"\\ud83d\\ude00\"",
    "\"\\u0041nswered\"",
    "\"\\x\"",
    "\"\u{7f}\"",
    "\"\u{a0}Busy\u{a0}\"",
    "\"\u{2003}\"",
    "\"answered\"",
    "\" IVR \"",
    "\"NOANSWER\"",
    "\"Bogus\"",
    "\"campaign\"",
    "\" Direct\"",
    "\"1700000000\"",
    "\" 1700000000 \"",
    "\"0017\"",
    "\"17e8\"",
    "\"-5\"",
    "\"4294967296\"",
    "\"+1 (555) 010-0000\"",
    "\" +61 2 9999 0000 \"",
    "\"+-\"",
    "\"anonymous\"",
    "\"sip:alice\"",
    "\"1,,2\"",
    "\" 1 , 2 \"",
    "\"1,\"",
    "\"1,2\"",
    "\"\\u0000\"",
    "\"unterminated",
    "nul",
    "tru",
    "NaN",
    "",
];

/// Key texts: misspellings, other cases, escapes (`\u0041ccountSid` is `AccountSid`), not JSON.
const KEYS: &[&str] = &[
    "\"Colour\"",
    "\"accountsid\"",
    "\"Prompts_keys\"",
    "\"Date_Start \"",
    "\"\"",
    "\"\\u0041ccountSid\"",
    "\"Dispositio\\u006e\"",
    "\"From\\\"\"",
    "\"To\\u0000\"",
    "\"\\ud800\"",
    "Notes",
    "1",
    "\"Notes",
];

/// What the text between tokens may be: JSON whitespace of each kind, or nothing.
const SPACES: &[&str] = &["", "", "", "", " ", "\n", "\t", "\r\n ", "  "];

/// Text added at the end, or put somewhere in the line.
const GARBAGE: &[&str] = &[
    " ", "\n", "x", "}", ",", "{}", "\"", "\\", "0", "é", "\u{1}", "\u{feff}", ":", "[", "null",
];

#[derive(Clone, Debug)]
enum Mutation {
    Drop(Index),
    Duplicate(Index, Index),
    Unknown(Index, &'static str, &'static str),
    Rename(Index, &'static str),
    Value(Index, &'static str),
    ValueOf(Index, Index),
    Swap(Index, Index),
    Empty,
}

#[derive(Clone, Debug)]
enum Damage {
    Truncate(Index),
    Append(&'static str),
    Insert(Index, &'static str),
    Remove(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => any::<Index>().prop_map(Mutation::Drop),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Duplicate(a, b)),
        2 => (any::<Index>(), select(KEYS), select(VALUES))
            .prop_map(|(a, k, v)| Mutation::Unknown(a, k, v)),
        2 => (any::<Index>(), select(KEYS)).prop_map(|(a, k)| Mutation::Rename(a, k)),
        6 => (any::<Index>(), select(VALUES)).prop_map(|(a, v)| Mutation::Value(a, v)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::ValueOf(a, b)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        1 => Just(Mutation::Empty),
    ]
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<Index>().prop_map(Damage::Truncate),
        select(GARBAGE).prop_map(Damage::Append),
        (any::<Index>(), select(GARBAGE)).prop_map(|(a, g)| Damage::Insert(a, g)),
        any::<Index>().prop_map(Damage::Remove),
    ]
}

fn mutate(fields: &mut Vec<(String, String)>, mutation: &Mutation) {
    let len = fields.len();
    match mutation {
        Mutation::Empty => fields.clear(),
        _ if len == 0 => {}
        Mutation::Drop(i) => {
            fields.remove(i.index(len));
        }
        Mutation::Duplicate(i, at) => {
            let field = fields[i.index(len)].clone();
            fields.insert(at.index(len + 1), field);
        }
        Mutation::Unknown(at, key, value) => {
            fields.insert(at.index(len + 1), (key.to_string(), value.to_string()));
        }
        Mutation::Rename(i, key) => fields[i.index(len)].0 = key.to_string(),
        Mutation::Value(i, value) => fields[i.index(len)].1 = value.to_string(),
        Mutation::ValueOf(i, from) => fields[i.index(len)].1 = fields[from.index(len)].1.clone(),
        Mutation::Swap(a, b) => fields.swap(a.index(len), b.index(len)),
    }
}

/// The object's text, with `spaces` (cycled) between its tokens.
fn render(fields: &[(String, String)], spaces: &[&str]) -> String {
    let mut spaces = spaces.iter().cycle();
    let mut space = || *spaces.next().unwrap_or(&"");
    let mut out = String::new();
    out.push_str(space());
    out.push('{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(space());
        out.push_str(key);
        out.push_str(space());
        out.push(':');
        out.push_str(space());
        out.push_str(value);
        out.push_str(space());
    }
    out.push('}');
    out.push_str(space());
    out
}

/// The char boundary at or before `index.index(len + 1)`.
fn boundary(text: &str, index: &Index) -> usize {
    let mut at = index.index(text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn spoil(text: &mut String, damage: &Damage) {
    match damage {
        Damage::Truncate(at) => text.truncate(boundary(text, at)),
        Damage::Append(garbage) => text.push_str(garbage),
        Damage::Insert(at, garbage) => text.insert_str(boundary(text, at), garbage),
        Damage::Remove(at) => {
            let at = boundary(text, at);
            if at < text.len() {
                text.remove(at);
            }
        }
    }
}

/// Checks one text: the same result as the oracle, from `Call::from_json` and from the fast path
/// alone when it takes the text.
fn check(text: &str) -> Result<(), TestCaseError> {
    let expected = oracle::from_json(text);
    let got = Call::from_json(text);
    prop_assert_eq!(&got, &expected, "text: {:?}", text);
    if let Some(mut call) = from_plain_json(text) {
        let fast = call.normalize().map(|()| call);
        prop_assert_eq!(&fast, &expected, "fast path, text: {:?}", text);
    }
    Ok(())
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(5000)))]

    #[test]
    fn from_json_matches_the_old_parser(
        record in any::<Index>(),
        mutations in prop::collection::vec(mutation(), 0..4),
        spaces in prop::collection::vec(select(SPACES), 1..8),
        damage in prop::option::weighted(0.25, damage()),
    ) {
        let records = records();
        let mut fields = records[record.index(records.len())].clone();
        for m in &mutations {
            mutate(&mut fields, m);
        }
        let mut text = render(&fields, &spaces);
        if let Some(d) = &damage {
            spoil(&mut text, d);
        }
        check(&text)?;
    }
}

#[test]
fn generator_records_take_the_fast_path_to_the_same_call() {
    let options = GenerateOptions {
        calls: 3000,
        seed: 5,
        accounts: 50,
    };
    for call in Generator::new(&options) {
        let line = call_to_ingest_json(&call);
        let fast = from_plain_json(&line).map(|mut c| c.normalize().map(|()| c));
        assert_eq!(fast, Some(Ok(call.clone())), "{line}");
        assert_eq!(oracle::from_json(&line), Ok(call.clone()), "{line}");
        assert_eq!(Call::from_json(&line), Ok(call), "{line}");
    }
}

#[test]
fn texts_at_the_edges() {
    let base = r#""AccountSid":"AC1","PropertySid":"PR1","CallSid":"CA1","To":"+1 555","Disposition":"Busy""#;
    let texts = [
        String::new(),
        " ".to_string(),
        "{".to_string(),
        "{}".to_string(),
        "[]".to_string(),
        "[{}]".to_string(),
        "null".to_string(),
        "5".to_string(),
        "\"text\"".to_string(),
        format!("{{{base},\"Date_Start\":1}}"),
        format!(" \t\r\n{{ {base} , \"Date_Start\" : \"1\" }}\n "),
        format!("{{{base},\"Date_Start\":1}}x"),
        format!("{{{base},\"Date_Start\":1}}}}"),
        format!("{{{base},\"Date_Start\":1,}}"),
        format!("{{{base},\"Date_Start\":1 2}}"),
        format!("{{{base},\"Date_Start\":01}}"),
        format!("{{{base},\"Date_Start\":1.0}}"),
        format!("{{{base},\"Date_Start\":1e0}}"),
        format!("{{{base},\"Date_Start\":-1}}"),
        format!("{{{base},\"Date_Start\":4294967296}}"),
        format!("{{{base},\"Date_Start\":18446744073709551616}}"),
        format!("{{{base},\"Date_Start\":\"\"}}"),
        format!("{{{base},\"Date_Start\":null}}"),
        format!("{{{base}}}"),
        format!("{{{base},\"Date_Start\":1,\"Disposition\":null}}"),
        format!("{{{base},\"Date_Start\":1,\"Colour\":1e999}}"),
        format!("{{{base},\"Date_Start\":1,\"Colour\":[[[[]]]]}}"),
        format!("{{{base},\"Date_Start\":1,\"Notes\":{}}}", "[".repeat(200)),
        format!("{{{base},\"Date_Start\":1,\"Prompts_Keys\":\"1,,2\"}}"),
        format!("{{{base},\"Date_Start\":1,\"Prompts_Keys\":\" 1 , 2 \"}}"),
        format!("{{{base},\"Date_Start\":1,\"Duration\":-0}}"),
        format!("{{{base},\"Date_Start\":1,\"Duration\":0}}"),
        format!("{{{base},\"Date_Start\":1,\"Duration\":1.0}}"),
        format!("{{{base},\"Date_Start\":1,\"Session_Traffic_Type\":\" \"}}"),
        format!("{{{base},\"Date_Start\":1,\"Session_Traffic_Type\":\"organic\"}}"),
        format!("{{{base},\"Date_Start\":1,\"From\":\"\"}}"),
        format!("{{{base},\"Date_Start\":1,\"From\":null}}"),
        format!("{{{base},\"Date_Start\":1,\"From\":\" (02) 9999.0000 \"}}"),
        format!("{{{base},\"Date_Start\":1,\"Endpoint\":\"  \"}}"),
        format!("{{{base},\"Date_Start\":1,\"CallSid\":\" \"}}"),
        format!("{{{base},\"Date_Start\":1,\"\\u0043allType\":\"x\"}}"),
        format!("{{\"AccountSid\":\" \",{base},\"Date_Start\":1}}"),
        format!("{{{base},\"Date_Start\":1,\"To\":null}}"),
        format!("\u{feff}{{{base},\"Date_Start\":1}}"),
        // A control character, a quote or an escape in a string's last bytes, where the search
        // goes byte by byte.
        format!("{{{base},\"Date_Start\":1,\"Notes\":\"\t\"}}"),
        format!("{{{base},\"Date_Start\":1,\"Notes\":\"a\u{1f}\"}}"),
        format!("{{{base},\"Date_Start\":1,\"Notes\":\"\\\"\"}}"),
        format!("{{{base},\"Date_Start\":1,\"Notes\":\"\\u00e9\"}}"),
        format!("{{{base},\"Date_Start\":1,\"Notes\":\"é\u{7f}\"}}"),
        format!("{{{base},\"Date_Start\":1,\"Notes\":\"0123456\u{0}\"}}"),
    ];
    for text in &texts {
        check(text).map_err(|e| format!("{e}")).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(2000)))]

    #[test]
    fn string_len_stops_at_the_first_quote_backslash_or_control(
        text in r#"[a"\\\x00-\x1f é\x7f]{0,40}"#,
    ) {
        let naive = text
            .bytes()
            .position(|b| b == b'"' || b == b'\\' || b < 0x20)
            .unwrap_or(text.len());
        prop_assert_eq!(string_len(text.as_bytes()), naive);
    }
}

/// String values for [`normalize_matches_the_old_one`]: spaces of every kind around values,
/// phone numbers in every form, IVR paths good and bad.
const STRINGS: &[&str] = &[
    "",
    " ",
    "\u{a0}",
    "\u{85}",
    "\u{2003}x\u{3000}",
    "\t\n",
    "x",
    " x ",
    "\u{a0}x",
    "x\u{a0}",
    "\u{b}x\u{c}",
    "é",
    "+",
    "+-",
    "+61299990000",
    "+6",
    "++61",
    "61 2 9999-0000",
    " (02) 9999.0000 ",
    "+61 2 9999 0000",
    "+612999900a0",
    "anonymous",
    " ANONYMOUS ",
    "sip:alice",
    "1",
    "1,2",
    "1,2,3",
    " 1 , 2 ",
    "1,,2",
    "1,",
    ",",
    "1, 2",
    "1,\u{a0}2",
];

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(STRINGS).prop_map(str::to_string),
        1 => "[ ,0-9+().a\u{a0}\t-]{0,8}",
    ]
}

fn optional() -> impl Strategy<Value = Option<String>> {
    prop::option::of(string())
}

fn call() -> impl Strategy<Value = Call> {
    (
        (string(), string(), string(), string(), string()),
        prop::collection::vec(optional(), 24),
        any::<u32>(),
        any::<u64>(),
        select(Disposition::ALL.to_vec()),
        prop::option::of(select(TrafficType::ALL.to_vec())),
    )
        .prop_map(
            |((account, call_sid, property, to, from), optionals, date, duration, d, t)| {
                let mut call = Call::new(account, property, call_sid, date, to, d);
                call.from = from;
                call.duration = duration;
                call.session_traffic_type = t;
                for (slot, value) in call.optional_strs_mut().into_iter().zip(optionals) {
                    *slot = value;
                }
                call
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(2000)))]

    /// The same result, and the same call afterwards (also when it fails part-way).
    #[test]
    fn normalize_matches_the_old_one(call in call()) {
        let mut old = call.clone();
        let mut new = call;
        let expected = oracle::normalize(&mut old);
        prop_assert_eq!(new.normalize(), expected);
        prop_assert_eq!(new, old);
    }

    #[test]
    fn normalize_phone_matches_the_old_one(text in string()) {
        prop_assert_eq!(super::super::normalize_phone(&text), oracle::normalize_phone(&text));
    }
}

#[test]
fn optional_strs_are_the_optional_str_fields() {
    let mut call = Call::new("AC1", "PR1", "CA1", 1, "+1", Disposition::Busy);
    for slot in call.optional_strs_mut() {
        *slot = Some(" x ".to_string());
    }
    let optional_fields = std::iter::once(Field::AccountSid)
        .chain(Field::RESPONSE)
        .filter(|&f| call.optional_str_mut(f).is_some())
        .count();
    assert_eq!(optional_fields, call.optional_strs_mut().len());
    for f in Field::RESPONSE {
        if let Some(slot) = call.optional_str_mut(f) {
            assert_eq!(slot.as_deref(), Some(" x "), "{f:?}");
        }
    }
}
