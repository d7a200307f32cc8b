//! The session kinds of the mix and how each is scripted: which hosts talk, what they say,
//! how long they wait. TCP kinds (HTTP, TLS, bulk) are played lazily by [`TcpConv`]; the small
//! kinds (DNS, ICMP, fragmented UDP, malformed) are pre-built lists of frames.

use std::collections::VecDeque;
use std::fmt::Write as _;

use etherparse::VlanId;

use super::content::{self, addr_for, fnv, DnsQType, Pools, RANDOM_POOL, TEXT_POOL};
use super::frame::{fragment_ipv4, ipv4_header_checksum, Addrs, Endpoints, Side, TcpFlags};
use super::rng::Rng;
use super::tcp::{Close, Message, Piece, TcpConv};
use super::{Ctx, FlowKind, GenError};

/// MAC of the office's default gateway (every external flow crosses it).
const GATEWAY_MAC: [u8; 6] = [0x00, 0x1b, 0x21, 0x3a, 0x4f, 0x01];
/// MAC and addresses of the office's own DNS resolver.
const RESOLVER_MAC: [u8; 6] = [0x00, 0x50, 0x56, 0x9a, 0x00, 0x53];
const RESOLVER_V4: [u8; 4] = [10, 20, 0, 53];
const RESOLVER_V6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53];
/// Public resolvers some hosts are configured with.
const PUBLIC_RESOLVERS: &[[u8; 4]] = &[[8, 8, 8, 8], [1, 1, 1, 1], [9, 9, 9, 9]];
/// VLANs of the tagged office segments (staff, poll-book, guest, management).
const VLANS: &[u16] = &[10, 20, 30, 110];
/// Largest IPv4 fragment payload on a 1500-byte MTU (1500 − 20, multiple of 8).
const FRAG_PAYLOAD: usize = 1480;

/// One live session.
pub enum Session {
    Tcp(Box<TcpConv>),
    Frames(FrameList),
}

/// Pre-built frames with the delay after each.
pub struct FrameList {
    v6: bool,
    vlan: bool,
    frames: VecDeque<FrameOut>,
}

struct FrameOut {
    frame: Vec<u8>,
    /// Wire length when the frame is snap-truncated.
    orig_len: Option<u32>,
    delay_after: u64,
}

impl FrameList {
    fn new(ep: &Endpoints) -> Self {
        FrameList { v6: ep.is_v6(), vlan: ep.vlan.is_some(), frames: VecDeque::with_capacity(4) }
    }
    fn push(&mut self, frame: Vec<u8>, delay_after: u64) {
        self.frames.push_back(FrameOut { frame, orig_len: None, delay_after });
    }
}

impl Session {
    pub fn new(kind: FlowKind, ctx: &mut Ctx<'_>) -> Result<Session, GenError> {
        match kind {
            FlowKind::Http => http(ctx),
            FlowKind::Dns => dns(ctx),
            FlowKind::Tls => tls(ctx),
            FlowKind::Bulk => bulk(ctx),
            FlowKind::Icmp => icmp(ctx),
            FlowKind::UdpFragments => frag(ctx),
            FlowKind::Malformed => malformed(ctx),
        }
    }

    /// Emits the next frame into `ctx.frame`; `None` when it was the session's last.
    pub fn step(&mut self, ctx: &mut Ctx<'_>) -> Result<Option<u64>, GenError> {
        match self {
            Session::Tcp(c) => c.step(&mut ctx.rng, ctx.pools, &mut ctx.frame, &mut ctx.payload),
            Session::Frames(f) => {
                let Some(mut out) = f.frames.pop_front() else {
                    return Err(GenError::Build("a frame session was scheduled with no frame left".into()));
                };
                std::mem::swap(&mut ctx.frame, &mut out.frame);
                ctx.orig_len = out.orig_len;
                Ok(if f.frames.is_empty() { None } else { Some(out.delay_after) })
            }
        }
    }

    pub fn is_v6(&self) -> bool {
        match self {
            Session::Tcp(c) => c.ep.is_v6(),
            Session::Frames(f) => f.v6,
        }
    }

    pub fn is_vlan(&self) -> bool {
        match self {
            Session::Tcp(c) => c.ep.vlan.is_some(),
            Session::Frames(f) => f.vlan,
        }
    }
}

/// True when `frame` is an IPv4 fragment (MF set or non-zero offset).
pub fn is_fragment(frame: &[u8]) -> bool {
    let l2 = if frame.len() >= 14 && frame[12..14] == [0x81, 0x00] { 18 } else { 14 };
    if frame.len() < l2 + 20 || frame[l2 - 2..l2] != [0x08, 0x00] {
        return false;
    }
    let ff = u16::from_be_bytes([frame[l2 + 6], frame[l2 + 7]]);
    ff & 0x3fff != 0
}

// ---------------------------------------------------------------------------------------------
// Hosts and endpoints

struct Host {
    idx: u32,
    v6_capable: bool,
    vlan: Option<VlanId>,
}

fn pick_host(ctx: &mut Ctx<'_>) -> Host {
    let idx = ctx.rng.below(u64::from(ctx.opts.hosts)) as u32;
    // Per-host properties derive from the host index, so a host is always on the same VLAN.
    let h = fnv(&idx.to_le_bytes()) ^ ctx.opts.seed;
    let v6_capable = ((h % 10_000) as f64) < ctx.opts.ipv6_share * 10_000.0;
    let vlan = if (((h >> 16) % 10_000) as f64) < ctx.opts.vlan_share * 10_000.0 {
        VlanId::try_new(VLANS[((h >> 32) % VLANS.len() as u64) as usize]).ok()
    } else {
        None
    };
    Host { idx, v6_capable, vlan }
}

fn client_v4(idx: u32) -> [u8; 4] {
    let n = idx + 10;
    [10, 20, (n >> 8) as u8, n as u8]
}

fn client_v6(idx: u32) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = 0xfd;
    a[5] = 0x20;
    a[12..].copy_from_slice(&(idx + 0x100).to_be_bytes());
    a
}

fn server_v6(name: &str) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x26, 0x06, 0x47, 0x00]);
    a[8..].copy_from_slice(&fnv(name.as_bytes()).to_be_bytes());
    a
}

enum Server<'n> {
    /// An internet server known by name.
    External(&'n str),
    /// The office resolver.
    Resolver,
    /// A public resolver (v4 only).
    PublicResolver([u8; 4]),
}

fn endpoints(ctx: &mut Ctx<'_>, host: &Host, server: Server<'_>, server_port: u16, allow_v6: bool) -> Endpoints {
    let rng = &mut ctx.rng;
    let v6 = allow_v6 && host.v6_capable && !matches!(server, Server::PublicResolver(_)) && rng.chance(0.7);
    let (server_mac, addrs) = match server {
        Server::External(name) => (
            GATEWAY_MAC,
            if v6 {
                Addrs::V6 { client: client_v6(host.idx), server: server_v6(name) }
            } else {
                Addrs::V4 { client: client_v4(host.idx), server: addr_for(name, 0) }
            },
        ),
        Server::Resolver => (
            RESOLVER_MAC,
            if v6 {
                Addrs::V6 { client: client_v6(host.idx), server: RESOLVER_V6 }
            } else {
                Addrs::V4 { client: client_v4(host.idx), server: RESOLVER_V4 }
            },
        ),
        Server::PublicResolver(a) => (GATEWAY_MAC, Addrs::V4 { client: client_v4(host.idx), server: a }),
    };
    let n = host.idx.to_be_bytes();
    let internal = server_mac == RESOLVER_MAC;
    Endpoints {
        client_mac: [0x02, 0x57, 0x41, n[1], n[2], n[3]],
        server_mac,
        addrs,
        client_port: rng.range(49_152, 65_535) as u16,
        server_port,
        vlan: host.vlan,
        client_ttl: if host.idx.is_multiple_of(5) { 64 } else { 128 },
        server_ttl: if internal { 64 } else { rng.range(44, 58) as u8 },
    }
}

/// Round-trip time to a server: LAN, regional, or cross-country.
fn rtt(rng: &mut Rng, internal: bool) -> u64 {
    if internal {
        rng.range(150, 900)
    } else {
        rng.log_range(8_000, 90_000)
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

fn hex(rng: &mut Rng, n: usize) -> String {
    let mut s = String::with_capacity(n);
    for _ in 0..n {
        s.push(char::from(b"0123456789abcdef"[rng.below(16) as usize]));
    }
    s
}

fn http_request(rng: &mut Rng, host: &str, ua: &str, post: bool, keep_alive: bool) -> (Vec<u8>, &'static str) {
    let mut r = String::with_capacity(512);
    let path;
    let body = if post {
        path = *rng.pick(content::POST_PATHS);
        if rng.chance(0.5) {
            Some((
                "application/x-www-form-urlencoded",
                format!(
                    "first_name=Jane&last_name=Doe{}&dob=19{:02}-0{}-1{}&county=017&csrf={}",
                    rng.below(1000),
                    rng.range(40, 99),
                    rng.range(1, 9),
                    rng.range(0, 9),
                    hex(rng, 32)
                ),
            ))
        } else {
            Some((
                "application/json",
                format!(
                    "{{\"precinct\":{},\"reported\":{},\"ballots_cast\":{},\"device\":\"PB-{}\"}}",
                    rng.below(4000),
                    rng.below(2) == 1,
                    rng.below(50_000),
                    hex(rng, 8)
                ),
            ))
        }
    } else {
        path = *rng.pick(content::HTTP_PATHS);
        None
    };
    let method = if post { "POST" } else { "GET" };
    let _ = write!(r, "{method} {path}");
    if path.ends_with('=') {
        let _ = write!(r, "{}", rng.below(1_000_000));
    }
    let _ = write!(r, " HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\n");
    r.push_str("Accept: text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8\r\n");
    r.push_str("Accept-Encoding: gzip, deflate\r\nAccept-Language: en-US,en;q=0.9\r\n");
    if rng.chance(0.7) {
        let _ = write!(
            r,
            "Cookie: SESSIONID={}; _ga=GA1.2.{}.{}; consent=1\r\n",
            hex(rng, 32),
            rng.below(2_000_000_000),
            1_790_000_000 + rng.below(3_000_000)
        );
    }
    if rng.chance(0.3) {
        let _ = write!(r, "Referer: http://{host}/\r\n");
    }
    r.push_str(if keep_alive { "Connection: keep-alive\r\n" } else { "Connection: close\r\n" });
    if let Some((ct, b)) = &body {
        let _ = write!(r, "Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n{b}", b.len());
    } else {
        r.push_str("\r\n");
    }
    (r.into_bytes(), path)
}

/// Content type and whether the body is text, from the path.
fn content_type(path: &str) -> (&'static str, bool) {
    let p = path.split('?').next().unwrap_or(path);
    if p.ends_with(".js") {
        ("application/javascript", true)
    } else if p.ends_with(".css") {
        ("text/css", true)
    } else if p.ends_with(".json") || p.starts_with("/api/") {
        ("application/json", true)
    } else if p.ends_with(".png") || p.ends_with(".ico") {
        ("image/png", false)
    } else if p.ends_with(".pdf") {
        ("application/pdf", false)
    } else if p.ends_with(".cab") || p.starts_with("/MFE") {
        ("application/octet-stream", false)
    } else {
        ("text/html; charset=utf-8", true)
    }
}

fn http_response(rng: &mut Rng, pools: &Pools, path: &str, close: bool) -> Vec<Piece> {
    let mut h = String::with_capacity(400);
    let date = "Tue, 03 Nov 2026 13:05:22 GMT";
    let server = *rng.pick(&["nginx/1.24.0", "Microsoft-IIS/10.0", "Apache/2.4.58 (Unix)", "cloudflare", "ECAcc (dcd/7D5A)"]);
    let conn = if close { "close" } else { "keep-alive" };
    let roll = rng.unit();
    if roll < 0.10 {
        let _ = write!(h, "HTTP/1.1 304 Not Modified\r\nDate: {date}\r\nServer: {server}\r\nETag: \"{}\"\r\nConnection: {conn}\r\n\r\n", hex(rng, 16));
        return vec![Piece::Owned(h.into_bytes())];
    }
    if roll < 0.15 || roll < 0.20 {
        let (status, body) = if roll < 0.15 {
            ("404 Not Found", "<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>\n".to_string())
        } else {
            ("302 Found", format!("<html><body>Moved to <a href=\"https://{path}\">here</a></body></html>\n"))
        };
        let _ = write!(h, "HTTP/1.1 {status}\r\nDate: {date}\r\nServer: {server}\r\nContent-Type: text/html\r\n");
        if status.starts_with("302") {
            let _ = write!(h, "Location: https://www.example-county.gov{path}\r\n");
        }
        let _ = write!(h, "Content-Length: {}\r\nConnection: {conn}\r\n\r\n{body}", body.len());
        return vec![Piece::Owned(h.into_bytes())];
    }
    let (ct, text) = content_type(path);
    let _ = write!(h, "HTTP/1.1 200 OK\r\nDate: {date}\r\nServer: {server}\r\nContent-Type: {ct}\r\n");
    let _ = write!(h, "Cache-Control: max-age={}\r\n", rng.below(3600));
    if rng.chance(0.5) {
        let _ = write!(h, "Set-Cookie: SESSIONID={}; Path=/; HttpOnly; Secure\r\n", hex(rng, 32));
    }
    let _ = write!(h, "Connection: {conn}\r\n");
    if !text {
        let len = rng.log_range(400, 400_000) as usize;
        let _ = write!(h, "Content-Length: {len}\r\n\r\n");
        return vec![Piece::Owned(h.into_bytes()), Piece::Random { off: rng.below(RANDOM_POOL as u64) as usize, len }];
    }
    let style = rng.unit();
    if style < 0.25 {
        // gzip, with a length or chunked
        let i = rng.below(pools.gzip.len() as u64) as usize;
        h.push_str("Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n");
        if rng.chance(0.5) {
            let _ = write!(h, "Content-Length: {}\r\n\r\n", pools.gzip[i].len());
            return vec![Piece::Owned(h.into_bytes()), Piece::Gzip(i)];
        }
        h.push_str("Transfer-Encoding: chunked\r\n\r\n");
        let mut pieces = vec![Piece::Owned(h.into_bytes())];
        let gz = &pools.gzip[i];
        let mut off = 0;
        let mut chunk = Vec::new();
        while off < gz.len() {
            let n = (rng.range(1_000, 8_000) as usize).min(gz.len() - off);
            chunk.clear();
            let _ = std::io::Write::write_all(&mut chunk, format!("{n:x}\r\n").as_bytes());
            chunk.extend_from_slice(&gz[off..off + n]);
            chunk.extend_from_slice(b"\r\n");
            pieces.push(Piece::Owned(chunk.clone()));
            off += n;
        }
        pieces.push(Piece::Owned(b"0\r\n\r\n".to_vec()));
        return pieces;
    }
    let len = rng.log_range(300, 250_000) as usize;
    let off = rng.below(TEXT_POOL as u64) as usize;
    if style < 0.45 {
        h.push_str("Transfer-Encoding: chunked\r\n\r\n");
        let mut pieces = vec![Piece::Owned(h.into_bytes())];
        let mut done = 0;
        while done < len {
            let n = (rng.range(512, 16_384) as usize).min(len - done);
            pieces.push(Piece::Owned(format!("{n:x}\r\n").into_bytes()));
            pieces.push(Piece::Text { off: off + done, len: n });
            pieces.push(Piece::Owned(b"\r\n".to_vec()));
            done += n;
        }
        pieces.push(Piece::Owned(b"0\r\n\r\n".to_vec()));
        return pieces;
    }
    let _ = write!(h, "Content-Length: {len}\r\n\r\n");
    vec![Piece::Owned(h.into_bytes()), Piece::Text { off, len }]
}

fn http(ctx: &mut Ctx<'_>) -> Result<Session, GenError> {
    let host = pick_host(ctx);
    let name = *ctx.rng.pick(content::DOMAINS);
    let ep = endpoints(ctx, &host, Server::External(name), 80, true);
    let rng = &mut ctx.rng;
    let ua = *rng.pick(content::USER_AGENTS);
    let exchanges = rng.range(1, 4);
    let mut msgs = Vec::with_capacity(exchanges as usize * 2);
    let mut close = Close::ClientFin;
    for i in 0..exchanges {
        let last = i + 1 == exchanges;
        let conn_close = last && rng.chance(0.4);
        let post = rng.chance(0.15);
        let (req, path) = http_request(rng, name, ua, post, !conn_close);
        let think = if i == 0 { rng.range(50, 400) } else { rng.log_range(5_000, 15_000_000) };
        msgs.push(Message::new(Side::Client, think).bytes(req));
        let mut resp = Message::new(Side::Server, rng.log_range(200, 60_000));
        resp.pieces = http_response(rng, ctx.pools, path, conn_close);
        msgs.push(resp);
        if conn_close {
            close = Close::ServerFin;
        }
    }
    if rng.chance(0.05) {
        close = Close::ClientRst;
    }
    let r = rtt(rng, false);
    let bw = rng.range(20, 500);
    Ok(Session::Tcp(Box::new(TcpConv::new(rng, ep, msgs, r, bw, close))))
}

// ---------------------------------------------------------------------------------------------
// TLS

fn app_data_pieces(rng: &mut Rng, mut len: usize) -> Vec<Piece> {
    let mut out = Vec::with_capacity(len / content::TLS_MAX_FRAGMENT * 2 + 2);
    while len > 0 {
        let n = len.min(content::TLS_MAX_FRAGMENT + 16);
        let mut hdr = vec![23, 3, 3];
        hdr.extend_from_slice(&(n as u16).to_be_bytes());
        out.push(Piece::Owned(hdr));
        out.push(Piece::Random { off: rng.below(RANDOM_POOL as u64) as usize, len: n });
        len -= n;
    }
    out
}

fn tls(ctx: &mut Ctx<'_>) -> Result<Session, GenError> {
    let host = pick_host(ctx);
    let ci = ctx.rng.below(ctx.pools.certs.len() as u64) as usize;
    let chain = &ctx.pools.certs[ci];
    let name = chain.server_name;
    let ep = endpoints(ctx, &host, Server::External(name), 443, true);
    let rng = &mut ctx.rng;
    let pools = ctx.pools;
    let tls13 = rng.chance(0.45);
    let mut msgs = Vec::with_capacity(16);
    let chrome_like = rng.chance(0.7);
    let think = rng.range(50, 300);
    msgs.push(Message::new(Side::Client, think).bytes(content::client_hello(rng, name, chrome_like)));
    if tls13 {
        let enc = rng.range(2_500, 5_000) as usize;
        msgs.push(Message::new(Side::Server, rng.range(300, 3_000)).bytes(content::server_flight_tls13(rng, pools, enc)));
        msgs.push(Message::new(Side::Client, rng.range(100, 800)).bytes(content::ccs_finished(rng, true)));
    } else {
        msgs.push(Message::new(Side::Server, rng.range(300, 3_000)).bytes(content::server_flight_tls12(rng, chain)));
        msgs.push(Message::new(Side::Client, rng.range(100, 800)).bytes(content::client_finish_tls12(rng)));
        msgs.push(Message::new(Side::Server, rng.range(100, 800)).bytes(content::ccs_finished(rng, false)));
    }
    for i in 0..rng.range(1, 5) {
        let think = if i == 0 { rng.range(20, 200) } else { rng.log_range(5_000, 15_000_000) };
        let mut req = Message::new(Side::Client, think);
        let n = rng.range(250, 1_800) as usize;
        req.pieces = app_data_pieces(rng, n);
        msgs.push(req);
        let mut resp = Message::new(Side::Server, rng.log_range(300, 80_000));
        let n = rng.log_range(200, 400_000) as usize;
        resp.pieces = app_data_pieces(rng, n);
        msgs.push(resp);
    }
    msgs.push(Message::new(Side::Client, rng.log_range(50_000, 20_000_000)).bytes(content::close_notify(rng, tls13)));
    let close = if rng.chance(0.05) { Close::ClientRst } else { Close::ClientFin };
    let r = rtt(rng, false);
    let bw = rng.range(20, 500);
    Ok(Session::Tcp(Box::new(TcpConv::new(rng, ep, msgs, r, bw, close))))
}

// ---------------------------------------------------------------------------------------------
// Bulk transfers

fn bulk(ctx: &mut Ctx<'_>) -> Result<Session, GenError> {
    let host = pick_host(ctx);
    let variant = ctx.rng.below(4);
    let (name, port) = match variant {
        0 | 1 => ("update.example-vendor.com", 80),
        2 => ("fileserver.county.local", 445),
        _ => ("sftp.elections.example.gov", 22),
    };
    let ep = endpoints(ctx, &host, Server::External(name), port, true);
    let rng = &mut ctx.rng;
    let size = rng.range(1 << 20, 8 << 20) as usize;
    let mut msgs = Vec::new();
    match variant {
        0 | 1 => {
            let (file, ct) = *rng.pick(&[
                ("/downloads/ElectionWare-5.2.1-update.msi", "application/x-msi"),
                ("/downloads/pollbook-firmware-4.2.1.bin", "application/octet-stream"),
                ("/downloads/2026-general-ballot-definitions.zip", "application/zip"),
                ("/media/training/pollworker-video-720p.mp4", "video/mp4"),
            ]);
            let req = format!(
                "GET {file} HTTP/1.1\r\nHost: {name}\r\nUser-Agent: {}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
                rng.pick(content::USER_AGENTS)
            );
            msgs.push(Message::new(Side::Client, rng.range(50, 300)).bytes(req.into_bytes()));
            let hdr = format!(
                "HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nContent-Type: {ct}\r\nContent-Length: {size}\r\nAccept-Ranges: bytes\r\nETag: \"{}\"\r\nConnection: close\r\n\r\n",
                hex(rng, 20)
            );
            msgs.push(
                Message::new(Side::Server, rng.range(500, 20_000))
                    .bytes(hdr.into_bytes())
                    .piece(Piece::Random { off: rng.below(RANDOM_POOL as u64) as usize, len: size }),
            );
        }
        2 => {
            // SMB2 reads: a small request, then a 64 KiB response, repeated.
            let mut left = size;
            let mut first = true;
            while left > 0 {
                let n = left.min(65_536);
                let mut req = Vec::with_capacity(4 + 113);
                req.extend_from_slice(&[0, 0, 0, 113, 0xfe, b'S', b'M', b'B']);
                let mut rest = [0u8; 109];
                rng.fill(&mut rest);
                req.extend_from_slice(&rest);
                let think = if first { rng.range(50, 300) } else { rng.range(20, 200) };
                msgs.push(Message::new(Side::Client, think).bytes(req));
                let body = n + 80;
                let mut hdr = vec![0, (body >> 16) as u8, (body >> 8) as u8, body as u8, 0xfe, b'S', b'M', b'B'];
                let mut h2 = [0u8; 76];
                rng.fill(&mut h2);
                hdr.extend_from_slice(&h2);
                msgs.push(
                    Message::new(Side::Server, rng.range(100, 1_500))
                        .bytes(hdr)
                        .piece(Piece::Random { off: rng.below(RANDOM_POOL as u64) as usize, len: n }),
                );
                left -= n;
                first = false;
            }
        }
        _ => {
            msgs.push(Message::new(Side::Server, rng.range(500, 3_000)).bytes(b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13.5\r\n".to_vec()));
            msgs.push(Message::new(Side::Client, rng.range(100, 800)).bytes(b"SSH-2.0-OpenSSH_for_Windows_9.5\r\n".to_vec()));
            for side in [Side::Client, Side::Server, Side::Client, Side::Server] {
                let n = rng.range(300, 1_500) as usize;
                msgs.push(Message::new(side, rng.range(100, 3_000)).piece(Piece::Random { off: rng.below(RANDOM_POOL as u64) as usize, len: n }));
            }
            msgs.push(Message::new(Side::Server, rng.range(1_000, 30_000)).piece(Piece::Random { off: rng.below(RANDOM_POOL as u64) as usize, len: size }));
        }
    }
    let close = if variant <= 1 { Close::ServerFin } else { Close::ClientFin };
    let internal = port == 445;
    let r = rtt(rng, internal);
    let bw = rng.range(50, 900);
    Ok(Session::Tcp(Box::new(TcpConv::new(rng, ep, msgs, r, bw, close))))
}

// ---------------------------------------------------------------------------------------------
// DNS

fn dga_name(rng: &mut Rng) -> String {
    let mut s = String::with_capacity(24);
    for _ in 0..rng.range(8, 16) {
        s.push(char::from(b'a' + rng.below(26) as u8));
    }
    s.push_str(*rng.pick(&[".com", ".net", ".info", ".top"][..]));
    s
}

fn dns(ctx: &mut Ctx<'_>) -> Result<Session, GenError> {
    let host = pick_host(ctx);
    let public = ctx.rng.chance(0.12);
    let server = if public { Server::PublicResolver(*ctx.rng.pick(PUBLIC_RESOLVERS)) } else { Server::Resolver };
    let ep = endpoints(ctx, &host, server, 53, true);
    let rng = &mut ctx.rng;
    let roll = rng.unit();
    let nx = roll < 0.08;
    let owned_name;
    let name: &str = if nx {
        if rng.chance(0.5) {
            *rng.pick(content::NX_DOMAINS)
        } else {
            owned_name = dga_name(rng);
            &owned_name
        }
    } else {
        *rng.pick(content::DOMAINS)
    };
    let qtype = match rng.below(100) {
        0..=54 => DnsQType::A,
        55..=79 => DnsQType::Aaaa,
        80..=84 => DnsQType::Cname,
        85..=92 => DnsQType::Mx,
        _ => DnsQType::Txt,
    };
    let id = rng.next_u32() as u16;
    let edns = rng.chance(0.6);
    let mut list = FrameList::new(&ep);
    let q = content::dns_query(id, name, qtype, edns);
    let mut f = Vec::with_capacity(128);
    ep.udp(&mut f, Side::Client, &q)?;
    let internal = !public;
    let delay = if rng.chance(0.6) { rtt(rng, true) } else { rtt(rng, internal) + rng.below(30_000) };
    list.push(f, delay);
    if rng.chance(0.97) {
        let r = content::dns_response(rng, id, name, qtype, edns, nx, 0);
        let mut f = Vec::with_capacity(r.len() + 64);
        ep.udp(&mut f, Side::Server, &r)?;
        list.push(f, 0);
    }
    Ok(Session::Frames(list))
}

// ---------------------------------------------------------------------------------------------
// ICMP

fn icmp(ctx: &mut Ctx<'_>) -> Result<Session, GenError> {
    let host = pick_host(ctx);
    let name = *ctx.rng.pick(content::DOMAINS);
    let unreachable = ctx.rng.chance(0.3);
    let port = if unreachable { *ctx.rng.pick(&[161u16, 123, 514, 1900, 5353]) } else { 0 };
    let mut ep = endpoints(ctx, &host, Server::External(name), port, true);
    let rng = &mut ctx.rng;
    let mut list = FrameList::new(&ep);
    if unreachable {
        let mut payload = [0u8; 48];
        rng.fill(&mut payload);
        let mut probe = Vec::with_capacity(128);
        ep.udp(&mut probe, Side::Client, &payload)?;
        let l2 = ep.l2_len();
        let ip_len = if ep.is_v6() { 40 } else { 20 };
        let quoted = probe[l2..(l2 + ip_len + 8 + 20).min(probe.len())].to_vec();
        list.push(probe, rtt(rng, false));
        let mut f = Vec::with_capacity(128);
        ep.port_unreachable(&mut f, &quoted)?;
        list.push(f, 0);
        return Ok(Session::Frames(list));
    }
    ep.client_port = 0;
    let id = rng.next_u32() as u16;
    let count = rng.range(1, 4) as u16;
    let r = rtt(rng, false);
    let mut data = [0u8; 56];
    for (i, b) in data.iter_mut().enumerate() {
        *b = 0x10 + i as u8;
    }
    for seq in 1..=count {
        let mut req = Vec::with_capacity(128);
        ep.echo(&mut req, Side::Client, id, seq, &data)?;
        list.push(req, r);
        let mut rep = Vec::with_capacity(128);
        ep.echo(&mut rep, Side::Server, id, seq, &data)?;
        // One second between pings, as ping does.
        list.push(rep, 1_000_000u64.saturating_sub(r).max(1));
    }
    Ok(Session::Frames(list))
}

// ---------------------------------------------------------------------------------------------
// Fragmented UDP

fn frag(ctx: &mut Ctx<'_>) -> Result<Session, GenError> {
    let host = pick_host(ctx);
    let large_dns = ctx.rng.chance(0.6);
    let (server, port, name) = if large_dns {
        (Server::Resolver, 53u16, "example.gov")
    } else {
        (Server::External("media.example-vendor.com"), *ctx.rng.pick(&[5004u16, 2049, 4789, 9000]), "media.example-vendor.com")
    };
    // Fragments here are IPv4 only.
    let ep = endpoints(ctx, &host, server, port, false);
    let mut list = FrameList::new(&ep);
    let l2 = ep.l2_len();
    if large_dns {
        let rng = &mut ctx.rng;
        let id = rng.next_u32() as u16;
        let q = content::dns_query(id, name, DnsQType::Txt, true);
        let mut f = Vec::with_capacity(128);
        ep.udp(&mut f, Side::Client, &q)?;
        list.push(f, rtt(rng, true));
        let big = rng.range(1_600, 4_000) as usize;
        let r = content::dns_response(rng, id, name, DnsQType::Txt, true, false, big);
        let mut whole = Vec::with_capacity(r.len() + 64);
        ep.udp(&mut whole, Side::Server, &r)?;
        ctx.ip_ident = ctx.ip_ident.wrapping_add(1);
        let mut frags = fragment_ipv4(&whole, l2, ctx.ip_ident, FRAG_PAYLOAD);
        if ctx.rng.chance(0.1) {
            frags.reverse();
        }
        let n = frags.len();
        for (i, f) in frags.into_iter().enumerate() {
            list.push(f, if i + 1 < n { ctx.rng.range(5, 40) } else { 0 });
        }
        return Ok(Session::Frames(list));
    }
    let datagrams = ctx.rng.range(1, 3);
    for d in 0..datagrams {
        let len = ctx.rng.range(2_000, 8_900) as usize;
        let mut payload = Vec::with_capacity(len);
        ctx.pools.random_into(ctx.rng.below(RANDOM_POOL as u64) as usize, len, &mut payload);
        let mut whole = Vec::with_capacity(len + 64);
        ep.udp(&mut whole, Side::Client, &payload)?;
        ctx.ip_ident = ctx.ip_ident.wrapping_add(1);
        let mut frags = fragment_ipv4(&whole, l2, ctx.ip_ident, FRAG_PAYLOAD);
        if ctx.rng.chance(0.1) {
            frags.reverse();
        }
        let n = frags.len();
        for (i, f) in frags.into_iter().enumerate() {
            let last = d + 1 == datagrams && i + 1 == n;
            list.push(f, if last { 0 } else { ctx.rng.range(5, 2_000) });
        }
    }
    Ok(Session::Frames(list))
}

// ---------------------------------------------------------------------------------------------
// Malformed packets

/// Recomputes the IPv4 header checksum of the frame's IP header (IHL as stored, at least 20).
fn fix_ipv4_checksum(frame: &mut [u8], l2: usize) {
    if frame.len() < l2 + 20 {
        return;
    }
    let ihl = (usize::from(frame[l2] & 0x0f) * 4).clamp(20, frame.len() - l2);
    frame[l2 + 10] = 0;
    frame[l2 + 11] = 0;
    let c = ipv4_header_checksum(&frame[l2..l2 + ihl]);
    frame[l2 + 10..l2 + 12].copy_from_slice(&c.to_be_bytes());
}

fn malformed(ctx: &mut Ctx<'_>) -> Result<Session, GenError> {
    let host = pick_host(ctx);
    let name = *ctx.rng.pick(content::DOMAINS);
    let variant = ctx.rng.below(9);
    let allow_v6 = variant == 6;
    let mut ep = endpoints(ctx, &host, Server::External(name), if variant == 7 { 53 } else { 443 }, allow_v6);
    if variant == 6 && !ep.is_v6() {
        ep.addrs = Addrs::V6 { client: client_v6(host.idx), server: server_v6(name) };
    }
    let rng = &mut ctx.rng;
    let l2 = ep.l2_len();
    let mut f = Vec::with_capacity(1600);
    let mut orig_len = None;
    let ack = TcpFlags { ack: true, psh: true, ..Default::default() };
    let mut payload = [0u8; 64];
    rng.fill(&mut payload);
    match variant {
        0 => {
            // IHL below the minimum of 5 words.
            ep.udp(&mut f, Side::Client, &payload)?;
            f[l2] = 0x40 | rng.range(0, 4) as u8;
            fix_ipv4_checksum(&mut f, l2);
        }
        1 => {
            // Total length claims more than the frame holds.
            ep.tcp(&mut f, Side::Client, rng.next_u32(), rng.next_u32(), 1026, ack, &[], &payload)?;
            let tl = u16::from_be_bytes([f[l2 + 2], f[l2 + 3]]) + rng.range(100, 1_000) as u16;
            f[l2 + 2..l2 + 4].copy_from_slice(&tl.to_be_bytes());
            fix_ipv4_checksum(&mut f, l2);
        }
        2 => {
            // Total length smaller than the IP header itself.
            ep.udp(&mut f, Side::Server, &payload)?;
            f[l2 + 2..l2 + 4].copy_from_slice(&(rng.range(0, 19) as u16).to_be_bytes());
            fix_ipv4_checksum(&mut f, l2);
        }
        3 => {
            // TCP header cut short: 10 of its 20 bytes, lengths consistent with the cut.
            ep.tcp(&mut f, Side::Server, rng.next_u32(), rng.next_u32(), 501, ack, &[], &[])?;
            f.truncate(l2 + 20 + 10);
            f[l2 + 2..l2 + 4].copy_from_slice(&30u16.to_be_bytes());
            fix_ipv4_checksum(&mut f, l2);
        }
        4 => {
            // TCP data offset pointing past the segment (or below 5 words).
            ep.tcp(&mut f, Side::Client, rng.next_u32(), rng.next_u32(), 1026, ack, &[], &payload[..8])?;
            let doff = if rng.chance(0.5) { 15u8 } else { rng.range(0, 4) as u8 };
            f[l2 + 20 + 12] = (doff << 4) | (f[l2 + 20 + 12] & 0x0f);
        }
        5 => {
            // Snap-truncated: a full-size data segment of which only the first bytes were captured.
            let mut big = Vec::with_capacity(1460);
            ctx.pools.random_into(rng.below(RANDOM_POOL as u64) as usize, 1460, &mut big);
            ep.tcp(&mut f, Side::Server, rng.next_u32(), rng.next_u32(), 501, ack, &[], &big)?;
            orig_len = Some(f.len() as u32);
            f.truncate(l2 + rng.range(10, 60) as usize);
        }
        6 => {
            // IPv6 payload length larger than what follows.
            ep.tcp(&mut f, Side::Client, rng.next_u32(), rng.next_u32(), 1026, ack, &[], &payload)?;
            let pl = u16::from_be_bytes([f[l2 + 4], f[l2 + 5]]) + rng.range(200, 3_000) as u16;
            f[l2 + 4..l2 + 6].copy_from_slice(&pl.to_be_bytes());
        }
        7 => {
            // UDP length field larger than the datagram (a DNS query as payload).
            let q = content::dns_query(rng.next_u32() as u16, name, DnsQType::A, false);
            ep.udp(&mut f, Side::Client, &q)?;
            let ul = (q.len() + 8 + rng.range(1, 500) as usize) as u16;
            f[l2 + 20 + 4..l2 + 20 + 6].copy_from_slice(&ul.to_be_bytes());
        }
        _ => {
            // A runt Ethernet frame: shorter than an Ethernet header.
            f.extend_from_slice(&ep.server_mac);
            f.extend_from_slice(&ep.client_mac[..rng.range(1, 6) as usize]);
        }
    }
    let mut list = FrameList::new(&ep);
    list.frames.push_back(FrameOut { frame: f, orig_len, delay_after: 0 });
    Ok(Session::Frames(list))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mix::{Options, Pools};

    fn ctx<'a>(pools: &'a Pools, opts: &'a Options) -> Ctx<'a> {
        Ctx { rng: Rng::new(11), pools, opts, frame: Vec::new(), payload: Vec::new(), orig_len: None, ip_ident: 1 }
    }

    #[test]
    fn every_session_kind_emits_and_ends() {
        let opts = Options::default();
        let pools = Pools::build(&mut Rng::new(1)).unwrap();
        let mut c = ctx(&pools, &opts);
        for kind in FlowKind::ALL {
            for _ in 0..20 {
                let mut s = Session::new(kind, &mut c).unwrap();
                let mut n = 0;
                loop {
                    n += 1;
                    assert!(!c.frame.is_empty() || n == 1);
                    match s.step(&mut c).unwrap() {
                        Some(_) => assert!(n < 100_000, "{kind:?} never ends"),
                        None => break,
                    }
                }
                assert!(n >= 1);
            }
        }
    }

    #[test]
    fn frag_sessions_emit_fragments() {
        let opts = Options::default();
        let pools = Pools::build(&mut Rng::new(1)).unwrap();
        let mut c = ctx(&pools, &opts);
        let mut frags = 0;
        for _ in 0..10 {
            let mut s = Session::new(FlowKind::UdpFragments, &mut c).unwrap();
            loop {
                let more = s.step(&mut c).unwrap();
                if is_fragment(&c.frame) {
                    frags += 1;
                }
                if more.is_none() {
                    break;
                }
            }
        }
        assert!(frags >= 20, "{frags}");
    }
}
