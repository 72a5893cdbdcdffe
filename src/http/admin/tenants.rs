//! `/admin/v1/tenants`: provision, list, show, suspend, resume, domains, delete.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    routing::{delete, get, post},
    Router,
};
use serde::Deserialize;

use crate::{
    control::{self, IfExists, Owner, ProvisionRequest},
    error::{Error, Result},
    http::{
        extract::{Json, Query},
        pagination::{Page, PageQuery},
    },
    state::AppState,
    tenant::{Status, TenantRecord},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/tenants", post(create_tenant).get(list_tenants))
        .route(
            "/admin/v1/tenants/{slug}",
            get(get_tenant).delete(delete_tenant),
        )
        .route("/admin/v1/tenants/{slug}/suspend", post(suspend_tenant))
        .route("/admin/v1/tenants/{slug}/resume", post(resume_tenant))
        .route("/admin/v1/tenants/{slug}/domains", post(add_domain))
        .route(
            "/admin/v1/tenants/{slug}/domains/{domain}",
            delete(remove_domain),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTenant {
    slug: String,
    name: Option<String>,
    plan: Option<String>,
    server: Option<String>,
    owner_email: Option<String>,
    owner_password: Option<String>,
    #[serde(default)]
    domains: Vec<String>,
}

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
    };
    let tenant = control::provision(&state, request, IfExists::Conflict).await?;
    Ok((StatusCode::CREATED, Json(tenant)))
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

async fn list_tenants(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<TenantRecord>>> {
    let page = query.page.parse()?;
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

async fn get_tenant(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<TenantRecord>> {
    Ok(Json(control::find(&state, &slug).await?))
}

async fn suspend_tenant(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<TenantRecord>> {
    Ok(Json(control::suspend(&state, &slug).await?))
}

async fn resume_tenant(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Json<TenantRecord>> {
    Ok(Json(control::resume(&state, &slug).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddDomain {
    domain: String,
}

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

async fn remove_domain(
    State(state): State<AppState>,
    Path((slug, domain)): Path<(String, String)>,
) -> Result<StatusCode> {
    control::remove_domain(&state, &slug, &domain).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct DeleteQuery {
    confirm: Option<String>,
}

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
    control::delete(&state, &slug).await?;
    Ok(StatusCode::NO_CONTENT)
}
