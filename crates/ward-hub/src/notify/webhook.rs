//! Webhooks: `POST` of the message JSON, signed.
//!
//! Headers: `X-Ward-Timestamp: <unix seconds>` and
//! `X-Ward-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. A receiver
//! recomputes the HMAC over the exact body bytes and rejects timestamps more than
//! [`MAX_WEBHOOK_SKEW_SECS`] from its clock, which defeats replay of a captured request.
//! `X-Ward-Delivery: <notification id>` (also `id` in the body) is the same on every retry of
//! one notification, so a receiver can drop a duplicate.
//!
//! Only [`super::egress`]-checked addresses are connected to; redirects are not followed (a
//! 3xx is a failed attempt), no proxy from the environment is used, and the receiver's answer
//! is reduced to its status code: its body and any server error text are never read, recorded
//! or logged. A failed attempt records a short class ("connection refused", "timeout",
//! "tls error", "address refused by egress policy: loopback (127.0.0.1)"), never the URL, whose
//! query may hold the receiver's token.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::egress::{EgressError, EgressPolicy, EgressResolver};
use super::Message;
use crate::model::Contact;

/// Receivers should refuse a signed request older or newer than this.
pub const MAX_WEBHOOK_SKEW_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("hmac accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What a receiver does: checks the signature (constant time) and the timestamp window.
pub fn verify(secret: &str, timestamp: &str, body: &[u8], signature: &str, now_secs: i64) -> bool {
    let Ok(ts) = timestamp.parse::<i64>() else { return false };
    if (now_secs - ts).abs() > MAX_WEBHOOK_SKEW_SECS {
        return false;
    }
    let Some(hex_sig) = signature.strip_prefix("sha256=") else { return false };
    let Ok(sig) = hex::decode(hex_sig) else { return false };
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("hmac accepts any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// The HTTP client for webhook deliveries, bound to the egress policy.
pub struct WebhookClient {
    http: reqwest::Client,
    egress: Arc<EgressPolicy>,
}

impl WebhookClient {
    pub fn new(egress: Arc<EgressPolicy>, timeout: Duration) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("ward-hub/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(EgressResolver(egress.clone())))
            .build()
            .map_err(|e| format!("cannot build the webhook http client: {e}"))?;
        Ok(WebhookClient { http, egress })
    }
}

pub async fn send(client: &WebhookClient, contact: &Contact, msg: &Message) -> Result<String, String> {
    let url = reqwest::Url::parse(&contact.target).map_err(|_| "bad webhook URL".to_string())?;
    // Names are checked by the resolver at connect time; literal addresses never reach it.
    client.egress.check_url(&url).map_err(|e| e.to_string())?;
    let Some(secret) = contact.secret.as_deref() else {
        return Err("no signing secret for this contact (it could not be decrypted: check the hub's secret key file)".into());
    };
    let body = serde_json::to_vec(&msg.json).map_err(|e| e.to_string())?;
    let ts = chrono::Utc::now().timestamp();
    let resp = client
        .http
        .post(url)
        .header("content-type", "application/json")
        .header("x-ward-timestamp", ts.to_string())
        .header("x-ward-signature", sign(secret, ts, &body))
        .header("x-ward-event", format!("campaign.{}", msg.event_kind))
        .header("x-ward-delivery", msg.json["id"].to_string())
        .body(body)
        .send()
        .await
        .map_err(|e| failure_detail(&e))?;
    // The body is dropped unread: what a receiver says is never recorded or shown.
    let status = resp.status();
    if status.is_success() {
        Ok(format!("http {}", status.as_u16()))
    } else if status.is_redirection() {
        Err(format!("webhook answered http {} (redirects are not followed)", status.as_u16()))
    } else {
        Err(format!("webhook answered http {}", status.as_u16()))
    }
}

/// What a failed request records: the egress refusal, or `webhook <short class>`; never the
/// URL or text from the other side.
fn failure_detail(e: &reqwest::Error) -> String {
    match egress_refusal(e) {
        Some(refused) => refused.to_string(),
        None => format!("webhook {}", failure_class(e)),
    }
}

fn egress_refusal(e: &reqwest::Error) -> Option<&EgressError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<EgressError>() {
            return Some(refused);
        }
        // io::Error::source skips the error it wraps; look at it directly.
        if let Some(refused) = s.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).and_then(|inner| inner.downcast_ref::<EgressError>()) {
            return Some(refused);
        }
        source = s.source();
    }
    None
}

fn failure_class(e: &reqwest::Error) -> &'static str {
    let mut io_kind = None;
    let mut tls = false;
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        tls |= s.downcast_ref::<rustls::Error>().is_some();
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_kind.get_or_insert(io.kind());
            tls |= io.get_ref().is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
        }
        source = s.source();
    }
    if e.is_timeout() {
        return "timeout";
    }
    if tls {
        return "tls error";
    }
    if let Some(kind) = io_kind {
        return super::io_failure_class(kind);
    }
    if e.is_connect() {
        return "connection failed";
    }
    "request failed"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_verifies_and_rejects_replay_and_tamper() {
        let sig = sign("0123456789abcdef", 1_700_000_000, b"{}");
        assert!(verify("0123456789abcdef", "1700000000", b"{}", &sig, 1_700_000_010));
        assert!(!verify("0123456789abcdef", "1700000000", b"{}", &sig, 1_700_001_000), "replayed late");
        assert!(!verify("0123456789abcdef", "1700000000", b"{ }", &sig, 1_700_000_010), "tampered body");
        assert!(!verify("another-secret-xx", "1700000000", b"{}", &sig, 1_700_000_010), "wrong key");
        assert!(!verify("0123456789abcdef", "1700000001", b"{}", &sig, 1_700_000_010), "moved timestamp");
    }
}
