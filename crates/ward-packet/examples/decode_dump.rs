//! Prints what the decoder makes of each frame of a capture: `decode_dump FILE [MAX]`.

use ward_packet::capture::CaptureFile;
use ward_packet::decode::Decoder;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: decode_dump FILE [MAX]");
        std::process::exit(2);
    };
    let max: usize = args
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(usize::MAX);
    let mut cap = match CaptureFile::open(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let mut dec = Decoder::new();
    let mut n = 0;
    loop {
        let raw = match cap.next_packet() {
            Ok(Some(raw)) => raw,
            Ok(None) => break,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        };
        n += 1;
        if n > max {
            break;
        }
        let (lt, caplen) = (raw.linktype, raw.data.len());
        let res = dec.decode(&raw);
        print!("{n} {lt:?} len={caplen} {:?}", res.status);
        for (p, t) in res.layers() {
            print!(
                " | {:?} {}:{} > {}:{} proto={} wire={} vlan={:?} payload={}",
                t,
                p.src,
                p.src_port,
                p.dst,
                p.dst_port,
                p.proto,
                p.wire_len,
                p.vlan,
                p.payload.len()
            );
        }
        for a in res.anomalies {
            print!(" !{}", a.event);
        }
        println!();
    }
    println!("{:?}", dec.stats);
}
