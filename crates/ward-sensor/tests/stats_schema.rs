//! The EVE `stats` record validates against Suricata's schema whatever the counters hold: every
//! app-layer protocol ward detects, over TCP and UDP, lands under a key the schema allows.

mod common;

use serde_json::Value;
use ward_model::Timestamp;
use ward_sensor::stats::{app_layer_key, Counters, DetectCounters};

const APPS: [&str; 9] = ["http", "tls", "dns", "ssh", "smtp", "ftp", "pop3", "imap", "failed"];

fn schema() -> Value {
    let text = std::fs::read_to_string(common::shared_data().join("suricata/eve-schema.json")).expect("eve schema");
    serde_json::from_str(&text).expect("schema is JSON")
}

#[test]
fn stats_record_with_every_counter_set_validates_against_the_eve_schema() {
    let schema = schema();
    let validator = jsonschema::validator_for(&schema).expect("eve schema compiles");
    let detect = DetectCounters {
        last_reload: Timestamp::from_secs_micros(1_700_000_000, 0),
        rules_loaded: 20,
        rules_failed: 1,
        reloads: 3,
        reloads_refused: 2,
    };
    let mut c = Counters {
        capture_packets: 10,
        decoded_packets: 10,
        decoded_bytes: 1000,
        tcp_sessions: 1,
        detect: Some(detect),
        ..Default::default()
    };
    for app in APPS {
        for ipproto in [6u8, 17] {
            c.count_app_flow(app, ipproto);
            c.count_tx(app, ipproto);
        }
    }
    // Every app-layer protocol ward detects is counted for its flows (dns over both transports).
    assert_eq!(c.app_flows.get("dns_udp"), Some(&1));
    assert_eq!(c.app_flows.get("dns_tcp"), Some(&1));
    assert_eq!(c.app_tx.get("dns_udp"), Some(&1));
    assert_eq!(c.app_flows.get("failed_udp"), Some(&1));
    assert!(!c.app_tx.contains_key("failed_tcp"), "failed detection has no transactions");
    assert!(!c.app_tx.contains_key("dns"), "bare `dns` is not a schema key");
    let record = serde_json::to_value(c.to_eve(Timestamp::from_secs_micros(1_700_000_000, 0))).unwrap();
    assert_eq!(record["stats"]["detect"]["engines"][0]["rules_loaded"], 20, "{record}");
    let errors: Vec<String> = validator.iter_errors(&record).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "stats record fails the EVE schema: {errors:?}\n{record}");
}

#[test]
fn every_app_layer_key_is_one_the_schema_lists() {
    let schema = schema();
    let app_layer = &schema["properties"]["stats"]["properties"]["app_layer"]["properties"];
    for app in APPS {
        for ipproto in [6u8, 17, 1] {
            if let Some(key) = app_layer_key(app, ipproto) {
                assert!(app_layer["flow"]["properties"].get(key).is_some(), "flow key {key} not in schema");
                if !key.starts_with("failed") {
                    assert!(app_layer["tx"]["properties"].get(key).is_some(), "tx key {key} not in schema");
                }
            }
        }
    }
    assert_eq!(app_layer_key("dns", 17), Some("dns_udp"));
    assert_eq!(app_layer_key("http", 17), None, "no HTTP over UDP");
}
