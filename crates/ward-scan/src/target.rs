//! Targets: parse what the user typed (IPv4, IPv6, CIDR, hostname), resolve names and expand
//! networks into the list of addresses to scan.
//!
//! Invariants: every address of a resolved name is scanned and keeps the name (for HTTP Host and
//! TLS SNI); duplicate addresses are scanned once. Limits: more than [`LARGE_SCAN_ADDRESSES`]
//! addresses needs `allow_large`; never more than [`MAX_SCAN_ADDRESSES`] at all.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::dns::Resolver;

/// Above this many addresses a scan needs `--allow-large`: a /16 is the largest network an
/// election office plausibly owns, so anything larger is more likely a typo than intent.
pub const LARGE_SCAN_ADDRESSES: u128 = 65_536;
/// Hard ceiling even with `--allow-large` (a /8): the address list is held in memory.
pub const MAX_SCAN_ADDRESSES: u128 = 1 << 24;
/// Longest DNS name (RFC 1035, presentation form without the final dot).
const MAX_HOSTNAME_LEN: usize = 253;
/// Longest DNS label (RFC 1035).
const MAX_LABEL_LEN: usize = 63;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetError {
    #[error("target {0:?} is not an IPv4 or IPv6 address, a CIDR network (e.g. 192.0.2.0/24) or a hostname")]
    Invalid(String),
    #[error("target {target:?} has prefix length /{prefix}, above the maximum /{max} for its address family")]
    BadPrefix { target: String, prefix: u32, max: u32 },
    #[error("hostname {0:?} does not resolve to any address: check the spelling or the --dns server")]
    Unresolved(String),
    #[error("{count} addresses to scan, more than {limit}: pass --allow-large if this is intended")]
    TooLarge { count: u128, limit: u128 },
    #[error("{count} addresses to scan, more than the hard limit {limit}: split the scan")]
    OverHardLimit { count: u128, limit: u128 },
}

/// A target as typed on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    Addr(IpAddr),
    Cidr { network: IpAddr, prefix: u32 },
    Host(String),
}

/// One address to scan, with the hostname it came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScanTarget {
    pub ip: IpAddr,
    pub hostname: Option<String>,
}

/// Parse one target string.
pub fn parse_target(text: &str) -> Result<TargetSpec, TargetError> {
    let text = text.trim();
    let bracketless = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    if let Ok(ip) = bracketless.parse::<IpAddr>() {
        return Ok(TargetSpec::Addr(ip));
    }
    if let Some((net, prefix)) = text.split_once('/') {
        let network: IpAddr = net.parse().map_err(|_| TargetError::Invalid(text.to_string()))?;
        let prefix: u32 = prefix.parse().map_err(|_| TargetError::Invalid(text.to_string()))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(TargetError::BadPrefix { target: text.to_string(), prefix, max });
        }
        return Ok(TargetSpec::Cidr { network, prefix });
    }
    if is_hostname(text) {
        return Ok(TargetSpec::Host(text.trim_end_matches('.').to_ascii_lowercase()));
    }
    Err(TargetError::Invalid(text.to_string()))
}

/// RFC 1123 hostname syntax; an all-numeric last label is rejected (it is a mistyped address).
fn is_hostname(text: &str) -> bool {
    let name = text.strip_suffix('.').unwrap_or(text);
    if name.is_empty() || name.len() > MAX_HOSTNAME_LEN {
        return false;
    }
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= MAX_LABEL_LEN
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    labels.iter().all(label_ok)
        && !labels.last().is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

/// Number of addresses a spec expands to (a hostname counts as one before resolution).
pub fn address_count(spec: &TargetSpec) -> u128 {
    match spec {
        TargetSpec::Addr(_) | TargetSpec::Host(_) => 1,
        TargetSpec::Cidr { network, prefix } => {
            let bits = if network.is_ipv4() { 32 } else { 128 };
            let host_bits = bits - prefix;
            if host_bits >= 128 {
                u128::MAX
            } else {
                1u128 << host_bits
            }
        }
    }
}

/// Check the total size against the limits before anything is expanded.
pub fn check_size(specs: &[TargetSpec], allow_large: bool) -> Result<u128, TargetError> {
    let count = specs.iter().fold(0u128, |acc, s| acc.saturating_add(address_count(s)));
    if count > MAX_SCAN_ADDRESSES {
        return Err(TargetError::OverHardLimit { count, limit: MAX_SCAN_ADDRESSES });
    }
    if count > LARGE_SCAN_ADDRESSES && !allow_large {
        return Err(TargetError::TooLarge { count, limit: LARGE_SCAN_ADDRESSES });
    }
    Ok(count)
}

fn expand_cidr(network: IpAddr, prefix: u32, out: &mut Vec<ScanTarget>) {
    match network {
        IpAddr::V4(v4) => {
            let host_bits = 32 - prefix;
            let mask: u32 = if host_bits == 32 { 0 } else { !0u32 << host_bits };
            let base = u32::from(v4) & mask;
            let count: u64 = 1u64 << host_bits;
            for i in 0..count {
                out.push(ScanTarget { ip: IpAddr::V4(std::net::Ipv4Addr::from((base as u64 + i) as u32)), hostname: None });
            }
        }
        IpAddr::V6(v6) => {
            let host_bits = 128 - prefix;
            let mask: u128 = if host_bits == 128 { 0 } else { !0u128 << host_bits };
            let base = u128::from(v6) & mask;
            // check_size has bounded the count, so this loop is at most MAX_SCAN_ADDRESSES long.
            let count: u128 = 1u128 << host_bits.min(127);
            let mut i = 0u128;
            while i < count {
                out.push(ScanTarget { ip: IpAddr::V6((base + i).into()), hostname: None });
                i += 1;
            }
        }
    }
}

/// Parse, size-check, resolve and expand targets. Duplicate addresses are kept once (the first
/// hostname wins).
pub async fn resolve_targets(
    texts: &[String],
    resolver: &Resolver,
    allow_large: bool,
) -> Result<Vec<ScanTarget>, TargetError> {
    let specs: Vec<TargetSpec> = texts.iter().map(|t| parse_target(t)).collect::<Result<_, _>>()?;
    check_size(&specs, allow_large)?;
    let mut out = Vec::new();
    for spec in specs {
        match spec {
            TargetSpec::Addr(ip) => out.push(ScanTarget { ip, hostname: None }),
            TargetSpec::Cidr { network, prefix } => expand_cidr(network, prefix, &mut out),
            TargetSpec::Host(name) => {
                let addrs = resolver.lookup_ip(&name).await;
                if addrs.is_empty() {
                    return Err(TargetError::Unresolved(name));
                }
                for ip in addrs {
                    out.push(ScanTarget { ip, hostname: Some(name.clone()) });
                }
            }
        }
    }
    // keep each address once, in first-seen order; a name given for it anywhere is kept
    let mut index: HashMap<IpAddr, usize> = HashMap::new();
    let mut unique: Vec<ScanTarget> = Vec::with_capacity(out.len());
    for t in out {
        match index.get(&t.ip) {
            Some(&i) => {
                if unique[i].hostname.is_none() {
                    unique[i].hostname = t.hostname;
                }
            }
            None => {
                index.insert(t.ip, unique.len());
                unique.push(t);
            }
        }
    }
    let out = unique;
    let total = out.len() as u128;
    if total > LARGE_SCAN_ADDRESSES && !allow_large {
        return Err(TargetError::TooLarge { count: total, limit: LARGE_SCAN_ADDRESSES });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_of_target() {
        assert_eq!(parse_target("192.0.2.7").unwrap(), TargetSpec::Addr("192.0.2.7".parse().unwrap()));
        assert_eq!(parse_target("::1").unwrap(), TargetSpec::Addr("::1".parse().unwrap()));
        assert_eq!(parse_target("[2001:db8::1]").unwrap(), TargetSpec::Addr("2001:db8::1".parse().unwrap()));
        assert_eq!(
            parse_target("10.0.0.0/30").unwrap(),
            TargetSpec::Cidr { network: "10.0.0.0".parse().unwrap(), prefix: 30 }
        );
        assert_eq!(parse_target("Vote.Example.GOV.").unwrap(), TargetSpec::Host("vote.example.gov".into()));
        assert!(matches!(parse_target("10.0.0.0/33"), Err(TargetError::BadPrefix { .. })));
        assert!(matches!(parse_target("2001:db8::/129"), Err(TargetError::BadPrefix { .. })));
        for bad in ["", "300.1.2.3", "a..b", "-x.com", "host name", "1.2.3", "x/24", "10.0.0.0/abc", "ex*mple.com"] {
            assert!(matches!(parse_target(bad), Err(TargetError::Invalid(_))), "{bad:?} accepted");
        }
    }

    #[test]
    fn size_limits_need_allow_large() {
        let big = vec![parse_target("10.0.0.0/15").unwrap()];
        assert_eq!(check_size(&big, false), Err(TargetError::TooLarge { count: 131_072, limit: 65_536 }));
        assert_eq!(check_size(&big, true), Ok(131_072));
        let exact = vec![parse_target("10.0.0.0/16").unwrap()];
        assert_eq!(check_size(&exact, false), Ok(65_536));
        let v6 = vec![parse_target("2001:db8::/64").unwrap()];
        assert!(matches!(check_size(&v6, true), Err(TargetError::OverHardLimit { .. })));
        let all = vec![parse_target("::/0").unwrap()];
        assert!(matches!(check_size(&all, true), Err(TargetError::OverHardLimit { .. })));
    }

    #[test]
    fn expands_networks_from_the_network_address() {
        let mut out = Vec::new();
        expand_cidr("192.0.2.9".parse().unwrap(), 30, &mut out);
        let ips: Vec<String> = out.iter().map(|t| t.ip.to_string()).collect();
        assert_eq!(ips, ["192.0.2.8", "192.0.2.9", "192.0.2.10", "192.0.2.11"]);
        out.clear();
        expand_cidr("2001:db8::5".parse().unwrap(), 127, &mut out);
        let ips: Vec<String> = out.iter().map(|t| t.ip.to_string()).collect();
        assert_eq!(ips, ["2001:db8::4", "2001:db8::5"]);
        out.clear();
        expand_cidr("127.0.0.1".parse().unwrap(), 32, &mut out);
        assert_eq!(out.len(), 1);
    }
}
