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
//! Statements per group, not per batch (docs/hub.md "Ingest on PostgreSQL"): idempotency rows
//! are claimed in one statement ([`claim_batches`]), events and contact records are written
//! with binary `COPY` (contact records fall back to an upsert when a key is already stored),
//! sensors' counters and late-hunt marks with one statement each. [`correlate_group`] reads
//! what correlation needs once per group and writes the sightings of addresses that cannot
//! change a campaign together, while addresses that can take the full path of [`correlate`]
//! in group order, so the outcome is that of correlating the batches one by one.
//!
//! Trust (see [`super::trust`]): allow-listed addresses are dropped before correlation, a batch
//! correlates only when its sensor is within its budget, sightings carry the sensor's id, and a
//! campaign's keys reach the indicator feed only past the publication bar. Revoke, release and
//! allow-list changes take the correlation lock exclusively.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use sha2::Digest;

use super::trust;
use super::{json_err, pg_text, Db, TxError, TxResult};
use crate::error::StoreError;
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
    fn push(&mut self, b: &IngestBatch, ev: &crate::ingest::ParsedEvent) {
        self.jurisdiction_id.push(b.jurisdiction_id);
        self.sensor_id.push(b.sensor_id);
        self.event_type.push(pg_text(&ev.event_type).into_owned());
        self.ts_ms.push(ev.ts_ms);
        self.remote_ip.push(ev.remote.map(|ip| ip.to_string()));
        self.remote_prefix.push(ev.remote.map(crate::ingest::prefix_of));
        self.remote_asn.push(ev.remote_asn.map(i64::from));
        self.local_ip.push(ev.local.map(|ip| ip.to_string()));
        self.signature_id.push(ev.signature_id);
        self.signature.push(ev.signature.as_deref().map(|s| pg_text(s).into_owned()));
        self.body.push(pg_text(&ev.raw).into_owned());
    }

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
    let mut effects = IngestEffects::default();
    let (receipts, fresh) = claim_batches(db, batches, now)?;
    let mut rows = EventRows::default();
    let mut contacts = ContactRows::default();
    let mut late: BTreeMap<i64, Millis> = BTreeMap::new();
    let mut seen: BTreeMap<i64, SensorSeen> = BTreeMap::new();
    let mut sightings: Vec<(usize, BTreeMap<IpAddr, RemoteAgg>)> = Vec::new();
    for &i in &fresh {
        let b = &batches[i];
        let mut remotes: BTreeMap<IpAddr, RemoteAgg> = BTreeMap::new();
        let mut newest: Option<Millis> = None;
        let mut first_contact: Option<Millis> = None;
        for ev in &b.events {
            newest = Some(newest.map_or(ev.ts_ms, |n| n.max(ev.ts_ms)));
            // ---- retro-hunt: contact records go to their compact table ----
            if let Some(c) = &ev.contact {
                contacts.add(c, b);
                first_contact = Some(first_contact.map_or(c.first_ms, |f| f.min(c.first_ms)));
                continue;
            }
            rows.push(b, ev);
            if let Some(ip) = ev.remote {
                let agg = remotes.entry(ip).or_insert(RemoteAgg { count: 0, asn: ev.remote_asn });
                agg.count += 1;
            }
        }
        if let Some(since) = first_contact {
            let l = late.entry(b.jurisdiction_id).or_insert(since);
            *l = (*l).min(since);
        }
        let s = seen.entry(b.sensor_id).or_default();
        s.newest = match (s.newest, newest) {
            (Some(a), Some(n)) => Some(a.max(n)),
            (a, n) => a.or(n),
        };
        s.events += b.events.len() as i64;
        // trust: an allow-listed address is never a sighting (every event above is stored
        // either way).
        remotes.retain(|ip, _| !allow.contains(*ip));
        if !remotes.is_empty() {
            sightings.push((i, remotes));
        }
    }
    correlate_group(db, batches, sightings, policy, allow, now, &mut effects)?;
    contacts.insert(db, now)?;
    mark_late(db, &late, now)?;
    touch_sensors(db, &seen, now)?;
    rows.copy_into(db, now)?;
    Ok((receipts, effects))
}

/// The receipt a stored batch is answered with (and, stored with its key, every repeat).
fn receipt_of(b: &IngestBatch) -> IngestReceipt {
    IngestReceipt {
        sensor_id: b.sensor_id,
        seq: b.seq,
        accepted: b.events.len(),
        rejected_total: b.rejected_total,
        rejected: b.rejected.iter().map(|r| RejectionOut { line: r.line, reason: r.reason.clone() }).collect(),
        duplicate: false,
    }
}

/// Claims the idempotency rows of a group in one statement, each with the reply it will be
/// answered with (the reply depends on the batch alone). A replica given the same batch at the
/// same moment waits on the row for this transaction, then finds it and answers with the stored
/// reply. Returns every batch's receipt and the indexes of the batches to store (the rest are
/// repeats: of an earlier acknowledged batch, or of one earlier in this group).
fn claim_batches(db: &mut Db<'_>, batches: &[IngestBatch], now: Millis) -> TxResult<(Vec<IngestReceipt>, Vec<usize>)> {
    let mut receipts: Vec<Option<IngestReceipt>> = vec![None; batches.len()];
    // The first batch with each key, in key order (so concurrent claims lock rows in one order).
    let mut first: BTreeMap<(i64, i64), usize> = BTreeMap::new();
    for (i, b) in batches.iter().enumerate() {
        first.entry((b.sensor_id, b.seq)).or_insert(i);
    }
    let (mut sensors, mut seqs, mut replies) = (Vec::with_capacity(first.len()), Vec::with_capacity(first.len()), Vec::with_capacity(first.len()));
    for (&(sensor, seq), &i) in &first {
        let receipt = receipt_of(&batches[i]);
        sensors.push(sensor);
        seqs.push(seq);
        replies.push(pg_text(&serde_json::to_string(&receipt).map_err(json_err)?).into_owned());
        receipts[i] = Some(receipt);
    }
    let claimed: HashSet<(i64, i64)> = db
        .query(
            "INSERT INTO batches (sensor_id, seq, received_ms, reply) SELECT s, q, $4, r FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS t(s, q, r) \
             ON CONFLICT (sensor_id, seq) DO NOTHING RETURNING sensor_id, seq",
            &[&sensors, &seqs, &replies, &now],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, postgres::Error>>()?;
    let mut fresh = Vec::with_capacity(claimed.len());
    if claimed.len() < first.len() {
        let (mut ds, mut dq) = (Vec::new(), Vec::new());
        for &(sensor, seq) in first.keys().filter(|k| !claimed.contains(k)) {
            ds.push(sensor);
            dq.push(seq);
        }
        let rows = db.query(
            "SELECT b.sensor_id, b.seq, b.reply FROM batches b JOIN unnest($1::bigint[], $2::bigint[]) AS t(s, q) ON b.sensor_id = t.s AND b.seq = t.q",
            &[&ds, &dq],
        )?;
        for r in rows {
            let key: (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
            let reply: String = r.try_get(2)?;
            let mut receipt: IngestReceipt = serde_json::from_str(&reply).map_err(json_err)?;
            receipt.duplicate = true;
            if let Some(&i) = first.get(&key) {
                receipts[i] = Some(receipt);
            }
        }
    }
    for (i, b) in batches.iter().enumerate() {
        let key = (b.sensor_id, b.seq);
        let first_i = first[&key];
        if first_i == i && claimed.contains(&key) {
            fresh.push(i);
        } else if first_i != i {
            let mut r = receipts[first_i].clone().ok_or_else(|| StoreError::Database(format!("batch {}:{} has no reply", key.0, key.1)))?;
            r.duplicate = true;
            receipts[i] = Some(r);
        }
    }
    let receipts = receipts
        .into_iter()
        .zip(batches)
        .map(|(r, b)| r.ok_or_else(|| TxError::from(StoreError::Database(format!("batch {}:{} has no stored reply", b.sensor_id, b.seq)))))
        .collect::<TxResult<Vec<_>>>()?;
    Ok((receipts, fresh))
}

/// What a group changes on one sensor's row.
#[derive(Default)]
struct SensorSeen {
    newest: Option<Millis>,
    events: i64,
}

/// Updates the group's sensors (last seen, newest event, event count) in one statement.
fn touch_sensors(db: &mut Db<'_>, seen: &BTreeMap<i64, SensorSeen>, now: Millis) -> TxResult<()> {
    if seen.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = seen.keys().copied().collect();
    let newest: Vec<Option<Millis>> = seen.values().map(|s| s.newest).collect();
    let events: Vec<i64> = seen.values().map(|s| s.events).collect();
    db.execute(
        "UPDATE sensors SET last_seen_ms = $1, last_event_ms = GREATEST(sensors.last_event_ms, t.newest), events_total = sensors.events_total + t.events \
         FROM unnest($2::bigint[], $3::bigint[], $4::bigint[]) AS t(id, newest, events) WHERE sensors.id = t.id",
        &[&now, &ids, &newest, &events],
    )?;
    Ok(())
}

/// Correlates a group's sightings, batch after batch in group order, with the same outcome as
/// correlating each remote address on its own (as the SQLite store does) but far fewer
/// statements. What is read once for the whole group, under the actor-key locks (so nobody
/// else changes it meanwhile):
/// * which keys belong to an open campaign, and how many jurisdictions sighted each key within
///   the window. A key is *hot* when it is in an open campaign or could reach K jurisdictions
///   with this group's sightings (stored count + the group's jurisdictions, an upper bound).
///   An address none of whose keys is hot can neither open nor extend a campaign: its
///   sightings are only counted, and they are written together (one statement per run of
///   such addresses). An address with a hot key takes the full path ([`correlate`]) after the
///   sightings before it are written, so it reads exactly what it would have read alone.
/// * the sensors' budget states and which addresses each jurisdiction already sighted (the
///   trust budget counts new ones); both are then kept in memory for the rest of the group.
fn correlate_group(
    db: &mut Db<'_>,
    batches: &[IngestBatch],
    work: Vec<(usize, BTreeMap<IpAddr, RemoteAgg>)>,
    policy: &CorrelationPolicy,
    allow: AllowView<'_>,
    now: Millis,
    fx: &mut IngestEffects,
) -> TxResult<()> {
    if work.is_empty() {
        return Ok(());
    }
    // Keys per address, and which of the group's jurisdictions sight each key.
    let work: Vec<(usize, Vec<Remote>)> = work
        .into_iter()
        .map(|(i, remotes)| (i, remotes.into_iter().map(|(ip, agg)| { let keys = crate::trust::actor_keys(ip, agg.asn, allow); (ip, agg, keys) }).collect()))
        .collect();
    let mut group_js: HashMap<&str, HashSet<i64>> = HashMap::new();
    let mut ip_pairs: (Vec<String>, Vec<i64>) = (Vec::new(), Vec::new());
    for (i, list) in &work {
        let j = batches[*i].jurisdiction_id;
        for (ip, _, keys) in list {
            for k in keys {
                group_js.entry(k.as_str()).or_default().insert(j);
            }
            ip_pairs.0.push(format!("ip:{ip}"));
            ip_pairs.1.push(j);
        }
    }
    let all_keys: Vec<&str> = group_js.keys().copied().collect();
    let open: HashSet<String> = db
        .query(
            "SELECT DISTINCT k.actor_key FROM campaign_keys k JOIN campaigns c ON c.id = k.campaign_id WHERE k.actor_key = ANY($1) AND c.status = 'open'",
            &[&all_keys],
        )?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let window_start = now.saturating_sub(policy.window_ms);
    let mut counts: HashMap<String, i64> = HashMap::new();
    for r in db.query(
        "SELECT actor_key, count(DISTINCT jurisdiction_id) FROM sightings WHERE actor_key = ANY($1) AND last_ms >= $2 GROUP BY actor_key",
        &[&all_keys, &window_start],
    )? {
        counts.insert(r.try_get(0)?, r.try_get(1)?);
    }
    let hot = |k: &str| open.contains(k) || counts.get(k).copied().unwrap_or(0) + group_js.get(k).map_or(0, |s| s.len() as i64) >= policy.min_jurisdictions;
    let hot: HashSet<String> = all_keys.iter().filter(|k| hot(k)).map(|k| k.to_string()).collect();
    // (address key, jurisdiction) pairs sighted within the window: stored, then this group's.
    let mut sighted: HashSet<(String, i64)> = HashSet::new();
    for r in db.query(
        "SELECT DISTINCT s.actor_key, s.jurisdiction_id FROM sightings s JOIN unnest($1::text[], $2::bigint[]) AS t(k, j) \
         ON s.actor_key = t.k AND s.jurisdiction_id = t.j WHERE s.last_ms >= $3",
        &[&ip_pairs.0, &ip_pairs.1, &window_start],
    )? {
        sighted.insert((r.try_get(0)?, r.try_get(1)?));
    }
    let mut sensor_ids: Vec<i64> = work.iter().map(|(i, _)| batches[*i].sensor_id).collect();
    sensor_ids.sort_unstable();
    sensor_ids.dedup();
    let mut budgets = trust::Budgets::load(db, &sensor_ids)?;
    let mut pending = PendingSightings::default();
    for (i, list) in work {
        let b = &batches[i];
        let ips: Vec<IpAddr> = list.iter().map(|(ip, _, _)| *ip).collect();
        let count_new = || ips.iter().filter(|ip| !sighted.contains(&(format!("ip:{ip}"), b.jurisdiction_id))).count() as i64;
        match budgets.decide(b, ips.len(), count_new, policy, now, fx) {
            trust::Decision::Correlate => {}
            trust::Decision::Held => continue,
            trust::Decision::Breach(kind, new_remotes) => {
                pending.flush(db, now)?;
                budgets.flush(db)?;
                trust::breach(db, b, kind, ips.len(), new_remotes, policy, now, fx)?;
                budgets.reload(db, b.sensor_id)?;
                continue;
            }
        }
        for (ip, agg, keys) in list {
            if keys.is_empty() {
                continue;
            }
            for k in &keys {
                sighted.insert((k.clone(), b.jurisdiction_id));
            }
            if keys.iter().any(|k| hot.contains(k)) {
                pending.flush(db, now)?;
                correlate(db, b.sensor_id, b.jurisdiction_id, ip, &agg, policy, allow, now, fx)?;
            } else {
                for k in keys {
                    *pending.rows.entry((k, b.jurisdiction_id, b.sensor_id)).or_default() += agg.count;
                }
            }
        }
    }
    pending.flush(db, now)?;
    budgets.flush(db)?;
    Ok(())
}

/// One remote address of a batch: its aggregate and its actor keys.
type Remote = (IpAddr, RemoteAgg, Vec<String>);

/// Sightings of addresses that cannot change a campaign, summed per (key, jurisdiction,
/// sensor) until they are written in one statement.
#[derive(Default)]
struct PendingSightings {
    rows: BTreeMap<(String, i64, i64), i64>,
}

impl PendingSightings {
    fn flush(&mut self, db: &mut Db<'_>, now: Millis) -> TxResult<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let n = self.rows.len();
        let (mut keys, mut js, mut ss, mut counts) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for ((k, j, s), c) in std::mem::take(&mut self.rows) {
            keys.push(k);
            js.push(j);
            ss.push(s);
            counts.push(c);
        }
        db.execute(
            "INSERT INTO sightings (actor_key, jurisdiction_id, sensor_id, first_ms, last_ms, count) \
             SELECT k, j, s, $4, $4, c FROM unnest($1::text[], $2::bigint[], $3::bigint[], $5::bigint[]) AS t(k, j, s, c) \
             ON CONFLICT (actor_key, jurisdiction_id, sensor_id) DO UPDATE SET last_ms = excluded.last_ms, count = sightings.count + excluded.count",
            &[&keys, &js, &ss, &now, &counts],
        )?;
        Ok(())
    }
}

/// Key of a contact record (the table's primary key).
type ContactKey = (IpAddr, i64, i64, IpAddr, i32, i32, bool);

/// The key columns of [`ContactRows::insert`], one array each.
#[derive(Default)]
struct ContactColumns {
    remote: Vec<IpAddr>,
    hour: Vec<i64>,
    jurisdiction: Vec<i64>,
    local: Vec<IpAddr>,
    port: Vec<i32>,
    proto: Vec<i32>,
    inbound: Vec<bool>,
    sensor: Vec<i64>,
}

/// A group's contact records, summed per key (one statement may not update a row twice); a
/// record's sensor is the first that sent its key in the group.
#[derive(Default)]
struct ContactRows {
    rows: BTreeMap<ContactKey, ([i64; 5], i64)>,
}

impl ContactRows {
    fn add(&mut self, c: &crate::retro::ContactRecord, b: &IngestBatch) {
        let key = (c.remote.to_canonical(), c.first_ms.div_euclid(3_600_000), b.jurisdiction_id, c.local.to_canonical(), i32::from(c.port), i32::from(c.proto), c.inbound);
        let (v, _) = self.rows.entry(key).or_insert(([c.first_ms, c.last_ms, 0, 0, 0], b.sensor_id));
        v[0] = v[0].min(c.first_ms);
        v[1] = v[1].max(c.last_ms);
        v[2] = v[2].saturating_add(c.flows);
        v[3] = v[3].saturating_add(c.pkts);
        v[4] = v[4].saturating_add(c.bytes);
    }

    /// Stores the group's records. Almost always no key is stored yet (a sensor sends each
    /// hour's record once), so they are first written with one binary `COPY` in a savepoint;
    /// when a key is already there (a record re-sent, or two sensors of one jurisdiction) the
    /// `COPY` fails on the primary key, the savepoint is rolled back and the group is merged
    /// with an upsert instead.
    fn insert(&self, db: &mut Db<'_>, now: Millis) -> TxResult<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        match self.copy(db, now) {
            Err(TxError::Pg(e)) if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) => self.upsert(db, now),
            other => other,
        }
    }

    fn copy(&self, db: &mut Db<'_>, now: Millis) -> TxResult<()> {
        let mut sp = db.tx.savepoint("contact_copy")?;
        let sink = sp.copy_in(
            "COPY contact_records (remote, hour, jurisdiction_id, local, port, proto, inbound, first_ms, last_ms, flows, pkts, bytes, sensor_id, received_ms) \
             FROM STDIN (FORMAT binary)",
        )?;
        let types = [
            Type::INET,
            Type::INT8,
            Type::INT8,
            Type::INET,
            Type::INT4,
            Type::INT4,
            Type::BOOL,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::INT8,
        ];
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        for ((remote, hour, jurisdiction, local, port, proto, inbound), (v, sensor)) in &self.rows {
            writer.write(&[remote, hour, jurisdiction, local, port, proto, inbound, &v[0], &v[1], &v[2], &v[3], &v[4], sensor, &now])?;
        }
        writer.finish()?;
        sp.commit()?;
        Ok(())
    }

    fn upsert(&self, db: &mut Db<'_>, now: Millis) -> TxResult<()> {
        let mut cols = ContactColumns::default();
        let mut sums: [Vec<i64>; 5] = Default::default();
        for (&(remote, hour, jurisdiction, local, port, proto, inbound), (v, sensor)) in &self.rows {
            cols.remote.push(remote);
            cols.hour.push(hour);
            cols.jurisdiction.push(jurisdiction);
            cols.local.push(local);
            cols.port.push(port);
            cols.proto.push(proto);
            cols.inbound.push(inbound);
            cols.sensor.push(*sensor);
            for (col, value) in sums.iter_mut().zip(v) {
                col.push(*value);
            }
        }
        db.execute(
            "INSERT INTO contact_records (remote, hour, jurisdiction_id, local, port, proto, inbound, first_ms, last_ms, flows, pkts, bytes, sensor_id, received_ms) \
             SELECT r, h, j, l, p, pr, i, f, la, fl, pk, by, s, $14 \
             FROM unnest($1::inet[], $2::bigint[], $3::bigint[], $4::inet[], $5::int[], $6::int[], $7::bool[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[]) \
               AS t(r, h, j, l, p, pr, i, f, la, fl, pk, by, s) \
             ON CONFLICT (remote, hour, jurisdiction_id, local, port, proto, inbound) DO UPDATE SET \
             first_ms = LEAST(contact_records.first_ms, excluded.first_ms), last_ms = GREATEST(contact_records.last_ms, excluded.last_ms), \
             flows = contact_records.flows + excluded.flows, pkts = contact_records.pkts + excluded.pkts, \
             bytes = contact_records.bytes + excluded.bytes, received_ms = excluded.received_ms",
            &[
                &cols.remote,
                &cols.hour,
                &cols.jurisdiction,
                &cols.local,
                &cols.port,
                &cols.proto,
                &cols.inbound,
                &sums[0],
                &sums[1],
                &sums[2],
                &sums[3],
                &sums[4],
                &cols.sensor,
                &now,
            ],
        )?;
        Ok(())
    }
}

/// Notes that batches brought contact records (see `retro_late` in the migration): per
/// jurisdiction, the earliest record's start.
fn mark_late(db: &mut Db<'_>, late: &BTreeMap<i64, Millis>, now: Millis) -> TxResult<()> {
    if late.is_empty() {
        return Ok(());
    }
    let js: Vec<i64> = late.keys().copied().collect();
    let since: Vec<Millis> = late.values().copied().collect();
    db.execute(
        "INSERT INTO retro_late (jurisdiction_id, since_ms, version, updated_ms) SELECT j, s, 1, $3 FROM unnest($1::bigint[], $2::bigint[]) AS t(j, s) \
         ON CONFLICT (jurisdiction_id) DO UPDATE SET since_ms = LEAST(retro_late.since_ms, excluded.since_ms), \
         version = retro_late.version + 1, updated_ms = excluded.updated_ms",
        &[&js, &since, &now],
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
        db.query("SELECT id FROM contacts WHERE jurisdiction_id = $1 AND priority = 1", &[&jurisdiction_id])?.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
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
    let contacts: Vec<i64> = db.query("SELECT id FROM contacts WHERE jurisdiction_id = $1 AND priority = 1", &[&state])?.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
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
