//! Storage behind one trait, so the embedded SQLite store and the later PostgreSQL store share
//! every handler and every test.
//!
//! The trait is synchronous; async callers go through `tokio::task::spawn_blocking` (see
//! [`crate::state::HubState::store_call`]). Nothing SQLite-specific appears here: ids are `i64`,
//! times are [`Millis`], and each method is one transaction.
//!
//! [`migrate`] copies a SQLite store into an empty PostgreSQL one (`ward hub migrate`), using
//! both backends' own SQL.
//!
//! Correlation is part of [`Store::ingest`]: storing a batch, updating sightings, opening or
//! extending campaigns, appending indicators and enqueueing notifications happen in one
//! transaction, so several hub replicas sharing one database agree on campaigns.

pub mod migrate;
pub mod open;
pub mod postgres;
pub mod secrets;
pub mod sqlite;

use serde::Serialize;

use crate::error::StoreError;
use crate::ingest::{ParsedEvent, Rejection};
use crate::model::*;

pub type StoreResult<T> = Result<T, StoreError>;

/// When an actor becomes a campaign, and how fast its growth is reported.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationPolicy {
    /// A key seen by at least this many jurisdictions opens a campaign.
    pub min_jurisdictions: i64,
    /// … within this window (hub receipt time).
    pub window_ms: Millis,
    /// At most one "campaign grew" digest per contact per campaign in this interval.
    pub digest_interval_ms: Millis,
    /// Jurisdiction counts at which a campaign escalates (each level notifies everyone once).
    pub escalate_at: Vec<i64>,
    /// What one sensor may contribute, the publication bar and the allow-list ([`crate::trust`]).
    pub trust: crate::trust::TrustPolicy,
}

impl Default for CorrelationPolicy {
    fn default() -> Self {
        CorrelationPolicy {
            min_jurisdictions: 2,
            window_ms: 7 * 24 * 3600 * 1000,
            digest_interval_ms: 10 * 60 * 1000,
            escalate_at: vec![5, 20],
            trust: crate::trust::TrustPolicy::default(),
        }
    }
}

/// One sensor batch, parsed, ready to be made durable.
#[derive(Debug, Clone)]
pub struct IngestBatch {
    pub sensor_id: i64,
    pub jurisdiction_id: i64,
    pub seq: i64,
    pub events: Vec<ParsedEvent>,
    pub rejected: Vec<Rejection>,
    pub rejected_total: usize,
}

/// The reply to a batch; stored with the idempotency key and sent again for a repeated key.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct IngestReceipt {
    pub sensor_id: i64,
    pub seq: i64,
    pub accepted: usize,
    pub rejected_total: usize,
    pub rejected: Vec<RejectionOut>,
    /// True when this key was already acknowledged and nothing new was stored.
    pub duplicate: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RejectionOut {
    pub line: usize,
    pub reason: String,
}

/// What one group commit changed, so the hub can wake its workers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestEffects {
    pub campaigns_opened: usize,
    pub notifications_enqueued: usize,
    pub indicators_added: usize,
    /// Batches stored without correlation (their sensor on hold, or the batch breached its budget).
    pub batches_held: usize,
    /// Budget breaches recorded (each puts a sensor on hold).
    pub trust_anomalies: usize,
}

/// Which events [`Store::scan_events`] walks, newest first.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub jurisdiction_id: Option<i64>,
    /// With `jurisdiction_id`: also the jurisdictions whose parent it is (a state's counties).
    pub include_children: bool,
    pub event_type: Option<String>,
    /// Only events with a smaller id (the page cursor).
    pub before: Option<i64>,
    pub limit: usize,
}

#[derive(Debug, Clone, Default)]
pub struct NotificationFilter {
    pub jurisdiction_id: Option<i64>,
    /// With `jurisdiction_id`: also the jurisdictions whose parent it is (a state's counties).
    pub include_children: bool,
    pub campaign_id: Option<i64>,
    pub limit: usize,
}

/// Analyst changes to one campaign (see [`Store::update_campaign`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CampaignChange {
    pub name: Option<String>,
    pub annotation: Option<String>,
    /// Merge the campaign with this id into this one.
    pub merge_from: Option<i64>,
    pub close: bool,
    /// An analyst stands behind the campaign: its keys go to every sensor whatever its size.
    pub confirm: bool,
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub ok: bool,
    pub detail: String,
    pub duration_ms: i64,
    /// The message as sent (kept on the notification when delivered).
    pub payload: Option<String>,
    /// When to retry after a failure; `None` gives up (status `failed`).
    pub retry_at: Option<Millis>,
}

pub trait Store: Send + Sync + 'static {
    // jurisdictions
    fn create_jurisdiction(&self, new: &NewJurisdiction, now: Millis) -> StoreResult<Jurisdiction>;
    fn jurisdictions(&self) -> StoreResult<Vec<Jurisdiction>>;
    fn jurisdiction(&self, id: i64) -> StoreResult<Option<Jurisdiction>>;
    fn jurisdiction_by_name(&self, name: &str) -> StoreResult<Option<Jurisdiction>>;

    // sensors
    fn create_enrollment_token(&self, jurisdiction_id: i64, token_hash: &str, now: Millis, expires_ms: Millis) -> StoreResult<()>;
    /// Consumes a one-time token; fails with `NotFound` for an unknown, used or expired token.
    fn enroll_sensor(&self, token_hash: &str, name: &str, credential_hash: &str, now: Millis) -> StoreResult<Sensor>;
    fn sensor_by_credential(&self, credential_hash: &str) -> StoreResult<Option<Sensor>>;
    fn sensors(&self, jurisdiction_id: Option<i64>) -> StoreResult<Vec<Sensor>>;

    // contacts
    fn create_contact(&self, jurisdiction_id: i64, new: &NewContact, now: Millis) -> StoreResult<Contact>;
    fn contacts(&self, jurisdiction_id: Option<i64>) -> StoreResult<Vec<Contact>>;

    // users and sessions
    fn create_user(&self, username: &str, password_hash: &str, role: Role, jurisdiction_id: Option<i64>, now: Millis) -> StoreResult<User>;
    fn user_credentials(&self, username: &str) -> StoreResult<Option<(User, String)>>;
    fn users(&self, jurisdiction_id: Option<i64>) -> StoreResult<Vec<User>>;
    fn create_session(&self, token_hash: &str, user_id: i64, csrf: &str, now: Millis, expires_ms: Millis) -> StoreResult<()>;
    fn session(&self, token_hash: &str, now: Millis) -> StoreResult<Option<(User, String)>>;
    fn delete_session(&self, token_hash: &str) -> StoreResult<()>;

    // ingest and correlation
    /// Makes the batches durable and correlates them, in one transaction (a group commit).
    fn ingest(&self, batches: &[IngestBatch], policy: &CorrelationPolicy, now: Millis) -> StoreResult<(Vec<IngestReceipt>, IngestEffects)>;
    fn events(&self, jurisdiction_id: Option<i64>, event_type: Option<&str>, limit: usize) -> StoreResult<Vec<StoredEvent>>;
    /// Events newest first, handed to `each` one at a time until it returns false, so a caller
    /// filling a page of bounded size holds one event at a time and reads no further.
    fn scan_events(&self, filter: &EventFilter, each: &mut dyn FnMut(StoredEvent) -> bool) -> StoreResult<()>;
    /// Alert counts per (jurisdiction, hour bucket) since `since`.
    fn alert_counts(&self, since: Millis) -> StoreResult<Vec<(i64, Millis, i64)>>;
    /// Deletes events of one type received before `before`; `None` is every type not in `except`.
    /// Deletes in bounded chunks (one transaction each), so ingest is never blocked for long.
    fn prune_events(&self, event_type: Option<&str>, except: &[String], before: Millis) -> StoreResult<usize>;
    /// Forgets idempotency keys of batches received before `before` (a sensor retrying a batch
    /// older than that would have it stored again).
    fn prune_batches(&self, before: Millis) -> StoreResult<usize>;

    // campaigns
    fn campaigns(&self, only_open: bool) -> StoreResult<Vec<Campaign>>;
    fn campaign(&self, id: i64) -> StoreResult<Option<CampaignDetail>>;
    fn jurisdiction_campaigns(&self, jurisdiction_id: i64) -> StoreResult<Vec<JurisdictionCampaignView>>;
    fn jurisdiction_campaign(&self, campaign_id: i64, jurisdiction_id: i64) -> StoreResult<Option<JurisdictionCampaignView>>;
    fn rename_campaign(&self, id: i64, name: &str, now: Millis) -> StoreResult<()>;
    fn annotate_campaign(&self, id: i64, note: &str, now: Millis) -> StoreResult<()>;
    fn close_campaign(&self, id: i64, now: Millis) -> StoreResult<()>;
    /// Moves `from`'s keys and jurisdictions into `into`; `from` becomes `merged`.
    fn merge_campaigns(&self, into: i64, from: i64, now: Millis) -> StoreResult<()>;
    /// Applies an analyst's changes in one transaction, in the order rename, annotate, merge,
    /// confirm, close: either all of them happen or none.
    fn update_campaign(&self, id: i64, change: &CampaignChange, now: Millis) -> StoreResult<()>;
    fn indicators_since(&self, cursor: i64, limit: usize) -> StoreResult<Vec<Indicator>>;

    // ---- trust (crate::trust; docs/hub.md "Trust"): keep this block together ----
    fn sensor(&self, id: i64) -> StoreResult<Option<Sensor>>;
    /// Everything one sensor contributed to correlation; `None` for an unknown sensor.
    fn sensor_contributions(&self, sensor_id: i64, now: Millis) -> StoreResult<Option<crate::trust::SensorContributions>>;
    /// Deletes the sensor's sightings, takes its jurisdiction out of campaigns only it put it in,
    /// removes campaign keys no remaining member sighted, closes campaigns that fall below K and
    /// withdraws what falls below the publication bar; the sensor is put on hold.
    fn revoke_sensor(&self, sensor_id: i64, policy: &CorrelationPolicy, now: Millis) -> StoreResult<crate::trust::RevokeOutcome>;
    /// Ends a hold (the budget window starts afresh) and publishes campaigns that reach the bar
    /// again. Events stored during the hold stay uncorrelated.
    fn release_sensor(&self, sensor_id: i64, policy: &CorrelationPolicy, now: Millis) -> StoreResult<()>;
    /// Newest first; `None` is every sensor.
    fn trust_anomalies(&self, sensor_id: Option<i64>, limit: usize) -> StoreResult<Vec<crate::trust::TrustAnomaly>>;
    /// Registered never-block entries; `Some(j)` lists only jurisdiction j's.
    fn allow_entries(&self, jurisdiction_id: Option<i64>) -> StoreResult<Vec<crate::trust::AllowEntry>>;
    /// Adds an entry and, in the same transaction, takes the keys it covers out of open campaigns
    /// (withdrawing them from the feed where published).
    fn add_allow_entry(&self, new: &crate::trust::NewAllowEntry, now: Millis) -> StoreResult<crate::trust::AllowOutcome>;
    /// Removes an entry; keys it covered are not restored (later sightings count again).
    fn remove_allow_entry(&self, id: i64, now: Millis) -> StoreResult<crate::trust::AllowEntry>;
    // ---- end trust ----

    // outbox
    /// Claims due notifications for `lease_ms` (so concurrent workers do not double-send).
    fn claim_notifications(&self, now: Millis, lease_ms: Millis, limit: usize) -> StoreResult<Vec<NotificationJob>>;
    fn record_attempt(&self, notification_id: i64, outcome: &AttemptOutcome, now: Millis) -> StoreResult<()> {
        self.record_attempts(&[(notification_id, outcome.clone(), now)])
    }
    /// Records several attempts in one transaction (the delivery worker's group commit).
    fn record_attempts(&self, attempts: &[(i64, AttemptOutcome, Millis)]) -> StoreResult<()>;
    fn notifications(&self, filter: &NotificationFilter) -> StoreResult<Vec<NotificationRecord>>;
    fn notification(&self, id: i64) -> StoreResult<Option<NotificationRecord>>;
    fn delivery_attempts(&self, notification_id: i64) -> StoreResult<Vec<DeliveryAttempt>>;
    /// The earliest `next_attempt_ms` among pending notifications.
    fn next_due(&self) -> StoreResult<Option<Millis>>;

    // ---- scanner (ward scan --hub): assets, blackouts, results, reports, job leases ----
    // Owned by crate::assets (which also holds the SQL); keep this block together.
    fn add_scan_asset(&self, jurisdiction_id: i64, kind: crate::assets::AssetKind, value: &str, now: Millis) -> StoreResult<crate::assets::ScanAsset>;
    fn scan_assets(&self, jurisdiction_id: i64) -> StoreResult<Vec<crate::assets::ScanAsset>>;
    fn add_scan_blackout(&self, jurisdiction_id: i64, new: &crate::assets::NewScanBlackout, now: Millis) -> StoreResult<crate::assets::ScanBlackout>;
    fn scan_blackouts(&self, jurisdiction_id: i64) -> StoreResult<Vec<crate::assets::ScanBlackout>>;
    /// Stores an uploaded scan result (JSON) and releases the jurisdiction's job lease.
    fn store_scan_result(&self, jurisdiction_id: i64, finished_ms: Millis, next_due_ms: Millis, body: &str, now: Millis) -> StoreResult<i64>;
    /// Every stored result of a jurisdiction, oldest first.
    fn scan_results(&self, jurisdiction_id: i64) -> StoreResult<Vec<String>>;
    fn put_scan_report(&self, jurisdiction_id: i64, html: &str, pdf: &[u8], now: Millis) -> StoreResult<()>;
    /// The latest weekly report: (generated, HTML, PDF).
    fn scan_report(&self, jurisdiction_id: i64) -> StoreResult<Option<(Millis, String, Vec<u8>)>>;
    /// Leases the first due jurisdiction among `candidates` to `worker` (one transaction).
    fn claim_scan_job(&self, candidates: &[i64], worker: &str, now: Millis, lease_ms: Millis) -> StoreResult<Option<i64>>;

    // ---- retro-hunt (crate::retro, which also holds the SQL): keep this block together ----
    // Defaults refuse, so a store without retro-hunt support still compiles and serves the rest.
    fn add_analyst_indicator(&self, _new: &crate::retro::NewIndicator, _user_id: i64, _now: Millis) -> StoreResult<crate::retro::AnalystIndicator> {
        Err(StoreError::Invalid("this store does not support analyst indicators".into()))
    }
    /// Logs a `remove` for each analyst indicator past its expiry; returns how many.
    fn expire_analyst_indicators(&self, _now: Millis) -> StoreResult<usize> {
        Ok(0)
    }
    /// Hunts the next indicator after the retro-hunt cursor (search on a reader, then hits,
    /// notifications and the cursor in one transaction); `None` when caught up.
    fn retro_hunt_next(&self, _window: &crate::retro::HuntWindow, _now: Millis) -> StoreResult<Option<crate::retro::HuntOutcome>> {
        Ok(None)
    }
    /// Re-hunts, for one jurisdiction whose contact records arrived late, the indicators that
    /// appeared after those records began; `None` when no jurisdiction is waiting.
    fn retro_late_next(&self, _window: &crate::retro::HuntWindow, _now: Millis) -> StoreResult<Option<crate::retro::HuntOutcome>> {
        Ok(None)
    }
    /// Newest first; `None` is every jurisdiction.
    fn retro_hits(&self, _jurisdiction_id: Option<i64>, _limit: usize) -> StoreResult<Vec<crate::retro::RetroHit>> {
        Ok(Vec::new())
    }
    fn retro_hit_for_notification(&self, _notification_id: i64) -> StoreResult<Option<crate::retro::RetroHit>> {
        Ok(None)
    }
    /// Deletes contact records of hours before `before_ms`, in bounded chunks.
    fn prune_contacts(&self, _before_ms: Millis) -> StoreResult<usize> {
        Ok(0)
    }
    // ---- end retro-hunt ----

    // ---- replicas (docs/hub.md "Replicas"): job leases, shared limits, change notices ----
    /// Takes the lease on background job `name` for `holder` until `now + lease_ms`: true when
    /// nobody held it, `holder` already did (the lease is renewed), or the last lease expired.
    fn claim_job(&self, name: &str, holder: &str, now: Millis, lease_ms: Millis) -> StoreResult<bool>;
    /// Gives up `holder`'s lease on `name` (another holder's lease is left alone).
    fn release_job(&self, name: &str, holder: &str) -> StoreResult<()>;
    /// Whether [`Store::update_limits`] works: the store keeps the security budgets (failed
    /// logins, failed enrollments, name probes) for every process that uses it. `false` (the
    /// embedded store, one process) keeps them in process memory.
    fn shares_limits(&self) -> bool {
        false
    }
    /// Reads the records of `keys` (expired ones as `None`), lets `update` change them and, when
    /// it returns true, writes them back (`None` deletes), all under a lock on those keys so
    /// concurrent updates from any process happen one after the other.
    fn update_limits(&self, _keys: &[String], _now: Millis, _update: &mut dyn FnMut(&mut [Option<LimitRecord>]) -> bool) -> StoreResult<()> {
        Err(StoreError::Invalid("this store keeps no shared limits".into()))
    }
    /// Deletes limit records past their expiry; returns how many.
    fn prune_limits(&self, _now: Millis) -> StoreResult<usize> {
        Ok(0)
    }
    /// Calls `on_change` whenever another process changed the indicator log or enqueued
    /// notifications (and once after each reconnect, when a change may have been missed), until
    /// the returned watch is dropped. `None`: nothing to watch (one process per store).
    fn watch_changes(&self, _on_change: ChangeCallback) -> StoreResult<Option<ChangeWatch>> {
        Ok(None)
    }
    // ---- end replicas ----

    // ---- state roll-up (crate::rollup; docs/hub.md "States and their counties") ----
    /// The jurisdictions whose parent is `parent_id` (a state's counties and cities), by name.
    fn jurisdiction_children(&self, parent_id: i64) -> StoreResult<Vec<Jurisdiction>>;
    // ---- end state roll-up ----
    // ---- taxii (crate::share::taxii, crate::share::accounts, crate::share::publish; docs/sharing.md "TAXII 2.1 server") ----
    /// Stores object versions in `collection` in one transaction, with strictly increasing
    /// `date_added` from `max(now_us, last + 1)` in commit order (see [`crate::share::objects`]).
    /// Returns each object's `date_added`, or `None` when that version was already there.
    fn taxii_add(&self, collection: &str, added_by: &str, objects: &[crate::share::objects::NewObject], now_us: i64) -> StoreResult<Vec<Option<i64>>>;
    /// One page of object versions under the query's scope, in (date_added, seq) order.
    fn taxii_objects(&self, query: &crate::share::objects::ObjectQuery) -> StoreResult<Vec<crate::share::objects::StoredObject>>;
    /// The newest stored version of each of `ids` in `collection`: (id, version_us, content_hash).
    fn taxii_latest(&self, collection: &str, ids: &[String]) -> StoreResult<Vec<(String, i64, String)>>;
    /// A status resource: (the account that made it, its JSON).
    fn taxii_status(&self, id: &str) -> StoreResult<Option<(String, String)>>;
    fn create_api_key(&self, new: &crate::share::objects::NewApiKey, now: Millis) -> StoreResult<crate::share::objects::ApiKey>;
    /// Every key, revoked ones included, oldest first.
    fn api_keys(&self) -> StoreResult<Vec<crate::share::objects::ApiKey>>;
    /// The key whose secret hashes to `secret_hash`, unless revoked.
    fn api_key_by_secret(&self, secret_hash: &str) -> StoreResult<Option<crate::share::objects::ApiKey>>;
    /// Revokes a key (at once, on every replica); `NotFound` for an unknown id.
    fn revoke_api_key(&self, id: i64, now: Millis) -> StoreResult<crate::share::objects::ApiKey>;
    // ---- end taxii ----
    // ---- feeds (crate::share::feeds; docs/sharing.md "Feeds"): keep this block together ----
    fn add_feed(&self, new: &crate::share::feeds::NewFeed, now: Millis) -> StoreResult<crate::share::feeds::Feed>;
    fn feeds(&self) -> StoreResult<Vec<crate::share::feeds::Feed>>;
    fn feed(&self, id: i64) -> StoreResult<Option<crate::share::feeds::Feed>>;
    /// The feed's password or token, opened; `None` when it has none.
    fn feed_credential(&self, id: i64) -> StoreResult<Option<String>>;
    /// Withdraws everything the feed holds (a `remove` only for values no other source holds)
    /// and deletes it, in one transaction.
    fn remove_feed(&self, id: i64, now: Millis) -> StoreResult<crate::share::feeds::FeedApplied>;
    /// Replaces the feed's groups in `update` and keeps its poll state, in one transaction with
    /// the indicator log: allow-listed values (`allow`, plus the registered entries) are not
    /// taken, nothing is added past the feed's cap, values already live are not logged again and
    /// values another source holds are not removed.
    fn apply_feed_update(&self, feed_id: i64, update: &crate::share::feeds::FeedUpdate, allow: &crate::trust::AllowList, now: Millis) -> StoreResult<crate::share::feeds::FeedApplied>;
    /// Records a poll's outcome (the error and backoff, the cap, the counts).
    fn record_feed_poll(&self, feed_id: i64, record: &crate::share::feeds::PollRecord, now: Millis) -> StoreResult<()>;
    /// Withdraws feed indicators past their `valid_until` (at most a bounded number per call).
    fn expire_feed_indicators(&self, now: Millis) -> StoreResult<crate::share::feeds::FeedApplied>;
    /// The indicators a feed holds now, oldest first.
    fn feed_indicators(&self, feed_id: i64, limit: usize) -> StoreResult<Vec<crate::share::feeds::FeedIndicator>>;
    // ---- end feeds ----
    // ---- federation (crate::share::federation; docs/sharing.md "Federation"): keep this block together ----
    /// The next TAXII objects to push to a peer, oldest first (see [`crate::share::federation::OutboundQuery`]).
    fn federation_outbound(&self, query: &crate::share::federation::OutboundQuery) -> StoreResult<Vec<crate::share::objects::StoredObject>>;
    /// One peer's push cursor and counts (`None` before its first push or POST).
    fn federation_peer(&self, name: &str) -> StoreResult<Option<crate::share::federation::PeerState>>;
    fn federation_peers(&self) -> StoreResult<Vec<crate::share::federation::PeerState>>;
    /// Records a push to a peer: success moves its cursor (never backwards), failure counts.
    fn record_federation_push(&self, name: &str, record: &crate::share::federation::PushRecord, now: Millis) -> StoreResult<()>;
    /// Records objects a peer posted.
    fn record_federation_received(&self, name: &str, objects: usize, now: Millis) -> StoreResult<()>;
    /// Brings a (peer) feed's rules in line with the hub's file; what it holds stays.
    fn set_feed_rules(&self, feed_id: i64, rules: &crate::share::feeds::NewFeed) -> StoreResult<()>;
    /// The indicator-log `add`s analysts' indicators rode on (the publisher shares those, not
    /// feeds' or peers' indicators, which are logged as campaign 0 too).
    fn analyst_add_seqs(&self) -> StoreResult<Vec<i64>>;
    // ---- end federation ----
    // ---- ack (crate::ack; docs/hub.md "Acknowledgements and escalation"): keep this block together ----
    /// Sets a contact's priority (1 warned at once, 2 to [`crate::ack::MAX_PRIORITY`] told in
    /// this order when a warning stays unacknowledged); `NotFound` for an unknown contact.
    fn set_contact_priority(&self, contact_id: i64, priority: i64) -> StoreResult<Contact>;
    /// Records an acknowledgement: the first one's time and author stay, a given action or note
    /// replaces the earlier one. `None` for an unknown notification.
    fn ack_notification(&self, notification_id: i64, ack: &crate::ack::NewAck, now: Millis) -> StoreResult<Option<crate::ack::Ack>>;
    /// The notification's acknowledgement; `None` when it has none (or does not exist).
    fn notification_ack(&self, notification_id: i64) -> StoreResult<Option<crate::ack::Ack>>;
    /// The escalation steps of the campaign's warning to `jurisdiction_id`, and those that told
    /// `jurisdiction_id` (a state) of its counties' warnings in the campaign, in order.
    fn escalations(&self, campaign_id: i64, jurisdiction_id: i64) -> StoreResult<Vec<crate::ack::EscalationStep>>;
    /// The escalation step a notification was sent for.
    fn escalation_of_notification(&self, notification_id: i64) -> StoreResult<Option<crate::ack::EscalationStep>>;
    /// Takes the due steps of unacknowledged warnings (see [`crate::ack`]) in one transaction:
    /// each step's row (unique per warning and step, so a step is never taken twice) and its
    /// notifications. Returns the steps taken.
    fn escalate_due(&self, policy: &crate::ack::EscalationPolicy, now: Millis) -> StoreResult<Vec<crate::ack::EscalationStep>>;
    /// First warnings since `since` (newest first, at most `limit`) with their first
    /// acknowledgement, for `jurisdictions` (`None`: every one).
    fn warning_acks(&self, jurisdictions: Option<&[i64]>, since: Millis, limit: usize) -> StoreResult<Vec<crate::ack::WarningAck>>;
    /// The hub's own key `name` (32 random bytes, made on first use; kept like webhook secrets).
    fn hub_key(&self, name: &str, now: Millis) -> StoreResult<Vec<u8>>;
    // ---- end ack ----
    // ---- mtls (crate::tls, crate::share::accounts; docs/sharing.md "Mutual TLS") ----
    /// Binds key `id` to the client certificate whose SHA-256 (lowercase hex) is `sha256`, or
    /// unbinds it (`None`). `Conflict` when another active key holds that certificate,
    /// `NotFound` for an unknown key, `Invalid` for a revoked one or a malformed fingerprint.
    fn bind_api_key_cert(&self, id: i64, sha256: Option<&str>) -> StoreResult<crate::share::objects::ApiKey>;
    /// The active key bound to the certificate with this SHA-256, if any.
    fn api_key_by_cert(&self, sha256: &str) -> StoreResult<Option<crate::share::objects::ApiKey>>;
    // ---- end mtls ----
    // ---- taxii post (crate::share::taxii POST; docs/sharing.md "TAXII 2.1 server") ----
    /// A TAXII POST in one transaction (one commit): the objects as [`Store::taxii_add`] stores
    /// them, then the POST's status resource (kept [`crate::share::taxii::STATUS_KEEP_MS`]), whose JSON
    /// `status` builds from what the add returned. Returns the add's result and that JSON.
    #[allow(clippy::too_many_arguments)]
    fn taxii_post(
        &self,
        collection: &str,
        added_by: &str,
        objects: &[crate::share::objects::NewObject],
        now_us: i64,
        status_id: &str,
        status: &(dyn Fn(&[Option<i64>]) -> String + Sync),
        now: Millis,
        keep_after_ms: Millis,
    ) -> StoreResult<(Vec<Option<i64>>, String)>;
    // ---- end taxii post ----
    // ---- drill (crate::drill; docs/hub.md "Drill jurisdictions"): keep this block together ----
    /// Marks a jurisdiction as a drill one (or not); `NotFound` for an unknown id.
    fn set_jurisdiction_drill(&self, id: i64, drill: bool) -> StoreResult<Jurisdiction>;
    /// Deletes, in one transaction, every row that belongs to a drill jurisdiction (events,
    /// sightings, contact records, retro-hunt hits, notifications with their attempts and
    /// escalations, contacts, sensors with their tokens and trust rows, users and their
    /// sessions, scan rows, allow-list entries, API keys bound to them, campaign membership),
    /// the campaigns left with no jurisdiction (keys, log, notifications; what one had published
    /// is withdrawn), then the drill jurisdictions. Real jurisdictions' rows stay. With
    /// `apply` false the same statements run and are rolled back: a preview of the counts.
    fn purge_drill(&self, now: Millis, apply: bool) -> StoreResult<crate::drill::DrillPurge>;
    // ---- end drill ----
    // ---- disinfo (crate::disinfo; docs/disinformation.md): keep this block together ----
    /// Files a report in one transaction: joins it to the open case with one of its URLs' keys,
    /// else to the open case whose claim is the same (see [`crate::disinfo::cases`]), else
    /// opens a case; stores its URLs, jurisdictions, screenshots (once per SHA-256) and a
    /// timeline entry.
    fn disinfo_file_report(&self, new: &crate::disinfo::NewReport, policy: &crate::disinfo::CasePolicy, now: Millis) -> StoreResult<crate::disinfo::ReportOutcome>;
    fn disinfo_report(&self, id: i64) -> StoreResult<Option<crate::disinfo::Report>>;
    /// Reports filed by `jurisdictions` (`None`: every one), newest first.
    fn disinfo_reports(&self, jurisdictions: Option<&[i64]>, limit: usize) -> StoreResult<Vec<crate::disinfo::Report>>;
    /// A case with every report (unfiltered: the caller hides what its reader may not see).
    fn disinfo_case(&self, id: i64) -> StoreResult<Option<crate::disinfo::CaseDetail>>;
    /// Cases one of `jurisdictions` reported or is concerned by (`None`: every case), most
    /// recently changed first.
    fn disinfo_cases(&self, jurisdictions: Option<&[i64]>, limit: usize) -> StoreResult<Vec<crate::disinfo::Case>>;
    /// Moves a case's status forward and records it in the timeline; `Conflict` for a move
    /// backwards or out of `closed`, `NotFound` for an unknown case.
    fn disinfo_set_status(&self, case_id: i64, change: &crate::disinfo::StatusChange, now: Millis) -> StoreResult<crate::disinfo::Case>;
    /// A screenshot's bytes and the jurisdictions whose reports carry it.
    fn disinfo_screenshot(&self, sha256: &str) -> StoreResult<Option<crate::disinfo::StoredScreenshot>>;
    /// Escalates, each once, the cases still `new` (nobody triaged them) that were opened at or
    /// before `urgent_before` (urgent cases) or `other_before` (the others): marks them and
    /// enqueues `disinfo.untouched` to the priority-2 contacts of every office the case names
    /// and the priority-1 contacts of their states, in one transaction. Returns the cases.
    fn disinfo_escalate_untouched(&self, urgent_before: Millis, other_before: Millis, now: Millis, limit: usize) -> StoreResult<Vec<i64>>;
    /// Publishes a case on the public "rumor vs reality" page (`Some(time)`) or withdraws it
    /// (`None`); false when there is no such case.
    fn disinfo_set_published(&self, case_id: i64, published_ms: Option<Millis>) -> StoreResult<bool>;
    /// When a case was published (`None`: not published, or no such case).
    fn disinfo_published_ms(&self, case_id: i64) -> StoreResult<Option<Millis>>;
    /// The published cases, newest publication first: (case id, published).
    fn disinfo_published(&self, limit: usize) -> StoreResult<Vec<(i64, Millis)>>;
    // ---- end disinfo ----
}

/// One shared limit record ([`Store::update_limits`]): a failure count or a number of tokens,
/// when it last changed, and when it means nothing any more.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitRecord {
    pub value: f64,
    pub at_ms: Millis,
    pub expires_ms: Millis,
}

/// What another process changed ([`Store::watch_changes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreChange {
    /// The indicator log grew (indicator long-polls and the retro-hunt wake).
    Indicators,
    /// Notifications were enqueued (the delivery worker wakes).
    Outbox,
}

pub type ChangeCallback = std::sync::Arc<dyn Fn(StoreChange) + Send + Sync>;

/// A running change watch; dropping it stops the watch (within about a second).
pub struct ChangeWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl ChangeWatch {
    pub fn new(stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Self {
        ChangeWatch { stop }
    }
}

impl Drop for ChangeWatch {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
    }
}
