//! Ingest and correlation on PostgreSQL: the port of the SQLite store's `ingest_one`,
//! `correlate`, `extend`, `escalate` and `enqueue`, same behaviour, made safe for several
//! writers (see the module note of [`super`]).
//!
//! Locks of one ingest transaction, always in this order (so no two transactions wait on each
//! other in a circle, except against analysts' campaign changes, which the retry resolves):
//! 1. the correlation lock, shared (exclusive for a group with more than [`MAX_ACTOR_LOCKS`]
//!    keys);
//! 2. one advisory lock per actor key of the group's sightings, sorted by lock id;
//! 3. rows: the group's sensor rows (`FOR UPDATE`, in id order: the contribution budget of
//!    [`super::trust`] is decided under them), each batch's idempotency row, sightings, campaign
//!    rows (`FOR UPDATE`), and the indicator log lock when a key is published.
//!
//! Trust (see [`super::trust`]): allow-listed addresses are dropped before correlation, a batch
//! correlates only when its sensor is within its budget, sightings carry the sensor's id, and a
//! campaign's keys reach the indicator feed only past the publication bar. Revoke, release and
//! allow-list changes take the correlation lock exclusively.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use sha2::Digest;

use super::trust;
use super::{json_err, pg_text, Db, TxResult};
use crate::ingest::actor_keys;
use crate::model::Millis;
use crate::trust::AllowView;
use crate::store::{CorrelationPolicy, IngestBatch, IngestEffects, IngestReceipt, RejectionOut};

/// Actor-key locks one ingest transaction takes at most. PostgreSQL's shared lock table holds
/// `max_locks_per_transaction` (64 by default) × `max_connections` (100) entries for all
/// sessions together; a group with more keys than this takes the exclusive correlation lock
/// instead, which leaves room for a dozen replicas' writers.
pub const MAX_ACTOR_LOCKS: usize = 512;
/// Held shared by every ingest transaction with sightings, exclusively by one with more than
/// [`MAX_ACTOR_LOCKS`] keys (which then takes no key locks).
pub(super) const CORRELATION_LOCK: i64 = 0x7761_7264_0000_0003;
/// Sightings shown per jurisdiction per campaign (the message stays short).
pub(super) const MAX_LOCAL_SIGHTINGS: i64 = 20;

/// Per-batch aggregate of one remote address at one jurisdiction.
struct RemoteAgg {
    count: i64,
    asn: Option<u32>,
}

/// The advisory lock id of an actor key: the first 8 bytes of its SHA-256, the same on every
/// replica and every version of ward.
fn lock_id(key: &str) -> i64 {
    let digest = sha2::Sha256::digest(format!("ward actor key {key}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// Serialises this transaction with every other one that correlates any of the same keys.
fn lock_actor_keys(db: &mut Db<'_>, batches: &[IngestBatch]) -> TxResult<()> {
    let mut ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.events.iter())
        .filter(|e| e.contact.is_none())
        .filter_map(|e| e.remote.map(|ip| (ip, e.remote_asn)))
        .flat_map(|(ip, asn)| actor_keys(ip, asn))
        .map(|k| lock_id(&k))
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    ids.sort_unstable();
    ids.dedup();
    if ids.len() > MAX_ACTOR_LOCKS {
        db.execute("SELECT pg_advisory_xact_lock($1)", &[&CORRELATION_LOCK])?;
        return Ok(());
    }
    db.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&CORRELATION_LOCK])?;
    // unnest yields the array in order, and each row's lock is taken before the next row is
    // produced: the locks are acquired in ascending id order.
    db.execute("SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k", &[&ids])?;
    Ok(())
}

/// The rows of the `events` table a group adds, written with one binary COPY.
#[derive(Default)]
struct EventRows {
    jurisdiction_id: Vec<i64>,
    sensor_id: Vec<i64>,
    event_type: Vec<String>,
    ts_ms: Vec<Millis>,
    remote_ip: Vec<Option<String>>,
    remote_prefix: Vec<Option<String>>,
    remote_asn: Vec<Option<i64>>,
    local_ip: Vec<Option<String>>,
    signature_id: Vec<Option<i64>>,
    signature: Vec<Option<String>>,
    body: Vec<String>,
}

impl EventRows {
    fn copy_into(&self, db: &mut Db<'_>, received_ms: Millis) -> TxResult<()> {
        if self.body.is_empty() {
            return Ok(());
        }
        let sink = db.tx.copy_in(
            "COPY events (jurisdiction_id, sensor_id, event_type, ts_ms, received_ms, remote_ip, remote_prefix, remote_asn, local_ip, signature_id, signature, body) \
             FROM STDIN (FORMAT binary)",
        )?;
        let types = [
            Type::INT8,
            Type::INT8,
            Type::TEXT,
            Type::INT8,
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
            Type::INT8,
            Type::TEXT,
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
        ];
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        for i in 0..self.body.len() {
            writer.write(&[
                &self.jurisdiction_id[i],
                &self.sensor_id[i],
                &self.event_type[i],
                &self.ts_ms[i],
                &received_ms,
                &self.remote_ip[i],
                &self.remote_prefix[i],
                &self.remote_asn[i],
                &self.local_ip[i],
                &self.signature_id[i],
                &self.signature[i],
                &self.body[i],
            ])?;
        }
        writer.finish()?;
        Ok(())
    }
}

pub(super) fn ingest(db: &mut Db<'_>, batches: &[IngestBatch], policy: &CorrelationPolicy, allow: AllowView<'_>, now: Millis) -> TxResult<(Vec<IngestReceipt>, IngestEffects)> {
    lock_actor_keys(db, batches)?;
    trust::lock_sensors(db, batches)?;
    let mut receipts = Vec::with_capacity(batches.len());
    let mut effects = IngestEffects::default();
    let mut rows = EventRows::default();
    for batch in batches {
        receipts.push(ingest_one(db, batch, policy, allow, now, &mut effects, &mut rows)?);
    }
    rows.copy_into(db, now)?;
    Ok((receipts, effects))
}

#[allow(clippy::too_many_arguments)]
fn ingest_one(
    db: &mut Db<'_>,
    b: &IngestBatch,
    policy: &CorrelationPolicy,
    allow: AllowView<'_>,
    now: Millis,
    fx: &mut IngestEffects,
    rows: &mut EventRows,
) -> TxResult<IngestReceipt> {
    // The idempotency row first: a replica given the same batch at the same moment waits here
    // for this transaction, then finds the row and answers with the stored reply.
    let claimed = db.execute(
        "INSERT INTO batches (sensor_id, seq, received_ms, reply) VALUES ($1, $2, $3, '') ON CONFLICT (sensor_id, seq) DO NOTHING",
        &[&b.sensor_id, &b.seq, &now],
    )?;
    if claimed == 0 {
        let reply: String = db.query_one("SELECT reply FROM batches WHERE sensor_id = $1 AND seq = $2", &[&b.sensor_id, &b.seq])?.try_get(0)?;
        let mut receipt: IngestReceipt = serde_json::from_str(&reply).map_err(json_err)?;
        receipt.duplicate = true;
        return Ok(receipt);
    }
    let mut remotes: BTreeMap<IpAddr, RemoteAgg> = BTreeMap::new();
    let mut newest: Option<Millis> = None;
    let mut contacts = ContactRows::default();
    for ev in &b.events {
        newest = Some(newest.map_or(ev.ts_ms, |n| n.max(ev.ts_ms)));
        // ---- retro-hunt: contact records go to their compact table ----
        if let Some(c) = &ev.contact {
            contacts.add(c);
            continue;
        }
        rows.jurisdiction_id.push(b.jurisdiction_id);
        rows.sensor_id.push(b.sensor_id);
        rows.event_type.push(pg_text(&ev.event_type).into_owned());
        rows.ts_ms.push(ev.ts_ms);
        rows.remote_ip.push(ev.remote.map(|ip| ip.to_string()));
        rows.remote_prefix.push(ev.remote.map(crate::ingest::prefix_of));
        rows.remote_asn.push(ev.remote_asn.map(i64::from));
        rows.local_ip.push(ev.local.map(|ip| ip.to_string()));
        rows.signature_id.push(ev.signature_id);
        rows.signature.push(ev.signature.as_deref().map(|s| pg_text(s).into_owned()));
        rows.body.push(pg_text(&ev.raw).into_owned());
        if let Some(ip) = ev.remote {
            let agg = remotes.entry(ip).or_insert(RemoteAgg { count: 0, asn: ev.remote_asn });
            agg.count += 1;
        }
    }
    contacts.insert(db, b, now)?;
    mark_late(db, b, now)?;
    // trust: an allow-listed address is never a sighting; the rest correlate only within the
    // sensor's budget (every event above is stored either way).
    remotes.retain(|ip, _| !allow.contains(*ip));
    if !remotes.is_empty() {
        let ips: Vec<IpAddr> = remotes.keys().copied().collect();
        if trust::admit(db, b, &ips, policy, now, fx)? {
            for (ip, agg) in &remotes {
                correlate(db, b.sensor_id, b.jurisdiction_id, *ip, agg, policy, allow, now, fx)?;
            }
        }
    }
    db.execute(
        "UPDATE sensors SET last_seen_ms = $1, last_event_ms = GREATEST(last_event_ms, $2), events_total = events_total + $3 WHERE id = $4",
        &[&now, &newest, &(b.events.len() as i64), &b.sensor_id],
    )?;
    let receipt = IngestReceipt {
        sensor_id: b.sensor_id,
        seq: b.seq,
        accepted: b.events.len(),
        rejected_total: b.rejected_total,
        rejected: b.rejected.iter().map(|r| RejectionOut { line: r.line, reason: r.reason.clone() }).collect(),
        duplicate: false,
    };
    let reply = serde_json::to_string(&receipt).map_err(json_err)?;
    db.execute("UPDATE batches SET reply = $1 WHERE sensor_id = $2 AND seq = $3", &[&pg_text(&reply), &b.sensor_id, &b.seq])?;
    Ok(receipt)
}

/// Key of a contact record (the table's primary key).
type ContactKey = (IpAddr, i64, IpAddr, i32, i32, bool);

/// The key columns of [`ContactRows::insert`], one array each.
#[derive(Default)]
struct ContactColumns {
    remote: Vec<IpAddr>,
    hour: Vec<i64>,
    local: Vec<IpAddr>,
    port: Vec<i32>,
    proto: Vec<i32>,
    inbound: Vec<bool>,
}

/// One batch's contact records, summed per key (one statement may not update a row twice).
#[derive(Default)]
struct ContactRows {
    rows: BTreeMap<ContactKey, [i64; 5]>,
}

impl ContactRows {
    fn add(&mut self, c: &crate::retro::ContactRecord) {
        let key = (c.remote.to_canonical(), c.first_ms.div_euclid(3_600_000), c.local.to_canonical(), i32::from(c.port), i32::from(c.proto), c.inbound);
        let v = self.rows.entry(key).or_insert([c.first_ms, c.last_ms, 0, 0, 0]);
        v[0] = v[0].min(c.first_ms);
        v[1] = v[1].max(c.last_ms);
        v[2] = v[2].saturating_add(c.flows);
        v[3] = v[3].saturating_add(c.pkts);
        v[4] = v[4].saturating_add(c.bytes);
    }

    fn insert(&self, db: &mut Db<'_>, b: &IngestBatch, now: Millis) -> TxResult<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let mut cols = ContactColumns::default();
        let mut sums: [Vec<i64>; 5] = Default::default();
        for (&(remote, hour, local, port, proto, inbound), v) in &self.rows {
            cols.remote.push(remote);
            cols.hour.push(hour);
            cols.local.push(local);
            cols.port.push(port);
            cols.proto.push(proto);
            cols.inbound.push(inbound);
            for (col, value) in sums.iter_mut().zip(v) {
                col.push(*value);
            }
        }
        db.execute(
            "INSERT INTO contact_records (remote, hour, jurisdiction_id, local, port, proto, inbound, first_ms, last_ms, flows, pkts, bytes, sensor_id, received_ms) \
             SELECT r, h, $3, l, p, pr, i, f, la, fl, pk, by, $4, $5 \
             FROM unnest($1::inet[], $2::bigint[], $6::inet[], $7::int[], $8::int[], $9::bool[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[]) \
               AS t(r, h, l, p, pr, i, f, la, fl, pk, by) \
             ON CONFLICT (remote, hour, jurisdiction_id, local, port, proto, inbound) DO UPDATE SET \
             first_ms = LEAST(contact_records.first_ms, excluded.first_ms), last_ms = GREATEST(contact_records.last_ms, excluded.last_ms), \
             flows = contact_records.flows + excluded.flows, pkts = contact_records.pkts + excluded.pkts, \
             bytes = contact_records.bytes + excluded.bytes, received_ms = excluded.received_ms",
            &[
                &cols.remote,
                &cols.hour,
                &b.jurisdiction_id,
                &b.sensor_id,
                &now,
                &cols.local,
                &cols.port,
                &cols.proto,
                &cols.inbound,
                &sums[0],
                &sums[1],
                &sums[2],
                &sums[3],
                &sums[4],
            ],
        )?;
        Ok(())
    }
}

/// Notes that a batch brought contact records (see `retro_late` in the migration).
fn mark_late(db: &mut Db<'_>, b: &IngestBatch, now: Millis) -> TxResult<()> {
    let Some(since) = b.events.iter().filter_map(|e| e.contact.as_ref()).map(|c| c.first_ms).min() else { return Ok(()) };
    db.execute(
        "INSERT INTO retro_late (jurisdiction_id, since_ms, version, updated_ms) VALUES ($1, $2, 1, $3) \
         ON CONFLICT (jurisdiction_id) DO UPDATE SET since_ms = LEAST(retro_late.since_ms, excluded.since_ms), \
         version = retro_late.version + 1, updated_ms = excluded.updated_ms",
        &[&b.jurisdiction_id, &since, &now],
    )?;
    Ok(())
}

pub(super) fn log(db: &mut Db<'_>, campaign_id: i64, now: Millis, kind: &str, jurisdiction_id: Option<i64>, detail: &str) -> TxResult<()> {
    db.execute(
        "INSERT INTO campaign_log (campaign_id, ts_ms, kind, jurisdiction_id, detail) VALUES ($1, $2, $3, $4, $5)",
        &[&campaign_id, &now, &kind, &jurisdiction_id, &pg_text(detail)],
    )?;
    Ok(())
}

fn key_kind_value(key: &str) -> (&str, &str) {
    key.split_once(':').unwrap_or(("ip", key))
}

/// Adds a key to a campaign and, when the campaign is published, to the indicator feed; returns
/// whether an indicator was added.
pub(super) fn add_key(db: &mut Db<'_>, campaign_id: i64, key: &str, now: Millis) -> TxResult<bool> {
    let added = db.execute(
        "INSERT INTO campaign_keys (actor_key, campaign_id, added_ms) VALUES ($1, $2, $3) ON CONFLICT (actor_key, campaign_id) DO NOTHING",
        &[&key, &campaign_id, &now],
    )?;
    if added == 0 || !trust::published(db, campaign_id)? {
        return Ok(false);
    }
    let (kind, value) = key_kind_value(key);
    db.lock_indicator_log()?;
    db.execute(
        "INSERT INTO indicators (action, kind, value, campaign_id, ts_ms) VALUES ('add', $1, $2, $3, $4)",
        &[&kind, &value, &campaign_id, &now],
    )?;
    Ok(true)
}

/// Withdraws a published campaign's keys from the feed (`remove` deltas, only for values no
/// other source still holds); returns how many.
pub(super) fn withdraw_indicators(db: &mut Db<'_>, campaign_id: i64, now: Millis) -> TxResult<usize> {
    if !trust::published(db, campaign_id)? {
        return Ok(0);
    }
    let keys: Vec<String> = db
        .query("SELECT actor_key FROM campaign_keys WHERE campaign_id = $1 ORDER BY actor_key", &[&campaign_id])?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let mut n = 0;
    for key in &keys {
        let (kind, value) = key_kind_value(key);
        n += super::feeds::log_remove(db, kind, value, campaign_id, super::feeds::Holder::Campaign(campaign_id), now)? as usize;
    }
    db.execute("UPDATE campaigns SET published_ms = NULL WHERE id = $1", &[&campaign_id])?;
    Ok(n)
}

/// Records one remote address seen by one sensor and opens or extends a campaign.
/// The caller holds the advisory locks of `ip`'s keys (a superset of the keys used here).
#[allow(clippy::too_many_arguments)]
fn correlate(
    db: &mut Db<'_>,
    sensor_id: i64,
    jurisdiction_id: i64,
    ip: IpAddr,
    agg: &RemoteAgg,
    policy: &CorrelationPolicy,
    allow: AllowView<'_>,
    now: Millis,
    fx: &mut IngestEffects,
) -> TxResult<()> {
    // Never a key that covers an allow-listed address; the `ip:` key stays first.
    let keys = crate::trust::actor_keys(ip, agg.asn, allow);
    if keys.is_empty() {
        return Ok(());
    }
    db.execute(
        "INSERT INTO sightings (actor_key, jurisdiction_id, sensor_id, first_ms, last_ms, count) SELECT k, $2, $5, $3, $3, $4 FROM unnest($1::text[]) AS k \
         ON CONFLICT (actor_key, jurisdiction_id, sensor_id) DO UPDATE SET last_ms = excluded.last_ms, count = sightings.count + excluded.count",
        &[&keys, &jurisdiction_id, &now, &agg.count, &sensor_id],
    )?;
    // An open campaign that already holds one of the keys: extend it. FOR UPDATE waits for an
    // analyst changing it and skips it when it is no longer open afterwards.
    let existing = db.query_opt(
        "SELECT c.id FROM campaign_keys k JOIN campaigns c ON c.id = k.campaign_id \
         WHERE k.actor_key = ANY($1) AND c.status = 'open' ORDER BY c.id LIMIT 1 FOR UPDATE OF c",
        &[&keys],
    )?;
    if let Some(row) = existing {
        let campaign_id: i64 = row.try_get(0)?;
        fx.indicators_added += add_key(db, campaign_id, &keys[0], now)? as usize;
        extend(db, campaign_id, jurisdiction_id, agg.count, policy, now, fx)?;
        return Ok(());
    }
    let window_start = now.saturating_sub(policy.window_ms);
    // After an analyst closes a campaign about this actor, only sightings made after the close
    // count towards a new one: closing is not undone by the next packet from the same actor.
    let closed: Option<Millis> = db
        .query_one(
            "SELECT max(c.closed_ms) FROM campaign_keys k JOIN campaigns c ON c.id = k.campaign_id WHERE k.actor_key = ANY($1) AND c.status = 'closed'",
            &[&keys],
        )?
        .try_get(0)?;
    let since = closed.map_or(window_start, |c| window_start.max(c.saturating_add(1)));
    // Every key of this address seen by K jurisdictions since then belongs to the new campaign,
    // so one actor makes one campaign, not one per key.
    let mut qualifying: Vec<(&String, i64)> = Vec::new();
    for key in &keys {
        let n: i64 = db.query_one("SELECT count(DISTINCT jurisdiction_id) FROM sightings WHERE actor_key = $1 AND last_ms >= $2", &[key, &since])?.try_get(0)?;
        if n >= policy.min_jurisdictions {
            qualifying.push((key, n));
        }
    }
    let Some(&(first_key, first_n)) = qualifying.first() else {
        return Ok(());
    };
    let (kind, value) = key_kind_value(first_key);
    let campaign_id: i64 = db
        .query_one(
            "INSERT INTO campaigns (name, status, opened_ms, last_ms, opened_by_sensor) VALUES ($1, 'open', $2, $2, $3) RETURNING id",
            &[&format!("{kind} {value}"), &now, &sensor_id],
        )?
        .try_get(0)?;
    fx.campaigns_opened += 1;
    fx.indicators_added += add_key(db, campaign_id, &keys[0], now)? as usize;
    let mut members: BTreeMap<i64, (Millis, Millis, i64)> = BTreeMap::new();
    for &(key, _) in &qualifying {
        fx.indicators_added += add_key(db, campaign_id, key, now)? as usize;
        let rows = db.query("SELECT jurisdiction_id, min(first_ms), max(last_ms), sum(count)::bigint FROM sightings WHERE actor_key = $1 AND last_ms >= $2 GROUP BY jurisdiction_id", &[key, &since])?;
        for row in rows {
            let (j, first, last, count): (i64, Millis, Millis, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?);
            let m = members.entry(j).or_insert((first, last, count));
            *m = (m.0.min(first), m.1.max(last), m.2.max(count));
        }
    }
    log(db, campaign_id, now, "opened", None, &format!("{first_key} seen by {first_n} jurisdictions"))?;
    let mut ordered: Vec<(i64, (Millis, Millis, i64))> = members.into_iter().collect();
    ordered.sort_by_key(|&(j, (first, _, _))| (first, j));
    for (j, (first, last, count)) in ordered {
        db.execute(
            "INSERT INTO campaign_jurisdictions (campaign_id, jurisdiction_id, first_ms, last_ms, sightings) VALUES ($1, $2, $3, $4, $5)",
            &[&campaign_id, &j, &first, &last, &count],
        )?;
        log(db, campaign_id, now, "jurisdiction_added", Some(j), "")?;
        fx.notifications_enqueued += enqueue(db, campaign_id, j, "targeted", "targeted", now, policy.digest_interval_ms)?;
    }
    // A campaign that opens large starts at its level without a second message: the
    // "targeted" warning already carries the count of other jurisdictions.
    escalate(db, campaign_id, policy, now, false, fx)?;
    // Its members are warned now; every sensor gets its keys only past the publication bar.
    trust::refresh_publication(db, campaign_id, policy, now, false, fx)?;
    Ok(())
}

fn extend(db: &mut Db<'_>, campaign_id: i64, jurisdiction_id: i64, count: i64, policy: &CorrelationPolicy, now: Millis, fx: &mut IngestEffects) -> TxResult<()> {
    db.execute("UPDATE campaigns SET last_ms = $1 WHERE id = $2", &[&now, &campaign_id])?;
    let updated = db.execute(
        "UPDATE campaign_jurisdictions SET last_ms = $1, sightings = sightings + $2 WHERE campaign_id = $3 AND jurisdiction_id = $4",
        &[&now, &count, &campaign_id, &jurisdiction_id],
    )?;
    if updated > 0 {
        // A member seen again may now count in good standing (a hold ended, a merge).
        trust::refresh_publication(db, campaign_id, policy, now, false, fx)?;
        return Ok(());
    }
    db.execute(
        "INSERT INTO campaign_jurisdictions (campaign_id, jurisdiction_id, first_ms, last_ms, sightings) VALUES ($1, $2, $3, $3, $4)",
        &[&campaign_id, &jurisdiction_id, &now, &count],
    )?;
    log(db, campaign_id, now, "jurisdiction_added", Some(jurisdiction_id), "")?;
    fx.notifications_enqueued += enqueue(db, campaign_id, jurisdiction_id, "targeted", "targeted", now, policy.digest_interval_ms)?;
    // Everyone already in the campaign hears that it grew, as a digest.
    let others: Vec<i64> = db
        .query("SELECT jurisdiction_id FROM campaign_jurisdictions WHERE campaign_id = $1 AND jurisdiction_id <> $2", &[&campaign_id, &jurisdiction_id])?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    if !escalate(db, campaign_id, policy, now, true, fx)? {
        for j in others {
            fx.notifications_enqueued += enqueue(db, campaign_id, j, "grew", "update", now, policy.digest_interval_ms)?;
        }
    }
    trust::refresh_publication(db, campaign_id, policy, now, false, fx)?;
    Ok(())
}

/// Raises the campaign's escalation level when its size crosses a threshold; with `notify`,
/// everyone in the campaign hears it once per level.
fn escalate(db: &mut Db<'_>, campaign_id: i64, policy: &CorrelationPolicy, now: Millis, notify: bool, fx: &mut IngestEffects) -> TxResult<bool> {
    let row = db.query_one(
        "SELECT escalation, (SELECT count(*) FROM campaign_jurisdictions WHERE campaign_id = $1) FROM campaigns WHERE id = $1",
        &[&campaign_id],
    )?;
    let (level, size): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    let new_level = policy.escalate_at.iter().filter(|&&t| size >= t).count() as i64;
    if new_level <= level {
        return Ok(false);
    }
    db.execute("UPDATE campaigns SET escalation = $1 WHERE id = $2", &[&new_level, &campaign_id])?;
    log(db, campaign_id, now, "escalated", None, &format!("{size} jurisdictions, level {new_level}"))?;
    if !notify {
        return Ok(true);
    }
    let all: Vec<i64> = db
        .query("SELECT jurisdiction_id FROM campaign_jurisdictions WHERE campaign_id = $1", &[&campaign_id])?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let key = format!("escalated:{new_level}");
    for j in all {
        fx.notifications_enqueued += enqueue(db, campaign_id, j, "escalated", &key, now, policy.digest_interval_ms)?;
    }
    Ok(true)
}

/// Enqueues one notification per contact of a jurisdiction.
///
/// `event_key` "update" is a digest: while an earlier notification of this campaign to the same
/// contact is still pending, nothing is added (that one is rendered with the latest state when
/// sent); otherwise the new one waits until `digest_interval_ms` after the previous update.
fn enqueue(db: &mut Db<'_>, campaign_id: i64, jurisdiction_id: i64, kind: &str, event_key: &str, now: Millis, digest_interval_ms: Millis) -> TxResult<usize> {
    let contacts: Vec<i64> =
        db.query("SELECT id FROM contacts WHERE jurisdiction_id = $1", &[&jurisdiction_id])?.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
    let mut n = 0;
    let mut seen = HashSet::new();
    for contact in contacts {
        if !seen.insert(contact) {
            continue;
        }
        let (key, due) = if event_key == "update" {
            let pending: i64 = db
                .query_one(
                    "SELECT count(*) FROM notifications WHERE contact_id = $1 AND campaign_id = $2 AND status = 'pending'",
                    &[&contact, &campaign_id],
                )?
                .try_get(0)?;
            if pending > 0 {
                continue;
            }
            let row = db.query_one(
                "SELECT count(*), max(coalesce(delivered_ms, next_attempt_ms)) FROM notifications WHERE contact_id = $1 AND campaign_id = $2 AND event_key LIKE 'update:%'",
                &[&contact, &campaign_id],
            )?;
            let (count, last): (i64, Option<Millis>) = (row.try_get(0)?, row.try_get(1)?);
            let due = last.map_or(now, |l| l.saturating_add(digest_interval_ms).max(now));
            (format!("update:{}", count + 1), due)
        } else {
            (event_key.to_string(), now)
        };
        n += db.execute(
            "INSERT INTO notifications (campaign_id, jurisdiction_id, contact_id, event_kind, event_key, status, next_attempt_ms, created_ms) \
             VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7) ON CONFLICT (contact_id, campaign_id, event_key) DO NOTHING",
            &[&campaign_id, &jurisdiction_id, &contact, &kind, &key, &due, &now],
        )? as usize;
    }
    n += enqueue_rollup(db, campaign_id, jurisdiction_id, kind, event_key, now, digest_interval_ms)?;
    if n > 0 {
        // Other replicas' delivery workers wake at commit (see `listen`).
        db.notify_outbox()?;
    }
    Ok(n)
}

/// The state roll-up ([`crate::rollup`]; the SQLite store's `enqueue_rollup` says how): a
/// county's or city's targeting or escalation tells its state's contacts once per campaign
/// event, later counties as digests.
fn enqueue_rollup(db: &mut Db<'_>, campaign_id: i64, member: i64, kind: &str, event_key: &str, now: Millis, digest_interval_ms: Millis) -> TxResult<usize> {
    let Some(plan) = crate::rollup::RollupPlan::for_member_event(kind, event_key) else { return Ok(0) };
    let parent: Option<i64> = match db.query_opt("SELECT parent_id FROM jurisdictions WHERE id = $1", &[&member])? {
        Some(r) => r.try_get(0)?,
        None => None,
    };
    let Some(state) = parent.filter(|&p| p != member) else { return Ok(0) };
    let contacts: Vec<i64> = db.query("SELECT id FROM contacts WHERE jurisdiction_id = $1", &[&state])?.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
    const INSERT: &str = "INSERT INTO notifications (campaign_id, jurisdiction_id, contact_id, event_kind, event_key, status, next_attempt_ms, created_ms) \
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7) ON CONFLICT (contact_id, campaign_id, event_key) DO NOTHING";
    let mut n = 0;
    for contact in contacts {
        let added = db.execute(INSERT, &[&campaign_id, &state, &contact, &plan.kind, &plan.key, &now, &now])? as usize;
        n += added;
        if added > 0 || !plan.digest_after_first {
            continue;
        }
        let pending: i64 = db
            .query_one(
                "SELECT count(*) FROM notifications WHERE contact_id = $1 AND campaign_id = $2 AND status = 'pending' AND event_key LIKE 'state%'",
                &[&contact, &campaign_id],
            )?
            .try_get(0)?;
        if pending > 0 {
            continue;
        }
        let row = db.query_one(
            "SELECT count(*), max(coalesce(delivered_ms, next_attempt_ms)) FROM notifications WHERE contact_id = $1 AND campaign_id = $2 AND event_key LIKE 'state%'",
            &[&contact, &campaign_id],
        )?;
        let (count, last): (i64, Option<Millis>) = (row.try_get(0)?, row.try_get(1)?);
        let due = last.map_or(now, |l| l.saturating_add(digest_interval_ms).max(now));
        let key = format!("{}:{}", crate::rollup::DIGEST_KEY, count + 1);
        n += db.execute(INSERT, &[&campaign_id, &state, &contact, &crate::rollup::KIND_GREW, &key, &due, &now])? as usize;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_ids_are_stable_and_distinct() {
        assert_eq!(lock_id("ip:192.0.2.1"), lock_id("ip:192.0.2.1"));
        assert_ne!(lock_id("ip:192.0.2.1"), lock_id("net:192.0.2.0/24"));
    }
}
