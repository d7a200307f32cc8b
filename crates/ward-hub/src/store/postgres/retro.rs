//! The retro-hunt on PostgreSQL: the counterpart of `crate::retro::sql`, same rules (see the
//! `crate::retro` module note), same plan-then-commit steps.
//!
//! Differences: contact records hold `inet` addresses in a table partitioned by UTC day
//! (migration 0410; partitions are made and dropped at the end of this file), and a network is
//! searched as the range of full-length addresses from its first to its last (each partition's
//! primary-key btree serves it; the hunt window prunes partitions);
//! the domain search reads the stored `dns` events of the window and matches their names here,
//! in Rust (a JSON body PostgreSQL's `jsonb` would refuse, with a `\u0000`, cannot stop a hunt);
//! rows are streamed, not collected. Analyst indicators and expiries take the indicator log's
//! lock first, so two replicas cannot both add one value; the hunt's commit locks the cursor
//! row, so two replicas cannot both act on one indicator.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use postgres::Row;

use super::{collect, json_err, pg_text, Db, Params, TxResult};
use crate::error::StoreError;
use crate::model::{fmt_ms, Indicator, Millis};
use crate::retro::{
    ip_from_bytes, net_range, proto_name, AnalystIndicator, HitDetail, HitDraft, HitIndicator, HuntOutcome, HuntPlan, HuntWindow, LatePlan,
    NewIndicator, RetroHit, Target, EVENT_KIND, MAX_LATE_INDICATORS, MAX_LISTED, MAX_TRACKED,
};

const HOUR_MS: Millis = 3_600_000;
/// Analyst indicators withdrawn per expiry pass at most (as in SQLite; the next pass goes on).
const MAX_EXPIRED_PER_PASS: i64 = 1000;

impl Db<'_> {
    /// Runs a query and hands each row to `f` as it arrives (no `Vec` of every row).
    fn for_each_row(&mut self, sql: &str, params: Params<'_>, mut f: impl FnMut(&Row) -> TxResult<()>) -> TxResult<()> {
        let st = self.statement(sql)?;
        let mut rows = self.tx.query_raw(&st, params.iter().copied())?;
        while let Some(row) = rows.next()? {
            f(&row)?;
        }
        Ok(())
    }
}

/// Aggregates matching rows per jurisdiction (as `crate::retro`'s own).
#[derive(Default)]
struct Agg {
    first_ms: Millis,
    last_ms: Millis,
    records: i64,
    pkts: i64,
    bytes: i64,
    locals: BTreeSet<String>,
    remotes: BTreeSet<String>,
    services: BTreeSet<String>,
    names: BTreeSet<String>,
}

impl Agg {
    fn add(&mut self, first: Millis, last: Millis, pkts: i64, bytes: i64) {
        if self.records == 0 {
            self.first_ms = first;
            self.last_ms = last;
        } else {
            self.first_ms = self.first_ms.min(first);
            self.last_ms = self.last_ms.max(last);
        }
        self.records += 1;
        self.pkts = self.pkts.saturating_add(pkts);
        self.bytes = self.bytes.saturating_add(bytes);
    }

    fn into_draft(self, jurisdiction_id: i64) -> HitDraft {
        let take = |s: BTreeSet<String>| s.into_iter().take(MAX_LISTED).collect::<Vec<_>>();
        let total = self.locals.len();
        HitDraft {
            jurisdiction_id,
            first_ms: self.first_ms,
            last_ms: self.last_ms,
            records: self.records,
            pkts: self.pkts,
            bytes: self.bytes,
            detail: HitDetail {
                local_hosts: take(self.locals),
                local_hosts_total: total,
                remote_addresses: take(self.remotes),
                services: take(self.services),
                names: take(self.names),
            },
        }
    }
}

fn insert_capped(set: &mut BTreeSet<String>, v: String, cap: usize) {
    if set.len() < cap {
        set.insert(v);
    }
}

fn row_indicator(r: &Row) -> Result<Indicator, postgres::Error> {
    Ok(Indicator { seq: r.try_get(0)?, action: r.try_get(1)?, kind: r.try_get(2)?, value: r.try_get(3)?, campaign_id: r.try_get(4)?, ts_ms: r.try_get(5)? })
}

pub(super) fn add_indicator(db: &mut Db<'_>, new: &NewIndicator, user_id: i64, now: Millis) -> TxResult<AnalystIndicator> {
    db.lock_indicator_log()?;
    let active = db.query_opt(
        "SELECT id FROM analyst_indicators WHERE kind = $1 AND value = $2 AND removed_ms IS NULL AND (expires_ms IS NULL OR expires_ms > $3)",
        &[&new.kind, &pg_text(&new.value), &now],
    )?;
    if let Some(row) = active {
        let id: i64 = row.try_get(0)?;
        return Err(StoreError::Conflict(format!("{} {} is already an analyst indicator (#{id})", new.kind, new.value)).into());
    }
    let seq: i64 = db
        .query_one("INSERT INTO indicators (action, kind, value, campaign_id, ts_ms) VALUES ('add', $1, $2, 0, $3) RETURNING seq", &[&new.kind, &pg_text(&new.value), &now])?
        .try_get(0)?;
    let id: i64 = db
        .query_one(
            "INSERT INTO analyst_indicators (kind, value, description, severity, expires_ms, created_by, created_ms, add_seq) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            &[&new.kind, &pg_text(&new.value), &pg_text(&new.description), &new.severity, &new.expires_ms, &user_id, &now, &seq],
        )?
        .try_get(0)?;
    Ok(AnalystIndicator {
        id,
        seq,
        kind: new.kind.clone(),
        value: new.value.clone(),
        description: new.description.clone(),
        severity: new.severity.clone(),
        expires: new.expires_ms.map(fmt_ms),
        created_by: user_id,
        created: fmt_ms(now),
    })
}

/// Marks every analyst indicator past its expiry removed (a `remove` is logged unless another
/// source still holds the value); returns how many expired.
pub(super) fn expire_indicators(db: &mut Db<'_>, now: Millis) -> TxResult<usize> {
    let due = db.query(
        "SELECT id, kind, value FROM analyst_indicators WHERE removed_ms IS NULL AND expires_ms IS NOT NULL AND expires_ms <= $1 ORDER BY id LIMIT $2",
        &[&now, &MAX_EXPIRED_PER_PASS],
    )?;
    if due.is_empty() {
        return Ok(0);
    }
    db.lock_indicator_log()?;
    let mut expired = 0;
    for row in &due {
        let (id, kind, value): (i64, String, String) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        // Another replica may have expired it since the select above (it held the lock then).
        if db.execute("UPDATE analyst_indicators SET removed_ms = $1 WHERE id = $2 AND removed_ms IS NULL", &[&now, &id])? == 0 {
            continue;
        }
        // Another source (a campaign, a feed) may still hold the value: then it stays.
        super::feeds::log_remove(db, &kind, &value, 0, super::feeds::Holder::Analyst(id), now)?;
        expired += 1;
    }
    Ok(expired)
}

fn cursor(db: &mut Db<'_>) -> TxResult<i64> {
    Ok(db.query_one("SELECT seq FROM retro_cursor WHERE id = 1", &[])?.try_get(0)?)
}

/// Whether the indicator was removed again (campaign closed, expiry) after it was added.
fn withdrawn(db: &mut Db<'_>, ind: &Indicator) -> TxResult<bool> {
    Ok(db
        .query_opt(
            "SELECT seq FROM indicators WHERE seq > $1 AND action = 'remove' AND kind = $2 AND value = $3 AND campaign_id = $4 LIMIT 1",
            &[&ind.seq, &ind.kind, &ind.value, &ind.campaign_id],
        )?
        .is_some())
}

/// Finds the next indicator after the cursor and searches for it (read-only).
pub(super) fn plan_next(db: &mut Db<'_>, window: &HuntWindow) -> TxResult<Option<HuntPlan>> {
    let cursor_before = cursor(db)?;
    let next = db.query_opt("SELECT seq, action, kind, value, campaign_id, ts_ms FROM indicators WHERE seq > $1 ORDER BY seq LIMIT 1", &[&cursor_before])?;
    let Some(row) = next else { return Ok(None) };
    let indicator = row_indicator(&row)?;
    let started = Instant::now();
    let mut plan = HuntPlan { cursor_before, indicator, hits: Vec::new(), rows_scanned: 0, search: Duration::ZERO };
    if plan.indicator.action != "add" || withdrawn(db, &plan.indicator)? {
        return Ok(Some(plan));
    }
    search(db, window, None, &mut plan)?;
    plan.search = started.elapsed();
    Ok(Some(plan))
}

fn search(db: &mut Db<'_>, window: &HuntWindow, only: Option<i64>, plan: &mut HuntPlan) -> TxResult<()> {
    let ts = plan.indicator.ts_ms;
    match Target::from_log(&plan.indicator.kind, &plan.indicator.value) {
        Some(Target::Net(ip, len)) => search_net(db, ip, len, ts, window, only, plan),
        Some(Target::Domain(d)) => search_domain(db, &d, ts, window, only, plan),
        None => Ok(()),
    }
}

/// The network search: contact records with a remote address from `$1` to `$2` (a network's
/// first and last host address), of hours `$3..=$4` (the window: partitions outside it are
/// pruned), that began before `$5`, optionally of one jurisdiction (`$6`). Each partition's
/// primary key (remote first) serves the address range.
const NET_SEARCH: &str = "SELECT jurisdiction_id, remote, local, port, proto, inbound, first_ms, last_ms, pkts, bytes FROM contact_records \
     WHERE remote BETWEEN $1 AND $2 AND hour >= $3 AND hour <= $4 AND first_ms < $5 AND ($6::bigint IS NULL OR jurisdiction_id = $6)";

/// Contact records with a remote address inside `ip/len` that began before `before_ms`.
fn search_net(db: &mut Db<'_>, ip: IpAddr, len: u8, before_ms: Millis, window: &HuntWindow, only: Option<i64>, plan: &mut HuntPlan) -> TxResult<()> {
    let (lo, hi) = net_range(ip, len);
    let (Some(lo), Some(hi)) = (ip_from_bytes(&lo), ip_from_bytes(&hi)) else { return Ok(()) };
    let mut per: BTreeMap<i64, Agg> = BTreeMap::new();
    let mut scanned = 0;
    db.for_each_row(
        NET_SEARCH,
        &[&lo, &hi, &window.contacts_from_ms.div_euclid(HOUR_MS), &before_ms.div_euclid(HOUR_MS), &before_ms, &only],
        |r| {
            scanned += 1;
            let j: i64 = r.try_get(0)?;
            let agg = per.entry(j).or_default();
            agg.add(r.try_get(6)?, r.try_get(7)?, r.try_get(8)?, r.try_get(9)?);
            let (remote, local): (IpAddr, IpAddr) = (r.try_get(1)?, r.try_get(2)?);
            insert_capped(&mut agg.locals, local.to_string(), MAX_TRACKED);
            insert_capped(&mut agg.remotes, remote.to_string(), MAX_LISTED);
            let (port, proto, inbound): (i32, i32, bool) = (r.try_get(3)?, r.try_get(4)?, r.try_get(5)?);
            let svc = format!("{}/{port} {}", proto_name(proto as u8), if inbound { "inbound" } else { "outbound" });
            insert_capped(&mut agg.services, svc, MAX_LISTED);
            Ok(())
        },
    )?;
    plan.rows_scanned += scanned;
    plan.hits = per.into_iter().map(|(j, a)| a.into_draft(j)).collect();
    Ok(())
}

/// The name a `dns` event asked for or answered, lower case without trailing dots.
fn dns_name(body: &serde_json::Value) -> String {
    let dns = &body["dns"];
    let name = dns["rrname"].as_str().or_else(|| dns["queries"][0]["rrname"].as_str()).unwrap_or("");
    name.trim_end_matches('.').to_lowercase()
}

/// Stored `dns` events that looked up the domain or a subdomain of it before `before_ms`. The
/// local host is the client: `src_ip` of a query, `dest_ip` of an answer.
fn search_domain(db: &mut Db<'_>, domain: &str, before_ms: Millis, window: &HuntWindow, only: Option<i64>, plan: &mut HuntPlan) -> TxResult<()> {
    let suffix = format!(".{domain}");
    let mut per: BTreeMap<i64, Agg> = BTreeMap::new();
    let mut scanned = 0;
    db.for_each_row(
        "SELECT jurisdiction_id, ts_ms, body FROM events WHERE event_type = 'dns' AND received_ms >= $1 AND ts_ms < $2 AND ($3::bigint IS NULL OR jurisdiction_id = $3)",
        &[&window.dns_from_ms, &before_ms, &only],
        |r| {
            let body: String = r.try_get(2)?;
            let Ok(body) = serde_json::from_str::<serde_json::Value>(&body) else { return Ok(()) };
            let q = dns_name(&body);
            if q != domain && !q.ends_with(&suffix) {
                return Ok(());
            }
            scanned += 1;
            let (j, ts): (i64, Millis) = (r.try_get(0)?, r.try_get(1)?);
            let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
            let (src, dst) = (text(&body["src_ip"]), text(&body["dest_ip"]));
            let answer = matches!(body["dns"]["type"].as_str(), Some("answer" | "response"));
            let (client, server) = if answer { (dst, src) } else { (src, dst) };
            let agg = per.entry(j).or_default();
            agg.add(ts, ts, 0, 0);
            if let Some(h) = client {
                insert_capped(&mut agg.locals, h, MAX_TRACKED);
            }
            if let Some(s) = server {
                insert_capped(&mut agg.remotes, s, MAX_LISTED);
            }
            insert_capped(&mut agg.services, "udp/53 outbound".into(), MAX_LISTED);
            insert_capped(&mut agg.names, q, MAX_LISTED);
            Ok(())
        },
    )?;
    plan.rows_scanned += scanned;
    plan.hits = per.into_iter().map(|(j, a)| a.into_draft(j)).collect();
    Ok(())
}

/// Records the plan's hits and their notifications and moves the cursor, in one transaction;
/// the cursor row is locked first, so of two replicas with the same plan one finds it moved.
pub(super) fn commit_plan(db: &mut Db<'_>, plan: &HuntPlan, now: Millis) -> TxResult<HuntOutcome> {
    let ind = &plan.indicator;
    let mut out = HuntOutcome {
        indicator_seq: ind.seq,
        kind: ind.kind.clone(),
        value: ind.value.clone(),
        hits: 0,
        notifications: 0,
        rows_scanned: plan.rows_scanned,
        search_ms: plan.search.as_secs_f64() * 1000.0,
        raced: false,
    };
    let current: i64 = db.query_one("SELECT seq FROM retro_cursor WHERE id = 1 FOR UPDATE", &[])?.try_get(0)?;
    if current != plan.cursor_before {
        out.raced = true;
        return Ok(out);
    }
    let (h, n) = record_hits(db, ind, &plan.hits, now)?;
    out.hits += h;
    out.notifications += n;
    db.execute("UPDATE retro_cursor SET seq = $1 WHERE id = 1", &[&ind.seq])?;
    Ok(out)
}

/// The late pass for one jurisdiction with newly arrived contact records (read-only).
pub(super) fn plan_late(db: &mut Db<'_>, window: &HuntWindow) -> TxResult<Option<LatePlan>> {
    let row = db.query_opt("SELECT jurisdiction_id, since_ms, version FROM retro_late ORDER BY updated_ms, jurisdiction_id LIMIT 1", &[])?;
    let Some(row) = row else { return Ok(None) };
    let (jurisdiction_id, since_ms, version): (i64, Millis, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    let started = Instant::now();
    let upto = cursor(db)?;
    let rows = db.query(
        "SELECT seq, action, kind, value, campaign_id, ts_ms FROM indicators \
         WHERE seq <= $1 AND action = 'add' AND ts_ms > $2 AND kind IN ('ip', 'net', 'domain') ORDER BY seq LIMIT $3",
        &[&upto, &since_ms, &(MAX_LATE_INDICATORS as i64)],
    )?;
    let indicators = collect(rows, row_indicator)?;
    let mut plans = Vec::new();
    let mut rows_scanned = 0;
    for indicator in indicators {
        if withdrawn(db, &indicator)? {
            continue;
        }
        let mut plan = HuntPlan { cursor_before: upto, indicator, hits: Vec::new(), rows_scanned: 0, search: Duration::ZERO };
        search(db, window, Some(jurisdiction_id), &mut plan)?;
        rows_scanned += plan.rows_scanned;
        if !plan.hits.is_empty() {
            plans.push(plan);
        }
    }
    Ok(Some(LatePlan { jurisdiction_id, version, plans, rows_scanned, search: started.elapsed() }))
}

/// Records the late pass's hits and clears the jurisdiction's mark unless more records arrived
/// meanwhile (one transaction).
pub(super) fn commit_late(db: &mut Db<'_>, late: &LatePlan, now: Millis) -> TxResult<HuntOutcome> {
    let mut out = HuntOutcome {
        indicator_seq: 0,
        kind: "late".into(),
        value: format!("jurisdiction {}", late.jurisdiction_id),
        hits: 0,
        notifications: 0,
        rows_scanned: late.rows_scanned,
        search_ms: late.search.as_secs_f64() * 1000.0,
        raced: false,
    };
    for plan in &late.plans {
        let (h, n) = record_hits(db, &plan.indicator, &plan.hits, now)?;
        out.hits += h;
        out.notifications += n;
    }
    db.execute("DELETE FROM retro_late WHERE jurisdiction_id = $1 AND version = $2", &[&late.jurisdiction_id, &late.version])?;
    Ok(out)
}

/// Stores the hits of one indicator (each for a different jurisdiction; none for a
/// jurisdiction in the indicator's campaign or one that already has a hit for this value) and
/// enqueues their notifications; returns (hits, notifications) added. A handful of statements
/// whatever the number of hits: an address every office talked to makes thousands.
fn record_hits(db: &mut Db<'_>, ind: &Indicator, hits: &[HitDraft], now: Millis) -> TxResult<(usize, usize)> {
    if hits.is_empty() {
        return Ok((0, 0));
    }
    let mut members: BTreeSet<i64> = BTreeSet::new();
    if ind.campaign_id > 0 {
        let js: Vec<i64> = hits.iter().map(|h| h.jurisdiction_id).collect();
        for r in db.query("SELECT jurisdiction_id FROM campaign_jurisdictions WHERE campaign_id = $1 AND jurisdiction_id = ANY($2)", &[&ind.campaign_id, &js])? {
            members.insert(r.try_get(0)?);
        }
    }
    let hits: Vec<&HitDraft> = hits.iter().filter(|h| !members.contains(&h.jurisdiction_id)).collect();
    if hits.is_empty() {
        return Ok((0, 0));
    }
    let n = hits.len();
    let (mut js, mut firsts, mut lasts, mut records, mut pkts, mut bytes, mut details) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for h in &hits {
        js.push(h.jurisdiction_id);
        firsts.push(h.first_ms);
        lasts.push(h.last_ms);
        records.push(h.records);
        pkts.push(h.pkts);
        bytes.push(h.bytes);
        details.push(pg_text(&serde_json::to_string(&h.detail).map_err(json_err)?).into_owned());
    }
    // WITH ORDINALITY keeps the hits' order, so ids follow it as they did one by one.
    let inserted = db.query(
        "INSERT INTO retro_hits (indicator_seq, kind, value, campaign_id, indicator_ms, jurisdiction_id, first_ms, last_ms, records, pkts, bytes, detail, found_ms) \
         SELECT $1, $2, $3, $4, $5, t.j, t.f, t.l, t.r, t.p, t.b, t.d, $13 \
         FROM unnest($6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::text[]) WITH ORDINALITY AS t(j, f, l, r, p, b, d, n) \
         WHERE EXISTS (SELECT 1 FROM jurisdictions WHERE id = t.j) ORDER BY t.n \
         ON CONFLICT (kind, value, jurisdiction_id) DO NOTHING RETURNING id, jurisdiction_id",
        &[&ind.seq, &ind.kind, &ind.value, &ind.campaign_id, &ind.ts_ms, &js, &firsts, &lasts, &records, &pkts, &bytes, &details, &now],
    )?;
    let mut added: Vec<(i64, i64)> = inserted.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_, postgres::Error>>()?;
    added.sort_unstable();
    let hit_count = added.len();
    if added.is_empty() {
        return Ok((0, 0));
    }
    // A campaign publishes several keys of one actor (its address and its /24): the
    // jurisdiction hears about the campaign once; the other hits are recorded silently.
    if ind.campaign_id > 0 {
        let ids: Vec<i64> = added.iter().map(|a| a.0).collect();
        let js: Vec<i64> = added.iter().map(|a| a.1).collect();
        let mut heard: BTreeSet<i64> = BTreeSet::new();
        for r in db.query(
            "SELECT DISTINCT jurisdiction_id FROM retro_hits WHERE campaign_id = $1 AND jurisdiction_id = ANY($2) AND id <> ALL($3)",
            &[&ind.campaign_id, &js, &ids],
        )? {
            heard.insert(r.try_get(0)?);
        }
        added.retain(|(_, j)| !heard.contains(j));
    }
    if added.is_empty() {
        return Ok((hit_count, 0));
    }
    let ids: Vec<i64> = added.iter().map(|a| a.0).collect();
    let js: Vec<i64> = added.iter().map(|a| a.1).collect();
    let notified = db.execute(
        "INSERT INTO notifications (campaign_id, jurisdiction_id, contact_id, event_kind, event_key, status, next_attempt_ms, created_ms) \
         SELECT 0, t.j, c.id, $3, 'retrohunt:' || t.h, 'pending', $4, $4 FROM unnest($1::bigint[], $2::bigint[]) AS t(h, j) \
         JOIN contacts c ON c.jurisdiction_id = t.j AND c.priority = 1 ORDER BY t.h, c.id \
         ON CONFLICT (contact_id, campaign_id, event_key) DO NOTHING",
        &[&ids, &js, &EVENT_KIND, &now],
    )?;
    Ok((hit_count, notified as usize))
}

const HIT_COLS: &str = "h.id, h.jurisdiction_id, h.indicator_seq, h.kind, h.value, h.campaign_id, h.indicator_ms, \
    a.description, coalesce(a.severity, 'high'), h.first_ms, h.last_ms, h.records, h.pkts, h.bytes, h.detail, h.found_ms";

fn row_hit(r: &Row) -> Result<RetroHit, postgres::Error> {
    let detail: String = r.try_get(14)?;
    let (first_ms, last_ms, indicator_ms): (Millis, Millis, Millis) = (r.try_get(9)?, r.try_get(10)?, r.try_get(6)?);
    Ok(RetroHit {
        id: r.try_get(0)?,
        jurisdiction_id: r.try_get(1)?,
        indicator: HitIndicator {
            seq: r.try_get(2)?,
            kind: r.try_get(3)?,
            value: r.try_get(4)?,
            campaign_id: r.try_get(5)?,
            appeared: fmt_ms(indicator_ms),
            appeared_ms: indicator_ms,
            description: r.try_get(7)?,
            severity: r.try_get(8)?,
        },
        first_seen: fmt_ms(first_ms),
        last_seen: fmt_ms(last_ms),
        first_ms,
        last_ms,
        records: r.try_get(11)?,
        pkts: r.try_get(12)?,
        bytes: r.try_get(13)?,
        detail: serde_json::from_str(&detail).unwrap_or_default(),
        found: fmt_ms(r.try_get(15)?),
    })
}

/// Newest first; `jurisdiction_id` `None` is every jurisdiction.
pub(super) fn hits(db: &mut Db<'_>, jurisdiction_id: Option<i64>, limit: usize) -> TxResult<Vec<RetroHit>> {
    let rows = db.query(
        &format!(
            "SELECT {HIT_COLS} FROM retro_hits h LEFT JOIN analyst_indicators a ON a.add_seq = h.indicator_seq \
             WHERE ($1::bigint IS NULL OR h.jurisdiction_id = $1) ORDER BY h.id DESC LIMIT $2"
        ),
        &[&jurisdiction_id, &(limit as i64)],
    )?;
    Ok(collect(rows, row_hit)?)
}

/// The hit a `retrohunt` notification is about.
pub(super) fn hit_for_notification(db: &mut Db<'_>, notification_id: i64) -> TxResult<Option<RetroHit>> {
    let row = db.query_opt(
        &format!(
            "SELECT {HIT_COLS} FROM notifications n JOIN retro_hits h ON n.event_key = 'retrohunt:' || h.id \
             LEFT JOIN analyst_indicators a ON a.add_seq = h.indicator_seq WHERE n.id = $1 AND n.event_kind = $2"
        ),
        &[&notification_id, &EVENT_KIND],
    )?;
    Ok(row.as_ref().map(row_hit).transpose()?)
}

// ---- contact record partitions (migration 0410): one partition per UTC day ----

/// Hours in one partition (a UTC day).
pub(super) const PARTITION_HOURS: i64 = 24;
/// Days of partitions the retention pass creates ahead of today, so ingest rarely has to.
pub(super) const PARTITIONS_AHEAD: i64 = 3;
/// Held while partitions are created or dropped (two replicas creating the same day would
/// collide on its name).
const PARTITION_LOCK: i64 = 0x7761_7264_0000_0410;

/// The partition day of a contact record that began at `first_ms`.
pub(super) fn day_of_ms(first_ms: Millis) -> i64 {
    first_ms.div_euclid(HOUR_MS).div_euclid(PARTITION_HOURS)
}

/// Creates the partitions of `days` that are missing (run in a transaction of its own: creating
/// a partition locks the parent table until commit). Returns how many were created.
pub(super) fn create_partitions(db: &mut Db<'_>, days: &BTreeSet<i64>) -> TxResult<usize> {
    if days.is_empty() {
        return Ok(0);
    }
    db.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])?;
    let mut created = 0;
    for day in days {
        let made: bool = db.query_one("SELECT ward_contact_partition($1)", &[day])?.try_get(0)?;
        if made {
            created += 1;
        }
    }
    Ok(created)
}

/// The days that have a partition, oldest first.
pub(super) fn partition_days(db: &mut Db<'_>) -> TxResult<Vec<i64>> {
    let rows = db.query("SELECT day FROM ward_contact_partition_days() AS day", &[])?;
    Ok(collect(rows, |r| r.try_get(0))?)
}

/// Drops the partition of `day` when every hour of it is before `before_hour`; returns the
/// rows it held (counted first, in the same transaction), `None` when it is not due.
pub(super) fn drop_partition(db: &mut Db<'_>, day: i64, before_hour: i64) -> TxResult<Option<usize>> {
    if (day + 1) * PARTITION_HOURS > before_hour {
        return Ok(None);
    }
    db.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])?;
    let (from, to) = (day * PARTITION_HOURS, (day + 1) * PARTITION_HOURS);
    let rows: i64 = db.query_one("SELECT count(*) FROM contact_records WHERE hour >= $1 AND hour < $2", &[&from, &to])?.try_get(0)?;
    let dropped: bool = db.query_one("SELECT ward_drop_contact_partition($1)", &[&day])?.try_get(0)?;
    Ok(Some(if dropped { rows as usize } else { 0 }))
}

/// Deletes up to `chunk` rows of hours before `before_hour` (the partly expired day at the
/// retention boundary; whole days are dropped instead).
pub(super) fn delete_expired_chunk(db: &mut Db<'_>, before_hour: i64, chunk: i64) -> TxResult<usize> {
    let from = before_hour.div_euclid(PARTITION_HOURS) * PARTITION_HOURS;
    Ok(db.execute(
        "DELETE FROM contact_records WHERE (remote, hour, jurisdiction_id, local, port, proto, inbound) IN \
         (SELECT remote, hour, jurisdiction_id, local, port, proto, inbound FROM contact_records WHERE hour >= $1 AND hour < $2 LIMIT $3)",
        &[&from, &before_hour, &chunk],
    )? as usize)
}

/// The query plan of the network search (`EXPLAIN`, not run) for `ip/len` over the hours
/// `from_hour..=to_hour`: for checks that the index serves it and partitions are pruned.
pub(super) fn explain_net_search(db: &mut Db<'_>, ip: IpAddr, len: u8, from_hour: i64, to_hour: i64) -> TxResult<String> {
    let (lo, hi) = net_range(ip, len);
    let (Some(lo), Some(hi)) = (ip_from_bytes(&lo), ip_from_bytes(&hi)) else {
        return Err(StoreError::Invalid(format!("{ip}/{len} is not a network")).into());
    };
    let before_ms = (to_hour + 1) * HOUR_MS;
    let only: Option<i64> = None;
    let rows = db.query(
        &format!("EXPLAIN {NET_SEARCH}"),
        &[&lo, &hi, &from_hour, &to_hour, &before_ms, &only],
    )?;
    let lines: Vec<String> = collect(rows, |r| r.try_get(0))?;
    Ok(lines.join("\n"))
}
