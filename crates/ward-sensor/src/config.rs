//! What a sensor run is told to do: where packets come from, how many workers, where EVE goes.

use std::path::PathBuf;

/// Where packets come from.
#[derive(Debug, Clone)]
pub enum Input {
    /// A pcap or pcapng file (`.gz` accepted). Each file is its own capture: flows do not span
    /// files, and every flow still open at the end of a file is logged with reason `shutdown`.
    File(PathBuf),
    /// A live interface (AF_PACKET).
    Interface(String),
}

/// Where EVE records go.
#[derive(Debug, Clone)]
pub enum EveOutput {
    Stdout,
    File(PathBuf),
    /// Discard (benchmarks).
    Null,
}

/// Which EVE record types are written. Alerts and anomalies are always on.
#[derive(Debug, Clone)]
pub struct EveTypes {
    pub flow: bool,
    pub dns: bool,
    pub http: bool,
    pub tls: bool,
    pub stats: bool,
    /// What alert records carry beyond the default.
    pub alert: AlertOutput,
}

impl Default for EveTypes {
    fn default() -> Self {
        EveTypes { flow: true, dns: true, http: true, tls: true, stats: true, alert: AlertOutput::default() }
    }
}

/// Suricata's `eve-log` alert options; all off by default, as in Suricata 8.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertOutput {
    /// `payload`: the matched packet's payload, or the stream's bytes for a stream match, in
    /// base64, with `stream` (1 for stream data).
    pub payload: bool,
    /// `payload-printable`: the same as text (with `stream`).
    pub payload_printable: bool,
    /// `packet`: the whole packet in base64, with `packet_info` (its link type).
    pub packet: bool,
    /// `verdict`: `verdict.action` (`alert`, or `pass` when a pass rule matched the packet).
    pub verdict: bool,
}

#[derive(Debug, Clone)]
pub struct SensorConfig {
    pub inputs: Vec<Input>,
    /// Packet workers; packets are sharded by a symmetric hash of the address pair.
    pub workers: usize,
    pub eve: EveOutput,
    pub eve_types: EveTypes,
    /// A tcpdump-style filter applied after decoding.
    pub filter: Option<String>,
    /// Per-direction TCP reassembly depth in bytes (Suricata's `stream.reassembly.depth`).
    pub reassembly_depth: u32,
    /// Memory cap of each worker's flow table, in bytes.
    pub flow_memcap: usize,
    /// Show progress on stderr (only honoured when stderr is a terminal).
    pub progress: bool,
    /// Rules, indicators and scan detection (see [`crate::detect`]); `None`: no detection.
    pub detect: Option<crate::detect::Engines>,
    /// Pick up TCP sessions whose handshake was not seen (Suricata's `stream.midstream`).
    pub midstream: bool,
    /// Expect to see only one direction of TCP sessions (Suricata's `stream.async-oneside`).
    pub async_oneside: bool,
    /// Part of the flow key is the VLAN ids (Suricata's `vlan.use-for-tracking`, default on).
    pub vlan_tracking: bool,
}

impl Default for SensorConfig {
    fn default() -> Self {
        SensorConfig {
            inputs: Vec::new(),
            workers: default_workers(),
            eve: EveOutput::Stdout,
            eve_types: EveTypes::default(),
            filter: None,
            reassembly_depth: 1024 * 1024,
            flow_memcap: 128 * 1024 * 1024,
            progress: true,
            detect: None,
            midstream: false,
            async_oneside: false,
            vlan_tracking: true,
        }
    }
}

/// The number of cores, at least one.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
