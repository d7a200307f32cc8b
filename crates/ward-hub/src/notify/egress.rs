//! Where the hub may connect on a contact's behalf. Webhook URLs and syslog `HOST:PORT` targets
//! are set by jurisdiction admins, so they must not become a way into the hub's own network
//! (server-side request forgery: the cloud metadata service, an admin port on loopback, a
//! database on a private address).
//!
//! The rule, in one place:
//! * every address a target's host resolves to must be outside the deny list
//!   ([`denied_class`]): unspecified, loopback, private (RFC 1918), shared (CGNAT), link-local
//!   (which holds the metadata service at 169.254.169.254), protocol assignments,
//!   documentation, benchmarking, multicast, broadcast, reserved; for IPv6 also unique-local,
//!   link-local, site-local, NAT64 local-use, 6to4 and anything outside global unicast
//!   `2000::/3`. An IPv4 address inside IPv6 (mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`)
//!   is judged as that IPv4 address;
//! * unless the address lies in `[notify] allow_targets` (an on-premises SIEM on a private
//!   address); the allow list is by address, after resolution;
//! * cloud metadata host names ([`METADATA_HOSTS`]) are refused whatever they resolve to;
//! * one refused address refuses the whole target: a name answering with one public and one
//!   internal address could otherwise reach the internal one.
//!
//! The check that counts runs at delivery time, after DNS, and the checked addresses are the
//! ones connected to (no second resolution, so DNS rebinding between check and connect cannot
//! slip through): the webhook client resolves through [`EgressResolver`] (reqwest connects only
//! to the addresses it returns; literal addresses, which reqwest does not resolve, are checked
//! by [`EgressPolicy::check_url`] before the request), and syslog connects to the addresses
//! [`EgressPolicy::resolve`] returned. The webhook client follows no redirects and uses no proxy
//! from the environment (a proxy would resolve the name itself). At contact creation
//! [`EgressPolicy::check_target`] refuses literal denied addresses and metadata names early,
//! with a hint; it does not resolve names.
//!
//! SMTP is not covered: its host is the operator's configuration, not a contact's.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use ipnet::IpNet;

use crate::model::Channel;

/// Host names of cloud metadata services (GCP, AWS, Tencent, Equinix Metal). Their addresses are
/// link-local or private and refused anyway; the names are refused too, even when an allow list
/// would admit the address they resolve to.
pub const METADATA_HOSTS: &[&str] = &[
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.tencentyun.com",
    "metadata.platformequinix.com",
    "metadata.packet.net",
];

/// Address ranges never delivered to unless allowed, with the class named in the refusal. The
/// first match wins (broadcast before the reserved 240/4 around it).
const DENIED: &[(&str, &str)] = &[
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "reserved"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "private"),
    ("100::/64", "reserved"),
    ("2001::/23", "protocol assignments"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4"),
    ("3fff::/20", "documentation"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
];

static DENIED_NETS: LazyLock<Vec<(IpNet, &'static str)>> =
    LazyLock::new(|| DENIED.iter().filter_map(|(net, class)| Some((net.parse().ok()?, *class))).collect());

/// Why an address is refused, or `None` for a globally routable one.
pub fn denied_class(ip: IpAddr) -> Option<&'static str> {
    let ip = ip.to_canonical();
    if let IpAddr::V6(v6) = ip {
        // NAT64 (RFC 6052 well-known prefix): the gateway connects to the embedded IPv4 address.
        let s = v6.segments();
        if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
            return denied_class(IpAddr::V4(Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]))));
        }
    }
    if let Some((_, class)) = DENIED_NETS.iter().find(|(net, _)| net.contains(&ip)) {
        return Some(class);
    }
    match ip {
        IpAddr::V6(v6) if v6.segments()[0] & 0xe000 != 0x2000 => Some("reserved"),
        _ => None,
    }
}

/// Whether `host` (lower case, without a trailing dot) names a cloud metadata service.
pub fn is_metadata_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    METADATA_HOSTS.contains(&host.as_str())
}

/// Why a target was refused or could not be resolved. The text goes into the delivery attempt
/// (and the log): it names the class and the address, never anything the target answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EgressError {
    #[error("address refused by egress policy: {class} ({addr})")]
    Refused { class: &'static str, addr: IpAddr },
    #[error("address refused by egress policy: {0} is a cloud metadata host name")]
    MetadataHost(String),
    #[error("dns lookup failed for {0}")]
    Lookup(String),
    #[error("bad target: {0}")]
    BadTarget(String),
}

/// One entry of `[notify] allow_targets`: a CIDR network, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowedNet(pub IpNet);

impl FromStr for AllowedNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(AllowedNet(net.trunc()));
        }
        s.parse::<IpAddr>()
            .map(|ip| AllowedNet(IpNet::from(ip)))
            .map_err(|_| format!("bad allow_targets entry {s:?}: give a CIDR network (10.20.0.0/16) or an address"))
    }
}

impl<'de> serde::Deserialize<'de> for AllowedNet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for AllowedNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The deny list plus the operator's allow list.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    allow: Vec<IpNet>,
}

impl EgressPolicy {
    pub fn new(allow: &[AllowedNet]) -> Self {
        EgressPolicy { allow: allow.iter().map(|a| a.0).collect() }
    }

    /// Whether the hub may connect to `ip`.
    pub fn check_addr(&self, ip: IpAddr) -> Result<(), EgressError> {
        let ip = ip.to_canonical();
        if self.allow.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match denied_class(ip) {
            Some(class) => Err(EgressError::Refused { class, addr: ip }),
            None => Ok(()),
        }
    }

    /// Refuses metadata host names (before any lookup).
    pub fn check_name(&self, host: &str) -> Result<(), EgressError> {
        if is_metadata_host(host) {
            return Err(EgressError::MetadataHost(host.trim_end_matches('.').to_ascii_lowercase()));
        }
        Ok(())
    }

    /// The part of the check that needs no DNS: a literal address in the URL (which reqwest
    /// connects to without asking the resolver) and metadata names. The URL parser has already
    /// turned `2130706433`, `127.1`, `0x7f.1` and `0` into dotted IPv4.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), EgressError> {
        let Some(host) = url.host_str() else { return Err(EgressError::BadTarget("webhook URL has no host".into())) };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => self.check_addr(ip),
            Err(_) => self.check_name(bare),
        }
    }

    /// Resolves `host` and checks every address; returns them for the connection.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.check_name(host)?;
        if let Ok(ip) = host.parse::<IpAddr>() {
            self.check_addr(ip)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| EgressError::Lookup(host.to_string()))?
            .collect();
        if found.is_empty() {
            return Err(EgressError::Lookup(host.to_string()));
        }
        for addr in &found {
            self.check_addr(addr.ip())?;
        }
        Ok(found)
    }

    /// The check at contact creation: literal addresses (in any form the URL parser accepts)
    /// and metadata names. Names are resolved only at delivery.
    pub fn check_target(&self, channel: Channel, target: &str) -> Result<(), EgressError> {
        let target = target.trim();
        match channel {
            Channel::Email => Ok(()),
            Channel::Webhook => {
                let url = reqwest::Url::parse(target).map_err(|e| EgressError::BadTarget(format!("bad webhook URL: {e}")))?;
                self.check_url(&url)
            }
            Channel::Syslog => {
                let (host, _) = split_host_port(target).ok_or_else(|| EgressError::BadTarget("syslog target must be HOST:PORT".into()))?;
                // Normalise numeric host forms the way a resolver would read them.
                let url = reqwest::Url::parse(&format!("http://{}/", bracket_v6(host)))
                    .map_err(|e| EgressError::BadTarget(format!("bad syslog host {host:?}: {e}")))?;
                self.check_url(&url)
            }
        }
    }
}

fn bracket_v6(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Splits a syslog target `HOST:PORT` (`[v6]:PORT` for IPv6); `None` when malformed.
pub fn split_host_port(target: &str) -> Option<(&str, u16)> {
    let (host, port) = target.trim().rsplit_once(':')?;
    let port = port.parse::<u16>().ok()?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() {
        return None;
    }
    Some((host, port))
}

/// reqwest's resolver for webhook deliveries: resolves with the system resolver and returns
/// the addresses only if every one passes the policy. reqwest connects to exactly these.
pub struct EgressResolver(pub Arc<EgressPolicy>);

impl reqwest::dns::Resolve for EgressResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = policy.resolve(&host, 0).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_deny_table_parses() {
        assert_eq!(DENIED_NETS.len(), DENIED.len());
    }

    #[test]
    fn internal_addresses_are_denied_public_ones_are_not() {
        for (addr, class) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("10.1.2.3", "private"),
            ("172.31.255.1", "private"),
            ("192.168.1.1", "private"),
            ("100.100.100.200", "shared address space"),
            ("169.254.169.254", "link-local"),
            ("192.0.0.192", "protocol assignments"),
            ("192.0.2.1", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("224.0.0.251", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("250.1.1.1", "reserved"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("64:ff9b::7f00:1", "loopback"),
            ("fd00:ec2::254", "unique-local"),
            ("fe80::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("2002:7f00:1::1", "6to4"),
            ("2001::1", "protocol assignments"),
            ("::127.0.0.1", "reserved"),
            ("4000::1", "reserved"),
        ] {
            assert_eq!(denied_class(ip(addr)), Some(class), "{addr}");
        }
        for addr in ["8.8.8.8", "185.220.101.7", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"] {
            assert_eq!(denied_class(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn the_allow_list_admits_listed_addresses_only() {
        let allow: Vec<AllowedNet> = ["10.20.0.0/16", "127.0.0.1"].iter().map(|s| s.parse().unwrap()).collect();
        let p = EgressPolicy::new(&allow);
        assert!(p.check_addr(ip("10.20.3.4")).is_ok());
        assert!(p.check_addr(ip("127.0.0.1")).is_ok());
        assert!(p.check_addr(ip("::ffff:127.0.0.1")).is_ok(), "mapped form of an allowed address");
        assert_eq!(p.check_addr(ip("10.21.0.1")), Err(EgressError::Refused { class: "private", addr: ip("10.21.0.1") }));
        assert!(p.check_addr(ip("127.0.0.2")).is_err());
        assert!(p.check_addr(ip("169.254.169.254")).is_err());
        assert!("10.0.0.0/33".parse::<AllowedNet>().is_err());
        assert!("intranet".parse::<AllowedNet>().is_err());
        assert_eq!("10.20.9.9/16".parse::<AllowedNet>().unwrap().to_string(), "10.20.0.0/16");
    }

    #[test]
    fn creation_refuses_literal_internal_targets_in_every_spelling() {
        let p = EgressPolicy::default();
        for url in [
            "http://127.0.0.1:8080/internal-admin?action=delete",
            "http://2130706433/",
            "http://127.1/",
            "http://0x7f.1/",
            "http://0/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://METADATA.google.internal./",
            "http://10.0.0.5/",
        ] {
            let err = p.check_target(Channel::Webhook, url).unwrap_err();
            assert!(err.to_string().starts_with("address refused by egress policy"), "{url}: {err}");
        }
        for target in ["127.0.0.1:514", "[::1]:514", "2130706433:514", "169.254.169.254:514", "metadata:514"] {
            assert!(p.check_target(Channel::Syslog, target).is_err(), "{target}");
        }
        assert!(p.check_target(Channel::Webhook, "https://soc.example/hook?token=x").is_ok());
        assert!(p.check_target(Channel::Syslog, "siem.example:6514").is_ok());
        assert!(p.check_target(Channel::Email, "it@county.example.gov").is_ok());
        assert!(matches!(p.check_target(Channel::Webhook, "not a url"), Err(EgressError::BadTarget(_))));
    }

    #[test]
    fn syslog_targets_split() {
        assert_eq!(split_host_port("siem.example:6514"), Some(("siem.example", 6514)));
        assert_eq!(split_host_port("[::1]:514"), Some(("::1", 514)));
        assert_eq!(split_host_port(":514"), None);
        assert_eq!(split_host_port("siem.example"), None);
        assert_eq!(split_host_port("siem.example:99999"), None);
    }

    #[tokio::test]
    async fn names_are_checked_after_resolution() {
        let p = EgressPolicy::default();
        // `localhost` resolves (from /etc/hosts) to loopback only: refused, nothing connected.
        let err = p.resolve("localhost", 80).await.unwrap_err();
        assert!(matches!(err, EgressError::Refused { class: "loopback", .. }), "{err}");
        assert!(matches!(p.resolve("metadata.google.internal", 80).await, Err(EgressError::MetadataHost(_))));
        let allowed = EgressPolicy::new(&["127.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()]);
        let addrs = allowed.resolve("localhost", 80).await.unwrap();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
    }
}
