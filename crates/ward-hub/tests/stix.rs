//! Every kind of STIX object the hub writes, at every TLP level, checked by OASIS's own tools:
//! `stix2-validator` 3.2.0 (the last release that ships its JSON schemas) and the `stix2`
//! library's parser. Both are installed by `scripts/setup-test-env.sh`.

mod common;

use common::mutate_each;

use serde_json::{json, Value};
use ward_hub::share::stix::{self, Common, IdSpace, Observable, StixObject};
use ward_model::tlp::Tlp;

const T0: i64 = 1_793_710_800_000; // 2026-11-03T13:00:00Z

use common::oasis::check as oasis_check;

fn common(tlp: Tlp, hub_identity: &str) -> Common {
    Common { created_ms: T0, modified_ms: T0 + 60_000, tlp, created_by_ref: Some(hub_identity.to_string()), revoked: false, confidence: Some(70) }
}

/// One of everything, as a campaign's export builds it.
fn everything(ids: &IdSpace, tlp: Tlp) -> Vec<Value> {
    let hub = ids.id("identity", "hub");
    let c = common(tlp, &hub);
    let county = ids.id("identity", "jurisdiction|7");
    let anon = ids.id("identity", "anonymous|county|OH");
    let campaign = ids.id("campaign", "42");
    let mut objects = vec![
        stix::identity(&hub, "Ohio election hub", "organization", Some("A ward hub"), &Common { created_by_ref: None, ..c.clone() }),
        stix::identity(&county, "Adams County", "organization", Some("A county election office"), &c),
        stix::identity(&anon, "a county in OH", "organization", Some("An election office whose name is not shared"), &c),
        stix::campaign(&campaign, "Scan of county election sites", "Seen by 3 jurisdictions", T0, T0 + 3_600_000, &c),
        stix::note(&ids.id("note", "campaign|42|1"), "Analyst: same scanner as in 2024", &[campaign.clone()], &c),
    ];
    let mut refs = vec![campaign.clone()];
    for (i, (kind, value)) in [("ip", "198.51.100.7"), ("ip", "2001:db8::7"), ("net", "198.51.100.0/24"), ("net", "2001:db8:1::/48"), ("domain", "x.example"), ("url", "http://x.example/login?a='b'"), ("asn", "64500")]
        .into_iter()
        .enumerate()
    {
        let ob = Observable::from_kind(kind, value).unwrap();
        let ind = ids.id("indicator", &format!("{kind}|{value}"));
        let until = (i % 2 == 0).then_some(T0 + 86_400_000);
        objects.push(stix::indicator(&ind, &ob, "Seen scanning election offices", T0, until, &["campaign-key"], &c));
        objects.push(stix::relationship(&ids.id("relationship", &format!("indicates|{ind}")), "indicates", &ind, &campaign, &c));
        let place = if i % 2 == 0 { &county } else { &anon };
        objects.push(stix::sighting(&ids.id("sighting", &format!("{ind}|{place}")), &ind, &[place.clone()], 3 + i as i64, T0, T0 + 60_000, &c));
        refs.push(ind);
    }
    objects.push(stix::report(&ids.id("report", "campaign|42"), "Campaign 42", T0 + 60_000, &refs, &c));
    let mut revoked = common(tlp, &hub);
    revoked.revoked = true;
    revoked.modified_ms = T0 + 120_000;
    objects.push(stix::campaign(&ids.id("campaign", "41"), "Merged away", "", T0, T0, &revoked));
    objects
}

#[test]
fn every_object_at_every_tlp_level_passes_the_oasis_validator_and_parser() {
    let ids = IdSpace::for_hub("ohio-hub");
    for tlp in Tlp::ALL {
        let objects = everything(&ids, tlp);
        let mut all = stix::markings_for(&objects);
        assert_eq!(all.len(), 1, "one marking definition for one level");
        assert_eq!(all[0]["id"], tlp.stix_id());
        all.extend(objects);
        let warnings = oasis_check(&stix::bundle(all));
        // {103}: ids are UUIDv5, not v4. STIX 2.1 says SDOs SHOULD use v4; ward derives ids
        // from the fact they name on purpose (the issue asks for it: a re-export is a new
        // version, never a duplicate), so this one SHOULD-level warning is expected.
        let other: Vec<&String> = warnings.iter().filter(|w| !w.contains("{103}")).collect();
        assert!(other.is_empty(), "{tlp}: {other:#?}");
        assert!(warnings.iter().any(|w| w.contains("{103}")), "the ids are deterministic (v5)");
    }
}

#[test]
fn what_the_hub_writes_reads_back_as_the_same_facts() {
    let ids = IdSpace::for_hub("ohio-hub");
    let objects = everything(&ids, Tlp::AmberStrict);
    let mut indicators = 0;
    for v in objects {
        let o = StixObject::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"));
        assert_eq!(o.tlp(), Some(Tlp::AmberStrict));
        if o.stix_type == "indicator" {
            indicators += 1;
            let obs = o.observables().unwrap();
            assert_eq!(obs.len(), 1);
            let (kind, value) = obs[0].kind_value();
            // The same fact gives the same id: a re-export is a new version, not a duplicate.
            assert_eq!(o.id, ids.id("indicator", &format!("{kind}|{value}")), "{value}");
        }
        if o.id == ids.id("campaign", "41") {
            assert!(o.is_withdrawn(T0));
        }
    }
    assert_eq!(indicators, 7);
}

#[test]
fn the_standard_tlp_marking_definitions_are_what_oasis_published() {
    // stix2 knows TLP 1.0's definitions by heart; TLP 2.0's are checked by the validator above
    // and by their ids here (from the OASIS TLP 2.0 extension).
    let expected = json!({
        "TLP:CLEAR": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
        "TLP:GREEN": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
        "TLP:AMBER": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
        "TLP:AMBER+STRICT": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
        "TLP:RED": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
    });
    for tlp in Tlp::ALL {
        assert_eq!(json!(tlp.stix_id()), expected[tlp.label()]);
    }
    let warnings = oasis_check(&stix::bundle(Tlp::ALL.into_iter().map(Tlp::marking_definition).collect()));
    assert!(warnings.is_empty(), "{warnings:#?}");
}

/// The fuzz target's invariants (`fuzz/fuzz_targets/stix.rs`) over 30,000 mutations of the
/// seeds, so a regression shows in the ordinary test run and not only under cargo-fuzz.
#[test]
fn mutated_patterns_and_objects_never_panic_and_round_trip() {
    let seeds_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/stix");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&seeds_dir).unwrap().map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect();
    seeds.push(b"[ipv6-addr:value ISSUBSET '2001:db8::/32'] OR [autonomous-system:number = 64500]".to_vec());
    let alphabet: &[&[u8]] = &[b"[", b"]", b"(", b")", b"'", b"\\", b" OR ", b" AND ", b" = ", b" ISSUBSET ", b"ipv4-addr:value", b"/", b"0", b".", b"\"", b"{", b"}", b":", b"\xff", b"\n"];
    mutate_each(&seeds, alphabet, 7, 0, 30_000, ward_hub::fuzz::stix);
}

/// The hub's own data as a bundle: a campaign opened by three counties through the store's
/// real ingest and correlation, exported anonymised and named, checked by the OASIS tools.
#[test]
fn a_campaign_exports_as_valid_stix_and_anonymised_exports_name_no_office() {
    use ward_hub::ingest::{classify, parse_line, HomeNet};
    use ward_hub::model::*;
    use ward_hub::share::export::{export_bundle, ExportError, ExportPolicy};
    use ward_hub::store::{CorrelationPolicy, IngestBatch};

    let dir = tempfile::tempdir().unwrap();
    let store = ward_hub::store::open::Database::sqlite_dir(dir.path()).open().unwrap();
    let names = ["Adams County", "Baker County", "Clark County"];
    let mut seq = 0;
    for (i, name) in names.iter().enumerate() {
        let j = store.create_jurisdiction(&NewJurisdiction { name: name.to_string(), kind: JurisdictionKind::County, state: Some("OH".into()), home_net: None }, 0).unwrap().id;
        let line = r#"{"event_type":"alert","src_ip":"45.77.10.7","dest_ip":"10.0.0.1","alert":{"signature_id":1,"signature":"ET SCAN"}}"#;
        let mut ev = parse_line(line.as_bytes(), T0).unwrap();
        classify(&mut ev, &HomeNet::default());
        seq += 1;
        let batch = IngestBatch { sensor_id: j, jurisdiction_id: j, seq, events: vec![ev], rejected: vec![], rejected_total: 0 };
        store.ingest(&[batch], &CorrelationPolicy::default(), T0 + i as i64 * 1000).unwrap();
    }
    let campaigns = store.campaigns(false).unwrap();
    assert_eq!(campaigns.len(), 1);
    assert!(campaigns[0].published_ms.is_some(), "three jurisdictions meet the publication bar");

    let policy = ExportPolicy { hub_name: "ohio-hub".into(), tlp: Tlp::Amber, name_jurisdictions: false, include_unpublished: false, confidence: 70 };
    let anonymous = export_bundle(store.as_ref(), &policy, T0 + 10_000).unwrap();
    let text = anonymous.to_string();
    for name in names {
        assert!(!text.contains(name), "an anonymised export names {name}");
    }
    assert!(text.contains("a county in OH"));
    assert!(text.contains("[ipv4-addr:value = '45.77.10.7']") && text.contains("[ipv4-addr:value ISSUBSET '45.77.10.0/24']"), "{text}");
    let sightings: Vec<&Value> = anonymous["objects"].as_array().unwrap().iter().filter(|o| o["type"] == "sighting").collect();
    assert_eq!(sightings.len(), 3, "one sighting per county");
    let warnings = oasis_check(&anonymous);
    assert!(warnings.iter().all(|w| w.contains("{103}")), "{warnings:#?}");

    let named = export_bundle(store.as_ref(), &ExportPolicy { name_jurisdictions: true, ..policy.clone() }, T0 + 10_000).unwrap();
    assert!(names.iter().all(|n| named.to_string().contains(n)));
    oasis_check(&named);

    // The same facts keep their ids; closing the campaign publishes revoked versions.
    let ids = |b: &Value| b["objects"].as_array().unwrap().iter().filter(|o| o["type"] != "marking-definition").map(|o| o["id"].as_str().unwrap().to_string()).collect::<std::collections::BTreeSet<_>>();
    let again = export_bundle(store.as_ref(), &policy, T0 + 20_000).unwrap();
    assert_eq!(ids(&again), ids(&anonymous));
    store.close_campaign(campaigns[0].id, T0 + 30_000).unwrap();
    let closed = export_bundle(store.as_ref(), &policy, T0 + 40_000).unwrap();
    assert_eq!(ids(&closed), ids(&anonymous));
    for o in closed["objects"].as_array().unwrap().iter().filter(|o| o["type"] == "campaign" || o["type"] == "indicator") {
        assert_eq!(o["revoked"], true, "{o}");
        let before = anonymous["objects"].as_array().unwrap().iter().find(|p| p["id"] == o["id"]).unwrap();
        assert!(o["modified"].as_str() > before["modified"].as_str(), "a new version: {} then {}", before["modified"], o["modified"]);
    }
    oasis_check(&closed);

    assert!(matches!(export_bundle(store.as_ref(), &ExportPolicy { tlp: Tlp::Red, ..policy }, T0), Err(ExportError::Red)));

    // The command line: `ward hub export` writes the file; RED and unknown levels are refused.
    #[derive(clap::Parser)]
    struct Ward {
        #[command(subcommand)]
        hub: ward_hub::cli::HubCommand,
    }
    let cli = |args: &[&str]| -> anyhow::Result<()> {
        use clap::Parser;
        let mut argv = vec!["ward"];
        argv.extend_from_slice(args);
        ward_hub::cli::run(Ward::try_parse_from(argv)?.hub)
    };
    let out = dir.path().join("export.json");
    let data = dir.path().to_str().unwrap();
    cli(&["export", "--data", data, "--tlp", "tlp:green", "--hub-name", "ohio-hub", "-o", out.to_str().unwrap()]).unwrap();
    let written: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(ids(&written), ids(&anonymous), "the same hub name gives the same ids");
    assert!(written["objects"].as_array().unwrap().iter().any(|o| o["id"] == Tlp::Green.stix_id()));
    let err = cli(&["export", "--data", data, "--tlp", "TLP:RED"]).unwrap_err();
    assert!(format!("{err:#}").contains("TLP:RED never leaves the hub"), "{err:#}");
    assert!(cli(&["export", "--data", data, "--tlp", "TLP:PURPLE"]).is_err());
}
