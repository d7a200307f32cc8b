//! The per-flow application layer the sensor drives: protocol detection first, then the parser of
//! the detected protocol, fed with in-order bytes per direction.
//!
//! Policy (after Suricata): each direction's first bytes are buffered (at most
//! [`MAX_DETECT_BYTES`]) until [`detect`] names a protocol; the buffered bytes of both directions
//! are then replayed into the parser, client side first. A direction whose bytes match nothing, or
//! that reaches the buffer limit undecided, has failed; when both have failed, or the flow ends
//! with data but no verdict, the flow's protocol is [`AppProto::Failed`]. A flow that carried no
//! data has no protocol at all (`app_proto` absent in EVE).
//!
//! Everything the parsers produce comes out as [`AppEvent`]s, in order, ready to be turned into
//! EVE bodies ([`AppEvent::to_event_body`]) and handed to detection.

use ward_model::eve::{self, EventBody};

use crate::detect::{detect, AppProto, Detection, IPPROTO_UDP};
use crate::dns::{self, DnsMessage, DnsTcpState, DnsUdpState};
use crate::http::{self, HttpState, HttpTransaction};
use crate::tls::{self, TlsInfo, TlsState};
use crate::Direction;

/// Bytes per direction held while the protocol is unknown. Every protocol detected here shows
/// itself in its first few bytes; 4 KiB covers a long first line without holding much per flow.
pub const MAX_DETECT_BYTES: usize = 4096;

/// An app-layer anomaly, as Suricata reports them under `anomaly` with `type: applayer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoAnomaly {
    pub app_proto: AppProto,
    /// Suricata's event name where it has one (`malformed_data`, `REQUEST_LINE_UNKNOWN_METHOD`…).
    pub event: &'static str,
    pub tx_id: Option<u64>,
    /// What was wrong, for the operator (logs; EVE has no field for it).
    pub reason: String,
}

impl ProtoAnomaly {
    /// The EVE `anomaly` object.
    pub fn to_eve(&self) -> eve::Anomaly {
        eve::Anomaly {
            kind: "applayer".into(),
            event: self.event.into(),
            app_proto: Some(self.app_proto.name().into()),
            // Detection-stage events carry Suricata's `proto_detect` layer, parser events
            // `proto_parser`.
            layer: Some(
                if self.event.starts_with("APPLAYER_") {
                    "proto_detect"
                } else {
                    "proto_parser"
                }
                .into(),
            ),
            code: None,
        }
    }
}

/// What a parser produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppEvent {
    /// One DNS message (request or response), a transaction of its own.
    Dns {
        tx_id: u64,
        message: Box<DnsMessage>,
    },
    /// One HTTP transaction, complete or (at flow end) partial.
    Http(Box<HttpTransaction>),
    /// The TLS handshake summary (once per flow).
    Tls(Box<TlsInfo>),
    Anomaly(ProtoAnomaly),
}

impl AppEvent {
    /// The top-level EVE `tx_id` of the record, as Suricata writes it: HTTP records and parser
    /// anomalies have one; DNS records carry theirs inside the `dns` object instead; TLS records
    /// and detection anomalies have none.
    pub fn envelope_tx_id(&self) -> Option<u64> {
        match self {
            AppEvent::Dns { .. } | AppEvent::Tls(_) => None,
            other => other.tx_id(),
        }
    }

    /// The transaction the event belongs to, where it has one.
    pub fn tx_id(&self) -> Option<u64> {
        match self {
            AppEvent::Dns { tx_id, .. } => Some(*tx_id),
            AppEvent::Http(tx) => Some(tx.tx_id),
            AppEvent::Tls(_) => None,
            AppEvent::Anomaly(a) => a.tx_id,
        }
    }

    /// The event's EVE object (the value under `dns` / `http` / `tls` / `anomaly`) with every
    /// field Suricata writes, including those `ward_model::eve` has no place for yet (`grouped`
    /// and `opt` for DNS; `ja4`, `client_alpns`, `server_alpns`, `from_proto` for TLS).
    /// `from_proto` is [`AppState::from_proto`] of the flow.
    pub fn to_full_json(&self, from_proto: Option<AppProto>) -> serde_json::Value {
        match self {
            AppEvent::Dns { tx_id, message } => dns::eve::to_eve_json(message, *tx_id),
            AppEvent::Tls(info) => tls::eve::to_eve_json(info, from_proto),
            AppEvent::Http(tx) => serde_json::to_value(http::eve::to_eve(tx)).unwrap_or_default(),
            AppEvent::Anomaly(a) => serde_json::to_value(a.to_eve()).unwrap_or_default(),
        }
    }

    /// The EVE body of the event.
    pub fn to_event_body(&self) -> EventBody {
        match self {
            AppEvent::Dns { tx_id, message } => EventBody::Dns {
                dns: dns::eve::to_eve(message, *tx_id),
            },
            AppEvent::Http(tx) => EventBody::Http {
                http: http::eve::to_eve(tx),
            },
            AppEvent::Tls(info) => EventBody::Tls {
                tls: tls::eve::to_eve(info),
            },
            AppEvent::Anomaly(a) => EventBody::Anomaly {
                anomaly: a.to_eve(),
            },
        }
    }
}

/// The parser a flow runs.
#[derive(Debug, Clone)]
pub enum AppParser {
    Undetected,
    Http(HttpState),
    /// Boxed: the handshake summary is large and most flows are not TLS.
    Tls(Box<TlsState>),
    DnsTcp(DnsTcpState),
    DnsUdp(DnsUdpState),
    /// Detected, but ward has no parser for it (ssh, smtp, ftp).
    Other(AppProto),
    Failed,
}

/// The application-layer state of one flow.
#[derive(Debug, Clone)]
pub struct AppState {
    ip_proto: u8,
    src_port: u16,
    dst_port: u16,
    parser: AppParser,
    pending: [Vec<u8>; 2],
    dir_failed: [bool; 2],
    /// Bytes of a direction that did not fit the detection buffer (replayed as a gap).
    pending_lost: [u64; 2],
    saw_data: bool,
    /// The client asked a line protocol (SMTP, POP3, IMAP, FTP) to switch to TLS.
    starttls_requested: bool,
    /// The protocol the flow started as, when it switched (CONNECT tunnel, STARTTLS): Suricata's
    /// `tls.from_proto`.
    from_proto: Option<AppProto>,
    /// The first DNS datagram went "to the server" but was a response.
    reversed: bool,
    /// [`AppState::take_reversed`] reported it.
    reverse_taken: bool,
    /// TLS: each direction's first bytes were checked for another protocol, and the directions
    /// that turned out to speak one (not fed to the TLS parser).
    tls_checked: [bool; 2],
    tls_ignored: [bool; 2],
}

impl AppState {
    /// A new flow: `src_port` is the client's port, `dst_port` the server's.
    pub fn new(ip_proto: u8, src_port: u16, dst_port: u16) -> Self {
        AppState {
            ip_proto,
            src_port,
            dst_port,
            parser: AppParser::Undetected,
            pending: [Vec::new(), Vec::new()],
            dir_failed: [false, false],
            pending_lost: [0, 0],
            saw_data: false,
            starttls_requested: false,
            from_proto: None,
            reversed: false,
            reverse_taken: false,
            tls_checked: [false, false],
            tls_ignored: [false, false],
        }
    }

    /// True when the flow's first message shows the sides are swapped: a UDP DNS flow whose first
    /// datagram is a response. Suricata then reverses the flow, so its EVE records name the
    /// responder as `src_ip`; a sensor matching Suricata swaps its flow's sides when this is set.
    pub fn reversed(&self) -> bool {
        self.reversed
    }

    /// True exactly once, right after the datagram that showed the flow is reversed (see
    /// [`AppState::reversed`]): the moment for the sensor to swap its flow's sides, so that the
    /// records of that datagram already name the sides as Suricata does.
    pub fn take_reversed(&mut self) -> bool {
        let take = self.reversed && !self.reverse_taken;
        self.reverse_taken |= take;
        take
    }

    /// The protocol the flow started as, if it switched to another (HTTP CONNECT, STARTTLS).
    pub fn from_proto(&self) -> Option<AppProto> {
        self.from_proto
    }

    /// The flow's protocol for EVE `app_proto`: `None` while nothing was seen or decided.
    pub fn app_proto(&self) -> Option<AppProto> {
        match &self.parser {
            AppParser::Undetected => None,
            AppParser::Http(_) => Some(AppProto::Http),
            AppParser::Tls(_) => Some(AppProto::Tls),
            AppParser::DnsTcp(_) | AppParser::DnsUdp(_) => Some(AppProto::Dns),
            AppParser::Other(p) => Some(*p),
            AppParser::Failed => Some(AppProto::Failed),
        }
    }

    /// The running parser (for detection keywords that look at in-progress state).
    pub fn parser(&self) -> &AppParser {
        &self.parser
    }

    /// Feeds in-order bytes (a TCP segment's new bytes, or one UDP datagram's payload).
    pub fn on_data(&mut self, dir: Direction, data: &[u8], out: &mut Vec<AppEvent>) {
        if data.is_empty() {
            return;
        }
        self.saw_data = true;
        if !matches!(self.parser, AppParser::Undetected) {
            self.feed(dir, data, out);
            return;
        }
        if self.ip_proto == IPPROTO_UDP {
            match detect(
                data,
                dir == Direction::ToServer,
                self.dst_port,
                self.src_port,
                self.ip_proto,
            ) {
                Detection::Proto(AppProto::Dns) => {
                    // A flow whose first datagram is a response was seen from the server side.
                    self.reversed =
                        dir == Direction::ToServer && data.get(2).is_some_and(|f| f & 0x80 != 0);
                    self.parser = AppParser::DnsUdp(DnsUdpState::new());
                    self.feed(dir, data, out);
                }
                Detection::Proto(p) => self.parser = AppParser::Other(p),
                _ => self.parser = AppParser::Failed,
            }
            return;
        }
        let d = dir.index();
        let room = MAX_DETECT_BYTES - self.pending[d].len();
        if self.dir_failed[d] {
            // Keep what fits: if the other side names the protocol, this side is replayed too
            // (Suricata's APPLAYER_DETECT_PROTOCOL_ONLY_ONE_DIRECTION case).
            self.pending[d].extend_from_slice(&data[..data.len().min(room)]);
            self.pending_lost[d] += (data.len() - data.len().min(room)) as u64;
            return;
        }
        self.pending[d].extend_from_slice(&data[..data.len().min(room)]);
        let overflow = &data[data.len().min(room)..];
        match detect(
            &self.pending[d],
            dir == Direction::ToServer,
            self.dst_port,
            self.src_port,
            self.ip_proto,
        ) {
            Detection::Proto(p) => {
                self.parser = match p {
                    AppProto::Http => AppParser::Http(HttpState::new()),
                    AppProto::Tls => AppParser::Tls(Box::default()),
                    AppProto::Dns => AppParser::DnsTcp(DnsTcpState::new()),
                    other => AppParser::Other(other),
                };
                let other = 1 - d;
                if self.dir_failed[other] && !self.pending[other].is_empty() {
                    out.push(AppEvent::Anomaly(ProtoAnomaly {
                        app_proto: p,
                        event: "APPLAYER_DETECT_PROTOCOL_ONLY_ONE_DIRECTION",
                        tx_id: None,
                        reason: format!("{p} recognised in one direction only"),
                    }));
                }
                let pending = std::mem::take(&mut self.pending);
                let lost = std::mem::take(&mut self.pending_lost);
                for (i, bytes) in pending.iter().enumerate() {
                    let replay_dir = if i == 0 {
                        Direction::ToServer
                    } else {
                        Direction::ToClient
                    };
                    if !bytes.is_empty() {
                        self.feed(replay_dir, bytes, out);
                    }
                    if lost[i] > 0 {
                        self.on_gap(replay_dir, lost[i], out);
                    }
                }
                if !overflow.is_empty() {
                    self.feed(dir, overflow, out);
                }
            }
            Detection::NeedMore if self.pending[d].len() < MAX_DETECT_BYTES => {}
            _ => {
                self.dir_failed[d] = true;
                if self.dir_failed[0] && self.dir_failed[1] {
                    self.parser = AppParser::Failed;
                    self.pending = [Vec::new(), Vec::new()];
                }
            }
        }
    }

    fn feed(&mut self, dir: Direction, data: &[u8], out: &mut Vec<AppEvent>) {
        match &mut self.parser {
            AppParser::Http(s) => {
                s.on_data(dir, data, out);
                if s.tunnel_open() {
                    // CONNECT succeeded: what follows is another protocol, detected afresh.
                    let bytes = s.take_tunnel_bytes();
                    s.on_close(out);
                    self.restart_detection(AppProto::Http, bytes, out);
                }
            }
            // Suricata 8 follows STARTTLS (SMTP) and STLS (POP3) into TLS, but not IMAP's
            // STARTTLS nor FTP's AUTH TLS: those flows stay `imap` / `ftp` with no `tls` record,
            // and ward does the same so its records line up with Suricata's.
            AppParser::Other(p @ (AppProto::Smtp | AppProto::Pop3)) => {
                let proto = *p;
                if dir != Direction::ToServer {
                    return;
                }
                if !self.starttls_requested {
                    self.starttls_requested = requests_starttls(data);
                    return;
                }
                if let Some(at) = tls_record_start(data) {
                    self.from_proto = Some(proto);
                    self.parser = AppParser::Tls(Box::default());
                    self.feed(dir, &data[at..], out);
                }
            }
            AppParser::Tls(s) => {
                let d = dir.index();
                if !self.tls_checked[d] {
                    // The first bytes of each direction: if they are plainly another protocol
                    // (an HTTP server answering a ClientHello), Suricata flags the mismatch and
                    // does not hand that direction to the TLS parser.
                    self.tls_checked[d] = true;
                    let to_server = dir == Direction::ToServer;
                    if let Detection::Proto(p @ AppProto::Http) =
                        detect(data, to_server, self.dst_port, self.src_port, self.ip_proto)
                    {
                        self.tls_ignored[d] = true;
                        out.push(AppEvent::Anomaly(ProtoAnomaly {
                            app_proto: AppProto::Tls,
                            event: "APPLAYER_MISMATCH_PROTOCOL_BOTH_DIRECTIONS",
                            tx_id: None,
                            reason: format!("tls in one direction, {p} in the other"),
                        }));
                    }
                }
                if !self.tls_ignored[d] {
                    s.on_data(dir, data, out);
                }
            }
            AppParser::DnsTcp(s) => s.on_data(dir, data, out),
            AppParser::DnsUdp(s) => s.on_datagram(data, out),
            AppParser::Undetected | AppParser::Other(_) | AppParser::Failed => {}
        }
    }

    fn restart_detection(&mut self, from: AppProto, bytes: [Vec<u8>; 2], out: &mut Vec<AppEvent>) {
        self.from_proto = Some(from);
        self.parser = AppParser::Undetected;
        self.pending = [Vec::new(), Vec::new()];
        self.pending_lost = [0, 0];
        self.dir_failed = [false, false];
        for (i, b) in bytes.iter().enumerate() {
            if !b.is_empty() {
                let dir = if i == 0 {
                    Direction::ToServer
                } else {
                    Direction::ToClient
                };
                self.on_data(dir, b, out);
            }
        }
    }

    /// `len` bytes of one direction were lost in reassembly.
    pub fn on_gap(&mut self, dir: Direction, len: u64, out: &mut Vec<AppEvent>) {
        match &mut self.parser {
            AppParser::Http(s) => s.on_gap(dir, len, out),
            AppParser::Tls(s) => s.on_gap(dir),
            AppParser::DnsTcp(s) => s.on_gap(dir),
            AppParser::Undetected => {
                // Detection cannot continue across a hole in this direction.
                self.dir_failed[dir.index()] = true;
                self.pending[dir.index()] = Vec::new();
                if self.dir_failed[0] && self.dir_failed[1] {
                    self.parser = AppParser::Failed;
                }
            }
            _ => {}
        }
    }

    /// The flow ended (FIN/RST, timeout, or end of capture): partial transactions are emitted.
    pub fn on_close(&mut self, out: &mut Vec<AppEvent>) {
        match &mut self.parser {
            AppParser::Http(s) => s.on_close(out),
            AppParser::Tls(s) => s.on_close(out),
            AppParser::Undetected if self.saw_data => {
                self.parser = AppParser::Failed;
                self.pending = [Vec::new(), Vec::new()];
            }
            _ => {}
        }
    }
}

/// True if a client chunk holds a command that starts TLS in a line protocol: SMTP and IMAP
/// `STARTTLS`, POP3 `STLS`, FTP `AUTH TLS` / `AUTH SSL` (the flows that switch are chosen in
/// `AppState::feed`). Commands split across chunks are missed (clients send them in one segment).
fn requests_starttls(data: &[u8]) -> bool {
    data.split(|&b| b == b'\n').any(|line| {
        let line = crate::http::parser::trim(line);
        let words: Vec<&[u8]> = line
            .split(|&b| b == b' ')
            .filter(|w| !w.is_empty())
            .collect();
        let is = |w: &[u8], kw: &[u8]| w.eq_ignore_ascii_case(kw);
        match words.as_slice() {
            [w] => is(w, b"STARTTLS") || is(w, b"STLS"),
            [first, second] => {
                (is(second, b"STARTTLS") && !first.is_empty())
                    || (is(first, b"AUTH") && (is(second, b"TLS") || is(second, b"SSL")))
            }
            _ => false,
        }
    })
}

/// Where a TLS handshake record begins in a chunk: at its start or right after a line end.
fn tls_record_start(data: &[u8]) -> Option<usize> {
    let looks_tls = |at: usize| {
        data.get(at..at + 3)
            .is_some_and(|h| h[0] == 22 && h[1] == 3 && h[2] <= 4)
    };
    if looks_tls(0) {
        return Some(0);
    }
    data.iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .map(|(i, _)| i + 1)
        .find(|&i| looks_tls(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_detected_from_either_side_and_replayed() {
        let mut app = AppState::new(6, 40000, 4444);
        let mut out = Vec::new();
        app.on_data(Direction::ToServer, b"GE", &mut out);
        assert_eq!(app.app_proto(), None);
        app.on_data(
            Direction::ToServer,
            b"T /x HTTP/1.1\r\nHost: h\r\n\r\n",
            &mut out,
        );
        assert_eq!(app.app_proto(), Some(AppProto::Http));
        app.on_data(
            Direction::ToClient,
            b"HTTP/1.1 204 No Content\r\n\r\n",
            &mut out,
        );
        let body = out
            .iter()
            .find(|e| matches!(e, AppEvent::Http(_)))
            .unwrap()
            .to_event_body();
        let EventBody::Http { http } = body else {
            panic!("not http")
        };
        assert_eq!((http.url.as_deref(), http.status), (Some("/x"), Some(204)));
    }

    #[test]
    fn undetectable_tcp_fails_and_silent_flow_has_no_proto() {
        let mut app = AppState::new(6, 40000, 80);
        let mut out = Vec::new();
        app.on_data(Direction::ToServer, b"\x00\x00garbage", &mut out);
        app.on_data(Direction::ToClient, b"\x01\x02more garbage", &mut out);
        assert_eq!(app.app_proto(), Some(AppProto::Failed));
        let mut silent = AppState::new(6, 40000, 80);
        silent.on_close(&mut out);
        assert_eq!(silent.app_proto(), None);
        let mut one_sided = AppState::new(6, 40000, 80);
        one_sided.on_data(Direction::ToServer, b"\x00\x00garbage", &mut out);
        one_sided.on_close(&mut out);
        assert_eq!(one_sided.app_proto(), Some(AppProto::Failed));
    }

    #[test]
    fn imap_starttls_and_ftp_auth_tls_do_not_switch_as_in_suricata() {
        for (port, banner, command) in [
            (143u16, &b"* OK IMAP4rev1 ready\r\n"[..], &b"a1 STARTTLS\r\n"[..]),
            (21, &b"220 FTP ready\r\n"[..], &b"AUTH TLS\r\n"[..]),
        ] {
            let mut app = AppState::new(6, 40000, port);
            let mut out = Vec::new();
            app.on_data(Direction::ToClient, banner, &mut out);
            app.on_data(Direction::ToServer, command, &mut out);
            let before = app.app_proto();
            assert!(matches!(before, Some(AppProto::Imap | AppProto::Ftp)), "{before:?}");
            app.on_data(Direction::ToServer, &[22, 3, 1, 0, 4, 1, 0, 0, 0], &mut out);
            app.on_close(&mut out);
            assert_eq!(app.app_proto(), before);
            assert!(!out.iter().any(|e| matches!(e, AppEvent::Tls(_))));
        }
    }

    /// A TLS record holding a minimal hello: ClientHello (`msg_type` 1) or ServerHello (2).
    fn hello_record(msg_type: u8) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(0); // session id
        if msg_type == 1 {
            body.extend_from_slice(&[0, 2, 0x00, 0x2f, 1, 0]); // one suite, null compression
        } else {
            body.extend_from_slice(&[0x00, 0x2f, 0]);
        }
        let mut hs = vec![msg_type, 0, 0, body.len() as u8];
        hs.extend_from_slice(&body);
        let mut rec = vec![22, 3, 1, 0, hs.len() as u8];
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn tls_record_error_before_the_handshake_ends_means_no_tls_record() {
        // Zeek's tls/https-to-http.pcap: a ClientHello to an HTTP server that answers with a page.
        let hello = hello_record(1);
        let mut app = AppState::new(6, 40000, 80);
        let mut out = Vec::new();
        app.on_data(Direction::ToServer, &hello, &mut out);
        assert_eq!(app.app_proto(), Some(AppProto::Tls));
        app.on_data(Direction::ToClient, b"<!DOCTYPE HTML>\n<html lang=\"en\">\n", &mut out);
        app.on_close(&mut out);
        assert!(out.iter().any(|e| matches!(e, AppEvent::Anomaly(a) if a.event == "INVALID_RECORD_TYPE")));
        assert!(!out.iter().any(|e| matches!(e, AppEvent::Tls(_))), "{out:?}");

        // Zeek's tls/ssl-to-http-server.pcap: the server answers with an HTTP response, which is
        // a protocol mismatch, not a TLS error: that side is not parsed and the hello is logged.
        let mut app = AppState::new(6, 40000, 80);
        let mut out = Vec::new();
        app.on_data(Direction::ToServer, &hello, &mut out);
        app.on_data(Direction::ToClient, b"HTTP/1.1 400 Bad Request\r\nServer: x\r\n\r\n", &mut out);
        app.on_close(&mut out);
        assert!(out.iter().any(|e| matches!(e, AppEvent::Anomaly(a) if a.event == "APPLAYER_MISMATCH_PROTOCOL_BOTH_DIRECTIONS")));
        assert!(out.iter().any(|e| matches!(e, AppEvent::Tls(_))), "{out:?}");

        // A record error after the direction's first record only stops that direction.
        let mut app = AppState::new(6, 40000, 443);
        let mut out = Vec::new();
        app.on_data(Direction::ToServer, &hello, &mut out);
        app.on_data(Direction::ToServer, &[0x99, 0x99, 0x99, 0x99, 0x99], &mut out);
        app.on_close(&mut out);
        assert!(out.iter().any(|e| matches!(e, AppEvent::Tls(_))), "{out:?}");
    }

    #[test]
    fn sslv2_format_first_record_is_skipped_not_an_error() {
        // Zeek's tls/ssl.v3.pcap: an SSLv2-compatible ClientHello, then TLS from the server.
        let mut app = AppState::new(6, 40000, 443);
        let mut out = Vec::new();
        let mut v2 = vec![0x80, 0x0b, 0x01, 0x03, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x35];
        app.on_data(Direction::ToServer, &v2, &mut out);
        app.on_data(Direction::ToClient, &hello_record(2), &mut out);
        assert_eq!(app.app_proto(), Some(AppProto::Tls));
        v2.clear();
        app.on_close(&mut out);
        assert!(!out.iter().any(|e| matches!(e, AppEvent::Anomaly(a) if a.event.starts_with("INVALID"))), "{out:?}");
        assert!(out.iter().any(|e| matches!(e, AppEvent::Tls(_))), "{out:?}");
    }

    #[test]
    fn smtp_starttls_switches_to_tls() {
        let mut app = AppState::new(6, 40000, 25);
        let mut out = Vec::new();
        app.on_data(
            Direction::ToClient,
            b"220 mx.example.com ESMTP\r\n",
            &mut out,
        );
        app.on_data(Direction::ToServer, b"EHLO me\r\n", &mut out);
        app.on_data(Direction::ToServer, b"STARTTLS\r\n", &mut out);
        app.on_data(Direction::ToClient, b"220 go ahead\r\n", &mut out);
        assert_eq!(app.app_proto(), Some(AppProto::Smtp));
        app.on_data(Direction::ToServer, &[22, 3, 1, 0, 4, 1, 0, 0, 0], &mut out);
        assert_eq!(app.app_proto(), Some(AppProto::Tls));
        assert_eq!(app.from_proto(), Some(AppProto::Smtp));
    }

    #[test]
    fn connect_tunnel_is_detected_afresh() {
        let mut app = AppState::new(6, 40000, 3128);
        let mut out = Vec::new();
        app.on_data(
            Direction::ToServer,
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            &mut out,
        );
        app.on_data(
            Direction::ToClient,
            b"HTTP/1.1 200 Connection established\r\n\r\n",
            &mut out,
        );
        app.on_data(Direction::ToServer, &[22, 3, 1, 0, 4, 1, 0, 0, 0], &mut out);
        assert!(out.iter().any(|e| matches!(e, AppEvent::Http(_))));
        assert_eq!(app.app_proto(), Some(AppProto::Tls));
        assert_eq!(app.from_proto(), Some(AppProto::Http));
    }

    #[test]
    fn dns_udp_flow() {
        let mut app = AppState::new(17, 40000, 53);
        let mut out = Vec::new();
        let q = [
            0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1,
        ];
        app.on_data(Direction::ToServer, &q, &mut out);
        assert_eq!(app.app_proto(), Some(AppProto::Dns));
        assert!(matches!(&out[0], AppEvent::Dns { tx_id: 0, .. }));
        assert!(!app.reversed());
        let mut resp_first = AppState::new(17, 53, 53);
        let mut r = q;
        r[2] |= 0x80;
        resp_first.on_data(Direction::ToServer, &r, &mut out);
        assert!(resp_first.reversed());
        assert!(resp_first.take_reversed(), "reported once");
        assert!(!resp_first.take_reversed(), "and only once");
        assert!(!app.take_reversed());
    }
}

#[cfg(test)]
mod http09_tests {
    use super::*;

    /// Zeek's `http/http_09.pcap`: a bare HTTP/0.9 request line answered by a bare body.
    #[test]
    fn http09_request_is_logged_at_close() {
        let mut app = AppState::new(6, 42960, 80);
        let mut out = Vec::new();
        app.on_data(Direction::ToServer, b"GET /zeek.html\n", &mut out);
        app.on_data(
            Direction::ToClient,
            b"<html>\n  The Zeek Network Security Monitor\n</html>\n",
            &mut out,
        );
        app.on_close(&mut out);
        let http: Vec<_> = out
            .iter()
            .filter_map(|e| {
                if let AppEvent::Http(t) = e {
                    Some(t)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(http.len(), 1, "{out:?}");
        assert_eq!(
            http[0].request.as_ref().map(|r| r.uri_raw.as_slice()),
            Some(&b"/zeek.html"[..])
        );
    }
}
