//! Federation's SQL on PostgreSQL, the counterpart of `store/sqlite/federation.rs` (rules in
//! [`crate::share::federation`]).

use super::{pg_text, Db, TxResult};
use crate::model::Millis;
use crate::share::federation::{OutboundQuery, PeerState, PushRecord};
use crate::share::feeds::NewFeed;
use crate::share::objects::{tlp_rank, StoredObject, COLLECTION_INBOX};

/// The next objects for a peer (see the SQLite counterpart).
pub(super) fn outbound(db: &mut Db<'_>, q: &OutboundQuery) -> TxResult<Vec<StoredObject>> {
    let max = tlp_rank(q.max_tlp).min(2) as i32;
    let relay: Vec<std::borrow::Cow<'_, str>> = q.relay_from.iter().map(|s| pg_text(s)).collect();
    let types: Vec<std::borrow::Cow<'_, str>> = q.types.iter().map(|s| pg_text(s)).collect();
    let limit = q.limit.min(10_000) as i64;
    let rows = db.query(
        "SELECT seq, date_added_us, object_id, version, body FROM taxii_objects \
         WHERE (date_added_us, seq) > ($1, $2) \
           AND (collection = $3 OR (collection = $4 AND added_by = ANY($5::text[]))) \
           AND tlp <= $6 \
           AND (cardinality($7::text[]) = 0 OR object_type = ANY($7)) \
         ORDER BY date_added_us, seq LIMIT $8",
        &[&q.after.0, &q.after.1, &pg_text(&q.collection), &COLLECTION_INBOX, &relay, &max, &types, &limit],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(StoredObject { seq: r.try_get(0)?, date_added_us: r.try_get(1)?, object_id: r.try_get(2)?, version: r.try_get(3)?, body: r.try_get(4)? });
    }
    Ok(out)
}

const PEER_COLS: &str = "name, cursor_us, cursor_seq, sent_total, received_total, last_push_ms, last_ok_ms, last_received_ms, last_error, failures";

fn row_peer(r: &::postgres::Row) -> TxResult<PeerState> {
    Ok(PeerState {
        name: r.try_get(0)?,
        cursor: (r.try_get(1)?, r.try_get(2)?),
        sent_total: r.try_get(3)?,
        received_total: r.try_get(4)?,
        last_push_ms: r.try_get(5)?,
        last_ok_ms: r.try_get(6)?,
        last_received_ms: r.try_get(7)?,
        last_error: r.try_get(8)?,
        failures: r.try_get(9)?,
    })
}

pub(super) fn peer(db: &mut Db<'_>, name: &str) -> TxResult<Option<PeerState>> {
    match db.query_opt(&format!("SELECT {PEER_COLS} FROM federation_peers WHERE name = $1"), &[&pg_text(name)])? {
        Some(r) => Ok(Some(row_peer(&r)?)),
        None => Ok(None),
    }
}

pub(super) fn peers(db: &mut Db<'_>) -> TxResult<Vec<PeerState>> {
    db.query(&format!("SELECT {PEER_COLS} FROM federation_peers ORDER BY name"), &[])?.iter().map(row_peer).collect()
}

fn ensure(db: &mut Db<'_>, name: &str) -> TxResult<()> {
    db.execute("INSERT INTO federation_peers (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", &[&pg_text(name)])?;
    Ok(())
}

pub(super) fn record_push(db: &mut Db<'_>, name: &str, r: &PushRecord, now: Millis) -> TxResult<()> {
    ensure(db, name)?;
    let name = pg_text(name);
    match &r.error {
        None => db.execute(
            "UPDATE federation_peers SET \
               cursor_us = CASE WHEN ($2::bigint, $3::bigint) > (cursor_us, cursor_seq) THEN $2 ELSE cursor_us END, \
               cursor_seq = CASE WHEN ($2::bigint, $3::bigint) > (cursor_us, cursor_seq) THEN $3 ELSE cursor_seq END, \
               sent_total = sent_total + $4, last_push_ms = $5, last_ok_ms = $5, last_error = NULL, failures = 0 \
             WHERE name = $1",
            &[&name, &r.cursor.0, &r.cursor.1, &(r.sent as i64), &now],
        )?,
        Some(e) => db.execute(
            "UPDATE federation_peers SET last_push_ms = $2, last_error = $3, failures = failures + 1 WHERE name = $1",
            &[&name, &now, &pg_text(e)],
        )?,
    };
    Ok(())
}

pub(super) fn record_received(db: &mut Db<'_>, name: &str, n: usize, now: Millis) -> TxResult<()> {
    ensure(db, name)?;
    db.execute(
        "UPDATE federation_peers SET received_total = received_total + $2, last_received_ms = $3 WHERE name = $1",
        &[&pg_text(name), &(n as i64), &now],
    )?;
    Ok(())
}

pub(super) fn set_feed_rules(db: &mut Db<'_>, id: i64, new: &NewFeed) -> TxResult<()> {
    db.execute(
        "UPDATE feeds SET url = $2, collection = $3, types = $4, min_confidence = $5, default_confidence = $6, max_active = $7, \
         default_tlp = $8, default_ttl_secs = $9 WHERE id = $1",
        &[
            &id,
            &pg_text(&new.url),
            &new.collection.as_deref().map(pg_text),
            &new.types.join(","),
            &new.min_confidence,
            &new.default_confidence,
            &new.max_active,
            &new.default_tlp.label(),
            &new.default_ttl_secs,
        ],
    )?;
    Ok(())
}

pub(super) fn analyst_add_seqs(db: &mut Db<'_>) -> TxResult<Vec<i64>> {
    db.query("SELECT DISTINCT add_seq FROM analyst_indicators", &[])?.iter().map(|r| Ok(r.try_get(0)?)).collect()
}
