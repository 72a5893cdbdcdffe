//! `GET /v1/me`: who am I, in which tenant.

use axum::{routing::get, Router};
use serde_json::{json, Value};

use crate::{
    error::Result,
    http::extract::{CurrentUser, Json, TenantDb},
    identity::Role,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/me", get(get_me))
}

async fn get_me(db: TenantDb, current: CurrentUser) -> Result<Json<Value>> {
    let user = current.require(Role::Viewer)?;
    Ok(Json(json!({
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "tenant": { "id": db.tenant.id, "slug": db.tenant.slug, "name": db.tenant.name },
    })))
}
