//! The HTTP Evader captures of suricata-verify (`../shared/data/suricata-verify/tests/http-evader`):
//! each serves the EICAR test file through one evasion (odd chunking, content codings, broken
//! headers and status lines) that libhtp normalises, and Suricata finds the file in the response
//! body. Every capture is replayed through [`HttpState`] and exactly one transaction's response
//! body must hold the whole EICAR string.
//!
//! The captures are plain Ethernet/IPv4/TCP pcaps; segments are fed in capture order, each
//! direction in sequence (retransmissions dropped). Without the shared data the test says so and
//! passes.

use std::path::{Path, PathBuf};

use ward_proto::http::HttpState;
use ward_proto::{AppEvent, Direction};

const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

fn evader_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/suricata-verify/tests/http-evader")
}

/// (to_server, payload, seq) of each TCP segment with payload, in capture order.
fn segments(pcap: &[u8]) -> Vec<(bool, Vec<u8>, u32)> {
    let mut out = Vec::new();
    if pcap.len() < 24 {
        return out;
    }
    let le = pcap[..4] == [0xd4, 0xc3, 0xb2, 0xa1] || pcap[..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    let u32_at = |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut off = 24;
    let mut server_port = None;
    while off + 16 <= pcap.len() {
        let caplen = u32_at(&pcap[off + 8..]) as usize;
        off += 16;
        let Some(frame) = pcap.get(off..off + caplen) else {
            break;
        };
        off += caplen;
        // Ethernet, IPv4, TCP
        if frame.len() < 14 + 20 || frame[12..14] != [0x08, 0x00] {
            continue;
        }
        let ip = &frame[14..];
        let ihl = (ip[0] & 0x0f) as usize * 4;
        let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
        if ip[9] != 6 || ip.len() < ihl + 20 {
            continue;
        }
        let ip = &ip[..total.min(ip.len())];
        let tcp = &ip[ihl..];
        let sport = u16::from_be_bytes([tcp[0], tcp[1]]);
        let dport = u16::from_be_bytes([tcp[2], tcp[3]]);
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        let flags = tcp[13];
        let doff = (tcp[12] >> 4) as usize * 4;
        if server_port.is_none() && flags & 0x12 == 0x02 {
            server_port = Some(dport);
        }
        let payload = tcp.get(doff..).unwrap_or(&[]);
        if payload.is_empty() {
            continue;
        }
        let to_server = Some(dport) == server_port || (server_port.is_none() && dport == 80);
        let _ = sport;
        out.push((to_server, payload.to_vec(), seq));
    }
    out
}

fn run(pcap: &[u8]) -> Vec<AppEvent> {
    let mut s = HttpState::new();
    let mut out = Vec::new();
    let mut next: [Option<u32>; 2] = [None, None];
    for (to_server, data, seq) in segments(pcap) {
        let d = if to_server { 0 } else { 1 };
        if let Some(n) = next[d] {
            if seq != n {
                continue; // retransmission or out of order
            }
        }
        next[d] = Some(seq.wrapping_add(data.len() as u32));
        let dir = if to_server {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        s.on_data(dir, &data, &mut out);
    }
    s.on_close(&mut out);
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn every_evasion_yields_the_file_once() {
    let dir = evader_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("no http-evader captures at {}: skipped", dir.display());
        return;
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() > 300, "only {} captures", names.len());
    let mut failed = Vec::new();
    for name in &names {
        let Ok(pcap) = std::fs::read(dir.join(name).join("input.pcap")) else {
            continue;
        };
        let events = run(&pcap);
        let hits = events
            .iter()
            .filter(|e| match e {
                AppEvent::Http(tx) => tx
                    .response
                    .as_ref()
                    .is_some_and(|r| contains(&r.body, EICAR)),
                _ => false,
            })
            .count();
        if hits != 1 {
            failed.push(format!("{name}: {hits} bodies with the file"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} captures fail:\n{}",
        failed.len(),
        names.len(),
        failed.join("\n")
    );
}
