//! TAXII 2.1 collections as a feed: `GET {api_root}/collections/{id}/objects/` with
//! `added_after` and full pagination (`more`/`next`, the next page asked for at once), `Accept:
//! application/taxii+json;version=2.1`. Each `indicator` object is one group (its id): the
//! observables of a pattern the hub reads ([`crate::share::stix::parse_pattern`]) become
//! indicators with the object's confidence, `valid_until` and TLP marking; a revoked or expired
//! version, or one whose pattern the hub does not read, empties the group (withdrawing what an
//! earlier version added). Other object types are not indicators and are passed over.
//!
//! The cursor: after each page the server's `X-TAXII-Date-Added-Last` (else the newest
//! `date_added` the envelope does not carry: the old cursor stays) becomes `added_after`, kept
//! with the page's indicators in one store transaction, so a poll that fails on page 7 resumes
//! after page 6.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{GroupUpdate, ItemRules, Skip, Skipped};
use crate::model::Millis;
use crate::share::stix::{Observable, PatternError, StixObject};

/// The TAXII 2.1 media type (requests' `Accept`, responses' `Content-Type`).
pub const MEDIA_TYPE: &str = "application/taxii+json;version=2.1";
/// Objects per page asked for (`limit`); the server may send fewer.
pub const PAGE_LIMIT: usize = 1000;
/// Objects read from one envelope at most (a server ignoring `limit` is cut off here).
pub const MAX_OBJECTS_PER_PAGE: usize = 100_000;
/// Pages fetched per poll at most (the rest on the next poll: the cursor moved).
pub const MAX_PAGES_PER_POLL: usize = 10_000;
/// Longest `next` token taken from a server.
pub const MAX_NEXT_BYTES: usize = 2048;

/// One page of a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub more: bool,
    pub next: Option<String>,
    pub objects: Vec<Value>,
}

/// Reads an envelope; an error says what is wrong with it (nothing from it is applied).
pub fn parse_envelope(body: &[u8]) -> Result<Envelope, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not a TAXII envelope: {e}"))?;
    let Value::Object(mut map) = v else { return Err("not a TAXII envelope: not a JSON object".into()) };
    let more = match map.get("more") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("TAXII envelope: \"more\" is not a boolean".into()),
    };
    let next = match map.get("next") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= MAX_NEXT_BYTES && !s.chars().any(char::is_control) => Some(s.clone()),
        Some(_) => return Err(format!("TAXII envelope: \"next\" is not a string of at most {MAX_NEXT_BYTES} bytes")),
    };
    let objects = match map.remove("objects") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) if a.len() <= MAX_OBJECTS_PER_PAGE => a,
        Some(Value::Array(_)) => return Err(format!("TAXII envelope holds more than {MAX_OBJECTS_PER_PAGE} objects")),
        Some(_) => return Err("TAXII envelope: \"objects\" is not an array".into()),
    };
    if more && next.is_none() {
        return Err("TAXII envelope says more but gives no next".into());
    }
    Ok(Envelope { more, next, objects })
}

/// The groups one page's objects replace (one per indicator id, its newest version), and what
/// was skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageItems {
    pub groups: Vec<GroupUpdate>,
    pub indicators: usize,
    pub skipped: Skipped,
}

/// Turns one page's objects into groups.
pub fn page_items(objects: Vec<Value>, rules: &ItemRules) -> PageItems {
    let mut out = PageItems::default();
    let mut newest: BTreeMap<String, (Millis, GroupUpdate)> = BTreeMap::new();
    for v in objects {
        if v.get("type").and_then(Value::as_str) != Some("indicator") {
            continue;
        }
        out.indicators += 1;
        let object = match StixObject::from_value(v) {
            Ok(o) => o,
            Err(_) => {
                out.skipped.add(Skip::Unreadable);
                continue;
            }
        };
        let version = object.version_ms().unwrap_or(0);
        let group = object_group(&object, rules, &mut out.skipped);
        match newest.get(&object.id) {
            Some((v, _)) if *v > version => {}
            _ => {
                newest.insert(object.id.clone(), (version, group));
            }
        }
    }
    out.groups = newest.into_values().map(|(_, g)| g).collect();
    out
}

/// What one indicator object stands for now.
pub fn object_group(o: &StixObject, rules: &ItemRules, skipped: &mut Skipped) -> GroupUpdate {
    let mut group = GroupUpdate { group: o.id.clone(), items: Vec::new() };
    if o.is_withdrawn(rules.now) {
        return group;
    }
    let observables = match o.observables() {
        Ok(obs) => obs,
        Err(PatternError::Unsupported(_) | PatternError::TooLarge) => {
            skipped.add(Skip::Pattern);
            return group;
        }
        Err(_) => {
            skipped.add(Skip::Unreadable);
            return group;
        }
    };
    let valid_until = o.valid_until.as_deref().and_then(crate::share::stix::parse_timestamp);
    for ob in observables {
        let declared = match &ob {
            Observable::Ip(_) => "ip",
            Observable::Net(..) => "net",
            Observable::Domain(_) => "domain",
            Observable::Url(_) => "url",
            Observable::Asn(_) => {
                skipped.add(Skip::Type);
                continue;
            }
        };
        let (_, value) = ob.kind_value();
        match rules.item(&o.id, &value, Some(declared), o.confidence, o.tlp(), valid_until) {
            Ok(item) => group.items.push(item),
            Err(why) => skipped.add(why),
        }
    }
    group
}

/// The objects URL of a collection: `{api_root}/collections/{id}/objects/`.
pub fn objects_url(api_root: &str, collection: &str) -> Result<reqwest::Url, String> {
    let root = if api_root.ends_with('/') { api_root.to_string() } else { format!("{api_root}/") };
    let base = reqwest::Url::parse(&root).map_err(|e| format!("bad TAXII api root: {e}"))?;
    base.join(&format!("collections/{collection}/objects/")).map_err(|e| format!("bad TAXII collection: {e}"))
}

/// The URL of one page: `added_after` (the cursor) and `next` (within one poll); `next`
/// requests repeat `added_after`, as servers check that the filter did not change.
pub fn page_url(objects: &reqwest::Url, added_after: Option<&str>, next: Option<&str>) -> reqwest::Url {
    let mut url = objects.clone();
    {
        let mut q = url.query_pairs_mut();
        q.clear();
        q.append_pair("limit", &PAGE_LIMIT.to_string());
        if let Some(a) = added_after {
            q.append_pair("added_after", a);
        }
        if let Some(n) = next {
            q.append_pair("next", n);
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use ward_model::tlp::Tlp;

    fn indicator(id: &str, pattern: &str, extra: Value) -> Value {
        let mut v = json!({
            "type": "indicator", "spec_version": "2.1", "id": id,
            "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
            "pattern": pattern, "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z",
        });
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        v
    }

    const A: &str = "indicator--6f1c2b0e-8d4a-4f7e-9b3c-5e2a7d10c4e9";
    const B: &str = "indicator--7f1c2b0e-8d4a-4f7e-9b3c-5e2a7d10c4e9";

    #[test]
    fn envelopes_are_checked() {
        assert!(parse_envelope(b"{\"more\":false}").unwrap().objects.is_empty());
        assert!(parse_envelope(b"[]").unwrap_err().contains("not a JSON object"));
        assert!(parse_envelope(b"{\"more\":true}").unwrap_err().contains("next"));
        assert!(parse_envelope(b"{\"objects\":{}}").unwrap_err().contains("array"));
        assert!(parse_envelope(b"{\"more\":\"yes\"}").is_err());
        assert!(parse_envelope(b"<html>").unwrap_err().starts_with("not a TAXII envelope"));
    }

    #[test]
    fn indicators_become_groups_and_revocations_empty_them() {
        let rules = ItemRules::permissive(crate::share::stix::parse_timestamp("2026-06-01T00:00:00Z").unwrap());
        let objs = vec![
            indicator(A, "[ipv4-addr:value = '185.220.101.7' OR domain-name:value = 'Bad.Example']", json!({"confidence": 80, "object_marking_refs": [Tlp::Green.stix_id()]})),
            indicator(B, "[file:hashes.MD5 = 'aa']", json!({})),
            json!({"type": "malware", "id": "malware--6f1c2b0e-8d4a-4f7e-9b3c-5e2a7d10c4e9"}),
            json!({"type": "indicator", "id": "nonsense"}),
        ];
        let page = page_items(objs, &rules);
        assert_eq!(page.indicators, 3);
        assert_eq!(page.groups.len(), 2);
        let a = page.groups.iter().find(|g| g.group == A).unwrap();
        assert_eq!(a.items.len(), 2);
        assert!(a.items.iter().all(|i| i.confidence == 80 && i.tlp == Tlp::Green));
        assert!(page.groups.iter().find(|g| g.group == B).unwrap().items.is_empty());
        assert_eq!(page.skipped.0.get(&Skip::Pattern), Some(&1));
        assert_eq!(page.skipped.0.get(&Skip::Unreadable), Some(&1));
        // A later version, revoked, in the same page wins.
        let revoked = indicator(A, "[ipv4-addr:value = '185.220.101.7']", json!({"modified": "2026-02-01T00:00:00.000Z", "revoked": true}));
        let old = indicator(A, "[ipv4-addr:value = '185.220.101.7']", json!({}));
        let page = page_items(vec![revoked, old], &rules);
        assert_eq!(page.groups.len(), 1);
        assert!(page.groups[0].items.is_empty());
        // Expired.
        let expired = indicator(A, "[ipv4-addr:value = '185.220.101.7']", json!({"valid_until": "2026-03-01T00:00:00Z"}));
        assert!(page_items(vec![expired], &rules).groups[0].items.is_empty());
    }

    #[test]
    fn urls() {
        let u = objects_url("http://127.0.0.1:5000/api1", "c-1").unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:5000/api1/collections/c-1/objects/");
        let p = page_url(&u, Some("2026-01-01T00:00:00.000000Z"), Some("abc"));
        assert_eq!(p.as_str(), "http://127.0.0.1:5000/api1/collections/c-1/objects/?limit=1000&added_after=2026-01-01T00%3A00%3A00.000000Z&next=abc");
    }
}
