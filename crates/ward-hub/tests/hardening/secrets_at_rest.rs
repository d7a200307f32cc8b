//! Low: the hub database is private to its owner and webhook secrets are encrypted at rest.
//!
//! A real SQLite store in a temporary directory: file modes as created and as tightened for an
//! older store, no webhook secret readable in any file of the data directory but the key file,
//! and plaintext secrets of an older store sealed when it opens.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ward_hub::model::{now_ms, Channel, JurisdictionKind, NewContact, NewJurisdiction};
use ward_hub::store::sqlite::SqliteStore;
use ward_hub::store::Store;

const SECRET: &str = "whsec_MARKER_do_not_store_in_clear_0123456789";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

fn add_webhook(store: &SqliteStore, secret: &str) -> i64 {
    let j = store
        .create_jurisdiction(&NewJurisdiction { name: "Franklin County".into(), kind: JurisdictionKind::County, state: Some("OH".into()), home_net: None }, now_ms())
        .unwrap()
        .id;
    let c = store
        .create_contact(j, &NewContact { channel: Channel::Webhook, target: "https://soc.example/hook".into(), secret: Some(secret.into()) }, now_ms())
        .unwrap();
    assert_eq!(c.secret.as_deref(), Some(secret), "the caller gets the secret in clear");
    j
}

/// Every byte of every file in the data directory except the key file.
fn data_files_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_name() != "secret.key" {
            all.extend(std::fs::read(entry.path()).unwrap());
        }
    }
    all
}

fn raw_secret(dir: &Path) -> String {
    let conn = rusqlite::Connection::open(dir.join("ward-hub.sqlite3")).unwrap();
    conn.query_row("SELECT secret FROM contacts", [], |r| r.get(0)).unwrap()
}

#[test]
fn a_new_store_is_private_and_seals_webhook_secrets() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("hub-data");
    let store = SqliteStore::open_dir(&dir).unwrap();
    let j = add_webhook(&store, SECRET);
    assert_eq!(store.contacts(Some(j)).unwrap()[0].secret.as_deref(), Some(SECRET), "read back in clear for delivery");

    assert_eq!(mode(&dir), 0o700, "data directory");
    for file in ["ward-hub.sqlite3", "ward-hub.sqlite3-wal", "ward-hub.sqlite3-shm", "secret.key"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    let bytes = data_files_bytes(&dir);
    assert!(!bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()), "the secret is readable in the database files");
    assert!(raw_secret(&dir).starts_with("enc:v1:"), "{}", raw_secret(&dir));
    drop(store);

    // Reopened with the same key file: still usable.
    let store = SqliteStore::open_dir(&dir).unwrap();
    assert_eq!(store.contacts(Some(j)).unwrap()[0].secret.as_deref(), Some(SECRET));
}

#[test]
fn an_older_store_is_made_private_and_its_plaintext_secrets_sealed_on_open() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("hub-data");
    let store = SqliteStore::open_dir(&dir).unwrap();
    let j = add_webhook(&store, "placeholder-secret-0123456789");
    drop(store);
    // What an older ward left: a plaintext secret, a world-readable directory and database.
    let conn = rusqlite::Connection::open(dir.join("ward-hub.sqlite3")).unwrap();
    conn.execute("UPDATE contacts SET secret = ?1", [SECRET]).unwrap();
    drop(conn);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.join("ward-hub.sqlite3"), std::fs::Permissions::from_mode(0o644)).unwrap();

    let store = SqliteStore::open_dir(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("ward-hub.sqlite3")), 0o600);
    assert!(raw_secret(&dir).starts_with("enc:v1:"), "sealed on open");
    assert_eq!(store.contacts(Some(j)).unwrap()[0].secret.as_deref(), Some(SECRET));
    // The replaced plaintext is overwritten, not left in a free slot of the page or in the WAL.
    let bytes = data_files_bytes(&dir);
    assert!(!bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()), "plaintext survived the migration");
}

#[test]
fn without_the_key_file_secrets_stay_sealed_and_nothing_breaks() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("hub-data");
    let store = SqliteStore::open_dir(&dir).unwrap();
    let j = add_webhook(&store, SECRET);
    drop(store);
    // A database copied without its key file (a stolen backup) meets a new key.
    std::fs::remove_file(dir.join("secret.key")).unwrap();
    let store = SqliteStore::open_dir(&dir).unwrap();
    let contacts = store.contacts(Some(j)).unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].secret, None, "not readable without the key");
    assert!(raw_secret(&dir).starts_with("enc:v1:"), "left sealed, not re-sealed or lost");
}
