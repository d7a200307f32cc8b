//! `bench-scan`: the speed and accuracy of `ward scan` on loopback (issue 6, "Test lab, accuracy
//! and speed").
//!
//! ```text
//! cargo run --release -p ward-bench --bin bench-scan -- [--runs 20] [--id-runs 5] [--nmap-runs 3]
//!     [--no-lab] [--no-nmap]
//! ```
//!
//! * **port scan**: a full 65,535-port TCP connect scan of 127.0.0.1 with the default
//!   [`ScanLimits`] (what `ward scan 127.0.0.1 --ports all` uses), `--runs` times. Every run is
//!   checked against the kernel's own list of listening sockets (`/proc/net/tcp`, 127.0.0.1 and
//!   0.0.0.0, read before and after the run): a port reported open that listened neither before
//!   nor after is **bogus**, a port that listened both times and was not reported is **missed**.
//!   Self-connects caught by the guard are counted (they are never reported open).
//! * **identification**: the lab of `crates/ward-scan/tests/lab/lab.sh` (real nginx, vsftpd,
//!   sshd, busybox telnetd, redis, python http/smtpd on 127.0.77.x; needs root and the lab's
//!   packages) is started, or used as it is when its ports already listen; every lab port is
//!   identified at the same time (`probe::identify` with the timeouts `ward scan` uses for the
//!   target), `--id-runs` times, and the identifications are printed.
//! * **whole scan**: `ward scan 127.0.0.1 --ports all --no-credentials --no-udp` (port scan,
//!   identification of whatever this machine runs on loopback, checks) through the library,
//!   `--id-runs` times, with the services found.
//! * **nmap** (when installed; `apt-get install nmap`): `nmap -sT -p- -T4 -n -Pn 127.0.0.1`
//!   `--nmap-runs` times, and `nmap -sV -n -Pn` on the lab ports (one nmap per lab address, all
//!   started at once), with nmap's identification next to ward's for every port. Loopback only.
//!
//! Figures are medians with [min – max]; the load average is printed with them because the
//! machine the figures come from is shared.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use ward_bench::measure::Spread;
use ward_scan::engine::{self, ScanOptions};
use ward_scan::finding::Service;
use ward_scan::portscan::{scan, ScanLimits, ScanProgress};
use ward_scan::probe::{identify, ProbeTimeouts};
use ward_scan::tls::TlsClient;

#[derive(Debug, Parser)]
#[command(name = "bench-scan", about = "full-range connect scan and service identification on loopback, next to nmap")]
struct Args {
    /// Full 65,535-port scans of 127.0.0.1.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Identification runs on the lab ports.
    #[arg(long, default_value_t = 5)]
    id_runs: usize,
    /// Runs of `nmap -sT -p- -T4`.
    #[arg(long, default_value_t = 3)]
    nmap_runs: usize,
    /// Skip the lab (identification).
    #[arg(long)]
    no_lab: bool,
    /// Skip the nmap comparison.
    #[arg(long)]
    no_nmap: bool,
}

/// The lab's TCP services (tests/lab/lab.sh); telnet is optional there.
const LAB_PORTS: &[&str] = &[
    "127.0.77.10:80",
    "127.0.77.10:443",
    "127.0.77.11:443",
    "127.0.77.12:443",
    "127.0.77.13:80",
    "127.0.77.13:443",
    "127.0.77.14:80",
    "127.0.77.20:21",
    "127.0.77.21:22",
    "127.0.77.22:23",
    "127.0.77.26:25",
    "127.0.77.30:6379",
];

fn lab_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/ward-scan/tests/lab/lab.sh")
}

/// Ports listening on 127.0.0.1 or on every IPv4 address (`/proc/net/tcp`, state 0A = LISTEN).
fn listening_on_loopback() -> BTreeSet<u16> {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local, state) = (f.get(1)?, f.get(3)?);
            let (addr, port) = local.split_once(':')?;
            // 0100007F is 127.0.0.1 in /proc's little-endian hex; 00000000 is 0.0.0.0
            (*state == "0A" && (addr == "0100007F" || addr == "00000000")).then(|| u16::from_str_radix(port, 16).ok()).flatten()
        })
        .collect()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_else(|_| "?".into())
}

fn spread(values: &[f64]) -> String {
    match Spread::of(values) {
        Some(s) => format!("median {:.3} s [{:.3} – {:.3}] over {} runs", s.median, s.min, s.max, values.len()),
        None => "no runs".into(),
    }
}

fn nmap_installed() -> bool {
    Command::new("nmap").arg("--version").output().is_ok_and(|o| o.status.success())
}

fn port_scan(rt: &tokio::runtime::Runtime, runs: usize) {
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let ports: Vec<u16> = (1..=65535).collect();
    let limits = ScanLimits::default();
    println!("== full 65,535-port TCP connect scan of 127.0.0.1 (load average {})", load_average());
    let mut times = Vec::new();
    let (mut exact, mut bogus_total, mut missed_total, mut self_connects, mut timeouts) = (0, 0, 0, 0, 0);
    for run in 0..runs {
        let before = listening_on_loopback();
        let started = Instant::now();
        let report = rt.block_on(scan(&[ip], &ports, &limits, Arc::new(ScanProgress::default())));
        let secs = started.elapsed().as_secs_f64();
        let after = listening_on_loopback();
        let found: BTreeSet<u16> = report.open.get(&ip).cloned().unwrap_or_default().into_iter().collect();
        let bogus: Vec<u16> = found.iter().filter(|p| !before.contains(p) && !after.contains(p)).copied().collect();
        let missed: Vec<u16> = before.intersection(&after).filter(|p| !found.contains(p)).copied().collect();
        if bogus.is_empty() && missed.is_empty() {
            exact += 1;
        }
        bogus_total += bogus.len();
        missed_total += missed.len();
        self_connects += report.self_connects;
        timeouts += report.timeouts;
        println!(
            "  run {run:2}: {secs:.3} s, {} open, bogus {bogus:?}, missed {missed:?}, self-connects caught {}, timeouts {}, local errors {}",
            found.len(),
            report.self_connects,
            report.timeouts,
            report.local_errors
        );
        times.push(secs);
    }
    let median = Spread::of(&times).map(|s| s.median).unwrap_or(0.0);
    println!(
        "ward  full scan: {} = {:.0} ports/s; {exact}/{runs} runs exact, {bogus_total} bogus, {missed_total} missed, {self_connects} self-connects caught, {timeouts} timeouts (load average {})",
        spread(&times),
        if median > 0.0 { 65535.0 / median } else { 0.0 },
        load_average()
    );
}

/// The whole scan of 127.0.0.1, all ports, without credentials and UDP.
fn whole_scan(rt: &tokio::runtime::Runtime, runs: usize) {
    let mut times = Vec::new();
    let mut services = Vec::new();
    for _ in 0..runs.max(1) {
        let options = ScanOptions {
            targets: vec!["127.0.0.1".into()],
            ports: (1..=65535).collect(),
            credentials: false,
            snmp: false,
            ..ScanOptions::default()
        };
        let started = Instant::now();
        let result = rt.block_on(engine::run(&options, &|_| {})).expect("scan of 127.0.0.1 runs");
        times.push(started.elapsed().as_secs_f64());
        services = result.hosts.iter().flat_map(|h| h.services.iter()).map(|s| format!("{}/{}", s.port, describe(s))).collect();
    }
    println!("ward  whole scan of 127.0.0.1 (all ports, identification, checks): {} (load average {})", spread(&times), load_average());
    println!("  services: {}", services.join(", "));
}

fn nmap_port_scan(runs: usize) -> Option<f64> {
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let out = Command::new("nmap").args(["-sT", "-p-", "-T4", "-n", "-Pn", "127.0.0.1"]).output().ok()?;
        times.push(started.elapsed().as_secs_f64());
        if !out.status.success() {
            println!("nmap failed: {}", String::from_utf8_lossy(&out.stderr).trim());
            return None;
        }
    }
    println!("nmap -sT -p- -T4 -n -Pn 127.0.0.1: {} (load average {})", spread(&times), load_average());
    Spread::of(&times).map(|s| s.median)
}

/// The lab, started by us (stopped on drop) or found running.
struct Lab {
    dir: Option<tempfile::TempDir>,
    ports: Vec<SocketAddr>,
}

fn accepts(addr: &SocketAddr) -> bool {
    TcpStream::connect_timeout(addr, Duration::from_millis(300)).is_ok()
}

impl Lab {
    fn start() -> Option<Lab> {
        let all: Vec<SocketAddr> = LAB_PORTS.iter().map(|a| a.parse().unwrap()).collect();
        let required = |ports: &[SocketAddr]| all.iter().filter(|a| a.port() != 23).all(|a| ports.contains(a));
        let up: Vec<SocketAddr> = all.iter().filter(|a| accepts(a)).copied().collect();
        if required(&up) {
            println!("lab: already running, using it as it is");
            return Some(Lab { dir: None, ports: up });
        }
        let check = Command::new("bash").arg(lab_script()).arg("check").output().ok()?;
        if !check.status.success() {
            println!("lab: not started: {}", String::from_utf8_lossy(&check.stderr).trim());
            return None;
        }
        let dir = tempfile::tempdir().ok()?;
        let out = Command::new("bash").arg(lab_script()).arg("start").arg(dir.path()).output().ok()?;
        let mut lab = Lab { dir: Some(dir), ports: Vec::new() };
        if !String::from_utf8_lossy(&out.stdout).contains("lab ready") {
            println!("lab: did not start: {}", String::from_utf8_lossy(&out.stderr).trim());
            return None;
        }
        lab.ports = all.iter().filter(|a| accepts(a)).copied().collect();
        required(&lab.ports).then_some(lab)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = Command::new("bash").arg(lab_script()).arg("stop").arg(dir.path()).output();
        }
    }
}

fn describe(s: &Service) -> String {
    format!(
        "{}{} {} {}",
        if s.tls { "ssl/" } else { "" },
        s.name,
        s.product.as_deref().unwrap_or(""),
        s.version.as_deref().unwrap_or("")
    )
    .trim_end()
    .to_string()
}

fn identification(rt: &tokio::runtime::Runtime, lab: &Lab, runs: usize) -> BTreeMap<SocketAddr, Service> {
    let tls = Arc::new(TlsClient::new(&[]));
    let configured = ProbeTimeouts::default();
    let mut times = Vec::new();
    let mut last = BTreeMap::new();
    println!("== service identification of {} lab ports, all at once (load average {})", lab.ports.len(), load_average());
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let found = rt.block_on(async {
            let mut tasks = Vec::new();
            for addr in &lab.ports {
                let (tls, timeouts, addr) = (tls.clone(), configured.for_target(addr.ip()), *addr);
                tasks.push(tokio::spawn(async move { identify(addr.ip(), addr.port(), None, &tls, &timeouts).await }));
            }
            let mut out = BTreeMap::new();
            for task in tasks {
                if let Ok(o) = task.await {
                    out.insert(SocketAddr::new(o.service.ip, o.service.port), o.service);
                }
            }
            out
        });
        times.push(started.elapsed().as_secs_f64());
        last = found;
    }
    println!("ward  identification: {} (load average {})", spread(&times), load_average());
    last
}

/// `nmap -sV` on the lab ports, one nmap per address, all at once: (wall time, addr → "service product version").
fn nmap_identification(lab: &Lab) -> Option<(f64, BTreeMap<SocketAddr, String>)> {
    let mut by_host: BTreeMap<IpAddr, Vec<u16>> = BTreeMap::new();
    for a in &lab.ports {
        by_host.entry(a.ip()).or_default().push(a.port());
    }
    let started = Instant::now();
    let children: Vec<(IpAddr, std::process::Child)> = by_host
        .iter()
        .filter_map(|(ip, ports)| {
            let list = ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
            let child = Command::new("nmap")
                .args(["-sV", "-n", "-Pn", "-p", &list, &ip.to_string()])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .ok()?;
            Some((*ip, child))
        })
        .collect();
    let mut found = BTreeMap::new();
    for (ip, child) in children {
        let out = child.wait_with_output().ok()?;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // "443/tcp open  ssl/http nginx 1.22.1"
            let mut fields = line.split_whitespace();
            let Some(port) = fields.next().and_then(|p| p.strip_suffix("/tcp")).and_then(|p| p.parse::<u16>().ok()) else { continue };
            if fields.next() != Some("open") {
                continue;
            }
            found.insert(SocketAddr::new(ip, port), fields.collect::<Vec<_>>().join(" "));
        }
    }
    Some((started.elapsed().as_secs_f64(), found))
}

/// Same identification: nmap's service (without "ssl/") starts with ward's name, TLS agrees, and
/// when ward names a product nmap's line contains it.
fn same_identification(ward: &Service, nmap: &str) -> bool {
    let (nmap_tls, rest) = match nmap.strip_prefix("ssl/") {
        Some(rest) => (true, rest),
        None => (false, nmap),
    };
    let service = rest.split_whitespace().next().unwrap_or("");
    let product_ok = ward.product.as_deref().is_none_or(|p| rest.to_ascii_lowercase().contains(&p.to_ascii_lowercase()));
    nmap_tls == ward.tls && service.starts_with(ward.name.as_str()) && product_ok
}

fn main() {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let nmap = !args.no_nmap && nmap_installed();
    if !args.no_nmap && !nmap {
        println!("nmap not installed: no comparison (apt-get install nmap)");
    }
    println!("machine: {} cores, load average {}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), load_average());
    port_scan(&rt, args.runs);
    if nmap {
        nmap_port_scan(args.nmap_runs);
    }
    whole_scan(&rt, args.id_runs);
    if args.no_lab {
        return;
    }
    let Some(lab) = Lab::start() else { return };
    let ward = identification(&rt, &lab, args.id_runs);
    let nmap_ids = if nmap { nmap_identification(&lab) } else { None };
    if let Some((secs, _)) = &nmap_ids {
        println!("nmap -sV on the same ports (one nmap per address, all at once): {secs:.3} s (load average {})", load_average());
    }
    let mut same = 0;
    for (addr, service) in &ward {
        let theirs = nmap_ids.as_ref().and_then(|(_, m)| m.get(addr));
        let agree = theirs.is_some_and(|t| same_identification(service, t));
        same += agree as usize;
        match theirs {
            Some(t) => println!("  {addr:<18} ward: {:<32} nmap: {t}{}", describe(service), if agree { "" } else { "   <- differs" }),
            None => println!("  {addr:<18} ward: {}", describe(service)),
        }
    }
    if nmap_ids.is_some() {
        println!("same identification as nmap -sV: {same}/{} ports", ward.len());
    }
}
