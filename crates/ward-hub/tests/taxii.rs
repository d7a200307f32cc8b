//! The TAXII 2.1 server on both stores: discovery, collections, paging with stateless cursors
//! and exact `added_after` resumption (thousands of objects added in one instant, concurrent
//! writers), every collection read by every kind of account, POST with per-object validation
//! and status, the publisher (versions, revocations; every object through OASIS's validator),
//! and the real `taxii2-client` (Python) against a hub on loopback.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use common::*;
use serde_json::{json, Value};
use ward_hub::model::{now_ms, Role};
use ward_hub::share::accounts::Collection;
use ward_hub::share::objects::{NewObject, COLLECTION_COMMUNITY, COLLECTION_HUB, COLLECTION_INBOX};
use ward_hub::share::stix::{self, Common, IdSpace, Observable};
use ward_hub::share::taxii::{MEDIA_TAXII, MAX_PAGE};
use ward_model::tlp::Tlp;

const T0: i64 = 1_793_710_800_000; // 2026-11-03T13:00:00Z

#[derive(Clone)]
enum Auth {
    Basic(String, String),
    Bearer(String),
    None,
}

fn basic(user: &str, pass: &str) -> Auth {
    Auth::Basic(user.to_string(), pass.to_string())
}

fn request(method: &str, path: &str, auth: &Auth) -> axum::http::request::Builder {
    let b = Request::builder().method(method).uri(path).header("accept", MEDIA_TAXII);
    match auth {
        Auth::Basic(u, p) => b.header("authorization", format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")))),
        Auth::Bearer(t) => b.header("authorization", format!("Bearer {t}")),
        Auth::None => b,
    }
}

async fn taxii_get(h: &Hub, path: &str, auth: &Auth) -> Resp {
    let r = h.send(request("GET", path, auth).body(Body::empty()).unwrap()).await;
    assert_eq!(r.headers["content-type"], MEDIA_TAXII, "{path}: every TAXII response is TAXII JSON ({})", r.text());
    r
}

async fn taxii_post(h: &Hub, path: &str, auth: &Auth, body: &Value) -> Resp {
    let r = h.send(request("POST", path, auth).header("content-type", MEDIA_TAXII).body(Body::from(body.to_string())).unwrap()).await;
    assert_eq!(r.headers["content-type"], MEDIA_TAXII, "{path}: {}", r.text());
    r
}

fn objects_path(c: Collection) -> String {
    format!("/taxii2/api/collections/{}/objects/", c.id())
}

/// A valid STIX indicator named `name`, marked `tlp` (not stored).
fn indicator(name: &str, tlp: Tlp, modified_ms: i64) -> Value {
    let ids = IdSpace::for_hub("taxii-test");
    let c = Common { created_ms: T0, modified_ms, tlp, created_by_ref: None, revoked: false, confidence: Some(50) };
    let ob = Observable::from_kind("domain", &format!("{name}.example")).unwrap();
    let mut v = stix::indicator(&ids.id("indicator", name), &ob, name, T0, None, &[], &c);
    v["name"] = json!(name);
    v
}

fn new_object(v: &Value, tlp: Tlp, jurisdiction: Option<i64>) -> NewObject {
    let modified = v["modified"].as_str().unwrap().to_string();
    NewObject {
        object_id: v["id"].as_str().unwrap().to_string(),
        object_type: v["type"].as_str().unwrap().to_string(),
        spec_version: "2.1".into(),
        version_us: ward_hub::share::taxii::parse_timestamp_us(&modified).unwrap(),
        version: modified,
        tlp,
        jurisdiction_id: jurisdiction,
        content_hash: ward_hub::share::publish::content_hash(v),
        body: v.to_string(),
    }
}

/// Names of the objects in an envelope.
fn names(v: &Value) -> BTreeSet<String> {
    v["objects"].as_array().into_iter().flatten().map(|o| o["name"].as_str().unwrap_or("?").to_string()).collect()
}

/// Creates an API key through the analyst API; returns (key_id, secret).
async fn api_key(h: &Hub, analyst: &str, body: Value) -> (String, String) {
    let r = h.post_json("/api/v1/api-keys", Some(analyst), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let v = r.json();
    (v["api_key"]["key_id"].as_str().unwrap().to_string(), v["key"].as_str().unwrap().to_string())
}

/// Runs the OASIS validator and parser over objects (as tests/stix.rs does); only warning 103
/// (deterministic UUIDv5 ids) is accepted.
fn oasis_check(objects: &[Value]) {
    let warnings = common::oasis::check(&stix::bundle(objects.to_vec()));
    let bad: Vec<&String> = warnings.iter().filter(|l| !l.contains("{103}")).collect();
    assert!(bad.is_empty(), "{bad:#?}");
}

on_each_backend! {
    #[tokio::test]
    async fn discovery_api_root_collections_and_media_types() {
        let h = hub();
        h.user("analyst", Role::Analyst, None);
        let a = basic("analyst", PASSWORD);
        let d = taxii_get(&h, "/taxii2/", &a).await;
        assert_eq!(d.status, StatusCode::OK, "{}", d.text());
        assert_eq!(d.json()["api_roots"][0], "http://localhost/taxii2/api/");
        let root = taxii_get(&h, "/taxii2/api/", &a).await;
        assert_eq!(root.json()["versions"][0], MEDIA_TAXII);
        assert!(root.json()["max_content_length"].as_u64().unwrap() > 0);
        let cols = taxii_get(&h, "/taxii2/api/collections/", &a).await.json();
        let ids: BTreeSet<&str> = cols["collections"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [Collection::Hub, Collection::Community, Collection::Inbox].iter().map(|c| c.id()).collect());
        let one = taxii_get(&h, &format!("/taxii2/api/collections/{}/", Collection::Inbox.id()), &a).await.json();
        assert_eq!((one["can_read"].as_bool(), one["can_write"].as_bool()), (Some(true), Some(true)));

        // Errors are TAXII error messages with the TAXII content type.
        let none = taxii_get(&h, "/taxii2/", &Auth::None).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED);
        assert_eq!(none.json()["http_status"], "401");
        assert_eq!(taxii_get(&h, "/taxii2/", &basic("analyst", "wrong password here")).await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(taxii_get(&h, "/taxii2/", &Auth::Bearer("wtk_0000".into())).await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(taxii_get(&h, "/taxii2/api/nothing/", &a).await.status, StatusCode::NOT_FOUND);
        assert_eq!(taxii_get(&h, "/taxii2/api/collections/00000000-0000-0000-0000-000000000000/objects/", &a).await.status, StatusCode::NOT_FOUND);
        let mut wrong_accept = request("GET", "/taxii2/", &a).body(Body::empty()).unwrap();
        wrong_accept.headers_mut().insert("accept", "application/json".parse().unwrap());
        let r = h.send(wrong_accept).await;
        assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
        assert_eq!(r.headers["content-type"], MEDIA_TAXII);
        let r = h.send(request("DELETE", "/taxii2/api/", &a).body(Body::empty()).unwrap()).await;
        assert_eq!(r.headers["content-type"], MEDIA_TAXII);
        assert!(r.status.is_client_error());
        let r = h.send(request("POST", &objects_path(Collection::Inbox), &a).header("content-type", "application/json").body(Body::from("{}")).unwrap()).await;
        assert_eq!((r.status, r.headers["content-type"].to_str().unwrap()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, MEDIA_TAXII));
        for bad in ["?added_after=yesterday", "?limit=x", "?next=garbage", "?match[colour]=red", "?match[id]=nope"] {
            let r = taxii_get(&h, &format!("{}{bad}", objects_path(Collection::Community)), &a).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text());
        }
        // An empty collection is an empty envelope.
        let empty = taxii_get(&h, &objects_path(Collection::Community), &a).await;
        assert_eq!(empty.json(), json!({"more": false}));
    }

    #[tokio::test]
    async fn thousands_added_in_one_instant_page_and_resume_exactly() {
        let h = hub();
        h.user("analyst", Role::Analyst, None);
        let a = basic("analyst", PASSWORD);
        let token = h.login("analyst").await;
        const N: usize = 3_000;
        let instant = ward_hub::model::now_us();
        let all: Vec<NewObject> = (0..N).map(|i| new_object(&indicator(&format!("n{i}"), Tlp::Green, T0), Tlp::Green, None)).collect();
        // Three writes with the same clock reading: every date_added is still distinct.
        for chunk in all.chunks(1000) {
            let added = h.db(|s| s.taxii_add(COLLECTION_COMMUNITY, "test", chunk, instant)).unwrap();
            assert!(added.iter().all(Option::is_some));
        }
        // Paging by `next`, a page of 333 at a time, through a session bearer.
        let bearer = Auth::Bearer(token);
        let mut seen = Vec::new();
        let mut last_added = String::new();
        let mut next: Option<String> = None;
        loop {
            let q = match &next { Some(n) => format!("?limit=333&next={n}"), None => "?limit=333".into() };
            let r = taxii_get(&h, &format!("{}{q}", objects_path(Collection::Community)), &bearer).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            let first = r.headers["x-taxii-date-added-first"].to_str().unwrap().to_string();
            assert!(first > last_added, "pages are in date_added order: {first} after {last_added}");
            last_added = r.headers["x-taxii-date-added-last"].to_str().unwrap().to_string();
            let v = r.json();
            seen.extend(v["objects"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap().to_string()));
            if v["more"] == false {
                assert!(v.get("next").is_none());
                break;
            }
            next = Some(v["next"].as_str().unwrap().to_string());
        }
        assert_eq!(seen.len(), N, "nothing twice");
        assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), N, "nothing missed");

        // Resuming by added_after = the last page's X-TAXII-Date-Added-Last, 250 at a time:
        // the same objects, none twice, none missed (every object has its own date_added).
        let mut resumed = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let q = match &after { Some(t) => format!("?limit=250&added_after={t}"), None => "?limit=250".into() };
            let r = taxii_get(&h, &format!("{}{q}", objects_path(Collection::Community)), &a).await;
            let v = r.json();
            let Some(objects) = v["objects"].as_array() else { break };
            resumed.extend(objects.iter().map(|o| o["name"].as_str().unwrap().to_string()));
            after = Some(r.headers["x-taxii-date-added-last"].to_str().unwrap().replace('+', "%2B"));
        }
        assert_eq!(resumed, seen, "added_after resumption gives exactly the same sequence");

        // The manifest pages the same way; its date_added values are distinct microseconds.
        let m = taxii_get(&h, &format!("{}?limit={MAX_PAGE}", format!("/taxii2/api/collections/{}/manifest/", Collection::Community.id())), &a).await.json();
        let dates: BTreeSet<&str> = m["objects"].as_array().unwrap().iter().map(|e| e["date_added"].as_str().unwrap()).collect();
        assert_eq!(dates.len(), MAX_PAGE);
        assert_eq!(m["more"], true);

        // The cursor is stateless: a new hub state over the same store (a restart, another
        // replica) continues from it.
        let r = taxii_get(&h, &format!("{}?limit=10", objects_path(Collection::Community)), &a).await;
        let cursor = r.json()["next"].as_str().unwrap().to_string();
        let other = HubWithState::new(&h);
        let r2 = other.get(&format!("{}?limit=10&next={cursor}", objects_path(Collection::Community)), &a).await;
        assert_eq!(names(&r2), seen[10..20].iter().cloned().collect());
    }

    #[tokio::test]
    async fn concurrent_writers_never_let_a_reader_page_past_a_later_commit() {
        // Several writers (on PostgreSQL, several stores: separate connections, as replicas)
        // insert while a reader resumes by added_after; when they are done the reader must
        // have every object exactly once.
        let h = hub();
        let writers: Vec<std::sync::Arc<dyn ward_hub::store::Store>> = (0..4).map(|_| if h.on_postgres() { open_store(&h.state.config) } else { h.store.clone() }).collect();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let store = h.store.clone();
        let reader = {
            let done = done.clone();
            std::thread::spawn(move || {
                let scope = Collection::Community.scope(&analyst_account());
                let mut after = (i64::MIN, i64::MIN);
                let mut seen = Vec::new();
                loop {
                    let finished = done.load(std::sync::atomic::Ordering::Acquire);
                    let q = ward_hub::share::objects::ObjectQuery {
                        scope: scope.clone(),
                        after,
                        ids: vec![],
                        types: vec![],
                        spec_versions: vec![],
                        versions: ward_hub::share::objects::VersionFilter::last(),
                        limit: 50,
                        with_body: false,
                    };
                    let page = store.taxii_objects(&q).unwrap();
                    if let Some(last) = page.last() {
                        after = (last.date_added_us, i64::MAX);
                    }
                    let empty = page.is_empty();
                    seen.extend(page.into_iter().map(|o| o.object_id));
                    if empty && finished {
                        return seen;
                    }
                }
            })
        };
        let handles: Vec<_> = writers
            .into_iter()
            .enumerate()
            .map(|(w, s)| {
                std::thread::spawn(move || {
                    for b in 0..40 {
                        let batch: Vec<NewObject> = (0..10).map(|i| new_object(&indicator(&format!("w{w}b{b}i{i}"), Tlp::Green, T0), Tlp::Green, None)).collect();
                        s.taxii_add(COLLECTION_COMMUNITY, "test", &batch, ward_hub::model::now_us()).unwrap();
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Release);
        let seen = reader.join().unwrap();
        assert_eq!(seen.len(), 4 * 40 * 10, "every object once");
        assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), seen.len());
    }

    #[tokio::test]
    async fn every_collection_with_every_kind_of_account() {
        let h = hub();
        let ja = h.jurisdiction("Adams County", "OH");
        let jb = h.jurisdiction("Baker County", "OH");
        h.user("analyst", Role::Analyst, None);
        h.user("adams-admin", Role::Admin, Some(ja));
        h.user("baker-viewer", Role::Viewer, Some(jb));
        let token = h.login("analyst").await;
        let adams_session = h.login("adams-admin").await;
        let baker_session = h.login("baker-viewer").await;
        let put = |collection: &str, name: &str, tlp: Tlp, j: Option<i64>| {
            let v = indicator(name, tlp, T0);
            let o = new_object(&v, tlp, j);
            h.db(|s| s.taxii_add(collection, "test", &[o], ward_hub::model::now_us())).unwrap();
            v["id"].as_str().unwrap().to_string()
        };
        let mut id = BTreeMap::new();
        for (c, name, tlp, j) in [
            (COLLECTION_COMMUNITY, "c-clear", Tlp::Clear, None),
            (COLLECTION_COMMUNITY, "c-green", Tlp::Green, None),
            (COLLECTION_COMMUNITY, "c-amber", Tlp::Amber, None),
            (COLLECTION_COMMUNITY, "c-strict-a", Tlp::AmberStrict, Some(ja)),
            (COLLECTION_COMMUNITY, "c-strict-none", Tlp::AmberStrict, None),
            (COLLECTION_COMMUNITY, "c-sight-a", Tlp::Amber, Some(ja)),
            (COLLECTION_COMMUNITY, "c-sight-b", Tlp::Amber, Some(jb)),
            (COLLECTION_COMMUNITY, "c-red", Tlp::Red, None),
            (COLLECTION_HUB, "h-amber", Tlp::Amber, None),
            (COLLECTION_HUB, "h-sight-a", Tlp::Amber, Some(ja)),
            (COLLECTION_HUB, "h-sight-b", Tlp::Amber, Some(jb)),
            (COLLECTION_HUB, "h-strict-b", Tlp::AmberStrict, Some(jb)),
            (COLLECTION_HUB, "h-red-a", Tlp::Red, Some(ja)),
            (COLLECTION_INBOX, "i-green", Tlp::Green, None),
        ] {
            id.insert(name, put(c, name, tlp, j));
        }
        let peer = api_key(&h, &token, json!({"name": "ohio peer hub", "scopes": ["taxii-read"], "name_jurisdictions": true})).await;
        let partner = api_key(&h, &token, json!({"name": "vendor", "scopes": ["taxii-read"], "max_tlp": "TLP:GREEN"})).await;
        let adams_key = api_key(&h, &token, json!({"name": "adams siem", "scopes": ["taxii-read"], "max_tlp": "TLP:AMBER+STRICT", "jurisdiction_id": ja})).await;
        let adams_green = api_key(&h, &token, json!({"name": "adams public", "scopes": ["taxii-read"], "max_tlp": "TLP:GREEN", "jurisdiction_id": ja})).await;
        let writer = api_key(&h, &token, json!({"name": "isac inbox", "scopes": ["taxii-write"]})).await;
        let revoked = api_key(&h, &token, json!({"name": "old", "scopes": ["taxii-read"]})).await;
        let keys = h.get("/api/v1/api-keys", Some(&token)).await.json();
        let revoked_row = keys.as_array().unwrap().iter().find(|k| k["key_id"] == revoked.0.as_str()).unwrap()["id"].as_i64().unwrap();
        assert_eq!(h.post_json(&format!("/api/v1/api-keys/{revoked_row}/revoke"), Some(&token), json!({})).await.status, StatusCode::OK);
        assert!(!keys.to_string().contains(&peer.1), "a key's secret is never listed");

        let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<String>>();
        let community_all = ["c-clear", "c-green", "c-amber", "c-sight-a", "c-sight-b"];
        // (account, auth, expected per collection: None = 404, Some(names) = exactly these).
        let cases: Vec<(&str, Auth, [Option<BTreeSet<String>>; 4])> = vec![
            ("analyst (Basic)", basic("analyst", PASSWORD), [
                Some(set(&["h-amber", "h-sight-a", "h-sight-b", "h-strict-b"])),
                Some(set(&[&community_all[..], &["c-strict-a", "c-strict-none"]].concat())),
                None,
                Some(set(&["i-green"])),
            ]),
            ("analyst (session bearer)", Auth::Bearer(token.clone()), [
                Some(set(&["h-amber", "h-sight-a", "h-sight-b", "h-strict-b"])),
                Some(set(&[&community_all[..], &["c-strict-a", "c-strict-none"]].concat())),
                None,
                Some(set(&["i-green"])),
            ]),
            ("jurisdiction A admin (session bearer)", Auth::Bearer(adams_session.clone()), [
                None,
                Some(set(&["c-clear", "c-green", "c-amber", "c-strict-a", "c-sight-a"])),
                Some(set(&["c-clear", "c-green", "c-amber", "c-strict-a", "c-sight-a", "h-sight-a"])),
                None,
            ]),
            ("jurisdiction B viewer (session bearer)", Auth::Bearer(baker_session.clone()), [
                None,
                Some(set(&["c-clear", "c-green", "c-amber", "c-sight-b"])),
                Some(set(&["c-clear", "c-green", "c-amber", "c-sight-b", "h-sight-b", "h-strict-b"])),
                None,
            ]),
            ("peer hub key (named, AMBER)", Auth::Bearer(peer.1.clone()), [
                Some(set(&["h-amber", "h-sight-a", "h-sight-b"])),
                Some(set(&community_all)),
                None,
                None,
            ]),
            ("partner key (GREEN), Basic key_id:key", basic(&partner.0, &partner.1), [None, Some(set(&["c-clear", "c-green"])), None, None]),
            ("jurisdiction A key (AMBER+STRICT)", Auth::Bearer(adams_key.1.clone()), [
                None,
                Some(set(&["c-clear", "c-green", "c-amber", "c-strict-a", "c-sight-a"])),
                Some(set(&["c-clear", "c-green", "c-amber", "c-strict-a", "c-sight-a", "h-sight-a"])),
                None,
            ]),
            ("jurisdiction A key (GREEN)", Auth::Bearer(adams_green.1.clone()), [None, Some(set(&["c-clear", "c-green"])), Some(set(&["c-clear", "c-green"])), None]),
        ];
        for (who, auth, expected) in &cases {
            let listed = taxii_get(&h, "/taxii2/api/collections/", auth).await.json();
            let listed: BTreeSet<String> = listed["collections"].as_array().into_iter().flatten().map(|c| c["id"].as_str().unwrap().to_string()).collect();
            for (c, want) in Collection::ALL.iter().zip(expected) {
                let r = taxii_get(&h, &format!("{}?match[version]=all", objects_path(*c)), auth).await;
                let m = taxii_get(&h, &format!("/taxii2/api/collections/{}/manifest/", c.id()), auth).await;
                match want {
                    None => {
                        assert_eq!(r.status, StatusCode::NOT_FOUND, "{who} reads {c:?}: {}", r.text());
                        assert_eq!(m.status, StatusCode::NOT_FOUND, "{who} manifest {c:?}");
                        assert!(!listed.contains(c.id()), "{who} is shown {c:?}");
                    }
                    Some(want) => {
                        assert_eq!(r.status, StatusCode::OK, "{who} reads {c:?}: {}", r.text());
                        assert_eq!(&names(&r.json()), want, "{who} in {c:?}");
                        assert_eq!(m.json()["objects"].as_array().map_or(0, Vec::len), want.len(), "{who} manifest of {c:?}");
                        assert!(listed.contains(c.id()), "{who} is not shown {c:?}");
                        assert!(!r.text().contains(Tlp::Red.stix_id()), "TLP:RED served to {who}");
                    }
                }
                // Probing by id: an object this account may not read answers exactly as one that
                // does not exist; one it may read is served.
                let collections_ok = want.is_some();
                for (name, object_id) in &id {
                    let path = format!("/taxii2/api/collections/{}/objects/{object_id}/", c.id());
                    let one = taxii_get(&h, &path, auth).await;
                    let versions = taxii_get(&h, &format!("{path}versions/"), auth).await;
                    let readable = want.as_ref().is_some_and(|w| w.contains(*name));
                    if readable {
                        assert_eq!(one.status, StatusCode::OK, "{who} {name} in {c:?}");
                        assert_eq!(versions.json()["versions"].as_array().unwrap().len(), 1);
                    } else {
                        assert_eq!(one.status, StatusCode::NOT_FOUND, "{who} {name} in {c:?}");
                        assert_eq!(versions.status, StatusCode::NOT_FOUND);
                        if collections_ok {
                            let missing = taxii_get(&h, &format!("/taxii2/api/collections/{}/objects/indicator--00000000-0000-4000-8000-000000000000/", c.id()), auth).await;
                            assert_eq!(one.body, missing.body, "{who}: {name} is told apart from a missing object");
                        }
                    }
                }
            }
        }
        // HTTP Basic with a jurisdiction user's password reads as that user.
        let b = taxii_get(&h, &objects_path(Collection::Jurisdiction), &basic("baker-viewer", PASSWORD)).await;
        assert_eq!(names(&b.json()), set(&["c-clear", "c-green", "c-amber", "c-sight-b", "h-sight-b", "h-strict-b"]));
        // The writer: sees only the inbox, may write but not read it.
        let w = Auth::Bearer(writer.1.clone());
        let listed = taxii_get(&h, "/taxii2/api/collections/", &w).await.json();
        assert_eq!(listed["collections"].as_array().unwrap().len(), 1);
        assert_eq!((listed["collections"][0]["can_read"].as_bool(), listed["collections"][0]["can_write"].as_bool()), (Some(false), Some(true)));
        assert_eq!(taxii_get(&h, &objects_path(Collection::Inbox), &w).await.status, StatusCode::FORBIDDEN);
        assert_eq!(taxii_get(&h, &objects_path(Collection::Community), &w).await.status, StatusCode::NOT_FOUND);
        // Readers may not write; the revoked key is refused.
        let post = json!({"objects": [indicator("x", Tlp::Green, T0)]});
        assert_eq!(taxii_post(&h, &objects_path(Collection::Inbox), &Auth::Bearer(peer.1.clone()), &post).await.status, StatusCode::NOT_FOUND);
        assert_eq!(taxii_post(&h, &objects_path(Collection::Community), &basic("analyst", PASSWORD), &post).await.status, StatusCode::FORBIDDEN);
        assert_eq!(taxii_get(&h, "/taxii2/", &Auth::Bearer(revoked.1.clone())).await.status, StatusCode::UNAUTHORIZED);
        // A key's id with another key's secret is refused.
        assert_eq!(taxii_get(&h, "/taxii2/", &basic(&partner.0, &peer.1)).await.status, StatusCode::UNAUTHORIZED);
        // Only analysts manage keys; bad keys are refused with a reason.
        let adams = adams_session;
        assert_eq!(h.post_json("/api/v1/api-keys", Some(&adams), json!({"name": "x", "scopes": ["taxii-read"]})).await.status, StatusCode::FORBIDDEN);
        assert_eq!(h.get("/api/v1/api-keys", Some(&adams)).await.status, StatusCode::FORBIDDEN);
        for bad in [
            json!({"name": "r", "scopes": ["taxii-read"], "max_tlp": "TLP:RED"}),
            json!({"name": "s", "scopes": ["root"]}),
            json!({"name": "t", "scopes": []}),
            json!({"name": "u", "scopes": ["taxii-read"], "jurisdiction_id": ja, "name_jurisdictions": true}),
            json!({"name": "vendor", "scopes": ["taxii-read"]}),
            json!({"name": "w", "scopes": ["taxii-read"], "jurisdiction_id": 999}),
        ] {
            let r = h.post_json("/api/v1/api-keys", Some(&token), bad.clone()).await;
            assert!(r.status.is_client_error(), "{bad}: {}", r.text());
        }
    }

    #[tokio::test]
    async fn post_validates_each_object_and_reports_status() {
        let h = hub_with(|c| c.taxii.max_post_bytes = 64 * 1024);
        let ja = h.jurisdiction("Adams County", "OH");
        h.user("analyst", Role::Analyst, None);
        let token = h.login("analyst").await;
        let writer = api_key(&h, &token, json!({"name": "isac", "scopes": ["taxii-write"], "jurisdiction_id": ja})).await;
        let other = api_key(&h, &token, json!({"name": "other", "scopes": ["taxii-write"]})).await;
        let w = basic(&writer.0, &writer.1);
        let good = indicator("posted", Tlp::Green, T0);
        let newer = indicator("posted", Tlp::Green, T0 + 1000);
        let mut red = indicator("secret", Tlp::Red, T0);
        red["name"] = json!("secret");
        let mut unmarked = indicator("unmarked", Tlp::Green, T0);
        unmarked.as_object_mut().unwrap().remove("object_marking_refs");
        let bad_id = json!({"type": "indicator", "id": "indicator--nope", "spec_version": "2.1"});
        let envelope = json!({"objects": [good, newer, red, unmarked, bad_id, "not an object"]});
        let r = taxii_post(&h, &objects_path(Collection::Inbox), &w, &envelope).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        let status = r.json();
        assert_eq!((status["status"].as_str(), status["total_count"].as_u64(), status["success_count"].as_u64(), status["failure_count"].as_u64()), (Some("complete"), Some(6), Some(3), Some(3)));
        assert!(status["failures"].to_string().contains("TLP:RED"), "{status}");
        let status_path = format!("/taxii2/api/status/{}/", status["id"].as_str().unwrap());
        assert_eq!(taxii_get(&h, &status_path, &w).await.json(), status);
        assert_eq!(taxii_get(&h, &status_path, &basic("analyst", PASSWORD)).await.status, StatusCode::OK);
        assert_eq!(taxii_get(&h, &status_path, &Auth::Bearer(other.1.clone())).await.status, StatusCode::NOT_FOUND, "another account's status");
        // Again: the same versions are already held (success, said so), nothing duplicated.
        let again = taxii_post(&h, &objects_path(Collection::Inbox), &w, &json!({"objects": [good]})).await.json();
        assert_eq!(again["success_count"], 1);
        assert!(again["successes"][0]["message"].as_str().unwrap().contains("already"));
        // The analyst reads both versions (one object), the unmarked one as TLP:AMBER.
        let a = basic("analyst", PASSWORD);
        let all = taxii_get(&h, &format!("{}?match[version]=all", objects_path(Collection::Inbox)), &a).await.json();
        assert_eq!(all["objects"].as_array().unwrap().len(), 3);
        let last = taxii_get(&h, &objects_path(Collection::Inbox), &a).await.json();
        assert_eq!(names(&last), ["posted", "unmarked"].iter().map(|s| s.to_string()).collect());
        let first = taxii_get(&h, &format!("{}?match[version]=first&match[type]=indicator", objects_path(Collection::Inbox)), &a).await.json();
        let posted_first = first["objects"].as_array().unwrap().iter().find(|o| o["name"] == "posted").unwrap();
        assert_eq!(posted_first["modified"], good["modified"]);
        let v = taxii_get(&h, &format!("/taxii2/api/collections/{}/objects/{}/versions/", Collection::Inbox.id(), good["id"].as_str().unwrap()), &a).await.json();
        assert_eq!(v["versions"], json!([good["modified"], newer["modified"]]));
        let exact = taxii_get(&h, &format!("{}?match[version]={}", objects_path(Collection::Inbox), good["modified"].as_str().unwrap()), &a).await.json();
        assert_eq!(names(&exact), ["posted", "unmarked"].iter().map(|s| s.to_string()).collect(), "the versions made at that instant");
        assert_eq!(exact["objects"].as_array().unwrap().len(), 2);
        let typed = taxii_get(&h, &format!("{}?match[type]=campaign", objects_path(Collection::Inbox)), &a).await.json();
        assert!(typed.get("objects").is_none());
        let stored = h.db(|s| s.taxii_latest(COLLECTION_INBOX, &[unmarked["id"].as_str().unwrap().to_string()])).unwrap();
        assert_eq!(stored.len(), 1);

        // Limits: a body over max_post_bytes is 413 (TAXII JSON); not JSON is 400.
        let big = json!({"objects": (0..400).map(|i| indicator(&format!("big{i}"), Tlp::Green, T0)).collect::<Vec<_>>()});
        let r = taxii_post(&h, &objects_path(Collection::Inbox), &w, &big).await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
        let r = h.send(request("POST", &objects_path(Collection::Inbox), &w).header("content-type", MEDIA_TAXII).body(Body::from("{not json")).unwrap()).await;
        assert_eq!((r.status, r.headers["content-type"].to_str().unwrap()), (StatusCode::BAD_REQUEST, MEDIA_TAXII));
    }

    #[tokio::test]
    async fn the_publisher_stores_versions_only_on_change_and_revokes() {
        use ward_hub::ingest::{classify, parse_line, HomeNet};
        use ward_hub::model::{JurisdictionKind, NewJurisdiction};
        use ward_hub::share::publish::publish_once;
        use ward_hub::store::{CorrelationPolicy, IngestBatch};
        let h = hub();
        let names_ = ["Adams County", "Baker County", "Clark County"];
        let mut js = Vec::new();
        for (i, name) in names_.iter().enumerate() {
            let j = h.db(|s| s.create_jurisdiction(&NewJurisdiction { name: name.to_string(), kind: JurisdictionKind::County, state: Some("OH".into()), home_net: None }, 0)).unwrap().id;
            js.push(j);
            let line = r#"{"event_type":"alert","src_ip":"45.77.10.7","dest_ip":"10.0.0.1","alert":{"signature_id":1,"signature":"ET SCAN"}}"#;
            let mut ev = parse_line(line.as_bytes(), T0).unwrap();
            classify(&mut ev, &HomeNet::default());
            let batch = IngestBatch { sensor_id: j, jurisdiction_id: j, seq: i as i64 + 1, events: vec![ev], rejected: vec![], rejected_total: 0 };
            h.db(|s| s.ingest(&[batch], &CorrelationPolicy::default(), T0 + i as i64 * 1000)).unwrap();
        }
        h.user("analyst", Role::Analyst, None);
        h.user("adams", Role::Viewer, Some(js[0]));
        let config = h.state.config.taxii.clone();
        let first = h.db(|s| publish_once(s, &config, T0 + 10_000, ward_hub::model::now_us())).unwrap();
        assert!(first.stored > 10, "{first:?}");
        let again = h.db(|s| publish_once(s, &config, T0 + 20_000, ward_hub::model::now_us())).unwrap();
        assert_eq!(again.stored, 0, "nothing changed, nothing stored: {again:?}");

        let a = basic("analyst", PASSWORD);
        let hub_objects = taxii_get(&h, &objects_path(Collection::Hub), &a).await.json();
        let community = taxii_get(&h, &objects_path(Collection::Community), &a).await.json();
        let text = community.to_string();
        assert!(names_.iter().all(|n| !text.contains(n)), "the community collection names no office");
        assert!(names_.iter().all(|n| hub_objects.to_string().contains(n)), "the hub collection names them");
        let mut everything: Vec<Value> = hub_objects["objects"].as_array().unwrap().clone();
        everything.extend(community["objects"].as_array().unwrap().iter().filter(|o| !everything.contains(o)).cloned().collect::<Vec<_>>());
        let unique: BTreeMap<String, Value> = everything.into_iter().map(|o| (format!("{}{}", o["id"], o["modified"]), o)).collect();
        oasis_check(&unique.into_values().collect::<Vec<_>>());

        // A county's view: its own named sighting, no other county, no other county's sighting.
        let view = taxii_get(&h, &objects_path(Collection::Jurisdiction), &basic("adams", PASSWORD)).await.json();
        let vt = view.to_string();
        assert!(vt.contains("Adams County") && !vt.contains("Baker County") && !vt.contains("Clark County"), "{vt}");
        assert_eq!(view["objects"].as_array().unwrap().iter().filter(|o| o["type"] == "sighting").count(), 2, "its sighting, named and anonymised");

        // A rename: a new version of the campaign (a later modified), the same id.
        let campaign = h.db(|s| s.campaigns(false)).unwrap()[0].clone();
        h.db(|s| s.rename_campaign(campaign.id, "Operation Ballot Box", T0 + 30_000)).unwrap();
        let p = h.db(|s| publish_once(s, &config, T0 + 30_000, ward_hub::model::now_us())).unwrap();
        assert!(p.stored >= 2, "campaign and report, in both collections: {p:?}");
        let campaign_id = community["objects"].as_array().unwrap().iter().find(|o| o["type"] == "campaign").unwrap()["id"].as_str().unwrap().to_string();
        let versions = taxii_get(&h, &format!("/taxii2/api/collections/{}/objects/{campaign_id}/versions/", Collection::Community.id()), &a).await.json();
        let v = versions["versions"].as_array().unwrap();
        assert_eq!(v.len(), 2);
        assert!(v[1].as_str() > v[0].as_str());

        // Closing: revoked versions of the campaign and its indicators.
        h.db(|s| s.close_campaign(campaign.id, T0 + 40_000)).unwrap();
        h.db(|s| publish_once(s, &config, T0 + 40_000, ward_hub::model::now_us())).unwrap();
        let latest = taxii_get(&h, &format!("{}?match[type]=campaign,indicator", objects_path(Collection::Community)), &a).await.json();
        let latest = latest["objects"].as_array().unwrap();
        assert!(latest.len() >= 3);
        assert!(latest.iter().all(|o| o["revoked"] == true), "{latest:#?}");
        oasis_check(latest);

        // An analyst's indicator, then its removal: an indicator, then a revoked version.
        let token = h.login("analyst").await;
        let r = h.post_json("/api/v1/indicators", Some(&token), json!({"kind": "domain", "value": "ballot-lookup.example", "description": "phishing"})).await;
        assert!(r.status.is_success(), "{}", r.text());
        h.db(|s| publish_once(s, &config, now_ms(), ward_hub::model::now_us())).unwrap();
        let found = taxii_get(&h, &format!("{}?match[type]=indicator", objects_path(Collection::Hub)), &a).await.json();
        let ind = found["objects"].as_array().unwrap().iter().find(|o| o["pattern"] == "[domain-name:value = 'ballot-lookup.example']").cloned();
        assert!(ind.is_some(), "{found}");
        assert!(ind.unwrap().get("revoked").is_none());
    }

    #[tokio::test]
    async fn taxii2_client_discovers_pages_resumes_and_posts() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = common::config(dir.path());
        config.taxii.publish_interval_secs = 3600;
        let store = open_store(&config);
        let running = ward_hub::start_with_store(store.clone(), config).await.unwrap();
        let phc = ward_hub::auth::hash_password(PASSWORD).unwrap();
        db(store.as_ref(), |s| s.create_user("analyst", &phc, Role::Analyst, None, now_ms())).unwrap();
        // The publisher's first run (the hub's identity and its TLP marking) comes first, so the
        // collection's size is known while the client pages.
        let hub_identity = IdSpace::for_hub(&running.state.config.taxii.hub_name).id("identity", "hub");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while db(store.as_ref(), |s| s.taxii_latest(COLLECTION_COMMUNITY, std::slice::from_ref(&hub_identity))).unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "the publisher did not run at start");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let published = 2;
        const N: usize = 2_500;
        let objects: Vec<Value> = (0..N).map(|i| indicator(&format!("n{i}"), Tlp::Green, T0)).collect();
        let rows: Vec<NewObject> = objects.iter().map(|v| new_object(v, Tlp::Green, None)).collect();
        let instant = ward_hub::model::now_us();
        db(store.as_ref(), |s| s.taxii_add(COLLECTION_COMMUNITY, "test", &rows, instant)).unwrap();
        let out_dir = tempfile::tempdir().unwrap();
        let script = r#"
import json, sys, requests
from taxii2client.v21 import Server, Collection, as_pages
url, user, password, community, inbox, out = sys.argv[1:7]
server = Server(url + "/taxii2/", user=user, password=password)
root = server.default
assert root is not None, "no default api root"
ids = sorted(c.id for c in root.collections)
print("COLLECTIONS", ",".join(ids))
col = Collection(f"{url}/taxii2/api/collections/{community}/", user=user, password=password)
seen, pages = [], 0
for envelope in as_pages(col.get_objects, per_request=500):
    pages += 1
    seen.extend(o["id"] for o in envelope.get("objects", []))
print("PAGED", len(seen), len(set(seen)), pages)
json.dump({"type": "bundle", "id": "bundle--5d0092c5-5f74-4287-9642-33f4c354e56d", "objects": col.get_objects(limit=50)["objects"]}, open(out, "w"))
# added_after resumption from the X-TAXII-Date-Added-Last header of the first page
r = requests.get(col.url + "objects/", params={"limit": 1000}, auth=(user, password), headers={"Accept": "application/taxii+json;version=2.1"})
assert r.headers["Content-Type"] == "application/taxii+json;version=2.1"
last = r.headers["X-TAXII-Date-Added-Last"]
rest = []
for envelope in as_pages(col.get_objects, per_request=1000, added_after=last):
    rest.extend(o["id"] for o in envelope.get("objects", []))
print("RESUMED", len(rest), len(set(rest) & set(o["id"] for o in r.json()["objects"])))
# POST to the inbox and its status, then read back what came after
box = Collection(f"{url}/taxii2/api/collections/{inbox}/", user=user, password=password)
before = box.get_manifest().get("objects", [])
posted = json.load(open(out))["objects"][:5]
status = box.add_objects({"objects": posted}, wait_for_completion=True, poll_interval=1, timeout=30)
print("STATUS", status.status, status.success_count, status.failure_count)
again = box.get_objects()
print("INBOX", len(again.get("objects", [])))
m = box.get_manifest()
print("MANIFEST", len(m["objects"]), len(before))
"#;
        let out = out_dir.path().join("page.json");
        let url = running.url();
        let args: Vec<String> = [url.as_str(), "analyst", PASSWORD, Collection::Community.id(), Collection::Inbox.id(), out.to_str().unwrap()].iter().map(|s| s.to_string()).collect();
        let result = tokio::task::spawn_blocking(move || Command::new("python3").arg("-c").arg(script).args(args).output()).await.unwrap().expect("python3 is needed");
        let stdout = String::from_utf8_lossy(&result.stdout).to_string();
        assert!(result.status.success(), "taxii2-client failed (scripts/setup-test-env.sh installs it):\n{stdout}\n{}", String::from_utf8_lossy(&result.stderr));
        let total = N + published;
        assert!(stdout.contains(&format!("PAGED {total} {total} {}", total.div_ceil(500))), "{stdout}");
        assert!(stdout.contains(&format!("RESUMED {} 0", total - 1000)), "{stdout}");
        assert!(stdout.contains("STATUS complete 5 0"), "{stdout}");
        assert!(stdout.contains("INBOX 5") && stdout.contains("MANIFEST 5 0"), "{stdout}");
        let page: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        oasis_check(page["objects"].as_array().unwrap());
        running.shutdown().await;
    }
}

/// A second hub state over the same store (as after a restart, or another replica).
struct HubWithState {
    state: ward_hub::HubState,
}

impl HubWithState {
    fn new(h: &Hub) -> Self {
        HubWithState { state: ward_hub::HubState::new(h.store.clone(), (*h.state.config).clone()).unwrap() }
    }

    async fn get(&self, path: &str, auth: &Auth) -> Value {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let resp = ward_hub::app(self.state.clone()).oneshot(request("GET", path, auth).body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap()
    }
}

fn analyst_account() -> ward_hub::share::accounts::TaxiiAccount {
    ward_hub::share::accounts::TaxiiAccount { name: "user:analyst".into(), analyst: true, jurisdiction: None, max_tlp: Tlp::AmberStrict, read: true, write: true, named: true }
}

/// `ward hub api-key create | list | revoke` on a store; the key printed once works.
#[test]
fn api_keys_from_the_command_line() {
    #[derive(clap::Parser)]
    struct Ward {
        #[command(subcommand)]
        hub: ward_hub::cli::HubCommand,
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let run = |args: &[&str]| -> anyhow::Result<()> {
        use clap::Parser;
        let mut argv = vec!["ward"];
        argv.extend_from_slice(args);
        ward_hub::cli::run(Ward::try_parse_from(argv)?.hub)
    };
    run(&["jurisdiction", "add", "Adams County", "--kind", "county", "--state", "OH", "--data", data]).unwrap();
    run(&["api-key", "create", "--name", "adams siem", "--scope", "taxii-read,taxii-write", "--max-tlp", "TLP:GREEN", "--jurisdiction", "Adams County", "--data", data]).unwrap();
    assert!(run(&["api-key", "create", "--name", "red", "--scope", "taxii-read", "--max-tlp", "TLP:RED", "--data", data]).is_err());
    assert!(run(&["api-key", "create", "--name", "nope", "--scope", "admin", "--data", data]).is_err());
    assert!(run(&["api-key", "create", "--name", "adams siem", "--scope", "taxii-read", "--data", data]).is_err(), "names are unique");
    let store = ward_hub::store::open::Database::sqlite_dir(dir.path()).open().unwrap();
    let keys = store.api_keys().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!((keys[0].max_tlp, keys[0].scopes.clone(), keys[0].jurisdiction_id.is_some()), (Tlp::Green, vec!["taxii-read".to_string(), "taxii-write".to_string()], true));
    run(&["api-key", "list", "--data", data]).unwrap();
    run(&["api-key", "revoke", &keys[0].id.to_string(), "--data", data]).unwrap();
    assert!(store.api_keys().unwrap()[0].revoked_ms.is_some());
    assert!(run(&["api-key", "revoke", "999", "--data", data]).is_err());
}

/// The fuzz target's invariants (`fuzz/fuzz_targets/taxii.rs`) over mutations of query strings,
/// cursors and POST envelopes, so a regression shows in the ordinary test run.
#[test]
fn mutated_queries_cursors_and_envelopes_never_panic() {
    let seeds: Vec<Vec<u8>> = vec![
        b"added_after=2026-11-03T13:00:00.000001Z&limit=5&match[id]=indicator--6f1c2b0e-8d4a-4f7e-9b3c-5e2a7d10c4e9&match[version]=all,first".to_vec(),
        b"next=MTc5MzcxMDgwMDAwMDAwMC40Mg&match[type]=indicator,campaign&match[spec_version]=2.1".to_vec(),
        json!({"objects": [indicator("seed", Tlp::Green, T0), Tlp::Green.marking_definition()]}).to_string().into_bytes(),
    ];
    let alphabet: &[&[u8]] = &[b"&", b"=", b"%5B", b"[", b"]", b",", b"%", b"+", b"{", b"}", b"\"", b":", b"\xff", b"0", b"next=", b"match[version]="];
    mutate_each(&seeds, alphabet, 12, 0, 30_000, ward_hub::fuzz::taxii);
}
