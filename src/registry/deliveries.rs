//! The webhook outbox, read: deliveries taken by the routers' workers one tenant's event at a
//! time per URL, under a lease, so normally one router sends each and a tenant's events reach
//! a receiver in order; their outcomes; the operators' view.

use serde::Serialize;
use sqlx::{any::AnyRow, Row};
use utoipa::ToSchema;

use super::{Registry, RegistryStore};
use crate::{
    clock,
    error::{Error, Result},
    tenant::Slug,
};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not delivered yet: waiting for its turn, its next attempt, or in flight.
    Pending,
    /// A receiver answered 2xx.
    Delivered,
    /// `webhooks.max_attempts` attempts failed; it is not tried again unless retried.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

impl std::str::FromStr for DeliveryStatus {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        match raw {
            "pending" => Ok(DeliveryStatus::Pending),
            "delivered" => Ok(DeliveryStatus::Delivered),
            "failed" => Ok(DeliveryStatus::Failed),
            _ => Err(format!(
                "unknown status {raw:?} (pending, delivered, failed)"
            )),
        }
    }
}

/// The tenant an event is about, as the event names it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryTenant {
    pub id: String,
    pub slug: String,
}

/// One event on its way to one receiver.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Delivery {
    pub id: String,
    /// The event's id, sent as `X-Silo-Delivery`: the same for every receiver and attempt.
    pub event_id: String,
    /// `tenant.created`, `tenant.suspended`, ...
    #[serde(rename = "type")]
    pub event_type: String,
    pub tenant: DeliveryTenant,
    /// The receiver, its password (if it has one) left out.
    #[serde(serialize_with = "without_password")]
    pub url: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    /// When it is tried next (pending), or was last due.
    #[serde(serialize_with = "clock::as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub next_attempt_at: i64,
    /// What went wrong last time: the receiver's status, a timeout, a connection error.
    #[schema(required = true)]
    pub last_error: Option<String>,
    #[serde(serialize_with = "clock::as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "clock::as_rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub delivered_at: Option<i64>,
    /// The exact body every attempt sends.
    #[serde(skip)]
    #[schema(ignore)]
    pub body: String,
}

fn without_password<S: serde::Serializer>(url: &str, serializer: S) -> Result<S::Ok, S::Error> {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(None);
            serializer.serialize_str(parsed.as_str())
        }
        _ => serializer.serialize_str(url),
    }
}

const COLUMNS: &str = "id, event_id, event_type, tenant_id, tenant_slug, url, body, status, attempts, next_attempt_at, last_error, created_at, delivered_at";

impl RegistryStore {
    /// Takes up to `limit` deliveries that are due, each the oldest undelivered event of its
    /// tenant for its URL, by leasing them until `lease_until`. Only `urls` (the receivers this
    /// router is configured with) are taken. A row leased by another router whose lease has not
    /// run out is left alone, and so is every later event of that tenant for that URL.
    pub async fn claim_deliveries(
        &self,
        urls: &[String],
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        if urls.is_empty() {
            return Ok(Vec::new());
        }
        // Numbered in the order they appear: SQLite numbers `$n` by first appearance.
        let list = (2..2 + urls.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let select = format!(
            "SELECT {COLUMNS} FROM webhook_deliveries d
             WHERE status = 'pending' AND next_attempt_at <= $1
               AND (lease_until IS NULL OR lease_until < $1)
               AND url IN ({list})
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e
                   WHERE e.tenant_id = d.tenant_id AND e.url = d.url
                     AND e.status = 'pending' AND e.event_id < d.event_id)
             ORDER BY event_id LIMIT ${}",
            2 + urls.len()
        );
        let mut query = sqlx::query(&select).bind(now);
        for url in urls {
            query = query.bind(url);
        }
        let query = query.bind(i64::from(limit));
        let rows = query.fetch_all(&self.pool).await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let delivery = delivery_from_row(row)?;
            // Another router may have taken it (or an earlier event may have appeared) since
            // the select: the lease is taken only on a row that is still the head of its line.
            let taken = sqlx::query(
                "UPDATE webhook_deliveries SET lease_until = $1
                 WHERE id = $2 AND status = 'pending' AND (lease_until IS NULL OR lease_until < $3)
                   AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e
                       WHERE e.tenant_id = webhook_deliveries.tenant_id
                         AND e.url = webhook_deliveries.url
                         AND e.status = 'pending' AND e.event_id < webhook_deliveries.event_id)",
            )
            .bind(lease_until)
            .bind(&delivery.id)
            .bind(now)
            .execute(&self.pool)
            .await?;
            if taken.rows_affected() > 0 {
                claimed.push(delivery);
            }
        }
        Ok(claimed)
    }

    /// A receiver took it: `delivered`, the lease released.
    pub async fn delivery_succeeded(&self, id: &str) -> Result<()> {
        let now = clock::now_ms();
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1,
                 delivered_at = $1, last_error = NULL, lease_until = NULL
             WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An attempt failed with `error`: tried again at `retry_at`, or `failed` when `None`. A
    /// delivery another router has meanwhile delivered (its lease ran out under this attempt)
    /// stays delivered: it is not sent again after the tenant's later events.
    pub async fn delivery_failed(
        &self,
        id: &str,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<()> {
        let (status, next) = match retry_at {
            Some(at) => (DeliveryStatus::Pending, at),
            None => (DeliveryStatus::Failed, clock::now_ms()),
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1,
                 next_attempt_at = $2, last_error = $3, lease_until = NULL
             WHERE id = $4 AND status = 'pending'",
        )
        .bind(status.as_str())
        .bind(next)
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deliveries in outbox order (ids are UUID v7: oldest first), after `after`.
    pub async fn list_deliveries(
        &self,
        status: Option<DeliveryStatus>,
        tenant: Option<&Slug>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM webhook_deliveries
             WHERE ($1 = '' OR status = $1) AND ($2 = '' OR tenant_slug = $2) AND id > $3
             ORDER BY id LIMIT $4"
        ))
        .bind(status.map_or("", DeliveryStatus::as_str))
        .bind(tenant.map_or("", Slug::as_str))
        .bind(after.unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    pub async fn find_delivery(&self, id: &str) -> Result<Option<Delivery>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM webhook_deliveries WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(delivery_from_row).transpose()
    }

    /// A `failed` delivery back to `pending`, due now, with its attempts counted afresh; false
    /// when it is not `failed`.
    pub async fn retry_delivery(&self, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1,
                 lease_until = NULL
             WHERE id = $2 AND status = 'failed'",
        )
        .bind(clock::now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Forgets deliveries delivered before `before`; answers how many.
    pub async fn prune_deliveries(&self, before: i64) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM webhook_deliveries WHERE status = 'delivered' AND delivered_at < $1",
        )
        .bind(before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

fn delivery_from_row(row: &AnyRow) -> Result<Delivery> {
    let status: String = row.try_get("status")?;
    Ok(Delivery {
        id: row.try_get("id")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        tenant: DeliveryTenant {
            id: row.try_get("tenant_id")?,
            slug: row.try_get("tenant_slug")?,
        },
        url: row.try_get("url")?,
        status: status.parse().map_err(|_| {
            Error::Internal(anyhow::anyhow!("webhook delivery with an invalid status"))
        })?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        delivered_at: row.try_get("delivered_at")?,
        body: row.try_get("body")?,
    })
}

impl Registry {
    /// See [`RegistryStore::claim_deliveries`]; only deliveries to `url`.
    pub async fn claim_deliveries(
        &self,
        url: &str,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        self.store
            .claim_deliveries(&[url.to_owned()], now, lease_until, limit)
            .await
    }

    pub async fn delivery_succeeded(&self, id: &str) -> Result<()> {
        self.store.delivery_succeeded(id).await
    }

    pub async fn delivery_failed(
        &self,
        id: &str,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<()> {
        self.store.delivery_failed(id, error, retry_at).await
    }

    pub async fn list_deliveries(
        &self,
        status: Option<DeliveryStatus>,
        tenant: Option<&Slug>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        self.store
            .list_deliveries(status, tenant, after, limit)
            .await
    }

    pub async fn find_delivery(&self, id: &str) -> Result<Option<Delivery>> {
        self.store.find_delivery(id).await
    }

    /// A `failed` delivery back to `pending`: the row as it is then (read before this router's
    /// worker is woken, so before any new attempt), or `None` when it was not `failed`.
    pub async fn retry_delivery(&self, id: &str) -> Result<Option<Delivery>> {
        if !self.store.retry_delivery(id).await? {
            return Ok(None);
        }
        let pending = self.store.find_delivery(id).await?;
        self.wake_workers();
        Ok(pending)
    }

    pub async fn prune_deliveries(&self, before: i64) -> Result<u64> {
        self.store.prune_deliveries(before).await
    }
}
