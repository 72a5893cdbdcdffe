//! Support access: an operator mints a short-lived access token for one user of one tenant.
//! It is always written to that tenant's own audit log with the reason, so the tenant's admins
//! see every time someone from outside looked in.

use serde::Serialize;
use serde_json::json;

use super::lifecycle;
use crate::{
    audit::{self, Actor},
    clock,
    error::{Error, Result},
    identity::{Email, User},
    state::AppState,
    tenant::Status,
};

/// Default lifetime of a support token, and the most an operator may ask for.
const DEFAULT_TTL_SECS: u64 = 900;
pub const MAX_TTL_SECS: u64 = 3600;
/// Most characters in the reason written to the audit log.
pub const REASON_MAX: usize = 500;

#[derive(Debug, Clone)]
pub struct SupportRequest {
    pub email: String,
    pub reason: String,
    pub ttl_secs: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SupportSession {
    pub access_token: String,
    pub token_type: &'static str,
    #[schema(format = DateTime)]
    pub expires_at: String,
    pub user: User,
}

pub async fn support_session(
    state: &AppState,
    slug: &str,
    request: SupportRequest,
) -> Result<SupportSession> {
    let ttl = request.ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
    if !(1..=MAX_TTL_SECS).contains(&ttl) {
        return Err(Error::field(
            "ttl_secs",
            format!("must be from 1 to {MAX_TTL_SECS}"),
        ));
    }
    let reason = request.reason.trim();
    if reason.is_empty() || reason.chars().count() > REASON_MAX {
        return Err(Error::field("reason", "must be 1 to 500 characters"));
    }
    let email = Email::parse(&request.email).map_err(|m| Error::field("email", m))?;
    let tenant = lifecycle::find(state, slug).await?;
    if matches!(tenant.status, Status::Provisioning | Status::Deleting) {
        return Err(Error::Conflict(format!("the tenant is {}", tenant.status)));
    }
    let mut conn = state.pools.get(&tenant).await?.acquire().await?;
    let (user, _hash) = User::with_hash_by_email(&mut conn, &email)
        .await?
        .ok_or_else(|| Error::NotFound("no user with this email in this tenant".into()))?;
    let (access_token, claims) = state.access_tokens.issue(&tenant, &user, ttl)?;
    let expires_at = clock::rfc3339(claims.exp * 1000);
    let details = json!({ "reason": reason, "token_id": claims.jti, "expires_at": expires_at, "email": user.email });
    audit::record(
        &mut conn,
        "support_session.created",
        Actor::Operator,
        Some(&user.id),
        details,
    )
    .await?;
    tracing::info!(tenant = %tenant.slug, user = %user.id, token_id = %claims.jti, "support session created");
    Ok(SupportSession {
        access_token,
        token_type: "Bearer",
        expires_at,
        user,
    })
}
