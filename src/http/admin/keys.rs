//! `/admin/v1/.../keys`: rotate one tenant's keys, rotate the fleet onto the current master
//! key, and see where the fleet's credentials stand.

use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    control::{self, FleetReport, KeyStatus, KeysRotated},
    error::{ErrorBody, Result},
    http::extract::{Json, OptionalJson, Path},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(rotate_tenant_keys))
        .routes(routes!(rotate_fleet_keys))
        .routes(routes!(key_status))
}

/// Rotate a tenant's keys: its JWT key and its database role's password move to the next
/// version under the current master key. Tokens signed before stay valid until they expire.
#[utoipa::path(post, path = "/admin/v1/tenants/{slug}/rotate-keys", tag = "keys", params(("slug" = String, Path, description = "Tenant slug")), responses(
    (status = 200, description = "Rotated", body = KeysRotated),
    (status = 404, description = "No such tenant", body = ErrorBody),
    (status = 409, description = "The tenant is provisioning, migrating or being deleted, or another rotation came first", body = ErrorBody),
    (status = 503, description = "The tenant's database server is unavailable", body = ErrorBody)))]
async fn rotate_tenant_keys(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<KeysRotated>> {
    // Finished even if the client goes away: a run cut off would be taken up by the next.
    let rotated = state
        .background
        .run({
            let state = state.clone();
            async move { control::rotate_keys(&state, &slug).await }
        })
        .await??;
    Ok(Json(rotated))
}

#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RotateFleet {
    /// Tenants rotated at once, 1 to 64; absent or null: 4.
    #[schema(minimum = 1, maximum = 64)]
    concurrency: Option<usize>,
}

/// Move every tenant not on the current master key to it (`silo keys rotate`); answers once
/// the run is over. The body may be left out.
#[utoipa::path(post, path = "/admin/v1/keys/rotate", tag = "keys", request_body = Option<RotateFleet>, responses(
    (status = 200, description = "What the run did", body = FleetReport),
    (status = 422, description = "Bad concurrency", body = ErrorBody)))]
async fn rotate_fleet_keys(
    State(state): State<AppState>,
    OptionalJson(body): OptionalJson<RotateFleet>,
) -> Result<Json<FleetReport>> {
    let concurrency = body
        .concurrency
        .unwrap_or(control::DEFAULT_ROTATION_CONCURRENCY);
    let report = state
        .background
        .run({
            let state = state.clone();
            async move { control::rotate_fleet(&state, concurrency, |_| {}).await }
        })
        .await??;
    Ok(Json(report))
}

/// The current master key, the previous ones configured, and tenants by key.
#[utoipa::path(get, path = "/admin/v1/keys", tag = "keys", responses(
    (status = 200, description = "Where the fleet's credentials stand", body = KeyStatus)))]
async fn key_status(State(state): State<AppState>) -> Result<Json<KeyStatus>> {
    Ok(Json(control::key_status(&state).await?))
}
