//! Low: the spool's summary counts dropped records; under the cap the least valuable records go first.
//!
//! A spool already at its cap (old alerts, then flow records) meets a run of the real `ward
//! sensor` whose hub is down: the run's alerts push out the flow records, never the old alerts,
//! and the summary on stderr and the EVE `stats` record say how many records were dropped, of
//! which kind, and why. A cap below the 16 MiB minimum is refused with the reason, from the
//! command line and from a service file.

use std::path::Path;
use std::process::Command;

use ward_sensor::relay::SensorCredential;
use ward_sensor::spool::{ReadLimit, Spool, SpoolConfig};

use super::spool_tail_on_kill::{write_every_packet_rule, write_udp_pcap, WARD};

/// A credential for a hub that is not there (a loopback port nothing listens on).
fn credential_of_a_hub_that_is_down(path: &Path) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cred = SensorCredential {
        hub_url: format!("http://127.0.0.1:{port}"),
        sensor_id: 7,
        jurisdiction_id: Some(1),
        credential: "wsc_test".into(),
        ca_file: None,
    };
    cred.save(path).unwrap();
}

#[test]
fn spool_cap_below_the_minimum_is_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let pcap = tmp.path().join("p.pcap");
    write_udp_pcap(&pcap, 10, 1);
    let cred = tmp.path().join("credential.json");
    credential_of_a_hub_that_is_down(&cred);
    let out = Command::new(WARD)
        .args(["sensor", "--quiet", "--spool-max-mib", "8", "--eve", "/dev/null", "--pcap"])
        .arg(&pcap)
        .arg("--hub-credential")
        .arg(&cred)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a spool cap of 8 MiB must be refused");
    assert!(stderr.contains("at least 16"), "the error must name the minimum: {stderr}");

    let config = tmp.path().join("sensor.toml");
    std::fs::write(
        &config,
        format!("pcap = [{:?}]\neve = \"/dev/null\"\nhub_credential = {:?}\nspool_max_mib = 8\n", pcap.display().to_string(), cred.display().to_string()),
    )
    .unwrap();
    let out = Command::new(WARD).args(["sensor", "run", "--config"]).arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a spool cap of 8 MiB in a service file must be refused");
    assert!(stderr.contains("at least 16"), "the error must name the minimum: {stderr}");
}

/// The numbers after `label` in `text`, e.g. `12 metadata` → 12 for label `metadata`.
fn count_before(text: &str, label: &str) -> Option<u64> {
    let at = text.find(&format!(" {label}"))?;
    text[..at].rsplit(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

#[test]
fn summary_and_stats_record_report_what_the_cap_dropped_by_value() {
    let tmp = tempfile::tempdir().unwrap();
    let spool_dir = tmp.path().join("spool");
    // The spool is at its 16 MiB cap: 300 old alerts, then flow records.
    let old_alerts = 300;
    {
        let spool = Spool::open(&spool_dir, SpoolConfig::default()).unwrap();
        for n in 0..old_alerts {
            let line = serde_json::json!({"event_type": "alert", "n": n, "alert": {"signature_id": 1, "signature": "old alert"}, "pad": "a".repeat(500)});
            spool.append(line.to_string().as_bytes()).unwrap();
        }
        let mut n = 0;
        while spool.stats().disk_bytes < 16 * 1024 * 1024 {
            let line = serde_json::json!({"event_type": "flow", "n": n, "pad": "f".repeat(2000)});
            spool.append(line.to_string().as_bytes()).unwrap();
            n += 1;
        }
    }
    let pcap = tmp.path().join("every-packet.pcap");
    write_udp_pcap(&pcap, 3000, 20);
    let rules = tmp.path().join("every-packet.rules");
    write_every_packet_rule(&rules, 42);
    let cred = tmp.path().join("credential.json");
    credential_of_a_hub_that_is_down(&cred);
    let eve = tmp.path().join("eve.json");
    let out = Command::new(WARD)
        .args(["sensor", "--quiet", "--workers", "1", "--no-scan-detect", "--reload-interval", "0", "--spool-max-mib", "16", "--pcap"])
        .arg(&pcap)
        .arg("--rules")
        .arg(&rules)
        .arg("--hub-credential")
        .arg(&cred)
        .arg("--spool")
        .arg(&spool_dir)
        .arg("--eve")
        .arg(&eve)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sensor failed: {stderr}");

    // The summary names the drops, their reason and their kind.
    let line = stderr.lines().find(|l| l.starts_with("hub: spool dropped")).unwrap_or_else(|| panic!("no spool drop summary:\n{stderr}"));
    assert!(line.contains("size cap of 16 MiB"), "{line}");
    let metadata = count_before(line, "flow/dns/http/tls/stats/contact").unwrap_or_else(|| panic!("{line}"));
    assert!(metadata > 0, "{line}");
    assert_eq!(count_before(line, "anomalies"), Some(0), "{line}");
    assert_eq!(count_before(line, "alerts"), Some(0), "{line}");

    // So does the EVE stats record.
    let text = std::fs::read_to_string(&eve).unwrap();
    let stats: serde_json::Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event_type"] == "stats")
        .expect("a stats record");
    let dropped = &stats["stats"]["spool"]["dropped"];
    assert!(dropped["size_cap"]["metadata"].as_u64().unwrap_or(0) > 0, "{}", stats["stats"]["spool"]);
    assert_eq!(dropped["size_cap"]["alert"], 0, "{}", stats["stats"]["spool"]);

    // Every old alert is still in the spool, and so is every alert of the run.
    let spool = Spool::open(&spool_dir, SpoolConfig::default()).unwrap();
    let records = spool.read(ReadLimit::records(usize::MAX)).unwrap();
    let values: Vec<serde_json::Value> = records.iter().map(|r| serde_json::from_slice(&r.payload).unwrap()).collect();
    let kept_old = values.iter().filter(|v| v["event_type"] == "alert" && v["alert"]["signature"] == "old alert").count();
    let kept_new = values.iter().filter(|v| v["event_type"] == "alert" && v["alert"]["signature_id"] == 42).count();
    let run_alerts = text.lines().filter(|l| l.contains("\"event_type\":\"alert\"")).count();
    assert_eq!(kept_old, old_alerts, "old alerts were dropped while flow records were kept");
    assert_eq!(kept_new, run_alerts, "the run's alerts must all be spooled");
    assert!(spool.stats().disk_bytes <= 16 * 1024 * 1024);
}
