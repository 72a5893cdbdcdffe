//! `POST /admin/v1/tenants/{slug}/support-sessions` and `GET .../stats`.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
    Router,
};
use serde::Deserialize;

use crate::{
    control::{self, SupportRequest, SupportSession, TenantStats},
    error::Result,
    http::extract::Json,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/v1/tenants/{slug}/support-sessions",
            post(create_support_session),
        )
        .route("/admin/v1/tenants/{slug}/stats", get(get_stats))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSupportSession {
    email: String,
    reason: String,
    ttl_secs: Option<u64>,
}

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

async fn get_stats(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<TenantStats>> {
    Ok(Json(control::stats(&state, &slug).await?))
}
