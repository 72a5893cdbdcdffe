//! A SQLite server: a directory with one file per tenant (`<tenant id>.db`).
//!
//! A new tenant's file is a copy of a pre-migrated template, made once per schema fingerprint
//! (`.template-<fingerprint>.db`); a copy is written under a temporary name and renamed, so a
//! failed copy never leaves a half-written tenant file. A hidden `.<database>.lock` beside a
//! database is the lock one provisioning run holds while it builds it.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::Context;

use crate::{
    error::{Error, Result},
    schema::TenantSchema,
    tenant::{TenantId, TenantRecord},
};

/// The settings every rusqlite connection to a tenant file gets (the request path's, the
/// migrator's): WAL lets readers and a writer proceed together; NORMAL sync is durable at
/// checkpoints and is what WAL is designed for; foreign keys on, as sqlx's SQLite connections
/// have them by default.
pub fn prepare(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    // `journal_mode` answers with a row, so it is not part of the batch.
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
}

#[derive(Debug, Clone)]
pub struct SqliteServer {
    dir: PathBuf,
}

impl SqliteServer {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The file name a new tenant's database gets: its id, which never changes, so a slug
    /// never becomes a path.
    pub fn database_name(&self, id: TenantId) -> String {
        format!("{id}.db")
    }

    /// The file of a tenant database. The name comes from the registry; it is checked again
    /// here so a tampered row can never point outside the server's directory.
    pub fn file(&self, database: &str) -> Result<PathBuf> {
        let plain = !database.is_empty()
            && database
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !database.starts_with('.');
        if !plain {
            return Err(Error::Internal(anyhow::anyhow!(
                "invalid database file name {database:?}"
            )));
        }
        Ok(self.dir.join(database))
    }

    /// Takes the [`FileLock`] of `tenant`, or answers `409 conflict` if another run holds it.
    pub fn lock_build(&self, tenant: &TenantRecord) -> Result<FileLock> {
        let path = self.build_lock_file(tenant);
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(FileLock { file, path }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::Conflict(format!(
                "tenant {} is being provisioned by another run; try again once it has finished",
                tenant.slug
            ))),
            Err(std::fs::TryLockError::Error(error)) => Err(anyhow::Error::from(error)
                .context(format!("locking {}", path.display()))
                .into()),
        }
    }

    fn build_lock_file(&self, tenant: &TenantRecord) -> PathBuf {
        self.dir.join(format!(".{}.lock", tenant.database))
    }

    /// Creates the tenant's database from the template unless it already exists (so a re-run
    /// finishes the job). Says whether this call created it: only then may a failed run remove
    /// it again.
    pub async fn create_database(
        &self,
        tenant: &TenantRecord,
        schema: &Arc<TenantSchema>,
    ) -> Result<bool> {
        let file = self.file(&tenant.database)?;
        if tokio::fs::try_exists(&file).await.unwrap_or(false) {
            return Ok(false);
        }
        let dir = &self.dir;
        tokio::fs::create_dir_all(dir)
            .await
            .with_context(|| format!("creating {}", dir.display()))?;
        let template = self.ensure_template(schema).await?;
        // A unique name: two runs finishing the same tenant at once never share a partial file.
        let partial = dir.join(format!(
            "{}.{}.partial",
            tenant.database,
            uuid::Uuid::now_v7().simple()
        ));
        let copied = async {
            tokio::fs::copy(&template, &partial).await?;
            tokio::fs::rename(&partial, &file).await
        }
        .await;
        if let Err(error) = copied {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(anyhow::Error::from(error)
                .context(format!("creating the database of {}", tenant.slug))
                .into());
        }
        Ok(true)
    }

    /// The size of the tenant's database on disk, its write-ahead log included.
    pub async fn database_bytes(&self, tenant: &TenantRecord) -> Result<u64> {
        let file = self.file(&tenant.database)?;
        let mut total = 0;
        for suffix in ["", "-wal"] {
            if let Ok(meta) = tokio::fs::metadata(format!("{}{suffix}", file.display())).await {
                total += meta.len();
            }
        }
        Ok(total)
    }

    /// Removes the tenant's database; a database already gone is fine. Its build lock stays (a
    /// failed run removes the database while it holds the lock): [`Self::forget_tenant`]
    /// removes both.
    pub async fn drop_database(&self, tenant: &TenantRecord) -> Result<()> {
        let file = self.file(&tenant.database)?;
        let files =
            ["", "-wal", "-shm"].map(|suffix| PathBuf::from(format!("{}{suffix}", file.display())));
        remove_files(files).await
    }

    /// Removes everything the tenant has on this server: its database and its build lock.
    pub async fn forget_tenant(&self, tenant: &TenantRecord) -> Result<()> {
        self.drop_database(tenant).await?;
        remove_files([self.build_lock_file(tenant)]).await
    }

    /// The pre-migrated template for the current tenant schema, built if missing. Templates of
    /// older schemas are removed. Built under a unique temporary name, then renamed into place.
    async fn ensure_template(&self, schema: &Arc<TenantSchema>) -> Result<PathBuf> {
        let dir = &self.dir;
        let fingerprint = schema.fingerprint();
        let template = dir.join(format!(".template-{fingerprint}.db"));
        if tokio::fs::try_exists(&template).await.unwrap_or(false) {
            return Ok(template);
        }
        let building = dir.join(format!(
            ".template-{fingerprint}.{}.building",
            uuid::Uuid::now_v7().simple()
        ));
        let built = async {
            crate::control::migrate_file(building.clone(), true, schema.clone()).await?;
            // A rollback-journal file is one self-contained file, safe to copy; each tenant's
            // own pool switches its copy to WAL on first open.
            let file = building.clone();
            tokio::task::spawn_blocking(move || {
                rusqlite::Connection::open(&file)?.query_row(
                    "PRAGMA journal_mode = DELETE",
                    [],
                    |_| Ok(()),
                )
            })
            .await??;
            tokio::fs::rename(&building, &template).await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(error) = built {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let _ = tokio::fs::remove_file(format!("{}{suffix}", building.display())).await;
            }
            return Err(error
                .context("building the tenant template database")
                .into());
        }
        remove_stale_templates(dir, &template).await;
        tracing::info!(template = %template.display(), "built the tenant template database");
        Ok(template)
    }
}

/// Held while one run builds a tenant's database. A second run finishing the same tenant at
/// the same moment (another `silo tenant create`, the script) is refused with `409` rather than
/// let the two build over each other, or one remove what the other is finishing.
///
/// An advisory lock (`flock`) on a hidden `.<database>.lock` beside the database: it holds
/// across processes, and the operating system releases it if the run dies. A run that failed
/// leaves the file for the run that finishes the tenant (removing it then would let two later
/// runs lock two different files and build at once); the run that succeeds removes it.
pub struct FileLock {
    file: std::fs::File,
    path: PathBuf,
}

impl FileLock {
    /// Removes the lock file, then lets the lock go. Only once the tenant is no longer in
    /// `provisioning`: every run re-reads the status once it holds a lock, and stops there.
    pub fn release_and_remove(self) {
        if let Err(error) = std::fs::remove_file(&self.path) {
            tracing::warn!(%error, path = %self.path.display(), "could not remove a build lock");
        }
        drop(self.file);
    }
}

/// Removes `paths`; one already gone is fine.
async fn remove_files(paths: impl IntoIterator<Item = PathBuf>) -> Result<()> {
    for path in paths {
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(anyhow::Error::from(e)
                    .context(format!("removing {}", path.display()))
                    .into())
            }
        }
    }
    Ok(())
}

async fn remove_stale_templates(dir: &Path, current: &Path) {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".template-") && name.ends_with(".db") && path != current {
            let _ = tokio::fs::remove_file(&path).await;
        }
    }
}
