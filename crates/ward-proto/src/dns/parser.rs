//! DNS message parsing (RFC 1035 and successors), lax like Suricata's: the header and questions
//! must be well formed, a bad additional or authority section is dropped and flagged, and odd
//! names (pointer loops, too many labels, too long) are cut short and flagged instead of failing.
//!
//! Invariants: never reads outside the message; a compression pointer chain is followed at most
//! [`MAX_POINTERS`] times; a rendered name holds at most [`MAX_NAME_LEN`] bytes and
//! [`MAX_LABELS`] labels. Section vectors are never pre-sized from the (untrusted) header counts.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::ProtoError;

/// Fixed size of the DNS header.
pub const HEADER_LEN: usize = 12;
/// Longest name we keep, in bytes of its dotted text. RFC 1035 caps names at 255 octets; Suricata
/// keeps up to 1025 so that odd names are still logged, and so do we. Longer names are truncated.
pub const MAX_NAME_LEN: usize = 1025;
/// Most labels we follow in one name (a 255-octet name has at most 127 labels; beyond that the
/// name is hostile). Further labels are dropped and the name flagged.
pub const MAX_LABELS: usize = 255;
/// Most compression pointers followed in one name; more means a loop or a hostile chain.
pub const MAX_POINTERS: usize = 255;
/// Most records kept per section; a message cannot hold more than 65535 / 11 anyway, this bounds
/// memory for messages whose counts lie.
pub const MAX_RECORDS_PER_SECTION: usize = 4096;

pub const FLAG_QR: u16 = 0x8000;
pub const FLAG_AA: u16 = 0x0400;
pub const FLAG_TC: u16 = 0x0200;
pub const FLAG_RD: u16 = 0x0100;
pub const FLAG_RA: u16 = 0x0080;
pub const FLAG_Z: u16 = 0x0040;

pub const TYPE_A: u16 = 1;
pub const TYPE_NS: u16 = 2;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_MX: u16 = 15;
pub const TYPE_TXT: u16 = 16;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SRV: u16 = 33;
pub const TYPE_OPT: u16 = 41;
pub const TYPE_SSHFP: u16 = 44;

/// The 12-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsHeader {
    pub id: u16,
    pub flags: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl DnsHeader {
    pub fn is_response(&self) -> bool {
        self.flags & FLAG_QR != 0
    }
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0x0f) as u8
    }
    pub fn rcode(&self) -> u8 {
        (self.flags & 0x000f) as u8
    }
}

/// Oddities found while decoding a name; the name is still returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NameFlags {
    /// Longer than [`MAX_NAME_LEN`]; the text was cut.
    pub truncated: bool,
    /// More than [`MAX_POINTERS`] compression pointers (a loop).
    pub infinite_loop: bool,
    /// More than [`MAX_LABELS`] labels.
    pub too_many_labels: bool,
}

impl NameFlags {
    pub fn any(&self) -> bool {
        self.truncated || self.infinite_loop || self.too_many_labels
    }
}

/// A decoded name: the labels joined with `.` as raw bytes (empty for the root).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsName {
    pub value: Vec<u8>,
    pub flags: NameFlags,
}

impl DnsName {
    /// The name as Suricata prints it: printable ASCII, other bytes as `\xNN`.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(self.value.len());
        crate::push_printable(&mut out, &self.value);
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsQuestion {
    pub name: DnsName,
    pub rrtype: u16,
    pub rrclass: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSoa {
    pub mname: DnsName,
    pub rname: DnsName,
    pub serial: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSrv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: DnsName,
}

/// The data of one resource record, decoded for the types Suricata logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsRData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// CNAME, NS, PTR: one name.
    Name(DnsName),
    Mx {
        preference: u16,
        exchange: DnsName,
    },
    /// TXT (and SPF): the character strings.
    Txt(Vec<Vec<u8>>),
    Soa(DnsSoa),
    Srv(DnsSrv),
    Sshfp {
        algorithm: u8,
        fp_type: u8,
        fingerprint: Vec<u8>,
    },
    /// OPT pseudo-record options: (code, data).
    Opt(Vec<(u16, Vec<u8>)>),
    /// Any other type, or a known type whose data did not decode: the raw bytes.
    Other(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    pub name: DnsName,
    pub rrtype: u16,
    pub rrclass: u16,
    pub ttl: u32,
    pub rdata: DnsRData,
}

/// One parsed message. `invalid_authorities` / `invalid_additionals` say a section failed to
/// parse and was dropped (Suricata's `invalid_authorities` / `invalid_additionals` events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsMessage {
    pub header: DnsHeader,
    pub queries: Vec<DnsQuestion>,
    pub answers: Vec<DnsRecord>,
    pub authorities: Vec<DnsRecord>,
    pub additionals: Vec<DnsRecord>,
    pub invalid_authorities: bool,
    pub invalid_additionals: bool,
}

impl DnsMessage {
    /// True if any name in the message was cut or looped.
    pub fn name_flags(&self) -> NameFlags {
        let mut f = NameFlags::default();
        let mut add = |n: &DnsName| {
            f.truncated |= n.flags.truncated;
            f.infinite_loop |= n.flags.infinite_loop;
            f.too_many_labels |= n.flags.too_many_labels;
        };
        self.queries.iter().for_each(|q| add(&q.name));
        for r in self
            .answers
            .iter()
            .chain(&self.authorities)
            .chain(&self.additionals)
        {
            add(&r.name);
        }
        f
    }
}

fn truncated(what: &'static str, needed: usize) -> ProtoError {
    ProtoError::Truncated { what, needed }
}

fn be16(msg: &[u8], at: usize, what: &'static str) -> Result<u16, ProtoError> {
    match msg.get(at..at + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(truncated(what, at + 2 - msg.len().min(at + 2))),
    }
}

fn be32(msg: &[u8], at: usize, what: &'static str) -> Result<u32, ProtoError> {
    match msg.get(at..at + 4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(truncated(what, at + 4 - msg.len().min(at + 4))),
    }
}

/// Parses the header.
pub fn parse_header(msg: &[u8]) -> Result<DnsHeader, ProtoError> {
    if msg.len() < HEADER_LEN {
        return Err(truncated("dns header", HEADER_LEN - msg.len()));
    }
    Ok(DnsHeader {
        id: be16(msg, 0, "dns header")?,
        flags: be16(msg, 2, "dns header")?,
        qdcount: be16(msg, 4, "dns header")?,
        ancount: be16(msg, 6, "dns header")?,
        nscount: be16(msg, 8, "dns header")?,
        arcount: be16(msg, 10, "dns header")?,
    })
}

/// Decodes the name at `start` in `msg`, following compression pointers. Returns the name and the
/// offset just after it at its original position.
pub fn parse_name(msg: &[u8], start: usize) -> Result<(DnsName, usize), ProtoError> {
    let mut name = DnsName::default();
    let mut pos = start;
    let mut end: Option<usize> = None;
    let mut pointers = 0usize;
    let mut labels = 0usize;
    loop {
        let Some(&len) = msg.get(pos) else {
            return Err(truncated("dns name", 1));
        };
        if len == 0 {
            if end.is_none() {
                end = Some(pos + 1);
            }
            break;
        }
        match len & 0xc0 {
            0xc0 => {
                let Some(&low) = msg.get(pos + 1) else {
                    return Err(truncated("dns name pointer", 1));
                };
                if end.is_none() {
                    end = Some(pos + 2);
                }
                pointers += 1;
                if pointers > MAX_POINTERS {
                    name.flags.infinite_loop = true;
                    break;
                }
                let target = (((len & 0x3f) as usize) << 8) | low as usize;
                if target >= msg.len() {
                    return Err(ProtoError::malformed(
                        "dns name",
                        format!("pointer to offset {target} beyond the message"),
                    ));
                }
                pos = target;
            }
            0x00 => {
                let len = len as usize;
                let Some(label) = msg.get(pos + 1..pos + 1 + len) else {
                    return Err(truncated("dns label", pos + 1 + len - msg.len()));
                };
                labels += 1;
                if labels > MAX_LABELS {
                    name.flags.too_many_labels = true;
                    break;
                }
                let extra = len + usize::from(!name.value.is_empty());
                if name.value.len() + extra > MAX_NAME_LEN {
                    name.flags.truncated = true;
                } else {
                    if !name.value.is_empty() {
                        name.value.push(b'.');
                    }
                    name.value.extend_from_slice(label);
                }
                pos += 1 + len;
            }
            other => {
                return Err(ProtoError::malformed(
                    "dns name",
                    format!("reserved label type {other:#04x}"),
                ));
            }
        }
    }
    // `end` is always set: every loop exit sets it or follows a pointer, which sets it.
    Ok((name, end.unwrap_or(pos + 1)))
}

fn parse_question(msg: &[u8], at: usize) -> Result<(DnsQuestion, usize), ProtoError> {
    let (name, pos) = parse_name(msg, at)?;
    let rrtype = be16(msg, pos, "dns question")?;
    let rrclass = be16(msg, pos + 2, "dns question")?;
    Ok((
        DnsQuestion {
            name,
            rrtype,
            rrclass,
        },
        pos + 4,
    ))
}

fn parse_rdata(msg: &[u8], rrtype: u16, start: usize, rdata: &[u8]) -> Option<DnsRData> {
    Some(match rrtype {
        TYPE_A => DnsRData::A(Ipv4Addr::from(<[u8; 4]>::try_from(rdata).ok()?)),
        TYPE_AAAA => DnsRData::Aaaa(Ipv6Addr::from(<[u8; 16]>::try_from(rdata).ok()?)),
        TYPE_CNAME | TYPE_NS | TYPE_PTR => DnsRData::Name(parse_name(msg, start).ok()?.0),
        TYPE_MX => {
            let preference = be16(msg, start, "mx").ok()?;
            DnsRData::Mx {
                preference,
                exchange: parse_name(msg, start + 2).ok()?.0,
            }
        }
        TYPE_TXT | 99 => {
            let mut strings = Vec::new();
            let mut i = 0;
            while i < rdata.len() {
                let len = rdata[i] as usize;
                strings.push(rdata.get(i + 1..i + 1 + len)?.to_vec());
                i += 1 + len;
            }
            DnsRData::Txt(strings)
        }
        TYPE_SOA => {
            let (mname, p) = parse_name(msg, start).ok()?;
            let (rname, p) = parse_name(msg, p).ok()?;
            DnsRData::Soa(DnsSoa {
                mname,
                rname,
                serial: be32(msg, p, "soa").ok()?,
                refresh: be32(msg, p + 4, "soa").ok()?,
                retry: be32(msg, p + 8, "soa").ok()?,
                expire: be32(msg, p + 12, "soa").ok()?,
                minimum: be32(msg, p + 16, "soa").ok()?,
            })
        }
        TYPE_SRV => DnsRData::Srv(DnsSrv {
            priority: be16(msg, start, "srv").ok()?,
            weight: be16(msg, start + 2, "srv").ok()?,
            port: be16(msg, start + 4, "srv").ok()?,
            target: parse_name(msg, start + 6).ok()?.0,
        }),
        TYPE_SSHFP => {
            if rdata.len() < 2 {
                return None;
            }
            DnsRData::Sshfp {
                algorithm: rdata[0],
                fp_type: rdata[1],
                fingerprint: rdata[2..].to_vec(),
            }
        }
        TYPE_OPT => {
            let mut opts = Vec::new();
            let mut i = 0;
            while i < rdata.len() {
                let code = be16(rdata, i, "opt").ok()?;
                let len = be16(rdata, i + 2, "opt").ok()? as usize;
                opts.push((code, rdata.get(i + 4..i + 4 + len)?.to_vec()));
                i += 4 + len;
            }
            DnsRData::Opt(opts)
        }
        _ => return None,
    })
}

fn parse_record(msg: &[u8], at: usize) -> Result<(DnsRecord, usize), ProtoError> {
    let (name, pos) = parse_name(msg, at)?;
    let rrtype = be16(msg, pos, "dns record")?;
    let rrclass = be16(msg, pos + 2, "dns record")?;
    let ttl = be32(msg, pos + 4, "dns record")?;
    let rdlen = be16(msg, pos + 8, "dns record")? as usize;
    let start = pos + 10;
    let Some(raw) = msg.get(start..start + rdlen) else {
        return Err(truncated("dns rdata", start + rdlen - msg.len()));
    };
    let rdata = if raw.is_empty() && rrtype == TYPE_OPT {
        DnsRData::Opt(Vec::new())
    } else if raw.is_empty() {
        // Empty data (dynamic updates delete with it): nothing to decode, and decoding a name
        // here would read the next record.
        DnsRData::Other(Vec::new())
    } else {
        match parse_rdata(msg, rrtype, start, raw) {
            Some(rdata) => rdata,
            // Like Suricata, a broken OPT option list fails the record (and so its section).
            None if rrtype == TYPE_OPT => {
                return Err(ProtoError::malformed(
                    "dns opt record",
                    "option list overruns the record data",
                ));
            }
            None => DnsRData::Other(raw.to_vec()),
        }
    };
    Ok((
        DnsRecord {
            name,
            rrtype,
            rrclass,
            ttl,
            rdata,
        },
        start + rdlen,
    ))
}

fn parse_section(
    msg: &[u8],
    mut pos: usize,
    count: u16,
) -> Result<(Vec<DnsRecord>, usize), ProtoError> {
    let mut records = Vec::new();
    for _ in 0..count {
        let (rec, next) = parse_record(msg, pos)?;
        if records.len() < MAX_RECORDS_PER_SECTION {
            records.push(rec);
        }
        pos = next;
    }
    Ok((records, pos))
}

/// Parses one whole DNS message (a UDP payload, or one TCP message without its length prefix).
///
/// The header, questions and answers must parse; a failing authority or additional section is
/// dropped and flagged on the message. Trailing bytes after the last section are ignored.
pub fn parse_message(msg: &[u8]) -> Result<DnsMessage, ProtoError> {
    let header = parse_header(msg)?;
    let mut pos = HEADER_LEN;
    let mut queries = Vec::new();
    for _ in 0..header.qdcount {
        let (q, next) = parse_question(msg, pos)?;
        if queries.len() < MAX_RECORDS_PER_SECTION {
            queries.push(q);
        }
        pos = next;
    }
    let (answers, pos) = parse_section(msg, pos, header.ancount)?;
    let mut message = DnsMessage {
        header,
        queries,
        answers,
        authorities: Vec::new(),
        additionals: Vec::new(),
        invalid_authorities: false,
        invalid_additionals: false,
    };
    let pos = match parse_section(msg, pos, header.nscount) {
        Ok((records, next)) => {
            message.authorities = records;
            next
        }
        Err(_) => {
            message.invalid_authorities = true;
            return Ok(message);
        }
    };
    match parse_section(msg, pos, header.arcount) {
        Ok((records, _)) => message.additionals = records,
        Err(_) => message.invalid_additionals = true,
    }
    Ok(message)
}

/// Parses a DNS-over-UDP payload.
pub fn parse_udp(payload: &[u8]) -> Result<DnsMessage, ProtoError> {
    parse_message(payload)
}

/// Splits one length-prefixed DNS-over-TCP message (RFC 1035 4.2.2) off the front of `stream`.
/// Returns the message bytes (without the prefix) and the bytes used, or how many more are needed.
pub fn split_tcp_message(stream: &[u8]) -> crate::Parsed<&[u8]> {
    if stream.len() < 2 {
        return crate::Parsed::Incomplete(2 - stream.len());
    }
    let len = u16::from_be_bytes([stream[0], stream[1]]) as usize;
    match stream.get(2..2 + len) {
        Some(msg) => crate::Parsed::Done(msg, 2 + len),
        None => crate::Parsed::Incomplete(2 + len - stream.len()),
    }
}

/// Suricata's name for a record type, or the number as text.
pub fn rrtype_name(rrtype: u16) -> String {
    let name = match rrtype {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAPPTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        55 => "HIP",
        59 => "CDS",
        60 => "CDNSKEY",
        65 => "HTTPS",
        99 => "SPF",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        _ => return rrtype.to_string(),
    };
    name.to_string()
}

/// Suricata's name for a response code, or the number as text.
pub fn rcode_name(rcode: u16) -> String {
    let name = match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        17 => "BADKEY",
        18 => "BADTIME",
        19 => "BADMODE",
        20 => "BADNAME",
        21 => "BADALG",
        22 => "BADTRUNC",
        _ => return rcode.to_string(),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response for `www.example.com` A with a compressed answer name.
    fn sample_response() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        m.extend_from_slice(&[
            0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 93, 184, 216, 34,
        ]);
        m
    }

    #[test]
    fn parses_a_compressed_answer() {
        let m = parse_message(&sample_response()).unwrap();
        assert_eq!(m.header.id, 0x1234);
        assert!(m.header.is_response());
        assert_eq!(m.queries[0].name.value, b"www.example.com");
        assert_eq!(m.answers[0].name.value, b"www.example.com");
        assert_eq!(m.answers[0].ttl, 3600);
        assert_eq!(
            m.answers[0].rdata,
            DnsRData::A(Ipv4Addr::new(93, 184, 216, 34))
        );
    }

    #[test]
    fn pointer_loop_is_flagged_not_followed_forever() {
        let mut m = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]); // points at itself
        let msg = parse_message(&m).unwrap();
        assert!(msg.queries[0].name.flags.infinite_loop);
    }

    #[test]
    fn long_names_are_truncated_at_the_limit() {
        // 40 pointers-free labels of 63 bytes = 2559 bytes of name, over MAX_NAME_LEN.
        let mut m = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for _ in 0..40 {
            m.push(63);
            m.extend_from_slice(&[b'a'; 63]);
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        let msg = parse_message(&m).unwrap();
        assert!(msg.queries[0].name.flags.truncated);
        assert!(msg.queries[0].name.value.len() <= MAX_NAME_LEN);
    }

    #[test]
    fn truncated_question_is_an_error() {
        let m = sample_response();
        assert!(matches!(
            parse_message(&m[..20]),
            Err(ProtoError::Truncated { .. })
        ));
        assert!(parse_message(&m[..5]).is_err());
    }

    #[test]
    fn bad_additionals_are_dropped_and_flagged() {
        let mut m = sample_response();
        m[11] = 1; // arcount = 1 but no bytes
        let msg = parse_message(&m).unwrap();
        assert!(msg.invalid_additionals);
        assert_eq!(msg.answers.len(), 1);
    }

    #[test]
    fn tcp_framing() {
        assert_eq!(split_tcp_message(&[0]), crate::Parsed::Incomplete(1));
        assert_eq!(split_tcp_message(&[0, 3, 1]), crate::Parsed::Incomplete(2));
        assert_eq!(
            split_tcp_message(&[0, 1, 9, 9]),
            crate::Parsed::Done(&[9u8][..], 3)
        );
    }

    #[test]
    fn names_of_types_and_codes() {
        assert_eq!(rrtype_name(28), "AAAA");
        assert_eq!(rrtype_name(64), "64");
        assert_eq!(rrtype_name(257), "257");
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(rcode_name(12), "12");
    }
}
