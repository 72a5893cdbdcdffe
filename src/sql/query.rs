//! One statement and its bound values, run on either backend.

use super::{
    conn::{Executor, Target},
    local::{self, Output, Want},
    row::Row,
    value::Value,
};
use crate::error::{Error, Result};

/// A statement with `$1`-style placeholders, as `sqlx::query` builds one.
#[must_use = "a query does nothing until it is run"]
pub struct Query<'q> {
    sql: &'q str,
    args: Vec<Value<'q>>,
    /// The `409 conflict` message for a unique constraint violation, if that is expected.
    on_unique: Option<&'q str>,
    /// Give up at once rather than wait for the tenant's write queue or another process's lock.
    no_wait: bool,
}

/// A statement to run: bind its values (`$N` is the N-th), then fetch or execute it. One
/// statement per query: on SQLite, text after the first statement is not run.
pub fn query(sql: &str) -> Query<'_> {
    Query {
        sql,
        args: Vec::with_capacity(8),
        on_unique: None,
        no_wait: false,
    }
}

impl<'q> Query<'q> {
    pub fn bind(mut self, value: impl Into<Value<'q>>) -> Self {
        self.args.push(value.into());
        self
    }

    /// A unique constraint violation answers `409 conflict` with `message` rather than `500`.
    pub fn conflict_on_unique(mut self, message: &'q str) -> Self {
        self.on_unique = Some(message);
        self
    }

    /// On SQLite, a write that would have to wait (for the tenant's other writers, or for
    /// another process's lock) fails at once with `503 tenant_unavailable`, unlogged: for writes
    /// that may be skipped, so that a read does not wait behind them.
    pub fn without_waiting(mut self) -> Self {
        self.no_wait = true;
        self
    }

    /// The first row, if any.
    pub async fn fetch_optional(self, executor: impl Executor) -> Result<Option<Row>> {
        Ok(self
            .rows(executor, Want::FirstRow)
            .await?
            .into_iter()
            .next())
    }

    /// Exactly one row; none is an internal error.
    pub async fn fetch_one(self, executor: impl Executor) -> Result<Row> {
        self.fetch_optional(executor)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("the statement returned no row")))
    }

    /// Every row.
    pub async fn fetch_all(self, executor: impl Executor) -> Result<Vec<Row>> {
        self.rows(executor, Want::AllRows).await
    }

    /// Runs a statement that returns no rows; gives the number of rows it changed.
    pub async fn execute(self, mut executor: impl Executor) -> Result<u64> {
        match executor.target() {
            Target::Local {
                conn,
                in_transaction,
            } => match conn
                .run(
                    in_transaction,
                    self.no_wait,
                    self.sql,
                    &self.args,
                    Want::Changes,
                )
                .await
            {
                Ok(Output::Changes(changed)) => Ok(changed),
                Ok(Output::Rows(_)) => unreachable!("a statement run for its changes"),
                Err(error) => Err(self.local_error(error)),
            },
            Target::Server(conn) => {
                let done = self.server().execute(conn).await;
                done.map(|done| done.rows_affected())
                    .map_err(|error| self.server_error(error))
            }
        }
    }

    async fn rows(self, mut executor: impl Executor, want: Want) -> Result<Vec<Row>> {
        match executor.target() {
            Target::Local {
                conn,
                in_transaction,
            } => match conn
                .run(in_transaction, self.no_wait, self.sql, &self.args, want)
                .await
            {
                Ok(Output::Rows(rows)) => Ok(rows),
                Ok(Output::Changes(_)) => unreachable!("a statement run for its rows"),
                Err(error) => Err(self.local_error(error)),
            },
            Target::Server(conn) => {
                let found = match want {
                    Want::FirstRow => self
                        .server()
                        .fetch_optional(conn)
                        .await
                        .map(|row| row.into_iter().collect()),
                    _ => self.server().fetch_all(conn).await,
                };
                match found {
                    Ok(rows) => Ok(rows.into_iter().map(Row::server).collect()),
                    Err(error) => Err(self.server_error(error)),
                }
            }
        }
    }

    /// The statement for sqlx, with its values bound as their own types (PostgreSQL checks a
    /// null's type against its column).
    fn server(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        self.args
            .iter()
            .fold(sqlx::query(self.sql), |statement, value| match value {
                Value::Text(text) => statement.bind(text.as_ref()),
                Value::Int(number) => statement.bind(*number),
                Value::NullText => statement.bind(None::<&str>),
                Value::NullInt => statement.bind(None::<i64>),
            })
    }

    fn local_error(&self, error: rusqlite::Error) -> Error {
        if self.no_wait && local::is_busy(&error) {
            return Error::TenantUnavailable { retry_after: 1 };
        }
        match self.on_unique {
            Some(message) if local::is_unique_violation(&error) => {
                Error::Conflict(message.to_owned())
            }
            _ => Error::from(error),
        }
    }

    fn server_error(&self, error: sqlx::Error) -> Error {
        match (self.on_unique, &error) {
            (Some(message), sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Error::Conflict(message.to_owned())
            }
            _ => Error::from(error),
        }
    }
}
