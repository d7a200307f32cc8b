//! Live AF_PACKET capture, for real: two fresh network namespaces joined by a veth pair, UDP sent
//! from one, captured and decoded in the other. Needs root and iproute2 (`ip`); without them the
//! test prints why it is skipped.

use std::net::UdpSocket;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ward_packet::capture::{CaptureError, LinkType, LiveCapture};
use ward_packet::decode::Decoder;

const DATAGRAMS: usize = 20;
const PORT: u16 = 9999;

struct Namespaces {
    names: Vec<String>,
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Moves the calling thread into the named network namespace.
fn enter_netns(name: &str) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(format!("/var/run/netns/{name}")).expect("open netns");
    // SAFETY: setns on a valid namespace descriptor; affects only this thread.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

fn skip_reason() -> Option<&'static str> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root");
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("`ip` (iproute2) is missing");
    }
    None
}

#[test]
fn unknown_interface_is_a_clear_error() {
    if let Some(reason) = skip_reason() {
        println!("skipped: {reason}");
        return;
    }
    let e = LiveCapture::open("ward-nope0", 0).unwrap_err();
    assert!(matches!(e, CaptureError::Live { .. }));
    assert!(e.to_string().contains("no such interface"), "{e}");
}

#[test]
fn captures_udp_sent_across_a_veth_pair() {
    if let Some(reason) = skip_reason() {
        println!("skipped: {reason}");
        return;
    }
    let id = std::process::id();
    let (ns_a, ns_b) = (format!("ward-cap-a-{id}"), format!("ward-cap-b-{id}"));
    let _guard = Namespaces {
        names: vec![ns_a.clone(), ns_b.clone()],
    };
    if !ip(&["netns", "add", &ns_a]) || !ip(&["netns", "add", &ns_b]) {
        println!("skipped: cannot create network namespaces here");
        return;
    }
    assert!(ip(&[
        "-n", &ns_a, "link", "add", "wa0", "type", "veth", "peer", "name", "wb0", "netns", &ns_b
    ]));
    assert!(ip(&[
        "-n",
        &ns_a,
        "addr",
        "add",
        "192.0.2.1/24",
        "dev",
        "wa0"
    ]));
    assert!(ip(&[
        "-n",
        &ns_b,
        "addr",
        "add",
        "192.0.2.2/24",
        "dev",
        "wb0"
    ]));
    assert!(ip(&["-n", &ns_a, "link", "set", "wa0", "up"]));
    assert!(ip(&["-n", &ns_b, "link", "set", "wb0", "up"]));

    let (ready_tx, ready_rx) = mpsc::channel();
    let ns = ns_b.clone();
    let capture = std::thread::spawn(move || {
        enter_netns(&ns);
        let mut cap = LiveCapture::open("wb0", 0).expect("open live capture");
        assert_eq!(cap.linktype(), LinkType::Ethernet);
        ready_tx.send(()).unwrap();
        let mut dec = Decoder::new();
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        while seen.len() < DATAGRAMS && Instant::now() < deadline {
            let Some(raw) = cap.next_packet().expect("read") else {
                continue;
            };
            let res = dec.decode(&raw);
            if let Some(p) = res.packet() {
                if p.proto == 17 && p.dst_port == PORT && p.payload.starts_with(b"ward-live-") {
                    seen.push(String::from_utf8_lossy(p.payload).into_owned());
                    assert_eq!(p.src.to_string(), "192.0.2.1");
                }
            }
        }
        let stats = cap.stats().expect("kernel counters");
        (seen, stats)
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("capture ready");

    let ns = ns_a.clone();
    std::thread::spawn(move || {
        enter_netns(&ns);
        let sock = UdpSocket::bind("192.0.2.1:0").unwrap();
        for i in 0..DATAGRAMS {
            sock.send_to(format!("ward-live-{i}").as_bytes(), ("192.0.2.2", PORT))
                .unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .join()
    .unwrap();

    let (seen, stats) = capture.join().unwrap();
    println!(
        "captured {} of {DATAGRAMS} datagrams; kernel counters {stats:?}",
        seen.len()
    );
    assert_eq!(seen.len(), DATAGRAMS, "captured {seen:?}");
    assert_eq!(seen[0], "ward-live-0");
    assert!(stats.received >= DATAGRAMS as u64);
}
