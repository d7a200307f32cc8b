//! Disinformation reports and cases (issue #13; docs/disinformation.md). An election official
//! reports a false claim (URLs of the posts, the claim in their words, the truth with a citation,
//! screenshots); reports of the same claim — the same post after URL normalisation, or the same
//! claim in other words — are one *case*, tracked through a status workflow with a timeline.
//!
//! * [`cases`]: URL normalisation (tracking parameters, mobile hosts, platform post ids) and the
//!   claim fingerprint (MinHash over word shingles, LSH bands, anchors) that join reports.
//! * [`images`]: screenshots checked by content (PNG, JPEG, WebP), bounded by their header's
//!   dimensions (no decode: a decompression bomb is refused from its header), metadata stripped,
//!   SHA-256 addressed. The hub never fetches a reported URL (no SSRF).
//! * [`disarm`]: DISARM technique ids (DISARM Foundation, CC BY-SA 4.0) validated against the
//!   framework's STIX bundle.
//! * [`routing`]: who is told of a report, and the messages (through the campaigns' outbox).
//! * [`stix`]: a case as STIX 2.1 (report, observed-data, url, attack-pattern) for the TAXII
//!   publisher and federation, and cases received from peer hubs.
//! * [`api`]: the HTTP routes (intake, reports, cases, status, screenshots) and who sees what.
//! * [`web`]: the dashboard's pages (case list, report form, case page) and the public
//!   "rumor vs reality" page of published cases.
//!
//! Access: a jurisdiction sees the reports it filed and the cases it is part of (as reporter or
//! as a jurisdiction the claim concerns; a state also through its counties). In a case, other
//! jurisdictions' reports show the claim, the truth and the URLs, never who reported them, which
//! office they came from or their screenshots. Analysts see everything. The SQL is in
//! `store/{sqlite,postgres}/disinfo.rs`; matching a report to a case happens in the store's
//! transaction (under a lock on PostgreSQL), so replicas never open two cases for one claim.

pub mod api;
pub mod cases;
pub mod disarm;
pub mod images;
pub mod routing;
pub mod stix;
pub mod web;

use serde::{Deserialize, Serialize};

use crate::model::Millis;

/// What a claim is about; decides its urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Wrong date, time, place or method of voting.
    VotingLogistics,
    /// False eligibility or ID rules.
    Eligibility,
    /// Claims of fraud or a breach in a named office.
    FraudClaim,
    /// Impersonation of an official or an office.
    Impersonation,
    /// Threats to election workers.
    Threat,
    /// Doctored results.
    DoctoredResults,
    Other,
}

impl Category {
    pub const ALL: [Category; 7] =
        [Category::VotingLogistics, Category::Eligibility, Category::FraudClaim, Category::Impersonation, Category::Threat, Category::DoctoredResults, Category::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::VotingLogistics => "voting-logistics",
            Category::Eligibility => "eligibility",
            Category::FraudClaim => "fraud-claim",
            Category::Impersonation => "impersonation",
            Category::Threat => "threat",
            Category::DoctoredResults => "doctored-results",
            Category::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Claims that stop people voting or endanger workers are urgent whatever the reporter says.
    pub fn urgency(self) -> Urgency {
        match self {
            Category::VotingLogistics | Category::Eligibility | Category::Impersonation | Category::Threat => Urgency::High,
            Category::FraudClaim | Category::DoctoredResults | Category::Other => Urgency::Normal,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    Normal,
    High,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Normal => "normal",
            Urgency::High => "high",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "normal" => Some(Urgency::Normal),
            "high" => Some(Urgency::High),
            _ => None,
        }
    }
}

/// Platforms a report may name ("other" for the rest).
pub const PLATFORMS: &[&str] = &["x", "facebook", "instagram", "tiktok", "youtube", "reddit", "telegram", "truth-social", "threads", "bluesky", "whatsapp", "website", "other"];

/// A case's status, in workflow order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseStatus {
    New,
    Triaged,
    /// Referred to a platform or partner (to whom is in the timeline).
    Referred,
    /// The platform's outcome is known.
    Outcome,
    Closed,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 5] = [CaseStatus::New, CaseStatus::Triaged, CaseStatus::Referred, CaseStatus::Outcome, CaseStatus::Closed];
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::New => "new",
            CaseStatus::Triaged => "triaged",
            CaseStatus::Referred => "referred",
            CaseStatus::Outcome => "outcome",
            CaseStatus::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// A platform's answer to a referral.
pub const OUTCOMES: &[&str] = &["removed", "labelled", "no-action", "no-answer"];

/// Whether a case may move from `from` to `to`: forward only (steps may be skipped), and a
/// closed case stays closed.
pub fn transition_allowed(from: CaseStatus, to: CaseStatus) -> bool {
    from != CaseStatus::Closed && to > from
}

/// A screenshot ready to store: validated, metadata stripped, addressed by its SHA-256.
#[derive(Debug, Clone, PartialEq)]
pub struct Screenshot {
    pub sha256: String,
    pub media_type: &'static str,
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

/// A screenshot's description (what listings show).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScreenshotMeta {
    pub sha256: String,
    pub media_type: String,
    pub width: i64,
    pub height: i64,
    pub size: i64,
}

/// A stored screenshot and the jurisdictions whose reports carry it (who may see it).
#[derive(Debug, Clone)]
pub struct StoredScreenshot {
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub jurisdictions: Vec<i64>,
}

/// One report, validated, with everything the store needs to file it and join it to a case.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub jurisdiction_id: i64,
    pub reporter_user_id: i64,
    pub reporter_username: String,
    /// Filed by a hub analyst for `jurisdiction_id`.
    pub on_behalf: bool,
    pub platform: String,
    pub category: Category,
    pub urgency: Urgency,
    pub claim: String,
    pub truth: String,
    pub citation: String,
    pub seen_ms: Option<Millis>,
    pub views: Option<i64>,
    pub shares: Option<i64>,
    pub disarm: Vec<String>,
    /// (as given, normalised key), in the report's order, keys distinct.
    pub urls: Vec<(String, String)>,
    /// The jurisdictions the claim concerns (at least the reporter's by default), distinct.
    pub concerns: Vec<i64>,
    pub screenshots: Vec<Screenshot>,
    pub fingerprint: cases::Fingerprint,
}

/// How reports join cases.
#[derive(Debug, Clone, PartialEq)]
pub struct CasePolicy {
    /// Estimated Jaccard similarity of the claims' shingles at or above which a claim joins a case.
    pub min_similarity: f64,
}

impl Default for CasePolicy {
    fn default() -> Self {
        CasePolicy { min_similarity: cases::DEFAULT_MIN_SIMILARITY }
    }
}

/// A stored report. `reporter_username` is `None` when the reader may not see who reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub id: i64,
    pub case_id: i64,
    pub jurisdiction_id: i64,
    pub reporter_username: String,
    pub on_behalf: bool,
    pub platform: String,
    pub category: String,
    pub urgency: String,
    pub claim: String,
    pub truth: String,
    pub citation: String,
    pub seen_ms: Option<Millis>,
    pub views: Option<i64>,
    pub shares: Option<i64>,
    pub disarm: Vec<String>,
    pub urls: Vec<String>,
    pub concerns: Vec<i64>,
    pub screenshots: Vec<ScreenshotMeta>,
    pub created_ms: Millis,
}

/// A case: the claim, its state, and every jurisdiction in it (reporting or concerned).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Case {
    pub id: i64,
    pub claim: String,
    pub category: String,
    pub urgency: String,
    pub status: String,
    pub reports: i64,
    pub jurisdictions: Vec<i64>,
    pub created_ms: Millis,
    pub updated_ms: Millis,
}

/// One entry of a case's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseEvent {
    pub id: i64,
    /// `opened`, `reported` or `status`.
    pub kind: String,
    pub status: Option<String>,
    pub report_id: Option<i64>,
    pub jurisdiction_id: Option<i64>,
    pub referred_to: Option<String>,
    pub outcome: Option<String>,
    pub note: Option<String>,
    pub by_user: String,
    pub created_ms: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseDetail {
    pub case: Case,
    pub reports: Vec<Report>,
    pub timeline: Vec<CaseEvent>,
}

/// What filing a report did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportOutcome {
    pub report: Report,
    pub case: Case,
    pub new_case: bool,
    /// How the report joined its case: `new`, `url` or `claim`.
    pub joined_by: String,
    /// The case's jurisdictions before this report (empty for a new case).
    pub jurisdictions_before: Vec<i64>,
    /// Notifications enqueued with the report ([`routing`]).
    pub notifications: usize,
}

/// An analyst's change of a case's status.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub status: CaseStatus,
    pub referred_to: Option<String>,
    pub outcome: Option<String>,
    pub note: Option<String>,
    pub by_user: String,
}
