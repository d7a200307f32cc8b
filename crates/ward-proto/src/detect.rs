//! Application protocol detection from the first bytes of a direction, content first and port as
//! a hint only: HTTP on port 4444 is still HTTP, and bytes that look like nothing on port 80 are
//! not HTTP.
//!
//! [`detect`] looks at one direction's first bytes; [`Detection::NeedMore`] means the bytes so far
//! are a prefix of something recognisable. The flow-level policy (buffering, giving up and
//! reporting `failed` like Suricata) lives in [`crate::app::AppState`].

use crate::http::parser::KNOWN_METHODS;

/// IP protocol numbers used here.
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

/// Application protocols ward names in EVE `app_proto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppProto {
    Http,
    Tls,
    Dns,
    Ssh,
    Smtp,
    Ftp,
    Pop3,
    Imap,
    /// Detection ran on data and gave up (Suricata's `failed`).
    Failed,
}

impl AppProto {
    /// The EVE name.
    pub fn name(self) -> &'static str {
        match self {
            AppProto::Http => "http",
            AppProto::Tls => "tls",
            AppProto::Dns => "dns",
            AppProto::Ssh => "ssh",
            AppProto::Smtp => "smtp",
            AppProto::Ftp => "ftp",
            AppProto::Pop3 => "pop3",
            AppProto::Imap => "imap",
            AppProto::Failed => "failed",
        }
    }
}

impl std::fmt::Display for AppProto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The verdict on one direction's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detection {
    Proto(AppProto),
    /// The bytes so far could still become a recognised protocol.
    NeedMore,
    Unknown,
}

/// Longest method we test for a request line (plus the space after it).
const MAX_METHOD_PROBE: usize = 17;

fn starts_with_ci(data: &[u8], prefix: &[u8]) -> Detection {
    let n = data.len().min(prefix.len());
    if !data[..n].eq_ignore_ascii_case(&prefix[..n]) {
        Detection::Unknown
    } else if n < prefix.len() {
        Detection::NeedMore
    } else {
        Detection::Proto(AppProto::Http) // placeholder, callers map it
    }
}

fn matches_prefix(data: &[u8], prefix: &[u8]) -> Option<bool> {
    match starts_with_ci(data, prefix) {
        Detection::Unknown => Some(false),
        Detection::NeedMore => None,
        Detection::Proto(_) => Some(true),
    }
}

fn http_request(data: &[u8]) -> Detection {
    let mut need_more = false;
    for m in KNOWN_METHODS {
        let n = data.len().min(m.len() + 1);
        if data[..n.min(m.len())] != m[..n.min(m.len())] {
            continue;
        }
        if data.len() <= m.len() {
            need_more = true;
            continue;
        }
        if data[m.len()] == b' ' || data[m.len()] == b'\t' {
            return Detection::Proto(AppProto::Http);
        }
    }
    if need_more && data.len() < MAX_METHOD_PROBE {
        Detection::NeedMore
    } else {
        Detection::Unknown
    }
}

fn http_response(data: &[u8]) -> Detection {
    match matches_prefix(data, b"HTTP/1.") {
        Some(true) => Detection::Proto(AppProto::Http),
        Some(false) => Detection::Unknown,
        None => Detection::NeedMore,
    }
}

fn tls(data: &[u8], to_server: bool) -> Detection {
    // Record header: handshake (22) or, for a server, alert (21); major version 3, minor <= 4.
    let Some(&ct) = data.first() else {
        return Detection::NeedMore;
    };
    if !(ct == 22 || (!to_server && ct == 21)) {
        return Detection::Unknown;
    }
    if data.len() < 3 {
        return if data.get(1).is_none_or(|&b| b == 3) {
            Detection::NeedMore
        } else {
            Detection::Unknown
        };
    }
    if data[1] != 3 || data[2] > 4 {
        return Detection::Unknown;
    }
    if ct == 21 {
        return Detection::Proto(AppProto::Tls);
    }
    // Handshake: ClientHello from the client, ServerHello from the server.
    match data.get(5) {
        None => Detection::NeedMore,
        Some(&1) if to_server => Detection::Proto(AppProto::Tls),
        Some(&2) if !to_server => Detection::Proto(AppProto::Tls),
        _ => Detection::Unknown,
    }
}

/// `strict_direction`: a message from the client must be a query (TCP). Over UDP a first datagram
/// may well be a response (the query was missed, or both ports are 53), and Suricata takes it.
fn dns_header_sane(msg: &[u8], to_server: bool) -> Detection {
    dns_header_check(msg, to_server, true)
}

fn dns_header_check(msg: &[u8], to_server: bool, strict_direction: bool) -> Detection {
    if msg.len() < 12 {
        return Detection::NeedMore;
    }
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    let qd = u16::from_be_bytes([msg[4], msg[5]]);
    let opcode = (flags >> 11) & 0xf;
    let is_response = flags & 0x8000 != 0;
    let to_server = to_server && strict_direction;
    if opcode > 6 || (to_server && is_response) || qd > 64 || (to_server && qd == 0 && opcode == 0)
    {
        return Detection::Unknown;
    }
    Detection::Proto(AppProto::Dns)
}

fn banner(data: &[u8], to_server: bool, dst_port: u16, src_port: u16) -> Detection {
    if let Some(r) = matches_prefix(data, b"SSH-") {
        if r {
            return Detection::Proto(AppProto::Ssh);
        }
    } else {
        return Detection::NeedMore;
    }
    if to_server {
        for (cmd, proto) in [
            (&b"EHLO "[..], AppProto::Smtp),
            (b"HELO ", AppProto::Smtp),
            (b"USER ", AppProto::Ftp),
        ] {
            match matches_prefix(data, cmd) {
                Some(true) => return Detection::Proto(proto),
                None => return Detection::NeedMore,
                Some(false) => {}
            }
        }
        return Detection::Unknown;
    }
    // POP3 and IMAP greetings.
    match matches_prefix(data, b"+OK") {
        Some(true) => return Detection::Proto(AppProto::Pop3),
        None => return Detection::NeedMore,
        Some(false) => {}
    }
    match matches_prefix(data, b"* OK") {
        Some(true) => return Detection::Proto(AppProto::Imap),
        None => return Detection::NeedMore,
        Some(false) => {}
    }
    // Server greeting: "220 " or "220-" for both SMTP and FTP; the text or the port tells which.
    match matches_prefix(data, b"220") {
        None => return Detection::NeedMore,
        Some(false) => return Detection::Unknown,
        Some(true) => {}
    }
    match data.get(3) {
        None => return Detection::NeedMore,
        Some(b' ' | b'-') => {}
        Some(_) => return Detection::Unknown,
    }
    let line_end = data.iter().position(|&b| b == b'\n');
    let line = &data[..line_end.unwrap_or(data.len())];
    let has = |w: &[u8]| line.windows(w.len()).any(|x| x.eq_ignore_ascii_case(w));
    if has(b"SMTP") || has(b"mail") {
        return Detection::Proto(AppProto::Smtp);
    }
    // "FTP" in a greeting is only trusted on the FTP port: GridFTP (2811) and others greet alike
    // and Suricata leaves them undetected.
    // The flow's server port (the caller passes the flow's ports, not the packet's).
    let _ = src_port;
    let port = dst_port;
    if has(b"FTP") && port == 21 {
        return Detection::Proto(AppProto::Ftp);
    }
    match port {
        21 => Detection::Proto(AppProto::Ftp),
        25 | 587 | 465 | 2525 => Detection::Proto(AppProto::Smtp),
        _ if line_end.is_none() => Detection::NeedMore,
        _ => Detection::Unknown,
    }
}

/// Identifies the protocol of one direction from its first bytes. `to_server` says which side sent
/// them; the ports are the flow's (server port = `dst_port`).
pub fn detect(
    data: &[u8],
    to_server: bool,
    dst_port: u16,
    src_port: u16,
    ip_proto: u8,
) -> Detection {
    if data.is_empty() {
        return Detection::NeedMore;
    }
    if ip_proto == IPPROTO_UDP {
        // DNS is the only UDP protocol parsed here; the server port decides (as in Suricata, a
        // flow first seen from port 53 towards a client port is not probed), the header must
        // agree. mDNS (5353) is a protocol of its own in EVE and not claimed here.
        let _ = src_port;
        if dst_port == 53 {
            return match dns_header_check(data, to_server, false) {
                Detection::NeedMore => Detection::Unknown,
                d => d,
            };
        }
        return Detection::Unknown;
    }
    if ip_proto != IPPROTO_TCP {
        return Detection::Unknown;
    }
    let mut need_more = false;
    let candidates = [
        if to_server {
            http_request(data)
        } else {
            http_response(data)
        },
        tls(data, to_server),
        banner(data, to_server, dst_port, src_port),
    ];
    for c in candidates {
        match c {
            Detection::Proto(p) => return Detection::Proto(p),
            Detection::NeedMore => need_more = true,
            Detection::Unknown => {}
        }
    }
    // DNS over TCP: a length prefix and a sane header, on the DNS port only (the header alone is
    // too weak a signal to claim arbitrary traffic).
    if dst_port == 53 || src_port == 53 {
        if data.len() < 2 + 12 {
            need_more = true;
        } else {
            let len = u16::from_be_bytes([data[0], data[1]]) as usize;
            if len >= 12 {
                if let Detection::Proto(p) = dns_header_sane(&data[2..], to_server) {
                    return Detection::Proto(p);
                }
            }
        }
    }
    if need_more {
        Detection::NeedMore
    } else {
        Detection::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_by_content_on_any_port() {
        assert_eq!(
            detect(b"GET / HTTP/1.1\r\n", true, 4444, 50000, 6),
            Detection::Proto(AppProto::Http)
        );
        assert_eq!(
            detect(b"HTTP/1.1 200 OK\r\n", false, 8080, 50000, 6),
            Detection::Proto(AppProto::Http)
        );
        assert_eq!(detect(b"GE", true, 80, 50000, 6), Detection::NeedMore);
        assert_eq!(
            detect(b"\x00\x01garbage-on-port-80", true, 80, 50000, 6),
            Detection::Unknown
        );
    }

    #[test]
    fn tls_ssh_smtp_ftp() {
        assert_eq!(
            detect(&[22, 3, 1, 0, 200, 1, 0], true, 8443, 5000, 6),
            Detection::Proto(AppProto::Tls)
        );
        assert_eq!(
            detect(&[22, 3, 3, 0, 80, 2], false, 443, 5000, 6),
            Detection::Proto(AppProto::Tls)
        );
        assert_eq!(detect(&[22, 3], true, 443, 5000, 6), Detection::NeedMore);
        assert_eq!(
            detect(b"SSH-2.0-OpenSSH_8.9\r\n", true, 2222, 5000, 6),
            Detection::Proto(AppProto::Ssh)
        );
        assert_eq!(
            detect(
                b"220 mail.example.com ESMTP Postfix\r\n",
                false,
                25,
                5000,
                6
            ),
            Detection::Proto(AppProto::Smtp)
        );
        assert_eq!(
            detect(b"220 (vsFTPd 3.0.3)\r\n", false, 21, 5000, 6),
            Detection::Proto(AppProto::Ftp)
        );
        assert_eq!(
            detect(b"220 welcome\r\n", false, 2121, 5000, 6),
            Detection::Unknown
        );
        assert_eq!(
            detect(b"+OK POP3 ready\r\n", false, 110, 5000, 6),
            Detection::Proto(AppProto::Pop3)
        );
        assert_eq!(
            detect(b"* OK IMAP4rev1\r\n", false, 143, 5000, 6),
            Detection::Proto(AppProto::Imap)
        );
    }

    #[test]
    fn dns_udp_and_tcp() {
        let q = [
            0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1,
        ];
        assert_eq!(
            detect(&q, true, 53, 40000, 17),
            Detection::Proto(AppProto::Dns)
        );
        assert_eq!(detect(&q, true, 5000, 40000, 17), Detection::Unknown);
        let mut tcp = vec![0, q.len() as u8];
        tcp.extend_from_slice(&q);
        assert_eq!(
            detect(&tcp, true, 53, 40000, 6),
            Detection::Proto(AppProto::Dns)
        );
    }
}
