//! Low: creating a user does not reveal other jurisdictions' usernames.
//!
//! User names are one namespace (a login is a name and a password), so a jurisdiction admin
//! who picks a taken name cannot have it. What the answer may not do is say more: whose name
//! it is, where, or let the admin test names by the hundred.

use axum::http::StatusCode;
use serde_json::json;
use ward_hub::model::Role;

use crate::common::*;

crate::on_each_backend! {
    #[tokio::test]
    async fn a_taken_name_says_only_that_it_is_taken() {
        let h = hub();
        let oh = h.jurisdiction("Ohio", "OH");
        let pa = h.jurisdiction("Pennsylvania", "PA");
        h.user("ana", Role::Analyst, None);
        h.user("oh-admin", Role::Admin, Some(oh));
        h.user("oh-viewer", Role::Viewer, Some(oh));
        h.user("pa-clerk", Role::Viewer, Some(pa));
        let admin = h.login("oh-admin").await;
        let create = |name: &str| json!({"username": name, "password": PASSWORD, "role": "viewer", "jurisdiction_id": oh});

        // A name in another jurisdiction, in one's own, and an analyst's: one and the same answer.
        let mut answers = Vec::new();
        for taken in ["pa-clerk", "oh-viewer", "ana"] {
            let r = h.post_json("/api/v1/users", Some(&admin), create(taken)).await;
            assert_eq!(r.status, StatusCode::CONFLICT, "{taken}: {}", r.text());
            assert!(!r.text().contains(taken), "the answer names the user: {}", r.text());
            assert!(!r.text().to_lowercase().contains("unique"), "the answer leaks the schema: {}", r.text());
            answers.push(r.text());
        }
        assert!(answers.windows(2).all(|w| w[0] == w[1]), "answers differ: {answers:?}");
        assert!(answers[0].contains("not available"), "{}", answers[0]);

        // A free name still works.
        let r = h.post_json("/api/v1/users", Some(&admin), create("oh-clerk")).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

        // Testing names one after another is throttled: after a short burst, 429.
        let mut throttled_at = None;
        for i in 0..30 {
            let r = h.post_json("/api/v1/users", Some(&admin), create("pa-clerk")).await;
            match r.status {
                StatusCode::CONFLICT => {}
                StatusCode::TOO_MANY_REQUESTS => {
                    throttled_at = Some(i);
                    break;
                }
                other => panic!("unexpected {other}: {}", r.text()),
            }
        }
        let at = throttled_at.expect("probing usernames is never throttled");
        assert!(at <= 10, "throttled only after {at} more probes");
        // The throttle is per creator: an analyst creating users is not affected.
        let ana = h.login("ana").await;
        let r = h.post_json("/api/v1/users", Some(&ana), create("oh-second-clerk")).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
}
