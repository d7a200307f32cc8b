//! Decoder tests on hand-built frames.

use super::*;
use crate::packet::tcp_flags;
use proptest::prelude::*;

const A4: [u8; 4] = [192, 0, 2, 1];
const B4: [u8; 4] = [198, 51, 100, 2];

fn a6() -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = 0x20;
    a[1] = 0x01;
    a[2] = 0x0d;
    a[3] = 0xb8;
    a[15] = 1;
    a
}

fn b6() -> [u8; 16] {
    let mut a = a6();
    a[15] = 2;
    a
}

fn ipv4_with(proto: u8, payload: &[u8], id: u16, frag: u16, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

fn ipv4(proto: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_with(proto, payload, 1, 0, A4, B4)
}

fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 64]);
    h.extend_from_slice(&a6());
    h.extend_from_slice(&b6());
    h.extend_from_slice(payload);
    h
}

fn tcp(sport: u16, dport: u16, flags: u8, opts: &[u8], payload: &[u8]) -> Vec<u8> {
    assert_eq!(opts.len() % 4, 0);
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&1000u32.to_be_bytes());
    t.extend_from_slice(&2000u32.to_be_bytes());
    t.push((((20 + opts.len()) / 4) as u8) << 4);
    t.push(flags);
    t.extend_from_slice(&65535u16.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(opts);
    t.extend_from_slice(payload);
    t
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn raw(linktype: LinkType, data: &[u8]) -> RawPacket<'_> {
    RawPacket {
        ts: Timestamp::from_secs_micros(1_700_000_000, 0),
        linktype,
        data,
        orig_len: data.len() as u32,
    }
}

fn events(res: &DecodeResult<'_>) -> Vec<&'static str> {
    res.anomalies.iter().map(|a| a.event).collect()
}

#[test]
fn ethernet_ipv4_tcp_with_window_scale() {
    // MSS, NOP, window scale 7, NOP padding.
    let opts = [2, 4, 0x05, 0xb4, 1, 3, 3, 7];
    let frame = eth(
        0x0800,
        &ipv4(6, &tcp(40000, 80, tcp_flags::SYN, &opts, b"hello")),
    );
    let mut dec = Decoder::new();
    let res = dec.decode(&raw(LinkType::Ethernet, &frame));
    assert_eq!(res.status, DecodeStatus::Packet);
    assert_eq!(res.len(), 1);
    let p = res.packet().unwrap();
    assert_eq!(p.src, IpAddr::V4(Ipv4Addr::from(A4)));
    assert_eq!(p.dst, IpAddr::V4(Ipv4Addr::from(B4)));
    assert_eq!((p.src_port, p.dst_port, p.proto, p.ttl), (40000, 80, 6, 64));
    assert_eq!(p.wire_len, frame.len() as u32);
    assert_eq!(p.payload, b"hello");
    let t = p.tcp().unwrap();
    assert_eq!(
        (t.seq, t.ack, t.flags, t.window, t.wscale),
        (1000, 2000, tcp_flags::SYN, 65535, Some(7))
    );
    assert!(res.anomalies.is_empty());
    assert!(res.tunnel().is_none());
    assert_eq!(dec.stats.tcp, 1);
}

#[test]
fn udp_length_bounds_the_payload() {
    let mut u = udp(1, 2, b"abcdef");
    u[5] = 10;
    let frame = eth(0x0800, &ipv4(17, &u));
    let mut dec = Decoder::new();
    let res = dec.decode(&raw(LinkType::Ethernet, &frame));
    assert_eq!(res.packet().unwrap().payload, b"ab");
}

#[test]
fn ethernet_padding_is_not_payload() {
    let mut frame = eth(0x0800, &ipv4(17, &udp(53, 53, b"ab")));
    frame.extend_from_slice(&[0; 20]);
    let mut dec = Decoder::new();
    let res = dec.decode(&raw(LinkType::Ethernet, &frame));
    let p = res.packet().unwrap();
    assert_eq!(p.payload, b"ab");
    assert_eq!(p.wire_len, frame.len() as u32);
}

#[test]
fn qinq_tags_are_kept_outer_first() {
    let inner = ipv4(17, &udp(1000, 2000, b"x"));
    let mut tags = vec![0x00, 0x64, 0x81, 0x00, 0x00, 0xc8, 0x08, 0x00];
    tags.extend_from_slice(&inner);
    let frame = eth(0x88a8, &tags);
    let mut dec = Decoder::new();
    let res = dec.decode(&raw(LinkType::Ethernet, &frame));
    assert_eq!(res.packet().unwrap().vlan, [100, 200]);
    assert_eq!((dec.stats.vlan, dec.stats.vlan_qinq), (1, 1));
}

#[test]
fn arp_is_not_ip_and_not_an_anomaly() {
    let frame = eth(0x0806, &[0u8; 28]);
    let mut dec = Decoder::new();
    let res = dec.decode(&raw(LinkType::Ethernet, &frame));
    assert_eq!(res.status, DecodeStatus::NotIp);
    assert!(res.is_empty() && res.anomalies.is_empty());
    assert_eq!((dec.stats.arp, dec.stats.non_ip), (1, 1));
}

#[test]
fn malformed_layers_become_named_anomalies() {
    let mut dec = Decoder::new();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![0u8; 10], "decoder.ethernet.pkt_too_small"),
        (eth(0x0800, &[0x45, 0, 0]), "decoder.ipv4.pkt_too_small"),
        (
            eth(0x0800, &{
                let mut ip = ipv4(6, &tcp(1, 2, 0, &[], b""));
                ip[0] = 0x44;
                ip
            }),
            "decoder.ipv4.hlen_too_small",
        ),
        (
            eth(0x0800, &{
                let mut ip = ipv4(6, &tcp(1, 2, 0, &[], b""));
                ip[3] = 10;
                ip[2] = 0;
                ip
            }),
            "decoder.ipv4.iplen_smaller_than_hlen",
        ),
        (
            eth(0x0800, &{
                let mut ip = ipv4(6, &tcp(1, 2, 0, &[], b"abcdef"));
                ip.truncate(ip.len() - 3);
                ip
            }),
            "decoder.ipv4.trunc_pkt",
        ),
        (
            eth(0x0800, &ipv4(6, &[0u8; 10])),
            "decoder.tcp.pkt_too_small",
        ),
        (
            eth(
                0x0800,
                &ipv4(6, &{
                    let mut t = tcp(1, 2, 0, &[], b"");
                    t[12] = 0x40;
                    t
                }),
            ),
            "decoder.tcp.hlen_too_small",
        ),
        (
            eth(
                0x0800,
                &ipv4(17, &{
                    let mut u = udp(1, 2, b"abcd");
                    u[5] = 13;
                    u
                }),
            ),
            "decoder.udp.pkt_too_small",
        ),
        (
            eth(
                0x0800,
                &ipv4(17, &{
                    let mut u = udp(1, 2, b"abcd");
                    u[5] = 7;
                    u
                }),
            ),
            "decoder.udp.len_invalid",
        ),
        (
            eth(0x0800, &ipv4(17, &[0u8; 4])),
            "decoder.udp.hlen_too_small",
        ),
        (
            eth(0x86dd, &{
                let mut ip = ipv6(17, &udp(1, 2, b"abcd"));
                ip.truncate(50);
                ip
            }),
            "decoder.ipv6.trunc_pkt",
        ),
        (eth(0x86dd, &[0x60; 20]), "decoder.ipv6.pkt_too_small"),
        (
            eth(0x0800, &ipv4(1, &[8, 0, 0])),
            "decoder.icmpv4.pkt_too_small",
        ),
    ];
    for (frame, event) in cases {
        let res = dec.decode(&raw(LinkType::Ethernet, &frame));
        assert_eq!(res.status, DecodeStatus::Invalid, "{event}");
        assert_eq!(events(&res), vec![event]);
        assert!(res.is_empty());
    }
    // Addresses are carried once the IP header was read.
    let frame = eth(0x0800, &ipv4(6, &[0u8; 10]));
    let res = dec.decode(&raw(LinkType::Ethernet, &frame));
    assert_eq!(res.anomalies[0].src, Some(IpAddr::V4(Ipv4Addr::from(A4))));
    assert_eq!(res.anomalies[0].proto, 6);
    assert_eq!(dec.stats.invalid, 14);
}

#[test]
fn tcp_option_anomalies_keep_the_packet() {
    // Window scale of length 4, then a truncated option.
    let opts = [3, 4, 7, 0, 8, 10, 0, 0];
    let frame = eth(0x0800, &ipv4(6, &tcp(1, 2, tcp_flags::SYN, &opts, b"")));
    let mut dec = Decoder::new();
    let res = dec.decode(&raw(LinkType::Ethernet, &frame));
    assert_eq!(res.status, DecodeStatus::Packet);
    assert_eq!(
        events(&res),
        vec!["decoder.tcp.invalid_optlen", "decoder.tcp.opt_invalid_len"]
    );
    assert_eq!(res.packet().unwrap().tcp().unwrap().wscale, None);
}

#[test]
fn ipv6_extension_headers_are_skipped() {
    let payload = udp(5353, 5353, b"mdns");
    // Destination options (8 bytes, next UDP), preceded by hop-by-hop (next 60).
    let mut ext = vec![60, 0, 1, 4, 0, 0, 0, 0];
    ext.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
    ext.extend_from_slice(&payload);
    let frame = eth(0x86dd, &ipv6(0, &ext));
    let mut dec = Decoder::new();
    let res = dec.decode(&raw(LinkType::Ethernet, &frame));
    let p = res.packet().unwrap();
    assert_eq!(
        (p.proto, p.src_port, p.dst_port, p.ttl),
        (17, 5353, 5353, 64)
    );
    assert_eq!(p.payload, b"mdns");
    assert_eq!(p.src, IpAddr::V6(Ipv6Addr::from(a6())));
    assert_eq!(p.ip_version(), 6);
}

#[test]
fn ipv4_fragments_are_reassembled() {
    let datagram = udp(1111, 53, &(0..100u8).collect::<Vec<_>>());
    let (first, second) = datagram.split_at(48);
    let f1 = eth(0x0800, &ipv4_with(17, first, 77, 0x2000, A4, B4));
    let f2 = eth(0x0800, &ipv4_with(17, second, 77, 6, A4, B4));
    let mut dec = Decoder::new();
    let res = dec.decode(&raw(LinkType::Ethernet, &f2));
    assert_eq!(res.status, DecodeStatus::Fragment);
    assert!(res.is_empty());
    let res = dec.decode(&raw(LinkType::Ethernet, &f1));
    assert_eq!(res.status, DecodeStatus::Packet);
    let p = res.packet().unwrap();
    assert!(p.reassembled);
    assert_eq!((p.src_port, p.dst_port), (1111, 53));
    assert_eq!(p.payload, &(0..100u8).collect::<Vec<_>>()[..]);
    assert_eq!(p.wire_len, 14 + 20 + datagram.len() as u32);
    assert_eq!(dec.stats.fragments, 2);
    assert_eq!(dec.stats.reassembled, 1);
    assert_eq!(dec.defrag_stats().ipv4_reassembled, 1);
}

#[test]
fn ipv6_fragments_are_reassembled() {
    let datagram = tcp(5000, 443, tcp_flags::ACK, &[], &[0xabu8; 64]);
    let (first, second) = datagram.split_at(40);
    let frag = |offset: u16, more: bool, data: &[u8]| {
        let mut p = vec![6, 0];
        p.extend_from_slice(&(offset | more as u16).to_be_bytes());
        p.extend_from_slice(&0xdead_beefu32.to_be_bytes());
        p.extend_from_slice(data);
        eth(0x86dd, &ipv6(44, &p))
    };
    let mut dec = Decoder::new();
    let f1 = frag(0, true, first);
    let f2 = frag(40, false, second);
    assert_eq!(
        dec.decode(&raw(LinkType::Ethernet, &f1)).status,
        DecodeStatus::Fragment
    );
    let res = dec.decode(&raw(LinkType::Ethernet, &f2));
    let p = res.packet().expect("reassembled packet");
    assert!(p.reassembled);
    assert_eq!((p.proto, p.src_port, p.dst_port), (6, 5000, 443));
    assert_eq!(p.payload, &[0xabu8; 64][..]);
    assert_eq!(dec.defrag_stats().ipv6_reassembled, 1);
}

#[test]
fn cooked_loopback_and_raw_link_types() {
    let ip = ipv4(17, &udp(1, 2, b"z"));
    let ip6 = ipv6(17, &udp(3, 4, b"z"));
    let mut sll = vec![0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip);
    let mut sll2 = vec![
        0x86, 0xdd, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    sll2.extend_from_slice(&ip6);
    let mut null_le = vec![2, 0, 0, 0];
    null_le.extend_from_slice(&ip);
    let mut cases = vec![
        (LinkType::LinuxSll, sll, 1u16),
        (LinkType::LinuxSll2, sll2, 3),
        (LinkType::Null, null_le, 1),
        (LinkType::Raw, ip.clone(), 1),
        (LinkType::Raw, ip6.clone(), 3),
        (LinkType::Ipv4, ip.clone(), 1),
        (LinkType::Ipv6, ip6.clone(), 3),
    ];
    for af in [24u32, 28, 30, 10] {
        for bytes in [af.to_le_bytes(), af.to_be_bytes()] {
            let mut f = bytes.to_vec();
            f.extend_from_slice(&ip6);
            cases.push((LinkType::Null, f, 3));
        }
    }
    let mut ppp = vec![0xff, 0x03, 0x00, 0x21];
    ppp.extend_from_slice(&ip);
    cases.push((LinkType::Ppp, ppp, 1));
    let mut dec = Decoder::new();
    for (lt, frame, sport) in cases {
        let res = dec.decode(&raw(lt, &frame));
        assert_eq!(
            res.packet().map(|p| p.src_port),
            Some(sport),
            "{lt:?} {frame:02x?}"
        );
    }
    let res = dec.decode(&raw(LinkType::Other(127), &[0u8; 40]));
    assert_eq!(res.status, DecodeStatus::UnsupportedLinkType);
}

#[test]
fn gre_yields_outer_and_inner_layers() {
    let inner = ipv4_with(
        6,
        &tcp(1234, 22, tcp_flags::ACK, &[], b"ssh"),
        9,
        0,
        [10, 0, 0, 1],
        [10, 0, 0, 2],
    );
    let mut gre = vec![0x00, 0x00, 0x08, 0x00];
    gre.extend_from_slice(&inner);
    let frame = eth(0x0800, &ipv4(47, &gre));
    let mut dec = Decoder::new();
    let res = dec.decode(&raw(LinkType::Ethernet, &frame));
    let layers: Vec<_> = res.layers().collect();
    assert_eq!(layers.len(), 2);
    assert_eq!((layers[0].0.proto, layers[0].1), (47, None));
    assert_eq!(layers[0].0.wire_len, frame.len() as u32);
    assert_eq!(
        (layers[1].0.proto, layers[1].0.dst_port, layers[1].1),
        (6, 22, Some(TunnelKind::Gre))
    );
    assert_eq!(layers[1].0.wire_len, inner.len() as u32);
    assert_eq!(layers[1].0.payload, b"ssh");
    assert_eq!(res.tunnel(), Some(TunnelKind::Gre));
}

#[test]
fn erspan_ii_and_iii_carry_ethernet() {
    let inner_eth = eth(0x0800, &ipv4(17, &udp(7, 9, b"mirror")));
    // ERSPAN II: GRE with the sequence bit, 8-byte ERSPAN header.
    let mut gre2 = vec![0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1];
    gre2.extend_from_slice(&[0x10, 0x01, 0, 0, 0, 0, 0, 0]);
    gre2.extend_from_slice(&inner_eth);
    // ERSPAN III: 12-byte header without the platform subheader.
    let mut gre3 = vec![0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 1];
    gre3.extend_from_slice(&[0x20, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    gre3.extend_from_slice(&inner_eth);
    let mut dec = Decoder::new();
    for gre in [gre2, gre3] {
        let frame = eth(0x0800, &ipv4(47, &gre));
        let res = dec.decode(&raw(LinkType::Ethernet, &frame));
        let p = res.packet().unwrap();
        assert_eq!((p.src_port, p.dst_port, p.payload), (7, 9, &b"mirror"[..]));
        assert_eq!(res.tunnel(), Some(TunnelKind::Erspan));
    }
    assert_eq!(dec.stats.erspan, 2);
}

#[test]
fn vxlan_and_ip_in_ip() {
    let inner = ipv4(1, &[8, 0, 0, 0, 0, 1, 0, 1, b'p', b'i', b'n', b'g']);
    let mut vx = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    vx.extend_from_slice(&eth(0x0800, &inner));
    let frame = eth(0x0800, &ipv4(17, &udp(50000, 4789, &vx)));
    let mut dec = Decoder::new();
    let res = dec.decode(&raw(LinkType::Ethernet, &frame));
    let layers: Vec<_> = res.layers().collect();
    assert_eq!(layers.len(), 2);
    assert_eq!((layers[0].0.proto, layers[0].0.dst_port), (17, 4789));
    assert_eq!(
        layers[1].0.transport,
        Transport::Icmp {
            icmp_type: 8,
            icmp_code: 0
        }
    );
    assert_eq!(layers[1].0.wire_len, inner.len() as u32);
    // Logged packets: the whole frame outside, the tunnel packet inside (after the inner
    // Ethernet header, where Suricata starts its VXLAN tunnel packet).
    assert_eq!(layers[0].0.frame, &frame[..]);
    assert_eq!(layers[1].0.frame, &inner[..]);
    assert_eq!(layers[1].1, Some(TunnelKind::Vxlan));
    assert_eq!((layers[0].0.tunnel_depth, layers[1].0.tunnel_depth), (0, 1));
    let outer: Vec<_> = res.outer_packets().map(|p| p.proto).collect();
    assert_eq!(outer, [17], "the VXLAN UDP packet is the one outer layer");

    let six = ipv6(17, &udp(30000, 13000, b"six"));
    let frame = eth(0x0800, &ipv4(41, &six));
    let res = dec.decode(&raw(LinkType::Ethernet, &frame));
    assert_eq!(res.len(), 2);
    assert_eq!(res.packet().unwrap().ip_version(), 6);
    assert_eq!(res.tunnel(), Some(TunnelKind::Ipv6InIpv4));
    assert_eq!(res.packet().unwrap().frame, &six[..]);

    // IPv6 carrying something that is not IPv6: the outer packet is invalid (as Suricata).
    let frame = eth(0x86dd, &ipv6(41, &[0x45u8; 40]));
    let res = dec.decode(&raw(LinkType::Ethernet, &frame));
    assert_eq!(res.status, DecodeStatus::Invalid);
    assert_eq!(
        events(&res),
        vec!["decoder.ipv6.ipv6_in_ipv6_wrong_version"]
    );
}

#[test]
fn nested_encapsulation_is_bounded() {
    // 40 VNTags in a row, then IPv4: past MAX_ENCAPSULATIONS.
    let mut body = Vec::new();
    for _ in 0..40 {
        body.extend_from_slice(&[0, 0, 0, 0, 0x89, 0x26]);
    }
    body.truncate(body.len() - 2);
    body.extend_from_slice(&[0x08, 0x00]);
    body.extend_from_slice(&ipv4(17, &udp(1, 2, b"")));
    let frame = eth(0x8926, &body);
    let mut dec = Decoder::new();
    let res = dec.decode(&raw(LinkType::Ethernet, &frame));
    assert_eq!(res.status, DecodeStatus::Invalid);
    assert_eq!(events(&res), vec!["decoder.too_many_layers"]);

    // Tunnels nested past MAX_LAYERS keep the outer layers and stop.
    let mut pkt = ipv4(17, &udp(1, 2, b"deep"));
    for _ in 0..6 {
        pkt = ipv4(4, &pkt);
    }
    let frame = eth(0x0800, &pkt);
    let res = dec.decode(&raw(LinkType::Ethernet, &frame));
    assert_eq!(res.len(), MAX_LAYERS);
    assert!(events(&res).contains(&"decoder.too_many_layers"));
}

fn any_linktype() -> impl Strategy<Value = LinkType> {
    prop_oneof![
        Just(LinkType::Ethernet),
        Just(LinkType::Null),
        Just(LinkType::Raw),
        Just(LinkType::Ipv4),
        Just(LinkType::Ipv6),
        Just(LinkType::LinuxSll),
        Just(LinkType::LinuxSll2),
        Just(LinkType::Ppp),
        Just(LinkType::CHdlc),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(lt in any_linktype(), data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut dec = Decoder::new();
        let res = dec.decode(&raw(lt, &data));
        for p in res.packets() {
            prop_assert!(p.payload.len() <= data.len());
            prop_assert!(p.frame.len() <= data.len());
        }
    }

    #[test]
    fn nsh_chdlc_and_tcp_options_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..120),
        opts in proptest::collection::vec(any::<u8>(), 0..10),
    ) {
        let mut dec = Decoder::new();
        let _ = dec.decode(&raw(LinkType::Ethernet, &eth(0x894f, &body)));
        let mut chdlc = vec![0x0f, 0x00, 0x89, 0x4f];
        chdlc.extend_from_slice(&body);
        let _ = dec.decode(&raw(LinkType::CHdlc, &chdlc));
        // Options padded to a multiple of 4, with a TFO-looking start.
        let mut o = vec![34, 4];
        o.extend_from_slice(&opts);
        while o.len() % 4 != 0 {
            o.push(0);
        }
        let frame = eth(0x0800, &ipv4(6, &tcp(1, 2, tcp_flags::SYN, &o, b"data")));
        let res = dec.decode(&raw(LinkType::Ethernet, &frame));
        prop_assert!(res.packet().is_some());
    }

    #[test]
    fn mutated_frames_never_panic(
        which in 0usize..4,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let inner = ipv4(6, &tcp(1, 2, tcp_flags::SYN, &[3, 3, 7, 1], b"data"));
        let mut gre = vec![0x00, 0x00, 0x08, 0x00];
        gre.extend_from_slice(&inner);
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        vx.extend_from_slice(&eth(0x0800, &inner));
        let frames = [
            eth(0x0800, &inner),
            eth(0x0800, &ipv4(47, &gre)),
            eth(0x0800, &ipv4(17, &udp(1, 4789, &vx))),
            eth(0x86dd, &ipv6(44, &[6, 0, 0, 1, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8])),
        ];
        let mut frame = frames[which].clone();
        for (at, value) in flips {
            let n = frame.len();
            frame[at % n] = value;
        }
        frame.truncate(cut % (frame.len() + 1));
        let mut dec = Decoder::new();
        let _ = dec.decode(&raw(LinkType::Ethernet, &frame));
    }
}

#[test]
fn ipv6_ah_with_zero_length_is_taken_as_twelve_bytes_as_suricata_does() {
    // AH (next header ICMPv6, length 0), then an echo request whose identifier is 0x0000 and
    // sequence 0x001f: Suricata skips 12 bytes of AH, so it reads type 0 code 0.
    let mut payload = vec![58, 0, 0, 0, 0, 0, 0, 0];
    payload.extend_from_slice(&[0x80, 0, 0xfa, 0xe6, 0, 0, 0, 0x1f, 1, 2, 3, 4]);
    let frame = eth(0x86dd, &ipv6(51, &payload));
    let mut dec = Decoder::new();
    let res = dec.decode(&raw(LinkType::Ethernet, &frame));
    let p = res.packet().expect("decoded");
    assert_eq!(p.proto, 58);
    assert_eq!(p.transport, Transport::Icmp { icmp_type: 0, icmp_code: 0 });
    // A proper length (1 = 12 bytes) is read as RFC 4302 says.
    let mut payload = vec![58, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    payload.extend_from_slice(&[0x80, 0, 0xfa, 0xe6, 0, 0, 0, 0x1f]);
    let frame = eth(0x86dd, &ipv6(51, &payload));
    let res = dec.decode(&raw(LinkType::Ethernet, &frame));
    assert_eq!(res.packet().unwrap().transport, Transport::Icmp { icmp_type: 128, icmp_code: 0 });
}
