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
