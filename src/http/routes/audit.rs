//! `GET /v1/audit`: the tenant's own audit log, newest first, for admins.

use axum::{routing::get, Router};

use crate::{
    audit::{self, AuditEntry},
    error::Result,
    http::{
        extract::{CurrentUser, Json, Query, TenantDb},
        pagination::{Page, PageQuery},
    },
    identity::Role,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/audit", get(list_audit))
}

async fn list_audit(
    db: TenantDb,
    current: CurrentUser,
    Query(query): Query<PageQuery>,
) -> Result<Json<Page<AuditEntry>>> {
    current.require(Role::Admin)?;
    let page = query.parse()?;
    let entries = audit::list(&db.pool, page.after.as_deref(), page.limit + 1).await?;
    Ok(Json(Page::from_rows(entries, page.limit, |e| e.id.clone())))
}
