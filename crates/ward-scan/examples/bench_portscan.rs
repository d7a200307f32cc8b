//! Benchmark: full 65,535-port TCP connect scan of 127.0.0.1, 20 runs, checked against the
//! kernel's own list of listening sockets (/proc/net/tcp) for misses and bogus ports; then
//! service identification of given ports, next to `nmap -sT -p-` and `nmap -sV` when nmap is
//! installed.
//!
//! Run: `cargo run --release -p ward-scan --example bench_portscan -- [RUNS] [ADDR:PORT...]`

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ward_scan::portscan::{scan, ScanLimits, ScanProgress};
use ward_scan::probe::{identify, ProbeTimeouts};
use ward_scan::tls::TlsClient;

/// Ports listening on 127.0.0.1 or on every IPv4 address, from /proc/net/tcp.
fn listening_on_loopback() -> BTreeSet<u16> {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state) = (fields.get(1)?, fields.get(3)?);
            if *state != "0A" {
                return None;
            }
            let (addr, port) = local.split_once(':')?;
            // 0100007F is 127.0.0.1 in /proc's little-endian hex; 00000000 is 0.0.0.0
            (addr == "0100007F" || addr == "00000000").then(|| u16::from_str_radix(port, 16).ok()).flatten()
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return 0.0;
    }
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(20);
    let lab: Vec<SocketAddr> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let ports: Vec<u16> = (1..=65535).collect();
    let limits = ScanLimits { global_concurrency: 4096, host_concurrency: 4096, ..Default::default() };
    let mut times = Vec::new();
    let (mut exact, mut bogus_total, mut missed_total, mut self_connects) = (0, 0, 0, 0);
    for run in 0..runs {
        let before = listening_on_loopback();
        let started = Instant::now();
        let report = rt.block_on(scan(&[ip], &ports, &limits, Arc::new(ScanProgress::default())));
        let secs = started.elapsed().as_secs_f64();
        let after = listening_on_loopback();
        let found: BTreeSet<u16> = report.open.get(&ip).cloned().unwrap_or_default().into_iter().collect();
        // a port is bogus if it listened neither before nor after; missed if it listened both times
        let bogus: Vec<u16> = found.iter().filter(|p| !before.contains(p) && !after.contains(p)).copied().collect();
        let missed: Vec<u16> = before.intersection(&after).filter(|p| !found.contains(p)).copied().collect();
        if bogus.is_empty() && missed.is_empty() {
            exact += 1;
        }
        bogus_total += bogus.len();
        missed_total += missed.len();
        self_connects += report.self_connects;
        println!("run {run:2}: {secs:.3} s, {} open, bogus {bogus:?}, missed {missed:?}, self-connects caught {}, timeouts {}", found.len(), report.self_connects, report.timeouts);
        times.push(secs);
    }
    println!(
        "ward full scan of 127.0.0.1 (65,535 ports): median {:.3} s, min {:.3} s, max {:.3} s over {runs} runs; {exact}/{runs} exact, {bogus_total} bogus, {missed_total} missed, {self_connects} self-connects caught",
        median(times.clone()),
        times.iter().cloned().fold(f64::MAX, f64::min),
        times.iter().cloned().fold(0.0, f64::max)
    );
    if Command::new("nmap").arg("--version").output().is_ok() {
        let mut nmap_times = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            let _ = Command::new("nmap").args(["-sT", "-p-", "-T4", "-n", "-Pn", "127.0.0.1"]).output();
            nmap_times.push(started.elapsed().as_secs_f64());
        }
        println!("nmap -sT -p- -T4 127.0.0.1: median {:.3} s over 3 runs", median(nmap_times));
    } else {
        println!("nmap not installed: no comparison (apt-get install nmap)");
    }
    if lab.is_empty() {
        return;
    }
    let tls = Arc::new(TlsClient::new(&[]));
    let timeouts = ProbeTimeouts::default();
    let mut id_times = Vec::new();
    let mut last = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let observations = rt.block_on(async {
            let mut tasks = Vec::new();
            for addr in &lab {
                let (tls, timeouts, addr) = (tls.clone(), timeouts.clone(), *addr);
                tasks.push(tokio::spawn(async move { identify(addr.ip(), addr.port(), None, &tls, &timeouts).await }));
            }
            let mut out = Vec::new();
            for t in tasks {
                if let Ok(o) = t.await {
                    out.push(o);
                }
            }
            out
        });
        id_times.push(started.elapsed().as_secs_f64());
        last = observations;
    }
    println!("ward service identification of {} ports: median {:.3} s over 5 runs", lab.len(), median(id_times));
    for o in &last {
        println!(
            "  {}:{} {}{} {} {}",
            o.service.ip,
            o.service.port,
            if o.service.tls { "ssl/" } else { "" },
            o.service.name,
            o.service.product.as_deref().unwrap_or(""),
            o.service.version.as_deref().unwrap_or("")
        );
    }
    if Command::new("nmap").arg("--version").output().is_ok() {
        let mut by_host: std::collections::BTreeMap<IpAddr, Vec<u16>> = Default::default();
        for a in &lab {
            by_host.entry(a.ip()).or_default().push(a.port());
        }
        let started = Instant::now();
        let mut outputs = Vec::new();
        let handles: Vec<_> = by_host
            .iter()
            .map(|(ip, ports)| {
                let list = ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",");
                Command::new("nmap").args(["-sV", "-Pn", "-n", "-p", &list, &ip.to_string()]).output()
            })
            .collect();
        for h in handles.into_iter().flatten() {
            outputs.push(String::from_utf8_lossy(&h.stdout).into_owned());
        }
        let elapsed = started.elapsed();
        println!("nmap -sV on the same ports (one nmap per address, in sequence): {:.3} s", elapsed.as_secs_f64());
        for o in outputs {
            for line in o.lines().filter(|l| l.contains("/tcp")) {
                println!("  {line}");
            }
        }
        let _ = Duration::ZERO;
    }
}
