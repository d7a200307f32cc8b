//! Conformance against Suricata 8.0.6 on Zeek's capture corpus.
//!
//! For every capture Suricata could read (`oracle/zeek-index.tsv`, status `ok`), the sensor runs
//! alone over it, and its EVE records are compared with Suricata's on:
//!
//! | record | compared key |
//! |---|---|
//! | dns  | request/response, rrname, rrtype of every query |
//! | http | hostname, url, status |
//! | tls  | sni |
//! | flow | proto, src ip/port, dest ip/port, pkts_toserver, pkts_toclient |
//!
//! Keys are compared as multisets per capture. Agreement for a record type is
//! `matched / max(ours, suricata)` over the whole corpus, so both misses and extras count
//! against it. The test asserts ≥ 98% for each type, writes the full report (with every
//! difference) to `target/conformance/report.md`, and every schema violation fails it too.
//! The remaining differences are explained in docs/conformance.md.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::Value;

/// The floor the issue sets for every record type.
const AGREEMENT_FLOOR: f64 = 0.98;

#[derive(Default)]
struct Tally {
    ours: usize,
    theirs: usize,
    matched: usize,
    /// (capture, key, ours, theirs) for every key whose counts differ.
    diffs: Vec<(String, String, usize, usize)>,
}

impl Tally {
    fn agreement(&self) -> f64 {
        let denom = self.ours.max(self.theirs);
        if denom == 0 {
            1.0
        } else {
            self.matched as f64 / denom as f64
        }
    }
}

fn keys_of(records: &[Value]) -> BTreeMap<&'static str, BTreeMap<String, usize>> {
    let mut out: BTreeMap<&'static str, BTreeMap<String, usize>> = BTreeMap::new();
    for r in records {
        let s = |v: &Value| match v {
            Value::Null => "-".to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match r["event_type"].as_str() {
            Some("dns") => {
                let d = &r["dns"];
                if let Some(queries) = d["queries"].as_array() {
                    for q in queries {
                        let key = format!("{} {} {}", s(&d["type"]), s(&q["rrname"]), s(&q["rrtype"]));
                        *out.entry("dns").or_default().entry(key).or_default() += 1;
                    }
                }
            }
            Some("http") => {
                let h = &r["http"];
                let key = format!("{} {} {}", s(&h["hostname"]), s(&h["url"]), s(&h["status"]));
                *out.entry("http").or_default().entry(key).or_default() += 1;
            }
            Some("tls") => {
                let key = s(&r["tls"]["sni"]);
                *out.entry("tls").or_default().entry(key).or_default() += 1;
            }
            Some("flow") => {
                let f = &r["flow"];
                let key = format!(
                    "{} {}:{} -> {}:{} pkts {}/{}",
                    s(&r["proto"]),
                    s(&r["src_ip"]),
                    s(&r["src_port"]),
                    s(&r["dest_ip"]),
                    s(&r["dest_port"]),
                    s(&f["pkts_toserver"]),
                    s(&f["pkts_toclient"])
                );
                *out.entry("flow").or_default().entry(key).or_default() += 1;
            }
            _ => {}
        }
    }
    out
}

fn oracle_captures() -> Vec<(String, PathBuf, PathBuf)> {
    let data = common::shared_data();
    let index = std::fs::read_to_string(data.join("oracle/zeek-index.tsv")).expect("oracle index");
    index
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            (cols.get(1) == Some(&"ok")).then(|| {
                (
                    cols[0].to_string(),
                    data.join("pcaps/zeek").join(cols[0]),
                    data.join("oracle").join(cols[8]),
                )
            })
        })
        .collect()
}

#[test]
fn zeek_corpus_agrees_with_suricata_and_validates_against_the_eve_schema() {
    let data = common::shared_data();
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("suricata/eve-schema.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("eve schema compiles");

    let captures = oracle_captures();
    assert!(captures.len() > 700, "oracle index lists {} captures", captures.len());
    let mut tallies: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut schema_errors = Vec::new();
    let mut records_checked = 0usize;
    for (name, pcap, oracle) in &captures {
        let (ours, _summary) = common::run_capture(pcap, 1);
        for record in &ours {
            records_checked += 1;
            if let Err(err) = validator.validate(record) {
                if schema_errors.len() < 50 {
                    schema_errors.push(format!("{name}: {err} in {record}"));
                }
            }
        }
        let theirs: Vec<Value> = std::fs::read_to_string(oracle)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let (ours_keys, theirs_keys) = (keys_of(&ours), keys_of(&theirs));
        for kind in ["dns", "http", "tls", "flow"] {
            let tally = tallies.entry(kind).or_default();
            let empty = BTreeMap::new();
            let a = ours_keys.get(kind).unwrap_or(&empty);
            let b = theirs_keys.get(kind).unwrap_or(&empty);
            for (key, &n) in a {
                tally.ours += n;
                let m = b.get(key).copied().unwrap_or(0);
                tally.matched += n.min(m);
                if n != m {
                    tally.diffs.push((name.clone(), key.clone(), n, m));
                }
            }
            for (key, &m) in b {
                tally.theirs += m;
                if !a.contains_key(key) {
                    tally.diffs.push((name.clone(), key.clone(), 0, m));
                }
            }
        }
    }

    let mut report = String::from("# ward vs Suricata 8.0.6 on the Zeek corpus\n\n");
    let _ = writeln!(report, "{} captures, {} ward records schema-checked\n", captures.len(), records_checked);
    report.push_str("| record | ward | suricata | matched | agreement |\n|---|---|---|---|---|\n");
    for (kind, t) in &tallies {
        let _ = writeln!(report, "| {kind} | {} | {} | {} | {:.2}% |", t.ours, t.theirs, t.matched, t.agreement() * 100.0);
    }
    for (kind, t) in &tallies {
        let _ = writeln!(report, "\n## {kind} differences ({})\n", t.diffs.len());
        for (capture, key, ours, theirs) in &t.diffs {
            let _ = writeln!(report, "- `{capture}` `{key}`: ward {ours}, suricata {theirs}");
        }
    }
    let out_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/conformance");
    let _ = std::fs::create_dir_all(&out_dir);
    let _ = std::fs::write(out_dir.join("report.md"), &report);
    for (kind, t) in &tallies {
        println!("conformance {kind}: ward {} suricata {} matched {} agreement {:.2}%", t.ours, t.theirs, t.matched, t.agreement() * 100.0);
    }

    assert!(schema_errors.is_empty(), "records that fail the EVE schema:\n{}", schema_errors.join("\n"));
    for (kind, t) in &tallies {
        assert!(
            t.agreement() >= AGREEMENT_FLOOR,
            "{kind} agreement {:.2}% is under {:.0}% (see target/conformance/report.md)",
            t.agreement() * 100.0,
            AGREEMENT_FLOOR * 100.0
        );
    }
}
