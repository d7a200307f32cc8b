//! Turning a rule [`Match`] into the EVE `alert` object, as Suricata writes it: `action` is
//! `allowed` (ward is passive; `blocked` is never written), `metadata` maps each key to the list
//! of its values, `source`/`target` are filled when the rule has a `target` keyword.

use std::net::IpAddr;

use ward_model::eve::{format_ip, Alert, AlertEndpoint};

use crate::engine::Match;
use crate::input::PacketInput;
use crate::rule::{RuleInfo, Target};

/// Builds the metadata object: `{"key": ["v1", "v2"], ...}`.
pub fn metadata_map(pairs: &[(String, String)]) -> Option<serde_json::Map<String, serde_json::Value>> {
    if pairs.is_empty() {
        return None;
    }
    let mut m = serde_json::Map::new();
    for (k, v) in pairs {
        let entry = m.entry(k.clone()).or_insert_with(|| serde_json::Value::Array(vec![]));
        if let serde_json::Value::Array(a) = entry {
            a.push(serde_json::Value::String(v.clone()));
        }
    }
    Some(m)
}

fn endpoint(ip: IpAddr, port: u16, ip_proto: u8) -> AlertEndpoint {
    let has_port = matches!(ip_proto, 6 | 17 | 132);
    AlertEndpoint { ip: format_ip(ip), port: has_port.then_some(port) }
}

/// The EVE alert object of a rule's info for a packet's endpoints.
pub fn rule_alert(info: &RuleInfo, pkt: &PacketInput<'_>) -> Alert {
    let (source, target) = match info.target {
        None => (None, None),
        Some(t) => {
            let src = endpoint(pkt.src_ip, pkt.src_port, pkt.ip_proto);
            let dst = endpoint(pkt.dst_ip, pkt.dst_port, pkt.ip_proto);
            match t {
                Target::DestIp => (Some(src), Some(dst)),
                Target::SrcIp => (Some(dst), Some(src)),
            }
        }
    };
    Alert {
        action: "allowed".into(),
        gid: info.gid,
        signature_id: info.sid,
        rev: info.rev,
        signature: info.msg.clone(),
        category: info.category.clone(),
        severity: info.priority,
        metadata: metadata_map(&info.metadata),
        source,
        target,
        references: info.references.clone(),
        context: None,
    }
}

impl Match {
    /// The EVE alert object for this match on `pkt`.
    pub fn to_eve_alert(&self, pkt: &PacketInput<'_>) -> Alert {
        rule_alert(&self.info, pkt)
    }
}
