//! What each tenant uses, and its plan's quotas.
//!
//! Requests served are counted in this router's memory (one atomic add per request) and added
//! to the registry every few seconds ([`Usage::flush`]), so the count is every router's. The
//! quotas of `plan.toml` are checked only by the requests that would go beyond them, never by
//! the others: `max_users` and `max_projects` by the request that adds a user or a project, in
//! the same transaction as its insert (so two at once cannot both take the last place), and
//! `max_database_bytes` by those and every other request that adds rows of its own (an API
//! token, an invitation), against the database's size as this router last measured it (at most
//! [`SIZE_TTL`] ago).

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use dashmap::DashMap;

use crate::{
    error::{Error, Result},
    http::TenantDb,
    registry::Registry,
    sql::{self, Transaction},
    state::AppState,
    tenant::{TenantId, TenantRecord},
};

/// How old a database size the `max_database_bytes` check may use.
pub const SIZE_TTL: Duration = Duration::from_secs(30);

/// How often a router adds its request counts to the registry.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);

pub struct Usage {
    /// Requests served since the last flush, by tenant.
    requests: DashMap<TenantId, AtomicU64>,
    sizes: moka::future::Cache<TenantId, u64>,
}

impl Default for Usage {
    fn default() -> Self {
        Self {
            requests: DashMap::new(),
            sizes: moka::future::Cache::builder()
                .time_to_live(SIZE_TTL)
                .max_capacity(100_000)
                .build(),
        }
    }
}

impl Usage {
    /// Counts one request served for `tenant`: on the request path, so one atomic add when the
    /// tenant is already counted.
    pub fn served(&self, tenant: TenantId) {
        if let Some(count) = self.requests.get(&tenant) {
            count.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.requests
            .entry(tenant)
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Requests of `tenant` this router served and has not added to the registry yet.
    pub fn pending(&self, tenant: TenantId) -> u64 {
        self.requests
            .get(&tenant)
            .map_or(0, |count| count.load(Ordering::Relaxed))
    }

    /// Adds this router's counts to the registry; counts it could not add are kept for the
    /// next flush.
    pub async fn flush(&self, registry: &Registry) {
        let mut counts = Vec::new();
        self.requests.retain(|tenant, count| {
            let taken = count.swap(0, Ordering::Relaxed);
            if taken > 0 {
                counts.push((*tenant, taken));
            }
            // A tenant served nothing since the last flush is forgotten until it is again.
            taken > 0
        });
        if counts.is_empty() {
            return;
        }
        // In one order on every router, so two flushing at once never deadlock each other.
        counts.sort_unstable_by_key(|(tenant, _)| *tenant);
        if let Err(error) = registry.add_requests(&counts).await {
            tracing::warn!(%error, tenants = counts.len(), "request counts not added to the registry; kept for the next try");
            for (tenant, count) in counts {
                self.requests
                    .entry(tenant)
                    .or_default()
                    .fetch_add(count, Ordering::Relaxed);
            }
        }
    }

    /// `max_database_bytes`: refuses with `403 quota_exceeded` once the tenant's database is
    /// at its plan's size, measured at most [`SIZE_TTL`] ago by this router: on PostgreSQL on
    /// the request's own connection (`pg_database_size`), never another one; on SQLite from
    /// the file's size.
    pub async fn ensure_space(&self, db: &TenantDb) -> Result<()> {
        let (state, tenant) = (db.state(), &*db.tenant);
        let Some(limit) = quotas(state, tenant).max_database_bytes else {
            return Ok(());
        };
        let size = self
            .sizes
            .try_get_with(tenant.id, async {
                let mut conn = db.conn().await?;
                match conn.as_server() {
                    Some(server) => {
                        let bytes: i64 =
                            sqlx::query_scalar("SELECT pg_database_size(current_database())")
                                .fetch_one(server)
                                .await?;
                        Ok(u64::try_from(bytes).unwrap_or(0))
                    }
                    None => {
                        drop(conn);
                        state.servers.of(tenant)?.database_bytes(tenant).await
                    }
                }
            })
            .await
            .map_err(|error: std::sync::Arc<Error>| match &*error {
                Error::TenantUnavailable { retry_after } => Error::TenantUnavailable {
                    retry_after: *retry_after,
                },
                other => Error::Internal(anyhow::anyhow!("measuring the database: {other}")),
            })?;
        if size >= limit {
            return Err(Error::QuotaExceeded {
                quota: "max_database_bytes",
                what: format!("a database of {limit} bytes"),
            });
        }
        Ok(())
    }
}

/// Rows a quota counts.
#[derive(Debug, Clone, Copy)]
pub enum Counted {
    Users,
    Projects,
}

impl Counted {
    fn table(self) -> &'static str {
        match self {
            Counted::Users => "users",
            Counted::Projects => "projects",
        }
    }

    fn quota(self) -> &'static str {
        match self {
            Counted::Users => "max_users",
            Counted::Projects => "max_projects",
        }
    }
}

fn quotas<'a>(
    state: &'a AppState,
    tenant: &TenantRecord,
) -> std::borrow::Cow<'a, crate::plans::PlanSettings> {
    match state.plans.get(&tenant.plan) {
        Some(plan) => std::borrow::Cow::Borrowed(&plan.settings),
        None => std::borrow::Cow::Owned(state.plans.fallback_settings()),
    }
}

/// `max_users` / `max_projects`: inside `tx`, before the insert of one more row of `what`,
/// refuses with `403 quota_exceeded` when the plan's quota is reached. On SQLite the
/// transaction already holds the tenant's write lock; on PostgreSQL a transaction-level
/// advisory lock makes the tenant's adds of `what` take turns, so the count stays true until
/// the insert commits. Nothing is counted when the plan sets no quota. The transaction is to
/// end at once whatever happens next ([`Transaction::finish`]): a server transaction merely
/// dropped keeps its locks until its connection is next used.
pub async fn ensure_room(
    state: &AppState,
    tenant: &TenantRecord,
    tx: &mut Transaction<'_>,
    what: Counted,
) -> Result<()> {
    ensure_room_within(tx, limit(state, tenant, what), what).await
}

/// The plan's quota of `what` for `tenant`; `None` for none.
pub fn limit(state: &AppState, tenant: &TenantRecord, what: Counted) -> Option<u64> {
    match what {
        Counted::Users => quotas(state, tenant).max_users,
        Counted::Projects => quotas(state, tenant).max_projects,
    }
}

/// [`ensure_room`] with the quota already known.
pub async fn ensure_room_within(
    tx: &mut Transaction<'_>,
    limit: Option<u64>,
    what: Counted,
) -> Result<()> {
    let Some(limit) = limit else {
        return Ok(());
    };
    if tx.is_server() {
        sql::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("silo:quota:{}", what.table()))
            .execute(&mut *tx)
            .await?;
    }
    // The table is one of two names above, never input.
    let count: i64 = sql::query(&format!("SELECT COUNT(*) AS n FROM {}", what.table()))
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
    if u64::try_from(count).unwrap_or(0) >= limit {
        return Err(Error::QuotaExceeded {
            quota: what.quota(),
            what: format!("at most {limit} {}", what.table()),
        });
    }
    Ok(())
}
