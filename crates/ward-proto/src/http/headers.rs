//! Response header-block parsing the way libhtp (Suricata's HTTP library) does it, so that the
//! header fields ward sees in hostile or broken responses are the ones Suricata sees.
//!
//! The rules, from libhtp's response header parser:
//!
//! * a line ends at LF, CR, CRLF or LFCR; two malformed endings (`\n\r\r\n` before another line
//!   end, and `\r\n\r` followed by CR/space/tab) count as one line end;
//! * a line end followed by a space, tab or NUL folds the next line into the value (the fold
//!   character, or a space, joins the parts), unless the folded line looks like `token:`, which
//!   starts a new field;
//! * the field name ends at the first colon; a line end inside the name ends the name unless a
//!   space follows it (`Name\r\n :value` keeps `Name`); a line without colon is a field with an
//!   empty name and the whole line as value;
//! * the block ends at an empty line right after a field (or at a line end when there is no field
//!   at all).
//!
//! Parsing is streaming: [`parse_block`] returns `None` while more bytes could change the answer.
//! Names and values are trimmed of whitespace (space, tab, CR, LF, VT, FF).

/// Result of a streaming parse step: bytes used and the value, more data needed, or no match.
#[derive(Debug, Clone, PartialEq, Eq)]
enum P<T> {
    Ok(usize, T),
    Incomplete,
    Err,
}

use P::{Err as PErr, Incomplete, Ok as POk};

/// libhtp's `is_space` (space, tab, CR, LF, VT, FF).
pub(crate) fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
}

fn is_eol(c: u8) -> bool {
    c == b'\n' || c == b'\r'
}

/// Trims libhtp whitespace on both sides.
pub(crate) fn trimmed(mut s: &[u8]) -> &[u8] {
    while let Some((&c, rest)) = s.split_first() {
        if !is_space(c) {
            break;
        }
        s = rest;
    }
    while let Some((&c, rest)) = s.split_last() {
        if !is_space(c) {
            break;
        }
        s = rest;
    }
    s
}

fn is_separator(c: u8) -> bool {
    matches!(
        c,
        b'(' | b')'
            | b'<'
            | b'>'
            | b'@'
            | b','
            | b';'
            | b':'
            | b'\\'
            | b'"'
            | b'/'
            | b'['
            | b']'
            | b'?'
            | b'='
            | b'{'
            | b'}'
            | b' '
            | b'\t'
    )
}

fn is_token(c: u8) -> bool {
    (32..=126).contains(&c) && !is_separator(c)
}

/// A complete (non-streaming) line end: CRLF, LFCR, LF or CR.
fn eol_regular(input: &[u8]) -> Option<usize> {
    if input.starts_with(b"\r\n") || input.starts_with(b"\n\r") {
        Some(2)
    } else if input.starts_with(b"\n") || input.starts_with(b"\r") {
        Some(1)
    } else {
        None
    }
}

/// The two malformed line ends libhtp accepts in responses.
fn eol_deformed(input: &[u8]) -> P<()> {
    if input.starts_with(b"\n\r\r\n") {
        let rest = &input[4..];
        if rest.starts_with(b"\n") || rest.starts_with(b"\r\n") {
            return POk(4, ());
        }
    }
    if input.starts_with(b"\r\n\r") {
        let rest = &input[3..];
        // streaming take_while1 over CR, space, tab
        let run = rest
            .iter()
            .take_while(|&&c| c == b'\r' || c == b' ' || c == b'\t')
            .count();
        // streaming take_while1: no byte yet, or all bytes match, is "need more"
        if run == rest.len() {
            return Incomplete;
        }
        if run == 0 {
            return PErr;
        }
        let mut used = 3 + run;
        if input[used] == b'\n' {
            used += 1;
        }
        let after = &input[used..];
        if after.starts_with(b"\n") || after.starts_with(b"\r\n") {
            return PErr;
        }
        return POk(used, ());
    }
    PErr
}

/// Deformed or regular line end; the value is the length of the line end.
fn eol_any(input: &[u8]) -> P<usize> {
    match eol_deformed(input) {
        POk(n, ()) => POk(n, n),
        Incomplete => Incomplete,
        PErr => match eol_regular(input) {
            Some(n) => POk(n, n),
            None => PErr,
        },
    }
}

/// Folding whitespace (streaming: no byte yet is "incomplete").
fn folding_lws(input: &[u8]) -> P<u8> {
    match input.first() {
        None => Incomplete,
        Some(&c) if c == b' ' || c == b'\t' || c == 0 => POk(1, c),
        Some(_) => PErr,
    }
}

/// A line end not followed by folding whitespace.
fn eol_final(input: &[u8]) -> P<usize> {
    match eol_any(input) {
        POk(n, len) => match folding_lws(&input[n..]) {
            POk(..) => PErr,
            PErr => POk(n, len),
            Incomplete => Incomplete,
        },
        other => other,
    }
}

/// A line end followed by folding whitespace: (bytes used, eol length, fold byte).
fn folding(input: &[u8]) -> P<(usize, u8)> {
    let Some(n) = eol_regular(input) else {
        return PErr;
    };
    match folding_lws(&input[n..]) {
        POk(_, c) => POk(n + 1, (n, c)),
        Incomplete => Incomplete,
        PErr => PErr,
    }
}

/// What ends a value: a line end (its length), possibly followed by a fold byte.
type Terminator = (usize, Option<u8>);

fn folding_or_terminator(input: &[u8], complete: bool) -> P<Terminator> {
    match folding(input) {
        POk(n, (eol, fold)) => return POk(n, (eol, Some(fold))),
        Incomplete if !complete => return Incomplete,
        _ => {}
    }
    // A NUL never starts here (values run to a line end), so only line ends remain.
    let r = if complete {
        eol_any(input)
    } else {
        eol_final(input)
    };
    match r {
        POk(n, len) => POk(n, (len, None)),
        Incomplete => Incomplete,
        PErr => PErr,
    }
}

/// Bytes up to the next line end, then the terminator.
fn value_bytes(input: &[u8], complete: bool) -> P<(&[u8], Terminator)> {
    let Some(p) = input.iter().position(|&c| is_eol(c)) else {
        return Incomplete;
    };
    match folding_or_terminator(&input[p..], complete) {
        POk(n, t) => POk(p + n, (&input[..p], t)),
        Incomplete => Incomplete,
        PErr => PErr,
    }
}

/// Streaming `space0` (spaces and tabs).
fn space0(input: &[u8]) -> P<()> {
    let n = input
        .iter()
        .take_while(|&&c| c == b' ' || c == b'\t')
        .count();
    if n == input.len() {
        Incomplete
    } else {
        POk(n, ())
    }
}

/// `token:` ahead (a folded line that is really a new field)? Ok(true/false) or Incomplete.
fn looks_like_field(input: &[u8]) -> P<bool> {
    let mut i = match space0(input) {
        POk(n, ()) => n,
        Incomplete => return Incomplete,
        PErr => return PErr,
    };
    let tokens = input[i..].iter().take_while(|&&c| is_token(c)).count();
    if i + tokens == input.len() {
        return Incomplete;
    }
    i += tokens;
    match space0(&input[i..]) {
        POk(n, ()) => i += n,
        Incomplete => return Incomplete,
        PErr => return PErr,
    }
    if input.get(i) != Some(&b':') {
        return PErr;
    }
    if let Incomplete = space0(&input[i + 1..]) {
        return Incomplete;
    }
    POk(0, tokens > 0)
}

/// Most folded continuation lines joined into one value (libhtp's bound).
const MAX_FOLDS: u8 = 128;

fn value(input: &[u8], complete: bool) -> P<Vec<u8>> {
    let (mut rest, val, fold) = match value_bytes(input, complete) {
        POk(n, (v, (_, fold))) => (n, v, fold),
        Incomplete => return Incomplete,
        PErr => return PErr,
    };
    let mut value = val.to_vec();
    let Some(mut ofold) = fold else {
        return POk(rest, trimmed(&value).to_vec());
    };
    let mut i = rest;
    let mut folds = 0u8;
    loop {
        match looks_like_field(&input[i..]) {
            POk(_, true) => return POk(i, trimmed(&value).to_vec()),
            Incomplete => return Incomplete,
            _ => {}
        }
        let (n, val, eol, fold) = match value_bytes(&input[i..], complete) {
            POk(n, (v, (eol, fold))) => (n, v, eol, fold),
            Incomplete => return Incomplete,
            PErr => return PErr,
        };
        let rest2 = i + n;
        i = rest2;
        if !value.is_empty() {
            value.push(ofold);
        }
        if !val.is_empty() || eol > 1 {
            rest = rest2;
            value.extend_from_slice(val);
        } else if val.is_empty() && eol == 1 && input.get(rest2) == Some(&b'\n') {
            rest = rest2;
        }
        folds += 1;
        match fold {
            Some(f) if folds < MAX_FOLDS => ofold = f,
            _ => return POk(rest, trimmed(&value).to_vec()),
        }
    }
}

/// The field name: up to the colon (see the module doc for line ends inside it).
fn name(input: &[u8]) -> (usize, &[u8]) {
    let mut terminated = 0u8;
    let mut offset = 0;
    for (i, &c) in input.iter().enumerate() {
        if terminated == 0 {
            if c == b':' {
                offset = i;
                break;
            } else if is_eol(c) {
                terminated = c;
            }
        } else if c == b' ' {
            terminated = 0;
        } else if c == b'\n' && terminated == b'\r' {
            terminated = c;
        } else {
            offset = i - 1;
            break;
        }
    }
    (offset, &input[..offset])
}

/// One parsed field: name (possibly empty) and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
    /// The line had no colon (the whole line is the value).
    pub missing_colon: bool,
}

fn header_with_colon(input: &[u8], complete: bool) -> P<Field> {
    let (n, nm) = name(input);
    // separator: ':' then streaming spaces
    if input.get(n) != Some(&b':') {
        return PErr;
    }
    let sep = match space0(&input[n + 1..]) {
        POk(s, ()) => s,
        // complete(...) turns "incomplete" into a failure of this alternative
        Incomplete | PErr => return PErr,
    };
    let start = n + 1 + sep;
    match value(&input[start..], complete) {
        POk(m, v) => POk(
            start + m,
            Field {
                name: trimmed(nm).to_vec(),
                value: v,
                missing_colon: false,
            },
        ),
        _ => PErr,
    }
}

fn header_sans_colon(input: &[u8], complete: bool) -> P<Field> {
    if input.starts_with(b"\r\n") {
        return PErr;
    }
    match value(input, complete) {
        POk(n, v) => POk(
            n,
            Field {
                name: Vec::new(),
                value: v,
                missing_colon: true,
            },
        ),
        Incomplete => Incomplete,
        PErr => PErr,
    }
}

fn header(input: &[u8], complete: bool) -> P<Field> {
    match header_with_colon(input, complete) {
        POk(n, f) => POk(n, f),
        _ => header_sans_colon(input, complete),
    }
}

/// The outcome of [`parse_block`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Fields parsed (each complete; commit them).
    pub fields: Vec<Field>,
    /// Bytes used: the fields and, when `end` is set, the empty line that ended the block.
    pub used: usize,
    /// The empty line ending the block was seen.
    pub end: bool,
}

/// Parses as many fields as possible from the start of `input` (a header block or a chunked
/// trailer). `complete` says no more bytes will come (the stream closed). `None`: nothing could be
/// parsed yet (wait for more bytes, or, when the input can never parse, give up at close).
pub fn parse_block(input: &[u8], complete: bool) -> Option<Block> {
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        match header(&input[i..], complete) {
            POk(n, f) => {
                i += n;
                fields.push(f);
                if let Some(e) = eol_regular(&input[i..]) {
                    return Some(Block {
                        fields,
                        used: i + e,
                        end: true,
                    });
                }
            }
            Incomplete => {
                if fields.is_empty() {
                    return None;
                }
                return Some(Block {
                    fields,
                    used: i,
                    end: false,
                });
            }
            PErr => {
                if fields.is_empty() {
                    if let POk(n, _) = eol_any(&input[i..]) {
                        return Some(Block {
                            fields,
                            used: i + n,
                            end: true,
                        });
                    }
                }
                if fields.is_empty() {
                    return None;
                }
                // libhtp fails the whole call here; what parsed before the failure is kept
                // only when the caller retries, so report no progress.
                return None;
            }
        }
    }
}

/// How a response line ends (libhtp's `take_till_eol`): the line with its ending, or `None` when
/// the end is not in `input` yet (a lone CR at the end may still be followed by LF).
pub fn take_line(input: &[u8]) -> Option<usize> {
    let p = input.iter().position(|&c| is_eol(c))?;
    if input[p] == b'\n' {
        return Some(p + 1);
    }
    match input.get(p + 1) {
        None => None,
        Some(b'\n') => Some(p + 2),
        Some(_) => Some(p + 1),
    }
}

/// libhtp's "is this line good enough to be a status line" test, inverted: true when the line
/// does not start (after whitespace and NULs) with `http`, case-insensitively.
pub fn line_is_body(line: &[u8]) -> bool {
    let skip = line.iter().take_while(|&&c| is_space(c) || c == 0).count();
    let rest = &line[skip..];
    !(rest.len() >= 4 && rest[..4].eq_ignore_ascii_case(b"http"))
}

/// libhtp's ignorable line before a response: an empty line (CR, LF or CRLF).
pub fn line_is_ignorable(line: &[u8]) -> bool {
    matches!(line, b"\r" | b"\n" | b"\r\n")
}

/// Strips line endings (CR and LF) from the end.
pub fn chomp(mut s: &[u8]) -> &[u8] {
    while let Some((&c, rest)) = s.split_last() {
        if c != b'\r' && c != b'\n' {
            break;
        }
        s = rest;
    }
    s
}

/// Case-insensitive equality ignoring NUL bytes in `hay` (libhtp's `cmp_nocase_nozero`).
pub fn eq_nocase_nozero(hay: &[u8], want: &[u8]) -> bool {
    let mut it = hay.iter().filter(|&&c| c != 0);
    for &w in want {
        match it.next() {
            Some(c) if c.eq_ignore_ascii_case(&w) => {}
            _ => return false,
        }
    }
    it.next().is_none()
}

/// Case-insensitive search ignoring NUL bytes in `hay` (libhtp's `index_of_nocase_nozero`).
pub fn contains_nocase_nozero(hay: &[u8], want: &[u8]) -> bool {
    let clean: Vec<u8> = hay.iter().copied().filter(|&c| c != 0).collect();
    want.is_empty()
        || clean
            .windows(want.len())
            .any(|w| w.eq_ignore_ascii_case(want))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Fields = Vec<(String, String)>;

    fn fields(input: &[u8], complete: bool) -> Option<(Fields, usize, bool)> {
        parse_block(input, complete).map(|b| {
            (
                b.fields
                    .iter()
                    .map(|f| {
                        (
                            String::from_utf8_lossy(&f.name).into_owned(),
                            String::from_utf8_lossy(&f.value).into_owned(),
                        )
                    })
                    .collect(),
                b.used,
                b.end,
            )
        })
    }

    fn s(v: &[(&str, &str)]) -> Fields {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn plain_crlf_lf_and_cr_line_ends() {
        let (f, used, end) = fields(b"A: 1\r\nB:2\r\n\r\nbody", false).unwrap();
        assert_eq!((f, used, end), (s(&[("A", "1"), ("B", "2")]), 13, true));
        let (f, _, end) = fields(b"A: 1\nB: 2\n\nbody", false).unwrap();
        assert_eq!((f, end), (s(&[("A", "1"), ("B", "2")]), true));
        // CR alone ends a line in a response
        let (f, _, end) = fields(b"A: 1\rB: 2\r\n\r\nbody", false).unwrap();
        assert_eq!((f, end), (s(&[("A", "1"), ("B", "2")]), true));
    }

    #[test]
    fn folding_and_fields_that_look_folded() {
        // "Transfer-Encoding: \r\n chunked" folds into "chunked"
        let (f, _, _) = fields(b"Transfer-Encoding: \r\n chunked\r\nX: y\r\n\r\n", false).unwrap();
        assert_eq!(f[0], ("Transfer-Encoding".into(), "chunked".into()));
        // a folded line shaped like "name:" starts a new field
        let (f, _, _) = fields(
            b"X-Foo: bar\r\n Transfer-Encoding: chunked\r\nY: z\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(
            f,
            s(&[
                ("X-Foo", "bar"),
                ("Transfer-Encoding", "chunked"),
                ("Y", "z")
            ])
        );
        // a NUL after a line end folds too
        let (f, _, _) = fields(b"TE:\n\x00chunked\r\nY: z\r\n\r\n", false).unwrap();
        assert_eq!(f[0], ("TE".into(), "chunked".into()));
        // "Content-length: 68\n \n" ends the block after the whitespace line
        let (f, used, end) = fields(b"Content-length: 68\n \nX5O!", false).unwrap();
        assert_eq!((f, end), (s(&[("Content-length", "68")]), true));
        assert_eq!(used, b"Content-length: 68\n \n".len());
    }

    #[test]
    fn names_with_line_ends_and_missing_colons() {
        // "Name\r\n :value": the line end inside the name is skipped when a space follows
        let (f, _, _) = fields(b"Content-Encoding\r\n :gzip\r\nY: z\r\n\r\n", false).unwrap();
        assert_eq!(f[0], ("Content-Encoding".into(), "gzip".into()));
        // "Transfer-Encoding\r: chunked": no colon on the first line
        let (f, _, _) = fields(b"Transfer-Encoding\r: chunked\r\n\r\n", false).unwrap();
        assert_eq!(f, s(&[("", "Transfer-Encoding"), ("", "chunked")]));
        let b = parse_block(b"no colon here\r\n\r\n", false).unwrap();
        assert!(b.fields[0].missing_colon);
    }

    #[test]
    fn deformed_line_ends_and_streaming() {
        let (f, used, end) = fields(b"A: foo\n\r\r\n4\r\n", false).unwrap();
        assert_eq!((f, end), (s(&[("A", "foo")]), true));
        assert_eq!(used, 10);
        // nothing decidable yet
        assert_eq!(parse_block(b"A: fo", false), None);
        assert_eq!(parse_block(b"A: foo\r\n", false), None);
        // a field is committed, the rest waits
        let b = parse_block(b"A: foo\r\nB: b", false).unwrap();
        assert_eq!((b.fields.len(), b.used, b.end), (1, 8, false));
        // no fields at all: an empty line ends the block
        assert_eq!(fields(b"\r\nbody", false), Some((vec![], 2, true)));
    }

    #[test]
    fn status_line_helpers() {
        assert_eq!(take_line(b"HTTP/1.1 200 ok\r\nX"), Some(17));
        assert_eq!(take_line(b"HTTP/1.1\rTransfer"), Some(9));
        assert_eq!(take_line(b"HTTP/1.1 200\r"), None);
        assert!(!line_is_body(b"\x00HTTP/1.1 200 ok\r\n"));
        assert!(!line_is_body(b"  http"));
        assert!(line_is_body(b"SIP/2.0 200 ok\r\n"));
        assert!(line_is_body(b" \r\n"));
        assert!(line_is_ignorable(b"\r\n") && !line_is_ignorable(b" \n"));
        assert!(eq_nocase_nozero(b"gz\x00IP", b"gzip"));
        assert!(contains_nocase_nozero(b"chu\x00nked", b"chunked"));
        assert!(!contains_nocase_nozero(b"chunke", b"chunked"));
    }
}
