//! Which store a hub uses: the value of `--database`, `WARD_HUB_DATABASE` or the config's
//! `database` key.
//!
//! * `postgres://USER@HOST[:PORT]/DB` (or `postgresql://…`): the PostgreSQL store, for several
//!   replicas over one database;
//! * `sqlite:PATH` or a plain `PATH`: the embedded SQLite store, as `--data` gives it: `PATH` is
//!   the data directory (`PATH/ward-hub.sqlite3`), or the database file itself when it names an
//!   existing file.
//!
//! A PostgreSQL URL may carry a password: [`Database`]'s `Display` never shows it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::{Store, StoreResult};
use crate::error::StoreError;

/// A parsed `--database` value.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// The SQLite data directory (or database file).
    Sqlite(PathBuf),
    /// A PostgreSQL URL (kept whole; shown without its password).
    Postgres(String),
}

impl Database {
    pub fn parse(value: &str) -> StoreResult<Database> {
        let value = value.trim();
        if value.is_empty() {
            return Err(StoreError::Invalid("the database is empty: give a directory, sqlite:DIR or postgres://USER@HOST/DB".into()));
        }
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            value
                .parse::<postgres::Config>()
                .map_err(|e| StoreError::Invalid(format!("invalid postgresql url: {e} (expected postgres://USER@HOST/DB)")))?;
            return Ok(Database::Postgres(value.to_string()));
        }
        if let Some(path) = value.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(StoreError::Invalid("sqlite: needs a path, such as sqlite:/var/lib/ward-hub".into()));
            }
            return Ok(Database::Sqlite(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = value.split_once("://") {
            return Err(StoreError::Invalid(format!(
                "unknown database kind {scheme:?}: give a directory, sqlite:DIR or postgres://USER@HOST/DB"
            )));
        }
        Ok(Database::Sqlite(PathBuf::from(value)))
    }

    /// The SQLite store in a data directory.
    pub fn sqlite_dir(dir: &Path) -> Database {
        Database::Sqlite(dir.to_path_buf())
    }

    /// Opens the store (creating it, or applying pending migrations).
    pub fn open(&self) -> StoreResult<Arc<dyn Store>> {
        match self {
            Database::Sqlite(path) if path.is_file() => Ok(Arc::new(SqliteStore::open(path)?)),
            Database::Sqlite(dir) => Ok(Arc::new(SqliteStore::open_dir(dir)?)),
            Database::Postgres(url) => Ok(Arc::new(PgStore::connect(url)?)),
        }
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Database::Postgres(url) => {
                let Ok(config) = url.parse::<postgres::Config>() else { return write!(f, "postgresql (invalid url)") };
                let hosts: Vec<String> = config
                    .get_hosts()
                    .iter()
                    .map(|h| match h {
                        postgres::config::Host::Tcp(name) => name.clone(),
                        #[cfg(unix)]
                        postgres::config::Host::Unix(path) => path.display().to_string(),
                    })
                    .collect();
                let port = config.get_ports().first().copied().unwrap_or(5432);
                write!(
                    f,
                    "postgres://{}@{}:{port}/{}",
                    config.get_user().unwrap_or(""),
                    hosts.join(","),
                    config.get_dbname().unwrap_or("")
                )
            }
        }
    }
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Database({self})")
    }
}

/// Parses and opens a `--database` value.
pub fn open(database: &str) -> StoreResult<Arc<dyn Store>> {
    Database::parse(database)?.open()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_and_never_shows_a_password() {
        assert_eq!(Database::parse("/var/lib/ward-hub").unwrap(), Database::Sqlite("/var/lib/ward-hub".into()));
        assert_eq!(Database::parse("sqlite:data").unwrap(), Database::Sqlite("data".into()));
        assert_eq!(Database::parse("sqlite:///var/lib/x").unwrap(), Database::Sqlite("/var/lib/x".into()));
        let pg = Database::parse("postgres://ward:s3cret@127.0.0.1:5433/hub").unwrap();
        assert!(matches!(pg, Database::Postgres(_)));
        let shown = format!("{pg} {pg:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("postgres://ward@127.0.0.1:5433/hub"), "{shown}");
        for bad in ["", "mysql://x@y/z", "sqlite:", "postgres://a@b/c?sslmode=nonsense"] {
            assert!(matches!(Database::parse(bad), Err(StoreError::Invalid(_))), "{bad:?}");
        }
    }
}
