//! One whole scan: resolve targets, port-scan, identify services, run the checks, look up known
//! vulnerabilities, check mail domains, and return a [`ScanResult`].
//!
//! Probes of different ports run concurrently (bounded by [`ScanOptions::probe_concurrency`]);
//! the probes of one port run in order. Progress is reported through a callback so the CLI can
//! draw it and tests can ignore it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Semaphore;

use crate::checks;
use crate::dns::{DnsError, Resolver};
use crate::finding::{Finding, HostResult, ScanResult, Service, Severity, SCAN_RESULT_FORMAT, Confidence};
use crate::portscan::{self, ScanLimits, ScanProgress};
use crate::probe::{self, Observation, ProbeTimeouts};
use crate::target::{self, TargetError};
use crate::tls::{self, TlsClient};
use crate::vulns::VulnDb;

/// Wait for an SNMP answer: UDP has no refusal to end the wait early.
pub const SNMP_WAIT: Duration = Duration::from_millis(1000);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Dns(#[from] DnsError),
    #[error("no targets and no mail domains given: name at least one TARGET or --domain")]
    Nothing,
}

/// Everything a scan needs to know.
pub struct ScanOptions {
    pub targets: Vec<String>,
    pub ports: Vec<u16>,
    pub limits: ScanLimits,
    pub timeouts: ProbeTimeouts,
    pub dns: Option<SocketAddr>,
    pub allow_large: bool,
    /// Mail domains for the SPF/DMARC/STARTTLS checks.
    pub domains: Vec<String>,
    /// SMTP port of MX hosts (25; tests use another).
    pub smtp_port: u16,
    /// Extra trusted CA certificates (DER), e.g. a jurisdiction's private CA.
    pub extra_roots: Vec<Vec<u8>>,
    pub vulns: VulnDb,
    /// Try the default-credential list (on by default; off for a scan that must not log in).
    pub credentials: bool,
    /// Send the SNMP probe to UDP 161 of every target.
    pub snmp: bool,
    pub snmp_port: u16,
    /// Ports probed at the same time.
    pub probe_concurrency: usize,
    pub jurisdiction: Option<String>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            targets: Vec::new(),
            ports: crate::ports::parse_ports("default").unwrap_or_default(),
            limits: ScanLimits::default(),
            timeouts: ProbeTimeouts::default(),
            dns: None,
            allow_large: false,
            domains: Vec::new(),
            smtp_port: 25,
            extra_roots: Vec::new(),
            vulns: VulnDb::builtin(),
            credentials: true,
            snmp: true,
            snmp_port: 161,
            probe_concurrency: 128,
            jurisdiction: None,
        }
    }
}

/// What the scan is doing, for the progress display.
#[derive(Debug, Clone)]
pub enum Phase {
    Resolved { addresses: usize },
    PortScan { progress: Arc<ScanProgress> },
    Probing { ports: usize },
    Probed { done: usize, total: usize },
    Email { domain: String },
    Done,
}

/// Identify services on open ports and run every per-service check.
pub async fn probe_and_check(
    open: &BTreeMap<IpAddr, Vec<u16>>,
    hostnames: &BTreeMap<IpAddr, Option<String>>,
    options: &ScanOptions,
    on_phase: &(dyn Fn(Phase) + Sync),
) -> (Vec<Observation>, Vec<Finding>) {
    let tls_client = Arc::new(TlsClient::new(&options.extra_roots));
    let limit = Arc::new(Semaphore::new(options.probe_concurrency.max(1)));
    let total: usize = open.values().map(Vec::len).sum();
    on_phase(Phase::Probing { ports: total });
    let mut tasks = Vec::new();
    for (ip, ports) in open {
        for &port in ports {
            let (tls_client, limit, hostname, timeouts) = (tls_client.clone(), limit.clone(), hostnames.get(ip).cloned().flatten(), options.timeouts.clone());
            let ip = *ip;
            tasks.push(tokio::spawn(async move {
                let _permit = limit.acquire_owned().await.ok()?;
                // identification waits adapted to the target (loopback: no network); the checks keep the full ones
                let obs = probe::identify(ip, port, hostname, &tls_client, &timeouts.for_target(ip)).await;
                let mut extra = Vec::new();
                if obs.service.tls {
                    let addr = SocketAddr::new(ip, port);
                    let chain = obs.tls.as_ref().map(|s| s.chain.clone()).unwrap_or_default();
                    let trust = tls_client.trust(&chain, obs.hostname.as_deref(), ip);
                    let protocols = tls::scan_protocols(addr, obs.hostname.as_deref(), timeouts.exchange).await;
                    extra.extend(checks::tls_findings(&obs, &chain, &trust, &protocols, Utc::now()));
                }
                Some((obs, extra))
            }));
        }
    }
    let mut observations = Vec::new();
    let mut findings = Vec::new();
    for (done, task) in tasks.into_iter().enumerate() {
        if let Ok(Some((obs, extra))) = task.await {
            observations.push(obs);
            findings.extend(extra);
        }
        on_phase(Phase::Probed { done: done + 1, total });
    }
    // host-level facts, then per-service checks, credentials and known vulnerabilities
    let https_hosts: Vec<IpAddr> = observations.iter().filter(|o| o.service.tls && o.service.name == "http").map(|o| o.service.ip).collect();
    for obs in &observations {
        findings.extend(checks::service_findings(obs, https_hosts.contains(&obs.service.ip)));
        findings.extend(options.vulns.findings_for(&obs.service, obs.hostname.as_deref()));
        findings.extend(crate::edge::finding(obs, &options.vulns));
    }
    if options.credentials {
        let mut cred_tasks = Vec::new();
        for obs in observations.iter().filter(|o| matches!(o.service.name.as_str(), "ssh" | "ftp" | "http" | "telnet")).cloned() {
            let (tls_client, timeouts) = (tls_client.clone(), options.timeouts.clone());
            cred_tasks.push(tokio::spawn(async move { crate::creds::check(&obs, &tls_client, &timeouts).await }));
        }
        for task in cred_tasks {
            if let Ok(Some(finding)) = task.await {
                findings.push(finding);
            }
        }
    }
    (observations, findings)
}

fn snmp_finding(ip: IpAddr, port: u16, descr: &str) -> Finding {
    Finding {
        check: "snmp.default-community".into(),
        asset: ip.to_string(),
        hostname: None,
        port: Some(port),
        protocol: "udp".into(),
        severity: Severity::High,
        confidence: Confidence::Confirmed,
        name: "SNMP answers with the default community \"public\"".into(),
        description: "SNMP is reachable from the internet and the factory-default community string reveals the device's configuration.".into(),
        evidence: format!("GetRequest sysDescr.0 with community public answered: {descr}"),
        solution: "Block UDP 161 at the firewall, change the community string, or move to SNMPv3 with authentication.".into(),
        references: vec!["https://www.cisa.gov/news-events/alerts/2017/06/05/reducing-risk-snmp-abuse".into()],
        cve: None,
        cvss: None,
        known_exploited: false,
        kev_due: None,
    }
}

/// Run a whole scan.
pub async fn run(options: &ScanOptions, on_phase: &(dyn Fn(Phase) + Sync)) -> Result<ScanResult, ScanError> {
    if options.targets.is_empty() && options.domains.is_empty() {
        return Err(ScanError::Nothing);
    }
    let started = Utc::now();
    let resolver = Resolver::new(options.dns)?;
    let targets = target::resolve_targets(&options.targets, &resolver, options.allow_large).await?;
    on_phase(Phase::Resolved { addresses: targets.len() });
    let ips: Vec<IpAddr> = targets.iter().map(|t| t.ip).collect();
    let hostnames: BTreeMap<IpAddr, Option<String>> = targets.iter().map(|t| (t.ip, t.hostname.clone())).collect();
    let snmp_task = options.snmp.then(|| {
        let (ips, port) = (ips.clone(), options.snmp_port);
        tokio::spawn(async move {
            let mut answers = Vec::new();
            let mut set = tokio::task::JoinSet::new();
            for ip in ips {
                set.spawn(async move { (ip, crate::snmp::probe(ip, port, SNMP_WAIT).await) });
            }
            while let Some(Ok((ip, answer))) = set.join_next().await {
                if let Some(descr) = answer {
                    answers.push((ip, descr));
                }
            }
            answers
        })
    });
    let progress = Arc::new(ScanProgress::default());
    on_phase(Phase::PortScan { progress: progress.clone() });
    let report = portscan::scan(&ips, &options.ports, &options.limits, progress).await;
    let (observations, mut findings) = probe_and_check(&report.open, &hostnames, options, on_phase).await;
    let mut snmp_services = Vec::new();
    if let Some(task) = snmp_task {
        for (ip, descr) in task.await.unwrap_or_default() {
            findings.push(snmp_finding(ip, options.snmp_port, &descr));
            snmp_services.push(Service { ip, port: options.snmp_port, protocol: "udp".into(), name: "snmp".into(), tls: false, product: None, version: None, banner: Some(descr) });
        }
    }
    for domain in &options.domains {
        on_phase(Phase::Email { domain: domain.clone() });
        findings.extend(crate::email::check_domain(&resolver, domain, options.smtp_port, &options.timeouts).await?);
    }
    let mut hosts: BTreeMap<IpAddr, HostResult> = BTreeMap::new();
    for t in &targets {
        if let Some(ports) = report.open.get(&t.ip) {
            hosts.insert(t.ip, HostResult { ip: t.ip, hostname: t.hostname.clone(), open_ports: ports.clone(), services: Vec::new() });
        }
    }
    for service in observations.into_iter().map(|o| o.service).chain(snmp_services) {
        let host = hosts.entry(service.ip).or_insert_with(|| HostResult { ip: service.ip, hostname: hostnames.get(&service.ip).cloned().flatten(), open_ports: Vec::new(), services: Vec::new() });
        host.services.push(service);
    }
    for host in hosts.values_mut() {
        host.services.sort_by_key(|s| (s.protocol.clone(), s.port));
    }
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.asset.cmp(&b.asset)).then(a.port.cmp(&b.port)).then(a.check.cmp(&b.check)));
    on_phase(Phase::Done);
    Ok(ScanResult {
        format: SCAN_RESULT_FORMAT,
        jurisdiction: options.jurisdiction.clone(),
        started,
        finished: Utc::now(),
        targets: options.targets.clone(),
        domains: options.domains.clone(),
        ports_per_host: options.ports.len(),
        hosts: hosts.into_values().collect(),
        findings,
        kev_catalog: options.vulns.kev_info().cloned(),
    })
}
