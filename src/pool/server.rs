//! Database servers from `[servers.<name>]`: where tenant databases live and how to reach one.

use std::{collections::BTreeMap, path::PathBuf};

use crate::{config::ServerSettings, database, tenant::TenantRecord};

/// A configured database server.
#[derive(Debug, Clone)]
pub enum Server {
    /// One SQLite file per tenant in this directory.
    Sqlite { dir: PathBuf },
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
            return Ok(Server::Sqlite {
                dir: PathBuf::from(dir),
            });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Err(
                "PostgreSQL tenant servers are not supported in this version; use sqlite://<dir>"
                    .into(),
            );
        }
        Err(format!("{url:?} is not a sqlite:// URL"))
    }

    /// The URL the request path connects to for this tenant's own database.
    pub fn tenant_url(&self, tenant: &TenantRecord) -> Result<String, String> {
        match self {
            Server::Sqlite { dir } => Ok(database::sqlite_url(
                &self.sqlite_file(dir, &tenant.database)?,
                false,
            )),
        }
    }

    /// The file of a SQLite tenant database. The name comes from the registry; it is checked
    /// again here so a tampered row can never point outside the server's directory.
    pub fn sqlite_file(&self, dir: &std::path::Path, database: &str) -> Result<PathBuf, String> {
        let plain = !database.is_empty()
            && database
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !database.starts_with('.');
        if !plain {
            return Err(format!("invalid database file name {database:?}"));
        }
        Ok(dir.join(database))
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

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}
