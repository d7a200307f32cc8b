//! A real SMTP receiver for the delivery tests: Python's aiosmtpd (`pip install aiosmtpd`) on a
//! free loopback port, writing each message into a maildir. Shared by tests/delivery.rs and
//! tests/ack.rs.
#![allow(dead_code)]

use std::time::Duration;

pub struct Smtp {
    child: std::process::Child,
    pub port: u16,
    pub maildir: tempfile::TempDir,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub async fn start_smtp() -> Smtp {
    let maildir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = std::process::Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir.path().join("box"))
        .spawn()
        .expect("python3 with aiosmtpd is needed: pip install aiosmtpd");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Smtp { child, port, maildir };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("aiosmtpd did not start on port {port}: is it installed (scripts/setup-test-env.sh)?");
}

pub fn read_maildir(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(dir.join("box").join(sub)) {
            for e in rd.flatten() {
                out.push(std::fs::read_to_string(e.path()).unwrap());
            }
        }
    }
    out
}

/// The text of one raw message's body, undoing a quoted-printable or base64 transfer encoding.
pub fn mail_text(raw: &str) -> String {
    let raw = raw.replace("\r\n", "\n");
    let (headers, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
    let encoding = headers
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-transfer-encoding:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    match encoding.as_str() {
        "base64" => {
            use base64::Engine;
            let joined: String = body.split_whitespace().collect();
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(joined).expect("base64 body")).expect("utf-8 body")
        }
        "quoted-printable" => {
            let soft = body.replace("=\n", "");
            let bytes = soft.as_bytes();
            let mut out = Vec::with_capacity(bytes.len());
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'=' && i + 2 < bytes.len() {
                    if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                }
                out.push(bytes[i]);
                i += 1;
            }
            String::from_utf8_lossy(&out).into_owned()
        }
        _ => body.to_string(),
    }
}
