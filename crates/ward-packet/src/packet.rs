//! The decoded packet: what every stage after decoding sees.
//!
//! A [`Packet`] borrows its payload either from the captured frame or, for a reassembled IP
//! fragment train, from the decoder's reassembly buffer; it lives until the next call to the
//! decoder.

use std::net::IpAddr;

use ward_model::Timestamp;

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMPV6: u8 = 58;

/// TCP header flag bits, as in the header's 13th byte.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// The transport header of a decoded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp(TcpHeader),
    Udp,
    Icmp { icmp_type: u8, icmp_code: u8 },
    /// Any other IP protocol (GRE that was not decapsulated, SCTP, ESP, ...).
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpHeader {
    pub seq: u32,
    pub ack: u32,
    /// See [`tcp_flags`].
    pub flags: u8,
    pub window: u16,
    /// Window scale option, when present (only meaningful on SYN).
    pub wscale: Option<u8>,
    /// A TCP Fast Open option (kind 34, or the experimental kind 253/254 with magic 0xF989) is
    /// present: data on a SYN carrying it is part of the stream (RFC 7413).
    pub tfo: bool,
}

/// A decoded IP packet.
#[derive(Debug, Clone)]
pub struct Packet<'a> {
    pub ts: Timestamp,
    /// Bytes EVE flow counters count for this packet: the captured frame's length for the
    /// outermost layer (Suricata counts captured, not original, bytes), and for a tunnelled layer
    /// the bytes from where Suricata starts its tunnel packet.
    pub wire_len: u32,
    /// Outer and inner 802.1Q tags (0 = absent), outermost first.
    pub vlan: [u16; 2],
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol number of the transport (after extension headers).
    pub proto: u8,
    /// TCP/UDP ports; 0 for protocols without ports.
    pub src_port: u16,
    pub dst_port: u16,
    pub ttl: u8,
    pub transport: Transport,
    /// The transport payload (TCP/UDP data, ICMP body).
    pub payload: &'a [u8],
    /// True when this packet was rebuilt from IP fragments.
    pub reassembled: bool,
    /// How many tunnels this packet is inside (0 for the frame's outer IP packet): Suricata's
    /// `recursion_level`, part of the flow key, so a connection seen both on the wire and inside
    /// a tunnel makes two flows.
    pub tunnel_depth: u8,
    /// The bytes Suricata logs as this packet (EVE alert `packet`): the whole captured frame for
    /// the outermost layer; for a datagram rebuilt from fragments, the first fragment's link
    /// header followed by the datagram; for a tunnelled layer, the tunnel's payload from where
    /// Suricata starts its tunnel packet.
    pub frame: &'a [u8],
}

impl Packet<'_> {
    pub fn ip_version(&self) -> u8 {
        if self.src.is_ipv4() {
            4
        } else {
            6
        }
    }

    pub fn tcp(&self) -> Option<&TcpHeader> {
        match &self.transport {
            Transport::Tcp(h) => Some(h),
            _ => None,
        }
    }
}

/// The header fields of a frame as far as its captured bytes go, whether or not it decoded into
/// a [`Packet`]: what `--filter` judges a frame by when decoding failed (a truncated or malformed
/// frame, which raises an anomaly and yields no packet), as a BPF filter reads the header bytes
/// where they are. Fields of the innermost IP layer reached; `None` where the bytes were not
/// there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameHeaders {
    /// Outer and inner 802.1Q tags (0 = absent), as [`Packet::vlan`].
    pub vlan: [u16; 2],
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    /// The IP header's protocol (IPv6: its next header).
    pub proto: Option<u8>,
    /// Source and destination port, when the transport header's first four bytes were captured
    /// (TCP, UDP and SCTP only; never for a non-first fragment).
    pub ports: Option<(u16, u16)>,
}

impl FrameHeaders {
    /// The fields of an IP header at the start of `ip` (IPv4 or IPv6, by its version nibble)
    /// and of the transport header behind it, as far as the bytes go.
    pub fn read_ip(ip: &[u8], vlan: [u16; 2]) -> FrameHeaders {
        const IPPROTO_SCTP: u8 = 132;
        let mut h = FrameHeaders { vlan, ..FrameHeaders::default() };
        let (proto, transport_at) = match ip.first().map(|b| b >> 4) {
            Some(4) if ip.len() >= 20 => {
                h.src = Some(IpAddr::from([ip[12], ip[13], ip[14], ip[15]]));
                h.dst = Some(IpAddr::from([ip[16], ip[17], ip[18], ip[19]]));
                let first_fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff == 0;
                (ip[9], first_fragment.then_some(usize::from(ip[0] & 0x0f) * 4))
            }
            Some(6) if ip.len() >= 40 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(&ip[8..24]);
                h.src = Some(IpAddr::from(a));
                a.copy_from_slice(&ip[24..40]);
                h.dst = Some(IpAddr::from(a));
                (ip[6], Some(40))
            }
            _ => return h,
        };
        h.proto = Some(proto);
        if let Some(at) = transport_at.filter(|_| matches!(proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP)) {
            if let Some(p) = ip.get(at..at + 4) {
                h.ports = Some((u16::from_be_bytes([p[0], p[1]]), u16::from_be_bytes([p[2], p[3]])));
            }
        }
        h
    }
}
