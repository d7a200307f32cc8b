#![no_main]
// Input: a STIX pattern, or a STIX object as JSON (TAXII POST, feeds, peers).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ward_hub::fuzz::stix(data);
});
