//! The webhook outbox, written: one row per event and receiver URL, in the transaction of the
//! registry change the event reports ([`Outgoing`]). `deliveries.rs` reads and delivers them.

use super::{Registry, RegistryStore};
use crate::{clock, error::Result, tenant::TenantRecord, webhooks::Event};

/// Events to record with a registry write, for each of `urls`. Empty either way: nothing.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub urls: &'a [String],
    pub events: &'a [Event],
}

/// Writes `out`'s rows in `tx`, the transaction of the change they report.
pub(super) async fn insert_deliveries(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    out: &Outgoing<'_>,
) -> std::result::Result<(), sqlx::Error> {
    let now = clock::now_ms();
    for event in out.events {
        for url in out.urls {
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, event_id, event_type, tenant_id, tenant_slug, url, body, status, attempts, next_attempt_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(event.id.to_string())
            .bind(event.kind.as_str())
            .bind(&event.tenant_id)
            .bind(&event.tenant_slug)
            .bind(url)
            .bind(&event.body)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// Ends a compare-and-set's transaction: commits it, with `out`'s rows if the row `changed`
/// (an event only for a change that happened); answers `changed`.
pub(super) async fn commit_noting(
    mut tx: sqlx::Transaction<'_, sqlx::Any>,
    changed: bool,
    out: &Outgoing<'_>,
) -> std::result::Result<bool, sqlx::Error> {
    if changed {
        insert_deliveries(&mut tx, out).await?;
    }
    tx.commit().await?;
    Ok(changed)
}

impl RegistryStore {
    /// Records a migration on open at `version` with `out`, only if the row was behind it:
    /// of two routers migrating one tenant on open, one records it. True when this one did.
    pub async fn migrated_on_open(
        &self,
        id: &str,
        version: i64,
        out: &Outgoing<'_>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE tenants SET schema_version = $1, updated_at = $2
             WHERE id = $3 AND schema_version < $1",
        )
        .bind(version)
        .bind(clock::now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        Ok(commit_noting(tx, done.rows_affected() > 0, out).await?)
    }
}

impl Registry {
    /// The receivers events are recorded for (`webhooks.urls`); empty: webhooks are off.
    pub fn with_webhooks(mut self, urls: Vec<String>) -> Self {
        self.webhook_urls = urls;
        self
    }

    pub fn webhook_urls(&self) -> &[String] {
        &self.webhook_urls
    }

    /// Changes whenever this process records an event (or retries one), so its workers
    /// deliver it at once.
    pub fn outbox_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.outbox_changed.subscribe()
    }

    pub(super) fn wake_workers(&self) {
        self.outbox_changed.send_modify(|writes| *writes += 1);
    }

    /// What a write with `events` records in the outbox.
    pub(super) fn outgoing<'a>(&'a self, events: &'a [Event]) -> Outgoing<'a> {
        Outgoing {
            urls: &self.webhook_urls,
            events,
        }
    }

    /// Tells this process's worker there is work, after a write that recorded some.
    pub(super) fn recorded(&self, events: &[Event]) {
        if !events.is_empty() && !self.webhook_urls.is_empty() {
            self.wake_workers();
        }
    }

    /// Migrate-on-open's record: the new schema version and, if this router is the one that
    /// moved it, `event`.
    pub async fn migrated_on_open(
        &self,
        record: &TenantRecord,
        version: i64,
        event: Event,
    ) -> Result<()> {
        let events = [event];
        let moved = self
            .store
            .migrated_on_open(&record.id.to_string(), version, &self.outgoing(&events))
            .await?;
        self.changed(record, &[]).await;
        if moved {
            self.recorded(&events);
        }
        Ok(())
    }
}
