//! DNS over UDP and TCP: [`parser`] decodes messages, [`state`] frames TCP streams and numbers
//! transactions per flow, [`eve`] renders Suricata's EVE `dns` version 3 records.

pub mod eve;
pub mod parser;
pub mod state;

pub use parser::{
    parse_message, parse_udp, DnsHeader, DnsMessage, DnsName, DnsQuestion, DnsRData, DnsRecord,
};
pub use state::{DnsTcpState, DnsUdpState};
