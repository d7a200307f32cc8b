#![no_main]
// Input: a JSON request body, read as every API request body type and validated.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ward_hub::fuzz::api_json(data);
});
