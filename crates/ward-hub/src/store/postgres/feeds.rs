//! The feeds' SQL on PostgreSQL, the counterpart of `store/sqlite/feeds.rs` (rules in
//! [`crate::share::feeds`]): feeds, the indicators each holds, and [`held_elsewhere`] — a
//! `remove` is logged only when no other source still holds the value, for every source.
//!
//! A poll's apply locks its feed's row (`FOR UPDATE`), so two replicas (or the CLI and a
//! replica) applying the same feed take turns; its log appends take the indicator-log lock
//! like every other append. Credentials are kept as the PostgreSQL store keeps webhook secrets
//! (in the database, not sealed: the store has no key file yet).
//!
//! An update's groups are applied set-based ([`apply_groups`], [`log_adds`], [`insert_rows`]):
//! the rows they hold are one query, which new values are live one `unnest` lookup over the
//! `(kind, value, seq)` index, the missing `add`s one insert and the feed's new rows another —
//! a handful of round trips per update (a TAXII page, a batch of MISP events, a whole CSV
//! list) instead of three per indicator. Changed and withdrawn rows still go one at a time (a
//! poll changes few).

use std::collections::{HashMap, HashSet};

use postgres::Row;

use super::{pg_text, Db, TxResult};
use crate::error::StoreError;
use crate::model::Millis;
use crate::share::feeds::{Feed, FeedApplied, FeedIndicator, FeedItem, FeedKind, FeedState, FeedUpdate, GroupUpdate, NewFeed, PollRecord, MAX_FEEDS, MAX_SENSOR_TLP};
use crate::trust::{AllowList, AllowView};

/// Expired feed indicators withdrawn per call at most (the caller calls again).
pub const MAX_EXPIRED_PER_PASS: i64 = 1000;

/// Who is letting go of a value (it does not count as still holding it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Holder {
    Campaign(i64),
    Analyst(i64),
    FeedRow(i64),
}

/// Whether a source other than `except` still holds `kind:value` for the sensors.
pub(super) fn held_elsewhere(db: &mut Db<'_>, kind: &str, value: &str, except: Holder, now: Millis) -> TxResult<bool> {
    let (campaign, analyst, row) = match except {
        Holder::Campaign(id) => (id, -1, -1),
        Holder::Analyst(id) => (-1, id, -1),
        Holder::FeedRow(id) => (-1, -1, id),
    };
    let key = format!("{kind}:{value}");
    Ok(db
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM campaign_keys k JOIN campaigns c ON c.id = k.campaign_id \
                            WHERE k.actor_key = $1 AND k.campaign_id <> $2 AND c.status = 'open' AND c.published_ms IS NOT NULL) \
                 OR EXISTS (SELECT 1 FROM analyst_indicators WHERE kind = $3 AND value = $4 AND id <> $5 AND removed_ms IS NULL \
                            AND (expires_ms IS NULL OR expires_ms > $6)) \
                 OR EXISTS (SELECT 1 FROM feed_indicators WHERE kind = $3 AND value = $4 AND id <> $7 AND removed_ms IS NULL \
                            AND on_sensors AND (valid_until_ms IS NULL OR valid_until_ms > $6))",
            &[&pg_text(&key), &campaign, &kind, &pg_text(value), &analyst, &now, &row],
        )?
        .try_get(0)?)
}

/// The `seq` of the `add` that makes `kind:value` live, or `None`.
pub(super) fn live_add(db: &mut Db<'_>, kind: &str, value: &str) -> TxResult<Option<i64>> {
    let row = db.query_opt("SELECT seq, action FROM indicators WHERE kind = $1 AND value = $2 ORDER BY seq DESC LIMIT 1", &[&kind, &pg_text(value)])?;
    Ok(match row {
        Some(r) if r.try_get::<_, String>(1)? == "add" => Some(r.try_get(0)?),
        _ => None,
    })
}

/// Logs a `remove` of `kind:value` (as `campaign_id`'s) unless it is not live or another source
/// still holds it; returns whether it was logged.
pub(super) fn log_remove(db: &mut Db<'_>, kind: &str, value: &str, campaign_id: i64, except: Holder, now: Millis) -> TxResult<bool> {
    // The lock first: what is live and who holds it is then decided in commit order.
    db.lock_indicator_log()?;
    if live_add(db, kind, value)?.is_none() || held_elsewhere(db, kind, value, except, now)? {
        return Ok(false);
    }
    db.execute("INSERT INTO indicators (action, kind, value, campaign_id, ts_ms) VALUES ('remove', $1, $2, $3, $4)", &[&kind, &pg_text(value), &campaign_id, &now])?;
    Ok(true)
}

/// Logs an `add` (campaign 0) unless the value is live already; the `seq` it rides on and
/// whether it was logged now.
fn log_add(db: &mut Db<'_>, kind: &str, value: &str, now: Millis) -> TxResult<(i64, bool)> {
    db.lock_indicator_log()?;
    if let Some(seq) = live_add(db, kind, value)? {
        return Ok((seq, false));
    }
    let seq: i64 = db
        .query_one("INSERT INTO indicators (action, kind, value, campaign_id, ts_ms) VALUES ('add', $1, $2, 0, $3) RETURNING seq", &[&kind, &pg_text(value), &now])?
        .try_get(0)?;
    Ok((seq, true))
}

/// The log `add` each value rides on, by (kind, value as stored).
type LogSeqs = HashMap<(String, String), i64>;

/// [`log_add`] for many values at once (the indicator-log lock taken once): an `add` for each
/// value not live yet, in the given order. Returns the `seq` each value rides on (keyed by
/// kind and value as stored) and how many `add`s were written.
fn log_adds(db: &mut Db<'_>, values: &[(&str, &str)], now: Millis) -> TxResult<(LogSeqs, usize)> {
    let mut seqs: LogSeqs = HashMap::with_capacity(values.len());
    if values.is_empty() {
        return Ok((seqs, 0));
    }
    db.lock_indicator_log()?;
    let mut kinds: Vec<&str> = Vec::with_capacity(values.len());
    let mut texts: Vec<String> = Vec::with_capacity(values.len());
    let mut unique: HashSet<(&str, String)> = HashSet::with_capacity(values.len());
    for &(kind, value) in values {
        let text = pg_text(value).into_owned();
        if unique.insert((kind, text.clone())) {
            kinds.push(kind);
            texts.push(text);
        }
    }
    // What is live: the last log entry of each value, through the (kind, value, seq) index.
    let live = db.query(
        "SELECT x.k, x.v, l.seq FROM unnest($1::text[], $2::text[]) AS x(k, v) \
         CROSS JOIN LATERAL (SELECT seq, action FROM indicators WHERE kind = x.k AND value = x.v ORDER BY seq DESC LIMIT 1) l \
         WHERE l.action = 'add'",
        &[&kinds, &texts],
    )?;
    for r in &live {
        seqs.insert((r.try_get(0)?, r.try_get(1)?), r.try_get(2)?);
    }
    let (mut add_kinds, mut add_texts): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    for (kind, text) in kinds.iter().zip(&texts) {
        if !seqs.contains_key(&(kind.to_string(), text.clone())) {
            add_kinds.push(kind);
            add_texts.push(text);
        }
    }
    if add_kinds.is_empty() {
        return Ok((seqs, 0));
    }
    let added = db.query(
        "INSERT INTO indicators (action, kind, value, campaign_id, ts_ms) \
         SELECT 'add', k, v, 0, $3 FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS x(k, v, n) ORDER BY n \
         RETURNING kind, value, seq",
        &[&add_kinds, &add_texts, &now],
    )?;
    for r in &added {
        seqs.insert((r.try_get(0)?, r.try_get(1)?), r.try_get(2)?);
    }
    Ok((seqs, added.len()))
}

/// Inserts a group's new rows in one statement; `seqs` from [`log_adds`] for those on the
/// sensors' list.
fn insert_rows(db: &mut Db<'_>, feed_id: i64, fresh: &[(&str, &FeedItem, bool)], seqs: &LogSeqs, now: Millis) -> TxResult<()> {
    if fresh.is_empty() {
        return Ok(());
    }
    let n = fresh.len();
    let (mut groups, mut refs, mut kinds, mut values, mut confidences, mut tlps, mut until, mut on, mut add_seq) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for &(group, item, on_sensors) in fresh {
        let value = pg_text(&item.value);
        let seq = if on_sensors {
            let seq = seqs.get(&(item.kind.to_string(), value.clone().into_owned())).copied();
            if seq.is_none() {
                return Err(StoreError::Database(format!("no indicator log entry for {}:{}", item.kind, item.value)).into());
            }
            seq
        } else {
            None
        };
        groups.push(group);
        refs.push(pg_text(&item.source_ref));
        kinds.push(item.kind);
        values.push(value);
        confidences.push(item.confidence);
        tlps.push(item.tlp.label());
        until.push(item.valid_until_ms);
        on.push(on_sensors);
        add_seq.push(seq);
    }
    db.execute(
        "INSERT INTO feed_indicators (feed_id, source_group, source_ref, kind, value, confidence, tlp, valid_until_ms, on_sensors, added_ms, add_seq) \
         SELECT $1, g, r, k, v, c, t, u, s, $2, q \
         FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::bigint[], $10::boolean[], $11::bigint[]) WITH ORDINALITY \
              AS x(g, r, k, v, c, t, u, s, q, n) ORDER BY n",
        &[&feed_id, &now, &groups, &refs, &kinds, &values, &confidences, &tlps, &until, &on, &add_seq],
    )?;
    Ok(())
}

const FEED_COLS: &str = "f.id, f.name, f.kind, f.url, f.collection, f.csv_column, f.auth_kind, f.username, f.credential IS NOT NULL, f.types, \
     f.min_confidence, f.default_confidence, f.max_active, f.default_tlp, f.default_ttl_secs, f.interval_secs, f.enabled, f.created_by, \
     f.created_ms, f.state, f.next_poll_ms, f.last_poll_ms, f.last_ok_ms, f.last_error, f.failures, f.capped, f.added_total, \
     f.removed_total, f.skipped_total, \
     (SELECT count(*) FROM feed_indicators i WHERE i.feed_id = f.id AND i.removed_ms IS NULL AND i.on_sensors), \
     (SELECT count(*) FROM feed_indicators i WHERE i.feed_id = f.id AND i.removed_ms IS NULL AND NOT i.on_sensors)";

fn row_feed(r: &Row) -> Result<Feed, postgres::Error> {
    let kind: String = r.try_get(2)?;
    let types: String = r.try_get(9)?;
    let tlp: String = r.try_get(13)?;
    let state: String = r.try_get(19)?;
    Ok(Feed {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        kind: FeedKind::parse(&kind).unwrap_or(FeedKind::Csv),
        url: r.try_get(3)?,
        collection: r.try_get(4)?,
        csv_column: r.try_get(5)?,
        auth: r.try_get(6)?,
        username: r.try_get(7)?,
        has_credential: r.try_get(8)?,
        types: types.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        min_confidence: r.try_get(10)?,
        default_confidence: r.try_get(11)?,
        max_indicators: r.try_get(12)?,
        default_tlp: tlp.parse().unwrap_or(ward_model::tlp::Tlp::Amber),
        default_ttl_secs: r.try_get(14)?,
        interval_secs: r.try_get(15)?,
        enabled: r.try_get(16)?,
        created_by: r.try_get(17)?,
        created_ms: r.try_get(18)?,
        state: serde_json::from_str::<FeedState>(&state).unwrap_or_default(),
        next_poll_ms: r.try_get(20)?,
        last_poll_ms: r.try_get(21)?,
        last_ok_ms: r.try_get(22)?,
        last_error: r.try_get(23)?,
        failures: r.try_get(24)?,
        capped: r.try_get(25)?,
        added_total: r.try_get(26)?,
        removed_total: r.try_get(27)?,
        skipped_total: r.try_get(28)?,
        on_sensors: r.try_get(29)?,
        held_on_hub: r.try_get(30)?,
    })
}

pub(super) fn feeds(db: &mut Db<'_>) -> TxResult<Vec<Feed>> {
    let rows = db.query(&format!("SELECT {FEED_COLS} FROM feeds f ORDER BY f.id"), &[])?;
    Ok(rows.iter().map(row_feed).collect::<Result<_, _>>()?)
}

pub(super) fn feed(db: &mut Db<'_>, id: i64) -> TxResult<Option<Feed>> {
    Ok(db.query_opt(&format!("SELECT {FEED_COLS} FROM feeds f WHERE f.id = $1"), &[&id])?.as_ref().map(row_feed).transpose()?)
}

pub(super) fn add_feed(db: &mut Db<'_>, new: &NewFeed, now: Millis) -> TxResult<Feed> {
    let count: i64 = db.query_one("SELECT count(*) FROM feeds", &[])?.try_get(0)?;
    if count as usize >= MAX_FEEDS {
        return Err(StoreError::Invalid(format!("the hub already has {MAX_FEEDS} feeds: remove one first")).into());
    }
    let secret = new.secret.as_deref().map(pg_text);
    let types = new.types.join(",");
    let inserted = db.query_opt(
        "INSERT INTO feeds (name, kind, url, collection, csv_column, auth_kind, username, credential, types, min_confidence, \
         default_confidence, max_active, default_tlp, default_ttl_secs, interval_secs, enabled, created_by, created_ms, next_poll_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18) ON CONFLICT (name) DO NOTHING RETURNING id",
        &[
            &pg_text(&new.name),
            &new.kind.as_str(),
            &pg_text(&new.url),
            &new.collection.as_deref().map(pg_text),
            &new.csv_column,
            &new.auth.as_str(),
            &new.username.as_deref().map(pg_text),
            &secret,
            &types,
            &new.min_confidence,
            &new.default_confidence,
            &new.max_active,
            &new.default_tlp.label(),
            &new.default_ttl_secs,
            &new.interval_secs,
            &new.enabled,
            &pg_text(&new.created_by),
            &now,
        ],
    )?;
    let Some(row) = inserted else {
        return Err(StoreError::Conflict(format!("a feed named {:?} exists already", new.name)).into());
    };
    let id: i64 = row.try_get(0)?;
    feed(db, id)?.ok_or_else(|| StoreError::Database("feed vanished after insert".into()).into())
}

pub(super) fn credential(db: &mut Db<'_>, id: i64) -> TxResult<Option<String>> {
    let Some(row) = db.query_opt("SELECT credential FROM feeds WHERE id = $1", &[&id])? else {
        return Err(StoreError::NotFound(format!("feed {id}")).into());
    };
    Ok(row.try_get(0)?)
}

struct ActiveRow {
    id: i64,
    source_ref: String,
    kind: String,
    value: String,
    confidence: i64,
    tlp: String,
    valid_until_ms: Option<Millis>,
    on_sensors: bool,
}

#[allow(clippy::too_many_arguments)]
fn remove_row(db: &mut Db<'_>, id: i64, kind: &str, value: &str, on_sensors: bool, why: &str, now: Millis, out: &mut FeedApplied) -> TxResult<()> {
    db.execute("UPDATE feed_indicators SET removed_ms = $1, removed_why = $2 WHERE id = $3", &[&now, &why, &id])?;
    out.removed += 1;
    if on_sensors && log_remove(db, kind, value, 0, Holder::FeedRow(id), now)? {
        out.log_removes += 1;
    }
    Ok(())
}

pub(super) fn apply(db: &mut Db<'_>, feed_id: i64, update: &FeedUpdate, allow: AllowView<'_>, now: Millis) -> TxResult<FeedApplied> {
    let Some(row) = db.query_opt("SELECT max_active FROM feeds WHERE id = $1 FOR UPDATE", &[&feed_id])? else {
        return Err(StoreError::NotFound(format!("feed {feed_id}")).into());
    };
    let max_active: i64 = row.try_get(0)?;
    let mut active: i64 = db.query_one("SELECT count(*) FROM feed_indicators WHERE feed_id = $1 AND removed_ms IS NULL", &[&feed_id])?.try_get(0)?;
    let mut out = FeedApplied::default();
    // Runs of groups with distinct names are applied together (a name seen twice in one update
    // starts a new run, so the second sees what the first wrote).
    let groups = &update.groups;
    let mut start = 0;
    while start < groups.len() {
        let mut names: HashSet<&str> = HashSet::new();
        let mut end = start;
        while end < groups.len() && names.insert(groups[end].group.as_str()) {
            end += 1;
        }
        apply_groups(db, feed_id, &groups[start..end], allow, max_active, &mut active, now, &mut out)?;
        start = end;
    }
    if let Some(state) = &update.state {
        let text = serde_json::to_string(state).map_err(|e| StoreError::Invalid(format!("feed state: {e}")))?;
        db.execute("UPDATE feeds SET state = $1 WHERE id = $2", &[&pg_text(&text), &feed_id])?;
    }
    db.execute(
        "UPDATE feeds SET added_total = added_total + $1, removed_total = removed_total + $2, skipped_total = skipped_total + $3 WHERE id = $4",
        &[&(out.added as i64), &(out.removed as i64), &((out.skipped_allow + out.skipped_cap) as i64), &feed_id],
    )?;
    Ok(out)
}

/// Applies groups with distinct names, in order, with the effects of applying them one by one
/// (each group's changed rows, then its new items, then its withdrawn rows): the rows they
/// hold are read in one query, new items are decided in memory in the feed's order
/// (duplicates, the allow-list, the cap) and written set-based, as one batch over consecutive
/// groups — a batch is written out before any other write, so nothing reads the log or the
/// feed's rows without the adds that came before it.
#[allow(clippy::too_many_arguments)]
fn apply_groups(db: &mut Db<'_>, feed_id: i64, groups: &[GroupUpdate], allow: AllowView<'_>, max_active: i64, active: &mut i64, now: Millis, out: &mut FeedApplied) -> TxResult<()> {
    let names: Vec<std::borrow::Cow<'_, str>> = groups.iter().map(|g| pg_text(&g.group)).collect();
    let mut existing: HashMap<String, Vec<ActiveRow>> = HashMap::new();
    for r in db.query(
        "SELECT id, source_ref, kind, value, confidence, tlp, valid_until_ms, on_sensors, source_group FROM feed_indicators \
         WHERE feed_id = $1 AND source_group = ANY($2::text[]) AND removed_ms IS NULL ORDER BY id",
        &[&feed_id, &names],
    )? {
        let row = ActiveRow {
            id: r.try_get(0)?,
            source_ref: r.try_get(1)?,
            kind: r.try_get(2)?,
            value: r.try_get(3)?,
            confidence: r.try_get(4)?,
            tlp: r.try_get(5)?,
            valid_until_ms: r.try_get(6)?,
            on_sensors: r.try_get(7)?,
        };
        existing.entry(r.try_get(8)?).or_default().push(row);
    }
    let none: Vec<ActiveRow> = Vec::new();
    let mut fresh: Vec<(&str, &FeedItem, bool)> = Vec::new();
    for (group, name) in groups.iter().zip(&names) {
        let existing = existing.get(name.as_ref()).unwrap_or(&none);
        let wanted: HashMap<(&str, &str, &str), &FeedItem> = group.items.iter().rev().map(|i| ((i.source_ref.as_str(), i.kind, i.value.as_str()), i)).collect();
        let mut kept: HashSet<(&str, &str, &str)> = HashSet::new();
        let mut gone: Vec<&ActiveRow> = Vec::new();
        for row in existing {
            let key = (row.source_ref.as_str(), row.kind.as_str(), row.value.as_str());
            let Some(item) = wanted.get(&key) else {
                gone.push(row);
                continue;
            };
            if allow.covers_key(&format!("{}:{}", row.kind, row.value)) {
                gone.push(row);
                continue;
            }
            kept.insert((item.source_ref.as_str(), item.kind, item.value.as_str()));
            let on_sensors = item.tlp <= MAX_SENSOR_TLP;
            if (item.confidence, item.tlp.label(), item.valid_until_ms) != (row.confidence, row.tlp.as_str(), row.valid_until_ms) || on_sensors != row.on_sensors {
                flush_adds(db, feed_id, &mut fresh, now, out)?;
                db.execute(
                    "UPDATE feed_indicators SET confidence = $1, tlp = $2, valid_until_ms = $3, on_sensors = $4 WHERE id = $5",
                    &[&item.confidence, &item.tlp.label(), &item.valid_until_ms, &on_sensors, &row.id],
                )?;
            }
            if on_sensors && !row.on_sensors {
                let (seq, logged) = log_add(db, &row.kind, &row.value, now)?;
                db.execute("UPDATE feed_indicators SET add_seq = $1 WHERE id = $2", &[&seq, &row.id])?;
                out.log_adds += logged as usize;
            } else if !on_sensors && row.on_sensors && log_remove(db, &row.kind, &row.value, 0, Holder::FeedRow(row.id), now)? {
                out.log_removes += 1;
            }
        }
        *active -= gone.len() as i64;
        let existing_keys: HashSet<(&str, &str, &str)> = existing.iter().map(|r| (r.source_ref.as_str(), r.kind.as_str(), r.value.as_str())).collect();
        let mut seen: HashSet<(&str, &str, &str)> = HashSet::new();
        for item in &group.items {
            let key = (item.source_ref.as_str(), item.kind, item.value.as_str());
            if kept.contains(&key) || !seen.insert(key) || existing_keys.contains(&key) {
                continue;
            }
            if allow.covers_key(&format!("{}:{}", item.kind, item.value)) {
                out.skipped_allow += 1;
                continue;
            }
            if *active >= max_active {
                out.skipped_cap += 1;
                out.capped = true;
                continue;
            }
            let on_sensors = item.tlp <= MAX_SENSOR_TLP;
            if !on_sensors {
                out.held_on_hub += 1;
            }
            fresh.push((name.as_ref(), item, on_sensors));
            out.added += 1;
            *active += 1;
        }
        if !gone.is_empty() {
            flush_adds(db, feed_id, &mut fresh, now, out)?;
        }
        for row in gone {
            remove_row(db, row.id, &row.kind, &row.value, row.on_sensors, "withdrawn by the feed", now, out)?;
        }
    }
    flush_adds(db, feed_id, &mut fresh, now, out)?;
    Ok(())
}

/// Writes the pending new items: their log `add`s, then their rows.
fn flush_adds(db: &mut Db<'_>, feed_id: i64, fresh: &mut Vec<(&str, &FeedItem, bool)>, now: Millis, out: &mut FeedApplied) -> TxResult<()> {
    if fresh.is_empty() {
        return Ok(());
    }
    let to_log: Vec<(&str, &str)> = fresh.iter().filter(|(_, _, on)| *on).map(|(_, i, _)| (i.kind, i.value.as_str())).collect();
    let (seqs, logged) = log_adds(db, &to_log, now)?;
    out.log_adds += logged;
    insert_rows(db, feed_id, fresh, &seqs, now)?;
    fresh.clear();
    Ok(())
}

pub(super) fn record_poll(db: &mut Db<'_>, feed_id: i64, rec: &PollRecord, now: Millis) -> TxResult<()> {
    let error = rec.error.as_deref().map(pg_text);
    let n = db.execute(
        "UPDATE feeds SET last_poll_ms = $1, last_ok_ms = CASE WHEN $2::text IS NULL THEN $1 ELSE last_ok_ms END, last_error = $2, \
         failures = CASE WHEN $2::text IS NULL THEN 0 ELSE failures + 1 END, capped = $3, next_poll_ms = $4 WHERE id = $5",
        &[&now, &error, &rec.capped, &rec.next_poll_ms, &feed_id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("feed {feed_id}")).into());
    }
    Ok(())
}

pub(super) fn remove_feed(db: &mut Db<'_>, feed_id: i64, now: Millis) -> TxResult<FeedApplied> {
    if db.query_opt("SELECT id FROM feeds WHERE id = $1 FOR UPDATE", &[&feed_id])?.is_none() {
        return Err(StoreError::NotFound(format!("feed {feed_id}")).into());
    }
    let rows = db.query("SELECT id, kind, value, on_sensors FROM feed_indicators WHERE feed_id = $1 AND removed_ms IS NULL ORDER BY id", &[&feed_id])?;
    let mut out = FeedApplied::default();
    for r in &rows {
        let (id, kind, value, on_sensors): (i64, String, String, bool) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
        remove_row(db, id, &kind, &value, on_sensors, "feed removed", now, &mut out)?;
    }
    db.execute("DELETE FROM feed_indicators WHERE feed_id = $1", &[&feed_id])?;
    db.execute("DELETE FROM feeds WHERE id = $1", &[&feed_id])?;
    Ok(out)
}

pub(super) fn expire(db: &mut Db<'_>, now: Millis) -> TxResult<FeedApplied> {
    let due = db.query(
        "SELECT id, feed_id, kind, value, on_sensors FROM feed_indicators \
         WHERE removed_ms IS NULL AND valid_until_ms IS NOT NULL AND valid_until_ms <= $1 ORDER BY valid_until_ms LIMIT $2 FOR UPDATE SKIP LOCKED",
        &[&now, &MAX_EXPIRED_PER_PASS],
    )?;
    let mut out = FeedApplied::default();
    for r in &due {
        let (id, feed_id, kind, value, on_sensors): (i64, i64, String, String, bool) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?);
        remove_row(db, id, &kind, &value, on_sensors, "expired", now, &mut out)?;
        db.execute("UPDATE feeds SET removed_total = removed_total + 1 WHERE id = $1", &[&feed_id])?;
    }
    Ok(out)
}

/// Withdraws the feed indicators a new allow-list entry covers; returns the `remove`s logged.
pub(super) fn withdraw_allowed(db: &mut Db<'_>, entry: &AllowList, why: &str, now: Millis) -> TxResult<usize> {
    let rows = db.query("SELECT id, feed_id, kind, value, on_sensors FROM feed_indicators WHERE removed_ms IS NULL AND kind IN ('ip', 'net') ORDER BY id", &[])?;
    let mut out = FeedApplied::default();
    for r in &rows {
        let (id, feed_id, kind, value, on_sensors): (i64, i64, String, String, bool) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?);
        if !entry.covers_key(&format!("{kind}:{value}")) {
            continue;
        }
        remove_row(db, id, &kind, &value, on_sensors, why, now, &mut out)?;
        db.execute("UPDATE feeds SET removed_total = removed_total + 1 WHERE id = $1", &[&feed_id])?;
    }
    Ok(out.log_removes)
}

pub(super) fn indicators(db: &mut Db<'_>, feed_id: i64, limit: usize) -> TxResult<Vec<FeedIndicator>> {
    let rows = db.query(
        "SELECT id, kind, value, source_group, source_ref, confidence, tlp, valid_until_ms, on_sensors, added_ms, add_seq FROM feed_indicators \
         WHERE feed_id = $1 AND removed_ms IS NULL ORDER BY id LIMIT $2",
        &[&feed_id, &(limit as i64)],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let tlp: String = r.try_get(6)?;
            Ok(FeedIndicator {
                id: r.try_get(0)?,
                kind: r.try_get(1)?,
                value: r.try_get(2)?,
                source_group: r.try_get(3)?,
                source_ref: r.try_get(4)?,
                confidence: r.try_get(5)?,
                tlp: tlp.parse().unwrap_or(ward_model::tlp::Tlp::Amber),
                valid_until_ms: r.try_get(7)?,
                on_sensors: r.try_get(8)?,
                added_ms: r.try_get(9)?,
                add_seq: r.try_get(10)?,
            })
        })
        .collect::<Result<_, postgres::Error>>()?)
}
