//! The TAXII object store, status resources and API keys on PostgreSQL (the rules are in
//! [`crate::share::objects`]).
//!
//! Commit order: an insert first locks the one `taxii_clock` row (`FOR UPDATE`) and holds it
//! until commit, so inserting transactions of every replica run one after another, each
//! `date_added` comes from `max(now, last + 1)`, and `date_added` order is commit order. A
//! reader that paged up to X never meets a later commit at or below X. A batch is inserted with
//! one statement over arrays (`unnest`), so a POST of thousands of objects is one round trip.

use super::{pg_text, Db, TxResult};
use crate::error::StoreError;
use crate::model::Millis;
use crate::share::objects::{tlp_of_rank, tlp_rank, ApiKey, NewApiKey, NewObject, ObjectQuery, StoredObject};

pub(super) fn add(db: &mut Db<'_>, collection: &str, added_by: &str, objects: &[NewObject], now_us: i64) -> TxResult<Vec<Option<i64>>> {
    if objects.is_empty() {
        return Ok(Vec::new());
    }
    let last: i64 = db.query_one("SELECT last_us FROM taxii_clock WHERE id = 1 FOR UPDATE", &[])?.try_get(0)?;
    let base = now_us.max(last.saturating_add(1));
    let n = objects.len();
    let mut date_added = Vec::with_capacity(n);
    let (mut ids, mut types, mut specs, mut versions, mut version_us, mut tlps, mut juris, mut hashes, mut bodies) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for (i, o) in objects.iter().enumerate() {
        date_added.push(base + i as i64);
        ids.push(pg_text(&o.object_id));
        types.push(pg_text(&o.object_type));
        specs.push(pg_text(&o.spec_version));
        versions.push(pg_text(&o.version));
        version_us.push(o.version_us);
        tlps.push(tlp_rank(o.tlp) as i32);
        juris.push(o.jurisdiction_id);
        hashes.push(o.content_hash.as_str());
        bodies.push(pg_text(&o.body));
    }
    let added_by = pg_text(added_by);
    let rows = db.query(
        "INSERT INTO taxii_objects (collection, date_added_us, object_id, object_type, spec_version, version, version_us, tlp, \
         jurisdiction_id, added_by, content_hash, body) \
         SELECT $1, d, i, t, s, v, vu, tl, j, $2, h, b \
         FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::integer[], $10::bigint[], $11::text[], $12::text[]) \
              AS x(d, i, t, s, v, vu, tl, j, h, b) \
         ON CONFLICT (collection, object_id, version_us) DO NOTHING RETURNING date_added_us",
        &[&collection, &added_by, &date_added, &ids, &types, &specs, &versions, &version_us, &tlps, &juris, &hashes, &bodies],
    )?;
    let mut stored = std::collections::HashSet::with_capacity(rows.len());
    for r in rows {
        stored.insert(r.try_get::<_, i64>(0)?);
    }
    db.execute("UPDATE taxii_clock SET last_us = $1 WHERE id = 1", &[&(base + n as i64 - 1)])?;
    Ok(date_added.into_iter().map(|d| stored.contains(&d).then_some(d)).collect())
}

/// The access rules on a row aliased `x` (see `ReadScope`): $3 ceiling, $4 the reader's
/// jurisdiction, $5 analyst, $17 the collection read only for the reader's own rows.
macro_rules! access {
    ($x:literal) => {
        concat!(
            $x, ".tlp <= $3 AND ($4::bigint IS NULL OR ", $x, ".jurisdiction_id IS NULL OR ", $x, ".jurisdiction_id = $4) \
             AND (", $x, ".tlp <> 3 OR $5 OR ", $x, ".jurisdiction_id = $4) \
             AND (", $x, ".collection <> $17 OR ", $x, ".jurisdiction_id = $4)"
        )
    };
}

const QUERY_TAIL: &str = concat!(
    " AND ", access!("o"),
    " AND (o.date_added_us, o.seq) > ($6, $7) \
     AND (cardinality($8::text[]) = 0 OR o.object_id = ANY($8)) \
     AND (cardinality($9::text[]) = 0 OR o.object_type = ANY($9)) \
     AND (cardinality($10::text[]) = 0 OR o.spec_version = ANY($10)) \
     AND ($11 OR o.version_us = ANY($14::bigint[]) \
          OR ($12 AND NOT EXISTS (SELECT 1 FROM taxii_objects n WHERE n.collection = o.collection AND n.object_id = o.object_id \
                                  AND n.version_us > o.version_us AND ", access!("n"), ")) \
          OR ($13 AND NOT EXISTS (SELECT 1 FROM taxii_objects n WHERE n.collection = o.collection AND n.object_id = o.object_id \
                                  AND n.version_us < o.version_us AND ", access!("n"), "))) \
     ORDER BY o.date_added_us, o.seq LIMIT $16"
);

fn query_sql(two_collections: bool) -> &'static str {
    static ONE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static TWO: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let head = "SELECT o.seq, o.date_added_us, o.object_id, o.version, CASE WHEN $15 THEN o.body END FROM taxii_objects o WHERE ";
    if two_collections {
        TWO.get_or_init(|| format!("{head}o.collection IN ($1, $2){QUERY_TAIL}"))
    } else {
        ONE.get_or_init(|| format!("{head}o.collection = $1 AND $2::text IS NOT NULL{QUERY_TAIL}"))
    }
}

pub(super) fn query(db: &mut Db<'_>, q: &ObjectQuery) -> TxResult<Vec<StoredObject>> {
    let scope = &q.scope;
    let (c1, c2) = match scope.collections.as_slice() {
        [one] => (one.as_str(), one.as_str()),
        [one, two] => (one.as_str(), two.as_str()),
        _ => return Err(StoreError::Invalid("a query reads one or two collections".into()).into()),
    };
    let sql = query_sql(c1 != c2);
    let max = tlp_rank(scope.max_tlp).min(3) as i32;
    let own_only = scope.own_only.as_deref().unwrap_or("");
    let limit = q.limit.min(100_000) as i64;
    // The statement is cached (prepared once per connection); PostgreSQL would then move to
    // a generic plan, which cannot see that the filters are empty and reads and sorts the
    // whole collection (seconds at 1M objects, with JIT). Planned per execution, it walks the
    // (date_added, seq) index in order and stops at the page.
    db.query_one("SELECT set_config('plan_cache_mode', 'force_custom_plan', true), set_config('jit', 'off', true)", &[])?;
    let ids: Vec<std::borrow::Cow<'_, str>> = q.ids.iter().map(|s| pg_text(s)).collect();
    let types: Vec<std::borrow::Cow<'_, str>> = q.types.iter().map(|s| pg_text(s)).collect();
    let specs: Vec<std::borrow::Cow<'_, str>> = q.spec_versions.iter().map(|s| pg_text(s)).collect();
    let rows = db.query(
        sql,
        &[
            &c1,
            &c2,
            &max,
            &scope.jurisdiction,
            &scope.strict_any,
            &q.after.0,
            &q.after.1,
            &ids,
            &types,
            &specs,
            &q.versions.all,
            &q.versions.last,
            &q.versions.first,
            &q.versions.at,
            &q.with_body,
            &limit,
            &own_only,
        ],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(StoredObject { seq: r.try_get(0)?, date_added_us: r.try_get(1)?, object_id: r.try_get(2)?, version: r.try_get(3)?, body: r.try_get(4)? });
    }
    Ok(out)
}

pub(super) fn latest(db: &mut Db<'_>, collection: &str, ids: &[String]) -> TxResult<Vec<(String, i64, String)>> {
    let ids: Vec<std::borrow::Cow<'_, str>> = ids.iter().map(|s| pg_text(s)).collect();
    let rows = db.query(
        "SELECT DISTINCT ON (object_id) object_id, version_us, content_hash FROM taxii_objects \
         WHERE collection = $1 AND object_id = ANY($2) ORDER BY object_id, version_us DESC",
        &[&collection, &ids],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?));
    }
    Ok(out)
}

pub(super) fn put_status(db: &mut Db<'_>, id: &str, account: &str, body: &str, now: Millis, keep_after_ms: Millis) -> TxResult<()> {
    db.execute("DELETE FROM taxii_status WHERE created_ms < $1", &[&keep_after_ms])?;
    db.execute(
        "INSERT INTO taxii_status (id, account, created_ms, body) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body",
        &[&pg_text(id), &pg_text(account), &now, &pg_text(body)],
    )?;
    Ok(())
}

pub(super) fn status(db: &mut Db<'_>, id: &str) -> TxResult<Option<(String, String)>> {
    Ok(match db.query_opt("SELECT account, body FROM taxii_status WHERE id = $1", &[&pg_text(id)])? {
        Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
        None => None,
    })
}

const KEY_COLS: &str = "id, key_id, name, scopes, max_tlp, jurisdiction_id, name_jurisdictions, created_ms, created_by, revoked_ms, client_cert_sha256";

fn row_key(r: &::postgres::Row) -> TxResult<ApiKey> {
    let scopes: String = r.try_get(3)?;
    Ok(ApiKey {
        id: r.try_get(0)?,
        key_id: r.try_get(1)?,
        name: r.try_get(2)?,
        scopes: scopes.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        max_tlp: tlp_of_rank(i64::from(r.try_get::<_, i32>(4)?)),
        jurisdiction_id: r.try_get(5)?,
        name_jurisdictions: r.try_get(6)?,
        created_ms: r.try_get(7)?,
        created_by: r.try_get(8)?,
        revoked_ms: r.try_get(9)?,
        client_cert_sha256: r.try_get(10)?,
    })
}

pub(super) fn create_key(db: &mut Db<'_>, k: &NewApiKey, now: Millis) -> TxResult<ApiKey> {
    crate::share::objects::check_new_key(k).map_err(StoreError::Invalid)?;
    if let Some(j) = k.jurisdiction_id {
        if db.query_opt("SELECT id FROM jurisdictions WHERE id = $1", &[&j])?.is_none() {
            return Err(StoreError::NotFound(format!("jurisdiction {j}")).into());
        }
    }
    let row = db.query_opt(
        &format!(
            "INSERT INTO api_keys (key_id, name, secret_hash, scopes, max_tlp, jurisdiction_id, name_jurisdictions, created_ms, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (name) DO NOTHING RETURNING {KEY_COLS}"
        ),
        &[&k.key_id, &pg_text(&k.name), &k.secret_hash, &k.scopes.join(","), &(tlp_rank(k.max_tlp) as i32), &k.jurisdiction_id, &k.name_jurisdictions, &now, &pg_text(&k.created_by)],
    )?;
    match row {
        Some(r) => row_key(&r),
        None => Err(StoreError::Conflict(format!("an api key named {:?} exists: choose another name", k.name)).into()),
    }
}

pub(super) fn keys(db: &mut Db<'_>) -> TxResult<Vec<ApiKey>> {
    db.query(&format!("SELECT {KEY_COLS} FROM api_keys ORDER BY id"), &[])?.iter().map(row_key).collect()
}

pub(super) fn key_by_secret(db: &mut Db<'_>, secret_hash: &str) -> TxResult<Option<ApiKey>> {
    match db.query_opt(&format!("SELECT {KEY_COLS} FROM api_keys WHERE secret_hash = $1 AND revoked_ms IS NULL"), &[&secret_hash])? {
        Some(r) => Ok(Some(row_key(&r)?)),
        None => Ok(None),
    }
}

pub(super) fn revoke_key(db: &mut Db<'_>, id: i64, now: Millis) -> TxResult<ApiKey> {
    match db.query_opt(&format!("UPDATE api_keys SET revoked_ms = coalesce(revoked_ms, $2) WHERE id = $1 RETURNING {KEY_COLS}"), &[&id, &now])? {
        Some(r) => row_key(&r),
        None => Err(StoreError::NotFound(format!("api key {id}")).into()),
    }
}

/// Binds (or unbinds) a key's client certificate (see `Store::bind_api_key_cert`). The key's
/// row is locked first; the partial unique index settles two binds of one certificate at once.
pub(super) fn bind_key_cert(db: &mut Db<'_>, id: i64, sha256: Option<&str>) -> TxResult<ApiKey> {
    let Some(row) = db.query_opt(&format!("SELECT {KEY_COLS} FROM api_keys WHERE id = $1 FOR UPDATE"), &[&id])? else {
        return Err(StoreError::NotFound(format!("api key {id}")).into());
    };
    if row_key(&row)?.revoked_ms.is_some() {
        return Err(StoreError::Invalid(format!("api key {id} is revoked: make a new key for this certificate")).into());
    }
    if let Some(fp) = sha256 {
        if !crate::share::objects::valid_fingerprint(fp) {
            return Err(StoreError::Invalid("a certificate fingerprint is 64 lowercase hex digits (SHA-256)".into()).into());
        }
        if let Some(other) = db.query_opt("SELECT key_id FROM api_keys WHERE client_cert_sha256 = $1 AND revoked_ms IS NULL AND id <> $2", &[&fp, &id])? {
            let other: String = other.try_get(0)?;
            return Err(StoreError::Conflict(format!("this certificate is bound to api key {other} already: revoke that key or unbind it first")).into());
        }
    }
    let row = db.query_one(&format!("UPDATE api_keys SET client_cert_sha256 = $2 WHERE id = $1 RETURNING {KEY_COLS}"), &[&id, &sha256])?;
    row_key(&row)
}

pub(super) fn key_by_cert(db: &mut Db<'_>, sha256: &str) -> TxResult<Option<ApiKey>> {
    match db.query_opt(&format!("SELECT {KEY_COLS} FROM api_keys WHERE client_cert_sha256 = $1 AND revoked_ms IS NULL"), &[&pg_text(sha256)])? {
        Some(r) => Ok(Some(row_key(&r)?)),
        None => Ok(None),
    }
}
