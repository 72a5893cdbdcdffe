//! The registry cache: slug -> tenant and domain -> slug, with a TTL (`registry.cache_ttl_secs`).
//! Misses are cached for a shorter time, so a flood of random subdomains costs no registry
//! query, while a tenant created a moment ago is still found quickly.

use std::{future::Future, sync::Arc, time::Duration, time::Instant};

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
        }
    }

    /// Concurrent misses for one key share a single registry query.
    pub async fn tenant<F, Fut>(&self, slug: &Slug, load: F) -> Result<Option<Arc<TenantRecord>>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<TenantRecord>>>,
    {
        self.by_slug
            .try_get_with(slug.as_str().to_owned(), async {
                load().await.map(|r| r.map(Arc::new))
            })
            .await
            .map_err(shared_error)
    }

    pub async fn domain<F, Fut>(&self, domain: &str, load: F) -> Result<Option<Slug>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Slug>>>,
    {
        self.by_domain
            .try_get_with(domain.to_owned(), load())
            .await
            .map_err(shared_error)
    }

    /// Forgets everything cached about `record`, and about `extra_domains` it gained or lost.
    pub async fn evict(&self, record: &TenantRecord, extra_domains: &[&str]) {
        self.by_slug.invalidate(&record.slug.to_string()).await;
        let mut domains: Vec<String> = record.domains.clone();
        domains.extend(extra_domains.iter().map(|d| d.to_string()));
        for domain in domains {
            self.by_domain.invalidate(&domain).await;
        }
    }
}

/// moka shares one error among the waiters of a failed load; report it as internal.
fn shared_error(error: Arc<Error>) -> Error {
    Error::Internal(anyhow::anyhow!("registry lookup failed: {error}"))
}
