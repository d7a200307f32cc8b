//! `ward drill`: an automated, scored election-security exercise (issue #14, docs/drill.md).
//!
//! A scenario ([`scenario`], TOML) is a timeline of injects (ward-sim attacks laid over office
//! traffic), the participants and the objectives with thresholds. The runner ([`run`]) plays it
//! through real sensor pipelines and lightweight simulated relays into a real hub — the embedded
//! one (default) or an existing one (`--hub`) — and plays the offices' people, who acknowledge
//! warnings after a drawn delay. [`measure`] turns what happened into the measured outcome
//! ([`outcome`]): every path from inject to acknowledgement, the objectives rated P/S/M/U
//! (HSEEP), and [`report`] writes the after-action report in HTML, PDF, JSON and CSV.
//!
//! Exit status: 0 when every objective was performed (P, S or M), 1 when one was rated U
//! (unable to be performed), so a drill can run on a schedule as a health check; 2 when the
//! drill itself could not run.

pub mod measure;
pub mod outcome;
pub mod report;
pub mod run;
pub mod scenario;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use ward_hub::model::{now_ms, Role as UserRole};
use ward_hub::HubConfig;

/// The escalation message kind (a warning not acknowledged in time, sent to the next contact).
pub const KIND_UNACKED: &str = ward_hub::ack::KIND_UNACKED;

/// `ward drill` subcommands.
#[derive(Subcommand, Debug)]
pub enum DrillCommand {
    /// Run a scenario: set the participants up in a hub, play the injects through real sensors
    /// and simulated relays, measure every warning and acknowledgement, write the after-action
    /// report. Exit status 1 when an objective is rated U (unable to be performed).
    Run(RunArgs),
    /// List the scenarios that ship with ward.
    List,
    /// List the attacks an inject can use, with what ought to detect them.
    Attacks,
    /// Check a scenario file without running it: parse, draw the participants and targets, and
    /// print the plan.
    Check {
        /// A scenario file, or the name of a built-in scenario.
        scenario: String,
        /// Jurisdictions taking part (overrides the scenario's `jurisdictions`).
        #[arg(long, value_name = "N")]
        jurisdictions: Option<usize>,
    },
}

/// Options of `ward drill run`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    ward drill run tabletop-5                         # five jurisdictions, embedded hub, report in ./drill-report\n  \
    ward drill run 2016-scan --jurisdictions 8800 --speed 60 --report /tmp/2016\n  \
    ward drill run my-scenario.toml --hub https://hub.example.org:8443 --ca hub.crt --user drill-analyst\n\n\
Against an existing hub (--hub) the drill logs in as an analyst (password from WARD_DRILL_PASSWORD), \
creates its participants as jurisdictions named \"DRILL <scenario>: …\", marked as drill \
jurisdictions so every message to them says DRILL, and uses attacker addresses from \
198.18.0.0/15 that belong to nobody. Read docs/drill.md before running one against a \
production hub.")]
pub struct RunArgs {
    /// A scenario file, or the name of a built-in scenario (`ward drill list`).
    scenario: String,

    /// Jurisdictions taking part (overrides the scenario's `jurisdictions`; up to 20,000). At
    /// most 50 run a real sensor pipeline; the rest are simulated relays.
    #[arg(long, value_name = "N")]
    jurisdictions: Option<usize>,

    /// Jurisdictions with a real sensor pipeline (overrides the scenario's; at most 50).
    #[arg(long, value_name = "N")]
    real_sensors: Option<usize>,

    /// Scenario seconds per real second: 60 plays an hour in a minute. Fixed delays (the hub's
    /// processing, deliveries) then weigh 60 times more in scenario time.
    #[arg(long, value_name = "X", default_value_t = 60.0)]
    speed: f64,

    /// Directory for the after-action report (report.html, report.pdf, outcome.json, CSV).
    #[arg(long, value_name = "DIR", default_value = "drill-report")]
    report: PathBuf,

    /// Run against this existing hub instead of an embedded one.
    #[arg(long, value_name = "URL")]
    hub: Option<String>,

    /// CA file of the hub's certificate (with --hub), when not a public one.
    #[arg(long, value_name = "FILE", requires = "hub")]
    ca: Option<PathBuf>,

    /// The analyst the drill logs in as (with --hub); the password is read from
    /// WARD_DRILL_PASSWORD.
    #[arg(long, value_name = "NAME", default_value = "drill", requires = "hub")]
    user: String,

    /// The embedded hub's store: a PostgreSQL URL (postgres://USER@HOST/DB, an empty database
    /// the drill may fill) instead of SQLite in the work directory.
    #[arg(long, value_name = "URL", conflicts_with = "hub")]
    database: Option<String>,

    /// Working directory (the embedded hub's store, sensor spools and captures). Default: a
    /// new temporary directory, removed afterwards.
    #[arg(long, value_name = "DIR")]
    work: Option<PathBuf>,

    /// Longest wait after the last inject for warnings, escalations and acknowledgements, in
    /// real seconds (default: the largest objective threshold and the escalation time at
    /// --speed, plus 20 s).
    #[arg(long, value_name = "SECS")]
    settle: Option<f64>,

    /// Requests in flight while the participants are set up.
    #[arg(long, value_name = "N", default_value_t = 16)]
    concurrency: usize,

    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
}

/// Runs a `ward drill` subcommand.
pub fn run_cmd(cmd: DrillCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DrillCommand::List => {
            for (name, text) in scenario::BUILT_IN {
                let title = scenario::plan(name, text, &Default::default()).map(|p| p.title).unwrap_or_default();
                println!("{name:<24} {title}");
            }
            Ok(ExitCode::SUCCESS)
        }
        DrillCommand::Attacks => {
            for k in ward_sim::attack::AttackKind::ALL {
                let det = match k.detection() {
                    ward_sim::attack::Detection::ScanDetector => "scan detector".to_string(),
                    ward_sim::attack::Detection::Rule(sid) => format!("rule {sid}"),
                    ward_sim::attack::Detection::Indicator => "hub indicator list".to_string(),
                    ward_sim::attack::Detection::Nothing => "nothing (retro-hunt only)".to_string(),
                };
                let hub = if k.sighting() { "correlated by the hub" } else { "detection only" };
                println!("{:<20} {:<28} {:<22} {}", k.name(), det, hub, k.description());
            }
            Ok(ExitCode::SUCCESS)
        }
        DrillCommand::Check { scenario, jurisdictions } => {
            let (source, text) = scenario::load(&scenario)?;
            let plan = scenario::plan(&source, &text, &scenario::Overrides { jurisdictions, real_sensors: None })?;
            println!("{}: {}", plan.name, plan.title);
            println!(
                "{} jurisdictions in {} states ({} with a real sensor), escalation after {} min",
                plan.participants.len(),
                plan.states().len(),
                plan.participants.iter().filter(|p| p.real_sensor).count(),
                plan.escalate_after_mins
            );
            for i in &plan.injects {
                let states: std::collections::BTreeSet<&str> = i.targets.iter().map(|&t| plan.participants[t].state.as_str()).collect();
                println!("  inject {:<20} at {:>6.0} s  {:<20} {} targets in {} states (actor {})", i.id, i.at_secs, i.kind.name(), i.targets.len(), states.len(), i.actor);
            }
            for o in &plan.objectives {
                println!("  objective {:<14} {} (threshold {} s)", o.id, o.text, o.threshold_secs);
            }
            Ok(ExitCode::SUCCESS)
        }
        DrillCommand::Run(args) => run_drill(args),
    }
}

fn run_drill(args: RunArgs) -> anyhow::Result<ExitCode> {
    if !(args.speed > 0.0 && args.speed <= 10_000.0) {
        bail!("--speed must be above 0 and at most 10000 (scenario seconds per real second)");
    }
    let (source, text) = scenario::load(&args.scenario)?;
    let plan = scenario::plan(&source, &text, &scenario::Overrides { jurisdictions: args.jurisdictions, real_sensors: args.real_sensors })?;
    let tmp;
    let work = match &args.work {
        Some(w) => w.clone(),
        None => {
            tmp = tempfile::Builder::new().prefix("ward-drill-").tempdir().context("cannot create a working directory")?;
            tmp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let max_threshold = plan.objectives.iter().map(|o| o.threshold_secs).fold(0.0, f64::max);
    let settle = args.settle.unwrap_or((max_threshold.max(plan.escalate_after_mins * 60.0 * 2.0)) / args.speed + 20.0);
    let opts = run::RunOptions { speed: args.speed, work: work.clone(), settle_secs: settle, setup_concurrency: args.concurrency, progress: !args.quiet };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    let outcome = rt.block_on(async {
        let (target, hub) = match &args.hub {
            Some(url) => {
                let password = std::env::var("WARD_DRILL_PASSWORD").context("give the analyst's password in WARD_DRILL_PASSWORD")?;
                let target = run::HubTarget {
                    url: url.clone(),
                    ca: args.ca.clone(),
                    user: args.user.clone(),
                    password,
                    label: url.clone(),
                    name_prefix: format!("DRILL {}: ", plan.name),
                };
                (target, None)
            }
            None => {
                let (target, hub) = embedded_hub(&work, args.database.as_deref(), &plan, args.speed).await?;
                (target, Some(hub))
            }
        };
        let seen = run::run(plan.clone(), &target, &opts).await;
        if let Some(hub) = hub {
            hub.shutdown().await;
        }
        anyhow::Ok(measure::measure(&plan, &seen?, args.speed))
    })?;
    let files = report::write_all(&outcome, &args.report)?;
    if !args.quiet {
        print_summary(&outcome);
        for f in files {
            println!("report: {}", f.display());
        }
    }
    let unable = outcome.objectives.iter().any(|o| o.rating == outcome::Rating::U);
    Ok(if unable { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn print_summary(o: &outcome::DrillOutcome) {
    println!(
        "drill {} ({}): {} jurisdictions in {} states, {} real sensors and {} simulated relays, speed {}",
        o.scenario, o.hub, o.jurisdictions, o.states, o.real_sensors, o.simulated_relays, o.speed
    );
    for i in &o.injects {
        println!("  inject {:<20} {:<20} targeted {:>4}  detected {:>4}  warned {:>4}  acknowledged {:>4}", i.id, i.attack, i.targeted, i.detected, i.warned, i.acknowledged);
    }
    let missed = o.paths.iter().filter(|p| p.outcome == outcome::PathOutcome::Missed).count();
    let false_w = o.paths.iter().filter(|p| p.outcome == outcome::PathOutcome::FalseWarning).count();
    let escalated = o.paths.iter().filter(|p| p.escalated_ms.is_some()).count();
    println!("  misses {missed}, false warnings {false_w}, escalations {escalated}");
    let told: Vec<&outcome::StateRow> = o.state_rows.iter().filter(|s| s.targeted > 0).collect();
    if !told.is_empty() {
        let first = o.injects.iter().map(|i| i.injected_ms).min().unwrap_or(o.started_ms);
        let all_told = told.iter().map(|s| s.state_told_ms).collect::<Option<Vec<i64>>>().and_then(|v| v.into_iter().max());
        match all_told {
            Some(t) => println!(
                "  all {} targeted states told {} after the first probe ({:.1} s real)",
                told.len(),
                measure::human_secs((t - first) as f64 / 1000.0 * o.speed),
                (t - first) as f64 / 1000.0
            ),
            None => println!("  {} of {} targeted states told", told.iter().filter(|s| s.state_told_ms.is_some()).count(), told.len()),
        }
    }
    for ob in &o.objectives {
        println!("  objective {:<14} {} {:<34} {}", ob.id, ob.rating.letter(), ob.rating.meaning(), ob.detail);
    }
}

/// Starts the embedded hub for a drill (HTTPS on a loopback port, a certificate made for the
/// run, SQLite in the work directory or the given PostgreSQL database) and its analyst.
async fn embedded_hub(work: &std::path::Path, database: Option<&str>, plan: &scenario::Plan, speed: f64) -> anyhow::Result<(run::HubTarget, ward_hub::server::RunningHub)> {
    let (cert, key) = ward_hub::server::self_signed_pem()?;
    let (cert_path, key_path) = (work.join("hub.crt"), work.join("hub.key"));
    std::fs::write(&cert_path, cert)?;
    std::fs::write(&key_path, key)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut config = HubConfig { listen: SocketAddr::from(([127, 0, 0, 1], port)), data_dir: work.join("hub"), ..Default::default() };
    config.database = database.map(String::from);
    config.tls.cert = Some(cert_path.clone());
    config.tls.key = Some(key_path);
    config.public_url = format!("https://localhost:{port}");
    config.notify.allow_targets = vec![ward_hub::notify::egress::AllowedNet(std::net::IpAddr::from([127, 0, 0, 1]).into())];
    config.notify.escalate_after_mins = plan.escalate_after_mins / speed;
    config.limits.sensor_batches_per_sec = 10_000.0;
    config.limits.user_requests_per_sec = 100_000.0;
    config.feeds.poll = false;
    config.taxii.hub_name = format!("ward drill {}", plan.name);
    std::fs::create_dir_all(&config.data_dir)?;
    let password: String = ward_hub::auth::random_token("drill").chars().take(24).collect();
    let phc = ward_hub::auth::hash_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let hub = ward_hub::start(config).await.context("cannot start the embedded hub")?;
    // The store's calls block (the PostgreSQL client has its own runtime): off the async threads.
    let store = hub.state.store.clone();
    tokio::task::spawn_blocking(move || store.create_user("drill", &phc, UserRole::Analyst, None, now_ms())).await??;
    let label = match database {
        Some(_) => "embedded hub (PostgreSQL store)".to_string(),
        None => "embedded hub (SQLite store)".to_string(),
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok((
        run::HubTarget { url: format!("https://localhost:{port}"), ca: Some(cert_path), user: "drill".into(), password, label, name_prefix: String::new() },
        hub,
    ))
}
