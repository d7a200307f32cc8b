//! The findings model: what a scan found, as serde JSON that the hub will accept unchanged.
//!
//! A [`Finding`] is one weakness on one asset (an IP address and port, or a mail domain). Its
//! [`Finding::key`] is stable across scans (check id, asset, port, protocol, CVE) so the history
//! store can tell new from still-open from fixed. A [`ScanResult`] is one run: the hosts and services
//! seen plus every finding. Nothing here does I/O.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// How urgent a finding is, ordered from least to most urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Every severity, most urgent first (the order of the report).
    pub const ALL_DESC: [Severity; 5] =
        [Severity::Critical, Severity::High, Severity::Medium, Severity::Low, Severity::Info];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Severity of a CVSS v3 base score (FIRST's qualitative scale).
    pub fn from_cvss(score: f32) -> Severity {
        if score >= 9.0 {
            Severity::Critical
        } else if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else if score > 0.0 {
            Severity::Low
        } else {
            Severity::Info
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How sure the scanner is. A CVE matched on a version string alone is never `Confirmed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// Version string matches but a distribution back-port may have fixed it.
    Tentative,
    /// Version string matches an affected range and shows no sign of a back-port.
    Firm,
    /// The weakness was demonstrated (a login worked, a protocol was accepted, a cert was read).
    Confirmed,
}

/// One weakness on one asset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Check identifier, e.g. `tls.expired`, `exposed.rdp`, `vuln.cve`.
    pub check: String,
    /// IP address of the host, or the mail domain for email checks.
    pub asset: String,
    /// The hostname the service was reached by, when the target was a name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `tcp`, `udp` or `dns`.
    pub protocol: String,
    pub severity: Severity,
    pub confidence: Confidence,
    /// Short title.
    pub name: String,
    /// What is wrong, in plain words.
    pub description: String,
    /// What the scanner saw (banner, header, certificate field, server answer).
    pub evidence: String,
    /// How to fix it, in plain words.
    pub solution: String,
    #[serde(default)]
    pub references: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cve: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss: Option<f32>,
    /// On CISA's Known Exploited Vulnerabilities catalog.
    #[serde(default)]
    pub known_exploited: bool,
    /// CISA's remediation due date for a known-exploited CVE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kev_due: Option<NaiveDate>,
}

impl Finding {
    /// Stable identity across scans: the same weakness on the same asset has the same key.
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}",
            self.check,
            self.asset,
            self.port.map(|p| p.to_string()).unwrap_or_default(),
            self.protocol,
            self.cve.as_deref().unwrap_or("")
        )
    }
}

/// A service identified on an open port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub ip: IpAddr,
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Service name in nmap's vocabulary where one exists (`http`, `ssh`, `ftp`, `ms-wbt-server`...).
    pub name: String,
    /// Whether the service was reached through TLS (`https` is `http` with `tls`).
    #[serde(default)]
    pub tls: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The raw banner or identifying line, cut to a short printable string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner: Option<String>,
}

/// One scanned address and what was found open on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostResult {
    pub ip: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub open_ports: Vec<u16>,
    pub services: Vec<Service>,
}

/// One run of `ward scan`: the unit uploaded to the hub and kept in the history store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanResult {
    /// Format version of this JSON document.
    pub format: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    /// The targets as the user gave them.
    pub targets: Vec<String>,
    /// Mail domains checked.
    #[serde(default)]
    pub domains: Vec<String>,
    pub ports_per_host: usize,
    pub hosts: Vec<HostResult>,
    pub findings: Vec<Finding>,
    /// The KEV catalog the findings were joined with; `None`: known-exploited status was not
    /// checked (a result from before ward shipped a catalog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kev_catalog: Option<crate::vulns::KevCatalogInfo>,
}

/// Version of the [`ScanResult`] JSON document.
pub const SCAN_RESULT_FORMAT: u32 = 1;

impl ScanResult {
    /// Hosts with at least one finding of medium severity or worse.
    pub fn vulnerable_hosts(&self) -> usize {
        let mut assets: Vec<&str> = self
            .findings
            .iter()
            .filter(|f| f.severity >= Severity::Medium)
            .map(|f| f.asset.as_str())
            // hosts only: a mail domain or an MX outside the targets is not a scanned host
            .filter(|asset| self.hosts.iter().any(|h| h.ip.to_string() == *asset))
            .collect();
        assets.sort_unstable();
        assets.dedup();
        assets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_and_maps_cvss() {
        assert!(Severity::Critical > Severity::High);
        assert_eq!(Severity::from_cvss(9.8), Severity::Critical);
        assert_eq!(Severity::from_cvss(7.5), Severity::High);
        assert_eq!(Severity::from_cvss(5.0), Severity::Medium);
        assert_eq!(Severity::from_cvss(0.0), Severity::Info);
        assert_eq!(serde_json::to_string(&Severity::High).unwrap(), "\"high\"");
    }
}
