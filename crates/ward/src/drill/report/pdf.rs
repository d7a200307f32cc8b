//! The after-action report as PDF, with the same sections as the HTML, drawn with the weekly
//! report's [`Writer`] (ward-scan): text, headings, and the two charts as vector bars and lines.

use ward_scan::pdf::{Writer, MARGIN, PAGE_W};

use super::{
    after_inject, deliveries_summary, fmt_dur, fmt_opt_dur, fmt_utc, scenario_secs, sensor_kind, stopped_at, time_to_warn, Figures,
    JurisdictionRow, MAX_TIMELINE, PDF_MAX_ROWS,
};
use crate::drill::outcome::{DrillOutcome, PathRecord};

const BLUE: (f32, f32, f32) = (0.12, 0.37, 0.61);
const BLACK: (f32, f32, f32) = (0.0, 0.0, 0.0);

/// Render the report to PDF bytes.
pub(super) fn render(o: &DrillOutcome, f: &Figures) -> Result<Vec<u8>, String> {
    let mut w = Writer::new(&format!("After-action report: {}", o.title))?;
    w.text(&format!("After-action report: {}", o.title), 20.0, true, 0.0);
    w.text(&format!("Drill {}, {} to {}. Made by ward drill.", o.scenario, fmt_utc(o.started_ms), fmt_utc(o.finished_ms)), 10.0, false, 0.0);

    w.heading("1. Exercise overview");
    let real_secs = (o.finished_ms - o.started_ms).max(0) as f64 / 1000.0;
    for line in [
        format!("Exercise: {} ({})", o.title, o.scenario),
        format!("Dates: {} to {} ({} real time)", fmt_utc(o.started_ms), fmt_utc(o.finished_ms), fmt_dur(real_secs)),
        format!("Scope: {} injects; {} warning paths measured", o.injects.len(), o.paths.len()),
        format!("Hub: {}", o.hub),
        format!("Jurisdictions: {} in {} states", o.jurisdictions, o.states),
        format!("Participants: {} with real sensor pipelines, {} simulated relays", o.real_sensors, o.simulated_relays),
        format!("Speed: {} scenario seconds per real second. Durations are scenario time.", o.speed),
    ] {
        w.text(&line, 10.0, false, 0.0);
    }
    w.gap(2.0);
    w.text("Scenario", 12.0, true, 0.0);
    w.text(&o.description, 10.0, false, 0.0);
    w.gap(2.0);
    w.text("Injects as run", 12.0, true, 0.0);
    for i in &o.injects {
        w.text(&format!("{} at {}: {} from {} ({}), injected {}", i.id, fmt_dur(i.at_secs), i.attack, i.actor, i.description, fmt_utc(i.injected_ms)), 9.0, true, 0.0);
        w.text(&format!("targeted {}, detected {}, warned {}, acknowledged {}", i.targeted, i.detected, i.warned, i.acknowledged), 9.0, false, 4.0);
    }

    w.heading("2. Objectives");
    w.text("HSEEP ratings: P performed without challenges, S with some challenges, M with major challenges, U unable to be performed.", 9.0, false, 0.0);
    for ob in &o.objectives {
        w.need(20.0);
        w.gap(1.5);
        w.text(&format!("{}: {}", ob.id, ob.text), 10.0, true, 0.0);
        w.text(&format!("Rating: {} - {}", ob.rating.letter(), ob.rating.meaning()), 10.0, true, 4.0);
        w.text(
            &format!(
                "Threshold {}; met {} of {}; p50 {}, p90 {}, p99 {}, max {}",
                fmt_dur(ob.threshold_secs),
                ob.met,
                ob.total,
                fmt_opt_dur(ob.p50_secs),
                fmt_opt_dur(ob.p90_secs),
                fmt_opt_dur(ob.p99_secs),
                fmt_opt_dur(ob.max_secs)
            ),
            9.0,
            false,
            4.0,
        );
        w.text(&ob.detail, 9.0, false, 4.0);
    }

    w.heading("3. Timeline");
    for e in o.timeline.iter().take(MAX_TIMELINE) {
        w.text(&format!("{} (+{})  {}", fmt_utc(e.at_ms), fmt_dur(scenario_secs(o, e.at_ms - o.started_ms)), e.what), 8.5, false, 0.0);
    }
    if o.timeline.len() > MAX_TIMELINE {
        w.text(&format!("{} later entries are in outcome.json.", o.timeline.len() - MAX_TIMELINE), 9.0, false, 0.0);
    }

    w.heading("4. Analysis");
    w.text("Time to warn (Figure 1)", 12.0, true, 0.0);
    histogram(&mut w, f);
    w.text("Warned jurisdictions over time (Figure 2)", 12.0, true, 0.0);
    cumulative(&mut w, f);
    w.text("By state", 12.0, true, 0.0);
    for s in &o.state_rows {
        let told = s.state_told_ms.map(fmt_utc).unwrap_or_else(|| "never".to_string());
        w.text(
            &format!(
                "{} {}: {} jurisdictions, {} targeted, {} warned; state office told {}; median time to warn {}",
                s.state,
                s.name,
                s.jurisdictions,
                s.targeted,
                s.warned,
                told,
                fmt_opt_dur(s.median_warn_secs)
            ),
            9.0,
            false,
            0.0,
        );
    }
    w.gap(2.0);
    w.text("By jurisdiction: needing attention (misses, false warnings, slowest)", 12.0, true, 0.0);
    let attention: Vec<&JurisdictionRow> = f.attention.iter().take(PDF_MAX_ROWS).map(|&i| &f.jurisdictions[i]).collect();
    jurisdictions(&mut w, &attention, f.attention.len());
    w.text(&format!("By jurisdiction: all, by state (first {} of {})", f.jurisdictions.len().min(PDF_MAX_ROWS), f.jurisdictions.len()), 12.0, true, 0.0);
    let first: Vec<&JurisdictionRow> = f.jurisdictions.iter().take(PDF_MAX_ROWS).collect();
    jurisdictions(&mut w, &first, f.jurisdictions.len());

    w.text("Misses", 12.0, true, 0.0);
    w.text(&format!("{} targeted jurisdiction-inject pairs were never warned.", f.misses.len()), 9.0, false, 0.0);
    let misses: Vec<&PathRecord> = f.misses.iter().take(PDF_MAX_ROWS).map(|&i| &o.paths[i]).collect();
    paths(&mut w, o, &misses, f.misses.len(), true);
    w.text("False warnings", 12.0, true, 0.0);
    w.text(&format!("{} warnings went to jurisdictions the inject did not target.", f.false_warnings.len()), 9.0, false, 0.0);
    let falses: Vec<&PathRecord> = f.false_warnings.iter().take(PDF_MAX_ROWS).map(|&i| &o.paths[i]).collect();
    paths(&mut w, o, &falses, f.false_warnings.len(), false);
    w.text(&format!("Slowest paths (the {} slowest by time to warn)", f.slowest.len()), 12.0, true, 0.0);
    let slowest: Vec<&PathRecord> = f.slowest.iter().map(|&i| &o.paths[i]).collect();
    paths(&mut w, o, &slowest, slowest.len(), false);

    w.heading("5. Strengths");
    if o.strengths.is_empty() {
        w.text("None recorded.", 10.0, false, 0.0);
    }
    for s in &o.strengths {
        w.text(&format!("- {s}"), 10.0, false, 0.0);
    }
    w.heading("6. Areas for improvement");
    if o.improvements.is_empty() {
        w.text("None recorded.", 10.0, false, 0.0);
    }
    for i in &o.improvements {
        w.text(&format!("- {}", i.issue), 10.0, false, 0.0);
    }
    w.heading("Appendix A. Improvement plan");
    if o.improvements.is_empty() {
        w.text("No corrective actions.", 10.0, false, 0.0);
    }
    for i in &o.improvements {
        w.need(18.0);
        w.text(&i.issue, 10.0, true, 0.0);
        w.text(&format!("Corrective action: {}", i.corrective_action), 9.0, false, 4.0);
        w.text(&format!("Owner: {}. Due: {}.", i.owner, i.due), 9.0, false, 4.0);
        w.gap(1.5);
    }
    w.finish()
}

fn jurisdictions(w: &mut Writer, rows: &[&JurisdictionRow], total: usize) {
    if rows.is_empty() {
        w.text("None.", 9.0, false, 0.0);
    }
    for j in rows {
        w.text(
            &format!(
                "{} ({}, {}): targeted {}, warned {}, missed {}, false warnings {}, median time to warn {}, acknowledged {}, escalated {}",
                j.name,
                j.state,
                sensor_kind(j.real_sensor),
                j.targeted,
                j.warned,
                j.missed,
                j.false_warnings,
                fmt_opt_dur(j.median_warn_secs),
                j.acknowledged,
                j.escalated
            ),
            8.5,
            false,
            0.0,
        );
    }
    if total > rows.len() {
        w.text(&format!("Showing {} of {}; the full table is in jurisdictions.csv.", rows.len(), total), 9.0, true, 0.0);
    }
    w.gap(2.0);
}

fn paths(w: &mut Writer, o: &DrillOutcome, rows: &[&PathRecord], total: usize, miss: bool) {
    if rows.is_empty() {
        w.text("None.", 9.0, false, 0.0);
    }
    for p in rows {
        let head = if miss { format!("stopped: {}", stopped_at(p)) } else { format!("time to warn {}", fmt_opt_dur(time_to_warn(o, p))) };
        w.text(&format!("{} ({}), inject {}, {}: {}", p.jurisdiction, p.state, p.inject, sensor_kind(p.real_sensor), head), 8.5, true, 0.0);
        let ack = match (&p.ack_action, after_inject(o, p, p.acked_ms)) {
            (Some(a), Some(t)) => format!("{} ({a})", fmt_dur(t)),
            (_, t) => fmt_opt_dur(t),
        };
        w.text(
            &format!(
                "detected {}, campaign {}, acknowledged {}, escalated {}; deliveries: {}",
                fmt_opt_dur(after_inject(o, p, p.detected_ms)),
                fmt_opt_dur(after_inject(o, p, p.campaign_ms)),
                ack,
                fmt_opt_dur(after_inject(o, p, p.escalated_ms)),
                deliveries_summary(p)
            ),
            8.0,
            false,
            4.0,
        );
    }
    if total > rows.len() {
        w.text(&format!("Showing {} of {}; all rows are in paths.csv.", rows.len(), total), 9.0, true, 0.0);
    }
    w.gap(2.0);
}

/// Chart geometry in mm: the plot's left edge and width, and the block's height.
const LEFT: f32 = MARGIN + 14.0;
const WIDTH: f32 = PAGE_W - 2.0 * MARGIN - 18.0;
const HEIGHT: f32 = 55.0;
const PLOT_H: f32 = 40.0;

/// Axes with four y ticks; returns the plot's bottom edge.
fn axes(w: &mut Writer, y_max: usize, x_label: &str, y_label: &str) -> f32 {
    let bottom = w.reserve(HEIGHT) + 11.0;
    w.polyline(&[(LEFT, bottom + PLOT_H), (LEFT, bottom), (LEFT + WIDTH, bottom)], BLACK, 0.8);
    for k in 0..=4usize {
        let v = y_max * k / 4;
        let y = bottom + PLOT_H * v as f32 / y_max.max(1) as f32;
        w.text_at(MARGIN, y - 1.0, 7.5, &v.to_string(), false);
    }
    w.text_at(LEFT + WIDTH / 2.0 - 25.0, bottom - 9.0, 8.0, x_label, false);
    w.text_at(MARGIN, bottom + PLOT_H + 3.0, 8.0, y_label, false);
    bottom
}

fn histogram(w: &mut Writer, f: &Figures) {
    let h = &f.histogram;
    if h.counts.is_empty() {
        w.text("No warning was delivered.", 9.0, false, 0.0);
        return;
    }
    let y_max = h.counts.iter().copied().max().unwrap_or(1).max(1);
    let bottom = axes(w, y_max, "time to warn (scenario time)", "warned paths");
    let bar_w = WIDTH / h.counts.len() as f32;
    let label_every = (h.counts.len() / 6).max(1);
    for (i, &c) in h.counts.iter().enumerate() {
        let x = LEFT + i as f32 * bar_w;
        w.fill_rect(x + 0.3, bottom, (bar_w - 0.6).max(0.2), PLOT_H * c as f32 / y_max as f32, BLUE);
        if i % label_every == 0 {
            w.text_at(x, bottom - 4.0, 7.0, &fmt_dur(i as f64 * h.bin_secs), false);
        }
    }
    w.text(&format!("{} warned paths in bins of {}.", f.warn_times.len(), fmt_dur(h.bin_secs)), 8.5, false, 0.0);
    w.gap(2.0);
}

fn cumulative(w: &mut Writer, f: &Figures) {
    let c = &f.cumulative;
    if c.points.is_empty() {
        w.text("No jurisdiction was warned.", 9.0, false, 0.0);
        return;
    }
    let y_max = c.total.max(1);
    let bottom = axes(w, y_max, "time since the first inject (scenario time)", "jurisdictions warned");
    let x = |s: f64| LEFT + WIDTH * (s / c.max_secs) as f32;
    let y = |n: usize| bottom + PLOT_H * n as f32 / y_max as f32;
    let mut pts = vec![(x(0.0), y(0))];
    let mut last = 0;
    for &(s, n) in &c.points {
        pts.push((x(s), y(last)));
        pts.push((x(s), y(n)));
        last = n;
    }
    pts.push((x(c.max_secs), y(last)));
    w.polyline(&pts, BLUE, 1.2);
    for k in 0..=4usize {
        let s = c.max_secs * k as f64 / 4.0;
        w.text_at(x(s) - 3.0, bottom - 4.0, 7.0, &fmt_dur(s), false);
    }
    let &(s, n) = c.points.last().expect("non-empty");
    w.text(&format!("{n} jurisdictions warned; the last first warning came {} after the first inject.", fmt_dur(s)), 8.5, false, 0.0);
    w.gap(2.0);
}
