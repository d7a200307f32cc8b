//! Pure TLS parsing over byte slices: record and handshake headers, ClientHello and ServerHello
//! (with the extension fields JA3/JA3S need), the Certificate message, and X.509 details of a
//! certificate (through `x509-parser`, the library Suricata itself uses, so names print alike).
//!
//! JA3 and JA3S follow the Salesforce definition as Suricata implements it: decimal values joined
//! with `-`, fields with `,`, GREASE values (RFC 8701) left out, MD5 of the string as lowercase hex.

use md5::{Digest as _, Md5};
use sha1::Sha1;

use crate::{Parsed, ProtoError};

/// TLS record header length.
pub const RECORD_HEADER_LEN: usize = 5;
/// Largest record: 2^14 plaintext plus the 2048 bytes of expansion RFC 5246 allows.
pub const MAX_RECORD_LEN: usize = (1 << 14) + 2048;
/// Handshake message header length.
pub const HANDSHAKE_HEADER_LEN: usize = 4;

pub const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
pub const CONTENT_ALERT: u8 = 21;
pub const CONTENT_HANDSHAKE: u8 = 22;
pub const CONTENT_APPLICATION_DATA: u8 = 23;
pub const CONTENT_HEARTBEAT: u8 = 24;

pub const HS_CLIENT_HELLO: u8 = 1;
pub const HS_SERVER_HELLO: u8 = 2;
pub const HS_CERTIFICATE: u8 = 11;

pub const EXT_SERVER_NAME: u16 = 0;
pub const EXT_SUPPORTED_GROUPS: u16 = 10;
pub const EXT_EC_POINT_FORMATS: u16 = 11;
pub const EXT_ALPN: u16 = 16;
pub const EXT_SIGNATURE_ALGORITHMS: u16 = 13;
pub const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// A record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub content_type: u8,
    pub version: u16,
    pub length: usize,
}

/// Reads a record header. `Err` when the bytes are not a TLS record header at all.
pub fn parse_record_header(buf: &[u8]) -> Result<Parsed<RecordHeader>, ProtoError> {
    if buf.len() < RECORD_HEADER_LEN {
        return Ok(Parsed::Incomplete(RECORD_HEADER_LEN - buf.len()));
    }
    let content_type = buf[0];
    if !(CONTENT_CHANGE_CIPHER_SPEC..=CONTENT_HEARTBEAT).contains(&content_type) {
        return Err(ProtoError::malformed(
            "tls record",
            format!("invalid record type {content_type}"),
        ));
    }
    let version = u16::from_be_bytes([buf[1], buf[2]]);
    if buf[1] != 3 {
        return Err(ProtoError::malformed(
            "tls record",
            format!("invalid record version {version:#06x}"),
        ));
    }
    let length = u16::from_be_bytes([buf[3], buf[4]]) as usize;
    if length > MAX_RECORD_LEN {
        return Err(ProtoError::LimitExceeded {
            what: "tls record",
            limit: MAX_RECORD_LEN,
        });
    }
    Ok(Parsed::Done(
        RecordHeader {
            content_type,
            version,
            length,
        },
        RECORD_HEADER_LEN,
    ))
}

/// Splits one handshake message (type, body) off the front of reassembled handshake bytes.
pub fn split_handshake(buf: &[u8]) -> Parsed<(u8, &[u8])> {
    if buf.len() < HANDSHAKE_HEADER_LEN {
        return Parsed::Incomplete(HANDSHAKE_HEADER_LEN - buf.len());
    }
    let len = u32::from_be_bytes([0, buf[1], buf[2], buf[3]]) as usize;
    match buf.get(HANDSHAKE_HEADER_LEN..HANDSHAKE_HEADER_LEN + len) {
        Some(body) => Parsed::Done((buf[0], body), HANDSHAKE_HEADER_LEN + len),
        None => Parsed::Incomplete(HANDSHAKE_HEADER_LEN + len - buf.len()),
    }
}

/// True for the GREASE values of RFC 8701 (0x0a0a, 0x1a1a, ... 0xfafa).
pub fn is_grease(v: u16) -> bool {
    (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff)
}

/// A tiny cursor over a message body; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        let s = self
            .buf
            .get(self.pos..self.pos + n)
            .ok_or_else(|| ProtoError::Truncated {
                what: self.what,
                needed: (self.pos + n).saturating_sub(self.buf.len()),
            })?;
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, ProtoError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ProtoError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec8(&mut self) -> Result<&'a [u8], ProtoError> {
        let n = self.u8()? as usize;
        self.take(n)
    }
    fn vec16(&mut self) -> Result<&'a [u8], ProtoError> {
        let n = self.u16()? as usize;
        self.take(n)
    }
    fn rest(&mut self) -> &'a [u8] {
        let r = &self.buf[self.pos.min(self.buf.len())..];
        self.pos = self.buf.len();
        r
    }
    fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

fn u16_list(bytes: &[u8]) -> Vec<u16> {
    bytes
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

/// The fields of a ClientHello that detection and logging use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    pub version: u16,
    pub session_id: Vec<u8>,
    pub ciphers: Vec<u16>,
    /// Extension types in the order sent.
    pub extensions: Vec<u16>,
    pub groups: Vec<u16>,
    pub point_formats: Vec<u8>,
    pub sni: Option<Vec<u8>>,
    pub alpns: Vec<Vec<u8>>,
    pub supported_versions: Vec<u16>,
    /// The signature_algorithms extension's list, in order (JA4 uses it).
    pub signature_algorithms: Vec<u16>,
}

/// The fields of a ServerHello that detection and logging use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerHello {
    /// The legacy version field.
    pub version: u16,
    pub session_id: Vec<u8>,
    pub cipher: u16,
    pub extensions: Vec<u16>,
    /// The version chosen by the `supported_versions` extension (TLS 1.3), if present.
    pub selected_version: Option<u16>,
    pub alpn: Option<Vec<u8>>,
}

fn parse_extensions(
    r: &mut Reader<'_>,
    mut each: impl FnMut(u16, &[u8]),
) -> Result<Vec<u16>, ProtoError> {
    let mut types = Vec::new();
    if r.is_empty() {
        return Ok(types);
    }
    let block = r.vec16()?;
    let mut e = Reader::new(block, "tls extension");
    while !e.is_empty() {
        let ext_type = e.u16()?;
        let data = e.vec16()?;
        types.push(ext_type);
        each(ext_type, data);
    }
    Ok(types)
}

fn parse_sni(data: &[u8]) -> Option<Vec<u8>> {
    let mut r = Reader::new(data, "sni");
    let list = r.vec16().ok()?;
    let mut l = Reader::new(list, "sni");
    while !l.is_empty() {
        let kind = l.u8().ok()?;
        let name = l.vec16().ok()?;
        if kind == 0 {
            return Some(name.to_vec());
        }
    }
    None
}

fn parse_alpn(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut r = Reader::new(data, "alpn");
    let Ok(list) = r.vec16() else { return out };
    let mut l = Reader::new(list, "alpn");
    while let Ok(p) = l.vec8() {
        out.push(p.to_vec());
    }
    out
}

/// Parses a ClientHello body (after the 4-byte handshake header).
pub fn parse_client_hello(body: &[u8]) -> Result<ClientHello, ProtoError> {
    let mut r = Reader::new(body, "tls client hello");
    let mut hello = ClientHello {
        version: r.u16()?,
        ..ClientHello::default()
    };
    r.take(32)?;
    hello.session_id = r.vec8()?.to_vec();
    hello.ciphers = u16_list(r.vec16()?);
    r.vec8()?; // compression methods
    let mut ext_err = false;
    let types = parse_extensions(&mut r, |t, data| match t {
        EXT_SERVER_NAME => hello.sni = parse_sni(data),
        EXT_SUPPORTED_GROUPS => match Reader::new(data, "groups").vec16() {
            Ok(l) => hello.groups = u16_list(l),
            Err(_) => ext_err = true,
        },
        EXT_EC_POINT_FORMATS => match Reader::new(data, "point formats").vec8() {
            Ok(l) => hello.point_formats = l.to_vec(),
            Err(_) => ext_err = true,
        },
        EXT_ALPN => hello.alpns = parse_alpn(data),
        EXT_SUPPORTED_VERSIONS => {
            if let Ok(l) = Reader::new(data, "supported versions").vec8() {
                hello.supported_versions = u16_list(l);
            }
        }
        EXT_SIGNATURE_ALGORITHMS => {
            if let Ok(l) = Reader::new(data, "signature algorithms").vec16() {
                hello.signature_algorithms = u16_list(l);
            }
        }
        _ => {}
    });
    // A broken extension block still leaves the fields parsed before it.
    hello.extensions = types.unwrap_or_default();
    let _ = ext_err;
    Ok(hello)
}

/// Parses a ServerHello body.
pub fn parse_server_hello(body: &[u8]) -> Result<ServerHello, ProtoError> {
    let mut r = Reader::new(body, "tls server hello");
    let mut hello = ServerHello {
        version: r.u16()?,
        ..ServerHello::default()
    };
    r.take(32)?;
    // TLS 1.3 drafts (0x7fxx) dropped the session id and compression fields from ServerHello;
    // they came back (as legacy fields) only in the final version.
    let draft = hello.version >> 8 == 0x7f;
    if !draft {
        hello.session_id = r.vec8()?.to_vec();
    }
    hello.cipher = r.u16()?;
    if !draft {
        r.u8()?; // compression method
    }
    let types = parse_extensions(&mut r, |t, data| match t {
        EXT_SUPPORTED_VERSIONS if data.len() == 2 => {
            hello.selected_version = Some(u16::from_be_bytes([data[0], data[1]]))
        }
        EXT_ALPN => hello.alpn = parse_alpn(data).into_iter().next(),
        _ => {}
    });
    hello.extensions = types.unwrap_or_default();
    Ok(hello)
}

/// Splits a Certificate message (TLS 1.2 and earlier) into DER certificates, at most `max`.
pub fn parse_certificate_list(body: &[u8], max: usize) -> Result<Vec<&[u8]>, ProtoError> {
    let mut r = Reader::new(body, "tls certificate");
    let total = r.take(3)?;
    let total = u32::from_be_bytes([0, total[0], total[1], total[2]]) as usize;
    let list = r.take(total.min(r.buf.len().saturating_sub(3)))?;
    let _ = r.rest();
    let mut l = Reader::new(list, "tls certificate");
    let mut certs = Vec::new();
    while !l.is_empty() && certs.len() < max {
        // A list cut short still yields the certificates before the cut.
        let cert = l
            .take(3)
            .and_then(|n| l.take(u32::from_be_bytes([0, n[0], n[1], n[2]]) as usize));
        match cert {
            Ok(c) => certs.push(c),
            Err(e) if certs.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    Ok(certs)
}

fn join_decimal<T: std::fmt::Display>(values: impl Iterator<Item = T>) -> String {
    let mut s = String::new();
    for (i, v) in values.enumerate() {
        if i > 0 {
            s.push('-');
        }
        s.push_str(&v.to_string());
    }
    s
}

/// The JA3 string of a ClientHello.
pub fn ja3_string(hello: &ClientHello) -> String {
    format!(
        "{},{},{},{},{}",
        hello.version,
        join_decimal(hello.ciphers.iter().filter(|c| !is_grease(**c))),
        join_decimal(hello.extensions.iter().filter(|c| !is_grease(**c))),
        join_decimal(hello.groups.iter().filter(|c| !is_grease(**c))),
        join_decimal(hello.point_formats.iter()),
    )
}

/// The JA3S string of a ServerHello.
pub fn ja3s_string(hello: &ServerHello) -> String {
    format!(
        "{},{},{}",
        hello.version,
        hello.cipher,
        join_decimal(hello.extensions.iter().filter(|c| !is_grease(**c)))
    )
}

/// MD5 of a JA3/JA3S string as lowercase hex.
pub fn ja3_hash(s: &str) -> String {
    hex_lower(&Md5::digest(s.as_bytes()), "")
}

fn hex_lower(bytes: &[u8], sep: &str) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push_str(sep);
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The JA4 fingerprint (FoxIO's definition, as Suricata 8 logs it) of a ClientHello sent over
/// TCP: `t<version><d|i><ciphers><extensions><alpn>_<sha256(sorted ciphers)>_<sha256(sorted
/// extensions without SNI/ALPN, then signature algorithms)>`, hashes cut to 12 hex digits.
pub fn ja4(hello: &ClientHello) -> String {
    use sha2::{Digest as _, Sha256};
    // Like Suricata: the highest version it has a name for in supported_versions (SSL/TLS,
    // DTLS, TLS 1.3 drafts 16 to 28; GREASE, older drafts and vendor experiments such as 0x7e01
    // do not count), else the ClientHello's version. Drafts and unknowns print as "00".
    let version = if hello.supported_versions.is_empty() {
        hello.version
    } else {
        hello
            .supported_versions
            .iter()
            .copied()
            .filter(|v| matches!(v, 0x0002 | 0x0300..=0x0304 | 0x7f10..=0x7f1c | 0xfefc..=0xfeff))
            .max()
            .unwrap_or(0)
    };
    let version = match version {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    };
    let ciphers: Vec<u16> = hello
        .ciphers
        .iter()
        .copied()
        .filter(|c| !is_grease(*c))
        .collect();
    let exts: Vec<u16> = hello
        .extensions
        .iter()
        .copied()
        .filter(|e| !is_grease(*e))
        .collect();
    let alpn = match hello.alpns.first() {
        Some(a) if !a.is_empty() => {
            let (first, last) = (a[0], a[a.len() - 1]);
            if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
                format!("{}{}", first as char, last as char)
            } else {
                let hex = hex_lower(a, "");
                let b = hex.as_bytes();
                format!("{}{}", b[0] as char, b[b.len() - 1] as char)
            }
        }
        _ => "00".to_string(),
    };
    let hash12 = |text: &str| -> String {
        hex_lower(&Sha256::digest(text.as_bytes()), "")[..12].to_string()
    };
    let hex_list = |values: &[u16]| {
        values
            .iter()
            .map(|v| format!("{v:04x}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut sorted_ciphers = ciphers.clone();
    sorted_ciphers.sort_unstable();
    let mut sorted_exts: Vec<u16> = exts
        .iter()
        .copied()
        .filter(|e| *e != EXT_SERVER_NAME && *e != EXT_ALPN)
        .collect();
    sorted_exts.sort_unstable();
    // Suricata always joins the two lists with `_`, even when either is empty.
    let sig: Vec<u16> = hello
        .signature_algorithms
        .iter()
        .copied()
        .filter(|s| !is_grease(*s))
        .collect();
    let ext_hash = hash12(&format!("{}_{}", hex_list(&sorted_exts), hex_list(&sig)));
    format!(
        "t{version}{}{:02}{:02}{alpn}_{}_{}",
        if hello.sni.is_some() { 'd' } else { 'i' },
        ciphers.len().min(99),
        exts.len().min(99),
        hash12(&hex_list(&sorted_ciphers)),
        ext_hash,
    )
}

/// Suricata's name for a protocol version.
pub fn version_name(v: u16) -> String {
    match v {
        0 => "UNDETERMINED".into(),
        0x0002 => "SSLv2".into(),
        0x0300 => "SSLv3".into(),
        0x0301 => "TLSv1".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        0x7f00..=0x7f0f => "TLS 1.3 draft-<16".into(),
        0x7f10..=0x7fff => format!("TLS 1.3 draft-{}", v & 0xff),
        other => other.to_string(),
    }
}

/// What Suricata logs of a certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertInfo {
    /// `CN=x, O=y, C=US`, RDNs in certificate order.
    pub subject: String,
    pub issuer: String,
    /// DNS names of the subjectAltName extension.
    pub sans: Vec<String>,
    /// Serial bytes as encoded, uppercase hex with colons.
    pub serial: String,
    /// SHA-1 of the DER, lowercase hex with colons.
    pub fingerprint: String,
    /// `YYYY-MM-DDTHH:MM:SS` (UTC).
    pub not_before: String,
    pub not_after: String,
}

fn format_time(t: x509_parser::time::ASN1Time) -> String {
    let d = t.to_datetime();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

/// Decodes one DER certificate.
pub fn parse_certificate(der: &[u8]) -> Result<CertInfo, ProtoError> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| ProtoError::malformed("x509 certificate", e.to_string()))?;
    let tbs = &cert.tbs_certificate;
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = tbs.subject_alternative_name() {
        for name in &ext.value.general_names {
            if let GeneralName::DNSName(n) = name {
                sans.push((*n).to_string());
            }
        }
    }
    let serial = tbs
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    Ok(CertInfo {
        subject: tbs.subject.to_string(),
        issuer: tbs.issuer.to_string(),
        sans,
        serial,
        fingerprint: hex_lower(&Sha1::digest(der), ":"),
        not_before: format_time(tbs.validity.not_before),
        not_after: format_time(tbs.validity.not_after),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grease_values() {
        assert!(is_grease(0x0a0a));
        assert!(is_grease(0xfafa));
        assert!(!is_grease(0x0a1a));
        assert!(!is_grease(0x1301));
    }

    #[test]
    fn version_names_like_suricata() {
        assert_eq!(version_name(0x0301), "TLSv1");
        assert_eq!(version_name(0x0303), "TLS 1.2");
        assert_eq!(version_name(0x7f13), "TLS 1.3 draft-19");
        assert_eq!(version_name(0x7f0e), "TLS 1.3 draft-<16");
        assert_eq!(version_name(0x7e01), "32257");
    }

    #[test]
    fn record_header_checks() {
        assert_eq!(
            parse_record_header(&[22, 3]).unwrap(),
            Parsed::Incomplete(3)
        );
        assert!(parse_record_header(&[99, 3, 1, 0, 1]).is_err());
        assert!(parse_record_header(&[22, 4, 1, 0, 1]).is_err());
        assert!(parse_record_header(&[22, 3, 1, 0xff, 0xff]).is_err());
        let h = parse_record_header(&[22, 3, 1, 0, 5]).unwrap();
        assert_eq!(
            h,
            Parsed::Done(
                RecordHeader {
                    content_type: 22,
                    version: 0x0301,
                    length: 5
                },
                5
            )
        );
    }

    #[test]
    fn ja3_of_known_string() {
        // The oracle's JA3 for Zeek's tls/tls-conn-with-extensions trace has this string and hash.
        let s = "771,255-49196-49195-49188-49187-49162-49161-49160-49200-49199-49192-49191-49172-49171-49170-49198-49197-49190-49189-49157-49156-49155-49202-49201-49194-49193-49167-49166-49165-159-158-107-103-57-51-22-157-156-61-60-53-47-10-49159-49169-49154-49164-5-4-175-174-141-140-138-139,10-11-13-5-18,23-24-25,0";
        assert_eq!(ja3_hash(s), "ccc4531e0fdf771be227dc8cba58b91e");
    }
}
