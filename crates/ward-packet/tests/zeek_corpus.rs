//! Decodes every capture of the Zeek test-suite corpus (../shared/data/pcaps/zeek, with the
//! .gz ones) and compares, per capture, the packets that Suricata puts in flows with the packet
//! counts of Suricata's own flow records (../shared/data/oracle/zeek).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ward_packet::capture::{is_capture_file, CaptureFile, LinkType};
use ward_packet::decode::{DecodeStatus, Decoder};
use ward_packet::packet::Transport;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if is_capture_file(&p) {
            out.push(p);
        }
    }
}

/// IP protocols Suricata tracks flows for (GRE outer layers excluded, as in its output).
fn flow_proto(proto: u8) -> bool {
    matches!(proto, 1 | 4 | 6 | 17 | 41 | 50 | 58 | 132)
}

#[derive(Default, Debug)]
struct FileResult {
    frames: u64,
    flow_packets: u64,
    flow_bytes: u64,
    linktypes: Vec<LinkType>,
    error: Option<String>,
}

fn decode_file(path: &Path) -> FileResult {
    let mut r = FileResult::default();
    let mut cap = match CaptureFile::open(path) {
        Ok(c) => c,
        Err(e) => {
            r.error = Some(e.to_string());
            return r;
        }
    };
    let mut dec = Decoder::new();
    loop {
        let raw = match cap.next_packet() {
            Ok(Some(raw)) => raw,
            Ok(None) => break,
            Err(e) => {
                r.error = Some(e.to_string());
                break;
            }
        };
        r.frames += 1;
        if !r.linktypes.contains(&raw.linktype) {
            r.linktypes.push(raw.linktype);
        }
        let res = dec.decode(&raw);
        let layers: Vec<_> = res
            .layers()
            .map(|(p, _)| {
                let icmp_error = match p.transport {
                    Transport::Icmp { icmp_type, .. } if p.proto == 1 => {
                        matches!(icmp_type, 3 | 4 | 5 | 11 | 12)
                    }
                    _ => false,
                };
                (p.proto, p.wire_len, icmp_error)
            })
            .collect();
        for (proto, wire, icmp_error) in layers {
            // ICMPv4 errors join the flow of the packet they quote (the flow stage's job).
            if flow_proto(proto) && !icmp_error {
                r.flow_packets += 1;
                r.flow_bytes += wire as u64;
            }
        }
        if res.status == DecodeStatus::Invalid {
            assert!(
                !res.anomalies.is_empty(),
                "invalid without anomaly in {}",
                path.display()
            );
        }
    }
    r
}

fn oracle_counts(path: &Path) -> Option<(u64, u64)> {
    let rel = path.strip_prefix(format!("{DATA}/pcaps/zeek/")).ok()?;
    let oracle = PathBuf::from(format!("{DATA}/oracle/zeek/{}.eve.json", rel.display()));
    let text = std::fs::read_to_string(oracle).ok()?;
    let (mut pkts, mut bytes) = (0, 0);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        if v["event_type"] == "flow" {
            let f = &v["flow"];
            pkts += f["pkts_toserver"].as_u64()? + f["pkts_toclient"].as_u64()?;
            bytes += f["bytes_toserver"].as_u64()? + f["bytes_toclient"].as_u64()?;
        }
    }
    Some((pkts, bytes))
}

/// Captures whose counts differ from Suricata's for a known reason outside the decoder.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    (
        "erspanIII.pcap",
        "ward decapsulates ERSPAN type III; Suricata 8.0.6 does not",
    ),
    (
        "tunnels/gre-erspan3-dot1q.pcap",
        "ward decapsulates ERSPAN type III; Suricata 8.0.6 does not",
    ),
    (
        "smtp.pcap",
        "ICMP errors are counted in the flow they quote (the flow stage's job)",
    ),
    (
        "smb/smb_v2_only_non_zero_reserved1.pcap",
        "ICMP errors are counted in the flow they quote",
    ),
    (
        "tunnels/gre-sample.pcap",
        "ICMP errors are counted in the flow they quote",
    ),
];

#[test]
fn every_zeek_capture_decodes_and_matches_the_oracle() {
    let mut files = Vec::new();
    walk(Path::new(&format!("{DATA}/pcaps/zeek")), &mut files);
    files.sort();
    assert!(
        files.len() > 790,
        "expected the whole corpus, found {} captures",
        files.len()
    );
    let mut linktypes: BTreeMap<String, u64> = BTreeMap::new();
    let (mut compared, mut exact, mut close, mut errors) = (0, 0, 0, 0);
    let (mut exact_bytes, mut frames) = (0, 0);
    let verbose = std::env::var("WARD_CORPUS_VERBOSE").is_ok();
    let mut mismatches = Vec::new();
    for path in &files {
        let r = decode_file(path);
        frames += r.frames;
        for lt in &r.linktypes {
            *linktypes.entry(format!("{lt:?}")).or_default() += 1;
        }
        if let Some(e) = &r.error {
            errors += 1;
            if verbose {
                println!("error {}: {e}", path.display());
            }
        }
        if let Some((pkts, bytes)) = oracle_counts(path) {
            compared += 1;
            let rel = path
                .strip_prefix(format!("{DATA}/pcaps/zeek/"))
                .unwrap_or(path)
                .to_string_lossy()
                .into_owned();
            let known = KNOWN_DIFFERENCES.iter().any(|(name, _)| *name == rel);
            if !known && (pkts != r.flow_packets || bytes != r.flow_bytes) {
                mismatches.push(format!(
                    "{rel}: oracle {pkts} packets {bytes} bytes, ours {} packets {} bytes",
                    r.flow_packets, r.flow_bytes
                ));
            }
            if pkts == r.flow_packets {
                exact += 1;
                if bytes == r.flow_bytes {
                    exact_bytes += 1;
                } else if verbose {
                    println!(
                        "bytes {}: oracle {bytes} ours {}",
                        path.display(),
                        r.flow_bytes
                    );
                }
            } else if verbose {
                println!(
                    "pkts {}: oracle {pkts} ours {} (bytes {bytes} vs {})",
                    path.display(),
                    r.flow_packets,
                    r.flow_bytes
                );
            }
            if pkts.abs_diff(r.flow_packets) * 20 <= pkts.max(1) {
                close += 1;
            }
        }
    }
    println!(
        "captures {} frames {frames} read-errors {errors}; oracle compared {compared}: \
         packet count exact {exact}, within 5% {close}, bytes exact {exact_bytes}; link types {linktypes:?}",
        files.len()
    );
    for lt in [
        "LinuxSll",
        "LinuxSll2",
        "Null",
        "Raw",
        "Ipv4",
        "Ipv6",
        "Ethernet",
        "Ppp",
    ] {
        assert!(linktypes.contains_key(lt), "no capture with link type {lt}");
    }
    assert!(
        compared > 780,
        "the oracle should cover almost every capture, found {compared}"
    );
    assert!(
        mismatches.is_empty(),
        "packet or byte counts differ from Suricata's flows:\n{}",
        mismatches.join("\n")
    );
    assert!(exact + KNOWN_DIFFERENCES.len() >= compared);
}
