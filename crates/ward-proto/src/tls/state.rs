//! Per-flow TLS state: reassembles records across chunks and handshake messages across records,
//! parses ClientHello, ServerHello and Certificate, and stops parsing a direction once it turns
//! encrypted (ChangeCipherSpec or application data); encrypted records are only framed and counted,
//! their payload is skipped without buffering.
//!
//! The handshake summary ([`TlsInfo`]) is emitted once: when both directions are encrypted (the
//! handshake is done, which is when Suricata logs), or at flow end if a hello was seen.
//!
//! Errors: a record that cannot be framed (bad type, version or length) stops its direction. When
//! it is the direction's very first record (the peer does not speak TLS at all: an HTTP server
//! answering a ClientHello with a page, a zero-length first record), that is what makes Suricata's
//! TLS parser fail for good: its app layer stops for the flow, never reaches its end-of-flow
//! logging, and no `tls` record is written. ward does the same: both directions stop and a summary
//! not yet emitted never is. A first record in SSLv2 format (the SSLv2-compatible ClientHello of
//! old clients) is skipped, not an error.
//!
//! Limits: one record at most [`parser::MAX_RECORD_LEN`] bytes buffered; one handshake message at
//! most [`MAX_HANDSHAKE_MESSAGE`]; at most [`MAX_CERTS`] certificates kept.

use crate::app::{AppEvent, ProtoAnomaly};
use crate::detect::AppProto;
use crate::tls::parser::{self, CertInfo, ClientHello, ServerHello};
use crate::{Direction, Parsed};

/// Largest handshake message reassembled: certificate chains in the wild stay well under 64 KiB,
/// but certificates with thousands of SANs exist (Zeek's tls-fragmented-handshake trace has a
/// Certificate message over 128 KiB that Suricata logs); 512 KiB covers them while still bounding
/// what a peer can make one flow hold.
pub const MAX_HANDSHAKE_MESSAGE: usize = 512 * 1024;
/// Most certificates kept from one Certificate message (real chains have 2–5).
pub const MAX_CERTS: usize = 16;

/// A JA3 or JA3S fingerprint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprint {
    pub string: String,
    /// MD5 of `string`, lowercase hex.
    pub hash: String,
}

/// What the handshake revealed: the buffers `tls.*` keywords inspect and the EVE `tls` fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// `tls.sni`
    pub sni: Option<Vec<u8>>,
    pub client_hello: Option<ClientHello>,
    pub server_hello: Option<ServerHello>,
    /// Version of the first record the client sent.
    pub client_record_version: Option<u16>,
    /// Version of the first record the server sent.
    pub server_record_version: Option<u16>,
    /// `ja3.hash` / `ja3.string`
    pub ja3: Option<Fingerprint>,
    /// `ja3s.hash` / `ja3s.string`
    pub ja3s: Option<Fingerprint>,
    /// `tls.certs`: every certificate of the server's chain, DER.
    pub certs: Vec<Vec<u8>>,
    /// `tls.cert_subject`, `tls.cert_issuer`, ... of the first certificate.
    pub cert: Option<CertInfo>,
    /// Encrypted (application data) records seen per direction (to server, to client).
    pub encrypted_records: [u64; 2],
    /// Both directions switched to encrypted records (ChangeCipherSpec or application data):
    /// what follows is not inspected as payload (Suricata's default `encryption-handling`).
    pub handshake_done: bool,
}

impl TlsInfo {
    /// The version as Suricata reports it: the ServerHello's choice (its supported_versions
    /// extension first); without a ServerHello, the version of the server's records, else of the
    /// client's records; 0 when nothing is known.
    pub fn version(&self) -> u16 {
        match &self.server_hello {
            Some(sh) => sh.selected_version.unwrap_or(sh.version),
            None => self
                .server_record_version
                .or(self.client_record_version)
                .unwrap_or(0),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading record headers and handshake records.
    Records,
    /// Skipping the payload of an encrypted record.
    Skip(usize),
    /// This direction is encrypted: records are framed and counted only.
    Encrypted,
    Stopped,
}

/// The TLS state of one flow.
#[derive(Debug, Clone)]
pub struct TlsState {
    info: TlsInfo,
    records: [Vec<u8>; 2],
    handshake: [Vec<u8>; 2],
    phase: [Phase; 2],
    encrypted: [bool; 2],
    emitted: bool,
    /// A direction's first record could not be framed: nothing more is parsed or emitted.
    errored: bool,
    /// A record of this direction was framed (so a later framing error is not fatal).
    framed: [bool; 2],
}

impl Default for TlsState {
    fn default() -> Self {
        Self::new()
    }
}

fn anomaly(out: &mut Vec<AppEvent>, event: &'static str, reason: String) {
    out.push(AppEvent::Anomaly(ProtoAnomaly {
        app_proto: AppProto::Tls,
        event,
        tx_id: Some(0),
        reason,
    }));
}

impl TlsState {
    pub fn new() -> Self {
        TlsState {
            info: TlsInfo::default(),
            records: [Vec::new(), Vec::new()],
            handshake: [Vec::new(), Vec::new()],
            phase: [Phase::Records, Phase::Records],
            encrypted: [false, false],
            emitted: false,
            errored: false,
            framed: [false, false],
        }
    }

    /// What is known so far (for detection on a flow still in its handshake).
    pub fn info(&self) -> &TlsInfo {
        &self.info
    }

    /// Feeds in-order stream bytes of one direction.
    pub fn on_data(&mut self, dir: Direction, mut data: &[u8], out: &mut Vec<AppEvent>) {
        let d = dir.index();
        while !data.is_empty() {
            match self.phase[d] {
                Phase::Stopped => return,
                Phase::Skip(n) => {
                    let take = n.min(data.len());
                    data = &data[take..];
                    self.phase[d] = if take == n {
                        self.after_record(d)
                    } else {
                        Phase::Skip(n - take)
                    };
                }
                Phase::Records | Phase::Encrypted => {
                    let buf = &mut self.records[d];
                    // Fill the record buffer up to a header, then up to the whole record.
                    let need = if buf.len() < parser::RECORD_HEADER_LEN {
                        parser::RECORD_HEADER_LEN - buf.len()
                    } else {
                        parser::RECORD_HEADER_LEN + u16::from_be_bytes([buf[3], buf[4]]) as usize
                            - buf.len()
                    };
                    let take = need.min(data.len());
                    buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if take < need {
                        return;
                    }
                    if !self.framed[d] && buf.len() == parser::RECORD_HEADER_LEN && buf[0] & 0x80 != 0 {
                        // An SSLv2-format record (2-byte header, high bit set): skip it.
                        let total = 2 + (usize::from(buf[0] & 0x7f) << 8 | usize::from(buf[1]));
                        buf.clear();
                        self.framed[d] = true;
                        self.phase[d] = match total.checked_sub(parser::RECORD_HEADER_LEN) {
                            Some(0) | None => Phase::Records,
                            Some(n) => Phase::Skip(n),
                        };
                        continue;
                    }
                    let header = match parser::parse_record_header(buf) {
                        Ok(Parsed::Done(h, _)) => {
                            self.framed[d] = true;
                            h
                        }
                        Ok(Parsed::Incomplete(_)) => continue,
                        Err(err) => {
                            let event = match &err {
                                crate::ProtoError::LimitExceeded { .. } => "INVALID_RECORD_LENGTH",
                                crate::ProtoError::Malformed { detail, .. }
                                    if detail.contains("version") =>
                                {
                                    "INVALID_RECORD_VERSION"
                                }
                                _ => "INVALID_RECORD_TYPE",
                            };
                            anomaly(out, event, err.to_string());
                            if self.framed[d] {
                                self.stop(d);
                            } else {
                                self.errored = true;
                                self.stop(0);
                                self.stop(1);
                            }
                            return;
                        }
                    };
                    if buf.len() == parser::RECORD_HEADER_LEN {
                        let first = if d == 0 {
                            &mut self.info.client_record_version
                        } else {
                            &mut self.info.server_record_version
                        };
                        first.get_or_insert(header.version);
                        // Encrypted payloads are skipped without buffering.
                        if header.content_type == parser::CONTENT_APPLICATION_DATA
                            || self.phase[d] == Phase::Encrypted
                        {
                            if header.content_type == parser::CONTENT_APPLICATION_DATA {
                                self.info.encrypted_records[d] += 1;
                                self.encrypted[d] = true;
                            }
                            buf.clear();
                            self.phase[d] = if header.length == 0 {
                                self.after_record(d)
                            } else {
                                Phase::Skip(header.length)
                            };
                            self.maybe_emit(out);
                            continue;
                        }
                        if header.length > 0 {
                            continue;
                        }
                    }
                    let record = std::mem::take(&mut self.records[d]);
                    self.on_record(
                        dir,
                        header.content_type,
                        &record[parser::RECORD_HEADER_LEN..],
                        out,
                    );
                    let mut record = record;
                    record.clear();
                    self.records[d] = record;
                    self.maybe_emit(out);
                }
            }
        }
    }

    fn after_record(&self, d: usize) -> Phase {
        if self.encrypted[d] {
            Phase::Encrypted
        } else {
            Phase::Records
        }
    }

    fn stop(&mut self, d: usize) {
        self.phase[d] = Phase::Stopped;
        self.records[d] = Vec::new();
        self.handshake[d] = Vec::new();
    }

    fn on_record(
        &mut self,
        dir: Direction,
        content_type: u8,
        payload: &[u8],
        out: &mut Vec<AppEvent>,
    ) {
        let d = dir.index();
        match content_type {
            parser::CONTENT_CHANGE_CIPHER_SPEC => {
                self.encrypted[d] = true;
                self.phase[d] = Phase::Encrypted;
                self.handshake[d] = Vec::new();
            }
            parser::CONTENT_HANDSHAKE => {
                self.handshake[d].extend_from_slice(payload);
                self.drain_handshake(dir, out);
            }
            _ => {}
        }
    }

    fn drain_handshake(&mut self, dir: Direction, out: &mut Vec<AppEvent>) {
        let d = dir.index();
        let buf = std::mem::take(&mut self.handshake[d]);
        let mut pos = 0;
        loop {
            match parser::split_handshake(&buf[pos..]) {
                Parsed::Done((msg_type, body), used) => {
                    self.on_handshake(dir, msg_type, body, out);
                    pos += used;
                }
                Parsed::Incomplete(needed) => {
                    if buf.len() - pos + needed > MAX_HANDSHAKE_MESSAGE {
                        anomaly(out, "HANDSHAKE_TOO_LARGE", format!("handshake message larger than {MAX_HANDSHAKE_MESSAGE} bytes; direction no longer parsed"));
                        self.stop(d);
                        return;
                    }
                    break;
                }
            }
        }
        let mut buf = buf;
        buf.drain(..pos);
        self.handshake[d] = buf;
    }

    fn on_handshake(&mut self, dir: Direction, msg_type: u8, body: &[u8], out: &mut Vec<AppEvent>) {
        match (dir, msg_type) {
            (Direction::ToServer, parser::HS_CLIENT_HELLO) => {
                match parser::parse_client_hello(body) {
                    Ok(hello) => {
                        let s = parser::ja3_string(&hello);
                        self.info.ja3 = Some(Fingerprint {
                            hash: parser::ja3_hash(&s),
                            string: s,
                        });
                        self.info.sni = hello.sni.clone();
                        self.info.client_hello = Some(hello);
                    }
                    Err(err) => anomaly(out, "INVALID_HANDSHAKE_MESSAGE", err.to_string()),
                }
            }
            (Direction::ToClient, parser::HS_SERVER_HELLO) => {
                match parser::parse_server_hello(body) {
                    Ok(hello) => {
                        let s = parser::ja3s_string(&hello);
                        self.info.ja3s = Some(Fingerprint {
                            hash: parser::ja3_hash(&s),
                            string: s,
                        });
                        self.info.server_hello = Some(hello);
                    }
                    Err(err) => anomaly(out, "INVALID_HANDSHAKE_MESSAGE", err.to_string()),
                }
            }
            (Direction::ToClient, parser::HS_CERTIFICATE) if self.info.certs.is_empty() => {
                match parser::parse_certificate_list(body, MAX_CERTS) {
                    Ok(certs) => {
                        self.info.certs = certs.iter().map(|c| c.to_vec()).collect();
                        if let Some(first) = certs.first() {
                            match parser::parse_certificate(first) {
                                Ok(info) => self.info.cert = Some(info),
                                Err(err) => anomaly(out, "INVALID_CERTIFICATE", err.to_string()),
                            }
                        }
                    }
                    Err(err) => anomaly(out, "INVALID_CERTIFICATE", err.to_string()),
                }
            }
            _ => {}
        }
    }

    fn maybe_emit(&mut self, out: &mut Vec<AppEvent>) {
        if !self.emitted && self.encrypted[0] && self.encrypted[1] {
            self.info.handshake_done = true;
            self.emit(out);
            // Nothing left to learn: stop framing records to save work.
            self.stop(0);
            self.stop(1);
        }
    }

    fn emit(&mut self, out: &mut Vec<AppEvent>) {
        if self.emitted
            || self.errored
            || (self.info.client_hello.is_none() && self.info.server_hello.is_none())
        {
            return;
        }
        self.emitted = true;
        out.push(AppEvent::Tls(Box::new(self.info.clone())));
    }

    /// Bytes of one direction were lost: record framing is gone, so that direction stops.
    pub fn on_gap(&mut self, dir: Direction) {
        self.stop(dir.index());
    }

    /// Flow end: the summary is emitted if it was not yet and a hello was seen.
    pub fn on_close(&mut self, out: &mut Vec<AppEvent>) {
        self.emit(out);
        self.stop(0);
        self.stop(1);
    }
}
