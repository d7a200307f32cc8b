-- Feeds the hub polls (crates/ward-hub/src/share/feeds/; docs/sharing.md "Feeds"): TAXII 2.1
-- collections, MISP feeds and CSV/text lists whose indicators join the indicator log.

-- One row per configured feed: what to fetch, what to take from it, and its poll state.
CREATE TABLE feeds (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    kind               TEXT NOT NULL CHECK (kind IN ('taxii', 'misp', 'csv')),
    url                TEXT NOT NULL,      -- TAXII: the API root; MISP: the feed directory; CSV: the list
    collection         TEXT,               -- TAXII collection id
    csv_column         INTEGER,            -- CSV: the 0-based column holding the indicator
    auth_kind          TEXT NOT NULL CHECK (auth_kind IN ('none', 'basic', 'bearer')),
    username           TEXT,               -- basic auth
    credential         TEXT,               -- password or token, sealed (store/secrets.rs), never shown
    types              TEXT NOT NULL,      -- allowed indicator types, comma-separated (ip,net,domain,url)
    min_confidence     INTEGER NOT NULL,   -- the floor: lower-confidence indicators are skipped
    default_confidence INTEGER NOT NULL,   -- for indicators that carry none (MISP, CSV)
    max_active         INTEGER NOT NULL,   -- the cap on indicators this feed holds at once
    default_tlp        TEXT NOT NULL,      -- for indicators that carry no TLP marking
    default_ttl_secs   INTEGER,            -- expiry for indicators that carry none (NULL: none)
    interval_secs      INTEGER NOT NULL,
    enabled            INTEGER NOT NULL,
    created_by         TEXT NOT NULL,
    created_ms         INTEGER NOT NULL,
    state              TEXT NOT NULL DEFAULT '{}', -- JSON: TAXII added_after, MISP manifest, ETag
    next_poll_ms       INTEGER NOT NULL,
    last_poll_ms       INTEGER,
    last_ok_ms         INTEGER,
    last_error         TEXT,
    failures           INTEGER NOT NULL DEFAULT 0,  -- consecutive failed polls (the backoff)
    capped             INTEGER NOT NULL DEFAULT 0,  -- the last poll stopped adding at the cap
    added_total        INTEGER NOT NULL DEFAULT 0,
    removed_total      INTEGER NOT NULL DEFAULT 0,
    skipped_total      INTEGER NOT NULL DEFAULT 0
);

-- The indicators each feed holds (and held: removed_ms set). A group is what one poll replaces
-- as a whole: a TAXII object (by id), a MISP event (by uuid), or the whole CSV list (''). An
-- indicator is on the sensors' list (on_sensors = 1) unless its TLP keeps it on the hub;
-- add_seq is the log `add` it rode on (its own, or the one already live for the value).
CREATE TABLE feed_indicators (
    id             INTEGER PRIMARY KEY,
    feed_id        INTEGER NOT NULL REFERENCES feeds(id),
    source_group   TEXT NOT NULL,
    source_ref     TEXT NOT NULL,          -- STIX id, MISP attribute uuid, or the CSV line number
    kind           TEXT NOT NULL CHECK (kind IN ('ip', 'net', 'domain')),
    value          TEXT NOT NULL,
    confidence     INTEGER NOT NULL,
    tlp            TEXT NOT NULL,
    valid_until_ms INTEGER,
    on_sensors     INTEGER NOT NULL,
    added_ms       INTEGER NOT NULL,
    removed_ms     INTEGER,
    removed_why    TEXT,
    add_seq        INTEGER
);
CREATE UNIQUE INDEX feed_indicators_active ON feed_indicators (feed_id, source_group, source_ref, kind, value) WHERE removed_ms IS NULL;
CREATE INDEX feed_indicators_value ON feed_indicators (kind, value) WHERE removed_ms IS NULL;
CREATE INDEX feed_indicators_expiry ON feed_indicators (valid_until_ms) WHERE removed_ms IS NULL AND valid_until_ms IS NOT NULL;

-- Whether a value is live on the sensors' lists is the last log entry for it.
CREATE INDEX indicators_value ON indicators (kind, value, seq);
