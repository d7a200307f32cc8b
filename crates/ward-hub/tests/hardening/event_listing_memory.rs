//! Medium 6: listing events and jurisdiction pages is bounded in bytes and paginated.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::json;
use ward_hub::model::Role;

use crate::common::*;

/// docs/api.md: a listing is at most 8 MiB, whatever `limit` asks for.
const PAGE_BYTES: usize = 8 * 1024 * 1024;
/// docs/api.md: a line longer than 64 KiB is stored shortened.
const STORED_EVENT_BYTES: usize = 64 * 1024;

fn big_alert(i: usize, payload: usize, signature: &str) -> String {
    json!({
        "timestamp": "2026-11-22T01:02:03.456789+0000", "event_type": "alert",
        "src_ip": "45.33.32.156", "src_port": 40000 + i, "dest_ip": "10.1.1.10", "dest_port": 443, "proto": "TCP",
        "alert": {"action": "allowed", "gid": 1, "signature_id": 2010935, "rev": 1, "signature": signature, "severity": 2},
        "payload": "A".repeat(payload),
        "seq": i,
    })
    .to_string()
}

crate::on_each_backend! {
    #[tokio::test]
    async fn listings_and_pages_stay_bounded() {
        let h = hub();
        let j = h.jurisdiction("Ohio", "OH");
        let s = h.sensor(j).await;
        h.user("ana", Role::Analyst, None);
        let ana = h.login("ana").await;
        // 160 alerts of 60 KB (stored whole: 9.6 MB together) ...
        let mut seq = 0;
        for chunk in (0..160).collect::<Vec<_>>().chunks(20) {
            let body: String = chunk.iter().map(|&i| big_alert(i, 60_000, "ET SCAN probe") + "\n").collect();
            seq += 1;
            let r = h.post_events((s.0, &s.1), seq, body, false).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            assert_eq!(r.json()["accepted"], 20);
        }
        // ... and 10 of about 1 MB, one with a 500 KB signature (stored shortened, with a flag).
        let body: String = (160..170)
            .map(|i| if i == 169 { big_alert(i, 400_000, &"S".repeat(500_000)) } else { big_alert(i, 1_000_000, "ET SCAN big") } + "\n")
            .collect();
        let r = h.post_events((s.0, &s.1), seq + 1, body, false).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["accepted"], 10, "{}", r.text());

        // The listing: pages of at most 8 MiB, linked by a cursor, every event exactly once.
        let mut seen = BTreeSet::new();
        let mut path = "/api/v1/events?limit=1000".to_string();
        let mut pages = 0;
        loop {
            let r = h.get(&path, Some(&ana)).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            assert!(r.body.len() <= PAGE_BYTES, "a page of {} bytes", r.body.len());
            pages += 1;
            for e in r.json().as_array().unwrap() {
                assert!(seen.insert(e["id"].as_i64().unwrap()), "event listed twice");
                let n = e["body"]["seq"].as_u64().unwrap();
                assert_eq!(e["truncated"], n >= 160, "{n}");
                if n >= 160 {
                    let stored = e["body"].to_string().len();
                    assert!(stored <= STORED_EVENT_BYTES, "a stored event of {stored} bytes");
                    let note = &e["body"]["ward_truncated"];
                    assert!(note["original_bytes"].as_u64().unwrap() > 900_000, "{note}");
                    let dropped = if n == 169 { json!(["payload", "alert.signature"]) } else { json!(["payload"]) };
                    assert_eq!(note["dropped"], dropped, "{note}");
                    // What the hub and a reader need is kept.
                    assert_eq!(e["body"]["src_ip"], "45.33.32.156");
                    assert_eq!(e["body"]["alert"]["signature_id"], 2010935);
                }
                assert!(e["signature"].as_str().unwrap().len() <= 1024, "signature kept whole");
            }
            match r.headers.get("ward-next-before") {
                Some(next) => {
                    let link = r.headers["link"].to_str().unwrap();
                    assert!(link.contains(&format!("before={}", next.to_str().unwrap())) && link.ends_with("rel=\"next\""), "{link}");
                    path = format!("/api/v1/events?limit=1000&before={}", next.to_str().unwrap());
                }
                None => break,
            }
            assert!(pages < 10, "pagination does not end");
        }
        assert_eq!(seen.len(), 170);
        assert!(pages >= 2, "9.6 MB of events fit one page");

        // The jurisdiction page: a bounded page of alerts, older ones one link away.
        let r = h.get(&format!("/jurisdictions/{j}"), Some(&ana)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.len() < 256 * 1024, "jurisdiction page of {} bytes", r.body.len());
        let page = r.text();
        let rows = |page: &str| page.matches("<td>45.33.32.156</td>").count();
        assert_eq!(rows(&page), 50, "one page of alerts");
        let older = page.split("href=\"").find(|s| s.contains("?before=")).map(|s| s.split('"').next().unwrap().to_string()).expect("a link to older alerts");
        let r = h.get(&older, Some(&ana)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.len() < 256 * 1024);
        assert_eq!(rows(&r.text()), 50);
    }
}
