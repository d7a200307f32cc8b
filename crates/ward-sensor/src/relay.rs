//! The relay: forwards the [`spool`](crate::spool) to the hub, exactly once, through outages.
//!
//! It reads like a pipeline of three parts, each usable alone:
//! * batcher ([`Relay`]'s loop): takes records from the spool until `max_batch_records`,
//!   `max_batch_bytes` or `max_batch_wait` after the first record;
//! * request builder ([`encode_batch`], [`idempotency_key`]): NDJSON, gzip, the key
//!   `SENSOR_ID:FIRST_SEQ`;
//! * service ([`HubClient`]): one POST to `/api/v1/events`, its reply classified as
//!   [`Reply`].
//!
//! # Exactly once
//!
//! Before a batch is sent, its first and last sequence numbers are written durably to the spool
//! ledger ([`Spool::begin_batch`]). After a crash, the relay first resends exactly that range
//! under the same key, so a batch the hub stored but whose reply was lost is answered as a
//! duplicate and stored once. Records are deleted from the spool ([`Spool::ack`]) only after the
//! hub's 2xx, which the hub sends only once the batch is durable.
//!
//! # Replies
//!
//! | reply | what the relay does |
//! |---|---|
//! | 2xx | acknowledge in the spool; per-line rejections in the receipt are logged and counted (`rejected_lines`): they will not become valid by resending |
//! | 413 | split the batch in halves and send each (a one-record batch is dead-lettered) |
//! | 400, 415, 422 | the batch is malformed and resending cannot help: write it to `SPOOL/dead-letter/`, log at `error`, count (`dead_letter_batches`), acknowledge, go on |
//! | 401, 403 | credentials revoked or wrong: keep the batch, log at `error`, retry with backoff (losing events over a credential problem would be worse than waiting for the operator) |
//! | 408, 429, other 4xx, 5xx, network errors | retry with exponential backoff and jitter (`Retry-After` honoured) |
//!
//! Records containing a newline cannot be one NDJSON line; they are skipped before sending,
//! logged and counted (`malformed_records`).
//!
//! # Transport
//!
//! HTTPS with rustls (ring); `ca_file` makes the given PEM certificates the only trust roots
//! (a hub with a private CA or a self-signed certificate). Plain HTTP is refused unless the hub
//! is on a loopback address. Redirects are not followed.

use std::collections::VecDeque;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::spool::{ReadLimit, Record, Spool, SpoolError, SpoolStats};

/// How long the batcher waits for the spool between stop checks.
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    #[error("hub URL {url:?} is not valid: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("refusing plain HTTP to {url}: use https:// (plain http is allowed only to a loopback address)")]
    InsecureUrl { url: String },
    #[error("cannot read CA file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("cannot reach the hub at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the hub refused enrollment ({status}): {message}")]
    EnrollRefused { status: u16, message: String },
    #[error("the hub's enrollment reply is not understood: {0}")]
    BadReply(String),
    #[error("credential file {path}: {reason}")]
    CredentialFile { path: PathBuf, reason: String },
    #[error("cannot start the relay thread: {0}")]
    Thread(std::io::Error),
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

/// What a sensor keeps after enrolling: enough to relay to the hub.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorCredential {
    pub hub_url: String,
    pub sensor_id: i64,
    #[serde(default)]
    pub jurisdiction_id: Option<i64>,
    /// The bearer credential (`wsc_…`); a secret.
    pub credential: String,
    /// The PEM file of the CA that signed the hub's certificate, when not a public one.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl SensorCredential {
    /// Writes the credential as JSON to `path`, readable by the owner only (0600), atomically.
    pub fn save(&self, path: &Path) -> Result<(), RelayError> {
        let err = |reason: String| RelayError::CredentialFile { path: path.to_path_buf(), reason };
        let json = serde_json::to_vec_pretty(self).map_err(|e| err(e.to_string()))?;
        let tmp = path.with_extension("tmp");
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| err(format!("cannot create {}: {e}", tmp.display())))?;
        f.set_permissions(fs::Permissions::from_mode(0o600)).map_err(|e| err(e.to_string()))?;
        f.write_all(&json).and_then(|()| f.sync_all()).map_err(|e| err(e.to_string()))?;
        fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
    }

    /// Reads a credential file; warns when others can read it.
    pub fn load(path: &Path) -> Result<SensorCredential, RelayError> {
        let err = |reason: String| RelayError::CredentialFile { path: path.to_path_buf(), reason };
        let meta = fs::metadata(path).map_err(|e| err(format!("{e}: run `ward sensor enroll` first")))?;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "credential file is readable by others: chmod 600 it");
        }
        let bytes = fs::read(path).map_err(|e| err(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| err(format!("not a ward credential file: {e}")))
    }
}

/// Installs ring as rustls's process-wide crypto provider if none is (idempotent).
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Checks the URL's scheme and host: https anywhere, http only to loopback.
pub fn check_hub_url(url: &str) -> Result<reqwest::Url, RelayError> {
    let parsed = reqwest::Url::parse(url.trim_end_matches('/'))
        .map_err(|e| RelayError::BadUrl { url: url.to_string(), reason: e.to_string() })?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" => {
            let host = parsed.host_str().unwrap_or("");
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = match host.parse::<std::net::IpAddr>() {
                Ok(ip) => ip.is_loopback(),
                Err(_) => host.eq_ignore_ascii_case("localhost"),
            };
            if loopback {
                Ok(parsed)
            } else {
                Err(RelayError::InsecureUrl { url: url.to_string() })
            }
        }
        other => Err(RelayError::BadUrl { url: url.to_string(), reason: format!("scheme {other:?}: use https") }),
    }
}

/// The reply to one batch, classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// 2xx: the batch is durable at the hub.
    Acked(Receipt),
    /// 413: too large for the hub; split it.
    TooLarge,
    /// The hub says the batch itself is malformed; resending cannot help.
    Refused { status: u16, message: String },
    /// Try again later (network, 5xx, 429, credentials).
    Retry { status: Option<u16>, message: String, after: Option<Duration> },
}

/// The hub's ingest receipt (fields the relay uses).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Receipt {
    #[serde(default)]
    pub accepted: u64,
    #[serde(default)]
    pub rejected_total: u64,
    #[serde(default)]
    pub rejected: Vec<LineRejection>,
    #[serde(default)]
    pub duplicate: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LineRejection {
    pub line: usize,
    pub reason: String,
}

/// An HTTP client bound to one hub.
#[derive(Clone)]
pub struct HubClient {
    http: reqwest::Client,
    base: reqwest::Url,
}

impl HubClient {
    pub fn new(hub_url: &str, ca_file: Option<&Path>, timeout: Duration) -> Result<HubClient, RelayError> {
        let base = check_hub_url(hub_url)?;
        install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("ward-sensor/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        if base.scheme() == "https" {
            builder = builder.https_only(true);
        }
        if let Some(path) = ca_file {
            let pem = fs::read(path).map_err(|e| RelayError::CaFile { path: path.to_path_buf(), reason: e.to_string() })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| RelayError::CaFile { path: path.to_path_buf(), reason: format!("not PEM certificates: {e}") })?;
            if certs.is_empty() {
                return Err(RelayError::CaFile { path: path.to_path_buf(), reason: "no certificate in the file".into() });
            }
            builder = builder.tls_certs_only(certs);
        }
        let http = builder.build().map_err(|e| RelayError::Client(e.to_string()))?;
        Ok(HubClient { http, base })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }

    /// POSTs one gzip NDJSON batch and classifies the reply.
    pub async fn post_batch(&self, credential: &str, key: &str, gzip_body: Vec<u8>) -> Reply {
        let resp = self
            .http
            .post(self.url("/api/v1/events"))
            .bearer_auth(credential)
            .header("idempotency-key", key)
            .header("content-type", "application/x-ndjson")
            .header("content-encoding", "gzip")
            .body(gzip_body)
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => return Reply::Retry { status: None, message: error_chain(&e), after: None },
        };
        let status = resp.status().as_u16();
        let after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return Reply::Retry { status: Some(status), message: error_chain(&e), after },
        };
        classify_reply(status, &body, after)
    }
}

impl HubClient {
    /// GETs `path_and_query` (e.g. `/api/v1/indicators?since=0`) with the sensor's credential
    /// and returns the HTTP status and the JSON body (`Null` when the body is not JSON).
    /// Used by [`crate::indicator_sync`].
    pub async fn get_json(&self, credential: &str, path_and_query: &str) -> Result<(u16, serde_json::Value), RelayError> {
        let url = self.url(path_and_query);
        let resp = self
            .http
            .get(&url)
            .bearer_auth(credential)
            .send()
            .await
            .map_err(|e| RelayError::Unreachable { url: url.clone(), reason: error_chain(&e) })?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| RelayError::Unreachable { url, reason: error_chain(&e) })?;
        Ok((status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null)))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Decides what a reply means for the batch (see the module note's table).
pub fn classify_reply(status: u16, body: &[u8], after: Option<Duration>) -> Reply {
    let message = || {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned())
    };
    match status {
        200..=299 => match serde_json::from_slice::<Receipt>(body) {
            Ok(r) => Reply::Acked(r),
            Err(e) => {
                tracing::warn!(status, error = %e, "hub acknowledged a batch with a reply that is not a receipt");
                Reply::Acked(Receipt::default())
            }
        },
        413 => Reply::TooLarge,
        400 | 415 | 422 => Reply::Refused { status, message: message() },
        _ => Reply::Retry { status: Some(status), message: message(), after },
    }
}

/// `SENSOR_ID:SEQUENCE`, the hub's idempotency key for a batch starting at `first_seq`.
pub fn idempotency_key(sensor_id: i64, first_seq: u64) -> String {
    format!("{sensor_id}:{first_seq}")
}

/// One batch ready to POST.
#[derive(Debug, Clone)]
pub struct EncodedBatch {
    pub gzip_body: Vec<u8>,
    /// Lines in the body.
    pub lines: usize,
    pub raw_bytes: usize,
    /// Records left out because they cannot be one NDJSON line.
    pub malformed: usize,
}

/// NDJSON (one record per line) compressed with gzip.
pub fn encode_batch(records: &[Record]) -> EncodedBatch {
    let mut raw = Vec::with_capacity(records.iter().map(|r| r.payload.len() + 1).sum());
    let mut lines = 0;
    let mut malformed = 0;
    for r in records {
        if r.payload.contains(&b'\n') {
            malformed += 1;
            tracing::warn!(seq = r.seq, "spool record contains a newline: not sent");
            continue;
        }
        raw.extend_from_slice(&r.payload);
        raw.push(b'\n');
        lines += 1;
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(raw.len() / 4 + 64), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let gzip_body: Vec<u8> = enc.write_all(&raw).and_then(|()| enc.finish()).unwrap_or_default();
    EncodedBatch { gzip_body, lines, raw_bytes: raw.len(), malformed }
}

/// Exponential backoff with "equal jitter": each delay is half the current step plus a random
/// part of the other half; the step doubles up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        Backoff { initial, max: max.max(initial), step: initial }
    }
    pub fn next_delay(&mut self) -> Duration {
        let half = self.step / 2;
        let jitter = half.mul_f64(fastrand::f64());
        self.step = (self.step * 2).min(self.max);
        half + jitter
    }
    pub fn reset(&mut self) {
        self.step = self.initial;
    }
}

#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub credential: SensorCredential,
    pub max_batch_records: usize,
    /// Uncompressed bytes per batch (the hub accepts 128 MiB decoded, 32 MiB sent).
    pub max_batch_bytes: usize,
    /// A batch is sent at most this long after its first record was read.
    pub max_batch_wait: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub request_timeout: Duration,
}

impl RelayConfig {
    pub fn new(credential: SensorCredential) -> Self {
        RelayConfig {
            credential,
            max_batch_records: 2000,
            max_batch_bytes: 4 * 1024 * 1024,
            max_batch_wait: Duration::from_millis(500),
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The relay's counters (since start), plus the spool's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// POST attempts.
    pub requests: u64,
    /// Batches acknowledged by the hub (first time or as duplicates).
    pub batches_acked: u64,
    /// Records in acknowledged batches.
    pub events_acked: u64,
    /// Acknowledgements the hub marked as duplicates (a resend after a lost reply).
    pub duplicate_batches: u64,
    /// Attempts that failed and were retried.
    pub retries: u64,
    /// Lines the hub stored as rejected (logged; not resent).
    pub rejected_lines: u64,
    /// Batches the hub refused as malformed, written to the dead-letter directory.
    pub dead_letter_batches: u64,
    pub dead_letter_events: u64,
    /// Records skipped before sending (not one NDJSON line).
    pub malformed_records: u64,
    /// Batches split after a 413.
    pub splits: u64,
    /// Compressed bytes acknowledged.
    pub bytes_acked: u64,
    /// The hub's last answer refused the sensor's credential (401 or 403), and nothing was
    /// acknowledged since: the status.
    pub credential_refused: Option<u16>,
    pub spool: SpoolStats,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    batches_acked: AtomicU64,
    events_acked: AtomicU64,
    duplicate_batches: AtomicU64,
    retries: AtomicU64,
    rejected_lines: AtomicU64,
    dead_letter_batches: AtomicU64,
    dead_letter_events: AtomicU64,
    malformed_records: AtomicU64,
    splits: AtomicU64,
    bytes_acked: AtomicU64,
    /// 401/403 while the hub's last answer was a credential refusal; 0 once a batch is acked.
    credential_refused: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// A running relay; dropping it stops the relay (an unacknowledged batch is resent next time).
pub struct RelayHandle {
    spool: Spool,
    counters: Arc<Counters>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl RelayHandle {
    pub fn stats(&self) -> RelayStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RelayStats {
            requests: get(&c.requests),
            batches_acked: get(&c.batches_acked),
            events_acked: get(&c.events_acked),
            duplicate_batches: get(&c.duplicate_batches),
            retries: get(&c.retries),
            rejected_lines: get(&c.rejected_lines),
            dead_letter_batches: get(&c.dead_letter_batches),
            dead_letter_events: get(&c.dead_letter_events),
            malformed_records: get(&c.malformed_records),
            splits: get(&c.splits),
            bytes_acked: get(&c.bytes_acked),
            credential_refused: u16::try_from(get(&c.credential_refused)).ok().filter(|&s| s != 0),
            spool: self.spool.stats(),
        }
    }

    /// Waits until every record appended so far is acknowledged (or `timeout`); true if so.
    pub fn wait_drained(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.spool.stats().pending_records == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the relay and waits for its thread (an in-flight request is abandoned unanswered;
    /// its batch is resent under the same key next time).
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// The forwarder; see the module note.
pub struct Relay {
    spool: Spool,
    config: RelayConfig,
    client: HubClient,
    counters: Arc<Counters>,
    stop: watch::Receiver<bool>,
    runtime: tokio::runtime::Runtime,
    /// Records read from the spool but not yet sent (after a split).
    carry: VecDeque<Record>,
    backoff: Backoff,
}

enum Sent {
    Done,
    /// Send these records next, before reading more.
    Split(Vec<Record>, Vec<Record>),
    Stopped,
}

impl Relay {
    /// Starts the relay on its own thread (with its own small async runtime, so it can be
    /// started from sync code or from inside another runtime).
    pub fn spawn(spool: Spool, config: RelayConfig) -> Result<RelayHandle, RelayError> {
        let client = HubClient::new(&config.credential.hub_url, config.credential.ca_file.as_deref(), config.request_timeout)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(RelayError::Thread)?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let backoff = Backoff::new(config.backoff_initial, config.backoff_max);
        let relay = Relay {
            spool: spool.clone(),
            config,
            client,
            counters: counters.clone(),
            stop: stop_rx,
            runtime,
            carry: VecDeque::new(),
            backoff,
        };
        let thread = std::thread::Builder::new()
            .name("ward-relay".into())
            .spawn(move || relay.run())
            .map_err(RelayError::Thread)?;
        Ok(RelayHandle { spool, counters, stop: stop_tx, thread: Some(thread) })
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    fn run(mut self) {
        tracing::info!(hub = %self.config.credential.hub_url, sensor_id = self.config.credential.sensor_id, "relay started");
        // Start from the first unacknowledged record, whatever an earlier relay read.
        self.spool.rewind();
        // A batch recorded before a crash is resent first, as the same range under the same key.
        if let Some((first, last)) = self.spool.pending_batch() {
            match self.spool.read(ReadLimit { max_records: usize::MAX, max_bytes: usize::MAX, through_seq: Some(last) }) {
                Ok(records) => {
                    tracing::info!(first, last, records = records.len(), "relay: resending the batch in flight before the restart");
                    if !self.send_pending(first, last, records) {
                        return;
                    }
                }
                Err(e) => tracing::error!(error = %e, "relay: cannot read the batch in flight; continuing after it"),
            }
        }
        while !self.stopped() {
            let records = match self.gather() {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "relay: cannot read the spool");
                    self.sleep(self.backoff.clone().next_delay().max(Duration::from_secs(1)));
                    continue;
                }
            };
            let (Some(first), Some(last)) = (records.first().map(|r| r.seq), records.last().map(|r| r.seq)) else {
                continue;
            };
            if !self.send_pending(first, last, records) {
                return;
            }
        }
        tracing::info!("relay stopped");
    }

    /// Records the batch in the ledger and sends it (splitting as needed); false when stopped.
    fn send_pending(&mut self, first: u64, last: u64, records: Vec<Record>) -> bool {
        let mut queue: VecDeque<(u64, u64, Vec<Record>)> = VecDeque::from([(first, last, records)]);
        let mut recorded = self.spool.pending_batch() == Some((first, last));
        while let Some((first, last, records)) = queue.pop_front() {
            if !recorded {
                if let Err(e) = self.retry_spool(|s| s.begin_batch(first, last)) {
                    tracing::error!(error = %e, "relay: cannot record the batch in the spool ledger");
                    return false;
                }
            }
            recorded = false;
            match self.send(first, last, &records) {
                Sent::Done => {}
                Sent::Stopped => return false,
                Sent::Split(a, b) => {
                    let a_last = a.last().map_or(first, |r| r.seq);
                    let b_first = b.first().map_or(last, |r| r.seq);
                    queue.push_front((b_first, last, b));
                    queue.push_front((first, a_last, a));
                }
            }
        }
        true
    }

    /// Retries a spool operation until it succeeds or the relay stops.
    fn retry_spool(&mut self, mut op: impl FnMut(&Spool) -> Result<(), SpoolError>) -> Result<(), SpoolError> {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        loop {
            match op(&self.spool) {
                Ok(()) => return Ok(()),
                Err(e) if self.stopped() => return Err(e),
                Err(e) => {
                    tracing::error!(error = %e, "relay: spool ledger write failed; retrying");
                    self.sleep(backoff.next_delay());
                }
            }
        }
    }

    /// Takes the next batch: from the carry first, then the spool, until a limit or the wait.
    fn gather(&mut self) -> Result<Vec<Record>, SpoolError> {
        let cfg = &self.config;
        let (max_records, max_bytes) = (cfg.max_batch_records.max(1), cfg.max_batch_bytes.max(1));
        let mut out: Vec<Record> = Vec::new();
        let mut bytes = 0usize;
        while let Some(r) = self.carry.front() {
            if out.len() >= max_records || (!out.is_empty() && bytes + r.payload.len() > max_bytes) {
                return Ok(out);
            }
            bytes += r.payload.len();
            if let Some(r) = self.carry.pop_front() {
                out.push(r);
            }
        }
        let mut deadline: Option<Instant> = if out.is_empty() { None } else { Some(Instant::now() + cfg.max_batch_wait) };
        loop {
            let more = self.spool.read(ReadLimit {
                max_records: max_records - out.len(),
                max_bytes: max_bytes.saturating_sub(bytes).max(1),
                through_seq: None,
            })?;
            // `read` returns one record even over the byte budget; keep it for the next batch.
            for r in more {
                if !out.is_empty() && bytes + r.payload.len() > max_bytes {
                    self.carry.push_back(r);
                } else {
                    bytes += r.payload.len();
                    out.push(r);
                }
            }
            if !out.is_empty() && deadline.is_none() {
                deadline = Some(Instant::now() + self.config.max_batch_wait);
            }
            let full = out.len() >= max_records || bytes >= max_bytes || !self.carry.is_empty();
            if full || self.stopped() {
                return Ok(out);
            }
            let wait = match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Ok(out);
                    }
                    (d - now).min(POLL)
                }
                None => POLL,
            };
            self.spool.wait_readable(wait);
            if deadline.is_none() && self.stopped() {
                return Ok(out);
            }
        }
    }

    /// Sleeps unless stopped first.
    fn sleep(&mut self, d: Duration) {
        let mut stop = self.stop.clone();
        self.runtime.block_on(async move {
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        });
    }

    fn send(&mut self, first: u64, last: u64, records: &[Record]) -> Sent {
        let encoded = encode_batch(records);
        let c = self.counters.clone();
        bump(&c.malformed_records, encoded.malformed as u64);
        let key = idempotency_key(self.config.credential.sensor_id, first);
        if encoded.lines == 0 {
            // Nothing sendable (the records were damaged or dropped): done with this range.
            return self.acknowledge(last, records.len(), 0, &Receipt::default(), &key);
        }
        loop {
            if self.stopped() {
                return Sent::Stopped;
            }
            bump(&c.requests, 1);
            let client = self.client.clone();
            let credential = self.config.credential.credential.clone();
            let (key2, body) = (key.clone(), encoded.gzip_body.clone());
            let mut stop = self.stop.clone();
            let reply = self.runtime.block_on(async move {
                tokio::select! {
                    r = client.post_batch(&credential, &key2, body) => Some(r),
                    _ = stop.wait_for(|s| *s) => None,
                }
            });
            let Some(reply) = reply else { return Sent::Stopped };
            match reply {
                Reply::Acked(receipt) => {
                    self.backoff.reset();
                    return self.acknowledge(last, encoded.lines, encoded.gzip_body.len(), &receipt, &key);
                }
                Reply::TooLarge if records.len() > 1 => {
                    bump(&c.splits, 1);
                    let mid = records.len() / 2;
                    tracing::warn!(key, records = records.len(), "hub: batch too large (413); splitting it");
                    return Sent::Split(records[..mid].to_vec(), records[mid..].to_vec());
                }
                Reply::TooLarge => {
                    let message = "a single record is too large for the hub".to_string();
                    return self.dead_letter(last, 413, &message, &key, &encoded);
                }
                Reply::Refused { status, message } => {
                    return self.dead_letter(last, status, &message, &key, &encoded);
                }
                Reply::Retry { status, message, after } => {
                    bump(&c.retries, 1);
                    let delay = self.backoff.next_delay().max(after.unwrap_or_default());
                    if let Some(s @ (401 | 403)) = status {
                        c.credential_refused.store(u64::from(s), Ordering::Relaxed);
                    }
                    match status {
                        Some(401 | 403) => tracing::error!(
                            key, status, error = %message, retry_in_ms = delay.as_millis() as u64,
                            "hub refused the sensor's credential; keeping the events and retrying (re-enroll the sensor if it was revoked)"
                        ),
                        _ => tracing::warn!(key, status, error = %message, retry_in_ms = delay.as_millis() as u64, "relay: batch not delivered; retrying"),
                    }
                    self.sleep(delay);
                }
            }
        }
    }

    fn acknowledge(&mut self, last: u64, lines: usize, body_bytes: usize, receipt: &Receipt, key: &str) -> Sent {
        let c = self.counters.clone();
        c.credential_refused.store(0, Ordering::Relaxed);
        if receipt.rejected_total > 0 {
            bump(&c.rejected_lines, receipt.rejected_total);
            for r in receipt.rejected.iter().take(10) {
                tracing::warn!(key, line = r.line, reason = %r.reason, "hub rejected an event line");
            }
            tracing::warn!(key, rejected = receipt.rejected_total, "hub rejected event lines (not resent)");
        }
        if receipt.duplicate {
            bump(&c.duplicate_batches, 1);
            tracing::info!(key, "hub already had this batch (a resend after a lost reply)");
        }
        // Counted before the spool's ack, so a caller that sees the spool drained sees the counts.
        if lines > 0 {
            bump(&c.batches_acked, 1);
            bump(&c.events_acked, lines as u64);
            bump(&c.bytes_acked, body_bytes as u64);
        }
        if self.retry_spool(|s| s.ack(last)).is_err() {
            return Sent::Stopped;
        }
        Sent::Done
    }

    fn dead_letter(&mut self, last: u64, status: u16, message: &str, key: &str, encoded: &EncodedBatch) -> Sent {
        let c = self.counters.clone();
        let dir = self.spool.dir().join("dead-letter");
        let path = dir.join(format!("{}.ndjson.gz", key.replace(':', "-")));
        let written = fs::DirBuilder::new()
            .recursive(true)
            .create(&dir)
            .and_then(|()| OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(&path))
            .and_then(|mut f| f.write_all(&encoded.gzip_body).and_then(|()| f.sync_all()));
        match written {
            Ok(()) => tracing::error!(
                key, status, error = %message, events = encoded.lines, file = %path.display(),
                "hub refused a batch as malformed; kept it in the dead-letter directory and moved on"
            ),
            Err(e) => tracing::error!(
                key, status, error = %message, events = encoded.lines, write_error = %e,
                "hub refused a batch as malformed and it could not be kept; dropped"
            ),
        }
        bump(&c.dead_letter_batches, 1);
        bump(&c.dead_letter_events, encoded.lines as u64);
        if self.retry_spool(|s| s.ack(last)).is_err() {
            return Sent::Stopped;
        }
        Sent::Done
    }
}

/// The hub's enrollment reply.
#[derive(Deserialize)]
struct EnrollReply {
    sensor: EnrolledSensor,
    credential: String,
}

#[derive(Deserialize)]
struct EnrolledSensor {
    id: i64,
    #[serde(default)]
    jurisdiction_id: Option<i64>,
}

/// Exchanges a one-time enrollment token for the sensor's credential.
pub async fn enroll(hub_url: &str, token: &str, ca_file: Option<&Path>, name: &str) -> Result<SensorCredential, RelayError> {
    let client = HubClient::new(hub_url, ca_file, Duration::from_secs(30))?;
    let url = client.url("/api/v1/sensors/enroll");
    let resp = client
        .http
        .post(&url)
        .json(&serde_json::json!({ "token": token.trim(), "name": name }))
        .send()
        .await
        .map_err(|e| RelayError::Unreachable { url: url.clone(), reason: error_chain(&e) })?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map_err(|e| RelayError::Unreachable { url: url.clone(), reason: error_chain(&e) })?;
    if !(200..300).contains(&status) {
        let message = match classify_reply(status, &body, None) {
            Reply::Refused { message, .. } | Reply::Retry { message, .. } => message,
            _ => String::new(),
        };
        return Err(RelayError::EnrollRefused { status, message });
    }
    let reply: EnrollReply = serde_json::from_slice(&body).map_err(|e| RelayError::BadReply(e.to_string()))?;
    Ok(SensorCredential {
        hub_url: client.base.as_str().trim_end_matches('/').to_string(),
        sensor_id: reply.sensor.id,
        jurisdiction_id: reply.sensor.jurisdiction_id,
        credential: reply.credential,
        ca_file: ca_file.map(Path::to_path_buf),
    })
}

/// [`enroll`] for sync callers (runs on its own thread and runtime, so it also works when
/// called from inside a runtime), then saves the credential to `path` with mode 0600.
pub fn enroll_to_file(hub_url: &str, token: &str, ca_file: Option<&Path>, name: &str, path: &Path) -> Result<SensorCredential, RelayError> {
    let (hub_url, token, ca_file, name) = (hub_url.to_string(), token.to_string(), ca_file.map(Path::to_path_buf), name.to_string());
    let cred = std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(RelayError::Thread)?;
            rt.block_on(enroll(&hub_url, &token, ca_file.as_deref(), &name))
        })
        .join()
        .unwrap_or_else(|_| Err(RelayError::Client("enrollment thread panicked".into())))
    })?;
    cred.save(path)?;
    Ok(cred)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_hub_url("https://hub.example.org").is_ok());
        assert!(check_hub_url("http://127.0.0.1:8443").is_ok());
        assert!(check_hub_url("http://[::1]:80/").is_ok());
        assert!(check_hub_url("http://localhost:1").is_ok());
        assert!(matches!(check_hub_url("http://hub.example.org"), Err(RelayError::InsecureUrl { .. })));
        assert!(matches!(check_hub_url("http://10.0.0.1"), Err(RelayError::InsecureUrl { .. })));
        assert!(matches!(check_hub_url("ftp://x"), Err(RelayError::BadUrl { .. })));
        assert!(matches!(check_hub_url("not a url"), Err(RelayError::BadUrl { .. })));
    }

    #[test]
    fn replies() {
        assert_eq!(
            classify_reply(200, br#"{"accepted":2,"rejected_total":1,"rejected":[{"line":3,"reason":"x"}],"duplicate":true}"#, None),
            Reply::Acked(Receipt { accepted: 2, rejected_total: 1, rejected: vec![LineRejection { line: 3, reason: "x".into() }], duplicate: true })
        );
        assert_eq!(classify_reply(413, b"", None), Reply::TooLarge);
        assert_eq!(classify_reply(400, br#"{"error":"bad gzip"}"#, None), Reply::Refused { status: 400, message: "bad gzip".into() });
        assert!(matches!(classify_reply(429, b"", Some(Duration::from_secs(1))), Reply::Retry { status: Some(429), after: Some(_), .. }));
        assert!(matches!(classify_reply(401, b"", None), Reply::Retry { status: Some(401), .. }));
        assert!(matches!(classify_reply(503, b"\xff", None), Reply::Retry { status: Some(503), .. }));
    }

    #[test]
    fn batches_are_ndjson_gzip() {
        use std::io::Read;
        let records = vec![
            Record { seq: 1, payload: b"{\"a\":1}".to_vec() },
            Record { seq: 2, payload: b"{\"b\":\n2}".to_vec() },
            Record { seq: 3, payload: b"{\"c\":3}".to_vec() },
        ];
        let e = encode_batch(&records);
        assert_eq!((e.lines, e.malformed), (2, 1));
        let mut out = String::new();
        flate2::read::GzDecoder::new(&e.gzip_body[..]).read_to_string(&mut out).unwrap();
        assert_eq!(out, "{\"a\":1}\n{\"c\":3}\n");
        assert_eq!(idempotency_key(7, 1042), "7:1042");
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let delays: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(50) && delays[0] <= Duration::from_millis(100));
        assert!(delays[2] >= Duration::from_millis(200) && delays[2] <= Duration::from_millis(400));
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(1000)));
        assert!(delays[7] >= Duration::from_millis(500));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn credential_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sensor.json");
        let cred = SensorCredential {
            hub_url: "https://hub".into(),
            sensor_id: 3,
            jurisdiction_id: Some(1),
            credential: "wsc_secret".into(),
            ca_file: None,
        };
        cred.save(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(SensorCredential::load(&path).unwrap(), cred);
        cred.save(&path).unwrap();
        assert!(matches!(SensorCredential::load(&dir.path().join("nope")), Err(RelayError::CredentialFile { .. })));
    }
}
