//! The sensor benchmark: runs `ward sensor` (or any command) over captures with several worker
//! counts, N times each, and reports median/min/max wall time, packets/s, Gbit/s and peak RSS.
//!
//! Throughput denominators come from the capture itself ([`crate::pcap::count_path`]: packets
//! and captured bytes, `.gz` and pcapng included), never from the program under test, so a
//! sensor that skips packets cannot look faster. Counting reads every file once before the
//! first run, which also warms the page cache, so run 1 is not a cold-cache outlier.
//!
//! Comparison: with two variants (`--compare "A args" "B args"`) runs alternate A, B, A, B…
//! so drift (thermal, other load) hits both alike, and the report gives the ratio of median
//! packets/s B/A per capture and worker count, over the whole run and, from the sensor's
//! `--summary-json`, over processing only (rule load left out). An optional floor
//! (`--min-ratio`) turns the whole-run ratio into a pass/fail check.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::measure::{run_measured, MeasureError, RunSample, Spread};
use crate::pcap::{count_path, CaptureError, CaptureTotals};

/// Placeholders substituted in a `--cmd` template.
pub const PCAP_PLACEHOLDER: &str = "{pcap}";
pub const WORKERS_PLACEHOLDER: &str = "{workers}";

/// Errors of the benchmark.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("run {run} of {program} with {workers} workers on {pcap}: {source}")]
    Run { run: usize, program: String, workers: usize, pcap: String, source: MeasureError },
    #[error("invalid benchmark option: {0}")]
    Option(String),
}

/// A worker count: a number, or all available CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    Count(usize),
    All,
}

impl Workers {
    /// Parses `1,2,all`.
    pub fn parse_list(s: &str) -> Result<Vec<Workers>, BenchError> {
        let mut out = Vec::new();
        for p in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if p.eq_ignore_ascii_case("all") {
                out.push(Workers::All);
            } else {
                match p.parse::<usize>() {
                    Ok(n) if n > 0 => out.push(Workers::Count(n)),
                    _ => return Err(BenchError::Option(format!("worker count {p:?} is not a positive number or \"all\""))),
                }
            }
        }
        if out.is_empty() {
            return Err(BenchError::Option("no worker counts given; use e.g. --workers 1,all".into()));
        }
        Ok(out)
    }

    /// The number of workers this stands for on this machine.
    pub fn resolve(self) -> usize {
        match self {
            Workers::Count(n) => n,
            Workers::All => std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// What is run.
#[derive(Debug, Clone)]
pub enum Program {
    /// `ward sensor --pcap PATH --workers N --eve /dev/null [args]`.
    Ward(PathBuf),
    /// An arbitrary command line; `{pcap}` and `{workers}` are substituted in each word, the
    /// variant's args are appended.
    Template(Vec<String>),
}

impl Program {
    /// Parses a `--cmd` template with shell quoting rules.
    pub fn template(s: &str) -> Result<Program, BenchError> {
        let words = shlex::split(s).ok_or_else(|| BenchError::Option(format!("cannot split command {s:?}: unbalanced quotes")))?;
        if words.is_empty() {
            return Err(BenchError::Option("empty --cmd".into()));
        }
        Ok(Program::Template(words))
    }

    pub fn name(&self) -> String {
        match self {
            Program::Ward(p) => p.display().to_string(),
            Program::Template(w) => w[0].clone(),
        }
    }

    /// The command for one run.
    pub fn command(&self, pcap: &Path, workers: usize, args: &[String]) -> Command {
        match self {
            Program::Ward(bin) => {
                let mut c = Command::new(bin);
                c.arg("sensor").arg("--pcap").arg(pcap).arg("--workers").arg(workers.to_string());
                c.args(["--eve", "/dev/null", "--summary-json"]).args(args);
                c
            }
            Program::Template(words) => {
                let p = pcap.to_string_lossy();
                let w = workers.to_string();
                let sub = |s: &String| s.replace(PCAP_PLACEHOLDER, &p).replace(WORKERS_PLACEHOLDER, &w);
                let mut c = Command::new(sub(&words[0]));
                c.args(words[1..].iter().map(sub)).args(args);
                c
            }
        }
    }
}

/// Finds the ward binary when `--ward` is not given: `target/release/ward` under the current
/// directory, then under the workspace this crate was built from.
pub fn default_ward() -> Result<PathBuf, BenchError> {
    let candidates = [
        PathBuf::from("target/release/ward"),
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release/ward")),
    ];
    candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
        BenchError::Option(
            "ward binary not found at target/release/ward; build it with `cargo build --release -p ward`, or pass --ward PATH or --cmd".into(),
        )
    })
}

/// A named set of extra arguments (one side of a comparison).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Variant {
    pub name: String,
    pub args: Vec<String>,
}

/// Everything one benchmark invocation does.
#[derive(Debug, Clone)]
pub struct Plan {
    pub pcaps: Vec<PathBuf>,
    pub workers: Vec<Workers>,
    pub runs: usize,
    pub warmup: usize,
    pub program: Program,
    pub variants: Vec<Variant>,
    pub min_ratio: Option<f64>,
}

/// A capture and its totals.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Input {
    pub path: PathBuf,
    pub totals: CaptureTotals,
}

/// Results for one (capture, workers, variant).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub pcap: PathBuf,
    pub workers: usize,
    pub variant: String,
    pub args: Vec<String>,
    pub runs: usize,
    pub wall_s: Spread,
    pub packets_per_s: Spread,
    pub gbit_per_s: Spread,
    pub peak_rss_mib: Spread,
    pub cpu_s: Spread,
    /// The sensor's own processing time (its `--summary-json`: wall time after rules and
    /// indicators loaded), when the program reports it.
    pub processing_s: Option<Spread>,
    /// The sensor's rule and indicator load time, when reported.
    pub load_s: Option<Spread>,
    pub samples: Vec<RunSample>,
    /// The last JSON object line the program printed on stdout (the sensor's own counters).
    pub program_stats: Option<serde_json::Value>,
}

/// Ratio of median packets/s of the second variant to the first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Ratio {
    pub pcap: PathBuf,
    pub workers: usize,
    pub baseline: String,
    pub candidate: String,
    pub packets_per_s_ratio: f64,
    /// The same ratio over the sensor's processing time (load time left out), when reported.
    pub processing_ratio: Option<f64>,
    pub min_ratio: Option<f64>,
    pub pass: bool,
}

/// The whole report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub program: String,
    pub runs: usize,
    pub inputs: Vec<Input>,
    pub results: Vec<Row>,
    pub ratios: Vec<Ratio>,
}

impl Report {
    /// False when a comparison fell below its floor.
    pub fn passed(&self) -> bool {
        self.ratios.iter().all(|r| r.pass)
    }
}

fn row(pcap: &Path, t: &CaptureTotals, workers: usize, v: &Variant, samples: Vec<RunSample>) -> Row {
    let f = |g: &dyn Fn(&RunSample) -> f64| Spread::of(&samples.iter().map(g).collect::<Vec<_>>()).unwrap_or(Spread { median: 0.0, min: 0.0, max: 0.0 });
    let packets = t.packets as f64;
    let bits = t.captured_bytes as f64 * 8.0;
    Row {
        pcap: pcap.to_owned(),
        workers,
        variant: v.name.clone(),
        args: v.args.clone(),
        runs: samples.len(),
        wall_s: f(&|s| s.wall_s),
        packets_per_s: f(&|s| packets / s.wall_s.max(1e-9)),
        gbit_per_s: f(&|s| bits / s.wall_s.max(1e-9) / 1e9),
        peak_rss_mib: f(&|s| s.max_rss_kib as f64 / 1024.0),
        cpu_s: f(&|s| s.user_s + s.sys_s),
        processing_s: reported(&samples, "processing_s"),
        load_s: reported(&samples, "load_s"),
        program_stats: samples.last().and_then(RunSample::stdout_json),
        samples,
    }
}

/// The spread of a number every run printed in its stdout JSON summary; `None` unless all did.
fn reported(samples: &[RunSample], key: &str) -> Option<Spread> {
    let v: Option<Vec<f64>> = samples.iter().map(|s| s.stdout_json().and_then(|j| j.get(key).and_then(|x| x.as_f64()))).collect();
    Spread::of(&v?)
}

/// Runs the plan. `progress` receives one line per run.
pub fn run_plan(plan: &Plan, mut progress: impl FnMut(&str)) -> Result<Report, BenchError> {
    if plan.runs == 0 {
        return Err(BenchError::Option("--runs must be at least 1".into()));
    }
    if plan.pcaps.is_empty() {
        return Err(BenchError::Option("no capture given; pass --pcap FILE|DIR (make one with gen-pcap)".into()));
    }
    if plan.variants.is_empty() {
        return Err(BenchError::Option("no variant to run".into()));
    }
    let mut inputs = Vec::new();
    for p in &plan.pcaps {
        progress(&format!("counting {}", p.display()));
        inputs.push(Input { path: p.clone(), totals: count_path(p)? });
    }
    let mut results = Vec::new();
    let mut ratios = Vec::new();
    for input in &inputs {
        for w in &plan.workers {
            let workers = w.resolve();
            let mut samples: Vec<Vec<RunSample>> = vec![Vec::new(); plan.variants.len()];
            for run in 0..plan.warmup + plan.runs {
                let warm = run < plan.warmup;
                for (vi, v) in plan.variants.iter().enumerate() {
                    let mut cmd = plan.program.command(&input.path, workers, &v.args);
                    let s = run_measured(&mut cmd).map_err(|source| BenchError::Run {
                        run: run + 1,
                        program: plan.program.name(),
                        workers,
                        pcap: input.path.display().to_string(),
                        source,
                    })?;
                    progress(&format!(
                        "{} workers={}{}{} run {}: {:.3} s, {:.0} MiB",
                        input.path.display(),
                        workers,
                        if plan.variants.len() > 1 { format!(" variant {}", v.name) } else { String::new() },
                        if warm { " (warm-up)" } else { "" },
                        run + 1,
                        s.wall_s,
                        s.max_rss_kib as f64 / 1024.0
                    ));
                    if !warm {
                        samples[vi].push(s);
                    }
                }
            }
            let rows: Vec<Row> =
                plan.variants.iter().zip(samples).map(|(v, s)| row(&input.path, &input.totals, workers, v, s)).collect();
            if rows.len() == 2 {
                let r = rows[1].packets_per_s.median / rows[0].packets_per_s.median.max(1e-12);
                ratios.push(Ratio {
                    pcap: input.path.clone(),
                    workers,
                    baseline: rows[0].variant.clone(),
                    candidate: rows[1].variant.clone(),
                    packets_per_s_ratio: r,
                    processing_ratio: rows[0]
                        .processing_s
                        .as_ref()
                        .zip(rows[1].processing_s.as_ref())
                        .map(|(a, b)| a.median / b.median.max(1e-12)),
                    min_ratio: plan.min_ratio,
                    pass: plan.min_ratio.is_none_or(|m| r >= m),
                });
            }
            results.extend(rows);
        }
    }
    Ok(Report { program: plan.program.name(), runs: plan.runs, inputs, results, ratios })
}

fn human(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// The human-readable table.
pub fn render_table(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "program: {}   runs per configuration: {} (median [min – max])", r.program, r.runs);
    for i in &r.inputs {
        let t = &i.totals;
        let _ = writeln!(
            s,
            "capture: {}  files {}  packets {}  captured {:.1} MB{}",
            i.path.display(),
            t.files,
            t.packets,
            t.captured_bytes as f64 / 1e6,
            if t.truncated_files > 0 { format!("  ({} unreadable or cut files)", t.truncated_files) } else { String::new() }
        );
    }
    let _ = writeln!(
        s,
        "\n{:<24} {:>3} {:<10} {:>24} {:>26} {:>22} {:>22} {:>8} {:>8} {:>8}",
        "capture", "wkr", "variant", "wall s", "packets/s", "Gbit/s", "peak RSS MiB", "cpu s", "load s", "proc s"
    );
    for row in &r.results {
        let name = row.pcap.file_name().map_or_else(|| row.pcap.display().to_string(), |n| n.to_string_lossy().into_owned());
        let _ = writeln!(
            s,
            "{:<24} {:>3} {:<10} {:>24} {:>26} {:>22} {:>22} {:>8.2} {:>8} {:>8}",
            truncate(&name, 24),
            row.workers,
            truncate(&row.variant, 10),
            format!("{:.3} [{:.3}–{:.3}]", row.wall_s.median, row.wall_s.min, row.wall_s.max),
            format!("{} [{}–{}]", human(row.packets_per_s.median), human(row.packets_per_s.min), human(row.packets_per_s.max)),
            format!("{:.3} [{:.3}–{:.3}]", row.gbit_per_s.median, row.gbit_per_s.min, row.gbit_per_s.max),
            format!("{:.0} [{:.0}–{:.0}]", row.peak_rss_mib.median, row.peak_rss_mib.min, row.peak_rss_mib.max),
            row.cpu_s.median,
            row.load_s.as_ref().map_or("-".to_string(), |x| format!("{:.3}", x.median)),
            row.processing_s.as_ref().map_or("-".to_string(), |x| format!("{:.3}", x.median)),
        );
    }
    for v in r.results.iter().filter(|row| !row.args.is_empty()).map(|row| (&row.variant, &row.args)).collect::<std::collections::BTreeMap<_, _>>() {
        let _ = writeln!(s, "variant {}: {}", v.0, v.1.join(" "));
    }
    for q in &r.ratios {
        let _ = writeln!(
            s,
            "ratio {}/{} packets/s ({} workers): {:.3} whole run{}{}",
            q.candidate,
            q.baseline,
            q.workers,
            q.packets_per_s_ratio,
            q.processing_ratio.map_or(String::new(), |p| format!(", {p:.3} processing only (rule load left out)")),
            match q.min_ratio {
                Some(m) if q.pass => format!("  (floor {m}: pass)"),
                Some(m) => format!("  (floor {m}: FAIL)"),
                None => String::new(),
            }
        );
    }
    s
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let tail: String = s.chars().rev().take(n - 1).collect::<Vec<_>>().into_iter().rev().collect();
        format!("…{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_parse() {
        assert_eq!(Workers::parse_list("1,all").unwrap(), vec![Workers::Count(1), Workers::All]);
        assert!(Workers::parse_list("0").is_err());
        assert!(Workers::parse_list("two").is_err());
        assert!(Workers::parse_list("").is_err());
        assert!(Workers::All.resolve() >= 1);
    }

    #[test]
    fn ward_command_line_is_as_specified() {
        let c = Program::Ward("/x/ward".into()).command(Path::new("/tmp/a.pcap"), 4, &["--rules".into(), "r.rules".into()]);
        let args: Vec<String> = c.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(c.get_program(), "/x/ward");
        assert_eq!(args, ["sensor", "--pcap", "/tmp/a.pcap", "--workers", "4", "--eve", "/dev/null", "--summary-json", "--rules", "r.rules"]);
    }

    #[test]
    fn template_substitutes_placeholders() {
        let p = Program::template("sh -c 'cat {pcap} > /dev/null' --n={workers}").unwrap();
        let c = p.command(Path::new("/tmp/b c.pcap"), 2, &[]);
        let args: Vec<String> = c.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(args, ["-c", "cat /tmp/b c.pcap > /dev/null", "--n=2"]);
        assert!(Program::template("sh -c 'unbalanced").is_err());
        assert!(Program::template("  ").is_err());
    }
}
