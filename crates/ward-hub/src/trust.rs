//! The hub's trust model: what one sensor may contribute to correlation, and what may never be
//! blocked. The policy lives here (no SQL); the store applies it inside the ingest transaction
//! (`store/sqlite/trust.rs`). docs/hub.md, "Trust: what one sensor can do", is the user's view.
//!
//! A sensor is enrolled by one jurisdiction and speaks for that jurisdiction only; it may be
//! compromised, misconfigured or replaying someone else's capture. Correlation trusts it with
//! little, and for a short time:
//!
//! * **Contribution budget.** A batch that names more than
//!   [`TrustPolicy::max_remotes_per_batch`] distinct remote addresses correlates nothing (a spray
//!   is suspicious as a whole: correlating its first N addresses would still answer N probes). Per
//!   sensor and budget window, at most [`TrustPolicy::max_new_keys_per_sensor`] addresses that its
//!   jurisdiction had not sighted within the correlation window may enter correlation; the batch
//!   that would cross the budget correlates nothing. Either breach puts the sensor **on hold** for
//!   [`TrustPolicy::hold_ms`] (or until an analyst releases it) and writes one trust anomaly. A
//!   held sensor's events are stored as usual (nothing is lost) but make no sightings, join no
//!   campaign and warn no one, so the sensor learns nothing through campaigns while held.
//! * **Publication bar.** Campaign keys reach the all-sensor indicator feed only when the campaign
//!   has at least [`TrustPolicy::publish_min_jurisdictions`] (never fewer than
//!   [`MIN_PUBLISH_JURISDICTIONS`]) jurisdictions with a sensor in good standing, or an analyst
//!   confirmed it. The campaign's own members are warned at once either way.
//! * **Never-block allow-list** ([`AllowList`]): well-known public resolvers ([`BUILTIN_NEVER_BLOCK`]),
//!   the hub's own addresses, `[trust] never_block`, and the entries analysts and jurisdiction
//!   admins register (their resolvers and vendors). An allow-listed address is never a sighting,
//!   and a `net:` or `asn:` key that covers one is never a key: it opens no campaign, is in no
//!   warning's "block" list and never reaches the feed. Private, loopback and documentation
//!   addresses are never sightings in the first place ([`crate::ingest::is_public`]).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::model::Millis;

/// Distinct remote addresses one batch may name and still be correlated. A sensor relays about
/// half a second of events per batch (at most 2,000 records); an office rarely sees more than a
/// few dozen distinct attackers in that time, while a spray names thousands.
pub const DEFAULT_MAX_REMOTES_PER_BATCH: usize = 256;
/// New remote addresses one sensor may bring into correlation per budget window: well above a
/// public-facing office's hourly count of new scanners, far below a probe of every /24 of a /8.
pub const DEFAULT_MAX_NEW_KEYS_PER_SENSOR: i64 = 1024;
/// The budget window (one hour).
pub const DEFAULT_BUDGET_WINDOW_SECS: i64 = 3600;
/// How long a sensor that breached its budget stays on hold unless an analyst releases it
/// (a day: long enough for an analyst to look, short enough that a false alarm heals itself).
pub const DEFAULT_HOLD_SECS: i64 = 24 * 3600;
/// Jurisdictions in good standing a campaign needs before its keys go to every sensor.
pub const DEFAULT_PUBLISH_MIN_JURISDICTIONS: i64 = 3;
/// The publication bar never goes below this: one jurisdiction (one possibly lying sensor and a
/// victim it names) must never be able to push an address to every sensor.
pub const MIN_PUBLISH_JURISDICTIONS: i64 = 2;
/// The narrowest networks a jurisdiction admin may allow-list (an office's resolvers and vendors
/// are single addresses or a few; a wider entry would blind correlation for everyone).
pub const MIN_JURISDICTION_V4_PREFIX: u8 = 24;
pub const MIN_JURISDICTION_V6_PREFIX: u8 = 48;
/// The widest networks an analyst may allow-list through the API or the CLI (the same bound as
/// analyst indicators: wider would exempt a large part of the internet).
pub const MIN_V4_PREFIX: u8 = 16;
pub const MIN_V6_PREFIX: u8 = 32;
/// Allow-list entries one jurisdiction may hold (bounds what one admin can exempt).
pub const MAX_ENTRIES_PER_JURISDICTION: usize = 64;
/// Longest note on an allow-list entry.
pub const MAX_NOTE_BYTES: usize = 500;

/// Well-known public resolvers: blocking one would break name resolution in thousands of
/// offices, and every office talks to them, so sightings of them are noise or forgery.
pub const BUILTIN_NEVER_BLOCK: &[(&str, &str)] = &[
    ("8.8.8.8", "Google Public DNS"),
    ("8.8.4.4", "Google Public DNS"),
    ("2001:4860:4860::8888", "Google Public DNS"),
    ("2001:4860:4860::8844", "Google Public DNS"),
    ("1.1.1.1", "Cloudflare DNS"),
    ("1.0.0.1", "Cloudflare DNS"),
    ("2606:4700:4700::1111", "Cloudflare DNS"),
    ("2606:4700:4700::1001", "Cloudflare DNS"),
    ("9.9.9.9", "Quad9"),
    ("149.112.112.112", "Quad9"),
    ("2620:fe::fe", "Quad9"),
    ("2620:fe::9", "Quad9"),
    ("208.67.222.222", "OpenDNS"),
    ("208.67.220.220", "OpenDNS"),
];

/// How the hub treats what sensors contribute (see the module note). Part of
/// [`crate::store::CorrelationPolicy`], from the `[trust]` section of the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustPolicy {
    pub max_remotes_per_batch: usize,
    pub max_new_keys_per_sensor: i64,
    pub budget_window_ms: Millis,
    pub hold_ms: Millis,
    /// Never below [`MIN_PUBLISH_JURISDICTIONS`] (see [`TrustPolicy::publish_bar`]).
    pub publish_min_jurisdictions: i64,
    /// Built-in entries, `never_block` and the hub's own addresses; the store adds the entries
    /// registered in it.
    pub allow: Arc<AllowList>,
}

impl Default for TrustPolicy {
    fn default() -> Self {
        TrustPolicy {
            max_remotes_per_batch: DEFAULT_MAX_REMOTES_PER_BATCH,
            max_new_keys_per_sensor: DEFAULT_MAX_NEW_KEYS_PER_SENSOR,
            budget_window_ms: DEFAULT_BUDGET_WINDOW_SECS * 1000,
            hold_ms: DEFAULT_HOLD_SECS * 1000,
            publish_min_jurisdictions: DEFAULT_PUBLISH_MIN_JURISDICTIONS,
            allow: Arc::new(AllowList::builtin()),
        }
    }
}

impl TrustPolicy {
    /// Jurisdictions in good standing a campaign needs to be published.
    pub fn publish_bar(&self) -> i64 {
        self.publish_min_jurisdictions.max(MIN_PUBLISH_JURISDICTIONS)
    }
}

/// What the budget decides about one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Correlate it; the sensor's window now holds `window_new_keys` new addresses since `window_start_ms`.
    Correlate { window_start_ms: Millis, window_new_keys: i64 },
    /// The sensor is on hold: store, do not correlate.
    Held,
    /// The batch breaches a limit: store it, correlate nothing, hold the sensor, record an anomaly.
    Breach(AnomalyKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// One batch named more distinct remote addresses than `max_remotes_per_batch`.
    BatchSpray,
    /// The batch would have taken the sensor past `max_new_keys_per_sensor` in its window.
    WindowBudget,
}

impl AnomalyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::BatchSpray => "batch_spray",
            AnomalyKind::WindowBudget => "window_budget",
        }
    }
}

/// A sensor's budget state as the store keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BudgetState {
    pub window_start_ms: Millis,
    pub window_new_keys: i64,
    /// On hold while this is after now.
    pub hold_until_ms: Option<Millis>,
}

impl BudgetState {
    pub fn on_hold(&self, now: Millis) -> bool {
        self.hold_until_ms.is_some_and(|t| t > now)
    }
}

/// The per-batch cap, decided before anything is looked up: `remotes` distinct remote addresses
/// (allow-listed ones not counted).
pub fn precheck(state: &BudgetState, remotes: usize, policy: &TrustPolicy, now: Millis) -> Option<Admission> {
    if state.on_hold(now) {
        return Some(Admission::Held);
    }
    if remotes > policy.max_remotes_per_batch {
        return Some(Admission::Breach(AnomalyKind::BatchSpray));
    }
    None
}

/// The window budget, given how many of the batch's addresses are new to the jurisdiction.
/// Fixed windows: one starts with the first new address after the previous one ended, so a
/// sensor brings at most twice the budget into correlation across a window boundary.
pub fn judge_new(state: &BudgetState, new_remotes: i64, policy: &TrustPolicy, now: Millis) -> Admission {
    let expired = now.saturating_sub(state.window_start_ms) >= policy.budget_window_ms;
    let (start, used) = if expired { (now, 0) } else { (state.window_start_ms, state.window_new_keys) };
    if used.saturating_add(new_remotes) > policy.max_new_keys_per_sensor {
        return Admission::Breach(AnomalyKind::WindowBudget);
    }
    Admission::Correlate { window_start_ms: start, window_new_keys: used + new_remotes }
}

// ------------------------------------------------------------------------------------------
// The allow-list
// ------------------------------------------------------------------------------------------

/// A set of networks (and autonomous systems) that are never blocked, as merged, sorted address
/// ranges: a look-up is a binary search, however many entries there are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AllowList {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
    /// Autonomous systems holding an allow-listed address (an `asn:` key for one would block it).
    asns: BTreeSet<u32>,
}

/// Parses `address` or `address/len` into its network address and prefix length (a v4-mapped
/// IPv6 address becomes IPv4; host bits are cleared).
pub fn parse_network(s: &str) -> Result<(IpAddr, u8), String> {
    let s = s.trim();
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a.trim(), Some(l.trim())),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| format!("{s:?} is not an IP address or CIDR network such as 192.0.2.0/24"))?;
    let ip = ip.to_canonical();
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => l.parse::<u8>().ok().filter(|&l| l <= max).ok_or_else(|| format!("{s:?}: prefix length must be 0 to {max}"))?,
    };
    Ok((network_address(ip, len), len))
}

/// The canonical text of a network: `192.0.2.7` for a single address, else `192.0.2.0/24`.
pub fn network_text(ip: IpAddr, len: u8) -> String {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if len >= max {
        ip.to_string()
    } else {
        format!("{ip}/{len}")
    }
}

fn network_address(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => IpAddr::V4(range_v4(u32::from(a), len).0.into()),
        IpAddr::V6(a) => IpAddr::V6(range_v6(u128::from(a), len).0.into()),
    }
}

fn range_v4(a: u32, len: u8) -> (u32, u32) {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len.min(32) as u32) };
    (a & mask, (a & mask) | !mask)
}

fn range_v6(a: u128, len: u8) -> (u128, u128) {
    let mask = if len == 0 { 0 } else { u128::MAX << (128 - len.min(128) as u32) };
    (a & mask, (a & mask) | !mask)
}

/// Sorts and merges overlapping or adjacent ranges (`succ`: the next value, saturating).
fn merge<T: Copy + Ord>(mut ranges: Vec<(T, T)>, succ: fn(T) -> T) -> Vec<(T, T)> {
    ranges.sort();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match out.last_mut() {
            Some(last) if lo <= succ(last.1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// Whether any of the sorted, disjoint `ranges` meets `[lo, hi]`.
fn meets<T: Copy + Ord>(ranges: &[(T, T)], lo: T, hi: T) -> bool {
    // The first range that ends at or after `lo`; it meets when it starts at or before `hi`.
    let i = ranges.partition_point(|r| r.1 < lo);
    ranges.get(i).is_some_and(|r| r.0 <= hi)
}

impl AllowList {
    /// The built-in entries ([`BUILTIN_NEVER_BLOCK`]).
    pub fn builtin() -> Self {
        let nets = BUILTIN_NEVER_BLOCK.iter().filter_map(|(a, _)| parse_network(a).ok());
        AllowList::from_networks(nets, [])
    }

    pub fn from_networks(nets: impl IntoIterator<Item = (IpAddr, u8)>, asns: impl IntoIterator<Item = u32>) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (ip, len) in nets {
            match ip.to_canonical() {
                IpAddr::V4(a) => v4.push(range_v4(u32::from(a), len)),
                IpAddr::V6(a) => v6.push(range_v6(u128::from(a), len)),
            }
        }
        AllowList { v4: merge(v4, |x| x.saturating_add(1)), v6: merge(v6, |x| x.saturating_add(1)), asns: asns.into_iter().collect() }
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty() && self.asns.is_empty()
    }

    /// Whether an address is allow-listed.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(a) => meets(&self.v4, u32::from(a), u32::from(a)),
            IpAddr::V6(a) => meets(&self.v6, u128::from(a), u128::from(a)),
        }
    }

    /// Whether a network holds at least one allow-listed address.
    pub fn overlaps(&self, net: IpAddr, len: u8) -> bool {
        match net.to_canonical() {
            IpAddr::V4(a) => {
                let (lo, hi) = range_v4(u32::from(a), len);
                meets(&self.v4, lo, hi)
            }
            IpAddr::V6(a) => {
                let (lo, hi) = range_v6(u128::from(a), len);
                meets(&self.v6, lo, hi)
            }
        }
    }

    pub fn holds_asn(&self, asn: u32) -> bool {
        self.asns.contains(&asn)
    }

    /// Whether an actor key (`ip:…`, `net:…`, `asn:AS…`) covers an allow-listed address. An
    /// unparsable key covers nothing.
    pub fn covers_key(&self, key: &str) -> bool {
        let Some((kind, value)) = key.split_once(':') else { return false };
        match kind {
            "ip" => value.parse::<IpAddr>().is_ok_and(|ip| self.contains(ip)),
            "net" => parse_network(value).is_ok_and(|(ip, len)| self.overlaps(ip, len)),
            "asn" => value.trim_start_matches("AS").parse::<u32>().is_ok_and(|n| self.holds_asn(n)),
            _ => false,
        }
    }
}

/// Several allow-lists checked as one (the configured one and the store's entries).
#[derive(Debug, Clone, Copy)]
pub struct AllowView<'a>(pub &'a AllowList, pub &'a AllowList);

impl AllowView<'_> {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(ip) || self.1.contains(ip)
    }
    pub fn covers_key(&self, key: &str) -> bool {
        self.0.covers_key(key) || self.1.covers_key(key)
    }
}

/// The actor keys of a remote address that may take part in correlation: none for an
/// allow-listed address, and no `net:`/`asn:` key that covers an allow-listed address. The
/// `ip:` key stays first.
pub fn actor_keys(remote: IpAddr, asn: Option<u32>, allow: AllowView<'_>) -> Vec<String> {
    if allow.contains(remote) {
        return Vec::new();
    }
    let mut keys = crate::ingest::actor_keys(remote, asn);
    keys.retain(|k| !allow.covers_key(k));
    keys
}

/// The hub's own addresses, which no sensor may get blocked: `listen` unless it is loopback or
/// unspecified, and the host of `public_url` when it is an address literal (a name is not
/// resolved; list the addresses it resolves to in `never_block`).
pub fn hub_addresses(listen: std::net::SocketAddr, public_url: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let ip = listen.ip().to_canonical();
    if !ip.is_loopback() && !ip.is_unspecified() {
        out.push(ip);
    }
    let rest = public_url.split_once("://").map_or(public_url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host.strip_prefix('[') { v6.split(']').next().unwrap_or("") } else { host.split(':').next().unwrap_or("") };
    if let Ok(ip) = host.parse::<IpAddr>() {
        out.push(ip.to_canonical());
    }
    out
}

// ------------------------------------------------------------------------------------------
// Registered entries
// ------------------------------------------------------------------------------------------

/// Who asks to add an allow-list entry: it decides how wide the entry may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryAuthor {
    /// An analyst (API) or the hub's operator (CLI): hub-wide or for any jurisdiction.
    Analyst,
    /// A jurisdiction's admin: for their own jurisdiction only, narrow networks only.
    JurisdictionAdmin,
}

/// A validated entry, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAllowEntry {
    /// `None`: hub-wide.
    pub jurisdiction_id: Option<i64>,
    /// Canonical text (see [`network_text`]).
    pub network: String,
    /// The autonomous system of the network's address, when the hub has an ASN database.
    pub asn: Option<u32>,
    pub note: String,
    /// User name, or `cli`.
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AllowEntry {
    pub id: i64,
    pub jurisdiction_id: Option<i64>,
    pub network: String,
    pub asn: Option<u32>,
    pub note: String,
    pub created_by: String,
    pub created_ms: Millis,
}

/// What adding an entry changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AllowOutcome {
    pub entry: AllowEntry,
    /// Campaign keys taken out of open campaigns.
    pub keys_removed: usize,
    /// `remove` deltas written to the indicator feed.
    pub indicators_withdrawn: usize,
    /// Open campaigns closed because none of their keys was left.
    pub campaigns_closed: usize,
}

/// Checks an entry: a network, within the author's width bound, with a short note.
pub fn validate_entry(network: &str, note: &str, jurisdiction_id: Option<i64>, author: EntryAuthor, created_by: &str) -> Result<NewAllowEntry, String> {
    let (ip, len) = parse_network(network)?;
    let (min4, min6) = match author {
        EntryAuthor::Analyst => (MIN_V4_PREFIX, MIN_V6_PREFIX),
        EntryAuthor::JurisdictionAdmin => (MIN_JURISDICTION_V4_PREFIX, MIN_JURISDICTION_V6_PREFIX),
    };
    let min = if ip.is_ipv4() { min4 } else { min6 };
    if len < min {
        return Err(format!("{network:?}: networks wider than /{min} cannot be allow-listed here (it would exempt far too much)"));
    }
    let note = note.trim();
    if note.is_empty() || note.len() > MAX_NOTE_BYTES || note.chars().any(char::is_control) {
        return Err(format!("note must be 1 to {MAX_NOTE_BYTES} bytes of text saying what the address is"));
    }
    if author == EntryAuthor::JurisdictionAdmin && jurisdiction_id.is_none() {
        return Err("a jurisdiction admin adds entries for their own jurisdiction: give jurisdiction_id".into());
    }
    Ok(NewAllowEntry { jurisdiction_id, network: network_text(ip, len), asn: None, note: note.to_string(), created_by: created_by.to_string() })
}

/// An analyst indicator that names or covers an allow-listed address is refused.
pub fn check_indicator(kind: &str, value: &str, allow: &AllowList) -> Result<(), String> {
    let key = format!("{kind}:{value}");
    if allow.covers_key(&key) {
        return Err(format!("{value} is on the never-block allow-list (a public resolver, the hub or a registered resolver or vendor): it cannot be an indicator"));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// What one sensor contributed (analysts only)
// ------------------------------------------------------------------------------------------

/// One sensor's standing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SensorStanding {
    pub on_hold: bool,
    pub hold_until_ms: Option<Millis>,
    pub hold_since_ms: Option<Millis>,
    /// `batch_spray`, `window_budget` or `revoked`.
    pub hold_reason: Option<String>,
    pub released_ms: Option<Millis>,
    pub window_start_ms: Option<Millis>,
    /// New addresses brought into correlation in the current budget window.
    pub window_new_keys: i64,
}

/// One breach of the budget.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrustAnomaly {
    pub id: i64,
    pub sensor_id: i64,
    pub jurisdiction_id: i64,
    pub ts_ms: Millis,
    pub kind: String,
    /// The batch's idempotency sequence number.
    pub batch_seq: i64,
    pub events: i64,
    /// Distinct remote addresses in the batch (allow-listed ones not counted).
    pub remotes: i64,
    /// Of which new to the jurisdiction (not counted for a `batch_spray`).
    pub new_remotes: Option<i64>,
    /// The limit that was crossed.
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContributedKey {
    pub actor_key: String,
    pub first_ms: Millis,
    pub last_ms: Millis,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContributedCampaign {
    pub campaign_id: i64,
    pub name: String,
    pub status: String,
    /// This sensor's sighting opened it.
    pub opened_by_this_sensor: bool,
    /// The sensor's jurisdiction is a member.
    pub jurisdiction_member: bool,
    pub published: bool,
    /// Campaign keys this sensor sighted (at most [`MAX_LISTED`]).
    pub keys: Vec<String>,
}

/// Rows listed per part of [`SensorContributions`] at most; the totals are exact.
pub const MAX_LISTED: usize = 1000;

/// Everything one sensor contributed to correlation (`GET /api/v1/sensors/{id}/contributions`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SensorContributions {
    pub sensor: crate::model::Sensor,
    pub trust: SensorStanding,
    pub keys_total: i64,
    /// Its sightings, newest first.
    pub keys: Vec<ContributedKey>,
    pub campaigns: Vec<ContributedCampaign>,
    /// Values in the all-sensor feed because of campaigns it contributed to (keys it sighted).
    pub published_indicators: Vec<String>,
    pub anomalies: Vec<TrustAnomaly>,
}

/// What revoking one sensor's contributions changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RevokeOutcome {
    pub sensor_id: i64,
    pub sightings_deleted: usize,
    /// Campaigns its jurisdiction was taken out of (only this sensor had put it there).
    pub campaigns_left: Vec<i64>,
    /// Campaigns closed because they fell below K jurisdictions (or kept no key).
    pub campaigns_closed: Vec<i64>,
    /// Campaigns whose keys were withdrawn from the feed (below the publication bar).
    pub campaigns_unpublished: Vec<i64>,
    pub keys_removed: usize,
    pub indicators_withdrawn: usize,
    pub hold_until_ms: Millis,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn builtin_resolvers_and_their_networks_are_covered() {
        let a = AllowList::builtin();
        for (addr, _) in BUILTIN_NEVER_BLOCK {
            assert!(a.contains(ip(addr)), "{addr}");
        }
        assert!(!a.contains(ip("8.8.8.9")));
        assert!(a.contains(ip("::ffff:8.8.8.8")), "v4-mapped is the same address");
        assert!(a.covers_key("net:8.8.8.0/24"));
        assert!(a.covers_key("net:2001:4860:4860::/48"));
        assert!(!a.covers_key("net:8.8.9.0/24"));
        assert!(a.covers_key("ip:1.1.1.1"));
        assert!(!a.covers_key("ip:1.1.1.2"));
        assert!(!a.covers_key("asn:AS15169"), "no ASN without an ASN database");
        assert!(!a.covers_key("garbage") && !a.covers_key("net:x/24") && !a.covers_key("ip:"));
    }

    #[test]
    fn ranges_merge_and_match_at_their_edges() {
        let a = AllowList::from_networks(
            [parse_network("192.0.2.0/25").unwrap(), parse_network("192.0.2.128/25").unwrap(), parse_network("203.0.113.7").unwrap()],
            [64500],
        );
        assert_eq!(a.v4.len(), 2, "adjacent halves merge: {:?}", a.v4);
        assert!(a.contains(ip("192.0.2.0")) && a.contains(ip("192.0.2.255")));
        assert!(!a.contains(ip("192.0.1.255")) && !a.contains(ip("192.0.3.0")));
        assert!(a.overlaps(ip("203.0.113.0"), 24) && a.overlaps(ip("203.0.0.0"), 16) && a.overlaps(ip("0.0.0.0"), 0));
        assert!(!a.overlaps(ip("203.0.114.0"), 24));
        assert!(a.covers_key("asn:AS64500") && !a.covers_key("asn:AS64501"));
        let full = AllowList::from_networks([parse_network("0.0.0.0/0").unwrap(), parse_network("::/0").unwrap()], []);
        assert!(full.contains(ip("255.255.255.255")) && full.contains(ip("ffff::1")));
    }

    #[test]
    fn keys_of_allow_listed_addresses_and_their_networks_are_dropped() {
        let db = AllowList::from_networks([parse_network("93.184.216.34").unwrap()], []);
        let fixed = AllowList::builtin();
        let view = AllowView(&fixed, &db);
        assert!(actor_keys(ip("93.184.216.34"), Some(15133), view).is_empty());
        assert_eq!(actor_keys(ip("93.184.216.35"), None, view), vec!["ip:93.184.216.35"], "the /24 holds the vendor");
        assert_eq!(actor_keys(ip("8.8.8.9"), None, view), vec!["ip:8.8.8.9"]);
        assert_eq!(actor_keys(ip("45.33.32.156"), None, view), vec!["ip:45.33.32.156", "net:45.33.32.0/24"]);
    }

    #[test]
    fn networks_parse_canonically() {
        assert_eq!(parse_network("192.0.2.77/24").unwrap(), (ip("192.0.2.0"), 24));
        assert_eq!(parse_network(" 2001:db8::1 ").unwrap(), (ip("2001:db8::1"), 128));
        assert_eq!(parse_network("::ffff:192.0.2.1").unwrap(), (ip("192.0.2.1"), 32));
        assert!(parse_network("192.0.2.0/33").is_err() && parse_network("nope").is_err() && parse_network("1.2.3.4/x").is_err());
        assert_eq!(network_text(ip("192.0.2.7"), 32), "192.0.2.7");
        assert_eq!(network_text(ip("192.0.2.0"), 24), "192.0.2.0/24");
    }

    #[test]
    fn entries_are_bounded_by_who_adds_them() {
        assert!(validate_entry("45.0.0.0/8", "x", Some(1), EntryAuthor::JurisdictionAdmin, "a").is_err());
        assert!(validate_entry("45.1.2.0/23", "x", Some(1), EntryAuthor::JurisdictionAdmin, "a").is_err());
        assert!(validate_entry("45.1.2.0/24", "x", None, EntryAuthor::JurisdictionAdmin, "a").is_err(), "admins need their jurisdiction");
        let e = validate_entry("45.1.2.3/24", "resolver", Some(1), EntryAuthor::JurisdictionAdmin, "a").unwrap();
        assert_eq!(e.network, "45.1.2.0/24");
        assert!(validate_entry("45.1.0.0/16", "cdn", None, EntryAuthor::Analyst, "ana").is_ok());
        assert!(validate_entry("45.0.0.0/15", "x", None, EntryAuthor::Analyst, "ana").is_err());
        assert!(validate_entry("45.1.2.3", "", None, EntryAuthor::Analyst, "ana").is_err());
        assert!(validate_entry("45.1.2.3", "a\u{7}b", None, EntryAuthor::Analyst, "ana").is_err());
        assert!(validate_entry("45.1.2.3", &"x".repeat(MAX_NOTE_BYTES + 1), None, EntryAuthor::Analyst, "ana").is_err());
    }

    #[test]
    fn the_budget_holds_sprays_and_slow_sprays() {
        let p = TrustPolicy { max_remotes_per_batch: 10, max_new_keys_per_sensor: 25, budget_window_ms: 1000, ..Default::default() };
        let fresh = BudgetState::default();
        assert_eq!(precheck(&fresh, 11, &p, 5000), Some(Admission::Breach(AnomalyKind::BatchSpray)));
        assert_eq!(precheck(&fresh, 10, &p, 5000), None);
        let held = BudgetState { hold_until_ms: Some(6000), ..fresh };
        assert_eq!(precheck(&held, 1, &p, 5000), Some(Admission::Held));
        assert_eq!(precheck(&held, 1, &p, 6000), None, "a hold ends by itself");
        // A window fills, then resets after budget_window_ms.
        let mut s = fresh;
        for _ in 0..2 {
            match judge_new(&s, 10, &p, 5000) {
                Admission::Correlate { window_start_ms, window_new_keys } => s = BudgetState { window_start_ms, window_new_keys, hold_until_ms: None },
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((s.window_start_ms, s.window_new_keys), (5000, 20));
        assert_eq!(judge_new(&s, 6, &p, 5500), Admission::Breach(AnomalyKind::WindowBudget));
        assert_eq!(judge_new(&s, 5, &p, 5500), Admission::Correlate { window_start_ms: 5000, window_new_keys: 25 });
        assert_eq!(judge_new(&s, 25, &p, 6000), Admission::Correlate { window_start_ms: 6000, window_new_keys: 25 });
    }

    #[test]
    fn the_publication_bar_never_drops_below_two() {
        assert_eq!(TrustPolicy { publish_min_jurisdictions: 1, ..Default::default() }.publish_bar(), 2);
        assert_eq!(TrustPolicy::default().publish_bar(), 3);
    }

    #[test]
    fn the_hub_never_blocks_itself() {
        assert_eq!(hub_addresses("127.0.0.1:8443".parse().unwrap(), "https://hub.example.org"), Vec::<IpAddr>::new());
        assert_eq!(hub_addresses("0.0.0.0:8443".parse().unwrap(), "https://192.0.2.10:8443/x"), vec![ip("192.0.2.10")]);
        assert_eq!(hub_addresses("[2001:db8::5]:443".parse().unwrap(), "https://[2001:db8::6]/"), vec![ip("2001:db8::5"), ip("2001:db8::6")]);
    }

    #[test]
    fn analyst_indicators_on_the_allow_list_are_refused() {
        let a = AllowList::builtin();
        assert!(check_indicator("ip", "9.9.9.9", &a).unwrap_err().contains("allow-list"));
        assert!(check_indicator("net", "9.9.9.0/24", &a).is_err());
        assert!(check_indicator("ip", "9.9.9.10", &a).is_ok());
        assert!(check_indicator("domain", "bad.example", &a).is_ok());
    }
}
