//! Decoding a captured frame into IP packets: link layer → VLAN/MPLS/PPPoE → IPv4/IPv6 (with
//! fragment reassembly) → TCP/UDP/ICMP/ICMPv6, and through tunnels (IP-in-IP, 6in4, 4in6, 6in6,
//! GRE with ERSPAN II/III and PPTP, VXLAN, Geneve, Teredo).
//!
//! A frame yields zero or more [`Packet`]s, outermost first, as Suricata handles them: a tunnel's
//! outer packet (for example the UDP/4789 packet around VXLAN) and each inner packet are all
//! returned; the inner packets' `wire_len` is their IP packet's length (Suricata counts those
//! bytes for inner flows), the outermost's is the frame's original length. Suricata gives the
//! outer packet of a GRE tunnel no flow: the flow stage should skip packets with `proto == 47`
//! that are followed by an inner layer.
//!
//! Malformed input never panics and is never an error: it becomes a [`DecodeAnomaly`] named as
//! Suricata names its decoder events (`decoder.ipv4.trunc_pkt`, ...), and the layer that was
//! malformed yields no packet. Checksums are not validated (as Suricata with `-k none`).
//!
//! Limits: [`MAX_LAYERS`] tunnel layers, [`MAX_VLAN_LAYERS`] VLAN tags, [`MAX_MPLS_LABELS`]
//! labels, [`MAX_IPV6_EXT_HEADERS`] IPv6 extension headers. Nothing is allocated per packet
//! (anomalies go in a reused list; fragments are copied by the reassembler).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ward_model::Timestamp;

use crate::capture::{LinkType, RawPacket};
use crate::defrag::{DefragOutcome, DefragStats, Defragmenter, FragKey, Fragment};
use crate::packet::{
    FrameHeaders, Packet, TcpHeader, Transport, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP,
};

/// Most IP layers decoded from one frame (the outer packet plus nested tunnels). Suricata stops
/// at a similar depth; deeper nesting is an anomaly and the layers below are not decoded.
pub const MAX_LAYERS: usize = 4;
/// Most VLAN tags followed (802.1Q, 802.1ad QinQ and one more, as Suricata); only the outer two
/// are kept in [`Packet::vlan`].
pub const MAX_VLAN_LAYERS: u8 = 3;
/// Most link-level encapsulations (Ethernet in FabricPath/802.1ah/MPLS pseudowires, VLAN,
/// VNTag, PPPoE, ...) followed in one frame: bounds the recursion a hostile frame can cause
/// (Suricata's `decoder.max-layers` default is 16 too).
pub const MAX_ENCAPSULATIONS: u8 = 16;
/// Most MPLS labels followed before giving up on a label stack with no bottom.
pub const MAX_MPLS_LABELS: usize = 16;
/// Most IPv6 extension headers followed (a real packet has a handful; this bounds the loop).
pub const MAX_IPV6_EXT_HEADERS: usize = 16;
/// Most anomalies recorded for one frame (bounds the list an adversarial frame can grow).
pub const MAX_ANOMALIES_PER_FRAME: usize = 16;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MCAST: u16 = 0x8848;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const ETHERTYPE_VNTAG: u16 = 0x8926;
const ETHERTYPE_FABRICPATH: u16 = 0x8903;
const ETHERTYPE_PBB: u16 = 0x88e7;
const ETHERTYPE_TEB: u16 = 0x6558;
const ETHERTYPE_ERSPAN_II: u16 = 0x88be;
const ETHERTYPE_ERSPAN_III: u16 = 0x22eb;
const ETHERTYPE_PPP: u16 = 0x880b;
const ETHERTYPE_NSH: u16 = 0x894f;

const IPPROTO_IPIP: u8 = 4;
const IPPROTO_IPV6: u8 = 41;
const IPPROTO_GRE: u8 = 47;
const IPPROTO_SCTP: u8 = 132;

const PORT_VXLAN: u16 = 4789;
const PORT_GENEVE: u16 = 6081;
const PORT_TEREDO: u16 = 3544;

/// A decoding problem, named as Suricata's decoder event (EVE `anomaly.event` with
/// `anomaly.type = "decode"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeAnomaly {
    /// e.g. `decoder.ipv4.trunc_pkt`.
    pub event: &'static str,
    /// What was wrong, in words.
    pub reason: &'static str,
    /// Addresses of the innermost IP layer decoded when the anomaly was found.
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    /// IP protocol of that layer (0 when unknown).
    pub proto: u8,
    /// Ports when the transport header was decoded, else 0.
    pub src_port: u16,
    pub dst_port: u16,
    /// The frame's header fields as far as its bytes go, decoded or not (`src`/`dst` above are
    /// only those of a decoded layer, as Suricata logs them): what `--filter` judges the
    /// anomaly by.
    pub headers: FrameHeaders,
}

/// The kind of tunnel a layer was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelKind {
    /// IPv4 in IPv4 (protocol 4).
    Ipv4InIpv4,
    /// IPv6 in IPv4 (protocol 41, "6in4").
    Ipv6InIpv4,
    Ipv4InIpv6,
    Ipv6InIpv6,
    Gre,
    /// ERSPAN type I/II/III inside GRE.
    Erspan,
    Vxlan,
    Geneve,
    Teredo,
}

impl TunnelKind {
    /// Suricata's `pkt_src` of a packet found in this kind of tunnel (EVE `pkt_src`).
    pub fn pkt_src(self) -> &'static str {
        match self {
            TunnelKind::Ipv4InIpv4 | TunnelKind::Ipv6InIpv4 => "ipv4 tunnel",
            TunnelKind::Ipv4InIpv6 | TunnelKind::Ipv6InIpv6 => "ipv6 tunnel",
            TunnelKind::Gre | TunnelKind::Erspan => "gre tunnel",
            TunnelKind::Vxlan => "vxlan encapsulation",
            TunnelKind::Geneve => "geneve encapsulation",
            TunnelKind::Teredo => "teredo tunnel",
        }
    }
}

/// What decoding a frame came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeStatus {
    /// At least one packet was decoded (see [`DecodeResult::packets`]).
    Packet,
    /// Not IP (ARP, LLDP, STP, ...): counted, not an anomaly.
    NotIp,
    /// An IP fragment kept for reassembly (or refused by a reassembly limit, with an anomaly).
    Fragment,
    /// Malformed: see the anomalies.
    Invalid,
    /// A link type the decoder does not know.
    UnsupportedLinkType,
}

/// The result of [`Decoder::decode`]: borrowed from the frame and the decoder until the next
/// call.
#[derive(Debug)]
pub struct DecodeResult<'a> {
    pub status: DecodeStatus,
    layers: [Option<Packet<'a>>; MAX_LAYERS],
    /// Tunnel kind of each layer: `tunnels[i]` is how layer `i` was carried (None for layer 0).
    tunnels: [Option<TunnelKind>; MAX_LAYERS],
    count: usize,
    /// The anomalies found in this frame (also counted in [`DecoderStats::anomalies`]).
    pub anomalies: &'a [DecodeAnomaly],
}

impl<'a> DecodeResult<'a> {
    /// Every packet decoded from the frame, outermost first.
    pub fn packets(&self) -> impl Iterator<Item = &Packet<'a>> {
        self.layers[..self.count].iter().flatten()
    }

    /// Every packet with the tunnel that carried it (None for the outermost).
    pub fn layers(&self) -> impl Iterator<Item = (&Packet<'a>, Option<TunnelKind>)> {
        self.layers[..self.count]
            .iter()
            .zip(self.tunnels.iter())
            .filter_map(|(p, t)| p.as_ref().map(|p| (p, *t)))
    }

    /// The innermost packet, if any.
    pub fn packet(&self) -> Option<&Packet<'a>> {
        self.layers[..self.count].iter().rev().flatten().next()
    }

    /// The tunnel layers around the innermost packet, outermost first (empty when the frame was
    /// not tunnelled). Suricata counts some of them in flows of their own (see
    /// [`crate::flow::tracks_flow`]): the sensor looks them up in its flow table, while only the
    /// innermost packet goes on to reassembly and the app layer.
    pub fn outer_packets(&self) -> impl Iterator<Item = &Packet<'a>> {
        let n = self.len().saturating_sub(1);
        self.packets().take(n)
    }

    /// The innermost packet's tunnel, if it was in one.
    pub fn tunnel(&self) -> Option<TunnelKind> {
        if self.count == 0 {
            None
        } else {
            self.tunnels[self.count - 1]
        }
    }

    /// How many packets.
    pub fn len(&self) -> usize {
        self.layers[..self.count].iter().flatten().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Counters, by layer (named after Suricata's `decoder` stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Frames given to the decoder.
    pub pkts: u64,
    /// Their bytes on the wire.
    pub bytes: u64,
    pub ethernet: u64,
    pub null: u64,
    pub raw: u64,
    pub sll: u64,
    pub sll2: u64,
    pub ppp: u64,
    pub pppoe: u64,
    /// Cisco HDLC frames (Suricata's `decoder.chdlc`).
    pub chdlc: u64,
    /// Network Service Header layers (Suricata's `decoder.nsh`).
    pub nsh: u64,
    pub vlan: u64,
    pub vlan_qinq: u64,
    pub vntag: u64,
    pub ieee8021ah: u64,
    pub mpls: u64,
    pub arp: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    pub tcp: u64,
    pub udp: u64,
    pub icmpv4: u64,
    pub icmpv6: u64,
    pub sctp: u64,
    pub gre: u64,
    pub erspan: u64,
    pub vxlan: u64,
    pub geneve: u64,
    pub teredo: u64,
    pub ipv4_in_ipv4: u64,
    pub ipv6_in_ipv4: u64,
    pub ipv4_in_ipv6: u64,
    pub ipv6_in_ipv6: u64,
    /// Frames with no IP packet (ARP included).
    pub non_ip: u64,
    /// Frames of a link type the decoder does not know.
    pub unsupported_linktype: u64,
    /// Frames (or layers) dropped as malformed.
    pub invalid: u64,
    /// Anomalies raised (a frame may raise several).
    pub anomalies: u64,
    /// IP fragments seen.
    pub fragments: u64,
    /// Datagrams rebuilt from fragments.
    pub reassembled: u64,
    /// Frames with more than [`MAX_LAYERS`] tunnel layers.
    pub too_many_layers: u64,
}

/// Why decoding a layer stopped without a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Invalid,
    NotIp,
    Fragment,
    /// A datagram was completed; it is in the reassembler's output.
    Reassembled {
        wire_overhead: u32,
    },
    Unsupported,
}

type Layer<'d> = Result<Packet<'d>, Stop>;

/// Per-frame decoding state.
struct Ctx<'d> {
    ts: Timestamp,
    /// Wire length of the current layer: the frame's for layer 0, the IP length below.
    wire_len: u32,
    vlan: [u16; 2],
    vlan_layers: u8,
    /// Link-level encapsulations entered so far (see [`MAX_ENCAPSULATIONS`]).
    encapsulations: u8,
    /// The tunnel the next IP layer is carried in.
    tunnel: Option<TunnelKind>,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    proto: u8,
    /// The innermost IP header reached, to its frame's end (decoded or not): an anomaly reads
    /// its [`FrameHeaders`] from here, only when one is raised.
    ip: &'d [u8],
    reassembled: bool,
    /// Address of the frame's first byte: a fragment's link-header length is its IP header's
    /// distance from here.
    frame_start: usize,
    /// The bytes the current layer's packet is logged as ([`Packet::frame`]).
    frame: &'d [u8],
    /// Finished outer layers.
    layers: [Option<Packet<'d>>; MAX_LAYERS],
    tunnels: [Option<TunnelKind>; MAX_LAYERS],
    count: usize,
}

impl<'d> Ctx<'d> {
    fn new(ts: Timestamp, wire_len: u32, frame: &'d [u8]) -> Self {
        Ctx {
            frame,
            ts,
            wire_len,
            vlan: [0; 2],
            vlan_layers: 0,
            encapsulations: 0,
            tunnel: None,
            src: None,
            dst: None,
            proto: 0,
            ip: &[],
            reassembled: false,
            frame_start: 0,
            layers: [None, None, None, None],
            tunnels: [None; MAX_LAYERS],
            count: 0,
        }
    }
}

/// Facts of the IP layer a transport sits on.
#[derive(Clone, Copy)]
struct Ip {
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    v6: bool,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The decoder: one per worker thread. Holds the reassembler, counters and the anomaly list.
#[derive(Debug, Default)]
pub struct Decoder {
    pub stats: DecoderStats,
    defrag: Defragmenter,
    anomalies: Vec<DecodeAnomaly>,
}

impl Decoder {
    pub fn new() -> Self {
        Decoder {
            stats: DecoderStats::default(),
            defrag: Defragmenter::new(),
            anomalies: Vec::with_capacity(MAX_ANOMALIES_PER_FRAME),
        }
    }

    /// Reassembly counters.
    pub fn defrag_stats(&self) -> DefragStats {
        self.defrag.stats
    }

    /// Drops incomplete datagrams idle past the defrag timeout (call on a timer when no packets
    /// arrive; decoding a fragment also does it).
    pub fn expire(&mut self, now: Timestamp) {
        self.defrag.expire(now);
    }

    /// Decodes one frame.
    pub fn decode<'a>(&'a mut self, raw: &RawPacket<'a>) -> DecodeResult<'a> {
        self.anomalies.clear();
        self.stats.pkts += 1;
        // Suricata counts captured bytes (GET_PKT_LEN), not the original length, in flow and
        // decoder byte counters; the oracle's flow records confirm it for snapped frames.
        let captured = raw.data.len().min(u32::MAX as usize) as u32;
        self.stats.bytes += captured as u64;
        let mut ctx = Ctx::new(raw.ts, captured, raw.data);
        ctx.frame_start = raw.data.as_ptr() as usize;
        let inner = self.link(&mut ctx, raw.linktype, raw.data);
        let (status, last) = match inner {
            Ok(p) => (DecodeStatus::Packet, Some(p)),
            Err(Stop::Reassembled { wire_overhead }) => {
                return self.decode_reassembled(ctx, wire_overhead);
            }
            Err(stop) => (self.count_stop(stop), None),
        };
        let Ctx {
            mut layers,
            mut tunnels,
            mut count,
            tunnel,
            ..
        } = ctx;
        if let Some(p) = last {
            if count < MAX_LAYERS {
                layers[count] = Some(p);
                tunnels[count] = tunnel;
                count += 1;
            }
        }
        let status = if status != DecodeStatus::Packet && count > 0 {
            DecodeStatus::Packet
        } else {
            status
        };
        // An outer layer found with an inner failure still reports the failure's anomalies.
        DecodeResult {
            status,
            layers,
            tunnels,
            count,
            anomalies: &self.anomalies,
        }
    }

    fn count_stop(&mut self, stop: Stop) -> DecodeStatus {
        match stop {
            Stop::Invalid => {
                self.stats.invalid += 1;
                DecodeStatus::Invalid
            }
            Stop::NotIp => {
                self.stats.non_ip += 1;
                DecodeStatus::NotIp
            }
            Stop::Fragment | Stop::Reassembled { .. } => DecodeStatus::Fragment,
            Stop::Unsupported => {
                self.stats.unsupported_linktype += 1;
                DecodeStatus::UnsupportedLinkType
            }
        }
    }

    /// Decodes the datagram the reassembler just completed, keeping the frame's outer layers
    /// (rebased: they borrow the frame, which outlives this call).
    fn decode_reassembled<'a>(
        &'a mut self,
        outer: Ctx<'a>,
        wire_overhead: u32,
    ) -> DecodeResult<'a> {
        self.stats.reassembled += 1;
        // The buffer holds the first fragment's link header, then the datagram.
        let buf = self.defrag.take_output();
        let link = self.defrag.output_link_len().min(buf.len());
        let datagram = &buf[link..];
        let v4 = datagram.first().is_some_and(|b| b >> 4 == 4);
        let mut ctx: Ctx<'_> = Ctx::new(
            outer.ts,
            wire_overhead.saturating_add(datagram.len() as u32),
            &buf,
        );
        ctx.vlan = outer.vlan;
        ctx.vlan_layers = outer.vlan_layers;
        ctx.tunnel = outer.tunnel;
        ctx.reassembled = true;
        let inner = if v4 {
            self.ipv4(&mut ctx, datagram)
        } else {
            self.ipv6(&mut ctx, datagram)
        };
        // Rebase what borrows `buf` onto the reassembler's buffer once it is back in place:
        // (packet, payload offset and length, frame offset and length).
        type Rebased = (Packet<'static>, (usize, usize), (usize, usize));
        let mut rebased: [Option<Rebased>; MAX_LAYERS] = [None, None, None, None];
        let mut inner_tunnels = [None; MAX_LAYERS];
        let mut n = 0;
        let base = buf.as_ptr() as usize;
        let span = |part: &[u8]| {
            let off = (part.as_ptr() as usize).wrapping_sub(base).min(buf.len());
            (off, part.len().min(buf.len() - off))
        };
        let mut push = |p: Packet<'_>, t: Option<TunnelKind>, n: &mut usize| {
            if *n < MAX_LAYERS {
                let (payload, frame) = (span(p.payload), span(p.frame));
                rebased[*n] = Some((
                    Packet {
                        payload: &[],
                        frame: &[],
                        ..p
                    },
                    payload,
                    frame,
                ));
                inner_tunnels[*n] = t;
                *n += 1;
            }
        };
        for i in 0..ctx.count {
            if let Some(p) = ctx.layers[i].take() {
                push(p, ctx.tunnels[i], &mut n);
            }
        }
        let status = match inner {
            Ok(p) => {
                push(p, ctx.tunnel, &mut n);
                DecodeStatus::Packet
            }
            // A fragment inside a reassembled datagram completing another datagram is too deep:
            // it is counted as a fragment and dropped.
            Err(stop) => self.count_stop(stop),
        };
        self.defrag.restore_output(buf);
        let out = self.defrag.output_frame();
        let Ctx {
            mut layers,
            mut tunnels,
            mut count,
            ..
        } = outer;
        for (slot, t) in rebased.into_iter().zip(inner_tunnels).take(n) {
            let Some((p, (off, len), (frame_off, frame_len))) = slot else {
                continue;
            };
            if count < MAX_LAYERS {
                layers[count] = Some(Packet {
                    payload: out.get(off..off + len).unwrap_or_default(),
                    frame: out.get(frame_off..frame_off + frame_len).unwrap_or_default(),
                    tunnel_depth: count as u8,
                    ..p
                });
                tunnels[count] = t;
                count += 1;
            }
        }
        let status = if count > 0 {
            DecodeStatus::Packet
        } else {
            status
        };
        DecodeResult {
            status,
            layers,
            tunnels,
            count,
            anomalies: &self.anomalies,
        }
    }

    fn anomaly(&mut self, ctx: &Ctx<'_>, event: &'static str, reason: &'static str) {
        self.stats.anomalies += 1;
        if self.anomalies.len() < MAX_ANOMALIES_PER_FRAME {
            self.anomalies.push(DecodeAnomaly {
                event,
                reason,
                src: ctx.src,
                dst: ctx.dst,
                proto: ctx.proto,
                src_port: 0,
                dst_port: 0,
                headers: FrameHeaders::read_ip(ctx.ip, ctx.vlan),
            });
        }
    }

    fn invalid(&mut self, ctx: &Ctx<'_>, event: &'static str, reason: &'static str) -> Stop {
        self.anomaly(ctx, event, reason);
        Stop::Invalid
    }

    // ----- link layers ------------------------------------------------------------------------

    fn link<'d>(&mut self, ctx: &mut Ctx<'d>, linktype: LinkType, data: &'d [u8]) -> Layer<'d> {
        match linktype {
            LinkType::Ethernet => self.ethernet(ctx, data),
            LinkType::Null => self.null(ctx, data),
            LinkType::Raw => {
                self.stats.raw += 1;
                self.raw_ip(ctx, data)
            }
            LinkType::Ipv4 => {
                self.stats.raw += 1;
                self.ipv4(ctx, data)
            }
            LinkType::Ipv6 => {
                self.stats.raw += 1;
                self.ipv6(ctx, data)
            }
            LinkType::LinuxSll => {
                self.stats.sll += 1;
                if data.len() < 16 {
                    return Err(self.invalid(
                        ctx,
                        "decoder.sll.pkt_too_small",
                        "frame is shorter than the 16-byte sll header",
                    ));
                }
                self.ethertype(ctx, be16(data, 14), &data[16..])
            }
            LinkType::LinuxSll2 => {
                self.stats.sll2 += 1;
                if data.len() < 20 {
                    return Err(self.invalid(
                        ctx,
                        "decoder.sll2.pkt_too_small",
                        "frame is shorter than the 20-byte sll2 header",
                    ));
                }
                self.ethertype(ctx, be16(data, 0), &data[20..])
            }
            LinkType::Ppp => {
                self.stats.ppp += 1;
                self.ppp(ctx, data)
            }
            LinkType::CHdlc => {
                // Cisco HDLC: address, control, then an ethertype.
                self.stats.chdlc += 1;
                if data.len() < 4 {
                    return Err(self.invalid(
                        ctx,
                        "decoder.chdlc.pkt_too_small",
                        "frame is shorter than the 4-byte cisco hdlc header",
                    ));
                }
                self.ethertype(ctx, be16(data, 2), &data[4..])
            }
            LinkType::Other(_) => Err(Stop::Unsupported),
        }
    }

    fn ethernet<'d>(&mut self, ctx: &mut Ctx<'d>, data: &'d [u8]) -> Layer<'d> {
        self.stats.ethernet += 1;
        if data.len() < 14 {
            return Err(self.invalid(
                ctx,
                "decoder.ethernet.pkt_too_small",
                "frame is shorter than the 14-byte ethernet header",
            ));
        }
        self.ethertype(ctx, be16(data, 12), &data[14..])
    }

    fn ethertype<'d>(&mut self, ctx: &mut Ctx<'d>, ethertype: u16, data: &'d [u8]) -> Layer<'d> {
        ctx.encapsulations += 1;
        if ctx.encapsulations > MAX_ENCAPSULATIONS {
            self.stats.too_many_layers += 1;
            return Err(self.invalid(
                ctx,
                "decoder.too_many_layers",
                "more nested encapsulations than MAX_ENCAPSULATIONS",
            ));
        }
        match ethertype {
            ETHERTYPE_IPV4 => self.ipv4(ctx, data),
            ETHERTYPE_IPV6 => self.ipv6(ctx, data),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => self.vlan(ctx, data),
            ETHERTYPE_ARP => {
                self.stats.arp += 1;
                Err(Stop::NotIp)
            }
            ETHERTYPE_MPLS | ETHERTYPE_MPLS_MCAST => self.mpls(ctx, data),
            ETHERTYPE_PPPOE_SESSION => {
                self.stats.pppoe += 1;
                if data.len() < 8 {
                    return Err(self.invalid(
                        ctx,
                        "decoder.pppoe.pkt_too_small",
                        "pppoe session header is truncated",
                    ));
                }
                // The session length field is not trusted (Suricata ignores it too): the IP
                // length bounds the packet.
                self.ppp(ctx, &data[6..])
            }
            ETHERTYPE_FABRICPATH => {
                // Cisco FabricPath: 2-byte FTag/TTL, then the original Ethernet frame.
                if data.len() < 2 + 14 {
                    return Err(self.invalid(
                        ctx,
                        "decoder.ethernet.pkt_too_small",
                        "fabricpath frame is truncated",
                    ));
                }
                self.ethernet(ctx, &data[2..])
            }
            ETHERTYPE_PBB => {
                // 802.1ah provider backbone bridging: 4-byte I-TAG, then customer MACs and type.
                self.stats.ieee8021ah += 1;
                if data.len() < 4 + 14 {
                    return Err(self.invalid(
                        ctx,
                        "decoder.ieee8021ah.header_too_small",
                        "802.1ah i-tag header is truncated",
                    ));
                }
                self.ethernet(ctx, &data[4..])
            }
            ETHERTYPE_NSH => self.nsh(ctx, data),
            ETHERTYPE_VNTAG => {
                self.stats.vntag += 1;
                if data.len() < 6 {
                    return Err(self.invalid(
                        ctx,
                        "decoder.vntag.header_too_small",
                        "vntag header is truncated",
                    ));
                }
                self.ethertype(ctx, be16(data, 4), &data[6..])
            }
            _ => Err(Stop::NotIp),
        }
    }

    fn vlan<'d>(&mut self, ctx: &mut Ctx<'d>, data: &'d [u8]) -> Layer<'d> {
        if ctx.vlan_layers == 0 {
            self.stats.vlan += 1;
        } else {
            self.stats.vlan_qinq += 1;
        }
        if data.len() < 4 {
            return Err(self.invalid(
                ctx,
                "decoder.vlan.header_too_small",
                "vlan tag is truncated",
            ));
        }
        if ctx.vlan_layers >= MAX_VLAN_LAYERS {
            return Err(self.invalid(
                ctx,
                "decoder.vlan.too_many_layers",
                "more vlan tags than MAX_VLAN_LAYERS",
            ));
        }
        if (ctx.vlan_layers as usize) < ctx.vlan.len() {
            ctx.vlan[ctx.vlan_layers as usize] = be16(data, 0) & 0x0fff;
        }
        ctx.vlan_layers += 1;
        self.ethertype(ctx, be16(data, 2), &data[4..])
    }

    fn mpls<'d>(&mut self, ctx: &mut Ctx<'d>, data: &'d [u8]) -> Layer<'d> {
        self.stats.mpls += 1;
        let mut at = 0;
        for _ in 0..MAX_MPLS_LABELS {
            if data.len() < at + 4 {
                return Err(self.invalid(
                    ctx,
                    "decoder.mpls.header_too_small",
                    "mpls label stack is truncated",
                ));
            }
            let bottom = data[at + 2] & 1 == 1;
            at += 4;
            if bottom {
                let rest = &data[at..];
                return match rest.first().map(|b| b >> 4) {
                    Some(4) => self.ipv4(ctx, rest),
                    Some(6) => self.ipv6(ctx, rest),
                    // Pseudowire control word, then an Ethernet frame.
                    Some(0) if rest.len() >= 4 => self.ethernet(ctx, &rest[4..]),
                    _ => Err(self.invalid(
                        ctx,
                        "decoder.mpls.unknown_payload_type",
                        "mpls payload is neither ip nor ethernet",
                    )),
                };
            }
        }
        Err(self.invalid(
            ctx,
            "decoder.mpls.header_too_small",
            "mpls label stack has no bottom within MAX_MPLS_LABELS",
        ))
    }

    /// Network Service Header (RFC 8300), as Suricata's DecodeNSH: version 0 only, MD type 1
    /// (fixed 24-byte header) or 2 (variable), then IPv4, IPv6, Ethernet or MPLS.
    fn nsh<'d>(&mut self, ctx: &mut Ctx<'d>, data: &'d [u8]) -> Layer<'d> {
        self.stats.nsh += 1;
        if data.len() < 8 {
            return Err(self.invalid(
                ctx,
                "decoder.nsh.header_too_small",
                "nsh header is shorter than 8 bytes",
            ));
        }
        let ver_flags_len = be16(data, 0);
        if ver_flags_len >> 14 != 0 {
            self.anomaly(
                ctx,
                "decoder.nsh.unsupported_version",
                "nsh version is not 0",
            );
            return Err(Stop::NotIp);
        }
        let length = ((ver_flags_len & 0x3f) as usize) * 4;
        if length >= data.len() {
            return Err(self.invalid(
                ctx,
                "decoder.nsh.bad_header_length",
                "nsh header is as long as the packet or longer",
            ));
        }
        match data[2] {
            0 | 0x0f => {
                self.anomaly(ctx, "decoder.nsh.reserved_type", "nsh md type is reserved");
                return Err(Stop::NotIp);
            }
            1 if length != 24 => {
                return Err(self.invalid(
                    ctx,
                    "decoder.nsh.bad_header_length",
                    "nsh md type 1 header is not 24 bytes",
                ));
            }
            1 | 2 => {}
            _ => {
                self.anomaly(
                    ctx,
                    "decoder.nsh.unsupported_type",
                    "nsh md type is neither 1 nor 2",
                );
                return Err(Stop::NotIp);
            }
        }
        let inner = &data[length..];
        match data[3] {
            1 => self.ipv4(ctx, inner),
            2 => self.ipv6(ctx, inner),
            3 => self.ethernet(ctx, inner),
            5 => self.mpls(ctx, inner),
            _ => {
                self.anomaly(
                    ctx,
                    "decoder.nsh.unknown_payload",
                    "nsh next protocol is not ipv4, ipv6, ethernet or mpls",
                );
                Err(Stop::NotIp)
            }
        }
    }

    fn ppp<'d>(&mut self, ctx: &mut Ctx<'d>, data: &'d [u8]) -> Layer<'d> {
        let mut d = data;
        if d.len() >= 2 && d[0] == 0xff && d[1] == 0x03 {
            d = &d[2..];
        }
        let Some(&first) = d.first() else {
            return Err(self.invalid(ctx, "decoder.ppp.pkt_too_small", "ppp frame is empty"));
        };
        // Protocol-field compression: an odd first byte is a one-byte protocol.
        let (proto, rest) = if first & 1 == 1 {
            (first as u16, &d[1..])
        } else {
            if d.len() < 2 {
                return Err(self.invalid(
                    ctx,
                    "decoder.ppp.pkt_too_small",
                    "ppp protocol field is truncated",
                ));
            }
            (be16(d, 0), &d[2..])
        };
        match proto {
            0x0021 => self.ipv4(ctx, rest),
            0x0057 => self.ipv6(ctx, rest),
            _ => Err(Stop::NotIp),
        }
    }

    fn null<'d>(&mut self, ctx: &mut Ctx<'d>, data: &'d [u8]) -> Layer<'d> {
        self.stats.null += 1;
        if data.len() < 4 {
            return Err(self.invalid(
                ctx,
                "decoder.ltnull.pkt_too_small",
                "frame is shorter than the 4-byte loopback header",
            ));
        }
        // The AF value is in the capturing host's byte order: small values fit either way.
        let mut af = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
        if af > 0xffff {
            af = af.swap_bytes();
        }
        match af {
            2 => self.ipv4(ctx, &data[4..]),
            // AF_INET6: 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (Darwin), 10 (Linux).
            10 | 24 | 28 | 30 => self.ipv6(ctx, &data[4..]),
            _ => {
                self.anomaly(
                    ctx,
                    "decoder.ltnull.unsupported_type",
                    "loopback address family is not ipv4 or ipv6",
                );
                Err(Stop::NotIp)
            }
        }
    }

    fn raw_ip<'d>(&mut self, ctx: &mut Ctx<'d>, data: &'d [u8]) -> Layer<'d> {
        match data.first().map(|b| b >> 4) {
            Some(4) => self.ipv4(ctx, data),
            Some(6) => self.ipv6(ctx, data),
            _ => Err(self.invalid(
                ctx,
                "decoder.ipraw.invalid_ip_version",
                "raw ip frame is neither ipv4 nor ipv6",
            )),
        }
    }

    // ----- IP ----------------------------------------------------------------------------------

    fn ipv4<'d>(&mut self, ctx: &mut Ctx<'d>, data: &'d [u8]) -> Layer<'d> {
        self.stats.ipv4 += 1;
        ctx.ip = data;
        if data.len() < 20 {
            return Err(self.invalid(
                ctx,
                "decoder.ipv4.pkt_too_small",
                "ipv4 packet is shorter than 20 bytes",
            ));
        }
        if data[0] >> 4 != 4 {
            return Err(self.invalid(
                ctx,
                "decoder.ipv4.wrong_ip_version",
                "ipv4 header has another ip version",
            ));
        }
        let hlen = ((data[0] & 0x0f) as usize) * 4;
        if hlen < 20 {
            return Err(self.invalid(
                ctx,
                "decoder.ipv4.hlen_too_small",
                "ipv4 header length is under 20 bytes",
            ));
        }
        let total = be16(data, 2) as usize;
        if total < hlen {
            return Err(self.invalid(
                ctx,
                "decoder.ipv4.iplen_smaller_than_hlen",
                "ipv4 total length is smaller than its header",
            ));
        }
        if data.len() < hlen {
            return Err(self.invalid(
                ctx,
                "decoder.ipv4.pkt_too_small",
                "ipv4 header is truncated",
            ));
        }
        if data.len() < total {
            return Err(self.invalid(
                ctx,
                "decoder.ipv4.trunc_pkt",
                "ipv4 packet is shorter than its total length",
            ));
        }
        let src = IpAddr::V4(Ipv4Addr::new(data[12], data[13], data[14], data[15]));
        let dst = IpAddr::V4(Ipv4Addr::new(data[16], data[17], data[18], data[19]));
        let proto = data[9];
        ctx.src = Some(src);
        ctx.dst = Some(dst);
        ctx.proto = proto;
        let ip = &data[..total];
        let frag = be16(data, 6);
        let more = frag & 0x2000 != 0;
        let offset = (frag & 0x1fff) as u32 * 8;
        if more || offset != 0 {
            let f = Fragment {
                key: FragKey {
                    src,
                    dst,
                    id: be16(data, 4) as u32,
                    proto,
                    vlan: ctx.vlan,
                },
                offset,
                more,
                data: &ip[hlen..],
                header: &ip[..hlen],
                next_header: proto,
                wire_overhead: Self::link_overhead(ctx, data),
                link: Self::link_header(ctx, data),
            };
            return Err(self.fragment(ctx, &f));
        }
        let info = Ip {
            src,
            dst,
            ttl: data[8],
            v6: false,
        };
        self.transport(ctx, info, proto, &ip[hlen..])
    }

    fn ipv6<'d>(&mut self, ctx: &mut Ctx<'d>, data: &'d [u8]) -> Layer<'d> {
        self.stats.ipv6 += 1;
        ctx.ip = data;
        if data.len() < 40 {
            return Err(self.invalid(
                ctx,
                "decoder.ipv6.pkt_too_small",
                "ipv6 packet is shorter than 40 bytes",
            ));
        }
        if data[0] >> 4 != 6 {
            return Err(self.invalid(
                ctx,
                "decoder.ipv6.wrong_ip_version",
                "ipv6 header has another ip version",
            ));
        }
        let total = 40 + be16(data, 4) as usize;
        if data.len() < total {
            return Err(self.invalid(
                ctx,
                "decoder.ipv6.trunc_pkt",
                "ipv6 packet is shorter than its payload length",
            ));
        }
        let mut a = [0u8; 16];
        a.copy_from_slice(&data[8..24]);
        let src = IpAddr::V6(Ipv6Addr::from(a));
        a.copy_from_slice(&data[24..40]);
        let dst = IpAddr::V6(Ipv6Addr::from(a));
        ctx.src = Some(src);
        ctx.dst = Some(dst);
        let ip = &data[..total];
        let mut next = data[6];
        let mut at = 40;
        for _ in 0..MAX_IPV6_EXT_HEADERS {
            ctx.proto = next;
            match next {
                // Hop-by-hop, routing, destination options.
                0 | 43 | 60 => {
                    if ip.len() < at + 8 {
                        return Err(self.invalid(
                            ctx,
                            "decoder.ipv6.trunc_exthdr",
                            "ipv6 extension header is truncated",
                        ));
                    }
                    let len = (ip[at + 1] as usize + 1) * 8;
                    if ip.len() < at + len {
                        return Err(self.invalid(
                            ctx,
                            "decoder.ipv6.trunc_exthdr",
                            "ipv6 extension header is longer than the packet",
                        ));
                    }
                    if next == 43 && ip[at + 2] == 0 {
                        self.anomaly(
                            ctx,
                            "decoder.ipv6.rh_type_0",
                            "ipv6 routing header of the deprecated type 0",
                        );
                    }
                    next = ip[at];
                    at += len;
                }
                // Authentication header: length in 4-byte units minus 2. A length of 0 (too
                // short for the fixed 12-byte header) is taken as 12 bytes, as Suricata does.
                51 => {
                    if ip.len() < at + 8 {
                        return Err(self.invalid(
                            ctx,
                            "decoder.ipv6.trunc_exthdr",
                            "ipv6 authentication header is truncated",
                        ));
                    }
                    let len = match ip[at + 1] {
                        0 => 12,
                        n => (n as usize + 2) * 4,
                    };
                    if ip.len() < at + len {
                        return Err(self.invalid(
                            ctx,
                            "decoder.ipv6.trunc_exthdr",
                            "ipv6 authentication header is longer than the packet",
                        ));
                    }
                    next = ip[at];
                    at += len;
                }
                44 => {
                    if ip.len() < at + 8 {
                        return Err(self.invalid(
                            ctx,
                            "decoder.ipv6.trunc_exthdr",
                            "ipv6 fragment header is truncated",
                        ));
                    }
                    let frag_next = ip[at];
                    let fo = be16(ip, at + 2);
                    let offset = (fo & 0xfff8) as u32;
                    let more = fo & 1 == 1;
                    if offset == 0 && !more {
                        // An atomic fragment: the header is useless but the packet is whole.
                        self.anomaly(
                            ctx,
                            "decoder.ipv6.exthdr_useless_fh",
                            "ipv6 fragment header on an unfragmented packet",
                        );
                        next = frag_next;
                        at += 8;
                        continue;
                    }
                    let payload = &ip[at + 8..];
                    if more && payload.len() & 7 != 0 {
                        return Err(self.invalid(
                            ctx,
                            "decoder.ipv6.frag_invalid_length",
                            "ipv6 fragment length is not a multiple of 8",
                        ));
                    }
                    let f = Fragment {
                        key: FragKey {
                            src,
                            dst,
                            id: be32(ip, at + 4),
                            proto: 0,
                            vlan: ctx.vlan,
                        },
                        offset,
                        more,
                        data: payload,
                        header: &ip[..at],
                        next_header: frag_next,
                        wire_overhead: Self::link_overhead(ctx, data),
                        link: Self::link_header(ctx, data),
                    };
                    return Err(self.fragment(ctx, &f));
                }
                _ => break,
            }
        }
        ctx.proto = next;
        let info = Ip {
            src,
            dst,
            ttl: data[7],
            v6: true,
        };
        self.transport(ctx, info, next, &ip[at..])
    }

    /// Bytes in front of the IP header `ip` in the frame, for the outermost layer (Suricata's
    /// reassembled packet is the first fragment's link header plus the datagram); 0 in tunnels,
    /// whose packets count from their IP header.
    fn link_overhead(ctx: &Ctx<'_>, ip: &[u8]) -> u32 {
        if ctx.count > 0 || ctx.frame_start == 0 {
            return 0;
        }
        (ip.as_ptr() as usize)
            .saturating_sub(ctx.frame_start)
            .min(u32::MAX as usize) as u32
    }

    /// The frame bytes in front of the IP header `ip` (see [`Self::link_overhead`]).
    fn link_header<'d>(ctx: &Ctx<'d>, ip: &[u8]) -> &'d [u8] {
        let n = Self::link_overhead(ctx, ip) as usize;
        ctx.frame.get(..n).unwrap_or_default()
    }

    fn fragment(&mut self, ctx: &Ctx<'_>, f: &Fragment<'_>) -> Stop {
        self.stats.fragments += 1;
        let anomalies = &mut self.anomalies;
        let mut raised = 0;
        let (src, dst, proto) = (ctx.src, ctx.dst, ctx.proto);
        let headers = FrameHeaders::read_ip(ctx.ip, ctx.vlan);
        let outcome = self.defrag.push(ctx.ts, f, &mut |event, reason| {
            raised += 1;
            if anomalies.len() < MAX_ANOMALIES_PER_FRAME {
                anomalies.push(DecodeAnomaly {
                    event,
                    reason,
                    src,
                    dst,
                    proto,
                    src_port: 0,
                    dst_port: 0,
                    headers,
                });
            }
        });
        self.stats.anomalies += raised;
        match outcome {
            DefragOutcome::Held | DefragOutcome::Dropped => Stop::Fragment,
            DefragOutcome::Complete { wire_overhead } => {
                if ctx.reassembled {
                    // Nested reassembly is not followed (see decode_reassembled).
                    Stop::Fragment
                } else {
                    Stop::Reassembled { wire_overhead }
                }
            }
        }
    }

    // ----- transport and tunnels ---------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn packet<'d>(
        ctx: &Ctx<'d>,
        ip: Ip,
        proto: u8,
        src_port: u16,
        dst_port: u16,
        transport: Transport,
        payload: &'d [u8],
    ) -> Packet<'d> {
        Packet {
            ts: ctx.ts,
            wire_len: ctx.wire_len,
            vlan: ctx.vlan,
            src: ip.src,
            dst: ip.dst,
            proto,
            src_port,
            dst_port,
            ttl: ip.ttl,
            transport,
            payload,
            reassembled: ctx.reassembled,
            tunnel_depth: ctx.count as u8,
            frame: ctx.frame,
        }
    }

    fn transport<'d>(&mut self, ctx: &mut Ctx<'d>, ip: Ip, proto: u8, data: &'d [u8]) -> Layer<'d> {
        match proto {
            IPPROTO_TCP => self.tcp(ctx, ip, data),
            IPPROTO_UDP => self.udp(ctx, ip, data),
            IPPROTO_ICMP if !ip.v6 => self.icmp(ctx, ip, proto, data),
            IPPROTO_ICMPV6 if ip.v6 => self.icmp(ctx, ip, proto, data),
            IPPROTO_ICMP => {
                self.anomaly(ctx, "decoder.ipv6.icmpv4", "icmpv4 carried in ipv6");
                Ok(Self::packet(ctx, ip, proto, 0, 0, Transport::Other, data))
            }
            IPPROTO_ICMPV6 => {
                self.anomaly(ctx, "decoder.ipv4.icmpv6", "icmpv6 carried in ipv4");
                Ok(Self::packet(ctx, ip, proto, 0, 0, Transport::Other, data))
            }
            IPPROTO_IPIP | IPPROTO_IPV6 => {
                let (kind, event_small) = match (ip.v6, proto) {
                    (false, IPPROTO_IPIP) => (TunnelKind::Ipv4InIpv4, "decoder.ipv4.pkt_too_small"),
                    (false, _) => (TunnelKind::Ipv6InIpv4, "decoder.ipv6.pkt_too_small"),
                    (true, IPPROTO_IPIP) => (
                        TunnelKind::Ipv4InIpv6,
                        "decoder.ipv6.ipv4_in_ipv6_too_small",
                    ),
                    (true, _) => (
                        TunnelKind::Ipv6InIpv6,
                        "decoder.ipv6.ipv6_in_ipv6_too_small",
                    ),
                };
                let outer = Self::packet(ctx, ip, proto, 0, 0, Transport::Other, data);
                let (min, version) = if proto == IPPROTO_IPIP {
                    (20, 4)
                } else {
                    (40, 6)
                };
                // Suricata checks the inner header before splitting the tunnel off; under IPv6 a
                // failed check makes the outer packet invalid too.
                let event_version = match kind {
                    TunnelKind::Ipv4InIpv6 => "decoder.ipv6.ipv4_in_ipv6_wrong_version",
                    TunnelKind::Ipv6InIpv6 => "decoder.ipv6.ipv6_in_ipv6_wrong_version",
                    _ => "",
                };
                if data.len() < min {
                    if ip.v6 {
                        return Err(self.invalid(
                            ctx,
                            event_small,
                            "tunnelled ip packet is too small",
                        ));
                    }
                    self.anomaly(ctx, event_small, "tunnelled ip packet is too small");
                    return Ok(outer);
                }
                if ip.v6 && data[0] >> 4 != version {
                    return Err(self.invalid(
                        ctx,
                        event_version,
                        "tunnelled ip packet has the wrong ip version",
                    ));
                }
                match kind {
                    TunnelKind::Ipv4InIpv4 => self.stats.ipv4_in_ipv4 += 1,
                    TunnelKind::Ipv6InIpv4 => self.stats.ipv6_in_ipv4 += 1,
                    TunnelKind::Ipv4InIpv6 => self.stats.ipv4_in_ipv6 += 1,
                    _ => self.stats.ipv6_in_ipv6 += 1,
                }
                if !self.enter_tunnel(ctx, outer, kind, data) {
                    return Err(Stop::Invalid);
                }
                if proto == IPPROTO_IPIP {
                    self.ipv4(ctx, data)
                } else {
                    self.ipv6(ctx, data)
                }
            }
            IPPROTO_GRE => self.gre(ctx, ip, data),
            IPPROTO_SCTP => {
                self.stats.sctp += 1;
                if data.len() < 12 {
                    return Err(self.invalid(
                        ctx,
                        "decoder.sctp.pkt_too_small",
                        "sctp header is truncated",
                    ));
                }
                Ok(Self::packet(
                    ctx,
                    ip,
                    proto,
                    be16(data, 0),
                    be16(data, 2),
                    Transport::Other,
                    &data[12..],
                ))
            }
            _ => Ok(Self::packet(ctx, ip, proto, 0, 0, Transport::Other, data)),
        }
    }

    /// Records `outer` as a finished layer and prepares `ctx` for the layer it carries, whose
    /// wire length is `inner_len` (the bytes Suricata's tunnel packet starts with). False (with an
    /// anomaly, the outer layer kept) when the frame has too many layers.
    fn enter_tunnel<'d>(
        &mut self,
        ctx: &mut Ctx<'d>,
        outer: Packet<'d>,
        kind: TunnelKind,
        inner: &'d [u8],
    ) -> bool {
        if ctx.count + 1 >= MAX_LAYERS {
            self.stats.too_many_layers += 1;
            self.anomaly(
                ctx,
                "decoder.too_many_layers",
                "more nested tunnels than MAX_LAYERS",
            );
            ctx.layers[ctx.count] = Some(outer);
            ctx.tunnels[ctx.count] = ctx.tunnel;
            ctx.count += 1;
            return false;
        }
        ctx.layers[ctx.count] = Some(outer);
        ctx.tunnels[ctx.count] = ctx.tunnel;
        ctx.count += 1;
        ctx.tunnel = Some(kind);
        ctx.wire_len = inner.len().min(u32::MAX as usize) as u32;
        ctx.frame = inner;
        true
    }

    fn tcp<'d>(&mut self, ctx: &mut Ctx<'d>, ip: Ip, data: &'d [u8]) -> Layer<'d> {
        self.stats.tcp += 1;
        if data.len() < 20 {
            return Err(self.invalid(
                ctx,
                "decoder.tcp.pkt_too_small",
                "tcp segment is shorter than 20 bytes",
            ));
        }
        let hlen = ((data[12] >> 4) as usize) * 4;
        if hlen < 20 {
            return Err(self.invalid(
                ctx,
                "decoder.tcp.hlen_too_small",
                "tcp header length is under 20 bytes",
            ));
        }
        if data.len() < hlen {
            return Err(self.invalid(
                ctx,
                "decoder.tcp.pkt_too_small",
                "tcp header is longer than the segment",
            ));
        }
        let mut header = TcpHeader {
            seq: be32(data, 4),
            ack: be32(data, 8),
            flags: data[13],
            window: be16(data, 14),
            wscale: None,
            tfo: false,
        };
        let opts = &data[20..hlen];
        let mut at = 0;
        while at < opts.len() {
            match opts[at] {
                0 => break,
                1 => at += 1,
                kind => {
                    if at + 1 >= opts.len()
                        || opts[at + 1] < 2
                        || at + opts[at + 1] as usize > opts.len()
                    {
                        self.anomaly(
                            ctx,
                            "decoder.tcp.opt_invalid_len",
                            "tcp option length is invalid",
                        );
                        break;
                    }
                    let len = opts[at + 1] as usize;
                    // TCP Fast Open: kind 34 (length 2 for a cookie request, else an even
                    // length of 4..=18), or the experimental kinds 253/254 with magic 0xF989
                    // (length 4 or 12), as Suricata's TCP_HAS_TFO.
                    let tfo = match kind {
                        34 => len == 2 || ((4..=18).contains(&len) && len & 1 == 0),
                        253 | 254 => {
                            matches!(len, 4 | 12) && opts[at + 2..at + 4] == [0xf9, 0x89]
                        }
                        _ => false,
                    };
                    if tfo {
                        if header.tfo {
                            self.anomaly(
                                ctx,
                                "decoder.tcp.opt_duplicate",
                                "tcp fast open option appears twice",
                            );
                        }
                        header.tfo = true;
                    } else if kind == 34 {
                        self.anomaly(
                            ctx,
                            "decoder.tcp.opt_invalid_len",
                            "tcp fast open option length is invalid",
                        );
                    }
                    if kind == 3 {
                        if len != 3 {
                            self.anomaly(
                                ctx,
                                "decoder.tcp.invalid_optlen",
                                "tcp window scale option is not 3 bytes",
                            );
                        } else if header.wscale.is_some() {
                            self.anomaly(
                                ctx,
                                "decoder.tcp.opt_duplicate",
                                "tcp window scale option appears twice",
                            );
                        } else {
                            header.wscale = Some(opts[at + 2]);
                        }
                    }
                    at += len;
                }
            }
        }
        Ok(Self::packet(
            ctx,
            ip,
            IPPROTO_TCP,
            be16(data, 0),
            be16(data, 2),
            Transport::Tcp(header),
            &data[hlen..],
        ))
    }

    fn udp<'d>(&mut self, ctx: &mut Ctx<'d>, ip: Ip, data: &'d [u8]) -> Layer<'d> {
        self.stats.udp += 1;
        if data.len() < 8 {
            return Err(self.invalid(
                ctx,
                "decoder.udp.hlen_too_small",
                "udp datagram is shorter than its 8-byte header",
            ));
        }
        let len = be16(data, 4) as usize;
        if data.len() < len {
            return Err(self.invalid(
                ctx,
                "decoder.udp.pkt_too_small",
                "udp length is longer than the ip payload",
            ));
        }
        if len < 8 {
            return Err(self.invalid(
                ctx,
                "decoder.udp.len_invalid",
                "udp length is under 8 bytes",
            ));
        }
        // An IP payload longer than the UDP length is accepted, the extra bytes ignored: Suricata
        // keeps such packets (the oracle's flows count them).
        let (sport, dport) = (be16(data, 0), be16(data, 2));
        let payload = &data[8..len];
        let packet = Self::packet(ctx, ip, IPPROTO_UDP, sport, dport, Transport::Udp, payload);
        if dport == PORT_VXLAN && payload.len() >= 8 + 14 && payload[0] & 0x08 != 0 {
            self.stats.vxlan += 1;
            // Suricata's VXLAN packet starts after the inner Ethernet header.
            if !self.enter_tunnel(ctx, packet, TunnelKind::Vxlan, &payload[8 + 14..]) {
                return Err(Stop::Invalid);
            }
            return self.tunnelled_ethernet(ctx, &payload[8..]);
        }
        if dport == PORT_GENEVE && payload.len() >= 8 && payload[0] >> 6 == 0 {
            let opt_len = (payload[0] & 0x3f) as usize * 4;
            let proto = be16(payload, 2);
            if payload.len() >= 8 + opt_len
                && matches!(proto, ETHERTYPE_TEB | ETHERTYPE_IPV4 | ETHERTYPE_IPV6)
            {
                self.stats.geneve += 1;
                if !self.enter_tunnel(ctx, packet, TunnelKind::Geneve, &payload[8 + opt_len..]) {
                    return Err(Stop::Invalid);
                }
                let inner = &payload[8 + opt_len..];
                return if proto == ETHERTYPE_TEB {
                    self.tunnelled_ethernet(ctx, inner)
                } else {
                    self.ethertype(ctx, proto, inner)
                };
            }
        }
        if sport == PORT_TEREDO || dport == PORT_TEREDO {
            if let Some(inner) = teredo_inner(payload) {
                self.stats.teredo += 1;
                if !self.enter_tunnel(ctx, packet, TunnelKind::Teredo, inner) {
                    return Err(Stop::Invalid);
                }
                return self.ipv6(ctx, inner);
            }
        }
        Ok(packet)
    }

    /// An Ethernet frame inside a tunnel: VLAN tags accumulate with the outer ones.
    fn tunnelled_ethernet<'d>(&mut self, ctx: &mut Ctx<'d>, data: &'d [u8]) -> Layer<'d> {
        self.ethernet(ctx, data)
    }

    fn icmp<'d>(&mut self, ctx: &mut Ctx<'d>, ip: Ip, proto: u8, data: &'d [u8]) -> Layer<'d> {
        if proto == IPPROTO_ICMP {
            self.stats.icmpv4 += 1;
            if data.len() < 8 {
                return Err(self.invalid(
                    ctx,
                    "decoder.icmpv4.pkt_too_small",
                    "icmp message is shorter than 8 bytes",
                ));
            }
        } else {
            self.stats.icmpv6 += 1;
            if data.len() < 8 {
                return Err(self.invalid(
                    ctx,
                    "decoder.icmpv6.pkt_too_small",
                    "icmpv6 message is shorter than 8 bytes",
                ));
            }
        }
        let transport = Transport::Icmp {
            icmp_type: data[0],
            icmp_code: data[1],
        };
        Ok(Self::packet(ctx, ip, proto, 0, 0, transport, &data[8..]))
    }

    fn gre<'d>(&mut self, ctx: &mut Ctx<'d>, ip: Ip, data: &'d [u8]) -> Layer<'d> {
        self.stats.gre += 1;
        let outer = Self::packet(ctx, ip, IPPROTO_GRE, 0, 0, Transport::Other, data);
        if data.len() < 4 {
            self.anomaly(ctx, "decoder.gre.pkt_too_small", "gre header is truncated");
            return Ok(outer);
        }
        let flags = be16(data, 0);
        let version = flags & 0x7;
        let proto = be16(data, 2);
        let mut at = 4;
        let (inner_kind, inner): (u16, &'d [u8]) = match version {
            0 => {
                if flags & 0x4000 != 0 {
                    // Source routing (RFC 1701): not followed.
                    self.anomaly(
                        ctx,
                        "decoder.gre.version0_recur",
                        "gre source routing is not supported",
                    );
                    return Ok(outer);
                }
                if flags & 0x8000 != 0 {
                    at += 4;
                }
                if flags & 0x2000 != 0 {
                    at += 4;
                }
                let seq = flags & 0x1000 != 0;
                if seq {
                    at += 4;
                }
                if data.len() < at {
                    self.anomaly(
                        ctx,
                        "decoder.gre.version0_hdr_too_big",
                        "gre header is longer than the packet",
                    );
                    return Ok(outer);
                }
                let rest = &data[at..];
                match proto {
                    ETHERTYPE_ERSPAN_II => {
                        self.stats.erspan += 1;
                        // Type I has no sequence number and no ERSPAN header.
                        if !seq {
                            (ETHERTYPE_TEB, rest)
                        } else if rest.len() < 8 {
                            self.anomaly(
                                ctx,
                                "decoder.erspan.header_too_small",
                                "erspan type ii header is truncated",
                            );
                            return Ok(outer);
                        } else {
                            (ETHERTYPE_TEB, &rest[8..])
                        }
                    }
                    ETHERTYPE_ERSPAN_III => {
                        self.stats.erspan += 1;
                        if rest.len() < 12 {
                            self.anomaly(
                                ctx,
                                "decoder.erspan.header_too_small",
                                "erspan type iii header is truncated",
                            );
                            return Ok(outer);
                        }
                        // The O flag announces an 8-byte platform-specific subheader.
                        let skip = if rest[11] & 0x01 != 0 { 20 } else { 12 };
                        if rest.len() < skip {
                            self.anomaly(
                                ctx,
                                "decoder.erspan.header_too_small",
                                "erspan type iii subheader is truncated",
                            );
                            return Ok(outer);
                        }
                        (ETHERTYPE_TEB, &rest[skip..])
                    }
                    _ => (proto, rest),
                }
            }
            1 => {
                // Enhanced GRE (PPTP): key present, PPP payload.
                if proto != ETHERTYPE_PPP {
                    self.anomaly(
                        ctx,
                        "decoder.gre.version1_wrong_protocol",
                        "gre version 1 does not carry ppp",
                    );
                    return Ok(outer);
                }
                if flags & 0x2000 == 0 {
                    self.anomaly(
                        ctx,
                        "decoder.gre.version1_no_key",
                        "gre version 1 has no key",
                    );
                    return Ok(outer);
                }
                at += 4;
                if flags & 0x1000 != 0 {
                    at += 4;
                }
                if flags & 0x0080 != 0 {
                    at += 4;
                }
                if data.len() < at {
                    self.anomaly(
                        ctx,
                        "decoder.gre.version1_hdr_too_big",
                        "gre header is longer than the packet",
                    );
                    return Ok(outer);
                }
                (ETHERTYPE_PPP, &data[at..])
            }
            _ => {
                self.anomaly(
                    ctx,
                    "decoder.gre.wrong_version",
                    "gre version is neither 0 nor 1",
                );
                return Ok(outer);
            }
        };
        if inner.is_empty() {
            // PPTP acknowledgements carry no payload.
            return Ok(outer);
        }
        let kind = if matches!(proto, ETHERTYPE_ERSPAN_II | ETHERTYPE_ERSPAN_III) {
            TunnelKind::Erspan
        } else {
            TunnelKind::Gre
        };
        // Suricata's GRE tunnel packet starts right after the GRE header (ERSPAN header included).
        let gre_payload = data.get(at..).unwrap_or_default();
        match inner_kind {
            ETHERTYPE_IPV4 | ETHERTYPE_IPV6 | ETHERTYPE_TEB | ETHERTYPE_PPP | ETHERTYPE_MPLS
            | ETHERTYPE_VLAN => {}
            _ => return Ok(outer),
        }
        if !self.enter_tunnel(ctx, outer, kind, gre_payload) {
            return Err(Stop::Invalid);
        }
        match inner_kind {
            ETHERTYPE_TEB => self.tunnelled_ethernet(ctx, inner),
            ETHERTYPE_PPP => {
                self.stats.ppp += 1;
                self.ppp(ctx, inner)
            }
            other => self.ethertype(ctx, other, inner),
        }
    }
}

/// The IPv6 packet in a Teredo datagram, if it looks like one: optional origin indication,
/// then an IPv6 header whose payload length matches the datagram exactly.
fn teredo_inner(payload: &[u8]) -> Option<&[u8]> {
    let mut p = payload;
    if p.len() >= 8 && p[0] == 0 && p[1] == 0 {
        p = &p[8..];
    }
    if p.len() < 40 || p[0] >> 4 != 6 {
        return None;
    }
    if 40 + be16(p, 4) as usize != p.len() {
        return None;
    }
    Some(p)
}

#[cfg(test)]
mod tests;
