//! `ward hub migrate`: copies an office's SQLite store into an empty PostgreSQL store, so a
//! state that started small grows onto PostgreSQL without losing its history.
//!
//! * **What is copied**: every table of the SQLite schema listed in [`TABLES`], rows and ids
//!   unchanged (jurisdictions, users with their password hashes, sensors with their credential
//!   hashes, enrollment tokens, sessions, contacts, idempotency records, events, sightings,
//!   campaigns with keys, members and log, the indicator log, the notification outbox and its
//!   attempts, contact records, analyst indicators, the retro-hunt cursor and hits, the trust
//!   tables, scan assets, blackouts, results, reports and leases, the TAXII object store, its
//!   status resources and API keys, feeds and their indicators). Ids are kept and each
//!   identity sequence is set past the largest id copied (and past SQLite's AUTOINCREMENT
//!   high-water mark), so sensors' `since=` cursors into the indicator log stay valid, logins
//!   and sensor credentials keep working, and links between rows hold.
//! * **A table this list does not know** (a newer schema) stops the migration before anything is
//!   written: nothing is left behind silently. SQLite's own bookkeeping (`store_meta`,
//!   `sqlite_sequence`, `sqlite_stat*`) and the old process's `job_leases` are not copied.
//! * **Webhook secrets** (and feed credentials, `feeds.credential`): sealed in SQLite with the key file (`store::secrets`); the PostgreSQL
//!   store keeps them as it does today, in plaintext, so they are opened with the source's key
//!   file on the way. A secret that cannot be opened (the key file lost) stops the migration.
//! * **One transaction**: the target's tables must be empty (its singleton rows — the retro-hunt
//!   cursor, the allow-list version — at their initial values are replaced); the copy runs in one
//!   PostgreSQL transaction, so a failed or interrupted migration leaves the target as it was
//!   and can simply be run again. The source is read in one SQLite read transaction (one
//!   snapshot), so a hub may keep running on it; what it stores after the snapshot is not copied
//!   (stop the hub for the final copy).
//! * Rows travel by binary `COPY`, streamed: memory stays flat whatever the store's size.
//!
//! All SQL here is the two stores' own; nothing above `store/` names either database crate.

use std::collections::BTreeSet;
use std::net::IpAddr;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};

use super::postgres::{Db, PgStore, TxError, TxResult};
use super::sqlite::SqliteStore;
use super::StoreResult;
use crate::error::StoreError;

/// One table to copy, in an order that satisfies the foreign keys.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    /// `ORDER BY` for the read (jurisdictions name their parent, which comes first by id).
    order_by: Option<&'static str>,
    /// The identity column whose sequence is moved past the copied ids.
    identity: Option<&'static str>,
    /// A one-row table the target's migrations already filled (replaced by the source's row).
    singleton: bool,
}

const fn table(name: &'static str, order_by: Option<&'static str>, identity: Option<&'static str>) -> Table {
    Table { name, order_by, identity, singleton: false }
}

/// Every table of the store, parents before children.
pub const TABLES: &[Table] = &[
    table("jurisdictions", Some("id"), Some("id")),
    table("sensors", None, Some("id")),
    table("enrollment_tokens", None, None),
    table("users", None, Some("id")),
    table("sessions", None, None),
    table("contacts", None, Some("id")),
    table("batches", None, None),
    table("events", None, Some("id")),
    table("sightings", None, None),
    table("campaigns", None, Some("id")),
    table("campaign_keys", None, None),
    table("campaign_jurisdictions", None, None),
    table("campaign_log", None, Some("id")),
    table("indicators", Some("seq"), Some("seq")),
    table("notifications", None, Some("id")),
    table("delivery_attempts", None, Some("id")),
    table("scan_assets", None, Some("id")),
    table("scan_blackouts", None, Some("id")),
    table("scan_results", None, Some("id")),
    table("scan_reports", None, None),
    table("scan_leases", None, None),
    table("contact_records", None, None),
    table("analyst_indicators", None, Some("id")),
    Table { name: "retro_cursor", order_by: None, identity: None, singleton: true },
    table("retro_late", None, None),
    table("retro_hits", None, Some("id")),
    table("sensor_trust", None, None),
    table("trust_anomalies", None, Some("id")),
    table("allow_entries", None, Some("id")),
    Table { name: "trust_state", order_by: None, identity: None, singleton: true },
    // TAXII (share::objects): object versions keep their seq and date_added, so clients'
    // cursors and added_after stay valid on the new store.
    table("taxii_objects", Some("seq"), Some("seq")),
    Table { name: "taxii_clock", order_by: None, identity: None, singleton: true },
    table("taxii_status", None, None),
    table("api_keys", Some("id"), Some("id")),
    table("feeds", None, Some("id")),
    table("feed_indicators", None, Some("id")),
    // Federation push cursors point into taxii_objects, whose seq and date_added are kept.
    table("federation_peers", None, None),
    // Acknowledgements and escalation (crate::ack).
    table("escalations", None, Some("id")),
    table("hub_keys", None, Some("id")),
    // Disinformation reports and cases (crate::disinfo); screenshots travel as bytes.
    table("disinfo_cases", None, Some("id")),
    table("disinfo_reports", None, Some("id")),
    table("disinfo_report_urls", None, None),
    table("disinfo_report_jurisdictions", None, None),
    table("disinfo_case_bands", None, None),
    table("disinfo_screenshots", None, None),
    table("disinfo_report_screenshots", None, None),
    table("disinfo_case_log", None, Some("id")),
];

/// SQLite tables that are the SQLite store's own bookkeeping, never copied. `job_leases` holds
/// the old process's leases on background jobs: they end with it (the hub on SQLite must be
/// stopped for the final copy), and the replicas on PostgreSQL take their own.
const SQLITE_ONLY: &[&str] = &["store_meta", "sqlite_sequence", "job_leases"];

/// What happened to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCopy {
    pub table: &'static str,
    pub rows: u64,
}

/// Progress as the copy goes: a table begins (with its row count) and ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Table { table: &'static str, rows: u64 },
    Copied { table: &'static str, rows: u64 },
}

/// Copies `from` into `to` (see the module note); `to` must be empty. Returns the rows copied
/// per table, in copy order, once the transaction has committed.
pub fn sqlite_to_postgres(from: &SqliteStore, to: &PgStore, progress: &mut dyn FnMut(&Progress)) -> StoreResult<Vec<TableCopy>> {
    let keys = from.secret_keys();
    from.read(|conn| {
        // One snapshot of the source for the whole copy.
        let snapshot = conn.unchecked_transaction().map_err(sqlite_err)?;
        check_source_tables(&snapshot)?;
        let mut attempt_done = false;
        let copied = to.write(|db| {
            // A retried transaction (serialisation failure) would copy twice into the progress
            // output only; the rows themselves are rolled back first.
            if attempt_done {
                return Err(StoreError::Database("the migration transaction was interrupted; run it again".into()).into());
            }
            attempt_done = true;
            check_target_empty(db)?;
            let mut out = Vec::new();
            for t in TABLES {
                let rows = copy_table(&snapshot, db, t, keys, progress)?;
                out.push(TableCopy { table: t.name, rows });
            }
            // Statistics for the planner, before the first hunt on the new store.
            db.execute("ANALYZE", &[])?;
            Ok(out)
        })?;
        snapshot.finish().map_err(sqlite_err)?;
        Ok(copied)
    })
}

fn sqlite_err(e: rusqlite::Error) -> StoreError {
    StoreError::Database(format!("reading the sqlite store: {e}"))
}

/// A name that can be written into SQL as it is (table and column names from the schema).
fn plain_name(name: &str) -> StoreResult<&str> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        Ok(name)
    } else {
        Err(StoreError::Invalid(format!("unexpected name {name:?} in the sqlite schema: this is not a ward hub store")))
    }
}

/// Refuses a source with a table this ward does not know how to copy.
fn check_source_tables(conn: &rusqlite::Connection) -> StoreResult<()> {
    let mut st = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").map_err(sqlite_err)?;
    let names: Vec<String> = st.query_map([], |r| r.get(0)).map_err(sqlite_err)?.collect::<Result<_, _>>().map_err(sqlite_err)?;
    let unknown: Vec<&String> =
        names.iter().filter(|n| !TABLES.iter().any(|t| t.name == n.as_str()) && !SQLITE_ONLY.contains(&n.as_str()) && !n.starts_with("sqlite_stat")).collect();
    if !unknown.is_empty() {
        return Err(StoreError::Invalid(format!(
            "the sqlite store has tables this ward cannot migrate ({}): use the ward version that wrote it",
            unknown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    if let Some(missing) = TABLES.iter().find(|t| !names.iter().any(|n| n == t.name)) {
        return Err(StoreError::Invalid(format!("the sqlite store has no table {}: open it once with this ward (`ward hub init`) first", missing.name)));
    }
    Ok(())
}

fn check_target_empty(db: &mut Db<'_>) -> TxResult<()> {
    let mut filled = Vec::new();
    for t in TABLES.iter().filter(|t| !t.singleton) {
        let name = plain_name(t.name)?;
        if db.query_opt(&format!("SELECT 1 FROM {name} LIMIT 1"), &[])?.is_some() {
            filled.push(name);
        }
    }
    if !filled.is_empty() {
        return Err(StoreError::Conflict(format!(
            "the postgresql database is not empty (rows in {}): migrate into a new, empty database",
            filled.join(", ")
        ))
        .into());
    }
    Ok(())
}

/// One value on its way from SQLite to PostgreSQL, typed for the target column.
enum Value {
    Int8(Option<i64>),
    Int4(Option<i32>),
    Bool(Option<bool>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
    Inet(Option<IpAddr>),
}

impl Value {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Value::Int8(v) => v,
            Value::Int4(v) => v,
            Value::Bool(v) => v,
            Value::Text(v) => v,
            Value::Bytes(v) => v,
            Value::Inet(v) => v,
        }
    }
}

/// Converts one SQLite value for a PostgreSQL column of type `ty`.
fn convert(v: rusqlite::types::ValueRef<'_>, ty: &Type, table: &str, column: &str) -> StoreResult<Value> {
    use rusqlite::types::ValueRef as V;
    let bad = || StoreError::Invalid(format!("{table}.{column}: a value of sqlite type {:?} does not fit postgresql type {ty}", v.data_type()));
    Ok(match *ty {
        Type::INT8 => Value::Int8(match v {
            V::Null => None,
            V::Integer(i) => Some(i),
            _ => return Err(bad()),
        }),
        Type::INT4 => Value::Int4(match v {
            V::Null => None,
            V::Integer(i) => Some(i32::try_from(i).map_err(|_| bad())?),
            _ => return Err(bad()),
        }),
        Type::BOOL => Value::Bool(match v {
            V::Null => None,
            V::Integer(i) => Some(i != 0),
            _ => return Err(bad()),
        }),
        Type::TEXT => Value::Text(match v {
            V::Null => None,
            V::Text(t) => Some(super::postgres::pg_text(std::str::from_utf8(t).map_err(|_| bad())?).into_owned()),
            V::Integer(i) => Some(i.to_string()),
            _ => return Err(bad()),
        }),
        Type::BYTEA => Value::Bytes(match v {
            V::Null => None,
            V::Blob(b) => Some(b.to_vec()),
            V::Text(t) => Some(t.to_vec()),
            _ => return Err(bad()),
        }),
        Type::INET => Value::Inet(match v {
            V::Null => None,
            V::Blob(b) => Some(crate::retro::ip_from_bytes(b).ok_or_else(bad)?),
            V::Text(t) => Some(std::str::from_utf8(t).ok().and_then(|s| s.parse().ok()).ok_or_else(bad)?),
            _ => return Err(bad()),
        }),
        _ => return Err(StoreError::Invalid(format!("{table}.{column}: postgresql type {ty} is not one the migration copies"))),
    })
}

/// Rows copied per progress report of a large table.
const PROGRESS_EVERY: u64 = 100_000;

fn copy_table(
    src: &rusqlite::Connection,
    db: &mut Db<'_>,
    t: &Table,
    keys: &super::secrets::SecretKeys,
    progress: &mut dyn FnMut(&Progress),
) -> TxResult<u64> {
    let name = plain_name(t.name)?;
    let columns: Vec<String> = {
        let mut st = src.prepare(&format!("SELECT name FROM pragma_table_info('{name}') ORDER BY cid")).map_err(sqlite_err)?;
        let cols = st.query_map([], |r| r.get::<_, String>(0)).map_err(sqlite_err)?.collect::<Result<Vec<_>, _>>().map_err(sqlite_err)?;
        cols
    };
    for c in &columns {
        plain_name(c)?;
    }
    let list = columns.join(", ");
    let total: i64 = src.query_row(&format!("SELECT count(*) FROM {name}"), [], |r| r.get(0)).map_err(sqlite_err)?;
    progress(&Progress::Table { table: t.name, rows: total as u64 });
    let types = db.column_types(&format!("SELECT {list} FROM {name} LIMIT 0")).map_err(|e| {
        TxError::Store(StoreError::Invalid(format!("the postgresql table {name} does not match the sqlite one ({e}): are both stores of this ward version?")))
    })?;
    if t.singleton {
        db.execute(&format!("DELETE FROM {name}"), &[])?;
    }
    if name == "contact_records" {
        // Partitions for every day the records cover, before the rows arrive.
        let mut st = src.prepare("SELECT DISTINCT hour / 24 FROM contact_records").map_err(sqlite_err)?;
        let days: BTreeSet<i64> = st.query_map([], |r| r.get(0)).map_err(sqlite_err)?.collect::<Result<_, _>>().map_err(sqlite_err)?;
        super::postgres::create_contact_partitions(db, &days)?;
    }
    // Sealed columns: opened with the source's key file (see the module note).
    let (secret_at, sealed_column) = match name {
        "contacts" => (columns.iter().position(|c| c == "secret"), super::sqlite::CONTACT_SECRET_COLUMN),
        "feeds" => (columns.iter().position(|c| c == "credential"), super::sqlite::FEED_CREDENTIAL_COLUMN),
        "hub_keys" => (columns.iter().position(|c| c == "value"), super::sqlite::HUB_KEY_COLUMN),
        _ => (None, ""),
    };
    let order = t.order_by.map(|o| format!(" ORDER BY {o}")).unwrap_or_default();
    let mut st = src.prepare(&format!("SELECT {list} FROM {name}{order}")).map_err(sqlite_err)?;
    let mut rows = st.query([]).map_err(sqlite_err)?;
    let writer = db.copy_in(&format!("COPY {name} ({list}) FROM STDIN (FORMAT binary)"))?;
    let mut writer = BinaryCopyInWriter::new(writer, &types);
    let mut copied = 0u64;
    let mut values: Vec<Value> = Vec::with_capacity(columns.len());
    while let Some(row) = rows.next().map_err(sqlite_err)? {
        values.clear();
        for (i, (column, ty)) in columns.iter().zip(&types).enumerate() {
            let raw = row.get_ref(i).map_err(sqlite_err)?;
            let value = if Some(i) == secret_at {
                match raw {
                    rusqlite::types::ValueRef::Text(sealed) => {
                        let sealed = std::str::from_utf8(sealed).map_err(|_| StoreError::Invalid(format!("{sealed_column} is not text")))?;
                        let plain = keys.open(sealed_column, sealed).map_err(|e| {
                            StoreError::Invalid(format!("cannot open {sealed_column} of a row: {e} (key file {})", keys.path().display()))
                        })?;
                        Value::Text(Some(plain))
                    }
                    other => convert(other, ty, name, column)?,
                }
            } else {
                convert(raw, ty, name, column)?
            };
            values.push(value);
        }
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(Value::as_sql).collect();
        writer.write(&refs)?;
        copied += 1;
        if copied.is_multiple_of(PROGRESS_EVERY) && copied < total as u64 {
            progress(&Progress::Copied { table: t.name, rows: copied });
        }
    }
    let written = writer.finish()?;
    if written != copied {
        return Err(StoreError::Database(format!("{name}: {copied} rows read but {written} written")).into());
    }
    if let Some(id) = t.identity {
        let id = plain_name(id)?;
        let mut high: i64 = src.query_row(&format!("SELECT coalesce(max({id}), 0) FROM {name}"), [], |r| r.get(0)).map_err(sqlite_err)?;
        // AUTOINCREMENT tables remember ids handed out and deleted since.
        let seen: Option<i64> = src
            .query_row("SELECT seq FROM sqlite_sequence WHERE name = ?1", [name], |r| r.get(0))
            .map(Some)
            .or_else(|e| if matches!(e, rusqlite::Error::QueryReturnedNoRows) { Ok(None) } else { Err(e) })
            .map_err(sqlite_err)?;
        high = high.max(seen.unwrap_or(0));
        if high > 0 {
            db.execute("SELECT setval(pg_get_serial_sequence($1, $2), $3)", &[&name, &id, &high])?;
        }
    }
    progress(&Progress::Copied { table: t.name, rows: copied });
    Ok(copied)
}

/// Opens both stores of `ward hub migrate` and copies (see [`sqlite_to_postgres`]). The source
/// must be an existing SQLite store (it is opened as every `ward hub` command opens it, which
/// applies its pending migrations); the target a PostgreSQL database that exists (its schema is
/// created here) and holds no rows.
pub fn run(from: &super::open::Database, to: &super::open::Database, progress: &mut dyn FnMut(&Progress)) -> StoreResult<Vec<TableCopy>> {
    use super::open::Database;
    let source = match from {
        Database::Sqlite(path) if path.is_file() => SqliteStore::open(path)?,
        Database::Sqlite(dir) if dir.join("ward-hub.sqlite3").is_file() => SqliteStore::open_dir(dir)?,
        Database::Sqlite(path) => {
            return Err(StoreError::NotFound(format!("no sqlite store at {} (give the hub's data directory or its ward-hub.sqlite3)", path.display())))
        }
        Database::Postgres(_) => return Err(StoreError::Invalid("--from must be a sqlite store (sqlite:DIR); copying between postgresql databases is pg_dump's job".into())),
    };
    let Database::Postgres(url) = to else {
        return Err(StoreError::Invalid("--to must be a postgresql database (postgres://USER@HOST/DB)".into()));
    };
    let target = PgStore::connect_with(url, 2)?;
    sqlite_to_postgres(&source, &target, progress)
}
