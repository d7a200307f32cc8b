//! Sharing with the rest of the world (issue #12): STIX 2.1 objects with TLP 2.0 markings
//! ([`stix`]). The TAXII 2.1 server, feeds in and hub-to-hub federation build on these.
//!
//! A service-layer module: it renders nothing and holds no SQL; what it shares comes from the
//! store through the `Store` trait.

pub mod stix;
