//! A capture that is truncated mid-record, has a bad magic, or is empty gives a clear error
//! (file, byte offset, what is wrong) in the run summary — which makes `ward sensor` exit
//! non-zero — after everything readable was processed.

mod common;

use std::path::{Path, PathBuf};

use ward_sensor::config::{EveOutput, Input, SensorConfig};

fn run(paths: &[&Path]) -> (Vec<serde_json::Value>, ward_sensor::RunSummary) {
    let config = SensorConfig {
        inputs: paths.iter().map(|p| Input::File(p.to_path_buf())).collect(),
        workers: 1,
        eve: EveOutput::Null,
        progress: false,
        ..SensorConfig::default()
    };
    common::run_config(&config)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn flows(records: &[serde_json::Value]) -> usize {
    records.iter().filter(|r| r["event_type"] == "flow").count()
}

#[test]
fn truncated_capture_is_processed_up_to_the_cut_then_reported_with_its_offset() {
    let whole = std::fs::read(common::shared_data().join("pcaps/zeek/tls/https-to-http.pcap")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = write(dir.path(), "cut.pcap", &whole[..whole.len() - 10]);
    let (records, summary) = run(&[&cut]);
    assert!(summary.counters.capture_packets > 5, "packets before the cut were read");
    assert!(flows(&records) >= 1 && records.iter().any(|r| r["event_type"] == "tls" || r["event_type"] == "anomaly"));
    assert_eq!(summary.capture_errors.len(), 1, "{:?}", summary.capture_errors);
    let err = &summary.capture_errors[0];
    assert!(err.contains("cut.pcap") && err.contains("truncated"), "{err}");
    assert!(err.contains("byte "), "the error gives the offset: {err}");
}

#[test]
fn bad_magic_and_empty_files_are_errors_and_the_other_inputs_still_run() {
    let good = common::shared_data().join("pcaps/zeek/dns53.pcap");
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.pcap", b"\x00\x01\x02\x03 this is not a capture at all");
    let empty = write(dir.path(), "empty.pcap", b"");
    let (records, summary) = run(&[&bad, &good, &empty]);
    assert_eq!(flows(&records), 1, "the good capture in between was processed");
    assert_eq!(summary.capture_errors.len(), 2, "{:?}", summary.capture_errors);
    let bad_err = summary.capture_errors.iter().find(|e| e.contains("bad.pcap")).expect("bad magic reported");
    assert!(bad_err.contains("magic") && bad_err.contains("byte 0"), "{bad_err}");
    let empty_err = summary.capture_errors.iter().find(|e| e.contains("empty.pcap")).expect("empty file reported");
    assert!(empty_err.contains("empty"), "{empty_err}");
}
