//! Every labelled attack of ward-sim, laid over ordinary office traffic, through the real
//! `ward sensor` with ward-sim's rules, an indicator list and the scan detector: the detector
//! the label names fires, and for attacks the hub should correlate the alert names the actor.
//! This is what `ward drill` scores against, so a label that lies would make every drill lie.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use ward_sim::attack::{self, Attack, AttackKind, Detection, OfficeNet};
use ward_sim::mix::{self, MixWeights, Rng};

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("ward-sim-attacks-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn every_attack_is_detected_as_labelled() {
    let d = dir();
    let rules = d.join("attacks.rules");
    std::fs::write(&rules, attack::RULES).unwrap();
    let indicators = d.join("indicators.txt");
    std::fs::write(&indicators, "phish-vote-verify.example\nc2-update-service.example\n").unwrap();
    let office = OfficeNet::in_24(20, 7);
    for (i, kind) in AttackKind::ALL.into_iter().enumerate() {
        let domain = match kind {
            AttackKind::PhishingLink => "phish-vote-verify.example",
            _ => "c2-update-service.example",
        };
        let actor = [198, 18, 40 + i as u8, 9];
        let pcap = d.join(format!("{}.pcap", kind.name()));
        let opts = mix::Options {
            target_bytes: 256 * 1024,
            seed: 7 + i as u64,
            hosts: 20,
            concurrency: 20,
            weights: MixWeights::parse("http=30,dns=40,tls=28,icmp=2").unwrap(),
            ipv6_share: 0.0,
            vlan_share: 0.0,
            start_us: mix::ELECTION_DAY_US,
        };
        let a_domain = domain.to_string();
        attack::write_capture(&pcap, &opts, |start, end| {
            let a = Attack { kind, actor, domain: a_domain, start_us: (start + end) / 2 };
            attack::frames(&a, &office, &mut Rng::new(i as u64))
        })
        .unwrap();
        let eve = d.join(format!("{}.eve.json", kind.name()));
        let out = Command::new(env!("CARGO_BIN_EXE_ward"))
            .args(["sensor", "--pcap"])
            .arg(&pcap)
            .arg("--rules")
            .arg(&rules)
            .arg("--indicators")
            .arg(&indicators)
            .args(["--set", &format!("HOME_NET=[{}]", office.home_net())])
            .arg("--eve")
            .arg(&eve)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {}", kind.name(), String::from_utf8_lossy(&out.stderr));
        let alerts: Vec<Value> = std::fs::read_to_string(&eve)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["event_type"] == "alert")
            .collect();
        let actor_ip = format!("{}.{}.{}.{}", actor[0], actor[1], actor[2], actor[3]);
        let fired: Vec<&Value> = alerts
            .iter()
            .filter(|a| match kind.detection() {
                Detection::ScanDetector => a["alert"]["gid"] == 9001,
                Detection::Rule(sid) => a["alert"]["signature_id"] == sid,
                Detection::Indicator => a["alert"]["gid"] == 9000,
                Detection::Nothing => false,
            })
            .collect();
        let sigs: Vec<&Value> = alerts.iter().map(|a| &a["alert"]["signature"]).collect();
        if kind.detection() == Detection::Nothing {
            assert!(
                !alerts.iter().any(|a| a["src_ip"] == actor_ip.as_str() || a["dest_ip"] == actor_ip.as_str()),
                "{}: nothing should fire, got {sigs:?}",
                kind.name()
            );
            continue;
        }
        assert!(!fired.is_empty(), "{}: expected {:?}, alerts were {sigs:?}", kind.name(), kind.detection());
        if kind.sighting() {
            // DDoS bots share the actor's /24; every other attack comes from the actor itself.
            let prefix = format!("{}.{}.{}.", actor[0], actor[1], actor[2]);
            assert!(
                fired.iter().any(|a| a["src_ip"].as_str().unwrap_or("").starts_with(&prefix) || a["dest_ip"].as_str().unwrap_or("").starts_with(&prefix)),
                "{}: the alert must name the actor {actor_ip}: {fired:?}",
                kind.name()
            );
        }
        let expected = attack::expected_signature(&Attack { kind, actor, domain: domain.into(), start_us: 0 }, &office).unwrap();
        assert!(
            fired.iter().any(|a| a["alert"]["signature"].as_str().unwrap_or("").starts_with(expected.split(" in ").next().unwrap())),
            "{}: simulated relays would report {expected:?}, the sensor wrote {sigs:?}",
            kind.name()
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}
