//! Invitations: an admin invites an email with a role; the token works once, only in the
//! tenant that issued it (it exists in no other database), until it expires.

use crate::sql::{self, TenantConn};
use serde::Serialize;

use super::{secret_token, Email, NewUser, Role, User};
use crate::{
    clock,
    error::{Error, Result},
};

/// How long an invitation stays valid.
pub const INVITATION_TTL_MS: i64 = 7 * 86_400_000;

/// An invitation is only as good as its inviter's standing now: removing or demoting an admin
/// voids the invitations they sent (an owner invitation needs an owner).
const INVITER_STILL_RANKS: &str =
    "EXISTS (SELECT 1 FROM users u WHERE u.id = invitations.invited_by
    AND (u.role = 'owner' OR (u.role = 'admin' AND invitations.role <> 'owner')))";

const REJECTED: Error = Error::Unauthorized("the invitation is invalid, expired or already used");

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Invitation {
    pub id: String,
    pub email: String,
    pub role: Role,
    #[serde(serialize_with = "clock::as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: i64,
}

impl Invitation {
    /// Creates an invitation; returns it and the raw token (shown once).
    pub async fn create(
        conn: &mut TenantConn,
        email: &Email,
        role: Role,
        invited_by: &str,
    ) -> Result<(Invitation, String)> {
        let raw = secret_token::generate("inv_");
        let now = clock::now_ms();
        let invitation = Invitation {
            id: uuid::Uuid::now_v7().to_string(),
            email: email.as_str().to_owned(),
            role,
            expires_at: now + INVITATION_TTL_MS,
        };
        sql::query(
            "INSERT INTO invitations (id, email, role, token_hash, invited_by, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&invitation.id)
        .bind(&invitation.email)
        .bind(role.as_str())
        .bind(secret_token::hash(&raw))
        .bind(invited_by)
        .bind(invitation.expires_at)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok((invitation, raw))
    }

    /// The open invitation behind `raw`, checked before the (slow) password hash is made.
    pub async fn find_open(conn: &mut TenantConn, raw: &str) -> Result<Invitation> {
        let row = sql::query(&format!(
            "SELECT id, email, role, expires_at FROM invitations
             WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2 AND {INVITER_STILL_RANKS}"
        ))
        .bind(secret_token::hash(raw))
        .bind(clock::now_ms())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(REJECTED)?;
        let role: String = row.try_get("role")?;
        Ok(Invitation {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            role: role
                .parse()
                .map_err(|_| anyhow::anyhow!("invitation row has an unknown role"))?,
            expires_at: row.try_get("expires_at")?,
        })
    }

    /// Spends the invitation and creates its account in one transaction: the token works
    /// once even under concurrent use, and an email taken meanwhile (`409`) or a plan's
    /// `max_users` reached (`403`) leaves it unspent.
    pub async fn accept(
        conn: &mut TenantConn,
        raw: &str,
        name: &str,
        password_hash: &str,
        max_users: Option<u64>,
    ) -> Result<User> {
        let mut tx = conn.begin().await?;
        let accepted = async {
            let row = sql::query(&format!(
                "UPDATE invitations SET accepted_at = $1
                 WHERE token_hash = $2 AND accepted_at IS NULL AND expires_at > $1 AND {INVITER_STILL_RANKS}
                 RETURNING email, role"
            ))
            .bind(clock::now_ms())
            .bind(secret_token::hash(raw))
            .fetch_optional(&mut tx)
            .await?
            .ok_or(REJECTED)?;
            let email: String = row.try_get("email")?;
            let role: String = row.try_get("role")?;
            let email = Email::parse(&email)
                .map_err(|_| anyhow::anyhow!("invitation row has an invalid email"))?;
            let role: Role = role
                .parse()
                .map_err(|_| anyhow::anyhow!("invitation row has an unknown role"))?;
            crate::usage::ensure_room_within(&mut tx, max_users, crate::usage::Counted::Users)
                .await?;
            User::create(
                &mut tx,
                NewUser {
                    email: &email,
                    name,
                    password_hash,
                    role,
                },
            )
            .await
        }
        .await;
        // Rolled back at once on a failure: the invitation's row lock and the quota's lock go
        // with the transaction.
        tx.finish(accepted).await
    }
}
