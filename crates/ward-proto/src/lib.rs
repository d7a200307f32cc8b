//! ward-proto: application-layer parsers for the sensor (dns, http, tls) and protocol detection.
//!
//! Design, after Suricata's `rust/src/<proto>/` and rusticata's parsers:
//!
//! * Each protocol has `parser.rs` (pure functions over byte slices, no state, no I/O),
//!   `state.rs` (a per-flow streaming state machine fed with in-order reassembled bytes per
//!   direction) and `eve.rs` (conversion into the EVE types of `ward-model`).
//! * Streaming contract: a parser returns [`Parsed::Incomplete`] when it needs more bytes — that is
//!   not an error — and a typed [`ProtoError`] when the bytes can never become a valid message.
//! * Recoverable oddities (a bad additional record, an unknown method) are anomalies that travel
//!   beside the parsed data as [`AppEvent::Anomaly`]; they never stop parsing of the flow.
//! * Every buffer is bounded by a named constant next to its reason; a flow that exceeds a bound is
//!   flagged and parsing of that direction stops rather than growing memory.
//! * The crate knows nothing of packets: the sensor maps its own direction type to [`Direction`] and
//!   feeds payloads. Nothing here depends on `ward-packet`.
//!
//! Entry points: [`app::AppState`] (the per-flow dispatcher the sensor drives: detection, then
//! the detected protocol's state, then protocol switches such as HTTP CONNECT and STARTTLS),
//! [`detect::detect`], [`dns::parse_udp`], and the per-protocol states [`dns::DnsUdpState`],
//! [`dns::DnsTcpState`], [`http::HttpState`], [`tls::TlsState`]. [`replay`] drives them from one
//! byte string for the fuzz targets and property tests.
//!
//! Conformance: `tests/oracle_conformance.rs` runs Zeek's captures through these parsers and
//! compares with Suricata 8.0.6's EVE output for the same captures.

pub mod app;
pub mod detect;
pub mod dns;
pub mod http;
pub mod replay;
pub mod tls;

pub use app::{AppEvent, AppState, ProtoAnomaly};
pub use detect::{detect, AppProto, Detection};

/// Which way bytes travel in a flow: from the client (the side that opened the flow) to the server,
/// or back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    ToServer,
    ToClient,
}

impl Direction {
    /// 0 for to-server, 1 for to-client; handy to index per-direction arrays.
    pub fn index(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }
}

/// The result of a streaming parse step that did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    /// A complete value and the number of input bytes it used.
    Done(T, usize),
    /// More input is needed; the value is the least number of further bytes that could help.
    Incomplete(usize),
}

/// Why bytes could not be parsed. Each message says what was wrong so an operator reading an
/// anomaly log knows what the peer sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    #[error("message truncated: {what} needs {needed} more bytes")]
    Truncated { what: &'static str, needed: usize },
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    #[error("limit exceeded: {what} is larger than {limit}")]
    LimitExceeded { what: &'static str, limit: usize },
}

impl ProtoError {
    pub(crate) fn malformed(what: &'static str, detail: impl Into<String>) -> Self {
        ProtoError::Malformed {
            what,
            detail: detail.into(),
        }
    }
}

/// Writes bytes as text the way Suricata prints names and headers: printable ASCII as is, every
/// other byte as `\xNN`.
pub(crate) fn push_printable(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        if (0x20..0x7f).contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
}

/// Text of a header value as Suricata logs it: valid UTF-8 as is, each byte that is not part of
/// valid UTF-8 as `\xNN`.
pub(crate) fn bytes_to_string(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => {
            let mut out = String::with_capacity(bytes.len() + 8);
            for chunk in bytes.utf8_chunks() {
                out.push_str(chunk.valid());
                for b in chunk.invalid() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
            out
        }
    }
}
