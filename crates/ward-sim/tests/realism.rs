//! The generated traffic checked with the parsers real sensors use: every TCP stream is
//! reassembled from a generated capture, HTTP requests and responses are parsed with httparse,
//! TLS records and handshakes with tls-parser, certificates with x509-parser. A generator bug
//! that produced bytes no parser accepts would make the sensor benchmark meaningless.

use std::collections::HashMap;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use tls_parser::{TlsExtension, TlsMessage, TlsMessageHandshake};
use ward_sim::mix::{generate, Options};

type Key = (Vec<u8>, Vec<u8>, u16, u16);

/// Payload bytes per direction of every TCP flow, in capture order (the generator never
/// reorders or drops segments, so concatenation is reassembly).
fn streams(buf: &[u8]) -> HashMap<Key, Vec<u8>> {
    let mut out: HashMap<Key, Vec<u8>> = HashMap::new();
    let mut off = 24;
    while off + 16 <= buf.len() {
        let cap = u32::from_le_bytes(buf[off + 8..off + 12].try_into().unwrap()) as usize;
        let orig = u32::from_le_bytes(buf[off + 12..off + 16].try_into().unwrap()) as usize;
        let data = &buf[off + 16..off + 16 + cap];
        off += 16 + cap;
        if cap != orig {
            continue;
        }
        let Ok(p) = SlicedPacket::from_ethernet(data) else { continue };
        let (src, dst) = match &p.net {
            Some(NetSlice::Ipv4(ip)) if !ip.header().is_fragmenting_payload() => {
                (ip.header().source().to_vec(), ip.header().destination().to_vec())
            }
            Some(NetSlice::Ipv6(ip)) => (ip.header().source().to_vec(), ip.header().destination().to_vec()),
            _ => continue,
        };
        if let Some(TransportSlice::Tcp(t)) = &p.transport {
            if t.rst() {
                continue;
            }
            out.entry((src, dst, t.source_port(), t.destination_port())).or_default().extend_from_slice(t.payload());
        }
    }
    out
}

fn capture() -> Vec<u8> {
    let mut buf = Vec::new();
    let opts = Options { target_bytes: 6 << 20, seed: 77, concurrency: 200, ..Default::default() };
    generate(&mut buf, &opts).unwrap();
    buf
}

/// Parses every complete response of a server stream in turn, using Content-Length or the
/// chunked framing to find where the next begins; returns how many were complete.
fn walk_responses(mut data: &[u8]) -> u32 {
    let mut n_ok = 0;
    loop {
        if data.is_empty() {
            return n_ok;
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        let head = match resp.parse(data) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return n_ok,
            Err(e) => panic!("bad http response: {e}: {:?}", String::from_utf8_lossy(&data[..data.len().min(80)])),
        };
        let code = resp.code.unwrap();
        assert!([200, 302, 304, 404].contains(&code), "status {code}");
        let chunked = resp.headers.iter().any(|h| h.name == "Transfer-Encoding" && h.value == b"chunked");
        let mut body = &data[head..];
        if chunked {
            loop {
                match httparse::parse_chunk_size(body) {
                    Ok(httparse::Status::Complete((at, size))) => {
                        let end = at + size as usize + 2;
                        if body.len() < end {
                            return n_ok;
                        }
                        assert_eq!(&body[end - 2..end], b"\r\n", "chunk not followed by CRLF");
                        body = &body[end..];
                        if size == 0 {
                            break;
                        }
                    }
                    Ok(httparse::Status::Partial) => return n_ok,
                    Err(_) => panic!("bad chunk size line"),
                }
            }
        } else if code != 304 {
            let cl = resp.headers.iter().find(|h| h.name == "Content-Length").expect("a length or chunked");
            let len: usize = std::str::from_utf8(cl.value).unwrap().parse().unwrap();
            if body.len() < len {
                return n_ok;
            }
            body = &body[len..];
        }
        // What follows a complete response is nothing or the next response.
        assert!(body.is_empty() || body.starts_with(b"HTTP/1.1 "), "response framing is off");
        n_ok += 1;
        data = body;
    }
}

#[test]
fn http_streams_parse_with_httparse() {
    let buf = capture();
    let s = streams(&buf);
    let (mut requests, mut responses) = (0, 0);
    for ((_, _, sport, dport), data) in &s {
        if data.len() < 64 {
            continue;
        }
        if *dport == 80 {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(data) {
                Ok(httparse::Status::Complete(_)) => {
                    assert!(matches!(req.method, Some("GET") | Some("POST")));
                    assert!(req.headers.iter().any(|h| h.name == "Host"));
                    assert!(req.headers.iter().any(|h| h.name == "User-Agent"));
                    requests += 1;
                }
                Ok(httparse::Status::Partial) => {}
                Err(e) => panic!("bad http request: {e}: {:?}", String::from_utf8_lossy(&data[..64])),
            }
        } else if *sport == 80 {
            responses += walk_responses(data);
        }
    }
    assert!(requests > 10 && responses > 10, "{requests} requests, {responses} responses");
}

#[test]
fn tls_streams_parse_with_tls_parser_and_certificates_with_x509_parser() {
    let buf = capture();
    let s = streams(&buf);
    let (mut hellos, mut certs, mut tls13) = (0, 0, 0);
    for ((_, _, sport, dport), data) in &s {
        if *dport != 443 && *sport != 443 {
            continue;
        }
        let mut rest: &[u8] = data;
        let mut after_ccs = false;
        let mut sni = None;
        while let Ok((next, rec)) = tls_parser::parse_tls_raw_record(rest) {
            rest = next;
            match rec.hdr.record_type.0 {
                20 => after_ccs = true,
                22 if !after_ccs => {
                    let (_, msgs) = tls_parser::parse_tls_record_with_header(rec.data, &rec.hdr)
                        .unwrap_or_else(|e| panic!("bad handshake record: {e:?}"));
                    for m in msgs {
                        match m {
                            TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)) => {
                                let (_, exts) = tls_parser::parse_tls_client_hello_extensions(ch.ext.unwrap()).unwrap();
                                for e in exts {
                                    if let TlsExtension::SNI(names) = e {
                                        sni = Some(String::from_utf8(names[0].1.to_vec()).unwrap());
                                    }
                                }
                                assert!(sni.is_some(), "client hello without sni");
                                hellos += 1;
                            }
                            TlsMessage::Handshake(TlsMessageHandshake::ServerHello(sh))
                                if sh.ext.is_some_and(|e| e.windows(4).any(|w| w == [0, 43, 0, 2])) => {
                                    tls13 += 1;
                                }
                            TlsMessage::Handshake(TlsMessageHandshake::Certificate(c)) => {
                                assert_eq!(c.cert_chain.len(), 2);
                                let (_, leaf) = x509_parser::parse_x509_certificate(c.cert_chain[0].data).unwrap();
                                let (_, ca) = x509_parser::parse_x509_certificate(c.cert_chain[1].data).unwrap();
                                assert_eq!(leaf.issuer(), ca.subject());
                                assert!(leaf.subject().iter_common_name().next().is_some());
                                certs += 1;
                            }
                            _ => {}
                        }
                    }
                }
                21..=23 => {}
                t => panic!("unexpected tls record type {t}"),
            }
        }
    }
    assert!(hellos > 10 && certs > 5 && tls13 > 5, "{hellos} hellos, {certs} certificates, {tls13} tls1.3");
}
