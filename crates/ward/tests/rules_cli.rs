//! The detection surface of the `ward` binary: `ward rules check` and `ward sensor --rules`.

use std::path::PathBuf;
use std::process::Command;

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

fn ward() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ward"))
}

#[test]
fn rules_check_loads_at_least_95_percent_of_et_open() {
    let out = ward().args(["rules", "check", "--json"]).arg(data().join("et-open/emerging-all.rules")).output().unwrap();
    // Some ET rules are skipped (exit status 1), none is fatal.
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let pct = v["loaded_percent"].as_f64().unwrap();
    assert!(pct >= 95.0, "only {pct}% loaded");
    assert!(v["total"].as_u64().unwrap() > 25_000);
    assert!(v["load_seconds"].as_f64().is_some());
    assert!(v["peak_rss_kb"].as_u64().is_some());
    let by_kw = v["skipped_by_keyword"].as_array().unwrap();
    assert!(!by_kw.is_empty() && by_kw.iter().all(|k| k["keyword"].is_string() && k["count"].as_u64() > Some(0)));

    // The text form names skipped rules with file, line and sid.
    let out = ward().args(["rules", "check"]).arg(data().join("et-open/emerging-all.rules")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("rules loaded") && text.contains("skipped by keyword:") && text.contains("sid "), "{text}");
}

#[test]
fn rules_check_reports_bad_rules_and_bad_variables() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("local.rules");
    std::fs::write(
        &f,
        "alert tcp $HOME_NET any -> any 80 (msg:\"ok\"; content:\"x\"; sid:1;)\n\
         alert tcp any any -> any any (msg:\"bad\"; frobnicate:3; sid:2;)\n\
         alert tcp $NOPE any -> any any (msg:\"var\"; sid:3;)\n",
    )
    .unwrap();
    let out = ward().args(["rules", "check", "--json"]).arg(&f).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["loaded"], 1);
    assert_eq!(v["skipped"], 2);
    let out = ward().args(["rules", "check", "--json", "--set", "NOPE=[10.0.0.0/8]"]).arg(&f).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["loaded"], 2);
    let out = ward().args(["rules", "check"]).arg(dir.path().join("missing.rules")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sensor_help_explains_the_detection_options() {
    let out = ward().args(["sensor", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--rules",
        "--set",
        "--indicators",
        "--no-scan-detect",
        "--reload-interval",
        "SIGHUP",
        "classification.config",
        "--pcre-match-limit",
        "--pcre-depth-limit",
    ] {
        assert!(help.contains(opt), "--help does not mention {opt}");
    }
}

#[test]
fn sensor_with_et_rules_writes_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let eve = dir.path().join("eve.json");
    let out = ward()
        .args(["sensor", "-q", "--workers", "2", "--pcap"])
        .arg(data().join("pcaps/zeek/irc-basic.pcap"))
        .arg("--rules")
        .arg(data().join("et-open/emerging-all.rules"))
        .args(["--set", "HOME_NET=[192.168.0.0/16]", "--eve"])
        .arg(&eve)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rules: "), "no load summary");
    let text = std::fs::read_to_string(&eve).unwrap();
    let alerts: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).filter(|r| r["event_type"] == "alert").collect();
    let sids: Vec<u64> = alerts.iter().filter_map(|a| a["alert"]["signature_id"].as_u64()).collect();
    assert!(sids.contains(&2002024), "IRC NICK not alerted: {sids:?}");
    // A bad --set is refused before any packet is read.
    let out = ward()
        .args(["sensor", "-q", "--pcap"])
        .arg(data().join("pcaps/zeek/irc-basic.pcap"))
        .args(["--set", "HOME_NET", "--eve", "/dev/null"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// `--alert-fields` adds Suricata's optional alert fields, `--summary-json` prints the run's
/// summary on stdout, and unknown field names and a summary on the EVE stream are refused.
#[test]
fn sensor_alert_fields_and_summary_json() {
    let dir = tempfile::tempdir().unwrap();
    let eve = dir.path().join("eve.json");
    let out = ward()
        .args(["sensor", "-q", "--workers", "1", "--pcap"])
        .arg(data().join("pcaps/zeek/irc-basic.pcap"))
        .arg("--rules")
        .arg(data().join("et-open/emerging-all.rules"))
        .args(["--set", "HOME_NET=[192.168.0.0/16]", "--alert-fields", "payload,payload-printable,packet", "--summary-json", "--eve"])
        .arg(&eve)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert!(summary["packets"].as_u64().unwrap() > 0, "{summary}");
    assert!(summary["load_s"].as_f64().unwrap() > 0.0 && summary["processing_s"].as_f64().is_some(), "{summary}");
    let text = std::fs::read_to_string(&eve).unwrap();
    let alert = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["event_type"] == "alert")
        .expect("an alert");
    for field in ["payload", "payload_printable", "packet", "packet_info"] {
        assert!(alert.get(field).is_some(), "alert lacks {field}: {alert}");
    }
    for bad in [&["--alert-fields", "bogus"][..], &["--summary-json", "--eve", "-"][..]] {
        let out = ward().args(["sensor", "-q", "--pcap"]).arg(data().join("pcaps/zeek/irc-basic.pcap")).args(bad).output().unwrap();
        assert!(!out.status.success(), "{bad:?} accepted");
    }
}

/// `--pcre-match-limit`/`--pcre-depth-limit` reach the engine: a catastrophic pcre on real
/// traffic stops at the limit, `--summary-json` counts it, the EVE output names the rule in a
/// `pcre_limit_exceeded` anomaly, and a limit of 0 is refused.
#[test]
fn sensor_pcre_limits_are_options_and_their_hits_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("nested.rules");
    // `(.+)+` before a class of bytes IRC text never has (a class, so PCRE2 cannot rule the
    // subject out by a required byte): every search backtracks until the limit.
    std::fs::write(&rules, "alert tcp any any -> any any (msg:\"nested\"; pcre:\"/(.+)+[\\x00\\x01]/s\"; sid:4000001; rev:1;)\n").unwrap();
    let eve = dir.path().join("eve.json");
    let run = |extra: &[&str]| {
        ward()
            .args(["sensor", "-q", "--workers", "1", "--summary-json", "--pcap"])
            .arg(data().join("pcaps/zeek/irc-basic.pcap"))
            .arg("--rules")
            .arg(&rules)
            .arg("--eve")
            .arg(&eve)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&["--pcre-match-limit", "3500", "--pcre-depth-limit", "1500"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    let hits = summary["pcre_limit_hits"].as_u64().expect("pcre_limit_hits in the summary");
    assert!(hits > 0, "{summary}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("pcre limit hits {hits}")));
    let anomaly = std::fs::read_to_string(&eve)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["event_type"] == "anomaly" && r["anomaly"]["event"] == "pcre_limit_exceeded")
        .expect("a pcre_limit_exceeded anomaly");
    assert_eq!(anomaly["anomaly"]["code"], 4000001);
    for zero in ["--pcre-match-limit", "--pcre-depth-limit"] {
        let out = run(&[zero, "0"]);
        assert_eq!(out.status.code(), Some(2), "{zero} 0 accepted");
        assert!(String::from_utf8_lossy(&out.stderr).contains("must be at least 1"));
    }
}
