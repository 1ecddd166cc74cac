//! The one place that knows how values are encoded in the file.
//!
//! Call records have a format of their own ([`encode_call`], [`decode_call`], [`call_head`]),
//! because decoding them is most of the cost of a page: every string of a record sits in one
//! UTF-8 area that is validated once, and the lengths come first, so a record is read in place
//! as a [`CallRef`] ([`layout`], [`decode_ref`]) with no allocation, and a merge reads a record's
//! sort key without decoding the rest.
//! Other values (segment headers, pending counts) are bincode 2 through serde
//! ([`encode_header`], [`decode_header`], [`encode_counts`], [`decode_counts`]).
//! Everything stored as bytes goes through this module, so either encoding can be swapped
//! without touching anything else.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::counts::PendingCounts;
use crate::error::StoreError;
use crate::index::SegmentHeader;
use crate::model::{Call, Disposition, TrafficType};
use crate::view::CallRef;

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// Encodes a value.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    bincode::serde::encode_to_vec(value, config())
        .map_err(|e| StoreError::Corrupt(format!("a value does not encode: {e}")))
}

/// Decodes a value written by [`encode`]; `what` names it in the error.
fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, StoreError> {
    match bincode::serde::decode_from_slice(bytes, config()) {
        Ok((value, used)) if used == bytes.len() => Ok(value),
        Ok((_, used)) => Err(StoreError::Corrupt(format!(
            "{what}: {} bytes left over after {used}",
            bytes.len() - used
        ))),
        Err(e) => Err(StoreError::Corrupt(format!("{what} does not decode: {e}"))),
    }
}

/// Encodes a segment's pending call counts.
pub(crate) fn encode_counts(counts: &PendingCounts) -> Result<Vec<u8>, StoreError> {
    encode(counts)
}

/// Decodes a segment's pending call counts.
pub(crate) fn decode_counts(bytes: &[u8]) -> Result<PendingCounts, StoreError> {
    decode(bytes, "a segment's pending call counts")
}

/// Encodes a segment header: its fields through [`encode`], then one byte, 1 for a small
/// segment and 0 otherwise (format 4).
pub(crate) fn encode_header(header: &SegmentHeader) -> Result<Vec<u8>, StoreError> {
    let mut bytes = encode(header)?;
    bytes.push(u8::from(header.small));
    Ok(bytes)
}

/// Decodes a segment header written by [`encode_header`], or by format 3 (without the last
/// byte: not small).
pub(crate) fn decode_header(bytes: &[u8]) -> Result<SegmentHeader, StoreError> {
    let what = "a segment header";
    let (mut header, used): (SegmentHeader, usize) =
        bincode::serde::decode_from_slice(bytes, config())
            .map_err(|e| StoreError::Corrupt(format!("{what} does not decode: {e}")))?;
    header.small = match bytes.get(used..) {
        Some([] | [0]) => false,
        Some([1]) => true,
        rest => {
            return Err(StoreError::Corrupt(format!(
                "{what} ends in {rest:?}, not a small-segment flag"
            )));
        }
    };
    Ok(header)
}

/// Builds blocks of records: many encoded values in one stored value, so that a store keeps
/// one B-tree entry per block rather than per record.
///
/// Layout: the record count (u16, little-endian), the end offset of each record in the payload
/// (u32 each), then the records one after the other.
#[derive(Default)]
pub(crate) struct BlockWriter {
    ends: Vec<u32>,
    payload: Vec<u8>,
}

impl BlockWriter {
    /// Adds an encoded record ([`encode_call`], or taken from another block). When the block
    /// would grow past `limit` bytes (and already holds a record), the block so far is finished
    /// first and returned with its record count; the new record starts the next block.
    pub(crate) fn push_encoded(
        &mut self,
        record: &[u8],
        limit: usize,
    ) -> Result<Option<(u32, Vec<u8>)>, StoreError> {
        let full = !self.ends.is_empty()
            && (self.framed_len(self.ends.len() + 1) + record.len() > limit
                || self.ends.len() >= MAX_BLOCK_ROWS);
        let finished = full.then(|| self.take());
        self.payload.extend_from_slice(record);
        let end = u32::try_from(self.payload.len()).map_err(|_| {
            StoreError::Corrupt(format!("a block grew past 4 GiB: {}", self.payload.len()))
        })?;
        self.ends.push(end);
        Ok(finished)
    }

    /// Whether the block being filled holds no record yet.
    pub(crate) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The framed size of a block of `records` records holding the current payload.
    fn framed_len(&self, records: usize) -> usize {
        2 + 4 * records + self.payload.len()
    }

    /// The block so far with its record count, if it holds any; the writer starts a new,
    /// empty block.
    pub(crate) fn finish(&mut self) -> Option<(u32, Vec<u8>)> {
        if self.ends.is_empty() {
            None
        } else {
            Some(self.take())
        }
    }

    fn take(&mut self) -> (u32, Vec<u8>) {
        let mut out = Vec::with_capacity(self.framed_len(self.ends.len()));
        out.extend_from_slice(&(self.ends.len() as u16).to_le_bytes());
        for end in &self.ends {
            out.extend_from_slice(&end.to_le_bytes());
        }
        out.extend_from_slice(&self.payload);
        let records = self.ends.len() as u32;
        self.ends.clear();
        self.payload.clear();
        (records, out)
    }
}

/// The most records a block holds (its count is a u16).
const MAX_BLOCK_ROWS: usize = 4096;

/// The records of a block written by [`BlockWriter`], as byte slices.
pub(crate) struct Block<'a> {
    ends: &'a [u8],
    payload: &'a [u8],
}

impl<'a> Block<'a> {
    /// Reads a block's framing; `what` names it in errors.
    pub(crate) fn parse(bytes: &'a [u8], what: &str) -> Result<Block<'a>, StoreError> {
        let bad = || StoreError::Corrupt(format!("{what} is cut short ({} bytes)", bytes.len()));
        let (count, rest) = bytes.split_at_checked(2).ok_or_else(bad)?;
        let count = usize::from(u16::from_le_bytes([count[0], count[1]]));
        let (ends, payload) = rest.split_at_checked(4 * count).ok_or_else(bad)?;
        Ok(Block { ends, payload })
    }

    /// How many records the block holds.
    pub(crate) fn len(&self) -> usize {
        self.ends.len() / 4
    }

    fn end(&self, i: usize) -> usize {
        let b = &self.ends[4 * i..4 * i + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
    }

    /// The encoded bytes of record `i`; `what` names it in errors.
    pub(crate) fn record(&self, i: usize, what: &str) -> Result<&'a [u8], StoreError> {
        if i >= self.len() {
            return Err(StoreError::Corrupt(format!(
                "{what}: record {i} of a block of {}",
                self.len()
            )));
        }
        let start = if i == 0 { 0 } else { self.end(i - 1) };
        let end = self.end(i);
        self.payload.get(start..end).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "{what}: record {i} spans bytes {start}..{end} of {}",
                self.payload.len()
            ))
        })
    }
}

/// The optional string fields of a call, in record order.
fn optional_fields(c: &Call) -> [&Option<String>; OPTIONAL_FIELDS] {
    [
        &c.from_country_code,
        &c.from_region,
        &c.from_city,
        &c.to_friendly,
        &c.recording_uri,
        &c.endpoint,
        &c.attribution_source,
        &c.attribution_medium,
        &c.attribution_campaign,
        &c.attribution_content,
        &c.session_keywords,
        &c.session_conversion_uri,
        &c.session_landing_uri,
        &c.survey_type,
        &c.survey_value,
        &c.survey_custom1,
        &c.survey_custom2,
        &c.survey_custom3,
        &c.survey_unique_code,
        &c.prompts_keys,
        &c.notes,
        &c.call_type,
        &c.google_analytics_client_id,
        &c.google_adwords_click_id,
    ]
}

/// The optional string fields of a call, in record order, to change (the tests fill them all).
#[cfg(test)]
fn optional_fields_mut(c: &mut Call) -> [&mut Option<String>; OPTIONAL_FIELDS] {
    [
        &mut c.from_country_code,
        &mut c.from_region,
        &mut c.from_city,
        &mut c.to_friendly,
        &mut c.recording_uri,
        &mut c.endpoint,
        &mut c.attribution_source,
        &mut c.attribution_medium,
        &mut c.attribution_campaign,
        &mut c.attribution_content,
        &mut c.session_keywords,
        &mut c.session_conversion_uri,
        &mut c.session_landing_uri,
        &mut c.survey_type,
        &mut c.survey_value,
        &mut c.survey_custom1,
        &mut c.survey_custom2,
        &mut c.survey_custom3,
        &mut c.survey_unique_code,
        &mut c.prompts_keys,
        &mut c.notes,
        &mut c.call_type,
        &mut c.google_analytics_client_id,
        &mut c.google_adwords_click_id,
    ]
}

const OPTIONAL_FIELDS: usize = 24;
/// `AccountSid`, `CallSid`, `PropertySid`, `From`, `To`, in record order.
const REQUIRED_FIELDS: usize = 5;
/// Date (4), disposition (1), traffic type (1), which optional strings are present (4).
const FIXED_BYTES: usize = 10;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// Encodes a call record at the end of `out`.
///
/// Layout: `Date_Start` (u32 LE), disposition (u8), traffic type (u8, 0 for none), a u32 LE
/// mask of the optional strings present; `Duration` as a varint; the byte length of each
/// string (the required ones, then the present optional ones, in field order) as varints;
/// then the strings, one after the other.
pub(crate) fn encode_call(c: &Call, out: &mut Vec<u8>) {
    let disposition = Disposition::ALL
        .iter()
        .position(|d| *d == c.disposition)
        .unwrap_or(0) as u8;
    let traffic = c.session_traffic_type.map_or(0, |t| {
        TrafficType::ALL.iter().position(|x| *x == t).unwrap_or(0) as u8 + 1
    });
    let optional = optional_fields(c);
    let mut mask = 0u32;
    for (i, field) in optional.iter().enumerate() {
        if field.is_some() {
            mask |= 1 << i;
        }
    }
    out.extend_from_slice(&c.date_start.to_le_bytes());
    out.push(disposition);
    out.push(traffic);
    out.extend_from_slice(&mask.to_le_bytes());
    put_varint(out, c.duration);
    let required = [&c.account_sid, &c.call_sid, &c.property_sid, &c.from, &c.to];
    let strings = || {
        required
            .into_iter()
            .map(String::as_str)
            .chain(optional.iter().filter_map(|f| f.as_deref()))
    };
    for s in strings() {
        put_varint(out, s.len() as u64);
    }
    for s in strings() {
        out.extend_from_slice(s.as_bytes());
    }
}

/// A record's fixed part, string lengths and string area.
struct Parts<'a> {
    date_start: u32,
    disposition: u8,
    traffic: u8,
    mask: u32,
    duration: u64,
    lens: [u32; REQUIRED_FIELDS + OPTIONAL_FIELDS],
    count: usize,
    text: &'a str,
}

fn parts(bytes: &[u8]) -> Result<Parts<'_>, StoreError> {
    let bad =
        |why: &str| StoreError::Corrupt(format!("a call record {why} ({} bytes)", bytes.len()));
    let fixed = bytes
        .get(..FIXED_BYTES)
        .ok_or_else(|| bad("is cut short"))?;
    let date_start = u32::from_le_bytes([fixed[0], fixed[1], fixed[2], fixed[3]]);
    let mask = u32::from_le_bytes([fixed[6], fixed[7], fixed[8], fixed[9]]);
    if mask >> OPTIONAL_FIELDS != 0 {
        return Err(bad("marks unknown fields"));
    }
    let mut at = FIXED_BYTES;
    let duration = get_varint(bytes, &mut at).ok_or_else(|| bad("has a bad duration"))?;
    let count = REQUIRED_FIELDS + mask.count_ones() as usize;
    let mut lens = [0u32; REQUIRED_FIELDS + OPTIONAL_FIELDS];
    let mut total: u64 = 0;
    for len in lens.iter_mut().take(count) {
        let n = get_varint(bytes, &mut at).ok_or_else(|| bad("has a bad string length"))?;
        *len = u32::try_from(n).map_err(|_| bad("has a string past 4 GiB"))?;
        total += n;
    }
    let area = &bytes[at.min(bytes.len())..];
    if area.len() as u64 != total {
        return Err(bad("has strings of the wrong total length"));
    }
    let text = std::str::from_utf8(area).map_err(|_| bad("holds invalid UTF-8"))?;
    Ok(Parts {
        date_start,
        disposition: fixed[4],
        traffic: fixed[5],
        mask,
        duration,
        lens,
        count,
        text,
    })
}

/// Where the fields of one call record lie in a text holding its strings: the fixed fields, and
/// where each of its strings ends (absent optional strings take no room).
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    date_start: u32,
    duration: u64,
    disposition: Disposition,
    traffic: Option<TrafficType>,
    mask: u32,
    /// Where the first string starts.
    start: usize,
    /// Where each string ends, in record order; only the record's own strings are set.
    ends: [usize; REQUIRED_FIELDS + OPTIONAL_FIELDS],
}

/// Reads the layout of a call record written by [`encode_call`]; its strings are the returned
/// text, borrowed from `bytes`. Every check of the record is made here, so that a layout always
/// views its text without failing.
pub(crate) fn layout(bytes: &[u8]) -> Result<(Layout, &str), StoreError> {
    let p = parts(bytes)?;
    let disposition = *Disposition::ALL
        .get(usize::from(p.disposition))
        .ok_or_else(|| {
            StoreError::Corrupt(format!("a call record has disposition {}", p.disposition))
        })?;
    let traffic =
        match p.traffic {
            0 => None,
            t => Some(*TrafficType::ALL.get(usize::from(t) - 1).ok_or_else(|| {
                StoreError::Corrupt(format!("a call record has traffic type {t}"))
            })?),
        };
    let mut ends = [0usize; REQUIRED_FIELDS + OPTIONAL_FIELDS];
    let mut at = 0usize;
    for (end, &len) in ends.iter_mut().zip(&p.lens[..p.count]) {
        at += len as usize;
        if !p.text.is_char_boundary(at) {
            return Err(StoreError::Corrupt(format!(
                "a call record splits a character at byte {at}"
            )));
        }
        *end = at;
    }
    let layout = Layout {
        date_start: p.date_start,
        duration: p.duration,
        disposition,
        traffic,
        mask: p.mask,
        start: 0,
        ends,
    };
    Ok((layout, p.text))
}

impl Layout {
    /// The call's `Date_Start`.
    pub(crate) fn date_start(&self) -> u32 {
        self.date_start
    }

    /// The call's `CallSid`, in `text` where this layout says.
    pub(crate) fn sid<'a>(&self, text: &'a str) -> &'a str {
        self.string(text, 1)
    }

    /// String `i` of the record (in record order), in `text` where this layout says.
    fn string<'a>(&self, text: &'a str, i: usize) -> &'a str {
        let from = match i {
            0 => self.start,
            _ => self.ends[i - 1],
        };
        // In range on a character boundary: `layout` checked both.
        text.get(from..self.ends[i]).unwrap_or_default()
    }

    /// The same layout for strings moved `by` bytes further into a text.
    pub(crate) fn shifted(mut self, by: usize) -> Layout {
        self.start += by;
        for end in &mut self.ends {
            *end += by;
        }
        self
    }

    /// The call whose strings are in `text` where this layout says.
    pub(crate) fn view<'a>(&self, text: &'a str) -> CallRef<'a> {
        let mut strings = (0..self.ends.len()).map(|i| self.string(text, i));
        let mut next = || strings.next().unwrap_or_default();
        let account_sid = next();
        let call_sid = next();
        let property_sid = next();
        let from_number = next();
        let to = next();
        let mut optional: [Option<&str>; OPTIONAL_FIELDS] = [None; OPTIONAL_FIELDS];
        for (i, field) in optional.iter_mut().enumerate() {
            if self.mask & (1 << i) != 0 {
                *field = Some(next());
            }
        }
        let [
            from_country_code,
            from_region,
            from_city,
            to_friendly,
            recording_uri,
            endpoint,
            attribution_source,
            attribution_medium,
            attribution_campaign,
            attribution_content,
            session_keywords,
            session_conversion_uri,
            session_landing_uri,
            survey_type,
            survey_value,
            survey_custom1,
            survey_custom2,
            survey_custom3,
            survey_unique_code,
            prompts_keys,
            notes,
            call_type,
            google_analytics_client_id,
            google_adwords_click_id,
        ] = optional;
        CallRef {
            account_sid,
            call_sid,
            property_sid,
            date_start: self.date_start,
            from: from_number,
            from_country_code,
            from_region,
            from_city,
            to,
            to_friendly,
            duration: self.duration,
            disposition: self.disposition,
            recording_uri,
            endpoint,
            attribution_source,
            attribution_medium,
            attribution_campaign,
            attribution_content,
            session_traffic_type: self.traffic,
            session_keywords,
            session_conversion_uri,
            session_landing_uri,
            survey_type,
            survey_value,
            survey_custom1,
            survey_custom2,
            survey_custom3,
            survey_unique_code,
            prompts_keys,
            notes,
            call_type,
            google_analytics_client_id,
            google_adwords_click_id,
        }
    }
}

/// Decodes a call record written by [`encode_call`] in place.
pub(crate) fn decode_ref(bytes: &[u8]) -> Result<CallRef<'_>, StoreError> {
    let (layout, text) = layout(bytes)?;
    Ok(layout.view(text))
}

/// Decodes a call record written by [`encode_call`].
pub(crate) fn decode_call(bytes: &[u8]) -> Result<Call, StoreError> {
    Ok(decode_ref(bytes)?.to_call())
}

/// The sort key of an encoded call record without decoding it: its `AccountSid`, `CallSid` and
/// `Date_Start`, borrowed from `bytes`.
pub(crate) fn call_head(bytes: &[u8]) -> Result<(&str, &str, u32), StoreError> {
    let (layout, text) = layout(bytes)?;
    Ok((layout.string(text, 0), layout.sid(text), layout.date_start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{GenerateOptions, Generator};

    fn sample_calls() -> Vec<Call> {
        let mut calls: Vec<Call> = Generator::new(&GenerateOptions {
            calls: 2_000,
            seed: 11,
            accounts: 5,
        })
        .collect();
        // Every optional string present, with non-ASCII text, and every traffic type.
        let mut full = calls[0].clone();
        for (i, field) in optional_fields_mut(&mut full).into_iter().enumerate() {
            *field = Some(format!("é{i}ü"));
        }
        full.duration = u64::MAX;
        full.date_start = u32::MAX;
        for t in TrafficType::ALL {
            let mut c = full.clone();
            c.session_traffic_type = Some(t);
            calls.push(c);
        }
        let mut bare = Call::new("", "", "", 0, "", Disposition::Failed);
        bare.from = String::new();
        calls.push(bare);
        calls
    }

    #[test]
    fn calls_round_trip() {
        for call in sample_calls() {
            let mut bytes = Vec::new();
            encode_call(&call, &mut bytes);
            assert_eq!(decode_call(&bytes).unwrap(), call);
            assert_eq!(
                call_head(&bytes).unwrap(),
                (
                    call.account_sid.as_str(),
                    call.call_sid.as_str(),
                    call.date_start
                )
            );
        }
    }

    #[test]
    fn a_page_views_each_record_as_it_decodes() {
        let calls = sample_calls();
        let mut page = crate::page::Page::default();
        for call in &calls {
            let mut bytes = Vec::new();
            encode_call(call, &mut bytes);
            page.push_record(&bytes).unwrap();
            assert_eq!(decode_ref(&bytes).unwrap(), call.view());
        }
        assert_eq!(page.len(), calls.len());
        assert_eq!(page.to_calls(), calls);
        assert!(
            page.iter()
                .rev()
                .map(|c| c.to_call())
                .eq(calls.iter().rev().cloned())
        );
        assert_eq!(page.get(calls.len()), None);
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        for call in sample_calls().iter().step_by(97) {
            let mut bytes = Vec::new();
            encode_call(call, &mut bytes);
            for cut in 0..bytes.len() {
                assert!(decode_call(&bytes[..cut]).is_err(), "cut at {cut}");
            }
            for at in 0..bytes.len() {
                for flip in [0x01, 0x80, 0xff] {
                    let mut damaged = bytes.clone();
                    damaged[at] ^= flip;
                    // Either an error or some call: never a panic.
                    let _ = decode_call(&damaged);
                    let _ = call_head(&damaged);
                    // A page takes a record only whole, and then views it like a decode.
                    let mut page = crate::page::Page::default();
                    if page.push_record(&damaged).is_ok() {
                        let decoded = decode_call(&damaged).unwrap();
                        assert_eq!(page.get(0).map(|c| c.to_call()), Some(decoded));
                    } else {
                        assert!(page.is_empty());
                    }
                }
            }
        }
    }

    #[test]
    fn blocks_split_at_the_limit_and_keep_every_record() {
        let calls = sample_calls();
        let mut writer = BlockWriter::default();
        let mut blocks = Vec::new();
        for call in &calls {
            let mut record = Vec::new();
            encode_call(call, &mut record);
            if let Some(done) = writer.push_encoded(&record, 4096).unwrap() {
                blocks.push(done);
            }
        }
        blocks.extend(writer.finish());
        assert!(blocks.len() > 10);
        let mut decoded = Vec::new();
        for (records, bytes) in &blocks {
            let block = Block::parse(bytes, "a block").unwrap();
            assert_eq!(block.len(), *records as usize);
            assert!(
                bytes.len() <= 4096 || *records == 1,
                "{} bytes",
                bytes.len()
            );
            for i in 0..block.len() {
                decoded.push(decode_call(block.record(i, "test").unwrap()).unwrap());
            }
            assert!(block.record(block.len(), "test").is_err());
        }
        assert_eq!(decoded, calls);
    }
}
