//! A tenant database's whole contents, read in one consistent snapshot and loaded into another
//! tenant database in one transaction: what backups, restores, clones and moves are made of.
//!
//! Unlike the export (`export.rs`), a snapshot carries every table and every column, password
//! and token hashes included: it is the database itself, for silo to load back. It is read from
//! the database's own catalogue, so a column a later migration adds is carried without being
//! listed anywhere. Only the schema's history (`_sqlx_migrations`) stays behind: the database a
//! snapshot is loaded into has its own.
//!
//! The format is the same on both backends (text and integer columns, the tenant schema's
//! portable subset), so a snapshot of a SQLite tenant loads into a PostgreSQL one and back.

use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Executor, Row};

use crate::{
    backend::Server,
    error::{Error, Result},
};

/// The table a snapshot leaves behind: the schema's history, which each database keeps itself.
const HISTORY: &str = "_sqlx_migrations";

/// What a column holds: the tenant schema's portable subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Integer => "integer",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "text" => Some(Kind::Text),
            "integer" => Some(Kind::Integer),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
}

/// One table: its columns, then its rows, each a value per column (a string, an integer or
/// null).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    /// A digest of the table's name, columns and rows, whatever order the rows came in (the
    /// two backends sort text differently).
    pub fn digest(&self) -> [u8; 32] {
        let mut rows: Vec<String> = self
            .rows
            .iter()
            .map(|row| Value::Array(row.clone()).to_string())
            .collect();
        rows.sort_unstable();
        let mut hash = Sha256::new();
        hash.update(self.name.as_bytes());
        for column in &self.columns {
            hash.update([0]);
            hash.update(column.name.as_bytes());
            hash.update(column.kind.as_str().as_bytes());
        }
        for row in rows {
            hash.update([b'\n']);
            hash.update(row.as_bytes());
        }
        hash.finalize().into()
    }
}

/// Which SQL the catalogue and the locks are read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn of(server: &Server) -> Self {
        match server {
            Server::Sqlite(_) => Dialect::Sqlite,
            Server::Postgres(_) => Dialect::Postgres,
        }
    }
}

/// A name from the catalogue or a backup file, checked before it is written into SQL (as a
/// quoted identifier): lower-case letters, digits and `_`, as the tenant schema's names are.
fn identifier(name: &str) -> Result<String> {
    let plain = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !plain {
        return Err(Error::BadRequest(format!(
            "{name:?} is not a table or column name a tenant database has"
        )));
    }
    Ok(format!("\"{name}\""))
}

/// The database's tables, in the order they were created (so a table comes after those its
/// foreign keys name), each with its columns.
pub async fn shapes(conn: &mut AnyConnection, dialect: Dialect) -> Result<Vec<Table>> {
    let names: Vec<String> = match dialect {
        Dialect::Sqlite => sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
             AND name <> $1 ORDER BY rowid",
        ),
        Dialect::Postgres => sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> $1 ORDER BY c.oid",
        ),
    }
    .bind(HISTORY)
    .fetch_all(&mut *conn)
    .await?;
    let mut tables = Vec::with_capacity(names.len());
    for name in names {
        let columns: Vec<(String, String)> = match dialect {
            Dialect::Sqlite => {
                sqlx::query_as("SELECT name, type FROM pragma_table_info($1) ORDER BY cid")
            }
            Dialect::Postgres => sqlx::query_as(
                "SELECT column_name::text, data_type::text FROM information_schema.columns
                 WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
            ),
        }
        .bind(&name)
        .fetch_all(&mut *conn)
        .await?;
        let columns = columns
            .into_iter()
            .map(|(column, declared)| {
                let kind = kind_of(dialect, &declared).ok_or_else(|| {
                    Error::Conflict(format!(
                        "column {name}.{column} is of type {declared}, which a snapshot cannot carry (only text and integer columns)"
                    ))
                })?;
                Ok(Column { name: column, kind })
            })
            .collect::<Result<_>>()?;
        tables.push(Table {
            name,
            columns,
            rows: Vec::new(),
        });
    }
    Ok(tables)
}

fn kind_of(dialect: Dialect, declared: &str) -> Option<Kind> {
    let declared = declared.to_ascii_lowercase();
    match dialect {
        // SQLite's own rules of type affinity: INT anywhere is an integer; CHAR, CLOB or TEXT is
        // text.
        Dialect::Sqlite if declared.contains("int") => Some(Kind::Integer),
        Dialect::Sqlite
            if declared.contains("char")
                || declared.contains("clob")
                || declared.contains("text") =>
        {
            Some(Kind::Text)
        }
        Dialect::Postgres => match declared.as_str() {
            "bigint" | "integer" | "smallint" => Some(Kind::Integer),
            "text" | "character varying" | "character" => Some(Kind::Text),
            _ => None,
        },
        Dialect::Sqlite => None,
    }
}

/// Every table with its rows, on `conn`, which the caller has put in a transaction that gives
/// one consistent view (see [`begin_read`]).
pub async fn read(conn: &mut AnyConnection, dialect: Dialect) -> Result<Vec<Table>> {
    let mut tables = shapes(conn, dialect).await?;
    for table in &mut tables {
        read_rows(conn, dialect, table).await?;
    }
    Ok(tables)
}

async fn read_rows(conn: &mut AnyConnection, dialect: Dialect, table: &mut Table) -> Result<()> {
    let mut selected = Vec::with_capacity(table.columns.len());
    for column in &table.columns {
        let name = identifier(&column.name)?;
        // PostgreSQL's narrower integers and character types, read as what the format carries.
        selected.push(match (dialect, column.kind) {
            (Dialect::Postgres, Kind::Integer) => format!("{name}::bigint"),
            (Dialect::Postgres, Kind::Text) => format!("{name}::text"),
            (Dialect::Sqlite, _) => name,
        });
    }
    let statement = format!(
        "SELECT {} FROM {} ORDER BY 1",
        selected.join(", "),
        identifier(&table.name)?
    );
    for row in sqlx::query(&statement).fetch_all(&mut *conn).await? {
        let mut values = Vec::with_capacity(table.columns.len());
        for (index, column) in table.columns.iter().enumerate() {
            let value = match column.kind {
                Kind::Text => row.try_get::<Option<String>, _>(index)?.map(Value::from),
                Kind::Integer => row.try_get::<Option<i64>, _>(index)?.map(Value::from),
            };
            values.push(value.unwrap_or(Value::Null));
        }
        table.rows.push(values);
    }
    Ok(())
}

/// Starts the read-only transaction a snapshot is read in: deferred on SQLite (its view is
/// fixed at the first read), `REPEATABLE READ` on PostgreSQL. Ended with [`end`].
pub async fn begin_read(conn: &mut AnyConnection, dialect: Dialect) -> Result<()> {
    let begin = match dialect {
        Dialect::Sqlite => "BEGIN DEFERRED",
        Dialect::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    };
    (&mut *conn).execute(begin).await?;
    Ok(())
}

/// How long taking [`begin_exclusive`]'s locks may wait for writes already running: as long
/// as a SQLite writer waits for another's lock (sqlx's busy timeout, the request path's
/// `BUSY_WAIT`).
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Starts a transaction that holds every writer off until it ends, readers not: SQLite's
/// `BEGIN IMMEDIATE` (the database's write lock), and on PostgreSQL an `EXCLUSIVE` lock on
/// every table. Writes already running are waited for, at most [`LOCK_WAIT`]; later ones
/// wait for this to end.
pub async fn begin_exclusive(conn: &mut AnyConnection, dialect: Dialect) -> Result<()> {
    match dialect {
        Dialect::Sqlite => {
            (&mut *conn).execute("BEGIN IMMEDIATE").await?;
        }
        Dialect::Postgres => {
            (&mut *conn).execute("BEGIN").await?;
            // Not a wait without end behind a long transaction, with every writer queued
            // behind this one meanwhile: a lock not had in time fails the switch (503).
            (&mut *conn)
                .execute(format!("SET LOCAL lock_timeout = '{}ms'", LOCK_WAIT.as_millis()).as_str())
                .await?;
            let names = shapes(conn, dialect).await?;
            let names: Vec<String> = names
                .iter()
                .map(|table| identifier(&table.name))
                .collect::<Result<_>>()?;
            if !names.is_empty() {
                let lock = format!("LOCK TABLE {} IN EXCLUSIVE MODE", names.join(", "));
                (&mut *conn).execute(lock.as_str()).await?;
            }
        }
    }
    Ok(())
}

/// Ends a transaction begun here: committed when `commit`, else rolled back.
pub async fn end(conn: &mut AnyConnection, commit: bool) -> Result<()> {
    let end = if commit { "COMMIT" } else { "ROLLBACK" };
    (&mut *conn).execute(end).await?;
    Ok(())
}

/// What a write to a fenced database fails with; the request path answers it with `503
/// tenant_unavailable` and `Retry-After`, so the client tries again and finds the new copy.
pub const FENCE_MESSAGE: &str = "silo: this tenant database has moved";

/// Makes every table of the database refuse writes from now on (triggers that fail with
/// [`FENCE_MESSAGE`]), inside the caller's transaction: the old copy of a moved tenant, so a
/// write that reaches it after the move cannot succeed there and be lost.
pub async fn fence(conn: &mut AnyConnection, dialect: Dialect) -> Result<()> {
    // A fence an earlier, interrupted move left is replaced.
    unfence(conn, dialect).await?;
    let tables = shapes(conn, dialect).await?;
    if dialect == Dialect::Postgres {
        let function = format!(
            "CREATE FUNCTION silo_fence() RETURNS trigger LANGUAGE plpgsql AS
             $fence$ BEGIN RAISE EXCEPTION '{FENCE_MESSAGE}' USING ERRCODE = '55000'; END $fence$"
        );
        (&mut *conn).execute(function.as_str()).await?;
    }
    for table in &tables {
        let name = identifier(&table.name)?;
        match dialect {
            Dialect::Postgres => {
                let trigger = format!(
                    "CREATE TRIGGER silo_fence BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {name}
                     FOR EACH STATEMENT EXECUTE FUNCTION silo_fence()"
                );
                (&mut *conn).execute(trigger.as_str()).await?;
            }
            Dialect::Sqlite => {
                for (operation, suffix) in FENCED {
                    let trigger = format!(
                        "CREATE TRIGGER {} BEFORE {operation} ON {name}
                         BEGIN SELECT RAISE(ABORT, '{FENCE_MESSAGE}'); END",
                        sqlite_fence(&table.name, suffix)?
                    );
                    (&mut *conn).execute(trigger.as_str()).await?;
                }
            }
        }
    }
    Ok(())
}

/// The statements a SQLite fence refuses, each with its trigger's suffix.
const FENCED: [(&str, &str); 3] = [("INSERT", "i"), ("UPDATE", "u"), ("DELETE", "d")];

fn sqlite_fence(table: &str, suffix: &str) -> Result<String> {
    identifier(&format!("silo_fence_{table}_{suffix}"))
}

/// Takes a [`fence`] down again, in the caller's transaction: a move that fenced the old
/// copy but could not point the registry at the new one leaves the tenant served from the old.
/// Nothing to take down is fine.
pub async fn unfence(conn: &mut AnyConnection, dialect: Dialect) -> Result<()> {
    for table in shapes(conn, dialect).await? {
        match dialect {
            Dialect::Postgres => {
                let drop = format!(
                    "DROP TRIGGER IF EXISTS silo_fence ON {}",
                    identifier(&table.name)?
                );
                (&mut *conn).execute(drop.as_str()).await?;
            }
            Dialect::Sqlite => {
                for (_, suffix) in FENCED {
                    let drop = format!(
                        "DROP TRIGGER IF EXISTS {}",
                        sqlite_fence(&table.name, suffix)?
                    );
                    (&mut *conn).execute(drop.as_str()).await?;
                }
            }
        }
    }
    if dialect == Dialect::Postgres {
        (&mut *conn)
            .execute("DROP FUNCTION IF EXISTS silo_fence()")
            .await?;
    }
    Ok(())
}

/// Replaces the whole contents of the database on `conn` with `tables`, inside the caller's
/// transaction, and reads it back to check it holds exactly them.
///
/// Every table of the database is emptied (children first), then each snapshot table is
/// filled (parents first), by column name: a snapshot taken at an older schema loads into a
/// newer one whose added columns have defaults. A table or column the database does not have,
/// or of another kind, is refused (`400 bad_request`) and the caller's transaction is to be
/// rolled back.
pub async fn load(conn: &mut AnyConnection, dialect: Dialect, tables: &[Table]) -> Result<()> {
    let mut have = shapes(conn, dialect).await?;
    for table in tables {
        let Some(target) = have.iter().find(|t| t.name == table.name) else {
            return Err(Error::BadRequest(format!(
                "the snapshot has a table {:?} that this tenant schema does not",
                table.name
            )));
        };
        for (at, column) in table.columns.iter().enumerate() {
            let Some(own) = target.columns.iter().find(|c| c.name == column.name) else {
                return Err(Error::BadRequest(format!(
                    "the snapshot has a column {}.{} that this tenant schema does not",
                    table.name, column.name
                )));
            };
            if own.kind != column.kind {
                return Err(Error::BadRequest(format!(
                    "column {}.{} is {} in the snapshot, {} in this tenant schema",
                    table.name,
                    column.name,
                    column.kind.as_str(),
                    own.kind.as_str()
                )));
            }
            if table.columns[..at].iter().any(|c| c.name == column.name) {
                return Err(Error::BadRequest(format!(
                    "column {}.{} is in the snapshot twice",
                    table.name, column.name
                )));
            }
        }
    }
    for table in have.iter().rev() {
        let statement = format!("DELETE FROM {}", identifier(&table.name)?);
        (&mut *conn).execute(statement.as_str()).await?;
    }
    for target in &have {
        if let Some(table) = tables.iter().find(|t| t.name == target.name) {
            insert(conn, table).await?;
        }
    }
    // Read back: every table holds what the snapshot says, and only that.
    for target in &mut have {
        read_rows(conn, dialect, target).await?;
        let expected = tables.iter().find(|t| t.name == target.name);
        let matches = match expected {
            Some(expected) => {
                let mut loaded = target.clone();
                // Compared on the snapshot's columns: the database may have more.
                let positions: Vec<usize> = expected
                    .columns
                    .iter()
                    .filter_map(|c| target.columns.iter().position(|t| t.name == c.name))
                    .collect();
                loaded.columns = expected.columns.clone();
                loaded.rows = target
                    .rows
                    .iter()
                    .map(|row| positions.iter().map(|&i| row[i].clone()).collect())
                    .collect();
                loaded.digest() == expected.digest()
            }
            None => target.rows.is_empty(),
        };
        if !matches {
            return Err(Error::Internal(anyhow::anyhow!(
                "table {} does not hold what was loaded into it",
                target.name
            )));
        }
    }
    Ok(())
}

/// Replaces the database's contents with `tables` in one transaction of its own on a
/// control connection (see [`load`]): all of it, or on any failure nothing.
pub async fn replace(pool: &sqlx::AnyPool, dialect: Dialect, tables: &[Table]) -> Result<()> {
    let mut conn = pool.acquire().await?;
    // SQLite checks foreign keys at the commit, so the tables' order does not matter there;
    // PostgreSQL's are checked at once, in the order the schema made the tables.
    let begin = match dialect {
        Dialect::Sqlite => "BEGIN IMMEDIATE; PRAGMA defer_foreign_keys = ON",
        Dialect::Postgres => "BEGIN",
    };
    (&mut *conn).execute(begin).await?;
    let loaded = load(&mut conn, dialect, tables).await;
    let ended = end(&mut conn, loaded.is_ok()).await;
    loaded?;
    ended
}

/// Reads the whole database in one snapshot on a control connection (see [`begin_read`]).
pub async fn take(pool: &sqlx::AnyPool, dialect: Dialect) -> Result<Vec<Table>> {
    let mut conn = pool.acquire().await?;
    begin_read(&mut conn, dialect).await?;
    let tables = read(&mut conn, dialect).await;
    let ended = end(&mut conn, false).await;
    let tables = tables?;
    ended.map(|()| tables)
}

/// Tables whose rows are bearer secrets of the tenant they were made in (sessions, API
/// tokens, invitations): a copy that becomes another tenant starts without them, so a token of
/// one tenant never opens another.
pub const BEARER_TABLES: [&str; 3] = ["refresh_tokens", "api_tokens", "invitations"];

/// `tables` without the rows of [`BEARER_TABLES`].
pub fn without_bearer_secrets(mut tables: Vec<Table>) -> Vec<Table> {
    for table in &mut tables {
        if BEARER_TABLES.contains(&table.name.as_str()) {
            table.rows.clear();
        }
    }
    tables
}

/// Rows in all of `tables`.
pub fn row_count(tables: &[Table]) -> usize {
    tables.iter().map(|t| t.rows.len()).sum()
}

/// Rows a statement inserts at once: well within both backends' limits on parameters.
const PARAMETERS_PER_STATEMENT: usize = 900;

async fn insert(conn: &mut AnyConnection, table: &Table) -> Result<()> {
    if table.rows.is_empty() || table.columns.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = table
        .columns
        .iter()
        .map(|c| identifier(&c.name))
        .collect::<Result<_>>()?;
    let width = table.columns.len();
    let per_statement = (PARAMETERS_PER_STATEMENT / width).max(1);
    for chunk in table.rows.chunks(per_statement) {
        let mut values = Vec::with_capacity(chunk.len());
        for (r, _) in chunk.iter().enumerate() {
            let row: Vec<String> = (0..width)
                .map(|c| format!("${}", r * width + c + 1))
                .collect();
            values.push(format!("({})", row.join(", ")));
        }
        let statement = format!(
            "INSERT INTO {} ({}) VALUES {}",
            identifier(&table.name)?,
            names.join(", "),
            values.join(", ")
        );
        let mut query = sqlx::query(&statement);
        for row in chunk {
            if row.len() != width {
                return Err(Error::BadRequest(format!(
                    "a row of table {} has {} values for {width} columns",
                    table.name,
                    row.len()
                )));
            }
            for (value, column) in row.iter().zip(&table.columns) {
                query = match (value, column.kind) {
                    (Value::Null, Kind::Text) => query.bind(None::<String>),
                    (Value::Null, Kind::Integer) => query.bind(None::<i64>),
                    (Value::String(text), Kind::Text) => query.bind(text.clone()),
                    (Value::Number(number), Kind::Integer) if number.is_i64() => {
                        query.bind(number.as_i64())
                    }
                    _ => {
                        return Err(Error::BadRequest(format!(
                            "a value of {}.{} is not {}",
                            table.name,
                            column.name,
                            column.kind.as_str()
                        )))
                    }
                };
            }
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: Vec<Vec<Value>>) -> Table {
        Table {
            name: "users".into(),
            columns: vec![
                Column {
                    name: "id".into(),
                    kind: Kind::Text,
                },
                Column {
                    name: "n".into(),
                    kind: Kind::Integer,
                },
            ],
            rows,
        }
    }

    #[test]
    fn a_digest_ignores_row_order_and_sees_every_value() {
        let a = table(vec![
            vec!["a".into(), 1.into()],
            vec!["b".into(), Value::Null],
        ]);
        let b = table(vec![
            vec!["b".into(), Value::Null],
            vec!["a".into(), 1.into()],
        ]);
        let c = table(vec![vec!["b".into(), 0.into()], vec!["a".into(), 1.into()]]);
        assert_eq!(a.digest(), b.digest());
        assert_ne!(a.digest(), c.digest());
    }

    #[test]
    fn only_plain_names_become_identifiers() {
        assert_eq!(identifier("api_tokens").unwrap(), "\"api_tokens\"");
        for bad in [
            "",
            "Users",
            "a\"b",
            "a; DROP TABLE users",
            "a b",
            &"x".repeat(64),
        ] {
            assert!(identifier(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn column_types_map_to_the_portable_kinds() {
        assert_eq!(kind_of(Dialect::Sqlite, "BIGINT"), Some(Kind::Integer));
        assert_eq!(kind_of(Dialect::Sqlite, "TEXT"), Some(Kind::Text));
        assert_eq!(kind_of(Dialect::Sqlite, "BLOB"), None);
        assert_eq!(kind_of(Dialect::Postgres, "bigint"), Some(Kind::Integer));
        assert_eq!(kind_of(Dialect::Postgres, "text"), Some(Kind::Text));
        assert_eq!(kind_of(Dialect::Postgres, "boolean"), None);
    }
}
