//! `/healthz` (the process is up), `/readyz` (the control registry answers) and `/metrics`
//! (Prometheus text). No tenant needed.

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::IntoResponse,
    routing::get,
    Json, Router,
};
use serde_json::{json, Value};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
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

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    (
        [(header::CONTENT_TYPE, content_type)],
        state.render_metrics(),
    )
}
