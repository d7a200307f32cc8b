-- The trust model (crates/ward-hub/src/trust.rs; docs/hub.md "Trust: what one sensor can do"):
-- sightings record the sensor that made them, sensors have a contribution budget and can be put
-- on hold, campaigns reach the all-sensor feed only past a publication bar, and a never-block
-- allow-list.

-- Sightings with provenance: one row per actor key, jurisdiction and sensor. Correlation still
-- counts distinct jurisdictions; the sensor lets an analyst list and revoke what one sensor
-- contributed. Rows from before this version carry sensor_id 0 (unknown sensor).
CREATE TABLE sightings_by_sensor (
    actor_key       TEXT NOT NULL,
    jurisdiction_id INTEGER NOT NULL,
    sensor_id       INTEGER NOT NULL,
    first_ms        INTEGER NOT NULL,
    last_ms         INTEGER NOT NULL,
    count           INTEGER NOT NULL,
    PRIMARY KEY (actor_key, jurisdiction_id, sensor_id)
) WITHOUT ROWID;
INSERT INTO sightings_by_sensor (actor_key, jurisdiction_id, sensor_id, first_ms, last_ms, count)
    SELECT actor_key, jurisdiction_id, 0, first_ms, last_ms, count FROM sightings;
DROP TABLE sightings;
ALTER TABLE sightings_by_sensor RENAME TO sightings;
-- One sensor's contributions (an index entry is written only for a new key, never on the
-- update of an existing sighting).
CREATE INDEX sightings_sensor ON sightings (sensor_id);

-- Publication: published_ms is set while the campaign's keys are in the all-sensor feed;
-- confirmed_ms when an analyst confirmed it (published whatever its size). Campaigns from
-- before this version were published when they opened.
ALTER TABLE campaigns ADD COLUMN published_ms INTEGER;
ALTER TABLE campaigns ADD COLUMN confirmed_ms INTEGER;
ALTER TABLE campaigns ADD COLUMN opened_by_sensor INTEGER;
UPDATE campaigns SET published_ms = opened_ms WHERE status = 'open';

-- Each sensor's budget window and hold. No row: a fresh window, not on hold.
CREATE TABLE sensor_trust (
    sensor_id       INTEGER PRIMARY KEY,
    window_start_ms INTEGER NOT NULL,
    window_new_keys INTEGER NOT NULL,
    hold_until_ms   INTEGER,            -- on hold while this is after now
    hold_since_ms   INTEGER,
    hold_reason     TEXT,               -- batch_spray | window_budget | revoked
    released_ms     INTEGER             -- an analyst ended the last hold
);

-- One row per budget breach, for analysts.
CREATE TABLE trust_anomalies (
    id              INTEGER PRIMARY KEY,
    sensor_id       INTEGER NOT NULL,
    jurisdiction_id INTEGER NOT NULL,
    ts_ms           INTEGER NOT NULL,
    kind            TEXT NOT NULL,      -- batch_spray | window_budget
    batch_seq       INTEGER NOT NULL,
    events          INTEGER NOT NULL,
    remotes         INTEGER NOT NULL,   -- distinct remote addresses in the batch
    new_remotes     INTEGER,            -- of which new to the jurisdiction (window_budget)
    limit_value     INTEGER NOT NULL
);
CREATE INDEX trust_anomalies_sensor ON trust_anomalies (sensor_id, id);

-- Registered never-block entries (hub-wide when jurisdiction_id is NULL). Built-in resolvers and
-- [trust] never_block live in the configuration, not here.
CREATE TABLE allow_entries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    jurisdiction_id INTEGER REFERENCES jurisdictions(id),
    network         TEXT NOT NULL,      -- canonical: 192.0.2.7 or 192.0.2.0/24
    asn             INTEGER,            -- its autonomous system, when the hub knew it
    note            TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_ms      INTEGER NOT NULL
);
CREATE UNIQUE INDEX allow_entries_network ON allow_entries (coalesce(jurisdiction_id, 0), network);

-- Bumped by every change to allow_entries, so a hub reloads them only when they changed (the
-- CLI and other replicas change them too).
CREATE TABLE trust_state (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    allow_version   INTEGER NOT NULL
);
INSERT INTO trust_state (id, allow_version) VALUES (1, 0);
