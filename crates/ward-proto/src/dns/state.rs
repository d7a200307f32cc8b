//! Per-flow DNS state: numbers transactions (every request and every response is one, as in
//! Suricata 8) and, over TCP, splits the length-prefixed stream into messages.
//!
//! Limits: a TCP direction buffers at most one message ([`MAX_TCP_MESSAGE`] plus its prefix); after
//! a gap the direction cannot be re-framed and is no longer parsed.

use crate::app::{AppEvent, ProtoAnomaly};
use crate::detect::AppProto;
use crate::dns::parser::{self, DnsMessage, FLAG_Z};
use crate::{Direction, Parsed};

/// Largest DNS-over-TCP message: the 16-bit length prefix allows no more.
pub const MAX_TCP_MESSAGE: usize = 65535;

fn anomaly(out: &mut Vec<AppEvent>, tx_id: u64, event: &'static str, reason: String) {
    out.push(AppEvent::Anomaly(ProtoAnomaly {
        app_proto: AppProto::Dns,
        event,
        tx_id: Some(tx_id),
        reason,
    }));
}

/// Parses one message and pushes its anomalies (first, as Suricata logs them) and its record.
pub(crate) fn handle_message(bytes: &[u8], tx_id: u64, out: &mut Vec<AppEvent>) {
    match parser::parse_message(bytes) {
        Ok(message) => {
            push_message_anomalies(&message, tx_id, out);
            out.push(AppEvent::Dns {
                tx_id,
                message: Box::new(message),
            });
        }
        Err(err) => anomaly(out, tx_id, "malformed_data", err.to_string()),
    }
}

fn push_message_anomalies(m: &DnsMessage, tx_id: u64, out: &mut Vec<AppEvent>) {
    if m.header.flags & FLAG_Z != 0 {
        anomaly(
            out,
            tx_id,
            "z_flag_set",
            "the reserved z flag is set in the dns header".into(),
        );
    }
    if m.invalid_authorities {
        anomaly(
            out,
            tx_id,
            "invalid_authorities",
            "the authority section did not parse and was dropped".into(),
        );
    }
    if m.invalid_additionals {
        anomaly(
            out,
            tx_id,
            "invalid_additionals",
            "the additional section did not parse and was dropped".into(),
        );
    }
    let flags = m.name_flags();
    if flags.truncated {
        anomaly(
            out,
            tx_id,
            "name_too_long",
            format!(
                "a name is longer than {} bytes and was cut",
                parser::MAX_NAME_LEN
            ),
        );
    }
    if flags.infinite_loop {
        anomaly(
            out,
            tx_id,
            "infinite_loop",
            "a name's compression pointers loop".into(),
        );
    }
    if flags.too_many_labels {
        anomaly(
            out,
            tx_id,
            "too_many_labels",
            format!("a name has more than {} labels", parser::MAX_LABELS),
        );
    }
}

/// DNS over UDP for one flow: every datagram is one message and one transaction.
#[derive(Debug, Default, Clone)]
pub struct DnsUdpState {
    next_tx: u64,
}

impl DnsUdpState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one datagram payload (either direction).
    pub fn on_datagram(&mut self, payload: &[u8], out: &mut Vec<AppEvent>) {
        let tx_id = self.next_tx;
        self.next_tx += 1;
        handle_message(payload, tx_id, out);
    }

    /// Transactions seen so far.
    pub fn tx_count(&self) -> u64 {
        self.next_tx
    }
}

/// DNS over TCP for one flow: each direction is a stream of length-prefixed messages.
#[derive(Debug, Default, Clone)]
pub struct DnsTcpState {
    buffers: [Vec<u8>; 2],
    stopped: [bool; 2],
    next_tx: u64,
}

impl DnsTcpState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds in-order stream bytes of one direction.
    pub fn on_data(&mut self, dir: Direction, data: &[u8], out: &mut Vec<AppEvent>) {
        let d = dir.index();
        if self.stopped[d] {
            return;
        }
        if self.buffers[d].is_empty() {
            let used = self.drain(data, out);
            self.buffers[d].extend_from_slice(&data[used..]);
        } else {
            let mut buf = std::mem::take(&mut self.buffers[d]);
            buf.extend_from_slice(data);
            let used = self.drain(&buf, out);
            buf.drain(..used);
            self.buffers[d] = buf;
        }
    }

    fn drain(&mut self, mut data: &[u8], out: &mut Vec<AppEvent>) -> usize {
        let total = data.len();
        while let Parsed::Done(msg, used) = parser::split_tcp_message(data) {
            let tx_id = self.next_tx;
            self.next_tx += 1;
            handle_message(msg, tx_id, out);
            data = &data[used..];
        }
        total - data.len()
    }

    /// Bytes of one direction were lost: the framing is gone, so that direction stops.
    pub fn on_gap(&mut self, dir: Direction) {
        self.stopped[dir.index()] = true;
        self.buffers[dir.index()] = Vec::new();
    }

    /// Transactions seen so far.
    pub fn tx_count(&self) -> u64 {
        self.next_tx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query() -> Vec<u8> {
        let mut m = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(b"\x04zeek\x03org\x00\x00\x01\x00\x01");
        m
    }

    fn names(out: &[AppEvent]) -> Vec<(u64, Vec<u8>)> {
        out.iter()
            .filter_map(|e| match e {
                AppEvent::Dns { tx_id, message } => {
                    Some((*tx_id, message.queries[0].name.value.clone()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn tcp_stream_byte_by_byte_equals_whole() {
        let mut stream = Vec::new();
        for _ in 0..3 {
            let q = query();
            stream.extend_from_slice(&(q.len() as u16).to_be_bytes());
            stream.extend_from_slice(&q);
        }
        let mut whole = Vec::new();
        DnsTcpState::new().on_data(Direction::ToServer, &stream, &mut whole);
        let mut state = DnsTcpState::new();
        let mut bytewise = Vec::new();
        for b in &stream {
            state.on_data(Direction::ToServer, std::slice::from_ref(b), &mut bytewise);
        }
        assert_eq!(names(&whole).len(), 3);
        assert_eq!(names(&whole), names(&bytewise));
        assert_eq!(names(&whole)[2], (2, b"zeek.org".to_vec()));
    }

    #[test]
    fn malformed_udp_gives_an_anomaly_and_uses_a_tx() {
        let mut s = DnsUdpState::new();
        let mut out = Vec::new();
        s.on_datagram(&[1, 2, 3], &mut out);
        s.on_datagram(&query(), &mut out);
        assert!(matches!(&out[0], AppEvent::Anomaly(a) if a.event == "malformed_data"));
        assert_eq!(names(&out), vec![(1, b"zeek.org".to_vec())]);
    }

    #[test]
    fn z_flag_raises_an_anomaly() {
        let mut q = query();
        q[3] |= 0x40;
        let mut out = Vec::new();
        DnsUdpState::new().on_datagram(&q, &mut out);
        assert!(matches!(&out[0], AppEvent::Anomaly(a) if a.event == "z_flag_set"));
    }
}
