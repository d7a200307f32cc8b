//! The on-disk spool: where a sensor keeps every event meant for the hub until the hub has
//! acknowledged it, so a link or hub outage of hours loses nothing and a crash loses at most
//! what the fsync policy allows.
//!
//! # Model
//!
//! One writer (the sensor's EVE path, [`Spool::append`]) and one reader (the relay,
//! [`Spool::read`] / [`Spool::ack`]). Every record gets a sequence number, strictly increasing
//! over the spool's whole life (also across restarts). The reader sees records in sequence
//! order; [`Spool::ack`]`(n)` says "every record up to and including `n` is at the hub". After a
//! restart the reader starts again at the first record after the last acknowledged one, so
//! records read but not acknowledged are read again (at-least-once; the hub's idempotency key
//! turns that into exactly-once, see [`crate::relay`]).
//!
//! # Directory layout
//!
//! ```text
//! SPOOL_DIR/
//!   lock                          flock(2)-held while a process has the spool open
//!   ledger                        the acknowledgement cursor (below), replaced atomically
//!   00000001733000000000123.seg   segment files, named by the sequence number of their first
//!   00000001733000000004711.seg   record (20 decimal digits, so names sort in sequence order)
//!   dead-letter/                  batches the hub refused for good (written by the relay)
//! ```
//!
//! # Segment files
//!
//! A segment starts with the 8-byte magic `WARDSPL1` (format version 1) and continues with
//! records, back to back. Segments are append-only: a process appends only to a segment it
//! created itself, and after a restart always starts a new one, so a segment torn by a crash is
//! never written again. A segment is closed once it holds `segment_bytes`.
//!
//! Each record (all integers little-endian):
//!
//! ```text
//! offset  size  field
//!      0     4  magic   FF 57 52 FE   (0xFF and 0xFE never occur in UTF-8, so never inside an
//!                                      EVE line; resynchronisation cannot land in a payload)
//!      4     4  length  N, payload bytes (at most MAX_RECORD_BYTES)
//!      8     8  seq     the record's sequence number
//!     16     4  crc     CRC-32 (IEEE, crc32fast) of bytes 4..16 followed by the payload
//!     20     N  payload one EVE JSON line without its newline
//! ```
//!
//! # Reading damaged segments
//!
//! * Torn record (a crash mid-write; only possible as the last bytes of a segment): the tail is
//!   shorter than the header, or than the header's length says. It is skipped and counted in
//!   [`SpoolStats::torn_records`], and reading continues with the next segment.
//! * Corrupt record (bad magic, impossible length or checksum mismatch in the middle of a
//!   segment): the reader scans forward byte by byte for the next position holding a valid
//!   record (magic, length, checksum, and a sequence number above the last good one), skips to
//!   it, and adds the number of sequence numbers jumped (at least one) to
//!   [`SpoolStats::corrupt_records`]. If nothing valid follows, the rest of the segment counts as
//!   one torn record.
//!
//! # Ledger
//!
//! ```text
//! offset  size  field
//!      0     8  magic          WARDLED1
//!      8     8  acked_through  every record with seq <= this was acknowledged by the hub
//!     16     8  batch_first    the batch being sent (0, 0 when none): its first and last seq,
//!     24     8  batch_last     written durably before the batch is sent (see relay)
//!     32     4  crc            CRC-32 of bytes 0..32
//! ```
//!
//! It is written to `ledger.tmp`, fsynced, renamed over `ledger`, and the directory fsynced,
//! so it is always either the old or the new version. A damaged ledger stops [`Spool::open`]
//! with [`SpoolError::CorruptLedger`] rather than guessing (guessing could resend batches under
//! keys the hub already holds for other content, or skip records).
//!
//! # When files are deleted
//!
//! * A segment is deleted once every sequence number it can hold is acknowledged (its last seq
//!   is the next segment's first minus one; for the segment being written, the last appended).
//! * Size cap: before an append would make the segment files exceed `max_bytes`, whole segments
//!   are deleted oldest first (the one being written is closed first if it is the oldest). The
//!   unacknowledged records they held are counted in [`SpoolStats::dropped_records`] and logged
//!   at `error`: the cap is the operator's choice of losing old events over stopping capture.
//!
//! # Sequence numbers
//!
//! A new spool (no ledger, no segments) starts at the current time in microseconds since the
//! Unix epoch, so a spool directory that was deleted and re-created does not reuse the numbers
//! (and hub idempotency keys) of the old one unless it wrote more than one record per
//! microsecond on average. On open, the next number is above the last record on disk, the
//! acknowledged cursor and the recorded batch.
//!
//! # Durability
//!
//! [`FsyncPolicy`] decides when appended records are fsynced: after every record, when at least
//! the interval has passed (checked at each append and whenever the reader polls), or never
//! (the OS decides; a power cut can lose the last seconds). The ledger is always fsynced.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Segment file magic, format version 1.
pub const SEGMENT_MAGIC: [u8; 8] = *b"WARDSPL1";
/// Record magic (see the module note for why these bytes).
pub const RECORD_MAGIC: [u8; 4] = [0xFF, 0x57, 0x52, 0xFE];
/// Bytes before a record's payload.
pub const RECORD_HEADER_LEN: usize = 20;
/// The format's hard limit on one payload; a header claiming more is corruption.
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;
const LEDGER_MAGIC: [u8; 8] = *b"WARDLED1";
const LEDGER_LEN: usize = 36;
const SEGMENT_SUFFIX: &str = ".seg";
/// The reader drops consumed bytes from its buffer once this many have piled up.
const READER_COMPACT_BYTES: usize = 1024 * 1024;

/// When appended records reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// fsync after every record: nothing acknowledged by `append` is lost, slowest.
    EveryRecord,
    /// fsync when at least this long has passed since the last one.
    Interval(Duration),
    /// Never fsync (the OS writes back on its own schedule).
    Never,
}

#[derive(Debug, Clone)]
pub struct SpoolConfig {
    /// Cap on the segment files' total size; the oldest segments are dropped beyond it.
    pub max_bytes: u64,
    /// A segment is closed and a new one started once it holds this much.
    pub segment_bytes: u64,
    /// Largest payload accepted by [`Spool::append`] (the hub rejects EVE lines over 1 MiB).
    pub max_record_bytes: usize,
    pub fsync: FsyncPolicy,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            max_bytes: 1024 * 1024 * 1024,
            segment_bytes: 8 * 1024 * 1024,
            max_record_bytes: 1024 * 1024,
            fsync: FsyncPolicy::Interval(Duration::from_millis(500)),
        }
    }
}

impl SpoolConfig {
    fn validate(&self) -> Result<(), SpoolError> {
        let record_max = (self.max_record_bytes + RECORD_HEADER_LEN + SEGMENT_MAGIC.len()) as u64;
        if self.max_record_bytes == 0 || self.max_record_bytes > MAX_RECORD_BYTES {
            return Err(SpoolError::Config(format!("max_record_bytes must be 1 to {MAX_RECORD_BYTES}")));
        }
        if self.segment_bytes < record_max {
            return Err(SpoolError::Config(format!(
                "segment_bytes ({}) must hold at least one largest record ({record_max} bytes)",
                self.segment_bytes
            )));
        }
        if self.max_bytes < 2 * self.segment_bytes {
            return Err(SpoolError::Config(format!(
                "max_bytes ({}) must be at least twice segment_bytes ({})",
                self.max_bytes, self.segment_bytes
            )));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("spool {path} is in use by another process: stop it or give this one another spool directory")]
    Locked { path: PathBuf },
    #[error("record of {len} bytes is larger than the spool's max_record_bytes ({max}): it was not stored")]
    RecordTooLarge { len: usize, max: usize },
    #[error("spool ledger {path} is damaged ({reason}): move the spool directory aside and restart (its unsent events stay there for inspection)")]
    CorruptLedger { path: PathBuf, reason: String },
    #[error("invalid spool configuration: {0}")]
    Config(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io { path: path.to_path_buf(), source }
}

/// One record handed to the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub payload: Vec<u8>,
}

/// What [`Spool::read`] may return at most. At least one record is returned when one is
/// available, even if it alone exceeds `max_bytes`.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimit {
    pub max_records: usize,
    pub max_bytes: usize,
    /// Stop before any record with a higher sequence number.
    pub through_seq: Option<u64>,
}

impl ReadLimit {
    pub fn records(max_records: usize) -> Self {
        ReadLimit { max_records, max_bytes: usize::MAX, through_seq: None }
    }
}

/// Counters since the spool was opened, and its current extent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoolStats {
    pub appended_records: u64,
    pub appended_bytes: u64,
    /// Unacknowledged records deleted by the size cap.
    pub dropped_records: u64,
    pub dropped_segments: u64,
    /// Records skipped because they were damaged in the middle of a segment.
    pub corrupt_records: u64,
    /// Incomplete records skipped at the end of a segment (a crash mid-write).
    pub torn_records: u64,
    pub segments: usize,
    pub disk_bytes: u64,
    /// Sequence numbers not yet acknowledged (an upper bound when records were damaged).
    pub pending_records: u64,
    pub acked_through: u64,
    pub next_seq: u64,
}

/// The spool; cheap to clone, shared by the writer and the reader.
#[derive(Clone)]
pub struct Spool {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<Inner>,
    readable: Condvar,
}

struct SegmentInfo {
    first_seq: u64,
    path: PathBuf,
    bytes: u64,
    /// The last valid record's seq, when known (scanned at open, or written by us).
    last_seq: Option<u64>,
}

struct Writer {
    file: BufWriter<File>,
    /// Bytes of whole records (plus the magic) handed to `file`.
    len: u64,
}

#[derive(Default)]
struct Reader {
    /// The segment being read, by first seq; `None` before the first read.
    segment: Option<u64>,
    /// File offset of the next record to decode.
    offset: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    file: Option<File>,
    /// The seq the next record in this segment should have (for counting skipped ones).
    expected: u64,
    /// Every seq up to this was returned or found absent.
    examined_through: u64,
    /// The file length of a closed segment (they never change), read once.
    end: Option<u64>,
}

struct Inner {
    dir: PathBuf,
    config: SpoolConfig,
    segments: VecDeque<SegmentInfo>,
    writer: Option<Writer>,
    next_seq: u64,
    acked_through: u64,
    batch: Option<(u64, u64)>,
    reader: Reader,
    stats: SpoolStats,
    disk_bytes: u64,
    dirty: bool,
    last_sync: Instant,
    _lock: File,
}

/// The next record found by the reader: seq, payload range in the reader's buffer, and the
/// file offset after it.
type Peeked = (u64, std::ops::Range<usize>, u64);

/// The outcome of decoding at one position of a segment buffer.
#[derive(Debug, PartialEq, Eq)]
enum Decoded {
    Record { seq: u64, len: usize },
    Incomplete,
    Corrupt,
}

fn decode_at(buf: &[u8]) -> Decoded {
    let Some(header) = buf.get(..RECORD_HEADER_LEN) else {
        return Decoded::Incomplete;
    };
    if header[..4] != RECORD_MAGIC {
        return Decoded::Corrupt;
    }
    let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if len > MAX_RECORD_BYTES {
        return Decoded::Corrupt;
    }
    let mut seq_bytes = [0u8; 8];
    seq_bytes.copy_from_slice(&header[8..16]);
    let seq = u64::from_le_bytes(seq_bytes);
    let crc = u32::from_le_bytes([header[16], header[17], header[18], header[19]]);
    let Some(payload) = buf.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + len) else {
        return Decoded::Incomplete;
    };
    let mut h = crc32fast::Hasher::new();
    h.update(&header[4..16]);
    h.update(payload);
    if h.finalize() != crc {
        return Decoded::Corrupt;
    }
    Decoded::Record { seq, len: RECORD_HEADER_LEN + len }
}

/// Encodes one record (header and payload) onto `out`.
pub fn encode_record(seq: u64, payload: &[u8], out: &mut Vec<u8>) {
    let len = (payload.len() as u32).to_le_bytes();
    let seq = seq.to_le_bytes();
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(&seq);
    h.update(payload);
    out.extend_from_slice(&RECORD_MAGIC);
    out.extend_from_slice(&len);
    out.extend_from_slice(&seq);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(payload);
}

/// Finds the next valid record after `from` with a seq of at least `min_seq`.
fn resync(buf: &[u8], from: usize, min_seq: u64) -> Option<(usize, u64)> {
    let mut pos = from;
    while pos + RECORD_HEADER_LEN <= buf.len() {
        let rest = buf.get(pos..)?;
        let found = rest.windows(4).position(|w| w == RECORD_MAGIC)?;
        pos += found;
        if let Some(Decoded::Record { seq, .. }) = buf.get(pos..).map(decode_at) {
            if seq >= min_seq {
                return Some((pos, seq));
            }
        }
        pos += 1;
    }
    None
}

/// The last valid seq of a whole segment's bytes (used at open for the newest segment).
fn scan_last_seq(bytes: &[u8]) -> Option<u64> {
    let mut pos = SEGMENT_MAGIC.len();
    let mut last: Option<u64> = None;
    while pos < bytes.len() {
        match bytes.get(pos..).map(decode_at) {
            Some(Decoded::Record { seq, len }) if last.is_none_or(|l| seq > l) => {
                last = Some(seq);
                pos += len;
            }
            _ => match resync(bytes, pos + 1, last.map_or(0, |l| l + 1)) {
                Some((p, _)) => pos = p,
                None => break,
            },
        }
    }
    last
}

fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}{SEGMENT_SUFFIX}")
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(1)
        .max(1)
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

/// The ledger's content: the acknowledged cursor and the batch in flight.
type Ledger = (u64, Option<(u64, u64)>);

fn read_ledger(path: &Path) -> Result<Option<Ledger>, SpoolError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    let corrupt = |reason: &str| SpoolError::CorruptLedger { path: path.to_path_buf(), reason: reason.to_string() };
    if bytes.len() != LEDGER_LEN {
        return Err(corrupt("wrong size"));
    }
    if bytes[..8] != LEDGER_MAGIC {
        return Err(corrupt("bad magic"));
    }
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let crc = u32::from_le_bytes([bytes[32], bytes[33], bytes[34], bytes[35]]);
    if crc32fast::hash(&bytes[..32]) != crc {
        return Err(corrupt("checksum mismatch"));
    }
    let (first, last) = (u64_at(16), u64_at(24));
    let batch = if first == 0 && last == 0 { None } else { Some((first, last)) };
    Ok(Some((u64_at(8), batch)))
}

impl Spool {
    /// Opens (or creates) the spool in `dir`. Fails if another process has it open.
    pub fn open(dir: impl AsRef<Path>, config: SpoolConfig) -> Result<Spool, SpoolError> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(io_err(&dir))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::WouldBlock {
                return Err(SpoolError::Locked { path: dir });
            }
            return Err(io_err(&lock_path)(err));
        }
        let ledger = read_ledger(&dir.join("ledger"))?;
        let (acked_through, batch) = ledger.unwrap_or((0, None));

        let mut segments = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(stem) = name.strip_suffix(SEGMENT_SUFFIX) else { continue };
            let Ok(first_seq) = stem.parse::<u64>() else {
                tracing::warn!(file = name, "ignoring a file in the spool that is not a segment");
                continue;
            };
            let path = entry.path();
            let bytes = entry.metadata().map_err(io_err(&path))?.len();
            segments.push(SegmentInfo { first_seq, path, bytes, last_seq: None });
        }
        segments.sort_by_key(|s| s.first_seq);
        let mut segments: VecDeque<SegmentInfo> = segments.into();
        if let Some(newest) = segments.back_mut() {
            let bytes = fs::read(&newest.path).map_err(io_err(&newest.path))?;
            newest.last_seq = scan_last_seq(&bytes);
        }
        let on_disk_next = segments.back().map(|s| match s.last_seq {
            Some(last) => last + 1,
            // A segment without a whole record: its name is taken, so start after it.
            None => s.first_seq + 1,
        });
        let next_seq = match (on_disk_next, ledger) {
            (None, None) => now_micros(),
            _ => on_disk_next
                .unwrap_or(0)
                .max(acked_through + 1)
                .max(batch.map_or(0, |(_, last)| last + 1)),
        };
        let disk_bytes = segments.iter().map(|s| s.bytes).sum();
        let mut inner = Inner {
            dir,
            config,
            segments,
            writer: None,
            next_seq,
            acked_through,
            batch,
            reader: Reader::default(),
            stats: SpoolStats::default(),
            disk_bytes,
            dirty: false,
            last_sync: Instant::now(),
            _lock: lock,
        };
        inner.delete_acked_segments()?;
        inner.rewind();
        Ok(Spool { shared: Arc::new(Shared { state: Mutex::new(inner), readable: Condvar::new() }) })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one record and returns its sequence number.
    pub fn append(&self, payload: &[u8]) -> Result<u64, SpoolError> {
        let seq = self.lock().append(payload)?;
        self.shared.readable.notify_all();
        Ok(seq)
    }

    /// Appends a JSON value as one compact line.
    pub fn append_json(&self, value: &serde_json::Value) -> Result<u64, SpoolError> {
        let line = serde_json::to_vec(value).map_err(|e| SpoolError::Io { path: PathBuf::new(), source: e.into() })?;
        self.append(&line)
    }

    /// Appends every non-blank line of an NDJSON buffer (as the EVE writer produces) under one
    /// lock; returns how many records were stored.
    pub fn append_ndjson(&self, lines: &[u8]) -> Result<usize, SpoolError> {
        let mut inner = self.lock();
        let mut n = 0;
        let mut result = Ok(());
        for line in lines.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            if let Err(e) = inner.append(line) {
                result = Err(e);
                break;
            }
            n += 1;
        }
        drop(inner);
        if n > 0 {
            self.shared.readable.notify_all();
        }
        result.map(|()| n)
    }

    /// Returns the next records after the last one read (or, after a restart, after the last
    /// acknowledged one). Never blocks on new data; see [`Spool::wait_readable`].
    pub fn read(&self, limit: ReadLimit) -> Result<Vec<Record>, SpoolError> {
        self.lock().read(limit)
    }

    /// Waits up to `timeout` for a record to read; true when there is one. Also runs a due
    /// interval fsync.
    pub fn wait_readable(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut inner = self.lock();
        inner.sync_if_due();
        loop {
            if inner.has_unread() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            inner = match self.shared.readable.wait_timeout(inner, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// Records that every record up to `through_seq` is at the hub; durable when this returns.
    /// Deletes segments that hold only acknowledged records.
    pub fn ack(&self, through_seq: u64) -> Result<(), SpoolError> {
        self.lock().ack(through_seq)
    }

    /// Durably records the batch about to be sent (first and last seq), so that after a crash
    /// the same records are resent under the same idempotency key.
    pub fn begin_batch(&self, first_seq: u64, last_seq: u64) -> Result<(), SpoolError> {
        let mut inner = self.lock();
        inner.batch = Some((first_seq, last_seq));
        inner.write_ledger()
    }

    /// The batch recorded by [`Spool::begin_batch`] and not yet acknowledged (from this run or
    /// the one before a crash).
    pub fn pending_batch(&self) -> Option<(u64, u64)> {
        self.lock().batch
    }

    /// Moves the reader back to the first unacknowledged record, as after a restart (a new
    /// relay on a spool that another relay read from calls this first).
    pub fn rewind(&self) {
        self.lock().rewind();
        self.shared.readable.notify_all();
    }

    /// Writes buffered records to the OS and fsyncs them (unless the policy is `Never`).
    pub fn flush(&self) -> Result<(), SpoolError> {
        let mut inner = self.lock();
        let sync = inner.config.fsync != FsyncPolicy::Never;
        inner.flush(sync)
    }

    pub fn stats(&self) -> SpoolStats {
        let inner = self.lock();
        let mut s = inner.stats.clone();
        s.segments = inner.segments.len();
        s.disk_bytes = inner.disk_bytes;
        s.acked_through = inner.acked_through;
        s.next_seq = inner.next_seq;
        s.pending_records = inner.pending_records();
        s
    }

    pub fn dir(&self) -> PathBuf {
        self.lock().dir.clone()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let sync = self.config.fsync != FsyncPolicy::Never;
        if let Err(e) = self.flush(sync) {
            tracing::error!(error = %e, "spool flush on close failed");
        }
    }
}

impl Inner {
    fn append(&mut self, payload: &[u8]) -> Result<u64, SpoolError> {
        if payload.len() > self.config.max_record_bytes {
            return Err(SpoolError::RecordTooLarge { len: payload.len(), max: self.config.max_record_bytes });
        }
        let record_len = (RECORD_HEADER_LEN + payload.len()) as u64;
        if let Some(w) = &self.writer {
            if w.len + record_len > self.config.segment_bytes {
                self.close_writer()?;
            }
        }
        loop {
            let new_segment = if self.writer.is_none() { SEGMENT_MAGIC.len() as u64 } else { 0 };
            if self.disk_bytes + record_len + new_segment <= self.config.max_bytes || self.segments.is_empty() {
                break;
            }
            self.drop_oldest_segment()?;
        }
        if self.writer.is_none() {
            self.open_writer()?;
        }
        let seq = self.next_seq;
        let mut bytes = Vec::with_capacity(record_len as usize);
        encode_record(seq, payload, &mut bytes);
        let Some(w) = self.writer.as_mut() else {
            return Err(SpoolError::Config("no segment open".into()));
        };
        if let Err(e) = w.file.write_all(&bytes) {
            // Part of the record may have reached the file: cut it off and start a new segment.
            let committed = w.len;
            let path = self.segments.back().map(|s| s.path.clone()).unwrap_or_default();
            if let Some(mut w) = self.writer.take() {
                let _ = w.file.flush();
                let _ = w.file.get_ref().set_len(committed);
            }
            return Err(io_err(&path)(e));
        }
        w.len += record_len;
        self.next_seq += 1;
        self.disk_bytes += record_len;
        if let Some(seg) = self.segments.back_mut() {
            seg.bytes += record_len;
            seg.last_seq = Some(seq);
        }
        self.stats.appended_records += 1;
        self.stats.appended_bytes += payload.len() as u64;
        self.dirty = true;
        match self.config.fsync {
            FsyncPolicy::EveryRecord => self.flush(true)?,
            FsyncPolicy::Interval(_) => self.sync_if_due(),
            FsyncPolicy::Never => {}
        }
        Ok(seq)
    }

    fn open_writer(&mut self) -> Result<(), SpoolError> {
        if let Some(newest) = self.segments.back() {
            // A segment left without records by a failed write still owns its name.
            self.next_seq = self.next_seq.max(newest.first_seq + 1);
        }
        let first = self.next_seq;
        let path = self.dir.join(segment_name(first));
        let file = OpenOptions::new().create_new(true).write(true).mode(0o600).open(&path).map_err(io_err(&path))?;
        let mut file = BufWriter::with_capacity(256 * 1024, file);
        file.write_all(&SEGMENT_MAGIC).map_err(io_err(&path))?;
        if self.config.fsync != FsyncPolicy::Never {
            sync_dir(&self.dir)?;
        }
        let len = SEGMENT_MAGIC.len() as u64;
        self.disk_bytes += len;
        self.segments.push_back(SegmentInfo { first_seq: first, path, bytes: len, last_seq: None });
        self.writer = Some(Writer { file, len });
        Ok(())
    }

    fn close_writer(&mut self) -> Result<(), SpoolError> {
        let sync = self.config.fsync != FsyncPolicy::Never;
        self.flush(sync)?;
        self.writer = None;
        Ok(())
    }

    fn flush(&mut self, sync: bool) -> Result<(), SpoolError> {
        let Some(w) = self.writer.as_mut() else { return Ok(()) };
        let path = self.segments.back().map(|s| s.path.clone()).unwrap_or_default();
        w.file.flush().map_err(io_err(&path))?;
        if sync && self.dirty {
            w.file.get_ref().sync_data().map_err(io_err(&path))?;
            self.dirty = false;
            self.last_sync = Instant::now();
        }
        Ok(())
    }

    fn sync_if_due(&mut self) {
        if let FsyncPolicy::Interval(every) = self.config.fsync {
            if self.dirty && self.last_sync.elapsed() >= every {
                if let Err(e) = self.flush(true) {
                    tracing::error!(error = %e, "spool fsync failed");
                }
            }
        }
    }

    /// The highest seq segment `i` can hold.
    fn segment_last(&self, i: usize) -> Option<u64> {
        match self.segments.get(i + 1) {
            Some(next) => Some(next.first_seq.saturating_sub(1)),
            None => {
                let seg = self.segments.get(i)?;
                Some(seg.last_seq.unwrap_or(seg.first_seq.saturating_sub(1)))
            }
        }
    }

    fn pending_records(&self) -> u64 {
        (0..self.segments.len())
            .map(|i| {
                let first = self.segments[i].first_seq.max(self.acked_through + 1);
                match self.segment_last(i) {
                    Some(last) if last >= first => last - first + 1,
                    _ => 0,
                }
            })
            .sum()
    }

    fn remove_front_segment(&mut self) -> Result<(), SpoolError> {
        let Some(seg) = self.segments.pop_front() else { return Ok(()) };
        if self.segments.is_empty() {
            self.writer = None;
        }
        if self.reader.segment == Some(seg.first_seq) {
            self.reader.file = None;
            self.reader.buf.clear();
        }
        match fs::remove_file(&seg.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                self.segments.push_front(seg);
                return Err(io_err(&self.dir)(e));
            }
        }
        self.disk_bytes = self.disk_bytes.saturating_sub(seg.bytes);
        Ok(())
    }

    fn delete_acked_segments(&mut self) -> Result<(), SpoolError> {
        while let Some(last) = self.segment_last(0) {
            let is_writer = self.segments.len() == 1 && self.writer.is_some();
            if last > self.acked_through || (is_writer && self.next_seq.saturating_sub(1) > self.acked_through) {
                break;
            }
            self.remove_front_segment()?;
        }
        Ok(())
    }

    fn drop_oldest_segment(&mut self) -> Result<(), SpoolError> {
        if self.segments.len() == 1 && self.writer.is_some() {
            self.close_writer()?;
        }
        let Some(seg) = self.segments.front() else { return Ok(()) };
        let first = seg.first_seq.max(self.acked_through + 1);
        let lost = match self.segment_last(0) {
            Some(last) if last >= first => last - first + 1,
            _ => 0,
        };
        let (path, bytes) = (seg.path.clone(), seg.bytes);
        self.remove_front_segment()?;
        self.stats.dropped_records += lost;
        self.stats.dropped_segments += 1;
        tracing::error!(
            segment = %path.display(),
            bytes,
            records = lost,
            dropped_total = self.stats.dropped_records,
            max_bytes = self.config.max_bytes,
            "spool full: dropped the oldest unsent events"
        );
        Ok(())
    }

    fn has_unread(&self) -> bool {
        self.next_seq.saturating_sub(1) > self.reader.examined_through.max(self.acked_through)
    }

    fn ack(&mut self, through: u64) -> Result<(), SpoolError> {
        let through = through.min(self.next_seq.saturating_sub(1));
        if through <= self.acked_through && self.batch.is_none_or(|(_, last)| last > through) {
            return Ok(());
        }
        self.acked_through = self.acked_through.max(through);
        if self.batch.is_some_and(|(_, last)| last <= self.acked_through) {
            self.batch = None;
        }
        self.write_ledger()?;
        self.delete_acked_segments()
    }

    fn write_ledger(&mut self) -> Result<(), SpoolError> {
        let mut bytes = Vec::with_capacity(LEDGER_LEN);
        bytes.extend_from_slice(&LEDGER_MAGIC);
        bytes.extend_from_slice(&self.acked_through.to_le_bytes());
        let (first, last) = self.batch.unwrap_or((0, 0));
        bytes.extend_from_slice(&first.to_le_bytes());
        bytes.extend_from_slice(&last.to_le_bytes());
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        let tmp = self.dir.join("ledger.tmp");
        let path = self.dir.join("ledger");
        let mut f = OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(&tmp).map_err(io_err(&tmp))?;
        f.write_all(&bytes).and_then(|()| f.sync_all()).map_err(io_err(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        sync_dir(&self.dir)
    }

    // ---- reading ----

    fn rewind(&mut self) {
        self.reader = Reader::default();
        // Nothing below the oldest segment (or, with none, below the next seq) can be read.
        let floor = self.segments.front().map_or(self.next_seq, |s| s.first_seq).saturating_sub(1);
        self.reader.examined_through = self.acked_through.max(floor);
    }

    /// Moves the reader to the first segment holding seqs after `after`, or keeps it.
    fn reader_segment(&mut self) -> Option<usize> {
        if let Some(cur) = self.reader.segment {
            if let Some(i) = self.segments.iter().position(|s| s.first_seq == cur) {
                return Some(i);
            }
        }
        // The current segment is gone (or none yet): the first one that follows.
        let cur = self.reader.segment;
        let i = self.segments.iter().position(|s| cur.is_none_or(|c| s.first_seq > c))?;
        self.enter_segment(i);
        Some(i)
    }

    fn enter_segment(&mut self, i: usize) {
        let first = self.segments[i].first_seq;
        self.reader.segment = Some(first);
        self.reader.offset = SEGMENT_MAGIC.len() as u64;
        self.reader.buf.clear();
        self.reader.buf_offset = self.reader.offset;
        self.reader.file = None;
        self.reader.end = None;
        self.reader.expected = first;
    }

    /// Reads segment `i` into the reader's buffer up to its current end; returns the end offset.
    fn fill(&mut self, i: usize) -> Result<u64, SpoolError> {
        let is_writer = i + 1 == self.segments.len() && self.writer.is_some();
        if is_writer {
            self.flush(false)?;
        }
        let seg_path = self.segments[i].path.clone();
        let r = &mut self.reader;
        if r.file.is_none() {
            r.file = Some(File::open(&seg_path).map_err(io_err(&seg_path))?);
        }
        let Some(file) = r.file.as_ref() else { return Ok(r.offset) };
        let end = match (is_writer, &self.writer, r.end) {
            (true, Some(w), _) => w.len,
            (_, _, Some(end)) => end,
            _ => {
                let end = file.metadata().map_err(io_err(&seg_path))?.len();
                r.end = Some(end);
                end
            }
        };
        // Keep the buffer starting at or before the read offset.
        if r.offset < r.buf_offset || r.offset > r.buf_offset + r.buf.len() as u64 {
            r.buf.clear();
            r.buf_offset = r.offset;
        } else if r.offset - r.buf_offset >= READER_COMPACT_BYTES as u64 {
            let consumed = (r.offset - r.buf_offset) as usize;
            r.buf.drain(..consumed);
            r.buf_offset = r.offset;
        }
        let have = r.buf_offset + r.buf.len() as u64;
        if end > have {
            let start = r.buf.len();
            r.buf.resize(start + (end - have) as usize, 0);
            let mut got = 0usize;
            while start + got < r.buf.len() {
                match file.read_at(&mut r.buf[start + got..], have + got as u64) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        r.buf.truncate(start + got);
                        return Err(io_err(&seg_path)(e));
                    }
                }
            }
            r.buf.truncate(start + got);
        }
        Ok(r.buf_offset + r.buf.len() as u64)
    }

    /// Decodes the next record without consuming it. `Ok(None)` means nothing more for now.
    fn peek(&mut self) -> Result<Option<Peeked>, SpoolError> {
        loop {
            let Some(i) = self.reader_segment() else {
                self.reader.examined_through = self.next_seq.saturating_sub(1);
                return Ok(None);
            };
            let is_last = i + 1 == self.segments.len();
            let end = self.fill(i)?;
            let r = &mut self.reader;
            let start = (r.offset - r.buf_offset) as usize;
            let buf = r.buf.get(start..).unwrap_or(&[]);
            let floor = r.examined_through.max(self.acked_through);
            match decode_at(buf) {
                Decoded::Record { seq, len } => {
                    let payload = start + RECORD_HEADER_LEN..start + len;
                    let next_offset = r.offset + len as u64;
                    if seq <= floor {
                        // Acknowledged or already returned: skip silently.
                        r.offset = next_offset;
                        r.expected = seq + 1;
                        continue;
                    }
                    return Ok(Some((seq, payload, next_offset)));
                }
                Decoded::Incomplete if buf.is_empty() => {
                    if is_last {
                        self.reader.examined_through = self.next_seq.saturating_sub(1);
                        return Ok(None);
                    }
                    let next = i + 1;
                    self.enter_segment(next);
                }
                Decoded::Incomplete | Decoded::Corrupt => {
                    let min_seq = r.expected.max(floor + 1);
                    match resync(&r.buf, start + 1, min_seq) {
                        Some((pos, seq)) => {
                            let skipped = seq.saturating_sub(r.expected).max(1);
                            self.stats.corrupt_records += skipped;
                            tracing::error!(
                                segment = %self.segments[i].path.display(),
                                offset = r.offset,
                                skipped,
                                "spool: damaged records skipped"
                            );
                            r.offset = r.buf_offset + pos as u64;
                        }
                        None => {
                            self.stats.torn_records += 1;
                            tracing::warn!(
                                segment = %self.segments[i].path.display(),
                                offset = r.offset,
                                bytes = end - r.offset,
                                "spool: incomplete record at the end of a segment skipped (a crash mid-write)"
                            );
                            r.offset = end;
                            if is_last {
                                if self.writer.is_none() {
                                    self.reader.examined_through = self.next_seq.saturating_sub(1);
                                }
                                return Ok(None);
                            }
                            let next = i + 1;
                            self.enter_segment(next);
                        }
                    }
                }
            }
        }
    }

    fn read(&mut self, limit: ReadLimit) -> Result<Vec<Record>, SpoolError> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while out.len() < limit.max_records {
            let Some((seq, payload, next_offset)) = self.peek()? else { break };
            if limit.through_seq.is_some_and(|t| seq > t) {
                break;
            }
            let len = payload.len();
            if !out.is_empty() && bytes + len > limit.max_bytes {
                break;
            }
            let r = &mut self.reader;
            let data = r.buf.get(payload).map(<[u8]>::to_vec).unwrap_or_default();
            r.offset = next_offset;
            r.expected = seq + 1;
            r.examined_through = seq;
            bytes += len;
            out.push(Record { seq, payload: data });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small_config() -> SpoolConfig {
        SpoolConfig { max_bytes: 1 << 30, segment_bytes: 4096, max_record_bytes: 1000, fsync: FsyncPolicy::Never }
    }

    fn read_all(spool: &Spool) -> Vec<Record> {
        spool.read(ReadLimit::records(usize::MAX)).unwrap()
    }

    fn payload(i: usize) -> Vec<u8> {
        format!("{{\"event_type\":\"alert\",\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(i % 37)).into_bytes()
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn append_read_ack_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), small_config()).unwrap();
        let seqs: Vec<u64> = (0..300).map(|i| spool.append(&payload(i)).unwrap()).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
        assert!(segment_files(dir.path()).len() > 3, "small segments rotate");
        let first = spool.read(ReadLimit::records(100)).unwrap();
        assert_eq!(first.len(), 100);
        assert_eq!(first[0].payload, payload(0));
        spool.ack(first[99].seq).unwrap();
        drop(spool);
        let spool = Spool::open(dir.path(), small_config()).unwrap();
        let rest = read_all(&spool);
        assert_eq!(rest.len(), 200);
        assert_eq!(rest[0].payload, payload(100));
        let more = spool.append(b"{\"event_type\":\"dns\"}").unwrap();
        assert!(more > seqs[299], "numbers are never reused after a restart");
        spool.ack(more).unwrap();
        assert_eq!(segment_files(dir.path()).len(), 0, "fully acknowledged segments are deleted");
        assert_eq!(spool.stats().pending_records, 0);
    }

    #[test]
    fn locked_while_open() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), small_config()).unwrap();
        assert!(matches!(Spool::open(dir.path(), small_config()), Err(SpoolError::Locked { .. })));
        drop(spool);
        Spool::open(dir.path(), small_config()).unwrap();
    }

    #[test]
    fn rejects_oversized_records_and_bad_config() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), small_config()).unwrap();
        assert!(matches!(spool.append(&[b'x'; 1001]), Err(SpoolError::RecordTooLarge { len: 1001, max: 1000 })));
        let bad = SpoolConfig { segment_bytes: 100, ..small_config() };
        assert!(matches!(Spool::open(dir.path().join("b"), bad), Err(SpoolError::Config(_))));
    }

    /// A crash mid-write leaves the last record torn at any byte: the records before it are
    /// read, the torn one is counted, and records appended after the restart follow.
    #[test]
    fn torn_last_record_at_every_offset() {
        let base = tempfile::tempdir().unwrap();
        let src = base.path().join("src");
        let spool = Spool::open(&src, small_config()).unwrap();
        for i in 0..5 {
            spool.append(&payload(i)).unwrap();
        }
        drop(spool);
        let seg = segment_files(&src).pop().unwrap();
        let full = fs::read(&seg).unwrap();
        let last_len = RECORD_HEADER_LEN + payload(4).len();
        let last_start = full.len() - last_len;
        for cut in last_start..full.len() {
            let dir = base.path().join(format!("cut{cut}"));
            fs::create_dir(&dir).unwrap();
            fs::write(dir.join(seg.file_name().unwrap()), &full[..cut]).unwrap();
            let spool = Spool::open(&dir, small_config()).unwrap();
            let after = spool.append(b"{\"after\":1}").unwrap();
            let got = read_all(&spool);
            let payloads: Vec<Vec<u8>> = got.iter().map(|r| r.payload.clone()).collect();
            let mut want: Vec<Vec<u8>> = (0..4).map(payload).collect();
            want.push(b"{\"after\":1}".to_vec());
            assert_eq!(payloads, want, "cut at {cut}");
            assert_eq!(got.last().unwrap().seq, after);
            let torn = spool.stats().torn_records;
            assert_eq!(torn, u64::from(cut > last_start), "cut at {cut}");
            assert_eq!(spool.stats().corrupt_records, 0);
        }
    }

    #[test]
    fn corrupt_record_in_the_middle_is_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), small_config()).unwrap();
        for i in 0..10 {
            spool.append(&payload(i)).unwrap();
        }
        drop(spool);
        let seg = segment_files(dir.path()).pop().unwrap();
        let mut bytes = fs::read(&seg).unwrap();
        // Record 3's payload: flip a byte (checksum mismatch).
        let offset_of = |n: usize| SEGMENT_MAGIC.len() + (0..n).map(|i| RECORD_HEADER_LEN + payload(i).len()).sum::<usize>();
        bytes[offset_of(3) + RECORD_HEADER_LEN + 2] ^= 0x55;
        // Record 6's length field: make it point far away.
        bytes[offset_of(6) + 5] ^= 0x7f;
        fs::write(&seg, &bytes).unwrap();
        let spool = Spool::open(dir.path(), small_config()).unwrap();
        let got: Vec<Vec<u8>> = read_all(&spool).into_iter().map(|r| r.payload).collect();
        let want: Vec<Vec<u8>> = [0, 1, 2, 4, 5, 7, 8, 9].into_iter().map(payload).collect();
        assert_eq!(got, want);
        assert_eq!(spool.stats().corrupt_records, 2);
        assert_eq!(spool.stats().torn_records, 0);
    }

    #[test]
    fn corrupt_ledger_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), small_config()).unwrap();
        let s = spool.append(b"{}").unwrap();
        spool.ack(s).unwrap();
        drop(spool);
        let mut l = fs::read(dir.path().join("ledger")).unwrap();
        l[9] ^= 1;
        fs::write(dir.path().join("ledger"), &l).unwrap();
        assert!(matches!(Spool::open(dir.path(), small_config()), Err(SpoolError::CorruptLedger { .. })));
    }

    #[test]
    fn size_cap_drops_oldest_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let config = SpoolConfig { max_bytes: 3 * 4096, ..small_config() };
        let spool = Spool::open(dir.path(), config.clone()).unwrap();
        let n = 1000;
        for i in 0..n {
            spool.append(&payload(i)).unwrap();
            assert!(spool.stats().disk_bytes <= config.max_bytes);
        }
        let stats = spool.stats();
        assert!(stats.dropped_records > 0 && stats.dropped_segments > 0);
        let got = read_all(&spool);
        // Every record is either still readable or counted as dropped, and what is left is the newest.
        assert_eq!(got.len() as u64 + stats.dropped_records, n as u64);
        assert_eq!(got.last().unwrap().payload, payload(n - 1));
        assert!(got.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        // Acknowledged records are not counted as dropped.
        spool.ack(got.last().unwrap().seq).unwrap();
        let dropped_before = spool.stats().dropped_records;
        for i in 0..100 {
            spool.append(&payload(i)).unwrap();
        }
        assert_eq!(spool.stats().dropped_records, dropped_before);
    }

    #[test]
    fn pending_batch_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), small_config()).unwrap();
        let seqs: Vec<u64> = (0..10).map(|i| spool.append(&payload(i)).unwrap()).collect();
        let batch = spool.read(ReadLimit::records(4)).unwrap();
        spool.begin_batch(batch[0].seq, batch[3].seq).unwrap();
        spool.read(ReadLimit::records(4)).unwrap();
        drop(spool);
        let spool = Spool::open(dir.path(), small_config()).unwrap();
        assert_eq!(spool.pending_batch(), Some((seqs[0], seqs[3])));
        let again = spool.read(ReadLimit { through_seq: Some(seqs[3]), ..ReadLimit::records(100) }).unwrap();
        assert_eq!(again, batch);
        spool.ack(seqs[3]).unwrap();
        assert_eq!(spool.pending_batch(), None);
        assert_eq!(read_all(&spool).len(), 6);
    }

    #[test]
    fn every_record_policy_and_wait() {
        let dir = tempfile::tempdir().unwrap();
        let config = SpoolConfig { fsync: FsyncPolicy::EveryRecord, ..small_config() };
        let spool = Spool::open(dir.path(), config).unwrap();
        assert!(!spool.wait_readable(Duration::from_millis(10)));
        let s2 = spool.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            s2.append(b"{}").unwrap()
        });
        assert!(spool.wait_readable(Duration::from_secs(5)));
        let seq = t.join().unwrap();
        assert_eq!(read_all(&spool)[0].seq, seq);
        assert!(!spool.wait_readable(Duration::from_millis(10)));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Append(usize),
        Read(usize),
        /// Acknowledge through the k-th record read so far and not yet acknowledged.
        Ack(usize),
        Reopen,
        Rewind,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            5 => (0usize..600).prop_map(Op::Append),
            3 => (1usize..20).prop_map(Op::Read),
            2 => (0usize..20).prop_map(Op::Ack),
            1 => Just(Op::Reopen),
            1 => Just(Op::Rewind),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// The spool against an in-memory model: a queue of unacknowledged records and a read
        /// cursor that goes back to the first unacknowledged record on reopen.
        #[test]
        fn spool_matches_model(ops in proptest::collection::vec(op(), 1..120)) {
            let dir = tempfile::tempdir().unwrap();
            let config = SpoolConfig { max_bytes: 1 << 30, segment_bytes: 2048, max_record_bytes: 1000, fsync: FsyncPolicy::Never };
            let mut spool = Some(Spool::open(dir.path(), config.clone()).unwrap());
            let mut unacked: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
            let mut read_upto = 0usize; // index into `unacked` of the next record to read
            let mut last_seq = 0u64;
            for (n, op) in ops.into_iter().enumerate() {
                let s = spool.as_ref().unwrap();
                match op {
                    Op::Append(len) => {
                        let body = format!("{n}:{}", "y".repeat(len)).into_bytes();
                        let seq = s.append(&body).unwrap();
                        prop_assert!(seq > last_seq);
                        last_seq = seq;
                        unacked.push_back((seq, body));
                    }
                    Op::Read(k) => {
                        let got = s.read(ReadLimit::records(k)).unwrap();
                        let want: Vec<Record> = unacked.iter().skip(read_upto).take(k)
                            .map(|(seq, p)| Record { seq: *seq, payload: p.clone() }).collect();
                        prop_assert_eq!(&got, &want);
                        read_upto += got.len();
                    }
                    Op::Ack(k) => {
                        if read_upto > 0 {
                            let idx = k % read_upto;
                            let through = unacked[idx].0;
                            s.ack(through).unwrap();
                            unacked.drain(..=idx);
                            read_upto -= idx + 1;
                        }
                    }
                    Op::Rewind => {
                        s.rewind();
                        read_upto = 0;
                    }
                    Op::Reopen => {
                        drop(spool.take());
                        spool = Some(Spool::open(dir.path(), config.clone()).unwrap());
                        read_upto = 0;
                    }
                }
                let s = spool.as_ref().unwrap();
                let stats = s.stats();
                prop_assert_eq!(stats.pending_records, unacked.len() as u64);
                prop_assert_eq!(stats.dropped_records + stats.corrupt_records + stats.torn_records, 0);
                // Every segment on disk still holds an unacknowledged record, or is being written.
                let files = segment_files(dir.path());
                prop_assert_eq!(files.len(), stats.segments);
                let oldest_unacked = unacked.front().map(|r| r.0);
                if oldest_unacked.is_none() {
                    prop_assert!(files.is_empty(), "nothing unacknowledged but segments left: {:?}", files);
                }
                for (i, f) in files.iter().enumerate() {
                    let first: u64 = f.file_stem().unwrap().to_str().unwrap().parse().unwrap();
                    let next_first = files.get(i + 1).map(|g| g.file_stem().unwrap().to_str().unwrap().parse::<u64>().unwrap());
                    if let Some(next_first) = next_first {
                        prop_assert!(oldest_unacked.is_some_and(|o| o < next_first),
                            "segment {} holds only acknowledged records", first);
                    }
                }
            }
            // Finally everything unacknowledged is still there after a reopen.
            drop(spool.take());
            let s = Spool::open(dir.path(), config).unwrap();
            let got: Vec<(u64, Vec<u8>)> = read_all(&s).into_iter().map(|r| (r.seq, r.payload)).collect();
            prop_assert_eq!(got, unacked.into_iter().collect::<Vec<_>>());
        }
    }
}
