//! `ward scan --hub URL --jurisdiction NAME` and `ward scan worker --hub URL` against a real hub
//! started in this process on loopback, scanning a real web server this test runs on
//! 127.0.88.x: only registered assets are handed out, a blackout stops the scan, the findings
//! reach the hub, the weekly report appears on the dashboard, and a worker takes the due
//! jurisdiction once.

use std::net::SocketAddr;

use clap::Parser;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use ward_hub::model::{now_ms, JurisdictionKind, NewJurisdiction, Role};
use ward_scan::cli::{run_report, run_scan, ReportCommand, ScanArgs};

const PASSWORD: &str = "correct horse battery staple";

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: ScanArgs,
}

#[derive(Parser)]
struct ReportCli {
    #[command(subcommand)]
    cmd: ReportCommand,
}

fn scan_args(extra: &[&str]) -> ScanArgs {
    let mut argv = vec!["ward-scan"];
    argv.extend_from_slice(extra);
    Cli::try_parse_from(argv).unwrap().args
}

/// A small web server that answers every request with a version-disclosing plain-HTTP page.
async fn web_server(addr: SocketAddr) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), s.read(&mut buf)).await;
                let body = "<html><body>results</body></html>";
                let resp = format!("HTTP/1.1 200 OK\r\nServer: testd/1.2\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    })
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Vec<u8>) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
    }

    async fn json(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let (status, bytes) = self.call(method, path, token, body).await;
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

#[test]
fn scans_through_the_hub_only_what_is_registered() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = ward_hub::HubConfig::default();
    config.data_dir = dir.path().to_path_buf();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.limits.user_requests_per_sec = 10_000.0;
    let hub = rt.block_on(ward_hub::start(config)).unwrap();
    let url = hub.url();
    let store = hub.state.store.clone();
    let county = store.create_jurisdiction(&NewJurisdiction { name: "Test County".into(), kind: JurisdictionKind::County, state: Some("VA".into()), home_net: None }, now_ms()).unwrap().id;
    let other = store.create_jurisdiction(&NewJurisdiction { name: "Other County".into(), kind: JurisdictionKind::County, state: Some("VA".into()), home_net: None }, now_ms()).unwrap().id;
    let phc = ward_hub::auth::hash_password(PASSWORD).unwrap();
    store.create_user("analyst", &phc, Role::Analyst, None, now_ms()).unwrap();
    store.create_user("other-admin", &phc, Role::Admin, Some(other), now_ms()).unwrap();
    rt.block_on(web_server("127.0.88.1:8080".parse().unwrap()));
    rt.block_on(web_server("127.0.88.3:8080".parse().unwrap()));

    let api = Api { http: reqwest::Client::new(), base: url.clone() };
    let login = |name: &str| {
        let (status, v) = rt.block_on(api.json(reqwest::Method::POST, "/api/v1/login", None, Some(json!({"username": name, "password": PASSWORD}))));
        assert_eq!(status, 200, "{v}");
        v["token"].as_str().unwrap().to_string()
    };
    let analyst = login("analyst");
    let other_admin = login("other-admin");
    let post = |path: &str, token: &str, body: Value| rt.block_on(api.json(reqwest::Method::POST, path, Some(token), Some(body)));

    // nothing registered yet: no targets
    let base = ["--hub", url.as_str(), "--hub-token", analyst.as_str(), "--jurisdiction", "Test County", "--ports", "8080", "--no-udp", "--no-credentials", "--quiet"];
    let err = run_scan(scan_args(&base)).unwrap_err().to_string();
    assert!(err.contains("registered no assets"), "{err}");

    let (status, v) = post(&format!("/api/v1/jurisdictions/{county}/scan-assets"), &analyst, json!({"value": "127.0.88.1"}));
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["kind"], "address");
    // another jurisdiction's admin can neither register nor take this county's targets
    let (status, _) = post(&format!("/api/v1/jurisdictions/{county}/scan-assets"), &other_admin, json!({"value": "127.0.88.2"}));
    assert_eq!(status, 404);
    let (status, _) = post("/api/v1/scan/targets", &other_admin, json!({"jurisdiction": "Test County"}));
    assert_eq!(status, 404);

    // a target the county did not register is refused before anything is scanned
    let mut unregistered = base.to_vec();
    unregistered.push("127.0.88.2");
    let err = run_scan(scan_args(&unregistered)).unwrap_err().to_string();
    assert!(err.contains("not registered") && err.contains("127.0.88.2"), "{err}");

    // the registered scan: findings uploaded, report on the dashboard
    let code = run_scan(scan_args(&base)).unwrap();
    assert_eq!(code, 0, "only medium and low findings");
    let (status, results) = rt.block_on(api.json(reqwest::Method::GET, "/api/v1/scan/results?jurisdiction=Test%20County", Some(&analyst), None));
    assert_eq!(status, 200);
    let results = results.as_array().unwrap().clone();
    assert_eq!(results.len(), 1);
    let checks: Vec<String> = results[0]["findings"].as_array().unwrap().iter().map(|f| format!("{} {}:{}", f["check"].as_str().unwrap(), f["asset"].as_str().unwrap(), f["port"])).collect();
    assert_eq!(checks.len(), 2, "{checks:?}");
    assert!(checks.contains(&"http.no-https 127.0.88.1:8080".to_string()) && checks.contains(&"http.server-version 127.0.88.1:8080".to_string()), "{checks:?}");
    let (status, pdf) = rt.block_on(api.call(reqwest::Method::GET, &format!("/scan/{county}/report.pdf"), Some(&analyst), None));
    assert_eq!(status, 200);
    assert!(pdf.starts_with(b"%PDF-"));
    let (status, html) = rt.block_on(api.call(reqwest::Method::GET, &format!("/scan/{county}/report.html"), Some(&analyst), None));
    let html = String::from_utf8(html).unwrap();
    assert_eq!(status, 200);
    assert!(html.contains("Test County") && html.contains("<style>"), "{html}");
    let (status, _) = rt.block_on(api.call(reqwest::Method::GET, &format!("/scan/{county}/report.pdf"), Some(&other_admin), None));
    assert_eq!(status, 404, "another jurisdiction cannot read the report");

    // `ward report weekly --hub` rebuilds the same report from the hub's results
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().to_str().unwrap();
    let cmd = ReportCli::try_parse_from(["ward-report", "weekly", "--hub", url.as_str(), "--hub-token", analyst.as_str(), "--jurisdiction", "Test County", "--out", out_dir]).unwrap().cmd;
    assert_eq!(run_report(cmd).unwrap(), 0);
    let csv = std::fs::read_to_string(out.path().join("findings.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");

    // an upload that reaches outside the registry is refused whole
    let mut forged = results[0].clone();
    forged["findings"][0]["asset"] = json!("127.0.88.9");
    forged["hosts"][0]["ip"] = json!("127.0.88.9");
    let (status, v) = post("/api/v1/scan/results?jurisdiction=Test%20County", &analyst, forged);
    assert_eq!(status, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("127.0.88.9"));

    // a worker takes the jurisdiction that is due (Other County, never scanned) and only that:
    // Test County's next scan is 4 days away (worst finding medium)
    let (status, _) = post(&format!("/api/v1/jurisdictions/{other}/scan-assets"), &other_admin, json!({"value": "127.0.88.3/32"}));
    assert_eq!(status, 201);
    let worker = ["worker", "--hub", url.as_str(), "--hub-token", analyst.as_str(), "--ports", "8080", "--no-udp", "--no-credentials", "--quiet", "--exit-when-idle", "--worker-name", "w1"];
    assert_eq!(run_scan(scan_args(&worker)).unwrap(), 0);
    let (_, other_results) = rt.block_on(api.json(reqwest::Method::GET, "/api/v1/scan/results?jurisdiction=Other%20County", Some(&analyst), None));
    assert_eq!(other_results.as_array().unwrap().len(), 1);
    assert_eq!(other_results[0]["jurisdiction"], "Other County");
    let (_, county_results) = rt.block_on(api.json(reqwest::Method::GET, "/api/v1/scan/results?jurisdiction=Test%20County", Some(&analyst), None));
    assert_eq!(county_results.as_array().unwrap().len(), 1, "Test County was not due");
    let (status, _) = rt.block_on(api.call(reqwest::Method::POST, "/api/v1/scan/jobs/claim", Some(&analyst), Some(json!({"worker": "w2"}))));
    assert_eq!(status, 204, "nothing else is due");

    // election day: a blackout stops every scan of the county
    let now = now_ms();
    let (status, v) = post(&format!("/api/v1/jurisdictions/{county}/scan-blackouts"), &analyst, json!({"starts_ms": now - 60_000, "ends_ms": now + 3_600_000, "reason": "election day"}));
    assert_eq!(status, 201, "{v}");
    let err = run_scan(scan_args(&base)).unwrap_err().to_string();
    assert!(err.contains("blackout") && err.contains("election day"), "{err}");

    rt.block_on(hub.shutdown());
}
