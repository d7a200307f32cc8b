//! Loads a rules file (default: the ET Open file in ../shared/data), prints the load report,
//! load+compile time and peak RSS, then times inspection of a few typical packets and
//! transactions with all rules loaded.
//! `cargo run --release -p ward-detect --example load_et [--json] [FILE...]`

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Instant;

use ward_detect::*;
use ward_model::Timestamp;

/// Iterations of each timed inspection.
const ROUNDS: u32 = 20_000;

fn main() {
    let mut json = false;
    let mut files: Vec<PathBuf> = Vec::new();
    for a in std::env::args().skip(1) {
        if a == "--json" {
            json = true;
        } else {
            files.push(a.into());
        }
    }
    if files.is_empty() {
        files.push(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/et-open/emerging-all.rules").into());
    }
    let vars = Vars::default();
    let cls = Classification::beside(&files[0]);
    let (set, report) = load(&files, &vars, &cls);
    let check = CheckReport { report, json };
    print!("{check}");
    if json {
        return;
    }
    println!(
        "load+compile: {:.3} s, peak RSS (VmHWM): {} MB",
        check.report.duration.as_secs_f64(),
        load::proc_status_kb("VmHWM:").unwrap_or(0) / 1024
    );

    let client: IpAddr = "192.168.1.10".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let server: IpAddr = "93.184.216.34".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let req = b"GET /index.html?q=hello HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: */*\r\n\r\n";
    let body: Vec<u8> = (0..1400u32).map(|i| b"<html><body>lorem ipsum dolor sit amet "[(i % 38) as usize]).collect();
    let mut pkt = PacketInput::new(Timestamp::from_secs_micros(1_700_000_000, 0), client, 40000, server, 80, 6);
    pkt.flow_established = true;
    pkt.app_proto = Some("http");
    pkt.tcp = Some(TcpHeader { flags: 0x18, seq: 1, ack: 1, window: 500 });
    let mut flow = FlowDetect::new();
    let mut scratch = DetectScratch::new();
    let mut out = Vec::new();

    let mut time = |name: &str, f: &mut dyn FnMut(&mut FlowDetect, &mut DetectScratch, &mut Vec<Match>)| {
        let t = Instant::now();
        let mut alerts = 0;
        for _ in 0..ROUNDS {
            out.clear();
            f(&mut flow, &mut scratch, &mut out);
            alerts += out.len();
        }
        println!("{name:<34} {:>8.2} us per inspection ({alerts} alerts)", t.elapsed().as_secs_f64() * 1e6 / ROUNDS as f64);
    };
    let mut p1 = pkt;
    p1.payload = req;
    time("packet: http request (95 B)", &mut |f, s, o| set.inspect_packet(&p1, f, s, o));
    let mut p2 = pkt;
    p2.payload = &body;
    p2.to_server = false;
    std::mem::swap(&mut p2.src_ip, &mut p2.dst_ip);
    std::mem::swap(&mut p2.src_port, &mut p2.dst_port);
    time("packet: html body (1400 B)", &mut |f, s, o| set.inspect_packet(&p2, f, s, o));
    let zeros = vec![b'x'; 1400];
    let mut p4 = p2;
    p4.payload = &zeros;
    time("packet: 1400 x 'x' (few candidates)", &mut |f, s, o| set.inspect_packet(&p4, f, s, o));
    let empty = RuleSet::empty();
    time("packet: html body, no rules", &mut |f, s, o| empty.inspect_packet(&p2, f, s, o));
    let tx = HttpInput {
        method: Some(b"GET"),
        uri: Some(b"/index.html?q=hello"),
        uri_raw: Some(b"/index.html?q=hello"),
        host: Some(b"www.example.com"),
        user_agent: Some(b"Mozilla/5.0 (X11; Linux x86_64)"),
        request_header: Some(b"Host: www.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: */*\r\n"),
        request_line: Some(b"GET /index.html?q=hello HTTP/1.1"),
        ..Default::default()
    };
    time("http request transaction", &mut |f, s, o| set.inspect_http(&p1, &tx, f, s, o));
    let resp = HttpInput { stat_code: Some(b"200"), stat_msg: Some(b"OK"), response_body: Some(&body), ..tx };
    time("http response transaction", &mut |f, s, o| set.inspect_http(&p2, &resp, f, s, o));
    let names: [&[u8]; 1] = [b"www.example.com"];
    let dns = DnsInput { queries: &names, ..Default::default() };
    let mut p3 = pkt;
    p3.ip_proto = 17;
    p3.dst_port = 53;
    time("dns query", &mut |f, s, o| set.inspect_dns(&p3, &dns, f, s, o));
    let tls = TlsInput { sni: Some(b"www.example.com"), version: Some(0x0303), ..Default::default() };
    time("tls client hello", &mut |f, s, o| set.inspect_tls(&p1, &tls, f, s, o));
}
