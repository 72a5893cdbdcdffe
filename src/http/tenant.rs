//! The request path's front half: resolve -> registry -> status -> limits -> pool. Runs before
//! routing (so the path strategy can strip `/t/<slug>` first) and puts a `TenantDb` into the
//! request's extensions; unknown routes are answered after the tenant is resolved.

use axum::{
    extract::Request,
    http::{header, Uri},
};

use crate::{
    error::{Error, Result},
    http::TenantDb,
    limits::Admission,
    resolve::{self, RequestFacts},
    state::AppState,
    tenant::Slug,
};

/// Paths served without a tenant.
const TENANTLESS: &[&str] = &["/healthz", "/readyz", "/metrics", "/openapi.json"];

pub fn is_tenantless(path: &str) -> bool {
    TENANTLESS.contains(&path)
}

/// Finds the request's tenant and its pool and attaches them as a [`TenantDb`]. Returned with
/// the tenant's concurrency slot (hold it until the response is ready) and a copy of the
/// `TenantDb`, on which to call [`TenantDb::finish`] once the response is ready.
pub async fn attach(state: &AppState, request: &mut Request) -> Result<(Admission, TenantDb)> {
    let x_tenant = resolve::single_header(
        request
            .headers()
            .get_all("x-tenant")
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
    )?;
    // RFC 9112: more than one Host is a bad request, and an absolute request target
    // (`GET http://acme.example.com/...`, or HTTP/2's :authority) names the host over any Host.
    if request
        .headers()
        .get_all(header::HOST)
        .iter()
        .nth(1)
        .is_some()
    {
        return Err(Error::BadRequest(
            "the request has more than one Host header".into(),
        ));
    }
    let host = match request.uri().authority() {
        Some(authority) => Some(authority.host()),
        None => request
            .headers()
            .get(header::HOST)
            .and_then(|value| value.to_str().ok()),
    };
    let claims = state.resolver.claims(RequestFacts {
        host,
        x_tenant: x_tenant.as_deref(),
        path: request.uri().path(),
    });

    let domain_slug = match &claims.custom_domain {
        Some(domain) => state.registry.slug_for_domain(domain).await?,
        None => None,
    };
    let named = resolve::decide(domain_slug.as_ref().map(Slug::as_str), &claims.named)?;
    // A malformed slug can name no tenant; it never reaches the registry's SQL.
    let slug = Slug::parse_shape(&named).map_err(|_| Error::TenantNotFound)?;
    let tenant = state
        .registry
        .find(&slug)
        .await?
        .ok_or(Error::TenantNotFound)?;
    // Every later log line of this request carries the tenant.
    tracing::Span::current().record("tenant", tenant.slug.as_str());

    tenant.status.ensure_serving()?;
    let plan = state.plans.get(&tenant.plan).map(|plan| &plan.settings);
    let admission = state
        .limits
        .admit(tenant.id, plan.unwrap_or(&state.plans.fallback_settings()))
        .inspect_err(|_| {
            state.metrics.rate_limited();
        })?;
    let pool = state.pools.get(&tenant).await?;
    state.usage.served(tenant.id);

    if let Some(path) = claims.stripped_path {
        *request.uri_mut() = strip_prefix(request.uri(), &path)?;
    }
    let db = TenantDb::new(state.clone(), tenant, pool);
    request.extensions_mut().insert(db.clone());
    Ok((admission, db))
}

/// The same URI with `path` in place of `/t/<slug>/...`, query kept.
fn strip_prefix(uri: &Uri, path: &str) -> Result<Uri> {
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    path_and_query
        .parse()
        .map_err(|_| Error::BadRequest("the request path is malformed".into()))
}
