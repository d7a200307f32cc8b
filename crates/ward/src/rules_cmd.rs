//! `ward rules check`: parse and compile rule files without traffic and report what loaded.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use ward_sensor::ward_detect::{self, Vars};

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Parse and compile rule files: how many loaded, how many were skipped and why (grouped by
    /// keyword, then each skipped rule with file, line and sid), load time and peak memory.
    /// Exit status 0 when every rule loaded, 1 when some were skipped, 2 on an unreadable file.
    Check(CheckArgs),
}

#[derive(Args)]
#[command(after_help = "Examples:\n  \
    ward rules check ../shared/data/et-open/emerging-all.rules\n  \
    ward rules check local.rules --set HOME_NET=[10.0.0.0/8] --json | jq .skipped_by_keyword")]
pub struct CheckArgs {
    /// Rule files to check (classification.config beside the first one is used when present).
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,

    /// Print one JSON object (loaded, total, loaded_percent, skipped_by_keyword, skipped_rules,
    /// load_seconds, peak_rss_kb, index) instead of text.
    #[arg(long)]
    json: bool,

    /// Set a rule variable, e.g. HOME_NET=[10.0.0.0/8]. Repeat for several.
    #[arg(long = "set", value_name = "VAR=VALUE")]
    set: Vec<String>,
}

pub fn run(cmd: RulesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RulesCommand::Check(args) => check(args),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let mut vars = Vars::default();
    for a in &args.set {
        if let Err(e) = vars.set_assignment(a) {
            bail!("--set {a}: {e}");
        }
    }
    let report = ward_detect::check(&args.files, &vars, args.json);
    print!("{report}");
    Ok(if !report.report.file_errors.is_empty() {
        ExitCode::from(2)
    } else if report.all_loaded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
