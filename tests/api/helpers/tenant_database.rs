//! A tenant's database, reached directly, behind silo's back, on whichever backend this run
//! puts tenant databases: its SQLite file, or its PostgreSQL database (as the server's admin
//! role). Tests use it to look inside a tenant (its migration history, its tables) and to break
//! one (a conflicting table, a database gone), the same way on both backends.

use std::path::{Path, PathBuf};

use sqlx::{Connection, Executor, PgConnection, Row};

#[derive(Debug, Clone)]
pub enum TenantDatabase {
    File(PathBuf),
    /// The admin role's URL for the tenant's database, and that database's name.
    Postgres {
        url: String,
        name: String,
    },
}

impl TenantDatabase {
    /// Database `name` (a registry row's `database`), on this run's tenant server: under
    /// `tenants_dir` on SQLite.
    pub fn at(tenants_dir: &Path, name: &str) -> Self {
        match super::tenant_server_url() {
            Some(server) => Self::Postgres {
                url: super::postgres::with_database(&server, name),
                name: name.to_owned(),
            },
            None => Self::File(tenants_dir.join(name)),
        }
    }

    async fn connect(&self) -> Result<PgConnection, String> {
        let Self::Postgres { url, .. } = self else {
            unreachable!("only a PostgreSQL database is connected to")
        };
        PgConnection::connect(url).await.map_err(|e| e.to_string())
    }

    /// Runs `sql` (one or more statements); the error's text where it fails.
    pub async fn try_execute(&self, sql: &str) -> Result<(), String> {
        match self {
            Self::File(file) => rusqlite::Connection::open_with_flags(
                file,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE,
            )
            .and_then(|conn| conn.execute_batch(sql))
            .map_err(|e| e.to_string()),
            Self::Postgres { .. } => {
                let mut conn = self.connect().await?;
                let done = conn.execute(sql).await.map(drop).map_err(|e| e.to_string());
                let _ = conn.close().await;
                done
            }
        }
    }

    pub async fn execute(&self, sql: &str) {
        if let Err(error) = self.try_execute(sql).await {
            panic!("{sql} in {self:?}: {error}");
        }
    }

    /// The first column of every row `sql` answers, as whole numbers.
    pub async fn numbers(&self, sql: &str) -> Vec<i64> {
        self.column(sql).await
    }

    /// The first column of every row `sql` answers, as text.
    pub async fn texts(&self, sql: &str) -> Vec<String> {
        self.column(sql).await
    }

    async fn column<T>(&self, sql: &str) -> Vec<T>
    where
        T: rusqlite::types::FromSql
            + for<'r> sqlx::Decode<'r, sqlx::Postgres>
            + sqlx::Type<sqlx::Postgres>,
    {
        match self {
            Self::File(file) => {
                let conn = rusqlite::Connection::open(file).unwrap();
                let mut statement = conn.prepare(sql).unwrap();
                let rows = statement.query_map([], |row| row.get(0)).unwrap();
                rows.map(Result::unwrap).collect()
            }
            Self::Postgres { .. } => {
                let mut conn = self.connect().await.unwrap();
                let rows = conn.fetch_all(sql).await.unwrap();
                let _ = conn.close().await;
                rows.iter().map(|row| row.try_get(0).unwrap()).collect()
            }
        }
    }

    /// The versions in the database's migration history, in order.
    pub async fn versions(&self) -> Vec<i64> {
        self.numbers("SELECT version FROM _sqlx_migrations ORDER BY version")
            .await
    }

    /// Whether the database is there at all.
    pub async fn exists(&self) -> bool {
        match self {
            Self::File(file) => file.exists(),
            Self::Postgres { name, .. } => {
                let mut admin = server_admin().await;
                let found: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
                )
                .bind(name)
                .fetch_one(&mut admin)
                .await
                .unwrap();
                let _ = admin.close().await;
                found
            }
        }
    }

    /// Connections open to the database right now: this process's descriptors on the file
    /// (`None` where `/proc` does not say), or the server's sessions on it.
    pub async fn connections(&self) -> Option<usize> {
        match self {
            Self::File(file) => handles_on(file),
            Self::Postgres { name, .. } => {
                let mut admin = server_admin().await;
                let count: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = $1")
                        .bind(name)
                        .fetch_one(&mut admin)
                        .await
                        .unwrap();
                let _ = admin.close().await;
                Some(count as usize)
            }
        }
    }

    /// Removes the database for good, behind silo's back (its open connections first).
    pub async fn remove(&self) {
        match self {
            Self::File(file) => std::fs::remove_file(file).unwrap(),
            Self::Postgres { name, .. } => {
                let mut admin = server_admin().await;
                admin
                    .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
                    .await
                    .unwrap();
                let _ = admin.close().await;
            }
        }
    }

    /// Takes the database away, as a lost disk or a dropped database would; answers how to
    /// bring it back with [`TenantDatabase::put_back`].
    pub async fn take_away(&self, aside: &str) -> TenantDatabase {
        match self {
            Self::File(file) => {
                let moved = file.with_file_name(aside);
                std::fs::rename(file, &moved).unwrap();
                Self::File(moved)
            }
            Self::Postgres { name, url } => {
                let mut admin = server_admin().await;
                let aside = format!("{name}_{aside}").replace(['.', '-'], "_");
                // Its open connections (silo's pool) would keep it in place.
                sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                )
                .bind(name)
                .execute(&mut admin)
                .await
                .unwrap();
                admin
                    .execute(format!("ALTER DATABASE {name} RENAME TO {aside}").as_str())
                    .await
                    .unwrap();
                let _ = admin.close().await;
                Self::Postgres {
                    url: url.replace(name.as_str(), &aside),
                    name: aside,
                }
            }
        }
    }

    /// Puts a database [`TenantDatabase::take_away`] moved back as `to`.
    pub async fn put_back(&self, to: &TenantDatabase) {
        match (self, to) {
            (Self::File(aside), Self::File(file)) => std::fs::rename(aside, file).unwrap(),
            (Self::Postgres { name: aside, .. }, Self::Postgres { name, .. }) => {
                let mut admin = server_admin().await;
                admin
                    .execute(format!("ALTER DATABASE {aside} RENAME TO {name}").as_str())
                    .await
                    .unwrap();
                let _ = admin.close().await;
            }
            _ => unreachable!("put back on the backend it was taken from"),
        }
    }
}

/// The admin role's session on this run's PostgreSQL tenant server (its maintenance database).
async fn server_admin() -> PgConnection {
    let server = super::tenant_server_url().expect("tenants on PostgreSQL");
    PgConnection::connect(&server).await.unwrap()
}

/// Open file descriptors of this process on `file`; `None` where `/proc` does not say.
pub fn handles_on(file: &Path) -> Option<usize> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    let count = entries
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target == file)
        .count();
    Some(count)
}
