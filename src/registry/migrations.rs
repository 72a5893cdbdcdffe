//! A fan-out's registry writes, a batch of tenants at a time: one statement marks a batch
//! `migrating`, one transaction records how each ended. Per tenant they were the fan-out's
//! main cost after the migrations themselves, and on SQLite every write of one waited behind
//! the others' for the registry's one write lock.

use sqlx::{any::AnyRow, Row};

use super::{
    outbox::{insert_deliveries, Outgoing},
    RegistryStore,
};
use crate::{
    clock,
    error::{Error, Result},
    tenant::{Status, TenantId},
};

/// How a tenant's part in a fan-out ended, as the registry records it.
#[derive(Debug, Clone, PartialEq)]
pub enum MigrationEnd {
    /// At this schema version now: `migrating` becomes `active`.
    Migrated(i64),
    /// Unchanged, for this reason: `migrating` becomes `migration_failed`.
    Failed(String),
    /// Marked `migrating` but never started (the run stopped): back to the status it had.
    NotStarted(Status),
}

/// Statuses a fan-out marks `migrating`: serving tenants (they answer 503 while they migrate)
/// and those an earlier run left. A suspended tenant is migrated but stays suspended.
const CLAIMED_FROM: [Status; 3] = [Status::Active, Status::MigrationFailed, Status::Migrating];

impl RegistryStore {
    /// Marks each of `ids` whose status allows it `migrating`, in one statement, and answers
    /// the status of every one still registered (a deleted tenant is missing).
    pub async fn begin_migrations(&self, ids: &[TenantId]) -> Result<Vec<(TenantId, Status)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = retry_deadlocks(|| self.claim(ids)).await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                let status: String = row.try_get("status")?;
                let parse = |what: &str| anyhow::anyhow!("registry row has an invalid {what}");
                Ok((
                    id.parse().map_err(|_| parse("id"))?,
                    status.parse().map_err(|_| parse("status"))?,
                ))
            })
            .collect()
    }

    /// Records how each migration ended, and `out` (the events saying so), in one transaction.
    /// Only `migrating` changes status; any other (a suspension meanwhile) is left as it is.
    pub async fn end_migrations(
        &self,
        ended: &[(TenantId, MigrationEnd)],
        out: &Outgoing<'_>,
    ) -> Result<()> {
        // In one order on every router: two runs recording at once then lock rows alike.
        let mut ended = ended.to_vec();
        ended.sort_by_key(|(id, _)| *id);
        retry_deadlocks(|| self.record_ends(&ended, out)).await?;
        Ok(())
    }

    /// [`RegistryStore::begin_migrations`]'s one transaction.
    async fn claim(&self, ids: &[TenantId]) -> Result<Vec<AnyRow>, sqlx::Error> {
        let list = placeholders(4, ids.len());
        let update = format!(
            "UPDATE tenants SET status = 'migrating', updated_at = $1
                 WHERE (status = $2 OR status = $3 OR status = 'migrating') AND id IN ({list})"
        );
        let mut tx = self.pool.begin().await?;
        let mut query = sqlx::query(&update)
            .bind(clock::now_ms())
            .bind(CLAIMED_FROM[0].as_str())
            .bind(CLAIMED_FROM[1].as_str());
        for id in ids {
            query = query.bind(id.to_string());
        }
        query.execute(&mut *tx).await?;
        let select = format!(
            "SELECT id, status FROM tenants WHERE id IN ({})",
            placeholders(1, ids.len())
        );
        let mut query = sqlx::query(&select);
        for id in ids {
            query = query.bind(id.to_string());
        }
        let rows = query.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// [`RegistryStore::end_migrations`]'s one transaction.
    async fn record_ends(
        &self,
        ended: &[(TenantId, MigrationEnd)],
        out: &Outgoing<'_>,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let now = clock::now_ms();
        for (id, end) in ended {
            let query = match end {
                MigrationEnd::Migrated(version) => sqlx::query(
                    "UPDATE tenants SET schema_version = $1, last_error = NULL, updated_at = $2,
                         status = CASE WHEN status = 'migrating' THEN 'active' ELSE status END
                     WHERE id = $3",
                )
                .bind(*version),
                MigrationEnd::Failed(error) => sqlx::query(
                    "UPDATE tenants SET last_error = $1, updated_at = $2,
                         status = CASE WHEN status = 'migrating' THEN 'migration_failed' ELSE status END
                     WHERE id = $3",
                )
                .bind(error.as_str()),
                // Its last error (if it had failed before) is kept, as it still stands.
                MigrationEnd::NotStarted(before) => sqlx::query(
                    "UPDATE tenants SET status = CASE WHEN status = 'migrating' THEN $1 ELSE status END,
                         updated_at = $2
                     WHERE id = $3",
                )
                .bind(before.as_str()),
            };
            query
                .bind(now)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        insert_deliveries(&mut tx, out).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Runs a registry transaction again (twice at most) when PostgreSQL chose it as a deadlock's
/// victim: two fan-outs at once claim and record overlapping tenants, and a retry of the whole
/// transaction is the remedy the server expects.
async fn retry_deadlocks<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(sqlx::Error::Database(db))
                if db.code().as_deref() == Some("40P01") && tries < 2 =>
            {
                tries += 1;
                tracing::debug!("a registry transaction was a deadlock's victim; again");
            }
            done => return done.map_err(Error::from),
        }
    }
}

/// `$first, $first+1, ...`: `count` numbered placeholders.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_from_the_first() {
        assert_eq!(placeholders(4, 3), "$4, $5, $6");
        assert_eq!(placeholders(1, 1), "$1");
    }
}
