//! Stand-ins for each office's inbox, for `ward demo` and `ward drill`: a webhook receiver (HTTP
//! on loopback, checks the hub's HMAC signature) and an SMTP server (loopback, accepts every
//! message). Both keep what they received, with the time it arrived, so the demo and the drill
//! can show and measure each warning; a drill also follows them live ([`Inbox::follow`]) to play
//! the people who acknowledge.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One message that reached an office.
#[derive(Debug, Clone)]
pub struct Received {
    /// Webhook: the hook's name (the jurisdiction's slug). Email: the recipients.
    pub to: String,
    pub channel: &'static str,
    pub at: SystemTime,
    /// Webhook: the JSON body. Email: the whole message (headers and body).
    pub body: String,
    /// Webhook: whether `X-Ward-Signature` matched the contact's secret.
    pub signature_ok: bool,
}

/// Everything both receivers got, in arrival order.
#[derive(Clone, Default)]
pub struct Inbox {
    messages: Arc<Mutex<Vec<Received>>>,
    secrets: Arc<Mutex<HashMap<String, String>>>,
    follower: Arc<Mutex<Option<tokio::sync::mpsc::UnboundedSender<Received>>>>,
}

impl Inbox {
    pub fn messages(&self) -> Vec<Received> {
        self.messages.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The webhook secret expected for hook `name`.
    pub fn set_secret(&self, name: &str, secret: &str) {
        self.secrets.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), secret.to_string());
    }

    /// Every message from now on is also sent to the returned receiver, as it arrives.
    pub fn follow(&self) -> tokio::sync::mpsc::UnboundedReceiver<Received> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        *self.follower.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        rx
    }

    fn push(&self, r: Received) {
        if let Some(tx) = self.follower.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = tx.send(r.clone());
        }
        self.messages.lock().unwrap_or_else(|p| p.into_inner()).push(r);
    }
}

/// Starts the webhook receiver on 127.0.0.1 (any port); hooks are `POST /hook/{name}`.
pub async fn start_webhook(inbox: Inbox) -> anyhow::Result<SocketAddr> {
    let app = Router::new().route("/hook/{name}", post(hook)).with_state(inbox);
    let listener = TcpListener::bind("127.0.0.1:0").await.context("cannot start the demo's webhook receiver")?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

async fn hook(State(inbox): State<Inbox>, Path(name): Path<String>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let secret = inbox.secrets.lock().unwrap_or_else(|p| p.into_inner()).get(&name).cloned();
    let signature_ok = secret.is_some_and(|s| verify(&s, &header("x-ward-timestamp"), &body, &header("x-ward-signature")));
    inbox.push(Received {
        to: name,
        channel: "webhook",
        at: SystemTime::now(),
        body: String::from_utf8_lossy(&body).into_owned(),
        signature_ok,
    });
    StatusCode::NO_CONTENT
}

/// Checks `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` as a receiving office would.
pub fn verify(secret: &str, timestamp: &str, body: &[u8], signature: &str) -> bool {
    let Some(hex_sig) = signature.strip_prefix("sha256=") else { return false };
    let Ok(expected) = hex::decode(hex_sig) else { return false };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return false };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// Longest message the SMTP receiver keeps (the rest is read and dropped).
const MAX_MESSAGE: usize = 1 << 20;

/// Starts the SMTP receiver on 127.0.0.1 (any port): EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP,
/// QUIT; no authentication, no TLS (loopback only).
pub async fn start_smtp(inbox: Inbox) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await.context("cannot start the demo's SMTP server")?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let inbox = inbox.clone();
            tokio::spawn(async move {
                let _ = smtp_session(stream, inbox).await;
            });
        }
    });
    Ok(addr)
}

async fn smtp_session(stream: tokio::net::TcpStream, inbox: Inbox) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 ward-demo ESMTP ready\r\n").await?;
    let mut rcpt: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let upper = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-ward-demo\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("HELO") {
            b"250 ward-demo\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            rcpt.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            rcpt.push(line.trim_end()[8..].trim().trim_matches(|c| c == '<' || c == '>').to_string());
            b"250 OK\r\n"
        } else if upper == "DATA" {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut message = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                if message.len() < MAX_MESSAGE {
                    message.push_str(line.strip_prefix('.').filter(|_| line.starts_with("..")).unwrap_or(&line));
                }
            }
            inbox.push(Received { to: rcpt.join(", "), channel: "email", at: SystemTime::now(), body: message, signature_ok: true });
            b"250 OK queued\r\n"
        } else if upper == "RSET" {
            rcpt.clear();
            b"250 OK\r\n"
        } else if upper == "NOOP" {
            b"250 OK\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 command not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_check_accepts_the_hubs_scheme_and_rejects_tampering() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(b"1700000000.{\"a\":1}");
        let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert!(verify("s3cret", "1700000000", b"{\"a\":1}", &sig));
        assert!(!verify("s3cret", "1700000001", b"{\"a\":1}", &sig));
        assert!(!verify("other", "1700000000", b"{\"a\":1}", &sig));
        assert!(!verify("s3cret", "1700000000", b"{\"a\":2}", &sig));
        assert!(!verify("s3cret", "1700000000", b"{\"a\":1}", "md5=00"));
    }

    #[tokio::test]
    async fn smtp_receiver_takes_a_message_from_lettre() {
        use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
        let inbox = Inbox::default();
        let addr = start_smtp(inbox.clone()).await.unwrap();
        let mail = Message::builder()
            .from("hub@localhost".parse().unwrap())
            .to("clerk@adams.example".parse().unwrap())
            .subject("campaign")
            .body("line one\r\n.leading dot\r\n".to_string())
            .unwrap();
        let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1").port(addr.port()).build();
        smtp.send(mail).await.unwrap();
        let got = inbox.messages();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].to, "clerk@adams.example");
        assert!(got[0].body.contains("Subject: campaign"));
        assert!(got[0].body.contains("\r\n.leading dot"));
    }
}
