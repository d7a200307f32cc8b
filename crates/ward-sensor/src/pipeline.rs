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
        Some(engines) => Some(crate::detect::spawn_reloader(engines.clone(), reload_done.clone()).map_err(SensorError::Thread)?),
        None => None,
    };
    let mut senders = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for index in 0..workers {
        let (tx, rx) = bounded::<WorkerMsg>(QUEUE_BATCHES);
        senders.push(tx);
        let detect = config.detect.as_ref().map(|e| crate::detect::WorkerDetect::new(e.clone(), scan.clone()));
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
            if pcap_cnt % 1024 == 0 && stop.load(Ordering::Relaxed) {
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
        if self.counters.capture_packets % 4096 == 0 {
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
