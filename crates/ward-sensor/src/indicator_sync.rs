//! Live indicator sync: the hub's indicators reach the sensor's matcher within seconds, without
//! a restart.
//!
//! A thread long-polls `GET /api/v1/indicators?since=CURSOR&wait=SECS` (the hub answers as soon
//! as an indicator newer than the cursor exists, or after `wait` with none). Each answer is
//! folded into the sensor's copy of the hub's list (`add` and `remove` actions, in the hub's
//! order), the copy is written atomically (temporary file + rename) as a CSV indicator list,
//! and the indicator set is rebuilt from every configured indicator file and swapped in
//! atomically ([`crate::detect::Engines`]); packets in flight keep the set they started with.
//!
//! On start the cursor is 0: the sensor rebuilds the whole list from the hub's log, so a sensor
//! that was down while indicators were removed does not keep stale ones. When the hub cannot be
//! reached the last list stays in force and the thread retries with backoff; the file on disk
//! lets a restarted sensor detect with the last known list before the hub answers.
//!
//! Alerts raised by these indicators carry the hub's indicator id (`hub-SEQ`) and are relayed to
//! the hub like every alert, so the hub learns who was hit after the warning.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use ward_detect::IndicatorSet;
use ward_model::Timestamp;

use crate::detect::Engines;
use crate::relay::{Backoff, HubClient, SensorCredential};

/// Longest a long-poll asks the hub to hold the request.
pub const DEFAULT_WAIT_SECS: u64 = 25;

/// How to sync.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub credential: SensorCredential,
    /// The CSV file the hub's list is written to; it must be one of the detection config's
    /// indicator files for the sensor to match on it.
    pub file: PathBuf,
    pub wait_secs: u64,
}

impl SyncConfig {
    pub fn new(credential: SensorCredential, file: PathBuf) -> SyncConfig {
        SyncConfig { credential, file, wait_secs: DEFAULT_WAIT_SECS }
    }
}

/// One indicator as the hub publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HubIndicator {
    seq: i64,
    kind: String,
    value: String,
}

#[derive(Default)]
struct Counters {
    cursor: AtomicI64,
    polls: AtomicU64,
    applied: AtomicU64,
    errors: AtomicU64,
    indicators: AtomicU64,
}

/// Counters of a running sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// The hub's cursor the sensor has applied through.
    pub cursor: i64,
    pub polls: u64,
    /// Times a changed list was written and swapped in.
    pub applied: u64,
    /// Failed polls (hub unreachable, refused, bad reply).
    pub errors: u64,
    /// Indicators from the hub in force now.
    pub indicators: u64,
}

/// A running sync; dropping it stops the thread.
pub struct SyncHandle {
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    applied_at: Arc<Mutex<Vec<(i64, SystemTime)>>>,
}

impl SyncHandle {
    pub fn stats(&self) -> SyncStats {
        let c = &self.counters;
        SyncStats {
            cursor: c.cursor.load(Ordering::Relaxed),
            polls: c.polls.load(Ordering::Relaxed),
            applied: c.applied.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            indicators: c.indicators.load(Ordering::Relaxed),
        }
    }

    /// When the change with hub cursor `seq` (or a later one) was applied, if it was.
    pub fn applied_at(&self, seq: i64) -> Option<SystemTime> {
        let log = self.applied_at.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().find(|(c, _)| *c >= seq).map(|(_, t)| *t)
    }

    /// Waits until the hub cursor `seq` is applied, or `timeout`; true if it was.
    pub fn wait_for(&self, seq: i64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.counters.cursor.load(Ordering::Relaxed) < seq {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SyncHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Starts syncing. `engines`, when given, get the new indicator set after every change.
/// The thread stops within one long-poll (`wait_secs`) of [`SyncHandle::shutdown`].
pub fn spawn(config: SyncConfig, engines: Option<Engines>) -> std::io::Result<SyncHandle> {
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let applied_at = Arc::new(Mutex::new(Vec::new()));
    let thread = std::thread::Builder::new().name("ward-indicator-sync".into()).spawn({
        let (counters, stop, applied_at) = (counters.clone(), stop.clone(), applied_at.clone());
        move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("indicator sync cannot start its runtime: {e}");
                    return;
                }
            };
            rt.block_on(sync_loop(config, engines, counters, stop, applied_at));
        }
    })?;
    Ok(SyncHandle { counters, stop, thread: Some(thread), applied_at })
}

async fn sync_loop(config: SyncConfig, engines: Option<Engines>, counters: Arc<Counters>, stop: Arc<AtomicBool>, applied_at: Arc<Mutex<Vec<(i64, SystemTime)>>>) {
    let timeout = Duration::from_secs(config.wait_secs + 10);
    let client = match HubClient::new(&config.credential.hub_url, config.credential.ca_file.as_deref(), timeout) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("indicator sync: {e}");
            counters.errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let mut list: BTreeMap<(String, String), HubIndicator> = BTreeMap::new();
    let mut cursor = 0i64;
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    // Short polls while stopping is requested often (tests); the hub's wait bounds the rest.
    while !stop.load(Ordering::Relaxed) {
        counters.polls.fetch_add(1, Ordering::Relaxed);
        let path = format!("/api/v1/indicators?since={cursor}&wait={}", config.wait_secs);
        let reply = tokio::select! {
            r = client.get_json(&config.credential.credential, &path) => r,
            _ = wait_for_stop(&stop) => break,
        };
        let body = match reply {
            Ok((200, body)) => body,
            Ok((status, body)) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("indicator sync: the hub answered {status}: {body}");
                sleep_unless_stopped(backoff.next_delay(), &stop).await;
                continue;
            }
            Err(e) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("indicator sync: {e}; keeping the {} indicators in force", list.len());
                sleep_unless_stopped(backoff.next_delay(), &stop).await;
                continue;
            }
        };
        backoff.reset();
        let Some(items) = body.get("indicators").and_then(Value::as_array) else {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("indicator sync: the hub's reply has no indicator list");
            sleep_unless_stopped(Duration::from_secs(1), &stop).await;
            continue;
        };
        let new_cursor = body.get("cursor").and_then(Value::as_i64).unwrap_or(cursor);
        if items.is_empty() || new_cursor <= cursor {
            continue;
        }
        apply_changes(&mut list, items);
        cursor = new_cursor;
        if let Err(e) = write_list(&config.file, &list) {
            counters.errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!("indicator sync: cannot write {}: {e}", config.file.display());
            continue;
        }
        if let Some(engines) = &engines {
            let set = IndicatorSet::load(&engines.config.indicator_files, Timestamp::now());
            engines.indicators.store(set);
        }
        counters.indicators.store(list.len() as u64, Ordering::Relaxed);
        counters.applied.fetch_add(1, Ordering::Relaxed);
        counters.cursor.store(cursor, Ordering::Relaxed);
        applied_at.lock().unwrap_or_else(|p| p.into_inner()).push((cursor, SystemTime::now()));
        tracing::info!("indicator sync: {} hub indicators in force (cursor {cursor})", list.len());
    }
}

async fn wait_for_stop(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = wait_for_stop(stop) => {}
    }
}

/// Folds the hub's changes, in order, into the list. Unknown kinds (e.g. `asn`, which a packet
/// sensor cannot match) and malformed entries are skipped.
fn apply_changes(list: &mut BTreeMap<(String, String), HubIndicator>, items: &[Value]) {
    for item in items {
        let text = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or("").trim().to_string();
        let (kind, value, action) = (text("kind"), text("value"), text("action"));
        let kind = match kind.as_str() {
            "ip" | "net" | "cidr" => "ip",
            "domain" => "domain",
            _ => continue,
        };
        // A value is written into a CSV field: refuse anything that could break the line.
        if value.is_empty() || value.len() > 255 || value.contains([',', '"', '\n', '\r']) {
            continue;
        }
        let key = (kind.to_string(), value.to_ascii_lowercase());
        if action == "remove" {
            list.remove(&key);
        } else {
            let seq = item.get("seq").and_then(Value::as_i64).unwrap_or(0);
            list.insert(key, HubIndicator { seq, kind: kind.to_string(), value });
        }
    }
}

fn write_list(path: &Path, list: &BTreeMap<(String, String), HubIndicator>) -> std::io::Result<()> {
    let mut out = String::from("id,type,value,severity,description,expiry\n");
    for ind in list.values() {
        let _ = writeln!(out, "hub-{},{},{},1,ward hub indicator,", ind.seq, ind.kind, ind.value);
    }
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, out)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_fold_in_order_and_bad_entries_are_skipped() {
        let mut list = BTreeMap::new();
        apply_changes(
            &mut list,
            &[
                json!({"seq":1,"action":"add","kind":"ip","value":"198.18.23.66"}),
                json!({"seq":2,"action":"add","kind":"net","value":"198.18.23.0/24"}),
                json!({"seq":3,"action":"add","kind":"asn","value":"64500"}),
                json!({"seq":4,"action":"add","kind":"domain","value":"Evil.Example"}),
                json!({"seq":5,"action":"add","kind":"domain","value":"a,b"}),
                json!({"seq":6,"action":"remove","kind":"ip","value":"198.18.23.66"}),
                json!("not an object"),
            ],
        );
        let values: Vec<&str> = list.values().map(|i| i.value.as_str()).collect();
        assert_eq!(values, ["Evil.Example", "198.18.23.0/24"]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.csv");
        write_list(&path, &list).unwrap();
        let set = IndicatorSet::load(&[&path], Timestamp::now());
        assert_eq!(set.len(), 2, "errors: {:?}", set.errors);
    }
}
