//! The tenant's audit log, kept in the tenant's own database: who did what, and when. Both
//! paths write to it (sign-ins on the request path, suspension and support access on the
//! control path); admins of the tenant read it.

use crate::sql::{self, Row, TenantConn};
use serde::Serialize;
use serde_json::Value;

use crate::{clock, error::Result};

/// Who acted.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// A signed-in user of the tenant.
    User(&'a str),
    /// A user acting through one of their API tokens.
    ApiToken { user: &'a str, token: &'a str },
    /// An operator through the admin API or CLI.
    Operator,
    /// Someone not signed in (a failed sign-in, an invitation being accepted).
    Anonymous,
}

impl Actor<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Actor::User(_) => "user",
            Actor::ApiToken { .. } => "api_token",
            Actor::Operator => "operator",
            Actor::Anonymous => "anonymous",
        }
    }

    fn id(&self) -> Option<&str> {
        match self {
            Actor::User(id) | Actor::ApiToken { user: id, .. } => Some(id),
            Actor::Operator | Actor::Anonymous => None,
        }
    }
}

/// One entry as `GET /v1/audit` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: String,
    pub action: String,
    pub actor_kind: String,
    #[schema(required = true)]
    pub actor_id: Option<String>,
    #[schema(required = true)]
    pub target: Option<String>,
    pub details: Value,
    #[serde(serialize_with = "clock::as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// Appends an entry. `details` must never hold secrets: no passwords, no raw tokens.
pub async fn record(
    conn: &mut TenantConn,
    action: &str,
    actor: Actor<'_>,
    target: Option<&str>,
    mut details: Value,
) -> Result<()> {
    if let Actor::ApiToken { token, .. } = actor {
        details["api_token_id"] = Value::from(token);
    }
    sql::query(
        "INSERT INTO audit_log (id, action, actor_kind, actor_id, target, details, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(action)
    .bind(actor.kind())
    .bind(actor.id())
    .bind(target)
    .bind(details.to_string())
    .bind(clock::now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Like [`record`], for events whose loss must not fail the request (a failed sign-in):
/// a failure to write is logged instead.
pub async fn record_or_log(
    conn: &mut TenantConn,
    action: &str,
    actor: Actor<'_>,
    target: Option<&str>,
    details: Value,
) {
    if let Err(error) = record(conn, action, actor, target, details).await {
        tracing::error!(action, %error, "could not write to the audit log");
    }
}

/// What an operator did to a tenant, written to its audit log from the control path through
/// the tenant's pool; the operation stands if it cannot be written, and the failure is logged.
pub async fn note_operator_action(
    state: &crate::state::AppState,
    tenant: &crate::tenant::TenantRecord,
    action: &str,
    details: Value,
) {
    let conn = match state.pools.get(tenant).await {
        Ok(pool) => pool.acquire().await.map_err(crate::error::Error::from),
        Err(error) => Err(error),
    };
    match conn {
        Ok(mut conn) => record_or_log(&mut conn, action, Actor::Operator, None, details).await,
        Err(error) => {
            tracing::warn!(tenant = %tenant.slug, %error, action, "not written to the audit log")
        }
    }
}

/// Entries newest first, after the cursor `after`.
pub async fn list(
    conn: &mut TenantConn,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    let rows = sql::query(
        "SELECT id, action, actor_kind, actor_id, target, details, created_at FROM audit_log
         WHERE ($1 = '' OR id < $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(after.unwrap_or_default())
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}

fn from_row(row: &Row) -> Result<AuditEntry> {
    let details: String = row.try_get("details")?;
    Ok(AuditEntry {
        id: row.try_get("id")?,
        action: row.try_get("action")?,
        actor_kind: row.try_get("actor_kind")?,
        actor_id: row.try_get("actor_id")?,
        target: row.try_get("target")?,
        details: serde_json::from_str(&details).unwrap_or(Value::Null),
        created_at: row.try_get("created_at")?,
    })
}
