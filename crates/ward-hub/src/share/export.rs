//! What the hub knows, as one STIX 2.1 bundle: campaigns, their keys as indicators, the
//! `indicates` relationships, sightings per affected jurisdiction and a report per campaign.
//!
//! The sharing policy decides what leaves: the TLP every object is marked with, whether
//! jurisdictions are named or shown as "a county in OH", and whether campaigns that have not
//! met the publication bar (docs/hub.md "Trust") are included. TLP:RED never leaves the hub,
//! so an export at RED is refused.
//!
//! Ids come from the hub's [`IdSpace`]: exporting again gives the same ids with a newer
//! `modified` where something changed, so an importer updates rather than duplicates. A closed
//! or merged campaign is exported with `revoked: true`, and so are its indicators.

use serde_json::Value;
use ward_model::tlp::Tlp;

use super::stix::{self, Common, IdSpace, Observable};
use crate::model::{Campaign, CampaignStatus, Jurisdiction, Millis};
use crate::store::{Store, StoreResult};

/// What an export may contain.
#[derive(Debug, Clone)]
pub struct ExportPolicy {
    /// The hub's name: its identity and its id space.
    pub hub_name: String,
    /// The marking of every object (not RED).
    pub tlp: Tlp,
    /// Name the jurisdictions that saw a campaign (else "a county in OH").
    pub name_jurisdictions: bool,
    /// Include campaigns whose keys are not published to every sensor yet.
    pub include_unpublished: bool,
    /// Confidence (0–100) of the hub's own campaign indicators.
    pub confidence: u8,
}

/// Why an export was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("TLP:RED never leaves the hub: export at TLP:AMBER+STRICT or below")]
    Red,
    #[error(transparent)]
    Store(#[from] crate::error::StoreError),
}

/// The identity id for a jurisdiction under a policy (named, or the anonymous "kind in state").
pub fn jurisdiction_identity(ids: &IdSpace, j: &Jurisdiction, named: bool) -> (String, String) {
    if named {
        (ids.id("identity", &format!("jurisdiction|{}", j.id)), j.name.clone())
    } else {
        let state = j.state.as_deref().unwrap_or("an unnamed state");
        let kind = j.kind.as_str();
        (ids.id("identity", &format!("anonymous|{kind}|{state}")), format!("a {kind} in {state}"))
    }
}

/// The export: a bundle of every campaign (and what hangs off it) under `policy`.
pub fn export_bundle(store: &dyn Store, policy: &ExportPolicy, now: Millis) -> Result<Value, ExportError> {
    if policy.tlp == Tlp::Red {
        return Err(ExportError::Red);
    }
    let objects: Vec<Value> = export_objects(store, policy, now)?.into_iter().map(|(o, _)| o).collect();
    let mut all = stix::markings_for(&objects);
    all.extend(objects);
    Ok(stix::bundle(all))
}

/// Every object of an export with the jurisdiction it concerns (a sighting, a named
/// jurisdiction's identity; `None` for everything else), as the TAXII publisher stores them.
/// The policy's TLP is not checked here: the caller refuses RED.
pub fn export_objects(store: &dyn Store, policy: &ExportPolicy, now: Millis) -> StoreResult<Vec<(Value, Option<i64>)>> {
    let ids = IdSpace::for_hub(&policy.hub_name);
    let hub_id = ids.id("identity", "hub");
    let jurisdictions: std::collections::HashMap<i64, Jurisdiction> = store.jurisdictions()?.into_iter().map(|j| (j.id, j)).collect();
    let base = |created: Millis, modified: Millis, revoked: bool| Common {
        created_ms: created,
        modified_ms: modified,
        tlp: policy.tlp,
        created_by_ref: Some(hub_id.clone()),
        revoked,
        confidence: None,
    };
    let mut out = vec![(
        stix::identity(
            &hub_id,
            &policy.hub_name,
            "organization",
            Some("A ward hub: election infrastructure information sharing"),
            &Common { created_by_ref: None, ..base(0, 0, false) },
        ),
        None,
    )];
    let mut identities_done = std::collections::HashSet::new();
    let ever_published = campaigns_in_indicator_log(store)?;
    for campaign in store.campaigns(false)? {
        // A campaign that was published and then withdrawn (closed, merged, revoked) is still
        // exported, as a revocation; one that never met the bar is not, unless asked.
        let shared = campaign.published_ms.is_some() || campaign.confirmed_ms.is_some() || ever_published.contains(&campaign.id);
        if !shared && !policy.include_unpublished {
            continue;
        }
        let Some(detail) = store.campaign(campaign.id)? else { continue };
        // A drill's campaign (every member a drill jurisdiction) is nobody else's business.
        let is_drill = |id: &i64| jurisdictions.get(id).is_some_and(|j| j.drill);
        if !detail.affected.is_empty() && detail.affected.iter().all(|a| is_drill(&a.jurisdiction_id)) {
            continue;
        }
        let withdrawn = campaign.status != CampaignStatus::Open || campaign.merged_into.is_some();
        let modified = modified_ms(&campaign, now);
        let c = base(campaign.opened_ms, modified, withdrawn);
        let campaign_id = ids.id("campaign", &campaign.id.to_string());
        let description = format!("Seen by {} jurisdictions, {} sightings. {}", campaign.jurisdictions, campaign.sightings, campaign.annotation).trim().to_string();
        out.push((stix::campaign(&campaign_id, &campaign.name, &description, campaign.opened_ms, campaign.last_ms, &c), None));
        let mut refs = vec![campaign_id.clone()];
        for key in &campaign.keys {
            let Some((kind, value)) = key.split_once(':') else { continue };
            let Ok(ob) = Observable::from_kind(kind, value) else { continue };
            let (kind, value) = ob.kind_value();
            let ind = ids.id("indicator", &format!("{kind}|{value}"));
            let valid_from = campaign.published_ms.or(campaign.confirmed_ms).unwrap_or(campaign.opened_ms);
            let ci = Common { confidence: Some(policy.confidence), ..base(valid_from, modified, withdrawn) };
            let description = format!("Key of campaign \"{}\": one actor seen by several election offices", campaign.name);
            out.push((stix::indicator(&ind, &ob, &description, valid_from, None, &["ward-campaign-key"], &ci), None));
            out.push((stix::relationship(&ids.id("relationship", &format!("indicates|{ind}|{campaign_id}")), "indicates", &ind, &campaign_id, &c), None));
            refs.push(ind);
        }
        let mut ordinals = std::collections::HashMap::new();
        let mut affected = detail.affected.clone();
        affected.sort_by_key(|a| (a.first_ms, a.jurisdiction_id));
        for affected in &affected {
            let Some(j) = jurisdictions.get(&affected.jurisdiction_id) else { continue };
            if j.drill {
                continue;
            }
            let (identity_id, name) = jurisdiction_identity(&ids, j, policy.name_jurisdictions);
            if identities_done.insert(identity_id.clone()) {
                let description = if policy.name_jurisdictions { "An election office" } else { "An election office whose name is not shared" };
                let concerns = policy.name_jurisdictions.then_some(j.id);
                out.push((stix::identity(&identity_id, &name, "organization", Some(description), &base(0, 0, false)), concerns));
            }
            // One sighting per affected jurisdiction. Its id must not encode which jurisdiction
            // (the hub's id space is public): for an anonymous place it counts the places of
            // that kind and state in order of first sighting instead.
            let ordinal = ordinals.entry(identity_id.clone()).or_insert(0usize);
            *ordinal += 1;
            let sighting_id = ids.id("sighting", &format!("{campaign_id}|{identity_id}|{ordinal}"));
            let sc = base(affected.first_ms, modified.max(affected.last_ms), withdrawn);
            out.push((stix::sighting(&sighting_id, &campaign_id, &[identity_id], affected.sightings, affected.first_ms, affected.last_ms, &sc), Some(j.id)));
            refs.push(sighting_id);
        }
        out.push((stix::report(&ids.id("report", &format!("campaign|{}", campaign.id)), &format!("ward campaign {}: {}", campaign.id, campaign.name), modified, &refs, &c), None));
    }
    Ok(out)
}

/// Campaigns whose keys ever went into the all-sensor indicator feed.
fn campaigns_in_indicator_log(store: &dyn Store) -> StoreResult<std::collections::HashSet<i64>> {
    let mut out = std::collections::HashSet::new();
    let mut cursor = 0;
    loop {
        let page = store.indicators_since(cursor, 10_000)?;
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        out.extend(page.iter().filter(|i| i.action == "add").map(|i| i.campaign_id));
    }
    Ok(out)
}

/// A campaign's version: its latest change (last sighting, publication, confirmation, close).
fn modified_ms(c: &Campaign, now: Millis) -> Millis {
    [Some(c.last_ms), c.published_ms, c.confirmed_ms, c.closed_ms].into_iter().flatten().max().unwrap_or(c.opened_ms).min(now.max(c.opened_ms))
}
