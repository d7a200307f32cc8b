//! bench-disinfo: how well disinformation reports are joined into cases (issue #13).
//!
//! ```text
//! bench-disinfo pairs [--file crates/ward-hub/tests/data/disinfo_pairs.tsv]
//! bench-disinfo load [--reports 1000] [--jurisdictions 500] [--dup-share 0.2] [--per-minute 1000] [--runs 3] [--min-similarity F] [--deliver]
//! ```
//!
//! * `pairs`: precision, recall and F1 of [`ward_hub::disinfo::cases::same_claim`] on the
//!   labelled claim pairs, at the default threshold and across thresholds, next to a peer: plain
//!   Jaccard of word sets (no stemming, no anchors) at its best threshold.
//! * `load`: a SQLite hub store in a temporary directory, `--jurisdictions` offices, and
//!   `--reports` reports filed at `--per-minute` (paced), `--dup-share` of them near-duplicates
//!   (paraphrased claims, half of them with the original's post URL under another form) of an
//!   earlier report; the rest distinct claims from templates that differ by place, date or
//!   number (look-alikes). Prints clustering accuracy against the generator's truth (pairwise
//!   precision and recall of "same case", and the share of reports in the right case) and the
//!   filing latency (submit → case decided and durable) p50/p99, medians over `--runs`.
//! * `load --deliver`: the same through a real hub (`ward_hub::start`, SQLite, HTTP on loopback):
//!   an analyst files each report on behalf of its office over `POST /api/v1/disinfo/reports`,
//!   every office has a webhook contact on a loopback receiver, and the time to warn is submit →
//!   the reporter's receipt arriving at its webhook, p50/p99.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ward_bench::mix::Rng;
use ward_bench::hub_scale::{quantile, spread};
use ward_hub::disinfo::cases::{fingerprint, normalize_url, same_claim, DEFAULT_MIN_SIMILARITY};
use ward_hub::disinfo::{CasePolicy, Category, NewReport, Urgency};
use ward_hub::model::{now_ms, JurisdictionKind, NewJurisdiction};
use ward_hub::store::sqlite::SqliteStore;
use ward_hub::store::Store;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T> {
    match args.iter().position(|a| a == name) {
        Some(i) => args.get(i + 1).context(format!("{name} needs a value"))?.parse().map_err(|_| anyhow::anyhow!("bad value for {name}")),
        None => Ok(default),
    }
}

fn read_pairs(path: &str) -> Result<Vec<(bool, String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 3 {
            bail!("bad line in {path}: {line}");
        }
        out.push((f[0] == "1", f[1].to_string(), f[2].to_string()));
    }
    Ok(out)
}

/// (precision, recall, F1) of predictions against labels.
fn scores(results: &[(bool, bool)]) -> (f64, f64, f64) {
    let tp = results.iter().filter(|(l, p)| *l && *p).count() as f64;
    let fp = results.iter().filter(|(l, p)| !*l && *p).count() as f64;
    let fn_ = results.iter().filter(|(l, p)| *l && !*p).count() as f64;
    let p = if tp + fp == 0.0 { 1.0 } else { tp / (tp + fp) };
    let r = if tp + fn_ == 0.0 { 1.0 } else { tp / (tp + fn_) };
    let f = if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) };
    (p, r, f)
}

fn word_set(s: &str) -> BTreeSet<String> {
    s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

fn pairs(args: &[String]) -> Result<()> {
    let file: String = arg(args, "--file", "crates/ward-hub/tests/data/disinfo_pairs.tsv".to_string())?;
    let pairs = read_pairs(&file)?;
    let positives = pairs.iter().filter(|p| p.0).count();
    println!("labelled pairs: {} ({} same claim, {} different)", pairs.len(), positives, pairs.len() - positives);
    let fps: Vec<_> = pairs.iter().map(|(l, a, b)| (*l, fingerprint(a), fingerprint(b))).collect();
    let at = |t: f64| -> Vec<(bool, bool)> { fps.iter().map(|(l, a, b)| (*l, same_claim(a, &b.signature, &b.anchors, t).is_some())).collect() };
    let (p, r, f) = scores(&at(DEFAULT_MIN_SIMILARITY));
    println!("ward (MinHash 128, word 1+2-grams, anchors) at {DEFAULT_MIN_SIMILARITY:.2}: precision {p:.3}  recall {r:.3}  F1 {f:.3}");
    println!("threshold  precision  recall  F1");
    for t in [0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6] {
        let (p, r, f) = scores(&at(t));
        println!("{t:9.2}  {p:9.3}  {r:6.3}  {f:.3}");
    }
    // The peer: Jaccard of plain word sets, its best threshold.
    let sets: Vec<_> = pairs.iter().map(|(l, a, b)| (*l, word_set(a), word_set(b))).collect();
    let mut best = (0.0, 0.0, 0.0, 0.0);
    for i in 1..20 {
        let t = i as f64 * 0.05;
        let res: Vec<(bool, bool)> = sets.iter().map(|(l, a, b)| (*l, a.intersection(b).count() as f64 / a.union(b).count().max(1) as f64 >= t)).collect();
        let (p, r, f) = scores(&res);
        if f > best.3 {
            best = (t, p, r, f);
        }
    }
    println!("peer (plain word-set Jaccard, best threshold {:.2}): precision {:.3}  recall {:.3}  F1 {:.3}", best.0, best.1, best.2, best.3);
    println!("ratio F1 ward/peer = {:.2}", f / best.3);
    let misses: Vec<_> = fps.iter().zip(&pairs).filter(|((l, a, b), _)| *l != same_claim(a, &b.signature, &b.anchors, DEFAULT_MIN_SIMILARITY).is_some()).collect();
    if args.iter().any(|a| a == "--show-errors") {
        for ((l, a, b), (_, ta, tb)) in misses {
            println!("  {} sim {:.2} anchors [{}] / [{}]\n    {ta}\n    {tb}", if *l { "missed" } else { "false join" }, ward_hub::disinfo::cases::similarity(&a.signature, &b.signature), a.anchors, b.anchors);
        }
    }
    Ok(())
}

const PLACES: &[&str] = &[
    "Maricopa", "Pima", "Fulton", "Cobb", "Dane", "Milwaukee", "Clark", "Washoe", "Harris", "Dallas", "Travis", "Wayne", "Oakland", "Kent", "Allegheny", "Erie",
    "Philadelphia", "Bucks", "Gwinnett", "DeKalb", "Cochise", "Yavapai", "Durham", "Wake", "Multnomah", "Lane", "King", "Boulder", "Denver", "Douglas",
];
const MONTHS: &[&str] = &["October", "November"];
const TEMPLATES: &[&str] = &[
    "Polling places in {P} County close at {H}pm on {M} {D}",
    "Early voting in {P} County has been cancelled on {M} {D} because of a water main break",
    "Mail ballots postmarked after {M} {D} will not be counted in {P} County",
    "The {P} County clerk's office was hacked on {M} {D} and {N} voter records were deleted",
    "Voters in {P} County must bring {N} forms of ID to vote on {M} {D}",
    "{N} ballots were found dumped behind the {P} County elections office on {M} {D}",
    "Voting machines in {P} County flipped {N} votes on {M} {D}",
    "Polls in {P} County open at {H} am instead of 7 on {M} {D}",
];
const PARAPHRASE_PREFIX: &[&str] = &["BREAKING: ", "Heads up! ", "Share this: ", "", "URGENT ", "People are saying "];
const PARAPHRASE_SUFFIX: &[&str] = &[", pass it on", " - tell everyone", "!!", "", " according to a source", ". Spread the word"];

struct Claim {
    text: String,
    truth: usize,
    url: String,
}

/// A paraphrase that keeps the claim's facts: a prefix and suffix, a dropped filler word, a
/// reordering of "on DATE" to the front.
fn paraphrase(rng: &mut Rng, text: &str) -> String {
    let mut t = text.to_string();
    if rng.chance(0.5) {
        if let Some(i) = t.find(" on ") {
            let (head, tail) = t.split_at(i);
            let date = tail[4..].to_string();
            if !date.contains(' ') || date.split(' ').count() == 2 && !date.contains(',') {
                t = format!("On {date}, {}{}", head[..1].to_lowercase(), &head[1..]);
            }
        }
    }
    for (from, to) in [(" County", ""), ("Polling places", "Polls"), ("has been cancelled", "is cancelled"), ("will not be counted", "won't be counted"), ("were found dumped", "got dumped")] {
        if rng.chance(0.5) {
            t = t.replacen(from, to, 1);
        }
    }
    format!("{}{}{}", *rng.pick(PARAPHRASE_PREFIX), t, *rng.pick(PARAPHRASE_SUFFIX))
}

fn generate(n: usize, dup_share: f64, seed: u64) -> Vec<Claim> {
    let mut rng = Rng::new(seed);
    let mut out: Vec<Claim> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut truths = 0;
    while out.len() < n {
        if !out.is_empty() && rng.chance(dup_share) {
            let i = rng.below(out.len() as u64) as usize;
            let (orig, truth, url) = (out[i].text.clone(), out[i].truth, out[i].url.clone());
            // Half the duplicates carry the same post under another URL form, half a new post.
            let url = if rng.chance(0.5) { url.replace("https://x.com/", "https://mobile.twitter.com/") + "?s=20&utm_source=share" } else { format!("https://www.facebook.com/posts/{}", rng.next_u64()) };
            out.push(Claim { text: paraphrase(&mut rng, &orig), truth, url });
            continue;
        }
        let t = *rng.pick(TEMPLATES);
        let place = *rng.pick(PLACES);
        let month = *rng.pick(MONTHS);
        let text = t
            .replace("{P}", place)
            .replace("{M}", month)
            .replace("{D}", &rng.range(1, 28).to_string())
            .replace("{H}", &rng.range(2, 6).to_string())
            .replace("{N}", &rng.range(2, 89_999).to_string());
        if !seen.insert(text.clone()) {
            continue;
        }
        out.push(Claim { text, truth: truths, url: format!("https://x.com/user{}/status/{}", rng.below(1000), rng.next_u64() >> 1) });
        truths += 1;
    }
    out
}

struct LoadResult {
    precision: f64,
    recall: f64,
    right_case: f64,
    p50_ms: f64,
    p99_ms: f64,
    cases: usize,
    truths: usize,
}

fn load_once(reports: usize, jurisdictions: usize, dup_share: f64, per_minute: f64, policy: &CasePolicy, seed: u64) -> Result<LoadResult> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open_dir(dir.path())?;
    let mut ids = Vec::new();
    for i in 0..jurisdictions {
        let j = store.create_jurisdiction(&NewJurisdiction { name: format!("Bench County {i}"), kind: JurisdictionKind::County, state: Some("ZZ".into()), home_net: None }, now_ms())?;
        ids.push(j.id);
    }
    let claims = generate(reports, dup_share, seed);
    let mut rng = Rng::new(seed ^ 0x5eed);
    let gap = Duration::from_secs_f64(60.0 / per_minute);
    let start = Instant::now();
    let mut latencies = Vec::new();
    let mut case_of = Vec::new();
    for (n, c) in claims.iter().enumerate() {
        let due = start + gap * n as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let submitted = Instant::now();
        let j = ids[rng.below(ids.len() as u64) as usize];
        let new = NewReport {
            jurisdiction_id: j,
            reporter_user_id: 1,
            reporter_username: format!("clerk{j}"),
            on_behalf: false,
            platform: "x".into(),
            category: Category::VotingLogistics,
            urgency: Urgency::High,
            claim: c.text.clone(),
            truth: "Polls are open 7am to 8pm on election day.".into(),
            citation: "State election code".into(),
            seen_ms: None,
            views: None,
            shares: None,
            disarm: Vec::new(),
            urls: vec![(c.url.clone(), normalize_url(&c.url).map_err(anyhow::Error::msg)?)],
            concerns: vec![j],
            screenshots: Vec::new(),
            fingerprint: fingerprint(&c.text),
        };
        let outcome = store.disinfo_file_report(&new, policy, now_ms())?;
        latencies.push(submitted.elapsed().as_secs_f64() * 1000.0);
        case_of.push(outcome.case.id);
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let mut r = cluster_scores(&claims, &case_of);
    r.p50_ms = quantile(&latencies, 0.5);
    r.p99_ms = quantile(&latencies, 0.99);
    Ok(r)
}

/// Clustering accuracy of `case_of` (one case id per claim) against the generator's truth.
fn cluster_scores(claims: &[Claim], case_of: &[i64]) -> LoadResult {
    // Pairwise: every pair of reports, same case vs same truth.
    let (mut tp, mut fp, mut fn_) = (0u64, 0u64, 0u64);
    for i in 0..claims.len() {
        for k in i + 1..claims.len() {
            let truth = claims[i].truth == claims[k].truth;
            let got = case_of[i] == case_of[k];
            match (truth, got) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (true, false) => fn_ += 1,
                _ => {}
            }
        }
    }
    // Right case: a report is in the case that holds most of its truth's reports.
    let mut majority: HashMap<usize, HashMap<i64, usize>> = HashMap::new();
    for (c, case) in claims.iter().zip(case_of) {
        *majority.entry(c.truth).or_default().entry(*case).or_default() += 1;
    }
    let right: usize = majority.values().map(|m| m.values().max().copied().unwrap_or(0)).sum();
    LoadResult {
        precision: if tp + fp == 0 { 1.0 } else { tp as f64 / (tp + fp) as f64 },
        recall: if tp + fn_ == 0 { 1.0 } else { tp as f64 / (tp + fn_) as f64 },
        right_case: right as f64 / claims.len().max(1) as f64,
        p50_ms: 0.0,
        p99_ms: 0.0,
        cases: case_of.iter().collect::<BTreeSet<_>>().len(),
        truths: majority.len(),
    }
}

/// Receipts by report id, with their arrival time.
#[derive(Clone, Default)]
struct Arrivals(std::sync::Arc<std::sync::Mutex<HashMap<i64, Instant>>>);

async fn hook(axum::extract::State(a): axum::extract::State<Arrivals>, body: axum::body::Bytes) -> axum::http::StatusCode {
    let at = Instant::now();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
        if v["type"] == "ward.disinfo.receipt" {
            if let (Some(id), Ok(mut g)) = (v["report_id"].as_i64(), a.0.lock()) {
                g.entry(id).or_insert(at);
            }
        }
    }
    axum::http::StatusCode::NO_CONTENT
}

/// One run through a real hub: (clustering result, time-to-warn p50 and p99 in ms, receipts missing).
fn deliver_once(reports: usize, jurisdictions: usize, dup_share: f64, per_minute: f64, seed: u64) -> Result<(LoadResult, f64, f64, usize)> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let arrivals = Arrivals::default();
        let app = axum::Router::new().route("/hook/{j}", axum::routing::post(hook)).with_state(arrivals.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let hook_addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::tempdir()?;
        let mut config = ward_hub::HubConfig { data_dir: dir.path().to_path_buf(), listen: "127.0.0.1:0".parse()?, ..Default::default() };
        config.notify.allow_targets = vec!["127.0.0.1/32".parse().map_err(|e| anyhow::anyhow!("{e:?}"))?];
        config.limits.user_requests_per_sec = 1e6;
        let hub = ward_hub::start(config).await?;
        let store = hub.state.store.clone();
        let ids = tokio::task::spawn_blocking(move || ward_bench::hub_scale::provision(store.as_ref(), jurisdictions, 0, hook_addr).map(|(ids, _)| ids))
            .await?
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let http = reqwest::Client::new();
        let base = hub.url();
        let login: serde_json::Value =
            http.post(format!("{base}/api/v1/login")).json(&serde_json::json!({"username": "bench", "password": ward_bench::hub_scale::SECRET})).send().await?.json().await?;
        let token = login["token"].as_str().context("no login token")?.to_string();
        let claims = generate(reports, dup_share, seed);
        let mut rng = Rng::new(seed ^ 0x5eed);
        let gap = Duration::from_secs_f64(60.0 / per_minute);
        let start = Instant::now();
        let mut submitted: HashMap<i64, Instant> = HashMap::new();
        let mut case_of = Vec::new();
        let mut filing = Vec::new();
        for (n, c) in claims.iter().enumerate() {
            let due = start + gap * n as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                tokio::time::sleep(wait).await;
            }
            let j = ids[rng.below(ids.len() as u64) as usize];
            let body = serde_json::json!({
                "jurisdiction_id": j, "urls": [c.url], "platform": "x", "category": "voting-logistics", "claim": c.text,
                "truth": "Polls are open 7am to 8pm on election day.", "citation": "State election code",
            });
            let sent = Instant::now();
            let r = http.post(format!("{base}/api/v1/disinfo/reports")).bearer_auth(&token).json(&body).send().await?;
            if r.status() != 201 {
                bail!("report {n}: {} {}", r.status(), r.text().await.unwrap_or_default());
            }
            let v: serde_json::Value = r.json().await?;
            filing.push(sent.elapsed().as_secs_f64() * 1000.0);
            submitted.insert(v["report"]["id"].as_i64().context("no report id")?, sent);
            case_of.push(v["case"]["id"].as_i64().context("no case id")?);
        }
        // Every receipt, or 30 s.
        let deadline = Instant::now() + Duration::from_secs(30);
        while arrivals.0.lock().map(|g| g.len()).unwrap_or(0) < submitted.len() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let got = arrivals.0.lock().map(|g| g.clone()).unwrap_or_default();
        let mut warn: Vec<f64> = submitted.iter().filter_map(|(id, sent)| got.get(id).map(|at| at.duration_since(*sent).as_secs_f64() * 1000.0)).collect();
        warn.sort_by(|a, b| a.total_cmp(b));
        filing.sort_by(|a, b| a.total_cmp(b));
        let missing = submitted.len() - warn.len();
        let mut r = cluster_scores(&claims, &case_of);
        r.p50_ms = quantile(&filing, 0.5);
        r.p99_ms = quantile(&filing, 0.99);
        hub.shutdown().await;
        Ok((r, quantile(&warn, 0.5), quantile(&warn, 0.99), missing))
    })
}

fn load(args: &[String]) -> Result<()> {
    let reports: usize = arg(args, "--reports", 1000)?;
    let jurisdictions: usize = arg(args, "--jurisdictions", 500)?;
    let dup_share: f64 = arg(args, "--dup-share", 0.2)?;
    let per_minute: f64 = arg(args, "--per-minute", 1000.0)?;
    let runs: usize = arg(args, "--runs", 3)?;
    let policy = CasePolicy { min_similarity: arg(args, "--min-similarity", DEFAULT_MIN_SIMILARITY)? };
    println!("load: {reports} reports at {per_minute}/min across {jurisdictions} jurisdictions, {:.0} % near-duplicates, SQLite store, threshold {:.2}, {runs} runs", dup_share * 100.0, policy.min_similarity);
    println!("machine: {}", ward_bench::hub_scale::machine());
    if args.iter().any(|a| a == "--deliver") {
        println!("through a real hub over HTTP, receipts to webhooks on loopback");
        let mut rows = Vec::new();
        for run in 0..runs {
            let (r, p50, p99, missing) = deliver_once(reports, jurisdictions, dup_share, per_minute, 13 + run as u64)?;
            println!(
                "run {}: pairwise precision {:.3} recall {:.3}, right case {:.3}, submit→201 p50 {:.2} ms p99 {:.2} ms, time to warn (submit→receipt) p50 {p50:.2} ms p99 {p99:.2} ms, {missing} receipts missing",
                run + 1, r.precision, r.recall, r.right_case, r.p50_ms, r.p99_ms
            );
            rows.push((p50, p99));
        }
        println!("time to warn p50 ms {}", spread(&rows.iter().map(|r| r.0).collect::<Vec<_>>(), 2));
        println!("time to warn p99 ms {}", spread(&rows.iter().map(|r| r.1).collect::<Vec<_>>(), 2));
        return Ok(());
    }
    let mut results = Vec::new();
    for run in 0..runs {
        let r = load_once(reports, jurisdictions, dup_share, per_minute, &policy, 13 + run as u64)?;
        println!(
            "run {}: pairwise precision {:.3} recall {:.3}, reports in the right case {:.3}, {} cases for {} true claims, filing p50 {:.2} ms p99 {:.2} ms",
            run + 1, r.precision, r.recall, r.right_case, r.cases, r.truths, r.p50_ms, r.p99_ms
        );
        results.push(r);
    }
    let col = |f: fn(&LoadResult) -> f64| results.iter().map(f).collect::<Vec<f64>>();
    println!("pairwise precision {}", spread(&col(|r| r.precision), 3));
    println!("pairwise recall    {}", spread(&col(|r| r.recall), 3));
    println!("right case         {}", spread(&col(|r| r.right_case), 3));
    println!("filing p50 ms      {}", spread(&col(|r| r.p50_ms), 2));
    println!("filing p99 ms      {}", spread(&col(|r| r.p99_ms), 2));
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("pairs") => pairs(&args[1..]),
        Some("load") => load(&args[1..]),
        _ => {
            eprintln!("usage: bench-disinfo pairs [--file PATH] [--show-errors] | load [--reports N] [--jurisdictions N] [--dup-share F] [--per-minute N] [--runs N] [--min-similarity F] [--deliver]");
            std::process::exit(2)
        }
    }
}
