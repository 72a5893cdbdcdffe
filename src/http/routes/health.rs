//! `/healthz` (the process is up) and `/readyz` (the control registry answers). No tenant needed.

use axum::{extract::State, http::StatusCode, routing::get, Json, Router};
use serde_json::{json, Value};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if state.registry.ping().await {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        let body = json!({
            "status": "unavailable",
            "error": { "code": "tenant_unavailable", "message": "the control registry is unreachable" }
        });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}
