//! Mutual TLS on the TAXII server (`[tls] client_ca`, `client_auth`; docs/sharing.md "Mutual
//! TLS"), on both stores: a CA and client certificates made with rcgen here, a real hub over
//! HTTPS on loopback (its own certificate signed by the same CA), and reqwest presenting a
//! client identity.
//!
//! * a certificate bound to an API key reads that key's collections with no other credential,
//!   and writes where the key may;
//! * a CA-signed certificate bound to no key, a revoked key's certificate, and credentials of
//!   another account than the certificate's key get 401; a self-signed certificate and one
//!   from another CA fail the handshake;
//! * `client_auth = "required"`: TAXII answers 401 without a certificate even to a valid key,
//!   while the sensor and user API and the health check work as before;
//! * binding through the API and the CLI (`--client-cert`), and the checks on it.

mod common;

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::{json, Value};
use ward_hub::config::ClientAuth;
use ward_hub::model::{now_ms, now_us, Role};
use ward_hub::share::objects::{NewApiKey, NewObject, COLLECTION_COMMUNITY};
use ward_hub::share::stix::{self, Common, IdSpace, Observable};
use ward_hub::share::taxii::MEDIA_TAXII;
use ward_hub::store::Store;
use ward_model::tlp::Tlp;

const COMMUNITY: &str = "5a0f4a8e-6c55-4c8e-9a43-1f1b1f6f0d02";
const INBOX: &str = "5a0f4a8e-6c55-4c8e-9a43-1f1b1f6f0d04";

/// A certificate authority made for the test.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    /// A leaf certificate and its key (PEM): a client's (`client`) or the hub's.
    fn issue(&self, name: &str, client: bool) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let sans = if client { vec![format!("{name}.partners.example")] } else { vec!["localhost".to_string(), "127.0.0.1".to_string()] };
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![if client { ExtendedKeyUsagePurpose::ClientAuth } else { ExtendedKeyUsagePurpose::ServerAuth }];
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// A client certificate that no CA signed.
fn self_signed_client() -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["mallory.example".to_string()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

fn fingerprint(pem: &str) -> String {
    ward_hub::tls::cert_fingerprint(pem.as_bytes()).unwrap()
}

/// A hub over HTTPS on loopback whose client CA is `ca`.
async fn hub(dir: &Path, ca: &Ca, auth: ClientAuth) -> ward_hub::RunningHub {
    let (cert, key) = ca.issue("hub", false);
    std::fs::write(dir.join("hub.crt"), cert).unwrap();
    std::fs::write(dir.join("hub.key"), key).unwrap();
    std::fs::write(dir.join("clients-ca.pem"), &ca.pem).unwrap();
    let mut config = common::config(dir);
    config.tls.cert = Some(dir.join("hub.crt"));
    config.tls.key = Some(dir.join("hub.key"));
    config.tls.client_ca = Some(dir.join("clients-ca.pem"));
    config.tls.client_auth = auth;
    ward_hub::start(config).await.unwrap()
}

/// A client that trusts `ca` for the hub's certificate and presents `identity` (cert, key).
fn client(ca: &Ca, identity: Option<&(String, String)>) -> reqwest::Client {
    let mut b = reqwest::Client::builder().tls_certs_only([reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap()]);
    if let Some((cert, key)) = identity {
        b = b.identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    b.build().unwrap()
}

fn url(hub: &ward_hub::RunningHub, path: &str) -> String {
    format!("https://localhost:{}{path}", hub.addr.port())
}

/// GET with the TAXII media type; (status, body as JSON or Null).
async fn get(c: &reqwest::Client, url: &str, bearer: Option<&str>) -> Result<(u16, Value), reqwest::Error> {
    let mut r = c.get(url).header("accept", MEDIA_TAXII);
    if let Some(b) = bearer {
        r = r.bearer_auth(b);
    }
    let resp = r.send().await?;
    let status = resp.status().as_u16();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, body))
}

/// Makes a key through the store; (id, key_id, secret).
fn key(store: &dyn Store, name: &str, scopes: &[&str], cert: Option<&str>) -> (i64, String, String) {
    let (key_id, secret, hash) = ward_hub::share::accounts::new_key();
    let new = NewApiKey {
        key_id: key_id.clone(),
        name: name.into(),
        secret_hash: hash,
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        max_tlp: Tlp::Amber,
        jurisdiction_id: None,
        name_jurisdictions: false,
        created_by: "test".into(),
    };
    let k = ward_hub::api::create_api_key_with_cert(store, &new, cert, now_ms()).unwrap();
    assert_eq!(k.client_cert_sha256.as_deref(), cert);
    (k.id, key_id, secret)
}

/// Publishes `n` GREEN indicators into the community collection; their ids.
fn publish(store: &dyn Store, n: usize) -> Vec<String> {
    let ids = IdSpace::for_hub("mtls-test");
    let c = Common { created_ms: 1_793_710_800_000, modified_ms: 1_793_710_800_000, tlp: Tlp::Green, created_by_ref: None, revoked: false, confidence: Some(70) };
    let objects: Vec<NewObject> = (0..n)
        .map(|i| {
            let ip = std::net::Ipv4Addr::new(198, 51, 100, i as u8 + 1);
            let v = stix::indicator(&ids.id("indicator", &format!("ip|{ip}")), &Observable::Ip(ip.into()), "seen scanning", 1_793_710_800_000, None, &[], &c);
            NewObject {
                object_id: v["id"].as_str().unwrap().to_string(),
                object_type: "indicator".into(),
                spec_version: "2.1".into(),
                version: v["modified"].as_str().unwrap().to_string(),
                version_us: 1_793_710_800_000_000,
                tlp: Tlp::Green,
                jurisdiction_id: None,
                content_hash: ward_hub::share::publish::content_hash(&v),
                body: v.to_string(),
            }
        })
        .collect();
    store.taxii_add(COLLECTION_COMMUNITY, "test", &objects, now_us()).unwrap();
    objects.into_iter().map(|o| o.object_id).collect()
}

/// The indicators of a page (the publisher adds the hub's identity and TLP marking too).
fn object_ids(body: &Value) -> Vec<String> {
    let mut ids: Vec<String> =
        body["objects"].as_array().map(|a| a.iter().filter(|o| o["type"] == "indicator").map(|o| o["id"].as_str().unwrap().to_string()).collect()).unwrap_or_default();
    ids.sort();
    ids
}

on_each_backend! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bound_certificate_is_the_credential_and_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("ward test partners CA");
        let hub = hub(dir.path(), &ca, ClientAuth::Optional).await;
        let store = hub.state.store.clone();
        let partner = ca.issue("isac", true);
        let unbound = ca.issue("stranger", true);
        let revoked = ca.issue("former", true);
        let (fp_partner, fp_revoked) = (fingerprint(&partner.0), fingerprint(&revoked.0));
        let (mut published, other_secret, revoked_id) = common::db(store.as_ref(), |s| {
            key(s, "isac", &["taxii-read", "taxii-write"], Some(&fp_partner));
            let (_, _, other_secret) = key(s, "other partner", &["taxii-read"], None);
            let (revoked_id, _, _) = key(s, "former partner", &["taxii-read"], Some(&fp_revoked));
            (publish(s, 5), other_secret, revoked_id)
        });
        published.sort();

        // The bound certificate alone: discovery, the collections its key may see, the objects.
        let c = client(&ca, Some(&partner));
        let (status, body) = get(&c, &url(&hub, "/taxii2/"), None).await.unwrap();
        assert_eq!(status, 200, "{body}");
        let (status, body) = get(&c, &url(&hub, "/taxii2/api/collections/"), None).await.unwrap();
        assert_eq!(status, 200, "{body}");
        let listed: Vec<&str> = body["collections"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(listed, vec![COMMUNITY, INBOX], "a partner key with read and write: {body}");
        let (status, body) = get(&c, &url(&hub, &format!("/taxii2/api/collections/{COMMUNITY}/objects/")), None).await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(object_ids(&body), published);
        // It writes as its key, and the status belongs to that key.
        let note = json!({"type": "note", "spec_version": "2.1", "id": "note--6f1c2b0e-8d4a-4f7e-9b3c-5e2a7d10c4e9", "created": "2026-11-03T13:00:00Z",
                          "modified": "2026-11-03T13:00:00Z", "content": "seen here too", "object_refs": [published[0]]});
        let r = c
            .post(url(&hub, &format!("/taxii2/api/collections/{INBOX}/objects/")))
            .header("accept", MEDIA_TAXII)
            .header("content-type", MEDIA_TAXII)
            .body(json!({"objects": [note]}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let status: Value = r.json().await.unwrap();
        assert_eq!(status["success_count"], 1, "{status}");
        let (code, again) = get(&c, &url(&hub, &format!("/taxii2/api/status/{}/", status["id"].as_str().unwrap())), None).await.unwrap();
        assert_eq!((code, &again["id"]), (200, &status["id"]));
        // Its own key's credentials over the same connection are fine; another account's are not.
        let (status, _) = get(&c, &url(&hub, &format!("/taxii2/api/collections/{COMMUNITY}/objects/")), Some(&other_secret)).await.unwrap();
        assert_eq!(status, 401, "a certificate and credentials of two different accounts");

        // A certificate the CA signed but bound to no key authenticates nobody.
        let (status, body) = get(&client(&ca, Some(&unbound)), &url(&hub, "/taxii2/api/collections/"), None).await.unwrap();
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["http_status"], "401");
        // … but it may still carry a key's credentials (the key has no certificate of its own).
        let (status, _) = get(&client(&ca, Some(&unbound)), &url(&hub, &format!("/taxii2/api/collections/{COMMUNITY}/objects/")), Some(&other_secret)).await.unwrap();
        assert_eq!(status, 200);

        // A revoked key's certificate: it worked, then it does not.
        let former = client(&ca, Some(&revoked));
        assert_eq!(get(&former, &url(&hub, "/taxii2/api/collections/"), None).await.unwrap().0, 200);
        common::db(store.as_ref(), |s| s.revoke_api_key(revoked_id, now_ms())).unwrap();
        assert_eq!(get(&former, &url(&hub, "/taxii2/api/collections/"), None).await.unwrap().0, 401);

        // Certificates the client CA did not sign never finish the handshake.
        let other_ca = Ca::new("somebody else's CA");
        for (what, identity) in [("self-signed", self_signed_client()), ("another CA's", other_ca.issue("isac", true))] {
            let err = get(&client(&ca, Some(&identity)), &url(&hub, "/taxii2/"), None).await;
            assert!(err.is_err(), "a {what} certificate must be refused: {err:?}");
        }
        // Without a certificate, optional mode: keys and passwords as before, nothing at all is 401.
        let plain = client(&ca, None);
        assert_eq!(get(&plain, &url(&hub, &format!("/taxii2/api/collections/{COMMUNITY}/objects/")), Some(&other_secret)).await.unwrap().0, 200);
        assert_eq!(get(&plain, &url(&hub, "/taxii2/"), None).await.unwrap().0, 401);
        hub.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn required_means_taxii_needs_a_certificate_and_nothing_else_changes() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("ward test partners CA");
        let hub = hub(dir.path(), &ca, ClientAuth::Required).await;
        let store = hub.state.store.clone();
        let partner = ca.issue("isac", true);
        let unbound = ca.issue("analyst laptop", true);
        let fp = fingerprint(&partner.0);
        let (key_secret, j) = common::db(store.as_ref(), |s| {
            let (_, _, secret) = key(s, "isac", &["taxii-read"], Some(&fp));
            publish(s, 3);
            let phc = ward_hub::auth::hash_password(common::PASSWORD).unwrap();
            s.create_user("ana", &phc, Role::Analyst, None, now_ms()).unwrap();
            let j = s.create_jurisdiction(&ward_hub::model::NewJurisdiction { name: "Franklin County".into(), kind: ward_hub::model::JurisdictionKind::County, state: Some("OH".into()), home_net: None }, now_ms()).unwrap().id;
            (secret, j)
        });
        let plain = client(&ca, None);
        // TAXII without a certificate: 401 with the reason, even with the key itself.
        for path in ["/taxii2/".to_string(), "/taxii2/api/collections/".to_string(), format!("/taxii2/api/collections/{COMMUNITY}/objects/")] {
            let (status, body) = get(&plain, &url(&hub, &path), Some(&key_secret)).await.unwrap();
            assert_eq!(status, 401, "{path}: {body}");
            assert_eq!(body["title"], "client certificate required", "{body}");
        }
        // With the bound certificate, alone or with its own key.
        let c = client(&ca, Some(&partner));
        let objects = format!("/taxii2/api/collections/{COMMUNITY}/objects/");
        let (status, body) = get(&c, &url(&hub, &objects), None).await.unwrap();
        assert_eq!((status, object_ids(&body).len()), (200, 3), "{body}");
        assert_eq!(get(&c, &url(&hub, &objects), Some(&key_secret)).await.unwrap().0, 200);
        // An analyst's password over a connection with a certificate the CA signed.
        let laptop = client(&ca, Some(&unbound));
        let r = laptop.get(url(&hub, &objects)).header("accept", MEDIA_TAXII).basic_auth("ana", Some(common::PASSWORD)).send().await.unwrap();
        assert_eq!(r.status(), 200);

        // The rest of the hub, without any certificate: health, users, sensors.
        assert_eq!(plain.get(url(&hub, "/healthz")).send().await.unwrap().status(), 200);
        let login: Value = plain.post(url(&hub, "/api/v1/login")).json(&json!({"username": "ana", "password": common::PASSWORD})).send().await.unwrap().json().await.unwrap();
        let session = login["token"].as_str().unwrap().to_string();
        let me = plain.get(url(&hub, "/api/v1/me")).bearer_auth(&session).send().await.unwrap();
        assert_eq!(me.status(), 200);
        let token = ward_hub::auth::random_token("wet");
        let hash = ward_hub::auth::hash_token(&token);
        common::db(store.as_ref(), |s| s.create_enrollment_token(j, &hash, now_ms(), now_ms() + 60_000)).unwrap();
        let enrolled = plain.post(url(&hub, "/api/v1/sensors/enroll")).json(&json!({"token": token, "name": "s1"})).send().await.unwrap();
        assert_eq!(enrolled.status(), 201);
        let credential = enrolled.json::<Value>().await.unwrap()["credential"].as_str().unwrap().to_string();
        let deltas = plain.get(url(&hub, "/api/v1/indicators?since=0")).bearer_auth(&credential).send().await.unwrap();
        assert_eq!(deltas.status(), 200);

        // Binding through the API: analysts only, checked, one active key per certificate.
        let create = |body: Value| plain.post(url(&hub, "/api/v1/api-keys")).bearer_auth(&session).json(&body).send();
        let r = create(json!({"name": "laptop key", "scopes": ["taxii-read"], "client_cert": partner.0})).await.unwrap();
        assert_eq!(r.status(), 409, "the certificate is bound to the isac key already");
        let r = create(json!({"name": "garbage", "scopes": ["taxii-read"], "client_cert": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"})).await.unwrap();
        assert_eq!(r.status(), 400);
        let r = create(json!({"name": "laptop key", "scopes": ["taxii-read"], "client_cert": unbound.0})).await.unwrap();
        assert_eq!(r.status(), 201);
        let made: Value = r.json().await.unwrap();
        assert_eq!(made["api_key"]["client_cert_sha256"], fingerprint(&unbound.0));
        let id = made["api_key"]["id"].as_i64().unwrap();
        // Now the laptop's certificate is that key: its own credentials are gone from the request,
        // and an analyst's password over it names another account.
        assert_eq!(get(&laptop, &url(&hub, &objects), None).await.unwrap().0, 200);
        let r = laptop.get(url(&hub, &objects)).header("accept", MEDIA_TAXII).basic_auth("ana", Some(common::PASSWORD)).send().await.unwrap();
        assert_eq!(r.status(), 401);
        // Unbinding (a renewed certificate would be bound the same way).
        let r = plain.post(url(&hub, &format!("/api/v1/api-keys/{id}/client-cert"))).bearer_auth(&session).json(&json!({"client_cert": null})).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap()["client_cert_sha256"], Value::Null);
        assert_eq!(get(&laptop, &url(&hub, &objects), None).await.unwrap().0, 401);
        hub.shutdown().await;
    }
}

#[test]
fn configuration_mistakes_are_refused_at_start() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("ca");
    std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
    std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
    let start = |f: &dyn Fn(&mut ward_hub::HubConfig)| {
        let mut c = common::config(dir.path());
        f(&mut c);
        rt.block_on(async { ward_hub::start(c).await.err().map(|e| e.to_string()).unwrap_or_default() })
    };
    let e = start(&|c| c.tls.client_auth = ClientAuth::Required);
    assert!(e.contains("needs client_ca"), "{e}");
    let e = start(&|c| c.tls.client_ca = Some(dir.path().join("ca.pem")));
    assert!(e.contains("needs TLS"), "{e}");
    let e = start(&|c| {
        c.tls.self_signed = true;
        c.tls.client_ca = Some(dir.path().join("junk.pem"));
    });
    assert!(e.contains("holds no certificate"), "{e}");
    let e = start(&|c| {
        c.tls.self_signed = true;
        c.tls.client_ca = Some(dir.path().join("missing.pem"));
    });
    assert!(e.contains("cannot read [tls] client_ca"), "{e}");
    let parsed: ward_hub::HubConfig = toml::from_str("[tls]\nself_signed = true\nclient_ca = \"/x.pem\"\nclient_auth = \"required\"\n").unwrap();
    assert!(parsed.tls.client_cert_required());
    assert!(toml::from_str::<ward_hub::HubConfig>("[tls]\nclient_auth = \"sometimes\"\n").is_err());
}

#[test]
fn the_cli_binds_a_key_to_a_certificate_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("ca");
    let (cert, _) = ca.issue("isac", true);
    let pem = dir.path().join("isac.pem");
    std::fs::write(&pem, &cert).unwrap();
    std::fs::write(dir.path().join("junk.pem"), "junk").unwrap();
    let data = dir.path().join("store");
    #[derive(clap::Parser)]
    struct Ward {
        #[command(subcommand)]
        hub: ward_hub::cli::HubCommand,
    }
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let mut argv = vec!["ward"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["--data", data.to_str().unwrap()]);
        ward_hub::cli::run(<Ward as clap::Parser>::try_parse_from(argv)?.hub)
    };
    run(&["api-key", "create", "--name", "isac", "--scope", "taxii-read", "--client-cert", pem.to_str().unwrap()]).unwrap();
    let e = run(&["api-key", "create", "--name", "isac 2", "--scope", "taxii-read", "--client-cert", pem.to_str().unwrap()]).unwrap_err().to_string();
    assert!(e.contains("bound to api key"), "{e}");
    let e = run(&["api-key", "create", "--name", "junk", "--scope", "taxii-read", "--client-cert", dir.path().join("junk.pem").to_str().unwrap()]).unwrap_err().to_string();
    assert!(e.contains("no PEM certificate"), "{e}");
    let store = ward_hub::store::sqlite::SqliteStore::open_dir(&data).unwrap();
    let keys = store.api_keys().unwrap();
    assert_eq!(keys.len(), 1, "a refused certificate leaves no key behind");
    assert_eq!(store.api_key_by_cert(&fingerprint(&cert)).unwrap().map(|k| k.name), Some("isac".to_string()));
    drop(store);
    run(&["api-key", "bind-cert", &keys[0].id.to_string(), "--unbind"]).unwrap();
    let store = ward_hub::store::sqlite::SqliteStore::open_dir(&data).unwrap();
    assert_eq!(store.api_key_by_cert(&fingerprint(&cert)).unwrap(), None);
}

#[test]
fn mutated_certificate_files_never_panic() {
    let ca = Ca::new("ca");
    let (cert, key) = ca.issue("isac", true);
    let seeds = vec![cert.clone().into_bytes(), format!("{cert}{}", ca.pem).into_bytes(), key.into_bytes(), b"-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n".to_vec()];
    let alphabet: &[&[u8]] = &[b"-----BEGIN CERTIFICATE-----\n", b"-----END CERTIFICATE-----\n", b"\n", b"=", b"A", b"/", b"\x00", b"\xff", b"MII"];
    common::mutate_each(&seeds, alphabet, 7, 0, 5_000, ward_hub::fuzz::client_cert);
}
