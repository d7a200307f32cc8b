//! Loading rule files into a [`RuleSet`] with a [`LoadReport`], and `ward rules check`'s
//! [`CheckReport`] (text or JSON).
//!
//! One bad rule never stops a load: a rule that fails to parse or compile is skipped and listed
//! with its file, line, sid and the keyword at fault; an unreadable file is listed as a file
//! error and the other files still load. A duplicate `gid:sid` keeps the first rule.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::addr::Vars;
use crate::classify::Classification;
use crate::engine::{RuleSet, RuleSetStats};
use crate::parse::{parse_rule, split_rules};
use crate::rule::{compile, CompileCtx, CompileError};

/// Skipped rules listed one by one in the text report; the rest are only counted by keyword.
pub const MAX_LISTED_SKIPS: usize = 50;

/// A rule that was not loaded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SkippedRule {
    pub file: PathBuf,
    pub line: usize,
    pub sid: Option<u64>,
    /// The keyword at fault (or `syntax`, `header`, `protocol X`, `duplicate sid`).
    pub keyword: String,
    pub message: String,
}

impl SkippedRule {
    /// The rule's text did not parse completely (unbalanced quotes, options run together by a
    /// missing `;`, ...), as opposed to a rule that parsed but uses something unsupported. A
    /// reload refuses such rules when they were not already broken (see the sensor's reload).
    pub fn is_syntax_error(&self) -> bool {
        self.keyword == SYNTAX_KEYWORD
    }
}

/// The [`SkippedRule::keyword`] of a rule that did not parse ([`CompileError::keyword`]).
const SYNTAX_KEYWORD: &str = "syntax";

/// What a load did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LoadReport {
    pub files: Vec<PathBuf>,
    /// Files that could not be read, with the reason.
    pub file_errors: Vec<String>,
    /// Enabled rules found (commented-out lines are not rules).
    pub total: usize,
    pub loaded: usize,
    pub skipped: Vec<SkippedRule>,
    /// Notes about accepted keywords without effect, counted by note.
    pub notes: BTreeMap<String, usize>,
    #[serde(serialize_with = "ser_secs")]
    pub duration: Duration,
    /// Peak resident memory of the process after the load, kB (VmHWM), when known.
    pub peak_rss_kb: Option<u64>,
    /// Resident memory growth during the load, kB, when known.
    pub rss_growth_kb: Option<i64>,
    pub stats: RuleSetStats,
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl LoadReport {
    /// Percentage of enabled rules loaded (100 for no rules).
    pub fn loaded_percent(&self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            self.loaded as f64 * 100.0 / self.total as f64
        }
    }

    /// Skipped rules counted by keyword, most frequent first.
    pub fn skipped_by_keyword(&self) -> Vec<(String, usize)> {
        let mut m: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &self.skipped {
            *m.entry(s.keyword.as_str()).or_default() += 1;
        }
        let mut v: Vec<(String, usize)> = m.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}

/// Reads a `/proc/self/status` field in kB (Linux only).
pub fn proc_status_kb(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

/// Loads rule files. The classification is used for categories, priorities and reference URLs.
pub fn load(paths: &[PathBuf], vars: &Vars, cls: &Classification) -> (RuleSet, LoadReport) {
    let started = Instant::now();
    let rss_before = proc_status_kb("VmRSS:");
    let mut report = LoadReport { files: paths.to_vec(), ..Default::default() };
    let ctx = CompileCtx::default();
    let mut rules = Vec::new();
    let mut seen: HashSet<(u32, u64)> = HashSet::new();
    for path in paths {
        match std::fs::read_to_string(path) {
            Ok(text) => compile_text(&text, path, vars, cls, &ctx, &mut rules, &mut seen, &mut report),
            Err(e) => report.file_errors.push(format!("cannot read rules file {}: {e}", path.display())),
        }
    }
    let set = RuleSet::build(rules, ctx.flowbit_count());
    finish(&mut report, &set, started, rss_before);
    (set, report)
}

/// Loads rules from text (tests, rules received over the network). `origin` names the source
/// in the report.
pub fn load_str(text: &str, origin: &str, vars: &Vars, cls: &Classification) -> (RuleSet, LoadReport) {
    let started = Instant::now();
    let rss_before = proc_status_kb("VmRSS:");
    let path = PathBuf::from(origin);
    let mut report = LoadReport { files: vec![path.clone()], ..Default::default() };
    let ctx = CompileCtx::default();
    let mut rules = Vec::new();
    let mut seen = HashSet::new();
    compile_text(text, &path, vars, cls, &ctx, &mut rules, &mut seen, &mut report);
    let set = RuleSet::build(rules, ctx.flowbit_count());
    finish(&mut report, &set, started, rss_before);
    (set, report)
}

fn finish(report: &mut LoadReport, set: &RuleSet, started: Instant, rss_before: Option<u64>) {
    report.loaded = set.len();
    report.stats = set.stats().clone();
    report.duration = started.elapsed();
    report.peak_rss_kb = proc_status_kb("VmHWM:");
    report.rss_growth_kb = match (rss_before, proc_status_kb("VmRSS:")) {
        (Some(a), Some(b)) => Some(b as i64 - a as i64),
        _ => None,
    };
    tracing::info!(
        loaded = report.loaded,
        total = report.total,
        skipped = report.skipped.len(),
        secs = report.duration.as_secs_f64(),
        "rules loaded"
    );
}

/// A rule's compilation outcome: the rule, or (sid, keyword, message) of why it was skipped.
type Compiled = Result<crate::rule::Rule, (Option<u64>, String, String)>;

/// Rules per compilation batch (batches are spread over the cores).
const COMPILE_BATCH: usize = 512;

fn compile_one(text: &str, vars: &Vars, cls: &Classification, ctx: &CompileCtx) -> Compiled {
    let raw = parse_rule(text).map_err(|e| {
        let err = CompileError::from(e);
        (sid_guess(text), err.keyword(), err.to_string())
    })?;
    compile(&raw, vars, cls, ctx).map_err(|err| (raw.sid(), err.keyword(), err.to_string()))
}

/// Parses and compiles every rule of a file, on all cores (PCRE compilation dominates), then
/// takes the results in file order: the first of two rules with one sid wins, as before.
#[allow(clippy::too_many_arguments)]
fn compile_text(
    text: &str,
    path: &Path,
    vars: &Vars,
    cls: &Classification,
    ctx: &CompileCtx,
    rules: &mut Vec<crate::rule::Rule>,
    seen: &mut HashSet<(u32, u64)>,
    report: &mut LoadReport,
) {
    let texts = split_rules(text);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 16);
    let shared = ctx;
    let compiled: Vec<Compiled> = if threads == 1 || texts.len() < 2 * COMPILE_BATCH {
        texts.iter().map(|rt| compile_one(&rt.text, vars, cls, shared)).collect()
    } else {
        // Workers take batches in turn from a shared counter; results are put back in order.
        let next = std::sync::atomic::AtomicUsize::new(0);
        let batches: Vec<Vec<(usize, Compiled)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut out = Vec::new();
                        loop {
                            let start = next.fetch_add(COMPILE_BATCH, std::sync::atomic::Ordering::Relaxed);
                            if start >= texts.len() {
                                break out;
                            }
                            for (i, rt) in texts.iter().enumerate().skip(start).take(COMPILE_BATCH) {
                                out.push((i, compile_one(&rt.text, vars, cls, shared)));
                            }
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
        });
        let mut slots: Vec<Option<Compiled>> = (0..texts.len()).map(|_| None).collect();
        for (i, c) in batches.into_iter().flatten() {
            slots[i] = Some(c);
        }
        slots
            .into_iter()
            .map(|c| c.unwrap_or_else(|| Err((None, "internal".into(), "rule compilation thread failed".into()))))
            .collect()
    };
    for (rt, result) in texts.iter().zip(compiled) {
        report.total += 1;
        match result {
            Ok(rule) => {
                if !seen.insert((rule.info.gid, rule.info.sid)) {
                    report.skipped.push(SkippedRule {
                        file: path.to_path_buf(),
                        line: rt.line,
                        sid: Some(rule.info.sid),
                        keyword: "duplicate sid".into(),
                        message: format!("duplicate rule {}:{}: the first one is kept", rule.info.gid, rule.info.sid),
                    });
                    continue;
                }
                for n in &rule.notes {
                    *report.notes.entry(n.clone()).or_default() += 1;
                }
                rules.push(rule);
            }
            Err((sid, keyword, message)) => {
                report.skipped.push(SkippedRule { file: path.to_path_buf(), line: rt.line, sid, keyword, message })
            }
        }
    }
}

/// Best-effort sid of a rule that does not parse, for the report.
fn sid_guess(text: &str) -> Option<u64> {
    let i = text.find("sid:")?;
    let rest = text[i + 4..].trim_start();
    let n: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    n.parse().ok()
}

/// The result of `ward rules check`: the load report, printed as text or JSON.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub report: LoadReport,
    pub json: bool,
}

impl CheckReport {
    /// True when every enabled rule loaded and every file was read.
    pub fn all_loaded(&self) -> bool {
        self.report.skipped.is_empty() && self.report.file_errors.is_empty()
    }

    /// The report as one JSON object: counts, skipped-by-keyword, every skipped rule, timing,
    /// memory and index statistics.
    pub fn to_json(&self) -> serde_json::Value {
        let r = &self.report;
        serde_json::json!({
            "files": r.files,
            "file_errors": r.file_errors,
            "total": r.total,
            "loaded": r.loaded,
            "skipped": r.skipped.len(),
            "loaded_percent": (r.loaded_percent() * 100.0).round() / 100.0,
            "skipped_by_keyword": r.skipped_by_keyword().into_iter().map(|(k, n)| serde_json::json!({"keyword": k, "count": n})).collect::<Vec<_>>(),
            "skipped_rules": r.skipped,
            "notes": r.notes,
            "load_seconds": r.duration.as_secs_f64(),
            "peak_rss_kb": r.peak_rss_kb,
            "rss_growth_kb": r.rss_growth_kb,
            "index": r.stats,
        })
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.json {
            return writeln!(f, "{}", self.to_json());
        }
        let r = &self.report;
        for e in &r.file_errors {
            writeln!(f, "error: {e}")?;
        }
        writeln!(
            f,
            "{} of {} rules loaded ({:.2}%), {} skipped, in {:.2} s",
            r.loaded,
            r.total,
            r.loaded_percent(),
            r.skipped.len(),
            r.duration.as_secs_f64()
        )?;
        if let Some(p) = r.peak_rss_kb {
            write!(f, "memory: peak {} MB", p / 1024)?;
            if let Some(g) = r.rss_growth_kb {
                write!(f, ", grown by {} MB during the load", g / 1024)?;
            }
            writeln!(f)?;
        }
        let s = &r.stats;
        writeln!(
            f,
            "index: {} packet, {} http request, {} http response, {} dns, {} tls rules; {} prefiltered, {} in domain sets, {} in the ip index, {} in group lists",
            s.packet, s.http_request, s.http_response, s.dns, s.tls, s.prefiltered, s.domain_set, s.ip_index, s.group_list
        )?;
        let by_kw = r.skipped_by_keyword();
        if !by_kw.is_empty() {
            writeln!(f, "skipped by keyword:")?;
            for (k, n) in &by_kw {
                writeln!(f, "  {n:>6}  {k}")?;
            }
            writeln!(f, "skipped rules:")?;
            for s in r.skipped.iter().take(MAX_LISTED_SKIPS) {
                let sid = s.sid.map_or_else(|| "?".to_string(), |v| v.to_string());
                writeln!(f, "  {}:{} sid {}: {}", s.file.display(), s.line, sid, s.message)?;
            }
            if r.skipped.len() > MAX_LISTED_SKIPS {
                writeln!(f, "  ... and {} more (use --json for all)", r.skipped.len() - MAX_LISTED_SKIPS)?;
            }
        }
        for (note, n) in &r.notes {
            writeln!(f, "note: {n} rules: {note}")?;
        }
        Ok(())
    }
}

/// `ward rules check FILE...`: parses and compiles the rules without traffic. Categories and
/// reference URLs come from `classification.config`/`reference.config` next to the first rule
/// file when present.
pub fn check(files: &[PathBuf], vars: &Vars, json: bool) -> CheckReport {
    let cls = files.first().map(|p| Classification::beside(p)).unwrap_or_default();
    let (_, report) = load(files, vars, &cls);
    CheckReport { report, json }
}
