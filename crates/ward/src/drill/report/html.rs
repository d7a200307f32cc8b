//! The after-action report as one self-contained HTML file: inline CSS, charts as inline SVG
//! drawn here, no script, no external resource. Every text goes through maud, so it is escaped.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::{
    after_inject, deliveries_summary, fmt_dur, fmt_opt_dur, fmt_utc, scenario_secs, sensor_kind, stopped_at, time_to_warn, Figures,
    JurisdictionRow, HTML_MAX_ROWS, MAX_TIMELINE,
};
use crate::drill::outcome::{DrillOutcome, PathRecord, Rating};

const CSS: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1a1a1a;background:#fff;max-width:72rem;margin:0 auto;padding:1rem 1.5rem;line-height:1.45}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{font-size:1.35rem;border-bottom:2px solid #1f3b5c;padding-bottom:.2rem;margin-top:2rem}h3{font-size:1.1rem;margin-top:1.4rem}
table{border-collapse:collapse;width:100%;margin:.6rem 0 1rem;font-size:.9rem}caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{border:1px solid #8a8a8a;padding:.25rem .45rem;vertical-align:top;text-align:left}th{background:#e8edf3}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.rating{font-weight:700;padding:.1rem .4rem;border:1px solid #1a1a1a;border-radius:3px}
.r-P{background:#d4edda}.r-S{background:#fff3cd}.r-M{background:#ffe0b2}.r-U{background:#f8d7da}
.muted{color:#444}dl.overview{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dl.overview dt{font-weight:600}dl.overview dd{margin:0}
figure{margin:1rem 0}figcaption{font-size:.9rem;color:#333}svg{max-width:100%;height:auto}
.note{background:#f3f5f8;border-left:4px solid #1f3b5c;padding:.4rem .7rem}
@media print{body{max-width:none;padding:0;font-size:10pt}h2{break-after:avoid}table,figure{break-inside:auto}tr{break-inside:avoid}thead{display:table-header-group}.r-P,.r-S,.r-M,.r-U,th{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"#;

/// Render the report.
pub(super) fn render(o: &DrillOutcome, f: &Figures) -> String {
    let page: Markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "After-action report: " (o.title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    h1 { "After-action report: " (o.title) }
                    p.muted { "Drill " code { (o.scenario) } ", " (fmt_utc(o.started_ms)) " to " (fmt_utc(o.finished_ms)) ". Made by ward drill." }
                }
                main {
                    (overview(o))
                    (objectives(o))
                    (timeline(o))
                    (analysis(o, f))
                    section aria-labelledby="s5" {
                        h2 #s5 { "5. Strengths" }
                        @if o.strengths.is_empty() { p { "None recorded." } }
                        ul { @for s in &o.strengths { li { (s) } } }
                    }
                    section aria-labelledby="s6" {
                        h2 #s6 { "6. Areas for improvement" }
                        @if o.improvements.is_empty() { p { "None recorded." } }
                        ul { @for i in &o.improvements { li { (i.issue) " " span.muted { "Corrective action: " (i.corrective_action) } } } }
                    }
                    section aria-labelledby="sa" {
                        h2 #sa { "Appendix A. Improvement plan" }
                        table {
                            caption { "Improvement plan: each area for improvement, its corrective action, owner and due date" }
                            thead { tr { th scope="col" { "Issue" } th scope="col" { "Corrective action" } th scope="col" { "Owner" } th scope="col" { "Due" } } }
                            tbody {
                                @for i in &o.improvements { tr { td { (i.issue) } td { (i.corrective_action) } td { (i.owner) } td { (i.due) } } }
                                @if o.improvements.is_empty() { tr { td colspan="4" { "No corrective actions." } } }
                            }
                        }
                    }
                }
            }
        }
    };
    page.into_string()
}

fn overview(o: &DrillOutcome) -> Markup {
    let real_secs = (o.finished_ms - o.started_ms).max(0) as f64 / 1000.0;
    html! {
        section aria-labelledby="s1" {
            h2 #s1 { "1. Exercise overview" }
            dl.overview {
                dt { "Exercise" } dd { (o.title) " (" code { (o.scenario) } ")" }
                dt { "Dates" } dd { (fmt_utc(o.started_ms)) " to " (fmt_utc(o.finished_ms)) " (" (fmt_dur(real_secs)) " real time)" }
                dt { "Scope" } dd { (o.injects.len()) " injects; " (o.paths.len()) " warning paths measured (inject and jurisdiction)" }
                dt { "Hub" } dd { (o.hub) }
                dt { "Jurisdictions" } dd { (o.jurisdictions) " in " (o.states) " states" }
                dt { "Participants" } dd { (o.real_sensors) " with real sensor pipelines, " (o.simulated_relays) " simulated relays" }
                dt { "Speed" } dd { (format!("{}", o.speed)) " scenario seconds per real second. Durations in this report are scenario time." }
            }
            h3 { "Scenario" }
            @for para in o.description.split("\n\n") { p { (para) } }
            table {
                caption { "Injects as run" }
                thead { tr { th scope="col" { "Inject" } th scope="col" { "At (scenario)" } th scope="col" { "Attack" } th scope="col" { "Actor" } th scope="col" { "Injected" } th scope="col" { "Targeted" } th scope="col" { "Detected" } th scope="col" { "Warned" } th scope="col" { "Acknowledged" } } }
                tbody {
                    @for i in &o.injects {
                        tr {
                            th scope="row" { (i.id) }
                            td { (fmt_dur(i.at_secs)) }
                            td { (i.attack) br; span.muted { (i.description) } }
                            td { code { (i.actor) } }
                            td { (fmt_utc(i.injected_ms)) }
                            td.num { (i.targeted) } td.num { (i.detected) } td.num { (i.warned) } td.num { (i.acknowledged) }
                        }
                    }
                }
            }
        }
    }
}

fn rating(r: Rating) -> Markup {
    html! { span class=(format!("rating r-{}", r.letter())) { (r.letter()) } " " (r.meaning()) }
}

fn objectives(o: &DrillOutcome) -> Markup {
    html! {
        section aria-labelledby="s2" {
            h2 #s2 { "2. Objectives" }
            p { "Rated on HSEEP's scale: P performed without challenges (every case met the threshold), S with some challenges (at least 90 %), M with major challenges (at least 50 %), U unable to be performed (fewer, or nothing measured)." }
            table {
                caption { "Objectives, measured figures (scenario time) and rating" }
                thead { tr {
                    th scope="col" { "Objective" } th scope="col" { "Threshold" } th scope="col" { "Met" }
                    th scope="col" { "p50" } th scope="col" { "p90" } th scope="col" { "p99" } th scope="col" { "Max" }
                    th scope="col" { "Rating" } th scope="col" { "Detail" }
                } }
                tbody {
                    @for ob in &o.objectives {
                        tr {
                            th scope="row" { code { (ob.id) } br; (ob.text) }
                            td.num { (fmt_dur(ob.threshold_secs)) }
                            td.num { (ob.met) " of " (ob.total) }
                            td.num { (fmt_opt_dur(ob.p50_secs)) } td.num { (fmt_opt_dur(ob.p90_secs)) }
                            td.num { (fmt_opt_dur(ob.p99_secs)) } td.num { (fmt_opt_dur(ob.max_secs)) }
                            td { (rating(ob.rating)) }
                            td { (ob.detail) }
                        }
                    }
                }
            }
        }
    }
}

fn timeline(o: &DrillOutcome) -> Markup {
    html! {
        section aria-labelledby="s3" {
            h2 #s3 { "3. Timeline" }
            table {
                caption { "What happened, in order" }
                thead { tr { th scope="col" { "Time" } th scope="col" { "Since start (scenario)" } th scope="col" { "What" } } }
                tbody {
                    @for e in o.timeline.iter().take(MAX_TIMELINE) {
                        tr { td { (fmt_utc(e.at_ms)) } td.num { (fmt_dur(scenario_secs(o, e.at_ms - o.started_ms))) } td { (e.what) } }
                    }
                }
            }
            @if o.timeline.len() > MAX_TIMELINE { p.note { (o.timeline.len() - MAX_TIMELINE) " later entries are in outcome.json." } }
        }
    }
}

fn jurisdiction_table(caption: &str, rows: &[&JurisdictionRow]) -> Markup {
    html! {
        table {
            caption { (caption) }
            thead { tr {
                th scope="col" { "Jurisdiction" } th scope="col" { "State" } th scope="col" { "Pipeline" } th scope="col" { "Injects targeted" }
                th scope="col" { "Warned" } th scope="col" { "Missed" } th scope="col" { "False warnings" } th scope="col" { "Median time to warn" }
                th scope="col" { "Acknowledged" } th scope="col" { "Escalated" }
            } }
            tbody {
                @for j in rows {
                    tr {
                        th scope="row" { (j.name) } td { (j.state) } td { (sensor_kind(j.real_sensor)) } td.num { (j.targeted) }
                        td.num { (j.warned) } td.num { (j.missed) } td.num { (j.false_warnings) } td.num { (fmt_opt_dur(j.median_warn_secs)) }
                        td.num { (j.acknowledged) } td.num { (j.escalated) }
                    }
                }
                @if rows.is_empty() { tr { td colspan="10" { "None." } } }
            }
        }
    }
}

fn path_table(o: &DrillOutcome, caption: &str, rows: &[&PathRecord], miss: bool) -> Markup {
    html! {
        table {
            caption { (caption) }
            thead { tr {
                th scope="col" { "Jurisdiction" } th scope="col" { "State" } th scope="col" { "Inject" } th scope="col" { "Pipeline" }
                @if miss { th scope="col" { "Where it stopped" } } @else { th scope="col" { "Time to warn" } }
                th scope="col" { "Detected" } th scope="col" { "Campaign" } th scope="col" { "Acknowledged" } th scope="col" { "Escalated" } th scope="col" { "Deliveries" }
            } }
            tbody {
                @for p in rows {
                    tr {
                        th scope="row" { (p.jurisdiction) } td { (p.state) } td { (p.inject) } td { (sensor_kind(p.real_sensor)) }
                        @if miss { td { (stopped_at(p)) } } @else { td.num { (fmt_opt_dur(time_to_warn(o, p))) } }
                        td.num { (fmt_opt_dur(after_inject(o, p, p.detected_ms))) }
                        td.num { (fmt_opt_dur(after_inject(o, p, p.campaign_ms))) }
                        td { (fmt_opt_dur(after_inject(o, p, p.acked_ms))) @if let Some(a) = &p.ack_action { " (" (a) ")" } }
                        td.num { (fmt_opt_dur(after_inject(o, p, p.escalated_ms))) }
                        td { (deliveries_summary(p)) }
                    }
                }
                @if rows.is_empty() { tr { td colspan="10" { "None." } } }
            }
        }
    }
}

fn more(shown: usize, total: usize, file: &str) -> Markup {
    html! { @if total > shown { p.note { "Showing " (shown) " of " (total) " rows; the full table is in " code { (file) } "." } } }
}

fn analysis(o: &DrillOutcome, f: &Figures) -> Markup {
    let attention: Vec<&JurisdictionRow> = f.attention.iter().take(HTML_MAX_ROWS).map(|&i| &f.jurisdictions[i]).collect();
    let first: Vec<&JurisdictionRow> = f.jurisdictions.iter().take(HTML_MAX_ROWS).collect();
    let misses: Vec<&PathRecord> = f.misses.iter().take(HTML_MAX_ROWS).map(|&i| &o.paths[i]).collect();
    let falses: Vec<&PathRecord> = f.false_warnings.iter().take(HTML_MAX_ROWS).map(|&i| &o.paths[i]).collect();
    let slowest: Vec<&PathRecord> = f.slowest.iter().map(|&i| &o.paths[i]).collect();
    html! {
        section aria-labelledby="s4" {
            h2 #s4 { "4. Analysis" }
            h3 { "Time to warn" }
            (histogram_svg(f))
            (cumulative_svg(f))
            h3 { "By state" }
            table {
                caption { "Per state: jurisdictions, targeted, warned, when the state's office was told, median time to warn" }
                thead { tr { th scope="col" { "State" } th scope="col" { "Jurisdictions" } th scope="col" { "Targeted" } th scope="col" { "Warned" } th scope="col" { "State office told" } th scope="col" { "Median time to warn" } } }
                tbody {
                    @for s in &o.state_rows {
                        tr {
                            th scope="row" { (s.state) " " span.muted { (s.name) } }
                            td.num { (s.jurisdictions) } td.num { (s.targeted) } td.num { (s.warned) }
                            td { @if let Some(t) = s.state_told_ms { (fmt_utc(t)) } @else { "never" } }
                            td.num { (fmt_opt_dur(s.median_warn_secs)) }
                        }
                    }
                }
            }
            h3 { "By jurisdiction" }
            (jurisdiction_table("Jurisdictions needing attention: misses, false warnings and the slowest, worst first", &attention))
            (more(attention.len(), f.attention.len(), "jurisdictions.csv"))
            (jurisdiction_table(&format!("All jurisdictions by state (first {} of {})", first.len(), f.jurisdictions.len()), &first))
            (more(first.len(), f.jurisdictions.len(), "jurisdictions.csv"))
            h3 { "Misses" }
            p { (f.misses.len()) " targeted jurisdiction-inject pairs were never warned." }
            (path_table(o, "Missed warnings: targeted and never warned, with where the path stopped", &misses, true))
            (more(misses.len(), f.misses.len(), "paths.csv"))
            h3 { "False warnings" }
            p { (f.false_warnings.len()) " warnings went to jurisdictions the inject did not target." }
            (path_table(o, "False warnings: warned without being targeted", &falses, false))
            (more(falses.len(), f.false_warnings.len(), "paths.csv"))
            h3 { "Slowest paths" }
            (path_table(o, &format!("The {} slowest warned paths by time to warn", slowest.len()), &slowest, false))
        }
    }
}

/// Width and height of the charts' drawing (SVG user units), and the plot's margins.
const W: f64 = 720.0;
const H: f64 = 260.0;
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 40.0;
const TOP: f64 = 14.0;
const RIGHT: f64 = 16.0;

fn axes(y_max: usize, x_label: &str, y_label: &str) -> Markup {
    let plot_h = H - TOP - BOTTOM;
    html! {
        line x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(H - BOTTOM) stroke="#1a1a1a" {}
        line x1=(LEFT) y1=(H - BOTTOM) x2=(W - RIGHT) y2=(H - BOTTOM) stroke="#1a1a1a" {}
        @for k in 0..=4usize {
            @let v = y_max * k / 4;
            @let y = H - BOTTOM - plot_h * (v as f64) / (y_max.max(1) as f64);
            line x1=(LEFT - 4.0) y1=(y) x2=(LEFT) y2=(y) stroke="#1a1a1a" {}
            text x=(LEFT - 6.0) y=(y + 4.0) text-anchor="end" font-size="11" { (v) }
        }
        text x=((LEFT + W - RIGHT) / 2.0) y=(H - 6.0) text-anchor="middle" font-size="12" { (x_label) }
        text x="12" y=((TOP + H - BOTTOM) / 2.0) text-anchor="middle" font-size="12" transform=(format!("rotate(-90 12 {})", (TOP + H - BOTTOM) / 2.0)) { (y_label) }
    }
}

fn histogram_svg(f: &Figures) -> Markup {
    let h = &f.histogram;
    let y_max = h.counts.iter().copied().max().unwrap_or(0).max(1);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let n = h.counts.len().max(1) as f64;
    let bar_w = plot_w / n;
    let label_every = (h.counts.len() / 8).max(1);
    let summary = format!(
        "Distribution of time to warn over {} warned paths, in bins of {}; the most in one bin is {}.",
        f.warn_times.len(),
        fmt_dur(h.bin_secs),
        h.counts.iter().max().unwrap_or(&0)
    );
    html! {
        figure {
            svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {W} {H}")) width=(W) height=(H) role="img" aria-labelledby="hist-title hist-desc" {
                title #hist-title { "Time to warn distribution" }
                desc #hist-desc { (summary) }
                (axes(y_max, "time to warn (scenario time)", "warned paths"))
                @for (i, &c) in h.counts.iter().enumerate() {
                    @let bh = plot_h * c as f64 / y_max as f64;
                    rect x=(format!("{:.1}", LEFT + i as f64 * bar_w + 1.0)) y=(format!("{:.1}", H - BOTTOM - bh)) width=(format!("{:.1}", (bar_w - 2.0).max(1.0))) height=(format!("{:.1}", bh)) fill="#1f5f9c" {
                        title { (fmt_dur(i as f64 * h.bin_secs)) " to " (fmt_dur((i + 1) as f64 * h.bin_secs)) ": " (c) }
                    }
                    @if i % label_every == 0 {
                        text x=(format!("{:.1}", LEFT + i as f64 * bar_w)) y=(H - BOTTOM + 15.0) font-size="11" { (fmt_dur(i as f64 * h.bin_secs)) }
                    }
                }
                @if h.counts.is_empty() { text x=(W / 2.0) y=(H / 2.0) text-anchor="middle" font-size="13" { "No warning was delivered." } }
            }
            figcaption { "Figure 1. " (summary) }
        }
    }
}

fn cumulative_svg(f: &Figures) -> Markup {
    let c = &f.cumulative;
    let y_max = c.total.max(1);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let x = |s: f64| LEFT + plot_w * s / c.max_secs;
    let y = |n: usize| H - BOTTOM - plot_h * n as f64 / y_max as f64;
    let mut d = format!("M{:.1},{:.1}", x(0.0), y(0));
    let mut last = 0;
    for &(s, n) in &c.points {
        d.push_str(&format!(" L{:.1},{:.1} L{:.1},{:.1}", x(s), y(last), x(s), y(n)));
        last = n;
    }
    d.push_str(&format!(" L{:.1},{:.1}", x(c.max_secs), y(last)));
    let summary = match c.points.last() {
        Some(&(s, n)) => format!("{n} jurisdictions warned; the last first warning came {} after the first inject.", fmt_dur(s)),
        None => "No jurisdiction was warned.".to_string(),
    };
    html! {
        figure {
            svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {W} {H}")) width=(W) height=(H) role="img" aria-labelledby="cum-title cum-desc" {
                title #cum-title { "Warned jurisdictions over time" }
                desc #cum-desc { (summary) }
                (axes(y_max, "time since the first inject (scenario time)", "jurisdictions warned"))
                @for k in 0..=4usize {
                    @let s = c.max_secs * k as f64 / 4.0;
                    text x=(format!("{:.1}", x(s))) y=(H - BOTTOM + 15.0) text-anchor="middle" font-size="11" { (fmt_dur(s)) }
                }
                path d=(d) fill="none" stroke="#1f5f9c" stroke-width="2" {}
            }
            figcaption { "Figure 2. Cumulative count of warned jurisdictions. " (summary) }
        }
    }
}
