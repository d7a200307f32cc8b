//! Low: deeply nested lines and out-of-range numbers are refused, not stored as null.

use axum::http::StatusCode;

use crate::common::*;

crate::on_each_backend! {
    #[tokio::test]
    async fn deep_nesting_and_huge_numbers_are_rejected_by_line() {
        let h = hub();
        let j = h.jurisdiction("Ohio", "OH");
        let (sid, cred) = h.sensor(j).await;
        let deep = format!("{{\"event_type\":\"custom\",\"x\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
        let deep_objects = format!("{{\"event_type\":\"custom\",\"x\":{}1{}}}", "{\"a\":".repeat(200), "}".repeat(200));
        let lines = [
            r#"{"event_type":"dns","dns":{"rrname":"fine.example"}}"#.to_string(),
            deep,
            r#"{"event_type":"flow","flow":{"bytes_toserver":1e400}}"#.to_string(),
            r#"{"event_type":"alert","alert":{"signature_id":1,"metadata":{"x":[-1e999]}}}"#.to_string(),
            deep_objects,
            r#"{"event_type":"custom","s":"\ud800"}"#.to_string(),
            // Within the limits: stored.
            format!("{{\"event_type\":\"custom\",\"x\":{}1{},\"n\":1.7976931348623157e308}}", "[".repeat(60), "]".repeat(60)),
        ];
        let r = h.post_events((sid, &cred), 1, lines.join("\n"), false).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let v = r.json();
        assert_eq!(v["accepted"], 2, "{v}");
        assert_eq!(v["rejected_total"], 5, "{v}");
        let reasons: Vec<(u64, String)> = v["rejected"].as_array().unwrap().iter().map(|r| (r["line"].as_u64().unwrap(), r["reason"].as_str().unwrap().to_string())).collect();
        assert_eq!(reasons.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 3, 4, 5, 6], "{reasons:?}");
        assert!(reasons[0].1.contains("nested deeper than 64 levels"), "{reasons:?}");
        assert!(reasons[1].1.contains("beyond a 64-bit float"), "{reasons:?}");
        assert!(reasons[2].1.contains("beyond a 64-bit float"), "{reasons:?}");
        assert!(reasons[3].1.contains("nested deeper than 64 levels"), "{reasons:?}");
        // What is stored reads back as what was sent, never as null.
        for e in h.db(|s| s.events(Some(j), None, 10)).unwrap() {
            assert!(e.body.is_object(), "stored as {}", e.body);
            assert!(e.body.get("event_type").is_some(), "{}", e.body);
        }
    }
}
