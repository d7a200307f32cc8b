//! What the sensor hands the engine: one packet ([`PacketInput`]) and, when an app-layer parser
//! finished a unit, the transaction's buffers ([`HttpInput`], [`DnsInput`], [`TlsInput`]).
//!
//! Everything borrows from the sensor's own buffers (lists are slices, so the sensor can reuse
//! its vectors); nothing is copied. A buffer the parser did
//! not see is `None` (a rule needing it does not match). Suricata's buffer definitions apply:
//! `uri` is the normalised URI, `uri_raw` as on the wire; `*_header` is the normalised
//! `Name: value\r\n` lines without `Cookie`/`Set-Cookie`; `*_header_raw` the header block as on
//! the wire; `*_header_names` is `\r\nName1\r\nName2\r\n\r\n`; `request_line` without CRLF.

use std::net::{IpAddr, Ipv4Addr};

use ward_model::Timestamp;

/// TCP header fields used by `flags`, `seq`, `ack`, `window`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpHeader {
    /// FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20, ECE 0x40, CWR 0x80.
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
}

/// ICMP header fields used by `itype`, `icode`, `icmp_id`, `icmp_seq`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IcmpHeader {
    pub itype: u8,
    pub icode: u8,
    /// Echo identifier and sequence (0 for other messages).
    pub id: u16,
    pub seq: u16,
}

/// One packet, with its flow context. For app-layer calls, the packet that completed the unit.
#[derive(Debug, Clone, Copy)]
pub struct PacketInput<'a> {
    pub ts: Timestamp,
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    /// IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...).
    pub ip_proto: u8,
    pub ttl: u8,
    pub ip_id: u16,
    /// Fragment bits: 0x1 more fragments, 0x2 don't fragment, 0x4 reserved.
    pub frag_bits: u8,
    pub tcp: Option<TcpHeader>,
    pub icmp: Option<IcmpHeader>,
    /// The packet's L4 payload.
    pub payload: &'a [u8],
    /// The reassembled stream data of this direction up to and including this packet, when the
    /// sensor reassembles. TCP payload rules inspect it instead of `payload` (as Suricata's
    /// stream inspection does) unless the rule is `tcp-pkt` or `flow:no_stream`; rules with
    /// `flow:only_stream` or `tcp-stream` do not match when it is `None`.
    pub stream: Option<&'a [u8]>,
    /// Direction of this packet in its flow (the flow's initiator is the client).
    pub to_server: bool,
    /// The TCP handshake completed (for UDP: packets were seen both ways).
    pub flow_established: bool,
    pub flow_id: u64,
    /// The flow's app-layer protocol once detected (`http`, `tls`, `dns`, `smb`, ...).
    pub app_proto: Option<&'a str>,
    /// Bytes seen so far per direction (for `stream_size`).
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
}

impl<'a> PacketInput<'a> {
    /// A packet with everything else zero/empty: a starting point for the sensor and for tests.
    pub fn new(ts: Timestamp, src_ip: IpAddr, src_port: u16, dst_ip: IpAddr, dst_port: u16, ip_proto: u8) -> Self {
        PacketInput {
            ts,
            src_ip,
            dst_ip,
            src_port,
            dst_port,
            ip_proto,
            ttl: 64,
            ip_id: 0,
            frag_bits: 0,
            tcp: None,
            icmp: None,
            payload: &[],
            stream: None,
            to_server: true,
            flow_established: false,
            flow_id: 0,
            app_proto: None,
            bytes_toserver: 0,
            bytes_toclient: 0,
        }
    }

    /// A placeholder packet for unit tests (0.0.0.0 → 0.0.0.0, TCP).
    pub fn empty() -> PacketInput<'static> {
        let z = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        PacketInput::new(Timestamp::ZERO, z, 0, z, 0, 6)
    }
}

/// One HTTP transaction's buffers. For the request call only the request fields need to be
/// set; for the response call set both (rules mixing `http.uri` and `http.stat_code` match then).
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpInput<'a> {
    /// Transaction number within the flow (each rule alerts at most once per transaction).
    pub tx_id: u64,
    pub method: Option<&'a [u8]>,
    pub uri: Option<&'a [u8]>,
    pub uri_raw: Option<&'a [u8]>,
    /// Host name, lower-cased, without port (`http.host`, as libhtp normalises it).
    pub host: Option<&'a [u8]>,
    /// Host header value as sent (`http.host.raw`).
    pub host_raw: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
    pub cookie: Option<&'a [u8]>,
    pub referer: Option<&'a [u8]>,
    pub accept: Option<&'a [u8]>,
    pub accept_enc: Option<&'a [u8]>,
    pub accept_lang: Option<&'a [u8]>,
    pub request_line: Option<&'a [u8]>,
    pub request_body: Option<&'a [u8]>,
    pub request_header: Option<&'a [u8]>,
    pub request_header_raw: Option<&'a [u8]>,
    pub request_header_names: Option<&'a [u8]>,
    pub request_content_type: Option<&'a [u8]>,
    pub request_content_len: Option<&'a [u8]>,
    pub request_connection: Option<&'a [u8]>,
    /// `HTTP/1.1` as in the request line.
    pub request_protocol: Option<&'a [u8]>,
    /// Request line + CRLF + raw headers + CRLF (`http.start`).
    pub request_start: Option<&'a [u8]>,
    pub stat_code: Option<&'a [u8]>,
    pub stat_msg: Option<&'a [u8]>,
    pub response_line: Option<&'a [u8]>,
    /// The (dechunked, decompressed when the sensor does so) response body.
    pub response_body: Option<&'a [u8]>,
    pub server: Option<&'a [u8]>,
    pub location: Option<&'a [u8]>,
    pub response_header: Option<&'a [u8]>,
    pub response_header_raw: Option<&'a [u8]>,
    pub response_header_names: Option<&'a [u8]>,
    pub response_content_type: Option<&'a [u8]>,
    pub response_content_len: Option<&'a [u8]>,
    pub response_connection: Option<&'a [u8]>,
    pub response_protocol: Option<&'a [u8]>,
    pub response_start: Option<&'a [u8]>,
}

/// One DNS message's buffers.
#[derive(Debug, Clone, Copy, Default)]
pub struct DnsInput<'a> {
    /// Transaction id of the message (alerts are deduplicated per id within a flow).
    pub tx_id: u64,
    /// Query names, dot-separated, without the trailing dot (as `dns.query` sees them).
    pub queries: &'a [&'a [u8]],
    /// Answer names and values that are names (CNAME targets...): matched by indicators only.
    pub answers: &'a [&'a [u8]],
    /// Answer addresses (A/AAAA): matched by indicators only.
    pub answer_ips: &'a [IpAddr],
    pub opcode: u8,
}

/// One TLS handshake's buffers (fill what has been seen so far; call once per direction).
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsInput<'a> {
    pub sni: Option<&'a [u8]>,
    /// Certificates (DER) of the server's chain, leaf first.
    pub certs: &'a [&'a [u8]],
    /// Leaf certificate subject and issuer as Suricata prints them (`CN=..., O=...`).
    pub cert_subject: Option<&'a [u8]>,
    pub cert_issuer: Option<&'a [u8]>,
    /// Serial as upper-case hex bytes separated by `:`.
    pub cert_serial: Option<&'a [u8]>,
    /// SHA-1 of the leaf, lower-case hex separated by `:`.
    pub cert_fingerprint: Option<&'a [u8]>,
    pub ja3_hash: Option<&'a [u8]>,
    pub ja3_string: Option<&'a [u8]>,
    pub ja3s_hash: Option<&'a [u8]>,
    pub ja3s_string: Option<&'a [u8]>,
    pub ja4_hash: Option<&'a [u8]>,
    /// Negotiated (or offered, before the server hello) version, wire value (0x0303 = TLS 1.2).
    pub version: Option<u16>,
}
