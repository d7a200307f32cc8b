//! One poll of one feed, and the background poller.
//!
//! A poll fetches, parses, filters and applies in store transactions of bounded size (a TAXII
//! page, [`misp::EVENTS_PER_APPLY`] MISP events, a whole CSV list), each with the poll state
//! that goes with it, then records the outcome: no error and the next poll after the feed's
//! interval, or the error (said in `feed list` and the API) and a backoff — the interval times
//! 2^failures, at most [`MAX_BACKOFF_MS`]. A failing feed never stops the hub or the other
//! feeds, and nothing a feed held is withdrawn because a poll failed: bad JSON, a wrong content
//! type, a refused credential, a timeout or an oversized response leave the indicators as they
//! were. A CSV response in which no line can be read is refused too (an error page in
//! `text/plain` must not withdraw the list).
//!
//! The poller ([`run_worker`]) runs on the one replica holding the `feeds` job lease; it also
//! withdraws feed indicators whose `valid_until` passed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::fetch::{content_type_is, Credentials, FeedHttp};
use super::{csv, misp, taxii, Feed, FeedApplied, FeedKind, FeedUpdate, GroupUpdate, ItemRules, PollRecord, Skipped};
use crate::error::StoreError;
use crate::model::{fmt_ms, now_ms, Millis};
use crate::store::{Store, StoreResult};
use crate::trust::AllowList;

/// The background poller's job lease name (one replica polls at a time).
pub const JOB_FEEDS: &str = "feeds";
/// How often the poller looks for due feeds.
pub const WORKER_TICK: Duration = Duration::from_secs(5);
/// Its lease (renewed at every tick and after every feed).
pub const FEEDS_LEASE_MS: Millis = 120_000;
/// The longest backoff of a failing feed.
pub const MAX_BACKOFF_MS: Millis = 24 * 3600 * 1000;

/// What the poller needs: the store, the HTTP client and the configured never-block list.
#[derive(Clone)]
pub struct Poller {
    pub store: Arc<dyn Store>,
    pub http: FeedHttp,
    /// Built-in resolvers, `[trust] never_block` and the hub's addresses (the store adds the
    /// registered entries).
    pub allow: Arc<AllowList>,
}

/// What one poll did (`ward hub feed poll`, `POST /api/v1/feeds/{id}/poll`, the poller's log).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PollReport {
    pub feed_id: i64,
    pub name: String,
    pub kind: String,
    /// HTTP requests made.
    pub requests: usize,
    /// Indicator objects, MISP events or list entries read.
    pub entries: usize,
    /// The server said nothing changed (304).
    pub not_modified: bool,
    #[serde(flatten)]
    pub applied: FeedApplied,
    pub skipped: Skipped,
    pub error: Option<String>,
    pub duration_ms: f64,
    /// Of which waiting on the feed's server (requests and bodies).
    pub fetch_ms: f64,
    pub next_poll: String,
}

impl PollReport {
    /// One line for people.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "feed {} {:?} ({}): {} requests, {} entries, {} added ({} kept on the hub), {} removed, log +{} -{}, {} skipped",
            self.feed_id,
            self.name,
            self.kind,
            self.requests,
            self.entries,
            self.applied.added,
            self.applied.held_on_hub,
            self.applied.removed,
            self.applied.log_adds,
            self.applied.log_removes,
            self.skipped.total() + self.applied.skipped_allow + self.applied.skipped_cap
        );
        if self.not_modified {
            s.push_str(", not modified");
        }
        if let Some(e) = &self.error {
            s.push_str(&format!("; error: {e}"));
        }
        s
    }
}

/// Runs a store call off the async threads.
async fn call<T: Send + 'static>(store: &Arc<dyn Store>, f: impl FnOnce(&dyn Store) -> StoreResult<T> + Send + 'static) -> StoreResult<T> {
    let s = store.clone();
    tokio::task::spawn_blocking(move || f(s.as_ref())).await.map_err(|e| StoreError::Database(format!("store task failed: {e}")))?
}

/// Progress lines (the CLI prints them; the poller logs at debug).
pub type Progress<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// Polls one feed now. `Err` only when the feed does not exist or the store fails; a feed that
/// cannot be fetched or read gives a report with `error` (also recorded on the feed).
pub async fn poll_feed(p: &Poller, feed_id: i64, progress: Progress<'_>) -> StoreResult<PollReport> {
    let started = Instant::now();
    let feed = call(&p.store, move |s| s.feed(feed_id)).await?.ok_or_else(|| StoreError::NotFound(format!("feed {feed_id}")))?;
    let mut report = PollReport { feed_id, name: feed.name.clone(), kind: feed.kind.as_str().into(), ..Default::default() };
    let outcome = match credentials(p, &feed).await {
        Ok(creds) => match feed.kind {
            FeedKind::Taxii => poll_taxii(p, &feed, &creds, &mut report, progress).await,
            FeedKind::Csv => poll_csv(p, &feed, &creds, &mut report).await,
            FeedKind::Misp => poll_misp(p, &feed, &creds, &mut report, progress).await,
        },
        Err(e) => Err(e),
    };
    if let Err(e) = outcome {
        report.error = Some(e);
    }
    if report.applied.capped {
        let cap = format!("over its cap of {} indicators: {} not added (raise max_indicators or fix the feed)", feed.max_indicators, report.applied.skipped_cap);
        report.error = Some(match report.error.take() {
            Some(e) => format!("{e}; {cap}"),
            None => cap,
        });
    }
    let now = now_ms();
    let interval_ms = feed.interval_secs.saturating_mul(1000);
    let next_poll_ms = match &report.error {
        None => now.saturating_add(interval_ms),
        Some(_) => now.saturating_add(interval_ms.saturating_mul(1i64 << feed.failures.clamp(0, 10)).min(MAX_BACKOFF_MS.max(interval_ms))),
    };
    let record = PollRecord { error: report.error.clone(), capped: report.applied.capped, next_poll_ms };
    call(&p.store, move |s| s.record_feed_poll(feed_id, &record, now)).await?;
    report.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    report.next_poll = fmt_ms(next_poll_ms);
    Ok(report)
}

async fn credentials(p: &Poller, feed: &Feed) -> Result<Credentials, String> {
    if !feed.has_credential {
        return Ok(Credentials::None);
    }
    let id = feed.id;
    let secret = call(&p.store, move |s| s.feed_credential(id)).await.map_err(|e| e.to_string())?.unwrap_or_default();
    Ok(match feed.auth.as_str() {
        "basic" => Credentials::Basic { username: feed.username.clone().unwrap_or_default(), password: secret },
        "bearer" => Credentials::Bearer(secret),
        _ => Credentials::None,
    })
}

async fn apply(p: &Poller, feed_id: i64, update: FeedUpdate, report: &mut PollReport) -> Result<(), String> {
    let allow = p.allow.clone();
    let applied = call(&p.store, move |s| s.apply_feed_update(feed_id, &update, &allow, now_ms())).await.map_err(|e| format!("cannot store the feed's indicators: {e}"))?;
    report.applied.merge(&applied);
    Ok(())
}

async fn poll_taxii(p: &Poller, feed: &Feed, creds: &Credentials, report: &mut PollReport, progress: Progress<'_>) -> Result<(), String> {
    let collection = feed.collection.as_deref().ok_or("the feed has no collection id")?;
    let objects = taxii::objects_url(&feed.url, collection)?;
    let mut state = feed.state.clone();
    // One `added_after` for every page of this poll (servers check it does not change along a
    // `next` chain); the cursor kept with each page is the server's newest date added.
    let since = state.added_after.clone();
    let mut next: Option<String> = None;
    for page in 0..taxii::MAX_PAGES_PER_POLL {
        let url = taxii::page_url(&objects, since.as_deref(), next.as_deref());
        let rules = ItemRules::for_feed(feed, now_ms());
        let t = Instant::now();
        let fetched = p.http.get(&url, creds, taxii::MEDIA_TYPE, (None, None)).await;
        report.fetch_ms += t.elapsed().as_secs_f64() * 1000.0;
        let fetched = fetched.map_err(|e| format!("page {}: {e}", page + 1))?;
        report.requests += 1;
        if !content_type_is(fetched.content_type.as_deref(), &["application/taxii+json", "application/json"]) {
            return Err(format!(
                "page {}: the server answered {} instead of {} (is the url the TAXII api root?)",
                page + 1,
                fetched.content_type.as_deref().unwrap_or("no content type"),
                taxii::MEDIA_TYPE
            ));
        }
        let envelope = taxii::parse_envelope(&fetched.body).map_err(|e| format!("page {}: {e}", page + 1))?;
        let (more, page_next) = (envelope.more, envelope.next.clone());
        let items = taxii::page_items(envelope.objects, &rules);
        report.entries += items.indicators;
        report.skipped.merge(&items.skipped);
        if let Some(last) = fetched.date_added_last.filter(|s| crate::share::stix::parse_timestamp(s).is_some()) {
            state.added_after = Some(last);
        }
        apply(p, feed.id, FeedUpdate { groups: items.groups, state: Some(state.clone()) }, report).await?;
        progress(&format!("  page {}: {} indicator objects, {} added so far, {} removed", page + 1, items.indicators, report.applied.added, report.applied.removed));
        if !more {
            return Ok(());
        }
        next = page_next;
    }
    Ok(())
}

async fn poll_csv(p: &Poller, feed: &Feed, creds: &Credentials, report: &mut PollReport) -> Result<(), String> {
    let url = reqwest::Url::parse(&feed.url).map_err(|e| format!("bad url: {e}"))?;
    let mut state = feed.state.clone();
    let t = Instant::now();
    let fetched = p.http.get(&url, creds, "text/plain, text/csv;q=0.9, */*;q=0.5", (state.etag.as_deref(), state.last_modified.as_deref())).await;
    report.fetch_ms += t.elapsed().as_secs_f64() * 1000.0;
    let fetched = fetched.map_err(|e| e.to_string())?;
    report.requests += 1;
    if fetched.status == 304 {
        report.not_modified = true;
        return Ok(());
    }
    if content_type_is(fetched.content_type.as_deref(), &["text/html", "application/xhtml+xml"]) {
        return Err("the server answered a web page (text/html), not a list: kept the indicators of the last good poll".into());
    }
    let rules = ItemRules::for_feed(feed, now_ms());
    let parsed = csv::parse(&fetched.body, feed.csv_column.map(|c| c as usize), &rules);
    report.entries = parsed.entries;
    report.skipped.merge(&parsed.skipped);
    let unreadable = parsed.skipped.0.get(&super::Skip::Unreadable).copied().unwrap_or(0);
    if parsed.entries == 0 || unreadable == parsed.entries {
        return Err(format!("no line of the list could be read ({} entries): kept the indicators of the last good poll", parsed.entries));
    }
    state.etag = fetched.etag;
    state.last_modified = fetched.last_modified;
    apply(p, feed.id, FeedUpdate { groups: vec![GroupUpdate { group: String::new(), items: parsed.items }], state: Some(state) }, report).await
}

async fn poll_misp(p: &Poller, feed: &Feed, creds: &Credentials, report: &mut PollReport, progress: Progress<'_>) -> Result<(), String> {
    let manifest_url = misp::file_url(&feed.url, "manifest.json")?;
    let t = Instant::now();
    let fetched = p.http.get(&manifest_url, creds, "application/json", (None, None)).await;
    report.fetch_ms += t.elapsed().as_secs_f64() * 1000.0;
    let fetched = fetched.map_err(|e| format!("manifest.json: {e}"))?;
    report.requests += 1;
    if content_type_is(fetched.content_type.as_deref(), &["text/html", "application/xhtml+xml"]) {
        return Err("manifest.json: the server answered a web page (text/html), not a MISP manifest".into());
    }
    let manifest = misp::parse_manifest(&fetched.body).map_err(|e| format!("manifest.json: {e}"))?;
    let mut state = feed.state.clone();
    let changed: Vec<(String, i64)> = manifest.iter().filter(|(u, ts)| state.misp_events.get(*u) != Some(ts)).map(|(u, ts)| (u.clone(), *ts)).collect();
    let gone: Vec<String> = state.misp_events.keys().filter(|u| !manifest.contains_key(*u)).cloned().collect();
    report.entries = changed.len();
    let mut failed: Vec<String> = Vec::new();
    for chunk in changed.chunks(misp::EVENTS_PER_APPLY) {
        let rules = ItemRules::for_feed(feed, now_ms());
        let mut groups = Vec::new();
        for (uuid, ts) in chunk {
            let url = misp::file_url(&feed.url, &format!("{uuid}.json"))?;
            let t = Instant::now();
            let got = p.http.get(&url, creds, "application/json", (None, None)).await;
            report.fetch_ms += t.elapsed().as_secs_f64() * 1000.0;
            let parsed = match got {
                Ok(f) if content_type_is(f.content_type.as_deref(), &["text/html"]) => Err(format!("event {uuid}: the server answered a web page")),
                Ok(f) => misp::parse_event(uuid, &f.body, &rules),
                Err(e) => Err(format!("event {uuid}: {e}")),
            };
            report.requests += 1;
            match parsed {
                Ok((group, skipped)) => {
                    report.skipped.merge(&skipped);
                    groups.push(group);
                    state.misp_events.insert(uuid.clone(), *ts);
                }
                // The event keeps what it had; it is fetched again next time.
                Err(e) => failed.push(e),
            }
        }
        apply(p, feed.id, FeedUpdate { groups, state: Some(state.clone()) }, report).await?;
        progress(&format!("  {} of {} changed events applied, {} added so far", report.requests - 1, changed.len(), report.applied.added));
    }
    if !gone.is_empty() {
        for uuid in &gone {
            state.misp_events.remove(uuid);
        }
        let groups = gone.into_iter().map(|group| GroupUpdate { group, items: Vec::new() }).collect();
        apply(p, feed.id, FeedUpdate { groups, state: Some(state) }, report).await?;
    }
    match failed.len() {
        0 => Ok(()),
        n => Err(format!("{n} events could not be read (kept as they were): {}", failed[0])),
    }
}

/// The background poller (see the module note). Does nothing when `[feeds] poll = false`.
pub async fn run_worker(state: crate::state::HubState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    if !state.config.feeds.poll {
        return;
    }
    let http = match state.config.feeds.client() {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "feeds are not polled");
            return;
        }
    };
    let poller = Poller { store: state.store.clone(), http, allow: state.policy.trust.allow.clone() };
    let quiet = |line: &str| tracing::debug!(progress = line, "feed poll");
    loop {
        tokio::select! {
            _ = tokio::time::sleep(WORKER_TICK) => {}
            _ = shutdown.changed() => {
                state.release_job(JOB_FEEDS).await;
                return;
            }
        }
        if !state.hold_job(JOB_FEEDS, FEEDS_LEASE_MS).await {
            continue;
        }
        match call(&state.store, |s| s.expire_feed_indicators(now_ms())).await {
            Ok(a) if a.removed > 0 => {
                tracing::info!(indicators = a.removed, log_removes = a.log_removes, "feed indicators expired");
                if a.changed_log() {
                    state.indicators_tx.send_modify(|v| *v += 1);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot expire feed indicators"),
        }
        let feeds = match call(&state.store, |s| s.feeds()).await {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "cannot list feeds");
                continue;
            }
        };
        let now = now_ms();
        for feed in feeds.into_iter().filter(|f| f.enabled && f.next_poll_ms <= now) {
            if *shutdown.borrow() {
                break;
            }
            match poll_feed(&poller, feed.id, &quiet).await {
                Ok(report) => {
                    if report.applied.changed_log() {
                        state.indicators_tx.send_modify(|v| *v += 1);
                    }
                    match &report.error {
                        None => tracing::info!(feed = %report.name, summary = %report.summary(), "feed polled"),
                        Some(e) => tracing::warn!(feed = %report.name, error = %e, summary = %report.summary(), "feed poll failed; backing off"),
                    }
                }
                Err(e) => tracing::error!(feed = feed.id, error = %e, "feed poll failed"),
            }
            if !state.hold_job(JOB_FEEDS, FEEDS_LEASE_MS).await {
                break;
            }
        }
    }
}
