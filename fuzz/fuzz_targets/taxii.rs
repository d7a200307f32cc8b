#![no_main]
// Input: a TAXII query string or `next` cursor, or a POST envelope (untrusted, from the network).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ward_hub::fuzz::taxii(data);
});
