//! HTTP: the main listener (tenant API) and the admin listener. The request path reads top to
//! bottom through `front` (id, span, timeout, panics, metrics) -> `tenant` (resolve, registry,
//! status, limits, pool) -> `routes` -> `extract` (the user, the tenant's connection).

mod admin;
mod current_user;
pub mod extract;
mod fields;
mod front;
mod observe;
mod openapi;
mod pagination;
mod routes;
mod serve;
mod tenant;
mod tenant_db;
mod unread;

pub use current_user::{bearer, Credential, CurrentUser};
pub use front::Front;
pub use serve::{start, RunningServer};
pub use tenant_db::TenantDb;

use std::sync::Arc;

use axum::{
    extract::DefaultBodyLimit,
    http::header,
    middleware,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use tower::ServiceBuilder;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{error::Error, state::AppState};

/// The main listener's service: the tenant is resolved before routing, so the path strategy's
/// prefix is stripped first and an unknown route is answered only once the tenant is known.
pub fn app(state: AppState) -> Front {
    let routes = documented(
        OpenApiRouter::with_openapi(openapi::TenantApi::openapi()).merge(routes::router()),
        "/openapi.json",
        openapi::Listener::Main,
        &state,
    )
    .with_state(state.clone());
    Front::new(state, "main", true, routes)
}

/// The admin listener's service.
pub fn admin_app(state: AppState) -> Front {
    let routes = documented(
        OpenApiRouter::with_openapi(openapi::AdminApi::openapi()).merge(admin::router()),
        "/admin/v1/openapi.json",
        openapi::Listener::Admin,
        &state,
    )
    .layer(middleware::from_fn_with_state(
        state.clone(),
        admin::require_admin_token,
    ))
    .with_state(state.clone());
    Front::new(state, "admin", false, routes)
}

/// The routes with their OpenAPI document served at `document_path`, route labels for
/// observation, the body limit, and our JSON answers for unknown routes and methods.
fn documented(
    router: OpenApiRouter<AppState>,
    document_path: &str,
    listener: openapi::Listener,
    state: &AppState,
) -> Router<AppState> {
    let (routes, mut api) = router.split_for_parts();
    openapi::add_shared_errors(&mut api, listener);
    if listener == openapi::Listener::Admin {
        let servers: Vec<&str> = state.servers.names().collect();
        openapi::complete_create_tenant(&mut api, &state.plans.names(), &servers);
    }
    let document = Arc::new(
        api.to_pretty_json()
            .expect("the OpenAPI document serialises"),
    );
    routes
        .route(document_path, get(move || serve_document(document.clone())))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // One layer for both: axum wraps every route in each layer given, and each wrapping is
        // an allocation, a boxed future and a clone per request.
        .layer(
            ServiceBuilder::new()
                .layer(observe::LabelRoute)
                .layer(DefaultBodyLimit::max(state.settings.http.body_limit_bytes)),
        )
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
