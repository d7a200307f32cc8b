//! The notification outbox's delivery side.
//!
//! Notifications are rows the ingest transaction creates (see the store). The worker here
//! claims due rows with a lease, renders each message from the campaign's current state as the
//! recipient jurisdiction may see it, sends it on the contact's channel, and records every
//! attempt. Failures retry with exponential backoff ([`retry_delay_ms`]) up to
//! [`crate::store::sqlite::MAX_DELIVERY_ATTEMPTS`]; then the row is `failed` and stays visible.
//!
//! Outcomes are written by one recorder task in group commits. A hub that stops between a send
//! and its record sends again after the lease (at-least-once; receivers can deduplicate on the
//! notification id in the message).
//!
//! Rendering at send time is what makes digests work: a "campaign grew" notification that waits
//! for its digest interval goes out with everything that happened meanwhile.
//!
//! Webhook and syslog targets come from jurisdiction admins; every connection to one goes
//! through the egress policy ([`egress`]), and what is recorded about an attempt is a status code
//! or a short failure class, never the receiver's answer or the target's URL.

pub mod egress;
pub mod email;
pub mod message;
pub mod syslog;
pub mod webhook;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::model::{now_ms, Channel, NewContact, NotificationJob};
use crate::state::HubState;
use crate::store::AttemptOutcome;

pub use message::Message;

/// A claimed notification is not re-claimed by another worker for this long (the default of
/// `[notify] claim_lease_secs`: a batch of claims may wait behind `concurrency` deliveries of up
/// to `timeout_secs` each).
pub const CLAIM_LEASE_MS: i64 = 120_000;
/// Notifications claimed per round.
pub const CLAIM_BATCH: usize = 256;
/// With nothing due, the worker looks again at least this often (other replicas may enqueue).
pub const IDLE_POLL_MS: u64 = 1_000;
/// First retry after one second, doubling, capped at fifteen minutes.
pub const RETRY_BASE_MS: i64 = 1_000;
pub const RETRY_MAX_MS: i64 = 15 * 60 * 1000;

pub fn retry_delay_ms(attempts_so_far: i64) -> i64 {
    let shift = attempts_so_far.clamp(0, 20) as u32;
    (RETRY_BASE_MS.saturating_mul(1i64 << shift)).min(RETRY_MAX_MS)
}

/// Gives a webhook contact without a secret a random one (returned, to be shown once).
pub fn fill_webhook_secret(c: &mut NewContact) -> Option<String> {
    if c.channel != Channel::Webhook || c.secret.is_some() {
        return None;
    }
    let secret = crate::auth::random_token("whsec");
    c.secret = Some(secret.clone());
    Some(secret)
}

/// Checks a contact before it is stored.
pub fn validate_contact(c: &NewContact) -> Result<(), String> {
    let t = c.target.trim();
    match c.channel {
        Channel::Email => {
            t.parse::<lettre::Address>().map_err(|e| format!("bad email address {t:?}: {e}"))?;
        }
        Channel::Webhook => {
            let url = reqwest::Url::parse(t).map_err(|e| format!("bad webhook URL {t:?}: {e}"))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err("webhook URL must be http:// or https://".into());
            }
            if c.secret.as_deref().is_none_or(|s| s.len() < 16) {
                return Err("a webhook secret must be at least 16 characters (it keys the HMAC-SHA256 signature); leave it out to have one generated".into());
            }
        }
        Channel::Syslog => {
            egress::split_host_port(t).ok_or_else(|| format!("bad syslog target {t:?}: give HOST:PORT ([ADDRESS]:PORT for IPv6)"))?;
        }
    }
    Ok(())
}

/// Checks a new contact's target against the egress policy (literal addresses and metadata
/// names; names are checked again, after DNS, at every delivery). The error tells an admin of
/// an on-premises SIEM what to do.
pub fn check_contact_target(config: &crate::config::NotifyConfig, c: &NewContact) -> Result<(), String> {
    egress::EgressPolicy::new(&config.allow_targets).check_target(c.channel, &c.target).map_err(|e| match e {
        egress::EgressError::BadTarget(m) => m,
        refused => format!(
            "{refused}: the hub does not deliver to internal or metadata addresses; for an on-premises SIEM, the hub's operator adds its address to [notify] allow_targets"
        ),
    })
}

/// A short class for a failed socket operation (what a delivery attempt records).
pub fn io_failure_class(kind: std::io::ErrorKind) -> &'static str {
    use std::io::ErrorKind as K;
    match kind {
        K::ConnectionRefused => "connection refused",
        K::TimedOut => "timeout",
        K::ConnectionReset | K::ConnectionAborted => "connection reset",
        K::BrokenPipe | K::UnexpectedEof => "connection closed",
        K::AddrNotAvailable | K::NetworkUnreachable | K::HostUnreachable => "unreachable",
        _ => "connection failed",
    }
}

/// Runs the delivery loop until the state's last handle is dropped or `shutdown` fires.
pub async fn run_worker(state: HubState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let notify = &state.config.notify;
    let egress = Arc::new(egress::EgressPolicy::new(&notify.allow_targets));
    let webhook = match webhook::WebhookClient::new(egress.clone(), Duration::from_secs(notify.timeout_secs)) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "notifications disabled");
            return;
        }
    };
    let channels = Arc::new(Channels { webhook, smtp: email::Mailer::new(notify), egress, timeout_secs: notify.timeout_secs });
    let permits = Arc::new(Semaphore::new(state.config.notify.concurrency.max(1)));
    let (record_tx, record_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(run_recorder(state.clone(), record_rx));
    let dispatch = |jobs: Vec<NotificationJob>| {
        let (state, channels, permits, record_tx) = (state.clone(), channels.clone(), permits.clone(), record_tx.clone());
        async move {
            for job in jobs {
                let Ok(permit) = permits.clone().acquire_owned().await else { return };
                let (state, channels, record_tx) = (state.clone(), channels.clone(), record_tx.clone());
                tokio::spawn(async move {
                    let attempt = deliver(&state, &channels, job).await;
                    drop(permit);
                    // The recorder ends only after every sender is gone, so this cannot fail.
                    let _ = record_tx.send(attempt);
                });
            }
        }
    };
    // Jobs the ingest writer claimed for us right after committing them (see state::Handoff).
    let mut handed = state.handoff.attach();
    let mut claim_now = true;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if claim_now {
            let lease_ms = state.config.notify.claim_lease_ms();
            let jobs = match state.store_call(move |s| s.claim_notifications(now_ms(), lease_ms, CLAIM_BATCH)).await {
                Ok(j) => j,
                Err(e) => {
                    tracing::error!(error = %e, "cannot claim notifications");
                    Vec::new()
                }
            };
            let full = jobs.len() == CLAIM_BATCH;
            dispatch(jobs).await;
            if full {
                continue;
            }
        }
        let wait = match state.store_call(|s| s.next_due()).await {
            Ok(Some(due)) => (due - now_ms()).clamp(0, IDLE_POLL_MS as i64) as u64,
            _ => IDLE_POLL_MS,
        };
        claim_now = true;
        tokio::select! {
            Some(jobs) = async { match handed.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => {
                dispatch(jobs).await;
                claim_now = false;
            }
            _ = state.outbox_wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// The delivery channels, shared by campaign and retro-hunt deliveries.
pub struct Channels {
    pub webhook: webhook::WebhookClient,
    pub smtp: email::Mailer,
    pub egress: Arc<egress::EgressPolicy>,
    pub timeout_secs: u64,
}

impl Channels {
    /// Sends one message on the contact's channel; `Ok` carries the attempt's detail.
    pub async fn send(&self, contact: &crate::model::Contact, msg: &Message) -> Result<String, String> {
        match contact.channel {
            Channel::Webhook => webhook::send(&self.webhook, contact, msg).await,
            Channel::Email => self.smtp.send(contact, msg).await,
            Channel::Syslog => syslog::send(&self.egress, contact, msg, self.timeout_secs).await,
        }
    }
}

/// Attempts recorded together at most (one transaction, one fsync).
pub const MAX_RECORD_GROUP: usize = 512;

/// Writes delivery outcomes: everything that finished while the previous write ran goes into the
/// next transaction, so fifty deliveries finishing together cost one commit, not fifty.
async fn run_recorder(state: HubState, mut rx: tokio::sync::mpsc::UnboundedReceiver<(i64, AttemptOutcome, crate::model::Millis)>) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_RECORD_GROUP {
            match rx.try_recv() {
                Ok(item) => group.push(item),
                Err(_) => break,
            }
        }
        let n = group.len();
        if let Err(e) = state.store_call(move |s| s.record_attempts(&group)).await {
            tracing::error!(attempts = n, error = %e, "cannot record delivery attempts");
        }
    }
}

/// Sends one notification and returns the attempt to record.
async fn deliver(state: &HubState, channels: &Channels, job: NotificationJob) -> (i64, AttemptOutcome, crate::model::Millis) {
    // ---- retro-hunt notifications carry their own message (crate::retro) ----
    if job.event_kind == crate::retro::EVENT_KIND {
        return crate::retro::deliver(state, channels, job).await;
    }
    // ---- disinformation reports and cases (crate::disinfo::routing) ----
    if crate::disinfo::routing::is_disinfo_kind(&job.event_kind) {
        return crate::disinfo::routing::deliver(state, channels, job).await;
    }
    // ---- a state's roll-up of its counties (crate::rollup) ----
    if crate::rollup::is_rollup_kind(&job.event_kind) {
        return crate::rollup::deliver(state, channels, job).await;
    }
    let started = Instant::now();
    let (campaign_id, jurisdiction_id) = (job.campaign_id, job.jurisdiction_id);
    let context = state
        .store_call(move |s| Ok((s.jurisdiction_campaign(campaign_id, jurisdiction_id)?, s.jurisdiction(jurisdiction_id)?)))
        .await;
    let result = match context {
        Ok((Some(view), Some(jurisdiction))) => {
            let msg = message::render(&state.config, &jurisdiction, &view, &job.event_kind, job.id).mark_drill_if(jurisdiction.drill);
            let msg = crate::ack::with_ack_link(state, &job, msg).await;
            let sent = channels.send(&job.contact, &msg).await;
            sent.map(|detail| (detail, msg.json.to_string()))
        }
        Ok(_) => Err("campaign or jurisdiction no longer exists".to_string()),
        Err(e) => Err(format!("cannot load campaign: {e}")),
    };
    finish_attempt(state, &job, result, started, "delivery failed")
}

/// Turns one delivery's result (detail and payload sent, or the error) into the attempt to
/// record: metrics, a log line on failure, and when to retry. Shared by campaign and retro-hunt
/// deliveries.
pub(crate) fn finish_attempt(
    state: &HubState,
    job: &NotificationJob,
    result: Result<(String, String), String>,
    started: Instant,
    failure: &str,
) -> (i64, AttemptOutcome, crate::model::Millis) {
    let duration_ms = started.elapsed().as_millis() as i64;
    let now = now_ms();
    let outcome = match result {
        Ok((detail, payload)) => {
            state.metrics.deliveries_ok.inc();
            AttemptOutcome { ok: true, detail, duration_ms, payload: Some(payload), retry_at: None }
        }
        Err(detail) => {
            state.metrics.deliveries_failed.inc();
            tracing::warn!(notification = job.id, channel = job.contact.channel.as_str(), error = %detail, "{failure}");
            let retry_at = (job.attempts + 1 < crate::store::sqlite::MAX_DELIVERY_ATTEMPTS).then(|| now + retry_delay_ms(job.attempts));
            AttemptOutcome { ok: false, detail, duration_ms, payload: None, retry_at }
        }
    };
    (job.id, outcome, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(retry_delay_ms(0), 1_000);
        assert_eq!(retry_delay_ms(3), 8_000);
        assert_eq!(retry_delay_ms(40), RETRY_MAX_MS);
    }

    #[test]
    fn contacts_are_validated() {
        let c = |channel, target: &str, secret: Option<&str>| NewContact { channel, target: target.into(), secret: secret.map(Into::into) };
        assert!(validate_contact(&c(Channel::Email, "it@county.example.gov", None)).is_ok());
        assert!(validate_contact(&c(Channel::Email, "nope", None)).is_err());
        assert!(validate_contact(&c(Channel::Webhook, "https://x.example/hook", Some("0123456789abcdef"))).is_ok());
        assert!(validate_contact(&c(Channel::Webhook, "https://x.example/hook", None)).is_err());
        assert!(validate_contact(&c(Channel::Webhook, "ftp://x", Some("0123456789abcdef"))).is_err());
        assert!(validate_contact(&c(Channel::Syslog, "127.0.0.1:514", None)).is_ok());
        assert!(validate_contact(&c(Channel::Syslog, "127.0.0.1", None)).is_err());
        assert!(validate_contact(&c(Channel::Syslog, "[::1]:514", None)).is_ok());
    }

    #[test]
    fn internal_targets_are_refused_at_creation_with_a_hint() {
        let c = |channel, target: &str| NewContact { channel, target: target.into(), secret: Some("0123456789abcdef".into()) };
        let mut cfg = crate::config::NotifyConfig::default();
        let err = check_contact_target(&cfg, &c(Channel::Webhook, "http://169.254.169.254/latest/meta-data/")).unwrap_err();
        assert!(err.contains("link-local") && err.contains("allow_targets"), "{err}");
        assert!(check_contact_target(&cfg, &c(Channel::Syslog, "10.1.2.3:514")).is_err());
        cfg.allow_targets = vec!["10.1.0.0/16".parse().unwrap()];
        assert!(check_contact_target(&cfg, &c(Channel::Syslog, "10.1.2.3:514")).is_ok(), "an on-premises SIEM, allowed");
        assert!(check_contact_target(&cfg, &c(Channel::Webhook, "https://soc.example/hook")).is_ok());
    }
}
