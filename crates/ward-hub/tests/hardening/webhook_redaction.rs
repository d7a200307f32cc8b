//! Low: tokens in webhook URLs never reach logs or viewers.
//!
//! A real hub delivers to a webhook whose URL carries a token in its query, on a loopback port
//! that refuses connections (so the failure path, whose error text used to carry the URL, runs).
//! Every place a target or an attempt is shown — API records, attempt details, contact lists,
//! dashboard pages — shows the URL without the token; the attempt detail, which is also the
//! WARN log line's `error` field, names a failure class only.

use axum::http::StatusCode;
use ward_hub::model::{Channel, Role};
use ward_hub::store::NotificationFilter;

use crate::ssrf_contacts::{first_attempts, running_hub, warn_contacts};

const TOKEN: &str = "TOKEN-SEKRET-4242";

crate::on_each_backend! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_webhook_token_is_shown_nowhere() {
        // A port nothing listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let target = format!("http://127.0.0.1:{port}/hooks/ward?token={TOKEN}&org=franklin");
        let (running, h) = running_hub(&["127.0.0.1/32"]).await;
        let franklin = warn_contacts(&h, &[(Channel::Webhook, target.clone())]).await;
        let attempts = first_attempts(&h, franklin, 1).await;
        let (n, list) = &attempts[0];
        assert_eq!(list[0].detail, "webhook connection refused", "{list:?}");
        assert_eq!(n.last_error.as_deref(), Some("webhook connection refused"));
        // Delivery still has the whole URL.
        assert_eq!(h.db(|s| s.contacts(Some(franklin))).unwrap()[0].target, target);

        h.user("ana", Role::Analyst, None);
        h.user("clerk", Role::Viewer, Some(franklin));
        let campaign = h.db(|s| s.campaigns(false)).unwrap()[0].id;
        let mut seen = Vec::new();
        for who in ["ana", "clerk"] {
            let token = h.login(who).await;
            for path in [
                "/api/v1/notifications".to_string(),
                format!("/api/v1/notifications/{}/attempts", n.id),
                format!("/api/v1/jurisdictions/{franklin}/contacts"),
                format!("/api/v1/campaigns/{campaign}"),
                "/notifications".to_string(),
                format!("/notifications/{}", n.id),
                format!("/jurisdictions/{franklin}"),
                format!("/campaigns/{campaign}"),
            ] {
                let r = h.get(&path, Some(&token)).await;
                assert_eq!(r.status, StatusCode::OK, "{who} {path}: {}", r.text());
                assert!(!r.text().contains(TOKEN), "{who} sees the token at {path}: {}", r.text());
                seen.push(r.text());
            }
        }
        let all = seen.join("\n");
        assert!(all.contains(&format!("http://127.0.0.1:{port}/hooks/ward?token=…&amp;org=…")) || all.contains(&format!("http://127.0.0.1:{port}/hooks/ward?token=…&org=…")), "{all}");
        let records = h.db(|s| s.notifications(&NotificationFilter { jurisdiction_id: Some(franklin), campaign_id: None, limit: 10, include_children: false })).unwrap();
        let json = serde_json::to_string(&records).unwrap();
        assert!(!json.contains(TOKEN) && json.contains("token=…"), "{json}");
        running.shutdown().await;
    }
}
