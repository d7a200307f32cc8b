//! The production path with the real binary: `ward hub init/jurisdiction/sensor token/serve`,
//! `ward sensor enroll`, then `ward sensor --hub-credential` over a real capture while the hub
//! is down (everything waits in the spool), and again once the hub is up: every alert arrives
//! exactly once. Uses ../shared/data/pcaps/zeek/nmap-vsn.pcap (a real nmap scan).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const WARD: &str = env!("CARGO_BIN_EXE_ward");

fn shared(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data").join(p)
}

fn ward(args: &[&str]) -> Output {
    let out = Command::new(WARD).args(args).output().expect("run ward");
    assert!(
        out.status.success(),
        "ward {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Hub(Child);

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(data: &Path, port: u16) -> Hub {
    let child = Command::new(WARD)
        .args(["hub", "serve", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the hub");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the hub did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    Hub(child)
}

/// Alerts the hub stored, counted through the API as the analyst.
fn hub_alerts(port: u16, password: &str) -> Vec<serde_json::Value> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    ward_hub::server::install_crypto_provider();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let login: serde_json::Value = client
            .post(format!("{base}/api/v1/login"))
            .json(&serde_json::json!({"username": "analyst", "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["token"].as_str().expect("login token").to_string();
        client
            .get(format!("{base}/api/v1/events?event_type=alert&limit=1000"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    })
}

#[test]
fn sensor_relays_through_its_spool_across_a_hub_outage_exactly_once() {
    let pcap = shared("pcaps/zeek/nmap-vsn.pcap");
    assert!(pcap.exists(), "missing {}", pcap.display());
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("hub");
    let data_s = data.to_str().unwrap();

    let init = String::from_utf8(ward(&["hub", "init", "--data", data_s]).stdout).unwrap();
    let password = init.split("password ").nth(1).and_then(|s| s.split_whitespace().next()).expect("password in init output").to_string();
    ward(&["hub", "jurisdiction", "add", "Adams County", "--kind", "county", "--state", "FR", "--data", data_s]);
    let token = String::from_utf8(ward(&["hub", "sensor", "token", "Adams County", "--data", data_s]).stdout).unwrap().trim().to_string();

    let port = free_port();
    let hub = serve(&data, port);
    let cred = tmp.path().join("sensor/credential.json");
    let hub_url = format!("http://127.0.0.1:{port}");
    ward(&["sensor", "enroll", "--hub", &hub_url, "--token", &token, "--name", "adams-1", "--credential", cred.to_str().unwrap()]);
    // The token was one-time.
    let again = Command::new(WARD)
        .args(["sensor", "enroll", "--hub", &hub_url, "--token", &token, "--credential"])
        .arg(tmp.path().join("other.json"))
        .output()
        .unwrap();
    assert!(!again.status.success(), "a used enrollment token must be refused");

    // The hub goes down; the sensor keeps detecting and spools.
    drop(hub);
    let eve = tmp.path().join("eve.json");
    let run = |eve: &Path| {
        let out = Command::new(WARD)
            .args(["sensor", "--quiet", "--workers", "1", "--pcap"])
            .arg(&pcap)
            .arg("--hub-credential")
            .arg(&cred)
            .arg("--eve")
            .arg(eve)
            .output()
            .unwrap();
        assert!(out.status.success(), "sensor failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let stderr = run(&eve);
    assert!(stderr.contains("wait in the spool"), "with the hub down the events must stay spooled:\n{stderr}");
    let local_alerts = std::fs::read_to_string(&eve).unwrap().lines().filter(|l| l.contains("\"event_type\":\"alert\"")).count();
    assert!(local_alerts > 0, "nmap-vsn.pcap must raise the scan detector");

    // The hub is back: a second run delivers the spooled events and its own, once each.
    let hub = serve(&data, port);
    let stderr = run(&tmp.path().join("eve2.json"));
    assert!(!stderr.contains("wait in the spool"), "spool not drained:\n{stderr}");
    let alerts = hub_alerts(port, &password);
    assert_eq!(alerts.len(), 2 * local_alerts, "the hub must hold both runs' alerts exactly once");
    drop(hub);
}

/// A sensor whose credential the hub refuses (revoked, or from another hub) keeps its events
/// in the spool, and says so: the run fails with the reason and what to do, instead of logging
/// errors for the drain time and exiting 0.
#[test]
fn a_refused_credential_fails_the_run_and_keeps_the_events() {
    let pcap = shared("pcaps/zeek/nmap-vsn.pcap");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("hub");
    let data_s = data.to_str().unwrap();
    ward(&["hub", "init", "--data", data_s]);
    ward(&["hub", "jurisdiction", "add", "Adams County", "--kind", "county", "--state", "FR", "--data", data_s]);
    let token = String::from_utf8(ward(&["hub", "sensor", "token", "Adams County", "--data", data_s]).stdout).unwrap().trim().to_string();
    let port = free_port();
    let _hub = serve(&data, port);
    let cred = tmp.path().join("credential.json");
    ward(&["sensor", "enroll", "--hub", &format!("http://127.0.0.1:{port}"), "--token", &token, "--credential", cred.to_str().unwrap()]);
    // The credential no longer matches (as after a revocation, or a copy from another hub).
    let text = std::fs::read_to_string(&cred).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v["credential"].is_string(), "{text}");
    v["credential"] = serde_json::Value::String("wsc_not-a-credential-this-hub-ever-issued-000000000000".into());
    std::fs::write(&cred, v.to_string()).unwrap();
    let out = Command::new(WARD)
        .args(["sensor", "--quiet", "--workers", "1", "--pcap"])
        .arg(&pcap)
        .arg("--hub-credential")
        .arg(&cred)
        .arg("--eve")
        .arg(tmp.path().join("eve.json"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a run whose events the hub refused must fail:\n{stderr}");
    assert!(stderr.contains("refused this sensor's credential") && stderr.contains("kept in the spool") && stderr.contains("ward sensor enroll"), "{stderr}");
}
