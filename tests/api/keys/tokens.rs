//! Access tokens across rotations: each names its derivation in `kid`; the tenant's current
//! and previous versions verify, anything else is `401`, and a tenant's tokens never verify
//! at another tenant, rotated or not.

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};
use silo::{
    secrets::{Purpose, Secrets},
    tenant::TenantId,
};

use super::{key_id, kid, rotate, MASTER_KEY};
use crate::helpers::{spawn_app, TestApp};

/// acme with a signed-in owner: the app, acme's id and the owner's token.
async fn acme() -> (TestApp, String, String) {
    let app = spawn_app().await;
    let owner = app
        .create_tenant_with_owner("acme", "owner@acme.test", "owner-password")
        .await;
    let id = app
        .admin(reqwest::Method::GET, "/admin/v1/tenants/acme", None)
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (app, id, owner.access_token)
}

/// A token for `claims`, signed with acme's real key of `version`, with `kid` in its header.
fn signed(tenant: &str, version: i64, kid: Option<String>, claims: &Value) -> String {
    let secrets = Secrets::from_bytes(MASTER_KEY.as_bytes().to_vec());
    let key = secrets.derive_versioned(Purpose::Jwt, tenant.parse::<TenantId>().unwrap(), version);
    let header = Header {
        kid,
        ..Header::default()
    };
    encode(&header, claims, &EncodingKey::from_secret(&key)).unwrap()
}

fn claims_of(token: &str) -> Value {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
async fn a_token_from_before_a_rotation_works_after_it_and_a_new_login_gets_the_new_kid() {
    let (app, _, before) = acme().await;
    let key = key_id(MASTER_KEY);
    assert_eq!(kid(&before), Some(format!("{key}.v1")));

    let rotated = rotate(&app, "acme").await;
    assert_eq!(rotated["slug"], "acme");
    assert_eq!(rotated["from"], json!({"key": key, "version": 1}));
    assert_eq!(rotated["to"], json!({"key": key, "version": 2}));

    let acme = app.tenant("acme");
    let me = acme.get("/v1/me", &before).await;
    assert_eq!(me.status, 200, "{}", me.body);
    let after = acme.login("owner@acme.test", "owner-password").await;
    assert_eq!(kid(&after.access_token), Some(format!("{key}.v2")));
    assert_eq!(acme.get("/v1/me", &after.access_token).await.status, 200);
    // A refresh mints on the new version too.
    let refreshed = acme
        .post(
            "/v1/auth/refresh",
            None,
            json!({"refresh_token": after.refresh_token}),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let token = refreshed.body["access_token"].as_str().unwrap();
    assert_eq!(kid(token), Some(format!("{key}.v2")));
}

#[tokio::test]
async fn a_token_two_rotations_old_is_refused() {
    let (app, _, v1) = acme().await;
    rotate(&app, "acme").await;
    let v2 = app
        .tenant("acme")
        .login("owner@acme.test", "owner-password")
        .await
        .access_token;
    rotate(&app, "acme").await;
    let acme = app.tenant("acme");
    acme.get("/v1/me", &v1)
        .await
        .assert_error(401, "unauthorized");
    assert_eq!(
        acme.get("/v1/me", &v2).await.status,
        200,
        "the previous version"
    );
}

#[tokio::test]
async fn a_kid_naming_an_unknown_key_or_a_version_the_tenant_is_not_near_is_refused() {
    let (app, id, token) = acme().await;
    let claims = claims_of(&token);
    let key = key_id(MASTER_KEY);
    let acme = app.tenant("acme");
    let forged = [
        // Signed with the real key of version 1, but naming a key silo does not have.
        signed(&id, 1, Some("0123456789abcdef.v1".into()), &claims),
        // Really signed with version 5, which acme (at version 1) never had.
        signed(&id, 5, Some(format!("{key}.v5")), &claims),
        // Signed with version 1, claiming version 2: the signature does not match.
        signed(&id, 1, Some(format!("{key}.v2")), &claims),
        // Not a kid silo writes.
        signed(&id, 1, Some("v1".into()), &claims),
        signed(&id, 1, Some(format!("{key}.v0")), &claims),
    ];
    for token in forged {
        acme.get("/v1/me", &token)
            .await
            .assert_error(401, "unauthorized");
    }
}

#[tokio::test]
async fn a_token_without_a_kid_is_version_one_and_expires_with_it() {
    let (app, id, token) = acme().await;
    let claims = claims_of(&token);
    // As tokens were signed before they named their key.
    let legacy = signed(&id, 1, None, &claims);
    let acme = app.tenant("acme");
    assert_eq!(acme.get("/v1/me", &legacy).await.status, 200);
    rotate(&app, "acme").await;
    assert_eq!(
        acme.get("/v1/me", &legacy).await.status,
        200,
        "previous version"
    );
    rotate(&app, "acme").await;
    acme.get("/v1/me", &legacy)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn a_token_of_another_tenant_stays_refused_across_rotations() {
    let (app, _, acme_token) = acme().await;
    let globex_owner = {
        let body = json!({"slug": "globex", "owner_email": "owner@acme.test", "owner_password": "owner-password"});
        let reply = app
            .admin(reqwest::Method::POST, "/admin/v1/tenants", Some(body))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        app.tenant("globex")
            .login("owner@acme.test", "owner-password")
            .await
    };
    let globex_id = app
        .admin(reqwest::Method::GET, "/admin/v1/tenants/globex", None)
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for round in 0..2 {
        rotate(&app, "acme").await;
        if round == 0 {
            rotate(&app, "globex").await;
        }
        let (acme, globex) = (app.tenant("acme"), app.tenant("globex"));
        let acme_now = acme.login("owner@acme.test", "owner-password").await;
        let globex_now = globex.login("owner@acme.test", "owner-password").await;
        for token in [&globex_owner.access_token, &globex_now.access_token] {
            acme.get("/v1/me", token)
                .await
                .assert_error(401, "unauthorized");
        }
        for token in [&acme_token, &acme_now.access_token] {
            globex
                .get("/v1/me", token)
                .await
                .assert_error(401, "unauthorized");
        }
        // globex's own key of acme's version, with acme's kid: still globex's key.
        let version = round + 2;
        let claims = claims_of(&acme_now.access_token);
        let crossed = signed(
            &globex_id,
            version,
            Some(format!("{}.v{version}", key_id(MASTER_KEY))),
            &claims,
        );
        acme.get("/v1/me", &crossed)
            .await
            .assert_error(401, "unauthorized");
    }
}
