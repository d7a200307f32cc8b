#![no_main]
// Input: a rules file (any bytes, read as lossy UTF-8).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ward_detect::fuzzing::rule_parser(data);
});
