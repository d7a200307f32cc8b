//! Findings over time: a local store that compares each scan with the earlier ones.
//!
//! Layout of the state directory (`--state DIR`, default `~/.local/share/ward/scan`):
//! `history.json` (this module's [`History`]) and `scans/<UTC time>.json` (each [`ScanResult`]
//! as run). `history.json` is written to a temporary file and renamed, so a crash never leaves
//! it half-written.
//!
//! Rules: a finding seen for the first time is *new*; seen again it is *still open* (age in
//! days since first seen); absent from a later scan that covered its asset it is *fixed* (days
//! to fix); seen again within [`REDETECT_WINDOW_DAYS`] of being fixed it is *re-detected* and
//! keeps its first-seen date. A finding marked false positive is hidden until its expiry.
//! Deadlines: critical 15 days, high 30 days from first seen, known-exploited by CISA's due
//! date. Rescan cadence per host follows CISA Cyber Hygiene: critical or KEV 12 h, high 24 h,
//! medium 4 days, low 6 days, clean 7 days.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::finding::{Finding, ScanResult, Severity};

/// A finding fixed and seen again within this many days is a re-detection (CISA's rule).
pub const REDETECT_WINDOW_DAYS: i64 = 90;
/// Days to fix a critical finding (CISA BOD 19-02).
pub const CRITICAL_DEADLINE_DAYS: i64 = 15;
/// Days to fix a high finding (CISA BOD 19-02).
pub const HIGH_DEADLINE_DAYS: i64 = 30;
/// Format version of history.json.
pub const HISTORY_FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    #[error("cannot use state directory {path}: {reason}; pass --state DIR with a writable directory")]
    Io { path: String, reason: String },
    #[error("{path} is not a ward scan history: {reason}; move it aside to start a new history")]
    Corrupt { path: String, reason: String },
    #[error("no finding with key {0:?} in the history: copy the key from findings.json")]
    UnknownKey(String),
    #[error("the false-positive mark would end on {until}, which is before today ({today}): give a date from today on (--until YYYY-MM-DD)")]
    PastExpiry { until: NaiveDate, today: NaiveDate },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackStatus {
    Open,
    Fixed,
}

/// One finding's life across scans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Track {
    pub finding: Finding,
    pub status: TrackStatus,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    #[serde(default)]
    pub fixed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub redetected_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub redetections: u32,
    /// Jurisdiction of the scan that last saw it.
    #[serde(default)]
    pub jurisdiction: Option<String>,
}

impl Track {
    pub fn age_days(&self, now: DateTime<Utc>) -> i64 {
        (now - self.first_seen).num_days()
    }

    /// Days from first seen to fixed.
    pub fn days_to_fix(&self) -> Option<i64> {
        self.fixed_at.map(|f| (f - self.first_seen).num_days())
    }

    /// When it must be fixed by, if its severity or KEV status sets a deadline.
    pub fn deadline(&self) -> Option<NaiveDate> {
        let by_severity = match self.finding.severity {
            Severity::Critical => Some(self.first_seen.date_naive() + Duration::days(CRITICAL_DEADLINE_DAYS)),
            Severity::High => Some(self.first_seen.date_naive() + Duration::days(HIGH_DEADLINE_DAYS)),
            _ => None,
        };
        // a known-exploited finding is due by CISA's date, whatever its severity
        self.finding.kev_due.filter(|_| self.finding.known_exploited).or(by_severity)
    }

    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        self.status == TrackStatus::Open && self.deadline().is_some_and(|d| now.date_naive() > d)
    }
}

/// A finding the office has judged a false positive, hidden until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FalsePositive {
    pub key: String,
    pub until: NaiveDate,
    pub reason: String,
    pub marked_at: DateTime<Utc>,
}

/// Counts of one scan, for the report card and the trend charts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanSummary {
    pub at: DateTime<Utc>,
    #[serde(default)]
    pub jurisdiction: Option<String>,
    pub hosts: usize,
    pub services: usize,
    pub vulnerable_hosts: usize,
    /// Open findings by severity: critical, high, medium, low, info.
    pub by_severity: [usize; 5],
    pub known_exploited: usize,
    /// File of the full result under scans/.
    pub file: String,
    /// The KEV catalog this scan used (`None`: not checked).
    #[serde(default)]
    pub kev_catalog: Option<crate::vulns::KevCatalogInfo>,
}

/// What one scan changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanDelta {
    pub new: Vec<String>,
    pub still_open: Vec<String>,
    pub fixed: Vec<String>,
    pub redetected: Vec<String>,
}

/// The whole history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub format: u32,
    pub scans: Vec<ScanSummary>,
    pub tracks: BTreeMap<String, Track>,
    #[serde(default)]
    pub false_positives: Vec<FalsePositive>,
}

impl Default for History {
    fn default() -> Self {
        History { format: HISTORY_FORMAT, scans: Vec::new(), tracks: BTreeMap::new(), false_positives: Vec::new() }
    }
}

fn severity_index(s: Severity) -> usize {
    match s {
        Severity::Critical => 0,
        Severity::High => 1,
        Severity::Medium => 2,
        Severity::Low => 3,
        Severity::Info => 4,
    }
}

impl History {
    /// Whether a key is marked false positive on `day`.
    pub fn is_false_positive(&self, key: &str, day: NaiveDate) -> bool {
        self.false_positives.iter().any(|fp| fp.key == key && day <= fp.until)
    }

    /// Fold one scan into the history. Only assets the scan covered can become fixed.
    pub fn apply(&mut self, result: &ScanResult, file: &str) -> ScanDelta {
        let now = result.finished;
        let mut delta = ScanDelta::default();
        let mut covered: Vec<String> = result.hosts.iter().map(|h| h.ip.to_string()).collect();
        covered.extend(result.domains.iter().cloned());
        // every address the scan resolved is covered even if nothing was open on it
        covered.extend(result.targets.iter().filter(|t| t.parse::<std::net::IpAddr>().is_ok()).cloned());
        let mut seen = std::collections::HashSet::new();
        for finding in &result.findings {
            let key = finding.key();
            if !seen.insert(key.clone()) {
                continue;
            }
            covered.push(finding.asset.clone());
            match self.tracks.get_mut(&key) {
                Some(track) if track.status == TrackStatus::Open => {
                    track.last_seen = now;
                    track.finding = finding.clone();
                    track.jurisdiction = result.jurisdiction.clone();
                    delta.still_open.push(key);
                }
                Some(track) if track.fixed_at.is_some_and(|f| (now - f).num_days() <= REDETECT_WINDOW_DAYS) => {
                    track.status = TrackStatus::Open;
                    track.last_seen = now;
                    track.finding = finding.clone();
                    track.fixed_at = None;
                    track.redetected_at = Some(now);
                    track.redetections += 1;
                    track.jurisdiction = result.jurisdiction.clone();
                    delta.redetected.push(key);
                }
                _ => {
                    self.tracks.insert(key.clone(), Track { finding: finding.clone(), status: TrackStatus::Open, first_seen: now, last_seen: now, fixed_at: None, redetected_at: None, redetections: 0, jurisdiction: result.jurisdiction.clone() });
                    delta.new.push(key);
                }
            }
        }
        for (key, track) in self.tracks.iter_mut() {
            if track.status == TrackStatus::Open && !seen.contains(key) && covered.contains(&track.finding.asset) {
                track.status = TrackStatus::Fixed;
                track.fixed_at = Some(now);
                delta.fixed.push(key.clone());
            }
        }
        let today = now.date_naive();
        let mut by_severity = [0usize; 5];
        let mut kev = 0;
        for f in result.findings.iter().filter(|f| !self.is_false_positive(&f.key(), today)) {
            by_severity[severity_index(f.severity)] += 1;
            kev += f.known_exploited as usize;
        }
        self.scans.push(ScanSummary {
            at: now,
            jurisdiction: result.jurisdiction.clone(),
            hosts: result.hosts.len(),
            services: result.hosts.iter().map(|h| h.services.len()).sum(),
            vulnerable_hosts: result.vulnerable_hosts(),
            by_severity,
            known_exploited: kev,
            file: file.to_string(),
            kev_catalog: result.kev_catalog.clone(),
        });
        delta
    }

    /// Mark a finding false positive until a date.
    pub fn mark_false_positive(&mut self, key: &str, until: NaiveDate, reason: &str, now: DateTime<Utc>) -> Result<(), HistoryError> {
        if !self.tracks.contains_key(key) {
            return Err(HistoryError::UnknownKey(key.to_string()));
        }
        let today = now.date_naive();
        if until < today {
            return Err(HistoryError::PastExpiry { until, today });
        }
        self.false_positives.retain(|fp| fp.key != key);
        self.false_positives.push(FalsePositive { key: key.to_string(), until, reason: reason.to_string(), marked_at: now });
        Ok(())
    }

    /// Next scan due per asset, from its worst open finding (CISA Cyber Hygiene cadence).
    pub fn rescan_schedule(&self) -> BTreeMap<String, DateTime<Utc>> {
        let mut last_scan: BTreeMap<String, (DateTime<Utc>, Duration)> = BTreeMap::new();
        for track in self.tracks.values() {
            let entry = last_scan.entry(track.finding.asset.clone()).or_insert((track.last_seen, Duration::days(7)));
            entry.0 = entry.0.max(track.last_seen).max(track.fixed_at.unwrap_or(track.last_seen));
            if track.status == TrackStatus::Open && !self.is_false_positive(&track.finding.key(), Utc::now().date_naive()) {
                entry.1 = entry.1.min(rescan_interval(track.finding.severity, track.finding.known_exploited));
            }
        }
        last_scan.into_iter().map(|(asset, (at, every))| (asset, at + every)).collect()
    }
}

/// How often a host with this worst finding is rescanned.
pub fn rescan_interval(worst: Severity, known_exploited: bool) -> Duration {
    if known_exploited || worst == Severity::Critical {
        return Duration::hours(12);
    }
    match worst {
        Severity::High => Duration::hours(24),
        Severity::Medium => Duration::days(4),
        Severity::Low => Duration::days(6),
        _ => Duration::days(7),
    }
}

/// The history store in a state directory.
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, HistoryError> {
        let io = |e: std::io::Error| HistoryError::Io { path: dir.display().to_string(), reason: e.to_string() };
        std::fs::create_dir_all(dir.join("scans")).map_err(io)?;
        Ok(Store { dir: dir.to_path_buf() })
    }

    /// The default state directory: $XDG_DATA_HOME/ward/scan or ~/.local/share/ward/scan.
    pub fn default_dir() -> PathBuf {
        if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(data).join("ward/scan");
        }
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
        home.join(".local/share/ward/scan")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn load(&self) -> Result<History, HistoryError> {
        let path = self.dir.join("history.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let history: History = serde_json::from_str(&text).map_err(|e| HistoryError::Corrupt { path: path.display().to_string(), reason: e.to_string() })?;
                if history.format != HISTORY_FORMAT {
                    return Err(HistoryError::Corrupt { path: path.display().to_string(), reason: format!("format {} is not {HISTORY_FORMAT}", history.format) });
                }
                Ok(history)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(History::default()),
            Err(e) => Err(HistoryError::Io { path: path.display().to_string(), reason: e.to_string() }),
        }
    }

    pub fn save(&self, history: &History) -> Result<(), HistoryError> {
        let path = self.dir.join("history.json");
        let text = serde_json::to_string_pretty(history).map_err(|e| HistoryError::Io { path: path.display().to_string(), reason: e.to_string() })?;
        write_atomic(&path, text.as_bytes())
    }

    /// Keep the full result and fold it into the history; returns what changed.
    pub fn record(&self, result: &ScanResult) -> Result<ScanDelta, HistoryError> {
        let mut history = self.load()?;
        let name = format!("{}.json", result.finished.format("%Y%m%dT%H%M%S%.3fZ"));
        let text = serde_json::to_string_pretty(result).map_err(|e| HistoryError::Io { path: name.clone(), reason: e.to_string() })?;
        write_atomic(&self.dir.join("scans").join(&name), text.as_bytes())?;
        let delta = history.apply(result, &format!("scans/{name}"));
        self.save(&history)?;
        Ok(delta)
    }

    /// Read a stored scan result by its history file name.
    pub fn read_scan(&self, file: &str) -> Result<ScanResult, HistoryError> {
        let path = self.dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| HistoryError::Io { path: path.display().to_string(), reason: e.to_string() })?;
        serde_json::from_str(&text).map_err(|e| HistoryError::Corrupt { path: path.display().to_string(), reason: e.to_string() })
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), HistoryError> {
    let io = |e: std::io::Error| HistoryError::Io { path: path.display().to_string(), reason: e.to_string() };
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Confidence, HostResult};

    fn finding(check: &str, asset: &str, severity: Severity) -> Finding {
        Finding {
            check: check.into(), asset: asset.into(), hostname: None, port: Some(22), protocol: "tcp".into(), severity,
            confidence: Confidence::Confirmed, name: check.into(), description: String::new(), evidence: String::new(),
            solution: String::new(), references: vec![], cve: None, cvss: None, known_exploited: false, kev_due: None,
        }
    }

    fn scan(at: DateTime<Utc>, findings: Vec<Finding>) -> ScanResult {
        ScanResult {
            format: 1, jurisdiction: Some("Test County".into()), started: at, finished: at, targets: vec!["192.0.2.1".into()], domains: vec![],
            ports_per_host: 1000,
            hosts: vec![HostResult { ip: "192.0.2.1".parse().unwrap(), hostname: None, open_ports: vec![22], services: vec![] }],
            findings,
            kev_catalog: None,
        }
    }

    #[test]
    fn new_still_open_fixed_and_redetected() {
        let t0 = "2026-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let mut h = History::default();
        let a = finding("exposed.telnet", "192.0.2.1", Severity::High);
        let b = finding("creds.default", "192.0.2.1", Severity::Critical);
        let d = h.apply(&scan(t0, vec![a.clone(), b.clone()]), "s0");
        assert_eq!((d.new.len(), d.still_open.len(), d.fixed.len()), (2, 0, 0));
        let d = h.apply(&scan(t0 + Duration::days(3), vec![a.clone()]), "s1");
        assert_eq!((d.new.len(), d.still_open.len(), d.fixed.len()), (0, 1, 1));
        assert_eq!(h.tracks[&b.key()].days_to_fix(), Some(3));
        assert_eq!(h.tracks[&a.key()].age_days(t0 + Duration::days(3)), 3);
        // back within 90 days: re-detected, keeps its first-seen date
        let d = h.apply(&scan(t0 + Duration::days(20), vec![a.clone(), b.clone()]), "s2");
        assert_eq!(d.redetected, vec![b.key()]);
        assert_eq!(h.tracks[&b.key()].first_seen, t0);
        // deadline: critical 15 days from first seen, overdue at day 20
        assert_eq!(h.tracks[&b.key()].deadline(), Some(t0.date_naive() + Duration::days(15)));
        assert!(h.tracks[&b.key()].overdue(t0 + Duration::days(20)));
        // fixed again, then back after more than 90 days: a new finding with a new first-seen
        h.apply(&scan(t0 + Duration::days(21), vec![a.clone()]), "s3");
        let d = h.apply(&scan(t0 + Duration::days(200), vec![a.clone(), b.clone()]), "s4");
        assert_eq!(d.new, vec![b.key()]);
        assert_eq!(h.tracks[&b.key()].first_seen, t0 + Duration::days(200));
        assert_eq!(h.scans.len(), 5);
    }

    #[test]
    fn other_assets_are_not_marked_fixed_and_false_positives_expire() {
        let t0 = "2026-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let mut h = History::default();
        let other = finding("exposed.rdp", "198.51.100.9", Severity::High);
        h.apply(&scan(t0, vec![other.clone()]), "s0");
        let d = h.apply(&scan(t0 + Duration::days(1), vec![]), "s1");
        assert!(d.fixed.is_empty(), "198.51.100.9 was not covered by the second scan");
        h.mark_false_positive(&other.key(), t0.date_naive() + Duration::days(10), "test host", t0).unwrap();
        assert!(h.is_false_positive(&other.key(), t0.date_naive() + Duration::days(10)));
        assert!(!h.is_false_positive(&other.key(), t0.date_naive() + Duration::days(11)));
        assert!(matches!(h.mark_false_positive("nope", t0.date_naive(), "", t0), Err(HistoryError::UnknownKey(_))));
        let err = h.mark_false_positive(&other.key(), t0.date_naive() - Duration::days(1), "expired already", t0).unwrap_err();
        assert!(matches!(err, HistoryError::PastExpiry { .. }) && err.to_string().contains("before today"), "{err}");
    }

    #[test]
    fn cadence_and_kev_deadline() {
        assert_eq!(rescan_interval(Severity::Low, true), Duration::hours(12));
        assert_eq!(rescan_interval(Severity::High, false), Duration::hours(24));
        assert_eq!(rescan_interval(Severity::Medium, false), Duration::days(4));
        assert_eq!(rescan_interval(Severity::Low, false), Duration::days(6));
        assert_eq!(rescan_interval(Severity::Info, false), Duration::days(7));
        let t0 = "2026-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let mut f = finding("vuln.cve", "192.0.2.1", Severity::Medium);
        f.known_exploited = true;
        f.kev_due = NaiveDate::from_ymd_opt(2026, 1, 5);
        let track = Track { finding: f, status: TrackStatus::Open, first_seen: t0, last_seen: t0, fixed_at: None, redetected_at: None, redetections: 0, jurisdiction: None };
        assert_eq!(track.deadline(), NaiveDate::from_ymd_opt(2026, 1, 5));
        assert!(track.overdue(t0 + Duration::days(5)));
    }

    #[test]
    fn store_round_trip_and_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t0 = "2026-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let delta = store.record(&scan(t0, vec![finding("exposed.telnet", "192.0.2.1", Severity::High)])).unwrap();
        assert_eq!(delta.new.len(), 1);
        let history = store.load().unwrap();
        assert_eq!(history.scans.len(), 1);
        assert_eq!(store.read_scan(&history.scans[0].file).unwrap().findings.len(), 1);
        std::fs::write(dir.path().join("history.json"), "{not json").unwrap();
        assert!(matches!(store.load(), Err(HistoryError::Corrupt { .. })));
    }
}
