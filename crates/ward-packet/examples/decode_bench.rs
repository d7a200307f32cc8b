//! Measures capture reading and decoding throughput on one large capture file:
//! `decode_bench FILE` reads the file once (read only), then again reading and decoding.

use std::time::Instant;

use ward_packet::capture::CaptureFile;
use ward_packet::decode::Decoder;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: decode_bench FILE");
        std::process::exit(2);
    };
    let run = |decode: bool| -> (u64, u64, f64) {
        let mut cap = CaptureFile::open(&path).unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(1)
        });
        let mut dec = Decoder::new();
        let (mut pkts, mut bytes, mut layers) = (0u64, 0u64, 0u64);
        let start = Instant::now();
        loop {
            match cap.next_packet() {
                Ok(Some(raw)) => {
                    pkts += 1;
                    bytes += raw.data.len() as u64;
                    if decode {
                        layers += dec.decode(&raw).len() as u64;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    eprintln!("error: {e}");
                    break;
                }
            }
        }
        std::hint::black_box(layers);
        (pkts, bytes, start.elapsed().as_secs_f64())
    };
    for (label, decode) in [("read", false), ("read+decode", true)] {
        let (pkts, bytes, secs) = run(decode);
        println!(
            "{label}: {pkts} packets, {:.1} MB in {secs:.3} s: {:.2} Mpkt/s, {:.2} Gbit/s",
            bytes as f64 / 1e6,
            pkts as f64 / secs / 1e6,
            bytes as f64 * 8.0 / secs / 1e9
        );
    }
}
