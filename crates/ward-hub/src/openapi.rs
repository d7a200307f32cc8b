//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`. Written by hand next to the
//! routes in [`crate::server::app`]. It lists every route the router serves except the
//! dashboard's HTML pages and static files; `tests/hardening/openapi_routes.rs` checks it both
//! ways (every path and method here is served, every route in the source is here), so the two
//! cannot drift.

use serde_json::{json, Value};

/// Routes that are the dashboard's HTML pages and static files, left out of the document on
/// purpose (they are for browsers; docs/hub.md describes them). Every other route is in it.
pub const DASHBOARD_PAGES: &[&str] = &[
    "/",
    "/login",
    "/logout",
    "/campaigns/{id}",
    "/jurisdictions/{id}",
    "/notifications",
    "/notifications/{id}",
    "/notifications/{id}/ack",
    "/sensors/{id}",
    "/sensors/{id}/revoke",
    "/sensors/{id}/release",
    "/static/style.css",
    "/static/live.js",
    // The disinformation pages (crate::disinfo::web).
    "/disinfo",
    "/disinfo/report",
    "/disinfo/cases/{id}",
    "/disinfo/cases/{id}/status",
    "/disinfo/cases/{id}/publish",
    "/disinfo/cases/{id}/unpublish",
];

fn op(summary: &str, auth: &str) -> Value {
    let security = match auth {
        "none" => json!([]),
        "sensor" => json!([{ "sensorCredential": [] }]),
        "sensor-or-user" => json!([{ "sensorCredential": [] }, { "session": [] }, { "sessionCookie": [] }]),
        "metrics" => json!([{ "metricsToken": [] }, { "session": [] }, { "sessionCookie": [] }]),
        "taxii" => json!([{ "taxiiBasic": [] }, { "apiKey": [] }, { "session": [] }]),
        _ => json!([{ "session": [] }, { "sessionCookie": [] }]),
    };
    json!({ "summary": summary, "security": security, "responses": { "200": { "description": "success" }, "4XX": { "description": "client error; body {\"error\": message}" } } })
}

pub fn document() -> Value {
    let mut doc = core_document();
    if let (Some(paths), Value::Object(more)) = (doc["paths"].as_object_mut(), sharing_paths()) {
        paths.extend(more);
    }
    // Feeds (crate::share::feeds): added here, the one json! below is at the macro's depth limit.
    let paths = &mut doc["paths"];
    paths["/api/v1/feeds"] = json!({
        "get": op("feeds the hub polls, with their state, counts and last error (analysts)", "user"),
        "post": op(FEED_POST, "user")
    });
    paths["/api/v1/feeds/{id}"] = json!({ "get": op("one feed and the indicators it holds (analysts)", "user") });
    paths["/api/v1/feeds/{id}/poll"] = json!({ "post": op("poll the feed now; the report says what changed (analysts)", "user") });
    paths["/api/v1/feeds/{id}/remove"] = json!({ "post": op("remove the feed and withdraw its indicators (analysts)", "user") });
    paths["/api/v1/federation"] = json!({ "get": op("peer hubs: each peer's push state, the indicators peers sent with who sent them and their sightings, and the disinformation cases peers sent (analysts)", "user") });
    // Acknowledgements and escalation (crate::ack; docs/hub.md).
    paths["/api/v1/notifications/{id}/ack"] = json!({
        "get": op("the notification's acknowledgement {ack: {notification_id, acked_ms, acked_by, action, note} or null, escalations: [{campaign_id, jurisdiction_id, step, kind: contact|state|end, priority, told_jurisdiction_id, notifications, created_ms}]}", "user"),
        "post": op(ACK_POST, "user")
    });
    paths["/api/v1/notifications/ack-stats"] = json!({
        "get": op("time to acknowledge per jurisdiction over ?days= (default 30, ≤ 366) and ?jurisdiction_id=: {days, jurisdictions: [{jurisdiction_id, name, warnings, acknowledged, unacked, median_secs, p90_secs}]} (analysts: all; a state: itself and its counties; others: their own)", "user")
    });
    // Drill jurisdictions (crate::drill; docs/hub.md "Drill jurisdictions").
    paths["/api/v1/drill/purge"] = json!({
        "post": op("delete every drill jurisdiction with everything it owns and the campaigns left with no jurisdiction, in one transaction (analysts); returns the counts {jurisdictions, sensors, users, contacts, campaigns, notifications, events, sightings, contact_records, retro_hits, api_keys, indicators_withdrawn, other_rows}", "user")
    });
    paths["/ack/{id}"] = json!({
        "get": op("the one-click acknowledgement page of a signed link ?c=CONTACT&e=EXPIRY&s=SIGNATURE (HTML, changes nothing); 404 for a link not signed by this hub, 410 for an expired one", "none"),
        "post": op("acknowledge through a signed link (the page's button, or a tool posting a webhook's ack_url); optional form fields action and note; 404/410 as for GET", "none")
    });
    // Disinformation reports and cases (crate::disinfo; docs/disinformation.md).
    paths["/api/v1/disinfo/reports"] = json!({
        "get": op("disinformation reports your jurisdiction filed (a state: also its counties'; analysts: all) ?limit= (≤ 500)", "user"),
        "post": op(DISINFO_POST, "user")
    });
    paths["/api/v1/disinfo/reports/{id}"] = json!({ "get": op("one report, in full, to its jurisdiction, its state and analysts (404 for anyone else)", "user") });
    paths["/api/v1/disinfo/cases"] = json!({ "get": op("the cases your jurisdiction reported or is concerned by, with other jurisdictions only counted (analysts: all)", "user") });
    paths["/api/v1/disinfo/cases/{id}"] = json!({ "get": op("a case {case, reports, timeline}: other offices' reports without reporter, office or screenshots (404 when you are not part of it)", "user") });
    paths["/api/v1/disinfo/cases/{id}/status"] = json!({ "post": op("move a case forward {status: triaged|referred|outcome|closed, referred_to? (for referred), outcome?: removed|labelled|no-action|no-answer (for outcome), note?} (analysts; 409 backwards)", "user") });
    paths["/api/v1/disinfo/screenshots/{sha256}"] = json!({ "get": op("a screenshot (PNG, JPEG or WebP, metadata stripped) to those who read a report carrying it", "user") });
    paths["/rumors/{state}"] = json!({ "get": op("the public \"rumor vs reality\" page of a state (two-letter code; no login): the published cases concerning its jurisdictions, as HTML, or as JSON at /rumors/{state}.json {state, rumors: [{claim, facts, citation, category, published_ms, published}]}; never who reported, the office, the posts' URLs or screenshots", "none") });
    doc
}

/// `POST /api/v1/disinfo/reports`'s summary.
const DISINFO_POST: &str = "file a disinformation report: JSON {urls (≤ 50), platform, category: voting-logistics|eligibility|fraud-claim|impersonation|threat|doctored-results|other, urgency?: high|normal, claim, truth, citation, concerns?: [jurisdiction ids], seen_at?, views?, shares?, disarm?: [DISARM technique ids], screenshots?: [base64], jurisdiction_id? (analysts filing on behalf)} or multipart/form-data (a report part with that JSON, screenshot file parts); 201 {report, case: {id, status, new, joined_by: new|url|claim, reports}}";

/// `POST /api/v1/notifications/{id}/ack`'s summary.
const ACK_POST: &str = "acknowledge a notification, optional body {action?: blocked|investigating|not-relevant, note?} (users of its jurisdiction, its state, analysts; 404 for anyone else); a second acknowledgement keeps the first time and author and may set the action";

/// `POST /api/v1/feeds`'s summary.
const FEED_POST: &str = "add a feed {name, kind: taxii|misp|csv, url, collection?, column?, username?/password? or token?, types?, min_confidence?, default_confidence?, max_indicators?, tlp?, expire_days?, interval_secs?, enabled?} (analysts)";

/// API keys and the TAXII 2.1 server (a separate literal: one `json!` this size overflows the
/// macro recursion limit).
fn sharing_paths() -> Value {
    json!({
            // API keys (crate::share::accounts)
            "/api/v1/api-keys": { "get": op("every API key, never a secret (analyst)", "user"), "post": op("create an API key {name, scopes:[taxii-read|taxii-write], max_tlp?, jurisdiction_id?, name_jurisdictions?, client_cert?: PEM} (analyst); the key is in the reply once", "user") },
            "/api/v1/api-keys/{id}/revoke": { "post": op("revoke an API key; it stops working at once (analyst)", "user") },
            "/api/v1/api-keys/{id}/client-cert": { "post": op("bind an API key to a TLS client certificate {client_cert: PEM}, or unbind it {client_cert: null} (analyst; mutual TLS, docs/sharing.md)", "user") },
            // TAXII 2.1 (crate::share::taxii; docs/sharing.md): every answer is application/taxii+json;version=2.1
            "/taxii2/": { "get": op("TAXII 2.1 discovery", "taxii") },
            "/taxii2": { "get": op("TAXII: 404 (the discovery URL ends in /)", "taxii") },
            "/taxii2/api/": { "get": op("TAXII 2.1 API root", "taxii") },
            "/taxii2/api/collections/": { "get": op("TAXII collections this account may read or write", "taxii") },
            "/taxii2/api/collections/{collection}/": { "get": op("one TAXII collection", "taxii") },
            "/taxii2/api/collections/{collection}/objects/": {
                "get": op("TAXII objects: added_after, limit (≤ 1000), next, match[id|type|version|spec_version]; headers X-TAXII-Date-Added-First/Last", "taxii"),
                "post": op("TAXII add objects (an envelope); 202 with a complete status resource", "taxii")
            },
            "/taxii2/api/collections/{collection}/objects/{object}/": { "get": op("TAXII one object (match[version] default last)", "taxii") },
            "/taxii2/api/collections/{collection}/objects/{object}/versions/": { "get": op("TAXII versions of one object", "taxii") },
            "/taxii2/api/collections/{collection}/manifest/": { "get": op("TAXII manifest: id, date_added, version, media_type per object", "taxii") },
            "/taxii2/api/status/{status}/": { "get": op("TAXII status resource of a POST (its poster, or analysts)", "taxii") },
            "/taxii2/{*rest}": {
                "get": op("any other path under /taxii2/: a TAXII error 404", "taxii"),
                "post": op("any other path under /taxii2/: a TAXII error 404", "taxii"),
                "put": op("any other path under /taxii2/: a TAXII error 404", "taxii"),
                "delete": op("any other path under /taxii2/: a TAXII error 404", "taxii")
            }
    })
}

fn core_document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": { "title": "ward hub API", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Sensor ingest, indicators, jurisdictions, campaigns and notifications. See docs/api.md." },
        "components": { "securitySchemes": {
            "sensorCredential": { "type": "http", "scheme": "bearer", "description": "credential returned by /api/v1/sensors/enroll" },
            "session": { "type": "http", "scheme": "bearer", "description": "token returned by /api/v1/login" },
            "sessionCookie": { "type": "apiKey", "in": "cookie", "name": "ward_session", "description": "mutating requests also need the x-csrf-token header" },
            "metricsToken": { "type": "http", "scheme": "bearer", "description": "the scraper token whose SHA-256 is [metrics] token_sha256 in the hub's config" },
            "taxiiBasic": { "type": "http", "scheme": "basic", "description": "TAXII: a hub user's name and password, or an API key's key_id and key" },
            "apiKey": { "type": "http", "scheme": "bearer", "description": "TAXII: an API key (ward hub api-key create, or POST /api/v1/api-keys)" }
        }},
        "paths": {
            "/api/v1/sensors/enroll": { "post": op("exchange a one-time enrollment token for a sensor credential", "none") },
            "/api/v1/events": {
                "post": {
                    "summary": "ingest a batch of EVE events as NDJSON (Content-Encoding: gzip accepted)",
                    "security": [{ "sensorCredential": [] }],
                    "parameters": [{ "name": "Idempotency-Key", "in": "header", "required": true, "schema": { "type": "string", "pattern": "^[0-9]+:[0-9]+$" }, "description": "SENSOR_ID:SEQUENCE" }],
                    "requestBody": { "content": { "application/x-ndjson": {} } },
                    "responses": {
                        "200": { "description": "durable; body {sensor_id, seq, accepted, rejected_total, rejected:[{line, reason}], duplicate}" },
                        "400": { "description": "bad Idempotency-Key, bad gzip or bytes after the last gzip member; nothing stored" },
                        "403": { "description": "the key names another sensor; nothing stored" },
                        "408": { "description": "the body came too slowly (see limits.body_timeout_secs); nothing stored; retry with the same key" },
                        "413": { "description": "too large or too many lines; nothing stored" },
                        "415": { "description": "unsupported Content-Encoding (send gzip or none); nothing stored" },
                        "429": { "description": "rate limited, or the sensor already has 4 batches in flight; retry with the same key after Retry-After" }
                    }
                },
                "get": {
                    "summary": "list stored events, newest first (own jurisdiction unless analyst); at most limit (≤ 1000) events and 8 MiB per page",
                    "security": [{ "session": [] }, { "sessionCookie": [] }],
                    "parameters": [
                        { "name": "jurisdiction_id", "in": "query", "schema": { "type": "integer" } },
                        { "name": "event_type", "in": "query", "schema": { "type": "string" } },
                        { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } },
                        { "name": "before", "in": "query", "schema": { "type": "integer" }, "description": "only events with a smaller id: the Ward-Next-Before of the previous page" }
                    ],
                    "responses": {
                        "200": {
                            "description": "[{id, jurisdiction_id, sensor_id, event_type, ts_ms, remote_ip, signature, truncated, body}]; truncated events carry body.ward_truncated {original_bytes, dropped_total, dropped}",
                            "headers": {
                                "Link": { "description": "<…&before=ID>; rel=\"next\" when more events remain", "schema": { "type": "string" } },
                                "Ward-Next-Before": { "description": "the before value of the next page, when more events remain", "schema": { "type": "integer" } }
                            }
                        },
                        "4XX": { "description": "client error; body {\"error\": message}" }
                    }
                }
            },
            "/api/v1/indicators": { "get": {
                "summary": "indicator deltas after a cursor; wait=SECONDS long-polls (max 60)",
                "security": [{ "sensorCredential": [] }, { "session": [] }],
                "parameters": [
                    { "name": "since", "in": "query", "schema": { "type": "integer" } },
                    { "name": "wait", "in": "query", "schema": { "type": "integer", "maximum": 60 } }
                ],
                "responses": { "200": { "description": "{cursor, indicators:[{seq, action, kind, value, campaign_id, ts_ms}], tlp}" } }
            },
                // retro-hunt (crate::retro)
                "post": op("add an analyst indicator {value, kind?, description, severity?, expires?} (analyst); it joins the feed and is retro-hunted", "user")
            },
            "/api/v1/retrohunts": { "get": op("retro-hunt hits: contact before an indicator appeared (analyst: all, ?jurisdiction=; others: their own)", "user") },
            "/api/v1/login": { "post": op("log in; returns a bearer token and CSRF token, sets the session cookie", "none") },
            "/api/v1/logout": { "post": op("end the session", "user") },
            "/api/v1/me": { "get": op("the current user", "user") },
            "/api/v1/jurisdictions": { "get": op("list visible jurisdictions", "user"), "post": op("register a jurisdiction {name, kind: state|county|city, state?, home_net?, drill?: true (a drill jurisdiction: its messages are marked, it never counts towards publication, POST /api/v1/drill/purge deletes it)} (analyst); the reply shows drill", "user") },
            "/api/v1/jurisdictions/{id}": { "get": op("one jurisdiction", "user") },
            "/api/v1/jurisdictions/{id}/sensor-tokens": { "post": op("issue a one-time sensor enrollment token (admin of it, or analyst)", "user") },
            "/api/v1/jurisdictions/{id}/sensors": { "get": op("sensors with last-seen and lag", "user") },
            "/api/v1/jurisdictions/{id}/contacts": { "get": op("notification contacts", "user"), "post": op("add an email, webhook or syslog contact (admin of it, or analyst); a webhook without secret gets one, returned once", "user") },
            "/api/v1/users": { "get": op("list users in scope", "user"), "post": op("add a user; 409 \"this username is not available\" when the name is taken anywhere; 429 after repeated 409s", "user") },
            "/api/v1/campaigns": { "get": op("campaigns (analyst: all; others: their own, redacted)", "user") },
            "/api/v1/campaigns/{id}": { "get": op("one campaign", "user"), "post": op("rename, annotate, merge, confirm (publish to every sensor) or close (analyst): a JSON object with at least one of name, annotation, merge_from, confirm:true, close:true (400 otherwise)", "user") },
            "/api/v1/sensors/{id}/contributions": { "get": op("what one sensor contributed: keys, campaigns, published indicators, trust anomalies, hold (analyst)", "user") },
            "/api/v1/sensors/{id}/revoke": { "post": op("revoke one sensor's sightings and what they caused; the sensor is put on hold (analyst)", "user") },
            "/api/v1/sensors/{id}/release": { "post": op("end a sensor's hold (analyst)", "user") },
            "/api/v1/trust-anomalies": { "get": op("contribution-budget breaches, newest first (analyst)", "user") },
            "/api/v1/allowlist": { "get": op("registered never-block entries (analyst: all; others: their own)", "user"), "post": op("add a never-block entry {jurisdiction_id?, network, note} (analyst; a jurisdiction admin for their own, /24 at widest)", "user") },
            "/api/v1/allowlist/{id}/remove": { "post": op("remove a never-block entry (analyst, or the admin of its jurisdiction)", "user") },
            "/api/v1/notifications": { "get": op("notification log", "user") },
            "/api/v1/notifications/{id}/attempts": { "get": op("every delivery attempt of one notification", "user") },
            "/api/v1/openapi.json": { "get": op("this document", "none") },
            "/api/v1/jurisdictions/{id}/scan-assets": {
                "get": op("a jurisdiction's registered scan assets (readers of it)", "user"),
                "post": op("register an asset {value, kind?: address|network|hostname} (admin of it, or analyst)", "user")
            },
            "/api/v1/jurisdictions/{id}/scan-blackouts": {
                "get": op("a jurisdiction's scan blackouts (readers of it)", "user"),
                "post": op("add a blackout {starts_ms, ends_ms, reason}: no scans in it (admin of it, or analyst)", "user")
            },
            "/api/v1/scan/targets": { "post": op("what a scanner may scan now for {jurisdiction, targets?}: 403 outside the registered assets, 409 during a blackout", "user") },
            "/api/v1/scan/jobs/claim": { "post": op("a worker {worker} leases the next due jurisdiction it may scan; 204 when none is due", "user") },
            "/api/v1/scan/results": {
                "get": op("stored scan results of ?jurisdiction=NAME, oldest first", "user"),
                "post": op("upload a ward scan result (JSON) for ?jurisdiction=NAME; refused whole when anything lies outside its assets", "user")
            },
            "/api/v1/scan/report": { "put": op("upload the weekly report {html, pdf_base64} for ?jurisdiction=NAME", "user") },
            "/scan/{id}/report.html": { "get": op("the latest weekly scan report of jurisdiction {id}, served sandboxed (CSP sandbox, no scripts or forms)", "user") },
            "/scan/{id}/report.pdf": { "get": op("the latest weekly scan report as PDF", "user") },
            "/metrics": { "get": op("Prometheus metrics (an analyst's session or the configured scraper token; 401/403 otherwise)", "metrics") },
            "/healthz": { "get": op("liveness", "none") }
        }
    })
}
