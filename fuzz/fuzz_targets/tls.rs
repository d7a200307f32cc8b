#![no_main]
// Input: raw bytes, also read as a chunk script (see ward_proto::replay).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ward_proto::replay::fuzz_tls(data);
});
