//! Entry points for the cargo-fuzz targets in `fuzz/` (`hub_ingest`, `hub_api_json`, `stix`, `taxii`, `client_cert`): bytes
//! from the network, through the same functions the handlers call, with the invariants the
//! rest of the hub relies on checked (a broken one panics, which the fuzzer reports).

use crate::ingest::{self, BodyEncoding, HomeNet};
use crate::model::Millis;

/// A fixed receipt time, so a run is reproducible.
const NOW: Millis = 1_800_000_000_000;

/// An ingest body as `POST /api/v1/events` sees it: encoding (by header and by magic), gzip,
/// batch parsing, classification. Every accepted line must be stored as JSON that parses back
/// to an object, within [`ingest::MAX_STORED_EVENT_BYTES`].
pub fn ingest(data: &[u8]) {
    for header in [None, Some("gzip")] {
        let Ok(encoding) = ingest::body_encoding(header, data) else { continue };
        let decoded;
        let bytes: &[u8] = if encoding == BodyEncoding::Gzip {
            match ingest::gunzip(data) {
                Ok(d) => {
                    decoded = d;
                    &decoded
                }
                Err(_) => continue,
            }
        } else {
            data
        };
        let Ok((mut events, rejected, rejected_total)) = ingest::parse_batch(bytes, NOW) else { continue };
        assert!(rejected.len() <= rejected_total && rejected.len() <= ingest::MAX_REPORTED_REJECTIONS);
        let home = HomeNet::parse("10.0.0.0/8, 2001:db8::/32").unwrap_or_default();
        for ev in &mut events {
            ingest::classify(ev, &home);
            assert!(ev.raw.len() <= ingest::MAX_STORED_EVENT_BYTES, "stored event of {} bytes", ev.raw.len());
            match serde_json::from_str::<serde_json::Value>(&ev.raw) {
                Ok(v) => assert!(v.is_object(), "stored event is not an object"),
                Err(e) => panic!("stored event does not parse back: {e}"),
            }
            assert!(ev.signature.as_ref().is_none_or(|s| s.len() <= ingest::MAX_SIGNATURE_BYTES));
            if let Some(remote) = ev.remote {
                let _ = ingest::actor_keys(remote, Some(64_512));
            }
        }
    }
}

/// Every JSON request body type of the API, deserialised from the same bytes, and each one
/// that parses run through the validation its handler (or the store) applies.
pub fn api_json(data: &[u8]) {
    use crate::model::check_text;
    if let Ok(r) = serde_json::from_slice::<crate::api::EnrollRequest>(data) {
        let _ = r.name.as_deref().map(|n| check_text("sensor name", n, false));
    }
    let _ = serde_json::from_slice::<crate::api::LoginRequest>(data);
    if let Ok(r) = serde_json::from_slice::<crate::api::NewUserRequest>(data) {
        let _ = check_text("username", &r.username, false);
        let _ = r.password.len() >= crate::auth::MIN_PASSWORD_LEN;
    }
    if let Ok(r) = serde_json::from_slice::<crate::model::NewJurisdiction>(data) {
        let _ = check_text("jurisdiction name", &r.name, false);
        let _ = HomeNet::parse(r.home_net.as_deref().unwrap_or_default());
    }
    if let Ok(r) = serde_json::from_slice::<crate::model::NewContact>(data) {
        let _ = check_text("contact target", &r.target, false);
        let _ = crate::notify::validate_contact(&r);
    }
    if let Ok(u) = crate::api::CampaignUpdate::from_json(data) {
        assert!(u.check().is_ok(), "from_json let an empty update through");
    }
    if let Ok(r) = serde_json::from_slice::<crate::retro::IndicatorRequest>(data) {
        let _ = crate::retro::validate_indicator(&r, NOW);
    }
    if let Ok(r) = serde_json::from_slice::<crate::assets::NewScanAsset>(data) {
        let _ = crate::assets::normalise_asset(&r);
    }
    let _ = serde_json::from_slice::<crate::assets::NewScanBlackout>(data);
    let _ = serde_json::from_slice::<crate::assets::TargetsRequest>(data);
    let _ = serde_json::from_slice::<crate::assets::ClaimRequest>(data);
    let _ = serde_json::from_slice::<crate::assets::ReportUpload>(data);
    // Acknowledgements (crate::ack): the API body, the link page's form, a contact's priority.
    if let Ok(r) = crate::ack::parse_ack_request(data) {
        assert!(r.note.as_ref().is_none_or(|n| !n.is_empty() && n.chars().count() <= crate::ack::MAX_NOTE_CHARS), "an unchecked note");
    }
    if let Ok(r) = crate::ack::form_request(data) {
        assert!(r.note.as_ref().is_none_or(|n| !n.is_empty() && n.chars().count() <= crate::ack::MAX_NOTE_CHARS), "an unchecked note");
    }
    let _ = serde_json::from_slice::<crate::api::NewContactRequest>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::model::check_text("campaign note", text, true);
    }
}

/// A STIX object or pattern as a TAXII POST, a feed or a peer hands it over: the object is
/// read and checked, and its pattern parsed. Whatever the pattern reads as must write back to a
/// pattern that parses to the same observable (the hub re-shares what it imports).
pub fn stix(data: &[u8]) {
    use crate::share::stix::{parse_pattern, StixObject};
    let text = String::from_utf8_lossy(data);
    for source in [Ok(text.to_string()), serde_json::from_slice::<serde_json::Value>(data).map(|v| v["pattern"].as_str().unwrap_or_default().to_string())] {
        let Ok(pattern) = source else { continue };
        if let Ok(observables) = parse_pattern(&pattern) {
            for ob in observables {
                let again = parse_pattern(&ob.pattern()).unwrap_or_else(|e| panic!("{} does not parse back: {e}", ob.pattern()));
                assert_eq!(again, vec![ob]);
            }
        }
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(o) = StixObject::from_value(v) {
            let _ = o.observables();
            let _ = o.tlp();
            let _ = o.is_withdrawn(NOW);
        }
    }
}

/// The TAXII server's parsers of untrusted input: the same bytes as a query string (filters and
/// the `next` cursor), as a cursor alone, and as a POST envelope. Filters stay within their
/// bounds, cursors round-trip, and every accepted object is a valid id, never TLP:RED, stored
/// as a JSON object.
pub fn taxii(data: &[u8]) {
    use crate::share::taxii::{decode_cursor, encode_cursor, parse_query, read_envelope, Verdict, MAX_FILTER_VALUES, MAX_PAGE};
    let text = String::from_utf8_lossy(data);
    if let Ok(f) = parse_query(&text) {
        assert!(f.ids.len() <= MAX_FILTER_VALUES && f.types.len() <= MAX_FILTER_VALUES && f.spec_versions.len() <= MAX_FILTER_VALUES);
        assert!(f.versions.as_ref().is_none_or(|v| v.at.len() <= MAX_FILTER_VALUES));
        assert!((1..=MAX_PAGE).contains(&f.page_size()));
        if let Some((d, s)) = f.next {
            assert_eq!(decode_cursor(&encode_cursor(d, s)), Some((d, s)));
        }
        let _ = f.after();
    }
    if let Some((d, s)) = decode_cursor(&text) {
        assert!(d >= 0 && s >= 0);
        assert_eq!(decode_cursor(&encode_cursor(d, s)), Some((d, s)));
    }
    if let Ok(verdicts) = read_envelope(data, Some(1)) {
        for v in &verdicts {
            if let Verdict::Accepted(o) = v {
                assert!(o.tlp != ward_model::tlp::Tlp::Red, "a TLP:RED object was accepted");
                assert!(crate::share::stix::valid_id(&o.object_id), "accepted a bad id");
                assert!(serde_json::from_str::<serde_json::Value>(&o.body).is_ok_and(|b| b.is_object()), "stored body is not an object");
            }
        }
        // The status resource is JSON whatever the objects held, with every object counted.
        let total = verdicts.len();
        let (accepted, status) = crate::share::taxii::PostStatus::prepare("fuzz", verdicts, NOW);
        let stored: Vec<Option<i64>> = (0..accepted.len()).map(|i| (i % 2 == 0).then_some(i as i64)).collect();
        let v: serde_json::Value = serde_json::from_str(&status.render(&stored)).expect("the status resource is JSON");
        assert_eq!(v["total_count"].as_u64(), Some(total as u64));
        assert_eq!(v["successes"].as_array().map(Vec::len), Some(accepted.len()));
    }
}

/// A client certificate given to `POST /api/v1/api-keys` or `--client-cert` (PEM, untrusted):
/// a fingerprint, when there is one, is what the store accepts.
pub fn client_cert(data: &[u8]) {
    if let Ok(fp) = crate::tls::cert_fingerprint(data) {
        assert!(crate::share::objects::valid_fingerprint(&fp), "fingerprint {fp:?}");
    }
}

/// What a feed serves (`fuzz/fuzz_targets/feeds.rs`): the first byte picks the parser — a
/// CSV/text list (plain, or column 1), a MISP manifest, a MISP event, a TAXII envelope and its
/// indicator objects — and the rest is the response body. Invariants: no panic; every item is
/// an `ip`, `net` or `domain` that normalises to itself (what is stored is what the sensors
/// get), and no parse yields more than its input held.
pub fn feeds(data: &[u8]) {
    use crate::share::feeds::{csv, misp, normalize, taxii, FeedItem, ItemRules, TYPES};
    let Some((&which, body)) = data.split_first() else { return };
    let rules = ItemRules::permissive(NOW);
    let all: Vec<String> = TYPES.iter().map(|s| s.to_string()).collect();
    let check = |items: &[FeedItem]| {
        for i in items {
            assert!(matches!(i.kind, "ip" | "net" | "domain"), "{i:?}");
            assert_eq!(normalize(&i.value, Some(i.kind), &all), Ok((i.kind, i.value.clone())), "{i:?} does not normalise to itself");
        }
    };
    match which % 5 {
        0 | 1 => {
            let parsed = csv::parse(body, (which % 5 == 1).then_some(1), &rules);
            assert!(parsed.items.len() <= parsed.entries);
            check(&parsed.items);
        }
        2 => {
            if let Ok(m) = misp::parse_manifest(body) {
                assert!(m.keys().all(|u| misp::valid_uuid(u)));
            }
        }
        3 => {
            if let Ok((group, _)) = misp::parse_event("5f3c1a2b-0000-4000-8000-0000000000e1", body, &rules) {
                check(&group.items);
            }
        }
        _ => {
            if let Ok(env) = taxii::parse_envelope(body) {
                let page = taxii::page_items(env.objects, &rules);
                assert!(page.groups.len() <= page.indicators);
                for g in &page.groups {
                    check(&g.items);
                }
            }
        }
    }
}
