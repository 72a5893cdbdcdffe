//! `/admin/v1/migrations`: start a fan-out (it runs in the background), see where the fleet
//! stands, and look up a run.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
    Router,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{
    control::{self, FanoutOptions, MigrationStatus},
    error::Result,
    http::extract::Json,
    registry::FanoutRun,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/migrations", post(start_migration))
        .route("/admin/v1/migrations/status", get(migration_status))
        .route("/admin/v1/migrations/{id}", get(get_migration))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartMigration {
    concurrency: Option<usize>,
    tenants: Option<Vec<String>>,
}

async fn start_migration(
    State(state): State<AppState>,
    Json(body): Json<StartMigration>,
) -> Result<(StatusCode, Json<Value>)> {
    let options = FanoutOptions {
        concurrency: body.concurrency.unwrap_or(4),
        tenants: body.tenants.unwrap_or_default(),
        dry_run: false,
    };
    let id = control::start_migration(&state, &options).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))))
}

async fn migration_status(State(state): State<AppState>) -> Result<Json<MigrationStatus>> {
    Ok(Json(control::migration_status(&state).await?))
}

async fn get_migration(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<FanoutRun>> {
    Ok(Json(control::find_run(&state, &id).await?))
}
