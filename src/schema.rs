//! The embedded migrations (control registry and tenant schema) as sqlx `Migrator`s, so every
//! database gets sqlx's checksums, dirty-state checks and (on PostgreSQL) locking.

use std::{
    borrow::Cow,
    sync::{Arc, LazyLock},
};

use dashmap::DashMap;
use tokio::sync::{Mutex, OwnedMutexGuard};

use sha2::{Digest, Sha256};
use sqlx::{
    migrate::{Migration, MigrationType, Migrator},
    AnyPool,
};

use crate::tenant::TenantId;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

static CONTROL: LazyLock<Migrator> = LazyLock::new(|| migrator(embedded::CONTROL));
static TENANT: LazyLock<Migrator> = LazyLock::new(|| migrator(embedded::TENANT));

fn migrator(files: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    let migrations: Vec<Migration> = files
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                false,
            )
        })
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}

/// Brings the control registry up to date.
pub async fn migrate_control(pool: &AnyPool) -> Result<(), sqlx::migrate::MigrateError> {
    CONTROL.run(pool).await
}

/// One lock per tenant database for migrating it: the fan-out and migrate-on-open never run
/// the same tenant's migrations at once (sqlx takes no lock on SQLite).
#[derive(Default)]
pub struct MigrationLocks(DashMap<TenantId, Arc<Mutex<()>>>);

impl MigrationLocks {
    pub async fn lock(&self, tenant: TenantId) -> OwnedMutexGuard<()> {
        let lock = self.0.entry(tenant).or_default().clone();
        lock.lock_owned().await
    }
}

/// Brings one tenant database up to date; returns its schema version afterwards.
pub async fn migrate_tenant(
    conn: &mut sqlx::AnyConnection,
) -> Result<i64, sqlx::migrate::MigrateError> {
    TENANT.run_direct(conn).await?;
    Ok(tenant_target_version())
}

/// The version every tenant database should carry: the newest tenant migration.
pub fn tenant_target_version() -> i64 {
    embedded::TENANT
        .iter()
        .map(|(version, _, _)| *version)
        .max()
        .unwrap_or(0)
}

/// The tenant migrations as (version, description), oldest first.
pub fn tenant_migrations() -> impl Iterator<Item = (i64, &'static str)> {
    embedded::TENANT
        .iter()
        .map(|(version, description, _)| (*version, *description))
}

/// Changes whenever any tenant migration changes, so a pre-migrated template built from an
/// older schema is never copied into a new tenant.
pub fn tenant_fingerprint() -> String {
    let mut hasher = Sha256::new();
    for (version, _, sql) in embedded::TENANT {
        hasher.update(version.to_le_bytes());
        hasher.update(sql.as_bytes());
    }
    hex::encode(&hasher.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_embedded_in_version_order() {
        for set in [embedded::CONTROL, embedded::TENANT] {
            assert!(!set.is_empty());
            assert!(set.windows(2).all(|w| w[0].0 < w[1].0));
        }
        assert_eq!(tenant_target_version(), embedded::TENANT.last().unwrap().0);
    }
}
