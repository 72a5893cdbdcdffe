//! HTTP: the main listener (tenant API) and the admin listener. Read `app` top to bottom for
//! the request path: limits -> tenant layer (resolve, registry, status, pool) -> routes.

mod admin;
pub mod extract;
mod observe;
mod openapi;
mod pagination;
mod routes;
mod serve;
mod tenant_layer;

pub use serve::{start, RunningServer};

use std::sync::Arc;

use axum::{
    extract::DefaultBodyLimit,
    http::header,
    middleware,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{error::Error, state::AppState};

/// The main listener's service.
pub fn app(state: AppState) -> Router {
    let routes = documented(
        OpenApiRouter::with_openapi(openapi::TenantApi::openapi()).merge(routes::router()),
        "/openapi.json",
    )
    .layer(DefaultBodyLimit::max(state.settings.http.body_limit_bytes))
    .with_state(state.clone());
    // The tenant layer wraps the routes from outside (a fallback service), so it runs before
    // routing: the path strategy's prefix is stripped first, and an unknown route is answered
    // only once the tenant is known.
    let tenant_scoped =
        Router::new()
            .fallback_service(routes)
            .layer(middleware::from_fn_with_state(
                state.clone(),
                tenant_layer::tenant_layer,
            ));
    catch_panics(tenant_scoped).layer(middleware::from_fn_with_state(
        (state, "main"),
        observe::observe,
    ))
}

/// The admin listener's service.
pub fn admin_app(state: AppState) -> Router {
    let routes = documented(
        OpenApiRouter::with_openapi(openapi::AdminApi::openapi()).merge(admin::router()),
        "/admin/v1/openapi.json",
    )
    .layer(middleware::from_fn_with_state(
        state.clone(),
        admin::require_admin_token,
    ))
    .layer(DefaultBodyLimit::max(state.settings.http.body_limit_bytes))
    .with_state(state.clone());
    catch_panics(routes).layer(middleware::from_fn_with_state(
        (state, "admin"),
        observe::observe,
    ))
}

/// The routes with their OpenAPI document served at `document_path`, route labels for
/// observation, and our JSON answers for unknown routes and methods.
fn documented(router: OpenApiRouter<AppState>, document_path: &str) -> Router<AppState> {
    let (routes, api) = router.split_for_parts();
    let document = Arc::new(
        api.to_pretty_json()
            .expect("the OpenAPI document serialises"),
    );
    routes
        .route(document_path, get(move || serve_document(document.clone())))
        .route_layer(middleware::from_fn(observe::label_route))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// Both listeners turn a panic into a JSON `500 internal`; the request timeout (`503 timeout`)
/// is enforced by `observe`, the outermost layer.
fn catch_panics(router: Router) -> Router {
    router.layer(CatchPanicLayer::custom(|_panic| {
        Error::Internal(anyhow::anyhow!("a request handler panicked")).into_response()
    }))
}

async fn serve_document(document: Arc<String>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document.as_str().to_owned(),
    )
        .into_response()
}

async fn not_found() -> Response {
    Error::NotFound("no route serves this path".into()).into_response()
}

async fn method_not_allowed() -> Response {
    Error::MethodNotAllowed.into_response()
}
