#![no_main]
// Input: a client certificate file (PEM) an analyst gives to bind an API key (untrusted).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ward_hub::fuzz::client_cert(data);
});
