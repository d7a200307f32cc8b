//! Address and port sets of rule headers, and the rule variables (`$HOME_NET`, `$HTTP_PORTS`)
//! they refer to.
//!
//! A header field such as `[10.0.0.0/8,!10.1.2.3,$DNS_SERVERS]` is compiled into an exact set of
//! address ranges ([`IpSet`]): lists are a union of their positive members minus the union of
//! their negated members (all addresses when a list has no positive member), `!x` is the
//! complement. Sets are normalised to sorted, disjoint ranges, so a lookup is one binary search
//! whatever the size of the list. Ports work the same over `u16` ([`PortSet`]).
//!
//! Limits: variables nest at most [`MAX_VAR_DEPTH`] deep (Suricata rejects loops as well); a set
//! expression nests at most [`MAX_LIST_DEPTH`] brackets deep.

use std::collections::HashMap;
use std::net::IpAddr;

/// Variables refer to variables at most this deep; deeper means a loop (`A` = `$B`, `B` = `$A`).
pub const MAX_VAR_DEPTH: usize = 16;
/// Brackets nest at most this deep in one address or port expression; real rules use two.
pub const MAX_LIST_DEPTH: usize = 16;

/// Why an address or port field could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    #[error("unknown variable ${0}: define it with --set {0}=VALUE")]
    UnknownVar(String),
    #[error("variable ${0} refers to itself (loop or nesting deeper than 16)")]
    VarLoop(String),
    #[error("bad address {0:?}: expected an IPv4/IPv6 address, CIDR, variable, list or any")]
    BadAddress(String),
    #[error("bad port {0:?}: expected a number 0-65535, range a:b, variable, list or any")]
    BadPort(String),
    #[error("unbalanced brackets in {0:?}")]
    Brackets(String),
    #[error("list nests deeper than 16 in {0:?}")]
    TooDeep(String),
}

/// Rule variables: address groups and port groups, with Suricata's `suricata.yaml` defaults.
#[derive(Debug, Clone)]
pub struct Vars {
    addr: HashMap<String, String>,
    port: HashMap<String, String>,
}

impl Default for Vars {
    fn default() -> Self {
        let mut v = Vars { addr: HashMap::new(), port: HashMap::new() };
        v.addr.insert("HOME_NET".into(), "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]".into());
        v.addr.insert("EXTERNAL_NET".into(), "!$HOME_NET".into());
        for name in [
            "HTTP_SERVERS",
            "SMTP_SERVERS",
            "SQL_SERVERS",
            "DNS_SERVERS",
            "TELNET_SERVERS",
            "AIM_SERVERS",
            "DC_SERVERS",
            "DNP3_SERVER",
            "DNP3_CLIENT",
            "MODBUS_CLIENT",
            "MODBUS_SERVER",
            "ENIP_CLIENT",
            "ENIP_SERVER",
        ] {
            v.addr.insert(name.into(), "$HOME_NET".into());
        }
        for (name, value) in [
            ("HTTP_PORTS", "80"),
            ("SHELLCODE_PORTS", "!80"),
            ("ORACLE_PORTS", "1521"),
            ("SSH_PORTS", "22"),
            ("DNP3_PORTS", "20000"),
            ("MODBUS_PORTS", "502"),
            ("FILE_DATA_PORTS", "[$HTTP_PORTS,110,143]"),
            ("FTP_PORTS", "21"),
            ("GENEVE_PORTS", "6081"),
            ("VXLAN_PORTS", "4789"),
            ("TEREDO_PORTS", "3544"),
            ("SIP_PORTS", "[5060,5061]"),
        ] {
            v.port.insert(name.into(), value.into());
        }
        v
    }
}

impl Vars {
    /// Sets a variable. Names ending in `PORT` or `PORTS` are port groups, all others address
    /// groups (as in `suricata.yaml`). A leading `$` on the name is ignored. The value is checked
    /// when a rule uses it.
    pub fn set(&mut self, name: &str, value: &str) {
        let name = name.trim().trim_start_matches('$').to_string();
        let value = value.trim().trim_matches('"').to_string();
        if is_port_var(&name) {
            self.port.insert(name, value);
        } else {
            self.addr.insert(name, value);
        }
    }

    /// Parses `VAR=VALUE` as given to `--set`.
    pub fn set_assignment(&mut self, assignment: &str) -> Result<(), String> {
        match assignment.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => {
                self.set(name, value);
                Ok(())
            }
            _ => Err(format!("bad --set {assignment:?}: expected VAR=VALUE, e.g. HOME_NET=[10.0.0.0/8]")),
        }
    }

    /// The text of a variable, address or port group.
    pub fn get(&self, name: &str) -> Option<&str> {
        let name = name.trim_start_matches('$');
        self.addr.get(name).or_else(|| self.port.get(name)).map(String::as_str)
    }

    /// Compiles an address field of a rule header.
    pub fn ip_set(&self, text: &str) -> Result<IpSet, AddrError> {
        let expr = self.addr_expr(text, 0, 0)?;
        Ok(expr)
    }

    /// Compiles a port field of a rule header.
    pub fn port_set(&self, text: &str) -> Result<PortSet, AddrError> {
        self.port_expr(text, 0, 0)
    }

    fn addr_expr(&self, text: &str, var_depth: usize, list_depth: usize) -> Result<IpSet, AddrError> {
        let t = text.trim();
        if list_depth > MAX_LIST_DEPTH {
            return Err(AddrError::TooDeep(text.to_string()));
        }
        if let Some(rest) = t.strip_prefix('!') {
            return Ok(self.addr_expr(rest, var_depth, list_depth + 1)?.complement());
        }
        if t.starts_with('[') {
            if !t.ends_with(']') {
                return Err(AddrError::Brackets(text.to_string()));
            }
            let inner = &t[1..t.len() - 1];
            let mut pos = IpSet::empty();
            let mut neg = IpSet::empty();
            let mut any_pos = false;
            for item in split_list(inner).ok_or_else(|| AddrError::Brackets(text.to_string()))? {
                let item = item.trim();
                if item.is_empty() {
                    continue;
                }
                if let Some(rest) = item.strip_prefix('!') {
                    neg = neg.union(&self.addr_expr(rest, var_depth, list_depth + 1)?);
                } else {
                    any_pos = true;
                    pos = pos.union(&self.addr_expr(item, var_depth, list_depth + 1)?);
                }
            }
            let base = if any_pos { pos } else { IpSet::all() };
            return Ok(base.difference(&neg));
        }
        if let Some(name) = t.strip_prefix('$') {
            if var_depth >= MAX_VAR_DEPTH {
                return Err(AddrError::VarLoop(name.to_string()));
            }
            let value = self.addr.get(name).ok_or_else(|| AddrError::UnknownVar(name.to_string()))?;
            return self.addr_expr(value, var_depth + 1, list_depth);
        }
        if t.eq_ignore_ascii_case("any") {
            return Ok(IpSet::all());
        }
        parse_cidr(t).ok_or_else(|| AddrError::BadAddress(t.to_string()))
    }

    fn port_expr(&self, text: &str, var_depth: usize, list_depth: usize) -> Result<PortSet, AddrError> {
        let t = text.trim();
        if list_depth > MAX_LIST_DEPTH {
            return Err(AddrError::TooDeep(text.to_string()));
        }
        if let Some(rest) = t.strip_prefix('!') {
            return Ok(self.port_expr(rest, var_depth, list_depth + 1)?.complement());
        }
        if t.starts_with('[') {
            if !t.ends_with(']') {
                return Err(AddrError::Brackets(text.to_string()));
            }
            let inner = &t[1..t.len() - 1];
            let mut pos = PortSet::empty();
            let mut neg = PortSet::empty();
            let mut any_pos = false;
            for item in split_list(inner).ok_or_else(|| AddrError::Brackets(text.to_string()))? {
                let item = item.trim();
                if item.is_empty() {
                    continue;
                }
                if let Some(rest) = item.strip_prefix('!') {
                    neg = neg.union(&self.port_expr(rest, var_depth, list_depth + 1)?);
                } else {
                    any_pos = true;
                    pos = pos.union(&self.port_expr(item, var_depth, list_depth + 1)?);
                }
            }
            let base = if any_pos { pos } else { PortSet::all() };
            return Ok(base.difference(&neg));
        }
        if let Some(name) = t.strip_prefix('$') {
            if var_depth >= MAX_VAR_DEPTH {
                return Err(AddrError::VarLoop(name.to_string()));
            }
            let value = self.port.get(name).ok_or_else(|| AddrError::UnknownVar(name.to_string()))?;
            return self.port_expr(value, var_depth + 1, list_depth);
        }
        if t.eq_ignore_ascii_case("any") {
            return Ok(PortSet::all());
        }
        let bad = || AddrError::BadPort(t.to_string());
        let num = |s: &str| -> Result<u16, AddrError> { s.trim().parse::<u16>().map_err(|_| bad()) };
        if let Some((a, b)) = t.split_once(':') {
            let lo = if a.trim().is_empty() { 0 } else { num(a)? };
            let hi = if b.trim().is_empty() { u16::MAX } else { num(b)? };
            if lo > hi {
                return Err(bad());
            }
            return Ok(PortSet { ranges: vec![(lo, hi)] });
        }
        let p = num(t)?;
        Ok(PortSet { ranges: vec![(p, p)] })
    }
}

fn is_port_var(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.ends_with("_PORTS") || upper.ends_with("_PORT") || upper == "PORTS"
}

/// Splits a list body on commas at bracket depth 0; `None` on unbalanced brackets.
fn split_list(s: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
            }
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return None;
    }
    out.push(&s[start..]);
    Some(out)
}

/// Parses `1.2.3.4`, `1.2.3.0/24`, `1.2.3.0/255.255.255.0`, `2001:db8::/32` into a set.
pub fn parse_cidr(t: &str) -> Option<IpSet> {
    let (addr, prefix) = match t.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (t, None),
    };
    let ip: IpAddr = addr.trim().parse().ok()?;
    match ip {
        IpAddr::V4(v4) => {
            let bits = match prefix {
                None => 32,
                Some(p) => match p.trim().parse::<u32>() {
                    Ok(n) if n <= 32 => n,
                    Ok(_) => return None,
                    Err(_) => {
                        let mask: std::net::Ipv4Addr = p.trim().parse().ok()?;
                        u32::from(mask).leading_ones()
                    }
                },
            };
            let base = u32::from(v4);
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            let lo = base & mask;
            let hi = lo | !mask;
            Some(IpSet { v4: vec![(lo, hi)], v6: vec![] })
        }
        IpAddr::V6(v6) => {
            let bits = match prefix {
                None => 128,
                Some(p) => match p.trim().parse::<u32>() {
                    Ok(n) if n <= 128 => n,
                    _ => return None,
                },
            };
            let base = u128::from(v6);
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            let lo = base & mask;
            let hi = lo | !mask;
            Some(IpSet { v4: vec![], v6: vec![(lo, hi)] })
        }
    }
}

/// Sorted, disjoint, inclusive ranges over an integer domain.
trait RangeOps: Copy + Ord {
    const MIN: Self;
    const MAX: Self;
    fn inc(self) -> Self;
    fn dec(self) -> Self;
}
macro_rules! range_ops {
    ($t:ty) => {
        impl RangeOps for $t {
            const MIN: Self = <$t>::MIN;
            const MAX: Self = <$t>::MAX;
            fn inc(self) -> Self {
                self + 1
            }
            fn dec(self) -> Self {
                self - 1
            }
        }
    };
}
range_ops!(u16);
range_ops!(u32);
range_ops!(u128);

fn normalize<T: RangeOps>(mut v: Vec<(T, T)>) -> Vec<(T, T)> {
    v.sort();
    let mut out: Vec<(T, T)> = Vec::with_capacity(v.len());
    for (lo, hi) in v {
        if let Some(last) = out.last_mut() {
            if last.1 == T::MAX || lo <= last.1.inc() {
                if hi > last.1 {
                    last.1 = hi;
                }
                continue;
            }
        }
        out.push((lo, hi));
    }
    out
}

fn complement<T: RangeOps>(v: &[(T, T)]) -> Vec<(T, T)> {
    let mut out = Vec::with_capacity(v.len() + 1);
    let mut next = Some(T::MIN);
    for &(lo, hi) in v {
        if let Some(n) = next {
            if lo > n {
                out.push((n, lo.dec()));
            }
        }
        next = if hi == T::MAX { None } else { Some(hi.inc()) };
    }
    if let Some(n) = next {
        out.push((n, T::MAX));
    }
    out
}

fn contains<T: RangeOps>(v: &[(T, T)], x: T) -> bool {
    // Ranges are sorted and disjoint: find the last range starting at or before x.
    let idx = v.partition_point(|&(lo, _)| lo <= x);
    idx > 0 && v[idx - 1].1 >= x
}

/// A set of IPv4 and IPv6 addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IpSet {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl IpSet {
    pub fn empty() -> Self {
        IpSet::default()
    }
    pub fn all() -> Self {
        IpSet { v4: vec![(0, u32::MAX)], v6: vec![(0, u128::MAX)] }
    }
    pub fn is_all(&self) -> bool {
        self.v4 == [(0, u32::MAX)] && self.v6 == [(0, u128::MAX)]
    }
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
    pub fn union(&self, other: &IpSet) -> IpSet {
        let mut v4 = self.v4.clone();
        v4.extend_from_slice(&other.v4);
        let mut v6 = self.v6.clone();
        v6.extend_from_slice(&other.v6);
        IpSet { v4: normalize(v4), v6: normalize(v6) }
    }
    pub fn complement(&self) -> IpSet {
        IpSet { v4: complement(&self.v4), v6: complement(&self.v6) }
    }
    pub fn difference(&self, other: &IpSet) -> IpSet {
        if other.is_empty() {
            return self.clone();
        }
        // a \ b = !( !a ∪ b )
        self.complement().union(other).complement()
    }
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => contains(&self.v4, u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => contains(&self.v4, u32::from(v4)) || contains(&self.v6, u128::from(v6)),
                None => contains(&self.v6, u128::from(v6)),
            },
        }
    }
    /// The IPv4 ranges (inclusive), sorted and disjoint.
    pub fn v4_ranges(&self) -> &[(u32, u32)] {
        &self.v4
    }
    /// The IPv6 ranges (inclusive), sorted and disjoint.
    pub fn v6_ranges(&self) -> &[(u128, u128)] {
        &self.v6
    }
    /// The number of IPv4 addresses plus a saturated count of IPv6 addresses; used to pick the
    /// narrower side of an IP-only rule.
    pub fn size_hint(&self) -> u128 {
        let v4: u128 = self.v4.iter().map(|&(a, b)| (b - a) as u128 + 1).sum();
        let v6 = self.v6.iter().fold(0u128, |acc, &(a, b)| acc.saturating_add((b - a).saturating_add(1)));
        v4.saturating_add(v6)
    }
}

/// A set of ports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortSet {
    ranges: Vec<(u16, u16)>,
}

impl PortSet {
    pub fn empty() -> Self {
        PortSet::default()
    }
    pub fn all() -> Self {
        PortSet { ranges: vec![(0, u16::MAX)] }
    }
    pub fn is_all(&self) -> bool {
        self.ranges == [(0, u16::MAX)]
    }
    pub fn union(&self, other: &PortSet) -> PortSet {
        let mut v = self.ranges.clone();
        v.extend_from_slice(&other.ranges);
        PortSet { ranges: normalize(v) }
    }
    pub fn complement(&self) -> PortSet {
        PortSet { ranges: complement(&self.ranges) }
    }
    pub fn difference(&self, other: &PortSet) -> PortSet {
        if other.ranges.is_empty() {
            return self.clone();
        }
        self.complement().union(other).complement()
    }
    pub fn contains(&self, port: u16) -> bool {
        contains(&self.ranges, port)
    }
    /// The set as sorted, disjoint, inclusive ranges.
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn home_and_external_net_defaults() {
        let v = Vars::default();
        let home = v.ip_set("$HOME_NET").unwrap();
        let ext = v.ip_set("$EXTERNAL_NET").unwrap();
        for a in ["10.1.2.3", "192.168.1.1", "172.16.0.1", "172.31.255.255"] {
            assert!(home.contains(ip(a)), "{a}");
            assert!(!ext.contains(ip(a)), "{a}");
        }
        for a in ["8.8.8.8", "172.32.0.1", "2001:db8::1"] {
            assert!(!home.contains(ip(a)), "{a}");
            assert!(ext.contains(ip(a)), "{a}");
        }
    }

    #[test]
    fn lists_with_negation_and_nesting() {
        let v = Vars::default();
        let s = v.ip_set("[10.0.0.0/8,![10.1.0.0/16,!10.1.2.3]]").unwrap();
        assert!(s.contains(ip("10.2.0.1")));
        assert!(!s.contains(ip("10.1.0.1")));
        // ![a,!b] = !(a \ b): 10.1.2.3 is back in.
        assert!(s.contains(ip("10.1.2.3")));
        assert!(!s.contains(ip("11.0.0.1")));
        let only_neg = v.ip_set("[!1.2.3.4]").unwrap();
        assert!(only_neg.contains(ip("1.2.3.5")) && !only_neg.contains(ip("1.2.3.4")));
        let v6 = v.ip_set("[2001:db8::/32, 1.2.3.4]").unwrap();
        assert!(v6.contains(ip("2001:db8::55")) && !v6.contains(ip("2001:db9::1")));
        assert!(v.ip_set("1.2.3.0/255.255.255.0").unwrap().contains(ip("1.2.3.200")));
    }

    #[test]
    fn ports() {
        let mut v = Vars::default();
        let p = v.port_set("[80,8000:8100,!8080]").unwrap();
        assert!(p.contains(80) && p.contains(8000) && p.contains(8100) && !p.contains(8080) && !p.contains(81));
        assert!(v.port_set("1024:").unwrap().contains(65535));
        assert!(!v.port_set(":1023").unwrap().contains(1024));
        assert!(!v.port_set("$SHELLCODE_PORTS").unwrap().contains(80));
        let f = v.port_set("$FILE_DATA_PORTS").unwrap();
        assert!(f.contains(80) && f.contains(110) && f.contains(143) && !f.contains(443));
        v.set("HTTP_PORTS", "[80,8080]");
        assert!(v.port_set("$FILE_DATA_PORTS").unwrap().contains(8080));
        assert!(v.port_set("!any").unwrap().ranges.is_empty());
    }

    #[test]
    fn errors_are_typed() {
        let mut v = Vars::default();
        assert_eq!(v.ip_set("$NOPE"), Err(AddrError::UnknownVar("NOPE".into())));
        v.set("A", "$B");
        v.set("B", "$A");
        assert!(matches!(v.ip_set("$A"), Err(AddrError::VarLoop(_))));
        assert!(matches!(v.ip_set("1.2.3.4/33"), Err(AddrError::BadAddress(_))));
        assert!(matches!(v.port_set("70000"), Err(AddrError::BadPort(_))));
        assert!(matches!(v.port_set("[80"), Err(AddrError::Brackets(_))));
        assert!(v.set_assignment("HOME_NET=[1.2.3.0/24]").is_ok());
        assert!(v.ip_set("$HOME_NET").unwrap().contains(ip("1.2.3.9")));
        assert!(v.set_assignment("nonsense").is_err());
    }
}
