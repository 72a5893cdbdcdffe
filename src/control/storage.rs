//! Tenant databases as things that are created and dropped. SQLite: a new tenant's file is a
//! copy of a pre-migrated template, made once per schema fingerprint; a copy is written under a
//! temporary name and renamed, so a failed copy never leaves a half-written tenant file.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use sqlx::AnyPool;

use crate::{
    database::{self, PoolShape},
    error::{Error, Result},
    pool::Server,
    schema::TenantSchema,
    state::AppState,
    tenant::TenantRecord,
};

/// The server a tenant's database lives on.
pub(super) fn server<'a>(state: &'a AppState, tenant: &TenantRecord) -> Result<&'a Server> {
    state.servers.get(&tenant.server).ok_or_else(|| {
        Error::Internal(anyhow::anyhow!(
            "tenant {} is on unknown server {:?}",
            tenant.slug,
            tenant.server
        ))
    })
}

fn sqlite_file(server: &Server, tenant: &TenantRecord) -> Result<(PathBuf, PathBuf)> {
    let Server::Sqlite { dir } = server;
    let file = server
        .sqlite_file(dir, &tenant.database)
        .map_err(anyhow::Error::msg)?;
    Ok((dir.clone(), file))
}

/// Held while one run builds a tenant's database. A second run finishing the same tenant at
/// the same moment (another `silo tenant create`, the script) is refused with `409` rather than
/// let the two build over each other, or one remove what the other is finishing.
///
/// An advisory lock (`flock`) on a hidden `.<database>.lock` beside the database: it holds
/// across processes, and the operating system releases it if the run dies. A run that failed
/// leaves the file for the run that finishes the tenant (removing it then would let two later
/// runs lock two different files and build at once); the run that succeeds removes it.
pub struct BuildLock {
    file: std::fs::File,
    path: PathBuf,
}

impl BuildLock {
    /// Removes the lock file, then lets the lock go. Only once the tenant is no longer in
    /// `provisioning`: every run re-reads the status once it holds a lock, and stops there.
    pub fn release_and_remove(self) {
        if let Err(error) = std::fs::remove_file(&self.path) {
            tracing::warn!(%error, path = %self.path.display(), "could not remove a build lock");
        }
        drop(self.file);
    }
}

/// Takes the [`BuildLock`] of `tenant`, or answers `409 conflict` if another run holds it.
pub fn lock_build(state: &AppState, tenant: &TenantRecord) -> Result<BuildLock> {
    let (dir, _) = sqlite_file(server(state, tenant)?, tenant)?;
    let path = build_lock_file(&dir, tenant);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(BuildLock { file, path }),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Conflict(format!(
            "tenant {} is being provisioned by another run; try again once it has finished",
            tenant.slug
        ))),
        Err(std::fs::TryLockError::Error(error)) => Err(anyhow::Error::from(error)
            .context(format!("locking {}", path.display()))
            .into()),
    }
}

fn build_lock_file(dir: &Path, tenant: &TenantRecord) -> PathBuf {
    dir.join(format!(".{}.lock", tenant.database))
}

/// Creates the tenant's database unless it already exists (so a re-run finishes the job).
/// Says whether this call created it: only then may a failed run remove it again.
pub async fn create_database(state: &AppState, tenant: &TenantRecord) -> Result<bool> {
    let (dir, file) = sqlite_file(server(state, tenant)?, tenant)?;
    if tokio::fs::try_exists(&file).await.unwrap_or(false) {
        return Ok(false);
    }
    tokio::fs::create_dir_all(&dir)
        .await
        .with_context(|| format!("creating {}", dir.display()))?;
    let template = ensure_sqlite_template(&dir, &state.schema).await?;
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

/// A short-lived connection to the tenant's database for control work (not the request pools).
pub async fn connect(state: &AppState, tenant: &TenantRecord) -> Result<AnyPool> {
    let url = server(state, tenant)?
        .tenant_url(tenant)
        .map_err(anyhow::Error::msg)?;
    let shape = PoolShape {
        max_connections: 1,
        acquire_timeout: Duration::from_secs(30),
        idle_timeout: None,
    };
    Ok(database::open(&url, shape)
        .await
        .with_context(|| format!("opening the database of {}", tenant.slug))?)
}

/// The size of the tenant's database on disk, its write-ahead log included.
pub async fn database_bytes(state: &AppState, tenant: &TenantRecord) -> Result<u64> {
    let (_dir, file) = sqlite_file(server(state, tenant)?, tenant)?;
    let mut total = 0;
    for suffix in ["", "-wal"] {
        if let Ok(meta) = tokio::fs::metadata(format!("{}{suffix}", file.display())).await {
            total += meta.len();
        }
    }
    Ok(total)
}

/// Removes the tenant's database; a database already gone is fine. Its build lock stays (a
/// failed run removes the database while it holds the lock): [`forget_tenant`] removes both.
pub async fn drop_database(state: &AppState, tenant: &TenantRecord) -> Result<()> {
    let (_dir, file) = sqlite_file(server(state, tenant)?, tenant)?;
    let files =
        ["", "-wal", "-shm"].map(|suffix| PathBuf::from(format!("{}{suffix}", file.display())));
    remove_files(files).await
}

/// Removes everything the tenant has on its server: its database and its build lock.
pub async fn forget_tenant(state: &AppState, tenant: &TenantRecord) -> Result<()> {
    drop_database(state, tenant).await?;
    let (dir, _file) = sqlite_file(server(state, tenant)?, tenant)?;
    remove_files([build_lock_file(&dir, tenant)]).await
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

/// The pre-migrated template for the current tenant schema, built if missing. Templates of
/// older schemas are removed. Built under a unique temporary name, then renamed into place.
async fn ensure_sqlite_template(dir: &Path, schema: &Arc<TenantSchema>) -> Result<PathBuf> {
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
        super::migrate::migrate_file(building.clone(), true, schema.clone()).await?;
        // A rollback-journal file is one self-contained file, safe to copy; each tenant's
        // own pool switches its copy to WAL on first open.
        let file = building.clone();
        tokio::task::spawn_blocking(move || {
            rusqlite::Connection::open(&file)?
                .query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
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
