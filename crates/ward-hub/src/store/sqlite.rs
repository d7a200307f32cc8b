//! The embedded store: one SQLite database file in WAL mode.
//!
//! Connections: one writer (behind a mutex; every write is one transaction) and a small pool of
//! readers, which WAL lets run while the writer commits. A checkpointer thread with its own
//! connection runs passive WAL checkpoints, so the writer does not copy pages on its commits. Ingest throughput comes from group
//! commit: [`Store::ingest`] takes many batches and commits them with one fsync.
//!
//! Durability: `synchronous=FULL`, so an acknowledged batch survives power loss, not only a
//! crash of the process. Migrations are numbered `.sql` files in `migrations/`, applied in order
//! and tracked by `PRAGMA user_version`.
//!
//! All SQL is parameterised; the only formatted SQL is a list of `?` placeholders.
//!
//! Trust ([`crate::trust`]): ingest asks [`trust::admit`] whether a batch may correlate (the
//! contribution budget and holds), drops allow-listed addresses and the keys that cover them,
//! records which sensor made each sighting, and publishes a campaign's keys to the indicator
//! feed only past the publication bar. The registered allow-list entries are cached per
//! `trust_state.allow_version`, read inside each ingest transaction.
//!
//! Privacy on disk: the data directory is created 0700 and the database file (so also its
//! `-wal` and `-shm`, which SQLite creates with the database's mode) 0600; looser modes of an
//! existing store are tightened on open. Webhook signing secrets are sealed with the key file
//! of [`super::secrets`] (`contacts.secret`); plaintext ones are sealed on open.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::*;
use crate::ingest::prefix_of;
use crate::trust::{AllowList, AllowView};

mod ack;
mod drill;
mod disinfo;
pub(crate) mod feeds;
mod federation;
mod leases;
mod taxii;
mod trust;

/// The schema, one file per version; never edit a released file, add a new one.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_retention_indexes.sql"),
    include_str!("../../migrations/0100_assets.sql"),
    include_str!("../../migrations/0200_contacts_retrohunt.sql"),
    include_str!("../../migrations/0300_trust.sql"),
    include_str!("../../migrations/0310_secrets.sql"),
    include_str!("../../migrations/0400_leases.sql"),
    include_str!("../../migrations/0500_taxii.sql"),
    include_str!("../../migrations/0510_feeds.sql"),
    include_str!("../../migrations/0520_rollup.sql"),
    include_str!("../../migrations/0530_federation.sql"),
    include_str!("../../migrations/0540_client_certs.sql"),
    include_str!("../../migrations/0600_ack.sql"),
    include_str!("../../migrations/0610_drill.sql"),
    include_str!("../../migrations/0700_disinfo.sql"),
    include_str!("../../migrations/0710_disinfo_publish.sql"),
    include_str!("../../migrations/0730_disinfo_escalation.sql"),
];
/// Associated data of a sealed webhook secret (see [`super::secrets`]).
pub(super) const CONTACT_SECRET_COLUMN: &str = "contacts.secret";
/// Associated data of a sealed feed credential (password or token).
pub(super) const FEED_CREDENTIAL_COLUMN: &str = "feeds.credential";
/// The sealed columns: (table, column, associated data).
/// The hub's own keys (the acknowledgement links' HMAC key, [`crate::ack`]).
pub(crate) const HUB_KEY_COLUMN: &str = "hub_keys.value";
const SEALED_COLUMNS: &[(&str, &str, &str)] =
    &[("contacts", "secret", CONTACT_SECRET_COLUMN), ("feeds", "credential", FEED_CREDENTIAL_COLUMN), ("hub_keys", "value", HUB_KEY_COLUMN)];
/// Reader connections kept open; more readers than cores gains nothing.
const MAX_IDLE_READERS: usize = 8;
/// How long a connection waits on a lock held by another process before failing.
const BUSY_TIMEOUT_MS: u64 = 5_000;
/// A notification is given up after this many failed attempts.
pub const MAX_DELIVERY_ATTEMPTS: i64 = 8;
/// Sightings shown per jurisdiction per campaign (the message stays short).
const MAX_LOCAL_SIGHTINGS: usize = 20;
/// Rows deleted per retention transaction: bounds how long the pruner holds the writer.
const PRUNE_CHUNK: usize = 10_000;

/// Page cache of the writer connection (KiB): a group commit of many batches stays in memory
/// instead of spilling pages to the WAL mid-transaction.
const WRITER_CACHE_KIB: i64 = 128 * 1024;
/// The writer checkpoints by itself only when the WAL passes this many pages (a backstop);
/// normally the checkpointer thread keeps the WAL short without holding up commits.
const WRITER_AUTOCHECKPOINT_PAGES: i64 = 50_000;
/// How often the checkpointer thread copies committed WAL pages into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

pub struct SqliteStore {
    path: std::path::PathBuf,
    secrets: super::secrets::SecretKeys,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Tells the checkpointer thread to stop when the store is dropped.
    checkpointer_stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The registered allow-list entries and the `allow_version` they were read at.
    allow_cache: Mutex<Option<(i64, Arc<AllowList>)>>,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.checkpointer_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Passive checkpoints on a connection of its own: WAL pages are copied to the database file
/// on another thread while the writer keeps committing (a passive checkpoint never blocks it).
fn run_checkpointer(path: std::path::PathBuf, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let conn = match open_conn(&path) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "no checkpointer connection; the writer checkpoints alone");
            return;
        }
    };
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(CHECKPOINT_EVERY);
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "passive checkpoint failed; retrying later");
        }
    }
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) `DIR/ward-hub.sqlite3` and applies pending migrations. The
    /// secret key file is `$WARD_HUB_SECRET_KEY_FILE` or `DIR/secret.key`.
    pub fn open_dir(dir: &Path) -> StoreResult<Self> {
        make_private_dir(dir)?;
        Self::open_with_key_file(&dir.join("ward-hub.sqlite3"), &super::secrets::SecretKeys::default_path(dir))
    }

    /// Opens a database file; the key file is found as for [`SqliteStore::open_dir`] in its
    /// directory.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Self::open_with_key_file(path, &super::secrets::SecretKeys::default_path(dir))
    }

    /// Opens a database file with the given secret key file (created when missing).
    pub fn open_with_key_file(path: &Path, key_file: &Path) -> StoreResult<Self> {
        make_private_files(path)?;
        let secrets = super::secrets::SecretKeys::load_or_create(key_file)?;
        let mut writer = open_conn(path)?;
        migrate(&mut writer)?;
        reseal_secrets(&mut writer, &secrets)?;
        writer.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        writer.pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES)?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, st) = (path.to_owned(), stop.clone());
        std::thread::Builder::new()
            .name("ward-hub-checkpoint".into())
            .spawn(move || run_checkpointer(p, st))
            .map_err(|e| db_err(format!("cannot start the checkpointer thread: {e}")))?;
        Ok(SqliteStore {
            path: path.to_owned(),
            secrets,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            checkpointer_stop: stop,
            allow_cache: Mutex::new(None),
        })
    }

    /// The registered allow-list entries, as of `c`'s transaction (re-read only when
    /// `allow_version` moved: the CLI and other replicas change them too).
    fn stored_allow(&self, c: &Connection) -> StoreResult<Arc<AllowList>> {
        let version = trust::allow_version(c)?;
        let mut cache = self.allow_cache.lock().map_err(|_| db_err("allow-list cache lock poisoned"))?;
        if let Some((v, list)) = cache.as_ref() {
            if *v == version {
                return Ok(list.clone());
            }
        }
        let list = Arc::new(trust::load_allow(c)?);
        *cache = Some((version, list.clone()));
        Ok(list)
    }

    /// A contact as read, with its secret opened (a secret that cannot be opened becomes `None`,
    /// and a webhook delivery then fails saying why, rather than signing with garbage).
    fn reveal(&self, mut contact: Contact) -> Contact {
        if let Some(stored) = contact.secret.take() {
            match self.secrets.open(CONTACT_SECRET_COLUMN, &stored) {
                Ok(plain) => contact.secret = Some(plain),
                Err(e) => tracing::error!(contact = contact.id, key_file = %self.secrets.path().display(), error = %e, "cannot open a webhook secret"),
            }
        }
        contact
    }

    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.writer.lock().map_err(|_| db_err("writer lock poisoned"))?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// The keys that seal webhook secrets in this store (`ward hub migrate` opens them).
    pub(super) fn secret_keys(&self) -> &super::secrets::SecretKeys {
        &self.secrets
    }

    pub(super) fn read<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let conn = match self.readers.lock().map_err(|_| db_err("reader lock poisoned"))?.pop() {
            Some(c) => c,
            None => open_conn(&self.path)?,
        };
        let out = f(&conn);
        if let Ok(mut pool) = self.readers.lock() {
            if pool.len() < MAX_IDLE_READERS {
                pool.push(conn);
            }
        }
        out
    }
}

fn open_conn(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path)
        .map_err(|e| StoreError::Database(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Creates the data directory 0700, or tightens an existing one.
fn make_private_dir(dir: &Path) -> StoreResult<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| StoreError::Invalid(format!("cannot create data directory {}: {e}", dir.display())))?;
    tighten(dir, 0o700)
}

/// Creates the database file 0600 before SQLite does (SQLite gives `-wal` and `-shm` the
/// database's mode), and tightens the three files of an existing store.
fn make_private_files(path: &Path) -> StoreResult<()> {
    if !path.exists() {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(path).map_err(|e| StoreError::Database(format!("cannot create {}: {e}", path.display())))?;
    }
    let mut name = path.as_os_str().to_owned();
    tighten(path, 0o600)?;
    for suffix in ["-wal", "-shm"] {
        name.push(suffix);
        let side = std::path::PathBuf::from(&name);
        if side.exists() {
            tighten(&side, 0o600)?;
        }
        name = path.as_os_str().to_owned();
    }
    Ok(())
}

/// Removes permissions beyond `mode` from an existing file or directory. A directory this
/// process does not own (a shared `/var/lib` layout) cannot be changed: that is logged, not
/// fatal, since the files inside are still private.
fn tighten(path: &Path, mode: u32) -> StoreResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| StoreError::Invalid(format!("cannot read {}: {e}", path.display())))?;
        let current = meta.permissions().mode() & 0o777;
        if current & !mode != 0 {
            let to = current & mode;
            match std::fs::set_permissions(path, std::fs::Permissions::from_mode(to)) {
                Ok(()) => tracing::info!(path = %path.display(), from = format!("{current:o}"), to = format!("{to:o}"), "made store file private"),
                Err(e) => tracing::warn!(path = %path.display(), mode = format!("{current:o}"), error = %e, "cannot make store file private"),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Seals plaintext webhook secrets (written before secrets were sealed) and re-seals those
/// sealed with an older key (after a rotation), in one transaction. The replaced values are
/// overwritten (`secure_delete`) and the WAL is checkpointed, so the old values leave the files.
fn reseal_secrets(conn: &mut Connection, keys: &super::secrets::SecretKeys) -> StoreResult<()> {
    for (table, column, sealed_as) in SEALED_COLUMNS {
        reseal_column(conn, keys, table, column, sealed_as)?;
    }
    Ok(())
}

/// [`reseal_secrets`] for one column (names from [`SEALED_COLUMNS`], never from input).
fn reseal_column(conn: &mut Connection, keys: &super::secrets::SecretKeys, table: &str, column: &str, sealed_as: &str) -> StoreResult<()> {
    let stale: Vec<(i64, String)> = {
        let mut st = conn.prepare(&format!("SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL"))?;
        let rows: Vec<(i64, String)> = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
        rows.into_iter().filter(|(_, value)| !keys.is_current(value)).collect()
    };
    if stale.is_empty() {
        return Ok(());
    }
    conn.pragma_update(None, "secure_delete", "ON")?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut sealed = 0;
    for (id, value) in stale {
        match keys.open(sealed_as, &value) {
            Ok(plain) => {
                tx.execute(&format!("UPDATE {table} SET {column} = ?1 WHERE id = ?2"), params![keys.seal(sealed_as, &plain), id])?;
                sealed += 1;
            }
            Err(e) => tracing::error!(table, id, key_file = %keys.path().display(), error = %e, "cannot re-seal a secret"),
        }
    }
    tx.commit()?;
    // Best effort: another process holding the database open may keep the WAL for now.
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::debug!(error = %e, "checkpoint after sealing secrets failed; the next one copies it");
    }
    conn.pragma_update(None, "secure_delete", "OFF")?;
    if sealed > 0 {
        tracing::info!(table, rows = sealed, "sealed secrets with the current key");
    }
    Ok(())
}

fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version as usize > MIGRATIONS.len() {
        return Err(StoreError::Invalid(format!(
            "database schema version {version} is newer than this ward (knows {}): upgrade ward",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied store migration");
    }
    Ok(())
}

fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 2);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('?');
    }
    s
}

fn row_jurisdiction(r: &rusqlite::Row<'_>) -> rusqlite::Result<Jurisdiction> {
    let kind: String = r.get(2)?;
    Ok(Jurisdiction {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: JurisdictionKind::parse(&kind).unwrap_or(JurisdictionKind::City),
        state: r.get(3)?,
        parent_id: r.get(4)?,
        home_net: r.get(5)?,
        created_ms: r.get(6)?,
        drill: r.get(7)?,
    })
}
const JURISDICTION_COLS: &str = "id, name, kind, state, parent_id, home_net, created_ms, drill";

fn row_sensor(r: &rusqlite::Row<'_>) -> rusqlite::Result<Sensor> {
    Ok(Sensor {
        id: r.get(0)?,
        jurisdiction_id: r.get(1)?,
        name: r.get(2)?,
        created_ms: r.get(3)?,
        last_seen_ms: r.get(4)?,
        last_event_ms: r.get(5)?,
        events_total: r.get(6)?,
        health: None,
    })
}
/// The body of a sensor's newest rule-reload `engine` record (see [`crate::model::reload_health`]);
/// engine records are few, and the type index finds them.
const SENSOR_HEALTH_COL: &str = "(SELECT e.body FROM events e WHERE e.event_type = 'engine' AND e.sensor_id = sensors.id \
     AND json_extract(e.body, '$.engine.module') = 'detect-reload' ORDER BY e.id DESC LIMIT 1)";
const SENSOR_COLS: &str = "id, jurisdiction_id, name, created_ms, last_seen_ms, last_event_ms, events_total";

fn row_user(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    let role: String = r.get(2)?;
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        jurisdiction_id: r.get(3)?,
        created_ms: r.get(4)?,
    })
}
const USER_COLS: &str = "users.id, users.username, users.role, users.jurisdiction_id, users.created_ms";

fn row_contact(r: &rusqlite::Row<'_>) -> rusqlite::Result<Contact> {
    let ch: String = r.get(2)?;
    Ok(Contact {
        id: r.get(0)?,
        jurisdiction_id: r.get(1)?,
        channel: Channel::parse(&ch).unwrap_or(Channel::Webhook),
        target: r.get(3)?,
        secret: r.get(4)?,
        created_ms: r.get(5)?,
        priority: r.get(6)?,
    })
}
const CONTACT_COLS: &str = "contacts.id, contacts.jurisdiction_id, contacts.channel, contacts.target, contacts.secret, contacts.created_ms, contacts.priority";

fn row_notification(r: &rusqlite::Row<'_>) -> rusqlite::Result<NotificationRecord> {
    let ch: String = r.get(5)?;
    Ok(NotificationRecord {
        id: r.get(0)?,
        campaign_id: r.get(1)?,
        jurisdiction_id: r.get(2)?,
        contact_id: r.get(3)?,
        target: r.get(4)?,
        channel: Channel::parse(&ch).unwrap_or(Channel::Webhook),
        event_kind: r.get(6)?,
        status: r.get(7)?,
        attempts: r.get(8)?,
        created_ms: r.get(9)?,
        delivered_ms: r.get(10)?,
        last_error: r.get(11)?,
    })
}
const NOTIFICATION_COLS: &str = "n.id, n.campaign_id, n.jurisdiction_id, n.contact_id, c.target, c.channel, n.event_kind, n.status, n.attempts, n.created_ms, n.delivered_ms, n.last_error";

/// Per-batch aggregate of one remote address at one jurisdiction.
struct RemoteAgg {
    count: i64,
    asn: Option<u32>,
}

impl Store for SqliteStore {
    fn create_jurisdiction(&self, new: &NewJurisdiction, now: Millis) -> StoreResult<Jurisdiction> {
        let name = new.name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(StoreError::Invalid("jurisdiction name must be 1 to 200 characters".into()));
        }
        check_text("jurisdiction name", name, false).map_err(StoreError::Invalid)?;
        let state = new.state.as_ref().map(|s| s.trim().to_ascii_uppercase());
        if let Some(s) = &state {
            if s.len() != 2 || !s.chars().all(|c| c.is_ascii_alphabetic()) {
                return Err(StoreError::Invalid("state must be a two-letter code such as OH".into()));
            }
        }
        if new.kind != JurisdictionKind::State && state.is_none() {
            return Err(StoreError::Invalid("a county or city needs --state XX (the state it belongs to)".into()));
        }
        let home_net = new.home_net.clone().unwrap_or_default();
        crate::ingest::HomeNet::parse(&home_net).map_err(|e| StoreError::Invalid(format!("home_net: {e}")))?;
        self.write(|tx| {
            let parent: Option<i64> = match (&state, new.kind) {
                (Some(s), JurisdictionKind::County | JurisdictionKind::City) => tx
                    .query_row("SELECT id FROM jurisdictions WHERE kind = 'state' AND state = ?1", [s], |r| r.get(0))
                    .optional()?,
                _ => None,
            };
            if new.kind == JurisdictionKind::State {
                if let Some(s) = &state {
                    let exists: Option<i64> = tx
                        .query_row("SELECT id FROM jurisdictions WHERE kind = 'state' AND state = ?1", [s], |r| r.get(0))
                        .optional()?;
                    if exists.is_some() {
                        return Err(StoreError::Conflict(format!("state {s} is already registered")));
                    }
                }
            }
            tx.execute(
                "INSERT INTO jurisdictions (name, kind, state, parent_id, home_net, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![name, new.kind.as_str(), state, parent, home_net, now],
            )
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("jurisdiction {name:?} already exists")),
                other => other,
            })?;
            let id = tx.last_insert_rowid();
            if new.kind == JurisdictionKind::State {
                // Counties and cities registered before their state now belong to it.
                tx.execute(
                    "UPDATE jurisdictions SET parent_id = ?1 WHERE state = ?2 AND kind != 'state' AND parent_id IS NULL",
                    params![id, state],
                )?;
            }
            Ok(tx.query_row(&format!("SELECT {JURISDICTION_COLS} FROM jurisdictions WHERE id = ?1"), [id], row_jurisdiction)?)
        })
    }

    fn jurisdictions(&self) -> StoreResult<Vec<Jurisdiction>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!("SELECT {JURISDICTION_COLS} FROM jurisdictions ORDER BY name"))?;
            let rows = st.query_map([], row_jurisdiction)?.collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    fn jurisdiction(&self, id: i64) -> StoreResult<Option<Jurisdiction>> {
        self.read(|c| {
            Ok(c.query_row(&format!("SELECT {JURISDICTION_COLS} FROM jurisdictions WHERE id = ?1"), [id], row_jurisdiction)
                .optional()?)
        })
    }

    fn jurisdiction_children(&self, parent_id: i64) -> StoreResult<Vec<Jurisdiction>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!("SELECT {JURISDICTION_COLS} FROM jurisdictions WHERE parent_id = ?1 AND id != ?1 ORDER BY name"))?;
            let rows = st.query_map([parent_id], row_jurisdiction)?.collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    fn jurisdiction_by_name(&self, name: &str) -> StoreResult<Option<Jurisdiction>> {
        self.read(|c| {
            Ok(c.query_row(&format!("SELECT {JURISDICTION_COLS} FROM jurisdictions WHERE name = ?1"), [name], row_jurisdiction)
                .optional()?)
        })
    }

    fn create_enrollment_token(&self, jurisdiction_id: i64, token_hash: &str, now: Millis, expires_ms: Millis) -> StoreResult<()> {
        self.write(|tx| {
            let exists: Option<i64> =
                tx.query_row("SELECT id FROM jurisdictions WHERE id = ?1", [jurisdiction_id], |r| r.get(0)).optional()?;
            if exists.is_none() {
                return Err(StoreError::NotFound(format!("jurisdiction {jurisdiction_id}")));
            }
            tx.execute(
                "INSERT INTO enrollment_tokens (token_hash, jurisdiction_id, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4)",
                params![token_hash, jurisdiction_id, now, expires_ms],
            )?;
            Ok(())
        })
    }

    fn enroll_sensor(&self, token_hash: &str, name: &str, credential_hash: &str, now: Millis) -> StoreResult<Sensor> {
        check_text("sensor name", name, false).map_err(StoreError::Invalid)?;
        self.write(|tx| {
            let jurisdiction: Option<i64> = tx
                .query_row(
                    "SELECT jurisdiction_id FROM enrollment_tokens WHERE token_hash = ?1 AND used_ms IS NULL AND expires_ms > ?2",
                    params![token_hash, now],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(jurisdiction_id) = jurisdiction else {
                return Err(StoreError::NotFound("enrollment token unknown, used or expired".into()));
            };
            tx.execute(
                "INSERT INTO sensors (jurisdiction_id, name, credential_hash, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![jurisdiction_id, name, credential_hash, now],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "UPDATE enrollment_tokens SET used_ms = ?1, sensor_id = ?2 WHERE token_hash = ?3",
                params![now, id, token_hash],
            )?;
            Ok(tx.query_row(&format!("SELECT {SENSOR_COLS} FROM sensors WHERE id = ?1"), [id], row_sensor)?)
        })
    }

    fn sensor_by_credential(&self, credential_hash: &str) -> StoreResult<Option<Sensor>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!("SELECT {SENSOR_COLS} FROM sensors WHERE credential_hash = ?1"))?;
            Ok(st.query_row([credential_hash], row_sensor).optional()?)
        })
    }

    fn sensors(&self, jurisdiction_id: Option<i64>) -> StoreResult<Vec<Sensor>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {SENSOR_COLS}, {SENSOR_HEALTH_COL} FROM sensors WHERE (?1 IS NULL OR jurisdiction_id = ?1) ORDER BY id"
            ))?;
            let rows = st
                .query_map([jurisdiction_id], |r| {
                    let mut sensor = row_sensor(r)?;
                    let record: Option<String> = r.get(7)?;
                    sensor.health = record.as_deref().and_then(crate::model::reload_health);
                    Ok(sensor)
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    fn create_contact(&self, jurisdiction_id: i64, new: &NewContact, now: Millis) -> StoreResult<Contact> {
        check_text("contact target", &new.target, false).map_err(StoreError::Invalid)?;
        crate::notify::validate_contact(new).map_err(StoreError::Invalid)?;
        self.write(|tx| {
            let exists: Option<i64> =
                tx.query_row("SELECT id FROM jurisdictions WHERE id = ?1", [jurisdiction_id], |r| r.get(0)).optional()?;
            if exists.is_none() {
                return Err(StoreError::NotFound(format!("jurisdiction {jurisdiction_id}")));
            }
            let sealed = new.secret.as_deref().map(|plain| self.secrets.seal(CONTACT_SECRET_COLUMN, plain));
            tx.execute(
                "INSERT INTO contacts (jurisdiction_id, channel, target, secret, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![jurisdiction_id, new.channel.as_str(), new.target.trim(), sealed, now],
            )?;
            let id = tx.last_insert_rowid();
            Ok(tx.query_row(&format!("SELECT {CONTACT_COLS} FROM contacts WHERE id = ?1"), [id], row_contact)?)
        })
        .map(|c| self.reveal(c))
    }

    fn contacts(&self, jurisdiction_id: Option<i64>) -> StoreResult<Vec<Contact>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {CONTACT_COLS} FROM contacts WHERE (?1 IS NULL OR jurisdiction_id = ?1) ORDER BY id"
            ))?;
            let rows: Vec<Contact> = st.query_map([jurisdiction_id], row_contact)?.collect::<Result<_, _>>()?;
            Ok(rows.into_iter().map(|c| self.reveal(c)).collect())
        })
    }

    fn create_user(&self, username: &str, password_hash: &str, role: Role, jurisdiction_id: Option<i64>, now: Millis) -> StoreResult<User> {
        let username = username.trim();
        if username.is_empty() || username.len() > 100 || username.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(StoreError::Invalid("username must be 1 to 100 characters without spaces".into()));
        }
        check_text("username", username, false).map_err(StoreError::Invalid)?;
        if (role == Role::Analyst) != jurisdiction_id.is_none() {
            return Err(StoreError::Invalid(
                "an analyst has no jurisdiction; an admin or viewer needs exactly one".into(),
            ));
        }
        self.write(|tx| {
            tx.execute(
                "INSERT INTO users (username, password_hash, role, jurisdiction_id, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![username, password_hash, role.as_str(), jurisdiction_id, now],
            )
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(m) if m.contains("UNIQUE") => StoreError::Conflict(format!("user {username:?} already exists")),
                StoreError::Conflict(_) => StoreError::NotFound(format!("jurisdiction {jurisdiction_id:?}")),
                other => other,
            })?;
            let id = tx.last_insert_rowid();
            Ok(tx.query_row(&format!("SELECT {USER_COLS} FROM users WHERE id = ?1"), [id], row_user)?)
        })
    }

    fn user_credentials(&self, username: &str) -> StoreResult<Option<(User, String)>> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {USER_COLS}, users.password_hash FROM users WHERE username = ?1"),
                [username],
                |r| Ok((row_user(r)?, r.get(5)?)),
            )
            .optional()?)
        })
    }

    fn users(&self, jurisdiction_id: Option<i64>) -> StoreResult<Vec<User>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {USER_COLS} FROM users WHERE (?1 IS NULL OR jurisdiction_id = ?1) ORDER BY id"
            ))?;
            let rows = st.query_map([jurisdiction_id], row_user)?.collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    fn create_session(&self, token_hash: &str, user_id: i64, csrf: &str, now: Millis, expires_ms: Millis) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM sessions WHERE expires_ms < ?1", [now])?;
            tx.execute(
                "INSERT INTO sessions (token_hash, user_id, csrf, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![token_hash, user_id, csrf, now, expires_ms],
            )?;
            Ok(())
        })
    }

    fn session(&self, token_hash: &str, now: Millis) -> StoreResult<Option<(User, String)>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {USER_COLS}, sessions.csrf FROM sessions JOIN users ON users.id = sessions.user_id \
                 WHERE sessions.token_hash = ?1 AND sessions.expires_ms > ?2"
            ))?;
            Ok(st.query_row(params![token_hash, now], |r| Ok((row_user(r)?, r.get(5)?))).optional()?)
        })
    }

    fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
            Ok(())
        })
    }

    fn ingest(&self, batches: &[IngestBatch], policy: &CorrelationPolicy, now: Millis) -> StoreResult<(Vec<IngestReceipt>, IngestEffects)> {
        self.write(|tx| {
            let mut receipts = Vec::with_capacity(batches.len());
            let mut effects = IngestEffects::default();
            let stored = self.stored_allow(tx)?;
            let allow = AllowView(&policy.trust.allow, &stored);
            for batch in batches {
                receipts.push(ingest_one(tx, batch, policy, allow, now, &mut effects)?);
            }
            Ok((receipts, effects))
        })
    }

    fn events(&self, jurisdiction_id: Option<i64>, event_type: Option<&str>, limit: usize) -> StoreResult<Vec<StoredEvent>> {
        let filter = EventFilter { jurisdiction_id, event_type: event_type.map(str::to_owned), before: None, limit, include_children: false };
        let mut out = Vec::new();
        self.scan_events(&filter, &mut |e| {
            out.push(e);
            true
        })?;
        Ok(out)
    }

    fn scan_events(&self, filter: &EventFilter, each: &mut dyn FnMut(StoredEvent) -> bool) -> StoreResult<()> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, jurisdiction_id, sensor_id, event_type, ts_ms, remote_ip, signature, body FROM events \
                 WHERE (?1 IS NULL OR jurisdiction_id = ?1 OR (?5 AND jurisdiction_id IN (SELECT id FROM jurisdictions WHERE parent_id = ?1))) \
                 AND (?2 IS NULL OR event_type = ?2) AND (?3 IS NULL OR id < ?3) \
                 ORDER BY id DESC LIMIT ?4",
            )?;
            let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
            let mut rows = st.query(params![filter.jurisdiction_id, filter.event_type, filter.before, limit, filter.include_children])?;
            while let Some(r) = rows.next()? {
                let body: String = r.get(7)?;
                // Lines are vetted at ingest, so every stored body parses; null only for rows
                // stored before that check existed.
                let body: serde_json::Value = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
                let event = StoredEvent {
                    id: r.get(0)?,
                    jurisdiction_id: r.get(1)?,
                    sensor_id: r.get(2)?,
                    event_type: r.get(3)?,
                    ts_ms: r.get(4)?,
                    remote_ip: r.get(5)?,
                    signature: r.get(6)?,
                    truncated: body.get("ward_truncated").is_some(),
                    body,
                };
                if !each(event) {
                    break;
                }
            }
            Ok(())
        })
    }

    fn alert_counts(&self, since: Millis) -> StoreResult<Vec<(i64, Millis, i64)>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT jurisdiction_id, (received_ms / 3600000) * 3600000 AS hour, count(*) FROM events \
                 WHERE event_type = 'alert' AND received_ms >= ?1 GROUP BY jurisdiction_id, hour ORDER BY hour",
            )?;
            let rows = st.query_map([since], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    fn prune_events(&self, event_type: Option<&str>, except: &[String], before: Millis) -> StoreResult<usize> {
        let mut total = 0;
        loop {
            let removed = self.write(|tx| match event_type {
                Some(t) => Ok(tx
                    .prepare_cached(
                        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE event_type = ?1 AND received_ms < ?2 LIMIT ?3)",
                    )?
                    .execute(params![t, before, PRUNE_CHUNK as i64])?),
                None => {
                    let sql = format!(
                        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE received_ms < ? AND event_type NOT IN ({}) LIMIT ?)",
                        placeholders(except.len().max(1))
                    );
                    let mut args: Vec<rusqlite::types::Value> = vec![before.into()];
                    if except.is_empty() {
                        // `NOT IN (NULL)` is never true; no event has an empty type.
                        args.push(rusqlite::types::Value::Text(String::new()));
                    }
                    args.extend(except.iter().map(|s| rusqlite::types::Value::Text(s.clone())));
                    args.push((PRUNE_CHUNK as i64).into());
                    Ok(tx.execute(&sql, rusqlite::params_from_iter(args))?)
                }
            })?;
            total += removed;
            if removed < PRUNE_CHUNK {
                return Ok(total);
            }
        }
    }

    fn prune_batches(&self, before: Millis) -> StoreResult<usize> {
        let mut total = 0;
        loop {
            let removed = self.write(|tx| {
                Ok(tx
                    .prepare_cached(
                        "DELETE FROM batches WHERE (sensor_id, seq) IN (SELECT sensor_id, seq FROM batches WHERE received_ms < ?1 LIMIT ?2)",
                    )?
                    .execute(params![before, PRUNE_CHUNK as i64])?)
            })?;
            total += removed;
            if removed < PRUNE_CHUNK {
                return Ok(total);
            }
        }
    }

    fn campaigns(&self, only_open: bool) -> StoreResult<Vec<Campaign>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id FROM campaigns WHERE (?1 = 0 OR status = 'open') ORDER BY last_ms DESC LIMIT 500",
            )?;
            let ids: Vec<i64> = st.query_map([only_open as i64], |r| r.get(0))?.collect::<Result<_, _>>()?;
            ids.into_iter().map(|id| load_campaign(c, id)).collect()
        })
    }

    fn campaign(&self, id: i64) -> StoreResult<Option<CampaignDetail>> {
        self.read(|c| {
            let exists: Option<i64> = c.query_row("SELECT id FROM campaigns WHERE id = ?1", [id], |r| r.get(0)).optional()?;
            if exists.is_none() {
                return Ok(None);
            }
            let campaign = load_campaign(c, id)?;
            let mut st = c.prepare_cached(
                "SELECT cj.jurisdiction_id, j.name, cj.first_ms, cj.last_ms, cj.sightings FROM campaign_jurisdictions cj \
                 JOIN jurisdictions j ON j.id = cj.jurisdiction_id WHERE cj.campaign_id = ?1 ORDER BY cj.first_ms",
            )?;
            let affected = st
                .query_map([id], |r| {
                    Ok(CampaignJurisdiction {
                        jurisdiction_id: r.get(0)?,
                        name: r.get(1)?,
                        first_ms: r.get(2)?,
                        last_ms: r.get(3)?,
                        sightings: r.get(4)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            let mut st = c.prepare_cached(
                "SELECT ts_ms, kind, jurisdiction_id, detail FROM campaign_log WHERE campaign_id = ?1 ORDER BY ts_ms, id LIMIT 1000",
            )?;
            let timeline = st
                .query_map([id], |r| {
                    Ok(TimelineEntry { ts_ms: r.get(0)?, kind: r.get(1)?, jurisdiction_id: r.get(2)?, detail: r.get(3)? })
                })?
                .collect::<Result<_, _>>()?;
            let notifications = query_notifications(c, &NotificationFilter { campaign_id: Some(id), limit: 1000, ..Default::default() })?;
            Ok(Some(CampaignDetail { campaign, affected, timeline, notifications }))
        })
    }

    fn jurisdiction_campaigns(&self, jurisdiction_id: i64) -> StoreResult<Vec<JurisdictionCampaignView>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT cj.campaign_id FROM campaign_jurisdictions cj JOIN campaigns c ON c.id = cj.campaign_id \
                 WHERE cj.jurisdiction_id = ?1 AND c.status != 'merged' ORDER BY cj.last_ms DESC LIMIT 200",
            )?;
            let ids: Vec<i64> = st.query_map([jurisdiction_id], |r| r.get(0))?.collect::<Result<_, _>>()?;
            let mut out = Vec::new();
            for id in ids {
                if let Some(v) = jurisdiction_view(c, id, jurisdiction_id)? {
                    out.push(v);
                }
            }
            Ok(out)
        })
    }

    fn jurisdiction_campaign(&self, campaign_id: i64, jurisdiction_id: i64) -> StoreResult<Option<JurisdictionCampaignView>> {
        self.read(|c| jurisdiction_view(c, campaign_id, jurisdiction_id))
    }

    fn rename_campaign(&self, id: i64, name: &str, now: Millis) -> StoreResult<()> {
        self.write(|tx| rename_tx(tx, id, name, now))
    }

    fn annotate_campaign(&self, id: i64, note: &str, now: Millis) -> StoreResult<()> {
        self.write(|tx| annotate_tx(tx, id, note, now))
    }

    fn close_campaign(&self, id: i64, now: Millis) -> StoreResult<()> {
        self.write(|tx| close_tx(tx, id, now))
    }

    fn merge_campaigns(&self, into: i64, from: i64, now: Millis) -> StoreResult<()> {
        self.write(|tx| merge_tx(tx, into, from, now))
    }

    fn update_campaign(&self, id: i64, change: &CampaignChange, now: Millis) -> StoreResult<()> {
        self.write(|tx| {
            if let Some(name) = &change.name {
                rename_tx(tx, id, name, now)?;
            }
            if let Some(note) = &change.annotation {
                annotate_tx(tx, id, note, now)?;
            }
            if let Some(from) = change.merge_from {
                merge_tx(tx, id, from, now)?;
            }
            if change.confirm {
                trust::confirm(tx, id, now)?;
            }
            if change.close {
                close_tx(tx, id, now)?;
            }
            Ok(())
        })
    }

    fn indicators_since(&self, cursor: i64, limit: usize) -> StoreResult<Vec<Indicator>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT seq, action, kind, value, campaign_id, ts_ms FROM indicators WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = st
                .query_map(params![cursor, limit as i64], |r| {
                    Ok(Indicator {
                        seq: r.get(0)?,
                        action: r.get(1)?,
                        kind: r.get(2)?,
                        value: r.get(3)?,
                        campaign_id: r.get(4)?,
                        ts_ms: r.get(5)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    fn claim_notifications(&self, now: Millis, lease_ms: Millis, limit: usize) -> StoreResult<Vec<NotificationJob>> {
        self.write(|tx| {
            let mut st = tx.prepare_cached(&format!(
                "SELECT n.id, n.campaign_id, n.jurisdiction_id, n.event_kind, n.attempts, {CONTACT_COLS} \
                 FROM notifications n JOIN contacts ON contacts.id = n.contact_id \
                 WHERE n.status = 'pending' AND n.next_attempt_ms <= ?1 ORDER BY n.next_attempt_ms LIMIT ?2"
            ))?;
            let jobs: Vec<NotificationJob> = st
                .query_map(params![now, limit as i64], |r| {
                    Ok(NotificationJob {
                        id: r.get(0)?,
                        campaign_id: r.get(1)?,
                        jurisdiction_id: r.get(2)?,
                        event_kind: r.get(3)?,
                        attempts: r.get(4)?,
                        contact: Contact {
                            id: r.get(5)?,
                            jurisdiction_id: r.get(6)?,
                            channel: Channel::parse(&r.get::<_, String>(7)?).unwrap_or(Channel::Webhook),
                            target: r.get(8)?,
                            secret: r.get(9)?,
                            created_ms: r.get(10)?,
                            priority: r.get(11)?,
                        },
                    })
                })?
                .collect::<Result<_, _>>()?;
            let jobs: Vec<NotificationJob> = jobs.into_iter().map(|j| NotificationJob { contact: self.reveal(j.contact), ..j }).collect();
            let mut up = tx.prepare_cached("UPDATE notifications SET next_attempt_ms = ?1 WHERE id = ?2")?;
            for j in &jobs {
                up.execute(params![now + lease_ms, j.id])?;
            }
            Ok(jobs)
        })
    }

    fn record_attempts(&self, attempts: &[(i64, AttemptOutcome, Millis)]) -> StoreResult<()> {
        if attempts.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            for (notification_id, outcome, now) in attempts {
                tx.prepare_cached(
                    "INSERT INTO delivery_attempts (notification_id, ts_ms, ok, duration_ms, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![notification_id, now, outcome.ok as i64, outcome.duration_ms, outcome.detail])?;
                if outcome.ok {
                    tx.prepare_cached(
                        "UPDATE notifications SET status = 'delivered', attempts = attempts + 1, delivered_ms = ?1, payload = ?2, last_error = NULL WHERE id = ?3",
                    )?
                    .execute(params![now, outcome.payload, notification_id])?;
                } else {
                    let (status, next) = match outcome.retry_at {
                        Some(t) => ("pending", t),
                        None => ("failed", *now),
                    };
                    tx.prepare_cached(
                        "UPDATE notifications SET status = ?1, attempts = attempts + 1, next_attempt_ms = ?2, last_error = ?3 WHERE id = ?4",
                    )?
                    .execute(params![status, next, outcome.detail, notification_id])?;
                }
            }
            Ok(())
        })
    }

    fn notifications(&self, filter: &NotificationFilter) -> StoreResult<Vec<NotificationRecord>> {
        self.read(|c| query_notifications(c, filter))
    }

    fn notification(&self, id: i64) -> StoreResult<Option<NotificationRecord>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {NOTIFICATION_COLS} FROM notifications n JOIN contacts c ON c.id = n.contact_id WHERE n.id = ?1"
            ))?;
            Ok(st.query_row([id], row_notification).optional()?)
        })
    }

    fn delivery_attempts(&self, notification_id: i64) -> StoreResult<Vec<DeliveryAttempt>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT notification_id, ts_ms, ok, duration_ms, detail FROM delivery_attempts WHERE notification_id = ?1 ORDER BY id",
            )?;
            let rows = st
                .query_map([notification_id], |r| {
                    Ok(DeliveryAttempt {
                        notification_id: r.get(0)?,
                        ts_ms: r.get(1)?,
                        ok: r.get::<_, i64>(2)? != 0,
                        duration_ms: r.get(3)?,
                        detail: r.get(4)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    fn next_due(&self) -> StoreResult<Option<Millis>> {
        self.read(|c| {
            Ok(c.query_row("SELECT min(next_attempt_ms) FROM notifications WHERE status = 'pending'", [], |r| r.get(0))?)
        })
    }

    // ---- trust: the SQL lives in store/sqlite/trust.rs ----
    fn sensor(&self, id: i64) -> StoreResult<Option<Sensor>> {
        self.read(|c| Ok(c.query_row(&format!("SELECT {SENSOR_COLS} FROM sensors WHERE id = ?1"), [id], row_sensor).optional()?))
    }
    fn sensor_contributions(&self, sensor_id: i64, now: Millis) -> StoreResult<Option<crate::trust::SensorContributions>> {
        self.read(|c| trust::contributions(c, sensor_id, now))
    }
    fn revoke_sensor(&self, sensor_id: i64, policy: &CorrelationPolicy, now: Millis) -> StoreResult<crate::trust::RevokeOutcome> {
        self.write(|tx| trust::revoke(tx, sensor_id, policy, now))
    }
    fn release_sensor(&self, sensor_id: i64, policy: &CorrelationPolicy, now: Millis) -> StoreResult<()> {
        self.write(|tx| trust::release(tx, sensor_id, policy, now)).map(|_| ())
    }
    fn trust_anomalies(&self, sensor_id: Option<i64>, limit: usize) -> StoreResult<Vec<crate::trust::TrustAnomaly>> {
        self.read(|c| trust::anomalies(c, sensor_id, limit))
    }
    fn allow_entries(&self, jurisdiction_id: Option<i64>) -> StoreResult<Vec<crate::trust::AllowEntry>> {
        self.read(|c| trust::entries(c, jurisdiction_id))
    }
    fn add_allow_entry(&self, new: &crate::trust::NewAllowEntry, now: Millis) -> StoreResult<crate::trust::AllowOutcome> {
        self.write(|tx| trust::add_entry(tx, new, now))
    }
    fn remove_allow_entry(&self, id: i64, _now: Millis) -> StoreResult<crate::trust::AllowEntry> {
        self.write(|tx| trust::remove_entry(tx, id))
    }

    // ---- scanner (ward scan --hub): the SQL lives in crate::assets::sql ----
    fn add_scan_asset(&self, jurisdiction_id: i64, kind: crate::assets::AssetKind, value: &str, now: Millis) -> StoreResult<crate::assets::ScanAsset> {
        self.write(|tx| crate::assets::sql::add_asset(tx, jurisdiction_id, kind, value, now))
    }
    fn scan_assets(&self, jurisdiction_id: i64) -> StoreResult<Vec<crate::assets::ScanAsset>> {
        self.read(|c| crate::assets::sql::assets(c, jurisdiction_id))
    }
    fn add_scan_blackout(&self, jurisdiction_id: i64, new: &crate::assets::NewScanBlackout, now: Millis) -> StoreResult<crate::assets::ScanBlackout> {
        self.write(|tx| crate::assets::sql::add_blackout(tx, jurisdiction_id, new, now))
    }
    fn scan_blackouts(&self, jurisdiction_id: i64) -> StoreResult<Vec<crate::assets::ScanBlackout>> {
        self.read(|c| crate::assets::sql::blackouts(c, jurisdiction_id))
    }
    fn store_scan_result(&self, jurisdiction_id: i64, finished_ms: Millis, next_due_ms: Millis, body: &str, now: Millis) -> StoreResult<i64> {
        self.write(|tx| crate::assets::sql::store_result(tx, jurisdiction_id, finished_ms, next_due_ms, body, now))
    }
    fn scan_results(&self, jurisdiction_id: i64) -> StoreResult<Vec<String>> {
        self.read(|c| crate::assets::sql::results(c, jurisdiction_id))
    }
    fn put_scan_report(&self, jurisdiction_id: i64, html: &str, pdf: &[u8], now: Millis) -> StoreResult<()> {
        self.write(|tx| crate::assets::sql::put_report(tx, jurisdiction_id, html, pdf, now))
    }
    fn scan_report(&self, jurisdiction_id: i64) -> StoreResult<Option<(Millis, String, Vec<u8>)>> {
        self.read(|c| crate::assets::sql::report(c, jurisdiction_id))
    }
    fn claim_scan_job(&self, candidates: &[i64], worker: &str, now: Millis, lease_ms: Millis) -> StoreResult<Option<i64>> {
        self.write(|tx| crate::assets::sql::claim(tx, candidates, worker, now, lease_ms))
    }

    // ---- retro-hunt: the SQL lives in crate::retro::sql ----
    fn add_analyst_indicator(&self, new: &crate::retro::NewIndicator, user_id: i64, now: Millis) -> StoreResult<crate::retro::AnalystIndicator> {
        self.write(|tx| {
            // trust: never an indicator for a registered never-block entry (the configured ones
            // are checked by the handler)
            let stored = self.stored_allow(tx)?;
            crate::trust::check_indicator(&new.kind, &new.value, &stored).map_err(StoreError::Invalid)?;
            crate::retro::sql::add_indicator(tx, new, user_id, now)
        })
    }
    fn expire_analyst_indicators(&self, now: Millis) -> StoreResult<usize> {
        self.write(|tx| crate::retro::sql::expire_indicators(tx, now))
    }
    fn retro_hunt_next(&self, window: &crate::retro::HuntWindow, now: Millis) -> StoreResult<Option<crate::retro::HuntOutcome>> {
        let Some(plan) = self.read(|c| crate::retro::sql::plan_next(c, window))? else { return Ok(None) };
        self.write(|tx| crate::retro::sql::commit_plan(tx, &plan, now)).map(Some)
    }
    fn retro_late_next(&self, window: &crate::retro::HuntWindow, now: Millis) -> StoreResult<Option<crate::retro::HuntOutcome>> {
        let Some(late) = self.read(|c| crate::retro::sql::plan_late(c, window))? else { return Ok(None) };
        self.write(|tx| crate::retro::sql::commit_late(tx, &late, now)).map(Some)
    }
    fn retro_hits(&self, jurisdiction_id: Option<i64>, limit: usize) -> StoreResult<Vec<crate::retro::RetroHit>> {
        self.read(|c| crate::retro::sql::hits(c, jurisdiction_id, limit))
    }
    fn retro_hit_for_notification(&self, notification_id: i64) -> StoreResult<Option<crate::retro::RetroHit>> {
        self.read(|c| crate::retro::sql::hit_for_notification(c, notification_id))
    }
    fn prune_contacts(&self, before_ms: Millis) -> StoreResult<usize> {
        let mut total = 0;
        loop {
            let removed = self.write(|tx| crate::retro::sql::prune_contacts_chunk(tx, before_ms))?;
            total += removed;
            if removed < crate::retro::PRUNE_CHUNK {
                return Ok(total);
            }
        }
    }

    fn claim_job(&self, name: &str, holder: &str, now: Millis, lease_ms: Millis) -> StoreResult<bool> {
        self.write(|tx| leases::claim_job(tx, name, holder, now, lease_ms))
    }
    fn release_job(&self, name: &str, holder: &str) -> StoreResult<()> {
        self.write(|tx| leases::release_job(tx, name, holder))
    }

    // ---- taxii (the SQL lives in sqlite/taxii.rs) ----
    fn taxii_add(&self, collection: &str, added_by: &str, objects: &[crate::share::objects::NewObject], now_us: i64) -> StoreResult<Vec<Option<i64>>> {
        self.write(|tx| taxii::add(tx, collection, added_by, objects, now_us))
    }
    fn taxii_objects(&self, query: &crate::share::objects::ObjectQuery) -> StoreResult<Vec<crate::share::objects::StoredObject>> {
        self.read(|c| taxii::query(c, query))
    }
    fn taxii_latest(&self, collection: &str, ids: &[String]) -> StoreResult<Vec<(String, i64, String)>> {
        self.read(|c| taxii::latest(c, collection, ids))
    }
    fn taxii_status(&self, id: &str) -> StoreResult<Option<(String, String)>> {
        self.read(|c| taxii::status(c, id))
    }
    fn create_api_key(&self, new: &crate::share::objects::NewApiKey, now: Millis) -> StoreResult<crate::share::objects::ApiKey> {
        self.write(|tx| taxii::create_key(tx, new, now))
    }
    fn api_keys(&self) -> StoreResult<Vec<crate::share::objects::ApiKey>> {
        self.read(taxii::keys)
    }
    fn api_key_by_secret(&self, secret_hash: &str) -> StoreResult<Option<crate::share::objects::ApiKey>> {
        self.read(|c| taxii::key_by_secret(c, secret_hash))
    }
    fn revoke_api_key(&self, id: i64, now: Millis) -> StoreResult<crate::share::objects::ApiKey> {
        self.write(|tx| taxii::revoke_key(tx, id, now))
    }
    // ---- end taxii ----
    // ---- feeds (crate::share::feeds; SQL in sqlite/feeds.rs) ----
    fn add_feed(&self, new: &crate::share::feeds::NewFeed, now: Millis) -> StoreResult<crate::share::feeds::Feed> {
        self.write(|tx| feeds::add_feed(tx, &self.secrets, new, now))
    }
    fn feeds(&self) -> StoreResult<Vec<crate::share::feeds::Feed>> {
        self.read(feeds::feeds)
    }
    fn feed(&self, id: i64) -> StoreResult<Option<crate::share::feeds::Feed>> {
        self.read(|c| feeds::feed(c, id))
    }
    fn feed_credential(&self, id: i64) -> StoreResult<Option<String>> {
        self.read(|c| feeds::credential(c, &self.secrets, id))
    }
    fn remove_feed(&self, id: i64, now: Millis) -> StoreResult<crate::share::feeds::FeedApplied> {
        self.write(|tx| feeds::remove_feed(tx, id, now))
    }
    fn apply_feed_update(&self, feed_id: i64, update: &crate::share::feeds::FeedUpdate, allow: &AllowList, now: Millis) -> StoreResult<crate::share::feeds::FeedApplied> {
        self.write(|tx| {
            let stored = self.stored_allow(tx)?;
            feeds::apply(tx, feed_id, update, AllowView(allow, &stored), now)
        })
    }
    fn record_feed_poll(&self, feed_id: i64, record: &crate::share::feeds::PollRecord, now: Millis) -> StoreResult<()> {
        self.write(|tx| feeds::record_poll(tx, feed_id, record, now))
    }
    fn expire_feed_indicators(&self, now: Millis) -> StoreResult<crate::share::feeds::FeedApplied> {
        self.write(|tx| feeds::expire(tx, now))
    }
    fn feed_indicators(&self, feed_id: i64, limit: usize) -> StoreResult<Vec<crate::share::feeds::FeedIndicator>> {
        self.read(|c| feeds::indicators(c, feed_id, limit))
    }
    // ---- end feeds ----
    // ---- federation (crate::share::federation; SQL in sqlite/federation.rs) ----
    fn federation_outbound(&self, query: &crate::share::federation::OutboundQuery) -> StoreResult<Vec<crate::share::objects::StoredObject>> {
        self.read(|c| federation::outbound(c, query))
    }
    fn federation_peer(&self, name: &str) -> StoreResult<Option<crate::share::federation::PeerState>> {
        self.read(|c| federation::peer(c, name))
    }
    fn federation_peers(&self) -> StoreResult<Vec<crate::share::federation::PeerState>> {
        self.read(federation::peers)
    }
    fn record_federation_push(&self, name: &str, record: &crate::share::federation::PushRecord, now: Millis) -> StoreResult<()> {
        self.write(|tx| federation::record_push(tx, name, record, now))
    }
    fn record_federation_received(&self, name: &str, objects: usize, now: Millis) -> StoreResult<()> {
        self.write(|tx| federation::record_received(tx, name, objects, now))
    }
    fn set_feed_rules(&self, feed_id: i64, rules: &crate::share::feeds::NewFeed) -> StoreResult<()> {
        self.write(|tx| federation::set_feed_rules(tx, feed_id, rules))
    }
    fn analyst_add_seqs(&self) -> StoreResult<Vec<i64>> {
        self.read(federation::analyst_add_seqs)
    }
    // ---- end federation ----
    // ---- ack (crate::ack; the SQL in sqlite/ack.rs) ----
    fn set_contact_priority(&self, contact_id: i64, priority: i64) -> StoreResult<Contact> {
        self.write(|tx| {
            ack::set_priority(tx, contact_id, priority)?;
            Ok(tx.query_row(&format!("SELECT {CONTACT_COLS} FROM contacts WHERE id = ?1"), [contact_id], row_contact)?)
        })
        .map(|c| self.reveal(c))
    }
    fn ack_notification(&self, notification_id: i64, new: &crate::ack::NewAck, now: Millis) -> StoreResult<Option<crate::ack::Ack>> {
        self.write(|tx| ack::ack(tx, notification_id, new, now))
    }
    fn notification_ack(&self, notification_id: i64) -> StoreResult<Option<crate::ack::Ack>> {
        self.read(|c| ack::notification_ack(c, notification_id))
    }
    fn escalations(&self, campaign_id: i64, jurisdiction_id: i64) -> StoreResult<Vec<crate::ack::EscalationStep>> {
        self.read(|c| ack::escalations(c, campaign_id, jurisdiction_id))
    }
    fn escalation_of_notification(&self, notification_id: i64) -> StoreResult<Option<crate::ack::EscalationStep>> {
        self.read(|c| ack::escalation_of_notification(c, notification_id))
    }
    fn escalate_due(&self, policy: &crate::ack::EscalationPolicy, now: Millis) -> StoreResult<Vec<crate::ack::EscalationStep>> {
        self.write(|tx| ack::escalate_due(tx, policy, now))
    }
    fn warning_acks(&self, jurisdictions: Option<&[i64]>, since: Millis, limit: usize) -> StoreResult<Vec<crate::ack::WarningAck>> {
        self.read(|c| ack::warning_acks(c, jurisdictions, since, limit))
    }
    fn hub_key(&self, name: &str, now: Millis) -> StoreResult<Vec<u8>> {
        self.write(|tx| ack::hub_key(tx, &self.secrets, name, now))
    }
    // ---- end ack ----
    // ---- disinfo (crate::disinfo; the SQL in sqlite/disinfo.rs) ----
    fn disinfo_file_report(&self, new: &crate::disinfo::NewReport, policy: &crate::disinfo::CasePolicy, now: Millis) -> StoreResult<crate::disinfo::ReportOutcome> {
        self.write(|tx| disinfo::file_report(tx, new, policy, now))
    }
    fn disinfo_report(&self, id: i64) -> StoreResult<Option<crate::disinfo::Report>> {
        self.read(|c| disinfo::report(c, id))
    }
    fn disinfo_reports(&self, jurisdictions: Option<&[i64]>, limit: usize) -> StoreResult<Vec<crate::disinfo::Report>> {
        self.read(|c| disinfo::reports(c, jurisdictions, limit))
    }
    fn disinfo_case(&self, id: i64) -> StoreResult<Option<crate::disinfo::CaseDetail>> {
        self.read(|c| disinfo::case_detail(c, id))
    }
    fn disinfo_cases(&self, jurisdictions: Option<&[i64]>, limit: usize) -> StoreResult<Vec<crate::disinfo::Case>> {
        self.read(|c| disinfo::cases(c, jurisdictions, limit))
    }
    fn disinfo_set_status(&self, case_id: i64, change: &crate::disinfo::StatusChange, now: Millis) -> StoreResult<crate::disinfo::Case> {
        self.write(|tx| disinfo::set_status(tx, case_id, change, now))
    }
    fn disinfo_screenshot(&self, sha256: &str) -> StoreResult<Option<crate::disinfo::StoredScreenshot>> {
        self.read(|c| disinfo::screenshot(c, sha256))
    }
    fn disinfo_escalate_untouched(&self, urgent_before: Millis, other_before: Millis, now: Millis, limit: usize) -> StoreResult<Vec<i64>> {
        self.write(|tx| disinfo::escalate_untouched(tx, urgent_before, other_before, now, limit))
    }
    fn disinfo_set_published(&self, case_id: i64, published_ms: Option<Millis>) -> StoreResult<bool> {
        self.write(|tx| disinfo::set_published(tx, case_id, published_ms))
    }
    fn disinfo_published_ms(&self, case_id: i64) -> StoreResult<Option<Millis>> {
        self.read(|c| disinfo::published_ms(c, case_id))
    }
    fn disinfo_published(&self, limit: usize) -> StoreResult<Vec<(i64, Millis)>> {
        self.read(|c| disinfo::published(c, limit))
    }
    // ---- end disinfo ----
    // ---- mtls (crate::tls; SQL in sqlite/taxii.rs) ----
    fn bind_api_key_cert(&self, id: i64, sha256: Option<&str>) -> StoreResult<crate::share::objects::ApiKey> {
        self.write(|tx| taxii::bind_key_cert(tx, id, sha256))
    }
    fn api_key_by_cert(&self, sha256: &str) -> StoreResult<Option<crate::share::objects::ApiKey>> {
        self.read(|c| taxii::key_by_cert(c, sha256))
    }
    // ---- end mtls ----
    // ---- taxii post (SQL in sqlite/taxii.rs) ----
    fn taxii_post(
        &self,
        collection: &str,
        added_by: &str,
        objects: &[crate::share::objects::NewObject],
        now_us: i64,
        status_id: &str,
        status: &(dyn Fn(&[Option<i64>]) -> String + Sync),
        now: Millis,
        keep_after_ms: Millis,
    ) -> StoreResult<(Vec<Option<i64>>, String)> {
        self.write(|tx| {
            let stored = taxii::add(tx, collection, added_by, objects, now_us)?;
            let body = status(&stored);
            taxii::put_status(tx, status_id, added_by, &body, now, keep_after_ms)?;
            Ok((stored, body))
        })
    }
    // ---- end taxii post ----
    // ---- drill (crate::drill; the SQL in sqlite/drill.rs) ----
    fn set_jurisdiction_drill(&self, id: i64, drill: bool) -> StoreResult<Jurisdiction> {
        self.write(|tx| drill::set_drill(tx, id, drill))
    }
    fn purge_drill(&self, now: Millis, apply: bool) -> StoreResult<crate::drill::DrillPurge> {
        drill::purge_drill(self, now, apply)
    }
    // ---- end drill ----
}

fn query_notifications(c: &Connection, f: &NotificationFilter) -> StoreResult<Vec<NotificationRecord>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {NOTIFICATION_COLS} FROM notifications n JOIN contacts c ON c.id = n.contact_id \
         WHERE (?1 IS NULL OR n.jurisdiction_id = ?1 OR (?4 AND n.jurisdiction_id IN (SELECT id FROM jurisdictions WHERE parent_id = ?1))) \
         AND (?2 IS NULL OR n.campaign_id = ?2) ORDER BY n.id DESC LIMIT ?3"
    ))?;
    let limit = if f.limit == 0 { 500 } else { f.limit } as i64;
    let rows = st.query_map(params![f.jurisdiction_id, f.campaign_id, limit, f.include_children], row_notification)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

fn load_campaign(c: &Connection, id: i64) -> StoreResult<Campaign> {
    let mut campaign = c.query_row(
        "SELECT id, name, status, opened_ms, last_ms, closed_ms, merged_into, annotation, \
         (SELECT count(*) FROM campaign_jurisdictions WHERE campaign_id = campaigns.id), \
         (SELECT coalesce(sum(sightings), 0) FROM campaign_jurisdictions WHERE campaign_id = campaigns.id), \
         published_ms, confirmed_ms \
         FROM campaigns WHERE id = ?1",
        [id],
        |r| {
            Ok(Campaign {
                id: r.get(0)?,
                name: r.get(1)?,
                status: CampaignStatus::parse(&r.get::<_, String>(2)?),
                opened_ms: r.get(3)?,
                last_ms: r.get(4)?,
                closed_ms: r.get(5)?,
                merged_into: r.get(6)?,
                annotation: r.get(7)?,
                jurisdictions: r.get(8)?,
                sightings: r.get(9)?,
                published_ms: r.get(10)?,
                confirmed_ms: r.get(11)?,
                keys: Vec::new(),
            })
        },
    )?;
    let mut st = c.prepare_cached("SELECT actor_key FROM campaign_keys WHERE campaign_id = ?1 ORDER BY added_ms, actor_key")?;
    campaign.keys = st.query_map([id], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(campaign)
}

/// The per-jurisdiction view: its own sightings, a count of the others, what to block.
fn jurisdiction_view(c: &Connection, campaign_id: i64, jurisdiction_id: i64) -> StoreResult<Option<JurisdictionCampaignView>> {
    let row: Option<(String, String, Millis, Millis)> = c
        .query_row(
            "SELECT c.name, c.status, cj.first_ms, cj.last_ms FROM campaign_jurisdictions cj JOIN campaigns c ON c.id = cj.campaign_id \
             WHERE cj.campaign_id = ?1 AND cj.jurisdiction_id = ?2",
            params![campaign_id, jurisdiction_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((name, status, first_ms, last_ms)) = row else {
        return Ok(None);
    };
    let total: i64 = c.query_row(
        "SELECT count(*) FROM campaign_jurisdictions WHERE campaign_id = ?1",
        [campaign_id],
        |r| r.get(0),
    )?;
    let keys: Vec<String> = {
        let mut st = c.prepare_cached("SELECT actor_key FROM campaign_keys WHERE campaign_id = ?1 ORDER BY added_ms, actor_key")?;
        let rows = st.query_map([campaign_id], |r| r.get(0))?.collect::<Result<_, _>>()?;
        rows
    };
    let mut ips = Vec::new();
    let mut nets = Vec::new();
    let mut asns = Vec::new();
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
        let sql = format!(
            "SELECT remote_ip, local_ip, signature, min(ts_ms), max(ts_ms), count(*) FROM events \
             WHERE jurisdiction_id = ? AND remote_prefix IS NOT NULL AND ( \
               (remote_prefix IN ({p}) AND (remote_ip IN ({i}) OR remote_prefix IN ({n}))) OR remote_asn IN ({a})) \
             GROUP BY remote_ip, local_ip, signature ORDER BY count(*) DESC LIMIT {MAX_LOCAL_SIGHTINGS}",
            p = placeholders(prefixes.len().max(1)),
            i = placeholders(ips.len().max(1)),
            n = placeholders(nets.len().max(1)),
            a = placeholders(asns.len().max(1)),
        );
        use rusqlite::types::Value;
        let mut args: Vec<Value> = vec![jurisdiction_id.into()];
        let pad = |args: &mut Vec<Value>, n: usize| {
            if n == 0 {
                args.push(Value::Null)
            }
        };
        args.extend(prefixes.keys().map(|s| Value::Text(s.clone())));
        pad(&mut args, prefixes.len());
        args.extend(ips.iter().map(|s| Value::Text(s.clone())));
        pad(&mut args, ips.len());
        args.extend(nets.iter().map(|s| Value::Text(s.clone())));
        pad(&mut args, nets.len());
        args.extend(asns.iter().map(|&n| Value::Integer(n)));
        pad(&mut args, asns.len());
        let mut st = c.prepare(&sql)?;
        sightings = st
            .query_map(rusqlite::params_from_iter(args), |r| {
                Ok(LocalSighting {
                    remote_ip: r.get(0)?,
                    local_ip: r.get(1)?,
                    signature: r.get(2)?,
                    first_ms: r.get(3)?,
                    last_ms: r.get(4)?,
                    count: r.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
    }
    let block = keys
        .iter()
        .map(|k| k.split_once(':').map(|(_, v)| v.to_string()).unwrap_or_else(|| k.clone()))
        .collect();
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

fn rename_tx(tx: &Transaction<'_>, id: i64, name: &str, now: Millis) -> StoreResult<()> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(StoreError::Invalid("campaign name must be 1 to 200 characters".into()));
    }
    check_text("campaign name", name, false).map_err(StoreError::Invalid)?;
    if tx.execute("UPDATE campaigns SET name = ?1 WHERE id = ?2", params![name, id])? == 0 {
        return Err(StoreError::NotFound(format!("campaign {id}")));
    }
    log(tx, id, now, "renamed", None, name)
}

fn annotate_tx(tx: &Transaction<'_>, id: i64, note: &str, now: Millis) -> StoreResult<()> {
    if note.len() > 10_000 {
        return Err(StoreError::Invalid("annotation longer than 10000 bytes".into()));
    }
    check_text("campaign note", note, true).map_err(StoreError::Invalid)?;
    if tx.execute("UPDATE campaigns SET annotation = ?1 WHERE id = ?2", params![note, id])? == 0 {
        return Err(StoreError::NotFound(format!("campaign {id}")));
    }
    log(tx, id, now, "annotated", None, note)
}

fn close_tx(tx: &Transaction<'_>, id: i64, now: Millis) -> StoreResult<()> {
    if tx.execute("UPDATE campaigns SET status = 'closed', closed_ms = ?1 WHERE id = ?2 AND status = 'open'", params![now, id])? == 0 {
        return Err(StoreError::NotFound(format!("open campaign {id}")));
    }
    withdraw_indicators(tx, id, now)?;
    log(tx, id, now, "closed", None, "")
}

fn merge_tx(tx: &Transaction<'_>, into: i64, from: i64, now: Millis) -> StoreResult<()> {
    if into == from {
        return Err(StoreError::Invalid("cannot merge a campaign into itself".into()));
    }
    for id in [into, from] {
        let open: Option<String> = tx.query_row("SELECT status FROM campaigns WHERE id = ?1", [id], |r| r.get(0)).optional()?;
        if open.as_deref() != Some("open") {
            return Err(StoreError::NotFound(format!("open campaign {id}")));
        }
    }
    let keys: Vec<String> = {
        let mut st = tx.prepare("SELECT actor_key FROM campaign_keys WHERE campaign_id = ?1")?;
        let rows = st.query_map([from], |r| r.get(0))?.collect::<Result<_, _>>()?;
        rows
    };
    // What every sensor already has stays published: merging a published campaign publishes the
    // merged one (a merge never lowers what the feed carries by itself).
    let publish_into = trust::published(tx, from)? && !trust::published(tx, into)?;
    withdraw_indicators(tx, from, now)?;
    for key in &keys {
        add_key(tx, into, key, now)?;
    }
    tx.execute(
        "INSERT INTO campaign_jurisdictions (campaign_id, jurisdiction_id, first_ms, last_ms, sightings) \
         SELECT ?1, jurisdiction_id, first_ms, last_ms, sightings FROM campaign_jurisdictions WHERE campaign_id = ?2 \
         ON CONFLICT (campaign_id, jurisdiction_id) DO UPDATE SET first_ms = min(first_ms, excluded.first_ms), \
         last_ms = max(last_ms, excluded.last_ms), sightings = sightings + excluded.sightings",
        params![into, from],
    )?;
    tx.execute("UPDATE campaigns SET status = 'merged', merged_into = ?1, closed_ms = ?2 WHERE id = ?3", params![into, now, from])?;
    if publish_into {
        trust::publish(tx, into, now, &format!("campaign {from}, published, merged into this one"))?;
    }
    log(tx, into, now, "merged", None, &format!("campaign {from} merged into this one"))?;
    log(tx, from, now, "merged", None, &format!("merged into campaign {into}"))
}

fn log(tx: &Transaction<'_>, campaign_id: i64, now: Millis, kind: &str, jurisdiction_id: Option<i64>, detail: &str) -> StoreResult<()> {
    tx.prepare_cached("INSERT INTO campaign_log (campaign_id, ts_ms, kind, jurisdiction_id, detail) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![campaign_id, now, kind, jurisdiction_id, detail])?;
    Ok(())
}

fn key_kind_value(key: &str) -> (&str, &str) {
    key.split_once(':').unwrap_or(("ip", key))
}

/// Adds a key to a campaign and, when the campaign is published, to the indicator feed; returns
/// whether an indicator was added.
fn add_key(tx: &Transaction<'_>, campaign_id: i64, key: &str, now: Millis) -> StoreResult<bool> {
    let added = tx
        .prepare_cached("INSERT OR IGNORE INTO campaign_keys (actor_key, campaign_id, added_ms) VALUES (?1, ?2, ?3)")?
        .execute(params![key, campaign_id, now])?;
    if added == 0 || !trust::published(tx, campaign_id)? {
        return Ok(false);
    }
    let (kind, value) = key_kind_value(key);
    tx.prepare_cached("INSERT INTO indicators (action, kind, value, campaign_id, ts_ms) VALUES ('add', ?1, ?2, ?3, ?4)")?
        .execute(params![kind, value, campaign_id, now])?;
    Ok(true)
}

/// Withdraws a published campaign's keys from the feed (`remove` deltas, only for values no
/// other source still holds); returns how many.
fn withdraw_indicators(tx: &Transaction<'_>, campaign_id: i64, now: Millis) -> StoreResult<usize> {
    if !trust::published(tx, campaign_id)? {
        return Ok(0);
    }
    let keys: Vec<String> = {
        let mut st = tx.prepare_cached("SELECT actor_key FROM campaign_keys WHERE campaign_id = ?1 ORDER BY actor_key")?;
        let rows = st.query_map([campaign_id], |r| r.get(0))?.collect::<Result<_, _>>()?;
        rows
    };
    let mut n = 0;
    for key in &keys {
        let (kind, value) = key_kind_value(key);
        n += feeds::log_remove(tx, kind, value, campaign_id, feeds::Holder::Campaign(campaign_id), now)? as usize;
    }
    tx.execute("UPDATE campaigns SET published_ms = NULL WHERE id = ?1", [campaign_id])?;
    Ok(n)
}

fn ingest_one(tx: &Transaction<'_>, b: &IngestBatch, policy: &CorrelationPolicy, allow: AllowView<'_>, now: Millis, fx: &mut IngestEffects) -> StoreResult<IngestReceipt> {
    let previous: Option<String> = tx
        .prepare_cached("SELECT reply FROM batches WHERE sensor_id = ?1 AND seq = ?2")?
        .query_row(params![b.sensor_id, b.seq], |r| r.get(0))
        .optional()?;
    if let Some(reply) = previous {
        let mut receipt: IngestReceipt = serde_json::from_str(&reply).map_err(db_err)?;
        receipt.duplicate = true;
        return Ok(receipt);
    }
    let mut remotes: HashMap<IpAddr, RemoteAgg> = HashMap::new();
    let mut newest: Option<Millis> = None;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO events (jurisdiction_id, sensor_id, event_type, ts_ms, received_ms, remote_ip, remote_prefix, remote_asn, local_ip, signature_id, signature, body) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for ev in &b.events {
            newest = Some(newest.map_or(ev.ts_ms, |n| n.max(ev.ts_ms)));
            // ---- retro-hunt: contact records go to their compact table (crate::retro) ----
            if let Some(c) = &ev.contact {
                crate::retro::sql::insert_contact(tx, b.jurisdiction_id, b.sensor_id, c, now)?;
                continue;
            }
            let remote = ev.remote.map(|ip| ip.to_string());
            let prefix = ev.remote.map(prefix_of);
            insert.execute(params![
                b.jurisdiction_id,
                b.sensor_id,
                ev.event_type,
                ev.ts_ms,
                now,
                remote,
                prefix,
                ev.remote_asn,
                ev.local.map(|ip| ip.to_string()),
                ev.signature_id,
                ev.signature,
                ev.raw,
            ])?;
            if let Some(ip) = ev.remote {
                let agg = remotes.entry(ip).or_insert(RemoteAgg { count: 0, asn: ev.remote_asn });
                agg.count += 1;
            }
        }
    }
    crate::retro::sql::mark_late(tx, b, now)?; // retro-hunt: contact records that may be late
    // trust: an allow-listed address is never a sighting; the rest correlate only within the
    // sensor's budget (every event above is stored either way).
    remotes.retain(|ip, _| !allow.contains(*ip));
    if !remotes.is_empty() {
        let ips: Vec<IpAddr> = remotes.keys().copied().collect();
        if trust::admit(tx, b, &ips, policy, now, fx)? {
            for (ip, agg) in &remotes {
                correlate(tx, b.sensor_id, b.jurisdiction_id, *ip, agg, policy, allow, now, fx)?;
            }
        }
    }
    tx.prepare_cached(
        "UPDATE sensors SET last_seen_ms = ?1, last_event_ms = max(coalesce(last_event_ms, ?2), coalesce(?2, last_event_ms)), \
         events_total = events_total + ?3 WHERE id = ?4",
    )?
    .execute(params![now, newest, b.events.len() as i64, b.sensor_id])?;
    let receipt = IngestReceipt {
        sensor_id: b.sensor_id,
        seq: b.seq,
        accepted: b.events.len(),
        rejected_total: b.rejected_total,
        rejected: b.rejected.iter().map(|r| RejectionOut { line: r.line, reason: r.reason.clone() }).collect(),
        duplicate: false,
    };
    tx.prepare_cached("INSERT INTO batches (sensor_id, seq, received_ms, reply) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![b.sensor_id, b.seq, now, serde_json::to_string(&receipt).map_err(db_err)?])?;
    Ok(receipt)
}

/// Records one remote address seen by one sensor and opens or extends a campaign.
#[allow(clippy::too_many_arguments)]
fn correlate(
    tx: &Transaction<'_>,
    sensor_id: i64,
    jurisdiction_id: i64,
    ip: IpAddr,
    agg: &RemoteAgg,
    policy: &CorrelationPolicy,
    allow: AllowView<'_>,
    now: Millis,
    fx: &mut IngestEffects,
) -> StoreResult<()> {
    // Never a key that covers an allow-listed address; the `ip:` key stays first.
    let keys = crate::trust::actor_keys(ip, agg.asn, allow);
    if keys.is_empty() {
        return Ok(());
    }
    {
        let mut up = tx.prepare_cached(
            "INSERT INTO sightings (actor_key, jurisdiction_id, sensor_id, first_ms, last_ms, count) VALUES (?1, ?2, ?3, ?4, ?4, ?5) \
             ON CONFLICT (actor_key, jurisdiction_id, sensor_id) DO UPDATE SET last_ms = excluded.last_ms, count = count + excluded.count",
        )?;
        for key in &keys {
            up.execute(params![key, jurisdiction_id, sensor_id, now, agg.count])?;
        }
    }
    // An open campaign that already holds one of the keys: extend it.
    let existing: Option<i64> = {
        let sql = format!(
            "SELECT c.id FROM campaign_keys k JOIN campaigns c ON c.id = k.campaign_id \
             WHERE k.actor_key IN ({}) AND c.status = 'open' ORDER BY c.id LIMIT 1",
            placeholders(keys.len())
        );
        tx.prepare_cached(&sql)?.query_row(rusqlite::params_from_iter(keys.iter()), |r| r.get(0)).optional()?
    };
    if let Some(campaign_id) = existing {
        fx.indicators_added += add_key(tx, campaign_id, &keys[0], now)? as usize;
        extend(tx, campaign_id, jurisdiction_id, agg.count, policy, now, fx)?;
        return Ok(());
    }
    let window_start = now.saturating_sub(policy.window_ms);
    // After an analyst closes a campaign about this actor, only sightings made after the close
    // count towards a new one: closing is not undone by the next packet from the same actor.
    let closed: Option<Millis> = {
        let sql = format!(
            "SELECT max(c.closed_ms) FROM campaign_keys k JOIN campaigns c ON c.id = k.campaign_id \
             WHERE k.actor_key IN ({}) AND c.status = 'closed'",
            placeholders(keys.len())
        );
        tx.prepare_cached(&sql)?.query_row(rusqlite::params_from_iter(keys.iter()), |r| r.get(0))?
    };
    let since = closed.map_or(window_start, |c| window_start.max(c.saturating_add(1)));
    // Every key of this address seen by K jurisdictions since then belongs to the new campaign,
    // so one actor makes one campaign, not one per key.
    let mut qualifying: Vec<(&String, i64)> = Vec::new();
    for key in &keys {
        let n: i64 = tx
            .prepare_cached("SELECT count(DISTINCT jurisdiction_id) FROM sightings WHERE actor_key = ?1 AND last_ms >= ?2")?
            .query_row(params![key, since], |r| r.get(0))?;
        if n >= policy.min_jurisdictions {
            qualifying.push((key, n));
        }
    }
    let Some(&(first_key, first_n)) = qualifying.first() else {
        return Ok(());
    };
    let (kind, value) = key_kind_value(first_key);
    tx.prepare_cached("INSERT INTO campaigns (name, status, opened_ms, last_ms, opened_by_sensor) VALUES (?1, 'open', ?2, ?2, ?3)")?
        .execute(params![format!("{kind} {value}"), now, sensor_id])?;
    let campaign_id = tx.last_insert_rowid();
    fx.campaigns_opened += 1;
    fx.indicators_added += add_key(tx, campaign_id, &keys[0], now)? as usize;
    let mut members: BTreeMap<i64, (Millis, Millis, i64)> = BTreeMap::new();
    for &(key, _) in &qualifying {
        fx.indicators_added += add_key(tx, campaign_id, key, now)? as usize;
        let mut st = tx.prepare_cached(
            "SELECT jurisdiction_id, min(first_ms), max(last_ms), sum(count) FROM sightings WHERE actor_key = ?1 AND last_ms >= ?2 GROUP BY jurisdiction_id",
        )?;
        let rows = st.query_map(params![key, since], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Millis>(1)?, r.get::<_, Millis>(2)?, r.get::<_, i64>(3)?)))?;
        for row in rows {
            let (j, first, last, count) = row?;
            let m = members.entry(j).or_insert((first, last, count));
            *m = (m.0.min(first), m.1.max(last), m.2.max(count));
        }
    }
    log(tx, campaign_id, now, "opened", None, &format!("{first_key} seen by {first_n} jurisdictions"))?;
    let mut ordered: Vec<(i64, (Millis, Millis, i64))> = members.into_iter().collect();
    ordered.sort_by_key(|&(j, (first, _, _))| (first, j));
    for (j, (first, last, count)) in ordered {
        tx.prepare_cached(
            "INSERT INTO campaign_jurisdictions (campaign_id, jurisdiction_id, first_ms, last_ms, sightings) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![campaign_id, j, first, last, count])?;
        log(tx, campaign_id, now, "jurisdiction_added", Some(j), "")?;
        fx.notifications_enqueued += enqueue(tx, campaign_id, j, "targeted", "targeted", now, policy.digest_interval_ms)?;
    }
    // A campaign that opens large starts at its level without a second message: the
    // "targeted" warning already carries the count of other jurisdictions.
    escalate(tx, campaign_id, policy, now, false, fx)?;
    // Its members are warned now; every sensor gets its keys only past the publication bar.
    trust::refresh_publication(tx, campaign_id, policy, now, false, fx)?;
    Ok(())
}

fn extend(tx: &Transaction<'_>, campaign_id: i64, jurisdiction_id: i64, count: i64, policy: &CorrelationPolicy, now: Millis, fx: &mut IngestEffects) -> StoreResult<()> {
    tx.prepare_cached("UPDATE campaigns SET last_ms = ?1 WHERE id = ?2")?.execute(params![now, campaign_id])?;
    let updated = tx
        .prepare_cached(
            "UPDATE campaign_jurisdictions SET last_ms = ?1, sightings = sightings + ?2 WHERE campaign_id = ?3 AND jurisdiction_id = ?4",
        )?
        .execute(params![now, count, campaign_id, jurisdiction_id])?;
    if updated > 0 {
        // A member seen again may now count in good standing (a hold ended, a merge).
        trust::refresh_publication(tx, campaign_id, policy, now, false, fx)?;
        return Ok(());
    }
    tx.prepare_cached(
        "INSERT INTO campaign_jurisdictions (campaign_id, jurisdiction_id, first_ms, last_ms, sightings) VALUES (?1, ?2, ?3, ?3, ?4)",
    )?
    .execute(params![campaign_id, jurisdiction_id, now, count])?;
    log(tx, campaign_id, now, "jurisdiction_added", Some(jurisdiction_id), "")?;
    fx.notifications_enqueued += enqueue(tx, campaign_id, jurisdiction_id, "targeted", "targeted", now, policy.digest_interval_ms)?;
    // Everyone already in the campaign hears that it grew, as a digest.
    let others: Vec<i64> = {
        let mut st = tx.prepare_cached("SELECT jurisdiction_id FROM campaign_jurisdictions WHERE campaign_id = ?1 AND jurisdiction_id != ?2")?;
        let rows = st.query_map(params![campaign_id, jurisdiction_id], |r| r.get(0))?.collect::<Result<_, _>>()?;
        rows
    };
    if !escalate(tx, campaign_id, policy, now, true, fx)? {
        for j in others {
            fx.notifications_enqueued += enqueue(tx, campaign_id, j, "grew", "update", now, policy.digest_interval_ms)?;
        }
    }
    trust::refresh_publication(tx, campaign_id, policy, now, false, fx)?;
    Ok(())
}

/// Raises the campaign's escalation level when its size crosses a threshold; with `notify`,
/// everyone in the campaign hears it once per level.
fn escalate(tx: &Transaction<'_>, campaign_id: i64, policy: &CorrelationPolicy, now: Millis, notify: bool, fx: &mut IngestEffects) -> StoreResult<bool> {
    let (level, size): (i64, i64) = tx.query_row(
        "SELECT escalation, (SELECT count(*) FROM campaign_jurisdictions WHERE campaign_id = ?1) FROM campaigns WHERE id = ?1",
        [campaign_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let new_level = policy.escalate_at.iter().filter(|&&t| size >= t).count() as i64;
    if new_level <= level {
        return Ok(false);
    }
    tx.execute("UPDATE campaigns SET escalation = ?1 WHERE id = ?2", params![new_level, campaign_id])?;
    log(tx, campaign_id, now, "escalated", None, &format!("{size} jurisdictions, level {new_level}"))?;
    if !notify {
        return Ok(true);
    }
    let all: Vec<i64> = {
        let mut st = tx.prepare_cached("SELECT jurisdiction_id FROM campaign_jurisdictions WHERE campaign_id = ?1")?;
        let rows = st.query_map([campaign_id], |r| r.get(0))?.collect::<Result<_, _>>()?;
        rows
    };
    for j in all {
        let key = format!("escalated:{new_level}");
        fx.notifications_enqueued += enqueue(tx, campaign_id, j, "escalated", &key, now, policy.digest_interval_ms)?;
    }
    Ok(true)
}

/// Enqueues one notification per contact of a jurisdiction warned at once (priority 1; the
/// others hear only through escalation, [`crate::ack`]).
///
/// `event_key` "update" is a digest: while an earlier notification of this campaign to the same
/// contact is still pending, nothing is added (that one is rendered with the latest state when
/// sent); otherwise the new one waits until `digest_interval_ms` after the previous update.
fn enqueue(tx: &Transaction<'_>, campaign_id: i64, jurisdiction_id: i64, kind: &str, event_key: &str, now: Millis, digest_interval_ms: Millis) -> StoreResult<usize> {
    let contacts: Vec<i64> = {
        let mut st = tx.prepare_cached("SELECT id FROM contacts WHERE jurisdiction_id = ?1 AND priority = 1")?;
        let rows = st.query_map([jurisdiction_id], |r| r.get(0))?.collect::<Result<_, _>>()?;
        rows
    };
    let mut n = 0;
    let mut seen = HashSet::new();
    for contact in contacts {
        if !seen.insert(contact) {
            continue;
        }
        let (key, due) = if event_key == "update" {
            let pending: i64 = tx
                .prepare_cached("SELECT count(*) FROM notifications WHERE contact_id = ?1 AND campaign_id = ?2 AND status = 'pending'")?
                .query_row(params![contact, campaign_id], |r| r.get(0))?;
            if pending > 0 {
                continue;
            }
            let (count, last): (i64, Option<Millis>) = tx
                .prepare_cached(
                    "SELECT count(*), max(coalesce(delivered_ms, next_attempt_ms)) FROM notifications WHERE contact_id = ?1 AND campaign_id = ?2 AND event_key LIKE 'update:%'",
                )?
                .query_row(params![contact, campaign_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let due = last.map_or(now, |l| l.saturating_add(digest_interval_ms).max(now));
            (format!("update:{}", count + 1), due)
        } else {
            (event_key.to_string(), now)
        };
        n += tx
            .prepare_cached(
                "INSERT OR IGNORE INTO notifications (campaign_id, jurisdiction_id, contact_id, event_kind, event_key, status, next_attempt_ms, created_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7)",
            )?
            .execute(params![campaign_id, jurisdiction_id, contact, kind, key, due, now])?;
    }
    Ok(n + enqueue_rollup(tx, campaign_id, jurisdiction_id, kind, event_key, now, digest_interval_ms)?)
}

/// The state roll-up ([`crate::rollup`]): when a county or city is targeted, or a campaign it
/// is in escalates, the contacts of the state it belongs to hear it once per campaign event —
/// one message however many of its counties were hit in the same moment (the key is unique per
/// contact and campaign, and the message is rendered with the latest state when sent). A
/// county that joins after the state was told makes a digest (`state-update:N`), at most one
/// per `digest_interval_ms`, and none while an earlier roll-up to that contact is still pending.
fn enqueue_rollup(tx: &Transaction<'_>, campaign_id: i64, member: i64, kind: &str, event_key: &str, now: Millis, digest_interval_ms: Millis) -> StoreResult<usize> {
    let Some(plan) = crate::rollup::RollupPlan::for_member_event(kind, event_key) else { return Ok(0) };
    let parent: Option<i64> = tx
        .prepare_cached("SELECT parent_id FROM jurisdictions WHERE id = ?1")?
        .query_row([member], |r| r.get::<_, Option<i64>>(0))
        .optional()?
        .flatten();
    let Some(state) = parent.filter(|&p| p != member) else { return Ok(0) };
    let contacts: Vec<i64> = {
        let mut st = tx.prepare_cached("SELECT id FROM contacts WHERE jurisdiction_id = ?1 AND priority = 1")?;
        let rows = st.query_map([state], |r| r.get(0))?.collect::<Result<_, _>>()?;
        rows
    };
    let mut n = 0;
    for contact in contacts {
        let insert = |kind: &str, key: &str, due: Millis| -> StoreResult<usize> {
            Ok(tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO notifications (campaign_id, jurisdiction_id, contact_id, event_kind, event_key, status, next_attempt_ms, created_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7)",
                )?
                .execute(params![campaign_id, state, contact, kind, key, due, now])?)
        };
        let added = insert(plan.kind, &plan.key, now)?;
        n += added;
        if added > 0 || !plan.digest_after_first {
            continue;
        }
        // The state already heard of this campaign: a digest of the counties that joined since.
        let pending: i64 = tx
            .prepare_cached("SELECT count(*) FROM notifications WHERE contact_id = ?1 AND campaign_id = ?2 AND status = 'pending' AND event_key LIKE 'state%'")?
            .query_row(params![contact, campaign_id], |r| r.get(0))?;
        if pending > 0 {
            continue;
        }
        let (count, last): (i64, Option<Millis>) = tx
            .prepare_cached(
                "SELECT count(*), max(coalesce(delivered_ms, next_attempt_ms)) FROM notifications WHERE contact_id = ?1 AND campaign_id = ?2 AND event_key LIKE 'state%'",
            )?
            .query_row(params![contact, campaign_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let due = last.map_or(now, |l| l.saturating_add(digest_interval_ms).max(now));
        n += insert(crate::rollup::KIND_GREW, &format!("{}:{}", crate::rollup::DIGEST_KEY, count + 1), due)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{classify, parse_line, HomeNet};

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open_dir(dir.path()).unwrap();
        (dir, s)
    }

    fn jurisdiction(s: &SqliteStore, i: usize) -> i64 {
        let j = s
            .create_jurisdiction(&NewJurisdiction { name: format!("County {i}"), kind: JurisdictionKind::County, state: Some("OH".into()), home_net: None }, 0)
            .unwrap()
            .id;
        s.create_contact(j, &NewContact { channel: Channel::Email, target: format!("it{i}@example.gov"), secret: None }, 0).unwrap();
        j
    }

    fn batch(j: i64, seq: i64, remote: &str, event_type: &str) -> IngestBatch {
        let line = format!(
            r#"{{"event_type":"{event_type}","src_ip":"{remote}","dest_ip":"10.0.0.1","alert":{{"signature_id":1,"signature":"s"}}}}"#
        );
        let mut ev = parse_line(line.as_bytes(), 1).unwrap();
        classify(&mut ev, &HomeNet::default());
        IngestBatch { sensor_id: j, jurisdiction_id: j, seq, events: vec![ev], rejected: vec![], rejected_total: 0 }
    }

    fn count(s: &SqliteStore, kind: &str) -> usize {
        s.notifications(&NotificationFilter { limit: 10_000, ..Default::default() }).unwrap().iter().filter(|n| n.event_kind == kind).count()
    }

    #[test]
    fn a_sensors_health_is_its_newest_reload_record() {
        let (_d, s) = store();
        let j = jurisdiction(&s, 1);
        s.create_enrollment_token(j, "t", 0, 1_000_000).unwrap();
        let sensor = s.enroll_sensor("t", "adams-1", "c", 0).unwrap();
        let engine = |seq: i64, level: &str, message: &str| {
            let line = format!(
                r#"{{"timestamp":"2026-11-03T13:0{seq}:00.000000+0000","event_type":"engine","log_level":"{level}","engine":{{"module":"detect-reload","message":"{message}"}}}}"#
            );
            let ev = parse_line(line.as_bytes(), 1).unwrap();
            IngestBatch { sensor_id: sensor.id, jurisdiction_id: j, seq, events: vec![ev], rejected: vec![], rejected_total: 0 }
        };
        let health = || s.sensors(Some(j)).unwrap()[0].health.clone();
        assert_eq!(health(), None, "no reload yet");
        s.ingest(&[engine(1, "Error", "rules reload refused: the new rule set has 0 rules")], &CorrelationPolicy::default(), 10).unwrap();
        assert_eq!(health().as_deref(), Some("rules reload refused at 2026-11-03T13:01:00.000000+0000: the new rule set has 0 rules"));
        // Other records do not touch it; the next accepted reload clears it.
        s.ingest(&[batch(j, 2, "45.1.2.3", "alert")], &CorrelationPolicy::default(), 20).unwrap();
        assert!(health().is_some());
        s.ingest(&[engine(3, "Info", "rules reloaded: 20 of 20 rules loaded, 0 skipped")], &CorrelationPolicy::default(), 30).unwrap();
        assert_eq!(health(), None);
    }

    #[test]
    fn migrations_are_idempotent_and_versioned() {
        let (dir, s) = store();
        drop(s);
        let s = SqliteStore::open_dir(dir.path()).unwrap();
        let v: i64 = s.writer.lock().unwrap().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
    }

    #[test]
    fn sightings_and_campaigns_from_before_the_trust_model_migrate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ward-hub.sqlite3");
        {
            let conn = Connection::open(&path).unwrap();
            for (i, sql) in MIGRATIONS.iter().take(4).enumerate() {
                conn.execute_batch(sql).unwrap();
                conn.pragma_update(None, "user_version", (i + 1) as i64).unwrap();
            }
            conn.execute_batch(
                "INSERT INTO sightings VALUES ('ip:45.1.2.3', 1, 10, 20, 3); \
                 INSERT INTO campaigns (name, status, opened_ms, last_ms) VALUES ('ip 45.1.2.3', 'open', 10, 20);",
            )
            .unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.campaigns(true).unwrap()[0].published_ms, Some(10), "a campaign published before stays published");
        let row: (i64, i64) = s
            .writer
            .lock()
            .unwrap()
            .query_row("SELECT sensor_id, count FROM sightings WHERE actor_key = 'ip:45.1.2.3'", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!(row, (0, 3), "an old sighting keeps its count, with sensor 0 (unknown)");
    }

    #[test]
    fn growth_is_digested_and_escalation_notifies_everyone_once() {
        let (_d, s) = store();
        let policy = CorrelationPolicy { min_jurisdictions: 2, escalate_at: vec![5], digest_interval_ms: 60_000, ..Default::default() };
        let js: Vec<i64> = (0..8).map(|i| jurisdiction(&s, i)).collect();
        for (n, &j) in js.iter().enumerate() {
            s.ingest(&[batch(j, 1, "45.1.2.3", "alert")], &policy, 1000 + n as i64).unwrap();
        }
        assert_eq!(s.campaigns(true).unwrap().len(), 1);
        assert_eq!(count(&s, "targeted"), 8, "each jurisdiction targeted once");
        assert_eq!(count(&s, "escalated"), 5, "the five members at escalation");
        // While a notification to a contact is pending, growth adds nothing for it.
        let grew = count(&s, "grew");
        assert!(grew <= 2, "digests, not one per new jurisdiction: {grew}");
        // Repeated sightings by a member: no new notifications.
        let before = s.notifications(&NotificationFilter { limit: 10_000, ..Default::default() }).unwrap().len();
        s.ingest(&[batch(js[0], 2, "45.1.2.3", "alert")], &policy, 5000).unwrap();
        assert_eq!(s.notifications(&NotificationFilter { limit: 10_000, ..Default::default() }).unwrap().len(), before);
    }

    #[test]
    fn claims_are_leased_and_attempts_recorded() {
        let (_d, s) = store();
        let policy = CorrelationPolicy::default();
        let a = jurisdiction(&s, 0);
        let b = jurisdiction(&s, 1);
        s.ingest(&[batch(a, 1, "45.1.2.3", "alert"), batch(b, 1, "45.1.2.3", "alert")], &policy, 1000).unwrap();
        let first = s.claim_notifications(2000, 60_000, 100).unwrap();
        assert_eq!(first.len(), 2);
        assert!(s.claim_notifications(2001, 60_000, 100).unwrap().is_empty(), "leased rows are not claimed twice");
        let fail = AttemptOutcome { ok: false, detail: "connection refused".into(), duration_ms: 3, payload: None, retry_at: Some(3000) };
        s.record_attempt(first[0].id, &fail, 2002).unwrap();
        let again = s.claim_notifications(3000, 60_000, 100).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 1);
        let ok = AttemptOutcome { ok: true, detail: "smtp 250".into(), duration_ms: 5, payload: Some("{}".into()), retry_at: None };
        s.record_attempt(again[0].id, &ok, 3001).unwrap();
        let attempts = s.delivery_attempts(again[0].id).unwrap();
        assert_eq!(attempts.iter().map(|a| a.ok).collect::<Vec<_>>(), vec![false, true]);
        let giveup = AttemptOutcome { ok: false, detail: "x".into(), duration_ms: 1, payload: None, retry_at: None };
        s.record_attempt(first[1].id, &giveup, 3002).unwrap();
        let statuses: Vec<String> = s.notifications(&NotificationFilter::default()).unwrap().into_iter().map(|n| n.status).collect();
        assert!(statuses.contains(&"delivered".to_string()) && statuses.contains(&"failed".to_string()), "{statuses:?}");
    }

    #[test]
    fn window_limits_correlation() {
        let (_d, s) = store();
        let policy = CorrelationPolicy { window_ms: 1000, ..Default::default() };
        let a = jurisdiction(&s, 0);
        let b = jurisdiction(&s, 1);
        s.ingest(&[batch(a, 1, "45.1.2.3", "alert")], &policy, 1000).unwrap();
        s.ingest(&[batch(b, 1, "45.1.2.3", "alert")], &policy, 5000).unwrap();
        assert!(s.campaigns(false).unwrap().is_empty(), "sightings 4 s apart with a 1 s window");
        s.ingest(&[batch(a, 2, "45.1.2.3", "alert")], &policy, 5500).unwrap();
        assert_eq!(s.campaigns(false).unwrap().len(), 1);
    }

    #[test]
    fn a_closed_campaign_reopens_only_on_new_sightings_after_the_close() {
        let (_d, s) = store();
        let policy = CorrelationPolicy::default();
        let js: Vec<i64> = (0..3).map(|i| jurisdiction(&s, i)).collect();
        s.ingest(&[batch(js[0], 1, "45.1.2.3", "alert"), batch(js[1], 1, "45.1.2.3", "alert")], &policy, 1000).unwrap();
        let first = s.campaigns(true).unwrap()[0].id;
        s.close_campaign(first, 2000).unwrap();
        let targeted = count(&s, "targeted");
        // One jurisdiction sees the actor again: with the others' sightings from before the
        // close, that is not K jurisdictions after it, so no new campaign and no new warning.
        s.ingest(&[batch(js[0], 2, "45.1.2.3", "alert")], &policy, 3000).unwrap();
        assert!(s.campaigns(true).unwrap().is_empty(), "closing is not undone by the next packet");
        assert_eq!(count(&s, "targeted"), targeted);
        // A second jurisdiction after the close: a new campaign, with those two only.
        s.ingest(&[batch(js[2], 1, "45.1.2.3", "alert")], &policy, 4000).unwrap();
        let open = s.campaigns(true).unwrap();
        assert_eq!(open.len(), 1);
        assert_ne!(open[0].id, first);
        assert_eq!(open[0].jurisdictions, 2);
    }

    #[test]
    fn campaign_changes_are_all_or_nothing() {
        let (_d, s) = store();
        let policy = CorrelationPolicy::default();
        let (a, b) = (jurisdiction(&s, 0), jurisdiction(&s, 1));
        s.ingest(&[batch(a, 1, "45.1.2.3", "alert"), batch(b, 1, "45.1.2.3", "alert")], &policy, 1000).unwrap();
        let id = s.campaigns(true).unwrap()[0].id;
        let bad = CampaignChange { name: Some("Renamed".into()), merge_from: Some(id + 100), ..Default::default() };
        assert!(matches!(s.update_campaign(id, &bad, 2000), Err(StoreError::NotFound(_))));
        let c = s.campaign(id).unwrap().unwrap();
        assert_ne!(c.campaign.name, "Renamed", "the rename was rolled back with the failed merge");
        assert!(!c.timeline.iter().any(|t| t.kind == "renamed"));
        let good = CampaignChange { name: Some("Renamed".into()), annotation: Some("seen before".into()), close: true, ..Default::default() };
        s.update_campaign(id, &good, 3000).unwrap();
        let c = s.campaign(id).unwrap().unwrap().campaign;
        assert_eq!((c.name.as_str(), c.annotation.as_str(), c.status), ("Renamed", "seen before", CampaignStatus::Closed));
    }

    #[test]
    fn a_campaign_that_opens_large_sends_one_warning_per_contact() {
        let (_d, s) = store();
        let policy = CorrelationPolicy { min_jurisdictions: 6, escalate_at: vec![5], ..Default::default() };
        let js: Vec<i64> = (0..6).map(|i| jurisdiction(&s, i)).collect();
        for (n, &j) in js.iter().enumerate() {
            s.ingest(&[batch(j, 1, "45.1.2.3", "alert")], &policy, 1000 + n as i64).unwrap();
        }
        assert_eq!(s.campaigns(true).unwrap()[0].jurisdictions, 6);
        assert_eq!(count(&s, "targeted"), 6);
        assert_eq!(count(&s, "escalated"), 0, "the targeted warning already says how many others");
        let timeline = s.campaign(s.campaigns(true).unwrap()[0].id).unwrap().unwrap().timeline;
        assert!(timeline.iter().any(|t| t.kind == "escalated"), "the level is still recorded");
    }

    #[test]
    fn old_idempotency_keys_are_pruned_in_chunks() {
        let (_d, s) = store();
        let policy = CorrelationPolicy::default();
        let a = jurisdiction(&s, 0);
        let batches: Vec<IngestBatch> = (0..(PRUNE_CHUNK as i64 + 5)).map(|seq| batch(a, seq, "10.0.0.9", "dns")).collect();
        s.ingest(&batches, &policy, 1000).unwrap();
        s.ingest(&[batch(a, -1, "10.0.0.9", "dns")], &policy, 5000).unwrap();
        assert_eq!(s.prune_batches(2000).unwrap(), PRUNE_CHUNK + 5);
        // The recent key is kept: a retry of it is still a duplicate.
        let (receipts, _) = s.ingest(&[batch(a, -1, "10.0.0.9", "dns")], &policy, 6000).unwrap();
        assert!(receipts[0].duplicate);
        assert_eq!(s.prune_events(Some("dns"), &[], 2000).unwrap(), PRUNE_CHUNK + 5, "events too, chunk by chunk");
    }

    #[test]
    fn retention_prunes_per_event_type() {
        let (_d, s) = store();
        let policy = CorrelationPolicy::default();
        let a = jurisdiction(&s, 0);
        s.ingest(&[batch(a, 1, "10.0.0.9", "flow"), batch(a, 2, "10.0.0.9", "alert"), batch(a, 3, "10.0.0.9", "dns")], &policy, 1000).unwrap();
        assert_eq!(s.prune_events(Some("flow"), &[], 2000).unwrap(), 1);
        assert_eq!(s.prune_events(None, &["alert".to_string()], 2000).unwrap(), 1, "dns goes, alert is kept");
        let left: Vec<String> = s.events(None, None, 10).unwrap().into_iter().map(|e| e.event_type).collect();
        assert_eq!(left, vec!["alert"]);
    }
}
