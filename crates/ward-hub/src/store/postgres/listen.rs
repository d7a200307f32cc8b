//! The change listener: how a replica learns that another one grew the indicator log or enqueued
//! notifications (docs/hub.md "Replicas").
//!
//! A transaction that appends to the indicator log runs `pg_notify('ward_indicators', REPLICA)`
//! once, one that enqueues notifications `pg_notify('ward_outbox', REPLICA)`; PostgreSQL
//! delivers them at commit, and not at all on rollback. Every replica keeps one dedicated
//! connection outside the pool that `LISTEN`s on both channels, on a thread of its own, and
//! calls the hub's callback (which bumps the same local wake-ups a local commit bumps). Notices
//! carrying the replica's own id are skipped: its own commits already woke it.
//!
//! A lost connection is opened again with a doubling backoff ([`MIN_BACKOFF`] to
//! [`MAX_BACKOFF`]); after each (re)connect the callback runs once for each channel, since a
//! change may have committed while nobody listened. Long-polls also re-check on their own once a
//! second, so a broken listener costs latency, never an indicator.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::NoTls;

use crate::error::StoreError;
use crate::store::{ChangeCallback, ChangeWatch, StoreChange, StoreResult};

pub const INDICATORS_CHANNEL: &str = "ward_indicators";
pub const OUTBOX_CHANNEL: &str = "ward_outbox";
/// The `application_name` of listening connections.
pub const APPLICATION_NAME: &str = "ward-hub listener";
/// How often the listener looks at its stop flag while no notice arrives.
const POLL: Duration = Duration::from_millis(500);
/// How often an idle listening connection is checked (a dead peer shows up within this).
const KEEPALIVE: Duration = Duration::from_secs(15);
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

pub(super) fn spawn(mut config: ::postgres::Config, replica: Arc<str>, on_change: ChangeCallback) -> StoreResult<ChangeWatch> {
    // Tells the listening connections apart in pg_stat_activity.
    config.application_name(APPLICATION_NAME);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("ward-hub-listen".into())
        .spawn(move || run(config, &replica, &on_change, &flag))
        .map_err(|e| StoreError::Database(format!("cannot start the postgresql change listener: {e}")))?;
    Ok(ChangeWatch::new(stop))
}

fn run(config: ::postgres::Config, replica: &str, on_change: &ChangeCallback, stop: &AtomicBool) {
    let mut backoff = MIN_BACKOFF;
    while !stop.load(Ordering::Acquire) {
        match listen(&config, replica, on_change, stop, &mut backoff) {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "postgresql change listener lost its connection; reconnecting");
                let until = Instant::now() + backoff;
                while Instant::now() < until && !stop.load(Ordering::Acquire) {
                    std::thread::sleep(POLL.min(until.saturating_duration_since(Instant::now())));
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Listens on one connection until `stop` (`Ok`) or the connection fails (`Err`).
fn listen(config: &::postgres::Config, replica: &str, on_change: &ChangeCallback, stop: &AtomicBool, backoff: &mut Duration) -> Result<(), String> {
    let mut client = config.connect(NoTls).map_err(|e| e.to_string())?;
    client.batch_execute(&format!("LISTEN {INDICATORS_CHANNEL}; LISTEN {OUTBOX_CHANNEL}")).map_err(|e| e.to_string())?;
    *backoff = MIN_BACKOFF;
    tracing::debug!("postgresql change listener connected");
    on_change(StoreChange::Indicators);
    on_change(StoreChange::Outbox);
    let mut checked = Instant::now();
    loop {
        if stop.load(Ordering::Acquire) {
            return Ok(());
        }
        {
            let mut notifications = client.notifications();
            let mut notices = notifications.timeout_iter(POLL);
            while let Some(notice) = notices.next().map_err(|e| e.to_string())? {
                if notice.payload() == replica {
                    continue;
                }
                match notice.channel() {
                    INDICATORS_CHANNEL => on_change(StoreChange::Indicators),
                    OUTBOX_CHANNEL => on_change(StoreChange::Outbox),
                    _ => {}
                }
                if stop.load(Ordering::Acquire) {
                    return Ok(());
                }
            }
        }
        if client.is_closed() {
            return Err("connection closed".into());
        }
        if checked.elapsed() >= KEEPALIVE {
            client.batch_execute("").map_err(|e| e.to_string())?;
            checked = Instant::now();
        }
    }
}
