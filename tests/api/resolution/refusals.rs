//! Requests that name no tenant, a tenant that does not exist or cannot be served, and the
//! paths that need no tenant at all.

use reqwest::Method;
use serde_json::json;

use super::{acme, me};
use crate::helpers::{spawn_app, spawn_app_with, Reply};

#[tokio::test]
async fn an_unknown_custom_domain_is_tenant_not_found() {
    let (app, token) = acme().await;
    me(&app, Some("www.example.org"), None, &token)
        .await
        .assert_error(404, "tenant_not_found");
}

#[tokio::test]
async fn a_request_naming_no_tenant_is_tenant_not_found() {
    let (app, token) = acme().await;
    let port = app.addr.port();
    for host in [
        format!("127.0.0.1:{port}"),
        "localhost".to_owned(),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        me(&app, Some(&host), None, &token)
            .await
            .assert_error(404, "tenant_not_found");
    }
}

#[tokio::test]
async fn an_unknown_slug_is_tenant_not_found() {
    let (app, token) = acme().await;
    me(&app, Some("globex.localhost"), None, &token)
        .await
        .assert_error(404, "tenant_not_found");
    me(&app, None, Some("globex"), &token)
        .await
        .assert_error(404, "tenant_not_found");
}

#[tokio::test]
async fn a_malformed_slug_is_tenant_not_found_never_a_server_error() {
    let (app, token) = acme().await;
    let long = "a".repeat(200);
    let cases = [
        "../etc",
        "ACME!!",
        &long,
        "ac--me",
        "-acme",
        "1acme",
        "ab",
        "acme;drop",
        "%2e%2e",
    ];
    for slug in cases {
        me(&app, None, Some(slug), &token)
            .await
            .assert_error(404, "tenant_not_found");
    }
    for host in [
        "ACME!!.localhost",
        "a_b.localhost",
        &format!("{long}.localhost"),
    ] {
        me(&app, Some(host), None, &token)
            .await
            .assert_error(404, "tenant_not_found");
    }
}

#[tokio::test]
async fn health_and_readiness_need_no_tenant() {
    let app = spawn_app().await;
    for host in [None, Some("ghost.localhost"), Some("nowhere.example.com")] {
        for path in ["/healthz", "/readyz"] {
            let mut request = app.request(Method::GET, path);
            if let Some(host) = host {
                request = request.header("host", host);
            }
            let reply = Reply::send(request).await;
            assert_eq!(
                reply.status, 200,
                "{path} with Host {host:?}: {}",
                reply.body
            );
        }
    }
    let health = Reply::send(app.request(Method::GET, "/healthz")).await;
    assert_eq!(health.body, json!({"status": "ok"}));
}

#[tokio::test]
async fn an_unknown_route_is_not_found_once_the_tenant_is_resolved() {
    let (app, token) = acme().await;
    let client = app.tenant("acme");
    client
        .get("/v1/nothing-here", &token)
        .await
        .assert_error(404, "not_found");
    client.get("/", &token).await.assert_error(404, "not_found");
    // Without a tenant the same path is a tenant problem first.
    app.tenant("ghost")
        .get("/v1/nothing-here", &token)
        .await
        .assert_error(404, "tenant_not_found");
}

#[tokio::test]
async fn a_suspended_tenant_is_refused_until_it_is_resumed() {
    let (app, token) = acme().await;
    let client = app.tenant("acme");
    let suspended = app
        .admin(Method::POST, "/admin/v1/tenants/acme/suspend", None)
        .await;
    assert_eq!(suspended.status, 200, "{}", suspended.body);
    client
        .get("/v1/me", &token)
        .await
        .assert_error(403, "tenant_suspended");
    client
        .try_login("ann@x.com", "ann-password")
        .await
        .assert_error(403, "tenant_suspended");

    let resumed = app
        .admin(Method::POST, "/admin/v1/tenants/acme/resume", None)
        .await;
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    assert_eq!(client.get("/v1/me", &token).await.status, 200);
}

#[tokio::test]
async fn reserved_slugs_cannot_be_taken() {
    let app = spawn_app_with(|s| s.resolve.reserved_slugs.push("billing".into())).await;
    for slug in [
        "www", "api", "admin", "app", "mail", "static", "assets", "status", "silo", "billing",
    ] {
        app.admin(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({"slug": slug})),
        )
        .await
        .assert_error(422, "validation_failed");
    }
    let list = app.admin(Method::GET, "/admin/v1/tenants", None).await;
    assert_eq!(list.body["data"], json!([]));
}

#[tokio::test]
async fn a_slug_or_domain_that_missed_a_moment_ago_resolves_once_created() {
    let app = spawn_app().await;
    let host =
        |h: &'static str| Reply::send(app.request(Method::GET, "/v1/nope").header("host", h));
    host("globex.localhost")
        .await
        .assert_error(404, "tenant_not_found");
    host("globex.com")
        .await
        .assert_error(404, "tenant_not_found");
    host("www.globex.com")
        .await
        .assert_error(404, "tenant_not_found");

    let created = app
        .admin(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({"slug": "globex", "domains": ["globex.com"]})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    app.admin(
        Method::POST,
        "/admin/v1/tenants/globex/domains",
        Some(json!({"domain": "www.globex.com"})),
    )
    .await;
    for h in ["globex.localhost", "globex.com", "www.globex.com"] {
        host(h).await.assert_error(404, "not_found");
    }
}

#[tokio::test]
async fn repeated_x_tenant_headers_that_disagree_are_a_conflict() {
    let app = crate::helpers::spawn_app().await;
    app.create_tenant("acme").await;
    app.create_tenant("globex").await;
    let both = app
        .client
        .get(app.url("/v1/me"))
        .header("x-tenant", "acme")
        .header("x-tenant", "globex")
        .send()
        .await
        .unwrap();
    let both = crate::helpers::Reply::from(both).await;
    both.assert_error(400, "tenant_conflict");
    let agreeing = app
        .client
        .get(app.url("/v1/me"))
        .header("x-tenant", "acme")
        .header("x-tenant", "ACME")
        .send()
        .await
        .unwrap();
    assert_eq!(
        agreeing.status(),
        401,
        "the same tenant twice is one tenant"
    );
}
