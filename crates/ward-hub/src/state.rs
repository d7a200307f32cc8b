//! The shared state of a running hub: the store, the configuration, the ingest group-commit
//! queue, wake-ups for the delivery worker and indicator long-polls, limits and metrics.
//!
//! Group commit: request handlers parse their batch, then hand it to one writer thread through
//! a bounded channel. The thread takes every batch waiting (up to [`MAX_GROUP_BATCHES`]),
//! stores and correlates them in one transaction, and answers each handler after the commit.
//! So a reply always follows durability, and one fsync serves many sensors.
//!
//! Admission (see [`crate::api::ingest_events`]): a sensor may have [`MAX_INGEST_PER_SENSOR`]
//! requests in flight; more are refused with 429 before their body is read. A body is read
//! under the deadline of [`crate::body`] without holding anything shared; only a complete body
//! waits for one of the [`MAX_CONCURRENT_INGEST`] slots to be decoded, parsed and committed.
//! So one credential, however slow or numerous its connections, cannot hold the slots every
//! other sensor needs.
//!
//! Two lanes: a batch holding at least one sighting (an alert with a remote actor) goes through
//! the urgent lane, which the writer empties first, so a sighting that opens a campaign waits
//! for at most the group being committed, never for a queue of bulk flow and DNS records.
//!
//! Replicas (docs/hub.md "Replicas"): several hubs may share one PostgreSQL store. The state
//! subscribes to the store's change notices ([`Store::watch_changes`]), which bump the same
//! wake-ups a local commit bumps, so a long-poll on this replica wakes when another replica adds
//! an indicator. Background jobs take a lease in the store first ([`HubState::hold_job`]), so
//! they run on one replica at a time. The security budgets share the store's records when it
//! offers them ([`crate::auth`]); the ingest admission limits below stay per process.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch, Notify};

use crate::config::HubConfig;
use crate::error::{AppError, StoreError};
use crate::metrics::Metrics;
use crate::model::{now_ms, Millis};
use crate::store::{ChangeWatch, CorrelationPolicy, IngestBatch, IngestReceipt, Store, StoreChange, StoreResult};

/// Batches committed together at most; bounds the latency one commit adds.
pub const MAX_GROUP_BATCHES: usize = 256;
/// Events committed together at most: a bit more than a tenth of a second of writer time,
/// which bounds how long an urgent sighting waits behind the group in progress (time to warn).
/// An fsync per 20 000 events costs little throughput.
pub const MAX_GROUP_EVENTS: usize = 20_000;
/// Batches waiting for the writer before handlers wait for room (back-pressure on sensors).
pub const INGEST_QUEUE_DEPTH: usize = 1024;
/// Ingest requests being decoded, parsed or committed at once (their bodies already read); more
/// wait their turn with their body in memory. This bounds the decoding memory to about
/// `MAX_CONCURRENT_INGEST × MAX_BATCH_DECODED_BYTES` in the worst case and to a few hundred MB
/// for real batches of a few MB.
pub const MAX_CONCURRENT_INGEST: usize = 32;
/// Ingest requests of one sensor in flight at once (reading, waiting or committing). A sensor
/// sends its batches one after another; a few more cover a retry racing a slow reply and
/// several shippers sharing a credential. More are refused with 429 and `Retry-After`, so
/// one credential holds at most this many bodies in memory.
pub const MAX_INGEST_PER_SENSOR: usize = 4;
/// Failed user creations (409: name taken) per creating user: a burst, then one a minute. A
/// taken name is taken wherever it lives, so each failure tells the creator that the name
/// exists somewhere; this keeps that to a trickle (see [`crate::api::create_user`]).
pub const NAME_PROBE_BURST: f64 = 10.0;
pub const NAME_PROBE_RATE_PER_SEC: f64 = 1.0 / 60.0;

/// Background jobs that run on one replica at a time (see [`HubState::hold_job`]).
/// Event, idempotency-key and limit-record retention (`crate::server`).
pub const JOB_RETENTION: &str = "retention";
/// The retro-hunt and contact-record retention ([`crate::retro::run_worker`]).
pub const JOB_RETRO_HUNT: &str = "retro-hunt";
/// The retro-hunt's lease: its holder renews it at least every
/// [`IDLE_POLL`](crate::retro::IDLE_POLL) while alive, so another replica takes over within
/// this after the holder stops.
pub const RETRO_HUNT_LEASE_MS: Millis = 30_000;

type IngestReply = oneshot::Sender<Result<IngestReceipt, String>>;

#[derive(Clone)]
pub struct HubState {
    pub store: Arc<dyn Store>,
    pub config: Arc<HubConfig>,
    pub policy: Arc<CorrelationPolicy>,
    pub metrics: Arc<Metrics>,
    pub sensor_limiter: Arc<crate::auth::RateLimiter>,
    pub user_limiter: Arc<crate::auth::RateLimiter>,
    pub login_limiter: Arc<crate::auth::RateLimiter>,
    /// Failed-login backoff per source and per (account, source).
    pub login_throttle: Arc<crate::auth::LoginThrottle>,
    /// Pinged when notifications were enqueued.
    pub outbox_wake: Arc<Notify>,
    /// Notifications the writer claimed right after the commit that enqueued them.
    pub handoff: Arc<Handoff>,
    /// Bumped when indicators were added; long-polls wait on it.
    pub indicators_tx: Arc<watch::Sender<u64>>,
    pub asn: Option<Arc<maxminddb::Reader<Vec<u8>>>>,
    /// Admission for ingest requests (see [`MAX_CONCURRENT_INGEST`]).
    pub ingest_permits: Arc<tokio::sync::Semaphore>,
    /// Ingest requests in flight per sensor (see [`MAX_INGEST_PER_SENSOR`]).
    pub sensor_ingest: Arc<InFlight>,
    /// Failed user creations per creating user (see [`NAME_PROBE_BURST`]).
    pub name_probe_limiter: Arc<crate::auth::RateLimiter>,
    /// SHA-256 (hex) of the metrics scraper's token, from `[metrics] token_sha256`.
    pub metrics_token_hash: Option<String>,
    /// This process's name as a job-lease holder: `PID-RANDOM`, unique per state.
    pub replica_id: Arc<str>,
    /// Peer hubs and the pusher's wake-up ([`crate::share::federation`]).
    pub federation: Arc<crate::share::federation::Federation>,
    /// The acknowledgement links' HMAC key, read from the store once ([`crate::ack::link_key`]).
    pub ack_key: Arc<tokio::sync::OnceCell<Arc<Vec<u8>>>>,
    /// The store's change notices (other replicas' commits); stops when the last state goes.
    _change_watch: Option<Arc<ChangeWatch>>,
    ingest_tx: mpsc::Sender<(IngestBatch, IngestReply)>,
    urgent_tx: mpsc::Sender<(IngestBatch, IngestReply)>,
}

impl HubState {
    /// Builds the state and starts the writer thread (it ends when the last state is dropped).
    pub fn new(store: Arc<dyn Store>, config: HubConfig) -> anyhow::Result<Self> {
        let asn = match &config.asn_db {
            Some(path) => Some(Arc::new(maxminddb::Reader::open_readfile(path).map_err(|e| {
                anyhow::anyhow!("cannot open ASN database {}: {e} (remove asn_db from the config to run without)", path.display())
            })?)),
            None => None,
        };
        let metrics_token_hash = config.metrics.token_hash().map_err(|e| anyhow::anyhow!(e))?;
        // Checked before anything that would have to be taken down again.
        let federation = Arc::new(crate::share::federation::Federation::new(&config.federation).map_err(|e| anyhow::anyhow!(e))?);
        config.notify.escalate_after_ms().map_err(|e| anyhow::anyhow!("invalid [notify] configuration: {e}"))?;
        let (ingest_tx, ingest_rx) = mpsc::channel(INGEST_QUEUE_DEPTH);
        let (urgent_tx, urgent_rx) = mpsc::channel(INGEST_QUEUE_DEPTH);
        // The writer is a plain thread; it waits on the two lanes with a tiny runtime of its own.
        let waiter = tokio::runtime::Builder::new_current_thread().build()?;
        let (indicators_tx, _) = watch::channel(0u64);
        let limits = &config.limits;
        let policy = config
            .correlation_policy(|ip| asn.as_ref().and_then(|reader| crate::asn::lookup(reader, ip)))
            .map_err(|e| anyhow::anyhow!("invalid [trust] configuration: {e}"))?;
        let indicators_tx = Arc::new(indicators_tx);
        let outbox_wake = Arc::new(Notify::new());
        // Other replicas' commits wake what a local commit wakes.
        let change_watch = {
            let (indicators, outbox) = (indicators_tx.clone(), outbox_wake.clone());
            store.watch_changes(Arc::new(move |change: StoreChange| match change {
                StoreChange::Indicators => indicators.send_modify(|v| *v += 1),
                StoreChange::Outbox => outbox.notify_one(),
            }))?
        };
        let state = HubState {
            policy: Arc::new(policy),
            metrics: Arc::new(Metrics::default()),
            sensor_limiter: Arc::new(crate::auth::RateLimiter::new(limits.sensor_batches_per_sec, limits.sensor_batches_per_sec * 2.0)),
            user_limiter: Arc::new(crate::auth::RateLimiter::new(limits.user_requests_per_sec, limits.user_requests_per_sec * 3.0)),
            login_limiter: Arc::new(crate::auth::RateLimiter::shared(crate::auth::LOGIN_RATE_PER_SEC, crate::auth::LOGIN_BURST, store.clone())),
            login_throttle: Arc::new(crate::auth::LoginThrottle::shared(store.clone())),
            outbox_wake,
            handoff: Arc::new(Handoff::new()),
            indicators_tx,
            asn,
            ingest_permits: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_INGEST)),
            sensor_ingest: Arc::new(InFlight::new(MAX_INGEST_PER_SENSOR)),
            name_probe_limiter: Arc::new(crate::auth::RateLimiter::shared(NAME_PROBE_RATE_PER_SEC, NAME_PROBE_BURST, store.clone())),
            metrics_token_hash,
            federation,
            replica_id: format!("{}-{:016x}", std::process::id(), rand::random::<u64>()).into(),
            ack_key: Arc::new(tokio::sync::OnceCell::new()),
            _change_watch: change_watch.map(Arc::new),
            store,
            config: Arc::new(config),
            ingest_tx,
            urgent_tx,
        };
        let writer = WriterCtx {
            store: state.store.clone(),
            claim_lease_ms: state.config.notify.claim_lease_ms(),
            policy: state.policy.clone(),
            metrics: state.metrics.clone(),
            outbox_wake: state.outbox_wake.clone(),
            handoff: state.handoff.clone(),
            indicators_tx: state.indicators_tx.clone(),
        };
        std::thread::Builder::new().name("ward-hub-writer".into()).spawn(move || writer.run(waiter, urgent_rx, ingest_rx))?;
        Ok(state)
    }

    /// Whether this replica may run background job `name` now: takes its lease for `lease_ms`,
    /// or renews it when this replica already holds it. Another replica's unexpired lease, or a
    /// store error (logged), means not now.
    pub async fn hold_job(&self, name: &'static str, lease_ms: Millis) -> bool {
        let holder = self.replica_id.clone();
        match self.store_call(move |s| s.claim_job(name, &holder, now_ms(), lease_ms)).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(job = name, error = %e, "cannot take the job lease; skipping this run");
                false
            }
        }
    }

    /// Gives up this replica's lease on `name` (at shutdown, so another replica takes the job
    /// over at once instead of after the lease expires).
    pub async fn release_job(&self, name: &'static str) {
        let holder = self.replica_id.clone();
        if let Err(e) = self.store_call(move |s| s.release_job(name, &holder)).await {
            tracing::warn!(job = name, error = %e, "cannot release the job lease; it expires on its own");
        }
    }

    /// Runs a store call on the blocking pool.
    pub async fn store_call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> StoreResult<T> + Send + 'static,
    ) -> Result<T, AppError> {
        let store = self.store.clone();
        Ok(tokio::task::spawn_blocking(move || f(store.as_ref())).await??)
    }

    /// Queues a batch for the next group commit and waits until it is durable.
    pub async fn ingest(&self, batch: IngestBatch) -> Result<IngestReceipt, AppError> {
        let (tx, rx) = oneshot::channel();
        let lane = if batch.events.iter().any(|e| e.remote.is_some()) { &self.urgent_tx } else { &self.ingest_tx };
        lane.send((batch, tx))
            .await
            .map_err(|_| AppError::Internal("ingest writer stopped".into()))?;
        rx.await
            .map_err(|_| AppError::Internal("ingest writer dropped the batch".into()))?
            .map_err(AppError::Internal)
    }

    /// The ASN of an address, when an ASN database is configured and knows it.
    pub fn asn_of(&self, ip: std::net::IpAddr) -> Option<u32> {
        let reader = self.asn.as_ref()?;
        crate::asn::lookup(reader, ip)
    }
}

/// A counting limit per key (a sensor id): at most `max` holders of one key at once. Entries
/// live only while held, so the map is as large as the number of keys in flight.
pub struct InFlight {
    max: usize,
    held: std::sync::Mutex<std::collections::HashMap<i64, usize>>,
}

/// One place taken in an [`InFlight`]; dropping it gives the place back.
pub struct InFlightGuard {
    owner: Arc<InFlight>,
    key: i64,
}

impl InFlight {
    pub fn new(max: usize) -> Self {
        InFlight { max, held: std::sync::Mutex::new(std::collections::HashMap::new()) }
    }

    /// Takes a place for `key`; `None` when `key` already holds `max`.
    pub fn try_take(self: &Arc<Self>, key: i64) -> Option<InFlightGuard> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let n = held.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(InFlightGuard { owner: self.clone(), key })
    }

    /// Places `key` holds now.
    pub fn held(&self, key: i64) -> usize {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).get(&key).copied().unwrap_or(0)
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut held = self.owner.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

struct WriterCtx {
    store: Arc<dyn Store>,
    claim_lease_ms: Millis,
    policy: Arc<CorrelationPolicy>,
    metrics: Arc<Metrics>,
    outbox_wake: Arc<Notify>,
    handoff: Arc<Handoff>,
    indicators_tx: Arc<watch::Sender<u64>>,
}

/// The hand-off of freshly enqueued notifications from the ingest writer to the delivery
/// worker. Without it the worker's own claim would wait for the writer's next group (a tenth of
/// a second or more under load) before the first warning could leave; with it the writer,
/// right after answering the sensors, claims the due notifications (a short transaction on the
/// connection it already holds) and passes them over. Claims are leases in the store, so this
/// stays correct with several replicas. Used only while a delivery worker is attached.
pub struct Handoff {
    tx: mpsc::UnboundedSender<Vec<crate::model::NotificationJob>>,
    rx: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Vec<crate::model::NotificationJob>>>>,
    attached: std::sync::atomic::AtomicBool,
}

impl Handoff {
    fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Handoff { tx, rx: std::sync::Mutex::new(Some(rx)), attached: std::sync::atomic::AtomicBool::new(false) }
    }

    /// The delivery worker takes the receiving end once; later callers get `None`.
    pub fn attach(&self) -> Option<mpsc::UnboundedReceiver<Vec<crate::model::NotificationJob>>> {
        let rx = self.rx.lock().ok()?.take()?;
        self.attached.store(true, std::sync::atomic::Ordering::Release);
        Some(rx)
    }

    fn attached(&self) -> bool {
        self.attached.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl WriterCtx {
    fn run(self, waiter: tokio::runtime::Runtime, mut urgent: mpsc::Receiver<(IngestBatch, IngestReply)>, mut bulk: mpsc::Receiver<(IngestBatch, IngestReply)>) {
        loop {
            let next = match urgent.try_recv().or_else(|_| bulk.try_recv()) {
                Ok(item) => Some(item),
                Err(_) => waiter.block_on(async {
                    tokio::select! {
                        biased;
                        item = urgent.recv() => item,
                        item = bulk.recv() => item,
                    }
                }),
            };
            // Both lanes close together, when the last state is dropped (no handler waits then).
            let Some(first) = next else { return };
            let mut events = first.0.events.len();
            let mut group = vec![first];
            for lane in [&mut urgent, &mut bulk] {
                while group.len() < MAX_GROUP_BATCHES && events < MAX_GROUP_EVENTS {
                    match lane.try_recv() {
                        Ok(item) => {
                            events += item.0.events.len();
                            group.push(item);
                        }
                        Err(_) => break,
                    }
                }
            }
            // Every group carries at least one bulk batch when one waits, so a steady stream of
            // urgent batches cannot starve sensors whose batches hold no sightings.
            if !group.iter().any(|(b, _)| !b.events.iter().any(|e| e.remote.is_some())) {
                if let Ok(item) = bulk.try_recv() {
                    group.push(item);
                }
            }
            let (batches, replies): (Vec<IngestBatch>, Vec<IngestReply>) = group.into_iter().unzip();
            self.commit(batches, replies);
        }
    }

    /// Claims due notifications for the attached delivery worker, or wakes the worker to claim.
    fn hand_off(&self) {
        if !self.handoff.attached() {
            self.outbox_wake.notify_one();
            return;
        }
        let limit = crate::notify::CLAIM_BATCH;
        match self.store.claim_notifications(now_ms(), self.claim_lease_ms, limit) {
            Ok(jobs) => {
                let full = jobs.len() == limit;
                if !jobs.is_empty() && self.handoff.tx.send(jobs).is_err() || full {
                    self.outbox_wake.notify_one();
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "writer could not claim notifications; the worker will");
                self.outbox_wake.notify_one();
            }
        }
    }

    /// Stores one group in one transaction and answers each handler after the commit.
    fn commit(&self, batches: Vec<IngestBatch>, replies: Vec<IngestReply>) {
        match self.store.ingest(&batches, &self.policy, now_ms()) {
            Ok((receipts, effects)) => {
                self.metrics.group_commits.inc();
                for r in &receipts {
                    if r.duplicate {
                        self.metrics.batches_duplicate.inc();
                    } else {
                        self.metrics.batches_ingested.inc();
                        self.metrics.events_ingested.add(r.accepted as u64);
                        self.metrics.lines_rejected.add(r.rejected_total as u64);
                    }
                }
                self.metrics.campaigns_opened.add(effects.campaigns_opened as u64);
                self.metrics.batches_held.add(effects.batches_held as u64);
                self.metrics.trust_anomalies.add(effects.trust_anomalies as u64);
                if effects.indicators_added > 0 {
                    self.indicators_tx.send_modify(|v| *v += 1);
                }
                for (reply, receipt) in replies.into_iter().zip(receipts) {
                    let _ = reply.send(Ok(receipt));
                }
                if effects.notifications_enqueued > 0 {
                    self.metrics.notifications_enqueued.add(effects.notifications_enqueued as u64);
                    self.hand_off();
                }
            }
            Err(e) if batches.len() > 1 => {
                // One batch must not fail its neighbours: commit each alone.
                tracing::warn!(error = %e, batches = batches.len(), "group commit failed; committing batches one by one");
                for (batch, reply) in batches.into_iter().zip(replies) {
                    self.commit(vec![batch], vec![reply]);
                }
            }
            Err(e) => {
                let msg = match e {
                    StoreError::Database(m) => m,
                    other => other.to_string(),
                };
                tracing::error!(error = %msg, batches = batches.len(), "ingest commit failed");
                for reply in replies {
                    let _ = reply.send(Err(format!("store failed: {msg}")));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_is_per_key_and_given_back() {
        let slots = Arc::new(InFlight::new(2));
        let a1 = slots.try_take(1).unwrap();
        let _a2 = slots.try_take(1).unwrap();
        assert!(slots.try_take(1).is_none(), "a third for the same key is refused");
        let _b = slots.try_take(2).expect("another key is not affected");
        drop(a1);
        assert_eq!(slots.held(1), 1);
        assert!(slots.try_take(1).is_some());
        drop(_b);
        assert_eq!(slots.held(2), 0);
        assert!(!slots.held.lock().unwrap().contains_key(&2), "idle keys are forgotten");
    }
}
