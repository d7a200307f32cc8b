//! Low: POST /api/v1/campaigns/{id} with a body that changes nothing is refused.

use axum::http::StatusCode;
use serde_json::json;
use ward_hub::model::Role;

use crate::common::*;

crate::on_each_backend! {
    #[tokio::test]
    async fn an_update_that_changes_nothing_is_a_400() {
        let h = hub();
        let a = h.jurisdiction("Ohio", "OH");
        let b = h.jurisdiction("Iowa", "IA");
        h.user("ana", Role::Analyst, None);
        let ana = h.login("ana").await;
        let (sa, sb) = (h.sensor(a).await, h.sensor(b).await);
        let line = alert_line("45.33.1.1", "10.0.0.1", 1, "x");
        h.post_events((sa.0, &sa.1), 1, line.clone(), false).await;
        h.post_events((sb.0, &sb.1), 1, line, false).await;
        let list = h.get("/api/v1/campaigns", Some(&ana)).await.json();
        let id = list[0]["id"].as_i64().expect("a campaign");
        let path = format!("/api/v1/campaigns/{id}");
        let before = h.get(&path, Some(&ana)).await.json();

        for body in [json!([]), json!({}), json!({"close": false}), json!(null), json!("close"), json!([{"close": true}])] {
            let r = h.post_json(&path, Some(&ana), body.clone()).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text());
            let msg = r.json()["error"].as_str().unwrap_or_default().to_string();
            assert!(msg.contains("nothing to change") || msg.contains("JSON object"), "{body}: {msg}");
        }
        // A misspelt field is not silently ignored.
        let r = h.post_json(&path, Some(&ana), json!({"nmae": "typo"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
        assert!(r.json()["error"].as_str().unwrap().contains("nmae"), "{}", r.text());
        // Nothing changed, and a real change still works.
        let after = h.get(&path, Some(&ana)).await.json();
        assert_eq!(before["timeline"], after["timeline"]);
        let r = h.post_json(&path, Some(&ana), json!({"annotation": "same tooling"})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["campaign"]["annotation"], "same tooling");
    }
}
