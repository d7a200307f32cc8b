//! `ward sensor`: turns the command line into a [`SensorConfig`], runs it, prints the counters.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context};
use ward_sensor::config::{default_workers, EveOutput, Input, SensorConfig};

use crate::SensorArgs;

pub fn run(mut args: SensorArgs) -> anyhow::Result<ExitCode> {
    if args.summary_json && args.eve == "-" {
        bail!("--summary-json prints on stdout, where --eve - also writes; give --eve a file (or /dev/null)");
    }
    let mut config = build_config(&args)?;
    // Signals first: once the load line below is printed, SIGHUP reloads and SIGTERM stops
    // cleanly (never their default action, which ends the process).
    let stop = Arc::new(AtomicBool::new(false));
    ward_sensor::signals::install(stop.clone()).context("cannot install the signal handlers")?;
    let loading = std::time::Instant::now();
    // The hub's indicators (kept up to date by the sync) are matched like any indicator list.
    if let Some(file) = crate::sensor_service::hub_indicator_file(&args) {
        if !file.exists() {
            std::fs::write(&file, "id,type,value,severity,description,expiry\n")
                .with_context(|| format!("cannot create {}", file.display()))?;
        }
        args.indicators.push(file);
    }
    let engines = build_detect(&args)?;
    config.detect = Some(engines.clone());
    let load_s = loading.elapsed().as_secs_f64();
    let link = crate::sensor_service::start_hub_link(&args, &config.eve, Some(engines))?;
    let summary = match link {
        None => ward_sensor::run(&config, stop).context("sensor failed")?,
        Some((link, sink)) => {
            let summary = ward_sensor::run_with_sink(&config, sink, stop).context("sensor failed")?;
            link.finish(std::time::Duration::from_secs(10))?;
            summary
        }
    };
    eprintln!("{}", summary.counters_text());
    if args.summary_json {
        let c = &summary.counters;
        let json = serde_json::json!({
            "packets": c.capture_packets,
            "bytes": c.capture_bytes,
            "decode_errors": c.decode_errors,
            "pcre_limit_hits": c.pcre_limit_hits,
            "eve_records": summary.eve_records,
            "load_s": load_s,
            "processing_s": summary.elapsed.as_secs_f64(),
            "peak_rss_bytes": ward_sensor::stats::peak_rss_bytes(),
            "rule_reloads": c.detect.as_ref().map_or(0, |d| d.reloads),
            "rule_reloads_refused": c.detect.as_ref().map_or(0, |d| d.reloads_refused),
        });
        println!("{json}");
    }
    for error in &summary.capture_errors {
        eprintln!("ward: {error}");
    }
    Ok(if summary.capture_errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Loads rules and indicators (reports what loaded on stderr) and sets up the scan detector.
fn build_detect(args: &SensorArgs) -> anyhow::Result<ward_sensor::detect::Engines> {
    use ward_sensor::detect::{DetectConfig, Engines};
    use ward_sensor::ward_detect::ScanConfig;
    if args.scan_window == 0 || args.scan_ports == 0 || args.scan_hosts == 0 || args.scan_pairs == 0 {
        bail!("--scan-window, --scan-ports, --scan-hosts and --scan-pairs must be at least 1");
    }
    if args.pcre_match_limit == 0 || args.pcre_depth_limit == 0 {
        bail!("--pcre-match-limit and --pcre-depth-limit must be at least 1 (0 would stop every pcre search)");
    }
    if !(0.0..=1.0).contains(&args.reload_max_rule_loss) {
        bail!("--reload-max-rule-loss must be between 0 and 1 (a share of the running rules), not {}", args.reload_max_rule_loss);
    }
    let scan = (!args.no_scan_detect).then(|| ScanConfig {
        window_secs: args.scan_window,
        vertical_ports: args.scan_ports,
        horizontal_hosts: args.scan_hosts,
        block_pairs: args.scan_pairs,
        ..ScanConfig::default()
    });
    let cfg = DetectConfig {
        rule_files: args.rules.clone(),
        vars: args.set.clone(),
        indicator_files: args.indicators.clone(),
        scan,
        watch_interval: (args.reload_interval > 0).then(|| std::time::Duration::from_secs(args.reload_interval)),
        pcre_limits: ward_sensor::ward_detect::PcreLimits { match_limit: args.pcre_match_limit, depth_limit: args.pcre_depth_limit },
        max_rule_loss: args.reload_max_rule_loss,
    };
    let (engines, summary) = Engines::load(cfg)?;
    if !args.rules.is_empty() || !args.indicators.is_empty() {
        eprintln!("ward: {}", summary.text());
    }
    Ok(engines)
}

fn build_config(args: &SensorArgs) -> anyhow::Result<SensorConfig> {
    let mut config = SensorConfig::default();
    for path in &args.pcap {
        if !path.exists() {
            bail!("no such file or directory: {} (give a pcap/pcapng file or a directory of them)", path.display());
        }
        if path.is_dir() {
            let files = ward_packet::capture::capture_files_in(path)
                .with_context(|| format!("cannot list {}", path.display()))?;
            if files.is_empty() {
                bail!("no capture files (.pcap, .pcapng, .cap, .gz) in directory {}", path.display());
            }
            config.inputs.extend(files.into_iter().map(Input::File));
        } else {
            config.inputs.push(Input::File(path.clone()));
        }
    }
    if let Some(iface) = &args.interface {
        config.inputs.push(Input::Interface(iface.clone()));
    }
    config.workers = match args.workers {
        Some(0) => bail!("--workers must be at least 1"),
        Some(n) => n,
        None => default_workers(),
    };
    config.eve = match args.eve.as_str() {
        "-" => EveOutput::Stdout,
        "/dev/null" => EveOutput::Null,
        path => EveOutput::File(path.into()),
    };
    for kind in &args.eve_exclude {
        match kind.trim() {
            "flow" => config.eve_types.flow = false,
            "dns" => config.eve_types.dns = false,
            "http" => config.eve_types.http = false,
            "tls" => config.eve_types.tls = false,
            "stats" => config.eve_types.stats = false,
            other => bail!("--eve-exclude: unknown record type {other:?} (use flow, dns, http, tls, stats)"),
        }
    }
    if let Some(filter) = &args.filter {
        ward_packet::filter::Filter::parse(filter).map_err(|err| anyhow::anyhow!("--filter: {err}"))?;
        config.filter = Some(filter.clone());
    }
    for field in &args.alert_fields {
        let alert = &mut config.eve_types.alert;
        match field.trim() {
            "payload" => alert.payload = true,
            "payload-printable" => alert.payload_printable = true,
            "packet" => alert.packet = true,
            "verdict" => alert.verdict = true,
            other => bail!("--alert-fields: unknown field {other:?} (use payload, payload-printable, packet, verdict)"),
        }
    }
    config.midstream = args.midstream;
    config.async_oneside = args.async_oneside;
    config.vlan_tracking = !args.no_vlan_tracking;
    config.reassembly_depth = args.reassembly_depth;
    config.flow_memcap = args.flow_memcap.saturating_mul(1024 * 1024);
    config.progress = !args.quiet;
    Ok(config)
}
