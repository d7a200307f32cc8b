//! Benchmark: `ward scan` of 127.0.0.1 with the services this machine runs on loopback —
//! top-1000 and all 65,535 ports, median of RUNS (default 3) runs each:
//! * the connect scan alone (ports/s), checked against the kernel's listening sockets
//!   (/proc/net/tcp and /proc/net/tcp6): a bogus or missed port is reported;
//! * the whole scan (port scan, service identification, checks; no credentials, no UDP), as
//!   `ward scan 127.0.0.1 --ports top1000|all --no-credentials --no-udp --no-history` runs it.
//!
//! Run: `cargo run --release -p ward-scan --example bench_scan -- [RUNS]`

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use ward_scan::engine::{self, ScanOptions};
use ward_scan::portscan::{scan, ScanLimits, ScanProgress};

/// Ports listening on 127.0.0.1 or on every IPv4 address (/proc/net/tcp, state 0A = LISTEN).
fn listening() -> BTreeSet<u16> {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local, state) = (f.get(1)?, f.get(3)?);
            let (addr, port) = local.split_once(':')?;
            (*state == "0A" && (addr == "0100007F" || addr == "00000000")).then(|| u16::from_str_radix(port, 16).ok()).flatten()
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(3).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let limits = ScanLimits::default();
    println!("listening on 127.0.0.1: {:?}", listening());
    for list in ["top1000", "all"] {
        let ports = ward_scan::ports::parse_ports(list).unwrap();
        let wanted: BTreeSet<u16> = ports.iter().copied().collect();
        let mut times = Vec::new();
        let (mut bogus_total, mut missed_total) = (0, 0);
        for run in 0..runs {
            let before = listening();
            let started = Instant::now();
            let report = rt.block_on(scan(&[ip], &ports, &limits, Arc::new(ScanProgress::default())));
            let secs = started.elapsed().as_secs_f64();
            let after = listening();
            let found: BTreeSet<u16> = report.open.get(&ip).cloned().unwrap_or_default().into_iter().collect();
            let bogus: Vec<u16> = found.iter().filter(|p| !before.contains(p) && !after.contains(p)).copied().collect();
            let missed: Vec<u16> = before.intersection(&after).filter(|p| wanted.contains(p) && !found.contains(p)).copied().collect();
            bogus_total += bogus.len();
            missed_total += missed.len();
            println!("  port scan {list} run {run}: {secs:.3} s, {} open {found:?}, bogus {bogus:?}, missed {missed:?}, self-connects caught {}", found.len(), report.self_connects);
            times.push(secs);
        }
        let m = median(times);
        println!(
            "PORT SCAN {list:8} ({:5} ports): median {m:.3} s over {runs} runs = {:.0} ports/s; {bogus_total} bogus, {missed_total} missed",
            ports.len(),
            ports.len() as f64 / m
        );
        let mut times = Vec::new();
        let mut last = None;
        for run in 0..runs {
            let options = ScanOptions { targets: vec!["127.0.0.1".into()], ports: ports.clone(), credentials: false, snmp: false, ..ScanOptions::default() };
            let started = Instant::now();
            let result = rt.block_on(engine::run(&options, &|_| {})).expect("scan runs");
            let secs = started.elapsed().as_secs_f64();
            let services: Vec<String> = result.hosts.iter().flat_map(|h| h.services.iter()).map(|s| format!("{}/{}{}", s.port, s.name, s.product.as_ref().map(|p| format!(" {p}")).unwrap_or_default())).collect();
            println!("  whole scan {list} run {run}: {secs:.3} s, {} findings, services {services:?}", result.findings.len());
            times.push(secs);
            last = Some(result);
        }
        let m = median(times);
        println!(
            "WHOLE SCAN {list:8} ({:5} ports): median {m:.3} s over {runs} runs ({} services identified, {} findings)",
            ports.len(),
            last.as_ref().map(|r| r.hosts.iter().map(|h| h.services.len()).sum::<usize>()).unwrap_or(0),
            last.as_ref().map(|r| r.findings.len()).unwrap_or(0)
        );
    }
}
