//! Which tenant a request reaches: subdomain, `X-Tenant`, custom domain, the opt-in path
//! prefix, and the answers when the request names none, several, or one that cannot be served.

mod refusals;
mod strategies;

use reqwest::Method;

use crate::helpers::{spawn_app, Reply, TestApp};

/// `GET /v1/me` with the given Host and `X-Tenant` (either may be left out).
async fn me(app: &TestApp, host: Option<&str>, x_tenant: Option<&str>, token: &str) -> Reply {
    let mut request = app.request(Method::GET, "/v1/me").bearer_auth(token);
    if let Some(host) = host {
        request = request.header("host", host);
    }
    if let Some(slug) = x_tenant {
        request = request.header("x-tenant", slug);
    }
    Reply::send(request).await
}

/// An app with tenant `acme` and a member's access token.
async fn acme() -> (TestApp, String) {
    let app = spawn_app().await;
    app.create_tenant("acme").await;
    let session = app.tenant("acme").signup("ann@x.com", "ann-password").await;
    (app, session.access_token)
}
