//! Publishing the hub's knowledge into the TAXII object store: a background job that builds
//! every object the hub shares — campaigns, their keys as indicators, `indicates`
//! relationships, sightings, identities, reports ([`super::export`]), analysts' indicators and
//! disinformation cases ([`crate::disinfo::stix`]) — and stores a new version of each one that changed.
//!
//! * Two stored collections: `hub` (jurisdictions named; each named identity and sighting
//!   tagged with the jurisdiction it concerns) and `community` (anonymised, "a county in OH";
//!   sightings still tagged, so a jurisdiction's account reads only its own). Both carry the TLP
//!   of `[taxii] tlp` and the TLP marking definitions they use.
//! * Ids are the export's (deterministic, [`super::stix::IdSpace`]); a changed object gets a
//!   new version, never a new id. "Changed" is decided on the object without `modified` (a
//!   SHA-256 of the rest), so a rename or an annotation that leaves `modified` where it was still
//!   becomes a new version: its `modified` is moved one millisecond past the stored one.
//! * Withdrawal: a closed or merged campaign (and its indicators) comes out of the export with
//!   `revoked: true`, an analyst's indicator that was removed or expired likewise, and that is
//!   stored as their newest version.
//! * Runs on one replica at a time (the [`JOB_TAXII_PUBLISH`] lease), when the indicator log
//!   grows (the same wake-up as the retro-hunt, from this replica or another) and every
//!   `[taxii] publish_interval_secs` (campaign renames and annotations do not touch the log).
//!
//! Each run rebuilds every published campaign (what `ward hub export` does) and compares: cheap
//! for the hundreds of campaigns a hub holds; an incremental publisher would be needed for
//! hundreds of thousands.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use ward_model::tlp::Tlp;

use super::export::{export_objects, ExportPolicy};
use super::objects::{NewObject, COLLECTION_COMMUNITY, COLLECTION_HUB};
use super::stix::{self, Common, IdSpace, Observable};
use crate::config::TaxiiConfig;
use crate::error::StoreError;
use crate::model::Millis;
use crate::state::HubState;
use crate::store::{Store, StoreResult};

/// The publisher's job lease (see [`crate::state::HubState::hold_job`]).
pub const JOB_TAXII_PUBLISH: &str = "taxii-publish";
/// Who the store records as having added the hub's own objects.
pub const PUBLISHER: &str = "hub";
/// Confidence (0–100) of the hub's campaign indicators and analysts' indicators.
pub const CONFIDENCE: u8 = 70;

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Published {
    /// New object versions stored.
    pub stored: usize,
    /// Objects built that had not changed.
    pub unchanged: usize,
}

/// One run over both collections.
pub fn publish_once(store: &dyn Store, config: &TaxiiConfig, now: Millis, now_us: i64) -> StoreResult<Published> {
    if config.tlp == Tlp::Red {
        return Err(StoreError::Invalid("[taxii] tlp = TLP:RED: TLP:RED never leaves the hub".into()));
    }
    let mut total = Published::default();
    let analyst = analyst_indicators(store)?;
    // Disinformation cases (crate::disinfo::stix): the same objects in both collections.
    let cases = crate::disinfo::stix::published_objects(store, &IdSpace::for_hub(&config.hub_name), config.tlp)?;
    for (collection, named) in [(COLLECTION_HUB, true), (COLLECTION_COMMUNITY, false)] {
        let policy = ExportPolicy { hub_name: config.hub_name.clone(), tlp: config.tlp, name_jurisdictions: named, include_unpublished: false, confidence: CONFIDENCE };
        let mut objects = export_objects(store, &policy, now)?;
        let ids = IdSpace::for_hub(&config.hub_name);
        let hub_id = ids.id("identity", "hub");
        let taken: HashSet<String> = objects.iter().filter_map(|(o, _)| o["id"].as_str().map(str::to_string)).collect();
        for a in &analyst {
            let id = ids.id("indicator", &format!("{}|{}", a.kind, a.value));
            // A campaign key wins: one fact, one object.
            if taken.contains(&id) {
                continue;
            }
            let Ok(ob) = Observable::from_kind(&a.kind, &a.value) else { continue };
            let c = Common { created_ms: a.added_ms, modified_ms: a.changed_ms, tlp: config.tlp, created_by_ref: Some(hub_id.clone()), revoked: a.removed, confidence: Some(CONFIDENCE) };
            objects.push((stix::indicator(&id, &ob, "Indicator added by a hub analyst", a.added_ms, None, &["ward-analyst-indicator"], &c), None));
        }
        objects.extend(cases.iter().map(|o| (o.clone(), None)));
        let plain: Vec<Value> = objects.iter().map(|(o, _)| o.clone()).collect();
        let mut all: Vec<(Value, Option<i64>)> = stix::markings_for(&plain).into_iter().map(|m| (m, None)).collect();
        all.extend(objects);
        let done = store_changed(store, collection, all, now_us)?;
        total.stored += done.stored;
        total.unchanged += done.unchanged;
    }
    Ok(total)
}

/// The state of one analyst indicator, read from the indicator log.
struct AnalystIndicator {
    kind: String,
    value: String,
    added_ms: Millis,
    changed_ms: Millis,
    removed: bool,
}

/// Analysts' indicators (the indicator log's entries with campaign 0 whose `add` an analyst's
/// indicator rode on: feeds and peer hubs log as campaign 0 too, and what they gave is theirs
/// to share, not this hub's), latest state each.
fn analyst_indicators(store: &dyn Store) -> StoreResult<Vec<AnalystIndicator>> {
    let analysts: HashSet<i64> = store.analyst_add_seqs()?.into_iter().collect();
    let mut by_key: HashMap<(String, String), AnalystIndicator> = HashMap::new();
    let mut order = Vec::new();
    let mut cursor = 0;
    loop {
        let page = store.indicators_since(cursor, 10_000)?;
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        for i in page.iter().filter(|i| i.campaign_id == 0) {
            let key = (i.kind.clone(), i.value.clone());
            let removed = i.action != "add";
            match by_key.get_mut(&key) {
                Some(a) => {
                    a.changed_ms = i.ts_ms.max(a.changed_ms);
                    a.removed = removed;
                }
                None if !removed && analysts.contains(&i.seq) => {
                    order.push(key.clone());
                    by_key.insert(key, AnalystIndicator { kind: i.kind.clone(), value: i.value.clone(), added_ms: i.ts_ms, changed_ms: i.ts_ms, removed });
                }
                None => {}
            }
        }
    }
    Ok(order.into_iter().filter_map(|k| by_key.remove(&k)).collect())
}

/// SHA-256 (hex) of an object without `modified`.
pub fn content_hash(object: &Value) -> String {
    let mut o = object.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("modified");
    }
    hex::encode(Sha256::digest(o.to_string().as_bytes()))
}

/// Stores, in `collection`, a new version of each object that differs from its stored newest.
pub fn store_changed(store: &dyn Store, collection: &str, objects: Vec<(Value, Option<i64>)>, now_us: i64) -> StoreResult<Published> {
    let mut seen = HashSet::new();
    let objects: Vec<(Value, Option<i64>)> = objects.into_iter().filter(|(o, _)| o["id"].as_str().is_some_and(|id| seen.insert(id.to_string()))).collect();
    let ids: Vec<String> = objects.iter().filter_map(|(o, _)| o["id"].as_str().map(str::to_string)).collect();
    let latest: HashMap<String, (i64, String)> = store.taxii_latest(collection, &ids)?.into_iter().map(|(id, v, h)| (id, (v, h))).collect();
    let mut out = Published::default();
    let mut new = Vec::new();
    for (mut object, jurisdiction) in objects {
        let hash = content_hash(&object);
        let id = object["id"].as_str().unwrap_or_default().to_string();
        let stored = latest.get(&id);
        if stored.is_some_and(|(_, h)| *h == hash) {
            out.unchanged += 1;
            continue;
        }
        let stamp = |o: &Value| o["modified"].as_str().or(o["created"].as_str()).and_then(super::taxii::parse_timestamp_us);
        if let Some((stored_us, _)) = stored {
            if object.get("modified").is_some() && stamp(&object).is_none_or(|us| us <= *stored_us) {
                object["modified"] = json!(stix::timestamp(stored_us.div_euclid(1000) + 1));
            }
        }
        let version = object["modified"].as_str().or(object["created"].as_str()).unwrap_or_default().to_string();
        let tlp = if object["type"] == "marking-definition" {
            Tlp::Clear
        } else {
            Tlp::from_marking_refs(object["object_marking_refs"].as_array().into_iter().flatten().filter_map(Value::as_str)).unwrap_or(Tlp::Amber)
        };
        new.push(NewObject {
            object_id: id,
            object_type: object["type"].as_str().unwrap_or_default().to_string(),
            spec_version: object["spec_version"].as_str().unwrap_or(stix::SPEC_VERSION).to_string(),
            version_us: stamp(&object).unwrap_or(0),
            version,
            tlp,
            jurisdiction_id: jurisdiction,
            content_hash: hash,
            body: object.to_string(),
        });
    }
    if !new.is_empty() {
        let stored = store.taxii_add(collection, PUBLISHER, &new, now_us)?;
        out.stored += stored.iter().filter(|d| d.is_some()).count();
    }
    Ok(out)
}

/// The publisher: runs when the indicator log grows and every `publish_interval_secs`, on the
/// replica holding [`JOB_TAXII_PUBLISH`].
pub async fn run_worker(state: HubState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut changes = state.indicators_tx.subscribe();
    let every = std::time::Duration::from_secs(state.config.taxii.publish_interval_secs.max(1));
    let lease_ms = (every * crate::server::JOB_LEASE_INTERVALS).as_millis() as Millis;
    loop {
        if *shutdown.borrow() {
            state.release_job(JOB_TAXII_PUBLISH).await;
            return;
        }
        if state.hold_job(JOB_TAXII_PUBLISH, lease_ms).await {
            let config = state.config.taxii.clone();
            match state.store_call(move |s| publish_once(s, &config, crate::model::now_ms(), crate::model::now_us())).await {
                Ok(p) if p.stored > 0 => {
                    tracing::info!(stored = p.stored, unchanged = p.unchanged, "taxii objects published");
                    // Peer hubs hear of it now, not at the pusher's next look.
                    state.federation.wake();
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "taxii publishing failed"),
            }
        }
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {}
        }
    }
}
