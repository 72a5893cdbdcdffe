//! One tenant's own pool of connections, in place of sqlx's `Pool` on the request path. Its
//! connections are [`TenantConn`]s (see `sql`): a SQLite file through rusqlite, on the caller's
//! thread; a server database through sqlx.
//!
//! sqlx's pool hands a connection back through a spawned task that first pings it (for SQLite,
//! a round trip to the connection's own thread), and it hands out idle connections oldest
//! first, so under steady load an extra connection never stays idle long enough to close. Here
//! a connection goes back in place, at once, and the most recently used one is taken first: a
//! busy tenant keeps reusing its warmest connection and the rest idle out. Measured in
//! BENCHMARKS.md: 11 µs of CPU less per acquire and hand-back in process, about 5 µs per request
//! over HTTP.
//!
//! Skipping the ping is safe because the request path hands a connection back only from a
//! request that ran to completion (see `http::TenantDb`): one cut off mid-statement or
//! mid-transaction is closed instead. (The control path's few uses run single statements
//! outside transactions. A SQLite statement runs to its end within one poll, so none is ever
//! cut off half-way, and a transaction dropped unfinished rolls back at once.) Server
//! databases, whose connections the network can drop, are pinged when taken from the idle
//! stack.

use std::{
    mem,
    ops::{Deref, DerefMut},
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc, Mutex, PoisonError,
    },
    time::Instant,
};

use sqlx::{AnyConnection, ConnectOptions};
use tokio::sync::{Notify, Semaphore, TryAcquireError};

use crate::{
    backend::ConnectTarget,
    database::{self, PoolShape},
    sql::{Executor, Target, TenantConn},
};

/// Why a tenant pool gave no connection. Each is a passing condition of that one tenant but
/// [`PoolError::Broken`], which is a fault (a file that is not a database, say).
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The pool closed (it was idle, made room in its server's budget, or the tenant changed):
    /// the tenant's current pool may serve.
    #[error("the tenant's pool is closed")]
    Closed,
    /// No connection came free, or none could be opened, within the acquire timeout.
    #[error("no connection to the tenant database within the acquire timeout")]
    TimedOut,
    /// A SQLite file another process held past the busy wait.
    #[error("the tenant database is locked by another process")]
    Busy(#[source] rusqlite::Error),
    /// The database server could not be reached, or refused the connection.
    #[error("the tenant database server is unreachable")]
    Unreachable(#[source] sqlx::Error),
    /// The database was reached but cannot serve: a fault to look into.
    #[error("the tenant database cannot be opened")]
    Broken(#[source] anyhow::Error),
}

/// A tenant's pool. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct TenantPool(Arc<Inner>);

struct Inner {
    /// What each connection opens: a SQLite file through rusqlite, or a server through sqlx.
    target: ConnectTarget,
    /// The queue a SQLite tenant's writers wait in (see `sql::LocalConn`), shared by the
    /// pool's connections.
    writer: Arc<tokio::sync::Mutex<()>>,
    shape: PoolShape,
    /// One permit per connection that may be checked out (`shape.max_connections`). Closed
    /// when the pool closes, which wakes every waiter with `PoolError::Closed`.
    permits: Semaphore,
    /// Idle connections, the most recently returned last. `closed` is set under this lock, so
    /// no connection is pushed here after the pool has drained it.
    idle: Mutex<Idle>,
    /// Whether new server connections try the target's `next` credentials first: set once
    /// the recorded ones were refused and the next ones let it in, so a rotated role costs
    /// one refused login per pool, not one per connection.
    use_next: AtomicBool,
    /// Shared with every connection, which uncounts itself when dropped. Apart from `Inner`
    /// so that idle connections do not keep their own pool alive: a pool dropped without
    /// `close` still closes them.
    count: Arc<Count>,
}

#[derive(Default)]
struct Count {
    /// Connections open or being opened.
    size: AtomicU32,
    /// Wakes `close` whenever a connection is gone.
    gone: Notify,
}

#[derive(Default)]
struct Idle {
    stack: Vec<(Conn, Instant)>,
    closed: bool,
}

/// A connection counted in its pool's size until it is dropped.
struct Conn {
    raw: Option<TenantConn>,
    count: Arc<Count>,
}

/// A connection checked out of a [`TenantPool`]. Dropping it hands it back; call
/// [`PooledConnection::discard`] instead when it may be mid-statement (a server connection) or
/// have left an error behind.
pub struct PooledConnection {
    conn: Option<Conn>,
    pool: Arc<Inner>,
    discard: bool,
}

impl TenantPool {
    /// A pool on `target`, checked by opening one connection, so a missing file or a server
    /// that refuses fails here rather than on first use. The connection stays, idle.
    pub async fn open(target: ConnectTarget, shape: PoolShape) -> Result<Self, PoolError> {
        let pool = Self(Arc::new(Inner {
            target,
            writer: Arc::default(),
            shape,
            permits: Semaphore::new(shape.max_connections as usize),
            idle: Mutex::default(),
            use_next: AtomicBool::new(false),
            count: Arc::default(),
        }));
        drop(pool.acquire().await?);
        Ok(pool)
    }

    /// A connection: the most recently returned idle one, else a new one if the pool is not
    /// full, else the first to come back. All within the acquire timeout (`PoolError::TimedOut`),
    /// opening and pinging included, so an unreachable server is a quick 503, not a hang.
    pub async fn acquire(&self) -> Result<PooledConnection, PoolError> {
        // The timer is armed only if the first poll does not finish: not on the usual path of a
        // free permit and an idle connection.
        tokio::time::timeout(self.0.shape.acquire_timeout, self.take())
            .await
            .unwrap_or(Err(PoolError::TimedOut))
    }

    async fn take(&self) -> Result<PooledConnection, PoolError> {
        let inner = &self.0;
        match inner.permits.try_acquire() {
            Ok(permit) => permit.forget(),
            Err(TryAcquireError::Closed) => return Err(PoolError::Closed),
            Err(TryAcquireError::NoPermits) => match inner.permits.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_closed) => return Err(PoolError::Closed),
            },
        }
        // The permit is ours now; the guard gives it back on every path, errors included.
        let mut checked_out = PooledConnection {
            conn: None,
            pool: inner.clone(),
            discard: false,
        };
        loop {
            // Under the lock that `close` sets `closed` with: a connection about to be opened
            // is counted before `close` reads the count, or is not opened at all.
            let (mut conn, fresh) = {
                let mut idle = inner.lock_idle();
                if idle.closed {
                    return Err(PoolError::Closed);
                }
                match idle.stack.pop() {
                    Some((conn, _since)) => (conn, false),
                    None => (Conn::counted(&inner.count), true),
                }
            };
            if fresh {
                // On failure or cancellation `conn` is dropped, which uncounts it.
                conn.open(inner).await?;
            } else if matches!(inner.target, ConnectTarget::Server { .. })
                && conn.raw_mut().ping().await.is_err()
            {
                // A server database whose idle connection the network dropped: try the next.
                continue;
            }
            checked_out.conn = Some(conn);
            return Ok(checked_out);
        }
    }

    /// Connections open now, checked out or idle.
    pub fn size(&self) -> u32 {
        self.0.count.size.load(Ordering::Acquire)
    }

    /// Connections idle now.
    pub fn num_idle(&self) -> usize {
        self.0.lock_idle().stack.len()
    }

    /// Closes connections idle longer than the pool's idle timeout (called by housekeeping).
    /// Each holds a permit until it has closed, so that no new connection takes its place
    /// meanwhile: the pool never holds more than its size, closing ones included.
    pub async fn close_idle(&self) {
        let Some(timeout) = self.0.shape.idle_timeout else {
            return;
        };
        let inner = &self.0;
        let expired: Vec<Conn> = {
            let mut idle = inner.lock_idle();
            let mut expired = Vec::new();
            // Oldest first: the stack's bottom idled longest. A permit not free now means
            // the pool is busy; the rest wait for the next round.
            while idle
                .stack
                .first()
                .is_some_and(|(_, since)| since.elapsed() >= timeout)
            {
                let Ok(permit) = inner.permits.try_acquire() else {
                    break;
                };
                permit.forget();
                expired.push(idle.stack.remove(0).0);
            }
            expired
        };
        for conn in expired {
            conn.close().await;
            inner.permits.add_permits(1);
        }
    }

    /// Refuses new checkouts (`PoolError::Closed`, also to those waiting), closes the idle
    /// connections, and returns once every checked-out one has come back and closed too.
    pub async fn close(&self) {
        let inner = &self.0;
        let idle = {
            let mut idle = inner.lock_idle();
            idle.closed = true;
            mem::take(&mut idle.stack)
        };
        inner.permits.close();
        for (conn, _) in idle {
            conn.close().await;
        }
        loop {
            let gone = inner.count.gone.notified();
            tokio::pin!(gone);
            gone.as_mut().enable();
            if inner.count.size.load(Ordering::Acquire) == 0 {
                return;
            }
            gone.await;
        }
    }
}

impl Inner {
    /// A new sqlx connection to a server with the settings every connection gets.
    async fn connect(options: &sqlx::any::AnyConnectOptions) -> Result<AnyConnection, PoolError> {
        let mut conn = options.connect().await.map_err(PoolError::Unreachable)?;
        database::prepare_connection(&mut conn)
            .await
            .map_err(|e| PoolError::Broken(e.into()))?;
        Ok(conn)
    }

    /// A new connection to a server as the tenant's role: with its recorded credentials, or,
    /// when the role refuses them (it has just been rotated), with the next ones, and the
    /// other way round once the next ones have worked.
    async fn connect_role(
        &self,
        options: &sqlx::any::AnyConnectOptions,
        next: Option<&sqlx::any::AnyConnectOptions>,
    ) -> Result<AnyConnection, PoolError> {
        let Some(next) = next else {
            return Inner::connect(options).await;
        };
        let next_first = self.use_next.load(Ordering::Relaxed);
        let (first, second) = match next_first {
            true => (next, options),
            false => (options, next),
        };
        match Inner::connect(first).await {
            Err(PoolError::Unreachable(refused)) if wrong_password(&refused) => {
                let conn = Inner::connect(second).await?;
                self.use_next.store(!next_first, Ordering::Relaxed);
                Ok(conn)
            }
            other => other,
        }
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Idle> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// PostgreSQL's "password authentication failed" (SQLSTATE 28P01).
fn wrong_password(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("28P01"))
}

impl Conn {
    /// A connection about to be opened, counted in its pool's size from now on.
    fn counted(count: &Arc<Count>) -> Self {
        count.size.fetch_add(1, Ordering::AcqRel);
        Self {
            raw: None,
            count: count.clone(),
        }
    }

    async fn open(&mut self, pool: &Inner) -> Result<(), PoolError> {
        self.raw = Some(match &pool.target {
            // A file another process holds too long is an unavailable tenant (503), as a server
            // that cannot be reached is; one that cannot be opened or is not a database is a
            // fault (500).
            ConnectTarget::File(file) => TenantConn::open_local(file, pool.writer.clone())
                .await
                .map_err(|e| match crate::sql::is_busy(&e) {
                    true => PoolError::Busy(e),
                    false => PoolError::Broken(
                        anyhow::Error::new(e).context(format!("opening {}", file.display())),
                    ),
                })?,
            ConnectTarget::Server { options, next } => {
                TenantConn::Server(pool.connect_role(options, next.as_deref()).await?)
            }
        });
        Ok(())
    }

    fn raw_mut(&mut self) -> &mut TenantConn {
        self.raw.as_mut().expect("a counted connection is open")
    }

    /// Closes the connection politely. For a server that waits for the statement of a request
    /// cut off to be abandoned; a SQLite statement runs on the caller's thread, so none is ever
    /// left running.
    async fn close(mut self) {
        if let Some(raw) = self.raw.take() {
            raw.close().await;
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.count.size.fetch_sub(1, Ordering::AcqRel);
        self.count.gone.notify_waiters();
    }
}

impl PooledConnection {
    /// Closes the connection instead of handing it back: a statement may still be running on
    /// it (a server connection), or it left an error behind.
    pub fn discard(mut self) {
        self.discard = true;
    }
}

impl Deref for PooledConnection {
    type Target = TenantConn;

    fn deref(&self) -> &TenantConn {
        self.conn
            .as_ref()
            .and_then(|conn| conn.raw.as_ref())
            .expect("a checked-out connection is open")
    }
}

impl DerefMut for PooledConnection {
    fn deref_mut(&mut self) -> &mut TenantConn {
        self.conn
            .as_mut()
            .expect("a checked-out connection is open")
            .raw_mut()
    }
}

impl Executor for PooledConnection {
    fn target(&mut self) -> Target<'_> {
        (**self).target()
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            self.pool.permits.add_permits(1);
            return;
        };
        // A connection left inside a transaction would hand it to the next request.
        let discard = self.discard || conn.raw.as_ref().is_some_and(TenantConn::in_transaction);
        let mut idle = self.pool.lock_idle();
        if !idle.closed && !discard {
            idle.stack.push((conn, Instant::now()));
            drop(idle);
            // After the push: a waiter woken by this permit finds the connection idle.
            self.pool.permits.add_permits(1);
            return;
        }
        drop(idle);
        // Closed first, then the permit: the pool never holds more than its size, connections
        // still closing included (a server connection may be abandoning a statement of a
        // request cut off).
        let pool = self.pool.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(async move {
                conn.close().await;
                pool.permits.add_permits(1);
            })),
            // No runtime to close it politely on: dropped (a sqlx connection's thread, if it has
            // one, ends by itself).
            Err(_) => {
                drop(conn);
                pool.permits.add_permits(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::sql;

    /// Long enough that no stall of a busy test machine makes a fresh connection look idle.
    const IDLE: Duration = Duration::from_millis(250);

    fn shape(max_connections: u32) -> PoolShape {
        PoolShape {
            max_connections,
            acquire_timeout: Duration::from_millis(200),
            idle_timeout: Some(IDLE),
        }
    }

    async fn pool(dir: &tempfile::TempDir, max_connections: u32) -> TenantPool {
        database::install_drivers();
        // An empty file is an empty SQLite database; tenant pools never create their file.
        let file = dir.path().join("t.db");
        std::fs::File::create(&file).unwrap();
        TenantPool::open(ConnectTarget::File(file), shape(max_connections))
            .await
            .unwrap()
    }

    async fn one(conn: &mut TenantConn) -> i64 {
        sql::query("SELECT 1 AS one")
            .fetch_one(conn)
            .await
            .unwrap()
            .try_get("one")
            .unwrap()
    }

    #[tokio::test]
    async fn the_most_recently_returned_connection_is_taken_first_and_never_more_than_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir, 2).await;
        assert_eq!((pool.size(), pool.num_idle()), (1, 1), "checked on open");

        let mut first = pool.acquire().await.unwrap();
        let mut second = pool.acquire().await.unwrap();
        assert_eq!(pool.size(), 2);
        assert_eq!(one(&mut first).await + one(&mut second).await, 2);
        let error = pool.acquire().await.err().expect("the pool is full");
        assert!(matches!(error, PoolError::TimedOut), "{error}");

        // Mark the second connection's session, so which one comes back is visible.
        for statement in [
            "CREATE TEMP TABLE mark (which TEXT)",
            "INSERT INTO mark VALUES ('second')",
        ] {
            sql::query(statement).execute(&mut second).await.unwrap();
        }
        drop(first);
        drop(second);
        for _ in 0..3 {
            let mut again = pool.acquire().await.unwrap();
            let which: String = sql::query("SELECT which FROM mark")
                .fetch_one(&mut again)
                .await
                .unwrap()
                .try_get("which")
                .unwrap();
            assert_eq!(which, "second");
        }
        assert_eq!(pool.size(), 2);
    }

    #[tokio::test]
    async fn a_waiter_gets_the_connection_handed_back() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir, 1).await;
        let held = pool.acquire().await.unwrap();
        let waiter = {
            let pool = pool.clone();
            tokio::spawn(async move { one(&mut pool.acquire().await.unwrap()).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        assert_eq!(waiter.await.unwrap(), 1);
        assert_eq!(pool.size(), 1);
    }

    #[tokio::test]
    async fn a_discarded_connection_is_closed_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir, 1).await;
        let mut conn = pool.acquire().await.unwrap();
        sql::query("CREATE TEMP TABLE mark (x)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.discard();
        let mut fresh = pool.acquire().await.unwrap();
        let marked = sql::query("SELECT x FROM mark").fetch_one(&mut fresh).await;
        assert!(marked.is_err(), "a new connection has no temp table");
        assert_eq!(pool.size(), 1);
    }

    #[tokio::test]
    async fn a_connection_left_inside_a_transaction_is_not_handed_back() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir, 1).await;
        let mut conn = pool.acquire().await.unwrap();
        sql::query("CREATE TEMP TABLE mark (x)")
            .execute(&mut conn)
            .await
            .unwrap();
        sql::query("BEGIN").execute(&mut conn).await.unwrap();
        drop(conn);
        let mut fresh = pool.acquire().await.unwrap();
        assert!(!fresh.in_transaction());
        let marked = sql::query("SELECT x FROM mark").fetch_one(&mut fresh).await;
        assert!(marked.is_err(), "a new connection has no temp table");
        assert_eq!(pool.size(), 1);
    }

    #[tokio::test]
    async fn a_cancelled_open_is_not_counted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        // A file in rollback-journal mode, locked by another process: opening a connection
        // (which reads it to set WAL mode) waits.
        let other = rusqlite::Connection::open(&file).unwrap();
        other
            .execute_batch("CREATE TABLE t (x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1);")
            .unwrap();
        // The pool as `TenantPool::open` makes it, minus its first connection.
        let pool = TenantPool(Arc::new(Inner {
            target: ConnectTarget::File(file.clone()),
            writer: Arc::default(),
            shape: shape(2),
            permits: Semaphore::new(2),
            idle: Mutex::default(),
            use_next: AtomicBool::new(false),
            count: Arc::default(),
        }));
        assert!(futures::FutureExt::now_or_never(pool.acquire()).is_none());
        assert_eq!(pool.size(), 0, "the cancelled open is not counted");
        assert_eq!(pool.0.permits.available_permits(), 2);
        drop(other);
        let _conn = pool.acquire().await.unwrap();
        assert_eq!(pool.size(), 1);
    }

    #[tokio::test]
    async fn a_pool_dropped_without_closing_closes_its_idle_connections() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir, 2).await;
        let count = pool.0.count.clone();
        assert_eq!(count.size.load(Ordering::Acquire), 1);
        drop(pool);
        assert_eq!(count.size.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn idle_connections_close_after_the_idle_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir, 2).await;
        let first = pool.acquire().await.unwrap();
        let second = pool.acquire().await.unwrap();
        drop(first);
        tokio::time::sleep(IDLE + Duration::from_millis(100)).await;
        drop(second);
        pool.close_idle().await;
        assert_eq!(
            (pool.size(), pool.num_idle()),
            (1, 1),
            "only the old one closed"
        );
        tokio::time::sleep(IDLE + Duration::from_millis(100)).await;
        pool.close_idle().await;
        assert_eq!(pool.size(), 0);
        assert_eq!(
            one(&mut pool.acquire().await.unwrap()).await,
            1,
            "opens again"
        );
        assert_eq!(
            pool.0.permits.available_permits(),
            2,
            "every permit is back"
        );
    }

    #[tokio::test]
    async fn closing_waits_for_checked_out_connections_and_refuses_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir, 2).await;
        let held = pool.acquire().await.unwrap();
        let closing = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.close().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!closing.is_finished(), "a connection is still checked out");
        assert!(matches!(
            pool.acquire().await.err(),
            Some(PoolError::Closed)
        ));
        drop(held);
        tokio::time::timeout(Duration::from_secs(5), closing)
            .await
            .expect("close returns once the connection is back")
            .unwrap();
        assert_eq!(pool.size(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_wait_leaves_no_trace() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir, 1).await;
        let held = pool.acquire().await.unwrap();
        // The second acquire has to wait for the connection: poll it once, then drop it.
        // (A SQLite connection opens at once; a server connection's open is cancelled the
        // same way, the `Conn` dropped uncounts itself.)
        assert!(futures::FutureExt::now_or_never(pool.acquire()).is_none());
        assert_eq!(pool.size(), 1);
        drop(held);
        tokio::time::timeout(Duration::from_secs(5), async {
            let _again = pool.acquire().await.unwrap();
        })
        .await
        .unwrap();
        assert_eq!(pool.0.permits.available_permits(), 1);
    }

    async fn backend_pid(conn: &mut TenantConn) -> i64 {
        sql::query("SELECT CAST(pg_backend_pid() AS BIGINT) AS pid")
            .fetch_one(conn)
            .await
            .unwrap()
            .try_get("pid")
            .unwrap()
    }

    /// A server database through sqlx, as PostgreSQL tenant databases are reached: a
    /// connection handed back is pinged when taken again, and the pool's first connection stays.
    #[tokio::test]
    async fn a_pool_on_a_server_reuses_its_connection() {
        let Some(options) = database::postgres_for_tests().await else {
            return;
        };
        let target = ConnectTarget::Server {
            options,
            next: None,
        };
        let pool = TenantPool::open(target, shape(2)).await.unwrap();
        assert_eq!(pool.size(), 1, "checked by opening one connection");
        let first = backend_pid(&mut pool.acquire().await.unwrap()).await;
        let again = backend_pid(&mut pool.acquire().await.unwrap()).await;
        assert_eq!(first, again, "the idle connection is taken again");
        assert_eq!(pool.size(), 1);
        pool.close().await;
        assert!(matches!(
            pool.acquire().await.err(),
            Some(PoolError::Closed)
        ));
    }
}
