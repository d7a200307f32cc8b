//! `ward drill`: an automated, scored election-security exercise (issue #14, docs/drill.md).
//!
//! A scenario (TOML) is a timeline of injects (attacks from `ward-sim` laid over office traffic),
//! the participants and the objectives with thresholds. The runner plays it through real
//! sensor pipelines and lightweight simulated relays into a real hub, plays the offices'
//! people (receivers that acknowledge after a drawn delay), measures every step of every
//! warning ([`outcome`]) and writes the after-action report (HSEEP structure) in HTML, PDF,
//! JSON and CSV.

// The runner that fills the outcome lands next; until then the types are only tested.
#![allow(dead_code)]

pub mod outcome;
pub mod report;
