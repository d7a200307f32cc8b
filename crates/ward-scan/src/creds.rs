//! Default and weak credentials: a small vendor-default list tried against SSH, FTP and HTTP
//! Basic authentication, with a strict budget per service.
//!
//! Lockout awareness: at most [`MAX_ATTEMPTS_PER_SERVICE`] attempts per service and scan (below
//! the usual 5-10 failures that lock an account), one at a time, stopping at the first success
//! or at any sign of throttling (HTTP 429, FTP 421, an SSH disconnect). Every attempt is
//! counted in the returned evidence.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio::io::AsyncWriteExt;

use crate::finding::Severity;
use crate::probe::{self, Observation, ProbeTimeouts};
use crate::tls::TlsClient;
use crate::checks::service_finding;
use crate::finding::Finding;

/// Attempts per service per scan: below common lockout thresholds (Windows' default 10, many
/// appliances 5), so a scan never locks out the office's real administrator.
pub const MAX_ATTEMPTS_PER_SERVICE: usize = 4;

/// Vendor defaults, most likely first. Voting equipment has shipped with root/password and
/// admin/pasta (public certification reports); the others are the commonest appliance defaults.
pub const DEFAULT_CREDENTIALS: [(&str, &str); 8] = [
    ("admin", "pasta"),
    ("root", "password"),
    ("admin", "password"),
    ("admin", "admin"),
    ("root", "root"),
    ("admin", "1234"),
    ("administrator", "password"),
    ("user", "user"),
];

/// Try the list within the budget; the first credential that works.
async fn first_working<F, Fut>(mut attempt: F) -> (Option<(&'static str, &'static str)>, usize)
where
    F: FnMut(&'static str, &'static str) -> Fut,
    Fut: std::future::Future<Output = Attempt>,
{
    let mut tried = 0;
    for (user, password) in DEFAULT_CREDENTIALS.iter().take(MAX_ATTEMPTS_PER_SERVICE) {
        tried += 1;
        match attempt(user, password).await {
            Attempt::Success => return (Some((user, password)), tried),
            Attempt::Failed => {}
            Attempt::Stop => break,
        }
    }
    (None, tried)
}

/// The outcome of one login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Success,
    Failed,
    /// Throttled, locked out or the service went away: try no more.
    Stop,
}

/// Check a service for default credentials; `None` when the service has no login we try.
pub async fn check(obs: &Observation, tls: &Arc<TlsClient>, timeouts: &ProbeTimeouts) -> Option<Finding> {
    let addr = SocketAddr::new(obs.service.ip, obs.service.port);
    let (found, tried, protocol) = match obs.service.name.as_str() {
        "ssh" => {
            let (found, tried) = first_working(|u, p| ssh_attempt(addr, u, p, timeouts.exchange)).await;
            (found, tried, "SSH")
        }
        "ftp" => {
            let (found, tried) = first_working(|u, p| ftp_attempt(addr, u, p, timeouts)).await;
            (found, tried, "FTP")
        }
        "telnet" => {
            let (found, tried) = first_working(|u, p| telnet_attempt(addr, u, p, timeouts)).await;
            (found, tried, "Telnet")
        }
        "http" if obs.http.as_ref().is_some_and(|h| h.status == 401 && h.header("www-authenticate").is_some_and(|v| v.to_ascii_lowercase().starts_with("basic"))) => {
            let (found, tried) = first_working(|u, p| basic_attempt(obs, tls, u, p, timeouts)).await;
            (found, tried, "HTTP Basic")
        }
        _ => return None,
    };
    let (user, password) = found?;
    Some(service_finding(
        obs,
        "creds.default",
        Severity::Critical,
        &format!("Default password works on {protocol}"),
        "Anyone can log in with a factory-default or published password and take over the system.",
        format!("{protocol} login succeeded as {user:?} with password {password:?} (attempt {tried} of at most {MAX_ATTEMPTS_PER_SERVICE})"),
        "Change this account's password to a long unique one now, remove unused default accounts, and require multi-factor authentication for remote access.",
        &["https://www.cisa.gov/securebydesign/pledge/secure-by-design-goals/default-passwords", "https://cwe.mitre.org/data/definitions/1392.html"],
    ))
}

struct SshClient;

#[async_trait::async_trait]
impl russh::client::Handler for SshClient {
    type Error = russh::Error;

    async fn check_server_key(&mut self, _key: &russh::keys::key::PublicKey) -> Result<bool, Self::Error> {
        // a scanner does not pin host keys: it only asks whether a password works
        Ok(true)
    }
}

/// One SSH password attempt on its own connection.
pub async fn ssh_attempt(addr: SocketAddr, user: &str, password: &str, timeout: Duration) -> Attempt {
    let config = Arc::new(russh::client::Config { inactivity_timeout: Some(timeout), ..Default::default() });
    // PAM delays a failed password by about 2 s: allow it on top of the exchange timeout
    let attempt = async {
        let mut handle = russh::client::connect(config, addr, SshClient).await.ok()?;
        let ok = handle.authenticate_password(user, password).await.ok()?;
        let _ = handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
        Some(ok)
    };
    match tokio::time::timeout(timeout * 2, attempt).await {
        Ok(Some(true)) => Attempt::Success,
        Ok(Some(false)) => Attempt::Failed,
        _ => Attempt::Stop,
    }
}

async fn ftp_attempt(addr: SocketAddr, user: &str, password: &str, timeouts: &ProbeTimeouts) -> Attempt {
    let Ok(Ok(mut stream)) = tokio::time::timeout(timeouts.exchange, tokio::net::TcpStream::connect(addr)).await else { return Attempt::Stop };
    let mut greeting = [0u8; 512];
    let read = tokio::time::timeout(timeouts.exchange, tokio::io::AsyncReadExt::read(&mut stream, &mut greeting)).await;
    if !matches!(read, Ok(Ok(n)) if n >= 3 && greeting.starts_with(b"220")) {
        return Attempt::Stop;
    }
    if probe::ftp_login(&mut stream, user, password, timeouts).await {
        Attempt::Success
    } else {
        Attempt::Failed
    }
}

/// Longest Telnet exchange read while waiting for a prompt.
const MAX_TELNET_TEXT: usize = 16 * 1024;
/// Time allowed for the verdict after the password: PAM delays a failure by about 3 s.
const TELNET_VERDICT_WAIT: Duration = Duration::from_secs(6);

/// Strip Telnet option negotiation from `bytes`, refusing every option (DO → WONT, WILL → DONT).
pub fn telnet_text(bytes: &[u8], replies: &mut Vec<u8>) -> String {
    let mut text = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != 0xff {
            text.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(&verb @ (0xfb..=0xfe)) => {
                if let Some(&option) = bytes.get(i + 2) {
                    match verb {
                        0xfd => replies.extend_from_slice(&[0xff, 0xfc, option]), // DO -> WONT
                        0xfb => replies.extend_from_slice(&[0xff, 0xfe, option]), // WILL -> DONT
                        _ => {}
                    }
                }
                i += 3;
            }
            Some(0xfa) => {
                // subnegotiation: skip to IAC SE
                let end = bytes[i..].windows(2).position(|w| w == [0xff, 0xf0]).map(|p| i + p + 2).unwrap_or(bytes.len());
                i = end;
            }
            Some(0xff) => {
                text.push(0xff);
                i += 2;
            }
            _ => i += 2,
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// Read Telnet text until `done` accepts it, the peer closes or `wait` passes.
async fn telnet_read(stream: &mut tokio::net::TcpStream, wait: Duration, done: impl Fn(&str) -> bool) -> (String, bool) {
    let mut text = String::new();
    let mut chunk = [0u8; 2048];
    let deadline = tokio::time::Instant::now() + wait;
    while text.len() < MAX_TELNET_TEXT {
        match tokio::time::timeout_at(deadline, tokio::io::AsyncReadExt::read(stream, &mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                let mut replies = Vec::new();
                text.push_str(&telnet_text(&chunk[..n], &mut replies));
                if !replies.is_empty() && stream.write_all(&replies).await.is_err() {
                    return (text, true);
                }
                if done(&text) {
                    return (text, false);
                }
            }
            Ok(_) => return (text, true),
            Err(_) => return (text, false),
        }
    }
    (text, false)
}

fn ends_with_prompt(text: &str, prompts: &[&str]) -> bool {
    let tail = text.trim_end().to_ascii_lowercase();
    prompts.iter().any(|p| tail.ends_with(p))
}

/// One Telnet login attempt: wait for the login prompt, send the user, then the password, and
/// judge by what follows (a failure message or a new prompt is a failure).
pub async fn telnet_attempt(addr: SocketAddr, user: &str, password: &str, timeouts: &ProbeTimeouts) -> Attempt {
    let Ok(Ok(mut stream)) = tokio::time::timeout(timeouts.exchange, tokio::net::TcpStream::connect(addr)).await else { return Attempt::Stop };
    let (_, closed) = telnet_read(&mut stream, timeouts.exchange, |t| ends_with_prompt(t, &["login:", "username:", "user:"])).await;
    if closed || stream.write_all(format!("{user}\r\n").as_bytes()).await.is_err() {
        return Attempt::Stop;
    }
    let (_, closed) = telnet_read(&mut stream, timeouts.exchange, |t| ends_with_prompt(t, &["password:"])).await;
    if closed || stream.write_all(format!("{password}\r\n").as_bytes()).await.is_err() {
        return Attempt::Stop;
    }
    let failure = |t: &str| {
        let lower = t.to_ascii_lowercase();
        ["incorrect", "failed", "denied", "invalid", "bad password"].iter().any(|m| lower.contains(m)) || ends_with_prompt(t, &["login:", "username:"])
    };
    let (text, _) = telnet_read(&mut stream, TELNET_VERDICT_WAIT, |t| failure(t) || ends_with_prompt(t, &["$", "#", ">"])).await;
    if text.trim().is_empty() {
        Attempt::Stop
    } else if failure(&text) {
        Attempt::Failed
    } else {
        Attempt::Success
    }
}

async fn basic_attempt(obs: &Observation, tls: &Arc<TlsClient>, user: &str, password: &str, timeouts: &ProbeTimeouts) -> Attempt {
    let addr = SocketAddr::new(obs.service.ip, obs.service.port);
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let host = probe::host_header(addr.ip(), addr.port(), obs.hostname.as_deref());
    let request = probe::http_request(&host, "/", &format!("Authorization: Basic {token}\r\n"));
    let Ok(Ok(stream)) = tokio::time::timeout(timeouts.exchange, tokio::net::TcpStream::connect(addr)).await else { return Attempt::Stop };
    let bytes = if obs.service.tls {
        let Some((mut s, _)) = tls.handshake(stream, obs.hostname.as_deref(), addr.ip(), timeouts.exchange).await else { return Attempt::Stop };
        if s.write_all(&request).await.is_err() {
            return Attempt::Stop;
        }
        read_head(&mut s, timeouts.exchange).await
    } else {
        let mut s = stream;
        if s.write_all(&request).await.is_err() {
            return Attempt::Stop;
        }
        read_head(&mut s, timeouts.exchange).await
    };
    match probe::parse_http_response(&bytes).map(|r| r.status) {
        Some(200..=399) => Attempt::Success,
        Some(401) | Some(403) => Attempt::Failed,
        _ => Attempt::Stop,
    }
}

async fn read_head<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, timeout: Duration) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    let deadline = tokio::time::Instant::now() + timeout;
    while buf.len() < 16 * 1024 && !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline, tokio::io::AsyncReadExt::read(stream, &mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_holds_the_voting_equipment_defaults_within_budget() {
        let tried: Vec<_> = DEFAULT_CREDENTIALS.iter().take(MAX_ATTEMPTS_PER_SERVICE).collect();
        assert!(tried.contains(&&("admin", "pasta")));
        assert!(tried.contains(&&("root", "password")));
    }

    #[test]
    fn telnet_negotiation_is_refused_and_stripped() {
        let mut replies = Vec::new();
        let text = telnet_text(b"\xff\xfd\x01\xff\xfb\x03\xff\xfa\x18\x01\xff\xf0Debian\r\nlogin: ", &mut replies);
        assert_eq!(text, "Debian\r\nlogin: ");
        assert_eq!(replies, [0xff, 0xfc, 0x01, 0xff, 0xfe, 0x03]);
        assert!(ends_with_prompt("vm login: ", &["login:"]));
        let mut r = Vec::new();
        assert_eq!(telnet_text(b"\xff", &mut r), "");
    }

    #[tokio::test]
    async fn budget_stops_and_first_success_wins() {
        let mut calls = 0;
        let (found, tried) = first_working(|_, _| {
            calls += 1;
            async { Attempt::Failed }
        })
        .await;
        assert_eq!((found, tried, calls), (None, MAX_ATTEMPTS_PER_SERVICE, MAX_ATTEMPTS_PER_SERVICE));
        let (found, tried) = first_working(|u, _| async move { if u == "root" { Attempt::Success } else { Attempt::Failed } }).await;
        assert_eq!((found, tried), (Some(("root", "password")), 2));
        let (found, tried) = first_working(|_, _| async { Attempt::Stop }).await;
        assert_eq!((found, tried), (None, 1));
    }
}
