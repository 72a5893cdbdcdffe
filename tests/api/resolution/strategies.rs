//! Each strategy on its own, and strategies that agree or disagree.

use reqwest::Method;
use serde_json::json;

use super::{acme, me};
use crate::helpers::{spawn_app_with, Reply};

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
async fn an_empty_x_tenant_header_names_no_tenant() {
    let (app, token) = acme().await;
    let reply = me(&app, Some("acme.localhost"), Some(""), &token).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = me(&app, Some("acme.localhost"), Some("   "), &token).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}
