//! Both stores for tests: a SQLite store in a temporary directory, and — when PostgreSQL
//! answers on 127.0.0.1:5432 (trust auth, user `root`, database `test`) — a fresh PostgreSQL
//! database per test, `ward_test_<random>`, dropped when the test ends.
//!
//! Without PostgreSQL a test on it is skipped with a note on stderr, except in CI (the `CI`
//! environment variable set), where PostgreSQL is always started and its absence fails the test.
//! Only 127.0.0.1:5432 is ever contacted.
//!
//! The hub's HTTP suites run each test once per backend with [`on_each_backend!`]: the test
//! thread then knows its backend ([`current`]), and `common::config` gives a PostgreSQL test a
//! fresh database of its own (kept until the test ends) while a SQLite test keeps its store in
//! the hub's data directory. The synchronous `postgres` client must not run on an async
//! runtime's thread, so tests reach the store through `common::db`, which runs the call on a
//! thread of its own.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use ward_hub::store::postgres::PgStore;
use ward_hub::store::sqlite::SqliteStore;
use ward_hub::store::Store;

/// The server tests may use; never another.
pub const PG_SERVER: &str = "postgres://root@127.0.0.1:5432";
/// Databases a test creates start with this, so a leftover one is recognisable.
pub const TEST_DB_PREFIX: &str = "ward_test_";

/// A store and what keeps it alive (the temporary directory or database). The store is dropped
/// first (fields drop in order), then the directory or database.
pub struct TestStore {
    pub store: Arc<dyn Store>,
    pub backend: &'static str,
    keep: Keep,
}

enum Keep {
    Dir(tempfile::TempDir),
    Pg(PgDatabase),
}

impl TestStore {
    /// The database's URL for a second store (a second replica), PostgreSQL only.
    pub fn url(&self) -> Option<String> {
        match &self.keep {
            Keep::Pg(db) => Some(db.url()),
            Keep::Dir(_) => None,
        }
    }
}

pub fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open_dir(dir.path()).unwrap());
    TestStore { store, backend: "sqlite", keep: Keep::Dir(dir) }
}

/// A PostgreSQL store on a fresh database, or `None` (skipped) when PostgreSQL is not there.
pub fn postgres() -> Option<TestStore> {
    let db = PgDatabase::create()?;
    let store = Arc::new(PgStore::connect(&db.url()).unwrap_or_else(|e| panic!("cannot open the store on {}: {e}", db.name)));
    Some(TestStore { store, backend: "postgres", keep: Keep::Pg(db) })
}

/// The store a test's hubs open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

thread_local! {
    static CURRENT: Cell<Backend> = const { Cell::new(Backend::Sqlite) };
    /// The databases made for the running test; dropped when its [`BackendGuard`] is.
    static DATABASES: RefCell<Vec<PgDatabase>> = const { RefCell::new(Vec::new()) };
}

/// The backend of the test running on this thread (SQLite outside [`on_each_backend!`]).
pub fn current() -> Backend {
    CURRENT.with(Cell::get)
}

/// While alive, this thread's test runs on one backend; dropping it drops the test's databases.
pub struct BackendGuard {
    previous: Backend,
}

impl Backend {
    /// Makes this the thread's backend; `None` (the test is skipped, with a note) when it is
    /// PostgreSQL and PostgreSQL does not answer — a panic instead when `CI` is set.
    pub fn enter(self) -> Option<BackendGuard> {
        if self == Backend::Postgres && !postgres_answers() {
            return None;
        }
        let previous = CURRENT.with(|c| c.replace(self));
        Some(BackendGuard { previous })
    }
}

impl Drop for BackendGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
        let databases = DATABASES.with(|d| std::mem::take(&mut *d.borrow_mut()));
        drop(databases);
    }
}

/// Whether PostgreSQL answers (checked once per test binary); panics in CI when it does not.
fn postgres_answers() -> bool {
    static ANSWERS: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let answers = ANSWERS.get_or_init(|| {
        std::thread::spawn(|| admin().map(drop).map_err(|e| e.to_string())).join().unwrap_or_else(|_| Err("the probe panicked".into()))
    });
    match answers {
        Ok(()) => true,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("CI is set but PostgreSQL does not answer on 127.0.0.1:5432: {e} (scripts/setup-test-env.sh starts it)")
        }
        Err(e) => {
            eprintln!("skipped: PostgreSQL does not answer on 127.0.0.1:5432 ({e})");
            false
        }
    }
}

/// The `database` setting for a hub of the running test: `None` for SQLite (the data
/// directory), else the URL of a fresh database kept until the test ends. Each call makes a
/// new database; give two replicas the same URL to share one.
pub fn database_for_test() -> Option<String> {
    match current() {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let db = PgDatabase::create().unwrap_or_else(|| panic!("PostgreSQL stopped answering during the test"));
            let url = db.url();
            DATABASES.with(|d| d.borrow_mut().push(db));
            Some(url)
        }
    }
}

/// Runs SQL on the running test's database (the last one [`database_for_test`] made): for
/// tests that reach below the store on purpose, as an operator or a crash would.
pub fn postgres_execute(sql: &str) {
    let url = DATABASES.with(|d| d.borrow().last().map(PgDatabase::url)).expect("no PostgreSQL database in this test");
    let sql = sql.to_string();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
        client.batch_execute(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    })
    .join()
    .unwrap();
}

/// Every byte of the running test's database as `pg_dump` writes it (data only), for tests
/// that assert a secret is nowhere in the store.
pub fn postgres_dump() -> Vec<u8> {
    let url = DATABASES.with(|d| d.borrow().last().map(PgDatabase::url)).expect("no PostgreSQL database in this test");
    let out = std::process::Command::new("pg_dump").args(["--data-only", "--dbname", &url]).output().expect("pg_dump runs");
    assert!(out.status.success(), "pg_dump failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// A database `ward_test_<random>` on [`PG_SERVER`], dropped (even with connections still
/// open) when this is dropped.
pub struct PgDatabase {
    pub name: String,
}

impl PgDatabase {
    /// Creates the database; `None` when PostgreSQL does not answer (a panic in CI).
    pub fn create() -> Option<PgDatabase> {
        // On a thread of its own: the synchronous client must not run on an async test's thread.
        std::thread::spawn(Self::create_here).join().unwrap_or_else(|_| panic!("cannot create a test database"))
    }

    fn create_here() -> Option<PgDatabase> {
        let mut admin = match admin() {
            Ok(c) => c,
            Err(e) => {
                if std::env::var_os("CI").is_some() {
                    panic!("CI is set but PostgreSQL does not answer on 127.0.0.1:5432: {e} (scripts/setup-test-env.sh starts it)");
                }
                eprintln!("skipped: PostgreSQL does not answer on 127.0.0.1:5432 ({e})");
                return None;
            }
        };
        let name = format!("{TEST_DB_PREFIX}{:016x}", rand::random::<u64>());
        // An identifier cannot be a parameter; the name is ours (prefix and hex digits only).
        admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        Some(PgDatabase { name })
    }

    pub fn url(&self) -> String {
        format!("{PG_SERVER}/{}", self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // On a thread of its own (see `create`); a failure is reported, never a panic in drop.
        let dropped = std::thread::spawn(move || {
            admin().and_then(|mut c| c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("cannot drop test database {}: {e}", self.name),
            Err(_) => eprintln!("cannot drop test database {}", self.name),
        }
    }
}

fn admin() -> Result<postgres::Client, postgres::Error> {
    let mut config: postgres::Config = format!("{PG_SERVER}/test").parse()?;
    config.connect_timeout(std::time::Duration::from_secs(3));
    config.connect(postgres::NoTls)
}

/// Defines each async test once per backend: `async fn name()` becomes `mod name { fn sqlite();
/// fn postgres(); }` (so `cargo test postgres` runs the PostgreSQL half), each with the test's
/// own attributes (`#[tokio::test(...)]`). The body finds its backend through [`current`].
#[macro_export]
macro_rules! on_each_backend {
    ($( $(#[$attr:meta])* async fn $name:ident() $body:block )*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                $(#[$attr])*
                async fn sqlite() {
                    let _backend = $crate::common::backends::Backend::Sqlite.enter();
                    $body
                }

                $(#[$attr])*
                async fn postgres() {
                    let Some(_backend) = $crate::common::backends::Backend::Postgres.enter() else { return };
                    $body
                }
            }
        )*
    };
}

/// Runs the generic store tests given by name once per backend: `mod on_sqlite { fn name() }`
/// and `mod on_postgres { fn name() }`, each calling `name(&dyn Store)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[test]
                fn $name() {
                    let s = $crate::common::backends::sqlite();
                    super::$name(s.store.as_ref());
                }
            )*
        }
        mod on_postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(s) = $crate::common::backends::postgres() {
                        super::$name(s.store.as_ref());
                    }
                }
            )*
        }
    };
}
