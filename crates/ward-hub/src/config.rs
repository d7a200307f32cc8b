//! The hub's TOML configuration. Every field has a default, so an empty file (or none) gives a
//! hub on loopback with the embedded store in `./ward-hub-data`.
//!
//! ```toml
//! listen = "127.0.0.1:8443"
//! data_dir = "/var/lib/ward-hub"
//! # database = "postgres://ward@127.0.0.1/ward"   # instead of data_dir: see store::open
//! public_url = "https://hub.example.org"
//! asn_db = "/usr/share/GeoIP/GeoLite2-ASN.mmdb"   # optional
//! [tls]
//! cert = "/etc/ward/hub.crt"
//! key = "/etc/ward/hub.key"
//! # self_signed = true    # demo only: generate a certificate for localhost
//! # client_ca = "/etc/ward/partners-ca.pem"   # CA(s) that sign TAXII partners' client certificates
//! # client_auth = "optional"                  # or "required": TAXII answers 401 without one
//! [correlation]
//! min_jurisdictions = 2
//! window_secs = 604800
//! digest_interval_secs = 600
//! escalate_at = [5, 20]
//! [trust]                 # what one sensor may contribute (docs/hub.md "Trust")
//! max_remotes_per_batch = 256
//! max_new_keys_per_sensor = 1024
//! window_secs = 3600
//! hold_secs = 86400
//! publish_min_jurisdictions = 3
//! never_block = ["192.0.2.53", "198.51.100.0/24"]
//! [notify]
//! tlp = "TLP:AMBER"
//! phone = "+1 518 266 3460"
//! smtp_host = "127.0.0.1"
//! smtp_port = 25
//! smtp_tls = "none"       # none | starttls | tls
//! from = "ward-hub@localhost"
//! allow_targets = ["10.20.0.0/16"]   # on-premises SIEMs on internal addresses
//! escalate_after_mins = 15   # unacknowledged warnings escalate (docs/hub.md); 0 turns it off
//! ack_link_days = 30         # how long the one-click acknowledgement links last
//! disinfo_untouched_urgent_mins = 30   # an untriaged urgent disinformation case escalates
//! disinfo_untouched_mins = 240         # … any other case
//! [retention]
//! default_days = 30
//! days = { alert = 365, flow = 7 }
//! idempotency_days = 30
//! [limits]
//! sensor_batches_per_sec = 50
//! user_requests_per_sec = 20
//! trusted_proxies = ["127.0.0.1"]   # the load balancer in front of replicas (X-Forwarded-For)
//! body_timeout_secs = 20          # a request body must arrive within this …
//! body_min_bytes_per_sec = 8192   # … plus one second per this many bytes received
//! [taxii]                 # the TAXII 2.1 server (docs/sharing.md "TAXII 2.1 server")
//! hub_name = "ohio-hub"   # STIX identity and id namespace: keep it stable
//! tlp = "TLP:AMBER"       # marking of what the hub publishes (never TLP:RED)
//! publish_interval_secs = 30
//! max_post_bytes = 16777216
//! [feeds]                 # feeds the hub polls (docs/sharing.md "Feeds")
//! poll = true             # the background poller (on one replica at a time)
//! allow_targets = ["10.30.0.5"]      # on-premises TAXII or MISP servers on internal addresses
//! timeout_secs = 60       # one request, body included
//! max_response_mib = 64   # one response
//! [metrics]
//! # SHA-256 (hex) of a bearer token a Prometheus scraper sends to GET /metrics; analysts'
//! # sessions work too. Make one: `t=$(openssl rand -hex 32); printf %s "$t" | sha256sum`
//! token_sha256 = "…"
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::store::CorrelationPolicy;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The store, instead of the SQLite store in `data_dir`: `postgres://USER@HOST/DB`,
    /// `sqlite:DIR` or a directory (see [`crate::store::open`]).
    pub database: Option<String>,
    /// How users reach the dashboard; used in links inside notifications.
    pub public_url: String,
    /// A MaxMind-format ASN database; when set, ASNs become actor keys.
    pub asn_db: Option<PathBuf>,
    pub tls: TlsConfig,
    pub correlation: CorrelationConfig,
    pub trust: TrustConfig,
    pub notify: NotifyConfig,
    pub retention: RetentionConfig,
    pub limits: LimitsConfig,
    pub metrics: MetricsConfig,
    pub taxii: TaxiiConfig,
    pub feeds: FeedsConfig,
    /// Peer hubs (`[[federation.peer]]`, docs/sharing.md "Federation").
    pub federation: crate::share::federation::FederationConfig,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            data_dir: PathBuf::from("ward-hub-data"),
            database: None,
            public_url: String::new(),
            asn_db: None,
            tls: TlsConfig::default(),
            correlation: CorrelationConfig::default(),
            trust: TrustConfig::default(),
            notify: NotifyConfig::default(),
            retention: RetentionConfig::default(),
            limits: LimitsConfig::default(),
            metrics: MetricsConfig::default(),
            taxii: TaxiiConfig::default(),
            feeds: FeedsConfig::default(),
            federation: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Generate a self-signed certificate for `localhost` at start (demo only).
    pub self_signed: bool,
    /// PEM bundle of the CA(s) that sign client certificates (mutual TLS for TAXII partners,
    /// as CISA AIS does). When set, the hub asks every client for a certificate and verifies
    /// any it gets against these; clients without one still connect (sensors, browsers).
    pub client_ca: Option<PathBuf>,
    /// What TAXII does without a verified client certificate (docs/sharing.md "Mutual TLS").
    pub client_auth: ClientAuth,
}

/// `[tls] client_auth`: whether the TAXII endpoints insist on a client certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// A verified certificate bound to an API key authenticates as that key; HTTP Basic and
    /// bearer credentials work as well.
    #[default]
    Optional,
    /// Every TAXII request must come over a connection with a verified client certificate
    /// (401 otherwise); the rest of the hub (sensors, users, dashboard) is unaffected.
    Required,
}

impl TlsConfig {
    /// TAXII requests need a verified client certificate.
    pub fn client_cert_required(&self) -> bool {
        self.client_ca.is_some() && self.client_auth == ClientAuth::Required
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorrelationConfig {
    pub min_jurisdictions: i64,
    pub window_secs: i64,
    pub digest_interval_secs: i64,
    pub escalate_at: Vec<i64>,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        let p = CorrelationPolicy::default();
        CorrelationConfig {
            min_jurisdictions: p.min_jurisdictions,
            window_secs: p.window_ms / 1000,
            digest_interval_secs: p.digest_interval_ms / 1000,
            escalate_at: p.escalate_at,
        }
    }
}

impl CorrelationConfig {
    pub fn policy(&self) -> CorrelationPolicy {
        CorrelationPolicy {
            min_jurisdictions: self.min_jurisdictions.max(1),
            window_ms: self.window_secs.max(1).saturating_mul(1000),
            digest_interval_ms: self.digest_interval_secs.max(0).saturating_mul(1000),
            escalate_at: self.escalate_at.clone(),
            trust: crate::trust::TrustPolicy::default(),
        }
    }
}

/// `[trust]`: what one sensor may contribute to correlation and what is never blocked
/// ([`crate::trust`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrustConfig {
    /// A batch naming more distinct remote addresses is stored but not correlated, and its
    /// sensor is put on hold.
    pub max_remotes_per_batch: usize,
    /// New remote addresses one sensor may bring into correlation per `window_secs`.
    pub max_new_keys_per_sensor: i64,
    /// The budget window.
    pub window_secs: i64,
    /// How long a sensor that breached its budget is on hold (an analyst may release it sooner).
    pub hold_secs: i64,
    /// Jurisdictions in good standing a campaign needs before its keys go to every sensor
    /// (at least 2; an analyst's confirmation publishes any campaign).
    pub publish_min_jurisdictions: i64,
    /// Addresses or CIDR networks that are never sightings and never blocked, besides the
    /// built-in public resolvers and the hub's own addresses.
    pub never_block: Vec<String>,
}

impl Default for TrustConfig {
    fn default() -> Self {
        let p = crate::trust::TrustPolicy::default();
        TrustConfig {
            max_remotes_per_batch: p.max_remotes_per_batch,
            max_new_keys_per_sensor: p.max_new_keys_per_sensor,
            window_secs: p.budget_window_ms / 1000,
            hold_secs: p.hold_ms / 1000,
            publish_min_jurisdictions: p.publish_min_jurisdictions,
            never_block: Vec::new(),
        }
    }
}

impl TrustConfig {
    /// The policy, with the allow-list of built-in resolvers, `never_block` and the hub's own
    /// addresses (`hub`); `asn_of` finds the autonomous systems those addresses are in, so no
    /// `asn:` key can block them. A bad `never_block` entry is an error naming it.
    pub fn policy(&self, hub: &[std::net::IpAddr], asn_of: impl Fn(std::net::IpAddr) -> Option<u32>) -> Result<crate::trust::TrustPolicy, String> {
        use crate::trust::{parse_network, AllowList, BUILTIN_NEVER_BLOCK};
        let mut nets = Vec::new();
        for (addr, _) in BUILTIN_NEVER_BLOCK {
            nets.push(parse_network(addr)?);
        }
        for entry in &self.never_block {
            nets.push(parse_network(entry).map_err(|e| format!("[trust] never_block: {e}"))?);
        }
        nets.extend(hub.iter().map(|&ip| (ip, if ip.is_ipv4() { 32 } else { 128 })));
        let asns: Vec<u32> = nets.iter().filter_map(|&(ip, _)| asn_of(ip)).collect();
        Ok(crate::trust::TrustPolicy {
            max_remotes_per_batch: self.max_remotes_per_batch.max(1),
            max_new_keys_per_sensor: self.max_new_keys_per_sensor.max(1),
            budget_window_ms: self.window_secs.max(1).saturating_mul(1000),
            hold_ms: self.hold_secs.max(0).saturating_mul(1000),
            publish_min_jurisdictions: self.publish_min_jurisdictions.max(crate::trust::MIN_PUBLISH_JURISDICTIONS),
            allow: std::sync::Arc::new(AllowList::from_networks(nets, asns)),
        })
    }
}

impl HubConfig {
    /// The correlation policy with its `[trust]` part; `asn_of` looks up autonomous systems when
    /// the hub has an ASN database.
    pub fn correlation_policy(&self, asn_of: impl Fn(std::net::IpAddr) -> Option<u32>) -> Result<CorrelationPolicy, String> {
        let hub = crate::trust::hub_addresses(self.listen, &self.public_url);
        Ok(CorrelationPolicy { trust: self.trust.policy(&hub, asn_of)?, ..self.correlation.policy() })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP: only sensible to a relay on loopback.
    #[default]
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// TLP 2.0 label on every message.
    pub tlp: String,
    /// The number recipients should call.
    pub phone: String,
    pub hub_name: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_tls: SmtpTls,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<String>,
    pub from: String,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Per-attempt timeout for one delivery.
    pub timeout_secs: u64,
    /// Internal networks (CIDR) or addresses webhook and syslog contacts may reach, e.g. an
    /// on-premises SIEM on a private address. Everything internal not listed here (loopback,
    /// RFC 1918, link-local and the metadata service, …) is refused; see [`crate::notify::egress`].
    pub allow_targets: Vec<crate::notify::egress::AllowedNet>,
    /// How long a claimed notification stays leased to the replica that claimed it; after a
    /// replica dies mid-delivery, another one delivers it once this has passed. At least
    /// `timeout_secs` plus one (see [`NotifyConfig::claim_lease_ms`]).
    pub claim_lease_secs: u64,
    /// A targeted office's warning not acknowledged within this many minutes goes to its next
    /// contacts, then to its state ([`crate::ack`]); fractions allowed (0.05 is 3 s, for
    /// tests), 0 turns escalation off.
    pub escalate_after_mins: f64,
    /// How long the one-click acknowledgement links in messages last (1 to 365 days).
    pub ack_link_days: u32,
    /// A disinformation case about voting logistics, eligibility, impersonation or threats
    /// (urgent) that nobody has triaged within this many minutes goes to the next contacts of
    /// the offices it names and to their states ([`crate::disinfo::routing`]); 0 turns it off.
    pub disinfo_untouched_urgent_mins: f64,
    /// The same for every other case.
    pub disinfo_untouched_mins: f64,
}

impl NotifyConfig {
    /// The delivery lease in milliseconds: `claim_lease_secs`, but never shorter than one
    /// attempt's timeout plus a second (a lease that ends mid-attempt would let a second
    /// replica send the same message).
    pub fn claim_lease_ms(&self) -> crate::model::Millis {
        let secs = self.claim_lease_secs.max(self.timeout_secs.saturating_add(1)).min(i64::MAX as u64 / 1000);
        secs as crate::model::Millis * 1000
    }

    /// The escalation period in milliseconds; `None` when escalation is off (0), an error for
    /// a negative or non-finite value.
    pub fn escalate_after_ms(&self) -> Result<Option<crate::model::Millis>, String> {
        let mins = self.escalate_after_mins;
        if !mins.is_finite() || mins < 0.0 {
            return Err(format!("escalate_after_mins must be 0 (off) or a positive number of minutes, not {mins}"));
        }
        if mins == 0.0 {
            return Ok(None);
        }
        // At least 100 ms; at most a year.
        Ok(Some((mins * 60_000.0).clamp(100.0, 365.0 * 24.0 * 3_600_000.0) as crate::model::Millis))
    }
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            tlp: "TLP:AMBER".into(),
            phone: "your information-sharing center's 24x7 number".into(),
            hub_name: "ward hub".into(),
            smtp_host: "127.0.0.1".into(),
            smtp_port: 25,
            smtp_tls: SmtpTls::None,
            smtp_username: None,
            smtp_password: None,
            from: "ward-hub@localhost".into(),
            concurrency: 64,
            timeout_secs: 10,
            allow_targets: Vec::new(),
            claim_lease_secs: (crate::notify::CLAIM_LEASE_MS / 1000) as u64,
            escalate_after_mins: 15.0,
            ack_link_days: 30,
            disinfo_untouched_urgent_mins: 30.0,
            disinfo_untouched_mins: 240.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days an event type not listed in `days` is kept.
    pub default_days: i64,
    /// Days per event type (`alert = 365`, `flow = 7`, …).
    pub days: BTreeMap<String, i64>,
    /// How often the pruner runs.
    pub interval_secs: u64,
    /// Days a batch's idempotency key is remembered: a sensor retrying a batch older than this
    /// would have it stored twice. Sensors retry within minutes; the default is generous.
    pub idempotency_days: i64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        let mut days = BTreeMap::new();
        days.insert("alert".to_string(), 365);
        days.insert("anomaly".to_string(), 90);
        days.insert("flow".to_string(), 7);
        RetentionConfig { default_days: 30, days, interval_secs: 3600, idempotency_days: 30 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Sustained batches per second per sensor (bursts of twice this are allowed).
    pub sensor_batches_per_sec: f64,
    /// Sustained API/dashboard requests per second per user.
    pub user_requests_per_sec: f64,
    /// Seconds a request body may take before any byte is counted (see [`crate::body`]).
    pub body_timeout_secs: u64,
    /// Each this many bytes of a body received add one second to its deadline; a client slower
    /// than this on average is cut with 408 (see [`crate::body`]).
    pub body_min_bytes_per_sec: u64,
    /// Load balancers (addresses or CIDR networks) whose `X-Forwarded-For` is believed: a
    /// request whose TCP peer is one of them is attributed to the nearest address in that
    /// header that is not a trusted proxy (the login throttle keys on it). Empty (the default):
    /// the header is ignored, so a client cannot choose its own source address.
    pub trusted_proxies: Vec<TrustedProxy>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            sensor_batches_per_sec: 50.0,
            user_requests_per_sec: 20.0,
            body_timeout_secs: 20,
            body_min_bytes_per_sec: 8192,
            trusted_proxies: Vec::new(),
        }
    }
}

/// One entry of `[limits] trusted_proxies`: a CIDR network, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy(pub ipnet::IpNet);

impl std::str::FromStr for TrustedProxy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(net) = s.parse::<ipnet::IpNet>() {
            return Ok(TrustedProxy(net.trunc()));
        }
        s.parse::<std::net::IpAddr>()
            .map(|ip| TrustedProxy(ipnet::IpNet::from(ip)))
            .map_err(|_| format!("bad trusted_proxies entry {s:?}: give the load balancer's address or a CIDR network"))
    }
}

impl<'de> Deserialize<'de> for TrustedProxy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The TAXII 2.1 server and what the hub publishes into it (docs/sharing.md "TAXII 2.1 server").
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaxiiConfig {
    /// The hub's name: its STIX identity and the namespace of its object ids. Keep it stable
    /// (and the same as `ward hub export --hub-name`), or every object gets a new id.
    pub hub_name: String,
    /// The marking of everything the hub publishes (TLP:RED is refused: it never leaves the hub).
    pub tlp: ward_model::tlp::Tlp,
    /// Seconds between publisher runs when nothing wakes it sooner (a new indicator does).
    pub publish_interval_secs: u64,
    /// Largest TAXII POST body in bytes (413 beyond).
    pub max_post_bytes: usize,
}

impl Default for TaxiiConfig {
    fn default() -> Self {
        TaxiiConfig { hub_name: "ward hub".into(), tlp: ward_model::tlp::Tlp::Amber, publish_interval_secs: 30, max_post_bytes: 16 * 1024 * 1024 }
    }
}

/// Who may read `GET /metrics`: an analyst's session, or a scraper with this token.
/// `[feeds]`: how the hub fetches the feeds analysts configure ([`crate::share::feeds`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedsConfig {
    /// Run the background poller (it runs on one replica at a time).
    pub poll: bool,
    /// Internal addresses feeds may be fetched from (the egress rules refuse them otherwise).
    pub allow_targets: Vec<crate::notify::egress::AllowedNet>,
    /// The total time of one request.
    pub timeout_secs: u64,
    /// The largest response read.
    pub max_response_mib: u64,
}

impl Default for FeedsConfig {
    fn default() -> Self {
        FeedsConfig { poll: true, allow_targets: Vec::new(), timeout_secs: 60, max_response_mib: 64 }
    }
}

impl FeedsConfig {
    /// The HTTP client these settings describe.
    pub fn client(&self) -> Result<crate::share::feeds::fetch::FeedHttp, String> {
        let egress = std::sync::Arc::new(crate::notify::egress::EgressPolicy::new(&self.allow_targets));
        let max = (self.max_response_mib.clamp(1, 4096) as usize) * 1024 * 1024;
        crate::share::feeds::fetch::FeedHttp::new(egress, std::time::Duration::from_secs(self.timeout_secs.clamp(1, 3600)), max)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// SHA-256 (64 hex digits) of the scraper's bearer token; the token itself is not stored.
    pub token_sha256: Option<String>,
}

impl MetricsConfig {
    /// The configured hash, lower-cased, after checking its form.
    pub fn token_hash(&self) -> Result<Option<String>, String> {
        match self.token_sha256.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(h) if h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()) => Ok(Some(h.to_ascii_lowercase())),
            Some(_) => Err("metrics.token_sha256 must be 64 hex digits: the SHA-256 of the scraper's token".into()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid config {path}: {message}")]
    Parse { path: String, message: String },
}

impl HubConfig {
    /// The store this configuration names: `database` when set, else the SQLite store in
    /// `data_dir`.
    pub fn store_database(&self) -> Result<crate::store::open::Database, crate::error::StoreError> {
        match &self.database {
            Some(d) => crate::store::open::Database::parse(d),
            None => Ok(crate::store::open::Database::sqlite_dir(&self.data_dir)),
        }
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.display().to_string(), message: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documented_example() {
        let text = r#"
listen = "127.0.0.1:9000"
data_dir = "/tmp/x"
[correlation]
min_jurisdictions = 3
[notify]
smtp_tls = "starttls"
allow_targets = ["10.20.0.0/16", "192.0.2.7"]
[retention]
days = { alert = 10 }
[trust]
max_remotes_per_batch = 64
publish_min_jurisdictions = 1
never_block = ["203.0.113.7", "2001:db8:5::/48"]
"#;
        let c: HubConfig = toml::from_str(text).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.correlation.policy().min_jurisdictions, 3);
        assert_eq!(c.notify.smtp_tls, SmtpTls::Starttls);
        assert_eq!(c.notify.allow_targets.iter().map(|a| a.to_string()).collect::<Vec<_>>(), ["10.20.0.0/16", "192.0.2.7/32"]);
        let bad = toml::from_str::<HubConfig>("[notify]\nallow_targets = [\"intranet\"]").unwrap_err().to_string();
        assert!(bad.contains("allow_targets"), "{bad}");
        assert_eq!(c.retention.days["alert"], 10);
        assert!(toml::from_str::<HubConfig>("lisen = 1").is_err(), "unknown keys are refused");
        let p = c.correlation_policy(|_| None).unwrap();
        assert_eq!((p.trust.max_remotes_per_batch, p.trust.publish_min_jurisdictions), (64, 2), "the bar never goes below 2");
        assert!(p.trust.allow.contains("203.0.113.7".parse().unwrap()) && p.trust.allow.contains("2001:db8:5::1".parse().unwrap()));
        assert!(p.trust.allow.contains("8.8.4.4".parse().unwrap()), "built-in resolvers stay");
        let bad: HubConfig = toml::from_str("[trust]\nnever_block = [\"8.8.8.8/40\"]").unwrap();
        assert!(bad.correlation_policy(|_| None).unwrap_err().contains("never_block"));
    }
}
