//! Hub-to-hub federation (docs/sharing.md "Federation"): a state hub, a national hub and peer
//! states' hubs share what they publish over TAXII 2.1, pushed the moment it is published, so an
//! actor seen by counties of one state is on the sensors of another before it gets there.
//!
//! * **Peers are configured in the hub's file** (`[[federation.peer]]`, [`PeerConfig`]): where
//!   the peer's TAXII API root is and the key to post with (from a file or the environment, never
//!   the config itself), what this hub may send it (object types, a TLP ceiling, jurisdictions
//!   named or anonymised), and what this hub takes from it.
//! * **Out: a push per peer** ([`run_worker`], on the replica holding the [`JOB_FEDERATION`]
//!   lease). The peer's cursor (date_added, tie-breaker) in the store says how far it has been
//!   sent; each round sends the next objects of the hub's `community` collection (or `hub` with
//!   `name_jurisdictions`) and, relayed, what other configured peers posted here, as TAXII
//!   envelopes POSTed to the peer's collection. The cursor moves only when the peer took the
//!   envelope, so a peer that is down gets everything once it is back (with a backoff meanwhile).
//!   The publisher and every POST from a peer wake the pusher at once; otherwise it looks every
//!   `push_interval_ms`.
//! * **Loops and duplicates**: what a peer posted is never relayed back to it, nor are objects
//!   its own hub created (`created_by_ref` is its hub identity, from its `hub_name`); ids are
//!   deterministic and a version the store already holds is not stored again (so not relayed
//!   again), so objects reaching a hub by two paths converge on one.
//! * **In: a peer is a feed.** What a peer posts lands in the `inbox` collection like any
//!   partner's post. Its indicators change what this hub's sensors block only when the analyst
//!   said so (`accept_indicators = true`): then they go through the peer's feed (`federation:
//!   NAME` in `ward hub feed list`), with the feed rules — allowed types, confidence floor, the cap,
//!   the never-block allow-list, TLP — so one peer can no more flood the sensors than one feed.
//!   A ward peer only publishes campaigns several of its own jurisdictions saw
//!   (`publish_min_jurisdictions`), so no single sensor anywhere decides what every sensor blocks.
//! * **The cross-hub view** ([`view`], `GET /api/v1/federation`): per peer the push state, and
//!   each indicator received from peers with which peers sent it and how many sightings came
//!   with it — the national picture of an actor working across states — and the
//!   disinformation cases peers sent (their claim, truth, posts, and the hub they came from).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Notify;
use ward_model::tlp::Tlp;

use super::accounts::Collection;
use super::feeds::fetch::{Credentials, FeedHttp};
use super::feeds::{self, FeedAuth, FeedKind, FeedUpdate, ItemRules, NewFeed};
use super::objects::{NewObject, ObjectQuery, ReadScope, StoredObject, VersionFilter, COLLECTION_COMMUNITY, COLLECTION_HUB, COLLECTION_INBOX};
use super::stix::IdSpace;
use crate::model::{now_ms, Millis};
use crate::state::HubState;
use crate::store::{Store, StoreResult};

/// The pusher's job lease name (one replica pushes at a time).
pub const JOB_FEDERATION: &str = "federation";
/// A peer's feed is named this and the peer's name.
pub const FEED_PREFIX: &str = "federation: ";
/// Who the store records as having created a peer's feed.
pub const CREATED_BY: &str = "federation";
/// Peers one hub may have.
pub const MAX_PEERS: usize = 64;
/// Objects per envelope at most, and its size at most (a peer's `max_post_bytes` is larger).
pub const BATCH_OBJECTS: usize = 500;
pub const MAX_ENVELOPE_BYTES: usize = 4 * 1024 * 1024;
/// Envelopes sent to one peer per round at most (the rest next round, at once).
pub const MAX_BATCHES_PER_ROUND: usize = 20;
/// The longest backoff after failed pushes.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Object types sent by default: what a ward hub publishes.
pub const DEFAULT_SEND_TYPES: &[&str] = &["indicator", "campaign", "sighting", "identity", "relationship", "report", "note", "marking-definition", "observed-data", "url", "attack-pattern"];
/// Indicators and sightings read for the cross-hub view at most.
pub const VIEW_LIMIT: usize = 10_000;

/// `[federation]` in the hub's file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FederationConfig {
    /// The peers (`[[federation.peer]]`).
    #[serde(rename = "peer")]
    pub peers: Vec<PeerConfig>,
    /// How often the pusher looks for new objects when nothing woke it (milliseconds).
    pub push_interval_ms: u64,
    /// Internal addresses peers may be reached on (the egress rules refuse them otherwise;
    /// `127.0.0.1/32` for hubs on one machine).
    pub allow_targets: Vec<crate::notify::egress::AllowedNet>,
    /// The total time of one push request.
    pub timeout_secs: u64,
}

impl Default for FederationConfig {
    fn default() -> Self {
        FederationConfig { peers: Vec::new(), push_interval_ms: 1000, allow_targets: Vec::new(), timeout_secs: 30 }
    }
}

/// One `[[federation.peer]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// How this hub calls the peer (1 to 100 characters; its feed is `federation: NAME`).
    pub name: String,
    /// The peer's TAXII API root (`https://state-a.example/taxii2/api/`); without it this hub
    /// only takes what the peer posts.
    #[serde(default)]
    pub url: Option<String>,
    /// The peer's collection to post to (default: a ward hub's inbox).
    #[serde(default)]
    pub collection: Option<String>,
    /// A file holding the API key this hub posts with (made on the peer with `ward hub api-key
    /// create --scopes taxii-write`), or the environment variable holding it.
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// The peer's `[taxii] hub_name`: objects its hub created are not sent back to it.
    #[serde(default)]
    pub hub_name: Option<String>,
    /// The id (`wk-…`) of the API key the peer posts here with: what it posts is its own (not
    /// relayed back to it; its indicators taken when `accept_indicators`).
    #[serde(default)]
    pub key_id: Option<String>,
    /// What this hub sends: object types (default: everything a ward hub publishes) …
    #[serde(default)]
    pub send_types: Option<Vec<String>>,
    /// … at most this TLP (AMBER+STRICT and RED never leave the hub) …
    #[serde(default = "default_max_tlp")]
    pub max_tlp: Tlp,
    /// … with jurisdictions named (the `hub` collection) or anonymised (`community`, default).
    #[serde(default)]
    pub name_jurisdictions: bool,
    /// Also send what other peers posted here (default true).
    #[serde(default = "yes")]
    pub relay: bool,
    /// The peer's indicators go to this hub's sensors (through its feed and the feed rules).
    #[serde(default)]
    pub accept_indicators: bool,
    /// Feed rules for what is accepted: types (`ip`, `net`, `domain`, `url`), confidence floor,
    /// the cap on indicators held at once.
    #[serde(default)]
    pub types: Option<Vec<String>>,
    #[serde(default)]
    pub min_confidence: i64,
    #[serde(default)]
    pub max_indicators: Option<i64>,
}

fn default_max_tlp() -> Tlp {
    Tlp::Amber
}

fn yes() -> bool {
    true
}

impl PeerConfig {
    fn account(&self) -> Option<String> {
        self.key_id.as_deref().map(|k| format!("key:{k}"))
    }

    fn send_types(&self) -> Vec<String> {
        self.send_types.clone().unwrap_or_else(|| DEFAULT_SEND_TYPES.iter().map(|s| s.to_string()).collect())
    }

    /// The peer's feed as configured.
    fn feed(&self, credential: Option<&str>) -> NewFeed {
        NewFeed {
            name: format!("{FEED_PREFIX}{}", self.name),
            kind: FeedKind::Taxii,
            url: self.url.clone().unwrap_or_default(),
            // A manual `ward hub feed poll` of a ward peer catches up from its community collection.
            collection: Some(Collection::Community.id().to_string()),
            csv_column: None,
            auth: if credential.is_some() { FeedAuth::Bearer } else { FeedAuth::None },
            username: None,
            secret: credential.map(str::to_string),
            types: self.types.clone().unwrap_or_else(|| feeds::DEFAULT_TYPES.iter().map(|s| s.to_string()).collect()),
            min_confidence: self.min_confidence,
            default_confidence: feeds::DEFAULT_CONFIDENCE,
            max_active: self.max_indicators.unwrap_or(feeds::DEFAULT_MAX_ACTIVE),
            default_tlp: Tlp::Amber,
            default_ttl_secs: None,
            interval_secs: feeds::MAX_INTERVAL_SECS,
            // Pushed, not polled.
            enabled: false,
            created_by: CREATED_BY.into(),
        }
    }
}

fn check_stix_type(t: &str) -> bool {
    (3..=250).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl FederationConfig {
    /// Checks the peers; an error says which peer and what to change.
    pub fn check(&self) -> Result<(), String> {
        if self.peers.len() > MAX_PEERS {
            return Err(format!("[federation] at most {MAX_PEERS} peers"));
        }
        let mut names = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for p in &self.peers {
            let n = p.name.trim();
            if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) || n != p.name {
                return Err(format!("[[federation.peer]] name {:?}: 1 to 100 characters of text, no surrounding spaces", p.name));
            }
            let at = |what: String| format!("[[federation.peer]] {:?}: {what}", p.name);
            if !names.insert(n.to_string()) {
                return Err(at("two peers have this name".into()));
            }
            if let Some(url) = &p.url {
                let u = reqwest::Url::parse(url).map_err(|e| at(format!("url {url:?}: {e}")))?;
                if !matches!(u.scheme(), "https" | "http") || u.host_str().is_none() {
                    return Err(at(format!("url {url:?}: give the peer's TAXII API root, https://HOST/taxii2/api/")));
                }
                if p.api_key_file.is_none() && p.api_key_env.is_none() {
                    return Err(at("a peer with a url needs api_key_file or api_key_env (the key this hub posts with)".into()));
                }
            }
            if let Some(c) = &p.collection {
                if c.is_empty() || c.len() > 100 || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                    return Err(at(format!("collection {c:?}: a collection id (letters, digits, - and _)")));
                }
            }
            if let Some(k) = &p.key_id {
                if !(k.starts_with("wk-") && k.len() <= 64 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')) {
                    return Err(at(format!("key_id {k:?}: the id of an API key of this hub (wk-…, `ward hub api-key list`)")));
                }
                if !keys.insert(k.clone()) {
                    return Err(at(format!("key_id {k:?} is another peer's too")));
                }
            }
            if p.accept_indicators && p.key_id.is_none() {
                return Err(at("accept_indicators needs key_id: the API key the peer posts with".into()));
            }
            if matches!(p.max_tlp, Tlp::Red | Tlp::AmberStrict) {
                return Err(at("max_tlp: TLP:AMBER+STRICT and TLP:RED never leave the hub; give TLP:AMBER or lower".into()));
            }
            if let Some(bad) = p.send_types.iter().flatten().find(|t| !check_stix_type(t)) {
                return Err(at(format!("send_types: {bad:?} is not a STIX object type")));
            }
            if let Some(bad) = p.types.iter().flatten().find(|t| !feeds::TYPES.contains(&t.as_str())) {
                return Err(at(format!("types: {bad:?}: use {}", feeds::TYPES.join(", "))));
            }
            if !(0..=100).contains(&p.min_confidence) {
                return Err(at("min_confidence: 0 to 100".into()));
            }
            if let Some(m) = p.max_indicators {
                if !(1..=feeds::MAX_MAX_ACTIVE).contains(&m) {
                    return Err(at(format!("max_indicators: 1 to {}", feeds::MAX_MAX_ACTIVE)));
                }
            }
        }
        Ok(())
    }
}

/// What the store keeps per peer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PeerState {
    pub name: String,
    /// The last object pushed: (date_added µs, tie-breaker).
    pub cursor: (i64, i64),
    pub sent_total: i64,
    pub received_total: i64,
    pub last_push_ms: Option<Millis>,
    pub last_ok_ms: Option<Millis>,
    pub last_received_ms: Option<Millis>,
    pub last_error: Option<String>,
    pub failures: i64,
}

/// One push's outcome.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushRecord {
    /// The position of the last object the envelope covered (sent or passed over).
    pub cursor: (i64, i64),
    pub sent: usize,
    pub error: Option<String>,
}

/// The next objects for one peer.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundQuery {
    /// The hub's own stored collection sent (`community` or `hub`).
    pub collection: String,
    /// Inbox rows added by these accounts are relayed (`key:wk-…`).
    pub relay_from: Vec<String>,
    /// The ceiling (AMBER at most, whatever this says).
    pub max_tlp: Tlp,
    /// Object types (empty: all).
    pub types: Vec<String>,
    pub after: (i64, i64),
    pub limit: usize,
}

/// A configured peer, ready to use.
struct Peer {
    config: PeerConfig,
    /// The key this hub posts with.
    credential: Option<String>,
    /// The peer hub's STIX identity id (from its `hub_name`).
    identity: Option<String>,
}

/// The federation of one hub: its peers, the push client and the pusher's wake-up.
pub struct Federation {
    peers: Vec<Peer>,
    http: Option<FeedHttp>,
    interval: Duration,
    /// Peer name → its feed id (set by [`setup`]).
    feed_ids: RwLock<HashMap<String, i64>>,
    wake: Notify,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Federation").field("peers", &self.peers.iter().map(|p| &p.config.name).collect::<Vec<_>>()).finish()
    }
}

impl Federation {
    /// Checks the config and reads the peers' keys; an error stops the hub from starting.
    pub fn new(config: &FederationConfig) -> Result<Federation, String> {
        config.check()?;
        let mut peers = Vec::new();
        for p in &config.peers {
            let credential = match (&p.api_key_file, &p.api_key_env) {
                (Some(path), _) => Some(
                    std::fs::read_to_string(path)
                        .map_err(|e| format!("[[federation.peer]] {:?}: cannot read api_key_file {}: {e}", p.name, path.display()))?
                        .trim()
                        .to_string(),
                ),
                (None, Some(var)) => Some(std::env::var(var).map_err(|_| format!("[[federation.peer]] {:?}: environment variable {var} is not set", p.name))?.trim().to_string()),
                (None, None) => None,
            };
            if credential.as_deref().is_some_and(|c| c.is_empty() || c.len() > feeds::MAX_CREDENTIAL_BYTES || c.chars().any(char::is_control)) {
                return Err(format!("[[federation.peer]] {:?}: the api key is empty, too long or not text", p.name));
            }
            let identity = p.hub_name.as_deref().map(|h| IdSpace::for_hub(h).id("identity", "hub"));
            peers.push(Peer { config: p.clone(), credential, identity });
        }
        let http = if peers.iter().any(|p| p.config.url.is_some()) {
            let egress = Arc::new(crate::notify::egress::EgressPolicy::new(&config.allow_targets));
            Some(FeedHttp::new(egress, Duration::from_secs(config.timeout_secs.clamp(1, 600)), 1024 * 1024)?)
        } else {
            None
        };
        Ok(Federation { peers, http, interval: Duration::from_millis(config.push_interval_ms.clamp(50, 60_000)), feed_ids: RwLock::new(HashMap::new()), wake: Notify::new() })
    }

    /// Wakes the pusher (something was published or received).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Whether `account` (`key:wk-…`) is a configured peer's.
    pub fn is_peer(&self, account: &str) -> bool {
        self.by_account(account).is_some()
    }

    fn by_account(&self, account: &str) -> Option<&Peer> {
        self.peers.iter().find(|p| p.config.account().as_deref() == Some(account))
    }

    fn feed_id(&self, name: &str) -> Option<i64> {
        self.feed_ids.read().ok().and_then(|m| m.get(name).copied())
    }
}

/// Makes or updates the feed of each peer whose indicators are accepted (at start).
pub async fn setup(state: &HubState) -> anyhow::Result<()> {
    let wanted: Vec<(String, NewFeed)> = state
        .federation
        .peers
        .iter()
        .filter(|p| p.config.accept_indicators)
        .map(|p| (p.config.name.clone(), p.config.feed(p.credential.as_deref())))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let ids = state
        .store_call(move |s| {
            let existing = s.feeds()?;
            let mut ids = HashMap::new();
            for (peer, new) in wanted {
                let id = match existing.iter().find(|f| f.name == new.name) {
                    Some(f) => {
                        s.set_feed_rules(f.id, &new)?;
                        f.id
                    }
                    None => s.add_feed(&new, now_ms())?.id,
                };
                ids.insert(peer, id);
            }
            Ok(ids)
        })
        .await
        .map_err(|e| anyhow::anyhow!("cannot set up the federation peers' feeds: {e}"))?;
    if let Ok(mut m) = state.federation.feed_ids.write() {
        *m = ids;
    }
    Ok(())
}

/// Called after a TAXII POST stored `objects` (`stored[i]` is `Some` for a version that was
/// new): when the poster is a peer, records it, applies its indicators when they are accepted,
/// and wakes the pusher to relay what was new. Never fails the POST: the objects are stored.
pub async fn received(state: &HubState, account: &str, objects: Vec<NewObject>, stored: &[Option<i64>]) {
    let fed = state.federation.clone();
    let Some(peer) = fed.by_account(account) else { return };
    let name = peer.config.name.clone();
    let new = stored.iter().filter(|s| s.is_some()).count();
    let feed_id = if peer.config.accept_indicators { fed.feed_id(&name) } else { None };
    let allow = state.policy.trust.allow.clone();
    let indicators: Vec<NewObject> = objects.into_iter().zip(stored).filter(|(o, s)| s.is_some() && o.object_type == "indicator").map(|(o, _)| o).collect();
    let outcome = state
        .store_call(move |s| {
            let now = now_ms();
            s.record_federation_received(&name, new, now)?;
            let (Some(feed_id), false) = (feed_id, indicators.is_empty()) else { return Ok(None) };
            // Only the newest stored version of each object speaks for it (an older version
            // arriving late by another path must not undo a revocation).
            let ids: Vec<String> = indicators.iter().map(|o| o.object_id.clone()).collect();
            let newest: HashMap<String, i64> = s.taxii_latest(COLLECTION_INBOX, &ids)?.into_iter().map(|(id, v, _)| (id, v)).collect();
            let values: Vec<Value> = indicators
                .iter()
                .filter(|o| newest.get(&o.object_id) == Some(&o.version_us))
                .filter_map(|o| serde_json::from_str(&o.body).ok())
                .collect();
            let Some(feed) = s.feed(feed_id)? else { return Ok(None) };
            let page = feeds::taxii::page_items(values, &ItemRules::for_feed(&feed, now));
            let applied = s.apply_feed_update(feed_id, &FeedUpdate { groups: page.groups, state: None }, &allow, now)?;
            Ok(Some((applied, page.skipped.total())))
        })
        .await;
    match outcome {
        Ok(Some((applied, skipped))) => {
            if applied.changed_log() {
                state.indicators_tx.send_modify(|v| *v += 1);
            }
            tracing::info!(peer = %peer.config.name, objects = new, added = applied.added, removed = applied.removed, skipped = skipped + applied.skipped_allow + applied.skipped_cap, capped = applied.capped, "federation: peer's indicators applied");
        }
        Ok(None) => tracing::debug!(peer = %peer.config.name, objects = new, "federation: peer posted"),
        Err(e) => tracing::error!(peer = %peer.config.name, error = %e, "federation: cannot apply what the peer posted (kept in the inbox)"),
    }
    if new > 0 {
        fed.wake();
    }
}

/// Why a push failed (recorded on the peer, said in the view and the log).
fn push_error(e: impl std::fmt::Display) -> String {
    e.to_string().chars().take(300).collect()
}

/// Pushes what is new to one peer: up to [`MAX_BATCHES_PER_ROUND`] envelopes. Returns the
/// objects sent; `Err` when a request failed (recorded).
async fn push_peer(state: &HubState, peer: &Peer) -> Result<usize, String> {
    let fed = &state.federation;
    let (Some(url), Some(http)) = (peer.config.url.as_deref(), fed.http.as_ref()) else { return Ok(0) };
    let collection = peer.config.collection.clone().unwrap_or_else(|| Collection::Inbox.id().to_string());
    let objects_url = feeds::taxii::objects_url(url, &collection)?;
    let credentials = peer.credential.clone().map_or(Credentials::None, Credentials::Bearer);
    let relay_from: Vec<String> = if peer.config.relay {
        fed.peers.iter().filter(|p| p.config.name != peer.config.name).filter_map(|p| p.config.account()).collect()
    } else {
        Vec::new()
    };
    let own = if peer.config.name_jurisdictions { COLLECTION_HUB } else { COLLECTION_COMMUNITY };
    let name = peer.config.name.clone();
    let mut sent = 0;
    for _ in 0..MAX_BATCHES_PER_ROUND {
        let query_name = name.clone();
        let mut query = OutboundQuery {
            collection: own.to_string(),
            relay_from: relay_from.clone(),
            max_tlp: peer.config.max_tlp,
            types: peer.config.send_types(),
            after: (0, 0),
            limit: BATCH_OBJECTS,
        };
        let rows: Vec<StoredObject> = state
            .store_call(move |s| {
                query.after = s.federation_peer(&query_name)?.map_or((0, 0), |p| p.cursor);
                s.federation_outbound(&query)
            })
            .await
            .map_err(push_error)?;
        let Some(last) = rows.last() else { break };
        let mut cursor = (last.date_added_us, last.seq);
        let full = rows.len() == BATCH_OBJECTS;
        let mut objects = Vec::with_capacity(rows.len());
        let mut bytes = 0;
        for r in &rows {
            let Some(body) = &r.body else { continue };
            let Ok(v) = serde_json::from_str::<Value>(body) else { continue };
            // The peer's own objects are not sent back to it.
            if let Some(identity) = &peer.identity {
                if v["created_by_ref"].as_str() == Some(identity) || v["id"].as_str() == Some(identity) {
                    continue;
                }
            }
            bytes += body.len() + 1;
            objects.push(v);
            if bytes >= MAX_ENVELOPE_BYTES {
                cursor = (r.date_added_us, r.seq);
                break;
            }
        }
        let n = objects.len();
        let record = if n == 0 {
            PushRecord { cursor, sent: 0, error: None }
        } else {
            let body = serde_json::to_vec(&json!({ "objects": objects })).map_err(push_error)?;
            match http.post(&objects_url, &credentials, super::taxii::MEDIA_TAXII, super::taxii::MEDIA_TAXII, body).await {
                Ok(resp) => {
                    if let Ok(status) = serde_json::from_slice::<Value>(&resp.body) {
                        let failed = status["failure_count"].as_u64().unwrap_or(0);
                        if failed > 0 {
                            let first = status["failures"][0]["message"].as_str().unwrap_or_default().chars().take(200).collect::<String>();
                            tracing::warn!(peer = %name, failed, first = %first, "federation: the peer refused some objects");
                        }
                    }
                    PushRecord { cursor, sent: n, error: None }
                }
                Err(e) => PushRecord { cursor, sent: 0, error: Some(push_error(&e)) },
            }
        };
        let error = record.error.clone();
        let record_name = name.clone();
        state.store_call(move |s| s.record_federation_push(&record_name, &record, now_ms())).await.map_err(push_error)?;
        if let Some(e) = error {
            return Err(e);
        }
        sent += n;
        if !full && bytes < MAX_ENVELOPE_BYTES {
            break;
        }
    }
    Ok(sent)
}

/// The pusher (see the module note). Does nothing when no peer has a url.
pub async fn run_worker(state: HubState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let fed = state.federation.clone();
    // The push client exists when some peer has a url.
    if fed.http.is_none() {
        return;
    }
    let mut changes = state.indicators_tx.subscribe();
    let lease_ms = (fed.interval * crate::server::JOB_LEASE_INTERVALS).max(Duration::from_secs(30)).as_millis() as Millis;
    let mut retry_at: HashMap<String, (Instant, u32)> = HashMap::new();
    loop {
        if *shutdown.borrow() {
            state.release_job(JOB_FEDERATION).await;
            return;
        }
        if state.hold_job(JOB_FEDERATION, lease_ms).await {
            for peer in fed.peers.iter().filter(|p| p.config.url.is_some()) {
                let name = &peer.config.name;
                if retry_at.get(name).is_some_and(|(at, _)| Instant::now() < *at) {
                    continue;
                }
                match push_peer(&state, peer).await {
                    Ok(n) => {
                        retry_at.remove(name);
                        if n > 0 {
                            tracing::info!(peer = %name, objects = n, "federation: pushed");
                        }
                    }
                    Err(e) => {
                        let failures = retry_at.get(name).map_or(0, |(_, f)| *f) + 1;
                        let wait = (fed.interval * 2u32.saturating_pow(failures.min(16))).min(MAX_BACKOFF);
                        retry_at.insert(name.clone(), (Instant::now() + wait, failures));
                        tracing::warn!(peer = %name, error = %e, retry_in_ms = wait.as_millis() as u64, "federation: push failed; backing off");
                    }
                }
            }
        }
        tokio::select! {
            _ = fed.wake.notified() => {}
            _ = changes.changed() => {}
            _ = tokio::time::sleep(fed.interval) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// One peer in the view.
#[derive(Debug, Clone, Serialize)]
pub struct PeerView {
    pub name: String,
    pub url: Option<String>,
    /// This hub pushes to it / takes its indicators.
    pub pushes: bool,
    pub accepts_indicators: bool,
    pub feed_id: Option<i64>,
    #[serde(flatten)]
    pub state: PeerState,
    /// Its indicators on this hub's sensors now.
    pub indicators_on_sensors: i64,
}

/// An indicator received from peers.
#[derive(Debug, Clone, Serialize)]
pub struct SharedIndicator {
    pub kind: String,
    pub value: String,
    /// The peers whose feeds hold it.
    pub peers: Vec<String>,
    /// Sightings of it posted by peers (each: one jurisdiction, anonymised or named).
    pub sightings: i64,
    /// The sum of the sightings' counts.
    pub sighted_count: i64,
}

/// `GET /api/v1/federation`.
#[derive(Debug, Clone, Serialize)]
pub struct FederationView {
    pub peers: Vec<PeerView>,
    /// Most peers first, then most sightings.
    pub shared: Vec<SharedIndicator>,
    /// Disinformation cases peers sent ([`crate::disinfo::stix::received_cases`]), newest first.
    pub cases: Vec<crate::disinfo::stix::ReceivedCase>,
}

/// The cross-hub view (analysts).
pub fn view(store: &dyn Store, fed: &Federation) -> StoreResult<FederationView> {
    let states: HashMap<String, PeerState> = store.federation_peers()?.into_iter().map(|p| (p.name.clone(), p)).collect();
    let feeds: HashMap<i64, feeds::Feed> = store.feeds()?.into_iter().map(|f| (f.id, f)).collect();
    let mut peers = Vec::new();
    // indicator STIX id → (kind, value); (kind, value) → peers
    let mut by_object: HashMap<String, (String, String)> = HashMap::new();
    let mut holders: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for p in &fed.peers {
        let feed_id = fed.feed_id(&p.config.name);
        let feed = feed_id.and_then(|id| feeds.get(&id));
        if let Some(id) = feed_id {
            for i in store.feed_indicators(id, VIEW_LIMIT)? {
                by_object.insert(i.source_group.clone(), (i.kind.clone(), i.value.clone()));
                holders.entry((i.kind, i.value)).or_default().insert(p.config.name.clone());
            }
        }
        peers.push(PeerView {
            name: p.config.name.clone(),
            url: p.config.url.clone(),
            pushes: p.config.url.is_some(),
            accepts_indicators: p.config.accept_indicators,
            feed_id,
            state: states.get(&p.config.name).cloned().unwrap_or_else(|| PeerState { name: p.config.name.clone(), ..Default::default() }),
            indicators_on_sensors: feed.map_or(0, |f| f.on_sensors),
        });
    }
    let scope = ReadScope { collections: vec![COLLECTION_INBOX.into()], own_only: None, jurisdiction: None, max_tlp: Tlp::AmberStrict, strict_any: true };
    // A ward hub's sightings are of its campaign; `indicates` relationships tie the campaign's
    // indicators to it.
    let objects = store.taxii_objects(&ObjectQuery {
        scope,
        after: (0, 0),
        ids: Vec::new(),
        types: vec!["sighting".into(), "relationship".into()],
        spec_versions: Vec::new(),
        versions: VersionFilter::last(),
        limit: 2 * VIEW_LIMIT,
        with_body: true,
    })?;
    let objects: Vec<Value> = objects.iter().filter_map(|o| o.body.as_deref().and_then(|b| serde_json::from_str(b).ok())).collect();
    let mut indicated: HashMap<&str, Vec<&str>> = HashMap::new();
    for r in objects.iter().filter(|o| o["type"] == "relationship" && o["relationship_type"] == "indicates") {
        if let (Some(source), Some(target)) = (r["source_ref"].as_str(), r["target_ref"].as_str()) {
            indicated.entry(target).or_default().push(source);
        }
    }
    let mut counts: HashMap<(String, String), (i64, i64)> = HashMap::new();
    for v in objects.iter().filter(|o| o["type"] == "sighting") {
        let Some(of) = v["sighting_of_ref"].as_str() else { continue };
        let mut keys: BTreeSet<&(String, String)> = indicated.get(of).into_iter().flatten().filter_map(|i| by_object.get(*i)).collect();
        keys.extend(by_object.get(of));
        for key in keys {
            let c = counts.entry(key.clone()).or_default();
            c.0 += 1;
            c.1 += v["count"].as_i64().unwrap_or(1).clamp(0, 1_000_000_000);
        }
    }
    let mut shared: Vec<SharedIndicator> = holders
        .into_iter()
        .map(|((kind, value), peers)| {
            let (sightings, sighted_count) = counts.get(&(kind.clone(), value.clone())).copied().unwrap_or((0, 0));
            SharedIndicator { kind, value, peers: peers.into_iter().collect(), sightings, sighted_count }
        })
        .collect();
    shared.sort_by(|a, b| b.peers.len().cmp(&a.peers.len()).then(b.sightings.cmp(&a.sightings)).then(a.value.cmp(&b.value)));
    shared.truncate(500);
    let scope = ReadScope { collections: vec![COLLECTION_INBOX.into()], own_only: None, jurisdiction: None, max_tlp: Tlp::AmberStrict, strict_any: true };
    let case_objects = store.taxii_objects(&ObjectQuery {
        scope,
        after: (0, 0),
        ids: Vec::new(),
        types: ["report", "observed-data", "url", "attack-pattern", "identity"].map(String::from).to_vec(),
        spec_versions: Vec::new(),
        versions: VersionFilter::last(),
        limit: 2 * VIEW_LIMIT,
        with_body: true,
    })?;
    let case_objects: Vec<Value> = case_objects.iter().filter_map(|o| o.body.as_deref().and_then(|b| serde_json::from_str(b).ok())).collect();
    let mut cases = crate::disinfo::stix::received_cases(&case_objects);
    cases.truncate(500);
    Ok(FederationView { peers, shared, cases })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(extra: &str) -> Result<FederationConfig, String> {
        let text = format!("[[peer]]\nname = \"national\"\n{extra}");
        let c: FederationConfig = toml::from_str(&text).map_err(|e| e.to_string())?;
        c.check().map(|_| c)
    }

    #[test]
    fn peers_are_checked() {
        assert!(peer("").is_ok(), "a receive-only peer");
        assert!(peer("url = \"https://n.example/taxii2/api/\"\napi_key_env = \"K\"").is_ok());
        for (bad, says) in [
            ("url = \"https://n.example/taxii2/api/\"", "api_key"),
            ("url = \"ftp://n.example/\"\napi_key_env = \"K\"", "TAXII API root"),
            ("max_tlp = \"TLP:RED\"", "never leave"),
            ("max_tlp = \"TLP:AMBER+STRICT\"", "never leave"),
            ("accept_indicators = true", "key_id"),
            ("key_id = \"nope\"", "wk-"),
            ("send_types = [\"Indicator\"]", "STIX object type"),
            ("types = [\"asn\"]", "types"),
            ("min_confidence = 101", "0 to 100"),
            ("max_indicators = 0", "max_indicators"),
            ("collection = \"../x\"", "collection"),
        ] {
            let e = peer(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let two: FederationConfig = toml::from_str("[[peer]]\nname = \"a\"\n[[peer]]\nname = \"a\"").unwrap();
        assert!(two.check().unwrap_err().contains("two peers"));
        let keys: FederationConfig = toml::from_str("[[peer]]\nname = \"a\"\nkey_id = \"wk-1\"\n[[peer]]\nname = \"b\"\nkey_id = \"wk-1\"").unwrap();
        assert!(keys.check().unwrap_err().contains("another peer"));
        assert!(toml::from_str::<FederationConfig>("[[peer]]\nname = \"a\"\ncolour = 1").is_err(), "unknown fields are refused");
    }

    #[test]
    fn keys_come_from_files_or_the_environment_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "wtk_secret\n").unwrap();
        let c = peer(&format!("url = \"http://127.0.0.1:1/taxii2/api/\"\napi_key_file = \"{}\"", path.display())).unwrap();
        let f = Federation::new(&c).unwrap();
        assert_eq!(f.peers[0].credential.as_deref(), Some("wtk_secret"));
        let missing = peer("url = \"http://127.0.0.1:1/taxii2/api/\"\napi_key_env = \"WARD_TEST_SURELY_UNSET_VAR\"").unwrap();
        assert!(Federation::new(&missing).unwrap_err().contains("not set"));
        std::fs::write(&path, "").unwrap();
        assert!(Federation::new(&c).unwrap_err().contains("empty"));
    }
}
