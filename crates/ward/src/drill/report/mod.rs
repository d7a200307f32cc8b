//! The drill's after-action report: renders a measured [`DrillOutcome`] (nothing is measured
//! here) as HTML ([`html`]), PDF ([`pdf`]), JSON (the outcome itself) and CSV files, in HSEEP's
//! structure: exercise overview, objectives with their ratings, timeline, analysis, strengths,
//! areas for improvement and the improvement plan (docs/drill-report.md).
//!
//! This module owns the figures both documents share (per-jurisdiction rows, times to warn,
//! chart data), the human formatting of times and durations, and the CSV files.
//!
//! Durations are shown in scenario time (the drill's real clock times `speed`), the unit of the
//! objectives' thresholds; instants as UTC wall-clock times.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::outcome::{DrillOutcome, PathOutcome, PathRecord};

mod html;
mod pdf;
#[cfg(test)]
mod tests;

/// Rows of a long table shown in the HTML report (the CSV files have them all).
pub const HTML_MAX_ROWS: usize = 200;
/// Rows of a long table in the PDF.
pub const PDF_MAX_ROWS: usize = 100;
/// Slowest paths listed.
pub const SLOWEST_PATHS: usize = 20;
/// Timeline entries shown (the outcome promises a few hundred at most).
pub const MAX_TIMELINE: usize = 500;

/// Write the report files into `dir` (created if missing): `report.html`, `report.pdf`,
/// `outcome.json`, `paths.csv`, `jurisdictions.csv`, `states.csv`, `objectives.csv`. Returns
/// their paths in that order.
pub fn write_all(outcome: &DrillOutcome, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let figures = Figures::new(outcome);
    let mut written = Vec::new();
    let mut put = |name: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    put("report.html", html::render(outcome, &figures).as_bytes())?;
    put("report.pdf", &pdf::render(outcome, &figures).map_err(|e| anyhow::anyhow!("drawing the PDF: {e}"))?)?;
    put("outcome.json", &serde_json::to_vec_pretty(outcome)?)?;
    put("paths.csv", &paths_csv(outcome)?)?;
    put("jurisdictions.csv", &jurisdictions_csv(&figures)?)?;
    put("states.csv", &states_csv(outcome)?)?;
    put("objectives.csv", &objectives_csv(outcome)?)?;
    Ok(written)
}

/// One jurisdiction's figures over every inject.
#[derive(Debug, Clone)]
pub(crate) struct JurisdictionRow {
    pub name: String,
    pub state: String,
    pub real_sensor: bool,
    /// Injects that targeted it, and of those, warned and missed.
    pub targeted: usize,
    pub warned: usize,
    pub missed: usize,
    /// Warnings without being targeted.
    pub false_warnings: usize,
    /// Median time to warn over its warned paths, scenario seconds.
    pub median_warn_secs: Option<f64>,
    /// Warnings it acknowledged, and escalations (warnings sent on unacknowledged).
    pub acknowledged: usize,
    pub escalated: usize,
}

/// What both documents draw from the outcome.
pub(crate) struct Figures {
    /// Sorted by state, then name.
    pub jurisdictions: Vec<JurisdictionRow>,
    /// Indexes into `jurisdictions` of those that need attention (a miss, a false warning, or
    /// among the slowest), worst first.
    pub attention: Vec<usize>,
    /// Times to warn of every warned targeted path, scenario seconds.
    pub warn_times: Vec<f64>,
    /// Indexes into `outcome.paths`: misses, false warnings, and the slowest warned paths.
    pub misses: Vec<usize>,
    pub false_warnings: Vec<usize>,
    pub slowest: Vec<usize>,
    pub histogram: Histogram,
    pub cumulative: Cumulative,
}

/// The time-to-warn distribution: `counts[i]` paths took `[i*bin, (i+1)*bin)` scenario seconds.
pub(crate) struct Histogram {
    pub bin_secs: f64,
    pub counts: Vec<usize>,
}

/// Warned jurisdictions over time: (scenario seconds since the first inject, jurisdictions
/// warned by then), one step per jurisdiction's first warning, at most [`Cumulative::MAX_POINTS`].
pub(crate) struct Cumulative {
    pub points: Vec<(f64, usize)>,
    /// Jurisdictions warned in all (the last point's count).
    pub total: usize,
    /// The x axis's end.
    pub max_secs: f64,
}

impl Cumulative {
    pub const MAX_POINTS: usize = 1000;
}

impl Figures {
    pub fn new(o: &DrillOutcome) -> Figures {
        let mut by_name: BTreeMap<(&str, &str), (JurisdictionRow, Vec<f64>)> = BTreeMap::new();
        let mut warn_times = Vec::new();
        let mut first_warned: BTreeMap<&str, i64> = BTreeMap::new();
        for p in &o.paths {
            let (row, times) = by_name.entry((p.state.as_str(), p.jurisdiction.as_str())).or_insert_with(|| {
                (
                    JurisdictionRow {
                        name: p.jurisdiction.clone(),
                        state: p.state.clone(),
                        real_sensor: p.real_sensor,
                        targeted: 0,
                        warned: 0,
                        missed: 0,
                        false_warnings: 0,
                        median_warn_secs: None,
                        acknowledged: 0,
                        escalated: 0,
                    },
                    Vec::new(),
                )
            });
            if p.targeted {
                row.targeted += 1;
            }
            match p.outcome {
                PathOutcome::Warned => row.warned += 1,
                PathOutcome::Missed => row.missed += 1,
                PathOutcome::FalseWarning => row.false_warnings += 1,
            }
            if p.acked_ms.is_some() {
                row.acknowledged += 1;
            }
            if p.escalated_ms.is_some() {
                row.escalated += 1;
            }
            if let Some(t) = time_to_warn(o, p) {
                times.push(t);
                warn_times.push(t);
            }
            if p.outcome == PathOutcome::Warned {
                if let Some(w) = p.warned_ms {
                    let e = first_warned.entry(p.jurisdiction.as_str()).or_insert(w);
                    *e = (*e).min(w);
                }
            }
        }
        let jurisdictions: Vec<JurisdictionRow> = by_name
            .into_values()
            .map(|(mut row, mut times)| {
                row.median_warn_secs = median(&mut times);
                row
            })
            .collect();

        // Attention: misses, false warnings, then the slowest medians.
        let mut slow: Vec<usize> = (0..jurisdictions.len()).filter(|&i| jurisdictions[i].median_warn_secs.is_some()).collect();
        slow.sort_by(|&a, &b| cmp_f64(jurisdictions[b].median_warn_secs, jurisdictions[a].median_warn_secs));
        slow.truncate(SLOWEST_PATHS);
        let mut attention: Vec<usize> = (0..jurisdictions.len())
            .filter(|&i| jurisdictions[i].missed > 0 || jurisdictions[i].false_warnings > 0 || slow.contains(&i))
            .collect();
        attention.sort_by(|&a, &b| {
            let (x, y) = (&jurisdictions[a], &jurisdictions[b]);
            y.missed.cmp(&x.missed).then(y.false_warnings.cmp(&x.false_warnings)).then(cmp_f64(y.median_warn_secs, x.median_warn_secs))
        });

        let misses = (0..o.paths.len()).filter(|&i| o.paths[i].outcome == PathOutcome::Missed).collect();
        let false_warnings = (0..o.paths.len()).filter(|&i| o.paths[i].outcome == PathOutcome::FalseWarning).collect();
        let mut slowest: Vec<usize> = (0..o.paths.len()).filter(|&i| time_to_warn(o, &o.paths[i]).is_some()).collect();
        slowest.sort_by(|&a, &b| cmp_f64(time_to_warn(o, &o.paths[b]), time_to_warn(o, &o.paths[a])));
        slowest.truncate(SLOWEST_PATHS);

        let histogram = Histogram::new(&warn_times);
        let first_inject = o.injects.iter().map(|i| i.injected_ms).min().unwrap_or(o.started_ms);
        let cumulative = Cumulative::new(o, first_inject, first_warned.into_values().collect());
        Figures { jurisdictions, attention, warn_times, misses, false_warnings, slowest, histogram, cumulative }
    }
}

impl Histogram {
    fn new(times: &[f64]) -> Histogram {
        let max = times.iter().copied().fold(0.0_f64, f64::max);
        if times.is_empty() {
            return Histogram { bin_secs: 1.0, counts: Vec::new() };
        }
        let bin_secs = nice_step(max / 20.0);
        let bins = ((max / bin_secs).floor() as usize + 1).min(40);
        let mut counts = vec![0; bins];
        for &t in times {
            let i = ((t / bin_secs).floor() as usize).min(bins - 1);
            counts[i] += 1;
        }
        Histogram { bin_secs, counts }
    }
}

impl Cumulative {
    fn new(o: &DrillOutcome, first_inject_ms: i64, mut firsts: Vec<i64>) -> Cumulative {
        firsts.sort_unstable();
        let total = firsts.len();
        let secs = |ms: i64| ((ms - first_inject_ms).max(0) as f64 / 1000.0) * o.speed.max(0.0);
        let mut points: Vec<(f64, usize)> = firsts.iter().enumerate().map(|(i, &ms)| (secs(ms), i + 1)).collect();
        if points.len() > Cumulative::MAX_POINTS {
            let step = points.len().div_ceil(Cumulative::MAX_POINTS);
            let last = *points.last().expect("non-empty");
            points = points.into_iter().step_by(step).collect();
            if points.last() != Some(&last) {
                points.push(last);
            }
        }
        let end = secs(o.finished_ms.max(first_inject_ms));
        let max_secs = points.last().map(|p| p.0).unwrap_or(0.0).max(end).max(1.0);
        Cumulative { points, total, max_secs }
    }
}

/// The smallest 1, 2 or 5 times a power of ten at least `x` (at least 0.1).
fn nice_step(x: f64) -> f64 {
    let x = x.max(0.1);
    let p = 10f64.powf(x.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= x {
            return m * p;
        }
    }
    10.0 * p
}

fn cmp_f64(a: Option<f64>, b: Option<f64>) -> std::cmp::Ordering {
    a.unwrap_or(f64::NEG_INFINITY).partial_cmp(&b.unwrap_or(f64::NEG_INFINITY)).unwrap_or(std::cmp::Ordering::Equal)
}

/// The median of `v` (sorted in place), None when empty.
pub(crate) fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// A real-clock span in milliseconds as scenario seconds.
pub(crate) fn scenario_secs(o: &DrillOutcome, ms: i64) -> f64 {
    ms as f64 / 1000.0 * if o.speed.is_finite() && o.speed > 0.0 { o.speed } else { 1.0 }
}

/// Scenario seconds from the inject to the first successful warning of a targeted path.
pub(crate) fn time_to_warn(o: &DrillOutcome, p: &PathRecord) -> Option<f64> {
    if p.outcome != PathOutcome::Warned {
        return None;
    }
    Some(scenario_secs(o, p.warned_ms? - p.injected_ms?))
}

/// Scenario seconds from the inject to a later step of the same path.
pub(crate) fn after_inject(o: &DrillOutcome, p: &PathRecord, step: Option<i64>) -> Option<f64> {
    Some(scenario_secs(o, step? - p.injected_ms?))
}

/// `2026-12-08 03:14:05 UTC`.
pub(crate) fn fmt_utc(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        None => "(invalid time)".to_string(),
    }
}

/// `0 s`, `0.4 s`, `4.2 s`, `42 s`, `1 min`, `3 min 10 s`, `2 h 5 min`, `3 d 4 h`.
pub(crate) fn fmt_dur(secs: f64) -> String {
    if !secs.is_finite() {
        return "n/a".to_string();
    }
    let neg = if secs < 0.0 { "-" } else { "" };
    let s = secs.abs();
    let text = if s == 0.0 {
        "0 s".to_string()
    } else if s < 10.0 {
        format!("{s:.1} s")
    } else if s < 60.0 {
        format!("{} s", s.round() as u64)
    } else if s < 3600.0 {
        let t = s.round() as u64;
        if t % 60 == 0 {
            format!("{} min", t / 60)
        } else {
            format!("{} min {} s", t / 60, t % 60)
        }
    } else if s < 86400.0 {
        let t = (s / 60.0).round() as u64;
        if t % 60 == 0 {
            format!("{} h", t / 60)
        } else {
            format!("{} h {} min", t / 60, t % 60)
        }
    } else {
        let t = (s / 3600.0).round() as u64;
        format!("{} d {} h", t / 24, t % 24)
    };
    format!("{neg}{text}")
}

pub(crate) fn fmt_opt_dur(secs: Option<f64>) -> String {
    secs.map(fmt_dur).unwrap_or_else(|| "-".to_string())
}

/// `3 of 4 delivered (webhook, email); 1 failed: timeout`.
pub(crate) fn deliveries_summary(p: &PathRecord) -> String {
    if p.deliveries.is_empty() {
        return "none".to_string();
    }
    let delivered = p.deliveries.iter().filter(|d| d.delivered_ms.is_some()).count();
    let mut channels: Vec<&str> = p.deliveries.iter().map(|d| d.channel.as_str()).collect();
    channels.sort_unstable();
    channels.dedup();
    let mut s = format!("{delivered} of {} delivered ({})", p.deliveries.len(), channels.join(", "));
    let failed: Vec<&str> = p.deliveries.iter().filter_map(|d| d.error.as_deref()).collect();
    if !failed.is_empty() {
        s.push_str(&format!("; {} failed: {}", failed.len(), failed[0]));
    }
    s
}

/// Where a missed path stopped.
pub(crate) fn stopped_at(p: &PathRecord) -> String {
    if p.detected_ms.is_none() {
        "not detected by the sensor".to_string()
    } else if p.received_ms.is_none() {
        "detected, never stored by the hub".to_string()
    } else if p.campaign_ms.is_none() {
        "stored, not grouped into a campaign".to_string()
    } else if let Some(e) = p.deliveries.iter().find_map(|d| d.error.as_deref()) {
        format!("warning not delivered: {e}")
    } else if p.deliveries.is_empty() {
        "campaign opened, no warning sent".to_string()
    } else {
        "warning sent, not delivered".to_string()
    }
}

pub(crate) fn sensor_kind(real: bool) -> &'static str {
    if real {
        "real sensor"
    } else {
        "simulated relay"
    }
}

fn opt_ms(v: Option<i64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn opt_secs(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}")).unwrap_or_default()
}

fn finish(w: csv::Writer<Vec<u8>>) -> anyhow::Result<Vec<u8>> {
    w.into_inner().map_err(|e| anyhow::anyhow!("writing CSV: {e}"))
}

/// One row per path; times are Unix ms (empty when the step did not happen), durations
/// scenario seconds since the inject.
pub(crate) fn paths_csv(o: &DrillOutcome) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "inject",
        "jurisdiction",
        "state",
        "real_sensor",
        "targeted",
        "outcome",
        "injected_ms",
        "detected_ms",
        "received_ms",
        "campaign_id",
        "campaign_ms",
        "warned_ms",
        "acked_ms",
        "ack_action",
        "escalated_ms",
        "time_to_warn_secs",
        "time_to_ack_secs",
        "deliveries",
        "delivered",
        "failed",
        "channels",
        "kinds",
        "first_error",
    ])?;
    for p in &o.paths {
        let delivered = p.deliveries.iter().filter(|d| d.delivered_ms.is_some()).count();
        let failed = p.deliveries.iter().filter(|d| d.error.is_some()).count();
        let mut channels: Vec<&str> = p.deliveries.iter().map(|d| d.channel.as_str()).collect();
        channels.sort_unstable();
        channels.dedup();
        let mut kinds: Vec<&str> = p.deliveries.iter().map(|d| d.kind.as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        w.write_record([
            p.inject.clone(),
            p.jurisdiction.clone(),
            p.state.clone(),
            p.real_sensor.to_string(),
            p.targeted.to_string(),
            p.outcome.as_str().to_string(),
            opt_ms(p.injected_ms),
            opt_ms(p.detected_ms),
            opt_ms(p.received_ms),
            opt_ms(p.campaign_id),
            opt_ms(p.campaign_ms),
            opt_ms(p.warned_ms),
            opt_ms(p.acked_ms),
            p.ack_action.clone().unwrap_or_default(),
            opt_ms(p.escalated_ms),
            opt_secs(time_to_warn(o, p)),
            opt_secs(after_inject(o, p, p.acked_ms)),
            p.deliveries.len().to_string(),
            delivered.to_string(),
            failed.to_string(),
            channels.join(";"),
            kinds.join(";"),
            p.deliveries.iter().find_map(|d| d.error.clone()).unwrap_or_default(),
        ])?;
    }
    finish(w)
}

pub(crate) fn jurisdictions_csv(f: &Figures) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "jurisdiction",
        "state",
        "real_sensor",
        "injects_targeted",
        "warned",
        "missed",
        "false_warnings",
        "median_time_to_warn_secs",
        "acknowledged",
        "escalated",
    ])?;
    for j in &f.jurisdictions {
        w.write_record([
            j.name.clone(),
            j.state.clone(),
            j.real_sensor.to_string(),
            j.targeted.to_string(),
            j.warned.to_string(),
            j.missed.to_string(),
            j.false_warnings.to_string(),
            opt_secs(j.median_warn_secs),
            j.acknowledged.to_string(),
            j.escalated.to_string(),
        ])?;
    }
    finish(w)
}

pub(crate) fn states_csv(o: &DrillOutcome) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["state", "name", "jurisdictions", "targeted", "warned", "state_told_ms", "median_time_to_warn_secs"])?;
    for s in &o.state_rows {
        w.write_record([
            s.state.clone(),
            s.name.clone(),
            s.jurisdictions.to_string(),
            s.targeted.to_string(),
            s.warned.to_string(),
            opt_ms(s.state_told_ms),
            opt_secs(s.median_warn_secs),
        ])?;
    }
    finish(w)
}

pub(crate) fn objectives_csv(o: &DrillOutcome) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "id",
        "objective",
        "threshold_secs",
        "total",
        "met",
        "p50_secs",
        "p90_secs",
        "p99_secs",
        "max_secs",
        "rating",
        "rating_meaning",
        "detail",
    ])?;
    for ob in &o.objectives {
        w.write_record([
            ob.id.clone(),
            ob.text.clone(),
            format!("{:.3}", ob.threshold_secs),
            ob.total.to_string(),
            ob.met.to_string(),
            opt_secs(ob.p50_secs),
            opt_secs(ob.p90_secs),
            opt_secs(ob.p99_secs),
            opt_secs(ob.max_secs),
            ob.rating.letter().to_string(),
            ob.rating.meaning().to_string(),
            ob.detail.clone(),
        ])?;
    }
    finish(w)
}
