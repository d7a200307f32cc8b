//! Service identification: which protocol answers on an open port, and the product and version
//! it announces.
//!
//! Order, like nmap's: first listen for a banner (SSH, FTP, SMTP, Telnet, VNC, MySQL, POP3,
//! IMAP speak first); if the port is silent, send the probe its well-known service suggests,
//! TLS (and HTTP inside it), plain HTTP and Redis at the same time, and take the first hit in
//! that order (the others are stopped). Each probe uses a fresh connection and a
//! bounded read, so a hostile server can make a probe fail but never make it hang or allocate
//! without limit. Raw-print ports ([`crate::ports::PRINTER_PORTS`]) are never written to.
//!
//! What is observed here (HTTP response, certificate chain, "answers without a password") is
//! kept in an [`Observation`] for the checks; nothing here decides what is a weakness.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::finding::Service;
use crate::ports::is_printer_port;
use crate::tls::{TlsClient, TlsSession};

/// Largest response read from one probe: enough for any banner, HTTP head and a directory
/// listing's first screen.
pub const MAX_RESPONSE: usize = 64 * 1024;
/// Longest banner kept in a [`Service`] (printable characters only).
const MAX_BANNER_CHARS: usize = 200;

/// Timeouts of the probes.
#[derive(Debug, Clone)]
pub struct ProbeTimeouts {
    /// Connect plus whole exchange of one probe.
    pub exchange: Duration,
    /// How long a port whose service usually speaks first is given to send a banner; a banner
    /// that arrives within this time wins even when the probes have started.
    pub banner: Duration,
    /// How long such a port is left alone before the probes start (at most `banner`): servers
    /// that talk first do so within one round trip of the handshake, so once this has passed
    /// the probes run while the banner wait goes on, and a silent port costs
    /// `max(banner, probe_delay + exchange)` instead of `banner + exchange`.
    pub probe_delay: Duration,
}

/// Identification timeouts on a loopback target (see [`ProbeTimeouts::for_target`]).
pub const LOOPBACK_EXCHANGE: Duration = Duration::from_millis(800);
pub const LOOPBACK_PROBE_DELAY: Duration = Duration::from_millis(200);

impl Default for ProbeTimeouts {
    fn default() -> Self {
        // nmap waits 5 s for a NULL-probe banner; servers that talk first do so at once after
        // the handshake, so 1 s covers a slow network while keeping a scan in seconds
        ProbeTimeouts { exchange: Duration::from_secs(3), banner: Duration::from_millis(1000), probe_delay: Duration::from_millis(1000) }
    }
}

impl ProbeTimeouts {
    /// The identification timeouts for one target. On loopback there is no network: a connect
    /// is answered in microseconds and every wait is the server's own processing time, so the
    /// probes start after [`LOOPBACK_PROBE_DELAY`] and give up after [`LOOPBACK_EXCHANGE`]
    /// (floors with room for a busy machine: a TLS handshake or a forked sshd takes
    /// milliseconds). The banner wait is kept, running alongside the probes, so a late banner
    /// still wins. Other targets keep the configured timeouts: over a network a slow greeting
    /// (an FTP server doing reverse DNS first) is common.
    pub fn for_target(&self, ip: IpAddr) -> ProbeTimeouts {
        if !ip.is_loopback() {
            return self.clone();
        }
        ProbeTimeouts {
            exchange: self.exchange.min(LOOPBACK_EXCHANGE),
            banner: self.banner,
            probe_delay: self.probe_delay.min(LOOPBACK_PROBE_DELAY),
        }
    }
}

/// An HTTP response head and the start of its body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// First header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Everything a probe learned about one port.
#[derive(Debug, Clone)]
pub struct Observation {
    pub service: Service,
    pub hostname: Option<String>,
    /// Response to `GET /` (over TLS when `service.tls`).
    pub http: Option<HttpResponse>,
    /// TLS session facts when the service speaks TLS (through rustls).
    pub tls: Option<TlsSession>,
    /// The service answered a data command without credentials (evidence).
    pub unauthenticated: Option<String>,
    /// FTP accepted the anonymous login (evidence).
    pub ftp_anonymous: Option<String>,
    /// SMTP offers STARTTLS (None when not SMTP or not asked).
    pub smtp_starttls: Option<bool>,
}

impl Observation {
    fn new(ip: IpAddr, port: u16, hostname: Option<String>, name: &str) -> Observation {
        Observation {
            service: Service {
                ip,
                port,
                protocol: "tcp".into(),
                name: name.into(),
                tls: false,
                product: None,
                version: None,
                banner: None,
            },
            hostname,
            http: None,
            tls: None,
            unauthenticated: None,
            ftp_anonymous: None,
            smtp_starttls: None,
        }
    }
}

/// Read until `complete` says so, the peer closes, [`MAX_RESPONSE`] bytes or the deadline.
async fn read_until<S: AsyncRead + Unpin>(stream: &mut S, wait: Duration, complete: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    while buf.len() < MAX_RESPONSE {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                let room = MAX_RESPONSE - buf.len();
                buf.extend_from_slice(&chunk[..n.min(room)]);
                if complete(&buf) {
                    break;
                }
            }
        }
    }
    buf
}

async fn connect(addr: SocketAddr, timeouts: &ProbeTimeouts) -> Option<TcpStream> {
    tokio::time::timeout(timeouts.exchange, TcpStream::connect(addr)).await.ok()?.ok()
}

/// Connect, send `request`, read the answer.
async fn exchange(addr: SocketAddr, request: &[u8], timeouts: &ProbeTimeouts, complete: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let Some(mut stream) = connect(addr, timeouts).await else { return Vec::new() };
    if stream.write_all(request).await.is_err() {
        return Vec::new();
    }
    read_until(&mut stream, timeouts.exchange, complete).await
}

/// A banner cut to printable ASCII on one line.
pub fn printable(bytes: &[u8]) -> String {
    let mut out: String = bytes
        .iter()
        .map(|&b| if (0x20..0x7f).contains(&b) { b as char } else if b == b'\r' || b == b'\n' { ' ' } else { '.' })
        .take(MAX_BANNER_CHARS)
        .collect();
    out.truncate(out.trim_end().len());
    out
}

fn ends_with_line(buf: &[u8]) -> bool {
    buf.ends_with(b"\n")
}

/// SMTP/FTP multi-line reply is complete when its last line has a space after the code.
fn reply_complete(buf: &[u8]) -> bool {
    if !buf.ends_with(b"\n") {
        return false;
    }
    let text = String::from_utf8_lossy(buf);
    text.lines().last().is_some_and(|l| l.len() >= 4 && l.as_bytes()[3] == b' ')
}

fn http_complete(buf: &[u8]) -> bool {
    // a complete head plus Content-Length bytes of body, or we read to close
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    match head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse::<usize>().ok()) {
        Some(len) => buf.len() >= head_end + 4 + len,
        None => false,
    }
}

/// Parse an HTTP response head (httparse) and keep the body start as text.
pub fn parse_http_response(bytes: &[u8]) -> Option<HttpResponse> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        // a head cut by MAX_RESPONSE still tells the status line
        Ok(httparse::Status::Partial) => bytes.len(),
        Err(_) => return None,
    };
    let status = response.code?;
    let headers = response
        .headers
        .iter()
        .filter(|h| !h.name.is_empty())
        .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
        .collect();
    let body = String::from_utf8_lossy(&bytes[head_len.min(bytes.len())..]).into_owned();
    Some(HttpResponse { status, headers, body })
}

/// `GET /` request with the virtual host.
pub fn http_request(host: &str, path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ward-scan\r\nAccept: */*\r\n{extra}Connection: close\r\n\r\n").into_bytes()
}

/// The Host header value for an address and optional name.
pub fn host_header(ip: IpAddr, port: u16, hostname: Option<&str>) -> String {
    let host = match (hostname, ip) {
        (Some(name), _) => name.to_string(),
        (None, IpAddr::V6(v6)) => format!("[{v6}]"),
        (None, IpAddr::V4(v4)) => v4.to_string(),
    };
    if port == 80 || port == 443 {
        host
    } else {
        format!("{host}:{port}")
    }
}

/// Product and version from an HTTP `Server` header (`nginx/1.22.1`, `Apache/2.4.57 (Debian)`).
pub fn parse_server_header(value: &str) -> (Option<String>, Option<String>) {
    let first = value.split_whitespace().next().unwrap_or("");
    let (product, version) = match first.split_once('/') {
        Some((p, v)) => (p, Some(v.to_string())),
        None => (first, None),
    };
    if product.is_empty() {
        return (None, None);
    }
    let product = match product {
        "Apache" => "Apache httpd",
        "Microsoft-IIS" => "Microsoft IIS",
        other => other,
    };
    (Some(product.to_string()), version.filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit())))
}

/// Product and version from an SSH identification line (`SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3`).
pub fn parse_ssh_banner(line: &str) -> (Option<String>, Option<String>) {
    let software = line.trim().splitn(3, '-').nth(2).unwrap_or("");
    let first = software.split_whitespace().next().unwrap_or("");
    match first.split_once('_') {
        Some((product, version)) => (Some(product.to_string()), Some(version.to_string())),
        None if !first.is_empty() => (Some(first.to_string()), None),
        None => (None, None),
    }
}

/// Product and version from an FTP or SMTP greeting.
pub fn parse_greeting(text: &str) -> (Option<String>, Option<String>) {
    let after = |needle: &str| -> Option<String> {
        let at = text.find(needle)? + needle.len();
        let version: String = text[at..].trim_start().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '.').collect();
        (!version.is_empty()).then_some(version)
    };
    for (needle, product) in [
        ("vsFTPd", "vsftpd"),
        ("ProFTPD", "ProFTPD"),
        ("Pure-FTPd", "Pure-FTPd"),
        ("FileZilla Server", "FileZilla Server"),
        ("Exim", "Exim"),
        ("Sendmail", "Sendmail"),
        // Python's smtpd ("220 host Python SMTP proxy version 0.3"), as nmap names it
        ("Python SMTP proxy version", "Python SMTP Proxy"),
    ] {
        if text.contains(needle) {
            return (Some(product.to_string()), after(needle));
        }
    }
    if text.contains("Postfix") {
        return (Some("Postfix".into()), None);
    }
    if text.contains("Microsoft ESMTP") {
        return (Some("Microsoft Exchange smtpd".into()), None);
    }
    (None, None)
}

/// MySQL/MariaDB initial handshake packet: protocol 10 then a NUL-terminated version.
pub fn parse_mysql_greeting(bytes: &[u8]) -> Option<(String, String)> {
    if bytes.len() < 6 || bytes[4] != 0x0a {
        return None;
    }
    let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], 0]) as usize;
    if len < 2 {
        return None;
    }
    let rest = &bytes[5..];
    let end = rest.iter().position(|&b| b == 0)?;
    let version = std::str::from_utf8(&rest[..end]).ok()?.to_string();
    if !version.chars().next()?.is_ascii_digit() {
        return None;
    }
    if let Some(maria) = version.find("-MariaDB") {
        // MariaDB 10+ announces "5.5.5-10.11.6-MariaDB-0+deb12u1"
        let v = version[..maria].trim_start_matches("5.5.5-").to_string();
        return Some(("MariaDB".into(), v));
    }
    Some(("MySQL".into(), version))
}

/// Well-known service of a port, used to pick the first probe and to name a silent service.
pub fn port_hint(port: u16) -> &'static str {
    match port {
        21 | 2121 => "ftp",
        22 | 2222 => "ssh",
        23 | 2323 => "telnet",
        25 | 465 | 587 => "smtp",
        53 => "domain",
        80 | 8000 | 8008 | 8080 | 8081 | 8888 => "http",
        110 => "pop3",
        111 => "rpcbind",
        135 => "msrpc",
        139 => "netbios-ssn",
        143 => "imap",
        389 => "ldap",
        443 | 8443 | 4443 => "https",
        445 => "microsoft-ds",
        636 => "ldaps",
        1433 => "ms-sql-s",
        1521 => "oracle",
        3306 => "mysql",
        3389 => "ms-wbt-server",
        5432 => "postgresql",
        5900..=5909 => "vnc",
        6379 => "redis",
        9100..=9107 => "jetdirect",
        9200 | 9201 => "elasticsearch",
        11211 => "memcached",
        27017 | 27018 => "mongodb",
        _ => "unknown",
    }
}

/// Identify the service on one open TCP port.
pub async fn identify(ip: IpAddr, port: u16, hostname: Option<String>, tls: &Arc<TlsClient>, timeouts: &ProbeTimeouts) -> Observation {
    let addr = SocketAddr::new(ip, port);
    let hint = port_hint(port);
    let mut obs = Observation::new(ip, port, hostname, hint);
    if is_printer_port(port) {
        // never write to a printer: name it from the port only
        return obs;
    }
    // 1. protocols whose server speaks first
    let talks_first = !matches!(
        hint,
        "http" | "https" | "redis" | "memcached" | "mongodb" | "elasticsearch" | "postgresql" | "ms-wbt-server" | "microsoft-ds" | "netbios-ssn" | "ldap" | "ldaps" | "msrpc"
    );
    // the banner connection: its read runs for the whole banner wait, alongside the probes once
    // `probe_delay` has passed without a banner
    let banner_wait = timeouts.banner;
    let mut banner = Box::pin(async move {
        let mut stream = connect(addr, timeouts).await?;
        let bytes = read_until(&mut stream, banner_wait, |b| ends_with_line(b) || b.len() >= 4 && b[0] != b'S' && b[0] != b'2').await;
        (!bytes.is_empty()).then_some((bytes, stream))
    });
    let mut banner_pending = false;
    if talks_first {
        match tokio::time::timeout(timeouts.probe_delay.min(banner_wait), &mut banner).await {
            Ok(Some((bytes, stream))) => {
                if classify_banner(&mut obs, &bytes, stream, timeouts).await {
                    return obs;
                }
            }
            Ok(None) => {}
            Err(_) => banner_pending = true,
        }
    }
    // 2. the port's own probe, then TLS, then HTTP, then Redis. Each probe has its own
    // connection, so they run at the same time and the first hit in this order wins: a silent
    // port costs one exchange timeout, not one per probe (nmap -sV spends most of its time here).
    let own = match hint {
        "redis" | "memcached" | "mongodb" | "postgresql" | "ms-wbt-server" | "microsoft-ds" | "netbios-ssn" | "ldap" | "elasticsearch" => Some(hint),
        _ => None,
    };
    // spawned, so a hit of a higher-priority probe ends the wait for the others at once
    let spawn = |probe: Option<&'static str>| {
        let (mut o, tls, timeouts) = (obs.clone(), tls.clone(), timeouts.clone());
        tokio::spawn(async move {
            let hit = match probe {
                Some(p) => run_probe(p, &mut o, addr, &tls, &timeouts).await,
                None => false,
            };
            (hit, o)
        })
    };
    let mut tasks: Vec<tokio::task::JoinHandle<(bool, Observation)>> =
        [own, Some("tls"), Some("http"), (own != Some("redis")).then_some("redis")].into_iter().flatten().map(|p| spawn(Some(p))).collect();
    // a banner that comes late still wins over the probes
    if banner_pending {
        if let Some((bytes, stream)) = banner.await {
            if classify_banner(&mut obs, &bytes, stream, timeouts).await {
                for task in &tasks {
                    task.abort();
                }
                return obs;
            }
        }
    }
    let mut winner = None;
    for task in tasks.iter_mut() {
        if let Ok((true, mut o)) = task.await {
            if o.service.banner.is_none() {
                o.service.banner = obs.service.banner.clone();
            }
            winner = Some(o);
            break;
        }
    }
    for task in &tasks {
        task.abort();
    }
    winner.unwrap_or(obs)
}

async fn run_probe(probe: &str, obs: &mut Observation, addr: SocketAddr, tls: &Arc<TlsClient>, timeouts: &ProbeTimeouts) -> bool {
    match probe {
        "tls" => probe_tls(obs, addr, tls, timeouts).await,
        "http" | "elasticsearch" => probe_http(obs, addr, timeouts).await,
        "redis" => probe_redis(obs, addr, timeouts).await,
        "memcached" => probe_memcached(obs, addr, timeouts).await,
        "mongodb" => probe_mongodb(obs, addr, timeouts).await,
        "postgresql" => probe_postgresql(obs, addr, timeouts).await,
        "ms-wbt-server" => probe_rdp(obs, addr, timeouts).await,
        "microsoft-ds" | "netbios-ssn" => probe_smb(obs, addr, timeouts).await,
        "ldap" => probe_ldap(obs, addr, timeouts).await,
        _ => false,
    }
}

/// Name the service from its first bytes; may continue the conversation (FTP anonymous, SMTP EHLO).
async fn classify_banner(obs: &mut Observation, banner: &[u8], mut stream: TcpStream, timeouts: &ProbeTimeouts) -> bool {
    let text = String::from_utf8_lossy(banner).into_owned();
    obs.service.banner = Some(printable(banner));
    if text.starts_with("SSH-") {
        obs.service.name = "ssh".into();
        let line = text.lines().next().unwrap_or("");
        (obs.service.product, obs.service.version) = parse_ssh_banner(line);
        obs.service.banner = Some(printable(line.as_bytes()));
        return true;
    }
    if banner[0] == 0xff {
        obs.service.name = "telnet".into();
        return true;
    }
    if text.starts_with("RFB ") {
        obs.service.name = "vnc".into();
        obs.service.product = Some("VNC".into());
        obs.service.version = text.get(4..11).map(|v| v.trim_start_matches('0').replace(".00", ".").to_string());
        return true;
    }
    if let Some((product, version)) = parse_mysql_greeting(banner) {
        obs.service.name = "mysql".into();
        obs.service.product = Some(product);
        obs.service.version = Some(version);
        return true;
    }
    if text.starts_with("+OK") {
        obs.service.name = "pop3".into();
        return true;
    }
    if text.starts_with("* OK") {
        obs.service.name = "imap".into();
        return true;
    }
    if text.starts_with("220") {
        let greeting = read_until(&mut stream, Duration::ZERO, reply_complete).await;
        let full = format!("{text}{}", String::from_utf8_lossy(&greeting));
        (obs.service.product, obs.service.version) = parse_greeting(&full);
        let upper = full.to_ascii_uppercase();
        let smtp = upper.contains("SMTP") || matches!(obs.service.port, 25 | 465 | 587) && !upper.contains("FTP");
        if smtp {
            obs.service.name = "smtp".into();
            obs.smtp_starttls = Some(smtp_offers_starttls(&mut stream, timeouts).await);
        } else {
            obs.service.name = "ftp".into();
            obs.ftp_anonymous = ftp_login(&mut stream, "anonymous", "ward-scan@example.org", timeouts).await.then(|| {
                "USER anonymous / PASS ward-scan@example.org answered 230 (logged in)".to_string()
            });
        }
        return true;
    }
    obs.service.name = "unknown".into();
    false
}

async fn smtp_offers_starttls(stream: &mut TcpStream, timeouts: &ProbeTimeouts) -> bool {
    if stream.write_all(b"EHLO ward-scan.invalid\r\n").await.is_err() {
        return false;
    }
    let reply = read_until(stream, timeouts.exchange, reply_complete).await;
    let _ = stream.write_all(b"QUIT\r\n").await;
    String::from_utf8_lossy(&reply).lines().any(|l| l.len() > 4 && l[4..].trim().eq_ignore_ascii_case("STARTTLS"))
}

/// One FTP USER/PASS attempt on a connection that has read the greeting; true on 230.
pub async fn ftp_login<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, user: &str, password: &str, timeouts: &ProbeTimeouts) -> bool {
    if stream.write_all(format!("USER {user}\r\n").as_bytes()).await.is_err() {
        return false;
    }
    let reply = read_until(stream, timeouts.exchange, reply_complete).await;
    if reply.starts_with(b"230") {
        return true;
    }
    if !reply.starts_with(b"331") {
        return false;
    }
    if stream.write_all(format!("PASS {password}\r\n").as_bytes()).await.is_err() {
        return false;
    }
    let reply = read_until(stream, timeouts.exchange, reply_complete).await;
    let _ = stream.write_all(b"QUIT\r\n").await;
    reply.starts_with(b"230")
}

async fn probe_http(obs: &mut Observation, addr: SocketAddr, timeouts: &ProbeTimeouts) -> bool {
    let host = host_header(addr.ip(), addr.port(), obs.hostname.as_deref());
    let bytes = exchange(addr, &http_request(&host, "/", ""), timeouts, http_complete).await;
    if !bytes.starts_with(b"HTTP/") {
        return false;
    }
    let Some(response) = parse_http_response(&bytes) else { return false };
    obs.service.name = "http".into();
    obs.service.banner = bytes.split(|&b| b == b'\n').next().map(printable);
    apply_http_identity(obs, &response);
    obs.http = Some(response);
    true
}

fn apply_http_identity(obs: &mut Observation, response: &HttpResponse) {
    if let Some(server) = response.header("server") {
        (obs.service.product, obs.service.version) = parse_server_header(server);
    }
    if response.body.contains("You Know, for Search") {
        obs.service.name = "elasticsearch".into();
        obs.service.product = Some("Elasticsearch".into());
        obs.service.version = json_string_after(&response.body, "\"number\"");
        if response.status == 200 {
            obs.unauthenticated = Some(format!("GET / answered {} with the cluster banner and no credentials", response.status));
        }
    }
}

/// The JSON string value that follows `key` (`"number" : "7.17.0"` → `7.17.0`).
fn json_string_after(text: &str, key: &str) -> Option<String> {
    let rest = &text[text.find(key)? + key.len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

async fn probe_tls(obs: &mut Observation, addr: SocketAddr, tls: &Arc<TlsClient>, timeouts: &ProbeTimeouts) -> bool {
    let Some(stream) = connect(addr, timeouts).await else { return false };
    let started = tokio::time::Instant::now();
    let Some((mut tls_stream, session)) = tls.handshake(stream, obs.hostname.as_deref(), addr.ip(), timeouts.exchange).await else {
        // a server that stayed silent until the timeout will not answer a raw hello either
        if started.elapsed() + Duration::from_millis(100) >= timeouts.exchange {
            return false;
        }
        // rustls speaks TLS 1.2 and 1.3 only: an old-protocol-only server still answers a raw hello
        if let Some(session) = crate::tls::raw_session(addr, obs.hostname.as_deref(), timeouts.exchange).await {
            obs.service.tls = true;
            obs.service.name = if port_hint(addr.port()) == "https" { "http".into() } else { "ssl".into() };
            obs.tls = Some(session);
            return true;
        }
        return false;
    };
    obs.service.tls = true;
    obs.tls = Some(session);
    let host = host_header(addr.ip(), addr.port(), obs.hostname.as_deref());
    let sent = tokio::time::timeout(timeouts.exchange, tls_stream.write_all(&http_request(&host, "/", ""))).await;
    if matches!(sent, Ok(Ok(()))) {
        let bytes = read_until(&mut tls_stream, timeouts.exchange, http_complete).await;
        if bytes.starts_with(b"HTTP/") {
            if let Some(response) = parse_http_response(&bytes) {
                obs.service.name = "http".into();
                obs.service.banner = bytes.split(|&b| b == b'\n').next().map(printable);
                apply_http_identity(obs, &response);
                obs.http = Some(response);
                return true;
            }
        }
    }
    obs.service.name = match port_hint(addr.port()) {
        "unknown" | "https" => "ssl".into(),
        other => other.into(),
    };
    true
}

async fn probe_redis(obs: &mut Observation, addr: SocketAddr, timeouts: &ProbeTimeouts) -> bool {
    let reply = exchange(addr, b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n", timeouts, |b| {
        // a bulk string "$<len>\r\n<data>\r\n" or an error line
        if b.starts_with(b"-") {
            return ends_with_line(b);
        }
        let text = String::from_utf8_lossy(b);
        let Some((len, _)) = text.strip_prefix('$').and_then(|t| t.split_once("\r\n")) else { return false };
        len.parse::<usize>().map(|n| b.len() >= n + len.len() + 5).unwrap_or(true)
    })
    .await;
    let text = String::from_utf8_lossy(&reply);
    if text.starts_with("-NOAUTH") || text.starts_with("-ERR") && text.contains("auth") {
        obs.service.name = "redis".into();
        obs.service.product = Some("Redis".into());
        return true;
    }
    if text.starts_with('$') && text.contains("redis_version:") {
        obs.service.name = "redis".into();
        obs.service.product = Some("Redis".into());
        obs.service.version = text.lines().find_map(|l| l.strip_prefix("redis_version:")).map(|v| v.trim().to_string());
        obs.unauthenticated = Some(format!("INFO server answered without AUTH: redis_version:{}", obs.service.version.as_deref().unwrap_or("?")));
        return true;
    }
    false
}

async fn probe_memcached(obs: &mut Observation, addr: SocketAddr, timeouts: &ProbeTimeouts) -> bool {
    let reply = exchange(addr, b"version\r\n", timeouts, ends_with_line).await;
    let text = String::from_utf8_lossy(&reply);
    let Some(version) = text.strip_prefix("VERSION ") else { return false };
    obs.service.name = "memcached".into();
    obs.service.product = Some("Memcached".into());
    obs.service.version = Some(version.trim().to_string());
    obs.unauthenticated = Some(format!("the version command answered without authentication: {}", text.trim()));
    true
}

/// A MongoDB OP_MSG with one BSON document `{<command>: 1, $db: "admin"}`.
pub fn mongodb_command(command: &str) -> Vec<u8> {
    let mut doc = Vec::new();
    doc.push(0x10); // int32
    doc.extend_from_slice(command.as_bytes());
    doc.push(0);
    doc.extend_from_slice(&1i32.to_le_bytes());
    doc.push(0x02); // string
    doc.extend_from_slice(b"$db\0");
    doc.extend_from_slice(&6i32.to_le_bytes());
    doc.extend_from_slice(b"admin\0");
    doc.push(0);
    let doc_len = (doc.len() + 4) as i32;
    let mut body = Vec::new();
    body.extend_from_slice(&0u32.to_le_bytes()); // flag bits
    body.push(0); // section kind 0: body
    body.extend_from_slice(&doc_len.to_le_bytes());
    body.extend_from_slice(&doc);
    let total = (16 + body.len()) as i32;
    let mut msg = Vec::new();
    msg.extend_from_slice(&total.to_le_bytes());
    msg.extend_from_slice(&1i32.to_le_bytes()); // request id
    msg.extend_from_slice(&0i32.to_le_bytes()); // response to
    msg.extend_from_slice(&2013i32.to_le_bytes()); // OP_MSG
    msg.extend_from_slice(&body);
    msg
}

fn mongodb_reply_complete(b: &[u8]) -> bool {
    b.len() >= 4 && b.len() >= i32::from_le_bytes([b[0], b[1], b[2], b[3]]).max(0) as usize
}

/// A BSON string field's value, found by its key anywhere in the reply.
fn bson_string(reply: &[u8], key: &str) -> Option<String> {
    let mut needle = vec![0x02];
    needle.extend_from_slice(key.as_bytes());
    needle.push(0);
    let at = reply.windows(needle.len()).position(|w| w == needle.as_slice())? + needle.len();
    let len = i32::from_le_bytes(reply.get(at..at + 4)?.try_into().ok()?) as usize;
    let value = reply.get(at + 4..at + 4 + len.checked_sub(1)?)?;
    Some(String::from_utf8_lossy(value).into_owned())
}

/// The BSON double `ok` field of a reply.
fn bson_ok(reply: &[u8]) -> Option<f64> {
    let needle = b"\x01ok\x00";
    let at = reply.windows(needle.len()).position(|w| w == needle)? + needle.len();
    Some(f64::from_le_bytes(reply.get(at..at + 8)?.try_into().ok()?))
}

async fn probe_mongodb(obs: &mut Observation, addr: SocketAddr, timeouts: &ProbeTimeouts) -> bool {
    let reply = exchange(addr, &mongodb_command("buildInfo"), timeouts, mongodb_reply_complete).await;
    if reply.len() < 21 || i32::from_le_bytes([reply[12], reply[13], reply[14], reply[15]]) != 2013 {
        return false;
    }
    obs.service.name = "mongodb".into();
    obs.service.product = Some("MongoDB".into());
    obs.service.version = bson_string(&reply, "version");
    let list = exchange(addr, &mongodb_command("listDatabases"), timeouts, mongodb_reply_complete).await;
    if bson_ok(&list) == Some(1.0) {
        obs.unauthenticated = Some("listDatabases answered ok:1 without credentials".into());
    }
    true
}

async fn probe_postgresql(obs: &mut Observation, addr: SocketAddr, timeouts: &ProbeTimeouts) -> bool {
    // SSLRequest: length 8, code 80877103; a PostgreSQL server answers one byte, S or N
    let reply = exchange(addr, &[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f], timeouts, |b| !b.is_empty()).await;
    if reply.len() == 1 && (reply[0] == b'S' || reply[0] == b'N') {
        obs.service.name = "postgresql".into();
        obs.service.product = Some("PostgreSQL".into());
        return true;
    }
    false
}

/// X.224 Connection Request carrying an RDP negotiation request (TLS | CredSSP).
pub const RDP_CONNECTION_REQUEST: [u8; 19] =
    [0x03, 0x00, 0x00, 0x13, 0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00];

/// An RDP server answers a TPKT (version 3) with an X.224 Connection Confirm (0xd0).
pub fn is_rdp_confirm(reply: &[u8]) -> bool {
    reply.len() >= 6 && reply[0] == 0x03 && reply[1] == 0x00 && reply[5] == 0xd0
}

async fn probe_rdp(obs: &mut Observation, addr: SocketAddr, timeouts: &ProbeTimeouts) -> bool {
    let reply = exchange(addr, &RDP_CONNECTION_REQUEST, timeouts, |b| b.len() >= 11).await;
    if is_rdp_confirm(&reply) {
        obs.service.name = "ms-wbt-server".into();
        obs.service.product = Some("RDP".into());
        return true;
    }
    false
}

/// SMB2 NEGOTIATE request (dialects 2.0.2, 2.1, 3.0, 3.0.2) in a NetBIOS session frame.
pub fn smb2_negotiate() -> Vec<u8> {
    let mut smb = Vec::new();
    smb.extend_from_slice(b"\xfeSMB");
    smb.extend_from_slice(&64u16.to_le_bytes()); // header length
    smb.extend_from_slice(&[0; 2]); // credit charge
    smb.extend_from_slice(&[0; 4]); // status
    smb.extend_from_slice(&0u16.to_le_bytes()); // command NEGOTIATE
    smb.extend_from_slice(&1u16.to_le_bytes()); // credits
    smb.extend_from_slice(&[0; 4]); // flags
    smb.extend_from_slice(&[0; 4]); // next command
    smb.extend_from_slice(&[0; 8]); // message id
    smb.extend_from_slice(&[0; 4]); // reserved
    smb.extend_from_slice(&[0; 4]); // tree id
    smb.extend_from_slice(&[0; 8]); // session id
    smb.extend_from_slice(&[0; 16]); // signature
    let dialects: [u16; 4] = [0x0202, 0x0210, 0x0300, 0x0302];
    smb.extend_from_slice(&36u16.to_le_bytes()); // structure size
    smb.extend_from_slice(&(dialects.len() as u16).to_le_bytes());
    smb.extend_from_slice(&1u16.to_le_bytes()); // security mode: signing enabled
    smb.extend_from_slice(&[0; 2]);
    smb.extend_from_slice(&[0; 4]); // capabilities
    smb.extend_from_slice(&[0x77; 16]); // client guid
    smb.extend_from_slice(&[0; 8]); // start time
    for d in dialects {
        smb.extend_from_slice(&d.to_le_bytes());
    }
    let mut frame = vec![0, 0, 0, 0];
    frame[1..4].copy_from_slice(&(smb.len() as u32).to_be_bytes()[1..4]);
    frame.extend_from_slice(&smb);
    frame
}

async fn probe_smb(obs: &mut Observation, addr: SocketAddr, timeouts: &ProbeTimeouts) -> bool {
    let reply = exchange(addr, &smb2_negotiate(), timeouts, |b| b.len() >= 8).await;
    if reply.len() >= 8 && (&reply[4..8] == b"\xfeSMB" || &reply[4..8] == b"\xffSMB") {
        obs.service.name = if addr.port() == 139 { "netbios-ssn".into() } else { "microsoft-ds".into() };
        obs.service.product = Some("SMB".into());
        return true;
    }
    false
}

/// LDAPv3 anonymous simple bind, message id 1.
pub const LDAP_ANONYMOUS_BIND: [u8; 14] = [0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00, ];

/// An LDAP BindResponse: SEQUENCE, message id 1, [APPLICATION 1].
pub fn is_ldap_bind_response(reply: &[u8]) -> bool {
    if reply.len() < 7 || reply[0] != 0x30 {
        return false;
    }
    // skip the SEQUENCE length (short or long form)
    let mut i = 2;
    if reply[1] & 0x80 != 0 {
        i += (reply[1] & 0x7f) as usize;
    }
    reply.get(i..i + 4) == Some(&[0x02, 0x01, 0x01, 0x61][..])
}

async fn probe_ldap(obs: &mut Observation, addr: SocketAddr, timeouts: &ProbeTimeouts) -> bool {
    let reply = exchange(addr, &LDAP_ANONYMOUS_BIND, timeouts, |b| b.len() >= 14).await;
    if is_ldap_bind_response(&reply) {
        obs.service.name = "ldap".into();
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_product_and_version_from_banners() {
        assert_eq!(
            parse_ssh_banner("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"),
            (Some("OpenSSH".into()), Some("9.2p1".into()))
        );
        assert_eq!(parse_greeting("220 (vsFTPd 3.0.3)"), (Some("vsftpd".into()), Some("3.0.3".into())));
        assert_eq!(parse_greeting("220 mx.example.org ESMTP Exim 4.96 Sun, 22 Nov 2026"), (Some("Exim".into()), Some("4.96".into())));
        assert_eq!(parse_greeting("220 mx Python SMTP proxy version 0.3"), (Some("Python SMTP Proxy".into()), Some("0.3".into())));
        assert_eq!(parse_server_header("nginx/1.22.1"), (Some("nginx".into()), Some("1.22.1".into())));
        assert_eq!(parse_server_header("Apache/2.4.49 (Unix)"), (Some("Apache httpd".into()), Some("2.4.49".into())));
        assert_eq!(parse_server_header("nginx"), (Some("nginx".into()), None));
        let mut greeting = vec![0x4a, 0, 0, 0, 0x0a];
        greeting.extend_from_slice(b"5.5.5-10.11.6-MariaDB-0+deb12u1\0rest-of-packet-bytes-here..........");
        assert_eq!(parse_mysql_greeting(&greeting), Some(("MariaDB".into(), "10.11.6".into())));
        assert_eq!(parse_mysql_greeting(b"\x05\0\0\0\x0a"), None);
        assert!(is_ldap_bind_response(&[0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00]));
        assert!(!is_ldap_bind_response(&[0x30]));
        assert!(is_rdp_confirm(&[0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0, 0, 0, 0, 0]));
        assert_eq!(json_string_after("{\"number\" : \"7.17.0\",", "\"number\""), Some("7.17.0".into()));
    }

    #[test]
    fn loopback_targets_get_short_identification_waits() {
        let t = ProbeTimeouts::default();
        let lo = t.for_target("127.0.77.10".parse().unwrap());
        assert_eq!((lo.exchange, lo.probe_delay, lo.banner), (LOOPBACK_EXCHANGE, LOOPBACK_PROBE_DELAY, t.banner));
        assert_eq!(t.for_target("::1".parse().unwrap()).exchange, LOOPBACK_EXCHANGE);
        let far = t.for_target("192.0.2.7".parse().unwrap());
        assert_eq!((far.exchange, far.probe_delay, far.banner), (t.exchange, t.probe_delay, t.banner));
    }

    #[test]
    fn wire_messages_have_consistent_lengths() {
        let smb = smb2_negotiate();
        assert_eq!(u32::from_be_bytes([0, smb[1], smb[2], smb[3]]) as usize, smb.len() - 4);
        assert_eq!(&smb[4..8], b"\xfeSMB");
        let mongo = mongodb_command("buildInfo");
        assert_eq!(i32::from_le_bytes(mongo[0..4].try_into().unwrap()) as usize, mongo.len());
        let doc_len = i32::from_le_bytes(mongo[21..25].try_into().unwrap()) as usize;
        assert_eq!(21 + doc_len, mongo.len());
        assert_eq!(RDP_CONNECTION_REQUEST[3] as usize, RDP_CONNECTION_REQUEST.len());
        assert_eq!(LDAP_ANONYMOUS_BIND[1] as usize + 2, LDAP_ANONYMOUS_BIND.len());
    }

    #[test]
    fn http_parsing_survives_garbage() {
        let r = parse_http_response(b"HTTP/1.1 301 Moved\r\nLocation: https://x/\r\nServer: nginx\r\n\r\nbody").unwrap();
        assert_eq!((r.status, r.header("location"), r.body.as_str()), (301, Some("https://x/"), "body"));
        assert!(parse_http_response(b"\x00\x01garbage").is_none());
        assert!(parse_http_response(b"HTTP/1.1 200").is_none() || parse_http_response(b"HTTP/1.1 200").is_some());
        assert_eq!(printable(b"SSH-2.0-x\r\n\x01"), "SSH-2.0-x  .");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn identifies_the_machines_own_database_servers() {
        // the rust-svc machine runs PostgreSQL on 5432 and MariaDB on 3306 on loopback
        let tls = Arc::new(TlsClient::new(&[]));
        let timeouts = ProbeTimeouts::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for (port, name) in [(5432u16, "postgresql"), (3306, "mysql")] {
            if TcpStream::connect((ip, port)).await.is_err() {
                eprintln!("skipping {name}: nothing listens on 127.0.0.1:{port} (the rust-svc machine starts it)");
                continue;
            }
            let obs = identify(ip, port, None, &tls, &timeouts).await;
            assert_eq!(obs.service.name, name, "{obs:?}");
        }
    }
}
