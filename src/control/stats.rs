//! A tenant's vital signs for operators: requests served, users, projects, database size, open
//! connections. Each reading is kept in the registry as the tenant's last measurement, which the
//! fleet view (`usage`) sorts by.

use serde::Serialize;

use super::lifecycle;
use crate::{
    backend::ControlRole,
    error::{Error, Result},
    state::AppState,
};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantStats {
    /// Requests served since the tenant was made, by every router (as the registry has them,
    /// plus this router's not yet added).
    pub requests: i64,
    pub users: i64,
    pub projects: i64,
    pub database_bytes: u64,
    /// Connections this router holds to the tenant's database right now.
    pub open_connections: u32,
}

pub async fn stats(state: &AppState, slug: &str) -> Result<TenantStats> {
    let tenant = lifecycle::find(state, slug).await?;
    let open_connections = state.pools.open_connections(tenant.id).await;
    let server = state.servers.of(&tenant)?;
    // Its one connection at a time is counted in the server's budget.
    let _room = state.pools.reserve_for_control(&tenant, 1).await?;
    let pool = server
        .connect_control(&tenant, ControlRole::Admin)
        .await
        .map_err(|error| {
            tracing::warn!(tenant = %tenant.slug, %error, "stats: tenant database unavailable");
            Error::TenantUnavailable { retry_after: 5 }
        })?;
    let counts = async {
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&pool)
            .await?;
        let projects: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM projects")
            .fetch_one(&pool)
            .await?;
        Result::<(i64, i64)>::Ok((users, projects))
    }
    .await;
    pool.close().await;
    let (users, projects) = counts?;
    let database_bytes = server.database_bytes(&tenant).await?;
    let bytes = i64::try_from(database_bytes).unwrap_or(i64::MAX);
    if let Err(error) = state
        .registry
        .record_measurement(tenant.id, users, projects, bytes)
        .await
    {
        tracing::warn!(tenant = %tenant.slug, %error, "the measurement was not kept");
    }
    let pending = i64::try_from(state.usage.pending(tenant.id)).unwrap_or(i64::MAX);
    let requests = state.registry.requests_served(tenant.id).await? + pending;
    Ok(TenantStats {
        requests,
        users,
        projects,
        database_bytes,
        open_connections,
    })
}

/// Every tenant's usage, largest `sort` first: the registry's last measurements and request
/// counts, with this router's requests not yet added.
pub async fn usage(
    state: &AppState,
    sort: crate::registry::UsageSort,
    limit: u32,
) -> Result<Vec<crate::registry::TenantUsage>> {
    let mut rows = state.registry.usage(sort, limit).await?;
    for row in &mut rows {
        if let Ok(id) = row.id.parse() {
            row.requests += i64::try_from(state.usage.pending(id)).unwrap_or(0);
        }
    }
    Ok(rows)
}

/// Measures every tenant whose database can be read (as [`stats`] does), `concurrency` at a
/// time, so the fleet view is current; answers how many were measured and how many could not be.
pub async fn measure_all(state: &AppState, concurrency: usize) -> Result<(usize, usize)> {
    use futures::StreamExt;
    let tenants = lifecycle::list_all(state).await?;
    let results: Vec<bool> = futures::stream::iter(tenants)
        .map(|tenant| async move {
            match stats(state, tenant.slug.as_str()).await {
                Ok(_) => true,
                Err(error) => {
                    tracing::warn!(tenant = %tenant.slug, %error, "not measured");
                    false
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let measured = results.iter().filter(|ok| **ok).count();
    Ok((measured, results.len() - measured))
}
