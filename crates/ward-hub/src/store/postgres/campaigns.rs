//! Campaigns on PostgreSQL: the analyst's and the jurisdictions' views, and analyst changes.
//!
//! Changes lock the campaign rows they touch (`FOR UPDATE`, in id order for a merge) before
//! anything else, so an ingest extending the same campaign on another replica runs before or
//! after them, never in between.

use std::collections::BTreeMap;
use std::net::IpAddr;

use postgres::Row;

use super::ingest::{add_key, log, withdraw_indicators, MAX_LOCAL_SIGHTINGS};
use super::{collect, pg_text, Db, TxResult};
use crate::error::StoreError;
use crate::ingest::prefix_of;
use crate::model::*;
use crate::store::NotificationFilter;

/// Campaigns listed at most (newest activity first), as in SQLite.
const MAX_CAMPAIGNS_LISTED: i64 = 500;
/// Campaigns of one jurisdiction listed at most.
const MAX_JURISDICTION_CAMPAIGNS: i64 = 200;
/// Timeline entries shown per campaign.
const MAX_TIMELINE: i64 = 1000;
/// Notifications shown per campaign.
const MAX_CAMPAIGN_NOTIFICATIONS: usize = 1000;

pub(super) fn list(db: &mut Db<'_>, only_open: bool) -> TxResult<Vec<Campaign>> {
    let ids: Vec<i64> = db
        .query(
            "SELECT id FROM campaigns WHERE (NOT $1 OR status = 'open') ORDER BY last_ms DESC LIMIT $2",
            &[&only_open, &MAX_CAMPAIGNS_LISTED],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    ids.into_iter().map(|id| load(db, id)).collect()
}

fn load(db: &mut Db<'_>, id: i64) -> TxResult<Campaign> {
    let r = db.query_one(
        "SELECT id, name, status, opened_ms, last_ms, closed_ms, merged_into, annotation, \
         (SELECT count(*) FROM campaign_jurisdictions WHERE campaign_id = campaigns.id), \
         (SELECT coalesce(sum(sightings), 0)::bigint FROM campaign_jurisdictions WHERE campaign_id = campaigns.id), \
         published_ms, confirmed_ms \
         FROM campaigns WHERE id = $1",
        &[&id],
    )?;
    let status: String = r.try_get(2)?;
    let mut campaign = Campaign {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        status: CampaignStatus::parse(&status),
        opened_ms: r.try_get(3)?,
        last_ms: r.try_get(4)?,
        closed_ms: r.try_get(5)?,
        merged_into: r.try_get(6)?,
        annotation: r.try_get(7)?,
        jurisdictions: r.try_get(8)?,
        sightings: r.try_get(9)?,
        keys: Vec::new(),
        published_ms: r.try_get(10)?,
        confirmed_ms: r.try_get(11)?,
    };
    campaign.keys = keys(db, id)?;
    Ok(campaign)
}

fn keys(db: &mut Db<'_>, campaign_id: i64) -> TxResult<Vec<String>> {
    Ok(db
        .query("SELECT actor_key FROM campaign_keys WHERE campaign_id = $1 ORDER BY added_ms, actor_key", &[&campaign_id])?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?)
}

pub(super) fn detail(db: &mut Db<'_>, id: i64) -> TxResult<Option<CampaignDetail>> {
    if db.query_opt("SELECT id FROM campaigns WHERE id = $1", &[&id])?.is_none() {
        return Ok(None);
    }
    let campaign = load(db, id)?;
    let rows = db.query(
        "SELECT cj.jurisdiction_id, j.name, cj.first_ms, cj.last_ms, cj.sightings FROM campaign_jurisdictions cj \
         JOIN jurisdictions j ON j.id = cj.jurisdiction_id WHERE cj.campaign_id = $1 ORDER BY cj.first_ms, cj.jurisdiction_id",
        &[&id],
    )?;
    let affected = collect(rows, |r| {
        Ok(CampaignJurisdiction {
            jurisdiction_id: r.try_get(0)?,
            name: r.try_get(1)?,
            first_ms: r.try_get(2)?,
            last_ms: r.try_get(3)?,
            sightings: r.try_get(4)?,
        })
    })?;
    let rows = db.query(
        "SELECT ts_ms, kind, jurisdiction_id, detail FROM campaign_log WHERE campaign_id = $1 ORDER BY ts_ms, id LIMIT $2",
        &[&id, &MAX_TIMELINE],
    )?;
    let timeline = collect(rows, |r| {
        Ok(TimelineEntry { ts_ms: r.try_get(0)?, kind: r.try_get(1)?, jurisdiction_id: r.try_get(2)?, detail: r.try_get(3)? })
    })?;
    let filter = NotificationFilter { campaign_id: Some(id), limit: MAX_CAMPAIGN_NOTIFICATIONS, ..Default::default() };
    let notifications = super::outbox::notifications(db, &filter)?;
    Ok(Some(CampaignDetail { campaign, affected, timeline, notifications }))
}

pub(super) fn jurisdiction_campaigns(db: &mut Db<'_>, jurisdiction_id: i64) -> TxResult<Vec<JurisdictionCampaignView>> {
    let ids: Vec<i64> = db
        .query(
            "SELECT cj.campaign_id FROM campaign_jurisdictions cj JOIN campaigns c ON c.id = cj.campaign_id \
             WHERE cj.jurisdiction_id = $1 AND c.status <> 'merged' ORDER BY cj.last_ms DESC LIMIT $2",
            &[&jurisdiction_id, &MAX_JURISDICTION_CAMPAIGNS],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for id in ids {
        if let Some(v) = jurisdiction_view(db, id, jurisdiction_id)? {
            out.push(v);
        }
    }
    Ok(out)
}

fn row_sighting(r: &Row) -> Result<LocalSighting, postgres::Error> {
    Ok(LocalSighting {
        remote_ip: r.try_get(0)?,
        local_ip: r.try_get(1)?,
        signature: r.try_get(2)?,
        first_ms: r.try_get(3)?,
        last_ms: r.try_get(4)?,
        count: r.try_get(5)?,
    })
}

/// The per-jurisdiction view: its own sightings, a count of the others, what to block.
pub(super) fn jurisdiction_view(db: &mut Db<'_>, campaign_id: i64, jurisdiction_id: i64) -> TxResult<Option<JurisdictionCampaignView>> {
    let row = db.query_opt(
        "SELECT c.name, c.status, cj.first_ms, cj.last_ms FROM campaign_jurisdictions cj JOIN campaigns c ON c.id = cj.campaign_id \
         WHERE cj.campaign_id = $1 AND cj.jurisdiction_id = $2",
        &[&campaign_id, &jurisdiction_id],
    )?;
    let Some(row) = row else {
        return Ok(None);
    };
    let (name, status, first_ms, last_ms): (String, String, Millis, Millis) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?);
    let total: i64 = db.query_one("SELECT count(*) FROM campaign_jurisdictions WHERE campaign_id = $1", &[&campaign_id])?.try_get(0)?;
    let keys = keys(db, campaign_id)?;
    let mut ips = Vec::new();
    let mut nets = Vec::new();
    let mut asns: Vec<i64> = Vec::new();
    let mut prefixes = BTreeMap::new();
    for key in &keys {
        if let Some(ip) = key.strip_prefix("ip:") {
            ips.push(ip.to_string());
            if let Ok(addr) = ip.parse::<IpAddr>() {
                prefixes.insert(prefix_of(addr), ());
            }
        } else if let Some(net) = key.strip_prefix("net:") {
            nets.push(net.to_string());
            prefixes.insert(net.to_string(), ());
        } else if let Some(asn) = key.strip_prefix("asn:AS") {
            if let Ok(n) = asn.parse::<i64>() {
                asns.push(n);
            }
        }
    }
    let mut sightings = Vec::new();
    if !prefixes.is_empty() || !asns.is_empty() {
        let prefixes: Vec<String> = prefixes.into_keys().collect();
        let rows = db.query(
            "SELECT remote_ip, local_ip, signature, min(ts_ms), max(ts_ms), count(*) FROM events \
             WHERE jurisdiction_id = $1 AND remote_prefix IS NOT NULL AND ( \
               (remote_prefix = ANY($2) AND (remote_ip = ANY($3) OR remote_prefix = ANY($4))) OR remote_asn = ANY($5)) \
             GROUP BY remote_ip, local_ip, signature ORDER BY count(*) DESC LIMIT $6",
            &[&jurisdiction_id, &prefixes, &ips, &nets, &asns, &MAX_LOCAL_SIGHTINGS],
        )?;
        sightings = collect(rows, row_sighting)?;
    }
    let block = keys.iter().map(|k| k.split_once(':').map(|(_, v)| v.to_string()).unwrap_or_else(|| k.clone())).collect();
    Ok(Some(JurisdictionCampaignView {
        campaign_id,
        name,
        status: CampaignStatus::parse(&status),
        first_ms,
        last_ms,
        other_jurisdictions: (total - 1).max(0),
        sightings,
        block,
    }))
}

pub(super) fn rename(db: &mut Db<'_>, id: i64, name: &str, now: Millis) -> TxResult<()> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(StoreError::Invalid("campaign name must be 1 to 200 characters".into()).into());
    }
    check_text("campaign name", name, false).map_err(StoreError::Invalid)?;
    if db.execute("UPDATE campaigns SET name = $1 WHERE id = $2", &[&pg_text(name), &id])? == 0 {
        return Err(StoreError::NotFound(format!("campaign {id}")).into());
    }
    log(db, id, now, "renamed", None, name)
}

pub(super) fn annotate(db: &mut Db<'_>, id: i64, note: &str, now: Millis) -> TxResult<()> {
    if note.len() > 10_000 {
        return Err(StoreError::Invalid("annotation longer than 10000 bytes".into()).into());
    }
    check_text("campaign note", note, true).map_err(StoreError::Invalid)?;
    if db.execute("UPDATE campaigns SET annotation = $1 WHERE id = $2", &[&pg_text(note), &id])? == 0 {
        return Err(StoreError::NotFound(format!("campaign {id}")).into());
    }
    log(db, id, now, "annotated", None, note)
}

pub(super) fn close(db: &mut Db<'_>, id: i64, now: Millis) -> TxResult<()> {
    if db.execute("UPDATE campaigns SET status = 'closed', closed_ms = $1 WHERE id = $2 AND status = 'open'", &[&now, &id])? == 0 {
        return Err(StoreError::NotFound(format!("open campaign {id}")).into());
    }
    withdraw_indicators(db, id, now)?;
    log(db, id, now, "closed", None, "")
}

pub(super) fn merge(db: &mut Db<'_>, into: i64, from: i64, now: Millis) -> TxResult<()> {
    if into == from {
        return Err(StoreError::Invalid("cannot merge a campaign into itself".into()).into());
    }
    // Both rows locked, in id order, before anything changes.
    let mut both = [into, from];
    both.sort_unstable();
    for id in both {
        let status: Option<String> = db.query_opt("SELECT status FROM campaigns WHERE id = $1 FOR UPDATE", &[&id])?.map(|r| r.try_get(0)).transpose()?;
        if status.as_deref() != Some("open") {
            return Err(StoreError::NotFound(format!("open campaign {id}")).into());
        }
    }
    let moved = keys(db, from)?;
    // What every sensor already has stays published: merging a published campaign publishes the
    // merged one (a merge never lowers what the feed carries by itself).
    let publish_into = super::trust::published(db, from)? && !super::trust::published(db, into)?;
    withdraw_indicators(db, from, now)?;
    for key in &moved {
        add_key(db, into, key, now)?;
    }
    db.execute(
        "INSERT INTO campaign_jurisdictions (campaign_id, jurisdiction_id, first_ms, last_ms, sightings) \
         SELECT $1, jurisdiction_id, first_ms, last_ms, sightings FROM campaign_jurisdictions WHERE campaign_id = $2 \
         ON CONFLICT (campaign_id, jurisdiction_id) DO UPDATE SET first_ms = LEAST(campaign_jurisdictions.first_ms, excluded.first_ms), \
         last_ms = GREATEST(campaign_jurisdictions.last_ms, excluded.last_ms), sightings = campaign_jurisdictions.sightings + excluded.sightings",
        &[&into, &from],
    )?;
    db.execute("UPDATE campaigns SET status = 'merged', merged_into = $1, closed_ms = $2 WHERE id = $3", &[&into, &now, &from])?;
    if publish_into {
        super::trust::publish(db, into, now, &format!("campaign {from}, published, merged into this one"))?;
    }
    log(db, into, now, "merged", None, &format!("campaign {from} merged into this one"))?;
    log(db, from, now, "merged", None, &format!("merged into campaign {into}"))
}
