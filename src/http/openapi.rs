//! The OpenAPI 3.1 documents. Paths and schemas come from the `#[utoipa::path]` annotations of
//! the handlers, collected as the routers are built, so a route cannot exist undocumented.

use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
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
