//! A tenant's vital signs for operators: users, projects, database size, open connections.

use serde::Serialize;

use super::lifecycle;
use crate::{
    backend::ControlRole,
    error::{Error, Result},
    state::AppState,
};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantStats {
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
    Ok(TenantStats {
        users,
        projects,
        database_bytes,
        open_connections,
    })
}
