//! The router, security headers, background tasks and serving (HTTPS with rustls, configured in
//! [`crate::tls`]; plain HTTP only on loopback).
//!
//! Slow clients: hyper cuts a connection whose request headers take longer than
//! [`HEADER_READ_TIMEOUT`](crate::body::HEADER_READ_TIMEOUT); every request body is read under the
//! deadline of [`crate::body`] (408 when missed); ingest admission is described in
//! [`crate::state`].

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::watch;

use crate::config::HubConfig;
use crate::ingest::MAX_BATCH_BODY_BYTES;
use crate::state::HubState;
use crate::store::Store;
use crate::{api, web};

/// Non-ingest request bodies (forms, JSON) are small.
pub const MAX_FORM_BODY_BYTES: usize = 64 * 1024;

/// Strict: no inline script or style, nothing from elsewhere, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn app(state: HubState) -> Router {
    // The ingest handler reads its body itself (after per-sensor admission), within
    // MAX_BATCH_BODY_BYTES; the limit here is for any extractor that might read it.
    let ingest = Router::new().route("/api/v1/events", post(api::ingest_events)).layer(DefaultBodyLimit::max(MAX_BATCH_BODY_BYTES));
    let rest = Router::new()
        .route("/api/v1/sensors/enroll", post(api::enroll))
        .route("/api/v1/indicators", get(api::indicators))
        .route("/api/v1/login", post(api::login))
        .route("/api/v1/logout", post(api::logout))
        .route("/api/v1/me", get(api::me))
        .route("/api/v1/jurisdictions", get(api::list_jurisdictions).post(api::create_jurisdiction))
        .route("/api/v1/jurisdictions/{id}", get(api::get_jurisdiction))
        .route("/api/v1/jurisdictions/{id}/sensor-tokens", post(api::create_sensor_token))
        .route("/api/v1/jurisdictions/{id}/sensors", get(api::list_sensors))
        .route("/api/v1/jurisdictions/{id}/contacts", get(api::list_contacts).post(api::create_contact))
        .route("/api/v1/users", get(api::list_users).post(api::create_user))
        .route("/api/v1/campaigns", get(api::list_campaigns))
        .route("/api/v1/campaigns/{id}", get(api::get_campaign).post(api::update_campaign))
        .route("/api/v1/events", get(api::list_events))
        .route("/api/v1/notifications", get(api::list_notifications))
        .route("/api/v1/notifications/{id}/attempts", get(api::notification_attempts))
        .route("/api/v1/sensors/{id}/contributions", get(api::sensor_contributions))
        .route("/api/v1/sensors/{id}/revoke", post(api::revoke_sensor))
        .route("/api/v1/sensors/{id}/release", post(api::release_sensor))
        .route("/api/v1/trust-anomalies", get(api::list_trust_anomalies))
        .route("/api/v1/allowlist", get(api::list_allow_entries).post(api::add_allow_entry))
        .route("/api/v1/allowlist/{id}/remove", post(api::remove_allow_entry))
        .route("/api/v1/api-keys", get(api::list_api_keys).post(api::create_api_key))
        .route("/api/v1/api-keys/{id}/revoke", post(api::revoke_api_key))
        .route("/api/v1/federation", get(api::federation))
        .route("/api/v1/api-keys/{id}/client-cert", post(api::bind_api_key_cert))
        .route("/api/v1/openapi.json", get(api::openapi))
        .route("/metrics", get(api::metrics))
        .route("/healthz", get(api::health))
        .merge(web::routes())
        .layer(DefaultBodyLimit::max(MAX_FORM_BODY_BYTES));
    ingest
        .merge(rest)
        .merge(crate::assets::routes())
        .merge(crate::retro::routes())
        .merge(crate::share::taxii::routes(&state))
        .merge(crate::share::feeds::api::routes())
        .merge(crate::ack::routes())
        .merge(crate::drill::routes())
        .merge(crate::disinfo::api::routes())
        .merge(crate::disinfo::web::routes())
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::body::enforce_body_deadline))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// hyper's side of slow-client protection: a timer, and a limit on the time to send headers.
fn configure_http(builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>) {
    builder.http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(crate::body::HEADER_READ_TIMEOUT);
}

/// Sets the security headers; a handler's own (stricter) Content-Security-Policy is kept: the
/// uploaded scan report carries a sandbox policy (see `crate::assets`).
async fn security_headers(mut resp: axum::response::Response) -> axum::response::Response {
    let h = resp.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// A hub running in this process (tests, `ward demo`).
pub struct RunningHub {
    pub addr: SocketAddr,
    /// `https` or `http`.
    pub scheme: &'static str,
    pub state: HubState,
    shutdown: watch::Sender<bool>,
    handle: axum_server::Handle<SocketAddr>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningHub {
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Stops accepting, finishes in-flight requests, stops the workers and gives up this
    /// replica's job leases (so another replica takes the jobs over at once).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.handle.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
        let _ = self.server.await;
        for job in [crate::state::JOB_RETENTION, crate::state::JOB_RETRO_HUNT, crate::share::publish::JOB_TAXII_PUBLISH, crate::share::feeds::poll::JOB_FEEDS, crate::ack::JOB_ESCALATION] {
            self.state.release_job(job).await;
        }
    }

    /// Waits until the server ends (for `ward hub serve`).
    pub async fn wait(self) -> std::io::Result<()> {
        self.server.await.map_err(std::io::Error::other)?
    }
}

/// Installs ring as rustls's crypto provider (once per process).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Opens the store the config names (`database`, else the SQLite store in `data_dir`), starts
/// the workers and serves `config.listen`.
pub async fn start(config: HubConfig) -> anyhow::Result<RunningHub> {
    let database = config.store_database()?;
    let store = tokio::task::spawn_blocking(move || database.open()).await??;
    start_with_store(store, config).await
}

pub async fn start_with_store(store: Arc<dyn Store>, config: HubConfig) -> anyhow::Result<RunningHub> {
    install_crypto_provider();
    let listen = config.listen;
    let tls = crate::tls::server_config(&config.tls).await?;
    if tls.is_none() && !listen.ip().is_loopback() {
        anyhow::bail!("refusing plain HTTP on {listen}: configure [tls] cert and key (or self_signed) or listen on loopback");
    }
    let state = HubState::new(store, config)?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    tokio::spawn(crate::notify::run_worker(state.clone(), shutdown_rx.clone()));
    tokio::spawn(crate::retro::run_worker(state.clone(), shutdown_rx.clone())); // retro-hunt
    tokio::spawn(crate::share::publish::run_worker(state.clone(), shutdown_rx.clone())); // TAXII objects
    tokio::spawn(crate::share::feeds::run_worker(state.clone(), shutdown_rx.clone())); // feeds
    crate::share::federation::setup(&state).await?;
    tokio::spawn(crate::share::federation::run_worker(state.clone(), shutdown_rx.clone())); // peer hubs
    tokio::spawn(crate::ack::run_worker(state.clone(), shutdown_rx.clone())); // escalation
    tokio::spawn(crate::disinfo::routing::run_escalation(state.clone(), shutdown_rx.clone())); // untouched cases
    tokio::spawn(run_retention(state.clone(), shutdown_rx));
    let std_listener = std::net::TcpListener::bind(listen).map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let handle = axum_server::Handle::new();
    // Peer addresses reach handlers as ConnectInfo (the login throttle keys on them).
    let service = app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let (scheme, server) = match tls {
        Some(rustls_config) => {
            // The acceptor hands each request the client's verified certificate (crate::tls).
            let mut server = axum_server::from_tcp(std_listener)?.acceptor(crate::tls::PeerCertAcceptor::new(rustls_config)).handle(handle.clone());
            configure_http(server.http_builder());
            ("https", tokio::spawn(async move { server.serve(service).await }))
        }
        None => {
            let mut server = axum_server::from_tcp(std_listener)?.handle(handle.clone());
            configure_http(server.http_builder());
            ("http", tokio::spawn(async move { server.serve(service).await }))
        }
    };
    tracing::info!(%addr, scheme, "hub listening");
    Ok(RunningHub { addr, scheme, state, shutdown, handle, server })
}

/// A self-signed certificate for `localhost`, 127.0.0.1 and ::1 (PEM cert, PEM key).
pub fn self_signed_pem() -> anyhow::Result<(String, String)> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let certified = rcgen::generate_simple_self_signed(names)?;
    Ok((certified.cert.pem(), certified.signing_key.serialize_pem()))
}

/// Leases of periodic jobs last this many of their intervals: the holder renews at each run, so
/// a run may take up to two intervals before another replica could start one alongside it, and
/// a stopped holder's job moves to another replica within three.
pub const JOB_LEASE_INTERVALS: u32 = 3;

/// Deletes events past their retention, per event type, old idempotency keys and expired limit
/// records, every `retention.interval_secs`, on the one replica holding the
/// [`JOB_RETENTION`](crate::state::JOB_RETENTION) lease.
async fn run_retention(state: HubState, mut shutdown: watch::Receiver<bool>) {
    let every = std::time::Duration::from_secs(state.config.retention.interval_secs.max(60));
    let lease_ms = (every * JOB_LEASE_INTERVALS).as_millis() as crate::model::Millis;
    loop {
        if !state.hold_job(crate::state::JOB_RETENTION, lease_ms).await {
            tokio::select! {
                _ = tokio::time::sleep(every) => continue,
                _ = shutdown.changed() => return,
            }
        }
        let retention = state.config.retention.clone();
        let result = state
            .store_call(move |s| {
                let now = crate::model::now_ms();
                // Saturating: a huge number of days in the config means "keep", not a panic.
                let cutoff = |days: i64| now.saturating_sub(days.max(0).saturating_mul(24 * 3600 * 1000));
                let mut removed = 0;
                let listed: Vec<String> = retention.days.keys().cloned().collect();
                for (event_type, days) in &retention.days {
                    removed += s.prune_events(Some(event_type), &[], cutoff(*days))?;
                }
                removed += s.prune_events(None, &listed, cutoff(retention.default_days))?;
                let keys = s.prune_batches(cutoff(retention.idempotency_days.max(1)))?;
                s.prune_limits(now)?;
                Ok((removed, keys))
            })
            .await;
        match result {
            Ok((events, keys)) if events + keys > 0 => tracing::info!(events, idempotency_keys = keys, "retention pruned"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "retention pruning failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {
                state.release_job(crate::state::JOB_RETENTION).await;
                return;
            }
        }
    }
}
