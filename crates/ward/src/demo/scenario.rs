//! The demo's attack campaign as packets: one capture per jurisdiction, ordinary office traffic
//! from ward-sim's generator with the attacker's packets (ward-sim's attacks) laid over it.
//!
//! The story (private addresses and unrouted test ranges; nothing here is ever sent):
//! * the actor [`ACTOR`] quietly touches Dover County's web server days before anything else
//!   (one HTTPS connection — too little for any detector; only the retro-hunt finds it);
//! * the actor SYN-scans the public servers of Adams, Baker and Clark counties;
//! * the actor sends an SQL injection to Adams County's voter-registration form;
//! * a workstation at Baker County looks up [`BAD_DOMAIN`], a domain on the hub's indicator feed;
//! * the State office sees only ordinary traffic: it is warned before the actor arrives.

use std::path::Path;

use anyhow::Context;
use ward_sim::attack::{self, Frame};
use ward_sim::mix::{self, MixWeights, Rng};

/// The attacker's address: from 198.18.0.0/15, the range set aside for benchmarks (RFC 2544),
/// so it belongs to nobody, yet it is not a private or documentation address, which the hub
/// would rightly never take for a remote actor.
pub const ACTOR: [u8; 4] = [198, 18, 23, 66];
/// A domain on the hub's indicator feed before the demo starts.
pub const BAD_DOMAIN: &str = "voter-roll-update.example";

/// What happens at one jurisdiction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Ordinary traffic only.
    Quiet,
    /// A single HTTPS connection from the actor, long before the campaign.
    EarlyContact,
    /// Port scan by the actor.
    Scanned,
    /// Port scan, then SQL injection against the voter-registration form.
    ScannedAndInjected,
    /// Port scan, and a workstation resolves the known-bad domain.
    ScannedAndBadLookup,
}

/// One jurisdiction's network in the demo.
#[derive(Debug, Clone)]
pub struct Site {
    pub name: &'static str,
    /// The office's public web server (voter registration, results).
    pub web_server: [u8; 4],
    /// A workstation inside the office.
    pub workstation: [u8; 4],
    /// The office's resolver.
    pub resolver: [u8; 4],
    pub role: Role,
}

/// Writes `site`'s capture to `path`: `background_bytes` of ordinary traffic starting at
/// `start_us`, with the scenario's packets at their place in time. Returns the packet count.
pub fn write_capture(path: &Path, site: &Site, seed: u64, start_us: u64, background_bytes: u64) -> anyhow::Result<u64> {
    let opts = mix::Options {
        target_bytes: background_bytes,
        seed,
        hosts: 40,
        concurrency: 50,
        weights: MixWeights::parse("http=30,dns=40,tls=28,icmp=2").context("demo traffic mix")?,
        ipv6_share: 0.0,
        vlan_share: 0.0,
        start_us,
    };
    let role = site.role;
    let site = site.clone();
    let overlay = move |_first: u64, end_us: u64| -> Result<Vec<Frame>, ward_sim::mix::GenError> {
        let span = end_us.saturating_sub(start_us).max(1_000_000);
        let at = |fraction: f64| start_us + (span as f64 * fraction) as u64;
        let mut rng = Rng::new(seed ^ 0xdeed);
        let mut extra: Vec<Frame> = Vec::new();
        match role {
            Role::Quiet => {}
            Role::EarlyContact => {
                attack::https_visit(&mut extra, &mut rng, ACTOR, site.web_server, "vote.dover-county.example", 44_444, at(0.05))?;
            }
            Role::Scanned => attack::syn_scan(&mut extra, ACTOR, site.web_server, at(0.3))?,
            Role::ScannedAndInjected => {
                attack::syn_scan(&mut extra, ACTOR, site.web_server, at(0.3))?;
                attack::sql_injection(&mut extra, ACTOR, site.web_server, at(0.6))?;
            }
            Role::ScannedAndBadLookup => {
                attack::syn_scan(&mut extra, ACTOR, site.web_server, at(0.3))?;
                attack::dns_lookup(&mut extra, &mut rng, site.workstation, site.resolver, BAD_DOMAIN, at(0.5))?;
            }
        }
        Ok(extra)
    };
    attack::write_capture(path, &opts, overlay).with_context(|| format!("cannot write the demo capture {}", path.display()))
}
