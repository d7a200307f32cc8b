//! Shared types for every ward crate, and nothing else: no I/O, no sockets, no files.
//!
//! * [`eve`]: the Suricata EVE JSON records the sensor writes and the hub ingests. Field names
//!   and types follow Suricata 8 exactly (checked against its schema in the sensor's tests), so
//!   SIEM pipelines and `jq` scripts written for Suricata work unchanged on ward's output.
//! * [`time`]: the timestamp type of packets and events, formatted the way EVE does.
//! * [`tlp`]: Traffic Light Protocol 2.0 levels and their standard STIX marking definitions.
//!
//! Higher crates (packet, proto, detect, sensor, hub, scan) add their own modules here only for
//! types that cross a crate boundary; everything else stays in the crate that owns it.

pub mod eve;
pub mod time;
pub mod tlp;

pub use time::Timestamp;
