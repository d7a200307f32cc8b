//! `ward scan vulndb import`: NIST's NVD CVE JSON 2.0 (the feeds' and the API's format) into
//! ward's vulnerability list, so an office can refresh its list from NIST's public data.
//!
//! What is taken from each CVE: its id, the English description, the CVSS base score (v3.1,
//! else v4.0, v3.0, v2), and every *vulnerable* `cpeMatch` of its configurations whose
//! `vendor:product` maps to a product ward-scan identifies ([`PRODUCTS`]); the CPE's version
//! (with its `update` part: `9.3` + `p1` is `9.3p1`) or the `versionStart*`/`versionEnd*`
//! bounds become the affected ranges. Platform entries (`vulnerable: false`, the "running on"
//! half of an AND node) are not products at risk and are left out. A CVE with no mapped product
//! is counted and skipped.
//!
//! The back-port rule still holds for imported entries: a match from a version string is never
//! certain (`VulnDb::findings_for` rates it firm, or tentative on a distribution build).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::vulns::{AffectedRange, VulnEntry};

/// CPE `vendor:product` → the product name ward-scan's identification gives.
pub const PRODUCTS: &[(&str, &str, &str)] = &[
    ("openbsd", "openssh", "OpenSSH"),
    ("apache", "http_server", "Apache httpd"),
    ("f5", "nginx", "nginx"),
    ("nginx", "nginx", "nginx"),
    ("redis", "redis", "Redis"),
    ("redislabs", "redis", "Redis"),
    ("exim", "exim", "Exim"),
    ("proftpd", "proftpd", "ProFTPD"),
    ("proftpd_project", "proftpd", "ProFTPD"),
    ("beasts", "vsftpd", "vsftpd"),
];

/// An NVD file larger than this is refused (NIST's yearly feeds are about 100 MB uncompressed
/// at most; split larger inputs).
pub const MAX_NVD_BYTES: usize = 512 << 20;
/// Affected ranges kept per CVE and product at most.
const MAX_RANGES: usize = 64;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NvdError {
    #[error("{path} is not NVD CVE JSON 2.0: {reason} (NIST's feeds nvdcve-2.0-*.json and the CVE API 2.0 use it)")]
    Format { path: String, reason: String },
    #[error("{path} is larger than {max} MiB: split it (one year's feed per file)")]
    TooLarge { path: String, max: usize },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Feed {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    version: Option<String>,
    vulnerabilities: Vec<Item>,
}

#[derive(Debug, Deserialize)]
struct Item {
    cve: Cve,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cve {
    id: String,
    #[serde(default)]
    vuln_status: Option<String>,
    #[serde(default)]
    descriptions: Vec<LangString>,
    #[serde(default)]
    metrics: Metrics,
    #[serde(default)]
    configurations: Vec<Config>,
}

#[derive(Debug, Deserialize)]
struct LangString {
    lang: String,
    value: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metrics {
    #[serde(default)]
    cvss_metric_v31: Vec<Metric>,
    #[serde(default)]
    cvss_metric_v40: Vec<Metric>,
    #[serde(default)]
    cvss_metric_v30: Vec<Metric>,
    #[serde(default)]
    cvss_metric_v2: Vec<Metric>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metric {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    cvss_data: CvssData,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CvssData {
    base_score: f32,
}

#[derive(Debug, Deserialize)]
struct Config {
    #[serde(default)]
    nodes: Vec<Node>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Node {
    #[serde(default)]
    negate: bool,
    #[serde(default)]
    cpe_match: Vec<CpeMatch>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CpeMatch {
    vulnerable: bool,
    criteria: String,
    #[serde(default)]
    version_start_including: Option<String>,
    #[serde(default)]
    version_start_excluding: Option<String>,
    #[serde(default)]
    version_end_including: Option<String>,
    #[serde(default)]
    version_end_excluding: Option<String>,
}

/// What one import read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportStats {
    pub cves: usize,
    /// CVEs that became entries (one per product).
    pub entries: usize,
    /// CVEs naming no product ward identifies.
    pub unmapped: usize,
    /// Rejected or withdrawn CVEs.
    pub rejected: usize,
    /// Match criteria that could not be read (bad CPE string).
    pub bad_criteria: usize,
}

/// Splits a CPE 2.3 formatted string into its parts (`\:` escapes a colon).
fn cpe_parts(cpe: &str) -> Option<Vec<String>> {
    let rest = cpe.strip_prefix("cpe:2.3:")?;
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => cur.push(chars.next()?),
            ':' => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    (parts.len() == 11).then_some(parts)
}

fn product_of(vendor: &str, product: &str) -> Option<&'static str> {
    PRODUCTS.iter().find(|(v, p, _)| *v == vendor && *p == product).map(|(_, _, name)| *name)
}

fn score(m: &Metrics) -> f32 {
    // The NVD's own ("Primary") score first, else the first one given.
    let pick = |list: &[Metric]| list.iter().find(|x| x.kind.as_deref() == Some("Primary")).or(list.first()).map(|x| x.cvss_data.base_score);
    pick(&m.cvss_metric_v31).or_else(|| pick(&m.cvss_metric_v40)).or_else(|| pick(&m.cvss_metric_v30)).or_else(|| pick(&m.cvss_metric_v2)).unwrap_or(0.0)
}

/// A short name: the description's first sentence, at most 100 characters.
fn short_name(id: &str, product: &str, description: &str) -> String {
    let first = description.split(". ").next().unwrap_or(description).trim().trim_end_matches('.');
    let name: String = first.chars().take(100).collect();
    if name.is_empty() {
        format!("{product} {id}")
    } else if name.len() < first.len() {
        format!("{name}…")
    } else {
        name
    }
}

/// Converts one NVD CVE JSON 2.0 document into list entries.
pub fn import(text: &str, path: &str) -> Result<(Vec<VulnEntry>, ImportStats), NvdError> {
    if text.len() > MAX_NVD_BYTES {
        return Err(NvdError::TooLarge { path: path.into(), max: MAX_NVD_BYTES >> 20 });
    }
    let feed: Feed = serde_json::from_str(text).map_err(|e| NvdError::Format { path: path.into(), reason: e.to_string() })?;
    if let Some(f) = &feed.format {
        if f != "NVD_CVE" {
            return Err(NvdError::Format { path: path.into(), reason: format!("format {f:?} is not NVD_CVE") });
        }
    }
    if let Some(v) = &feed.version {
        if !v.starts_with("2.") {
            return Err(NvdError::Format { path: path.into(), reason: format!("version {v:?} is not 2.x (the 1.1 feeds were retired)") });
        }
    }
    let mut stats = ImportStats::default();
    let mut out = Vec::new();
    for item in feed.vulnerabilities {
        let cve = item.cve;
        stats.cves += 1;
        if matches!(cve.vuln_status.as_deref(), Some("Rejected")) {
            stats.rejected += 1;
            continue;
        }
        let description = cve.descriptions.iter().find(|d| d.lang == "en").or(cve.descriptions.first()).map(|d| d.value.trim().to_string()).unwrap_or_default();
        let cvss = score(&cve.metrics);
        let mut ranges: BTreeMap<&'static str, Vec<AffectedRange>> = BTreeMap::new();
        for node in cve.configurations.iter().flat_map(|c| &c.nodes) {
            if node.negate {
                continue;
            }
            for m in node.cpe_match.iter().filter(|m| m.vulnerable) {
                let Some(parts) = cpe_parts(&m.criteria) else {
                    stats.bad_criteria += 1;
                    continue;
                };
                // part, vendor, product, version, update, …
                let Some(product) = product_of(&parts[1], &parts[2]) else { continue };
                let (version, update) = (&parts[3], &parts[4]);
                let bounded = m.version_start_including.is_some() || m.version_start_excluding.is_some() || m.version_end_including.is_some() || m.version_end_excluding.is_some();
                let range = if version != "*" && version != "-" && !bounded {
                    let v = if update != "*" && update != "-" && !update.is_empty() { format!("{version}{update}") } else { version.clone() };
                    AffectedRange { introduced: v.clone(), fixed: None, last_affected: Some(v), introduced_excluded: false }
                } else if bounded {
                    let (introduced, excluded) = match (&m.version_start_including, &m.version_start_excluding) {
                        (Some(v), _) => (v.clone(), false),
                        (None, Some(v)) => (v.clone(), true),
                        (None, None) => ("0".to_string(), false),
                    };
                    AffectedRange { introduced, fixed: m.version_end_excluding.clone(), last_affected: if m.version_end_excluding.is_none() { m.version_end_including.clone() } else { None }, introduced_excluded: excluded }
                } else {
                    // Every version ("*" with no bounds): too broad to say anything by version.
                    continue;
                };
                let list = ranges.entry(product).or_default();
                if list.len() < MAX_RANGES {
                    list.push(range);
                }
            }
        }
        if ranges.is_empty() {
            stats.unmapped += 1;
            continue;
        }
        for (product, affected) in ranges {
            let fixed: Vec<&str> = affected.iter().filter_map(|r| r.fixed.as_deref()).collect();
            let fix = match fixed.iter().max_by(|a, b| crate::vulns::compare_versions(a, b)) {
                Some(v) => format!("Upgrade {product} to {v} or later (or the fixed release of your branch; see the CVE)."),
                None => format!("Apply the {product} vendor's fix for {} (see the CVE).", cve.id),
            };
            out.push(VulnEntry { product: product.to_string(), affected, cve: cve.id.clone(), cvss, name: short_name(&cve.id, product, &description), description: description.clone(), fix });
            stats.entries += 1;
        }
    }
    Ok((out, stats))
}

/// Merges `imported` into `base`: an imported (product, CVE) replaces the one in `base`.
pub fn merge(base: Vec<VulnEntry>, imported: Vec<VulnEntry>) -> Vec<VulnEntry> {
    let mut by: BTreeMap<(String, String), VulnEntry> = BTreeMap::new();
    for e in base.into_iter().chain(imported) {
        by.insert((e.product.to_ascii_lowercase(), e.cve.clone()), e);
    }
    by.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small document in NVD CVE JSON 2.0, per NIST's published schema.
    fn doc(items: &str) -> String {
        format!(r#"{{"resultsPerPage":3,"startIndex":0,"totalResults":3,"format":"NVD_CVE","version":"2.0","timestamp":"2026-12-01T00:00:00.000","vulnerabilities":[{items}]}}"#)
    }

    const OPENSSH: &str = r#"{"cve":{"id":"CVE-2024-6387","sourceIdentifier":"secalert@redhat.com","published":"2024-07-01T13:15:01.997","lastModified":"2024-11-21T09:49:30.000","vulnStatus":"Modified",
      "descriptions":[{"lang":"en","value":"A security regression was found in OpenSSH's server (sshd). There is a race condition which can lead sshd to handle some signals in an unsafe manner."},{"lang":"es","value":"Una regresión"}],
      "metrics":{"cvssMetricV31":[{"source":"secalert@redhat.com","type":"Secondary","cvssData":{"version":"3.1","vectorString":"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H","baseScore":8.1,"baseSeverity":"HIGH"}},{"source":"nvd@nist.gov","type":"Primary","cvssData":{"version":"3.1","vectorString":"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H","baseScore":8.1,"baseSeverity":"HIGH"}}]},
      "configurations":[{"nodes":[{"operator":"OR","negate":false,"cpeMatch":[
         {"vulnerable":true,"criteria":"cpe:2.3:a:openbsd:openssh:*:*:*:*:*:*:*:*","versionEndExcluding":"4.4","matchCriteriaId":"A"},
         {"vulnerable":true,"criteria":"cpe:2.3:a:openbsd:openssh:*:*:*:*:*:*:*:*","versionStartIncluding":"8.5","versionEndExcluding":"9.8","matchCriteriaId":"B"},
         {"vulnerable":true,"criteria":"cpe:2.3:a:openbsd:openssh:9.8:-:*:*:*:*:*:*","matchCriteriaId":"C"}]}]},
        {"operator":"AND","nodes":[{"operator":"OR","negate":false,"cpeMatch":[{"vulnerable":true,"criteria":"cpe:2.3:a:openbsd:openssh:9.3:p1:*:*:*:*:*:*","matchCriteriaId":"D"}]},
                                    {"operator":"OR","negate":false,"cpeMatch":[{"vulnerable":false,"criteria":"cpe:2.3:o:linux:linux_kernel:-:*:*:*:*:*:*:*","matchCriteriaId":"E"}]}]}]}}"#;

    const HTTPD: &str = r#"{"cve":{"id":"CVE-2021-41773","vulnStatus":"Analyzed","descriptions":[{"lang":"en","value":"A flaw was found in a change made to path normalization in Apache HTTP Server 2.4.49. An attacker could use a path traversal attack."}],
      "metrics":{"cvssMetricV31":[{"type":"Primary","cvssData":{"baseScore":7.5}}]},
      "configurations":[{"nodes":[{"operator":"OR","negate":false,"cpeMatch":[{"vulnerable":true,"criteria":"cpe:2.3:a:apache:http_server:2.4.49:*:*:*:*:*:*:*"},
          {"vulnerable":true,"criteria":"cpe:2.3:a:fedoraproject:fedora:34:*:*:*:*:*:*:*"}]}]}]}}"#;

    const UNMAPPED: &str = r#"{"cve":{"id":"CVE-2023-0001","vulnStatus":"Analyzed","descriptions":[{"lang":"en","value":"Something in a product ward does not identify."}],"metrics":{"cvssMetricV2":[{"type":"Primary","cvssData":{"baseScore":5.0}}]},
      "configurations":[{"nodes":[{"operator":"OR","negate":false,"cpeMatch":[{"vulnerable":true,"criteria":"cpe:2.3:a:example:thing:*:*:*:*:*:*:*:*","versionEndIncluding":"1.0"}]}]}]}}"#;

    const REJECTED: &str = r#"{"cve":{"id":"CVE-2023-0002","vulnStatus":"Rejected","descriptions":[{"lang":"en","value":"** REJECT **"}]}}"#;

    #[test]
    fn ranges_versions_and_scores_come_from_the_match_criteria() {
        let (entries, stats) = import(&doc(&[OPENSSH, HTTPD, UNMAPPED, REJECTED].join(",")), "t.json").unwrap();
        assert_eq!(stats, ImportStats { cves: 4, entries: 2, unmapped: 1, rejected: 1, bad_criteria: 0 });
        let ssh = entries.iter().find(|e| e.cve == "CVE-2024-6387").unwrap();
        assert_eq!(ssh.product, "OpenSSH");
        assert_eq!(ssh.cvss, 8.1);
        assert!(ssh.description.starts_with("A security regression"), "the English description");
        let hit = |v: &str| ssh.affected.iter().any(|r| r.contains(v));
        for v in ["4.3p2", "8.5p1", "9.7p1", "9.8", "9.3p1"] {
            assert!(hit(v), "{v} is affected");
        }
        for v in ["4.4", "7.4p1", "9.8p1", "9.9"] {
            assert!(!hit(v), "{v} is not affected");
        }
        assert!(ssh.fix.contains("9.8"), "{}", ssh.fix);
        let httpd = entries.iter().find(|e| e.cve == "CVE-2021-41773").unwrap();
        assert_eq!(httpd.product, "Apache httpd");
        assert!(httpd.affected.iter().any(|r| r.contains("2.4.49")) && !httpd.affected.iter().any(|r| r.contains("2.4.50")));
        assert_eq!(httpd.affected.len(), 1, "fedora is not a product ward identifies");
    }

    #[test]
    fn an_excluded_start_is_not_affected() {
        let item = r#"{"cve":{"id":"CVE-2099-1","descriptions":[],"configurations":[{"nodes":[{"cpeMatch":[{"vulnerable":true,"criteria":"cpe:2.3:a:redis:redis:*:*:*:*:*:*:*:*","versionStartExcluding":"7.0.0","versionEndIncluding":"7.2.4"}]}]}]}}"#;
        let (entries, _) = import(&doc(item), "t").unwrap();
        let r = &entries[0].affected[0];
        assert!(!r.contains("7.0.0") && r.contains("7.0.1") && r.contains("7.2.4") && !r.contains("7.2.5"));
        assert_eq!(entries[0].name, "Redis CVE-2099-1");
    }

    #[test]
    fn bad_documents_are_refused_with_the_reason() {
        for (text, want) in [
            ("{", "not NVD CVE JSON 2.0"),
            (r#"{"format":"NVD_CVE","version":"1.1","vulnerabilities":[]}"#, "retired"),
            (r#"{"format":"OTHER","vulnerabilities":[]}"#, "NVD_CVE"),
            (r#"{"vulnerabilities":[{"cve":{}}]}"#, "missing field `id`"),
        ] {
            let e = import(text, "x.json").unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
        let bad_cpe = r#"{"cve":{"id":"CVE-1","configurations":[{"nodes":[{"cpeMatch":[{"vulnerable":true,"criteria":"cpe:2.3:a:openbsd"}]}]}]}}"#;
        let (_, stats) = import(&doc(bad_cpe), "t").unwrap();
        assert_eq!((stats.bad_criteria, stats.unmapped), (1, 1));
        assert_eq!(cpe_parts(r"cpe:2.3:a:vendor\:x:prod:1.0:*:*:*:*:*:*:*").unwrap()[1], "vendor:x");
    }

    #[test]
    fn imported_entries_replace_the_same_cve_and_keep_the_rest() {
        let (imported, _) = import(&doc(HTTPD), "t").unwrap();
        let base = crate::vulns::VulnDb::builtin_list().entries().to_vec();
        let n = base.len();
        let merged = merge(base, imported);
        assert_eq!(merged.len(), n, "CVE-2021-41773 is in the built-in list: replaced, not added");
        assert!(merged.iter().any(|e| e.cve == "CVE-2021-41773" && e.cvss == 7.5));
    }
}
