//! ward-detect: the detection engine of the ward sensor.
//!
//! * **Rules** ([`load`], [`RuleSet`]): Suricata rule syntax, parsed ([`parse`]), compiled
//!   ([`rule`]) and indexed ([`engine`]): a multi-pattern prefilter per buffer over each rule's
//!   fast pattern ([`prefilter::Prefilter`]: a cache-resident hashed filter), raw-payload
//!   patterns split into port groups by direction, flow state, addresses,
//!   app protocol and ports (Suricata's signature group heads), exact/suffix domain sets
//!   for single-domain rules, an address-interval index for IP reputation rules, then full
//!   verification of the candidates only. A rule with an unsupported keyword or a syntax error
//!   is skipped and reported; the rest load. docs/rules.md lists the supported keywords.
//! * **Indicators** ([`indicators`]): IP/CIDR and domain lists matched against flow endpoints,
//!   DNS names and answers, TLS SNI and HTTP host; alerts with gid [`indicators::INDICATOR_GID`].
//! * **Scan detector** ([`scan`]): vertical, horizontal and block scans per source, from one
//!   small event per connection attempt; alerts with gid [`scan::SCAN_GID`].
//! * **Bounded regexes** ([`pcre`]): every pcre search runs under match and depth limits
//!   (Suricata's defaults, [`pcre::PcreLimits`]); a search they stop does not match and is
//!   counted per worker ([`DetectScratch::pcre_limit_hits`]).
//!
//! Sets are immutable once built and shared behind `Arc`; [`SharedRuleSet`] and
//! [`SharedIndicatorSet`] swap them atomically for live reload. Mutable state is either per
//! flow ([`FlowDetect`]) or per worker ([`DetectScratch`], [`scan::ScanDetector`]), so workers
//! never share locks, except the port groups' build lock, taken the first time a worker meets
//! a group. The engine depends on no packet or protocol crate: the sensor fills the
//! input structs of [`input`] from its own parsers.

pub mod addr;
pub mod alert;
pub mod buffer;
pub mod classify;
pub mod elements;
pub mod engine;
mod groups;
#[doc(hidden)]
pub mod fuzzing;
pub mod indicators;
pub mod input;
pub mod load;
pub mod parse;
pub mod pcre;
pub mod prefilter;
pub mod rule;
pub mod scan;
pub mod shared;
pub mod state;

pub use addr::{IpSet, PortSet, Vars};
pub use classify::Classification;
pub use engine::{Match, RuleSet, RuleSetStats};
pub use indicators::{IndicatorSet, IndicatorHit};
pub use input::{DnsInput, HttpInput, IcmpHeader, PacketInput, TcpHeader, TlsInput};
pub use load::{check, load, load_str, CheckReport, LoadReport, SkippedRule};
pub use pcre::PcreLimits;
pub use rule::{Action, RuleInfo};
pub use scan::{ScanAlert, ScanConfig, ScanDetector, ScanEvent, ScanOutcome};
pub use shared::{SharedIndicatorSet, SharedRuleSet};
pub use state::{DetectScratch, FlowDetect};

#[cfg(test)]
mod tests;
