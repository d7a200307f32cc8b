-- Retro-hunt (crates/ward-hub/src/retro.rs): hourly contact records from sensors, analyst
-- indicators, the retro-hunt cursor over the indicator log, and the hits it found.

-- One row per (remote, hour, jurisdiction, local, port, protocol, direction), as a sensor folds
-- its flows (ward-sensor hubsink.rs). Clustered by remote address (WITHOUT ROWID), so a retro-hunt
-- for an address or a CIDR network is one contiguous range scan of this table. Addresses are
-- stored as 4 (IPv4) or 16 (IPv6) bytes in network order, so byte order is address order.
-- A second record for the same key and hour (a sensor that flushed an hour early) is summed.
CREATE TABLE contact_records (
    remote          BLOB NOT NULL,
    hour            INTEGER NOT NULL,   -- first_ms / 3600000 (UTC hours since the epoch)
    jurisdiction_id INTEGER NOT NULL,
    local           BLOB NOT NULL,
    port            INTEGER NOT NULL,   -- the server (responder) port: dest_port of the flow
    proto           INTEGER NOT NULL,   -- IANA protocol number (6 TCP, 17 UDP, 1 ICMP, …)
    inbound         INTEGER NOT NULL,   -- 1: the remote side initiated; 0: a local host did
    first_ms        INTEGER NOT NULL,
    last_ms         INTEGER NOT NULL,
    flows           INTEGER NOT NULL,
    pkts            INTEGER NOT NULL,
    bytes           INTEGER NOT NULL,
    sensor_id       INTEGER NOT NULL,
    received_ms     INTEGER NOT NULL,
    PRIMARY KEY (remote, hour, jurisdiction_id, local, port, proto, inbound)
) WITHOUT ROWID;
-- Retention prunes by contact hour.
CREATE INDEX contact_records_hour ON contact_records (hour);

-- Indicators an analyst entered; each is also appended to the indicator log (campaign_id 0).
CREATE TABLE analyst_indicators (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('ip', 'net', 'domain')),
    value       TEXT NOT NULL,
    description TEXT NOT NULL,
    severity    TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    expires_ms  INTEGER,
    created_by  INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    add_seq     INTEGER NOT NULL,       -- its 'add' in the indicator log
    removed_ms  INTEGER                 -- set when it expired (a 'remove' was logged)
);
CREATE INDEX analyst_indicators_value ON analyst_indicators (kind, value);
CREATE INDEX analyst_indicators_expiry ON analyst_indicators (expires_ms) WHERE removed_ms IS NULL AND expires_ms IS NOT NULL;

-- How far the retro-hunt has worked through the indicator log (one row).
CREATE TABLE retro_cursor (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO retro_cursor (id, seq) VALUES (1, 0);

-- Contact records that arrived after the indicators covering their time were hunted (a sensor
-- relays an hour's records when the hour is over, later after an outage): per jurisdiction, the
-- earliest first_ms received since the last late pass. The worker re-hunts, for that
-- jurisdiction only, the indicators that appeared after since_ms; version guards the delete.
CREATE TABLE retro_late (
    jurisdiction_id INTEGER PRIMARY KEY,
    since_ms        INTEGER NOT NULL,
    version         INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL
);

-- What a retro-hunt found: one row per (indicator value, jurisdiction), ever. The UNIQUE key is
-- what makes "one indicator never notifies one jurisdiction twice" a constraint.
CREATE TABLE retro_hits (
    id                INTEGER PRIMARY KEY,
    indicator_seq     INTEGER NOT NULL,
    kind              TEXT NOT NULL,
    value             TEXT NOT NULL,
    campaign_id       INTEGER NOT NULL,  -- 0: an analyst (or feed) indicator
    indicator_ms      INTEGER NOT NULL,  -- when the indicator appeared
    jurisdiction_id   INTEGER NOT NULL REFERENCES jurisdictions(id),
    first_ms          INTEGER NOT NULL,  -- earliest matching contact
    last_ms           INTEGER NOT NULL,  -- latest matching contact (before indicator_ms)
    records           INTEGER NOT NULL,
    pkts              INTEGER NOT NULL,
    bytes             INTEGER NOT NULL,
    detail            TEXT NOT NULL,     -- JSON: local hosts, remote addresses, ports (capped lists)
    found_ms          INTEGER NOT NULL,
    UNIQUE (kind, value, jurisdiction_id)
);
CREATE INDEX retro_hits_jurisdiction ON retro_hits (jurisdiction_id, id);
