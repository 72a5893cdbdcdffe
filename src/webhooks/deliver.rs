//! The delivery worker `silo serve` runs: for each receiver, take its due deliveries from the
//! outbox under a lease, POST each, record the outcome. Woken at once when this process records
//! an event, and every `webhooks.poll_interval_ms` otherwise (for other routers' events and for
//! retries coming due). Several routers may run one each over one registry: the lease keeps
//! them from sending the same delivery at once; one that stops mid-delivery leaves a lease
//! that runs out, and another sends it again (at least once).

use std::time::Duration;

use futures::{stream, StreamExt};
use secrecy::ExposeSecret;
use tokio::sync::watch;

use super::sign::signature;
use crate::{clock, config::WebhookSettings, registry::Delivery, state::AppState};

/// Deliveries sent at once to one receiver (each about another tenant: a tenant's events are
/// sent one after another).
const AT_ONCE: u32 = 8;
/// How much longer than an attempt's timeout a lease lasts, for recording its outcome.
const LEASE_MARGIN_MS: i64 = 10_000;
/// How long delivered rows are kept for `GET /admin/v1/webhooks/deliveries`.
const KEEP_DELIVERED_MS: i64 = 7 * 24 * 3600 * 1000;
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The pause before attempt `attempts + 1`, after `attempts` failed ones: `retry_initial_ms`
/// doubling each time, at most `retry_max_ms`.
pub fn backoff(settings: &WebhookSettings, attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(40);
    let ms = settings
        .retry_initial_ms
        .saturating_mul(1u64 << doublings)
        .min(settings.retry_max_ms);
    Duration::from_millis(ms)
}

/// Runs until `stopped`: one delivery loop per receiver, so a receiver that is slow or down
/// never holds up another. Returns at once when no receiver is configured.
pub async fn run(state: AppState, stopped: watch::Receiver<bool>) -> std::io::Result<()> {
    let urls = state.registry.webhook_urls().to_vec();
    if urls.is_empty() {
        return Ok(());
    }
    let settings = state.settings.webhooks.clone();
    let client = match client(&settings) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "webhooks: no HTTP client; events stay in the outbox");
            return Ok(());
        }
    };
    tracing::info!(receivers = urls.len(), "webhook delivery worker started");
    let mut loops = tokio::task::JoinSet::new();
    loops.spawn(prune(state.clone(), stopped.clone()));
    for url in urls {
        let (state, settings, client) = (state.clone(), settings.clone(), client.clone());
        loops.spawn(deliver_to(state, settings, client, url, stopped.clone()));
    }
    while loops.join_next().await.is_some() {}
    Ok(())
}

/// The one HTTP client of the worker: http and https (rustls), no redirects followed.
fn client(settings: &WebhookSettings) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(settings.timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("silo/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Sends `url` its deliveries as they come due, until `stopped`.
async fn deliver_to(
    state: AppState,
    settings: WebhookSettings,
    client: reqwest::Client,
    url: String,
    mut stopped: watch::Receiver<bool>,
) {
    let poll = Duration::from_millis(settings.poll_interval_ms);
    let mut changes = state.registry.outbox_changes();
    loop {
        if *stopped.borrow() {
            return;
        }
        changes.mark_unchanged();
        let sent = match deliver_due(&state, &settings, &client, &url).await {
            Ok(sent) => sent,
            Err(error) => {
                tracing::warn!(error = %error.detail(), "webhooks: could not read the outbox; trying again");
                0
            }
        };
        if sent > 0 {
            // The next of each tenant's events may be due now.
            continue;
        }
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// Forgets delivered rows older than [`KEEP_DELIVERED_MS`], once an hour, until `stopped`.
async fn prune(state: AppState, mut stopped: watch::Receiver<bool>) {
    loop {
        match state
            .registry
            .prune_deliveries(clock::now_ms() - KEEP_DELIVERED_MS)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "webhooks: forgot old delivered events"),
            Err(error) => {
                tracing::warn!(error = %error.detail(), "webhooks: could not prune the outbox")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// One round for `url`: take what is due, send it, record how each went. Answers how many
/// were sent.
async fn deliver_due(
    state: &AppState,
    settings: &WebhookSettings,
    client: &reqwest::Client,
    url: &str,
) -> crate::Result<usize> {
    let now = clock::now_ms();
    let lease_until = now + settings.timeout_ms as i64 + LEASE_MARGIN_MS;
    let due = state
        .registry
        .claim_deliveries(url, now, lease_until, AT_ONCE)
        .await?;
    let count = due.len();
    stream::iter(due)
        .for_each_concurrent(None, |delivery| async move {
            let outcome = send(client, settings, &delivery).await;
            record(state, settings, &delivery, outcome).await;
        })
        .await;
    Ok(count)
}

/// One attempt: `Ok` for a 2xx, else what went wrong, in words for `last_error`.
async fn send(
    client: &reqwest::Client,
    settings: &WebhookSettings,
    delivery: &Delivery,
) -> Result<(), String> {
    let signed = signature(settings.secret.expose_secret(), delivery.body.as_bytes());
    let sent = client
        .post(&delivery.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Silo-Event", &delivery.event_type)
        .header("X-Silo-Delivery", &delivery.event_id)
        .header("X-Silo-Signature", signed)
        .body(delivery.body.clone())
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("the receiver answered {}", response.status())),
        Err(error) if error.is_timeout() => Err(format!(
            "no answer within webhooks.timeout_ms ({} ms)",
            settings.timeout_ms
        )),
        Err(error) => Err(describe(error)),
    }
}

/// A transport error with its causes, without the URL (which may hold a credential).
fn describe(error: reqwest::Error) -> String {
    let kind = if error.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn record(
    state: &AppState,
    settings: &WebhookSettings,
    delivery: &Delivery,
    outcome: Result<(), String>,
) {
    let attempts = u32::try_from(delivery.attempts)
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    let written = match &outcome {
        Ok(()) => {
            tracing::info!(event = %delivery.event_type, event_id = %delivery.event_id, tenant = %delivery.tenant.slug, attempts, "webhook delivered");
            state.registry.delivery_succeeded(&delivery.id).await
        }
        Err(error) => {
            let give_up = settings.max_attempts > 0 && attempts >= settings.max_attempts;
            let retry_at = (!give_up)
                .then(|| clock::now_ms() + backoff(settings, attempts).as_millis() as i64);
            if give_up {
                tracing::error!(event = %delivery.event_type, event_id = %delivery.event_id, tenant = %delivery.tenant.slug, attempts, %error, "webhook delivery failed for good (webhooks.max_attempts); retry it through the admin API");
            } else {
                tracing::warn!(event = %delivery.event_type, event_id = %delivery.event_id, tenant = %delivery.tenant.slug, attempts, %error, retry_in_ms = backoff(settings, attempts).as_millis() as u64, "webhook delivery failed; it will be retried");
            }
            state
                .registry
                .delivery_failed(&delivery.id, error, retry_at)
                .await
        }
    };
    if let Err(error) = written {
        // The lease runs out and the delivery is taken again: at least once.
        tracing::warn!(event_id = %delivery.event_id, error = %error.detail(), "webhooks: could not record a delivery's outcome; it may be sent again");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_doubles_from_the_first_and_stops_at_the_cap() {
        let settings = WebhookSettings {
            retry_initial_ms: 1000,
            retry_max_ms: 5000,
            ..WebhookSettings::default()
        };
        let pauses: Vec<u64> = (1..=6)
            .map(|n| backoff(&settings, n).as_millis() as u64)
            .collect();
        assert_eq!(pauses, [1000, 2000, 4000, 5000, 5000, 5000]);
        assert_eq!(backoff(&settings, u32::MAX).as_millis(), 5000);
    }

    #[tokio::test]
    async fn https_receivers_are_spoken_to_in_tls() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let first_bytes = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut start = [0u8; 3];
            socket.read_exact(&mut start).await.unwrap();
            start
        });
        let client = client(&WebhookSettings::default()).unwrap();
        let sent = client
            .post(format!("https://127.0.0.1:{port}/hooks"))
            .send()
            .await;
        assert!(sent.is_err(), "no TLS server answered");
        // A TLS handshake record (22), version 3.x: a ClientHello, not plain HTTP.
        let start = first_bytes.await.unwrap();
        assert_eq!(start[..2], [0x16, 0x03], "{start:?}");
    }
}
