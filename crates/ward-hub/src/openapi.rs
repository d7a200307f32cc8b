//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`. Written by hand next to the
//! routes in [`crate::server::app`]; a test checks that every API route appears here.

use serde_json::{json, Value};

fn op(summary: &str, auth: &str) -> Value {
    let security = match auth {
        "none" => json!([]),
        "sensor" => json!([{ "sensorCredential": [] }]),
        "sensor-or-user" => json!([{ "sensorCredential": [] }, { "session": [] }, { "sessionCookie": [] }]),
        _ => json!([{ "session": [] }, { "sessionCookie": [] }]),
    };
    json!({ "summary": summary, "security": security, "responses": { "200": { "description": "success" }, "4XX": { "description": "client error; body {\"error\": message}" } } })
}

pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": { "title": "ward hub API", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Sensor ingest, indicators, jurisdictions, campaigns and notifications. See docs/api.md." },
        "components": { "securitySchemes": {
            "sensorCredential": { "type": "http", "scheme": "bearer", "description": "credential returned by /api/v1/sensors/enroll" },
            "session": { "type": "http", "scheme": "bearer", "description": "token returned by /api/v1/login" },
            "sessionCookie": { "type": "apiKey", "in": "cookie", "name": "ward_session", "description": "mutating requests also need the x-csrf-token header" }
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
                        "400": { "description": "bad Idempotency-Key or gzip; nothing stored" },
                        "403": { "description": "the key names another sensor; nothing stored" },
                        "413": { "description": "too large or too many lines; nothing stored" },
                        "415": { "description": "unsupported Content-Encoding (send gzip or none); nothing stored" },
                        "429": { "description": "rate limited; retry with the same key" }
                    }
                },
                "get": op("list stored events (own jurisdiction unless analyst)", "user")
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
            "/api/v1/jurisdictions": { "get": op("list visible jurisdictions", "user"), "post": op("register a jurisdiction (analyst)", "user") },
            "/api/v1/jurisdictions/{id}": { "get": op("one jurisdiction", "user") },
            "/api/v1/jurisdictions/{id}/sensor-tokens": { "post": op("issue a one-time sensor enrollment token (admin of it, or analyst)", "user") },
            "/api/v1/jurisdictions/{id}/sensors": { "get": op("sensors with last-seen and lag", "user") },
            "/api/v1/jurisdictions/{id}/contacts": { "get": op("notification contacts", "user"), "post": op("add an email, webhook or syslog contact (admin of it, or analyst); a webhook without secret gets one, returned once", "user") },
            "/api/v1/users": { "get": op("list users in scope", "user"), "post": op("add a user", "user") },
            "/api/v1/campaigns": { "get": op("campaigns (analyst: all; others: their own, redacted)", "user") },
            "/api/v1/campaigns/{id}": { "get": op("one campaign", "user"), "post": op("rename, annotate, merge, confirm (publish to every sensor) or close (analyst)", "user") },
            "/api/v1/sensors/{id}/contributions": { "get": op("what one sensor contributed: keys, campaigns, published indicators, trust anomalies, hold (analyst)", "user") },
            "/api/v1/sensors/{id}/revoke": { "post": op("revoke one sensor's sightings and what they caused; the sensor is put on hold (analyst)", "user") },
            "/api/v1/sensors/{id}/release": { "post": op("end a sensor's hold (analyst)", "user") },
            "/api/v1/trust-anomalies": { "get": op("contribution-budget breaches, newest first (analyst)", "user") },
            "/api/v1/allowlist": { "get": op("registered never-block entries (analyst: all; others: their own)", "user"), "post": op("add a never-block entry {jurisdiction_id?, network, note} (analyst; a jurisdiction admin for their own, /24 at widest)", "user") },
            "/api/v1/allowlist/{id}/remove": { "post": op("remove a never-block entry (analyst, or the admin of its jurisdiction)", "user") },
            "/api/v1/notifications": { "get": op("notification log", "user") },
            "/api/v1/notifications/{id}/attempts": { "get": op("every delivery attempt of one notification", "user") },
            "/api/v1/openapi.json": { "get": op("this document", "none") },
            "/metrics": { "get": op("Prometheus metrics", "none") },
            "/healthz": { "get": op("liveness", "none") }
        }
    })
}
