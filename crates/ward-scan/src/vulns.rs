//! Known vulnerabilities: ward's vulnerability list (product, affected version ranges, CVE,
//! CVSS, fix) joined with CISA's Known Exploited Vulnerabilities catalog.
//!
//! The list format is ward's own, documented in docs/scan.md; a curated list ships in the crate
//! (`data/vulnerabilities.json`) and `--vulns FILE` replaces it. The KEV catalog is CISA's JSON
//! feed as published: a copy is built in (`data/kev.json`, the seed), `ward scan update-kev`
//! keeps a newer local copy ([`LOCAL_KEV_FILE`] in the state directory), `--kev FILE` names one;
//! [`KevCatalogInfo`] says which one a scan used, and the report prints it.
//!
//! Invariant: a match from a version string is never `Confidence::Confirmed`; a banner showing a
//! distribution build (Debian, Ubuntu, Red Hat...) makes it `Tentative`, because distributions
//! back-port fixes without changing the upstream version.

use std::cmp::Ordering;
use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::finding::{Confidence, Finding, Service, Severity};

/// The curated list shipped with ward.
pub const BUILTIN_VULNERABILITIES: &str = include_str!("../data/vulnerabilities.json");
/// CISA's KEV catalog as shipped with this build (CC0; data/README.md says which version).
pub const BUILTIN_KEV: &str = include_str!("../data/kev.json");
/// The local copy `ward scan update-kev` writes, in the scanner's state directory.
pub const LOCAL_KEV_FILE: &str = "kev.json";
/// The local list `ward scan vulndb import` writes, in the scanner's state directory; a scan
/// uses it instead of the built-in list when it exists.
pub const LOCAL_LIST_FILE: &str = "vulnerabilities.json";
/// A KEV catalog larger than this is refused (CISA's is about 1.3 MB).
pub const MAX_KEV_BYTES: usize = 64 << 20;

/// Markers of a distribution build in a banner or Server header.
const BACKPORT_MARKERS: [&str; 9] = ["debian", "ubuntu", "deb", "el7", "el8", "el9", "red hat", "centos", "raspbian"];

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VulnDbError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} is not a ward vulnerability list: {reason}; see docs/scan.md for the format")]
    BadList { path: String, reason: String },
    #[error("{path} is not a CISA KEV catalog: {reason}")]
    BadKev { path: String, reason: String },
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct AffectedRange {
    pub introduced: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_affected: Option<String>,
    /// `introduced` itself is not affected (NVD's `versionStartExcluding`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub introduced_excluded: bool,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct VulnEntry {
    pub product: String,
    pub affected: Vec<AffectedRange>,
    pub cve: String,
    pub cvss: f32,
    pub name: String,
    pub description: String,
    pub fix: String,
}

#[derive(Debug, Deserialize)]
struct VulnList {
    format: u32,
    entries: Vec<VulnEntry>,
}

/// One KEV catalog entry's facts that the report uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KevEntry {
    pub due_date: Option<NaiveDate>,
    pub ransomware: bool,
    pub required_action: String,
    /// CISA's `vendorProject` and `product` (the edge-device fingerprints list a product's
    /// entries by them) and `dateAdded`.
    pub vendor: String,
    pub product: String,
    pub date_added: Option<NaiveDate>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KevCatalog {
    catalog_version: String,
    date_released: String,
    #[serde(default)]
    count: Option<usize>,
    vulnerabilities: Vec<KevRecord>,
}

/// Which KEV catalog a scan used.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct KevCatalogInfo {
    /// CISA's `catalogVersion`, e.g. `2025.08.25`.
    pub version: String,
    /// CISA's `dateReleased`.
    pub released: String,
    pub entries: usize,
    /// `built-in`, or the file it came from.
    pub source: String,
}

impl KevCatalogInfo {
    /// How the report names it: "CISA KEV catalog 2025.08.25 (1404 entries, built-in)".
    pub fn label(&self) -> String {
        format!("CISA KEV catalog {} ({} entries, {})", self.version, self.entries, self.source)
    }

    /// Whether `self` is a newer release than `other`.
    pub fn newer_than(&self, other: &KevCatalogInfo) -> bool {
        (self.released.as_str(), self.version.as_str()) > (other.released.as_str(), other.version.as_str())
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KevRecord {
    #[serde(rename = "cveID")]
    cve_id: String,
    #[serde(default)]
    due_date: Option<String>,
    #[serde(default)]
    known_ransomware_campaign_use: Option<String>,
    #[serde(default)]
    required_action: Option<String>,
    #[serde(default)]
    vendor_project: Option<String>,
    #[serde(default)]
    product: Option<String>,
    #[serde(default)]
    date_added: Option<String>,
}

/// The vulnerability list plus the KEV catalog.
#[derive(Debug, Default)]
pub struct VulnDb {
    entries: Vec<VulnEntry>,
    kev: HashMap<String, KevEntry>,
    kev_info: Option<KevCatalogInfo>,
}

/// Reads a KEV catalog file, bounded by [`MAX_KEV_BYTES`].
pub fn read_kev_text(path: &std::path::Path) -> Result<String, VulnDbError> {
    let err = |reason: String| VulnDbError::Read { path: path.display().to_string(), reason };
    let len = std::fs::metadata(path).map_err(|e| err(e.to_string()))?.len();
    if len > MAX_KEV_BYTES as u64 {
        return Err(err(format!("{len} bytes is more than a KEV catalog can be ({MAX_KEV_BYTES} at most)")));
    }
    std::fs::read_to_string(path).map_err(|e| err(e.to_string()))
}

/// Parses and checks a KEV catalog: CISA's top-level fields present, `count` (when given)
/// equal to the entries, every `cveID` shaped like a CVE id.
fn parse_kev(text: &str, path: &str) -> Result<KevCatalog, VulnDbError> {
    let bad = |reason: String| VulnDbError::BadKev { path: path.into(), reason };
    if text.len() > MAX_KEV_BYTES {
        return Err(bad(format!("{} bytes is more than a KEV catalog can be", text.len())));
    }
    let catalog: KevCatalog = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    if let Some(n) = catalog.count {
        if n != catalog.vulnerabilities.len() {
            return Err(bad(format!("it says it holds {n} entries but holds {} (truncated?)", catalog.vulnerabilities.len())));
        }
    }
    if catalog.catalog_version.trim().is_empty() {
        return Err(bad("catalogVersion is empty".into()));
    }
    if let Some(r) = catalog.vulnerabilities.iter().find(|r| !is_cve_id(&r.cve_id)) {
        return Err(bad(format!("{:?} is not a CVE id", r.cve_id)));
    }
    Ok(catalog)
}

fn is_cve_id(s: &str) -> bool {
    let mut parts = s.splitn(3, '-');
    matches!((parts.next(), parts.next(), parts.next()), (Some("CVE"), Some(y), Some(n))
        if y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()) && (4..=19).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Which catalog a KEV file holds, after the same checks as loading it.
pub fn kev_info_of(text: &str, source: &str) -> Result<KevCatalogInfo, VulnDbError> {
    let c = parse_kev(text, source)?;
    Ok(KevCatalogInfo { version: c.catalog_version, released: c.date_released, entries: c.vulnerabilities.len(), source: source.to_string() })
}

impl VulnDb {
    pub fn from_list_json(text: &str, path: &str) -> Result<VulnDb, VulnDbError> {
        let list: VulnList = serde_json::from_str(text).map_err(|e| VulnDbError::BadList { path: path.into(), reason: e.to_string() })?;
        if list.format != 1 {
            return Err(VulnDbError::BadList { path: path.into(), reason: format!("format {} is not 1", list.format) });
        }
        Ok(VulnDb { entries: list.entries, kev: HashMap::new(), kev_info: None })
    }

    /// The list's entries.
    pub fn entries(&self) -> &[VulnEntry] {
        &self.entries
    }

    /// The list as ward's list format (what `--vulns` and `ward scan vulndb import` read and write).
    pub fn list_json(entries: &[VulnEntry], description: &str) -> String {
        serde_json::to_string_pretty(&serde_json::json!({ "format": 1, "description": description, "entries": entries })).unwrap_or_default()
    }

    /// The built-in vulnerability list, without a KEV catalog.
    pub fn builtin_list() -> VulnDb {
        // the shipped file is checked by a test, so this cannot fail in a released build
        VulnDb::from_list_json(BUILTIN_VULNERABILITIES, "builtin").unwrap_or_default()
    }

    /// The built-in list joined with the built-in KEV catalog.
    pub fn builtin() -> VulnDb {
        let list = VulnDb::builtin_list();
        // checked by a test like the list
        list.with_kev_json(BUILTIN_KEV, "built-in").unwrap_or_else(|_| VulnDb::builtin_list())
    }

    /// The built-in list with the newest KEV catalog at hand: `kev_file` when given, else the
    /// local copy in `state_dir` when it is newer than the built-in one, else the built-in one.
    /// A broken local copy is reported and skipped (the built-in catalog is used).
    pub fn with_best_kev(self, kev_file: Option<&std::path::Path>, state_dir: Option<&std::path::Path>) -> Result<VulnDb, VulnDbError> {
        if let Some(path) = kev_file {
            return self.load_kev(path);
        }
        let builtin = kev_info_of(BUILTIN_KEV, "built-in")?;
        if let Some(dir) = state_dir {
            let local = dir.join(LOCAL_KEV_FILE);
            if local.exists() {
                match read_kev_text(&local).and_then(|t| kev_info_of(&t, &local.display().to_string()).map(|i| (t, i))) {
                    Ok((text, info)) if info.newer_than(&builtin) => return self.with_kev_json(&text, &local.display().to_string()),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "the local KEV copy is unusable; using the built-in catalog (run `ward scan update-kev`)"),
                }
            }
        }
        self.with_kev_json(BUILTIN_KEV, "built-in")
    }

    /// Which KEV catalog is joined in, if any.
    pub fn kev_info(&self) -> Option<&KevCatalogInfo> {
        self.kev_info.as_ref()
    }

    pub fn load_list(path: &std::path::Path) -> Result<VulnDb, VulnDbError> {
        let text = std::fs::read_to_string(path).map_err(|e| VulnDbError::Read { path: path.display().to_string(), reason: e.to_string() })?;
        VulnDb::from_list_json(&text, &path.display().to_string())
    }

    /// Join the KEV catalog (CISA's JSON) into the list.
    pub fn with_kev_json(mut self, text: &str, path: &str) -> Result<VulnDb, VulnDbError> {
        let catalog = parse_kev(text, path)?;
        self.kev.clear();
        self.kev_info = Some(KevCatalogInfo { version: catalog.catalog_version.clone(), released: catalog.date_released.clone(), entries: catalog.vulnerabilities.len(), source: path.to_string() });
        for record in catalog.vulnerabilities {
            let entry = KevEntry {
                due_date: record.due_date.as_deref().and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()),
                ransomware: record.known_ransomware_campaign_use.as_deref() == Some("Known"),
                required_action: record.required_action.unwrap_or_default(),
                vendor: record.vendor_project.unwrap_or_default(),
                product: record.product.unwrap_or_default(),
                date_added: record.date_added.as_deref().and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()),
            };
            self.kev.insert(record.cve_id, entry);
        }
        Ok(self)
    }

    pub fn load_kev(self, path: &std::path::Path) -> Result<VulnDb, VulnDbError> {
        let text = read_kev_text(path)?;
        self.with_kev_json(&text, &path.display().to_string())
    }

    pub fn kev(&self, cve: &str) -> Option<&KevEntry> {
        self.kev.get(cve)
    }

    /// The KEV entries of a vendor's product: `vendors` is matched exactly, and the product
    /// must contain one of `product_words` (CISA names one product many ways).
    pub fn kev_for(&self, vendors: &[&str], product_words: &[&str]) -> Vec<(String, KevEntry)> {
        self.kev
            .iter()
            .filter(|(_, e)| vendors.iter().any(|v| e.vendor.eq_ignore_ascii_case(v)) && product_words.iter().any(|w| e.product.to_ascii_lowercase().contains(&w.to_ascii_lowercase())))
            .map(|(c, e)| (c.clone(), e.clone()))
            .collect()
    }

    pub fn kev_len(&self) -> usize {
        self.kev.len()
    }

    /// Findings for the known vulnerabilities of one identified service.
    pub fn findings_for(&self, service: &Service, hostname: Option<&str>) -> Vec<Finding> {
        let (Some(product), Some(version)) = (service.product.as_deref(), service.version.as_deref()) else { return Vec::new() };
        let banner = service.banner.as_deref().unwrap_or("").to_ascii_lowercase();
        let backport = BACKPORT_MARKERS.iter().any(|m| banner.contains(m));
        let mut out = Vec::new();
        for entry in &self.entries {
            if !entry.product.eq_ignore_ascii_case(product) || !entry.affected.iter().any(|r| r.contains(version)) {
                continue;
            }
            let kev = self.kev.get(&entry.cve);
            let confidence = if backport { Confidence::Tentative } else { Confidence::Firm };
            let mut description = entry.description.clone();
            if backport {
                description.push_str(" The banner shows a distribution build, which may carry the fix without changing the version: check the package's changelog before acting.");
            }
            let mut references = vec![format!("https://nvd.nist.gov/vuln/detail/{}", entry.cve)];
            if kev.is_some() {
                references.push("https://www.cisa.gov/known-exploited-vulnerabilities-catalog".into());
            }
            out.push(Finding {
                check: "vuln.cve".into(),
                asset: service.ip.to_string(),
                hostname: hostname.map(str::to_string),
                port: Some(service.port),
                protocol: service.protocol.clone(),
                severity: Severity::from_cvss(entry.cvss),
                confidence,
                name: entry.name.clone(),
                description,
                evidence: format!("{product} {version} (banner: {})", service.banner.as_deref().unwrap_or("none")),
                solution: match kev {
                    Some(k) if !k.required_action.is_empty() => format!("{} CISA: {}", entry.fix, k.required_action),
                    _ => entry.fix.clone(),
                },
                references,
                cve: Some(entry.cve.clone()),
                cvss: Some(entry.cvss),
                known_exploited: kev.is_some(),
                kev_due: kev.and_then(|k| k.due_date),
            });
        }
        out
    }
}

impl AffectedRange {
    pub fn contains(&self, version: &str) -> bool {
        match compare_versions(version, &self.introduced) {
            Ordering::Less => return false,
            Ordering::Equal if self.introduced_excluded => return false,
            _ => {}
        }
        match (&self.fixed, &self.last_affected) {
            (Some(fixed), _) => compare_versions(version, fixed) == Ordering::Less,
            (None, Some(last)) => compare_versions(version, last) != Ordering::Greater,
            (None, None) => true,
        }
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Num(u64),
    Text(String),
}

fn split_version(v: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut digits = false;
    let flush = |current: &mut String, digits: bool, parts: &mut Vec<Part>| {
        if current.is_empty() {
            return;
        }
        parts.push(if digits { Part::Num(current.parse().unwrap_or(u64::MAX)) } else { Part::Text(current.to_ascii_lowercase()) });
        current.clear();
    };
    for c in v.chars() {
        if c.is_ascii_digit() {
            if !digits {
                flush(&mut current, digits, &mut parts);
                digits = true;
            }
            current.push(c);
        } else if c.is_ascii_alphabetic() {
            if digits {
                flush(&mut current, digits, &mut parts);
                digits = false;
            }
            current.push(c);
        } else {
            flush(&mut current, digits, &mut parts);
        }
    }
    flush(&mut current, digits, &mut parts);
    parts
}

/// Compare dotted versions with letter parts (`9.2p1` < `9.3p2`, `2.4.49` < `2.4.50`,
/// `9.8` < `9.8p1`).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (a, b) = (split_version(a), split_version(b));
    for (x, y) in a.iter().zip(b.iter()) {
        let order = match (x, y) {
            (Part::Num(x), Part::Num(y)) => x.cmp(y),
            (Part::Text(x), Part::Text(y)) => x.cmp(y),
            // a number outranks a letter suffix at the same place (1.2.1 > 1.2p1)
            (Part::Num(_), Part::Text(_)) => Ordering::Greater,
            (Part::Text(_), Part::Num(_)) => Ordering::Less,
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/kev/known_exploited_vulnerabilities.json");

    fn service(product: &str, version: &str, banner: &str) -> Service {
        Service {
            ip: "192.0.2.1".parse().unwrap(),
            port: 22,
            protocol: "tcp".into(),
            name: "x".into(),
            tls: false,
            product: Some(product.into()),
            version: Some(version.into()),
            banner: Some(banner.into()),
        }
    }

    #[test]
    fn versions_compare_like_humans_expect() {
        assert_eq!(compare_versions("9.2p1", "9.8p1"), Ordering::Less);
        assert_eq!(compare_versions("9.3p2", "9.3p1"), Ordering::Greater);
        assert_eq!(compare_versions("2.4.49", "2.4.49"), Ordering::Equal);
        assert_eq!(compare_versions("2.4.50", "2.4.49"), Ordering::Greater);
        assert_eq!(compare_versions("1.20.10", "1.20.9"), Ordering::Greater);
        assert_eq!(compare_versions("9.8", "9.8p1"), Ordering::Less);
        assert_eq!(compare_versions("7.0.15", "6.2.6"), Ordering::Greater);
    }

    #[test]
    fn builtin_list_loads_and_joins_the_real_kev_catalog() {
        let db = VulnDb::from_list_json(BUILTIN_VULNERABILITIES, "builtin").unwrap();
        assert!(db.entries.len() >= 10);
        let db = db.load_kev(std::path::Path::new(KEV)).unwrap();
        assert_eq!(db.kev_len(), 1404);
        let apache = db.findings_for(&service("Apache httpd", "2.4.49", "Apache/2.4.49 (Unix)"), None);
        let cves: Vec<&str> = apache.iter().filter_map(|f| f.cve.as_deref()).collect();
        assert_eq!(cves, ["CVE-2021-41773", "CVE-2021-42013"]);
        assert!(apache.iter().all(|f| f.known_exploited && f.kev_due.is_some()));
        assert!(apache.iter().all(|f| f.confidence == Confidence::Firm));
        let backdoor = db.findings_for(&service("vsftpd", "2.3.4", "220 (vsFTPd 2.3.4)"), None);
        assert_eq!(backdoor.len(), 1);
        assert_eq!(backdoor[0].severity, Severity::Critical);
        assert!(!backdoor[0].known_exploited);
        assert!(db.findings_for(&service("vsftpd", "3.0.3", "220 (vsFTPd 3.0.3)"), None).is_empty());
    }

    #[test]
    fn distribution_banner_lowers_confidence() {
        let db = VulnDb::builtin();
        let found = db.findings_for(&service("OpenSSH", "9.2p1", "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"), None);
        let cves: Vec<&str> = found.iter().filter_map(|f| f.cve.as_deref()).collect();
        assert_eq!(cves, ["CVE-2024-6387", "CVE-2023-38408"]);
        assert!(found.iter().all(|f| f.confidence == Confidence::Tentative));
        assert!(db.findings_for(&service("OpenSSH", "9.9p1", "SSH-2.0-OpenSSH_9.9p1"), None).is_empty());
    }

    #[test]
    fn the_built_in_kev_catalog_is_cisas_seed_and_always_joined() {
        let db = VulnDb::builtin();
        let info = db.kev_info().unwrap();
        assert_eq!((info.version.as_str(), info.entries, info.source.as_str()), ("2025.08.25", 1404, "built-in"));
        let seed = VulnDb::builtin_list().load_kev(std::path::Path::new(KEV)).unwrap();
        assert_eq!(seed.kev, db.kev, "the built-in copy holds what the seed holds");
        let apache = db.findings_for(&service("Apache httpd", "2.4.49", "Apache/2.4.49 (Unix)"), None);
        assert!(!apache.is_empty() && apache.iter().all(|f| f.known_exploited), "KEV flags without --kev");
    }

    #[test]
    fn the_newest_kev_copy_wins_and_a_broken_one_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join(LOCAL_KEV_FILE);
        let catalog = |version: &str, released: &str, cve: &str| {
            serde_json::json!({"title": "t", "catalogVersion": version, "dateReleased": released, "count": 1,
                "vulnerabilities": [{"cveID": cve, "vendorProject": "v", "product": "p", "vulnerabilityName": "n",
                "dateAdded": "2026-01-02", "dueDate": "2026-01-23", "requiredAction": "patch", "shortDescription": "d"}]})
            .to_string()
        };
        // No local copy: built-in.
        let db = VulnDb::builtin_list().with_best_kev(None, Some(dir.path())).unwrap();
        assert_eq!(db.kev_info().unwrap().source, "built-in");
        // A newer local copy replaces it.
        std::fs::write(&local, catalog("2026.11.30", "2026-11-30T17:00:00.000Z", "CVE-2026-12345")).unwrap();
        let db = VulnDb::builtin_list().with_best_kev(None, Some(dir.path())).unwrap();
        assert_eq!(db.kev_info().unwrap().version, "2026.11.30");
        assert!(db.kev("CVE-2026-12345").is_some() && db.kev("CVE-2021-41773").is_none());
        // An older one does not.
        std::fs::write(&local, catalog("2024.01.01", "2024-01-01T00:00:00Z", "CVE-2024-0001")).unwrap();
        assert_eq!(VulnDb::builtin_list().with_best_kev(None, Some(dir.path())).unwrap().kev_info().unwrap().version, "2025.08.25");
        // A broken one is skipped, not fatal; --kev FILE is used as given (and must be good).
        std::fs::write(&local, "{\"catalogVersion\": ").unwrap();
        assert_eq!(VulnDb::builtin_list().with_best_kev(None, Some(dir.path())).unwrap().kev_info().unwrap().source, "built-in");
        assert!(VulnDb::builtin_list().with_best_kev(Some(&local), None).is_err());
    }

    #[test]
    fn a_kev_catalog_is_checked_before_it_is_believed() {
        let one = |count: usize, cve: &str| {
            format!(r#"{{"catalogVersion":"1","dateReleased":"2026-01-01T00:00:00Z","count":{count},"vulnerabilities":[{{"cveID":"{cve}"}}]}}"#)
        };
        assert!(kev_info_of(&one(1, "CVE-2021-41773"), "k").is_ok());
        let e = kev_info_of(&one(2, "CVE-2021-41773"), "k").unwrap_err().to_string();
        assert!(e.contains("holds 1") && e.contains("truncated"), "{e}");
        for bad in ["cve-2021-1", "CVE-21-41773", "CVE-2021-12", "CVE-2021-1x345", "<script>"] {
            assert!(kev_info_of(&one(1, bad), "k").is_err(), "{bad}");
        }
        assert!(kev_info_of(r#"{"vulnerabilities":[]}"#, "k").is_err(), "no catalogVersion");
    }

    #[test]
    fn bad_files_are_typed_errors() {
        assert!(matches!(VulnDb::from_list_json("{", "x"), Err(VulnDbError::BadList { .. })));
        assert!(matches!(VulnDb::from_list_json("{\"format\":2,\"entries\":[]}", "x"), Err(VulnDbError::BadList { .. })));
        assert!(matches!(VulnDb::default().with_kev_json("[]", "k"), Err(VulnDbError::BadKev { .. })));
        assert!(matches!(VulnDb::load_list(std::path::Path::new("/nonexistent")), Err(VulnDbError::Read { .. })));
    }
}
