//! The demo's attack campaign as packets: one capture per jurisdiction, ordinary office traffic
//! from the benchmark generator with the attacker's packets laid over it.
//!
//! The story (private addresses and unrouted test ranges; nothing here is ever sent):
//! * the actor [`ACTOR`] quietly touches Dover County's web server days before anything else
//!   (one HTTPS connection — too little for any detector; only the retro-hunt finds it);
//! * the actor SYN-scans the public servers of Adams, Baker and Clark counties;
//! * the actor sends an SQL injection to Adams County's voter-registration form;
//! * a workstation at Baker County looks up [`BAD_DOMAIN`], a domain on the hub's indicator feed;
//! * the State office sees only ordinary traffic: it is warned before the actor arrives.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use ward_bench::mix::content::{dns_query, dns_response, DnsQType};
use ward_bench::mix::frame::{Addrs, Endpoints, Side, TcpFlags};
use ward_bench::mix::{self, MixWeights, Rng};
use ward_bench::pcap;

/// The attacker's address: from 198.18.0.0/15, the range set aside for benchmarks (RFC 2544),
/// so it belongs to nobody, yet it is not a private or documentation address, which the hub
/// would rightly never take for a remote actor.
pub const ACTOR: [u8; 4] = [198, 18, 23, 66];
/// A domain on the hub's indicator feed before the demo starts.
pub const BAD_DOMAIN: &str = "voter-roll-update.example";
/// The ports the actor probes on each scanned office.
pub const SCAN_PORTS: &[u16] = &[
    21, 22, 23, 25, 53, 80, 110, 111, 135, 139, 143, 389, 443, 445, 465, 587, 636, 993, 995, 1433, 1521, 1723, 2049,
    3306, 3389, 5432, 5900, 5985, 6379, 8080, 8443, 9200,
];

/// What happens at one jurisdiction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Ordinary traffic only.
    Quiet,
    /// A single HTTPS connection from the actor, long before the campaign.
    EarlyContact,
    /// Port scan by the actor.
    Scanned,
    /// Port scan, then SQL injection against the voter-registration form.
    ScannedAndInjected,
    /// Port scan, and a workstation resolves the known-bad domain.
    ScannedAndBadLookup,
}

/// One jurisdiction's network in the demo.
#[derive(Debug, Clone)]
pub struct Site {
    pub name: &'static str,
    /// The office's public web server (voter registration, results).
    pub web_server: [u8; 4],
    /// A workstation inside the office.
    pub workstation: [u8; 4],
    /// The office's resolver.
    pub resolver: [u8; 4],
    pub role: Role,
}

/// Writes `site`'s capture to `path`: `background_bytes` of ordinary traffic starting at
/// `start_us`, with the scenario's packets at their place in time. Returns the packet count.
pub fn write_capture(path: &Path, site: &Site, seed: u64, start_us: u64, background_bytes: u64) -> anyhow::Result<u64> {
    // Ordinary traffic first, into memory; then merge the scenario frames by timestamp.
    let mut background = Vec::new();
    let opts = mix::Options {
        target_bytes: background_bytes,
        seed,
        hosts: 40,
        concurrency: 50,
        weights: MixWeights::parse("http=30,dns=40,tls=28,icmp=2").context("demo traffic mix")?,
        ipv6_share: 0.0,
        vlan_share: 0.0,
        start_us,
    };
    mix::generate(&mut background, &opts).context("cannot generate the demo's ordinary traffic")?;
    let mut frames = split_records(&background)?;
    let end_us = frames.last().map_or(start_us, |f| f.0);
    let span = end_us.saturating_sub(start_us).max(1_000_000);

    let mut extra = Vec::new();
    let at = |fraction: f64| start_us + (span as f64 * fraction) as u64;
    let mut rng = Rng::new(seed ^ 0xdeed);
    match site.role {
        Role::Quiet => {}
        Role::EarlyContact => https_visit(&mut extra, &mut rng, ACTOR, site.web_server, at(0.05))?,
        Role::Scanned => syn_scan(&mut extra, ACTOR, site.web_server, at(0.3))?,
        Role::ScannedAndInjected => {
            syn_scan(&mut extra, ACTOR, site.web_server, at(0.3))?;
            sql_injection(&mut extra, ACTOR, site.web_server, at(0.6))?;
        }
        Role::ScannedAndBadLookup => {
            syn_scan(&mut extra, ACTOR, site.web_server, at(0.3))?;
            bad_lookup(&mut extra, &mut rng, site.workstation, site.resolver, at(0.5))?;
        }
    }
    frames.extend(extra);
    frames.sort_by_key(|f| f.0);

    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = BufWriter::new(file);
    pcap::write_global_header(&mut w)?;
    for (ts, data) in &frames {
        pcap::write_record(&mut w, *ts, data, data.len() as u32)?;
    }
    w.flush()?;
    Ok(frames.len() as u64)
}

/// Splits a classic pcap (as the generator writes it) into (timestamp µs, frame) records.
fn split_records(buf: &[u8]) -> anyhow::Result<Vec<(u64, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut off = pcap::GLOBAL_HEADER_LEN as usize;
    while off + 16 <= buf.len() {
        let word = |i: usize| u32::from_le_bytes([buf[off + i], buf[off + i + 1], buf[off + i + 2], buf[off + i + 3]]);
        let ts = u64::from(word(0)) * 1_000_000 + u64::from(word(4));
        let len = word(8) as usize;
        let start = off + 16;
        anyhow::ensure!(start + len <= buf.len(), "generated capture is cut at offset {off}");
        out.push((ts, buf[start..start + len].to_vec()));
        off = start + len;
    }
    Ok(out)
}

fn endpoints(client: [u8; 4], server: [u8; 4], client_port: u16, server_port: u16) -> Endpoints {
    Endpoints {
        client_mac: [0x02, 0, client[1], client[2], client[3], 1],
        server_mac: [0x02, 0, server[1], server[2], server[3], 2],
        addrs: Addrs::V4 { client, server },
        client_port,
        server_port,
        vlan: None,
        client_ttl: 52,
        server_ttl: 64,
    }
}

/// One TCP conversation: handshake, the client's request, the server's answer, FIN both ways.
fn tcp_session(
    out: &mut Vec<(u64, Vec<u8>)>,
    ep: &Endpoints,
    start_us: u64,
    request: &[u8],
    response: &[u8],
) -> anyhow::Result<()> {
    let (mut cseq, mut sseq) = (0x1000_0000u32, 0x5000_0000u32);
    let mut t = start_us;
    let push = |out: &mut Vec<(u64, Vec<u8>)>, from: Side, seq: u32, ack: u32, flags: TcpFlags, data: &[u8], t: u64| {
        let mut f = Vec::new();
        ep.tcp(&mut f, from, seq, ack, 64240, flags, &[], data).map(|()| out.push((t, f)))
    };
    let syn = TcpFlags { syn: true, ..Default::default() };
    let synack = TcpFlags { syn: true, ack: true, ..Default::default() };
    let ack = TcpFlags { ack: true, ..Default::default() };
    let data = TcpFlags { ack: true, psh: true, ..Default::default() };
    let fin = TcpFlags { ack: true, fin: true, ..Default::default() };
    push(out, Side::Client, cseq, 0, syn, &[], t)?;
    cseq += 1;
    t += 20_000;
    push(out, Side::Server, sseq, cseq, synack, &[], t)?;
    sseq += 1;
    t += 20_000;
    push(out, Side::Client, cseq, sseq, ack, &[], t)?;
    for chunk in request.chunks(1400) {
        t += 1_000;
        push(out, Side::Client, cseq, sseq, data, chunk, t)?;
        cseq += chunk.len() as u32;
    }
    t += 20_000;
    push(out, Side::Server, sseq, cseq, ack, &[], t)?;
    for chunk in response.chunks(1400) {
        t += 2_000;
        push(out, Side::Server, sseq, cseq, data, chunk, t)?;
        sseq += chunk.len() as u32;
    }
    t += 20_000;
    push(out, Side::Client, cseq, sseq, fin, &[], t)?;
    cseq += 1;
    t += 20_000;
    push(out, Side::Server, sseq, cseq, fin, &[], t)?;
    sseq += 1;
    t += 20_000;
    push(out, Side::Client, cseq, sseq, ack, &[], t)?;
    Ok(())
}

/// A SYN scan: SYN to every port; open ports answer SYN-ACK (and get a RST), closed ones RST.
fn syn_scan(out: &mut Vec<(u64, Vec<u8>)>, actor: [u8; 4], target: [u8; 4], start_us: u64) -> anyhow::Result<()> {
    let mut t = start_us;
    for (i, &port) in SCAN_PORTS.iter().enumerate() {
        let ep = endpoints(actor, target, 40_000 + i as u16, port);
        let mut f = Vec::new();
        ep.tcp(&mut f, Side::Client, 0x2000_0000 + i as u32, 0, 1024, TcpFlags { syn: true, ..Default::default() }, &[], &[])?;
        out.push((t, f));
        t += 3_000;
        let mut f = Vec::new();
        if port == 80 || port == 443 {
            ep.tcp(&mut f, Side::Server, 0x6000_0000, 0x2000_0001 + i as u32, 64240, TcpFlags { syn: true, ack: true, ..Default::default() }, &[], &[])?;
            out.push((t, f));
            t += 1_000;
            let mut f = Vec::new();
            ep.tcp(&mut f, Side::Client, 0x2000_0001 + i as u32, 0, 0, TcpFlags { rst: true, ..Default::default() }, &[], &[])?;
            out.push((t, f));
        } else {
            ep.tcp(&mut f, Side::Server, 0, 0x2000_0001 + i as u32, 0, TcpFlags { rst: true, ack: true, ..Default::default() }, &[], &[])?;
            out.push((t, f));
        }
        t += 7_000;
    }
    Ok(())
}

/// The SQL injection against the voter-registration lookup form.
fn sql_injection(out: &mut Vec<(u64, Vec<u8>)>, actor: [u8; 4], server: [u8; 4], start_us: u64) -> anyhow::Result<()> {
    let ep = endpoints(actor, server, 51_515, 80);
    let request = b"GET /voter/lookup.php?last_name=smith%27%20UNION%20SELECT%20ssn,dob,address%20FROM%20voters--%20 HTTP/1.1\r\n\
Host: vote.adams-county.example\r\n\
User-Agent: sqlmap/1.8.4#stable (https://sqlmap.org)\r\n\
Accept: */*\r\n\r\n";
    let body = b"<html><body>No voter found.</body></html>";
    let response = format!(
        "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        String::from_utf8_lossy(body)
    );
    tcp_session(out, &ep, start_us, request, response.as_bytes())
}

/// A workstation resolves the known-bad domain, then connects to it.
fn bad_lookup(out: &mut Vec<(u64, Vec<u8>)>, rng: &mut Rng, client: [u8; 4], resolver: [u8; 4], start_us: u64) -> anyhow::Result<()> {
    let ep = endpoints(client, resolver, 53_535, 53);
    let q = dns_query(0x4242, BAD_DOMAIN, DnsQType::A, false);
    let mut f = Vec::new();
    ep.udp(&mut f, Side::Client, &q)?;
    out.push((start_us, f));
    let r = dns_response(rng, 0x4242, BAD_DOMAIN, DnsQType::A, false, false, 0);
    let mut f = Vec::new();
    ep.udp(&mut f, Side::Server, &r)?;
    out.push((start_us + 15_000, f));
    Ok(())
}

/// One ordinary-looking HTTPS visit (handshake bytes only matter to the contact record).
fn https_visit(out: &mut Vec<(u64, Vec<u8>)>, rng: &mut Rng, actor: [u8; 4], server: [u8; 4], start_us: u64) -> anyhow::Result<()> {
    let ep = endpoints(actor, server, 44_444, 443);
    let hello = ward_bench::mix::content::client_hello(rng, "vote.dover-county.example", true);
    tcp_session(out, &ep, start_us, &hello, &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])
}
