//! `CurrentUser`: who is signed in to the resolved tenant, by access token or API token,
//! checked against the tenant's own database on every request.

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts},
};

use super::TenantDb;
use crate::{
    audit::Actor,
    error::Error,
    identity::{ApiToken, Role, Scope, User},
    state::AppState,
};

/// The signed-in user of the resolved tenant, checked against the tenant database on every
/// request, so removal and role changes take effect at once.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub credential: Credential,
}

/// How the user proved who they are.
#[derive(Debug, Clone)]
pub enum Credential {
    /// An access token (JWT) from a sign-in, a refresh or a support session.
    AccessToken,
    /// An API token: limited to its scopes, and never beyond the user's role.
    ApiToken(ApiToken),
}

impl CurrentUser {
    /// For endpoints no scope names: an access token with at least `required`. API tokens are
    /// refused, since each scope allows only what it names.
    pub fn require(&self, required: Role) -> Result<&User, Error> {
        if let Credential::ApiToken(_) = self.credential {
            return Err(Error::Forbidden(
                "API tokens cannot use this endpoint".into(),
            ));
        }
        self.require_role(required)
    }

    /// For endpoints a scope names: at least `required`, and `scope` when it is an API token.
    pub fn require_scoped(&self, required: Role, scope: Scope) -> Result<&User, Error> {
        if let Credential::ApiToken(token) = &self.credential {
            if !token.scopes.contains(&scope) {
                return Err(Error::Forbidden(format!(
                    "this API token lacks the {scope} scope"
                )));
            }
        }
        self.require_role(required)
    }

    fn require_role(&self, required: Role) -> Result<&User, Error> {
        if self.user.role.at_least(required) {
            Ok(&self.user)
        } else {
            Err(Error::Forbidden(format!(
                "this needs the {required} role or higher"
            )))
        }
    }

    /// Who this is, for the audit log.
    pub fn actor(&self) -> Actor<'_> {
        match &self.credential {
            Credential::AccessToken => Actor::User(&self.user.id),
            Credential::ApiToken(token) => Actor::ApiToken {
                user: &self.user.id,
                token: &token.id,
            },
        }
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let db = TenantDb::from_request_parts(parts, state).await?;
        let token = bearer(parts).ok_or(Error::Unauthorized("a bearer token is required"))?;
        if token.starts_with("sk_") {
            let (api_token, user) = state
                .api_tokens
                .authenticate(&mut *db.conn().await?, token)
                .await?;
            release_before_body(&db, parts).await;
            return Ok(CurrentUser {
                user,
                credential: Credential::ApiToken(api_token),
            });
        }
        let claims = state.access_tokens.verify(&db.tenant, token)?;
        let user = User::by_id(&mut *db.conn().await?, &claims.sub)
            .await?
            .ok_or(Error::Unauthorized("this account no longer exists"))?;
        release_before_body(&db, parts).await;
        Ok(CurrentUser {
            user,
            credential: Credential::AccessToken,
        })
    }
}

/// The body is read after the user check (axum reads it last), and a client may send it as
/// slowly as the request timeout allows: the request's connection goes back to the pool
/// meanwhile, so slow uploads cannot hold all of a tenant's connections. Requests without a
/// body (most reads) keep it for the handler.
async fn release_before_body(db: &TenantDb, parts: &Parts) {
    let has_body = parts.headers.contains_key(header::TRANSFER_ENCODING)
        || parts
            .headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0");
    if has_body {
        db.release().await;
    }
}

/// The token of `Authorization: Bearer <token>`, if well-formed.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
