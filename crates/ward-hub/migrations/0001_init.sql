-- ward hub schema, version 1. Times are Unix milliseconds. Secrets are stored as SHA-256 (random
-- tokens) or Argon2id (passwords) hashes, except webhook signing secrets, which must be usable.
CREATE TABLE jurisdictions (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('state', 'county', 'city')),
    state TEXT,
    parent_id INTEGER REFERENCES jurisdictions(id),
    home_net TEXT NOT NULL DEFAULT '',
    created_ms INTEGER NOT NULL
);

CREATE TABLE enrollment_tokens (
    token_hash TEXT PRIMARY KEY,
    jurisdiction_id INTEGER NOT NULL REFERENCES jurisdictions(id),
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    used_ms INTEGER,
    sensor_id INTEGER
);

CREATE TABLE sensors (
    id INTEGER PRIMARY KEY,
    jurisdiction_id INTEGER NOT NULL REFERENCES jurisdictions(id),
    name TEXT NOT NULL,
    credential_hash TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    last_seen_ms INTEGER,
    last_event_ms INTEGER,
    events_total INTEGER NOT NULL DEFAULT 0
);

-- Idempotency: one row per (sensor, sequence) ever acknowledged, with the reply sent.
CREATE TABLE batches (
    sensor_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    reply TEXT NOT NULL,
    PRIMARY KEY (sensor_id, seq)
) WITHOUT ROWID;

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    jurisdiction_id INTEGER NOT NULL,
    sensor_id INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    remote_ip TEXT,
    remote_prefix TEXT,
    remote_asn INTEGER,
    local_ip TEXT,
    signature_id INTEGER,
    signature TEXT,
    body TEXT NOT NULL
);
CREATE INDEX events_jurisdiction_ts ON events (jurisdiction_id, ts_ms);
CREATE INDEX events_type_received ON events (event_type, received_ms);
CREATE INDEX events_remote ON events (remote_prefix, jurisdiction_id) WHERE remote_prefix IS NOT NULL;

-- Correlation state: one row per actor key per jurisdiction. Times are hub receipt times.
CREATE TABLE sightings (
    actor_key TEXT NOT NULL,
    jurisdiction_id INTEGER NOT NULL,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (actor_key, jurisdiction_id)
) WITHOUT ROWID;

CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed', 'merged')),
    opened_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    closed_ms INTEGER,
    merged_into INTEGER,
    annotation TEXT NOT NULL DEFAULT '',
    escalation INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE campaign_keys (
    actor_key TEXT NOT NULL,
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    added_ms INTEGER NOT NULL,
    PRIMARY KEY (actor_key, campaign_id)
);
CREATE INDEX campaign_keys_campaign ON campaign_keys (campaign_id);

CREATE TABLE campaign_jurisdictions (
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    jurisdiction_id INTEGER NOT NULL REFERENCES jurisdictions(id),
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    sightings INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, jurisdiction_id)
);

CREATE TABLE campaign_log (
    id INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL,
    ts_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    jurisdiction_id INTEGER,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX campaign_log_campaign ON campaign_log (campaign_id, ts_ms);

-- Append-only indicator log; seq is the cursor sensors poll with.
CREATE TABLE indicators (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    action TEXT NOT NULL CHECK (action IN ('add', 'remove')),
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    campaign_id INTEGER NOT NULL,
    ts_ms INTEGER NOT NULL
);

CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    jurisdiction_id INTEGER NOT NULL REFERENCES jurisdictions(id),
    channel TEXT NOT NULL CHECK (channel IN ('email', 'webhook', 'syslog')),
    target TEXT NOT NULL,
    secret TEXT,
    created_ms INTEGER NOT NULL
);
CREATE INDEX contacts_jurisdiction ON contacts (jurisdiction_id);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('analyst', 'admin', 'viewer')),
    jurisdiction_id INTEGER REFERENCES jurisdictions(id),
    created_ms INTEGER NOT NULL,
    CHECK ((role = 'analyst') = (jurisdiction_id IS NULL))
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    csrf TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);

-- The outbox. event_key makes "one notification per campaign event per contact" a constraint.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL,
    jurisdiction_id INTEGER NOT NULL,
    contact_id INTEGER NOT NULL REFERENCES contacts(id),
    event_kind TEXT NOT NULL,
    event_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    delivered_ms INTEGER,
    last_error TEXT,
    payload TEXT,
    UNIQUE (contact_id, campaign_id, event_key)
);
CREATE INDEX notifications_due ON notifications (status, next_attempt_ms);
CREATE INDEX notifications_campaign ON notifications (campaign_id);

CREATE TABLE delivery_attempts (
    id INTEGER PRIMARY KEY,
    notification_id INTEGER NOT NULL REFERENCES notifications(id),
    ts_ms INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX delivery_attempts_notification ON delivery_attempts (notification_id);
