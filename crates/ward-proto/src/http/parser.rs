//! Pure HTTP/1.x parsing over byte slices: finding the end of a message head, request and status
//! lines, header fields, chunk-size lines, URI normalisation and bounded body decompression.
//!
//! Lax like libhtp (which Suricata uses): a request line without protocol is HTTP/0.9, an unknown
//! method is kept and flagged, a header line without colon is kept as a name with an empty value.
//! Header fields are parsed with `httparse`; when it refuses a block (obsolete line folding, bytes it
//! does not allow) a tolerant line splitter takes over so that hostile or old peers still yield the
//! fields a rule may look at.

use std::io::Read;

use crate::Parsed;

/// Most header fields kept per message; Suricata's libhtp keeps more, but 256 fields is far beyond
/// real clients and bounds the work per message.
pub const MAX_HEADERS: usize = 256;
/// Longest request/status line plus header block we buffer while waiting for its end; beyond this
/// the direction is flagged and no longer parsed (libhtp's default limit is similar, 18 KiB soft).
pub const MAX_HEAD_LEN: usize = 64 * 1024;
/// Longest chunk-size line we accept (hex digits plus extensions).
pub const MAX_CHUNK_LINE: usize = 1024;
/// Most decompressed body bytes kept for inspection (Suricata decompresses into its body buffer,
/// bounded by the body limits; 1 MiB keeps zip bombs harmless).
pub const MAX_DECOMPRESSED: usize = 1024 * 1024;

/// Methods libhtp knows; others are kept and flagged `REQUEST_LINE_UNKNOWN_METHOD`.
pub const KNOWN_METHODS: &[&[u8]] = &[
    b"GET",
    b"POST",
    b"HEAD",
    b"PUT",
    b"DELETE",
    b"OPTIONS",
    b"CONNECT",
    b"TRACE",
    b"PATCH",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"VERSION-CONTROL",
    b"CHECKOUT",
    b"UNCHECKOUT",
    b"CHECKIN",
    b"UPDATE",
    b"LABEL",
    b"REPORT",
    b"MKWORKSPACE",
    b"MKACTIVITY",
    b"BASELINE-CONTROL",
    b"MERGE",
    b"INVALID",
    b"SEARCH",
];

/// One header field as sent (name and value trimmed of surrounding whitespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

/// A parsed message head: the first line and the fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    /// The first line without its line ending.
    pub line: Vec<u8>,
    /// The header block as sent: every field line with its line ending, without the first line
    /// and without the final empty line.
    pub raw_headers: Vec<u8>,
    pub headers: Vec<HeaderField>,
    /// A header line had no colon.
    pub missing_colon: bool,
}

impl Head {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| h.value.as_slice())
    }

    /// How many times a header appears.
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name.as_bytes()))
            .count()
    }
}

/// Position just after the empty line that ends a head starting at `buf[0]`, searching from
/// `from` (bytes before it are known not to end the head). Accepts CRLF and bare LF.
pub fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    let mut i = start;
    while let Some(off) = buf
        .get(i..)
        .and_then(|s| s.iter().position(|&b| b == b'\n'))
    {
        let nl = i + off;
        // An empty line is "\n" right after another "\n", or "\r\n" right after "\n".
        if nl >= 1 && buf[nl - 1] == b'\n' {
            return Some(nl + 1);
        }
        if nl >= 2 && buf[nl - 1] == b'\r' && buf[nl - 2] == b'\n' {
            return Some(nl + 1);
        }
        i = nl + 1;
    }
    None
}

/// Splits a head block (first line .. empty line) into first line and fields.
pub fn parse_head(block: &[u8]) -> Head {
    let line_end = block
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(block.len());
    let line = trim_eol(&block[..line_end]).to_vec();
    let rest = block.get(line_end + 1..).unwrap_or(&[]);
    let raw_headers = strip_final_empty_line(rest).to_vec();
    let mut head = Head {
        line,
        raw_headers,
        headers: Vec::new(),
        missing_colon: false,
    };
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(rest, &mut slots) {
        Ok(httparse::Status::Complete((_, fields))) => {
            head.headers = fields
                .iter()
                .map(|h| HeaderField {
                    name: h.name.as_bytes().to_vec(),
                    value: trim(h.value).to_vec(),
                })
                .collect();
        }
        _ => lax_headers(&head.raw_headers.clone(), &mut head),
    }
    head
}

fn lax_headers(raw: &[u8], head: &mut Head) {
    for line in raw.split(|&b| b == b'\n') {
        let line = trim_eol(line);
        if line.is_empty() {
            continue;
        }
        if (line[0] == b' ' || line[0] == b'\t') && !head.headers.is_empty() {
            // obsolete line folding: continues the previous value
            if let Some(last) = head.headers.last_mut() {
                last.value.push(b' ');
                last.value.extend_from_slice(trim(line));
            }
            continue;
        }
        if head.headers.len() >= MAX_HEADERS {
            break;
        }
        match line.iter().position(|&b| b == b':') {
            Some(colon) => head.headers.push(HeaderField {
                name: trim(&line[..colon]).to_vec(),
                value: trim(&line[colon + 1..]).to_vec(),
            }),
            None => {
                head.missing_colon = true;
                head.headers.push(HeaderField {
                    name: trim(line).to_vec(),
                    value: Vec::new(),
                });
            }
        }
    }
}

fn strip_final_empty_line(rest: &[u8]) -> &[u8] {
    let mut end = rest.len();
    // drop the empty line ("\n" or "\r\n") that ended the head
    if end >= 1 && rest[end - 1] == b'\n' {
        end -= 1;
        if end >= 1 && rest[end - 1] == b'\r' {
            end -= 1;
        }
    }
    &rest[..end]
}

pub(crate) fn trim_eol(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && (line[end - 1] == b'\r' || line[end - 1] == b'\n') {
        end -= 1;
    }
    &line[..end]
}

pub(crate) fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |p| p + 1);
    &s[start..end]
}

/// The parts of a request line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestLine {
    pub method: Vec<u8>,
    pub uri: Vec<u8>,
    /// `None` for an HTTP/0.9 request line (no protocol).
    pub protocol: Option<Vec<u8>>,
}

/// Splits a request line as libhtp does: the method up to the first whitespace, the protocol
/// after the last whitespace (when there are at least three parts), the URI in between — so
/// `GET GET /txt HTTP/1.1` has the URI `GET /txt`, and `GET /x` has no protocol.
pub fn parse_request_line(line: &[u8]) -> RequestLine {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let line = trim(line);
    let method_end = line.iter().position(is_ws).unwrap_or(line.len());
    let method = line[..method_end].to_vec();
    let rest = trim(&line[method_end..]);
    match rest.iter().rposition(is_ws) {
        Some(last_ws) => RequestLine {
            method,
            uri: trim(&rest[..last_ws]).to_vec(),
            protocol: Some(rest[last_ws + 1..].to_vec()),
        },
        None => RequestLine {
            method,
            uri: rest.to_vec(),
            protocol: None,
        },
    }
}

/// True if the method is one libhtp knows.
pub fn is_known_method(method: &[u8]) -> bool {
    KNOWN_METHODS.contains(&method)
}

/// The parts of a status line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusLine {
    pub protocol: Vec<u8>,
    /// The status code as sent (three digits normally).
    pub status_raw: Vec<u8>,
    pub status: Option<u16>,
    pub reason: Vec<u8>,
}

/// Splits a status line (`HTTP/1.1 200 OK`).
pub fn parse_status_line(line: &[u8]) -> StatusLine {
    let mut parts = line.splitn(3, |b| *b == b' ');
    let protocol = parts.next().unwrap_or(&[]).to_vec();
    let status_raw = trim(parts.next().unwrap_or(&[])).to_vec();
    let reason = trim(parts.next().unwrap_or(&[])).to_vec();
    let status = std::str::from_utf8(&status_raw)
        .ok()
        .filter(|s| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok());
    StatusLine {
        protocol,
        status_raw,
        status,
        reason,
    }
}

/// Parses a `Content-Length` value: digits only (surrounding whitespace allowed).
pub fn parse_content_length(value: &[u8]) -> Option<u64> {
    let v = trim(value);
    // Leading zeros are legal (and used to smuggle requests past parsers that choke on them).
    let zeros = v.iter().take_while(|&&b| b == b'0').count();
    let v = if zeros == v.len() {
        &v[v.len().saturating_sub(1)..]
    } else {
        &v[zeros..]
    };
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Parses a chunk-size line at the start of `buf`: the size and the bytes the line used.
pub fn parse_chunk_size(buf: &[u8]) -> Result<Parsed<u64>, crate::ProtoError> {
    let Some(nl) = buf.iter().take(MAX_CHUNK_LINE).position(|&b| b == b'\n') else {
        if buf.len() >= MAX_CHUNK_LINE {
            return Err(crate::ProtoError::LimitExceeded {
                what: "http chunk-size line",
                limit: MAX_CHUNK_LINE,
            });
        }
        return Ok(Parsed::Incomplete(1));
    };
    let line = trim(&buf[..nl]);
    let digits_end = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    let digits = &line[..digits_end];
    if digits.is_empty() || digits.len() > 15 {
        return Err(crate::ProtoError::malformed(
            "http chunk size",
            format!("{:?}", String::from_utf8_lossy(line)),
        ));
    }
    let mut size = 0u64;
    for &d in digits {
        size = size * 16 + (d as char).to_digit(16).unwrap_or(0) as u64;
    }
    Ok(Parsed::Done(size, nl + 1))
}

/// The normalised URI the detection engine matches `http.uri` on: the path and query of the
/// request target (scheme and authority dropped), `%XX` escapes decoded and `.`/`..` segments
/// removed from the path.
pub fn normalize_uri(raw: &[u8]) -> Vec<u8> {
    let mut target = raw;
    // absolute-form: drop scheme://authority
    if let Some(pos) = find(raw, b"://") {
        if raw[..pos]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            let after = &raw[pos + 3..];
            target = match after.iter().position(|&b| b == b'/' || b == b'?') {
                Some(p) => &after[p..],
                None => b"/",
            };
        }
    }
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(q) => (&target[..q], Some(&target[q..])),
        None => (target, None),
    };
    let decoded = percent_decode(path);
    let mut out = remove_dot_segments(&decoded);
    if let Some(q) = query {
        out.extend_from_slice(&percent_decode(q));
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && i + 2 < s.len()
            && s[i + 1].is_ascii_hexdigit()
            && s[i + 2].is_ascii_hexdigit()
        {
            let hi = (s[i + 1] as char).to_digit(16).unwrap_or(0) as u8;
            let lo = (s[i + 2] as char).to_digit(16).unwrap_or(0) as u8;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

fn remove_dot_segments(path: &[u8]) -> Vec<u8> {
    if !path.contains(&b'.') {
        return path.to_vec();
    }
    let absolute = path.first() == Some(&b'/');
    let mut segments: Vec<&[u8]> = Vec::new();
    let parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    let last = parts.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, seg) in parts.iter().enumerate() {
        match *seg {
            b"." => trailing_slash = i == last,
            b".." => {
                segments.pop();
                trailing_slash = i == last;
            }
            b"" if i == 0 => {}
            other => {
                segments.push(other);
                trailing_slash = false;
            }
        }
    }
    let mut out = Vec::with_capacity(path.len());
    if absolute {
        out.push(b'/');
    }
    out.extend_from_slice(&segments.join(&b'/'));
    if trailing_slash && out.last() != Some(&b'/') {
        out.push(b'/');
    }
    out
}

/// Content codings undone in request bodies (response bodies follow libhtp's rules, see
/// [`crate::http::decompress`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentCoding {
    Identity,
    Gzip,
    Deflate,
}

impl ContentCoding {
    /// From a `Content-Encoding` value (the last coding applied is what we undo).
    pub fn from_header(value: Option<&[u8]>) -> Self {
        let Some(v) = value else {
            return ContentCoding::Identity;
        };
        let last = v.rsplit(|&b| b == b',').next().map(trim).unwrap_or(&[]);
        if last.eq_ignore_ascii_case(b"gzip") || last.eq_ignore_ascii_case(b"x-gzip") {
            ContentCoding::Gzip
        } else if last.eq_ignore_ascii_case(b"deflate") {
            ContentCoding::Deflate
        } else {
            ContentCoding::Identity
        }
    }
}

/// Undoes a content coding into at most [`MAX_DECOMPRESSED`] bytes. A stream that breaks part-way
/// keeps what decoded before the break (a truncated capture still shows its first bytes).
pub fn decompress(coding: ContentCoding, body: &[u8]) -> Vec<u8> {
    fn read_bounded(mut r: impl Read) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        while out.len() < MAX_DECOMPRESSED {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n.min(MAX_DECOMPRESSED - out.len())]),
            }
        }
        out
    }
    match coding {
        ContentCoding::Identity => body.to_vec(),
        ContentCoding::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(body)),
        ContentCoding::Deflate => {
            // "deflate" is zlib-wrapped by the RFC but raw deflate in practice from some servers.
            let zlib = read_bounded(flate2::read::ZlibDecoder::new(body));
            if zlib.is_empty() && !body.is_empty() {
                read_bounded(flate2::read::DeflateDecoder::new(body))
            } else {
                zlib
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end_with_crlf_and_lf() {
        assert_eq!(
            find_head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody", 0),
            Some(27)
        );
        assert_eq!(find_head_end(b"GET / HTTP/1.0\n\nx", 0), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nHost: a\r\n", 0), None);
    }

    #[test]
    fn request_line_variants() {
        let r = parse_request_line(b"GET /a%20b HTTP/1.1");
        assert_eq!(
            (r.method.as_slice(), r.uri.as_slice()),
            (&b"GET"[..], &b"/a%20b"[..])
        );
        assert_eq!(r.protocol.as_deref(), Some(&b"HTTP/1.1"[..]));
        assert_eq!(parse_request_line(b"GET /").protocol, None);
        assert_eq!(
            parse_request_line(b"GET GET /txt HTTP/1.1").uri,
            b"GET /txt".to_vec()
        );
        assert_eq!(parse_request_line(b"OPTIONSHTTP/1.1").uri, b"".to_vec());
        assert!(!is_known_method(b"FOO"));
    }

    #[test]
    fn headers_parse_strict_and_lax() {
        let h = parse_head(b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: x y\r\n\r\n");
        assert_eq!(h.header("host"), Some(&b"example.com"[..]));
        assert_eq!(h.header("user-agent"), Some(&b"x y"[..]));
        assert_eq!(
            h.raw_headers,
            b"Host: example.com\r\nUser-Agent: x y\r\n".to_vec()
        );
        let lax =
            parse_head(b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n two\r\nbroken line\r\n\r\n");
        assert_eq!(lax.header("x-long"), Some(&b"one two"[..]));
        assert!(lax.missing_colon);
    }

    #[test]
    fn status_and_lengths() {
        let s = parse_status_line(b"HTTP/1.1 404 Not Found");
        assert_eq!(
            (s.status, s.reason.as_slice()),
            (Some(404), &b"Not Found"[..])
        );
        assert_eq!(parse_status_line(b"HTTP/1.1 abc").status, None);
        assert_eq!(parse_content_length(b" 42 "), Some(42));
        assert_eq!(parse_content_length(b"-1"), None);
        assert_eq!(
            parse_content_length(b"000000000000000000000000000050"),
            Some(50)
        );
        assert_eq!(parse_content_length(b"000"), Some(0));
        assert_eq!(
            parse_chunk_size(b"1a;ext=1\r\nxx").unwrap(),
            Parsed::Done(26, 10)
        );
        assert_eq!(parse_chunk_size(b"1a").unwrap(), Parsed::Incomplete(1));
        assert!(parse_chunk_size(b"zz\r\n").is_err());
    }

    #[test]
    fn uri_normalisation() {
        assert_eq!(
            normalize_uri(b"/a/./b/../c%2Ed?x=%41"),
            b"/a/c.d?x=A".to_vec()
        );
        assert_eq!(
            normalize_uri(b"http://example.com:8080/x/y"),
            b"/x/y".to_vec()
        );
        assert_eq!(normalize_uri(b"http://example.com"), b"/".to_vec());
        assert_eq!(normalize_uri(b"/dir/.."), b"/".to_vec());
    }

    #[test]
    fn gzip_round_trip_and_bound() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&vec![b'a'; 2 * MAX_DECOMPRESSED]).unwrap();
        let gz = enc.finish().unwrap();
        let out = decompress(ContentCoding::Gzip, &gz);
        assert_eq!(out.len(), MAX_DECOMPRESSED);
        assert_eq!(
            decompress(ContentCoding::Gzip, &gz[..gz.len() / 2]).first(),
            Some(&b'a')
        );
    }
}
