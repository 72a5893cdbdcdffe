//! A webhook receiver of the test's own: a real HTTP server on a port of its own that records
//! every request silo sends it and answers `500` to the first ones it is told to refuse.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use axum::{body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use silo::Settings;
use tokio::{sync::Notify, time::Instant};

/// The secret the tests' silos sign with.
pub const WEBHOOK_SECRET: &str = "test-webhook-secret-0123456789";

/// How long a test waits for deliveries before it fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// Sends webhooks to `urls`, retrying quickly, so a test of retries takes milliseconds.
pub fn webhooks_to(settings: &mut Settings, urls: &[String]) {
    settings.webhooks.urls = urls.to_vec();
    settings.webhooks.secret = WEBHOOK_SECRET.into();
    settings.webhooks.timeout_ms = 2000;
    settings.webhooks.retry_initial_ms = 20;
    settings.webhooks.retry_max_ms = 200;
    settings.webhooks.poll_interval_ms = 50;
}

/// One request as the receiver got it, and how it answered.
#[derive(Debug, Clone)]
pub struct Received {
    pub event: String,
    pub delivery: String,
    pub signature: String,
    pub content_type: String,
    pub body: Vec<u8>,
    pub json: Value,
    pub answered: u16,
}

impl Received {
    pub fn accepted(&self) -> bool {
        self.answered == 200
    }

    pub fn slug(&self) -> &str {
        self.json["tenant"]["slug"].as_str().unwrap_or("")
    }

    pub fn kind(&self) -> &str {
        self.json["type"].as_str().unwrap_or("")
    }

    /// Whether `X-Silo-Signature` is the HMAC-SHA256 of the body under `secret`.
    pub fn signed_with(&self, secret: &str) -> bool {
        let Some(hex_mac) = self.signature.strip_prefix("sha256=") else {
            return false;
        };
        let Ok(given) = hex::decode(hex_mac) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&self.body);
        mac.verify_slice(&given).is_ok()
    }
}

#[derive(Default)]
struct Shared {
    got: Mutex<Vec<Received>>,
    refuse: AtomicUsize,
    arrived: Notify,
}

pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// A local address nothing listens on (yet): a receiver that is down.
pub fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

impl Receiver {
    pub async fn start() -> Self {
        Self::on(free_addr(), 0).await
    }

    /// A receiver answering `500` to its first `n` requests, then `200`.
    pub async fn failing_first(n: usize) -> Self {
        Self::on(free_addr(), n).await
    }

    /// A receiver on `addr` (one that was down until now, say).
    pub async fn on(addr: SocketAddr, refuse: usize) -> Self {
        let shared = Arc::new(Shared::default());
        shared.refuse.store(refuse, Ordering::SeqCst);
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/hooks", post(receive))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    pub fn url(&self) -> String {
        url_at(self.addr)
    }

    /// Every request so far, in the order they arrived.
    pub fn received(&self) -> Vec<Received> {
        self.shared.got.lock().unwrap().clone()
    }

    /// Waits until `done` holds of what arrived; panics after 30 s with what did.
    pub async fn wait_until(
        &self,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let arrived = self.shared.arrived.notified();
            let got = self.received();
            if done(&got) {
                return got;
            }
            let summary: Vec<String> = got
                .iter()
                .map(|r| format!("{} {} {}", r.answered, r.kind(), r.slug()))
                .collect();
            assert!(
                Instant::now() < deadline,
                "{what}: not after {PATIENCE:?}; received {summary:#?}"
            );
            let _ = tokio::time::timeout(Duration::from_millis(200), arrived).await;
        }
    }

    /// Waits until `count` distinct events were accepted; answers what arrived.
    pub async fn wait_for_events(&self, count: usize) -> Vec<Received> {
        self.wait_until(&format!("{count} events accepted"), |got| {
            distinct_accepted(got).len() >= count
        })
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn url_at(addr: SocketAddr) -> String {
    format!("http://{addr}/hooks")
}

/// The accepted deliveries, each event once (the first time it was accepted), in arrival order.
pub fn distinct_accepted(got: &[Received]) -> Vec<Received> {
    let mut seen = std::collections::HashSet::new();
    got.iter()
        .filter(|r| r.accepted() && seen.insert(r.delivery.clone()))
        .cloned()
        .collect()
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let refused = shared
        .refuse
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if refused {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    shared.got.lock().unwrap().push(Received {
        event: header("x-silo-event"),
        delivery: header("x-silo-delivery"),
        signature: header("x-silo-signature"),
        content_type: header("content-type"),
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        body: body.to_vec(),
        answered: status.as_u16(),
    });
    shared.arrived.notify_waiters();
    status
}
