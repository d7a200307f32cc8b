-- Hub-to-hub federation (crates/ward-hub/src/share/federation.rs; docs/sharing.md "Federation"):
-- per configured peer, how far this hub has pushed its TAXII objects to it, and what it has
-- received from it. The peers themselves are configured in the hub's file ([[federation.peer]]);
-- a row is made the first time a peer is pushed to or heard from.
CREATE TABLE federation_peers (
    name             text PRIMARY KEY,
    cursor_us        bigint NOT NULL DEFAULT 0,  -- the last object pushed: its date_added (µs) …
    cursor_seq       bigint NOT NULL DEFAULT 0,  -- … and tie-breaker (taxii_objects.seq)
    sent_total       bigint NOT NULL DEFAULT 0,
    received_total   bigint NOT NULL DEFAULT 0,
    last_push_ms     bigint,                     -- the last push attempt
    last_ok_ms       bigint,                     -- the last push the peer took
    last_received_ms bigint,
    last_error       text,
    failures         bigint NOT NULL DEFAULT 0   -- consecutive failed pushes (the backoff)
);
