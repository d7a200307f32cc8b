//! A TCP conversation played packet by packet: 3-way handshake, application messages cut into
//! MSS-sized segments with the receiver ACKing every second segment, then a FIN (or RST)
//! teardown. Sequence and acknowledgement numbers are always consistent, so a reassembler sees a
//! clean stream; bulk bodies are never materialised (they are sliced from the shared pools).

use std::collections::VecDeque;

use etherparse::TcpOptionElement;

use super::content::Pools;
use super::frame::{Endpoints, Side, TcpFlags};
use super::rng::Rng;
use super::GenError;

/// Largest TCP payload per segment over IPv4 Ethernet (1500 − 20 − 20).
pub const MSS_V4: usize = 1460;
/// Largest TCP payload per segment over IPv6 Ethernet (1500 − 40 − 20).
pub const MSS_V6: usize = 1440;
/// Segments a receiver takes before sending a pure ACK (delayed-ACK behaviour of most stacks).
const SEGMENTS_PER_ACK: u32 = 2;
/// Initial congestion window in segments (RFC 6928).
const INITIAL_CWND: u32 = 10;
/// Largest congestion window the sender grows to (segments per round trip, a 64 KiB window): with the RTTs used
/// here it caps a flow at tens of Mbit/s, like a real internet path, so capture timestamps
/// advance at a realistic pace.
const MAX_CWND: u32 = 44;

/// Where the bytes of one part of a message come from.
#[derive(Debug, Clone)]
pub enum Piece {
    /// Literal bytes (headers, handshakes, small bodies).
    Owned(Vec<u8>),
    /// `len` bytes of the random pool from `off` (encrypted or compressed-looking data).
    Random { off: usize, len: usize },
    /// `len` bytes of the text pool from `off` (plain HTML/JSON bodies).
    Text { off: usize, len: usize },
    /// One of the pre-built gzip bodies.
    Gzip(usize),
}

impl Piece {
    fn len(&self, pools: &Pools) -> usize {
        match self {
            Piece::Owned(v) => v.len(),
            Piece::Random { len, .. } | Piece::Text { len, .. } => *len,
            Piece::Gzip(i) => pools.gzip[*i].len(),
        }
    }
}

/// One application message sent by one side.
#[derive(Debug, Clone)]
pub struct Message {
    pub from: Side,
    pub pieces: Vec<Piece>,
    /// Delay before the first segment (server think time, user pause).
    pub think_us: u64,
}

impl Message {
    pub fn new(from: Side, think_us: u64) -> Self {
        Message { from, pieces: Vec::with_capacity(2), think_us }
    }
    pub fn bytes(mut self, b: Vec<u8>) -> Self {
        self.pieces.push(Piece::Owned(b));
        self
    }
    pub fn piece(mut self, p: Piece) -> Self {
        self.pieces.push(p);
        self
    }
}

/// How the connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// FIN from the client, FIN from the server, last ACK.
    ClientFin,
    /// FIN from the server first (HTTP `Connection: close`).
    ServerFin,
    /// The client resets the connection.
    ClientRst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Syn,
    SynAck,
    HandshakeAck,
    Data,
    Fin1,
    Fin2,
    LastAck,
    Done,
}

/// State of one TCP conversation.
#[derive(Debug)]
pub struct TcpConv {
    pub ep: Endpoints,
    phase: Phase,
    mss: usize,
    client_next: u32,
    server_next: u32,
    client_isn: u32,
    server_isn: u32,
    msgs: VecDeque<Message>,
    /// Position inside the front message: piece index and offset within it.
    piece: usize,
    piece_off: usize,
    started_msg: bool,
    segs_unacked: u32,
    /// Segments sent in the current round trip, and the window that ends it (slow start).
    flight: u32,
    cwnd: u32,
    owe_ack: Option<Side>,
    rtt_us: u64,
    /// Microseconds per 1000 payload bytes: the flow's bandwidth.
    us_per_kb: u64,
    close: Close,
}

impl TcpConv {
    pub fn new(rng: &mut Rng, ep: Endpoints, msgs: Vec<Message>, rtt_us: u64, mbit_s: u64, close: Close) -> Self {
        let mss = if ep.is_v6() { MSS_V6 } else { MSS_V4 };
        let client_isn = rng.next_u32();
        let server_isn = rng.next_u32();
        TcpConv {
            ep,
            phase: Phase::Syn,
            mss,
            client_next: client_isn,
            server_next: server_isn,
            client_isn,
            server_isn,
            msgs: msgs.into(),
            piece: 0,
            piece_off: 0,
            started_msg: false,
            segs_unacked: 0,
            flight: 0,
            cwnd: INITIAL_CWND,
            owe_ack: None,
            rtt_us: rtt_us.max(50),
            us_per_kb: (8_000 / mbit_s.max(1)).max(1),
            close,
        }
    }

    fn seq_ack(&self, from: Side) -> (u32, u32) {
        match from {
            Side::Client => (self.client_next, self.server_next),
            Side::Server => (self.server_next, self.client_next),
        }
    }

    fn advance(&mut self, from: Side, n: u32) {
        match from {
            Side::Client => self.client_next = self.client_next.wrapping_add(n),
            Side::Server => self.server_next = self.server_next.wrapping_add(n),
        }
    }

    fn window(from: Side) -> u16 {
        match from {
            Side::Client => 1026,
            Side::Server => 501,
        }
    }

    /// Emits the next packet of the conversation into `frame`. Returns the delay until the
    /// next one, or `None` when this was the last packet.
    pub fn step(&mut self, rng: &mut Rng, pools: &Pools, frame: &mut Vec<u8>, payload: &mut Vec<u8>) -> Result<Option<u64>, GenError> {
        let ep = &self.ep;
        match self.phase {
            Phase::Syn => {
                let opts = [
                    TcpOptionElement::MaximumSegmentSize(self.mss as u16),
                    TcpOptionElement::Noop,
                    TcpOptionElement::WindowScale(8),
                    TcpOptionElement::Noop,
                    TcpOptionElement::Noop,
                    TcpOptionElement::SelectiveAcknowledgementPermitted,
                ];
                let f = TcpFlags { syn: true, ..Default::default() };
                ep.tcp(frame, Side::Client, self.client_isn, 0, 64_240, f, &opts, &[])?;
                self.client_next = self.client_isn.wrapping_add(1);
                self.phase = Phase::SynAck;
                Ok(Some(self.rtt_us))
            }
            Phase::SynAck => {
                let opts = [
                    TcpOptionElement::MaximumSegmentSize(self.mss as u16),
                    TcpOptionElement::Noop,
                    TcpOptionElement::Noop,
                    TcpOptionElement::SelectiveAcknowledgementPermitted,
                    TcpOptionElement::Noop,
                    TcpOptionElement::WindowScale(7),
                ];
                let f = TcpFlags { syn: true, ack: true, ..Default::default() };
                ep.tcp(frame, Side::Server, self.server_isn, self.client_next, 65_535, f, &opts, &[])?;
                self.server_next = self.server_isn.wrapping_add(1);
                self.phase = Phase::HandshakeAck;
                Ok(Some(rng.range(20, 200)))
            }
            Phase::HandshakeAck => {
                let f = TcpFlags { ack: true, ..Default::default() };
                ep.tcp(frame, Side::Client, self.client_next, self.server_next, Self::window(Side::Client), f, &[], &[])?;
                self.phase = Phase::Data;
                Ok(Some(self.msgs.front().map_or(100, |m| m.think_us.max(10))))
            }
            Phase::Data => self.step_data(rng, pools, frame, payload),
            Phase::Fin1 | Phase::Fin2 | Phase::LastAck => self.step_close(rng, frame),
            Phase::Done => Ok(None),
        }
    }

    fn step_data(&mut self, rng: &mut Rng, pools: &Pools, frame: &mut Vec<u8>, payload: &mut Vec<u8>) -> Result<Option<u64>, GenError> {
        if let Some(acker) = self.owe_ack.take() {
            let (seq, ack) = self.seq_ack(acker);
            let f = TcpFlags { ack: true, ..Default::default() };
            self.ep.tcp(frame, acker, seq, ack, Self::window(acker), f, &[], &[])?;
            self.segs_unacked = 0;
            return Ok(Some(match self.msgs.front() {
                Some(_) if self.started_msg => rng.range(5, 60),
                Some(m) => m.think_us.max(10),
                None => rng.range(100, 5_000),
            }));
        }
        let Some(msg) = self.msgs.front() else {
            self.phase = Phase::Fin1;
            return self.step_close(rng, frame);
        };
        let from = msg.from;
        // Fill one segment from the message's pieces.
        payload.clear();
        while payload.len() < self.mss && self.piece < msg.pieces.len() {
            let p = &msg.pieces[self.piece];
            let plen = p.len(pools);
            let want = (self.mss - payload.len()).min(plen - self.piece_off);
            match p {
                Piece::Owned(v) => payload.extend_from_slice(&v[self.piece_off..self.piece_off + want]),
                Piece::Random { off, .. } => pools.random_into(off + self.piece_off, want, payload),
                Piece::Text { off, .. } => pools.text_into(off + self.piece_off, want, payload),
                Piece::Gzip(i) => payload.extend_from_slice(&pools.gzip[*i][self.piece_off..self.piece_off + want]),
            }
            self.piece_off += want;
            if self.piece_off >= plen {
                self.piece += 1;
                self.piece_off = 0;
            }
        }
        let last = self.piece >= msg.pieces.len();
        let (seq, ack) = self.seq_ack(from);
        let f = TcpFlags { ack: true, psh: last, ..Default::default() };
        self.ep.tcp(frame, from, seq, ack, Self::window(from), f, &[], payload)?;
        let n = payload.len() as u32;
        self.advance(from, n);
        self.started_msg = true;
        self.segs_unacked += 1;
        self.flight += 1;
        let mut gap = (payload.len() as u64 * self.us_per_kb / 1000).max(1) + rng.below(20);
        if self.flight >= self.cwnd {
            // Window exhausted: wait for the ACK clock, then grow the window.
            gap += self.rtt_us;
            self.flight = 0;
            self.cwnd = (self.cwnd * 2).min(MAX_CWND);
        }
        if last {
            self.flight = 0;
            self.msgs.pop_front();
            self.piece = 0;
            self.piece_off = 0;
            self.started_msg = false;
            let next_from = self.msgs.front().map(|m| m.from);
            if next_from == Some(from) {
                // Same side keeps talking (pipelined request, next TLS flight).
                return Ok(Some(self.msgs.front().map_or(gap, |m| m.think_us.max(gap))));
            }
            // The peer acknowledges what it got before answering or closing.
            self.owe_ack = Some(from.other());
            return Ok(Some(self.rtt_us / 2 + rng.below(200)));
        }
        if self.segs_unacked >= SEGMENTS_PER_ACK {
            self.owe_ack = Some(from.other());
        }
        Ok(Some(gap))
    }

    fn step_close(&mut self, rng: &mut Rng, frame: &mut Vec<u8>) -> Result<Option<u64>, GenError> {
        let first = match self.close {
            Close::ClientFin | Close::ClientRst => Side::Client,
            Close::ServerFin => Side::Server,
        };
        match self.phase {
            Phase::Fin1 => {
                let (seq, ack) = self.seq_ack(first);
                if self.close == Close::ClientRst {
                    let f = TcpFlags { rst: true, ack: true, ..Default::default() };
                    self.ep.tcp(frame, first, seq, ack, 0, f, &[], &[])?;
                    self.phase = Phase::Done;
                    return Ok(None);
                }
                let f = TcpFlags { fin: true, ack: true, ..Default::default() };
                self.ep.tcp(frame, first, seq, ack, Self::window(first), f, &[], &[])?;
                self.advance(first, 1);
                self.phase = Phase::Fin2;
                Ok(Some(self.rtt_us))
            }
            Phase::Fin2 => {
                let second = first.other();
                let (seq, ack) = self.seq_ack(second);
                let f = TcpFlags { fin: true, ack: true, ..Default::default() };
                self.ep.tcp(frame, second, seq, ack, Self::window(second), f, &[], &[])?;
                self.advance(second, 1);
                self.phase = Phase::LastAck;
                Ok(Some(rng.range(10, 300)))
            }
            Phase::LastAck => {
                let (seq, ack) = self.seq_ack(first);
                let f = TcpFlags { ack: true, ..Default::default() };
                self.ep.tcp(frame, first, seq, ack, Self::window(first), f, &[], &[])?;
                self.phase = Phase::Done;
                Ok(None)
            }
            _ => Ok(None),
        }
    }
}
