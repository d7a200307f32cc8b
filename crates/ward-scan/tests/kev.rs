//! `ward scan update-kev`: a catalog from a real HTTP server on loopback (Python's
//! `http.server`) or a file becomes the local copy; scans use the newest copy; a broken, truncated,
//! oversized or older catalog changes nothing and says why.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ward_scan::cli::{options_from_args, update_kev, ScanArgs, UpdateKevArgs};
use ward_scan::vulns::LOCAL_KEV_FILE;

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/kev/known_exploited_vulnerabilities.json");

struct HttpServer {
    child: Child,
    port: u16,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path) -> HttpServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string(), "--directory"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 is needed for the HTTP server");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return HttpServer { child, port };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("http.server did not start");
}

fn catalog(version: &str, released: &str, cves: &[&str]) -> String {
    let entries: Vec<serde_json::Value> = cves
        .iter()
        .map(|c| serde_json::json!({"cveID": c, "vendorProject": "Example", "product": "Gateway", "vulnerabilityName": "x", "dateAdded": "2026-11-30",
            "shortDescription": "d", "requiredAction": "Apply the vendor's fix.", "dueDate": "2026-12-21", "knownRansomwareCampaignUse": "Known"}))
        .collect();
    serde_json::json!({"title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": version, "dateReleased": released, "count": cves.len(), "vulnerabilities": entries}).to_string()
}

fn args(state: &Path, url: String, file: Option<&Path>, force: bool) -> UpdateKevArgs {
    UpdateKevArgs { url, file: file.map(Path::to_path_buf), state: Some(state.to_path_buf()), force }
}

fn scan_args(state: &Path) -> ScanArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        scan: ScanArgs,
    }
    Cli::parse_from(["scan", "127.0.0.1", "--state", state.to_str().unwrap()]).scan
}

#[test]
fn update_kev_downloads_checks_and_keeps_the_newest_catalog() {
    let www = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("newer.json"), catalog("2026.11.30", "2026-11-30T17:00:00.000Z", &["CVE-2026-20001", "CVE-2026-20002"])).unwrap();
    std::fs::write(www.path().join("older.json"), catalog("2024.01.02", "2024-01-02T17:00:00.000Z", &["CVE-2024-0001"])).unwrap();
    let mut truncated = catalog("2026.12.01", "2026-12-01T17:00:00.000Z", &["CVE-2026-20001", "CVE-2026-20002"]);
    truncated = truncated.replace("\"count\":2", "\"count\":3");
    std::fs::write(www.path().join("truncated.json"), truncated).unwrap();
    std::fs::write(www.path().join("page.html"), "<html>not a catalog</html>").unwrap();
    let server = serve(www.path());
    let url = |name: &str| format!("http://127.0.0.1:{}/{name}", server.port);

    // Before any update, scans use the built-in catalog.
    let options = options_from_args(&scan_args(state.path())).unwrap();
    assert_eq!(options.vulns.kev_info().unwrap().source, "built-in");

    // A newer catalog over HTTP becomes the local copy, and scans use it.
    assert_eq!(update_kev(&args(state.path(), url("newer.json"), None, false)).unwrap(), 0);
    let local = state.path().join(LOCAL_KEV_FILE);
    assert!(std::fs::read_to_string(&local).unwrap().contains("2026.11.30"));
    let options = options_from_args(&scan_args(state.path())).unwrap();
    let info = options.vulns.kev_info().unwrap();
    assert_eq!((info.version.as_str(), info.entries), ("2026.11.30", 2));
    assert!(options.vulns.kev("CVE-2026-20001").is_some_and(|k| k.ransomware));

    // Bad catalogs change nothing and say why.
    for (name, why) in [("truncated.json", "truncated"), ("page.html", "not a CISA KEV catalog"), ("missing.json", "404")] {
        let err = update_kev(&args(state.path(), url(name), None, false)).unwrap_err().to_string();
        assert!(err.contains(why), "{name}: {err}");
        assert!(std::fs::read_to_string(&local).unwrap().contains("2026.11.30"), "{name} replaced the local copy");
    }
    // An older catalog is refused unless forced; then scans fall back to the newer built-in one.
    let err = update_kev(&args(state.path(), url("older.json"), None, false)).unwrap_err().to_string();
    assert!(err.contains("older than the local copy") && err.contains("--force"), "{err}");
    assert_eq!(update_kev(&args(state.path(), url("older.json"), None, true)).unwrap(), 0);
    assert_eq!(options_from_args(&scan_args(state.path())).unwrap().vulns.kev_info().unwrap().version, "2025.08.25");

    // From a file: CISA's catalog as published.
    assert_eq!(update_kev(&args(state.path(), String::new(), Some(Path::new(SEED)), false)).unwrap(), 0);
    assert_eq!(options_from_args(&scan_args(state.path())).unwrap().vulns.kev_len(), 1404);

    // Only http(s), and nothing to a closed port hangs.
    assert!(update_kev(&args(state.path(), "file:///etc/passwd".into(), None, false)).unwrap_err().to_string().contains("only http(s)"));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    assert!(update_kev(&args(state.path(), format!("http://127.0.0.1:{closed}/kev.json"), None, false)).is_err());
}
