//! The state roll-up: a state sees its counties. Jurisdictions form a hierarchy (a county or
//! city belongs to the state registered with the same two-letter code: `parent_id`), and the
//! hub uses it twice:
//!
//! * **Warnings.** When a county is targeted, or a campaign it is in escalates, the state's
//!   contacts are told once per campaign event, not once per county: the store enqueues one
//!   roll-up per state contact with a key unique per campaign event ([`RollupPlan`]), and the
//!   message is rendered when sent, so counties hit in the same moment arrive as one list.
//!   Counties that join later come as digests (at most one per `digest_interval`, none while
//!   an earlier roll-up is still pending). [`deliver`] renders and sends them.
//! * **Reading.** A state's users read their counties' campaigns, alerts, notifications,
//!   sensors and pages ([`crate::auth::UserAuth::can_read`] knows the user's counties);
//!   [`state_campaigns`] and [`state_campaign`] put a state's view of a campaign together:
//!   every county of the state it hit, by name, with what hit each, and a count (never names)
//!   of jurisdictions outside the state. A county still sees no other county, and a state no
//!   other state's counties.
//!
//! The store holds the SQL (`enqueue_rollup` in both backends); this module holds the policy.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use crate::model::{CampaignStatus, Jurisdiction, JurisdictionCampaignView, LocalSighting, Millis, NotificationJob};
use crate::notify::message::MAX_LISTED;
use crate::state::HubState;
use crate::store::{AttemptOutcome, Store, StoreResult};

/// The first roll-up of a campaign to a state.
pub const KIND_TARGETED: &str = "state_targeted";
/// A digest: more of the state's counties joined the campaign.
pub const KIND_GREW: &str = "state_grew";
/// A campaign that hit the state's counties escalated.
pub const KIND_ESCALATED: &str = "state_escalated";
/// Event keys of digests are `state-update:N`.
pub const DIGEST_KEY: &str = "state-update";
/// Every roll-up's event key starts with this (the digest logic counts them).
pub const KEY_PREFIX: &str = "state";
/// Counties named in one message at most; the rest are counted.
const MAX_NAMED: usize = 25;
/// Campaigns in a state's list at most (as a jurisdiction's list).
const MAX_CAMPAIGNS: usize = 200;

/// What the state hears about one of its counties' campaign events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupPlan {
    pub kind: &'static str,
    pub key: String,
    /// When the key already exists (the state already heard of the campaign), a digest follows.
    pub digest_after_first: bool,
}

impl RollupPlan {
    /// The roll-up for a member jurisdiction's notification `kind`/`event_key`; `None` when the
    /// event is not one the state hears about (a "campaign grew" digest to members).
    pub fn for_member_event(kind: &str, event_key: &str) -> Option<RollupPlan> {
        match kind {
            "targeted" => Some(RollupPlan { kind: KIND_TARGETED, key: KEY_PREFIX.to_string(), digest_after_first: true }),
            "escalated" => Some(RollupPlan { kind: KIND_ESCALATED, key: format!("{KEY_PREFIX}-{event_key}"), digest_after_first: false }),
            _ => None,
        }
    }
}

/// Whether a notification is a state roll-up.
pub fn is_rollup_kind(kind: &str) -> bool {
    matches!(kind, KIND_TARGETED | KIND_GREW | KIND_ESCALATED | crate::ack::KIND_STATE_UNACKED)
}

/// One county (or city) of the state in a campaign.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountyInCampaign {
    pub jurisdiction_id: i64,
    pub name: String,
    pub first_ms: Millis,
    pub last_ms: Millis,
    pub events: i64,
    /// What hit it (as its own view shows it).
    pub sightings: Vec<LocalSighting>,
}

/// A state's view of one campaign.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateCampaignView {
    pub campaign_id: i64,
    pub name: String,
    pub status: CampaignStatus,
    pub first_ms: Millis,
    pub last_ms: Millis,
    pub state_id: i64,
    /// What hit the state's own networks, when they were hit too.
    pub own: Option<JurisdictionCampaignView>,
    /// The state's counties and cities the campaign hit, first hit first.
    pub counties: Vec<CountyInCampaign>,
    /// Jurisdictions outside the state that saw the same actor (a count, never names).
    pub other_jurisdictions: i64,
    /// The actor's addresses and prefixes to block.
    pub block: Vec<String>,
}

/// Puts the state's view together from its own view and its counties' views of one campaign
/// (each a [`JurisdictionCampaignView`], so a state learns of a county exactly what the county
/// itself sees).
fn assemble(state_id: i64, own: Option<JurisdictionCampaignView>, counties: Vec<(&Jurisdiction, JurisdictionCampaignView)>) -> Option<StateCampaignView> {
    let any = own.as_ref().or(counties.first().map(|(_, v)| v))?.clone();
    // Each member's count of "others" is the campaign's size less one.
    let size = any.other_jurisdictions + 1;
    let members = counties.len() as i64 + i64::from(own.is_some());
    let mut first = own.as_ref().map_or(Millis::MAX, |v| v.first_ms);
    let mut last = own.as_ref().map_or(Millis::MIN, |v| v.last_ms);
    let mut out: Vec<CountyInCampaign> = counties
        .into_iter()
        .map(|(j, v)| {
            first = first.min(v.first_ms);
            last = last.max(v.last_ms);
            CountyInCampaign {
                jurisdiction_id: j.id,
                name: j.name.clone(),
                first_ms: v.first_ms,
                last_ms: v.last_ms,
                events: v.sightings.iter().map(|s| s.count).sum(),
                sightings: v.sightings,
            }
        })
        .collect();
    out.sort_by(|a, b| (a.first_ms, &a.name).cmp(&(b.first_ms, &b.name)));
    Some(StateCampaignView {
        campaign_id: any.campaign_id,
        name: any.name,
        status: any.status,
        first_ms: first,
        last_ms: last,
        state_id,
        own,
        counties: out,
        other_jurisdictions: (size - members).max(0),
        block: any.block,
    })
}

/// The state's view of one campaign; `None` when the campaign hit neither the state nor any of
/// its counties (or does not exist).
pub fn state_campaign(store: &dyn Store, campaign_id: i64, state_id: i64, children: &[Jurisdiction]) -> StoreResult<Option<StateCampaignView>> {
    let own = store.jurisdiction_campaign(campaign_id, state_id)?;
    let mut counties = Vec::new();
    for child in children {
        if let Some(v) = store.jurisdiction_campaign(campaign_id, child.id)? {
            counties.push((child, v));
        }
    }
    Ok(assemble(state_id, own, counties))
}

/// Every campaign that hit the state or one of its counties, the most recent first.
pub fn state_campaigns(store: &dyn Store, state_id: i64, children: &[Jurisdiction]) -> StoreResult<Vec<StateCampaignView>> {
    let mut own: BTreeMap<i64, JurisdictionCampaignView> = store.jurisdiction_campaigns(state_id)?.into_iter().map(|v| (v.campaign_id, v)).collect();
    let mut by_campaign: BTreeMap<i64, Vec<(&Jurisdiction, JurisdictionCampaignView)>> = BTreeMap::new();
    for child in children {
        for v in store.jurisdiction_campaigns(child.id)? {
            by_campaign.entry(v.campaign_id).or_default().push((child, v));
        }
    }
    let mut ids: Vec<i64> = own.keys().chain(by_campaign.keys()).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out: Vec<StateCampaignView> =
        ids.into_iter().filter_map(|id| assemble(state_id, own.remove(&id), by_campaign.remove(&id).unwrap_or_default())).collect();
    out.sort_by(|a, b| b.last_ms.cmp(&a.last_ms).then(b.campaign_id.cmp(&a.campaign_id)));
    out.truncate(MAX_CAMPAIGNS);
    Ok(out)
}

/// The words of a roll-up: which of the state's counties were hit, by what, from where, what
/// to block, and a count of jurisdictions outside the state.
pub fn render(config: &crate::HubConfig, state: &Jurisdiction, view: &StateCampaignView, event_kind: &str, notification_id: i64) -> crate::notify::message::Message {
    let notify = &config.notify;
    let tlp = notify.tlp.as_str();
    let n = view.counties.len();
    let places = match n {
        1 => "1 of your counties".to_string(),
        n => format!("{n} of your counties"),
    };
    let headline = match event_kind {
        KIND_ESCALATED => format!("a campaign that hit {places} has escalated"),
        KIND_GREW => format!("a campaign has now hit {places}"),
        crate::ack::KIND_STATE_UNACKED => "a warning to one of your counties has not been acknowledged".to_string(),
        _ => format!("an attacker seen across jurisdictions has hit {places}"),
    };
    let mut named: Vec<String> = view.counties.iter().take(MAX_NAMED).map(|c| c.name.clone()).collect();
    if n > MAX_NAMED {
        named.push(format!("and {} more", n - MAX_NAMED));
    }
    let remotes: std::collections::BTreeSet<&str> =
        view.counties.iter().flat_map(|c| c.sightings.iter().map(|s| s.remote_ip.as_str())).chain(view.own.iter().flat_map(|o| o.sightings.iter().map(|s| s.remote_ip.as_str()))).collect();
    let remote_list: Vec<&str> = remotes.into_iter().take(MAX_LISTED).collect();
    let block: Vec<&str> = view.block.iter().map(String::as_str).take(MAX_LISTED).collect();
    let lines: Vec<String> = view
        .counties
        .iter()
        .take(MAX_NAMED)
        .map(|c| format!("  - {}: {} events, {} to {} (UTC)", c.name, c.events, crate::model::fmt_ms(c.first_ms), crate::model::fmt_ms(c.last_ms)))
        .collect();
    let others = match view.other_jurisdictions {
        0 => "no jurisdiction outside your state".to_string(),
        1 => "1 jurisdiction outside your state".to_string(),
        k => format!("{k} jurisdictions outside your state"),
    };
    let link = crate::notify::message::details_link(config, view.campaign_id);
    let subject = format!("[{tlp}] {}: {headline} ({})", state.name, named.join(", "));
    let text = format!(
        "{tlp}\n\n{hub} state roll-up for {name}: {headline}.\n\n\
         Counties and cities hit:\n{lines}{more}\n\
         {own}From: {from}\n\
         The same actor was seen at {others}.\n\n\
         What to do now:\n\
         1. Make sure each county above has blocked: {block}\n\
         2. Tell the state's other counties to block the same addresses before they are reached.\n\
         3. Call {phone} to coordinate.\n\
         {link}\nCampaign: {campaign} (#{id}). Share according to {tlp}.\n",
        hub = notify.hub_name,
        name = state.name,
        lines = lines.join("\n"),
        more = if n > MAX_NAMED { format!("\n  … and {} more", n - MAX_NAMED) } else { String::new() },
        own = if view.own.is_some() { "Your state's own networks were hit too.\n" } else { "" },
        from = if remote_list.is_empty() { "(see campaign)".into() } else { remote_list.join(", ") },
        block = if block.is_empty() { "(see campaign)".into() } else { block.join(", ") },
        phone = notify.phone,
        campaign = view.name,
        id = view.campaign_id,
    );
    let json = serde_json::json!({
        "id": notification_id,
        "type": format!("ward.campaign.{event_kind}"),
        "tlp": tlp,
        "campaign": { "id": view.campaign_id, "name": view.name, "status": view.status },
        "jurisdiction": { "id": state.id, "name": state.name },
        "counties": view.counties.iter().take(MAX_NAMED).map(|c| serde_json::json!({
            "id": c.jurisdiction_id, "name": c.name, "events": c.events,
            "first": crate::model::fmt_ms(c.first_ms), "last": crate::model::fmt_ms(c.last_ms),
        })).collect::<Vec<_>>(),
        "counties_total": n,
        "state_hit": view.own.is_some(),
        "remote_addresses": remote_list,
        "other_jurisdictions": view.other_jurisdictions,
        "actions": { "block": block, "call": notify.phone },
        "text": text,
    });
    crate::notify::message::Message {
        subject,
        text,
        json,
        severity: if event_kind == KIND_ESCALATED || event_kind == crate::ack::KIND_STATE_UNACKED { 9 } else { 7 },
        event_kind: event_kind.to_string(),
        campaign_id: view.campaign_id,
        remote: remote_list.first().map(|s| s.to_string()),
        local: None,
        other_jurisdictions: view.other_jurisdictions,
    }
}

/// Sends one roll-up: the state's current view of the campaign, rendered now.
pub async fn deliver(state: &HubState, channels: &crate::notify::Channels, job: NotificationJob) -> (i64, AttemptOutcome, Millis) {
    let started = Instant::now();
    let (campaign_id, state_id) = (job.campaign_id, job.jurisdiction_id);
    let context = state
        .store_call(move |s| {
            let Some(j) = s.jurisdiction(state_id)? else { return Ok(None) };
            let children = s.jurisdiction_children(state_id)?;
            Ok(state_campaign(s, campaign_id, state_id, &children)?.map(|v| {
                // A drill state, or a drill county under a real state (same code): a drill.
                let drill = j.drill || v.counties.iter().any(|c| children.iter().any(|k| k.id == c.jurisdiction_id && k.drill));
                (j, v, drill)
            }))
        })
        .await;
    let result = match context {
        Ok(Some((j, view, drill))) => {
            let mut msg = render(&state.config, &j, &view, &job.event_kind, job.id);
            if job.event_kind == crate::ack::KIND_STATE_UNACKED {
                crate::ack::name_unacked_county(state, job.id, &mut msg).await;
            }
            let msg = msg.mark_drill_if(drill);
            let msg = crate::ack::with_ack_link(state, &job, msg).await;
            channels.send(&job.contact, &msg).await.map(|detail| (detail, msg.json.to_string()))
        }
        Ok(None) => Err("campaign or state no longer exists".to_string()),
        Err(e) => Err(format!("cannot load campaign: {e}")),
    };
    crate::notify::finish_attempt(state, &job, result, started, "state roll-up delivery failed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::JurisdictionKind;

    fn county(id: i64, name: &str) -> Jurisdiction {
        Jurisdiction { id, name: name.into(), kind: JurisdictionKind::County, state: Some("OH".into()), parent_id: Some(1), home_net: String::new(), created_ms: 0, drill: false }
    }

    fn view(campaign_id: i64, others: i64, first: Millis, ip: &str) -> JurisdictionCampaignView {
        JurisdictionCampaignView {
            campaign_id,
            name: "ip 198.51.100.7".into(),
            status: CampaignStatus::Open,
            first_ms: first,
            last_ms: first + 10,
            other_jurisdictions: others,
            sightings: vec![LocalSighting { remote_ip: ip.into(), local_ip: Some("10.0.0.1".into()), signature: None, first_ms: first, last_ms: first + 10, count: 3 }],
            block: vec!["198.51.100.7".into()],
        }
    }

    #[test]
    fn plans_cover_targeting_and_escalation_only() {
        assert_eq!(RollupPlan::for_member_event("targeted", "targeted").unwrap().key, "state");
        assert_eq!(RollupPlan::for_member_event("escalated", "escalated:2").unwrap().key, "state-escalated:2");
        assert!(RollupPlan::for_member_event("grew", "update").is_none());
        assert!(RollupPlan::for_member_event("retrohunt", "retrohunt:4").is_none());
        for k in [KIND_TARGETED, KIND_GREW, KIND_ESCALATED] {
            assert!(is_rollup_kind(k));
        }
        assert!(!is_rollup_kind("targeted"));
    }

    #[test]
    fn the_state_counts_only_jurisdictions_outside_it() {
        // A campaign of 5 jurisdictions: 3 counties of the state, 2 elsewhere.
        let (a, b, c) = (county(2, "Franklin County"), county(3, "Licking County"), county(4, "Adams County"));
        let v = assemble(1, None, vec![(&a, view(9, 4, 300, "198.51.100.7")), (&b, view(9, 4, 100, "198.51.100.7")), (&c, view(9, 4, 200, "198.51.100.8"))]).unwrap();
        assert_eq!(v.other_jurisdictions, 2);
        assert_eq!(v.counties.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["Licking County", "Adams County", "Franklin County"], "first hit first");
        assert_eq!((v.first_ms, v.last_ms), (100, 310));
        assert_eq!(v.counties[0].events, 3);
        // The state's own networks hit as well: one more member inside the state.
        let own = view(9, 4, 50, "198.51.100.7");
        let v = assemble(1, Some(own), vec![(&a, view(9, 4, 300, "198.51.100.7"))]).unwrap();
        assert_eq!(v.other_jurisdictions, 3);
        assert!(assemble(1, None, vec![]).is_none());
    }

    #[test]
    fn a_roll_up_names_counties_and_caps_the_list() {
        let config = crate::HubConfig::default();
        let state = Jurisdiction { id: 1, name: "Ohio".into(), kind: JurisdictionKind::State, state: Some("OH".into()), parent_id: None, home_net: String::new(), created_ms: 0, drill: false };
        let counties: Vec<Jurisdiction> = (0..40).map(|i| county(10 + i, &format!("County {i:02}"))).collect();
        let views = counties.iter().map(|c| (c, view(9, 41, 100 + c.id, "198.51.100.7"))).collect();
        let v = assemble(1, None, views).unwrap();
        let m = render(&config, &state, &v, KIND_TARGETED, 77);
        assert!(m.subject.contains("40 of your counties") && m.subject.contains("County 00") && m.subject.contains("and 15 more"), "{}", m.subject);
        assert!(m.text.contains("2 jurisdictions outside your state"), "{}", m.text);
        assert!(m.text.contains("198.51.100.7"));
        assert_eq!(m.json["counties"].as_array().unwrap().len(), MAX_NAMED);
        assert_eq!(m.json["counties_total"], 40);
        assert_eq!(m.json["type"], "ward.campaign.state_targeted");
        assert_eq!(m.json["id"], 77);
    }
}
