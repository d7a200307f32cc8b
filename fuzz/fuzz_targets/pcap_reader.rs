#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(mut cap) = ward_packet::capture::CaptureFile::from_reader(Box::new(std::io::Cursor::new(data.to_vec())), "fuzz") else { return };
    while let Ok(Some(_)) = cap.next_packet() {}
});
