//! `POST /admin/v1/tenants/{slug}/support-sessions` and `GET .../stats`.

use crate::http::fields;
use axum::{extract::State, http::StatusCode};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    control::{self, SupportRequest, SupportSession, TenantStats},
    error::{ErrorBody, Result},
    http::extract::{Json, Path},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_support_session))
        .routes(routes!(get_stats))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateSupportSession {
    /// The user's email in this tenant.
    #[schema(schema_with = fields::email)]
    email: String,
    #[schema(schema_with = fields::reason)]
    reason: String,
    /// Lifetime in seconds, 1 to 3600; absent or null: 900.
    #[schema(minimum = 1, maximum = 3600)]
    ttl_secs: Option<u64>,
}

/// Mint a short-lived access token for a user of the tenant, recorded in the tenant's audit log.
#[utoipa::path(post, path = "/admin/v1/tenants/{slug}/support-sessions", tag = "support", params(("slug" = String, Path, description = "Tenant slug")), request_body = CreateSupportSession, responses(
    (status = 201, description = "The support session", body = SupportSession),
    (status = 404, description = "No such tenant or user", body = ErrorBody),
    (status = 422, description = "Bad email, reason or ttl_secs", body = ErrorBody)))]
async fn create_support_session(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Json(body): Json<CreateSupportSession>,
) -> Result<(StatusCode, Json<SupportSession>)> {
    let request = SupportRequest {
        email: body.email,
        reason: body.reason,
        ttl_secs: body.ttl_secs,
    };
    Ok((
        StatusCode::CREATED,
        Json(control::support_session(&state, &slug, request).await?),
    ))
}

/// Requests served, users, projects, database size and open connections of a tenant; the
/// reading is kept as the tenant's last measurement for the fleet view (`/admin/v1/usage`).
#[utoipa::path(get, path = "/admin/v1/tenants/{slug}/stats", tag = "tenants", params(("slug" = String, Path, description = "Tenant slug")), responses(
    (status = 200, description = "The stats", body = TenantStats),
    (status = 404, description = "No such tenant", body = ErrorBody)))]
async fn get_stats(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<TenantStats>> {
    Ok(Json(control::stats(&state, &slug).await?))
}
