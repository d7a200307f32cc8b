//! Retro-hunt: when an indicator appears, who already talked to it?
//!
//! Three parts live here (the SQL too, in [`sql`]; the store trait only delegates):
//!
//! * **Contact records.** Sensors fold their flows into one record per hour per (remote address,
//!   local address, server port, protocol, direction) — like NetFlow — and relay them as EVE
//!   lines with `"event_type":"contact"` (shape in docs/api.md, "Contact records"; produced by
//!   ward-sensor's `hubsink`). Ingest validates them ([`parse_contact`]) and stores them in
//!   `contact_records`, a `WITHOUT ROWID` table clustered by remote address, so looking up an
//!   address or a CIDR network is one contiguous range scan. A second record for the same key and
//!   hour is summed. Retention: `[retention] days.contact` (else `default_days`), by contact hour.
//! * **Analyst indicators.** `POST /api/v1/indicators` (analysts only): an IP address, a CIDR
//!   network or a domain, with a description, a severity and an optional expiry. It is appended to
//!   the same indicator log campaigns write to (with `campaign_id` 0), so sensors receive it from
//!   `GET /api/v1/indicators` like any other; at expiry a `remove` is logged.
//! * **The hunt.** A background task ([`run_worker`]), woken whenever the indicator log grows,
//!   walks the log with a cursor kept in the database. For each `add` of an `ip`, `net` or
//!   `domain` indicator it searches the stored contact records (and, for domains, the stored
//!   `dns` events) of every jurisdiction for contact that began before the indicator appeared,
//!   then — in one transaction with moving the cursor — records one hit per jurisdiction and
//!   enqueues a `retrohunt` notification to each of that jurisdiction's contacts. The search runs
//!   on a reader connection (ingest is not blocked); the commit re-checks the cursor, so two
//!   replicas cannot both act on one indicator. `retro_hits` is UNIQUE on (kind, value,
//!   jurisdiction): one indicator value notifies one jurisdiction at most once, ever.
//! * **Late records.** Sensors relay an hour's records after the hour ends (and hours of them
//!   after an outage), so records often arrive after the indicator covering them was hunted.
//!   Ingest marks the jurisdiction (`retro_late`, earliest `first_ms` received); the worker then
//!   re-hunts, for that jurisdiction only, the already-hunted indicators that appeared after that
//!   time ([`Store::retro_late_next`]), under the same rules and the same UNIQUE key.
//!
//! What is not a hit: contact that began at or after the indicator's time (the sensors had the
//! indicator then and alert live); jurisdictions already in the campaign that produced the
//! indicator (they were warned as "targeted"); an indicator withdrawn before the hunt reached it;
//! `asn` indicators (contact records carry no ASN).
//!
//! Trust boundary: a hit belongs to one jurisdiction; `GET /api/v1/retrohunts` shows a
//! jurisdiction user only its own hits and an analyst all of them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::auth::UserAuth;
use crate::error::{AppError, AppResult};
use crate::model::{fmt_ms, now_ms, Indicator, Millis, NotificationJob};
use crate::state::HubState;
use crate::store::{AttemptOutcome, Store, StoreResult};

/// The `event_type` of a contact record.
pub const CONTACT_EVENT_TYPE: &str = "contact";
/// The `event_kind` of a retro-hunt notification.
pub const EVENT_KIND: &str = "retrohunt";
/// Hosts, addresses, ports and names listed per hit at most (the totals are exact up to
/// [`MAX_TRACKED`]).
pub const MAX_LISTED: usize = 20;
/// Distinct local hosts counted per hit at most (a bound on the hunt's memory).
pub const MAX_TRACKED: usize = 100_000;
/// The shortest IPv4 / IPv6 network an analyst may enter (a wider one would match half the
/// internet and make every hunt a full scan).
pub const MIN_V4_PREFIX: u8 = 16;
pub const MIN_V6_PREFIX: u8 = 32;
/// Counters larger than this in a contact record are refused (a petabyte; sums cannot overflow).
pub const MAX_COUNTER: u64 = 1 << 50;
/// Indicators one late pass re-hunts at most (those that appeared after the late records began).
pub const MAX_LATE_INDICATORS: usize = 100_000;
/// Indicators the worker hunts per wake-up before it yields (it continues right after).
pub const HUNTS_PER_ROUND: usize = 1_000;
/// The worker looks at the log at least this often (other replicas may add indicators).
pub const IDLE_POLL: Duration = Duration::from_secs(5);
/// How often contact records past retention are pruned.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Contact rows deleted per pruning transaction.
pub const PRUNE_CHUNK: usize = 10_000;
const HOUR_MS: Millis = 3_600_000;

// ------------------------------------------------------------------------------------------
// Contact records
// ------------------------------------------------------------------------------------------

/// One validated contact record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRecord {
    pub remote: IpAddr,
    pub local: IpAddr,
    /// The server (responder) port.
    pub port: u16,
    /// IANA protocol number.
    pub proto: u8,
    /// The remote side initiated.
    pub inbound: bool,
    pub first_ms: Millis,
    pub last_ms: Millis,
    pub flows: i64,
    pub pkts: i64,
    pub bytes: i64,
}

/// The EVE header fields (event_type, timestamp, src_ip, …) are read by ingest; other top-level
/// fields are allowed, as in every EVE record; the `contact` object is strict.
#[derive(Deserialize)]
struct ContactLineLoose {
    contact: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactBody {
    remote_ip: String,
    local_ip: String,
    port: u64,
    proto: serde_json::Value,
    direction: String,
    first_seen: String,
    last_seen: String,
    #[serde(default = "one")]
    flows: u64,
    pkts: u64,
    bytes: u64,
}

fn one() -> u64 {
    1
}

/// An IANA protocol number from Suricata's `proto` (a name such as `"TCP"`, a number, or a
/// number as a string).
pub fn proto_number(v: &serde_json::Value) -> Option<u8> {
    match v {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
        serde_json::Value::String(s) => {
            let s = s.trim();
            if let Ok(n) = s.parse::<u8>() {
                return Some(n);
            }
            Some(match s.to_ascii_uppercase().as_str() {
                "ICMP" => 1,
                "IGMP" => 2,
                "TCP" => 6,
                "UDP" => 17,
                "GRE" => 47,
                "ESP" => 50,
                "AH" => 51,
                "IPV6-ICMP" | "ICMPV6" => 58,
                "SCTP" => 132,
                _ => return None,
            })
        }
        _ => None,
    }
}

/// The name of a protocol number, for people.
pub fn proto_name(n: u8) -> String {
    match n {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "icmpv6".into(),
        132 => "sctp".into(),
        other => format!("proto{other}"),
    }
}

/// Validates a `contact` line (the whole JSON text); the error is the reason reported back to
/// the sensor for that line.
pub fn parse_contact(text: &str, now: Millis) -> Result<ContactRecord, String> {
    let loose: ContactLineLoose = serde_json::from_str(text).map_err(|e| format!("contact record: {e}"))?;
    let Some(body) = loose.contact else {
        return Err("contact record: missing object field \"contact\" (see docs/api.md, Contact records)".into());
    };
    let body: ContactBody = serde_json::from_value(body).map_err(|e| format!("contact record: {e}"))?;
    let ip = |s: &str, what: &str| -> Result<IpAddr, String> {
        s.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()).map_err(|_| format!("contact record: {what} {s:?} is not an IP address"))
    };
    let remote = ip(&body.remote_ip, "remote_ip")?;
    let local = ip(&body.local_ip, "local_ip")?;
    if remote.is_ipv4() != local.is_ipv4() {
        return Err("contact record: remote_ip and local_ip must be of one address family".into());
    }
    if remote == local {
        return Err("contact record: remote_ip and local_ip are the same address".into());
    }
    let port = u16::try_from(body.port).map_err(|_| "contact record: port must be 0 to 65535".to_string())?;
    let proto = proto_number(&body.proto).ok_or("contact record: proto must be a protocol name (TCP, UDP, ICMP, …) or number 0 to 255")?;
    let inbound = match body.direction.as_str() {
        "inbound" => true,
        "outbound" => false,
        other => return Err(format!("contact record: direction {other:?} must be \"inbound\" or \"outbound\"")),
    };
    let time = |s: &str, what: &str| -> Result<Millis, String> {
        crate::ingest::parse_eve_time(s).ok_or_else(|| format!("contact record: {what} {s:?} is not an EVE timestamp"))
    };
    let first_ms = time(&body.first_seen, "first_seen")?;
    let last_ms = time(&body.last_seen, "last_seen")?;
    if first_ms > last_ms {
        return Err("contact record: first_seen is after last_seen".into());
    }
    if first_ms < 0 || last_ms > now.saturating_add(crate::ingest::MAX_CLOCK_SKEW_MS) {
        return Err("contact record: last_seen is in the future (check the sensor's clock)".into());
    }
    for (v, what) in [(body.flows, "flows"), (body.pkts, "pkts"), (body.bytes, "bytes")] {
        if v > MAX_COUNTER {
            return Err(format!("contact record: {what} larger than {MAX_COUNTER}"));
        }
    }
    Ok(ContactRecord {
        remote,
        local,
        port,
        proto,
        inbound,
        first_ms,
        last_ms,
        flows: body.flows.max(1) as i64,
        pkts: body.pkts as i64,
        bytes: body.bytes as i64,
    })
}

/// An address as stored: 4 or 16 bytes, network order (so byte order is address order).
pub fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// The inverse of [`ip_bytes`]; `None` for a blob of another length.
pub fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}

/// The first and last address of a network, as stored bytes.
pub fn net_range(net: IpAddr, len: u8) -> (Vec<u8>, Vec<u8>) {
    let mut lo = ip_bytes(net);
    let mut hi = lo.clone();
    let bits = lo.len() * 8;
    for i in (len as usize).min(bits)..bits {
        lo[i / 8] &= !(0x80 >> (i % 8));
        hi[i / 8] |= 0x80 >> (i % 8);
    }
    (lo, hi)
}

// ------------------------------------------------------------------------------------------
// Indicators
// ------------------------------------------------------------------------------------------

/// A parsed indicator value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An address or a network (an address is a full-length network).
    Net(IpAddr, u8),
    Domain(String),
}

impl Target {
    /// Parses an indicator of the log (`ip`, `net` or `domain`); `None` for other kinds.
    pub fn from_log(kind: &str, value: &str) -> Option<Target> {
        match kind {
            "ip" => value.parse::<IpAddr>().ok().map(|ip| {
                let ip = ip.to_canonical();
                Target::Net(ip, if ip.is_ipv4() { 32 } else { 128 })
            }),
            "net" => {
                let (a, l) = value.split_once('/')?;
                let ip = a.parse::<IpAddr>().ok()?.to_canonical();
                let l = l.parse::<u8>().ok()?;
                (l <= if ip.is_ipv4() { 32 } else { 128 }).then_some(Target::Net(ip, l))
            }
            "domain" => Some(Target::Domain(value.to_ascii_lowercase())),
            _ => None,
        }
    }
}

/// `POST /api/v1/indicators`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorRequest {
    /// `198.51.100.7`, `198.51.100.0/24`, `2001:db8::/48` or `bad.example`.
    pub value: String,
    /// `ip`, `net` or `domain`; inferred from the value when left out.
    #[serde(default)]
    pub kind: Option<String>,
    pub description: String,
    /// `low`, `medium`, `high` or `critical` (default `high`).
    #[serde(default)]
    pub severity: Option<String>,
    /// RFC 3339; after it the indicator is withdrawn from the feed.
    #[serde(default)]
    pub expires: Option<String>,
}

/// A validated analyst indicator, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIndicator {
    pub kind: String,
    pub value: String,
    pub description: String,
    pub severity: String,
    pub expires_ms: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalystIndicator {
    pub id: i64,
    /// Its `add` in the indicator log (the feed's cursor).
    pub seq: i64,
    pub kind: String,
    pub value: String,
    pub description: String,
    pub severity: String,
    pub expires: Option<String>,
    pub created_by: i64,
    pub created: String,
}

/// Checks a domain name: lower case, no trailing dot, LDH labels (and `_`), 1–63 bytes each, at
/// least two labels, at most 253 bytes, not all-numeric at the top.
pub fn normalize_domain(s: &str) -> Result<String, String> {
    let d = s.trim().trim_end_matches('.').to_ascii_lowercase();
    if d.is_empty() || d.len() > 253 {
        return Err("a domain must be 1 to 253 characters".into());
    }
    let labels: Vec<&str> = d.split('.').collect();
    if labels.len() < 2 {
        return Err(format!("{d:?} is not a domain name (it needs a dot, such as bad.example)"));
    }
    for l in &labels {
        if l.is_empty() || l.len() > 63 {
            return Err(format!("{d:?}: every label must be 1 to 63 characters"));
        }
        if !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') || l.starts_with('-') || l.ends_with('-') {
            return Err(format!("{d:?}: labels may hold only letters, digits, '-' and '_' (use punycode for other names)"));
        }
    }
    if labels.last().is_some_and(|t| t.bytes().all(|b| b.is_ascii_digit())) {
        return Err(format!("{d:?} looks like an address, not a domain"));
    }
    Ok(d)
}

/// Validates an analyst's request (value, kind, bounds, expiry in the future).
pub fn validate_indicator(req: &IndicatorRequest, now: Millis) -> Result<NewIndicator, String> {
    let raw = req.value.trim();
    if raw.is_empty() || raw.len() > 253 {
        return Err("value must be 1 to 253 characters: an IP address, a CIDR network or a domain".into());
    }
    let inferred = if raw.contains('/') {
        "net"
    } else if raw.parse::<IpAddr>().is_ok() {
        "ip"
    } else {
        "domain"
    };
    let kind = match req.kind.as_deref().map(str::trim) {
        None | Some("") => inferred,
        Some(k @ ("ip" | "net" | "domain")) => k,
        Some(other) => return Err(format!("kind {other:?} must be ip, net or domain")),
    };
    let (kind, value) = match kind {
        "ip" => {
            let ip = raw.parse::<IpAddr>().map_err(|_| format!("{raw:?} is not an IP address"))?.to_canonical();
            ("ip", ip.to_string())
        }
        "net" => {
            let (a, l) = raw.split_once('/').ok_or_else(|| format!("{raw:?} is not a CIDR network such as 198.51.100.0/24"))?;
            let ip = a.trim().parse::<IpAddr>().map_err(|_| format!("{raw:?}: bad network address"))?.to_canonical();
            let (min, max) = if ip.is_ipv4() { (MIN_V4_PREFIX, 32) } else { (MIN_V6_PREFIX, 128) };
            let len = l.trim().parse::<u8>().ok().filter(|&l| l <= max).ok_or_else(|| format!("{raw:?}: prefix length must be 0 to {max}"))?;
            if len < min {
                return Err(format!("{raw:?}: networks wider than /{min} are refused (they would match far too much)"));
            }
            if len == max {
                ("ip", ip.to_string())
            } else {
                let (lo, _) = net_range(ip, len);
                let base = ip_from_bytes(&lo).ok_or("bad network")?;
                ("net", format!("{base}/{len}"))
            }
        }
        _ => {
            if raw.parse::<IpAddr>().is_ok() || raw.contains('/') {
                return Err(format!("{raw:?} is an address, not a domain"));
            }
            ("domain", normalize_domain(raw)?)
        }
    };
    let description = req.description.trim();
    if description.is_empty() || description.len() > 2000 || description.chars().any(|c| c.is_control() && c != '\n') {
        return Err("description must be 1 to 2000 characters of text".into());
    }
    let severity = req.severity.as_deref().map(str::trim).unwrap_or("high").to_ascii_lowercase();
    if !matches!(severity.as_str(), "low" | "medium" | "high" | "critical") {
        return Err(format!("severity {severity:?} must be low, medium, high or critical"));
    }
    let expires_ms = match req.expires.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => {
            let t = crate::ingest::parse_eve_time(s).ok_or_else(|| format!("expires {s:?} is not an RFC 3339 time such as 2027-01-31T00:00:00Z"))?;
            if t <= now {
                return Err("expires is in the past".into());
            }
            if t > now.saturating_add(10 * 366 * 24 * HOUR_MS) {
                return Err("expires is more than ten years away: leave it out for no expiry".into());
            }
            Some(t)
        }
    };
    Ok(NewIndicator { kind: kind.into(), value, description: description.to_string(), severity, expires_ms })
}

// ------------------------------------------------------------------------------------------
// Hunts and hits
// ------------------------------------------------------------------------------------------

/// What the stored data covers: hunts look no further back than retention keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HuntWindow {
    pub contacts_from_ms: Millis,
    pub dns_from_ms: Millis,
}

impl HuntWindow {
    /// From the retention settings (`contact` and `dns` days, else `default_days`).
    pub fn from_config(cfg: &crate::config::RetentionConfig, now: Millis) -> Self {
        let from = |t: &str| {
            let days = cfg.days.get(t).copied().unwrap_or(cfg.default_days).max(0);
            now.saturating_sub(days.saturating_mul(24 * HOUR_MS))
        };
        HuntWindow { contacts_from_ms: from(CONTACT_EVENT_TYPE), dns_from_ms: from("dns") }
    }

    /// Everything stored.
    pub fn all() -> Self {
        HuntWindow { contacts_from_ms: 0, dns_from_ms: 0 }
    }
}


/// What one jurisdiction had to do with an indicator before it appeared.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HitDetail {
    pub local_hosts: Vec<String>,
    /// Distinct local hosts (exact up to [`MAX_TRACKED`]).
    pub local_hosts_total: usize,
    pub remote_addresses: Vec<String>,
    /// `tcp/443 inbound`, `udp/53 outbound`, …
    pub services: Vec<String>,
    /// Domain hits: the names looked up.
    pub names: Vec<String>,
}

/// A hit found by a search, not yet stored.
#[derive(Debug, Clone, PartialEq)]
pub struct HitDraft {
    pub jurisdiction_id: i64,
    pub first_ms: Millis,
    pub last_ms: Millis,
    pub records: i64,
    pub pkts: i64,
    pub bytes: i64,
    pub detail: HitDetail,
}

/// The search for the next indicator of the log (done on a reader).
#[derive(Debug, Clone)]
pub struct HuntPlan {
    pub cursor_before: i64,
    pub indicator: Indicator,
    pub hits: Vec<HitDraft>,
    pub rows_scanned: usize,
    pub search: Duration,
}

/// The late pass for one jurisdiction (see `retro_late` in the migration).
#[derive(Debug, Clone)]
pub struct LatePlan {
    pub jurisdiction_id: i64,
    pub version: i64,
    /// Only the indicators with hits.
    pub plans: Vec<HuntPlan>,
    pub rows_scanned: usize,
    pub search: Duration,
}

/// What one step of the hunt did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HuntOutcome {
    pub indicator_seq: i64,
    pub kind: String,
    pub value: String,
    /// Jurisdictions with a new hit.
    pub hits: usize,
    pub notifications: usize,
    pub rows_scanned: usize,
    pub search_ms: f64,
    /// Another hub moved the cursor first; nothing was done (the caller just continues).
    pub raced: bool,
}

/// A stored hit, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetroHit {
    pub id: i64,
    pub jurisdiction_id: i64,
    pub indicator: HitIndicator,
    /// The contact found, all of it before `indicator.appeared`.
    pub first_seen: String,
    pub last_seen: String,
    pub first_ms: Millis,
    pub last_ms: Millis,
    pub records: i64,
    pub pkts: i64,
    pub bytes: i64,
    #[serde(flatten)]
    pub detail: HitDetail,
    pub found: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HitIndicator {
    pub seq: i64,
    pub kind: String,
    pub value: String,
    /// 0 for an analyst's indicator.
    pub campaign_id: i64,
    pub appeared: String,
    pub appeared_ms: Millis,
    pub description: Option<String>,
    pub severity: String,
}

/// Aggregates matching rows per jurisdiction.
#[derive(Default)]
struct Agg {
    first_ms: Millis,
    last_ms: Millis,
    records: i64,
    pkts: i64,
    bytes: i64,
    locals: BTreeSet<String>,
    remotes: BTreeSet<String>,
    services: BTreeSet<String>,
    names: BTreeSet<String>,
}

impl Agg {
    fn add(&mut self, first: Millis, last: Millis, pkts: i64, bytes: i64) {
        if self.records == 0 {
            self.first_ms = first;
            self.last_ms = last;
        } else {
            self.first_ms = self.first_ms.min(first);
            self.last_ms = self.last_ms.max(last);
        }
        self.records += 1;
        self.pkts = self.pkts.saturating_add(pkts);
        self.bytes = self.bytes.saturating_add(bytes);
    }

    fn into_draft(self, jurisdiction_id: i64) -> HitDraft {
        let take = |s: BTreeSet<String>| s.into_iter().take(MAX_LISTED).collect::<Vec<_>>();
        let total = self.locals.len();
        HitDraft {
            jurisdiction_id,
            first_ms: self.first_ms,
            last_ms: self.last_ms,
            records: self.records,
            pkts: self.pkts,
            bytes: self.bytes,
            detail: HitDetail {
                local_hosts: take(self.locals),
                local_hosts_total: total,
                remote_addresses: take(self.remotes),
                services: take(self.services),
                names: take(self.names),
            },
        }
    }
}

fn insert_capped(set: &mut BTreeSet<String>, v: String, cap: usize) {
    if set.len() < cap {
        set.insert(v);
    }
}

/// The SQL of this module; `SqliteStore` calls these inside its read or write transactions.
pub mod sql {
    use super::*;
    use rusqlite::{params, Connection, OptionalExtension, Transaction};

    use crate::error::StoreError;

    pub fn insert_contact(tx: &Transaction<'_>, jurisdiction_id: i64, sensor_id: i64, c: &ContactRecord, now: Millis) -> StoreResult<()> {
        tx.prepare_cached(
            "INSERT INTO contact_records (remote, hour, jurisdiction_id, local, port, proto, inbound, first_ms, last_ms, flows, pkts, bytes, sensor_id, received_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
             ON CONFLICT (remote, hour, jurisdiction_id, local, port, proto, inbound) DO UPDATE SET \
             first_ms = min(first_ms, excluded.first_ms), last_ms = max(last_ms, excluded.last_ms), flows = flows + excluded.flows, \
             pkts = pkts + excluded.pkts, bytes = bytes + excluded.bytes, received_ms = excluded.received_ms",
        )?
        .execute(params![
            ip_bytes(c.remote),
            c.first_ms.div_euclid(HOUR_MS),
            jurisdiction_id,
            ip_bytes(c.local),
            c.port as i64,
            c.proto as i64,
            c.inbound as i64,
            c.first_ms,
            c.last_ms,
            c.flows,
            c.pkts,
            c.bytes,
            sensor_id,
            now,
        ])?;
        Ok(())
    }

    /// Deletes up to [`PRUNE_CHUNK`] contact records of hours that began before `before_ms`.
    pub fn prune_contacts_chunk(tx: &Transaction<'_>, before_ms: Millis) -> StoreResult<usize> {
        Ok(tx
            .prepare_cached(
                "DELETE FROM contact_records WHERE (remote, hour, jurisdiction_id, local, port, proto, inbound) IN \
                 (SELECT remote, hour, jurisdiction_id, local, port, proto, inbound FROM contact_records WHERE hour < ?1 LIMIT ?2)",
            )?
            .execute(params![before_ms.div_euclid(HOUR_MS), PRUNE_CHUNK as i64])?)
    }

    pub fn add_indicator(tx: &Transaction<'_>, new: &NewIndicator, user_id: i64, now: Millis) -> StoreResult<AnalystIndicator> {
        let active: Option<i64> = tx
            .prepare_cached(
                "SELECT id FROM analyst_indicators WHERE kind = ?1 AND value = ?2 AND removed_ms IS NULL AND (expires_ms IS NULL OR expires_ms > ?3)",
            )?
            .query_row(params![new.kind, new.value, now], |r| r.get(0))
            .optional()?;
        if let Some(id) = active {
            return Err(StoreError::Conflict(format!("{} {} is already an analyst indicator (#{id})", new.kind, new.value)));
        }
        tx.prepare_cached("INSERT INTO indicators (action, kind, value, campaign_id, ts_ms) VALUES ('add', ?1, ?2, 0, ?3)")?
            .execute(params![new.kind, new.value, now])?;
        let seq = tx.last_insert_rowid();
        tx.prepare_cached(
            "INSERT INTO analyst_indicators (kind, value, description, severity, expires_ms, created_by, created_ms, add_seq) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![new.kind, new.value, new.description, new.severity, new.expires_ms, user_id, now, seq])?;
        Ok(AnalystIndicator {
            id: tx.last_insert_rowid(),
            seq,
            kind: new.kind.clone(),
            value: new.value.clone(),
            description: new.description.clone(),
            severity: new.severity.clone(),
            expires: new.expires_ms.map(fmt_ms),
            created_by: user_id,
            created: fmt_ms(now),
        })
    }

    /// Marks every analyst indicator past its expiry removed (a `remove` is logged unless
    /// another source still holds the value); returns how many expired.
    pub fn expire_indicators(tx: &Transaction<'_>, now: Millis) -> StoreResult<usize> {
        let due: Vec<(i64, String, String)> = {
            let mut st = tx.prepare_cached(
                "SELECT id, kind, value FROM analyst_indicators WHERE removed_ms IS NULL AND expires_ms IS NOT NULL AND expires_ms <= ?1 LIMIT 1000",
            )?;
            let rows = st.query_map([now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
            rows
        };
        for (id, kind, value) in &due {
            tx.prepare_cached("UPDATE analyst_indicators SET removed_ms = ?1 WHERE id = ?2")?.execute(params![now, id])?;
            // Another source (a campaign, a feed) may still hold the value: then it stays.
            crate::store::sqlite::feeds::log_remove(tx, kind, value, 0, crate::store::sqlite::feeds::Holder::Analyst(*id), now)?;
        }
        Ok(due.len())
    }

    fn cursor(c: &Connection) -> StoreResult<i64> {
        Ok(c.prepare_cached("SELECT seq FROM retro_cursor WHERE id = 1")?.query_row([], |r| r.get(0))?)
    }

    /// Finds the next indicator after the cursor and searches for it (read-only).
    pub fn plan_next(c: &Connection, window: &HuntWindow) -> StoreResult<Option<HuntPlan>> {
        let cursor_before = cursor(c)?;
        let next: Option<Indicator> = c
            .prepare_cached("SELECT seq, action, kind, value, campaign_id, ts_ms FROM indicators WHERE seq > ?1 ORDER BY seq LIMIT 1")?
            .query_row([cursor_before], |r| {
                Ok(Indicator { seq: r.get(0)?, action: r.get(1)?, kind: r.get(2)?, value: r.get(3)?, campaign_id: r.get(4)?, ts_ms: r.get(5)? })
            })
            .optional()?;
        let Some(indicator) = next else { return Ok(None) };
        let started = Instant::now();
        let mut plan = HuntPlan { cursor_before, indicator, hits: Vec::new(), rows_scanned: 0, search: Duration::ZERO };
        if plan.indicator.action != "add" || withdrawn(c, &plan.indicator)? {
            return Ok(Some(plan));
        }
        search(c, window, None, &mut plan)?;
        plan.search = started.elapsed();
        Ok(Some(plan))
    }

    /// Searches for `plan.indicator` (in one jurisdiction with `only`), filling `plan.hits`.
    fn search(c: &Connection, window: &HuntWindow, only: Option<i64>, plan: &mut HuntPlan) -> StoreResult<()> {
        let (ts, kind, value) = (plan.indicator.ts_ms, plan.indicator.kind.clone(), plan.indicator.value.clone());
        match Target::from_log(&kind, &value) {
            Some(Target::Net(ip, len)) => search_net(c, ip, len, ts, window, only, plan),
            Some(Target::Domain(d)) => search_domain(c, &d, ts, window, only, plan),
            None => Ok(()),
        }
    }

    /// Notes, in the ingest transaction, that a batch brought contact records (see `retro_late`).
    pub fn mark_late(tx: &Transaction<'_>, b: &crate::store::IngestBatch, now: Millis) -> StoreResult<()> {
        let Some(since) = b.events.iter().filter_map(|e| e.contact.as_ref()).map(|c| c.first_ms).min() else { return Ok(()) };
        tx.prepare_cached(
            "INSERT INTO retro_late (jurisdiction_id, since_ms, version, updated_ms) VALUES (?1, ?2, 1, ?3) \
             ON CONFLICT (jurisdiction_id) DO UPDATE SET since_ms = min(since_ms, excluded.since_ms), version = version + 1, updated_ms = excluded.updated_ms",
        )?
        .execute(params![b.jurisdiction_id, since, now])?;
        Ok(())
    }

    /// The late pass for one jurisdiction with newly arrived contact records: the indicators
    /// already hunted (seq ≤ cursor) that appeared after the earliest of those records, searched
    /// in that jurisdiction only (read-only).
    pub fn plan_late(c: &Connection, window: &HuntWindow) -> StoreResult<Option<LatePlan>> {
        let row: Option<(i64, Millis, i64)> = c
            .prepare_cached("SELECT jurisdiction_id, since_ms, version FROM retro_late ORDER BY updated_ms LIMIT 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let Some((jurisdiction_id, since_ms, version)) = row else { return Ok(None) };
        let started = Instant::now();
        let upto = cursor(c)?;
        let indicators: Vec<Indicator> = {
            let mut st = c.prepare_cached(
                "SELECT seq, action, kind, value, campaign_id, ts_ms FROM indicators \
                 WHERE seq <= ?1 AND action = 'add' AND ts_ms > ?2 AND kind IN ('ip', 'net', 'domain') ORDER BY seq LIMIT ?3",
            )?;
            let rows = st
                .query_map(params![upto, since_ms, MAX_LATE_INDICATORS as i64], |r| {
                    Ok(Indicator { seq: r.get(0)?, action: r.get(1)?, kind: r.get(2)?, value: r.get(3)?, campaign_id: r.get(4)?, ts_ms: r.get(5)? })
                })?
                .collect::<Result<_, _>>()?;
            rows
        };
        let mut plans = Vec::new();
        let mut rows_scanned = 0;
        for indicator in indicators {
            if withdrawn(c, &indicator)? {
                continue;
            }
            let mut plan = HuntPlan { cursor_before: upto, indicator, hits: Vec::new(), rows_scanned: 0, search: Duration::ZERO };
            search(c, window, Some(jurisdiction_id), &mut plan)?;
            rows_scanned += plan.rows_scanned;
            if !plan.hits.is_empty() {
                plans.push(plan);
            }
        }
        Ok(Some(LatePlan { jurisdiction_id, version, plans, rows_scanned, search: started.elapsed() }))
    }

    /// Records the late pass's hits and clears the jurisdiction's mark unless more records
    /// arrived meanwhile (one transaction).
    pub fn commit_late(tx: &Transaction<'_>, late: &LatePlan, now: Millis) -> StoreResult<HuntOutcome> {
        let mut out = HuntOutcome {
            indicator_seq: 0,
            kind: "late".into(),
            value: format!("jurisdiction {}", late.jurisdiction_id),
            hits: 0,
            notifications: 0,
            rows_scanned: late.rows_scanned,
            search_ms: late.search.as_secs_f64() * 1000.0,
            raced: false,
        };
        for plan in &late.plans {
            for hit in &plan.hits {
                let (h, n) = record_hit(tx, &plan.indicator, hit, now)?;
                out.hits += h;
                out.notifications += n;
            }
        }
        tx.prepare_cached("DELETE FROM retro_late WHERE jurisdiction_id = ?1 AND version = ?2")?
            .execute(params![late.jurisdiction_id, late.version])?;
        Ok(out)
    }

    /// Whether the indicator was removed again (campaign closed, expiry) after it was added.
    fn withdrawn(c: &Connection, ind: &Indicator) -> StoreResult<bool> {
        let n: Option<i64> = c
            .prepare_cached(
                "SELECT seq FROM indicators WHERE seq > ?1 AND action = 'remove' AND kind = ?2 AND value = ?3 AND campaign_id = ?4 LIMIT 1",
            )?
            .query_row(params![ind.seq, ind.kind, ind.value, ind.campaign_id], |r| r.get(0))
            .optional()?;
        Ok(n.is_some())
    }

    /// Contact records with a remote address inside `ip/len` that began before `before_ms`.
    pub fn search_net(c: &Connection, ip: IpAddr, len: u8, before_ms: Millis, window: &HuntWindow, only: Option<i64>, plan: &mut HuntPlan) -> StoreResult<()> {
        let (lo, hi) = net_range(ip, len);
        let mut st = c.prepare_cached(
            "SELECT jurisdiction_id, remote, local, port, proto, inbound, first_ms, last_ms, pkts, bytes FROM contact_records \
             WHERE remote BETWEEN ?1 AND ?2 AND length(remote) = ?3 AND hour >= ?4 AND hour <= ?5 AND first_ms < ?6 \
             AND (?7 IS NULL OR jurisdiction_id = ?7)",
        )?;
        let mut rows = st.query(params![
            lo,
            hi,
            lo.len() as i64,
            window.contacts_from_ms.div_euclid(HOUR_MS),
            before_ms.div_euclid(HOUR_MS),
            before_ms,
            only
        ])?;
        let mut per: BTreeMap<i64, Agg> = BTreeMap::new();
        while let Some(r) = rows.next()? {
            plan.rows_scanned += 1;
            let j: i64 = r.get(0)?;
            let agg = per.entry(j).or_default();
            agg.add(r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?);
            if let Some(local) = ip_from_bytes(r.get_ref(2)?.as_blob().unwrap_or_default()) {
                insert_capped(&mut agg.locals, local.to_string(), MAX_TRACKED);
            }
            if let Some(remote) = ip_from_bytes(r.get_ref(1)?.as_blob().unwrap_or_default()) {
                insert_capped(&mut agg.remotes, remote.to_string(), MAX_LISTED);
            }
            let (port, proto, inbound): (i64, i64, i64) = (r.get(3)?, r.get(4)?, r.get(5)?);
            let svc = format!("{}/{port} {}", proto_name(proto as u8), if inbound != 0 { "inbound" } else { "outbound" });
            insert_capped(&mut agg.services, svc, MAX_LISTED);
        }
        plan.hits = per.into_iter().map(|(j, a)| a.into_draft(j)).collect();
        Ok(())
    }

    /// Stored `dns` events (when sensors relay them) that looked up the domain or a subdomain
    /// of it before `before_ms`. The local host is the client: `src_ip` of a query, `dest_ip`
    /// of an answer.
    pub fn search_domain(c: &Connection, domain: &str, before_ms: Millis, window: &HuntWindow, only: Option<i64>, plan: &mut HuntPlan) -> StoreResult<()> {
        let escaped: String = domain.chars().flat_map(|ch| if matches!(ch, '%' | '_' | '\\') { vec!['\\', ch] } else { vec![ch] }).collect();
        let pattern = format!("%.{escaped}");
        let mut st = c.prepare_cached(
            "SELECT jurisdiction_id, ts_ms, src, dst, typ, q FROM ( \
               SELECT jurisdiction_id, ts_ms, json_extract(body, '$.src_ip') AS src, json_extract(body, '$.dest_ip') AS dst, \
                      json_extract(body, '$.dns.type') AS typ, \
                      lower(rtrim(coalesce(json_extract(body, '$.dns.rrname'), json_extract(body, '$.dns.queries[0].rrname'), ''), '.')) AS q \
               FROM events WHERE event_type = 'dns' AND received_ms >= ?1 AND ts_ms < ?2 AND (?5 IS NULL OR jurisdiction_id = ?5)) \
             WHERE q = ?3 OR q LIKE ?4 ESCAPE '\\'",
        )?;
        let mut rows = st.query(params![window.dns_from_ms, before_ms, domain, pattern, only])?;
        let mut per: BTreeMap<i64, Agg> = BTreeMap::new();
        while let Some(r) = rows.next()? {
            plan.rows_scanned += 1;
            let j: i64 = r.get(0)?;
            let ts: Millis = r.get(1)?;
            let (src, dst, typ, q): (Option<String>, Option<String>, Option<String>, String) = (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
            let answer = matches!(typ.as_deref(), Some("answer" | "response"));
            let (client, server) = if answer { (dst, src) } else { (src, dst) };
            let agg = per.entry(j).or_default();
            agg.add(ts, ts, 0, 0);
            if let Some(h) = client {
                insert_capped(&mut agg.locals, h, MAX_TRACKED);
            }
            if let Some(s) = server {
                insert_capped(&mut agg.remotes, s, MAX_LISTED);
            }
            insert_capped(&mut agg.services, "udp/53 outbound".into(), MAX_LISTED);
            insert_capped(&mut agg.names, q, MAX_LISTED);
        }
        plan.hits = per.into_iter().map(|(j, a)| a.into_draft(j)).collect();
        Ok(())
    }

    /// Records the plan's hits and their notifications and moves the cursor, in one transaction.
    pub fn commit_plan(tx: &Transaction<'_>, plan: &HuntPlan, now: Millis) -> StoreResult<HuntOutcome> {
        let ind = &plan.indicator;
        let mut out = HuntOutcome {
            indicator_seq: ind.seq,
            kind: ind.kind.clone(),
            value: ind.value.clone(),
            hits: 0,
            notifications: 0,
            rows_scanned: plan.rows_scanned,
            search_ms: plan.search.as_secs_f64() * 1000.0,
            raced: false,
        };
        if cursor(tx)? != plan.cursor_before {
            out.raced = true;
            return Ok(out);
        }
        for hit in &plan.hits {
            let (h, n) = record_hit(tx, ind, hit, now)?;
            out.hits += h;
            out.notifications += n;
        }
        tx.prepare_cached("UPDATE retro_cursor SET seq = ?1 WHERE id = 1")?.execute([ind.seq])?;
        Ok(out)
    }

    /// Stores one hit (unless the jurisdiction is in the indicator's campaign or already has a
    /// hit for this value) and enqueues its notifications; returns (hits, notifications) added.
    fn record_hit(tx: &Transaction<'_>, ind: &Indicator, hit: &HitDraft, now: Millis) -> StoreResult<(usize, usize)> {
        if ind.campaign_id > 0 {
            let member: Option<i64> = tx
                .prepare_cached("SELECT 1 FROM campaign_jurisdictions WHERE campaign_id = ?1 AND jurisdiction_id = ?2")?
                .query_row(params![ind.campaign_id, hit.jurisdiction_id], |r| r.get(0))
                .optional()?;
            if member.is_some() {
                return Ok((0, 0));
            }
        }
        let detail = serde_json::to_string(&hit.detail).map_err(|e| StoreError::Database(e.to_string()))?;
        let inserted = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO retro_hits (indicator_seq, kind, value, campaign_id, indicator_ms, jurisdiction_id, first_ms, last_ms, records, pkts, bytes, detail, found_ms) \
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13 WHERE EXISTS (SELECT 1 FROM jurisdictions WHERE id = ?6)",
            )?
            .execute(params![
                ind.seq,
                ind.kind,
                ind.value,
                ind.campaign_id,
                ind.ts_ms,
                hit.jurisdiction_id,
                hit.first_ms,
                hit.last_ms,
                hit.records,
                hit.pkts,
                hit.bytes,
                detail,
                now
            ])?;
        if inserted == 0 {
            return Ok((0, 0));
        }
        let hit_id = tx.last_insert_rowid();
        // A campaign publishes several keys of one actor (its address and its /24): the
        // jurisdiction hears about the campaign once; the other hits are recorded silently.
        if ind.campaign_id > 0 {
            let earlier: Option<i64> = tx
                .prepare_cached("SELECT id FROM retro_hits WHERE jurisdiction_id = ?1 AND campaign_id = ?2 AND id != ?3 LIMIT 1")?
                .query_row(params![hit.jurisdiction_id, ind.campaign_id, hit_id], |r| r.get(0))
                .optional()?;
            if earlier.is_some() {
                return Ok((1, 0));
            }
        }
        let notified = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO notifications (campaign_id, jurisdiction_id, contact_id, event_kind, event_key, status, next_attempt_ms, created_ms) \
                 SELECT 0, ?1, id, ?2, ?3, 'pending', ?4, ?4 FROM contacts WHERE jurisdiction_id = ?1 AND priority = 1",
            )?
            .execute(params![hit.jurisdiction_id, EVENT_KIND, format!("retrohunt:{hit_id}"), now])?;
        Ok((1, notified))
    }

    const HIT_COLS: &str = "h.id, h.jurisdiction_id, h.indicator_seq, h.kind, h.value, h.campaign_id, h.indicator_ms, \
        a.description, coalesce(a.severity, 'high'), h.first_ms, h.last_ms, h.records, h.pkts, h.bytes, h.detail, h.found_ms";

    fn row_hit(r: &rusqlite::Row<'_>) -> rusqlite::Result<RetroHit> {
        let detail: String = r.get(14)?;
        let (first_ms, last_ms, indicator_ms): (Millis, Millis, Millis) = (r.get(9)?, r.get(10)?, r.get(6)?);
        Ok(RetroHit {
            id: r.get(0)?,
            jurisdiction_id: r.get(1)?,
            indicator: HitIndicator {
                seq: r.get(2)?,
                kind: r.get(3)?,
                value: r.get(4)?,
                campaign_id: r.get(5)?,
                appeared: fmt_ms(indicator_ms),
                appeared_ms: indicator_ms,
                description: r.get(7)?,
                severity: r.get(8)?,
            },
            first_seen: fmt_ms(first_ms),
            last_seen: fmt_ms(last_ms),
            first_ms,
            last_ms,
            records: r.get(11)?,
            pkts: r.get(12)?,
            bytes: r.get(13)?,
            detail: serde_json::from_str(&detail).unwrap_or_default(),
            found: fmt_ms(r.get(15)?),
        })
    }

    /// Newest first; `jurisdiction_id` `None` is every jurisdiction.
    pub fn hits(c: &Connection, jurisdiction_id: Option<i64>, limit: usize) -> StoreResult<Vec<RetroHit>> {
        let mut st = c.prepare_cached(&format!(
            "SELECT {HIT_COLS} FROM retro_hits h LEFT JOIN analyst_indicators a ON a.add_seq = h.indicator_seq \
             WHERE (?1 IS NULL OR h.jurisdiction_id = ?1) ORDER BY h.id DESC LIMIT ?2"
        ))?;
        let rows = st.query_map(params![jurisdiction_id, limit as i64], row_hit)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// The hit a `retrohunt` notification is about.
    pub fn hit_for_notification(c: &Connection, notification_id: i64) -> StoreResult<Option<RetroHit>> {
        let mut st = c.prepare_cached(&format!(
            "SELECT {HIT_COLS} FROM notifications n JOIN retro_hits h ON n.event_key = 'retrohunt:' || h.id \
             LEFT JOIN analyst_indicators a ON a.add_seq = h.indicator_seq WHERE n.id = ?1 AND n.event_kind = ?2"
        ))?;
        Ok(st.query_row(params![notification_id, EVENT_KIND], row_hit).optional()?)
    }
}

/// Runs the hunt until it has caught up with the indicator log (at most `max_steps` indicators).
pub fn hunt_pending(store: &dyn Store, window: &HuntWindow, now: Millis, max_steps: usize) -> StoreResult<Vec<HuntOutcome>> {
    let mut out = Vec::new();
    let mut raced = 0;
    while out.len() < max_steps {
        match store.retro_hunt_next(window, now)? {
            None => break,
            Some(o) if o.raced => {
                // Another replica moved the cursor; look again (bounded, in case of a livelock).
                raced += 1;
                if raced > 100 {
                    break;
                }
            }
            Some(o) => out.push(o),
        }
    }
    // Then the contact records that arrived after the indicators covering their time were hunted.
    while out.len() < max_steps {
        match store.retro_late_next(window, now)? {
            None => break,
            Some(o) => out.push(o),
        }
    }
    Ok(out)
}

/// Hunts every pending indicator now and wakes the outbox when something was enqueued (the
/// worker does this in the background; tests and `ward demo` may call it directly).
pub async fn hunt_now(state: &HubState) -> AppResult<Vec<HuntOutcome>> {
    let window = HuntWindow::from_config(&state.config.retention, now_ms());
    let outcomes = state.store_call(move |s| hunt_pending(s, &window, now_ms(), HUNTS_PER_ROUND)).await?;
    let enqueued: usize = outcomes.iter().map(|o| o.notifications).sum();
    if enqueued > 0 {
        state.metrics.notifications_enqueued.add(enqueued as u64);
        state.outbox_wake.notify_one();
    }
    for o in outcomes.iter().filter(|o| o.hits > 0) {
        tracing::info!(indicator = o.indicator_seq, kind = %o.kind, value = %o.value, jurisdictions = o.hits, notifications = o.notifications, search_ms = o.search_ms, "retro-hunt found earlier contact");
    }
    Ok(outcomes)
}

/// The background task: hunts whenever the indicator log grows (and every [`IDLE_POLL`]),
/// withdraws expired analyst indicators, and prunes contact records past retention.
pub async fn run_worker(state: HubState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut changes = state.indicators_tx.subscribe();
    let mut last_prune: Option<Instant> = None;
    loop {
        if *shutdown.borrow() {
            state.release_job(crate::state::JOB_RETRO_HUNT).await;
            return;
        }
        // One replica hunts at a time (docs/hub.md "Replicas"); the others wait for its lease.
        if !state.hold_job(crate::state::JOB_RETRO_HUNT, crate::state::RETRO_HUNT_LEASE_MS).await {
            tokio::select! {
                _ = changes.changed() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        match state.store_call(|s| s.expire_analyst_indicators(now_ms())).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(indicators = n, "analyst indicators expired");
                state.indicators_tx.send_modify(|v| *v += 1);
            }
            Err(e) => tracing::error!(error = %e, "cannot expire analyst indicators"),
        }
        let caught_up = match hunt_now(&state).await {
            Ok(o) => o.len() < HUNTS_PER_ROUND,
            Err(e) => {
                tracing::error!(error = %e, "retro-hunt failed");
                true
            }
        };
        if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(Instant::now());
            let window = HuntWindow::from_config(&state.config.retention, now_ms());
            match state.store_call(move |s| s.prune_contacts(window.contacts_from_ms)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(contact_records = n, "retention pruned"),
                Err(e) => tracing::error!(error = %e, "contact record pruning failed"),
            }
        }
        if !caught_up {
            continue;
        }
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(IDLE_POLL) => {}
            _ = shutdown.changed() => {}
        }
    }
}

// ------------------------------------------------------------------------------------------
// Notifications
// ------------------------------------------------------------------------------------------

/// The message of a retro-hunt hit, for the jurisdiction it belongs to.
pub fn render(config: &crate::config::HubConfig, jurisdiction: &crate::model::Jurisdiction, hit: &RetroHit, notification_id: i64) -> crate::notify::Message {
    let notify = &config.notify;
    let tlp = notify.tlp.as_str();
    let ind = &hit.indicator;
    let what = match ind.kind.as_str() {
        "domain" => format!("the domain {}", ind.value),
        "net" => format!("the network {}", ind.value),
        _ => format!("the address {}", ind.value),
    };
    let hosts = if hit.detail.local_hosts.is_empty() { "(not recorded)".to_string() } else { hit.detail.local_hosts.join(", ") };
    let more = hit.detail.local_hosts_total.saturating_sub(hit.detail.local_hosts.len());
    let hosts_line = if more > 0 { format!("{hosts} and {more} more") } else { hosts };
    let subject = format!("[{tlp}] {}: your network had contact with {what} before it was reported", jurisdiction.name);
    let why = ind.description.clone().unwrap_or_else(|| format!("seen attacking several jurisdictions (campaign #{})", ind.campaign_id));
    let link = if config.public_url.is_empty() {
        String::new()
    } else {
        format!("\nDetails: {}/api/v1/retrohunts\n", config.public_url.trim_end_matches('/'))
    };
    let text = format!(
        "{tlp}\n\n{hub} retro-hunt for {name}: {what} was reported as hostile on {appeared} (UTC), \
         and your sensors recorded contact with it before that.\n\n\
         Why it is hostile: {why}\n\
         Your hosts involved: {hosts_line}\n\
         Remote addresses: {remotes}\n\
         Services: {services}{names}\n\
         When: between {first} and {last} (UTC), {records} hourly records, {pkts} packets, {bytes} bytes\n\n\
         What to do now:\n\
         1. Check these hosts of yours for signs of compromise, starting from {first}: {hosts_line}\n\
         2. Make sure {value} is blocked at your firewall (your ward sensors already alert on it).\n\
         3. Call {phone} if you find anything or need help.\n\
         {link}\nShare according to {tlp}.\n",
        hub = notify.hub_name,
        name = jurisdiction.name,
        appeared = ind.appeared,
        remotes = if hit.detail.remote_addresses.is_empty() { "(none recorded)".into() } else { hit.detail.remote_addresses.join(", ") },
        services = hit.detail.services.join(", "),
        names = if hit.detail.names.is_empty() { String::new() } else { format!("\nNames looked up: {}", hit.detail.names.join(", ")) },
        first = hit.first_seen,
        last = hit.last_seen,
        records = hit.records,
        pkts = hit.pkts,
        bytes = hit.bytes,
        value = ind.value,
        phone = notify.phone,
    );
    let json = serde_json::json!({
        "id": notification_id,
        "type": "ward.retrohunt",
        "tlp": tlp,
        "indicator": {
            "kind": ind.kind, "value": ind.value, "appeared": ind.appeared, "campaign_id": ind.campaign_id,
            "description": ind.description, "severity": ind.severity,
        },
        "jurisdiction": { "id": jurisdiction.id, "name": jurisdiction.name },
        "seen": {
            "first": hit.first_seen,
            "last": hit.last_seen,
            "local_hosts": hit.detail.local_hosts,
            "local_hosts_total": hit.detail.local_hosts_total,
            "remote_addresses": hit.detail.remote_addresses,
            "services": hit.detail.services,
            "names": hit.detail.names,
            "records": hit.records,
            "pkts": hit.pkts,
            "bytes": hit.bytes,
        },
        "retrohunt_id": hit.id,
        "actions": { "block": [ind.value], "check_hosts": hit.detail.local_hosts, "call": notify.phone },
        "text": text,
    });
    let severity = match ind.severity.as_str() {
        "critical" => 9,
        "high" => 8,
        "medium" => 6,
        _ => 4,
    };
    crate::notify::Message {
        subject,
        text,
        json,
        severity,
        event_kind: EVENT_KIND.to_string(),
        campaign_id: ind.campaign_id,
        remote: hit.detail.remote_addresses.first().cloned(),
        local: hit.detail.local_hosts.first().cloned(),
        other_jurisdictions: 0,
    }
}

/// Sends one `retrohunt` notification (called by the outbox worker for this event kind) and
/// returns the attempt to record.
pub async fn deliver(state: &HubState, channels: &crate::notify::Channels, job: NotificationJob) -> (i64, AttemptOutcome, Millis) {
    let started = Instant::now();
    let (id, jurisdiction_id) = (job.id, job.jurisdiction_id);
    let context = state.store_call(move |s| Ok((s.retro_hit_for_notification(id)?, s.jurisdiction(jurisdiction_id)?))).await;
    let result = match context {
        Ok((Some(hit), Some(jurisdiction))) if hit.jurisdiction_id == jurisdiction.id => {
            let msg = render(&state.config, &jurisdiction, &hit, job.id).mark_drill_if(jurisdiction.drill);
            let msg = crate::ack::with_ack_link(state, &job, msg).await;
            let sent = channels.send(&job.contact, &msg).await;
            sent.map(|detail| (detail, msg.json.to_string()))
        }
        Ok(_) => Err("retro-hunt hit or jurisdiction no longer exists".to_string()),
        Err(e) => Err(format!("cannot load retro-hunt hit: {e}")),
    };
    crate::notify::finish_attempt(state, &job, result, started, "retro-hunt delivery failed")
}

// ------------------------------------------------------------------------------------------
// HTTP
// ------------------------------------------------------------------------------------------

/// Retro-hunt hits listed per request at most.
pub const MAX_HITS_LISTED: usize = 1_000;

pub fn routes() -> Router<HubState> {
    Router::new()
        .route("/api/v1/indicators", axum::routing::post(create_indicator))
        .route("/api/v1/retrohunts", get(list_hits))
        .layer(axum::extract::DefaultBodyLimit::max(crate::server::MAX_FORM_BODY_BYTES))
}

/// `POST /api/v1/indicators` (analysts): adds an indicator to the feed; the retro-hunt runs in
/// the background.
pub async fn create_indicator(State(state): State<HubState>, who: UserAuth, body: axum::body::Bytes) -> AppResult<impl IntoResponse> {
    who.require_analyst()?;
    let req: IndicatorRequest = serde_json::from_slice(&body).map_err(|e| AppError::BadRequest(format!("bad indicator JSON: {e}")))?;
    let now = now_ms();
    let new = validate_indicator(&req, now).map_err(AppError::BadRequest)?;
    // trust: never an indicator for a configured never-block address (the store checks its own)
    crate::trust::check_indicator(&new.kind, &new.value, &state.policy.trust.allow).map_err(AppError::BadRequest)?;
    let user_id = who.user.id;
    let created = state.store_call(move |s| s.add_analyst_indicator(&new, user_id, now)).await?;
    state.indicators_tx.send_modify(|v| *v += 1);
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HitQuery {
    /// Analysts: only this jurisdiction's hits.
    #[serde(default)]
    pub jurisdiction: Option<i64>,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `GET /api/v1/retrohunts`: a jurisdiction user sees its own hits (a state user also one
/// county's, with `jurisdiction`), an analyst every hit.
pub async fn list_hits(State(state): State<HubState>, who: UserAuth, Query(q): Query<HitQuery>) -> AppResult<Json<Vec<RetroHit>>> {
    let scope = if who.is_analyst() {
        q.jurisdiction
    } else {
        let own = who.user.jurisdiction_id.ok_or(AppError::NotFound)?;
        // A state user may ask for one of its counties (crate::rollup).
        if q.jurisdiction.is_some_and(|j| !who.can_read(j)) {
            return Err(AppError::NotFound);
        }
        Some(q.jurisdiction.unwrap_or(own))
    };
    let limit = q.limit.unwrap_or(200).clamp(1, MAX_HITS_LISTED);
    Ok(Json(state.store_call(move |s| s.retro_hits(scope, limit)).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_800_000_000_000;

    fn line(extra: &str) -> String {
        format!(
            r#"{{"event_type":"contact","timestamp":"2026-11-03T13:05:00.000000+0000","contact":{{"remote_ip":"203.0.113.66","local_ip":"10.1.0.80","port":443,"proto":"TCP","direction":"inbound","first_seen":"2026-11-03T13:05:00.000000+0000","last_seen":"2026-11-03T13:45:02.000000+0000","flows":2,"pkts":10,"bytes":1000{extra}}}}}"#
        )
    }

    #[test]
    fn contact_records_parse_and_bad_ones_say_why() {
        let c = parse_contact(&line(""), NOW).unwrap();
        assert_eq!(c.remote, "203.0.113.66".parse::<IpAddr>().unwrap());
        assert_eq!((c.port, c.proto, c.inbound, c.flows, c.pkts, c.bytes), (443, 6, true, 2, 10, 1000));
        assert!(c.last_ms > c.first_ms);
        for (bad, why) in [
            (line(r#","x":1"#), "unknown field"),
            (line("").replace("\"inbound\"", "\"sideways\""), "direction"),
            (line("").replace("10.1.0.80", "2001:db8::1"), "family"),
            (line("").replace("\"port\":443", "\"port\":70000"), "port"),
            (line("").replace("\"TCP\"", "\"BOGUS\""), "proto"),
            (line("").replace("13:45:02", "12:45:02"), "after last_seen"),
            (r#"{"event_type":"contact"}"#.to_string(), "missing"),
        ] {
            let e = parse_contact(&bad, NOW).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(parse_contact(&line(""), 1_700_000_000_000).unwrap_err().contains("future"));
    }

    #[test]
    fn ranges_and_targets() {
        let (lo, hi) = net_range("198.51.100.77".parse().unwrap(), 24);
        assert_eq!((lo, hi), (vec![198, 51, 100, 0], vec![198, 51, 100, 255]));
        let (lo, hi) = net_range("2001:db8:1::".parse().unwrap(), 48);
        assert_eq!(ip_from_bytes(&lo).unwrap().to_string(), "2001:db8:1::");
        assert_eq!(ip_from_bytes(&hi).unwrap().to_string(), "2001:db8:1:ffff:ffff:ffff:ffff:ffff");
        assert_eq!(Target::from_log("ip", "1.2.3.4"), Some(Target::Net("1.2.3.4".parse().unwrap(), 32)));
        assert_eq!(Target::from_log("asn", "AS1"), None);
        assert_eq!(ip_bytes("::ffff:1.2.3.4".parse().unwrap()), vec![1, 2, 3, 4]);
    }

    #[test]
    fn analyst_indicators_are_validated() {
        let req = |v: &str| IndicatorRequest { value: v.into(), kind: None, description: "phishing kit".into(), severity: None, expires: None };
        let ok = |v: &str| validate_indicator(&req(v), NOW).map(|n| (n.kind, n.value));
        assert_eq!(ok("198.51.100.7").unwrap(), ("ip".into(), "198.51.100.7".into()));
        assert_eq!(ok("198.51.100.77/24").unwrap(), ("net".into(), "198.51.100.0/24".into()));
        assert_eq!(ok("198.51.100.7/32").unwrap(), ("ip".into(), "198.51.100.7".into()));
        assert_eq!(ok("Bad.Example.").unwrap(), ("domain".into(), "bad.example".into()));
        for bad in ["", "10.0.0.0/8", "1.2.3.4/33", "not a domain", "localhost", "-x.example", "1.2.3.999", "a..b"] {
            assert!(ok(bad).is_err(), "{bad:?} accepted");
        }
        let mut r = req("bad.example");
        r.severity = Some("urgent".into());
        assert!(validate_indicator(&r, NOW).is_err());
        r.severity = Some("critical".into());
        r.expires = Some("2020-01-01T00:00:00Z".into());
        assert!(validate_indicator(&r, NOW).unwrap_err().contains("past"));
        r.kind = Some("ip".into());
        r.expires = None;
        assert!(validate_indicator(&r, NOW).is_err(), "kind ip with a domain value");
        r.description = String::new();
        r.kind = None;
        assert!(validate_indicator(&r, NOW).is_err(), "empty description");
    }
}
