//! `/healthz` (the process is up), `/readyz` (the control registry answers) and `/metrics`
//! (Prometheus text). No tenant needed.

use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::IntoResponse,
    Json,
};
use serde_json::{json, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{state::AppState, telemetry::to_prometheus_text};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "`{\"status\":\"ok\"}`")))]
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The control registry answers.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "Ready"), (status = 503, description = "The registry is unreachable")))]
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

/// Prometheus metrics: the classic text format (0.0.4), or OpenMetrics for a scraper that asks
/// for it in `Accept` (Prometheus itself does).
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Metrics", content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let openmetrics = state.render_metrics();
    let wants_openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("application/openmetrics-text"));
    if wants_openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            openmetrics,
        )
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            to_prometheus_text(&openmetrics),
        )
    }
}
