//! The asynchronous TCP connect scan (no root needed): which ports of which addresses accept a
//! connection.
//!
//! Design: a fixed pool of worker tasks pulls (address, port) pairs from one atomic counter, in
//! an order that interleaves addresses so no single host takes the whole pool. Each connect holds
//! a permit from a global and a per-host limit; each host keeps its own round-trip estimate, so
//! its connect timeout shrinks from [`ScanLimits::connect_timeout`] towards
//! `srtt + 4 * rttvar` once answers arrive, and its window of parallel connects shrinks by one on
//! every timeout and grows back on answers (additive increase, additive decrease). Optional
//! connect-per-second rate limits apply globally and per host.
//!
//! The cost per port is kept to the kernel's own: each worker keeps one spare socket per address
//! family and reuses it after a refusal (no `socket()`/`close()` per closed port), and a connect
//! the kernel answered inside the syscall (loopback: always; see [`start_connect`]) is read back
//! with a second `connect()` instead of an epoll registration and a timer. Only a handshake
//! that is really in flight goes to the reactor with its timeout. On the 2-core test machine a
//! full 65,535-port scan of 127.0.0.1 takes about 0.1 s (bench/src/bin/bench-scan.rs).
//!
//! Invariants: a port is reported open only after a completed handshake whose local and remote
//! endpoints differ (the TCP self-connect guard: on loopback a connect from ephemeral port P to
//! port P can "succeed" against itself through simultaneous open); a local resource error
//! (out of file descriptors or ephemeral ports) is retried, never taken for a closed port.
//! Nothing is ever written to a connected socket here.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libc::{EALREADY, EINPROGRESS, EISCONN};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// Lower bound of the adaptive connect timeout: even on loopback a busy machine can stall a
/// handshake for tens of milliseconds (nmap's default minimum RTT timeout is also 100 ms).
pub const MIN_CONNECT_TIMEOUT: Duration = Duration::from_millis(100);
/// Smallest per-host window: below this a host with heavy packet loss would take hours.
const MIN_HOST_WINDOW: usize = 8;
/// Answers needed to grow a host's window by one after it shrank.
const ANSWERS_PER_WINDOW_STEP: u64 = 16;
/// Retries of a connect that failed for a local reason (EMFILE, EADDRNOTAVAIL, ENOBUFS).
const MAX_LOCAL_RETRIES: u32 = 5;
/// Connects completed inside the syscall before a worker yields to the other tasks.
const IMMEDIATE_RUN_BEFORE_YIELD: u32 = 64;
/// Wait before retrying after a local resource error.
const LOCAL_RETRY_DELAY: Duration = Duration::from_millis(20);

/// Concurrency, rate and timeout settings of a port scan.
#[derive(Debug, Clone)]
pub struct ScanLimits {
    /// Connects in flight across all hosts (bounded by the process's file-descriptor limit).
    pub global_concurrency: usize,
    /// Connects in flight to one host at most (its window starts here).
    pub host_concurrency: usize,
    /// Initial and largest connect timeout.
    pub connect_timeout: Duration,
    /// Connect attempts per second across all hosts; `None` is unlimited.
    pub global_rate: Option<u32>,
    /// Connect attempts per second to one host; `None` is unlimited.
    pub host_rate: Option<u32>,
}

impl Default for ScanLimits {
    fn default() -> Self {
        ScanLimits {
            global_concurrency: 2048,
            host_concurrency: 1024,
            connect_timeout: Duration::from_millis(1500),
            global_rate: None,
            host_rate: None,
        }
    }
}

/// Counters a caller can read while the scan runs (for the progress line).
#[derive(Debug, Default)]
pub struct ScanProgress {
    pub total: AtomicUsize,
    pub done: AtomicUsize,
    pub open: AtomicUsize,
}

/// What a port scan found.
#[derive(Debug, Default, Clone)]
pub struct PortScanReport {
    /// Open ports per address, sorted.
    pub open: BTreeMap<IpAddr, Vec<u16>>,
    pub attempts: usize,
    /// Connects that got no answer in time (filtered or lost).
    pub timeouts: usize,
    /// Handshakes that turned out to be the socket talking to itself, not reported open.
    pub self_connects: usize,
    /// Connects that failed for a local reason even after retries.
    pub local_errors: usize,
    pub elapsed: Duration,
}

/// Evenly spaced slots for a connects-per-second limit.
struct RateLimiter {
    start: Instant,
    interval_ns: u64,
    next_ns: AtomicU64,
}

impl RateLimiter {
    fn new(per_second: Option<u32>) -> Option<RateLimiter> {
        let rate = per_second.filter(|r| *r > 0)?;
        Some(RateLimiter { start: Instant::now(), interval_ns: 1_000_000_000 / rate as u64, next_ns: AtomicU64::new(0) })
    }

    async fn wait(&self) {
        let now = self.start.elapsed().as_nanos() as u64;
        let mut current = self.next_ns.load(Ordering::Relaxed);
        let slot = loop {
            let slot = current.max(now);
            match self.next_ns.compare_exchange_weak(current, slot + self.interval_ns, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break slot,
                Err(seen) => current = seen,
            }
        };
        if slot > now {
            tokio::time::sleep(Duration::from_nanos(slot - now)).await;
        }
    }
}

/// Per-host state: window of parallel connects and round-trip estimate.
struct HostState {
    ip: IpAddr,
    window: Semaphore,
    window_size: AtomicUsize,
    max_window: usize,
    answers: AtomicU64,
    /// Smoothed RTT and its variation in microseconds (RFC 6298); 0 means no sample yet.
    srtt_us: AtomicU64,
    rttvar_us: AtomicU64,
    rate: Option<RateLimiter>,
}

impl HostState {
    fn timeout(&self, max: Duration) -> Duration {
        let srtt = self.srtt_us.load(Ordering::Relaxed);
        if srtt == 0 {
            return max;
        }
        let rto = Duration::from_micros(srtt + 4 * self.rttvar_us.load(Ordering::Relaxed));
        rto.clamp(MIN_CONNECT_TIMEOUT, max.max(MIN_CONNECT_TIMEOUT))
    }

    fn on_answer(&self, rtt: Duration) {
        let sample = rtt.as_micros().max(1) as u64;
        let srtt = self.srtt_us.load(Ordering::Relaxed);
        if srtt == 0 {
            self.srtt_us.store(sample, Ordering::Relaxed);
            self.rttvar_us.store(sample / 2, Ordering::Relaxed);
        } else {
            let var = self.rttvar_us.load(Ordering::Relaxed);
            let delta = srtt.abs_diff(sample);
            self.rttvar_us.store((3 * var + delta) / 4, Ordering::Relaxed);
            self.srtt_us.store((7 * srtt + sample) / 8, Ordering::Relaxed);
        }
        let answers = self.answers.fetch_add(1, Ordering::Relaxed) + 1;
        if answers % ANSWERS_PER_WINDOW_STEP == 0 && self.window_size.load(Ordering::Relaxed) < self.max_window {
            self.window_size.fetch_add(1, Ordering::Relaxed);
            self.window.add_permits(1);
        }
    }

    fn on_timeout(&self) {
        let size = self.window_size.load(Ordering::Relaxed);
        if size > MIN_HOST_WINDOW && self.window.forget_permits(1) == 1 {
            self.window_size.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

enum Outcome {
    Open,
    Closed,
    Timeout,
    SelfConnect,
    LocalError,
}

/// Whether a socket whose connect was refused can connect again. Linux resets it
/// (`tcp_disconnect`); other systems leave it in an unspecified state, so it is closed there.
const REUSE_REFUSED_SOCKETS: bool = cfg!(target_os = "linux");

/// A worker's spare sockets, one per address family. A connect that the peer refused leaves the
/// socket unconnected and unbound again (the kernel runs `tcp_disconnect` and frees the ephemeral
/// port), so the next port can be tried on the same socket: no `socket()`, no `close()`, no
/// allocation of a file and an inode per port. On loopback that halves the kernel work per port.
#[derive(Default)]
struct SpareSockets {
    v4: Option<socket2::Socket>,
    v6: Option<socket2::Socket>,
}

impl SpareSockets {
    fn take(&mut self, addr: &SocketAddr) -> std::io::Result<socket2::Socket> {
        let slot = if addr.is_ipv4() { &mut self.v4 } else { &mut self.v6 };
        match slot.take() {
            Some(socket) => Ok(socket),
            None => {
                let domain = if addr.is_ipv4() { socket2::Domain::IPV4 } else { socket2::Domain::IPV6 };
                socket2::Socket::new(domain, socket2::Type::STREAM.nonblocking().cloexec(), Some(socket2::Protocol::TCP))
            }
        }
    }

    fn put(&mut self, addr: &SocketAddr, socket: socket2::Socket) {
        *(if addr.is_ipv4() { &mut self.v4 } else { &mut self.v6 }) = Some(socket);
    }
}

/// What a connect started on a socket told at once.
enum Started {
    Done(Outcome),
    /// The handshake is under way: wait for the socket to become writable.
    Pending(socket2::Socket),
}

/// Connect without waiting. Linux answers a loopback connect inside the kernel but reports
/// `EINPROGRESS` (the RST or SYN-ACK is processed when the socket lock is released, just before
/// the syscall returns); a second `connect()` on the same socket then returns the result
/// (0/`EISCONN` open, `ECONNREFUSED` closed) or `EALREADY` when the handshake really is still in
/// flight. So a port that answers at once costs two syscalls and never touches epoll or a timer.
fn start_connect(spare: &mut SpareSockets, addr: SocketAddr) -> Started {
    let socket = match spare.take(&addr) {
        Ok(socket) => socket,
        Err(e) => return Started::Done(classify_error(&e)),
    };
    let sockaddr = socket2::SockAddr::from(addr);
    let mut result = socket.connect(&sockaddr);
    if matches!(&result, Err(e) if e.raw_os_error() == Some(EINPROGRESS) || e.kind() == ErrorKind::WouldBlock) {
        result = socket.connect(&sockaddr);
    }
    match result {
        Ok(()) => Started::Done(classify_connected(&socket)),
        Err(e) if e.raw_os_error() == Some(EISCONN) => Started::Done(classify_connected(&socket)),
        Err(e) if e.raw_os_error() == Some(EALREADY) || e.raw_os_error() == Some(EINPROGRESS) => Started::Pending(socket),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            // refused: the kernel reset the socket to unconnected, ready for the next port
            if REUSE_REFUSED_SOCKETS {
                spare.put(&addr, socket);
            }
            Started::Done(Outcome::Closed)
        }
        Err(e) => Started::Done(classify_error(&e)),
    }
}

fn classify_error(e: &std::io::Error) -> Outcome {
    match e.kind() {
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset => Outcome::Closed,
        ErrorKind::TimedOut => Outcome::Timeout,
        ErrorKind::AddrNotAvailable | ErrorKind::AddrInUse | ErrorKind::OutOfMemory => Outcome::LocalError,
        _ if is_local_resource_error(e) => Outcome::LocalError,
        // unreachable network/host: nothing answers there, the port is not open
        _ => Outcome::Closed,
    }
}

fn classify_connected(socket: &socket2::Socket) -> Outcome {
    let same = matches!((socket.local_addr(), socket.peer_addr()), (Ok(l), Ok(p)) if l.as_socket().is_some() && l.as_socket() == p.as_socket());
    if same {
        Outcome::SelfConnect
    } else {
        Outcome::Open
    }
}

/// Wait for a connect that is under way, at most `timeout`.
async fn finish_connect(pending: socket2::Socket, timeout: Duration) -> Outcome {
    let outcome = async {
        let stream = TcpStream::from_std(std::net::TcpStream::from(pending)).map_err(|e| classify_error(&e))?;
        stream.writable().await.map_err(|e| classify_error(&e))?;
        match stream.take_error() {
            Ok(Some(e)) | Err(e) => Err(classify_error(&e)),
            Ok(None) if is_self_connect(&stream) => Ok(Outcome::SelfConnect),
            Ok(None) => match stream.peer_addr() {
                Ok(_) => Ok(Outcome::Open),
                Err(e) => Err(classify_error(&e)),
            },
        }
    };
    match tokio::time::timeout(timeout, outcome).await {
        Err(_) => Outcome::Timeout,
        Ok(Ok(o)) | Ok(Err(o)) => o,
    }
}

/// One connect: `(outcome, round trip, answered inside the syscall)`.
async fn connect_once(spare: &mut SpareSockets, addr: SocketAddr, timeout: Duration) -> (Outcome, Duration, bool) {
    let mut retries = 0;
    loop {
        let started = Instant::now();
        let (outcome, immediate) = match start_connect(spare, addr) {
            Started::Done(outcome) => (outcome, true),
            Started::Pending(socket) => (finish_connect(socket, timeout).await, false),
        };
        let rtt = started.elapsed();
        if matches!(outcome, Outcome::LocalError) && retries < MAX_LOCAL_RETRIES {
            retries += 1;
            tokio::time::sleep(LOCAL_RETRY_DELAY * retries).await;
            continue;
        }
        return (outcome, rtt, immediate);
    }
}

/// A connection to itself: on loopback, a connect from ephemeral port P to port P on the same
/// address completes by TCP simultaneous open with nobody listening.
pub fn is_self_connect(stream: &TcpStream) -> bool {
    matches!((stream.local_addr(), stream.peer_addr()), (Ok(l), Ok(p)) if l == p)
}

fn is_local_resource_error(e: &std::io::Error) -> bool {
    // EMFILE 24, ENFILE 23, ENOBUFS 105 on Linux
    matches!(e.raw_os_error(), Some(23) | Some(24) | Some(105))
}

/// Connect-scan `ports` on every address in `targets`.
pub async fn scan(targets: &[IpAddr], ports: &[u16], limits: &ScanLimits, progress: Arc<ScanProgress>) -> PortScanReport {
    let started = Instant::now();
    let total = targets.len() * ports.len();
    progress.total.store(total, Ordering::Relaxed);
    if total == 0 {
        return PortScanReport::default();
    }
    let host_window = limits.host_concurrency.max(1);
    let hosts: Arc<Vec<HostState>> = Arc::new(
        targets
            .iter()
            .map(|ip| HostState {
                ip: *ip,
                window: Semaphore::new(host_window),
                window_size: AtomicUsize::new(host_window),
                max_window: host_window,
                answers: AtomicU64::new(0),
                srtt_us: AtomicU64::new(0),
                rttvar_us: AtomicU64::new(0),
                rate: RateLimiter::new(limits.host_rate),
            })
            .collect(),
    );
    let ports: Arc<Vec<u16>> = Arc::new(ports.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let global_rate = Arc::new(RateLimiter::new(limits.global_rate));
    let workers = limits.global_concurrency.max(1).min(total);
    let mut tasks = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (hosts, ports, next, progress, global_rate) =
            (hosts.clone(), ports.clone(), next.clone(), progress.clone(), global_rate.clone());
        let max_timeout = limits.connect_timeout;
        tasks.push(tokio::spawn(async move {
            let mut found: Vec<(usize, u16)> = Vec::new();
            let (mut timeouts, mut self_connects, mut local_errors) = (0usize, 0usize, 0usize);
            let nhosts = hosts.len();
            let mut since_yield = 0u32;
            let mut spare = SpareSockets::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let (host_index, port) = (i % nhosts, ports[i / nhosts]);
                let host = &hosts[host_index];
                let Ok(permit) = host.window.acquire().await else { break };
                if let Some(rate) = global_rate.as_ref() {
                    rate.wait().await;
                }
                if let Some(rate) = host.rate.as_ref() {
                    rate.wait().await;
                }
                let (outcome, rtt, immediate) = connect_once(&mut spare, SocketAddr::new(host.ip, port), host.timeout(max_timeout)).await;
                drop(permit);
                // a run of connects answered inside the syscall never awaits: let others run
                if immediate {
                    since_yield += 1;
                    if since_yield >= IMMEDIATE_RUN_BEFORE_YIELD {
                        since_yield = 0;
                        tokio::task::yield_now().await;
                    }
                }
                match outcome {
                    Outcome::Open => {
                        host.on_answer(rtt);
                        found.push((host_index, port));
                        progress.open.fetch_add(1, Ordering::Relaxed);
                    }
                    Outcome::Closed => host.on_answer(rtt),
                    Outcome::Timeout => {
                        host.on_timeout();
                        timeouts += 1;
                    }
                    Outcome::SelfConnect => self_connects += 1,
                    Outcome::LocalError => local_errors += 1,
                }
                progress.done.fetch_add(1, Ordering::Relaxed);
            }
            (found, timeouts, self_connects, local_errors)
        }));
    }
    let mut report = PortScanReport { attempts: total, ..Default::default() };
    for task in tasks {
        if let Ok((found, timeouts, self_connects, local_errors)) = task.await {
            for (host_index, port) in found {
                report.open.entry(hosts[host_index].ip).or_default().push(port);
            }
            report.timeouts += timeouts;
            report.self_connects += self_connects;
            report.local_errors += local_errors;
        }
    }
    for ports in report.open.values_mut() {
        ports.sort_unstable();
    }
    report.elapsed = started.elapsed();
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn finds_real_listeners_and_nothing_else() {
        // three real listeners on a loopback address of our own, plus a closed port between them
        let ip: IpAddr = "127.0.71.1".parse().unwrap();
        let mut listeners = Vec::new();
        for _ in 0..3 {
            listeners.push(TcpListener::bind((ip, 0)).await.unwrap());
        }
        let mut open: Vec<u16> = listeners.iter().map(|l| l.local_addr().unwrap().port()).collect();
        open.sort_unstable();
        let closed = TcpListener::bind((ip, 0)).await.unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let mut ports = open.clone();
        ports.push(closed_port);
        ports.extend([1, 2, 3]);
        let progress = Arc::new(ScanProgress::default());
        let report = scan(&[ip], &ports, &ScanLimits::default(), progress.clone()).await;
        assert_eq!(report.open.get(&ip), Some(&open));
        assert_eq!(report.open.len(), 1);
        assert_eq!(progress.done.load(Ordering::Relaxed), ports.len());
        assert_eq!(report.timeouts, 0);
    }

    #[tokio::test]
    async fn a_refused_socket_serves_the_next_ports() {
        // one worker, so one spare socket goes closed -> open -> closed -> open -> closed
        let ip: IpAddr = "127.0.71.5".parse().unwrap();
        let a = TcpListener::bind((ip, 0)).await.unwrap();
        let b = TcpListener::bind((ip, 0)).await.unwrap();
        let closed: Vec<u16> = {
            let tmp: Vec<TcpListener> = bind_several(ip, 3).await;
            tmp.iter().map(|l| l.local_addr().unwrap().port()).collect()
        };
        let (pa, pb) = (a.local_addr().unwrap().port(), b.local_addr().unwrap().port());
        let ports = vec![closed[0], pa, closed[1], pb, closed[2]];
        let limits = ScanLimits { global_concurrency: 1, host_concurrency: 1, ..Default::default() };
        let report = scan(&[ip], &ports, &limits, Arc::new(ScanProgress::default())).await;
        let mut want = vec![pa, pb];
        want.sort_unstable();
        assert_eq!(report.open.get(&ip), Some(&want), "{report:?}");
        assert_eq!((report.timeouts, report.local_errors), (0, 0));
    }

    /// `n` listeners on ephemeral ports of `ip`.
    async fn bind_several(ip: IpAddr, n: usize) -> Vec<TcpListener> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(TcpListener::bind((ip, 0)).await.unwrap());
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ipv6_loopback_and_several_hosts() {
        let v6 = TcpListener::bind("[::1]:0").await.unwrap();
        let v6_port = v6.local_addr().unwrap().port();
        let v4 = TcpListener::bind("127.0.71.2:0").await.unwrap();
        let v4_port = v4.local_addr().unwrap().port();
        let hosts: Vec<IpAddr> = vec!["::1".parse().unwrap(), "127.0.71.2".parse().unwrap()];
        let limits = ScanLimits { global_rate: Some(20_000), host_rate: Some(10_000), ..Default::default() };
        let report = scan(&hosts, &[v6_port, v4_port], &limits, Arc::new(ScanProgress::default())).await;
        let v6_open = report.open.get(&hosts[0]).cloned().unwrap_or_default();
        let v4_open = report.open.get(&hosts[1]).cloned().unwrap_or_default();
        assert!(v6_open.contains(&v6_port), "{report:?}");
        assert!(v4_open.contains(&v4_port), "{report:?}");
        // the v4 listener is on 127.0.71.2 only, the v6 one on ::1 only
        assert!(!v6_open.contains(&v4_port) || v4_port == v6_port);
    }

    #[tokio::test]
    async fn rate_limit_spaces_connects() {
        let ip: IpAddr = "127.0.71.3".parse().unwrap();
        let limits = ScanLimits { host_rate: Some(100), ..Default::default() };
        let started = Instant::now();
        let ports: Vec<u16> = (1..=20).collect();
        let report = scan(&[ip], &ports, &limits, Arc::new(ScanProgress::default())).await;
        // 20 connects at 100/s need at least 190 ms
        assert!(started.elapsed() >= Duration::from_millis(180), "{:?}", started.elapsed());
        assert!(report.open.is_empty());
    }

    #[tokio::test]
    async fn self_connect_is_recognised() {
        // bind a socket to a free port, then connect it to its own address: simultaneous open
        let ip: IpAddr = "127.0.71.4".parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(ip, 0)).unwrap();
        let local = socket.local_addr().unwrap();
        let stream = socket.connect(local).await.expect("linux completes a self-connect");
        assert!(is_self_connect(&stream));
        // and a real connection to a listener is not one
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let real = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        assert!(!is_self_connect(&real));
        // the scanner never reports the self-connected port open
        drop(stream);
        let report = scan(&[ip], &[local.port()], &ScanLimits::default(), Arc::new(ScanProgress::default())).await;
        assert!(report.open.is_empty());
    }

    #[test]
    fn timeout_adapts_to_answers_and_window_to_timeouts() {
        let host = HostState {
            ip: "127.0.0.1".parse().unwrap(),
            window: Semaphore::new(10),
            window_size: AtomicUsize::new(10),
            max_window: 10,
            answers: AtomicU64::new(0),
            srtt_us: AtomicU64::new(0),
            rttvar_us: AtomicU64::new(0),
            rate: None,
        };
        let max = Duration::from_secs(2);
        assert_eq!(host.timeout(max), max);
        for _ in 0..10 {
            host.on_answer(Duration::from_micros(50));
        }
        assert_eq!(host.timeout(max), MIN_CONNECT_TIMEOUT);
        host.on_timeout();
        host.on_timeout();
        assert_eq!(host.window_size.load(Ordering::Relaxed), 8);
        host.on_timeout();
        assert_eq!(host.window_size.load(Ordering::Relaxed), MIN_HOST_WINDOW);
    }
}
