//! The hub's domain types: jurisdictions, sensors, users, contacts, campaigns, indicators and
//! notifications. Plain data; the store fills them, the API serialises them.
//!
//! Invariant: a type whose name starts with `Jurisdiction…View` carries only what one
//! jurisdiction may learn about a campaign (its own sightings and a count of the others), never
//! another jurisdiction's name, events or identity.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch; every time in the store uses this unit.
pub type Millis = i64;

/// Now, in [`Millis`].
pub fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// Microseconds since the epoch (TAXII's `date_added`).
pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Formats [`Millis`] as RFC 3339 UTC for people and JSON.
pub fn fmt_ms(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum JurisdictionKind {
    State,
    County,
    City,
}

impl JurisdictionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JurisdictionKind::State => "state",
            JurisdictionKind::County => "county",
            JurisdictionKind::City => "city",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "state" => Some(Self::State),
            "county" => Some(Self::County),
            "city" => Some(Self::City),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Jurisdiction {
    pub id: i64,
    pub name: String,
    pub kind: JurisdictionKind,
    /// Two-letter state code; for a county or city, the state it belongs to.
    pub state: Option<String>,
    /// The state jurisdiction a county or city belongs to, when that state is registered.
    pub parent_id: Option<i64>,
    /// The jurisdiction's own address space (CIDRs, comma separated); decides "remote".
    pub home_net: String,
    pub created_ms: Millis,
    /// A drill jurisdiction (`ward drill`; docs/hub.md "Drill jurisdictions"): its messages are
    /// marked, it does not count towards publication, and `ward hub drill purge` deletes it.
    #[serde(default)]
    pub drill: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NewJurisdiction {
    pub name: String,
    pub kind: JurisdictionKind,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub home_net: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sensor {
    pub id: i64,
    pub jurisdiction_id: i64,
    pub name: String,
    pub created_ms: Millis,
    pub last_seen_ms: Option<Millis>,
    /// Timestamp of the newest event received; `last_seen - last_event` is the sensor's lag.
    pub last_event_ms: Option<Millis>,
    pub events_total: i64,
    /// What is wrong with the sensor, from its newest rule-reload `engine` record
    /// ([`reload_health`]): `None` when that reload was accepted, or none was ever relayed.
    pub health: Option<String>,
}

/// A sensor's health from its newest rule-reload `engine` record (EVE `engine.module`
/// `detect-reload`, written by the sensor on each reload): `rules reload refused at TIME:
/// REASON` when that reload was refused (log level `Error`), else `None`.
pub fn reload_health(record: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(record).ok()?;
    if v["log_level"].as_str() != Some("Error") {
        return None;
    }
    let message = v["engine"]["message"].as_str().unwrap_or("rules reload refused");
    let reason = message.strip_prefix("rules reload refused: ").unwrap_or(message);
    let at = v["timestamp"].as_str().unwrap_or("?");
    Some(format!("rules reload refused at {at}: {reason}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Hub staff: sees every jurisdiction.
    Analyst,
    /// Manages one jurisdiction: contacts, sensor tokens, viewers.
    Admin,
    /// Reads one jurisdiction.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Analyst => "analyst",
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "analyst" => Some(Self::Analyst),
            "admin" => Some(Self::Admin),
            "viewer" => Some(Self::Viewer),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    /// `None` only for analysts.
    pub jurisdiction_id: Option<i64>,
    pub created_ms: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Webhook,
    Syslog,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
            Channel::Syslog => "syslog",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "email" => Some(Self::Email),
            "webhook" => Some(Self::Webhook),
            "syslog" => Some(Self::Syslog),
            _ => None,
        }
    }
}

/// How a contact's target is shown anywhere but in the delivery itself (API, dashboard, CLI,
/// logs): a webhook URL keeps scheme, host, port and path, and loses user information, path
/// segments that look like tokens, every query value and the fragment (receivers put tokens
/// there); a query parameter without a value, or with a name that does not look like one, is
/// hidden whole. Email and syslog targets are
/// shown as they are.
pub fn redacted_target(target: &str) -> String {
    /// Longest query parameter name shown; longer ones may be tokens themselves.
    const MAX_SHOWN_PARAM_NAME: usize = 32;
    let Ok(url) = reqwest::Url::parse(target.trim()) else { return target.to_string() };
    if !matches!(url.scheme(), "http" | "https") {
        return target.to_string();
    }
    let mut out = format!("{}://", url.scheme());
    if !url.username().is_empty() || url.password().is_some() {
        out.push_str("…@");
    }
    out.push_str(url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    // Path segments that look like tokens (Slack, Discord and Teams put the secret in the
    // path): 16 characters or more with both letters and digits, or 32 or more of anything.
    let segments: Vec<&str> = url.path().split('/').collect();
    let shown: Vec<&str> = segments
        .iter()
        .map(|seg| {
            let len = seg.chars().count();
            let mixed = seg.chars().any(|c| c.is_ascii_digit()) && seg.chars().any(|c| c.is_alphabetic());
            if len >= 32 || (len >= 16 && mixed) {
                "…"
            } else {
                seg
            }
        })
        .collect();
    out.push_str(&shown.join("/"));
    if url.query().is_some_and(|q| !q.is_empty()) {
        let params: Vec<String> = url
            .query_pairs()
            .map(|(name, value)| {
                let name_like = name.len() <= MAX_SHOWN_PARAM_NAME && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
                if value.is_empty() || !name_like {
                    "…".to_string()
                } else {
                    format!("{name}=…")
                }
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

fn serialize_redacted<S: serde::Serializer>(target: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redacted_target(target))
}

/// Free text (a delivery attempt's detail, a notification's last error) with every `http://` or
/// `https://` URL in it redacted as [`redacted_target`] does. Today's details never hold a URL;
/// this covers attempts an older hub recorded with the URL in its error text.
pub fn redacted_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = ["http://", "https://"].iter().filter_map(|scheme| rest.find(scheme)).min() {
        out.push_str(&rest[..start]);
        let url = &rest[start..];
        let end = url.find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '<' | '>')).unwrap_or(url.len());
        out.push_str(&redacted_target(&url[..end]));
        rest = &url[end..];
    }
    out.push_str(rest);
    out
}

fn serialize_redacted_text<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redacted_text(text))
}

fn serialize_redacted_opt_text<S: serde::Serializer>(text: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match text {
        Some(t) => s.serialize_some(&redacted_text(t)),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contact {
    pub id: i64,
    pub jurisdiction_id: i64,
    pub channel: Channel,
    /// Email address, webhook URL, or syslog `host:port`. Serialised redacted
    /// ([`redacted_target`]); the full value is used only to deliver.
    #[serde(serialize_with = "serialize_redacted")]
    pub target: String,
    /// HMAC key for webhooks. It must be kept in clear to sign; it is never shown by the API.
    #[serde(skip_serializing)]
    pub secret: Option<String>,
    pub created_ms: Millis,
    /// 1: warned at once; 2, 3, …: told, in this order, when a warning stays unacknowledged
    /// ([`crate::ack`]).
    pub priority: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NewContact {
    pub channel: Channel,
    pub target: String,
    #[serde(default)]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CampaignStatus {
    Open,
    Closed,
    Merged,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Open => "open",
            CampaignStatus::Closed => "closed",
            CampaignStatus::Merged => "merged",
        }
    }
    pub fn parse(s: &str) -> Self {
        match s {
            "closed" => Self::Closed,
            "merged" => Self::Merged,
            _ => Self::Open,
        }
    }
}

/// The analyst's view of a campaign.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Campaign {
    pub id: i64,
    pub name: String,
    pub status: CampaignStatus,
    pub opened_ms: Millis,
    pub last_ms: Millis,
    pub closed_ms: Option<Millis>,
    pub merged_into: Option<i64>,
    pub annotation: String,
    pub jurisdictions: i64,
    pub sightings: i64,
    /// Since when its keys are in the all-sensor indicator feed (`None`: not published; see
    /// docs/hub.md "Trust").
    pub published_ms: Option<Millis>,
    /// When an analyst confirmed it (published whatever its size).
    pub confirmed_ms: Option<Millis>,
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignJurisdiction {
    pub jurisdiction_id: i64,
    pub name: String,
    pub first_ms: Millis,
    pub last_ms: Millis,
    pub sightings: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    pub ts_ms: Millis,
    pub kind: String,
    pub jurisdiction_id: Option<i64>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignDetail {
    pub campaign: Campaign,
    pub affected: Vec<CampaignJurisdiction>,
    pub timeline: Vec<TimelineEntry>,
    pub notifications: Vec<NotificationRecord>,
}

/// What one jurisdiction may learn about a campaign that touched it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JurisdictionCampaignView {
    pub campaign_id: i64,
    pub name: String,
    pub status: CampaignStatus,
    pub first_ms: Millis,
    pub last_ms: Millis,
    /// How many other jurisdictions saw the same actor (a count, never names).
    pub other_jurisdictions: i64,
    /// What hit this jurisdiction: its own sightings.
    pub sightings: Vec<LocalSighting>,
    /// The actor's addresses and prefixes to block.
    pub block: Vec<String>,
}

/// One remote address seen at one jurisdiction, with the local hosts it touched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalSighting {
    pub remote_ip: String,
    pub local_ip: Option<String>,
    pub signature: Option<String>,
    pub first_ms: Millis,
    pub last_ms: Millis,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Indicator {
    /// The cursor: strictly increasing over the indicator log.
    pub seq: i64,
    /// `add` or `remove`.
    pub action: String,
    /// `ip`, `net` or `asn`.
    pub kind: String,
    pub value: String,
    pub campaign_id: i64,
    pub ts_ms: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotificationRecord {
    pub id: i64,
    pub campaign_id: i64,
    pub jurisdiction_id: i64,
    pub contact_id: i64,
    pub channel: Channel,
    /// The contact's target, serialised redacted ([`redacted_target`]).
    #[serde(serialize_with = "serialize_redacted")]
    pub target: String,
    pub event_kind: String,
    pub status: String,
    pub attempts: i64,
    pub created_ms: Millis,
    pub delivered_ms: Option<Millis>,
    #[serde(serialize_with = "serialize_redacted_opt_text")]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryAttempt {
    pub notification_id: i64,
    pub ts_ms: Millis,
    pub ok: bool,
    pub duration_ms: i64,
    #[serde(serialize_with = "serialize_redacted_text")]
    pub detail: String,
}

/// A notification claimed by a delivery worker.
#[derive(Debug, Clone)]
pub struct NotificationJob {
    pub id: i64,
    pub campaign_id: i64,
    pub jurisdiction_id: i64,
    pub contact: Contact,
    pub event_kind: String,
    pub attempts: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    pub id: i64,
    pub jurisdiction_id: i64,
    pub sensor_id: i64,
    pub event_type: String,
    pub ts_ms: Millis,
    pub remote_ip: Option<String>,
    pub signature: Option<String>,
    /// True when the line was longer than `MAX_STORED_EVENT_BYTES` and `body` is its shortened
    /// form (see `body.ward_truncated` for the original size and what was dropped).
    pub truncated: bool,
    pub body: serde_json::Value,
}

/// Characters refused in names and notes people read (jurisdiction, user, sensor and campaign
/// names, contact targets, campaign notes): a right-to-left override (U+202E) makes
/// `Ohio\u{202E}lla` read as another name, zero-width and other invisible characters make two
/// names that look alike differ, and control characters break logs, CSV and terminals. The
/// one check, [`check_text`], is called by the store, so the API, the CLI and the dashboard's
/// forms all refuse the same characters with the same message.
///
/// Unicode general category Cf (format characters, Unicode 15.1): bidi embeddings, overrides,
/// isolates and marks, zero-width space/joiners, word joiner, invisible operators, the
/// byte-order mark, interlinear annotations, shorthand format controls, tags.
const FORMAT_CHARS: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];
/// Other characters that show as nothing: line and paragraph separators, the combining
/// grapheme joiner, Hangul fillers, Khmer inherent vowels, braille blank; private-use areas
/// (no meaning to a reader); noncharacters.
const INVISIBLE_CHARS: &[(u32, u32)] = &[
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x2028, 0x2029),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFFA0, 0xFFA0),
    (0xE000, 0xF8FF),
    (0xFDD0, 0xFDEF),
    (0xF0000, 0x10FFFF),
];

/// Whether `c` is refused by [`check_text`]. `multiline` allows tab and line breaks (notes).
pub fn is_refused_char(c: char, multiline: bool) -> bool {
    let u = c as u32;
    if c.is_control() {
        return !(multiline && matches!(c, '\n' | '\r' | '\t'));
    }
    if c.is_whitespace() && c != ' ' {
        return !multiline;
    }
    u & 0xFFFE == 0xFFFE
        || FORMAT_CHARS.iter().any(|&(lo, hi)| (lo..=hi).contains(&u))
        || INVISIBLE_CHARS.iter().any(|&(lo, hi)| (lo..=hi).contains(&u))
}

/// Refuses a name or note holding a bidi control, an invisible character or a control
/// character (see [`is_refused_char`]), naming the first one: `what` is the field
/// ("jurisdiction name"). Lengths are checked by each caller.
pub fn check_text(what: &str, value: &str, multiline: bool) -> Result<(), String> {
    match value.chars().find(|&c| is_refused_char(c, multiline)) {
        None => Ok(()),
        Some(c) => Err(format!(
            "{what} contains U+{:04X}, a control, bidi or invisible character: type it again without it",
            c as u32
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bidi_invisible_and_control_characters() {
        for bad in ["Ohio\u{202E}lla", "a\u{200B}b", "\u{FEFF}Ohio", "tab\there", "new\nline", "x\u{7}", "x\u{85}", "\u{E0041}", "\u{2066}x\u{2069}", "no\u{A0}break", "\u{3164}", "\u{FFFF}"] {
            assert!(check_text("name", bad, false).is_err(), "{bad:?} accepted");
        }
        for good in ["Franklin County", "Doña Ana County", "Île-de-France", "São Paulo", "Okeechobee 2", "O'Brien", "東京", "مدينة"] {
            assert!(check_text("name", good, false).is_ok(), "{good:?} refused");
        }
        assert!(check_text("note", "line one\r\nline two\tend", true).is_ok());
        assert!(check_text("note", "line\u{202E}", true).is_err());
        let msg = check_text("jurisdiction name", "Ohio\u{202E}", false).unwrap_err();
        assert!(msg.contains("U+202E") && msg.starts_with("jurisdiction name"), "{msg}");
    }

    #[test]
    fn webhook_tokens_are_redacted_for_display() {
        assert_eq!(redacted_target("https://soc.example:8443/hooks/ward?token=s3cret&x=1#frag"), "https://soc.example:8443/hooks/ward?token=…&x=…");
        assert_eq!(redacted_target("https://user:pw@soc.example/h"), "https://…@soc.example/h");
        assert_eq!(redacted_target("https://soc.example/h?s3cretT0kenAsTheWholeQuery"), "https://soc.example/h?…");
        assert_eq!(redacted_target("https://soc.example/h?a%20b=1"), "https://soc.example/h?…");
        assert_eq!(redacted_target("https://soc.example/h"), "https://soc.example/h");
        assert_eq!(
            redacted_target("https://hooks.slack.example/services/T0123ABC/B0456DEF/abcdEFGH1234ijklMNOP5678"),
            "https://hooks.slack.example/services/T0123ABC/B0456DEF/…"
        );
        assert_eq!(
            redacted_target("https://chat.example/api/webhooks/123456789012345678/Ab3dEf-gH1jKlMnOpQrStUvWxYz0123456789abcdefGHIJ"),
            "https://chat.example/api/webhooks/123456789012345678/…"
        );
        assert_eq!(redacted_target("https://soc.example/internal-admin/hooks"), "https://soc.example/internal-admin/hooks");
        assert_eq!(redacted_target("it@county.example.gov"), "it@county.example.gov");
        assert_eq!(redacted_target("siem.example:6514"), "siem.example:6514");
        assert_eq!(redacted_target("127.0.0.1:514"), "127.0.0.1:514");
        let old = "webhook request failed: error sending request for url (https://x.example/h?token=s3cret) and http://y.example/?k=v";
        assert_eq!(redacted_text(old), "webhook request failed: error sending request for url (https://x.example/h?token=…) and http://y.example/?k=…");
        assert_eq!(redacted_text("http 204"), "http 204");
        let c = Contact { id: 1, jurisdiction_id: 1, channel: Channel::Webhook, target: "https://x.example/h?k=v".into(), secret: Some("s".into()), created_ms: 0, priority: 1 };
        assert_eq!(serde_json::to_value(&c).unwrap()["target"], "https://x.example/h?k=…");
    }
}
