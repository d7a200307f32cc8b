//! Indicator lists: IP addresses/CIDRs (v4 and v6) and domains, matched against flow
//! endpoints, DNS query names and answers, TLS SNI and HTTP host.
//!
//! Formats, detected per file:
//! * plain: one indicator per line (`203.0.113.7`, `198.51.100.0/24`, `2001:db8::/32`,
//!   `evil.example`), `#` comments;
//! * CSV: `id,type,value,severity,description,expiry` (a header line starting with `id,` is
//!   skipped); `type` is `ip`, `cidr`, `ipv4`, `ipv6` or `domain`; `severity` 1 (high) to 3;
//!   `expiry` RFC 3339 or Unix seconds, empty for none. Descriptions may be double-quoted.
//!
//! Lookups: addresses by one hash probe per prefix length present in the set (longest prefix
//! wins), domains by one hash probe per label suffix (`a.b.evil.example` probes four names), so
//! a domain indicator covers its subdomains. Expired indicators are dropped at load and ignored
//! when matching at a later timestamp.
//!
//! A match is an alert with gid [`INDICATOR_GID`] and a sid naming where it matched
//! ([`IndicatorField::sid`]); the indicator's id, value and description go in the alert's
//! `context` object.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use ward_model::eve::Alert;
use ward_model::Timestamp;

use crate::input::{DnsInput, HttpInput, PacketInput, TlsInput};

/// gid of indicator alerts.
pub const INDICATOR_GID: u32 = 9000;
/// Longest domain name (RFC 1035: 253 characters plus the root).
pub const MAX_DOMAIN_LEN: usize = 255;
/// Longest description kept per indicator; longer ones are cut (they are written into alerts).
pub const MAX_DESCRIPTION_LEN: usize = 1024;

/// Where an indicator matched; each is its own sid under [`INDICATOR_GID`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorField {
    SrcIp,
    DestIp,
    DnsQuery,
    DnsAnswer,
    TlsSni,
    HttpHost,
}

impl IndicatorField {
    pub fn sid(self) -> u64 {
        match self {
            IndicatorField::SrcIp => 1,
            IndicatorField::DestIp => 2,
            IndicatorField::DnsQuery => 3,
            IndicatorField::DnsAnswer => 4,
            IndicatorField::TlsSni => 5,
            IndicatorField::HttpHost => 6,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IndicatorField::SrcIp => "src_ip",
            IndicatorField::DestIp => "dest_ip",
            IndicatorField::DnsQuery => "dns.query",
            IndicatorField::DnsAnswer => "dns.answer",
            IndicatorField::TlsSni => "tls.sni",
            IndicatorField::HttpHost => "http.host",
        }
    }
}

/// The kind of an indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorKind {
    Ip,
    Domain,
}

/// One indicator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Indicator {
    pub id: Box<str>,
    pub kind: IndicatorKind,
    /// As written (CIDR or domain, lower-cased).
    pub value: Box<str>,
    /// 1 high, 2 medium, 3 low.
    pub severity: u8,
    pub description: Box<str>,
    /// Microseconds since the epoch after which the indicator is ignored.
    pub expires: Option<i64>,
}

/// Why an indicator line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndicatorError {
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("cannot read indicator file {path}: {reason}")]
    File { path: String, reason: String },
}

/// A multiplicative hasher for fixed-size keys (addresses): SipHash is several times slower and
/// the keys are not attacker-chosen in a way that can degrade a per-prefix table.
#[derive(Default)]
struct FxHasher(u64);
impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u32(&mut self, i: u32) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u128(&mut self, i: u128) {
        self.write_u64(i as u64);
        self.write_u64((i >> 64) as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}
type FxBuild = BuildHasherDefault<FxHasher>;

/// An immutable set of indicators with its lookup tables.
#[derive(Debug, Default)]
pub struct IndicatorSet {
    indicators: Vec<Arc<Indicator>>,
    /// Per prefix length (longest first): network address → indicator index.
    v4: Vec<(u8, HashMap<u32, u32, FxBuild>)>,
    v6: Vec<(u8, HashMap<u128, u32, FxBuild>)>,
    domains: HashMap<Box<[u8]>, u32>,
    /// Lines rejected while loading.
    pub errors: Vec<IndicatorError>,
    /// Indicators dropped at load because they had expired.
    pub expired: usize,
}

/// One indicator match.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorHit {
    pub indicator: Arc<Indicator>,
    pub field: IndicatorField,
    /// What was seen: the address or name that matched.
    pub observed: String,
}

fn parse_expiry(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(secs) = s.parse::<i64>() {
        return Some(secs.saturating_mul(1_000_000));
    }
    Timestamp::parse(s).map(|t| t.as_micros())
}

/// Splits a CSV line, honouring double quotes (`""` inside quotes is a quote).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn normalize_domain(s: &str) -> Option<String> {
    let d = s.trim().trim_end_matches('.').trim_start_matches("*.").to_ascii_lowercase();
    if d.is_empty() || d.len() > MAX_DOMAIN_LEN || !d.contains('.') && d.len() < 2 {
        return None;
    }
    if !d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_') {
        return None;
    }
    Some(d)
}

/// (network, prefix) of an address or CIDR text.
enum Net {
    V4(u32, u8),
    V6(u128, u8),
}

fn parse_net(s: &str) -> Option<Net> {
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a.trim(), Some(p.trim().parse::<u8>().ok()?)),
        None => (s.trim(), None),
    };
    match a.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let bits = p.unwrap_or(32);
            if bits > 32 {
                return None;
            }
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            Some(Net::V4(u32::from(v4) & mask, bits))
        }
        IpAddr::V6(v6) => {
            let bits = p.unwrap_or(128);
            if bits > 128 {
                return None;
            }
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            Some(Net::V6(u128::from(v6) & mask, bits))
        }
    }
}

/// Builder: add indicators, then [`IndicatorSetBuilder::build`].
#[derive(Debug, Default)]
pub struct IndicatorSetBuilder {
    set: IndicatorSet,
    v4: HashMap<u8, HashMap<u32, u32, FxBuild>>,
    v6: HashMap<u8, HashMap<u128, u32, FxBuild>>,
    now: i64,
}

impl IndicatorSetBuilder {
    /// `now` decides which indicators have expired.
    pub fn new(now: Timestamp) -> Self {
        IndicatorSetBuilder { now: now.as_micros(), ..Default::default() }
    }

    /// Adds one indicator; `kind` `None` guesses from the value.
    #[allow(clippy::too_many_arguments)]
    pub fn add(&mut self, id: &str, kind: Option<&str>, value: &str, severity: u8, description: &str, expires: Option<i64>) -> Result<(), String> {
        if let Some(e) = expires {
            if e <= self.now {
                self.set.expired += 1;
                return Ok(());
            }
        }
        let kind = kind.map(|k| k.trim().to_ascii_lowercase());
        let want_ip = match kind.as_deref() {
            None | Some("") => None,
            Some("ip" | "cidr" | "ipv4" | "ipv6" | "ip-dst" | "ip-src" | "ipv4-addr" | "ipv6-addr") => Some(true),
            Some("domain" | "fqdn" | "hostname" | "domain-name") => Some(false),
            Some(other) => return Err(format!("unknown indicator type {other:?}: use ip, cidr or domain")),
        };
        let desc: String = description.trim().chars().take(MAX_DESCRIPTION_LEN).collect();
        let index = self.set.indicators.len() as u32;
        if want_ip != Some(false) {
            if let Some(net) = parse_net(value) {
                match net {
                    Net::V4(n, b) => {
                        self.v4.entry(b).or_default().entry(n).or_insert(index);
                    }
                    Net::V6(n, b) => {
                        self.v6.entry(b).or_default().entry(n).or_insert(index);
                    }
                }
                self.push(id, IndicatorKind::Ip, value.trim().to_string(), severity, desc, expires);
                return Ok(());
            }
            if want_ip == Some(true) {
                return Err(format!("bad address {value:?}: expected an IPv4/IPv6 address or CIDR"));
            }
        }
        let d = normalize_domain(value).ok_or_else(|| format!("bad indicator {value:?}: expected an address, CIDR or domain name"))?;
        self.set.domains.entry(d.clone().into_bytes().into_boxed_slice()).or_insert(index);
        self.push(id, IndicatorKind::Domain, d, severity, desc, expires);
        Ok(())
    }

    fn push(&mut self, id: &str, kind: IndicatorKind, value: String, severity: u8, description: String, expires: Option<i64>) {
        self.set.indicators.push(Arc::new(Indicator {
            id: id.into(),
            kind,
            value: value.into_boxed_str(),
            severity: severity.clamp(1, 3),
            description: description.into_boxed_str(),
            expires,
        }));
    }

    /// Adds the lines of a plain or CSV indicator file. Bad lines are recorded in the set's
    /// `errors`; `origin` prefixes generated ids (`origin:line`).
    pub fn add_text(&mut self, text: &str, origin: &str) {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let lineno = i + 1;
            let result = if line.contains(',') {
                let f = split_csv(line);
                if f[0].trim().eq_ignore_ascii_case("id") {
                    continue;
                }
                if f.len() < 3 {
                    Err("expected id,type,value,severity,description,expiry".to_string())
                } else {
                    let severity = f.get(3).map(|s| s.trim()).filter(|s| !s.is_empty()).map_or(Ok(2), |s| match s.to_ascii_lowercase().as_str() {
                        "high" | "critical" => Ok(1),
                        "medium" => Ok(2),
                        "low" => Ok(3),
                        n => n.parse::<u8>().map_err(|_| format!("bad severity {n:?}: expected 1-3, high, medium or low")),
                    });
                    let expiry = f.get(5).map(|s| s.trim()).filter(|s| !s.is_empty());
                    let expires = match expiry {
                        None => Ok(None),
                        Some(e) => parse_expiry(e).map(Some).ok_or_else(|| format!("bad expiry {e:?}: expected RFC 3339 or Unix seconds")),
                    };
                    match (severity, expires) {
                        (Ok(sev), Ok(exp)) => {
                            let id = if f[0].trim().is_empty() { format!("{origin}:{lineno}") } else { f[0].trim().to_string() };
                            self.add(&id, Some(f[1].trim()), f[2].trim(), sev, f.get(4).map_or("", |s| s.as_str()), exp)
                        }
                        (Err(e), _) | (_, Err(e)) => Err(e),
                    }
                }
            } else {
                let value = line.split_whitespace().next().unwrap_or(line);
                self.add(&format!("{origin}:{lineno}"), None, value, 2, "", None)
            };
            if let Err(reason) = result {
                self.set.errors.push(IndicatorError::Line { line: lineno, reason });
            }
        }
    }

    /// Adds a file (see [`IndicatorSetBuilder::add_text`]).
    pub fn add_file(&mut self, path: &Path) {
        match std::fs::read_to_string(path) {
            Ok(t) => self.add_text(&t, &path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())),
            Err(e) => self.set.errors.push(IndicatorError::File { path: path.display().to_string(), reason: e.to_string() }),
        }
    }

    pub fn build(mut self) -> IndicatorSet {
        let mut v4: Vec<_> = self.v4.into_iter().collect();
        v4.sort_by_key(|e| std::cmp::Reverse(e.0));
        let mut v6: Vec<_> = self.v6.into_iter().collect();
        v6.sort_by_key(|e| std::cmp::Reverse(e.0));
        self.set.v4 = v4;
        self.set.v6 = v6;
        self.set.domains.shrink_to_fit();
        self.set
    }
}

impl IndicatorSet {
    /// Loads indicator files; unreadable files and bad lines are listed in `errors`.
    pub fn load(paths: &[impl AsRef<Path>], now: Timestamp) -> IndicatorSet {
        let mut b = IndicatorSetBuilder::new(now);
        for p in paths {
            b.add_file(p.as_ref());
        }
        b.build()
    }

    pub fn len(&self) -> usize {
        self.indicators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indicators.is_empty()
    }

    fn live(&self, idx: u32, ts: Timestamp) -> Option<&Arc<Indicator>> {
        let ind = self.indicators.get(idx as usize)?;
        match ind.expires {
            Some(e) if e <= ts.as_micros() => None,
            _ => Some(ind),
        }
    }

    /// The most specific live indicator covering `ip`.
    pub fn match_ip(&self, ip: IpAddr, ts: Timestamp) -> Option<&Arc<Indicator>> {
        if self.v4.is_empty() && self.v6.is_empty() {
            return None;
        }
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(v4) => {
                let a = u32::from(v4);
                for (bits, map) in &self.v4 {
                    let mask = if *bits == 0 { 0 } else { u32::MAX << (32 - bits) };
                    if let Some(&i) = map.get(&(a & mask)) {
                        if let Some(ind) = self.live(i, ts) {
                            return Some(ind);
                        }
                    }
                }
            }
            IpAddr::V6(v6) => {
                let a = u128::from(v6);
                for (bits, map) in &self.v6 {
                    let mask = if *bits == 0 { 0 } else { u128::MAX << (128 - bits) };
                    if let Some(&i) = map.get(&(a & mask)) {
                        if let Some(ind) = self.live(i, ts) {
                            return Some(ind);
                        }
                    }
                }
            }
        }
        None
    }

    /// The live domain indicator equal to `name` or to one of its parent domains (the most
    /// specific wins). Case and a trailing dot are ignored.
    pub fn match_domain(&self, name: &[u8], ts: Timestamp) -> Option<&Arc<Indicator>> {
        if self.domains.is_empty() || name.is_empty() || name.len() > MAX_DOMAIN_LEN + 1 {
            return None;
        }
        let mut buf = [0u8; MAX_DOMAIN_LEN + 1];
        let name = name.strip_suffix(b".").unwrap_or(name);
        let lower = &mut buf[..name.len()];
        for (d, s) in lower.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        let mut start = 0;
        loop {
            if let Some(&i) = self.domains.get(&lower[start..]) {
                if let Some(ind) = self.live(i, ts) {
                    return Some(ind);
                }
            }
            match memchr::memchr(b'.', &lower[start..]) {
                Some(p) => start += p + 1,
                None => return None,
            }
        }
    }

    fn hit_ip(&self, ip: IpAddr, field: IndicatorField, ts: Timestamp, out: &mut Vec<IndicatorHit>) {
        if let Some(ind) = self.match_ip(ip, ts) {
            out.push(IndicatorHit { indicator: ind.clone(), field, observed: ward_model::eve::format_ip(ip) });
        }
    }

    fn hit_name(&self, name: &[u8], field: IndicatorField, ts: Timestamp, out: &mut Vec<IndicatorHit>) {
        if let Some(ind) = self.match_domain(name, ts) {
            out.push(IndicatorHit { indicator: ind.clone(), field, observed: String::from_utf8_lossy(name).into_owned() });
        }
    }

    /// Checks a flow's endpoints; call once per flow (its first packet), not per packet.
    pub fn check_flow(&self, pkt: &PacketInput<'_>, out: &mut Vec<IndicatorHit>) {
        self.hit_ip(pkt.src_ip, IndicatorField::SrcIp, pkt.ts, out);
        self.hit_ip(pkt.dst_ip, IndicatorField::DestIp, pkt.ts, out);
    }

    /// Checks a DNS message's query names, answer names and answer addresses.
    pub fn check_dns(&self, pkt: &PacketInput<'_>, dns: &DnsInput<'_>, out: &mut Vec<IndicatorHit>) {
        for q in dns.queries {
            self.hit_name(q, IndicatorField::DnsQuery, pkt.ts, out);
        }
        for a in dns.answers {
            self.hit_name(a, IndicatorField::DnsAnswer, pkt.ts, out);
        }
        for &ip in dns.answer_ips {
            self.hit_ip(ip, IndicatorField::DnsAnswer, pkt.ts, out);
        }
    }

    /// Checks a TLS handshake's SNI.
    pub fn check_tls(&self, pkt: &PacketInput<'_>, tls: &TlsInput<'_>, out: &mut Vec<IndicatorHit>) {
        if let Some(sni) = tls.sni {
            self.hit_name(sni, IndicatorField::TlsSni, pkt.ts, out);
        }
    }

    /// Checks an HTTP request's host (port suffix ignored).
    pub fn check_http(&self, pkt: &PacketInput<'_>, tx: &HttpInput<'_>, out: &mut Vec<IndicatorHit>) {
        if let Some(h) = tx.host {
            let host = match h.iter().rposition(|&b| b == b':') {
                Some(p) if !h.contains(&b']') || h[..p].ends_with(b"]") => &h[..p],
                _ => h,
            };
            self.hit_name(host, IndicatorField::HttpHost, pkt.ts, out);
        }
    }
}

impl IndicatorHit {
    /// The EVE alert: gid 9000, sid by field, severity from the indicator, details under `context`.
    pub fn to_eve_alert(&self) -> Alert {
        let ind = &self.indicator;
        let what = match ind.kind {
            IndicatorKind::Ip => "address",
            IndicatorKind::Domain => "domain",
        };
        let mut signature = format!("WARD indicator {what} {} in {}", ind.value, self.field.as_str());
        if !ind.description.is_empty() {
            signature.push_str(": ");
            signature.push_str(&ind.description);
        }
        Alert {
            action: "allowed".into(),
            gid: INDICATOR_GID,
            signature_id: self.field.sid(),
            rev: 1,
            signature,
            category: "Indicator match".into(),
            severity: ind.severity,
            metadata: None,
            source: None,
            target: None,
            references: vec![],
            context: Some(serde_json::json!({
                "indicator": {
                    "id": ind.id,
                    "type": ind.kind,
                    "value": ind.value,
                    "description": ind.description,
                    "field": self.field.as_str(),
                    "observed": self.observed,
                }
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_secs_micros(secs, 0)
    }

    fn set(text: &str) -> IndicatorSet {
        let mut b = IndicatorSetBuilder::new(ts(1_700_000_000));
        b.add_text(text, "test");
        b.build()
    }

    #[test]
    fn plain_list_ips_cidrs_domains() {
        let s = set("# comment\n203.0.113.7\n198.51.100.0/24\n2001:db8::/32\nEvil.Example.\n");
        assert_eq!(s.len(), 4);
        assert!(s.errors.is_empty());
        let now = ts(1_700_000_100);
        assert!(s.match_ip("203.0.113.7".parse().unwrap(), now).is_some());
        assert!(s.match_ip("203.0.113.8".parse().unwrap(), now).is_none());
        assert!(s.match_ip("198.51.100.200".parse().unwrap(), now).is_some());
        assert!(s.match_ip("::ffff:198.51.100.1".parse().unwrap(), now).is_some());
        assert!(s.match_ip("2001:db8:1::5".parse().unwrap(), now).is_some());
        assert!(s.match_ip("2001:db9::5".parse().unwrap(), now).is_none());
        assert!(s.match_domain(b"evil.example", now).is_some());
        assert!(s.match_domain(b"A.B.EVIL.example.", now).is_some());
        assert!(s.match_domain(b"notevil.example", now).is_none());
        assert!(s.match_domain(b"example", now).is_none());
    }

    #[test]
    fn csv_with_expiry_severity_and_longest_prefix() {
        let s = set(
            "id,type,value,severity,description,expiry\n\
             a1,cidr,10.0.0.0/8,3,\"broad, low\",\n\
             a2,ip,10.1.2.3,1,specific,2030-01-01T00:00:00Z\n\
             a3,domain,old.example,2,expired already,1600000000\n\
             a4,domain,later.example,2,expires soon,1700000500\n\
             a5,bogus,x,1,,\n\
             a6,ip,not-an-ip,1,,\n",
        );
        assert_eq!(s.expired, 1);
        assert_eq!(s.errors.len(), 2, "{:?}", s.errors);
        let now = ts(1_700_000_100);
        let hit = s.match_ip("10.1.2.3".parse().unwrap(), now).unwrap();
        assert_eq!(&*hit.id, "a2");
        assert_eq!(hit.severity, 1);
        assert_eq!(&*s.match_ip("10.9.9.9".parse().unwrap(), now).unwrap().description, "broad, low");
        assert!(s.match_domain(b"x.later.example", now).is_some());
        assert!(s.match_domain(b"x.later.example", ts(1_700_000_600)).is_none(), "expired at match time");
        assert!(s.match_domain(b"old.example", now).is_none());
    }

    #[test]
    fn inputs_and_alert() {
        let s = set("id,type,value,severity,description,expiry\nbad-1,domain,evil.example,1,C2 server,\nbad-2,ip,192.0.2.1,2,scanner,\n");
        let src: IpAddr = "10.0.0.5".parse().unwrap();
        let dst: IpAddr = "192.0.2.1".parse().unwrap();
        let pkt = PacketInput::new(ts(1_700_000_100), src, 5555, dst, 443, 6);
        let mut out = vec![];
        s.check_flow(&pkt, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].field, IndicatorField::DestIp);
        let dns = DnsInput { queries: &[b"www.evil.example"], answer_ips: &[dst], ..Default::default() };
        s.check_dns(&pkt, &dns, &mut out);
        assert_eq!(out.len(), 3);
        let tls = TlsInput { sni: Some(b"cdn.evil.example"), ..Default::default() };
        s.check_tls(&pkt, &tls, &mut out);
        let http = HttpInput { host: Some(b"evil.example:8080"), ..Default::default() };
        s.check_http(&pkt, &http, &mut out);
        assert_eq!(out.len(), 5);
        let a = out[1].to_eve_alert();
        assert_eq!(a.gid, INDICATOR_GID);
        assert_eq!(a.signature_id, 3);
        assert_eq!(a.severity, 1);
        assert!(a.signature.contains("evil.example") && a.signature.contains("C2 server"));
        assert_eq!(a.context.as_ref().unwrap()["indicator"]["id"], "bad-1");
        assert_eq!(a.context.as_ref().unwrap()["indicator"]["observed"], "www.evil.example");
    }

    #[test]
    fn a_million_indicators_load_fast_and_match_fast() {
        let mut text = String::with_capacity(40 * 1_000_000);
        for i in 0..500_000u32 {
            let ip = std::net::Ipv4Addr::from(0x0b00_0000 + i * 7);
            text.push_str(&format!("{ip}\n"));
        }
        for i in 0..500_000u32 {
            text.push_str(&format!("host{i}.bad{}.example\n", i % 1000));
        }
        let t0 = Instant::now();
        let s = set(&text);
        let load = t0.elapsed();
        assert_eq!(s.len(), 1_000_000);
        // Generous for a debug-ish test build on a shared 2-core machine; release is ~10x faster.
        assert!(load.as_secs_f64() < 20.0, "load took {load:?}");
        let now = ts(1_700_000_100);
        let t1 = Instant::now();
        let mut hits = 0;
        for i in 0..100_000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0b00_0000 + i * 3));
            hits += s.match_ip(ip, now).is_some() as u32;
            hits += s.match_domain(format!("x.host{i}.bad1.example").as_bytes(), now).is_some() as u32;
        }
        let per = t1.elapsed() / 200_000;
        assert!(hits > 14_000, "{hits}");
        assert!(per.as_micros() < 20, "lookup took {per:?}");
    }
}
