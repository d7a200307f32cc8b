//! The TAXII 2.1 server (OASIS TAXII 2.1, sections 4 and 5): discovery at `/taxii2/`, one API
//! root at `/taxii2/api/`, its collections ([`Collection`]), objects (GET and POST), one
//! object, its versions, the manifest, and POST status resources.
//!
//! * **Every response** under `/taxii2/` carries `Content-Type: application/taxii+json;version=2.1`,
//!   errors included (a TAXII error message: `title`, `description`, `http_status`); a request
//!   whose `Accept` admits no TAXII 2.1 JSON gets 406, a POST of anything but TAXII 2.1 JSON 415.
//! * **Paging is stateless**: `next` is an opaque cursor holding the last row's (date_added,
//!   tie-breaker), so it survives restarts and works on any replica. `date_added` is distinct
//!   and strictly increasing in commit order ([`super::objects`]), so `added_after` set to the
//!   previous page's `X-TAXII-Date-Added-Last` resumes exactly, however many objects were added
//!   in the same millisecond.
//! * Filters: `added_after`, `limit` (at most [`MAX_PAGE`]), `next`, `match[id]`,
//!   `match[type]`, `match[version]` (`last` by default, `first`, `all`, timestamps, or a list),
//!   `match[spec_version]`; each list at most [`MAX_FILTER_VALUES`] values. Unknown `match[…]`
//!   fields are refused (400) rather than silently ignored.
//! * **POST** takes an envelope of at most `[taxii] max_post_bytes` (413 beyond) and
//!   [`MAX_POST_OBJECTS`] objects; each object is checked by [`StixObject::from_value`] and
//!   refused on its own (listed in the status resource's `failures`) when it is not valid STIX
//!   2.1 or is marked TLP:RED. Unmarked objects are held as TLP:AMBER. The status is complete
//!   when the POST answers (202) and kept [`STATUS_KEEP_MS`] for its poster and analysts. The
//!   body is parsed once, each object checked without being copied, and the objects and the
//!   status resource are stored in one transaction ([`crate::store::Store::taxii_post`]).
//! * Access ([`Collection::scope`]): a collection an account may not see answers 404, the same as
//!   one that does not exist, and so does an object it may not read: ids cannot be probed.
//! * Accounts ([`super::accounts`]): HTTP Basic, bearer API keys, and API keys bound to a
//!   mutual-TLS client certificate ([`PeerCert`]); `[tls] client_auth = "required"` makes a
//!   verified certificate a condition of every TAXII request.
//! * Not here: DELETE of objects (docs/sharing.md says so).

use std::fmt::Write as _;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use ward_model::tlp::Tlp;

use super::accounts::{authenticate_with_cert, AuthFailure, Collection, PeerCert, TaxiiAccount};
use super::objects::{NewObject, ObjectQuery, StoredObject, VersionFilter};
use super::stix::{valid_id, StixObject};
use crate::auth::ClientAddr;
use crate::error::AppError;
use crate::state::HubState;

pub const MEDIA_TAXII: &str = "application/taxii+json;version=2.1";
pub const MEDIA_STIX: &str = "application/stix+json;version=2.1";
/// Objects per page when the client gives no `limit`, and the most it may ask for.
pub const DEFAULT_PAGE: usize = 1000;
pub const MAX_PAGE: usize = 1000;
/// Values in one `match[…]` filter (ids, types, versions, spec versions), and the longest query
/// string read.
pub const MAX_FILTER_VALUES: usize = 100;
pub const MAX_QUERY_BYTES: usize = 16 * 1024;
/// Objects in one POST.
pub const MAX_POST_OBJECTS: usize = 100_000;
/// How long a status resource is kept.
pub const STATUS_KEEP_MS: i64 = 7 * 24 * 3600 * 1000;
/// Longest `next` cursor read.
const MAX_CURSOR_BYTES: usize = 64;
/// TLP of a posted object that carries no TLP marking.
pub const UNMARKED_TLP: Tlp = Tlp::Amber;

pub fn routes(state: &HubState) -> Router<HubState> {
    let max_post = state.config.taxii.max_post_bytes.max(1024);
    Router::new()
        .route("/taxii2/", get(discovery))
        .route("/taxii2/api/", get(api_root))
        .route("/taxii2/api/collections/", get(collections))
        .route("/taxii2/api/collections/{collection}/", get(collection))
        .route("/taxii2/api/collections/{collection}/objects/", get(get_objects).post(post_objects))
        .route("/taxii2/api/collections/{collection}/objects/{object}/", get(get_object))
        .route("/taxii2/api/collections/{collection}/objects/{object}/versions/", get(get_versions))
        .route("/taxii2/api/collections/{collection}/manifest/", get(get_manifest))
        .route("/taxii2/api/status/{status}/", get(get_status))
        .route("/taxii2", get(not_found))
        .route("/taxii2/{*rest}", get(not_found).post(not_found).put(not_found).delete(not_found))
        .layer(DefaultBodyLimit::max(max_post))
        .layer(axum::middleware::map_response(taxii_content_type))
}

// ------------------------------------------------------------------------------------------
// Errors and responses
// ------------------------------------------------------------------------------------------

/// A TAXII error message (section 3.6.1).
#[derive(Debug)]
pub struct TaxiiError {
    pub status: StatusCode,
    pub title: &'static str,
    pub description: String,
    retry_after: Option<u64>,
}

impl TaxiiError {
    pub fn new(status: StatusCode, title: &'static str, description: impl Into<String>) -> Self {
        TaxiiError { status, title, description: description.into(), retry_after: None }
    }
    fn bad(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad request", description)
    }
    fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not found", "no such resource (or not one this account may read)")
    }
}

impl From<AppError> for TaxiiError {
    fn from(e: AppError) -> Self {
        let status = e.status();
        if let AppError::Internal(detail) = &e {
            tracing::error!(error = %detail, "internal error");
        }
        let mut t = TaxiiError::new(status, status.canonical_reason().unwrap_or("error"), e.to_string());
        if status == StatusCode::TOO_MANY_REQUESTS {
            t.retry_after = Some(1);
        }
        t
    }
}

impl From<AuthFailure> for TaxiiError {
    fn from(f: AuthFailure) -> Self {
        match f {
            AuthFailure::Unauthorized => TaxiiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "send HTTP Basic (user:password or key_id:key) or Authorization: Bearer <api key>"),
            AuthFailure::CertificateRequired => {
                TaxiiError::new(StatusCode::UNAUTHORIZED, "client certificate required", "this hub's TAXII server requires a TLS client certificate signed by its client CA")
            }
            AuthFailure::Throttled(wait) => {
                let secs = crate::auth::LoginError::retry_after_secs(wait).max(1);
                let mut t = TaxiiError::new(StatusCode::TOO_MANY_REQUESTS, "too many failed logins", format!("too many failed logins from your address: retry after {secs} seconds"));
                t.retry_after = Some(secs);
                t
            }
            AuthFailure::Other(e) => e.into(),
        }
    }
}

impl IntoResponse for TaxiiError {
    fn into_response(self) -> Response {
        let body = json!({ "title": self.title, "description": self.description, "http_status": self.status.as_u16().to_string() });
        let mut resp = taxii_body(self.status, body.to_string());
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"ward hub TAXII\", charset=\"UTF-8\""));
        }
        resp
    }
}

type TaxiiResult<T> = Result<T, TaxiiError>;

fn taxii_body(status: StatusCode, body: String) -> Response {
    let mut resp = (status, Body::from(body)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TAXII));
    resp
}

/// Whatever answered (a rejection by an extractor, a method not allowed, a body too large),
/// the client gets TAXII JSON: a response of another type becomes a TAXII error with its status.
async fn taxii_content_type(resp: Response) -> Response {
    let is_taxii = resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes() == MEDIA_TAXII.as_bytes());
    if is_taxii {
        return resp;
    }
    let status = resp.status();
    let retry = resp.headers().get(header::RETRY_AFTER).cloned();
    let allow = resp.headers().get(header::ALLOW).cloned();
    let description = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "request body too large: see max_content_length of the API root".to_string(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this resource".to_string(),
        StatusCode::REQUEST_TIMEOUT => "the request body did not arrive in time".to_string(),
        s => s.canonical_reason().unwrap_or("error").to_string(),
    };
    let mut out = TaxiiError::new(status, status.canonical_reason().unwrap_or("error"), description).into_response();
    if let Some(r) = retry {
        out.headers_mut().insert(header::RETRY_AFTER, r);
    }
    if let Some(a) = allow {
        out.headers_mut().insert(header::ALLOW, a);
    }
    out
}

async fn not_found() -> TaxiiError {
    TaxiiError::not_found()
}

/// 406 unless `Accept` admits TAXII 2.1 JSON (absent, `*/*`, `application/*`,
/// `application/taxii+json` with no version or version 2.1).
pub fn check_accept(headers: &HeaderMap) -> TaxiiResult<()> {
    let values: Vec<&HeaderValue> = headers.get_all(header::ACCEPT).iter().collect();
    if values.is_empty() {
        return Ok(());
    }
    for value in values {
        let Ok(text) = value.to_str() else { continue };
        for range in text.split(',').take(32) {
            if accepts_taxii(range) {
                return Ok(());
            }
        }
    }
    Err(TaxiiError::new(StatusCode::NOT_ACCEPTABLE, "not acceptable", format!("this server answers {MEDIA_TAXII}")))
}

fn accepts_taxii(range: &str) -> bool {
    let mut parts = range.split(';').map(str::trim);
    let media = parts.next().unwrap_or("").to_ascii_lowercase();
    let params: Vec<(String, String)> = parts
        .filter_map(|p| p.split_once('=').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_string())))
        .collect();
    if params.iter().any(|(k, v)| k == "q" && v.parse::<f32>().is_ok_and(|q| q <= 0.0)) {
        return false;
    }
    match media.as_str() {
        "*/*" | "application/*" => true,
        "application/taxii+json" => params.iter().all(|(k, v)| k != "version" || v == "2.1"),
        _ => false,
    }
}

fn check_content_type(headers: &HeaderMap) -> TaxiiResult<()> {
    let ok = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
        let mut parts = ct.split(';').map(str::trim);
        parts.next().is_some_and(|m| m.eq_ignore_ascii_case("application/taxii+json"))
            && parts.all(|p| match p.split_once('=') {
                Some((k, v)) if k.trim().eq_ignore_ascii_case("version") => v.trim().trim_matches('"') == "2.1",
                _ => true,
            })
    });
    if ok {
        Ok(())
    } else {
        Err(TaxiiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported media type", format!("send the envelope as {MEDIA_TAXII}")))
    }
}

async fn account(state: &HubState, headers: &HeaderMap, source: ClientAddr, cert: &PeerCert) -> TaxiiResult<TaxiiAccount> {
    check_accept(headers)?;
    Ok(authenticate_with_cert(state, headers, source, cert).await?)
}

fn readable(id: &str, a: &TaxiiAccount) -> TaxiiResult<Collection> {
    let c = Collection::from_id(id).filter(|c| c.visible(a)).ok_or_else(TaxiiError::not_found)?;
    if !c.can_read(a) {
        return Err(TaxiiError::new(StatusCode::FORBIDDEN, "forbidden", "this account may write to this collection but not read it"));
    }
    Ok(c)
}

// ------------------------------------------------------------------------------------------
// Timestamps and the cursor
// ------------------------------------------------------------------------------------------

/// A TAXII timestamp with microseconds (`2026-11-03T13:00:00.123456Z`).
pub fn timestamp_us(us: i64) -> String {
    let t = chrono::DateTime::<chrono::Utc>::from_timestamp_micros(us).unwrap_or_default();
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Any RFC 3339 time as microseconds since the epoch.
pub fn parse_timestamp_us(s: &str) -> Option<i64> {
    if s.len() > 64 {
        return None;
    }
    chrono::DateTime::parse_from_rfc3339(s.trim()).ok().map(|t| t.timestamp_micros())
}

/// The `next` cursor: the last row's (date_added, seq), opaque to clients.
pub fn encode_cursor(date_added_us: i64, seq: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{date_added_us}.{seq}"))
}

pub fn decode_cursor(s: &str) -> Option<(i64, i64)> {
    if s.is_empty() || s.len() > MAX_CURSOR_BYTES {
        return None;
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    let (d, q) = text.split_once('.')?;
    let digits = |x: &str| !x.is_empty() && x.len() <= 19 && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(d) || !digits(q) {
        return None;
    }
    Some((d.parse().ok()?, q.parse().ok()?))
}

// ------------------------------------------------------------------------------------------
// The query string
// ------------------------------------------------------------------------------------------

/// The filters of one GET, parsed and bounded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filters {
    pub added_after_us: Option<i64>,
    pub limit: Option<usize>,
    pub next: Option<(i64, i64)>,
    pub ids: Vec<String>,
    pub types: Vec<String>,
    pub versions: Option<VersionFilter>,
    pub spec_versions: Vec<String>,
}

impl Filters {
    /// The row after which this page starts: the cursor, else `added_after`.
    pub fn after(&self) -> (i64, i64) {
        match (self.next, self.added_after_us) {
            (Some(c), Some(a)) => c.max((a, i64::MAX)),
            (Some(c), None) => c,
            (None, Some(a)) => (a, i64::MAX),
            (None, None) => (i64::MIN, i64::MIN),
        }
    }

    pub fn page_size(&self) -> usize {
        match self.limit {
            Some(0) | None => DEFAULT_PAGE,
            Some(n) => n.min(MAX_PAGE),
        }
    }
}

fn push_list(into: &mut Vec<String>, value: &str, what: &str, ok: impl Fn(&str) -> bool) -> Result<(), String> {
    for v in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
        if into.len() >= MAX_FILTER_VALUES {
            return Err(format!("at most {MAX_FILTER_VALUES} values in match[{what}]"));
        }
        if !ok(v) {
            return Err(format!("bad value in match[{what}]: {:?}", v.chars().take(80).collect::<String>()));
        }
        into.push(v.to_string());
    }
    Ok(())
}

fn stix_type_name(t: &str) -> bool {
    (3..=250).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Parses a query string (without `?`). Errors say which parameter is wrong.
pub fn parse_query(raw: &str) -> Result<Filters, String> {
    if raw.len() > MAX_QUERY_BYTES {
        return Err(format!("query string longer than {MAX_QUERY_BYTES} bytes"));
    }
    let mut f = Filters::default();
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        match key.as_ref() {
            "added_after" => f.added_after_us = Some(parse_timestamp_us(&value).ok_or("added_after must be an RFC 3339 timestamp such as 2026-11-03T13:00:00.000000Z")?),
            "limit" => f.limit = Some(value.trim().parse::<usize>().map_err(|_| "limit must be a whole number".to_string())?),
            "next" => f.next = Some(decode_cursor(value.trim()).ok_or("next is not a cursor this server gave out")?),
            "match[id]" => push_list(&mut f.ids, &value, "id", valid_id)?,
            "match[type]" => push_list(&mut f.types, &value, "type", stix_type_name)?,
            "match[spec_version]" => push_list(&mut f.spec_versions, &value, "spec_version", |v| v.len() <= 8 && v.bytes().all(|b| b.is_ascii_digit() || b == b'.'))?,
            "match[version]" => {
                let vf = f.versions.get_or_insert_with(VersionFilter::default);
                for v in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                    if vf.at.len() + 3 > MAX_FILTER_VALUES {
                        return Err(format!("at most {MAX_FILTER_VALUES} values in match[version]"));
                    }
                    match v {
                        "all" => vf.all = true,
                        "first" => vf.first = true,
                        "last" => vf.last = true,
                        t => vf.at.push(parse_timestamp_us(t).ok_or_else(|| format!("match[version] takes all, first, last or timestamps, not {:?}", t.chars().take(80).collect::<String>()))?),
                    }
                }
            }
            k if k.starts_with("match[") => return Err(format!("unsupported filter {:?}: use match[id], match[type], match[version] or match[spec_version]", k.chars().take(80).collect::<String>())),
            _ => {}
        }
    }
    Ok(f)
}

fn filters(raw: Option<String>) -> TaxiiResult<Filters> {
    parse_query(raw.as_deref().unwrap_or("")).map_err(TaxiiError::bad)
}

// ------------------------------------------------------------------------------------------
// Discovery, API root, collections
// ------------------------------------------------------------------------------------------

/// Where clients reach this hub: `public_url`, else the scheme this hub serves and the `Host`
/// the client used.
fn base_url(state: &HubState, headers: &HeaderMap) -> String {
    let public = state.config.public_url.trim_end_matches('/');
    if !public.is_empty() {
        return public.to_string();
    }
    let tls = state.config.tls.cert.is_some() || state.config.tls.self_signed;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.len() <= 255 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)))
        .unwrap_or("localhost");
    format!("{}://{host}", if tls { "https" } else { "http" })
}

async fn discovery(State(state): State<HubState>, source: ClientAddr, cert: PeerCert, headers: HeaderMap) -> TaxiiResult<Response> {
    account(&state, &headers, source, &cert).await?;
    let root = format!("{}/taxii2/api/", base_url(&state, &headers));
    let body = json!({
        "title": format!("ward hub {}", state.config.taxii.hub_name),
        "description": "Election infrastructure threat sharing: campaigns, indicators and sightings as STIX 2.1 with TLP 2.0 markings.",
        "default": root,
        "api_roots": [root],
    });
    Ok(taxii_body(StatusCode::OK, body.to_string()))
}

async fn api_root(State(state): State<HubState>, source: ClientAddr, cert: PeerCert, headers: HeaderMap) -> TaxiiResult<Response> {
    account(&state, &headers, source, &cert).await?;
    let body = json!({
        "title": "ward hub",
        "versions": [MEDIA_TAXII],
        "max_content_length": state.config.taxii.max_post_bytes,
    });
    Ok(taxii_body(StatusCode::OK, body.to_string()))
}

fn collection_json(c: Collection, a: &TaxiiAccount) -> Value {
    json!({
        "id": c.id(),
        "title": c.title(),
        "description": c.description(),
        "can_read": c.can_read(a),
        "can_write": c.can_write(a),
        "media_types": [MEDIA_STIX],
    })
}

async fn collections(State(state): State<HubState>, source: ClientAddr, cert: PeerCert, headers: HeaderMap) -> TaxiiResult<Response> {
    let a = account(&state, &headers, source, &cert).await?;
    let list: Vec<Value> = Collection::ALL.into_iter().filter(|c| c.visible(&a)).map(|c| collection_json(c, &a)).collect();
    let body = if list.is_empty() { json!({}) } else { json!({ "collections": list }) };
    Ok(taxii_body(StatusCode::OK, body.to_string()))
}

async fn collection(State(state): State<HubState>, source: ClientAddr, cert: PeerCert, headers: HeaderMap, Path(id): Path<String>) -> TaxiiResult<Response> {
    let a = account(&state, &headers, source, &cert).await?;
    let c = Collection::from_id(&id).filter(|c| c.visible(&a)).ok_or_else(TaxiiError::not_found)?;
    Ok(taxii_body(StatusCode::OK, collection_json(c, &a).to_string()))
}

// ------------------------------------------------------------------------------------------
// Reading objects
// ------------------------------------------------------------------------------------------

enum Listing {
    Objects,
    Manifest,
    Versions,
}

/// One page: the rows, `more`, and the headers.
async fn page(state: &HubState, a: &TaxiiAccount, c: Collection, f: &Filters, default_versions: VersionFilter, with_body: bool) -> TaxiiResult<(Vec<StoredObject>, bool)> {
    let size = f.page_size();
    let query = ObjectQuery {
        scope: c.scope(a),
        after: f.after(),
        ids: f.ids.clone(),
        types: f.types.clone(),
        spec_versions: f.spec_versions.clone(),
        versions: f.versions.clone().unwrap_or(default_versions),
        limit: size + 1,
        with_body,
    };
    let mut rows = state.store_call(move |s| s.taxii_objects(&query)).await?;
    let more = rows.len() > size;
    rows.truncate(size);
    Ok((rows, more))
}

fn version_of(row: &StoredObject) -> String {
    if row.version.is_empty() {
        timestamp_us(row.date_added_us)
    } else {
        row.version.clone()
    }
}

fn listing_response(listing: Listing, rows: &[StoredObject], more: bool) -> Response {
    let mut body = String::with_capacity(64 + rows.iter().map(|r| r.body.as_ref().map_or(160, String::len) + 1).sum::<usize>());
    let _ = write!(body, "{{\"more\":{more}");
    if more {
        if let Some(last) = rows.last() {
            let _ = write!(body, ",\"next\":\"{}\"", encode_cursor(last.date_added_us, last.seq));
        }
    }
    if !rows.is_empty() {
        let key = match listing {
            Listing::Objects | Listing::Manifest => "objects",
            Listing::Versions => "versions",
        };
        let _ = write!(body, ",\"{key}\":[");
        for (i, r) in rows.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            match listing {
                Listing::Objects => body.push_str(r.body.as_deref().unwrap_or("{}")),
                Listing::Manifest => {
                    let entry = json!({ "id": r.object_id, "date_added": timestamp_us(r.date_added_us), "version": version_of(r), "media_type": MEDIA_STIX });
                    body.push_str(&entry.to_string());
                }
                Listing::Versions => body.push_str(&Value::String(version_of(r)).to_string()),
            }
        }
        body.push(']');
    }
    body.push('}');
    let mut resp = taxii_body(StatusCode::OK, body);
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        for (name, us) in [("x-taxii-date-added-first", first.date_added_us), ("x-taxii-date-added-last", last.date_added_us)] {
            if let Ok(v) = HeaderValue::from_str(&timestamp_us(us)) {
                resp.headers_mut().insert(name, v);
            }
        }
    }
    resp
}

async fn get_objects(State(state): State<HubState>, source: ClientAddr, cert: PeerCert, headers: HeaderMap, Path(id): Path<String>, RawQuery(q): RawQuery) -> TaxiiResult<Response> {
    let a = account(&state, &headers, source, &cert).await?;
    let c = readable(&id, &a)?;
    let f = filters(q)?;
    let (rows, more) = page(&state, &a, c, &f, VersionFilter::last(), true).await?;
    Ok(listing_response(Listing::Objects, &rows, more))
}

async fn get_manifest(State(state): State<HubState>, source: ClientAddr, cert: PeerCert, headers: HeaderMap, Path(id): Path<String>, RawQuery(q): RawQuery) -> TaxiiResult<Response> {
    let a = account(&state, &headers, source, &cert).await?;
    let c = readable(&id, &a)?;
    let f = filters(q)?;
    let (rows, more) = page(&state, &a, c, &f, VersionFilter::last(), false).await?;
    Ok(listing_response(Listing::Manifest, &rows, more))
}

/// One object: its versions as filtered (`match[id]` is the path's; 404 when none is readable).
#[allow(clippy::too_many_arguments)]
async fn object_listing(state: HubState, source: ClientAddr, cert: PeerCert, headers: HeaderMap, collection: String, object: String, q: Option<String>, listing: Listing) -> TaxiiResult<Response> {
    let a = account(&state, &headers, source, &cert).await?;
    let c = readable(&collection, &a)?;
    if !valid_id(&object) {
        return Err(TaxiiError::not_found());
    }
    let mut f = filters(q)?;
    f.ids = vec![object];
    f.types.clear();
    let (default_versions, with_body) = match listing {
        Listing::Versions => (VersionFilter { all: true, ..Default::default() }, false),
        _ => (VersionFilter::last(), true),
    };
    if matches!(listing, Listing::Versions) {
        // The versions endpoint lists every version (match[version] does not apply to it).
        f.versions = None;
    }
    let (rows, more) = page(&state, &a, c, &f, default_versions, with_body).await?;
    if rows.is_empty() && f.next.is_none() && f.added_after_us.is_none() {
        return Err(TaxiiError::not_found());
    }
    Ok(listing_response(listing, &rows, more))
}

async fn get_object(State(state): State<HubState>, source: ClientAddr, cert: PeerCert, headers: HeaderMap, Path((collection, object)): Path<(String, String)>, RawQuery(q): RawQuery) -> TaxiiResult<Response> {
    object_listing(state, source, cert, headers, collection, object, q, Listing::Objects).await
}

async fn get_versions(State(state): State<HubState>, source: ClientAddr, cert: PeerCert, headers: HeaderMap, Path((collection, object)): Path<(String, String)>, RawQuery(q): RawQuery) -> TaxiiResult<Response> {
    object_listing(state, source, cert, headers, collection, object, q, Listing::Versions).await
}

// ------------------------------------------------------------------------------------------
// Adding objects
// ------------------------------------------------------------------------------------------

/// One posted object's outcome, for the status resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Accepted(NewObject),
    Refused { id: Option<String>, version: Option<String>, message: String },
}

/// Reads a POSTed envelope: `{"objects": [...]}` (a STIX bundle is read the same way). Fails
/// only when the body is not such an envelope; each object gets its own verdict.
pub fn read_envelope(body: &[u8], jurisdiction: Option<i64>) -> Result<Vec<Verdict>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let Value::Object(mut map) = v else { return Err("the body must be a TAXII envelope: {\"objects\": [...]}".into()) };
    let objects = match map.remove("objects") {
        Some(Value::Array(a)) => a,
        None => Vec::new(),
        Some(_) => return Err("objects must be a list of STIX objects".into()),
    };
    if objects.len() > MAX_POST_OBJECTS {
        return Err(format!("at most {MAX_POST_OBJECTS} objects in one POST"));
    }
    Ok(objects.into_iter().map(|o| verdict(o, jurisdiction)).collect())
}

fn short(s: &str) -> String {
    s.chars().take(300).collect()
}

fn verdict(raw: Value, jurisdiction: Option<i64>) -> Verdict {
    let id = raw.get("id").and_then(Value::as_str).map(short);
    let version = raw.get("modified").or_else(|| raw.get("created")).and_then(Value::as_str).map(short);
    let o = match StixObject::from_value(raw) {
        Ok(o) => o,
        Err(e) => return Verdict::Refused { id, version, message: short(&e.to_string()) },
    };
    let tlp = o.tlp().unwrap_or(if o.stix_type == "marking-definition" { Tlp::Clear } else { UNMARKED_TLP });
    if tlp == Tlp::Red {
        return Verdict::Refused { id, version, message: "TLP:RED objects are not taken: they could never be shared".into() };
    }
    let stamp = o.modified.clone().or_else(|| o.created.clone());
    let version_us = stamp.as_deref().and_then(parse_timestamp_us).unwrap_or(0);
    let body = o.raw.to_string();
    Verdict::Accepted(NewObject {
        object_id: o.id,
        object_type: o.stix_type,
        spec_version: o.spec_version.unwrap_or_else(|| super::stix::SPEC_VERSION.to_string()),
        version: stamp.unwrap_or_default(),
        version_us,
        tlp,
        jurisdiction_id: jurisdiction,
        content_hash: hex::encode(Sha256::digest(body.as_bytes())),
        body,
    })
}

/// The body is read only after the account is known to be allowed to write here, so nobody
/// makes the hub buffer `max_post_bytes` without credentials.
async fn post_objects(State(state): State<HubState>, source: ClientAddr, cert: PeerCert, headers: HeaderMap, Path(id): Path<String>, body: Body) -> TaxiiResult<Response> {
    let a = account(&state, &headers, source, &cert).await?;
    let c = Collection::from_id(&id).filter(|c| c.visible(&a)).ok_or_else(TaxiiError::not_found)?;
    if !c.can_write(&a) {
        return Err(TaxiiError::new(StatusCode::FORBIDDEN, "forbidden", "this account may not write to this collection"));
    }
    check_content_type(&headers)?;
    let max = state.config.taxii.max_post_bytes.max(1024);
    let body = crate::body::read_to_limit(body, max).await.map_err(|e| match e {
        crate::body::BodyReadError::TooLarge(_) => TaxiiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large", format!("at most {max} bytes per POST: send smaller envelopes")),
        // The deadline middleware answers 408 for a timed-out body.
        other => TaxiiError::bad(other.to_string()),
    })?;
    let jurisdiction = a.jurisdiction;
    let request_ms = crate::model::now_ms();
    let status_id = uuid::Uuid::new_v4().to_string();
    let id_for_status = status_id.clone();
    // Parsing, checking and rendering the status happen here, outside the store's writer; only
    // the inserts and one string join run inside its transaction.
    let prepared = tokio::task::spawn_blocking(move || {
        read_envelope(&body, jurisdiction).map(|verdicts| PostStatus::prepare(&id_for_status, verdicts, request_ms))
    })
    .await
    .map_err(AppError::from)?;
    let (accepted, status) = prepared.map_err(|e| {
        if e.starts_with("at most") {
            TaxiiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too many objects", e)
        } else {
            TaxiiError::bad(e)
        }
    })?;
    // The objects and the status resource in one transaction (one commit per POST).
    let (collection, who) = (c.stored(), a.name.clone());
    // A peer hub's post: its indicators (when trusted) and the relay (docs/sharing.md "Federation").
    let for_federation = (c == Collection::Inbox && state.federation.is_peer(&a.name)).then(|| accepted.clone());
    let (stored, text) = state
        .store_call(move |s| {
            let render = |stored: &[Option<i64>]| status.render(stored);
            s.taxii_post(collection, &who, &accepted, crate::model::now_us(), &status_id, &render, request_ms, request_ms - STATUS_KEEP_MS)
        })
        .await?;
    if let Some(objects) = for_federation {
        super::federation::received(&state, &a.name, objects, &stored).await;
    }
    Ok(taxii_body(StatusCode::ACCEPTED, text))
}

/// The status resource of one POST (TAXII 2.1 section 4.3.1), complete at once, rendered
/// before the objects are stored but for one thing only the store knows: which successes were
/// versions already held. [`PostStatus::render`] adds that and joins the parts.
#[derive(Debug, Clone, PartialEq)]
pub struct PostStatus {
    /// Up to and including `"successes":[`.
    head: String,
    /// Each success without its closing brace.
    successes: Vec<String>,
    /// From `]` after the successes to the end.
    tail: String,
}

impl PostStatus {
    /// Splits the verdicts into the objects to store and the status to render.
    pub fn prepare(id: &str, verdicts: Vec<Verdict>, request_ms: i64) -> (Vec<NewObject>, PostStatus) {
        let quoted = |s: &str| Value::String(s.to_string()).to_string();
        let mut accepted = Vec::with_capacity(verdicts.len());
        let mut successes = Vec::with_capacity(verdicts.len());
        let mut failures: Vec<String> = Vec::new();
        for v in verdicts {
            match v {
                Verdict::Accepted(o) => {
                    let mut entry = format!("{{\"id\":{}", quoted(&o.object_id));
                    if !o.version.is_empty() {
                        let _ = write!(entry, ",\"version\":{}", quoted(&o.version));
                    }
                    successes.push(entry);
                    accepted.push(o);
                }
                Verdict::Refused { id, version, message } => {
                    let mut entry = json!({ "id": id.unwrap_or_default(), "message": message });
                    if let Some(v) = version {
                        entry["version"] = json!(v);
                    }
                    failures.push(entry.to_string());
                }
            }
        }
        let total = successes.len() + failures.len();
        let head = format!(
            "{{\"id\":{},\"status\":\"complete\",\"request_timestamp\":{},\"total_count\":{total},\"success_count\":{},\"successes\":[",
            quoted(id),
            quoted(&timestamp_us(request_ms * 1000)),
            successes.len()
        );
        let tail = format!("],\"failure_count\":{},\"failures\":[{}],\"pending_count\":0,\"pendings\":[]}}", failures.len(), failures.join(","));
        (accepted, PostStatus { head, successes, tail })
    }

    /// The status resource's JSON; `stored` is the store's answer for each success in order
    /// (`None`: that version was already held).
    pub fn render(&self, stored: &[Option<i64>]) -> String {
        const HELD: &str = ",\"message\":\"this version was already held\"}";
        let mut out = String::with_capacity(self.head.len() + self.tail.len() + self.successes.iter().map(|e| e.len() + HELD.len() + 1).sum::<usize>());
        out.push_str(&self.head);
        for (i, entry) in self.successes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(entry);
            out.push_str(if matches!(stored.get(i), Some(None)) { HELD } else { "}" });
        }
        out.push_str(&self.tail);
        out
    }
}

async fn get_status(State(state): State<HubState>, source: ClientAddr, cert: PeerCert, headers: HeaderMap, Path(id): Path<String>) -> TaxiiResult<Response> {
    let a = account(&state, &headers, source, &cert).await?;
    if id.len() > 64 {
        return Err(TaxiiError::not_found());
    }
    let found = state.store_call(move |s| s.taxii_status(&id)).await?;
    match found {
        Some((owner, body)) if a.analyst || owner == a.name => Ok(taxii_body(StatusCode::OK, body)),
        _ => Err(TaxiiError::not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        for (d, s) in [(0, 0), (1_793_710_800_000_123, 42), (i64::MAX, i64::MAX)] {
            assert_eq!(decode_cursor(&encode_cursor(d, s)), Some((d, s)));
        }
        for bad in ["", "x", "MTIz", "LTEuMg", &"A".repeat(100), "MS4y===", "MS4"] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn query_strings_parse_and_are_bounded() {
        let id = "indicator--6f1c2b0e-8d4a-4f7e-9b3c-5e2a7d10c4e9";
        let f = parse_query(&format!("added_after=2026-11-03T13:00:00.000001Z&limit=5&match%5Bid%5D={id}&match[type]=indicator,campaign&match[version]=all&match[spec_version]=2.1")).unwrap();
        assert_eq!(f.added_after_us, Some(1_793_710_800_000_001));
        assert_eq!(f.page_size(), 5);
        assert_eq!(f.ids, vec![id.to_string()]);
        assert_eq!(f.types, vec!["indicator", "campaign"]);
        assert!(f.versions.as_ref().unwrap().all);
        assert_eq!(parse_query("limit=100000").unwrap().page_size(), MAX_PAGE);
        assert_eq!(parse_query("").unwrap().page_size(), DEFAULT_PAGE);
        for bad in ["added_after=yesterday", "limit=-1", "next=zz", "match[id]=nope", "match[colour]=red", "match[version]=latest", "match[type]=A"] {
            assert!(parse_query(bad).is_err(), "{bad}");
        }
        let many = (0..=MAX_FILTER_VALUES).map(|_| "indicator").collect::<Vec<_>>().join(",");
        assert!(parse_query(&format!("match[type]={many}")).is_err());
        assert!(parse_query(&"a".repeat(MAX_QUERY_BYTES + 1)).is_err());
        // The cursor wins over an earlier added_after, and added_after skips all of its instant.
        let f = Filters { next: Some((10, 3)), added_after_us: Some(5), ..Default::default() };
        assert_eq!(f.after(), (10, 3));
        let f = Filters { next: Some((10, 3)), added_after_us: Some(10), ..Default::default() };
        assert_eq!(f.after(), (10, i64::MAX));
    }

    #[test]
    fn accept_headers_are_negotiated() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
            m
        };
        assert!(check_accept(&HeaderMap::new()).is_ok());
        for ok in [MEDIA_TAXII, "application/taxii+json", "*/*", "text/html, application/taxii+json;version=2.1", "application/*"] {
            assert!(check_accept(&h(ok)).is_ok(), "{ok}");
        }
        for bad in ["application/json", "application/taxii+json;version=2.0", "text/html", "application/taxii+json;q=0"] {
            assert_eq!(check_accept(&h(bad)).unwrap_err().status, StatusCode::NOT_ACCEPTABLE, "{bad}");
        }
    }

    #[test]
    fn envelopes_are_read_object_by_object() {
        let good = json!({"type": "marking-definition", "spec_version": "2.1", "id": Tlp::Green.stix_id(), "created": "2022-10-01T00:00:00.000Z"});
        let red = json!({"type": "note", "spec_version": "2.1", "id": "note--6f1c2b0e-8d4a-4f7e-9b3c-5e2a7d10c4e9", "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z", "content": "x", "object_refs": [], "object_marking_refs": [Tlp::Red.stix_id()]});
        let body = json!({"objects": [good, red, {"type": "indicator"}, 7]}).to_string();
        let v = read_envelope(body.as_bytes(), Some(3)).unwrap();
        assert!(matches!(&v[0], Verdict::Accepted(o) if o.tlp == Tlp::Clear && o.jurisdiction_id == Some(3) && o.version_us > 0), "a marking definition is public: {:?}", v[0]);
        assert!(matches!(&v[1], Verdict::Refused { message, .. } if message.contains("TLP:RED")));
        assert!(matches!(&v[2], Verdict::Refused { .. }) && matches!(&v[3], Verdict::Refused { .. }));
        assert!(read_envelope(b"[]", None).is_err() && read_envelope(b"{\"objects\": 1}", None).is_err() && read_envelope(b"nope", None).is_err());
        assert!(read_envelope(b"{}", None).unwrap().is_empty());
    }

    #[test]
    fn post_status_renders_valid_json_with_held_versions_marked() {
        let good = json!({"type": "marking-definition", "spec_version": "2.1", "id": Tlp::Green.stix_id(), "created": "2022-10-01T00:00:00.000Z"});
        let note = json!({"type": "note", "spec_version": "2.1", "id": "note--6f1c2b0e-8d4a-4f7e-9b3c-5e2a7d10c4e9", "created": "2026-01-01T00:00:00Z", "modified": "2026-01-01T00:00:00Z", "content": "\"quoted\"", "object_refs": []});
        let body = json!({"objects": [good, {"type": "indicator", "id": "x\"y"}, note]}).to_string();
        let (accepted, status) = PostStatus::prepare("5d3c\"", read_envelope(body.as_bytes(), None).unwrap(), 1_793_710_800_000);
        assert_eq!(accepted.len(), 2);
        let v: Value = serde_json::from_str(&status.render(&[Some(1), None])).unwrap();
        assert_eq!((v["id"].as_str(), v["total_count"].as_u64(), v["success_count"].as_u64(), v["failure_count"].as_u64()), (Some("5d3c\""), Some(3), Some(2), Some(1)));
        assert_eq!(v["successes"][0]["id"], Tlp::Green.stix_id());
        assert!(v["successes"][0].get("message").is_none());
        assert_eq!(v["successes"][1]["message"], "this version was already held");
        assert_eq!(v["successes"][1]["version"], "2026-01-01T00:00:00Z");
        assert_eq!(v["failures"][0]["id"], "x\"y");
        assert_eq!(v["request_timestamp"], "2026-11-03T13:00:00.000000Z");
        assert_eq!((v["pending_count"].as_u64(), v["pendings"].as_array().map(Vec::len)), (Some(0), Some(0)));
        let (_, empty) = PostStatus::prepare("e", Vec::new(), 0);
        let v: Value = serde_json::from_str(&empty.render(&[])).unwrap();
        assert_eq!(v["successes"], json!([]));
    }
}
