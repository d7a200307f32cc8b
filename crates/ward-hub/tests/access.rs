//! Access control: every API endpoint and page, called with another jurisdiction's
//! credentials, reveals nothing of the other jurisdiction; a jurisdiction learns about a shared
//! campaign only what hit it, a count of the others and what to block.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use serde_json::json;
use ward_hub::model::{Channel, NewContact, Role};

struct World {
    h: Hub,
    oh: i64,
    pa: i64,
    campaign: i64,
    ana: String,
    oh_admin: String,
    oh_viewer: String,
    pa_admin: String,
    pa_sensor: (i64, String),
    oh_notification: i64,
}

/// Secrets of Ohio that Pennsylvania must never see.
const OH_SECRETS: [&str; 4] = ["Ohio", "OH-ONLY-SIGNATURE", "10.77.1.10", "oh-it@ohio.example.gov"];

async fn world() -> World {
    let h = hub();
    let oh = h.jurisdiction("Ohio", "OH");
    let pa = h.jurisdiction("Pennsylvania", "PA");
    h.user("ana", Role::Analyst, None);
    h.user("oh-admin", Role::Admin, Some(oh));
    h.user("oh-viewer", Role::Viewer, Some(oh));
    h.user("pa-admin", Role::Admin, Some(pa));
    let now = ward_hub::model::now_ms();
    h.db(|s| s.create_contact(oh, &NewContact { channel: Channel::Email, target: "oh-it@ohio.example.gov".into(), secret: None }, now)).unwrap();
    h.db(|s| s.create_contact(pa, &NewContact { channel: Channel::Email, target: "pa-it@pa.example.gov".into(), secret: None }, now)).unwrap();
    let oh_sensor = h.sensor(oh).await;
    let pa_sensor = h.sensor(pa).await;
    let r = h.post_events((oh_sensor.0, &oh_sensor.1), 1, alert_line("45.33.32.156", "10.77.1.10", 1, "OH-ONLY-SIGNATURE"), false).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h.post_events((pa_sensor.0, &pa_sensor.1), 1, alert_line("45.33.32.156", "10.88.2.20", 2, "PA signature"), false).await;
    assert_eq!(r.status, StatusCode::OK);
    let campaigns = h.db(|s| s.campaigns(false)).unwrap();
    assert_eq!(campaigns.len(), 1);
    let oh_notification = h.db(|s| s.notifications(&ward_hub::store::NotificationFilter { jurisdiction_id: Some(oh), campaign_id: None, limit: 10, include_children: false })).unwrap()[0].id;
    World {
        ana: h.login("ana").await,
        oh_admin: h.login("oh-admin").await,
        oh_viewer: h.login("oh-viewer").await,
        pa_admin: h.login("pa-admin").await,
        campaign: campaigns[0].id,
        h,
        oh,
        pa,
        pa_sensor,
        oh_notification,
    }
}

fn assert_clean(what: &str, body: &str) {
    for secret in OH_SECRETS {
        assert!(!body.contains(secret), "{what} leaks {secret:?}: {body}");
    }
}

on_each_backend! {
    #[tokio::test]
    async fn another_jurisdiction_sees_nothing_of_ohio_in_the_api() {
        let w = world().await;
        let (h, oh, c, t) = (&w.h, w.oh, w.campaign, w.pa_admin.as_str());
        let hidden = [
            format!("/api/v1/jurisdictions/{oh}"),
            format!("/api/v1/jurisdictions/{oh}/sensors"),
            format!("/api/v1/jurisdictions/{oh}/contacts"),
            format!("/api/v1/events?jurisdiction_id={oh}"),
            format!("/api/v1/notifications?jurisdiction_id={oh}"),
            format!("/api/v1/notifications/{}/attempts", w.oh_notification),
        ];
        for path in &hidden {
            let r = h.get(path, Some(t)).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "GET {path}: {}", r.text());
        }
        for (path, body) in [
            (format!("/api/v1/jurisdictions/{oh}/sensor-tokens"), json!({})),
            (format!("/api/v1/jurisdictions/{oh}/contacts"), json!({"channel": "email", "target": "evil@example.com"})),
            ("/api/v1/users".to_string(), json!({"username": "mole", "password": PASSWORD, "role": "viewer", "jurisdiction_id": oh})),
        ] {
            let r = h.post_json(&path, Some(t), body).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "POST {path}: {}", r.text());
        }
        for (path, body) in [
            ("/api/v1/jurisdictions".to_string(), json!({"name": "X", "kind": "state", "state": "XX"})),
            ("/api/v1/users".to_string(), json!({"username": "boss", "password": PASSWORD, "role": "analyst"})),
            (format!("/api/v1/campaigns/{c}"), json!({"close": true})),
        ] {
            let r = h.post_json(&path, Some(t), body).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "POST {path}: {}", r.text());
        }
        // Lists are scoped and clean.
        for path in ["/api/v1/jurisdictions", "/api/v1/users", "/api/v1/events", "/api/v1/notifications", "/api/v1/campaigns", "/api/v1/me"] {
            let r = h.get(path, Some(t)).await;
            assert_eq!(r.status, StatusCode::OK, "GET {path}");
            assert_clean(path, &r.text());
        }
        // The campaign as Pennsylvania sees it: its own sightings, a count, what to block.
        let r = h.get(&format!("/api/v1/campaigns/{c}"), Some(t)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_clean("campaign view", &r.text());
        let v = r.json();
        assert_eq!(v["other_jurisdictions"], 1);
        assert_eq!(v["sightings"][0]["local_ip"], "10.88.2.20");
        assert_eq!(v["sightings"][0]["remote_ip"], "45.33.32.156");
        assert!(v["block"].as_array().unwrap().contains(&json!("45.33.32.156")));
        assert!(v.get("affected").is_none() && v.get("timeline").is_none());
        // The analyst sees both.
        let r = h.get(&format!("/api/v1/campaigns/{c}"), Some(&w.ana)).await;
        assert!(r.text().contains("Ohio") && r.text().contains("Pennsylvania"));
        // Indicators name no jurisdiction.
        let r = h.get("/api/v1/indicators?since=0", Some(&w.pa_sensor.1)).await;
        assert_clean("indicators", &r.text());
    }

    #[tokio::test]
    async fn roles_inside_a_jurisdiction() {
        let w = world().await;
        let (h, oh) = (&w.h, w.oh);
        let r = h.post_json(&format!("/api/v1/jurisdictions/{oh}/contacts"), Some(&w.oh_viewer), json!({"channel": "email", "target": "x@ohio.example.gov"})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = h.post_json(&format!("/api/v1/jurisdictions/{oh}/sensor-tokens"), Some(&w.oh_viewer), json!({})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = h.post_json(&format!("/api/v1/jurisdictions/{oh}/contacts"), Some(&w.oh_admin), json!({"channel": "syslog", "target": "siem.ohio.example:6514"})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let r = h.post_json(&format!("/api/v1/jurisdictions/{oh}/sensor-tokens"), Some(&w.oh_admin), json!({})).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let r = h.get(&format!("/api/v1/jurisdictions/{}", w.pa), Some(&w.oh_viewer)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn credentials_do_not_cross_roles() {
        let w = world().await;
        let h = &w.h;
        // A sensor credential is not a user session, and nothing works without credentials.
        for path in ["/api/v1/campaigns", "/api/v1/jurisdictions", "/api/v1/events", "/api/v1/notifications", "/api/v1/users", "/api/v1/me"] {
            assert_eq!(h.get(path, Some(&w.pa_sensor.1)).await.status, StatusCode::UNAUTHORIZED, "{path}");
            assert_eq!(h.get(path, None).await.status, StatusCode::UNAUTHORIZED, "{path}");
        }
        assert_eq!(h.get("/api/v1/indicators", None).await.status, StatusCode::UNAUTHORIZED);
        // A user session cannot post events.
        let r = h.post_events((1, &w.pa_admin), 9, "{\"event_type\":\"dns\"}", false).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        // Wrong password.
        let r = h.post_json("/api/v1/login", None, json!({"username": "pa-admin", "password": "wrong password!!"})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn cookie_sessions_need_csrf_and_pages_are_scoped() {
        let w = world().await;
        let (h, oh, c) = (&w.h, w.oh, w.campaign);
        // Login via API sets a strict cookie.
        let r = h.post_json("/api/v1/login", None, json!({"username": "ana", "password": PASSWORD})).await;
        let cookie = r.headers["set-cookie"].to_str().unwrap().to_string();
        for attr in ["Secure", "HttpOnly", "SameSite=Strict"] {
            assert!(cookie.contains(attr), "{cookie}");
        }
        let csrf = r.json()["csrf"].as_str().unwrap().to_string();
        // Cookie-authenticated API mutation: refused without the CSRF header, accepted with it.
        let body = json!({"annotation": "checked"}).to_string();
        let req = cookie_req("POST", &format!("/api/v1/campaigns/{c}"), &w.ana).header("content-type", "application/json").body(Body::from(body.clone())).unwrap();
        assert_eq!(h.send(req).await.status, StatusCode::FORBIDDEN);
        let ana_session = r.json()["token"].as_str().unwrap().to_string();
        let req = cookie_req("POST", &format!("/api/v1/campaigns/{c}"), &ana_session)
            .header("content-type", "application/json")
            .header("x-csrf-token", &csrf)
            .body(Body::from(body))
            .unwrap();
        assert_eq!(h.send(req).await.status, StatusCode::OK);
        // Form post with a wrong CSRF token.
        let req = cookie_req("POST", &format!("/campaigns/{c}"), &ana_session)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("csrf=nope&name=Hacked"))
            .unwrap();
        assert_eq!(h.send(req).await.status, StatusCode::FORBIDDEN);
        let req = cookie_req("POST", &format!("/campaigns/{c}"), &ana_session)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("csrf={csrf}&name=Renamed+by+form")))
            .unwrap();
        assert_eq!(h.send(req).await.status, StatusCode::SEE_OTHER);
        assert_eq!(h.db(|s| s.campaign(c)).unwrap().unwrap().campaign.name, "Renamed by form");

        // Pages for Pennsylvania's admin.
        let page = |path: String| {
            let t = w.pa_admin.clone();
            async move { h.send(cookie_req("GET", &path, &t).body(Body::empty()).unwrap()).await }
        };
        let r = page(format!("/jurisdictions/{oh}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = page("/".into()).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(r.headers["location"], format!("/jurisdictions/{}", w.pa));
        for path in [format!("/campaigns/{c}"), format!("/jurisdictions/{}", w.pa), "/notifications".to_string()] {
            let r = page(path.clone()).await;
            assert_eq!(r.status, StatusCode::OK, "{path}");
            assert_clean(&path, &r.text());
            assert!(r.headers["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
        }
        let r = page(format!("/campaigns/{c}")).await;
        assert!(r.text().contains("10.88.2.20"), "own sighting shown");
        // The analyst overview shows both jurisdictions.
        let r = h.send(cookie_req("GET", "/", &w.ana).body(Body::empty()).unwrap()).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.text().contains("Ohio") && r.text().contains("Pennsylvania"));
        // No session: pages send to the login form.
        let r = h.send(Request::get(format!("/campaigns/{c}")).body(Body::empty()).unwrap()).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(r.headers["location"], "/login");
    }

    #[tokio::test]
    async fn login_form_uses_double_submit_csrf() {
        let w = world().await;
        let h = &w.h;
        let r = h.send(Request::get("/login").body(Body::empty()).unwrap()).await;
        assert_eq!(r.status, StatusCode::OK);
        let set = r.headers["set-cookie"].to_str().unwrap().to_string();
        let token = set.split(';').next().unwrap().split_once('=').unwrap().1.to_string();
        assert!(r.text().contains(&token));
        let form = format!("username=ana&password={}&csrf={token}", PASSWORD.replace(' ', "+"));
        let bad = Request::post("/login").header("content-type", "application/x-www-form-urlencoded").body(Body::from(form.clone())).unwrap();
        assert_eq!(h.send(bad).await.status, StatusCode::FORBIDDEN, "no cookie, no login");
        let good = Request::post("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", format!("ward_login_csrf={token}"))
            .body(Body::from(form))
            .unwrap();
        let r = h.send(good).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert!(r.headers["set-cookie"].to_str().unwrap().starts_with("ward_session="));
    }

    #[tokio::test]
    async fn every_documented_route_with_another_jurisdictions_credentials_reveals_nothing() {
        let w = world().await;
        let h = &w.h;
        let oh_sensor = h.db(|s| s.sensors(Some(w.oh))).unwrap()[0].id;
        let oh_ids = [w.oh, w.campaign, w.oh_notification, oh_sensor];
        let doc = h.get("/api/v1/openapi.json", None).await.json();
        let paths = doc["paths"].as_object().unwrap();
        let mut checked = 0;
        for (template, item) in paths {
            for method in item.as_object().unwrap().keys() {
                // Logging out would end the session the rest of the walk uses; it is tested apart.
                if template == "/api/v1/logout" {
                    continue;
                }
                // Each {id} is Ohio's object of that kind; an unknown kind of route gets every id.
                let ids: Vec<i64> = if template.starts_with("/api/v1/jurisdictions/{id}") {
                    vec![w.oh]
                } else if template.starts_with("/api/v1/campaigns/{id}") {
                    vec![w.campaign]
                } else if template.starts_with("/api/v1/notifications/{id}") {
                    vec![w.oh_notification]
                } else {
                    oh_ids.to_vec()
                };
                let concrete: Vec<String> = if template.contains("{id}") {
                    ids.iter().map(|id| template.replace("{id}", &id.to_string())).collect()
                } else {
                    vec![template.clone()]
                };
                let known_kind = ids.len() == 1;
                for path in concrete {
                    // The scanner's upload and result routes name the jurisdiction in the query.
                    let path = if template.starts_with("/api/v1/scan/") { format!("{path}?jurisdiction=Ohio") } else { path };
                    let r = match method.as_str() {
                        "get" => h.get(&path, Some(&w.pa_admin)).await,
                        "post" => h.post_json(&path, Some(&w.pa_admin), plausible_body(template, w.oh)).await,
                        "put" => {
                            let req = Request::put(&path)
                                .header("authorization", format!("Bearer {}", w.pa_admin))
                                .header("content-type", "application/json")
                                .body(Body::from(plausible_body(template, w.oh).to_string()))
                                .unwrap();
                            h.send(req).await
                        }
                        "delete" => {
                            let req = Request::delete(&path).header("authorization", format!("Bearer {}", w.pa_admin)).body(Body::empty()).unwrap();
                            h.send(req).await
                        }
                        other => panic!("unexpected method {other} in the OpenAPI document"),
                    };
                    checked += 1;
                    assert!(r.status.as_u16() < 500, "{method} {path}: {}", r.status);
                    assert_clean(&format!("{method} {path}"), &r.text());
                    if method == "post" && template.contains("{id}") {
                        assert!(matches!(r.status.as_u16(), 403 | 404), "{method} {path} allowed to another jurisdiction: {}", r.status);
                    }
                    let shared_campaign = template == "/api/v1/campaigns/{id}" && path.ends_with(&format!("/{}", w.campaign));
                    if method == "get" && template.contains("{id}") && known_kind && !shared_campaign {
                        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path}: {}", r.text());
                    }
                }
            }
        }
        assert!(checked >= 20, "the walk covered only {checked} requests");
        // Nothing was changed by the attempts.
        let c = h.db(|s| s.campaign(w.campaign)).unwrap().unwrap().campaign;
        assert_eq!(c.status, ward_hub::model::CampaignStatus::Open);
        assert_ne!(c.name, "Owned");
        assert!(h.db(|s| s.user_credentials("mole")).unwrap().is_none());
        assert!(h.db(|s| s.jurisdiction_by_name("Mole State")).unwrap().is_none());
        assert!(!h.db(|s| s.contacts(Some(w.oh))).unwrap().iter().any(|c| c.target == "evil@example.com"));
        assert!(h.db(|s| s.scan_assets(w.oh)).unwrap().is_empty() && h.db(|s| s.scan_blackouts(w.oh)).unwrap().is_empty());
        assert!(h.db(|s| s.scan_report(w.oh)).unwrap().is_none());
    }

    #[tokio::test]
    async fn every_page_with_another_jurisdictions_session_reveals_nothing() {
        let w = world().await;
        let (h, oh, c, n) = (&w.h, w.oh, w.campaign, w.oh_notification);
        // Ohio's notification has delivery attempts on record.
        let failed = ward_hub::store::AttemptOutcome { ok: false, detail: "OH-ONLY-SIGNATURE relay refused".into(), duration_ms: 4, payload: None, retry_at: Some(0) };
        h.db(|s| s.record_attempt(n, &failed, ward_hub::model::now_ms())).unwrap();
        let r = h.post_json("/api/v1/login", None, json!({"username": "pa-admin", "password": PASSWORD})).await;
        let (pa_session, pa_csrf) = (r.json()["token"].as_str().unwrap().to_string(), r.json()["csrf"].as_str().unwrap().to_string());
        let get = |path: String, token: String| async move { h.send(cookie_req("GET", &path, &token).body(Body::empty()).unwrap()).await };
        for path in [format!("/jurisdictions/{oh}"), format!("/notifications/{n}"), "/campaigns/999999".to_string(), "/notifications/999999".to_string()] {
            let r = get(path.clone(), pa_session.clone()).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
            assert_clean(&path, &r.text());
        }
        let pa_notification = h.db(|s| s.notifications(&ward_hub::store::NotificationFilter { jurisdiction_id: Some(w.pa), campaign_id: None, limit: 10, include_children: false })).unwrap()[0].id;
        for path in ["/".to_string(), "/notifications".into(), format!("/campaigns/{c}"), format!("/jurisdictions/{}", w.pa), format!("/notifications/{pa_notification}"), "/login".into()] {
            let r = get(path.clone(), pa_session.clone()).await;
            assert!(r.status == StatusCode::OK || r.status == StatusCode::SEE_OTHER, "{path}: {}", r.status);
            assert_clean(&path, &r.text());
        }
        // A form post to the shared campaign with Pennsylvania's own valid CSRF token: refused.
        let req = cookie_req("POST", &format!("/campaigns/{c}"), &pa_session)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!("csrf={pa_csrf}&name=Owned&close=1")))
            .unwrap();
        let r = h.send(req).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_clean("campaign form", &r.text());
        assert_eq!(h.db(|s| s.campaign(c)).unwrap().unwrap().campaign.status, ward_hub::model::CampaignStatus::Open);
        // Ohio's own admin sees the attempt on its notification page, the analyst too.
        for token in [&w.oh_admin, &w.ana] {
            let r = get(format!("/notifications/{n}"), token.to_string()).await;
            assert_eq!(r.status, StatusCode::OK);
            assert!(r.text().contains("relay refused") && r.text().contains("Delivery attempts (1)"), "{}", r.text());
        }
    }

    /// Routes merged from other modules (scanner assets, retro-hunt) that the OpenAPI walk above
    /// may not list: Pennsylvania's credentials reach nothing of Ohio's through them either.
    #[tokio::test]
    async fn routes_outside_the_openapi_document_reveal_nothing() {
        let w = world().await;
        let (h, oh) = (&w.h, w.oh);
        let scoped = [format!("/api/v1/jurisdictions/{oh}/scan-assets"), format!("/api/v1/jurisdictions/{oh}/scan-blackouts")];
        for path in &scoped {
            let r = h.get(path, Some(&w.pa_admin)).await;
            assert!(matches!(r.status.as_u16(), 403 | 404), "GET {path}: {}", r.status);
            assert_clean(path, &r.text());
            let r = h.post_json(path, Some(&w.pa_admin), json!({"target": "198.51.100.7", "address": "198.51.100.7", "start": "2026-11-03T00:00:00Z", "end": "2026-11-04T00:00:00Z"})).await;
            assert!(matches!(r.status.as_u16(), 403 | 404 | 422), "POST {path}: {}", r.status);
            assert_clean(path, &r.text());
        }
        for path in ["/api/v1/scan/results".to_string(), "/api/v1/retrohunts".to_string(), format!("/scan/{oh}/report.html"), format!("/scan/{oh}/report.pdf")] {
            let r = h.get(&path, Some(&w.pa_admin)).await;
            assert!(r.status.as_u16() < 500, "GET {path}: {}", r.status);
            assert_clean(&path, &r.text());
            let r = h.send(cookie_req("GET", &path, &w.pa_admin).body(Body::empty()).unwrap()).await;
            assert!(r.status.as_u16() < 500, "GET {path} (cookie): {}", r.status);
            assert_clean(&path, &r.text());
        }
    }
}

fn cookie_req(method: &str, path: &str, token: &str) -> axum::http::request::Builder {
    Request::builder().method(method).uri(path).header("cookie", format!("ward_session={token}"))
}

/// A body that would succeed for each mutating API route if the caller were allowed, so the
/// access check (not body validation) decides the answer.
fn plausible_body(path: &str, oh: i64) -> serde_json::Value {
    match path {
        "/api/v1/jurisdictions" => json!({"name": "Mole State", "kind": "state", "state": "MX"}),
        "/api/v1/users" => json!({"username": "mole", "password": PASSWORD, "role": "viewer", "jurisdiction_id": oh}),
        "/api/v1/login" => json!({"username": "pa-admin", "password": PASSWORD}),
        "/api/v1/sensors/enroll" => json!({"token": "wet_guess"}),
        p if p.ends_with("/contacts") => json!({"channel": "email", "target": "evil@example.com"}),
        p if p.starts_with("/api/v1/campaigns/") => json!({"name": "Owned", "close": true}),
        p if p.ends_with("/scan-assets") => json!({"value": "198.51.100.7"}),
        p if p.ends_with("/scan-blackouts") => json!({"starts_ms": 1, "ends_ms": 2, "reason": "mole"}),
        "/api/v1/scan/targets" => json!({"jurisdiction": "Ohio"}),
        "/api/v1/scan/jobs/claim" => json!({"worker": "mole"}),
        "/api/v1/scan/report" => json!({"html": "<p>owned</p>", "pdf_base64": ""}),
        _ => json!({}),
    }
}
