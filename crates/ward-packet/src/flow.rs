//! The bidirectional flow table: which packets belong together, who is the client, how many
//! packets and bytes went each way, the TCP connection state, and when a flow ends.
//!
//! The rules follow Suricata 8 with its stock configuration (`stream.midstream: false`), so that
//! ward's EVE `flow` records match Suricata's:
//!
//! * **Which flows are Suricata's.** Only the protocols Suricata's decoders hand to its flow
//!   engine have flows there: TCP, UDP, SCTP, ESP, ICMP (IPv4), ICMPv6 (IPv6) and the outer packet
//!   of IP-in-IP and IPv6-in-IP tunnels ([`tracks_flow`]); IGMP, GRE, OSPF, PIM, ... do not. The
//!   table still keeps a flow for every IP packet (detection wants one), flagged
//!   [`Flow::tracked`], and the sensor logs only tracked flows.
//! * **Key.** A flow is keyed by both addresses, both ports, the IP protocol, the VLAN ids and
//!   the tunnel depth (Suricata's `recursion_level`), in a canonical order so both directions
//!   find the same flow. ICMP and ICMPv6 have no ports; the key uses the message type and its counterpart type (echo request 8 ↔ reply 0, neighbour
//!   solicitation 135 ↔ advertisement 136, ...), or the code for types without one, so a request
//!   and its reply share a flow and unrelated messages do not.
//! * **ICMPv4 errors** (destination unreachable, source quench, redirect, time exceeded,
//!   parameter problem) never create a flow. A destination unreachable is counted in the flow of
//!   the packet it quotes; the others only in an existing ICMP flow of their own key.
//! * **Orientation.** The first packet's sender is the client. For TCP/UDP/SCTP a packet is
//!   to-server when its source port is the client's port (addresses decide when both ports are
//!   equal); for ICMP the source address decides; every packet of any other protocol counts as
//!   to-server. [`Flow::swap_direction`] lets the app layer reverse a flow whose first packet was
//!   a response (as Suricata does for UDP).
//! * **TCP.** A session starts only with a SYN (no mid-stream pick-up unless [`TcpPolicy`] asks
//!   for it); a flow whose first packet is not a SYN is counted but gets no TCP state, flags or
//!   reassembly. A SYN with a TCP Fast Open option counts its data, and a SYN/ACK answering it
//!   establishes the session at once, as in Suricata. States follow Suricata's
//!   naming (a client FIN moves an established session to `close_wait`, a server FIN to
//!   `fin_wait1`). A pure SYN on a flow without a session, or on one in `last_ack`, `close_wait`,
//!   `closing` or `closed`, ends the old flow (reason `tcp_reuse`) and starts a new one, unless it
//!   is a retransmission of the client's SYN.
//! * **Timeouts** are checked on every lookup (a packet arriving after its flow timed out starts
//!   a new flow) and by [`FlowTable::expire`]. Flows sit in one least-recently-used list per
//!   (protocol, state) timeout class, so expiry only looks at list heads: O(expired flows).
//!   Lists are ordered by arrival, which equals packet-time order unless the capture's timestamps
//!   go backwards.
//! * **Memory.** Each flow is charged [`Flow`]'s size plus index overhead plus what its TCP
//!   streams buffer (re-measured on the next table call after the flow was handed out). When a
//!   new flow would exceed the memcap or the flow count cap, the least recently seen flows are
//!   ended with reason `forced`.
//!
//! Ended flows (timeout, reuse, forced) are queued inside the table; [`FlowTable::expire`] and
//! [`FlowTable::take_ended`] hand them out, [`FlowTable::drain`] ends everything at shutdown.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use ward_model::Timestamp;

use crate::packet::{
    tcp_flags, Packet, TcpHeader, Transport, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP,
};
use crate::stream::{StreamChunk, StreamConfig, StreamEvents, TcpStream};

const IPPROTO_SCTP: u8 = 132;
const IPPROTO_ESP: u8 = 50;
const IPPROTO_IPIP: u8 = 4;
const IPPROTO_IPV6: u8 = 41;

/// Suricata's default flow memcap (`flow.memcap: 128mb`).
pub const DEFAULT_MEMCAP: usize = 128 << 20;
/// A hard cap on the number of flows whatever the memcap, so the index never grows unbounded
/// on tiny per-flow costs: 1 M flows is far above what one office network produces.
pub const DEFAULT_MAX_FLOWS: usize = 1 << 20;
/// Estimated overhead of one index entry beyond the key and slot (hash-map control bytes,
/// load-factor slack).
pub const INDEX_ENTRY_OVERHEAD: usize = 16;

/// Timeouts in seconds for the states of one protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateTimeouts {
    pub new: u32,
    pub established: u32,
    pub closed: u32,
}

/// Timeouts per protocol: Suricata's stock `flow-timeouts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp: StateTimeouts,
    pub udp: StateTimeouts,
    pub icmp: StateTimeouts,
    /// Every other protocol (Suricata's `default`).
    pub other: StateTimeouts,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            tcp: StateTimeouts { new: 60, established: 600, closed: 60 },
            udp: StateTimeouts { new: 30, established: 300, closed: 0 },
            icmp: StateTimeouts { new: 30, established: 300, closed: 0 },
            other: StateTimeouts { new: 30, established: 300, closed: 0 },
        }
    }
}

/// Configuration of a [`FlowTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowConfig {
    pub timeouts: Timeouts,
    /// Bytes the table may use (flows and their stream buffers) before it ends flows by force.
    pub memcap: usize,
    pub max_flows: usize,
    /// Limits of each TCP stream.
    pub stream: StreamConfig,
    /// How TCP sessions start (Suricata's `stream.midstream` and `stream.async-oneside`).
    pub tcp: TcpPolicy,
    /// VLAN ids are part of the flow key (Suricata's `vlan.use-for-tracking`, default on): off,
    /// the two directions of a connection seen on different VLANs make one flow.
    pub vlan_tracking: bool,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            timeouts: Timeouts::default(),
            memcap: DEFAULT_MEMCAP,
            max_flows: DEFAULT_MAX_FLOWS,
            stream: StreamConfig::default(),
            tcp: TcpPolicy::default(),
            vlan_tracking: true,
        }
    }
}

/// When a TCP session starts without a SYN. Both off by default, as in Suricata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpPolicy {
    /// `stream.midstream`: a session is picked up from any packet but a RST (a FIN only with
    /// data): established (a FIN: `fin_wait1`) with the packet's sender as the client, or, from
    /// a SYN/ACK, `syn_recv` with the SYN/ACK's receiver as the client (the flow is reversed).
    pub midstream: bool,
    /// `stream.async-oneside`: only one direction of a connection may be seen; a session is
    /// picked up from a SYN/ACK as with `midstream`.
    pub async_oneside: bool,
}

/// Which way a packet travels within its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    ToServer = 0,
    ToClient = 1,
}

impl Direction {
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn reverse(self) -> Direction {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }
}

/// Why a flow ended (EVE `flow.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Timeout,
    /// Ended early to stay within the memcap or flow cap.
    Forced,
    Shutdown,
    /// A new TCP connection reused the 5-tuple.
    TcpReuse,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Timeout => "timeout",
            EndReason::Forced => "forced",
            EndReason::Shutdown => "shutdown",
            EndReason::TcpReuse => "tcp_reuse",
        }
    }
}

/// EVE `flow.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FlowState {
    New,
    Established,
    Closed,
}

impl FlowState {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowState::New => "new",
            FlowState::Established => "established",
            FlowState::Closed => "closed",
        }
    }
}

/// TCP session state, in Suricata's order and naming (EVE `tcp.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TcpState {
    /// No session: no SYN seen yet (mid-stream traffic is not tracked).
    None,
    SynSent,
    SynRecv,
    Established,
    FinWait1,
    FinWait2,
    TimeWait,
    LastAck,
    CloseWait,
    Closing,
    Closed,
}

impl TcpState {
    pub fn as_str(self) -> &'static str {
        match self {
            TcpState::None => "none",
            TcpState::SynSent => "syn_sent",
            TcpState::SynRecv => "syn_recv",
            TcpState::Established => "established",
            TcpState::FinWait1 => "fin_wait1",
            TcpState::FinWait2 => "fin_wait2",
            TcpState::TimeWait => "time_wait",
            TcpState::LastAck => "last_ack",
            TcpState::CloseWait => "close_wait",
            TcpState::Closing => "closing",
            TcpState::Closed => "closed",
        }
    }

    /// The flow state Suricata derives from this TCP state.
    pub fn flow_state(self) -> FlowState {
        match self {
            TcpState::None | TcpState::SynSent | TcpState::SynRecv => FlowState::New,
            TcpState::Established
            | TcpState::FinWait1
            | TcpState::FinWait2
            | TcpState::Closing
            | TcpState::CloseWait => FlowState::Established,
            TcpState::TimeWait | TcpState::LastAck | TcpState::Closed => FlowState::Closed,
        }
    }
}

/// Sequence-space facts about one side of a TCP session, for validating state changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpPeer {
    pub isn: u32,
    /// One past the highest sequence number this side sent (SYN and FIN count one).
    pub next_seq: u32,
    /// The highest acknowledgement this side sent.
    pub last_ack: u32,
    /// Sequence number of this side's FIN, once sent.
    pub fin_seq: Option<u32>,
    pub started: bool,
}

impl TcpPeer {
    fn start(&mut self, isn: u32) {
        self.isn = isn;
        self.next_seq = isn.wrapping_add(1);
        self.started = true;
    }

    fn track(&mut self, hdr: &TcpHeader, payload_len: usize) {
        let mut end = hdr.seq.wrapping_add(payload_len as u32);
        if hdr.flags & (tcp_flags::SYN | tcp_flags::FIN) != 0 {
            end = end.wrapping_add(1);
        }
        if !self.started {
            self.next_seq = end;
            self.started = true;
        } else if seq_gt(end, self.next_seq) {
            self.next_seq = end;
        }
        if hdr.flags & tcp_flags::ACK != 0 && (self.last_ack == 0 || seq_gt(hdr.ack, self.last_ack)) {
            self.last_ack = hdr.ack;
        }
    }

    /// True when `ack` acknowledges this side's FIN.
    fn fin_acked_by(&self, ack: u32) -> bool {
        self.fin_seq.is_some_and(|fin| seq_gt(ack, fin))
    }
}

fn seq_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

fn seq_geq(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

/// The TCP session of a flow: state, flags per direction, and each side's sequence facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSession {
    pub state: TcpState,
    /// Flags seen per direction, indexed by [`Direction::index`].
    pub flags: [u8; 2],
    /// Client (to-server) and server sides, indexed by [`Direction::index`].
    pub peers: [TcpPeer; 2],
    /// The session was picked up without its SYN ([`TcpPolicy`]).
    pub midstream: bool,
    /// ... from a SYN/ACK.
    pub midstream_synack: bool,
    /// The SYN (or SYN/ACK) carried a TCP Fast Open option.
    pub tfo: bool,
}

impl Default for TcpSession {
    fn default() -> Self {
        TcpSession {
            state: TcpState::None,
            flags: [0; 2],
            peers: [TcpPeer::default(); 2],
            midstream: false,
            midstream_synack: false,
            tfo: false,
        }
    }
}

impl TcpSession {
    /// All flags seen in either direction.
    pub fn flags_all(&self) -> u8 {
        self.flags[0] | self.flags[1]
    }

    /// Whether `hdr` is a valid RST from side `dir` under Suricata's default (BSD) policy: its
    /// sequence number is exactly the next one expected from that side.
    fn rst_valid(&self, dir: Direction, hdr: &TcpHeader) -> bool {
        hdr.seq == self.peers[dir.index()].next_seq
    }

    /// True when `hdr` would pick up a session from a SYN/ACK under `policy` (the caller first
    /// reverses the flow if the SYN/ACK went to the server).
    fn picks_up_synack(&self, hdr: &TcpHeader, policy: TcpPolicy) -> bool {
        use tcp_flags::{ACK, RST, SYN};
        self.state == TcpState::None
            && (policy.midstream || policy.async_oneside)
            && hdr.flags & (SYN | ACK | RST) == SYN | ACK
    }

    /// Starts a session without its SYN (Suricata's midstream pick-up, see [`TcpPolicy`]).
    fn pick_up(&mut self, dir: Direction, hdr: &TcpHeader, payload_len: usize, policy: TcpPolicy) {
        use tcp_flags::{ACK, FIN, RST, SYN};
        let flags = hdr.flags;
        let me = dir.index();
        let other = dir.reverse().index();
        let peer_from_ack = TcpPeer {
            isn: hdr.ack.wrapping_sub(1),
            next_seq: hdr.ack,
            last_ack: 0,
            fin_seq: None,
            started: true,
        };
        if self.picks_up_synack(hdr, policy) {
            // The SYN/ACK's sender is the server (the caller made this packet to-client).
            self.state = TcpState::SynRecv;
            self.midstream = true;
            self.midstream_synack = true;
            self.flags[me] |= flags;
            self.peers[me].start(hdr.seq);
            self.peers[other] = peer_from_ack;
            return;
        }
        if !policy.midstream || flags & (SYN | RST) != 0 || (flags & FIN != 0 && payload_len == 0) {
            return;
        }
        self.midstream = true;
        self.state = if flags & FIN != 0 { TcpState::FinWait1 } else { TcpState::Established };
        self.flags[me] |= flags;
        self.peers[me] = TcpPeer {
            isn: hdr.seq.wrapping_sub(1),
            next_seq: hdr.seq,
            last_ack: 0,
            fin_seq: None,
            started: true,
        };
        if flags & ACK != 0 {
            self.peers[other] = peer_from_ack;
        }
        self.peers[me].track(hdr, payload_len);
        if flags & FIN != 0 {
            self.peers[me].fin_seq = Some(hdr.seq.wrapping_add(payload_len as u32));
        }
    }

    /// Advances the state machine with one packet of this session.
    fn update(&mut self, dir: Direction, hdr: &TcpHeader, payload_len: usize, policy: TcpPolicy) {
        use tcp_flags::{ACK, FIN, RST, SYN};
        let flags = hdr.flags;
        let me = dir.index();
        let other = dir.reverse().index();
        if self.state == TcpState::None {
            if flags & (SYN | ACK | RST) == SYN {
                self.state = TcpState::SynSent;
                self.flags[me] |= flags;
                self.peers[me].start(hdr.seq);
                if hdr.tfo {
                    // TCP Fast Open: the SYN's data is part of the stream.
                    self.tfo = true;
                    self.peers[me].next_seq = self.peers[me].next_seq.wrapping_add(payload_len as u32);
                }
            } else {
                self.pick_up(dir, hdr, payload_len, policy);
            }
            return;
        }
        self.flags[me] |= flags;
        let to_server = dir == Direction::ToServer;
        if flags & RST != 0 {
            let valid = match self.state {
                // A reset answering the SYN acknowledges it; one from the client follows its SYN.
                TcpState::SynSent if !to_server => {
                    flags & ACK != 0 && hdr.ack == self.peers[other].next_seq
                }
                TcpState::Closed => false,
                _ => self.rst_valid(dir, hdr),
            };
            if valid {
                self.state = TcpState::Closed;
            }
            return;
        }
        match self.state {
            TcpState::None | TcpState::Closed => {}
            TcpState::SynSent => {
                if to_server {
                    if flags & SYN != 0 && flags & ACK == 0 && hdr.seq != self.peers[me].isn {
                        // The client retried with a new ISN.
                        self.peers[me] = TcpPeer::default();
                        self.peers[me].start(hdr.seq);
                        if hdr.tfo {
                            self.tfo = true;
                            self.peers[me].next_seq =
                                self.peers[me].next_seq.wrapping_add(payload_len as u32);
                        }
                    }
                } else if flags & (SYN | ACK) == SYN | ACK {
                    let syn_acked = self.peers[other].isn.wrapping_add(1);
                    if self.tfo || hdr.tfo {
                        // TCP Fast Open (Suricata): the SYN/ACK acknowledges the SYN's data, or
                        // only the SYN (the server ignored the data); the session is then
                        // established at once.
                        if hdr.ack == self.peers[other].next_seq || hdr.ack == syn_acked {
                            self.tfo = true;
                            self.peers[other].next_seq = hdr.ack;
                            self.peers[me].start(hdr.seq);
                            self.state = TcpState::Established;
                        }
                    } else if hdr.ack == syn_acked {
                        self.peers[me].start(hdr.seq);
                        self.state = TcpState::SynRecv;
                    }
                }
                return;
            }
            TcpState::SynRecv => {
                let established = if flags & (SYN | ACK) != ACK {
                    false
                } else if self.midstream_synack {
                    // Picked up from the SYN/ACK: any ACK completes it (either side, as
                    // Suricata accepts an asynchronous server).
                    true
                } else if to_server {
                    seq_geq(hdr.ack, self.peers[other].next_seq)
                } else {
                    // The handshake's last ACK was missed: the server's next packet fits right
                    // after its SYN/ACK (Suricata, IDS mode).
                    hdr.ack == self.peers[other].next_seq && hdr.seq == self.peers[me].next_seq
                };
                if established {
                    self.state = TcpState::Established;
                } else {
                    return;
                }
            }
            _ => {}
        }
        self.peers[me].track(hdr, payload_len);
        if flags & FIN != 0 && self.peers[me].fin_seq.is_none() {
            self.peers[me].fin_seq = Some(hdr.seq.wrapping_add(payload_len as u32));
        }
        let acks_other_fin = flags & ACK != 0 && self.peers[other].fin_acked_by(hdr.ack);
        let fin = flags & FIN != 0;
        self.state = match (self.state, to_server) {
            (TcpState::Established, true) if fin => TcpState::CloseWait,
            (TcpState::Established, false) if fin => TcpState::FinWait1,
            (TcpState::FinWait1, true) if fin && acks_other_fin => TcpState::TimeWait,
            (TcpState::FinWait1, true) if fin => TcpState::Closing,
            (TcpState::FinWait1, true) if acks_other_fin => TcpState::FinWait2,
            (TcpState::FinWait2, true) if fin => TcpState::TimeWait,
            (TcpState::CloseWait, false) if fin => TcpState::LastAck,
            (TcpState::Closing, _) if acks_other_fin => TcpState::TimeWait,
            (TcpState::LastAck, true) if acks_other_fin => TcpState::Closed,
            (TcpState::TimeWait, false) if acks_other_fin => TcpState::Closed,
            (state, _) => state,
        };
    }
}

/// The canonical, direction-independent key of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// The two endpoints, lower (address, port) first; IPv4 addresses as IPv4-mapped IPv6.
    pub addrs: [[u8; 16]; 2],
    pub ports: [u16; 2],
    pub vlan: [u16; 2],
    pub proto: u8,
    pub ipv6: bool,
    /// [`Packet::tunnel_depth`]: the same 5-tuple on the wire and inside a tunnel are two flows.
    pub depth: u8,
}

fn addr_bytes(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

impl FlowKey {
    pub fn new(src: IpAddr, src_port: u16, dst: IpAddr, dst_port: u16, proto: u8, vlan: [u16; 2]) -> Self {
        let a = (addr_bytes(src), src_port);
        let b = (addr_bytes(dst), dst_port);
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        FlowKey {
            addrs: [lo.0, hi.0],
            ports: [lo.1, hi.1],
            vlan,
            proto,
            ipv6: src.is_ipv6(),
            depth: 0,
        }
    }

    /// The same key at tunnel depth `depth`.
    pub fn at_depth(self, depth: u8) -> Self {
        FlowKey { depth, ..self }
    }

    /// The key of the flow `pkt` belongs to (for an ICMPv4 destination unreachable: the flow of
    /// the packet it quotes, when the quote is readable).
    pub fn of_packet(pkt: &Packet<'_>) -> Self {
        if let Some(quoted) = quoted_flow_key(pkt) {
            return quoted.at_depth(pkt.tunnel_depth);
        }
        let (sp, dp) = match pkt.transport {
            Transport::Icmp { icmp_type, icmp_code } => {
                let counterpart = icmp_counterpart(pkt.proto, icmp_type).unwrap_or(icmp_code);
                (u16::from(icmp_type), u16::from(counterpart))
            }
            _ => (pkt.src_port, pkt.dst_port),
        };
        FlowKey::new(pkt.src, sp, pkt.dst, dp, pkt.proto, pkt.vlan).at_depth(pkt.tunnel_depth)
    }

    /// A stable 64-bit hash of the key (the same for both directions).
    pub fn stable_hash(&self) -> u64 {
        let mut h = Mixer::default();
        for addr in &self.addrs {
            h.word(u64::from_le_bytes(addr[..8].try_into().unwrap_or_default()));
            h.word(u64::from_le_bytes(addr[8..].try_into().unwrap_or_default()));
        }
        h.word(u64::from(self.ports[0]) | u64::from(self.ports[1]) << 16 | u64::from(self.proto) << 32);
        h.word(
            u64::from(self.vlan[0])
                | u64::from(self.vlan[1]) << 16
                | u64::from(self.ipv6) << 32
                | u64::from(self.depth) << 40,
        );
        h.finish()
    }
}

/// A small, fast, stable mixer (multiply-rotate, splitmix64 finaliser) for flow ids and
/// sharding; not for hash tables facing adversarial keys (those use the std SipHash).
#[derive(Default)]
struct Mixer(u64);

impl Mixer {
    fn word(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }

    fn finish(&self) -> u64 {
        let mut z = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A symmetric hash of the packet's flow (addresses, ports, protocol, VLANs), so both
/// directions of a flow, and ICMP errors about it, go to the same worker.
pub fn shard_hash(pkt: &Packet<'_>) -> u64 {
    FlowKey::of_packet(pkt).stable_hash()
}

/// The ICMP type that answers `icmp_type` (request ↔ reply pairs), if any.
pub fn icmp_counterpart(proto: u8, icmp_type: u8) -> Option<u8> {
    let pairs: &[(u8, u8)] = if proto == IPPROTO_ICMPV6 {
        &[(128, 129), (130, 131), (133, 134), (135, 136), (139, 140), (144, 145), (146, 147)]
    } else {
        &[(8, 0), (13, 14), (15, 16), (17, 18), (10, 9)]
    };
    pairs.iter().find_map(|&(a, b)| match icmp_type {
        t if t == a => Some(b),
        t if t == b => Some(a),
        _ => None,
    })
}

/// Whether Suricata 8 gives `pkt` a flow: its decoders set a packet up for the flow engine for
/// TCP, UDP, SCTP, ESP, ICMP over IPv4 and ICMPv6 over IPv6, and for the outer packet of an
/// IPv4-in-IP or IPv6-in-IP tunnel (protocols 4 and 41). Everything else — IGMP, GRE (its inner
/// packets have flows, the GRE packet none), PIM, OSPF, VRRP, IPv6 mobility headers, "no next
/// header", unknown protocols, ICMPv6 over IPv4 — is decoded and counted but has no flow.
pub fn tracks_flow(pkt: &Packet<'_>) -> bool {
    match pkt.proto {
        IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP | IPPROTO_ESP | IPPROTO_IPIP | IPPROTO_IPV6 => true,
        IPPROTO_ICMP => pkt.src.is_ipv4(),
        IPPROTO_ICMPV6 => pkt.src.is_ipv6(),
        _ => false,
    }
}

/// ICMPv4 error messages, which never create a flow.
fn is_icmpv4_error(pkt: &Packet<'_>) -> bool {
    matches!(
        (pkt.proto, pkt.transport),
        (IPPROTO_ICMP, Transport::Icmp { icmp_type: 3 | 4 | 5 | 11 | 12, .. })
    )
}

/// The flow key of the IPv4 packet quoted by an ICMPv4 destination unreachable. The quote may
/// start at the ICMP body or after the 4 "unused" header bytes; an IPv4 header never starts
/// with a zero byte, which tells them apart.
fn quoted_flow_key(pkt: &Packet<'_>) -> Option<FlowKey> {
    if pkt.proto != IPPROTO_ICMP || !matches!(pkt.transport, Transport::Icmp { icmp_type: 3, .. }) {
        return None;
    }
    let body = pkt.payload;
    let ip = if body.first().is_some_and(|b| b >> 4 == 4) { body } else { body.get(4..)? };
    if ip.first()? >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ihl < 20 {
        return None;
    }
    let proto = *ip.get(9)?;
    let src = IpAddr::from(<[u8; 4]>::try_from(ip.get(12..16)?).ok()?);
    let dst = IpAddr::from(<[u8; 4]>::try_from(ip.get(16..20)?).ok()?);
    let (sp, dp) = match proto {
        IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP => {
            let l4 = ip.get(ihl..ihl + 4)?;
            (u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]]))
        }
        _ => return None,
    };
    Some(FlowKey::new(src, sp, dst, dp, proto, pkt.vlan))
}

/// One flow: its endpoints, counters, TCP session and streams, and the sensor's state `S`.
#[derive(Debug, Clone)]
pub struct Flow<S> {
    pub key: FlowKey,
    /// EVE `flow_id`: stable for the flow, non-zero, below 2^51.
    pub flow_id: u64,
    pub client: IpAddr,
    pub client_port: u16,
    pub server: IpAddr,
    pub server_port: u16,
    pub vlan: [u16; 2],
    pub proto: u8,
    pub start: Timestamp,
    pub last: Timestamp,
    /// Packets and wire bytes per direction, indexed by [`Direction::index`].
    pub pkts: [u64; 2],
    pub bytes: [u64; 2],
    /// First ICMP (type, code) seen per direction (EVE `icmp_type`, `response_icmp_type`).
    pub icmp: [Option<(u8, u8)>; 2],
    pub tcp: TcpSession,
    /// TCP reassembly per direction, indexed by [`Direction::index`].
    pub streams: [TcpStream; 2],
    /// The sensor's per-flow state (app-layer parsers, alert flag, ...).
    pub user: S,
    /// Whether each direction sent a packet that counts for establishment.
    seen: [bool; 2],
    /// Suricata keeps a flow for this protocol ([`tracks_flow`]): only tracked flows are logged
    /// as EVE `flow` records and counted in the flow statistics.
    pub tracked: bool,
}

impl<S: Default> Flow<S> {
    fn new(key: FlowKey, pkt: &Packet<'_>, stream: StreamConfig) -> Self {
        let mut id = Mixer(key.stable_hash());
        id.word(pkt.ts.as_micros() as u64);
        let flow_id = (id.finish() & ((1 << 51) - 1)).max(1);
        Flow {
            key,
            flow_id,
            client: pkt.src,
            client_port: pkt.src_port,
            server: pkt.dst,
            server_port: pkt.dst_port,
            vlan: pkt.vlan,
            proto: pkt.proto,
            start: pkt.ts,
            last: pkt.ts,
            pkts: [0; 2],
            bytes: [0; 2],
            icmp: [None; 2],
            tcp: TcpSession::default(),
            streams: [TcpStream::new(stream), TcpStream::new(stream)],
            user: S::default(),
            seen: [false; 2],
            tracked: tracks_flow(pkt),
        }
    }
}

impl<S> Flow<S> {
    /// The direction of `pkt` in this flow (Suricata's rules, see the module note).
    pub fn direction_of(&self, pkt: &Packet<'_>) -> Direction {
        let by_addr = if pkt.src == self.client { Direction::ToServer } else { Direction::ToClient };
        match pkt.proto {
            IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP => {
                if pkt.src_port != pkt.dst_port {
                    if pkt.src_port == self.client_port {
                        Direction::ToServer
                    } else {
                        Direction::ToClient
                    }
                } else {
                    by_addr
                }
            }
            IPPROTO_ICMP | IPPROTO_ICMPV6 => by_addr,
            _ => Direction::ToServer,
        }
    }

    pub fn pkts_toserver(&self) -> u64 {
        self.pkts[0]
    }

    pub fn pkts_toclient(&self) -> u64 {
        self.pkts[1]
    }

    pub fn bytes_toserver(&self) -> u64 {
        self.bytes[0]
    }

    pub fn bytes_toclient(&self) -> u64 {
        self.bytes[1]
    }

    pub fn is_tcp(&self) -> bool {
        self.proto == IPPROTO_TCP
    }

    /// EVE `flow.state`.
    pub fn state(&self) -> FlowState {
        if self.proto == IPPROTO_TCP {
            self.tcp.state.flow_state()
        } else if self.seen == [true, true] {
            FlowState::Established
        } else {
            FlowState::New
        }
    }

    pub fn eve_state(&self) -> &'static str {
        self.state().as_str()
    }

    /// EVE `tcp.state`: `None` when no TCP session was started (then Suricata omits the field).
    pub fn eve_tcp_state(&self) -> Option<&'static str> {
        (self.is_tcp() && self.tcp.state != TcpState::None).then(|| self.tcp.state.as_str())
    }

    /// EVE `flow.age`: whole seconds between first and last packet.
    pub fn age(&self) -> i64 {
        self.last.whole_secs_since(self.start)
    }

    /// The EVE `flow` object for this flow ending for `reason`.
    pub fn eve_flow(&self, reason: EndReason, alerted: bool) -> ward_model::eve::Flow {
        ward_model::eve::Flow {
            pkts_toserver: self.pkts[0],
            pkts_toclient: self.pkts[1],
            bytes_toserver: self.bytes[0],
            bytes_toclient: self.bytes[1],
            start: self.start,
            end: self.last,
            age: self.age(),
            state: self.eve_state().to_string(),
            reason: reason.as_str().to_string(),
            alerted,
            tx_cnt: None,
        }
    }

    /// The EVE `tcp` object (only for TCP flows).
    pub fn eve_tcp(&self) -> Option<ward_model::eve::TcpSummary> {
        if !self.is_tcp() {
            return None;
        }
        let all = self.tcp.flags_all();
        Some(ward_model::eve::TcpSummary {
            tcp_flags: tcp_flags_hex(all),
            tcp_flags_ts: tcp_flags_hex(self.tcp.flags[0]),
            tcp_flags_tc: tcp_flags_hex(self.tcp.flags[1]),
            syn: all & tcp_flags::SYN != 0,
            fin: all & tcp_flags::FIN != 0,
            rst: all & tcp_flags::RST != 0,
            psh: all & tcp_flags::PSH != 0,
            ack: all & tcp_flags::ACK != 0,
            urg: all & tcp_flags::URG != 0,
            state: self.eve_tcp_state().map(str::to_string),
        })
    }

    /// Reverses the flow's orientation (client ↔ server, with counters, flags and streams), for
    /// an app layer that recognised the first packet as a response.
    pub fn swap_direction(&mut self) {
        std::mem::swap(&mut self.client, &mut self.server);
        std::mem::swap(&mut self.client_port, &mut self.server_port);
        self.pkts.swap(0, 1);
        self.bytes.swap(0, 1);
        self.icmp.swap(0, 1);
        self.seen.swap(0, 1);
        self.tcp.flags.swap(0, 1);
        self.tcp.peers.swap(0, 1);
        self.streams.swap(0, 1);
    }

    /// Feeds a TCP packet of direction `dir` to reassembly: its ACK to the opposite stream, its
    /// payload to this direction's stream. In-order data and gaps go to `sink` together with the
    /// user state. Does nothing for non-TCP packets and flows without a TCP session.
    pub fn reassemble(
        &mut self,
        dir: Direction,
        pkt: &Packet<'_>,
        sink: &mut impl FnMut(&mut S, Direction, StreamChunk<'_>),
    ) -> StreamEvents {
        let Some(hdr) = pkt.tcp() else { return StreamEvents::default() };
        if self.tcp.state == TcpState::None || pkt.proto != IPPROTO_TCP {
            return StreamEvents::default();
        }
        let Flow { streams, user, .. } = self;
        if hdr.flags & tcp_flags::ACK != 0 {
            streams[dir.reverse().index()].peer_ack(hdr.ack);
        }
        let stream = &mut streams[dir.index()];
        if hdr.tfo && hdr.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN && !pkt.payload.is_empty() {
            return stream.syn_with_data(hdr.seq, hdr.flags, pkt.payload, &mut |chunk| sink(user, dir, chunk));
        }
        stream.segment(hdr.seq, hdr.flags, pkt.payload, &mut |chunk| sink(user, dir, chunk))
    }

    /// Flushes both streams at flow end (buffered data behind gaps), to-server first.
    pub fn close_streams(&mut self, sink: &mut impl FnMut(&mut S, Direction, StreamChunk<'_>)) {
        let Flow { streams, user, .. } = self;
        for dir in [Direction::ToServer, Direction::ToClient] {
            streams[dir.index()].close(&mut |chunk| sink(user, dir, chunk));
        }
    }

    /// Bytes buffered by the two streams.
    pub fn stream_memory(&self) -> usize {
        self.streams[0].memory() + self.streams[1].memory()
    }

    fn timeout_secs(&self, timeouts: &Timeouts) -> u32 {
        let t = self.timeouts_of(timeouts);
        match self.state() {
            FlowState::New => t.new,
            FlowState::Established => t.established,
            FlowState::Closed => t.closed,
        }
    }

    fn timeouts_of<'t>(&self, timeouts: &'t Timeouts) -> &'t StateTimeouts {
        match self.proto {
            IPPROTO_TCP => &timeouts.tcp,
            IPPROTO_UDP => &timeouts.udp,
            IPPROTO_ICMP | IPPROTO_ICMPV6 => &timeouts.icmp,
            _ => &timeouts.other,
        }
    }

    /// True when a packet at `now` would find this flow timed out.
    fn timed_out_at(&self, now: Timestamp, timeouts: &Timeouts) -> bool {
        let deadline = self.last.saturating_add_micros(i64::from(self.timeout_secs(timeouts)) * 1_000_000);
        now >= deadline
    }

    /// Index of the timeout list this flow belongs in.
    fn list_index(&self) -> usize {
        let proto = match self.proto {
            IPPROTO_TCP => 0,
            IPPROTO_UDP => 1,
            IPPROTO_ICMP | IPPROTO_ICMPV6 => 2,
            _ => 3,
        };
        proto * 3 + self.state() as usize
    }

    /// Counts `pkt` (direction `dir`) and advances TCP state. Returns the packet's direction,
    /// which changes when the packet picked up a session from a SYN/ACK sent to the server
    /// (the flow is then reversed, see [`TcpPolicy`]).
    fn account(&mut self, pkt: &Packet<'_>, dir: Direction, policy: TcpPolicy) -> Direction {
        let mut dir = dir;
        if self.proto == IPPROTO_TCP && dir == Direction::ToServer {
            if let Some(hdr) = pkt.tcp() {
                if self.tcp.picks_up_synack(hdr, policy) {
                    self.swap_direction();
                    dir = Direction::ToClient;
                }
            }
        }
        let i = dir.index();
        self.pkts[i] += 1;
        self.bytes[i] += u64::from(pkt.wire_len);
        if pkt.ts > self.last {
            self.last = pkt.ts;
        }
        let icmpv4_error = is_icmpv4_error(pkt);
        if !icmpv4_error {
            self.seen[i] = true;
        }
        if let Transport::Icmp { icmp_type, icmp_code } = pkt.transport {
            if !icmpv4_error && self.icmp[i].is_none() {
                self.icmp[i] = Some((icmp_type, icmp_code));
            }
        }
        if self.proto == IPPROTO_TCP {
            if let Some(hdr) = pkt.tcp() {
                self.tcp.update(dir, hdr, pkt.payload.len(), policy);
            }
        }
        dir
    }
}

/// The EVE form of TCP flags: two lowercase hex digits.
pub fn tcp_flags_hex(flags: u8) -> String {
    format!("{flags:02x}")
}

/// Whether a pure SYN on `flow` starts a new connection rather than belonging to it
/// (Suricata's TCP session reuse rules).
fn is_tcp_reuse<S>(flow: &Flow<S>, pkt: &Packet<'_>, dir: Direction) -> bool {
    let Some(hdr) = pkt.tcp() else { return false };
    if pkt.proto != IPPROTO_TCP || hdr.flags & (tcp_flags::SYN | tcp_flags::ACK) != tcp_flags::SYN {
        return false;
    }
    let session = &flow.tcp;
    match session.state {
        TcpState::None => true,
        state => {
            if dir == Direction::ToServer && hdr.seq == session.peers[0].isn {
                return false; // a retransmitted SYN
            }
            state >= TcpState::LastAck
        }
    }
}

/// Counters of a [`FlowTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowTableStats {
    pub active: usize,
    pub created: u64,
    pub timed_out: u64,
    /// Ended by force to stay within the memcap or flow cap.
    pub evicted: u64,
    pub tcp_reuse: u64,
    /// Packets that belong to no flow (ICMPv4 errors without a flow to join).
    pub no_flow: u64,
    /// Flows created for protocols Suricata keeps no flows for (see [`tracks_flow`]).
    pub untracked: u64,
    /// Estimated bytes in use.
    pub memory: usize,
}

const NIL: u32 = u32::MAX;
const LISTS: usize = 12;

#[derive(Debug)]
struct Slot<S> {
    flow: Option<Flow<S>>,
    prev: u32,
    next: u32,
    list: u8,
    /// Bytes charged to the memcap for this flow.
    charged: usize,
}

#[derive(Debug, Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

/// The flow table of one worker. `S` is the sensor's per-flow state.
#[derive(Debug)]
pub struct FlowTable<S> {
    config: FlowConfig,
    index: HashMap<FlowKey, u32>,
    slots: Vec<Slot<S>>,
    free: Vec<u32>,
    lists: [List; LISTS],
    ended: VecDeque<(Flow<S>, EndReason)>,
    /// The slot handed out by the last lookup, whose stream memory is re-measured next call.
    pending: u32,
    stats: FlowTableStats,
}

impl<S: Default> FlowTable<S> {
    pub fn new(config: FlowConfig) -> Self {
        FlowTable {
            config,
            index: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            lists: [List { head: NIL, tail: NIL }; LISTS],
            ended: VecDeque::new(),
            pending: NIL,
            stats: FlowTableStats::default(),
        }
    }

    pub fn config(&self) -> &FlowConfig {
        &self.config
    }

    pub fn stats(&self) -> FlowTableStats {
        FlowTableStats { active: self.index.len(), ..self.stats }
    }

    /// Fixed cost charged per flow.
    pub fn flow_cost() -> usize {
        std::mem::size_of::<Slot<S>>() + std::mem::size_of::<(FlowKey, u32)>() + INDEX_ENTRY_OVERHEAD
    }

    /// Finds or creates the flow of `pkt`, counts the packet and advances TCP state. Returns the
    /// flow and the packet's direction, or `None` for a packet that belongs to no flow (an ICMPv4
    /// error with no flow to join). Flows this ends (timeout, TCP reuse, memcap) are queued for
    /// [`FlowTable::take_ended`].
    pub fn lookup(&mut self, pkt: &Packet<'_>) -> Option<(&mut Flow<S>, Direction)> {
        self.settle_pending();
        let mut key = FlowKey::of_packet(pkt);
        if !self.config.vlan_tracking {
            key.vlan = [0, 0];
        }
        let mut found = self.index.get(&key).copied();
        if let Some(idx) = found {
            let flow = self.flow(idx);
            let dir = flow.direction_of(pkt);
            if flow.timed_out_at(pkt.ts, &self.config.timeouts) {
                self.end(idx, EndReason::Timeout);
                found = None;
            } else if is_tcp_reuse(flow, pkt, dir) {
                self.end(idx, EndReason::TcpReuse);
                found = None;
            }
        }
        let idx = match found {
            Some(idx) => idx,
            None => {
                if is_icmpv4_error(pkt) {
                    self.stats.no_flow += 1;
                    return None;
                }
                self.create(key, pkt)
            }
        };
        let policy = self.config.tcp;
        let flow = self.flow_mut(idx);
        let dir = flow.direction_of(pkt);
        let dir = flow.account(pkt, dir, policy);
        // Most recently seen goes last, in the list of its (possibly new) state.
        let list = flow.list_index();
        self.unlink(idx);
        self.push_tail(idx, list);
        self.pending = idx;
        let flow = self.slots[idx as usize].flow.as_mut()?;
        Some((flow, dir))
    }

    /// Hands out the flows ended so far (timeouts found on lookup, TCP reuse, memcap).
    pub fn take_ended(&mut self, out: &mut impl FnMut(Flow<S>, EndReason)) {
        while let Some((flow, reason)) = self.ended.pop_front() {
            out(flow, reason);
        }
    }

    /// Ends every flow idle past its timeout at `now` (packet time), then hands out all ended
    /// flows. Cost: the number of flows ended plus the number of timeout classes.
    pub fn expire(&mut self, now: Timestamp, out: &mut impl FnMut(Flow<S>, EndReason)) {
        self.settle_pending();
        for list in 0..LISTS {
            loop {
                let head = self.lists[list].head;
                if head == NIL || !self.flow(head).timed_out_at(now, &self.config.timeouts) {
                    break;
                }
                self.end(head, EndReason::Timeout);
            }
        }
        self.take_ended(out);
    }

    /// Ends every flow (reason `shutdown`), after handing out those already ended.
    pub fn drain(&mut self, out: &mut impl FnMut(Flow<S>, EndReason)) {
        self.settle_pending();
        self.take_ended(out);
        for idx in 0..self.slots.len() as u32 {
            if self.slots[idx as usize].flow.is_some() {
                self.end(idx, EndReason::Shutdown);
                self.take_ended(out);
            }
        }
    }

    fn flow(&self, idx: u32) -> &Flow<S> {
        match &self.slots[idx as usize].flow {
            Some(flow) => flow,
            None => unreachable!("flow index points at an empty slot"),
        }
    }

    fn flow_mut(&mut self, idx: u32) -> &mut Flow<S> {
        match &mut self.slots[idx as usize].flow {
            Some(flow) => flow,
            None => unreachable!("flow index points at an empty slot"),
        }
    }

    /// Re-measures the memory of the flow handed out last (its streams may have grown), and
    /// evicts if that put the table over its memcap.
    fn settle_pending(&mut self) {
        let idx = std::mem::replace(&mut self.pending, NIL);
        if idx == NIL || self.slots[idx as usize].flow.is_none() {
            return;
        }
        let charged = Self::flow_cost() + self.flow(idx).stream_memory();
        let slot = &mut self.slots[idx as usize];
        self.stats.memory = self.stats.memory - slot.charged + charged;
        slot.charged = charged;
        while self.stats.memory > self.config.memcap && self.index.len() > 1 {
            let Some(victim) = self.least_recent() else { break };
            self.stats.evicted += 1;
            self.end(victim, EndReason::Forced);
        }
    }

    fn create(&mut self, key: FlowKey, pkt: &Packet<'_>) -> u32 {
        let cost = Self::flow_cost();
        while !self.index.is_empty()
            && (self.stats.memory + cost > self.config.memcap || self.index.len() >= self.config.max_flows)
        {
            let Some(victim) = self.least_recent() else { break };
            self.stats.evicted += 1;
            self.end(victim, EndReason::Forced);
        }
        let flow = Flow::new(key, pkt, self.config.stream);
        if !flow.tracked {
            self.stats.untracked += 1;
        }
        let list = flow.list_index();
        let slot = Slot { flow: Some(flow), prev: NIL, next: NIL, list: list as u8, charged: cost };
        let idx = match self.free.pop() {
            Some(idx) => {
                self.slots[idx as usize] = slot;
                idx
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        match self.index.entry(key) {
            Entry::Occupied(mut e) => {
                e.insert(idx);
            }
            Entry::Vacant(e) => {
                e.insert(idx);
            }
        }
        self.push_tail(idx, list);
        self.stats.created += 1;
        self.stats.memory += cost;
        idx
    }

    /// Removes a flow from the table and queues it as ended.
    fn end(&mut self, idx: u32, reason: EndReason) {
        self.unlink(idx);
        let slot = &mut self.slots[idx as usize];
        let Some(flow) = slot.flow.take() else { return };
        self.stats.memory -= slot.charged;
        slot.charged = 0;
        self.free.push(idx);
        if self.index.get(&flow.key) == Some(&idx) {
            self.index.remove(&flow.key);
        }
        if reason == EndReason::Timeout {
            self.stats.timed_out += 1;
        } else if reason == EndReason::TcpReuse {
            self.stats.tcp_reuse += 1;
        }
        if self.pending == idx {
            self.pending = NIL;
        }
        self.ended.push_back((flow, reason));
    }

    /// The least recently seen flow (the oldest list head).
    fn least_recent(&self) -> Option<u32> {
        self.lists
            .iter()
            .filter(|l| l.head != NIL)
            .map(|l| l.head)
            .min_by_key(|&idx| self.flow(idx).last)
    }

    fn unlink(&mut self, idx: u32) {
        let (prev, next, list) = {
            let s = &self.slots[idx as usize];
            (s.prev, s.next, s.list as usize)
        };
        if prev == NIL && next == NIL && self.lists[list].head != idx {
            return; // not linked
        }
        if prev != NIL {
            self.slots[prev as usize].next = next;
        } else {
            self.lists[list].head = next;
        }
        if next != NIL {
            self.slots[next as usize].prev = prev;
        } else {
            self.lists[list].tail = prev;
        }
        let s = &mut self.slots[idx as usize];
        s.prev = NIL;
        s.next = NIL;
    }

    fn push_tail(&mut self, idx: u32, list: usize) {
        let tail = self.lists[list].tail;
        {
            let s = &mut self.slots[idx as usize];
            s.list = list as u8;
            s.prev = tail;
            s.next = NIL;
        }
        if tail != NIL {
            self.slots[tail as usize].next = idx;
        } else {
            self.lists[list].head = idx;
        }
        self.lists[list].tail = idx;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::tcp_flags::{ACK, FIN, PSH, RST, SYN};
    use crate::packet::TcpHeader;

    const C: &str = "192.168.1.10";
    const S: &str = "10.0.0.80";

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_secs_micros(1_700_000_000 + secs, 0)
    }

    fn base(src: &str, dst: &str, proto: u8, transport: Transport, payload: &'static [u8]) -> Packet<'static> {
        Packet {
            ts: at(0),
            wire_len: 54 + payload.len() as u32,
            vlan: [0, 0],
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            proto,
            src_port: 0,
            dst_port: 0,
            ttl: 64,
            transport,
            payload,
            reassembled: false,
            tunnel_depth: 0,
            frame: b"",
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp(src: &str, sp: u16, dst: &str, dp: u16, flags: u8, seq: u32, ack: u32, payload: &'static [u8]) -> Packet<'static> {
        let hdr = TcpHeader { seq, ack, flags, window: 65535, wscale: None, tfo: false };
        let mut p = base(src, dst, IPPROTO_TCP, Transport::Tcp(hdr), payload);
        p.src_port = sp;
        p.dst_port = dp;
        p
    }

    fn c2s(flags: u8, seq: u32, ack: u32, payload: &'static [u8]) -> Packet<'static> {
        tcp(C, 40000, S, 80, flags, seq, ack, payload)
    }

    fn s2c(flags: u8, seq: u32, ack: u32, payload: &'static [u8]) -> Packet<'static> {
        tcp(S, 80, C, 40000, flags, seq, ack, payload)
    }

    fn udp(src: &str, sp: u16, dst: &str, dp: u16, secs: i64) -> Packet<'static> {
        let mut p = base(src, dst, IPPROTO_UDP, Transport::Udp, b"query");
        p.src_port = sp;
        p.dst_port = dp;
        p.ts = at(secs);
        p
    }

    fn icmp(src: &str, dst: &str, icmp_type: u8, icmp_code: u8, payload: &'static [u8]) -> Packet<'static> {
        let proto = if src.contains(':') { IPPROTO_ICMPV6 } else { IPPROTO_ICMP };
        base(src, dst, proto, Transport::Icmp { icmp_type, icmp_code }, payload)
    }

    type Table = FlowTable<u32>;

    fn feed(table: &mut Table, pkts: &[Packet<'_>]) -> Vec<Direction> {
        pkts.iter().map(|p| table.lookup(p).expect("packet has a flow").1).collect()
    }

    fn ended(table: &mut Table) -> Vec<(Flow<u32>, EndReason)> {
        let mut out = Vec::new();
        table.drain(&mut |f, r| out.push((f, r)));
        out
    }

    fn handshake() -> Vec<Packet<'static>> {
        vec![
            c2s(SYN, 100, 0, b""),
            s2c(SYN | ACK, 5000, 101, b""),
            c2s(ACK, 101, 5001, b""),
            c2s(ACK | PSH, 101, 5001, b"GET / HTTP/1.0\r\n\r\n"),
            s2c(ACK | PSH, 5001, 119, b"HTTP/1.0 200 OK\r\n\r\n"),
        ]
    }

    #[test]
    fn three_way_handshake_then_client_close_ends_closed() {
        let mut table = Table::new(FlowConfig::default());
        let mut pkts = handshake();
        let dirs = feed(&mut table, &pkts[..1]);
        assert_eq!(dirs, [Direction::ToServer]);
        {
            let (flow, _) = table.lookup(&pkts[1]).unwrap();
            assert_eq!(flow.tcp.state, TcpState::SynRecv);
            assert_eq!(flow.eve_state(), "new");
        }
        let (flow, _) = table.lookup(&pkts[2]).unwrap();
        assert_eq!(flow.tcp.state, TcpState::Established);
        assert_eq!(flow.eve_state(), "established");
        pkts.drain(..3);
        pkts.push(c2s(FIN | ACK, 119, 5020, b""));
        pkts.push(s2c(FIN | ACK, 5020, 120, b""));
        pkts.push(c2s(ACK, 120, 5021, b""));
        let dirs = feed(&mut table, &pkts);
        use Direction::*;
        assert_eq!(dirs, [ToServer, ToClient, ToServer, ToClient, ToServer]);
        let all = ended(&mut table);
        assert_eq!(all.len(), 1);
        let (flow, reason) = &all[0];
        assert_eq!(*reason, EndReason::Shutdown);
        assert_eq!(flow.tcp.state, TcpState::Closed);
        assert_eq!(flow.eve_state(), "closed");
        assert_eq!((flow.pkts_toserver(), flow.pkts_toclient()), (5, 3));
        assert_eq!(flow.client.to_string(), C);
        assert_eq!((flow.client_port, flow.server_port), (40000, 80));
        let tcp = flow.eve_tcp().unwrap();
        assert_eq!((tcp.tcp_flags.as_str(), tcp.tcp_flags_ts.as_str(), tcp.tcp_flags_tc.as_str()), ("1b", "1b", "1b"));
        assert_eq!(tcp.state.as_deref(), Some("closed"));
        let eve = flow.eve_flow(*reason, false);
        assert_eq!(eve.state, "closed");
        assert_eq!(eve.reason, "shutdown");
        assert_eq!(eve.bytes_toserver, 5 * 54 + 18);
    }

    #[test]
    fn server_close_first_goes_through_fin_wait_and_time_wait() {
        let mut table = Table::new(FlowConfig::default());
        let mut pkts = handshake();
        pkts.push(s2c(FIN | ACK, 5020, 119, b""));
        feed(&mut table, &pkts);
        let state = |t: &mut Table, p: &Packet<'_>| t.lookup(p).unwrap().0.tcp.state;
        assert_eq!(table.lookup(&s2c(ACK, 5021, 119, b"")).unwrap().0.tcp.state, TcpState::FinWait1);
        assert_eq!(state(&mut table, &c2s(ACK, 119, 5021, b"")), TcpState::FinWait2);
        assert_eq!(state(&mut table, &c2s(FIN | ACK, 119, 5021, b"")), TcpState::TimeWait);
        let (flow, _) = table.lookup(&s2c(ACK, 5021, 120, b"")).unwrap();
        assert_eq!(flow.tcp.state, TcpState::Closed);
        assert_eq!(flow.eve_state(), "closed");
        // The client's FIN alone (no reply) leaves the session half-closed, as Suricata says.
        let mut table = Table::new(FlowConfig::default());
        let mut pkts = handshake();
        pkts.push(c2s(FIN | ACK, 119, 5020, b""));
        feed(&mut table, &pkts);
        let all = ended(&mut table);
        assert_eq!(all[0].0.eve_tcp_state(), Some("close_wait"));
        assert_eq!(all[0].0.eve_state(), "established");
    }

    #[test]
    fn valid_rst_closes_and_out_of_window_rst_is_ignored() {
        let mut table = Table::new(FlowConfig::default());
        feed(&mut table, &handshake());
        let (flow, _) = table.lookup(&s2c(RST, 9999, 0, b"")).unwrap();
        assert_eq!(flow.tcp.state, TcpState::Established);
        assert_eq!(flow.tcp.flags[1] & RST, RST, "flags are recorded even when the RST is ignored");
        let (flow, _) = table.lookup(&s2c(RST | ACK, 5020, 119, b"")).unwrap();
        assert_eq!(flow.tcp.state, TcpState::Closed);
        // A RST answering a SYN closes too.
        let mut table = Table::new(FlowConfig::default());
        feed(&mut table, &[c2s(SYN, 7, 0, b"")]);
        let (flow, _) = table.lookup(&s2c(RST | ACK, 0, 8, b"")).unwrap();
        assert_eq!(flow.tcp.state, TcpState::Closed);
    }

    #[test]
    fn mid_stream_flow_has_no_session_and_a_later_syn_starts_a_new_flow() {
        let mut table = Table::new(FlowConfig::default());
        // First seen packet is the server's reply: the server becomes the "client".
        let dirs = feed(&mut table, &[s2c(ACK | PSH, 1, 1, b"data"), c2s(ACK, 1, 5, b"")]);
        assert_eq!(dirs, [Direction::ToServer, Direction::ToClient]);
        {
            let (flow, _) = table.lookup(&c2s(ACK, 1, 5, b"")).unwrap();
            assert_eq!(flow.tcp.state, TcpState::None);
            assert_eq!(flow.eve_tcp_state(), None);
            assert_eq!(flow.eve_tcp().unwrap().tcp_flags, "00");
            assert_eq!(flow.eve_state(), "new");
        }
        feed(&mut table, &[c2s(SYN, 77, 0, b"")]);
        let all = ended(&mut table);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].1, EndReason::TcpReuse);
        assert_eq!((all[0].0.pkts_toserver(), all[0].0.pkts_toclient()), (1, 2));
        assert_eq!(all[0].0.client.to_string(), S);
        assert_eq!(all[1].0.client.to_string(), C);
        assert_eq!(all[1].0.tcp.state, TcpState::SynSent);
        assert_eq!(table.stats().tcp_reuse, 1);
    }

    #[test]
    fn syn_on_closed_session_is_reuse_but_retransmitted_syn_is_not() {
        let mut table = Table::new(FlowConfig::default());
        feed(&mut table, &[c2s(SYN, 100, 0, b""), c2s(SYN, 100, 0, b"")]);
        assert_eq!(table.stats().created, 1);
        let mut pkts = handshake();
        pkts.push(c2s(FIN | ACK, 119, 5020, b""));
        pkts.push(s2c(FIN | ACK, 5020, 120, b""));
        pkts.push(c2s(ACK, 120, 5021, b""));
        feed(&mut table, &pkts[1..]);
        feed(&mut table, &[c2s(SYN, 90000, 0, b"")]);
        assert_eq!(table.stats().created, 2);
        let all = ended(&mut table);
        assert_eq!(all[0].1, EndReason::TcpReuse);
        assert_eq!(all[0].0.pkts_toserver() + all[0].0.pkts_toclient(), 9);
        assert_eq!(all[1].0.pkts_toserver(), 1);
    }

    #[test]
    fn udp_orientation_and_establishment() {
        let mut table = Table::new(FlowConfig::default());
        let q = udp(C, 5353, "10.0.0.53", 53, 0);
        let r = udp("10.0.0.53", 53, C, 5353, 0);
        let dirs = feed(&mut table, &[q.clone(), r.clone(), q.clone()]);
        assert_eq!(dirs, [Direction::ToServer, Direction::ToClient, Direction::ToServer]);
        assert_eq!(FlowKey::of_packet(&q), FlowKey::of_packet(&r));
        assert_eq!(shard_hash(&q), shard_hash(&r));
        let all = ended(&mut table);
        assert_eq!(all[0].0.eve_state(), "established");
        assert_eq!((all[0].0.pkts_toserver(), all[0].0.pkts_toclient()), (2, 1));
        assert_eq!(all[0].0.eve_tcp(), None);
        // Same ports both ways: addresses decide.
        let mut table = Table::new(FlowConfig::default());
        let a = udp(C, 123, S, 123, 0);
        let b = udp(S, 123, C, 123, 0);
        assert_eq!(feed(&mut table, &[a, b]), [Direction::ToServer, Direction::ToClient]);
    }

    #[test]
    fn vlan_separates_flows() {
        let mut table = Table::new(FlowConfig::default());
        let a = udp(C, 1000, S, 53, 0);
        let mut b = a.clone();
        b.vlan = [23, 0];
        feed(&mut table, &[a, b]);
        assert_eq!(table.stats().active, 2);
    }

    #[test]
    fn idle_flow_times_out_on_lookup_and_on_expire() {
        let mut table = Table::new(FlowConfig::default());
        feed(&mut table, &[udp(C, 1000, S, 53, 0)]);
        // 29 s later: same flow. 30 s after that (new flow, udp new timeout 30 s): a new one.
        feed(&mut table, &[udp(C, 1000, S, 53, 29)]);
        assert_eq!(table.stats().created, 1);
        feed(&mut table, &[udp(C, 1000, S, 53, 59)]);
        assert_eq!(table.stats().created, 2);
        let mut out = Vec::new();
        table.expire(at(60), &mut |f, r| out.push((f, r)));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1, EndReason::Timeout);
        assert_eq!(out[0].0.pkts_toserver(), 2);
        // An established UDP flow lives 300 s.
        feed(&mut table, &[udp(S, 53, C, 1000, 60)]);
        table.expire(at(59 + 299), &mut |f, r| out.push((f, r)));
        assert_eq!(out.len(), 1);
        table.expire(at(60 + 300), &mut |f, r| out.push((f, r)));
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].0.eve_state(), "established");
        assert_eq!(table.stats().timed_out, 2);
        assert_eq!(table.stats().active, 0);
        assert_eq!(table.stats().memory, 0);
    }

    #[test]
    fn expire_only_ends_flows_past_their_own_timeout() {
        let mut table = Table::new(FlowConfig::default());
        // A TCP flow in syn_sent (new: 60 s) and a UDP flow (new: 30 s) seen at the same time.
        feed(&mut table, &[c2s(SYN, 1, 0, b""), udp(C, 9, S, 9, 0)]);
        let mut out = Vec::new();
        table.expire(at(45), &mut |f, r| out.push((f, r)));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0.proto, IPPROTO_UDP);
        table.expire(at(60), &mut |f, r| out.push((f, r)));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn memcap_evicts_least_recently_seen_flows() {
        let cost = Table::flow_cost();
        let config = FlowConfig { memcap: cost * 3, ..FlowConfig::default() };
        let mut table = Table::new(config);
        for (i, port) in [1000u16, 1001, 1002].iter().enumerate() {
            feed(&mut table, &[udp(C, *port, S, 53, i as i64)]);
        }
        // Touch the oldest so 1001 becomes the least recent.
        feed(&mut table, &[udp(C, 1000, S, 53, 3)]);
        feed(&mut table, &[udp(C, 1003, S, 53, 4)]);
        let stats = table.stats();
        assert_eq!((stats.active, stats.evicted), (3, 1));
        assert!(stats.memory <= config.memcap);
        let mut out = Vec::new();
        table.take_ended(&mut |f, r| out.push((f, r)));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1, EndReason::Forced);
        assert_eq!(out[0].0.client_port, 1001);
        // The flow count cap works the same way.
        let config = FlowConfig { max_flows: 2, ..FlowConfig::default() };
        let mut table = Table::new(config);
        for port in 0..10u16 {
            feed(&mut table, &[udp(C, port, S, 53, i64::from(port))]);
        }
        assert_eq!(table.stats().active, 2);
        assert_eq!(table.stats().evicted, 8);
    }

    #[test]
    fn stream_buffers_are_charged_to_the_memcap() {
        let mut table = Table::new(FlowConfig::default());
        let pkts = handshake();
        feed(&mut table, &pkts[..3]);
        let before = table.stats().memory;
        // Out-of-order data gets buffered by the stream.
        let ooo = c2s(ACK, 1101, 5001, b"later bytes that wait for a hole to fill");
        let (flow, dir) = table.lookup(&ooo).unwrap();
        flow.reassemble(dir, &ooo, &mut |_, _, _| {});
        table.expire(at(0), &mut |_, _| {});
        assert!(table.stats().memory >= before + 40, "{} vs {before}", table.stats().memory);
    }

    #[test]
    fn reassembly_through_the_flow_delivers_both_directions_to_the_user_state() {
        let mut table: FlowTable<Vec<(Direction, Vec<u8>)>> = FlowTable::new(FlowConfig::default());
        let mut pkts = handshake();
        // Out of order to the client: second half of the response arrives first.
        pkts.insert(4, s2c(ACK, 5020, 119, b"body"));
        for p in &pkts {
            let (flow, dir) = table.lookup(p).unwrap();
            flow.reassemble(dir, p, &mut |user, dir, chunk| {
                if let StreamChunk::Data(d) = chunk {
                    user.push((dir, d.to_vec()));
                }
            });
        }
        let mut all = Vec::new();
        table.drain(&mut |mut f, _| {
            f.close_streams(&mut |_, _, _| {});
            all.push(f)
        });
        // Chunk boundaries are not part of the contract (contiguous buffered data is coalesced):
        // what counts is each direction's bytes, in order.
        let got = &all[0].user;
        let side = |d: Direction| got.iter().filter(|(x, _)| *x == d).flat_map(|(_, b)| b.clone()).collect::<Vec<u8>>();
        assert_eq!(got[0].0, Direction::ToServer);
        assert_eq!(side(Direction::ToServer), b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(side(Direction::ToClient), b"HTTP/1.0 200 OK\r\n\r\nbody");
    }

    #[test]
    fn midstream_pickup_rules() {
        let mid = FlowConfig { tcp: TcpPolicy { midstream: true, async_oneside: false }, ..FlowConfig::default() };
        // A RST, or a FIN without data, picks nothing up; a FIN with data does (fin_wait1).
        for (pkt, state) in [
            (c2s(RST | ACK, 1, 1, b""), TcpState::None),
            (c2s(FIN | ACK, 1, 1, b""), TcpState::None),
            (c2s(FIN | ACK | PSH, 1, 1, b"bye"), TcpState::FinWait1),
            (c2s(ACK, 1, 1, b""), TcpState::Established),
        ] {
            let mut table = Table::new(mid);
            table.lookup(&pkt);
            let flows = ended(&mut table);
            assert_eq!(flows[0].0.tcp.state, state, "{:?}", pkt.tcp());
            assert_eq!(flows[0].0.tcp.midstream, state != TcpState::None);
        }
        // The picked-up session reassembles from the first data on, both ways.
        let mut table: FlowTable<Vec<u8>> = FlowTable::new(mid);
        for p in [c2s(ACK | PSH, 500, 9000, b"GET / HTTP/1.1\r\n"), s2c(ACK | PSH, 9000, 516, b"HTTP/1.1 200 OK\r\n")] {
            let (flow, dir) = table.lookup(&p).unwrap();
            flow.reassemble(dir, &p, &mut |u, _, c| {
                if let StreamChunk::Data(d) = c {
                    u.extend_from_slice(d)
                }
            });
        }
        let mut out = Vec::new();
        table.drain(&mut |f, _| out.push(f));
        assert_eq!(out[0].user, b"GET / HTTP/1.1\r\nHTTP/1.1 200 OK\r\n");
        assert_eq!(out[0].state(), FlowState::Established);
        // A SYN/ACK is picked up only with midstream or async-oneside, as syn_recv, reversed.
        let mut table = Table::new(FlowConfig::default());
        assert_eq!(feed(&mut table, &[s2c(SYN | ACK, 5000, 101, b"")]), [Direction::ToServer]);
        assert_eq!(ended(&mut table)[0].0.tcp.state, TcpState::None);
        let mut table = Table::new(mid);
        assert_eq!(feed(&mut table, &[s2c(SYN | ACK, 5000, 101, b""), c2s(ACK, 101, 5001, b"")]), [Direction::ToClient, Direction::ToServer]);
        let flow = &ended(&mut table)[0].0;
        assert_eq!((flow.client_port, flow.tcp.state), (40000, TcpState::Established));
    }

    #[test]
    fn fast_open_synack_establishes_and_a_missed_handshake_ack_is_tolerated() {
        let mut tfo_syn = c2s(SYN, 100, 0, b"GET / HTTP/1.0\r\n\r\n");
        if let Transport::Tcp(h) = &mut tfo_syn.transport {
            h.tfo = true;
        }
        // The SYN/ACK acknowledges the SYN's 18 bytes: established at once.
        let mut table = Table::new(FlowConfig::default());
        feed(&mut table, &[tfo_syn.clone(), s2c(SYN | ACK, 5000, 119, b"")]);
        let flow = &ended(&mut table)[0].0;
        assert!(flow.tcp.tfo);
        assert_eq!(flow.tcp.state, TcpState::Established);
        // ... or only the SYN (the data was not taken): established too.
        let mut table = Table::new(FlowConfig::default());
        feed(&mut table, &[tfo_syn, s2c(SYN | ACK, 5000, 101, b"")]);
        assert_eq!(ended(&mut table)[0].0.tcp.state, TcpState::Established);
        // Without TFO, the server's data right after its SYN/ACK stands for the missed ACK.
        let mut table = Table::new(FlowConfig::default());
        feed(&mut table, &[c2s(SYN, 100, 0, b""), s2c(SYN | ACK, 5000, 101, b""), s2c(ACK | PSH, 5001, 101, b"220 hello\r\n")]);
        assert_eq!(ended(&mut table)[0].0.tcp.state, TcpState::Established);
    }

    #[test]
    fn reassembly_is_skipped_without_a_session() {
        let mut table: FlowTable<usize> = FlowTable::new(FlowConfig::default());
        let p = c2s(ACK | PSH, 1, 1, b"mid-stream data");
        let (flow, dir) = table.lookup(&p).unwrap();
        flow.reassemble(dir, &p, &mut |n, _, _| *n += 1);
        assert_eq!(flow.user, 0);
    }

    #[test]
    fn icmp_echo_pairs_share_a_flow_and_errors_join_the_quoted_flow() {
        let mut table = Table::new(FlowConfig::default());
        let req = icmp(C, S, 8, 0, b"ping");
        let rep = icmp(S, C, 0, 0, b"ping");
        let other = icmp(C, S, 13, 0, b"timestamp");
        assert_eq!(feed(&mut table, &[req, rep, other]), [Direction::ToServer, Direction::ToClient, Direction::ToServer]);
        assert_eq!(table.stats().active, 2);
        // A UDP flow and a port unreachable quoting it (IPv4 header + 8 bytes of UDP).
        feed(&mut table, &[udp(C, 5000, S, 161, 0)]);
        static QUOTE: [u8; 32] = [
            0, 0, 0, 0, // unused
            0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, // IPv4 header ...
            192, 168, 1, 10, // src C
            10, 0, 0, 80, // dst S
            0x13, 0x88, 0, 161, 0, 8, 0, 0, // UDP 5000 -> 161
        ];
        let unreach = icmp(S, C, 3, 3, &QUOTE);
        let (flow, dir) = table.lookup(&unreach).unwrap();
        assert_eq!(flow.proto, IPPROTO_UDP);
        assert_eq!(dir, Direction::ToClient);
        assert_eq!(flow.pkts_toclient(), 1);
        assert_eq!(flow.eve_state(), "new", "an ICMP error does not establish the flow");
        // Without a flow to join, an ICMPv4 error belongs to no flow.
        let stray = icmp(S, "10.9.9.9", 11, 0, b"");
        assert!(table.lookup(&stray).is_none());
        assert_eq!(table.stats().no_flow, 1);
        let all = ended(&mut table);
        let echo = all.iter().find(|(f, _)| f.icmp[0] == Some((8, 0))).unwrap();
        assert_eq!(echo.0.icmp[1], Some((0, 0)));
        assert_eq!(echo.0.eve_state(), "established");
    }

    #[test]
    fn icmpv6_neighbour_discovery_pairs_and_errors_make_flows() {
        let mut table = Table::new(FlowConfig::default());
        let a = "fe80::1";
        let b = "fe80::2";
        feed(&mut table, &[icmp(a, b, 135, 0, b""), icmp(b, a, 136, 0, b""), icmp(a, b, 128, 0, b""), icmp(b, a, 1, 4, b"")]);
        assert_eq!(table.stats().active, 3);
    }

    #[test]
    fn other_protocols_count_everything_to_server() {
        let mut table = Table::new(FlowConfig::default());
        let esp = base(C, S, 50, Transport::Other, b"");
        let back = base(S, C, 50, Transport::Other, b"");
        assert_eq!(feed(&mut table, &[esp, back]), [Direction::ToServer, Direction::ToServer]);
        let all = ended(&mut table);
        assert_eq!(all[0].0.pkts_toserver(), 2);
        assert_eq!(all[0].0.eve_state(), "new");
    }

    #[test]
    fn only_protocols_suricata_tracks_are_tracked_flows() {
        let mut table = Table::new(FlowConfig::default());
        // Every IP packet still gets a flow (detection needs one), flagged as not Suricata's.
        for proto in [2u8, 47, 89, 103, 112, 135, 59, 255] {
            let (flow, _) = table.lookup(&base(C, S, proto, Transport::Other, b"")).expect("a flow");
            assert!(!flow.tracked, "proto {proto}");
        }
        // ICMPv6 carried over IPv4, and ICMPv4 over IPv6, are decoder anomalies with no flow.
        let v6_in_v4 = base(C, S, IPPROTO_ICMPV6, Transport::Icmp { icmp_type: 128, icmp_code: 0 }, b"");
        assert!(!table.lookup(&v6_in_v4).unwrap().0.tracked);
        let v4_in_v6 = base("fe80::1", "fe80::2", IPPROTO_ICMP, Transport::Icmp { icmp_type: 8, icmp_code: 0 }, b"");
        assert!(!table.lookup(&v4_in_v6).unwrap().0.tracked);
        assert_eq!(table.stats().untracked, 10);
        for proto in [4u8, 41, 50, 132] {
            assert!(table.lookup(&base(C, S, proto, Transport::Other, b"")).unwrap().0.tracked, "proto {proto}");
        }
        assert!(table.lookup(&c2s(SYN, 1, 0, b"")).unwrap().0.tracked);
        assert_eq!(table.stats().untracked, 10);
        assert_eq!(table.stats().active, 15);
    }

    #[test]
    fn same_five_tuple_on_the_wire_and_in_a_tunnel_are_two_flows() {
        let mut table = Table::new(FlowConfig::default());
        let direct = c2s(SYN, 1000, 0, b"");
        let mut tunnelled = c2s(SYN, 1000, 0, b"");
        tunnelled.tunnel_depth = 1;
        table.lookup(&direct).unwrap();
        table.lookup(&tunnelled).unwrap();
        table.lookup(&direct).unwrap();
        assert_eq!(table.stats().active, 2);
        let pkts: Vec<u64> = ended(&mut table).iter().map(|(f, _)| f.pkts_toserver()).collect();
        assert_eq!(pkts.iter().sum::<u64>(), 3);
        assert!(pkts.contains(&2) && pkts.contains(&1));
    }

    #[test]
    fn swap_direction_reverses_counters_and_endpoints() {
        let mut table = Table::new(FlowConfig::default());
        let r = udp("10.0.0.53", 53, C, 5353, 0);
        let (flow, _) = table.lookup(&r).unwrap();
        flow.swap_direction();
        assert_eq!(flow.client.to_string(), C);
        assert_eq!(flow.pkts_toclient(), 1);
        let (flow, dir) = table.lookup(&udp(C, 5353, "10.0.0.53", 53, 1)).unwrap();
        assert_eq!(dir, Direction::ToServer);
        assert_eq!((flow.pkts_toserver(), flow.pkts_toclient()), (1, 1));
    }

    #[test]
    fn flow_id_is_stable_non_zero_and_below_2_pow_51() {
        let mut t1 = Table::new(FlowConfig::default());
        let mut t2 = Table::new(FlowConfig::default());
        let id1 = t1.lookup(&c2s(SYN, 1, 0, b"")).unwrap().0.flow_id;
        let id2 = t2.lookup(&c2s(SYN, 1, 0, b"")).unwrap().0.flow_id;
        assert_eq!(id1, id2);
        assert!(id1 > 0 && id1 < 1 << 51);
        let mut p = c2s(SYN, 1, 0, b"");
        p.ts = at(1);
        assert_ne!(t2.lookup(&udp(C, 1, S, 2, 0)).unwrap().0.flow_id, id1);
        let mut t3 = Table::new(FlowConfig::default());
        assert_ne!(t3.lookup(&p).unwrap().0.flow_id, id1);
    }

    #[test]
    fn eve_helpers_format_like_suricata() {
        assert_eq!(tcp_flags_hex(0x1b), "1b");
        assert_eq!(tcp_flags_hex(0), "00");
        assert_eq!(icmp_counterpart(IPPROTO_ICMPV6, 136), Some(135));
        assert_eq!(icmp_counterpart(IPPROTO_ICMP, 0), Some(8));
        assert_eq!(icmp_counterpart(IPPROTO_ICMP, 3), None);
    }

    mod model {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]

            /// Random packets among a few hosts: every packet is counted exactly once across all
            /// flows, memory returns to zero, and the table never exceeds its caps.
            #[test]
            fn every_packet_is_counted_once(
                pkts in prop::collection::vec((0u8..4, 0u8..4, 0u16..3, 0u16..3, 0u8..3, any::<u8>(), 0i64..200), 1..200)
            ) {
                let hosts = ["10.0.0.1", "10.0.0.2", "192.168.0.1", "fe80::1"];
                let config = FlowConfig { max_flows: 8, ..FlowConfig::default() };
                let mut table = Table::new(config);
                let mut counted = 0u64;
                let mut expected = 0u64;
                let mut out = |f: Flow<u32>, _r: EndReason| counted += f.pkts[0] + f.pkts[1];
                let mut ts = 0i64;
                for (a, b, sp, dp, kind, flags, dt) in pkts {
                    let (src, dst) = (hosts[a as usize], hosts[b as usize]);
                    if src.contains(':') != dst.contains(':') {
                        continue;
                    }
                    ts += dt;
                    let mut p = match kind {
                        0 => tcp(src, 1000 + sp, dst, 80 + dp, flags, u32::from(flags) * 7, 0, b""),
                        1 => udp(src, 1000 + sp, dst, 53 + dp, 0),
                        _ => icmp(src, dst, flags % 20, 0, b""),
                    };
                    p.ts = at(ts);
                    if table.lookup(&p).is_some() {
                        expected += 1;
                    }
                    prop_assert!(table.stats().active <= 8);
                    if ts % 7 == 0 {
                        table.expire(at(ts), &mut out);
                    }
                }
                table.drain(&mut out);
                prop_assert_eq!(counted, expected);
                prop_assert_eq!(table.stats().memory, 0);
                prop_assert_eq!(table.stats().active, 0);
            }
        }
    }

    /// The flow set against Suricata's on the Zeek corpus: proto, client ip/port, server
    /// ip/port and packets each way, as multisets per capture. Agreement is
    /// `matched / max(ours, suricata)`. App-layer orientation fixes (UDP responses seen first)
    /// are the sensor's, so this floor sits a little below the sensor's own.
    mod conformance {
        use super::*;
        use crate::capture::CaptureFile;
        use crate::decode::Decoder;
        use std::collections::BTreeMap;
        use std::path::PathBuf;

        const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");
        /// Measured agreement is above this; a drop means a regression in flow keying,
        /// orientation, splitting or counting.
        const FLOOR: f64 = 0.97;

        fn proto_number(name: &str) -> u8 {
            match name {
                "TCP" => 6,
                "UDP" => 17,
                "ICMP" => 1,
                "IPv6-ICMP" => 58,
                "SCTP" => 132,
                "ESP" => 50,
                "IPv6" => 41,
                "IP-in-IP" => 4,
                "GRE" => 47,
                other => other.parse().unwrap_or(255),
            }
        }

        fn key(proto: u8, src: String, sp: Option<u16>, dst: String, dp: Option<u16>, ts: u64, tc: u64) -> String {
            let port = |p: Option<u16>| p.map_or("-".to_string(), |p| p.to_string());
            format!("{proto} {src}:{} -> {dst}:{} pkts {ts}/{tc}", port(sp), port(dp))
        }

        fn ours(pcap: &PathBuf) -> Option<BTreeMap<String, usize>> {
            let mut file = CaptureFile::open(pcap).ok()?;
            let mut decoder = Decoder::new();
            let mut table: FlowTable<()> = FlowTable::new(FlowConfig::default());
            let mut out: BTreeMap<String, usize> = BTreeMap::new();
            let mut record = |f: Flow<()>, _r: EndReason| {
                if !f.tracked {
                    return;
                }
                let ports = matches!(f.proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP);
                let k = key(
                    f.proto,
                    ward_model::eve::format_ip(f.client),
                    ports.then_some(f.client_port),
                    ward_model::eve::format_ip(f.server),
                    ports.then_some(f.server_port),
                    f.pkts[0],
                    f.pkts[1],
                );
                *out.entry(k).or_default() += 1;
            };
            while let Ok(Some(raw)) = file.next_packet() {
                let result = decoder.decode(&raw);
                for pkt in result.packets() {
                    table.lookup(pkt);
                }
                table.take_ended(&mut record);
            }
            table.drain(&mut record);
            Some(out)
        }

        fn theirs(oracle: &PathBuf) -> BTreeMap<String, usize> {
            let mut out = BTreeMap::new();
            let text = std::fs::read_to_string(oracle).unwrap_or_default();
            for line in text.lines() {
                let Ok(r) = serde_json::from_str::<serde_json::Value>(line) else { continue };
                if r["event_type"] != "flow" {
                    continue;
                }
                let f = &r["flow"];
                let k = key(
                    proto_number(r["proto"].as_str().unwrap_or("")),
                    r["src_ip"].as_str().unwrap_or("").to_string(),
                    r["src_port"].as_u64().map(|p| p as u16),
                    r["dest_ip"].as_str().unwrap_or("").to_string(),
                    r["dest_port"].as_u64().map(|p| p as u16),
                    f["pkts_toserver"].as_u64().unwrap_or(0),
                    f["pkts_toclient"].as_u64().unwrap_or(0),
                );
                *out.entry(k).or_default() += 1;
            }
            out
        }

        #[test]
        fn flow_set_agrees_with_suricata_on_the_zeek_corpus() {
            let index = std::fs::read_to_string(format!("{DATA}/oracle/zeek-index.tsv")).expect("oracle index");
            let (mut n_ours, mut n_theirs, mut matched) = (0usize, 0usize, 0usize);
            let mut report = String::new();
            let mut captures = 0;
            for line in index.lines().skip(1) {
                let cols: Vec<&str> = line.split('\t').collect();
                if cols.get(1) != Some(&"ok") {
                    continue;
                }
                let pcap = PathBuf::from(format!("{DATA}/pcaps/zeek/{}", cols[0]));
                let oracle = PathBuf::from(format!("{DATA}/oracle/{}", cols[8]));
                let Some(ours) = ours(&pcap) else { continue };
                captures += 1;
                let theirs = theirs(&oracle);
                for (k, &n) in &ours {
                    n_ours += n;
                    let t = theirs.get(k).copied().unwrap_or(0);
                    matched += n.min(t);
                    if n > t {
                        report.push_str(&format!("{}\tours+{}\t{k}\n", cols[0], n - t));
                    }
                }
                for (k, &n) in &theirs {
                    n_theirs += n;
                    let o = ours.get(k).copied().unwrap_or(0);
                    if n > o {
                        report.push_str(&format!("{}\ttheirs+{}\t{k}\n", cols[0], n - o));
                    }
                }
            }
            let agreement = matched as f64 / n_ours.max(n_theirs).max(1) as f64;
            let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| std::env::temp_dir().display().to_string());
            let path = PathBuf::from(dir).join("flow-conformance.tsv");
            let _ = std::fs::write(&path, &report);
            eprintln!(
                "flow conformance: {captures} captures, ours {n_ours}, suricata {n_theirs}, matched {matched}, \
                 agreement {:.4}; differences in {}",
                agreement,
                path.display()
            );
            assert!(captures > 700, "only {captures} captures read");
            assert!(agreement >= FLOOR, "flow agreement {agreement:.4} below {FLOOR}");
        }
    }
}
