//! Members: only an owner grants or removes `owner`, the last owner stays, removal is at once.

use serde_json::json;

use crate::helpers::{spawn_app, team};

async fn id_of(app: &crate::helpers::TestApp, token: &str) -> String {
    app.tenant("acme").get("/v1/me", token).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_last_owner_can_be_neither_demoted_nor_removed() {
    let app = spawn_app().await;
    let team = team(&app, "acme").await;
    let client = app.tenant("acme");
    let owner_id = id_of(&app, &team.owner.access_token).await;
    let path = format!("/v1/members/{owner_id}");
    client
        .patch(&path, &team.owner.access_token, json!({"role": "admin"}))
        .await
        .assert_error(409, "conflict");
    client
        .delete(&path, &team.owner.access_token)
        .await
        .assert_error(409, "conflict");
    assert_eq!(
        client.get("/v1/me", &team.owner.access_token).await.body["role"],
        "owner"
    );
}

#[tokio::test]
async fn with_a_second_owner_the_first_may_step_down() {
    let app = spawn_app().await;
    let team = team(&app, "acme").await;
    let client = app.tenant("acme");
    let admin_id = id_of(&app, &team.admin.access_token).await;
    let promoted = client
        .patch(
            &format!("/v1/members/{admin_id}"),
            &team.owner.access_token,
            json!({"role": "owner"}),
        )
        .await;
    assert_eq!(promoted.status, 200, "{}", promoted.body);
    assert_eq!(promoted.body["role"], "owner");
    let owner_id = id_of(&app, &team.owner.access_token).await;
    let stepped = client
        .patch(
            &format!("/v1/members/{owner_id}"),
            &team.owner.access_token,
            json!({"role": "member"}),
        )
        .await;
    assert_eq!(stepped.status, 200);
}

#[tokio::test]
async fn only_an_owner_grants_or_removes_the_owner_role() {
    let app = spawn_app().await;
    let team = team(&app, "acme").await;
    let client = app.tenant("acme");
    let member_id = id_of(&app, &team.member.access_token).await;
    let owner_id = id_of(&app, &team.owner.access_token).await;
    let admin = &team.admin.access_token;
    client
        .patch(
            &format!("/v1/members/{member_id}"),
            admin,
            json!({"role": "owner"}),
        )
        .await
        .assert_error(403, "forbidden");
    client
        .patch(
            &format!("/v1/members/{owner_id}"),
            admin,
            json!({"role": "viewer"}),
        )
        .await
        .assert_error(403, "forbidden");
    client
        .delete(&format!("/v1/members/{owner_id}"), admin)
        .await
        .assert_error(403, "forbidden");
    let invite = client
        .post(
            "/v1/invitations",
            Some(admin),
            json!({"email": "o2@acme.test", "role": "owner"}),
        )
        .await;
    invite.assert_error(403, "forbidden");
}

#[tokio::test]
async fn an_unknown_role_is_a_validation_error() {
    let app = spawn_app().await;
    let team = team(&app, "acme").await;
    let member_id = id_of(&app, &team.member.access_token).await;
    let reply = app
        .tenant("acme")
        .patch(
            &format!("/v1/members/{member_id}"),
            &team.owner.access_token,
            json!({"role": "superuser"}),
        )
        .await;
    reply.assert_error(422, "validation_failed");
    assert!(reply.body["error"]["fields"]["role"].is_string());
}

#[tokio::test]
async fn a_removed_member_loses_access_tokens_refresh_tokens_and_api_tokens_at_once() {
    let app = spawn_app().await;
    let team = team(&app, "acme").await;
    let client = app.tenant("acme");
    let api = client
        .create_api_token(&team.member.access_token, json!(["projects:read"]))
        .await;
    let api_token = api["token"].as_str().unwrap().to_owned();
    assert_eq!(client.get("/v1/projects", &api_token).await.status, 200);

    let member_id = id_of(&app, &team.member.access_token).await;
    assert_eq!(
        client
            .delete(
                &format!("/v1/members/{member_id}"),
                &team.admin.access_token
            )
            .await
            .status,
        204
    );

    client
        .get("/v1/me", &team.member.access_token)
        .await
        .assert_error(401, "unauthorized");
    client
        .get("/v1/projects", &api_token)
        .await
        .assert_error(401, "unauthorized");
    let refresh = client
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": team.member.refresh_token}),
        )
        .await;
    refresh.assert_error(401, "unauthorized");
    let members = client.get("/v1/members", &team.owner.access_token).await;
    assert_eq!(members.body["data"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn members_are_listed_newest_first_and_paginated() {
    let app = spawn_app().await;
    let team = team(&app, "acme").await;
    let client = app.tenant("acme");
    let first = client
        .get("/v1/members?limit=3", &team.admin.access_token)
        .await;
    assert_eq!(first.body["data"].as_array().unwrap().len(), 3);
    assert_eq!(first.body["data"][0]["email"], "viewer@acme.test");
    let cursor = first.body["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let second = client
        .get(
            &format!("/v1/members?limit=3&cursor={cursor}"),
            &team.admin.access_token,
        )
        .await;
    assert_eq!(second.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(second.body["data"][0]["email"], "owner@acme.test");
    assert!(second.body["next_cursor"].is_null());
    assert!(second.body["data"][0].get("password_hash").is_none());
}

#[tokio::test]
async fn a_member_id_from_another_tenant_is_not_found() {
    let app = spawn_app().await;
    let acme = team(&app, "acme").await;
    let globex = team(&app, "globex").await;
    let globex_member = app
        .tenant("globex")
        .get("/v1/me", &globex.member.access_token)
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/members/{globex_member}");
    let client = app.tenant("acme");
    client
        .patch(&path, &acme.owner.access_token, json!({"role": "viewer"}))
        .await
        .assert_error(404, "not_found");
    client
        .delete(&path, &acme.owner.access_token)
        .await
        .assert_error(404, "not_found");
    assert_eq!(
        app.tenant("globex")
            .get("/v1/me", &globex.member.access_token)
            .await
            .body["role"],
        "member"
    );
}
