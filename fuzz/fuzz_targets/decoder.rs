#![no_main]
use ward_packet::{capture::{LinkType, RawPacket}, decode::Decoder};
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (mut dec, linktype) = (Decoder::new(), LinkType::from_linktype([0, 1, 9, 101, 113, 228, 229, 276][data.first().copied().unwrap_or(0) as usize % 8]));
    for frame in data.get(1..).unwrap_or_default().split(|b| *b == 0xa5) { let _ = dec.decode(&RawPacket { ts: Default::default(), linktype, data: frame, orig_len: frame.len() as u32 }); }
});
