//! The registry's SQL: tenants and their domains, in portable SQL over `sqlx::Any`.

use std::{collections::HashMap, path::Path, time::Duration};

use anyhow::Context;
use sqlx::{any::AnyRow, AnyPool, Row};

use super::outbox::{commit_noting, insert_deliveries, Outgoing};
use crate::{
    clock,
    database::{self, PoolShape},
    error::{conflict_on_unique, Error, Result},
    schema,
    tenant::{Slug, Status, TenantId, TenantRecord},
};

/// A registry row about to be written (status `provisioning`).
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub id: TenantId,
    pub slug: Slug,
    pub name: String,
    pub plan: String,
    pub server: String,
    pub database: String,
    pub domains: Vec<String>,
    /// The id of the master key its credentials are derived from: the current one.
    pub credentials_key: String,
}

pub struct RegistryStore {
    pub(super) pool: AnyPool,
    /// The registry's URL when it is a PostgreSQL database, for its change listener.
    postgres_url: Option<String>,
}

const COLUMNS: &str =
    "id, slug, name, plan, status, server, database_name, schema_version, credentials_version, credentials_key, last_error, created_at";

impl RegistryStore {
    /// Opens (creating on the embedded default) and migrates the control registry.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if let Some(dir) = Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
        }
        let url = match url.strip_prefix("sqlite://") {
            Some(path) => database::sqlite_url(Path::new(path), true),
            None => url.to_owned(),
        };
        let shape = PoolShape {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(600)),
        };
        let pool = database::open(&url, shape)
            .await
            .context("opening the control registry")?;
        schema::migrate_control(&pool)
            .await
            .context("migrating the control registry")?;
        let postgres_url = (url.starts_with("postgres://") || url.starts_with("postgresql://"))
            .then(|| url.clone());
        Ok(Self { pool, postgres_url })
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres_url.is_some()
    }

    pub fn postgres_url(&self) -> Option<&str> {
        self.postgres_url.as_deref()
    }

    /// Whether lookups can be served: reads the tenants table itself (its schema and first
    /// page), where `SELECT 1` would pass without touching the file at all.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT id FROM tenants LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub async fn by_slug(&self, slug: &Slug) -> Result<Option<TenantRecord>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tenants WHERE slug = $1"))
            .bind(slug.as_str())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(Some(self.with_domains(row).await?)),
            None => Ok(None),
        }
    }

    pub async fn slug_for_domain(&self, domain: &str) -> Result<Option<Slug>> {
        let slug: Option<String> = sqlx::query_scalar(
            "SELECT t.slug FROM tenant_domains d JOIN tenants t ON t.id = d.tenant_id WHERE d.domain = $1",
        )
        .bind(domain)
        .fetch_optional(&self.pool)
        .await?;
        Ok(slug.and_then(|s| Slug::parse_shape(&s).ok()))
    }

    /// Writes the row and its domains in one transaction; a taken slug or domain is `409`.
    pub async fn insert(&self, new: &NewTenant) -> Result<TenantRecord> {
        let now = clock::now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO tenants (id, slug, name, plan, status, server, database_name, schema_version, credentials_key, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $9)",
        )
        .bind(new.id.to_string())
        .bind(new.slug.as_str())
        .bind(&new.name)
        .bind(&new.plan)
        .bind(Status::Provisioning.as_str())
        .bind(&new.server)
        .bind(&new.database)
        .bind(&new.credentials_key)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_unique("a tenant with this slug already exists"))?;
        for domain in &new.domains {
            insert_domain(&mut tx, new.id, domain, now).await?;
        }
        tx.commit().await?;
        Ok(TenantRecord {
            id: new.id,
            slug: new.slug.clone(),
            name: new.name.clone(),
            plan: new.plan.clone(),
            status: Status::Provisioning,
            server: new.server.clone(),
            database: new.database.clone(),
            schema_version: 0,
            credentials_version: 1,
            credentials_key: new.credentials_key.clone(),
            domains: new.domains.clone(),
            created_at: now,
            last_error: None,
        })
    }

    /// Sets the status, and records `out` in the outbox in the same transaction.
    pub async fn set_status(
        &self,
        id: TenantId,
        status: Status,
        last_error: Option<&str>,
        out: &Outgoing<'_>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE tenants SET status = $1, last_error = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(status.as_str())
        .bind(last_error)
        .bind(clock::now_ms())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        insert_deliveries(&mut tx, out).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Moves the tenant to `to` only if its status is one of `from`; false when it was not,
    /// so two operators (or an operator and a migration) cannot overwrite each other. `out` is
    /// recorded in the same transaction, only if the status moved.
    pub async fn transition(
        &self,
        id: TenantId,
        from: &[Status],
        to: Status,
        out: &Outgoing<'_>,
    ) -> Result<bool> {
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE tenants SET status = $1, last_error = NULL, updated_at = $2
             WHERE id = $3 AND (status = $4 OR status = $5 OR status = $6)",
        )
        .bind(to.as_str())
        .bind(clock::now_ms())
        .bind(id.to_string())
        .bind(from.first().copied().unwrap_or(""))
        .bind(from.get(1).copied().unwrap_or(""))
        .bind(from.get(2).copied().unwrap_or(""))
        .execute(&mut *tx)
        .await?;
        Ok(commit_noting(tx, done.rows_affected() > 0, out).await?)
    }

    /// Points the tenant at its database's new place, only if it is still where `from` says,
    /// with the credentials version `from` names (the new copy's role was made with its
    /// password): false when it was not (another move, or a key rotation, came first).
    pub async fn relocate(
        &self,
        id: TenantId,
        from: (&str, &str, i64),
        to: (&str, &str),
        out: &Outgoing<'_>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE tenants SET server = $1, database_name = $2, updated_at = $3
             WHERE id = $4 AND server = $5 AND database_name = $6 AND credentials_version = $7",
        )
        .bind(to.0)
        .bind(to.1)
        .bind(clock::now_ms())
        .bind(id.to_string())
        .bind(from.0)
        .bind(from.1)
        .bind(from.2)
        .execute(&mut *tx)
        .await?;
        Ok(commit_noting(tx, done.rows_affected() > 0, out).await?)
    }

    pub async fn set_schema_version(&self, id: TenantId, version: i64) -> Result<()> {
        sqlx::query("UPDATE tenants SET schema_version = $1, updated_at = $2 WHERE id = $3")
            .bind(version)
            .bind(clock::now_ms())
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Moves the tenant's credentials from version `from` to `from + 1` under master key
    /// `key_id`; false when its version was no longer `from` (another rotation came first).
    pub async fn advance_credentials(&self, record: &TenantRecord, key_id: &str) -> Result<bool> {
        let from = record.credentials_version;
        // Still where the role's password was changed: a move that switched meanwhile made
        // the new copy's role with the old password, and this rotation does not count.
        let done = sqlx::query(
            "UPDATE tenants SET credentials_version = $1, credentials_key = $2, updated_at = $3
             WHERE id = $4 AND credentials_version = $5 AND server = $6 AND database_name = $7",
        )
        .bind(from + 1)
        .bind(key_id)
        .bind(clock::now_ms())
        .bind(record.id.to_string())
        .bind(from)
        .bind(&record.server)
        .bind(&record.database)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Names `key_id` on every row from before key ids were recorded; how many there were.
    pub async fn name_unnamed_keys(&self, key_id: &str) -> Result<u64> {
        let done =
            sqlx::query("UPDATE tenants SET credentials_key = $1 WHERE credentials_key = ''")
                .bind(key_id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    /// How many tenants' credentials use each master key, by key id.
    pub async fn tenants_per_key(&self) -> Result<HashMap<String, i64>> {
        let rows = sqlx::query(
            "SELECT credentials_key, COUNT(*) AS n FROM tenants GROUP BY credentials_key",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("credentials_key")?, row.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Error::from)
    }

    pub async fn add_domain(&self, id: TenantId, domain: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert_domain(&mut tx, id, domain, clock::now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn remove_domain(&self, id: TenantId, domain: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM tenant_domains WHERE tenant_id = $1 AND domain = $2")
            .bind(id.to_string())
            .bind(domain)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes the row and its domains, and records `out`, in one transaction.
    pub async fn delete(&self, id: TenantId, out: &Outgoing<'_>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM tenant_domains WHERE tenant_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM tenant_usage WHERE tenant_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        insert_deliveries(&mut tx, out).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Oldest first (ids are UUID v7, so id order is creation order), after `after`.
    pub async fn list(
        &self,
        status: Option<Status>,
        after: Option<TenantId>,
        limit: u32,
    ) -> Result<Vec<TenantRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tenants
             WHERE ($1 = '' OR status = $1) AND id > $2
             ORDER BY id LIMIT $3"
        ))
        .bind(status.map_or("", Status::as_str))
        .bind(after.map(|id| id.to_string()).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut records = rows
            .iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // The page's domains in one query, not one per tenant: the page is a run of ids, so
        // every domain of its tenants lies between its first id and its last.
        if let (Some(first), Some(last)) = (records.first(), records.last()) {
            let rows = sqlx::query(
                "SELECT tenant_id, domain FROM tenant_domains
                 WHERE tenant_id >= $1 AND tenant_id <= $2 ORDER BY domain",
            )
            .bind(first.id.to_string())
            .bind(last.id.to_string())
            .fetch_all(&self.pool)
            .await?;
            let mut domains: HashMap<String, Vec<String>> = HashMap::new();
            for row in rows {
                domains
                    .entry(row.try_get("tenant_id")?)
                    .or_default()
                    .push(row.try_get("domain")?);
            }
            for record in &mut records {
                record.domains = domains.remove(&record.id.to_string()).unwrap_or_default();
            }
        }
        Ok(records)
    }

    pub async fn tenants_per_server(&self) -> Result<HashMap<String, i64>> {
        let rows = sqlx::query("SELECT server, COUNT(*) AS n FROM tenants GROUP BY server")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("server")?, row.try_get("n")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Error::from)
    }

    async fn with_domains(&self, row: AnyRow) -> Result<TenantRecord> {
        let mut record = record_from_row(&row)?;
        record.domains = sqlx::query_scalar(
            "SELECT domain FROM tenant_domains WHERE tenant_id = $1 ORDER BY domain",
        )
        .bind(record.id.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(record)
    }
}

async fn insert_domain(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: TenantId,
    domain: &str,
    now: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO tenant_domains (domain, tenant_id, created_at) VALUES ($1, $2, $3)")
        .bind(domain)
        .bind(id.to_string())
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(conflict_on_unique(
            "this domain is already attached to a tenant",
        ))?;
    Ok(())
}

fn record_from_row(row: &AnyRow) -> Result<TenantRecord> {
    let text = |column: &str| -> Result<String> { Ok(row.try_get::<String, _>(column)?) };
    let corrupt =
        |what: &str| Error::Internal(anyhow::anyhow!("registry row has an invalid {what}"));
    Ok(TenantRecord {
        id: text("id")?.parse().map_err(|_| corrupt("id"))?,
        slug: Slug::parse_shape(&text("slug")?).map_err(|_| corrupt("slug"))?,
        name: text("name")?,
        plan: text("plan")?,
        status: text("status")?.parse().map_err(|_| corrupt("status"))?,
        server: text("server")?,
        database: text("database_name")?,
        schema_version: row.try_get("schema_version")?,
        credentials_version: row.try_get("credentials_version")?,
        credentials_key: text("credentials_key")?,
        domains: Vec::new(),
        created_at: row.try_get("created_at")?,
        last_error: row.try_get("last_error")?,
    })
}
