//! Parsing a sensor's batch: NDJSON EVE lines (optionally gzip) into [`ParsedEvent`]s, and
//! deciding which events are *sightings* of a remote actor.
//!
//! Leniency: any JSON object with a string `event_type` is accepted and stored as received
//! (unknown event types, such as ward's `contact` records, are stored generically). Only the few
//! fields the hub needs are read, with borrowed types, so stock Suricata EVE works unchanged.
//!
//! Contract for a batch: every line is either stored or reported back as rejected with its
//! 1-based line number and the reason. Blank lines are skipped and not counted. A gzip body is
//! read to its end, every member of it; anything after the last member refuses the batch.
//!
//! Strictness: the one pass over a line walks every value (not only the fields the hub reads),
//! so a line nested deeper than [`MAX_JSON_DEPTH`] or holding a number beyond a 64-bit float
//! (`1e400`) is rejected with its reason instead of being stored as something no reader can
//! parse back.
//!
//! Size: a line up to [`MAX_LINE_BYTES`] is accepted, but one longer than
//! [`MAX_STORED_EVENT_BYTES`] is stored shortened by [`shorten_event`] (its small fields kept,
//! its largest dropped, and a `ward_truncated` object saying so), the way Suricata bounds
//! payload logging; a signature is kept to [`MAX_SIGNATURE_BYTES`]. So what one event costs
//! every later reader (listings, dashboard pages) is bounded.
//!
//! Sightings: an `alert` event whose remote side can be decided. "Remote" is, in order:
//! 1. when the jurisdiction has a `home_net`, the side outside it (none if both are inside or
//!    both outside and public, in which case rule 3 applies);
//! 2. otherwise the side with a public (globally routable) address when only one side has one;
//! 3. when both sides are public, `alert.source.ip` if the rule set `target`, else `src_ip`.
//!
//! Both sides private or local → no sighting (internal traffic is not a cross-jurisdiction
//! actor). Scan-detector alerts are ordinary alerts keyed off `src_ip` by the same rules.

use std::borrow::Cow;
use std::fmt;
use std::io::Read;
use std::net::IpAddr;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::model::Millis;

/// A sensor batch larger than this (as sent, possibly compressed) is refused with 413: it bounds
/// the memory one request can pin. A sensor should send batches of a few MB.
pub const MAX_BATCH_BODY_BYTES: usize = 32 * 1024 * 1024;
/// The decompressed size limit, against gzip bombs.
pub const MAX_BATCH_DECODED_BYTES: usize = 128 * 1024 * 1024;
/// Lines per batch: bounds the time the single writer spends on one request.
pub const MAX_BATCH_LINES: usize = 100_000;
/// One EVE record larger than this is rejected (Suricata's largest records are a few hundred KB).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;
/// An accepted line longer than this is stored shortened ([`shorten_event`]): every listing
/// and page that shows events pays for what is stored, and 64 KiB keeps every field of real
/// alerts (Suricata's own records stay far below it unless payload logging is on).
pub const MAX_STORED_EVENT_BYTES: usize = 64 * 1024;
/// A signature (rule message) longer than this is cut (with `…`): rule messages are a line of
/// text, and the signature is indexed and shown in every listing and notification.
pub const MAX_SIGNATURE_BYTES: usize = 1024;
/// JSON nested deeper than this is rejected: EVE records nest a handful of levels, and every
/// reader of a stored event (serde_json's own limit is 128) must be able to parse it back.
pub const MAX_JSON_DEPTH: usize = 64;
/// Rejection reasons reported back per batch are capped; the count is always exact.
pub const MAX_REPORTED_REJECTIONS: usize = 1000;
/// An event claiming to be from further in the future than this is clamped to receipt time.
pub const MAX_CLOCK_SKEW_MS: Millis = 5 * 60 * 1000;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BatchError {
    #[error("batch body is not valid gzip: {0}")]
    BadGzip(String),
    #[error("batch decompresses to more than {MAX_BATCH_DECODED_BYTES} bytes: split it")]
    TooLarge,
    #[error("batch has more than {MAX_BATCH_LINES} lines: split it")]
    TooManyLines,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Rejection {
    pub line: usize,
    pub reason: String,
}

/// One accepted line, with the fields the store indexes.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedEvent {
    pub event_type: String,
    pub ts_ms: Millis,
    pub src_ip: Option<IpAddr>,
    pub dest_ip: Option<IpAddr>,
    pub signature_id: Option<i64>,
    pub signature: Option<String>,
    /// Set when the event is a sighting (see the module note); filled by [`classify`].
    pub remote: Option<IpAddr>,
    pub local: Option<IpAddr>,
    /// The remote side's autonomous system, when an ASN database is configured.
    pub remote_asn: Option<u32>,
    /// `alert.source.ip` when the rule set `target`.
    alert_source: Option<IpAddr>,
    pub raw: String,
    /// retro-hunt: a validated `contact` record (crate::retro); stored in its own table.
    pub contact: Option<crate::retro::ContactRecord>,
}

/// The fields of an EVE line the hub reads. Deserialized by hand, not derived: every other
/// value of the line is walked by [`Checked`] rather than skipped (derive skips unknown fields
/// without looking at them), so one pass both reads the head and vets the whole line.
struct EveHead<'a> {
    timestamp: Option<Cow<'a, str>>,
    event_type: Cow<'a, str>,
    src_ip: Option<Cow<'a, str>>,
    dest_ip: Option<Cow<'a, str>>,
    alert: Option<AlertHead<'a>>,
}

struct AlertHead<'a> {
    signature_id: Option<i64>,
    signature: Option<Cow<'a, str>>,
    source: Option<Endpoint<'a>>,
}

struct Endpoint<'a> {
    ip: Option<Cow<'a, str>>,
}

/// Walks any JSON value and refuses what a later reader could not parse back: nesting deeper
/// than [`MAX_JSON_DEPTH`], and (through serde_json, which reports it when it parses a
/// number) numbers beyond a 64-bit float. `level` is the nesting level of the value walked.
#[derive(Clone, Copy)]
struct Checked {
    level: usize,
}

/// How the nesting refusal starts (serde_json appends the position).
const TOO_DEEP: &str = "nested deeper than";

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        if v.is_finite() {
            Ok(())
        } else {
            Err(E::custom("number out of range"))
        }
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.level > MAX_JSON_DEPTH {
            return Err(de::Error::custom(format_args!("{TOO_DEEP} {MAX_JSON_DEPTH} levels")));
        }
        while seq.next_element_seed(Checked { level: self.level + 1 })?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.level > MAX_JSON_DEPTH {
            return Err(de::Error::custom(format_args!("{TOO_DEEP} {MAX_JSON_DEPTH} levels")));
        }
        while map.next_key_seed(Checked { level: self.level + 1 })?.is_some() {
            map.next_value_seed(Checked { level: self.level + 1 })?;
        }
        Ok(())
    }
}

/// A string, borrowed from the line when it has no escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Sets a field once; a field given twice makes the line ambiguous, so it is refused.
fn once<T, E: de::Error>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(name));
    }
    *slot = Some(value);
    Ok(())
}

fn opt_str<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<Cow<'de, str>>, A::Error> {
    Ok(map.next_value::<Option<CowStr<'de>>>()?.map(|s| s.0))
}

impl<'de> Deserialize<'de> for EveHead<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EveHead<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an EVE JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EveHead<'de>, A::Error> {
                let (mut timestamp, mut event_type, mut src_ip, mut dest_ip, mut alert) = (None, None, None, None, None);
                while let Some(key) = map.next_key::<CowStr<'de>>()? {
                    match key.0.as_ref() {
                        "timestamp" => once(&mut timestamp, "timestamp", opt_str(&mut map)?)?,
                        "event_type" => once(&mut event_type, "event_type", map.next_value::<CowStr<'de>>()?.0)?,
                        "src_ip" => once(&mut src_ip, "src_ip", opt_str(&mut map)?)?,
                        "dest_ip" => once(&mut dest_ip, "dest_ip", opt_str(&mut map)?)?,
                        "alert" => once(&mut alert, "alert", map.next_value::<Option<AlertHead<'de>>>()?)?,
                        _ => map.next_value_seed(Checked { level: 2 })?,
                    }
                }
                Ok(EveHead {
                    timestamp: timestamp.flatten(),
                    event_type: event_type.ok_or_else(|| de::Error::missing_field("event_type"))?,
                    src_ip: src_ip.flatten(),
                    dest_ip: dest_ip.flatten(),
                    alert: alert.flatten(),
                })
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for AlertHead<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AlertHead<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an alert object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AlertHead<'de>, A::Error> {
                let (mut signature_id, mut signature, mut source) = (None, None, None);
                while let Some(key) = map.next_key::<CowStr<'de>>()? {
                    match key.0.as_ref() {
                        "signature_id" => once(&mut signature_id, "signature_id", map.next_value::<Option<i64>>()?)?,
                        "signature" => once(&mut signature, "signature", opt_str(&mut map)?)?,
                        "source" => once(&mut source, "source", map.next_value::<Option<Endpoint<'de>>>()?)?,
                        _ => map.next_value_seed(Checked { level: 3 })?,
                    }
                }
                Ok(AlertHead { signature_id: signature_id.flatten(), signature: signature.flatten(), source: source.flatten() })
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for Endpoint<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Endpoint<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an endpoint object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Endpoint<'de>, A::Error> {
                let mut ip = None;
                while let Some(key) = map.next_key::<CowStr<'de>>()? {
                    match key.0.as_ref() {
                        "ip" => once(&mut ip, "ip", opt_str(&mut map)?)?,
                        _ => map.next_value_seed(Checked { level: 4 })?,
                    }
                }
                Ok(Endpoint { ip: ip.flatten() })
            }
        }
        d.deserialize_map(V)
    }
}

/// Decompresses a gzip body within [`MAX_BATCH_DECODED_BYTES`]: every member (`cat a.gz b.gz`
/// is one valid gzip file), and nothing after the last one — trailing bytes that are not a
/// gzip member refuse the whole batch, so no line is ever acknowledged without being read.
pub fn gunzip(body: &[u8]) -> Result<Vec<u8>, BatchError> {
    // A guess for the output size, capped so a small request cannot reserve much memory.
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(16 << 20));
    let mut dec = flate2::bufread::MultiGzDecoder::new(body).take(MAX_BATCH_DECODED_BYTES as u64 + 1);
    dec.read_to_end(&mut out).map_err(|e| BatchError::BadGzip(format!("{e} (a gzip member is damaged, or bytes follow the last member)")))?;
    if out.len() > MAX_BATCH_DECODED_BYTES {
        return Err(BatchError::TooLarge);
    }
    Ok(out)
}

/// How a batch body is encoded, from its `Content-Encoding` header and its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    Identity,
    Gzip,
}

/// The gzip magic number; no NDJSON line can start with it.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// `gzip`/`x-gzip` (or a gzip body without the header, as `curl --data-binary @eve.json.gz`
/// sends) is gzip; no header or `identity` is plain; anything else is refused.
pub fn body_encoding(content_encoding: Option<&str>, body: &[u8]) -> Result<BodyEncoding, String> {
    match content_encoding.map(str::trim) {
        Some(v) if v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip") => Ok(BodyEncoding::Gzip),
        None | Some("") => Ok(if body.starts_with(&GZIP_MAGIC) { BodyEncoding::Gzip } else { BodyEncoding::Identity }),
        Some(v) if v.eq_ignore_ascii_case("identity") => Ok(BodyEncoding::Identity),
        Some(v) => Err(format!("Content-Encoding {v:?} is not supported: send gzip or no encoding")),
    }
}

/// Parses an EVE timestamp (`2016-12-05T18:10:30.123456+0000`, or RFC 3339).
pub fn parse_eve_time(s: &str) -> Option<Millis> {
    if let Ok(t) = chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(t.timestamp_millis());
    }
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis())
}

/// Splits and parses a decoded batch. Lines that fail are reported, the rest returned.
pub fn parse_batch(
    body: &[u8],
    now: Millis,
) -> Result<(Vec<ParsedEvent>, Vec<Rejection>, usize), BatchError> {
    let mut events = Vec::new();
    let mut rejected = Vec::new();
    let mut rejected_total = 0usize;
    let mut lines = 0usize;
    for (idx, line) in body.split(|&b| b == b'\n').enumerate() {
        let line_no = idx + 1;
        let line = trim_ascii(line);
        if line.is_empty() {
            continue;
        }
        lines += 1;
        if lines > MAX_BATCH_LINES {
            return Err(BatchError::TooManyLines);
        }
        match parse_line(line, now) {
            Ok(ev) => events.push(ev),
            Err(reason) => {
                rejected_total += 1;
                if rejected.len() < MAX_REPORTED_REJECTIONS {
                    rejected.push(Rejection { line: line_no, reason });
                }
            }
        }
    }
    Ok((events, rejected, rejected_total))
}

fn trim_ascii(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

fn parse_ip(s: &Option<Cow<'_, str>>) -> Option<IpAddr> {
    s.as_deref().and_then(|s| s.parse().ok())
}

/// Parses one line; the error is the reason reported to the sensor.
pub fn parse_line(line: &[u8], now: Millis) -> Result<ParsedEvent, String> {
    if line.len() > MAX_LINE_BYTES {
        return Err(format!("line longer than {MAX_LINE_BYTES} bytes"));
    }
    let text = std::str::from_utf8(line).map_err(|e| format!("not utf-8: {e}"))?;
    let head: EveHead<'_> = serde_json::from_str(text).map_err(|e| {
        let msg = e.to_string();
        if msg.contains("missing field `event_type`") {
            "not an EVE record: missing string field event_type".to_string()
        } else if msg.starts_with(TOO_DEEP) || msg.starts_with("recursion limit exceeded") {
            format!("refused JSON: {TOO_DEEP} {MAX_JSON_DEPTH} levels ({msg})")
        } else if msg.starts_with("number out of range") {
            format!("refused JSON: a number is beyond a 64-bit float ({msg})")
        } else {
            format!("not an EVE JSON object: {msg}")
        }
    })?;
    if head.event_type.is_empty() || head.event_type.len() > 64 {
        return Err("event_type must be a non-empty string of at most 64 bytes".into());
    }
    let ts_ms = head
        .timestamp
        .as_deref()
        .and_then(parse_eve_time)
        .map(|t| if t > now + MAX_CLOCK_SKEW_MS { now } else { t })
        .unwrap_or(now);
    // ---- retro-hunt: contact records are validated here, so a bad one is reported by line ----
    let contact = if head.event_type == crate::retro::CONTACT_EVENT_TYPE { Some(crate::retro::parse_contact(text, now)?) } else { None };
    let (signature_id, signature, alert_source) = match &head.alert {
        Some(a) => (
            a.signature_id,
            a.signature.as_deref().map(|s| truncate_utf8(s, MAX_SIGNATURE_BYTES)),
            a.source.as_ref().and_then(|s| parse_ip(&s.ip)),
        ),
        None => (None, None, None),
    };
    Ok(ParsedEvent {
        event_type: head.event_type.into_owned(),
        ts_ms,
        src_ip: parse_ip(&head.src_ip),
        dest_ip: parse_ip(&head.dest_ip),
        signature_id,
        signature,
        remote: None,
        local: None,
        remote_asn: None,
        alert_source,
        raw: if text.len() > MAX_STORED_EVENT_BYTES { shorten_event(text) } else { text.to_owned() },
        contact,
    })
}

/// `s` cut to at most `max` bytes at a character boundary, with `…` when cut.
pub fn truncate_utf8(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Room kept under [`MAX_STORED_EVENT_BYTES`] for the `ward_truncated` object.
const TRUNCATION_NOTE_BYTES: usize = 4 * 1024;
/// Dropped fields named in the `ward_truncated` object at most (the count is exact), each
/// name cut to [`MAX_DROPPED_NAME_BYTES`].
const MAX_DROPPED_NAMES: usize = 16;
const MAX_DROPPED_NAME_BYTES: usize = 128;

/// Shortens a valid EVE object to fit [`MAX_STORED_EVENT_BYTES`]: fields are kept smallest
/// first while they fit; an object that does not fit is shortened the same way inside; any
/// other value that does not fit (a payload, a long string or array) is dropped. The result
/// carries `"ward_truncated": {"original_bytes": N, "dropped_total": K, "dropped": [paths]}`.
/// (Keys come out in sorted order: the stored event is a JSON object, not the original text.)
pub fn shorten_event(text: &str) -> String {
    let mut dropped = Vec::new();
    let mut dropped_total = 0usize;
    let mut kept = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(obj)) => fit_object(obj, MAX_STORED_EVENT_BYTES - TRUNCATION_NOTE_BYTES, "", &mut dropped, &mut dropped_total),
        // parse_line has vetted the line already; this keeps the function total.
        _ => {
            dropped_total = 1;
            serde_json::Map::new()
        }
    };
    kept.insert(
        "ward_truncated".into(),
        serde_json::json!({ "original_bytes": text.len(), "dropped_total": dropped_total, "dropped": dropped }),
    );
    serde_json::Value::Object(kept).to_string()
}

/// Bytes `v` takes as JSON, without building the text.
fn json_len<T: serde::Serialize + ?Sized>(v: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

fn fit_object(
    obj: serde_json::Map<String, serde_json::Value>,
    budget: usize,
    path: &str,
    dropped: &mut Vec<String>,
    dropped_total: &mut usize,
) -> serde_json::Map<String, serde_json::Value> {
    let mut entries: Vec<(usize, String, serde_json::Value)> =
        obj.into_iter().map(|(k, v)| (json_len(&k) + 1 + json_len(&v) + 1, k, v)).collect();
    entries.sort_by_key(|e| e.0);
    let mut out = serde_json::Map::new();
    let mut used = 2;
    for (size, key, value) in entries {
        if key == "ward_truncated" {
            continue;
        }
        let name = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
        if used + size <= budget {
            out.insert(key, value);
            used += size;
            continue;
        }
        let key_len = json_len(&key) + 2;
        if let serde_json::Value::Object(inner) = value {
            if used + key_len + 2 <= budget {
                let inner = fit_object(inner, budget - used - key_len, &name, dropped, dropped_total);
                used += key_len + json_len(&inner);
                out.insert(key, serde_json::Value::Object(inner));
                continue;
            }
        }
        *dropped_total += 1;
        if dropped.len() < MAX_DROPPED_NAMES {
            dropped.push(truncate_utf8(&name, MAX_DROPPED_NAME_BYTES));
        }
    }
    out
}

/// A parsed `home_net`: CIDRs the jurisdiction owns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HomeNet(Vec<(IpAddr, u8)>);

impl HomeNet {
    /// Parses `"10.0.0.0/8, 192.0.2.0/24"`; an empty string means "not configured".
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (addr, len) = match part.split_once('/') {
                Some((a, l)) => (a, l.parse::<u8>().map_err(|_| format!("bad prefix length in {part:?}"))?),
                None => (part, if part.contains(':') { 128 } else { 32 }),
            };
            let addr: IpAddr = addr.parse().map_err(|_| format!("bad address in {part:?}"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            if len > max {
                return Err(format!("prefix length too long in {part:?}"));
            }
            nets.push((addr, len));
        }
        Ok(HomeNet(nets))
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|&(net, len)| in_prefix(ip, net, len))
    }
}

fn in_prefix(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len as u32) };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len as u32) };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// Whether an address is globally routable (not private, loopback, link-local, CGNAT,
/// documentation, multicast or unspecified).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8))
        }
    }
}

/// Decides the remote and local side of an alert (see the module note).
pub fn classify(ev: &mut ParsedEvent, home: &HomeNet) {
    if ev.event_type != "alert" {
        return;
    }
    let (Some(src), Some(dst)) = (ev.src_ip, ev.dest_ip) else {
        return;
    };
    let pick = |remote: IpAddr| if remote == src { (src, dst) } else { (dst, src) };
    let decided = if !home.is_empty() && home.contains(src) != home.contains(dst) {
        Some(if home.contains(src) { (dst, src) } else { (src, dst) })
    } else if home.is_empty() || !(home.contains(src) && home.contains(dst)) {
        match (is_public(src), is_public(dst)) {
            (true, false) => Some((src, dst)),
            (false, true) => Some((dst, src)),
            (true, true) => match ev.alert_source {
                Some(s) if s == src || s == dst => Some(pick(s)),
                _ => Some((src, dst)),
            },
            (false, false) => None,
        }
    } else {
        None
    };
    if let Some((remote, local)) = decided {
        if is_public(remote) {
            ev.remote = Some(remote);
            ev.local = Some(local);
        }
    }
}

/// The /24 (IPv4) or /48 (IPv6) prefix of an address, as a CIDR string.
pub fn prefix_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let p = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            format!("{p}/48")
        }
    }
}

/// The actor keys of a remote address: `ip:…`, `net:…`, and `asn:…` when known.
pub fn actor_keys(remote: IpAddr, asn: Option<u32>) -> Vec<String> {
    let mut keys = vec![format!("ip:{remote}"), format!("net:{}", prefix_of(remote))];
    if let Some(asn) = asn {
        keys.push(format!("asn:AS{asn}"));
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_700_000_000_000;

    #[test]
    fn parses_real_suricata_eve_lines() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/oracle/zeek");
        let mut files = 0;
        let mut lines = 0;
        let mut alerts = 0;
        for entry in std::fs::read_dir(dir).expect("oracle data present") {
            let path = entry.unwrap().path();
            if !path.to_string_lossy().ends_with(".eve.json") {
                continue;
            }
            let body = std::fs::read(&path).unwrap();
            let (events, rejected, _) = parse_batch(&body, NOW).unwrap();
            assert!(rejected.is_empty(), "{path:?}: {rejected:?}");
            lines += events.len();
            alerts += events.iter().filter(|e| e.event_type == "alert").count();
            files += 1;
        }
        assert!(files > 100 && lines > 1000, "files={files} lines={lines}");
        assert!(alerts > 10, "alerts={alerts}");
    }

    #[test]
    fn rejects_bad_lines_with_numbers() {
        let body = b"{\"event_type\":\"dns\"}\n\nnot json\n{\"a\":1}\n[1]\n{\"event_type\":\"custom\",\"x\":{}}\n";
        let (events, rejected, total) = parse_batch(body, NOW).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(total, 3);
        let lines: Vec<usize> = rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![3, 4, 5]);
        assert!(rejected[1].reason.contains("event_type"), "{}", rejected[1].reason);
    }

    #[test]
    fn eve_timestamps() {
        assert_eq!(parse_eve_time("1970-01-01T00:00:01.500000+0000"), Some(1500));
        assert_eq!(parse_eve_time("1970-01-01T01:00:00+0100"), Some(0));
        assert_eq!(parse_eve_time("garbage"), None);
    }

    fn alert(src: &str, dst: &str) -> ParsedEvent {
        let line = format!(
            r#"{{"timestamp":"2024-01-01T00:00:00.000000+0000","event_type":"alert","src_ip":"{src}","dest_ip":"{dst}","alert":{{"signature_id":1,"signature":"x"}}}}"#
        );
        parse_line(line.as_bytes(), NOW).unwrap()
    }

    #[test]
    fn remote_is_the_public_side() {
        let mut e = alert("203.0.113.9", "10.1.1.1");
        classify(&mut e, &HomeNet::default());
        assert_eq!(e.remote, None, "documentation range is not public");
        let mut e = alert("10.1.1.1", "8.8.8.8");
        classify(&mut e, &HomeNet::default());
        assert_eq!(e.remote, Some("8.8.8.8".parse().unwrap()));
        let mut e = alert("10.1.1.1", "192.168.0.1");
        classify(&mut e, &HomeNet::default());
        assert_eq!(e.remote, None);
        let mut e = alert("9.9.9.9", "8.8.8.8");
        classify(&mut e, &HomeNet::parse("8.8.8.0/24").unwrap());
        assert_eq!(e.remote, Some("9.9.9.9".parse().unwrap()));
        assert_eq!(e.local, Some("8.8.8.8".parse().unwrap()));
        let mut e = alert("9.9.9.9", "8.8.8.8");
        classify(&mut e, &HomeNet::default());
        assert_eq!(e.remote, Some("9.9.9.9".parse().unwrap()));
    }

    #[test]
    fn keys_and_prefixes() {
        assert_eq!(prefix_of("1.2.3.4".parse().unwrap()), "1.2.3.0/24");
        assert_eq!(prefix_of("2001:4860:1:2::1".parse().unwrap()), "2001:4860:1::/48");
        assert_eq!(
            actor_keys("1.2.3.4".parse().unwrap(), Some(15169)),
            vec!["ip:1.2.3.4", "net:1.2.3.0/24", "asn:AS15169"]
        );
    }

    #[test]
    fn body_encodings() {
        assert_eq!(body_encoding(None, b"{}"), Ok(BodyEncoding::Identity));
        assert_eq!(body_encoding(Some("GZIP"), b"{}"), Ok(BodyEncoding::Gzip));
        assert_eq!(body_encoding(Some("x-gzip"), b""), Ok(BodyEncoding::Gzip));
        assert_eq!(body_encoding(None, &[0x1f, 0x8b, 8]), Ok(BodyEncoding::Gzip));
        assert_eq!(body_encoding(Some("identity"), b"{}"), Ok(BodyEncoding::Identity));
        assert!(body_encoding(Some("br"), b"{}").is_err());
    }

    #[test]
    fn gzip_bodies() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"{\"event_type\":\"dns\"}\n").unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(gunzip(&gz).unwrap(), b"{\"event_type\":\"dns\"}\n");
        assert!(matches!(gunzip(b"nope"), Err(BatchError::BadGzip(_))));
    }
}
