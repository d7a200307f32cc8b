//! A webhook receiver on loopback for the delivery tests: `POST /hook/{name}` checks the hub's
//! signature with [`SECRET`] (401 when it does not match) and keeps each body under its name.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

/// The webhook secret the tests give their contacts.
pub const SECRET: &str = "a-webhook-secret-of-some-length";

#[derive(Clone, Default)]
pub struct Receiver {
    pub got: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Receiver {
    /// The bodies received on `/hook/{name}`, in order.
    pub fn of(&self, name: &str) -> Vec<Value> {
        self.got.lock().unwrap().iter().filter(|(n, _)| n == name).map(|(_, v)| v.clone()).collect()
    }

    /// Those of them whose `type` is `t`.
    pub fn of_type(&self, name: &str, t: &str) -> Vec<Value> {
        self.of(name).into_iter().filter(|v| v["type"] == t).collect()
    }
}

async fn hook(State(r): State<Receiver>, Path(name): Path<String>, headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
    let ts = headers["x-ward-timestamp"].to_str().unwrap();
    let sig = headers["x-ward-signature"].to_str().unwrap();
    if !ward_hub::notify::webhook::verify(SECRET, ts, &body, sig, chrono::Utc::now().timestamp()) {
        return StatusCode::UNAUTHORIZED;
    }
    r.got.lock().unwrap().push((name, serde_json::from_slice(&body).unwrap()));
    StatusCode::NO_CONTENT
}

/// Serves `r` on a loopback port; returns its address.
pub async fn start_receiver(r: Receiver) -> std::net::SocketAddr {
    let app = axum::Router::new().route("/hook/{name}", axum::routing::post(hook)).with_state(r);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}
