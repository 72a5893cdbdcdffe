//! API tokens: scopes enforced exactly, never beyond the user's role, shown once, revocable,
//! and worthless in any other tenant.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, team, TestApp};

async fn create(app: &TestApp, token: &str, scopes: Value) -> Value {
    app.tenant("acme").create_api_token(token, scopes).await
}

#[tokio::test]
async fn the_secret_is_shown_once_and_never_listed() {
    let app = spawn_app().await;
    let team = team(&app, "acme").await;
    let created = create(&app, &team.member.access_token, json!(["projects:read"])).await;
    let secret = created["token"].as_str().unwrap();
    assert!(secret.starts_with("sk_") && secret.len() > 40);
    assert!(created["expires_at"].is_null(), "no expiry unless asked");
    let list = app
        .tenant("acme")
        .get("/v1/api-tokens", &team.member.access_token)
        .await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert!(!list.body.to_string().contains(secret));
}

#[tokio::test]
async fn each_scope_allows_only_what_it_names() {
    let app = spawn_app().await;
    let team = team(&app, "acme").await;
    let client = app.tenant("acme");
    let read = create(&app, &team.owner.access_token, json!(["projects:read"])).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let write = create(&app, &team.owner.access_token, json!(["projects:write"])).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let members = create(&app, &team.owner.access_token, json!(["members:read"])).await["token"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_eq!(client.get("/v1/projects", &read).await.status, 200);
    client
        .post("/v1/projects", Some(&read), json!({"name": "x"}))
        .await
        .assert_error(403, "forbidden");
    assert_eq!(
        client
            .post("/v1/projects", Some(&write), json!({"name": "x"}))
            .await
            .status,
        201
    );
    client
        .get("/v1/projects", &write)
        .await
        .assert_error(403, "forbidden");
    assert_eq!(client.get("/v1/members", &members).await.status, 200);
    client
        .get("/v1/projects", &members)
        .await
        .assert_error(403, "forbidden");
    // Nothing a scope does not name: not /v1/me, not the audit log, not new tokens.
    for path in ["/v1/me", "/v1/audit", "/v1/api-tokens"] {
        client.get(path, &read).await.assert_error(403, "forbidden");
    }
}

#[tokio::test]
async fn a_token_never_acts_beyond_its_users_role() {
    let app = spawn_app().await;
    let team = team(&app, "acme").await;
    let token = create(
        &app,
        &team.member.access_token,
        json!(["members:read", "members:write", "projects:write"]),
    )
    .await;
    let token = token["token"].as_str().unwrap();
    let client = app.tenant("acme");
    client
        .get("/v1/members", token)
        .await
        .assert_error(403, "forbidden");
    let id = client
        .create_project(&team.owner.access_token, "owner's")
        .await;
    client
        .delete(&format!("/v1/projects/{id}"), token)
        .await
        .assert_error(403, "forbidden");
}

#[tokio::test]
async fn an_api_token_of_one_tenant_is_refused_at_another() {
    let app = spawn_app().await;
    let acme = team(&app, "acme").await;
    team(&app, "globex").await;
    let token = create(
        &app,
        &acme.owner.access_token,
        json!(["projects:read", "members:read"]),
    )
    .await;
    let token = token["token"].as_str().unwrap();
    let globex = app.tenant("globex");
    globex
        .get("/v1/projects", token)
        .await
        .assert_error(401, "unauthorized");
    globex
        .get("/v1/api-tokens/introspect", token)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn revocation_takes_effect_at_once_and_only_for_its_owner_or_an_admin() {
    let app = spawn_app().await;
    let team = team(&app, "acme").await;
    let client = app.tenant("acme");
    let created = create(&app, &team.member.access_token, json!(["projects:read"])).await;
    let (id, secret) = (
        created["id"].as_str().unwrap(),
        created["token"].as_str().unwrap(),
    );
    let path = format!("/v1/api-tokens/{id}");
    let other_member =
        crate::helpers::invite_and_accept(&app, "acme", &team.owner, "m2@acme.test", "member")
            .await;
    client
        .delete(&path, &other_member.access_token)
        .await
        .assert_error(404, "not_found");
    assert_eq!(client.get("/v1/projects", secret).await.status, 200);
    assert_eq!(
        client.delete(&path, &team.admin.access_token).await.status,
        204
    );
    client
        .get("/v1/projects", secret)
        .await
        .assert_error(401, "unauthorized");
    client
        .delete(&path, &team.admin.access_token)
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn admins_list_everyones_tokens_members_their_own() {
    let app = spawn_app().await;
    let team = team(&app, "acme").await;
    create(&app, &team.member.access_token, json!(["projects:read"])).await;
    create(&app, &team.admin.access_token, json!(["projects:read"])).await;
    let client = app.tenant("acme");
    assert_eq!(
        client
            .get("/v1/api-tokens", &team.member.access_token)
            .await
            .body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        client
            .get("/v1/api-tokens", &team.admin.access_token)
            .await
            .body["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn introspection_describes_the_token_and_records_its_use() {
    let app = spawn_app().await;
    let team = team(&app, "acme").await;
    let body = json!({"name": "deploy", "scopes": ["projects:write", "projects:read"], "expires_in_days": 30});
    let created = app
        .tenant("acme")
        .post("/v1/api-tokens", Some(&team.member.access_token), body)
        .await;
    assert_eq!(created.status, 201);
    let secret = created.body["token"].as_str().unwrap();
    let seen = app
        .tenant("acme")
        .get("/v1/api-tokens/introspect", secret)
        .await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert_eq!(seen.body["name"], "deploy");
    assert_eq!(
        seen.body["scopes"],
        json!(["projects:read", "projects:write"])
    );
    assert_eq!(seen.body["tenant"]["slug"], "acme");
    assert!(seen.body["expires_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    assert!(seen.body["last_used_at"].is_string(), "{}", seen.body);
    // With an access token instead of an API token there is nothing to introspect.
    app.tenant("acme")
        .get("/v1/api-tokens/introspect", &team.member.access_token)
        .await
        .assert_error(403, "forbidden");
}

#[tokio::test]
async fn bad_scopes_and_expiries_are_validation_errors() {
    let app = spawn_app().await;
    let team = team(&app, "acme").await;
    let client = app.tenant("acme");
    for body in [
        json!({"name": "x", "scopes": ["projects:admin"]}),
        json!({"name": "x", "scopes": []}),
        json!({"name": "x", "scopes": ["projects:read"], "expires_in_days": 0}),
        json!({"name": "x", "scopes": ["projects:read"], "expires_in_days": 100000}),
        json!({"name": "", "scopes": ["projects:read"]}),
    ] {
        client
            .post("/v1/api-tokens", Some(&team.member.access_token), body)
            .await
            .assert_error(422, "validation_failed");
    }
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = spawn_app().await;
    let team = team(&app, "acme").await;
    let created = create(&app, &team.member.access_token, json!(["projects:read"])).await;
    let tenant = silo::control::find(&app.state, "acme").await.unwrap();
    let mut conn = app
        .state
        .pools
        .get(&tenant)
        .await
        .unwrap()
        .acquire()
        .await
        .unwrap();
    silo::sql::query("UPDATE api_tokens SET expires_at = 1")
        .execute(&mut *conn)
        .await
        .unwrap();
    app.tenant("acme")
        .get("/v1/projects", created["token"].as_str().unwrap())
        .await
        .assert_error(401, "unauthorized");
}
