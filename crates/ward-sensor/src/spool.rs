//! The on-disk spool: where a sensor keeps every event meant for the hub until the hub has
//! acknowledged it, so a link or hub outage of hours loses nothing and a crash loses at most
//! what the fsync policy allows.
//!
//! # Model
//!
//! One writer (the sensor's EVE path, [`Spool::append_many`] / [`Spool::append`]) and one reader
//! (the relay, [`Spool::read`] / [`Spool::ack`]). Every record gets a sequence number, strictly
//! increasing over the spool's whole life (also across restarts). The reader sees records in
//! sequence order; [`Spool::ack`]`(n)` says "every record up to and including `n` is at the
//! hub". After a restart the reader starts again at the first record after the last
//! acknowledged one, so records read but not acknowledged are read again (at-least-once; the
//! hub's idempotency key turns that into exactly-once, see [`crate::relay`]).
//!
//! # Crash guarantees
//!
//! A record is *spooled* once [`Spool::append_many`] (or [`Spool::append`]) returned for it.
//! The spool keeps no buffer in the process: by then the record's bytes were handed to the
//! kernel, one `write(2)` per call (per segment it spans). Hence:
//!
//! * **The process dies** (kill -9, abort, panic, OOM killer): no spooled record is lost. A write
//!   the death cut short belonged to a call that never returned, so none of its records was
//!   spooled; the torn tail it leaves is cut off when the spool is opened next (below).
//! * **The machine dies** (power cut, kernel crash): what was not yet fsynced may be lost, and
//!   [`FsyncPolicy`] bounds it. `EveryRecord` (`--spool-fsync always`): nothing, each call's
//!   records are fsynced (together, one fsync per call) before it returns. `Interval(d)` (the
//!   default, 500 ms): the records spooled in the last `d` plus the time one fsync takes; a
//!   background thread fsyncs every `d` while records are unsynced, so the bound holds even
//!   when no further record arrives and no reader polls. `Never`: whatever the kernel had not
//!   written back yet (on Linux typically up to 30 s).
//!
//! Every spooled record that survives reaches the hub exactly once (see [`crate::relay`]).
//!
//! # Directory layout
//!
//! ```text
//! SPOOL_DIR/
//!   lock                          flock(2)-held while a process has the spool open
//!   ledger                        the acknowledgement cursor (below), replaced atomically
//!   00000001733000000000123.seg   segment files, named by the sequence number of their first
//!   00000001733000000004711.seg   record (20 decimal digits, so names sort in sequence order)
//!   00000001733000000000123.seg.tmp  a segment being rewritten under the size cap (only left
//!                                 behind by a crash, and then deleted on open)
//!   dead-letter/                  batches the hub refused for good (written by the relay)
//! ```
//!
//! # Segment files
//!
//! A segment starts with the 8-byte magic `WARDSPL1` (format version 1) and continues with
//! records, back to back. Only the newest segment is ever appended to; a segment is closed once
//! it holds `segment_bytes`.
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
//! # Recovery on open
//!
//! A crash can tear only the newest segment's tail (the one place appends go). [`Spool::open`]
//! scans the newest segment; if bytes follow its last whole record (an incomplete record, or
//! one failing its checksum), the file is truncated to the end of that last whole record, the
//! cut is counted in [`SpoolStats::torn_records`] and logged, and appending continues right
//! after the last good record, in the same segment unless it is full. Complete records are
//! therefore never left behind a torn one. A newest segment cut before its magic was whole
//! held no record and gets its magic again.
//!
//! # Reading damaged segments
//!
//! Older segments are read as written (their damage can only come from the disk, or from a
//! spool written by a version that started a new segment after each restart):
//!
//! * Torn record (the tail is shorter than the header, or than the header's length says): it
//!   is skipped and counted in [`SpoolStats::torn_records`], and reading continues with the
//!   next segment.
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
//! # When records and files are deleted
//!
//! * A segment is deleted once every sequence number it can hold is acknowledged (its last seq
//!   is the next segment's first minus one; for the segment being written, the last appended).
//! * Size cap (`max_bytes`, at least two segments): before an append would make the segment
//!   files exceed it, the spool makes room by value, the least valuable records first
//!   ([`RecordClass`]):
//!   1. **metadata** — `flow`, `dns`, `http`, `tls`, `stats`, `contact` and any other type:
//!      segments are rewritten without them, oldest segment first (each rewrite goes to
//!      `NAME.seg.tmp`, fsynced, renamed over the segment);
//!   2. then **anomalies**, the same way;
//!   3. then **alerts**: whole segments are deleted, oldest first.
//!
//!   Records the relay has already read (its batch in flight) are kept by the rewrites. Every
//!   unacknowledged record dropped is counted by class in [`SpoolStats`] (`dropped_metadata`,
//!   `dropped_anomalies`, `dropped_alerts`) and logged at `error`: the cap is the operator's
//!   choice of losing events over stopping capture. After drops, `pending_records` is an upper
//!   bound (the dropped numbers stay in the segments' ranges until acknowledged past).
//!
//! # Sequence numbers
//!
//! A new spool (no ledger, no segments) starts at the current time in microseconds since the
//! Unix epoch, so a spool directory that was deleted and re-created does not reuse the numbers
//! (and hub idempotency keys) of the old one unless it wrote more than one record per
//! microsecond on average. On open, the next number is above the last record on disk, the
//! acknowledged cursor and the recorded batch (numbers of a torn tail are reused: they were
//! never spooled, so never sent).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Segment file magic, format version 1.
pub const SEGMENT_MAGIC: [u8; 8] = *b"WARDSPL1";
/// Record magic (see the module note for why these bytes).
pub const RECORD_MAGIC: [u8; 4] = [0xFF, 0x57, 0x52, 0xFE];
/// Bytes before a record's payload.
pub const RECORD_HEADER_LEN: usize = 20;
/// The format's hard limit on one payload; a header claiming more is corruption.
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;
/// A segment's default size: thousands of records per file (few files, few fsyncs of the
/// directory), while the size cap still works in steps of a few MiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 8 * 1024 * 1024;
/// The smallest size cap with default segments: two of them, because the cap makes room by
/// rewriting or deleting a closed segment while another one is being written.
pub const MIN_MAX_BYTES: u64 = 2 * DEFAULT_SEGMENT_BYTES;
/// The longest fsync interval accepted: a longer one is no safer than `Never` (the kernel
/// writes dirty pages back within about 30 s on its own).
pub const MAX_FSYNC_INTERVAL: Duration = Duration::from_secs(60);
const LEDGER_MAGIC: [u8; 8] = *b"WARDLED1";
const LEDGER_LEN: usize = 36;
const SEGMENT_SUFFIX: &str = ".seg";
/// A segment being rewritten under the size cap.
const REWRITE_SUFFIX: &str = ".seg.tmp";
/// The reader drops consumed bytes from its buffer once this many have piled up.
const READER_COMPACT_BYTES: usize = 1024 * 1024;

/// When spooled records reach the disk (see the module note's crash guarantees).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// fsync before every append call returns (`always`): a machine crash loses nothing that
    /// was spooled. One fsync covers all the records of an [`Spool::append_many`] call.
    EveryRecord,
    /// fsync at most this long after a record was spooled.
    Interval(Duration),
    /// Never fsync (the OS writes back on its own schedule).
    Never,
}

impl FsyncPolicy {
    /// Parses `always`, `never`, or an interval in milliseconds (`500` or `500ms`, at most
    /// [`MAX_FSYNC_INTERVAL`]).
    pub fn parse(text: &str) -> Result<FsyncPolicy, String> {
        let text = text.trim();
        match text {
            "always" => return Ok(FsyncPolicy::EveryRecord),
            "never" => return Ok(FsyncPolicy::Never),
            _ => {}
        }
        let max_ms = MAX_FSYNC_INTERVAL.as_millis() as u64;
        match text.strip_suffix("ms").unwrap_or(text).parse::<u64>() {
            Ok(ms) if (1..=max_ms).contains(&ms) => Ok(FsyncPolicy::Interval(Duration::from_millis(ms))),
            Ok(_) => Err(format!("fsync interval {text:?} must be 1 to {max_ms} ms (or always, never)")),
            Err(_) => Err(format!("{text:?} is not an fsync policy: use always, never, or an interval in milliseconds such as 500")),
        }
    }
}

/// What a record is worth to the hub, least first: under the size cap the spool drops the
/// least valuable records first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordClass {
    /// `flow`, `dns`, `http`, `tls`, `stats`, `contact`, and any record that is not an alert or
    /// an anomaly (unparsable ones too).
    Metadata = 0,
    Anomaly = 1,
    Alert = 2,
}

impl RecordClass {
    /// The class of one EVE line, by its top-level `event_type`.
    pub fn of(payload: &[u8]) -> RecordClass {
        #[derive(serde::Deserialize)]
        struct Head<'a> {
            #[serde(borrow, default)]
            event_type: Option<std::borrow::Cow<'a, str>>,
        }
        match serde_json::from_slice::<Head<'_>>(payload).ok().and_then(|h| h.event_type).as_deref() {
            Some("alert") => RecordClass::Alert,
            Some("anomaly") => RecordClass::Anomaly,
            _ => RecordClass::Metadata,
        }
    }

    fn above(self) -> RecordClass {
        match self {
            RecordClass::Metadata => RecordClass::Anomaly,
            RecordClass::Anomaly | RecordClass::Alert => RecordClass::Alert,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SpoolConfig {
    /// Cap on the segment files' total size; beyond it records are dropped by value.
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
            segment_bytes: DEFAULT_SEGMENT_BYTES,
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
                "max_bytes ({}) must be at least twice segment_bytes ({}): the cap makes room in a closed segment while another is written",
                self.max_bytes, self.segment_bytes
            )));
        }
        if let FsyncPolicy::Interval(every) = self.fsync {
            if every.is_zero() || every > MAX_FSYNC_INTERVAL {
                return Err(SpoolError::Config(format!("the fsync interval must be 1 ms to {} s", MAX_FSYNC_INTERVAL.as_secs())));
            }
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

/// An [`Spool::append_many`] that stored only the records before an error.
#[derive(Debug, thiserror::Error)]
#[error("{error} (the {stored} records before it were stored)")]
pub struct PartialAppend {
    /// Records stored, from the first one on.
    pub stored: usize,
    #[source]
    pub error: SpoolError,
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
    /// Unacknowledged records deleted by the size cap: the sum of the three below.
    pub dropped_records: u64,
    /// ... of them `flow`, `dns`, `http`, `tls`, `stats`, `contact` and other metadata records.
    pub dropped_metadata: u64,
    pub dropped_anomalies: u64,
    pub dropped_alerts: u64,
    /// Segments deleted whole by the size cap.
    pub dropped_segments: u64,
    /// Segments rewritten without their least valuable records by the size cap.
    pub compacted_segments: u64,
    /// Records skipped because they were damaged in the middle of a segment.
    pub corrupt_records: u64,
    /// Incomplete records at the end of a segment (a crash mid-write): cut off at open, or
    /// skipped while reading an older segment.
    pub torn_records: u64,
    /// fsyncs of segment data.
    pub syncs: u64,
    pub segments: usize,
    pub disk_bytes: u64,
    /// Sequence numbers not yet acknowledged (an upper bound when records were damaged or
    /// dropped).
    pub pending_records: u64,
    pub acked_through: u64,
    pub next_seq: u64,
    /// The size cap in force.
    pub max_bytes: u64,
}

/// The spool; cheap to clone, shared by the writer and the reader.
#[derive(Clone)]
pub struct Spool {
    // Declared first so it is dropped first: the last handle stops the fsync thread (which
    // holds the state too) before the state is dropped, so the lock is free once drop returns.
    _syncer: Arc<IntervalSync>,
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<Inner>,
    readable: Condvar,
}

fn lock_inner(shared: &Shared) -> MutexGuard<'_, Inner> {
    shared.state.lock().unwrap_or_else(|p| p.into_inner())
}

/// The thread behind [`FsyncPolicy::Interval`]: fsyncs unsynced records every interval.
struct IntervalSync {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl IntervalSync {
    fn start(shared: &Arc<Shared>, policy: FsyncPolicy) -> IntervalSync {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let FsyncPolicy::Interval(every) = policy else { return IntervalSync { stop, thread: None } };
        let (shared, flag) = (shared.clone(), stop.clone());
        let spawned = std::thread::Builder::new().name("ward-spool-sync".into()).spawn(move || loop {
            {
                let (stopped, wake) = &*flag;
                let guard = stopped.lock().unwrap_or_else(|p| p.into_inner());
                let (guard, _) = wake.wait_timeout_while(guard, every, |s| !*s).unwrap_or_else(|p| p.into_inner());
                if *guard {
                    return;
                }
            }
            let mut inner = lock_inner(&shared);
            if let Err(e) = inner.sync() {
                tracing::error!(error = %e, "spool fsync failed");
            }
        });
        match spawned {
            Ok(thread) => IntervalSync { stop, thread: Some(thread) },
            Err(e) => {
                // Appends and reader polls still fsync when the interval is due.
                tracing::warn!(error = %e, "cannot start the spool's fsync thread; fsyncing on appends only");
                IntervalSync { stop, thread: None }
            }
        }
    }
}

impl Drop for IntervalSync {
    fn drop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct SegmentInfo {
    first_seq: u64,
    path: PathBuf,
    bytes: u64,
    /// The last valid record's seq, when known (scanned at open, or written by us).
    last_seq: Option<u64>,
    /// The least valuable class the segment may still hold unacknowledged (what the size cap
    /// has not yet rewritten it without).
    may_hold: RecordClass,
}

struct Writer {
    /// Opened for appending; written with one `write_all` per append call, never buffered here.
    file: File,
    /// Bytes of whole records (plus the magic) in the file.
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
    /// Records were written since the last fsync.
    dirty: bool,
    last_sync: Instant,
    /// Encoded records of the append in progress (kept for its capacity).
    scratch: Vec<u8>,
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

/// One step through a whole segment's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// A whole record at `start..end` (header included).
    Record { seq: u64, start: usize, end: usize },
    /// Bytes that are no record (damage, or a torn tail when nothing follows).
    Damaged { start: usize, end: usize },
}

/// Walks a segment's bytes record by record as recovery and the size cap read them: a damaged
/// stretch ends at the next valid record with a higher seq than the last good one.
struct RecordWalk<'a> {
    bytes: &'a [u8],
    pos: usize,
    last: Option<u64>,
}

impl<'a> RecordWalk<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        RecordWalk { bytes, pos: SEGMENT_MAGIC.len(), last: None }
    }
}

impl Iterator for RecordWalk<'_> {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        let start = self.pos;
        let rest = self.bytes.get(start..).filter(|r| !r.is_empty())?;
        match decode_at(rest) {
            Decoded::Record { seq, len } if self.last.is_none_or(|l| seq > l) => {
                self.pos += len;
                self.last = Some(seq);
                Some(Step::Record { seq, start, end: self.pos })
            }
            _ => {
                let min = self.last.map_or(0, |l| l + 1);
                self.pos = resync(self.bytes, start + 1, min).map_or(self.bytes.len(), |(p, _)| p);
                Some(Step::Damaged { start, end: self.pos })
            }
        }
    }
}

/// Unacknowledged records of `bytes` per class (indexed by `RecordClass as usize`).
fn unacked_by_class(bytes: &[u8], acked_through: u64) -> [u64; 3] {
    let mut counts = [0u64; 3];
    for step in RecordWalk::new(bytes) {
        if let Step::Record { seq, start, end } = step {
            if seq > acked_through {
                counts[RecordClass::of(&bytes[start + RECORD_HEADER_LEN..end]) as usize] += 1;
            }
        }
    }
    counts
}

/// Recovery of the newest segment at open (see the module note): cuts a torn tail off.
/// Returns whether appends may continue in it.
fn recover_newest(seg: &mut SegmentInfo, sync: bool, stats: &mut SpoolStats) -> Result<bool, SpoolError> {
    let path = seg.path.clone();
    let bytes = fs::read(&path).map_err(io_err(&path))?;
    if !bytes.starts_with(&SEGMENT_MAGIC) {
        if !SEGMENT_MAGIC.starts_with(&bytes) {
            // Not a segment of this format: leave it to the reader and start a new one.
            return Ok(false);
        }
        // Created, but the crash came before its magic was whole: it never held a record.
        let file = OpenOptions::new().write(true).open(&path).map_err(io_err(&path))?;
        file.set_len(0).and_then(|()| file.write_all_at(&SEGMENT_MAGIC, 0)).map_err(io_err(&path))?;
        if sync {
            file.sync_data().map_err(io_err(&path))?;
        }
        seg.bytes = SEGMENT_MAGIC.len() as u64;
        seg.last_seq = None;
        return Ok(true);
    }
    let mut good_end = SEGMENT_MAGIC.len();
    let mut last = None;
    for step in RecordWalk::new(&bytes) {
        if let Step::Record { seq, end, .. } = step {
            good_end = end;
            last = Some(seq);
        }
    }
    seg.last_seq = last;
    if good_end < bytes.len() {
        let file = OpenOptions::new().write(true).open(&path).map_err(io_err(&path))?;
        file.set_len(good_end as u64).map_err(io_err(&path))?;
        if sync {
            file.sync_data().map_err(io_err(&path))?;
        }
        stats.torn_records += 1;
        tracing::warn!(
            segment = %path.display(),
            offset = good_end,
            bytes = bytes.len() - good_end,
            "spool: cut off an incomplete record at the end of the newest segment (a crash mid-write); appending after the last whole record"
        );
        seg.bytes = good_end as u64;
    }
    Ok(true)
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
    /// Opens (or creates) the spool in `dir`, recovering a torn tail of the newest segment.
    /// Fails if another process has it open.
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
            if name.ends_with(REWRITE_SUFFIX) {
                // A rewrite cut short by a crash; the segment it was rewriting is intact.
                let path = entry.path();
                fs::remove_file(&path).map_err(io_err(&path))?;
                tracing::info!(file = name, "spool: removed an unfinished segment rewrite");
                continue;
            }
            let Some(stem) = name.strip_suffix(SEGMENT_SUFFIX) else { continue };
            let Ok(first_seq) = stem.parse::<u64>() else {
                tracing::warn!(file = name, "ignoring a file in the spool that is not a segment");
                continue;
            };
            let path = entry.path();
            let bytes = entry.metadata().map_err(io_err(&path))?.len();
            segments.push(SegmentInfo { first_seq, path, bytes, last_seq: None, may_hold: RecordClass::Metadata });
        }
        segments.sort_by_key(|s| s.first_seq);
        let mut segments: VecDeque<SegmentInfo> = segments.into();
        let mut stats = SpoolStats::default();
        let sync = config.fsync != FsyncPolicy::Never;
        let appendable = match segments.back_mut() {
            Some(newest) => recover_newest(newest, sync, &mut stats)?,
            None => false,
        };
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
        let mut writer = None;
        if let Some(newest) = segments.back().filter(|_| appendable) {
            let file = OpenOptions::new().append(true).open(&newest.path).map_err(io_err(&newest.path))?;
            writer = Some(Writer { file, len: newest.bytes });
        }
        let disk_bytes = segments.iter().map(|s| s.bytes).sum();
        let mut inner = Inner {
            dir,
            config,
            segments,
            writer,
            next_seq,
            acked_through,
            batch,
            reader: Reader::default(),
            stats,
            disk_bytes,
            dirty: false,
            last_sync: Instant::now(),
            scratch: Vec::new(),
            _lock: lock,
        };
        inner.delete_acked_segments()?;
        inner.rewind();
        let policy = inner.config.fsync;
        let shared = Arc::new(Shared { state: Mutex::new(inner), readable: Condvar::new() });
        let _syncer = Arc::new(IntervalSync::start(&shared, policy));
        Ok(Spool { _syncer, shared })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock_inner(&self.shared)
    }

    /// Appends one record and returns its sequence number; spooled when this returns (see the
    /// module note's crash guarantees).
    pub fn append(&self, payload: &[u8]) -> Result<u64, SpoolError> {
        let mut inner = self.lock();
        let result = inner.append_many(&[payload]);
        let seq = inner.next_seq.saturating_sub(1);
        drop(inner);
        match result {
            Ok(_) => {
                self.shared.readable.notify_all();
                Ok(seq)
            }
            Err(partial) => Err(partial.error),
        }
    }

    /// Appends records in order with one write per segment they span and, with
    /// [`FsyncPolicy::EveryRecord`], one fsync; they are spooled when this returns. On an error
    /// the records before it are stored and the rest are not (see [`PartialAppend`]); a record
    /// over `max_record_bytes` stores none of them.
    pub fn append_many(&self, payloads: &[&[u8]]) -> Result<usize, PartialAppend> {
        let result = self.lock().append_many(payloads);
        let stored = match &result {
            Ok(n) => *n,
            Err(p) => p.stored,
        };
        if stored > 0 {
            self.shared.readable.notify_all();
        }
        result
    }

    /// Appends a JSON value as one compact line.
    pub fn append_json(&self, value: &serde_json::Value) -> Result<u64, SpoolError> {
        let line = serde_json::to_vec(value).map_err(|e| SpoolError::Io { path: PathBuf::new(), source: e.into() })?;
        self.append(&line)
    }

    /// The largest payload [`Spool::append`] accepts.
    pub fn max_record_bytes(&self) -> usize {
        self.lock().config.max_record_bytes
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

    /// fsyncs the records not yet fsynced (unless the policy is `Never`). Appended records
    /// are in the kernel already; this is about a machine crash.
    pub fn flush(&self) -> Result<(), SpoolError> {
        let mut inner = self.lock();
        if inner.config.fsync == FsyncPolicy::Never {
            return Ok(());
        }
        inner.sync()
    }

    pub fn stats(&self) -> SpoolStats {
        let inner = self.lock();
        let mut s = inner.stats.clone();
        s.segments = inner.segments.len();
        s.disk_bytes = inner.disk_bytes;
        s.acked_through = inner.acked_through;
        s.next_seq = inner.next_seq;
        s.pending_records = inner.pending_records();
        s.max_bytes = inner.config.max_bytes;
        s
    }

    pub fn dir(&self) -> PathBuf {
        self.lock().dir.clone()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.config.fsync == FsyncPolicy::Never {
            return;
        }
        if let Err(e) = self.sync() {
            tracing::error!(error = %e, "spool fsync on close failed");
        }
    }
}

impl Inner {
    fn append_many(&mut self, payloads: &[&[u8]]) -> Result<usize, PartialAppend> {
        let max = self.config.max_record_bytes;
        if let Some(p) = payloads.iter().find(|p| p.len() > max) {
            return Err(PartialAppend { stored: 0, error: SpoolError::RecordTooLarge { len: p.len(), max } });
        }
        let mut pending = std::mem::take(&mut self.scratch);
        pending.clear();
        let (mut stored, mut in_pending, mut pending_payload) = (0usize, 0usize, 0u64);
        let mut failure = None;
        for payload in payloads {
            let record_len = (RECORD_HEADER_LEN + payload.len()) as u64;
            let pending_len = pending.len() as u64;
            let segment_full = self.writer.as_ref().is_some_and(|w| w.len + pending_len + record_len > self.config.segment_bytes);
            let magic = if self.writer.is_none() || segment_full { SEGMENT_MAGIC.len() as u64 } else { 0 };
            let over_cap = self.disk_bytes + pending_len + record_len + magic > self.config.max_bytes;
            if self.writer.is_none() || segment_full || over_cap {
                // Rotation and the cap work on whole files: write what is pending first.
                if let Err(e) = self.commit(&mut pending, in_pending, pending_payload) {
                    failure = Some(e);
                    break;
                }
                stored += in_pending;
                (in_pending, pending_payload) = (0, 0);
                if let Err(e) = self.segment_for(record_len, segment_full) {
                    failure = Some(e);
                    break;
                }
            }
            encode_record(self.next_seq + in_pending as u64, payload, &mut pending);
            in_pending += 1;
            pending_payload += payload.len() as u64;
        }
        if failure.is_none() {
            match self.commit(&mut pending, in_pending, pending_payload) {
                Ok(()) => stored += in_pending,
                Err(e) => failure = Some(e),
            }
        }
        pending.clear();
        self.scratch = pending;
        if stored > 0 {
            match self.config.fsync {
                FsyncPolicy::EveryRecord => {
                    if let Err(e) = self.sync() {
                        failure.get_or_insert(e);
                    }
                }
                FsyncPolicy::Interval(_) => self.sync_if_due(),
                FsyncPolicy::Never => {}
            }
        }
        match failure {
            None => Ok(stored),
            Some(error) => Err(PartialAppend { stored, error }),
        }
    }

    /// Makes the open segment ready for a record of `record_len` bytes: closes it when `full`,
    /// makes room under the cap, opens a new one when none is open.
    fn segment_for(&mut self, record_len: u64, full: bool) -> Result<(), SpoolError> {
        if full {
            self.close_writer()?;
        }
        self.make_room(record_len)?;
        if self.writer.is_none() {
            self.open_writer()?;
        }
        Ok(())
    }

    /// Writes the encoded records in `pending` to the open segment with one `write_all`.
    fn commit(&mut self, pending: &mut Vec<u8>, records: usize, payload_bytes: u64) -> Result<(), SpoolError> {
        if records == 0 {
            return Ok(());
        }
        let path = self.segments.back().map(|s| s.path.clone()).unwrap_or_default();
        let Some(w) = self.writer.as_mut() else {
            pending.clear();
            return Err(SpoolError::Config("no segment open".into()));
        };
        if let Err(e) = w.file.write_all(pending) {
            // Part of it may have reached the file: cut it off and start a new segment next time.
            let _ = w.file.set_len(w.len);
            self.writer = None;
            pending.clear();
            return Err(io_err(&path)(e));
        }
        let written = pending.len() as u64;
        pending.clear();
        w.len += written;
        let last = self.next_seq + records as u64 - 1;
        self.next_seq = last + 1;
        self.disk_bytes += written;
        if let Some(seg) = self.segments.back_mut() {
            seg.bytes += written;
            seg.last_seq = Some(last);
            seg.may_hold = RecordClass::Metadata;
        }
        self.stats.appended_records += records as u64;
        self.stats.appended_bytes += payload_bytes;
        self.dirty = true;
        Ok(())
    }

    fn open_writer(&mut self) -> Result<(), SpoolError> {
        if let Some(newest) = self.segments.back() {
            // A segment left without records by a failed write still owns its name.
            self.next_seq = self.next_seq.max(newest.first_seq + 1);
        }
        let first = self.next_seq;
        let path = self.dir.join(segment_name(first));
        let mut file =
            OpenOptions::new().create_new(true).append(true).mode(0o600).open(&path).map_err(io_err(&path))?;
        file.write_all(&SEGMENT_MAGIC).map_err(io_err(&path))?;
        if self.config.fsync != FsyncPolicy::Never {
            sync_dir(&self.dir)?;
        }
        let len = SEGMENT_MAGIC.len() as u64;
        self.disk_bytes += len;
        self.segments.push_back(SegmentInfo { first_seq: first, path, bytes: len, last_seq: None, may_hold: RecordClass::Metadata });
        self.writer = Some(Writer { file, len });
        Ok(())
    }

    fn close_writer(&mut self) -> Result<(), SpoolError> {
        if self.config.fsync != FsyncPolicy::Never {
            self.sync()?;
        }
        self.writer = None;
        self.dirty = false;
        Ok(())
    }

    /// fsyncs the open segment if records were written since the last fsync.
    fn sync(&mut self) -> Result<(), SpoolError> {
        if !self.dirty {
            return Ok(());
        }
        let Some(w) = self.writer.as_ref() else {
            self.dirty = false;
            return Ok(());
        };
        let path = self.segments.back().map(|s| s.path.clone()).unwrap_or_default();
        w.file.sync_data().map_err(io_err(&path))?;
        self.dirty = false;
        self.last_sync = Instant::now();
        self.stats.syncs += 1;
        Ok(())
    }

    fn sync_if_due(&mut self) {
        if let FsyncPolicy::Interval(every) = self.config.fsync {
            if self.dirty && self.last_sync.elapsed() >= every {
                if let Err(e) = self.sync() {
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

    /// Frees space until a record of `record_len` bytes (and a new segment's magic, when none
    /// is open) fits under the cap: metadata first, then anomalies, then alerts.
    fn make_room(&mut self, record_len: u64) -> Result<(), SpoolError> {
        loop {
            let magic = if self.writer.is_none() { SEGMENT_MAGIC.len() as u64 } else { 0 };
            if self.disk_bytes + record_len + magic <= self.config.max_bytes || self.segments.is_empty() {
                return Ok(());
            }
            if !self.compact_least_valuable() {
                self.drop_oldest_segment()?;
            }
        }
    }

    /// Rewrites the oldest segment that still holds records of the least valuable class
    /// present (metadata, then anomalies); false when only alerts are left, or a rewrite
    /// failed (the caller then deletes whole segments, which needs no free space).
    fn compact_least_valuable(&mut self) -> bool {
        for class in [RecordClass::Metadata, RecordClass::Anomaly] {
            for i in 0..self.segments.len() {
                if self.segments[i].may_hold > class {
                    continue;
                }
                match self.compact_segment(i, class) {
                    Ok(true) => return true,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "spool full: cannot rewrite a segment without its least valuable records; dropping whole segments");
                        return false;
                    }
                }
            }
        }
        false
    }

    /// Rewrites segment `i` without its unacknowledged records of `class` or below (records
    /// the reader already handed out stay) and without acknowledged ones; true when it
    /// removed any.
    fn compact_segment(&mut self, i: usize, class: RecordClass) -> Result<bool, SpoolError> {
        let path = self.segments[i].path.clone();
        let first_seq = self.segments[i].first_seq;
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        if !bytes.starts_with(&SEGMENT_MAGIC) {
            // Not ours to rewrite; only a whole-segment drop removes it.
            self.segments[i].may_hold = RecordClass::Alert;
            return Ok(false);
        }
        let handed_out = self.reader.examined_through.max(self.acked_through);
        let mut kept = Vec::with_capacity(bytes.len());
        kept.extend_from_slice(&SEGMENT_MAGIC);
        let mut dropped = [0u64; 3];
        let mut removed = 0u64;
        for step in RecordWalk::new(&bytes) {
            let (start, end) = match step {
                Step::Record { seq, start, end } => {
                    if seq <= self.acked_through {
                        removed += 1;
                        continue;
                    }
                    let record_class = RecordClass::of(&bytes[start + RECORD_HEADER_LEN..end]);
                    if seq > handed_out && record_class <= class {
                        dropped[record_class as usize] += 1;
                        removed += 1;
                        continue;
                    }
                    (start, end)
                }
                // Damage stays for the reader to skip and count.
                Step::Damaged { start, end } => (start, end),
            };
            kept.extend_from_slice(&bytes[start..end]);
        }
        if removed == 0 {
            self.segments[i].may_hold = class.above();
            return Ok(false);
        }
        if i + 1 == self.segments.len() && self.writer.is_some() {
            self.close_writer()?;
        }
        let sync = self.config.fsync != FsyncPolicy::Never;
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let written = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(&kept)?;
                if sync {
                    f.sync_data()?;
                }
                Ok(())
            })
            .and_then(|()| fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&tmp)(e));
        }
        if sync {
            sync_dir(&self.dir)?;
        }
        let freed = (bytes.len() - kept.len()) as u64;
        let seg = &mut self.segments[i];
        seg.bytes = kept.len() as u64;
        seg.may_hold = class.above();
        self.disk_bytes = self.disk_bytes.saturating_sub(freed);
        if self.reader.segment == Some(first_seq) {
            // The reader's offsets were into the old file: read this segment again from its
            // start; what it already returned is skipped by sequence number.
            self.enter_segment(i);
        }
        self.count_dropped(dropped);
        self.stats.compacted_segments += 1;
        let lost: u64 = dropped.iter().sum();
        if lost > 0 {
            tracing::error!(
                segment = %path.display(),
                metadata = dropped[0],
                anomalies = dropped[1],
                freed_bytes = freed,
                max_bytes = self.config.max_bytes,
                dropped_total = self.stats.dropped_records,
                "spool full: dropped unsent records of the least value"
            );
        }
        Ok(true)
    }

    fn count_dropped(&mut self, by_class: [u64; 3]) {
        self.stats.dropped_metadata += by_class[0];
        self.stats.dropped_anomalies += by_class[1];
        self.stats.dropped_alerts += by_class[2];
        self.stats.dropped_records += by_class.iter().sum::<u64>();
    }

    fn drop_oldest_segment(&mut self) -> Result<(), SpoolError> {
        if self.segments.len() == 1 && self.writer.is_some() {
            self.close_writer()?;
        }
        let Some(seg) = self.segments.front() else { return Ok(()) };
        let (path, bytes) = (seg.path.clone(), seg.bytes);
        let lost = match fs::read(&path) {
            Ok(content) => unacked_by_class(&content, self.acked_through),
            Err(e) => {
                // Unreadable: count its unacknowledged sequence numbers as alerts, the worst case.
                tracing::error!(segment = %path.display(), error = %e, "spool: cannot read a segment about to be dropped");
                let first = seg.first_seq.max(self.acked_through + 1);
                let range = match self.segment_last(0) {
                    Some(last) if last >= first => last - first + 1,
                    _ => 0,
                };
                [0, 0, range]
            }
        };
        self.remove_front_segment()?;
        self.count_dropped(lost);
        self.stats.dropped_segments += 1;
        tracing::error!(
            segment = %path.display(),
            bytes,
            metadata = lost[0],
            anomalies = lost[1],
            alerts = lost[2],
            dropped_total = self.stats.dropped_records,
            max_bytes = self.config.max_bytes,
            "spool full: dropped the oldest segment of unsent events"
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
            // The torn tail was cut off and the new record follows the last good one in the
            // same segment.
            let files = segment_files(&dir);
            assert_eq!(files.len(), 1, "cut at {cut}: appends continue in the recovered segment");
            let on_disk: Vec<Vec<u8>> = whole_records(&fs::read(&files[0]).unwrap()).into_iter().map(|r| r.1).collect();
            assert_eq!(on_disk, want, "cut at {cut}");
        }
    }

    /// Records appended in several runs (segments rotating), then a crash cuts the newest
    /// segment at any byte: after reopening, every whole record before the cut is read, then
    /// every record appended after the restart; nothing whole is skipped and sequence numbers
    /// keep increasing.
    #[test]
    fn crash_at_any_byte_keeps_every_whole_record() {
        let mut runner =
            proptest::test_runner::TestRunner::new(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() });
        let strategy = (proptest::collection::vec(0usize..300, 1..40), 0.0f64..1.0, 1usize..5);
        runner
            .run(&strategy, |(lens, cut_at, after)| {
                let dir = tempfile::tempdir().unwrap();
                let config = SpoolConfig { segment_bytes: 1024, max_bytes: 1 << 30, max_record_bytes: 400, fsync: FsyncPolicy::Never };
                let mut written: Vec<(u64, Vec<u8>)> = Vec::new();
                {
                    let spool = Spool::open(dir.path(), config.clone()).unwrap();
                    for (i, len) in lens.iter().enumerate() {
                        let body = format!("{i}:{}", "z".repeat(*len)).into_bytes();
                        written.push((spool.append(&body).unwrap(), body));
                    }
                }
                let newest = segment_files(dir.path()).pop().unwrap();
                let bytes = fs::read(&newest).unwrap();
                let cut = SEGMENT_MAGIC.len() + ((bytes.len() - SEGMENT_MAGIC.len()) as f64 * cut_at) as usize;
                fs::write(&newest, &bytes[..cut]).unwrap();
                let newest_first: u64 = newest.file_stem().unwrap().to_str().unwrap().parse().unwrap();
                let in_newest = whole_records(&bytes[..cut]).len();
                let survivors: Vec<(u64, Vec<u8>)> = written
                    .iter()
                    .filter(|(seq, _)| *seq < newest_first)
                    .cloned()
                    .chain(written.iter().filter(|(seq, _)| *seq >= newest_first).take(in_newest).cloned())
                    .collect();
                let spool = Spool::open(dir.path(), config).unwrap();
                let mut want = survivors.clone();
                for k in 0..after {
                    let body = format!("after:{k}").into_bytes();
                    let seq = spool.append(&body).unwrap();
                    prop_assert!(survivors.last().is_none_or(|r| seq > r.0), "sequence numbers keep increasing");
                    want.push((seq, body));
                }
                let got: Vec<(u64, Vec<u8>)> = read_all(&spool).into_iter().map(|r| (r.seq, r.payload)).collect();
                prop_assert_eq!(got, want);
                prop_assert_eq!(spool.stats().corrupt_records, 0);
                Ok(())
            })
            .unwrap();
    }

    /// Under the size cap the least valuable records go first: metadata (flow, dns, ...) before
    /// anomalies before alerts, whatever their age.
    #[test]
    fn size_cap_drops_metadata_before_anomalies_before_alerts() {
        let dir = tempfile::tempdir().unwrap();
        let config = SpoolConfig { max_bytes: 4 * 4096, ..small_config() };
        let spool = Spool::open(dir.path(), config.clone()).unwrap();
        let record = |kind: &str, i: usize| format!("{{\"event_type\":\"{kind}\",\"n\":{i},\"pad\":\"{}\"}}", "p".repeat(60)).into_bytes();
        let mut alerts = Vec::new();
        let mut anomalies = Vec::new();
        // The oldest records are the valuable ones; flows and dns follow in bulk.
        for i in 0..20 {
            alerts.push(spool.append(&record("alert", i)).unwrap());
            anomalies.push(spool.append(&record("anomaly", i)).unwrap());
        }
        for i in 0..2000 {
            spool.append(&record(if i % 2 == 0 { "flow" } else { "dns" }, i)).unwrap();
            assert!(spool.stats().disk_bytes <= config.max_bytes);
        }
        let kept: Vec<u64> = read_all(&spool).into_iter().map(|r| r.seq).collect();
        assert!(alerts.iter().all(|s| kept.contains(s)), "an alert was dropped while flows were kept");
        assert!(anomalies.iter().all(|s| kept.contains(s)), "an anomaly was dropped while flows were kept");
        assert!(spool.stats().dropped_records > 0);
    }

    /// The whole records of a segment file's bytes, in order (an independent decoder).
    fn whole_records(bytes: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        let mut pos = SEGMENT_MAGIC.len();
        while let Some(Decoded::Record { seq, len }) = bytes.get(pos..).map(decode_at) {
            out.push((seq, bytes[pos + RECORD_HEADER_LEN..pos + len].to_vec()));
            pos += len;
        }
        out
    }

    /// What `append` returned for is in the file at once: a kill -9 right after (no flush, no
    /// drop, no fsync) loses none of it.
    #[test]
    fn appended_records_are_in_the_file_when_append_returns() {
        let dir = tempfile::tempdir().unwrap();
        let config = SpoolConfig { fsync: FsyncPolicy::Interval(MAX_FSYNC_INTERVAL), ..small_config() };
        let spool = Spool::open(dir.path(), config).unwrap();
        let seqs: Vec<u64> = (0..5).map(|i| spool.append(&payload(i)).unwrap()).collect();
        let seg = segment_files(dir.path()).pop().unwrap();
        let on_disk = whole_records(&fs::read(&seg).unwrap());
        let want: Vec<(u64, Vec<u8>)> = seqs.iter().zip(0..).map(|(s, i)| (*s, payload(i))).collect();
        assert_eq!(on_disk, want);
        drop(spool);
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

    /// The cap's order, all the way: metadata goes first (a read batch in flight stays), then
    /// anomalies, and alerts only once nothing else is left; the counters say which went.
    #[test]
    fn size_cap_order_is_counted_by_class_and_spares_the_batch_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let config = SpoolConfig { max_bytes: 4 * 4096, ..small_config() };
        let spool = Spool::open(dir.path(), config.clone()).unwrap();
        let record = |kind: &str, i: usize| format!("{{\"event_type\":\"{kind}\",\"n\":{i},\"pad\":\"{}\"}}", "p".repeat(60)).into_bytes();
        let in_flight: Vec<u64> = (0..5).map(|i| spool.append(&record("flow", i)).unwrap()).collect();
        assert_eq!(spool.read(ReadLimit::records(5)).unwrap().len(), 5, "the relay holds these");
        let anomalies: Vec<u64> = (0..20).map(|i| spool.append(&record("anomaly", i)).unwrap()).collect();
        for i in 0..400 {
            spool.append(&record("dns", i)).unwrap();
        }
        let s = spool.stats();
        assert!(s.dropped_metadata > 0 && s.compacted_segments > 0, "{s:?}");
        assert_eq!((s.dropped_anomalies, s.dropped_alerts), (0, 0), "{s:?}");
        let on_disk: Vec<u64> =
            segment_files(dir.path()).iter().flat_map(|f| whole_records(&fs::read(f).unwrap())).map(|r| r.0).collect();
        assert!(in_flight.iter().all(|f| on_disk.contains(f)), "the batch in flight was rewritten away");
        // Alerts alone now outgrow the cap: anomalies go before the first alert does.
        let mut alerts = Vec::new();
        for i in 0..400 {
            alerts.push(spool.append(&record("alert", i)).unwrap());
            let s = spool.stats();
            if s.dropped_alerts > 0 {
                assert_eq!(s.dropped_anomalies, anomalies.len() as u64, "an alert went while anomalies were kept: {s:?}");
            }
            assert!(s.disk_bytes <= config.max_bytes);
        }
        let s = spool.stats();
        assert!(s.dropped_alerts > 0, "{s:?}");
        assert_eq!(s.dropped_records, s.dropped_metadata + s.dropped_anomalies + s.dropped_alerts);
        spool.rewind();
        let left: Vec<u64> = read_all(&spool).into_iter().map(|r| r.seq).collect();
        assert!(anomalies.iter().all(|a| !left.contains(a)));
        assert_eq!(left.last(), alerts.last(), "the newest alerts are kept");
    }

    /// The reader keeps its place when the cap rewrites the segment it is reading: every
    /// record it returns is returned once, in order, and no alert is missed.
    #[test]
    fn reading_while_the_cap_rewrites_returns_each_record_once() {
        let dir = tempfile::tempdir().unwrap();
        let config = SpoolConfig { max_bytes: 4 * 4096, ..small_config() };
        let spool = Spool::open(dir.path(), config).unwrap();
        let mut returned = Vec::new();
        let mut alerts = Vec::new();
        for i in 0..3000 {
            let kind = if i % 7 == 0 { "alert" } else { "flow" };
            let seq = spool.append(format!("{{\"event_type\":\"{kind}\",\"n\":{i}}}").as_bytes()).unwrap();
            if kind == "alert" {
                alerts.push(seq);
            }
            if i % 13 == 0 {
                let got = spool.read(ReadLimit::records(3)).unwrap();
                if let Some(last) = got.last() {
                    spool.ack(last.seq.saturating_sub(2)).unwrap();
                }
                returned.extend(got.into_iter().map(|r| r.seq));
            }
        }
        returned.extend(read_all(&spool).into_iter().map(|r| r.seq));
        assert!(returned.windows(2).all(|w| w[1] > w[0]), "a record was returned twice or out of order");
        let missed: Vec<&u64> = alerts.iter().filter(|a| !returned.contains(a)).collect();
        assert!(missed.is_empty(), "alerts never returned: {missed:?}");
        assert_eq!(spool.stats().dropped_alerts, 0);
    }

    #[test]
    fn append_many_is_one_write_and_one_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let config = SpoolConfig { fsync: FsyncPolicy::EveryRecord, segment_bytes: 1 << 20, ..small_config() };
        let spool = Spool::open(dir.path(), config).unwrap();
        let bodies: Vec<Vec<u8>> = (0..100).map(payload).collect();
        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        assert_eq!(spool.append_many(&refs).unwrap(), 100);
        assert_eq!(spool.stats().syncs, 1, "one fsync for the whole hand-over");
        let got: Vec<Vec<u8>> = read_all(&spool).into_iter().map(|r| r.payload).collect();
        assert_eq!(got, bodies);
        // One record over the limit: none of the hand-over is stored.
        let big = vec![b'x'; 1001];
        let err = spool.append_many(&[b"{}", &big]).unwrap_err();
        assert_eq!(err.stored, 0);
        assert!(matches!(err.error, SpoolError::RecordTooLarge { len: 1001, .. }));
        assert_eq!(spool.stats().appended_records, 100);
    }

    /// With the interval policy, records are fsynced within the interval even when nothing
    /// else is appended and nobody reads; dropping the last handle frees the spool at once.
    #[test]
    fn interval_fsync_happens_without_further_appends() {
        let dir = tempfile::tempdir().unwrap();
        let config = SpoolConfig { fsync: FsyncPolicy::Interval(Duration::from_millis(20)), ..small_config() };
        let spool = Spool::open(dir.path(), config.clone()).unwrap();
        spool.append(b"{}").unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while spool.stats().syncs == 0 {
            assert!(Instant::now() < deadline, "no fsync without further appends");
            std::thread::sleep(Duration::from_millis(5));
        }
        let clone = spool.clone();
        drop(spool);
        drop(clone);
        Spool::open(dir.path(), config).expect("the lock is released when the last handle is dropped");
    }

    #[test]
    fn a_newest_segment_cut_inside_its_magic_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), small_config()).unwrap();
        let first = spool.append(&payload(1)).unwrap();
        drop(spool);
        let name = segment_name(first + 10);
        fs::write(dir.path().join(&name), &SEGMENT_MAGIC[..3]).unwrap();
        fs::write(dir.path().join(format!("{name}.tmp")), b"half a rewrite").unwrap();
        let spool = Spool::open(dir.path(), small_config()).unwrap();
        let after = spool.append(&payload(2)).unwrap();
        assert!(after > first + 10);
        let got: Vec<Vec<u8>> = read_all(&spool).into_iter().map(|r| r.payload).collect();
        assert_eq!(got, [payload(1), payload(2)]);
        assert_eq!(segment_files(dir.path()).len(), 2);
        assert!(!dir.path().join(format!("{name}.tmp")).exists(), "an unfinished rewrite is removed");
    }

    #[test]
    fn fsync_policies_parse() {
        assert_eq!(FsyncPolicy::parse("always"), Ok(FsyncPolicy::EveryRecord));
        assert_eq!(FsyncPolicy::parse("never"), Ok(FsyncPolicy::Never));
        assert_eq!(FsyncPolicy::parse("250"), Ok(FsyncPolicy::Interval(Duration::from_millis(250))));
        assert_eq!(FsyncPolicy::parse("250ms"), Ok(FsyncPolicy::Interval(Duration::from_millis(250))));
        assert!(FsyncPolicy::parse("0").unwrap_err().contains("1 to 60000"));
        assert!(FsyncPolicy::parse("sometimes").unwrap_err().contains("always, never"));
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
