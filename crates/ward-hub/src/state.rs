//! The shared state of a running hub: the store, the configuration, the ingest group-commit
//! queue, wake-ups for the delivery worker and indicator long-polls, limits and metrics.
//!
//! Group commit: request handlers parse their batch, then hand it to one writer thread through
//! a bounded channel. The thread takes every batch waiting (up to [`MAX_GROUP_BATCHES`]),
//! stores and correlates them in one transaction, and answers each handler after the commit.
//! So a reply always follows durability, and one fsync serves many sensors.
//!
//! Two lanes: a batch holding at least one sighting (an alert with a remote actor) goes through
//! the urgent lane, which the writer empties first, so a sighting that opens a campaign waits
//! for at most the group being committed, never for a queue of bulk flow and DNS records.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch, Notify};

use crate::config::HubConfig;
use crate::error::{AppError, StoreError};
use crate::metrics::Metrics;
use crate::model::now_ms;
use crate::store::{CorrelationPolicy, IngestBatch, IngestReceipt, Store, StoreResult};

/// Batches committed together at most; bounds the latency one commit adds.
pub const MAX_GROUP_BATCHES: usize = 256;
/// Events committed together at most: a bit more than a tenth of a second of writer time,
/// which bounds how long an urgent sighting waits behind the group in progress (time to warn).
/// An fsync per 20 000 events costs little throughput.
pub const MAX_GROUP_EVENTS: usize = 20_000;
/// Batches waiting for the writer before handlers wait for room (back-pressure on sensors).
pub const INGEST_QUEUE_DEPTH: usize = 1024;
/// Ingest requests being received, parsed or committed at once; more wait their turn before
/// their body is read. With the body limits this bounds ingest memory to about
/// `MAX_CONCURRENT_INGEST × (MAX_BATCH_BODY_BYTES + MAX_BATCH_DECODED_BYTES)` in the worst case
/// and to a few hundred MB for real batches of a few MB.
pub const MAX_CONCURRENT_INGEST: usize = 32;

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
        let (ingest_tx, ingest_rx) = mpsc::channel(INGEST_QUEUE_DEPTH);
        let (urgent_tx, urgent_rx) = mpsc::channel(INGEST_QUEUE_DEPTH);
        // The writer is a plain thread; it waits on the two lanes with a tiny runtime of its own.
        let waiter = tokio::runtime::Builder::new_current_thread().build()?;
        let (indicators_tx, _) = watch::channel(0u64);
        let limits = &config.limits;
        let state = HubState {
            policy: Arc::new(config.correlation.policy()),
            metrics: Arc::new(Metrics::default()),
            sensor_limiter: Arc::new(crate::auth::RateLimiter::new(limits.sensor_batches_per_sec, limits.sensor_batches_per_sec * 2.0)),
            user_limiter: Arc::new(crate::auth::RateLimiter::new(limits.user_requests_per_sec, limits.user_requests_per_sec * 3.0)),
            login_limiter: Arc::new(crate::auth::RateLimiter::new(crate::auth::LOGIN_RATE_PER_SEC, crate::auth::LOGIN_BURST)),
            login_throttle: Arc::new(crate::auth::LoginThrottle::default()),
            outbox_wake: Arc::new(Notify::new()),
            handoff: Arc::new(Handoff::new()),
            indicators_tx: Arc::new(indicators_tx),
            asn,
            ingest_permits: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_INGEST)),
            store,
            config: Arc::new(config),
            ingest_tx,
            urgent_tx,
        };
        let writer = WriterCtx {
            store: state.store.clone(),
            policy: state.policy.clone(),
            metrics: state.metrics.clone(),
            outbox_wake: state.outbox_wake.clone(),
            handoff: state.handoff.clone(),
            indicators_tx: state.indicators_tx.clone(),
        };
        std::thread::Builder::new().name("ward-hub-writer".into()).spawn(move || writer.run(waiter, urgent_rx, ingest_rx))?;
        Ok(state)
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

struct WriterCtx {
    store: Arc<dyn Store>,
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
        match self.store.claim_notifications(now_ms(), crate::notify::CLAIM_LEASE_MS, limit) {
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
