//! What a sensor relays to its hub, chosen from the EVE stream as it is written.
//!
//! [`HubWriter`] sits where the EVE file would (it is an [`std::io::Write`] the pipeline's
//! [`crate::eve_out::EveSink`] writes whole NDJSON lines into), optionally passes every line on
//! to the local EVE file as well, and appends to the on-disk [`Spool`]:
//!
//! * the record types named in [`HubSelection::forward`] as they are (default: `alert` and
//!   `anomaly`; scan detections are alerts with the scan detector's gid), and always the
//!   sensor's `engine` records ([`ALWAYS_FORWARDED`]);
//! * **contact records**: the finished `flow` records folded into one record per hour per
//!   (remote address, local address, server port, protocol), with first and last seen, flows,
//!   packets and bytes — like NetFlow, small enough to keep for the whole retention window, so
//!   the hub can look back when an indicator appears later (retro-hunt).
//!
//! Which side is local is decided by [`HomeNet`] (Suricata's `HOME_NET`, RFC 1918 and IPv6 ULA
//! by default). A flow with both ends local, or none, makes no contact record.
//!
//! Contact records are held in memory only until the hour they belong to is over (or the run
//! ends, [`HubWriter::finish`]); at most [`HubSelection::max_contacts`] are held, beyond which the
//! oldest hour is flushed early (two records for one hour then reach the hub, which sums them).
//! A crash loses the contact records still held (their flows are in the EVE file when `flow`
//! records are written).
//!
//! # The spool first, then the EVE file
//!
//! Each hand-over from the EVE sink (one worker's buffer of whole lines) is processed in this
//! order: its relayed records (and any contact records it completed) go to the spool in one
//! [`Spool::append_many`] (one write, and with `--spool-fsync always` one fsync), and only then
//! are its lines written to the EVE file, which is flushed at once. So after a crash of any
//! kind:
//!
//! * every relayed line in the EVE file is in the spool (with `always`, durably), and reaches
//!   the hub exactly once;
//! * the spool may be ahead of the EVE file by the records of one hand-over (at most one
//!   worker's batch of 512 packets or 256 KiB of EVE lines), when the crash fell between the
//!   two writes;
//! * lines still in a worker's buffer (not yet handed over) are in neither.
//!
//! The EVE `stats` record passes through here on its way to the EVE file; it gets a `spool`
//! section (ward's own, outside Suricata's schema, only on sensors relaying to a hub) with the
//! spool's counters, dropped records by reason and class included ([`spool_stats_json`]).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};
use std::net::IpAddr;

use serde_json::json;

use crate::spool::{Spool, SpoolStats};

/// Record types relayed whatever the selection: `engine` records are the sensor's own health
/// (a refused rule reload), which the hub shows in its sensor list.
pub const ALWAYS_FORWARDED: &[&str] = &["engine"];

/// Which records go to the hub.
#[derive(Debug, Clone)]
pub struct HubSelection {
    /// EVE `event_type`s relayed as they are.
    pub forward: HashSet<String>,
    /// Fold `flow` records into hourly contact records.
    pub contacts: bool,
    /// Upper bound of contact records held in memory.
    pub max_contacts: usize,
}

impl Default for HubSelection {
    fn default() -> Self {
        HubSelection {
            forward: ["alert", "anomaly"].iter().map(|s| s.to_string()).collect(),
            contacts: true,
            max_contacts: 200_000,
        }
    }
}

impl HubSelection {
    /// Parses a comma-separated list such as `alert,anomaly,dns,contact`; `contact` turns contact
    /// records on, every other word is an EVE event type.
    pub fn parse(list: &str) -> Result<HubSelection, String> {
        const KNOWN: &[&str] = &["alert", "anomaly", "flow", "dns", "http", "tls", "stats", "contact"];
        let mut sel = HubSelection { forward: HashSet::new(), contacts: false, ..HubSelection::default() };
        for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            if !KNOWN.contains(&word) {
                return Err(format!("unknown record type {word:?} to relay; choose from {}", KNOWN.join(", ")));
            }
            if word == "contact" {
                sel.contacts = true;
            } else {
                sel.forward.insert(word.to_string());
            }
        }
        Ok(sel)
    }
}

/// The networks that are "ours" (Suricata's HOME_NET).
#[derive(Debug, Clone)]
pub struct HomeNet {
    nets: Vec<(IpAddr, u8)>,
}

impl Default for HomeNet {
    fn default() -> Self {
        HomeNet::parse("10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7").expect("built-in networks parse")
    }
}

impl HomeNet {
    /// Parses `10.0.0.0/8,192.168.1.0/24,2001:db8::/32` (brackets as in Suricata are accepted).
    pub fn parse(list: &str) -> Result<HomeNet, String> {
        let mut nets = Vec::new();
        for item in list.trim_matches(|c| c == '[' || c == ']').split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, len) = match item.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (item, None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| format!("{item:?} is not an address or CIDR network"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let len = match len {
                Some(l) => l.parse::<u8>().ok().filter(|&l| l <= max).ok_or_else(|| format!("{item:?}: prefix length must be 0..={max}"))?,
                None => max,
            };
            nets.push((addr, len));
        }
        if nets.is_empty() {
            return Err("the home network list is empty".into());
        }
        Ok(HomeNet { nets })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|&(net, len)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), len),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), len),
            _ => false,
        })
    }
}

fn prefix_eq(a: &[u8], b: &[u8], len: u8) -> bool {
    let full = usize::from(len / 8);
    let rest = len % 8;
    if a[..full] != b[..full] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

/// The one field read from every EVE line.
#[derive(serde::Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    event_type: Cow<'a, str>,
}

/// The fields of a `flow` record that make a contact record.
#[derive(serde::Deserialize)]
struct FlowLine<'a> {
    #[serde(borrow)]
    src_ip: Cow<'a, str>,
    #[serde(borrow)]
    dest_ip: Cow<'a, str>,
    #[serde(default)]
    dest_port: u64,
    #[serde(borrow, default)]
    proto: Cow<'a, str>,
    #[serde(borrow)]
    flow: FlowCounts<'a>,
}

#[derive(serde::Deserialize)]
struct FlowCounts<'a> {
    #[serde(default)]
    pkts_toserver: u64,
    #[serde(default)]
    pkts_toclient: u64,
    #[serde(default)]
    bytes_toserver: u64,
    #[serde(default)]
    bytes_toclient: u64,
    #[serde(borrow)]
    start: Cow<'a, str>,
    #[serde(borrow, default)]
    end: Cow<'a, str>,
}

/// Key of one contact record: the hour, then who talked to whom on which port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ContactKey {
    hour: String,
    remote: IpAddr,
    local: IpAddr,
    port: u16,
    proto: String,
    inbound: bool,
}

#[derive(Debug, Clone, Default)]
struct ContactAgg {
    first_seen: String,
    last_seen: String,
    flows: u64,
    pkts: u64,
    bytes: u64,
}

/// Counters of a [`HubWriter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubWriterStats {
    /// Records appended to the spool as they are.
    pub forwarded: u64,
    /// Contact records appended to the spool.
    pub contacts: u64,
    /// Lines that were not JSON objects (never expected from our own writer).
    pub unparsable: u64,
    /// Records that could not be spooled (larger than the spool's record limit, disk full,
    /// permissions); they are lost, counted and logged.
    pub spool_errors: u64,
}

/// The `spool` section of the EVE `stats` record: what the spool holds and what it lost, by
/// reason (`size_cap` by class, `damaged` on disk, `not_spooled`).
pub fn spool_stats_json(spool: &SpoolStats, writer: &HubWriterStats) -> serde_json::Value {
    json!({
        "appended": spool.appended_records,
        "pending": spool.pending_records,
        "disk_bytes": spool.disk_bytes,
        "max_bytes": spool.max_bytes,
        "dropped": {
            "total": spool.dropped_records + spool.torn_records + spool.corrupt_records + writer.spool_errors,
            "size_cap": {
                "metadata": spool.dropped_metadata,
                "anomaly": spool.dropped_anomalies,
                "alert": spool.dropped_alerts,
            },
            "damaged": spool.torn_records + spool.corrupt_records,
            "not_spooled": writer.spool_errors,
        },
    })
}

/// The line of the sensor's summary about records the spool lost, with the reasons.
pub fn spool_dropped_text(spool: &SpoolStats, writer: &HubWriterStats) -> String {
    let damaged = spool.torn_records + spool.corrupt_records;
    let total = spool.dropped_records + damaged + writer.spool_errors;
    if total == 0 {
        return "hub: spool dropped no records".into();
    }
    format!(
        "hub: spool dropped {total} unsent records (size cap of {} MiB: {} flow/dns/http/tls/stats/contact, {} anomalies, {} alerts; \
         damaged on disk: {damaged}; could not be spooled: {})",
        spool.max_bytes / (1024 * 1024),
        spool.dropped_metadata,
        spool.dropped_anomalies,
        spool.dropped_alerts,
        writer.spool_errors
    )
}

/// The EVE writer that feeds the hub's spool (see the module docs).
pub struct HubWriter {
    spool: Spool,
    selection: HubSelection,
    home: HomeNet,
    tee: Option<Box<dyn Write + Send>>,
    partial: Vec<u8>,
    contacts: BTreeMap<ContactKey, ContactAgg>,
    /// Contact records completed by the hand-over in progress, spooled with its records.
    finished_contacts: Vec<Vec<u8>>,
    stats: HubWriterStats,
}

impl HubWriter {
    /// `tee`, when given, receives every line (the local EVE file), after the spool got the
    /// relayed ones; only the `stats` record changes, gaining its `spool` section.
    pub fn new(spool: Spool, selection: HubSelection, home: HomeNet, tee: Option<Box<dyn Write + Send>>) -> HubWriter {
        HubWriter {
            spool,
            selection,
            home,
            tee,
            partial: Vec::new(),
            contacts: BTreeMap::new(),
            finished_contacts: Vec::new(),
            stats: HubWriterStats::default(),
        }
    }

    pub fn stats(&self) -> HubWriterStats {
        self.stats
    }

    /// The spool's counters.
    pub fn spool_stats(&self) -> SpoolStats {
        self.spool.stats()
    }

    /// Appends every contact record still held to the spool, writes a last line without its
    /// newline to the EVE file, and flushes the spool and the EVE file.
    pub fn finish(&mut self) -> io::Result<()> {
        self.flush_contacts_before(None);
        let contacts = std::mem::take(&mut self.finished_contacts);
        self.spool_records(&[], &contacts);
        if let Some(tee) = self.tee.as_mut() {
            tee.write_all(&std::mem::take(&mut self.partial))?;
            tee.flush()?;
        }
        self.spool.flush().map_err(|e| io::Error::other(e.to_string()))
    }

    /// Reads one line of a hand-over: returns it when it is relayed as it is, folds a flow,
    /// and gives a `stats` record its `spool` section (`rewritten`).
    fn line<'a>(&mut self, line: &'a [u8], rewritten: &mut Option<Vec<u8>>) -> Option<&'a [u8]> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        // Only the type is read from every line; the rest of a record is skipped, not built.
        let Ok(head) = serde_json::from_slice::<Head<'_>>(line) else {
            self.stats.unparsable += 1;
            return None;
        };
        let kind = head.event_type.as_ref();
        if kind == "stats" {
            *rewritten = self.with_spool_section(line);
        }
        if kind == "flow" && self.selection.contacts {
            if let Ok(flow) = serde_json::from_slice::<FlowLine<'_>>(line) {
                self.fold_flow(&flow);
            }
        }
        let forward = self.selection.forward.contains(kind) || ALWAYS_FORWARDED.contains(&kind);
        if forward && line.len() > self.spool.max_record_bytes() {
            self.stats.spool_errors += 1;
            tracing::warn!(event_type = kind, bytes = line.len(), max = self.spool.max_record_bytes(), "record too large to spool for the hub; not relayed");
            return None;
        }
        forward.then_some(line)
    }

    /// The stats line with the spool's counters added under `stats.spool`.
    fn with_spool_section(&self, line: &[u8]) -> Option<Vec<u8>> {
        let mut record: serde_json::Value = serde_json::from_slice(line).ok()?;
        let stats = record.get_mut("stats")?.as_object_mut()?;
        stats.insert("spool".into(), spool_stats_json(&self.spool.stats(), &self.stats));
        serde_json::to_vec(&record).ok()
    }

    /// Appends one hand-over's relayed lines, then its finished contact records, to the spool
    /// in one call, and counts what was stored.
    fn spool_records(&mut self, lines: &[&[u8]], contacts: &[Vec<u8>]) {
        if lines.is_empty() && contacts.is_empty() {
            return;
        }
        let mut all: Vec<&[u8]> = Vec::with_capacity(lines.len() + contacts.len());
        all.extend_from_slice(lines);
        all.extend(contacts.iter().map(Vec::as_slice));
        let stored = match self.spool.append_many(&all) {
            Ok(n) => n,
            Err(partial) => {
                let lost = all.len() - partial.stored;
                self.stats.spool_errors += lost as u64;
                tracing::error!(records = lost, error = %partial.error, "cannot spool records for the hub; they are lost");
                partial.stored
            }
        };
        let forwarded = stored.min(lines.len());
        self.stats.forwarded += forwarded as u64;
        self.stats.contacts += (stored - forwarded) as u64;
    }

    fn fold_flow(&mut self, rec: &FlowLine<'_>) {
        let (Ok(src), Ok(dst)) = (rec.src_ip.parse::<IpAddr>(), rec.dest_ip.parse::<IpAddr>()) else { return };
        let (src_local, dst_local) = (self.home.contains(src), self.home.contains(dst));
        let (remote, local, inbound) = match (src_local, dst_local) {
            (false, true) => (src, dst, true),
            (true, false) => (dst, src, false),
            _ => return,
        };
        let port = u16::try_from(rec.dest_port).unwrap_or(0);
        let proto = rec.proto.to_string();
        let f = &rec.flow;
        let start = f.start.to_string();
        let end = f.end.to_string();
        if start.len() < 13 || !start.is_char_boundary(13) {
            return;
        }
        let hour = start[..13].to_string();
        let key = ContactKey { hour: hour.clone(), remote, local, port, proto, inbound };
        let agg = self.contacts.entry(key).or_default();
        if agg.flows == 0 || start < agg.first_seen {
            agg.first_seen = start.clone();
        }
        let end = if end.is_empty() { start } else { end };
        if end > agg.last_seen {
            agg.last_seen = end;
        }
        agg.flows += 1;
        agg.pkts += f.pkts_toserver + f.pkts_toclient;
        agg.bytes += f.bytes_toserver + f.bytes_toclient;
        // Hours end in order in a capture: once a flow of a later hour finishes, records of
        // hours two or more before it are complete.
        if let Some(oldest) = self.contacts.keys().next().map(|k| k.hour.clone()) {
            if oldest < hour && self.contacts.len() > 1 {
                let keep_from = previous_hour_prefix(&hour);
                self.flush_contacts_before(Some(&keep_from));
            }
        }
        while self.contacts.len() > self.selection.max_contacts {
            let oldest = self.contacts.keys().next().map(|k| k.hour.clone()).unwrap_or_default();
            let mut next = oldest.into_bytes();
            next.push(b'~'); // sorts after every key of that hour
            self.flush_contacts_before(Some(&String::from_utf8_lossy(&next)));
        }
    }

    /// Appends and forgets every contact record of an hour before `hour` (all when `None`).
    fn flush_contacts_before(&mut self, hour: Option<&str>) {
        let keys: Vec<ContactKey> = self.contacts.keys().take_while(|k| hour.is_none_or(|h| k.hour.as_str() < h)).cloned().collect();
        for key in keys {
            let Some(agg) = self.contacts.remove(&key) else { continue };
            let (src, dst) = if key.inbound { (key.remote, key.local) } else { (key.local, key.remote) };
            let record = json!({
                "event_type": "contact",
                "timestamp": agg.first_seen,
                "src_ip": src.to_string(),
                "dest_ip": dst.to_string(),
                "dest_port": key.port,
                "proto": key.proto,
                "contact": {
                    "remote_ip": key.remote.to_string(),
                    "local_ip": key.local.to_string(),
                    "port": key.port,
                    "proto": key.proto,
                    "direction": if key.inbound { "inbound" } else { "outbound" },
                    "first_seen": agg.first_seen,
                    "last_seen": agg.last_seen,
                    "flows": agg.flows,
                    "pkts": agg.pkts,
                    "bytes": agg.bytes,
                }
            });
            // Serialising a Value we built cannot fail.
            if let Ok(line) = serde_json::to_vec(&record) {
                self.finished_contacts.push(line);
            }
        }
    }
}

/// `2026-11-03T13` → `2026-11-03T12` (string order is time order for one offset); the hour
/// before midnight keeps the day and becomes `T-1`, which still sorts below `T00`.
fn previous_hour_prefix(hour: &str) -> String {
    let (day, h) = hour.split_at(hour.len().saturating_sub(2));
    match h.parse::<u8>() {
        Ok(n) if n > 0 => format!("{day}{:02}", n - 1),
        _ => format!("{}-1", &day),
    }
}

/// One hand-over from the EVE sink: the spool first, then the EVE file (see the module note).
impl Write for HubWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut pending = std::mem::take(&mut self.partial);
        pending.extend_from_slice(buf);
        let complete = pending.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut relayed: Vec<Cow<'_, [u8]>> = Vec::new();
        // Stats lines with their spool section: each one's range in `pending` and new bytes.
        let mut rewrites: Vec<(std::ops::Range<usize>, Vec<u8>)> = Vec::new();
        let mut start = 0;
        while start < complete {
            let end = pending[start..complete].iter().position(|&b| b == b'\n').map_or(complete, |nl| start + nl);
            let mut rewritten = None;
            let line = self.line(&pending[start..end], &mut rewritten);
            match (line, rewritten) {
                (Some(_), Some(new)) => {
                    relayed.push(Cow::Owned(new.clone()));
                    rewrites.push((start..end, new));
                }
                (None, Some(new)) => rewrites.push((start..end, new)),
                (Some(line), None) => relayed.push(Cow::Borrowed(line)),
                (None, None) => {}
            }
            start = end + 1;
        }
        let contacts = std::mem::take(&mut self.finished_contacts);
        let lines: Vec<&[u8]> = relayed.iter().map(|l| l.as_ref()).collect();
        self.spool_records(&lines, &contacts);
        if let Some(tee) = self.tee.as_mut() {
            let mut from = 0;
            for (range, new) in &rewrites {
                tee.write_all(&pending[from..range.start])?;
                tee.write_all(new)?;
                from = range.end;
            }
            tee.write_all(&pending[from..complete])?;
            tee.flush()?;
        }
        pending.drain(..complete);
        self.partial = pending;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(tee) = self.tee.as_mut() {
            tee.flush()?;
        }
        Ok(())
    }
}

/// A [`HubWriter`] behind a lock, so the pipeline's sink can own a writer while the caller
/// keeps a handle to call [`HubWriter::finish`] and read its stats once the run is over.
#[derive(Clone)]
pub struct SharedHubWriter(pub std::sync::Arc<std::sync::Mutex<HubWriter>>);

impl SharedHubWriter {
    pub fn new(writer: HubWriter) -> SharedHubWriter {
        SharedHubWriter(std::sync::Arc::new(std::sync::Mutex::new(writer)))
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, HubWriter> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Write for SharedHubWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.lock().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.lock().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::{ReadLimit, SpoolConfig};
    use serde_json::Value;

    fn flow(src: &str, dst: &str, port: u16, start: &str, end: &str) -> String {
        json!({"event_type":"flow","src_ip":src,"dest_ip":dst,"src_port":40000,"dest_port":port,"proto":"TCP",
               "flow":{"pkts_toserver":3,"pkts_toclient":2,"bytes_toserver":300,"bytes_toclient":200,"start":start,"end":end}})
        .to_string()
    }

    fn spooled(spool: &Spool) -> Vec<Value> {
        spool.read(ReadLimit::records(10_000)).unwrap().iter().map(|r| serde_json::from_slice(&r.payload).unwrap()).collect()
    }

    #[test]
    fn alerts_are_forwarded_and_flows_fold_into_hourly_contacts() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
        let mut w = HubWriter::new(spool.clone(), HubSelection::default(), HomeNet::default(), None);
        let mut input = String::new();
        input.push_str(&flow("203.0.113.66", "10.1.0.80", 443, "2026-11-03T13:05:00.000000+0000", "2026-11-03T13:05:01.000000+0000"));
        input.push('\n');
        input.push_str(&flow("203.0.113.66", "10.1.0.80", 443, "2026-11-03T13:45:00.000000+0000", "2026-11-03T13:45:02.000000+0000"));
        input.push('\n');
        input.push_str(&flow("10.1.0.20", "10.1.0.53", 53, "2026-11-03T13:45:00.000000+0000", "2026-11-03T13:45:00.100000+0000"));
        input.push('\n');
        input.push_str(r#"{"event_type":"alert","src_ip":"203.0.113.66","alert":{"signature_id":1}}"#);
        input.push('\n');
        input.push_str(r#"{"event_type":"dns","src_ip":"10.1.0.20"}"#);
        // Split mid-line: the writer must join the halves.
        let (a, b) = input.as_bytes().split_at(input.len() / 2);
        w.write_all(a).unwrap();
        w.write_all(b).unwrap();
        w.write_all(b"\n").unwrap();
        w.finish().unwrap();
        let got = spooled(&spool);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0]["event_type"], "alert");
        let c = &got[1]["contact"];
        assert_eq!(got[1]["event_type"], "contact");
        assert_eq!(c["remote_ip"], "203.0.113.66");
        assert_eq!(c["local_ip"], "10.1.0.80");
        assert_eq!(c["direction"], "inbound");
        assert_eq!(c["flows"], 2);
        assert_eq!(c["pkts"], 10);
        assert_eq!(c["bytes"], 1000);
        assert_eq!(c["first_seen"], "2026-11-03T13:05:00.000000+0000");
        assert_eq!(c["last_seen"], "2026-11-03T13:45:02.000000+0000");
        assert_eq!(w.stats(), HubWriterStats { forwarded: 1, contacts: 1, unparsable: 0, spool_errors: 0 });
    }

    #[test]
    fn finished_hours_are_flushed_while_running() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
        let mut w = HubWriter::new(spool.clone(), HubSelection::default(), HomeNet::default(), None);
        for h in 10..14 {
            let t = format!("2026-11-03T{h}:00:00.000000+0000");
            writeln!(w, "{}", flow("10.9.9.9", "198.51.100.7", 443, &t, &t)).unwrap();
        }
        // Hours 10 and 11 are complete once a flow of hour 13 is seen; 12 and 13 are still open.
        let mut got = spooled(&spool);
        assert_eq!(got.len(), 2);
        w.finish().unwrap();
        // The reader hands each record once: the rest follows.
        got.extend(spooled(&spool));
        assert_eq!(got.len(), 4);
        assert!(got.iter().all(|r| r["contact"]["direction"] == "outbound"));
    }

    /// An EVE file that, at each write, notes how many records the spool already holds.
    struct WatchingTee {
        spool: Spool,
        seen: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
    }

    impl Write for WatchingTee {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.seen.lock().unwrap().push(self.spool.stats().appended_records);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The spool gets a hand-over's records before the EVE file gets its lines, so after a
    /// crash every relayed line in the EVE file is also in the spool.
    #[test]
    fn records_are_spooled_before_their_eve_lines_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let tee = WatchingTee { spool: spool.clone(), seen: seen.clone() };
        let mut w = HubWriter::new(spool.clone(), HubSelection::default(), HomeNet::default(), Some(Box::new(tee)));
        let alert = r#"{"event_type":"alert","src_ip":"203.0.113.66","alert":{"signature_id":1}}"#;
        w.write_all(format!("{alert}\n{alert}\n{alert}\n").as_bytes()).unwrap();
        w.write_all(format!("{alert}\n").as_bytes()).unwrap();
        assert_eq!(*seen.lock().unwrap(), [3, 4], "the EVE file was written before the spool held its records");
    }

    /// An EVE file in memory.
    #[derive(Clone, Default)]
    struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for SharedBuf {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_stats_record_carries_the_spools_counters() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
        let eve = SharedBuf::default();
        let selection = HubSelection::parse("alert,stats").unwrap();
        let mut w = HubWriter::new(spool.clone(), selection, HomeNet::default(), Some(Box::new(eve.clone())));
        let alert = r#"{"event_type":"alert","src_ip":"203.0.113.66","alert":{"signature_id":1}}"#;
        let stats = r#"{"event_type":"stats","stats":{"uptime":7}}"#;
        w.write_all(format!("{alert}\n{stats}\n{alert}\n").as_bytes()).unwrap();
        let text = String::from_utf8(eve.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0]["event_type"], "alert");
        assert_eq!(lines[1]["stats"]["uptime"], 7);
        let section = &lines[1]["stats"]["spool"];
        assert_eq!(section["dropped"]["total"], 0, "{section}");
        assert_eq!(section["dropped"]["size_cap"]["alert"], 0, "{section}");
        assert!(section["max_bytes"].as_u64().is_some_and(|m| m > 0), "{section}");
        // Relayed, it carries the section too.
        let got = spooled(&spool);
        assert_eq!(got.len(), 3);
        assert_eq!(got[1]["stats"]["spool"], *section);
    }

    #[test]
    fn the_drop_summary_names_reasons_and_kinds() {
        let mut spool = SpoolStats { max_bytes: 16 << 20, ..SpoolStats::default() };
        let writer = HubWriterStats::default();
        assert_eq!(spool_dropped_text(&spool, &writer), "hub: spool dropped no records");
        spool.dropped_metadata = 40;
        spool.dropped_anomalies = 2;
        spool.dropped_records = 42;
        spool.torn_records = 1;
        let text = spool_dropped_text(&spool, &HubWriterStats { spool_errors: 3, ..writer });
        assert_eq!(
            text,
            "hub: spool dropped 46 unsent records (size cap of 16 MiB: 40 flow/dns/http/tls/stats/contact, 2 anomalies, 0 alerts; \
             damaged on disk: 1; could not be spooled: 3)"
        );
    }

    #[test]
    fn selection_and_home_net_parse_with_clear_errors() {
        let s = HubSelection::parse("alert, contact,dns").unwrap();
        assert!(s.contacts && s.forward.contains("dns") && s.forward.contains("alert") && !s.forward.contains("anomaly"));
        assert!(HubSelection::parse("alert,bogus").unwrap_err().contains("bogus"));
        let h = HomeNet::parse("[192.0.2.0/24, 2001:db8::/32]").unwrap();
        assert!(h.contains("192.0.2.200".parse().unwrap()));
        assert!(!h.contains("192.0.3.1".parse().unwrap()));
        assert!(h.contains("2001:db8::1".parse().unwrap()));
        assert!(HomeNet::parse("10.0.0.0/33").is_err());
        assert!(HomeNet::parse("nonsense").is_err());
        assert!(HomeNet::parse("").is_err());
    }
}
