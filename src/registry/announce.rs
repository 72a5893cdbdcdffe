//! Telling every router of a change. On a PostgreSQL registry each write is announced with
//! `NOTIFY silo_tenants` (its payload: the tenant's slug and the domains it had or gained), and
//! each router's listener forgets what it cached of that tenant, so a suspension or a deletion
//! through one router holds on all of them within moments rather than `registry.cache_ttl_secs`.
//!
//! Notifications are not kept for a listener that is not connected: whenever the listener
//! (re)connects, its router forgets its whole cache, as it may have missed some. While it cannot
//! connect, it tries again with a growing pause, and the cache's TTL bounds how stale an entry
//! gets. A SQLite registry has one router per file in practice, whose writes evict at once.

use std::{str::FromStr, sync::Weak, time::Duration};

use serde::{Deserialize, Serialize};
use sqlx::{
    postgres::{PgConnectOptions, PgListener, PgPoolOptions},
    AnyPool,
};

use super::Registry;

/// The channel of registry changes.
pub const CHANNEL: &str = "silo_tenants";
/// Shown in `pg_stat_activity`, so an operator can tell the listeners' connections apart.
pub const APPLICATION_NAME: &str = "silo-listener";

const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// What changed: everything a router may have cached under it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Change {
    pub slug: String,
    pub domains: Vec<String>,
    /// Forget every cached tenant: sent instead of a change too long for a notification.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub everything: bool,
}

/// PostgreSQL refuses a notification payload of 8,000 bytes or more.
const MAX_PAYLOAD: usize = 7_999;

/// The payload announcing `change`: the change itself, or, for a tenant with so many domains
/// that it would not fit, a word to forget everything (correct, at the cost of the other
/// routers' caches).
fn payload(change: &Change) -> serde_json::Result<String> {
    let payload = serde_json::to_string(change)?;
    if payload.len() <= MAX_PAYLOAD {
        return Ok(payload);
    }
    serde_json::to_string(&Change {
        slug: change.slug.clone(),
        domains: Vec::new(),
        everything: true,
    })
}

/// Announces `change` to every router listening. A failure is logged, not returned: the write
/// has happened, and the other routers' TTL is the fallback.
pub async fn announce(pool: &AnyPool, change: &Change) {
    let payload = match payload(change) {
        Ok(payload) => payload,
        Err(error) => return tracing::warn!(%error, "could not encode a registry change"),
    };
    let sent = sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(pool)
        .await;
    if let Err(error) = sent {
        tracing::warn!(%error, slug = %change.slug, "could not announce a registry change; other routers see it within registry.cache_ttl_secs");
    }
}

/// Listens on the registry at `url` for as long as `registry` lives (the task ends with the
/// runtime, or once the registry is gone and a notification or reconnection wakes it).
pub fn spawn_listener(url: String, registry: Weak<Registry>) -> tokio::task::AbortHandle {
    let task = tokio::spawn(async move {
        let mut pause = FIRST_PAUSE;
        loop {
            match listen(&url, &registry).await {
                Ok(Gone) => return,
                Err(error) => {
                    tracing::warn!(%error, retry_in_ms = pause.as_millis() as u64, "registry listener disconnected; cached tenants expire within registry.cache_ttl_secs meanwhile");
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LONGEST_PAUSE);
            if registry.strong_count() == 0 {
                return;
            }
        }
    });
    task.abort_handle()
}

/// The registry this listener served is gone.
struct Gone;

/// One connection's worth of listening: returns when the registry is gone, or with the error
/// that ended the connection (and could not be mended by reconnecting at once).
async fn listen(url: &str, registry: &Weak<Registry>) -> Result<Gone, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?.application_name(APPLICATION_NAME);
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options);
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    forget_all(registry, "the registry listener connected");
    loop {
        match listener.try_recv().await? {
            Some(notification) => {
                let Some(registry) = registry.upgrade() else {
                    return Ok(Gone);
                };
                match serde_json::from_str::<Change>(notification.payload()) {
                    Ok(change) => registry.forget(&change).await,
                    Err(error) => {
                        tracing::warn!(%error, "a registry change could not be read; forgetting every cached tenant");
                        registry.forget_all();
                    }
                }
            }
            // The connection was lost and is being made again: what was sent meanwhile is lost.
            None => forget_all(registry, "the registry listener reconnected"),
        }
    }
}

fn forget_all(registry: &Weak<Registry>, why: &str) {
    if let Some(registry) = registry.upgrade() {
        tracing::debug!("{why}: forgetting every cached tenant");
        registry.forget_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_too_long_to_notify_becomes_forget_everything() {
        let small = Change {
            slug: "acme".into(),
            domains: vec!["acme.com".into()],
            everything: false,
        };
        let sent: Change = serde_json::from_str(&payload(&small).unwrap()).unwrap();
        assert_eq!((sent.slug.as_str(), sent.everything), ("acme", false));
        assert_eq!(sent.domains, ["acme.com"]);

        let many = Change {
            slug: "acme".into(),
            domains: (0..400)
                .map(|n| format!("shop-{n:04}.example.com"))
                .collect(),
            everything: false,
        };
        assert!(serde_json::to_string(&many).unwrap().len() > MAX_PAYLOAD);
        let text = payload(&many).unwrap();
        assert!(text.len() <= MAX_PAYLOAD, "{} bytes", text.len());
        let sent: Change = serde_json::from_str(&text).unwrap();
        assert!(sent.everything && sent.domains.is_empty());
    }
}
