//! Checks: turn what the probes observed into findings, each with a severity, the evidence, a
//! plain-language fix and references. Pure functions over observations: no I/O here, so every
//! rule is unit-tested on constructed observations and end-to-end on the lab.

use chrono::{DateTime, Utc};

use crate::finding::{Confidence, Finding, Severity};
use crate::probe::{HttpResponse, Observation};
use crate::tls::{CertFacts, ProtocolScan, OldVersion, Trust};

/// A certificate expiring within this many days is a warning (Let's Encrypt renews at 30).
pub const EXPIRY_WARNING_DAYS: i64 = 30;
/// HSTS max-age below one year is too short (the HSTS preload list's minimum).
pub const MIN_HSTS_MAX_AGE: u64 = 31_536_000;
/// RSA keys shorter than this are weak (NIST SP 800-131A).
pub const MIN_RSA_BITS: u32 = 2048;

/// A finding on a service, with the fields every check fills the same way.
pub fn service_finding(obs: &Observation, check: &str, severity: Severity, name: &str, description: &str, evidence: String, solution: &str, references: &[&str]) -> Finding {
    Finding {
        check: check.into(),
        asset: obs.service.ip.to_string(),
        hostname: obs.hostname.clone(),
        port: Some(obs.service.port),
        protocol: obs.service.protocol.clone(),
        severity,
        confidence: Confidence::Confirmed,
        name: name.into(),
        description: description.into(),
        evidence,
        solution: solution.into(),
        references: references.iter().map(|r| r.to_string()).collect(),
        cve: None,
        cvss: None,
        known_exploited: false,
        kev_due: None,
    }
}

/// (check, severity, title, why it matters, fix) of each risky service by service name.
fn risky_service(name: &str) -> Option<(&'static str, Severity, &'static str, &'static str, &'static str)> {
    Some(match name {
        "ms-wbt-server" => ("exposed.rdp", Severity::High, "Remote Desktop (RDP) open to the internet",
            "RDP is the most common way ransomware crews get in: they guess passwords or use RDP flaws.",
            "Close port 3389 at the firewall; reach desktops through a VPN with multi-factor authentication."),
        "telnet" => ("exposed.telnet", Severity::High, "Telnet open to the internet",
            "Telnet sends passwords unencrypted and is a favourite target of botnets.",
            "Turn Telnet off and use SSH with keys; if a device only has Telnet, keep it off the internet."),
        "microsoft-ds" => ("exposed.smb", Severity::High, "Windows file sharing (SMB) open to the internet",
            "SMB carried WannaCry and NotPetya; it should never be reachable from the internet.",
            "Block TCP 445 (and 137-139) at the firewall."),
        "netbios-ssn" | "netbios-ns" => ("exposed.netbios", Severity::High, "NetBIOS open to the internet",
            "NetBIOS leaks computer and user names and leads to SMB attacks.",
            "Block TCP/UDP 137-139 at the firewall."),
        "ldap" | "ldaps" => ("exposed.ldap", Severity::Medium, "Directory service (LDAP) open to the internet",
            "LDAP can reveal user accounts and is used for password guessing and reflection attacks.",
            "Allow LDAP only from the internal network or a VPN."),
        "ftp" => ("exposed.ftp", Severity::Medium, "FTP open to the internet",
            "FTP sends passwords and files unencrypted.",
            "Replace FTP with SFTP or HTTPS uploads; if FTP must stay, require FTPS and strong passwords."),
        "msrpc" | "rpcbind" => ("exposed.rpc", Severity::Medium, "Remote procedure call service open to the internet",
            "RPC endpoints list internal services and have a long history of remote-code flaws.",
            "Block TCP/UDP 111 and 135 at the firewall."),
        "mysql" | "postgresql" | "ms-sql-s" | "oracle" => ("exposed.database", Severity::High, "Database open to the internet",
            "A database reachable from the internet invites password guessing and exploits against the voter or results data it holds.",
            "Allow database connections only from the application servers that need them (firewall or bind to a private address)."),
        "redis" | "mongodb" | "elasticsearch" | "memcached" => ("exposed.database", Severity::High, "Database open to the internet",
            "A database reachable from the internet invites password guessing and exploits.",
            "Allow connections only from the application servers that need them (firewall or bind to a private address)."),
        "vnc" => ("exposed.vnc", Severity::High, "VNC remote control open to the internet",
            "VNC often has weak or no passwords and gives full control of the screen.",
            "Close the VNC port; reach the machine through a VPN with multi-factor authentication."),
        "snmp" => ("exposed.snmp", Severity::Medium, "SNMP open to the internet",
            "SNMP reveals device configuration and, with a default community string, may allow changes.",
            "Block UDP 161 at the firewall; use SNMPv3 with authentication inside the network."),
        _ => return None,
    })
}

/// Findings about the service itself: exposure, no authentication, anonymous FTP, HTTP hygiene.
pub fn service_findings(obs: &Observation, host_has_https: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    let name = obs.service.name.as_str();
    let what = describe(obs);
    if let Some(evidence) = &obs.unauthenticated {
        out.push(service_finding(obs, &format!("noauth.{name}"), Severity::Critical,
            &format!("{} answers without a password", product_or(obs, name)),
            "Anyone on the internet can read, change or delete the data in this service.",
            evidence.clone(),
            "Require authentication (Redis: requirepass or ACL users; MongoDB: security.authorization enabled; Elasticsearch: xpack.security.enabled; Memcached: SASL) and block the port at the firewall.",
            &["https://www.cisa.gov/news-events/cybersecurity-advisories"]));
    } else if let Some((check, severity, title, why, fix)) = risky_service(name) {
        out.push(service_finding(obs, check, severity, title, why, what.clone(), fix,
            &["https://www.cisa.gov/resources-tools/services/cisa-vulnerability-scanning"]));
    }
    if let Some(evidence) = &obs.ftp_anonymous {
        out.push(service_finding(obs, "ftp.anonymous", Severity::High, "FTP allows anonymous login",
            "Anyone can log in to this FTP server without a password and read (perhaps write) files.",
            evidence.clone(),
            "Turn anonymous access off (vsftpd: anonymous_enable=NO) unless the server only publishes public files.",
            &["https://cwe.mitre.org/data/definitions/284.html"]));
    }
    if let Some(http) = &obs.http {
        out.extend(http_findings(obs, http, host_has_https));
    }
    if !is_public(obs.service.ip) {
        // Nothing proves a private or loopback address faces the internet: say what is known.
        for f in &mut out {
            f.name = f.name.replace("open to the internet", "reachable from the scanner");
            f.description = f.description.replace("Anyone on the internet", "Anyone who can reach this address");
            f.description.push_str(&format!(
                " {} is not a public address: the service was reachable from where the scanner ran, and faces the internet only if a firewall forwards to it.",
                obs.service.ip
            ));
        }
    }
    out
}

/// Whether an address is globally routable (not private, loopback, link-local, shared (CGNAT),
/// documentation, benchmarking or unique-local).
pub fn is_public(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 224)
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            !(v6.is_loopback() || v6.is_unspecified() || (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfe80 || (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] & 0xff00) == 0xff00)
        }
    }
}

fn product_or(obs: &Observation, name: &str) -> String {
    obs.service.product.clone().unwrap_or_else(|| name.to_string())
}

fn describe(obs: &Observation) -> String {
    let mut text = format!("{}/{} {}", obs.service.port, obs.service.protocol, obs.service.name);
    if let Some(p) = &obs.service.product {
        text.push_str(&format!(" ({p}"));
        if let Some(v) = &obs.service.version {
            text.push_str(&format!(" {v}"));
        }
        text.push(')');
    }
    if let Some(b) = &obs.service.banner {
        text.push_str(&format!("; banner: {b}"));
    }
    text
}

/// HSTS max-age from a Strict-Transport-Security value.
pub fn hsts_max_age(value: &str) -> Option<u64> {
    value.split(';').find_map(|d| {
        let (k, v) = d.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case("max-age").then(|| v.trim().trim_matches('"').parse().ok()).flatten()
    })
}

/// Whether the body is a web server's automatic directory listing.
pub fn is_directory_listing(body: &str) -> bool {
    let lower = body.to_ascii_lowercase();
    lower.contains("<title>index of /") || lower.contains("<title>directory listing for") || lower.contains("<h1>index of /")
}

fn http_findings(obs: &Observation, http: &HttpResponse, host_has_https: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    let status_line = obs.service.banner.clone().unwrap_or_else(|| format!("HTTP {}", http.status));
    if obs.service.tls {
        match http.header("strict-transport-security").map(|v| (v, hsts_max_age(v))) {
            None => out.push(service_finding(obs, "http.hsts-missing", Severity::Low, "HTTPS site does not set HSTS",
                "Without HTTP Strict Transport Security a visitor's browser can be tricked into an unencrypted connection.",
                format!("{status_line}; no Strict-Transport-Security header"),
                "Add the header Strict-Transport-Security: max-age=31536000; includeSubDomains to every HTTPS response.",
                &["https://https.cio.gov/hsts/"])),
            Some((value, age)) if age.unwrap_or(0) < MIN_HSTS_MAX_AGE => out.push(service_finding(obs, "http.hsts-short", Severity::Low,
                "HSTS max-age is shorter than one year",
                "A short HSTS lifetime leaves visitors unprotected once it lapses.",
                format!("Strict-Transport-Security: {value}"),
                "Set max-age to at least 31536000 (one year).",
                &["https://https.cio.gov/hsts/"])),
            Some(_) => {}
        }
    } else if !host_has_https {
        out.push(service_finding(obs, "http.no-https", Severity::Medium, "Web site without HTTPS",
            "Pages and form data travel unencrypted and can be read or changed on the way, including results and registration pages.",
            format!("{status_line}; no HTTPS service found on this host"),
            "Get a free certificate (for example from Let's Encrypt), serve the site over HTTPS and redirect HTTP to it.",
            &["https://https.cio.gov/"]));
    } else {
        let location = http.header("location").unwrap_or("");
        let redirects = matches!(http.status, 301 | 302 | 303 | 307 | 308) && location.to_ascii_lowercase().starts_with("https://");
        if !redirects {
            out.push(service_finding(obs, "http.no-redirect", Severity::Medium, "HTTP does not redirect to HTTPS",
                "Visitors who type the address without https:// stay on the unencrypted site.",
                format!("{status_line}{}", if location.is_empty() { String::new() } else { format!("; Location: {location}") }),
                "Answer every plain-HTTP request with a 301 redirect to the same address over https://.",
                &["https://https.cio.gov/"]));
        }
    }
    if let Some(server) = http.header("server") {
        if server.chars().any(|c| c.is_ascii_digit()) {
            out.push(service_finding(obs, "http.server-version", Severity::Low, "Web server discloses its version",
                "The exact version tells attackers which published flaws to try.",
                format!("Server: {server}"),
                "Hide the version (nginx: server_tokens off; Apache: ServerTokens Prod and ServerSignature Off).",
                &["https://cwe.mitre.org/data/definitions/200.html"]));
        }
    }
    if is_directory_listing(&http.body) {
        let title = http.body.find("<title>").map(|i| http.body[i + 7..].chars().take_while(|c| *c != '<').collect::<String>()).unwrap_or_default();
        out.push(service_finding(obs, "http.directory-listing", Severity::Medium, "Web server lists directory contents",
            "Anyone can browse every file in the directory, including backups and documents never meant to be published.",
            format!("GET / returned an automatic listing: {title}"),
            "Turn directory listing off (nginx: autoindex off; Apache: Options -Indexes) and add an index page.",
            &["https://cwe.mitre.org/data/definitions/548.html"]));
    }
    out
}

/// Findings about a TLS service's certificate and protocol support.
pub fn tls_findings(obs: &Observation, chain: &[Vec<u8>], trust: &Trust, protocols: &ProtocolScan, now: DateTime<Utc>) -> Vec<Finding> {
    let mut out = Vec::new();
    let refs: &[&str] = &["https://www.cisa.gov/news-events/directives/bod-18-01-enhance-email-and-web-security"];
    if let Some(facts) = chain.first().and_then(|der| CertFacts::parse(der)) {
        let subject = format!("subject {}; issuer {}; valid {} to {}", facts.subject, facts.issuer, facts.not_before.format("%Y-%m-%d"), facts.not_after.format("%Y-%m-%d"));
        if facts.not_after < now {
            out.push(service_finding(obs, "tls.expired", Severity::High, "TLS certificate has expired",
                "Browsers show a full-page warning; visitors learn to click through warnings, which attackers exploit.",
                format!("expired {} days ago; {subject}", (now - facts.not_after).num_days()),
                "Renew the certificate now and automate renewal (for example with certbot).", refs));
        } else if facts.not_before > now {
            out.push(service_finding(obs, "tls.not-yet-valid", Severity::High, "TLS certificate is not yet valid",
                "Browsers reject a certificate before its start date.", subject.clone(),
                "Install a certificate that is valid today and check the server's clock.", refs));
        } else if (facts.not_after - now).num_days() < EXPIRY_WARNING_DAYS {
            out.push(service_finding(obs, "tls.expiring", Severity::Low, "TLS certificate expires within 30 days",
                "The site will show a browser warning when it lapses.",
                format!("expires in {} days; {subject}", (facts.not_after - now).num_days()),
                "Renew the certificate and automate renewal.", refs));
        }
        match trust {
            Trust::Trusted => {}
            // webpki says UnknownIssuer, or CaUsedAsEndEntity when the self-signed cert says CA:TRUE
            Trust::UnknownIssuer | Trust::Invalid(_) if facts.self_signed => out.push(service_finding(obs, "tls.self-signed", Severity::Medium,
                "TLS certificate is self-signed",
                "Visitors cannot tell this server from an impostor, and browsers warn on every visit.", subject.clone(),
                "Install a certificate from a public certificate authority (Let's Encrypt is free).", refs)),
            Trust::UnknownIssuer => out.push(service_finding(obs, "tls.untrusted", Severity::Medium,
                "TLS certificate chain is not trusted",
                "The certificate does not lead to a trusted authority (private CA or missing intermediate), so browsers warn.",
                subject.clone(),
                "Install a certificate from a public authority and configure the full chain (leaf plus intermediates).", refs)),
            Trust::Invalid(reason) => out.push(service_finding(obs, "tls.untrusted", Severity::Medium,
                "TLS certificate chain is not valid",
                "The certificate chain fails validation, so browsers warn.", format!("{reason}; {subject}"),
                "Install a valid certificate from a public authority with its full chain.", refs)),
        }
        if let Some(host) = obs.hostname.as_deref() {
            if !facts.covers(host) {
                out.push(service_finding(obs, "tls.hostname-mismatch", Severity::Medium, "TLS certificate does not match the site name",
                    "Browsers reject a certificate issued for another name.",
                    format!("{host} is not among {:?}", facts.names),
                    "Issue a certificate that lists this name (subject alternative name).", refs));
            }
        }
        if facts.key_type == "RSA" && facts.key_bits.is_some_and(|b| b < MIN_RSA_BITS) {
            out.push(service_finding(obs, "tls.weak-key", Severity::Medium, "TLS certificate key is shorter than 2048 bits",
                "Short RSA keys can be broken with affordable computing power.",
                format!("RSA {} bits; {subject}", facts.key_bits.unwrap_or(0)),
                "Issue a new certificate with an RSA key of at least 2048 bits or an ECDSA P-256 key.", refs));
        }
        let sha1 = chain.iter().take(chain.len().saturating_sub(1).max(1)).filter_map(|d| CertFacts::parse(d)).any(|f| f.sha1_signature && !(f.self_signed && chain.len() > 1));
        if sha1 {
            out.push(service_finding(obs, "tls.sha1-signature", Severity::Medium, "TLS certificate signed with SHA-1",
                "SHA-1 signatures can be forged; browsers no longer accept them.", subject.clone(),
                "Reissue the certificate with a SHA-256 signature.", refs));
        }
    }
    for version in &protocols.old_versions {
        let (check, severity) = match version {
            OldVersion::Ssl3 => ("tls.sslv3", Severity::High),
            OldVersion::Tls10 => ("tls.tls10", Severity::Medium),
            OldVersion::Tls11 => ("tls.tls11", Severity::Medium),
        };
        out.push(service_finding(obs, check, severity, &format!("{} accepted", version.label()),
            "Old protocol versions have known weaknesses (POODLE, BEAST) and are no longer allowed by federal guidance.",
            format!("server answered a {} ClientHello with a {} ServerHello", version.label(), version.label()),
            "Allow only TLS 1.2 and 1.3 (nginx: ssl_protocols TLSv1.2 TLSv1.3; Apache: SSLProtocol -all +TLSv1.2 +TLSv1.3).", refs));
    }
    if !protocols.weak_ciphers.is_empty() {
        let list: Vec<String> = protocols.weak_ciphers.iter().map(|(v, c)| format!("{c} ({v})")).collect();
        out.push(service_finding(obs, "tls.weak-cipher", Severity::Medium, "Weak TLS ciphers accepted (RC4, 3DES, DES or export)",
            "These ciphers can be broken or are too slow to resist attacks such as Sweet32.",
            format!("server chose {}", list.join(", ")),
            "Remove RC4, 3DES, DES and export ciphers (nginx: ssl_ciphers HIGH:!aNULL:!MD5:!3DES:!RC4).", refs));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Service;

    fn obs(name: &str, port: u16, tls: bool, http: Option<HttpResponse>) -> Observation {
        Observation {
            service: Service { ip: "192.0.2.5".parse().unwrap(), port, protocol: "tcp".into(), name: name.into(), tls, product: None, version: None, banner: None },
            hostname: None,
            http,
            tls: None,
            unauthenticated: None,
            ftp_anonymous: None,
            smtp_starttls: None,
        }
    }

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        HttpResponse { status, headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), body: body.into() }
    }

    fn checks(found: &[Finding]) -> Vec<&str> {
        found.iter().map(|f| f.check.as_str()).collect()
    }

    #[test]
    fn a_private_address_is_reachable_from_the_scanner_not_open_to_the_internet() {
        let mut o = obs("ms-wbt-server", 3389, false, None);
        o.service.ip = "10.1.2.3".parse().unwrap();
        let f = &service_findings(&o, false)[0];
        assert_eq!(f.name, "Remote Desktop (RDP) reachable from the scanner");
        assert!(f.description.contains("10.1.2.3 is not a public address"));
        o.service.ip = "8.8.8.8".parse().unwrap();
        assert_eq!(service_findings(&o, false)[0].name, "Remote Desktop (RDP) open to the internet");
        for (ip, public) in [("127.0.0.1", false), ("192.168.1.1", false), ("100.64.0.1", false), ("198.18.0.1", false), ("::1", false), ("fd00::1", false), ("2001:db8::1", false), ("1.1.1.1", true), ("2606:4700::1", true)] {
            assert_eq!(is_public(ip.parse().unwrap()), public, "{ip}");
        }
    }

    #[test]
    fn risky_services_and_noauth() {
        assert_eq!(checks(&service_findings(&obs("ms-wbt-server", 3389, false, None), false)), ["exposed.rdp"]);
        assert_eq!(checks(&service_findings(&obs("ssh", 22, false, None), false)), Vec::<&str>::new());
        let mut redis = obs("redis", 6379, false, None);
        redis.unauthenticated = Some("INFO answered".into());
        let found = service_findings(&redis, false);
        assert_eq!(checks(&found), ["noauth.redis"]);
        assert_eq!(found[0].severity, Severity::Critical);
        let mut ftp = obs("ftp", 21, false, None);
        ftp.ftp_anonymous = Some("230".into());
        assert_eq!(checks(&service_findings(&ftp, false)), ["exposed.ftp", "ftp.anonymous"]);
    }

    #[test]
    fn http_hygiene() {
        let plain = obs("http", 80, false, Some(response(200, &[("Server", "nginx/1.22.1")], "<html><head><title>Index of /</title>")));
        assert_eq!(checks(&service_findings(&plain, false)), ["http.no-https", "http.server-version", "http.directory-listing"]);
        assert_eq!(checks(&service_findings(&plain, true)), ["http.no-redirect", "http.server-version", "http.directory-listing"]);
        let redirect = obs("http", 80, false, Some(response(301, &[("Location", "https://vote.example.gov/"), ("Server", "nginx")], "")));
        assert!(service_findings(&redirect, true).is_empty());
        let https = obs("http", 443, true, Some(response(200, &[("Strict-Transport-Security", "max-age=31536000; includeSubDomains")], "")));
        assert!(service_findings(&https, true).is_empty());
        let short = obs("http", 443, true, Some(response(200, &[("Strict-Transport-Security", "max-age=300")], "")));
        assert_eq!(checks(&service_findings(&short, true)), ["http.hsts-short"]);
        let none = obs("http", 443, true, Some(response(200, &[], "")));
        assert_eq!(checks(&service_findings(&none, true)), ["http.hsts-missing"]);
        assert_eq!(hsts_max_age("max-age=\"100\"; preload"), Some(100));
        assert_eq!(hsts_max_age("includeSubDomains"), None);
    }

    #[test]
    fn old_protocols_and_weak_ciphers() {
        let o = obs("http", 443, true, None);
        let scan = ProtocolScan { old_versions: vec![OldVersion::Tls10, OldVersion::Tls11], weak_ciphers: vec![("TLS 1.2".into(), "TLS_RSA_WITH_3DES_EDE_CBC_SHA".into())] };
        assert_eq!(checks(&tls_findings(&o, &[], &Trust::Trusted, &scan, Utc::now())), ["tls.tls10", "tls.tls11", "tls.weak-cipher"]);
    }
}
