#![no_main]
// Input: a sensor's batch body as sent (NDJSON, or gzip of it), as POST /api/v1/events reads it.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ward_hub::fuzz::ingest(data);
});
