//! Classic pcap writing, and counting the packets/bytes of any capture file ward can read.
//!
//! Writing: the 24-byte global header then, per packet, a 16-byte record header and the frame
//! (microsecond timestamps, little-endian, link type Ethernet). Reading: [`count_capture`] walks
//! a pcap or pcapng file (gzip-compressed or not) with `pcap-parser` and sums packets and captured
//! bytes; [`count_path`] does the same over a directory of captures. The benchmark harness uses
//! these totals as the denominator of packets/s and Gbit/s, so they never depend on the sensor.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use pcap_parser::{PcapBlockOwned, PcapError};

/// Link type of every file the generator writes (DLT_EN10MB).
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Snap length written in the global header: jumbo frames fit, as in tcpdump's default.
pub const SNAPLEN: u32 = 262_144;
/// Size of the classic pcap global header.
pub const GLOBAL_HEADER_LEN: u64 = 24;
/// Size of a classic pcap record header.
pub const RECORD_HEADER_LEN: u64 = 16;
/// Read buffer of the capture counter; pcap-parser grows nothing beyond it, so it must exceed
/// the largest block we accept (a 256 KiB snap length plus block headers).
const READ_BUFFER: usize = 1 << 20;
/// File name endings treated as captures when a directory is counted.
const CAPTURE_SUFFIXES: &[&str] = &[".pcap", ".pcapng", ".cap", ".trace", ".pcap.gz", ".pcapng.gz", ".trace.gz", ".cap.gz"];

/// Errors of reading a capture for counting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The file could not be opened or read.
    #[error("cannot read capture {path}: {source}; check the path and permissions")]
    Io { path: PathBuf, source: io::Error },
    /// The file is not a pcap/pcapng file, or is corrupt before its first packet.
    #[error("{path} is not a readable pcap or pcapng file ({reason}); pass a capture file or a directory of them")]
    Format { path: PathBuf, reason: String },
    /// A directory held no capture file.
    #[error("no capture files (*.pcap, *.pcapng, *.trace, *.gz) found in {path}")]
    EmptyDirectory { path: PathBuf },
}

/// Writes the classic pcap global header (microsecond timestamps, Ethernet).
pub fn write_global_header<W: Write>(w: &mut W) -> io::Result<()> {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    // thiszone (8..12) and sigfigs (12..16) stay zero.
    h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
    h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    w.write_all(&h)
}

/// Writes one record: `data` is the captured part, `orig_len` the length on the wire
/// (larger than `data.len()` for a snap-truncated packet).
#[inline]
pub fn write_record<W: Write>(w: &mut W, ts_us: u64, data: &[u8], orig_len: u32) -> io::Result<()> {
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
    h[4..8].copy_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
    h[8..12].copy_from_slice(&(data.len() as u32).to_le_bytes());
    h[12..16].copy_from_slice(&orig_len.to_le_bytes());
    w.write_all(&h)?;
    w.write_all(data)
}

/// Packet and byte totals of one or more captures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CaptureTotals {
    /// Capture files read.
    pub files: u64,
    /// Packet records.
    pub packets: u64,
    /// Sum of captured lengths (what the sensor actually has to process).
    pub captured_bytes: u64,
    /// Sum of original (wire) lengths.
    pub wire_bytes: u64,
    /// Files whose reading stopped early at a corrupt block (their packets before it count).
    pub truncated_files: u64,
}

impl CaptureTotals {
    fn add(&mut self, o: &CaptureTotals) {
        self.files += o.files;
        self.packets += o.packets;
        self.captured_bytes += o.captured_bytes;
        self.wire_bytes += o.wire_bytes;
        self.truncated_files += o.truncated_files;
    }
}

/// True for names the directory walk treats as capture files.
pub fn is_capture_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    CAPTURE_SUFFIXES.iter().any(|s| lower.ends_with(s))
}

/// Counts a capture file, or every capture file under a directory (recursively, sorted).
pub fn count_path(path: &Path) -> Result<CaptureTotals, CaptureError> {
    let meta = std::fs::metadata(path).map_err(|source| CaptureError::Io { path: path.to_owned(), source })?;
    if !meta.is_dir() {
        return count_capture(path);
    }
    let files = capture_files(path)?;
    if files.is_empty() {
        return Err(CaptureError::EmptyDirectory { path: path.to_owned() });
    }
    let mut total = CaptureTotals::default();
    for f in files {
        match count_capture(&f) {
            Ok(t) => total.add(&t),
            // A directory corpus (zeek's traces) holds deliberately broken files: a file that is
            // not a capture at all counts as zero packets, as the sensor would skip it too.
            Err(CaptureError::Format { .. }) => total.truncated_files += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

/// Every capture file under `dir`, sorted by path.
pub fn capture_files(dir: &Path) -> Result<Vec<PathBuf>, CaptureError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|source| CaptureError::Io { path: d.clone(), source })?;
        for entry in rd {
            let entry = entry.map_err(|source| CaptureError::Io { path: d.clone(), source })?;
            let p = entry.path();
            let ft = entry.file_type().map_err(|source| CaptureError::Io { path: p.clone(), source })?;
            if ft.is_dir() {
                stack.push(p);
            } else if is_capture_name(&entry.file_name().to_string_lossy()) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Counts packets and bytes of one pcap/pcapng file, gunzipping `*.gz` on the fly.
pub fn count_capture(path: &Path) -> Result<CaptureTotals, CaptureError> {
    let io_err = |source| CaptureError::Io { path: path.to_owned(), source };
    let file = File::open(path).map_err(io_err)?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz")) {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 16, file)))
    } else {
        Box::new(file)
    };
    count_reader(reader).map_err(|reason| CaptureError::Format { path: path.to_owned(), reason })
}

/// Counts packets from any reader of pcap/pcapng bytes. An error before the first block is a
/// format error; a corrupt or cut block later ends the count and marks the file truncated.
pub fn count_reader<R: Read + 'static>(reader: R) -> Result<CaptureTotals, String> {
    let mut rd = pcap_parser::create_reader(READ_BUFFER, reader).map_err(|e| e.to_string())?;
    let mut t = CaptureTotals { files: 1, ..Default::default() };
    let mut blocks = 0u64;
    loop {
        match rd.next() {
            Ok((offset, block)) => {
                blocks += 1;
                match block {
                    PcapBlockOwned::Legacy(b) => {
                        t.packets += 1;
                        t.captured_bytes += u64::from(b.caplen);
                        t.wire_bytes += u64::from(b.origlen);
                    }
                    PcapBlockOwned::NG(pcap_parser::Block::EnhancedPacket(b)) => {
                        t.packets += 1;
                        t.captured_bytes += u64::from(b.caplen);
                        t.wire_bytes += u64::from(b.origlen);
                    }
                    PcapBlockOwned::NG(pcap_parser::Block::SimplePacket(b)) => {
                        t.packets += 1;
                        t.captured_bytes += b.data.len() as u64;
                        t.wire_bytes += u64::from(b.origlen);
                    }
                    _ => {}
                }
                rd.consume(offset);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                // The file ends inside a block: count what came before it.
                if rd.reader_exhausted() {
                    if !rd.data().is_empty() {
                        t.truncated_files = 1;
                    }
                    break;
                }
                let before = rd.data().len();
                if rd.refill().is_err() || (rd.data().len() == before && !rd.reader_exhausted()) {
                    // No progress: a block larger than READ_BUFFER, or a read error.
                    t.truncated_files = 1;
                    break;
                }
            }
            Err(e) => {
                if blocks == 0 {
                    return Err(e.to_string());
                }
                t.truncated_files = 1;
                break;
            }
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(rel: &str) -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/")).join(rel)
    }

    #[test]
    fn written_records_count_back() {
        let mut buf = Vec::new();
        write_global_header(&mut buf).unwrap();
        write_record(&mut buf, 1_500_000, &[1u8; 60], 60).unwrap();
        write_record(&mut buf, 1_600_000, &[2u8; 100], 1514).unwrap();
        let t = count_reader(std::io::Cursor::new(buf)).unwrap();
        assert_eq!(t.packets, 2);
        assert_eq!(t.captured_bytes, 160);
        assert_eq!(t.wire_bytes, 1574);
        assert_eq!(t.truncated_files, 0);
    }

    #[test]
    fn cut_file_counts_whole_records_and_is_marked_truncated() {
        let mut buf = Vec::new();
        write_global_header(&mut buf).unwrap();
        write_record(&mut buf, 0, &[1u8; 60], 60).unwrap();
        write_record(&mut buf, 0, &[1u8; 60], 60).unwrap();
        buf.truncate(buf.len() - 10);
        let t = count_reader(std::io::Cursor::new(buf)).unwrap();
        assert_eq!(t.packets, 1);
        assert_eq!(t.truncated_files, 1);
    }

    #[test]
    fn garbage_is_a_format_error() {
        let err = count_reader(std::io::Cursor::new(b"this is not a capture at all, no".to_vec()));
        assert!(err.is_err());
    }

    #[test]
    fn zeek_corpus_pcapng_and_gz_are_counted() {
        let dir = shared("pcaps/zeek");
        if !dir.is_dir() {
            eprintln!("skipping: {} not present", dir.display());
            return;
        }
        let files = capture_files(&dir).unwrap();
        assert!(files.len() > 700, "expected the zeek corpus, found {} files", files.len());
        let gz = files.iter().find(|p| p.to_string_lossy().ends_with(".pcap.gz")).expect("a .pcap.gz trace");
        let tgz = count_capture(gz).unwrap();
        assert!(tgz.packets > 0, "{}", gz.display());
        let ng = files.iter().find(|p| p.to_string_lossy().ends_with(".pcapng")).expect("a .pcapng trace");
        let tng = count_capture(ng).unwrap();
        assert!(tng.packets > 0, "{}", ng.display());
        let all = count_path(&dir).unwrap();
        assert_eq!(all.files + all.truncated_files - all.truncated_files.min(all.files), all.files);
        assert!(all.packets > tgz.packets + tng.packets);
        assert!(all.captured_bytes >= all.packets * 14);
    }
}
