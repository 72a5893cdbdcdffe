//! Where tenant databases live, and everything only their backend knows: the name a new
//! tenant's database gets, how to reach it, how it is created, sized and dropped. The request
//! path asks a [`Server`] for a [`ConnectTarget`]; the control path (`control/`) asks it to
//! create and drop databases. Nothing else in silo knows what a tenant database is made of.
//!
//! A server is SQLite (`sqlite://<dir>`, one file per tenant, `sqlite.rs`) or PostgreSQL
//! (`postgres://<admin>@<host>/<db>`, a database and a role per tenant, `postgres.rs`).

mod postgres;
mod sqlite;

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use sqlx::{any::AnyConnectOptions, AnyPool};

pub use postgres::PostgresServer;
pub use sqlite::{prepare as prepare_sqlite, FileLock, SqliteServer};

use crate::{
    config::ServerSettings,
    database::{self, PoolShape},
    error::{Error, Result},
    schema::TenantSchema,
    secrets::Secrets,
    tenant::{TenantId, TenantRecord},
};

/// A configured database server (`[servers.<name>]`).
#[derive(Debug, Clone)]
pub enum Server {
    /// One SQLite file per tenant in a directory.
    Sqlite(SqliteServer),
    /// A database and a role per tenant on a PostgreSQL server.
    Postgres(PostgresServer),
}

/// Held while one run builds a tenant's database, so two runs never build one at once; let go
/// when dropped, or by [`BuildLock::release_and_remove`] once the tenant is built.
pub enum BuildLock {
    File(FileLock),
    /// A session advisory lock, held by this admin connection.
    Session(sqlx::postgres::PgConnection),
}

impl BuildLock {
    /// Lets the lock go, leaving nothing behind (a SQLite lock file is removed).
    pub fn release_and_remove(self) {
        match self {
            BuildLock::File(lock) => lock.release_and_remove(),
            BuildLock::Session(conn) => drop(conn),
        }
    }
}

/// Whose rights a control-path connection to a tenant database has, on a server that has roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRole {
    /// The tenant's own role: provisioning's seed and owner, so what a plan's seed makes
    /// belongs to the tenant and runs with no more rights than the tenant has.
    Tenant,
    /// The server's admin role: counts, which must not take one of the tenant role's own
    /// connections (its `CONNECTION LIMIT` is the tenant pool's size).
    Admin,
}

/// How to open a connection to one tenant database: what a tenant pool is opened on.
#[derive(Debug, Clone)]
pub enum ConnectTarget {
    /// A SQLite file, opened through rusqlite on the caller's thread. Never created: a missing
    /// file is an error, not a silently empty tenant.
    File(PathBuf),
    /// A database on a server, through sqlx, whose connections the network can drop.
    Server {
        /// As the tenant's role, with the password of its recorded credentials.
        options: AnyConnectOptions,
        /// With the password a key rotation moves the role to next: tried when the role
        /// refuses `options`' (SQLSTATE 28P01), as another process has just rotated it and this
        /// one has not read the change yet. Boxed, so that the enum stays small.
        next: Option<Box<AnyConnectOptions>>,
    },
}

impl Server {
    /// Checks `servers.<name>.url` without opening anything; the message says what is wrong,
    /// for `config: servers.<name>.url`.
    pub fn check(settings: &ServerSettings) -> Result<(), String> {
        Self::parse(settings, Secrets::from_bytes(Vec::new()), 1).map(drop)
    }

    /// The server `settings` describe. PostgreSQL tenant roles get `secrets`' derived
    /// passwords and a `CONNECTION LIMIT` of `tenant_pool_size`.
    pub fn parse(
        settings: &ServerSettings,
        secrets: Secrets,
        tenant_pool_size: u32,
    ) -> Result<Self, String> {
        let url = settings.url.trim();
        if url.is_empty() {
            return Err("must be set, like sqlite://data/tenants".into());
        }
        if let Some(dir) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if dir.is_empty() {
                return Err("sqlite:// needs a directory, like sqlite://data/tenants".into());
            }
            return Ok(Server::Sqlite(SqliteServer::new(PathBuf::from(dir))));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return PostgresServer::parse(url, secrets, tenant_pool_size).map(Server::Postgres);
        }
        // Only the scheme is repeated: the rest may hold a password.
        let scheme = url.split("://").next().unwrap_or_default();
        Err(format!(
            "a {scheme:?} URL is neither sqlite://<dir> nor postgres://<admin>@<host>/<database>"
        ))
    }

    /// The database name a new tenant gets on this server.
    pub fn database_name(&self, id: TenantId) -> String {
        match self {
            Server::Sqlite(sqlite) => sqlite.database_name(id),
            Server::Postgres(postgres) => postgres.database_name(id),
        }
    }

    /// Connections a provisioning run holds at most on this server, counted in its budget: on
    /// SQLite one (the build lock is a file); on PostgreSQL the build lock's session, which
    /// also creates the role and the database, and one more at a time (the template database's
    /// while it is built, then the tenant database's to migrate it, then to seed it).
    pub fn provisioning_connections(&self) -> u32 {
        match self {
            Server::Sqlite(_) => 1,
            Server::Postgres(_) => 2,
        }
    }

    /// Connections a deletion holds at most: the build lock's session (PostgreSQL) and the
    /// drop's own.
    pub fn deletion_connections(&self) -> u32 {
        match self {
            Server::Sqlite(_) => 1,
            Server::Postgres(_) => 2,
        }
    }

    /// Where the request path connects for this tenant's own database.
    pub fn connect_target(&self, tenant: &TenantRecord) -> Result<ConnectTarget> {
        match self {
            Server::Sqlite(sqlite) => Ok(ConnectTarget::File(sqlite.file(&tenant.database)?)),
            Server::Postgres(postgres) => {
                let options = |url: String| {
                    database::connect_options(&url).map_err(|e| {
                        Error::Internal(anyhow::anyhow!("the tenant's connect options: {e}"))
                    })
                };
                Ok(ConnectTarget::Server {
                    options: options(postgres.tenant_url(tenant)?)?,
                    next: Some(Box::new(options(postgres.next_tenant_url(tenant)?)?)),
                })
            }
        }
    }

    /// A short-lived sqlx pool of one connection to the tenant's database, for control work;
    /// never the request path's pools. `who` matters on PostgreSQL only (see [`ControlRole`]).
    pub async fn connect_control(
        &self,
        tenant: &TenantRecord,
        who: ControlRole,
    ) -> Result<AnyPool> {
        let url = match (self, who) {
            (Server::Sqlite(sqlite), _) => {
                database::sqlite_url(&sqlite.file(&tenant.database)?, false)
            }
            (Server::Postgres(postgres), ControlRole::Tenant) => postgres.tenant_url(tenant)?,
            (Server::Postgres(postgres), ControlRole::Admin) => postgres.admin_url_for(tenant)?,
        };
        // sqlx keeps trying an unreachable server until this passes: a few seconds, so a
        // stopped server is a prompt 503 rather than a long wait.
        let shape = PoolShape {
            max_connections: 1,
            acquire_timeout: Duration::from_secs(3),
            idle_timeout: None,
        };
        database::open(&url, shape).await.map_err(|error| {
            // Unreachable, or gone: as on the request path, a passing condition (503).
            postgres::admin_fault(Error::Internal(
                anyhow::Error::new(error)
                    .context(format!("opening the database of {}", tenant.slug)),
            ))
        })
    }

    /// Held while one run builds the tenant's database (see [`BuildLock`]); `409 conflict`
    /// when another run holds it.
    pub async fn lock_build(&self, tenant: &TenantRecord) -> Result<BuildLock> {
        match self {
            Server::Sqlite(sqlite) => sqlite.lock_build(tenant).map(BuildLock::File),
            Server::Postgres(postgres) => postgres
                .lock_build(tenant)
                .await
                .map(BuildLock::Session)
                .map_err(postgres::admin_fault),
        }
    }

    /// Creates the tenant's database at `schema` unless it exists, under the build `lock`
    /// (on PostgreSQL its admin session does the work); says whether this call created it.
    pub async fn create_database(
        &self,
        tenant: &TenantRecord,
        schema: &Arc<TenantSchema>,
        lock: &mut BuildLock,
    ) -> Result<bool> {
        match (self, lock) {
            (Server::Sqlite(sqlite), _) => sqlite.create_database(tenant, schema).await,
            (Server::Postgres(postgres), BuildLock::Session(admin)) => postgres
                .create_database(tenant, schema, admin)
                .await
                .map_err(postgres::admin_fault),
            (Server::Postgres(_), BuildLock::File(_)) => Err(Error::Internal(anyhow::anyhow!(
                "a PostgreSQL database built under a file lock"
            ))),
        }
    }

    /// The tenant database's size on the server.
    pub async fn database_bytes(&self, tenant: &TenantRecord) -> Result<u64> {
        match self {
            Server::Sqlite(sqlite) => sqlite.database_bytes(tenant).await,
            Server::Postgres(postgres) => postgres
                .database_bytes(tenant)
                .await
                .map_err(postgres::admin_fault),
        }
    }

    /// Moves the tenant's database credentials to `version` under the current master key, where
    /// the backend has any: a PostgreSQL role's password. SQLite files have none.
    pub async fn set_credentials(&self, tenant: &TenantRecord, version: i64) -> Result<()> {
        match self {
            Server::Sqlite(_) => Ok(()),
            Server::Postgres(postgres) => postgres
                .set_role_password(tenant, version)
                .await
                .map_err(postgres::admin_fault),
        }
    }

    /// Connections a key rotation holds at most: the admin session that changes the role's
    /// password (PostgreSQL); none on SQLite.
    pub fn rotation_connections(&self) -> u32 {
        match self {
            Server::Sqlite(_) => 0,
            Server::Postgres(_) => 1,
        }
    }

    /// Drops the tenant's database; one already gone is fine.
    pub async fn drop_database(&self, tenant: &TenantRecord) -> Result<()> {
        match self {
            Server::Sqlite(sqlite) => sqlite.drop_database(tenant).await,
            Server::Postgres(postgres) => postgres
                .drop_database(tenant)
                .await
                .map_err(postgres::admin_fault),
        }
    }

    /// Removes everything the tenant has on this server.
    pub async fn forget_tenant(&self, tenant: &TenantRecord) -> Result<()> {
        match self {
            Server::Sqlite(sqlite) => sqlite.forget_tenant(tenant).await,
            Server::Postgres(postgres) => postgres
                .drop_database(tenant)
                .await
                .map_err(postgres::admin_fault),
        }
    }
}

/// Every configured server by name.
#[derive(Debug, Clone)]
pub struct Servers(BTreeMap<String, Server>);

impl Servers {
    pub fn from_settings(
        settings: &BTreeMap<String, ServerSettings>,
        secrets: &Secrets,
        tenant_pool_size: u32,
    ) -> Result<Self, String> {
        settings
            .iter()
            .map(|(name, s)| {
                Server::parse(s, secrets.clone(), tenant_pool_size)
                    .map(|server| (name.clone(), server))
                    .map_err(|message| format!("servers.{name}.url: {message}"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn get(&self, name: &str) -> Option<&Server> {
        self.0.get(name)
    }

    /// The server a tenant's database lives on; a row naming a server this configuration does
    /// not have is a fault of the deployment, not of the request.
    pub fn of(&self, tenant: &TenantRecord) -> Result<&Server> {
        self.get(&tenant.server).ok_or_else(|| {
            Error::Internal(anyhow::anyhow!(
                "tenant {} is on unknown server {:?}",
                tenant.slug,
                tenant.server
            ))
        })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}
