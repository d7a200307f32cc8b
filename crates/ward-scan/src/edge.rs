//! Edge devices: the internet-facing products CISA's KEV catalog shows attackers of state and
//! local governments exploit most (SSL-VPNs, gateways, mail and file-transfer servers), told
//! apart by the public markers of their answer to `GET /` — the redirect to their login page, a
//! cookie or header only they set, their login page's title and paths — and, where the device
//! reveals it, their version (Exchange's `X-OWA-Version`, Confluence's `ajs-version-number`).
//!
//! Each match is one finding that names the product, lists its entries in the KEV catalog in use
//! (newest first, with CISA's due dates), and says what to check when the version is hidden —
//! which it usually is: these devices are identified by what they are, not by a version string,
//! so the finding is `firm` that the product answers and makes no claim about which CVE applies.

use crate::finding::{Confidence, Finding, Severity};
use crate::probe::{HttpResponse, Observation};
use crate::vulns::VulnDb;

/// Where a marker is looked for.
#[derive(Debug, Clone, Copy)]
enum Marker {
    /// In the `Location` header (the redirect to the login page).
    Location(&'static str),
    /// A header's name (any value).
    HeaderName(&'static str),
    /// A cookie name prefix in `Set-Cookie`.
    Cookie(&'static str),
    /// In the body (case-insensitive).
    Body(&'static str),
}

/// One product ward recognises.
#[derive(Debug)]
pub struct EdgeProduct {
    /// Check id suffix: the finding's check is `edge.ID`.
    pub id: &'static str,
    pub name: &'static str,
    /// KEV `vendorProject`, and words one of whose must be in the KEV `product`.
    pub kev_vendors: &'static [&'static str],
    pub kev_products: &'static [&'static str],
    markers: &'static [Marker],
    /// What to check on the device when the version is not visible from outside.
    pub check_hidden: &'static str,
}

/// The products, most exploited first.
pub const PRODUCTS: &[EdgeProduct] = &[
    EdgeProduct {
        id: "fortinet-sslvpn",
        name: "Fortinet FortiGate SSL-VPN (FortiOS)",
        kev_vendors: &["Fortinet"],
        kev_products: &["FortiOS", "FortiProxy"],
        markers: &[Marker::Location("/remote/login"), Marker::Body("/remote/login"), Marker::Body("fgt_lang"), Marker::Body("ftnt-fortinet-grid")],
        check_hidden: "On the FortiGate: `get system status` shows the FortiOS version; compare it with Fortinet's PSIRT advisories for every KEV entry below.",
    },
    EdgeProduct {
        id: "citrix-netscaler",
        name: "Citrix NetScaler ADC / Gateway",
        kev_vendors: &["Citrix"],
        kev_products: &["ADC", "Gateway", "NetScaler"],
        markers: &[Marker::Location("/vpn/index.html"), Marker::Location("/logon/LogonPoint"), Marker::Cookie("NSC_"), Marker::Body("/vpn/resources/"), Marker::Body("logon/LogonPoint")],
        check_hidden: "On the appliance: `show ns version`; NetScaler's security bulletins list the fixed builds per branch.",
    },
    EdgeProduct {
        id: "ivanti-connect-secure",
        name: "Ivanti Connect Secure (Pulse Secure)",
        kev_vendors: &["Ivanti", "Pulse Secure"],
        kev_products: &["Connect Secure", "Policy Secure"],
        markers: &[Marker::Location("/dana-na/"), Marker::Body("/dana-na/"), Marker::Cookie("DSSignInURL")],
        check_hidden: "In the admin console (Maintenance > System > Platform) read the version; run Ivanti's Integrity Checker Tool, as CISA's emergency directives asked.",
    },
    EdgeProduct {
        id: "paloalto-globalprotect",
        name: "Palo Alto Networks GlobalProtect (PAN-OS)",
        kev_vendors: &["Palo Alto Networks"],
        kev_products: &["PAN-OS"],
        markers: &[Marker::Location("/global-protect/"), Marker::Body("/global-protect/"), Marker::Body("GlobalProtect Portal")],
        check_hidden: "On the firewall: `show system info` gives the PAN-OS version; check Palo Alto's advisories for GlobalProtect.",
    },
    EdgeProduct {
        id: "sonicwall-sma",
        name: "SonicWall SMA / SSL-VPN",
        kev_vendors: &["SonicWall"],
        kev_products: &["SMA", "SSLVPN", "Secure Remote Access", "SonicOS"],
        markers: &[Marker::Location("/cgi-bin/welcome"), Marker::Body("/cgi-bin/welcome"), Marker::Body("sonicwall")],
        check_hidden: "In the appliance's management interface (System > Status) read the firmware version and compare it with SonicWall's PSIRT advisories.",
    },
    EdgeProduct {
        id: "exchange-owa",
        name: "Microsoft Exchange (Outlook on the web)",
        kev_vendors: &["Microsoft"],
        kev_products: &["Exchange"],
        markers: &[Marker::HeaderName("X-OWA-Version"), Marker::Location("/owa/"), Marker::Body("/owa/auth/")],
        check_hidden: "Run Microsoft's Exchange Health Checker (HealthChecker.ps1): it reports the build and missing security updates.",
    },
    EdgeProduct {
        id: "moveit-transfer",
        name: "Progress MOVEit Transfer",
        kev_vendors: &["Progress"],
        kev_products: &["MOVEit"],
        markers: &[Marker::Body("MOVEit Transfer"), Marker::Location("/human.aspx"), Marker::Cookie("siLockLongTermInstID")],
        check_hidden: "In MOVEit Transfer's admin pages (Settings > System) read the version; Progress lists fixed versions per CVE.",
    },
    EdgeProduct {
        id: "vmware-vcenter",
        name: "VMware vCenter Server",
        kev_vendors: &["VMware"],
        kev_products: &["vCenter"],
        markers: &[Marker::Body("VMware vSphere"), Marker::Body("vsphere-client"), Marker::Location("/ui/")],
        check_hidden: "A vCenter should not face the internet at all; in the vSphere Client (Help > About) read the build and compare it with VMware's advisories.",
    },
    EdgeProduct {
        id: "f5-bigip",
        name: "F5 BIG-IP",
        kev_vendors: &["F5"],
        kev_products: &["BIG-IP"],
        markers: &[Marker::Location("/tmui/"), Marker::Body("/tmui/login.jsp"), Marker::Cookie("BIGipServer")],
        check_hidden: "On the BIG-IP: `tmsh show sys version`; the Configuration Utility (TMUI) must never face the internet.",
    },
    EdgeProduct {
        id: "atlassian-confluence",
        name: "Atlassian Confluence",
        kev_vendors: &["Atlassian"],
        kev_products: &["Confluence"],
        markers: &[Marker::HeaderName("X-Confluence-Request-Time"), Marker::Body("ajs-version-number"), Marker::Body("confluence-base-url")],
        check_hidden: "In Confluence's administration (General Configuration > System Information) read the version.",
    },
    EdgeProduct {
        id: "zimbra",
        name: "Zimbra Collaboration (Synacor)",
        kev_vendors: &["Synacor"],
        kev_products: &["Zimbra"],
        markers: &[Marker::Body("Zimbra Web Client"), Marker::Body("zimbraMail"), Marker::Cookie("ZM_TEST")],
        check_hidden: "On the server: `zmcontrol -v` prints the version; compare with Zimbra's security center.",
    },
];

fn matches(http: &HttpResponse, m: Marker) -> Option<String> {
    match m {
        Marker::Location(s) => http.header("location").filter(|l| l.contains(s)).map(|l| format!("redirects to {l}")),
        Marker::HeaderName(h) => http.header(h).map(|v| format!("header {h}: {v}")),
        Marker::Cookie(prefix) => http
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .find(|(_, v)| v.trim_start().starts_with(prefix))
            .map(|(_, v)| format!("sets cookie {}", v.split('=').next().unwrap_or(prefix).trim())),
        Marker::Body(s) => http.body.to_ascii_lowercase().contains(&s.to_ascii_lowercase()).then(|| format!("login page contains \"{s}\"")),
    }
}

/// The version a product shows from outside, when it does.
fn version(product: &EdgeProduct, http: &HttpResponse) -> Option<String> {
    let clean = |v: &str| -> Option<String> {
        let v: String = v.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-').take(40).collect();
        (!v.is_empty()).then_some(v)
    };
    match product.id {
        "exchange-owa" => http.header("X-OWA-Version").and_then(clean),
        "atlassian-confluence" => {
            let i = http.body.find("ajs-version-number")?;
            let rest = &http.body[i..];
            let c = rest.find("content=\"")? + 9;
            clean(&rest[c..rest[c..].find('"').map_or(rest.len(), |e| c + e)])
        }
        _ => None,
    }
}

/// The product `http` (the answer to `GET /`) is, with the markers that said so.
pub fn identify(http: &HttpResponse) -> Option<(&'static EdgeProduct, Vec<String>, Option<String>)> {
    for p in PRODUCTS {
        let evidence: Vec<String> = p.markers.iter().filter_map(|m| matches(http, *m)).collect();
        if !evidence.is_empty() {
            return Some((p, evidence, version(p, http)));
        }
    }
    None
}

/// The finding for an edge product answering on `obs`.
pub fn finding(obs: &Observation, vulns: &VulnDb) -> Option<Finding> {
    let http = obs.http.as_ref()?;
    let (product, evidence, version) = identify(http)?;
    let mut kev = vulns.kev_for(product.kev_vendors, product.kev_products);
    kev.sort_by(|a, b| b.1.date_added.cmp(&a.1.date_added).then_with(|| b.0.cmp(&a.0)));
    let catalog = vulns.kev_info().map(|i| i.label()).unwrap_or_else(|| "no KEV catalog".into());
    let listed: Vec<String> = kev
        .iter()
        .take(10)
        .map(|(cve, e)| format!("{cve}{}{}", e.due_date.map(|d| format!(" (CISA due {d})")).unwrap_or_default(), if e.ransomware { ", used by ransomware" } else { "" }))
        .collect();
    let version_text = match &version {
        Some(v) => format!("It shows version {v}."),
        None => "It does not show its version from outside.".to_string(),
    };
    let kev_text = if kev.is_empty() {
        format!("The {catalog} lists no entry for it.")
    } else {
        format!(
            "The {catalog} lists {} known-exploited vulnerabilities in it{}: {}{}.",
            kev.len(),
            if kev.iter().any(|k| k.1.ransomware) { ", some used by ransomware" } else { "" },
            listed.join("; "),
            if kev.len() > listed.len() { format!("; and {} older", kev.len() - listed.len()) } else { String::new() }
        )
    };
    let mut references: Vec<String> = kev.iter().take(10).map(|(cve, _)| format!("https://nvd.nist.gov/vuln/detail/{cve}")).collect();
    references.push("https://www.cisa.gov/known-exploited-vulnerabilities-catalog".into());
    Some(Finding {
        check: format!("edge.{}", product.id),
        asset: obs.service.ip.to_string(),
        hostname: obs.hostname.clone(),
        port: Some(obs.service.port),
        protocol: obs.service.protocol.clone(),
        severity: if kev.is_empty() { Severity::Low } else { Severity::Medium },
        confidence: Confidence::Firm,
        name: format!("Internet-facing {}", product.name),
        description: format!(
            "{} answers here. Products like it are what attackers of state and local governments exploit most. {version_text} {kev_text}",
            product.name
        ),
        evidence: evidence.join("; "),
        solution: format!(
            "Make sure it runs a release that fixes every known-exploited vulnerability listed, and that its management interface is not reachable from the internet. {}",
            product.check_hidden
        ),
        references,
        cve: None,
        cvss: None,
        known_exploited: false,
        kev_due: kev.iter().filter_map(|k| k.1.due_date).max(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        HttpResponse { status, headers: headers.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(), body: body.into() }
    }

    #[test]
    fn each_product_is_told_by_its_public_markers() {
        let cases = [
            (resp(302, &[("Location", "/remote/login?lang=en")], ""), "fortinet-sslvpn"),
            (resp(302, &[("Location", "/logon/LogonPoint/index.html")], ""), "citrix-netscaler"),
            (resp(200, &[("Set-Cookie", "NSC_TMAS=xyz; path=/")], "<html></html>"), "citrix-netscaler"),
            (resp(302, &[("Location", "https://vpn.example/dana-na/auth/url_default/welcome.cgi")], ""), "ivanti-connect-secure"),
            (resp(302, &[("Location", "/global-protect/login.esp")], ""), "paloalto-globalprotect"),
            (resp(200, &[], "<title>SonicWall - Virtual Office</title>"), "sonicwall-sma"),
            (resp(302, &[("Location", "https://mail.example/owa/"), ("X-OWA-Version", "15.2.1544.4")], ""), "exchange-owa"),
            (resp(200, &[], "<title>MOVEit Transfer Sign On</title>"), "moveit-transfer"),
            (resp(200, &[], "<title>VMware vSphere</title><a href=\"/ui/\">Launch vSphere Client (HTML5)</a>"), "vmware-vcenter"),
            (resp(302, &[("Location", "/tmui/login.jsp")], ""), "f5-bigip"),
            (resp(200, &[("X-Confluence-Request-Time", "1700000000000")], "<meta name=\"ajs-version-number\" content=\"7.13.0\">"), "atlassian-confluence"),
            (resp(200, &[], "<title>Zimbra Web Client Sign In</title>"), "zimbra"),
        ];
        for (r, id) in cases {
            let (p, evidence, _) = identify(&r).unwrap_or_else(|| panic!("{id} not recognised"));
            assert_eq!(p.id, id);
            assert!(!evidence.is_empty());
        }
        let (_, _, v) = identify(&resp(200, &[("X-OWA-Version", "15.2.1544.4")], "")).unwrap();
        assert_eq!(v.as_deref(), Some("15.2.1544.4"));
        let (_, _, v) = identify(&resp(200, &[], "<meta name=\"ajs-version-number\" content=\"7.13.0\">")).unwrap();
        assert_eq!(v.as_deref(), Some("7.13.0"));
        // Ordinary sites are nothing of the kind.
        for r in [resp(200, &[("Server", "nginx")], "<title>Adams County Elections</title>"), resp(301, &[("Location", "https://vote.example/")], "")] {
            assert!(identify(&r).is_none());
        }
    }

    #[test]
    fn every_product_has_entries_in_the_shipped_kev_catalog() {
        let db = VulnDb::builtin();
        for p in PRODUCTS {
            assert!(!db.kev_for(p.kev_vendors, p.kev_products).is_empty(), "{}: no KEV entry matches its vendor/product words", p.id);
        }
    }
}
