//! Projects: the tenant's own data. Viewers read, members create, owners of a project or
//! admins edit, admins delete. An id from another tenant is simply not in this database: 404.

use crate::http::fields;
use crate::sql::{self, Row, TenantConn};
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    clock,
    error::{Error, ErrorBody, Result},
    http::{
        extract::{Json, Path, Query},
        pagination::{Page, PageQuery},
        CurrentUser, TenantDb,
    },
    identity::{validate_name, Role, Scope},
    state::AppState,
    usage::{self, Counted},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects, create_project))
        .routes(routes!(get_project, update_project, delete_project))
}

#[derive(Debug, Serialize, ToSchema)]
struct Project {
    id: String,
    name: String,
    /// Always present; null when there is none.
    #[schema(required = true)]
    description: Option<String>,
    owner_id: String,
    #[serde(serialize_with = "clock::as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: i64,
    #[serde(serialize_with = "clock::as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: i64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateProject {
    #[schema(schema_with = fields::name)]
    name: String,
    #[schema(schema_with = fields::description)]
    description: Option<String>,
}

/// Absent fields stay as they are; `"description": null` clears the description.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateProject {
    /// Not null: a project always has a name.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = fields::name)]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = fields::description)]
    description: Option<Option<String>>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn validate_description(description: Option<String>) -> Result<Option<String>> {
    match description {
        Some(text) if text.chars().count() > fields::DESCRIPTION_MAX => Err(Error::field(
            "description",
            "must be at most 2000 characters",
        )),
        other => Ok(other),
    }
}

/// The columns `from_row` reads, as a macro so queries are `concat!`-ed at compile time rather
/// than formatted per request.
macro_rules! columns {
    () => {
        "id, name, description, owner_id, created_at, updated_at"
    };
}

/// Projects, newest first (viewer+; API tokens need `projects:read`).
#[utoipa::path(get, path = "/v1/projects", tag = "projects", params(PageQuery), security(("bearer" = [])), responses(
    (status = 200, description = "A page of projects", body = Page<Project>),
    (status = 422, description = "Bad limit or cursor", body = ErrorBody)))]
async fn list_projects(
    db: TenantDb,
    user: CurrentUser,
    Query(query): Query<PageQuery>,
) -> Result<Json<Page<Project>>> {
    user.require_scoped(Role::Viewer, Scope::ProjectsRead)?;
    let page = query.parse()?;
    let rows = sql::query(concat!(
        "SELECT ",
        columns!(),
        " FROM projects WHERE ($1 = '' OR id < $1) ORDER BY id DESC LIMIT $2"
    ))
    .bind(page.after.unwrap_or_default())
    .bind(i64::from(page.limit) + 1)
    .fetch_all(&mut *db.conn().await?)
    .await?;
    let projects = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
    Ok(Json(Page::from_rows(projects, page.limit, |p| {
        p.id.clone()
    })))
}

/// Create a project (member+; API tokens need `projects:write`).
#[utoipa::path(post, path = "/v1/projects", tag = "projects", request_body = CreateProject, security(("bearer" = [])), responses(
    (status = 201, description = "Created", body = Project),
    (status = 403, description = "Role or scope too low, or a plan quota (max_projects, max_database_bytes) reached", body = ErrorBody),
    (status = 422, description = "Invalid name or description", body = ErrorBody)))]
async fn create_project(
    db: TenantDb,
    user: CurrentUser,
    Json(body): Json<CreateProject>,
) -> Result<(StatusCode, Json<Project>)> {
    let user = user.require_scoped(Role::Member, Scope::ProjectsWrite)?;
    let now = clock::now_ms();
    let project = Project {
        id: uuid::Uuid::now_v7().to_string(),
        name: validate_name("name", &body.name)?,
        description: validate_description(body.description)?,
        owner_id: user.id.clone(),
        created_at: now,
        updated_at: now,
    };
    db.state().usage.ensure_space(&db).await?;
    let mut conn = db.conn().await?;
    let mut tx = conn.begin().await?;
    let inserted = async {
        usage::ensure_room(db.state(), &db.tenant, &mut tx, Counted::Projects).await?;
        sql::query(concat!(
            "INSERT INTO projects (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(&project.id)
        .bind(&project.name)
        .bind(&project.description)
        .bind(&project.owner_id)
        .bind(project.created_at)
        .bind(project.updated_at)
        .execute(&mut tx)
        .await
    }
    .await;
    // Rolled back at once on a failure: the quota's lock goes with the transaction.
    tx.finish(inserted).await?;
    Ok((StatusCode::CREATED, Json(project)))
}

/// One project (viewer+); an id of another tenant is not found.
#[utoipa::path(get, path = "/v1/projects/{id}", tag = "projects", params(("id" = String, Path, description = "Project id")), security(("bearer" = [])), responses(
    (status = 200, description = "The project", body = Project),
    (status = 404, description = "No such project in this tenant", body = ErrorBody)))]
async fn get_project(
    db: TenantDb,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Project>> {
    user.require_scoped(Role::Viewer, Scope::ProjectsRead)?;
    Ok(Json(find(&mut *db.conn().await?, &id).await?))
}

/// Change a project's name or description (its owner while member+, or admin+).
#[utoipa::path(patch, path = "/v1/projects/{id}", tag = "projects", params(("id" = String, Path, description = "Project id")), request_body = UpdateProject, security(("bearer" = [])), responses(
    (status = 200, description = "The updated project", body = Project),
    (status = 403, description = "Not the owner, nor an admin", body = ErrorBody),
    (status = 404, description = "No such project in this tenant", body = ErrorBody)))]
async fn update_project(
    db: TenantDb,
    user: CurrentUser,
    Path(id): Path<String>,
    Json(body): Json<UpdateProject>,
) -> Result<Json<Project>> {
    // A project's owner may edit it while they can still write (member+); admins always may.
    let user = user.require_scoped(Role::Member, Scope::ProjectsWrite)?;
    let mut project = find(&mut *db.conn().await?, &id).await?;
    if project.owner_id != user.id && !user.role.at_least(Role::Admin) {
        return Err(Error::Forbidden(
            "only the project's owner or an admin may change it".into(),
        ));
    }
    match body.name {
        Some(Some(name)) => project.name = validate_name("name", &name)?,
        Some(None) => {
            return Err(Error::field(
                "name",
                "cannot be null; a project always has a name",
            ))
        }
        None => {}
    }
    if let Some(description) = body.description {
        project.description = validate_description(description)?;
    }
    project.updated_at = clock::now_ms();
    sql::query("UPDATE projects SET name = $1, description = $2, updated_at = $3 WHERE id = $4")
        .bind(&project.name)
        .bind(&project.description)
        .bind(project.updated_at)
        .bind(&project.id)
        .execute(&mut *db.conn().await?)
        .await?;
    Ok(Json(project))
}

/// Delete a project (admin+).
#[utoipa::path(delete, path = "/v1/projects/{id}", tag = "projects", params(("id" = String, Path, description = "Project id")), security(("bearer" = [])), responses(
    (status = 204, description = "Deleted"),
    (status = 403, description = "Role or scope too low", body = ErrorBody),
    (status = 404, description = "No such project in this tenant", body = ErrorBody)))]
async fn delete_project(
    db: TenantDb,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    user.require_scoped(Role::Admin, Scope::ProjectsWrite)?;
    let done = sql::query("DELETE FROM projects WHERE id = $1")
        .bind(&id)
        .execute(&mut *db.conn().await?)
        .await?;
    if done == 0 {
        return Err(Error::not_found("project"));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn find(conn: &mut TenantConn, id: &str) -> Result<Project> {
    let row = sql::query(concat!(
        "SELECT ",
        columns!(),
        " FROM projects WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref()
        .map(from_row)
        .transpose()?
        .ok_or_else(|| Error::not_found("project"))
}

fn from_row(row: &Row) -> Result<Project> {
    Ok(Project {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        owner_id: row.try_get("owner_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
