//! Labelled attacks laid over an office's traffic: each [`AttackKind`] writes its packets as
//! capture frames ([`frames`]) and says what a sensor ought to make of them ([`Detection`]):
//! which detector fires (the scan detector, a rule of [`RULES`], or the hub's indicator list)
//! and whether the hub should see a remote actor in it (a *sighting*, the stuff campaigns and
//! warnings are made of). `ward drill` scores every inject against that label; `ward demo` uses
//! the same packets.
//!
//! Addresses: the office's hosts are private ([`OfficeNet`]); attackers come from 198.18.0.0/15,
//! the range set aside for benchmarks (RFC 2544), which belongs to nobody yet is not a private or
//! documentation range the hub would rightly refuse to take for a remote actor. Nothing here is
//! ever sent: frames only go into capture files.

use serde::{Deserialize, Serialize};

use crate::mix::content::{client_hello, dns_query, dns_response, DnsQType};
use crate::mix::frame::{Addrs, Endpoints, Side, TcpFlags};
use crate::mix::{GenError, Rng};

/// One captured frame: (timestamp µs, Ethernet frame).
pub type Frame = (u64, Vec<u8>);

/// The rules that detect the attacks of this module (what a state adds to ET Open for its own
/// election systems), sids 9100001–9100099.
pub const RULES: &str = include_str!("attacks.rules");

/// The ports a port scan probes.
pub const SCAN_PORTS: &[u16] = &[
    21, 22, 23, 25, 53, 80, 110, 111, 135, 139, 143, 389, 443, 445, 465, 587, 636, 993, 995, 1433, 1521, 1723, 2049,
    3306, 3389, 5432, 5900, 5985, 6379, 8080, 8443, 9200,
];

/// Hosts a sweep or lateral movement touches (above the scan detector's 25-host threshold).
pub const SWEEP_HOSTS: u8 = 30;

/// The attacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttackKind {
    /// SYN scan of [`SCAN_PORTS`] on the office's public web server.
    PortScan,
    /// One port (443) probed on [`SWEEP_HOSTS`] addresses of the office's network.
    Sweep,
    /// A vulnerability scanner walking a voter-registration or results site's admin paths.
    SiteScan,
    /// SQL injection against the voter-registration lookup form.
    SqlInjection,
    /// Many logins with different user names against the office's login page.
    CredentialStuffing,
    /// A workstation looks up and opens a phishing link (a domain on the hub's indicator list).
    PhishingLink,
    /// A workstation beacons to a command-and-control domain (on the hub's indicator list).
    Beacon,
    /// A SYN flood against the election-night results site from a /24 of bots.
    Ddos,
    /// A compromised workstation probes SMB (445) across the office network.
    SmbLateral,
    /// One ordinary-looking HTTPS visit from the actor: no detector fires; only a retro-hunt
    /// finds it once the actor is known.
    QuietContact,
}

/// What a sensor with [`RULES`], the hub's indicators and the scan detector makes of an attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Detection {
    /// The scan detector (gid 9001).
    ScanDetector,
    /// A rule of [`RULES`] with this sid.
    Rule(u64),
    /// The hub's indicator list (gid 9000).
    Indicator,
    /// Nothing fires.
    Nothing,
}

impl AttackKind {
    pub const ALL: [AttackKind; 10] = [
        AttackKind::PortScan,
        AttackKind::Sweep,
        AttackKind::SiteScan,
        AttackKind::SqlInjection,
        AttackKind::CredentialStuffing,
        AttackKind::PhishingLink,
        AttackKind::Beacon,
        AttackKind::Ddos,
        AttackKind::SmbLateral,
        AttackKind::QuietContact,
    ];

    /// The name used in scenarios (`port-scan`).
    pub fn name(self) -> &'static str {
        match self {
            AttackKind::PortScan => "port-scan",
            AttackKind::Sweep => "sweep",
            AttackKind::SiteScan => "site-scan",
            AttackKind::SqlInjection => "sql-injection",
            AttackKind::CredentialStuffing => "credential-stuffing",
            AttackKind::PhishingLink => "phishing-link",
            AttackKind::Beacon => "beacon",
            AttackKind::Ddos => "ddos",
            AttackKind::SmbLateral => "smb-lateral",
            AttackKind::QuietContact => "quiet-contact",
        }
    }

    /// Parses a scenario name.
    pub fn parse(name: &str) -> Option<AttackKind> {
        AttackKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// What it is, in a sentence for reports.
    pub fn description(self) -> &'static str {
        match self {
            AttackKind::PortScan => "SYN scan of 32 service ports on the office's public web server",
            AttackKind::Sweep => "sweep of port 443 across 30 addresses of the office's network",
            AttackKind::SiteScan => "vulnerability scanner walking the voter-registration site's admin paths",
            AttackKind::SqlInjection => "SQL injection against the voter-registration lookup form",
            AttackKind::CredentialStuffing => "credential stuffing: 30 logins with different user names against the login page",
            AttackKind::PhishingLink => "a workstation opens a phishing link (domain on the hub's indicator list)",
            AttackKind::Beacon => "a workstation beacons every 30 s to a command-and-control domain",
            AttackKind::Ddos => "SYN flood against the election-night results site from 20 bots",
            AttackKind::SmbLateral => "a compromised workstation probes SMB across 30 hosts of the office network",
            AttackKind::QuietContact => "one ordinary-looking HTTPS visit from the actor (found only by retro-hunt)",
        }
    }

    /// The detector that ought to fire.
    pub fn detection(self) -> Detection {
        match self {
            AttackKind::PortScan | AttackKind::Sweep | AttackKind::SmbLateral => Detection::ScanDetector,
            AttackKind::SiteScan => Detection::Rule(9_100_003),
            AttackKind::SqlInjection => Detection::Rule(9_100_004),
            AttackKind::CredentialStuffing => Detection::Rule(9_100_005),
            AttackKind::Ddos => Detection::Rule(9_100_008),
            AttackKind::PhishingLink | AttackKind::Beacon => Detection::Indicator,
            AttackKind::QuietContact => Detection::Nothing,
        }
    }

    /// Whether the alert names a remote actor the hub correlates across jurisdictions (a
    /// sighting). Lateral movement is inside the office: detected, never a campaign.
    pub fn sighting(self) -> bool {
        !matches!(self, AttackKind::SmbLateral | AttackKind::QuietContact)
    }

    /// Whether the attack needs a domain ([`Attack::domain`]).
    pub fn needs_domain(self) -> bool {
        matches!(self, AttackKind::PhishingLink | AttackKind::Beacon)
    }
}

/// The signature a real sensor writes for `attack` on `office` (the rule's msg, the scan
/// detector's or the indicator list's), for simulated relays that report what a sensor would
/// have; None when nothing fires.
pub fn expected_signature(attack: &Attack, office: &OfficeNet) -> Option<String> {
    let ip = |a: [u8; 4]| format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]);
    match attack.kind.detection() {
        Detection::ScanDetector => Some(match attack.kind {
            // The detector reports when its threshold (25 by default) is crossed.
            AttackKind::PortScan => format!("WARD SCAN vertical port scan of {} (25 ports)", ip(office.web_server)),
            AttackKind::SmbLateral => "WARD SCAN horizontal sweep of port 445 (25 hosts)".to_string(),
            _ => "WARD SCAN horizontal sweep of port 443 (25 hosts)".to_string(),
        }),
        Detection::Rule(sid) => rule_msg(sid).map(str::to_string),
        Detection::Indicator => Some(format!("WARD indicator domain {} in http.host", attack.domain)),
        Detection::Nothing => None,
    }
}

/// The msg of a rule of [`RULES`].
pub fn rule_msg(sid: u64) -> Option<&'static str> {
    let needle = format!("sid:{sid};");
    let line = RULES.lines().find(|l| l.contains(&needle))?;
    let start = line.find("msg:\"")? + 5;
    let end = start + line[start..].find('"')?;
    Some(&line[start..end])
}

/// The office's hosts an attack touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfficeNet {
    /// Public web server (voter registration, login page).
    pub web_server: [u8; 4],
    /// Election-night results site.
    pub results_server: [u8; 4],
    /// A workstation.
    pub workstation: [u8; 4],
    /// The office's resolver.
    pub resolver: [u8; 4],
}

impl OfficeNet {
    /// The conventional layout of an office in 10.`a`.`b`.0/24: web .80, results .81,
    /// resolver .53, workstation .123.
    pub fn in_24(a: u8, b: u8) -> OfficeNet {
        OfficeNet { web_server: [10, a, b, 80], results_server: [10, a, b, 81], workstation: [10, a, b, 123], resolver: [10, a, b, 53] }
    }

    /// The /24 the office's hosts live in, as CIDR (its HOME_NET in a drill).
    pub fn home_net(&self) -> String {
        let w = self.web_server;
        format!("{}.{}.{}.0/24", w[0], w[1], w[2])
    }
}

/// One attack on one office.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attack {
    pub kind: AttackKind,
    /// The attacker's address (for a DDoS, the first bot of its /24; for a phishing link or a
    /// beacon, the server the domain resolves to).
    pub actor: [u8; 4],
    /// The phishing or command-and-control domain.
    pub domain: String,
    /// When its first packet is sent (µs).
    pub start_us: u64,
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

fn flags(syn: bool, ack: bool, rst: bool, fin: bool, psh: bool) -> TcpFlags {
    TcpFlags { syn, ack, rst, fin, psh }
}

/// One TCP conversation: handshake, the client's request, the server's answer, FIN both ways.
/// Returns the time after its last packet.
pub fn tcp_session(out: &mut Vec<Frame>, ep: &Endpoints, start_us: u64, request: &[u8], response: &[u8]) -> Result<u64, GenError> {
    let (mut cseq, mut sseq) = (0x1000_0000u32, 0x5000_0000u32);
    let mut t = start_us;
    let push = |out: &mut Vec<Frame>, from: Side, seq: u32, ack: u32, flags: TcpFlags, data: &[u8], t: u64| {
        let mut f = Vec::new();
        ep.tcp(&mut f, from, seq, ack, 64240, flags, &[], data).map(|()| out.push((t, f)))
    };
    push(out, Side::Client, cseq, 0, flags(true, false, false, false, false), &[], t)?;
    cseq += 1;
    t += 20_000;
    push(out, Side::Server, sseq, cseq, flags(true, true, false, false, false), &[], t)?;
    sseq += 1;
    t += 20_000;
    push(out, Side::Client, cseq, sseq, flags(false, true, false, false, false), &[], t)?;
    for chunk in request.chunks(1400) {
        t += 1_000;
        push(out, Side::Client, cseq, sseq, flags(false, true, false, false, true), chunk, t)?;
        cseq += chunk.len() as u32;
    }
    t += 20_000;
    push(out, Side::Server, sseq, cseq, flags(false, true, false, false, false), &[], t)?;
    for chunk in response.chunks(1400) {
        t += 2_000;
        push(out, Side::Server, sseq, cseq, flags(false, true, false, false, true), chunk, t)?;
        sseq += chunk.len() as u32;
    }
    t += 20_000;
    push(out, Side::Client, cseq, sseq, flags(false, true, false, true, false), &[], t)?;
    cseq += 1;
    t += 20_000;
    push(out, Side::Server, sseq, cseq, flags(false, true, false, true, false), &[], t)?;
    sseq += 1;
    t += 20_000;
    push(out, Side::Client, cseq, sseq, flags(false, true, false, false, false), &[], t)?;
    Ok(t)
}

/// A SYN probe of one port: an open port answers SYN-ACK (and gets a RST), a closed one RST.
fn probe(out: &mut Vec<Frame>, from: [u8; 4], to: [u8; 4], sport: u16, port: u16, open: bool, t: u64) -> Result<(), GenError> {
    let ep = endpoints(from, to, sport, port);
    let isn = 0x2000_0000u32.wrapping_add(u32::from(sport));
    let mut f = Vec::new();
    ep.tcp(&mut f, Side::Client, isn, 0, 1024, flags(true, false, false, false, false), &[], &[])?;
    out.push((t, f));
    let mut f = Vec::new();
    if open {
        ep.tcp(&mut f, Side::Server, 0x6000_0000, isn.wrapping_add(1), 64240, flags(true, true, false, false, false), &[], &[])?;
        out.push((t + 3_000, f));
        let mut f = Vec::new();
        ep.tcp(&mut f, Side::Client, isn.wrapping_add(1), 0, 0, flags(false, false, true, false, false), &[], &[])?;
        out.push((t + 4_000, f));
    } else {
        ep.tcp(&mut f, Side::Server, 0, isn.wrapping_add(1), 0, flags(false, true, true, false, false), &[], &[])?;
        out.push((t + 3_000, f));
    }
    Ok(())
}

/// A SYN scan of [`SCAN_PORTS`] on `target` (80 and 443 open).
pub fn syn_scan(out: &mut Vec<Frame>, actor: [u8; 4], target: [u8; 4], start_us: u64) -> Result<(), GenError> {
    for (i, &port) in SCAN_PORTS.iter().enumerate() {
        probe(out, actor, target, 40_000 + i as u16, port, port == 80 || port == 443, start_us + i as u64 * 10_000)?;
    }
    Ok(())
}

/// The SQL injection against the voter-registration lookup form (sqlmap).
pub fn sql_injection(out: &mut Vec<Frame>, actor: [u8; 4], server: [u8; 4], start_us: u64) -> Result<(), GenError> {
    let ep = endpoints(actor, server, 51_515, 80);
    let request = b"GET /voter/lookup.php?last_name=smith%27%20UNION%20SELECT%20ssn,dob,address%20FROM%20voters--%20 HTTP/1.1\r\n\
Host: vote.county.example\r\n\
User-Agent: sqlmap/1.8.4#stable (https://sqlmap.org)\r\n\
Accept: */*\r\n\r\n";
    tcp_session(out, &ep, start_us, request, &http_ok(b"<html><body>No voter found.</body></html>"))?;
    Ok(())
}

/// A workstation resolves `domain` at the office's resolver.
pub fn dns_lookup(out: &mut Vec<Frame>, rng: &mut Rng, client: [u8; 4], resolver: [u8; 4], domain: &str, start_us: u64) -> Result<(), GenError> {
    let id = rng.next_u32() as u16;
    let ep = endpoints(client, resolver, 53_000 + (id % 10_000), 53);
    let mut f = Vec::new();
    ep.udp(&mut f, Side::Client, &dns_query(id, domain, DnsQType::A, false))?;
    out.push((start_us, f));
    let mut f = Vec::new();
    ep.udp(&mut f, Side::Server, &dns_response(rng, id, domain, DnsQType::A, false, false, 0))?;
    out.push((start_us + 15_000, f));
    Ok(())
}

/// One ordinary-looking HTTPS visit (a TLS ClientHello naming `sni`, an alert back).
pub fn https_visit(out: &mut Vec<Frame>, rng: &mut Rng, client: [u8; 4], server: [u8; 4], sni: &str, sport: u16, start_us: u64) -> Result<u64, GenError> {
    let ep = endpoints(client, server, sport, 443);
    let hello = client_hello(rng, sni, true);
    tcp_session(out, &ep, start_us, &hello, &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])
}

fn http_ok(body: &[u8]) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    r.extend_from_slice(body);
    r
}

/// Writes the packets of `attack` on `office`. Frames are in time order within the attack.
pub fn frames(attack: &Attack, office: &OfficeNet, rng: &mut Rng) -> Result<Vec<Frame>, GenError> {
    let mut out = Vec::new();
    let t0 = attack.start_us;
    let actor = attack.actor;
    if attack.kind.needs_domain() && attack.domain.is_empty() {
        return Err(GenError::Option(format!("the {} attack needs a domain", attack.kind.name())));
    }
    match attack.kind {
        AttackKind::PortScan => syn_scan(&mut out, actor, office.web_server, t0)?,
        AttackKind::Sweep => {
            let [a, b, c, _] = office.web_server;
            for h in 0..SWEEP_HOSTS {
                probe(&mut out, actor, [a, b, c, 10 + h], 41_000 + u16::from(h), 443, h % 7 == 0, t0 + u64::from(h) * 10_000)?;
            }
        }
        AttackKind::SiteScan => {
            const PATHS: &[&str] = &["/admin/", "/wp-login.php", "/.env", "/phpmyadmin/", "/results/upload", "/server-status", "/backup.zip", "/config.php.bak"];
            let mut t = t0;
            for (i, path) in PATHS.iter().enumerate() {
                let ep = endpoints(actor, office.web_server, 45_000 + i as u16, 80);
                let req = format!(
                    "GET {path} HTTP/1.1\r\nHost: vote.county.example\r\nUser-Agent: Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000{i})\r\nAccept: */*\r\n\r\n"
                );
                t = tcp_session(&mut out, &ep, t, req.as_bytes(), b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")? + 5_000;
            }
        }
        AttackKind::SqlInjection => sql_injection(&mut out, actor, office.web_server, t0)?,
        AttackKind::CredentialStuffing => {
            let mut t = t0;
            for i in 0..30u16 {
                let ep = endpoints(actor, office.web_server, 46_000 + i, 80);
                let body = format!("username=clerk{}%40county.example&password=Summer2024%21", rng.below(100_000));
                let req = format!(
                    "POST /login HTTP/1.1\r\nHost: vote.county.example\r\nUser-Agent: python-requests/2.31.0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                t = tcp_session(&mut out, &ep, t, req.as_bytes(), b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")? + 50_000;
            }
        }
        AttackKind::PhishingLink => {
            dns_lookup(&mut out, rng, office.workstation, office.resolver, &attack.domain, t0)?;
            let ep = endpoints(office.workstation, actor, 49_152, 80);
            let req = format!(
                "GET /voter-roll/verify?id=48213 HTTP/1.1\r\nHost: {}\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)\r\nAccept: text/html\r\n\r\n",
                attack.domain
            );
            tcp_session(&mut out, &ep, t0 + 40_000, req.as_bytes(), &http_ok(b"<html><body><form>Sign in to continue</form></body></html>"))?;
        }
        AttackKind::Beacon => {
            for i in 0..5u64 {
                let t = t0 + i * 30_000_000;
                dns_lookup(&mut out, rng, office.workstation, office.resolver, &attack.domain, t)?;
                https_visit(&mut out, rng, office.workstation, actor, &attack.domain, 50_000 + i as u16, t + 40_000)?;
            }
        }
        AttackKind::Ddos => {
            // 20 bots × 15 SYNs each within two seconds, to the results site's HTTPS port.
            let [a, b, c, d] = actor;
            let mut t = t0;
            for round in 0..15u16 {
                for bot in 0..20u8 {
                    let ep = endpoints([a, b, c, d.wrapping_add(bot)], office.results_server, 30_000 + round * 20 + u16::from(bot), 443);
                    let mut f = Vec::new();
                    ep.tcp(&mut f, Side::Client, rng.next_u32(), 0, 1024, flags(true, false, false, false, false), &[], &[])?;
                    out.push((t, f));
                    t += 400;
                }
            }
        }
        AttackKind::SmbLateral => {
            let [a, b, c, _] = office.workstation;
            for h in 0..SWEEP_HOSTS {
                probe(&mut out, office.workstation, [a, b, c, 150 + h], 42_000 + u16::from(h), 445, h % 3 == 0, t0 + u64::from(h) * 5_000)?;
            }
        }
        AttackKind::QuietContact => {
            https_visit(&mut out, rng, actor, office.web_server, "vote.county.example", 44_444, t0)?;
        }
    }
    out.sort_by_key(|f| f.0);
    Ok(out)
}

/// Writes an office's capture to `path`: the ordinary traffic `background` describes, with the
/// frames `overlay` returns merged in at their place in time. `overlay` gets the time span of
/// the ordinary traffic (first and last timestamp, µs) to place the attacks in. Returns the
/// packet count.
pub fn write_capture<F>(path: &std::path::Path, background: &crate::mix::Options, overlay: F) -> Result<u64, GenError>
where
    F: FnOnce(u64, u64) -> Result<Vec<Frame>, GenError>,
{
    use std::io::Write;
    let mut buf = Vec::new();
    crate::mix::generate(&mut buf, background)?;
    let mut frames = split_records(&buf)?;
    let start = frames.first().map_or(background.start_us, |f| f.0);
    let end = frames.last().map_or(start, |f| f.0);
    let mut extra = overlay(start, end)?;
    frames.append(&mut extra);
    frames.sort_by_key(|f| f.0);
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    crate::pcap::write_global_header(&mut w)?;
    for (ts, data) in &frames {
        crate::pcap::write_record(&mut w, *ts, data, data.len() as u32)?;
    }
    w.flush()?;
    Ok(frames.len() as u64)
}

/// Splits a classic pcap as the
/// generator writes it into (timestamp µs, frame) records.
pub fn split_records(buf: &[u8]) -> Result<Vec<Frame>, GenError> {
    let mut out = Vec::new();
    let mut off = crate::pcap::GLOBAL_HEADER_LEN as usize;
    while off + 16 <= buf.len() {
        let word = |i: usize| u32::from_le_bytes([buf[off + i], buf[off + i + 1], buf[off + i + 2], buf[off + i + 3]]);
        let ts = u64::from(word(0)) * 1_000_000 + u64::from(word(4));
        let len = word(8) as usize;
        let start = off + 16;
        if start + len > buf.len() {
            return Err(GenError::Build(format!("generated capture is cut at offset {off}")));
        }
        out.push((ts, buf[start..start + len].to_vec()));
        off = start + len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_detection_names_a_rule_of_the_file() {
        for k in AttackKind::ALL {
            if let Detection::Rule(sid) = k.detection() {
                assert!(rule_msg(sid).is_some(), "{} names sid {sid}, not in attacks.rules", k.name());
            }
            assert_eq!(AttackKind::parse(k.name()), Some(k));
        }
    }

    #[test]
    fn every_attack_writes_frames_in_time_order() {
        let office = OfficeNet::in_24(7, 1);
        let mut rng = Rng::new(1);
        for kind in AttackKind::ALL {
            let a = Attack { kind, actor: [198, 18, 5, 5], domain: "c2.example".into(), start_us: 1_000_000 };
            let f = frames(&a, &office, &mut rng).unwrap();
            assert!(!f.is_empty(), "{}", kind.name());
            assert!(f.windows(2).all(|w| w[0].0 <= w[1].0));
            assert!(f[0].0 >= 1_000_000);
        }
        let a = Attack { kind: AttackKind::Beacon, actor: [198, 18, 5, 5], domain: String::new(), start_us: 0 };
        assert!(frames(&a, &office, &mut rng).is_err(), "a beacon without a domain is refused");
    }
}
