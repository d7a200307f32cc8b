//! Low: /metrics needs an admin token or a separate listener.
//!
//! Metrics describe every jurisdiction's traffic. They are served to an analyst's session and
//! to a Prometheus scraper holding the token whose SHA-256 is `[metrics] token_sha256`.

use axum::http::StatusCode;
use ward_hub::model::Role;

use crate::common::*;

const SCRAPER_TOKEN: &str = "prometheus-scraper-token-0123456789abcdef";

crate::on_each_backend! {
    #[tokio::test]
    async fn metrics_need_an_analyst_or_the_scraper_token() {
        let h = hub_with(|c| c.metrics.token_sha256 = Some(ward_hub::auth::hash_token(SCRAPER_TOKEN).to_uppercase()));
        let oh = h.jurisdiction("Ohio", "OH");
        h.user("ana", Role::Analyst, None);
        h.user("oh-admin", Role::Admin, Some(oh));
        let (ana, admin) = (h.login("ana").await, h.login("oh-admin").await);

        let r = h.get("/metrics", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
        assert!(!r.text().contains("ward_hub_"), "{}", r.text());
        let r = h.get("/metrics", Some("not-the-token")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = h.get("/metrics", Some(&admin)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "a jurisdiction admin is not hub staff");
        for who in [ana.as_str(), SCRAPER_TOKEN] {
            let r = h.get("/metrics", Some(who)).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            assert!(r.text().contains("ward_hub_events_ingested_total"));
        }
    }

    #[tokio::test]
    async fn without_a_configured_token_only_analysts_read_metrics() {
        let h = hub();
        h.user("ana", Role::Analyst, None);
        let ana = h.login("ana").await;
        assert_eq!(h.get("/metrics", None).await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(h.get("/metrics", Some(SCRAPER_TOKEN)).await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(h.get("/metrics", Some(&ana)).await.status, StatusCode::OK);
    }
}

#[test]
fn a_malformed_token_hash_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.metrics.token_sha256 = Some("not-hex".into());
    let store = std::sync::Arc::new(ward_hub::store::sqlite::SqliteStore::open_dir(dir.path()).unwrap());
    let err = ward_hub::HubState::new(store, c).err().expect("a bad hash is refused");
    assert!(err.to_string().contains("token_sha256"), "{err}");
}
