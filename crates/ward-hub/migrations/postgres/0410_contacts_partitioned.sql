-- Contact records at scale (issue #11): `contact_records` becomes a table partitioned by day
-- (native declarative range partitioning on `hour`, 24 hours per partition), converting the
-- rows already stored. See crates/ward-hub/src/store/postgres/retro.rs for how partitions are
-- created and dropped, and docs/hub.md "Contact records on PostgreSQL".
--
-- * One partition per UTC day, named contact_records_YYYYMMDD, holding hours
--   [day * 24, day * 24 + 24). A hunt's time window prunes partitions; retention drops whole
--   partitions (DROP TABLE) instead of deleting rows, so it leaves no dead tuples to vacuum.
-- * The primary key keeps `remote` first: in each partition its btree serves a network as the
--   range of host addresses from the first to the last (`remote BETWEEN lo AND hi`); the key
--   includes `hour`, the partition key, as PostgreSQL requires of a unique key on a
--   partitioned table, and it is what the ingest upsert (ON CONFLICT) needs anyway.
-- * The old `hour` index goes: the partition bounds do its work.
-- * Partitions are created by the store before rows of a new day are written (under an
--   advisory lock, in a transaction of their own) and a few days ahead by the retention pass.

ALTER TABLE contact_records RENAME TO contact_records_unpartitioned;
ALTER TABLE contact_records_unpartitioned RENAME CONSTRAINT contact_records_pkey TO contact_records_unpartitioned_pkey;
DROP INDEX contact_records_hour;

CREATE TABLE contact_records (
    remote          inet NOT NULL,
    hour            bigint NOT NULL,    -- first_ms / 3600000 (UTC hours since the epoch)
    jurisdiction_id bigint NOT NULL,
    local           inet NOT NULL,
    port            integer NOT NULL,   -- the server (responder) port: dest_port of the flow
    proto           integer NOT NULL,   -- IANA protocol number (6 TCP, 17 UDP, 1 ICMP, …)
    inbound         boolean NOT NULL,   -- the remote side initiated
    first_ms        bigint NOT NULL,
    last_ms         bigint NOT NULL,
    flows           bigint NOT NULL,
    pkts            bigint NOT NULL,
    bytes           bigint NOT NULL,
    sensor_id       bigint NOT NULL,
    received_ms     bigint NOT NULL,
    PRIMARY KEY (remote, hour, jurisdiction_id, local, port, proto, inbound)
) PARTITION BY RANGE (hour);

-- The partition of one UTC day (days since the epoch); creates it when missing and says whether
-- it did. The only dynamic SQL of the store: the name is derived from a number here, never
-- from input text. Callers hold the partition advisory lock (two creators would collide).
CREATE FUNCTION ward_contact_partition(day bigint) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    name text := 'contact_records_' || to_char(to_timestamp(day * 86400) AT TIME ZONE 'UTC', 'YYYYMMDD');
BEGIN
    IF day < 0 OR day > 1000000 THEN
        RAISE EXCEPTION 'contact record day % is out of range', day USING ERRCODE = '22003';
    END IF;
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF contact_records FOR VALUES FROM (%s) TO (%s)', name, day * 24, day * 24 + 24);
    RETURN true;
END
$$;

-- The days that have a partition, from the partition names (oldest first).
CREATE FUNCTION ward_contact_partition_days() RETURNS SETOF bigint LANGUAGE sql STABLE AS $$
    SELECT (to_date(substr(c.relname, 17), 'YYYYMMDD') - date '1970-01-01')::bigint AS day
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'contact_records'::regclass AND c.relname ~ '^contact_records_[0-9]{8}$'
    ORDER BY day
$$;

-- Drops one day's partition (retention); says whether there was one.
CREATE FUNCTION ward_drop_contact_partition(day bigint) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    name text := 'contact_records_' || to_char(to_timestamp(day * 86400) AT TIME ZONE 'UTC', 'YYYYMMDD');
BEGIN
    IF to_regclass(name) IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('DROP TABLE %I', name);
    RETURN true;
END
$$;

-- The rows stored so far, one partition per day they cover.
SELECT ward_contact_partition(d) FROM (SELECT DISTINCT hour / 24 AS d FROM contact_records_unpartitioned) days;
INSERT INTO contact_records SELECT remote, hour, jurisdiction_id, local, port, proto, inbound, first_ms, last_ms, flows, pkts, bytes, sensor_id, received_ms
    FROM contact_records_unpartitioned;
DROP TABLE contact_records_unpartitioned;
