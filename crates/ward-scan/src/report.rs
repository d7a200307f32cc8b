//! The weekly report: a report card with week-over-week changes, known-exploited first, risky
//! services, findings by severity with fix and deadline, overdue, SVG trend charts, appendices
//! (new, fixed, still open, re-detected), methodology, and CSV and JSON attachments; written as
//! HTML (askama) and PDF (printpdf with the PDF standard Helvetica font, so nothing is fetched or
//! installed to produce it).
//!
//! Input is the history store only, so the same report can be made again later from the same
//! state. Findings marked false positive (and not expired) are left out and counted.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use askama::Template;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::finding::Severity;
use crate::history::{History, ScanSummary, Track, TrackStatus};

/// Weeks shown in the trend charts.
pub const TREND_WEEKS: usize = 8;
/// The report period.
pub const PERIOD_DAYS: i64 = 7;
/// A scan is compared with the latest one at least this many days older ("a week before").
pub const COMPARE_MIN_DAYS: i64 = 6;
/// Most rows in one table of the PDF before it says "and N more (see findings.csv)".
pub(crate) const PDF_MAX_ROWS_PUBLIC: usize = 60;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    #[error("no scans{} in the history at {state}: run ward scan{} first", .jurisdiction.as_ref().map(|j| format!(" for jurisdiction {j:?}")).unwrap_or_default(), .jurisdiction.as_ref().map(|j| format!(" --jurisdiction {j:?}")).unwrap_or_default())]
    NoScans { jurisdiction: Option<String>, state: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
    #[error("cannot render the report: {0}")]
    Render(String),
}

/// One finding row as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub key: String,
    pub asset: String,
    pub hostname: String,
    pub port: String,
    pub protocol: String,
    pub severity: String,
    pub confidence: String,
    pub name: String,
    pub description: String,
    pub evidence: String,
    pub solution: String,
    pub references: Vec<String>,
    pub cve: String,
    pub cvss: String,
    pub known_exploited: bool,
    pub kev_due: String,
    pub first_seen: String,
    pub last_seen: String,
    pub age_days: i64,
    pub deadline: String,
    pub overdue: bool,
    pub fixed_at: String,
    pub days_to_fix: String,
    pub status: String,
}

/// One line of the report card.
#[derive(Debug, Clone, Serialize)]
pub struct CardLine {
    pub label: String,
    pub this_week: usize,
    /// What the report prints for this week ("3", or "not checked").
    pub this_week_text: String,
    pub last_week: Option<usize>,
    pub last_week_text: String,
    pub change: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeverityGroup {
    pub severity: String,
    pub rows: Vec<Row>,
}

/// Everything in the weekly report.
#[derive(Debug, Clone, Serialize, Template)]
#[template(path = "weekly.html")]
pub struct WeeklyReport {
    pub jurisdiction: String,
    pub generated: String,
    pub period_start: String,
    pub period_end: String,
    pub last_scan: String,
    pub card: Vec<CardLine>,
    pub known_exploited: Vec<Row>,
    pub risky_services: Vec<Row>,
    pub by_severity: Vec<SeverityGroup>,
    pub overdue: Vec<Row>,
    pub new: Vec<Row>,
    pub fixed: Vec<Row>,
    pub still_open: Vec<Row>,
    pub redetected: Vec<Row>,
    pub false_positives_hidden: usize,
    pub open_total: usize,
    /// Whether the latest scan joined a KEV catalog, and which ("CISA KEV catalog 2025.08.25 (…)").
    pub kev_checked: bool,
    pub kev_catalog: String,
    pub schedule: Vec<(String, String)>,
    #[serde(skip)]
    pub chart_findings: String,
    #[serde(skip)]
    pub chart_hosts: String,
}

fn row(track: &Track, now: DateTime<Utc>) -> Row {
    let f = &track.finding;
    Row {
        key: f.key(),
        asset: f.asset.clone(),
        hostname: f.hostname.clone().unwrap_or_default(),
        port: f.port.map(|p| p.to_string()).unwrap_or_default(),
        protocol: f.protocol.clone(),
        severity: f.severity.to_string(),
        confidence: format!("{:?}", f.confidence).to_lowercase(),
        name: f.name.clone(),
        description: f.description.clone(),
        evidence: f.evidence.clone(),
        solution: f.solution.clone(),
        references: f.references.clone(),
        cve: f.cve.clone().unwrap_or_default(),
        cvss: f.cvss.map(|c| format!("{c:.1}")).unwrap_or_default(),
        known_exploited: f.known_exploited,
        kev_due: f.kev_due.map(|d| d.to_string()).unwrap_or_default(),
        first_seen: track.first_seen.format("%Y-%m-%d").to_string(),
        last_seen: track.last_seen.format("%Y-%m-%d").to_string(),
        age_days: track.age_days(now),
        deadline: track.deadline().map(|d| d.to_string()).unwrap_or_default(),
        overdue: track.overdue(now),
        fixed_at: track.fixed_at.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default(),
        days_to_fix: track.days_to_fix().map(|d| d.to_string()).unwrap_or_default(),
        status: match track.status {
            TrackStatus::Open => "open".into(),
            TrackStatus::Fixed => "fixed".into(),
        },
    }
}

/// Order of work: known-exploited, then severity, then overdue, then oldest.
fn priority(a: &Track, b: &Track) -> std::cmp::Ordering {
    b.finding.known_exploited.cmp(&a.finding.known_exploited)
        .then(b.finding.severity.cmp(&a.finding.severity))
        .then(a.first_seen.cmp(&b.first_seen))
        .then(a.finding.asset.cmp(&b.finding.asset))
        .then(a.finding.port.cmp(&b.finding.port))
}

fn change(now: usize, before: Option<usize>) -> String {
    match before {
        None => "first report".into(),
        Some(b) if b == now => "no change".into(),
        Some(b) if now > b => format!("up {}", now - b),
        Some(b) => format!("down {}", b - now),
    }
}

/// Build the report from the history.
pub fn build_weekly(history: &History, jurisdiction: Option<&str>, now: DateTime<Utc>, state: &Path) -> Result<WeeklyReport, ReportError> {
    let in_scope = |j: &Option<String>| jurisdiction.is_none() || j.as_deref() == jurisdiction;
    let scans: Vec<&ScanSummary> = history.scans.iter().filter(|s| in_scope(&s.jurisdiction)).collect();
    let Some(latest) = scans.last() else {
        return Err(ReportError::NoScans { jurisdiction: jurisdiction.map(str::to_string), state: state.display().to_string() });
    };
    let period_start = now - Duration::days(PERIOD_DAYS);
    // "A week before" is the latest scan at least COMPARE_MIN_DAYS older than this one; a scan
    // from a minute earlier is no week before, and without one the card says so.
    let previous = scans.iter().rev().find(|s| s.at <= latest.at - Duration::days(COMPARE_MIN_DAYS)).copied();
    let today = now.date_naive();
    let mut tracks: Vec<&Track> = history.tracks.values().filter(|t| in_scope(&t.jurisdiction)).collect();
    let hidden = tracks.iter().filter(|t| t.status == TrackStatus::Open && history.is_false_positive(&t.finding.key(), today)).count();
    tracks.retain(|t| !history.is_false_positive(&t.finding.key(), today));
    tracks.sort_by(|a, b| priority(a, b));
    let open: Vec<&Track> = tracks.iter().copied().filter(|t| t.status == TrackStatus::Open).collect();
    let rows = |list: &mut dyn Iterator<Item = &&Track>| -> Vec<Row> { list.map(|t| row(t, now)).collect() };
    let known_exploited = rows(&mut open.iter().filter(|t| t.finding.known_exploited));
    let risky_services = rows(&mut open.iter().filter(|t| t.finding.check.starts_with("exposed.") || t.finding.check.starts_with("noauth.")));
    let by_severity = Severity::ALL_DESC
        .iter()
        .map(|s| SeverityGroup { severity: s.to_string(), rows: rows(&mut open.iter().filter(|t| t.finding.severity == *s)) })
        .filter(|g| !g.rows.is_empty())
        .collect();
    let overdue = rows(&mut open.iter().filter(|t| t.overdue(now)));
    let new = rows(&mut open.iter().filter(|t| t.first_seen >= period_start && t.redetections == 0));
    let redetected = rows(&mut open.iter().filter(|t| t.redetected_at.is_some_and(|r| r >= period_start)));
    let still_open = rows(&mut open.iter().filter(|t| t.first_seen < period_start && !t.redetected_at.is_some_and(|r| r >= period_start)));
    let fixed = rows(&mut tracks.iter().filter(|t| t.status == TrackStatus::Fixed && t.fixed_at.is_some_and(|f| f >= period_start)));
    let sev = ["critical", "high", "medium", "low"];
    let mut card = vec![
        CardLine { label: "Hosts with open ports".into(), this_week: latest.hosts, last_week: previous.map(|p| p.hosts), last_week_text: String::new(), change: String::new(), this_week_text: String::new() },
        CardLine { label: "Services found".into(), this_week: latest.services, last_week: previous.map(|p| p.services), last_week_text: String::new(), change: String::new(), this_week_text: String::new() },
        CardLine { label: "Vulnerable hosts".into(), this_week: latest.vulnerable_hosts, last_week: previous.map(|p| p.vulnerable_hosts), last_week_text: String::new(), change: String::new(), this_week_text: String::new() },
        CardLine { label: "Known-exploited vulnerabilities".into(), this_week: latest.known_exploited, last_week: previous.map(|p| p.known_exploited), last_week_text: String::new(), change: String::new(), this_week_text: String::new() },
    ];
    for (i, name) in sev.iter().enumerate() {
        card.push(CardLine { label: format!("Findings: {name}"), this_week: latest.by_severity[i], last_week: previous.map(|p| p.by_severity[i]), last_week_text: String::new(), change: String::new(), this_week_text: String::new() });
    }
    let kev_checked = latest.kev_catalog.is_some();
    for line in &mut card {
        line.this_week_text = line.this_week.to_string();
        if line.label.starts_with("Known-exploited") && !kev_checked {
            // Zero known-exploited findings from a scan that had no catalog means nothing.
            line.this_week_text = "not checked".into();
        }
        line.change = change(line.this_week, line.last_week);
        line.last_week_text = line.last_week.map(|v| v.to_string()).unwrap_or_else(|| "no scan 6+ days earlier".into());
    }
    let weekly = weekly_points(&scans, now);
    let chart_findings = line_chart(
        "Open findings by severity, last 8 weeks",
        &weekly,
        &[("critical", "#8b0000", &|s: &ScanSummary| s.by_severity[0]), ("high", "#d9480f", &|s| s.by_severity[1]), ("medium", "#e0a800", &|s| s.by_severity[2]), ("low", "#1971c2", &|s| s.by_severity[3])],
    );
    let chart_hosts = line_chart(
        "Hosts and vulnerable hosts, last 8 weeks",
        &weekly,
        &[("hosts", "#495057", &|s: &ScanSummary| s.hosts), ("vulnerable hosts", "#c92a2a", &|s| s.vulnerable_hosts), ("services", "#2b8a3e", &|s| s.services)],
    );
    let schedule = history
        .rescan_schedule()
        .into_iter()
        .filter(|(asset, _)| tracks.iter().any(|t| t.finding.asset == *asset))
        .map(|(asset, due)| (asset, due.format("%Y-%m-%d %H:%M UTC").to_string()))
        .collect();
    Ok(WeeklyReport {
        jurisdiction: jurisdiction.unwrap_or("all jurisdictions").to_string(),
        generated: now.format("%Y-%m-%d %H:%M UTC").to_string(),
        period_start: period_start.format("%Y-%m-%d").to_string(),
        period_end: now.format("%Y-%m-%d").to_string(),
        last_scan: latest.at.format("%Y-%m-%d %H:%M UTC").to_string(),
        card,
        known_exploited,
        risky_services,
        by_severity,
        overdue,
        new,
        fixed,
        still_open,
        redetected,
        false_positives_hidden: hidden,
        open_total: open.len(),
        kev_checked,
        kev_catalog: latest.kev_catalog.as_ref().map_or_else(|| "not checked".to_string(), |k| k.label()),
        schedule,
        chart_findings,
        chart_hosts,
    })
}

/// The last scan of each of the last [`TREND_WEEKS`] weeks (None for a week without a scan).
fn weekly_points<'a>(scans: &[&'a ScanSummary], now: DateTime<Utc>) -> Vec<(String, Option<&'a ScanSummary>)> {
    (0..TREND_WEEKS)
        .rev()
        .map(|k| {
            let end = now - Duration::days(PERIOD_DAYS * k as i64);
            let start = end - Duration::days(PERIOD_DAYS);
            let last = scans.iter().rev().find(|s| s.at > start && s.at <= end).copied();
            (end.format("%m-%d").to_string(), last)
        })
        .collect()
}

type Series<'a> = (&'a str, &'a str, &'a dyn Fn(&ScanSummary) -> usize);

/// A small SVG line chart; weeks without a scan leave a gap.
pub fn line_chart(title: &str, points: &[(String, Option<&ScanSummary>)], series: &[Series<'_>]) -> String {
    let (w, h, left, right, top, bottom) = (640.0f64, 240.0f64, 40.0, 120.0, 28.0, 30.0);
    let max = points.iter().filter_map(|(_, s)| *s).flat_map(|s| series.iter().map(move |(_, _, f)| f(s))).max().unwrap_or(0).max(1) as f64;
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let step = if points.len() > 1 { plot_w / (points.len() - 1) as f64 } else { 0.0 };
    let x = |i: usize| left + step * i as f64;
    let y = |v: usize| top + plot_h - plot_h * v as f64 / max;
    let mut svg = String::new();
    let _ = write!(svg, r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{}">"#, html_escape(title));
    let _ = write!(svg, r#"<text x="{left}" y="16" font-family="sans-serif" font-size="13" font-weight="bold">{}</text>"#, html_escape(title));
    let _ = write!(svg, r##"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#adb5bd"/><line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="#adb5bd"/>"##, top + plot_h, left + plot_w, top + plot_h, top + plot_h);
    let _ = write!(svg, r#"<text x="{}" y="{}" font-family="sans-serif" font-size="10" text-anchor="end">{}</text><text x="{}" y="{}" font-family="sans-serif" font-size="10" text-anchor="end">0</text>"#, left - 4.0, top + 4.0, max as usize, left - 4.0, top + plot_h);
    for (i, (label, _)) in points.iter().enumerate() {
        let _ = write!(svg, r#"<text x="{:.1}" y="{}" font-family="sans-serif" font-size="10" text-anchor="middle">{label}</text>"#, x(i), h - 10.0);
    }
    for (n, (name, color, value)) in series.iter().enumerate() {
        let mut segment = String::new();
        for (i, (_, summary)) in points.iter().enumerate() {
            match summary {
                Some(s) => {
                    let _ = write!(segment, "{:.1},{:.1} ", x(i), y(value(s)));
                    let _ = write!(svg, r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#, x(i), y(value(s)));
                }
                None => {
                    if !segment.is_empty() {
                        let _ = write!(svg, r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#, segment.trim_end());
                        segment.clear();
                    }
                }
            }
        }
        if !segment.is_empty() {
            let _ = write!(svg, r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#, segment.trim_end());
        }
        let ly = top + 14.0 * n as f64 + 6.0;
        let _ = write!(svg, r#"<rect x="{}" y="{}" width="10" height="10" fill="{color}"/><text x="{}" y="{}" font-family="sans-serif" font-size="11">{name}</text>"#, w - right + 10.0, ly - 8.0, w - right + 24.0, ly);
    }
    svg.push_str("</svg>");
    svg
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// One CSV field, quoted when needed (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// findings.csv: every open finding, in the order of work.
pub fn findings_csv(report: &WeeklyReport) -> String {
    let mut out = String::from("ip,port,protocol,known_exploited,severity,initial_detection,latest_detection,age_days,cvss,cve,name,description,solution\r\n");
    for group in &report.by_severity {
        for r in &group.rows {
            let fields = [
                r.asset.clone(), r.port.clone(), r.protocol.clone(), r.known_exploited.to_string(), r.severity.clone(), r.first_seen.clone(),
                r.last_seen.clone(), r.age_days.to_string(), r.cvss.clone(), r.cve.clone(), r.name.clone(), r.description.clone(), r.solution.clone(),
            ];
            out.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
            out.push_str("\r\n");
        }
    }
    out
}

/// Files written by [`write_weekly`].
#[derive(Debug, Clone)]
pub struct WrittenReport {
    pub html: PathBuf,
    pub pdf: PathBuf,
    pub csv: PathBuf,
    pub json: PathBuf,
    pub charts: Vec<PathBuf>,
}

/// The report as HTML and PDF bytes (for the hub's dashboard).
pub fn render_weekly(report: &WeeklyReport) -> Result<(String, Vec<u8>), ReportError> {
    let html = report.render().map_err(|e| ReportError::Render(e.to_string()))?;
    let pdf = crate::pdf::render(report).map_err(ReportError::Render)?;
    Ok((html, pdf))
}

/// Write report.html, report.pdf, findings.csv, findings.json and the two SVG charts to `out`.
pub fn write_weekly(report: &WeeklyReport, out: &Path) -> Result<WrittenReport, ReportError> {
    let write = |name: &str, bytes: &[u8]| -> Result<PathBuf, ReportError> {
        let path = out.join(name);
        std::fs::write(&path, bytes).map_err(|e| ReportError::Write { path: path.display().to_string(), reason: e.to_string() })?;
        Ok(path)
    };
    std::fs::create_dir_all(out).map_err(|e| ReportError::Write { path: out.display().to_string(), reason: e.to_string() })?;
    let html = report.render().map_err(|e| ReportError::Render(e.to_string()))?;
    let json = serde_json::to_string_pretty(report).map_err(|e| ReportError::Render(e.to_string()))?;
    let pdf = crate::pdf::render(report).map_err(ReportError::Render)?;
    Ok(WrittenReport {
        html: write("report.html", html.as_bytes())?,
        csv: write("findings.csv", findings_csv(report).as_bytes())?,
        json: write("findings.json", json.as_bytes())?,
        pdf: write("report.pdf", &pdf)?,
        charts: vec![write("trend-findings.svg", report.chart_findings.as_bytes())?, write("trend-hosts.svg", report.chart_hosts.as_bytes())?],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Confidence, Finding, HostResult, ScanResult};

    fn finding(check: &str, severity: Severity, kev: bool) -> Finding {
        Finding {
            check: check.into(), asset: "192.0.2.1".into(), hostname: None, port: Some(3389), protocol: "tcp".into(), severity,
            confidence: Confidence::Confirmed, name: format!("name of {check}"), description: "plain, \"quoted\" words".into(),
            evidence: "<script>alert(1)</script>".into(), solution: "fix it".into(), references: vec![],
            cve: kev.then(|| "CVE-2021-41773".into()), cvss: kev.then_some(7.5), known_exploited: kev,
            kev_due: kev.then(|| chrono::NaiveDate::from_ymd_opt(2021, 11, 17).unwrap()),
        }
    }

    fn scan(at: DateTime<Utc>, findings: Vec<Finding>) -> ScanResult {
        ScanResult {
            format: 1, jurisdiction: Some("Test County".into()), started: at, finished: at, targets: vec!["192.0.2.1".into()], domains: vec![], ports_per_host: 1000,
            hosts: vec![HostResult { ip: "192.0.2.1".parse().unwrap(), hostname: None, open_ports: vec![3389], services: vec![] }],
            findings,
            kev_catalog: Some(crate::vulns::VulnDb::builtin().kev_info().unwrap().clone()),
        }
    }

    #[test]
    fn weekly_report_orders_work_and_writes_every_file() {
        let now = "2026-03-01T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let mut history = History::default();
        history.apply(&scan(now - Duration::days(20), vec![finding("exposed.rdp", Severity::High, false), finding("tls.expired", Severity::High, false)]), "a");
        history.apply(&scan(now - Duration::days(8), vec![finding("exposed.rdp", Severity::High, false)]), "b");
        history.apply(&scan(now - Duration::days(1), vec![finding("exposed.rdp", Severity::High, false), finding("vuln.cve", Severity::High, true), finding("http.hsts-missing", Severity::Low, false)]), "c");
        let report = build_weekly(&history, Some("Test County"), now, Path::new("/state")).unwrap();
        assert_eq!(report.known_exploited.len(), 1);
        assert_eq!(report.by_severity[0].rows[0].cve, "CVE-2021-41773", "known-exploited first");
        assert_eq!(report.risky_services.len(), 1);
        assert_eq!(report.overdue.len(), 1, "the KEV due date has passed; the RDP finding is 20 days old, inside 30");
        assert_eq!(report.new.len(), 2);
        assert_eq!(report.still_open.len(), 1);
        assert!(report.fixed.is_empty(), "tls.expired was fixed 8 days ago, outside the week");
        let card: Vec<(usize, Option<usize>)> = report.card.iter().map(|c| (c.this_week, c.last_week)).collect();
        assert_eq!(card[5], (2, Some(1)), "high findings: 2 this week, 1 a week before");
        let csv = findings_csv(&report);
        assert!(csv.starts_with("ip,port,protocol,known_exploited,severity,initial_detection,latest_detection,age_days,cvss,cve,name,description,solution\r\n"));
        assert_eq!(csv.lines().count(), 4);
        assert!(csv.contains("\"plain, \"\"quoted\"\" words\""));
        let dir = tempfile::tempdir().unwrap();
        let written = write_weekly(&report, dir.path()).unwrap();
        let html = std::fs::read_to_string(&written.html).unwrap();
        assert!(html.contains("Test County") && html.contains("CVE-2021-41773") && html.contains("<svg"));
        assert!(!html.contains("<script>alert(1)"), "evidence must be escaped");
        let pdf = std::fs::read(&written.pdf).unwrap();
        assert!(pdf.starts_with(b"%PDF-") && pdf.len() > 1000);
        assert!(std::fs::read_to_string(&written.charts[0]).unwrap().contains("polyline"));
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&written.json).unwrap()).unwrap();
        assert_eq!(json["known_exploited"][0]["cve"], "CVE-2021-41773");
        assert!(matches!(build_weekly(&history, Some("Elsewhere"), now, Path::new("/s")), Err(ReportError::NoScans { .. })));
        assert!(report.kev_checked && html.contains("CISA KEV catalog 2025.08.25 (1404 entries, built-in)"), "the report names the catalog it used");
    }

    #[test]
    fn a_scan_a_minute_earlier_is_no_week_before() {
        let now = "2026-03-01T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let mut history = History::default();
        history.apply(&scan(now - Duration::minutes(2), vec![finding("exposed.rdp", Severity::High, false)]), "a");
        history.apply(&scan(now - Duration::minutes(1), vec![finding("exposed.rdp", Severity::High, false)]), "b");
        let report = build_weekly(&history, Some("Test County"), now, Path::new("/state")).unwrap();
        assert!(report.card.iter().all(|c| c.last_week.is_none() && c.last_week_text == "no scan 6+ days earlier"), "{:?}", report.card);
        // With one 6 days older, that one is the week before.
        history.apply(&scan(now - Duration::days(7), vec![]), "c");
        history.scans.sort_by_key(|s| s.at);
        let report = build_weekly(&history, Some("Test County"), now, Path::new("/state")).unwrap();
        assert!(report.card.iter().any(|c| c.last_week == Some(0)));
    }

    #[test]
    fn a_scan_without_a_kev_catalog_says_not_checked_never_none() {
        let now = "2026-03-01T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let mut history = History::default();
        let mut old = scan(now - Duration::days(1), vec![finding("exposed.rdp", Severity::High, false)]);
        old.kev_catalog = None;
        history.apply(&old, "a");
        let report = build_weekly(&history, Some("Test County"), now, Path::new("/state")).unwrap();
        assert!(!report.kev_checked);
        let kev_line = report.card.iter().find(|c| c.label.starts_with("Known-exploited")).unwrap();
        assert_eq!(kev_line.this_week_text, "not checked");
        let dir = tempfile::tempdir().unwrap();
        let written = write_weekly(&report, dir.path()).unwrap();
        let html = std::fs::read_to_string(&written.html).unwrap();
        assert!(html.contains("<strong>Not checked.</strong>") && html.contains("ward scan update-kev"), "{html}");
        let section = &html[html.find("1. Known-exploited").unwrap()..html.find("2. Risky services").unwrap()];
        assert!(!section.contains("None"), "{section}");
    }
}
