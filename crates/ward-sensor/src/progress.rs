//! Progress on the terminal for long pcap runs: files, packets, rate, on one rewritten line.
//!
//! Only drawn when stderr is a terminal, so logs and CI output stay clean.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Counters the reader thread bumps and the progress line reads.
#[derive(Default)]
pub struct ReadProgress {
    pub files_done: AtomicU64,
    pub files_total: AtomicU64,
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
}

pub struct ProgressLine {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl ProgressLine {
    /// Starts drawing if `enabled` and stderr is a terminal.
    pub fn start(counters: Arc<ReadProgress>, enabled: bool) -> ProgressLine {
        let stop = Arc::new(AtomicBool::new(false));
        if !enabled || !std::io::stderr().is_terminal() {
            return ProgressLine { stop, handle: None };
        }
        let stop_flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("ward-progress".into())
            .spawn(move || draw_loop(&counters, &stop_flag))
            .ok();
        ProgressLine { stop, handle }
    }

    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }
}

fn draw_loop(counters: &ReadProgress, stop: &AtomicBool) {
    let started = Instant::now();
    let mut last = (Instant::now(), 0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(250));
        let now = Instant::now();
        if now.duration_since(last.0) < Duration::from_millis(1000) {
            continue;
        }
        let packets = counters.packets.load(Ordering::Relaxed);
        let bytes = counters.bytes.load(Ordering::Relaxed);
        let secs = now.duration_since(last.0).as_secs_f64();
        let pps = (packets - last.1) as f64 / secs;
        let gbps = (bytes - last.2) as f64 * 8.0 / secs / 1e9;
        last = (now, packets, bytes);
        eprint!(
            "\r\x1b[2Kfiles {}/{}  packets {}  {:.0} pkt/s  {:.2} Gbit/s  {:.0}s",
            counters.files_done.load(Ordering::Relaxed),
            counters.files_total.load(Ordering::Relaxed),
            packets,
            pps,
            gbps,
            started.elapsed().as_secs_f64()
        );
        let _ = std::io::stderr().flush();
    }
}
