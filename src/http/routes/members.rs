//! Members and roles. Admins list, re-role and remove members; only an owner grants or takes
//! away `owner`, and the last owner can be neither demoted nor removed.

use axum::{extract::Path, http::StatusCode, routing::get, Router};
use serde::Deserialize;
use serde_json::json;

use crate::{
    audit,
    error::{Error, Result},
    http::{
        extract::{CurrentUser, Json, Query, TenantDb},
        pagination::{Page, PageQuery},
    },
    identity::{Role, Scope, User},
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/members", get(list_members)).route(
        "/v1/members/{id}",
        axum::routing::patch(update_member).delete(remove_member),
    )
}

async fn list_members(
    db: TenantDb,
    current: CurrentUser,
    Query(query): Query<PageQuery>,
) -> Result<Json<Page<User>>> {
    current.require_scoped(Role::Admin, Scope::MembersRead)?;
    let page = query.parse()?;
    let members = User::list(&db.pool, page.after.as_deref(), page.limit + 1).await?;
    Ok(Json(Page::from_rows(members, page.limit, |u| u.id.clone())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateMember {
    role: String,
}

async fn update_member(
    db: TenantDb,
    current: CurrentUser,
    Path(id): Path<String>,
    Json(body): Json<UpdateMember>,
) -> Result<Json<User>> {
    let actor = current.require_scoped(Role::Admin, Scope::MembersWrite)?;
    let role: Role = body
        .role
        .parse()
        .map_err(|m: &str| Error::field("role", m))?;
    let member = User::by_id(&db.pool, &id)
        .await?
        .ok_or_else(|| Error::not_found("member"))?;
    if (role == Role::Owner || member.role == Role::Owner) && actor.role != Role::Owner {
        return Err(Error::Forbidden(
            "only an owner grants or removes the owner role".into(),
        ));
    }
    if member.role == role {
        return Ok(Json(member));
    }
    if !User::set_role(&db.pool, &id, role).await? {
        return Err(Error::Conflict("the last owner cannot be demoted".into()));
    }
    let details = json!({ "from": member.role, "to": role, "email": member.email });
    audit::record(
        &db.pool,
        "member.role_changed",
        current.actor(),
        Some(&id),
        details,
    )
    .await?;
    let updated = User::by_id(&db.pool, &id)
        .await?
        .ok_or_else(|| Error::not_found("member"))?;
    Ok(Json(updated))
}

async fn remove_member(
    db: TenantDb,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let actor = current.require_scoped(Role::Admin, Scope::MembersWrite)?;
    let member = User::by_id(&db.pool, &id)
        .await?
        .ok_or_else(|| Error::not_found("member"))?;
    if member.role == Role::Owner && actor.role != Role::Owner {
        return Err(Error::Forbidden("only an owner removes an owner".into()));
    }
    if !User::remove(&db.pool, &id).await? {
        return Err(Error::Conflict("the last owner cannot be removed".into()));
    }
    let details = json!({ "email": member.email, "role": member.role });
    audit::record(
        &db.pool,
        "member.removed",
        current.actor(),
        Some(&id),
        details,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
