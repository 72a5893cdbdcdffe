//! The fan-out history: one row per migration run, whoever started it.

use serde::Serialize;
use sqlx::Row;

use super::RegistryStore;
use crate::{clock, error::Result};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FanoutRun {
    pub id: String,
    pub target_version: i64,
    pub concurrency: i64,
    /// The target group; empty means every tenant.
    pub tenants: Vec<String>,
    /// `running` or `finished`.
    pub status: String,
    pub migrated: i64,
    pub failed: i64,
    #[serde(serialize_with = "clock::as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: i64,
    #[serde(serialize_with = "clock::as_rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub finished_at: Option<i64>,
}

impl RegistryStore {
    pub async fn insert_run(&self, run: &FanoutRun) -> Result<()> {
        sqlx::query(
            "INSERT INTO fanout_runs (id, target_version, concurrency, tenants, status, started_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&run.id)
        .bind(run.target_version)
        .bind(run.concurrency)
        .bind(serde_json::to_string(&run.tenants).unwrap_or_default())
        .bind(&run.status)
        .bind(run.started_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn finish_run(&self, id: &str, migrated: i64, failed: i64) -> Result<()> {
        sqlx::query("UPDATE fanout_runs SET status = 'finished', migrated = $1, failed = $2, finished_at = $3 WHERE id = $4")
            .bind(migrated)
            .bind(failed)
            .bind(clock::now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn find_run(&self, id: &str) -> Result<Option<FanoutRun>> {
        let row = sqlx::query(
            "SELECT id, target_version, concurrency, tenants, status, migrated, failed, started_at, finished_at
             FROM fanout_runs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let tenants: String = row.try_get("tenants")?;
        Ok(Some(FanoutRun {
            id: row.try_get("id")?,
            target_version: row.try_get("target_version")?,
            concurrency: row.try_get("concurrency")?,
            tenants: serde_json::from_str(&tenants).unwrap_or_default(),
            status: row.try_get("status")?,
            migrated: row.try_get("migrated")?,
            failed: row.try_get("failed")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
        }))
    }
}

/// One lifecycle run on one tenant (a backup, a restore, a clone, a move), as the registry
/// records it: started as `running`, ended `succeeded` or `failed` with the reason.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LifecycleRun {
    pub id: String,
    /// `backup`, `restore`, `clone`, `move` or `rotate_keys`.
    pub kind: String,
    pub tenant_id: String,
    pub slug: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// What was asked and what came of it: a JSON object, its keys depending on the kind.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// Why a failed run failed.
    pub error: Option<String>,
    #[serde(serialize_with = "clock::as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: i64,
    #[serde(serialize_with = "clock::as_rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub finished_at: Option<i64>,
}

const LIFECYCLE_COLUMNS: &str =
    "id, kind, tenant_id, slug, status, detail, error, started_at, finished_at";

impl RegistryStore {
    pub async fn insert_lifecycle_run(&self, run: &LifecycleRun) -> Result<()> {
        sqlx::query(
            "INSERT INTO lifecycle_runs (id, kind, tenant_id, slug, status, detail, started_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&run.id)
        .bind(&run.kind)
        .bind(&run.tenant_id)
        .bind(&run.slug)
        .bind(&run.status)
        .bind(run.detail.to_string())
        .bind(run.started_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn finish_lifecycle_run(
        &self,
        id: &str,
        error: Option<&str>,
        detail: &serde_json::Value,
    ) -> Result<()> {
        let status = if error.is_some() {
            "failed"
        } else {
            "succeeded"
        };
        sqlx::query(
            "UPDATE lifecycle_runs SET status = $1, error = $2, detail = $3, finished_at = $4
             WHERE id = $5",
        )
        .bind(status)
        .bind(error)
        .bind(detail.to_string())
        .bind(clock::now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The tenant's runs, newest first, at most `limit`.
    pub async fn lifecycle_runs(&self, tenant_id: &str, limit: u32) -> Result<Vec<LifecycleRun>> {
        let rows = sqlx::query(&format!(
            "SELECT {LIFECYCLE_COLUMNS} FROM lifecycle_runs WHERE tenant_id = $1
             ORDER BY started_at DESC, id DESC LIMIT $2"
        ))
        .bind(tenant_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(lifecycle_run).collect()
    }
}

fn lifecycle_run(row: &sqlx::any::AnyRow) -> Result<LifecycleRun> {
    let detail: String = row.try_get("detail")?;
    Ok(LifecycleRun {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        tenant_id: row.try_get("tenant_id")?,
        slug: row.try_get("slug")?,
        status: row.try_get("status")?,
        detail: serde_json::from_str(&detail).unwrap_or_default(),
        error: row.try_get("error")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}
