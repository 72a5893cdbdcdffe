//! The registry cache: slug -> tenant and domain -> slug, with a TTL (`registry.cache_ttl_secs`).
//! Misses are cached for a shorter time, so a flood of random subdomains costs no registry
//! query, while a tenant created a moment ago is still found quickly.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use moka::{future::Cache, Expiry};

use crate::{
    error::{Error, Result},
    tenant::{Slug, TenantRecord},
};

/// Longest time a miss is remembered.
const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// Entries kept at most per map; bounds memory under a flood of unknown hosts.
const MAX_ENTRIES: u64 = 100_000;

pub struct RegistryCache {
    by_slug: Cache<String, Option<Arc<TenantRecord>>>,
    by_domain: Cache<String, Option<Slug>>,
    /// Bumped by every eviction; see [`RegistryCache::fresh`].
    generation: AtomicU64,
}

/// Hits live for the TTL, misses for the shorter of the TTL and [`NEGATIVE_TTL`].
struct HitsOutliveMisses {
    ttl: Duration,
}

impl<V> Expiry<String, Option<V>> for HitsOutliveMisses {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Option<V>,
        _now: Instant,
    ) -> Option<Duration> {
        Some(match value {
            Some(_) => self.ttl,
            None => self.ttl.min(NEGATIVE_TTL),
        })
    }
}

impl RegistryCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            by_slug: Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .expire_after(HitsOutliveMisses { ttl })
                .build(),
            by_domain: Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .expire_after(HitsOutliveMisses { ttl })
                .build(),
            generation: AtomicU64::new(0),
        }
    }

    /// Concurrent misses for one key share a single registry query.
    pub async fn tenant<F, Fut>(&self, slug: &Slug, load: F) -> Result<Option<Arc<TenantRecord>>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Option<TenantRecord>>>,
    {
        let load = || async { load().await.map(|r| r.map(Arc::new)) };
        self.fresh(&self.by_slug, slug.as_str(), load).await
    }

    pub async fn domain<F, Fut>(&self, domain: &str, load: F) -> Result<Option<Slug>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Option<Slug>>>,
    {
        self.fresh(&self.by_domain, domain, load).await
    }

    /// Looks `key` up, loading it on a miss. A load that overlapped an eviction may have read
    /// the row as it was before the change and stored it after the eviction ran; moka cannot
    /// cancel such a load, so its result is dropped and read again. A change made on this
    /// router is therefore seen by the very next request, not after the TTL.
    async fn fresh<V, F, Fut>(&self, cache: &Cache<String, V>, key: &str, load: F) -> Result<V>
    where
        V: Clone + Send + Sync + 'static,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<V>>,
    {
        let seen = self.generation.load(Ordering::Acquire);
        // A hit (nearly every request) looks the key up borrowed: no `String` is made. The
        // miss is boxed: its loading future is large, and inline it would make every hit's
        // future (and every future awaiting it, up to the request's) as large and as slow to
        // move.
        let value = match cache.get(key).await {
            Some(value) => value,
            None => Box::pin(Self::load(cache, key, &load)).await?,
        };
        if self.generation.load(Ordering::Acquire) == seen {
            return Ok(value);
        }
        cache.invalidate(key).await;
        Box::pin(Self::load(cache, key, &load)).await
    }

    async fn load<V, F, Fut>(cache: &Cache<String, V>, key: &str, load: &F) -> Result<V>
    where
        V: Clone + Send + Sync + 'static,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<V>>,
    {
        let logged = async {
            let loaded = load().await;
            // (A database that is unreachable or busy was logged as it was converted.)
            if let Err(error @ Error::Internal(_)) = &loaded {
                tracing::error!(error = format!("{error:#}"), "a registry lookup failed");
            }
            loaded
        };
        cache
            .try_get_with(key.to_owned(), logged)
            .await
            .map_err(shared_error)
    }

    /// Forgets everything cached under `slug` and `domains`.
    pub async fn evict(&self, slug: &str, domains: &[String]) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.by_slug.invalidate(slug).await;
        for domain in domains {
            self.by_domain.invalidate(domain).await;
        }
    }

    /// Forgets everything (a router that may have missed changes).
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.by_slug.invalidate_all();
        self.by_domain.invalidate_all();
    }
}

/// moka shares one error among the waiters of a failed load. A registry the database cannot
/// read (a missing table, a damaged file) or cannot reach is a passing condition for every
/// tenant not cached: `503 tenant_unavailable`, to retry. Anything else (a row that does not
/// decode, say) is a bug: `500`. The cause is logged once, by the load that failed.
fn shared_error(error: Arc<Error>) -> Error {
    match &*error {
        Error::TenantUnavailable { .. } => Error::TenantUnavailable { retry_after: 1 },
        Error::Internal(cause)
            if matches!(
                cause.downcast_ref::<sqlx::Error>(),
                Some(sqlx::Error::Database(_))
            ) =>
        {
            Error::TenantUnavailable { retry_after: 1 }
        }
        _ => Error::Internal(anyhow::anyhow!("registry lookup failed: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::{Status, TenantId};

    fn record(status: Status) -> TenantRecord {
        TenantRecord {
            id: TenantId::new(),
            slug: Slug::parse_shape("acme").unwrap(),
            name: "acme".into(),
            plan: "free".into(),
            status,
            server: "local".into(),
            database: "x.db".into(),
            schema_version: 1,
            credentials_version: 1,
            credentials_key: String::new(),
            domains: vec![],
            created_at: 0,
            last_error: None,
        }
    }

    #[tokio::test]
    async fn a_load_overlapping_an_eviction_is_not_served_afterwards() {
        let cache = Arc::new(RegistryCache::new(Duration::from_secs(30)));
        let slug = Slug::parse_shape("acme").unwrap();
        let stored = Arc::new(std::sync::Mutex::new(Status::Active));
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let started_tx = std::sync::Mutex::new(Some(started_tx));

        // A slow lookup reads the row while it is still active...
        let slow = {
            let (cache, slug, stored) = (cache.clone(), slug.clone(), stored.clone());
            tokio::spawn(async move {
                cache
                    .tenant(&slug, || {
                        let read = *stored.lock().unwrap();
                        if let Some(tx) = started_tx.lock().unwrap().take() {
                            let _ = tx.send(());
                        }
                        async move {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            Ok(Some(record(read)))
                        }
                    })
                    .await
            })
        };
        started_rx.await.unwrap();
        // ...the tenant is suspended and evicted while that lookup is in flight...
        *stored.lock().unwrap() = Status::Suspended;
        let suspended = record(Status::Suspended);
        cache
            .evict(suspended.slug.as_str(), &suspended.domains)
            .await;
        let answered = slow.await.unwrap().unwrap().unwrap();
        assert_eq!(
            answered.status,
            Status::Suspended,
            "the overlapping lookup read again"
        );
        // ...and nothing stale is left behind for the next request.
        let next = cache
            .tenant(&slug, || async { Ok(Some(record(Status::Active))) })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(next.status, Status::Suspended);
    }

    #[tokio::test]
    async fn a_registry_the_database_cannot_read_is_unavailable_and_a_bad_row_is_a_bug() {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        let missing_table = sqlx::query("SELECT id FROM tenants")
            .execute(&mut conn)
            .await
            .unwrap_err();
        let unreadable = shared_error(Arc::new(Error::from(missing_table)));
        assert!(
            matches!(unreadable, Error::TenantUnavailable { retry_after: 1 }),
            "{unreadable:?}"
        );
        let bad_row = Error::from(sqlx::Error::ColumnNotFound("status".into()));
        assert!(matches!(
            shared_error(Arc::new(bad_row)),
            Error::Internal(_)
        ));
    }
}
