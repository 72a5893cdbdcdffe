//! Which tenant a request reaches: subdomain, `X-Tenant`, custom domain, the opt-in path
//! prefix, and the answers when the request names none, several, or one that cannot be served.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, Reply, TestApp};

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

#[tokio::test]
async fn the_subdomain_names_the_tenant_with_or_without_port_and_in_any_case() {
    let (app, token) = acme().await;
    let port = app.addr.port();
    for host in [
        "acme.localhost".to_owned(),
        format!("acme.localhost:{port}"),
        format!("ACME.LocalHost:{port}"),
        "acme.localhost.".to_owned(),
    ] {
        let reply = me(&app, Some(&host), None, &token).await;
        assert_eq!(reply.status, 200, "Host {host}: {}", reply.body);
        assert_eq!(reply.body["tenant"]["slug"], "acme", "Host {host}");
    }
}

#[tokio::test]
async fn the_x_tenant_header_is_trimmed_and_lower_cased() {
    let (app, token) = acme().await;
    for value in ["acme", " Acme ", "ACME"] {
        let reply = me(&app, None, Some(value), &token).await;
        assert_eq!(reply.status, 200, "X-Tenant {value:?}: {}", reply.body);
        assert_eq!(reply.body["tenant"]["slug"], "acme");
    }
}

#[tokio::test]
async fn an_attached_custom_domain_resolves_until_it_is_removed() {
    let (app, token) = acme().await;
    let added = app
        .admin(
            Method::POST,
            "/admin/v1/tenants/acme/domains",
            Some(json!({"domain": "App.Acme.com"})),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.body["domains"], json!(["app.acme.com"]));

    let port = app.addr.port();
    for host in ["app.acme.com".to_owned(), format!("APP.acme.COM:{port}")] {
        let reply = me(&app, Some(&host), None, &token).await;
        assert_eq!(reply.status, 200, "Host {host}: {}", reply.body);
        assert_eq!(reply.body["tenant"]["slug"], "acme");
    }

    let removed = app
        .admin(
            Method::DELETE,
            "/admin/v1/tenants/acme/domains/app.acme.com",
            None,
        )
        .await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    me(&app, Some("app.acme.com"), None, &token)
        .await
        .assert_error(404, "tenant_not_found");
}

#[tokio::test]
async fn an_unknown_custom_domain_is_tenant_not_found() {
    let (app, token) = acme().await;
    me(&app, Some("www.example.org"), None, &token)
        .await
        .assert_error(404, "tenant_not_found");
}

#[tokio::test]
async fn two_strategies_naming_different_tenants_conflict_whether_or_not_they_exist() {
    let (app, token) = acme().await;
    app.create_tenant("globex").await;
    app.admin(
        Method::POST,
        "/admin/v1/tenants/acme/domains",
        Some(json!({"domain": "acme.example.com"})),
    )
    .await;
    let cases = [
        ("acme.localhost", "globex"),
        ("ghost.localhost", "phantom"),
        ("acme.localhost", "phantom"),
        ("acme.example.com", "globex"),
    ];
    for (host, header) in cases {
        me(&app, Some(host), Some(header), &token)
            .await
            .assert_error(400, "tenant_conflict");
    }
    // Agreeing strategies are fine.
    let agree = me(&app, Some("acme.localhost"), Some("ACME"), &token).await;
    assert_eq!(agree.status, 200, "{}", agree.body);
    let agree = me(&app, Some("acme.example.com"), Some("acme"), &token).await;
    assert_eq!(agree.status, 200, "{}", agree.body);
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
async fn the_path_strategy_is_off_unless_enabled() {
    let (app, token) = acme().await;
    let reply = Reply::send(
        app.request(Method::GET, "/t/acme/v1/me")
            .bearer_auth(&token),
    )
    .await;
    reply.assert_error(404, "tenant_not_found");
    // With a tenant named another way, /t/... is just a path no route serves.
    app.tenant("acme")
        .get("/t/acme/v1/me", &token)
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn the_path_strategy_resolves_and_strips_the_prefix_when_enabled() {
    let app = spawn_app_with(|s| s.resolve.strategies.push("path".into())).await;
    app.create_tenant("acme").await;
    let signup = Reply::send(
        app.request(Method::POST, "/t/acme/v1/auth/signup")
            .json(&json!({"email": "pat@x.com", "password": "pat-password"})),
    )
    .await;
    assert_eq!(signup.status, 201, "{}", signup.body);
    let token = signup.body["access_token"].as_str().unwrap().to_owned();

    for path in ["/t/acme/v1/me", "/t/ACME/v1/me"] {
        let reply = Reply::send(app.request(Method::GET, path).bearer_auth(&token)).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert_eq!(reply.body["tenant"]["slug"], "acme");
    }
    // The query string survives the stripping.
    let created = Reply::send(
        app.request(Method::POST, "/t/acme/v1/projects")
            .bearer_auth(&token)
            .json(&json!({"name": "one"})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    app.tenant("acme").create_project(&token, "two").await;
    let page = Reply::send(
        app.request(Method::GET, "/t/acme/v1/projects?limit=1")
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body["data"].as_array().unwrap().len(), 1);

    Reply::send(
        app.request(Method::GET, "/t/acme/v1/nope")
            .bearer_auth(&token),
    )
    .await
    .assert_error(404, "not_found");
    Reply::send(
        app.request(Method::GET, "/t/ghost/v1/me")
            .bearer_auth(&token),
    )
    .await
    .assert_error(404, "tenant_not_found");
    // A path naming one tenant and a subdomain naming another conflict.
    app.create_tenant("globex").await;
    app.tenant("globex")
        .get("/t/acme/v1/me", &token)
        .await
        .assert_error(400, "tenant_conflict");
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
