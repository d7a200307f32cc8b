//! Decoder, reassembly and flow behaviours checked on captures of Suricata's own test suite
//! (../shared/data/suricata-verify/tests): Cisco HDLC and NSH decoding, TCP Fast Open, the bytes
//! an alert logs as its packet, mid-stream pick-up, one-sided sessions and VLAN-blind tracking.

use std::path::{Path, PathBuf};

use ward_packet::capture::{CaptureFile, LinkType};
use ward_packet::decode::{DecodeStatus, Decoder};
use ward_packet::flow::{Direction, FlowConfig, FlowState, FlowTable, TcpPolicy, TcpState};
use ward_packet::stream::StreamChunk;

fn verify_test(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/suricata-verify/tests").join(path)
}

/// Every frame of a capture with its link type.
fn frames(path: &str) -> Vec<(LinkType, Vec<u8>)> {
    let mut cap = CaptureFile::open(verify_test(path)).expect("capture");
    let mut out = Vec::new();
    while let Some(raw) = cap.next_packet().expect("frame") {
        out.push((raw.linktype, raw.data.to_vec()));
    }
    out
}

fn raw(link: LinkType, data: &[u8]) -> ward_packet::capture::RawPacket<'_> {
    ward_packet::capture::RawPacket { ts: Default::default(), linktype: link, data, orig_len: data.len() as u32 }
}

#[test]
fn cisco_hdlc_frames_carry_ipv4() {
    let frames = frames("decode-chdlc-01/hdlc-http_1tx.pcap");
    assert_eq!(frames.len(), 17);
    let mut dec = Decoder::new();
    for (link, data) in &frames {
        assert_eq!(*link, LinkType::CHdlc);
        assert_eq!(link.datalink(), 104);
        let res = dec.decode(&raw(*link, data));
        let pkt = res.packet().expect("an ip packet in every frame");
        assert_eq!(pkt.proto, 6);
        assert!(pkt.src_port == 80 || pkt.dst_port == 80);
        assert_eq!(pkt.frame, &data[..], "the logged packet is the whole frame");
    }
    assert_eq!((dec.stats.chdlc, dec.stats.ipv4, dec.stats.tcp), (17, 17, 17));
    assert_eq!(LinkType::datalink_name(104), Some("C_HDLC"));
    // Shorter than the 4-byte header: an anomaly, no packet.
    let res = dec.decode(&raw(LinkType::CHdlc, &[0x0f, 0x00, 0x08]));
    assert_eq!(res.status, DecodeStatus::Invalid);
    assert_eq!(res.anomalies[0].event, "decoder.chdlc.pkt_too_small");
}

#[test]
fn nsh_md_type_2_carries_ipv4_udp() {
    let frames = frames("decode-nsh-type2/input.pcap");
    let (link, data) = &frames[0];
    let mut dec = Decoder::new();
    let res = dec.decode(&raw(*link, data));
    let pkt = res.packet().expect("udp inside nsh");
    assert_eq!((pkt.src.to_string().as_str(), pkt.src_port), ("10.0.0.1", 52377));
    assert_eq!((pkt.dst.to_string().as_str(), pkt.dst_port), ("10.0.0.2", 52464));
    assert_eq!(pkt.payload, b"data\n\n");
    assert_eq!((dec.stats.ethernet, dec.stats.nsh, dec.stats.ipv4, dec.stats.udp), (1, 1, 1, 1));

    // The same frame with the header broken the ways Suricata names.
    let nsh = 14;
    let mut bad_version = data.clone();
    bad_version[nsh] |= 0xc0;
    let mut md_reserved = data.clone();
    md_reserved[nsh + 2] = 0;
    let mut md_unknown = data.clone();
    md_unknown[nsh + 2] = 3;
    let mut md1_short = data.clone();
    md1_short[nsh + 2] = 1;
    let mut next_unknown = data.clone();
    next_unknown[nsh + 3] = 0x99;
    let mut too_long = data.clone();
    too_long[nsh + 1] = 0x3f;
    for (frame, event) in [
        (&data[..nsh + 7], "decoder.nsh.header_too_small"),
        (&bad_version[..], "decoder.nsh.unsupported_version"),
        (&md_reserved[..], "decoder.nsh.reserved_type"),
        (&md_unknown[..], "decoder.nsh.unsupported_type"),
        (&md1_short[..], "decoder.nsh.bad_header_length"),
        (&next_unknown[..], "decoder.nsh.unknown_payload"),
        (&too_long[..], "decoder.nsh.bad_header_length"),
    ] {
        let res = dec.decode(&raw(*link, frame));
        assert!(res.packet().is_none(), "{event}");
        assert_eq!(res.anomalies.first().map(|a| a.event), Some(event));
    }
}

#[test]
fn tcp_fast_open_options_are_recognised() {
    let mut dec = Decoder::new();
    // Kind 34 with a cookie, on a SYN carrying a request.
    let frames7 = frames("tcp-fastopen-07/tcp_fastopen_segmentation.pcap");
    let (link, data) = &frames7[0];
    let res = dec.decode(&raw(*link, data));
    let pkt = res.packet().unwrap();
    let hdr = pkt.tcp().unwrap();
    assert!(hdr.tfo && hdr.flags & 0x02 != 0);
    assert_eq!(pkt.payload.len(), 65);
    assert!(pkt.payload.starts_with(b"GET /index.php"));
    // The experimental kind 254 with magic 0xF989: a cookie request (no data).
    let frames1 = frames("tcp-fastopen-01/tfo.pcap");
    let (link, data) = &frames1[0];
    assert!(dec.decode(&raw(*link, data)).packet().unwrap().tcp().unwrap().tfo);
    // The SYN/ACK answering the first SYN has no TFO option.
    let (link, data) = &frames7[1];
    assert!(!dec.decode(&raw(*link, data)).packet().unwrap().tcp().unwrap().tfo);
}

#[test]
fn a_reassembled_datagram_is_logged_behind_its_first_fragments_link_header() {
    let frames = frames("defrag/bug-6887-defrag-eth-vlan-ipv6-tcp/frag-eth-vlan-ipv6-tcp.pcap");
    let mut dec = Decoder::new();
    let mut rebuilt = None;
    for (link, data) in &frames {
        let res = dec.decode(&raw(*link, data));
        if let Some(pkt) = res.packet() {
            assert!(pkt.reassembled);
            rebuilt = Some((pkt.frame.to_vec(), pkt.payload.len()));
        }
    }
    let (frame, payload_len) = rebuilt.expect("the datagram is rebuilt");
    assert_eq!(payload_len, 1000);
    // Ethernet + 802.1Q, then the rebuilt IPv6 header (fragment header removed) and TCP.
    // The fragment header follows the 18-byte link header and the 40-byte IPv6 header.
    let offset = |d: &[u8]| u16::from_be_bytes([d[18 + 40 + 2], d[18 + 40 + 3]]) & 0xfff8;
    let (_, first) = frames.iter().find(|(_, d)| d.len() > 62 && d[18 + 6] == 44 && offset(d) == 0).expect("the offset-0 fragment");
    assert_eq!(&frame[..18], &first[..18]);
    assert_eq!(&frame[12..14], &[0x81, 0x00]);
    assert_eq!(frame[18] >> 4, 6);
    assert_eq!(frame[18 + 6], 6, "next header is TCP once the fragment header is gone");
    assert_eq!(u16::from_be_bytes([frame[18 + 4], frame[18 + 5]]), 1020);
    assert_eq!(frame.len(), 18 + 40 + 1020);
}

/// What each flow's streams delivered, chunk by chunk.
type Delivered = Vec<(Direction, Vec<u8>)>;

fn feed_table(path: &str, config: FlowConfig) -> (FlowTable<Delivered>, Vec<Direction>) {
    let mut table: FlowTable<Delivered> = FlowTable::new(config);
    let mut dec = Decoder::new();
    let mut dirs = Vec::new();
    for (link, data) in frames(path) {
        let res = dec.decode(&raw(link, &data));
        let Some(pkt) = res.packet() else { continue };
        let Some((flow, dir)) = table.lookup(pkt) else { continue };
        dirs.push(dir);
        flow.reassemble(dir, pkt, &mut |user, d, chunk| {
            if let StreamChunk::Data(bytes) = chunk {
                user.push((d, bytes.to_vec()));
            }
        });
    }
    (table, dirs)
}

fn drained<S: Default>(table: &mut FlowTable<S>) -> Vec<ward_packet::flow::Flow<S>> {
    let mut out = Vec::new();
    table.drain(&mut |flow, _| out.push(flow));
    out
}

#[test]
fn tcp_fast_open_data_on_the_syn_is_part_of_the_stream() {
    let (mut table, _) = feed_table("tcp-fastopen-07/tcp_fastopen_segmentation.pcap", FlowConfig::default());
    let flows = drained(&mut table);
    assert_eq!(flows.len(), 2);
    for flow in &flows {
        assert!(flow.tcp.tfo);
        assert_eq!(flow.tcp.state, TcpState::Closed);
        let to_server: Vec<u8> = flow.user.iter().filter(|(d, _)| *d == Direction::ToServer).flat_map(|(_, b)| b.clone()).collect();
        assert!(to_server.starts_with(b"GET /"), "the SYN's request opens the stream");
    }
    let second: Vec<u8> = flows[1].user.iter().filter(|(d, _)| *d == Direction::ToServer).flat_map(|(_, b)| b.clone()).collect();
    let text = String::from_utf8_lossy(&second);
    assert!(text.contains("c9c0d1d2d3d4d5d6d7d8d9d0 HTTP/1.1"), "SYN data and the next segment join: {text}");
}

#[test]
fn without_midstream_a_session_needs_its_syn() {
    let (mut table, _) = feed_table("bug-7552/bug-7552-01/input.pcap", FlowConfig::default());
    let flows = drained(&mut table);
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].tcp.state, TcpState::None);
    assert!(flows[0].user.is_empty());
}

#[test]
fn midstream_picks_up_a_session_from_any_packet() {
    let config = FlowConfig { tcp: TcpPolicy { midstream: true, async_oneside: false }, ..FlowConfig::default() };
    // A response then its ACK: the sender of the first packet is the client.
    let (mut table, dirs) = feed_table("bug-7552/bug-7552-01/input.pcap", config);
    assert_eq!(dirs, [Direction::ToServer, Direction::ToClient]);
    let flows = drained(&mut table);
    assert_eq!(flows.len(), 1);
    let flow = &flows[0];
    assert!(flow.tcp.midstream && !flow.tcp.midstream_synack);
    assert_eq!(flow.tcp.state, TcpState::Established);
    assert_eq!(flow.state(), FlowState::Established);
    assert_eq!(flow.client_port, 8080);
    assert!(flow.user[0].1.starts_with(b"HTTP/1.0 200 OK"));
    // Single packets with data, no handshake, one flow each.
    let (mut table, _) = feed_table("detect-pcre/detect-pcre-04/input.pcap", config);
    let flows = drained(&mut table);
    assert_eq!(flows.len(), 2);
    assert!(flows.iter().all(|f| f.tcp.state == TcpState::Established && f.user.len() == 1));
}

#[test]
fn a_synack_pickup_reverses_the_flow() {
    // Only the server's side was captured: SYN/ACK, ACKs and two responses.
    let config = FlowConfig { tcp: TcpPolicy { midstream: false, async_oneside: true }, ..FlowConfig::default() };
    let (mut table, dirs) = feed_table("http-async-srv/input.pcap", config);
    assert!(dirs.iter().all(|d| *d == Direction::ToClient));
    let flows = drained(&mut table);
    assert_eq!(flows.len(), 1);
    let flow = &flows[0];
    assert!(flow.tcp.midstream_synack);
    assert_eq!((flow.client_port, flow.server_port), (50215, 8080));
    assert_eq!(flow.pkts, [0, 8]);
    assert!(flow.tcp.state >= TcpState::Established);
    let data: Vec<u8> = flow.user.iter().flat_map(|(_, b)| b.clone()).collect();
    assert_eq!(String::from_utf8_lossy(&data).matches("HTTP/1.0 200 OK").count(), 2);
}

#[test]
fn vlan_ids_can_be_left_out_of_the_flow_key() {
    // The two directions of the connection carry different VLAN ids.
    let path = "bug-4376/syn_retransmit_with_ts.pcap";
    let (mut table, _) = feed_table(path, FlowConfig::default());
    let tcp_flows = |flows: &[ward_packet::flow::Flow<Delivered>]| flows.iter().filter(|f| f.proto == 6).count();
    assert_eq!(tcp_flows(&drained(&mut table)), 2);
    let (mut table, _) = feed_table(path, FlowConfig { vlan_tracking: false, ..FlowConfig::default() });
    let flows = drained(&mut table);
    assert_eq!(tcp_flows(&flows), 1);
    let flow = flows.iter().find(|f| f.proto == 6).unwrap();
    assert!(flow.pkts[0] > 0 && flow.pkts[1] > 0);
    assert_eq!(flow.vlan[0], 3136);
    assert_eq!(flow.tcp.state, TcpState::Closed);
}
