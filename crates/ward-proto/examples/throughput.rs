//! Rough single-core throughput of the parsers on real payloads (the test fixtures), for the
//! report and for spotting regressions: `cargo run --release -p ward-proto --example throughput`.

use std::time::Instant;

use ward_proto::{AppState, Direction};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .expect("fixture")
}

fn measure(label: &str, bytes_per_round: usize, rounds: u32, mut round: impl FnMut() -> usize) {
    let start = Instant::now();
    let mut events = 0;
    for _ in 0..rounds {
        events += round();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{label:<44} {:>10.0} rounds/s {:>8.1} MB/s ({events} events)",
        f64::from(rounds) / secs,
        (bytes_per_round as f64 * f64::from(rounds)) / secs / 1e6
    );
}

fn flow(port: u16, c: &[u8], s: &[u8], eve: bool) -> usize {
    let mut app = AppState::new(6, 40000, port);
    let mut out = Vec::new();
    app.on_data(Direction::ToServer, c, &mut out);
    app.on_data(Direction::ToClient, s, &mut out);
    app.on_close(&mut out);
    if eve {
        for e in &out {
            std::hint::black_box(serde_json::to_string(&e.to_event_body()).ok());
        }
    }
    out.len()
}

fn main() {
    let dns = fixture("dns-txt-multiple.response.bin");
    measure(
        "dns parse_udp (508-byte response)",
        dns.len(),
        200_000,
        || usize::from(ward_proto::dns::parse_udp(std::hint::black_box(&dns)).is_ok()),
    );
    measure("dns parse_udp + EVE json", dns.len(), 100_000, || {
        let m = ward_proto::dns::parse_udp(&dns).expect("fixture parses");
        std::hint::black_box(serde_json::to_string(&ward_proto::dns::eve::to_eve(&m, 1)).ok());
        1
    });
    let (hc, hs) = (
        fixture("http-get-gzip.to-server.bin"),
        fixture("http-get-gzip.to-client.bin"),
    );
    measure(
        "http flow (get + gzip response), detect+parse",
        hc.len() + hs.len(),
        100_000,
        || flow(80, &hc, &hs, false),
    );
    measure("http flow + EVE json", hc.len() + hs.len(), 100_000, || {
        flow(80, &hc, &hs, true)
    });
    let (tc, ts) = (
        fixture("tls-ecdsa-cert.to-server.bin"),
        fixture("tls-ecdsa-cert.to-client.bin"),
    );
    measure(
        "tls handshake (hellos, 2 certs, x509)",
        tc.len() + ts.len(),
        20_000,
        || flow(443, &tc, &ts, false),
    );
    measure(
        "tls handshake + EVE json",
        tc.len() + ts.len(),
        20_000,
        || flow(443, &tc, &ts, true),
    );
    // Bulk body streaming: one response with a 10 MB body in 1460-byte segments.
    let body_chunk = vec![b'x'; 1460];
    let rounds = 7_000u32;
    let start = Instant::now();
    let mut app = AppState::new(6, 40000, 80);
    let mut out = Vec::new();
    app.on_data(
        Direction::ToServer,
        b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n",
        &mut out,
    );
    app.on_data(
        Direction::ToClient,
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            1460 * rounds
        )
        .as_bytes(),
        &mut out,
    );
    for _ in 0..rounds {
        app.on_data(Direction::ToClient, &body_chunk, &mut out);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{:<44} {:>8.1} MB/s",
        "http body streaming (1460-byte segments)",
        1460.0 * f64::from(rounds) / secs / 1e6
    );
}
