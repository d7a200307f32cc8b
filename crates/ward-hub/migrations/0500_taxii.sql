-- TAXII 2.1 server (crate::share::taxii, docs/sharing.md "TAXII 2.1 server"): STIX object
-- versions per collection, the clock that hands out date_added, POST status resources, and
-- API keys for partners, peer hubs, SIEMs and jurisdictions.

-- One row per object version. `seq` is the tie-breaker of the paging cursor; `date_added_us`
-- (microseconds) is strictly increasing over the whole table in commit order (see taxii_clock).
-- `version_us` is the object's `modified` (else `created`; 0 for objects with neither), and
-- `version` the same timestamp as the object writes it. `tlp`: 0 CLEAR, 1 GREEN, 2 AMBER,
-- 3 AMBER+STRICT, 4 RED (never served). `jurisdiction_id`: the jurisdiction the object concerns
-- (NULL: none, community). `content_hash`: SHA-256 of the body without `modified`, so the
-- publisher stores a version only when the object changed.
CREATE TABLE taxii_objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    collection TEXT NOT NULL,
    date_added_us INTEGER NOT NULL,
    object_id TEXT NOT NULL,
    object_type TEXT NOT NULL,
    spec_version TEXT NOT NULL,
    version TEXT NOT NULL,
    version_us INTEGER NOT NULL,
    tlp INTEGER NOT NULL,
    jurisdiction_id INTEGER,
    added_by TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (collection, object_id, version_us)
);
CREATE INDEX taxii_objects_page ON taxii_objects (collection, date_added_us, seq);
CREATE INDEX taxii_objects_added ON taxii_objects (date_added_us, seq);

-- The last date_added handed out; every insert takes max(now, last + 1) under the writer lock,
-- so date_added order is commit order.
CREATE TABLE taxii_clock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_us INTEGER NOT NULL
);
INSERT INTO taxii_clock (id, last_us) VALUES (1, 0);

-- A POST's status resource (TAXII 2.1 section 4.3): the whole resource as JSON.
CREATE TABLE taxii_status (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX taxii_status_created ON taxii_status (created_ms);

-- Long-lived API keys. `secret_hash`: SHA-256 of the key (the key is 256 random bits, shown
-- once). `scopes`: comma-separated (taxii-read, taxii-write; later issues add more).
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    max_tlp INTEGER NOT NULL,
    jurisdiction_id INTEGER REFERENCES jurisdictions(id),
    name_jurisdictions INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    revoked_ms INTEGER
);
