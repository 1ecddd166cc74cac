//! Deterministic synthetic call records, realistic on purpose: for benchmarks, fuzz seeds and
//! demos (`callstore generate --calls N [--seed S] [--accounts A]`).
//!
//! The same [`GenerateOptions`] give the same records, and [`write_jsonl`] the same bytes, on
//! every run and every machine: the generator uses its own SplitMix64 stream, integer arithmetic
//! only, and no hash-map iteration.
//!
//! What the data looks like:
//!
//! - **Accounts** of Zipf-like sizes (the largest holds about a sixth of all calls, most are
//!   small), each with a few properties, each property with a few tracking numbers (`To`) and
//!   endpoints. Every property belongs to one account.
//! - **Time**: two years from 2024-01-01 UTC ([`START_EPOCH`], [`DAYS`]) with a weekly rhythm,
//!   a Christmas dip, slow growth, and business hours in each account's own time zone; big
//!   accounts often have several calls in the same second.
//! - **Callers**: about 10% anonymous, about a third of calls from a caller the account has seen
//!   before; a caller's country, region and city follow from their number.
//! - **Dispositions** about Answered 60%, IVR 15%, NoAnswer 12%, Busy 8%, Failed 5%, with
//!   durations to match (answered calls up to two hours).
//! - **Attribution**: dozens of sources, a handful of mediums, hundreds of campaigns, some content,
//!   20% unattributed (all four null); IVR paths (`Prompts_Keys` such as `"2,1"`) on about 40% of
//!   calls, up to three levels deep.
//! - **Arrival order as in a live feed**: records come out in end-time order (`Date_Start +
//!   Duration`), so a long call comes after later short ones, and about 1.5% of records arrive
//!   1.5 hours to 3 days late. Reordering is done a day at a time, so memory is bounded by a few
//!   days of calls, not by the number of calls.
//!
//! Phone numbers are already normalized E.164 (`+61299990000`); every record parses back with
//! [`Call::from_json`] to an equal call.
//!
//! ```
//! use callstore::Call;
//! use callstore::generate::{GenerateOptions, Generator, call_to_ingest_json, write_jsonl};
//!
//! let options = GenerateOptions { calls: 1_000, seed: 7, ..GenerateOptions::default() };
//! let calls: Vec<Call> = Generator::new(&options).collect();
//! assert_eq!(calls.len(), 1_000);
//!
//! // One ingest record per line, AccountSid first.
//! let line = call_to_ingest_json(&calls[0]);
//! assert!(line.starts_with(r#"{"AccountSid":"AC"#));
//! assert_eq!(Call::from_json(&line).unwrap(), calls[0]);
//!
//! // The same options write the same bytes.
//! let (mut a, mut b) = (Vec::new(), Vec::new());
//! assert_eq!(write_jsonl(&options, &mut a).unwrap(), 1_000);
//! write_jsonl(&options, &mut b).unwrap();
//! assert_eq!(a, b);
//! ```

use std::io::{self, BufWriter, Write};

use crate::model::{ANONYMOUS, Call, Disposition, TrafficType};

/// The first second of generated time: 2024-01-01T00:00:00Z (a Monday).
pub const START_EPOCH: u32 = 1_704_067_200;

/// How many days of calls are generated from [`START_EPOCH`] (2024 and 2025).
pub const DAYS: u32 = 731;

const DAY: u32 = 86_400;

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GenerateOptions {
    /// How many call records (default 1,000,000).
    pub calls: u64,
    /// The seed: the same seed gives the same records (default 1).
    pub seed: u64,
    /// How many accounts (default 200; 0 counts as 1).
    pub accounts: u32,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            calls: 1_000_000,
            seed: 1,
            accounts: 200,
        }
    }
}

/// Writes `options.calls` records as JSON Lines (one [`call_to_ingest_json`] object a line) and
/// returns how many it wrote. The output is buffered and flushed before returning.
///
/// ```
/// use callstore::generate::{GenerateOptions, write_jsonl};
/// let mut out = Vec::new();
/// let options = GenerateOptions { calls: 10, ..GenerateOptions::default() };
/// assert_eq!(write_jsonl(&options, &mut out).unwrap(), 10);
/// assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 10);
/// ```
pub fn write_jsonl<W: Write>(options: &GenerateOptions, out: W) -> io::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let mut line = Vec::with_capacity(2048);
    let mut written = 0;
    let mut generator = Generator::new(options);
    // One call, rebuilt in place for every record: the loop allocates nothing once warm.
    let mut call = Call::new("", "", "", 0, "", Disposition::Answered);
    let mut spare = Spare::default();
    while let Some(draft) = generator.next_draft() {
        generator.build_into(&draft, &mut call, &mut spare);
        line.clear();
        encode_ingest(&call, &mut line);
        line.push(b'\n');
        out.write_all(&line)?;
        written += 1;
    }
    out.flush()?;
    Ok(written)
}

/// One call as an ingest record: a JSON object with `"AccountSid"` first, then every response
/// field in the order of the API document, exactly as [`ApiCall`](crate::ApiCall) writes them
/// (`null` included).
/// [`Call::from_json`] reads it back to an equal call.
///
/// ```
/// use callstore::{Call, Disposition};
/// use callstore::generate::call_to_ingest_json;
/// let call = Call::new("AC1", "PR1", "CA1", 42, "+61299990000", Disposition::Busy);
/// let json = call_to_ingest_json(&call);
/// assert!(json.starts_with(r#"{"AccountSid":"AC1","CallSid":"CA1","PropertySid":"PR1""#));
/// assert_eq!(Call::from_json(&json).unwrap(), call);
/// ```
pub fn call_to_ingest_json(call: &Call) -> String {
    let mut out = Vec::with_capacity(1024);
    encode_ingest(call, &mut out);
    // Only ASCII punctuation and whole UTF-8 strings were written.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends the ingest object of `call` to `out`: `{"AccountSid":...,` followed by exactly what
/// `serde_json` writes for [`ApiCall`](crate::ApiCall) without its `{` (the tests check this),
/// written by hand because this is the generator's hot loop.
fn encode_ingest(call: &Call, out: &mut Vec<u8>) {
    fn str_field(out: &mut Vec<u8>, key: &[u8], value: &str) {
        out.extend_from_slice(key);
        push_json_str(out, value);
    }
    fn opt_field(out: &mut Vec<u8>, key: &[u8], value: &Option<String>) {
        out.extend_from_slice(key);
        match value {
            Some(v) => push_json_str(out, v),
            None => out.extend_from_slice(b"null"),
        }
    }
    let c = call;
    str_field(out, b"{\"AccountSid\":", &c.account_sid);
    str_field(out, b",\"CallSid\":", &c.call_sid);
    str_field(out, b",\"PropertySid\":", &c.property_sid);
    out.extend_from_slice(b",\"Date_Start\":\"");
    push_u64(out, u64::from(c.date_start));
    out.push(b'"');
    str_field(out, b",\"From\":", &c.from);
    opt_field(out, b",\"From_CountryCode\":", &c.from_country_code);
    opt_field(out, b",\"From_Region\":", &c.from_region);
    opt_field(out, b",\"From_City\":", &c.from_city);
    str_field(out, b",\"To\":", &c.to);
    opt_field(out, b",\"To_Friendly\":", &c.to_friendly);
    out.extend_from_slice(b",\"Duration\":");
    push_u64(out, c.duration);
    str_field(out, b",\"Disposition\":", c.disposition.as_str());
    opt_field(out, b",\"Recording_Uri\":", &c.recording_uri);
    opt_field(out, b",\"Endpoint\":", &c.endpoint);
    opt_field(out, b",\"Attribution_Source\":", &c.attribution_source);
    opt_field(out, b",\"Attribution_Medium\":", &c.attribution_medium);
    opt_field(out, b",\"Attribution_Campaign\":", &c.attribution_campaign);
    opt_field(out, b",\"Attribution_Content\":", &c.attribution_content);
    out.extend_from_slice(b",\"Session_Traffic_Type\":");
    match c.session_traffic_type {
        Some(t) => push_json_str(out, t.as_str()),
        None => out.extend_from_slice(b"null"),
    }
    opt_field(out, b",\"Session_Keywords\":", &c.session_keywords);
    opt_field(
        out,
        b",\"Session_ConversionUri\":",
        &c.session_conversion_uri,
    );
    opt_field(out, b",\"Session_LandingUri\":", &c.session_landing_uri);
    opt_field(out, b",\"Survey_Type\":", &c.survey_type);
    opt_field(out, b",\"Survey_Value\":", &c.survey_value);
    opt_field(out, b",\"Survey_Custom1\":", &c.survey_custom1);
    opt_field(out, b",\"Survey_Custom2\":", &c.survey_custom2);
    opt_field(out, b",\"Survey_Custom3\":", &c.survey_custom3);
    opt_field(out, b",\"Survey_UniqueCode\":", &c.survey_unique_code);
    opt_field(out, b",\"Prompts_Keys\":", &c.prompts_keys);
    opt_field(out, b",\"Notes\":", &c.notes);
    opt_field(out, b",\"CallType\":", &c.call_type);
    opt_field(
        out,
        b",\"Google_Analytics_ClientId\":",
        &c.google_analytics_client_id,
    );
    opt_field(
        out,
        b",\"Google_Adwords_ClickId\":",
        &c.google_adwords_click_id,
    );
    out.push(b'}');
}

/// Appends `s` as a JSON string, escaped as `serde_json` escapes it.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    // Without early exit, so that it vectorizes: nearly every value has nothing to escape.
    let plain_only = s
        .bytes()
        .fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'));
    if plain_only {
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return;
    }
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0C => b"\\f",
            0..=0x1F => b"",
            _ => continue,
        };
        out.extend_from_slice(&s.as_bytes()[plain..i]);
        plain = i + 1;
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
        } else {
            out.extend_from_slice(escape);
        }
    }
    out.extend_from_slice(&s.as_bytes()[plain..]);
    out.push(b'"');
}

/// Writes `n` in decimal at the end of `digits`; returns where the digits start.
fn decimal(digits: &mut [u8; 20], mut n: u64) -> usize {
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return at;
        }
    }
}

/// Appends `n` in decimal.
fn push_u64(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let at = decimal(&mut digits, n);
    out.extend_from_slice(&digits[at..]);
}

// ---------------------------------------------------------------------------------------------
// Randomness: SplitMix64, integers only.

/// The SplitMix64 finalizer: a bijection on u64, so distinct inputs give distinct outputs.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(mix64(seed ^ 0x6A09_E667_F3BC_C908))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// A number in `0..n` (`n > 0`), by multiply-shift.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// One of `items`, uniformly.
    fn pick_str(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len() as u64) as usize]
    }

    /// An index into `weights`, with probability proportional to its weight.
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut r = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if r < u64::from(w) {
                return i;
            }
            r -= u64::from(w);
        }
        weights.len() - 1
    }
}

/// An index drawn from cumulative weights (`cum[i]` = sum of weights `0..=i`).
fn pick_cumulative(rng: &mut Rng, cum: &[u64]) -> usize {
    let total = cum.last().copied().unwrap_or(1).max(1);
    let r = rng.below(total);
    cum.partition_point(|&c| c <= r).min(cum.len() - 1)
}

/// A 32-hex-digit id whose first half is a bijection of `n` (for a fixed salt): unique per `n`.
fn sid(prefix: &str, salt: u64, n: u64) -> String {
    let mut out = String::with_capacity(prefix.len() + 32);
    write_sid(&mut out, prefix, salt, n);
    out
}

/// Replaces the text of `out` with the id [`sid`] makes.
fn write_sid(out: &mut String, prefix: &str, salt: u64, n: u64) {
    let hi = mix64(n ^ salt);
    let lo = mix64(n.wrapping_add(salt.rotate_left(17)) ^ 0x5851_F42D_4C95_7F2D);
    out.clear();
    out.push_str(prefix);
    for word in [hi, lo] {
        for shift in (0..16).rev() {
            out.push(char::from(
                b"0123456789abcdef"[(word >> (shift * 4)) as usize & 15],
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Static tables.

struct Country {
    code: &'static str,
    dial: &'static str,
    utc_offset: i32,
    regions: &'static [(&'static str, &'static [&'static str])],
}

const COUNTRIES: [Country; 4] = [
    Country {
        code: "US",
        dial: "1",
        utc_offset: -5,
        regions: &[
            (
                "California",
                &["Los Angeles", "San Francisco", "San Diego", "Sacramento"],
            ),
            ("New York", &["New York", "Buffalo", "Rochester"]),
            ("Texas", &["Houston", "Dallas", "Austin", "San Antonio"]),
            ("Florida", &["Miami", "Orlando", "Tampa"]),
            ("Illinois", &["Chicago", "Springfield"]),
            ("Washington", &["Seattle", "Spokane"]),
            ("Georgia", &["Atlanta", "Savannah"]),
        ],
    },
    Country {
        code: "AU",
        dial: "61",
        utc_offset: 10,
        regions: &[
            ("New South Wales", &["Sydney", "Newcastle", "Wollongong"]),
            ("Victoria", &["Melbourne", "Geelong", "Ballarat"]),
            ("Queensland", &["Brisbane", "Gold Coast", "Cairns"]),
            ("Western Australia", &["Perth", "Bunbury"]),
            ("South Australia", &["Adelaide"]),
            ("Tasmania", &["Hobart", "Launceston"]),
            ("Australian Capital Territory", &["Canberra"]),
        ],
    },
    Country {
        code: "GB",
        dial: "44",
        utc_offset: 0,
        regions: &[
            (
                "England",
                &["London", "Manchester", "Birmingham", "Leeds", "Bristol"],
            ),
            ("Scotland", &["Glasgow", "Edinburgh", "Aberdeen"]),
            ("Wales", &["Cardiff", "Swansea"]),
            ("Northern Ireland", &["Belfast"]),
        ],
    },
    Country {
        code: "NZ",
        dial: "64",
        utc_offset: 12,
        regions: &[
            ("Auckland", &["Auckland"]),
            ("Wellington", &["Wellington", "Lower Hutt"]),
            ("Canterbury", &["Christchurch"]),
            ("Waikato", &["Hamilton"]),
            ("Otago", &["Dunedin", "Queenstown"]),
        ],
    },
];

/// How often an account is based in each country.
const COUNTRY_WEIGHTS: [u32; 4] = [50, 25, 15, 10];

/// Calls per local hour of the day, relative.
const LOCAL_HOUR_WEIGHTS: [u32; 24] = [
    2, 1, 1, 1, 1, 2, 5, 15, 45, 70, 75, 72, 62, 68, 66, 60, 50, 32, 20, 14, 10, 7, 5, 3,
];

/// Calls per day of the week (Monday first), relative.
const WEEKDAY_WEIGHTS: [u64; 7] = [100, 104, 102, 100, 92, 45, 30];

/// Dispositions and their shares, per mille.
const DISPOSITIONS: [(Disposition, u32); 5] = [
    (Disposition::Answered, 600),
    (Disposition::IVR, 150),
    (Disposition::NoAnswer, 120),
    (Disposition::Busy, 80),
    (Disposition::Failed, 50),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum SourceKind {
    Search,
    Social,
    Directory,
    Email,
    Display,
    Direct,
}

/// Attribution sources, their kind and relative weight.
const SOURCES: &[(&str, SourceKind, u32)] = &[
    ("google", SourceKind::Search, 400),
    ("(direct)", SourceKind::Direct, 120),
    ("bing", SourceKind::Search, 60),
    ("facebook", SourceKind::Social, 80),
    ("instagram", SourceKind::Social, 30),
    ("yelp", SourceKind::Directory, 25),
    ("yahoo", SourceKind::Search, 15),
    ("duckduckgo", SourceKind::Search, 12),
    ("linkedin", SourceKind::Social, 10),
    ("twitter", SourceKind::Social, 6),
    ("tiktok", SourceKind::Social, 8),
    ("youtube", SourceKind::Social, 10),
    ("pinterest", SourceKind::Social, 4),
    ("reddit", SourceKind::Social, 4),
    ("yellowpages", SourceKind::Directory, 15),
    ("truelocal", SourceKind::Directory, 6),
    ("hotfrog", SourceKind::Directory, 3),
    ("tripadvisor", SourceKind::Directory, 4),
    ("newsletter", SourceKind::Email, 12),
    ("mailchimp", SourceKind::Email, 10),
    ("hubspot", SourceKind::Email, 6),
    ("outbrain", SourceKind::Display, 5),
    ("taboola", SourceKind::Display, 5),
    ("criteo", SourceKind::Display, 5),
    ("adroll", SourceKind::Display, 4),
    ("gdn", SourceKind::Display, 8),
    ("quora", SourceKind::Social, 2),
    ("baidu", SourceKind::Search, 2),
    ("ecosia", SourceKind::Search, 2),
    ("nextdoor", SourceKind::Social, 3),
    ("angi", SourceKind::Directory, 4),
    ("houzz", SourceKind::Directory, 3),
    ("thumbtack", SourceKind::Directory, 3),
    ("trustpilot", SourceKind::Directory, 3),
    ("productreview", SourceKind::Directory, 2),
    ("gumtree", SourceKind::Directory, 2),
    ("craigslist", SourceKind::Directory, 2),
    ("chatgpt.com", SourceKind::Directory, 3),
];

const CAMPAIGN_THEMES: [&str; 20] = [
    "spring-sale",
    "summer-promo",
    "autumn-offer",
    "winter-special",
    "black-friday",
    "end-of-year",
    "brand",
    "generic",
    "competitor",
    "remarketing",
    "local-services",
    "emergency",
    "new-customers",
    "launch",
    "always-on",
    "financing",
    "free-quote",
    "seniors",
    "weekend-deals",
    "loyalty",
];

const CAMPAIGN_CHANNELS: [&str; 8] = [
    "search", "display", "social", "video", "email", "leads", "calls", "pmax",
];

const CONTENTS: [&str; 24] = [
    "ad-a",
    "ad-b",
    "ad-c",
    "text-ad-1",
    "text-ad-2",
    "text-ad-3",
    "banner-300x250",
    "banner-728x90",
    "banner-160x600",
    "hero-cta",
    "footer-link",
    "sidebar",
    "video-6s",
    "video-15s",
    "video-30s",
    "carousel-1",
    "carousel-2",
    "story",
    "call-extension",
    "sitelink-contact",
    "sitelink-pricing",
    "header-button",
    "newsletter-top",
    "newsletter-bottom",
];

struct Industry {
    noun: &'static str,
    terms: &'static [&'static str],
    pages: &'static [&'static str],
}

const INDUSTRIES: [Industry; 10] = [
    Industry {
        noun: "plumbing",
        terms: &[
            "plumber",
            "emergency plumber",
            "blocked drain",
            "hot water repair",
            "leaking tap",
        ],
        pages: &[
            "services/blocked-drains",
            "services/hot-water",
            "emergency",
            "pricing",
        ],
    },
    Industry {
        noun: "dental",
        terms: &[
            "dentist",
            "emergency dentist",
            "teeth whitening",
            "dental implants",
            "invisalign",
        ],
        pages: &[
            "treatments/implants",
            "treatments/whitening",
            "new-patients",
            "pricing",
        ],
    },
    Industry {
        noun: "legal",
        terms: &[
            "lawyer",
            "family lawyer",
            "conveyancing",
            "wills and estates",
            "injury lawyer",
        ],
        pages: &[
            "practice-areas/family",
            "practice-areas/property",
            "our-team",
            "fees",
        ],
    },
    Industry {
        noun: "realty",
        terms: &[
            "real estate agent",
            "property appraisal",
            "houses for sale",
            "rentals",
        ],
        pages: &["buy", "sell/appraisal", "rent", "property-management"],
    },
    Industry {
        noun: "auto",
        terms: &[
            "mechanic",
            "car service",
            "brake repair",
            "roadworthy",
            "tyres",
        ],
        pages: &[
            "services/logbook",
            "services/brakes",
            "tyres",
            "book-a-service",
        ],
    },
    Industry {
        noun: "climate",
        terms: &[
            "air conditioning repair",
            "ducted heating",
            "split system install",
            "hvac",
        ],
        pages: &["cooling", "heating", "maintenance-plans", "specials"],
    },
    Industry {
        noun: "insure",
        terms: &[
            "car insurance quote",
            "home insurance",
            "life insurance",
            "insurance broker",
        ],
        pages: &["car", "home", "life", "business", "claims"],
    },
    Industry {
        noun: "roofing",
        terms: &[
            "roof repair",
            "roof restoration",
            "gutter replacement",
            "roof leak",
        ],
        pages: &["restoration", "repairs", "gutters", "gallery"],
    },
    Industry {
        noun: "vet",
        terms: &[
            "vet",
            "emergency vet",
            "pet vaccination",
            "dog desexing",
            "cat vet",
        ],
        pages: &[
            "services/vaccinations",
            "services/surgery",
            "emergency",
            "new-clients",
        ],
    },
    Industry {
        noun: "solar",
        terms: &[
            "solar panels",
            "solar battery",
            "solar installers",
            "solar rebate",
        ],
        pages: &[
            "residential",
            "commercial",
            "batteries",
            "rebates",
            "calculator",
        ],
    },
];

const BRANDS: [&str; 24] = [
    "summit",
    "bright",
    "coastal",
    "metro",
    "premier",
    "allied",
    "northside",
    "southern",
    "united",
    "express",
    "golden",
    "harbour",
    "pioneer",
    "true",
    "first",
    "apex",
    "keystone",
    "redwood",
    "bluewater",
    "citywide",
    "evergreen",
    "heritage",
    "liberty",
    "oakridge",
];

const KEYWORD_MODIFIERS: [&str; 6] = [" near me", " cost", " open now", " reviews", " quote", ""];

const CONVERSION_PATHS: [&str; 6] = [
    "/contact",
    "/contact-us",
    "/get-a-quote",
    "/book-online",
    "/locations",
    "/",
];

const FRIENDLY_NAMES: [&str; 12] = [
    "Main Line",
    "Website",
    "Google Ads",
    "Bing Ads",
    "Facebook",
    "Google Business Profile",
    "Yellow Pages",
    "Newspaper",
    "Radio",
    "Billboard",
    "Email Signature",
    "Direct Mail",
];

const SURVEY_TYPES: [&str; 4] = ["sales", "support", "booking", "enquiry"];
const SURVEY_CUSTOM1: [&str; 3] = ["New customer", "Existing customer", "Unknown"];
const SURVEY_CUSTOM3: [&str; 3] = ["Follow up", "Escalated", "Closed"];

const NOTES: [&str; 10] = [
    "Asked about pricing",
    "Booked appointment",
    "Wrong number",
    "Requested callback",
    "Spam caller",
    "Existing customer - billing question",
    "Wants a quote by email",
    "Complaint, passed to manager",
    "Left voicemail",
    "Job booked for next week",
];

const CALL_TYPES: [(&str, u32); 6] = [
    ("Sales", 40),
    ("Support", 25),
    ("New enquiry", 15),
    ("Existing customer", 10),
    ("Billing", 6),
    ("Spam", 4),
];

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// ---------------------------------------------------------------------------------------------
// Phone numbers: a caller is a u64, `(country + 1) << 56 | national number`; 0 is anonymous.

const ANONYMOUS_CALLER: u64 = 0;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Line {
    Landline,
    Mobile,
    TollFree,
}

/// A national number (no leading zero) of the given kind in a country.
fn national_number(rng: &mut Rng, country: usize, line: Line) -> u64 {
    match (COUNTRIES[country].code, line) {
        ("US", Line::TollFree) => {
            *rng.pick(&[800, 888, 877, 866]) * 10_000_000 + rng.below(10_000_000)
        }
        ("US", _) => {
            rng.range(201, 989) * 10_000_000 + rng.range(200, 999) * 10_000 + rng.below(10_000)
        }
        ("AU", Line::TollFree) => *rng.pick(&[1300, 1800]) * 1_000_000 + rng.below(1_000_000),
        ("AU", Line::Mobile) => 400_000_000 + rng.below(100_000_000),
        ("AU", Line::Landline) => *rng.pick(&[2, 3, 7, 8]) * 100_000_000 + rng.below(100_000_000),
        ("GB", Line::TollFree) => 8_000_000_000 + rng.below(10_000_000),
        ("GB", Line::Mobile) => 7_000_000_000 + rng.below(1_000_000_000),
        ("GB", Line::Landline) => rng.range(1, 2) * 1_000_000_000 + rng.below(1_000_000_000),
        ("NZ", Line::TollFree) => 800_000_000 + rng.below(1_000_000),
        ("NZ", Line::Mobile) => *rng.pick(&[21, 22, 27]) * 10_000_000 + rng.below(10_000_000),
        (_, _) => *rng.pick(&[3, 4, 6, 7, 9]) * 10_000_000 + rng.below(10_000_000),
    }
}

fn e164(country: usize, national: u64) -> String {
    let mut out = String::with_capacity(16);
    write_e164(&mut out, country, national);
    out
}

/// Replaces the text of `out` with `+`, the country's dialling code and the national number.
fn write_e164(out: &mut String, country: usize, national: u64) {
    out.clear();
    out.push('+');
    out.push_str(COUNTRIES[country].dial);
    push_decimal(out, national);
}

fn caller_code(country: usize, national: u64) -> u64 {
    ((country as u64 + 1) << 56) | national
}

fn caller_parts(code: u64) -> (usize, u64) {
    (((code >> 56) - 1) as usize, code & ((1 << 56) - 1))
}

fn leading_digit(mut n: u64) -> u64 {
    while n >= 10 {
        n /= 10;
    }
    n
}

/// Country, region and city of a caller: a function of the number, often partly unknown.
fn caller_location(
    code: u64,
) -> (
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
) {
    let (country, national) = caller_parts(code);
    let c = &COUNTRIES[country];
    let h = mix64(code ^ 0x1F83_D9AB_FB41_BD6B);
    if h % 100 < 6 {
        return (None, None, None);
    }
    let mobile = match c.code {
        "AU" => leading_digit(national) == 4,
        "GB" => leading_digit(national) == 7,
        "NZ" => leading_digit(national) == 2,
        _ => (h >> 8) % 100 < 45,
    };
    let (region, cities) = c.regions[((h >> 16) % c.regions.len() as u64) as usize];
    let region = ((h >> 24) % 100 >= 10).then_some(region);
    let city = (!mobile && region.is_some() && (h >> 32) % 100 >= 8)
        .then(|| cities[((h >> 40) % cities.len() as u64) as usize]);
    (Some(c.code), region, city)
}

// ---------------------------------------------------------------------------------------------
// The world: accounts, properties, numbers. Built once from the seed.

struct Account {
    sid: String,
    country: usize,
    industry: usize,
    domain: String,
    /// Campaigns, as `theme * CAMPAIGN_CHANNELS.len() + channel`; the year comes from the date.
    campaigns: Vec<usize>,
    /// Property indexes, and cumulative weights to pick one.
    properties: Vec<u32>,
    property_cum: Vec<u64>,
    /// Whether the account sets CallType.
    call_types: bool,
}

struct TrackingNumber {
    number: String,
    friendly: Option<String>,
}

struct Property {
    sid: String,
    account: u32,
    numbers: Vec<TrackingNumber>,
    endpoints: Vec<String>,
    /// Keys on each IVR menu level: `1..=menu_width`.
    menu_width: u64,
    recording: bool,
    survey: bool,
}

struct World {
    accounts: Vec<Account>,
    /// Cumulative Zipf weights to pick an account.
    account_cum: Vec<u64>,
    properties: Vec<Property>,
    /// Cumulative weights of UTC hours for each country.
    hour_cum: Vec<[u64; 24]>,
    /// Cumulative weights of days.
    day_cum: Vec<u64>,
    /// Every campaign name: `(theme * CAMPAIGN_CHANNELS.len() + channel) * 2 + (year - 2024)`.
    campaign_names: Vec<String>,
}

impl World {
    fn new(seed: u64, accounts: u32) -> World {
        let mut rng = Rng::new(seed ^ 0x3C6E_F372_FE94_F82B);
        let n = accounts.max(1) as usize;
        let account_salt = mix64(seed ^ 0xAC);
        let property_salt = mix64(seed ^ 0x9E);

        // Zipf weights 1/(rank+1); the first is raised so that it holds about a sixth of calls.
        const UNIT: u64 = 1 << 40;
        let rest: u64 = (1..n as u64).map(|r| UNIT / (r + 1)).sum();
        let mut account_cum = Vec::with_capacity(n);
        let mut total = UNIT.max(rest / 5);
        account_cum.push(total);
        for r in 1..n as u64 {
            total += UNIT / (r + 1);
            account_cum.push(total);
        }

        let mut world_accounts = Vec::with_capacity(n);
        let mut properties = Vec::new();
        for rank in 0..n {
            let country = rng.weighted(&COUNTRY_WEIGHTS);
            let industry = rng.below(INDUSTRIES.len() as u64) as usize;
            let tld = match COUNTRIES[country].code {
                "AU" => "com.au",
                "GB" => "co.uk",
                "NZ" => "co.nz",
                _ => "com",
            };
            let domain = format!(
                "{}{}{}.{tld}",
                rng.pick(&BRANDS),
                INDUSTRIES[industry].noun,
                if rng.chance(500) {
                    String::new()
                } else {
                    format!("-{}", rank + 1)
                }
            );
            let campaign_count = match rank {
                0 => 40,
                1..=9 => rng.range(12, 25),
                _ => rng.range(2, 10),
            };
            let campaigns = (0..campaign_count)
                .map(|_| {
                    rng.below((CAMPAIGN_THEMES.len() * CAMPAIGN_CHANNELS.len()) as u64) as usize
                })
                .collect();
            let property_count = match rank {
                0 => 12,
                1..=4 => rng.range(6, 10),
                _ => 1 + rng.weighted(&[40, 30, 20, 10]) as u64,
            };
            let mut account_properties = Vec::new();
            let mut property_cum = Vec::new();
            let mut cum = 0;
            for p in 0..property_count {
                let index = properties.len() as u32;
                let number_count = 1 + rng.weighted(&[20, 25, 20, 15, 10, 10]);
                let numbers = (0..number_count)
                    .map(|k| {
                        let line = if k == 0 || rng.chance(400) {
                            Line::Landline
                        } else {
                            Line::TollFree
                        };
                        TrackingNumber {
                            number: e164(country, national_number(&mut rng, country, line)),
                            friendly: (!rng.chance(250)).then(|| {
                                if k == 0 {
                                    FRIENDLY_NAMES[0].to_string()
                                } else {
                                    rng.pick(&FRIENDLY_NAMES[1..]).to_string()
                                }
                            }),
                        }
                    })
                    .collect();
                let endpoints = (0..1 + rng.weighted(&[60, 30, 10]))
                    .map(|_| {
                        let line = if rng.chance(300) {
                            Line::Mobile
                        } else {
                            Line::Landline
                        };
                        e164(country, national_number(&mut rng, country, line))
                    })
                    .collect();
                properties.push(Property {
                    sid: sid("PR", property_salt, u64::from(index)),
                    account: rank as u32,
                    numbers,
                    endpoints,
                    menu_width: rng.range(2, 5),
                    recording: rng.chance(800),
                    survey: rng.chance(350),
                });
                account_properties.push(index);
                cum += UNIT / (p + 1);
                property_cum.push(cum);
            }
            world_accounts.push(Account {
                sid: sid("AC", account_salt, rank as u64),
                country,
                industry,
                domain,
                campaigns,
                properties: account_properties,
                property_cum,
                call_types: rng.chance(500),
            });
        }

        let hour_cum = COUNTRIES
            .iter()
            .map(|c| {
                let mut cum = [0; 24];
                let mut total = 0;
                for (utc_hour, slot) in cum.iter_mut().enumerate() {
                    let local = (utc_hour as i32 + c.utc_offset).rem_euclid(24) as usize;
                    total += u64::from(LOCAL_HOUR_WEIGHTS[local]);
                    *slot = total;
                }
                cum
            })
            .collect();

        let mut day_cum = Vec::with_capacity(DAYS as usize);
        let mut total = 0;
        for day in 0..u64::from(DAYS) {
            let (day_of_year, year_len) = if day < 366 {
                (day, 366)
            } else {
                (day - 366, 365)
            };
            let holiday = day_of_year == 0 || day_of_year >= year_len - 8;
            let weekday = WEEKDAY_WEIGHTS[(day % 7) as usize];
            let trend = 1000 + day * 500 / u64::from(DAYS);
            total += weekday * trend * if holiday { 2 } else { 5 };
            day_cum.push(total);
        }

        let campaign_names = CAMPAIGN_THEMES
            .iter()
            .flat_map(|theme| {
                CAMPAIGN_CHANNELS
                    .iter()
                    .map(move |channel| (theme, channel))
            })
            .flat_map(|(theme, channel)| [2024, 2025].map(|y| format!("{theme}-{channel}-{y}")))
            .collect();

        World {
            campaign_names,
            accounts: world_accounts,
            account_cum,
            properties,
            hour_cum,
            day_cum,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The generator.

/// A call before its fields are filled in: what ordering and caller history need.
#[derive(Clone, Copy)]
struct Draft {
    /// When the record arrives: its end time, or later for a late record.
    arrival: u32,
    /// Its number in generation order; names it and seeds the stream that fills it in.
    seq: u64,
    start: u32,
    duration: u32,
    property: u32,
    caller: u64,
    disposition: Disposition,
}

/// The callers an account has seen recently (a ring), for repeat calls.
#[derive(Default)]
struct CallerPool {
    callers: Vec<u64>,
    next: usize,
}

const POOL_CAPACITY: usize = 4096;

impl CallerPool {
    fn remember(&mut self, caller: u64) {
        if self.callers.len() < POOL_CAPACITY {
            self.callers.push(caller);
        } else {
            self.callers[self.next] = caller;
            self.next = (self.next + 1) % POOL_CAPACITY;
        }
    }
}

/// Share of non-anonymous calls that come from a caller seen before, per mille.
const REPEAT_PER_MILLE: u64 = 370;
/// Share of anonymous calls, per mille.
const ANONYMOUS_PER_MILLE: u64 = 100;
/// Share of records that arrive late, per mille.
const LATE_PER_MILLE: u64 = 15;
/// Chance that a call starts in the same second as its account's previous call that day.
const BURST_PER_MILLE: u64 = 120;

/// The generated calls, in arrival order: an iterator of [`Call`].
///
/// ```
/// use callstore::generate::{GenerateOptions, Generator};
/// let options = GenerateOptions { calls: 100, accounts: 5, seed: 3 };
/// let generator = Generator::new(&options);
/// assert_eq!(generator.len(), 100);
/// assert!(generator.map(|c| c.account_sid).all(|a| a.starts_with("AC")));
/// ```
pub struct Generator {
    world: World,
    calls: u64,
    call_salt: u64,
    sid_salt: u64,
    rng: Rng,
    /// The next day to draft.
    day: u32,
    drafted: u64,
    emitted: u64,
    /// Drafted calls not yet emitted, sorted by (arrival, seq); `pending[pos..ready]` may go out.
    pending: Vec<Draft>,
    pos: usize,
    ready: usize,
    pools: Vec<CallerPool>,
    /// Per account: the day (+1) and second of its latest call, for same-second bursts.
    latest: Vec<(u32, u32)>,
}

impl Generator {
    /// A generator for `options`; building it draws the accounts and properties.
    pub fn new(options: &GenerateOptions) -> Generator {
        let world = World::new(options.seed, options.accounts);
        let accounts = world.accounts.len();
        Generator {
            world,
            calls: options.calls,
            call_salt: mix64(options.seed ^ 0xCA11),
            sid_salt: mix64(options.seed ^ 0xCA),
            rng: Rng::new(options.seed),
            day: 0,
            drafted: 0,
            emitted: 0,
            pending: Vec::new(),
            pos: 0,
            ready: 0,
            pools: (0..accounts).map(|_| CallerPool::default()).collect(),
            latest: vec![(0, 0); accounts],
        }
    }

    /// How many calls are drafted through the end of `day`.
    fn calls_through(&self, day: u32) -> u64 {
        let cum = &self.world.day_cum;
        let total = u128::from(cum[cum.len() - 1]);
        (u128::from(self.calls) * u128::from(cum[day as usize]) / total) as u64
    }

    /// The next call to emit, before its fields are filled in.
    fn next_draft(&mut self) -> Option<Draft> {
        if self.pos >= self.ready && !self.refill() {
            return None;
        }
        let draft = self.pending[self.pos];
        self.pos += 1;
        self.emitted += 1;
        Some(draft)
    }

    /// Drafts the calls that start on `self.day`.
    fn draft_day(&mut self) {
        let day = self.day;
        let day_start = START_EPOCH + day * DAY;
        let target = self.calls_through(day);
        let rng = &mut self.rng;
        let world = &self.world;
        while self.drafted < target {
            let seq = self.drafted;
            self.drafted += 1;
            let account_index = pick_cumulative(rng, &world.account_cum);
            let account = &world.accounts[account_index];
            let latest = &mut self.latest[account_index];
            let start = if latest.0 == day + 1 && rng.chance(BURST_PER_MILLE) {
                latest.1
            } else {
                let hour = pick_cumulative(rng, &world.hour_cum[account.country]) as u32;
                day_start + hour * 3600 + rng.below(3600) as u32
            };
            *latest = (day + 1, start);
            let property = account.properties[pick_cumulative(rng, &account.property_cum)];
            let disposition = DISPOSITIONS[rng.weighted(&DISPOSITIONS.map(|d| d.1))].0;
            let duration = match disposition {
                Disposition::Answered => {
                    let (lo, hi) = *rng.pick(&[
                        (5, 30),
                        (30, 120),
                        (30, 120),
                        (30, 120),
                        (120, 300),
                        (120, 300),
                        (120, 300),
                        (300, 900),
                        (300, 900),
                        (900, 2400),
                    ]);
                    if rng.chance(30) {
                        rng.range(2400, 7200)
                    } else {
                        rng.range(lo, hi)
                    }
                }
                Disposition::IVR => rng.range(5, 180),
                Disposition::NoAnswer => rng.range(10, 60),
                Disposition::Busy => rng.range(0, 5),
                Disposition::Failed => rng.below(4) * u64::from(rng.chance(300)),
            } as u32;
            let pool = &mut self.pools[account_index];
            let caller = if rng.chance(ANONYMOUS_PER_MILLE) {
                ANONYMOUS_CALLER
            } else if !pool.callers.is_empty() && rng.chance(REPEAT_PER_MILLE) {
                *rng.pick(&pool.callers)
            } else {
                let country = if rng.chance(920) {
                    account.country
                } else {
                    rng.below(COUNTRIES.len() as u64) as usize
                };
                let line = if rng.chance(550) {
                    Line::Mobile
                } else {
                    Line::Landline
                };
                let code = caller_code(country, national_number(rng, country, line));
                pool.remember(code);
                code
            };
            let end = start + duration;
            let arrival = if rng.chance(LATE_PER_MILLE) {
                end + match rng.weighted(&[60, 30, 10]) {
                    0 => rng.range(5_400, 21_600),
                    1 => rng.range(21_600, 86_400),
                    _ => rng.range(86_400, 259_200),
                } as u32
            } else {
                end
            };
            self.pending.push(Draft {
                arrival,
                seq,
                start,
                duration,
                property,
                caller,
                disposition,
            });
        }
        self.day += 1;
    }

    /// Makes `pending[pos..ready]` non-empty, or returns false when every call is out.
    fn refill(&mut self) -> bool {
        self.pending.drain(..self.ready);
        self.pos = 0;
        self.ready = 0;
        while self.ready == 0 {
            if self.day >= DAYS {
                self.ready = self.pending.len();
                return self.ready > 0;
            }
            self.draft_day();
            self.pending.sort_unstable_by_key(|d| (d.arrival, d.seq));
            // Every call of a later day arrives at or after that day's start.
            let horizon = START_EPOCH + self.day * DAY;
            self.ready = if self.day >= DAYS {
                self.pending.len()
            } else {
                self.pending.partition_point(|d| d.arrival < horizon)
            };
        }
        true
    }

    /// Fills in every field of a drafted call from its own stream, into `call` (whose old
    /// values are all replaced), reusing the strings it held.
    fn build_into(&self, draft: &Draft, call: &mut Call, spare: &mut Spare) {
        spare.reclaim(call);
        let mut rng = Rng::new(draft.seq ^ self.call_salt);
        let rng = &mut rng;
        let property = &self.world.properties[draft.property as usize];
        let account = &self.world.accounts[property.account as usize];
        let industry = &INDUSTRIES[account.industry];
        let number = if property.numbers.len() == 1 || rng.chance(400) {
            &property.numbers[0]
        } else {
            rng.pick(&property.numbers[1..])
        };
        set(&mut call.account_sid, &account.sid);
        set(&mut call.property_sid, &property.sid);
        write_sid(&mut call.call_sid, "CA", self.sid_salt, draft.seq);
        call.date_start = draft.start;
        set(&mut call.to, &number.number);
        call.disposition = draft.disposition;
        call.duration = u64::from(draft.duration);
        if let Some(friendly) = &number.friendly {
            spare.put(&mut call.to_friendly, friendly);
        }

        if draft.caller != ANONYMOUS_CALLER {
            let (country, national) = caller_parts(draft.caller);
            write_e164(&mut call.from, country, national);
            let (code, region, city) = caller_location(draft.caller);
            for (slot, value) in [
                (&mut call.from_country_code, code),
                (&mut call.from_region, region),
                (&mut call.from_city, city),
            ] {
                if let Some(value) = value {
                    spare.put(slot, value);
                }
            }
        } else {
            set(&mut call.from, ANONYMOUS);
        }

        let answered = draft.disposition == Disposition::Answered;
        let routed = matches!(
            draft.disposition,
            Disposition::Answered | Disposition::NoAnswer | Disposition::Busy
        );
        if routed {
            let endpoint = if property.endpoints.len() == 1 || rng.chance(700) {
                &property.endpoints[0]
            } else {
                rng.pick(&property.endpoints[1..])
            };
            spare.put(&mut call.endpoint, endpoint);
        }
        if answered && property.recording && draft.duration > 0 {
            let uri = spare.fill(&mut call.recording_uri);
            uri.push_str("https://recordings.callstore.example/v2/Accounts/");
            uri.push_str(&account.sid);
            uri.push_str("/Recordings/");
            uri.push_str(&call.call_sid);
            uri.push_str(".mp3");
        }

        let ivr_per_mille = match draft.disposition {
            Disposition::IVR => 1000,
            Disposition::Answered => 380,
            Disposition::NoAnswer => 200,
            _ => 0,
        };
        if rng.chance(ivr_per_mille) {
            let depth = 1 + rng.weighted(&[50, 35, 15]);
            let path = spare.fill(&mut call.prompts_keys);
            for level in 0..depth {
                if level > 0 {
                    path.push(',');
                }
                // Key 1 is the most pressed; 0 reaches an operator.
                let key = if rng.chance(40) {
                    0
                } else if rng.chance(450) {
                    1
                } else {
                    rng.range(1, property.menu_width)
                };
                path.push(char::from(b'0' + key as u8));
            }
        }

        self.attribute(rng, draft, account, industry, call, spare);

        if answered && property.survey && rng.chance(450) {
            spare.put(&mut call.survey_type, rng.pick_str(&SURVEY_TYPES));
            let value = rng.range(1, 5) as u8;
            spare
                .fill(&mut call.survey_value)
                .push(char::from(b'0' + value));
            if rng.chance(500) {
                spare.put(&mut call.survey_custom1, rng.pick_str(&SURVEY_CUSTOM1));
            }
            if rng.chance(300) {
                spare.put(&mut call.survey_custom2, rng.pick_str(industry.terms));
            }
            if rng.chance(100) {
                spare.put(&mut call.survey_custom3, rng.pick_str(&SURVEY_CUSTOM3));
            }
            if rng.chance(500) {
                let code = spare.fill(&mut call.survey_unique_code);
                for _ in 0..6 {
                    code.push(char::from(*rng.pick(b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789")));
                }
            }
        }
        if answered && rng.chance(60) {
            spare.put(&mut call.notes, rng.pick_str(&NOTES));
        }
        if account.call_types && rng.chance(700) {
            let call_type = CALL_TYPES[rng.weighted(&CALL_TYPES.map(|c| c.1))].0;
            spare.put(&mut call.call_type, call_type);
        }
    }

    /// Attribution and session fields: 20% unattributed, the rest from a source.
    fn attribute(
        &self,
        rng: &mut Rng,
        draft: &Draft,
        account: &Account,
        industry: &Industry,
        call: &mut Call,
        spare: &mut Spare,
    ) {
        call.session_traffic_type = None;
        if rng.chance(200) {
            if rng.chance(500) {
                call.session_traffic_type = Some(TrafficType::Unattributed);
            }
            return;
        }
        let (source, kind, _) = SOURCES[rng.weighted(&SOURCE_WEIGHTS)];
        let (medium, traffic) = match kind {
            SourceKind::Search if rng.chance(550) => ("cpc", TrafficType::Campaign),
            SourceKind::Search => ("organic", TrafficType::Organic),
            SourceKind::Social if rng.chance(500) => ("paid-social", TrafficType::Campaign),
            SourceKind::Social => ("social", TrafficType::Referral),
            SourceKind::Directory => ("referral", TrafficType::Referral),
            SourceKind::Email => ("email", TrafficType::Campaign),
            SourceKind::Display => ("display", TrafficType::Campaign),
            SourceKind::Direct => ("(none)", TrafficType::Direct),
        };
        call.session_traffic_type = Some(traffic);
        spare.put(&mut call.attribution_source, source);
        spare.put(&mut call.attribution_medium, medium);
        let campaign = match traffic {
            TrafficType::Campaign => {
                let campaign = *rng.pick(&account.campaigns);
                let year = usize::from(draft.start >= START_EPOCH + 366 * DAY);
                &self.world.campaign_names[campaign * 2 + year]
            }
            TrafficType::Organic => "(organic)",
            TrafficType::Referral => "(referral)",
            _ => "(direct)",
        };
        spare.put(&mut call.attribution_campaign, campaign);
        if traffic == TrafficType::Campaign && rng.chance(500) {
            spare.put(&mut call.attribution_content, rng.pick_str(&CONTENTS));
        }
        if kind == SourceKind::Search && rng.chance(600) {
            let term = *rng.pick(industry.terms);
            let keywords = spare.fill(&mut call.session_keywords);
            keywords.push_str(term);
            if rng.chance(250) {
                let (region, cities) = *rng.pick(COUNTRIES[account.country].regions);
                let place = if rng.chance(700) {
                    *rng.pick(cities)
                } else {
                    region
                };
                keywords.push(' ');
                keywords.extend(place.chars().map(|c| c.to_ascii_lowercase()));
            } else {
                keywords.push_str(rng.pick_str(&KEYWORD_MODIFIERS));
            }
        }
        if source == "google" && medium == "cpc" && rng.chance(850) {
            let id = spare.fill(&mut call.google_adwords_click_id);
            id.push_str("Cj0KCQ");
            for _ in 0..42 {
                id.push(char::from(*rng.pick(BASE64URL)));
            }
        }
        if rng.chance(850) {
            let page = if rng.chance(300) {
                ""
            } else {
                rng.pick(industry.pages)
            };
            let utm = traffic == TrafficType::Campaign && rng.chance(600);
            let uri = spare.fill(&mut call.session_landing_uri);
            uri.push_str("https://www.");
            uri.push_str(&account.domain);
            uri.push('/');
            uri.push_str(page);
            if utm {
                for (key, value) in [
                    ("?utm_source=", source),
                    ("&utm_medium=", medium),
                    ("&utm_campaign=", campaign),
                ] {
                    uri.push_str(key);
                    uri.push_str(value);
                }
                if let Some(gclid) = &call.google_adwords_click_id {
                    uri.push_str("&gclid=");
                    uri.push_str(gclid);
                }
            }
        }
        if rng.chance(650) {
            spare.put(
                &mut call.session_conversion_uri,
                rng.pick_str(&CONVERSION_PATHS),
            );
        }
        if rng.chance(550) {
            let first_visit = draft
                .start
                .saturating_sub(rng.below(30 * u64::from(DAY)) as u32);
            let client = rng.range(100_000_000, 2_147_483_647);
            let id = spare.fill(&mut call.google_analytics_client_id);
            id.push_str("GA1.2.");
            push_decimal(id, client);
            id.push('.');
            push_decimal(id, u64::from(first_visit));
        }
    }
}

/// Replaces the text of `s` with `value`, keeping its allocation.
fn set(s: &mut String, value: &str) {
    s.clear();
    s.push_str(value);
}

/// Appends `n` in decimal.
fn push_decimal(s: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    let at = decimal(&mut digits, n);
    s.extend(digits[at..].iter().map(|&d| char::from(d)));
}

/// Strings taken from the optional fields of a reused call, handed out again: once warm,
/// building a call into a reused one allocates nothing.
#[derive(Default)]
struct Spare(Vec<String>);

impl Spare {
    /// Takes every optional string of `call`, leaving it `None`.
    fn reclaim(&mut self, call: &mut Call) {
        for slot in [
            &mut call.from_country_code,
            &mut call.from_region,
            &mut call.from_city,
            &mut call.to_friendly,
            &mut call.recording_uri,
            &mut call.endpoint,
            &mut call.attribution_source,
            &mut call.attribution_medium,
            &mut call.attribution_campaign,
            &mut call.attribution_content,
            &mut call.session_keywords,
            &mut call.session_conversion_uri,
            &mut call.session_landing_uri,
            &mut call.survey_type,
            &mut call.survey_value,
            &mut call.survey_custom1,
            &mut call.survey_custom2,
            &mut call.survey_custom3,
            &mut call.survey_unique_code,
            &mut call.prompts_keys,
            &mut call.notes,
            &mut call.call_type,
            &mut call.google_analytics_client_id,
            &mut call.google_adwords_click_id,
        ] {
            if let Some(s) = slot.take() {
                self.0.push(s);
            }
        }
    }

    /// Sets `slot` to an empty string and returns it.
    fn fill<'a>(&mut self, slot: &'a mut Option<String>) -> &'a mut String {
        let mut s = self.0.pop().unwrap_or_default();
        s.clear();
        slot.insert(s)
    }

    /// Sets `slot` to `value`.
    fn put(&mut self, slot: &mut Option<String>, value: &str) {
        self.fill(slot).push_str(value);
    }
}

const SOURCE_WEIGHTS: [u32; SOURCES.len()] = {
    let mut weights = [0; SOURCES.len()];
    let mut i = 0;
    while i < SOURCES.len() {
        weights[i] = SOURCES[i].2;
        i += 1;
    }
    weights
};

impl Iterator for Generator {
    type Item = Call;

    fn next(&mut self) -> Option<Call> {
        let draft = self.next_draft()?;
        let mut call = Call::new("", "", "", 0, "", draft.disposition);
        self.build_into(&draft, &mut call, &mut Spare::default());
        Some(call)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.calls - self.emitted).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Generator {}

impl std::iter::FusedIterator for Generator {}
