//! The tenant API, one module per resource; each owns its `router()`.

mod api_tokens;
mod audit;
mod auth;
mod health;
mod invitations;
pub mod me;
mod members;
mod projects;

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(health::router())
        .merge(auth::router())
        .merge(me::router())
        .merge(projects::router())
        .merge(members::router())
        .merge(invitations::router())
        .merge(api_tokens::router())
        .merge(audit::router())
}
