-- Replicas (docs/hub.md "Replicas"): what several `ward hub serve` processes on this database
-- share besides the data itself. Mirrors migrations/0400_leases.sql, plus the shared limits the
-- embedded store keeps in process memory (it serves one process).

-- One row per background job (retention, retro-hunt): the replica that holds it and until when.
-- A holder renews before expires_ms; after it, any replica may take the job over.
CREATE TABLE job_leases (
    name        text PRIMARY KEY,
    holder      text NOT NULL,
    acquired_ms bigint NOT NULL,
    expires_ms  bigint NOT NULL
);

-- Security budgets shared by every replica, so N replicas behind a load balancer allow what one
-- would: failed-login records (per source, per account and source) and token buckets (failed
-- enrollments, name probes). `value` is a failure count or a number of tokens, `at_ms` the last
-- failure or refill; a row past expires_ms means nothing and is deleted by the retention job.
CREATE TABLE limit_records (
    key         text PRIMARY KEY,
    value       double precision NOT NULL,
    at_ms       bigint NOT NULL,
    expires_ms  bigint NOT NULL
);
CREATE INDEX limit_records_expiry ON limit_records (expires_ms);
