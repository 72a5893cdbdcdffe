//! `GET /v1/me`: who am I, in which tenant.

use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    error::{ErrorBody, Result},
    http::{extract::Json, CurrentUser, TenantDb},
    identity::Role,
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_me))
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    id: String,
    email: String,
    name: String,
    role: Role,
    tenant: TenantSummary,
}

/// The tenant a request or token belongs to.
#[derive(Serialize, ToSchema)]
pub struct TenantSummary {
    pub id: String,
    pub slug: String,
    pub name: String,
}

impl TenantSummary {
    pub fn of(db: &TenantDb) -> Self {
        Self {
            id: db.tenant.id.to_string(),
            slug: db.tenant.slug.to_string(),
            name: db.tenant.name.clone(),
        }
    }
}

/// The signed-in user and their tenant.
#[utoipa::path(get, path = "/v1/me", tag = "identity", security(("bearer" = [])), responses(
    (status = 200, description = "The signed-in user", body = Me),
    (status = 401, description = "Missing, invalid or foreign token", body = ErrorBody)))]
async fn get_me(db: TenantDb, current: CurrentUser) -> Result<Json<Me>> {
    let user = current.require(Role::Viewer)?;
    Ok(Json(Me {
        id: user.id.clone(),
        email: user.email.clone(),
        name: user.name.clone(),
        role: user.role,
        tenant: TenantSummary::of(&db),
    }))
}
