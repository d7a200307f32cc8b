//! Email hygiene of a jurisdiction's mail domains: SPF present and valid, DMARC present with
//! p=quarantine or p=reject, and every MX host offering STARTTLS (the checks of CISA BOD 18-01).
//!
//! A DNS failure is reported as an error for that domain, never as a missing record.

use std::net::SocketAddr;
use std::time::Duration;

use crate::dns::{DnsError, Resolver};
use crate::finding::{Confidence, Finding, Severity};
use crate::probe::{self, ProbeTimeouts};

/// MX hosts checked per domain: real domains have 1-5; more is a misconfiguration or abuse.
pub const MAX_MX_HOSTS: usize = 10;
/// SPF allows at most 10 DNS-querying terms (RFC 7208 section 4.6.4).
const SPF_MAX_LOOKUPS: usize = 10;

const BOD_18_01: &str = "https://www.cisa.gov/news-events/directives/bod-18-01-enhance-email-and-web-security";

fn domain_finding(domain: &str, check: &str, severity: Severity, name: &str, description: &str, evidence: String, solution: &str) -> Finding {
    Finding {
        check: check.into(),
        asset: domain.into(),
        hostname: None,
        port: None,
        protocol: "dns".into(),
        severity,
        confidence: Confidence::Confirmed,
        name: name.into(),
        description: description.into(),
        evidence,
        solution: solution.into(),
        references: vec![BOD_18_01.into(), "https://www.rfc-editor.org/rfc/rfc7208".into(), "https://www.rfc-editor.org/rfc/rfc7489".into()],
        cve: None,
        cvss: None,
        known_exploited: false,
        kev_due: None,
    }
}

/// Problems of one SPF record's syntax; empty when valid.
pub fn spf_problems(record: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut lookups = 0;
    let mut has_all = false;
    for term in record.split_whitespace().skip(1) {
        let lower = term.to_ascii_lowercase();
        let body = lower.trim_start_matches(['+', '-', '~', '?']);
        let mechanism = body.split([':', '/']).next().unwrap_or("");
        match mechanism {
            "all" => {
                has_all = true;
                if lower.starts_with('+') || lower == "all" {
                    problems.push(format!("{term} lets any server on the internet send as this domain"));
                }
            }
            "include" | "a" | "mx" | "ptr" | "exists" => {
                lookups += 1;
                if matches!(mechanism, "include" | "exists") && !body.contains(':') {
                    problems.push(format!("{term} needs a domain"));
                }
            }
            "ip4" | "ip6" => {
                let value = body.split_once(':').map(|(_, v)| v).unwrap_or("");
                let addr = value.split('/').next().unwrap_or("");
                let ok = if mechanism == "ip4" { addr.parse::<std::net::Ipv4Addr>().is_ok() } else { addr.parse::<std::net::Ipv6Addr>().is_ok() };
                if !ok {
                    problems.push(format!("{term} is not a valid address"));
                }
            }
            _ if body.contains('=') => {
                if body.starts_with("redirect=") {
                    lookups += 1;
                }
            }
            _ => problems.push(format!("unknown term {term}")),
        }
    }
    if lookups > SPF_MAX_LOOKUPS {
        problems.push(format!("{lookups} DNS-querying terms, more than the limit of {SPF_MAX_LOOKUPS}"));
    }
    if !has_all && !record.to_ascii_lowercase().contains("redirect=") {
        problems.push("no final all term (use -all)".into());
    }
    problems
}

/// The DMARC policy tag of a record.
pub fn dmarc_policy(record: &str) -> Option<String> {
    record.split(';').find_map(|tag| {
        let (k, v) = tag.trim().split_once('=')?;
        (k.trim().eq_ignore_ascii_case("p")).then(|| v.trim().to_ascii_lowercase())
    })
}

/// Run the email checks for one domain. `smtp_port` is 25 except in tests.
pub async fn check_domain(resolver: &Resolver, domain: &str, smtp_port: u16, timeouts: &ProbeTimeouts) -> Result<Vec<Finding>, DnsError> {
    let mut out = Vec::new();
    let spf: Vec<String> = resolver.txt(domain).await?.into_iter().filter(|t| t.to_ascii_lowercase().starts_with("v=spf1")).collect();
    match spf.as_slice() {
        [] => out.push(domain_finding(domain, "email.spf-missing", Severity::Medium, "No SPF record",
            "Without SPF anyone can send mail that claims to come from this domain, such as fake notices to voters.",
            format!("no TXT record starting v=spf1 at {domain}"),
            "Publish a TXT record listing your mail senders, ending in -all (for a domain that sends no mail: v=spf1 -all).")),
        [record] => {
            let problems = spf_problems(record);
            if !problems.is_empty() {
                out.push(domain_finding(domain, "email.spf-invalid", Severity::Medium, "SPF record is invalid or too permissive",
                    "Receivers ignore a broken SPF record or, with +all, accept forged mail.",
                    format!("{record:?}: {}", problems.join("; ")),
                    "Fix the record so it lists only your senders and ends in -all."));
            }
        }
        many => out.push(domain_finding(domain, "email.spf-invalid", Severity::Medium, "More than one SPF record",
            "Two SPF records make SPF fail for every message (RFC 7208 section 4.5).",
            format!("{} records: {:?}", many.len(), many),
            "Merge them into a single v=spf1 record.")),
    }
    let dmarc_name = format!("_dmarc.{domain}");
    let dmarc: Vec<String> = resolver.txt(&dmarc_name).await?.into_iter().filter(|t| t.to_ascii_lowercase().starts_with("v=dmarc1")).collect();
    match dmarc.first() {
        None => out.push(domain_finding(domain, "email.dmarc-missing", Severity::Medium, "No DMARC record",
            "Without DMARC, receivers deliver mail that forges this domain, and you get no reports of it.",
            format!("no TXT record starting v=DMARC1 at {dmarc_name}"),
            "Publish v=DMARC1; p=reject; rua=mailto:dmarc-reports@your-domain at _dmarc (start with p=quarantine if unsure).")),
        Some(record) => match dmarc_policy(record).as_deref() {
            Some("reject") | Some("quarantine") => {}
            other => out.push(domain_finding(domain, "email.dmarc-weak", Severity::Medium, "DMARC does not stop forged mail",
                "A DMARC policy of none (or none at all) only monitors: forged mail is still delivered.",
                format!("{record:?} (policy {})", other.unwrap_or("absent")),
                "Set p=reject (or p=quarantine) once the reports show your own mail passes.")),
        },
    }
    for (_, host) in resolver.mx(domain).await?.into_iter().take(MAX_MX_HOSTS) {
        if host.is_empty() {
            continue; // null MX (RFC 7505): the domain accepts no mail
        }
        for ip in resolver.lookup_ip(&host).await {
            let addr = SocketAddr::new(ip, smtp_port);
            match smtp_starttls(addr, timeouts).await {
                Some(true) => {}
                Some(false) => {
                    let mut f = domain_finding(domain, "email.mx-no-starttls", Severity::Medium, "Mail server does not offer STARTTLS",
                        "Mail to and from this domain crosses the internet unencrypted.",
                        format!("MX {host} ({addr}) did not list STARTTLS in its EHLO reply"),
                        "Enable STARTTLS on the mail server with a valid certificate.");
                    f.asset = ip.to_string();
                    f.hostname = Some(host.clone());
                    f.port = Some(smtp_port);
                    f.protocol = "tcp".into();
                    out.push(f);
                }
                None => {}
            }
        }
    }
    Ok(out)
}

async fn smtp_starttls(addr: SocketAddr, timeouts: &ProbeTimeouts) -> Option<bool> {
    let tls = std::sync::Arc::new(crate::tls::TlsClient::new(&[]));
    let obs = probe::identify(addr.ip(), addr.port(), None, &tls, &ProbeTimeouts { banner: timeouts.exchange.min(Duration::from_secs(5)), probe_delay: timeouts.exchange.min(Duration::from_secs(5)), ..timeouts.clone() }).await;
    if obs.service.name == "smtp" {
        obs.smtp_starttls
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spf_syntax() {
        assert!(spf_problems("v=spf1 ip4:192.0.2.0/24 include:_spf.example.net -all").is_empty());
        assert!(spf_problems("v=spf1 -all").is_empty());
        assert!(spf_problems("v=spf1 redirect=_spf.example.net").is_empty());
        assert_eq!(spf_problems("v=spf1 +all").len(), 1);
        assert_eq!(spf_problems("v=spf1 ip4:300.1.1.1 ~all").len(), 1);
        assert_eq!(spf_problems("v=spf1 mx").len(), 1);
        assert_eq!(spf_problems("v=spf1 bogus -all").len(), 1);
        let many = format!("v=spf1 {} -all", (0..11).map(|i| format!("include:s{i}.example")).collect::<Vec<_>>().join(" "));
        assert_eq!(spf_problems(&many).len(), 1);
    }

    #[test]
    fn dmarc_policy_tag() {
        assert_eq!(dmarc_policy("v=DMARC1; p=reject; rua=mailto:x@example.gov").as_deref(), Some("reject"));
        assert_eq!(dmarc_policy("v=DMARC1;p=None").as_deref(), Some("none"));
        assert_eq!(dmarc_policy("v=DMARC1"), None);
    }
}
