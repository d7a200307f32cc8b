//! Capture sources: pcap and pcapng files (plain or gzip-compressed) and live AF_PACKET capture.
//!
//! Every source yields [`RawPacket`]s: a timestamp, the link type of the interface the frame was
//! captured on, the captured bytes and the original length on the wire.
//!
//! File reading is hand-written rather than built on `pcap-parser`: the two formats are small, and
//! owning the buffer lets [`CaptureFile::next_packet`] hand out a slice of one reusable buffer
//! with no copy and no allocation per packet. The buffer is bounded: it holds one read chunk
//! ([`READ_CHUNK`]) plus at most one record, and a record longer than [`MAX_PCAP_RECORD_LEN`]
//! (pcap) or [`MAX_PCAPNG_BLOCK_LEN`] (pcapng) is an error, so a corrupt length can never make the
//! reader allocate without bound. Files of any size stream through it.
//!
//! Invariants:
//! * A truncated file yields every complete record, then one [`CaptureError::Truncated`], then
//!   `Ok(None)` forever.
//! * Byte offsets in errors count from the start of the (decompressed) capture stream.
//! * A gzip file is recognised by its magic, whatever its name.
//! * A capture whose link type the decoder cannot read is refused with
//!   [`CaptureError::UnsupportedLinkType`]: a pcap file when it is opened, a pcapng file at its
//!   first packet of such an interface (after the packets before it).
//! * Files are read front to back without seeking: named pipes work.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use ward_model::Timestamp;

/// Size of one read from the file: large enough that syscalls cost nothing per packet.
pub const READ_CHUNK: usize = 1 << 20;
/// Size of the first read: the buffer grows from here to [`READ_CHUNK`].
const FIRST_READ: usize = 16 * 1024;
/// Largest pcap record accepted. This is libpcap's `MAXIMUM_SNAPLEN` (262144): libpcap rejects
/// larger records as corrupt, and so do we.
pub const MAX_PCAP_RECORD_LEN: u32 = 262_144;
/// Largest pcapng block accepted: Wireshark's limit (16 MiB), far above any real frame.
pub const MAX_PCAPNG_BLOCK_LEN: u32 = 16 * 1024 * 1024;
/// Most pcapng interfaces (IDBs) accepted in one section: a guard against a file made of
/// nothing but interface blocks growing the table without bound.
pub const MAX_PCAPNG_INTERFACES: usize = 65_536;
/// Largest pcapng `if_tsresol` exponent accepted (10^-19 s still fits a u64 divisor).
const MAX_TSRESOL_DECIMAL: u8 = 19;
/// Largest binary `if_tsresol` exponent accepted (2^-63 s).
const MAX_TSRESOL_BINARY: u8 = 63;

/// The link types the decoder reads, for the message of [`CaptureError::UnsupportedLinkType`].
const SUPPORTED_LINKTYPES: &str = "ETHERNET (1), NULL (0) and LOOP (108), RAW (101, 12, 14), IPV4 (228), IPV6 (229), \
     LINUX_SLL (113), LINUX_SLL2 (276), PPP (9), C_HDLC (104)";
/// Byte offset of the link type in a pcap file header.
const PCAP_LINKTYPE_OFFSET: u64 = 20;

const PCAP_MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NANOS: u32 = 0xa1b2_3c4d;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BOM: u32 = 0x1a2b_3c4d;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The link layer of captured frames, from the pcap `LINKTYPE_*` value (or an interface's ARPHRD
/// for live capture).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// LINKTYPE_ETHERNET (1).
    Ethernet,
    /// BSD loopback: LINKTYPE_NULL (0, AF value in the capturing host's byte order) and
    /// LINKTYPE_LOOP (108, network byte order). The decoder accepts both orders.
    Null,
    /// Raw IP, version from the first nibble: LINKTYPE_RAW (101) and the DLT_RAW values 12 and
    /// 14 that some systems write.
    Raw,
    /// LINKTYPE_IPV4 (228).
    Ipv4,
    /// LINKTYPE_IPV6 (229).
    Ipv6,
    /// LINKTYPE_LINUX_SLL (113), Linux "cooked" capture v1.
    LinuxSll,
    /// LINKTYPE_LINUX_SLL2 (276), Linux "cooked" capture v2.
    LinuxSll2,
    /// LINKTYPE_PPP (9).
    Ppp,
    /// LINKTYPE_C_HDLC (104), Cisco HDLC.
    CHdlc,
    /// Anything else: frames are counted, not decoded.
    Other(u32),
}

impl LinkType {
    /// Maps a pcap/pcapng link type number (only its low 26 bits: the rest carry FCS flags).
    pub fn from_linktype(value: u32) -> LinkType {
        match value & 0x03ff_ffff {
            0 | 108 => LinkType::Null,
            1 => LinkType::Ethernet,
            9 => LinkType::Ppp,
            104 => LinkType::CHdlc,
            12 | 14 | 101 => LinkType::Raw,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            other => LinkType::Other(other),
        }
    }

    /// The canonical LINKTYPE_* number.
    pub fn to_linktype(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::Ethernet => 1,
            LinkType::Ppp => 9,
            LinkType::CHdlc => 104,
            LinkType::Raw => 101,
            LinkType::LinuxSll => 113,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::LinuxSll2 => 276,
            LinkType::Other(v) => v,
        }
    }

    /// The datalink value Suricata reports (EVE `packet_info.linktype`): libpcap's DLT_* value
    /// for the file's link type, which differs from the LINKTYPE_* number only for raw IP
    /// (LINKTYPE_RAW 101 is DLT_RAW, 12).
    pub fn datalink(self) -> u32 {
        match self {
            LinkType::Raw => 12,
            other => other.to_linktype(),
        }
    }

    /// True for the link types the decoder reads ([`LinkType::Other`] is not one): a capture of
    /// any other link type is refused with [`CaptureError::UnsupportedLinkType`] rather than
    /// read as frames nothing can be made of.
    pub fn is_supported(self) -> bool {
        !matches!(self, LinkType::Other(_))
    }

    /// The registry name of a LINKTYPE_* value (tcpdump's list), for messages: the supported
    /// ones and the unsupported ones captures commonly carry; `None` for the rest.
    pub fn linktype_name(value: u32) -> Option<&'static str> {
        Some(match value & 0x03ff_ffff {
            0 => "NULL",
            1 => "ETHERNET",
            6 => "IEEE802_5",
            9 => "PPP",
            10 => "FDDI",
            12 | 14 | 101 => "RAW",
            50 => "PPP_HDLC",
            51 => "PPP_ETHER",
            104 => "C_HDLC",
            105 => "IEEE802_11",
            108 => "LOOP",
            113 => "LINUX_SLL",
            119 => "IEEE802_11_PRISM",
            127 => "IEEE802_11_RADIOTAP",
            147..=162 => "USER0..USER15",
            163 => "IEEE802_11_AVS",
            189 => "USB_LINUX",
            192 => "PPI",
            195 => "IEEE802_15_4_WITHFCS",
            201 => "BLUETOOTH_HCI_H4_WITH_PHDR",
            220 => "USB_LINUX_MMAPPED",
            228 => "IPV4",
            229 => "IPV6",
            230 => "IEEE802_15_4_NOFCS",
            239 => "NFLOG",
            253 => "NETLINK",
            276 => "LINUX_SLL2",
            _ => return None,
        })
    }

    /// Suricata's name of a datalink value (EVE `packet_info.linktype_name`), `None` for the
    /// values it has no name for (it then writes `n/a`).
    pub fn datalink_name(datalink: u32) -> Option<&'static str> {
        Some(match datalink {
            0 => "NULL",
            1 => "EN10MB",
            9 => "PPP",
            12 => "RAW",
            101 => "RAW2",
            104 => "C_HDLC",
            113 => "LINUX_SLL",
            228 => "IPv4",
            229 => "IPv6",
            276 => "LINUX_SLL2",
            778 => "GRE_RAW",
            _ => return None,
        })
    }
}

/// One captured frame, borrowed from the capture source's buffer until its next call.
#[derive(Debug, Clone, Copy)]
pub struct RawPacket<'a> {
    pub ts: Timestamp,
    pub linktype: LinkType,
    /// The captured bytes (at most the snap length).
    pub data: &'a [u8],
    /// The frame's length on the wire (≥ `data.len()` unless the file is inconsistent).
    pub orig_len: u32,
}

/// What went wrong reading a capture. Messages are lowercase and say what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    #[error("cannot open capture file {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot read capture file {path} at byte {offset}: {source}")]
    Io {
        path: PathBuf,
        offset: u64,
        source: io::Error,
    },
    #[error("capture file {path} is empty: there is nothing to read")]
    Empty { path: PathBuf },
    #[error(
        "{path} is not a pcap or pcapng capture (magic {magic:#010x} at byte 0); \
         give a file written by tcpdump, wireshark or suricata"
    )]
    BadMagic { path: PathBuf, magic: u32 },
    #[error(
        "capture file {path} is truncated at byte {offset} ({what}); \
         the packets before it were read"
    )]
    Truncated {
        path: PathBuf,
        offset: u64,
        what: &'static str,
    },
    #[error(
        "capture file {path} is corrupt at byte {offset}: {what} of {len} bytes is over \
         the limit of {limit} ({limit_name})"
    )]
    RecordTooLong {
        path: PathBuf,
        offset: u64,
        what: &'static str,
        len: u64,
        limit: u64,
        limit_name: &'static str,
    },
    #[error(
        "capture file {path} has unsupported {format} version {major}.{minor} at byte {offset}; \
         convert it with `editcap -F pcap`"
    )]
    UnsupportedVersion {
        path: PathBuf,
        offset: u64,
        format: &'static str,
        major: u16,
        minor: u16,
    },
    #[error("capture file {path} is corrupt at byte {offset}: {what}")]
    Malformed {
        path: PathBuf,
        offset: u64,
        what: &'static str,
    },
    #[error(
        "capture file {path} has link type {linktype} ({}) at byte {offset}, which ward cannot \
         decode{}; supported: {SUPPORTED_LINKTYPES}",
        LinkType::linktype_name(*linktype).unwrap_or("unknown"),
        if *offset > PCAP_LINKTYPE_OFFSET { "; the packets before it were read" } else { "" }
    )]
    UnsupportedLinkType {
        path: PathBuf,
        offset: u64,
        linktype: u32,
    },
    #[error(
        "live capture on interface {interface}: hardware type {arphrd} (ARPHRD) is not one ward \
         can decode; supported: Ethernet, loopback, raw IP, tunnels and PPP"
    )]
    UnsupportedHardware { interface: String, arphrd: u16 },
    #[error("cannot list capture directory {path}: {source}")]
    Directory { path: PathBuf, source: io::Error },
    #[error("live capture on interface {interface}: {what}: {source}")]
    Live {
        interface: String,
        what: &'static str,
        source: io::Error,
    },
}

/// The buffered input of a capture file: a bounded, compacting window over the byte stream.
struct Input {
    src: Box<dyn Read + Send>,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Stream offset of `buf[pos]`.
    offset: u64,
    eof: bool,
}

impl Input {
    fn available(&self) -> usize {
        self.end - self.pos
    }

    /// Makes at least `n` bytes available at `pos`; false when the stream ends first.
    /// Callers bound `n` by the record limits, so the buffer stays bounded.
    fn ensure(&mut self, n: usize) -> io::Result<bool> {
        if self.available() >= n {
            return Ok(true);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        // Start small (most captures in a directory of tests are tiny) and double up to
        // READ_CHUNK, so opening a file costs little and a large one is read in big chunks.
        let chunk = if self.buf.is_empty() {
            FIRST_READ
        } else {
            (self.buf.len() * 2).min(READ_CHUNK)
        };
        let want = n.max(chunk);
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        while self.end < n {
            if self.eof {
                return Ok(false);
            }
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(read) => self.end += read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        self.offset += n as u64;
    }

    fn peek(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }
}

#[derive(Debug, Clone, Copy)]
enum TsResolution {
    /// Units of 10^-n seconds; the divisor 10^n.
    Decimal(u64),
    /// Units of 2^-n seconds.
    Binary(u8),
}

impl TsResolution {
    fn to_timestamp(self, units: u64, offset_secs: i64) -> Timestamp {
        let (secs, micros) = match self {
            TsResolution::Decimal(div) => {
                let secs = units / div;
                let frac = units % div;
                let micros = (frac as u128 * 1_000_000 / div as u128) as u32;
                (secs, micros)
            }
            TsResolution::Binary(shift) => {
                let secs = units >> shift;
                let frac = units & ((1u64 << shift) - 1);
                let micros = ((frac as u128 * 1_000_000) >> shift) as u32;
                (secs, micros)
            }
        };
        let secs = i64::try_from(secs)
            .unwrap_or(i64::MAX)
            .saturating_add(offset_secs);
        Timestamp::from_secs_micros(secs, micros)
    }
}

#[derive(Debug, Clone)]
struct Interface {
    linktype: LinkType,
    snaplen: u32,
    tsresol: TsResolution,
    tsoffset: i64,
}

enum Format {
    Pcap {
        big_endian: bool,
        nanos: bool,
        linktype: LinkType,
    },
    Pcapng {
        big_endian: bool,
        interfaces: Vec<Interface>,
    },
}

/// A pcap or pcapng file (optionally gzip-compressed), read as a stream.
pub struct CaptureFile {
    path: PathBuf,
    input: Input,
    format: Format,
    /// Set after an error or the end: later calls return `Ok(None)`.
    done: bool,
    last_ts: Timestamp,
    compressed: bool,
}

impl std::fmt::Debug for CaptureFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureFile")
            .field("path", &self.path)
            .field("offset", &self.input.offset)
            .field("compressed", &self.compressed)
            .finish_non_exhaustive()
    }
}

fn rd_u16(b: &[u8], be: bool) -> u16 {
    let a = [b[0], b[1]];
    if be {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

fn rd_u32(b: &[u8], be: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if be {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

impl CaptureFile {
    /// Opens a capture file, sniffing gzip, pcap (either byte order, µs or ns) or pcapng. The
    /// file is read once from the start and never seeks, so a named pipe or `/dev/stdin` works
    /// as well (`tcpdump -w - | ward sensor --pcap /dev/stdin`).
    pub fn open(path: impl AsRef<Path>) -> Result<CaptureFile, CaptureError> {
        let path = path.as_ref().to_path_buf();
        let mut file = File::open(&path).map_err(|source| CaptureError::Open {
            path: path.clone(),
            source,
        })?;
        let mut magic = [0u8; 2];
        let mut got = 0;
        while got < 2 {
            match file.read(&mut magic[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(CaptureError::Io {
                        path,
                        offset: 0,
                        source,
                    })
                }
            }
        }
        let compressed = got == 2 && magic == GZIP_MAGIC;
        // The sniffed bytes are put back in front of the rest instead of seeking back.
        let stream = io::Cursor::new(magic[..got].to_vec()).chain(file);
        let src: Box<dyn Read + Send> = if compressed {
            Box::new(flate2::read::MultiGzDecoder::new(
                io::BufReader::with_capacity(READ_CHUNK / 4, stream),
            ))
        } else {
            Box::new(stream)
        };
        Self::from_reader_named(src, path, compressed)
    }

    /// Reads a capture from any byte stream (already decompressed); `name` is used in errors.
    pub fn from_reader(
        src: Box<dyn Read + Send>,
        name: impl Into<PathBuf>,
    ) -> Result<CaptureFile, CaptureError> {
        Self::from_reader_named(src, name.into(), false)
    }

    fn from_reader_named(
        src: Box<dyn Read + Send>,
        path: PathBuf,
        compressed: bool,
    ) -> Result<CaptureFile, CaptureError> {
        let mut input = Input {
            src,
            buf: Vec::new(),
            pos: 0,
            end: 0,
            offset: 0,
            eof: false,
        };
        let io_err = |path: &PathBuf, source| CaptureError::Io {
            path: path.clone(),
            offset: 0,
            source,
        };
        let has4 = input.ensure(4).map_err(|e| io_err(&path, e))?;
        if !has4 {
            if input.available() == 0 {
                return Err(CaptureError::Empty { path });
            }
            return Err(CaptureError::Truncated {
                path,
                offset: 0,
                what: "file ends inside the file header",
            });
        }
        let head = input.peek();
        let magic_le = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let magic_be = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let format = if magic_le == PCAPNG_SHB {
            // The first block is parsed by next_packet like any other section header.
            Format::Pcapng {
                big_endian: false,
                interfaces: Vec::new(),
            }
        } else {
            let (big_endian, nanos) = match (magic_le, magic_be) {
                (PCAP_MAGIC_MICROS, _) => (false, false),
                (PCAP_MAGIC_NANOS, _) => (false, true),
                (_, PCAP_MAGIC_MICROS) => (true, false),
                (_, PCAP_MAGIC_NANOS) => (true, true),
                _ => {
                    return Err(CaptureError::BadMagic {
                        path,
                        magic: magic_be,
                    })
                }
            };
            if !input.ensure(24).map_err(|e| io_err(&path, e))? {
                return Err(CaptureError::Truncated {
                    path,
                    offset: 0,
                    what: "file ends inside the 24-byte pcap file header",
                });
            }
            let h = input.peek();
            let major = rd_u16(&h[4..], big_endian);
            let minor = rd_u16(&h[6..], big_endian);
            if major != 2 {
                return Err(CaptureError::UnsupportedVersion {
                    path,
                    offset: 4,
                    format: "pcap",
                    major,
                    minor,
                });
            }
            let raw_linktype = rd_u32(&h[20..], big_endian);
            let linktype = LinkType::from_linktype(raw_linktype);
            if !linktype.is_supported() {
                return Err(CaptureError::UnsupportedLinkType {
                    path,
                    offset: PCAP_LINKTYPE_OFFSET,
                    linktype: raw_linktype & 0x03ff_ffff,
                });
            }
            input.consume(24);
            Format::Pcap {
                big_endian,
                nanos,
                linktype,
            }
        };
        Ok(CaptureFile {
            path,
            input,
            format,
            done: false,
            last_ts: Timestamp::ZERO,
            compressed,
        })
    }

    /// The file's path (or the name given to [`CaptureFile::from_reader`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stream offset of the next record (in decompressed bytes for a `.gz` file).
    pub fn offset(&self) -> u64 {
        self.input.offset
    }

    /// True when the file is gzip-compressed.
    pub fn is_compressed(&self) -> bool {
        self.compressed
    }

    /// The link type of a classic pcap file; for pcapng, of its first interface seen so far.
    pub fn linktype(&self) -> Option<LinkType> {
        match &self.format {
            Format::Pcap { linktype, .. } => Some(*linktype),
            Format::Pcapng { interfaces, .. } => interfaces.first().map(|i| i.linktype),
        }
    }

    /// The next packet, `Ok(None)` at the end of the file. After an error, every later call
    /// returns `Ok(None)`.
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        let result = match self.format {
            Format::Pcap { .. } => self.next_pcap(),
            Format::Pcapng { .. } => self.next_pcapng(),
        };
        match result {
            Ok(Some((start, len, ts, linktype, orig_len))) => {
                self.last_ts = ts;
                Ok(Some(RawPacket {
                    ts,
                    linktype,
                    data: &self.input.buf[start..start + len],
                    orig_len,
                }))
            }
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }

    fn io_error(&self, source: io::Error) -> CaptureError {
        CaptureError::Io {
            path: self.path.clone(),
            offset: self.input.offset,
            source,
        }
    }

    fn truncated(&self, what: &'static str) -> CaptureError {
        CaptureError::Truncated {
            path: self.path.clone(),
            offset: self.input.offset,
            what,
        }
    }

    /// A pcapng packet of an interface whose link type the decoder cannot read: an error at
    /// the first such packet (an interface block alone, with no packets, is harmless).
    fn unsupported_linktype(&self, linktype: LinkType) -> CaptureError {
        CaptureError::UnsupportedLinkType {
            path: self.path.clone(),
            offset: self.input.offset,
            linktype: linktype.to_linktype(),
        }
    }

    fn malformed(&self, what: &'static str) -> CaptureError {
        CaptureError::Malformed {
            path: self.path.clone(),
            offset: self.input.offset,
            what,
        }
    }

    /// Returns (buffer start, captured length, ts, linktype, orig_len) of the next record.
    #[allow(clippy::type_complexity)]
    fn next_pcap(
        &mut self,
    ) -> Result<Option<(usize, usize, Timestamp, LinkType, u32)>, CaptureError> {
        let Format::Pcap {
            big_endian: be,
            nanos,
            linktype,
        } = self.format
        else {
            return Ok(None);
        };
        if !self.input.ensure(16).map_err(|e| self.io_error(e))? {
            if self.input.available() == 0 {
                return Ok(None);
            }
            return Err(self.truncated("file ends inside a 16-byte record header"));
        }
        let h = self.input.peek();
        let secs = rd_u32(&h[0..], be);
        let frac = rd_u32(&h[4..], be);
        let caplen = rd_u32(&h[8..], be);
        let orig_len = rd_u32(&h[12..], be);
        if caplen > MAX_PCAP_RECORD_LEN {
            return Err(CaptureError::RecordTooLong {
                path: self.path.clone(),
                offset: self.input.offset,
                what: "packet record",
                len: caplen as u64,
                limit: MAX_PCAP_RECORD_LEN as u64,
                limit_name: "MAX_PCAP_RECORD_LEN",
            });
        }
        let total = 16 + caplen as usize;
        if !self.input.ensure(total).map_err(|e| self.io_error(e))? {
            return Err(self.truncated("file ends inside a packet record"));
        }
        let ts = if nanos {
            Timestamp::from_secs_nanos(secs as i64, frac)
        } else {
            // Some writers put µs ≥ 10^6; carry them into seconds rather than mis-order time.
            Timestamp::from_secs_micros(secs as i64, frac)
        };
        let start = self.input.pos + 16;
        self.input.consume(total);
        Ok(Some((
            start,
            caplen as usize,
            ts,
            linktype,
            orig_len.max(caplen),
        )))
    }

    #[allow(clippy::type_complexity)]
    fn next_pcapng(
        &mut self,
    ) -> Result<Option<(usize, usize, Timestamp, LinkType, u32)>, CaptureError> {
        loop {
            if !self.input.ensure(12).map_err(|e| self.io_error(e))? {
                if self.input.available() == 0 {
                    return Ok(None);
                }
                return Err(self.truncated("file ends inside a block header"));
            }
            let h = self.input.peek();
            let block_type_le = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
            if block_type_le == PCAPNG_SHB {
                let bom_le = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
                let be = match bom_le {
                    PCAPNG_BOM => false,
                    x if x.swap_bytes() == PCAPNG_BOM => true,
                    _ => return Err(self.malformed("section header has a bad byte-order magic")),
                };
                if let Format::Pcapng {
                    big_endian,
                    interfaces,
                } = &mut self.format
                {
                    *big_endian = be;
                    interfaces.clear();
                }
            }
            let Format::Pcapng { big_endian: be, .. } = self.format else {
                return Ok(None);
            };
            let h = self.input.peek();
            let block_type = rd_u32(&h[0..], be);
            let block_len = rd_u32(&h[4..], be);
            if block_len > MAX_PCAPNG_BLOCK_LEN {
                return Err(CaptureError::RecordTooLong {
                    path: self.path.clone(),
                    offset: self.input.offset,
                    what: "pcapng block",
                    len: block_len as u64,
                    limit: MAX_PCAPNG_BLOCK_LEN as u64,
                    limit_name: "MAX_PCAPNG_BLOCK_LEN",
                });
            }
            if block_len < 12 || block_len & 3 != 0 {
                return Err(
                    self.malformed("pcapng block length is under 12 or not a multiple of 4")
                );
            }
            let len = block_len as usize;
            if !self.input.ensure(len).map_err(|e| self.io_error(e))? {
                return Err(self.truncated("file ends inside a pcapng block"));
            }
            let body_start = self.input.pos + 8;
            let body_len = len - 12;
            match block_type {
                PCAPNG_SHB => {
                    let body = &self.input.buf[body_start..body_start + body_len];
                    if body.len() < 16 {
                        return Err(self.malformed("section header block is too short"));
                    }
                    let major = rd_u16(&body[4..], be);
                    let minor = rd_u16(&body[6..], be);
                    if major != 1 {
                        return Err(CaptureError::UnsupportedVersion {
                            path: self.path.clone(),
                            offset: self.input.offset,
                            format: "pcapng",
                            major,
                            minor,
                        });
                    }
                }
                1 => {
                    let iface = {
                        let body = &self.input.buf[body_start..body_start + body_len];
                        parse_idb(body, be).map_err(|what| self.malformed(what))?
                    };
                    if let Format::Pcapng { interfaces, .. } = &mut self.format {
                        if interfaces.len() >= MAX_PCAPNG_INTERFACES {
                            return Err(CaptureError::RecordTooLong {
                                path: self.path.clone(),
                                offset: self.input.offset,
                                what: "interface table",
                                len: interfaces.len() as u64 + 1,
                                limit: MAX_PCAPNG_INTERFACES as u64,
                                limit_name: "MAX_PCAPNG_INTERFACES",
                            });
                        }
                        interfaces.push(iface);
                    }
                }
                // Enhanced packet block, obsolete packet block.
                6 | 2 => {
                    let body = &self.input.buf[body_start..body_start + body_len];
                    if body.len() < 20 {
                        return Err(self.malformed("packet block is too short for its fields"));
                    }
                    let (if_id, ts_hi, ts_lo, caplen, orig_len) = if block_type == 6 {
                        (
                            rd_u32(&body[0..], be),
                            rd_u32(&body[4..], be),
                            rd_u32(&body[8..], be),
                            rd_u32(&body[12..], be),
                            rd_u32(&body[16..], be),
                        )
                    } else {
                        (
                            rd_u16(&body[0..], be) as u32,
                            rd_u32(&body[4..], be),
                            rd_u32(&body[8..], be),
                            rd_u32(&body[12..], be),
                            rd_u32(&body[16..], be),
                        )
                    };
                    if caplen as usize > body.len() - 20 {
                        return Err(
                            self.malformed("packet block's captured length overruns the block")
                        );
                    }
                    let Some(iface) = self.interface(if_id) else {
                        return Err(self.malformed(
                            "packet block names an interface with no description block",
                        ));
                    };
                    if !iface.linktype.is_supported() {
                        return Err(self.unsupported_linktype(iface.linktype));
                    }
                    let units = ((ts_hi as u64) << 32) | ts_lo as u64;
                    let ts = iface.tsresol.to_timestamp(units, iface.tsoffset);
                    let linktype = iface.linktype;
                    let start = body_start + 20;
                    self.input.consume(len);
                    return Ok(Some((
                        start,
                        caplen as usize,
                        ts,
                        linktype,
                        orig_len.max(caplen),
                    )));
                }
                // Simple packet block: interface 0, no timestamp (the previous packet's is used).
                3 => {
                    let body = &self.input.buf[body_start..body_start + body_len];
                    if body.len() < 4 {
                        return Err(self.malformed("simple packet block is too short"));
                    }
                    let orig_len = rd_u32(&body[0..], be);
                    let Some(iface) = self.interface(0) else {
                        return Err(self.malformed(
                            "simple packet block comes before any interface description block",
                        ));
                    };
                    if !iface.linktype.is_supported() {
                        return Err(self.unsupported_linktype(iface.linktype));
                    }
                    let mut caplen = (orig_len as usize).min(body.len() - 4);
                    if iface.snaplen != 0 {
                        caplen = caplen.min(iface.snaplen as usize);
                    }
                    let linktype = iface.linktype;
                    let start = body_start + 4;
                    self.input.consume(len);
                    return Ok(Some((
                        start,
                        caplen,
                        self.last_ts,
                        linktype,
                        orig_len.max(caplen as u32),
                    )));
                }
                // Name resolution, statistics, custom and unknown blocks: skipped.
                _ => {}
            }
            self.input.consume(len);
        }
    }

    fn interface(&self, id: u32) -> Option<&Interface> {
        match &self.format {
            Format::Pcapng { interfaces, .. } => interfaces.get(id as usize),
            Format::Pcap { .. } => None,
        }
    }
}

/// Parses an interface description block body (after type and length).
fn parse_idb(body: &[u8], be: bool) -> Result<Interface, &'static str> {
    if body.len() < 8 {
        return Err("interface description block is too short");
    }
    let linktype = LinkType::from_linktype(rd_u16(&body[0..], be) as u32);
    let snaplen = rd_u32(&body[4..], be);
    let mut iface = Interface {
        linktype,
        snaplen,
        tsresol: TsResolution::Decimal(1_000_000),
        tsoffset: 0,
    };
    let mut opts = &body[8..];
    while opts.len() >= 4 {
        let code = rd_u16(&opts[0..], be);
        let olen = rd_u16(&opts[2..], be) as usize;
        if code == 0 {
            break;
        }
        let padded = (olen + 3) & !3;
        if opts.len() < 4 + olen {
            return Err("interface description block option overruns the block");
        }
        let value = &opts[4..4 + olen];
        match (code, olen) {
            (9, 1) => {
                let r = value[0];
                let exp = r & 0x7f;
                iface.tsresol = if r & 0x80 == 0 {
                    if exp > MAX_TSRESOL_DECIMAL {
                        return Err("interface if_tsresol is finer than 10^-19 s");
                    }
                    TsResolution::Decimal(10u64.pow(exp as u32))
                } else {
                    if exp > MAX_TSRESOL_BINARY {
                        return Err("interface if_tsresol is finer than 2^-63 s");
                    }
                    TsResolution::Binary(exp)
                };
            }
            (14, 8) => {
                let v = if be {
                    i64::from_be_bytes(value.try_into().unwrap_or([0; 8]))
                } else {
                    i64::from_le_bytes(value.try_into().unwrap_or([0; 8]))
                };
                iface.tsoffset = v;
            }
            _ => {}
        }
        if opts.len() < 4 + padded {
            break;
        }
        opts = &opts[4 + padded..];
    }
    Ok(iface)
}

/// File name endings taken as capture files without sniffing.
const CAPTURE_EXTENSIONS: &[&str] = &[
    ".pcap",
    ".pcapng",
    ".cap",
    ".dmp",
    ".pcap.gz",
    ".pcapng.gz",
    ".cap.gz",
];

/// True when `path` names a capture file, by extension or by its first bytes.
pub fn is_capture_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if CAPTURE_EXTENSIONS.iter().any(|ext| name.ends_with(ext)) {
        return true;
    }
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let mut magic = [0u8; 4];
    if f.read_exact(&mut magic).is_err() {
        return false;
    }
    let le = u32::from_le_bytes(magic);
    let be = u32::from_be_bytes(magic);
    le == PCAPNG_SHB
        || [PCAP_MAGIC_MICROS, PCAP_MAGIC_NANOS].contains(&le)
        || [PCAP_MAGIC_MICROS, PCAP_MAGIC_NANOS].contains(&be)
}

/// Most directory levels [`capture_files_in`] descends (bounds a pathological tree).
pub const MAX_DIRECTORY_DEPTH: usize = 16;

/// Every capture file in `dir` and its subdirectories (symbolic links to directories are not
/// followed, at most [`MAX_DIRECTORY_DEPTH`] levels), sorted by path: by extension (.pcap,
/// .pcapng, .cap, .dmp, .pcap.gz, .pcapng.gz) or by a pcap/pcapng magic. A corpus such as Zeek's
/// test traces keeps its captures in subdirectories by protocol.
pub fn capture_files_in(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>, CaptureError> {
    let dir = dir.as_ref();
    let mut files = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| CaptureError::Directory {
            path: d.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| CaptureError::Directory {
                path: d.clone(),
                source,
            })?;
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir {
                if depth < MAX_DIRECTORY_DEPTH {
                    stack.push((path, depth + 1));
                }
            } else if path.is_file() && is_capture_file(&path) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

// ---------------------------------------------------------------------------------------------
// Live capture
// ---------------------------------------------------------------------------------------------

/// How long [`LiveCapture::next_packet`] waits before returning `Ok(None)`, so the caller can
/// check its stop flag a few times a second.
pub const LIVE_READ_TIMEOUT_MS: u64 = 200;
/// Socket receive buffer asked for, to absorb bursts between reads (the kernel caps it at
/// `net.core.rmem_max` unless we are privileged, which live capture requires anyway).
pub const LIVE_SOCKET_BUFFER: usize = 32 * 1024 * 1024;
/// Largest snap length accepted for live capture (as libpcap).
pub const MAX_LIVE_SNAPLEN: u32 = MAX_PCAP_RECORD_LEN;

const ARPHRD_ETHER: u16 = 1;
const ARPHRD_LOOPBACK: u16 = 772;
const ARPHRD_NONE: u16 = 0xfffe;
const ARPHRD_IPGRE: u16 = 778;
const ARPHRD_TUNNEL: u16 = 768;
const ARPHRD_TUNNEL6: u16 = 769;
const ARPHRD_PPP: u16 = 512;
const ARPHRD_RAWIP: u16 = 519;

/// Kernel packet counters of a live capture since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Packets the kernel passed to the socket.
    pub received: u64,
    /// Packets the kernel dropped because the socket buffer was full.
    pub dropped: u64,
}

/// Live capture from one network interface with an AF_PACKET raw socket in promiscuous mode.
/// Needs root or CAP_NET_RAW.
#[derive(Debug)]
pub struct LiveCapture {
    fd: std::os::fd::OwnedFd,
    interface: String,
    linktype: LinkType,
    skip_outgoing: bool,
    buf: Vec<u8>,
    stats: LiveStats,
}

impl LiveCapture {
    /// Opens `interface` for capture of frames up to `snaplen` bytes (0 = the maximum).
    pub fn open(interface: &str, snaplen: u32) -> Result<LiveCapture, CaptureError> {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let live_err = |what: &'static str, source: io::Error| CaptureError::Live {
            interface: interface.to_string(),
            what,
            source,
        };
        let name = CString::new(interface).map_err(|_| {
            live_err(
                "the interface name contains a NUL byte",
                io::Error::from(io::ErrorKind::InvalidInput),
            )
        })?;
        if interface.len() >= libc::IFNAMSIZ {
            return Err(live_err(
                "the interface name is too long",
                io::Error::from(io::ErrorKind::InvalidInput),
            ));
        }
        // SAFETY: `name` is a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            return Err(live_err(
                "no such interface (list them with `ip link`)",
                io::Error::last_os_error(),
            ));
        }
        let proto_be = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2) call; the result is checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                proto_be as i32,
            )
        };
        if raw < 0 {
            let err = io::Error::last_os_error();
            let what = if err.raw_os_error() == Some(libc::EPERM) {
                "cannot open a packet socket: run as root or grant CAP_NET_RAW (setcap cap_net_raw+ep)"
            } else {
                "cannot open a packet socket"
            };
            return Err(live_err(what, err));
        }
        // SAFETY: `raw` is a fresh, owned descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        // The interface's hardware type decides the link type.
        // SAFETY: ifreq is plain old data; zeroed is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in ifr.ifr_name.iter_mut().zip(name.as_bytes()) {
            *dst = *src as libc::c_char;
        }
        // SAFETY: SIOCGIFHWADDR fills ifr_hwaddr of a valid ifreq.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &mut ifr) };
        if rc < 0 {
            return Err(live_err(
                "cannot read the interface hardware type",
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: the union member written by SIOCGIFHWADDR.
        let arphrd = unsafe { ifr.ifr_ifru.ifru_hwaddr.sa_family };
        let linktype = match arphrd {
            ARPHRD_ETHER | ARPHRD_LOOPBACK => LinkType::Ethernet,
            ARPHRD_NONE | ARPHRD_RAWIP | ARPHRD_TUNNEL | ARPHRD_TUNNEL6 | ARPHRD_IPGRE
            | ARPHRD_PPP => LinkType::Raw,
            other => return Err(CaptureError::UnsupportedHardware { interface: interface.to_string(), arphrd: other }),
        };

        // SAFETY: sockaddr_ll is plain old data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto_be;
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: binding a valid sockaddr_ll of the stated size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc < 0 {
            return Err(live_err(
                "cannot bind the packet socket to the interface",
                io::Error::last_os_error(),
            ));
        }

        // SAFETY: packet_mreq is plain old data.
        let mut mreq: libc::packet_mreq = unsafe { std::mem::zeroed() };
        mreq.mr_ifindex = ifindex as i32;
        mreq.mr_type = libc::PACKET_MR_PROMISC as u16;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
            .map_err(|e| live_err("cannot enable promiscuous mode", e))?;

        let tv = libc::timeval {
            tv_sec: (LIVE_READ_TIMEOUT_MS / 1000) as libc::time_t,
            tv_usec: ((LIVE_READ_TIMEOUT_MS % 1000) * 1000) as libc::suseconds_t,
        };
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)
            .map_err(|e| live_err("cannot set the read timeout", e))?;
        let rcvbuf = LIVE_SOCKET_BUFFER as libc::c_int;
        // SO_RCVBUFFORCE passes rmem_max when privileged; fall back to the capped request.
        if setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &rcvbuf).is_err() {
            let _ = setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &rcvbuf);
        }

        let snaplen = if snaplen == 0 {
            MAX_LIVE_SNAPLEN
        } else {
            snaplen.min(MAX_LIVE_SNAPLEN)
        };
        let mut cap = LiveCapture {
            fd,
            interface: interface.to_string(),
            linktype,
            skip_outgoing: arphrd == ARPHRD_LOOPBACK,
            buf: vec![0; snaplen as usize],
            stats: LiveStats::default(),
        };
        // Reading the counters resets them: start from zero at open.
        let _ = cap.stats();
        cap.stats = LiveStats::default();
        Ok(cap)
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    pub fn linktype(&self) -> LinkType {
        self.linktype
    }

    /// The next frame, or `Ok(None)` when none arrived within [`LIVE_READ_TIMEOUT_MS`].
    /// The timestamp is taken when the frame is read.
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        use std::os::fd::AsRawFd;
        loop {
            // SAFETY: sockaddr_ll is plain old data.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut from_len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: the buffer and address are valid for the lengths given.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr() as *mut libc::c_void,
                    self.buf.len(),
                    libc::MSG_TRUNC,
                    &mut from as *mut libc::sockaddr_ll as *mut libc::sockaddr,
                    &mut from_len,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                return match err.kind() {
                    io::ErrorKind::WouldBlock
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::Interrupted => Ok(None),
                    _ => Err(CaptureError::Live {
                        interface: self.interface.clone(),
                        what: "cannot read from the packet socket",
                        source: err,
                    }),
                };
            }
            // On loopback every frame is seen twice, outgoing and incoming: keep one.
            if self.skip_outgoing && from.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            let orig_len = n as usize;
            let caplen = orig_len.min(self.buf.len());
            return Ok(Some(RawPacket {
                ts: Timestamp::now(),
                linktype: self.linktype,
                data: &self.buf[..caplen],
                orig_len: orig_len.min(u32::MAX as usize) as u32,
            }));
        }
    }

    /// Kernel counters since open (PACKET_STATISTICS; the kernel resets them on each read, so
    /// they are accumulated here).
    pub fn stats(&mut self) -> Result<LiveStats, CaptureError> {
        use std::os::fd::AsRawFd;
        // SAFETY: tpacket_stats is plain old data.
        let mut st: libc::tpacket_stats = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: getsockopt into a buffer of the stated size.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                &mut st as *mut libc::tpacket_stats as *mut libc::c_void,
                &mut len,
            )
        };
        if rc < 0 {
            return Err(CaptureError::Live {
                interface: self.interface.clone(),
                what: "cannot read the kernel packet counters",
                source: io::Error::last_os_error(),
            });
        }
        // tp_packets counts every packet including the dropped ones.
        self.stats.received += st.tp_packets.saturating_sub(st.tp_drops) as u64;
        self.stats.dropped += st.tp_drops as u64;
        Ok(self.stats)
    }
}

fn setsockopt<T>(fd: &std::os::fd::OwnedFd, level: i32, name: i32, value: &T) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `value` is valid for size_of::<T>() bytes.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            value as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    fn pcap(
        big_endian: bool,
        nanos: bool,
        linktype: u32,
        records: &[(u32, u32, &[u8], u32)],
    ) -> Vec<u8> {
        let w32 = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w16 = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut out = Vec::new();
        out.extend_from_slice(&w32(if nanos {
            PCAP_MAGIC_NANOS
        } else {
            PCAP_MAGIC_MICROS
        }));
        out.extend_from_slice(&w16(2));
        out.extend_from_slice(&w16(4));
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&w32(65535));
        out.extend_from_slice(&w32(linktype));
        for &(secs, frac, data, orig) in records {
            out.extend_from_slice(&w32(secs));
            out.extend_from_slice(&w32(frac));
            out.extend_from_slice(&w32(data.len() as u32));
            out.extend_from_slice(&w32(orig));
            out.extend_from_slice(data);
        }
        out
    }

    fn block(be: bool, block_type: u32, body: &[u8]) -> Vec<u8> {
        let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut body = body.to_vec();
        while body.len() & 3 != 0 {
            body.push(0);
        }
        let len = (body.len() + 12) as u32;
        let mut out = Vec::new();
        out.extend_from_slice(&w32(block_type));
        out.extend_from_slice(&w32(len));
        out.extend_from_slice(&body);
        out.extend_from_slice(&w32(len));
        out
    }

    fn shb(be: bool) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&if be {
            PCAPNG_BOM.to_be_bytes()
        } else {
            PCAPNG_BOM.to_le_bytes()
        });
        body.extend_from_slice(&if be { [0, 1, 0, 0] } else { [1, 0, 0, 0] });
        body.extend_from_slice(&[0xff; 8]);
        block(be, PCAPNG_SHB, &body)
    }

    fn idb(be: bool, linktype: u16, tsresol: Option<u8>) -> Vec<u8> {
        let w16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut body = Vec::new();
        body.extend_from_slice(&w16(linktype));
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&w32(0));
        if let Some(r) = tsresol {
            body.extend_from_slice(&w16(9));
            body.extend_from_slice(&w16(1));
            body.extend_from_slice(&[r, 0, 0, 0]);
            body.extend_from_slice(&[0, 0, 0, 0]);
        }
        block(be, 1, &body)
    }

    fn epb(be: bool, if_id: u32, units: u64, data: &[u8]) -> Vec<u8> {
        let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut body = Vec::new();
        body.extend_from_slice(&w32(if_id));
        body.extend_from_slice(&w32((units >> 32) as u32));
        body.extend_from_slice(&w32(units as u32));
        body.extend_from_slice(&w32(data.len() as u32));
        body.extend_from_slice(&w32(data.len() as u32 + 4));
        body.extend_from_slice(data);
        block(be, 6, &body)
    }

    fn reader(bytes: Vec<u8>) -> Result<CaptureFile, CaptureError> {
        CaptureFile::from_reader(Box::new(io::Cursor::new(bytes)), "test.pcap")
    }

    type Read = (Timestamp, LinkType, Vec<u8>, u32);

    fn read_all(cap: &mut CaptureFile) -> (Vec<Read>, Option<CaptureError>) {
        let mut out = Vec::new();
        loop {
            match cap.next_packet() {
                Ok(Some(p)) => out.push((p.ts, p.linktype, p.data.to_vec(), p.orig_len)),
                Ok(None) => return (out, None),
                Err(e) => {
                    assert!(
                        matches!(cap.next_packet(), Ok(None)),
                        "after an error the reader stops"
                    );
                    return (out, Some(e));
                }
            }
        }
    }

    fn temp_path(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ward-capture-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn pcap_both_byte_orders_and_resolutions() {
        for (be, nanos) in [(false, false), (true, false), (false, true), (true, true)] {
            let frac = if nanos { 123_456_789 } else { 123_456 };
            let bytes = pcap(
                be,
                nanos,
                1,
                &[
                    (1_600_000_000, frac, b"abcd", 60),
                    (1_600_000_001, 0, b"", 0),
                ],
            );
            let mut cap = reader(bytes).unwrap();
            assert_eq!(cap.linktype(), Some(LinkType::Ethernet));
            let (pkts, err) = read_all(&mut cap);
            assert!(err.is_none());
            assert_eq!(pkts.len(), 2);
            assert_eq!(
                pkts[0].0,
                Timestamp::from_secs_micros(1_600_000_000, 123_456)
            );
            assert_eq!((pkts[0].2.as_slice(), pkts[0].3), (&b"abcd"[..], 60));
            assert_eq!(pkts[1].0.secs(), 1_600_000_001);
        }
    }

    #[test]
    fn linktypes_map_from_numbers() {
        for (n, lt) in [
            (0, LinkType::Null),
            (108, LinkType::Null),
            (1, LinkType::Ethernet),
            (12, LinkType::Raw),
            (14, LinkType::Raw),
            (101, LinkType::Raw),
            (228, LinkType::Ipv4),
            (229, LinkType::Ipv6),
            (113, LinkType::LinuxSll),
            (276, LinkType::LinuxSll2),
            (9, LinkType::Ppp),
            (127, LinkType::Other(127)),
        ] {
            assert_eq!(LinkType::from_linktype(n), lt);
        }
        // FCS-length bits above bit 26 are ignored.
        assert_eq!(LinkType::from_linktype(0x1000_0001), LinkType::Ethernet);
    }

    #[test]
    fn truncated_file_yields_packets_then_an_error() {
        let mut bytes = pcap(
            false,
            false,
            1,
            &[(1, 0, b"first", 5), (2, 0, b"second", 6)],
        );
        bytes.truncate(bytes.len() - 3);
        let mut cap = reader(bytes).unwrap();
        let (pkts, err) = read_all(&mut cap);
        assert_eq!(pkts.len(), 1);
        let err = err.expect("truncation is reported");
        assert!(
            matches!(err, CaptureError::Truncated { offset: 45, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("truncated at byte 45"), "{err}");
    }

    #[test]
    fn empty_bad_magic_and_oversized_records_are_errors() {
        assert!(matches!(
            reader(Vec::new()),
            Err(CaptureError::Empty { .. })
        ));
        assert!(matches!(
            reader(vec![0xd4, 0xc3]),
            Err(CaptureError::Truncated { .. })
        ));
        let e = reader(b"GET / HTTP/1.1\r\n\r\n........".to_vec()).unwrap_err();
        assert!(matches!(e, CaptureError::BadMagic { .. }), "{e}");
        let mut bytes = pcap(false, false, 1, &[]);
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&(MAX_PCAP_RECORD_LEN + 1).to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        let mut cap = reader(bytes).unwrap();
        let e = cap.next_packet().unwrap_err();
        assert!(e.to_string().contains("MAX_PCAP_RECORD_LEN"), "{e}");
        let mut bytes = pcap(false, false, 1, &[]);
        bytes[4] = 3;
        assert!(matches!(
            reader(bytes),
            Err(CaptureError::UnsupportedVersion { major: 3, .. })
        ));
    }

    #[test]
    fn pcapng_interfaces_resolutions_and_block_kinds() {
        let mut f = shb(false);
        f.extend(idb(false, 1, None));
        f.extend(idb(false, 101, Some(9)));
        f.extend(idb(false, 113, Some(0x80 | 10)));
        f.extend(epb(false, 0, 1_600_000_000_123_456, b"eth"));
        f.extend(block(false, 0x0bad, b"unknown block, skipped"));
        f.extend(epb(false, 1, 1_600_000_000_123_456_789, b"raw"));
        f.extend(epb(false, 2, (1_600_000_000u64 << 10) | 512, b"sll"));
        // Simple packet block: interface 0, original length 3 (its padding is not data).
        let mut spb = 3u32.to_le_bytes().to_vec();
        spb.extend_from_slice(b"spb");
        f.extend(block(false, 3, &spb));
        // Obsolete packet block on interface 1.
        let mut pb = vec![1, 0, 0, 0];
        pb.extend_from_slice(&((5_000_000_000u64 >> 32) as u32).to_le_bytes());
        pb.extend_from_slice(&(5_000_000_000u64 as u32).to_le_bytes());
        pb.extend_from_slice(&2u32.to_le_bytes());
        pb.extend_from_slice(&2u32.to_le_bytes());
        pb.extend_from_slice(b"pb");
        f.extend(block(false, 2, &pb));
        // A second section, big-endian, with its own interface table.
        f.extend(shb(true));
        f.extend(idb(true, 229, None));
        f.extend(epb(true, 0, 2_000_000, b"v6"));
        let mut cap = reader(f).unwrap();
        let (pkts, err) = read_all(&mut cap);
        assert!(err.is_none(), "{err:?}");
        let got: Vec<_> = pkts.iter().map(|p| (p.1, p.2.clone(), p.0)).collect();
        let ts = Timestamp::from_secs_micros(1_600_000_000, 123_456);
        assert_eq!(got[0], (LinkType::Ethernet, b"eth".to_vec(), ts));
        assert_eq!(got[1], (LinkType::Raw, b"raw".to_vec(), ts));
        assert_eq!(
            got[2],
            (
                LinkType::LinuxSll,
                b"sll".to_vec(),
                Timestamp::from_secs_micros(1_600_000_000, 500_000)
            )
        );
        assert_eq!(got[3].0, LinkType::Ethernet);
        assert_eq!(got[3].1, b"spb".to_vec());
        assert_eq!(pkts[3].3, 3);
        assert_eq!(
            got[4],
            (
                LinkType::Raw,
                b"pb".to_vec(),
                Timestamp::from_secs_micros(5, 0)
            )
        );
        assert_eq!(
            got[5],
            (
                LinkType::Ipv6,
                b"v6".to_vec(),
                Timestamp::from_secs_micros(2, 0)
            )
        );
        assert_eq!(pkts.len(), 6);
    }

    #[test]
    fn unsupported_link_types_are_errors_naming_them() {
        // pcap: at open, from the file header.
        let e = reader(pcap(false, false, 147, &[(1, 0, b"frame", 5)])).unwrap_err();
        assert!(matches!(e, CaptureError::UnsupportedLinkType { linktype: 147, offset: 20, .. }), "{e}");
        assert!(
            e.to_string().starts_with("capture file test.pcap has link type 147 (USER0..USER15) at byte 20, which ward cannot decode; supported: ETHERNET (1)"),
            "{e}"
        );
        let e = reader(pcap(true, false, 105 | 0x1000_0000, &[])).unwrap_err();
        assert!(e.to_string().contains("link type 105 (IEEE802_11)"), "FCS bits are not part of the type: {e}");
        // pcapng: at the first packet of such an interface, after the packets before it; an
        // interface block alone is harmless.
        let mut f = shb(false);
        f.extend(idb(false, 1, None));
        f.extend(idb(false, 127, None));
        f.extend(epb(false, 0, 0, b"eth"));
        let offset = f.len() as u64;
        f.extend(epb(false, 1, 0, b"radiotap"));
        f.extend(epb(false, 0, 0, b"eth"));
        let (got, err) = read_all(&mut reader(f).unwrap());
        assert_eq!(got.len(), 1, "the packet before it was read");
        let e = err.expect("an error at the radiotap packet");
        assert!(matches!(e, CaptureError::UnsupportedLinkType { linktype: 127, offset: o, .. } if o == offset), "{e}");
        assert!(e.to_string().contains("(IEEE802_11_RADIOTAP)") && e.to_string().contains("the packets before it were read"), "{e}");
        assert!(LinkType::from_linktype(12).is_supported() && !LinkType::Other(147).is_supported());
    }

    #[test]
    fn a_named_pipe_is_read_like_a_file() {
        let dir = temp_path("fifo");
        let path = dir.join("capture.pcap");
        let status = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
        assert!(status.success());
        let bytes = pcap(false, false, 1, &[(1, 0, b"one", 3), (2, 0, b"two", 3)]);
        let writer_path = path.clone();
        let writer = std::thread::spawn(move || std::fs::write(writer_path, bytes).unwrap());
        let mut cap = CaptureFile::open(&path).unwrap();
        let (got, err) = read_all(&mut cap);
        writer.join().unwrap();
        assert!(err.is_none(), "{err:?}");
        assert_eq!(got.iter().map(|r| r.2.clone()).collect::<Vec<_>>(), [b"one".to_vec(), b"two".to_vec()]);
    }

    #[test]
    fn pcapng_packet_on_unknown_interface_is_an_error() {
        let mut f = shb(false);
        f.extend(epb(false, 0, 0, b"x"));
        let mut cap = reader(f).unwrap();
        let e = cap.next_packet().unwrap_err();
        assert!(e.to_string().contains("interface"), "{e}");
    }

    #[test]
    fn gzip_files_and_directory_listing() {
        let dir = temp_path("dir");
        let plain = pcap(false, false, 1, &[(1, 0, b"one", 3), (2, 0, b"two", 3)]);
        std::fs::write(dir.join("b.pcap"), &plain).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        std::fs::write(dir.join("a.pcap.gz"), gz.finish().unwrap()).unwrap();
        std::fs::write(dir.join("c-no-extension"), &plain).unwrap();
        std::fs::write(dir.join("README"), b"not a capture").unwrap();
        std::fs::create_dir(dir.join("sub.pcap")).unwrap();
        std::fs::create_dir_all(dir.join("dns/deeper")).unwrap();
        std::fs::write(dir.join("dns/deeper/d.pcap"), &plain).unwrap();
        let files = capture_files_in(&dir).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.pcap.gz", "b.pcap", "c-no-extension", "dns/deeper/d.pcap"]);
        for file in &files {
            let mut cap = CaptureFile::open(file).unwrap();
            assert_eq!(cap.is_compressed(), file.to_string_lossy().ends_with(".gz"));
            let (pkts, err) = read_all(&mut cap);
            assert!(err.is_none());
            assert_eq!(
                pkts.iter().map(|p| p.2.clone()).collect::<Vec<_>>(),
                [b"one".to_vec(), b"two".to_vec()]
            );
        }
        let e = CaptureFile::open(dir.join("missing.pcap")).unwrap_err();
        assert!(e.to_string().starts_with("cannot open capture file"), "{e}");
        assert!(capture_files_in(dir.join("nope")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn large_files_stream_through_a_bounded_buffer() {
        let payload = vec![0x5a; 1500];
        let records: Vec<_> = (0..3000).map(|i| (i, 0, &payload[..], 1500)).collect();
        let bytes = pcap(false, false, 1, &records);
        assert!(bytes.len() > 4 * READ_CHUNK);
        let mut cap = reader(bytes).unwrap();
        let mut n = 0;
        while let Some(p) = cap.next_packet().unwrap() {
            assert_eq!(p.data.len(), 1500);
            n += 1;
        }
        assert_eq!(n, 3000);
        assert!(cap.input.buf.len() <= READ_CHUNK + MAX_PCAP_RECORD_LEN as usize);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(prefix in 0usize..3, body in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut bytes = match prefix {
                0 => pcap(false, false, 1, &[]),
                1 => shb(false),
                _ => Vec::new(),
            };
            bytes.extend_from_slice(&body);
            if let Ok(mut cap) = reader(bytes) {
                for _ in 0..1000 {
                    match cap.next_packet() {
                        Ok(Some(_)) => {}
                        _ => break,
                    }
                }
            }
        }
    }
}
