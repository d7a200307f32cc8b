//! Federation's SQL in the embedded store (rules in [`crate::share::federation`]): the objects a
//! peer is sent next, each peer's push cursor and counts, and a peer feed's rules kept in step
//! with the hub's file.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::model::Millis;
use crate::share::federation::{OutboundQuery, PeerState, PushRecord};
use crate::share::feeds::NewFeed;
use crate::share::objects::{tlp_rank, StoredObject, COLLECTION_INBOX};
use crate::store::StoreResult;

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// The next objects for a peer, in `date_added` order: the hub's own collection, and the inbox
/// rows added by the accounts in `relay_from`; never TLP:RED or AMBER+STRICT.
pub(super) fn outbound(c: &Connection, q: &OutboundQuery) -> StoreResult<Vec<StoredObject>> {
    let max = tlp_rank(q.max_tlp).min(2);
    let mut st = c.prepare_cached(
        "SELECT seq, date_added_us, object_id, version, body FROM taxii_objects \
         WHERE (date_added_us, seq) > (?1, ?2) \
           AND (collection = ?3 OR (collection = ?4 AND added_by IN (SELECT value FROM json_each(?5)))) \
           AND tlp <= ?6 \
           AND (?7 = '[]' OR object_type IN (SELECT value FROM json_each(?7))) \
         ORDER BY date_added_us, seq LIMIT ?8",
    )?;
    let rows = st
        .query_map(
            params![q.after.0, q.after.1, q.collection, COLLECTION_INBOX, json_list(&q.relay_from), max, json_list(&q.types), q.limit.min(10_000) as i64],
            |r| Ok(StoredObject { seq: r.get(0)?, date_added_us: r.get(1)?, object_id: r.get(2)?, version: r.get(3)?, body: r.get(4)? }),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

const PEER_COLS: &str = "name, cursor_us, cursor_seq, sent_total, received_total, last_push_ms, last_ok_ms, last_received_ms, last_error, failures";

fn row_peer(r: &rusqlite::Row<'_>) -> rusqlite::Result<PeerState> {
    Ok(PeerState {
        name: r.get(0)?,
        cursor: (r.get(1)?, r.get(2)?),
        sent_total: r.get(3)?,
        received_total: r.get(4)?,
        last_push_ms: r.get(5)?,
        last_ok_ms: r.get(6)?,
        last_received_ms: r.get(7)?,
        last_error: r.get(8)?,
        failures: r.get(9)?,
    })
}

pub(super) fn peer(c: &Connection, name: &str) -> StoreResult<Option<PeerState>> {
    Ok(c.prepare_cached(&format!("SELECT {PEER_COLS} FROM federation_peers WHERE name = ?1"))?.query_row([name], row_peer).optional()?)
}

pub(super) fn peers(c: &Connection) -> StoreResult<Vec<PeerState>> {
    Ok(c.prepare_cached(&format!("SELECT {PEER_COLS} FROM federation_peers ORDER BY name"))?.query_map([], row_peer)?.collect::<Result<Vec<_>, _>>()?)
}

fn ensure(tx: &Transaction<'_>, name: &str) -> StoreResult<()> {
    tx.prepare_cached("INSERT INTO federation_peers (name) VALUES (?1) ON CONFLICT (name) DO NOTHING")?.execute([name])?;
    Ok(())
}

/// Records one push: on success the cursor moves (never backwards) and the count grows; on
/// failure the error and the failure count.
pub(super) fn record_push(tx: &Transaction<'_>, name: &str, r: &PushRecord, now: Millis) -> StoreResult<()> {
    ensure(tx, name)?;
    match &r.error {
        None => tx
            .prepare_cached(
                "UPDATE federation_peers SET \
                   cursor_us = CASE WHEN (?2, ?3) > (cursor_us, cursor_seq) THEN ?2 ELSE cursor_us END, \
                   cursor_seq = CASE WHEN (?2, ?3) > (cursor_us, cursor_seq) THEN ?3 ELSE cursor_seq END, \
                   sent_total = sent_total + ?4, last_push_ms = ?5, last_ok_ms = ?5, last_error = NULL, failures = 0 \
                 WHERE name = ?1",
            )?
            .execute(params![name, r.cursor.0, r.cursor.1, r.sent as i64, now])?,
        Some(e) => tx
            .prepare_cached("UPDATE federation_peers SET last_push_ms = ?2, last_error = ?3, failures = failures + 1 WHERE name = ?1")?
            .execute(params![name, now, e])?,
    };
    Ok(())
}

pub(super) fn record_received(tx: &Transaction<'_>, name: &str, n: usize, now: Millis) -> StoreResult<()> {
    ensure(tx, name)?;
    tx.prepare_cached("UPDATE federation_peers SET received_total = received_total + ?2, last_received_ms = ?3 WHERE name = ?1")?
        .execute(params![name, n as i64, now])?;
    Ok(())
}

/// Brings a feed's rules (and where it points) in line with `new`: the cap, the floor, the types
/// and defaults. What the feed holds stays; the next update applies the new rules.
pub(super) fn set_feed_rules(tx: &Transaction<'_>, id: i64, new: &NewFeed) -> StoreResult<()> {
    tx.prepare_cached(
        "UPDATE feeds SET url = ?2, collection = ?3, types = ?4, min_confidence = ?5, default_confidence = ?6, max_active = ?7, \
         default_tlp = ?8, default_ttl_secs = ?9 WHERE id = ?1",
    )?
    .execute(params![
        id,
        new.url,
        new.collection,
        new.types.join(","),
        new.min_confidence,
        new.default_confidence,
        new.max_active,
        new.default_tlp.label(),
        new.default_ttl_secs
    ])?;
    Ok(())
}

pub(super) fn analyst_add_seqs(c: &Connection) -> StoreResult<Vec<i64>> {
    Ok(c.prepare_cached("SELECT DISTINCT add_seq FROM analyst_indicators")?.query_map([], |r| r.get(0))?.collect::<Result<Vec<_>, _>>()?)
}
