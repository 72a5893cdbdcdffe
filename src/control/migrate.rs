//! Migrating one tenant database: the one routine that provisioning, the fan-out and
//! migrate-on-open all call.
//!
//! Every pending migration of a tenant runs in one transaction, with its rows in sqlx's
//! `_sqlx_migrations` history (so databases migrated before stay valid): a tenant is at its old
//! version or at the new one, never in between, whatever stops the run. On SQLite the
//! transaction is `BEGIN IMMEDIATE`: it takes the database's write lock first, so two
//! migrators, even in two processes, never migrate one tenant at once; the second waits, then
//! finds nothing pending. Checks as sqlx's `Migrator` makes them: a failed (dirty) migration,
//! a migration the schema does not know (the database is newer) or a changed one (checksum)
//! stops that tenant without changing it.

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use rusqlite::{config::DbConfig, OpenFlags, TransactionBehavior};

use crate::{
    backend::Server,
    error::{Error, Result},
    schema::TenantSchema,
    tenant::TenantRecord,
};

/// How long a migration waits for another writer of the same tenant database (a request's
/// write, or another migrator) before that tenant fails. Tenant writes take milliseconds.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// The history table, as sqlx creates it on SQLite.
const HISTORY: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
)";

/// Brings the tenant's database to `schema`'s target version; returns that version.
pub async fn migrate_tenant(
    server: &Server,
    tenant: &TenantRecord,
    schema: &Arc<TenantSchema>,
) -> Result<i64> {
    match server {
        Server::Sqlite(sqlite) => {
            let file = sqlite.file(&tenant.database)?;
            migrate_file(file, false, schema.clone())
                .await
                .with_context(|| format!("migrating the database of {}", tenant.slug))
                .map_err(Error::from)
        }
        Server::Postgres(postgres) => postgres.migrate(tenant, schema).await,
    }
}

/// When a run stops starting tenants: once `max` of them have failed, counted across all of
/// its workers (none: never). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct StopAfter {
    failures: Arc<AtomicUsize>,
    max: Option<usize>,
}

impl StopAfter {
    pub fn failures(max: Option<usize>) -> Self {
        Self {
            failures: Arc::default(),
            max,
        }
    }

    pub fn reached(&self) -> bool {
        self.max
            .is_some_and(|max| self.failures.load(Ordering::Relaxed) >= max)
    }

    fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// Migrates `tenants`, all on `server`, one after another: for SQLite files on one blocking
/// thread, so a batch costs one hand-off rather than one per tenant. Before each tenant it
/// checks `stop`; each answer is that tenant's result, `None` for one not started.
pub async fn migrate_tenants(
    server: &Server,
    tenants: &[TenantRecord],
    schema: &Arc<TenantSchema>,
    stop: &StopAfter,
) -> Vec<Option<Result<i64>>> {
    let sqlite = match server {
        Server::Sqlite(sqlite) => sqlite,
        // A server database: one tenant after another on this task, each its own connection.
        Server::Postgres(postgres) => {
            let mut results = Vec::with_capacity(tenants.len());
            for tenant in tenants {
                if stop.reached() {
                    results.push(None);
                    continue;
                }
                let result = postgres.migrate(tenant, schema).await;
                if result.is_err() {
                    stop.failed();
                }
                results.push(Some(result));
            }
            return results;
        }
    };
    let files: Vec<(String, Result<PathBuf>)> = tenants
        .iter()
        .map(|t| (t.slug.to_string(), sqlite.file(&t.database)))
        .collect();
    let (schema, stop) = (schema.clone(), stop.clone());
    let migrated = tokio::task::spawn_blocking(move || {
        files
            .into_iter()
            .map(|(slug, file)| {
                if stop.reached() {
                    return None;
                }
                let result = file
                    .map_err(anyhow::Error::from)
                    .and_then(|file| migrate_sqlite(&file, false, &schema))
                    .with_context(|| format!("migrating the database of {slug}"));
                if result.is_err() {
                    stop.failed();
                }
                Some(result.map_err(Error::from))
            })
            .collect::<Vec<_>>()
    })
    .await;
    migrated.unwrap_or_else(|stopped| {
        let error = anyhow::anyhow!("the migration task stopped: {stopped}");
        tenants
            .iter()
            .map(|_| Some(Err(Error::Internal(anyhow::anyhow!("{error:#}")))))
            .collect()
    })
}

/// Migrates the SQLite file at `path` (made if `create`, for a template) on a blocking thread:
/// the lock wait and the DDL must not hold up a runtime worker.
pub async fn migrate_file(
    path: PathBuf,
    create: bool,
    schema: Arc<TenantSchema>,
) -> anyhow::Result<i64> {
    tokio::task::spawn_blocking(move || migrate_sqlite(&path, create, &schema))
        .await
        .context("the migration task stopped")?
}

fn migrate_sqlite(path: &Path, create: bool, schema: &TenantSchema) -> anyhow::Result<i64> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let mut conn = rusqlite::Connection::open_with_flags(path, flags)
        .with_context(|| format!("opening {}", path.display()))?;
    conn.busy_timeout(LOCK_WAIT)?;
    crate::backend::prepare_sqlite(&conn)?;
    // The commit is made durable (FULL: the WAL is synced) before the registry records the new
    // version, and the file is not checkpointed when this connection closes: the tenant's own
    // connections do that on their next use. Measured: one sync a tenant instead of four, about
    // 15% of a fan-out's time on this machine's disk (BENCHMARKS.md).
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    conn.execute_batch("PRAGMA synchronous = FULL")?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(HISTORY)?;
    let applied = {
        let mut statement =
            tx.prepare("SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version")?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, bool>(2)?,
            ))
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    schema.check_history(&applied)?;
    for migration in schema.migrations() {
        if applied
            .iter()
            .any(|(version, _, _)| *version == migration.version)
        {
            continue;
        }
        let started = Instant::now();
        tx.execute_batch(&migration.sql).with_context(|| {
            format!(
                "migration {} ({})",
                migration.version, migration.description
            )
        })?;
        tx.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (?1, ?2, TRUE, ?3, ?4)",
            rusqlite::params![
                migration.version,
                migration.description.as_ref(),
                migration.checksum.as_ref(),
                started.elapsed().as_nanos() as i64
            ],
        )?;
    }
    tx.commit()?;
    Ok(schema.target_version())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_with(extra: &[&str]) -> Arc<TenantSchema> {
        let dir = tempfile::tempdir().unwrap();
        let built_in = TenantSchema::built_in();
        for m in built_in.migrations() {
            std::fs::write(
                dir.path()
                    .join(format!("{:04}_{}.sql", m.version, m.description)),
                m.sql.as_ref(),
            )
            .unwrap();
        }
        for (at, sql) in extra.iter().enumerate() {
            let version = built_in.target_version() + 1 + at as i64;
            std::fs::write(dir.path().join(format!("{version:04}_extra.sql")), sql).unwrap();
        }
        Arc::new(TenantSchema::load(dir.path()).unwrap())
    }

    fn versions(path: &Path) -> Vec<i64> {
        let conn = rusqlite::Connection::open(path).unwrap();
        let mut statement = conn
            .prepare("SELECT version FROM _sqlx_migrations ORDER BY version")
            .unwrap();
        let rows = statement.query_map([], |row| row.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    #[tokio::test]
    async fn a_new_database_gets_every_migration_and_a_rerun_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let schema = Arc::new(TenantSchema::built_in());
        let version = migrate_file(file.clone(), true, schema.clone())
            .await
            .unwrap();
        assert_eq!(version, schema.target_version());
        let all: Vec<i64> = schema.migrations().iter().map(|m| m.version).collect();
        assert_eq!(versions(&file), all);
        migrate_file(file.clone(), false, schema).await.unwrap();
        assert_eq!(versions(&file), all);
    }

    #[tokio::test]
    async fn a_failing_migration_leaves_the_database_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let built_in = Arc::new(TenantSchema::built_in());
        migrate_file(file.clone(), true, built_in.clone())
            .await
            .unwrap();
        // Two new migrations: the first would succeed on its own, the second fails.
        let schema = schema_with(&[
            "ALTER TABLE projects ADD COLUMN colour TEXT;",
            "CREATE TABLE projects (id TEXT);",
        ]);
        let error = migrate_file(file.clone(), false, schema).await.unwrap_err();
        assert!(format!("{error:#}").contains("already exists"), "{error:#}");
        let all: Vec<i64> = built_in.migrations().iter().map(|m| m.version).collect();
        assert_eq!(versions(&file), all, "nothing of the run stayed");
        let conn = rusqlite::Connection::open(&file).unwrap();
        let colour = conn.prepare("SELECT colour FROM projects");
        assert!(
            colour.is_err(),
            "the first new migration was not rolled back"
        );
    }

    #[tokio::test]
    async fn a_database_newer_or_changed_than_the_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let newer = schema_with(&["ALTER TABLE projects ADD COLUMN colour TEXT;"]);
        migrate_file(file.clone(), true, newer).await.unwrap();
        let error = migrate_file(file.clone(), false, Arc::new(TenantSchema::built_in()))
            .await
            .unwrap_err();
        assert!(format!("{error}").contains("does not have"), "{error}");
        let changed = schema_with(&["ALTER TABLE projects ADD COLUMN hue TEXT;"]);
        let error = migrate_file(file, false, changed).await.unwrap_err();
        assert!(format!("{error}").contains("checksum"), "{error}");
    }

    #[tokio::test]
    async fn a_missing_tenant_file_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gone.db");
        let error = migrate_file(file.clone(), false, Arc::new(TenantSchema::built_in()))
            .await
            .unwrap_err();
        assert!(format!("{error}").contains("opening"), "{error}");
        assert!(!file.exists());
    }
}
