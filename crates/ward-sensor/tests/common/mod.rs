//! Shared by the sensor's integration tests: run the sensor over a capture into memory.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use ward_sensor::config::{EveOutput, Input, SensorConfig};
use ward_sensor::eve_out::EveSink;
use ward_sensor::RunSummary;

pub fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<u8>>>);

impl Write for Collect {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs the sensor over one capture with `workers` workers; returns the EVE records and summary.
pub fn run_capture(path: &Path, workers: usize) -> (Vec<serde_json::Value>, RunSummary) {
    let config = SensorConfig {
        inputs: vec![Input::File(path.to_path_buf())],
        workers,
        eve: EveOutput::Null,
        progress: false,
        ..SensorConfig::default()
    };
    run_config(&config)
}

pub fn run_config(config: &SensorConfig) -> (Vec<serde_json::Value>, RunSummary) {
    let collect = Collect::default();
    let sink = EveSink::to_writer(Box::new(collect.clone()));
    let summary = ward_sensor::run_with_sink(config, sink, Arc::new(AtomicBool::new(false))).expect("sensor run");
    let bytes = collect.0.lock().unwrap().clone();
    let records = bytes
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).expect("every EVE line is JSON"))
        .collect();
    (records, summary)
}
