#![no_main]
// Input: a script of TCP segments (see ward_packet::stream::replay_script).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ward_packet::stream::replay_script(data);
});
