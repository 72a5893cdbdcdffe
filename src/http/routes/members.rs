//! Members and roles. Admins list, re-role and remove members; only an owner grants or takes
//! away `owner`, and the last owner can be neither demoted nor removed.

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    audit,
    error::{Error, ErrorBody, Result},
    http::{
        extract::{Json, Path, Query},
        pagination::{Page, PageQuery},
        CurrentUser, TenantDb,
    },
    identity::{Role, Scope, User},
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_members))
        .routes(routes!(update_member, remove_member))
}

/// Members, newest first (admin+; API tokens need `members:read`).
#[utoipa::path(get, path = "/v1/members", tag = "members", params(PageQuery), security(("bearer" = [])), responses(
    (status = 200, description = "A page of members", body = Page<User>),
    (status = 403, description = "Role or scope too low", body = ErrorBody)))]
async fn list_members(
    db: TenantDb,
    current: CurrentUser,
    Query(query): Query<PageQuery>,
) -> Result<Json<Page<User>>> {
    current.require_scoped(Role::Admin, Scope::MembersRead)?;
    let page = query.parse()?;
    let members = User::list(
        &mut *db.conn().await?,
        page.after.as_deref(),
        page.limit + 1,
    )
    .await?;
    Ok(Json(Page::from_rows(members, page.limit, |u| u.id.clone())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateMember {
    /// `owner`, `admin`, `member` or `viewer` (read as text, so another value is a `422` that
    /// names the field).
    #[schema(value_type = Role)]
    role: String,
}

/// Change a member's role (admin+; only an owner grants or removes `owner`).
#[utoipa::path(patch, path = "/v1/members/{id}", tag = "members", params(("id" = String, Path, description = "User id")), request_body = UpdateMember, security(("bearer" = [])), responses(
    (status = 200, description = "The member", body = User),
    (status = 403, description = "Role or scope too low", body = ErrorBody),
    (status = 404, description = "No such member", body = ErrorBody),
    (status = 409, description = "The last owner cannot be demoted", body = ErrorBody),
    (status = 422, description = "Unknown role", body = ErrorBody)))]
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
    let member = User::by_id(&mut *db.conn().await?, &id)
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
    if !User::set_role(&mut *db.conn().await?, &id, role).await? {
        return Err(Error::Conflict("the last owner cannot be demoted".into()));
    }
    let details = json!({ "from": member.role, "to": role, "email": member.email });
    audit::record(
        &mut *db.conn().await?,
        "member.role_changed",
        current.actor(),
        Some(&id),
        details,
    )
    .await?;
    let updated = User::by_id(&mut *db.conn().await?, &id)
        .await?
        .ok_or_else(|| Error::not_found("member"))?;
    Ok(Json(updated))
}

/// Remove a member; their sessions and API tokens die with them (admin+).
#[utoipa::path(delete, path = "/v1/members/{id}", tag = "members", params(("id" = String, Path, description = "User id")), security(("bearer" = [])), responses(
    (status = 204, description = "Removed"),
    (status = 403, description = "Role or scope too low", body = ErrorBody),
    (status = 404, description = "No such member", body = ErrorBody),
    (status = 409, description = "The last owner cannot be removed", body = ErrorBody)))]
async fn remove_member(
    db: TenantDb,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let actor = current.require_scoped(Role::Admin, Scope::MembersWrite)?;
    let member = User::by_id(&mut *db.conn().await?, &id)
        .await?
        .ok_or_else(|| Error::not_found("member"))?;
    if member.role == Role::Owner && actor.role != Role::Owner {
        return Err(Error::Forbidden("only an owner removes an owner".into()));
    }
    if !User::remove(&mut *db.conn().await?, &id).await? {
        return Err(Error::Conflict("the last owner cannot be removed".into()));
    }
    let details = json!({ "email": member.email, "role": member.role });
    audit::record(
        &mut *db.conn().await?,
        "member.removed",
        current.actor(),
        Some(&id),
        details,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
