//! ward-hub: the information-sharing center. Every jurisdiction's sensors report here; the hub
//! sees what no single office can see — one actor touching many jurisdictions — and warns every
//! targeted office at once, with a record of every delivery.
//!
//! Layout, in data-flow order:
//! * [`ingest`]: NDJSON EVE batches → parsed events; which events are sightings, actor keys.
//! * [`store`]: the [`store::Store`] trait and its SQLite and PostgreSQL implementations (and
//!   [`store::migrate`], `ward hub migrate`, which copies the one into the other). Ingest,
//!   correlation, campaigns, indicators and the notification outbox are all transactional store
//!   state, so several hub replicas share one PostgreSQL database (change notices, shared
//!   security budgets and job leases: docs/hub.md "Replicas").
//! * [`state`]: group commit of ingest batches on one writer thread; wake-ups (local and from
//!   other replicas); limits; job leases.
//! * [`notify`]: the outbox worker and its channels (signed webhook, SMTP email, syslog CEF).
//! * [`api`], [`web`]: the JSON API and the server-rendered dashboard; [`auth`] for both.
//! * [`server`]: [`app`] (the router, for `oneshot` tests) and [`start`] (a bound hub);
//!   [`body`]: request bodies under a deadline (slow clients); [`tls`]: the rustls
//!   configuration and mutual TLS (client certificates for TAXII partners).
//! * [`cli`]: `ward hub …` subcommands; the binary calls [`cli::run`].
//! * [`trust`]: what one sensor may contribute (budget, holds), the publication bar of the
//!   indicator feed and the never-block allow-list; the store applies it during ingest.
//! * [`rollup`]: a state's view of its counties, and the one roll-up warning per campaign
//!   event that tells a state its counties were hit.
//! * [`share`]: STIX 2.1 objects with TLP 2.0 markings, deterministic ids and patterns, for
//!   TAXII, feeds and federation; [`share::feeds`]: TAXII, MISP and CSV feeds the hub polls into
//!   the indicator log (a `remove` only when no other source holds the value).
//!
//! Trust boundary: a jurisdiction never sees another jurisdiction's events or identity; what it
//! learns about a campaign is what hit it, when, from where, a count of other jurisdictions,
//! and what to do. Every API handler and page enforces this (tests in `tests/access.rs`).
//! Sensors are trusted with little: a sensor speaks for its jurisdiction only, within a budget,
//! and what reaches every sensor needs several jurisdictions or an analyst ([`trust`]).

pub mod ack;
pub mod api;
pub mod assets;
pub mod asn;
pub mod auth;
pub mod body;
pub mod cli;
pub mod config;
// drill jurisdictions: marked, kept apart, purged (crate::drill)
pub mod drill;
// disinformation reports and cases (crate::disinfo)
pub mod disinfo;
pub mod error;
/// Entry points of the cargo-fuzz targets in `fuzz/`.
pub mod fuzz;
pub mod ingest;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod openapi;
// retro-hunt: contact records, analyst indicators, hunts (crate::retro)
pub mod retro;
// a state sees its counties: roll-up warnings and views (crate::rollup)
pub mod rollup;
pub mod server;
pub mod share;
pub mod state;
pub mod store;
// TLS and mutual TLS client certificates (crate::tls)
pub mod tls;
pub mod trust;
pub mod web;

pub use config::HubConfig;
pub use server::{app, start, start_with_store, RunningHub};
pub use state::HubState;
