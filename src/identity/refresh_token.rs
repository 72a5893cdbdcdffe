//! Refresh tokens: random, stored as SHA-256, rotated on every use. Each login starts a family;
//! presenting a token that was already spent is reuse (it was stolen, or the client is broken),
//! and revokes the whole family.

use crate::sql::{self, Executor, TenantConn};

use super::secret_token::{self, hash};
use crate::{
    clock,
    error::{Error, Result},
};

pub struct RefreshTokens {
    ttl_ms: i64,
}

const REJECTED: Error = Error::Unauthorized("the refresh token is invalid, expired or revoked");

impl RefreshTokens {
    pub fn new(ttl_secs: u64) -> Self {
        Self {
            ttl_ms: ttl_secs as i64 * 1000,
        }
    }

    /// Starts a new family for `user_id` (a sign-in) and returns the raw token.
    pub async fn start(&self, conn: &mut TenantConn, user_id: &str) -> Result<String> {
        let family = uuid::Uuid::now_v7().to_string();
        self.insert(conn, user_id, &family).await
    }

    /// Spends `raw` and returns (user id, next token). A spent or revoked token revokes its
    /// family; an unknown or expired one is refused. The spend is the first statement, so the
    /// transaction takes the write lock at once and two concurrent uses cannot both win.
    pub async fn rotate(&self, conn: &mut TenantConn, raw: &str) -> Result<(String, String)> {
        let hash = hash(raw);
        let now = clock::now_ms();
        let mut tx = conn.begin().await?;
        let spent = sql::query(
            "UPDATE refresh_tokens SET spent_at = $1
             WHERE token_hash = $2 AND spent_at IS NULL AND revoked_at IS NULL AND expires_at > $1
             RETURNING family_id, user_id",
        )
        .bind(now)
        .bind(&hash)
        .fetch_optional(&mut tx)
        .await?;
        let Some(row) = spent else {
            let reused = sql::query(
                "SELECT family_id FROM refresh_tokens
                 WHERE token_hash = $1 AND (spent_at IS NOT NULL OR revoked_at IS NOT NULL)",
            )
            .bind(&hash)
            .fetch_optional(&mut tx)
            .await?;
            if let Some(reused) = reused {
                let family: String = reused.try_get("family_id")?;
                revoke_family(&mut tx, &family, now).await?;
                tx.commit().await?;
                tracing::warn!("refresh token reuse detected; the session family is revoked");
            }
            return Err(REJECTED);
        };
        let family: String = row.try_get("family_id")?;
        let user_id: String = row.try_get("user_id")?;
        let next = self.insert(&mut tx, &user_id, &family).await?;
        tx.commit().await?;
        Ok((user_id, next))
    }

    /// Revokes the family of `raw` (logout). Refused when the token is unknown here.
    pub async fn revoke(&self, conn: &mut TenantConn, raw: &str) -> Result<()> {
        let mut tx = conn.begin().await?;
        let found = sql::query("SELECT family_id FROM refresh_tokens WHERE token_hash = $1")
            .bind(hash(raw))
            .fetch_optional(&mut tx)
            .await?;
        let family: String = found.ok_or(REJECTED)?.try_get("family_id")?;
        revoke_family(&mut tx, &family, clock::now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert(
        &self,
        conn: &mut impl Executor,
        user_id: &str,
        family: &str,
    ) -> Result<String> {
        let raw = secret_token::generate("rt_");
        let now = clock::now_ms();
        sql::query(
            "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(family)
        .bind(user_id)
        .bind(hash(&raw))
        .bind(now + self.ttl_ms)
        .bind(now)
        .execute(conn)
        .await?;
        Ok(raw)
    }
}

async fn revoke_family(conn: &mut impl Executor, family: &str, now: i64) -> Result<()> {
    sql::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(family)
    .execute(conn)
    .await?;
    Ok(())
}
