//! The dashboard's disinformation pages and the public "rumor vs reality" page
//! (crates/ward-hub/src/disinfo/web.rs; docs/disinformation.md), on both stores, through the
//! real router: the report form files a report (and a bad one is shown again with the error),
//! the case list and case page show each office what the API would and answer other
//! jurisdictions with a 404 page; HTML typed in any field comes out escaped; analysts move a
//! case and publish it; the public page shows only published cases of its state, never the
//! reporter, the office, the posts' URLs or screenshots.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use ward_hub::disinfo::images::samples;
use ward_hub::model::Role;

const CLAIM: &str = "<script>alert('claim')</script> Polling places in Maricopa County close at 5pm on November 5";
const TRUTH: &str = "<b onmouseover=alert(1)>Polls are open</b> from 6am to 7pm on November 5.";
const CITATION: &str = "<img src=x onerror=alert(2)> A.R.S. 16-565";
const URL: &str = "https://example.org/post/<i>77</i>?ref=\"><script>alert(3)</script>";

struct World {
    h: Hub,
    maricopa: i64,
    pima: i64,
    ana: String,
    mc: String,
    pima_viewer: String,
    dane: String,
    az: String,
}

async fn world() -> World {
    let h = hub();
    let az_id = h.jurisdiction("Arizona", "AZ");
    let maricopa = h.jurisdiction("Maricopa County", "AZ");
    let pima = h.jurisdiction("Pima County", "AZ");
    let dane = h.jurisdiction("Dane County", "WI");
    h.user("ana", Role::Analyst, None);
    h.user("mc-clerk", Role::Admin, Some(maricopa));
    h.user("pima-viewer", Role::Viewer, Some(pima));
    h.user("dane-clerk", Role::Admin, Some(dane));
    h.user("az-sos", Role::Admin, Some(az_id));
    World {
        ana: h.login("ana").await,
        mc: h.login("mc-clerk").await,
        pima_viewer: h.login("pima-viewer").await,
        dane: h.login("dane-clerk").await,
        az: h.login("az-sos").await,
        h,
        maricopa,
        pima,
    }
}

/// The page's CSRF token (the hidden `csrf` field of its forms).
fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a form with a csrf field") + "name=\"csrf\" value=\"".len();
    page[at..].split('"').next().unwrap().to_string()
}

/// A multipart body of text fields and screenshot files, as a browser sends the form.
fn form_body(fields: &[(&str, String)], shots: &[Vec<u8>]) -> (String, Vec<u8>) {
    let boundary = "----wardFormBoundaryQ2x9";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes());
    }
    for (i, s) in shots.iter().enumerate() {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"screenshot\"; filename=\"s{i}.png\"\r\nContent-Type: image/png\r\n\r\n").as_bytes());
        body.extend_from_slice(s);
        body.extend_from_slice(b"\r\n");
    }
    // An empty file input, as browsers send one.
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"screenshot\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n").as_bytes());
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_form(h: &Hub, token: &str, fields: &[(&str, String)], shots: &[Vec<u8>]) -> Resp {
    let (ct, body) = form_body(fields, shots);
    h.send(Request::post("/disinfo/report").header("authorization", format!("Bearer {token}")).header("content-type", ct).body(Body::from(body)).unwrap()).await
}

async fn post_urlencoded(h: &Hub, token: &str, path: &str, body: &str) -> Resp {
    h.send(
        Request::post(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn location(r: &Resp) -> String {
    r.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

/// No raw markup from a field survived into the page.
fn assert_escaped(page: &str) {
    for raw in ["<script>alert", "<b onmouseover", "<img src=x", "<i>77</i>"] {
        assert!(!page.contains(raw), "unescaped {raw:?} in the page");
    }
}

/// Files the Maricopa report through the form; returns the case id.
async fn file_through_form(w: &World) -> i64 {
    let h = &w.h;
    let form = h.get("/disinfo/report", Some(&w.mc)).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text());
    let page = form.text();
    // Maricopa may name its own state's jurisdictions, not Wisconsin's.
    assert!(page.contains("Pima County") && page.contains("Arizona"), "{page}");
    assert!(!page.contains("Dane County"), "another state's county is offered");
    let fields = vec![
        ("csrf", csrf_of(&page)),
        ("urls", format!("{URL}\nhttps://x.com/someone/status/1789000111?s=20")),
        ("platform", "x".into()),
        ("category", "voting-logistics".into()),
        ("claim", CLAIM.into()),
        ("truth", TRUTH.into()),
        ("citation", CITATION.into()),
        ("concerns", w.maricopa.to_string()),
        ("concerns", w.pima.to_string()),
        ("seen_at", "2026-11-03T07:30".into()),
        ("views", "12,000".into()),
        ("shares", "".into()),
    ];
    let r = post_form(h, &w.mc, &fields, &[samples::png(640, 480, "GPS 33.45,-112.07")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let to = location(&r);
    assert!(to.starts_with("/disinfo/cases/") && to.ends_with("?filed=new"), "{to}");
    to.trim_start_matches("/disinfo/cases/").split('?').next().unwrap().parse().unwrap()
}

on_each_backend! {
    #[tokio::test]
    async fn the_form_files_a_report_and_pages_follow_access() {
        let w = world().await;
        let h = &w.h;
        // Without a session the pages send the reader to log in.
        let r = h.get("/disinfo", None).await;
        assert_eq!((r.status, location(&r).as_str()), (StatusCode::SEE_OTHER, "/login"));

        let case = file_through_form(&w).await;
        // The API agrees: one report, its fields as typed (the form's time is UTC).
        let v = h.get(&format!("/api/v1/disinfo/cases/{case}"), Some(&w.mc)).await.json();
        assert_eq!(v["reports"][0]["claim"], CLAIM);
        assert_eq!(v["reports"][0]["citation"], CITATION);
        assert_eq!(v["reports"][0]["views"], 12000);
        assert_eq!(v["reports"][0]["urls"][0], URL);
        assert_eq!(v["reports"][0]["screenshots"].as_array().unwrap().len(), 1, "the empty file input is no screenshot");
        let shot = v["reports"][0]["screenshots"][0]["sha256"].as_str().unwrap().to_string();
        assert_eq!((v["case"]["jurisdictions"].as_array().unwrap().len(), v["case"]["other_jurisdictions"].as_i64()), (1, Some(1)), "Maricopa and Pima");

        // The reporter's case page: the flash, everything escaped, the reporter, the screenshot
        // inline, the URLs as text (no link to the post).
        let r = h.get(&format!("/disinfo/cases/{case}?filed=new"), Some(&w.mc)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/html"));
        let page = r.text();
        assert_escaped(&page);
        assert!(page.contains("it opened this case"), "{page}");
        assert!(page.contains("&lt;script&gt;alert('claim')&lt;/script&gt;") || page.contains("&lt;script&gt;alert(&#39;claim&#39;)"), "{page}");
        assert!(page.contains("mc-clerk"));
        assert!(page.contains(&format!("src=\"/api/v1/disinfo/screenshots/{shot}\"")));
        assert!(page.contains("x.com/someone/status/1789000111"));
        assert!(!page.contains("href=\"https://"), "a reported URL became a link");
        // Not an analyst: no status or publish form.
        assert!(!page.contains("/status\"") && !page.contains("/publish\""));

        // Pima is concerned: it sees the case, not who reported it or the screenshot.
        let r = h.get(&format!("/disinfo/cases/{case}"), Some(&w.pima_viewer)).await;
        assert_eq!(r.status, StatusCode::OK);
        let page = r.text();
        assert_escaped(&page);
        assert!(page.contains("from another office"));
        assert!(!page.contains("mc-clerk") && !page.contains("Maricopa County, by"), "Pima sees who reported: {page}");
        assert!(page.contains("Pima County") && page.contains("1 other office"), "{page}");
        assert!(!page.contains(&shot), "Pima sees Maricopa's screenshot");
        // The state sees it through its counties, with the reporter.
        let r = h.get(&format!("/disinfo/cases/{case}"), Some(&w.az)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.text().contains("mc-clerk"));
        // Wisconsin: a 404 page (HTML, not JSON), as for a case that does not exist.
        for id in [case, case + 1000] {
            let r = h.get(&format!("/disinfo/cases/{id}"), Some(&w.dane)).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
            assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/html"));
            assert!(r.text().contains("Not found") && !r.text().contains("Polling places"));
        }

        // The case list: Maricopa, Pima and analysts see the case; Wisconsin does not.
        for (who, sees) in [(&w.mc, true), (&w.pima_viewer, true), (&w.az, true), (&w.ana, true), (&w.dane, false)] {
            let r = h.get("/disinfo", Some(who)).await;
            assert_eq!(r.status, StatusCode::OK);
            let page = r.text();
            assert_escaped(&page);
            assert_eq!(page.contains(&format!("href=\"/disinfo/cases/{case}\"")), sees, "{page}");
            if sees {
                assert!((page.contains("just now (20") || page.contains("ago (20")) && page.contains("voting-logistics") && page.contains("high"), "{page}");
            }
        }
        // The nav links to the list.
        assert!(h.get("/disinfo", Some(&w.mc)).await.text().contains("href=\"/disinfo\""));
    }

    #[tokio::test]
    async fn a_bad_form_is_shown_again_with_its_error() {
        let w = world().await;
        let h = &w.h;
        let page = h.get("/disinfo/report", Some(&w.mc)).await.text();
        let csrf = csrf_of(&page);
        let base = |claim: &str, extra: (&'static str, String)| {
            vec![
                ("csrf", csrf.clone()),
                ("urls", "https://x.com/a/status/1".to_string()),
                ("platform", "x".into()),
                ("category", "fraud-claim".into()),
                ("claim", claim.to_string()),
                ("truth", TRUTH.into()),
                ("citation", CITATION.into()),
                extra,
            ]
        };
        let cases = [
            (base("  ", ("concerns", w.maricopa.to_string())), "claim is required"),
            (base(CLAIM, ("seen_at", "last tuesday".into())), "seen at is a time"),
            (base(CLAIM, ("views", "lots".into())), "views is a count"),
            (base(CLAIM, ("concerns", "987654".into())), "no jurisdiction 987654"),
            (base(&"y".repeat(2_001), ("shares", "1".into())), "longer than 2000"),
        ];
        for (fields, expected) in cases {
            let r = post_form(h, &w.mc, &fields, &[]).await;
            assert!(r.status.is_client_error(), "{expected}: {}", r.status);
            let page = r.text();
            assert!(page.contains(expected), "{expected}: {page}");
            // The form comes back with what was typed, escaped.
            assert!(page.contains("enctype=\"multipart/form-data\""));
            assert!(page.contains("&lt;b onmouseover=alert(1)&gt;Polls are open"), "{page}");
            assert_escaped(&page);
        }
        // A bad screenshot is refused by the API's checks.
        let r = post_form(h, &w.mc, &base(CLAIM, ("concerns", w.maricopa.to_string())), &[b"GIF89a\x01\0\x01\0".to_vec()]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.text().contains("screenshot 1"), "{}", r.text());
        // Without the CSRF token: refused, nothing filed.
        let mut no_csrf = base(CLAIM, ("concerns", w.maricopa.to_string()));
        no_csrf.remove(0);
        let r = post_form(h, &w.mc, &no_csrf, &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        // A county may not file for another county.
        let r = post_form(h, &w.mc, &base(CLAIM, ("jurisdiction_id", w.pima.to_string())), &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(h.get("/api/v1/disinfo/reports", Some(&w.ana)).await.json()["reports"].as_array().unwrap().is_empty(), "a bad form filed a report");
    }

    #[tokio::test]
    async fn analysts_move_and_publish_cases_and_the_public_sees_only_those() {
        let w = world().await;
        let h = &w.h;
        let case = file_through_form(&w).await;
        // A second case, never published.
        let r = h
            .post_json(
                "/api/v1/disinfo/reports",
                Some(&w.mc),
                serde_json::json!({"urls": ["https://x.com/b/status/9"], "platform": "x", "category": "threat", "claim": "Unpublished rumour about drop boxes on fire in Mesa",
                    "truth": "No drop box burned.", "citation": "Maricopa County Elections"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

        let public = h.get("/rumors/AZ", None).await;
        assert_eq!(public.status, StatusCode::OK);
        assert!(!public.text().contains("Polling places") && public.text().contains("Nothing published"));

        // Only analysts publish: a county in the case is told so, one outside gets a 404.
        let pima_csrf = csrf_of(&h.get(&format!("/disinfo/cases/{case}"), Some(&w.pima_viewer)).await.text());
        let r = post_urlencoded(h, &w.pima_viewer, &format!("/disinfo/cases/{case}/publish"), &format!("csrf={}", enc(&pima_csrf))).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let dane_csrf = csrf_of(&h.get("/disinfo/report", Some(&w.dane)).await.text());
        let r = post_urlencoded(h, &w.dane, &format!("/disinfo/cases/{case}/publish"), &format!("csrf={}", enc(&dane_csrf))).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = post_urlencoded(h, &w.dane, &format!("/disinfo/cases/{case}/status"), &format!("csrf={}&status=closed", enc(&dane_csrf))).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        // The analyst's case page has the forms.
        let page = h.get(&format!("/disinfo/cases/{case}"), Some(&w.ana)).await.text();
        assert!(page.contains(&format!("action=\"/disinfo/cases/{case}/status\"")) && page.contains(&format!("action=\"/disinfo/cases/{case}/publish\"")));
        let csrf = enc(&csrf_of(&page));
        // A wrong token changes nothing.
        let r = post_urlencoded(h, &w.ana, &format!("/disinfo/cases/{case}/publish"), "csrf=wrong").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        // Status: referred needs to whom (the error on the page), then forward, never back.
        let r = post_urlencoded(h, &w.ana, &format!("/disinfo/cases/{case}/status"), &format!("csrf={csrf}&status=referred&referred_to=&outcome=&note=")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.text().contains("referred_to"), "{}", r.text());
        let r = post_urlencoded(h, &w.ana, &format!("/disinfo/cases/{case}/status"), &format!("csrf={csrf}&status=referred&referred_to={}&outcome=&note={}", enc("X <trust & safety>"), enc("<u>sent</u>"))).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
        let r = post_urlencoded(h, &w.ana, &format!("/disinfo/cases/{case}/status"), &format!("csrf={csrf}&status=triaged")).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert!(r.text().contains("only move forward"), "{}", r.text());
        let page = h.get(&format!("/disinfo/cases/{case}"), Some(&w.mc)).await.text();
        assert!(page.contains("referred") && page.contains("X &lt;trust &amp; safety&gt;") && page.contains("&lt;u&gt;sent&lt;/u&gt;"), "{page}");
        assert_eq!(h.get(&format!("/api/v1/disinfo/cases/{case}"), Some(&w.mc)).await.json()["case"]["status"], "referred");

        // Publish: the public page of Arizona shows the claim, the facts and the citation,
        // escaped, and nothing of who reported it, where from, the posts or the screenshots.
        let r = post_urlencoded(h, &w.ana, &format!("/disinfo/cases/{case}/publish"), &format!("csrf={csrf}")).await;
        assert_eq!((r.status, location(&r)), (StatusCode::SEE_OTHER, format!("/disinfo/cases/{case}")));
        assert!(h.get(&format!("/disinfo/cases/{case}"), Some(&w.ana)).await.text().contains("Published on the public"));
        for path in ["/rumors/AZ", "/rumors/az"] {
            let r = h.get(path, None).await;
            assert_eq!(r.status, StatusCode::OK);
            let page = r.text();
            assert_escaped(&page);
            assert!(page.contains("Polling places in Maricopa County close at 5pm"), "{page}");
            assert!(page.contains("Polls are open") && page.contains("A.R.S. 16-565"), "{page}");
            for secret in ["mc-clerk", "x.com", "example.org", "screenshots", "Unpublished rumour", "/disinfo/cases/"] {
                assert!(!page.contains(secret), "the public page shows {secret:?}: {page}");
            }
        }
        let r = h.get("/rumors/AZ.json", None).await;
        assert_eq!(r.status, StatusCode::OK);
        let v = r.json();
        assert_eq!(v["state"], "AZ");
        let rumors = v["rumors"].as_array().unwrap();
        assert_eq!(rumors.len(), 1);
        assert_eq!((rumors[0]["claim"].as_str(), rumors[0]["facts"].as_str(), rumors[0]["citation"].as_str()), (Some(CLAIM), Some(TRUTH), Some(CITATION)));
        for secret in ["mc-clerk", "x.com", "example.org", "sha256", "jurisdiction", "reporter"] {
            assert!(!r.text().contains(secret), "the feed shows {secret:?}: {}", r.text());
        }
        // Another state's page does not carry it; an unknown or malformed state is a 404.
        let r = h.get("/rumors/WI", None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(!r.text().contains("Polling places"));
        for bad in ["/rumors/ZZ", "/rumors/ZZ.json", "/rumors/ARIZONA", "/rumors/%3Cscript%3E"] {
            let r = h.get(bad, None).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{bad}");
            assert!(!r.text().contains("<script>"), "{bad}");
        }

        // Unpublish: gone from the public page and the feed.
        let r = post_urlencoded(h, &w.ana, &format!("/disinfo/cases/{case}/unpublish"), &format!("csrf={csrf}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert!(!h.get("/rumors/AZ", None).await.text().contains("Polling places"));
        assert!(h.get("/rumors/AZ.json", None).await.json()["rumors"].as_array().unwrap().is_empty());
        // Publishing a case that does not exist is a 404.
        let r = post_urlencoded(h, &w.ana, "/disinfo/cases/999999/publish", &format!("csrf={csrf}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
}
