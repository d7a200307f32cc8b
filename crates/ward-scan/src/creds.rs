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
        "http" => {
            let form = obs.http.as_ref().filter(|h| h.status == 200).and_then(|h| find_login_form(&h.body))?;
            let (found, tried) = first_working(|u, p| form_attempt(obs, tls, &form, u, p, timeouts)).await;
            (found, tried, "the web login form")
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

/// A password login form found on a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginForm {
    /// Path the form posts to (same host only).
    pub action: String,
    pub user_field: String,
    pub password_field: String,
    /// Other named inputs with their values (hidden fields, submit buttons), sent as they are.
    pub other: Vec<(String, String)>,
}

/// Attribute value of an HTML tag (`name="x"`, `name='x'` or `name=x`), case-insensitive name.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find(name).map(|i| i + from) {
        from = at + name.len();
        let before_ok = at == 0 || lower.as_bytes()[at - 1].is_ascii_whitespace();
        let rest = lower[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let offset = tag.len() - rest.len() + 1;
        let value = tag[offset..].trim_start();
        let v = match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or(""),
            _ => value.split(|c: char| c.is_whitespace() || c == '>').next().unwrap_or(""),
        };
        return Some(v.to_string());
    }
    None
}

/// The first form with a password field that posts to this site, with its user field.
pub fn find_login_form(body: &str) -> Option<LoginForm> {
    let lower = body.to_ascii_lowercase();
    let mut from = 0;
    while let Some(start) = lower[from..].find("<form").map(|i| i + from) {
        let end = lower[start..].find("</form").map(|i| i + start).unwrap_or(lower.len());
        from = end.max(start + 5);
        let form = &body[start..end];
        let open_tag = &form[..form.find('>').unwrap_or(form.len())];
        if !attribute(open_tag, "method").is_some_and(|m| m.eq_ignore_ascii_case("post")) {
            continue;
        }
        let action = attribute(open_tag, "action").filter(|a| !a.is_empty()).unwrap_or_else(|| "/".into());
        // same site only: a relative path (an absolute URL or //host could point anywhere)
        if action.contains("://") || action.starts_with("//") || action.to_ascii_lowercase().starts_with("javascript:") {
            continue;
        }
        let action = if action.starts_with('/') { action } else { format!("/{action}") };
        let (mut user, mut password, mut other) = (None, None, Vec::new());
        let form_lower = form.to_ascii_lowercase();
        let mut at = 0;
        while let Some(i) = form_lower[at..].find("<input").map(|i| i + at) {
            let tag_end = form[i..].find('>').map(|e| i + e).unwrap_or(form.len());
            let tag = &form[i..tag_end];
            at = tag_end.max(i + 6);
            let Some(name) = attribute(tag, "name").filter(|n| !n.is_empty()) else { continue };
            let kind = attribute(tag, "type").unwrap_or_else(|| "text".into()).to_ascii_lowercase();
            match kind.as_str() {
                "password" if password.is_none() => password = Some(name),
                "text" | "email" if user.is_none() => user = Some(name),
                "hidden" | "submit" => other.push((name, attribute(tag, "value").unwrap_or_default())),
                _ => {}
            }
        }
        if let (Some(user_field), Some(password_field)) = (user, password) {
            return Some(LoginForm { action, user_field, password_field, other });
        }
    }
    None
}

fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Judge a login form's answer: a redirect away from the login page or a page without a password
/// field is a success; the form again, an error message, 401 or 403 a failure; 429 or anything
/// else stops the attempts.
pub fn judge_form_answer(response: &probe::HttpResponse) -> Attempt {
    let lower = response.body.to_ascii_lowercase();
    let failure_words = ["invalid", "incorrect", "failed", "wrong", "denied", "try again"];
    match response.status {
        301 | 302 | 303 | 307 | 308 => {
            let location = response.header("location").unwrap_or("").to_ascii_lowercase();
            if location.is_empty() || ["login", "signin", "error", "fail", "denied"].iter().any(|w| location.contains(w)) {
                Attempt::Failed
            } else {
                Attempt::Success
            }
        }
        200 if find_login_form(&response.body).is_some() || lower.contains("type=\"password\"") || failure_words.iter().any(|w| lower.contains(w)) => Attempt::Failed,
        200 => Attempt::Success,
        401 | 403 => Attempt::Failed,
        _ => Attempt::Stop,
    }
}

async fn form_attempt(obs: &Observation, tls: &Arc<TlsClient>, form: &LoginForm, user: &str, password: &str, timeouts: &ProbeTimeouts) -> Attempt {
    let addr = SocketAddr::new(obs.service.ip, obs.service.port);
    let mut fields = vec![(form.user_field.clone(), user.to_string()), (form.password_field.clone(), password.to_string())];
    fields.extend(form.other.iter().cloned());
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v))).collect();
    let body = body.join("&");
    let host = probe::host_header(addr.ip(), addr.port(), obs.hostname.as_deref());
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ward-scan\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        form.action,
        body.len()
    );
    let Ok(Ok(stream)) = tokio::time::timeout(timeouts.exchange, tokio::net::TcpStream::connect(addr)).await else { return Attempt::Stop };
    let bytes = if obs.service.tls {
        let Some((mut s, _)) = tls.handshake(stream, obs.hostname.as_deref(), addr.ip(), timeouts.exchange).await else { return Attempt::Stop };
        if s.write_all(request.as_bytes()).await.is_err() {
            return Attempt::Stop;
        }
        read_all(&mut s, timeouts.exchange).await
    } else {
        let mut s = stream;
        if s.write_all(request.as_bytes()).await.is_err() {
            return Attempt::Stop;
        }
        read_all(&mut s, timeouts.exchange).await
    };
    match probe::parse_http_response(&bytes) {
        Some(response) => judge_form_answer(&response),
        None => Attempt::Stop,
    }
}

/// Read a whole (small) response: to close, 64 KiB or the timeout.
async fn read_all<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, timeout: Duration) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + timeout;
    while buf.len() < probe::MAX_RESPONSE {
        match tokio::time::timeout_at(deadline, tokio::io::AsyncReadExt::read(stream, &mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    buf
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
    fn login_forms_are_found_and_answers_judged() {
        let page = r#"<html><form action="/search" method="get"><input name="q"></form>
            <FORM METHOD=POST action='login.php'><input type="hidden" name="csrf" value="t0k">
            <input type=text name=user><input type="password" name="pw"><input type=submit name=go value="Log in"></FORM>"#;
        let form = find_login_form(page).unwrap();
        assert_eq!(form, LoginForm { action: "/login.php".into(), user_field: "user".into(), password_field: "pw".into(), other: vec![("csrf".into(), "t0k".into()), ("go".into(), "Log in".into())] });
        assert_eq!(find_login_form(r#"<form method="post" action="https://elsewhere.example/x"><input name=u><input type=password name=p></form>"#), None);
        assert_eq!(find_login_form("<form method=post><input name=u></form>"), None);
        assert_eq!(find_login_form("<form method=post action=\"/"), None);
        assert_eq!(form_encode("a b&c=é"), "a+b%26c%3D%C3%A9");
        let answer = |status: u16, headers: &[(&str, &str)], body: &str| probe::HttpResponse { status, headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), body: body.into() };
        assert_eq!(judge_form_answer(&answer(302, &[("Location", "/dashboard")], "")), Attempt::Success);
        assert_eq!(judge_form_answer(&answer(302, &[("Location", "/login?error=1")], "")), Attempt::Failed);
        assert_eq!(judge_form_answer(&answer(200, &[], page)), Attempt::Failed);
        assert_eq!(judge_form_answer(&answer(200, &[], "Invalid password")), Attempt::Failed);
        assert_eq!(judge_form_answer(&answer(200, &[], "<h1>Election results admin</h1>")), Attempt::Success);
        assert_eq!(judge_form_answer(&answer(429, &[], "")), Attempt::Stop);
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
