//! The ward sensor: the pipeline every election office runs on its network.
//!
//! It wires the lower crates together: [`ward_packet`] captures, decodes and follows flows and
//! TCP streams; [`ward_proto`] parses DNS, HTTP and TLS from the reassembled bytes; this crate
//! shards packets over worker threads ([`shard`], [`pipeline`]), keeps each flow's app-layer
//! state ([`worker`]), runs detection on packets, streams and transactions ([`detect`]: rules,
//! indicators, scan detector, live reload), and writes Suricata EVE JSON ([`eve_out`]) plus run
//! counters ([`stats`]). The process's signals (stop, reload) are handled in one place:
//! [`signals`].
//!
//! Towards the hub: [`hubsink`] picks what is relayed from the EVE stream (alerts, anomalies,
//! hourly contact records) into the on-disk [`spool`]; [`relay`] enrolls the sensor and
//! forwards the spool in acknowledged, idempotent batches; [`indicator_sync`] follows the hub's
//! indicator feed and swaps it into the live matcher.
//!
//! Threading: one reader thread, `workers` packet threads, each owning its own flow table, so
//! the per-packet path takes no lock. Workers only meet at the EVE sink, once per batch.

pub mod config;
pub mod detect;
pub mod eve_out;
pub mod hubsink;
pub mod indicator_sync;
pub mod pipeline;
pub mod progress;
pub mod relay;
pub mod shard;
pub mod signals;
pub mod spool;
pub mod stats;
mod worker;

pub use config::SensorConfig;
/// The detection engine, re-exported so the binary and tests use the same version.
pub use ward_detect;
pub use pipeline::{run, run_with_sink};
pub use stats::{Counters, RunSummary};

/// Why a sensor run could not start or finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SensorError {
    #[error("nothing to read: give --pcap PATH or --interface IFACE")]
    NoInput,
    #[error("invalid filter: {0}")]
    Filter(String),
    #[error("eve output: {0}")]
    Output(std::io::Error),
    #[error("cannot start a worker thread: {0}")]
    Thread(std::io::Error),
    #[error("a worker thread panicked (a bug: please report it with the capture that caused it)")]
    WorkerPanicked,
}
