//! SNMP over UDP: one SNMPv2c GetRequest for sysDescr.0 with the community "public". An answer
//! means SNMP is exposed and the default community string works.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

/// Largest SNMP answer read (a sysDescr is a few hundred bytes).
const MAX_SNMP_REPLY: usize = 4096;

/// SNMPv2c GetRequest, community "public", request id 0x5741, OID 1.3.6.1.2.1.1.1.0.
pub const GET_SYSDESCR_PUBLIC: [u8; 41] = [
    0x30, 0x27, 0x02, 0x01, 0x01, 0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', 0xa0, 0x1a, 0x02, 0x02, 0x57, 0x41, 0x02, 0x01,
    0x00, 0x02, 0x01, 0x00, 0x30, 0x0e, 0x30, 0x0c, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00, 0x05, 0x00,
];

/// The sysDescr of a GetResponse to [`GET_SYSDESCR_PUBLIC`], or `None` if the bytes are not one.
pub fn parse_response(reply: &[u8]) -> Option<String> {
    if reply.len() < 20 || reply[0] != 0x30 || !reply.windows(8).any(|w| w == b"\x04\x06public") {
        return None;
    }
    // GetResponse PDU tag 0xa2 carrying our request id
    if !reply.windows(5).any(|w| w[0] == 0xa2) || !reply.windows(4).any(|w| w == [0x02, 0x02, 0x57, 0x41]) {
        return None;
    }
    let oid = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00];
    let at = reply.windows(oid.len()).position(|w| w == oid)? + oid.len();
    let (&tag, rest) = reply.get(at..)?.split_first()?;
    if tag != 0x04 {
        return Some(String::new());
    }
    let (&len, rest) = rest.split_first()?;
    let (len, rest) = if len & 0x80 == 0 {
        (len as usize, rest)
    } else {
        let n = (len & 0x7f) as usize;
        let bytes = rest.get(..n)?;
        (bytes.iter().fold(0usize, |acc, b| acc << 8 | *b as usize), &rest[n..])
    };
    Some(crate::probe::printable(rest.get(..len.min(rest.len()))?))
}

/// Ask one address; `Some(sysDescr)` when SNMP answers with the public community.
pub async fn probe(ip: IpAddr, port: u16, wait: Duration) -> Option<String> {
    let bind: SocketAddr = if ip.is_ipv4() { "0.0.0.0:0".parse().ok()? } else { "[::]:0".parse().ok()? };
    let socket = UdpSocket::bind(bind).await.ok()?;
    socket.connect(SocketAddr::new(ip, port)).await.ok()?;
    socket.send(&GET_SYSDESCR_PUBLIC).await.ok()?;
    let mut buf = vec![0u8; MAX_SNMP_REPLY];
    let n = tokio::time::timeout(wait, socket.recv(&mut buf)).await.ok()?.ok()?;
    parse_response(&buf[..n])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lengths_are_consistent_and_responses_parse() {
        assert_eq!(GET_SYSDESCR_PUBLIC[1] as usize + 2, GET_SYSDESCR_PUBLIC.len());
        let mut reply = GET_SYSDESCR_PUBLIC.to_vec();
        reply[13] = 0xa2;
        // replace NULL value with OCTET STRING "Linux"
        reply.truncate(reply.len() - 2);
        reply.extend_from_slice(&[0x04, 0x05, b'L', b'i', b'n', b'u', b'x']);
        assert_eq!(parse_response(&reply).as_deref(), Some("Linux"));
        assert_eq!(parse_response(&GET_SYSDESCR_PUBLIC), None);
        assert_eq!(parse_response(b"garbage garbage garbage"), None);
    }

    #[tokio::test]
    async fn silent_port_times_out() {
        assert_eq!(probe("127.0.71.9".parse().unwrap(), 16161, Duration::from_millis(200)).await, None);
    }
}
