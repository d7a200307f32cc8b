//! Property tests: no input makes a parser panic, and how a stream is cut into chunks never
//! changes what the parsers produce.

use proptest::prelude::*;
use ward_proto::{AppEvent, AppState, Direction};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .expect("fixture")
}

/// Feeds `data` cut at `cuts` (positions, any order, out-of-range ignored).
fn feed_cut(
    app: &mut AppState,
    dir: Direction,
    data: &[u8],
    cuts: &[usize],
    out: &mut Vec<AppEvent>,
) {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.push(0);
    points.push(data.len());
    points.sort_unstable();
    points.dedup();
    for w in points.windows(2) {
        app.on_data(dir, &data[w[0]..w[1]], out);
    }
}

fn run(port: u16, c: &[u8], s: &[u8], c_cuts: &[usize], s_cuts: &[usize]) -> Vec<AppEvent> {
    let mut app = AppState::new(6, 40000, port);
    let mut out = Vec::new();
    feed_cut(&mut app, Direction::ToServer, c, c_cuts, &mut out);
    feed_cut(&mut app, Direction::ToClient, s, s_cuts, &mut out);
    app.on_close(&mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn dns_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        ward_proto::replay::fuzz_dns(&data);
    }

    #[test]
    fn http_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        ward_proto::replay::fuzz_http(&data);
    }

    #[test]
    fn tls_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        ward_proto::replay::fuzz_tls(&data);
    }

    #[test]
    fn detect_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64), to_server: bool, dp: u16, sp: u16, proto in prop_oneof![Just(6u8), Just(17u8), any::<u8>()]) {
        let _ = ward_proto::detect(&data, to_server, dp, sp, proto);
    }

    /// Real DNS bytes with a few bytes overwritten: compression pointers and counts go wild.
    #[test]
    fn mutated_dns_never_panics(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut msg = fixture("dns-txt-multiple.response.bin");
        for (at, b) in edits {
            let n = msg.len();
            msg[at % n] = b;
        }
        ward_proto::replay::fuzz_dns(&msg);
    }

    /// Real TLS handshake bytes with a few bytes overwritten.
    #[test]
    fn mutated_tls_never_panics(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut c = fixture("tls-ecdsa-cert.to-server.bin");
        let mut s = fixture("tls-ecdsa-cert.to-client.bin");
        for (at, b) in edits {
            let (n, m) = (c.len(), s.len());
            c[at % n] = b;
            s[(at / 7) % m] = b;
        }
        run(443, &c, &s, &[], &[]);
    }

    #[test]
    fn http_chunking_does_not_matter(c_cuts in proptest::collection::vec(any::<usize>(), 0..12), s_cuts in proptest::collection::vec(any::<usize>(), 0..12)) {
        let c = fixture("http-get-gzip.to-server.bin");
        let s = fixture("http-get-gzip.to-client.bin");
        prop_assert_eq!(run(80, &c, &s, &[], &[]), run(80, &c, &s, &c_cuts, &s_cuts));
    }

    #[test]
    fn tls_chunking_does_not_matter(c_cuts in proptest::collection::vec(any::<usize>(), 0..12), s_cuts in proptest::collection::vec(any::<usize>(), 0..12)) {
        let c = fixture("tls-ecdsa-cert.to-server.bin");
        let s = fixture("tls-ecdsa-cert.to-client.bin");
        prop_assert_eq!(run(443, &c, &s, &[], &[]), run(443, &c, &s, &c_cuts, &s_cuts));
    }

    #[test]
    fn dns_tcp_chunking_does_not_matter(cuts in proptest::collection::vec(any::<usize>(), 0..12)) {
        let mut stream = Vec::new();
        for part in ["dns-txt-multiple.request.bin", "dns-txt-multiple.response.bin"] {
            let msg = fixture(part);
            stream.extend_from_slice(&(msg.len() as u16).to_be_bytes());
            stream.extend_from_slice(&msg);
        }
        prop_assert_eq!(run(53, &stream, &[], &[], &[]), run(53, &stream, &[], &cuts, &[]));
    }
}
