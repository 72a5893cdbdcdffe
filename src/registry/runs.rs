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
