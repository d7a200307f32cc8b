//! MISP feeds, in the MISP feed format (what `misp-feed` generators and MISP's own "feed
//! export" write): `manifest.json` maps each event's uuid to its summary (`info`, `timestamp`,
//! tags, …), and `{uuid}.json` holds the event (`{"Event": {…, "Attribute": […], "Object":
//! [{"Attribute": […]}]}}`).
//!
//! A poll reads the manifest, fetches only events whose `timestamp` changed since the last
//! poll (or that are new), and replaces each such event's group; an event gone from the
//! manifest empties its group. Attributes of type `ip-dst`, `ip-src` (and their `|port`
//! forms), `domain`, `hostname` and `url` (its host, when the feed allows `url`) become
//! indicators when `to_ids` is true; `to_ids` false or `deleted` true leaves them out (and so
//! withdraws them when an earlier version had them). TLP comes from the attribute's tags, else
//! the event's (`tlp:amber`, `tlp:red`, …), else the feed's default. MISP has no per-attribute
//! confidence: the feed's default confidence applies.
//!
//! Event uuids are checked before they become a path (hex digits and dashes only), so a
//! manifest cannot send the hub elsewhere on the server (`../`).

use std::collections::BTreeMap;

use serde_json::Value;
use ward_model::tlp::Tlp;

use super::{GroupUpdate, ItemRules, Skip, Skipped};

/// Events one manifest may list.
pub const MAX_EVENTS: usize = 200_000;
/// Attributes read per event at most (attributes of objects included).
pub const MAX_ATTRIBUTES: usize = 500_000;
/// Events fetched per store transaction.
pub const EVENTS_PER_APPLY: usize = 100;

/// Reads `manifest.json`: event uuid → timestamp.
pub fn parse_manifest(body: &[u8]) -> Result<BTreeMap<String, i64>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not a MISP manifest: {e}"))?;
    let Value::Object(map) = v else { return Err("not a MISP manifest: not a JSON object of events".into()) };
    if map.len() > MAX_EVENTS {
        return Err(format!("MISP manifest lists more than {MAX_EVENTS} events"));
    }
    let mut out = BTreeMap::new();
    for (uuid, summary) in map {
        if !valid_uuid(&uuid) {
            return Err(format!("MISP manifest: {:?} is not an event uuid", uuid.chars().take(60).collect::<String>()));
        }
        let ts = summary.get("timestamp").and_then(number).ok_or_else(|| format!("MISP manifest: event {uuid} has no timestamp"))?;
        out.insert(uuid.to_ascii_lowercase(), ts);
    }
    Ok(out)
}

/// A uuid as MISP writes it (36 characters, hex and dashes).
pub fn valid_uuid(s: &str) -> bool {
    s.len() == 36 && s.bytes().enumerate().all(|(i, b)| if matches!(i, 8 | 13 | 18 | 23) { b == b'-' } else { b.is_ascii_hexdigit() })
}

/// A MISP number: an integer or a string of one.
fn number(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn boolean(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => Some(n.as_i64() != Some(0)),
        Value::String(s) => match s.trim() {
            "1" | "true" | "True" => Some(true),
            "0" | "false" | "False" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// The narrowest TLP among a `Tag` list.
fn tags_tlp(tags: Option<&Value>) -> Option<Tlp> {
    tags?.as_array()?.iter().filter_map(|t| t.get("name")?.as_str()).filter(|n| n.trim().to_ascii_lowercase().starts_with("tlp:")).filter_map(|n| n.parse::<Tlp>().ok()).max()
}

/// Reads one event file into its group (`uuid` is the manifest's: the file must be that event).
pub fn parse_event(uuid: &str, body: &[u8], rules: &ItemRules) -> Result<(GroupUpdate, Skipped), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("MISP event {uuid}: not JSON: {e}"))?;
    let event = v.get("Event").ok_or_else(|| format!("MISP event {uuid}: no \"Event\" object"))?;
    if let Some(found) = event.get("uuid").and_then(Value::as_str) {
        if !found.eq_ignore_ascii_case(uuid) {
            return Err(format!("MISP event {uuid}: the file holds event {}", found.chars().take(40).collect::<String>()));
        }
    }
    let event_tlp = tags_tlp(event.get("Tag"));
    let mut attributes: Vec<&Value> = Vec::new();
    if let Some(a) = event.get("Attribute").and_then(Value::as_array) {
        attributes.extend(a);
    }
    if let Some(objects) = event.get("Object").and_then(Value::as_array) {
        for o in objects {
            if let Some(a) = o.get("Attribute").and_then(Value::as_array) {
                attributes.extend(a);
            }
        }
    }
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(format!("MISP event {uuid} has more than {MAX_ATTRIBUTES} attributes"));
    }
    let mut group = GroupUpdate { group: uuid.to_string(), items: Vec::new() };
    let mut skipped = Skipped::default();
    for (n, a) in attributes.into_iter().enumerate() {
        let Some(ty) = a.get("type").and_then(Value::as_str) else {
            skipped.add(Skip::Unreadable);
            continue;
        };
        let Some(raw) = a.get("value").and_then(Value::as_str) else {
            skipped.add(Skip::Unreadable);
            continue;
        };
        let (declared, value) = match ty {
            "ip-dst" | "ip-src" => ("ip", raw),
            "ip-dst|port" | "ip-src|port" => ("ip", raw.split('|').next().unwrap_or("")),
            "domain" | "hostname" => ("domain", raw),
            "url" | "uri" | "link" => ("url", raw),
            _ => continue, // hashes, e-mail addresses, …: not for a packet sensor
        };
        if boolean(a.get("deleted")) == Some(true) {
            continue;
        }
        if boolean(a.get("to_ids")) != Some(true) {
            skipped.add(Skip::NotForIds);
            continue;
        }
        let source = a.get("uuid").and_then(Value::as_str).filter(|u| valid_uuid(u)).map(str::to_ascii_lowercase).unwrap_or_else(|| format!("#{n}"));
        let tlp = tags_tlp(a.get("Tag")).or(event_tlp);
        // An address attribute must be an address; anything else as its declared type.
        let declared = if declared == "ip" && !value.contains('/') && value.trim().parse::<std::net::IpAddr>().is_err() {
            skipped.add(Skip::Unreadable);
            continue;
        } else {
            declared
        };
        match rules.item(&source, value, Some(declared), None, tlp, None) {
            Ok(item) => group.items.push(item),
            Err(why) => skipped.add(why),
        }
    }
    Ok((group, skipped))
}

/// The URL of a file in the feed's directory.
pub fn file_url(base: &str, name: &str) -> Result<reqwest::Url, String> {
    let root = if base.ends_with('/') { base.to_string() } else { format!("{base}/") };
    reqwest::Url::parse(&root).and_then(|u| u.join(name)).map_err(|e| format!("bad MISP feed url: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const E: &str = "5f3c1a2b-0000-4000-8000-00000000000a";

    #[test]
    fn manifests_are_checked() {
        let m = parse_manifest(json!({E: {"info": "x", "timestamp": "1700000000"}}).to_string().as_bytes()).unwrap();
        assert_eq!(m.get(E), Some(&1_700_000_000));
        assert!(parse_manifest(json!({"../../etc/passwd": {"timestamp": 1}}).to_string().as_bytes()).unwrap_err().contains("not an event uuid"));
        assert!(parse_manifest(json!({E: {"info": "x"}}).to_string().as_bytes()).unwrap_err().contains("timestamp"));
        assert!(parse_manifest(b"[1,2]").is_err());
        assert!(parse_manifest(b"{").is_err());
    }

    #[test]
    fn events_honour_types_to_ids_and_tags() {
        let ev = json!({"Event": {"uuid": E, "Tag": [{"name": "tlp:green"}], "Attribute": [
            {"uuid": "5f3c1a2b-0000-4000-8000-000000000001", "type": "ip-dst", "value": "185.220.101.7", "to_ids": true},
            {"uuid": "5f3c1a2b-0000-4000-8000-000000000002", "type": "ip-src|port", "value": "185.220.101.8|443", "to_ids": "1"},
            {"uuid": "5f3c1a2b-0000-4000-8000-000000000003", "type": "domain", "value": "bad.example", "to_ids": false},
            {"uuid": "5f3c1a2b-0000-4000-8000-000000000004", "type": "hostname", "value": "c2.bad.example", "to_ids": true, "Tag": [{"name": "tlp:red"}]},
            {"uuid": "5f3c1a2b-0000-4000-8000-000000000005", "type": "md5", "value": "aa", "to_ids": true},
            {"uuid": "5f3c1a2b-0000-4000-8000-000000000006", "type": "url", "value": "http://x.example/a", "to_ids": true},
            {"uuid": "5f3c1a2b-0000-4000-8000-000000000007", "type": "ip-dst", "value": "bad.example", "to_ids": true},
            {"uuid": "5f3c1a2b-0000-4000-8000-000000000008", "type": "ip-dst", "value": "185.220.101.9", "to_ids": true, "deleted": true}
        ], "Object": [{"Attribute": [{"type": "domain", "value": "obj.bad.example", "to_ids": true}]}]}});
        let mut rules = ItemRules::permissive(0);
        rules.types = vec!["ip".into(), "domain".into()];
        let (g, skipped) = parse_event(E, ev.to_string().as_bytes(), &rules).unwrap();
        let got: Vec<(&str, Tlp)> = g.items.iter().map(|i| (i.value.as_str(), i.tlp)).collect();
        assert_eq!(got, [("185.220.101.7", Tlp::Green), ("185.220.101.8", Tlp::Green), ("c2.bad.example", Tlp::Red), ("obj.bad.example", Tlp::Green)]);
        assert_eq!(skipped.0.get(&Skip::NotForIds), Some(&1));
        assert_eq!(skipped.0.get(&Skip::Type), Some(&1), "url not allowed");
        assert_eq!(skipped.0.get(&Skip::Unreadable), Some(&1));
        assert!(parse_event("5f3c1a2b-0000-4000-8000-00000000000b", ev.to_string().as_bytes(), &rules).unwrap_err().contains("holds event"));
        assert!(parse_event(E, b"{}", &rules).is_err());
    }
}
