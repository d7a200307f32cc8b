//! High 2: SIGHUP reloads, SIGINT/SIGTERM stop cleanly, on a live capture and on a pcap.
//!
//! The sensor used to stop on SIGHUP (exit 0, the capture cut short): the `ctrlc` crate's
//! termination handler took SIGHUP over from the reload handler. Now one place handles the
//! process's signals (`ward_sensor::signals`).

use std::process::Command;

use crate::sensor_support::*;

/// A SYN rule alerts once per matching packet whatever the per-flow state, so a reload (which
/// starts each flow's rule state afresh) cannot change what it reports.
const SYN_RULE: &str = "alert tcp any any -> any any (msg:\"ward test syn\"; flags:S; sid:1; rev:1;)\n";

fn sensor(pcap: &std::path::Path, rules: &std::path::Path, eve: &std::path::Path) -> Command {
    let mut cmd = Command::new(WARD);
    cmd.args(["sensor", "--quiet", "--workers", "2", "--reload-interval", "0", "--pcap"])
        .arg(pcap)
        .arg("--rules")
        .arg(rules)
        .arg("--eve")
        .arg(eve);
    cmd
}

#[test]
fn a_pcap_run_reloads_on_sighup_and_still_reads_every_packet() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("local.rules");
    std::fs::write(&rules, SYN_RULE).unwrap();
    let capture = shared("pcaps/zeek/http/methods.pcap");

    // The same capture without signals.
    let reference = tmp.path().join("reference.json");
    let mut run = Ward::spawn(sensor(&capture, &rules, &reference));
    assert!(run.wait().success(), "{}", run.stderr());
    let expected = eve_records(&reference);
    assert!(crate::sensor_support::alerts_of(&expected, 1) > 10, "the capture has SYNs for the rule");

    // Through a pipe, so the signals land while the capture is being read, for certain.
    let pcap = Pcap::read(&capture);
    let mut feeder = PipeFeeder::create(tmp.path(), "capture.pcap");
    let eve = tmp.path().join("eve.json");
    let mut run = Ward::spawn(sensor(&feeder.path, &rules, &eve));
    run.wait_for("ward: rules:", 1); // signals are handled from here on
    let chunks = pcap.chunks(3);
    feeder.feed(pcap.header.clone());
    feeder.feed(chunks[0].clone());
    run.signal(SIGHUP);
    run.wait_for("reloaded:", 1);
    feeder.feed(chunks[1].clone());
    run.signal(SIGHUP);
    run.wait_for("reloaded:", 2);
    assert!(run.running(), "SIGHUP must not stop the sensor");
    feeder.feed(chunks[2].clone());
    feeder.close();
    let status = run.wait();
    assert!(status.success(), "exit {status}; stderr:\n{}", run.stderr());

    let got = eve_records(&eve);
    assert_eq!(comparable(&got), comparable(&expected), "a run that got SIGHUP twice must write what a run without signals writes");
    let engine = engine_records(&got);
    assert_eq!(engine.len(), 2, "one engine record per reload: {engine:?}");
    assert!(engine.iter().all(|r| r["log_level"] == "Info" && r["engine"]["message"].as_str().unwrap().starts_with("rules reloaded")));
    assert!(run.stderr().contains("reloads 2, refused 0"), "{}", run.stderr());
}

#[test]
fn a_pcap_run_stops_cleanly_on_sigterm_and_sigint() {
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("local.rules");
    std::fs::write(&rules, SYN_RULE).unwrap();
    // A directory of many captures, long enough that the signal arrives while it is read.
    let captures = tmp.path().join("captures");
    std::fs::create_dir(&captures).unwrap();
    let capture = shared("pcaps/zeek/http/methods.pcap");
    const COPIES: usize = 400;
    for i in 0..COPIES {
        std::os::unix::fs::symlink(&capture, captures.join(format!("{i:04}.pcap"))).unwrap();
    }
    let total_packets = COPIES * Pcap::read(&capture).records.len();
    for (sig, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
        let eve = tmp.path().join(format!("{name}.json"));
        let mut run = Ward::spawn(sensor(&captures, &rules, &eve));
        run.wait_for("ward: rules:", 1);
        run.signal(sig);
        let status = run.wait();
        assert_eq!(status.code(), Some(0), "{name}: a clean stop exits 0; stderr:\n{}", run.stderr());
        // Flushed: every line whole, the stats record last, the counters printed.
        let records = eve_records(&eve);
        assert_eq!(records.last().map(|r| r["event_type"].clone()), Some("stats".into()), "{name}: the stats record ends the output");
        let stderr = run.stderr();
        let packets: usize = stderr
            .split("packets ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no counters printed:\n{stderr}"));
        assert!(packets < total_packets, "{name}: the run stopped early ({packets} of {total_packets} packets)");
    }
}

/// Live capture in a pair of network namespaces: SIGHUP reloads (a rule added to the file
/// fires on traffic after it) and capture goes on; SIGTERM, and in a second run SIGINT, stop
/// the sensor with exit status 0 and a complete EVE file.
#[test]
fn a_live_capture_reloads_on_sighup_and_stops_cleanly_on_sigterm_and_sigint() {
    if !is_root() {
        eprintln!("skipped: live capture needs root (network namespaces and AF_PACKET)");
        return;
    }
    let ns = Netns::create("hu");
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("local.rules");
    let before = "alert udp any any -> any any (msg:\"before reload\"; content:\"ward-before\"; sid:1; rev:1;)\n";
    let after = "alert udp any any -> any any (msg:\"after reload\"; content:\"ward-after\"; sid:2; rev:1;)\n";
    std::fs::write(&rules, before).unwrap();
    let live = |eve: &std::path::Path| {
        let mut cmd = ns.exec(0, WARD);
        cmd.args(["sensor", "--quiet", "--workers", "1", "--reload-interval", "0", "--interface", &ns.ifaces[0], "--rules"])
            .arg(&rules)
            .arg("--eve")
            .arg(eve);
        Ward::spawn(cmd)
    };

    let eve = tmp.path().join("sigterm.json");
    let mut run = live(&eve);
    run.wait_for("ward: rules:", 1);
    ns.python(1, UDP_SENDER, &["ward-before", "10"]);
    std::fs::write(&rules, format!("{before}{after}")).unwrap();
    run.signal(SIGHUP);
    run.wait_for("reloaded:", 1);
    ns.python(1, UDP_SENDER, &["ward-after", "25"]);
    assert!(run.running(), "SIGHUP must not stop a live sensor; stderr:\n{}", run.stderr());
    run.signal(SIGTERM);
    let status = run.wait();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop; stderr:\n{}", run.stderr());
    let records = eve_records(&eve);
    assert!(alerts_of(&records, 2) > 0, "the rule loaded by SIGHUP saw the traffic after it; stderr:\n{}", run.stderr());
    assert!(engine_records(&records).iter().any(|r| r["engine"]["message"].as_str().unwrap_or("").starts_with("rules reloaded")));
    assert_eq!(records.last().map(|r| r["event_type"].clone()), Some("stats".into()), "flushed up to the stats record");

    let eve = tmp.path().join("sigint.json");
    let mut run = live(&eve);
    run.wait_for("ward: rules:", 1);
    ns.python(1, UDP_SENDER, &["ward-after", "25"]);
    run.signal(SIGINT);
    let status = run.wait();
    assert_eq!(status.code(), Some(0), "SIGINT is a clean stop; stderr:\n{}", run.stderr());
    let records = eve_records(&eve);
    assert!(
        records.iter().any(|r| r["event_type"] == "flow" && r["dest_port"] == 9999),
        "the open flow was logged at the stop: {records:?}"
    );
    assert_eq!(records.last().map(|r| r["event_type"].clone()), Some("stats".into()));
}
