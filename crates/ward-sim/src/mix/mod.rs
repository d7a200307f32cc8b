//! The mixed-traffic pcap generator: [`generate`] writes a classic pcap of realistic election
//! office traffic until a target size is reached.
//!
//! Design: `concurrency` sessions (HTTP, DNS, TLS, bulk TCP, ICMP, fragmented UDP, malformed
//! packets) are live at once; a min-heap on each session's next event time picks which emits
//! next, so packets of many flows interleave and timestamps only ever advance. A finished
//! session is replaced by a new one of a kind drawn from [`MixWeights`].
//!
//! Invariants: output is a pure function of [`Options`] (same seed, same bytes); every frame
//! except the deliberately malformed ones has correct lengths and checksums; TCP sequence and
//! acknowledgement numbers are consistent within each flow. The file ends when `target_bytes`
//! is reached, so flows still open at that instant are cut, as in any real capture.
//!
//! Limits: IPv4 only for fragments (IPv6 flows are never fragmented); at most
//! [`MAX_CONCURRENCY`] sessions; single-threaded (about the speed of the disk on one core).

pub mod content;
pub mod frame;
mod rng;
mod sessions;
mod tcp;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{BufWriter, Write};

pub use content::Pools;
pub use rng::Rng;

use crate::pcap;
use sessions::Session;

/// Upper bound of concurrent sessions: the heap and session slots stay small enough for cache,
/// and it is far above what a jurisdiction's uplink carries at once in a benchmark.
pub const MAX_CONCURRENCY: usize = 1_000_000;
/// Buffer in front of the writer: large sequential writes keep the generator disk-bound.
const WRITE_BUFFER: usize = 1 << 20;
/// Default start of the capture: Election Day 2026 (3 Nov 2026 13:00:00 UTC), in microseconds.
pub const ELECTION_DAY_US: u64 = 1_793_710_800 * 1_000_000;

/// Errors of generation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenError {
    /// Writing the output failed.
    #[error("cannot write the capture: {0}; check free disk space and the output path")]
    Io(#[from] std::io::Error),
    /// Building a frame failed (an internal size invariant was broken).
    #[error("cannot build a frame: {0}")]
    Build(String),
    /// Creating the synthetic certificates failed.
    #[error("cannot create the synthetic tls certificates: {0}")]
    Cert(String),
    /// An option is out of range.
    #[error("invalid generator option: {0}")]
    Option(String),
}

/// Kinds of flow in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlowKind {
    Http,
    Dns,
    Tls,
    Bulk,
    Icmp,
    UdpFragments,
    Malformed,
}

impl FlowKind {
    pub const ALL: [FlowKind; 7] =
        [FlowKind::Http, FlowKind::Dns, FlowKind::Tls, FlowKind::Bulk, FlowKind::Icmp, FlowKind::UdpFragments, FlowKind::Malformed];

    /// Name used on the command line and in summaries.
    pub fn name(self) -> &'static str {
        match self {
            FlowKind::Http => "http",
            FlowKind::Dns => "dns",
            FlowKind::Tls => "tls",
            FlowKind::Bulk => "bulk",
            FlowKind::Icmp => "icmp",
            FlowKind::UdpFragments => "frag",
            FlowKind::Malformed => "malformed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Relative number of new sessions of each kind (not bytes: a bulk session is megabytes, a DNS
/// session two packets).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MixWeights {
    pub http: u32,
    pub dns: u32,
    pub tls: u32,
    pub bulk: u32,
    pub icmp: u32,
    pub frag: u32,
    pub malformed: u32,
}

impl Default for MixWeights {
    /// An office network: mostly DNS lookups and HTTPS, some plain HTTP (updates, OCSP, internal
    /// apps), occasional large transfers (file shares, downloads), pings and oddities.
    fn default() -> Self {
        MixWeights { http: 16, dns: 40, tls: 28, bulk: 1, icmp: 5, frag: 3, malformed: 3 }
    }
}

impl MixWeights {
    fn get(&self, k: FlowKind) -> u32 {
        match k {
            FlowKind::Http => self.http,
            FlowKind::Dns => self.dns,
            FlowKind::Tls => self.tls,
            FlowKind::Bulk => self.bulk,
            FlowKind::Icmp => self.icmp,
            FlowKind::UdpFragments => self.frag,
            FlowKind::Malformed => self.malformed,
        }
    }

    /// Parses `kind=weight,...` (kinds: http, dns, tls, bulk, icmp, frag, malformed); kinds not
    /// named keep their default weight.
    pub fn parse(s: &str) -> Result<MixWeights, GenError> {
        let mut w = MixWeights::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| GenError::Option(format!("mix entry {part:?} is not kind=weight")))?;
            let v: u32 = v
                .trim()
                .parse()
                .map_err(|_| GenError::Option(format!("mix weight {v:?} for {k} is not a whole number")))?;
            match k.trim() {
                "http" => w.http = v,
                "dns" => w.dns = v,
                "tls" => w.tls = v,
                "bulk" => w.bulk = v,
                "icmp" => w.icmp = v,
                "frag" => w.frag = v,
                "malformed" => w.malformed = v,
                other => {
                    return Err(GenError::Option(format!(
                        "unknown mix kind {other:?}; use http, dns, tls, bulk, icmp, frag or malformed"
                    )))
                }
            }
        }
        if FlowKind::ALL.iter().all(|k| w.get(*k) == 0) {
            return Err(GenError::Option("every mix weight is zero; give at least one kind a weight".into()));
        }
        Ok(w)
    }

    fn pick(&self, rng: &mut Rng) -> FlowKind {
        let total: u64 = FlowKind::ALL.iter().map(|k| u64::from(self.get(*k))).sum();
        let mut x = rng.below(total);
        for k in FlowKind::ALL {
            let w = u64::from(self.get(k));
            if x < w {
                return k;
            }
            x -= w;
        }
        FlowKind::Dns
    }
}

/// Generator options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Stop once the file reaches this many bytes (headers included).
    pub target_bytes: u64,
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of office hosts (clients), 10.20.0.10 upwards.
    pub hosts: u32,
    /// Sessions live at once.
    pub concurrency: usize,
    /// Session mix.
    pub weights: MixWeights,
    /// Share of hosts that also use IPv6 (their flows are IPv6).
    pub ipv6_share: f64,
    /// Share of hosts on an 802.1Q-tagged segment.
    pub vlan_share: f64,
    /// Timestamp of the first packet, microseconds since the Unix epoch.
    pub start_us: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            target_bytes: 64 << 20,
            seed: 1,
            hosts: 250,
            concurrency: 1000,
            weights: MixWeights::default(),
            ipv6_share: 0.15,
            vlan_share: 0.10,
            start_us: ELECTION_DAY_US,
        }
    }
}

impl Options {
    fn validate(&self) -> Result<(), GenError> {
        if self.hosts == 0 || self.hosts > 60_000 {
            return Err(GenError::Option(format!("hosts must be 1..=60000, got {}", self.hosts)));
        }
        if self.concurrency == 0 || self.concurrency > MAX_CONCURRENCY {
            return Err(GenError::Option(format!("concurrency must be 1..={MAX_CONCURRENCY}, got {}", self.concurrency)));
        }
        for (name, v) in [("ipv6 share", self.ipv6_share), ("vlan share", self.vlan_share)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(GenError::Option(format!("{name} must be between 0 and 1, got {v}")));
            }
        }
        if FlowKind::ALL.iter().all(|k| self.weights.get(*k) == 0) {
            return Err(GenError::Option("every mix weight is zero; give at least one kind a weight".into()));
        }
        Ok(())
    }
}

/// Per-kind totals.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct KindSummary {
    pub kind: &'static str,
    pub flows: u64,
    pub packets: u64,
    /// Captured frame bytes.
    pub bytes: u64,
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub packets: u64,
    /// Sum of captured frame lengths.
    pub frame_bytes: u64,
    /// Size of the pcap file.
    pub file_bytes: u64,
    /// Time from the first to the last packet.
    pub duration_us: u64,
    pub flows: u64,
    pub ipv6_flows: u64,
    pub vlan_flows: u64,
    /// IPv4 fragments written (by the frag sessions).
    pub fragments: u64,
    pub by_kind: Vec<KindSummary>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "packets {}  frame bytes {}  file bytes {}  capture span {:.1} s",
            self.packets,
            self.frame_bytes,
            self.file_bytes,
            self.duration_us as f64 / 1e6
        )?;
        writeln!(
            f,
            "flows {}  (ipv6 {}, vlan-tagged {})  ipv4 fragments {}",
            self.flows, self.ipv6_flows, self.vlan_flows, self.fragments
        )?;
        writeln!(f, "{:<10} {:>10} {:>12} {:>14} {:>7}", "kind", "flows", "packets", "bytes", "bytes%")?;
        for k in &self.by_kind {
            let pct = if self.frame_bytes == 0 { 0.0 } else { 100.0 * k.bytes as f64 / self.frame_bytes as f64 };
            writeln!(f, "{:<10} {:>10} {:>12} {:>14} {:>6.1}%", k.kind, k.flows, k.packets, k.bytes, pct)?;
        }
        Ok(())
    }
}

/// Everything a session needs to make its next packet.
pub(crate) struct Ctx<'a> {
    pub rng: Rng,
    pub pools: &'a Pools,
    pub opts: &'a Options,
    pub frame: Vec<u8>,
    pub payload: Vec<u8>,
    /// Wire length of the frame in `frame` when larger than its captured length.
    pub orig_len: Option<u32>,
    /// IPv4 identification counter for fragmented datagrams.
    pub ip_ident: u16,
}

struct Slot {
    session: Session,
    kind: FlowKind,
    counted: bool,
}

/// Writes a pcap of mixed traffic to `writer` until `opts.target_bytes` is reached.
pub fn generate<W: Write>(writer: W, opts: &Options) -> Result<Summary, GenError> {
    opts.validate()?;
    let mut rng = Rng::new(opts.seed);
    let pools = Pools::build(&mut rng)?;
    let mut ctx = Ctx {
        rng,
        pools: &pools,
        opts,
        frame: Vec::with_capacity(16 << 10),
        payload: Vec::with_capacity(16 << 10),
        orig_len: None,
        ip_ident: 1,
    };
    let mut w = BufWriter::with_capacity(WRITE_BUFFER, writer);
    pcap::write_global_header(&mut w)?;

    let mut summary = Summary { file_bytes: pcap::GLOBAL_HEADER_LEN, ..Default::default() };
    let mut kinds: Vec<KindSummary> =
        FlowKind::ALL.iter().map(|k| KindSummary { kind: k.name(), ..Default::default() }).collect();

    let mut slots: Vec<Slot> = Vec::with_capacity(opts.concurrency);
    let mut heap: BinaryHeap<Reverse<(u64, u64, usize)>> = BinaryHeap::with_capacity(opts.concurrency + 1);
    let mut order = 0u64;
    for i in 0..opts.concurrency {
        let kind = opts.weights.pick(&mut ctx.rng);
        let session = Session::new(kind, &mut ctx)?;
        slots.push(Slot { session, kind, counted: false });
        // Spread the first sessions over the first 50 ms.
        heap.push(Reverse((ctx.rng.below(50_000), order, i)));
        order += 1;
    }
    let mut last_t = 0u64;
    while summary.file_bytes < opts.target_bytes {
        let Some(Reverse((t, _, i))) = heap.pop() else { break };
        let slot = &mut slots[i];
        ctx.orig_len = None;
        let next = slot.session.step(&mut ctx)?;
        let k = &mut kinds[slot.kind.index()];
        if !slot.counted {
            slot.counted = true;
            k.flows += 1;
            summary.flows += 1;
            if slot.session.is_v6() {
                summary.ipv6_flows += 1;
            }
            if slot.session.is_vlan() {
                summary.vlan_flows += 1;
            }
        }
        let len = ctx.frame.len() as u64;
        let orig = ctx.orig_len.unwrap_or(ctx.frame.len() as u32);
        pcap::write_record(&mut w, opts.start_us + t, &ctx.frame, orig)?;
        k.packets += 1;
        k.bytes += len;
        summary.packets += 1;
        summary.frame_bytes += len;
        summary.file_bytes += pcap::RECORD_HEADER_LEN + len;
        if slot.kind == FlowKind::UdpFragments && sessions::is_fragment(&ctx.frame) {
            summary.fragments += 1;
        }
        last_t = t;
        match next {
            Some(delay) => heap.push(Reverse((t + delay.max(1), order, i))),
            None => {
                let kind = opts.weights.pick(&mut ctx.rng);
                slot.session = Session::new(kind, &mut ctx)?;
                slot.kind = kind;
                slot.counted = false;
                heap.push(Reverse((t + 1 + ctx.rng.below(2_000), order, i)));
            }
        }
        order += 1;
    }
    w.flush()?;
    summary.duration_us = last_t;
    summary.by_kind = kinds;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    use std::collections::HashMap;

    /// Minimal pcap reader for the tests: (ts_us, caplen, origlen, data) per record.
    fn records(buf: &[u8]) -> Vec<(u64, u32, u32, &[u8])> {
        assert_eq!(&buf[..4], &0xa1b2_c3d4u32.to_le_bytes());
        assert_eq!(u32::from_le_bytes(buf[20..24].try_into().unwrap()), 1, "ethernet link type");
        let mut out = Vec::new();
        let mut off = 24;
        while off < buf.len() {
            assert!(off + 16 <= buf.len(), "record header cut at {off}");
            let h = &buf[off..off + 16];
            let sec = u64::from(u32::from_le_bytes(h[0..4].try_into().unwrap()));
            let usec = u64::from(u32::from_le_bytes(h[4..8].try_into().unwrap()));
            assert!(usec < 1_000_000);
            let cap = u32::from_le_bytes(h[8..12].try_into().unwrap());
            let orig = u32::from_le_bytes(h[12..16].try_into().unwrap());
            assert!(cap <= orig && cap <= pcap::SNAPLEN);
            let end = off + 16 + cap as usize;
            assert!(end <= buf.len(), "record data cut at {off}");
            out.push((sec * 1_000_000 + usec, cap, orig, &buf[off + 16..end]));
            off = end;
        }
        out
    }

    fn small(seed: u64, size: u64) -> (Vec<u8>, Summary) {
        let opts = Options { target_bytes: size, seed, concurrency: 300, ..Default::default() };
        let mut buf = Vec::new();
        let s = generate(&mut buf, &opts).unwrap();
        (buf, s)
    }

    #[test]
    fn record_framing_totals_and_monotonic_time() {
        let (buf, s) = small(42, 4 << 20);
        assert_eq!(buf.len() as u64, s.file_bytes);
        assert!(s.file_bytes >= 4 << 20);
        let recs = records(&buf);
        assert_eq!(recs.len() as u64, s.packets);
        assert_eq!(recs.iter().map(|r| u64::from(r.1)).sum::<u64>(), s.frame_bytes);
        assert!(recs.windows(2).all(|w| w[0].0 <= w[1].0), "timestamps must not go back");
        assert!(recs[0].0 >= ELECTION_DAY_US);
        // The cross-check against an independent parser.
        let t = pcap::count_reader(std::io::Cursor::new(buf.clone())).unwrap();
        assert_eq!((t.packets, t.captured_bytes, t.truncated_files), (s.packets, s.frame_bytes, 0));
        for k in FlowKind::ALL {
            let ks = &s.by_kind[k.index()];
            assert!(ks.flows > 0 && ks.packets > 0, "no {} flows in 4 MiB", k.name());
        }
        assert!(s.ipv6_flows > 0 && s.vlan_flows > 0 && s.fragments > 0);
    }

    #[test]
    fn same_seed_same_bytes_other_seed_differs() {
        let (a, _) = small(7, 1 << 20);
        let (b, _) = small(7, 1 << 20);
        let (c, _) = small(8, 1 << 20);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn well_formed_frames_have_valid_checksums_and_tcp_streams_are_consistent() {
        let (buf, _) = small(3, 3 << 20);
        let mut checked = 0u64;
        let mut interleaved_flows = std::collections::HashSet::new();
        let mut prev_flow = None;
        // Next expected sequence number per (src, dst, sport, dport) for data segments.
        let mut next_seq: HashMap<(Vec<u8>, Vec<u8>, u16, u16), u32> = HashMap::new();
        let mut saw = (0u32, 0u32, 0u32, 0u32); // http, tls sni, dns, icmp
        for (_, cap, orig, data) in records(&buf) {
            if cap != orig {
                continue; // snap-truncated (malformed kind)
            }
            let Ok(p) = SlicedPacket::from_ethernet(data) else { continue };
            let (src, dst, v4) = match &p.net {
                Some(NetSlice::Ipv4(ip)) => {
                    let h = ip.header();
                    if h.ihl() < 5 {
                        continue;
                    }
                    let hdr = h.to_header();
                    if hdr.header_checksum != hdr.calc_header_checksum() {
                        panic!("bad ipv4 header checksum");
                    }
                    if h.is_fragmenting_payload() {
                        continue;
                    }
                    (h.source().to_vec(), h.destination().to_vec(), Some(hdr))
                }
                Some(NetSlice::Ipv6(ip)) => (ip.header().source().to_vec(), ip.header().destination().to_vec(), None),
                _ => continue,
            };
            match &p.transport {
                Some(TransportSlice::Tcp(t)) => {
                    let hdr = t.to_header();
                    let payload = t.payload();
                    let sum = match &v4 {
                        Some(h) => hdr.calc_checksum_ipv4(h, payload).unwrap(),
                        None => {
                            let Some(NetSlice::Ipv6(ip)) = &p.net else { unreachable!() };
                            hdr.calc_checksum_ipv6(&ip.header().to_header(), payload).unwrap()
                        }
                    };
                    assert_eq!(sum, hdr.checksum, "tcp checksum");
                    checked += 1;
                    let key = (src.clone(), dst.clone(), t.source_port(), t.destination_port());
                    let flow = (src, dst, t.source_port(), t.destination_port());
                    if prev_flow.as_ref() != Some(&flow) {
                        interleaved_flows.insert(flow.clone());
                    }
                    prev_flow = Some(flow);
                    if t.syn() {
                        next_seq.insert(key, t.sequence_number().wrapping_add(1));
                    } else if let Some(exp) = next_seq.get_mut(&key) {
                        assert_eq!(t.sequence_number(), *exp, "tcp sequence gap or overlap");
                        *exp = exp.wrapping_add(payload.len() as u32 + u32::from(t.fin()));
                    }
                    if payload.starts_with(b"GET ") || payload.starts_with(b"POST ") {
                        assert!(payload.windows(6).any(|w| w == b"Host: "));
                        saw.0 += 1;
                    }
                    if payload.len() > 5 && payload[0] == 22 && payload[5] == 1 {
                        saw.1 += 1;
                    }
                }
                Some(TransportSlice::Udp(u)) => {
                    if u.source_port() == 53 || u.destination_port() == 53 {
                        saw.2 += 1;
                    }
                }
                Some(TransportSlice::Icmpv4(_)) | Some(TransportSlice::Icmpv6(_)) => saw.3 += 1,
                _ => {}
            }
        }
        assert!(checked > 1000);
        assert!(saw.0 > 0 && saw.1 > 0 && saw.2 > 0 && saw.3 > 0, "{saw:?}");
        assert!(interleaved_flows.len() > 50);
    }

    #[test]
    fn options_are_validated() {
        let mut buf = Vec::new();
        let bad = Options { hosts: 0, ..Default::default() };
        assert!(matches!(generate(&mut buf, &bad), Err(GenError::Option(_))));
        let bad = Options { ipv6_share: 1.5, ..Default::default() };
        assert!(matches!(generate(&mut buf, &bad), Err(GenError::Option(_))));
        assert!(MixWeights::parse("dns=0,http=0,tls=0,bulk=0,icmp=0,frag=0,malformed=0").is_err());
        assert!(MixWeights::parse("smtp=3").is_err());
        assert_eq!(MixWeights::parse("bulk=5").unwrap().bulk, 5);
    }
}
