//! ward-scan: the scanner behind `ward scan` and `ward report weekly` — the CISA Cyber Hygiene
//! model for election offices, with more checks and in seconds.
//!
//! Pipeline: [`target`] (parse, resolve, expand) → [`portscan`] (async TCP connect scan with a
//! self-connect guard, per-host and global limits, adaptive timeouts) → [`probe`] (service
//! identification; [`tls`] for TLS, [`snmp`] over UDP) → [`checks`], [`creds`], [`vulns`],
//! [`email`] (findings) → [`engine`] (one whole scan as a [`finding::ScanResult`]) →
//! [`history`] (findings over time in a state directory) → [`report`] / [`pdf`] (weekly report).
//!
//! Design decision: every step is a plain async function over real sockets, tested against real
//! servers on loopback (tests/lab); checks are pure functions over observations so each rule is
//! unit-tested too. The scan never writes to printer ports 9100-9107 and tries at most
//! [`creds::MAX_ATTEMPTS_PER_SERVICE`] passwords per service. Results are serde JSON so the hub
//! can take them unchanged: [`hub`] is the client of the hub's scanner API (registered targets,
//! blackouts, upload, scan jobs for `ward scan worker`, the weekly report on the dashboard).

pub mod checks;
pub mod cli;
pub mod creds;
pub mod dns;
pub mod edge;
pub mod email;
pub mod engine;
pub mod finding;
pub mod history;
pub mod hub;
pub mod nvd;
pub mod pdf;
pub mod ports;
pub mod portscan;
pub mod probe;
pub mod report;
pub mod snmp;
pub mod target;
pub mod tls;
pub mod vulns;

pub use cli::{run_report, run_scan, ReportCommand, ScanArgs};
