//! Frame construction: the two endpoints of a flow and the Ethernet/VLAN/IP/transport headers
//! around a payload. All checksums and lengths come from etherparse's `PacketBuilder`; only IPv4
//! fragments and the deliberately malformed packets are assembled by hand.

use etherparse::{IpHeaders, PacketBuilder, PacketBuilderStep, TcpOptionElement, VlanId};

use super::GenError;

/// Addresses of both sides of a flow; both sides always share one IP family.
#[derive(Debug, Clone, Copy)]
pub enum Addrs {
    V4 { client: [u8; 4], server: [u8; 4] },
    V6 { client: [u8; 16], server: [u8; 16] },
}

/// Who is talking: the flow's client (the office host) or its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// Layer-2/3/4 identity of a flow.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub client_mac: [u8; 6],
    pub server_mac: [u8; 6],
    pub addrs: Addrs,
    pub client_port: u16,
    pub server_port: u16,
    pub vlan: Option<VlanId>,
    pub client_ttl: u8,
    pub server_ttl: u8,
}

/// TCP header fields of one segment.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpFlags {
    pub syn: bool,
    pub ack: bool,
    pub psh: bool,
    pub fin: bool,
    pub rst: bool,
}

impl Endpoints {
    pub fn is_v6(&self) -> bool {
        matches!(self.addrs, Addrs::V6 { .. })
    }

    /// Ethernet (+VLAN) + IP headers for a packet sent by `from`.
    fn ip_step(&self, from: Side) -> PacketBuilderStep<IpHeaders> {
        let (smac, dmac, ttl) = match from {
            Side::Client => (self.client_mac, self.server_mac, self.client_ttl),
            Side::Server => (self.server_mac, self.client_mac, self.server_ttl),
        };
        let eth = PacketBuilder::ethernet2(smac, dmac);
        match (self.vlan, self.addrs, from) {
            (Some(v), Addrs::V4 { client, server }, Side::Client) => eth.single_vlan(v).ipv4(client, server, ttl),
            (Some(v), Addrs::V4 { client, server }, Side::Server) => eth.single_vlan(v).ipv4(server, client, ttl),
            (Some(v), Addrs::V6 { client, server }, Side::Client) => eth.single_vlan(v).ipv6(client, server, ttl),
            (Some(v), Addrs::V6 { client, server }, Side::Server) => eth.single_vlan(v).ipv6(server, client, ttl),
            (None, Addrs::V4 { client, server }, Side::Client) => eth.ipv4(client, server, ttl),
            (None, Addrs::V4 { client, server }, Side::Server) => eth.ipv4(server, client, ttl),
            (None, Addrs::V6 { client, server }, Side::Client) => eth.ipv6(client, server, ttl),
            (None, Addrs::V6 { client, server }, Side::Server) => eth.ipv6(server, client, ttl),
        }
    }

    fn ports(&self, from: Side) -> (u16, u16) {
        match from {
            Side::Client => (self.client_port, self.server_port),
            Side::Server => (self.server_port, self.client_port),
        }
    }

    /// Writes a TCP segment into `out` (cleared first).
    #[allow(clippy::too_many_arguments)]
    pub fn tcp(
        &self,
        out: &mut Vec<u8>,
        from: Side,
        seq: u32,
        ack: u32,
        window: u16,
        flags: TcpFlags,
        options: &[TcpOptionElement],
        payload: &[u8],
    ) -> Result<(), GenError> {
        let (sp, dp) = self.ports(from);
        let mut b = self.ip_step(from).tcp(sp, dp, seq, window);
        if flags.syn {
            b = b.syn();
        }
        if flags.ack {
            b = b.ack(ack);
        }
        if flags.psh {
            b = b.psh();
        }
        if flags.fin {
            b = b.fin();
        }
        if flags.rst {
            b = b.rst();
        }
        if !options.is_empty() {
            b = b.options(options).map_err(|e| GenError::Build(e.to_string()))?;
        }
        out.clear();
        b.write(out, payload).map_err(|e| GenError::Build(e.to_string()))
    }

    /// Writes a UDP datagram into `out` (cleared first).
    pub fn udp(&self, out: &mut Vec<u8>, from: Side, payload: &[u8]) -> Result<(), GenError> {
        let (sp, dp) = self.ports(from);
        out.clear();
        self.ip_step(from).udp(sp, dp).write(out, payload).map_err(|e| GenError::Build(e.to_string()))
    }

    /// Writes an ICMP echo request (client) or reply (server), v4 or v6 by the flow's family.
    pub fn echo(&self, out: &mut Vec<u8>, from: Side, id: u16, seq: u16, payload: &[u8]) -> Result<(), GenError> {
        let step = self.ip_step(from);
        out.clear();
        let r = match (self.is_v6(), from) {
            (false, Side::Client) => step.icmpv4_echo_request(id, seq).write(out, payload),
            (false, Side::Server) => step.icmpv4_echo_reply(id, seq).write(out, payload),
            (true, Side::Client) => step.icmpv6_echo_request(id, seq).write(out, payload),
            (true, Side::Server) => step.icmpv6_echo_reply(id, seq).write(out, payload),
        };
        r.map_err(|e| GenError::Build(e.to_string()))
    }

    /// Writes an ICMPv4/v6 destination-unreachable (port unreachable) from the server side,
    /// quoting `quoted` (the offending packet's IP header and first bytes).
    pub fn port_unreachable(&self, out: &mut Vec<u8>, quoted: &[u8]) -> Result<(), GenError> {
        let step = self.ip_step(Side::Server);
        out.clear();
        let r = if self.is_v6() {
            step.icmpv6(etherparse::Icmpv6Type::DestinationUnreachable(
                etherparse::icmpv6::DestUnreachableCode::Port,
            ))
            .write(out, quoted)
        } else {
            step.icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::Port,
            ))
            .write(out, quoted)
        };
        r.map_err(|e| GenError::Build(e.to_string()))
    }

    /// Length of the link-layer header (Ethernet, plus 4 with a VLAN tag).
    pub fn l2_len(&self) -> usize {
        if self.vlan.is_some() {
            18
        } else {
            14
        }
    }
}

/// Internet checksum of an IPv4 header (checksum field must be zero or is skipped by caller).
pub fn ipv4_header_checksum(header: &[u8]) -> u16 {
    let mut sum = 0u32;
    for (i, pair) in header.chunks(2).enumerate() {
        if i == 5 {
            continue; // the checksum field itself
        }
        let word = (u32::from(pair[0]) << 8) | u32::from(*pair.get(1).unwrap_or(&0));
        sum += word;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Splits a complete, unfragmented IPv4 frame (`frame`, link header `l2` bytes long, IHL 5)
/// into fragments whose IP payload is at most `max_payload` bytes (rounded down to 8).
/// Each fragment gets `ident`, correct offsets, MF flags, total length and header checksum.
pub fn fragment_ipv4(frame: &[u8], l2: usize, ident: u16, max_payload: usize) -> Vec<Vec<u8>> {
    let ip = &frame[l2..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let payload = &ip[ihl..];
    let step = (max_payload / 8).max(1) * 8;
    let mut out = Vec::with_capacity(payload.len() / step + 1);
    let mut off = 0usize;
    while off < payload.len() {
        let end = (off + step).min(payload.len());
        let more = end < payload.len();
        let mut f = Vec::with_capacity(l2 + ihl + end - off);
        f.extend_from_slice(&frame[..l2]);
        f.extend_from_slice(&ip[..ihl]);
        let h = &mut f[l2..l2 + ihl];
        let total = (ihl + end - off) as u16;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[4..6].copy_from_slice(&ident.to_be_bytes());
        let frag = ((off / 8) as u16) | if more { 0x2000 } else { 0 };
        h[6..8].copy_from_slice(&frag.to_be_bytes());
        h[10] = 0;
        h[11] = 0;
        let c = ipv4_header_checksum(h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&payload[off..end]);
        out.push(f);
        off = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    fn ep(v6: bool, vlan: bool) -> Endpoints {
        Endpoints {
            client_mac: [2, 0, 0, 0, 0, 1],
            server_mac: [0, 0x1b, 0x21, 0, 0, 1],
            addrs: if v6 {
                Addrs::V6 { client: [0xfd; 16], server: [0x26; 16] }
            } else {
                Addrs::V4 { client: [10, 20, 0, 5], server: [93, 184, 216, 34] }
            },
            client_port: 50_000,
            server_port: 80,
            vlan: if vlan { Some(VlanId::try_new(20).unwrap()) } else { None },
            client_ttl: 128,
            server_ttl: 52,
        }
    }

    #[test]
    fn tcp_frames_parse_back_with_right_ports_and_flags() {
        for (v6, vlan) in [(false, false), (true, false), (false, true), (true, true)] {
            let e = ep(v6, vlan);
            let mut out = Vec::new();
            let f = TcpFlags { ack: true, psh: true, ..Default::default() };
            e.tcp(&mut out, Side::Server, 1000, 2000, 500, f, &[], b"hello").unwrap();
            let p = SlicedPacket::from_ethernet(&out).unwrap();
            assert_eq!(p.vlan.is_some(), vlan);
            match p.net {
                Some(NetSlice::Ipv4(_)) => assert!(!v6),
                Some(NetSlice::Ipv6(_)) => assert!(v6),
                _ => panic!("no ip"),
            }
            match p.transport {
                Some(TransportSlice::Tcp(t)) => {
                    assert_eq!((t.source_port(), t.destination_port()), (80, 50_000));
                    assert!(t.psh() && t.ack() && !t.syn());
                    assert_eq!(t.acknowledgment_number(), 2000);
                    assert_eq!(t.payload(), b"hello");
                }
                _ => panic!("no tcp"),
            }
        }
    }

    #[test]
    fn fragments_have_consistent_offsets_and_checksums() {
        let e = ep(false, true);
        let mut out = Vec::new();
        let payload = vec![7u8; 4000];
        e.udp(&mut out, Side::Server, &payload).unwrap();
        let frags = fragment_ipv4(&out, e.l2_len(), 0x1234, 1480);
        assert_eq!(frags.len(), 3);
        let mut reassembled = Vec::new();
        for (i, f) in frags.iter().enumerate() {
            let ip = &f[18..];
            let h = etherparse::Ipv4HeaderSlice::from_slice(ip).unwrap();
            assert_eq!(h.identification(), 0x1234);
            assert_eq!(h.more_fragments(), i + 1 < frags.len());
            assert_eq!(usize::from(h.fragments_offset().value()) * 8, reassembled.len());
            assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
            assert_eq!(usize::from(h.total_len()), ip.len());
            reassembled.extend_from_slice(&ip[20..]);
        }
        assert_eq!(reassembled.len(), 8 + 4000);
        assert_eq!(&reassembled[..], &out[18 + 20..]);
    }
}
