//! Who is asking, on the TAXII server: hub users (HTTP Basic with their password, or a session
//! token as a bearer) and long-lived API keys (HTTP Basic `key_id:key`, or `Bearer key`) for
//! partners, peer hubs, SIEMs and jurisdictions; and what each kind of account may read and
//! write ([`TaxiiAccount`], [`Collection`]).
//!
//! * Keys are `wtk_` + 64 hex digits (256 random bits), shown once; the store keeps their
//!   SHA-256. A key's `key_id` (`wk-` + 16 hex digits) is public: it names the key in lists and
//!   is the user name for HTTP Basic.
//! * Wrong credentials answer 401. Failures count in the hub's login throttle ([`LoginThrottle`]),
//!   per source and per account name, so guessing passwords over Basic is as slow as on the
//!   login form; a throttled source gets 429 with `Retry-After`. A password check succeeds
//!   through the same throttle, as a login does. Keys are too long to guess, so a valid key is
//!   checked by its hash alone and only failures touch the throttle.
//! * **Client certificates** (mutual TLS, `[tls] client_ca`; [`crate::tls`]): a key may be
//!   bound to one certificate's SHA-256. A connection whose verified certificate is bound to an
//!   active key authenticates as that key with no `Authorization` header at all — the
//!   certificate is the credential, as in CISA AIS. When a request carries both, they must
//!   agree: credentials of another account than the certificate's key answer 401. A
//!   certificate bound to no key (or to a revoked one) authenticates nobody by itself.
//!   With `client_auth = "required"`, a TAXII request without a verified certificate is 401
//!   whatever else it sends; with a certificate, Basic or bearer credentials still work
//!   (a hub analyst's password over a connection with a certificate the CA signed).
//!
//! [`LoginThrottle`]: crate::auth::LoginThrottle

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::Engine;
use serde::Serialize;
use ward_model::tlp::Tlp;

use super::objects::{ApiKey, ReadScope, COLLECTION_COMMUNITY, COLLECTION_HUB, COLLECTION_INBOX, SCOPE_TAXII_READ, SCOPE_TAXII_WRITE};
use crate::auth::{self, ClientAddr};
use crate::error::AppError;
use crate::model::{now_ms, Role};
use crate::state::HubState;

/// The prefix of an API key's secret.
pub const KEY_PREFIX: &str = "wtk";
/// Longest `Authorization` header read (a longer one is refused, not parsed).
const MAX_AUTHORIZATION_BYTES: usize = 1024;

/// An authenticated TAXII reader or writer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaxiiAccount {
    /// `user:NAME` or `key:KEY_ID` (recorded as who added an object, and who owns a status).
    pub name: String,
    /// A hub analyst: every collection, AMBER+STRICT whatever it concerns.
    pub analyst: bool,
    /// A jurisdiction's account: only what concerns it, and community objects.
    pub jurisdiction: Option<i64>,
    pub max_tlp: Tlp,
    pub read: bool,
    pub write: bool,
    /// May read the named hub collection (analysts; peer hubs' keys with `--name-jurisdictions`).
    pub named: bool,
}

impl TaxiiAccount {
    fn from_key(k: &ApiKey) -> Self {
        TaxiiAccount {
            name: format!("key:{}", k.key_id),
            analyst: false,
            jurisdiction: k.jurisdiction_id,
            max_tlp: k.max_tlp.min(Tlp::AmberStrict),
            read: k.has_scope(SCOPE_TAXII_READ),
            write: k.has_scope(SCOPE_TAXII_WRITE),
            named: k.name_jurisdictions && k.jurisdiction_id.is_none(),
        }
    }

    fn from_user(u: &crate::model::User) -> Self {
        let analyst = u.role == Role::Analyst;
        TaxiiAccount {
            name: format!("user:{}", u.username),
            analyst,
            jurisdiction: if analyst { None } else { u.jurisdiction_id },
            max_tlp: Tlp::AmberStrict,
            // A jurisdiction's people read their view; a user of no jurisdiction who is not an
            // analyst reads nothing.
            read: analyst || u.jurisdiction_id.is_some(),
            write: analyst,
            named: analyst,
        }
    }
}

/// The collections of the API root. `Jurisdiction` is a view over two stored collections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    /// Everything the hub publishes, jurisdictions named.
    Hub,
    /// The same, anonymised ("a county in OH").
    Community,
    /// Per account: the community objects plus the named ones that concern its jurisdiction.
    Jurisdiction,
    /// Where partners post; read by analysts.
    Inbox,
}

impl Collection {
    pub const ALL: [Collection; 4] = [Collection::Hub, Collection::Community, Collection::Jurisdiction, Collection::Inbox];

    /// The collection's TAXII id (fixed, so clients can be configured once).
    pub fn id(self) -> &'static str {
        match self {
            Collection::Hub => "5a0f4a8e-6c55-4c8e-9a43-1f1b1f6f0d01",
            Collection::Community => "5a0f4a8e-6c55-4c8e-9a43-1f1b1f6f0d02",
            Collection::Jurisdiction => "5a0f4a8e-6c55-4c8e-9a43-1f1b1f6f0d03",
            Collection::Inbox => "5a0f4a8e-6c55-4c8e-9a43-1f1b1f6f0d04",
        }
    }

    pub fn from_id(id: &str) -> Option<Collection> {
        Collection::ALL.into_iter().find(|c| c.id() == id)
    }

    pub fn title(self) -> &'static str {
        match self {
            Collection::Hub => "ward hub: campaigns, indicators and sightings, jurisdictions named",
            Collection::Community => "ward hub: campaigns, indicators and sightings, jurisdictions anonymised",
            Collection::Jurisdiction => "ward hub: your jurisdiction",
            Collection::Inbox => "ward hub: inbox",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Collection::Hub => "What the hub knows, with the election offices that saw each campaign named. Hub analysts and peer hubs allowed named data.",
            Collection::Community => "What the hub knows, each election office shown as \"a county in OH\". Every reader, up to its TLP ceiling.",
            Collection::Jurisdiction => "Community objects and your own jurisdiction's named sightings; never another jurisdiction's.",
            Collection::Inbox => "Objects partners send to the hub (POST). Read by hub analysts.",
        }
    }

    pub fn can_read(self, a: &TaxiiAccount) -> bool {
        if !a.read {
            return false;
        }
        match self {
            Collection::Hub => a.analyst || (a.named && a.jurisdiction.is_none()),
            Collection::Community => true,
            Collection::Jurisdiction => a.jurisdiction.is_some(),
            Collection::Inbox => a.analyst,
        }
    }

    pub fn can_write(self, a: &TaxiiAccount) -> bool {
        self == Collection::Inbox && (a.analyst || a.write)
    }

    /// Listed to this account at all (readable or writable).
    pub fn visible(self, a: &TaxiiAccount) -> bool {
        self.can_read(a) || self.can_write(a)
    }

    /// The stored collection objects are written to.
    pub fn stored(self) -> &'static str {
        match self {
            Collection::Hub => COLLECTION_HUB,
            Collection::Community | Collection::Jurisdiction => COLLECTION_COMMUNITY,
            Collection::Inbox => COLLECTION_INBOX,
        }
    }

    /// What `a` reads here, as the store applies it.
    pub fn scope(self, a: &TaxiiAccount) -> ReadScope {
        let (collections, own_only) = match self {
            Collection::Jurisdiction => (vec![COLLECTION_COMMUNITY.to_string(), COLLECTION_HUB.to_string()], Some(COLLECTION_HUB.to_string())),
            other => (vec![other.stored().to_string()], None),
        };
        ReadScope { collections, own_only, jurisdiction: a.jurisdiction, max_tlp: a.max_tlp.min(Tlp::AmberStrict), strict_any: a.analyst }
    }
}

/// The verified client certificate of the request's connection (its SHA-256), if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerCert(pub Option<String>);

impl FromRequestParts<HubState> for PeerCert {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _state: &HubState) -> Result<Self, Self::Rejection> {
        let cert = parts.extensions.get::<Option<crate::tls::ClientCertificate>>().and_then(|c| c.as_ref()).map(|c| c.sha256.clone());
        Ok(PeerCert(cert))
    }
}

/// Why a request was not authenticated.
#[derive(Debug)]
pub enum AuthFailure {
    /// No credentials, or wrong ones (the same answer for both).
    Unauthorized,
    /// `[tls] client_auth = "required"` and the connection carries no verified certificate.
    CertificateRequired,
    /// Too many failures from this source: wait this long.
    Throttled(Duration),
    Other(AppError),
}

impl From<AppError> for AuthFailure {
    fn from(e: AppError) -> Self {
        AuthFailure::Other(e)
    }
}

enum Presented {
    Basic(String, String),
    Bearer(String),
}

fn presented(headers: &HeaderMap) -> Option<Presented> {
    let value = headers.get(header::AUTHORIZATION)?;
    if value.len() > MAX_AUTHORIZATION_BYTES {
        return None;
    }
    let value = value.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(Presented::Bearer(rest.to_string()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, pass) = text.split_once(':')?;
        return Some(Presented::Basic(user.to_string(), pass.to_string()));
    }
    None
}

/// Authenticates a TAXII request by its credentials and its connection's client certificate
/// (see the module note).
pub async fn authenticate_with_cert(state: &HubState, headers: &HeaderMap, source: ClientAddr, cert: &PeerCert) -> Result<TaxiiAccount, AuthFailure> {
    let Some(fingerprint) = cert.0.clone() else {
        if state.config.tls.client_cert_required() {
            return Err(AuthFailure::CertificateRequired);
        }
        return authenticate(state, headers, source).await;
    };
    let bound = state.store_call(move |s| s.api_key_by_cert(&fingerprint)).await?;
    if presented(headers).is_none() {
        let Some(key) = bound else { return Err(AuthFailure::Unauthorized) };
        limit(state, &format!("key:{}", key.id))?;
        return Ok(TaxiiAccount::from_key(&key));
    }
    let account = authenticate(state, headers, source).await?;
    match bound {
        Some(key) if TaxiiAccount::from_key(&key).name != account.name => Err(AuthFailure::Unauthorized),
        _ => Ok(account),
    }
}

/// Authenticates a TAXII request by its `Authorization` header alone (see the module note).
pub async fn authenticate(state: &HubState, headers: &HeaderMap, source: ClientAddr) -> Result<TaxiiAccount, AuthFailure> {
    let account = match presented(headers).ok_or(AuthFailure::Unauthorized)? {
        Presented::Bearer(token) if token.starts_with(&format!("{KEY_PREFIX}_")) => by_key(state, source, None, &token).await?,
        Presented::Basic(user, pass) if pass.starts_with(&format!("{KEY_PREFIX}_")) => by_key(state, source, Some(&user), &pass).await?,
        Presented::Bearer(token) => {
            let hash = auth::hash_token(&token);
            let found = state.store_call(move |s| s.session(&hash, now_ms())).await?;
            let Some((user, _)) = found else { return Err(AuthFailure::Unauthorized) };
            limit(state, &format!("user:{}", user.id))?;
            TaxiiAccount::from_user(&user)
        }
        Presented::Basic(user, pass) => by_password(state, source, &user, &pass).await?,
    };
    Ok(account)
}

fn limit(state: &HubState, key: &str) -> Result<(), AuthFailure> {
    if state.user_limiter.allow(key) {
        Ok(())
    } else {
        state.metrics.rate_limited.inc();
        Err(AuthFailure::Other(AppError::RateLimited))
    }
}

async fn by_key(state: &HubState, source: ClientAddr, key_id: Option<&str>, secret: &str) -> Result<TaxiiAccount, AuthFailure> {
    let hash = auth::hash_token(secret);
    let found = state.store_call(move |s| s.api_key_by_secret(&hash)).await?;
    match found {
        Some(k) if key_id.is_none_or(|id| id == k.key_id) => {
            limit(state, &format!("key:{}", k.id))?;
            Ok(TaxiiAccount::from_key(&k))
        }
        _ => {
            // Count the failure (keys cannot be guessed, but a flood of wrong ones is throttled
            // like wrong passwords).
            match state.login_throttle.admit(source, key_id.unwrap_or("api-key")).await? {
                Err(wait) => Err(AuthFailure::Throttled(wait)),
                Ok(()) => Err(AuthFailure::Unauthorized),
            }
        }
    }
}

async fn by_password(state: &HubState, source: ClientAddr, username: &str, password: &str) -> Result<TaxiiAccount, AuthFailure> {
    match crate::api::check_password(state, source, username, password).await {
        Ok(user) => {
            limit(state, &format!("user:{}", user.id))?;
            Ok(TaxiiAccount::from_user(&user))
        }
        Err(auth::LoginError::Throttled(wait)) => Err(AuthFailure::Throttled(wait)),
        Err(auth::LoginError::Wrong) => Err(AuthFailure::Unauthorized),
        Err(auth::LoginError::Other(e)) => Err(AuthFailure::Other(e)),
    }
}

/// A new key: (its `key_id`, the secret shown once, the secret's hash).
pub fn new_key() -> (String, String, String) {
    let secret = auth::random_token(KEY_PREFIX);
    let id = format!("wk-{}", &auth::random_token("x")[2..18]);
    let hash = auth::hash_token(&secret);
    (id, secret, hash)
}
