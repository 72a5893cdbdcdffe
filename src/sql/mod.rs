//! Statements against a tenant's own database, on either backend.
//!
//! SQLite tenants (the embedded default) run their statements through rusqlite on the caller's
//! thread; PostgreSQL tenants through sqlx. sqlx's SQLite driver gives every connection its own
//! OS thread and hands each statement over to it, which made spreading requests over many
//! tenants cost twice what one hot tenant costs (BENCHMARKS.md, "(b)/(a)"). Both speak the same
//! portable SQL with `$1` placeholders, so the request path writes each statement once:
//!
//! ```text
//! let row = sql::query("SELECT name FROM users WHERE id = $1")
//!     .bind(id)
//!     .fetch_optional(&mut *conn)
//!     .await?;
//! ```
//!
//! Migrations and provisioning stay on sqlx (`schema`, `control`).

mod conn;
mod local;
mod query;
mod row;
mod value;

pub use conn::{Executor, Target, TenantConn, Transaction};
pub use local::{is_busy, LocalConn, BUSY_WAIT};
pub use query::{query, Query};
pub use row::{Column, Row};
pub use value::Value;

#[cfg(test)]
mod tests;
