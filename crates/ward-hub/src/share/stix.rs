//! STIX 2.1 objects as the hub writes and reads them.
//!
//! * **Ids are deterministic**: `type--UUIDv5(namespace, key)`, where the namespace is the hub's
//!   own ([`IdSpace::for_hub`]) and the key names the fact (`indicator|ip|198.51.100.7`,
//!   `campaign|42`). Exporting the same fact again gives the same id with a newer `modified`,
//!   which every STIX consumer reads as a new version of one object, never as a duplicate; an
//!   object received from a peer keeps the peer's id, so paths through several hubs converge.
//! * **Every object carries a TLP 2.0 marking** (`object_marking_refs` with the standard ids of
//!   [`ward_model::tlp::Tlp`]); the marking definitions themselves go into every bundle.
//! * **Patterns**: the hub's indicators are single observables (an address, a network, a
//!   domain, a URL, an AS number). [`Observable::pattern`] writes them
//!   (`[ipv4-addr:value = '198.51.100.7']`, `[ipv4-addr:value ISSUBSET '198.51.100.0/24']`), and
//!   [`parse_pattern`] reads patterns of that shape, joined by `OR`, from imports; any other
//!   pattern (AND, FOLLOWEDBY, other object paths) is refused with a reason, not guessed at.
//! * Withdrawal is a new version with `revoked: true`; [`StixObject::is_withdrawn`] also treats a
//!   `valid_until` in the past as withdrawn.
//!
//! Everything here is pure: no I/O, no store. The TAXII server, the feeds and federation build
//! on it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;
use ward_model::tlp::Tlp;

use crate::model::Millis;

pub const SPEC_VERSION: &str = "2.1";

/// The namespace under which every ward hub derives its own id namespace (a fixed random UUID).
pub const WARD_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2b0e_8d4a_4f7e_9b3c_5e2a_7d10_c4e9);

/// Longest pattern read from an import, in bytes.
pub const MAX_PATTERN_BYTES: usize = 8 * 1024;
/// Most comparisons in one imported pattern.
pub const MAX_PATTERN_TERMS: usize = 256;

/// A STIX timestamp: RFC 3339, UTC, millisecond precision (`2026-11-03T13:00:00.000Z`).
pub fn timestamp(ms: Millis) -> String {
    let t = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms).unwrap_or_default();
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Reads a STIX timestamp (any RFC 3339 time with a zone) as milliseconds since the epoch.
pub fn parse_timestamp(s: &str) -> Option<Millis> {
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis())
}

/// Where a hub's deterministic ids come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdSpace {
    namespace: Uuid,
}

impl IdSpace {
    /// The id space of the hub named `hub` (its configured name, e.g. `ohio-hub`): two hubs
    /// with different names never mint the same id; the same hub always mints the same one.
    pub fn for_hub(hub: &str) -> IdSpace {
        IdSpace { namespace: Uuid::new_v5(&WARD_NAMESPACE, hub.as_bytes()) }
    }

    /// `type--uuid` for the fact named `key`.
    pub fn id(&self, stix_type: &str, key: &str) -> String {
        format!("{stix_type}--{}", Uuid::new_v5(&self.namespace, format!("{stix_type}|{key}").as_bytes()))
    }
}

/// Checks a STIX identifier: `type--UUID`, the type in lower-case letters, digits and hyphens.
pub fn valid_id(id: &str) -> bool {
    let Some((ty, uuid)) = id.split_once("--") else { return false };
    !ty.is_empty()
        && ty.len() <= 250
        && ty.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && Uuid::parse_str(uuid).is_ok_and(|u| u.hyphenated().to_string() == uuid)
}

/// One observable an indicator stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Observable {
    Ip(IpAddr),
    /// A network, normalised (host bits zero).
    Net(IpAddr, u8),
    Domain(String),
    Url(String),
    Asn(u32),
}

impl Observable {
    /// The hub's indicator kinds: `ip`, `net`, `asn`, `domain`, `url`.
    pub fn from_kind(kind: &str, value: &str) -> Result<Observable, PatternError> {
        let bad = || PatternError::Value(format!("{kind} {value:?}"));
        match kind {
            "ip" => value.parse().map(Observable::Ip).map_err(|_| bad()),
            "net" => {
                let net: ipnet::IpNet = value.parse().map_err(|_| bad())?;
                Ok(Observable::Net(net.trunc().addr(), net.prefix_len()))
            }
            "asn" => value.trim_start_matches("AS").parse().map(Observable::Asn).map_err(|_| bad()),
            "domain" => crate::retro::normalize_domain(value).map(Observable::Domain).map_err(|_| bad()),
            "url" if value.len() <= 2048 && !value.chars().any(char::is_control) => Ok(Observable::Url(value.to_string())),
            _ => Err(bad()),
        }
    }

    /// The hub's indicator kind and value for this observable.
    pub fn kind_value(&self) -> (&'static str, String) {
        match self {
            Observable::Ip(a) => ("ip", a.to_string()),
            Observable::Net(a, p) => ("net", format!("{a}/{p}")),
            Observable::Domain(d) => ("domain", d.clone()),
            Observable::Url(u) => ("url", u.clone()),
            Observable::Asn(n) => ("asn", n.to_string()),
        }
    }

    /// The STIX pattern of this observable.
    pub fn pattern(&self) -> String {
        match self {
            Observable::Ip(IpAddr::V4(a)) => format!("[ipv4-addr:value = '{a}']"),
            Observable::Ip(IpAddr::V6(a)) => format!("[ipv6-addr:value = '{a}']"),
            Observable::Net(IpAddr::V4(a), p) => format!("[ipv4-addr:value ISSUBSET '{a}/{p}']"),
            Observable::Net(IpAddr::V6(a), p) => format!("[ipv6-addr:value ISSUBSET '{a}/{p}']"),
            Observable::Domain(d) => format!("[domain-name:value = '{}']", quote(d)),
            Observable::Url(u) => format!("[url:value = '{}']", quote(u)),
            Observable::Asn(n) => format!("[autonomous-system:number = {n}]"),
        }
    }

    /// A short human name (an indicator's `name`).
    pub fn describe(&self) -> String {
        match self {
            Observable::Ip(a) => a.to_string(),
            Observable::Net(a, p) => format!("{a}/{p}"),
            Observable::Domain(d) => d.clone(),
            Observable::Url(u) => u.clone(),
            Observable::Asn(n) => format!("AS{n}"),
        }
    }
}

/// Escapes a string for a single-quoted pattern literal.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

/// Why an imported pattern was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// Longer than [`MAX_PATTERN_BYTES`] or more than [`MAX_PATTERN_TERMS`] comparisons.
    TooLarge,
    /// Not a STIX pattern at all.
    Syntax(String),
    /// A valid pattern the hub cannot turn into sensor indicators (AND, FOLLOWEDBY, other paths…).
    Unsupported(String),
    /// An object path the hub reads, with a value it does not accept.
    Value(String),
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatternError::TooLarge => write!(f, "pattern too large (at most {MAX_PATTERN_BYTES} bytes and {MAX_PATTERN_TERMS} comparisons)"),
            PatternError::Syntax(m) => write!(f, "not a STIX pattern: {m}"),
            PatternError::Unsupported(m) => write!(f, "pattern not supported for sensor indicators: {m}"),
            PatternError::Value(m) => write!(f, "bad value in pattern: {m}"),
        }
    }
}

impl std::error::Error for PatternError {}

/// Reads a STIX pattern made of single-observable comparisons joined by `OR` (inside one
/// observation expression or between several): `[ipv4-addr:value = '1.2.3.4' OR
/// domain-name:value = 'x.example'] OR [url:value = 'http://x.example/a']`. Comparisons: `=` on
/// `ipv4-addr:value`, `ipv6-addr:value`, `domain-name:value`, `url:value`,
/// `autonomous-system:number`, and `ISSUBSET` on the address types. Anything else is refused.
pub fn parse_pattern(pattern: &str) -> Result<Vec<Observable>, PatternError> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(PatternError::TooLarge);
    }
    let tokens = tokenize(pattern)?;
    let mut p = Parser { tokens, at: 0, out: Vec::new() };
    p.observation_or()?;
    if p.at != p.tokens.len() {
        return Err(p.unsupported_here());
    }
    let mut out = p.out;
    out.sort();
    out.dedup();
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    LParen,
    RParen,
    Word(String),
    Str(String),
    Num(String),
    Op(String),
}

fn tokenize(s: &str) -> Result<Vec<Token>, PatternError> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '[' | ']' | '(' | ')' => {
                chars.next();
                out.push(match c {
                    '[' => Token::Open,
                    ']' => Token::Close,
                    '(' => Token::LParen,
                    _ => Token::RParen,
                });
            }
            '\'' => {
                chars.next();
                let mut lit = String::new();
                loop {
                    match chars.next() {
                        None => return Err(PatternError::Syntax(format!("unterminated string at byte {i}"))),
                        Some((_, '\\')) => match chars.next() {
                            Some((_, e @ ('\\' | '\''))) => lit.push(e),
                            _ => return Err(PatternError::Syntax(format!("bad escape in the string at byte {i}"))),
                        },
                        Some((_, '\'')) => break,
                        Some((_, ch)) => lit.push(ch),
                    }
                }
                out.push(Token::Str(lit));
            }
            '=' | '!' | '<' | '>' => {
                chars.next();
                let mut op = c.to_string();
                if let Some(&(_, '=')) = chars.peek() {
                    op.push('=');
                    chars.next();
                }
                out.push(Token::Op(op));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut n = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_ascii_alphanumeric() || d == '.' || d == '-' || d == ':' {
                        n.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Token::Num(n));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut w = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_ascii_alphanumeric() || matches!(d, '_' | '-' | ':' | '.' | '*') {
                        w.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Token::Word(w));
            }
            other => return Err(PatternError::Syntax(format!("unexpected {other:?} at byte {i}"))),
        }
        if out.len() > 4 * MAX_PATTERN_TERMS + 8 {
            return Err(PatternError::TooLarge);
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    out: Vec<Observable>,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    fn unsupported_here(&self) -> PatternError {
        match self.peek() {
            Some(Token::Word(w)) => PatternError::Unsupported(format!("{w} is not supported (only OR of single comparisons)")),
            Some(t) => PatternError::Syntax(format!("unexpected {t:?}")),
            None => PatternError::Syntax("unexpected end".into()),
        }
    }

    /// observation ( OR observation )*
    fn observation_or(&mut self) -> Result<(), PatternError> {
        self.observation()?;
        while self.is_word("OR") {
            self.next();
            self.observation()?;
        }
        Ok(())
    }

    /// `[ comparison_or ]` or `( observation_or )`
    fn observation(&mut self) -> Result<(), PatternError> {
        match self.next() {
            Some(Token::Open) => {
                self.comparison_or()?;
                match self.next() {
                    Some(Token::Close) => {}
                    _ => return Err(self.unsupported_before()),
                }
                // Qualifiers (WITHIN, REPEATS, START/STOP) change what a match means.
                if self.is_word("WITHIN") || self.is_word("REPEATS") || self.is_word("START") {
                    return Err(self.unsupported_here());
                }
                Ok(())
            }
            Some(Token::LParen) => {
                self.observation_or()?;
                match self.next() {
                    Some(Token::RParen) => Ok(()),
                    _ => Err(PatternError::Syntax("missing )".into())),
                }
            }
            Some(t) => Err(PatternError::Syntax(format!("expected [ or (, found {t:?}"))),
            None => Err(PatternError::Syntax("empty pattern".into())),
        }
    }

    fn unsupported_before(&self) -> PatternError {
        let at = self.at.saturating_sub(1);
        match self.tokens.get(at) {
            Some(Token::Word(w)) => PatternError::Unsupported(format!("{w} is not supported (only OR of single comparisons)")),
            Some(t) => PatternError::Syntax(format!("unexpected {t:?}")),
            None => PatternError::Syntax("missing ]".into()),
        }
    }

    fn comparison_or(&mut self) -> Result<(), PatternError> {
        self.comparison_term()?;
        while self.is_word("OR") {
            self.next();
            self.comparison_term()?;
        }
        if self.is_word("AND") {
            return Err(self.unsupported_here());
        }
        Ok(())
    }

    fn comparison_term(&mut self) -> Result<(), PatternError> {
        if matches!(self.peek(), Some(Token::LParen)) {
            self.next();
            self.comparison_or()?;
            return match self.next() {
                Some(Token::RParen) => Ok(()),
                _ => Err(PatternError::Syntax("missing )".into())),
            };
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<(), PatternError> {
        if self.out.len() >= MAX_PATTERN_TERMS {
            return Err(PatternError::TooLarge);
        }
        let mut path = match self.next() {
            Some(Token::Word(w)) => w,
            t => return Err(PatternError::Syntax(format!("expected an object path, found {t:?}"))),
        };
        // A quoted path component (`file:hashes.'SHA-256'`), possibly followed by more of the path.
        while path.ends_with('.') {
            match self.next() {
                Some(Token::Str(part)) => path.push_str(&format!("'{part}'")),
                _ => return Err(PatternError::Syntax(format!("object path {path} ends with a dot"))),
            }
            if let Some(Token::Word(rest)) = self.peek() {
                if rest.starts_with('.') {
                    path.push_str(&rest.clone());
                    self.next();
                }
            }
        }
        if self.is_word("NOT") {
            return Err(PatternError::Unsupported("NOT".into()));
        }
        let op = match self.next() {
            Some(Token::Op(o)) => o,
            Some(Token::Word(w)) => w.to_ascii_uppercase(),
            t => return Err(PatternError::Syntax(format!("expected an operator after {path}, found {t:?}"))),
        };
        let value = self.next();
        let ob = match (path.as_str(), op.as_str(), value) {
            ("ipv4-addr:value" | "ipv6-addr:value", "=", Some(Token::Str(v))) if v.contains('/') => net(&path, &v)?,
            ("ipv4-addr:value", "=", Some(Token::Str(v))) => Observable::Ip(IpAddr::V4(
                v.parse::<Ipv4Addr>().map_err(|_| PatternError::Value(format!("ipv4-addr {v:?}")))?,
            )),
            ("ipv6-addr:value", "=", Some(Token::Str(v))) => Observable::Ip(IpAddr::V6(
                v.parse::<Ipv6Addr>().map_err(|_| PatternError::Value(format!("ipv6-addr {v:?}")))?,
            )),
            ("ipv4-addr:value" | "ipv6-addr:value", "ISSUBSET", Some(Token::Str(v))) => net(&path, &v)?,
            ("domain-name:value", "=", Some(Token::Str(v))) => Observable::from_kind("domain", &v)?,
            ("url:value", "=", Some(Token::Str(v))) => Observable::from_kind("url", &v)?,
            ("autonomous-system:number", "=", Some(Token::Num(n))) => {
                Observable::Asn(n.parse().map_err(|_| PatternError::Value(format!("autonomous-system {n:?}")))?)
            }
            (p, o, _) => return Err(PatternError::Unsupported(format!("{p} {o}"))),
        };
        self.out.push(ob);
        Ok(())
    }
}

fn net(path: &str, v: &str) -> Result<Observable, PatternError> {
    let bad = || PatternError::Value(format!("{path} {v:?}"));
    if !v.contains('/') {
        let a: IpAddr = v.parse().map_err(|_| bad())?;
        return Ok(Observable::Ip(a));
    }
    let n: ipnet::IpNet = v.parse().map_err(|_| bad())?;
    if n.addr().is_ipv4() != (path == "ipv4-addr:value") {
        return Err(bad());
    }
    let full = if n.addr().is_ipv4() { 32 } else { 128 };
    Ok(if n.prefix_len() == full { Observable::Ip(n.addr()) } else { Observable::Net(n.trunc().addr(), n.prefix_len()) })
}

/// The common properties of every object the hub writes.
#[derive(Debug, Clone)]
pub struct Common {
    pub created_ms: Millis,
    pub modified_ms: Millis,
    pub tlp: Tlp,
    /// The `identity` that made the object (the hub).
    pub created_by_ref: Option<String>,
    pub revoked: bool,
    /// STIX confidence, 0–100.
    pub confidence: Option<u8>,
}

/// The properties every SDO the hub writes has (type, ids, times, creator, TLP marking).
pub fn base(stix_type: &str, id: &str, c: &Common) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), json!(stix_type));
    m.insert("spec_version".into(), json!(SPEC_VERSION));
    m.insert("id".into(), json!(id));
    m.insert("created".into(), json!(timestamp(c.created_ms)));
    m.insert("modified".into(), json!(timestamp(c.modified_ms.max(c.created_ms))));
    if let Some(by) = &c.created_by_ref {
        m.insert("created_by_ref".into(), json!(by));
    }
    if c.revoked {
        m.insert("revoked".into(), json!(true));
    }
    if let Some(conf) = c.confidence {
        m.insert("confidence".into(), json!(conf.min(100)));
    }
    m.insert("object_marking_refs".into(), json!([c.tlp.stix_id()]));
    m
}

/// An `identity`: the hub itself (`class` = `organization`), a jurisdiction, or an anonymised
/// one such as "a county in OH" (`sectors` = `government`).
pub fn identity(id: &str, name: &str, class: &str, description: Option<&str>, c: &Common) -> Value {
    let mut m = base("identity", id, c);
    m.insert("name".into(), json!(name));
    m.insert("identity_class".into(), json!(class));
    m.insert("sectors".into(), json!(["government-local"]));
    if let Some(d) = description {
        m.insert("description".into(), json!(d));
    }
    Value::Object(m)
}

/// An `indicator` for one observable.
pub fn indicator(id: &str, ob: &Observable, description: &str, valid_from_ms: Millis, valid_until_ms: Option<Millis>, labels: &[&str], c: &Common) -> Value {
    let mut m = base("indicator", id, c);
    m.insert("name".into(), json!(ob.describe()));
    if !description.is_empty() {
        m.insert("description".into(), json!(description));
    }
    m.insert("indicator_types".into(), json!(["malicious-activity"]));
    m.insert("pattern".into(), json!(ob.pattern()));
    m.insert("pattern_type".into(), json!("stix"));
    m.insert("pattern_version".into(), json!("2.1"));
    m.insert("valid_from".into(), json!(timestamp(valid_from_ms)));
    if let Some(until) = valid_until_ms {
        // STIX requires valid_until after valid_from.
        m.insert("valid_until".into(), json!(timestamp(until.max(valid_from_ms + 1))));
    }
    if !labels.is_empty() {
        m.insert("labels".into(), json!(labels));
    }
    Value::Object(m)
}

/// A `campaign`.
pub fn campaign(id: &str, name: &str, description: &str, first_seen_ms: Millis, last_seen_ms: Millis, c: &Common) -> Value {
    let mut m = base("campaign", id, c);
    m.insert("name".into(), json!(name));
    if !description.is_empty() {
        m.insert("description".into(), json!(description));
    }
    m.insert("first_seen".into(), json!(timestamp(first_seen_ms)));
    m.insert("last_seen".into(), json!(timestamp(last_seen_ms.max(first_seen_ms))));
    Value::Object(m)
}

/// A `sighting` of `sighting_of_ref` (an indicator or campaign) where `where_sighted_refs` (identities) saw it.
pub fn sighting(id: &str, sighting_of_ref: &str, where_sighted_refs: &[String], count: i64, first_seen_ms: Millis, last_seen_ms: Millis, c: &Common) -> Value {
    let mut m = base("sighting", id, c);
    m.insert("sighting_of_ref".into(), json!(sighting_of_ref));
    if !where_sighted_refs.is_empty() {
        m.insert("where_sighted_refs".into(), json!(where_sighted_refs));
    }
    // STIX bounds count to 0..=999,999,999.
    m.insert("count".into(), json!(count.clamp(0, 999_999_999)));
    m.insert("first_seen".into(), json!(timestamp(first_seen_ms)));
    m.insert("last_seen".into(), json!(timestamp(last_seen_ms.max(first_seen_ms))));
    Value::Object(m)
}

/// A `relationship` (`indicates`, `attributed-to`, `related-to`, …).
pub fn relationship(id: &str, relationship_type: &str, source_ref: &str, target_ref: &str, c: &Common) -> Value {
    let mut m = base("relationship", id, c);
    m.insert("relationship_type".into(), json!(relationship_type));
    m.insert("source_ref".into(), json!(source_ref));
    m.insert("target_ref".into(), json!(target_ref));
    Value::Object(m)
}

/// A `note` on objects (an analyst's annotation).
pub fn note(id: &str, content: &str, object_refs: &[String], c: &Common) -> Value {
    let mut m = base("note", id, c);
    m.insert("content".into(), json!(content));
    m.insert("object_refs".into(), json!(object_refs));
    Value::Object(m)
}

/// A `report` naming a set of objects (a campaign's whole picture).
pub fn report(id: &str, name: &str, published_ms: Millis, object_refs: &[String], c: &Common) -> Value {
    let mut m = base("report", id, c);
    m.insert("name".into(), json!(name));
    m.insert("report_types".into(), json!(["campaign", "threat-actor"]));
    m.insert("published".into(), json!(timestamp(published_ms)));
    m.insert("object_refs".into(), json!(object_refs));
    Value::Object(m)
}

/// A `bundle` of objects (its id is random, as STIX says a bundle is transient).
pub fn bundle(objects: Vec<Value>) -> Value {
    json!({ "type": "bundle", "id": format!("bundle--{}", Uuid::new_v4()), "objects": objects })
}

/// The TLP marking definitions for the levels used by `objects` (to put in a bundle beside them).
pub fn markings_for(objects: &[Value]) -> Vec<Value> {
    let mut levels: Vec<Tlp> = objects
        .iter()
        .flat_map(|o| o["object_marking_refs"].as_array().into_iter().flatten())
        .filter_map(|r| r.as_str().and_then(Tlp::from_stix_id))
        .collect();
    levels.sort();
    levels.dedup();
    levels.into_iter().map(Tlp::marking_definition).collect()
}

/// An object received from outside (a TAXII POST, a feed, a peer), with the properties the hub
/// acts on read and checked; `raw` is the object as received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StixObject {
    #[serde(rename = "type")]
    pub stix_type: String,
    pub id: String,
    #[serde(default)]
    pub spec_version: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub modified: Option<String>,
    #[serde(default)]
    pub revoked: bool,
    #[serde(default)]
    pub confidence: Option<i64>,
    #[serde(default)]
    pub object_marking_refs: Vec<String>,
    #[serde(default)]
    pub created_by_ref: Option<String>,
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub pattern_type: Option<String>,
    #[serde(default)]
    pub valid_from: Option<String>,
    #[serde(default)]
    pub valid_until: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(skip)]
    pub raw: Value,
}

/// Why a received object was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectError(pub String);

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ObjectError {}

impl StixObject {
    /// Reads and checks one object: a valid id of its own type, STIX 2.1, `created`/`modified`
    /// timestamps for objects that have them (not for marking definitions' `modified` or for
    /// SCOs), and for indicators a `pattern` and a `valid_from`.
    pub fn from_value(v: Value) -> Result<StixObject, ObjectError> {
        // Read through a reference: the object is not copied to be checked.
        let mut o = StixObject::deserialize(&v).map_err(|e| ObjectError(format!("not a STIX object: {e}")))?;
        o.raw = v;
        if !valid_id(&o.id) || !o.id.starts_with(&format!("{}--", o.stix_type)) {
            return Err(ObjectError(format!("bad id {:?} for type {:?}", truncate(&o.id), truncate(&o.stix_type))));
        }
        if o.stix_type != "bundle" && o.spec_version.as_deref().is_some_and(|s| s != SPEC_VERSION) {
            return Err(ObjectError(format!("{}: spec_version {:?} (only 2.1 is read)", o.id, o.spec_version.as_deref().unwrap_or(""))));
        }
        for (name, value) in [("created", &o.created), ("modified", &o.modified), ("valid_from", &o.valid_from), ("valid_until", &o.valid_until)] {
            if let Some(t) = value {
                if parse_timestamp(t).is_none() {
                    return Err(ObjectError(format!("{}: {name} {:?} is not a timestamp", o.id, truncate(t))));
                }
            }
        }
        if is_sdo_or_sro(&o.stix_type) && (o.created.is_none() || o.modified.is_none()) {
            return Err(ObjectError(format!("{}: created and modified are required", o.id)));
        }
        if let Some(c) = o.confidence {
            if !(0..=100).contains(&c) {
                return Err(ObjectError(format!("{}: confidence {c} is outside 0–100", o.id)));
            }
        }
        if o.stix_type == "indicator" && (o.pattern.is_none() || o.valid_from.is_none() || o.pattern_type.is_none()) {
            return Err(ObjectError(format!("{}: an indicator needs pattern, pattern_type and valid_from", o.id)));
        }
        Ok(o)
    }

    /// The object's TLP: the narrowest TLP marking on it, `None` when unmarked.
    pub fn tlp(&self) -> Option<Tlp> {
        Tlp::from_marking_refs(self.object_marking_refs.iter().map(String::as_str))
    }

    /// `modified` (or `created`) as milliseconds: the version of the object.
    pub fn version_ms(&self) -> Option<Millis> {
        self.modified.as_deref().or(self.created.as_deref()).and_then(parse_timestamp)
    }

    /// Revoked, or valid only until a time that has passed.
    pub fn is_withdrawn(&self, now: Millis) -> bool {
        self.revoked || self.valid_until.as_deref().and_then(parse_timestamp).is_some_and(|t| t <= now)
    }

    /// For an indicator with a STIX pattern: the observables it stands for.
    pub fn observables(&self) -> Result<Vec<Observable>, PatternError> {
        match (self.pattern_type.as_deref(), self.pattern.as_deref()) {
            (Some("stix"), Some(p)) => parse_pattern(p),
            (Some(t), _) => Err(PatternError::Unsupported(format!("pattern_type {}", truncate(t)))),
            _ => Err(PatternError::Syntax("no pattern".into())),
        }
    }
}

fn is_sdo_or_sro(t: &str) -> bool {
    matches!(
        t,
        "attack-pattern" | "campaign" | "course-of-action" | "grouping" | "identity" | "incident" | "indicator" | "infrastructure"
            | "intrusion-set" | "location" | "malware" | "malware-analysis" | "note" | "observed-data" | "opinion" | "report"
            | "threat-actor" | "tool" | "vulnerability" | "relationship" | "sighting"
    )
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(p: &str) -> Vec<Observable> {
        parse_pattern(p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    #[test]
    fn patterns_written_read_back() {
        for (kind, value) in [("ip", "198.51.100.7"), ("ip", "2001:db8::7"), ("net", "198.51.100.0/24"), ("net", "2001:db8::/32"), ("domain", "x.example"), ("asn", "64500"), ("url", "http://x.example/a'b\\c")] {
            let o = Observable::from_kind(kind, value).unwrap();
            assert_eq!(obs(&o.pattern()), vec![o.clone()], "{}", o.pattern());
            assert_eq!(o.kind_value().0, kind);
        }
        assert_eq!(Observable::from_kind("ip", "198.51.100.7").unwrap().pattern(), "[ipv4-addr:value = '198.51.100.7']");
        assert_eq!(Observable::from_kind("net", "198.51.100.9/24").unwrap().pattern(), "[ipv4-addr:value ISSUBSET '198.51.100.0/24']");
    }

    #[test]
    fn or_of_comparisons_is_read_and_everything_else_refused() {
        let got = obs("[ipv4-addr:value = '1.2.3.4' OR domain-name:value = 'A.Example'] OR ([url:value = 'http://x.example/'])");
        assert_eq!(got.len(), 3);
        assert!(got.contains(&Observable::Domain("a.example".into())));
        assert_eq!(obs("[ipv4-addr:value = '10.0.0.0/8']"), vec![Observable::Net("10.0.0.0".parse().unwrap(), 8)]);
        for bad in [
            "[ipv4-addr:value = '1.2.3.4' AND network-traffic:dst_port = 80]",
            "[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [ipv4-addr:value = '1.2.3.5']",
            "[file:hashes.'SHA-256' = 'aa']",
            "[ipv4-addr:value = '1.2.3.4'] WITHIN 5 SECONDS",
            "[ipv4-addr:value NOT = '1.2.3.4']",
            "[ipv4-addr:value != '1.2.3.4']",
        ] {
            assert!(matches!(parse_pattern(bad), Err(PatternError::Unsupported(_))), "{bad}: {:?}", parse_pattern(bad));
        }
        for bad in ["", "[", "[ipv4-addr:value = '1.2.3.4'", "[ipv4-addr:value = '1.2.3", "ipv4-addr:value = '1.2.3.4'", "[ipv4-addr:value = 'x']", "[ipv4-addr:value ISSUBSET '2001:db8::/32']"] {
            assert!(parse_pattern(bad).is_err(), "{bad}");
        }
        let huge = format!("[{}]", vec!["ipv4-addr:value = '1.2.3.4'"; 300].join(" OR "));
        assert_eq!(parse_pattern(&huge), Err(PatternError::TooLarge));
        assert_eq!(parse_pattern(&"[".repeat(MAX_PATTERN_BYTES + 1)), Err(PatternError::TooLarge));
    }

    #[test]
    fn ids_are_deterministic_per_hub_and_valid() {
        let a = IdSpace::for_hub("ohio");
        let b = IdSpace::for_hub("utah");
        assert_eq!(a.id("indicator", "ip|1.2.3.4"), a.id("indicator", "ip|1.2.3.4"));
        assert_ne!(a.id("indicator", "ip|1.2.3.4"), b.id("indicator", "ip|1.2.3.4"));
        assert_ne!(a.id("indicator", "k"), a.id("campaign", "k"));
        assert!(valid_id(&a.id("indicator", "k")));
        assert!(!valid_id("indicator--not-a-uuid") && !valid_id("Indicator--6f1c2b0e-8d4a-4f7e-9b3c-5e2a7d10c4e9"));
    }

    #[test]
    fn received_objects_are_checked() {
        let c = Common { created_ms: 1_700_000_000_000, modified_ms: 1_700_000_000_000, tlp: Tlp::Green, created_by_ref: None, revoked: false, confidence: Some(80) };
        let id = IdSpace::for_hub("h").id("indicator", "ip|1.2.3.4");
        let v = indicator(&id, &Observable::from_kind("ip", "1.2.3.4").unwrap(), "", c.created_ms, Some(c.created_ms - 5), &[], &c);
        let o = StixObject::from_value(v.clone()).unwrap();
        assert_eq!(o.tlp(), Some(Tlp::Green));
        assert!(o.is_withdrawn(c.created_ms + 10), "valid_until is bumped past valid_from, and it has passed");
        assert_eq!(o.observables().unwrap(), vec![Observable::Ip("1.2.3.4".parse().unwrap())]);
        let mut bad = v.clone();
        bad["id"] = json!("campaign--6f1c2b0e-8d4a-4f7e-9b3c-5e2a7d10c4e9");
        assert!(StixObject::from_value(bad).is_err());
        let mut bad = v;
        bad["modified"] = json!("yesterday");
        assert!(StixObject::from_value(bad).is_err());
        assert!(StixObject::from_value(json!({"type": "indicator"})).is_err());
    }
}
