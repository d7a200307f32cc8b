//! The scan detector on scans generated here, packet by packet: a SYN scan (closed ports reset,
//! open ports half-opened), a connect scan, a UDP scan and a horizontal sweep, each from its own
//! source, plus an ordinary busy client that must stay silent.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;

use serde_json::Value;
use ward_sensor::config::{EveOutput, Input, SensorConfig};
use ward_sensor::detect::{DetectConfig, Engines};
use ward_sensor::ward_detect::ScanConfig;

use common::run_config;

const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;
const PSH: u8 = 0x08;

struct Pcap {
    buf: Vec<u8>,
    t: u64,
}

fn csum(data: &[u8], mut sum: u32) -> u16 {
    for c in data.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl Pcap {
    fn new() -> Pcap {
        let mut buf = Vec::new();
        buf.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
        buf.extend_from_slice(&2u16.to_le_bytes());
        buf.extend_from_slice(&4u16.to_le_bytes());
        buf.extend_from_slice(&[0; 8]);
        buf.extend_from_slice(&65535u32.to_le_bytes());
        buf.extend_from_slice(&1u32.to_le_bytes());
        Pcap { buf, t: 1_700_000_000_000_000 }
    }

    fn frame(&mut self, ip_payload: &[u8], proto: u8, src: Ipv4Addr, dst: Ipv4Addr) {
        self.t += 2_000; // 2 ms apart
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
        let total = 20 + ip_payload.len();
        let mut ip = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 1, 0x40, 0, 64, proto, 0, 0];
        ip.extend_from_slice(&src.octets());
        ip.extend_from_slice(&dst.octets());
        let c = csum(&ip, 0);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(ip_payload);
        let (s, us) = (self.t / 1_000_000, self.t % 1_000_000);
        self.buf.extend_from_slice(&(s as u32).to_le_bytes());
        self.buf.extend_from_slice(&(us as u32).to_le_bytes());
        self.buf.extend_from_slice(&(f.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(&(f.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(&f);
    }

    fn pseudo(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u32 {
        let mut p = Vec::new();
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(&[0, proto, (len >> 8) as u8, len as u8]);
        p.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]]) as u32).sum()
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp(&mut self, src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, seq: u32, ack: u32, flags: u8, data: &[u8]) {
        let mut t = Vec::new();
        t.extend_from_slice(&sport.to_be_bytes());
        t.extend_from_slice(&dport.to_be_bytes());
        t.extend_from_slice(&seq.to_be_bytes());
        t.extend_from_slice(&ack.to_be_bytes());
        t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        t.extend_from_slice(data);
        let c = csum(&t, Self::pseudo(src, dst, 6, t.len()));
        t[16..18].copy_from_slice(&c.to_be_bytes());
        self.frame(&t, 6, src, dst);
    }

    fn udp(&mut self, src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, data: &[u8]) {
        let len = 8 + data.len();
        let mut u = Vec::new();
        u.extend_from_slice(&sport.to_be_bytes());
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&(len as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(data);
        let c = csum(&u, Self::pseudo(src, dst, 17, len));
        u[6..8].copy_from_slice(&c.to_be_bytes());
        self.frame(&u, 17, src, dst);
    }
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn scan_detector_reports_generated_syn_connect_udp_and_sweep_scans_once_each() {
    let mut p = Pcap::new();
    let target = ip("10.0.0.5");
    // SYN scan from .101: ports 1..=100; 22 and 80 open (SYN-ACK, then the scanner resets).
    let a = ip("192.0.2.101");
    for port in 1..=100u16 {
        p.tcp(a, 40000, target, port, 1000, 0, SYN, b"");
        if port == 22 || port == 80 {
            p.tcp(target, port, a, 40000, 5000, 1001, SYN | ACK, b"");
            p.tcp(a, 40000, target, port, 1001, 0, RST, b"");
        } else {
            p.tcp(target, port, a, 40000, 0, 1001, RST | ACK, b"");
        }
    }
    // Connect scan from .102: full handshakes closed without data, ports 1000..=1040.
    let b = ip("192.0.2.102");
    for (i, port) in (1000..=1040u16).enumerate() {
        let sport = 50000 + i as u16;
        p.tcp(b, sport, target, port, 1, 0, SYN, b"");
        p.tcp(target, port, b, sport, 9, 2, SYN | ACK, b"");
        p.tcp(b, sport, target, port, 2, 10, ACK, b"");
        p.tcp(b, sport, target, port, 2, 10, RST | ACK, b"");
    }
    // UDP scan from .103: 60 ports, no answers.
    let c = ip("192.0.2.103");
    for port in 2000..2060u16 {
        p.udp(c, 33333, target, port, b"");
    }
    // Sweep from .104: port 445 on 60 hosts, unanswered SYNs.
    let d = ip("192.0.2.104");
    for h in 1..=60u8 {
        p.tcp(d, 41000 + h as u16, Ipv4Addr::new(10, 0, 1, h), 445, 7, 0, SYN, b"");
    }
    // A busy, ordinary client: 40 HTTP connections with data to 40 servers.
    let e = ip("192.0.2.105");
    for h in 1..=40u8 {
        let srv = Ipv4Addr::new(10, 0, 2, h);
        let sport = 42000 + h as u16;
        p.tcp(e, sport, srv, 80, 1, 0, SYN, b"");
        p.tcp(srv, 80, e, sport, 9, 2, SYN | ACK, b"");
        p.tcp(e, sport, srv, 80, 2, 10, ACK, b"");
        let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        p.tcp(e, sport, srv, 80, 2, 10, PSH | ACK, req);
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        p.tcp(srv, 80, e, sport, 10, 2 + req.len() as u32, PSH | ACK, resp);
        p.tcp(e, sport, srv, 80, 2 + req.len() as u32, 10 + resp.len() as u32, FIN | ACK, b"");
        p.tcp(srv, 80, e, sport, 10 + resp.len() as u32, 3 + req.len() as u32, FIN | ACK, b"");
        p.tcp(e, sport, srv, 80, 3 + req.len() as u32, 11 + resp.len() as u32, ACK, b"");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scans.pcap");
    std::fs::File::create(&path).unwrap().write_all(&p.buf).unwrap();

    let (engines, _) = Engines::load(DetectConfig { scan: Some(ScanConfig::default()), ..Default::default() }).unwrap();
    let config = SensorConfig {
        inputs: vec![Input::File(path)],
        workers: 2,
        eve: EveOutput::Null,
        progress: false,
        detect: Some(engines),
        ..SensorConfig::default()
    };
    let records = run_config(&config).0;
    let scans: Vec<&Value> = records.iter().filter(|r| r["event_type"] == "alert" && r["alert"]["gid"] == 9001).collect();
    let mut by_src: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for s in &scans {
        by_src.entry(s["src_ip"].as_str().unwrap().to_string()).or_default().push(s["alert"]["signature_id"].as_u64().unwrap());
    }
    assert_eq!(by_src.get("192.0.2.101"), Some(&vec![1]), "SYN scan: {by_src:?}");
    assert_eq!(by_src.get("192.0.2.102"), Some(&vec![1]), "connect scan: {by_src:?}");
    assert_eq!(by_src.get("192.0.2.103"), Some(&vec![1]), "UDP scan: {by_src:?}");
    assert_eq!(by_src.get("192.0.2.104"), Some(&vec![2]), "sweep: {by_src:?}");
    assert!(!by_src.contains_key("192.0.2.105"), "a busy client was reported: {by_src:?}");
    let syn = scans.iter().find(|s| s["src_ip"] == "192.0.2.101").unwrap();
    let ctx = &syn["alert"]["context"];
    assert!(ctx.to_string().contains("rejected"), "outcomes missing: {ctx}");
}
