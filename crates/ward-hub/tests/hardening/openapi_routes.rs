//! Low: the OpenAPI document lists every route the router serves.
//!
//! Checked both ways against the real router: every path and method of the document is served
//! (a probe does not get 405 or the router's own 404), every other method of those paths is
//! not (405), and every route registered in the source (`.route("…"` in `src/`) is in the
//! document or is one of the dashboard's HTML pages (`ward_hub::openapi::DASHBOARD_PAGES`).

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};

use crate::common::*;

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// The paths passed to `.route(` anywhere in the crate's source.
fn routes_in_source() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut dirs = vec![std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split(".route(\"").skip(1) {
                    found.insert(piece.split('"').next().unwrap().to_string());
                }
            }
        }
    }
    found
}

/// Whether the router serves `method path` (a handler answered, whatever it said).
async fn served(h: &Hub, method: &str, path: &str) -> bool {
    let uri = path.replace("{id}", "1");
    let req = Request::builder().method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap()).uri(uri).body(Body::empty()).unwrap();
    let r = h.send(req).await;
    !(r.status == StatusCode::METHOD_NOT_ALLOWED || (r.status == StatusCode::NOT_FOUND && r.body.is_empty()))
}

crate::on_each_backend! {
    #[tokio::test]
    async fn the_document_and_the_router_agree() {
        let h = hub();
        let doc = h.get("/api/v1/openapi.json", None).await.json();
        let documented: BTreeMap<String, BTreeSet<String>> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(p, item)| (p.clone(), item.as_object().unwrap().keys().filter(|k| METHODS.contains(&k.as_str())).cloned().collect()))
            .collect();

        let mut problems = Vec::new();
        for (path, methods) in &documented {
            for m in METHODS {
                match (methods.contains(m), served(&h, m, path).await) {
                    (true, false) => problems.push(format!("documented but not served: {} {path}", m.to_uppercase())),
                    (false, true) => problems.push(format!("served but not documented: {} {path}", m.to_uppercase())),
                    _ => {}
                }
            }
        }
        let source = routes_in_source();
        assert!(source.len() > 30, "route scan found only {source:?}");
        for path in &source {
            let page = ward_hub::openapi::DASHBOARD_PAGES.contains(&path.as_str());
            match (documented.contains_key(path), page) {
                (false, false) => problems.push(format!("route not in the OpenAPI document (nor a dashboard page): {path}")),
                (true, true) => problems.push(format!("{path} is both documented and listed as a dashboard page")),
                _ => {}
            }
        }
        for page in ward_hub::openapi::DASHBOARD_PAGES {
            if !source.contains(*page) {
                problems.push(format!("dashboard page {page} is no route any more"));
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
