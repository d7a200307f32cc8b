//! The report's tests: a hand-built outcome (5 jurisdictions in 2 states, one miss, one false
//! warning, one escalation, ratings P and U) and a large one (8,800 jurisdictions).

use super::*;
use crate::drill::outcome::*;

const T0: i64 = 1_796_700_000_000; // 2026-12-08 03:20:00 UTC

fn delivery(at: Option<i64>, error: Option<&str>) -> Delivery {
    Delivery {
        channel: "webhook".into(),
        contact: "https://c***.example/hook".into(),
        kind: "targeted".into(),
        delivered_ms: at,
        error: error.map(str::to_string),
    }
}

fn path(inject: &str, jur: &str, state: &str, injected: i64, warn_after_ms: Option<i64>, targeted: bool, outcome: PathOutcome) -> PathRecord {
    let warned = warn_after_ms.map(|d| injected + d);
    PathRecord {
        inject: inject.into(),
        jurisdiction: jur.into(),
        state: state.into(),
        real_sensor: jur.ends_with('1'),
        targeted,
        injected_ms: Some(injected),
        detected_ms: if targeted { Some(injected + 300) } else { None },
        received_ms: if targeted { Some(injected + 500) } else { None },
        campaign_id: warned.map(|_| 7),
        campaign_ms: warned.map(|w| w - 200),
        deliveries: match warned {
            Some(w) => vec![delivery(Some(w), None)],
            None => vec![],
        },
        warned_ms: warned,
        acked_ms: warned.map(|w| w + 20_000),
        ack_action: warned.map(|_| "blocked the address".into()),
        escalated_ms: None,
        outcome,
    }
}

/// The small outcome: `title` is the scenario's title (tests put markup in it).
pub(crate) fn small(title: &str) -> DrillOutcome {
    let inj = T0 + 5_000;
    let mut paths = vec![
        path("scan-1", "Adams County", "FR", inj, Some(4_200), true, PathOutcome::Warned),
        path("scan-1", "Baker City", "FR", inj, Some(9_000), true, PathOutcome::Warned),
        path("scan-1", "Clark Town", "FR", inj, None, true, PathOutcome::Missed),
        path("scan-1", "Dover County", "GV", inj, Some(190_000), true, PathOutcome::Warned),
        path("scan-1", "Elm Village", "GV", inj, Some(12_000), false, PathOutcome::FalseWarning),
    ];
    // Clark Town's sensor saw it; the warning failed for good.
    paths[2].campaign_ms = Some(inj + 900);
    paths[2].deliveries = vec![delivery(None, Some("connection refused by receiver"))];
    // Dover County did not acknowledge in time: escalated, acknowledged later.
    paths[3].escalated_ms = Some(inj + 130_000);
    paths[3].acked_ms = Some(inj + 200_000);
    DrillOutcome {
        scenario: "2016-scan".into(),
        title: title.into(),
        description: "A port scan of county election offices as in 2016.\n\nTests detection, grouping and warning.".into(),
        started_ms: T0,
        finished_ms: T0 + 310_000,
        speed: 1.0,
        hub: "embedded (SQLite, 127.0.0.1)".into(),
        jurisdictions: 5,
        states: 2,
        real_sensors: 1,
        simulated_relays: 4,
        objectives: vec![
            ObjectiveResult {
                id: "detect-30s".into(),
                text: "Every targeted office's sensor detects the scan within 30 s".into(),
                threshold_secs: 30.0,
                total: 4,
                met: 4,
                p50_secs: Some(0.3),
                p90_secs: Some(0.3),
                p99_secs: Some(0.3),
                max_secs: Some(0.3),
                rating: Rating::P,
                detail: "All four targeted offices detected it.".into(),
            },
            ObjectiveResult {
                id: "warn-60s".into(),
                text: "Every targeted office warned within 60 s".into(),
                threshold_secs: 60.0,
                total: 4,
                met: 1,
                p50_secs: Some(9.0),
                p90_secs: Some(190.0),
                p99_secs: Some(190.0),
                max_secs: Some(190.0),
                rating: Rating::U,
                detail: "Clark Town was never warned; Dover County took 3 min 10 s.".into(),
            },
        ],
        injects: vec![InjectResult {
            id: "scan-1".into(),
            at_secs: 5.0,
            attack: "port-scan".into(),
            description: "TCP scan of the top 1,000 ports".into(),
            actor: "203.0.113.9".into(),
            injected_ms: inj,
            targeted: 4,
            detected: 4,
            warned: 3,
            acknowledged: 3,
        }],
        paths,
        state_rows: vec![
            StateRow { state: "FR".into(), name: "Freedonia".into(), jurisdictions: 3, targeted: 3, warned: 2, state_told_ms: Some(inj + 15_000), median_warn_secs: Some(6.6) },
            StateRow { state: "GV".into(), name: "Genovia".into(), jurisdictions: 2, targeted: 1, warned: 1, state_told_ms: None, median_warn_secs: Some(190.0) },
        ],
        timeline: vec![
            TimelineEntry { at_ms: inj, what: "Inject scan-1: port scan from 203.0.113.9".into() },
            TimelineEntry { at_ms: inj + 4_200, what: "First warning: Adams County".into() },
            TimelineEntry { at_ms: inj + 130_000, what: "Escalation: Dover County unacknowledged".into() },
        ],
        strengths: vec!["Every targeted sensor detected the scan within 0.3 s.".into()],
        improvements: vec![Improvement {
            issue: "Clark Town was never warned: its webhook refused the connection.".into(),
            corrective_action: "Fix Clark Town's webhook receiver and add an e-mail contact.".into(),
            owner: "Clark Town IT".into(),
            due: "2027-01-15".into(),
        }],
    }
}

/// 8,800 jurisdictions in 50 states, one inject targeting all; every 97th missed, every 89th a
/// false warning.
fn large() -> DrillOutcome {
    let mut o = small("Nationwide scan");
    let inj = T0 + 5_000;
    o.paths.clear();
    o.state_rows.clear();
    for i in 0..8_800usize {
        let state = format!("S{:02}", i % 50);
        let name = format!("Jurisdiction {i:05}");
        let (warn, targeted, outcome) = if i % 97 == 0 {
            (None, true, PathOutcome::Missed)
        } else if i % 89 == 0 {
            (Some(30_000), false, PathOutcome::FalseWarning)
        } else {
            (Some(1_000 + (i as i64 * 37) % 120_000), true, PathOutcome::Warned)
        };
        o.paths.push(path("scan-1", &name, &state, inj, warn, targeted, outcome));
    }
    for s in 0..50 {
        o.state_rows.push(StateRow {
            state: format!("S{s:02}"),
            name: format!("State {s}"),
            jurisdictions: 176,
            targeted: 170,
            warned: 168,
            state_told_ms: Some(inj + 20_000),
            median_warn_secs: Some(42.0),
        });
    }
    o.jurisdictions = 8_800;
    o.states = 50;
    o
}

fn pdf_text(bytes: &[u8]) -> String {
    let doc = lopdf::Document::load_mem(bytes).expect("a PDF lopdf reads");
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    doc.extract_text(&pages).expect("text")
}

#[test]
fn html_has_every_section_rating_row_and_chart_and_escapes_the_title() {
    let o = small("Scan <script>alert(1)</script> & more");
    let html = html::render(&o, &Figures::new(&o));
    for section in [
        "1. Exercise overview",
        "2. Objectives",
        "3. Timeline",
        "4. Analysis",
        "5. Strengths",
        "6. Areas for improvement",
        "Appendix A. Improvement plan",
    ] {
        assert!(html.contains(section), "missing section {section}");
    }
    for (letter, meaning) in [("P", "Performed without challenges"), ("U", "Unable to be performed")] {
        assert!(html.contains(&format!(r#"<span class="rating r-{letter}">{letter}</span> {meaning}"#)), "rating {letter}");
    }
    assert!(!html.contains("<script>"), "the title is escaped");
    assert!(html.contains("Scan &lt;script&gt;alert(1)&lt;/script&gt; &amp; more"));
    // The miss with where it stopped, the false warning, the escalation, the improvement plan.
    assert!(html.contains("Clark Town"));
    assert!(html.contains("warning not delivered: connection refused by receiver"));
    let false_section = &html[html.find("<h3>False warnings</h3>").unwrap()..html.find("<h3>Slowest paths</h3>").unwrap()];
    assert!(false_section.contains("Elm Village"), "the false warning is listed");
    assert!(!false_section.contains("Adams County"), "only false warnings are listed there");
    assert!(html.contains("2 min 10 s"), "Dover County's escalation after 130 s");
    assert!(html.contains("Clark Town IT") && html.contains("2027-01-15"));
    // Human times, never raw ms.
    assert!(html.contains("2026-12-08 03:20:05 UTC"), "the inject's time");
    assert!(html.contains("4.2 s") && html.contains("3 min 10 s"));
    assert!(!html.contains(&(T0 + 5_000).to_string()), "no raw Unix ms");
    // Two inline SVG charts, no script or external resource.
    assert_eq!(html.matches("<svg ").count(), 2);
    assert!(html.contains("Time to warn distribution") && html.contains("Warned jurisdictions over time"));
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("<link"));
    // Accessible tables.
    assert!(html.contains("<caption>") && html.contains(r#"scope="col""#) && html.contains(r#"scope="row""#));
}

#[test]
fn figures_count_misses_false_warnings_and_medians() {
    let o = small("t");
    let f = Figures::new(&o);
    assert_eq!(f.jurisdictions.len(), 5);
    assert_eq!(f.misses.len(), 1);
    assert_eq!(f.false_warnings.len(), 1);
    assert_eq!(f.warn_times.len(), 3, "false warnings have no time to warn");
    assert_eq!(o.paths[f.slowest[0]].jurisdiction, "Dover County");
    let clark = f.jurisdictions.iter().find(|j| j.name == "Clark Town").unwrap();
    assert_eq!((clark.targeted, clark.warned, clark.missed, clark.median_warn_secs), (1, 0, 1, None));
    let adams = f.jurisdictions.iter().find(|j| j.name == "Adams County").unwrap();
    assert_eq!(adams.median_warn_secs, Some(4.2));
    assert_eq!(f.jurisdictions[f.attention[0]].name, "Clark Town", "the miss comes first");
    assert_eq!(f.histogram.counts.iter().sum::<usize>(), 3);
    assert_eq!(f.cumulative.total, 3);
    // Speed converts real time to scenario time.
    let mut fast = o.clone();
    fast.speed = 60.0;
    assert_eq!(time_to_warn(&fast, &fast.paths[0]), Some(4.2 * 60.0));
}

#[test]
fn durations_and_times_read_as_words() {
    assert_eq!(fmt_dur(4.2), "4.2 s");
    assert_eq!(fmt_dur(42.4), "42 s");
    assert_eq!(fmt_dur(190.0), "3 min 10 s");
    assert_eq!(fmt_dur(0.0), "0 s");
    assert_eq!(fmt_dur(60.0), "1 min");
    assert_eq!(fmt_dur(7_200.0), "2 h");
    assert_eq!(fmt_dur(7_500.0), "2 h 5 min");
    assert_eq!(fmt_dur(f64::NAN), "n/a");
    assert_eq!(fmt_utc(T0), "2026-12-08 03:20:00 UTC");
    assert_eq!(fmt_utc(i64::MAX), "(invalid time)");
}

#[test]
fn write_all_writes_every_file_csv_json_and_pdf() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("drill-report");
    let o = small("Scan <script>x</script>");
    let written = write_all(&o, &out).unwrap();
    let names: Vec<String> = written.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["report.html", "report.pdf", "outcome.json", "paths.csv", "jurisdictions.csv", "states.csv", "objectives.csv"]);
    for p in &written {
        assert!(std::fs::metadata(p).unwrap().len() > 0, "{} is empty", p.display());
    }

    // CSV: header and one row per path / jurisdiction / state / objective.
    let rows = |name: &str| -> (csv::StringRecord, Vec<csv::StringRecord>) {
        let mut r = csv::Reader::from_path(out.join(name)).unwrap();
        let header = r.headers().unwrap().clone();
        (header, r.records().map(|x| x.unwrap()).collect())
    };
    let (h, paths) = rows("paths.csv");
    assert_eq!(&h[0], "inject");
    assert!(h.iter().any(|c| c == "time_to_warn_secs") && h.iter().any(|c| c == "first_error"));
    assert_eq!(paths.len(), 5);
    let clark = paths.iter().find(|r| &r[1] == "Clark Town").unwrap();
    assert_eq!(&clark[5], "missed");
    assert_eq!(&clark[clark.len() - 1], "connection refused by receiver");
    let (h, jur) = rows("jurisdictions.csv");
    assert_eq!(
        h.iter().collect::<Vec<_>>(),
        ["jurisdiction", "state", "real_sensor", "injects_targeted", "warned", "missed", "false_warnings", "median_time_to_warn_secs", "acknowledged", "escalated"]
    );
    assert_eq!(jur.len(), 5);
    let elm = jur.iter().find(|r| &r[0] == "Elm Village").unwrap();
    assert_eq!((&elm[3], &elm[6]), ("0", "1"));
    let (h, states) = rows("states.csv");
    assert_eq!(&h[0], "state");
    assert_eq!(states.len(), 2);
    let (h, obj) = rows("objectives.csv");
    assert_eq!(&h[9], "rating");
    assert_eq!(obj.len(), 2);
    assert_eq!((&obj[0][9], &obj[1][9]), ("P", "U"));

    // JSON round-trips to an equal outcome.
    let json = std::fs::read(out.join("outcome.json")).unwrap();
    let back: DrillOutcome = serde_json::from_slice(&json).unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap(), serde_json::to_value(&o).unwrap());
    assert_eq!(back.paths[3].escalated_ms, o.paths[3].escalated_ms);

    // PDF: its text has the sections and the objective ids.
    let pdf = std::fs::read(out.join("report.pdf")).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let text = pdf_text(&pdf);
    for needle in [
        "1. Exercise overview",
        "2. Objectives",
        "3. Timeline",
        "4. Analysis",
        "5. Strengths",
        "6. Areas for improvement",
        "Appendix A. Improvement plan",
        "detect-30s",
        "warn-60s",
        "Unable to be performed",
        "Clark Town",
        "Elm Village",
    ] {
        assert!(text.contains(needle), "PDF lacks {needle:?}");
    }
}

#[test]
fn write_all_reports_a_directory_it_cannot_create() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let err = write_all(&small("t"), &file.join("sub")).unwrap_err();
    assert!(format!("{err:#}").contains("creating"), "{err:#}");
}

#[test]
fn an_outcome_with_nothing_measured_renders() {
    let mut o = small("Empty");
    o.paths.clear();
    o.objectives.iter_mut().for_each(|ob| {
        ob.total = 0;
        ob.met = 0;
        ob.p50_secs = None;
        ob.p90_secs = None;
        ob.p99_secs = None;
        ob.max_secs = None;
        ob.rating = Rating::U;
    });
    o.speed = 0.0;
    let dir = tempfile::tempdir().unwrap();
    write_all(&o, dir.path()).unwrap();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("No warning was delivered."));
    assert!(html.contains("None."));
}

#[test]
fn a_national_drill_of_8800_jurisdictions_stays_bounded() {
    let o = large();
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    write_all(&o, dir.path()).unwrap();
    let elapsed = started.elapsed();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.len() < 5_000_000, "HTML is {} bytes", html.len());
    assert!(html.contains("Showing 200 of 8800 rows; the full table is in <code>jurisdictions.csv</code>."));
    // The attention table leads with misses.
    assert!(html.contains("Jurisdiction 00000"));
    let jur = csv::Reader::from_path(dir.path().join("jurisdictions.csv")).unwrap().into_records().count();
    assert_eq!(jur, 8_800);
    let paths = csv::Reader::from_path(dir.path().join("paths.csv")).unwrap().into_records().count();
    assert_eq!(paths, 8_800);
    let pdf = std::fs::read(dir.path().join("report.pdf")).unwrap();
    eprintln!(
        "8,800 jurisdictions: HTML {} bytes, PDF {} bytes, written in {:?}",
        html.len(),
        pdf.len(),
        elapsed
    );
}
