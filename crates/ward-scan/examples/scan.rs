//! Stand-alone `ward scan` / `ward report` for trying the scanner before the binary wires it:
//! `cargo run -p ward-scan --example scan -- scan TARGET... [options]` or
//! `cargo run -p ward-scan --example scan -- report weekly --out DIR`.

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scan targets
    Scan(ward_scan::ScanArgs),
    /// Reports from the findings history
    #[command(subcommand)]
    Report(ward_scan::ReportCommand),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(args) => ward_scan::run_scan(args),
        Command::Report(cmd) => ward_scan::run_report(cmd),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
