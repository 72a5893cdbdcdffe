//! `/admin/v1/migrations`: start a fan-out (it runs in the background), see where the fleet
//! stands, and look up a run.

use crate::http::fields;
use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    control::{self, FanoutOptions, MigrationStatus},
    error::{ErrorBody, Result},
    http::extract::{Json, OptionalJson, Path},
    registry::FanoutRun,
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_migration))
        .routes(routes!(migration_status))
        .routes(routes!(get_migration))
}

#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct StartMigration {
    /// Batches of tenants migrated at once on each server, 1 to 64; absent or null: 4.
    #[schema(minimum = 1, maximum = 64)]
    concurrency: Option<usize>,
    /// A target group of slugs (a canary); absent or null: every tenant.
    #[schema(schema_with = fields::optional_slugs)]
    tenants: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
struct StartedRun {
    id: String,
}

/// Start a migration fan-out; it runs in the background. The body may be left out.
#[utoipa::path(post, path = "/admin/v1/migrations", tag = "migrations", request_body = Option<StartMigration>, responses(
    (status = 202, description = "Started", body = StartedRun),
    (status = 422, description = "Bad concurrency or unknown tenant", body = ErrorBody)))]
async fn start_migration(
    State(state): State<AppState>,
    OptionalJson(body): OptionalJson<StartMigration>,
) -> Result<(StatusCode, Json<StartedRun>)> {
    let options = FanoutOptions {
        concurrency: body.concurrency.unwrap_or(4),
        tenants: body.tenants.unwrap_or_default(),
        plans: Vec::new(),
        dry_run: false,
        max_failures: None,
    };
    let id = control::start_migration(&state, &options).await?;
    Ok((StatusCode::ACCEPTED, Json(StartedRun { id })))
}

/// Target version, tenants per schema version, failed tenants.
#[utoipa::path(get, path = "/admin/v1/migrations/status", tag = "migrations", responses(
    (status = 200, description = "Where the fleet stands", body = MigrationStatus)))]
async fn migration_status(State(state): State<AppState>) -> Result<Json<MigrationStatus>> {
    Ok(Json(control::migration_status(&state).await?))
}

/// One fan-out run.
#[utoipa::path(get, path = "/admin/v1/migrations/{id}", tag = "migrations", params(("id" = String, Path, description = "Run id")), responses(
    (status = 200, description = "The run", body = FanoutRun),
    (status = 404, description = "No such run", body = ErrorBody)))]
async fn get_migration(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<FanoutRun>> {
    Ok(Json(control::find_run(&state, &id).await?))
}
