//! The TAXII object store, status resources and API keys in the embedded store (the rules are
//! in [`crate::share::objects`]). SQLite has one writer, so commit order is the order in which
//! writers take it, and `date_added` read and advanced from `taxii_clock` inside the writer's
//! transaction is strictly increasing in commit order.
//!
//! Lists in queries travel as JSON arrays read with `json_each`, so every statement is fixed
//! text with parameters; the two query shapes (one collection, or the two of the
//! per-jurisdiction view) are built once from constant fragments.

use std::sync::OnceLock;

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::error::StoreError;
use crate::model::Millis;
use crate::share::objects::{tlp_of_rank, tlp_rank, ApiKey, NewApiKey, NewObject, ObjectQuery, StoredObject};
use crate::store::StoreResult;

pub(super) fn add(tx: &Transaction<'_>, collection: &str, added_by: &str, objects: &[NewObject], now_us: i64) -> StoreResult<Vec<Option<i64>>> {
    let last: i64 = tx.prepare_cached("SELECT last_us FROM taxii_clock WHERE id = 1")?.query_row([], |r| r.get(0))?;
    let base = now_us.max(last.saturating_add(1));
    let mut out = Vec::with_capacity(objects.len());
    let mut st = tx.prepare_cached(
        "INSERT INTO taxii_objects (collection, date_added_us, object_id, object_type, spec_version, version, version_us, tlp, \
         jurisdiction_id, added_by, content_hash, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
         ON CONFLICT (collection, object_id, version_us) DO NOTHING",
    )?;
    for (i, o) in objects.iter().enumerate() {
        let date_added = base + i as i64;
        let n = st.execute(params![
            collection,
            date_added,
            o.object_id,
            o.object_type,
            o.spec_version,
            o.version,
            o.version_us,
            tlp_rank(o.tlp),
            o.jurisdiction_id,
            added_by,
            o.content_hash,
            o.body
        ])?;
        out.push((n == 1).then_some(date_added));
    }
    if !objects.is_empty() {
        tx.prepare_cached("UPDATE taxii_clock SET last_us = ?1 WHERE id = 1")?.execute([base + objects.len() as i64 - 1])?;
    }
    Ok(out)
}

/// The access rules on a row aliased `x` (see `ReadScope`): ?3 ceiling, ?4 the reader's
/// jurisdiction, ?5 analyst, ?17 the collection read only for the reader's own rows.
macro_rules! access {
    ($x:literal) => {
        concat!(
            $x, ".tlp <= ?3 AND (?4 IS NULL OR ", $x, ".jurisdiction_id IS NULL OR ", $x, ".jurisdiction_id = ?4) \
             AND (", $x, ".tlp <> 3 OR ?5 OR ", $x, ".jurisdiction_id = ?4) \
             AND (", $x, ".collection <> ?17 OR ", $x, ".jurisdiction_id = ?4)"
        )
    };
}

const QUERY_TAIL: &str = concat!(
    " AND ", access!("o"),
    " AND (o.date_added_us, o.seq) > (?6, ?7) \
     AND (?8 = '[]' OR o.object_id IN (SELECT value FROM json_each(?8))) \
     AND (?9 = '[]' OR o.object_type IN (SELECT value FROM json_each(?9))) \
     AND (?10 = '[]' OR o.spec_version IN (SELECT value FROM json_each(?10))) \
     AND (?11 OR o.version_us IN (SELECT value FROM json_each(?14)) \
          OR (?12 AND NOT EXISTS (SELECT 1 FROM taxii_objects n WHERE n.collection = o.collection AND n.object_id = o.object_id \
                                  AND n.version_us > o.version_us AND ", access!("n"), ")) \
          OR (?13 AND NOT EXISTS (SELECT 1 FROM taxii_objects n WHERE n.collection = o.collection AND n.object_id = o.object_id \
                                  AND n.version_us < o.version_us AND ", access!("n"), "))) \
     ORDER BY o.date_added_us, o.seq LIMIT ?16"
);

fn query_sql(two_collections: bool) -> &'static str {
    static ONE: OnceLock<String> = OnceLock::new();
    static TWO: OnceLock<String> = OnceLock::new();
    let head = "SELECT o.seq, o.date_added_us, o.object_id, o.version, CASE WHEN ?15 THEN o.body END FROM taxii_objects o WHERE ";
    if two_collections {
        // `+` keeps SQLite off the (collection, …) index: for two collections it would read both
        // ranges whole and sort; the (date_added_us, seq) index walks in page order instead.
        TWO.get_or_init(|| format!("{head}+o.collection IN (?1, ?2){QUERY_TAIL}"))
    } else {
        ONE.get_or_init(|| format!("{head}o.collection = ?1 AND ?2 = ?2{QUERY_TAIL}"))
    }
}

fn json_list<T: serde::Serialize>(v: &[T]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

pub(super) fn query(c: &Connection, q: &ObjectQuery) -> StoreResult<Vec<StoredObject>> {
    let scope = &q.scope;
    let (c1, c2) = match scope.collections.as_slice() {
        [one] => (one.as_str(), one.as_str()),
        [one, two] => (one.as_str(), two.as_str()),
        _ => return Err(StoreError::Invalid("a query reads one or two collections".into())),
    };
    let sql = query_sql(c1 != c2);
    let max = tlp_rank(scope.max_tlp).min(3);
    let own_only = scope.own_only.as_deref().unwrap_or("");
    let limit = q.limit.min(100_000) as i64;
    let mut st = c.prepare_cached(sql)?;
    let rows = st
        .query_map(
            params![
                c1,
                c2,
                max,
                scope.jurisdiction,
                scope.strict_any,
                q.after.0,
                q.after.1,
                json_list(&q.ids),
                json_list(&q.types),
                json_list(&q.spec_versions),
                q.versions.all,
                q.versions.last,
                q.versions.first,
                json_list(&q.versions.at),
                q.with_body,
                limit,
                own_only
            ],
            |r| Ok(StoredObject { seq: r.get(0)?, date_added_us: r.get(1)?, object_id: r.get(2)?, version: r.get(3)?, body: r.get(4)? }),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(super) fn latest(c: &Connection, collection: &str, ids: &[String]) -> StoreResult<Vec<(String, i64, String)>> {
    let mut out = Vec::with_capacity(ids.len());
    let mut st = c.prepare_cached(
        "SELECT object_id, version_us, content_hash FROM taxii_objects WHERE collection = ?1 AND object_id = ?2 ORDER BY version_us DESC LIMIT 1",
    )?;
    for id in ids {
        if let Some(row) = st.query_row(params![collection, id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional()? {
            out.push(row);
        }
    }
    Ok(out)
}

pub(super) fn put_status(tx: &Transaction<'_>, id: &str, account: &str, body: &str, now: Millis, keep_after_ms: Millis) -> StoreResult<()> {
    tx.prepare_cached("DELETE FROM taxii_status WHERE created_ms < ?1")?.execute([keep_after_ms])?;
    tx.prepare_cached(
        "INSERT INTO taxii_status (id, account, created_ms, body) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (id) DO UPDATE SET body = excluded.body",
    )?
    .execute(params![id, account, now, body])?;
    Ok(())
}

pub(super) fn status(c: &Connection, id: &str) -> StoreResult<Option<(String, String)>> {
    Ok(c.prepare_cached("SELECT account, body FROM taxii_status WHERE id = ?1")?.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))).optional()?)
}

const KEY_COLS: &str = "id, key_id, name, scopes, max_tlp, jurisdiction_id, name_jurisdictions, created_ms, created_by, revoked_ms, client_cert_sha256";

fn row_key(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKey> {
    let scopes: String = r.get(3)?;
    Ok(ApiKey {
        id: r.get(0)?,
        key_id: r.get(1)?,
        name: r.get(2)?,
        scopes: scopes.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        max_tlp: tlp_of_rank(r.get(4)?),
        jurisdiction_id: r.get(5)?,
        name_jurisdictions: r.get(6)?,
        created_ms: r.get(7)?,
        created_by: r.get(8)?,
        revoked_ms: r.get(9)?,
        client_cert_sha256: r.get(10)?,
    })
}

pub(super) fn create_key(tx: &Transaction<'_>, k: &NewApiKey, now: Millis) -> StoreResult<ApiKey> {
    crate::share::objects::check_new_key(k).map_err(StoreError::Invalid)?;
    if let Some(j) = k.jurisdiction_id {
        let exists: Option<i64> = tx.prepare_cached("SELECT id FROM jurisdictions WHERE id = ?1")?.query_row([j], |r| r.get(0)).optional()?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("jurisdiction {j}")));
        }
    }
    let taken: Option<i64> = tx.prepare_cached("SELECT id FROM api_keys WHERE name = ?1")?.query_row([&k.name], |r| r.get(0)).optional()?;
    if taken.is_some() {
        return Err(StoreError::Conflict(format!("an api key named {:?} exists: choose another name", k.name)));
    }
    let id = tx
        .prepare_cached(
            "INSERT INTO api_keys (key_id, name, secret_hash, scopes, max_tlp, jurisdiction_id, name_jurisdictions, created_ms, created_by) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
        )?
        .query_row(
            params![k.key_id, k.name, k.secret_hash, k.scopes.join(","), tlp_rank(k.max_tlp), k.jurisdiction_id, k.name_jurisdictions, now, k.created_by],
            |r| r.get::<_, i64>(0),
        )?;
    Ok(tx.prepare_cached(&format!("SELECT {KEY_COLS} FROM api_keys WHERE id = ?1"))?.query_row([id], row_key)?)
}

pub(super) fn keys(c: &Connection) -> StoreResult<Vec<ApiKey>> {
    Ok(c.prepare_cached(&format!("SELECT {KEY_COLS} FROM api_keys ORDER BY id"))?.query_map([], row_key)?.collect::<Result<_, _>>()?)
}

pub(super) fn key_by_secret(c: &Connection, secret_hash: &str) -> StoreResult<Option<ApiKey>> {
    Ok(c
        .prepare_cached(&format!("SELECT {KEY_COLS} FROM api_keys WHERE secret_hash = ?1 AND revoked_ms IS NULL"))?
        .query_row([secret_hash], row_key)
        .optional()?)
}

pub(super) fn revoke_key(tx: &Transaction<'_>, id: i64, now: Millis) -> StoreResult<ApiKey> {
    tx.prepare_cached("UPDATE api_keys SET revoked_ms = coalesce(revoked_ms, ?2) WHERE id = ?1")?.execute(params![id, now])?;
    tx.prepare_cached(&format!("SELECT {KEY_COLS} FROM api_keys WHERE id = ?1"))?
        .query_row([id], row_key)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("api key {id}")))
}

/// Binds (or unbinds) a key's client certificate (see `Store::bind_api_key_cert`).
pub(super) fn bind_key_cert(tx: &Transaction<'_>, id: i64, sha256: Option<&str>) -> StoreResult<ApiKey> {
    let key = tx
        .prepare_cached(&format!("SELECT {KEY_COLS} FROM api_keys WHERE id = ?1"))?
        .query_row([id], row_key)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("api key {id}")))?;
    if key.revoked_ms.is_some() {
        return Err(StoreError::Invalid(format!("api key {id} is revoked: make a new key for this certificate")));
    }
    if let Some(fp) = sha256 {
        if !crate::share::objects::valid_fingerprint(fp) {
            return Err(StoreError::Invalid("a certificate fingerprint is 64 lowercase hex digits (SHA-256)".into()));
        }
        let holder: Option<String> = tx
            .prepare_cached("SELECT key_id FROM api_keys WHERE client_cert_sha256 = ?1 AND revoked_ms IS NULL AND id <> ?2")?
            .query_row(params![fp, id], |r| r.get(0))
            .optional()?;
        if let Some(other) = holder {
            return Err(StoreError::Conflict(format!("this certificate is bound to api key {other} already: revoke that key or unbind it first")));
        }
    }
    tx.prepare_cached("UPDATE api_keys SET client_cert_sha256 = ?2 WHERE id = ?1")?.execute(params![id, sha256])?;
    Ok(tx.prepare_cached(&format!("SELECT {KEY_COLS} FROM api_keys WHERE id = ?1"))?.query_row([id], row_key)?)
}

pub(super) fn key_by_cert(c: &Connection, sha256: &str) -> StoreResult<Option<ApiKey>> {
    Ok(c
        .prepare_cached(&format!("SELECT {KEY_COLS} FROM api_keys WHERE client_cert_sha256 = ?1 AND revoked_ms IS NULL"))?
        .query_row([sha256], row_key)
        .optional()?)
}
