//! Sharing with the rest of the world (issue #12): STIX 2.1 objects with TLP 2.0 markings
//! ([`stix`]), the hub's campaigns, indicators and sightings exported as one bundle under a
//! sharing policy ([`export`], `ward hub export`), the TAXII 2.1 server: its object store's
//! types and access rules ([`objects`]), accounts and API keys ([`accounts`]), the job that
//! publishes the hub's knowledge into it ([`publish`]) and the endpoints ([`taxii`]), and feeds
//! the hub polls ([`feeds`]), and hub-to-hub federation over them ([`federation`]).
//!
//! [`stix`], [`export`] and [`publish`] are service-layer code: they render nothing and hold no
//! SQL; what they share comes from the store through the `Store` trait. [`taxii`] is the HTTP
//! layer over them.

pub mod accounts;
pub mod export;
pub mod objects;
pub mod publish;
pub mod stix;
pub mod taxii;
pub mod feeds;
pub mod federation;
