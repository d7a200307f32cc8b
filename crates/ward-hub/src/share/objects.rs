//! The TAXII object store as the rest of the hub sees it: STIX object versions per collection,
//! queries over them with the access rules already applied, and API keys. The SQL lives in the
//! two backends (`store/sqlite/taxii.rs`, `store/postgres/taxii.rs`); this module holds only
//! the types and the rules both of them follow.
//!
//! Invariants the backends keep:
//! * `date_added` (microseconds) is strictly increasing over the whole store, in commit order:
//!   every insert reads and advances one clock row under the writer's lock (SQLite's single
//!   writer; PostgreSQL's row lock on `taxii_clock`, held until commit). So a reader that has
//!   seen `date_added = X` will never later find a committed object with `date_added <= X`, and
//!   `added_after` resumption is exact even for thousands of objects added in one instant.
//! * One row per (collection, object id, version): storing a version that is already there is
//!   a no-op reported as such.
//! * A query never returns TLP:RED, never an object above the reader's ceiling, never an
//!   AMBER+STRICT object to anyone but hub analysts and the jurisdiction it concerns, and never
//!   to a jurisdiction's account an object that concerns another jurisdiction.

use serde::Serialize;
use ward_model::tlp::Tlp;

/// The rank of a TLP level as stored (`tlp` column): 0 CLEAR … 4 RED.
pub fn tlp_rank(t: Tlp) -> i64 {
    match t {
        Tlp::Clear => 0,
        Tlp::Green => 1,
        Tlp::Amber => 2,
        Tlp::AmberStrict => 3,
        Tlp::Red => 4,
    }
}

/// The level of a stored rank (anything unknown is RED, which is never served).
pub fn tlp_of_rank(r: i64) -> Tlp {
    match r {
        0 => Tlp::Clear,
        1 => Tlp::Green,
        2 => Tlp::Amber,
        3 => Tlp::AmberStrict,
        _ => Tlp::Red,
    }
}

/// The stored collections (the per-jurisdiction view reads two of them).
pub const COLLECTION_HUB: &str = "hub";
pub const COLLECTION_COMMUNITY: &str = "community";
pub const COLLECTION_INBOX: &str = "inbox";

/// One object version to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewObject {
    pub object_id: String,
    pub object_type: String,
    pub spec_version: String,
    /// The version as the object writes it (`modified`, else `created`; else the empty string,
    /// and the stored version is then the date it was added).
    pub version: String,
    /// The same in microseconds since the epoch (0 for an object with neither timestamp).
    pub version_us: i64,
    pub tlp: Tlp,
    /// The jurisdiction the object concerns (`None`: none, community).
    pub jurisdiction_id: Option<i64>,
    /// SHA-256 (hex) of the object without `modified`: the publisher compares it.
    pub content_hash: String,
    pub body: String,
}

/// One stored version, as a query returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    pub seq: i64,
    pub date_added_us: i64,
    pub object_id: String,
    pub version: String,
    /// `None` when the query asked for no bodies (manifests, versions).
    pub body: Option<String>,
}

/// Which versions of each object a query returns (`match[version]`): any combination.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VersionFilter {
    pub all: bool,
    pub first: bool,
    pub last: bool,
    /// Exact versions, in microseconds.
    pub at: Vec<i64>,
}

impl VersionFilter {
    /// TAXII's default: the latest version of each object.
    pub fn last() -> Self {
        VersionFilter { last: true, ..Default::default() }
    }
}

/// Who reads: the access rules of one account on one collection, applied by the store.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadScope {
    /// The stored collections read (one, or two for the per-jurisdiction view).
    pub collections: Vec<String>,
    /// Rows of this stored collection are read only when they concern `jurisdiction` (the
    /// per-jurisdiction view takes only the jurisdiction's own objects from the named one).
    pub own_only: Option<String>,
    /// The reader's jurisdiction: rows that concern another jurisdiction are never read.
    pub jurisdiction: Option<i64>,
    /// The reader's ceiling (RED is never read whatever this says).
    pub max_tlp: Tlp,
    /// Hub analysts read AMBER+STRICT rows whatever they concern; everyone else only those that
    /// concern their own jurisdiction.
    pub strict_any: bool,
}

/// A page of a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectQuery {
    pub scope: ReadScope,
    /// Only rows strictly after this (date_added_us, seq): `added_after` and the `next` cursor.
    pub after: (i64, i64),
    pub ids: Vec<String>,
    pub types: Vec<String>,
    pub spec_versions: Vec<String>,
    pub versions: VersionFilter,
    /// Rows returned at most (the caller asks for one more than a page to learn `more`).
    pub limit: usize,
    pub with_body: bool,
}

/// The scopes an API key may carry. The table keeps a list, so later issues add theirs.
pub const SCOPE_TAXII_READ: &str = "taxii-read";
pub const SCOPE_TAXII_WRITE: &str = "taxii-write";
pub const KNOWN_SCOPES: &[&str] = &[SCOPE_TAXII_READ, SCOPE_TAXII_WRITE];

/// A long-lived API key (the secret itself is never stored, only its SHA-256).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKey {
    pub id: i64,
    /// Public identifier: the user name for HTTP Basic (`key_id:key`).
    pub key_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub max_tlp: Tlp,
    /// A jurisdiction's key reads what concerns that jurisdiction and community objects.
    pub jurisdiction_id: Option<i64>,
    /// A peer hub's key may read the named hub collection.
    pub name_jurisdictions: bool,
    pub created_ms: i64,
    pub created_by: String,
    pub revoked_ms: Option<i64>,
    /// SHA-256 (hex) of the client certificate this key is bound to: a connection presenting
    /// it authenticates as this key (docs/sharing.md "Mutual TLS").
    pub client_cert_sha256: Option<String>,
}

impl ApiKey {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// A key to create; `secret_hash` is the SHA-256 (hex) of the key shown once.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApiKey {
    pub key_id: String,
    pub name: String,
    pub secret_hash: String,
    pub scopes: Vec<String>,
    pub max_tlp: Tlp,
    pub jurisdiction_id: Option<i64>,
    pub name_jurisdictions: bool,
    pub created_by: String,
}

/// Whether `s` is a SHA-256 fingerprint as stored: 64 lowercase hex digits.
pub fn valid_fingerprint(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Longest API key name.
pub const MAX_KEY_NAME_CHARS: usize = 100;

/// Checks a new key's fields (both stores call this before inserting).
pub fn check_new_key(k: &NewApiKey) -> Result<(), String> {
    crate::model::check_text("api key name", &k.name, false)?;
    if k.name.trim().is_empty() || k.name.chars().count() > MAX_KEY_NAME_CHARS {
        return Err(format!("an api key name is 1 to {MAX_KEY_NAME_CHARS} characters"));
    }
    if k.scopes.is_empty() {
        return Err(format!("give at least one scope: {}", KNOWN_SCOPES.join(", ")));
    }
    if let Some(bad) = k.scopes.iter().find(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
        return Err(format!("unknown scope {bad:?}: use {}", KNOWN_SCOPES.join(", ")));
    }
    if k.max_tlp == Tlp::Red {
        return Err("TLP:RED never leaves the hub: give --max-tlp TLP:AMBER+STRICT or below".into());
    }
    if k.jurisdiction_id.is_some() && k.name_jurisdictions {
        return Err("a jurisdiction's key never sees other jurisdictions named: drop --name-jurisdictions or --jurisdiction".into());
    }
    Ok(())
}
