//! Sensor hardening through the `ward` binary: signals, reloads, the spool under kill -9, capture errors.
//!
//! One module per finding of the hardening review (issue #10), named after it, so a failing
//! test names what broke. Each module's note says the finding.

mod sighup_reload;
mod reload_broken_rules;
mod spool_tail_on_kill;
mod spool_summary;
mod unknown_link_type;
mod live_filter_anomalies;

mod sensor_support;
