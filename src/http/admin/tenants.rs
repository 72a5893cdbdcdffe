//! `/admin/v1/tenants`: provision, list, show, suspend, resume, domains, delete.

use crate::http::fields;
use axum::{extract::State, http::StatusCode};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    control::{self, IfExists, Owner, ProvisionRequest},
    error::{Error, ErrorBody, Result},
    http::{
        extract::{Json, Path, Query},
        pagination::{Page, PageQuery},
    },
    state::AppState,
    tenant::{Status, TenantRecord},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_tenant, list_tenants))
        .routes(routes!(get_tenant, delete_tenant))
        .routes(routes!(suspend_tenant))
        .routes(routes!(resume_tenant))
        .routes(routes!(add_domain))
        .routes(routes!(remove_domain))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateTenant {
    #[schema(schema_with = fields::slug)]
    slug: String,
    /// Absent or null: the slug.
    #[schema(schema_with = fields::optional_name)]
    name: Option<String>,
    /// A plan of this server (`tenant_templates/<plan>`); absent: the default plan.
    plan: Option<String>,
    /// A server of this configuration (`[servers.<name>]`); absent: the one with the fewest tenants.
    server: Option<String>,
    /// The first user, an `owner`; given with `owner_password` or not at all.
    #[schema(schema_with = fields::optional_email)]
    owner_email: Option<String>,
    #[schema(schema_with = fields::optional_password)]
    owner_password: Option<String>,
    #[serde(default)]
    #[schema(schema_with = fields::domains)]
    domains: Vec<String>,
    /// A tenant to copy: the new tenant's database starts as a copy of its database (read
    /// online in one snapshot), without its sessions, API tokens and invitations, and takes its
    /// plan unless `plan` is given. Not with `owner_email`. A slug no tenant has is `422`.
    from: Option<String>,
}

/// Provision a tenant: registry row, database, migrations, the plan's seed, the owner; or, with
/// `from`, a copy of another tenant.
#[utoipa::path(post, path = "/admin/v1/tenants", tag = "tenants", request_body = CreateTenant, responses(
    (status = 201, description = "Provisioned", body = TenantRecord),
    (status = 409, description = "The slug or a domain is taken, or the tenant to copy is provisioning, migrating or being deleted", body = ErrorBody),
    (status = 422, description = "Bad slug, plan, server, domain, owner or tenant to copy", body = ErrorBody)))]
async fn create_tenant(
    State(state): State<AppState>,
    Json(body): Json<CreateTenant>,
) -> Result<(StatusCode, Json<TenantRecord>)> {
    let owner = match (body.owner_email, body.owner_password) {
        (Some(email), Some(password)) => Some(Owner { email, password }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(Error::field(
                "owner_password",
                "is required with owner_email",
            ))
        }
        (None, Some(_)) => {
            return Err(Error::field(
                "owner_email",
                "is required with owner_password",
            ))
        }
    };
    let request = ProvisionRequest {
        slug: body.slug,
        name: body.name,
        plan: body.plan,
        server: body.server,
        domains: body.domains,
        owner,
        ..ProvisionRequest::default()
    };
    let work_state = state.clone();
    let work = async move {
        match body.from {
            Some(from) => {
                control::clone_tenant(&work_state, request, &from, IfExists::Conflict).await
            }
            None => control::provision(&work_state, request, IfExists::Conflict).await,
        }
    };
    let tenant = state.background.run(work).await??;
    Ok((StatusCode::CREATED, Json(tenant)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only tenants with this status.
    #[param(value_type = Option<Status>)]
    status: Option<String>,
    /// Items per page, 1 to 100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Tenants, oldest first.
#[utoipa::path(get, path = "/admin/v1/tenants", tag = "tenants", params(ListQuery), responses(
    (status = 200, description = "A page of tenants", body = Page<TenantRecord>),
    (status = 422, description = "Bad status, limit or cursor", body = ErrorBody)))]
async fn list_tenants(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<TenantRecord>>> {
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .parse()?;
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(
            raw.parse::<Status>()
                .map_err(|m| Error::field("status", m))?,
        ),
    };
    let after = page
        .after
        .as_deref()
        .map(|id| id.parse())
        .transpose()
        .map_err(|_| Error::field("cursor", "is not a cursor from a previous page"))?;
    let tenants = control::list(&state, status, after, page.limit + 1).await?;
    Ok(Json(Page::from_rows(tenants, page.limit, |t| {
        t.id.to_string()
    })))
}

/// One tenant.
#[utoipa::path(get, path = "/admin/v1/tenants/{slug}", tag = "tenants", params(("slug" = String, Path, description = "Tenant slug")), responses(
    (status = 200, description = "The tenant", body = TenantRecord),
    (status = 404, description = "No such tenant", body = ErrorBody)))]
async fn get_tenant(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<TenantRecord>> {
    Ok(Json(control::find(&state, &slug).await?))
}

/// Suspend a tenant: its requests get `403 tenant_suspended`.
#[utoipa::path(post, path = "/admin/v1/tenants/{slug}/suspend", tag = "tenants", params(("slug" = String, Path, description = "Tenant slug")), responses(
    (status = 200, description = "The tenant", body = TenantRecord),
    (status = 404, description = "No such tenant", body = ErrorBody),
    (status = 409, description = "Not active", body = ErrorBody)))]
async fn suspend_tenant(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<TenantRecord>> {
    Ok(Json(control::suspend(&state, &slug).await?))
}

/// Resume a suspended tenant.
#[utoipa::path(post, path = "/admin/v1/tenants/{slug}/resume", tag = "tenants", params(("slug" = String, Path, description = "Tenant slug")), responses(
    (status = 200, description = "The tenant", body = TenantRecord),
    (status = 404, description = "No such tenant", body = ErrorBody),
    (status = 409, description = "Not suspended", body = ErrorBody)))]
async fn resume_tenant(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<TenantRecord>> {
    Ok(Json(control::resume(&state, &slug).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AddDomain {
    #[schema(schema_with = fields::domain)]
    domain: String,
}

/// Attach a custom domain.
#[utoipa::path(post, path = "/admin/v1/tenants/{slug}/domains", tag = "tenants", params(("slug" = String, Path, description = "Tenant slug")), request_body = AddDomain, responses(
    (status = 201, description = "The tenant", body = TenantRecord),
    (status = 409, description = "The domain is taken", body = ErrorBody),
    (status = 422, description = "Malformed domain", body = ErrorBody)))]
async fn add_domain(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Json(body): Json<AddDomain>,
) -> Result<(StatusCode, Json<TenantRecord>)> {
    Ok((
        StatusCode::CREATED,
        Json(control::add_domain(&state, &slug, &body.domain).await?),
    ))
}

/// Detach a custom domain.
#[utoipa::path(delete, path = "/admin/v1/tenants/{slug}/domains/{domain}", tag = "tenants", params(
    ("slug" = String, Path, description = "Tenant slug"), ("domain" = String, Path, description = "The domain")), responses(
    (status = 204, description = "Detached"),
    (status = 404, description = "No such tenant or domain", body = ErrorBody)))]
async fn remove_domain(
    State(state): State<AppState>,
    Path((slug, domain)): Path<(String, String)>,
) -> Result<StatusCode> {
    control::remove_domain(&state, &slug, &domain).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DeleteQuery {
    /// Must equal the slug.
    confirm: Option<String>,
}

/// Delete a tenant and its database. Needs `?confirm=<slug>`.
#[utoipa::path(delete, path = "/admin/v1/tenants/{slug}", tag = "tenants", params(("slug" = String, Path, description = "Tenant slug"), DeleteQuery), responses(
    (status = 204, description = "Deleted"),
    (status = 400, description = "Missing or wrong confirmation", body = ErrorBody),
    (status = 404, description = "No such tenant", body = ErrorBody)))]
async fn delete_tenant(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(query): Query<DeleteQuery>,
) -> Result<StatusCode> {
    if query.confirm.as_deref() != Some(slug.as_str()) {
        return Err(Error::BadRequest(format!(
            "add ?confirm={slug} to delete this tenant and its database"
        )));
    }
    let work_state = state.clone();
    let work = async move { control::delete(&work_state, &slug).await };
    state.background.run(work).await??;
    Ok(StatusCode::NO_CONTENT)
}
