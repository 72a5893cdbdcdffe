//! `GET /v1/audit`: the tenant's own audit log, newest first, for admins.

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    audit::{self, AuditEntry},
    error::{ErrorBody, Result},
    http::{
        extract::{Json, Query},
        pagination::{Page, PageQuery},
        CurrentUser, TenantDb,
    },
    identity::Role,
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

/// The tenant's audit log, newest first (admin+).
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(PageQuery), security(("bearer" = [])), responses(
    (status = 200, description = "A page of entries", body = Page<AuditEntry>),
    (status = 403, description = "Role too low", body = ErrorBody)))]
async fn list_audit(
    db: TenantDb,
    current: CurrentUser,
    Query(query): Query<PageQuery>,
) -> Result<Json<Page<AuditEntry>>> {
    current.require(Role::Admin)?;
    let page = query.parse()?;
    let entries = audit::list(
        &mut *db.conn().await?,
        page.after.as_deref(),
        page.limit + 1,
    )
    .await?;
    Ok(Json(Page::from_rows(entries, page.limit, |e| e.id.clone())))
}
