//! What a drill measured: the data the after-action report ([`super::report`]) renders and the
//! JSON/CSV files carry. Filled by the runner ([`super::run`]); no I/O here.
//!
//! Times are Unix milliseconds of the wall clock (`*_ms`), or milliseconds since the drill's
//! start (`*_after_ms`, on the drill's real clock, not the scenario's: at `--speed 60` one real
//! second is one scenario minute, and [`DrillOutcome::speed`] converts).
//!
//! Ratings follow HSEEP's four levels for an objective: **P** performed without challenges,
//! **S** with some challenges, **M** with major challenges, **U** unable to be performed.
//! [`Rating::from_share`] maps the share of cases that met an objective's threshold to a level.

use serde::{Deserialize, Serialize};

/// HSEEP objective ratings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Rating {
    /// Performed without challenges: every case met the threshold.
    P,
    /// Performed with some challenges: at least 90 % did.
    S,
    /// Performed with major challenges: at least 50 % did.
    M,
    /// Unable to be performed: fewer than half did, or nothing could be measured.
    U,
}

impl Rating {
    /// The rating of an objective of which `met` of `total` cases met the threshold. No case at
    /// all is `U`: an objective that cannot be measured was not shown to be performed.
    pub fn from_share(met: usize, total: usize) -> Rating {
        if total == 0 {
            return Rating::U;
        }
        if met == total {
            return Rating::P;
        }
        let share = met as f64 / total as f64;
        if share >= 0.9 {
            Rating::S
        } else if share >= 0.5 {
            Rating::M
        } else {
            Rating::U
        }
    }

    /// The letter.
    pub fn letter(self) -> &'static str {
        match self {
            Rating::P => "P",
            Rating::S => "S",
            Rating::M => "M",
            Rating::U => "U",
        }
    }

    /// HSEEP's words for the rating.
    pub fn meaning(self) -> &'static str {
        match self {
            Rating::P => "Performed without challenges",
            Rating::S => "Performed with some challenges",
            Rating::M => "Performed with major challenges",
            Rating::U => "Unable to be performed",
        }
    }
}

/// Everything a drill measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillOutcome {
    /// The scenario's short name (`2016-scan`) and title.
    pub scenario: String,
    pub title: String,
    /// The scenario's description (what is exercised and why), plain text.
    pub description: String,
    /// When the drill started and ended (Unix ms, wall clock).
    pub started_ms: i64,
    pub finished_ms: i64,
    /// Scenario seconds per real second (`--speed`).
    pub speed: f64,
    /// The hub it ran against: "embedded (SQLite, …)" or its URL.
    pub hub: String,
    /// Jurisdictions taking part, states among them, and how they ran.
    pub jurisdictions: usize,
    pub states: usize,
    pub real_sensors: usize,
    pub simulated_relays: usize,
    /// The objectives with their rating.
    pub objectives: Vec<ObjectiveResult>,
    /// The injects as run.
    pub injects: Vec<InjectResult>,
    /// One row per (inject, jurisdiction) that was targeted or warned.
    pub paths: Vec<PathRecord>,
    /// One row per state taking part.
    pub state_rows: Vec<StateRow>,
    /// What happened, in order (injects, first detections, campaigns, first warnings, acks,
    /// escalations), for the report's timeline. At most a few hundred entries.
    pub timeline: Vec<TimelineEntry>,
    /// What went well, one sentence each, derived from the figures.
    pub strengths: Vec<String>,
    /// What must improve, with the corrective action (the improvement plan).
    pub improvements: Vec<Improvement>,
}

/// One objective and how it went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectiveResult {
    /// Short id from the scenario (`warn-60s`).
    pub id: String,
    /// What it asks, in words ("Every targeted office warned within 60 s").
    pub text: String,
    /// The threshold in scenario seconds.
    pub threshold_secs: f64,
    /// Cases measured and cases that met the threshold.
    pub total: usize,
    pub met: usize,
    /// Median and 90th/99th percentile and worst of the measured times, scenario seconds
    /// (None when nothing was measured).
    pub p50_secs: Option<f64>,
    pub p90_secs: Option<f64>,
    pub p99_secs: Option<f64>,
    pub max_secs: Option<f64>,
    pub rating: Rating,
    /// One sentence on what was measured and what was missing.
    pub detail: String,
}

/// One inject as run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InjectResult {
    /// Its id in the scenario and its offset there (scenario seconds).
    pub id: String,
    pub at_secs: f64,
    /// The attack's name (`port-scan`, `sql-injection`, …) and what it is, in words.
    pub attack: String,
    pub description: String,
    /// The attacker's address or domain.
    pub actor: String,
    /// When it was injected (Unix ms).
    pub injected_ms: i64,
    /// Jurisdictions it targeted, and how many were warned / detected.
    pub targeted: usize,
    pub detected: usize,
    pub warned: usize,
    pub acknowledged: usize,
}

/// How one jurisdiction fared in one inject.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PathRecord {
    pub inject: String,
    pub jurisdiction: String,
    /// Two-letter state (`"FR"`).
    pub state: String,
    /// Whether the jurisdiction runs a real sensor pipeline (else a simulated relay).
    pub real_sensor: bool,
    /// Whether the inject targeted it (false: it was warned without being targeted).
    pub targeted: bool,
    /// Each step, Unix ms; None when it did not happen.
    pub injected_ms: Option<i64>,
    /// The sensor produced the alert (EVE record written).
    pub detected_ms: Option<i64>,
    /// The hub stored the event.
    pub received_ms: Option<i64>,
    /// The campaign that grouped it (id and when it opened).
    pub campaign_id: Option<i64>,
    pub campaign_ms: Option<i64>,
    /// Deliveries to its contacts.
    pub deliveries: Vec<Delivery>,
    /// The first successful delivery of a warning.
    pub warned_ms: Option<i64>,
    /// The acknowledgement, and the action taken.
    pub acked_ms: Option<i64>,
    pub ack_action: Option<String>,
    /// The first escalation step (unacknowledged warning sent on).
    pub escalated_ms: Option<i64>,
    pub outcome: PathOutcome,
}

/// What became of a (inject, jurisdiction) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PathOutcome {
    /// Targeted and warned.
    Warned,
    /// Targeted and never warned (a miss).
    Missed,
    /// Warned without being targeted.
    FalseWarning,
}

impl PathOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            PathOutcome::Warned => "warned",
            PathOutcome::Missed => "missed",
            PathOutcome::FalseWarning => "false warning",
        }
    }
}

/// One delivery to one contact.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    /// `webhook`, `email`, …
    pub channel: String,
    /// The contact, redacted as the hub shows it.
    pub contact: String,
    /// The message kind (`targeted`, `unacked`, `state_targeted`, …).
    pub kind: String,
    pub delivered_ms: Option<i64>,
    /// Set when delivery failed for good (the hub gave up) or is still failing.
    pub error: Option<String>,
}

/// One state's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateRow {
    /// Two-letter code and name.
    pub state: String,
    pub name: String,
    /// Its jurisdictions in the drill, those targeted, those warned.
    pub jurisdictions: usize,
    pub targeted: usize,
    pub warned: usize,
    /// When the state's own office was first told (roll-up), Unix ms.
    pub state_told_ms: Option<i64>,
    /// Median time to warn its targeted jurisdictions, scenario seconds.
    pub median_warn_secs: Option<f64>,
}

/// One line of the timeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at_ms: i64,
    pub what: String,
}

/// One row of the improvement plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Improvement {
    /// The area for improvement (what went wrong, with the figure).
    pub issue: String,
    /// What to do about it.
    pub corrective_action: String,
    /// Who should (a role: "hub operator", "Adams County IT", …).
    pub owner: String,
    /// By when (ISO date).
    pub due: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_follow_the_share_that_met_the_threshold() {
        assert_eq!(Rating::from_share(10, 10), Rating::P);
        assert_eq!(Rating::from_share(9, 10), Rating::S);
        assert_eq!(Rating::from_share(5, 10), Rating::M);
        assert_eq!(Rating::from_share(4, 10), Rating::U);
        assert_eq!(Rating::from_share(0, 0), Rating::U);
    }
}
