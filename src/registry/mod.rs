//! Where each tenant lives. Reads on the request path go through a moka cache (misses cached
//! briefly too); writes on the control path go through here as well, so the cache is evicted at
//! once on this process and no caller can forget to.

mod announce;
mod cache;
mod deliveries;
mod migrations;
mod outbox;
mod runs;
mod store;
mod usage;

pub use cache::RegistryCache;
pub use deliveries::{Delivery, DeliveryStatus, DeliveryTenant};
pub use migrations::MigrationEnd;
pub use outbox::Outgoing;
pub use runs::{FanoutRun, LifecycleRun};
pub use store::{NewTenant, RegistryStore};
pub use usage::{TenantUsage, UsageSort};

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use serde_json::json;

use crate::{
    error::Result,
    telemetry::Metrics,
    tenant::{Slug, Status, TenantId, TenantRecord},
    webhooks::{Event, EventType},
};

/// The control registry: the store and its cache, always used together.
pub struct Registry {
    store: RegistryStore,
    cache: RegistryCache,
    metrics: Arc<Metrics>,
    /// The task following other routers' changes, stopped by [`Registry::close`].
    listener: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
    /// `webhooks.urls`: each event a write records goes to each of them (see `outbox.rs`).
    webhook_urls: Vec<String>,
    /// Counts this process's outbox writes, so every delivery worker wakes at once.
    outbox_changed: tokio::sync::watch::Sender<u64>,
}

impl Registry {
    pub fn new(store: RegistryStore, ttl: Duration, metrics: Arc<Metrics>) -> Self {
        Self {
            store,
            cache: RegistryCache::new(ttl),
            metrics,
            listener: std::sync::Mutex::default(),
            webhook_urls: Vec::new(),
            outbox_changed: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Request path: the tenant with this slug, from the cache when possible.
    pub async fn find(&self, slug: &Slug) -> Result<Option<Arc<TenantRecord>>> {
        let queried = AtomicBool::new(false);
        let found = self
            .cache
            .tenant(slug, || {
                queried.store(true, Ordering::Relaxed);
                self.store.by_slug(slug)
            })
            .await;
        self.metrics
            .registry_lookup(!queried.load(Ordering::Relaxed));
        found
    }

    /// Request path: the slug a custom domain belongs to, from the cache when possible.
    pub async fn slug_for_domain(&self, domain: &str) -> Result<Option<Slug>> {
        let queried = AtomicBool::new(false);
        let found = self
            .cache
            .domain(domain, || {
                queried.store(true, Ordering::Relaxed);
                self.store.slug_for_domain(domain)
            })
            .await;
        self.metrics
            .registry_lookup(!queried.load(Ordering::Relaxed));
        found
    }

    /// Control path: the current row, bypassing the cache.
    pub async fn load(&self, slug: &Slug) -> Result<Option<TenantRecord>> {
        self.store.by_slug(slug).await
    }

    pub async fn insert(&self, new: &NewTenant) -> Result<TenantRecord> {
        let record = self.store.insert(new).await?;
        self.changed(&record, &[]).await;
        Ok(record)
    }

    pub async fn set_status(
        &self,
        record: &TenantRecord,
        status: Status,
        last_error: Option<&str>,
    ) -> Result<()> {
        self.set_status_noting(record, status, last_error, &[])
            .await
    }

    /// [`Registry::set_status`], recording `events` in the outbox in the same transaction.
    pub async fn set_status_noting(
        &self,
        record: &TenantRecord,
        status: Status,
        last_error: Option<&str>,
        events: &[Event],
    ) -> Result<()> {
        self.store
            .set_status(record.id, status, last_error, &self.outgoing(events))
            .await?;
        self.changed(record, &[]).await;
        self.recorded(events);
        Ok(())
    }

    /// Compare-and-set of the status; see [`RegistryStore::transition`].
    pub async fn transition(
        &self,
        record: &TenantRecord,
        from: &[Status],
        to: Status,
    ) -> Result<bool> {
        self.transition_noting(record, from, to, &[]).await
    }

    /// [`Registry::transition`], recording `events` in the same transaction if the status moved.
    pub async fn transition_noting(
        &self,
        record: &TenantRecord,
        from: &[Status],
        to: Status,
        events: &[Event],
    ) -> Result<bool> {
        let moved = self
            .store
            .transition(record.id, from, to, &self.outgoing(events))
            .await?;
        self.changed(record, &[]).await;
        if moved {
            self.recorded(events);
        }
        Ok(moved)
    }

    /// See [`RegistryStore::begin_migrations`].
    pub async fn begin_migrations(
        &self,
        records: &[TenantRecord],
    ) -> Result<Vec<(TenantId, Status)>> {
        let ids: Vec<TenantId> = records.iter().map(|record| record.id).collect();
        let statuses = self.store.begin_migrations(&ids).await?;
        for record in records {
            self.changed(record, &[]).await;
        }
        Ok(statuses)
    }

    /// See [`RegistryStore::end_migrations`]. Each tenant's outcome is announced in the same
    /// transaction: `tenant.migrated` or `tenant.migration_failed` (none for one not started).
    pub async fn end_migrations(&self, ended: &[(&TenantRecord, MigrationEnd)]) -> Result<()> {
        let ids: Vec<(TenantId, MigrationEnd)> = ended
            .iter()
            .map(|(record, end)| (record.id, end.clone()))
            .collect();
        let events: Vec<Event> = ended
            .iter()
            .filter_map(|(record, end)| migration_event(record, end))
            .collect();
        self.store
            .end_migrations(&ids, &self.outgoing(&events))
            .await?;
        for (record, _) in ended {
            self.changed(record, &[]).await;
        }
        self.recorded(&events);
        Ok(())
    }

    pub async fn set_schema_version(&self, record: &TenantRecord, version: i64) -> Result<()> {
        self.store.set_schema_version(record.id, version).await?;
        self.changed(record, &[]).await;
        Ok(())
    }

    /// See [`RegistryStore::advance_credentials`]; every router forgets the row, so each
    /// reads the new version on its next request.
    pub async fn advance_credentials(&self, record: &TenantRecord, key_id: &str) -> Result<bool> {
        let moved = self.store.advance_credentials(record, key_id).await?;
        self.changed(record, &[]).await;
        Ok(moved)
    }

    /// See [`RegistryStore::name_unnamed_keys`]. Cached rows keep an empty key id, which
    /// means the same key.
    pub async fn name_unnamed_keys(&self, key_id: &str) -> Result<u64> {
        self.store.name_unnamed_keys(key_id).await
    }

    pub async fn tenants_per_key(&self) -> Result<HashMap<String, i64>> {
        self.store.tenants_per_key().await
    }

    pub async fn add_domain(&self, record: &TenantRecord, domain: &str) -> Result<()> {
        self.store.add_domain(record.id, domain).await?;
        self.changed(record, &[domain]).await;
        Ok(())
    }

    /// Returns false when the tenant had no such domain.
    pub async fn remove_domain(&self, record: &TenantRecord, domain: &str) -> Result<bool> {
        let removed = self.store.remove_domain(record.id, domain).await?;
        self.changed(record, &[domain]).await;
        Ok(removed)
    }

    pub async fn delete(&self, record: &TenantRecord) -> Result<()> {
        self.delete_noting(record, &[]).await
    }

    /// [`Registry::delete`], recording `events` in the same transaction.
    pub async fn delete_noting(&self, record: &TenantRecord, events: &[Event]) -> Result<()> {
        self.store.delete(record.id, &self.outgoing(events)).await?;
        self.changed(record, &[]).await;
        self.recorded(events);
        Ok(())
    }

    pub async fn list(
        &self,
        status: Option<Status>,
        after: Option<TenantId>,
        limit: u32,
    ) -> Result<Vec<TenantRecord>> {
        self.store.list(status, after, limit).await
    }

    pub async fn tenants_per_server(&self) -> Result<HashMap<String, i64>> {
        self.store.tenants_per_server().await
    }

    pub async fn insert_run(&self, run: &FanoutRun) -> Result<()> {
        self.store.insert_run(run).await
    }

    pub async fn finish_run(&self, id: &str, migrated: i64, failed: i64) -> Result<()> {
        self.store.finish_run(id, migrated, failed).await
    }

    pub async fn find_run(&self, id: &str) -> Result<Option<FanoutRun>> {
        self.store.find_run(id).await
    }

    /// See [`RegistryStore::relocate`]; every router is told at once, and `events` are
    /// recorded in the same transaction if the row moved.
    pub async fn relocate(
        &self,
        record: &TenantRecord,
        to_server: &str,
        to_database: &str,
        events: &[Event],
    ) -> Result<bool> {
        let moved = self
            .store
            .relocate(
                record.id,
                (&record.server, &record.database, record.credentials_version),
                (to_server, to_database),
                &self.outgoing(events),
            )
            .await?;
        self.changed(record, &[]).await;
        if moved {
            self.recorded(events);
        }
        Ok(moved)
    }

    pub async fn insert_lifecycle_run(&self, run: &LifecycleRun) -> Result<()> {
        self.store.insert_lifecycle_run(run).await
    }

    pub async fn finish_lifecycle_run(
        &self,
        id: &str,
        error: Option<&str>,
        detail: &serde_json::Value,
    ) -> Result<()> {
        self.store.finish_lifecycle_run(id, error, detail).await
    }

    pub async fn lifecycle_runs(
        &self,
        tenant: &TenantRecord,
        limit: u32,
    ) -> Result<Vec<LifecycleRun>> {
        self.store
            .lifecycle_runs(&tenant.id.to_string(), limit)
            .await
    }

    /// Forgets what this router cached of `record` (and of `extra_domains` it gained or lost),
    /// and tells the other routers to forget it too.
    async fn changed(&self, record: &TenantRecord, extra_domains: &[&str]) {
        let mut domains = record.domains.clone();
        domains.extend(extra_domains.iter().map(|d| d.to_string()));
        let change = announce::Change {
            slug: record.slug.to_string(),
            domains,
            everything: false,
        };
        self.forget(&change).await;
        if self.store.is_postgres() {
            announce::announce(&self.store.pool, &change).await;
        }
    }

    /// What a change announced by another router (or this one) makes this router forget.
    async fn forget(&self, change: &announce::Change) {
        if change.everything {
            return self.forget_all();
        }
        self.cache.evict(&change.slug, &change.domains).await;
    }

    fn forget_all(&self) {
        self.cache.clear();
    }

    /// Starts following the changes other routers announce (PostgreSQL registries only):
    /// for `silo serve`, not for one-off commands.
    pub fn follow_changes(self: &Arc<Self>) {
        if let Some(url) = self.store.postgres_url() {
            let task = announce::spawn_listener(url.to_owned(), Arc::downgrade(self));
            let previous = self
                .listener
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .replace(task);
            if let Some(previous) = previous {
                previous.abort();
            }
        }
    }

    pub async fn add_requests(&self, counts: &[(TenantId, u64)]) -> Result<()> {
        self.store.add_requests(counts).await
    }

    pub async fn record_measurement(
        &self,
        tenant: TenantId,
        users: i64,
        projects: i64,
        database_bytes: i64,
    ) -> Result<()> {
        self.store
            .record_measurement(tenant, users, projects, database_bytes)
            .await
    }

    pub async fn requests_served(&self, tenant: TenantId) -> Result<i64> {
        self.store.requests_served(tenant).await
    }

    pub async fn usage(&self, sort: UsageSort, limit: u32) -> Result<Vec<TenantUsage>> {
        self.store.usage(sort, limit).await
    }

    /// Whether this registry tells every router of a change at once (PostgreSQL's `NOTIFY`),
    /// rather than each learning within its cache's TTL.
    pub fn announces(&self) -> bool {
        self.store.is_postgres()
    }

    /// `/readyz`: can the registry be queried?
    pub async fn ping(&self) -> bool {
        self.store.ping().await
    }

    /// Stops following changes and closes the registry's connections.
    pub async fn close(&self) {
        if let Some(listener) = self
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            listener.abort();
        }
        self.store.close().await;
    }
}

/// The event a fan-out's record of one tenant announces.
fn migration_event(record: &TenantRecord, end: &MigrationEnd) -> Option<Event> {
    let (kind, data) = match end {
        MigrationEnd::Migrated(to) => (
            EventType::Migrated,
            json!({ "from_version": record.schema_version, "to_version": to, "via": "fanout" }),
        ),
        MigrationEnd::Failed(error) => (
            EventType::MigrationFailed,
            json!({ "version": record.schema_version, "error": error }),
        ),
        MigrationEnd::NotStarted(_) => return None,
    };
    Some(Event::new(kind, record, data))
}
