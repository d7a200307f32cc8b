#![no_main]
// Input: rule options, a NUL byte, then the payload/buffers the rule is run against.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ward_detect::fuzzing::rule_options(data);
});
