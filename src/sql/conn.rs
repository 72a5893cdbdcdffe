//! A connection to one tenant's database, and what statements run on.

use std::{path::Path, sync::Arc};

use sqlx::{Any, AnyConnection, Connection};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::local::LocalConn;
use crate::error::Result;

/// A tenant connection: SQLite on the caller's thread, or a server database through sqlx.
pub enum TenantConn {
    Local(LocalConn),
    Server(AnyConnection),
}

/// Where a statement runs: a connection or a transaction, borrowed for that statement.
pub enum Target<'c> {
    /// `in_transaction` is set only by a [`Transaction`]: its statements already hold the
    /// tenant's write queue.
    Local {
        conn: &'c mut LocalConn,
        in_transaction: bool,
    },
    Server(&'c mut AnyConnection),
}

/// Anything statements can run on: a [`TenantConn`], a [`Transaction`], or (on the control
/// path, through sqlx) an `AnyConnection`.
pub trait Executor: Send {
    fn target(&mut self) -> Target<'_>;
}

impl Executor for TenantConn {
    fn target(&mut self) -> Target<'_> {
        match self {
            TenantConn::Local(conn) => Target::Local {
                conn,
                in_transaction: false,
            },
            TenantConn::Server(conn) => Target::Server(conn),
        }
    }
}

impl Executor for AnyConnection {
    fn target(&mut self) -> Target<'_> {
        Target::Server(self)
    }
}

impl<E: Executor + ?Sized> Executor for &mut E {
    fn target(&mut self) -> Target<'_> {
        (**self).target()
    }
}

impl TenantConn {
    /// Opens a tenant's SQLite file; `writer` is the queue its pool's writers share.
    pub async fn open_local(path: &Path, writer: Arc<Mutex<()>>) -> rusqlite::Result<Self> {
        LocalConn::open(path, writer).await.map(TenantConn::Local)
    }

    /// Starts a transaction. On SQLite it takes the write lock at once (see
    /// [`LocalConn`](super::local)); dropping it without [`Transaction::commit`] rolls back.
    pub async fn begin(&mut self) -> Result<Transaction<'_>> {
        Ok(Transaction(Some(match self {
            TenantConn::Local(conn) => {
                let queued = conn.begin().await?;
                Open::Local {
                    conn,
                    _queued: queued,
                }
            }
            TenantConn::Server(conn) => Open::Server(conn.begin().await?),
        })))
    }

    /// Left inside a transaction it did not start through [`TenantConn::begin`] (a bare
    /// `BEGIN`, a rollback that failed): not to be handed to another request.
    pub fn in_transaction(&self) -> bool {
        match self {
            TenantConn::Local(conn) => conn.in_transaction(),
            // sqlx rolls back a dropped transaction before the connection's next statement.
            TenantConn::Server(_) => false,
        }
    }

    /// The sqlx connection of a server database; none for SQLite.
    pub fn as_server(&mut self) -> Option<&mut AnyConnection> {
        match self {
            TenantConn::Local(_) => None,
            TenantConn::Server(conn) => Some(conn),
        }
    }

    /// Checks the connection is alive (server databases: the network may have dropped it).
    pub async fn ping(&mut self) -> Result<(), sqlx::Error> {
        match self {
            TenantConn::Local(_) => Ok(()),
            TenantConn::Server(conn) => conn.ping().await,
        }
    }

    /// Closes politely: a server connection says goodbye; a SQLite one just closes.
    pub async fn close(self) {
        match self {
            TenantConn::Local(conn) => drop(conn),
            TenantConn::Server(conn) => {
                let _ = conn.close().await;
            }
        }
    }
}

/// An open transaction on a tenant connection; dropped without [`Transaction::commit`], it
/// rolls back (SQLite at once, in `Drop`; sqlx before the connection's next use).
pub struct Transaction<'c>(Option<Open<'c>>);

enum Open<'c> {
    Local {
        conn: &'c mut LocalConn,
        /// This transaction's turn among the tenant's writers, until it ends.
        _queued: OwnedMutexGuard<()>,
    },
    Server(sqlx::Transaction<'c, Any>),
}

impl Transaction<'_> {
    /// On a server database (PostgreSQL), not a SQLite file.
    pub fn is_server(&self) -> bool {
        matches!(self.0, Some(Open::Server(_)))
    }

    /// Rolls back now. Dropping rolls back too, but a server transaction's rollback then waits
    /// for the connection's next use, and its locks with it: a transaction that took a lock
    /// (see `usage::ensure_room`) is rolled back here.
    pub async fn rollback(mut self) -> Result<()> {
        match self.0.take() {
            Some(Open::Local { conn, _queued }) => {
                conn.rollback();
                Ok(())
            }
            Some(Open::Server(tx)) => Ok(tx.rollback().await?),
            None => Ok(()),
        }
    }

    /// Commits when `result` is `Ok`, else rolls back at once (see [`Transaction::rollback`]);
    /// answers `result`.
    pub async fn finish<T>(self, result: Result<T>) -> Result<T> {
        match result {
            Ok(value) => self.commit().await.map(|()| value),
            Err(error) => {
                if let Err(rollback) = self.rollback().await {
                    tracing::warn!(error = %rollback, "a transaction was not rolled back");
                }
                Err(error)
            }
        }
    }

    pub async fn commit(mut self) -> Result<()> {
        match self.0.take() {
            Some(Open::Local { conn, _queued }) => Ok(conn.commit()?),
            Some(Open::Server(tx)) => Ok(tx.commit().await?),
            None => Ok(()),
        }
    }
}

impl Executor for Transaction<'_> {
    fn target(&mut self) -> Target<'_> {
        match self
            .0
            .as_mut()
            .expect("a transaction is open until it commits")
        {
            Open::Local { conn, .. } => Target::Local {
                conn,
                in_transaction: true,
            },
            Open::Server(tx) => Target::Server(tx),
        }
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if let Some(Open::Local { conn, .. }) = &mut self.0 {
            conn.rollback();
        }
    }
}
