//! DNS for the scanner: name resolution of targets and the TXT/MX look-ups of the email checks,
//! through the system's resolver or one given with `--dns ADDR:PORT` (the tests point it at a
//! DNS server on loopback).
//!
//! Invariant: "no such record" (an empty answer or NXDOMAIN) is `Ok(empty)`; a server that does
//! not answer is an error, so a broken resolver never turns into a "SPF missing" finding.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, Protocol, ResolverConfig, ResolverOpts};
use hickory_resolver::error::ResolveErrorKind;
use hickory_resolver::TokioAsyncResolver;

/// Per-query timeout: a DNS server that has not answered in 3 s will not (and a scan waits on it).
const DNS_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    #[error("cannot read the system resolver configuration: {0}; pass --dns ADDR:PORT")]
    SystemConfig(String),
    #[error("dns lookup of {name} failed: {reason}")]
    Lookup { name: String, reason: String },
}

/// A DNS resolver for targets and mail checks.
pub struct Resolver {
    inner: TokioAsyncResolver,
}

impl Resolver {
    /// The system's resolver (/etc/resolv.conf and /etc/hosts) or the server at `server`.
    pub fn new(server: Option<SocketAddr>) -> Result<Resolver, DnsError> {
        let mut opts = ResolverOpts::default();
        opts.timeout = DNS_TIMEOUT;
        opts.attempts = 1;
        opts.use_hosts_file = true;
        let inner = match server {
            Some(addr) => {
                let mut config = ResolverConfig::new();
                config.add_name_server(NameServerConfig::new(addr, Protocol::Udp));
                config.add_name_server(NameServerConfig::new(addr, Protocol::Tcp));
                TokioAsyncResolver::tokio(config, opts)
            }
            None => {
                let (config, _) = hickory_resolver::system_conf::read_system_conf()
                    .map_err(|e| DnsError::SystemConfig(e.to_string()))?;
                TokioAsyncResolver::tokio(config, opts)
            }
        };
        Ok(Resolver { inner })
    }

    /// Every address of a name (A and AAAA); empty when it does not resolve.
    pub async fn lookup_ip(&self, name: &str) -> Vec<IpAddr> {
        match self.inner.lookup_ip(format!("{name}.")).await {
            Ok(found) => found.iter().collect(),
            Err(_) => Vec::new(),
        }
    }

    /// TXT records of a name, each record's strings joined (RFC 7208 section 3.3).
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        match self.inner.txt_lookup(format!("{name}.")).await {
            Ok(found) => Ok(found
                .iter()
                .map(|txt| {
                    txt.txt_data().iter().map(|part| String::from_utf8_lossy(part).into_owned()).collect()
                })
                .collect()),
            Err(e) if matches!(e.kind(), ResolveErrorKind::NoRecordsFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(DnsError::Lookup { name: name.to_string(), reason: e.to_string() }),
        }
    }

    /// MX records of a domain, lowest preference first, as (preference, host without final dot).
    pub async fn mx(&self, name: &str) -> Result<Vec<(u16, String)>, DnsError> {
        match self.inner.mx_lookup(format!("{name}.")).await {
            Ok(found) => {
                let mut out: Vec<(u16, String)> = found
                    .iter()
                    .map(|mx| (mx.preference(), mx.exchange().to_utf8().trim_end_matches('.').to_string()))
                    .collect();
                out.sort();
                Ok(out)
            }
            Err(e) if matches!(e.kind(), ResolveErrorKind::NoRecordsFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(DnsError::Lookup { name: name.to_string(), reason: e.to_string() }),
        }
    }
}
