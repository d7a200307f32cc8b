-- Hub-to-hub federation (crates/ward-hub/src/share/federation.rs; docs/sharing.md "Federation"):
-- per configured peer, how far this hub has pushed its TAXII objects to it, and what it has
-- received from it. The peers themselves are configured in the hub's file ([[federation.peer]]);
-- a row is made the first time a peer is pushed to or heard from.
CREATE TABLE federation_peers (
    name             TEXT PRIMARY KEY,
    cursor_us        INTEGER NOT NULL DEFAULT 0,  -- the last object pushed: its date_added (µs) …
    cursor_seq       INTEGER NOT NULL DEFAULT 0,  -- … and tie-breaker (taxii_objects.seq)
    sent_total       INTEGER NOT NULL DEFAULT 0,
    received_total   INTEGER NOT NULL DEFAULT 0,
    last_push_ms     INTEGER,                     -- the last push attempt
    last_ok_ms       INTEGER,                     -- the last push the peer took
    last_received_ms INTEGER,
    last_error       TEXT,
    failures         INTEGER NOT NULL DEFAULT 0   -- consecutive failed pushes (the backoff)
);
