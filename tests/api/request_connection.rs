//! One connection per request: the user check and the handler's queries share the connection
//! the request takes from its tenant's pool. With a pool of one connection, a handler that
//! asked the pool for a second connection while holding the first would wait out the acquire
//! timeout (a 503), so every route answering here proves the sharing.

use std::time::Duration;

use futures::future::join_all;
use reqwest::Method;
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{spawn_app_with, team, TestApp};

async fn one_connection_per_tenant() -> TestApp {
    spawn_app_with(|settings| {
        settings.pool.max_connections_per_tenant = 1;
        // Long enough for a loaded machine: a second acquisition would wait it out (503).
        settings.pool.acquire_timeout_ms = 10_000;
    })
    .await
}

#[tokio::test]
async fn every_tenant_route_works_with_a_pool_of_one_connection() {
    let app = one_connection_per_tenant().await;
    // Provisioning, sign-in, three invitations sent and accepted.
    let team = team(&app, "solo").await;
    let client = app.tenant("solo");
    let owner = &team.owner.access_token;

    let me = client.get("/v1/me", owner).await;
    assert_eq!(me.status, 200, "{}", me.body);

    let id = client.create_project(owner, "first").await;
    let listed = client.get("/v1/projects", owner).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
    let read = client.get(&format!("/v1/projects/{id}"), owner).await;
    assert_eq!(read.status, 200, "{}", read.body);
    let patched = client
        .patch(
            &format!("/v1/projects/{id}"),
            owner,
            json!({ "name": "renamed" }),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let deleted = client.delete(&format!("/v1/projects/{id}"), owner).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);

    let members = client.get("/v1/members", owner).await;
    assert_eq!(members.status, 200, "{}", members.body);
    assert_eq!(members.body["data"].as_array().unwrap().len(), 4);
    let demoted = client
        .patch(
            &format!("/v1/members/{}", team.member.user_id),
            owner,
            json!({ "role": "viewer" }),
        )
        .await;
    assert_eq!(demoted.status, 200, "{}", demoted.body);
    // Removal deletes the user's tokens in a transaction on the request's connection.
    let removed = client
        .delete(&format!("/v1/members/{}", team.viewer.user_id), owner)
        .await;
    assert_eq!(removed.status, 204, "{}", removed.body);

    // An API token authenticates (and records its use) on the request's connection.
    let created = client
        .create_api_token(&team.admin.access_token, json!(["projects:read"]))
        .await;
    let api_token = created["token"].as_str().unwrap();
    let by_api_token = client.get("/v1/projects", api_token).await;
    assert_eq!(by_api_token.status, 200, "{}", by_api_token.body);
    let introspected = client.get("/v1/api-tokens/introspect", api_token).await;
    assert_eq!(introspected.status, 200, "{}", introspected.body);
    let tokens = client.get("/v1/api-tokens", owner).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let revoked = client
        .delete(
            &format!("/v1/api-tokens/{}", created["id"].as_str().unwrap()),
            owner,
        )
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.body);

    let audit = client.get("/v1/audit", owner).await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let failed_login = client.try_login("owner@solo.test", "wrong-password").await;
    failed_login.assert_error(401, "invalid_credentials");

    let refreshed = client
        .post(
            "/v1/auth/refresh",
            None,
            json!({ "refresh_token": team.owner.refresh_token }),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let next = refreshed.body["refresh_token"].as_str().unwrap();
    let logout = client
        .post("/v1/auth/logout", None, json!({ "refresh_token": next }))
        .await;
    assert_eq!(logout.status, 204, "{}", logout.body);

    // The control path takes its own connection from the same pool of one.
    let support = app
        .admin(
            Method::POST,
            "/admin/v1/tenants/solo/support-sessions",
            Some(json!({ "email": "owner@solo.test", "reason": "ticket 42" })),
        )
        .await;
    assert_eq!(support.status, 201, "{}", support.body);
    app.shutdown().await;
}

#[tokio::test]
async fn concurrent_requests_of_two_tenants_on_pools_of_one_are_all_served_their_own_data() {
    let app = one_connection_per_tenant().await;
    let acme = app
        .create_tenant_with_owner("acme", "owner@acme.test", "owner-password")
        .await;
    let globex = app
        .create_tenant_with_owner("globex", "owner@globex.test", "owner-password")
        .await;
    app.tenant("acme")
        .create_project(&acme.access_token, "acme-only")
        .await;
    app.tenant("globex")
        .create_project(&globex.access_token, "globex-only")
        .await;

    let requests = (0..40).map(|i| {
        let (slug, token, own) = if i % 2 == 0 {
            ("acme", &acme.access_token, "acme-only")
        } else {
            ("globex", &globex.access_token, "globex-only")
        };
        let app = &app;
        async move {
            let reply = app.tenant(slug).get("/v1/projects", token).await;
            (slug, own, reply)
        }
    });
    for (slug, own, reply) in join_all(requests).await {
        assert_eq!(reply.status, 200, "{slug}: {}", reply.body);
        let names: Vec<&str> = reply.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, [own], "{slug} must see exactly its own project");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_slow_upload_does_not_hold_the_tenant_connection() {
    let app = spawn_app_with(|settings| {
        settings.pool.max_connections_per_tenant = 1;
        // Short, so that a request stuck behind the upload would fail fast with 503.
        settings.pool.acquire_timeout_ms = 1_000;
    })
    .await;
    let owner = app
        .create_tenant_with_owner("acme", "owner@acme.test", "owner-password")
        .await;
    // A signed-in client starts a project upload and sends one byte of its body.
    let body = format!("{:<100}", r#"{"name":"slow upload"}"#);
    let mut upload = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /v1/projects HTTP/1.1\r\nHost: acme.localhost\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{}",
        owner.access_token,
        &body[..1]
    );
    upload.write_all(head.as_bytes()).await.unwrap();
    // Give the server the time to check the user before the body (ordering, not a measurement).
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Meanwhile the tenant's only connection serves others.
    let listed = app
        .tenant("acme")
        .get("/v1/projects", &owner.access_token)
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);

    // The upload then completes normally.
    upload.write_all(&body.as_bytes()[1..]).await.unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&response).contains("slow upload") {
        let n = upload.read(&mut buf).await.unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&response));
        response.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 201"), "{text}");
    app.shutdown().await;
}

/// A tenant database locked by another process (a connection outside silo holding a write
/// transaction, as a `silo migrate` run would): the tenant's write waits and goes through once
/// the lock is gone, while its reads (an API token's first use too, which would record the use)
/// and other tenants are served; held past the wait, the write is answered `503` with
/// `Retry-After`, and nothing of it is written.
#[tokio::test]
async fn a_write_waits_out_another_process_then_gives_up_with_503() {
    if crate::helpers::sqlite_files_only() {
        return;
    }
    let app = crate::helpers::spawn_app().await;
    let acme = app
        .create_tenant_with_owner("acme", "owner@acme.test", "owner-password")
        .await;
    let globex = app
        .create_tenant_with_owner("globex", "owner@globex.test", "owner-password")
        .await;
    let tenant = app
        .admin(Method::GET, "/admin/v1/tenants/acme", None)
        .await
        .body;
    let other = rusqlite::Connection::open(app.database_file(&tenant)).unwrap();
    let client = app.tenant("acme");
    let api_token = client
        .create_api_token(&acme.access_token, json!(["projects:read"]))
        .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let create = |name: &str| {
        client.post(
            "/v1/projects",
            Some(&acme.access_token),
            json!({ "name": name }),
        )
    };

    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let meanwhile = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let read = client.get("/v1/projects", &acme.access_token).await;
        assert_eq!(read.status, 200, "{}", read.body);
        let read = client.get("/v1/projects", &api_token).await;
        assert_eq!(read.status, 200, "{}", read.body);
        app.tenant("globex")
            .create_project(&globex.access_token, "unaffected")
            .await;
        other.execute_batch("COMMIT").unwrap();
    };
    let (waited, ()) = tokio::join!(create("waited"), meanwhile);
    assert_eq!(waited.status, 201, "{}", waited.body);

    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    create("refused").await.assert_unavailable();
    other.execute_batch("ROLLBACK").unwrap();

    let listed = client.get("/v1/projects", &acme.access_token).await;
    let names: Vec<&str> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|project| project["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["waited"]);
}
