//! The OpenAPI 3.1 documents. Paths and schemas come from the `#[utoipa::path]` annotations of
//! the handlers, collected as the routers are built, so a route cannot exist undocumented.

use utoipa::{
    openapi::{
        path::{Operation, ParameterIn},
        schema::Schema,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
        ContentBuilder, Ref, RefOr, ResponseBuilder,
    },
    Modify, OpenApi,
};

use crate::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "silo tenant API",
        description = "The API every tenant is served on. A request names its tenant by Host \
                       (`<slug>.<base_domain>` or a custom domain), `X-Tenant`, or `/t/<slug>/` when enabled."
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth)
)]
pub struct TenantApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "silo admin API", description = "Operators' API on the admin listener; every call needs the admin token."),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct AdminApi;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("An access token (JWT), an API token (`sk_...`), or on the admin listener the admin token"))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Completes the admin document's `CreateTenant` with what its derive cannot say: the values
/// `plan` and `server` may take (the plans and servers this router was started with: they come
/// from the configuration, not the code), and that the owner's email and password come together
/// (`dependentRequired`, JSON Schema 2020-12).
pub fn complete_create_tenant(
    api: &mut utoipa::openapi::OpenApi,
    plans: &[&str],
    servers: &[&str],
) {
    let Some(components) = api.components.as_mut() else {
        return;
    };
    let Some(RefOr::T(Schema::Object(create))) = components.schemas.get_mut("CreateTenant") else {
        return;
    };
    for (field, names) in [("plan", plans), ("server", servers)] {
        if let Some(RefOr::T(Schema::Object(property))) = create.properties.get_mut(field) {
            let mut values: Vec<serde_json::Value> = names.iter().map(|&n| n.into()).collect();
            // `null` too, as the field is nullable: an enum lists every value allowed.
            values.push(serde_json::Value::Null);
            property.enum_values = Some(values);
        }
    }
    let together = serde_json::json!({
        "owner_email": ["owner_password"],
        "owner_password": ["owner_email"],
    });
    create
        .extensions
        .get_or_insert_with(Default::default)
        .insert("dependentRequired".into(), together);
}

/// Which listener a document describes: the errors every operation may answer differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Main,
    Admin,
}

/// Adds to every operation the error answers it shares with the others, which the handlers'
/// annotations leave out: tenant resolution and limits on the main listener, the admin token
/// on the admin listener, body and parameter checks, the request timeout. An answer an
/// annotation already describes is kept as it is.
pub fn add_shared_errors(api: &mut utoipa::openapi::OpenApi, listener: Listener) {
    for (path, item) in api.paths.paths.iter_mut() {
        let tenant_route = listener == Listener::Main && !super::tenant::is_tenantless(path);
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            for (status, what) in shared_errors(path, operation, listener, tenant_route) {
                let response = ResponseBuilder::new()
                    .description(what)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build();
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert(RefOr::T(response));
            }
        }
    }
}

fn shared_errors(
    path: &str,
    operation: &Operation,
    listener: Listener,
    tenant_route: bool,
) -> Vec<(&'static str, &'static str)> {
    let mut errors = Vec::new();
    let has_body = operation.request_body.is_some();
    let has_query =
        operation.parameters.iter().flatten().any(
            |parameter| matches!(parameter, RefOr::T(p) if p.parameter_in == ParameterIn::Query),
        );
    let authenticated = operation.security.is_some() || listener == Listener::Admin;
    if tenant_route {
        errors.push((
            "400",
            "`bad_request`, or `tenant_conflict`: the request names two tenants",
        ));
        errors.push(("403", "`forbidden` (role or scope), or `tenant_suspended`"));
        errors.push(("404", "`not_found`, or `tenant_not_found`"));
        errors.push((
            "429",
            "`rate_limited`, with `Retry-After`: the tenant is past its plan's limits",
        ));
        errors.push((
            "503",
            "`tenant_unavailable` (with `Retry-After`), or `timeout`",
        ));
    } else {
        errors.push(("503", "`timeout`"));
    }
    if authenticated {
        errors.push((
            "401",
            "`unauthorized`: a missing, malformed, expired or foreign token",
        ));
    }
    if listener == Listener::Admin && path.contains("{slug}") {
        errors.push(("404", "`not_found`: no tenant has this slug"));
    }
    if has_body {
        errors.push(("400", "`bad_request`: the body is not valid JSON"));
        errors.push(("413", "`payload_too_large`"));
        errors.push((
            "415",
            "`unsupported_media_type`: the body must be JSON, not compressed",
        ));
        errors.push(("422", "`validation_failed`, with the fields at fault"));
    }
    if has_query {
        errors.push(("422", "`validation_failed`: a query parameter out of range"));
    }
    errors.push(("500", "`internal`"));
    errors
}
