//! A SQLite tenant connection, run on the caller's thread.
//!
//! Statements are short (single rows, pages of at most 100 and the one row that says there is
//! more), so they run inline on the async
//! runtime's thread, as a brief computation would: no hand-over to another thread, and the
//! tenant's pages are touched by the thread that serves the request. Two things could stall
//! that thread, and neither is allowed to:
//!
//! - Waiting for SQLite's write lock. Writers of one tenant queue on an async lock of the
//!   tenant's pool first, so the request path's writes never wait for each other on the file.
//!   A writer outside that queue (another process such as `silo migrate`, the control path's
//!   sqlx connections, a pool being replaced) can still hold it: SQLite's own busy wait is
//!   off, and a statement that finds the database busy is retried after an async sleep. The
//!   queue and those retries share one wait of at most [`BUSY_WAIT`], then the answer is
//!   `503`.
//! - Long statements. None on the request path; migrations and provisioning stay on sqlx. (A
//!   commit that fills the WAL past SQLite's auto-checkpoint, 1,000 pages, copies them back
//!   into the database file on the committing thread: a few milliseconds, now and then.)

use std::{path::Path, sync::Arc, time::Duration};

use rusqlite::{ffi, OpenFlags};
use tokio::{
    sync::{Mutex, OwnedMutexGuard},
    time::Instant,
};

use super::{
    row::{Cell, Row},
    value::Value,
};

/// How long a statement waits for another process's write to finish, as sqlx's default busy
/// timeout does.
pub const BUSY_WAIT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection: more than the request path has.
const STATEMENT_CACHE: usize = 64;

/// An open SQLite connection and its tenant's write queue.
pub struct LocalConn {
    conn: rusqlite::Connection,
    writer: Arc<Mutex<()>>,
}

/// What a statement should give back.
#[derive(Clone, Copy)]
pub(super) enum Want {
    FirstRow,
    AllRows,
    Changes,
}

pub(super) enum Output {
    Rows(Vec<Row>),
    Changes(u64),
}

impl LocalConn {
    /// Opens an existing database file (never creates one: a missing file is an error, not a
    /// silently empty tenant), with the settings sqlx's connections get too.
    /// The settings read the file, so they wait out another connection's lock as a statement
    /// does (the last connection of another process to close takes one briefly).
    pub async fn open(path: &Path, writer: Arc<Mutex<()>>) -> rusqlite::Result<Self> {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::ZERO)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let mut opened = Self { conn, writer };
        opened
            .retry_while_busy(Instant::now() + BUSY_WAIT, crate::backend::prepare_sqlite)
            .await?;
        Ok(opened)
    }

    /// Runs one statement. In a [`Transaction`](super::Transaction) (`in_transaction`) it runs
    /// at once: the transaction holds the queue and the write lock. Outside one, a statement
    /// that writes first queues behind the tenant's other writers; the queue and another
    /// process's lock share one wait of at most [`BUSY_WAIT`] (none at all with `no_wait`).
    pub(super) async fn run(
        &mut self,
        in_transaction: bool,
        no_wait: bool,
        sql: &str,
        args: &[Value<'_>],
        want: Want,
    ) -> rusqlite::Result<Output> {
        if in_transaction {
            if self.conn.is_autocommit() {
                // SQLite ended the transaction itself (an I/O error, a full disk): what follows
                // would run outside it, so the transaction fails instead.
                return Err(rusqlite::Error::SqliteFailure(
                    ffi::Error::new(ffi::SQLITE_ABORT),
                    Some("the transaction was rolled back by the database".into()),
                ));
            }
            return run(&self.conn, sql, args, want);
        }
        let deadline = Instant::now() + if no_wait { Duration::ZERO } else { BUSY_WAIT };
        // Read-only statements never queue. One left inside a transaction by a bare `BEGIN`
        // is that transaction's; the pool closes such a connection when it comes back.
        let writes = self
            .retry_while_busy(deadline, |conn| {
                Ok(conn.is_autocommit() && !conn.prepare_cached(sql)?.readonly())
            })
            .await?;
        let _queued = if writes {
            Some(Self::queue(self.writer.clone(), deadline).await?)
        } else {
            None
        };
        self.retry_while_busy(deadline, |conn| run(conn, sql, args, want))
            .await
    }

    /// Starts a write transaction: queued behind the tenant's other writers, then
    /// `BEGIN IMMEDIATE`, so it holds SQLite's write lock from its first statement and never
    /// fails part-way for want of it. The guard is the transaction's place in the queue.
    pub(super) async fn begin(&mut self) -> rusqlite::Result<OwnedMutexGuard<()>> {
        let deadline = Instant::now() + BUSY_WAIT;
        let queued = Self::queue(self.writer.clone(), deadline).await?;
        self.retry_while_busy(deadline, |conn| conn.execute_batch("BEGIN IMMEDIATE"))
            .await?;
        Ok(queued)
    }

    /// Its turn among the tenant's writers, or `SQLITE_BUSY` at `deadline` (a writer ahead is
    /// itself waiting out another process).
    /// (Takes the queue, not `self`: a `&LocalConn` held across the wait would make the
    /// request's future not `Send`.)
    async fn queue(
        writer: Arc<Mutex<()>>,
        deadline: Instant,
    ) -> rusqlite::Result<OwnedMutexGuard<()>> {
        let busy = || {
            rusqlite::Error::SqliteFailure(
                ffi::Error::new(ffi::SQLITE_BUSY),
                Some("the tenant's other writers did not finish in time".into()),
            )
        };
        // A timer at a deadline already past is not ready until the timer wheel turns: no wait
        // at all is a plain try.
        if deadline <= Instant::now() {
            return writer.try_lock_owned().map_err(|_taken| busy());
        }
        tokio::time::timeout_at(deadline, writer.lock_owned())
            .await
            .map_err(|_elapsed| busy())
    }

    /// Left inside a transaction (by a bare `BEGIN`, or a rollback that failed): such a
    /// connection is not to be handed to another request.
    pub fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// Commits; if that fails, rolls back, so the connection is never left mid-transaction.
    pub(super) fn commit(&mut self) -> rusqlite::Result<()> {
        let done = self.conn.execute_batch("COMMIT");
        if done.is_err() {
            self.rollback();
        }
        done
    }

    /// Rolls back an open transaction; done from `Drop`, so it cannot wait or fail loudly.
    pub(super) fn rollback(&mut self) {
        if !self.conn.is_autocommit() {
            if let Err(error) = self.conn.execute_batch("ROLLBACK") {
                tracing::warn!(%error, "could not roll back a tenant transaction");
            }
        }
    }

    /// Runs `step`, and again after a short async sleep while another process holds the
    /// database, until `deadline`. Only outside a transaction: a statement in one has the
    /// write lock already (`BEGIN IMMEDIATE`).
    async fn retry_while_busy<T>(
        &mut self,
        deadline: Instant,
        mut step: impl FnMut(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let mut pause = Duration::from_millis(1);
        loop {
            match step(&self.conn) {
                Err(error) if is_busy(&error) && self.conn.is_autocommit() => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(error);
                    }
                    tokio::time::sleep(pause.min(deadline - now)).await;
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                done => return done,
            }
        }
    }
}

/// Another connection holds the lock this statement needs.
pub fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// A unique or primary key constraint refused the statement.
pub fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(ffi::Error { extended_code, .. }, _)
            if *extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
                || *extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// One statement, start to finish, with `$N` placeholders bound to `args[N - 1]` (as sqlx does
/// for SQLite: a placeholder used twice is one parameter).
fn run(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[Value<'_>],
    want: Want,
) -> rusqlite::Result<Output> {
    let mut statement = conn.prepare_cached(sql)?;
    for index in 1..=statement.parameter_count() {
        let position = match statement.parameter_name(index) {
            // A bare `?` is the next value.
            None => index,
            Some(name) => name
                .strip_prefix(['$', '?'])
                .and_then(|number| number.parse::<usize>().ok())
                .ok_or_else(|| rusqlite::Error::InvalidParameterName(name.to_owned()))?,
        };
        let value = position
            .checked_sub(1)
            .and_then(|at| args.get(at))
            .ok_or(rusqlite::Error::InvalidParameterCount(position, args.len()))?;
        statement.raw_bind_parameter(index, value)?;
    }
    if let Want::Changes = want {
        return Ok(Output::Changes(statement.raw_execute()? as u64));
    }
    // A statement that writes runs to its end even when one row is wanted (an `UPDATE ...
    // RETURNING` outside a transaction commits as it finishes, and its errors show there).
    let read_only = statement.readonly();
    let names: Arc<[Box<str>]> = statement
        .column_names()
        .into_iter()
        .map(Box::from)
        .collect();
    let mut found = Vec::new();
    let mut rows = statement.raw_query();
    while let Some(row) = rows.next()? {
        let cells = (0..names.len())
            .map(|at| {
                Ok(match row.get_ref(at)? {
                    rusqlite::types::ValueRef::Null => Cell::Null,
                    rusqlite::types::ValueRef::Integer(number) => Cell::Int(number),
                    rusqlite::types::ValueRef::Real(number) => Cell::Real(number),
                    rusqlite::types::ValueRef::Text(text) => Cell::Text(
                        std::str::from_utf8(text)
                            .map_err(rusqlite::Error::Utf8Error)?
                            .to_owned(),
                    ),
                    rusqlite::types::ValueRef::Blob(_) => {
                        return Err(rusqlite::Error::InvalidColumnType(
                            at,
                            names[at].to_string(),
                            rusqlite::types::Type::Blob,
                        ))
                    }
                })
            })
            .collect::<rusqlite::Result<Vec<_>>>()?;
        if found.is_empty() || !matches!(want, Want::FirstRow) {
            found.push(Row::local(names.clone(), cells));
        }
        if matches!(want, Want::FirstRow) && read_only {
            break;
        }
    }
    Ok(Output::Rows(found))
}
