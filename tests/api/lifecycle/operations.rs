//! Operating tenants through the admin API: the token, listing, suspend and resume, delete.

use reqwest::Method;
use serde_json::json;

use super::slugs;
use crate::helpers::{list_dir, spawn_app, Reply, ADMIN_TOKEN};

#[tokio::test]
async fn every_admin_route_needs_the_admin_token() {
    let app = spawn_app().await;
    app.create_tenant("acme").await;
    let routes = [
        (Method::GET, "/admin/v1/tenants"),
        (Method::POST, "/admin/v1/tenants"),
        (Method::GET, "/admin/v1/tenants/acme"),
        (Method::DELETE, "/admin/v1/tenants/acme?confirm=acme"),
        (Method::POST, "/admin/v1/tenants/acme/suspend"),
        (Method::POST, "/admin/v1/tenants/acme/resume"),
        (Method::POST, "/admin/v1/tenants/acme/domains"),
        (Method::DELETE, "/admin/v1/tenants/acme/domains/acme.com"),
        (Method::GET, "/admin/v1/nothing-here"),
        (Method::PUT, "/admin/v1/tenants"),
        (Method::GET, "/"),
    ];
    let wrong = format!("{}x", ADMIN_TOKEN);
    for (method, path) in routes {
        for token in [None, Some("wrong"), Some(wrong.as_str()), Some("")] {
            app.admin_with_token(method.clone(), path, Some(json!({"slug": "globex"})), token)
                .await
                .assert_error(401, "unauthorized");
        }
    }
    // Another scheme carrying the right token is not a bearer token.
    let basic = Reply::send(
        app.client
            .get(format!("http://{}/admin/v1/tenants", app.admin_addr))
            .header("authorization", format!("Basic {}", ADMIN_TOKEN)),
    )
    .await;
    basic.assert_error(401, "unauthorized");
    // Nothing happened to acme.
    let acme = app.admin(Method::GET, "/admin/v1/tenants/acme", None).await;
    assert_eq!(acme.body["status"], "active");
    assert_eq!(slugs(&app, "").await, vec!["acme"]);
}

#[tokio::test]
async fn tenants_are_listed_oldest_first_in_pages_and_by_status() {
    let app = spawn_app().await;
    let all = ["acme", "globex", "initech", "umbrella", "hooli"];
    for slug in all {
        app.create_tenant(slug).await;
    }
    assert_eq!(slugs(&app, "").await, all);

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let page = app
            .admin(Method::GET, &format!("/admin/v1/tenants{query}"), None)
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let data = page.body["data"].as_array().unwrap();
        sizes.push(data.len());
        seen.extend(data.iter().map(|t| t["slug"].as_str().unwrap().to_owned()));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
            None => break,
        }
        assert!(sizes.len() < 10, "pagination does not end");
    }
    assert_eq!(sizes, vec![2, 2, 1]);
    assert_eq!(seen, all);

    for slug in ["globex", "hooli"] {
        app.admin(
            Method::POST,
            &format!("/admin/v1/tenants/{slug}/suspend"),
            None,
        )
        .await;
    }
    assert_eq!(slugs(&app, "?status=suspended").await, ["globex", "hooli"]);
    assert_eq!(
        slugs(&app, "?status=active").await,
        ["acme", "initech", "umbrella"]
    );
    assert!(slugs(&app, "?status=deleting").await.is_empty());
    assert_eq!(slugs(&app, "?status=suspended&limit=1").await, ["globex"]);
    app.admin(Method::GET, "/admin/v1/tenants?status=asleep", None)
        .await
        .assert_error(422, "validation_failed");
}

#[tokio::test]
async fn an_unknown_tenant_is_not_found_on_the_admin_api() {
    let app = spawn_app().await;
    for (method, path) in [
        (Method::GET, "/admin/v1/tenants/ghost"),
        (Method::GET, "/admin/v1/tenants/..%2Fetc"),
        (Method::POST, "/admin/v1/tenants/ghost/suspend"),
        (Method::POST, "/admin/v1/tenants/ghost/resume"),
        (Method::DELETE, "/admin/v1/tenants/ghost?confirm=ghost"),
        (Method::DELETE, "/admin/v1/tenants/ghost/domains/ghost.com"),
    ] {
        app.admin(method, path, None)
            .await
            .assert_error(404, "not_found");
    }
    app.create_tenant("acme").await;
    app.admin(
        Method::DELETE,
        "/admin/v1/tenants/acme/domains/never.com",
        None,
    )
    .await
    .assert_error(404, "not_found");
}

#[tokio::test]
async fn suspend_and_resume_answer_with_the_new_status() {
    let app = spawn_app().await;
    app.create_tenant("acme").await;
    for (action, status) in [
        ("suspend", "suspended"),
        ("suspend", "suspended"),
        ("resume", "active"),
        ("resume", "active"),
    ] {
        let reply = app
            .admin(
                Method::POST,
                &format!("/admin/v1/tenants/acme/{action}"),
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{action}: {}", reply.body);
        assert_eq!(reply.body["status"], status, "{action}");
        assert_eq!(reply.body["slug"], "acme");
    }
}

#[tokio::test]
async fn deleting_needs_the_slug_confirmed_and_then_removes_everything() {
    let app = spawn_app().await;
    let owner = app
        .create_tenant_with_owner("acme", "owner@acme.com", "owner-password")
        .await;
    app.tenant("acme")
        .create_project(&owner.access_token, "p")
        .await;
    let tenant = app
        .admin(Method::GET, "/admin/v1/tenants/acme", None)
        .await
        .body;
    let database = app.database(&tenant);
    assert!(database.exists().await);

    for path in [
        "/admin/v1/tenants/acme",
        "/admin/v1/tenants/acme?confirm=",
        "/admin/v1/tenants/acme?confirm=globex",
        "/admin/v1/tenants/acme?confirm=ACME",
    ] {
        app.admin(Method::DELETE, path, None)
            .await
            .assert_error(400, "bad_request");
    }
    assert_eq!(
        app.tenant("acme")
            .get("/v1/me", &owner.access_token)
            .await
            .status,
        200
    );

    let deleted = app
        .admin(Method::DELETE, "/admin/v1/tenants/acme?confirm=acme", None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    app.tenant("acme")
        .get("/v1/me", &owner.access_token)
        .await
        .assert_error(404, "tenant_not_found");
    app.admin(Method::GET, "/admin/v1/tenants/acme", None)
        .await
        .assert_error(404, "not_found");
    assert!(!database.exists().await, "{database:?} left behind");
    if crate::helpers::tenant_server_url().is_none() {
        let name = tenant["database"].as_str().unwrap();
        let left: Vec<String> = list_dir(&app.tenants_dir())
            .into_iter()
            .filter(|file| file.contains(name))
            .collect();
        assert!(left.is_empty(), "its build lock left behind: {left:?}");
    }
    assert_eq!(app.state.pools.open_count(), 0);

    // The slug is free again, and the new tenant starts empty.
    app.create_tenant("acme").await;
    let fresh = app
        .tenant("acme")
        .signup("new@acme.com", "new-password")
        .await;
    let projects = app
        .tenant("acme")
        .get("/v1/projects", &fresh.access_token)
        .await;
    assert_eq!(projects.body["data"], json!([]));
}

#[tokio::test]
async fn a_delete_that_fails_part_way_leaves_the_tenant_gone_for_clients_and_can_be_finished() {
    if crate::helpers::sqlite_files_only() {
        return;
    }
    let app = spawn_app().await;
    let tenant = app.create_tenant("acme").await;
    let session = app.tenant("acme").signup("a@x.com", "a-password").await;
    // Something that cannot be removed as a file sits where the database was.
    let file = app.database_file(&tenant);
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    std::fs::write(file.join("keep"), b"x").unwrap();

    app.admin(Method::DELETE, "/admin/v1/tenants/acme?confirm=acme", None)
        .await
        .assert_error(500, "internal");
    let shown = app.admin(Method::GET, "/admin/v1/tenants/acme", None).await;
    assert_eq!(shown.body["status"], "deleting", "{}", shown.body);
    assert_eq!(slugs(&app, "?status=deleting").await, ["acme"]);
    app.tenant("acme")
        .get("/v1/me", &session.access_token)
        .await
        .assert_error(404, "tenant_not_found");
    app.admin(
        Method::POST,
        "/admin/v1/tenants",
        Some(json!({"slug": "acme"})),
    )
    .await
    .assert_error(409, "conflict");

    std::fs::remove_dir_all(&file).unwrap();
    let finished = app
        .admin(Method::DELETE, "/admin/v1/tenants/acme?confirm=acme", None)
        .await;
    assert_eq!(finished.status, 204, "{}", finished.body);
    assert!(slugs(&app, "").await.is_empty());
}

#[tokio::test]
async fn deleting_a_tenant_frees_its_domains() {
    let app = spawn_app().await;
    let reply = app
        .admin(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({"slug": "acme", "domains": ["acme.com"]})),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let seen = Reply::send(
        app.request(Method::GET, "/v1/nope")
            .header("host", "acme.com"),
    )
    .await;
    seen.assert_error(404, "not_found");

    app.admin(Method::DELETE, "/admin/v1/tenants/acme?confirm=acme", None)
        .await;
    Reply::send(
        app.request(Method::GET, "/v1/nope")
            .header("host", "acme.com"),
    )
    .await
    .assert_error(404, "tenant_not_found");
    let reuse = app
        .admin(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({"slug": "globex", "domains": ["acme.com"]})),
        )
        .await;
    assert_eq!(reuse.status, 201, "{}", reuse.body);
    let moved = Reply::send(
        app.request(Method::GET, "/v1/nope")
            .header("host", "acme.com"),
    )
    .await;
    moved.assert_error(404, "not_found");
}

#[tokio::test]
async fn a_suspended_tenant_is_refused_on_its_custom_domain_too() {
    let app = spawn_app().await;
    app.admin(
        Method::POST,
        "/admin/v1/tenants",
        Some(json!({"slug": "acme", "domains": ["acme.com"]})),
    )
    .await;
    app.admin(Method::POST, "/admin/v1/tenants/acme/suspend", None)
        .await;
    Reply::send(
        app.request(Method::GET, "/v1/me")
            .header("host", "acme.com"),
    )
    .await
    .assert_error(403, "tenant_suspended");
}
