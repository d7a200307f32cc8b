//! Sharing with the rest of the world (issue #12): STIX 2.1 objects with TLP 2.0 markings
//! ([`stix`]), and the hub's campaigns, indicators and sightings exported as one bundle under a
//! sharing policy ([`export`], `ward hub export`), and feeds the hub polls ([`feeds`]). The
//! TAXII 2.1 server and hub-to-hub federation will build on these.
//!
//! A service-layer module: it renders nothing and holds no SQL; what it shares comes from the
//! store through the `Store` trait.

pub mod stix;
pub mod export;
pub mod feeds;
