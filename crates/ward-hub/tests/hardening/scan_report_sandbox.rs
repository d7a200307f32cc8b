//! Medium 11: uploaded scan reports are never served as active content on the hub's origin.
//!
//! An admin (or a stolen admin token) uploads a report that redirects, scripts and shows a fake
//! login form. The hub serves it in a sandbox: its own unique origin, no scripts, no forms, no
//! navigation, nothing loaded from anywhere; the report's inline styles still apply.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use serde_json::json;
use ward_hub::model::Role;

use crate::common;

const HOSTILE_REPORT: &str = r#"<!DOCTYPE html><html><head><meta charset="utf-8">
<meta http-equiv="refresh" content="0;url=https://evil.example/login">
<base href="https://evil.example/">
<style>body{font-family:sans-serif;color:#123456}</style>
<script>fetch('/api/v1/users',{method:'POST',body:'{}'})</script></head>
<body><h1>Weekly report</h1><form action="/login" method="post"><input name="password"></form>
<img src="https://evil.example/pixel.gif"></body></html>"#;

fn directives(csp: &str) -> Vec<String> {
    csp.split(';').map(|d| d.trim().to_string()).filter(|d| !d.is_empty()).collect()
}

crate::on_each_backend! {
    #[tokio::test]
    async fn an_uploaded_report_is_served_sandboxed_with_its_styles() {
        let h = common::hub();
        let county = h.jurisdiction("Franklin County", "OH");
        h.user("county-admin", Role::Admin, Some(county));
        h.user("analyst", Role::Analyst, None);
        let admin = h.login("county-admin").await;
        let analyst = h.login("analyst").await;
        let upload = json!({"html": HOSTILE_REPORT, "pdf_base64": base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4\n%%EOF\n")});
        let req = Request::put("/api/v1/scan/report?jurisdiction=Franklin%20County")
            .header("authorization", format!("Bearer {admin}"))
            .header("content-type", "application/json")
            .body(Body::from(upload.to_string()))
            .unwrap();
        let r = h.send(req).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

        let r = h.get(&format!("/scan/{county}/report.html"), Some(&analyst)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let csp = r.headers["content-security-policy"].to_str().unwrap().to_string();
        let list = directives(&csp);
        // A bare `sandbox`: unique origin, no scripts, forms, popups, top navigation or plugins.
        assert!(list.iter().any(|d| d == "sandbox"), "{csp}");
        assert!(!csp.contains("allow-"), "no sandbox exception: {csp}");
        assert!(list.iter().any(|d| d == "default-src 'none'"), "{csp}");
        assert!(!list.iter().any(|d| d.starts_with("script-src")), "{csp}");
        assert!(list.iter().any(|d| d == "img-src data:"), "{csp}");
        assert!(list.iter().any(|d| d == "style-src 'unsafe-inline'"), "{csp}");
        assert!(list.iter().any(|d| d == "form-action 'none'") && list.iter().any(|d| d == "base-uri 'none'"), "{csp}");
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/html"));
        // The report renders as uploaded: its own style block is there and allowed.
        assert!(r.text().contains("<style>body{font-family:sans-serif;color:#123456}</style>"), "{}", r.text());

        // The dashboard itself keeps its strict policy (no inline style, no sandbox needed).
        let page = h.get("/login", None).await;
        let dashboard_csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(dashboard_csp.contains("style-src 'self'") && !dashboard_csp.contains("unsafe-inline"), "{dashboard_csp}");
    }
}

/// The policy must not break the real report: the scanner's template needs only an inline
/// style block (and inline SVG charts): no scripts, stylesheets, fonts or remote images.
#[test]
fn the_scanners_report_template_needs_nothing_the_sandbox_forbids() {
    let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../ward-scan/templates/weekly.html")).unwrap();
    let lower = template.to_ascii_lowercase();
    assert!(lower.contains("<style>"), "the report styles itself inline");
    for needle in ["<script", "<link", "@import", "url(", "<iframe", "<object", "<embed", "<form", "http-equiv"] {
        assert!(!lower.contains(needle), "the template uses {needle}, which the report policy blocks");
    }
    for (i, _) in lower.match_indices(" src=") {
        let value = &lower[i + 5..];
        assert!(value.trim_start_matches(['"', '\'']).starts_with("data:"), "a resource not from data: at {i}");
    }
}
