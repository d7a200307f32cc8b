//! Several captures in one run: each is its own capture, so a file with newer timestamps must
//! not change what a later file with older timestamps produces (regression: the reader kept the
//! previous file's clock, and the workers timed out every flow of the next file at once).

mod common;

use ward_sensor::config::{EveOutput, Input, SensorConfig};

fn http_records(inputs: &[&str], workers: usize) -> usize {
    let data = common::shared_data().join("pcaps/zeek");
    let config = SensorConfig {
        inputs: inputs.iter().map(|p| Input::File(data.join(p))).collect(),
        workers,
        eve: EveOutput::Null,
        progress: false,
        ..SensorConfig::default()
    };
    let (records, summary) = common::run_config(&config);
    assert!(summary.capture_errors.is_empty(), "{:?}", summary.capture_errors);
    records.iter().filter(|r| r["event_type"] == "http").count()
}

#[test]
fn a_newer_capture_before_an_older_one_does_not_time_out_its_flows() {
    // 2023 timestamps, then an older capture of 1000 requests on one connection.
    let newer = "contentline/nvt-line-limit-crlf-heap-buffer-overflow.pcap.gz";
    let older = "http/1000-requests-one-dropped-response.pcap.gz";
    let alone = http_records(&[older], 1);
    assert!(alone > 0);
    for workers in [1, 2] {
        assert_eq!(http_records(&[newer, older], workers), alone, "workers {workers}");
    }
}
