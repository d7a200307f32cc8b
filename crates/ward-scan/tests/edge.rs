//! Edge devices in the lab: HTTP responders on loopback that answer `GET /` with the public
//! markers of a FortiGate SSL-VPN, an Exchange server, a Confluence and an ordinary county site;
//! a real scan names each product (version when shown) with its KEV entries, and says nothing of
//! the ordinary site.

use std::io::{Read, Write};
use std::net::TcpListener;

use clap::Parser;
use serde_json::Value;
use ward_scan::cli::{run, ScanCli};

fn responder(response: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = stream;
                let mut buf = [0u8; 4096];
                let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let _ = s.read(&mut buf);
                let _ = s.write_all(response.as_bytes());
            });
        }
    });
    port
}

const FORTIGATE: &str = "HTTP/1.1 302 Found\r\nDate: Tue, 08 Dec 2026 03:00:00 GMT\r\nServer: xxxxxxxx-xxxxx\r\nLocation: /remote/login?lang=en\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const EXCHANGE: &str = "HTTP/1.1 302 Found\r\nServer: Microsoft-IIS/10.0\r\nLocation: https://mail.county.example/owa/\r\nX-OWA-Version: 15.2.1544.4\r\nX-FEServer: MAIL01\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const CONFLUENCE: &str = "HTTP/1.1 200 OK\r\nX-Confluence-Request-Time: 1765162800000\r\nContent-Type: text/html;charset=UTF-8\r\nContent-Length: 96\r\nConnection: close\r\n\r\n<html><head><meta name=\"ajs-version-number\" content=\"7.13.0\"><title>Log In</title></head></html>";
const ORDINARY: &str = "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: 45\r\nConnection: close\r\n\r\n<html><title>Adams County Elections</title>";

#[test]
fn edge_products_are_named_with_their_kev_entries() {
    let ports = [responder(FORTIGATE), responder(EXCHANGE), responder(CONFLUENCE), responder(ORDINARY)];
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("scan.json");
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        scan: ScanCli,
    }
    let list = ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
    let cli = Cli::parse_from([
        "scan", "127.0.0.1", "--ports", &list, "--state", dir.path().to_str().unwrap(), "--json", json.to_str().unwrap(), "--no-udp", "--no-credentials", "--no-history",
    ]);
    run(cli.scan).unwrap();
    let result: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let findings = result["findings"].as_array().unwrap();
    let edge = |port: u16| findings.iter().find(|f| f["port"] == port && f["check"].as_str().unwrap_or("").starts_with("edge.")).cloned();
    let forti = edge(ports[0]).unwrap_or_else(|| panic!("FortiGate not named: {findings:?}"));
    assert_eq!(forti["check"], "edge.fortinet-sslvpn");
    assert!(forti["evidence"].as_str().unwrap().contains("/remote/login"));
    assert!(forti["description"].as_str().unwrap().contains("known-exploited vulnerabilities"), "{forti}");
    assert!(forti["references"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().contains("CVE-")));
    assert!(forti["solution"].as_str().unwrap().contains("get system status"));
    let owa = edge(ports[1]).expect("Exchange named");
    assert_eq!(owa["check"], "edge.exchange-owa");
    assert!(owa["description"].as_str().unwrap().contains("15.2.1544.4"), "{owa}");
    let conf = edge(ports[2]).expect("Confluence named");
    assert!(conf["description"].as_str().unwrap().contains("7.13.0"));
    assert!(edge(ports[3]).is_none(), "an ordinary site is no edge device");
}
