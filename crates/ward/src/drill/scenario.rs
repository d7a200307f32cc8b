//! Scenarios: the TOML a drill runs (docs/drill.md "Writing a scenario"), parsed and checked
//! into a [`Plan`]: every participant named, every inject's targets drawn (deterministically,
//! from the scenario's seed), every threshold in scenario seconds.
//!
//! ```toml
//! name = "2016-scan"
//! title = "One actor scans the election systems of 21 states"
//! description = "…"
//! jurisdictions = 60          # default; --jurisdictions overrides
//! states = 21                 # the generated jurisdictions spread over this many states
//! real_sensors = 10           # jurisdictions with a real sensor pipeline (at most 50)
//! seed = 2016
//! escalate_after_mins = 15    # unacknowledged warnings go to the next contact
//!
//! [people]                    # the simulated people who acknowledge warnings
//! ack_share = 0.9
//! ack_median_secs = 300
//! ack_p90_secs = 1200
//! actions = ["blocked", "investigating"]
//!
//! [[participant]]             # optional named participants (the rest are generated)
//! name = "Adams County"
//! state = "OH"
//! broken_contact = true       # its first contact does not answer: a miss, then escalation
//!
//! [[inject]]
//! id = "scan"
//! at_secs = 0
//! attack = "port-scan"        # a ward-sim attack (see `ward drill attacks`)
//! targets = { counties = 21, one_per_state = true }   # or ["Adams County", …]
//! # targets = { counties = 3, from = "scan" }        # among an earlier inject's targets
//! actor = "198.18.23.66"
//! spread_secs = 300           # targets are hit one after another over this time
//!
//! [[objective]]
//! id = "warn-60s"
//! text = "Every targeted office warned within 60 s"
//! metric = "time-to-warn"     # time-to-detect | time-to-hub | time-to-warn | time-to-state | time-to-ack
//! threshold_secs = 60
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{bail, Context};
use serde::Deserialize;
use ward_sim::attack::AttackKind;
use ward_sim::mix::Rng;

/// What an inject does: a network attack from ward-sim, or a disinformation report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectKind {
    Attack(AttackKind),
    /// Each target files a report of the same false claim through the hub's disinformation
    /// path (`POST /api/v1/disinfo/reports`), naming every target as concerned.
    Disinfo,
}

impl InjectKind {
    pub fn name(self) -> &'static str {
        match self {
            InjectKind::Attack(k) => k.name(),
            InjectKind::Disinfo => "disinformation",
        }
    }
    pub fn description(self) -> &'static str {
        match self {
            InjectKind::Attack(k) => k.description(),
            InjectKind::Disinfo => "offices report the same false claim; the hub joins the reports into one case and tells every office it names and their states",
        }
    }
    /// Whether the hub is expected to warn the targets (a campaign, or a case).
    pub fn sighting(self) -> bool {
        match self {
            InjectKind::Attack(k) => k.sighting(),
            InjectKind::Disinfo => true,
        }
    }
    /// The sensor detector that ought to fire (nothing for a report: an official files it).
    pub fn detection(self) -> ward_sim::attack::Detection {
        match self {
            InjectKind::Attack(k) => k.detection(),
            InjectKind::Disinfo => ward_sim::attack::Detection::Nothing,
        }
    }
    pub fn is_disinfo(self) -> bool {
        self == InjectKind::Disinfo
    }
}

/// The false claim a disinformation inject reports.
#[derive(Debug, Clone, Default)]
pub struct Claim {
    pub claim: String,
    pub truth: String,
    pub citation: String,
    pub category: String,
    pub platform: String,
    pub url: String,
}

/// At most this many real sensor pipelines run in one drill process.
pub const MAX_REAL_SENSORS: usize = 50;
/// At most this many jurisdictions.
pub const MAX_JURISDICTIONS: usize = 20_000;
/// At most this many injects.
pub const MAX_INJECTS: usize = 200;

/// The scenarios that ship with ward (`ward drill run 2016-scan`).
pub const BUILT_IN: &[(&str, &str)] = &[
    ("2016-scan", include_str!("../../scenarios/2016-scan.toml")),
    ("ransomware-county", include_str!("../../scenarios/ransomware-county.toml")),
    ("election-night", include_str!("../../scenarios/election-night.toml")),
    ("spear-phishing-states", include_str!("../../scenarios/spear-phishing-states.toml")),
    ("tabletop-5", include_str!("../../scenarios/tabletop-5.toml")),
];

/// The states jurisdictions are spread over, in this order: (code, name).
pub const STATES: &[(&str, &str)] = &[
    ("AL", "Alabama"), ("AK", "Alaska"), ("AZ", "Arizona"), ("AR", "Arkansas"), ("CA", "California"),
    ("CO", "Colorado"), ("CT", "Connecticut"), ("DE", "Delaware"), ("FL", "Florida"), ("GA", "Georgia"),
    ("HI", "Hawaii"), ("ID", "Idaho"), ("IL", "Illinois"), ("IN", "Indiana"), ("IA", "Iowa"),
    ("KS", "Kansas"), ("KY", "Kentucky"), ("LA", "Louisiana"), ("ME", "Maine"), ("MD", "Maryland"),
    ("MA", "Massachusetts"), ("MI", "Michigan"), ("MN", "Minnesota"), ("MS", "Mississippi"), ("MO", "Missouri"),
    ("MT", "Montana"), ("NE", "Nebraska"), ("NV", "Nevada"), ("NH", "New Hampshire"), ("NJ", "New Jersey"),
    ("NM", "New Mexico"), ("NY", "New York"), ("NC", "North Carolina"), ("ND", "North Dakota"), ("OH", "Ohio"),
    ("OK", "Oklahoma"), ("OR", "Oregon"), ("PA", "Pennsylvania"), ("RI", "Rhode Island"), ("SC", "South Carolina"),
    ("SD", "South Dakota"), ("TN", "Tennessee"), ("TX", "Texas"), ("UT", "Utah"), ("VT", "Vermont"),
    ("VA", "Virginia"), ("WA", "Washington"), ("WV", "West Virginia"), ("WI", "Wisconsin"), ("WY", "Wyoming"),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default = "default_jurisdictions")]
    jurisdictions: usize,
    #[serde(default = "default_states")]
    states: usize,
    #[serde(default = "default_real")]
    real_sensors: usize,
    #[serde(default)]
    seed: u64,
    #[serde(default = "default_escalate")]
    escalate_after_mins: f64,
    /// Ordinary traffic per real sensor capture, KiB.
    #[serde(default = "default_traffic")]
    traffic_kib: u64,
    #[serde(default)]
    people: People,
    #[serde(default, rename = "participant")]
    participants: Vec<ParticipantSpec>,
    #[serde(default, rename = "inject")]
    injects: Vec<InjectSpec>,
    #[serde(default, rename = "objective")]
    objectives: Vec<ObjectiveSpec>,
}

fn default_jurisdictions() -> usize {
    20
}
fn default_states() -> usize {
    2
}
fn default_real() -> usize {
    5
}
fn default_escalate() -> f64 {
    15.0
}
fn default_traffic() -> u64 {
    128
}

/// The simulated people who acknowledge warnings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct People {
    /// Share of warnings acknowledged at all (0–1).
    pub ack_share: f64,
    /// Log-normal response time: median and 90th percentile, scenario seconds.
    pub ack_median_secs: f64,
    pub ack_p90_secs: f64,
    /// Actions reported with an acknowledgement, drawn uniformly.
    pub actions: Vec<String>,
}

impl Default for People {
    fn default() -> Self {
        People { ack_share: 0.9, ack_median_secs: 300.0, ack_p90_secs: 1200.0, actions: vec!["blocked".into(), "investigating".into()] }
    }
}

impl People {
    /// Draws one response: None when this person does not acknowledge, else the delay in
    /// scenario seconds.
    pub fn draw(&self, rng: &mut Rng) -> Option<(f64, String)> {
        if !rng.chance(self.ack_share) {
            return None;
        }
        // Log-normal: ln(delay) ~ N(ln median, sigma), with sigma from the 90th percentile.
        let mu = self.ack_median_secs.max(0.001).ln();
        let sigma = ((self.ack_p90_secs.max(self.ack_median_secs) / self.ack_median_secs.max(0.001)).ln() / 1.2816).max(0.0);
        let (u1, u2) = (rng.unit().max(1e-12), rng.unit());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let action = if self.actions.is_empty() { "investigating".to_string() } else { rng.pick(&self.actions).clone() };
        Some(((mu + sigma * z).exp(), action))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParticipantSpec {
    name: String,
    state: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    broken_contact: bool,
    #[serde(default)]
    real_sensor: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InjectSpec {
    id: String,
    #[serde(default)]
    at_secs: f64,
    attack: String,
    targets: Targets,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    spread_secs: f64,
    #[serde(default)]
    description: Option<String>,
    // A disinformation inject's report (defaults: a false claim about polling hours).
    #[serde(default)]
    claim: Option<String>,
    #[serde(default)]
    truth: Option<String>,
    #[serde(default)]
    citation: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    platform: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Targets {
    Names(Vec<String>),
    Draw(Draw),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Draw {
    counties: usize,
    #[serde(default)]
    one_per_state: bool,
    /// Draw only from these states (codes); default all taking part.
    #[serde(default)]
    states: Vec<String>,
    /// Draw only from an earlier inject's targets (the actor comes back to the same offices).
    #[serde(default)]
    from: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectiveSpec {
    id: String,
    text: String,
    metric: String,
    threshold_secs: f64,
}

/// What an objective measures, from the inject to …
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// … the sensor's alert.
    Detect,
    /// … the hub storing it.
    Hub,
    /// … the first warning delivered to the targeted jurisdiction.
    Warn,
    /// … the state's office told (roll-up), per targeted state, from its first inject.
    State,
    /// … the warning acknowledged.
    Ack,
}

impl Metric {
    fn parse(s: &str) -> Option<Metric> {
        Some(match s {
            "time-to-detect" => Metric::Detect,
            "time-to-hub" => Metric::Hub,
            "time-to-warn" => Metric::Warn,
            "time-to-state" => Metric::State,
            "time-to-ack" => Metric::Ack,
            _ => return None,
        })
    }
}

/// A jurisdiction taking part.
#[derive(Debug, Clone)]
pub struct Participant {
    pub name: String,
    /// Two-letter state.
    pub state: String,
    /// True for a state's own office.
    pub is_state: bool,
    /// Its network (10.x.y.0/24).
    pub net: (u8, u8),
    pub real_sensor: bool,
    /// Its first contact does not answer.
    pub broken_contact: bool,
}

/// One inject, its targets drawn.
#[derive(Debug, Clone)]
pub struct Inject {
    pub id: String,
    pub at_secs: f64,
    pub kind: InjectKind,
    pub description: String,
    /// The report a disinformation inject files.
    pub claim: Option<Claim>,
    pub actor: Ipv4Addr,
    pub domain: String,
    /// Indexes into [`Plan::participants`], in the order they are hit.
    pub targets: Vec<usize>,
    pub spread_secs: f64,
}

/// One objective.
#[derive(Debug, Clone)]
pub struct Objective {
    pub id: String,
    pub text: String,
    pub metric: Metric,
    pub threshold_secs: f64,
}

/// A scenario ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub title: String,
    pub description: String,
    pub seed: u64,
    pub escalate_after_mins: f64,
    pub traffic_kib: u64,
    pub people: People,
    pub participants: Vec<Participant>,
    pub injects: Vec<Inject>,
    pub objectives: Vec<Objective>,
}

impl Plan {
    /// The scenario's last inject, scenario seconds after the start.
    pub fn last_inject_secs(&self) -> f64 {
        self.injects.iter().map(|i| i.at_secs + i.spread_secs).fold(0.0, f64::max)
    }

    /// The states taking part (codes, in order).
    pub fn states(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self.participants.iter().map(|p| p.state.as_str()).collect();
        set.into_iter().map(String::from).collect()
    }
}

/// Reads a scenario: a built-in name or a file.
pub fn load(spec: &str) -> anyhow::Result<(String, String)> {
    if let Some((_, text)) = BUILT_IN.iter().find(|(n, _)| *n == spec) {
        return Ok((spec.to_string(), text.to_string()));
    }
    let path = Path::new(spec);
    if !path.exists() {
        let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
        bail!("no scenario {spec:?}: give a scenario file or one of the built-in scenarios: {}", names.join(", "));
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the scenario {}", path.display()))?;
    Ok((path.display().to_string(), text))
}

/// Options that override the scenario's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub jurisdictions: Option<usize>,
    pub real_sensors: Option<usize>,
}

/// Parses and checks a scenario and draws its participants and targets.
pub fn plan(source: &str, text: &str, over: &Overrides) -> anyhow::Result<Plan> {
    if text.len() > 4 << 20 {
        bail!("{source}: a scenario file is at most 4 MiB");
    }
    let file: File = toml::from_str(text).with_context(|| format!("{source} is not a valid scenario"))?;
    let n = over.jurisdictions.unwrap_or(file.jurisdictions);
    if n == 0 || n > MAX_JURISDICTIONS {
        bail!("{source}: jurisdictions must be 1 to {MAX_JURISDICTIONS} (got {n})");
    }
    let n_states = file.states.clamp(1, STATES.len());
    let real = over.real_sensors.unwrap_or(file.real_sensors).min(MAX_REAL_SENSORS);
    let people = &file.people;
    let positive = |v: f64| v > 0.0 && v.is_finite();
    if !(0.0..=1.0).contains(&people.ack_share) || !positive(people.ack_median_secs) || !positive(people.ack_p90_secs)
    {
        bail!("{source}: [people] ack_share must be 0–1, ack_median_secs and ack_p90_secs above 0");
    }
    if !(file.escalate_after_mins >= 0.0 && file.escalate_after_mins <= 10_080.0) {
        bail!("{source}: escalate_after_mins must be 0 (off) to 10080 (a week)");
    }
    if file.injects.is_empty() || file.injects.len() > MAX_INJECTS {
        bail!("{source}: a scenario needs 1 to {MAX_INJECTS} [[inject]] entries");
    }

    // Participants: the named ones, then one state office per state taking part, then counties
    // spread round-robin over the states until there are n.
    let mut participants: Vec<Participant> = Vec::new();
    let mut names = BTreeSet::new();
    let states: Vec<(&str, &str)> = {
        let mut v: Vec<(&str, &str)> = Vec::new();
        for p in &file.participants {
            let code = p.state.to_ascii_uppercase();
            let Some(st) = STATES.iter().find(|(c, _)| *c == code) else {
                bail!("{source}: participant {:?}: state {:?} is not a two-letter US state code", p.name, p.state);
            };
            if !v.contains(st) {
                v.push(*st);
            }
        }
        for st in STATES {
            if v.len() >= n_states.max(v.len()) {
                break;
            }
            if !v.contains(st) {
                v.push(*st);
            }
        }
        v
    };
    let net_of = |i: usize| -> (u8, u8) { ((i / 250 + 1) as u8, (i % 250) as u8) };
    for p in &file.participants {
        if p.name.trim().is_empty() || p.name.len() > 200 {
            bail!("{source}: a participant needs a name of 1 to 200 characters");
        }
        if !names.insert(p.name.clone()) {
            bail!("{source}: participant {:?} is named twice", p.name);
        }
        let is_state = match p.kind.as_deref() {
            None | Some("county") | Some("city") => false,
            Some("state") => true,
            Some(k) => bail!("{source}: participant {:?}: kind {k:?} must be county, city or state", p.name),
        };
        participants.push(Participant {
            name: p.name.clone(),
            state: p.state.to_ascii_uppercase(),
            is_state,
            net: net_of(participants.len()),
            real_sensor: p.real_sensor.unwrap_or(true),
            broken_contact: p.broken_contact,
        });
    }
    for (code, name) in &states {
        if participants.iter().any(|p| p.is_state && p.state == *code) || participants.len() >= n {
            continue;
        }
        let office = format!("State of {name}");
        if names.insert(office.clone()) {
            participants.push(Participant { name: office, state: code.to_string(), is_state: true, net: net_of(participants.len()), real_sensor: false, broken_contact: false });
        }
    }
    let mut k = 0usize;
    while participants.len() < n {
        let (code, name) = states[k % states.len()];
        let county = format!("{name} County {}", k / states.len() + 1);
        k += 1;
        if names.insert(county.clone()) {
            participants.push(Participant { name: county, state: code.to_string(), is_state: false, net: net_of(participants.len()), real_sensor: false, broken_contact: false });
        }
    }
    participants.truncate(n.max(file.participants.len()));

    // Injects: parse, draw targets.
    let mut rng = Rng::new(file.seed ^ 0x5eed_d111);
    let mut injects = Vec::new();
    let mut ids = BTreeSet::new();
    for (i, spec) in file.injects.iter().enumerate() {
        if !ids.insert(spec.id.clone()) {
            bail!("{source}: inject {:?} is named twice", spec.id);
        }
        let kind = if spec.attack == "disinformation" {
            InjectKind::Disinfo
        } else {
            match AttackKind::parse(&spec.attack) {
                Some(k) => InjectKind::Attack(k),
                None => {
                    let all: Vec<&str> = AttackKind::ALL.iter().map(|k| k.name()).chain(["disinformation"]).collect();
                    bail!("{source}: inject {:?}: unknown attack {:?}; one of: {}", spec.id, spec.attack, all.join(", "));
                }
            }
        };
        let claim = kind.is_disinfo().then(|| Claim {
            claim: spec.claim.clone().unwrap_or_else(|| "Polling places close at 5 pm on Election Day because of staff shortages".into()),
            truth: spec.truth.clone().unwrap_or_else(|| "Polling places are open 6:30 am to 7:30 pm on Election Day, and anyone in line at closing time votes.".into()),
            citation: spec.citation.clone().unwrap_or_else(|| "the state election code; the county election office's website".into()),
            category: spec.category.clone().unwrap_or_else(|| "voting-logistics".into()),
            platform: spec.platform.clone().unwrap_or_else(|| "x".into()),
            url: spec.url.clone().unwrap_or_else(|| format!("https://x.com/ward_drill_{}/status/{}", plan_tag(&file.name), 1_900_000_000_000_000_000u64 + i as u64)),
        });
        if !(spec.at_secs >= 0.0 && spec.spread_secs >= 0.0 && spec.at_secs.is_finite() && spec.spread_secs.is_finite()) {
            bail!("{source}: inject {:?}: at_secs and spread_secs must be 0 or more", spec.id);
        }
        let actor: Ipv4Addr = match &spec.actor {
            Some(a) => a.parse().with_context(|| format!("{source}: inject {:?}: actor {a:?} is not an IPv4 address", spec.id))?,
            None => Ipv4Addr::new(198, 18, 100 + (i % 150) as u8, 66),
        };
        if actor.is_private() || actor.is_loopback() || actor.is_documentation() {
            bail!("{source}: inject {:?}: actor {actor} is private or a documentation address; the hub never takes those for a remote actor (use 198.18.0.0/15)", spec.id);
        }
        let domain = spec.domain.clone().unwrap_or_default();
        if matches!(kind, InjectKind::Attack(k) if k.needs_domain()) && domain.is_empty() {
            bail!("{source}: inject {:?}: the {} attack needs a domain", spec.id, kind.name());
        }
        let targets = match &spec.targets {
            Targets::Names(list) => {
                let mut t = Vec::new();
                for name in list {
                    let Some(idx) = participants.iter().position(|p| &p.name == name) else {
                        bail!("{source}: inject {:?}: no participant named {name:?}", spec.id);
                    };
                    t.push(idx);
                }
                t
            }
            Targets::Draw(d) => {
                let among = match &d.from {
                    None => None,
                    Some(id) => match injects.iter().find(|i: &&Inject| &i.id == id) {
                        Some(i) => Some(i.targets.clone()),
                        None => bail!("{source}: inject {:?}: `from` names {id:?}, which is not an earlier inject", spec.id),
                    },
                };
                draw(&participants, d, among.as_deref(), &mut rng).with_context(|| format!("{source}: inject {:?}", spec.id))?
            }
        };
        if targets.is_empty() {
            bail!("{source}: inject {:?} targets nobody", spec.id);
        }
        injects.push(Inject {
            id: spec.id.clone(),
            at_secs: spec.at_secs,
            kind,
            claim,
            description: spec.description.clone().unwrap_or_else(|| kind.description().to_string()),
            actor,
            domain,
            targets,
            spread_secs: spec.spread_secs,
        });
    }

    // Real sensors: named participants that asked for one, then targets (that is where a real
    // pipeline proves something), then the other counties in order, up to `real`.
    let mut order: Vec<usize> = Vec::new();
    for inj in &injects {
        for &t in &inj.targets {
            if !order.contains(&t) {
                order.push(t);
            }
        }
    }
    let mut real_left = real;
    for p in participants.iter_mut() {
        p.real_sensor = false;
    }
    let named: Vec<usize> = file.participants.iter().enumerate().filter(|(_, p)| p.real_sensor.unwrap_or(true)).map(|(i, _)| i).collect();
    let rest: Vec<usize> = (0..participants.len()).collect();
    for i in named.into_iter().chain(order).chain(rest) {
        if real_left == 0 {
            break;
        }
        if !participants[i].real_sensor && !participants[i].is_state {
            participants[i].real_sensor = true;
            real_left -= 1;
        }
    }

    let mut objectives = Vec::new();
    for o in &file.objectives {
        let Some(metric) = Metric::parse(&o.metric) else {
            bail!("{source}: objective {:?}: metric {:?} must be time-to-detect, time-to-hub, time-to-warn, time-to-state or time-to-ack", o.id, o.metric);
        };
        if !(o.threshold_secs > 0.0 && o.threshold_secs.is_finite()) {
            bail!("{source}: objective {:?}: threshold_secs must be above 0", o.id);
        }
        objectives.push(Objective { id: o.id.clone(), text: o.text.clone(), metric, threshold_secs: o.threshold_secs });
    }
    if objectives.is_empty() {
        bail!("{source}: a scenario needs at least one [[objective]]");
    }
    Ok(Plan {
        name: file.name,
        title: if file.title.is_empty() { "ward drill".into() } else { file.title },
        description: file.description,
        seed: file.seed,
        escalate_after_mins: file.escalate_after_mins,
        traffic_kib: file.traffic_kib.clamp(16, 64 * 1024),
        people: file.people,
        participants,
        injects,
        objectives,
    })
}

/// A scenario name as it may stand in a URL path.
fn plan_tag(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).take(40).collect()
}

/// Draws `d.counties` county participants (not state offices), one per state first when asked.
fn draw(participants: &[Participant], d: &Draw, among: Option<&[usize]>, rng: &mut Rng) -> anyhow::Result<Vec<usize>> {
    let allowed: BTreeSet<String> = d.states.iter().map(|s| s.to_ascii_uppercase()).collect();
    let mut by_state: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, p) in participants.iter().enumerate() {
        if among.is_some_and(|a| !a.contains(&i)) {
            continue;
        }
        if !p.is_state && (allowed.is_empty() || allowed.contains(&p.state)) {
            by_state.entry(p.state.as_str()).or_default().push(i);
        }
    }
    let pool: usize = by_state.values().map(Vec::len).sum();
    if d.counties > pool {
        bail!("asks for {} counties but only {pool} take part; raise --jurisdictions", d.counties);
    }
    if d.one_per_state && d.counties > by_state.len() {
        bail!("asks for {} counties, one per state, but only {} states take part; raise `states` in the scenario", d.counties, by_state.len());
    }
    let mut out = Vec::new();
    if d.one_per_state {
        let mut states: Vec<&Vec<usize>> = by_state.values().collect();
        // Shuffle the states, then one random county of each.
        for i in (1..states.len()).rev() {
            states.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for list in states.into_iter().take(d.counties) {
            out.push(list[rng.below(list.len() as u64) as usize]);
        }
    } else {
        let mut all: Vec<usize> = by_state.into_values().flatten().collect();
        for i in (1..all.len()).rev() {
            all.swap(i, rng.below(i as u64 + 1) as usize);
        }
        out = all.into_iter().take(d.counties).collect();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_scenario_plans() {
        for (name, text) in BUILT_IN {
            let p = plan(name, text, &Overrides::default()).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(!p.injects.is_empty() && !p.objectives.is_empty(), "{name}");
        }
    }

    #[test]
    fn the_2016_scan_hits_21_states_among_8800_jurisdictions() {
        let (_, text) = load("2016-scan").unwrap();
        let p = plan("2016-scan", &text, &Overrides { jurisdictions: Some(8800), real_sensors: None }).unwrap();
        assert_eq!(p.participants.len(), 8800);
        let states: BTreeSet<&str> = p.injects[0].targets.iter().map(|&t| p.participants[t].state.as_str()).collect();
        assert_eq!(states.len(), 21);
        assert_eq!(p.participants.iter().filter(|p| p.real_sensor).count(), MAX_REAL_SENSORS, "2016-scan runs 50 real pipelines");
        assert!(p.injects[0].targets.iter().all(|&t| p.participants[t].real_sensor), "every scanned county runs a real one");
        let nets: BTreeSet<(u8, u8)> = p.participants.iter().map(|p| p.net).collect();
        assert_eq!(nets.len(), 8800, "every office has its own network");
    }

    #[test]
    fn bad_scenarios_are_refused_with_what_to_do() {
        let base = "name='x'\n[[objective]]\nid='o'\ntext='t'\nmetric='time-to-warn'\nthreshold_secs=60\n";
        let cases = [
            ("[[inject]]\nid='a'\nattack='teleport'\ntargets=['x']\n", "unknown attack"),
            ("[[inject]]\nid='a'\nattack='port-scan'\ntargets=['Nobody']\n", "no participant named"),
            ("[[inject]]\nid='a'\nattack='disinformation'\ntargets=['x']\n", "no participant named"),
            ("[[inject]]\nid='a'\nattack='port-scan'\nactor='10.0.0.1'\ntargets={counties=1}\n", "private"),
            ("[[inject]]\nid='a'\nattack='beacon'\ntargets={counties=1}\n", "needs a domain"),
            ("[[inject]]\nid='a'\nattack='port-scan'\ntargets={counties=500}\n", "raise --jurisdictions"),
        ];
        for (inject, want) in cases {
            let err = plan("t.toml", &format!("{base}{inject}"), &Overrides::default()).unwrap_err();
            assert!(format!("{err:#}").contains(want), "{inject}: {err:#}");
        }
        assert!(plan("t.toml", "name = 3", &Overrides::default()).is_err());
        assert!(plan("t.toml", &format!("{base}[[inject]]\nid='a'\nattack='port-scan'\ntargets={{counties=1}}\n"), &Overrides { jurisdictions: Some(0), real_sensors: None }).is_err());
    }

    /// The scenario loader is a parser of user input: mutated and truncated scenarios (bytes
    /// flipped, lines dropped, numbers made huge or negative) give an error or a plan, never a
    /// panic, and a plan stays within the bounds.
    #[test]
    fn mutated_scenarios_never_panic() {
        let mut rng = Rng::new(42);
        let swaps = ["0", "-1", "1e308", "nan", "99999999999", "\"\"", "[]", "{}", "true"];
        for round in 0..3000 {
            let (_, text) = BUILT_IN[round % BUILT_IN.len()];
            let mut lines: Vec<String> = text.lines().map(String::from).collect();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(lines.len() as u64) as usize;
                match rng.below(4) {
                    0 => {
                        lines.remove(i);
                    }
                    1 => {
                        if let Some(eq) = lines[i].find('=') {
                            lines[i] = format!("{}= {}", &lines[i][..eq], rng.pick(&swaps));
                        }
                    }
                    2 => {
                        let cut = rng.below(lines[i].len() as u64 + 1) as usize;
                        lines[i] = lines[i].chars().take(cut).collect();
                    }
                    _ => {
                        let j = rng.below(lines.len() as u64) as usize;
                        lines.swap(i, j);
                    }
                }
            }
            let over = Overrides { jurisdictions: [None, Some(1), Some(3)][round % 3], real_sensors: None };
            if let Ok(p) = plan("fuzz", &lines.join("\n"), &over) {
                assert!(p.participants.len() <= MAX_JURISDICTIONS && p.participants.iter().filter(|p| p.real_sensor).count() <= MAX_REAL_SENSORS);
                assert!(p.injects.iter().all(|i| !i.targets.is_empty() && i.targets.iter().all(|&t| t < p.participants.len())));
            }
        }
    }

    #[test]
    fn people_acknowledge_with_the_configured_share_and_median() {
        let people = People { ack_share: 0.8, ack_median_secs: 100.0, ack_p90_secs: 400.0, actions: vec!["blocked".into()] };
        let mut rng = Rng::new(9);
        let draws: Vec<Option<(f64, String)>> = (0..10_000).map(|_| people.draw(&mut rng)).collect();
        let acked: Vec<f64> = draws.iter().flatten().map(|d| d.0).collect();
        let share = acked.len() as f64 / draws.len() as f64;
        assert!((share - 0.8).abs() < 0.03, "{share}");
        let mut sorted = acked.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        let p90 = sorted[sorted.len() * 9 / 10];
        assert!((80.0..125.0).contains(&median), "median {median}");
        assert!((300.0..530.0).contains(&p90), "p90 {p90}");
    }
}
