//! Real payloads cut from Zeek's captures (in `tests/fixtures/`, a few hundred bytes each) run
//! through the parsers, whole and one byte at a time, and compared field by field with the record
//! Suricata 8.0.6 wrote for the same capture (read from `../shared/data/oracle`, not copied).
//!
//! Our side is rendered with [`AppEvent::to_full_json`], so every field Suricata writes is
//! compared, `grouped`, `opt` and `ja4` included.

use std::path::Path;

use serde_json::Value;
use ward_proto::{AppEvent, AppState, Direction};

/// Nothing is left out: the full rendering covers every field of these records.
const UNMODELLED: &[&str] = &[];

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {} unreadable: {e}", path.display()))
}

fn strip(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for f in UNMODELLED {
                map.remove(*f);
            }
            map.values_mut().for_each(strip);
        }
        Value::Array(items) => items.iter_mut().for_each(strip),
        _ => {}
    }
}

/// The `kind` objects Suricata logged for a capture, in order.
fn oracle(capture: &str, kind: &str) -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/oracle/zeek/"
    )
    .to_string()
        + capture
        + ".eve.json";
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("oracle {path} unreadable: {e}"));
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event_type"] == kind)
        .map(|v| {
            let mut body = v[kind].clone();
            strip(&mut body);
            body
        })
        .collect()
}

fn bodies(events: &[AppEvent], kind: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e.to_event_body().event_type() == kind)
        .map(|e| e.to_full_json(None))
        .collect()
}

/// Runs a TCP exchange through [`AppState`], client bytes first then server bytes, either whole or
/// one byte at a time.
fn run_tcp(server_port: u16, to_server: &[u8], to_client: &[u8], bytewise: bool) -> Vec<AppEvent> {
    let mut app = AppState::new(6, 49422, server_port);
    let mut out = Vec::new();
    if bytewise {
        // Interleave the two directions byte by byte, client first, to stress both buffers.
        let (mut i, mut j) = (0, 0);
        while i < to_server.len() || j < to_client.len() {
            if i < to_server.len() {
                app.on_data(Direction::ToServer, &to_server[i..=i], &mut out);
                i += 1;
            }
            if j < to_client.len() && i >= to_server.len().min(j + 1) {
                app.on_data(Direction::ToClient, &to_client[j..=j], &mut out);
                j += 1;
            }
        }
    } else {
        app.on_data(Direction::ToServer, to_server, &mut out);
        app.on_data(Direction::ToClient, to_client, &mut out);
    }
    app.on_close(&mut out);
    out
}

#[test]
fn dns_txt_multiple_matches_suricata() {
    let mut app = AppState::new(17, 51946, 53);
    let mut out = Vec::new();
    app.on_data(
        Direction::ToServer,
        &fixture("dns-txt-multiple.request.bin"),
        &mut out,
    );
    app.on_data(
        Direction::ToClient,
        &fixture("dns-txt-multiple.response.bin"),
        &mut out,
    );
    let ours = bodies(&out, "dns");
    let expected = oracle("dns-txt-multiple.pcap", "dns");
    assert_eq!(ours.len(), 2);
    assert_eq!(ours, expected);
}

#[test]
fn dns_over_tcp_framing_gives_the_same_records() {
    let mut stream = Vec::new();
    for part in [
        "dns-txt-multiple.request.bin",
        "dns-txt-multiple.response.bin",
    ] {
        let msg = fixture(part);
        stream.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        stream.extend_from_slice(&msg);
    }
    let whole = run_tcp(53, &stream, &[], false);
    let bytewise = run_tcp(53, &stream, &[], true);
    assert_eq!(
        bodies(&whole, "dns"),
        oracle("dns-txt-multiple.pcap", "dns")
    );
    assert_eq!(whole, bytewise);
}

#[test]
fn http_gzip_exchange_matches_suricata() {
    let req = fixture("http-get-gzip.to-server.bin");
    let resp = fixture("http-get-gzip.to-client.bin");
    let whole = run_tcp(80, &req, &resp, false);
    assert_eq!(bodies(&whole, "http"), oracle("http/get-gzip.pcap", "http"));
    assert_eq!(whole, run_tcp(80, &req, &resp, true));
    // The detection buffers: decompressed JSON body, raw request header block.
    let tx = whole
        .iter()
        .find_map(|e| {
            if let AppEvent::Http(t) = e {
                Some(t)
            } else {
                None
            }
        })
        .unwrap();
    let body = &tx.response.as_ref().unwrap().body;
    assert!(
        body.starts_with(b"{"),
        "response body not decompressed: {:?}",
        String::from_utf8_lossy(body)
    );
    assert!(String::from_utf8_lossy(body).contains("\"gzipped\": true"));
    assert!(tx
        .request
        .as_ref()
        .unwrap()
        .raw_headers
        .starts_with(b"User-Agent: curl/7.29.0\r\n"));
}

#[test]
fn tls_ecdsa_handshake_matches_suricata() {
    let c = fixture("tls-ecdsa-cert.to-server.bin");
    let s = fixture("tls-ecdsa-cert.to-client.bin");
    let whole = run_tcp(443, &c, &s, false);
    assert_eq!(bodies(&whole, "tls"), oracle("tls/ecdsa-cert.pcap", "tls"));
    assert_eq!(whole, run_tcp(443, &c, &s, true));
    let info = whole
        .iter()
        .find_map(|e| {
            if let AppEvent::Tls(i) = e {
                Some(i)
            } else {
                None
            }
        })
        .unwrap();
    assert!(info.certs.len() >= 2, "the server sent a chain");
}
