//! The threads of a sensor run: one reader, N workers, one shared EVE sink.
//!
//! ```text
//!  reader ──(batches of frames, sharded by address-pair hash)──► worker 0..N ──► EVE sink
//!     ▲                                                              │
//!     └──────────────────── empty batches come back ◄────────────────┘
//! ```
//!
//! The reader copies frames into reusable batch buffers ([`BATCH_FRAMES`] frames or
//! [`BATCH_BYTES`] bytes), so a worker takes one channel message per batch and nothing is
//! allocated per packet once the pool is warm. Channels are bounded: with files the reader waits
//! for slow workers (no loss); live, a full queue drops the batch and counts the drop, because a
//! capture ring must keep draining.
//!
//! Each capture file is its own capture: after its last frame every worker logs all its flows
//! (reason `shutdown`) and resets, exactly as if the sensor had been run once per file.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use ward_model::Timestamp;
use ward_packet::capture::{CaptureFile, LinkType, LiveCapture};

use crate::config::{Input, SensorConfig};
use crate::eve_out::EveSink;
use crate::progress::{ProgressLine, ReadProgress};
use crate::shard::worker_for;
use crate::stats::{Counters, RunSummary};
use crate::worker::Worker;
use crate::SensorError;

/// Frames per batch handed to a worker.
const BATCH_FRAMES: usize = 512;
/// Bytes per batch buffer (a jumbo-free Ethernet mix averages well under this per 512 frames).
const BATCH_BYTES: usize = 512 * 1024;
/// Batches queued per worker before the reader waits (files) or drops (live).
const QUEUE_BATCHES: usize = 8;
/// How often a live reader with no traffic still sends a clock tick so flows time out.
const IDLE_TICK: Duration = Duration::from_millis(500);
/// Snap length for live capture.
const LIVE_SNAPLEN: u32 = 65_535;

/// Where a frame sits inside a batch buffer, and what the capture said about it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameMeta {
    pub ts: Timestamp,
    pub link: LinkType,
    pub orig_len: u32,
    pub start: u32,
    pub len: u32,
    /// 1-based packet number within its capture (EVE `pcap_cnt`); 0 for live capture.
    pub pcap_cnt: u64,
}

pub(crate) struct Batch {
    pub data: Vec<u8>,
    pub frames: Vec<FrameMeta>,
    /// Newest packet time seen by the reader when the batch was sent (drives flow timeouts on
    /// workers that see little traffic).
    pub clock: Timestamp,
}

impl Batch {
    fn new() -> Batch {
        Batch { data: Vec::with_capacity(BATCH_BYTES), frames: Vec::with_capacity(BATCH_FRAMES), clock: Timestamp::ZERO }
    }

    fn is_full(&self, next_len: usize) -> bool {
        self.frames.len() >= BATCH_FRAMES || self.data.len() + next_len > BATCH_BYTES
    }

    fn clear(&mut self) {
        self.data.clear();
        self.frames.clear();
    }
}

pub(crate) enum WorkerMsg {
    Frames(Batch),
    /// The capture named here ended: log and forget every flow.
    EndOfCapture { name: Arc<str> },
    /// No traffic, but time moved on (live capture).
    Tick(Timestamp),
}

/// Runs the sensor over the configured inputs until they end or `stop` is set.
pub fn run(config: &SensorConfig, stop: Arc<AtomicBool>) -> Result<RunSummary, SensorError> {
    let sink = EveSink::open(&config.eve).map_err(SensorError::Output)?;
    run_with_sink(config, sink, stop)
}

/// As [`run`], writing EVE records to the given sink.
pub fn run_with_sink(config: &SensorConfig, sink: EveSink, stop: Arc<AtomicBool>) -> Result<RunSummary, SensorError> {
    if config.inputs.is_empty() {
        return Err(SensorError::NoInput);
    }
    let filter = match &config.filter {
        Some(text) => Some(ward_packet::filter::Filter::parse(text).map_err(|e| SensorError::Filter(e.to_string()))?),
        None => None,
    };
    let started = Instant::now();
    let workers = config.workers.max(1);
    let (pool_tx, pool_rx) = bounded::<Batch>(workers * (QUEUE_BATCHES + 2));
    let scan = config.detect.as_ref().and_then(|e| e.config.scan).map(|c| crate::detect::SharedScan::new(c, workers));
    let reload_done = Arc::new(AtomicBool::new(false));
    let reloader = match &config.detect {
        Some(engines) => {
            Some(crate::detect::spawn_reloader(engines.clone(), reload_done.clone(), Some(sink.clone())).map_err(SensorError::Thread)?)
        }
        None => None,
    };
    let mut senders = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for index in 0..workers {
        let (tx, rx) = bounded::<WorkerMsg>(QUEUE_BATCHES);
        senders.push(tx);
        let detect = config.detect.as_ref().map(|e| crate::detect::WorkerDetect::new(e.clone(), scan.clone(), config.eve_types.alert));
        let mut worker = Worker::new(index, config, filter.clone(), sink.clone(), detect);
        let pool = pool_tx.clone();
        let handle = thread::Builder::new()
            .name(format!("ward-worker-{index}"))
            .spawn(move || worker_loop(&mut worker, rx, pool))
            .map_err(SensorError::Thread)?;
        handles.push(handle);
    }
    drop(pool_tx);

    let progress = Arc::new(ReadProgress::default());
    let files = config.inputs.iter().filter(|i| matches!(i, Input::File(_))).count();
    progress.files_total.store(files as u64, Ordering::Relaxed);
    let line = ProgressLine::start(progress.clone(), config.progress);

    let mut reader = Reader {
        senders,
        pool: pool_rx,
        current: (0..workers).map(|_| None).collect(),
        clock: Timestamp::ZERO,
        counters: Counters::default(),
        progress: progress.clone(),
        live: false,
    };
    let mut capture_errors = Vec::new();
    for input in &config.inputs {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let name: Arc<str> = match input {
            Input::File(path) => {
                if let Err(err) = reader.read_file(path, &stop) {
                    capture_errors.push(err);
                }
                progress.files_done.fetch_add(1, Ordering::Relaxed);
                path.display().to_string().into()
            }
            Input::Interface(iface) => {
                reader.live = true;
                if let Err(err) = reader.read_live(iface, &stop) {
                    capture_errors.push(err);
                }
                iface.as_str().into()
            }
        };
        reader.end_of_capture(name);
    }
    line.finish();
    let Reader { senders, counters: reader_counters, .. } = reader;
    drop(senders);

    let mut counters = reader_counters;
    for handle in handles {
        match handle.join() {
            Ok(worker_counters) => counters.merge(&worker_counters),
            Err(_) => return Err(SensorError::WorkerPanicked),
        }
    }
    reload_done.store(true, Ordering::Relaxed);
    if let Some(handle) = reloader {
        handle.thread().unpark();
        let _ = handle.join();
    }
    if let Some(engines) = &config.detect {
        counters.detect = Some(crate::stats::DetectCounters::of(engines));
    }
    counters.uptime_secs = started.elapsed().as_secs();
    counters.peak_rss_bytes = crate::stats::peak_rss_bytes();
    if config.eve_types.stats {
        let mut buffer = crate::eve_out::EveBuffer::new(sink.clone());
        buffer.write(&counters.to_eve(Timestamp::now()));
    }
    sink.finish().map_err(SensorError::Output)?;
    Ok(RunSummary { counters, capture_errors, elapsed: started.elapsed(), eve_records: sink.records() })
}

fn worker_loop(worker: &mut Worker, rx: Receiver<WorkerMsg>, pool: Sender<Batch>) -> Counters {
    for msg in rx {
        match msg {
            WorkerMsg::Frames(mut batch) => {
                worker.begin_batch();
                for meta in &batch.frames {
                    let frame = &batch.data[meta.start as usize..(meta.start + meta.len) as usize];
                    worker.process(meta, frame);
                }
                worker.advance_clock(batch.clock);
                batch.clear();
                let _ = pool.try_send(batch);
            }
            WorkerMsg::Tick(ts) => worker.advance_clock(ts),
            WorkerMsg::EndOfCapture { name } => worker.end_of_capture(&name),
        }
    }
    worker.finish()
}

struct Reader {
    senders: Vec<Sender<WorkerMsg>>,
    pool: Receiver<Batch>,
    current: Vec<Option<Batch>>,
    clock: Timestamp,
    counters: Counters,
    progress: Arc<ReadProgress>,
    live: bool,
}

impl Reader {
    fn read_file(&mut self, path: &std::path::Path, stop: &AtomicBool) -> Result<(), String> {
        let mut capture = CaptureFile::open(path).map_err(|e| e.to_string())?;
        let mut pcap_cnt = 0u64;
        loop {
            if pcap_cnt.is_multiple_of(1024) && stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            match capture.next_packet() {
                Ok(Some(raw)) => {
                    pcap_cnt += 1;
                    let (ts, link, orig_len) = (raw.ts, raw.linktype, raw.orig_len);
                    self.push(ts, link, orig_len, raw.data, pcap_cnt);
                }
                Ok(None) => return Ok(()),
                Err(err) => return Err(err.to_string()),
            }
        }
    }

    fn read_live(&mut self, iface: &str, stop: &AtomicBool) -> Result<(), String> {
        let mut capture = LiveCapture::open(iface, LIVE_SNAPLEN).map_err(|e| e.to_string())?;
        let mut last_flush = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            match capture.next_packet() {
                Ok(Some(raw)) => {
                    let (ts, link, orig_len) = (raw.ts, raw.linktype, raw.orig_len);
                    self.push(ts, link, orig_len, raw.data, 0);
                }
                Ok(None) => {}
                Err(err) => return Err(err.to_string()),
            }
            // Live traffic may be sparse: do not hold frames back waiting for a full batch.
            if last_flush.elapsed() >= IDLE_TICK / 5 {
                self.flush_all();
                let now = Timestamp::now();
                self.clock = self.clock.max(now);
                for sender in &self.senders {
                    let _ = sender.try_send(WorkerMsg::Tick(now));
                }
                last_flush = Instant::now();
            }
        }
        if let Ok(stats) = capture.stats() {
            self.counters.kernel_packets += stats.received;
            self.counters.kernel_drops += stats.dropped;
        }
        Ok(())
    }

    fn push(&mut self, ts: Timestamp, link: LinkType, orig_len: u32, data: &[u8], pcap_cnt: u64) {
        self.counters.capture_packets += 1;
        self.counters.capture_bytes += orig_len as u64;
        if self.counters.capture_packets.is_multiple_of(4096) {
            self.progress.packets.store(self.counters.capture_packets, Ordering::Relaxed);
            self.progress.bytes.store(self.counters.capture_bytes, Ordering::Relaxed);
        }
        if ts > self.clock {
            self.clock = ts;
        }
        let index = worker_for(link, data, self.senders.len());
        let needs_send = self.current[index].as_ref().is_some_and(|b| b.is_full(data.len()));
        if needs_send {
            self.send(index);
        }
        if self.current[index].is_none() {
            let batch = self.pool.try_recv().unwrap_or_else(|_| Batch::new());
            self.current[index] = Some(batch);
        }
        let batch = self.current[index].as_mut().expect("batch present");
        let start = batch.data.len() as u32;
        batch.data.extend_from_slice(data);
        batch.frames.push(FrameMeta { ts, link, orig_len, start, len: data.len() as u32, pcap_cnt });
    }

    fn send(&mut self, index: usize) {
        let Some(mut batch) = self.current[index].take() else { return };
        if batch.frames.is_empty() {
            self.current[index] = Some(batch);
            return;
        }
        batch.clock = self.clock;
        if self.live {
            match self.senders[index].try_send(WorkerMsg::Frames(batch)) {
                Ok(()) => {}
                Err(TrySendError::Full(WorkerMsg::Frames(mut batch))) => {
                    self.counters.queue_drops += batch.frames.len() as u64;
                    batch.clear();
                    self.current[index] = Some(batch);
                }
                Err(_) => {}
            }
        } else {
            let _ = self.senders[index].send(WorkerMsg::Frames(batch));
        }
    }

    fn flush_all(&mut self) {
        for index in 0..self.current.len() {
            self.send(index);
        }
    }

    fn end_of_capture(&mut self, name: Arc<str>) {
        self.flush_all();
        self.progress.packets.store(self.counters.capture_packets, Ordering::Relaxed);
        self.progress.bytes.store(self.counters.capture_bytes, Ordering::Relaxed);
        for sender in &self.senders {
            let _ = sender.send(WorkerMsg::EndOfCapture { name: name.clone() });
        }
        // Each capture has its own packet time, as each worker's clock restarts: a later file
        // with older timestamps must not be sent the previous file's clock, which would time
        // out its flows at once.
        self.clock = Timestamp::ZERO;
    }
}

#[cfg(test)]
mod tests {
    //! The sensor end to end on captures of Suricata's test suite
    //! (../shared/data/suricata-verify/tests), with the settings those tests run with.

    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};

    use serde_json::Value;

    use crate::config::{EveOutput, Input, SensorConfig};
    use crate::detect::{DetectConfig, Engines};
    use crate::eve_out::EveSink;

    #[derive(Clone, Default)]
    struct Collect(Arc<Mutex<Vec<u8>>>);

    impl Write for Collect {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn verify_test(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/suricata-verify/tests").join(path)
    }

    /// Runs `pcap` with the rules of test `dir`, `adjust` applied to the configuration.
    fn run(dir: &str, pcap: &str, adjust: impl FnOnce(&mut SensorConfig)) -> Vec<Value> {
        let rules = DetectConfig { rule_files: vec![verify_test(dir).join("test.rules")], ..Default::default() };
        let (engines, summary) = Engines::load(rules).expect("rules load");
        assert!(summary.rules.skipped.is_empty());
        let mut config = SensorConfig {
            inputs: vec![Input::File(verify_test(dir).join(pcap))],
            workers: 1,
            eve: EveOutput::Null,
            progress: false,
            detect: Some(engines),
            ..SensorConfig::default()
        };
        adjust(&mut config);
        let collect = Collect::default();
        let sink = EveSink::to_writer(Box::new(collect.clone()));
        super::run_with_sink(&config, sink, Arc::new(AtomicBool::new(false))).expect("sensor run");
        let bytes = collect.0.lock().unwrap().clone();
        bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect()
    }

    fn alerts(records: &[Value], sid: u64) -> Vec<&Value> {
        records.iter().filter(|r| r["event_type"] == "alert" && r["alert"]["signature_id"] == sid).collect()
    }

    /// Every record validates against Suricata's EVE schema.
    fn schema_valid(records: &[Value]) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/suricata/eve-schema.json");
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("schema")).unwrap();
        let validator = jsonschema::validator_for(&schema).expect("schema compiles");
        for r in records {
            let errors: Vec<String> = validator.iter_errors(r).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{r}: {errors:?}");
        }
    }

    #[test]
    fn alerts_carry_payload_and_packet_when_asked() {
        let records = run("eve-payload-05-tcp-data-gap", "tcp-simple-gap2.pcap", |c| {
            c.eve_types.alert.payload = true;
            c.eve_types.alert.payload_printable = true;
            c.eve_types.alert.packet = true;
        });
        schema_valid(&records);
        let packet = alerts(&records, 4);
        assert_eq!(packet.len(), 1);
        let a = packet[0];
        assert_eq!(a["payload"], "VkVSWQ==");
        assert_eq!(a["payload_printable"], "VERY");
        assert_eq!(a["stream"], 0);
        assert_eq!(a["packet"], "BQQDAgEAAAECAwQFgQAABggARQAALAABAABABnTGAQEBAQICAgIwOR+QAAAAAgAAA+lQEAQAqXgAAFZFUlk=");
        assert_eq!(a["packet_info"]["linktype"], 1);
        assert_eq!(a["packet_info"]["linktype_name"], "EN10MB");
        // Off by default.
        let records = run("eve-payload-05-tcp-data-gap", "tcp-simple-gap2.pcap", |_| {});
        let a = alerts(&records, 4)[0];
        assert!(a.get("payload").is_none() && a.get("packet").is_none() && a.get("stream").is_none());
    }

    #[test]
    fn stream_data_flushed_at_flow_end_is_inspected() {
        // Data behind a leading gap: only closing the stream delivers it.
        let records = run("eve-payload-06-tcp-data-leading-gap", "tcp-leading-gap.pcap", |c| {
            c.eve_types.alert.payload = true;
            c.eve_types.alert.payload_printable = true;
        });
        schema_valid(&records);
        for sid in [2, 3] {
            let a = alerts(&records, sid);
            assert_eq!(a.len(), 1, "sid {sid}");
            assert_eq!(a[0]["pkt_src"], "stream (flow timeout)");
            assert_eq!(a[0]["payload_printable"], "[4 bytes missing]GOODDATA");
            assert_eq!(a[0]["stream"], 1);
            assert!(a[0].get("pcap_cnt").is_none());
        }
        for sid in [1, 4, 7] {
            assert!(alerts(&records, sid).is_empty(), "sid {sid}");
        }
        // Packet rules saw the packets as they came.
        assert_eq!(alerts(&records, 5)[0]["payload_printable"], "GOOD");
        assert_eq!(alerts(&records, 6)[0]["pcap_cnt"], 6);
    }

    #[test]
    fn midstream_sessions_are_inspected_and_reversed_when_the_server_spoke_first() {
        let dir = "bug-7552/bug-7552-01";
        assert!(alerts(&run(dir, "input.pcap", |_| {}), 1).is_empty(), "no session without midstream");
        let records = run(dir, "input.pcap", |c| c.midstream = true);
        schema_valid(&records);
        let a = alerts(&records, 1);
        assert_eq!(a.len(), 1);
        assert_eq!((a[0]["direction"].as_str(), a[0]["src_port"].as_u64()), (Some("to_client"), Some(8080)));
        let flow = records.iter().find(|r| r["event_type"] == "flow").unwrap();
        assert_eq!((flow["src_port"].as_u64(), flow["dest_port"].as_u64()), (Some(51297), Some(8080)));
        // A request in a single packet, no handshake.
        let records = run("detect-pcre/detect-pcre-01", "input.pcap", |c| c.midstream = true);
        assert_eq!(alerts(&records, 1).len(), 1);
    }

    #[test]
    fn one_sided_sessions_and_vlan_blind_tracking() {
        let records = run("http-async-srv", "input.pcap", |c| c.async_oneside = true);
        assert_eq!((alerts(&records, 1).len(), alerts(&records, 2).len()), (1, 1));
        let records = run("bug-4376", "syn_retransmit_with_ts.pcap", |c| c.vlan_tracking = false);
        let flows: Vec<&Value> = records.iter().filter(|r| r["event_type"] == "flow" && r["proto"] == "TCP").collect();
        assert_eq!(flows.len(), 1);
        assert_eq!(flows[0]["vlan"][0], 3136);
        assert_eq!((alerts(&records, 1).len(), alerts(&records, 2).len()), (1, 1));
    }

    #[test]
    fn tunnelled_packets_name_their_outer_packet() {
        let records = run("bug-4571-01", "ipv4_over_ipv4.pcap", |c| c.midstream = true);
        schema_valid(&records);
        let a = alerts(&records, 1);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0]["pkt_src"], "ipv4 tunnel");
        assert_eq!((a[0]["src_ip"].as_str(), a[0]["dest_ip"].as_str()), (Some("10.1.0.3"), Some("10.1.0.4")));
        let t = &a[0]["tunnel"];
        assert_eq!((t["src_ip"].as_str(), t["dest_ip"].as_str()), (Some("10.1.0.1"), Some("10.1.0.2")));
        assert_eq!((t["proto"].as_str(), t["depth"].as_u64(), t["pkt_src"].as_str()), (Some("IP-in-IP"), Some(1), Some("wire/pcap")));
        // Header rules also see the outer packets, with their own addresses both ways.
        let records = run("bug-7725-02", "ip_in_ip.pcap", |_| {});
        schema_valid(&records);
        let outer = alerts(&records, 60000000);
        assert_eq!(outer.len(), 6);
        assert!(outer.iter().all(|a| a["pkt_src"] == "wire/pcap" && a["proto"] == "IP-in-IP" && a.get("tunnel").is_none()));
        assert_eq!(outer.iter().filter(|a| a["src_ip"] == "10.1.0.237").count(), 3);
        let inner = alerts(&records, 60000001);
        assert_eq!(inner.len(), 6);
        assert!(inner.iter().all(|a| a["pkt_src"] == "ipv4 tunnel" && a["tunnel"]["proto"] == "IP-in-IP"));
    }

    #[test]
    fn fast_open_and_new_link_types_reach_detection() {
        let records = run("tcp-fastopen-01", "tfo.pcap", |_| {});
        assert_eq!((alerts(&records, 1).len(), alerts(&records, 2).len()), (1, 1));
        let records = run("decode-chdlc-02", "../decode-chdlc-01/hdlc-http_1tx.pcap", |c| c.eve_types.alert.packet = true);
        schema_valid(&records);
        let a = alerts(&records, 666);
        assert_eq!(a.len(), 1);
        assert_eq!((a[0]["packet_info"]["linktype"].as_u64(), a[0]["packet_info"]["linktype_name"].as_str()), (Some(104), Some("C_HDLC")));
        let records = run("decode-nsh-type2", "input.pcap", |_| {});
        let a = alerts(&records, 1);
        assert_eq!(a.len(), 1);
        assert_eq!((a[0]["src_port"].as_u64(), a[0]["dest_port"].as_u64()), (Some(52377), Some(52464)));
    }
}
