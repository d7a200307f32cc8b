//! The scanner's side of the hub (`ward scan --hub URL --jurisdiction NAME`): each
//! jurisdiction's registered assets, its scan blackouts, the scan results it uploads, the latest
//! weekly report for the dashboard, and scan-job leases for `ward scan worker` processes.
//!
//! Rules, enforced here and tested in `tests/assets.rs` (API) and in ward-scan's `tests/hub.rs`
//! (a real scan through a real hub):
//! * The hub hands out only what a jurisdiction registered: asking for a target outside its
//!   registered addresses, networks and hostnames is refused (403), and an upload whose targets,
//!   hosts or findings fall outside them is refused whole.
//! * No targets during a blackout (an election day, a maintenance window): 409 with the reason
//!   and the end time; a worker never claims a jurisdiction in blackout.
//! * Rescan cadence (CISA Cyber Hygiene): the next scan of a jurisdiction is due 12 h after a
//!   scan with a critical or known-exploited finding, 24 h (high), 4 days (medium), 6 days (low),
//!   7 days (clean). The cadence is per jurisdiction, from its worst open finding.
//! * Access: an analyst, or the jurisdiction's admin, may register assets, set blackouts, take
//!   targets and upload; a viewer of the jurisdiction may read results and the report; anyone
//!   else gets 404 as for every other object of another jurisdiction.
//!
//! The hub stores results as the scanner's JSON (ward-scan's `ScanResult`) without depending on
//! the scanner crate: only the fields it checks are parsed here. The weekly report is rendered
//! by the scanner from the results the hub holds (so the history is the hub's, shared by every
//! worker) and uploaded; the dashboard serves the latest one at `/scan/{id}/report.html` and
//! `/scan/{id}/report.pdf`.
//! * An uploaded report is not trusted as the hub's own page: it is served as uploaded, under
//!   [`REPORT_CONTENT_SECURITY_POLICY`] (a sandbox: a unique origin with no scripts, no forms,
//!   no plugins, no popups and no navigation of the dashboard; nothing loaded from anywhere but
//!   inline styles and `data:` images, which is all the scanner's template uses), so a forged
//!   report can neither act as the analyst nor show a working fake login form.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::auth::{MaybeUser, UserAuth};
use crate::error::{AppError, AppResult, StoreError};
use crate::model::{now_ms, Jurisdiction, Millis};
use crate::state::HubState;
use crate::store::StoreResult;

/// The policy an uploaded report is served under (replacing the dashboard's): `sandbox` without
/// any `allow-*` token gives the page a unique origin and disables scripts, forms, popups,
/// plugins and top-level navigation; `default-src 'none'` loads nothing from anywhere, with
/// two exceptions the scanner's report needs: its own `<style>` block and `data:` images.
pub const REPORT_CONTENT_SECURITY_POLICY: &str =
    "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Largest scan result or report upload.
pub const MAX_SCAN_UPLOAD_BYTES: usize = 32 * 1024 * 1024;
/// A worker's claim on a jurisdiction lasts this long unless its results arrive first.
pub const SCAN_LEASE_MS: Millis = 2 * 3600 * 1000;
/// Largest network that may be registered: 65,536 addresses (IPv4 /16, IPv6 /112), the
/// scanner's limit without `--allow-large`.
pub const MAX_NETWORK_HOST_BITS: u32 = 16;
/// Assets per jurisdiction at most.
pub const MAX_ASSETS: usize = 10_000;
const HOUR_MS: Millis = 3600 * 1000;
const DAY_MS: Millis = 24 * HOUR_MS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssetKind {
    /// One IPv4 or IPv6 address.
    Address,
    /// A CIDR network of at most 65,536 addresses.
    Network,
    /// A host name (every address it resolves to is scanned).
    Hostname,
    /// A mail domain (SPF, DMARC, MX STARTTLS).
    Domain,
}

impl AssetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AssetKind::Address => "address",
            AssetKind::Network => "network",
            AssetKind::Hostname => "hostname",
            AssetKind::Domain => "domain",
        }
    }

    fn parse(s: &str) -> Option<AssetKind> {
        Some(match s {
            "address" => AssetKind::Address,
            "network" => AssetKind::Network,
            "hostname" => AssetKind::Hostname,
            "domain" => AssetKind::Domain,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanAsset {
    pub id: i64,
    pub jurisdiction_id: i64,
    pub kind: AssetKind,
    pub value: String,
    pub created_ms: Millis,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NewScanAsset {
    /// Inferred when omitted: CIDR → network, address → address, otherwise hostname.
    #[serde(default)]
    pub kind: Option<AssetKind>,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanBlackout {
    pub id: i64,
    pub jurisdiction_id: i64,
    pub starts_ms: Millis,
    pub ends_ms: Millis,
    pub reason: String,
    pub created_ms: Millis,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NewScanBlackout {
    pub starts_ms: Millis,
    pub ends_ms: Millis,
    pub reason: String,
}

/// What a scanner may scan for one jurisdiction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanTargets {
    pub jurisdiction: String,
    pub jurisdiction_id: i64,
    /// Addresses, networks and hostnames.
    pub targets: Vec<String>,
    /// Mail domains.
    pub domains: Vec<String>,
    /// Set when the targets come from a worker's claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until_ms: Option<Millis>,
}

// ---------------------------------------------------------------------------------------------
// validation and coverage (pure)

fn hostname_ok(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-') && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        && !name.rsplit('.').next().is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

fn parse_network(text: &str) -> Option<(IpAddr, u32)> {
    let (addr, prefix) = text.split_once('/')?;
    let addr: IpAddr = addr.trim_matches(|c| c == '[' || c == ']').parse().ok()?;
    let prefix: u32 = prefix.parse().ok()?;
    let bits = if addr.is_ipv4() { 32 } else { 128 };
    (prefix <= bits).then_some((addr, prefix))
}

fn in_network(ip: IpAddr, net: IpAddr, prefix: u32) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Checks and normalises an asset; the error says what is accepted.
pub fn normalise_asset(new: &NewScanAsset) -> Result<(AssetKind, String), String> {
    let value = new.value.trim();
    let kind = new.kind.unwrap_or(if value.contains('/') {
        AssetKind::Network
    } else if value.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>().is_ok() {
        AssetKind::Address
    } else {
        AssetKind::Hostname
    });
    let bad = |what: &str| Err(format!("{value:?} is not {what}"));
    match kind {
        AssetKind::Address => match value.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>() {
            Ok(ip) => Ok((kind, ip.to_string())),
            Err(_) => bad("an IPv4 or IPv6 address"),
        },
        AssetKind::Network => match parse_network(value) {
            Some((addr, prefix)) => {
                let bits = if addr.is_ipv4() { 32 } else { 128 };
                if bits - prefix > MAX_NETWORK_HOST_BITS {
                    return Err(format!("{value:?} holds more than 65,536 addresses: register it as several networks of /{} or smaller", bits - MAX_NETWORK_HOST_BITS));
                }
                // store the network address itself
                let network = match addr {
                    IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) }).into()),
                    IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) }).into()),
                };
                Ok((kind, format!("{network}/{prefix}")))
            }
            None => bad("a CIDR network such as 192.0.2.0/24"),
        },
        AssetKind::Hostname | AssetKind::Domain if hostname_ok(value) => Ok((kind, value.trim_end_matches('.').to_ascii_lowercase())),
        AssetKind::Hostname => bad("a host name"),
        AssetKind::Domain => bad("a mail domain"),
    }
}

/// Whether a scan target (address, CIDR or hostname) lies inside the registered assets.
pub fn covers(assets: &[ScanAsset], target: &str) -> bool {
    let target = target.trim();
    let ip_covered = |ip: IpAddr| {
        assets.iter().any(|a| match a.kind {
            AssetKind::Address => a.value.parse::<IpAddr>().is_ok_and(|x| x == ip),
            AssetKind::Network => parse_network(&a.value).is_some_and(|(net, prefix)| in_network(ip, net, prefix)),
            _ => false,
        })
    };
    if let Some((net, prefix)) = parse_network(target) {
        // a network is covered by a registered network at least as large that contains it
        return assets.iter().any(|a| match a.kind {
            AssetKind::Network => parse_network(&a.value).is_some_and(|(reg, reg_prefix)| reg_prefix <= prefix && in_network(net, reg, reg_prefix)),
            AssetKind::Address => (prefix == 32 && net.is_ipv4() || prefix == 128 && net.is_ipv6()) && a.value.parse::<IpAddr>().is_ok_and(|x| x == net),
            _ => false,
        });
    }
    if let Ok(ip) = target.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>() {
        return ip_covered(ip);
    }
    let name = target.trim_end_matches('.').to_ascii_lowercase();
    assets.iter().any(|a| matches!(a.kind, AssetKind::Hostname) && a.value == name)
}

fn is_domain(assets: &[ScanAsset], domain: &str) -> bool {
    let name = domain.trim_end_matches('.').to_ascii_lowercase();
    assets.iter().any(|a| matches!(a.kind, AssetKind::Domain | AssetKind::Hostname) && a.value == name)
}

/// The parts of ward-scan's `ScanResult` the hub checks.
#[derive(Debug, Deserialize)]
struct UploadedScan {
    finished: chrono::DateTime<chrono::Utc>,
    targets: Vec<String>,
    #[serde(default)]
    domains: Vec<String>,
    hosts: Vec<UploadedHost>,
    findings: Vec<UploadedFinding>,
}

#[derive(Debug, Deserialize)]
struct UploadedHost {
    ip: IpAddr,
    #[serde(default)]
    hostname: Option<String>,
}

#[derive(Debug, Deserialize)]
struct UploadedFinding {
    check: String,
    asset: String,
    severity: String,
    #[serde(default)]
    known_exploited: bool,
}

/// Rescan interval after a scan whose worst finding is `worst` (CISA Cyber Hygiene cadence).
pub fn rescan_interval_ms(worst: &str, known_exploited: bool) -> Millis {
    match worst {
        _ if known_exploited => 12 * HOUR_MS,
        "critical" => 12 * HOUR_MS,
        "high" => 24 * HOUR_MS,
        "medium" => 4 * DAY_MS,
        "low" => 6 * DAY_MS,
        _ => 7 * DAY_MS,
    }
}

/// Checks an upload against the registered assets; returns (finished, next due).
fn check_upload(assets: &[ScanAsset], scan: &UploadedScan) -> Result<(Millis, Millis), String> {
    let mut outside: Vec<String> = Vec::new();
    outside.extend(scan.targets.iter().filter(|t| !covers(assets, t)).cloned());
    outside.extend(scan.domains.iter().filter(|d| !is_domain(assets, d)).cloned());
    for host in &scan.hosts {
        let by_name = host.hostname.as_deref().is_some_and(|n| covers(assets, n));
        if !by_name && !covers(assets, &host.ip.to_string()) {
            outside.push(host.ip.to_string());
        }
    }
    let host_ips: Vec<String> = scan.hosts.iter().map(|h| h.ip.to_string()).collect();
    for f in &scan.findings {
        // email findings are about a registered domain's MX hosts, which the domain names
        let ok = f.check.starts_with("email.") && !scan.domains.is_empty() || host_ips.contains(&f.asset) || covers(assets, &f.asset) || is_domain(assets, &f.asset);
        if !ok {
            outside.push(f.asset.clone());
        }
    }
    outside.sort();
    outside.dedup();
    if !outside.is_empty() {
        return Err(format!("not registered for this jurisdiction: {}", outside.join(", ")));
    }
    let rank = |s: &str| match s {
        "critical" => 4,
        "high" => 3,
        "medium" => 2,
        "low" => 1,
        _ => 0,
    };
    let worst = scan.findings.iter().map(|f| f.severity.as_str()).max_by_key(|s| rank(s)).unwrap_or("none");
    let kev = scan.findings.iter().any(|f| f.known_exploited);
    let finished = scan.finished.timestamp_millis();
    Ok((finished, finished + rescan_interval_ms(worst, kev)))
}

fn active_blackout(blackouts: &[ScanBlackout], now: Millis) -> Option<&ScanBlackout> {
    blackouts.iter().find(|b| b.starts_ms <= now && now < b.ends_ms)
}

fn time_text(ms: Millis) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_else(|| ms.to_string())
}

// ---------------------------------------------------------------------------------------------
// SQL, called by the SQLite store (crate::store::sqlite) inside its transactions

pub mod sql {
    use rusqlite::{params, Connection, OptionalExtension};

    use super::*;

    fn exists(c: &Connection, jurisdiction_id: i64) -> StoreResult<()> {
        let found: Option<i64> = c.query_row("SELECT id FROM jurisdictions WHERE id = ?1", [jurisdiction_id], |r| r.get(0)).optional()?;
        found.map(|_| ()).ok_or_else(|| StoreError::NotFound(format!("jurisdiction {jurisdiction_id}")))
    }

    pub fn add_asset(c: &Connection, jurisdiction_id: i64, kind: AssetKind, value: &str, now: Millis) -> StoreResult<ScanAsset> {
        exists(c, jurisdiction_id)?;
        let count: i64 = c.query_row("SELECT COUNT(*) FROM scan_assets WHERE jurisdiction_id = ?1", [jurisdiction_id], |r| r.get(0))?;
        if count as usize >= MAX_ASSETS {
            return Err(StoreError::Invalid(format!("a jurisdiction may register at most {MAX_ASSETS} assets")));
        }
        c.execute(
            "INSERT INTO scan_assets (jurisdiction_id, kind, value, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![jurisdiction_id, kind.as_str(), value, now],
        )
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("{value} is already registered")),
            other => other,
        })?;
        Ok(ScanAsset { id: c.last_insert_rowid(), jurisdiction_id, kind, value: value.to_string(), created_ms: now })
    }

    pub fn assets(c: &Connection, jurisdiction_id: i64) -> StoreResult<Vec<ScanAsset>> {
        let mut stmt = c.prepare_cached("SELECT id, jurisdiction_id, kind, value, created_ms FROM scan_assets WHERE jurisdiction_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map([jurisdiction_id], |r| {
            let kind: String = r.get(2)?;
            Ok(ScanAsset { id: r.get(0)?, jurisdiction_id: r.get(1)?, kind: AssetKind::parse(&kind).unwrap_or(AssetKind::Hostname), value: r.get(3)?, created_ms: r.get(4)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn add_blackout(c: &Connection, jurisdiction_id: i64, new: &NewScanBlackout, now: Millis) -> StoreResult<ScanBlackout> {
        exists(c, jurisdiction_id)?;
        c.execute(
            "INSERT INTO scan_blackouts (jurisdiction_id, starts_ms, ends_ms, reason, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![jurisdiction_id, new.starts_ms, new.ends_ms, new.reason, now],
        )?;
        Ok(ScanBlackout { id: c.last_insert_rowid(), jurisdiction_id, starts_ms: new.starts_ms, ends_ms: new.ends_ms, reason: new.reason.clone(), created_ms: now })
    }

    pub fn blackouts(c: &Connection, jurisdiction_id: i64) -> StoreResult<Vec<ScanBlackout>> {
        let mut stmt = c.prepare_cached("SELECT id, jurisdiction_id, starts_ms, ends_ms, reason, created_ms FROM scan_blackouts WHERE jurisdiction_id = ?1 ORDER BY starts_ms")?;
        let rows = stmt.query_map([jurisdiction_id], |r| {
            Ok(ScanBlackout { id: r.get(0)?, jurisdiction_id: r.get(1)?, starts_ms: r.get(2)?, ends_ms: r.get(3)?, reason: r.get(4)?, created_ms: r.get(5)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stores a result and releases the jurisdiction's lease.
    pub fn store_result(c: &Connection, jurisdiction_id: i64, finished_ms: Millis, next_due_ms: Millis, body: &str, now: Millis) -> StoreResult<i64> {
        exists(c, jurisdiction_id)?;
        c.execute(
            "INSERT INTO scan_results (jurisdiction_id, finished_ms, received_ms, next_due_ms, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![jurisdiction_id, finished_ms, now, next_due_ms, body],
        )?;
        let id = c.last_insert_rowid();
        c.execute("DELETE FROM scan_leases WHERE jurisdiction_id = ?1", [jurisdiction_id])?;
        Ok(id)
    }

    pub fn results(c: &Connection, jurisdiction_id: i64) -> StoreResult<Vec<String>> {
        let mut stmt = c.prepare_cached("SELECT body FROM scan_results WHERE jurisdiction_id = ?1 ORDER BY finished_ms, id")?;
        let rows = stmt.query_map([jurisdiction_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn put_report(c: &Connection, jurisdiction_id: i64, html: &str, pdf: &[u8], now: Millis) -> StoreResult<()> {
        exists(c, jurisdiction_id)?;
        c.execute(
            "INSERT INTO scan_reports (jurisdiction_id, generated_ms, html, pdf) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (jurisdiction_id) DO UPDATE SET generated_ms = excluded.generated_ms, html = excluded.html, pdf = excluded.pdf",
            params![jurisdiction_id, now, html, pdf],
        )?;
        Ok(())
    }

    pub fn report(c: &Connection, jurisdiction_id: i64) -> StoreResult<Option<(Millis, String, Vec<u8>)>> {
        Ok(c.query_row("SELECT generated_ms, html, pdf FROM scan_reports WHERE jurisdiction_id = ?1", [jurisdiction_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?)
    }

    /// Leases the first of `candidates` that is due, has assets, is not in blackout and is not
    /// leased by another worker. One transaction: concurrent workers never get the same one.
    pub fn claim(c: &Connection, candidates: &[i64], worker: &str, now: Millis, lease_ms: Millis) -> StoreResult<Option<i64>> {
        let mut due: Vec<(Millis, i64)> = Vec::new();
        for &id in candidates {
            let assets: i64 = c.query_row("SELECT COUNT(*) FROM scan_assets WHERE jurisdiction_id = ?1", [id], |r| r.get(0))?;
            if assets == 0 {
                continue;
            }
            let blackout: i64 = c.query_row("SELECT COUNT(*) FROM scan_blackouts WHERE jurisdiction_id = ?1 AND starts_ms <= ?2 AND ends_ms > ?2", params![id, now], |r| r.get(0))?;
            let leased: i64 = c.query_row("SELECT COUNT(*) FROM scan_leases WHERE jurisdiction_id = ?1 AND until_ms > ?2", params![id, now], |r| r.get(0))?;
            if blackout > 0 || leased > 0 {
                continue;
            }
            let next: Option<Millis> = c
                .query_row("SELECT next_due_ms FROM scan_results WHERE jurisdiction_id = ?1 ORDER BY finished_ms DESC, id DESC LIMIT 1", [id], |r| r.get(0))
                .optional()?;
            let next = next.unwrap_or(0);
            if next <= now {
                due.push((next, id));
            }
        }
        due.sort_unstable();
        let Some(&(_, id)) = due.first() else { return Ok(None) };
        c.execute(
            "INSERT INTO scan_leases (jurisdiction_id, worker, until_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (jurisdiction_id) DO UPDATE SET worker = excluded.worker, until_ms = excluded.until_ms",
            params![id, worker, now + lease_ms],
        )?;
        Ok(Some(id))
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// The scanner's routes (JSON API and dashboard pages), with their own body limit.
pub fn routes() -> Router<HubState> {
    Router::new()
        .route("/api/v1/jurisdictions/{id}/scan-assets", get(list_assets).post(add_asset))
        .route("/api/v1/jurisdictions/{id}/scan-blackouts", get(list_blackouts).post(add_blackout))
        .route("/api/v1/scan/targets", post(targets))
        .route("/api/v1/scan/jobs/claim", post(claim))
        .route("/api/v1/scan/results", get(list_results).post(upload_result))
        .route("/api/v1/scan/report", axum::routing::put(upload_report))
        .route("/scan/{id}/report.html", get(report_html))
        .route("/scan/{id}/report.pdf", get(report_pdf))
        .layer(DefaultBodyLimit::max(MAX_SCAN_UPLOAD_BYTES))
}

fn not_visible(who: &UserAuth, id: i64, what: &str) -> AppError {
    if who.can_read(id) {
        AppError::Forbidden(format!("only the jurisdiction's admin or an analyst may {what}"))
    } else {
        AppError::NotFound
    }
}

async fn jurisdiction_named(state: &HubState, who: &UserAuth, name: &str, manage: bool) -> AppResult<Jurisdiction> {
    let owned = name.to_string();
    let j = state.store_call(move |s| s.jurisdiction_by_name(&owned)).await?.ok_or(AppError::NotFound)?;
    if !who.can_read(j.id) {
        return Err(AppError::NotFound);
    }
    if manage && !who.can_manage(j.id) {
        return Err(not_visible(who, j.id, "scan it"));
    }
    Ok(j)
}

async fn list_assets(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>) -> AppResult<Json<Vec<ScanAsset>>> {
    if !who.can_read(id) {
        return Err(AppError::NotFound);
    }
    Ok(Json(state.store_call(move |s| s.scan_assets(id)).await?))
}

async fn add_asset(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>, Json(new): Json<NewScanAsset>) -> AppResult<impl IntoResponse> {
    if !who.can_manage(id) {
        return Err(not_visible(&who, id, "register assets"));
    }
    let (kind, value) = normalise_asset(&new).map_err(AppError::BadRequest)?;
    let asset = state.store_call(move |s| s.add_scan_asset(id, kind, &value, now_ms())).await?;
    Ok((StatusCode::CREATED, Json(asset)))
}

async fn list_blackouts(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>) -> AppResult<Json<Vec<ScanBlackout>>> {
    if !who.can_read(id) {
        return Err(AppError::NotFound);
    }
    Ok(Json(state.store_call(move |s| s.scan_blackouts(id)).await?))
}

async fn add_blackout(State(state): State<HubState>, who: UserAuth, Path(id): Path<i64>, Json(new): Json<NewScanBlackout>) -> AppResult<impl IntoResponse> {
    if !who.can_manage(id) {
        return Err(not_visible(&who, id, "set scan blackouts"));
    }
    if new.ends_ms <= new.starts_ms {
        return Err(AppError::BadRequest("a blackout must end after it starts (ends_ms > starts_ms)".into()));
    }
    let b = state.store_call(move |s| s.add_scan_blackout(id, &new, now_ms())).await?;
    Ok((StatusCode::CREATED, Json(b)))
}

#[derive(Debug, Deserialize)]
pub struct TargetsRequest {
    pub jurisdiction: String,
    /// Only these (each must be inside the registered assets); all registered when empty.
    #[serde(default)]
    pub targets: Vec<String>,
}

async fn targets_for(state: &HubState, j: &Jurisdiction, requested: &[String]) -> AppResult<ScanTargets> {
    let id = j.id;
    let (assets, blackouts) = state.store_call(move |s| Ok((s.scan_assets(id)?, s.scan_blackouts(id)?))).await?;
    if let Some(b) = active_blackout(&blackouts, now_ms()) {
        return Err(AppError::Conflict(format!("{} is in a scan blackout until {}: {}; no scanning until then", j.name, time_text(b.ends_ms), b.reason)));
    }
    if assets.is_empty() {
        return Err(AppError::BadRequest(format!("{} has registered no assets: register addresses, networks, hostnames or mail domains first", j.name)));
    }
    let (targets, domains) = if requested.is_empty() {
        (
            assets.iter().filter(|a| a.kind != AssetKind::Domain).map(|a| a.value.clone()).collect(),
            assets.iter().filter(|a| a.kind == AssetKind::Domain).map(|a| a.value.clone()).collect(),
        )
    } else {
        let outside: Vec<&str> = requested.iter().map(String::as_str).filter(|t| !covers(&assets, t)).collect();
        if !outside.is_empty() {
            return Err(AppError::Forbidden(format!("not registered for {}: {}; the hub hands out only registered assets", j.name, outside.join(", "))));
        }
        (requested.to_vec(), Vec::new())
    };
    Ok(ScanTargets { jurisdiction: j.name.clone(), jurisdiction_id: j.id, targets, domains, lease_until_ms: None })
}

async fn targets(State(state): State<HubState>, who: UserAuth, Json(req): Json<TargetsRequest>) -> AppResult<Json<ScanTargets>> {
    let j = jurisdiction_named(&state, &who, &req.jurisdiction, true).await?;
    Ok(Json(targets_for(&state, &j, &req.targets).await?))
}

#[derive(Debug, Deserialize)]
pub struct ClaimRequest {
    pub worker: String,
}

/// A worker takes the next due jurisdiction it may scan; 204 when none is due.
async fn claim(State(state): State<HubState>, who: UserAuth, Json(req): Json<ClaimRequest>) -> AppResult<Response> {
    let all = state.store_call(|s| s.jurisdictions()).await?;
    let candidates: Vec<i64> = all.iter().filter(|j| who.can_manage(j.id)).map(|j| j.id).collect();
    let worker: String = req.worker.chars().take(200).collect();
    let now = now_ms();
    let Some(id) = state.store_call(move |s| s.claim_scan_job(&candidates, &worker, now, SCAN_LEASE_MS)).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let j = all.into_iter().find(|j| j.id == id).ok_or(AppError::NotFound)?;
    let mut t = targets_for(&state, &j, &[]).await?;
    t.lease_until_ms = Some(now + SCAN_LEASE_MS);
    Ok(Json(t).into_response())
}

#[derive(Debug, Deserialize)]
pub struct JurisdictionQuery {
    pub jurisdiction: String,
}

async fn upload_result(State(state): State<HubState>, who: UserAuth, Query(q): Query<JurisdictionQuery>, body: Bytes) -> AppResult<impl IntoResponse> {
    let j = jurisdiction_named(&state, &who, &q.jurisdiction, true).await?;
    let text = std::str::from_utf8(&body).map_err(|_| AppError::BadRequest("scan result must be UTF-8 JSON".into()))?.to_string();
    let scan: UploadedScan = serde_json::from_str(&text).map_err(|e| AppError::BadRequest(format!("not a ward scan result: {e}")))?;
    let id = j.id;
    let assets = state.store_call(move |s| s.scan_assets(id)).await?;
    let (finished, next_due) = check_upload(&assets, &scan).map_err(AppError::Forbidden)?;
    let result_id = state.store_call(move |s| s.store_scan_result(id, finished, next_due, &text, now_ms())).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "id": result_id, "jurisdiction": j.name, "next_due_ms": next_due }))))
}

async fn list_results(State(state): State<HubState>, who: UserAuth, Query(q): Query<JurisdictionQuery>) -> AppResult<Response> {
    let j = jurisdiction_named(&state, &who, &q.jurisdiction, false).await?;
    let id = j.id;
    let bodies = state.store_call(move |s| s.scan_results(id)).await?;
    // the stored documents are already JSON: join them into one array without re-parsing
    let mut out = String::with_capacity(bodies.iter().map(|b| b.len() + 1).sum::<usize>() + 2);
    out.push('[');
    out.push_str(&bodies.join(","));
    out.push(']');
    Ok(([(header::CONTENT_TYPE, "application/json")], out).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ReportUpload {
    pub html: String,
    /// The PDF, base64.
    pub pdf_base64: String,
}

async fn upload_report(State(state): State<HubState>, who: UserAuth, Query(q): Query<JurisdictionQuery>, Json(up): Json<ReportUpload>) -> AppResult<impl IntoResponse> {
    let j = jurisdiction_named(&state, &who, &q.jurisdiction, true).await?;
    let pdf = base64::engine::general_purpose::STANDARD.decode(up.pdf_base64.trim()).map_err(|e| AppError::BadRequest(format!("pdf_base64 is not base64: {e}")))?;
    if !pdf.starts_with(b"%PDF-") {
        return Err(AppError::BadRequest("pdf_base64 is not a PDF".into()));
    }
    let id = j.id;
    state.store_call(move |s| s.put_scan_report(id, &up.html, &pdf, now_ms())).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "html": format!("/scan/{id}/report.html"), "pdf": format!("/scan/{id}/report.pdf") }))))
}

async fn report_for(state: &HubState, who: &MaybeUser, id: i64) -> Result<(Millis, String, Vec<u8>), Response> {
    let Some(who) = &who.0 else { return Err(axum::response::Redirect::to("/login").into_response()) };
    if !who.can_read(id) {
        return Err(AppError::NotFound.into_response());
    }
    match state.store_call(move |s| s.scan_report(id)).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(AppError::NotFound.into_response()),
        Err(e) => Err(e.into_response()),
    }
}

async fn report_html(State(state): State<HubState>, who: MaybeUser, Path(id): Path<i64>) -> Response {
    match report_for(&state, &who, id).await {
        Ok((_, html, _)) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CONTENT_SECURITY_POLICY, REPORT_CONTENT_SECURITY_POLICY),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            html,
        )
            .into_response(),
        Err(r) => r,
    }
}

async fn report_pdf(State(state): State<HubState>, who: MaybeUser, Path(id): Path<i64>) -> Response {
    match report_for(&state, &who, id).await {
        Ok((_, _, pdf)) => ([(header::CONTENT_TYPE, "application/pdf"), (header::CONTENT_DISPOSITION, "inline; filename=\"report.pdf\"")], pdf).into_response(),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset(kind: AssetKind, value: &str) -> ScanAsset {
        ScanAsset { id: 1, jurisdiction_id: 1, kind, value: value.into(), created_ms: 0 }
    }

    #[test]
    fn assets_are_checked_and_normalised() {
        let n = |kind, value: &str| normalise_asset(&NewScanAsset { kind, value: value.into() });
        assert_eq!(n(None, "192.0.2.9/24"), Ok((AssetKind::Network, "192.0.2.0/24".into())));
        assert_eq!(n(None, "2001:db8::1"), Ok((AssetKind::Address, "2001:db8::1".into())));
        assert_eq!(n(None, "Vote.Example.GOV."), Ok((AssetKind::Hostname, "vote.example.gov".into())));
        assert_eq!(n(Some(AssetKind::Domain), "example.gov"), Ok((AssetKind::Domain, "example.gov".into())));
        assert!(n(None, "10.0.0.0/8").unwrap_err().contains("65,536"));
        assert!(n(None, "not a host").is_err());
        assert!(n(Some(AssetKind::Address), "example.gov").is_err());
        assert!(n(None, "1.2.3").is_err());
    }

    #[test]
    fn coverage_is_exact() {
        let assets = [asset(AssetKind::Network, "192.0.2.0/24"), asset(AssetKind::Address, "::1"), asset(AssetKind::Hostname, "vote.example.gov")];
        assert!(covers(&assets, "192.0.2.77"));
        assert!(covers(&assets, "192.0.2.128/25"));
        assert!(!covers(&assets, "192.0.2.0/23"));
        assert!(!covers(&assets, "192.0.3.1"));
        assert!(covers(&assets, "::1") && covers(&assets, "[::1]") && covers(&assets, "::1/128"));
        assert!(covers(&assets, "VOTE.example.gov."));
        assert!(!covers(&assets, "evil.example.gov"));
    }

    #[test]
    fn cadence_follows_the_worst_finding() {
        assert_eq!(rescan_interval_ms("low", true), 12 * HOUR_MS);
        assert_eq!(rescan_interval_ms("critical", false), 12 * HOUR_MS);
        assert_eq!(rescan_interval_ms("high", false), DAY_MS);
        assert_eq!(rescan_interval_ms("medium", false), 4 * DAY_MS);
        assert_eq!(rescan_interval_ms("low", false), 6 * DAY_MS);
        assert_eq!(rescan_interval_ms("none", false), 7 * DAY_MS);
    }
}
