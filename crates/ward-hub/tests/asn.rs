//! ASN actor keys with a MaxMind-format database built here, byte by byte, following the
//! MaxMind DB 2.0 spec: an IPv4 tree mapping 45.33.0.0/16 to AS64500.

mod common;

use axum::http::StatusCode;
use common::*;
use ward_hub::model::Role;

/// Control byte(s): type in the top three bits (0 = extended, then a type byte), size in the
/// low five (29 = one extra size byte holding `size - 29`).
fn ctrl(kind: u8, size: usize) -> Vec<u8> {
    assert!(size < 29 + 256);
    let (low, extra) = if size < 29 { (size as u8, None) } else { (29u8, Some((size - 29) as u8)) };
    let mut v = if kind <= 7 { vec![(kind << 5) | low] } else { vec![low, kind - 7] };
    v.extend(extra);
    v
}

fn string(s: &str) -> Vec<u8> {
    let mut v = ctrl(2, s.len());
    v.extend_from_slice(s.as_bytes());
    v
}

fn uint(kind: u8, n: u64) -> Vec<u8> {
    let bytes: Vec<u8> = n.to_be_bytes().iter().copied().skip_while(|&b| b == 0).collect();
    let mut v = ctrl(kind, bytes.len());
    v.extend(bytes);
    v
}

fn map(entries: Vec<(&str, Vec<u8>)>) -> Vec<u8> {
    let mut v = ctrl(7, entries.len());
    for (k, val) in entries {
        v.extend(string(k));
        v.extend(val);
    }
    v
}

/// An IPv4 database with one /16 network.
fn tiny_asn_mmdb(prefix: [u8; 2], asn: u32) -> Vec<u8> {
    let depth = 16usize;
    let node_count = depth as u32;
    let bits = u16::from_be_bytes(prefix);
    let mut out = Vec::new();
    for i in 0..depth {
        let bit = (bits >> (15 - i)) & 1;
        let next = if i + 1 < depth { i as u32 + 1 } else { node_count + 16 };
        let (left, right) = if bit == 0 { (next, node_count) } else { (node_count, next) };
        out.extend_from_slice(&left.to_be_bytes()[1..]);
        out.extend_from_slice(&right.to_be_bytes()[1..]);
    }
    out.extend_from_slice(&[0u8; 16]);
    out.extend(map(vec![("autonomous_system_number", uint(6, asn as u64)), ("autonomous_system_organization", string("Test Net"))]));
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    out.extend(map(vec![
        ("binary_format_major_version", uint(5, 2)),
        ("binary_format_minor_version", uint(5, 0)),
        ("build_epoch", uint(9, 1_700_000_000)),
        ("database_type", string("GeoLite2-ASN")),
        ("description", map(vec![("en", string("ward test"))])),
        ("ip_version", uint(5, 4)),
        ("languages", ctrl(11, 0)),
        ("node_count", uint(6, node_count as u64)),
        ("record_size", uint(5, 24)),
    ]));
    out
}

on_each_backend! {
    #[tokio::test]
    async fn one_asn_across_jurisdictions_opens_a_campaign() {
        let db_dir = tempfile::tempdir().unwrap();
        let path = db_dir.path().join("asn.mmdb");
        std::fs::write(&path, tiny_asn_mmdb([45, 33], 64500)).unwrap();
        let h = hub_with(|c| c.asn_db = Some(path.clone()));
        assert_eq!(h.state.asn_of("45.33.7.7".parse().unwrap()), Some(64500));
        assert_eq!(h.state.asn_of("8.8.8.8".parse().unwrap()), None);
        let a = h.jurisdiction("Ohio", "OH");
        let b = h.jurisdiction("Iowa", "IA");
        h.user("ana", Role::Analyst, None);
        let ana = h.login("ana").await;
        let sa = h.sensor(a).await;
        let sb = h.sensor(b).await;
        // Different addresses, different /24s, one autonomous system.
        assert_eq!(h.post_events((sa.0, &sa.1), 1, alert_line("45.33.1.1", "10.0.0.1", 1, "x"), false).await.status, StatusCode::OK);
        assert_eq!(h.post_events((sb.0, &sb.1), 1, alert_line("45.33.200.2", "10.0.0.2", 1, "x"), false).await.status, StatusCode::OK);
        let list = h.get("/api/v1/campaigns", Some(&ana)).await.json();
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
        assert!(list[0]["keys"].as_array().unwrap().contains(&serde_json::json!("asn:AS64500")), "{list}");
        assert_eq!(list[0]["jurisdictions"], 2);
    }
}

#[test]
fn a_missing_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(ward_hub::store::sqlite::SqliteStore::open_dir(dir.path()).unwrap());
    let mut c = config(dir.path());
    c.asn_db = Some(dir.path().join("nope.mmdb"));
    let err = ward_hub::HubState::new(store, c).err().unwrap().to_string();
    assert!(err.contains("cannot open ASN database"), "{err}");
}
