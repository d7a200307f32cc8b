//! `ward scan vulndb import`: an NVD CVE JSON 2.0 file written per NIST's schema becomes the
//! local vulnerability list, and a real scan of a loopback SSH server announcing the affected
//! version reports the imported CVE (firm, not confirmed: the version string alone is never
//! certain), with the KEV catalog joined in when one is given. A bad file changes nothing.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;

use clap::Parser;
use serde_json::Value;
use ward_scan::cli::{run, vulndb_import, ScanCli, VulndbImportArgs};
use ward_scan::vulns::LOCAL_LIST_FILE;

const NVD: &str = r#"{"resultsPerPage":1,"startIndex":0,"totalResults":1,"format":"NVD_CVE","version":"2.0","timestamp":"2026-12-01T00:00:00.000",
 "vulnerabilities":[{"cve":{"id":"CVE-2099-0001","sourceIdentifier":"cve@mitre.org","published":"2099-01-01T00:00:00.000","lastModified":"2099-01-02T00:00:00.000","vulnStatus":"Analyzed",
  "descriptions":[{"lang":"en","value":"A test flaw in OpenSSH before 9.9 lets a remote attacker run code. Written for ward's tests."}],
  "metrics":{"cvssMetricV31":[{"source":"nvd@nist.gov","type":"Primary","cvssData":{"version":"3.1","vectorString":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H","baseScore":9.8,"baseSeverity":"CRITICAL"},"exploitabilityScore":3.9,"impactScore":5.9}]},
  "configurations":[{"nodes":[{"operator":"OR","negate":false,"cpeMatch":[{"vulnerable":true,"criteria":"cpe:2.3:a:openbsd:openssh:*:*:*:*:*:*:*:*","versionStartIncluding":"9.0","versionEndExcluding":"9.9","matchCriteriaId":"00000000-0000-0000-0000-000000000001"}]}]}],
  "references":[{"url":"https://example.invalid/advisory","source":"cve@mitre.org"}]}}]}"#;

fn kev(cve: &str) -> String {
    serde_json::json!({"title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": "2099.01.03", "dateReleased": "2099-01-03T17:00:00.000Z", "count": 1,
        "vulnerabilities": [{"cveID": cve, "vendorProject": "OpenBSD", "product": "OpenSSH", "vulnerabilityName": "test", "dateAdded": "2099-01-03",
            "shortDescription": "d", "requiredAction": "Apply the vendor's fix.", "dueDate": "2099-01-24", "knownRansomwareCampaignUse": "Unknown"}]})
    .to_string()
}

/// An SSH server that only announces itself, on a loopback port.
fn ssh_banner_server(banner: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = stream;
                let _ = s.write_all(banner.as_bytes());
                std::thread::sleep(std::time::Duration::from_millis(300));
            });
        }
    });
    port
}

fn scan(state: &Path, port: u16, json: &Path) -> Value {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        scan: ScanCli,
    }
    let port = port.to_string();
    let cli = Cli::parse_from([
        "scan", "127.0.0.1", "--ports", &port, "--state", state.to_str().unwrap(), "--json", json.to_str().unwrap(), "--no-udp", "--no-credentials", "--no-history",
    ]);
    run(cli.scan).unwrap();
    serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap()
}

fn cve_findings(result: &Value, cve: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut stack = vec![result.clone()];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                if m.get("cve").and_then(Value::as_str) == Some(cve) {
                    out.push(Value::Object(m.clone()));
                }
                stack.extend(m.into_values());
            }
            Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
    out
}

#[test]
fn imported_cves_reach_the_scan_and_bad_files_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let nvd = dir.path().join("nvdcve-2.0-test.json");
    std::fs::write(&nvd, NVD).unwrap();
    let kev_file = dir.path().join("kev.json");
    std::fs::write(&kev_file, kev("CVE-2099-0001")).unwrap();
    let port = ssh_banner_server("SSH-2.0-OpenSSH_9.3p1\r\n");

    // Before the import: the built-in list knows nothing of the test CVE.
    let before = scan(&state, port, &dir.path().join("before.json"));
    assert!(cve_findings(&before, "CVE-2099-0001").is_empty());

    let args = VulndbImportArgs { files: vec![nvd.clone()], kev: Some(kev_file), state: Some(state.clone()), fresh: false };
    assert_eq!(vulndb_import(&args).unwrap(), 0);
    let list: Value = serde_json::from_slice(&std::fs::read(state.join(LOCAL_LIST_FILE)).unwrap()).unwrap();
    assert_eq!(list["format"], 1);
    assert!(list["entries"].as_array().unwrap().len() > 1, "the built-in entries are kept");

    let after = scan(&state, port, &dir.path().join("after.json"));
    let found = cve_findings(&after, "CVE-2099-0001");
    assert_eq!(found.len(), 1, "{after}");
    let f = &found[0];
    assert_eq!(f["confidence"], "firm", "a version string alone is never confirmed: {f}");
    assert_eq!(f["known_exploited"], true, "the KEV catalog given with the import is joined: {f}");
    assert!(f["evidence"].as_str().unwrap().contains("9.3p1"));

    // A broken file is refused and the list stays as it was.
    let saved = std::fs::read(state.join(LOCAL_LIST_FILE)).unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, &NVD[..NVD.len() / 2]).unwrap();
    let err = vulndb_import(&VulndbImportArgs { files: vec![broken], kev: None, state: Some(state.clone()), fresh: false }).unwrap_err();
    assert!(format!("{err:#}").contains("not NVD CVE JSON 2.0"), "{err:#}");
    assert_eq!(std::fs::read(state.join(LOCAL_LIST_FILE)).unwrap(), saved);
}
