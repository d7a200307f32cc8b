//! ward-sim: synthetic traffic for `ward demo`, `ward drill` and the benchmarks. Nothing here
//! sends a packet: everything is written into captures that a sensor reads.
//!
//! - [`mix`]: a deterministic generator of realistic mixed election-office traffic (HTTP, DNS,
//!   TLS, bulk transfers, ICMP, fragments, malformed packets) as a classic pcap of any size.
//! - [`attack`]: the attacks the drill and the demo lay over that traffic (port scans and
//!   sweeps, scanning of registration and results sites, SQL injection, credential stuffing, a
//!   phishing link, command-and-control beaconing, a DDoS, SMB lateral movement), each with the
//!   label of what a sensor ought to detect.
//! - [`pcap`]: writing pcap records, merging attack frames into a background capture, and
//!   counting the packets/bytes of pcap/pcapng(.gz) captures so benchmark figures never depend on
//!   what the program under test reports.

pub mod attack;
pub mod mix;
pub mod pcap;
