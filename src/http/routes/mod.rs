//! The tenant API, one module per resource; each owns its `router()`.

mod auth;
mod health;
mod me;
mod projects;

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(health::router())
        .merge(auth::router())
        .merge(me::router())
        .merge(projects::router())
}
