//! Opening database pools. This is the one place that knows each backend's quirks; everything
//! else speaks portable SQL through `sqlx::Any` with `$1` placeholders (SQLite accepts them too).

use std::{path::Path, time::Duration};

use sqlx::{
    any::{AnyConnectOptions, AnyPoolOptions},
    sqlite::SqliteConnectOptions,
    AnyPool, ConnectOptions, Executor,
};

/// Registers the SQLite and PostgreSQL drivers with `sqlx::Any` (idempotent).
pub fn install_drivers() {
    sqlx::any::install_default_drivers();
}

/// The URL of a SQLite file. `create` allows the file to be made; tenant databases are opened
/// without it, so a missing file is an error rather than a silently empty tenant.
pub fn sqlite_url(path: &Path, create: bool) -> String {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(create)
        .to_url_lossy()
        .to_string()
}

/// Connections idle this long are closed, while their (cheap) pool stays cached: a SQLite
/// connection is an OS thread plus its page cache, so tenants not busy right now hold none.
pub const CONNECTION_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How a pool should behave.
#[derive(Debug, Clone, Copy)]
pub struct PoolShape {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// Close connections idle this long (the pool itself stays until its owner drops it).
    pub idle_timeout: Option<Duration>,
}

/// Opens a pool and checks one connection, so a bad URL fails here rather than on first use.
pub async fn open(url: &str, shape: PoolShape) -> Result<AnyPool, sqlx::Error> {
    install_drivers();
    let options: AnyConnectOptions = url.parse()?;
    let options = options.disable_statement_logging();
    // A local file cannot have dropped the connection: no liveness ping (one round trip to the
    // connection's thread) before every acquire. Server databases keep the ping.
    let local_file = url.starts_with("sqlite:");
    AnyPoolOptions::new()
        .test_before_acquire(!local_file)
        .max_connections(shape.max_connections)
        .min_connections(0)
        .acquire_timeout(shape.acquire_timeout)
        .idle_timeout(shape.idle_timeout)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                if conn.backend_name() == "SQLite" {
                    // WAL lets readers and a writer proceed together; NORMAL sync is durable
                    // at checkpoints and is what WAL is designed for.
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
                        .await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
}
