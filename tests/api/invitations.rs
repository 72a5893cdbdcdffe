//! Invitations work once, only in their own tenant, and not after they expire.

use serde_json::json;

use crate::helpers::{spawn_app, team};

async fn invite(app: &crate::helpers::TestApp, slug: &str, token: &str, email: &str) -> String {
    let reply = app
        .tenant(slug)
        .post(
            "/v1/invitations",
            Some(token),
            json!({"email": email, "role": "member"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    for field in ["id", "email", "role", "token", "expires_at"] {
        assert!(!reply.body[field].is_null(), "{field} in {}", reply.body);
    }
    reply.body["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_invitation_works_once() {
    let app = spawn_app().await;
    let team = team(&app, "acme").await;
    let token = invite(&app, "acme", &team.admin.access_token, "new@acme.test").await;
    let client = app.tenant("acme");
    let first = client
        .post(
            "/v1/invitations/accept",
            None,
            json!({"token": token, "password": "new-password"}),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["user"]["email"], "new@acme.test");
    let again = client
        .post(
            "/v1/invitations/accept",
            None,
            json!({"token": token, "password": "other-password"}),
        )
        .await;
    again.assert_error(401, "unauthorized");
    client.login("new@acme.test", "new-password").await;
}

#[tokio::test]
async fn an_invitation_of_one_tenant_is_refused_at_another_and_creates_nothing_there() {
    let app = spawn_app().await;
    let acme = team(&app, "acme").await;
    let globex = team(&app, "globex").await;
    let token = invite(&app, "acme", &acme.admin.access_token, "roamer@x.test").await;
    let at_globex = app
        .tenant("globex")
        .post(
            "/v1/invitations/accept",
            None,
            json!({"token": token, "password": "roamer-pass"}),
        )
        .await;
    at_globex.assert_error(401, "unauthorized");
    app.tenant("globex")
        .try_login("roamer@x.test", "roamer-pass")
        .await
        .assert_error(401, "invalid_credentials");
    assert_eq!(
        app.tenant("globex")
            .get("/v1/members", &globex.owner.access_token)
            .await
            .body["data"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    // Still good at home.
    let home = app
        .tenant("acme")
        .post(
            "/v1/invitations/accept",
            None,
            json!({"token": token, "password": "roamer-pass"}),
        )
        .await;
    assert_eq!(home.status, 201);
}

#[tokio::test]
async fn an_expired_invitation_is_refused() {
    let app = spawn_app().await;
    let team = team(&app, "acme").await;
    let token = invite(&app, "acme", &team.admin.access_token, "late@acme.test").await;
    // Age the invitation in the tenant's own database, as seven days would.
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
    silo::sql::query("UPDATE invitations SET expires_at = 0")
        .execute(&mut *conn)
        .await
        .unwrap();
    let reply = app
        .tenant("acme")
        .post(
            "/v1/invitations/accept",
            None,
            json!({"token": token, "password": "late-password"}),
        )
        .await;
    reply.assert_error(401, "unauthorized");
}

#[tokio::test]
async fn inviting_an_existing_member_is_a_conflict_and_bad_input_is_422() {
    let app = spawn_app().await;
    let team = team(&app, "acme").await;
    let client = app.tenant("acme");
    let admin = Some(team.admin.access_token.as_str());
    client
        .post(
            "/v1/invitations",
            admin,
            json!({"email": "MEMBER@acme.test", "role": "viewer"}),
        )
        .await
        .assert_error(409, "conflict");
    client
        .post(
            "/v1/invitations",
            admin,
            json!({"email": "x@acme.test", "role": "god"}),
        )
        .await
        .assert_error(422, "validation_failed");
    client
        .post(
            "/v1/invitations",
            admin,
            json!({"email": "nope", "role": "viewer"}),
        )
        .await
        .assert_error(422, "validation_failed");
    let token = invite(&app, "acme", &team.admin.access_token, "short@acme.test").await;
    let short = client
        .post(
            "/v1/invitations/accept",
            None,
            json!({"token": token, "password": "short"}),
        )
        .await;
    short.assert_error(422, "validation_failed");
    let garbage = client
        .post(
            "/v1/invitations/accept",
            None,
            json!({"token": "inv_garbage", "password": "long-enough"}),
        )
        .await;
    garbage.assert_error(401, "unauthorized");
}

#[tokio::test]
async fn invitations_die_with_their_inviters_standing() {
    let app = spawn_app().await;
    let team = team(&app, "acme").await;
    let client = app.tenant("acme");
    let from_removed = invite(&app, "acme", &team.admin.access_token, "eve@acme.test").await;
    let admin_id = client.get("/v1/me", &team.admin.access_token).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        client
            .delete(&format!("/v1/members/{admin_id}"), &team.owner.access_token)
            .await
            .status,
        204
    );
    let accept = client
        .post(
            "/v1/invitations/accept",
            None,
            json!({"token": from_removed, "password": "eve-password"}),
        )
        .await;
    accept.assert_error(401, "unauthorized");

    // An admin demoted to member: their invitations stop working too.
    let second =
        crate::helpers::invite_and_accept(&app, "acme", &team.owner, "admin2@acme.test", "admin")
            .await;
    let from_demoted = invite(&app, "acme", &second.access_token, "mallory@acme.test").await;
    let second_id = client.get("/v1/me", &second.access_token).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let demoted = client
        .patch(
            &format!("/v1/members/{second_id}"),
            &team.owner.access_token,
            json!({"role": "member"}),
        )
        .await;
    assert_eq!(demoted.status, 200);
    let accept = client
        .post(
            "/v1/invitations/accept",
            None,
            json!({"token": from_demoted, "password": "mallory-pass"}),
        )
        .await;
    accept.assert_error(401, "unauthorized");
    app.tenant("acme")
        .try_login("mallory@acme.test", "mallory-pass")
        .await
        .assert_error(401, "invalid_credentials");
}
