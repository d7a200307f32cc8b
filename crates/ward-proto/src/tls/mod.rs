//! TLS: [`parser`] decodes records, hellos and certificates, [`state`] follows a flow's handshake,
//! [`eve`] renders the EVE `tls` record.

pub mod eve;
pub mod parser;
pub mod state;

pub use parser::CertInfo;
pub use state::{Fingerprint, TlsInfo, TlsState};
