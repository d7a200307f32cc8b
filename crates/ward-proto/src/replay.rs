//! Drives the parsers from one byte string, for fuzz targets and property tests: the input is
//! cut into chunks that alternate or pick their direction, fed to a flow, closed, and every event
//! rendered to EVE JSON (so the renderers are exercised too).
//!
//! Script format: repeated `[control][len][bytes...]`; bit 0 of `control` picks the direction
//! (0 to server, 1 to client), bit 1 says "a gap of `len` bytes" instead of data, and `len` is one
//! byte. A truncated last chunk takes what is left.

use crate::app::{AppEvent, AppState};
use crate::detect::{IPPROTO_TCP, IPPROTO_UDP};
use crate::Direction;

fn chunks(script: &[u8]) -> impl Iterator<Item = (Direction, bool, &[u8], u64)> {
    let mut rest = script;
    std::iter::from_fn(move || {
        let (&control, after) = rest.split_first()?;
        let (&len, after) = after.split_first().unwrap_or((&0, &[]));
        let dir = if control & 1 == 0 {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let gap = control & 2 != 0;
        if gap {
            rest = after;
            return Some((dir, true, &[][..], u64::from(len)));
        }
        let take = (len as usize).min(after.len());
        let (data, tail) = after.split_at(take);
        rest = tail;
        Some((dir, false, data, 0))
    })
}

fn render(events: &[AppEvent]) -> usize {
    events
        .iter()
        .map(|e| {
            let body = serde_json::to_string(&e.to_event_body())
                .map(|s| s.len())
                .unwrap_or(0);
            body + e.to_full_json(None).to_string().len()
        })
        .sum()
}

/// Feeds a script to a TCP flow on `server_port` (80 for HTTP, 443 for TLS, 53 for DNS) and
/// returns the events.
pub fn replay_tcp(script: &[u8], server_port: u16) -> Vec<AppEvent> {
    let mut app = AppState::new(IPPROTO_TCP, 40000, server_port);
    let mut out = Vec::new();
    for (dir, gap, data, len) in chunks(script) {
        if gap {
            app.on_gap(dir, len, &mut out);
        } else {
            app.on_data(dir, data, &mut out);
        }
    }
    app.on_close(&mut out);
    render(&out);
    out
}

/// Fuzz entry for HTTP: a script on port 80, plus the raw bytes as one request stream.
pub fn fuzz_http(data: &[u8]) {
    replay_tcp(data, 80);
    let mut s = crate::http::HttpState::new();
    let mut out = Vec::new();
    s.on_data(Direction::ToServer, data, &mut out);
    s.on_data(Direction::ToClient, data, &mut out);
    s.on_close(&mut out);
    render(&out);
}

/// Fuzz entry for TLS: a script on port 443, plus the raw bytes as both directions' streams.
pub fn fuzz_tls(data: &[u8]) {
    replay_tcp(data, 443);
    let mut s = crate::tls::TlsState::new();
    let mut out = Vec::new();
    s.on_data(Direction::ToServer, data, &mut out);
    s.on_data(Direction::ToClient, data, &mut out);
    s.on_close(&mut out);
    render(&out);
    let _ = crate::tls::parser::parse_client_hello(data);
    let _ = crate::tls::parser::parse_server_hello(data);
    let _ = crate::tls::parser::parse_certificate(data);
}

/// Fuzz entry for DNS: the bytes as one UDP message, as a TCP stream, and as a UDP flow.
pub fn fuzz_dns(data: &[u8]) {
    if let Ok(m) = crate::dns::parse_udp(data) {
        let _ = serde_json::to_string(&crate::dns::eve::to_eve(&m, 0));
    }
    let mut tcp = crate::dns::DnsTcpState::new();
    let mut out = Vec::new();
    tcp.on_data(Direction::ToServer, data, &mut out);
    let mut udp = AppState::new(IPPROTO_UDP, 40000, 53);
    udp.on_data(Direction::ToServer, data, &mut out);
    render(&out);
}
