//! `ward drill run` end to end: the built-in five-jurisdiction scenario through the real binary,
//! an embedded hub over HTTPS, four real sensor pipelines, a simulated relay, webhook receivers
//! and simulated people; then the measured outcome is checked path by path. Clark County's
//! primary contact is deliberately broken: it must show as a miss and as an escalation to its
//! next contact, which acknowledges.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn ward() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ward"))
}

fn outcome(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("outcome.json")).expect("outcome.json written")).expect("outcome.json is JSON")
}

#[test]
fn tabletop_measures_every_warning_ack_miss_and_escalation() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let out = ward().args(["drill", "run", "tabletop-5", "--quiet", "--speed", "60", "--report"]).arg(&report).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 0, or 1 when a timing objective was rated U: at speed 60 the 10 s detection threshold is
    // 167 ms of real time, which a loaded CI machine may miss. What is measured is checked below.
    assert!(matches!(out.status.code(), Some(0 | 1)), "stderr: {stderr}");
    let o = outcome(&report);
    assert_eq!(o["jurisdictions"], 5);
    assert_eq!(o["real_sensors"], 4);
    let paths = o["paths"].as_array().unwrap();
    let path = |inject: &str, name: &str| paths.iter().find(|p| p["inject"] == inject && p["jurisdiction"] == name).unwrap_or_else(|| panic!("no path {inject} {name}: {paths:?}"));
    for name in ["Adams County", "Baker County"] {
        let p = path("scan", name);
        assert_eq!(p["outcome"], "Warned", "{name}: {p}");
        for step in ["injected_ms", "detected_ms", "received_ms", "campaign_ms", "warned_ms", "acked_ms"] {
            assert!(p[step].is_i64(), "{name}: {step} not measured: {p}");
        }
        assert!(p["detected_ms"].as_i64() >= p["injected_ms"].as_i64() && p["acked_ms"].as_i64() >= p["warned_ms"].as_i64(), "{p}");
        assert_eq!(p["ack_action"], "blocked");
    }
    let sqli = path("sqli", "Adams County");
    assert_eq!(sqli["outcome"], "Warned");
    // The broken contact: a miss, its failed delivery with the reason, and an escalation to the
    // next contact, who acknowledged.
    let clark = path("scan", "Clark County");
    assert_eq!(clark["outcome"], "Missed", "{clark}");
    assert!(clark["detected_ms"].is_i64(), "the attack was detected even though the warning missed: {clark}");
    assert!(clark["escalated_ms"].is_i64(), "the warning escalated: {clark}");
    let deliveries = clark["deliveries"].as_array().unwrap();
    assert!(deliveries.iter().any(|d| d["kind"] == "targeted" && d["delivered_ms"].is_null() && d["error"].as_str().is_some_and(|e| e.contains("refused"))), "{deliveries:?}");
    assert!(deliveries.iter().any(|d| d["kind"] == "unacked" && d["delivered_ms"].is_i64()), "{deliveries:?}");
    assert!(clark["acked_ms"].is_i64(), "the next contact acknowledged: {clark}");
    // Nobody untargeted was warned; the state was told.
    assert!(paths.iter().all(|p| p["outcome"] != "FalseWarning"), "{paths:?}");
    assert!(!paths.iter().any(|p| p["jurisdiction"] == "Dover County"));
    let ohio = o["state_rows"].as_array().unwrap().iter().find(|s| s["state"] == "OH").unwrap();
    assert!(ohio["state_told_ms"].is_i64(), "{ohio}");
    assert_eq!(ohio["targeted"], 3);
    assert_eq!(ohio["warned"], 2);
    // Objectives: every one measured; detection P; the miss keeps warnings from P; the
    // improvement plan names Clark County.
    let obj = |id: &str| o["objectives"].as_array().unwrap().iter().find(|x| x["id"] == id).unwrap().clone();
    assert_eq!(obj("detect-10s")["total"], 4);
    assert!(paths.iter().all(|p| p["detected_ms"].is_i64()), "every attack detected: {paths:?}");
    assert_eq!(obj("warn-60s")["total"], 4);
    assert_ne!(obj("warn-60s")["rating"], "P", "a miss cannot be performed without challenges");
    assert_eq!(obj("state-5min")["total"], 1);
    assert!(obj("ack-30min")["total"].as_u64().unwrap() >= 3);
    assert!(o["improvements"].as_array().unwrap().iter().any(|i| i["owner"] == "Clark County"), "{}", o["improvements"]);
}

/// The same drill with the embedded hub on PostgreSQL (a fresh database on 127.0.0.1:5432, as CI
/// starts it): the store behind the hub changes nothing the drill measures.
#[test]
fn tabletop_on_postgresql() {
    let name = format!("ward_drill_{}", std::process::id());
    let admin = |sql: &str| Command::new("psql").args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc", sql]).output();
    match admin(&format!("CREATE DATABASE {name}")) {
        Ok(o) if o.status.success() => {}
        other => panic!("PostgreSQL must answer on 127.0.0.1:5432 (scripts/setup-test-env.sh starts it): {other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let out = ward()
        .args(["drill", "run", "tabletop-5", "--quiet", "--database", &format!("postgres://postgres@127.0.0.1:5432/{name}"), "--report"])
        .arg(&report)
        .output()
        .unwrap();
    let _ = admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    // 0, or 1 when a timing objective was rated U on a loaded machine (see the SQLite test).
    assert!(matches!(out.status.code(), Some(0 | 1)), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let o = outcome(&report);
    assert!(o["hub"].as_str().unwrap().contains("PostgreSQL"));
    let outcomes: Vec<(&str, &str)> = o["paths"].as_array().unwrap().iter().map(|p| (p["jurisdiction"].as_str().unwrap(), p["outcome"].as_str().unwrap())).collect();
    assert!(outcomes.contains(&("Clark County", "Missed")) && outcomes.iter().filter(|o| o.1 == "Warned").count() == 3, "{outcomes:?}");
}

/// A drill against an existing hub (`ward hub serve`, its own store, a real state already
/// registered): the drill's jurisdictions are named and flagged as drill ones, its states get
/// codes no real state has, the real state hears nothing, and `ward hub drill purge` removes
/// every trace while the real jurisdiction stays.
#[test]
fn against_an_existing_hub_the_drill_is_marked_kept_apart_and_purged() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("hub");
    let data_s = data.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = ward().args(args).output().unwrap();
        assert!(out.status.success(), "ward {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let init = run(&["hub", "init", "--data", data_s]);
    let password = init.split("password ").nth(1).and_then(|s| s.split_whitespace().next()).expect("password in init output").to_string();
    run(&["hub", "jurisdiction", "add", "State of Ohio", "--kind", "state", "--state", "OH", "--data", data_s]);
    let config = tmp.path().join("hub.toml");
    std::fs::write(&config, "[notify]\nallow_targets = [\"127.0.0.1\"]\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    struct Hub(std::process::Child);
    impl Drop for Hub {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _hub = Hub(
        ward()
            .args(["hub", "serve", "--listen", &format!("127.0.0.1:{port}"), "--data", data_s, "--config"])
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "the hub did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let report = tmp.path().join("report");
    let out = ward()
        .args(["drill", "run", "tabletop-5", "--quiet", "--settle", "10", "--hub", &format!("http://127.0.0.1:{port}"), "--user", "analyst", "--report"])
        .arg(&report)
        .env("WARD_DRILL_PASSWORD", &password)
        .output()
        .unwrap();
    assert!(out.status.code().is_some_and(|c| c <= 1), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let o = outcome(&report);
    let adams = o["paths"].as_array().unwrap().iter().find(|p| p["jurisdiction"] == "DRILL tabletop-5: Adams County").expect("the drill's names carry DRILL").clone();
    assert_eq!(adams["outcome"], "Warned", "{adams}");
    let list = run(&["hub", "jurisdiction", "list", "--data", data_s]);
    assert!(list.lines().any(|l| l.contains("DRILL tabletop-5: State of Franklin") && l.contains("XA")), "{list}");
    assert!(list.lines().any(|l| l.contains("State of Ohio") && l.contains("OH") && !l.contains("DRILL")), "{list}");
    // Purge: only the real state is left.
    run(&["hub", "drill", "purge", "--yes", "--data", data_s]);
    let list = run(&["hub", "jurisdiction", "list", "--data", data_s]);
    assert!(!list.contains("DRILL") && list.contains("State of Ohio"), "{list}");
}

/// A disinformation inject goes through the hub's disinformation path: three counties report the
/// same false claim, one case, every county it names and the state warned and measured.
#[test]
fn a_disinformation_inject_is_one_case_and_everyone_named_is_warned() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("rumor.toml");
    std::fs::write(
        &scenario,
        r#"
name = "rumor"
jurisdictions = 6
states = 1
real_sensors = 0
[[inject]]
id = "polling-hours"
attack = "disinformation"
targets = { counties = 3 }
spread_secs = 30
[[objective]]
id = "warn"
text = "Every county named warned within a minute"
metric = "time-to-warn"
threshold_secs = 60
[[objective]]
id = "state"
text = "The state told within five minutes"
metric = "time-to-state"
threshold_secs = 300
"#,
    )
    .unwrap();
    let report = dir.path().join("report");
    let out = ward().args(["drill", "run"]).arg(&scenario).args(["--quiet", "--settle", "10", "--report"]).arg(&report).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let o = outcome(&report);
    let paths = o["paths"].as_array().unwrap();
    assert_eq!(paths.len(), 3, "{paths:?}");
    assert!(paths.iter().all(|p| p["outcome"] == "Warned" && p["warned_ms"].is_i64()), "{paths:?}");
    let cases: std::collections::BTreeSet<i64> = paths.iter().filter_map(|p| p["campaign_id"].as_i64()).collect();
    assert_eq!(cases.len(), 1, "the same claim is one case: {cases:?}");
    let obj = |id: &str| o["objectives"].as_array().unwrap().iter().find(|x| x["id"] == id).unwrap().clone();
    assert_eq!(obj("warn")["rating"], "P", "{}", obj("warn"));
    assert_eq!(obj("state")["rating"], "P", "{}", obj("state"));
}

#[test]
fn an_objective_unable_to_be_performed_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("noack.toml");
    // Nobody acknowledges: the acknowledgement objective is U, and the exit status says so.
    std::fs::write(
        &scenario,
        r#"
name = "no-ack"
jurisdictions = 4
states = 1
real_sensors = 0
escalate_after_mins = 0
[people]
ack_share = 0.0
[[inject]]
id = "scan"
attack = "port-scan"
targets = { counties = 3 }
spread_secs = 10
[[objective]]
id = "warn"
text = "Warned within 5 minutes"
metric = "time-to-warn"
threshold_secs = 300
[[objective]]
id = "ack"
text = "Acknowledged within 10 minutes"
metric = "time-to-ack"
threshold_secs = 600
"#,
    )
    .unwrap();
    let report = dir.path().join("report");
    let out = ward().args(["drill", "run"]).arg(&scenario).args(["--quiet", "--speed", "60", "--settle", "5", "--report"]).arg(&report).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let o = outcome(&report);
    let obj = |id: &str| o["objectives"].as_array().unwrap().iter().find(|x| x["id"] == id).unwrap().clone();
    assert_eq!(obj("warn")["rating"], "P", "{}", obj("warn"));
    assert_eq!(obj("warn")["total"], 3);
    assert_eq!(obj("ack")["rating"], "U", "{}", obj("ack"));
    assert_eq!(o["simulated_relays"], 4);
}

#[test]
fn scenario_errors_say_what_to_do() {
    let out = ward().args(["drill", "run", "no-such-scenario"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2016-scan") && err.contains("tabletop-5"), "{err}");
    let out = ward().args(["drill", "check", "2016-scan", "--jurisdictions", "8800"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("8800 jurisdictions in 50 states") && text.contains("21 targets in 21 states"), "{text}");
    let out = ward().args(["drill", "list"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).lines().count() >= 5);
    let out = ward().args(["drill", "run", "tabletop-5", "--speed", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
