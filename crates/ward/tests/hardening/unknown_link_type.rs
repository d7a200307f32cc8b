//! Low: an unknown link type is an error with a clear message and a non-zero exit.
//!
//! A capture of a link type the decoder cannot read used to be counted and dropped frame by
//! frame, and the run exited 0 without a word. Now it is a capture error naming the link type,
//! as a corrupt capture is: the other captures are still processed, and the exit status is 1.

use std::path::Path;
use std::process::Command;

use crate::sensor_support::*;

/// LINKTYPE_USER0: a link type no decoder knows.
const USER0: u32 = 147;

fn pcap_with_linktype(linktype: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&65_535u32.to_le_bytes());
    b.extend_from_slice(&linktype.to_le_bytes());
    for i in 0..3u32 {
        let frame = [0x5au8; 40];
        b.extend_from_slice(&(1_700_000_000 + i).to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        b.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        b.extend_from_slice(&frame);
    }
    b
}

fn pcapng_block(kind: u32, body: &[u8]) -> Vec<u8> {
    let len = 12 + body.len().next_multiple_of(4);
    let mut b = Vec::new();
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&(len as u32).to_le_bytes());
    b.extend_from_slice(body);
    b.resize(len - 4, 0);
    b.extend_from_slice(&(len as u32).to_le_bytes());
    b
}

fn pcapng_with_linktype(linktype: u16) -> Vec<u8> {
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    let mut idb = Vec::new();
    idb.extend_from_slice(&linktype.to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&65_535u32.to_le_bytes());
    let frame = [0x5au8; 40];
    let mut epb = Vec::new();
    epb.extend_from_slice(&0u32.to_le_bytes());
    epb.extend_from_slice(&0u32.to_le_bytes());
    epb.extend_from_slice(&1_000_000u32.to_le_bytes());
    epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    epb.extend_from_slice(&frame);
    [pcapng_block(0x0a0d_0d0a, &shb), pcapng_block(1, &idb), pcapng_block(6, &epb)].concat()
}

fn sensor(args: &[&Path], eve: &Path) -> std::process::Output {
    let mut cmd = Command::new(WARD);
    cmd.args(["sensor", "--quiet", "--workers", "1", "--eve"]).arg(eve);
    for a in args {
        cmd.arg("--pcap").arg(a);
    }
    cmd.output().expect("run ward")
}

#[test]
fn one_capture_of_an_unknown_link_type_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("user0.pcap");
    std::fs::write(&bad, pcap_with_linktype(USER0)).unwrap();
    let out = sensor(&[&bad], &tmp.path().join("eve.json"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(
        stderr.contains(&format!("ward: capture file {} has link type 147 (USER0..USER15) at byte 20, which ward cannot decode", bad.display())),
        "{stderr}"
    );
    assert!(stderr.contains("supported: ETHERNET (1)"), "the message says what would work: {stderr}");
}

#[test]
fn a_directory_with_unknown_link_types_reports_each_and_still_processes_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("captures");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(shared("pcaps/zeek/dns53.pcap"), dir.join("a-dns.pcap")).unwrap();
    std::fs::write(dir.join("b-user0.pcap"), pcap_with_linktype(USER0)).unwrap();
    std::fs::write(dir.join("c-user0.pcapng"), pcapng_with_linktype(USER0 as u16)).unwrap();
    // A real capture Suricata refuses too: 802.11 in monitor mode.
    std::fs::copy(shared("pcaps/zeek/wlanmon.pcap"), dir.join("d-wlan.pcap")).unwrap();
    std::fs::copy(shared("pcaps/zeek/http/methods.pcap"), dir.join("e-http.pcap")).unwrap();

    let eve = tmp.path().join("eve.json");
    let out = sensor(&[&dir], &eve);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "something failed, the exit status says so; stderr:\n{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("ward: capture file")).collect();
    assert_eq!(errors.len(), 3, "one error per bad capture: {stderr}");
    assert!(errors[0].contains("b-user0.pcap has link type 147 (USER0..USER15) at byte 20"), "{}", errors[0]);
    assert!(errors[1].contains("c-user0.pcapng has link type 147 (USER0..USER15) at byte 48") && errors[1].contains("the packets before it were read"), "{}", errors[1]);
    assert!(errors[2].contains("d-wlan.pcap has link type 105 (IEEE802_11)"), "{}", errors[2]);

    // The good captures before and after them were processed.
    let records = eve_records(&eve);
    assert!(records.iter().any(|r| r["event_type"] == "dns"), "a-dns.pcap was processed");
    assert!(records.iter().any(|r| r["event_type"] == "http"), "e-http.pcap was processed");
}
