//! Streaming response-body decompression as libhtp does it, so that the body ward inspects is the
//! one Suricata inspects:
//!
//! * `Content-Encoding` may list several codings (in one header or repeated headers); they are
//!   undone last-first, at most [`LAYER_LIMIT`] of them;
//! * a layer that cannot decode its input restarts with the next coding in the cycle gzip →
//!   raw deflate → zlib → gzip (so "deflate" sent as zlib, or gzip labelled deflate, still
//!   decodes), three times at most; after that the layer passes its bytes through unchanged (a
//!   body that claims to be compressed but is not is inspected as sent);
//! * the gzip header is parsed leniently (flags, extra field, name, comment, header CRC), and
//!   neither the gzip trailer nor data after the end of a stream matters;
//! * a restart re-feeds only the piece of body that failed, as libhtp does.
//!
//! Bounds: each layer hands its output on in pieces of at most 8 KiB; the bytes kept are limited
//! by the caller ([`Decoder::set_room`]) and all layers together may produce at most
//! [`MAX_WORK`] bytes per body, so a decompression bomb costs bounded memory and time. Nothing here
//! panics on any input.

use std::io::{self, Write};

/// Most content-coding layers undone per body (Suricata's
/// `response-body-decompress-layer-limit`; the suricata-verify HTTP evader tests run with 3).
pub const LAYER_LIMIT: usize = 3;
/// Most bytes all layers of one body may produce together (decompression-bomb bound).
pub const MAX_WORK: u64 = 8 * 1024 * 1024;
/// LZMA dictionary memory limit (libhtp's default).
const LZMA_MEMLIMIT: usize = 1024 * 1024;
/// Size of the buffer between two layers (libhtp's `ENCODING_CHUNK_SIZE`).
const CHUNK: usize = 8192;

/// A content coding a layer undoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    /// Raw deflate (RFC 1951).
    Deflate,
    /// Deflate with zlib header (RFC 1950).
    Zlib,
    Lzma,
}

impl Coding {
    /// The coding tried after this one fails.
    fn next(self) -> Coding {
        match self {
            Coding::Gzip => Coding::Deflate,
            Coding::Deflate => Coding::Zlib,
            Coding::Zlib => Coding::Gzip,
            Coding::Lzma => Coding::Deflate,
        }
    }
}

/// The codings a `Content-Encoding` value asks to undo, first-applied first (libhtp's rules:
/// the whole value `gzip`/`x-gzip`/`deflate`/`x-deflate`/`lzma`, ignoring case and NULs, or else
/// each comma- or space-separated token containing `gzip` or `deflate`, or equal to `lzma`).
pub fn codings(value: &[u8]) -> Vec<Coding> {
    use crate::http::headers::eq_nocase_nozero as eq;
    if eq(value, b"gzip") || eq(value, b"x-gzip") {
        return vec![Coding::Gzip];
    }
    if eq(value, b"deflate") || eq(value, b"x-deflate") {
        return vec![Coding::Deflate];
    }
    if eq(value, b"lzma") {
        return vec![Coding::Lzma];
    }
    if eq(value, b"inflate") || eq(value, b"none") {
        return Vec::new();
    }
    let contains = |hay: &[u8], n: &[u8]| hay.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    let mut out = Vec::new();
    let mut lzma_layers = 0;
    for (layers, token) in value
        .split(|&c| c == b',' || c == b' ')
        .filter(|t| !t.is_empty())
        .enumerate()
    {
        if layers >= LAYER_LIMIT {
            break;
        }
        if contains(token, b"gzip") {
            out.push(Coding::Gzip);
        } else if contains(token, b"deflate") {
            out.push(Coding::Deflate);
        } else if token == b"lzma" {
            lzma_layers += 1;
            if lzma_layers > 1 {
                break;
            }
            out.push(Coding::Lzma);
        }
    }
    out
}

/// Fixed-size output buffer of a layer: a full buffer refuses bytes (`WriteZero`) so that the
/// layer's output is handed on in bounded pieces.
struct Cursor {
    buf: Vec<u8>,
}

impl Cursor {
    fn new() -> Cursor {
        Cursor {
            buf: Vec::with_capacity(CHUNK),
        }
    }
}

impl Write for Cursor {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        if room == 0 || data.is_empty() {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One decoder writing into its [`Cursor`].
trait BufWriter: Write + Send {
    fn cursor(&mut self) -> Option<&mut Cursor>;
    fn finish(self: Box<Self>) -> io::Result<Cursor>;
    fn try_finish(&mut self) -> io::Result<()>;
}

struct Deflate(flate2::write::DeflateDecoder<Cursor>);
struct Zlib(flate2::write::ZlibDecoder<Cursor>);

/// The flate2 decoders (one wrapper per format) write into a [`Cursor`] the same way.
macro_rules! flate_writer {
    ($t:ty) => {
        impl Write for $t {
            fn write(&mut self, d: &[u8]) -> io::Result<usize> {
                self.0.write(d)
            }
            fn flush(&mut self) -> io::Result<()> {
                self.0.flush()
            }
        }
        impl BufWriter for $t {
            fn cursor(&mut self) -> Option<&mut Cursor> {
                Some(self.0.get_mut())
            }
            fn finish(self: Box<Self>) -> io::Result<Cursor> {
                self.0.finish()
            }
            fn try_finish(&mut self) -> io::Result<()> {
                self.0.try_finish()
            }
        }
    };
}
flate_writer!(Deflate);
flate_writer!(Zlib);

struct Lzma(lzma_rs::decompress::Stream<Cursor>);

impl Write for Lzma {
    fn write(&mut self, d: &[u8]) -> io::Result<usize> {
        self.0.write(d)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
impl BufWriter for Lzma {
    fn cursor(&mut self) -> Option<&mut Cursor> {
        self.0.get_output_mut()
    }
    fn finish(self: Box<Self>) -> io::Result<Cursor> {
        self.0
            .finish()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e:?}")))
    }
    fn try_finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum GzState {
    Start,
    Xlen,
    Extra,
    Name,
    Comment,
    Crc,
    Body,
}

/// A gzip member: the header parsed by hand (tolerating what strict decoders refuse), the rest as
/// raw deflate. The trailer is ignored (the deflate decoder stops at the end of its stream).
struct Gzip {
    head: Vec<u8>,
    flags: u8,
    xlen: usize,
    state: GzState,
    inner: flate2::write::DeflateDecoder<Cursor>,
}

impl Gzip {
    fn new() -> Gzip {
        Gzip {
            head: Vec::new(),
            flags: 0,
            xlen: 0,
            state: GzState::Start,
            inner: flate2::write::DeflateDecoder::new(Cursor::new()),
        }
    }
}

impl Write for Gzip {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        const FHCRC: u8 = 1 << 1;
        const FEXTRA: u8 = 1 << 2;
        const FNAME: u8 = 1 << 3;
        const FCOMMENT: u8 = 1 << 4;
        if self.state == GzState::Body {
            return self.inner.write(data);
        }
        // The fixed 10-byte start may arrive in pieces: keep them until complete.
        let mut buffered = 0;
        let joined;
        let mut p: &[u8] = if self.state == GzState::Start && !self.head.is_empty() {
            buffered = self.head.len();
            self.head.extend_from_slice(data);
            joined = std::mem::take(&mut self.head);
            &joined
        } else {
            data
        };
        // bytes of `data` used so far = bytes of `p` used minus those buffered before this call
        let total = p.len();
        let used = |p: &[u8]| (total - p.len()).saturating_sub(buffered).min(data.len());
        loop {
            match self.state {
                GzState::Start => {
                    if p.len() < 10 {
                        if !b"\x1f\x8b\x08".starts_with(&p[..p.len().min(3)]) {
                            return Err(io::Error::new(io::ErrorKind::InvalidInput, "gzip header"));
                        }
                        self.head = p.to_vec();
                        return Ok(data.len());
                    }
                    if &p[..3] != b"\x1f\x8b\x08" {
                        return Err(io::Error::new(io::ErrorKind::InvalidInput, "gzip header"));
                    }
                    self.flags = p[3];
                    p = &p[10..];
                    self.state = GzState::Xlen;
                }
                GzState::Xlen => {
                    if self.flags & FEXTRA != 0 {
                        if p.len() < 2 {
                            return Ok(used(p));
                        }
                        self.xlen = u16::from_le_bytes([p[0], p[1]]) as usize;
                        p = &p[2..];
                    }
                    self.state = GzState::Extra;
                }
                GzState::Extra => {
                    if self.xlen > 0 {
                        if p.len() < self.xlen {
                            self.xlen -= p.len();
                            return Ok(data.len());
                        }
                        p = &p[self.xlen..];
                        self.xlen = 0;
                    }
                    self.state = GzState::Name;
                }
                GzState::Name | GzState::Comment => {
                    let flag = if self.state == GzState::Name {
                        FNAME
                    } else {
                        FCOMMENT
                    };
                    if self.flags & flag != 0 {
                        match p.iter().position(|&c| c == 0) {
                            Some(z) => p = &p[z + 1..],
                            None => return Ok(data.len()),
                        }
                    }
                    self.state = if self.state == GzState::Name {
                        GzState::Comment
                    } else {
                        GzState::Crc
                    };
                }
                GzState::Crc => {
                    if self.flags & FHCRC != 0 {
                        if p.len() < 2 {
                            return Ok(used(p));
                        }
                        p = &p[2..];
                    }
                    self.state = GzState::Body;
                    return Ok(used(p));
                }
                GzState::Body => return self.inner.write(p).map(|n| used(&p[n..])),
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl BufWriter for Gzip {
    fn cursor(&mut self) -> Option<&mut Cursor> {
        Some(self.inner.get_mut())
    }
    fn finish(self: Box<Self>) -> io::Result<Cursor> {
        self.inner.finish()
    }
    fn try_finish(&mut self) -> io::Result<()> {
        self.inner.try_finish()
    }
}

fn writer(coding: Coding) -> Box<dyn BufWriter> {
    match coding {
        Coding::Gzip => Box::new(Gzip::new()),
        Coding::Deflate => Box::new(Deflate(flate2::write::DeflateDecoder::new(Cursor::new()))),
        Coding::Zlib => Box::new(Zlib(flate2::write::ZlibDecoder::new(Cursor::new()))),
        Coding::Lzma => {
            let opts = lzma_rs::decompress::Options {
                memlimit: Some(LZMA_MEMLIMIT),
                ..Default::default()
            };
            Box::new(Lzma(lzma_rs::decompress::Stream::new_with_options(
                &opts,
                Cursor::new(),
            )))
        }
    }
}

struct Layer {
    coding: Coding,
    writer: Option<Box<dyn BufWriter>>,
    passthrough: bool,
    restarts: u8,
    /// The next stage is still reachable (libhtp drops it after certain errors).
    inner: bool,
}

fn other(msg: &'static str) -> io::Error {
    io::Error::other(msg)
}

/// A chain of decoding layers ending in the kept body bytes.
pub struct Decoder {
    /// `layers[0]` receives the body first (it undoes the last-applied coding).
    layers: Vec<Layer>,
    out: Vec<u8>,
    /// Bytes the caller can still keep; beyond, decoding stops.
    room: usize,
    work: u64,
    /// Stopped for good (room or work exhausted).
    dead: bool,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field(
                "layers",
                &self.layers.iter().map(|l| l.coding).collect::<Vec<_>>(),
            )
            .field("work", &self.work)
            .finish()
    }
}

impl Decoder {
    /// A decoder undoing `codings` (first-applied first, as [`codings`] lists them); `None` when
    /// there is nothing to undo.
    pub fn new(codings: &[Coding]) -> Option<Decoder> {
        if codings.is_empty() {
            return None;
        }
        let layers = codings
            .iter()
            .rev()
            .map(|&c| Layer {
                coding: c,
                writer: Some(writer(c)),
                passthrough: false,
                restarts: 0,
                inner: true,
            })
            .collect();
        Some(Decoder {
            layers,
            out: Vec::new(),
            room: usize::MAX,
            work: 0,
            dead: false,
        })
    }

    /// How many more decoded bytes the caller keeps.
    pub fn set_room(&mut self, room: usize) {
        self.room = room;
    }

    /// Feeds one piece of body; decoded bytes are collected for [`Decoder::take`].
    pub fn write(&mut self, data: &[u8]) {
        if self.dead || data.is_empty() {
            return;
        }
        let _ = self.write_all(0, data).and_then(|_| self.flush(0));
    }

    /// The body ended: flushes every layer.
    pub fn finish(&mut self) {
        if self.dead {
            return;
        }
        let _ = self.finish_stage(0);
        self.dead = true;
    }

    /// The decoded bytes produced so far (drained).
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    fn stage_write(&mut self, i: usize, data: &[u8]) -> io::Result<usize> {
        if self.dead {
            return Err(other("decoder stopped"));
        }
        if i >= self.layers.len() {
            // The sink: keep what there is room for.
            let n = data.len().min(self.room);
            self.out.extend_from_slice(&data[..n]);
            self.room -= n;
            if self.room == 0 {
                self.dead = true;
            }
            return Ok(data.len());
        }
        self.layer_write(i, data)
    }

    fn write_all(&mut self, i: usize, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            match self.stage_write(i, data) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => data = &data[n.min(data.len())..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes to the stage after layer `i`, or reports it gone.
    fn inner_write_all(&mut self, i: usize, data: &[u8]) -> io::Result<()> {
        if !self.layers[i].inner {
            return Err(other("nothing to write to"));
        }
        self.work += data.len() as u64;
        if self.work > MAX_WORK {
            self.dead = true;
            return Err(other("decompression work limit"));
        }
        let r = self.write_all(i + 1, data);
        if r.is_err() {
            self.layers[i].inner = false;
        }
        r
    }

    fn layer_write(&mut self, i: usize, data: &[u8]) -> io::Result<usize> {
        if self.layers[i].passthrough {
            if !self.layers[i].inner {
                return Ok(data.len());
            }
            self.work += data.len() as u64;
            if self.work > MAX_WORK {
                self.dead = true;
                return Err(other("decompression work limit"));
            }
            return self.stage_write(i + 1, data);
        }
        let Some(mut w) = self.layers[i].writer.take() else {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "writer was not initialized",
            ));
        };
        match w.write(data) {
            Ok(consumed) => {
                self.layers[i].writer = Some(w);
                // Zero means the stream ended: what follows it is ignored.
                Ok(if consumed == 0 { data.len() } else { consumed })
            }
            Err(e) if e.kind() == io::ErrorKind::WriteZero => {
                self.flush_writer(i, &mut w)?;
                self.layers[i].writer = Some(w);
                self.layer_write(i, data)
            }
            Err(e) => {
                if self.layers[i].restarts == 0 && self.try_finish(i, &mut w) {
                    // Some output came before the error: stop this layer here.
                    return Err(e);
                }
                if self.restart(i).is_err() {
                    self.try_passthrough(i, data)
                } else {
                    self.layer_write(i, data)
                }
            }
        }
    }

    /// Hands the writer's buffered output to the next stage (repeatedly while the writer has
    /// more); a decoding error on flush restarts the layer.
    fn flush_writer(&mut self, i: usize, w: &mut Box<dyn BufWriter>) -> io::Result<()> {
        if !self.layers[i].inner {
            return Err(other("nothing to flush to"));
        }
        loop {
            let result = w.flush();
            if let Some(c) = w.cursor() {
                let chunk = std::mem::take(&mut c.buf);
                let r = self.inner_write_all(i, &chunk);
                if let Some(c) = w.cursor() {
                    c.buf = chunk;
                    c.buf.clear();
                }
                r?;
            }
            match result {
                Err(e) if e.kind() == io::ErrorKind::WriteZero => continue,
                Err(_) => {
                    self.restart(i)?;
                    return Ok(());
                }
                Ok(()) => return Ok(()),
            }
        }
    }

    /// Finishes a writer that failed, handing on what it still had; true if that was anything.
    fn try_finish(&mut self, i: usize, w: &mut Box<dyn BufWriter>) -> bool {
        loop {
            let redo = matches!(w.try_finish(), Err(e) if e.kind() == io::ErrorKind::WriteZero);
            let chunk = match w.cursor() {
                Some(c) if !c.buf.is_empty() => std::mem::take(&mut c.buf),
                _ => return false,
            };
            if !self.layers[i].inner {
                return false;
            }
            let _ = self.inner_write_all(i, &chunk);
            if redo {
                continue;
            }
            return true;
        }
    }

    fn restart(&mut self, i: usize) -> io::Result<()> {
        let l = &mut self.layers[i];
        if l.restarts >= 3 {
            return Err(other("too many restart attempts"));
        }
        l.coding = l.coding.next();
        l.writer = Some(writer(l.coding));
        l.restarts += 1;
        Ok(())
    }

    fn set_passthrough(&mut self, i: usize, on: bool) {
        for l in &mut self.layers[i..] {
            l.passthrough = on;
        }
    }

    fn try_passthrough(&mut self, i: usize, data: &[u8]) -> io::Result<usize> {
        self.set_passthrough(i, true);
        if !self.layers[i].inner {
            return Ok(data.len());
        }
        self.work += data.len() as u64;
        let r = self.stage_write(i + 1, data);
        if r.is_err() {
            self.set_passthrough(i, false);
        }
        r
    }

    fn flush(&mut self, i: usize) -> io::Result<()> {
        if i >= self.layers.len() {
            return Ok(());
        }
        if let Some(mut w) = self.layers[i].writer.take() {
            let r = self.flush_writer(i, &mut w);
            if r.is_ok() {
                self.layers[i].writer = Some(w);
            }
            r?;
        }
        if self.layers[i].inner {
            self.flush(i + 1)
        } else {
            Ok(())
        }
    }

    fn finish_stage(&mut self, i: usize) -> io::Result<()> {
        if i >= self.layers.len() {
            return Ok(());
        }
        let rest = match self.layers[i].writer.take() {
            Some(mut w) => {
                self.flush_writer(i, &mut w)?;
                Some(w.finish()?)
            }
            None => None,
        };
        if !self.layers[i].inner {
            return Ok(());
        }
        if let Some(c) = rest {
            self.inner_write_all(i, &c.buf)?;
        }
        self.finish_stage(i + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

    fn gzip(d: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(d).unwrap();
        e.finish().unwrap()
    }
    fn deflate(d: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(d).unwrap();
        e.finish().unwrap()
    }
    fn zlib(d: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(d).unwrap();
        e.finish().unwrap()
    }

    fn run(value: &[u8], body: &[u8], piece: usize) -> Vec<u8> {
        let mut d = Decoder::new(&codings(value)).expect("a coding");
        for p in body.chunks(piece.max(1)) {
            d.write(p);
        }
        d.finish();
        d.take()
    }

    #[test]
    fn content_encoding_values() {
        assert_eq!(codings(b"gzip"), vec![Coding::Gzip]);
        assert_eq!(codings(b"X-GZIP"), vec![Coding::Gzip]);
        assert_eq!(codings(b"gz\0ip"), vec![Coding::Gzip]);
        assert_eq!(codings(b"x-deflate"), vec![Coding::Deflate]);
        assert_eq!(
            codings(b"gzip, deflate"),
            vec![Coding::Gzip, Coding::Deflate]
        );
        assert_eq!(codings(b"gzip x"), vec![Coding::Gzip]);
        assert_eq!(codings(b"identity, gzip"), vec![Coding::Gzip]);
        assert_eq!(codings(b"deflate,"), vec![Coding::Deflate]);
        assert_eq!(codings(b"a,b,c,gzip"), vec![]);
        assert_eq!(codings(b"identity"), vec![]);
        assert!(Decoder::new(&codings(b"br")).is_none());
    }

    #[test]
    fn gzip_deflate_and_zlib_in_any_pieces() {
        for piece in [1, 3, 7, 1000] {
            assert_eq!(run(b"gzip", &gzip(EICAR), piece), EICAR);
            assert_eq!(run(b"deflate", &deflate(EICAR), piece), EICAR);
            // zlib labelled deflate: raw deflate fails, the restart to zlib decodes it
            assert_eq!(run(b"deflate", &zlib(EICAR), 1000), EICAR);
        }
        // gzip labelled deflate
        assert_eq!(run(b"deflate", &gzip(EICAR), 1000), EICAR);
        // raw deflate labelled gzip
        assert_eq!(run(b"gzip", &deflate(EICAR), 1000), EICAR);
    }

    #[test]
    fn layers_undo_last_applied_first() {
        let body = gzip(&deflate(EICAR));
        assert_eq!(run(b"deflate, gzip", &body, 1000), EICAR);
        let body = deflate(&gzip(&deflate(EICAR)));
        assert_eq!(run(b"deflate,gzip,deflate", &body, 1000), EICAR);
    }

    #[test]
    fn not_compressed_passes_through() {
        assert_eq!(run(b"gzip", EICAR, 1000), EICAR);
        assert_eq!(run(b"gzip, gzip", EICAR, 1000), EICAR);
    }

    #[test]
    fn lenient_gzip_header() {
        // reserved flag bits set, header CRC flag with two bytes: still decodes
        let mut gz = gzip(EICAR);
        gz[3] = 0x80;
        assert_eq!(run(b"gzip", &gz, 1000), EICAR);
        let mut gz = gzip(EICAR);
        gz[3] = 0x02;
        gz.splice(10..10, [0u8, 0u8]);
        assert_eq!(run(b"gzip", &gz, 1000), EICAR);
        // name and comment
        let mut gz = gzip(EICAR);
        gz[3] = 0x18;
        gz.splice(10..10, b"eicar.txt\0a comment\0".iter().copied());
        assert_eq!(run(b"gzip", &gz, 5), EICAR);
    }

    #[test]
    fn lzma_alone_format() {
        let mut lz = Vec::new();
        lzma_rs::lzma_compress(&mut std::io::Cursor::new(EICAR), &mut lz).unwrap();
        assert_eq!(run(b"lzma", &lz, 1000), EICAR);
    }

    #[test]
    fn bomb_is_bounded() {
        let big = vec![b'a'; 64 * 1024 * 1024];
        let gz = gzip(&big);
        let mut d = Decoder::new(&[Coding::Gzip]).unwrap();
        d.set_room(100 * 1024);
        for p in gz.chunks(4096) {
            d.write(p);
        }
        d.finish();
        assert_eq!(d.take().len(), 100 * 1024);
        // nested: each layer is bounded by the work limit
        let nested = gzip(&gzip(&big));
        let mut d = Decoder::new(&[Coding::Gzip, Coding::Gzip]).unwrap();
        d.write(&nested);
        d.finish();
        assert!(d.work <= MAX_WORK + CHUNK as u64);
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678u32;
        for n in 0..200 {
            let body: Vec<u8> = (0..n * 3)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            for v in [&b"gzip"[..], b"deflate", b"lzma", b"gzip,deflate,gzip"] {
                let _ = run(v, &body, 1 + n % 17);
            }
        }
    }
}
