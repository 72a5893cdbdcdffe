//! The pool cache: tenant id -> that tenant's own pool. `try_get_with` makes the first open
//! single-flight (fifty concurrent first requests open one pool), and `time_to_idle` closes
//! pools nobody used for `pool.idle_ttl_secs`. A pool opens only with room in its server's
//! connection budget; when there is none, the least recently used idle pool there is closed.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use moka::{
    future::Cache,
    notification::RemovalCause,
    ops::compute::{CompResult, Op},
};

use crate::{
    backend::{Server, Servers},
    database::PoolShape,
    error::{Error, Result},
    registry::Registry,
    schema::TenantSchema,
    telemetry::Metrics,
    tenant::{TenantId, TenantRecord},
    webhooks::{Event, EventType},
};

use super::{
    budget::{Budgets, Reservation},
    TenantPool,
};

/// How often a cold tenant waiting for room in a full budget looks again for a pool to close.
const BUDGET_TICK: Duration = Duration::from_millis(20);

/// A pool used this recently is not closed for the budget: the request that just took it from
/// the cache has most likely not checked out its connection yet.
const EVICTION_GRACE_MS: u64 = 100;
/// The longest the control path waits for room in a server's budget before it gives up with
/// `503`: long enough for any burst of requests to pass, short enough that a wedged router is
/// noticed rather than waited on for ever.
pub const CONTROL_WAIT: Duration = Duration::from_secs(300);

/// How tenant pools are shaped, kept and migrated (from `[pool]` and `[migrations]`).
#[derive(Debug, Clone, Copy)]
pub struct PoolPolicy {
    pub shape: PoolShape,
    /// A pool nobody used for this long is closed.
    pub idle_ttl: Duration,
    /// Bring a tenant's schema up to date when its pool opens.
    pub migrate_on_open: bool,
}

/// A cached pool, the server it connects to (for per-server accounting), when it was last
/// used, and its share of that server's budget.
#[derive(Clone)]
struct OpenPool {
    server: Arc<str>,
    /// The database it connects to: a tenant whose row names another (it moved) gets a new pool.
    database: Arc<str>,
    pool: TenantPool,
    /// Milliseconds since [`TenantPools::epoch`]; the budget closes the smallest first.
    last_used: Arc<AtomicU64>,
    /// Released by the eviction listener once the pool has closed.
    reservation: Arc<Reservation>,
    /// The tenant's credentials version the pool was opened with (see `get`).
    credentials_version: i64,
}

impl OpenPool {
    /// Whether this pool reaches the database `tenant`'s row names now.
    fn is_for(&self, tenant: &TenantRecord) -> bool {
        *self.server == *tenant.server && *self.database == *tenant.database
    }
}

pub struct TenantPools {
    cache: Cache<TenantId, OpenPool>,
    servers: Arc<Servers>,
    budgets: Budgets,
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
    schema: Arc<TenantSchema>,
    policy: PoolPolicy,
    /// The zero of every pool's `last_used`, so they compare.
    epoch: Instant,
}

impl TenantPools {
    pub fn new(
        servers: Arc<Servers>,
        budgets: Budgets,
        registry: Arc<Registry>,
        metrics: Arc<Metrics>,
        schema: Arc<TenantSchema>,
        policy: PoolPolicy,
    ) -> Self {
        let cache = Cache::builder()
            .time_to_idle(policy.idle_ttl)
            .eviction_listener(
                |tenant: Arc<TenantId>, open: OpenPool, cause: RemovalCause| {
                    tracing::debug!(tenant = %tenant, ?cause, "closing tenant pool");
                    open.reservation.closing();
                    // Closing waits for checked-out connections to come back, so a request that
                    // still holds one finishes first. Only then is the reservation released: the
                    // budget counts a connection until it is really closed.
                    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                        runtime.spawn(async move {
                            open.pool.close().await;
                            open.reservation.release();
                        });
                    } else {
                        open.reservation.release();
                    }
                },
            )
            .build();
        Self {
            cache,
            servers,
            budgets,
            registry,
            metrics,
            schema,
            policy,
            epoch: Instant::now(),
        }
    }

    /// The tenant's pool, opened on first use. A database that cannot be reached, or no room
    /// in its server's connection budget in time, is `503 tenant_unavailable` for this tenant only.
    pub async fn get(&self, tenant: &TenantRecord) -> Result<TenantPool> {
        // A hit (nearly every request) skips building the opening future. The miss is boxed:
        // opening a pool is a large future, and inline it would make every hit's future (and
        // every future awaiting it, up to the request's) as large and as slow to move.
        let mut cached = self.cache.get(&tenant.id).await;
        if let Some(open) = cached.as_ref() {
            if self.is_stale(open, tenant).await {
                self.remove_if_current(tenant.id, open).await;
                cached = None;
            }
        }
        let open = match cached {
            Some(open) => Ok(open),
            None => Box::pin(self.cache.try_get_with(tenant.id, self.open(tenant))).await,
        }
        .map_err(|error: Arc<Error>| match *error {
            // A full budget: already logged where it was decided.
            Error::TenantUnavailable { retry_after } => Error::TenantUnavailable { retry_after },
            _ => {
                tracing::warn!(tenant = %tenant.slug, %error, "tenant database unavailable");
                Error::TenantUnavailable { retry_after: 5 }
            }
        })?;
        // Every request passes here: one relaxed store is all the budget's choice costs it.
        open.last_used.store(self.now_ms(), Ordering::Relaxed);
        Ok(open.pool)
    }

    /// Whether a cached pool is to give way to one opened on `tenant`'s row:
    ///
    /// - a pool opened before the tenant's credentials were rotated still works (its open
    ///   connections stay logged in, new ones fall back to the next password), but a second
    ///   rotation would leave it behind: it is replaced by one on the current credentials, only
    ///   for a newer row, so a request still holding an older one never undoes it;
    /// - a pool on another database than the row names (the tenant moved, or the request's row
    ///   is from before the move): the registry itself says which is current, read only then.
    async fn is_stale(&self, open: &OpenPool, tenant: &TenantRecord) -> bool {
        if open.is_for(tenant) {
            return open.credentials_version < tenant.credentials_version;
        }
        match self.registry.load(&tenant.slug).await {
            Ok(Some(now)) => !open.is_for(&now),
            // The registry cannot say: keep serving from the pool there is.
            _ => false,
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    async fn open(&self, tenant: &TenantRecord) -> Result<OpenPool> {
        let server = self.servers.of(tenant)?;
        let target = server.connect_target(tenant)?;
        // Room first: once open, sqlx may open the pool's connections whenever it likes. A failed
        // open below drops the reservation, giving the room back.
        let reservation = self
            .reserve(tenant, self.policy.shape.max_connections)
            .await?;
        // Within the reserved room: the migration's connection is one the pool has not opened.
        self.bring_schema_up_to_date(tenant, server).await?;
        let pool = TenantPool::open(target, self.policy.shape).await?;
        tracing::debug!(tenant = %tenant.slug, "opened tenant pool");
        self.metrics.pool_opened();
        Ok(OpenPool {
            server: tenant.server.as_str().into(),
            database: tenant.database.as_str().into(),
            pool,
            last_used: Arc::new(AtomicU64::new(self.now_ms())),
            reservation: Arc::new(reservation),
            credentials_version: tenant.credentials_version,
        })
    }

    /// A router never serves an old schema: bring it up to date, or refuse the tenant (503)
    /// until `silo migrate` has done so.
    async fn bring_schema_up_to_date(&self, tenant: &TenantRecord, server: &Server) -> Result<()> {
        if tenant.schema_version >= self.schema.target_version() {
            return Ok(());
        }
        if !self.policy.migrate_on_open {
            return Err(anyhow::anyhow!(
                "{} is at schema {} and migrations.on_open is off; run silo migrate",
                tenant.slug,
                tenant.schema_version
            )
            .into());
        }
        let version = crate::control::migrate_tenant(server, tenant, &self.schema).await?;
        let event = Event::new(
            EventType::Migrated,
            tenant,
            serde_json::json!({
                "from_version": tenant.schema_version, "to_version": version, "via": "open",
            }),
        );
        self.registry
            .migrated_on_open(tenant, version, event)
            .await?;
        tracing::info!(tenant = %tenant.slug, version, "migrated tenant schema on open");
        Ok(())
    }

    /// Room for `connections` control-path connections at once (provisioning, deletion,
    /// stats, a migration batch), counted like a pool's. The control path is not in a hurry:
    /// it waits for room up to [`CONTROL_WAIT`] (a caller's own deadline, such as the admin
    /// API's request timeout, still holds), rather than fail for a router busy serving requests,
    /// then answers `503 tenant_unavailable`; it makes room as a cold tenant does, by closing
    /// idle pools, never busy ones. More than the whole budget is refused at once (the
    /// configuration's checks keep that from happening).
    pub async fn reserve_for_control(
        &self,
        tenant: &TenantRecord,
        connections: u32,
    ) -> Result<Reservation> {
        let total = self
            .budgets
            .get(tenant.server.as_str())
            .map_or(0, |budget| budget.total());
        if connections > total {
            return Err(Error::Internal(anyhow::anyhow!(
                "the control path needs {connections} connections at once, more than the budget of {total} towards server {:?}",
                tenant.server
            )));
        }
        let deadline = Instant::now() + CONTROL_WAIT;
        loop {
            match self.reserve(tenant, connections).await {
                Err(Error::TenantUnavailable { .. }) if Instant::now() < deadline => continue,
                reserved => return reserved,
            }
        }
    }

    /// Room for one pool in the budget of the tenant's server. When the budget is full, the
    /// least recently used idle pool there is closed to make room; when every pool is busy, this
    /// waits for one to become idle, up to `pool.acquire_timeout_ms`, then answers
    /// `503 tenant_unavailable`: never the database's "too many connections".
    async fn reserve(&self, tenant: &TenantRecord, connections: u32) -> Result<Reservation> {
        let server = tenant.server.as_str();
        let budget = self
            .budgets
            .get(server)
            .ok_or_else(|| anyhow::anyhow!("no connection budget for server {server:?}"))?;
        if let Some(reservation) = budget.try_reserve(connections) {
            return Ok(reservation);
        }
        let deadline = Instant::now() + self.policy.shape.acquire_timeout;
        let mut waited = false;
        loop {
            if !budget.is_returning() {
                // Pools past their idle time hold their room until moka's housekeeping removes
                // them; that costs nobody a pool.
                self.cache.run_pending_tasks().await;
            }
            // Connections already on their way back make room without closing another pool.
            let closed = !budget.is_returning() && self.close_least_recently_used(server).await;
            if closed {
                self.metrics.budget_eviction(server);
            } else if !waited {
                waited = true;
                self.metrics.budget_wait(server);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if let Some(reservation) = budget
                .reserve_within(connections, left.min(BUDGET_TICK))
                .await
            {
                return Ok(reservation);
            }
        }
        tracing::warn!(
            tenant = %tenant.slug,
            server,
            budget = budget.total(),
            "connection budget full and every pool on the server busy; refusing to open a pool"
        );
        Err(Error::TenantUnavailable { retry_after: 1 })
    }

    /// Closes the least recently used pool on `server` that has no connection checked out, so
    /// no query is cut off; false when there is none. (A request that took the pool but has not
    /// checked out a connection yet gets `PoolClosed` and takes the tenant's new pool.)
    async fn close_least_recently_used(&self, server: &str) -> bool {
        let now = self.now_ms();
        let mut idle: Vec<(TenantId, OpenPool)> = self
            .cache
            .iter()
            .filter(|(_, open)| {
                &*open.server == server
                    && open.pool.num_idle() == open.pool.size() as usize
                    && now.saturating_sub(open.last_used.load(Ordering::Relaxed))
                        >= EVICTION_GRACE_MS
            })
            .map(|(tenant, open)| (*tenant, open))
            .collect();
        idle.sort_by_key(|(_, open)| open.last_used.load(Ordering::Relaxed));
        for (tenant, open) in idle {
            if self.remove_if_current(tenant, &open).await {
                tracing::debug!(tenant = %tenant, server, "closed an idle pool to make room in the connection budget");
                return true;
            }
        }
        false
    }

    /// Removes the tenant's cached pool if it is still `open`: a pool opened since the scan is
    /// never closed by mistake. The eviction listener closes the removed pool.
    async fn remove_if_current(&self, tenant: TenantId, open: &OpenPool) -> bool {
        let result = self
            .cache
            .entry(tenant)
            .and_compute_with(|current| {
                let same = current
                    .is_some_and(|entry| Arc::ptr_eq(&entry.value().last_used, &open.last_used));
                std::future::ready(if same { Op::Remove } else { Op::Nop })
            })
            .await;
        matches!(result, CompResult::Removed(_))
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

    /// Connections reserved right now, per server name (at least those held).
    pub fn reserved_by_server(&self) -> HashMap<String, u64> {
        self.budgets.reserved_by_server()
    }

    /// Connections held right now, per server name.
    pub fn connections_by_server(&self) -> HashMap<String, u64> {
        let mut held = HashMap::new();
        for (_, open) in self.cache.iter() {
            *held.entry(open.server.to_string()).or_default() += u64::from(open.pool.size());
        }
        held
    }

    /// Pools open and serving right now. (moka's own `entry_count` is updated only by its
    /// housekeeping, so a gauge read from it lagged behind newly opened pools.) A pool past its
    /// idle time is no longer counted, though until housekeeping closes it, it still holds its
    /// reservation (`silo_server_connections_reserved`).
    pub fn open_count(&self) -> u64 {
        self.cache.iter().count() as u64
    }

    /// Runs moka's deferred work, so idle pools close even when no request arrives, and closes
    /// the connections that open pools no longer need.
    pub async fn run_housekeeping(&self) {
        self.cache.run_pending_tasks().await;
        for (_, open) in self.cache.iter() {
            open.pool.close_idle().await;
        }
    }

    /// Closes every pool (shutdown).
    pub async fn close_all(&self) {
        let pools: Vec<TenantPool> = self.cache.iter().map(|(_, open)| open.pool).collect();
        self.cache.invalidate_all();
        for pool in pools {
            pool.close().await;
        }
    }
}
