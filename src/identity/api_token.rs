//! API tokens: `sk_` + 32 random bytes, shown once, stored as SHA-256, with scopes and an
//! optional expiry. `last_used_at` is written at most once a minute per token, so using a
//! token does not cost a write on every request.

use crate::sql::{self, Row, TenantConn};
use dashmap::DashMap;
use serde::Serialize;

use super::{secret_token, Scope, User};
use crate::{
    clock,
    error::{Error, Result},
};

/// How often `last_used_at` is refreshed, at most.
const TOUCH_EVERY_MS: i64 = 60_000;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiToken {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    #[serde(serialize_with = "clock::as_rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub expires_at: Option<i64>,
    #[serde(serialize_with = "clock::as_rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub last_used_at: Option<i64>,
    #[serde(serialize_with = "clock::as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// API token operations, with the per-process memory of recent `last_used_at` writes.
#[derive(Default)]
pub struct ApiTokens {
    last_touch: DashMap<String, i64>,
}

const COLUMNS: &str =
    "t.id, t.user_id, t.name, t.scopes, t.expires_at, t.last_used_at, t.created_at";

impl ApiTokens {
    /// Creates a token for `user_id`; returns it and the raw secret (shown once).
    pub async fn create(
        &self,
        conn: &mut TenantConn,
        user_id: &str,
        name: &str,
        scopes: &[Scope],
        expires_in_days: Option<u32>,
    ) -> Result<(ApiToken, String)> {
        let raw = secret_token::generate("sk_");
        let now = clock::now_ms();
        let token = ApiToken {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user_id.to_owned(),
            name: name.to_owned(),
            scopes: scopes.to_vec(),
            expires_at: expires_in_days.map(|days| now + i64::from(days) * 86_400_000),
            last_used_at: None,
            created_at: now,
        };
        sql::query(
            "INSERT INTO api_tokens (id, user_id, name, scopes, token_hash, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&token.id)
        .bind(&token.user_id)
        .bind(&token.name)
        .bind(Scope::join(scopes))
        .bind(secret_token::hash(&raw))
        .bind(token.expires_at)
        .bind(token.created_at)
        .execute(&mut *conn)
        .await?;
        Ok((token, raw))
    }

    /// The token and its user, if `raw` is a live token of this tenant: one indexed join.
    pub async fn authenticate(&self, conn: &mut TenantConn, raw: &str) -> Result<(ApiToken, User)> {
        let now = clock::now_ms();
        let row = sql::query(&format!(
            "SELECT {COLUMNS}, u.email, u.name AS user_name, u.role, u.created_at AS user_created_at
             FROM api_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)"
        ))
        .bind(secret_token::hash(raw))
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(Error::Unauthorized("the API token is invalid, expired or revoked"))?;
        let mut token = from_row(&row)?;
        let role: String = row.try_get("role")?;
        let user = User {
            id: token.user_id.clone(),
            email: row.try_get("email")?,
            name: row.try_get("user_name")?,
            role: role
                .parse()
                .map_err(|_| anyhow::anyhow!("user row has an unknown role"))?,
            created_at: row.try_get("user_created_at")?,
        };
        if self.should_touch(&token, now) {
            // Best effort: a request (a read, often) never waits for the tenant's writers to
            // record a use; a touch skipped here is made by a use a minute later.
            let touched = sql::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&token.id)
                .without_waiting()
                .execute(&mut *conn)
                .await;
            match touched {
                Ok(_) => token.last_used_at = Some(now),
                Err(Error::TenantUnavailable { .. }) => {
                    tracing::debug!(token = %token.id, "last use not recorded: the tenant's database is busy");
                }
                Err(other) => return Err(other),
            }
        }
        Ok((token, user))
    }

    fn should_touch(&self, token: &ApiToken, now: i64) -> bool {
        let stored_recently = token
            .last_used_at
            .is_some_and(|at| now - at < TOUCH_EVERY_MS);
        let mut touched = self.last_touch.entry(token.id.clone()).or_insert(i64::MIN);
        if stored_recently || now.saturating_sub(*touched) < TOUCH_EVERY_MS {
            return false;
        }
        *touched = now;
        true
    }

    /// Live tokens, newest first; only `user_id`'s when given.
    pub async fn list(
        &self,
        conn: &mut TenantConn,
        user_id: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ApiToken>> {
        let rows = sql::query(&format!(
            "SELECT {COLUMNS} FROM api_tokens t
             WHERE t.revoked_at IS NULL AND ($1 = '' OR t.user_id = $1) AND ($2 = '' OR t.id < $2)
             ORDER BY t.id DESC LIMIT $3"
        ))
        .bind(user_id.unwrap_or_default())
        .bind(after.unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Revokes a live token (only `user_id`'s when given); false when there is none.
    pub async fn revoke(
        &self,
        conn: &mut TenantConn,
        id: &str,
        user_id: Option<&str>,
    ) -> Result<bool> {
        let done = sql::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL AND ($3 = '' OR user_id = $3)",
        )
        .bind(clock::now_ms())
        .bind(id)
        .bind(user_id.unwrap_or_default())
        .execute(&mut *conn)
        .await?;
        self.last_touch.remove(id);
        Ok(done > 0)
    }
}

fn from_row(row: &Row) -> Result<ApiToken> {
    let scopes: String = row.try_get("scopes")?;
    Ok(ApiToken {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        scopes: Scope::parse_stored(&scopes),
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
        created_at: row.try_get("created_at")?,
    })
}
