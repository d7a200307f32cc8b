//! Packets in, flows and ordered byte streams out. Knows nothing of rules or app-layer protocols.
//!
//! * [`capture`]: pcap and pcapng files (and live capture) yielding [`capture::RawPacket`]s with
//!   their link type.
//! * [`decode`]: link layer → VLAN → IPv4/IPv6 (with fragment reassembly in [`defrag`]) →
//!   TCP/UDP/ICMP, yielding a [`packet::Packet`] or a decode anomaly.
//! * [`filter`]: tcpdump-style filter expressions (`--filter`) evaluated on decoded packets.
//! * [`flow`]: the bidirectional flow table with TCP state, timeouts and a memory cap.
//! * [`stream`]: per-direction TCP reassembly delivering in-order bytes and gaps.
//!
//! The shared vocabulary of these modules is in [`packet`].

pub mod capture;
pub mod decode;
pub mod defrag;
pub mod filter;
pub mod flow;
pub mod packet;
pub mod stream;
