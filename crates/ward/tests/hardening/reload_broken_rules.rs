//! Medium 9: a reload that would lose rules or load half-parsed rules keeps the old set and says so.
//!
//! An emptied rules file used to swap in 0 rules (with only a WARN), and a rule missing one `;`
//! loaded without the option it swallowed and fired on every packet. Now such a reload is
//! refused: the running rules stay, the refusal is logged at ERROR, counted in the run's
//! counters, and written as an EVE `engine` record that the hub shows as the sensor's health.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::sensor_support::*;

/// Twenty rules: one that alerts on every SYN (stateless, so its count does not depend on when
/// a reload happens) and nineteen that never match.
fn running_rules() -> String {
    let mut rules = String::from("alert tcp any any -> any any (msg:\"ward test syn\"; flags:S; sid:1; rev:1;)\n");
    for sid in 101..120 {
        rules.push_str(&format!("alert tcp any any -> any any (msg:\"never {sid}\"; content:\"ward-no-such-bytes-{sid}\"; sid:{sid}; rev:1;)\n"));
    }
    rules
}

/// A rule whose `msg` swallowed its `content` (the `;` between them is missing): it used to
/// load with no condition at all and alert on every TCP packet.
const SWALLOWED_CONTENT: &str = "alert tcp any any -> any any (msg:\"every packet\" content:\"ward-no-such-bytes\"; sid:3; rev:1;)\n";
/// The example of the issue: `content:"abc" sid:2` without the `;` after the content.
const MISSING_SEMICOLON: &str = "alert tcp any any -> any any (msg:\"x\"; content:\"abc\" sid:2;)\n";
/// Alerts on every SYN-ACK: the rule a valid reload adds.
const ADDED_RULE: &str = "alert tcp any any -> any any (msg:\"ward test syn-ack\"; flags:SA; sid:9; rev:1;)\n";

fn sensor(pcap: &Path, rules: &Path, eve: &Path) -> Command {
    let mut cmd = Command::new(WARD);
    cmd.args(["sensor", "--quiet", "--workers", "2", "--reload-interval", "0", "--pcap"])
        .arg(pcap)
        .arg("--rules")
        .arg(rules)
        .arg("--eve")
        .arg(eve);
    cmd
}

fn messages(records: &[Value], level: &str) -> Vec<String> {
    engine_records(records)
        .into_iter()
        .filter(|r| r["log_level"] == level && r["engine"]["module"] == "detect-reload")
        .map(|r| r["engine"]["message"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_rule_missing_a_semicolon_is_skipped_at_start_not_loaded_without_its_content() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("local.rules");
    std::fs::write(&rules, format!("{}{SWALLOWED_CONTENT}{MISSING_SEMICOLON}", running_rules())).unwrap();
    let out = Command::new(WARD).args(["rules", "check", "--json"]).arg(&rules).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(report["loaded"], 20, "{report}");
    assert_eq!(report["skipped"], 2, "{report}");
    let skipped = report["skipped_rules"].as_array().unwrap();
    for sid in [2, 3] {
        let rule = skipped.iter().find(|r| r["sid"] == sid).unwrap_or_else(|| panic!("sid {sid} not skipped: {report}"));
        assert_eq!(rule["keyword"], "syntax", "{rule}");
        assert!(rule["message"].as_str().unwrap().contains("is a `;` missing?"), "{rule}");
    }
}

/// Through one pcap run fed piece by piece: an emptied file, rules missing a `;` and a file
/// that lost a quarter of its rules are each refused, and the packets read after each refusal
/// are inspected by the running rules; then a valid change is swapped in.
#[test]
fn broken_reloads_keep_the_running_rules_and_say_so_and_a_valid_one_still_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("local.rules");
    std::fs::write(&rules, running_rules()).unwrap();
    let capture = shared("pcaps/zeek/http/methods.pcap");

    let reference = tmp.path().join("reference.json");
    let mut run = Ward::spawn(sensor(&capture, &rules, &reference));
    assert!(run.wait().success(), "{}", run.stderr());
    let syns = alerts_of(&eve_records(&reference), 1);
    assert!(syns > 10);

    let pcap = Pcap::read(&capture);
    let chunks = pcap.chunks(5);
    let mut feeder = PipeFeeder::create(tmp.path(), "capture.pcap");
    let eve = tmp.path().join("eve.json");
    let mut run = Ward::spawn(sensor(&feeder.path, &rules, &eve));
    run.wait_for("ward: rules: 20 of 20 loaded", 1);
    feeder.feed(pcap.header.clone());
    feeder.feed(chunks[0].clone());

    let lost_a_quarter: String = running_rules().lines().take(15).map(|l| format!("{l}\n")).collect();
    let broken = [
        String::new(),
        format!("{}{SWALLOWED_CONTENT}{MISSING_SEMICOLON}", running_rules()),
        lost_a_quarter,
    ];
    for (n, text) in broken.iter().enumerate() {
        std::fs::write(&rules, text).unwrap();
        run.signal(SIGHUP);
        run.wait_for("rules reload refused", n + 1);
        feeder.feed(chunks[n + 1].clone());
    }
    std::fs::write(&rules, format!("{}{ADDED_RULE}", running_rules())).unwrap();
    run.signal(SIGHUP);
    run.wait_for("reloaded:", 1);
    feeder.feed(chunks[4].clone());
    feeder.close();
    let status = run.wait();
    let stderr = run.stderr();
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");

    // Said loudly: ERROR lines with the reason, the counters at exit.
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("ERROR") && l.contains("rules reload refused")).collect();
    assert_eq!(errors.len(), 3, "{stderr}");
    assert!(errors[0].contains("the new rule set has 0 rules, 20 fewer than the 20 running"), "{}", errors[0]);
    assert!(errors[1].contains("2 rules did not parse completely") && errors[1].contains("sid 3") && errors[1].contains("sid 2"), "{}", errors[1]);
    assert!(errors[2].contains("15 rules, 5 fewer than the 20 running (25.0% lost"), "{}", errors[2]);
    assert!(stderr.contains("rules: 21 running, 0 failed to load  reloads 4, refused 3"), "{stderr}");

    // The EVE output: an engine record per reload, and the running rules did their work.
    let records = eve_records(&eve);
    let refused = messages(&records, "Error");
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(refused.iter().all(|m| m.starts_with("rules reload refused: ")), "{refused:?}");
    assert_eq!(messages(&records, "Info"), ["rules reloaded: 21 of 21 rules loaded, 0 skipped"]);
    assert_eq!(alerts_of(&records, 1), syns, "the SYN rule ran through every refusal");
    assert_eq!(alerts_of(&records, 3), 0, "the rule without its content never ran");
    assert!(alerts_of(&records, 9) > 0, "the valid reload's new rule saw the packets after it");
}

/// The refusal reaches the hub through the relay, which shows it as the sensor's health until
/// an accepted reload.
#[test]
fn a_refused_reload_is_the_sensors_health_at_the_hub() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("hub");
    let data_s = data.to_str().unwrap();
    let hub_cmd = |args: &[&str]| {
        let out = Command::new(WARD).args(args).output().unwrap();
        assert!(out.status.success(), "ward {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let init = hub_cmd(&["hub", "init", "--data", data_s]);
    let password = init.split("password ").nth(1).and_then(|s| s.split_whitespace().next()).expect("password").to_string();
    hub_cmd(&["hub", "jurisdiction", "add", "Adams County", "--kind", "county", "--state", "FR", "--data", data_s]);
    let token = hub_cmd(&["hub", "sensor", "token", "Adams County", "--data", data_s]).trim().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut hub = Command::new(WARD);
    hub.args(["hub", "serve", "--listen", &format!("127.0.0.1:{port}"), "--data", data_s]);
    let _hub = Ward::spawn(hub);
    let deadline = Instant::now() + PATIENCE;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the hub did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    let cred = tmp.path().join("sensor/credential.json");
    let url = format!("http://127.0.0.1:{port}");
    hub_cmd(&["sensor", "enroll", "--hub", &url, "--token", &token, "--name", "adams-1", "--credential", cred.to_str().unwrap()]);

    let rules = tmp.path().join("local.rules");
    let pcap = Pcap::read(&shared("pcaps/zeek/http/methods.pcap"));
    // One run with a reload: `rules` is what the file holds at the SIGHUP; returns its stderr.
    let run_with_reload = |name: &str, rules_at_reload: &str, outcome: &str| {
        std::fs::write(&rules, running_rules()).unwrap();
        let mut feeder = PipeFeeder::create(tmp.path(), name);
        let mut cmd = sensor(&feeder.path, &rules, Path::new("/dev/null"));
        cmd.arg("--hub-credential").arg(&cred);
        let mut run = Ward::spawn(cmd);
        run.wait_for("ward: rules:", 1);
        feeder.feed(pcap.header.clone());
        feeder.feed(pcap.slice(0, 10));
        std::fs::write(&rules, rules_at_reload).unwrap();
        run.signal(SIGHUP);
        run.wait_for(outcome, 1);
        feeder.close();
        let status = run.wait();
        assert!(status.success(), "{}", run.stderr());
    };
    let health = || -> Value {
        let sensors = hub_get(port, &password, "/api/v1/jurisdictions");
        let adams = sensors.as_array().unwrap().iter().find(|j| j["name"] == "Adams County").expect("jurisdiction")["id"].clone();
        let list = hub_get(port, &password, &format!("/api/v1/jurisdictions/{adams}/sensors"));
        list[0]["health"].clone()
    };

    run_with_reload("empty.pcap", "", "rules reload refused");
    let h = health();
    let text = h.as_str().unwrap_or_else(|| panic!("no health flag at the hub: {h}"));
    assert!(text.starts_with("rules reload refused at 20"), "{text}");
    assert!(text.ends_with("send SIGUSR1 to load it anyway") && text.contains("0 rules, 20 fewer than the 20 running"), "{text}");

    run_with_reload("fixed.pcap", &format!("{}{ADDED_RULE}", running_rules()), "reloaded:");
    assert_eq!(health(), Value::Null, "an accepted reload clears the flag");
}

/// GET `path` on the hub as the analyst.
fn hub_get(port: u16, password: &str, path: &str) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    ward_hub::server::install_crypto_provider();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let login: Value = client
            .post(format!("{base}/api/v1/login"))
            .json(&serde_json::json!({"username": "analyst", "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["token"].as_str().expect("login token").to_string();
        client.get(format!("{base}{path}")).bearer_auth(token).send().await.unwrap().json().await.unwrap()
    })
}
