//! Scan detector (Suricata has none): per source address, counts failed or probing connection
//! attempts in a sliding window and reports
//! * a **vertical** scan: many distinct destination ports on one host,
//! * a **horizontal** sweep: many distinct hosts on one port,
//! * a **block** scan: many distinct host:port pairs spread over several hosts and ports.
//!
//! Input is one [`ScanEvent`] per connection attempt once its outcome is known (the sensor's
//! flow table decides: SYN without answer, RST from the target, ICMP unreachable, handshake
//! closed without data, UDP without reply). Established connections that carried data and UDP
//! exchanges with replies are benign and are not counted, so busy clients stay silent.
//!
//! One alert per scanning source per window: after an alert, the source is quiet for one
//! window. Memory is bounded: at most [`MAX_TRACKED_SOURCES`] sources, each with at most
//! [`MAX_EVENTS_PER_SOURCE`] attempts in its window (older ones drop out first).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use ward_model::eve::{format_ip, Alert};
use ward_model::Timestamp;

/// gid of scan alerts; sid 1 vertical, 2 horizontal, 3 block.
pub const SCAN_GID: u32 = 9001;
/// Sources tracked at once per detector; beyond it, idle sources are dropped, then the oldest.
pub const MAX_TRACKED_SOURCES: usize = 65_536;
/// Attempts remembered per source within the window (bounds a fast scanner's memory).
pub const MAX_EVENTS_PER_SOURCE: usize = 4096;
/// Ports/hosts listed in an alert as "first seen".
pub const MAX_LISTED: usize = 10;

/// How a connection attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanOutcome {
    /// TCP SYN never answered (filtered port, half-open SYN scan).
    SynNoReply,
    /// TCP SYN answered by RST (closed port).
    Rejected,
    /// ICMP destination/port unreachable in reply.
    Unreachable,
    /// Handshake completed and closed by the source without payload (connect scan).
    ConnectNoData,
    /// A SYN-ACK came back but the source reset instead of completing (SYN scan, open port).
    HalfOpen,
    /// UDP datagram without any reply.
    UdpNoReply,
    /// ARP request for an address that never answered (host discovery on the local segment,
    /// as nmap does first on a LAN). Recorded with protocol 0 and port 0.
    ArpNoReply,
    /// Normal TCP connection that carried data: not counted.
    Established,
    /// UDP exchange with replies: not counted.
    UdpReplied,
}

impl ScanOutcome {
    fn counts(self) -> bool {
        !matches!(self, ScanOutcome::Established | ScanOutcome::UdpReplied)
    }
}

/// One connection attempt, supplied by the sensor's flow table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanEvent {
    pub ts: Timestamp,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub dport: u16,
    /// 6 TCP, 17 UDP.
    pub proto: u8,
    pub outcome: ScanOutcome,
}

/// Thresholds; defaults are conservative (nmap's default top-1000 scan trips vertical at once,
/// a busy browser does not trip anything because its connections carry data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanConfig {
    pub window_secs: u32,
    /// Distinct ports on one host.
    pub vertical_ports: u32,
    /// Distinct hosts on one port.
    pub horizontal_hosts: u32,
    /// Distinct host:port pairs, with at least `block_min_hosts` hosts and ports each.
    pub block_pairs: u32,
    pub block_min_hosts: u32,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig { window_secs: 60, vertical_ports: 25, horizontal_hosts: 25, block_pairs: 100, block_min_hosts: 5 }
    }
}

/// The kind of scan reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanKind {
    Vertical,
    Horizontal,
    Block,
}

impl ScanKind {
    pub fn sid(self) -> u64 {
        match self {
            ScanKind::Vertical => 1,
            ScanKind::Horizontal => 2,
            ScanKind::Block => 3,
        }
    }
}

/// A detected scan.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScanAlert {
    pub kind: ScanKind,
    pub src: IpAddr,
    /// The scanned host (vertical) or, for other kinds, the host of the attempt that tripped it.
    pub dst: IpAddr,
    /// The swept port (horizontal), else the port of the attempt that tripped it.
    pub dport: u16,
    pub proto: u8,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub distinct_ports: u32,
    pub distinct_hosts: u32,
    pub distinct_pairs: u32,
    pub attempts: u32,
    pub by_outcome: Vec<(ScanOutcome, u32)>,
    pub first_ports: Vec<u16>,
    pub first_hosts: Vec<String>,
}

#[derive(Debug, Default)]
struct Source {
    events: VecDeque<(Timestamp, IpAddr, u16, ScanOutcome)>,
    pairs: HashMap<(IpAddr, u16), u32>,
    host_ports: HashMap<IpAddr, u32>,
    port_hosts: HashMap<u16, u32>,
    last_seen: Timestamp,
    quiet_until: Timestamp,
}

impl Source {
    fn add(&mut self, dst: IpAddr, port: u16) {
        let c = self.pairs.entry((dst, port)).or_insert(0);
        *c += 1;
        if *c == 1 {
            *self.host_ports.entry(dst).or_insert(0) += 1;
            *self.port_hosts.entry(port).or_insert(0) += 1;
        }
    }

    fn remove(&mut self, dst: IpAddr, port: u16) {
        let Some(c) = self.pairs.get_mut(&(dst, port)) else { return };
        *c -= 1;
        if *c > 0 {
            return;
        }
        self.pairs.remove(&(dst, port));
        dec(&mut self.host_ports, dst);
        dec(&mut self.port_hosts, port);
    }

    fn pop_front(&mut self) {
        if let Some((_, d, p, _)) = self.events.pop_front() {
            self.remove(d, p);
        }
    }
}

fn dec<K: std::hash::Hash + Eq>(m: &mut HashMap<K, u32>, k: K) {
    if let Some(v) = m.get_mut(&k) {
        *v -= 1;
        if *v == 0 {
            m.remove(&k);
        }
    }
}

/// Per-worker scan detector (sources are sharded with their flows... or run one detector on a
/// dedicated thread fed by all workers, which sees every source's attempts).
#[derive(Debug, Default)]
pub struct ScanDetector {
    cfg: ScanConfig,
    sources: HashMap<IpAddr, Source>,
    /// Sources evicted because the table was full (for metrics).
    pub evicted: u64,
}

impl ScanDetector {
    pub fn new(cfg: ScanConfig) -> Self {
        ScanDetector { cfg, sources: HashMap::new(), evicted: 0 }
    }

    /// Number of sources currently tracked.
    pub fn tracked_sources(&self) -> usize {
        self.sources.len()
    }

    /// Records one attempt; returns an alert when this attempt makes its source a scanner.
    pub fn observe(&mut self, ev: &ScanEvent) -> Option<ScanAlert> {
        if !ev.outcome.counts() {
            return None;
        }
        let window = self.cfg.window_secs as i64 * 1_000_000;
        if !self.sources.contains_key(&ev.src) && self.sources.len() >= MAX_TRACKED_SOURCES {
            self.make_room(ev.ts, window);
        }
        let cfg = self.cfg;
        let s = self.sources.entry(ev.src).or_default();
        s.last_seen = ev.ts;
        while let Some(&(t, _, _, _)) = s.events.front() {
            if ev.ts.as_micros() - t.as_micros() > window {
                s.pop_front();
            } else {
                break;
            }
        }
        if s.events.len() >= MAX_EVENTS_PER_SOURCE {
            s.pop_front();
        }
        s.events.push_back((ev.ts, ev.dst, ev.dport, ev.outcome));
        s.add(ev.dst, ev.dport);
        if ev.ts < s.quiet_until {
            return None;
        }
        let ports_on_host = s.host_ports.get(&ev.dst).copied().unwrap_or(0);
        let hosts_on_port = s.port_hosts.get(&ev.dport).copied().unwrap_or(0);
        let pairs = s.pairs.len() as u32;
        let kind = if ports_on_host >= cfg.vertical_ports {
            ScanKind::Vertical
        } else if hosts_on_port >= cfg.horizontal_hosts {
            ScanKind::Horizontal
        } else if pairs >= cfg.block_pairs
            && s.host_ports.len() as u32 >= cfg.block_min_hosts
            && s.port_hosts.len() as u32 >= cfg.block_min_hosts
        {
            ScanKind::Block
        } else {
            return None;
        };
        s.quiet_until = ev.ts.saturating_add_micros(window);
        let mut first_ports = Vec::new();
        let mut first_hosts = Vec::new();
        let mut by_outcome: Vec<(ScanOutcome, u32)> = Vec::new();
        for &(_, d, p, o) in &s.events {
            let relevant = match kind {
                ScanKind::Vertical => d == ev.dst,
                ScanKind::Horizontal => p == ev.dport,
                ScanKind::Block => true,
            };
            if !relevant {
                continue;
            }
            if first_ports.len() < MAX_LISTED && !first_ports.contains(&p) {
                first_ports.push(p);
            }
            let h = format_ip(d);
            if first_hosts.len() < MAX_LISTED && !first_hosts.contains(&h) {
                first_hosts.push(h);
            }
            match by_outcome.iter_mut().find(|(k, _)| *k == o) {
                Some((_, n)) => *n += 1,
                None => by_outcome.push((o, 1)),
            }
        }
        let attempts = by_outcome.iter().map(|(_, n)| n).sum();
        Some(ScanAlert {
            kind,
            src: ev.src,
            dst: ev.dst,
            dport: ev.dport,
            proto: ev.proto,
            first_seen: s.events.front().map_or(ev.ts, |e| e.0),
            last_seen: ev.ts,
            distinct_ports: match kind {
                ScanKind::Vertical => ports_on_host,
                _ => s.port_hosts.len() as u32,
            },
            distinct_hosts: match kind {
                ScanKind::Horizontal => hosts_on_port,
                _ => s.host_ports.len() as u32,
            },
            distinct_pairs: pairs,
            attempts,
            by_outcome,
            first_ports,
            first_hosts,
        })
    }

    fn make_room(&mut self, now: Timestamp, window: i64) {
        let before = self.sources.len();
        self.sources.retain(|_, s| now.as_micros() - s.last_seen.as_micros() <= window);
        self.evicted += (before - self.sources.len()) as u64;
        if self.sources.len() >= MAX_TRACKED_SOURCES {
            // Still full of active sources: drop the least recently seen one.
            if let Some(oldest) = self.sources.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| *k) {
                self.sources.remove(&oldest);
                self.evicted += 1;
            }
        }
    }
}

impl ScanAlert {
    /// The EVE alert object: gid 9001, sid by kind, counts under `context.scan`.
    pub fn to_eve_alert(&self) -> Alert {
        let kind = match self.kind {
            ScanKind::Vertical => "vertical port scan",
            ScanKind::Horizontal => "horizontal sweep",
            ScanKind::Block => "block scan",
        };
        let signature = match self.kind {
            ScanKind::Vertical => format!("WARD SCAN {kind} of {} ({} ports)", format_ip(self.dst), self.distinct_ports),
            ScanKind::Horizontal => format!("WARD SCAN {kind} of port {} ({} hosts)", self.dport, self.distinct_hosts),
            ScanKind::Block => format!("WARD SCAN {kind} ({} hosts, {} ports)", self.distinct_hosts, self.distinct_ports),
        };
        let outcomes: serde_json::Map<String, serde_json::Value> = self
            .by_outcome
            .iter()
            .map(|(o, n)| (serde_json::to_value(o).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(), (*n).into()))
            .collect();
        Alert {
            action: "allowed".into(),
            gid: SCAN_GID,
            signature_id: self.kind.sid(),
            rev: 1,
            signature,
            category: "Detection of a Network Scan".into(),
            severity: 2,
            metadata: None,
            source: None,
            target: None,
            references: vec![],
            context: Some(serde_json::json!({
                "scan": {
                    "kind": self.kind,
                    "distinct_ports": self.distinct_ports,
                    "distinct_hosts": self.distinct_hosts,
                    "distinct_pairs": self.distinct_pairs,
                    "attempts": self.attempts,
                    "outcomes": outcomes,
                    "first_ports": self.first_ports,
                    "first_hosts": self.first_hosts,
                    "first_seen": self.first_seen,
                    "last_seen": self.last_seen,
                    "duration_secs": (self.last_seen.as_micros() - self.first_seen.as_micros()) as f64 / 1e6,
                }
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ev(ms: i64, src: &str, dst: &str, port: u16, proto: u8, outcome: ScanOutcome) -> ScanEvent {
        ScanEvent { ts: Timestamp::from_micros(1_700_000_000_000_000 + ms * 1000), src: ip(src), dst: ip(dst), dport: port, proto, outcome }
    }

    fn run(d: &mut ScanDetector, evs: &[ScanEvent]) -> Vec<ScanAlert> {
        evs.iter().filter_map(|e| d.observe(e)).collect()
    }

    #[test]
    fn syn_scan_of_one_host_is_one_vertical_alert() {
        let mut d = ScanDetector::new(ScanConfig::default());
        let evs: Vec<_> = (1..=1000u16)
            .map(|p| ev(p as i64, "203.0.113.9", "10.0.0.5", p, 6, if p % 10 == 0 { ScanOutcome::HalfOpen } else { ScanOutcome::Rejected }))
            .collect();
        let alerts = run(&mut d, &evs);
        assert_eq!(alerts.len(), 1, "one alert per source per window");
        let a = &alerts[0];
        assert_eq!(a.kind, ScanKind::Vertical);
        assert_eq!(a.distinct_ports, 25);
        assert_eq!(a.first_ports[..3], [1, 2, 3]);
        assert_eq!(a.first_hosts, ["10.0.0.5"]);
        let eve = a.to_eve_alert();
        assert_eq!((eve.gid, eve.signature_id), (SCAN_GID, 1));
        assert_eq!(eve.context.as_ref().unwrap()["scan"]["distinct_ports"], 25);
        assert!(eve.context.as_ref().unwrap()["scan"]["outcomes"]["rejected"].as_u64().unwrap() > 0);
    }

    #[test]
    fn new_window_alerts_again() {
        let mut d = ScanDetector::new(ScanConfig::default());
        let mut evs: Vec<_> = (1..=100u16).map(|p| ev(p as i64, "203.0.113.9", "10.0.0.5", p, 6, ScanOutcome::SynNoReply)).collect();
        evs.extend((1..=100u16).map(|p| ev(120_000 + p as i64, "203.0.113.9", "10.0.0.5", 1000 + p, 6, ScanOutcome::SynNoReply)));
        assert_eq!(run(&mut d, &evs).len(), 2);
    }

    #[test]
    fn connect_scan_and_udp_scan() {
        let mut d = ScanDetector::new(ScanConfig::default());
        let connect: Vec<_> = (1..=30u16).map(|p| ev(p as i64 * 100, "198.51.100.1", "10.0.0.7", p, 6, ScanOutcome::ConnectNoData)).collect();
        assert_eq!(run(&mut d, &connect).len(), 1);
        let udp: Vec<_> = (1..=30u16).map(|p| ev(p as i64 * 100, "198.51.100.2", "10.0.0.7", 1000 + p, 17, ScanOutcome::UdpNoReply)).collect();
        let a = run(&mut d, &udp);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].proto, 17);
    }

    #[test]
    fn sweep_of_one_port_is_horizontal() {
        let mut d = ScanDetector::new(ScanConfig::default());
        let evs: Vec<_> = (1..=254u8).map(|h| ev(h as i64 * 10, "192.0.2.50", &format!("10.1.1.{h}"), 445, 6, ScanOutcome::SynNoReply)).collect();
        let a = run(&mut d, &evs);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].kind, ScanKind::Horizontal);
        assert_eq!(a[0].dport, 445);
        assert_eq!(a[0].distinct_hosts, 25);
        assert_eq!(a[0].to_eve_alert().signature_id, 2);
    }

    #[test]
    fn block_scan_spread_over_hosts_and_ports() {
        let mut d = ScanDetector::new(ScanConfig::default());
        let mut evs = vec![];
        let mut t = 0;
        for h in 1..=20u8 {
            for p in [21u16, 22, 23, 25, 80, 110, 139, 443, 445, 3389] {
                t += 5;
                evs.push(ev(t, "192.0.2.77", &format!("10.2.0.{h}"), p, 6, ScanOutcome::Rejected));
            }
        }
        let a = run(&mut d, &evs);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].kind, ScanKind::Block);
        assert!(a[0].distinct_pairs >= 100);
    }

    #[test]
    fn normal_traffic_stays_silent() {
        let mut d = ScanDetector::new(ScanConfig::default());
        let mut evs = vec![];
        // A browser: 200 data-carrying connections to 80 hosts on 443/80 in a minute.
        for i in 0..200i64 {
            let h = i % 80;
            evs.push(ev(i * 300, "10.0.0.20", &format!("93.184.{}.{}", h / 200, h), if i % 3 == 0 { 80 } else { 443 }, 6, ScanOutcome::Established));
        }
        // DNS client with answers, plus a few failures (a dead server, a closed port).
        for i in 0..100i64 {
            evs.push(ev(i * 500, "10.0.0.20", "10.0.0.53", 53, 17, ScanOutcome::UdpReplied));
        }
        for i in 0..5i64 {
            evs.push(ev(i * 1000, "10.0.0.20", "10.0.0.99", 8080 + i as u16, 6, ScanOutcome::Rejected));
            evs.push(ev(i * 1000, "10.0.0.20", &format!("10.0.1.{i}"), 443, 6, ScanOutcome::SynNoReply));
        }
        assert!(run(&mut d, &evs).is_empty());
        // Slow failures spread over time never accumulate past the window.
        let slow: Vec<_> = (0..100i64).map(|i| ev(i * 10_000, "10.0.0.21", "10.0.0.99", 1000 + i as u16, 6, ScanOutcome::Rejected)).collect();
        assert!(run(&mut d, &slow).is_empty());
    }

    #[test]
    fn memory_is_bounded() {
        let mut d = ScanDetector::new(ScanConfig::default());
        for i in 0..(MAX_TRACKED_SOURCES as u32 + 100) {
            let src = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            d.observe(&ScanEvent { ts: Timestamp::from_micros(i as i64), src, dst: ip("10.9.9.9"), dport: 1, proto: 6, outcome: ScanOutcome::Rejected });
        }
        assert!(d.tracked_sources() <= MAX_TRACKED_SOURCES);
        assert!(d.evicted >= 100);
        let mut d = ScanDetector::new(ScanConfig { vertical_ports: u32::MAX, horizontal_hosts: u32::MAX, block_pairs: u32::MAX, ..Default::default() });
        for p in 0..10_000u32 {
            d.observe(&ev(p as i64 / 100, "192.0.2.1", "10.0.0.1", p as u16, 6, ScanOutcome::Rejected));
        }
        assert_eq!(d.sources.values().next().unwrap().events.len(), MAX_EVENTS_PER_SOURCE);
        assert_eq!(d.sources.values().next().unwrap().pairs.len(), MAX_EVENTS_PER_SOURCE);
    }
}
