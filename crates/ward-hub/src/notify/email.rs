//! Email over SMTP with lettre (rustls for STARTTLS/TLS; plain only for a relay on loopback).

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::Message;
use crate::config::{NotifyConfig, SmtpTls};
use crate::model::Contact;

pub struct Mailer {
    transport: Result<AsyncSmtpTransport<Tokio1Executor>, String>,
    from: String,
}

impl Mailer {
    pub fn new(cfg: &NotifyConfig) -> Self {
        Mailer { transport: build(cfg), from: cfg.from.clone() }
    }

    pub async fn send(&self, contact: &Contact, msg: &Message) -> Result<String, String> {
        let transport = self.transport.as_ref().map_err(Clone::clone)?;
        let email = lettre::Message::builder()
            .from(self.from.parse().map_err(|e| format!("bad notify.from address: {e}"))?)
            .to(contact.target.parse().map_err(|e| format!("bad recipient address: {e}"))?)
            .subject(msg.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(msg.text.clone())
            .map_err(|e| format!("cannot build email: {e}"))?;
        let resp = transport.send(email).await.map_err(|e| format!("smtp delivery failed: {e}"))?;
        Ok(format!("smtp {}", resp.code()))
    }
}

fn build(cfg: &NotifyConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let host = cfg.smtp_host.as_str();
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).port(cfg.smtp_port);
    match cfg.smtp_tls {
        SmtpTls::None => {}
        SmtpTls::Starttls | SmtpTls::Tls => {
            let params = TlsParameters::new(host.to_string()).map_err(|e| format!("smtp tls setup failed: {e}"))?;
            builder = builder.tls(if cfg.smtp_tls == SmtpTls::Tls { Tls::Wrapper(params) } else { Tls::Required(params) });
        }
    }
    if let (Some(u), Some(p)) = (&cfg.smtp_username, &cfg.smtp_password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
    }
    builder = builder.timeout(Some(std::time::Duration::from_secs(cfg.timeout_secs)));
    Ok(builder.build())
}
