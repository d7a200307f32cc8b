-- Replicas (docs/hub.md "Replicas"): background jobs run once across the hub, under a lease.
-- The embedded store serves one process, but it keeps the same table so both stores hold the
-- same tables and a store copied into PostgreSQL carries nothing surprising.

-- One row per background job (retention, retro-hunt): the replica that holds it and until when.
-- A holder renews before expires_ms; after it, any replica may take the job over.
CREATE TABLE job_leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    acquired_ms INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL
) WITHOUT ROWID;
