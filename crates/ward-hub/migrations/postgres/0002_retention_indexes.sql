-- ward hub schema, version 2 (../0002_retention_indexes.sql): the retention pruner finds old
-- idempotency records by time.
CREATE INDEX batches_received ON batches (received_ms);
