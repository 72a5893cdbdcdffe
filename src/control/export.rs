//! A tenant's data as JSON lines, for a customer who leaves (`GET /admin/v1/tenants/{slug}/export`,
//! `silo tenant export`): one header line, then one line per row of each table, read in one
//! consistent snapshot of the tenant's database.
//!
//! What is exported is listed here, table by table and column by column, rather than read from
//! the database: a column added later (by a migration, or by an operator's own) is not
//! exported until it is listed, so nothing secret leaves by accident. Credentials never leave:
//! no password hash, no token hash, and no refresh tokens at all.

use serde_json::{json, Map, Value};

use super::lifecycle;
use crate::{
    audit::{self, Actor},
    clock,
    error::{Error, Result},
    sql::{self, Executor, TenantConn},
    state::AppState,
    tenant::Status,
};

/// The header's `format`, for whoever reads an export back.
pub const FORMAT: &str = "silo.tenant-export";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Int,
}

use Kind::{Int, Text};

/// Every exported table, its columns and their kinds, in the order they are written.
const TABLES: &[(&str, &[(&str, Kind)])] = &[
    ("settings", &[("key", Text), ("value", Text)]),
    (
        "users",
        &[
            ("id", Text),
            ("email", Text),
            ("name", Text),
            ("role", Text),
            ("created_at", Int),
            ("updated_at", Int),
        ],
    ),
    (
        "projects",
        &[
            ("id", Text),
            ("name", Text),
            ("description", Text),
            ("owner_id", Text),
            ("created_at", Int),
            ("updated_at", Int),
        ],
    ),
    (
        "invitations",
        &[
            ("id", Text),
            ("email", Text),
            ("role", Text),
            ("invited_by", Text),
            ("expires_at", Int),
            ("accepted_at", Int),
            ("created_at", Int),
        ],
    ),
    (
        "api_tokens",
        &[
            ("id", Text),
            ("user_id", Text),
            ("name", Text),
            ("scopes", Text),
            ("expires_at", Int),
            ("last_used_at", Int),
            ("revoked_at", Int),
            ("created_at", Int),
        ],
    ),
    (
        "audit_log",
        &[
            ("id", Text),
            ("action", Text),
            ("actor_kind", Text),
            ("actor_id", Text),
            ("target", Text),
            ("details", Text),
            ("created_at", Int),
        ],
    ),
];

/// The export of tenant `slug`: its lines, each a JSON object, without their newlines. The
/// export is itself recorded in the tenant's audit log (after the snapshot, so it is not in it).
pub async fn export(state: &AppState, slug: &str) -> Result<Vec<String>> {
    let tenant = lifecycle::find(state, slug).await?;
    if matches!(
        tenant.status,
        Status::Provisioning | Status::Deleting | Status::Migrating
    ) {
        return Err(Error::Conflict(format!(
            "the tenant is {}; try again once it is not",
            tenant.status
        )));
    }
    let mut conn = state.pools.get(&tenant).await?.acquire().await?;
    let header = json!({
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "tenant": {
            "id": tenant.id.to_string(),
            "slug": tenant.slug.to_string(),
            "name": tenant.name,
            "plan": tenant.plan,
            "schema_version": tenant.schema_version,
        },
        "exported_at": clock::rfc3339(clock::now_ms()),
    });
    let mut lines = vec![header.to_string()];
    read_snapshot(&mut conn, &mut lines).await?;
    let rows = lines.len() - 1;
    audit::record(
        &mut conn,
        "tenant.exported",
        Actor::Operator,
        None,
        json!({ "rows": rows }),
    )
    .await?;
    tracing::info!(tenant = %tenant.slug, rows, "tenant exported");
    Ok(lines)
}

/// Every table's rows in one read-only snapshot: a deferred transaction on SQLite (its
/// snapshot is taken at the first read and kept), `REPEATABLE READ` on PostgreSQL.
async fn read_snapshot(conn: &mut TenantConn, lines: &mut Vec<String>) -> Result<()> {
    if conn.as_server().is_some() {
        let mut tx = conn.begin().await?;
        sql::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut tx)
            .await?;
        // Dropped without a commit: rolled back, which is all a read needs.
        return read_tables(&mut tx, lines).await;
    }
    sql::query("BEGIN DEFERRED").execute(&mut *conn).await?;
    let read = read_tables(&mut *conn, lines).await;
    let ended = sql::query("ROLLBACK").execute(&mut *conn).await;
    read?;
    ended.map(drop)
}

async fn read_tables(mut executor: impl Executor, lines: &mut Vec<String>) -> Result<()> {
    for (table, columns) in TABLES {
        let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        // Names from the list above, never from input.
        let statement = format!(
            "SELECT {} FROM {table} ORDER BY {}",
            names.join(", "),
            names[0]
        );
        for row in sql::query(&statement).fetch_all(&mut executor).await? {
            let mut fields = Map::new();
            for (name, kind) in columns.iter() {
                let value = match kind {
                    Text => row.try_get::<Option<String>>(name)?.map(Value::from),
                    Int => row.try_get::<Option<i64>>(name)?.map(Value::from),
                };
                fields.insert((*name).to_owned(), value.unwrap_or(Value::Null));
            }
            lines.push(json!({ "table": table, "row": fields }).to_string());
        }
    }
    Ok(())
}
