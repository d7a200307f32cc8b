-- Acknowledgements and escalation (crates/ward-hub/src/ack.rs; docs/hub.md "Acknowledgements
-- and escalation").
--
-- A contact's priority: 1 is warned at once (every contact before this migration); 2, 3, …
-- hear of a warning only when it stays unacknowledged, in that order, before the state.
ALTER TABLE contacts ADD COLUMN priority INTEGER NOT NULL DEFAULT 1 CHECK (priority BETWEEN 1 AND 9);

-- Who acknowledged a notification, when (the first acknowledgement's), and what was done.
ALTER TABLE notifications ADD COLUMN acked_ms INTEGER;
ALTER TABLE notifications ADD COLUMN acked_by TEXT;
ALTER TABLE notifications ADD COLUMN ack_action TEXT CHECK (ack_action IN ('blocked', 'investigating', 'not-relevant'));
ALTER TABLE notifications ADD COLUMN ack_note TEXT;
-- The escalation job looks at recent first warnings only.
CREATE INDEX notifications_targeted ON notifications (created_ms) WHERE event_key = 'targeted';
CREATE INDEX notifications_warning ON notifications (campaign_id, jurisdiction_id);

-- One row per escalation step of one warning (a campaign's first warning to a jurisdiction):
-- the unique key is what makes a step happen once, across restarts and replicas. kind 'contact'
-- told the jurisdiction's contacts of `priority`, 'state' its state's contacts, 'end' means
-- nobody was left to tell.
CREATE TABLE escalations (
    id INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL,
    jurisdiction_id INTEGER NOT NULL REFERENCES jurisdictions(id),
    step INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('contact', 'state', 'end')),
    priority INTEGER,
    told_jurisdiction_id INTEGER REFERENCES jurisdictions(id),
    notifications INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    UNIQUE (campaign_id, jurisdiction_id, step)
);
CREATE INDEX escalations_told ON escalations (campaign_id, told_jurisdiction_id);

-- Keys the hub makes for itself (the acknowledgement links' HMAC key), sealed like contact
-- secrets (store/secrets.rs).
CREATE TABLE hub_keys (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    value TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
