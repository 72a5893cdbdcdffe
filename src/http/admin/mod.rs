//! The admin API (`/admin/v1`, its own listener): operators' front end over `control/`.
//! Every call needs `Authorization: Bearer <admin.token>`, compared in constant time.

mod backups;
mod export;
mod keys;
mod migrations;
mod support;
mod tenants;
mod usage;
mod webhooks;

use axum::{
    extract::{Request, State},
    http::request::Parts,
    middleware::Next,
    response::{IntoResponse, Response},
};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa_axum::router::OpenApiRouter;

use crate::{error::Error, http::bearer, state::AppState, tenant::Slug};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(tenants::router())
        .merge(backups::router())
        .merge(export::router())
        .merge(support::router())
        .merge(migrations::router())
        .merge(usage::router())
        .merge(webhooks::router())
        .merge(keys::router())
}

/// Guards every admin path, unknown ones included, so the admin API reveals nothing unauthenticated.
pub async fn require_admin_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    if !token_matches(&parts, state.settings.admin.token.expose_secret()) {
        return Error::Unauthorized("a valid admin token is required").into_response();
    }
    // A request about one tenant names it in its log lines, as on the main listener.
    let named = parts
        .uri
        .path()
        .strip_prefix("/admin/v1/tenants/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|slug| Slug::parse_shape(slug).ok());
    if let Some(slug) = named {
        tracing::Span::current().record("tenant", slug.as_str());
    }
    next.run(Request::from_parts(parts, body)).await
}

/// Compares digests, so neither the content nor the length of the token leaks through timing.
fn token_matches(parts: &Parts, expected: &str) -> bool {
    let Some(given) = bearer(parts) else {
        return false;
    };
    !expected.is_empty()
        && bool::from(Sha256::digest(given.as_bytes()).ct_eq(&Sha256::digest(expected.as_bytes())))
}
