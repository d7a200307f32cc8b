//! `bench-sensor`: throughput and memory of `ward sensor` over captures.
//!
//! ```text
//! cargo run --release -p ward-bench --bin bench-sensor -- --pcap /tmp/mix.pcap --workers 1,all --runs 5
//! cargo run --release -p ward-bench --bin bench-sensor -- --pcap ../shared/data/pcaps/zeek
//! cargo run --release -p ward-bench --bin bench-sensor -- --pcap /tmp/mix.pcap \
//!     --compare "" " --rules ../shared/data/et-open/emerging-all.rules" --min-ratio 0.5
//! cargo run --release -p ward-bench --bin bench-sensor -- --pcap /tmp/mix.pcap --cmd "cat {pcap}"
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ward_bench::sensor_bench::{default_ward, render_table, run_plan, Plan, Program, Variant, Workers};

/// Run `ward sensor --pcap PATH --workers N --eve /dev/null --summary-json [extra args]` (or any
/// command) over captures and report median/min/max wall time, packets/s, Gbit/s, peak RSS and,
/// from the sensor's summary, its rule load and processing times.
#[derive(Debug, Parser)]
#[command(name = "bench-sensor", version)]
struct Args {
    /// Capture file (.pcap, .pcapng, .gz) or directory of captures; repeatable. A directory is
    /// passed to the sensor as one path and its totals are summed over its capture files.
    #[arg(long, required = true)]
    pcap: Vec<PathBuf>,
    /// Worker counts to run, comma-separated; "all" is every available CPU.
    #[arg(long, default_value = "1,all")]
    workers: String,
    /// Measured runs per configuration.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Unmeasured runs before the measured ones.
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// The ward binary (default: target/release/ward).
    #[arg(long, conflicts_with = "cmd")]
    ward: Option<PathBuf>,
    /// Benchmark an arbitrary command instead of ward; {pcap} and {workers} are substituted,
    /// e.g. --cmd "tcpdump -r {pcap} -w /dev/null".
    #[arg(long)]
    cmd: Option<String>,
    /// Compare two sets of extra arguments (baseline first), e.g. --compare "" " --rules all.rules"
    /// (a leading space keeps an argument that starts with -- a value); runs alternate between
    /// them and the ratio of median packets/s (second/first) is reported over the whole run and,
    /// when the sensor reports it, over processing only (rule load left out).
    #[arg(long, num_args = 2, value_names = ["BASELINE_ARGS", "CANDIDATE_ARGS"])]
    compare: Option<Vec<String>>,
    /// With --compare: fail (exit 1) when the whole-run ratio is below this floor.
    #[arg(long, requires = "compare")]
    min_ratio: Option<f64>,
    /// Print the report as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    json: bool,
    /// Do not print per-run progress.
    #[arg(long, short)]
    quiet: bool,
    /// Extra arguments passed to every run (after --).
    #[arg(last = true)]
    extra: Vec<String>,
}

fn split(s: &str) -> Result<Vec<String>, String> {
    shlex::split(s).ok_or_else(|| format!("cannot split {s:?}: unbalanced quotes"))
}

fn run(args: Args) -> Result<bool, String> {
    let program = match (&args.cmd, &args.ward) {
        (Some(c), _) => Program::template(c).map_err(|e| e.to_string())?,
        (None, Some(w)) => Program::Ward(w.clone()),
        (None, None) => Program::Ward(default_ward().map_err(|e| e.to_string())?),
    };
    let variants = match &args.compare {
        Some(pair) => {
            let mut v = Vec::with_capacity(2);
            for (name, a) in ["A", "B"].iter().zip(pair) {
                let mut all = args.extra.clone();
                all.extend(split(a)?);
                v.push(Variant { name: name.to_string(), args: all });
            }
            v
        }
        None => vec![Variant { name: "run".into(), args: args.extra.clone() }],
    };
    let plan = Plan {
        pcaps: args.pcap.clone(),
        workers: Workers::parse_list(&args.workers).map_err(|e| e.to_string())?,
        runs: args.runs,
        warmup: args.warmup,
        program,
        variants,
        min_ratio: args.min_ratio,
    };
    let quiet = args.quiet;
    let report = run_plan(&plan, |line| {
        if !quiet {
            eprintln!("{line}");
        }
    })
    .map_err(|e| e.to_string())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
    } else {
        print!("{}", render_table(&report));
    }
    Ok(report.passed())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("bench-sensor: a comparison ratio is below --min-ratio");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("bench-sensor: {e}");
            ExitCode::from(2)
        }
    }
}
