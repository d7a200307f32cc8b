//! Feeds the hub polls: TAXII 2.1 collections ([`taxii`]), MISP feeds ([`misp`]) and plain
//! CSV/text lists ([`csv`]), whose indicators join the one indicator log that campaign keys and
//! analyst indicators use — so they reach every sensor through the existing long-poll and the
//! retro-hunt runs on them. docs/sharing.md, "Feeds", is the user's view.
//!
//! What this module owns: a feed's settings and their validation ([`validate`]), turning what a
//! feed serves into [`FeedItem`]s (the parsers are pure functions over bytes, fuzzed in
//! `fuzz/fuzz_targets/feeds.rs`), one poll ([`poll`]: fetch under the egress policy with size,
//! time and redirect limits — [`fetch`] —, parse, filter, apply), the leased background poller
//! ([`run_worker`]) and the API ([`api`]). The SQL is the store's (`store/*/feeds.rs`).
//!
//! Rules, in one place:
//! * **Groups.** A poll replaces whole groups: a TAXII object's observables (by object id; a
//!   revoked or expired version empties it), a MISP event's attributes (by event uuid; an event
//!   gone from the manifest empties it), or a CSV list (one group: a line gone is removed).
//! * **Filters before the store**: the feed's allowed types, its confidence floor, values the
//!   hub cannot block (private, loopback, documentation, multicast addresses, networks wider than
//!   /16 or /32), expiry already past. **In the store, in the same transaction as the log**: the
//!   never-block allow-list wins (an allow-listed value is never stored or logged), and the cap
//!   (a feed holding `max_active` indicators adds nothing more; the poll says so).
//! * **TLP**: CLEAR, GREEN and AMBER indicators go to the sensors. AMBER+STRICT and RED ones are
//!   kept on the hub (stored, listed for analysts, not logged): a sensor's list is a file on a
//!   county's machine, readable by its staff — another organisation — so putting a RED value
//!   there would be sharing it; the retro-hunt, whose hits notify jurisdictions, does not run
//!   on them either.
//! * **One log, many sources**: a value already live in the log is not logged again; a
//!   `remove` is logged only when no other source (a published campaign key, an active analyst
//!   indicator, another feed's sensor-bound indicator) still holds the value. The same holds for
//!   the other sources' removals (store: `held_elsewhere`).

pub mod api;
pub mod csv;
pub mod fetch;
pub mod misp;
pub mod poll;
pub mod taxii;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use ward_model::tlp::Tlp;

use crate::model::Millis;

pub use poll::{poll_feed, run_worker, PollReport};

/// The highest TLP that goes to the sensors (see the module note).
pub const MAX_SENSOR_TLP: Tlp = Tlp::Amber;
/// Indicators one feed may hold at once by default (a broken feed must not flood the sensors).
pub const DEFAULT_MAX_ACTIVE: i64 = 50_000;
/// The highest cap an analyst may set.
pub const MAX_MAX_ACTIVE: i64 = 1_000_000;
/// Poll interval bounds: not more often than a minute, at least once a week.
pub const MIN_INTERVAL_SECS: i64 = 60;
pub const MAX_INTERVAL_SECS: i64 = 7 * 24 * 3600;
pub const DEFAULT_INTERVAL_SECS: i64 = 3600;
/// Confidence given to indicators that carry none (MISP attributes, CSV lines), by default.
pub const DEFAULT_CONFIDENCE: i64 = 50;
/// Feeds one hub may hold.
pub const MAX_FEEDS: usize = 256;
/// Longest feed name and URL.
pub const MAX_NAME_BYTES: usize = 100;
pub const MAX_URL_BYTES: usize = 2048;
/// Longest credential (password or token).
pub const MAX_CREDENTIAL_BYTES: usize = 4096;
/// Longest expiry an analyst may give a feed's indicators.
pub const MAX_EXPIRE_DAYS: i64 = 3650;

/// What a feed is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedKind {
    Taxii,
    Misp,
    Csv,
}

impl FeedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedKind::Taxii => "taxii",
            FeedKind::Misp => "misp",
            FeedKind::Csv => "csv",
        }
    }

    pub fn parse(s: &str) -> Option<FeedKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "taxii" => Some(FeedKind::Taxii),
            "misp" => Some(FeedKind::Misp),
            "csv" | "text" | "txt" => Some(FeedKind::Csv),
            _ => None,
        }
    }
}

/// The indicator types a feed may be allowed to add. `url` means "a URL's host, as a domain
/// (or an address)": a sensor matches addresses and names, not paths; it is off by default,
/// because a URL on a shared host (a file-sharing site) would block the whole site.
pub const TYPES: &[&str] = &["ip", "net", "domain", "url"];
pub const DEFAULT_TYPES: &[&str] = &["ip", "net", "domain"];

/// `POST /api/v1/feeds` (and `ward hub feed add`, which builds the same request).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedRequest {
    pub name: String,
    /// `taxii`, `misp` or `csv`.
    pub kind: String,
    /// TAXII: the API root (`https://taxii.example/api1/`); MISP: the feed's directory (where
    /// `manifest.json` is); CSV: the list's URL.
    pub url: String,
    /// TAXII: the collection id.
    #[serde(default)]
    pub collection: Option<String>,
    /// CSV: the 0-based column holding the indicator (default: the first field of the line).
    #[serde(default)]
    pub column: Option<i64>,
    /// HTTP Basic user name (with `password`).
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// A bearer token instead of Basic credentials.
    #[serde(default)]
    pub token: Option<String>,
    /// Allowed indicator types (default `ip`, `net`, `domain`; `url` adds URLs' hosts).
    #[serde(default)]
    pub types: Option<Vec<String>>,
    /// Indicators with a lower confidence are skipped (default 0).
    #[serde(default)]
    pub min_confidence: Option<i64>,
    /// The confidence of indicators that carry none (default 50).
    #[serde(default)]
    pub default_confidence: Option<i64>,
    /// The cap on indicators the feed holds at once.
    #[serde(default)]
    pub max_indicators: Option<i64>,
    /// The TLP of indicators that carry none (default TLP:AMBER).
    #[serde(default)]
    pub tlp: Option<String>,
    /// Indicators that carry no expiry expire this many days after they were added.
    #[serde(default)]
    pub expire_days: Option<i64>,
    /// Seconds between polls (default 3600, at least 60).
    #[serde(default)]
    pub interval_secs: Option<i64>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// How the hub authenticates to a feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedAuth {
    None,
    Basic,
    Bearer,
}

impl FeedAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedAuth::None => "none",
            FeedAuth::Basic => "basic",
            FeedAuth::Bearer => "bearer",
        }
    }

    pub fn parse(s: &str) -> FeedAuth {
        match s {
            "basic" => FeedAuth::Basic,
            "bearer" => FeedAuth::Bearer,
            _ => FeedAuth::None,
        }
    }
}

/// A validated feed, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFeed {
    pub name: String,
    pub kind: FeedKind,
    pub url: String,
    pub collection: Option<String>,
    pub csv_column: Option<i64>,
    pub auth: FeedAuth,
    pub username: Option<String>,
    /// The password or token, in clear; the store seals it.
    pub secret: Option<String>,
    pub types: Vec<String>,
    pub min_confidence: i64,
    pub default_confidence: i64,
    pub max_active: i64,
    pub default_tlp: Tlp,
    pub default_ttl_secs: Option<i64>,
    pub interval_secs: i64,
    pub enabled: bool,
    pub created_by: String,
}

/// A poll's memory between polls (the `state` column, JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FeedState {
    /// TAXII: `added_after` for the next poll (the last page's `X-TAXII-Date-Added-Last`, or the
    /// newest `date_added` seen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added_after: Option<String>,
    /// CSV: the list's `ETag` and `Last-Modified`, sent back so an unchanged list costs a 304.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// MISP: event uuid → the manifest timestamp applied.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub misp_events: BTreeMap<String, i64>,
}

/// A feed as stored (its credential never leaves the store this way).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Feed {
    pub id: i64,
    pub name: String,
    pub kind: FeedKind,
    /// As configured (the API and CLI show it with query values hidden).
    pub url: String,
    pub collection: Option<String>,
    pub csv_column: Option<i64>,
    /// `none`, `basic` or `bearer`.
    pub auth: String,
    pub username: Option<String>,
    pub has_credential: bool,
    pub types: Vec<String>,
    pub min_confidence: i64,
    pub default_confidence: i64,
    pub max_indicators: i64,
    pub default_tlp: Tlp,
    pub default_ttl_secs: Option<i64>,
    pub interval_secs: i64,
    pub enabled: bool,
    pub created_by: String,
    pub created_ms: Millis,
    pub next_poll_ms: Millis,
    pub last_poll_ms: Option<Millis>,
    pub last_ok_ms: Option<Millis>,
    pub last_error: Option<String>,
    /// Consecutive failed polls.
    pub failures: i64,
    /// The last poll stopped adding at the cap.
    pub capped: bool,
    pub added_total: i64,
    pub removed_total: i64,
    pub skipped_total: i64,
    /// Indicators the feed holds now: on the sensors' list, and kept on the hub by their TLP.
    pub on_sensors: i64,
    pub held_on_hub: i64,
    #[serde(skip)]
    pub state: FeedState,
}

/// One indicator a feed serves, normalised and filtered (see [`normalize`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedItem {
    /// The STIX object id, MISP attribute uuid or CSV line number.
    pub source_ref: String,
    /// `ip`, `net` or `domain`.
    pub kind: &'static str,
    pub value: String,
    pub confidence: i64,
    pub tlp: Tlp,
    pub valid_until_ms: Option<Millis>,
}

/// Everything a group holds now (an empty list withdraws the group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupUpdate {
    pub group: String,
    pub items: Vec<FeedItem>,
}

/// One transaction's worth of a poll: groups to replace, and the poll state to keep with them
/// (so a poll that fails half-way resumes after what it applied).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedUpdate {
    pub groups: Vec<GroupUpdate>,
    pub state: Option<FeedState>,
}

/// What applying an update (or removing a feed, or expiring) changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FeedApplied {
    /// Indicators the feed now holds that it did not.
    pub added: usize,
    /// Of which kept on the hub by their TLP.
    pub held_on_hub: usize,
    /// Indicators the feed no longer holds.
    pub removed: usize,
    /// `add` / `remove` entries written to the indicator log (a value another source holds is
    /// neither added again nor removed).
    pub log_adds: usize,
    pub log_removes: usize,
    /// Values on the never-block allow-list, not taken.
    pub skipped_allow: usize,
    /// Values not taken because the feed holds its cap.
    pub skipped_cap: usize,
    pub capped: bool,
}

impl FeedApplied {
    pub fn merge(&mut self, o: &FeedApplied) {
        self.added += o.added;
        self.held_on_hub += o.held_on_hub;
        self.removed += o.removed;
        self.log_adds += o.log_adds;
        self.log_removes += o.log_removes;
        self.skipped_allow += o.skipped_allow;
        self.skipped_cap += o.skipped_cap;
        self.capped |= o.capped;
    }

    pub fn changed_log(&self) -> bool {
        self.log_adds + self.log_removes > 0
    }
}

/// The outcome of one poll, as the store records it.
#[derive(Debug, Clone, PartialEq)]
pub struct PollRecord {
    pub error: Option<String>,
    pub capped: bool,
    pub next_poll_ms: Millis,
}

/// One indicator a feed holds, for analysts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedIndicator {
    pub id: i64,
    pub kind: String,
    pub value: String,
    pub source_group: String,
    pub source_ref: String,
    pub confidence: i64,
    pub tlp: Tlp,
    pub valid_until_ms: Option<Millis>,
    pub on_sensors: bool,
    pub added_ms: Millis,
    /// The indicator log `add` it rode on (`None`: kept on the hub).
    pub add_seq: Option<i64>,
}

fn opt_text(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// Checks a request; `created_by` is the user name (or `cli`).
pub fn validate(req: &FeedRequest, created_by: &str) -> Result<NewFeed, String> {
    let name = req.name.trim();
    if name.is_empty() || name.len() > MAX_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(format!("name must be 1 to {MAX_NAME_BYTES} bytes of text"));
    }
    let kind = FeedKind::parse(&req.kind).ok_or_else(|| format!("kind {:?} must be taxii, misp or csv", req.kind))?;
    let url = req.url.trim();
    if url.len() > MAX_URL_BYTES {
        return Err(format!("url longer than {MAX_URL_BYTES} bytes"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("url {url:?}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err("url must be an http:// or https:// URL with a host".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("put credentials in username/password or token, not in the url".into());
    }
    let collection = opt_text(&req.collection);
    match (kind, &collection) {
        (FeedKind::Taxii, None) => return Err("a TAXII feed needs its collection id".into()),
        (FeedKind::Taxii, Some(c)) if c.len() > 256 || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b)) => {
            return Err("collection must be a collection id (letters, digits, '-', '_', '.')".into())
        }
        (FeedKind::Misp | FeedKind::Csv, Some(_)) => return Err("collection is for TAXII feeds only".into()),
        _ => {}
    }
    let csv_column = match (kind, req.column) {
        (_, None) => None,
        (FeedKind::Csv, Some(c)) if (0..=255).contains(&c) => Some(c),
        (FeedKind::Csv, Some(_)) => return Err("column must be 0 to 255".into()),
        _ => return Err("column is for CSV feeds only".into()),
    };
    let (username, password, token) = (opt_text(&req.username), opt_text(&req.password), opt_text(&req.token));
    let (auth, secret) = match (username.is_some(), password, token) {
        (false, None, None) => (FeedAuth::None, None),
        (true, Some(p), None) => (FeedAuth::Basic, Some(p)),
        (false, None, Some(t)) => (FeedAuth::Bearer, Some(t)),
        (true, None, None) => return Err("username needs a password".into()),
        (false, Some(_), None) => return Err("password needs a username".into()),
        _ => return Err("give either username and password, or a token".into()),
    };
    if username.as_deref().is_some_and(|u| u.len() > 256 || u.contains(':') || u.chars().any(char::is_control)) {
        return Err("username must be at most 256 characters, without ':'".into());
    }
    if secret.as_deref().is_some_and(|s| s.len() > MAX_CREDENTIAL_BYTES || s.chars().any(char::is_control)) {
        return Err(format!("password or token must be at most {MAX_CREDENTIAL_BYTES} bytes without control characters"));
    }
    if parsed.scheme() == "http" && secret.is_some() && !parsed.host_str().is_some_and(is_loopback_host) {
        return Err("credentials are sent only over https (or to a loopback address)".into());
    }
    let types: Vec<String> = match &req.types {
        None => DEFAULT_TYPES.iter().map(|s| s.to_string()).collect(),
        Some(list) => {
            let mut out: Vec<String> = Vec::new();
            for t in list {
                let t = t.trim().to_ascii_lowercase();
                if !TYPES.contains(&t.as_str()) {
                    return Err(format!("type {t:?} must be one of ip, net, domain, url"));
                }
                if !out.contains(&t) {
                    out.push(t);
                }
            }
            if out.is_empty() {
                return Err("types must name at least one of ip, net, domain, url".into());
            }
            out
        }
    };
    let confidence = |v: Option<i64>, default: i64, what: &str| -> Result<i64, String> {
        let v = v.unwrap_or(default);
        if (0..=100).contains(&v) {
            Ok(v)
        } else {
            Err(format!("{what} must be 0 to 100"))
        }
    };
    let min_confidence = confidence(req.min_confidence, 0, "min_confidence")?;
    let default_confidence = confidence(req.default_confidence, DEFAULT_CONFIDENCE, "default_confidence")?;
    let max_active = req.max_indicators.unwrap_or(DEFAULT_MAX_ACTIVE);
    if !(1..=MAX_MAX_ACTIVE).contains(&max_active) {
        return Err(format!("max_indicators must be 1 to {MAX_MAX_ACTIVE}"));
    }
    let default_tlp = match req.tlp.as_deref().map(str::trim) {
        None | Some("") => Tlp::Amber,
        Some(t) => t.parse::<Tlp>().map_err(|_| format!("tlp {t:?} must be TLP:CLEAR, TLP:GREEN, TLP:AMBER, TLP:AMBER+STRICT or TLP:RED"))?,
    };
    let default_ttl_secs = match req.expire_days {
        None => None,
        Some(d) if (1..=MAX_EXPIRE_DAYS).contains(&d) => Some(d * 24 * 3600),
        Some(_) => return Err(format!("expire_days must be 1 to {MAX_EXPIRE_DAYS}")),
    };
    let interval_secs = req.interval_secs.unwrap_or(DEFAULT_INTERVAL_SECS);
    if !(MIN_INTERVAL_SECS..=MAX_INTERVAL_SECS).contains(&interval_secs) {
        return Err(format!("interval_secs must be {MIN_INTERVAL_SECS} to {MAX_INTERVAL_SECS}"));
    }
    Ok(NewFeed {
        name: name.to_string(),
        kind,
        url: parsed.to_string(),
        collection,
        csv_column,
        auth,
        username,
        secret,
        types,
        min_confidence,
        default_confidence,
        max_active,
        default_tlp,
        default_ttl_secs,
        interval_secs,
        enabled: req.enabled.unwrap_or(true),
        created_by: created_by.to_string(),
    })
}

fn is_loopback_host(h: &str) -> bool {
    h == "localhost" || h.trim_matches(['[', ']']).parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Why a value a feed served was not taken (counted per reason in the poll's report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    /// Not an address, network, domain or URL the hub reads.
    Unreadable,
    /// A type the feed is not allowed to add.
    Type,
    /// A private, loopback, documentation or otherwise non-public address, or a network wider
    /// than /16 (IPv6 /32).
    NotBlockable,
    /// Below the feed's confidence floor.
    Confidence,
    /// Already expired.
    Expired,
    /// A STIX pattern the hub does not turn into indicators (AND, FOLLOWEDBY, file hashes, …).
    Pattern,
    /// MISP `to_ids` false.
    NotForIds,
}

/// What a value becomes: `(kind, value)` with kind `ip`, `net` or `domain`, after the type,
/// blockability and network-width checks. `declared` is the feed's own type for the value when
/// it has one (`ip`, `domain`, `url`, …); `None` infers it.
pub fn normalize(raw: &str, declared: Option<&str>, allowed: &[String]) -> Result<(&'static str, String), Skip> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > MAX_URL_BYTES {
        return Err(Skip::Unreadable);
    }
    let allows = |t: &str| allowed.iter().any(|a| a == t);
    let declared = declared.map(str::to_ascii_lowercase);
    let is_url = matches!(declared.as_deref(), Some("url" | "uri" | "link")) || raw.contains("://");
    if is_url {
        if !allows("url") {
            return Err(Skip::Type);
        }
        let url = reqwest::Url::parse(raw).map_err(|_| Skip::Unreadable)?;
        let host = url.host_str().ok_or(Skip::Unreadable)?.trim_start_matches('[').trim_end_matches(']').to_string();
        // The host stands for the URL: an address host is checked as an address.
        return match host.parse::<IpAddr>() {
            Ok(ip) => blockable_ip(ip.to_canonical(), None).map(|v| ("ip", v)),
            Err(_) => crate::retro::normalize_domain(&host).map(|d| ("domain", d)).map_err(|_| Skip::Unreadable),
        };
    }
    if let Some((addr, len)) = raw.split_once('/') {
        let ip = addr.trim().parse::<IpAddr>().map_err(|_| Skip::Unreadable)?.to_canonical();
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = len.trim().parse::<u8>().ok().filter(|&l| l <= max).ok_or(Skip::Unreadable)?;
        if len == max {
            if !allows("ip") {
                return Err(Skip::Type);
            }
            return blockable_ip(ip, None).map(|v| ("ip", v));
        }
        if !allows("net") {
            return Err(Skip::Type);
        }
        return blockable_ip(ip, Some(len)).map(|v| ("net", v));
    }
    if let Ok(ip) = raw.trim_matches(['[', ']']).parse::<IpAddr>() {
        if !allows("ip") {
            return Err(Skip::Type);
        }
        return blockable_ip(ip.to_canonical(), None).map(|v| ("ip", v));
    }
    if !allows("domain") {
        return Err(Skip::Type);
    }
    if raw.starts_with("*.") {
        return Err(Skip::Unreadable);
    }
    crate::retro::normalize_domain(raw).map(|d| ("domain", d)).map_err(|_| Skip::Unreadable)
}

/// The canonical text of an address or network a sensor may block: public at both ends, and no
/// wider than the analysts' bound ([`crate::retro::MIN_V4_PREFIX`]).
fn blockable_ip(ip: IpAddr, len: Option<u8>) -> Result<String, Skip> {
    let Some(len) = len else {
        return if crate::ingest::is_public(ip) { Ok(ip.to_string()) } else { Err(Skip::NotBlockable) };
    };
    let min = if ip.is_ipv4() { crate::retro::MIN_V4_PREFIX } else { crate::retro::MIN_V6_PREFIX };
    if len < min {
        return Err(Skip::NotBlockable);
    }
    let (lo, hi) = crate::retro::net_range(ip, len);
    let (lo, hi) = (crate::retro::ip_from_bytes(&lo).ok_or(Skip::Unreadable)?, crate::retro::ip_from_bytes(&hi).ok_or(Skip::Unreadable)?);
    if !crate::ingest::is_public(lo) || !crate::ingest::is_public(hi) {
        return Err(Skip::NotBlockable);
    }
    Ok(format!("{lo}/{len}"))
}

/// Counts of what a parse or filter left out, by reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Skipped(pub BTreeMap<Skip, usize>);

impl Skipped {
    pub fn add(&mut self, why: Skip) {
        *self.0.entry(why).or_default() += 1;
    }
    pub fn total(&self) -> usize {
        self.0.values().sum()
    }
    pub fn merge(&mut self, o: &Skipped) {
        for (k, v) in &o.0 {
            *self.0.entry(*k).or_default() += v;
        }
    }
}

/// The feed-level settings a parser needs to turn values into items.
#[derive(Debug, Clone)]
pub struct ItemRules {
    pub types: Vec<String>,
    pub min_confidence: i64,
    pub default_confidence: i64,
    pub default_tlp: Tlp,
    pub default_ttl_ms: Option<Millis>,
    pub now: Millis,
}

impl ItemRules {
    pub fn for_feed(feed: &Feed, now: Millis) -> ItemRules {
        ItemRules {
            types: feed.types.clone(),
            min_confidence: feed.min_confidence,
            default_confidence: feed.default_confidence,
            default_tlp: feed.default_tlp,
            default_ttl_ms: feed.default_ttl_secs.map(|s| s.saturating_mul(1000)),
            now,
        }
    }

    /// Everything allowed, defaults otherwise (tests and the fuzz target).
    pub fn permissive(now: Millis) -> ItemRules {
        ItemRules {
            types: TYPES.iter().map(|s| s.to_string()).collect(),
            min_confidence: 0,
            default_confidence: DEFAULT_CONFIDENCE,
            default_tlp: Tlp::Amber,
            default_ttl_ms: None,
            now,
        }
    }

    /// One value into an item, or why not.
    pub fn item(&self, source_ref: &str, raw: &str, declared: Option<&str>, confidence: Option<i64>, tlp: Option<Tlp>, valid_until_ms: Option<Millis>) -> Result<FeedItem, Skip> {
        let confidence = confidence.unwrap_or(self.default_confidence);
        if confidence < self.min_confidence {
            return Err(Skip::Confidence);
        }
        let valid_until_ms = valid_until_ms.or_else(|| self.default_ttl_ms.map(|t| self.now.saturating_add(t)));
        if valid_until_ms.is_some_and(|t| t <= self.now) {
            return Err(Skip::Expired);
        }
        let (kind, value) = normalize(raw, declared, &self.types)?;
        Ok(FeedItem { source_ref: source_ref.to_string(), kind, value, confidence, tlp: tlp.unwrap_or(self.default_tlp), valid_until_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<String> {
        TYPES.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn values_normalise_and_unblockable_ones_are_refused() {
        let t = all();
        assert_eq!(normalize(" 185.220.101.7 ", None, &t), Ok(("ip", "185.220.101.7".into())));
        assert_eq!(normalize("185.220.101.9/24", None, &t), Ok(("net", "185.220.101.0/24".into())));
        assert_eq!(normalize("185.220.101.9/32", None, &t), Ok(("ip", "185.220.101.9".into())));
        assert_eq!(normalize("Bad.Example.", None, &t), Ok(("domain", "bad.example".into())));
        assert_eq!(normalize("http://Bad.Example/x?y", Some("url"), &t), Ok(("domain", "bad.example".into())));
        assert_eq!(normalize("http://185.220.101.7:8080/", None, &t), Ok(("ip", "185.220.101.7".into())));
        assert_eq!(normalize("::ffff:185.220.101.7", None, &t), Ok(("ip", "185.220.101.7".into())));
        for bad in ["10.1.2.3", "127.0.0.1", "192.0.2.1", "224.0.0.1", "0.0.0.0", "::1", "fe80::1", "2001:db8::1", "10.0.0.0/8", "185.0.0.0/8", "100.64.0.0/16"] {
            assert_eq!(normalize(bad, None, &t), Err(Skip::NotBlockable), "{bad}");
        }
        for bad in ["", "not a domain", "*.wild.example", "1.2.3.4/33", "x/24", "com"] {
            assert_eq!(normalize(bad, None, &t), Err(Skip::Unreadable), "{bad}");
        }
        let ip_only = vec!["ip".to_string()];
        assert_eq!(normalize("bad.example", None, &ip_only), Err(Skip::Type));
        assert_eq!(normalize("185.220.101.0/24", None, &ip_only), Err(Skip::Type));
        assert_eq!(normalize("http://bad.example/", None, &DEFAULT_TYPES.iter().map(|s| s.to_string()).collect::<Vec<_>>()), Err(Skip::Type));
    }

    #[test]
    fn requests_are_validated() {
        let ok = FeedRequest { name: "isac".into(), kind: "taxii".into(), url: "https://taxii.example/api1/".into(), collection: Some("c1".into()), ..Default::default() };
        let f = validate(&ok, "cli").unwrap();
        assert_eq!((f.kind, f.auth, f.max_active, f.default_tlp), (FeedKind::Taxii, FeedAuth::None, DEFAULT_MAX_ACTIVE, Tlp::Amber));
        let bad = |f: &dyn Fn(&mut FeedRequest)| {
            let mut r = ok.clone();
            f(&mut r);
            validate(&r, "cli").unwrap_err()
        };
        assert!(bad(&|r| r.collection = None).contains("collection"));
        assert!(bad(&|r| r.kind = "rss".into()).contains("kind"));
        assert!(bad(&|r| r.url = "ftp://x/".into()).contains("http"));
        assert!(bad(&|r| r.url = "https://u:p@x.example/".into()).contains("credentials"));
        assert!(bad(&|r| r.username = Some("u".into())).contains("password"));
        assert!(bad(&|r| {
            r.url = "http://taxii.example/".into();
            r.token = Some("t".into());
        })
        .contains("https"));
        assert!(bad(&|r| r.types = Some(vec!["hash".into()])).contains("type"));
        assert!(bad(&|r| r.max_indicators = Some(0)).contains("max_indicators"));
        assert!(bad(&|r| r.interval_secs = Some(5)).contains("interval"));
        assert!(bad(&|r| r.tlp = Some("purple".into())).contains("tlp"));
        assert!(bad(&|r| r.column = Some(1)).contains("CSV"));
        let mut basic = ok.clone();
        basic.username = Some("u".into());
        basic.password = Some("p".into());
        assert_eq!(validate(&basic, "cli").unwrap().auth, FeedAuth::Basic);
    }

    #[test]
    fn items_honour_the_floor_expiry_and_defaults() {
        let mut rules = ItemRules::permissive(1_000_000);
        rules.min_confidence = 60;
        assert_eq!(rules.item("r", "185.220.101.7", None, Some(50), None, None), Err(Skip::Confidence));
        assert_eq!(rules.item("r", "185.220.101.7", None, None, None, None), Err(Skip::Confidence), "default 50 is below 60");
        assert_eq!(rules.item("r", "185.220.101.7", None, Some(90), None, Some(999_999)), Err(Skip::Expired));
        let it = rules.item("r", "185.220.101.7", None, Some(90), Some(Tlp::Red), None).unwrap();
        assert_eq!((it.tlp, it.confidence, it.valid_until_ms), (Tlp::Red, 90, None));
        rules.default_ttl_ms = Some(10);
        assert_eq!(rules.item("r", "185.220.101.7", None, Some(90), None, None).unwrap().valid_until_ms, Some(1_000_010));
    }
}
