//! Opening sqlx connections and pools (the registry, and the control path's work on tenant
//! databases). This is the one place that knows each backend's quirks; everything else speaks
//! portable SQL with `$1` placeholders (SQLite accepts them too), through `sqlx::Any` or, for
//! tenant statements on the request path, through `sql`.

use std::{path::Path, time::Duration};

use sqlx::{
    any::{AnyConnectOptions, AnyPoolOptions},
    sqlite::SqliteConnectOptions,
    AnyConnection, AnyPool, ConnectOptions, Executor,
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
/// connection holds its page cache and an open file (and, through sqlx, an OS thread), so
/// tenants not busy right now hold none.
pub const CONNECTION_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How a pool should behave.
#[derive(Debug, Clone, Copy)]
pub struct PoolShape {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// Close connections idle this long (the pool itself stays until its owner drops it).
    pub idle_timeout: Option<Duration>,
}

/// How to connect to `url`, statements unlogged (they would log at info on every request).
pub fn connect_options(url: &str) -> Result<AnyConnectOptions, sqlx::Error> {
    install_drivers();
    let options: AnyConnectOptions = url.parse()?;
    Ok(options.disable_statement_logging())
}

/// A local file cannot have dropped a connection, so an idle one needs no liveness ping before
/// use (through sqlx, one round trip to the connection's thread). Server databases keep it.
pub fn is_local_file(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// The settings every rusqlite connection to a tenant file gets (the request path's, the
/// migrator's), as sqlx's connections get them from [`prepare_connection`]: WAL lets readers and
/// a writer proceed together; NORMAL sync is durable at checkpoints and is what WAL is designed
/// for; foreign keys on, as sqlx's SQLite connections have them by default.
pub fn prepare_sqlite(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    // `journal_mode` answers with a row, so it is not part of the batch.
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
}

/// Settings every new connection gets before its first use.
pub async fn prepare_connection(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    if conn.backend_name() == "SQLite" {
        // WAL lets readers and a writer proceed together; NORMAL sync is durable at
        // checkpoints and is what WAL is designed for.
        conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .await?;
    }
    Ok(())
}

/// Opens an sqlx pool (the registry, and control-path work on one tenant) and checks one
/// connection, so a bad URL fails here rather than on first use. Tenant pools on the request
/// path are `pool::TenantPool`s instead.
pub async fn open(url: &str, shape: PoolShape) -> Result<AnyPool, sqlx::Error> {
    AnyPoolOptions::new()
        .test_before_acquire(!is_local_file(url))
        .max_connections(shape.max_connections)
        .min_connections(0)
        .acquire_timeout(shape.acquire_timeout)
        .idle_timeout(shape.idle_timeout)
        .after_connect(|conn, _meta| Box::pin(prepare_connection(conn)))
        .connect_with(connect_options(url)?)
        .await
}

/// For tests that need PostgreSQL: how to reach it (`SILO_TEST_POSTGRES_URL`, default the local
/// one), after checking that it answers. `None`, with the reason printed, when it does not;
/// a panic instead where `SILO_REQUIRE_POSTGRES=1` (CI), so its absence fails there.
#[cfg(test)]
pub async fn postgres_for_tests() -> Option<AnyConnectOptions> {
    let url = std::env::var("SILO_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let options = match connect_options(&url) {
        Ok(options) => options,
        Err(error) => panic!("SILO_TEST_POSTGRES_URL: {error}"),
    };
    let connected = tokio::time::timeout(Duration::from_secs(5), options.connect()).await;
    let reason = match connected {
        Ok(Ok(conn)) => {
            let _ = sqlx::Connection::close(conn).await;
            return Some(options);
        }
        Ok(Err(error)) => error.to_string(),
        Err(_) => "timed out".into(),
    };
    assert!(
        std::env::var("SILO_REQUIRE_POSTGRES").as_deref() != Ok("1"),
        "PostgreSQL is required here but unreachable at {url}: {reason}"
    );
    eprintln!("skipped: no PostgreSQL at {url} ({reason})");
    None
}
