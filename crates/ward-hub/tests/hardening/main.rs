//! Hub hardening: a lying sensor, a slow client or a hostile input must not hurt anyone else.
//!
//! One module per finding of the hardening review (issue #10), named after it, so a failing
//! test names what broke. Each module's note says the finding.

#[path = "../common/mod.rs"]
mod common;

mod sensor_poisoning;
mod slow_ingest_client;
mod gzip_members;
mod event_listing_memory;
mod ssrf_contacts;
mod login_throttle;
mod scan_report_sandbox;
mod json_limits;
mod username_leak;
mod metrics_auth;
mod openapi_routes;
mod campaign_update_empty;
mod bidi_names;
mod secrets_at_rest;
mod webhook_redaction;
