//! The pool cache: tenant id -> that tenant's own pool. `try_get_with` makes the first open
//! single-flight (fifty concurrent first requests open one pool), and `time_to_idle` closes
//! pools nobody used for `pool.idle_ttl_secs`.

use std::{collections::HashMap, sync::Arc, time::Duration};

use moka::{future::Cache, notification::RemovalCause};
use sqlx::AnyPool;

use crate::{
    database::{self, PoolShape},
    error::{Error, Result},
    registry::Registry,
    schema::{self, MigrationLocks},
    telemetry::Metrics,
    tenant::{TenantId, TenantRecord},
};

use super::Servers;

/// A cached pool and the server it connects to (for per-server accounting).
#[derive(Clone)]
struct OpenPool {
    server: Arc<str>,
    pool: AnyPool,
}

pub struct TenantPools {
    cache: Cache<TenantId, OpenPool>,
    servers: Arc<Servers>,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    migration_locks: Arc<MigrationLocks>,
    shape: PoolShape,
    migrate_on_open: bool,
}

impl TenantPools {
    pub fn new(
        servers: Arc<Servers>,
        registry: Arc<Registry>,
        metrics: Arc<Metrics>,
        migration_locks: Arc<MigrationLocks>,
        shape: PoolShape,
        idle_ttl: Duration,
        migrate_on_open: bool,
    ) -> Self {
        let cache = Cache::builder()
            .time_to_idle(idle_ttl)
            .eviction_listener(
                |tenant: Arc<TenantId>, open: OpenPool, cause: RemovalCause| {
                    let pool = open.pool;
                    tracing::debug!(tenant = %tenant, ?cause, "closing tenant pool");
                    // Closing waits for checked-out connections to come back, so a request that
                    // still holds one finishes first.
                    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                        runtime.spawn(async move { pool.close().await });
                    }
                },
            )
            .build();
        Self {
            cache,
            servers,
            registry,
            metrics,
            migration_locks,
            shape,
            migrate_on_open,
        }
    }

    /// The tenant's pool, opened on first use. A database that cannot be reached is
    /// `503 tenant_unavailable` for this tenant only.
    pub async fn get(&self, tenant: &TenantRecord) -> Result<AnyPool> {
        self.cache
            .try_get_with(tenant.id, self.open(tenant))
            .await
            .map(|open| open.pool)
            .map_err(|error: Arc<Error>| {
                tracing::warn!(tenant = %tenant.slug, %error, "tenant database unavailable");
                Error::TenantUnavailable { retry_after: 5 }
            })
    }

    async fn open(&self, tenant: &TenantRecord) -> Result<OpenPool> {
        let server = self.servers.get(&tenant.server).ok_or_else(|| {
            anyhow::anyhow!(
                "tenant {} is on unknown server {:?}",
                tenant.slug,
                tenant.server
            )
        })?;
        let url = server.tenant_url(tenant).map_err(|e| anyhow::anyhow!(e))?;
        let pool = database::open(&url, self.shape)
            .await
            .map_err(|e| anyhow::anyhow!("opening the database of {}: {e}", tenant.slug))?;
        if tenant.schema_version < schema::tenant_target_version() {
            // A router never serves an old schema: bring it up to date, or refuse the tenant
            // (503) until `silo migrate` has done so.
            if !self.migrate_on_open {
                pool.close().await;
                return Err(anyhow::anyhow!(
                    "{} is at schema {} and migrations.on_open is off; run silo migrate",
                    tenant.slug,
                    tenant.schema_version
                )
                .into());
            }
            let _one_at_a_time = self.migration_locks.lock(tenant.id).await;
            let version = match schema::migrate_tenant(&pool).await {
                Ok(version) => version,
                Err(e) => {
                    pool.close().await;
                    return Err(anyhow::anyhow!("migrating {} on open: {e}", tenant.slug).into());
                }
            };
            self.registry.set_schema_version(tenant, version).await?;
            tracing::info!(tenant = %tenant.slug, version, "migrated tenant schema on open");
        }
        tracing::debug!(tenant = %tenant.slug, "opened tenant pool");
        self.metrics.pool_opened();
        Ok(OpenPool {
            server: tenant.server.as_str().into(),
            pool,
        })
    }

    /// Closes and forgets a tenant's pool (deletion, or a database that moved).
    pub async fn evict(&self, tenant: TenantId) {
        if let Some(open) = self.cache.remove(&tenant).await {
            open.pool.close().await;
        }
    }

    /// Connections held to this tenant's database now (0 when it has no pool open).
    pub async fn open_connections(&self, tenant: TenantId) -> u32 {
        self.cache
            .get(&tenant)
            .await
            .map_or(0, |open| open.pool.size())
    }

    /// Connections held right now, per server name.
    pub fn connections_by_server(&self) -> HashMap<String, u64> {
        let mut held = HashMap::new();
        for (_, open) in self.cache.iter() {
            *held.entry(open.server.to_string()).or_default() += u64::from(open.pool.size());
        }
        held
    }

    /// Pools open right now (moka counts lazily: exact after [`Self::run_housekeeping`]).
    pub fn open_count(&self) -> u64 {
        self.cache.entry_count()
    }

    /// Runs moka's deferred work, so idle pools close even when no request arrives.
    pub async fn run_housekeeping(&self) {
        self.cache.run_pending_tasks().await;
    }

    /// Closes every pool (shutdown).
    pub async fn close_all(&self) {
        let pools: Vec<AnyPool> = self.cache.iter().map(|(_, open)| open.pool).collect();
        self.cache.invalidate_all();
        for pool in pools {
            pool.close().await;
        }
    }
}
