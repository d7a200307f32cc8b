//! Both stores for tests: a SQLite store in a temporary directory, and — when PostgreSQL
//! answers on 127.0.0.1:5432 (trust auth, user `root`, database `test`) — a fresh PostgreSQL
//! database per test, `ward_test_<random>`, dropped when the test ends.
//!
//! Without PostgreSQL a test on it is skipped with a note on stderr, except in CI (the `CI`
//! environment variable set), where PostgreSQL is always started and its absence fails the test.
//! Only 127.0.0.1:5432 is ever contacted.
#![allow(dead_code)]

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
