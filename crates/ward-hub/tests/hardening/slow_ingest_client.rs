//! High 3: a slow client on one credential must not stall other sensors' ingest.
