//! The response direction of [`HttpState`], after libhtp's response parser (what Suricata uses),
//! including what it tolerates and what it refuses:
//!
//! * lines before the status line: empty lines are skipped; a line that does not start with
//!   `http` (after whitespace and NULs) is skipped when a line starting with `H` follows it or it
//!   has at most two characters, and is otherwise response body (as browsers show it);
//! * the status line ends at LF, CR or CRLF; the header block is parsed by
//!   [`crate::http::headers`] (CR line ends, folding, missing colons, NULs in names); repeated
//!   fields are joined with `", "` (Content-Length keeps its first value);
//! * the body: none for HEAD, and for 1xx/204/304 without Transfer-Encoding and Content-Length;
//!   `100 Continue` (without a positive Content-Length) is interim; `101` without TE/CL switches
//!   protocols; chunked when Transfer-Encoding contains `chunked` anywhere (NULs ignored), even
//!   next to Content-Length or in an HTTP/1.0 response; else Content-Length (leading and trailing
//!   junk around the digits tolerated; an unparsable one stops the direction); else until close;
//! * chunked: lines made only of CR, LF, space, tab, VT, FF before a chunk size are skipped, the
//!   size is hex digits with anything after them, everything up to the LF after the chunk data is
//!   skipped, and a size line that is not hex (or a body that does not start like one) turns the
//!   rest of the stream into plain body;
//! * bytes after a complete body that do not start a response line are more body of the same
//!   response;
//! * the body is decoded by [`crate::http::decompress`] per `Content-Encoding`.

use super::*;
use crate::http::decompress::{self, Decoder};
use crate::http::headers;

/// The decoder of the response being read. Cloning a flow's state drops it (decompression
/// state cannot be copied; a clone is only taken of idle flows in practice).
#[derive(Debug, Default)]
pub(super) struct DecoderSlot(pub(super) Option<Box<Decoder>>);

impl Clone for DecoderSlot {
    fn clone(&self) -> Self {
        DecoderSlot(None)
    }
}

/// Chunk-control characters (libhtp's `is_chunked_ctl_char`).
fn is_chunk_ctl(c: u8) -> bool {
    matches!(c, b'\r' | b'\n' | b' ' | b'\t' | 0x0b | 0x0c)
}

/// libhtp's chunk-size line: `Ok(Some(size))`, `Ok(None)` for a line to skip (no digits and
/// nothing else, or a size beyond `i32::MAX`), `Err` for a line that is not a size.
pub(crate) fn chunk_size(line: &[u8]) -> Result<Option<u64>, ()> {
    let line = &line[line.iter().take_while(|&&c| is_chunk_ctl(c)).count()..];
    let ws = |c: &u8| *c == b' ' || *c == b'\t';
    let line = &line[line.iter().take_while(|c| ws(c)).count()..];
    let digits = line.iter().take_while(|c| c.is_ascii_hexdigit()).count();
    let trailing = &line[digits..];
    let trailing = &trailing[trailing.iter().take_while(|c| ws(c)).count()..];
    if digits == 0 {
        return if trailing.is_empty() {
            Ok(None)
        } else {
            Err(())
        };
    }
    if digits > 16 {
        return Err(());
    }
    let mut n = 0u64;
    for &d in &line[..digits] {
        n = n * 16 + (d as char).to_digit(16).unwrap_or(0) as u64;
    }
    if n > i32::MAX as u64 {
        return Ok(None);
    }
    Ok(Some(n))
}

/// libhtp's check on data that has no line end yet: could it still be a chunk size?
fn may_be_chunk_size(data: &[u8]) -> bool {
    match data.iter().find(|&&c| !is_chunk_ctl(c)) {
        None => true,
        Some(c) => c.is_ascii_hexdigit(),
    }
}

/// libhtp's Content-Length parse: optional spaces, anything, digits, optional spaces, anything.
pub(crate) fn content_length(value: &[u8]) -> Option<u64> {
    let start = value.iter().position(u8::is_ascii_digit)?;
    let digits = value[start..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    std::str::from_utf8(&value[start..start + digits])
        .ok()?
        .parse()
        .ok()
}

/// libhtp's status number: digits only (spaces around allowed), 100 to 999.
fn status_number(s: &[u8]) -> Option<u16> {
    let ws = |c: &u8| *c == b' ' || *c == b'\t';
    let t = &s[s.iter().take_while(|c| ws(c)).count()..];
    let digits = t.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || t[digits..].iter().any(|c| !ws(c)) {
        return None;
    }
    let n: u16 = std::str::from_utf8(&t[..digits]).ok()?.parse().ok()?;
    (100..=999).contains(&n).then_some(n)
}

/// Splits a status line as libhtp does: protocol, status, message (any may be missing).
fn split_status_line(line: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let sp = |c: &u8| headers::is_space(*c);
    let mut i = line.iter().take_while(|c| sp(c) || **c == 0).count();
    let p_start = i;
    i += line[i..].iter().take_while(|c| !sp(c)).count();
    let protocol = line[p_start..i].to_vec();
    if protocol.is_empty() {
        return (protocol, Vec::new(), Vec::new());
    }
    let ws1 = line[i..].iter().take_while(|c| sp(c)).count();
    i += ws1;
    let s_start = i;
    i += line[i..].iter().take_while(|c| !sp(c)).count();
    let status = line[s_start..i].to_vec();
    if ws1 == 0 || status.is_empty() {
        return (protocol, Vec::new(), Vec::new());
    }
    let ws2 = line[i..]
        .iter()
        .take_while(|c| c.is_ascii_whitespace())
        .count();
    if ws2 == 0 {
        return (protocol, status, Vec::new());
    }
    (protocol, status, headers::chomp(&line[i + ws2..]).to_vec())
}

fn first_value<'a>(fields: &'a [parser::HeaderField], name: &[u8]) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|h| headers::eq_nocase_nozero(&h.name, name))
        .map(|h| h.value.as_slice())
}

impl HttpState {
    /// Parses buffered response bytes; returns how many were used. `closed`: the stream ended.
    pub(super) fn parse_responses(
        &mut self,
        buf: &[u8],
        closed: bool,
        out: &mut Vec<AppEvent>,
    ) -> usize {
        let mut pos = 0;
        // Bytes at the start of `buf` already searched for a line end by the previous call.
        let mut searched = std::mem::take(&mut self.resp_searched);
        let mut from_searched = |pos: usize| {
            let from = if pos == 0 {
                searched.saturating_sub(1)
            } else {
                0
            };
            searched = 0;
            from
        };
        // Each state either uses bytes, changes state, or returns; the bound is a backstop.
        for _ in 0..buf.len().saturating_mul(4) + 64 {
            let rest = &buf[pos..];
            match self.phase[1] {
                Phase::Stopped => return pos,
                Phase::Resync => match resync_point(rest, |line| {
                    line.len() >= 5 && line[..5].eq_ignore_ascii_case(b"HTTP/")
                }) {
                    Ok(at) => {
                        pos += at;
                        self.phase[1] = Phase::Idle;
                    }
                    Err(keep_from) => return pos + keep_from,
                },
                Phase::Idle => {
                    if rest.is_empty() {
                        return pos;
                    }
                    self.phase[1] = Phase::Line;
                    self.resp_started = false;
                    self.resp_body_line = false;
                    self.resp_decoder = DecoderSlot(None);
                }
                Phase::Line => {
                    if rest.is_empty() {
                        return pos;
                    }
                    let from = from_searched(pos).min(rest.len());
                    let n = match headers::take_line(&rest[from..]) {
                        Some(n) => from + n,
                        None if closed => rest.len(),
                        None => {
                            if rest.len() > MAX_HEAD_LEN {
                                anomaly(out, self.response_tx, "RESPONSE_FIELD_TOO_LONG", format!("response line longer than {MAX_HEAD_LEN} bytes; direction no longer parsed"));
                                self.phase[1] = Phase::Stopped;
                                return buf.len();
                            }
                            self.resp_searched = rest.len();
                            return pos;
                        }
                    };
                    let line = &rest[..n];
                    pos += n;
                    let after = &buf[pos..];
                    if headers::line_is_ignorable(line) {
                        if closed && self.resp_started {
                            self.phase[1] = Phase::Finalize;
                        }
                        continue;
                    }
                    if headers::line_is_body(line) {
                        if after.len() > 1 && (after[0] == b'H' || headers::chomp(line).len() <= 2)
                        {
                            continue;
                        }
                        if !self.resp_body_line {
                            self.resp_body_line = true;
                            let tx = self.begin_response(out);
                            anomaly(
                                out,
                                Some(tx),
                                "RESPONSE_LINE_INVALID",
                                "response line does not start with HTTP; treated as body",
                            );
                        }
                        // A body without headers is never decoded.
                        self.resp_decoder = DecoderSlot(None);
                        self.response_body(line);
                        if after.is_empty() {
                            self.phase[1] = Phase::Finalize;
                        }
                        continue;
                    }
                    self.status_line(line);
                    self.phase[1] = Phase::Headers { trailer: false };
                    self.resp_hdr_wait = None;
                }
                Phase::Headers { trailer } => {
                    if let Some(n) = self.resp_hdr_wait {
                        // Only a new line end (or a byte after one) can complete a field.
                        let old_end = n.min(rest.len());
                        let new = &rest[old_end..];
                        let last = old_end.checked_sub(1).map(|i| rest[i]);
                        if !closed
                            && !new.iter().any(|&c| c == b'\r' || c == b'\n')
                            && !matches!(last, Some(b'\r' | b'\n'))
                        {
                            return pos;
                        }
                    }
                    if let Some(block) = headers::parse_block(rest, closed) {
                        self.add_response_fields(&block.fields, trailer, &rest[..block.used]);
                        pos += block.used;
                        if block.end && !closed {
                            self.resp_hdr_wait = None;
                            if trailer {
                                self.phase[1] = Phase::Finalize;
                            } else {
                                self.body_determine(out);
                            }
                            continue;
                        }
                    }
                    if closed {
                        // libhtp at end of stream: what parsed is kept, the response ends.
                        if !trailer {
                            self.attach_head(out);
                        }
                        self.phase[1] = Phase::Finalize;
                        pos = buf.len();
                        continue;
                    }
                    let rest = &buf[pos..];
                    if rest.len() > MAX_HEAD_LEN {
                        anomaly(out, self.response_tx, "RESPONSE_HEADER_TOO_LARGE", format!("response head longer than {MAX_HEAD_LEN} bytes; direction no longer parsed"));
                        self.phase[1] = Phase::Stopped;
                        return buf.len();
                    }
                    self.resp_hdr_wait = Some(rest.len());
                    return pos;
                }
                Phase::Chunked(Chunk::Size) => {
                    let res = {
                        let from = from_searched(pos).min(rest.len());
                        rest[from..]
                            .iter()
                            .position(|&c| c == b'\n')
                            .map(|p| from + p)
                    }; match res {
                        Some(nl) => {
                            let line = &rest[..=nl];
                            pos += nl + 1;
                            self.resp_line_pending = false;
                            self.count_framing(Direction::ToClient, line.len() as u64);
                            if line.iter().all(|&c| is_chunk_ctl(c)) {
                                continue;
                            }
                            match chunk_size(line) {
                                Ok(None) => {}
                                Ok(Some(0)) => {
                                    self.phase[1] = Phase::Headers { trailer: true };
                                    self.resp_hdr_wait = None;
                                }
                                Ok(Some(n)) => self.phase[1] = Phase::Chunked(Chunk::Data(n)),
                                Err(()) => {
                                    anomaly(
                                        out,
                                        self.response_tx,
                                        "INVALID_RESPONSE_CHUNK_LEN",
                                        format!(
                                            "invalid chunk size line {:?}; the rest is body",
                                            String::from_utf8_lossy(&line[..line.len().min(40)])
                                        ),
                                    );
                                    pos -= line.len();
                                    self.phase[1] = Phase::UntilClose;
                                }
                            }
                        }
                        None => {
                            if rest.is_empty() {
                                if closed {
                                    self.phase[1] = Phase::Finalize;
                                    continue;
                                }
                                return pos;
                            }
                            if !self.resp_line_pending && !may_be_chunk_size(rest) {
                                anomaly(out, self.response_tx, "INVALID_RESPONSE_CHUNK_LEN", "chunked body does not start with a chunk size; the rest is body");
                                self.phase[1] = Phase::UntilClose;
                                continue;
                            }
                            if closed {
                                self.phase[1] = Phase::Finalize;
                                pos = buf.len();
                                continue;
                            }
                            if rest.len() > MAX_HEAD_LEN {
                                anomaly(
                                    out,
                                    self.response_tx,
                                    "RESPONSE_FIELD_TOO_LONG",
                                    "chunk size line too long; direction no longer parsed",
                                );
                                self.phase[1] = Phase::Stopped;
                                return buf.len();
                            }
                            self.resp_line_pending = true;
                            self.resp_searched = rest.len();
                            return pos;
                        }
                    }
                }
                Phase::Chunked(Chunk::Data(left)) => {
                    if closed && rest.is_empty() {
                        self.phase[1] = Phase::Finalize;
                        continue;
                    }
                    let take = (rest.len() as u64).min(left) as usize;
                    if take == 0 {
                        return pos;
                    }
                    self.response_body(&rest[..take]);
                    pos += take;
                    self.phase[1] = if take as u64 == left {
                        Phase::Chunked(Chunk::DataEnd)
                    } else {
                        Phase::Chunked(Chunk::Data(left - take as u64))
                    };
                }
                Phase::Chunked(Chunk::DataEnd) => match rest.iter().position(|&c| c == b'\n') {
                    Some(nl) => {
                        pos += nl + 1;
                        self.count_framing(Direction::ToClient, nl as u64 + 1);
                        self.phase[1] = Phase::Chunked(Chunk::Size);
                    }
                    None => {
                        self.count_framing(Direction::ToClient, rest.len() as u64);
                        if closed {
                            self.phase[1] = Phase::Finalize;
                        }
                        pos = buf.len();
                        if !closed {
                            return pos;
                        }
                    }
                },
                // Trailers are read in `Headers { trailer: true }`.
                Phase::Chunked(Chunk::Trailer) => self.phase[1] = Phase::Finalize,
                Phase::Length(left) => {
                    if closed && rest.is_empty() {
                        self.phase[1] = Phase::Finalize;
                        continue;
                    }
                    let take = (rest.len() as u64).min(left) as usize;
                    if take == 0 {
                        return pos;
                    }
                    self.response_body(&rest[..take]);
                    pos += take;
                    if take as u64 == left {
                        self.end_response_body();
                        self.phase[1] = Phase::Finalize;
                    } else {
                        self.phase[1] = Phase::Length(left - take as u64);
                    }
                }
                Phase::UntilClose => {
                    if !rest.is_empty() {
                        self.response_body(rest);
                        pos = buf.len();
                    }
                    if !closed {
                        return pos;
                    }
                    self.phase[1] = Phase::Finalize;
                }
                Phase::Finalize => {
                    // What follows a complete body: more body unless it starts a response.
                    let work_len = if closed {
                        rest.len()
                    } else if rest.is_empty() {
                        0
                    } else if rest[0] != b'\n' {
                        let from = from_searched(pos).min(rest.len());
                        match rest[from..].iter().position(|&c| c == b'\n') {
                            Some(nl) => from + nl + 1,
                            None => {
                                if rest.len() > MAX_HEAD_LEN {
                                    self.complete_response();
                                    self.phase[1] = Phase::Stopped;
                                    return buf.len();
                                }
                                self.resp_searched = rest.len();
                                return pos;
                            }
                        }
                    } else {
                        rest.len()
                    };
                    let work = &rest[..work_len];
                    if !work.is_empty() && headers::line_is_body(work) {
                        if self.resp_decoding_done {
                            // libhtp fails the direction here: its decoder is already closed.
                            self.complete_response();
                            self.phase[1] = Phase::Stopped;
                            return buf.len();
                        }
                        self.response_body(work);
                        pos += work_len;
                        continue;
                    }
                    self.complete_response();
                    self.phase[1] = Phase::Idle;
                }
                Phase::Head(_) => self.phase[1] = Phase::Idle,
            }
        }
        pos
    }

    /// Associates the response being read with its transaction (the oldest one still waiting
    /// for a response, else a new one without request), creating its response half.
    fn begin_response(&mut self, out: &mut Vec<AppEvent>) -> u64 {
        if self.resp_started {
            if let Some(id) = self.response_tx {
                return id;
            }
        }
        self.resp_started = true;
        let waiting = |s: &Self| {
            s.txs
                .iter()
                .find(|t| t.response.is_none() && !t.response_complete)
                .map(|t| t.tx_id)
        };
        let mut target = waiting(self);
        if target.is_none()
            && matches!(self.phase[0], Phase::Head(_))
            && !self.buffers[0].is_empty()
        {
            // The server answers a request whose head never ended (an HTTP/0.9 line): that
            // request is complete as far as the server is concerned.
            self.flush_partial_request_head(out);
            target = waiting(self);
        }
        let tx_id = match target {
            Some(id) => id,
            None => {
                let id = self.next_tx;
                self.next_tx += 1;
                anomaly(
                    out,
                    Some(id),
                    "UNABLE_TO_MATCH_RESPONSE_TO_REQUEST",
                    "response without a request",
                );
                self.txs.push_back(HttpTransaction {
                    tx_id: id,
                    request_complete: true,
                    ..HttpTransaction::default()
                });
                id
            }
        };
        self.response_tx = Some(tx_id);
        if let Some(tx) = self.tx_mut(Some(tx_id)) {
            tx.response.get_or_insert_with(HttpResponse::default);
        }
        tx_id
    }

    /// Moves the response head read so far into its transaction.
    fn attach_head(&mut self, out: &mut Vec<AppEvent>) -> u64 {
        let mut head = std::mem::take(&mut *self.resp_head);
        let id = self.begin_response(out);
        if let Some(tx) = self.tx_mut(Some(id)) {
            // Body bytes taken before this head (lines that were not a status line) stay.
            if let Some(old) = tx.response.take() {
                head.body = old.body;
                head.body_len = old.body_len;
                head.message_len = old.message_len;
                head.body_truncated = old.body_truncated;
            }
            tx.response = Some(head);
        }
        id
    }

    fn response_mut(&mut self) -> Option<&mut HttpResponse> {
        let id = self.response_tx;
        self.tx_mut(id).and_then(|t| t.response.as_mut())
    }

    /// A status line: starts (or, after an interim response, restarts) the response head.
    fn status_line(&mut self, line: &[u8]) {
        let (protocol, status_raw, reason) = split_status_line(line);
        *self.resp_head = HttpResponse {
            line: parser::trim_eol(line).to_vec(),
            protocol,
            status: status_number(&status_raw),
            status_raw,
            reason,
            ..HttpResponse::default()
        };
    }

    /// Adds parsed fields to the response (libhtp's table: a repeated name joins its value to
    /// the first with ", ", except Content-Length, which keeps its first value).
    fn add_response_fields(&mut self, fields: &[headers::Field], trailer: bool, raw: &[u8]) {
        if trailer {
            return;
        }
        let r = &mut self.resp_head;
        r.raw_headers.extend_from_slice(raw);
        for f in fields {
            match r
                .headers
                .iter_mut()
                .find(|h| h.name.eq_ignore_ascii_case(&f.name))
            {
                Some(h) => {
                    r.repeated = true;
                    if !f.name.eq_ignore_ascii_case(b"content-length") {
                        h.value.extend_from_slice(b", ");
                        h.value.extend_from_slice(&f.value);
                    }
                }
                None => {
                    if r.headers.len() < parser::MAX_HEADERS {
                        r.headers.push(parser::HeaderField {
                            name: f.name.clone(),
                            value: f.value.clone(),
                        });
                    }
                }
            }
        }
    }

    /// After the header block: decides how the body is framed (libhtp's `BODY_DETERMINE`).
    fn body_determine(&mut self, out: &mut Vec<AppEvent>) {
        let tx_id = Some(self.attach_head(out));
        // raw_headers holds the block with its final empty line: drop that line
        if let Some(r) = self.response_mut() {
            let end = strip_block_end(&r.raw_headers);
            r.raw_headers.truncate(end);
        }
        let (status, te, cl, ct, repeated) = match self.response_mut() {
            Some(r) => (
                r.status,
                first_value(&r.headers, b"transfer-encoding").map(<[u8]>::to_vec),
                first_value(&r.headers, b"content-length").map(<[u8]>::to_vec),
                first_value(&r.headers, b"content-type").map(<[u8]>::to_vec),
                std::mem::take(&mut r.repeated),
            ),
            None => (None, None, None, None, false),
        };
        if repeated {
            anomaly(
                out,
                tx_id,
                "RESPONSE_HEADER_REPETITION",
                "a response header is repeated",
            );
        }
        let (is_head, is_connect) = match self.tx_mut(tx_id).and_then(|t| t.request.as_ref()) {
            Some(r) => (
                r.method.eq_ignore_ascii_case(b"HEAD"),
                r.method.eq_ignore_ascii_case(b"CONNECT"),
            ),
            None => (false, false),
        };
        let code = status.unwrap_or(0);
        self.init_decoder();
        if is_connect {
            self.pending_connect = false;
            if (200..300).contains(&code) {
                // A CONNECT tunnel: what follows is another protocol, detected afresh.
                self.open_tunnel(true);
                return;
            }
        }
        if code == 101 && te.is_none() && cl.is_none() {
            // Protocol switch: stays labelled http, not parsed further.
            self.open_tunnel(false);
            return;
        }
        let positive_length = cl
            .as_deref()
            .and_then(content_length)
            .is_some_and(|n| n > 0);
        if code == 100 && te.is_none() && !positive_length {
            // Interim response: the final one follows for the same transaction.
            self.resp_decoder = DecoderSlot(None);
            self.phase[1] = Phase::Line;
            return;
        }
        if is_head
            || (((100..200).contains(&code) || code == 204 || code == 304)
                && te.is_none()
                && cl.is_none())
        {
            self.resp_decoder = DecoderSlot(None);
            self.phase[1] = Phase::Finalize;
            return;
        }
        if te
            .as_deref()
            .is_some_and(|v| headers::contains_nocase_nozero(v, b"chunked"))
        {
            self.resp_line_pending = false;
            self.phase[1] = Phase::Chunked(Chunk::Size);
            return;
        }
        if let Some(cl) = cl {
            match content_length(&cl) {
                Some(0) => self.phase[1] = Phase::Finalize,
                Some(n) => self.phase[1] = Phase::Length(n),
                None => {
                    anomaly(
                        out,
                        tx_id,
                        "INVALID_CONTENT_LENGTH_FIELD_IN_RESPONSE",
                        "invalid Content-Length in response; direction no longer parsed",
                    );
                    self.complete_response();
                    self.phase[1] = Phase::Stopped;
                }
            }
            return;
        }
        if ct.is_some_and(|v| contains_ci(&v, b"multipart/byteranges")) {
            anomaly(
                out,
                tx_id,
                "RESPONSE_MULTIPART_BYTERANGES",
                "multipart/byteranges responses are not parsed; direction no longer parsed",
            );
            self.complete_response();
            self.phase[1] = Phase::Stopped;
            return;
        }
        self.phase[1] = Phase::UntilClose;
    }

    fn open_tunnel(&mut self, connect: bool) {
        self.complete_response();
        if let Some(tx) = self.tx_mut(self.response_tx) {
            tx.request_complete = true;
        }
        self.phase = [Phase::Stopped, Phase::Stopped];
        let early = std::mem::take(&mut self.buffers[0]);
        if connect {
            // What the client already sent after its CONNECT head belongs to the tunnel.
            self.tunnel = true;
            self.stash_tunnel(0, &early);
        }
    }

    /// Sets up decoding from the response's Content-Encoding.
    fn init_decoder(&mut self) {
        self.resp_decoding_done = false;
        let codings = self
            .response_mut()
            .and_then(|r| first_value(&r.headers, b"content-encoding").map(decompress::codings))
            .unwrap_or_default();
        self.resp_decoder = DecoderSlot(Decoder::new(&codings).map(Box::new));
    }

    /// Body bytes of the response being read (after de-chunking), decoded and kept (bounded).
    fn response_body(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let budget = MAX_FLOW_BODY_BYTES.saturating_sub(self.retained);
        let decoding_done = self.resp_decoding_done;
        let mut decoder = self.resp_decoder.0.take();
        let id = self.response_tx;
        let Some(r) = self.tx_mut(id).and_then(|t| t.response.as_mut()) else {
            self.resp_decoder = DecoderSlot(decoder);
            return;
        };
        r.body_len += data.len() as u64;
        r.message_len += data.len() as u64;
        if decoding_done {
            // the decoder was closed (a gap ended it): nothing more can be decoded
            r.body_truncated = true;
            return;
        }
        let room = RESPONSE_BODY_LIMIT.saturating_sub(r.body.len()).min(budget);
        let kept = match decoder.as_mut() {
            Some(d) => {
                d.set_room(room);
                d.write(data);
                let decoded = d.take();
                append_bounded(
                    &mut r.body,
                    &decoded,
                    RESPONSE_BODY_LIMIT,
                    budget,
                    &mut r.body_truncated,
                )
            }
            None => append_bounded(
                &mut r.body,
                data,
                RESPONSE_BODY_LIMIT,
                budget,
                &mut r.body_truncated,
            ),
        };
        self.retained += kept;
        self.resp_decoder = DecoderSlot(decoder);
    }

    /// The body of known length ended: the decoder is flushed and closed.
    fn end_response_body(&mut self) {
        let Some(mut d) = self.resp_decoder.0.take() else {
            return;
        };
        self.resp_decoding_done = true;
        let budget = MAX_FLOW_BODY_BYTES.saturating_sub(self.retained);
        let id = self.response_tx;
        let Some(r) = self.tx_mut(id).and_then(|t| t.response.as_mut()) else {
            return;
        };
        let room = RESPONSE_BODY_LIMIT.saturating_sub(r.body.len()).min(budget);
        d.set_room(room);
        d.finish();
        let decoded = d.take();
        let kept = append_bounded(
            &mut r.body,
            &decoded,
            RESPONSE_BODY_LIMIT,
            budget,
            &mut r.body_truncated,
        );
        self.retained += kept;
    }

    /// `len` response bytes were lost.
    pub(super) fn response_gap(&mut self, len: u64, out: &mut Vec<AppEvent>) {
        let id = self.response_tx;
        match self.phase[1] {
            Phase::Length(left) if len <= left && self.buffers[1].is_empty() => {
                self.gap_in_body(len);
                if len == left {
                    self.complete_response();
                    self.phase[1] = Phase::Idle;
                } else {
                    self.phase[1] = Phase::Length(left - len);
                }
            }
            Phase::UntilClose => self.gap_in_body(len),
            Phase::Stopped | Phase::Resync => {}
            phase => {
                anomaly(out, id, "INVALID_GAP", format!("{len} bytes lost outside a body of known length; resynchronising at the next message"));
                if self.resp_started {
                    self.mark_truncated(Direction::ToClient);
                    self.complete_response();
                } else if matches!(phase, Phase::Idle | Phase::Line) {
                    // A lost response head: the oldest waiting transaction will never get its
                    // response, so the next response answers the one after it.
                    if let Some(t) = self
                        .txs
                        .iter_mut()
                        .find(|t| t.response.is_none() && !t.response_complete)
                    {
                        t.response_complete = true;
                    }
                }
                self.resp_decoder = DecoderSlot(None);
                self.phase[1] = Phase::Resync;
                self.buffers[1] = Vec::new();
                self.resp_searched = 0;
            }
        }
    }

    /// A gap inside a body: counted, the body is marked truncated and decoding ends.
    fn gap_in_body(&mut self, len: u64) {
        self.end_response_body();
        if let Some(r) = self.response_mut() {
            r.body_len += len;
            r.message_len += len;
            r.body_truncated = true;
        }
    }

    /// The response is complete (libhtp's `state_response_complete`).
    pub(super) fn complete_response(&mut self) {
        self.end_response_body();
        self.resp_decoding_done = false;
        self.resp_started = false;
        self.resp_body_line = false;
        if self.response_tx.is_some() {
            self.finish_message(Direction::ToClient);
        }
    }
}

/// The length of a raw header block without the empty line that ended it.
fn strip_block_end(raw: &[u8]) -> usize {
    let mut end = raw.len();
    // the final empty line: one line end (CRLF, LFCR, LF or CR)
    if end >= 2 && (&raw[end - 2..] == b"\r\n" || &raw[end - 2..] == b"\n\r") {
        end -= 2;
    } else if end >= 1 && (raw[end - 1] == b'\n' || raw[end - 1] == b'\r') {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_size_lines() {
        assert_eq!(chunk_size(b"1a;ext=1\r\n"), Ok(Some(26)));
        assert_eq!(chunk_size(b"\r\n\nf\r\n"), Ok(Some(15)));
        assert_eq!(chunk_size(b" 5 junk\r\n"), Ok(Some(5)));
        assert_eq!(chunk_size(b"zz\r\n"), Err(()));
        assert_eq!(chunk_size(b"ffffffffff\r\n"), Ok(None));
        assert!(may_be_chunk_size(b"\r\n 1"));
        assert!(!may_be_chunk_size(b"X5O!P%@AP"));
    }

    #[test]
    fn lengths_and_status() {
        assert_eq!(content_length(b" 68 "), Some(68));
        assert_eq!(content_length(b"x68y"), Some(68));
        assert_eq!(content_length(b"abc"), None);
        assert_eq!(status_number(b"200"), Some(200));
        assert_eq!(status_number(b"20x"), None);
        assert_eq!(status_number(b"099"), None);
        assert_eq!(
            split_status_line(b"HTTP/1.1 200 ok\r\n"),
            (b"HTTP/1.1".to_vec(), b"200".to_vec(), b"ok".to_vec())
        );
        assert_eq!(
            split_status_line(b"\x00HTTP/1.1 404\r\n").1,
            b"404".to_vec()
        );
        assert_eq!(split_status_line(b"HTTP/1.1\r").1, Vec::<u8>::new());
    }
}
