#![no_main]
// Input: one byte choosing the parser (CSV list, MISP manifest, MISP event, TAXII envelope),
// then what a feed's server answered.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ward_hub::fuzz::feeds(data);
});
