//! Per-tenant usage in the registry: requests served (added by every router) and the last
//! measurement of users, projects and database size.

use serde::Serialize;
use sqlx::Row;

use super::RegistryStore;
use crate::{
    clock,
    error::Result,
    tenant::{Status, TenantId},
};

/// One tenant's line of the fleet view.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TenantUsage {
    pub id: String,
    pub slug: String,
    pub plan: String,
    pub status: Status,
    pub server: String,
    /// Requests served since the tenant was made, by every router (each adds its count every
    /// few seconds).
    pub requests: i64,
    /// The last measurement; null until the tenant's first.
    pub users: Option<i64>,
    pub projects: Option<i64>,
    pub database_bytes: Option<i64>,
    #[serde(serialize_with = "clock::as_rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub measured_at: Option<i64>,
}

/// What the fleet view sorts by, largest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum UsageSort {
    Requests,
    Users,
    Projects,
    DatabaseBytes,
}

impl UsageSort {
    pub const NAMES: [&'static str; 4] = ["requests", "users", "projects", "database_bytes"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "requests" => Some(UsageSort::Requests),
            "users" => Some(UsageSort::Users),
            "projects" => Some(UsageSort::Projects),
            "database_bytes" => Some(UsageSort::DatabaseBytes),
            _ => None,
        }
    }

    fn column(self) -> &'static str {
        match self {
            UsageSort::Requests => "requests",
            UsageSort::Users => "users",
            UsageSort::Projects => "projects",
            UsageSort::DatabaseBytes => "database_bytes",
        }
    }
}

impl RegistryStore {
    /// Adds each tenant's requests served, in one transaction.
    pub async fn add_requests(&self, counts: &[(TenantId, u64)]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for (tenant, count) in counts {
            sqlx::query(
                "INSERT INTO tenant_usage (tenant_id, requests) VALUES ($1, $2)
                 ON CONFLICT (tenant_id) DO UPDATE SET requests = tenant_usage.requests + excluded.requests",
            )
            .bind(tenant.to_string())
            .bind(i64::try_from(*count).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn record_measurement(
        &self,
        tenant: TenantId,
        users: i64,
        projects: i64,
        database_bytes: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO tenant_usage (tenant_id, users, projects, database_bytes, measured_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id) DO UPDATE SET users = excluded.users,
                projects = excluded.projects, database_bytes = excluded.database_bytes,
                measured_at = excluded.measured_at",
        )
        .bind(tenant.to_string())
        .bind(users)
        .bind(projects)
        .bind(database_bytes)
        .bind(clock::now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Requests served by tenant `id`, as the registry has them.
    pub async fn requests_served(&self, id: TenantId) -> Result<i64> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT requests FROM tenant_usage WHERE tenant_id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.unwrap_or(0))
    }

    /// Every tenant's usage, largest `sort` first (never measured last), at most `limit`.
    pub async fn usage(&self, sort: UsageSort, limit: u32) -> Result<Vec<TenantUsage>> {
        let column = sort.column();
        // The column is one of four names above, never input.
        let statement = format!(
            "SELECT t.id, t.slug, t.plan, t.status, t.server, COALESCE(u.requests, 0) AS requests,
                    u.users, u.projects, u.database_bytes, u.measured_at
             FROM tenants t LEFT JOIN tenant_usage u ON u.tenant_id = t.id
             ORDER BY CASE WHEN u.{column} IS NULL THEN 1 ELSE 0 END, COALESCE(u.{column}, 0) DESC, t.id
             LIMIT $1"
        );
        let rows = sqlx::query(&statement)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get("status")?;
                Ok(TenantUsage {
                    id: row.try_get("id")?,
                    slug: row.try_get("slug")?,
                    plan: row.try_get("plan")?,
                    status: status.parse().map_err(|_| {
                        anyhow::anyhow!("registry row has an invalid status {status:?}")
                    })?,
                    server: row.try_get("server")?,
                    requests: row.try_get("requests")?,
                    users: row.try_get("users")?,
                    projects: row.try_get("projects")?,
                    database_bytes: row.try_get("database_bytes")?,
                    measured_at: row.try_get("measured_at")?,
                })
            })
            .collect()
    }
}
