//! Accuracy on the lab: real servers with known weaknesses (tests/lab/lab.sh) on 127.0.77.x.
//! The findings must equal tests/lab/expected.json exactly: no misses, no false positives.
//! Then a second scan must turn every finding into "still open", and the weekly report must be
//! written from the history. Skips, saying why, without root or the lab packages.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ward_scan::engine::{self, ScanOptions};
use ward_scan::finding::Confidence;
use ward_scan::history::Store;
use ward_scan::tls::TlsClient;
use ward_scan::vulns::VulnDb;

const KEV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/kev/known_exploited_vulnerabilities.json");

fn lab_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/lab.sh")
}

struct Lab {
    dir: tempfile::TempDir,
    /// busybox telnetd is optional in the lab: without it the telnet findings are not expected.
    telnet: bool,
}

impl Lab {
    fn start() -> Option<Lab> {
        let check = Command::new("bash").arg(lab_script()).arg("check").output().ok()?;
        if !check.status.success() {
            let why = String::from_utf8_lossy(&check.stderr).trim().to_string();
            // CI sets WARD_LAB_REQUIRED=1 so a machine without the lab fails instead of skipping
            assert!(std::env::var_os("WARD_LAB_REQUIRED").is_none(), "the lab is required: {why}");
            eprintln!("skipping the lab test: {why}");
            return None;
        }
        let dir = tempfile::tempdir().ok()?;
        let out = Command::new("bash").arg(lab_script()).arg("start").arg(dir.path()).output().ok()?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let lab = Lab { dir, telnet: !stdout.contains("no telnet") };
        assert!(out.status.success() && stdout.contains("lab ready"), "lab did not start: {}", String::from_utf8_lossy(&out.stderr));
        if !lab.telnet {
            eprintln!("lab without telnet (busybox-static not installed): telnet findings not expected");
        }
        Some(lab)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(lab_script()).arg("stop").arg(self.dir.path()).output();
    }
}

type Key = (String, String, Option<u16>, Option<String>);

fn expected(lab: &Lab) -> BTreeSet<Key> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/expected.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_string(),
                f["asset"].as_str().unwrap().to_string(),
                f["port"].as_u64().map(|p| p as u16),
                f["cve"].as_str().map(str::to_string),
            )
        })
        .filter(|k: &Key| lab.telnet || k.1 != TELNET_HOST)
        .collect()
}

const TELNET_HOST: &str = "127.0.77.22";

fn options(lab: &Lab) -> ScanOptions {
    let ca = std::fs::read(lab.dir.path().join("pki/ca.pem")).unwrap();
    ScanOptions {
        targets: ["127.0.77.8/29", "127.0.77.20", "127.0.77.21", "127.0.77.22", "127.0.77.30", "clean.lab.test"].iter().map(|s| s.to_string()).collect(),
        ports: ward_scan::ports::parse_ports("21,22,23,25,80,443,445,3389,6379,8080").unwrap(),
        dns: Some("127.0.77.53:53".parse().unwrap()),
        domains: vec!["good.lab.test".into(), "bad.lab.test".into()],
        extra_roots: TlsClient::read_pem_bundle(&ca),
        vulns: VulnDb::builtin().load_kev(Path::new(KEV)).unwrap(),
        jurisdiction: Some("Lab County".into()),
        ..ScanOptions::default()
    }
}

#[test]
fn lab_findings_equal_the_known_list() {
    let Some(lab) = Lab::start() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let options = options(&lab);
    let result = rt.block_on(engine::run(&options, &|_| {})).expect("scan runs");
    let found: BTreeSet<Key> = result.findings.iter().map(|f| (f.check.clone(), f.asset.clone(), f.port, f.cve.clone())).collect();
    let expected = expected(&lab);
    let missed: Vec<&Key> = expected.difference(&found).collect();
    let extra: Vec<&Key> = found.difference(&expected).collect();
    assert!(missed.is_empty() && extra.is_empty(), "missed {missed:#?}\nfalse positives {extra:#?}");
    assert_eq!(found.len(), result.findings.len(), "no duplicate findings");
    // a CVE from a Debian banner is never certain
    for f in result.findings.iter().filter(|f| f.check == "vuln.cve") {
        assert_eq!(f.confidence, Confidence::Tentative, "{f:?}");
    }
    // identification: the clean site was reached by name, and products were read
    let services: Vec<String> = result.hosts.iter().flat_map(|h| h.services.iter()).map(|s| format!("{}:{} {} {}", s.ip, s.port, s.name, s.product.clone().unwrap_or_default())).collect();
    for want in ["127.0.77.13:443 http nginx", "127.0.77.20:21 ftp vsftpd", "127.0.77.21:22 ssh OpenSSH", "127.0.77.30:6379 redis Redis"] {
        assert!(services.iter().any(|s| s == want), "{want} not in {services:#?}");
    }
    assert!(result.hosts.iter().any(|h| h.hostname.as_deref() == Some("clean.lab.test")));

    // findings over time: a second scan sees every finding still open; then the report
    let state = tempfile::tempdir().unwrap();
    let store = Store::open(state.path()).unwrap();
    let first = store.record(&result).unwrap();
    assert_eq!(first.new.len(), expected.len());
    let again = rt.block_on(engine::run(&options, &|_| {})).expect("second scan runs");
    let second = store.record(&again).unwrap();
    assert_eq!((second.new.len(), second.still_open.len(), second.fixed.len()), (0, expected.len(), 0));
    let history = store.load().unwrap();
    let report = ward_scan::report::build_weekly(&history, Some("Lab County"), chrono::Utc::now(), state.path()).unwrap();
    assert_eq!(report.open_total, expected.len());
    let out = tempfile::tempdir().unwrap();
    let written = ward_scan::report::write_weekly(&report, out.path()).unwrap();
    let csv = std::fs::read_to_string(written.csv).unwrap();
    assert_eq!(csv.lines().count(), expected.len() + 1);
    assert!(std::fs::read(written.pdf).unwrap().starts_with(b"%PDF-"));
}

#[test]
fn unresolvable_names_and_bad_targets_are_clear_errors() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let options = ScanOptions { targets: vec!["not a host!".into()], ..ScanOptions::default() };
    let err = rt.block_on(engine::run(&options, &|_| {})).unwrap_err().to_string();
    assert!(err.contains("is not an IPv4 or IPv6 address"), "{err}");
    let options = ScanOptions { targets: vec!["10.0.0.0/8".into()], ..ScanOptions::default() };
    let err = rt.block_on(engine::run(&options, &|_| {})).unwrap_err().to_string();
    assert!(err.contains("--allow-large"), "{err}");
    // a name that does not resolve: ask a DNS server of our own that knows no names
    let options = ScanOptions { targets: vec!["no-such-host.invalid".into()], dns: Some("127.0.0.1:9".parse().unwrap()), ..ScanOptions::default() };
    let err = rt.block_on(engine::run(&options, &|_| {})).unwrap_err().to_string();
    assert!(err.contains("does not resolve"), "{err}");
}
