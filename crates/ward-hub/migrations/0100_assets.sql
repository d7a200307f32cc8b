-- Scanner (ward scan --hub): what each jurisdiction registered for scanning, when scanning is
-- forbidden, the scan results uploaded, the latest weekly report, and the scan-job leases that
-- let several `ward scan worker` processes share the work. Owned by crates/ward-hub/src/assets.rs.

CREATE TABLE scan_assets (
    id              INTEGER PRIMARY KEY,
    jurisdiction_id INTEGER NOT NULL REFERENCES jurisdictions(id),
    -- address | network | hostname | domain (a mail domain for the SPF/DMARC/STARTTLS checks)
    kind            TEXT NOT NULL,
    value           TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    UNIQUE (jurisdiction_id, value)
);

CREATE TABLE scan_blackouts (
    id              INTEGER PRIMARY KEY,
    jurisdiction_id INTEGER NOT NULL REFERENCES jurisdictions(id),
    starts_ms       INTEGER NOT NULL,
    ends_ms         INTEGER NOT NULL,
    reason          TEXT NOT NULL,
    created_ms      INTEGER NOT NULL
);
CREATE INDEX scan_blackouts_by_jurisdiction ON scan_blackouts (jurisdiction_id, ends_ms);

CREATE TABLE scan_results (
    id              INTEGER PRIMARY KEY,
    jurisdiction_id INTEGER NOT NULL REFERENCES jurisdictions(id),
    finished_ms     INTEGER NOT NULL,
    received_ms     INTEGER NOT NULL,
    -- when this jurisdiction is due again (rescan cadence from the worst finding)
    next_due_ms     INTEGER NOT NULL,
    body            TEXT NOT NULL
);
CREATE INDEX scan_results_by_jurisdiction ON scan_results (jurisdiction_id, finished_ms);

CREATE TABLE scan_reports (
    jurisdiction_id INTEGER PRIMARY KEY REFERENCES jurisdictions(id),
    generated_ms    INTEGER NOT NULL,
    html            TEXT NOT NULL,
    pdf             BLOB NOT NULL
);

CREATE TABLE scan_leases (
    jurisdiction_id INTEGER PRIMARY KEY REFERENCES jurisdictions(id),
    worker          TEXT NOT NULL,
    until_ms        INTEGER NOT NULL
);
