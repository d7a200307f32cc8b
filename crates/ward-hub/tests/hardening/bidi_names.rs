//! Low: bidi controls and other invisible characters are refused in names.
//!
//! One check (`ward_hub::model::check_text`, called by the store) serves the API, the CLI and
//! the dashboard's forms; each path is tried here.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clap::Parser;
use serde_json::json;
use ward_hub::model::Role;

use crate::common::*;

/// A right-to-left override: "Ohio\u{202E}lla" shows as "Ohioalle"-like text reversed after it.
const RLO: &str = "\u{202E}";

fn refused(r: &Resp, what: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text());
    let msg = r.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(msg.contains("U+") && msg.contains("bidi"), "{what}: {msg}");
}

crate::on_each_backend! {
    #[tokio::test]
    async fn the_api_refuses_invisible_characters_in_every_name() {
        let h = hub();
        let j = h.jurisdiction("Ohio", "OH");
        h.user("ana", Role::Analyst, None);
        let ana = h.login("ana").await;

        for name in [format!("Ohio{RLO}lla"), "Zero\u{200B}Width".into(), "Tag\u{E0041}".into(), "Bell\u{7}".into(), "Iso\u{2066}late\u{2069}".into()] {
            let r = h.post_json("/api/v1/jurisdictions", Some(&ana), json!({"name": name, "kind": "state", "state": "IA"})).await;
            refused(&r, "jurisdiction name");
        }
        let r = h.post_json("/api/v1/users", Some(&ana), json!({"username": format!("clerk{RLO}"), "password": PASSWORD, "role": "viewer", "jurisdiction_id": j})).await;
        refused(&r, "username");
        let r = h.post_json(&format!("/api/v1/jurisdictions/{j}/contacts"), Some(&ana), json!({"channel": "email", "target": format!("it\u{200D}@county.example.gov")})).await;
        refused(&r, "contact target");

        // Sensor names at enrollment; the token is not spent by the refusal.
        let token = ward_hub::auth::random_token("wet");
        let now = ward_hub::model::now_ms();
        h.db(|s| s.create_enrollment_token(j, &ward_hub::auth::hash_token(&token), now, now + 60_000)).unwrap();
        let r = h.post_json("/api/v1/sensors/enroll", None, json!({"token": token, "name": format!("fw{RLO}1")})).await;
        refused(&r, "sensor name");
        let r = h.post_json("/api/v1/sensors/enroll", None, json!({"token": token, "name": "fw-1"})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

        // Campaign names and notes (a note may have line breaks, not bidi controls).
        let b = h.jurisdiction("Iowa", "IA");
        let (sa, sb) = (h.sensor(j).await, h.sensor(b).await);
        let line = alert_line("45.33.1.1", "10.0.0.1", 1, "x");
        h.post_events((sa.0, &sa.1), 1, line.clone(), false).await;
        h.post_events((sb.0, &sb.1), 1, line, false).await;
        let id = h.get("/api/v1/campaigns", Some(&ana)).await.json()[0]["id"].as_i64().expect("a campaign");
        let path = format!("/api/v1/campaigns/{id}");
        refused(&h.post_json(&path, Some(&ana), json!({"name": format!("Op{RLO}eration")})).await, "campaign name");
        refused(&h.post_json(&path, Some(&ana), json!({"annotation": format!("see {RLO}note")})).await, "campaign note");
        let r = h.post_json(&path, Some(&ana), json!({"name": "Operation Ballot", "annotation": "line one\nline two"})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());

        // Nothing with a refused character was stored.
        assert!(h.db(|s| s.jurisdictions()).unwrap().iter().all(|j| j.name.is_ascii()));
        assert!(h.db(|s| s.users(None)).unwrap().iter().all(|u| u.username.is_ascii()));
        assert!(h.db(|s| s.contacts(None)).unwrap().is_empty());

        // The dashboard form goes through the same check.
        let me = h.get("/api/v1/me", Some(&ana)).await.json();
        let csrf = me["csrf"].as_str().unwrap().to_string();
        let form = format!("csrf={csrf}&name=Op%E2%80%AEeration&annotation=");
        let req = Request::post(format!("/campaigns/{id}"))
            .header("authorization", format!("Bearer {ana}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap();
        let r = h.send(req).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
        assert!(r.text().contains("U+202E"), "{}", r.text());
        assert_eq!(h.get(&path, Some(&ana)).await.json()["campaign"]["name"], "Operation Ballot");
    }
}

#[derive(Parser)]
struct Ward {
    #[command(subcommand)]
    hub: ward_hub::cli::HubCommand,
}

#[test]
fn the_cli_refuses_them_too() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let run = |args: &[&str]| {
        let mut argv = vec!["ward"];
        argv.extend_from_slice(args);
        ward_hub::cli::run(Ward::try_parse_from(argv).unwrap().hub)
    };
    run(&["init", "--data", d]).unwrap();
    let name = format!("Ohio{RLO}lla");
    let err = run(&["jurisdiction", "add", &name, "--kind", "state", "--state", "OH", "--data", d]).unwrap_err();
    assert!(format!("{err:#}").contains("U+202E"), "{err:#}");
    run(&["jurisdiction", "add", "Ohio", "--kind", "state", "--state", "OH", "--data", d]).unwrap();
    let user = format!("clerk\u{200B}");
    let err = run(&["user", "add", &user, "--role", "viewer", "--jurisdiction", "Ohio", "--password", "a long enough password", "--data", d]).unwrap_err();
    assert!(format!("{err:#}").contains("U+200B"), "{err:#}");
}
