//! Where tenant databases live, and everything only their backend knows: the name a new
//! tenant's database gets, how to reach it, how it is created, sized and dropped. The request
//! path asks a [`Server`] for a [`ConnectTarget`]; the control path (`control/`) asks it to
//! create and drop databases. Nothing else in silo knows what a tenant database is made of.
//!
//! Every server is SQLite today (`sqlite://<dir>`, one file per tenant); a `postgres://` server
//! is refused at start with a clear message rather than half supported.

mod sqlite;

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use sqlx::{any::AnyConnectOptions, AnyPool};

pub use sqlite::{prepare as prepare_sqlite, BuildLock, SqliteServer};

use crate::{
    config::ServerSettings,
    database::{self, PoolShape},
    error::{Error, Result},
    schema::TenantSchema,
    tenant::{TenantId, TenantRecord},
};

/// A configured database server (`[servers.<name>]`).
#[derive(Debug, Clone)]
pub enum Server {
    /// One SQLite file per tenant in a directory.
    Sqlite(SqliteServer),
}

/// How to open a connection to one tenant database: what a tenant pool is opened on.
#[derive(Debug, Clone)]
pub enum ConnectTarget {
    /// A SQLite file, opened through rusqlite on the caller's thread. Never created: a missing
    /// file is an error, not a silently empty tenant.
    File(PathBuf),
    /// A database on a server, through sqlx, whose connections the network can drop.
    Server(AnyConnectOptions),
}

impl Server {
    /// Parses `servers.<name>.url`; the message says what is wrong for `config: servers.<name>.url`.
    pub fn parse(_name: &str, settings: &ServerSettings) -> Result<Self, String> {
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
            return Err(
                "PostgreSQL tenant servers are not supported in this version; use sqlite://<dir>"
                    .into(),
            );
        }
        Err(format!("{url:?} is not a sqlite:// URL"))
    }

    /// The database name a new tenant gets on this server.
    pub fn database_name(&self, id: TenantId) -> String {
        match self {
            Server::Sqlite(sqlite) => sqlite.database_name(id),
        }
    }

    /// Where the request path connects for this tenant's own database.
    pub fn connect_target(&self, tenant: &TenantRecord) -> Result<ConnectTarget> {
        match self {
            Server::Sqlite(sqlite) => Ok(ConnectTarget::File(sqlite.file(&tenant.database)?)),
        }
    }

    /// A short-lived sqlx pool of one connection to the tenant's database, for control work
    /// (seeding, the owner, counts); never the request path's pools.
    pub async fn connect_control(&self, tenant: &TenantRecord) -> Result<AnyPool> {
        let url = match self {
            Server::Sqlite(sqlite) => database::sqlite_url(&sqlite.file(&tenant.database)?, false),
        };
        let shape = PoolShape {
            max_connections: 1,
            acquire_timeout: Duration::from_secs(30),
            idle_timeout: None,
        };
        Ok(database::open(&url, shape)
            .await
            .with_context(|| format!("opening the database of {}", tenant.slug))?)
    }

    /// Held while one run builds the tenant's database (see [`BuildLock`]).
    pub fn lock_build(&self, tenant: &TenantRecord) -> Result<BuildLock> {
        match self {
            Server::Sqlite(sqlite) => sqlite.lock_build(tenant),
        }
    }

    /// Creates the tenant's database at `schema` unless it exists; says whether this call
    /// created it.
    pub async fn create_database(
        &self,
        tenant: &TenantRecord,
        schema: &Arc<TenantSchema>,
    ) -> Result<bool> {
        match self {
            Server::Sqlite(sqlite) => sqlite.create_database(tenant, schema).await,
        }
    }

    /// The tenant database's size on the server.
    pub async fn database_bytes(&self, tenant: &TenantRecord) -> Result<u64> {
        match self {
            Server::Sqlite(sqlite) => sqlite.database_bytes(tenant).await,
        }
    }

    /// Drops the tenant's database; one already gone is fine.
    pub async fn drop_database(&self, tenant: &TenantRecord) -> Result<()> {
        match self {
            Server::Sqlite(sqlite) => sqlite.drop_database(tenant).await,
        }
    }

    /// Removes everything the tenant has on this server.
    pub async fn forget_tenant(&self, tenant: &TenantRecord) -> Result<()> {
        match self {
            Server::Sqlite(sqlite) => sqlite.forget_tenant(tenant).await,
        }
    }
}

/// Every configured server by name.
#[derive(Debug, Clone)]
pub struct Servers(BTreeMap<String, Server>);

impl Servers {
    pub fn from_settings(settings: &BTreeMap<String, ServerSettings>) -> Result<Self, String> {
        settings
            .iter()
            .map(|(name, s)| Server::parse(name, s).map(|server| (name.clone(), server)))
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
