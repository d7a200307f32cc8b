//! Low: on a live interface, truncated-packet anomalies obey --filter.
//!
//! A frame that does not decode raises a decoder anomaly and yields no packet, and the filter
//! was only ever asked about packets: the anomalies of frames the filter drops were written
//! anyway. Now a frame that did not decode is judged by the header fields its bytes hold.

use crate::sensor_support::*;

/// Injects raw Ethernet frames on the given interface: IPv4 headers from 10.231.0.99 claiming
/// 1000 bytes in a 40-byte packet (`decoder.ipv4.trunc_pkt`), and from 10.231.0.77 claiming a
/// total length under the header's (`decoder.ipv4.iplen_smaller_than_hlen`).
const INJECT: &str = "import socket, struct, sys, time\n\
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n\
s.bind((sys.argv[1], 0))\n\
eth = b'\\xff' * 6 + b'\\x02\\x00\\x00\\x00\\x00\\x02' + b'\\x08\\x00'\n\
def ip(src, total):\n    return struct.pack('!BBHHHBBH4s4s', 0x45, 0, total, 1, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton('10.231.0.1'))\n\
for _ in range(int(sys.argv[2])):\n    s.send(eth + ip('10.231.0.99', 1000) + b'x' * 20)\n    s.send(eth + ip('10.231.0.77', 10) + b'x' * 20)\n    time.sleep(0.02)\n";

#[test]
fn anomalies_of_frames_the_filter_drops_are_dropped_on_a_live_interface() {
    if !is_root() {
        eprintln!("skipped: live capture needs root (network namespaces and AF_PACKET)");
        return;
    }
    let ns = Netns::create("lf");
    let tmp = tempfile::tempdir().unwrap();
    let eve = tmp.path().join("eve.json");
    let empty = tmp.path().join("none.csv");
    std::fs::write(&empty, "").unwrap();
    let mut cmd = ns.exec(0, WARD);
    cmd.args(["sensor", "--quiet", "--workers", "1", "--interface", &ns.ifaces[0], "--filter", "not host 10.231.0.99", "--indicators"])
        .arg(&empty)
        .arg("--eve")
        .arg(&eve);
    let mut run = Ward::spawn(cmd);
    run.wait_for("ward: rules:", 1);
    ns.python(1, INJECT, &[&ns.ifaces[1], "50"]);
    run.signal(SIGTERM);
    let status = run.wait();
    assert_eq!(status.code(), Some(0), "{}", run.stderr());

    let records = eve_records(&eve);
    let anomalies: Vec<&str> =
        records.iter().filter(|r| r["event_type"] == "anomaly").filter_map(|r| r["anomaly"]["event"].as_str()).collect();
    assert!(
        anomalies.contains(&"decoder.ipv4.iplen_smaller_than_hlen"),
        "the frames of a host the filter keeps still raise their anomalies: {anomalies:?}"
    );
    assert!(
        !anomalies.contains(&"decoder.ipv4.trunc_pkt"),
        "the truncated frames of 10.231.0.99, which --filter drops, raised anomalies: {anomalies:?}"
    );
}
