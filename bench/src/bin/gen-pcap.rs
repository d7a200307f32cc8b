//! `gen-pcap`: writes a pcap of realistic mixed election-office traffic for benchmarks.
//!
//! `cargo run --release -p ward-bench --bin gen-pcap -- --size 1GiB --out /tmp/mix.pcap`

use std::fs::File;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use ward_bench::mix::{self, MixWeights, Options};
use ward_bench::size::parse_size;

/// Generate a deterministic pcap of mixed HTTP, DNS, TLS, bulk, ICMP, fragmented and malformed
/// traffic (classic pcap, Ethernet, microsecond timestamps).
#[derive(Debug, Parser)]
#[command(name = "gen-pcap", version)]
struct Args {
    /// Target file size (e.g. 1GiB, 200MiB, 500MB).
    #[arg(long, default_value = "1GiB")]
    size: String,
    /// Output file ("-" for stdout).
    #[arg(long)]
    out: PathBuf,
    /// Seed: the same seed and options always give the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of office hosts.
    #[arg(long, default_value_t = 250)]
    hosts: u32,
    /// Sessions live at once (interleaved flows).
    #[arg(long, default_value_t = 1000)]
    concurrency: usize,
    /// Session mix as kind=weight (http, dns, tls, bulk, icmp, frag, malformed); unnamed kinds
    /// keep their defaults (http=16,dns=40,tls=28,bulk=1,icmp=5,frag=3,malformed=3).
    #[arg(long, default_value = "")]
    mix: String,
    /// Share of hosts that use IPv6 for most flows (0..1).
    #[arg(long, default_value_t = 0.15)]
    ipv6: f64,
    /// Share of hosts on 802.1Q-tagged VLANs (0..1).
    #[arg(long, default_value_t = 0.10)]
    vlan: f64,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn run(args: Args) -> Result<(), String> {
    let target_bytes = parse_size(&args.size).map_err(|e| e.to_string())?;
    let weights = MixWeights::parse(&args.mix).map_err(|e| e.to_string())?;
    let opts = Options {
        target_bytes,
        seed: args.seed,
        hosts: args.hosts,
        concurrency: args.concurrency,
        weights,
        ipv6_share: args.ipv6,
        vlan_share: args.vlan,
        ..Options::default()
    };
    let start = Instant::now();
    let summary = if args.out.as_os_str() == "-" {
        mix::generate(std::io::stdout().lock(), &opts)
    } else {
        let f = File::create(&args.out)
            .map_err(|e| format!("cannot create {}: {e}; check the directory exists and is writable", args.out.display()))?;
        mix::generate(f, &opts)
    }
    .map_err(|e| e.to_string())?;
    let secs = start.elapsed().as_secs_f64();
    if args.json {
        let v = serde_json::json!({
            "out": args.out,
            "seed": args.seed,
            "seconds": secs,
            "mb_per_s": summary.file_bytes as f64 / 1e6 / secs,
            "summary": summary,
        });
        println!("{v}");
    } else {
        eprint!("{summary}");
        eprintln!(
            "wrote {} in {:.2} s ({:.0} MB/s, {:.0} kpackets/s)",
            args.out.display(),
            secs,
            summary.file_bytes as f64 / 1e6 / secs,
            summary.packets as f64 / 1e3 / secs
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen-pcap: {e}");
            ExitCode::from(2)
        }
    }
}
