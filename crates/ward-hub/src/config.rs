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
//! [correlation]
//! min_jurisdictions = 2
//! window_secs = 604800
//! digest_interval_secs = 600
//! escalate_at = [5, 20]
//! [notify]
//! tlp = "TLP:AMBER"
//! phone = "+1 518 266 3460"
//! smtp_host = "127.0.0.1"
//! smtp_port = 25
//! smtp_tls = "none"       # none | starttls | tls
//! from = "ward-hub@localhost"
//! [retention]
//! default_days = 30
//! days = { alert = 365, flow = 7 }
//! idempotency_days = 30
//! [limits]
//! sensor_batches_per_sec = 50
//! user_requests_per_sec = 20
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
    pub notify: NotifyConfig,
    pub retention: RetentionConfig,
    pub limits: LimitsConfig,
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
            notify: NotifyConfig::default(),
            retention: RetentionConfig::default(),
            limits: LimitsConfig::default(),
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
        }
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
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig { sensor_batches_per_sec: 50.0, user_requests_per_sec: 20.0 }
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
[retention]
days = { alert = 10 }
"#;
        let c: HubConfig = toml::from_str(text).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.correlation.policy().min_jurisdictions, 3);
        assert_eq!(c.notify.smtp_tls, SmtpTls::Starttls);
        assert_eq!(c.retention.days["alert"], 10);
        assert!(toml::from_str::<HubConfig>("lisen = 1").is_err(), "unknown keys are refused");
    }
}
