//! The PostgreSQL store: several `ward hub` replicas over one database (issue #11, first part).
//!
//! Same trait, same behaviour as the SQLite store ([`super::sqlite`]); what differs is how
//! several writers are kept in agreement, since SQLite's single writer is gone:
//!
//! * **Correlation** ([`ingest`]): an ingest transaction first takes a transaction-scoped
//!   advisory lock per actor key it will touch (`pg_advisory_xact_lock`, ids sorted, so two
//!   transactions never wait on each other in a circle). Two replicas that receive the sightings
//!   completing a campaign at the same moment are thus serialised on the actor's keys: the second
//!   sees the first's sightings and extends its campaign instead of opening another. A group with
//!   more than [`ingest::MAX_ACTOR_LOCKS`] keys takes one exclusive correlation lock instead
//!   (every other ingest holds it shared), which bounds the use of PostgreSQL's lock table.
//!   Campaign rows are locked (`FOR UPDATE`) before they are extended, so an analyst closing or
//!   merging a campaign and an ingest extending it happen one after the other.
//! * **Idempotency**: the `(sensor, seq)` row is inserted first; a second replica given the
//!   same batch waits on that row and then answers with the stored reply.
//! * **The indicator log**: appends take one transaction lock ([`INDICATOR_LOG_LOCK`]), so the
//!   order of `seq` is the order of commits and a sensor polling `seq > cursor` never skips a
//!   row that committed late.
//! * **The outbox** ([`outbox`]): claims are `FOR UPDATE SKIP LOCKED` leases.
//! * Transactions that fail with a serialisation failure or a detected deadlock are run again
//!   (at most [`MAX_TX_ATTEMPTS`] times); every other error is returned.
//!
//! Connections: an r2d2 pool of synchronous `postgres` clients (the trait is synchronous; async
//! callers use `spawn_blocking`), each with a cache of prepared statements. Reads run in a
//! read-only repeatable-read transaction, so a multi-query read (a campaign's detail) is one
//! snapshot. Migrations are numbered `.sql` files in `migrations/postgres/`, tracked in
//! `schema_migrations` and applied under an advisory lock, so replicas starting together do not
//! race. All SQL is parameterised; lists travel as arrays (`= ANY($1)`), so no value is ever formatted into SQL.
//!
//! Replicas ([`listen`], [`leases`]; docs/hub.md "Replicas"): a transaction that appends to
//! the indicator log or enqueues notifications also runs `pg_notify` (delivered at commit), and
//! each replica's change listener wakes its long-polls, retro-hunt and delivery worker. Job
//! leases (`job_leases`) make retention and the retro-hunt run on one replica at a time; the
//! security budgets (failed logins, enrollments, name probes) live in `limit_records`, so N
//! replicas allow what one would.
//!
//! Contact records ([`retro`]) are partitioned by UTC day (migration 0410). Before a group
//! with records of a day not seen yet is stored, that day's partition is created in a short
//! transaction of its own, under an advisory lock (creating a partition locks the parent until
//! commit, so never inside the ingest transaction); the days known to exist are cached per
//! store. The retention pass creates [`retro::PARTITIONS_AHEAD`] days ahead and drops whole
//! expired days (`DROP TABLE`), deleting rows only in the day at the retention boundary.
//!
//! Not yet here: TLS to the database (connections are plain; use loopback or a Unix socket
//! until it is).

mod ack;
mod campaigns;
mod drill;
mod disinfo;
mod federation;
mod feeds;
mod ingest;
mod leases;
mod listen;
mod outbox;
mod registry;
mod retro;
mod scan;
mod taxii;
mod trust;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::postgres::error::SqlState;
use ::postgres::types::ToSql;
use ::postgres::{Client, IsolationLevel, NoTls, Row, Statement, Transaction};

use super::*;

/// The schema: (version, SQL), one file per version, numbered like their SQLite counterparts;
/// never edit a released file, add a new one.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../migrations/postgres/0001_init.sql")),
    (2, include_str!("../../../migrations/postgres/0002_retention_indexes.sql")),
    (100, include_str!("../../../migrations/postgres/0100_assets.sql")),
    (200, include_str!("../../../migrations/postgres/0200_contacts_retrohunt.sql")),
    (300, include_str!("../../../migrations/postgres/0300_trust.sql")),
    (400, include_str!("../../../migrations/postgres/0400_replicas.sql")),
    (410, include_str!("../../../migrations/postgres/0410_contacts_partitioned.sql")),
    (500, include_str!("../../../migrations/postgres/0500_taxii.sql")),
    (510, include_str!("../../../migrations/postgres/0510_feeds.sql")),
    (520, include_str!("../../../migrations/postgres/0520_rollup.sql")),
    (530, include_str!("../../../migrations/postgres/0530_federation.sql")),
    (540, include_str!("../../../migrations/postgres/0540_client_certs.sql")),
    (600, include_str!("../../../migrations/postgres/0600_ack.sql")),
    (610, include_str!("../../../migrations/postgres/0610_drill.sql")),
    (700, include_str!("../../../migrations/postgres/0700_disinfo.sql")),
    (710, include_str!("../../../migrations/postgres/0710_disinfo_publish.sql")),
    (730, include_str!("../../../migrations/postgres/0730_disinfo_escalation.sql")),
];

/// Advisory lock ids (the one-`bigint` key space; actor keys hash into the same space, a
/// collision only makes two transactions wait for each other).
/// Held while migrations are applied, so two replicas starting at once apply them once.
const MIGRATION_LOCK: i64 = 0x7761_7264_0000_0001;
/// Held by every transaction that appends to the indicator log until it commits, so `seq` order
/// is commit order (see the module note).
const INDICATOR_LOG_LOCK: i64 = 0x7761_7264_0000_0002;

/// Connections one store (one replica) opens at most: its blocking calls at once (the ingest
/// writer, the delivery worker, API reads). PostgreSQL's default `max_connections` of 100
/// leaves room for several replicas.
pub const MAX_CONNECTIONS: u32 = 16;
/// How long a call waits for a pooled connection (or a new one) before it fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Prepared statements cached per connection; the store's SQL is a fixed set of about a
/// hundred statements, so this bound is only a guard.
const MAX_CACHED_STATEMENTS: usize = 256;
/// Attempts of one transaction that fails with a serialisation failure or a deadlock (another
/// replica touched the same rows in another order); each retry starts from scratch.
const MAX_TX_ATTEMPTS: usize = 5;
/// Rows deleted per retention transaction: bounds how long the pruner holds its locks.
pub const PRUNE_CHUNK: i64 = 10_000;
/// Event rows fetched per round trip by `scan_events`: bounds what one scan holds in memory.
const SCAN_CHUNK: i32 = 256;

pub struct PgStore {
    /// Always `Some` until the store is dropped (see `Drop`).
    pool: Option<r2d2::Pool<Manager>>,
    /// The registered allow-list entries and the `trust_state.allow_version` they were read at
    /// (other replicas and the CLI change them too, so the version is read in each transaction).
    allow_cache: Mutex<Option<(i64, Arc<crate::trust::AllowList>)>>,
    /// Where the change listener connects (the pool's own settings).
    config: ::postgres::Config,
    /// This store's id in `pg_notify` payloads, so its listener skips its own notices.
    replica: Arc<str>,
    /// Days whose contact-record partition is known to exist (see the module note).
    contact_days: Mutex<std::collections::BTreeSet<i64>>,
}

/// A `postgres::Client` closes its connection by blocking on its own small runtime, which
/// panics on a thread that drives async tasks; the last store of a hub is often dropped on one
/// (a test, `ward demo`). So there the pool, with its idle connections, is dropped on a thread
/// of its own.
impl Drop for PgStore {
    fn drop(&mut self) {
        let Some(pool) = self.pool.take() else { return };
        if tokio::runtime::Handle::try_current().is_ok() {
            // Only when no thread can be started at all does the pool drop here after all.
            let _ = std::thread::Builder::new().name("ward-hub-pg-close".into()).spawn(move || drop(pool));
        }
    }
}

/// One pooled connection: the client and its prepared statements.
pub struct PgConn {
    client: Client,
    statements: HashMap<String, Statement>,
}

/// Opens [`PgConn`]s for r2d2.
pub struct Manager {
    config: ::postgres::Config,
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = ::postgres::Error;

    fn connect(&self) -> Result<PgConn, ::postgres::Error> {
        Ok(PgConn { client: self.config.connect(NoTls)?, statements: HashMap::new() })
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), ::postgres::Error> {
        conn.client.batch_execute("")
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.client.is_closed()
    }
}

/// An error inside a transaction: PostgreSQL's (kept whole, so retries can see its code) or
/// the store's own.
#[derive(Debug)]
pub(crate) enum TxError {
    Pg(::postgres::Error),
    Store(StoreError),
}

pub(crate) type TxResult<T> = Result<T, TxError>;

impl From<::postgres::Error> for TxError {
    fn from(e: ::postgres::Error) -> Self {
        TxError::Pg(e)
    }
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        TxError::Store(e)
    }
}

impl From<TxError> for StoreError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Store(e) => e,
            TxError::Pg(e) => pg_error(&e),
        }
    }
}

impl TxError {
    fn code(&self) -> Option<&SqlState> {
        match self {
            TxError::Pg(e) => e.code(),
            TxError::Store(_) => None,
        }
    }

    fn retryable(&self) -> bool {
        matches!(self.code(), Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED)
    }

    /// The name of the violated constraint, for errors that say which.
    fn constraint(&self) -> Option<&str> {
        match self {
            TxError::Pg(e) => e.as_db_error().and_then(|d| d.constraint()),
            TxError::Store(_) => None,
        }
    }
}

/// Integrity violations are conflicts (as SQLite's constraint errors are); bad data (a NUL in
/// text, a number out of range) is invalid input; everything else is a database error.
fn pg_error(e: &::postgres::Error) -> StoreError {
    let message = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string());
    match e.code().map(|c| c.code()) {
        Some(code) if code.starts_with("23") => StoreError::Conflict(message),
        Some(code) if code.starts_with("22") => StoreError::Invalid(message),
        _ => StoreError::Database(message),
    }
}

fn json_err(e: serde_json::Error) -> TxError {
    TxError::Store(StoreError::Database(format!("stored json unreadable: {e}")))
}

/// Text PostgreSQL can store: it refuses NUL characters, which JSON may carry as `\u0000` (in a
/// signature, say); they become U+FFFD so one odd event cannot fail its whole batch forever.
pub(crate) fn pg_text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('\0') {
        std::borrow::Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// One transaction on one pooled connection, with the connection's statement cache.
pub(crate) struct Db<'c> {
    tx: Transaction<'c>,
    statements: &'c mut HashMap<String, Statement>,
    /// Whether this transaction already holds [`INDICATOR_LOG_LOCK`] (and so has notified
    /// [`listen::INDICATORS_CHANNEL`]).
    indicator_log_locked: bool,
    /// Whether this transaction already notified [`listen::OUTBOX_CHANNEL`].
    outbox_notified: bool,
    /// The store's replica id (the notices' payload).
    replica: &'c str,
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl Db<'_> {
    fn statement(&mut self, sql: &str) -> Result<Statement, ::postgres::Error> {
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let st = self.tx.prepare(sql)?;
        if self.statements.len() < MAX_CACHED_STATEMENTS {
            self.statements.insert(sql.to_string(), st.clone());
        }
        Ok(st)
    }

    pub(crate) fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, ::postgres::Error> {
        let st = self.statement(sql)?;
        self.tx.query(&st, params)
    }

    pub(crate) fn query_opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>, ::postgres::Error> {
        let st = self.statement(sql)?;
        self.tx.query_opt(&st, params)
    }

    pub(crate) fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, ::postgres::Error> {
        let st = self.statement(sql)?;
        self.tx.query_one(&st, params)
    }

    pub(crate) fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, ::postgres::Error> {
        let st = self.statement(sql)?;
        self.tx.execute(&st, params)
    }

    /// The types of the columns `sql` returns (the statement is prepared, not run).
    pub(crate) fn column_types(&mut self, sql: &str) -> Result<Vec<::postgres::types::Type>, ::postgres::Error> {
        let st = self.statement(sql)?;
        Ok(st.columns().iter().map(|c| c.type_().clone()).collect())
    }

    /// Starts a `COPY … FROM STDIN` in this transaction (`ward hub migrate`).
    pub(crate) fn copy_in(&mut self, sql: &str) -> Result<::postgres::CopyInWriter<'_>, ::postgres::Error> {
        self.tx.copy_in(sql)
    }

    /// Takes [`INDICATOR_LOG_LOCK`] once per transaction, before the first append to the log,
    /// and notifies the other replicas' listeners (delivered at commit, dropped on rollback).
    pub(crate) fn lock_indicator_log(&mut self) -> Result<(), ::postgres::Error> {
        if !self.indicator_log_locked {
            let replica = self.replica;
            self.execute("SELECT pg_advisory_xact_lock($1), pg_notify($2, $3)", &[&INDICATOR_LOG_LOCK, &listen::INDICATORS_CHANNEL, &replica])?;
            self.indicator_log_locked = true;
        }
        Ok(())
    }

    /// Tells the other replicas' delivery workers, once per transaction, that notifications were
    /// enqueued (delivered at commit).
    pub(crate) fn notify_outbox(&mut self) -> Result<(), ::postgres::Error> {
        if !self.outbox_notified {
            let replica = self.replica;
            self.execute("SELECT pg_notify($1, $2)", &[&listen::OUTBOX_CHANNEL, &replica])?;
            self.outbox_notified = true;
        }
        Ok(())
    }
}

/// The host part of a PostgreSQL URL is loopback (or a Unix socket): plain connections are
/// acceptable there.
fn local_only(config: &::postgres::Config) -> bool {
    config.get_hosts().iter().all(|h| match h {
        ::postgres::config::Host::Tcp(name) => {
            name == "localhost" || name.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        ::postgres::config::Host::Unix(_) => true,
    })
}

impl PgStore {
    /// Connects to `postgres://USER@HOST[:PORT]/DB` (any libpq-style URL the `postgres` crate
    /// takes) and applies pending migrations. The URL is never logged (it may hold a password).
    pub fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(url, MAX_CONNECTIONS)
    }

    /// [`PgStore::connect`] with a pool of at most `max_connections`.
    pub fn connect_with(url: &str, max_connections: u32) -> StoreResult<Self> {
        let mut config: ::postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Invalid(format!("invalid postgresql url: {e} (expected postgres://USER@HOST/DB)")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("ward-hub");
        }
        if !local_only(&config) {
            tracing::warn!("postgresql connection is not encrypted (tls is not supported yet): keep the database on loopback or a private link");
        }
        let pool = r2d2::Pool::builder()
            .max_size(max_connections.max(1))
            .min_idle(Some(0))
            .connection_timeout(CONNECT_TIMEOUT)
            .build_unchecked(Manager { config: config.clone() });
        let replica: Arc<str> = format!("{}-{:016x}", std::process::id(), rand::random::<u64>()).into();
        let store = PgStore { pool: Some(pool), allow_cache: Mutex::new(None), config, replica, contact_days: Mutex::new(Default::default()) };
        store.migrate()?;
        Ok(store)
    }

    fn conn(&self) -> StoreResult<r2d2::PooledConnection<Manager>> {
        let pool = self.pool.as_ref().ok_or_else(|| StoreError::Database("the postgresql store is closed".into()))?;
        pool.get().map_err(|e| StoreError::Database(format!("no postgresql connection: {e}")))
    }

    fn migrate(&self) -> StoreResult<()> {
        let mut conn = self.conn()?;
        let result: TxResult<()> = (|| {
            let mut tx = conn.client.transaction()?;
            // The lock first: two replicas creating schema_migrations at once would collide.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
            tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version bigint PRIMARY KEY, applied_ms bigint NOT NULL)")?;
            let applied: Vec<i64> = tx
                .query("SELECT version FROM schema_migrations ORDER BY version", &[])?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            if let Some(unknown) = applied.iter().find(|v| !MIGRATIONS.iter().any(|(m, _)| m == *v)) {
                return Err(StoreError::Invalid(format!(
                    "database schema has migration {unknown}, which this ward does not know: upgrade ward"
                ))
                .into());
            }
            for (version, sql) in MIGRATIONS {
                if applied.contains(version) {
                    continue;
                }
                tx.batch_execute(sql)?;
                tx.execute("INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)", &[version, &crate::model::now_ms()])?;
                tracing::info!(version, "applied postgresql store migration");
            }
            tx.commit()?;
            Ok(())
        })();
        result.map_err(StoreError::from)
    }

    /// Runs `f` in a read-write transaction and commits; runs it again after a serialisation
    /// failure or a deadlock (see [`MAX_TX_ATTEMPTS`]).
    pub(super) fn write<T>(&self, mut f: impl FnMut(&mut Db<'_>) -> TxResult<T>) -> StoreResult<T> {
        let mut conn = self.conn()?;
        let conn = &mut *conn;
        let mut attempt = 1;
        loop {
            let result: TxResult<T> = (|| {
                let tx = conn.client.transaction()?;
                let mut db = Db { tx, statements: &mut conn.statements, indicator_log_locked: false, outbox_notified: false, replica: &self.replica };
                let out = f(&mut db)?;
                db.tx.commit()?;
                Ok(out)
            })();
            match result {
                Err(e) if e.retryable() && attempt < MAX_TX_ATTEMPTS => {
                    tracing::debug!(attempt, error = ?e, "transaction conflicted with another; running it again");
                    attempt += 1;
                }
                other => return other.map_err(StoreError::from),
            }
        }
    }

    /// Runs `f` in a read-only transaction (one snapshot for all its queries).
    fn read<T>(&self, f: impl FnOnce(&mut Db<'_>) -> TxResult<T>) -> StoreResult<T> {
        let mut conn = self.conn()?;
        let conn = &mut *conn;
        let result: TxResult<T> = (|| {
            let tx = conn.client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
            let mut db = Db { tx, statements: &mut conn.statements, indicator_log_locked: false, outbox_notified: false, replica: &self.replica };
            let out = f(&mut db)?;
            db.tx.commit()?;
            Ok(out)
        })();
        result.map_err(StoreError::from)
    }

    /// The registered allow-list entries, as of `db`'s transaction (re-read only when
    /// `allow_version` moved).
    fn stored_allow(&self, db: &mut Db<'_>) -> TxResult<Arc<crate::trust::AllowList>> {
        let version = trust::allow_version(db)?;
        if let Some((v, list)) = self.allow_cache.lock().map_err(|_| StoreError::Database("allow-list cache lock poisoned".into()))?.as_ref() {
            if *v == version {
                return Ok(list.clone());
            }
        }
        let list = Arc::new(trust::load_allow(db)?);
        *self.allow_cache.lock().map_err(|_| StoreError::Database("allow-list cache lock poisoned".into()))? = Some((version, list.clone()));
        Ok(list)
    }

    /// Creates the contact-record partitions of `days` not known to exist yet (one short
    /// transaction; nothing when all are cached).
    fn ensure_contact_days(&self, days: &std::collections::BTreeSet<i64>) -> StoreResult<()> {
        let missing: std::collections::BTreeSet<i64> = {
            let known = self.contact_days.lock().map_err(|_| StoreError::Database("partition cache lock poisoned".into()))?;
            days.difference(&known).copied().collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let created = self.write(|db| retro::create_partitions(db, &missing))?;
        if created > 0 {
            tracing::info!(created, "created contact record partitions");
        }
        self.contact_days.lock().map_err(|_| StoreError::Database("partition cache lock poisoned".into()))?.extend(missing);
        Ok(())
    }

    fn forget_contact_days(&self) {
        if let Ok(mut known) = self.contact_days.lock() {
            known.clear();
        }
    }

    /// The plan PostgreSQL chooses for the retro-hunt's network search of `ip/len` over the
    /// hours `from_hour..=to_hour` (`EXPLAIN` text, the query is not run): shows which
    /// partitions are read and through which index (tests and `bench-retrohunt`).
    pub fn explain_contact_search(&self, ip: std::net::IpAddr, len: u8, from_hour: i64, to_hour: i64) -> StoreResult<String> {
        self.read(|db| retro::explain_net_search(db, ip, len, from_hour, to_hour))
    }

    /// The days that have a contact-record partition, oldest first (days since the epoch).
    pub fn contact_partition_days(&self) -> StoreResult<Vec<i64>> {
        self.read(retro::partition_days)
    }

    /// The versions recorded in `schema_migrations` (for tests and `ward hub` diagnostics).
    pub fn applied_migrations(&self) -> StoreResult<Vec<i64>> {
        self.read(|db| Ok(db.query("SELECT version FROM schema_migrations ORDER BY version", &[])?.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?))
    }

    /// The schema versions this build knows, in order (what a new database ends up with).
    pub fn known_migrations() -> Vec<i64> {
        MIGRATIONS.iter().map(|&(v, _)| v).collect()
    }
}



/// Creates the contact-record partitions of `days` that are missing, in `db`'s transaction
/// (`ward hub migrate`, which fills a new database in one transaction).
pub(crate) fn create_contact_partitions(db: &mut Db<'_>, days: &std::collections::BTreeSet<i64>) -> TxResult<usize> {
    retro::create_partitions(db, days)
}

/// A contact from seven columns starting at `at` (id, jurisdiction_id, channel, target, secret,
/// created_ms, priority).
pub(crate) fn row_contact(r: &Row, at: usize) -> Result<Contact, ::postgres::Error> {
    let ch: String = r.try_get(at + 2)?;
    Ok(Contact {
        id: r.try_get(at)?,
        jurisdiction_id: r.try_get(at + 1)?,
        channel: Channel::parse(&ch).unwrap_or(Channel::Webhook),
        target: r.try_get(at + 3)?,
        secret: r.try_get(at + 4)?,
        created_ms: r.try_get(at + 5)?,
        priority: r.try_get(at + 6)?,
    })
}

fn collect<T>(rows: Vec<Row>, f: impl Fn(&Row) -> Result<T, ::postgres::Error>) -> Result<Vec<T>, ::postgres::Error> {
    rows.iter().map(f).collect()
}


fn jurisdiction_exists(db: &mut Db<'_>, id: i64) -> TxResult<()> {
    match db.query_opt("SELECT id FROM jurisdictions WHERE id = $1", &[&id])? {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound(format!("jurisdiction {id}")).into()),
    }
}

impl Store for PgStore {
    fn create_jurisdiction(&self, new: &NewJurisdiction, now: Millis) -> StoreResult<Jurisdiction> {
        registry::create_jurisdiction(self, new, now)
    }

    fn jurisdictions(&self) -> StoreResult<Vec<Jurisdiction>> {
        registry::jurisdictions(self)
    }

    fn jurisdiction(&self, id: i64) -> StoreResult<Option<Jurisdiction>> {
        registry::jurisdiction(self, id)
    }

    fn jurisdiction_by_name(&self, name: &str) -> StoreResult<Option<Jurisdiction>> {
        registry::jurisdiction_by_name(self, name)
    }

    fn jurisdiction_children(&self, parent_id: i64) -> StoreResult<Vec<Jurisdiction>> {
        registry::jurisdiction_children(self, parent_id)
    }

    fn create_enrollment_token(&self, jurisdiction_id: i64, token_hash: &str, now: Millis, expires_ms: Millis) -> StoreResult<()> {
        registry::create_enrollment_token(self, jurisdiction_id, token_hash, now, expires_ms)
    }

    fn enroll_sensor(&self, token_hash: &str, name: &str, credential_hash: &str, now: Millis) -> StoreResult<Sensor> {
        registry::enroll_sensor(self, token_hash, name, credential_hash, now)
    }

    fn sensor_by_credential(&self, credential_hash: &str) -> StoreResult<Option<Sensor>> {
        registry::sensor_by_credential(self, credential_hash)
    }

    fn sensors(&self, jurisdiction_id: Option<i64>) -> StoreResult<Vec<Sensor>> {
        registry::sensors(self, jurisdiction_id)
    }

    fn create_contact(&self, jurisdiction_id: i64, new: &NewContact, now: Millis) -> StoreResult<Contact> {
        registry::create_contact(self, jurisdiction_id, new, now)
    }

    fn contacts(&self, jurisdiction_id: Option<i64>) -> StoreResult<Vec<Contact>> {
        registry::contacts(self, jurisdiction_id)
    }

    fn create_user(&self, username: &str, password_hash: &str, role: Role, jurisdiction_id: Option<i64>, now: Millis) -> StoreResult<User> {
        registry::create_user(self, username, password_hash, role, jurisdiction_id, now)
    }

    fn user_credentials(&self, username: &str) -> StoreResult<Option<(User, String)>> {
        registry::user_credentials(self, username)
    }

    fn users(&self, jurisdiction_id: Option<i64>) -> StoreResult<Vec<User>> {
        registry::users(self, jurisdiction_id)
    }

    fn create_session(&self, token_hash: &str, user_id: i64, csrf: &str, now: Millis, expires_ms: Millis) -> StoreResult<()> {
        registry::create_session(self, token_hash, user_id, csrf, now, expires_ms)
    }

    fn session(&self, token_hash: &str, now: Millis) -> StoreResult<Option<(User, String)>> {
        registry::session(self, token_hash, now)
    }

    fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        registry::delete_session(self, token_hash)
    }

    fn ingest(&self, batches: &[IngestBatch], policy: &CorrelationPolicy, now: Millis) -> StoreResult<(Vec<IngestReceipt>, IngestEffects)> {
        let days: std::collections::BTreeSet<i64> =
            batches.iter().flat_map(|b| b.events.iter()).filter_map(|e| e.contact.as_ref()).map(|c| retro::day_of_ms(c.first_ms)).collect();
        self.ensure_contact_days(&days)?;
        let run = || {
            self.write(|db| {
                let stored = self.stored_allow(db)?;
                ingest::ingest(db, batches, policy, crate::trust::AllowView(&policy.trust.allow, &stored), now)
            })
        };
        match run() {
            // Another replica's retention pass dropped a day this store still had cached (records
            // older than retention arrived late): make it again and store the group once more.
            Err(StoreError::Conflict(m)) if !days.is_empty() && m.starts_with("no partition of relation") => {
                self.forget_contact_days();
                self.ensure_contact_days(&days)?;
                run()
            }
            other => other,
        }
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
        // Rows come from a portal in chunks, so a caller filling a bounded page holds one chunk
        // at a time, never the whole result.
        self.read(|db| {
            let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
            let event_type = filter.event_type.as_deref().map(pg_text);
            let st = db.statement(
                "SELECT id, jurisdiction_id, sensor_id, event_type, ts_ms, remote_ip, signature, body FROM events \
                 WHERE ($1::bigint IS NULL OR jurisdiction_id = $1 OR ($5 AND jurisdiction_id IN (SELECT id FROM jurisdictions WHERE parent_id = $1))) \
                 AND ($2::text IS NULL OR event_type = $2) AND ($3::bigint IS NULL OR id < $3) \
                 ORDER BY id DESC LIMIT $4",
            )?;
            let portal = db.tx.bind(&st, &[&filter.jurisdiction_id, &event_type, &filter.before, &limit, &filter.include_children])?;
            loop {
                let rows = db.tx.query_portal(&portal, SCAN_CHUNK)?;
                let done = (rows.len() as i32) < SCAN_CHUNK;
                for r in rows {
                    let body: String = r.try_get(7)?;
                    // Lines are vetted at ingest, so every stored body parses.
                    let body: serde_json::Value = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
                    let event = StoredEvent {
                        id: r.try_get(0)?,
                        jurisdiction_id: r.try_get(1)?,
                        sensor_id: r.try_get(2)?,
                        event_type: r.try_get(3)?,
                        ts_ms: r.try_get(4)?,
                        remote_ip: r.try_get(5)?,
                        signature: r.try_get(6)?,
                        truncated: body.get("ward_truncated").is_some(),
                        body,
                    };
                    if !each(event) {
                        return Ok(());
                    }
                }
                if done {
                    return Ok(());
                }
            }
        })
    }

    fn alert_counts(&self, since: Millis) -> StoreResult<Vec<(i64, Millis, i64)>> {
        self.read(|db| {
            let rows = db.query(
                "SELECT jurisdiction_id, (received_ms / 3600000) * 3600000 AS hour, count(*) FROM events \
                 WHERE event_type = 'alert' AND received_ms >= $1 GROUP BY jurisdiction_id, hour ORDER BY hour",
                &[&since],
            )?;
            Ok(collect(rows, |r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))?)
        })
    }

    fn prune_events(&self, event_type: Option<&str>, except: &[String], before: Millis) -> StoreResult<usize> {
        let except: Vec<String> = except.iter().map(|s| pg_text(s).into_owned()).collect();
        let mut total = 0;
        loop {
            let removed = self.write(|db| {
                Ok(match event_type {
                    Some(t) => db.execute(
                        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE event_type = $1 AND received_ms < $2 LIMIT $3)",
                        &[&pg_text(t), &before, &PRUNE_CHUNK],
                    )?,
                    None => db.execute(
                        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE received_ms < $1 AND event_type <> ALL($2) LIMIT $3)",
                        &[&before, &except, &PRUNE_CHUNK],
                    )?,
                })
            })?;
            total += removed as usize;
            if (removed as i64) < PRUNE_CHUNK {
                return Ok(total);
            }
        }
    }

    fn prune_batches(&self, before: Millis) -> StoreResult<usize> {
        let mut total = 0;
        loop {
            let removed = self.write(|db| {
                Ok(db.execute(
                    "DELETE FROM batches WHERE (sensor_id, seq) IN (SELECT sensor_id, seq FROM batches WHERE received_ms < $1 LIMIT $2)",
                    &[&before, &PRUNE_CHUNK],
                )?)
            })?;
            total += removed as usize;
            if (removed as i64) < PRUNE_CHUNK {
                return Ok(total);
            }
        }
    }

    fn campaigns(&self, only_open: bool) -> StoreResult<Vec<Campaign>> {
        self.read(|db| campaigns::list(db, only_open))
    }

    fn campaign(&self, id: i64) -> StoreResult<Option<CampaignDetail>> {
        self.read(|db| campaigns::detail(db, id))
    }

    fn jurisdiction_campaigns(&self, jurisdiction_id: i64) -> StoreResult<Vec<JurisdictionCampaignView>> {
        self.read(|db| campaigns::jurisdiction_campaigns(db, jurisdiction_id))
    }

    fn jurisdiction_campaign(&self, campaign_id: i64, jurisdiction_id: i64) -> StoreResult<Option<JurisdictionCampaignView>> {
        self.read(|db| campaigns::jurisdiction_view(db, campaign_id, jurisdiction_id))
    }

    fn rename_campaign(&self, id: i64, name: &str, now: Millis) -> StoreResult<()> {
        self.write(|db| campaigns::rename(db, id, name, now))
    }

    fn annotate_campaign(&self, id: i64, note: &str, now: Millis) -> StoreResult<()> {
        self.write(|db| campaigns::annotate(db, id, note, now))
    }

    fn close_campaign(&self, id: i64, now: Millis) -> StoreResult<()> {
        self.write(|db| campaigns::close(db, id, now))
    }

    fn merge_campaigns(&self, into: i64, from: i64, now: Millis) -> StoreResult<()> {
        self.write(|db| campaigns::merge(db, into, from, now))
    }

    fn update_campaign(&self, id: i64, change: &CampaignChange, now: Millis) -> StoreResult<()> {
        self.write(|db| {
            if let Some(name) = &change.name {
                campaigns::rename(db, id, name, now)?;
            }
            if let Some(note) = &change.annotation {
                campaigns::annotate(db, id, note, now)?;
            }
            if let Some(from) = change.merge_from {
                campaigns::merge(db, id, from, now)?;
            }
            if change.confirm {
                trust::confirm(db, id, now)?;
            }
            if change.close {
                campaigns::close(db, id, now)?;
            }
            Ok(())
        })
    }

    fn indicators_since(&self, cursor: i64, limit: usize) -> StoreResult<Vec<Indicator>> {
        self.read(|db| {
            let rows = db.query(
                "SELECT seq, action, kind, value, campaign_id, ts_ms FROM indicators WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&cursor, &(limit as i64)],
            )?;
            Ok(collect(rows, |r| {
                Ok(Indicator {
                    seq: r.try_get(0)?,
                    action: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    value: r.try_get(3)?,
                    campaign_id: r.try_get(4)?,
                    ts_ms: r.try_get(5)?,
                })
            })?)
        })
    }

    // ---- trust: the SQL lives in trust.rs ----
    fn sensor(&self, id: i64) -> StoreResult<Option<Sensor>> {
        registry::sensor(self, id)
    }
    fn sensor_contributions(&self, sensor_id: i64, now: Millis) -> StoreResult<Option<crate::trust::SensorContributions>> {
        self.read(|db| {
            let Some(row) = db.query_opt(registry::SENSOR_BY_ID, &[&sensor_id])? else { return Ok(None) };
            let sensor = registry::row_sensor(&row)?;
            trust::contributions(db, sensor, now).map(Some)
        })
    }
    fn revoke_sensor(&self, sensor_id: i64, policy: &CorrelationPolicy, now: Millis) -> StoreResult<crate::trust::RevokeOutcome> {
        self.write(|db| trust::revoke(db, sensor_id, policy, now))
    }
    fn release_sensor(&self, sensor_id: i64, policy: &CorrelationPolicy, now: Millis) -> StoreResult<()> {
        self.write(|db| trust::release(db, sensor_id, policy, now)).map(|_| ())
    }
    fn trust_anomalies(&self, sensor_id: Option<i64>, limit: usize) -> StoreResult<Vec<crate::trust::TrustAnomaly>> {
        self.read(|db| trust::anomalies(db, sensor_id, limit))
    }
    fn allow_entries(&self, jurisdiction_id: Option<i64>) -> StoreResult<Vec<crate::trust::AllowEntry>> {
        self.read(|db| trust::entries(db, jurisdiction_id))
    }
    fn add_allow_entry(&self, new: &crate::trust::NewAllowEntry, now: Millis) -> StoreResult<crate::trust::AllowOutcome> {
        self.write(|db| trust::add_entry(db, new, now))
    }
    fn remove_allow_entry(&self, id: i64, _now: Millis) -> StoreResult<crate::trust::AllowEntry> {
        self.write(|db| trust::remove_entry(db, id))
    }

    fn claim_notifications(&self, now: Millis, lease_ms: Millis, limit: usize) -> StoreResult<Vec<NotificationJob>> {
        self.write(|db| outbox::claim(db, now, lease_ms, limit))
    }

    fn record_attempts(&self, attempts: &[(i64, AttemptOutcome, Millis)]) -> StoreResult<()> {
        if attempts.is_empty() {
            return Ok(());
        }
        self.write(|db| outbox::record_attempts(db, attempts))
    }

    fn notifications(&self, filter: &NotificationFilter) -> StoreResult<Vec<NotificationRecord>> {
        self.read(|db| outbox::notifications(db, filter))
    }

    fn notification(&self, id: i64) -> StoreResult<Option<NotificationRecord>> {
        self.read(|db| outbox::notification(db, id))
    }

    fn delivery_attempts(&self, notification_id: i64) -> StoreResult<Vec<DeliveryAttempt>> {
        self.read(|db| outbox::delivery_attempts(db, notification_id))
    }

    fn next_due(&self) -> StoreResult<Option<Millis>> {
        self.read(|db| Ok(db.query_one("SELECT min(next_attempt_ms) FROM notifications WHERE status = 'pending'", &[])?.try_get(0)?))
    }

    // replicas (leases.rs, listen.rs)
    fn claim_job(&self, name: &str, holder: &str, now: Millis, lease_ms: Millis) -> StoreResult<bool> {
        self.write(|db| leases::claim_job(db, name, holder, now, lease_ms))
    }
    fn release_job(&self, name: &str, holder: &str) -> StoreResult<()> {
        self.write(|db| leases::release_job(db, name, holder))
    }
    fn shares_limits(&self) -> bool {
        true
    }
    fn update_limits(&self, keys: &[String], now: Millis, update: &mut dyn FnMut(&mut [Option<LimitRecord>]) -> bool) -> StoreResult<()> {
        self.write(|db| leases::update_limits(db, keys, now, &mut *update))
    }
    fn prune_limits(&self, now: Millis) -> StoreResult<usize> {
        let mut total = 0;
        loop {
            let removed = self.write(|db| leases::prune_limits_chunk(db, now))?;
            total += removed;
            if removed < leases::PRUNE_LIMITS_CHUNK_ROWS {
                return Ok(total);
            }
        }
    }
    fn watch_changes(&self, on_change: ChangeCallback) -> StoreResult<Option<ChangeWatch>> {
        listen::spawn(self.config.clone(), self.replica.clone(), on_change).map(Some)
    }

    // ---- scanner (ward scan --hub): the SQL lives in scan.rs ----
    fn add_scan_asset(&self, jurisdiction_id: i64, kind: crate::assets::AssetKind, value: &str, now: Millis) -> StoreResult<crate::assets::ScanAsset> {
        self.write(|db| scan::add_asset(db, jurisdiction_id, kind, value, now))
    }
    fn scan_assets(&self, jurisdiction_id: i64) -> StoreResult<Vec<crate::assets::ScanAsset>> {
        self.read(|db| scan::assets(db, jurisdiction_id))
    }
    fn add_scan_blackout(&self, jurisdiction_id: i64, new: &crate::assets::NewScanBlackout, now: Millis) -> StoreResult<crate::assets::ScanBlackout> {
        self.write(|db| scan::add_blackout(db, jurisdiction_id, new, now))
    }
    fn scan_blackouts(&self, jurisdiction_id: i64) -> StoreResult<Vec<crate::assets::ScanBlackout>> {
        self.read(|db| scan::blackouts(db, jurisdiction_id))
    }
    fn store_scan_result(&self, jurisdiction_id: i64, finished_ms: Millis, next_due_ms: Millis, body: &str, now: Millis) -> StoreResult<i64> {
        self.write(|db| scan::store_result(db, jurisdiction_id, finished_ms, next_due_ms, body, now))
    }
    fn scan_results(&self, jurisdiction_id: i64) -> StoreResult<Vec<String>> {
        self.read(|db| scan::results(db, jurisdiction_id))
    }
    fn put_scan_report(&self, jurisdiction_id: i64, html: &str, pdf: &[u8], now: Millis) -> StoreResult<()> {
        self.write(|db| scan::put_report(db, jurisdiction_id, html, pdf, now))
    }
    fn scan_report(&self, jurisdiction_id: i64) -> StoreResult<Option<(Millis, String, Vec<u8>)>> {
        self.read(|db| scan::report(db, jurisdiction_id))
    }
    fn claim_scan_job(&self, candidates: &[i64], worker: &str, now: Millis, lease_ms: Millis) -> StoreResult<Option<i64>> {
        self.write(|db| scan::claim(db, candidates, worker, now, lease_ms))
    }

    // ---- retro-hunt: the SQL lives in retro.rs ----
    fn add_analyst_indicator(&self, new: &crate::retro::NewIndicator, user_id: i64, now: Millis) -> StoreResult<crate::retro::AnalystIndicator> {
        self.write(|db| {
            // trust: never an indicator for a registered never-block entry (the configured ones
            // are checked by the handler)
            let stored = self.stored_allow(db)?;
            crate::trust::check_indicator(&new.kind, &new.value, &stored).map_err(StoreError::Invalid)?;
            retro::add_indicator(db, new, user_id, now)
        })
    }
    fn expire_analyst_indicators(&self, now: Millis) -> StoreResult<usize> {
        self.write(|db| retro::expire_indicators(db, now))
    }
    fn retro_hunt_next(&self, window: &crate::retro::HuntWindow, now: Millis) -> StoreResult<Option<crate::retro::HuntOutcome>> {
        let Some(plan) = self.read(|db| retro::plan_next(db, window))? else { return Ok(None) };
        self.write(|db| retro::commit_plan(db, &plan, now)).map(Some)
    }
    fn retro_late_next(&self, window: &crate::retro::HuntWindow, now: Millis) -> StoreResult<Option<crate::retro::HuntOutcome>> {
        let Some(late) = self.read(|db| retro::plan_late(db, window))? else { return Ok(None) };
        self.write(|db| retro::commit_late(db, &late, now)).map(Some)
    }
    fn retro_hits(&self, jurisdiction_id: Option<i64>, limit: usize) -> StoreResult<Vec<crate::retro::RetroHit>> {
        self.read(|db| retro::hits(db, jurisdiction_id, limit))
    }
    fn retro_hit_for_notification(&self, notification_id: i64) -> StoreResult<Option<crate::retro::RetroHit>> {
        self.read(|db| retro::hit_for_notification(db, notification_id))
    }
    fn prune_contacts(&self, before_ms: Millis) -> StoreResult<usize> {
        // Days ahead first, so ingest seldom creates a partition itself.
        let today = retro::day_of_ms(crate::model::now_ms());
        self.ensure_contact_days(&(today..=today + retro::PARTITIONS_AHEAD).collect())?;
        let before_hour = before_ms.div_euclid(3_600_000);
        let mut total = 0;
        let mut dropped_days = Vec::new();
        for day in self.read(retro::partition_days)? {
            match self.write(|db| retro::drop_partition(db, day, before_hour))? {
                Some(rows) => {
                    total += rows;
                    dropped_days.push(day);
                }
                None => break,
            }
        }
        if let Ok(mut known) = self.contact_days.lock() {
            for day in &dropped_days {
                known.remove(day);
            }
        }
        if !dropped_days.is_empty() {
            tracing::info!(days = dropped_days.len(), rows = total, "dropped expired contact record partitions");
        }
        loop {
            let removed = self.write(|db| retro::delete_expired_chunk(db, before_hour, PRUNE_CHUNK))?;
            total += removed;
            if (removed as i64) < PRUNE_CHUNK {
                return Ok(total);
            }
        }
    }

    // ---- taxii (the SQL lives in taxii.rs) ----
    fn taxii_add(&self, collection: &str, added_by: &str, objects: &[crate::share::objects::NewObject], now_us: i64) -> StoreResult<Vec<Option<i64>>> {
        self.write(|db| taxii::add(db, collection, added_by, objects, now_us))
    }
    fn taxii_objects(&self, query: &crate::share::objects::ObjectQuery) -> StoreResult<Vec<crate::share::objects::StoredObject>> {
        self.read(|db| taxii::query(db, query))
    }
    fn taxii_latest(&self, collection: &str, ids: &[String]) -> StoreResult<Vec<(String, i64, String)>> {
        self.read(|db| taxii::latest(db, collection, ids))
    }
    fn taxii_status(&self, id: &str) -> StoreResult<Option<(String, String)>> {
        self.read(|db| taxii::status(db, id))
    }
    fn create_api_key(&self, new: &crate::share::objects::NewApiKey, now: Millis) -> StoreResult<crate::share::objects::ApiKey> {
        self.write(|db| taxii::create_key(db, new, now))
    }
    fn api_keys(&self) -> StoreResult<Vec<crate::share::objects::ApiKey>> {
        self.read(taxii::keys)
    }
    fn api_key_by_secret(&self, secret_hash: &str) -> StoreResult<Option<crate::share::objects::ApiKey>> {
        self.read(|db| taxii::key_by_secret(db, secret_hash))
    }
    fn revoke_api_key(&self, id: i64, now: Millis) -> StoreResult<crate::share::objects::ApiKey> {
        self.write(|db| taxii::revoke_key(db, id, now))
    }
    // ---- end taxii ----
    // ---- feeds (crate::share::feeds; SQL in postgres/feeds.rs) ----
    fn add_feed(&self, new: &crate::share::feeds::NewFeed, now: Millis) -> StoreResult<crate::share::feeds::Feed> {
        self.write(|db| feeds::add_feed(db, new, now))
    }
    fn feeds(&self) -> StoreResult<Vec<crate::share::feeds::Feed>> {
        self.read(feeds::feeds)
    }
    fn feed(&self, id: i64) -> StoreResult<Option<crate::share::feeds::Feed>> {
        self.read(|db| feeds::feed(db, id))
    }
    fn feed_credential(&self, id: i64) -> StoreResult<Option<String>> {
        self.read(|db| feeds::credential(db, id))
    }
    fn remove_feed(&self, id: i64, now: Millis) -> StoreResult<crate::share::feeds::FeedApplied> {
        self.write(|db| feeds::remove_feed(db, id, now))
    }
    fn apply_feed_update(&self, feed_id: i64, update: &crate::share::feeds::FeedUpdate, allow: &crate::trust::AllowList, now: Millis) -> StoreResult<crate::share::feeds::FeedApplied> {
        self.write(|db| {
            let stored = self.stored_allow(db)?;
            feeds::apply(db, feed_id, update, crate::trust::AllowView(allow, &stored), now)
        })
    }
    fn record_feed_poll(&self, feed_id: i64, record: &crate::share::feeds::PollRecord, now: Millis) -> StoreResult<()> {
        self.write(|db| feeds::record_poll(db, feed_id, record, now))
    }
    fn expire_feed_indicators(&self, now: Millis) -> StoreResult<crate::share::feeds::FeedApplied> {
        self.write(|db| feeds::expire(db, now))
    }
    fn feed_indicators(&self, feed_id: i64, limit: usize) -> StoreResult<Vec<crate::share::feeds::FeedIndicator>> {
        self.read(|db| feeds::indicators(db, feed_id, limit))
    }
    // ---- end feeds ----
    // ---- federation (crate::share::federation; SQL in postgres/federation.rs) ----
    fn federation_outbound(&self, query: &crate::share::federation::OutboundQuery) -> StoreResult<Vec<crate::share::objects::StoredObject>> {
        self.read(|db| federation::outbound(db, query))
    }
    fn federation_peer(&self, name: &str) -> StoreResult<Option<crate::share::federation::PeerState>> {
        self.read(|db| federation::peer(db, name))
    }
    fn federation_peers(&self) -> StoreResult<Vec<crate::share::federation::PeerState>> {
        self.read(federation::peers)
    }
    fn record_federation_push(&self, name: &str, record: &crate::share::federation::PushRecord, now: Millis) -> StoreResult<()> {
        self.write(|db| federation::record_push(db, name, record, now))
    }
    fn record_federation_received(&self, name: &str, objects: usize, now: Millis) -> StoreResult<()> {
        self.write(|db| federation::record_received(db, name, objects, now))
    }
    fn set_feed_rules(&self, feed_id: i64, rules: &crate::share::feeds::NewFeed) -> StoreResult<()> {
        self.write(|db| federation::set_feed_rules(db, feed_id, rules))
    }
    fn analyst_add_seqs(&self) -> StoreResult<Vec<i64>> {
        self.read(federation::analyst_add_seqs)
    }
    // ---- end federation ----
    // ---- ack (crate::ack; the SQL in postgres/ack.rs) ----
    fn set_contact_priority(&self, contact_id: i64, priority: i64) -> StoreResult<Contact> {
        self.write(|db| {
            ack::set_priority(db, contact_id, priority)?;
            Ok(row_contact(&db.query_one("SELECT id, jurisdiction_id, channel, target, secret, created_ms, priority FROM contacts WHERE id = $1", &[&contact_id])?, 0)?)
        })
    }
    fn ack_notification(&self, notification_id: i64, new: &crate::ack::NewAck, now: Millis) -> StoreResult<Option<crate::ack::Ack>> {
        self.write(|db| ack::ack(db, notification_id, new, now))
    }
    fn notification_ack(&self, notification_id: i64) -> StoreResult<Option<crate::ack::Ack>> {
        self.read(|db| ack::notification_ack(db, notification_id))
    }
    fn escalations(&self, campaign_id: i64, jurisdiction_id: i64) -> StoreResult<Vec<crate::ack::EscalationStep>> {
        self.read(|db| ack::escalations(db, campaign_id, jurisdiction_id))
    }
    fn escalation_of_notification(&self, notification_id: i64) -> StoreResult<Option<crate::ack::EscalationStep>> {
        self.read(|db| ack::escalation_of_notification(db, notification_id))
    }
    fn escalate_due(&self, policy: &crate::ack::EscalationPolicy, now: Millis) -> StoreResult<Vec<crate::ack::EscalationStep>> {
        self.write(|db| ack::escalate_due(db, policy, now))
    }
    fn warning_acks(&self, jurisdictions: Option<&[i64]>, since: Millis, limit: usize) -> StoreResult<Vec<crate::ack::WarningAck>> {
        self.read(|db| ack::warning_acks(db, jurisdictions, since, limit))
    }
    fn hub_key(&self, name: &str, now: Millis) -> StoreResult<Vec<u8>> {
        self.write(|db| ack::hub_key(db, name, now))
    }
    // ---- end ack ----
    // ---- mtls (crate::tls; SQL in postgres/taxii.rs) ----
    fn bind_api_key_cert(&self, id: i64, sha256: Option<&str>) -> StoreResult<crate::share::objects::ApiKey> {
        self.write(|db| taxii::bind_key_cert(db, id, sha256))
    }
    fn api_key_by_cert(&self, sha256: &str) -> StoreResult<Option<crate::share::objects::ApiKey>> {
        self.read(|db| taxii::key_by_cert(db, sha256))
    }
    // ---- end mtls ----
    // ---- taxii post (SQL in postgres/taxii.rs) ----
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
        self.write(|db| {
            let stored = taxii::add(db, collection, added_by, objects, now_us)?;
            let body = status(&stored);
            taxii::put_status(db, status_id, added_by, &body, now, keep_after_ms)?;
            Ok((stored, body))
        })
    }
    // ---- end taxii post ----
    // ---- drill (crate::drill; the SQL in postgres/drill.rs) ----
    fn set_jurisdiction_drill(&self, id: i64, drill: bool) -> StoreResult<Jurisdiction> {
        self.write(|db| drill::set_drill(db, id, drill))
    }
    fn purge_drill(&self, now: Millis, apply: bool) -> StoreResult<crate::drill::DrillPurge> {
        drill::purge_drill(self, now, apply)
    }
    // ---- end drill ----
    // ---- disinfo (crate::disinfo; the SQL in postgres/disinfo.rs) ----
    fn disinfo_file_report(&self, new: &crate::disinfo::NewReport, policy: &crate::disinfo::CasePolicy, now: Millis) -> StoreResult<crate::disinfo::ReportOutcome> {
        self.write(|db| disinfo::file_report(db, new, policy, now))
    }
    fn disinfo_report(&self, id: i64) -> StoreResult<Option<crate::disinfo::Report>> {
        self.read(|db| disinfo::report(db, id))
    }
    fn disinfo_reports(&self, jurisdictions: Option<&[i64]>, limit: usize) -> StoreResult<Vec<crate::disinfo::Report>> {
        self.read(|db| disinfo::reports(db, jurisdictions, limit))
    }
    fn disinfo_case(&self, id: i64) -> StoreResult<Option<crate::disinfo::CaseDetail>> {
        self.read(|db| disinfo::case_detail(db, id))
    }
    fn disinfo_cases(&self, jurisdictions: Option<&[i64]>, limit: usize) -> StoreResult<Vec<crate::disinfo::Case>> {
        self.read(|db| disinfo::cases(db, jurisdictions, limit))
    }
    fn disinfo_set_status(&self, case_id: i64, change: &crate::disinfo::StatusChange, now: Millis) -> StoreResult<crate::disinfo::Case> {
        self.write(|db| disinfo::set_status(db, case_id, change, now))
    }
    fn disinfo_screenshot(&self, sha256: &str) -> StoreResult<Option<crate::disinfo::StoredScreenshot>> {
        self.read(|db| disinfo::screenshot(db, sha256))
    }
    fn disinfo_escalate_untouched(&self, urgent_before: Millis, other_before: Millis, now: Millis, limit: usize) -> StoreResult<Vec<i64>> {
        self.write(|db| disinfo::escalate_untouched(db, urgent_before, other_before, now, limit))
    }
    fn disinfo_set_published(&self, case_id: i64, published_ms: Option<Millis>) -> StoreResult<bool> {
        self.write(|db| disinfo::set_published(db, case_id, published_ms))
    }
    fn disinfo_published_ms(&self, case_id: i64) -> StoreResult<Option<Millis>> {
        self.read(|db| disinfo::published_ms(db, case_id))
    }
    fn disinfo_published(&self, limit: usize) -> StoreResult<Vec<(i64, Millis)>> {
        self.read(|db| disinfo::published(db, limit))
    }
    // ---- end disinfo ----
}
