//! ISOLATED identity: accounts, passwords and sessions belong to one tenant only.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_same_email_in_two_tenants_is_two_accounts_with_two_passwords() {
    let app = spawn_app().await;
    app.create_tenant("acme").await;
    app.create_tenant("globex").await;
    let at_acme = app
        .tenant("acme")
        .signup("alice@x.com", "acme-password")
        .await;
    let at_globex = app
        .tenant("globex")
        .signup("alice@x.com", "globex-password")
        .await;
    assert_ne!(at_acme.user_id, at_globex.user_id);

    app.tenant("acme")
        .login("alice@x.com", "acme-password")
        .await;
    app.tenant("globex")
        .login("alice@x.com", "globex-password")
        .await;
    app.tenant("acme")
        .try_login("alice@x.com", "globex-password")
        .await
        .assert_error(401, "invalid_credentials");
    app.tenant("globex")
        .try_login("alice@x.com", "acme-password")
        .await
        .assert_error(401, "invalid_credentials");
}

#[tokio::test]
async fn an_account_exists_only_in_the_tenant_it_signed_up_in() {
    let app = spawn_app().await;
    app.create_tenant("acme").await;
    app.create_tenant("globex").await;
    app.tenant("acme").signup("bob@x.com", "bob-password").await;
    app.tenant("globex")
        .try_login("bob@x.com", "bob-password")
        .await
        .assert_error(401, "invalid_credentials");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    app.create_tenant("acme").await;
    app.tenant("acme")
        .signup("carol@x.com", "carol-password")
        .await;
    let wrong = app
        .tenant("acme")
        .try_login("carol@x.com", "not-her-password")
        .await;
    let unknown = app
        .tenant("acme")
        .try_login("nobody@x.com", "carol-password")
        .await;
    wrong.assert_error(401, "invalid_credentials");
    unknown.assert_error(401, "invalid_credentials");
    assert_eq!(wrong.body, unknown.body);
}

#[tokio::test]
async fn emails_are_compared_case_insensitively_after_trimming() {
    let app = spawn_app().await;
    app.create_tenant("acme").await;
    app.tenant("acme")
        .signup("  Dave@Example.COM ", "dave-password")
        .await;
    app.tenant("acme")
        .login("dave@example.com", "dave-password")
        .await;
    let again = app
        .tenant("acme")
        .post(
            "/v1/auth/signup",
            None,
            json!({"email": "DAVE@example.com", "password": "another-pass"}),
        )
        .await;
    again.assert_error(409, "conflict");
}

#[tokio::test]
async fn me_shows_the_user_and_their_tenant() {
    let app = spawn_app().await;
    let tenant = app.create_tenant("acme").await;
    let session = app
        .tenant("acme")
        .signup("erin@x.com", "erin-password")
        .await;
    let me = app
        .tenant("acme")
        .get("/v1/me", &session.access_token)
        .await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["email"], "erin@x.com");
    assert_eq!(me.body["role"], "member");
    assert_eq!(me.body["tenant"]["slug"], "acme");
    assert_eq!(me.body["tenant"]["id"], tenant["id"]);
}

#[tokio::test]
async fn signup_is_forbidden_where_the_plan_closes_it() {
    let app = spawn_app().await;
    let reply = app
        .admin(
            reqwest::Method::POST,
            "/admin/v1/tenants",
            Some(json!({"slug": "bigco", "plan": "pro"})),
        )
        .await;
    assert_eq!(reply.status, 201);
    let signup = app
        .tenant("bigco")
        .post(
            "/v1/auth/signup",
            None,
            json!({"email": "a@x.com", "password": "12345678"}),
        )
        .await;
    signup.assert_error(403, "forbidden");
}

#[tokio::test]
async fn signup_validates_email_password_and_name() {
    let app = spawn_app().await;
    app.create_tenant("acme").await;
    let client = app.tenant("acme");
    let cases = [
        json!({"email": "not-an-email", "password": "12345678"}),
        json!({"email": "a@x.com", "password": "short"}),
        json!({"email": "a@x.com", "password": "x".repeat(1025)}),
        json!({"email": format!("{}@x.com", "a".repeat(260)), "password": "12345678"}),
        json!({"email": "a@x.com", "password": "12345678", "name": ""}),
        json!({"email": "a@x.com", "password": "12345678", "name": "n".repeat(201)}),
        json!({"email": "a@x.com", "password": "12345678", "role": "owner"}),
        json!({"password": "12345678"}),
    ];
    for body in cases {
        client
            .post("/v1/auth/signup", None, body.clone())
            .await
            .assert_error(422, "validation_failed");
    }
    let field = client
        .post(
            "/v1/auth/signup",
            None,
            json!({"email": "nope", "password": "12345678"}),
        )
        .await;
    assert!(
        field.body["error"]["fields"]["email"].is_string(),
        "{}",
        field.body
    );
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_revokes_the_family() {
    let app = spawn_app().await;
    app.create_tenant("acme").await;
    let client = app.tenant("acme");
    let first = client.signup("frank@x.com", "frank-password").await;

    let rotated = client
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": first.refresh_token}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let second = rotated.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first.refresh_token);
    assert_eq!(rotated.body["token_type"], "Bearer");
    assert!(
        client
            .get("/v1/me", rotated.body["access_token"].as_str().unwrap())
            .await
            .status
            == 200
    );

    // The spent token again: reuse. It is refused and the whole family dies with it.
    client
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": first.refresh_token}),
        )
        .await
        .assert_error(401, "unauthorized");
    client
        .post("/v1/auth/refresh", None, json!({"refresh_token": second}))
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn logout_revokes_the_refresh_family_and_needs_no_bearer() {
    let app = spawn_app().await;
    app.create_tenant("acme").await;
    let client = app.tenant("acme");
    let session = client.signup("gina@x.com", "gina-password").await;
    let other = client.login("gina@x.com", "gina-password").await;

    let out = client
        .post(
            "/v1/auth/logout",
            None,
            json!({"refresh_token": session.refresh_token}),
        )
        .await;
    assert_eq!(out.status, 204);
    client
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": session.refresh_token}),
        )
        .await
        .assert_error(401, "unauthorized");
    // Another session (another family) of the same user lives on.
    assert_eq!(
        client
            .post(
                "/v1/auth/refresh",
                None,
                json!({"refresh_token": other.refresh_token})
            )
            .await
            .status,
        200
    );
    // An unknown token is refused.
    client
        .post("/v1/auth/logout", None, json!({"refresh_token": "rt_nope"}))
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn a_refresh_token_cannot_be_used_or_revoked_at_another_tenant() {
    let app = spawn_app().await;
    app.create_tenant("acme").await;
    app.create_tenant("globex").await;
    let session = app
        .tenant("acme")
        .signup("hank@x.com", "hank-password")
        .await;
    let globex = app.tenant("globex");
    globex
        .post(
            "/v1/auth/logout",
            None,
            json!({"refresh_token": session.refresh_token}),
        )
        .await
        .assert_error(401, "unauthorized");
    // Still valid at home.
    let home = app
        .tenant("acme")
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": session.refresh_token}),
        )
        .await;
    assert_eq!(home.status, 200);
}

#[tokio::test]
async fn the_owner_named_at_provisioning_signs_in_as_owner() {
    let app = spawn_app().await;
    let owner = app
        .create_tenant_with_owner("acme", "boss@acme.com", "boss-password")
        .await;
    let me = app.tenant("acme").get("/v1/me", &owner.access_token).await;
    assert_eq!(me.body["role"], "owner");
}
