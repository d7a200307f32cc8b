//! Medium 10: login throttling per source and account with backoff, the real user can still log in.
//!
//! Through the router with the peer address the server would give (`ConnectInfo`), and once over
//! real sockets from two loopback addresses, so the server's own peer-address wiring is tested.
//! The sources are only labels on requests to the in-process router: nothing is sent to them.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use serde_json::json;
use ward_hub::model::Role;

use crate::common::{self, Hub, Resp, PASSWORD};

const ATTACKER: &str = "198.51.100.66";
const REAL_USER: &str = "192.0.2.10";

fn from(mut req: Request<Body>, source: &str) -> Request<Body> {
    req.extensions_mut().insert(ConnectInfo(SocketAddr::new(source.parse().unwrap(), 50_000)));
    req
}

async fn api_login(h: &Hub, source: &str, name: &str, password: &str) -> Resp {
    let body = json!({"username": name, "password": password}).to_string();
    let req = Request::post("/api/v1/login").header("content-type", "application/json").body(Body::from(body)).unwrap();
    h.send(from(req, source)).await
}

async fn form_login(h: &Hub, source: &str, name: &str, password: &str) -> Resp {
    let form = format!("username={name}&password={}&csrf=lc_form", password.replace(' ', "+"));
    let req = Request::post("/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", "ward_login_csrf=lc_form")
        .body(Body::from(form))
        .unwrap();
    h.send(from(req, source)).await
}

/// A login through a load balancer on 127.0.0.1 that forwarded `forwarded` as the client.
async fn forwarded_login(h: &Hub, forwarded: &str, password: &str) -> Resp {
    let body = json!({"username": "analyst", "password": password}).to_string();
    let req = Request::post("/api/v1/login")
        .header("content-type", "application/json")
        .header("x-forwarded-for", forwarded)
        .body(Body::from(body))
        .unwrap();
    h.send(from(req, "127.0.0.1")).await
}

fn retry_after(r: &Resp) -> u64 {
    r.headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no Retry-After: {:?}", r.headers))
}

crate::on_each_backend! {
    #[tokio::test]
    async fn a_failing_source_is_slowed_and_the_real_user_still_logs_in() {
        let h = common::hub();
        h.user("analyst", Role::Analyst, None);
        let mut throttled = None;
        for i in 0..40 {
            let r = api_login(&h, ATTACKER, "analyst", &format!("guess number {i}")).await;
            match r.status {
                StatusCode::FORBIDDEN => continue,
                StatusCode::TOO_MANY_REQUESTS => {
                    throttled = Some((i, r));
                    break;
                }
                other => panic!("unexpected {other}: {}", r.text()),
            }
        }
        let (tries, r) = throttled.expect("40 wrong passwords from one address are never slowed");
        assert!(tries >= ward_hub::auth::LOGIN_FREE_FAILURES_PER_ACCOUNT as usize, "a few mistakes cost nothing ({tries})");
        assert!(retry_after(&r) >= 1);
        assert!(r.text().contains("retry after"), "{}", r.text());
        // The attacker's address is refused even with the right password…
        let r = api_login(&h, ATTACKER, "analyst", PASSWORD).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        let r = form_login(&h, ATTACKER, "analyst", PASSWORD).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
        assert!(retry_after(&r) >= 1 && r.text().contains("too many failed logins"));
        // …while the real user, from their own address, logs in (API and dashboard form), at once.
        let r = api_login(&h, REAL_USER, "analyst", PASSWORD).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let r = form_login(&h, REAL_USER, "analyst", PASSWORD).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        assert!(r.headers["set-cookie"].to_str().unwrap().starts_with("ward_session="));
        // A real user who mistypes a few times is not slowed either.
        for _ in 0..3 {
            assert_eq!(api_login(&h, REAL_USER, "analyst", "typo in the password").await.status, StatusCode::FORBIDDEN);
        }
        assert_eq!(api_login(&h, REAL_USER, "analyst", PASSWORD).await.status, StatusCode::OK);
    }

    #[tokio::test]
    async fn spraying_one_password_over_many_names_is_throttled() {
        let h = common::hub();
        h.user("clerk", Role::Analyst, None);
        let mut first_refusal = None;
        for i in 0..50 {
            let r = api_login(&h, ATTACKER, &format!("user{i}"), "Summer2026!Summer2026!").await;
            match r.status {
                StatusCode::FORBIDDEN => {}
                StatusCode::TOO_MANY_REQUESTS => {
                    first_refusal.get_or_insert(i);
                }
                other => panic!("unexpected {other}: {}", r.text()),
            }
        }
        let first = first_refusal.expect("50 names sprayed from one address were never throttled");
        assert!(first <= ward_hub::auth::LOGIN_FREE_FAILURES_PER_SOURCE as usize + 1, "throttled only after {first} names");
        // Another address is not affected.
        assert_eq!(api_login(&h, REAL_USER, "clerk", PASSWORD).await.status, StatusCode::OK);
    }

    /// Behind a load balancer every login arrives from its address: with `trusted_proxies` the
    /// hub keys on the client it forwarded, so one failing client does not lock out everyone;
    /// without it, `X-Forwarded-For` is ignored, so an attacker cannot pick a fresh source.
    #[tokio::test]
    async fn behind_a_trusted_load_balancer_the_forwarded_client_is_the_source() {
        use super::forwarded_login as login;
        let h = common::hub_with(|c| c.limits.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]);
        h.user("analyst", Role::Analyst, None);
        let mut throttled = false;
        for i in 0..40 {
            // The attacker's own claim (the left entry) is not believed: the balancer's entry is.
            let r = login(&h, &format!("203.0.113.{i}, {ATTACKER}"), &format!("guess {i}")).await;
            if r.status == StatusCode::TOO_MANY_REQUESTS {
                throttled = true;
                break;
            }
            assert_eq!(r.status, StatusCode::FORBIDDEN);
        }
        assert!(throttled, "the forwarded attacker was never slowed");
        assert_eq!(login(&h, REAL_USER, PASSWORD).await.status, StatusCode::OK, "another client behind the same balancer logs in");

        // Not trusted: the header is ignored and the attacker cannot escape by rotating it.
        let h = common::hub();
        h.user("analyst", Role::Analyst, None);
        let mut throttled = false;
        for i in 0..40 {
            let r = login(&h, &format!("192.0.2.{i}"), &format!("guess {i}")).await;
            if r.status == StatusCode::TOO_MANY_REQUESTS {
                throttled = true;
                break;
            }
        }
        assert!(throttled, "a rotating X-Forwarded-For escaped the throttle");
    }

    /// The same over real TCP: the hub keys on the peer address of the connection.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_peer_address_of_a_real_connection_is_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let hub = ward_hub::start(common::config(dir.path())).await.unwrap();
        let phc = ward_hub::auth::hash_password(PASSWORD).unwrap();
        common::db(&hub.state.store, |s| s.create_user("analyst", &phc, Role::Analyst, None, ward_hub::model::now_ms())).unwrap();
        let url = format!("{}/api/v1/login", hub.url());
        let client_from = |ip: &str| reqwest::Client::builder().local_address(ip.parse::<std::net::IpAddr>().unwrap()).build().unwrap();
        let (attacker, user) = (client_from("127.0.0.1"), client_from("127.0.0.3"));
        let mut throttled = false;
        for i in 0..40 {
            let r = attacker.post(&url).json(&json!({"username": "analyst", "password": format!("guess {i}")})).send().await.unwrap();
            if r.status() == StatusCode::TOO_MANY_REQUESTS {
                throttled = true;
                break;
            }
            assert_eq!(r.status(), StatusCode::FORBIDDEN);
        }
        assert!(throttled, "the failing connection's address was never slowed");
        let r = user.post(&url).json(&json!({"username": "analyst", "password": PASSWORD})).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "another peer address logs in");
        hub.shutdown().await;
    }
}
